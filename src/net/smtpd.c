/*
 * net/smtpd.c - the receive side: the SMTP session driver and spooling a transaction.
 *
 * Owns:  sessions (one net/conn connection and one smtp/server machine each), the greet
 *        pause, the spool jobs of the open transaction and the password checks.
 * Never: parses SMTP or writes reply text (smtp/server.c does both), binds or counts
 *        addresses (net/listener.c), touches a bufferevent or SSL (net/conn.c).
 * Limits: IN_MAX, OUT_MAX (below), LINE_CAP, SPILL_AT.
 *
 * The driver reads the connection's capped input, feeds each complete CRLF line (or
 * content bytes in DATA/BDAT) to the session machine in order, and queues its replies;
 * the output is flushed when no complete line is left, which gives PIPELINING for free.
 * Content is handed to the spool on worker threads; while a write or commit is running the
 * connection is CONN_BUSY and does not read, so pipelined commands wait in order.
 *
 * Bounds: each connection is one bufferevent, plaintext or TLS (net/conn.c), so one input
 * watermark (IN_MAX) and one output cap (OUT_MAX) bound everything a client can make us
 * hold. A spool file is held only while the transaction that wrote it is open: whatever
 * ends the transaction releases it.
 */
#include "net/smtpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "conf/conf.h"
#include "net/conn.h"
#include "net/listener.h"
#include "policy/auth.h"
#include "queue/envelope.h"
#include "queue/qmgr.h"
#include "queue/spool.h"
#include "smtp/limits.h"
#include "smtp/server.h"
#include "util/log.h"
#include "util/str.h"
#include "util/tpool.h"
#include "util/xmalloc.h"

/* Longest command line kept; longer ones get 500 5.5.2 and are discarded. */
#define LINE_CAP        SMTP_CMDLINE_EXT_MAX
/* Content held in memory before it is written to the spool file. */
#define SPILL_AT        (256 * 1024)
/* Replies queued for a client that does not read them: stop reading past this. */
#define OUT_MAX         (256 * 1024)
/* Input read ahead of the session (pipelined commands, content): reading stops here. */
#define IN_MAX          (64 * 1024)

struct smtpd;

enum cjob_kind { CJ_SPILL, CJ_COMMIT, CJ_DISCARD, CJ_AUTH };

struct cjob {
    struct tpool_job w;
    struct sess *s;
    enum cjob_kind kind;
    struct spool *sp;
    char id[24];
    int fd;
    struct buf head;            /* envelope, written before the first content */
    struct buf data;
    int result;                 /* 0 or errno; CJ_AUTH: 1 if the password matched, 0 if
                                   not, -1 if the check never ran */
};

/* One SMTP session. Its lifecycle is the state of its connection (conn_state()). */
struct sess {
    struct smtpd *d;
    struct conn *conn;
    struct smtp_server srv;
    struct event *greet_timer;
    struct cjob *job;           /* storage for this session's spool jobs */
    int spool_fd;               /* incoming file of the open transaction, or -1 */
    unsigned sid;
    enum lsn_kind kind;
    bool trusted;               /* trusted_networks: not counted per address */
    bool local;                 /* came in over the control socket */
    bool trace_hold;            /* its messages wait for a TRACE request (sendmail -v) */
    bool greeted;               /* the 220 went out */
    bool discarding;            /* dropping the rest of an overlong command line */
    struct event *auth_timer;   /* failed logins: the reply waits */
    enum auth_result auth_res;  /* result of the password check (NONE: it did not run) */
    enum srv_input last_mode;
    struct sess *prev, *next;
};

struct smtpd {
    struct event_base *base;
    struct conf *conf;          /* the current configuration (a reference) */
    struct spool *sp;
    struct tpool *wq;
    struct tpool *auth_wq;      /* password checks only: commits never wait behind a hash */
    struct qmgr *qm;
    struct listener *lsn;
    struct srv_env env;
    SSL_CTX *tls;               /* server context, or NULL */
    struct auth_db *authdb;     /* NULL: no AUTH */
    struct auth_senders *senders;
    struct auth_throttle *throttle;
    unsigned long long received;    /* messages queued since start */
    struct sess *sessions;
    size_t nsessions;
    unsigned next_sid;
    bool shutting_down;         /* sessions close once their job is done */
    bool freeing;               /* smtpd_free(): the workers have stopped */
    struct buf replies;         /* scratch for one feed's replies (single-threaded loop) */
};

static void sess_process(struct sess *s);
static void sess_close(struct sess *s);
static void sess_free(struct sess *s);
static void greet(struct sess *s);
static bool handle_out(struct sess *s, struct srv_out *out);
static void start_tls(struct sess *s);
static void start_auth(struct sess *s);
static void auth_checked(struct sess *s, bool ok);
static void release_spool(struct sess *s);
static void discard_async(struct sess *s);

/* A worker job is in flight (the peer may be gone meanwhile: CONN_DEAD). */
static bool sess_busy(const struct sess *s)
{
    enum conn_state st = conn_state(s->conn);
    return st == CONN_BUSY || st == CONN_DEAD;
}

/* The session is on its way out: nothing more is read or said. */
static bool sess_closing(const struct sess *s)
{
    enum conn_state st = conn_state(s->conn);
    return st == CONN_CLOSING || st == CONN_DEAD;
}

/* ---- session environment ---- */

static void env_new_id(void *ctx, char *id, size_t idsz)
{
    (void)ctx;
    spool_new_id(id, idsz);
}

static time_t env_now(void *ctx)
{
    (void)ctx;
    return time(NULL);
}

static bool is_local_cb(const char *domain, void *ctx)
{
    return conf_is_local_domain(ctx, domain);
}

static bool env_sender_ok(void *ctx, const char *user, const char *sender)
{
    struct smtpd *d = ctx;
    return auth_sender_ok(d->senders, user, sender, is_local_cb, (void *)d->conf);
}

/* ---- output ---- */

static void send_replies(struct sess *s, struct srv_out *out)
{
    if (out->replies->len > 0) {
        (void)conn_write(s->conn, out->replies->p, out->replies->len);
        buf_reset(out->replies);
    }
}

static void set_timeout(struct sess *s)
{
    enum srv_input m = srv_input_mode(&s->srv);
    if (m == s->last_mode)
        return;
    s->last_mode = m;
    const struct conf *cf = s->d->conf;
    conn_set_timeouts(s->conn, (unsigned)((m == SRV_IN_DATA || m == SRV_IN_BDAT) ?
        cf->timeout_data : cf->timeout_command), (unsigned)cf->timeout_command);
}

/* ---- spool jobs ---- */

static struct cjob *sess_job(struct sess *s)
{
    if (s->job == NULL) {
        s->job = xcalloc(1, sizeof *s->job);
        s->job->s = s;
        buf_init(&s->job->head, 0);
        buf_init(&s->job->data, 0);
    }
    return s->job;
}

static void job_run(struct tpool_job *w)
{
    struct cjob *j = (struct cjob *)w;
    int fd = j->fd;
    j->result = 0;
    if (j->kind == CJ_DISCARD) {
        spool_discard(j->sp, j->id, fd);
        j->fd = -1;
        return;
    }
    if ((j->head.len && spool_append(j->sp, j->id, &fd, j->head.p, j->head.len) == -1) ||
        (j->data.len && spool_append(j->sp, j->id, &fd, j->data.p, j->data.len) == -1) ||
        (fd == -1 && spool_append(j->sp, j->id, &fd, "", 0) == -1)) {
        j->result = errno ? errno : EIO;
        if (fd != -1)
            spool_discard(j->sp, j->id, fd);
        j->fd = -1;
        return;
    }
    j->fd = fd;
    if (j->kind == CJ_COMMIT) {
        if (spool_commit(j->sp, j->id, fd) == -1)
            j->result = errno ? errno : EIO;
        j->fd = -1;
    }
}

/* Build the envelope record of the open transaction. */
static void tx_envelope(const struct smtp_server *s, struct env_msg *m)
{
    const struct srv_tx *t = s->tx;
    memset(m, 0, sizeof *m);
    str_copy(m->id, sizeof m->id, t->id);
    m->arrival = t->arrival;
    m->sender = xstrdup(t->sender);
    m->envid = t->envid ? xstrdup(t->envid) : NULL;
    m->ret = t->ret;
    m->body = t->body_type;
    m->smtputf8 = t->smtputf8;
    m->helo = xstrdup(s->helo);
    m->client = xstrdup(s->client_addr);
    m->user = s->local_user[0] ? xstrdup(s->local_user) : NULL;
    for (size_t i = 0; i < t->nrcpt; i++)
        env_add_rcpt(m, t->rcpts[i].addr, t->rcpts[i].local, t->rcpts[i].notify,
            t->rcpts[i].orcpt);
}

static void job_done(struct tpool_job *w);

/* Hand the buffered content (and, first time, the envelope) to a worker. */
static void sess_submit(struct sess *s, enum cjob_kind kind)
{
    struct cjob *j = sess_job(s);
    j->kind = kind;
    j->sp = s->d->sp;
    j->fd = s->spool_fd;
    (void)str_copy(j->id, sizeof j->id, s->srv.tx->id);
    buf_reset(&j->head);
    if (s->spool_fd == -1) {
        struct env_msg m;
        tx_envelope(&s->srv, &m);
        env_encode(&m, &j->head);
        env_free(&m);
    }
    (void)srv_take_body(&s->srv, &j->data);
    j->w.fn = job_run;
    j->w.done = job_done;
    conn_set_state(s->conn, CONN_BUSY);
    tpool_submit(s->d->wq, &j->w);
}

static void sess_free(struct sess *s)
{
    struct smtpd *d = s->d;
    if (s->prev)
        s->prev->next = s->next;
    else
        d->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    d->nsessions--;
    if (!s->trusted && !s->local)
        listener_release(d->lsn, s->srv.client_addr);
    if (s->greet_timer)
        event_free(s->greet_timer);
    if (s->auth_timer)
        event_free(s->auth_timer);
    discard_async(s);
    conn_free(s->conn);
    srv_free(&s->srv);
    conf_free((struct conf *)s->srv.conf);
    if (s->job) {
        buf_free(&s->job->head);
        buf_free(&s->job->data);
        free(s->job);
    }
    free(s);
}

/* Discard an unfinished spool file of this session without blocking the loop (at
 * shutdown, after the workers have stopped, at once). The file was made by this
 * session's last spill job, whose id names it (the session may have dropped its
 * transaction already). */
static void discard_async(struct sess *s)
{
    if (s->spool_fd == -1 || s->job == NULL)
        return;
    const char *id = s->job->id;
    if (s->d->freeing) {
        spool_discard(s->d->sp, id, s->spool_fd);
        s->spool_fd = -1;
        return;
    }
    struct cjob *j = xcalloc(1, sizeof *j);
    j->kind = CJ_DISCARD;
    j->sp = s->d->sp;
    j->fd = s->spool_fd;
    (void)str_copy(j->id, sizeof j->id, id);
    buf_init(&j->head, 0);
    buf_init(&j->data, 0);
    j->w.fn = job_run;
    j->w.done = job_done;
    s->spool_fd = -1;
    tpool_submit(s->d->wq, &j->w);
}

/* A spool file is held only while the transaction that wrote it is open: RSET, EHLO,
 * STARTTLS, QUIT, a rejected or failed message, a lost client all end it. */
static void release_spool(struct sess *s)
{
    if (s->spool_fd != -1 && (s->srv.tx == NULL || s->srv.tx->spilled == 0 ||
        sess_closing(s)))
        discard_async(s);
}

/* Log the message the commit queued and hand it to the queue manager. */
static void queued(struct sess *s, struct env_msg *m, bool gone)
{
    if (gone)
        log_info("%s received from=<%s> nrcpt=%zu client=[%s] sid=%x (client gone)",
            m->id, m->sender, m->nrcpt, s->srv.client_addr, s->sid);
    else if (s->local)
        log_info("%s received from=<%s> size=%llu nrcpt=%zu user=%s sid=%x",
            m->id, m->sender, m->size, m->nrcpt, s->srv.local_user, s->sid);
    else
        log_info("%s received from=<%s> size=%llu nrcpt=%zu client=[%s] sid=%x "
            "proto=%s%s%s", m->id, m->sender, m->size, m->nrcpt, s->srv.client_addr, s->sid,
            srv_proto(&s->srv), s->srv.auth_user[0] ? " sasl_username=" : "",
            s->srv.auth_user);
}

static void job_done(struct tpool_job *w)
{
    struct cjob *j = (struct cjob *)w;
    if (j->kind == CJ_DISCARD) {
        buf_free(&j->head);
        buf_free(&j->data);
        free(j);
        return;
    }
    struct sess *s = j->s;
    struct smtpd *d = s->d;
    buf_reset(&j->data);
    /* A spill leaves the file open for the next chunk; a commit or a failure consumed it. */
    if (j->kind == CJ_SPILL || j->kind == CJ_COMMIT)
        s->spool_fd = j->kind == CJ_SPILL && j->result == 0 ? j->fd : -1;
    if (conn_state(s->conn) == CONN_DEAD) {
        /* The client went away: a spill's file is dropped (by sess_free); a commit stands
         * (the client may send it again: the usual at-least-once duplicate). */
        if (j->kind == CJ_COMMIT && j->result == 0) {
            struct env_msg m;
            tx_envelope(&s->srv, &m);
            queued(s, &m, true);
            qmgr_add_ex(d->qm, &m, false);
        }
        sess_free(s);
        return;
    }
    conn_set_state(s->conn, CONN_OPEN);
    struct srv_out out = { &d->replies, SRV_ACT_NONE };
    if (j->kind == CJ_SPILL) {
        if (j->result != 0) {
            /* Could not store: answer at the end of content; keep reading to resync. */
            log_warnx("%s spool write failed: %s", j->id, strerror(j->result));
            srv_content_store_failed(&s->srv);
        }
    } else {
        struct env_msg m;
        int res = SRV_COMMIT_OK;
        if (j->result == 0) {
            tx_envelope(&s->srv, &m);
            m.size = s->srv.tx->dr.size;
            queued(s, &m, false);
        } else {
            res = (j->result == ENOSPC || j->result == EDQUOT) ? SRV_COMMIT_NOSPACE :
                SRV_COMMIT_FAIL;
            log_warnx("%s not queued: %s client=[%s]", j->id, strerror(j->result),
                s->srv.client_addr);
        }
        srv_commit_done(&s->srv, res, &out);
        send_replies(s, &out);
        if (j->result == 0) {
            d->received++;
            qmgr_add_ex(d->qm, &m, s->trace_hold);
        }
    }
    if (d->shutting_down) {
        /* Stopping: the job's answer (a commit's 250) is out; the rest of what the client
         * sent is not read. It gets the 421 the idle sessions got, and the close. */
        srv_shutdown(&s->srv, &out);
        send_replies(s, &out);
        sess_close(s);
        return;
    }
    sess_process(s);
}

/* ---- TLS ---- */

/* After "220 Ready to start TLS": the connection drops every byte the client sent after
 * STARTTLS, stops reading, and handshakes on the same descriptor once the 220 is out. */
static void start_tls(struct sess *s)
{
    long junk = conn_starttls(s->conn, s->d->tls, CONN_TLS_SERVER, NULL, false);
    if (junk < 0) {
        log_warnx("sid=%x cannot start TLS", s->sid);
        sess_free(s);
        return;
    }
    if (junk > 0)
        log_info("sid=%x client=[%s] discarded %ld octets sent after STARTTLS", s->sid,
            s->srv.client_addr, junk);
}

static void tls_established(struct sess *s)
{
    char info[128];
    conn_tls_info(s->conn, info, sizeof info);
    log_info("sid=%x client=[%s] TLS established: %s", s->sid, s->srv.client_addr, info);
    if (s->kind == LSN_SMTPS) {
        srv_tls_implicit(&s->srv, info);
        greet(s);
        if (evbuffer_get_length(conn_input(s->conn)) > 0)
            sess_process(s);    /* read with the end of the handshake (net/conn.c) */
        return;
    }
    srv_tls_done(&s->srv, info);
    sess_process(s);
}

/* ---- AUTH ---- */

static void auth_reply(struct sess *s)
{
    struct srv_out out = { &s->d->replies, SRV_ACT_NONE };
    if (s->auth_res == AUTH_RES_NONE)
        srv_auth_tempfail(&s->srv, &out);
    else
        srv_auth_done(&s->srv, s->auth_res == AUTH_RES_OK, false, &out);
    if (s->auth_res == AUTH_RES_OK)
        log_info("sid=%x client=[%s] authenticated as %s", s->sid, s->srv.client_addr,
            s->srv.auth_user);
    if (handle_out(s, &out))
        sess_process(s);
}

static void on_auth_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sess *s = arg;
    event_free(s->auth_timer);
    s->auth_timer = NULL;
    if (!sess_closing(s))
        auth_reply(s);
}

/* Answer the AUTH after delay_ms (0: on the next loop turn, never from inside
 * sess_process, so the lines pipelined after it are read in order). */
static void auth_reply_later(struct sess *s, unsigned delay_ms)
{
    struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };
    s->auth_timer = evtimer_new(s->d->base, on_auth_timer, s);
    if (s->auth_timer == NULL || evtimer_add(s->auth_timer, &tv) == -1) {
        log_warnx("sid=%x client=[%s] cannot start a timer: closing", s->sid,
            s->srv.client_addr);
        sess_close(s);
    }
}

/* The password check came back: count it, and answer now or after the penalty delay. */
static void auth_checked(struct sess *s, bool ok)
{
    struct smtpd *d = s->d;
    time_t now = time(NULL);
    s->auth_res = ok ? AUTH_RES_OK : AUTH_RES_FAIL;
    unsigned delay = 0;
    auth_throttle_end(d->throttle, s->srv.client_addr, s->srv.auth_try_user, s->auth_res, now);
    if (!ok) {
        log_info("sid=%x client=[%s] authentication failed", s->sid, s->srv.client_addr);
        (void)auth_throttle_check(d->throttle, s->srv.client_addr, s->srv.auth_try_user, now,
            &delay);
    }
    if (delay == 0) {
        auth_reply(s);
        return;
    }
    auth_reply_later(s, delay);
}

/* On an AUTH worker: result 1 if the password matched, 0 if not (left at -1: never ran). */
static void auth_job_run(struct tpool_job *w)
{
    struct cjob *j = (struct cjob *)w;
    const struct smtp_server *srv = &j->s->srv;
    j->result = auth_db_verify(j->s->d->authdb, srv->auth_try_user, srv->auth_try_pass);
}

static void auth_job_done(struct tpool_job *w)
{
    struct cjob *j = (struct cjob *)w;
    struct sess *s = j->s;
    struct smtpd *d = s->d;
    bool dead = conn_state(s->conn) == CONN_DEAD;
    if (!dead)
        conn_set_state(s->conn, CONN_OPEN);
    if (dead || j->result == -1) {
        /* The client went away (the check still counts), or the pool stopped first. */
        enum auth_result r = j->result == -1 ? AUTH_RES_NONE :
            j->result == 1 ? AUTH_RES_OK : AUTH_RES_FAIL;
        auth_throttle_end(d->throttle, s->srv.client_addr, s->srv.auth_try_user, r,
            time(NULL));
        if (r == AUTH_RES_FAIL)
            log_info("sid=%x client=[%s] authentication failed", s->sid, s->srv.client_addr);
        if (dead) {
            sess_free(s);
            return;
        }
        s->auth_res = r;
        auth_reply(s);
        return;
    }
    auth_checked(s, j->result == 1);
}

/* Refuse an AUTH without a check, with 454: the session goes on. */
static void auth_tempfail(struct sess *s, const char *why)
{
    log_info("sid=%x client=[%s] authentication refused: %s", s->sid, s->srv.client_addr,
        why);
    s->auth_res = AUTH_RES_NONE;
    auth_reply_later(s, 0);
}

static void start_auth(struct sess *s)
{
    struct smtpd *d = s->d;
    const char *addr = s->srv.client_addr, *user = s->srv.auth_try_user;
    /* In-flight checks count against the limits: begin() before the check, end() after. */
    switch (auth_throttle_begin(d->throttle, addr, user, time(NULL))) {
    case AUTH_GATE_LOCKED: {
        struct srv_out out = { &d->replies, SRV_ACT_NONE };
        log_info("sid=%x client=[%s] authentication refused: locked out", s->sid, addr);
        srv_auth_done(&s->srv, false, true, &out);
        (void)handle_out(s, &out);
        return;
    }
    case AUTH_GATE_BUSY:
        auth_tempfail(s, "checks in progress");
        return;
    case AUTH_GATE_OPEN:
    case AUTH_GATE_DELAY:
        break;
    }
    if (tpool_pending(d->auth_wq) >= SMTPD_AUTH_PENDING) {
        auth_throttle_end(d->throttle, addr, user, AUTH_RES_NONE, time(NULL));
        auth_tempfail(s, "too many checks queued");
        return;
    }
    /* crypt() is slow on purpose: check on a worker of the AUTH pool. */
    struct cjob *j = sess_job(s);
    j->kind = CJ_AUTH;
    j->result = -1;
    j->w.fn = auth_job_run;
    j->w.done = auth_job_done;
    conn_set_state(s->conn, CONN_BUSY);
    tpool_submit(d->auth_wq, &j->w);
}

/* ---- input ---- */

/* Send the replies and carry out the action. Returns false when the session stopped
 * reading (closed, freed, busy, or switching to TLS). */
static bool handle_out(struct sess *s, struct srv_out *out)
{
    send_replies(s, out);
    release_spool(s);
    switch (out->act) {
    case SRV_ACT_CLOSE:
        sess_close(s);
        return false;
    case SRV_ACT_COMMIT:
        sess_submit(s, CJ_COMMIT);
        return false;
    case SRV_ACT_ABORT:
        break;      /* release_spool() above */
    case SRV_ACT_STARTTLS:
        start_tls(s);
        return false;
    case SRV_ACT_AUTH:
        start_auth(s);
        return false;
    case SRV_ACT_ETRN: {
        size_t n = qmgr_flush(s->d->qm, s->srv.etrn_arg);
        log_info("sid=%x client=[%s] ETRN %s: %zu message(s)", s->sid, s->srv.client_addr,
            s->srv.etrn_arg, n);
        srv_etrn_done(&s->srv, n, out);
        send_replies(s, out);
        break;
    }
    case SRV_ACT_NONE:
        break;
    }
    out->act = SRV_ACT_NONE;
    return true;
}

/* Feed one command line (or what the input holds of an overlong one). Returns false
 * when there is nothing to feed until more input comes. */
static bool feed_line(struct sess *s, struct evbuffer *in, size_t len, struct srv_out *out)
{
    struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
    if (s->discarding) {
        if (p.pos == -1) {
            evbuffer_drain(in, len);
            return false;
        }
        evbuffer_drain(in, (size_t)p.pos + 1);
        s->discarding = false;
        return true;
    }
    if (p.pos == -1) {
        if (len <= LINE_CAP)
            return false;       /* wait for the rest of the line */
        evbuffer_drain(in, len);
        s->discarding = true;
        srv_line_too_long(&s->srv, out);
    } else if ((size_t)p.pos + 1 > LINE_CAP) {
        evbuffer_drain(in, (size_t)p.pos + 1);
        srv_line_too_long(&s->srv, out);
    } else {
        size_t ll = (size_t)p.pos;
        const char *line = (const char *)evbuffer_pullup(in, (ssize_t)ll + 1);
        if (ll > 0 && line[ll - 1] == '\r')
            srv_feed_line(&s->srv, line, ll - 1, out);
        else
            srv_bare_lf(&s->srv, out);
        evbuffer_drain(in, ll + 1);
    }
    return true;
}

static void sess_process(struct sess *s)
{
    struct smtpd *d = s->d;
    struct evbuffer *in = conn_input(s->conn);
    struct srv_out out = { &d->replies, SRV_ACT_NONE };
    while (conn_state(s->conn) == CONN_OPEN) {
        /* The client is not reading its replies: wait until it does (on_drained). */
        if (conn_out_full(s->conn))
            return;
        enum srv_input mode = srv_input_mode(&s->srv);
        size_t len = evbuffer_get_length(in);
        if (mode == SRV_IN_LINE) {
            if (len == 0)
                break;
            if (!feed_line(s, in, len, &out))
                break;
        } else if (mode == SRV_IN_DATA || mode == SRV_IN_BDAT) {
            if (len == 0)
                break;
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t used = srv_feed_data(&s->srv, v.iov_base, v.iov_len, &out);
            evbuffer_drain(in, used);
            if (out.act == SRV_ACT_NONE && s->srv.tx && s->srv.tx->body.len >= SPILL_AT &&
                srv_input_mode(&s->srv) != SRV_IN_LINE) {
                send_replies(s, &out);
                sess_submit(s, CJ_SPILL);
                return;
            }
        } else {
            break;
        }
        if (!handle_out(s, &out))
            return;
    }
    if (sess_closing(s))
        return;
    set_timeout(s);
    if ((conn_eof(s->conn) || d->shutting_down) && !sess_busy(s)) {
        /* The client half-closed (or we are stopping): answer what it sent, then close. */
        sess_close(s);
    }
}

/* Flush the replies, then free the session (at once in CONN_EV_CLOSED when nothing is
 * queued); with a job in flight, when the job is done. */
static void sess_close(struct sess *s)
{
    if (sess_closing(s))
        return;
    /* A closing session keeps no spool file, even of a transaction that is still open. */
    if (!sess_busy(s))
        discard_async(s);
    conn_close(s->conn);
}

/* ---- connection callbacks ---- */

static void on_input(struct conn *cn, void *arg)
{
    struct sess *s = arg;
    if (!s->greeted) {
        /* Talked before the greeting: not a real SMTP client (RFC 5321 4.3.1). */
        struct srv_out out = { &s->d->replies, SRV_ACT_NONE };
        log_info("sid=%x client=[%s] rejected: talked before the greeting", s->sid,
            s->srv.client_addr);
        evbuffer_drain(conn_input(cn), evbuffer_get_length(conn_input(cn)));
        srv_refuse_talker(&s->srv, &out);
        (void)handle_out(s, &out);
        return;
    }
    sess_process(s);
}

static void on_drained(struct conn *cn, void *arg)
{
    (void)cn;
    sess_process(arg);
}

static void on_event(struct conn *cn, enum conn_event ev, void *arg)
{
    struct sess *s = arg;
    switch (ev) {
    case CONN_EV_TLS:
        tls_established(s);
        return;
    case CONN_EV_CLOSED:
        sess_free(s);
        return;
    case CONN_EV_TIMEOUT_WRITE:
        /* The client stopped reading: nothing more can be said. */
        if (sess_busy(s))
            conn_set_state(cn, CONN_DEAD);
        else
            sess_free(s);
        return;
    case CONN_EV_TIMEOUT_READ: {
        struct srv_out out = { &s->d->replies, SRV_ACT_NONE };
        log_info("sid=%x client=[%s] timeout in state %d", s->sid, s->srv.client_addr,
            (int)s->srv.state);
        srv_timeout(&s->srv, &out);
        send_replies(s, &out);
        sess_close(s);
        return;
    }
    case CONN_EV_EOF:
        if (!sess_busy(s) && !sess_closing(s)) {
            sess_process(s);
            return;
        }
        break;
    case CONN_EV_ERROR:
        if (conn_state(cn) == CONN_TLS_HANDSHAKE) {
            char eb[200];
            conn_tls_error(cn, eb, sizeof eb);
            log_info("sid=%x client=[%s] TLS handshake failed%s%s", s->sid,
                s->srv.client_addr, eb[0] ? ": " : "", eb);
        }
        break;
    case CONN_EV_CONNECTED:
        return;
    }
    /* Error or reset: drop the session; an unfinished message is never acknowledged. */
    if (sess_busy(s)) {
        conn_set_state(cn, CONN_DEAD);
        return;
    }
    sess_free(s);
}

static const struct conn_ops sess_ops = { on_input, on_drained, on_event };

/* ---- sessions ---- */

static void greet(struct sess *s)
{
    struct srv_out out = { &s->d->replies, SRV_ACT_NONE };
    s->greeted = true;
    srv_greet(&s->srv, &out);
    send_replies(s, &out);
    set_timeout(s);
}

static void on_greet_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct sess *s = arg;
    event_free(s->greet_timer);
    s->greet_timer = NULL;
    if (!sess_closing(s))
        greet(s);
}

/* A new session on the list (its connection is the caller's to make). */
static struct sess *sess_new(struct smtpd *d, const char *ip, bool relay)
{
    struct sess *s = xcalloc(1, sizeof *s);
    s->d = d;
    s->spool_fd = -1;
    s->sid = ++d->next_sid;
    s->last_mode = SRV_IN_NONE;
    /* the session keeps the configuration it started with, across reloads */
    srv_init(&s->srv, conf_ref(d->conf), &d->env, ip, relay);
    s->next = d->sessions;
    if (d->sessions)
        d->sessions->prev = s;
    d->sessions = s;
    d->nsessions++;
    return s;
}

/* Make the session's connection on fd (owned from now on); false: the session is gone. */
static bool sess_connect(struct sess *s, int fd, SSL_CTX *tls)
{
    char label[32];
    snprintf(label, sizeof label, "sid=%x", s->sid);
    s->conn = conn_new(s->d->base, fd, tls, IN_MAX, OUT_MAX, &sess_ops, s, label);
    if (s->conn == NULL) {
        if (tls)
            log_warnx("sid=%x cannot start TLS", s->sid);
        sess_free(s);
        return false;
    }
    return true;
}

static void on_accept(void *arg, const struct lsn_peer *p)
{
    struct smtpd *d = arg;
    const struct conf *cf = d->conf;
    bool relay = cidr_list_match(&cf->relay_networks, p->sa);
    struct sess *s = sess_new(d, p->ip, relay);
    s->trusted = p->trusted;
    s->kind = p->kind;
    s->srv.tls_offer = d->tls != NULL && cf->tls && p->kind != LSN_SMTPS;
    s->srv.auth_offer = d->authdb != NULL;
    s->srv.auth_plaintext = cf->auth_plaintext && p->trusted;
    s->srv.require_auth = p->kind != LSN_SMTP;
    s->srv.etrn_ok = cidr_list_match(&cf->etrn_networks, p->sa);
    if (p->kind == LSN_SMTPS) {
        /* Implicit TLS (RFC 8314): the greeting comes after the handshake. */
        if (sess_connect(s, p->fd, d->tls))
            conn_set_timeouts(s->conn, (unsigned)cf->timeout_command,
                (unsigned)cf->timeout_command);
        return;
    }
    if (!sess_connect(s, p->fd, NULL))
        return;
    log_debug("sid=%x connect from [%s]%s%s", s->sid, p->ip, p->trusted ? " trusted" : "",
        relay ? " relay" : "");
    /* A client that spoke before we even accepted it is an early talker too (untrusted
     * clients only, like the greet pause: a trusted one is greeted at once, and whether its
     * first bytes beat accept() must not decide its fate). */
    char peek;
    if (!p->trusted && recv(p->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
        on_input(s->conn, s);
        return;
    }
    if (!p->trusted && cf->greet_pause_ms > 0) {
        struct timeval tv = { cf->greet_pause_ms / 1000, (cf->greet_pause_ms % 1000) * 1000 };
        s->greet_timer = evtimer_new(d->base, on_greet_timer, s);
        evtimer_add(s->greet_timer, &tv);
        conn_set_timeouts(s->conn, (unsigned)cf->timeout_command, 0);
        return;
    }
    greet(s);
}

static size_t lsn_sessions(void *arg)
{
    return ((struct smtpd *)arg)->nsessions;
}

static const struct listener_ops lsn_ops = { on_accept, lsn_sessions };

void smtpd_adopt(struct smtpd *d, int fd, const char *user, bool trace_hold, const char *pre,
    size_t prelen)
{
    struct sess *s = sess_new(d, "127.0.0.1", true);
    s->trusted = true;
    s->local = true;
    s->trace_hold = trace_hold;
    (void)str_copy(s->srv.local_user, sizeof s->srv.local_user, user);
    if (!sess_connect(s, fd, NULL))
        return;
    log_debug("sid=%x local submission by %s", s->sid, user);
    greet(s);
    /* A socket bufferevent's input is frozen at its end (only reads append), but its
     * front is free, and nothing has been read yet. */
    if (prelen && evbuffer_prepend(conn_input(s->conn), pre, prelen) == 0)
        sess_process(s);
}

struct smtpd *smtpd_new(struct event_base *base, struct conf *conf, struct spool *sp,
    struct tpool *wq, struct tpool *auth_wq, struct qmgr *qm, SSL_CTX *tls,
    struct auth_db *authdb, struct auth_senders *senders)
{
    struct smtpd *d = xcalloc(1, sizeof *d);
    d->base = base;
    d->conf = conf_ref(conf);
    d->sp = sp;
    d->wq = wq;
    d->auth_wq = auth_wq;
    d->qm = qm;
    d->tls = tls;
    d->authdb = authdb;
    d->senders = senders;
    d->throttle = auth_throttle_new((unsigned)conf->auth_max_failures, conf->auth_lockout,
        conf->auth_lockout);
    d->env.ctx = d;
    d->env.sender_ok = env_sender_ok;
    d->env.new_id = env_new_id;
    d->env.now = env_now;
    buf_init(&d->replies, 0);
    if ((conf->submission.n || conf->smtps.n) && authdb == NULL)
        log_warnx("submission ports without auth_passwd_file: nobody can send there");
    if (conf->smtps.n && tls == NULL)
        log_fatalx("smtps_listen needs TLS (tls_cert and tls_key, or the self-signed pair)");
    d->lsn = listener_new(base, conf, &lsn_ops, d);
    listener_bind(d->lsn, &conf->listen, LSN_SMTP);
    listener_bind(d->lsn, &conf->submission, LSN_SUBMISSION);
    listener_bind(d->lsn, &conf->smtps, LSN_SMTPS);
    return d;
}

void smtpd_set_conf(struct smtpd *d, struct conf *conf)
{
    struct conf *old = d->conf;
    d->conf = conf_ref(conf);
    conf_free(old);
    listener_set_conf(d->lsn, conf);
}

void smtpd_set_tls(struct smtpd *d, SSL_CTX *tls)
{
    /* Sessions keep the context they started with (SSL objects hold a reference). */
    if (d->tls)
        SSL_CTX_free(d->tls);
    d->tls = tls;
}

void smtpd_shutdown(struct smtpd *d)
{
    d->shutting_down = true;
    listener_close(d->lsn);
    struct sess *s = d->sessions, *next;
    for (; s; s = next) {
        next = s->next;
        /* A commit in flight finishes and answers; then the session closes
         * (sess_process() sees shutting_down). */
        if (sess_closing(s) || sess_busy(s))
            continue;
        struct srv_out out = { &d->replies, SRV_ACT_NONE };
        srv_shutdown(&s->srv, &out);
        send_replies(s, &out);
        sess_close(s);
    }
}

unsigned long long smtpd_received(const struct smtpd *d)
{
    return d->received;
}

size_t smtpd_sessions(const struct smtpd *d)
{
    return d->nsessions;
}

void smtpd_free(struct smtpd *d)
{
    if (d == NULL)
        return;
    d->freeing = true;
    /* tpool_free() ran every completion already: no job is in flight here */
    while (d->sessions)
        sess_free(d->sessions);
    listener_free(d->lsn);
    buf_free(&d->replies);
    auth_throttle_free(d->throttle);
    conf_free(d->conf);
    if (d->tls)
        SSL_CTX_free(d->tls);
    free(d);
}
