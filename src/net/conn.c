/*
 * net/conn.c - one network connection: buffered I/O, TLS, bounds, timeouts, state.
 *
 * Owns:  the bufferevent (plaintext or TLS, never stacked: a STARTTLS upgrade duplicates
 *        the descriptor, frees the plaintext bufferevent and puts a TLS one on the copy),
 *        the SSL object, the input watermark and the output cap, the timeouts, and the
 *        lifecycle state with its one setter.
 * Never: reads a protocol; its owner reads conn_input() in on_input and decides.
 * Limits: in_max (read ahead), out_max (unsent output before reading pauses).
 */
#include "net/conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "net/tls.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

struct conn {
    struct event_base *base;
    struct bufferevent *bev;
    enum conn_state state;
    const struct conn_ops *ops;
    void *arg;
    size_t in_max, out_max;
    unsigned rd, wr;            /* timeouts in seconds, 0: none */
    bool paused;                /* conn_out_full() stopped reading: the peer does not read */
    bool eof;                   /* the peer half-closed */
    bool verify;                /* client TLS: the chain and name are checked */
    SSL *pend_ssl;              /* CONN_WAIT_DRAIN: the SSL for the coming handshake */
    enum conn_tls_role pend_role;
    char err[160];              /* last socket error text */
    char label[32];
};

static void cb_read(struct bufferevent *bev, void *arg);
static void cb_write(struct bufferevent *bev, void *arg);
static void cb_event(struct bufferevent *bev, short what, void *arg);

const char *conn_state_name(enum conn_state st)
{
    switch (st) {
    case CONN_OPEN:             return "OPEN";
    case CONN_CONNECTING:       return "CONNECTING";
    case CONN_TLS_HANDSHAKE:    return "TLS_HANDSHAKE";
    case CONN_WAIT_DRAIN:       return "WAIT_DRAIN";
    case CONN_BUSY:             return "BUSY";
    case CONN_CLOSING:          return "CLOSING";
    case CONN_DEAD:             return "DEAD";
    }
    return "?";
}

static void apply_timeouts(struct conn *c)
{
    struct timeval rd = { (time_t)c->rd, 0 }, wr = { (time_t)c->wr, 0 };
    bufferevent_set_timeouts(c->bev, c->rd ? &rd : NULL, c->wr ? &wr : NULL);
}

/* Give c the bufferevent b: callbacks, the input watermark, the timeouts. */
static void attach(struct conn *c, struct bufferevent *b, short enable)
{
    c->bev = b;
    bufferevent_setcb(b, cb_read, cb_write, cb_event, c);
    bufferevent_setwatermark(b, EV_READ, 0, c->in_max);
    apply_timeouts(c);
    bufferevent_enable(b, enable);
}

static struct conn *conn_alloc(struct event_base *base, size_t in_max, size_t out_max,
    const struct conn_ops *ops, void *arg, const char *label)
{
    struct conn *c = xcalloc(1, sizeof *c);
    c->base = base;
    c->in_max = in_max;
    c->out_max = out_max;
    c->ops = ops;
    c->arg = arg;
    (void)str_copy(c->label, sizeof c->label, label ? label : "conn");
    return c;
}

struct conn *conn_new(struct event_base *base, int fd, SSL_CTX *tls, size_t in_max,
    size_t out_max, const struct conn_ops *ops, void *arg, const char *label)
{
    struct conn *c = conn_alloc(base, in_max, out_max, ops, arg, label);
    struct bufferevent *b;
    if (tls) {
        SSL *ssl = SSL_new(tls);
        b = ssl == NULL ? NULL : bufferevent_openssl_socket_new(base, fd, ssl,
            BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
        if (b == NULL && ssl)
            SSL_free(ssl);
        c->state = CONN_TLS_HANDSHAKE;
    } else {
        b = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
        c->state = CONN_OPEN;
    }
    if (b == NULL) {
        close(fd);
        free(c);
        return NULL;
    }
    attach(c, b, tls ? EV_READ | EV_WRITE : EV_READ);
    return c;
}

struct conn *conn_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
    size_t in_max, size_t out_max, const struct conn_ops *ops, void *arg, const char *label)
{
    struct bufferevent *b = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (b == NULL)
        return NULL;
    struct conn *c = conn_alloc(base, in_max, out_max, ops, arg, label);
    c->state = CONN_CONNECTING;
    attach(c, b, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(b, (struct sockaddr *)(uintptr_t)sa, (int)salen) == -1) {
        /* immediate failure: the event callback may not run */
        conn_free(c);
        return NULL;
    }
    return c;
}

void conn_free(struct conn *c)
{
    if (c == NULL)
        return;
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->pend_ssl)
        SSL_free(c->pend_ssl);
    free(c);
}

int conn_release_fd(struct conn *c)
{
    if (c->bev == NULL || bufferevent_openssl_get_ssl(c->bev) != NULL) {
        conn_free(c);
        return -1;
    }
    int fd = (int)bufferevent_getfd(c->bev);
    bufferevent_setfd(c->bev, -1);
    conn_free(c);
    return fd;
}

void conn_set_state(struct conn *c, enum conn_state st)
{
    enum conn_state old = c->state;
    if (old == st)
        return;
    log_debug("%s conn %s -> %s", c->label, conn_state_name(old), conn_state_name(st));
    c->state = st;
    switch (st) {
    case CONN_BUSY:
        bufferevent_disable(c->bev, EV_READ);
        break;
    case CONN_CLOSING:
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_enable(c->bev, EV_WRITE);
        break;
    case CONN_DEAD:
        bufferevent_disable(c->bev, EV_READ | EV_WRITE);
        break;
    case CONN_OPEN:
        if (old == CONN_BUSY)
            bufferevent_enable(c->bev, EV_READ);
        break;
    case CONN_CONNECTING:
    case CONN_TLS_HANDSHAKE:
    case CONN_WAIT_DRAIN:
        break;
    }
}

enum conn_state conn_state(const struct conn *c)
{
    return c->state;
}

struct evbuffer *conn_input(struct conn *c)
{
    return bufferevent_get_input(c->bev);
}

struct evbuffer *conn_output(struct conn *c)
{
    return bufferevent_get_output(c->bev);
}

int conn_write(struct conn *c, const void *p, size_t n)
{
    return n == 0 ? 0 : bufferevent_write(c->bev, p, n);
}

size_t conn_unsent(const struct conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

bool conn_out_full(struct conn *c)
{
    if (c->out_max == 0 || conn_unsent(c) <= c->out_max)
        return false;
    /* The peer is not reading what we say: wait until it has taken half of it. */
    c->paused = true;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, c->out_max / 2, 0);
    return true;
}

void conn_read(struct conn *c, bool on)
{
    if (on)
        bufferevent_enable(c->bev, EV_READ);
    else
        bufferevent_disable(c->bev, EV_READ);
}

void conn_set_timeouts(struct conn *c, unsigned rd, unsigned wr)
{
    c->rd = rd;
    c->wr = wr;
    apply_timeouts(c);
}

bool conn_eof(const struct conn *c)
{
    return c->eof;
}

int conn_fd(const struct conn *c)
{
    return c->bev ? (int)bufferevent_getfd(c->bev) : -1;
}

const char *conn_error(const struct conn *c)
{
    return c->err;
}

void conn_close(struct conn *c)
{
    switch (c->state) {
    case CONN_CLOSING:
    case CONN_DEAD:
        return;
    case CONN_BUSY:
        conn_set_state(c, CONN_DEAD);
        return;
    default:
        break;
    }
    conn_set_state(c, CONN_CLOSING);
    if (conn_unsent(c) == 0)
        c->ops->on_event(c, CONN_EV_CLOSED, c->arg);
}

/* ---- TLS ---- */

/* Put TLS on a copy of the descriptor, in a bufferevent of its own (one layer, so one set
 * of bounds). Nothing was read since STARTTLS, so the peer's first handshake bytes are
 * still in the socket. Returns 0 or -1 (the plaintext bufferevent is left as it was). */
static int tls_swap(struct conn *c)
{
    SSL *ssl = c->pend_ssl;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    int nfd = fd == -1 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 0);
    struct bufferevent *b = nfd == -1 ? NULL : bufferevent_openssl_socket_new(c->base, nfd,
        ssl, c->pend_role == CONN_TLS_SERVER ? BUFFEREVENT_SSL_ACCEPTING :
        BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    if (b == NULL) {
        (void)str_copy(c->err, sizeof c->err, "cannot start TLS");
        log_warn("%s cannot start TLS", c->label);
        if (nfd != -1)
            close(nfd);
        return -1;
    }
    c->pend_ssl = NULL;         /* the bufferevent owns it now */
    bufferevent_free(c->bev);
    c->paused = false;
    attach(c, b, EV_READ | EV_WRITE);
    conn_set_state(c, CONN_TLS_HANDSHAKE);
    return 0;
}

long conn_starttls(struct conn *c, SSL_CTX *ctx, enum conn_tls_role role, const char *host,
    bool verify)
{
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    if (ssl == NULL)
        return -1;
    if (role == CONN_TLS_CLIENT && host) {
        SSL_set_tlsext_host_name(ssl, host);
        if (verify) {
            SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
            SSL_set1_host(ssl, host);
        } else {
            SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
        }
    }
    c->verify = role == CONN_TLS_CLIENT && verify;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t junk = evbuffer_get_length(in);
    evbuffer_drain(in, junk);
    bufferevent_disable(c->bev, EV_READ);
    c->pend_ssl = ssl;
    c->pend_role = role;
    conn_set_state(c, CONN_WAIT_DRAIN);
    if (conn_unsent(c) == 0) {
        if (tls_swap(c) == -1) {
            SSL_free(c->pend_ssl);
            c->pend_ssl = NULL;
            return -1;
        }
    } else {
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_enable(c->bev, EV_WRITE);
    }
    return (long)junk;
}

void conn_tls_info(struct conn *c, char *out, size_t osz)
{
    SSL *ssl = c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL;
    (void)str_copy(out, osz, "TLS");
    if (ssl)
        tls_describe(ssl, out, osz);
}

void conn_tls_error(struct conn *c, char *out, size_t osz)
{
    if (osz == 0)
        return;
    out[0] = '\0';
    SSL *ssl = c->bev ? bufferevent_openssl_get_ssl(c->bev) : NULL;
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    unsigned long e = c->bev ? bufferevent_get_openssl_error(c->bev) : 0;
    if (c->verify && vr != X509_V_OK)
        snprintf(out, osz, "certificate verification failed: %s",
            X509_verify_cert_error_string(vr));
    else if (e)
        ERR_error_string_n(e, out, osz);
}

/* ---- bufferevent callbacks ---- */

static void cb_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    /* Input that came with the end of a handshake waits for CONN_EV_TLS: the owner must
     * reset its session (and note TLS) before it reads a byte of it. */
    if (c->state == CONN_TLS_HANDSHAKE || c->state == CONN_DEAD)
        return;
    c->ops->on_input(c, c->arg);
}

static void cb_write(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    switch (c->state) {
    case CONN_CLOSING:
        if (conn_unsent(c) == 0)
            c->ops->on_event(c, CONN_EV_CLOSED, c->arg);
        return;
    case CONN_WAIT_DRAIN:
        if (conn_unsent(c) == 0 && tls_swap(c) == -1)
            c->ops->on_event(c, CONN_EV_ERROR, c->arg);
        return;
    case CONN_BUSY:
        /* drained below the mark: the owner reads again when its job is done */
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        c->paused = false;
        return;
    case CONN_OPEN:
        /* reading goes on only where conn_out_full() stopped it: an owner that stopped
         * reading itself (conn_read()) decides when to go on */
        bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
        if (c->paused)
            bufferevent_enable(bev, EV_READ);
        c->paused = false;
        c->ops->on_drained(c, c->arg);
        return;
    case CONN_CONNECTING:
    case CONN_TLS_HANDSHAKE:
    case CONN_DEAD:
        return;
    }
}

static void cb_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        bool tls = c->state == CONN_TLS_HANDSHAKE;
        conn_set_state(c, CONN_OPEN);
        c->ops->on_event(c, tls ? CONN_EV_TLS : CONN_EV_CONNECTED, c->arg);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        c->ops->on_event(c, (what & BEV_EVENT_WRITING) ? CONN_EV_TIMEOUT_WRITE :
            CONN_EV_TIMEOUT_READ, c->arg);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        c->eof = true;
        c->ops->on_event(c, CONN_EV_EOF, c->arg);
        return;
    }
    int e = EVUTIL_SOCKET_ERROR();
    (void)str_copy(c->err, sizeof c->err, evutil_socket_error_to_string(e));
    c->ops->on_event(c, CONN_EV_ERROR, c->arg);
}
