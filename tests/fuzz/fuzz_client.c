/*
 * tests/fuzz/fuzz_client.c - libFuzzer target for the sender-SMTP session machine
 * (smtp/client.c) fed with arbitrary server replies.
 *
 * Input: a 4-byte header, then the bytes the server sends.
 *   [0] session: bits 0-1 TLS policy (none, may, encrypt, verify), 2 TLS available,
 *       3 credentials set, 4 ... but bad ones, 5 credentials allowed without TLS,
 *       6 a small output buffer, 7 the TLS handshake fails
 *   [1] message: bits 0-1 recipients - 1, 2 8-bit content, 3 SMTPUTF8, 4-5 RET,
 *       6 ENVID, NOTIFY and ORCPT, 7 a recipient with a CR LF in it
 *   [2] driver: bits 0-2 how the input ends (cli_fail() reason), 3-5 messages after the
 *       first, 6 the 7-bit size is known, 7 long credentials (PLAIN after an empty 334)
 *   [3] read size: pieces of [3] bytes (0: the whole input in one read)
 * The replies are parsed and fed the way deliver/remote.c does it: reply by reply, with
 * cli_fail(CLI_FAIL_PROTOCOL) on a parse error, the rest of the read dropped and the parser
 * reset at CLI_ACT_STARTTLS, every action carried out at once (content "sent" at
 * CLI_ACT_SEND_BODY, the next message or QUIT at CLI_ACT_READY).
 * Checked throughout: commands are CRLF lines without control octets; credentials go only
 * with CLI_ACT_SECRET and only in TLS or when allowed in plaintext; the actions agree with
 * the state; the machine never waits without a reason to (no stall); each message is done
 * exactly once, before the session closes, with a final, well-formed result for every
 * recipient; and ASan/UBSan.
 * Build: make build-fuzz/fuzz_client
 * Corpus: tests/fuzz/corpus/client/ (the server sides of tests/transcripts/client/)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/client.h"
#include "smtp/parse.h"
#include "smtp/reply.h"
#include "util/buf.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define MAX_MSGS 8

static const char *const rcpts_ok[] = {
    "r1@d.example", "r2@d.example", "r3@d.example", "r4@d.example"
};
static const char *const rcpts_bad[] = {
    "r1@d.example", "x@d.example\r\nRSET", "r3@d.example", "r4@d.example"
};
static const unsigned notify[] = {
    SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, SMTP_NOTIFY_NEVER, 0, SMTP_NOTIFY_DELAY
};
static const char *const orcpt[] = {
    "rfc822;r1+x@d.example", NULL, "utf-8;j\xc3\xb6rg@d.example", "bad type;x"
};

struct drv {
    struct smtp_client c;
    struct buf send;
    struct cli_msg msg;
    unsigned left;              /* messages still to send after the current one */
    bool msg_open;              /* the current message is not done yet */
    bool closed;
    bool tls_fails;
    bool plaintext_ok;          /* credentials may go without TLS */
    bool dropped;               /* CLI_ACT_STARTTLS: drop the rest of the read */
    struct reply_parser rp;
    const char *secrets[3];     /* what the credentials look like on the wire */
};

static void b64(const unsigned char *s, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned long v = (unsigned long)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned long)s[i + 1] << 8;
        if (i + 2 < n)
            v |= s[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
}

/* The commands just appended: CRLF lines, no other control octet, no credentials unless
 * flagged, and credentials only where they may go. */
static void check_send(struct drv *d, unsigned acts)
{
    const char *p = d->send.p;
    size_t n = d->send.len;
    CHECK(n > 0 && p[n - 1] == '\n');
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '\n') {
            CHECK(i > start && p[i - 1] == '\r');
            CHECK(i - start <= 1024);
            start = i + 1;
        } else if (ch == '\r') {
            CHECK(i + 1 < n && p[i + 1] == '\n');
        } else {
            CHECK(ch >= 0x20 && ch != 0x7f);
        }
    }
    for (size_t k = 0; k < 3; k++) {
        const char *s = d->secrets[k];
        if (s == NULL || memmem(p, n, s, strlen(s)) == NULL)
            continue;
        CHECK(acts & CLI_ACT_SECRET);
        CHECK(cli_in_tls(&d->c) || d->plaintext_ok);
    }
}

static void check_results(struct drv *d)
{
    size_t n;
    const struct cli_result *res = cli_results(&d->c, &n);
    CHECK(n == d->msg.nrcpt);
    for (size_t i = 0; i < n; i++) {
        const struct cli_result *r = &res[i];
        CHECK(r->kind == CLI_R_OK || r->kind == CLI_R_TEMP || r->kind == CLI_R_PERM);
        CHECK(r->stage <= CLI_STAGE_LOCAL);
        CHECK(r->when_connecting == (r->stage <= CLI_STAGE_AUTH));
        CHECK(memchr(r->reply, '\0', sizeof r->reply) != NULL && r->reply[0] != '\0');
        CHECK(memchr(r->status, '\0', sizeof r->status) != NULL);
        CHECK(r->status[0] == (r->kind == CLI_R_OK ? '2' : r->kind == CLI_R_TEMP ? '4' : '5'));
        CHECK(r->status[1] == '.');
        for (const char *q = r->reply; *q; q++)
            CHECK((unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7f);
        /* every path decides each recipient; this is client.c's safety net */
        CHECK(strcmp(r->reply, "internal error: no outcome") != 0);
        CHECK(strcmp(r->reply, "not attempted") != 0);
        /* a recipient that cannot go into a command is never reported as delivered */
        if (strpbrk(d->msg.rcpts[i], "\r\n") != NULL)
            CHECK(r->kind != CLI_R_OK);
    }
}

/* Carry out the actions of one call, as deliver/remote.c does. */
static void handle(struct drv *d, struct cli_out *out)
{
    struct smtp_client *c = &d->c;
    unsigned acts = out->acts;
    unsigned last = acts & (CLI_ACT_SEND_BODY | CLI_ACT_READY | CLI_ACT_STARTTLS |
        CLI_ACT_CLOSE);

    CHECK((acts & ~0x7fu) == 0);
    CHECK((last & (last - 1)) == 0);                /* at most one of them */
    CHECK(!(acts & CLI_ACT_SECRET) || (acts & CLI_ACT_SEND));
    CHECK(((acts & CLI_ACT_SEND) != 0) == (d->send.len > 0));
    if (acts & CLI_ACT_MSG_DONE) {
        CHECK(d->msg_open);
        d->msg_open = false;
        check_results(d);
    }
    if (acts & CLI_ACT_SEND) {
        check_send(d, acts);
        buf_reset(&d->send);
    }
    struct cli_out o = { &d->send, CLI_ACT_NONE };
    switch (last) {
    case CLI_ACT_SEND_BODY:
        CHECK(c->state == CLI_S_BODY && d->msg_open);
        CHECK(cli_timeout(c) == CLI_TIMEOUT_DATA_BLOCK);
        CHECK(cli_needs_7bit(c) == (d->msg.eightbit && !c->ext.eightbitmime));
        cli_body_sent(c, &o);
        CHECK(o.acts == CLI_ACT_NONE && c->state == CLI_S_DOT);
        return;
    case CLI_ACT_STARTTLS:
        CHECK(c->state == CLI_S_TLS && !cli_in_tls(c) && c->ext.starttls);
        CHECK(c->tls_policy != CLI_TLS_NONE && c->tls_available);
        d->dropped = true;
        reply_parser_free(&d->rp);
        reply_parser_init(&d->rp);
        cli_tls_done(c, !d->tls_fails, d->tls_fails ? "handshake failed" : NULL, &o);
        handle(d, &o);
        return;
    case CLI_ACT_READY:
        CHECK(c->state == CLI_S_READY && !d->msg_open && cli_timeout(c) == 0);
        if (d->left > 0) {
            d->left--;
            d->msg_open = true;
            cli_next(c, &d->msg, &o);
        } else {
            cli_quit(c, &o);
        }
        handle(d, &o);
        return;
    case CLI_ACT_CLOSE:
        CHECK(c->state == CLI_S_CLOSED && !d->msg_open);
        d->closed = true;
        return;
    default:
        /* nothing to do but wait for a reply: one must be due */
        CHECK(c->state != CLI_S_INIT && c->state != CLI_S_READY && c->state != CLI_S_BODY &&
            c->state != CLI_S_TLS && c->state != CLI_S_CLOSED);
        CHECK(cli_timeout(c) > 0);
        return;
    }
}

/* One read of server output: complete replies are fed in order. */
static void feed(struct drv *d, const char *p, size_t n)
{
    d->dropped = false;
    while (n > 0 && !d->closed && !d->dropped) {
        struct smtp_reply r;
        bool done = false;
        struct cli_out o = { &d->send, CLI_ACT_NONE };
        memset(&r, 0, sizeof r);
        size_t used = reply_parse(&d->rp, p, n, &r, &done);
        if (used == (size_t)-1) {
            cli_fail(&d->c, CLI_FAIL_PROTOCOL, d->rp.err, &o);
            CHECK(o.acts & CLI_ACT_CLOSE);
            handle(d, &o);
            return;
        }
        CHECK(used <= n);
        p += used;
        n -= used;
        if (!done) {
            CHECK(n == 0);
            return;
        }
        cli_reply(&d->c, &r, &o);
        reply_free(&r);
        handle(d, &o);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char sec[3][800];
    if (size < 4)
        return 0;
    unsigned h0 = data[0], h1 = data[1], h2 = data[2], piece = data[3];
    const char *in = (const char *)data + 4;
    size_t n = size - 4;

    struct drv *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    reply_parser_init(&d->rp);
    buf_init(&d->send, h0 & 64 ? 64 : 64 * 1024);
    cli_init(&d->c, "client.example");
    cli_set_tls(&d->c, (enum cli_tls)(h0 & 3), h0 & 4);
    d->tls_fails = h0 & 128;
    if (h0 & 8) {
        char user[256], pass[256];
        if (h2 & 128) {
            memset(user, 'u', 200);
            user[200] = '\0';
            memset(pass, 'p', 200);
            pass[200] = '\0';
        } else {
            memcpy(user, "user", 5);
            memcpy(pass, "s3cr\xc3\xa9t", 8);
        }
        d->plaintext_ok = h0 & 32;
        int rc = cli_set_auth(&d->c, h0 & 16 ? "bad\r\nuser" : user, pass, d->plaintext_ok);
        CHECK((rc == -1) == ((h0 & 16) != 0));
        if (rc == 0) {
            unsigned char raw[600];
            size_t un = strlen(user), pn = strlen(pass);
            raw[0] = '\0';
            memcpy(raw + 1, user, un);
            raw[1 + un] = '\0';
            memcpy(raw + 2 + un, pass, pn);
            b64(raw, un + pn + 2, sec[0]);
            b64((const unsigned char *)user, un, sec[1]);
            b64((const unsigned char *)pass, pn, sec[2]);
            for (int k = 0; k < 3; k++)
                d->secrets[k] = sec[k];
        }
    }
    struct cli_msg *m = &d->msg;
    m->sender = h1 & 8 ? "s\xc3\xa5@b.example" : "s@b.example";
    m->rcpts = h1 & 128 ? rcpts_bad : rcpts_ok;
    m->nrcpt = (h1 & 3) + 1;
    m->eightbit = h1 & 4;
    m->smtputf8 = h1 & 8;
    m->ret = (h1 >> 4) & 3;
    if (h1 & 64) {
        m->notify = notify;
        m->orcpt = orcpt;
        m->envid = "env id=1";
    }
    m->size = 1000;
    m->size7bit = h2 & 64 ? 1400 : 0;
    d->left = (h2 >> 3) & 7;

    struct cli_out o = { &d->send, CLI_ACT_NONE };
    CHECK(cli_timeout(&d->c) == 0);
    cli_start(&d->c, m, &o);
    CHECK(o.acts == CLI_ACT_NONE && d->send.len == 0);
    d->msg_open = true;
    CHECK(cli_timeout(&d->c) == CLI_TIMEOUT_GREETING);

    for (size_t i = 0; i < n && !d->closed; ) {
        size_t k = piece ? piece : n;
        if (k > n - i)
            k = n - i;
        feed(d, in + i, k);
        i += k;
    }
    if (!d->closed) {
        unsigned why = h2 & 7;
        o.acts = CLI_ACT_NONE;
        cli_fail(&d->c, (enum cli_fail)(why <= CLI_FAIL_LOCAL ? why : CLI_FAIL_CLOSED),
            "end of input", &o);
        CHECK(o.acts & CLI_ACT_CLOSE);
        handle(d, &o);
        CHECK(d->closed);
    }
    CHECK(!d->msg_open);
    cli_free(&d->c);
    CHECK(d->c.auth_user[0] == '\0' && d->c.auth_pass[0] == '\0');
    reply_parser_free(&d->rp);
    buf_free(&d->send);
    free(d);
    return 0;
}
