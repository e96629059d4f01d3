/*
 * tests/unit/mail/test_dsn.c - mail/dsn: report layout, fields, RET, escaping, boundaries.
 *
 * Every report is taken apart by a small checker written here, independent of the module:
 * it checks every line is <= 998 octets, reads the top-level header, finds the boundary,
 * splits the body into parts (a line that starts with the delimiter but is not one fails),
 * and reads fields with RFC 5322 unfolding. The original message is handed over in a heap
 * block of exactly its length, so a SANITIZE=1 build catches a read past it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/dsn.h"
#include "smtp/parse.h"
#include "util/buf.h"

#define NOW 1767232800          /* Thu, 01 Jan 2026 02:00:00 +0000 */
#define SEED "Q1.1767232800"
#define BASE_BOUNDARY SEED "/mail.example.net"

static const char ORIG[] =
    "Return-Path: <alice@example.net>\n"
    "From: Alice <alice@example.net>\n"
    "To: joe@example.org, sam@example.com\n"
    "Subject: lunch\n"
    "Message-ID: <m1@example.net>\n"
    "\n"
    "secret body line\n"
    "second line\n";
#define ORIG_HDR_LEN (sizeof "Return-Path: <alice@example.net>\n" \
    "From: Alice <alice@example.net>\n" "To: joe@example.org, sam@example.com\n" \
    "Subject: lunch\n" "Message-ID: <m1@example.net>\n" - 1)

/* ---- the independent checker ---- */

struct part {
    const char *hdr, *body;
    size_t hlen, blen;
};

struct report {
    char *p;                    /* NUL-terminated copy of the output */
    size_t len;
    const char *top;
    size_t toplen;
    char boundary[128];
    struct part part[8];
    size_t nparts;
};

static char *exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n > 0)
        memcpy(p, s, n);
    return p;
}

static size_t line_end(const char *p, size_t n, size_t i)
{
    const char *nl = memchr(p + i, '\n', n - i);
    return nl ? (size_t)(nl - p) : n;
}

/* Unfolded value of the first field name in the header block (malloc'd), or NULL. */
static char *get_field_nth(const char *blk, size_t n, const char *name, int nth)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n;) {
        size_t e = line_end(blk, n, i);
        if (e - i > nl && strncasecmp(blk + i, name, nl) == 0 && blk[i + nl] == ':'
            && nth-- == 0) {
            size_t vs = i + nl + 1;
            while (vs < e && (blk[vs] == ' ' || blk[vs] == '\t'))
                vs++;
            char *v = malloc(n + 1);
            assert_non_null(v);
            size_t vl = 0;
            memcpy(v, blk + vs, e - vs);
            vl = e - vs;
            for (i = e + 1; i < n && (blk[i] == ' ' || blk[i] == '\t');) {
                e = line_end(blk, n, i);
                memcpy(v + vl, blk + i, e - i);
                vl += e - i;
                i = e + 1;
            }
            v[vl] = '\0';
            return v;
        }
        i = e + 1;
    }
    return NULL;
}

static char *get_field(const char *blk, size_t n, const char *name)
{
    return get_field_nth(blk, n, name, 0);
}

static void assert_field(const char *blk, size_t n, const char *name, const char *want)
{
    char *v = get_field(blk, n, name);
    if (v == NULL)
        fail_msg("field %s missing", name);
    assert_string_equal(v, want);
    assert_null(get_field_nth(blk, n, name, 1));    /* exactly once */
    free(v);
}

static void assert_no_field(const char *blk, size_t n, const char *name)
{
    char *v = get_field(blk, n, name);
    if (v != NULL)
        fail_msg("field %s unexpected: %s", name, v);
}

/* Where name starts a line in blk, or -1: for checking the order of fields. */
static long field_pos(const char *blk, size_t n, const char *name)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < n; i = line_end(blk, n, i) + 1)
        if (n - i > nl && strncmp(blk + i, name, nl) == 0 && blk[i + nl] == ':')
            return (long)i;
    return -1;
}

static bool starts_line(const char *p, size_t n, const char *s)
{
    size_t sl = strlen(s);
    for (size_t i = 0; i < n; i = line_end(p, n, i) + 1)
        if (n - i >= sl && memcmp(p + i, s, sl) == 0)
            return true;
    return false;
}

static const char *memstr(const char *p, size_t n, const char *s)
{
    return memmem(p, n, s, strlen(s));
}

/* Take a report apart; fails the test on any structural error. */
static void parse_report(struct report *r, const struct buf *b)
{
    memset(r, 0, sizeof *r);
    r->p = malloc(b->len + 1);
    assert_non_null(r->p);
    memcpy(r->p, b->p, b->len);
    r->p[b->len] = '\0';
    r->len = b->len;
    const char *p = r->p;
    size_t n = r->len;

    /* RFC 5322 2.1.1: every line at most 998 octets; LF line ends; ends with one */
    assert_true(n > 0 && p[n - 1] == '\n');
    for (size_t i = 0; i < n; i = line_end(p, n, i) + 1)
        if (line_end(p, n, i) - i > 998)
            fail_msg("line of %zu octets at %zu", line_end(p, n, i) - i, i);

    const char *sep = strstr(p, "\n\n");
    assert_non_null(sep);
    r->top = p;
    r->toplen = (size_t)(sep - p) + 1;
    /* the top-level header holds only the fields we expect, each at most once */
    static const char *const names[] = { "From", "To", "Subject", "Date", "Message-ID",
        "Auto-Submitted", "MIME-Version", "Content-Type", "Content-Transfer-Encoding" };
    for (size_t i = 0; i < r->toplen; i = line_end(p, r->toplen, i) + 1) {
        if (p[i] == ' ' || p[i] == '\t')
            continue;
        bool known = false;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
            size_t nl = strlen(names[k]);
            known = known || (strncmp(p + i, names[k], nl) == 0 && p[i + nl] == ':');
        }
        if (!known)
            fail_msg("unexpected header line: %.60s", p + i);
    }
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char *v = get_field_nth(r->top, r->toplen, names[k], 1);
        assert_null(v);
    }

    char *ct = get_field(r->top, r->toplen, "Content-Type");
    assert_non_null(ct);
    const char *bp = strstr(ct, "boundary=\"");
    assert_non_null(bp);
    bp += strlen("boundary=\"");
    const char *bq = strchr(bp, '"');
    assert_non_null(bq);
    size_t bl = (size_t)(bq - bp);
    assert_true(bl >= 1 && bl <= 70);      /* RFC 2046 5.1.1 */
    memcpy(r->boundary, bp, bl);
    r->boundary[bl] = '\0';
    free(ct);

    char delim[140], close[140];
    snprintf(delim, sizeof delim, "--%s", r->boundary);
    snprintf(close, sizeof close, "--%s--", r->boundary);
    size_t dl = strlen(delim);
    bool closed = false;
    long start = -1;
    for (size_t i = r->toplen + 1; i < n;) {
        size_t e = line_end(p, n, i);
        bool is_delim = e - i == dl && memcmp(p + i, delim, dl) == 0;
        bool is_close = e - i == dl + 2 && memcmp(p + i, close, dl + 2) == 0;
        if (closed) {
            assert_int_equal(e - i, 0);     /* nothing after the close but blank lines */
        } else if (is_delim || is_close) {
            if (start >= 0) {
                /* the LF before a delimiter belongs to the delimiter (RFC 2046 5.1.1) */
                struct part *pt = &r->part[r->nparts++];
                size_t end = i - 1;
                const char *s = p + start;
                const char *hs = memmem(s, end - (size_t)start, "\n\n", 2);
                assert_true(r->nparts < 8);
                assert_non_null(hs);
                pt->hdr = s;
                pt->hlen = (size_t)(hs - s) + 1;
                pt->body = hs + 2;
                pt->blen = (size_t)(p + end - pt->body);
            }
            start = (long)e + 1;
            closed = is_close;
        } else if (e - i >= dl && memcmp(p + i, delim, dl) == 0) {
            fail_msg("line looks like a boundary: %.80s", p + i);
        }
        i = e + 1;
    }
    assert_true(closed);
}

static void free_report(struct report *r)
{
    free(r->p);
}

/* The text part with its wrapped lines joined again. */
static char *unwrap(const struct part *pt)
{
    char *t = malloc(pt->blen + 1);
    assert_non_null(t);
    size_t o = 0;
    for (size_t i = 0; i < pt->blen; i++) {
        if (pt->body[i] == '\n' && pt->blen - i > 4 && memcmp(pt->body + i + 1, "    ", 4) == 0) {
            t[o++] = ' ';
            i += 4;
        } else {
            t[o++] = pt->body[i];
        }
    }
    t[o] = '\0';
    return t;
}

/* Split the delivery-status part into field groups at blank lines. */
static size_t status_groups(const struct part *pt, struct part *g, size_t max)
{
    size_t ng = 0, gs = 0;
    for (size_t i = 0; i <= pt->blen;) {
        size_t e = line_end(pt->body, pt->blen, i);
        if (e == i || i >= pt->blen) {
            if (i > gs) {
                assert_true(ng < max);
                g[ng].hdr = pt->body + gs;
                g[ng].hlen = i - gs;
                ng++;
            }
            gs = e + 1;
        }
        i = e + 1;
    }
    return ng;
}

static bool all_ascii(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] >= 0x80)
            return false;
    return true;
}

/* No octet a peer could use: only printable ASCII/UTF-8, LF and TAB. */
static void assert_no_controls(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
            fail_msg("control 0x%02x at %zu", c, i);
    }
}

/* ---- fixtures ---- */

static void fill_msg(struct dsn_msg *m, const struct dsn_rcpt *r, size_t n, int ret,
    const char *orig, size_t olen)
{
    memset(m, 0, sizeof *m);
    m->reporting_mta = "mail.example.net";
    m->queue_id = "Q1";
    m->sender = "alice@example.net";
    m->arrival = NOW - 7200;
    m->client_helo = "client.example";
    m->client_addr = "192.0.2.7";
    m->ret = ret;
    m->rcpts = r;
    m->nrcpt = n;
    m->original = orig ? exact(orig, olen) : NULL;
    m->original_len = olen;
    m->now = NOW;
    m->boundary_seed = SEED;
}

static void build_ok(struct dsn_msg *m, struct report *r)
{
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(dsn_build(m, &b), 0);
    parse_report(r, &b);
    buf_free(&b);
    free((char *)m->original);
    m->original = NULL;
}

static char *part_field(const struct report *r, size_t i, const char *name)
{
    return get_field(r->part[i].hdr, r->part[i].hlen, name);
}

static void assert_part_type(const struct report *r, size_t i, const char *want)
{
    assert_true(i < r->nparts);
    assert_field(r->part[i].hdr, r->part[i].hlen, "Content-Type", want);
}

/* ---- tests ---- */

static void test_failed_bounce(void **state)
{
    (void)state;
    struct dsn_rcpt rc[2] = {
        { .addr = "joe@example.org", .orcpt = "rfc822;Joe@Example.ORG",
          .action = DSN_FAILED, .status = "5.1.1" },
        { .addr = "sam@example.com", .action = DSN_FAILED, .status = "5.7.1",
          .remote_mta = "mx.example.com",
          .diagnostic = "550 5.7.1 <sam@example.com>: Relay access denied",
          .last_attempt = NOW - 60 },
    };
    struct dsn_msg m;
    struct report r;
    fill_msg(&m, rc, 2, SMTP_RET_HDRS, ORIG, sizeof ORIG - 1);
    m.envid = "ENV1";
    build_ok(&m, &r);

    assert_field(r.top, r.toplen, "From", "Mail Delivery System <MAILER-DAEMON@mail.example.net>");
    assert_field(r.top, r.toplen, "To", "<alice@example.net>");
    assert_field(r.top, r.toplen, "Subject", "Undelivered Mail Returned to Sender");
    assert_field(r.top, r.toplen, "Date", "Thu, 01 Jan 2026 02:00:00 +0000");
    assert_field(r.top, r.toplen, "Message-ID", "<Q1.1767232800.dsn@mail.example.net>");
    assert_field(r.top, r.toplen, "Auto-Submitted", "auto-replied");
    assert_field(r.top, r.toplen, "MIME-Version", "1.0");
    assert_field(r.top, r.toplen, "Content-Type",
        "multipart/report; report-type=delivery-status;\tboundary=\"" BASE_BOUNDARY "\"");
    assert_string_equal(r.boundary, BASE_BOUNDARY);
    assert_no_field(r.top, r.toplen, "Content-Transfer-Encoding");

    /* three parts, in order */
    assert_int_equal(r.nparts, 3);
    assert_part_type(&r, 0, "text/plain; charset=us-ascii");
    assert_part_type(&r, 1, "message/delivery-status");
    assert_part_type(&r, 2, "text/rfc822-headers");

    /* the human part names the host and what it said, and every recipient */
    char *t = unwrap(&r.part[0]);
    assert_non_null(strstr(t, "This is the mail system at host mail.example.net."));
    assert_non_null(strstr(t, "could not be delivered"));
    assert_non_null(strstr(t, "<sam@example.com>: host mx.example.com said: "
        "550 5.7.1 <sam@example.com>: Relay access denied"));
    assert_non_null(strstr(t, "<joe@example.org>: delivery failed (status 5.1.1)"));
    assert_non_null(strstr(t, "headers of your message are attached"));
    free(t);
    for (size_t i = 0; i < r.part[0].blen; i = line_end(r.part[0].body, r.part[0].blen, i) + 1)
        assert_true(line_end(r.part[0].body, r.part[0].blen, i) - i <= 76);

    /* delivery-status: per-message fields, then one group per recipient */
    struct part g[8];
    assert_int_equal(status_groups(&r.part[1], g, 8), 3);
    assert_field(g[0].hdr, g[0].hlen, "Original-Envelope-Id", "ENV1");
    assert_field(g[0].hdr, g[0].hlen, "Reporting-MTA", "dns; mail.example.net");
    assert_field(g[0].hdr, g[0].hlen, "Received-From-MTA", "dns; client.example ([192.0.2.7])");
    assert_field(g[0].hdr, g[0].hlen, "Arrival-Date", "Thu, 01 Jan 2026 00:00:00 +0000");
    assert_field(g[0].hdr, g[0].hlen, "X-Postel-Queue-ID", "Q1");
    assert_true(field_pos(g[0].hdr, g[0].hlen, "Original-Envelope-Id")
        < field_pos(g[0].hdr, g[0].hlen, "Reporting-MTA"));
    assert_no_field(g[0].hdr, g[0].hlen, "Final-Recipient");

    assert_field(g[1].hdr, g[1].hlen, "Original-Recipient", "rfc822;Joe@Example.ORG");
    assert_field(g[1].hdr, g[1].hlen, "Final-Recipient", "rfc822; joe@example.org");
    assert_field(g[1].hdr, g[1].hlen, "Action", "failed");
    assert_field(g[1].hdr, g[1].hlen, "Status", "5.1.1");
    assert_no_field(g[1].hdr, g[1].hlen, "Remote-MTA");
    assert_no_field(g[1].hdr, g[1].hlen, "Diagnostic-Code");
    assert_no_field(g[1].hdr, g[1].hlen, "Last-Attempt-Date");
    long o1 = field_pos(g[1].hdr, g[1].hlen, "Original-Recipient");
    long o2 = field_pos(g[1].hdr, g[1].hlen, "Final-Recipient");
    long o3 = field_pos(g[1].hdr, g[1].hlen, "Action");
    long o4 = field_pos(g[1].hdr, g[1].hlen, "Status");
    assert_true(o1 >= 0 && o1 < o2 && o2 < o3 && o3 < o4);

    assert_no_field(g[2].hdr, g[2].hlen, "Original-Recipient");
    assert_field(g[2].hdr, g[2].hlen, "Final-Recipient", "rfc822; sam@example.com");
    assert_field(g[2].hdr, g[2].hlen, "Action", "failed");
    assert_field(g[2].hdr, g[2].hlen, "Status", "5.7.1");
    assert_field(g[2].hdr, g[2].hlen, "Remote-MTA", "dns; mx.example.com");
    assert_field(g[2].hdr, g[2].hlen, "Diagnostic-Code",
        "smtp; 550 5.7.1 <sam@example.com>: Relay access denied");
    assert_field(g[2].hdr, g[2].hlen, "Last-Attempt-Date", "Thu, 01 Jan 2026 01:59:00 +0000");
    assert_no_field(g[2].hdr, g[2].hlen, "Will-Retry-Until");

    /* RET=HDRS: exactly the header block, not the body */
    assert_int_equal(r.part[2].blen, ORIG_HDR_LEN);
    assert_memory_equal(r.part[2].body, ORIG, ORIG_HDR_LEN);
    assert_null(memstr(r.p, r.len, "secret body line"));
    char *d = part_field(&r, 2, "Content-Description");
    assert_string_equal(d, "Undelivered Message Headers");
    free(d);
    free_report(&r);
}

static void test_ret_full_and_default(void **state)
{
    (void)state;
    struct dsn_rcpt rc = { .addr = "joe@example.org", .action = DSN_FAILED, .status = "5.1.1",
        .remote_mta = "mx.example.org", .diagnostic = "550 5.1.1 User unknown" };
    struct dsn_msg m;
    struct report r;

    /* RET=FULL: the whole message, as message/rfc822 */
    fill_msg(&m, &rc, 1, SMTP_RET_FULL, ORIG, sizeof ORIG - 1);
    build_ok(&m, &r);
    assert_int_equal(r.nparts, 3);
    assert_part_type(&r, 2, "message/rfc822");
    assert_int_equal(r.part[2].blen, sizeof ORIG - 1);
    assert_memory_equal(r.part[2].body, ORIG, sizeof ORIG - 1);
    char *t = unwrap(&r.part[0]);
    assert_non_null(strstr(t, "A copy of your message is attached"));
    free(t);
    free_report(&r);

    /* no RET, small failure: the whole message */
    fill_msg(&m, &rc, 1, SMTP_RET_NONE, ORIG, sizeof ORIG - 1);
    build_ok(&m, &r);
    assert_part_type(&r, 2, "message/rfc822");
    assert_non_null(memstr(r.part[2].body, r.part[2].blen, "secret body line"));
    free_report(&r);

    /* no RET, over DSN_FULL_MAX: headers only; a message without a final LF */
    size_t big = DSN_FULL_MAX + 1;
    char *msg = malloc(big);
    assert_non_null(msg);
    memset(msg, 'x', big);
    memcpy(msg, "Subject: big\n\n", 14);
    for (size_t i = 100; i < big; i += 100)
        msg[i] = '\n';
    fill_msg(&m, &rc, 1, SMTP_RET_NONE, msg, big);
    build_ok(&m, &r);
    assert_part_type(&r, 2, "text/rfc822-headers");
    assert_int_equal(r.part[2].blen, 13);
    assert_memory_equal(r.part[2].body, "Subject: big\n", 13);
    free_report(&r);

    /* exactly DSN_FULL_MAX still goes whole, and a missing final LF is supplied */
    fill_msg(&m, &rc, 1, SMTP_RET_NONE, msg, DSN_FULL_MAX);
    build_ok(&m, &r);
    assert_part_type(&r, 2, "message/rfc822");
    assert_int_equal(r.part[2].blen, DSN_FULL_MAX + 1);
    free_report(&r);

    /* RET=FULL that does not fit the cap: headers instead */
    struct buf b;
    buf_init(&b, 20000);
    fill_msg(&m, &rc, 1, SMTP_RET_FULL, msg, big);
    assert_int_equal(dsn_build(&m, &b), 0);
    parse_report(&r, &b);
    assert_part_type(&r, 2, "text/rfc822-headers");
    t = unwrap(&r.part[0]);
    assert_non_null(strstr(t, "headers of your message are attached"));
    free(t);
    free_report(&r);

    /* nothing fits: -1, ENOBUFS, and out left as it was */
    buf_free(&b);
    buf_init(&b, 600);
    assert_int_equal(buf_puts(&b, "keep"), 0);
    errno = 0;
    assert_int_equal(dsn_build(&m, &b), -1);
    assert_int_equal(errno, ENOBUFS);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.p, "keep", 4);
    buf_free(&b);
    free((char *)m.original);
    free(msg);

    /* a message with no body at all: the header block is all of it */
    static const char hdr_only[] = "Subject: x\nFrom: a@b";
    fill_msg(&m, &rc, 1, SMTP_RET_HDRS, hdr_only, sizeof hdr_only - 1);
    build_ok(&m, &r);
    assert_part_type(&r, 2, "text/rfc822-headers");
    assert_int_equal(r.part[2].blen, sizeof hdr_only);
    assert_memory_equal(r.part[2].body, "Subject: x\nFrom: a@b\n", sizeof hdr_only);
    free_report(&r);
}

static void test_delayed(void **state)
{
    (void)state;
    struct dsn_rcpt rc[2] = {
        { .addr = "joe@example.org", .action = DSN_DELAYED, .status = "4.4.1",
          .remote_mta = "mx.example.org", .diagnostic = "451 4.4.1 try again later",
          .last_attempt = NOW - 60, .will_retry_until = NOW + 5 * 86400 },
        { .addr = "sam@example.com", .action = DSN_FAILED, .status = "5.1.1" },
    };
    struct dsn_msg m;
    struct report r;

    /* RET=FULL is for failures only (RFC 3461 4.3): a delay notice returns headers */
    fill_msg(&m, rc, 1, SMTP_RET_FULL, ORIG, sizeof ORIG - 1);
    build_ok(&m, &r);
    assert_field(r.top, r.toplen, "Subject", "Delayed Mail (still being retried)");
    assert_int_equal(r.nparts, 3);
    struct part g[4];
    assert_int_equal(status_groups(&r.part[1], g, 4), 2);
    assert_field(g[1].hdr, g[1].hlen, "Action", "delayed");
    assert_field(g[1].hdr, g[1].hlen, "Status", "4.4.1");
    assert_field(g[1].hdr, g[1].hlen, "Diagnostic-Code", "smtp; 451 4.4.1 try again later");
    assert_field(g[1].hdr, g[1].hlen, "Last-Attempt-Date", "Thu, 01 Jan 2026 01:59:00 +0000");
    assert_field(g[1].hdr, g[1].hlen, "Will-Retry-Until", "Tue, 06 Jan 2026 02:00:00 +0000");
    assert_part_type(&r, 2, "text/rfc822-headers");
    char *d = part_field(&r, 2, "Content-Description");
    assert_string_equal(d, "Message Headers");
    free(d);
    assert_null(memstr(r.p, r.len, "secret body line"));
    char *t = unwrap(&r.part[0]);
    assert_non_null(strstr(t, "not yet been delivered"));
    assert_non_null(strstr(t, "<joe@example.org>: host mx.example.org said: 451 4.4.1 try "
        "again later; the mail system will keep trying until Tue, 06 Jan 2026"));
    assert_null(strstr(t, "could not be delivered"));
    free(t);
    free_report(&r);

    /* failed and delayed together: failure wins the subject, both are listed */
    fill_msg(&m, rc, 2, SMTP_RET_NONE, ORIG, sizeof ORIG - 1);
    build_ok(&m, &r);
    assert_field(r.top, r.toplen, "Subject", "Undelivered Mail Returned to Sender");
    assert_int_equal(status_groups(&r.part[1], g, 4), 3);
    assert_field(g[2].hdr, g[2].hlen, "Action", "failed");
    assert_part_type(&r, 2, "message/rfc822");
    t = unwrap(&r.part[0]);
    assert_non_null(strstr(t, "could not be delivered"));
    assert_non_null(strstr(t, "not yet been delivered"));
    assert_true(strstr(t, "<sam@example.com>") < strstr(t, "<joe@example.org>"));
    free(t);
    free_report(&r);
}

static void test_success(void **state)
{
    (void)state;
    struct dsn_rcpt rc[4] = {
        { .addr = "joe@example.org", .action = DSN_DELIVERED, .status = "2.0.0",
          .remote_mta = "mx.example.org", .diagnostic = "250 2.0.0 Ok: queued as 7A",
          .will_retry_until = NOW + 100 },
        { .addr = "sam@example.com", .action = DSN_RELAYED, .status = "2.0.0",
          .remote_mta = "old.example.com" },
        { .addr = "list@example.net", .action = DSN_EXPANDED, .status = "2.0.0" },
        { .addr = "kim@example.net", .action = DSN_DELIVERED, .status = "5.1.1" },
    };
    struct dsn_msg m;
    struct report r;
    fill_msg(&m, rc, 4, SMTP_RET_FULL, ORIG, sizeof ORIG - 1);
    m.client_helo = NULL;
    build_ok(&m, &r);
    assert_field(r.top, r.toplen, "Subject", "Successful Mail Delivery Report");
    assert_int_equal(r.nparts, 3);
    struct part g[8];
    assert_int_equal(status_groups(&r.part[1], g, 8), 5);
    assert_field(g[0].hdr, g[0].hlen, "Received-From-MTA", "dns; [192.0.2.7]");
    assert_field(g[1].hdr, g[1].hlen, "Action", "delivered");
    assert_field(g[1].hdr, g[1].hlen, "Status", "2.0.0");
    assert_no_field(g[1].hdr, g[1].hlen, "Will-Retry-Until");   /* delayed only */
    assert_field(g[2].hdr, g[2].hlen, "Action", "relayed");
    assert_field(g[3].hdr, g[3].hlen, "Action", "expanded");
    /* a status of the wrong class for the action is not passed on */
    assert_field(g[4].hdr, g[4].hlen, "Status", "2.0.0");
    assert_part_type(&r, 2, "text/rfc822-headers");
    char *t = unwrap(&r.part[0]);
    assert_non_null(strstr(t, "Your message was delivered"));
    assert_non_null(strstr(t, "<joe@example.org>: delivered to host mx.example.org, which "
        "said: 250 2.0.0 Ok: queued as 7A"));
    assert_non_null(strstr(t, "<sam@example.com>: relayed to host old.example.com"));
    assert_non_null(strstr(t, "does not send"));
    free(t);
    free_report(&r);

    /* failed and delayed swap only the class: an expired 4.4.1 is reported as 5.4.1 */
    struct dsn_rcpt swap[3] = {
        { .addr = "a@example.org", .action = DSN_FAILED, .status = "4.4.1" },
        { .addr = "b@example.org", .action = DSN_DELAYED, .status = "5.1.10" },
        { .addr = "c@example.org", .action = DSN_FAILED, .status = "3.1.1" },
    };
    fill_msg(&m, swap, 3, SMTP_RET_HDRS, NULL, 0);
    build_ok(&m, &r);
    assert_int_equal(status_groups(&r.part[1], g, 8), 4);
    assert_field(g[1].hdr, g[1].hlen, "Status", "5.4.1");
    assert_field(g[2].hdr, g[2].hlen, "Status", "4.1.10");
    assert_field(g[3].hdr, g[3].hlen, "Status", "5.0.0");
    free_report(&r);

    /* a missing status gets the action's default; no original: two parts */
    struct dsn_rcpt one = { .addr = "joe@example.org", .action = DSN_FAILED };
    fill_msg(&m, &one, 1, SMTP_RET_FULL, NULL, 0);
    m.client_helo = m.client_addr = NULL;
    m.arrival = 0;
    build_ok(&m, &r);
    assert_int_equal(r.nparts, 2);
    assert_int_equal(status_groups(&r.part[1], g, 8), 2);
    assert_field(g[1].hdr, g[1].hlen, "Status", "5.0.0");
    assert_no_field(g[0].hdr, g[0].hlen, "Received-From-MTA");
    assert_no_field(g[0].hdr, g[0].hlen, "Arrival-Date");
    assert_no_field(g[0].hdr, g[0].hlen, "Original-Envelope-Id");
    assert_null(memstr(r.part[0].body, r.part[0].blen, "attached"));
    free_report(&r);
}

static void test_injection(void **state)
{
    (void)state;
    struct dsn_rcpt rc = {
        .addr = "joe@example.org\nX-Injected: 1",
        .orcpt = "rfc822;a@b\nX-Orcpt: 1",
        .action = DSN_FAILED, .status = "5.1.1\nX-Status: 1",
        .remote_mta = "mx.example.org\r\nX-Evil: 1",
        .diagnostic = "550 no such user\r\nBcc: evil@attacker.example\r\n\r\n--" BASE_BOUNDARY
            "\r\nContent-Type: text/html\r\n\r\n<b>x</b>\x1b[2J\x7f\r\n.\r\n",
    };
    struct dsn_msg m;
    struct report r;
    fill_msg(&m, &rc, 1, SMTP_RET_HDRS, ORIG, sizeof ORIG - 1);
    m.sender = "alice@example.net\r\nBcc: x@y";
    m.client_helo = "helo\r\nX-Helo: 1";
    m.client_addr = "192.0.2.7\r\nX-Addr: 1";
    m.envid = "e\r\nX-Env: 1";
    build_ok(&m, &r);

    /* no peer text starts a line, and the boundary changed away from the guessed one */
    static const char *const bad[] = { "Bcc:", "X-Injected", "X-Orcpt", "X-Status", "X-Evil",
        "X-Helo", "X-Addr", "X-Env", "Content-Type: text/html", "<b>", "." };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (starts_line(r.p, r.len, bad[i]))
            fail_msg("injected line %s", bad[i]);
    assert_int_equal(r.nparts, 3);
    assert_string_not_equal(r.boundary, BASE_BOUNDARY);
    char delim[140];
    snprintf(delim, sizeof delim, "--%s", r.boundary);
    for (size_t i = 0; i < r.len; i = line_end(r.p, r.len, i) + 1)
        if (strncmp(r.p + i, "--" BASE_BOUNDARY, strlen("--" BASE_BOUNDARY)) == 0)
            assert_true(strncmp(r.p + i, delim, strlen(delim)) == 0);
    assert_no_controls(r.p, r.len - (r.part[2].blen + 1));

    /* the text survives, neutralised, in the report */
    struct part g[4];
    assert_int_equal(status_groups(&r.part[1], g, 4), 2);
    char *v = get_field(g[1].hdr, g[1].hlen, "Diagnostic-Code");
    assert_non_null(v);
    assert_true(strncmp(v, "smtp; 550 no such user  Bcc: evil@attacker.example", 50) == 0);
    assert_non_null(strstr(v, "--" BASE_BOUNDARY "  Content-Type: text/html"));
    free(v);
    assert_field(g[1].hdr, g[1].hlen, "Status", "5.0.0");
    assert_field(g[1].hdr, g[1].hlen, "Final-Recipient", "rfc822; joe@example.org X-Injected: 1");
    assert_field(g[1].hdr, g[1].hlen, "Original-Recipient", "rfc822;a@b X-Orcpt: 1");
    assert_field(g[1].hdr, g[1].hlen, "Remote-MTA", "dns; mx.example.org  X-Evil: 1");
    assert_field(g[0].hdr, g[0].hlen, "Received-From-MTA", "dns; helo  X-Helo: 1");
    assert_field(g[0].hdr, g[0].hlen, "Original-Envelope-Id", "e+0D+0AX-Env:+201");
    assert_field(r.top, r.toplen, "To", "<alice@example.net  Bcc: x@y>");
    free_report(&r);
}

static void test_boundary_collision(void **state)
{
    (void)state;
    static const char orig[] =
        "Subject: a trap\n"
        "Content-Type: multipart/mixed; boundary=\"" BASE_BOUNDARY "\"\n"
        "\n"
        "--" BASE_BOUNDARY "\n"
        "\n"
        "fake part\n"
        "--" BASE_BOUNDARY "--\n";
    struct dsn_rcpt rc = { .addr = "joe@example.org", .action = DSN_FAILED, .status = "5.1.1" };
    struct dsn_msg m;
    struct report r;
    fill_msg(&m, &rc, 1, SMTP_RET_FULL, orig, sizeof orig - 1);
    build_ok(&m, &r);
    assert_int_equal(r.nparts, 3);
    assert_string_not_equal(r.boundary, BASE_BOUNDARY);
    assert_true(strncmp(r.boundary, BASE_BOUNDARY, strlen(BASE_BOUNDARY)) == 0);
    assert_null(memmem(orig, sizeof orig - 1, r.boundary, strlen(r.boundary)));
    assert_int_equal(r.part[2].blen, sizeof orig - 1);
    assert_memory_equal(r.part[2].body, orig, sizeof orig - 1);
    free_report(&r);

    /* the headers-only part is checked too: the collision is in the header block */
    fill_msg(&m, &rc, 1, SMTP_RET_HDRS, orig, sizeof orig - 1);
    build_ok(&m, &r);
    assert_int_equal(r.nparts, 3);
    assert_string_not_equal(r.boundary, BASE_BOUNDARY);
    free_report(&r);

    /* the next candidate planted as well: still none of the content holds it */
    char first[128];
    fill_msg(&m, &rc, 1, SMTP_RET_FULL, orig, sizeof orig - 1);
    build_ok(&m, &r);
    snprintf(first, sizeof first, "%s", r.boundary);
    free_report(&r);
    char orig2[1024];
    int n2 = snprintf(orig2, sizeof orig2, "%s--%s\n", orig, first);
    assert_true(n2 > 0 && (size_t)n2 < sizeof orig2);
    fill_msg(&m, &rc, 1, SMTP_RET_FULL, orig2, (size_t)n2);
    build_ok(&m, &r);
    assert_int_equal(r.nparts, 3);
    assert_null(memmem(orig2, (size_t)n2, r.boundary, strlen(r.boundary)));
    assert_int_equal(r.part[2].blen, (size_t)n2);
    assert_memory_equal(r.part[2].body, orig2, (size_t)n2);
    free_report(&r);
}

static void test_envid_xtext(void **state)
{
    (void)state;
    struct dsn_rcpt rc = { .addr = "joe@example.org", .action = DSN_FAILED, .status = "5.1.1" };
    struct dsn_msg m;
    struct report r;
    struct part g[4];
    fill_msg(&m, &rc, 1, SMTP_RET_HDRS, ORIG, sizeof ORIG - 1);
    m.envid = "id+1=2 x\xff";
    build_ok(&m, &r);
    assert_int_equal(status_groups(&r.part[1], g, 4), 2);
    assert_field(g[0].hdr, g[0].hlen, "Original-Envelope-Id", "id+2B1+3D2+20x+FF");
    free_report(&r);

    /* a long one is cut, never inside a "+HH" */
    char envid[2001];
    memset(envid, '+', 2000);
    envid[2000] = '\0';
    fill_msg(&m, &rc, 1, SMTP_RET_HDRS, ORIG, sizeof ORIG - 1);
    m.envid = envid;
    build_ok(&m, &r);
    assert_int_equal(status_groups(&r.part[1], g, 4), 2);
    char *v = get_field(g[0].hdr, g[0].hlen, "Original-Envelope-Id");
    assert_non_null(v);
    size_t vl = strlen(v);
    assert_true(vl > 900 && vl <= 998 - strlen("Original-Envelope-Id: "));
    assert_int_equal(vl % 3, 0);
    for (size_t i = 0; i < vl; i += 3)
        assert_memory_equal(v + i, "+2B", 3);
    free(v);
    free_report(&r);
}

static void test_smtputf8(void **state)
{
    (void)state;
    static const char orig[] = "From: \xc3\xa5lice@example.net\nSubject: gr\xc3\xbc\xc3\x9f"
        "e\n\nbody \xc3\xbc\n";
    struct dsn_rcpt rc = { .addr = "j\xc3\xb6" "e@ex\xc3\xa4mple.org",
        .orcpt = "rfc822;j\xc3\xb6" "e@ex\xc3\xa4mple.org", .action = DSN_FAILED,
        .status = "5.1.1", .remote_mta = "mx.ex\xc3\xa4mple.org",
        .diagnostic = "550 5.1.1 unbekannt \xc3\xbc \xc2\x85 end" };
    struct dsn_msg m;
    struct report r;
    struct part g[4];

    fill_msg(&m, &rc, 1, SMTP_RET_HDRS, orig, sizeof orig - 1);
    m.smtputf8 = true;
    m.sender = "\xc3\xa5lice@example.net";
    build_ok(&m, &r);
    assert_field(r.top, r.toplen, "To", "<\xc3\xa5lice@example.net>");
    char *ct = get_field(r.top, r.toplen, "Content-Type");
    assert_non_null(strstr(ct, "report-type=global-delivery-status;"));
    free(ct);
    assert_field(r.top, r.toplen, "Content-Transfer-Encoding", "8bit");
    assert_int_equal(r.nparts, 3);
    assert_part_type(&r, 0, "text/plain; charset=utf-8");
    assert_part_type(&r, 1, "message/global-delivery-status");
    assert_part_type(&r, 2, "message/global-headers");
    assert_int_equal(status_groups(&r.part[1], g, 4), 2);
    assert_field(g[1].hdr, g[1].hlen, "Final-Recipient",
        "utf-8; j\xc3\xb6" "e@ex\xc3\xa4mple.org");
    assert_field(g[1].hdr, g[1].hlen, "Original-Recipient",
        "utf-8;j\xc3\xb6" "e@ex\xc3\xa4mple.org");
    assert_field(g[1].hdr, g[1].hlen, "Remote-MTA", "dns; mx.ex\xc3\xa4mple.org");
    /* UTF-8 kept, the C1 control NEL (U+0085) is not */
    assert_field(g[1].hdr, g[1].hlen, "Diagnostic-Code",
        "smtp; 550 5.1.1 unbekannt \xc3\xbc   end");
    char *t = unwrap(&r.part[0]);
    assert_non_null(strstr(t, "<j\xc3\xb6" "e@ex\xc3\xa4mple.org>: host mx.ex\xc3\xa4mple.org"));
    free(t);
    free_report(&r);

    /* SMTPUTF8 but all ASCII: the plain types */
    struct dsn_rcpt ascii = { .addr = "joe@example.org", .action = DSN_FAILED,
        .status = "5.1.1", .diagnostic = "550 bad \xff byte" };
    fill_msg(&m, &ascii, 1, SMTP_RET_HDRS, ORIG, sizeof ORIG - 1);
    m.smtputf8 = true;
    build_ok(&m, &r);
    ct = get_field(r.top, r.toplen, "Content-Type");
    assert_non_null(strstr(ct, "report-type=delivery-status;"));
    free(ct);
    assert_part_type(&r, 1, "message/delivery-status");
    assert_part_type(&r, 2, "text/rfc822-headers");
    assert_true(all_ascii(r.p, r.len));
    assert_non_null(memstr(r.p, r.len, "Diagnostic-Code: smtp; 550 bad ? byte\n"));
    free_report(&r);

    /* no SMTPUTF8: ASCII parts; addresses as xtext "+HH", other text '?' */
    fill_msg(&m, &rc, 1, SMTP_RET_FULL, orig, sizeof orig - 1);
    build_ok(&m, &r);
    ct = get_field(r.top, r.toplen, "Content-Type");
    assert_non_null(strstr(ct, "report-type=delivery-status;"));
    free(ct);
    assert_part_type(&r, 0, "text/plain; charset=us-ascii");
    assert_part_type(&r, 1, "message/delivery-status");
    assert_part_type(&r, 2, "message/rfc822");
    assert_true(all_ascii(r.p, (size_t)(r.part[2].hdr - r.p)));
    /* the returned message keeps its 8-bit octets, and says so */
    assert_field(r.top, r.toplen, "Content-Transfer-Encoding", "8bit");
    char *cte = part_field(&r, 2, "Content-Transfer-Encoding");
    assert_string_equal(cte, "8bit");
    free(cte);
    assert_memory_equal(r.part[2].body, orig, sizeof orig - 1);
    assert_int_equal(status_groups(&r.part[1], g, 4), 2);
    assert_field(g[1].hdr, g[1].hlen, "Final-Recipient", "rfc822; j+C3+B6e@ex+C3+A4mple.org");
    assert_field(g[1].hdr, g[1].hlen, "Original-Recipient", "rfc822;j+C3+B6e@ex+C3+A4mple.org");
    assert_field(g[1].hdr, g[1].hlen, "Diagnostic-Code", "smtp; 550 5.1.1 unbekannt ?? ?? end");
    t = unwrap(&r.part[0]);
    assert_non_null(strstr(t, "<j+C3+B6e@ex+C3+A4mple.org>: host mx.ex??mple.org said"));
    free(t);
    free_report(&r);
}

static void test_long_lines(void **state)
{
    (void)state;
    size_t big = 5000;
    char *word = malloc(big + 1), *words = malloc(big + 1), *addr = malloc(big + 1);
    assert_non_null(word);
    assert_non_null(words);
    assert_non_null(addr);
    memcpy(word, "550 ", 4);
    memset(word + 4, 'a', big - 4);
    word[big] = '\0';
    memcpy(words, "550 ", 4);
    for (size_t i = 4; i < big; i++)
        words[i] = "word "[(i - 4) % 5];
    words[big] = '\0';
    memset(addr, 'b', big);
    addr[big - 12] = '@';
    addr[big] = '\0';
    struct dsn_rcpt rc[3] = {
        { .addr = addr, .orcpt = addr, .action = DSN_FAILED, .status = "5.1.1",
          .remote_mta = word + 4, .diagnostic = word },
        { .addr = "joe@example.org", .action = DSN_DELAYED, .status = "4.4.1",
          .remote_mta = "mx.example.org", .diagnostic = words, .will_retry_until = NOW },
        { .addr = words, .action = DSN_DELIVERED, .diagnostic = words },
    };
    struct dsn_msg m;
    struct report r;
    fill_msg(&m, rc, 3, SMTP_RET_FULL, ORIG, sizeof ORIG - 1);
    m.sender = addr;
    m.client_helo = word;
    m.envid = word;
    m.boundary_seed = word;
    m.reporting_mta = word + 4;
    m.queue_id = word;
    build_ok(&m, &r);        /* checks every line <= 998 and the structure */
    assert_int_equal(r.nparts, 3);
    assert_true(strlen(r.boundary) <= 70);

    /* text lines are wrapped at 76; a field made of words is folded at 78 */
    for (size_t i = 0; i < r.part[0].blen; i = line_end(r.part[0].body, r.part[0].blen, i) + 1)
        assert_true(line_end(r.part[0].body, r.part[0].blen, i) - i <= 76);
    struct part g[4];
    assert_int_equal(status_groups(&r.part[1], g, 4), 4);
    long at = field_pos(g[2].hdr, g[2].hlen, "Diagnostic-Code");
    assert_true(at >= 0);
    size_t folds = 0;
    for (size_t i = (size_t)at; i < g[2].hlen; i = line_end(g[2].hdr, g[2].hlen, i) + 1) {
        if (i > (size_t)at && g[2].hdr[i] != ' ')
            break;
        assert_true(line_end(g[2].hdr, g[2].hlen, i) - i <= 78);
        folds++;
    }
    assert_true(folds > 5);
    char *v = get_field(g[2].hdr, g[2].hlen, "Diagnostic-Code");
    assert_non_null(v);
    assert_true(strncmp(v, "smtp; 550 word word ", 20) == 0);
    /* unfolding gives back the text, cut to what fits one line */
    assert_true(strlen(v) <= 998 - strlen("Diagnostic-Code: "));
    assert_true(strlen(v) > 900);
    assert_memory_equal(v + 6, words, strlen(v) - 6);
    free(v);
    free_report(&r);
    free(word);
    free(words);
    free(addr);
}

static void test_invalid(void **state)
{
    (void)state;
    struct dsn_rcpt rc = { .addr = "joe@example.org", .action = DSN_FAILED, .status = "5.1.1" };
    struct dsn_msg m;
    struct buf b;
    buf_init(&b, 0);
    fill_msg(&m, &rc, 1, SMTP_RET_HDRS, NULL, 0);
    m.sender = "";
    errno = 0;
    assert_int_equal(dsn_build(&m, &b), -1);
    assert_int_equal(errno, EINVAL);
    m.sender = "alice@example.net";
    m.nrcpt = 0;
    assert_int_equal(dsn_build(&m, &b), -1);
    assert_int_equal(b.len, 0);
    /* odd but harmless input: NULL names fall back, dates before 1900 to the epoch */
    m.nrcpt = 1;
    m.reporting_mta = NULL;
    m.queue_id = NULL;
    m.boundary_seed = NULL;
    m.now = (time_t)-99999999999LL;
    assert_int_equal(dsn_build(&m, &b), 0);
    struct report r;
    parse_report(&r, &b);
    assert_field(r.top, r.toplen, "Date", "Thu, 01 Jan 1970 00:00:00 +0000");
    assert_field(r.top, r.toplen, "From", "Mail Delivery System <MAILER-DAEMON@localhost>");
    free_report(&r);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_failed_bounce),
        cmocka_unit_test(test_ret_full_and_default),
        cmocka_unit_test(test_delayed),
        cmocka_unit_test(test_success),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_boundary_collision),
        cmocka_unit_test(test_envid_xtext),
        cmocka_unit_test(test_smtputf8),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
