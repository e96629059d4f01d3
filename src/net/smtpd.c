/*
 * net/smtpd.c - SMTP listener and connection driver.
 *
 * The driver reads into the bufferevent's capped input, feeds each complete CRLF line (or
 * content bytes in DATA/BDAT) to the session machine in order, and queues its replies;
 * the output is flushed when no complete line is left, which gives PIPELINING for free.
 * Content is handed to the spool on worker threads; while a write or commit is running the
 * connection stops reading, so pipelined commands wait in the input buffer in order.
 *
 * Bounds: each connection is one bufferevent on its socket, plaintext or TLS (STARTTLS
 * replaces the plaintext one with a TLS one on the same descriptor once the 220 has gone
 * out), so one input watermark (IN_MAX) and one output cap (OUT_MAX) bound everything a
 * client can make us hold. A spool file is held only while the transaction that wrote it
 * is open: whatever ends the transaction releases it.
 */
#include "net/smtpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "conf/conf.h"
#include "net/tls.h"
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
#define IPTAB_SIZE      4096

struct smtpd;

struct ipcount {
    char ip[64];
    unsigned n;
    struct ipcount *next;
};

enum cjob_kind { CJ_SPILL, CJ_COMMIT, CJ_DISCARD, CJ_AUTH };

/* What a listening socket serves. */
enum lkind { LK_SMTP, LK_SUBMISSION, LK_SMTPS };

struct lsn {
    struct smtpd *d;
    enum lkind kind;
    struct evconnlistener *l;
};

struct cjob {
    struct tpool_job w;
    struct conn *c;
    enum cjob_kind kind;
    struct spool *sp;
    char id[24];
    int fd;
    struct buf head;            /* envelope, written before the first content */
    struct buf data;
    int result;                 /* 0 or errno; CJ_AUTH: 1 if the password matched, 0 if
                                   not, -1 if the check never ran */
};

struct conn {
    struct smtpd *d;
    struct bufferevent *bev;
    struct smtp_server srv;
    struct event *greet_timer;
    struct cjob *job;           /* storage for this connection's spool jobs */
    int spool_fd;               /* incoming file of the open transaction, or -1 */
    unsigned sid;
    bool trusted;
    enum lkind kind;
    bool tls_handshake;         /* a TLS handshake is running */
    bool tls_switch;            /* STARTTLS: waiting for the 220 to drain, then TLS */
    struct event *auth_timer;   /* failed logins: the reply waits */
    enum auth_result auth_res;  /* result of the password check (NONE: it did not run) */
    bool local;                 /* came in over the control socket */
    bool trace_hold;            /* its messages wait for a TRACE request (sendmail -v) */
    bool greeted, closing, discarding, busy, dead, eof;
    enum srv_input last_mode;
    struct conn *prev, *next;
};

struct smtpd {
    struct event_base *base;
    struct conf *conf;          /* the current configuration (a reference) */
    struct spool *sp;
    struct tpool *wq;
    struct tpool *auth_wq;      /* password checks only: commits never wait behind a hash */
    struct qmgr *qm;
    struct lsn ls[3 * CONF_MAX_LISTEN];
    size_t nls;
    struct srv_env env;
    SSL_CTX *tls;               /* server context, or NULL */
    struct auth_db *authdb;     /* NULL: no AUTH */
    struct auth_senders *senders;
    struct auth_throttle *throttle;
    unsigned long long received;    /* messages queued since start */
    struct conn *conns;
    size_t nconns;
    unsigned next_sid;
    bool shutting_down;
    bool freeing;               /* smtpd_free(): the workers have stopped */
    struct ipcount *iptab[IPTAB_SIZE];
    struct buf replies;         /* scratch for one feed's replies (single-threaded loop) */
};

static void conn_process(struct conn *c);
static void conn_close(struct conn *c);
static void greet(struct conn *c);
static bool handle_out(struct conn *c, struct srv_out *out);
static void start_tls(struct conn *c);
static void start_auth(struct conn *c);
static void auth_checked(struct conn *c, bool ok);
static void tls_established(struct conn *c);
static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static size_t conn_unsent(struct conn *c);
static void release_spool(struct conn *c);
static void discard_async(struct conn *c);

/* ---- per-address counts ---- */

static unsigned ip_hash(const char *ip)
{
    unsigned h = 2166136261u;
    for (; *ip; ip++)
        h = (h ^ (unsigned char)*ip) * 16777619u;
    return h % IPTAB_SIZE;
}

static unsigned ip_add(struct smtpd *d, const char *ip, int delta)
{
    unsigned h = ip_hash(ip);
    struct ipcount **pp = &d->iptab[h], *e;
    for (e = *pp; e; pp = &e->next, e = e->next)
        if (strcmp(e->ip, ip) == 0)
            break;
    if (e == NULL) {
        if (delta < 0)
            return 0;
        e = xcalloc(1, sizeof *e);
        str_copy(e->ip, sizeof e->ip, ip);
        e->next = d->iptab[h];
        d->iptab[h] = e;
        pp = &d->iptab[h];
    }
    e->n = (unsigned)((int)e->n + delta);
    unsigned n = e->n;
    if (n == 0) {
        for (pp = &d->iptab[h]; *pp != e; pp = &(*pp)->next)
            ;
        *pp = e->next;
        free(e);
    }
    return n;
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

static void conn_send(struct conn *c, struct srv_out *out)
{
    if (out->replies->len > 0) {
        bufferevent_write(c->bev, out->replies->p, out->replies->len);
        buf_reset(out->replies);
    }
}

static void set_timeout(struct conn *c)
{
    enum srv_input m = srv_input_mode(&c->srv);
    if (m == c->last_mode)
        return;
    c->last_mode = m;
    const struct conf *cf = c->d->conf;
    struct timeval rd = { (m == SRV_IN_DATA || m == SRV_IN_BDAT) ? cf->timeout_data :
        cf->timeout_command, 0 };
    struct timeval wr = { cf->timeout_command, 0 };
    bufferevent_set_timeouts(c->bev, &rd, &wr);
}

/* ---- spool jobs ---- */

static struct cjob *conn_job(struct conn *c)
{
    if (c->job == NULL) {
        c->job = xcalloc(1, sizeof *c->job);
        c->job->c = c;
        buf_init(&c->job->head, 0);
        buf_init(&c->job->data, 0);
    }
    return c->job;
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
static void conn_submit(struct conn *c, enum cjob_kind kind)
{
    struct cjob *j = conn_job(c);
    struct srv_tx *t = c->srv.tx;
    j->kind = kind;
    j->sp = c->d->sp;
    j->fd = c->spool_fd;
    str_copy(j->id, sizeof j->id, t->id);
    buf_reset(&j->head);
    if (c->spool_fd == -1) {
        struct env_msg m;
        tx_envelope(&c->srv, &m);
        env_encode(&m, &j->head);
        env_free(&m);
    }
    /* Swap the content buffer into the job: no copy. */
    struct buf tmp = j->data;
    j->data = t->body;
    t->body = tmp;
    t->body.max = j->data.max;
    buf_reset(&t->body);
    t->spilled += j->data.len;
    j->w.fn = job_run;
    j->w.done = job_done;
    c->busy = true;
    bufferevent_disable(c->bev, EV_READ);
    tpool_submit(c->d->wq, &j->w);
}

static void conn_free(struct conn *c)
{
    struct smtpd *d = c->d;
    if (c->prev)
        c->prev->next = c->next;
    else
        d->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    d->nconns--;
    if (!c->trusted && !c->local)
        ip_add(d, c->srv.client_addr, -1);
    if (c->greet_timer)
        event_free(c->greet_timer);
    if (c->auth_timer)
        event_free(c->auth_timer);
    discard_async(c);
    if (c->bev)
        bufferevent_free(c->bev);
    srv_free(&c->srv);
    conf_free((struct conf *)c->srv.conf);
    if (c->job) {
        buf_free(&c->job->head);
        buf_free(&c->job->data);
        free(c->job);
    }
    free(c);
}

/* Discard an unfinished spool file of this connection without blocking the loop (at
 * shutdown, after the workers have stopped, at once). The file was made by this
 * connection's last spill job, whose id names it (the session may have dropped its
 * transaction already). */
static void discard_async(struct conn *c)
{
    if (c->spool_fd == -1 || c->job == NULL)
        return;
    const char *id = c->job->id;
    if (c->d->freeing) {
        spool_discard(c->d->sp, id, c->spool_fd);
        c->spool_fd = -1;
        return;
    }
    struct cjob *j = xcalloc(1, sizeof *j);
    j->kind = CJ_DISCARD;
    j->sp = c->d->sp;
    j->fd = c->spool_fd;
    str_copy(j->id, sizeof j->id, id);
    buf_init(&j->head, 0);
    buf_init(&j->data, 0);
    j->w.fn = job_run;
    j->w.done = job_done;
    c->spool_fd = -1;
    tpool_submit(c->d->wq, &j->w);
}

/* A spool file is held only while the transaction that wrote it is open: RSET, EHLO,
 * STARTTLS, QUIT, a rejected or failed message, a lost client all end it. */
static void release_spool(struct conn *c)
{
    if (c->spool_fd != -1 && (c->srv.tx == NULL || c->srv.tx->spilled == 0 || c->closing))
        discard_async(c);
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
    struct conn *c = j->c;
    struct smtpd *d = c->d;
    c->busy = false;
    buf_reset(&j->data);
    /* A spill leaves the file open for the next chunk; a commit or a failure consumed it. */
    if (j->kind == CJ_SPILL || j->kind == CJ_COMMIT)
        c->spool_fd = j->kind == CJ_SPILL && j->result == 0 ? j->fd : -1;
    if (c->dead) {
        /* The client went away: a spill's file is dropped (by conn_free); a commit stands
         * (the client may send it again: the usual at-least-once duplicate). */
        if (j->kind == CJ_COMMIT && j->result == 0) {
            struct env_msg m;
            tx_envelope(&c->srv, &m);
            log_info("%s received from=<%s> nrcpt=%zu client=[%s] sid=%x (client gone)",
                m.id, m.sender, m.nrcpt, c->srv.client_addr, c->sid);
            qmgr_add_ex(d->qm, &m, false);
        }
        conn_free(c);
        return;
    }
    struct srv_out out = { &d->replies, SRV_ACT_NONE };
    if (j->kind == CJ_SPILL) {
        if (j->result != 0) {
            /* Could not store: answer at the end of content; keep reading to resync.
             * OVERSIZE stops buffering the rest; store_failed makes the reply 452. */
            log_warnx("%s spool write failed: %s", j->id, strerror(j->result));
            c->srv.tx->dr.flags |= DATA_F_OVERSIZE;
            c->srv.tx->store_failed = true;
        }
    } else {
        struct env_msg m;
        int res = SRV_COMMIT_OK;
        if (j->result == 0) {
            tx_envelope(&c->srv, &m);
            m.size = c->srv.tx->dr.size;
            if (c->local)
                log_info("%s received from=<%s> size=%llu nrcpt=%zu user=%s sid=%x",
                    m.id, m.sender, m.size, m.nrcpt, c->srv.local_user, c->sid);
            else
                log_info("%s received from=<%s> size=%llu nrcpt=%zu client=[%s] sid=%x "
                    "proto=%s%s%s", m.id, m.sender, m.size, m.nrcpt, c->srv.client_addr, c->sid,
                    srv_proto(&c->srv), c->srv.auth_user[0] ? " sasl_username=" : "",
                    c->srv.auth_user);
        } else {
            res = (j->result == ENOSPC || j->result == EDQUOT) ? SRV_COMMIT_NOSPACE :
                SRV_COMMIT_FAIL;
            log_warnx("%s not queued: %s client=[%s]", j->id, strerror(j->result),
                c->srv.client_addr);
        }
        srv_commit_done(&c->srv, res, &out);
        conn_send(c, &out);
        if (j->result == 0) {
            d->received++;
            qmgr_add_ex(d->qm, &m, c->trace_hold);
        }
    }
    if (!c->closing)
        bufferevent_enable(c->bev, EV_READ);
    conn_process(c);
}

/* ---- TLS ---- */

/* Make the connection a TLS server on fd (the bufferevent owns it from now on). */
static void tls_wrap(struct conn *c, evutil_socket_t fd)
{
    struct smtpd *d = c->d;
    SSL *ssl = SSL_new(d->tls);
    struct bufferevent *b = ssl == NULL ? NULL : bufferevent_openssl_socket_new(d->base, fd,
        ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
    if (b == NULL) {
        log_warnx("sid=%x cannot start TLS", c->sid);
        if (ssl)
            SSL_free(ssl);
        close(fd);
        c->bev = NULL;
        return;
    }
    c->bev = b;
    c->tls_handshake = true;
    bufferevent_setcb(b, on_read, on_write, on_event, c);
    bufferevent_setwatermark(b, EV_READ, 0, IN_MAX);
    struct timeval tv = { d->conf->timeout_command, 0 };
    bufferevent_set_timeouts(b, &tv, &tv);
    bufferevent_enable(b, EV_READ | EV_WRITE);
}

/* The 220 has reached the kernel: put TLS on the same descriptor, in a bufferevent of its
 * own (one layer, so one set of bounds). Nothing was read since STARTTLS, so the
 * ClientHello is still in the socket. */
static void tls_switch(struct conn *c)
{
    c->tls_switch = false;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    int nfd = fd == -1 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
    bufferevent_free(c->bev);
    c->bev = NULL;
    if (nfd == -1) {
        log_warn("sid=%x cannot start TLS", c->sid);
        conn_free(c);
        return;
    }
    tls_wrap(c, nfd);
    if (c->bev == NULL)
        conn_free(c);
}

/* After "220 Ready to start TLS": drop every byte the client sent after STARTTLS (they were
 * sent in plaintext and must never be read as commands inside TLS: CVE-2011-0411), stop
 * reading, and handshake once the 220 is out. */
static void start_tls(struct conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t junk = evbuffer_get_length(in);
    if (junk) {
        evbuffer_drain(in, junk);
        log_info("sid=%x client=[%s] discarded %zu octets sent after STARTTLS", c->sid,
            c->srv.client_addr, junk);
    }
    bufferevent_disable(c->bev, EV_READ);
    c->tls_switch = true;
    if (conn_unsent(c) == 0) {
        tls_switch(c);
        return;
    }
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_enable(c->bev, EV_WRITE);
}

static void tls_established(struct conn *c)
{
    c->tls_handshake = false;
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    char info[128] = "TLS";
    if (ssl)
        tls_describe(ssl, info, sizeof info);
    log_info("sid=%x client=[%s] TLS established: %s", c->sid, c->srv.client_addr, info);
    if (c->kind == LK_SMTPS) {
        srv_tls_implicit(&c->srv, info);
        greet(c);
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
            conn_process(c);    /* read with the end of the handshake (see on_read) */
        return;
    }
    srv_tls_done(&c->srv, info);
    conn_process(c);
}

/* ---- AUTH ---- */

static void auth_reply(struct conn *c)
{
    struct srv_out out = { &c->d->replies, SRV_ACT_NONE };
    if (c->auth_res == AUTH_RES_NONE)
        srv_auth_tempfail(&c->srv, &out);
    else
        srv_auth_done(&c->srv, c->auth_res == AUTH_RES_OK, false, &out);
    if (c->auth_res == AUTH_RES_OK)
        log_info("sid=%x client=[%s] authenticated as %s", c->sid, c->srv.client_addr,
            c->srv.auth_user);
    if (handle_out(c, &out))
        conn_process(c);
}

static void on_auth_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    event_free(c->auth_timer);
    c->auth_timer = NULL;
    if (!c->closing)
        auth_reply(c);
}

/* Answer the AUTH after delay_ms (0: on the next loop turn, never from inside conn_process,
 * so the lines pipelined after it are read in order). */
static void auth_reply_later(struct conn *c, unsigned delay_ms)
{
    struct timeval tv = { delay_ms / 1000, (delay_ms % 1000) * 1000 };
    c->auth_timer = evtimer_new(c->d->base, on_auth_timer, c);
    if (c->auth_timer == NULL || evtimer_add(c->auth_timer, &tv) == -1) {
        log_warnx("sid=%x client=[%s] cannot start a timer: closing", c->sid,
            c->srv.client_addr);
        conn_close(c);
    }
}

/* The password check came back: count it, and answer now or after the penalty delay. */
static void auth_checked(struct conn *c, bool ok)
{
    struct smtpd *d = c->d;
    time_t now = time(NULL);
    c->auth_res = ok ? AUTH_RES_OK : AUTH_RES_FAIL;
    unsigned delay = 0;
    auth_throttle_end(d->throttle, c->srv.client_addr, c->srv.auth_try_user, c->auth_res, now);
    if (!ok) {
        log_info("sid=%x client=[%s] authentication failed", c->sid, c->srv.client_addr);
        (void)auth_throttle_check(d->throttle, c->srv.client_addr, c->srv.auth_try_user, now,
            &delay);
    }
    if (!c->closing)
        bufferevent_enable(c->bev, EV_READ);
    if (delay == 0) {
        auth_reply(c);
        return;
    }
    auth_reply_later(c, delay);
}

/* On an AUTH worker: result 1 if the password matched, 0 if not (left at -1: never ran). */
static void auth_job_run(struct tpool_job *w)
{
    struct cjob *j = (struct cjob *)w;
    const struct smtp_server *s = &j->c->srv;
    j->result = auth_db_verify(j->c->d->authdb, s->auth_try_user, s->auth_try_pass);
}

static void auth_job_done(struct tpool_job *w)
{
    struct cjob *j = (struct cjob *)w;
    struct conn *c = j->c;
    struct smtpd *d = c->d;
    c->busy = false;
    if (c->dead || j->result == -1) {
        /* The client went away (the check still counts), or the pool stopped first. */
        enum auth_result r = j->result == -1 ? AUTH_RES_NONE :
            j->result == 1 ? AUTH_RES_OK : AUTH_RES_FAIL;
        auth_throttle_end(d->throttle, c->srv.client_addr, c->srv.auth_try_user, r,
            time(NULL));
        if (r == AUTH_RES_FAIL)
            log_info("sid=%x client=[%s] authentication failed", c->sid, c->srv.client_addr);
        if (c->dead) {
            conn_free(c);
            return;
        }
        c->auth_res = r;
        if (!c->closing)
            bufferevent_enable(c->bev, EV_READ);
        auth_reply(c);
        return;
    }
    auth_checked(c, j->result == 1);
}

/* Refuse an AUTH without a check, with 454: the session goes on. */
static void auth_tempfail(struct conn *c, const char *why)
{
    log_info("sid=%x client=[%s] authentication refused: %s", c->sid, c->srv.client_addr,
        why);
    c->auth_res = AUTH_RES_NONE;
    auth_reply_later(c, 0);
}

static void start_auth(struct conn *c)
{
    struct smtpd *d = c->d;
    const char *addr = c->srv.client_addr, *user = c->srv.auth_try_user;
    /* In-flight checks count against the limits: begin() before the check, end() after. */
    switch (auth_throttle_begin(d->throttle, addr, user, time(NULL))) {
    case AUTH_GATE_LOCKED: {
        struct srv_out out = { &d->replies, SRV_ACT_NONE };
        log_info("sid=%x client=[%s] authentication refused: locked out", c->sid, addr);
        srv_auth_done(&c->srv, false, true, &out);
        handle_out(c, &out);
        return;
    }
    case AUTH_GATE_BUSY:
        auth_tempfail(c, "checks in progress");
        return;
    case AUTH_GATE_OPEN:
    case AUTH_GATE_DELAY:
        break;
    }
    if (tpool_pending(d->auth_wq) >= SMTPD_AUTH_PENDING) {
        auth_throttle_end(d->throttle, addr, user, AUTH_RES_NONE, time(NULL));
        auth_tempfail(c, "too many checks queued");
        return;
    }
    /* crypt() is slow on purpose: check on a worker of the AUTH pool. */
    struct cjob *j = conn_job(c);
    j->kind = CJ_AUTH;
    j->result = -1;
    j->w.fn = auth_job_run;
    j->w.done = auth_job_done;
    c->busy = true;
    bufferevent_disable(c->bev, EV_READ);
    tpool_submit(d->auth_wq, &j->w);
}

/* ---- input ---- */

static bool handle_out(struct conn *c, struct srv_out *out)
{
    conn_send(c, out);
    release_spool(c);
    switch (out->act) {
    case SRV_ACT_CLOSE:
        conn_close(c);
        return false;
    case SRV_ACT_COMMIT:
        conn_submit(c, CJ_COMMIT);
        return false;
    case SRV_ACT_ABORT:
        break;      /* release_spool() above */
    case SRV_ACT_STARTTLS:
        start_tls(c);
        return false;
    case SRV_ACT_AUTH:
        start_auth(c);
        return false;
    case SRV_ACT_ETRN: {
        size_t n = qmgr_flush(c->d->qm, c->srv.etrn_arg);
        log_info("sid=%x client=[%s] ETRN %s: %zu message(s)", c->sid, c->srv.client_addr,
            c->srv.etrn_arg, n);
        srv_etrn_done(&c->srv, n, out);
        conn_send(c, out);
        break;
    }
    case SRV_ACT_NONE:
        break;
    }
    out->act = SRV_ACT_NONE;
    return true;
}

static void conn_process(struct conn *c)
{
    struct smtpd *d = c->d;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    struct srv_out out = { &d->replies, SRV_ACT_NONE };
    while (!c->closing && !c->busy) {
        if (conn_unsent(c) > OUT_MAX) {
            /* The client is not reading its replies: wait until it does. */
            bufferevent_disable(c->bev, EV_READ);
            bufferevent_setwatermark(c->bev, EV_WRITE, OUT_MAX / 2, 0);
            return;
        }
        enum srv_input mode = srv_input_mode(&c->srv);
        size_t len = evbuffer_get_length(in);
        if (mode == SRV_IN_LINE) {
            if (len == 0)
                break;
            struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
            if (c->discarding) {
                if (p.pos == -1) {
                    evbuffer_drain(in, len);
                    break;
                }
                evbuffer_drain(in, (size_t)p.pos + 1);
                c->discarding = false;
                continue;
            }
            if (p.pos == -1) {
                if (len <= LINE_CAP)
                    break;      /* wait for the rest of the line */
                evbuffer_drain(in, len);
                c->discarding = true;
                srv_line_too_long(&c->srv, &out);
            } else if ((size_t)p.pos + 1 > LINE_CAP) {
                evbuffer_drain(in, (size_t)p.pos + 1);
                srv_line_too_long(&c->srv, &out);
            } else {
                size_t ll = (size_t)p.pos;
                const char *line = (const char *)evbuffer_pullup(in, (ssize_t)ll + 1);
                if (ll > 0 && line[ll - 1] == '\r')
                    srv_feed_line(&c->srv, line, ll - 1, &out);
                else
                    srv_bare_lf(&c->srv, &out);
                evbuffer_drain(in, ll + 1);
            }
        } else if (mode == SRV_IN_DATA || mode == SRV_IN_BDAT) {
            if (len == 0)
                break;
            struct evbuffer_iovec v;
            if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
                break;
            size_t used = srv_feed_data(&c->srv, v.iov_base, v.iov_len, &out);
            evbuffer_drain(in, used);
            if (out.act == SRV_ACT_NONE && c->srv.tx && c->srv.tx->body.len >= SPILL_AT &&
                srv_input_mode(&c->srv) != SRV_IN_LINE) {
                conn_send(c, &out);
                conn_submit(c, CJ_SPILL);
                return;
            }
        } else {
            break;
        }
        if (!handle_out(c, &out))
            return;
    }
    if (!c->closing)
        set_timeout(c);
    if (c->eof && !c->busy && !c->closing) {
        /* The client half-closed: answer what it sent, then close. */
        conn_close(c);
    }
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (c->tls_handshake) {
        /* Commands that came in the same read as the end of the handshake wait for
         * tls_established(): the session must be reset (and TLS noted) before them. */
        return;
    }
    if (!c->greeted) {
        /* Talked before the greeting: not a real SMTP client (RFC 5321 4.3.1). */
        struct srv_out out = { &c->d->replies, SRV_ACT_NONE };
        buf_printf(out.replies, "554 5.5.0 %s Error: talking before the greeting\r\n",
            c->d->conf->hostname);
        conn_send(c, &out);
        log_info("sid=%x client=[%s] rejected: talked before the greeting", c->sid,
            c->srv.client_addr);
        evbuffer_drain(bufferevent_get_input(c->bev),
            evbuffer_get_length(bufferevent_get_input(c->bev)));
        conn_close(c);
        return;
    }
    conn_process(c);
}

/* Octets not yet handed to the kernel. */
static size_t conn_unsent(struct conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    if (c->closing) {
        if (conn_unsent(c) == 0 && !c->busy)
            conn_free(c);
        return;
    }
    if (c->tls_switch) {
        if (conn_unsent(c) == 0)
            tls_switch(c);
        return;
    }
    /* Replies drained below the mark: read again. */
    bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
    if (!c->busy) {
        bufferevent_enable(bev, EV_READ);
        conn_process(c);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        tls_established(c);
        return;
    }
    if ((what & BEV_EVENT_ERROR) && c->tls_handshake) {
        unsigned long e = bufferevent_get_openssl_error(c->bev);
        char eb[200] = "";
        if (e)
            ERR_error_string_n(e, eb, sizeof eb);
        log_info("sid=%x client=[%s] TLS handshake failed%s%s", c->sid, c->srv.client_addr,
            eb[0] ? ": " : "", eb);
    }
    if (what & BEV_EVENT_TIMEOUT) {
        struct srv_out out = { &c->d->replies, SRV_ACT_NONE };
        if (what & BEV_EVENT_WRITING) {
            /* The client stopped reading: nothing more can be said. */
            c->closing = true;
            c->dead = c->busy;
            if (!c->busy)
                conn_free(c);
            return;
        }
        log_info("sid=%x client=[%s] timeout in state %d", c->sid, c->srv.client_addr,
            (int)c->srv.state);
        srv_timeout(&c->srv, &out);
        conn_send(c, &out);
        conn_close(c);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        c->eof = true;
        if (!c->closing && !c->busy) {
            conn_process(c);
            return;
        }
    }
    /* Error or reset: drop the connection; an unfinished message is never acknowledged. */
    if (c->busy) {
        c->dead = true;
        c->closing = true;
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        return;
    }
    conn_free(c);
}

/* Flush the replies, then free the connection. */
static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    if (!c->busy)
        release_spool(c);
    /* Nothing more will be read: a half-close lets the client see our last reply. */
    if (conn_unsent(c) == 0) {
        if (c->busy)
            c->dead = true;
        else
            conn_free(c);
        return;
    }
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    bufferevent_enable(c->bev, EV_WRITE);
}

static void greet(struct conn *c)
{
    struct srv_out out = { &c->d->replies, SRV_ACT_NONE };
    c->greeted = true;
    srv_greet(&c->srv, &out);
    conn_send(c, &out);
    set_timeout(c);
}

static void on_greet_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    event_free(c->greet_timer);
    c->greet_timer = NULL;
    if (!c->closing)
        greet(c);
}

static void addr_text(const struct sockaddr *sa, char *out, size_t osz)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)osz);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)osz);
    } else if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
            (socklen_t)osz);
    } else {
        str_copy(out, osz, "unknown");
    }
}

static void refuse(evutil_socket_t fd, const char *msg)
{
    ssize_t w = send(fd, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    close(fd);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
    (void)l;
    (void)salen;
    struct lsn *ln = arg;
    struct smtpd *d = ln->d;
    const struct conf *cf = d->conf;
    char ip[64];
    addr_text(sa, ip, sizeof ip);
    char msg[300];
    if (d->shutting_down) {
        snprintf(msg, sizeof msg, "421 4.3.2 %s Service shutting down\r\n", cf->hostname);
        refuse(fd, msg);
        return;
    }
    if (d->nconns >= cf->max_connections) {
        snprintf(msg, sizeof msg, "421 4.7.0 %s Error: too many connections\r\n",
            cf->hostname);
        log_info("client=[%s] refused: %zu connections (max_connections)", ip, d->nconns);
        refuse(fd, msg);
        return;
    }
    bool trusted = cidr_list_match(&cf->trusted_networks, sa);
    if (!trusted && cf->max_connections_per_ip > 0 &&
        ip_add(d, ip, 0) >= cf->max_connections_per_ip) {
        snprintf(msg, sizeof msg, "421 4.7.0 %s Error: too many connections from %s\r\n",
            cf->hostname, ip);
        log_info("client=[%s] refused: too many connections from this address", ip);
        refuse(fd, msg);
        return;
    }
    struct conn *c = xcalloc(1, sizeof *c);
    c->d = d;
    c->spool_fd = -1;
    c->sid = ++d->next_sid;
    c->trusted = trusted;
    c->kind = ln->kind;
    c->last_mode = SRV_IN_NONE;
    bool relay = cidr_list_match(&cf->relay_networks, sa);
    /* the session keeps the configuration it started with, across reloads */
    srv_init(&c->srv, conf_ref(d->conf), &d->env, ip, relay);
    c->srv.tls_offer = d->tls != NULL && cf->tls && ln->kind != LK_SMTPS;
    c->srv.auth_offer = d->authdb != NULL;
    c->srv.auth_plaintext = cf->auth_plaintext && trusted;
    c->srv.require_auth = ln->kind != LK_SMTP;
    c->srv.etrn_ok = cidr_list_match(&cf->etrn_networks, sa);
    if (!trusted)
        ip_add(d, ip, 1);
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;
    if (ln->kind == LK_SMTPS) {
        /* Implicit TLS (RFC 8314): the greeting comes after the handshake. */
        tls_wrap(c, fd);
        if (c->bev == NULL)
            conn_free(c);
        return;
    }
    c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        conn_free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, IN_MAX);
    bufferevent_enable(c->bev, EV_READ);
    log_debug("sid=%x connect from [%s]%s%s", c->sid, ip, trusted ? " trusted" : "",
        relay ? " relay" : "");
    /* A client that spoke before we even accepted it is an early talker too (untrusted
     * clients only, like the greet pause: a trusted one is greeted at once, and whether its
     * first bytes beat accept() must not decide its fate). */
    char peek;
    if (!trusted && recv(fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT) == 1) {
        on_read(c->bev, c);
        return;
    }
    if (!trusted && cf->greet_pause_ms > 0) {
        struct timeval tv = { cf->greet_pause_ms / 1000, (cf->greet_pause_ms % 1000) * 1000 };
        c->greet_timer = evtimer_new(d->base, on_greet_timer, c);
        evtimer_add(c->greet_timer, &tv);
        struct timeval rd = { cf->timeout_command, 0 };
        bufferevent_set_timeouts(c->bev, &rd, NULL);
        return;
    }
    greet(c);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    (void)l;
    (void)arg;
    /* EMFILE and friends: log and carry on; libevent retries on the next event. */
    log_warn("accept");
}

void smtpd_adopt(struct smtpd *d, int fd, const char *user, bool trace_hold, const char *pre,
    size_t prelen)
{
    struct conn *c = xcalloc(1, sizeof *c);
    c->d = d;
    c->spool_fd = -1;
    c->sid = ++d->next_sid;
    c->trusted = true;
    c->local = true;
    c->trace_hold = trace_hold;
    c->last_mode = SRV_IN_NONE;
    srv_init(&c->srv, conf_ref(d->conf), &d->env, "127.0.0.1", true);
    str_copy(c->srv.local_user, sizeof c->srv.local_user, user);
    c->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->next = d->conns;
    if (d->conns)
        d->conns->prev = c;
    d->conns = c;
    d->nconns++;
    if (c->bev == NULL) {
        close(fd);
        conn_free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, IN_MAX);
    bufferevent_enable(c->bev, EV_READ);
    log_debug("sid=%x local submission by %s", c->sid, user);
    greet(c);
    /* A socket bufferevent's input is frozen at its end (only reads append), but its
     * front is free, and nothing has been read yet. */
    if (prelen && evbuffer_prepend(bufferevent_get_input(c->bev), pre, prelen) == 0)
        conn_process(c);
}

static void bind_set(struct smtpd *d, const struct conf_listen_set *set, enum lkind kind)
{
    static const char *names[] = { "smtp", "submission", "smtps" };
    for (size_t i = 0; i < set->n; i++) {
        const struct conf_listen *cl = &set->v[i];
        struct sockaddr_storage ss;
        socklen_t sl;
        memset(&ss, 0, sizeof ss);
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, cl->host, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)cl->port);
            sl = sizeof *s4;
        } else if (inet_pton(AF_INET6, cl->host, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)cl->port);
            sl = sizeof *s6;
        } else {
            log_fatalx("listen: bad address %s", cl->host);
        }
        struct lsn *ln = &d->ls[d->nls];
        ln->d = d;
        ln->kind = kind;
        ln->l = evconnlistener_new_bind(d->base, on_accept, ln,
            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 4096,
            (struct sockaddr *)&ss, (int)sl);
        if (ln->l == NULL)
            log_fatal("cannot listen on %s port %d", cl->host, cl->port);
        evconnlistener_set_error_cb(ln->l, on_accept_error);
        d->nls++;
        log_info("listening on %s%s%s:%d (%s)", strchr(cl->host, ':') ? "[" : "", cl->host,
            strchr(cl->host, ':') ? "]" : "", cl->port, names[kind]);
    }
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
    bind_set(d, &conf->listen, LK_SMTP);
    bind_set(d, &conf->submission, LK_SUBMISSION);
    bind_set(d, &conf->smtps, LK_SMTPS);
    return d;
}

void smtpd_set_conf(struct smtpd *d, struct conf *conf)
{
    struct conf *old = d->conf;
    d->conf = conf_ref(conf);
    conf_free(old);
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
    for (size_t i = 0; i < d->nls; i++) {
        evconnlistener_free(d->ls[i].l);
        d->ls[i].l = NULL;
    }
    d->nls = 0;
    struct conn *c = d->conns, *next;
    for (; c; c = next) {
        next = c->next;
        if (c->closing)
            continue;
        if (c->busy) {
            /* A commit in flight finishes and answers; then the session closes. */
            c->eof = true;
            continue;
        }
        struct srv_out out = { &d->replies, SRV_ACT_NONE };
        srv_shutdown(&c->srv, &out);
        conn_send(c, &out);
        conn_close(c);
    }
}

unsigned long long smtpd_received(const struct smtpd *d)
{
    return d->received;
}

size_t smtpd_sessions(const struct smtpd *d)
{
    return d->nconns;
}

void smtpd_free(struct smtpd *d)
{
    if (d == NULL)
        return;
    d->freeing = true;
    for (size_t i = 0; i < d->nls; i++)
        evconnlistener_free(d->ls[i].l);
    while (d->conns) {
        struct conn *c = d->conns;
        if (c->busy) {
            /* tpool_free() ran the completion already; nothing should be busy here */
            c->busy = false;
        }
        conn_free(c);
    }
    for (size_t i = 0; i < IPTAB_SIZE; i++) {
        while (d->iptab[i]) {
            struct ipcount *e = d->iptab[i];
            d->iptab[i] = e->next;
            free(e);
        }
    }
    buf_free(&d->replies);
    auth_throttle_free(d->throttle);
    conf_free(d->conf);
    if (d->tls)
        SSL_CTX_free(d->tls);
    free(d);
}
