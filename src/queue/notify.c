/*
 * queue/notify.c - build and queue delivery status notifications.
 */
#include "queue/notify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "deliver/local.h"
#include "smtp/parse.h"
#include "queue/retry.h"
#include "queue/spool.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/xmalloc.h"

/* Is a (an address, or the address of an "addr-type;address" ORCPT) postmaster? */
static bool is_postmaster(const char *a, bool orcpt)
{
    if (a == NULL)
        return false;
    if (orcpt) {
        const char *semi = strchr(a, ';');
        if (semi == NULL)
            return false;
        a = semi + 1;
    }
    return strcasecmp(a, "postmaster") == 0 || strncasecmp(a, "postmaster@", 11) == 0;
}

int notify_queue(const struct conf *c, struct spool *sp, const struct env_msg *m,
    const char *content, size_t len, const int *act, time_t now, struct env_msg *out)
{
    memset(out, 0, sizeof *out);
    const char *to = m->sender;
    if (to[0] == '\0') {
        /* A report never causes a report: a failed message with a null sender goes to
         * postmaster once; if that one fails too (it is to postmaster with a null sender),
         * or the administrator said so, it is only logged. A postmaster alias that
         * forwards off-host keeps "rfc822;postmaster" as the copy's ORCPT: without that
         * check a failing forward would report to postmaster again, without end. */
        bool to_pm = true;
        for (size_t i = 0; i < m->nrcpt; i++)
            if (act[i] != NOTIFY_NONE && !is_postmaster(m->rcpts[i].addr, false) &&
                !is_postmaster(m->rcpts[i].orcpt, true))
                to_pm = false;
        if (to_pm || c->double_bounce != CONF_LOOKUP_ON) {
            log_info("%s undeliverable report dropped (null sender)", m->id);
            return 1;
        }
        to = "postmaster";
    }
    struct dsn_rcpt *dr = xcalloc(m->nrcpt + 1, sizeof *dr);
    struct retry_policy rp = retry_policy_of(c);
    size_t n = 0;
    for (size_t i = 0; i < m->nrcpt; i++) {
        if (act[i] == NOTIFY_NONE)
            continue;
        const struct env_rcpt *r = &m->rcpts[i];
        dr[n].addr = r->addr;
        dr[n].orcpt = r->orcpt;
        dr[n].action = (enum dsn_action)act[i];
        dr[n].status = r->status;
        dr[n].remote_mta = r->host;
        dr[n].diagnostic = r->reason;
        dr[n].last_attempt = now;
        if (act[i] == DSN_DELAYED)
            dr[n].will_retry_until = retry_expires_at(&rp, m->arrival);
        n++;
    }
    char seed[64];
    snprintf(seed, sizeof seed, "%s.%lld", m->id, (long long)now);
    struct dsn_msg d = {
        .reporting_mta = c->hostname,
        .queue_id = m->id,
        .envid = m->envid,
        .sender = to,
        .arrival = m->arrival,
        .client_helo = m->helo && m->helo[0] ? m->helo : NULL,
        .client_addr = m->client && m->client[0] ? m->client : NULL,
        .ret = m->ret,
        .rcpts = dr,
        .nrcpt = n,
        .original = content,
        .original_len = len,
        .now = now,
        .boundary_seed = seed,
        .smtputf8 = m->smtputf8,
    };
    struct buf body;
    buf_init(&body, (size_t)(c->message_size_limit ? c->message_size_limit : 0) + 65536);
    int r = dsn_build(&d, &body);
    free(dr);
    if (r == -1) {
        log_warnx("%s cannot build the delivery report", m->id);
        buf_free(&body);
        return -1;
    }
    out->arrival = now;
    out->sender = xstrdup("");
    out->helo = xstrdup(c->hostname);
    out->client = xstrdup("127.0.0.1");
    out->smtputf8 = m->smtputf8 && d.smtputf8;
    /* NOTIFY unset: a failed report goes once to postmaster (see above), never further. */
    env_add_rcpt(out, to, local_addr_is_local(c, to), 0, NULL);
    if (spool_inject(sp, out, body.p, body.len) == -1) {
        log_warn("%s cannot queue the delivery report", m->id);
        env_free(out);
        buf_free(&body);
        return -1;
    }
    log_info("%s sender notice: queued as %s to=<%s> nrcpt=%zu", m->id, out->id, to, n);
    buf_free(&body);
    return 0;
}
