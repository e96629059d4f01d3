/*
 * deliver/local.c - local delivery: aliases, Maildirs, forwarding off-host.
 */
#include "deliver/local.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "deliver/maildir.h"
#include "policy/aliases.h"
#include "queue/spool.h"
#include "smtp/parse.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

static bool is_local_domain_cb(const char *domain, void *ctx)
{
    return conf_is_local_domain(ctx, domain);
}

bool local_addr_is_local(const struct conf *c, const char *addr)
{
    const char *at = strrchr(addr, '@');
    if (at == NULL)
        return strcasecmp(addr, "postmaster") == 0;
    return conf_is_local_domain(c, at + 1);
}

/* Split a local recipient into its local part (lower-cased) and domain (NULL if none). */
static void split_addr(const char *addr, char *local, size_t lsz, const char **domain)
{
    const char *at = strrchr(addr, '@');
    if (at) {
        str_ncopy(local, lsz, addr, (size_t)(at - addr));
        *domain = at + 1;
    } else {
        str_copy(local, lsz, addr);
        *domain = NULL;
    }
    str_lower(local);
}

/* Mailboxes handled in this round, so a mailbox several recipients reach gets one copy. */
struct mbox {
    char *user;
    enum local_outcome res;
    char *why;
};

struct mboxes {
    struct mbox *v;
    size_t n;
};

static struct mbox *mbox_find(struct mboxes *d, const char *user)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->v[i].user, user) == 0)
            return &d->v[i];
    return NULL;
}

static struct mbox *mbox_add(struct mboxes *d, const char *user)
{
    d->v = xreallocarray(d->v, d->n + 1, sizeof *d->v);
    struct mbox *b = &d->v[d->n++];
    b->user = xstrdup(user);
    b->res = LOCAL_DELIVERED;
    b->why = NULL;
    return b;
}

static void mboxes_free(struct mboxes *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].user);
        free(d->v[i].why);
    }
    free(d->v);
}

/* Deliver one mailbox (or recall its outcome from earlier in this round). */
static struct mbox *deliver_mailbox(const struct conf *c, struct mboxes *done,
    const struct env_msg *m, const char *rcpt, const char *user, const char *domain,
    const char *content, size_t len, time_t now, bool retry)
{
    struct mbox *b = mbox_find(done, user);
    if (b)
        return b;
    b = mbox_add(done, user);
    char why[700];
    if (!conf_is_local_user(c, user)) {
        /* An alias loop ends in a name that is no user, or the user went away. */
        b->res = LOCAL_PERM;
        snprintf(why, sizeof why, "5.1.1 <%s>: no such mailbox", user);
        b->why = xstrdup(why);
        log_info("%s to=<%s> mailbox=%s status=bounced dsn=5.1.1 reason=\"no such mailbox\"",
            m->id, rcpt, user);
        return b;
    }
    struct buf prefix;
    buf_init(&prefix, 0);
    char sender[SMTP_PATH_MAX * 4];
    /* An SMTPUTF8 message keeps its UTF-8 envelope sender (RFC 6531 3.7.1), as Received
     * keeps the recipient; anything else is ASCII already. */
    if (m->smtputf8)
        str_copy(sender, sizeof sender, m->sender);
    else
        str_escape(sender, sizeof sender, m->sender, strlen(m->sender));
    buf_printf(&prefix, "Return-Path: <%s>\nDelivered-To: %s@%s\n", sender, user,
        domain ? domain : c->nlocal_domains ? c->local_domains[0] : c->hostname);
    char name[512], err[600], key[64];
    bool existed;
    /* One key per message and mailbox: a second attempt finds the first one's copy. */
    snprintf(key, sizeof key, "%lld.Q%s", (long long)m->arrival, m->id);
    int r = maildir_deliver(c->mail_dir, user, key, retry ? MAILDIR_RETRY : MAILDIR_FIRST,
        prefix.p, prefix.len, content, len, name, sizeof name, &existed, err, sizeof err);
    buf_free(&prefix);
    if (r == -1) {
        b->res = LOCAL_TEMP;
        snprintf(why, sizeof why, "4.3.0 %s", err);
        b->why = xstrdup(why);
        log_warnx("%s to=<%s> mailbox=%s status=deferred dsn=4.3.0 reason=\"%s\"", m->id,
            rcpt, user, err);
        return b;
    }
    log_info("%s to=<%s> mailbox=%s relay=local delay=%llds dsn=2.0.0 status=delivered "
        "file=%s%s", m->id, rcpt, user, (long long)(now - m->arrival), name,
        existed ? " (delivered by an earlier attempt)" : "");
    return b;
}

/* Queue the forwarded copy: original sender, the off-host targets as recipients. */
static int forward(struct spool *sp, const struct env_msg *m, const char *content, size_t len,
    struct env_msg *fwd, const char *first_rcpt)
{
    fwd->arrival = m->arrival;
    fwd->sender = xstrdup(m->sender);
    fwd->envid = m->envid ? xstrdup(m->envid) : NULL;
    fwd->ret = m->ret;
    fwd->body = m->body;
    fwd->smtputf8 = m->smtputf8;
    fwd->helo = xstrdup(m->helo ? m->helo : "");
    fwd->client = xstrdup(m->client ? m->client : "");
    /* Delivered-To marks the hop, so a forwarding loop can be recognised downstream. */
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "Delivered-To: %s\n", first_rcpt);
    buf_append(&b, content, len);
    int r = spool_inject(sp, fwd, b.p, b.len);
    buf_free(&b);
    return r;
}

void local_deliver(const struct conf *c, const struct aliases *al, struct spool *sp,
    const struct env_msg *m,
    const char *content, size_t len, time_t now, bool retry, enum local_outcome *outcome,
    char **why, struct env_msg *fwd)
{
    struct mboxes done = { 0 };
    memset(fwd, 0, sizeof *fwd);
    /* which recipients have off-host targets, so their outcome waits for the forward */
    bool *forwards = xcalloc(m->nrcpt + 1, sizeof *forwards);
    const char *first_fwd = NULL;
    char err[512], reason[800];
    for (size_t i = 0; i < m->nrcpt; i++) {
        const struct env_rcpt *r = &m->rcpts[i];
        outcome[i] = LOCAL_SKIPPED;
        why[i] = NULL;
        if (!r->local || r->state != ENV_R_PENDING || r->next_try > now)
            continue;
        char local[SMTP_LOCAL_MAX * 2 + 3];
        const char *domain;
        split_addr(r->addr, local, sizeof local, &domain);
        struct alias_result res = { 0 };
        int xr = aliases_expand(al, local, is_local_domain_cb, (void *)c, &res, err,
            sizeof err);
        if (xr != 0) {
            outcome[i] = xr == -2 ? LOCAL_TEMP : LOCAL_PERM;
            snprintf(reason, sizeof reason, "%s alias expansion failed: %s",
                xr == -2 ? "4.3.0" : "5.3.0", err);
            why[i] = xstrdup(reason);
            log_info("%s to=<%s> status=%s reason=\"%s\"", m->id, r->addr,
                xr == -2 ? "deferred" : "bounced", err);
            continue;
        }
        bool temp = false, perm = false;
        const char *last_why = NULL;
        for (size_t k = 0; k < res.nlocal; k++) {
            struct mbox *b = deliver_mailbox(c, &done, m, r->addr, res.local[k], domain,
                content, len, now, retry);
            if (b->res == LOCAL_TEMP)
                temp = true;
            else if (b->res == LOCAL_PERM)
                perm = true;
            if (b->why)
                last_why = b->why;
        }
        for (size_t k = 0; k < res.nremote; k++) {
            bool dup = false;
            for (size_t j = 0; j < fwd->nrcpt; j++)
                dup |= strcmp(fwd->rcpts[j].addr, res.remote[k]) == 0;
            if (!dup) {
                char orcpt[SMTP_PATH_MAX * 2 + 8];
                snprintf(orcpt, sizeof orcpt, "rfc822;%s", r->addr);
                env_add_rcpt(fwd, res.remote[k], false, r->notify,
                    r->orcpt ? r->orcpt : orcpt);
            }
            forwards[i] = true;
            if (first_fwd == NULL)
                first_fwd = r->addr;
        }
        alias_result_free(&res);
        /* Any mailbox that failed for good makes the recipient fail (one bounce says so);
         * a temporary failure retries the recipient, its delivered mailboxes included. */
        outcome[i] = temp ? LOCAL_TEMP : perm ? LOCAL_PERM : LOCAL_DELIVERED;
        if (last_why && outcome[i] != LOCAL_DELIVERED)
            why[i] = xstrdup(last_why);
    }
    if (fwd->nrcpt > 0) {
        if (forward(sp, m, content, len, fwd, first_fwd) == 0) {
            log_info("%s forwarded as %s nrcpt=%zu", m->id, fwd->id, fwd->nrcpt);
            for (size_t j = 0; j < fwd->nrcpt; j++)
                log_info("%s forward=<%s> queued as %s", m->id, fwd->rcpts[j].addr, fwd->id);
        } else {
            log_warn("%s cannot queue the forwarded copy", m->id);
            env_free(fwd);
            memset(fwd, 0, sizeof *fwd);
            for (size_t i = 0; i < m->nrcpt; i++) {
                if (forwards[i] && outcome[i] != LOCAL_PERM) {
                    outcome[i] = LOCAL_TEMP;
                    free(why[i]);
                    why[i] = xstrdup("4.3.0 cannot queue the forwarded copy");
                }
            }
        }
    }
    free(forwards);
    mboxes_free(&done);
}
