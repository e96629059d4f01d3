/*
 * cli/smtpdrive.c - the sender-SMTP machine driven with blocking I/O on one socket.
 *
 * Owns:  see smtpdrive.h.
 * Never: decides anything about the dialogue: that is smtp/client.c's.
 * Limits: smtp/reply.h per reply; SMTPDRIVE_READ_CHUNK octets per read.
 */
#include "cli/smtpdrive.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smtp/reply.h"
#include "util/buf.h"
#include "util/str.h"

#define SMTPDRIVE_READ_CHUNK 4096

/* One run: the session, its input not yet parsed, its commands not yet written. */
struct run {
    struct smtpdrive *d;
    struct smtp_client *c;
    struct reply_parser rp;
    char in[SMTPDRIVE_READ_CHUNK];
    size_t off, len;
    struct buf send;
};

void smtpdrive_init(struct smtpdrive *d, int fd)
{
    memset(d, 0, sizeof *d);
    d->fd = fd;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The deadline for the wait that starts now, in the machine's current state. */
static long long deadline(const struct run *r)
{
    unsigned ms = r->d->timeout_ms;
    if (ms == 0) {
        unsigned s = cli_timeout(r->c);
        ms = (s ? s : CLI_TIMEOUT_OTHER) * 1000u;
    }
    return now_ms() + ms;
}

static void __attribute__((format(printf, 3, 4)))
set_err(struct run *r, enum smtpdrive_err e, const char *fmt, ...)
{
    struct smtpdrive *d = r->d;
    va_list ap;
    d->err = e;
    d->err_state = r->c->state;
    va_start(ap, fmt);
    (void)vsnprintf(d->why, sizeof d->why, fmt, ap);
    va_end(ap);
}

/* Wait until fd is ready for ev or the deadline passes. Returns 1, 0 (time is up) or -1. */
static int wait_fd(int fd, short ev, long long until)
{
    for (;;) {
        long long left = until - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = { .fd = fd, .events = ev };
        int n = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (n == -1 && errno == EINTR)
            continue;
        if (n != 0)
            return n > 0 ? 1 : -1;
    }
}

/* Write all n octets, each write within the state's timeout. Returns 0 or -1 (err set). */
static int write_all(struct run *r, const char *p, size_t n)
{
    while (n > 0) {
        int w = wait_fd(r->d->fd, POLLOUT, deadline(r));
        if (w == 0) {
            set_err(r, SMTPDRIVE_TIMEOUT, "timed out writing");
            return -1;
        }
        /* MSG_NOSIGNAL: a server gone away is an error to report, not a SIGPIPE */
        ssize_t k = w == 1 ? send(r->d->fd, p, n, MSG_NOSIGNAL) : -1;
        if (k == -1 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (k == -1) {
            r->d->sys_errno = errno;
            set_err(r, SMTPDRIVE_WRITE, "%s", strerror(errno));
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Read until one complete reply is parsed into *rep. Returns 0 or -1 (err set). */
static int read_reply(struct run *r, struct smtp_reply *rep)
{
    long long until = deadline(r);
    for (;;) {
        if (r->off < r->len) {
            bool done = false;
            size_t used = reply_parse(&r->rp, r->in + r->off, r->len - r->off, rep, &done);
            if (used == (size_t)-1) {
                set_err(r, SMTPDRIVE_PROTOCOL, "%s", r->rp.err);
                return -1;
            }
            r->off += used;
            if (done)
                return 0;
            continue;
        }
        r->off = r->len = 0;
        int w = wait_fd(r->d->fd, POLLIN, until);
        if (w == 0) {
            set_err(r, SMTPDRIVE_TIMEOUT, "timed out waiting for a reply");
            return -1;
        }
        ssize_t k = w == 1 ? read(r->d->fd, r->in, sizeof r->in) : -1;
        if (k == -1 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (k == -1) {
            r->d->sys_errno = errno;
            set_err(r, SMTPDRIVE_READ, "%s", strerror(errno));
            return -1;
        }
        if (k == 0) {
            set_err(r, SMTPDRIVE_CLOSED, "connection closed");
            return -1;
        }
        r->len = (size_t)k;
    }
}

/* Hand the failure just recorded to the machine. After QUIT, the end of the connection
 * is just the end of the session, not a failure. */
static void fail(struct run *r, struct cli_out *out)
{
    static const enum cli_fail map[] = {
        [SMTPDRIVE_OK] = CLI_FAIL_LOCAL, [SMTPDRIVE_CLOSED] = CLI_FAIL_CLOSED,
        [SMTPDRIVE_TIMEOUT] = CLI_FAIL_TIMEOUT, [SMTPDRIVE_PROTOCOL] = CLI_FAIL_PROTOCOL,
        [SMTPDRIVE_READ] = CLI_FAIL_CLOSED, [SMTPDRIVE_WRITE] = CLI_FAIL_CLOSED,
        [SMTPDRIVE_LOCAL] = CLI_FAIL_LOCAL,
    };
    struct smtpdrive *d = r->d;
    enum cli_fail why = map[d->err];
    char detail[sizeof d->why];

    (void)str_copy(detail, sizeof detail, d->why);
    if (r->c->state == CLI_S_QUIT || r->c->state == CLI_S_CLOSED) {
        d->err = SMTPDRIVE_OK;
        d->why[0] = '\0';
        d->sys_errno = 0;
    }
    cli_fail(r->c, why, detail, out);
}

static bool has_8bit(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)p[i] >= 0x80)
            return true;
    }
    return false;
}

/* CLI_ACT_SEND_BODY: the content in the machine's DATA form, then cli_body_sent(). */
static void send_body(struct run *r, const char *text, size_t n, struct cli_out *out)
{
    struct smtpdrive *d = r->d;

    if (cli_needs_7bit(r->c) && has_8bit(text, n)) {
        /* declared 8-bit but plain ASCII needs no conversion; real 8-bit content does,
         * and that is not ours to do */
        set_err(r, SMTPDRIVE_LOCAL, "the server does not take 8-bit content");
        fail(r, out);
        return;
    }
    if (d->before_body != NULL && !d->before_body(d->arg, r->c)) {
        d->abandoned = true;
        cli_fail(r->c, CLI_FAIL_LOCAL, "message abandoned", out);
        return;
    }
    struct buf b;
    buf_init(&b, 0);
    int e = cli_body_put(text, n, &b);
    if (e == -1)
        set_err(r, SMTPDRIVE_LOCAL, "the message does not fit in memory");
    else
        e = write_all(r, b.p, b.len);
    buf_free(&b);
    if (e == -1) {
        fail(r, out);
        return;
    }
    cli_body_sent(r->c, out);
}

int smtpdrive_run(struct smtpdrive *d, struct smtp_client *c, const struct cli_msg *m,
    const char *text, size_t n)
{
    struct run r = { .d = d, .c = c };
    struct cli_out out;

    d->err = SMTPDRIVE_OK;
    d->err_state = CLI_S_INIT;
    d->sys_errno = 0;
    d->abandoned = false;
    d->why[0] = '\0';
    reply_parser_init(&r.rp);
    buf_init(&r.send, 0);
    out.send = &r.send;
    cli_start(c, m, &out);
    for (;;) {
        unsigned acts = out.acts;
        if ((acts & CLI_ACT_SEND) && r.send.len > 0) {
            int w = write_all(&r, r.send.p, r.send.len);
            buf_reset(&r.send);
            if (w == -1) {
                fail(&r, &out);
                continue;
            }
        }
        if (acts & CLI_ACT_CLOSE)
            break;
        if (acts & CLI_ACT_SEND_BODY) {
            send_body(&r, text, n, &out);
            continue;
        }
        if (acts & CLI_ACT_STARTTLS) {
            set_err(&r, SMTPDRIVE_LOCAL, "TLS is not available here");
            cli_tls_done(c, false, d->why, &out);
            continue;
        }
        if (acts & CLI_ACT_READY) {
            cli_quit(c, &out);
            continue;
        }
        struct smtp_reply rep;
        memset(&rep, 0, sizeof rep);
        if (read_reply(&r, &rep) == -1) {
            fail(&r, &out);
            continue;
        }
        cli_reply(c, &rep, &out);
        reply_free(&rep);
    }
    reply_parser_free(&r.rp);
    buf_free(&r.send);
    return d->err == SMTPDRIVE_OK ? 0 : -1;
}
