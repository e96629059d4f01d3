/*
 * deliver/remote.c - outbound SMTP: routing, connections, fallback, concurrency.
 *
 * A request (one message, one destination) waits in its destination's queue until a
 * connection slot is free. A session routes the destination (mx.c), connects to the
 * addresses in order, and runs the client machine. Recipients that end in a temporary
 * failure because the host could not be reached, refused service at the greeting or
 * EHLO, or dropped the connection are tried again at the next address; the others are
 * final. When the session has sent its message it takes the next request queued for the
 * same destination over the same connection, and quits when none is waiting.
 *
 * Connections, their TLS (STARTTLS as a client, on the same descriptor) and timeouts are
 * net/conn.c's; this file decides what to send and what a failure means.
 */
#include "deliver/remote.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "conf/conf.h"
#include "deliver/mx.h"
#include "mail/mime.h"
#include "net/conn.h"
#include "smtp/reply.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

struct dest {
    char name[300];
    size_t active;              /* sessions open for it (idle ones included) */
    struct remote_req *head, *tail;     /* waiting */
    struct session *idle;       /* connections between messages, newest first */
    struct dest *next;
};

struct session {
    struct remote *rm;
    struct dest *dest;
    struct remote_req *req;     /* current message */
    struct mx_target t[32];
    size_t nt, ti;              /* targets and the one in use */
    struct conn *conn;          /* NULL between connections */
    unsigned long nconn;        /* connections made: tells a new one from the old */
    struct smtp_client cli;
    struct reply_parser rp;
    struct buf send;
    /* recipients of req still open, by index into req->msg */
    size_t *open;
    size_t nopen;
    const char **sub_rcpts;     /* the open recipients as a cli_msg for this host */
    unsigned *sub_notify;
    const char **sub_orcpt;
    struct cli_msg sub;
    bool conn_failed;           /* the current connection failed (try the next address) */
    bool *alive;                /* cleared when the session is freed (a caller is looking) */
    bool parked;                /* idle between messages, on dest->idle */
    struct session *idle_next;
    struct event *idle_timer;
    enum cli_tls policy;        /* for this destination */
    bool started;
    unsigned long long octets, octets7;    /* SIZE= on the wire: as is, and in 7-bit form */
    struct session *prev, *next;
};

struct remote {
    struct event_base *base;
    struct dns *dns;
    const struct conf *conf;
    SSL_CTX *tls;
    struct dest *dests;
    struct session *sessions;
    size_t nsessions;
    size_t waiting;
};

static void session_connect_next(struct session *s);
static void session_handle(struct session *s, struct cli_out *out);
static void start_tls(struct session *s);
static void park(struct session *s);
static void session_take_next(struct session *s);

/* Replies read ahead of the client machine: reading pauses here. */
#define REMOTE_IN_MAX   (64 * 1024)

struct remote *remote_new(struct event_base *base, struct dns *dns, const struct conf *conf,
    SSL_CTX *client_tls)
{
    struct remote *rm = xcalloc(1, sizeof *rm);
    rm->tls = client_tls;
    rm->base = base;
    rm->dns = dns;
    rm->conf = conf;
    return rm;
}

size_t remote_active(const struct remote *rm)
{
    return rm->nsessions;
}

static struct dest *dest_get(struct remote *rm, const char *name)
{
    for (struct dest *d = rm->dests; d; d = d->next)
        if (strcasecmp(d->name, name) == 0)
            return d;
    struct dest *d = xcalloc(1, sizeof *d);
    str_copy(d->name, sizeof d->name, name);
    d->next = rm->dests;
    rm->dests = d;
    return d;
}

static void dest_gc(struct remote *rm, struct dest *d)
{
    if (d->active || d->head)
        return;
    for (struct dest **pp = &rm->dests; *pp; pp = &(*pp)->next) {
        if (*pp == d) {
            *pp = d->next;
            free(d);
            return;
        }
    }
}

static void trace(struct remote_req *r, const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void trace(struct remote_req *r, const char *dir, const char *fmt, ...)
{
    if (r == NULL || r->trace == NULL)
        return;
    char line[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->trace(r->arg, dir, line);
}

static void target_text(const struct mx_target *t, char *out, size_t osz)
{
    char ip[64] = "?";
    if (t->addr.ss_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)&t->addr)->sin_addr, ip, sizeof ip);
    else if (t->addr.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&t->addr)->sin6_addr, ip,
            sizeof ip);
    snprintf(out, osz, "%s[%s]", t->host, ip);
}

/* Fill the results of every open recipient with one outcome. */
static void fail_open(struct session *s, enum cli_rkind kind, const char *status,
    const char *why)
{
    struct remote_req *r = s->req;
    for (size_t i = 0; i < s->nopen; i++) {
        struct remote_result *res = &r->res[s->open[i]];
        res->kind = kind;
        str_copy(res->status, sizeof res->status, status);
        str_copy(res->reply, sizeof res->reply, why);
    }
    s->nopen = 0;
}

/* The octets write_body() sends for n octets of spool text: every LF goes as CRLF, and a
 * last line without one gets one; the SIZE= value of RFC 1870 4 (dot-stuffing excluded). */
static unsigned long long wire_size(const char *p, size_t n)
{
    unsigned long long sz = n;
    const char *e = p + n;
    for (const char *q = p; q < e; q++)
        if (*q == '\n')
            sz++;
    if (n > 0 && e[-1] != '\n')
        sz += 2;
    return sz;
}

/* Build the cli_msg of the recipients still open. */
static void build_sub(struct session *s)
{
    struct remote_req *r = s->req;
    free(s->sub_rcpts);
    free(s->sub_notify);
    free(s->sub_orcpt);
    s->sub_rcpts = xcalloc(s->nopen + 1, sizeof *s->sub_rcpts);
    s->sub_notify = xcalloc(s->nopen + 1, sizeof *s->sub_notify);
    s->sub_orcpt = xcalloc(s->nopen + 1, sizeof *s->sub_orcpt);
    for (size_t i = 0; i < s->nopen; i++) {
        size_t k = s->open[i];
        s->sub_rcpts[i] = r->msg.rcpts[k];
        s->sub_notify[i] = r->msg.notify ? r->msg.notify[k] : 0;
        s->sub_orcpt[i] = r->msg.orcpt ? r->msg.orcpt[k] : NULL;
    }
    s->sub = r->msg;
    s->sub.rcpts = s->sub_rcpts;
    s->sub.notify = s->sub_notify;
    s->sub.orcpt = s->sub_orcpt;
    s->sub.nrcpt = s->nopen;
    s->sub.size = s->octets;
    if (r->conv_state == 1)
        s->sub.size7bit = s->octets7;
}

static void req_begin(struct session *s, struct remote_req *r)
{
    s->req = r;
    free(s->open);
    s->open = xcalloc(r->msg.nrcpt + 1, sizeof *s->open);
    s->nopen = r->msg.nrcpt;
    for (size_t i = 0; i < r->msg.nrcpt; i++) {
        s->open[i] = i;
        memset(&r->res[i], 0, sizeof r->res[i]);
        r->res[i].kind = CLI_R_TEMP;
        str_copy(r->res[i].status, sizeof r->res[i].status, "4.4.1");
        str_copy(r->res[i].reply, sizeof r->res[i].reply, "no attempt made");
    }
    /* Prepare the 7-bit form once, before any MAIL: a message that cannot be converted
     * must not reach a server that lacks 8BITMIME. */
    if (r->conv_state == 0 && r->msg.eightbit) {
        buf_init(&r->conv, 0);
        enum mime_result mr = mime_to_7bit(r->content, r->len, &r->conv, r->conv_err,
            sizeof r->conv_err);
        r->conv_state = mr == MIME_OK ? 1 : mr == MIME_UNCHANGED ? 2 : -1;
    }
    s->octets = wire_size(r->content, r->len);
    s->octets7 = r->conv_state == 1 ? wire_size(r->conv.p, r->conv.len) : 0;
    build_sub(s);
}

static void req_finish(struct session *s)
{
    struct remote_req *r = s->req;
    s->req = NULL;
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->msg.nrcpt; i++) {
        char q[600];
        str_escape(q, sizeof q, r->res[i].reply, strlen(r->res[i].reply));
        trace(r, "info", "<%s>... %s (%s)", r->msg.rcpts[i],
            r->res[i].kind == CLI_R_OK ? "Sent" : r->res[i].kind == CLI_R_TEMP ?
            "Deferred" : "Failed", q);
    }
    buf_free(&r->conv);
    r->conv_state = 0;
    r->done(r);
}

/* Take a parked session off its destination's idle list. */
static void unpark(struct session *s)
{
    if (!s->parked)
        return;
    for (struct session **pp = &s->dest->idle; *pp; pp = &(*pp)->idle_next) {
        if (*pp == s) {
            *pp = s->idle_next;
            break;
        }
    }
    s->parked = false;
    s->idle_next = NULL;
    if (s->idle_timer)
        evtimer_del(s->idle_timer);
}

static void session_free(struct session *s)
{
    struct remote *rm = s->rm;
    if (s->alive)
        *s->alive = false;
    unpark(s);
    if (s->idle_timer)
        event_free(s->idle_timer);
    conn_free(s->conn);
    cli_free(&s->cli);
    reply_parser_free(&s->rp);
    buf_free(&s->send);
    free(s->open);
    free(s->sub_rcpts);
    free(s->sub_notify);
    free(s->sub_orcpt);
    if (s->prev)
        s->prev->next = s->next;
    else
        rm->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    rm->nsessions--;
    struct dest *d = s->dest;
    d->active--;
    free(s);
    dest_gc(rm, d);
}

/* The connection is gone: decide what the open recipients get, then continue. */
static void session_closed(struct session *s)
{
    conn_free(s->conn);
    s->conn = NULL;
    cli_free(&s->cli);
    reply_parser_free(&s->rp);
    buf_reset(&s->send);
    if (s->req && s->nopen > 0 && s->conn_failed && s->ti + 1 < s->nt) {
        s->ti++;
        session_connect_next(s);
        return;
    }
    if (s->req)
        req_finish(s);
    session_take_next(s);
}

static void write_body(struct session *s)
{
    struct remote_req *r = s->req;
    const char *p = r->content;
    size_t n = r->len;
    if (cli_needs_7bit(&s->cli)) {
        if (r->conv_state == 1) {
            p = r->conv.p;
            n = r->conv.len;
        } else if (r->conv_state == -1) {
            /* Abort the transaction by closing without the final dot (RFC 5321 4.1.1.4). */
            char why[300];
            snprintf(why, sizeof why, "cannot convert to 7 bit for a host without "
                "8BITMIME: %s", r->conv_err);
            fail_open(s, CLI_R_PERM, "5.6.3", why);
            s->conn_failed = false;
            session_closed(s);
            return;
        }
    }
    struct evbuffer *out = conn_output(s->conn);
    const char *end = p + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (ll > 0 && p[0] == '.')
            evbuffer_add(out, ".", 1);
        evbuffer_add(out, p, ll);
        evbuffer_add(out, "\r\n", 2);
        p += ll + (nl ? 1 : 0);
    }
    evbuffer_add(out, ".\r\n", 3);
    trace(r, ">>>", ".");
    struct cli_out co = { &s->send, 0 };
    cli_body_sent(&s->cli, &co);
    session_handle(s, &co);
}

static void set_timeouts(struct session *s)
{
    unsigned t = cli_timeout(&s->cli);
    conn_set_timeouts(s->conn, t ? t : 300, t ? t : 300);
}

static void session_handle(struct session *s, struct cli_out *out)
{
    unsigned acts = out->acts;
    if (acts & CLI_ACT_MSG_DONE) {
        size_t n;
        const struct cli_result *cr = cli_results(&s->cli, &n);
        char host[300];
        target_text(&s->t[s->ti], host, sizeof host);
        size_t still = 0;
        for (size_t i = 0; i < n && i < s->nopen; i++) {
            size_t k = s->open[i];
            struct remote_result *res = &s->req->res[k];
            bool retry_here = cr[i].kind == CLI_R_TEMP &&
                (cr[i].when_connecting || s->conn_failed);
            res->kind = cr[i].kind;
            str_copy(res->status, sizeof res->status, cr[i].status);
            str_copy(res->reply, sizeof res->reply, cr[i].reply);
            str_copy(res->host, sizeof res->host, host);
            res->dsn_passed = s->cli.ext.dsn;
            if (retry_here || (cr[i].when_connecting && cr[i].kind == CLI_R_PERM &&
                s->ti + 1 < s->nt))
                s->open[still++] = k;
        }
        s->nopen = still;
        if (still > 0)
            s->conn_failed = true;
    }
    if ((acts & CLI_ACT_SEND) && s->send.len && (acts & CLI_ACT_SECRET)) {
        trace(s->req, ">>>", "AUTH ... (credentials not shown)");
        (void)conn_write(s->conn, s->send.p, s->send.len);
        explicit_bzero(s->send.p, s->send.len);
        buf_reset(&s->send);
    } else if ((acts & CLI_ACT_SEND) && s->send.len) {
        if (s->req && s->req->trace) {
            /* one trace line per command */
            const char *p = s->send.p, *e = p + s->send.len;
            while (p < e) {
                const char *crlf = memmem(p, (size_t)(e - p), "\r\n", 2);
                size_t l = crlf ? (size_t)(crlf - p) : (size_t)(e - p);
                trace(s->req, ">>>", "%.*s", (int)l, p);
                p += l + 2;
            }
        }
        (void)conn_write(s->conn, s->send.p, s->send.len);
        buf_reset(&s->send);
    }
    if (acts & CLI_ACT_SEND_BODY) {
        write_body(s);
        return;
    }
    if (acts & CLI_ACT_STARTTLS) {
        start_tls(s);
        return;
    }
    if (acts & CLI_ACT_READY) {
        struct cli_out co = { &s->send, 0 };
        if (s->nopen > 0) {
            /* Recipients left for another host: this connection is done. */
            cli_quit(&s->cli, &co);
            session_handle(s, &co);
            return;
        }
        req_finish(s);
        struct dest *d = s->dest;
        if (d->head) {
            struct remote_req *r = d->head;
            d->head = r->next;
            if (d->head == NULL)
                d->tail = NULL;
            s->rm->waiting--;
            req_begin(s, r);
            trace(r, "info", "reusing the connection to %s", s->t[s->ti].host);
            cli_next(&s->cli, &s->sub, &co);
            session_handle(s, &co);
            return;
        }
        if (s->rm->conf->connection_cache_time > 0) {
            /* Keep the connection a moment for the next message to this destination. */
            park(s);
            return;
        }
        cli_quit(&s->cli, &co);
        session_handle(s, &co);
        return;
    }
    if (acts & CLI_ACT_CLOSE) {
        /* flush, then session_closed() (CONN_EV_CLOSED: at once if nothing is queued) */
        conn_close(s->conn);
        return;
    }
    if (s->conn)
        set_timeouts(s);
}

static void on_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct session *s = arg;
    unpark(s);
    struct cli_out co = { &s->send, 0 };
    cli_quit(&s->cli, &co);
    session_handle(s, &co);
}

static void park(struct session *s)
{
    struct dest *d = s->dest;
    s->parked = true;
    s->idle_next = d->idle;
    d->idle = s;
    if (s->idle_timer == NULL)
        s->idle_timer = evtimer_new(s->rm->base, on_idle_timeout, s);
    struct timeval tv = { s->rm->conf->connection_cache_time, 0 };
    evtimer_add(s->idle_timer, &tv);
    /* no reply is awaited: only the server closing (or a 421) can wake us */
    unsigned t = (unsigned)s->rm->conf->connection_cache_time + 60;
    conn_set_timeouts(s->conn, t, t);
}

static void on_input(struct conn *cn, void *arg)
{
    struct session *s = arg;
    unpark(s);      /* a parked connection spoke (a 421 before closing): handle it */
    struct evbuffer *in = conn_input(cn);
    while (s->conn && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
            break;
        struct smtp_reply r;
        memset(&r, 0, sizeof r);
        bool done = false;
        size_t used = reply_parse(&s->rp, v.iov_base, v.iov_len, &r, &done);
        struct cli_out co = { &s->send, 0 };
        if (used == (size_t)-1) {
            char why[200];
            snprintf(why, sizeof why, "protocol error from %s: %s", s->t[s->ti].host,
                s->rp.err);
            trace(s->req, "info", "%s", why);
            cli_fail(&s->cli, CLI_FAIL_PROTOCOL, s->rp.err, &co);
            session_handle(s, &co);
            return;
        }
        evbuffer_drain(in, used);
        if (!done)
            continue;
        if (s->req && s->req->trace) {
            /* each line as the server sent it: "250-..." then "250 ..." */
            const char *p = r.text.p ? r.text.p : "", *e = p + r.text.len;
            for (size_t i = 0; i < r.nlines || i == 0; i++) {
                const char *nl = memchr(p, '\n', (size_t)(e - p));
                size_t l = nl ? (size_t)(nl - p) : (size_t)(e - p);
                char esc[700];
                str_escape(esc, sizeof esc, p, l < 500 ? l : 500);
                bool last = nl == NULL || i + 1 >= r.nlines;
                trace(s->req, "<<<", "%d%c%s%s%s", r.code, last ? ' ' : '-', r.enh,
                    r.enh[0] ? " " : "", esc);
                if (last)
                    break;
                p = nl + 1;
            }
        }
        cli_reply(&s->cli, &r, &co);
        reply_free(&r);
        unsigned long before = s->nconn;
        /* Handling a reply may end the session (and free it), start TLS (a new input
         * buffer) or connect to the next host: then this callback's work is over. */
        bool alive = true;
        s->alive = &alive;
        session_handle(s, &co);
        if (!alive)
            return;
        s->alive = NULL;
        if (s->conn == NULL || s->nconn != before)
            return;
        enum conn_state st = conn_state(s->conn);
        if (st == CONN_TLS_HANDSHAKE || st == CONN_WAIT_DRAIN)
            return;
    }
}

static void on_drained(struct conn *cn, void *arg)
{
    (void)cn;
    (void)arg;
}

static void on_event(struct conn *cn, enum conn_event ev, void *arg)
{
    struct session *s = arg;
    unpark(s);
    struct cli_out co = { &s->send, 0 };
    if (ev == CONN_EV_CLOSED) {
        session_closed(s);
        return;
    }
    if (ev == CONN_EV_TLS) {
        char info[128];
        conn_tls_info(cn, info, sizeof info);
        trace(s->req, "info", "TLS established: %s", info);
        log_debug("remote: %s: TLS %s", s->t[s->ti].host, info);
        cli_tls_done(&s->cli, true, NULL, &co);
        session_handle(s, &co);
        return;
    }
    if (ev == CONN_EV_CONNECTED) {
        char host[300];
        target_text(&s->t[s->ti], host, sizeof host);
        trace(s->req, "connect", "Connected to %s", host);
        set_timeouts(s);
        return;
    }
    enum conn_state st = conn_state(cn);
    if (st == CONN_TLS_HANDSHAKE || st == CONN_WAIT_DRAIN) {
        char detail[300];
        bool timeout = ev == CONN_EV_TIMEOUT_READ || ev == CONN_EV_TIMEOUT_WRITE;
        if (st == CONN_WAIT_DRAIN)
            (void)str_copy(detail, sizeof detail, "cannot start TLS here");
        else
            conn_tls_error(cn, detail, sizeof detail);
        if (detail[0] == '\0')
            (void)str_copy(detail, sizeof detail, timeout ? "TLS handshake timed out" :
                "TLS handshake failed");
        trace(s->req, "info", "%s: %s", s->t[s->ti].host, detail);
        s->conn_failed = true;
        cli_tls_done(&s->cli, false, detail, &co);
        session_handle(s, &co);
        return;
    }
    if (st == CONN_CLOSING) {
        session_closed(s);
        return;
    }
    enum cli_fail why = CLI_FAIL_CLOSED;
    const char *detail = "connection closed";
    if (ev == CONN_EV_TIMEOUT_READ || ev == CONN_EV_TIMEOUT_WRITE) {
        why = s->cli.state == CLI_S_GREETING && !s->started ? CLI_FAIL_CONNECT :
            CLI_FAIL_TIMEOUT;
        detail = "timed out";
    } else if (ev == CONN_EV_ERROR) {
        detail = conn_error(cn);
        if (s->cli.state == CLI_S_GREETING)
            why = CLI_FAIL_CONNECT;
    }
    char host[300];
    target_text(&s->t[s->ti], host, sizeof host);
    char full[500];
    snprintf(full, sizeof full, "%s: %s", host, detail);
    trace(s->req, "info", "%s", full);
    bool quitting = s->cli.state == CLI_S_QUIT;
    if (!quitting)
        s->conn_failed = true;
    cli_fail(&s->cli, why, full, &co);
    session_handle(s, &co);
}

/* The client machine's form of a destination's TLS policy (conf_tls_policy()). */
static enum cli_tls dest_policy(const struct conf *c, const char *dest)
{
    switch (conf_tls_policy(c, dest)) {
    case CONF_TLS_NONE:    return CLI_TLS_NONE;
    case CONF_TLS_ENCRYPT: return CLI_TLS_ENCRYPT;
    case CONF_TLS_VERIFY:  return CLI_TLS_VERIFY;
    case CONF_TLS_MAY:     break;
    }
    return CLI_TLS_MAY;
}

/* Is this session's destination the relayhost, with relayhost_auth credentials? */
static bool relayhost_with_auth(const struct session *s)
{
    const struct conf *c = s->rm->conf;
    return c->relayhost && c->relayhost_user && strcasecmp(s->dest->name, c->relayhost) == 0;
}

/*
 * relayhost_auth goes only over TLS whose certificate chain and name are checked (policy
 * verify), unless relayhost_auth_unverified_tls accepts the risk. Any other session could
 * hand the password to whoever answers for the relayhost, so the message is deferred before
 * connecting: going on without AUTH would send the envelope to that host too, and a
 * smarthost that wants AUTH refuses to relay without it anyway. Returns true if deferred.
 */
static bool relayhost_auth_refused(struct session *s)
{
    const struct conf *c = s->rm->conf;
    if (!relayhost_with_auth(s) || c->relayhost_auth_unverified_tls)
        return false;
    enum conf_tls pol = conf_tls_policy(c, s->dest->name);
    if (pol == CONF_TLS_VERIFY)
        return false;
    char why[400];
    snprintf(why, sizeof why, "relayhost_auth not sent: TLS not verified (the TLS policy for "
        "%.200s is %s; see relayhost_auth in postel.conf(5))", c->relayhost,
        conf_tls_name(pol));
    /* the queue manager logs it with the queue id: "ID to=<...> ... status=deferred (why)" */
    trace(s->req, "info", "%s", why);
    fail_open(s, CLI_R_TEMP, "4.7.0", why);
    return true;
}

/* Set the session's TLS policy and, for the smarthost, its credentials. */
static void session_options(struct session *s)
{
    const struct conf *c = s->rm->conf;
    s->policy = dest_policy(c, s->dest->name);
    cli_set_tls(&s->cli, s->policy, s->rm->tls != NULL);
    /* relayhost_auth_refused() has let only verified TLS (or the accepted risk) get here;
     * the credentials were checked when the configuration was loaded */
    if (relayhost_with_auth(s) &&
        cli_set_auth(&s->cli, c->relayhost_user, c->relayhost_pass, false) == -1)
        log_warnx("relayhost_auth: want user:password (no CR or LF); not used");
}

static const struct conn_ops session_ops = { on_input, on_drained, on_event };

/* CLI_ACT_STARTTLS: the connection drops what the server sent after its 220 (it came in
 * plaintext and may be injected), then handshakes as a client on the same descriptor:
 * SNI and, for policy verify, the chain and the host name are checked. */
static void start_tls(struct session *s)
{
    reply_parser_free(&s->rp);
    reply_parser_init(&s->rp);
    const struct mx_target *t = &s->t[s->ti];
    if (conn_starttls(s->conn, s->rm->tls, CONN_TLS_CLIENT, t->host,
        s->policy == CLI_TLS_VERIFY) < 0) {
        struct cli_out co = { &s->send, 0 };
        cli_tls_done(&s->cli, false, "cannot start TLS here", &co);
        session_handle(s, &co);
        return;
    }
    conn_set_timeouts(s->conn, CLI_TIMEOUT_TLS, CLI_TIMEOUT_TLS);
    trace(s->req, "info", "starting TLS with %s", t->host);
}

static void session_connect_next(struct session *s)
{
    struct remote *rm = s->rm;
    for (; s->ti < s->nt; s->ti++) {
        struct mx_target *t = &s->t[s->ti];
        char host[300];
        target_text(t, host, sizeof host);
        trace(s->req, "connect", "Connecting to %s via smtp...", host);
        s->conn_failed = false;
        reply_parser_init(&s->rp);
        cli_init(&s->cli, rm->conf->hostname);
        session_options(s);
        build_sub(s);
        struct cli_out co = { &s->send, 0 };
        cli_start(&s->cli, &s->sub, &co);
        s->conn = conn_connect(rm->base, (struct sockaddr *)&t->addr, t->addrlen,
            REMOTE_IN_MAX, 0, &session_ops, s, t->host);
        if (s->conn == NULL) {
            /* Immediate failure: no event callback runs; report it here. */
            trace(s->req, "info", "%s: connect failed", host);
            cli_fail(&s->cli, CLI_FAIL_CONNECT, "connect failed", &co);
            cli_free(&s->cli);
            reply_parser_free(&s->rp);
            continue;
        }
        s->nconn++;
        unsigned ct = (unsigned)rm->conf->connect_timeout;
        conn_set_timeouts(s->conn, ct, ct);
        return;
    }
    /* No address could even be tried. */
    if (s->req && s->nopen > 0)
        fail_open(s, CLI_R_TEMP, "4.4.1", "no mail host could be reached");
    if (s->req)
        req_finish(s);
    session_take_next(s);
}

static void on_route(void *arg, enum mx_status st, const char *code, const char *why,
    const struct mx_target *t, size_t n)
{
    struct session *s = arg;
    if (st != MX_OK) {
        trace(s->req, "info", "%s", why);
        fail_open(s, st == MX_PERM ? CLI_R_PERM : CLI_R_TEMP, code, why);
        req_finish(s);
        session_take_next(s);
        return;
    }
    s->nt = n < 32 ? n : 32;
    memcpy(s->t, t, s->nt * sizeof *t);
    s->ti = 0;
    session_connect_next(s);
}

/* Start routing for the session's destination with its current request. */
static void session_route(struct session *s)
{
    const struct conf *c = s->rm->conf;
    int port = (int)c->smtp_port;
    char dest[300];
    int no_mx = 0;
    if (c->relayhost && strcmp(s->dest->name, c->relayhost) == 0)
        mx_relayhost(c->relayhost, dest, sizeof dest, &port, &no_mx);
    else
        str_copy(dest, sizeof dest, s->dest->name);
    if (relayhost_auth_refused(s)) {
        req_finish(s);
        session_take_next(s);
        return;
    }
    trace(s->req, "info", "routing %s", dest);
    mx_route(s->rm->dns, dest, no_mx, c->hostname, port, on_route, s);
}

/* After a request: take the next one for this destination (new connection), or end. */
static void session_take_next(struct session *s)
{
    struct dest *d = s->dest;
    if (d->head) {
        struct remote_req *r = d->head;
        d->head = r->next;
        if (d->head == NULL)
            d->tail = NULL;
        s->rm->waiting--;
        req_begin(s, r);
        session_route(s);
        return;
    }
    struct remote *rm = s->rm;
    session_free(s);
    /* A slot is free: start a destination that was waiting for the total limit. */
    for (struct dest *w = rm->dests; w && rm->waiting; w = w->next) {
        if (w->head && w->active < rm->conf->dest_concurrency &&
            rm->nsessions < rm->conf->remote_concurrency) {
            struct remote_req *r = w->head;
            w->head = r->next;
            if (w->head == NULL)
                w->tail = NULL;
            rm->waiting--;
            remote_send(rm, r);
            break;
        }
    }
}

void remote_set_conf(struct remote *rm, const struct conf *conf)
{
    rm->conf = conf;
}

void remote_send(struct remote *rm, struct remote_req *req)
{
    req->rm = rm;
    req->next = NULL;
    struct dest *d = dest_get(rm, req->dest);
    if (d->idle) {
        /* A connection to this destination is open and idle: one more message on it. */
        struct session *s = d->idle;
        unpark(s);
        req_begin(s, req);
        trace(req, "info", "reusing the connection to %s", s->t[s->ti].host);
        struct cli_out co = { &s->send, 0 };
        cli_next(&s->cli, &s->sub, &co);
        session_handle(s, &co);
        return;
    }
    size_t dlim = rm->conf->dest_concurrency ? rm->conf->dest_concurrency : 1;
    size_t tlim = rm->conf->remote_concurrency ? rm->conf->remote_concurrency : 1;
    if (d->active >= dlim || rm->nsessions >= tlim) {
        if (d->tail)
            d->tail->next = req;
        else
            d->head = req;
        d->tail = req;
        rm->waiting++;
        return;
    }
    struct session *s = xcalloc(1, sizeof *s);
    s->rm = rm;
    s->dest = d;
    d->active++;
    buf_init(&s->send, 0);
    s->next = rm->sessions;
    if (rm->sessions)
        rm->sessions->prev = s;
    rm->sessions = s;
    rm->nsessions++;
    req_begin(s, req);
    session_route(s);
}

void remote_free(struct remote *rm)
{
    if (rm == NULL)
        return;
    while (rm->sessions) {
        struct session *s = rm->sessions;
        if (s->req) {
            fail_open(s, CLI_R_TEMP, "4.3.2", "delivery interrupted by shutdown");
            req_finish(s);
        }
        session_free(s);
    }
    /* Requests still waiting for a connection end the same way: their owners record the
     * outcome and free them (dropping them leaked them and their message's round). */
    for (struct dest *d = rm->dests; d; d = d->next) {
        while (d->head) {
            struct remote_req *r = d->head;
            d->head = r->next;
            for (size_t i = 0; i < r->msg.nrcpt; i++) {
                memset(&r->res[i], 0, sizeof r->res[i]);
                r->res[i].kind = CLI_R_TEMP;
                str_copy(r->res[i].status, sizeof r->res[i].status, "4.3.2");
                str_copy(r->res[i].reply, sizeof r->res[i].reply,
                    "delivery interrupted by shutdown");
            }
            r->done(r);
        }
        d->tail = NULL;
    }
    while (rm->dests) {
        struct dest *d = rm->dests;
        rm->dests = d->next;
        free(d);
    }
    free(rm);
}
