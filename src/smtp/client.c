/*
 * smtp/client.c - sender-SMTP session state machine.
 *
 * Owns:  the command sequence, PIPELINING bookkeeping (which reply answers which command),
 *        extension negotiation, the STARTTLS and AUTH decisions (policy, credentials) and
 *        the per-recipient results.
 * Never: does I/O, looks at a clock or calls a TLS library; it appends commands to
 *        out->send and sets actions. It never puts credentials anywhere but out->send
 *        (flagged CLI_ACT_SECRET).
 * Limits: replies are bounded by smtp/reply.h; ORCPT values by SMTP_ORCPT_MAX; credentials
 *        by CLI_AUTH_MAX; an AUTH line with its initial response by SMTP_CMDLINE_MAX.
 */
#include "smtp/client.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "smtp/parse.h"
#include "util/b64.h"
#include "util/str.h"
#include "util/xmalloc.h"

/* Per-recipient progress (c->rst): one of RS_PENDING/ACCEPTED/DONE, plus RS_SENT. */
enum {
    RS_PENDING  = 0,            /* no outcome yet */
    RS_ACCEPTED = 1,            /* RCPT accepted; the DATA outcome decides */
    RS_DONE     = 2,            /* final */
    RS_MASK     = 3,
    RS_SENT     = 4             /* its RCPT command was sent: a reply is due for it */
};

static void set_state(struct smtp_client *c, enum cli_state st)
{
    c->state = st;
}

static enum cli_rkind kind_of(int code)
{
    return code / 100 == 2 ? CLI_R_OK : code / 100 == 4 ? CLI_R_TEMP : CLI_R_PERM;
}

static enum cli_stage stage_of(enum cli_state st)
{
    switch (st) {
    case CLI_S_INIT:     return CLI_STAGE_CONNECT;
    case CLI_S_GREETING: return CLI_STAGE_GREETING;
    case CLI_S_EHLO:
    case CLI_S_HELO:     return CLI_STAGE_HELO;
    case CLI_S_STARTTLS:
    case CLI_S_TLS:      return CLI_STAGE_STARTTLS;
    case CLI_S_AUTH:     return CLI_STAGE_AUTH;
    case CLI_S_RSET:     return CLI_STAGE_RSET;
    case CLI_S_MAIL:     return CLI_STAGE_MAIL;
    case CLI_S_RCPT:     return CLI_STAGE_RCPT;
    case CLI_S_DATA:     return CLI_STAGE_DATA;
    case CLI_S_BODY:     return CLI_STAGE_BODY;
    case CLI_S_DOT:      return CLI_STAGE_DOT;
    default:             return CLI_STAGE_LOCAL;
    }
}

/* For our own reasons: what the session was doing. */
static const char *where_of(enum cli_state st)
{
    switch (st) {
    case CLI_S_INIT:     return "while connecting";
    case CLI_S_GREETING: return "while waiting for the greeting";
    case CLI_S_EHLO:     return "after EHLO";
    case CLI_S_HELO:     return "after HELO";
    case CLI_S_STARTTLS: return "after STARTTLS";
    case CLI_S_TLS:      return "during the TLS handshake";
    case CLI_S_AUTH:     return "after AUTH";
    case CLI_S_RSET:     return "after RSET";
    case CLI_S_MAIL:     return "after MAIL FROM";
    case CLI_S_RCPT:     return "after RCPT TO";
    case CLI_S_DATA:     return "after DATA";
    case CLI_S_BODY:     return "while sending the message content";
    case CLI_S_DOT:      return "after the end of data";
    case CLI_S_QUIT:     return "after QUIT";
    default:             return "while idle";
    }
}

/* ---- results ---- */

static void __attribute__((format(printf, 3, 4)))
textf(char *dst, size_t dsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, dsz, fmt, ap);
    va_end(ap);
    if (n < 0)
        dst[0] = '\0';
    /* our reasons may quote the driver's detail: keep results log- and bounce-safe */
    for (char *p = dst; *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            *p = '?';
    }
}

static void result_set(struct smtp_client *c, size_t i, enum cli_rkind kind,
    enum cli_stage stage, const char *text, const char *status)
{
    struct cli_result *res = &c->res[i];
    res->kind = kind;
    res->stage = stage;
    res->when_connecting = stage <= CLI_STAGE_AUTH;
    textf(res->reply, sizeof res->reply, "%s", text);
    (void)str_copy(res->status, sizeof res->status, status);
    c->rst[i] = (unsigned char)((c->rst[i] & RS_SENT) | RS_DONE);
}

/* Recipient i gets the server's reply r as its outcome. */
static void result_reply(struct smtp_client *c, size_t i, const struct smtp_reply *r,
    enum cli_stage stage)
{
    char text[sizeof c->res[0].reply];
    char status[sizeof c->res[0].status];

    reply_format(r, text, sizeof text);
    if (r->enh[0] != '\0')
        (void)str_copy(status, sizeof status, r->enh);
    else
        textf(status, sizeof status, "%d.0.0", r->code / 100 % 10);
    result_set(c, i, kind_of(r->code), stage, text, status);
}

static bool rs_is(const struct smtp_client *c, size_t i, int st)
{
    return (c->rst[i] & RS_MASK) == st;
}

/* Every recipient without a final outcome (pending or accepted) gets this one. */
static void fail_open(struct smtp_client *c, enum cli_rkind kind, enum cli_stage stage,
    const char *text, const char *status)
{
    for (size_t i = 0; i < c->nres; i++) {
        if (!rs_is(c, i, RS_DONE))
            result_set(c, i, kind, stage, text, status);
    }
}

/* As fail_open(), with the server's reply r; only_accepted: leave pending ones alone. */
static void reply_open(struct smtp_client *c, const struct smtp_reply *r, enum cli_stage stage,
    bool only_accepted)
{
    for (size_t i = 0; i < c->nres; i++) {
        if (rs_is(c, i, RS_ACCEPTED) || (!only_accepted && rs_is(c, i, RS_PENDING)))
            result_reply(c, i, r, stage);
    }
}

static void msg_done(struct smtp_client *c, struct cli_out *out)
{
    if (!c->msg_open)
        return;
    /* XXX: a safety net; every path is meant to have decided each recipient already */
    fail_open(c, CLI_R_TEMP, CLI_STAGE_LOCAL, "internal error: no outcome", "4.3.0");
    c->msg_open = false;
    out->acts |= CLI_ACT_MSG_DONE;
}

static void go_ready(struct smtp_client *c, struct cli_out *out)
{
    msg_done(c, out);
    set_state(c, CLI_S_READY);
    out->acts |= CLI_ACT_READY;
}

static void go_close(struct smtp_client *c, struct cli_out *out)
{
    msg_done(c, out);
    set_state(c, CLI_S_CLOSED);
    out->acts &= ~(unsigned)(CLI_ACT_READY | CLI_ACT_SEND_BODY | CLI_ACT_STARTTLS);
    out->acts |= CLI_ACT_CLOSE;
}

/* The session cannot go on: open recipients get TEMP with our reason; close at once. */
static void abort_session(struct smtp_client *c, struct cli_out *out, const char *text,
    const char *status)
{
    fail_open(c, CLI_R_TEMP, stage_of(c->state), text, status);
    go_close(c, out);
}

static void protocol_error(struct smtp_client *c, struct cli_out *out, const struct smtp_reply *r)
{
    char fr[REPLY_FORMAT_MAX + 1];
    char text[sizeof c->res[0].reply];

    reply_format(r, fr, sizeof fr);
    textf(text, sizeof text, "protocol error: unexpected reply %s: %s", where_of(c->state), fr);
    abort_session(c, out, text, "4.5.0");
}

/* ---- commands ---- */

/* Append the complete commands in cmd to out->send (all or nothing), then free cmd. */
static int emit(struct cli_out *out, struct buf *cmd, int err)
{
    if (err == 0)
        err = buf_append(out->send, cmd->p, cmd->len);
    buf_free(cmd);
    if (err == 0)
        out->acts |= CLI_ACT_SEND;
    return err;
}

/* Our own trouble, not the host's: stage LOCAL, so no other MX is tried for it. */
static void emit_failed(struct smtp_client *c, struct cli_out *out)
{
    fail_open(c, CLI_R_TEMP, CLI_STAGE_LOCAL,
        "local error: commands do not fit the output buffer", "4.3.0");
    go_close(c, out);
}

/* Clear memory that held credentials; volatile, so the stores are not optimised away. */
static void wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n-- > 0)
        *v++ = 0;
}

/* Room for any AUTH line we build (at most 684 octets of base64 and CRLF), reserved up
 * front so that no realloc leaves a copy of the credentials behind. */
#define SECRET_LINE_MAX 1024

/* As emit(), for a command holding credentials: cmd is wiped, and the driver is told not to
 * log what it writes (CLI_ACT_SECRET). */
static int emit_secret(struct cli_out *out, struct buf *cmd, int err)
{
    if (err == 0)
        err = buf_append(out->send, cmd->p, cmd->len);
    if (cmd->p != NULL)
        wipe(cmd->p, cmd->cap);
    buf_free(cmd);
    if (err == 0)
        out->acts |= CLI_ACT_SEND | CLI_ACT_SECRET;
    return err;
}

/* Send one fixed command (CRLF added). Returns 0, or -1 after closing the session. */
static int send_simple(struct smtp_client *c, struct cli_out *out, const char *verb,
    const char *arg)
{
    struct buf cmd;
    int err = 0;

    buf_init(&cmd, 0);
    err |= buf_puts(&cmd, verb);
    if (arg != NULL) {
        err |= buf_puts(&cmd, " ");
        err |= buf_puts(&cmd, arg);
    }
    err |= buf_puts(&cmd, "\r\n");
    if (emit(out, &cmd, err) == -1) {
        emit_failed(c, out);
        return -1;
    }
    return 0;
}

/* An address may go into a command: no CR, LF or other control octet (command injection). */
static bool addr_ok(const char *s)
{
    if (s == NULL)
        return false;
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    }
    return true;
}

/* The size the content will have on the wire (RFC 1870 asks for the octets sent). */
static unsigned long long msg_size(const struct smtp_client *c)
{
    const struct cli_msg *m = c->msg;
    return c->need_7bit && m->size7bit > 0 ? m->size7bit : m->size;
}

static int put_mail(const struct smtp_client *c, struct buf *b)
{
    const struct cli_msg *m = c->msg;
    int err = 0;

    err |= buf_printf(b, "MAIL FROM:<%s>", m->sender);
    if (c->ext.size)
        err |= buf_printf(b, " SIZE=%llu", msg_size(c));
    if (m->eightbit && c->ext.eightbitmime)
        err |= buf_puts(b, " BODY=8BITMIME");
    else if (m->body7bit && c->ext.eightbitmime)
        err |= buf_puts(b, " BODY=7BIT");
    if (m->smtputf8)            /* begin_msg() made sure the server offers it */
        err |= buf_puts(b, " SMTPUTF8");
    if (c->ext.dsn) {
        if (m->ret == SMTP_RET_FULL)
            err |= buf_puts(b, " RET=FULL");
        else if (m->ret == SMTP_RET_HDRS)
            err |= buf_puts(b, " RET=HDRS");
        if (m->envid != NULL && m->envid[0] != '\0') {
            err |= buf_puts(b, " ENVID=");
            err |= smtp_xtext_encode(m->envid, strlen(m->envid), b);
        }
    }
    err |= buf_puts(b, "\r\n");
    return err;
}

static bool type_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
        || ch == '-';
}

/*
 * Append " ORCPT=type;value" for orcpt "type;address". The address is xtext-encoded, except
 * for type utf-8 (RFC 6533), which is already encoded and goes as given: raw UTF-8 only when
 * the transaction has SMTPUTF8. Anything unusable, or a value over SMTP_ORCPT_MAX (which
 * the server would refuse), is left out: ORCPT is optional (RFC 3461 4.2).
 */
static int put_orcpt(struct buf *b, const char *orcpt, bool utf8)
{
    const char *semi = strchr(orcpt, ';');
    struct buf v;
    int err = 0;

    if (semi == NULL || semi == orcpt || semi[1] == '\0')
        return 0;
    size_t tn = (size_t)(semi - orcpt);
    for (size_t k = 0; k < tn; k++) {
        if (!type_char(orcpt[k]))
            return 0;
    }
    buf_init(&v, SMTP_ORCPT_MAX);
    err |= buf_append(&v, orcpt, tn + 1);
    if (str_ieq(orcpt, tn, "utf-8")) {
        for (const char *p = semi + 1; *p; p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch >= 0x80 ? !utf8 : (ch <= 0x20 || ch == '=' || ch == 0x7f))
                err = -1;
        }
        err |= buf_puts(&v, semi + 1);
    } else {
        err |= smtp_xtext_encode(semi + 1, strlen(semi + 1), &v);
    }
    if (err == 0) {
        err |= buf_puts(b, " ORCPT=");
        err |= buf_append(b, v.p, v.len);
    } else {
        err = 0;                /* not sent, not a failure */
    }
    buf_free(&v);
    return err;
}

static int put_rcpt(const struct smtp_client *c, struct buf *b, size_t i)
{
    const struct cli_msg *m = c->msg;
    int err = 0;

    err |= buf_printf(b, "RCPT TO:<%s>", m->rcpts[i]);
    if (c->ext.dsn) {
        unsigned nf = m->notify != NULL ? m->notify[i] : 0;
        if (nf & SMTP_NOTIFY_NEVER) {
            err |= buf_puts(b, " NOTIFY=NEVER");
        } else if (nf & (SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY)) {
            const char *sep = " NOTIFY=";
            if (nf & SMTP_NOTIFY_SUCCESS) {
                err |= buf_printf(b, "%sSUCCESS", sep);
                sep = ",";
            }
            if (nf & SMTP_NOTIFY_FAILURE) {
                err |= buf_printf(b, "%sFAILURE", sep);
                sep = ",";
            }
            if (nf & SMTP_NOTIFY_DELAY)
                err |= buf_printf(b, "%sDELAY", sep);
        }
        if (m->orcpt != NULL && m->orcpt[i] != NULL)
            err |= put_orcpt(b, m->orcpt[i], m->smtputf8);
    }
    err |= buf_puts(b, "\r\n");
    return err;
}

/* First recipient at or after i whose RCPT was sent (replies come in that order). */
static size_t next_sent(const struct smtp_client *c, size_t i)
{
    while (i < c->nres && !(c->rst[i] & RS_SENT))
        i++;
    return i;
}

/* First recipient at or after i still to be sent (non-pipelined). */
static size_t next_unsent(const struct smtp_client *c, size_t i)
{
    while (i < c->nres && (c->rst[i] != RS_PENDING))
        i++;
    return i;
}

/* Non-pipelined: send RCPT for recipient i. Returns 0, or -1 after closing. */
static int send_rcpt(struct smtp_client *c, struct cli_out *out, size_t i)
{
    struct buf cmd;

    buf_init(&cmd, 0);
    if (emit(out, &cmd, put_rcpt(c, &cmd, i)) == -1) {
        emit_failed(c, out);
        return -1;
    }
    c->rst[i] |= RS_SENT;
    c->ri = i;
    return 0;
}

/* Local refusal of the whole message: nothing is sent, the connection stays usable. */
static void refuse_msg(struct smtp_client *c, struct cli_out *out, const char *text,
    const char *status)
{
    fail_open(c, CLI_R_PERM, CLI_STAGE_LOCAL, text, status);
    go_ready(c, out);
}

/* EHLO/HELO (and RSET, if any) are done: check the message against the server, then send
 * MAIL (with every RCPT and DATA when pipelining). */
static void begin_msg(struct smtp_client *c, struct cli_out *out)
{
    const struct cli_msg *m = c->msg;
    char text[sizeof c->res[0].reply];
    size_t nsend = 0;

    c->need_7bit = m->eightbit && !c->ext.eightbitmime;
    c->mail_failed = false;
    c->ignore_dot = false;
    c->naccepted = 0;
    c->rcpt_due = 0;
    c->ri = 0;

    if (!addr_ok(m->sender)) {
        refuse_msg(c, out, "invalid sender address (control character)", "5.1.7");
        return;
    }
    if (c->ext.size && c->ext.size_max > 0 && msg_size(c) > c->ext.size_max) {
        textf(text, sizeof text, "message size exceeds the server's limit (%llu > %llu)",
            msg_size(c), c->ext.size_max);
        refuse_msg(c, out, text, "5.3.4");
        return;
    }
    if (m->smtputf8 && !c->ext.smtputf8) {
        refuse_msg(c, out, "message needs SMTPUTF8, which the server does not offer",
            "5.6.7");
        return;
    }
    for (size_t i = 0; i < c->nres; i++) {
        if (addr_ok(m->rcpts[i]))
            nsend++;
        else
            result_set(c, i, CLI_R_PERM, CLI_STAGE_LOCAL,
                "invalid recipient address (control character)", "5.1.3");
    }
    if (nsend == 0) {
        go_ready(c, out);
        return;
    }

    struct buf cmd;
    int err;
    buf_init(&cmd, 0);
    err = put_mail(c, &cmd);
    if (c->ext.pipelining) {
        /* RFC 2920 3.1: MAIL, every RCPT and DATA (the last) in one group */
        for (size_t i = 0; i < c->nres; i++) {
            if (rs_is(c, i, RS_PENDING)) {
                err |= put_rcpt(c, &cmd, i);
                c->rst[i] |= RS_SENT;
                c->rcpt_due++;
            }
        }
        err |= buf_puts(&cmd, "DATA\r\n");
        c->ri = next_sent(c, 0);
    }
    if (emit(out, &cmd, err) == -1) {
        emit_failed(c, out);
        return;
    }
    set_state(c, CLI_S_MAIL);
}

/* ---- STARTTLS and AUTH ---- */

/* The PLAIN message (RFC 4616 2): empty authzid, NUL, user, NUL, pass. */
static size_t plain_len(const struct smtp_client *c)
{
    return 2 + strlen(c->auth_user) + strlen(c->auth_pass);
}

static int put_plain(const struct smtp_client *c, struct buf *b)
{
    unsigned char raw[2 * CLI_AUTH_MAX + 2];
    size_t un = strlen(c->auth_user), pn = strlen(c->auth_pass);
    int err;

    raw[0] = '\0';
    memcpy(raw + 1, c->auth_user, un);
    raw[1 + un] = '\0';
    memcpy(raw + 2 + un, c->auth_pass, pn);
    err = b64_encode(raw, plain_len(c), b);
    wipe(raw, sizeof raw);
    return err;
}

/* Connection setup cannot go on, for our own reason: open recipients get TEMP; QUIT. */
static void setup_fail(struct smtp_client *c, struct cli_out *out, enum cli_stage stage,
    const char *text, const char *status)
{
    fail_open(c, CLI_R_TEMP, stage, text, status);
    msg_done(c, out);
    if (send_simple(c, out, "QUIT", NULL) == 0)
        set_state(c, CLI_S_QUIT);
}

/* AUTH with PLAIN when offered (one round trip), else LOGIN (RFC 4954 4). */
static void send_auth(struct smtp_client *c, struct cli_out *out)
{
    static const char verb[] = "AUTH PLAIN";
    struct buf cmd;
    int err = 0;

    buf_init(&cmd, 0);
    err |= buf_reserve(&cmd, SECRET_LINE_MAX);
    c->auth_login = !c->ext.auth_plain;
    c->auth_sent = 0;
    if (c->auth_login) {
        err |= buf_puts(&cmd, "AUTH LOGIN\r\n");
    } else {
        /* the initial response only when the line stays within RFC 5321's 512 octets (the
         * servers' usual limit); else it goes in answer to an empty 334 */
        size_t b64 = (plain_len(c) + 2) / 3 * 4;
        err |= buf_puts(&cmd, verb);
        if (sizeof verb /* with the SP */ + b64 + 2 <= SMTP_CMDLINE_MAX) {
            err |= buf_puts(&cmd, " ");
            err |= put_plain(c, &cmd);
            c->auth_sent = 1;
        }
        err |= buf_puts(&cmd, "\r\n");
    }
    if (emit_secret(out, &cmd, err) == -1) {
        emit_failed(c, out);
        return;
    }
    set_state(c, CLI_S_AUTH);
}

/*
 * TLS is settled (in it, refused under MAY, or not wanted): authenticate when credentials
 * are set and the server offers AUTH, then the message. A server without AUTH is used
 * unauthenticated: a smarthost may relay for our address, and it would refuse RCPT if
 * not. A server offering AUTH expects it, so one we cannot use defers instead.
 */
static void after_tls(struct smtp_client *c, struct cli_out *out)
{
    if (c->auth_set && !c->authed) {
        if (c->auth_bad) {
            setup_fail(c, out, CLI_STAGE_LOCAL, "invalid SMTP AUTH credentials configured",
                "4.3.5");
            return;
        }
        if (c->ext.auth) {
            if (!c->tls && !c->auth_plaintext) {
                setup_fail(c, out, CLI_STAGE_AUTH, "not sending credentials without TLS",
                    "4.7.0");
            } else if (!c->ext.auth_plain && !c->ext.auth_login) {
                setup_fail(c, out, CLI_STAGE_AUTH,
                    "the server offers no AUTH mechanism we support (PLAIN, LOGIN)", "4.7.0");
            } else {
                send_auth(c, out);
            }
            return;
        }
    }
    begin_msg(c, out);
}

/* EHLO or HELO succeeded: STARTTLS when the policy wants it and the server offers it. */
static void after_hello(struct smtp_client *c, struct cli_out *out)
{
    if (!c->tls && c->tls_policy != CLI_TLS_NONE) {
        bool must = c->tls_policy >= CLI_TLS_ENCRYPT;
        if (!c->tls_available) {
            if (must) {
                /* our own lack: stage LOCAL, another MX would not help */
                setup_fail(c, out, CLI_STAGE_LOCAL,
                    "TLS required but not available on this side", "4.7.4");
                return;
            }
        } else if (c->ext.starttls) {
            /* alone: it changes the session, so nothing may follow it in a pipelined
             * group (RFC 2920 3.1's rule for such commands) */
            if (send_simple(c, out, "STARTTLS", NULL) == 0)
                set_state(c, CLI_S_STARTTLS);
            return;
        } else if (must) {
            setup_fail(c, out, CLI_STAGE_STARTTLS,
                "TLS required but not offered by the server", "4.7.4");
            return;
        }
    }
    after_tls(c, out);
}

/* ---- replies ---- */

/* Record the EHLO reply's extensions (RFC 5321 4.1.1.1: lines after the first). */
static void parse_ehlo(struct smtp_client *c, const struct smtp_reply *r)
{
    const char *t = r->text.p;
    size_t n = r->text.len;
    size_t i = 0;

    memset(&c->ext, 0, sizeof c->ext);
    c->ext.esmtp = true;
    if (t == NULL)
        return;
    while (i < n && t[i] != '\n')
        i++;
    while (i < n) {
        size_t s = ++i;
        while (i < n && t[i] != '\n')
            i++;
        size_t k = s;
        while (k < i && t[k] != ' ')
            k++;
        const char *kw = t + s;
        size_t kn = k - s;
        if (kn >= 5 && str_ieq(kw, 5, "AUTH=")) {
            /* the pre-RFC 2554 form "AUTH=PLAIN LOGIN" still sent next to AUTH */
            k = s + 4;
            kn = 4;
        }
        if (str_ieq(kw, kn, "AUTH")) {
            c->ext.auth = true;
            while (k < i) {
                while (k < i && (t[k] == ' ' || t[k] == '='))
                    k++;
                size_t e = k;
                while (e < i && t[e] != ' ')
                    e++;
                if (str_ieq(t + k, e - k, "PLAIN"))
                    c->ext.auth_plain = true;
                else if (str_ieq(t + k, e - k, "LOGIN"))
                    c->ext.auth_login = true;
                k = e;
            }
        } else if (str_ieq(kw, kn, "PIPELINING")) {
            c->ext.pipelining = true;
        } else if (str_ieq(kw, kn, "8BITMIME")) {
            c->ext.eightbitmime = true;
        } else if (str_ieq(kw, kn, "DSN")) {
            c->ext.dsn = true;
        } else if (str_ieq(kw, kn, "SMTPUTF8")) {
            c->ext.smtputf8 = true;
        } else if (str_ieq(kw, kn, "STARTTLS")) {
            c->ext.starttls = true;
        } else if (str_ieq(kw, kn, "ENHANCEDSTATUSCODES")) {
            c->ext.enhanced = true;
        } else if (str_ieq(kw, kn, "SIZE")) {
            unsigned long long v;
            c->ext.size = true;
            while (k < i && t[k] == ' ')
                k++;
            size_t e = k;
            while (e < i && t[e] != ' ')
                e++;
            /* "SIZE" alone, "SIZE 0" or junk: no limit announced (RFC 1870 4) */
            c->ext.size_max = e > k && str_to_u64(t + k, e - k, &v) == 0 ? v : 0;
        }
    }
}

/* A 4xx/5xx during connection setup: every recipient gets it; QUIT (RFC 5321 3.1). */
static void setup_refused(struct smtp_client *c, const struct smtp_reply *r,
    struct cli_out *out)
{
    reply_open(c, r, stage_of(c->state), false);
    msg_done(c, out);
    if (send_simple(c, out, "QUIT", NULL) == 0)
        set_state(c, CLI_S_QUIT);
}

static void on_greeting(struct smtp_client *c, const struct smtp_reply *r, struct cli_out *out)
{
    int cls = r->code / 100;
    if (cls == 2) {
        /* RFC 5321 says 220; any 2xx is taken as a welcome (lenient, as most clients) */
        if (send_simple(c, out, "EHLO", c->helo) == 0)
            set_state(c, CLI_S_EHLO);
    } else if (cls == 4 || cls == 5) {
        /* 554: no service here. Reported as PERM with when_connecting set: the caller
         * decides whether to try the next MX (RFC 5321 3.1, 5.1). */
        setup_refused(c, r, out);
    } else {
        protocol_error(c, out, r);
    }
}

static void on_ehlo(struct smtp_client *c, const struct smtp_reply *r, struct cli_out *out)
{
    int cls = r->code / 100;
    if (cls == 2) {
        parse_ehlo(c, r);
        after_hello(c, out);
    } else if (cls == 5) {
        /* 500/502: an RFC 821 server; the state is unchanged (RFC 5321 4.1.4) */
        if (send_simple(c, out, "HELO", c->helo) == 0)
            set_state(c, CLI_S_HELO);
    } else if (cls == 4) {
        setup_refused(c, r, out);
    } else {
        protocol_error(c, out, r);
    }
}

static void on_helo(struct smtp_client *c, const struct smtp_reply *r, struct cli_out *out)
{
    int cls = r->code / 100;
    if (cls == 2) {
        memset(&c->ext, 0, sizeof c->ext);
        after_hello(c, out);
    } else if (cls == 4 || cls == 5) {
        setup_refused(c, r, out);
    } else {
        protocol_error(c, out, r);
    }
}

static void on_starttls(struct smtp_client *c, const struct smtp_reply *r,
    struct cli_out *out)
{
    int cls = r->code / 100;

    if (r->code == 220) {
        set_state(c, CLI_S_TLS);
        out->acts |= CLI_ACT_STARTTLS;
    } else if ((cls == 4 || cls == 5) && c->tls_policy == CLI_TLS_MAY) {
        /* opportunistic: the session goes on in plaintext, and the EHLO reply still holds */
        after_tls(c, out);
    } else if (cls == 4 || cls == 5) {
        char fr[REPLY_FORMAT_MAX + 1];
        char text[sizeof c->res[0].reply];
        reply_format(r, fr, sizeof fr);
        textf(text, sizeof text, "TLS required but STARTTLS was refused: %s", fr);
        setup_fail(c, out, CLI_STAGE_STARTTLS, text, "4.7.4");
    } else {
        protocol_error(c, out, r);
    }
}

/*
 * AUTH was refused. Always TEMP, also for 535 and other 5xx: bad credentials are ours to
 * fix, and the mail should wait for the admin rather than bounce. 535 becomes 4.7.8; any
 * other enhanced code keeps its detail with class 4; 4.7.0 when there is none.
 */
static void auth_refused(struct smtp_client *c, const struct smtp_reply *r,
    struct cli_out *out)
{
    char text[sizeof c->res[0].reply];
    char status[sizeof c->res[0].status];

    reply_format(r, text, sizeof text);
    if (r->code == 535 || r->enh[0] == '\0')
        (void)str_copy(status, sizeof status, r->code == 535 ? "4.7.8" : "4.7.0");
    else
        textf(status, sizeof status, "4%s", r->enh + 1);
    setup_fail(c, out, CLI_STAGE_AUTH, text, status);
}

static void on_auth(struct smtp_client *c, const struct smtp_reply *r, struct cli_out *out)
{
    int cls = r->code / 100;
    unsigned need = c->auth_login ? 2 : 1;      /* LOGIN: user, pass; PLAIN: one message */

    if (r->code == 334 && c->auth_sent < need) {
        /* the challenge text ("VXNlcm5hbWU6" etc.) is not checked: servers vary */
        struct buf cmd;
        int err;
        buf_init(&cmd, 0);
        err = buf_reserve(&cmd, SECRET_LINE_MAX);
        if (!c->auth_login) {
            err |= put_plain(c, &cmd);
        } else {
            const char *v = c->auth_sent == 0 ? c->auth_user : c->auth_pass;
            err |= b64_encode(v, strlen(v), &cmd);
        }
        err |= buf_puts(&cmd, "\r\n");
        if (emit_secret(out, &cmd, err) == -1) {
            emit_failed(c, out);
            return;
        }
        c->auth_sent++;
    } else if (cls == 2 && c->auth_sent == need) {
        /* RFC 4954 says 235; no security layer with PLAIN or LOGIN, so no new EHLO */
        c->authed = true;
        begin_msg(c, out);
    } else if (cls == 4 || cls == 5) {
        auth_refused(c, r, out);
    } else {
        /* XXX: a 334 past the mechanism's end could be cancelled with "*" (RFC 4954 4);
         * a server that confused is not worth the state */
        protocol_error(c, out, r);
    }
}

static void on_rset(struct smtp_client *c, const struct smtp_reply *r, struct cli_out *out)
{
    if (r->code / 100 == 2) {
        c->need_rset = false;
        begin_msg(c, out);
    } else {
        protocol_error(c, out, r);
    }
}

/* Every RCPT reply is in (or, non-pipelined, every RCPT was answered). */
static void rcpts_answered(struct smtp_client *c, struct cli_out *out)
{
    if (c->ext.pipelining) {
        set_state(c, CLI_S_DATA);       /* DATA went with the group */
    } else if (c->naccepted > 0) {
        if (send_simple(c, out, "DATA", NULL) == 0)
            set_state(c, CLI_S_DATA);
    } else {
        c->need_rset = true;            /* MAIL was accepted: the transaction is open */
        go_ready(c, out);
    }
}

static void on_mail(struct smtp_client *c, const struct smtp_reply *r, struct cli_out *out)
{
    int cls = r->code / 100;
    if (cls == 2) {
        set_state(c, CLI_S_RCPT);
        if (!c->ext.pipelining)
            (void)send_rcpt(c, out, next_unsent(c, 0));
    } else if (cls == 4 || cls == 5) {
        reply_open(c, r, CLI_STAGE_MAIL, false);
        if (c->ext.pipelining) {
            /* the RCPT and DATA replies are still to come: consume them */
            c->mail_failed = true;
            set_state(c, CLI_S_RCPT);
        } else {
            go_ready(c, out);
        }
    } else {
        protocol_error(c, out, r);
    }
}

static void on_rcpt(struct smtp_client *c, const struct smtp_reply *r, struct cli_out *out)
{
    int cls = r->code / 100;
    size_t i = c->ri;

    assert(i < c->nres);
    if (!c->mail_failed) {
        if (cls == 2) {
            c->rst[i] = RS_SENT | RS_ACCEPTED;
            c->naccepted++;
        } else if (cls == 4 || cls == 5) {
            result_reply(c, i, r, CLI_STAGE_RCPT);
        } else {
            protocol_error(c, out, r);
            return;
        }
    }
    if (c->ext.pipelining) {
        if (--c->rcpt_due > 0) {
            c->ri = next_sent(c, i + 1);
            return;
        }
        rcpts_answered(c, out);
        return;
    }
    size_t j = next_unsent(c, i + 1);
    if (j < c->nres)
        (void)send_rcpt(c, out, j);
    else
        rcpts_answered(c, out);
}

static void on_data(struct smtp_client *c, const struct smtp_reply *r, struct cli_out *out)
{
    int cls = r->code / 100;

    if (c->naccepted == 0) {
        /* pipelined, nobody accepted: the server should have said 503/554 */
        if (r->code == 354) {
            /* RFC 2920 3.1: an empty message ends the DATA; its reply is ignored */
            struct buf cmd;
            buf_init(&cmd, 0);
            if (emit(out, &cmd, buf_puts(&cmd, ".\r\n")) == -1) {
                emit_failed(c, out);
                return;
            }
            c->ignore_dot = true;
            set_state(c, CLI_S_DOT);
        } else {
            c->need_rset = !c->mail_failed;
            go_ready(c, out);
        }
        return;
    }
    if (r->code == 354) {
        set_state(c, CLI_S_BODY);
        out->acts |= CLI_ACT_SEND_BODY;
    } else if (cls == 4 || cls == 5) {
        reply_open(c, r, CLI_STAGE_DATA, true);
        c->need_rset = true;
        go_ready(c, out);
    } else {
        protocol_error(c, out, r);
    }
}

static void on_dot(struct smtp_client *c, const struct smtp_reply *r, struct cli_out *out)
{
    int cls = r->code / 100;

    if (!c->ignore_dot) {
        if (cls != 2 && cls != 4 && cls != 5) {
            protocol_error(c, out, r);
            return;
        }
        /* RFC 5321 4.1.1.4: one reply for every accepted recipient */
        reply_open(c, r, CLI_STAGE_DOT, true);
    }
    c->need_rset = false;
    go_ready(c, out);
}

void cli_reply(struct smtp_client *c, const struct smtp_reply *r, struct cli_out *out)
{
    out->acts = CLI_ACT_NONE;
    if (c->state == CLI_S_QUIT || c->state == CLI_S_CLOSED) {
        go_close(c, out);
        return;
    }
    if (c->state == CLI_S_TLS) {
        /* whatever came after the 220 was sent in plaintext, outside TLS: injected
         * (STARTTLS response injection, the client side of CVE-2011-0411). The driver
         * discards the rest of that read; anything that still gets here ends the session */
        protocol_error(c, out, r);
        return;
    }
    if (r->code == 421) {
        /* RFC 5321 3.8: the server is closing the channel; no more replies will come */
        reply_open(c, r, stage_of(c->state), false);
        go_close(c, out);
        return;
    }
    switch (c->state) {
    case CLI_S_GREETING: on_greeting(c, r, out); break;
    case CLI_S_EHLO:     on_ehlo(c, r, out); break;
    case CLI_S_HELO:     on_helo(c, r, out); break;
    case CLI_S_STARTTLS: on_starttls(c, r, out); break;
    case CLI_S_AUTH:     on_auth(c, r, out); break;
    case CLI_S_RSET:     on_rset(c, r, out); break;
    case CLI_S_MAIL:     on_mail(c, r, out); break;
    case CLI_S_RCPT:     on_rcpt(c, r, out); break;
    case CLI_S_DATA:     on_data(c, r, out); break;
    case CLI_S_DOT:      on_dot(c, r, out); break;
    default:             protocol_error(c, out, r); break;  /* INIT, READY, BODY */
    }
}

/* ---- driver entry points ---- */

void cli_init(struct smtp_client *c, const char *helo_name)
{
    size_t o = 0;

    memset(c, 0, sizeof *c);
    for (const char *p = helo_name; p != NULL && *p && o + 1 < sizeof c->helo; p++) {
        if ((unsigned char)*p > 0x20 && (unsigned char)*p < 0x7f)
            c->helo[o++] = *p;
    }
    c->helo[o] = '\0';
    set_state(c, CLI_S_INIT);
}

static void msg_clear(struct smtp_client *c)
{
    free(c->res);
    free(c->rst);
    c->res = NULL;
    c->rst = NULL;
    c->nres = 0;
    c->msg = NULL;
    c->msg_open = false;
}

void cli_free(struct smtp_client *c)
{
    msg_clear(c);
    wipe(c->auth_user, sizeof c->auth_user);
    wipe(c->auth_pass, sizeof c->auth_pass);
}

void cli_set_tls(struct smtp_client *c, enum cli_tls policy, bool tls_available)
{
    assert(c->state == CLI_S_INIT);
    c->tls_policy = policy;
    c->tls_available = tls_available;
}

/* 1..CLI_AUTH_MAX octets, no CR or LF (they could never reach a command, but a user name
 * with a line break is a configuration mistake worth catching). */
static bool cred_ok(const char *s)
{
    const char *end = s != NULL ? memchr(s, '\0', CLI_AUTH_MAX + 1) : NULL;
    return end != NULL && end > s && strpbrk(s, "\r\n") == NULL;
}

int cli_set_auth(struct smtp_client *c, const char *user, const char *pass,
    bool allow_plaintext)
{
    assert(c->state == CLI_S_INIT);
    wipe(c->auth_user, sizeof c->auth_user);
    wipe(c->auth_pass, sizeof c->auth_pass);
    c->auth_set = true;
    c->auth_plaintext = allow_plaintext;
    c->auth_bad = !cred_ok(user) || !cred_ok(pass);
    if (c->auth_bad) {
        errno = EINVAL;
        return -1;
    }
    (void)str_copy(c->auth_user, sizeof c->auth_user, user);
    (void)str_copy(c->auth_pass, sizeof c->auth_pass, pass);
    return 0;
}

static void msg_set(struct smtp_client *c, const struct cli_msg *m)
{
    assert(m != NULL && (m->nrcpt == 0 || m->rcpts != NULL));
    msg_clear(c);
    c->msg = m;
    c->nres = m->nrcpt;
    c->res = xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof *c->res);
    c->rst = xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof *c->rst);
    for (size_t i = 0; i < c->nres; i++) {
        c->res[i].kind = CLI_R_TEMP;
        (void)str_copy(c->res[i].reply, sizeof c->res[i].reply, "not attempted");
        (void)str_copy(c->res[i].status, sizeof c->res[i].status, "4.0.0");
        c->res[i].stage = CLI_STAGE_LOCAL;
    }
    c->msg_open = true;
}

void cli_start(struct smtp_client *c, const struct cli_msg *m, struct cli_out *out)
{
    assert(c->state == CLI_S_INIT);
    out->acts = CLI_ACT_NONE;
    msg_set(c, m);
    set_state(c, CLI_S_GREETING);
}

void cli_body_sent(struct smtp_client *c, struct cli_out *out)
{
    out->acts = CLI_ACT_NONE;
    assert(c->state == CLI_S_BODY);
    set_state(c, CLI_S_DOT);
}

void cli_tls_done(struct smtp_client *c, bool ok, const char *detail, struct cli_out *out)
{
    char text[sizeof c->res[0].reply];

    out->acts = CLI_ACT_NONE;
    if (c->state == CLI_S_QUIT || c->state == CLI_S_CLOSED) {
        go_close(c, out);
        return;
    }
    assert(c->state == CLI_S_TLS);
    if (!ok) {
        /* the connection is unusable (no QUIT in plaintext now); for MAY too, the host is
         * left for now rather than retried in plaintext (Postfix does the latter) */
        textf(text, sizeof text, "TLS handshake failed%s%s", detail != NULL ? ": " : "",
            detail != NULL ? detail : "");
        abort_session(c, out, text, "4.7.5");
        return;
    }
    c->tls = true;
    /* RFC 3207 4.2: forget what the server said before TLS, and ask again */
    memset(&c->ext, 0, sizeof c->ext);
    if (send_simple(c, out, "EHLO", c->helo) == 0)
        set_state(c, CLI_S_EHLO);
}

void cli_next(struct smtp_client *c, const struct cli_msg *m, struct cli_out *out)
{
    assert(c->state == CLI_S_READY);
    out->acts = CLI_ACT_NONE;
    msg_set(c, m);
    if (c->need_rset) {
        /* not pipelined with MAIL: a refused RSET would make MAIL's reply misleading */
        if (send_simple(c, out, "RSET", NULL) == 0)
            set_state(c, CLI_S_RSET);
        return;
    }
    begin_msg(c, out);
}

void cli_quit(struct smtp_client *c, struct cli_out *out)
{
    out->acts = CLI_ACT_NONE;
    if (c->state == CLI_S_QUIT || c->state == CLI_S_CLOSED) {
        go_close(c, out);
        return;
    }
    assert(c->state == CLI_S_READY);
    if (send_simple(c, out, "QUIT", NULL) == 0)
        set_state(c, CLI_S_QUIT);
}

void cli_fail(struct smtp_client *c, enum cli_fail why, const char *detail,
    struct cli_out *out)
{
    char text[sizeof c->res[0].reply];
    const char *where = where_of(c->state);
    const char *d = detail != NULL ? detail : "";
    const char *sep = detail != NULL ? ": " : "";

    out->acts = CLI_ACT_NONE;
    if (c->state == CLI_S_QUIT || c->state == CLI_S_CLOSED) {
        go_close(c, out);
        return;
    }
    switch (why) {
    case CLI_FAIL_CONNECT:
        textf(text, sizeof text, "connect failed%s%s", sep, d);
        fail_open(c, CLI_R_TEMP, CLI_STAGE_CONNECT, text, "4.4.1");
        go_close(c, out);
        return;
    case CLI_FAIL_TIMEOUT:
        textf(text, sizeof text, "timed out %s%s%s", where, sep, d);
        abort_session(c, out, text, "4.4.2");
        return;
    case CLI_FAIL_CLOSED:
        textf(text, sizeof text, "lost connection %s%s%s", where, sep, d);
        abort_session(c, out, text, "4.4.2");
        return;
    case CLI_FAIL_PROTOCOL:
        textf(text, sizeof text, "protocol error %s%s%s", where, sep, d);
        abort_session(c, out, text, "4.5.0");
        return;
    case CLI_FAIL_LOCAL:
        textf(text, sizeof text, "local error %s%s%s", where, sep, d);
        abort_session(c, out, text, "4.3.0");
        return;
    }
    abort_session(c, out, "unknown failure", "4.0.0");
}

unsigned cli_timeout(const struct smtp_client *c)
{
    switch (c->state) {
    case CLI_S_GREETING: return CLI_TIMEOUT_GREETING;
    case CLI_S_EHLO:
    case CLI_S_HELO:     return CLI_TIMEOUT_HELO;
    case CLI_S_MAIL:     return CLI_TIMEOUT_MAIL;
    case CLI_S_RCPT:     return CLI_TIMEOUT_RCPT;
    case CLI_S_DATA:     return CLI_TIMEOUT_DATA_INIT;
    case CLI_S_BODY:     return CLI_TIMEOUT_DATA_BLOCK;
    case CLI_S_DOT:      return CLI_TIMEOUT_DATA_END;
    case CLI_S_TLS:      return CLI_TIMEOUT_TLS;
    case CLI_S_STARTTLS:
    case CLI_S_AUTH:
    case CLI_S_RSET:
    case CLI_S_QUIT:     return CLI_TIMEOUT_OTHER;
    default:             return 0;
    }
}

bool cli_needs_7bit(const struct smtp_client *c)
{
    return c->msg != NULL && c->need_7bit;
}

bool cli_in_tls(const struct smtp_client *c)
{
    return c->tls;
}

const struct cli_result *cli_results(const struct smtp_client *c, size_t *n)
{
    *n = c->nres;
    return c->res;
}

/* ---- message content ---- */

unsigned long long cli_body_size(const char *text, size_t n)
{
    unsigned long long sz = n;
    for (const char *p = text, *e = text + n; p < e; p++) {
        if (*p == '\n')
            sz++;
    }
    if (n > 0 && text[n - 1] != '\n')
        sz += 2;
    return sz;
}

int cli_body_put(const char *text, size_t n, struct buf *out)
{
    const char *p = text, *end = text + n;
    int err = 0;

    while (p < end && err == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        if (ll > 0 && p[0] == '.')
            err |= buf_append(out, ".", 1);
        err |= buf_append(out, p, ll);
        err |= buf_append(out, "\r\n", 2);
        p += ll + (nl != NULL ? 1 : 0);
    }
    err |= buf_append(out, ".\r\n", 3);
    return err ? -1 : 0;
}
