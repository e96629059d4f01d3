/*
 * queue/qmgr.c - queue manager.
 *
 * A message is delivered in rounds. A round starts on a worker: the queue file is read and
 * the local recipients that are due are delivered (deliver/local.c). Back on the loop, the
 * remote recipients that are due are grouped by destination (the relayhost, or the
 * recipient's domain), at most SEND_BATCH to a transaction, and handed to the remote agent.
 * When every group has its results, a last worker step applies expiry, queues the reports
 * the sender asked for (failed, delayed, success) and records the outcome: the queue file
 * is removed when every recipient is final, otherwise the status file is rewritten and a
 * retry timer set. A crash between a delivery and that record delivers again on restart:
 * the one documented duplicate.
 */
#include "queue/qmgr.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "conf/conf.h"
#include "deliver/local.h"
#include "deliver/remote.h"
#include "mail/mime.h"
#include "policy/aliases.h"
#include "queue/notify.h"
#include "queue/retry.h"
#include "queue/spool.h"
#include "smtp/parse.h"
#include "util/buf.h"
#include "util/container.h"
#include "util/log.h"
#include "util/str.h"
#include "util/tpool.h"
#include "util/xmalloc.h"

/* Recipients in one outbound transaction (RFC 5321 4.5.3.1.8 promises 100). */
#define SEND_BATCH 100

struct qmsg;

/* One transaction's worth of remote recipients. */
struct rgroup {
    struct remote_req req;
    struct qmsg *m;
    size_t *idx;                /* recipient indices in m->env */
    const char **rcpts;
    unsigned *notify;
    const char **orcpt;
    struct remote_result *res;
};

struct qmsg {
    struct env_msg env;
    struct qmgr *q;
    struct tpool_job job;
    struct event *timer;
    bool busy;
    bool finished;              /* every recipient final: file removed */
    bool load_failed;
    struct buf content;         /* during a round */
    int *act;                   /* per recipient: the report due this round, or NOTIFY_NONE */
    size_t remote_out;          /* groups still out */
    struct env_msg *created;    /* messages queued by the round (forward, reports) */
    size_t ncreated;
    bool trace_wait;            /* waiting for a TRACE request (timer armed) */
    bool delete_after;          /* DELETE arrived during a round */
    bool bounce_all;            /* BOUNCE: fail every pending recipient in the next round */
    bool flush_after;           /* FLUSH/ETRN arrived during a round: go again right after */
    bool local_tried;           /* a local round ran, or the message came from a restart */
    qmgr_trace_fn trace_fn;
    qmgr_trace_done_fn trace_done;
    void *trace_arg;
    enum local_outcome *lout;   /* local outcomes of the round, for the trace */
    struct aliases *aliases;    /* the table this round expands with (a reference) */
    struct conf *conf;          /* the configuration this round runs with (a reference) */
    struct qmsg *prev, *next;
};

struct qmgr {
    struct event_base *base;
    struct tpool *wq;
    struct spool *sp;
    struct conf *conf;          /* the current configuration (a reference) */
    struct remote *rm;
    struct qmsg *head;
    size_t count, busy;
    /* Workers write recipient states while the loop may list them: this guards both. */
    pthread_mutex_t mu;
    struct qmgr_stats stats;    /* guarded by mu */
};

static void schedule(struct qmsg *m);
static void round_finish(struct qmsg *m);
static void start_delete(struct qmsg *m);

struct qmgr *qmgr_new(struct event_base *base, struct tpool *wq, struct spool *sp,
    struct conf *conf, struct remote *rm)
{
    struct qmgr *q = xcalloc(1, sizeof *q);
    q->base = base;
    q->wq = wq;
    q->sp = sp;
    q->conf = conf_ref(conf);
    q->rm = rm;
    pthread_mutex_init(&q->mu, NULL);
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
    if (m->trace_done)
        m->trace_done(m->trace_arg);
    free(m->lout);
    aliases_free(m->aliases);   /* still held if a round was cut short by shutdown */
    conf_free(m->conf);
    env_free(&m->env);
    buf_free(&m->content);
    free(m->act);
    for (size_t i = 0; i < m->ncreated; i++)
        env_free(&m->created[i]);
    free(m->created);
    free(m);
}

static void set_str(char **dst, const char *v)
{
    /* copy first: v may be *dst itself (expiry keeps the last host) */
    char *n = v && v[0] ? xstrdup(v) : NULL;
    free(*dst);
    *dst = n;
}

static void keep_created(struct qmsg *m, struct env_msg *e)
{
    m->created = xreallocarray(m->created, m->ncreated + 1, sizeof *m->created);
    m->created[m->ncreated++] = *e;
    memset(e, 0, sizeof *e);
}

/* Record an outcome: "x.y.z text" reasons carry their status code in front. */
static void rcpt_outcome(struct qmsg *m, size_t i, enum env_rstate st, const char *status,
    const char *host, const char *reason, time_t now)
{
    struct env_rcpt *r = &m->env.rcpts[i];
    const struct conf *c = m->conf ? m->conf : m->q->conf;
    pthread_mutex_lock(&m->q->mu);
    set_str(&r->status, status);
    set_str(&r->host, host);
    set_str(&r->reason, reason);
    if (st == ENV_R_PENDING) {
        struct retry_policy rp = retry_policy_of(c);

        r->next_try = retry_next_try(&rp, r->attempts, now);
        m->q->stats.deferred++;
        pthread_mutex_unlock(&m->q->mu);
        return;
    }
    r->state = st;
    if (st == ENV_R_DELIVERED)
        m->q->stats.delivered++;
    else
        m->q->stats.failed++;
    pthread_mutex_unlock(&m->q->mu);
    unsigned want = st == ENV_R_FAILED ? SMTP_NOTIFY_FAILURE : SMTP_NOTIFY_SUCCESS;
    /* Failures are reported unless NOTIFY says otherwise (RFC 3461 4.1); successes only
     * when asked. */
    if ((r->notify == 0 && st == ENV_R_FAILED) || (r->notify & want))
        m->act[i] = st == ENV_R_FAILED ? DSN_FAILED : DSN_DELIVERED;
}

/* Received: header fields in the header block of a message (LF line ends). */
static size_t count_hops(const char *p, size_t n)
{
    size_t hops = 0;
    const char *e = p + n;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(e - p);
        if (l == 0)
            break;
        if (l >= 9 && strncasecmp(p, "Received:", 9) == 0)
            hops++;
        p += l + 1;
    }
    return hops;
}

/* ---- round, step 1: local deliveries on a worker ---- */

static void local_job(struct tpool_job *j)
{
    struct qmsg *m = container_of(j, struct qmsg, job);
    struct qmgr *q = m->q;
    struct env_msg *e = &m->env;
    time_t now = time(NULL);
    char err[512];
    struct env_msg disk;
    buf_reset(&m->content);
    int lr = spool_load(q->sp, e->id, &disk, &m->content, err, sizeof err);
    if (lr != 0) {
        if (lr == -2) {
            log_warnx("%s corrupt queue file: %s; moved to corrupt/", e->id, err);
            spool_quarantine(q->sp, e->id);
            m->finished = true;
        } else {
            log_warnx("%s cannot read queue file: %s", e->id, err);
        }
        m->load_failed = true;
        return;
    }
    env_free(&disk);
    e->size = m->content.len;
    size_t hops = count_hops(m->content.p ? m->content.p : "", m->content.len);
    if (hops > m->conf->max_hops) {
        /* A mail loop (RFC 5321 6.3): stop it here with a report. */
        char why[200];
        snprintf(why, sizeof why, "mail loop: %zu Received headers (limit %zu)", hops,
            m->conf->max_hops);
        for (size_t i = 0; i < e->nrcpt; i++) {
            if (e->rcpts[i].state != ENV_R_PENDING)
                continue;
            log_info("%s to=<%s> status=bounced dsn=5.4.6 reason=\"%s\"", e->id,
                e->rcpts[i].addr, why);
            rcpt_outcome(m, i, ENV_R_FAILED, "5.4.6", NULL, why, now);
        }
    }
    enum local_outcome *out = xcalloc(e->nrcpt + 1, sizeof *out);
    char **why = xcalloc(e->nrcpt + 1, sizeof *why);
    struct env_msg fwd;
    if (m->bounce_all) {
        m->bounce_all = false;
        for (size_t i = 0; i < e->nrcpt; i++)
            if (e->rcpts[i].state == ENV_R_PENDING) {
                log_info("%s to=<%s> status=bounced reason=\"bounced by the administrator\"",
                    e->id, e->rcpts[i].addr);
                rcpt_outcome(m, i, ENV_R_FAILED, "5.0.0", NULL,
                    "returned by the mail administrator", now);
            }
    }
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < e->nrcpt; i++)
        if (e->rcpts[i].local && e->rcpts[i].state == ENV_R_PENDING &&
            e->rcpts[i].next_try <= now)
            e->rcpts[i].attempts++;
    pthread_mutex_unlock(&q->mu);
    /* Before this round, a crash or a half-finished round may have delivered some mailboxes
     * already: then they are searched for the copy. */
    bool retry = m->local_tried;
    m->local_tried = true;
    local_deliver(m->conf, m->aliases, q->sp, e, m->content.p, m->content.len, now, retry, out,
        why, &fwd);
    if (fwd.nrcpt > 0)
        keep_created(m, &fwd);
    for (size_t i = 0; i < e->nrcpt; i++) {
        const char *w = why[i] ? why[i] : "";
        char status[16] = "";
        const char *sp = strchr(w, ' ');
        if (sp && (size_t)(sp - w) < sizeof status)
            str_ncopy(status, sizeof status, w, (size_t)(sp - w));
        switch (out[i]) {
        case LOCAL_DELIVERED:
            rcpt_outcome(m, i, ENV_R_DELIVERED, "2.0.0", NULL, "delivered to mailbox", now);
            break;
        case LOCAL_TEMP:
            rcpt_outcome(m, i, ENV_R_PENDING, status, NULL, sp ? sp + 1 : w, now);
            break;
        case LOCAL_PERM:
            rcpt_outcome(m, i, ENV_R_FAILED, status, NULL, sp ? sp + 1 : w, now);
            break;
        case LOCAL_SKIPPED:
            break;
        }
        free(why[i]);
    }
    free(why);
    free(m->lout);
    m->lout = out;
}

/* ---- round, step 2: remote deliveries on the loop ---- */

static void group_free(struct rgroup *g)
{
    free(g->idx);
    free(g->rcpts);
    free(g->notify);
    free(g->orcpt);
    free(g->res);
    free(g);
}

static void trace_tramp(void *arg, const char *dir, const char *text)
{
    struct rgroup *g = arg;
    if (g->m->trace_fn)
        g->m->trace_fn(g->m->trace_arg, dir, text);
}

static void remote_done(struct remote_req *req)
{
    struct rgroup *g = req->arg;
    struct qmsg *m = g->m;
    time_t now = time(NULL);
    for (size_t k = 0; k < req->msg.nrcpt; k++) {
        size_t i = g->idx[k];
        const struct remote_result *res = &g->res[k];
        const struct env_rcpt *r = &m->env.rcpts[i];
        const char *state = "sent";
        if (res->kind == CLI_R_OK) {
            rcpt_outcome(m, i, ENV_R_DELIVERED, res->status, res->host, res->reply, now);
            /* With DSN passed on, the next hop reports success; else we say "relayed". */
            if (m->act[i] == DSN_DELIVERED)
                m->act[i] = res->dsn_passed ? NOTIFY_NONE : DSN_RELAYED;
        } else if (res->kind == CLI_R_PERM) {
            rcpt_outcome(m, i, ENV_R_FAILED, res->status, res->host, res->reply, now);
            state = "bounced";
        } else {
            rcpt_outcome(m, i, ENV_R_PENDING, res->status, res->host, res->reply, now);
            state = "deferred";
        }
        log_info("%s to=<%s> relay=%s delay=%llds dsn=%s status=%s (%s)", m->env.id, r->addr,
            res->host[0] ? res->host : "none", (long long)(now - m->env.arrival),
            res->status, state, res->reply);
    }
    group_free(g);
    if (--m->remote_out == 0)
        round_finish(m);
}

/* The destination of a remote recipient: the relayhost, or its domain. */
static const char *rcpt_dest(const struct conf *c, const char *addr)
{
    if (c->relayhost)
        return c->relayhost;
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : addr;
}

static void start_remote(struct qmsg *m)
{
    struct qmgr *q = m->q;
    const struct conf *c = m->conf;
    struct env_msg *e = &m->env;
    time_t now = time(NULL);
    bool *taken = xcalloc(e->nrcpt + 1, sizeof *taken);
    bool eightbit = mime_has_8bit(m->content.p ? m->content.p : "", m->content.len);
    m->remote_out = 1;      /* held until every group is out */
    for (size_t i = 0; i < e->nrcpt; i++) {
        struct env_rcpt *r = &e->rcpts[i];
        if (taken[i] || r->local || r->state != ENV_R_PENDING || r->next_try > now)
            continue;
        const char *dest = rcpt_dest(c, r->addr);
        struct rgroup *g = xcalloc(1, sizeof *g);
        g->m = m;
        g->idx = xcalloc(SEND_BATCH, sizeof *g->idx);
        g->rcpts = xcalloc(SEND_BATCH, sizeof *g->rcpts);
        g->notify = xcalloc(SEND_BATCH, sizeof *g->notify);
        g->orcpt = xcalloc(SEND_BATCH, sizeof *g->orcpt);
        g->res = xcalloc(SEND_BATCH, sizeof *g->res);
        size_t n = 0;
        for (size_t k = i; k < e->nrcpt && n < SEND_BATCH; k++) {
            struct env_rcpt *rk = &e->rcpts[k];
            if (taken[k] || rk->local || rk->state != ENV_R_PENDING || rk->next_try > now ||
                strcasecmp(rcpt_dest(c, rk->addr), dest) != 0)
                continue;
            taken[k] = true;
            rk->attempts++;
            g->idx[n] = k;
            g->rcpts[n] = rk->addr;
            g->notify[n] = rk->notify;
            g->orcpt[n] = rk->orcpt;
            n++;
        }
        struct remote_req *rq = &g->req;
        str_copy(rq->dest, sizeof rq->dest, dest);
        rq->msg.sender = e->sender;
        rq->msg.rcpts = g->rcpts;
        rq->msg.notify = g->notify;
        rq->msg.orcpt = g->orcpt;
        rq->msg.nrcpt = n;
        rq->msg.size = m->content.len;
        rq->msg.eightbit = eightbit;
        rq->msg.smtputf8 = e->smtputf8;
        rq->msg.ret = e->ret;
        rq->msg.envid = e->envid;
        rq->content = m->content.p ? m->content.p : "";
        rq->len = m->content.len;
        rq->res = g->res;
        rq->done = remote_done;
        rq->arg = g;
        rq->trace = m->trace_fn ? trace_tramp : NULL;
        m->remote_out++;
        remote_send(q->rm, rq);
    }
    free(taken);
    if (--m->remote_out == 0)
        round_finish(m);
}

static void local_done(struct tpool_job *j)
{
    struct qmsg *m = container_of(j, struct qmsg, job);
    struct qmgr *q = m->q;
    for (size_t i = 0; i < m->ncreated; i++)
        qmgr_add(q, &m->created[i]);
    m->ncreated = 0;
    if (m->trace_fn && m->lout) {
        for (size_t i = 0; i < m->env.nrcpt; i++) {
            const struct env_rcpt *r = &m->env.rcpts[i];
            char line[1200];
            if (m->lout[i] == LOCAL_DELIVERED)
                snprintf(line, sizeof line, "<%s>... Delivered to the local mailbox", r->addr);
            else if (m->lout[i] == LOCAL_TEMP || m->lout[i] == LOCAL_PERM)
                snprintf(line, sizeof line, "<%s>... %s (%s)", r->addr,
                    m->lout[i] == LOCAL_TEMP ? "Deferred" : "Failed",
                    r->reason ? r->reason : "");
            else
                continue;
            m->trace_fn(m->trace_arg, "local", line);
        }
    }
    if (m->load_failed) {
        time_t now = time(NULL);
        struct retry_policy rp = retry_policy_of(q->conf);
        for (size_t i = 0; i < m->env.nrcpt; i++)
            if (m->env.rcpts[i].state == ENV_R_PENDING)
                m->env.rcpts[i].next_try = retry_next_try(&rp, ++m->env.rcpts[i].attempts, now);
        round_finish(m);
        return;
    }
    start_remote(m);
}

/* ---- round, step 3: reports and the durable record, on a worker ---- */

static void finish_job(struct tpool_job *j)
{
    struct qmsg *m = container_of(j, struct qmsg, job);
    struct qmgr *q = m->q;
    const struct conf *c = m->conf;
    struct env_msg *e = &m->env;
    time_t now = time(NULL);
    if (m->finished)
        return;     /* quarantined */
    int *delayed = xcalloc(e->nrcpt + 1, sizeof *delayed);
    bool any_delay = false;
    struct retry_policy rp = retry_policy_of(c);
    if (m->delete_after) {
        spool_remove(q->sp, e->id);
        log_info("%s removed by the administrator", e->id);
        m->finished = true;
        free(delayed);
        return;
    }
    for (size_t i = 0; i < e->nrcpt; i++) {
        struct env_rcpt *r = &e->rcpts[i];
        delayed[i] = NOTIFY_NONE;
        if (r->state != ENV_R_PENDING)
            continue;
        enum retry_action act = retry_decide(&rp, e->arrival, r->delay_notified,
            retry_delay_wanted(r->notify, e->sender[0] == '\0'), now);
        if (act == RETRY_EXPIRE) {
            char why[900];
            snprintf(why, sizeof why, "message expired in the queue after %lld seconds; "
                "last error: %s", (long long)(now - e->arrival), r->reason ? r->reason : "none");
            log_info("%s to=<%s> status=expired reason=\"%s\"", e->id, r->addr,
                r->reason ? r->reason : "none");
            rcpt_outcome(m, i, ENV_R_FAILED, "4.4.7", r->host, why, now);
        } else if (act == RETRY_DELAY_NOTICE) {
            delayed[i] = DSN_DELAYED;
            pthread_mutex_lock(&q->mu);
            r->delay_notified = true;
            pthread_mutex_unlock(&q->mu);
            any_delay = true;
        }
    }
    /* One report per kind: failures, delays, successes. */
    int *sel = xcalloc(e->nrcpt + 1, sizeof *sel);
    for (int kind = 0; kind < 3; kind++) {
        bool any = false;
        for (size_t i = 0; i < e->nrcpt; i++) {
            int a = kind == 1 ? delayed[i] : m->act[i];
            bool want = a != NOTIFY_NONE && (kind == 0 ? a == DSN_FAILED :
                kind == 1 ? a == DSN_DELAYED : (a == DSN_DELIVERED || a == DSN_RELAYED));
            sel[i] = want ? a : NOTIFY_NONE;
            any |= want;
        }
        if (!any || (kind == 1 && !any_delay))
            continue;
        struct env_msg rep;
        if (notify_queue(c, q->sp, e, m->content.p ? m->content.p : "", m->content.len, sel,
                now, &rep) == 0)
            keep_created(m, &rep);
    }
    free(sel);
    free(delayed);
    bool pending = false;
    for (size_t i = 0; i < e->nrcpt; i++)
        pending |= e->rcpts[i].state == ENV_R_PENDING;
    if (!pending) {
        if (spool_remove(q->sp, e->id) == -1 && errno != ENOENT)
            log_warn("%s cannot remove queue file", e->id);
        else
            log_info("%s removed", e->id);
        m->finished = true;
    } else if (spool_save_status(q->sp, e) == -1) {
        log_warn("%s cannot save recipient status", e->id);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    schedule(arg);
}

static void finish_done(struct tpool_job *j)
{
    struct qmsg *m = container_of(j, struct qmsg, job);
    struct qmgr *q = m->q;
    m->busy = false;
    q->busy--;
    buf_free(&m->content);
    aliases_free(m->aliases);
    m->aliases = NULL;
    conf_free(m->conf);
    m->conf = NULL;
    if (m->trace_done) {
        qmgr_trace_done_fn done = m->trace_done;
        m->trace_done = NULL;
        m->trace_fn = NULL;
        done(m->trace_arg);
    }
    for (size_t i = 0; i < m->ncreated; i++)
        qmgr_add(q, &m->created[i]);
    m->ncreated = 0;
    if (m->finished) {
        qmsg_free(m);
        return;
    }
    if (m->delete_after) {
        /* DELETE came while finish_job was already past its check */
        start_delete(m);
        return;
    }
    time_t now = time(NULL), next = 0;
    bool pending = false;
    if (m->flush_after) {
        m->flush_after = false;
        for (size_t i = 0; i < m->env.nrcpt; i++)
            if (m->env.rcpts[i].state == ENV_R_PENDING)
                m->env.rcpts[i].next_try = 0;
    }
    for (size_t i = 0; i < m->env.nrcpt; i++) {
        const struct env_rcpt *r = &m->env.rcpts[i];
        if (r->state == ENV_R_PENDING && (!pending || r->next_try < next)) {
            next = r->next_try;
            pending = true;
        }
    }
    if (!pending) {
        /* cannot happen: finish_job removed the file when nothing was pending */
        qmsg_free(m);
        return;
    }
    /* A delay notice may be due before the next try. */
    struct retry_policy rp = retry_policy_of(q->conf);
    bool notice_pending = false;
    for (size_t i = 0; i < m->env.nrcpt; i++)
        notice_pending |= m->env.rcpts[i].state == ENV_R_PENDING &&
            !m->env.rcpts[i].delay_notified;
    next = retry_wakeup(&rp, m->env.arrival, notice_pending && m->env.sender[0], next, now);
    struct timeval tv = { next > now ? next - now : 0, 0 };
    if (m->timer == NULL)
        m->timer = evtimer_new(q->base, on_timer, m);
    evtimer_add(m->timer, &tv);
}

static void round_finish(struct qmsg *m)
{
    m->job.fn = finish_job;
    m->job.done = finish_done;
    tpool_submit(m->q->wq, &m->job);
}

static void schedule(struct qmsg *m)
{
    if (m->busy || m->env.held)
        return;
    m->trace_wait = false;
    m->busy = true;
    m->q->busy++;
    m->load_failed = false;
    free(m->act);
    m->act = xcalloc(m->env.nrcpt + 1, sizeof *m->act);
    for (size_t i = 0; i < m->env.nrcpt; i++)
        m->act[i] = NOTIFY_NONE;
    buf_init(&m->content, 0);
    /* RELOAD may replace the configuration and its aliases while this round runs. */
    m->conf = conf_ref(m->q->conf);
    m->aliases = aliases_ref(m->conf->aliases);
    m->job.fn = local_job;
    m->job.done = local_done;
    tpool_submit(m->q->wq, &m->job);
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

void qmgr_add_ex(struct qmgr *q, struct env_msg *e, bool trace_hold)
{
    struct qmsg *m = qmsg_link(q, e);
    if (!trace_hold) {
        schedule(m);
        return;
    }
    /* sendmail -v asks for this message's transcript next; don't start without it. */
    m->trace_wait = true;
    m->timer = evtimer_new(q->base, on_timer, m);
    struct timeval tv = { QMGR_TRACE_WAIT, 0 };
    evtimer_add(m->timer, &tv);
}

static struct qmsg *find(struct qmgr *q, const char *id)
{
    for (struct qmsg *m = q->head; m; m = m->next)
        if (strcmp(m->env.id, id) == 0)
            return m;
    return NULL;
}

const struct env_msg *qmgr_find(struct qmgr *q, const char *id)
{
    struct qmsg *m = find(q, id);
    return m ? &m->env : NULL;
}

int qmgr_trace(struct qmgr *q, const char *id, qmgr_trace_fn fn, qmgr_trace_done_fn done,
    void *arg)
{
    struct qmsg *m = find(q, id);
    if (m == NULL || m->env.held || m->finished)
        return -1;
    if (m->trace_done)
        m->trace_done(m->trace_arg);
    m->trace_fn = fn;
    m->trace_done = done;
    m->trace_arg = arg;
    if (!m->busy) {
        if (m->timer)
            evtimer_del(m->timer);
        for (size_t i = 0; i < m->env.nrcpt; i++)
            m->env.rcpts[i].next_try = 0;
        schedule(m);
    }
    return 0;
}

void qmgr_untrace(struct qmgr *q, void *arg)
{
    for (struct qmsg *m = q->head; m; m = m->next) {
        if (m->trace_arg == arg) {
            m->trace_fn = NULL;
            m->trace_done = NULL;
            m->trace_arg = NULL;
        }
    }
}

/* Worker: write the hold flag (part of the status file). */
static void hold_job(struct tpool_job *j)
{
    struct qmsg *m = container_of(j, struct qmsg, job);
    if (spool_save_status(m->q->sp, &m->env) == -1)
        log_warn("%s cannot save the hold flag", m->env.id);
}

static void hold_done(struct tpool_job *j)
{
    struct qmsg *m = container_of(j, struct qmsg, job);
    m->busy = false;
    m->q->busy--;
    if (m->delete_after)
        start_delete(m);
    else if (!m->env.held)
        schedule(m);
}

int qmgr_hold(struct qmgr *q, const char *id, bool hold)
{
    struct qmsg *m = find(q, id);
    if (m == NULL)
        return -1;
    if (m->env.held == hold)
        return 0;
    m->env.held = hold;
    log_info("%s %s by the administrator", id, hold ? "held" : "released");
    if (m->busy) {
        /* The round's end writes the status file, flag included; a release also retries
         * as soon as the round ends, as it does outside one. */
        if (!hold)
            m->flush_after = true;
        return 0;
    }
    if (m->timer)
        evtimer_del(m->timer);
    if (!hold)
        for (size_t i = 0; i < m->env.nrcpt; i++)
            m->env.rcpts[i].next_try = 0;
    m->busy = true;
    q->busy++;
    m->job.fn = hold_job;
    m->job.done = hold_done;
    tpool_submit(q->wq, &m->job);
    return 0;
}

static void delete_job(struct tpool_job *j)
{
    struct qmsg *m = container_of(j, struct qmsg, job);
    spool_remove(m->q->sp, m->env.id);
    log_info("%s removed by the administrator", m->env.id);
}

static void delete_done(struct tpool_job *j)
{
    struct qmsg *m = container_of(j, struct qmsg, job);
    m->q->busy--;
    qmsg_free(m);
}

int qmgr_delete(struct qmgr *q, const char *id)
{
    struct qmsg *m = find(q, id);
    if (m == NULL)
        return -1;
    if (m->busy) {
        /* the job running now sees it, or its completion starts the delete */
        m->delete_after = true;
        return 0;
    }
    start_delete(m);
    return 0;
}

static void start_delete(struct qmsg *m)
{
    if (m->timer)
        evtimer_del(m->timer);
    m->busy = true;
    m->q->busy++;
    m->job.fn = delete_job;
    m->job.done = delete_done;
    tpool_submit(m->q->wq, &m->job);
}

int qmgr_bounce(struct qmgr *q, const char *id)
{
    struct qmsg *m = find(q, id);
    if (m == NULL)
        return -1;
    m->bounce_all = true;
    m->env.held = false;
    if (!m->busy) {
        if (m->timer)
            evtimer_del(m->timer);
        schedule(m);
    }
    return 0;
}

void qmgr_foreach(struct qmgr *q, void (*fn)(void *arg, const struct env_msg *m, bool busy),
    void *arg)
{
    pthread_mutex_lock(&q->mu);
    for (struct qmsg *m = q->head; m; m = m->next)
        fn(arg, &m->env, m->busy);
    pthread_mutex_unlock(&q->mu);
}

/* "example.org" matches itself; "@example.org" matches it and its subdomains (RFC 1985). */
static bool domain_match(const char *d, const char *pat)
{
    if (pat[0] != '@')
        return strcasecmp(d, pat) == 0;
    pat++;
    size_t dl = strlen(d), pl = strlen(pat);
    return strcasecmp(d, pat) == 0 ||
        (dl > pl && d[dl - pl - 1] == '.' && strcasecmp(d + dl - pl, pat) == 0);
}

size_t qmgr_flush(struct qmgr *q, const char *domain)
{
    size_t n = 0;
    for (struct qmsg *m = q->head; m; m = m->next) {
        bool hit = false;
        if (m->env.held)
            continue;           /* a held message keeps its retry times */
        for (size_t i = 0; i < m->env.nrcpt; i++) {
            struct env_rcpt *r = &m->env.rcpts[i];
            if (r->state != ENV_R_PENDING)
                continue;
            const char *at = strrchr(r->addr, '@');
            if (domain == NULL || (at && domain_match(at + 1, domain))) {
                r->next_try = 0;
                hit = true;
            }
        }
        if (!hit)
            continue;
        n++;
        if (m->busy) {
            /* the round in progress would set new retry times: retry when it ends */
            m->flush_after = true;
            continue;
        }
        if (m->timer)
            evtimer_del(m->timer);
        schedule(m);
    }
    return n;
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
            m->local_tried = true;      /* a crash may have come after a delivery */
            /* After a restart every pending recipient is due now. */
            for (size_t k = 0; k < m->env.nrcpt; k++)
                m->env.rcpts[k].next_try = 0;
            log_info("%s recovered from=<%s> nrcpt=%zu%s", m->env.id, m->env.sender,
                m->env.nrcpt, m->env.held ? " held" : "");
            schedule(m);
            loaded++;
        }
        free(ids[i]);
    }
    free(ids);
    return loaded;
}

void qmgr_get_stats(struct qmgr *q, struct qmgr_stats *out)
{
    pthread_mutex_lock(&q->mu);
    *out = q->stats;
    pthread_mutex_unlock(&q->mu);
    size_t held = 0;
    for (struct qmsg *m = q->head; m; m = m->next)
        held += m->env.held;
    out->held = held;
}

void qmgr_set_conf(struct qmgr *q, struct conf *conf)
{
    struct conf *old = q->conf;
    q->conf = conf_ref(conf);
    conf_free(old);
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
    pthread_mutex_destroy(&q->mu);
    conf_free(q->conf);
    free(q);
}
