/*
 * tests/fuzz/fuzz_server.c - libFuzzer target for the session machine (smtp/server.c).
 *
 * Input: a 4-byte header, then the bytes a client sends.
 *   [0] session: bit 0 STARTTLS offered, 1 AUTH offered, 2 AUTH without TLS, 3 submission
 *       (MAIL needs AUTH), 4 ETRN allowed, 5 may relay, 6 implicit TLS, 7 the second config
 *       (VRFY and EXPN on, small size and recipient limits, few errors, 251 replies)
 *   [1..2] outcomes, two bits per driver decision, used in turn: commit ok / no space /
 *       failure; password check ok / refused / locked out
 *   [3] read size of the second run: pieces of [3] bytes (0: one byte at a time)
 * The stream is fed the way net/smtpd.c feeds it (complete lines in line mode, line cap
 * and discarding, content spilled to the "spool" past a threshold), and every action is
 * carried out at once. The stream is run whole and in pieces: the replies must be the same.
 * Checked throughout: replies are well-formed CRLF lines, the state and the open
 * transaction agree, the machine never stalls on input it must read, and ASan/UBSan.
 * Build: make build-fuzz/fuzz_server
 * Corpus: tests/fuzz/corpus/server/ (the transcripts' client sides)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "smtp/limits.h"
#include "smtp/server.h"
#include "util/buf.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define LINE_CAP  SMTP_CMDLINE_EXT_MAX  /* as net/smtpd.c */
#define SPILL_AT  (4 * 1024)            /* smaller than the driver's, to spill often */

static const char conf_a[] =
    "hostname = mx.test\nlocal_domains = example.test localhost\n"
    "local_users = alice bob\nalias postmaster: alice\n"
    "alias team: alice, bob, far@remote.test\nalias fwd: far@remote.test\n";
static const char conf_b[] =
    "hostname = mx.test\nlocal_domains = example.test localhost\n"
    "local_users = alice bob\nalias postmaster: alice\n"
    "alias team: alice, bob, far@remote.test\nalias fwd: far@remote.test\n"
    "vrfy = on\nexpn = on\nmessage_size_limit = 2000\nmax_recipients = 3\n"
    "max_errors = 4\nmax_line_length = 100\nrcpt_251 = on\n";

static struct conf *confs[2];
static unsigned qid;

static void f_new_id(void *ctx, char *id, size_t idsz)
{
    (void)ctx;
    snprintf(id, idsz, "Q%07u", ++qid % 10000000u);
}

static time_t f_now(void *ctx)
{
    (void)ctx;
    return 1767225600;
}

/* alice may send as alice@...; anyone may send the null path */
static bool f_sender_ok(void *ctx, const char *user, const char *sender)
{
    (void)ctx;
    size_t n = strlen(user);
    return sender[0] == '\0' || (strncmp(sender, user, n) == 0 && sender[n] == '@');
}

static const struct srv_env env = { NULL, f_sender_ok, f_new_id, f_now };

struct drv {
    struct smtp_server s;
    struct buf replies;
    size_t checked;             /* replies checked so far */
    unsigned outcomes;          /* two bits per decision */
    unsigned nout;
    char *pend;                 /* unread input */
    size_t plen;
    bool discarding;            /* dropping the rest of an overlong line */
};

static unsigned outcome(struct drv *d)
{
    unsigned v = (d->outcomes >> (2 * (d->nout % 8))) & 3;
    d->nout++;
    return v;
}

/* Every new reply byte is part of a "DDD-text" or "DDD text" line ending in CRLF. */
static void check_replies(struct drv *d)
{
    const char *p = d->replies.p;
    size_t i = d->checked, n = d->replies.len;
    while (i < n) {
        CHECK(n - i >= 6);
        for (int k = 0; k < 3; k++)
            CHECK(p[i + k] >= '0' && p[i + k] <= '9');
        CHECK(p[i] >= '2' && p[i] <= '5');
        CHECK(p[i + 3] == ' ' || p[i + 3] == '-');
        size_t j = i + 4;
        while (j < n && p[j] != '\r' && p[j] != '\n') {
            CHECK(p[j] != '\0');
            j++;
        }
        CHECK(j + 1 < n && p[j] == '\r' && p[j + 1] == '\n');
        CHECK(j - i <= 1024);
        i = j + 2;
    }
    d->checked = n;
}

/* The state and the open transaction agree. */
static void check_state(const struct smtp_server *s)
{
    const struct srv_tx *t = s->tx;
    CHECK(!s->auth_busy);
    switch (s->state) {
    case SRV_INIT:
        CHECK(t == NULL && s->helo[0] == '\0');
        break;
    case SRV_READY:
        CHECK(t == NULL && s->helo[0] != '\0');
        break;
    case SRV_MAIL:
        CHECK(t != NULL && t->nrcpt == 0 && s->helo[0] != '\0');
        break;
    case SRV_RCPT:
        CHECK(t != NULL && t->nrcpt > 0 && s->helo[0] != '\0');
        break;
    case SRV_DATA:
        CHECK(t != NULL && t->nrcpt > 0 && !t->bdat && t->id[0] != '\0');
        break;
    case SRV_BDAT:
        CHECK(t != NULL && t->bdat && t->bdat_left > 0);
        break;
    case SRV_COMMIT:
        CHECK(0);           /* commits are carried out at once */
        break;
    case SRV_CLOSED:
        break;
    }
    if (t) {
        CHECK(t->nrcpt <= t->rcpt_cap);
        CHECK(t->nrcpt <= s->conf->max_recipients);
        CHECK(t->body.len < SPILL_AT + 128 * 1024);
    }
    CHECK(memchr(s->auth_try_user, '\0', sizeof s->auth_try_user) != NULL);
    CHECK(memchr(s->helo, '\0', sizeof s->helo) != NULL);
}

/* Carry out an action as the driver does; false when the session is over. */
static bool act(struct drv *d, struct srv_out *out)
{
    struct smtp_server *s = &d->s;
    enum srv_act a = out->act;
    out->act = SRV_ACT_NONE;
    switch (a) {
    case SRV_ACT_COMMIT: {
        CHECK(s->state == SRV_COMMIT && s->tx && s->tx->nrcpt > 0 && s->tx->id[0]);
        struct buf rcv;
        buf_init(&rcv, 0);
        srv_received(s, &rcv);
        CHECK(rcv.len > 0);
        buf_free(&rcv);
        (void)srv_proto(s);
        unsigned o = outcome(d);
        srv_commit_done(s, o == 1 ? SRV_COMMIT_NOSPACE : o == 2 ? SRV_COMMIT_FAIL :
            SRV_COMMIT_OK, out);
        CHECK(out->act == SRV_ACT_NONE);
        return true;
    }
    case SRV_ACT_AUTH: {
        CHECK(s->auth_busy && srv_input_mode(s) == SRV_IN_WAIT);
        unsigned o = outcome(d);
        srv_auth_done(s, o == 0, o == 3, out);
        CHECK(!s->auth_busy);
        CHECK(s->auth_try_pass[0] == '\0' && s->auth_try_user[0] == '\0');
        return act(d, out);
    }
    case SRV_ACT_ETRN:
        CHECK(s->etrn_ok && s->etrn_arg[0]);
        srv_etrn_done(s, outcome(d), out);
        CHECK(out->act == SRV_ACT_NONE);
        return true;
    case SRV_ACT_STARTTLS:
        CHECK(!s->tls && s->tls_offer);
        /* The handshake succeeds; what follows in the stream came after it. */
        srv_tls_done(s, "TLSv1.3 with cipher FUZZ (256/256 bits)");
        CHECK(s->state == SRV_INIT && s->tx == NULL);
        return true;
    case SRV_ACT_CLOSE:
        CHECK(s->state == SRV_CLOSED);
        return false;
    case SRV_ACT_ABORT:
    case SRV_ACT_NONE:
        return s->state != SRV_CLOSED;
    }
    CHECK(0);
    return false;
}

static void drop(struct drv *d, size_t n)
{
    memmove(d->pend, d->pend + n, d->plen - n);
    d->plen -= n;
}

/* What net/smtpd.c's sess_process() does with the unread input. */
static bool process(struct drv *d)
{
    struct smtp_server *s = &d->s;
    struct srv_out out = { &d->replies, SRV_ACT_NONE };
    for (;;) {
        enum srv_input m = srv_input_mode(s);
        if (m == SRV_IN_NONE)
            return false;
        CHECK(m != SRV_IN_WAIT);
        if (d->plen == 0)
            return true;
        if (m == SRV_IN_LINE) {
            char *nl = memchr(d->pend, '\n', d->plen);
            if (d->discarding) {
                if (nl == NULL) {
                    d->plen = 0;
                    return true;
                }
                drop(d, (size_t)(nl - d->pend) + 1);
                d->discarding = false;
                continue;
            }
            if (nl == NULL) {
                if (d->plen <= LINE_CAP)
                    return true;
                d->plen = 0;
                d->discarding = true;
                srv_line_too_long(s, &out);
            } else {
                size_t ll = (size_t)(nl - d->pend);
                if (ll + 1 > LINE_CAP)
                    srv_line_too_long(s, &out);
                else if (ll > 0 && d->pend[ll - 1] == '\r')
                    srv_feed_line(s, d->pend, ll - 1, &out);
                else
                    srv_bare_lf(s, &out);
                drop(d, ll + 1);
            }
        } else {
            unsigned long long left = srv_bdat_left(s);
            size_t used = srv_feed_data(s, d->pend, d->plen, &out);
            CHECK(used <= d->plen);
            if (m == SRV_IN_BDAT)
                CHECK(used == (left < d->plen ? left : d->plen));
            /* Input that must be read is read: no stall. */
            CHECK(used > 0 || out.act != SRV_ACT_NONE || srv_input_mode(s) != m);
            drop(d, used);
            if (out.act == SRV_ACT_NONE && s->tx && s->tx->body.len >= SPILL_AT &&
                srv_input_mode(s) != SRV_IN_LINE) {
                /* the spool takes the content so far */
                s->tx->spilled += s->tx->body.len;
                buf_reset(&s->tx->body);
            }
        }
        check_replies(d);
        bool go = act(d, &out);
        check_replies(d);
        if (!go)
            return false;
        check_state(s);
    }
}

static void run(const uint8_t *hdr, const char *in, size_t n, size_t piece, struct buf *res)
{
    struct drv *d = calloc(1, sizeof *d);
    CHECK(d != NULL);
    d->pend = malloc(n + 1);
    CHECK(d->pend != NULL);
    buf_init(&d->replies, 0);
    d->outcomes = (unsigned)hdr[1] | (unsigned)hdr[2] << 8;
    qid = 0;
    unsigned o = hdr[0];
    srv_init(&d->s, confs[o >> 7 & 1], &env, "192.0.2.7", o & 32);
    d->s.tls_offer = o & 1;
    d->s.auth_offer = o & 2;
    d->s.auth_plaintext = o & 4;
    d->s.require_auth = o & 8;
    d->s.etrn_ok = o & 16;
    if (o & 64) {
        d->s.tls_offer = false;
        srv_tls_implicit(&d->s, "TLSv1.3 with cipher FUZZ (256/256 bits)");
    }
    struct srv_out out = { &d->replies, SRV_ACT_NONE };
    srv_greet(&d->s, &out);
    check_replies(d);
    bool open = true;
    for (size_t i = 0; i < n && open; ) {
        size_t k = piece ? piece : n;
        if (k > n - i)
            k = n - i;
        memcpy(d->pend + d->plen, in + i, k);
        d->plen += k;
        i += k;
        open = process(d);
    }
    if (open) {
        if (o & 1)
            srv_timeout(&d->s, &out);
        else
            srv_shutdown(&d->s, &out);
        CHECK(out.act == SRV_ACT_CLOSE && srv_input_mode(&d->s) == SRV_IN_NONE);
        check_replies(d);
    }
    buf_append(res, d->replies.p, d->replies.len);
    srv_free(&d->s);
    buf_free(&d->replies);
    free(d->pend);
    free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (confs[0] == NULL) {
        char err[256];
        confs[0] = conf_parse(conf_a, sizeof conf_a - 1, "fuzz-a", err, sizeof err);
        confs[1] = conf_parse(conf_b, sizeof conf_b - 1, "fuzz-b", err, sizeof err);
        CHECK(confs[0] != NULL && confs[1] != NULL);
    }
    if (size < 4)
        return 0;
    const char *in = (const char *)data + 4;
    size_t n = size - 4;
    struct buf whole, pieces;
    buf_init(&whole, 0);
    buf_init(&pieces, 0);
    run(data, in, n, 0, &whole);
    run(data, in, n, data[3] ? data[3] : 1, &pieces);
    CHECK(whole.len == pieces.len);
    CHECK(whole.len == 0 || memcmp(whole.p, pieces.p, whole.len) == 0);
    buf_free(&whole);
    buf_free(&pieces);
    return 0;
}
