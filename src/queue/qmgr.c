/*
 * queue/qmgr.c - queue manager.
 *
 * A message is delivered by one job on a worker thread: it reads the queue file, expands
 * the local recipients through the aliases (one copy per mailbox), writes each Maildir,
 * then records the outcome: the queue file is removed when every recipient is final,
 * otherwise the status file is rewritten and a retry timer set. A crash between a Maildir
 * write and that record re-delivers on restart: the one documented duplicate.
 */
#include "queue/qmgr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "deliver/maildir.h"
#include "policy/aliases.h"
#include "queue/spool.h"
#include "util/log.h"
#include "util/str.h"
#include "util/workq.h"
#include "util/xmalloc.h"

struct qmsg {
    struct env_msg env;
    struct qmgr *q;
    struct workq_job job;
    struct event *timer;
    bool busy;
    bool finished;              /* every recipient final: file removed */
    struct qmsg *prev, *next;
};

struct qmgr {
    struct event_base *base;
    struct workq *wq;
    struct spool *sp;
    const struct conf *conf;
    struct qmsg *head;
    size_t count, busy;
};

struct qmgr *qmgr_new(struct event_base *base, struct workq *wq, struct spool *sp,
    const struct conf *conf)
{
    struct qmgr *q = xcalloc(1, sizeof *q);
    q->base = base;
    q->wq = wq;
    q->sp = sp;
    q->conf = conf;
    return q;
}

static void qmsg_free(struct qmsg *m)
{
    struct qmgr *q = m->q;
    if (m->prev)
        m->prev->next = m->next;
    else
        q->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    q->count--;
    if (m->timer)
        event_free(m->timer);
    env_free(&m->env);
    free(m);
}

static unsigned backoff(const struct conf *c, unsigned attempts)
{
    unsigned long long d = c->retry_min ? c->retry_min : 1;
    for (unsigned i = 1; i < attempts && d < c->retry_max; i++)
        d *= 2;
    if (d > c->retry_max)
        d = c->retry_max;
    return (unsigned)d;
}

struct lctx {
    const struct conf *conf;
};

static bool is_local_domain_cb(const char *domain, void *ctx)
{
    const struct conf *c = ctx;
    return conf_is_local_domain(c, domain);
}

/* The local part and domain of a local recipient ("postmaster" has no domain). */
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
}

static void set_reason(struct env_rcpt *r, const char *why)
{
    free(r->reason);
    r->reason = xstrdup(why);
}

/* Worker thread: deliver every pending recipient of one message. */
static void deliver_job(struct workq_job *j)
{
    struct qmsg *m = (struct qmsg *)((char *)j - offsetof(struct qmsg, job));
    struct qmgr *q = m->q;
    const struct conf *c = q->conf;
    struct env_msg *e = &m->env;
    time_t now = time(NULL);
    char err[512];
    struct buf content;
    buf_init(&content, 0);
    struct env_msg disk;
    int lr = spool_load(q->sp, e->id, &disk, &content, err, sizeof err);
    if (lr != 0) {
        if (lr == -2) {
            log_warnx("%s corrupt queue file: %s; moved to corrupt/", e->id, err);
            spool_quarantine(q->sp, e->id);
            m->finished = true;
        } else {
            log_warnx("%s cannot read queue file: %s", e->id, err);
        }
        buf_free(&content);
        for (size_t i = 0; i < e->nrcpt; i++)
            if (e->rcpts[i].state == ENV_R_PENDING)
                e->rcpts[i].next_try = now + backoff(c, ++e->rcpts[i].attempts);
        return;
    }
    env_free(&disk);

    struct buf prefix;
    buf_init(&prefix, 0);
    bool changed = false;
    for (size_t i = 0; i < e->nrcpt; i++) {
        struct env_rcpt *r = &e->rcpts[i];
        if (r->state != ENV_R_PENDING || r->next_try > now)
            continue;
        r->attempts++;
        changed = true;
        if (!r->local) {
            /* Remote transport: the sending MTA, a later stage. */
            r->next_try = now + backoff(c, r->attempts);
            set_reason(r, "4.4.0 remote delivery is not available in this version");
            log_info("%s to=<%s> status=deferred dsn=4.4.0 reason=\"remote delivery not "
                "available\"", e->id, r->addr);
            continue;
        }
        char local[256];
        const char *domain;
        split_addr(r->addr, local, sizeof local, &domain);
        str_lower(local);
        struct alias_result res = { 0 };
        int xr = aliases_expand(c->aliases, local, is_local_domain_cb, (void *)c, &res, err,
            sizeof err);
        bool temp = false, perm = false;
        char why[600] = "";
        if (xr == -1) {
            perm = true;
            snprintf(why, sizeof why, "5.3.0 alias expansion failed: %s", err);
        } else if (xr == -2) {
            temp = true;
            snprintf(why, sizeof why, "4.3.0 alias expansion failed: %s", err);
        }
        for (size_t k = 0; xr == 0 && k < res.nlocal; k++) {
            const char *user = res.local[k];
            if (!conf_is_local_user(c, user)) {
                perm = true;
                snprintf(why, sizeof why, "5.1.1 <%s>: no such mailbox", user);
                continue;
            }
            const char *dom = domain ? domain : c->nlocal_domains ? c->local_domains[0] :
                c->hostname;
            buf_reset(&prefix);
            buf_printf(&prefix, "Return-Path: <%s>\nDelivered-To: %s@%s\n", e->sender, user,
                dom);
            char name[512];
            if (maildir_deliver(c->mail_dir, user, prefix.p, prefix.len, content.p,
                    content.len, name, sizeof name, err, sizeof err) == -1) {
                temp = true;
                snprintf(why, sizeof why, "4.3.0 %s", err);
                log_warnx("%s to=<%s> mailbox=%s status=deferred reason=\"%s\"", e->id,
                    r->addr, user, err);
                continue;
            }
            log_info("%s to=<%s> mailbox=%s relay=local delay=%llds dsn=2.0.0 "
                "status=delivered file=%s", e->id, r->addr, user,
                (long long)(now - e->arrival), name);
        }
        for (size_t k = 0; xr == 0 && k < res.nremote; k++) {
            /* Forwarding off-host arrives with the sending MTA. */
            temp = true;
            snprintf(why, sizeof why, "4.4.0 forwarding to <%s> is not available yet",
                res.remote[k]);
            log_info("%s to=<%s> forward=<%s> status=deferred reason=\"remote delivery not "
                "available\"", e->id, r->addr, res.remote[k]);
        }
        alias_result_free(&res);
        if (perm && !temp) {
            r->state = ENV_R_FAILED;
            set_reason(r, why);
            log_info("%s to=<%s> status=bounced reason=\"%s\"", e->id, r->addr, why);
        } else if (temp) {
            r->next_try = now + backoff(c, r->attempts);
            set_reason(r, why);
        } else {
            r->state = ENV_R_DELIVERED;
        }
    }
    buf_free(&prefix);
    buf_free(&content);

    /* Expiry: past the queue lifetime a deferred recipient fails. */
    for (size_t i = 0; i < e->nrcpt; i++) {
        struct env_rcpt *r = &e->rcpts[i];
        if (r->state == ENV_R_PENDING && now - e->arrival >= (time_t)c->max_queue_lifetime) {
            r->state = ENV_R_FAILED;
            char why[700];
            snprintf(why, sizeof why, "4.4.7 message expired in queue; last error: %s",
                r->reason ? r->reason : "none");
            set_reason(r, why);
            log_info("%s to=<%s> status=expired reason=\"%s\"", e->id, r->addr, why);
            changed = true;
        }
    }
    bool pending = false;
    for (size_t i = 0; i < e->nrcpt; i++)
        pending |= e->rcpts[i].state == ENV_R_PENDING;
    if (!pending) {
        if (spool_remove(q->sp, e->id) == -1 && errno != ENOENT)
            log_warn("%s cannot remove queue file", e->id);
        else
            log_info("%s removed", e->id);
        m->finished = true;
    } else if (changed && spool_save_status(q->sp, e) == -1) {
        log_warn("%s cannot save recipient status", e->id);
    }
}

static void schedule(struct qmsg *m);

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct qmsg *m = arg;
    schedule(m);
}

static void deliver_done(struct workq_job *j)
{
    struct qmsg *m = (struct qmsg *)((char *)j - offsetof(struct qmsg, job));
    struct qmgr *q = m->q;
    m->busy = false;
    q->busy--;
    if (m->finished) {
        qmsg_free(m);
        return;
    }
    time_t now = time(NULL), next = 0;
    for (size_t i = 0; i < m->env.nrcpt; i++) {
        const struct env_rcpt *r = &m->env.rcpts[i];
        if (r->state == ENV_R_PENDING && (next == 0 || r->next_try < next))
            next = r->next_try;
    }
    if (next == 0) {
        qmsg_free(m);
        return;
    }
    struct timeval tv = { next > now ? next - now : 0, 0 };
    if (m->timer == NULL)
        m->timer = evtimer_new(q->base, on_timer, m);
    evtimer_add(m->timer, &tv);
}

static void schedule(struct qmsg *m)
{
    if (m->busy)
        return;
    m->busy = true;
    m->q->busy++;
    m->job.fn = deliver_job;
    m->job.done = deliver_done;
    workq_submit(m->q->wq, &m->job);
}

static struct qmsg *qmsg_link(struct qmgr *q, struct env_msg *e)
{
    struct qmsg *m = xcalloc(1, sizeof *m);
    m->env = *e;
    memset(e, 0, sizeof *e);
    m->q = q;
    m->next = q->head;
    if (q->head)
        q->head->prev = m;
    q->head = m;
    q->count++;
    return m;
}

void qmgr_add(struct qmgr *q, struct env_msg *e)
{
    schedule(qmsg_link(q, e));
}

size_t qmgr_recover(struct qmgr *q)
{
    char **ids;
    long n = spool_recover(q->sp, &ids);
    if (n < 0) {
        log_warn("spool: cannot scan %s", q->sp->queue);
        return 0;
    }
    size_t loaded = 0;
    for (long i = 0; i < n; i++) {
        struct env_msg e;
        char err[256];
        int r = spool_load(q->sp, ids[i], &e, NULL, err, sizeof err);
        if (r == -2) {
            log_warnx("%s corrupt queue file: %s; moved to corrupt/", ids[i], err);
            spool_quarantine(q->sp, ids[i]);
        } else if (r == -1) {
            log_warnx("%s cannot read queue file: %s", ids[i], err);
        } else {
            struct qmsg *m = qmsg_link(q, &e);
            /* After a restart every pending recipient is due now. */
            for (size_t k = 0; k < m->env.nrcpt; k++)
                m->env.rcpts[k].next_try = 0;
            log_info("%s recovered from=<%s> nrcpt=%zu", m->env.id, m->env.sender,
                m->env.nrcpt);
            schedule(m);
            loaded++;
        }
        free(ids[i]);
    }
    free(ids);
    return loaded;
}

size_t qmgr_count(const struct qmgr *q)
{
    return q->count;
}

size_t qmgr_busy(const struct qmgr *q)
{
    return q->busy;
}

void qmgr_free(struct qmgr *q)
{
    if (q == NULL)
        return;
    while (q->head)
        qmsg_free(q->head);
    free(q);
}
