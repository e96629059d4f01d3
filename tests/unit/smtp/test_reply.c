/*
 * tests/unit/smtp/test_reply.c - SMTP reply parser and formatter (smtp/reply.c).
 *
 * Every input given to expect_reply()/expect_error() is fed whole, split in two at every
 * offset, and one byte at a time: the outcome must not depend on where the network split it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/reply.h"
#include "util/buf.h"

struct outcome {
    bool error;
    bool done;
    size_t consumed;
    struct smtp_reply r;
    char err[80];
};

/* Feed in[0..n) in pieces ending at the ascending cuts, then the rest; stop at done/error. */
static void run_cuts(const char *in, size_t n, const size_t *cuts, size_t ncuts,
    struct outcome *o)
{
    struct reply_parser p;
    size_t start = 0;

    memset(o, 0, sizeof *o);
    reply_parser_init(&p);
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        bool done = true;
        size_t got = reply_parse(&p, in + start, end - start, &o->r, &done);
        if (got == (size_t)-1) {
            assert_false(done);
            o->error = true;
            memcpy(o->err, p.err, sizeof o->err);
            /* the failure is sticky */
            assert_int_equal(reply_parse(&p, "250 x\r\n", 7, &o->r, &done), (size_t)-1);
            break;
        }
        assert_true(got <= end - start);
        o->consumed += got;
        if (done) {
            o->done = true;
            break;
        }
        assert_int_equal(got, end - start);
        start = end;
    }
    reply_parser_free(&p);
}

static void same(const struct outcome *a, const struct outcome *b)
{
    assert_int_equal(a->error, b->error);
    assert_int_equal(a->done, b->done);
    if (a->error) {
        assert_string_equal(a->err, b->err);
        return;
    }
    assert_int_equal(a->consumed, b->consumed);
    if (!a->done)
        return;
    assert_int_equal(a->r.code, b->r.code);
    assert_string_equal(a->r.enh, b->r.enh);
    assert_int_equal(a->r.nlines, b->r.nlines);
    assert_int_equal(a->r.text.len, b->r.text.len);
    if (a->r.text.len)
        assert_memory_equal(a->r.text.p, b->r.text.p, a->r.text.len);
}

static void outcome_free(struct outcome *o)
{
    if (o->done)
        reply_free(&o->r);
}

/* Parse whole, split in two everywhere and byte by byte; all must agree. Result in *o. */
static void parse_all(const char *in, size_t n, struct outcome *o)
{
    run_cuts(in, n, NULL, 0, o);
    for (size_t i = 0; i <= n; i++) {
        struct outcome s;
        run_cuts(in, n, &i, 1, &s);
        same(o, &s);
        outcome_free(&s);
    }
    if (n > 1) {
        size_t *each = malloc((n - 1) * sizeof *each);
        assert_non_null(each);
        for (size_t i = 1; i < n; i++)
            each[i - 1] = i;
        struct outcome s;
        run_cuts(in, n, each, n - 1, &s);
        same(o, &s);
        outcome_free(&s);
        free(each);
    }
}

static void expect_reply_n(const char *in, size_t n, size_t consumed, int code, const char *enh,
    const char *text, size_t nlines)
{
    struct outcome o;
    parse_all(in, n, &o);
    assert_false(o.error);
    assert_true(o.done);
    assert_int_equal(o.consumed, consumed);
    assert_int_equal(o.r.code, code);
    assert_string_equal(o.r.enh, enh);
    assert_int_equal(o.r.nlines, nlines);
    assert_int_equal(o.r.text.len, strlen(text));
    if (o.r.text.len)
        assert_memory_equal(o.r.text.p, text, o.r.text.len);
    outcome_free(&o);
}

static void expect_reply(const char *in, int code, const char *enh, const char *text,
    size_t nlines)
{
    expect_reply_n(in, strlen(in), strlen(in), code, enh, text, nlines);
}

static void expect_error_n(const char *in, size_t n, const char *err)
{
    struct outcome o;
    parse_all(in, n, &o);
    assert_true(o.error);
    assert_string_equal(o.err, err);
}

static void expect_error(const char *in, const char *err)
{
    expect_error_n(in, strlen(in), err);
}

static void test_single_line(void **state)
{
    (void)state;
    expect_reply("250 OK\r\n", 250, "", "OK", 1);
    expect_reply("220 mx.example ESMTP ready\r\n", 220, "", "mx.example ESMTP ready", 1);
    expect_reply("250\r\n", 250, "", "", 1);
    expect_reply("250 \r\n", 250, "", "", 1);
    expect_reply("354 End data with <CR><LF>.<CR><LF>\r\n", 354, "",
        "End data with <CR><LF>.<CR><LF>", 1);
    expect_reply("559 x\r\n", 559, "", "x", 1);
    expect_reply("200 x\r\n", 200, "", "x", 1);
    /* text keeps its inner and trailing spaces and tabs */
    expect_reply("250  two\tspaces \r\n", 250, "", " two\tspaces ", 1);
}

static void test_multi_line(void **state)
{
    (void)state;
    expect_reply("250-mx.example Hello\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
        "250 8BITMIME\r\n", 250, "", "mx.example Hello\nPIPELINING\nSIZE 10240000\n8BITMIME",
        4);
    expect_reply("250-\r\n250 last\r\n", 250, "", "\nlast", 2);
    expect_reply("250-first\r\n250\r\n", 250, "", "first\n", 2);
    expect_reply("451-a\r\n451-b\r\n451 c\r\n", 451, "", "a\nb\nc", 3);
}

static void test_enhanced(void **state)
{
    (void)state;
    expect_reply("550 5.1.1 User unknown\r\n", 550, "5.1.1", "User unknown", 1);
    expect_reply("250 2.1.5 Ok\r\n", 250, "2.1.5", "Ok", 1);
    expect_reply("452 4.5.3 Too many recipients\r\n", 452, "4.5.3", "Too many recipients", 1);
    expect_reply("550 5.7.1\r\n", 550, "5.7.1", "", 1);
    expect_reply("550 5.123.456   spaced\r\n", 550, "5.123.456", "spaced", 1);
    /* removed from every line; the first one is the reply's */
    expect_reply("550-5.7.1 first\r\n550-5.7.2 second\r\n550 last\r\n", 550, "5.7.1",
        "first\nsecond\nlast", 3);
    expect_reply("550-first\r\n550 5.7.1 second\r\n", 550, "5.7.1", "first\nsecond", 2);
    /* class must match the code's first digit: otherwise it is text */
    expect_reply("250 5.1.1 odd\r\n", 250, "", "5.1.1 odd", 1);
    expect_reply("450 5.1.1 odd\r\n", 450, "", "5.1.1 odd", 1);
    expect_reply("354 3.0.0 go\r\n", 354, "", "3.0.0 go", 1);
    /* malformed codes are text */
    expect_reply("550 5.1 short\r\n", 550, "", "5.1 short", 1);
    expect_reply("550 5.1.1x glued\r\n", 550, "", "5.1.1x glued", 1);
    expect_reply("550 5.1234.1 long\r\n", 550, "", "5.1234.1 long", 1);
    expect_reply("550 5.1.1234 long\r\n", 550, "", "5.1.1234 long", 1);
    expect_reply("550 5..1 empty\r\n", 550, "", "5..1 empty", 1);
    expect_reply("550 x 5.1.1\r\n", 550, "", "x 5.1.1", 1);
}

static void test_rest_is_next_reply(void **state)
{
    (void)state;
    const char *in = "250 first\r\n354 go ahead\r\n";
    struct reply_parser p;
    struct smtp_reply r;
    bool done;

    expect_reply_n(in, strlen(in), 11, 250, "", "first", 1);

    reply_parser_init(&p);
    size_t got = reply_parse(&p, in, strlen(in), &r, &done);
    assert_true(done);
    assert_int_equal(got, 11);
    assert_int_equal(r.code, 250);
    reply_free(&r);
    size_t got2 = reply_parse(&p, in + got, strlen(in) - got, &r, &done);
    assert_true(done);
    assert_int_equal(got2, strlen(in) - got);
    assert_int_equal(r.code, 354);
    reply_free(&r);
    /* nothing more: not done, r untouched */
    r.code = 7;
    assert_int_equal(reply_parse(&p, "", 0, &r, &done), 0);
    assert_false(done);
    assert_int_equal(r.code, 7);
    reply_parser_free(&p);
}

static void test_incomplete(void **state)
{
    (void)state;
    struct outcome o;
    parse_all("250-a\r\n250 b", 12, &o);
    assert_false(o.error);
    assert_false(o.done);
    assert_int_equal(o.consumed, 12);
    parse_all("250 b\r", 6, &o);
    assert_false(o.error);
    assert_false(o.done);
}

static void test_bare_lf(void **state)
{
    (void)state;
    expect_reply("250 OK\n", 250, "", "OK", 1);
    expect_reply("250-a\n250-b\r\n250 c\n", 250, "", "a\nb\nc", 3);
}

static void test_bare_cr(void **state)
{
    (void)state;
    expect_error("250 a\rb\r\n", "bare CR in reply");
    expect_error("250 a\r\r\n", "bare CR in reply");
    expect_error("250-a\r250 b\r\n", "bare CR in reply");
}

static void test_nul(void **state)
{
    (void)state;
    expect_error_n("250 a\0b\r\n", 9, "NUL in reply");
    expect_error_n("\0", 1, "NUL in reply");
}

static void test_8bit_text(void **state)
{
    (void)state;
    expect_reply("550 5.1.1 Benutzer j\xc3\xb6rg unbekannt\r\n", 550, "5.1.1",
        "Benutzer j\xc3\xb6rg unbekannt", 1);
    expect_reply("250 latin1 \xe9\r\n", 250, "", "latin1 \xe9", 1);
    expect_reply("250 ctl \x01\x1b[1m\r\n", 250, "", "ctl \x01\x1b[1m", 1);
}

static void test_line_length(void **state)
{
    (void)state;
    /* REPLY_LINE_MAX octets, CRLF included, is fine; one more is not */
    size_t n = REPLY_LINE_MAX;
    char *in = malloc(n + 2);
    assert_non_null(in);
    memcpy(in, "250 ", 4);
    memset(in + 4, 'x', n - 6);
    memcpy(in + n - 2, "\r\n", 2);
    struct outcome o;
    run_cuts(in, n, NULL, 0, &o);
    assert_true(o.done);
    assert_int_equal(o.r.text.len, n - 6);
    outcome_free(&o);

    memcpy(in, "250 ", 4);
    memset(in + 4, 'x', n - 5);
    memcpy(in + n - 1, "\r\n", 2);
    run_cuts(in, n + 1, NULL, 0, &o);
    assert_true(o.error);
    assert_string_equal(o.err, "reply line too long");
    /* the same without any line end at all */
    memset(in, '2', n + 2);
    run_cuts(in, n + 2, NULL, 0, &o);
    assert_true(o.error);
    assert_string_equal(o.err, "reply line too long");
    free(in);
}

static void test_too_many_lines(void **state)
{
    (void)state;
    struct buf b;
    struct outcome o;

    buf_init(&b, 0);
    for (size_t i = 0; i < REPLY_LINES_MAX - 1; i++)
        assert_int_equal(buf_puts(&b, "250-x\r\n"), 0);
    assert_int_equal(buf_puts(&b, "250 x\r\n"), 0);
    run_cuts(b.p, b.len, NULL, 0, &o);
    assert_true(o.done);
    assert_int_equal(o.r.nlines, REPLY_LINES_MAX);
    outcome_free(&o);

    buf_reset(&b);
    for (size_t i = 0; i < REPLY_LINES_MAX; i++)
        assert_int_equal(buf_puts(&b, "250-x\r\n"), 0);
    assert_int_equal(buf_puts(&b, "250 x\r\n"), 0);
    run_cuts(b.p, b.len, NULL, 0, &o);
    assert_true(o.error);
    assert_string_equal(o.err, "too many lines in a reply");
    buf_free(&b);
}

static void test_text_cap(void **state)
{
    (void)state;
    struct buf b;
    struct outcome o;
    char line[2001];

    memset(line, 'y', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    buf_init(&b, 0);
    /* 40 lines of 2000 octets: 80 KB of text, over REPLY_TEXT_MAX */
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(buf_printf(&b, "250%c%s\r\n", i == 39 ? ' ' : '-', line), 0);
    run_cuts(b.p, b.len, NULL, 0, &o);
    assert_true(o.error);
    assert_string_equal(o.err, "reply text too long");
    buf_free(&b);
}

static void test_mixed_codes(void **state)
{
    (void)state;
    expect_error("250-a\r\n251 b\r\n", "mixed reply codes in a multi-line reply");
    expect_error("250-a\r\n550-b\r\n", "mixed reply codes in a multi-line reply");
}

static void test_bad_codes(void **state)
{
    (void)state;
    expect_error("600 x\r\n", "malformed reply code");
    expect_error("2x0 x\r\n", "malformed reply code");
    expect_error("199 x\r\n", "malformed reply code");
    expect_error("260 x\r\n", "malformed reply code");
    expect_error("25x\r\n", "malformed reply code");
    expect_error("25\r\n", "malformed reply code");
    expect_error("\r\n", "malformed reply code");
    expect_error(" 250 x\r\n", "malformed reply code");
    expect_error("250x\r\n", "malformed reply line");
    expect_error("250\tx\r\n", "malformed reply line");
    expect_error("250-a\r\n2500 b\r\n", "malformed reply line");
    expect_error("250-a\r\nhello\r\n", "malformed reply code");
}

static void fmt(const char *in, size_t osz, const char *want)
{
    struct outcome o;
    char out[600];
    run_cuts(in, strlen(in), NULL, 0, &o);
    assert_true(o.done);
    memset(out, 'Z', sizeof out);
    reply_format(&o.r, out, osz);
    assert_string_equal(out, want);
    outcome_free(&o);
}

static void test_format(void **state)
{
    (void)state;
    fmt("550 5.1.1 User unknown\r\n", 600, "550 5.1.1 User unknown");
    fmt("250 OK\r\n", 600, "250 OK");
    fmt("250\r\n", 600, "250");
    fmt("550 5.7.1\r\n", 600, "550 5.7.1");
    fmt("550-5.7.1 first\r\n550 5.7.1 second\r\n", 600, "550 5.7.1 first second");
    fmt("550-first \r\n550-\r\n550 last\r\n", 600, "550 first last");
    fmt("550 bell\x07 esc\x1b utf8 \xc3\xb6 tab\t del\x7f\r\n", 600,
        "550 bell? esc? utf8 ?? tab? del?");
    fmt("550 5.1.1 abcdef\r\n", 8, "550 5.1");
    fmt("550 5.1.1 abcdef\r\n", 1, "");

    /* capped at REPLY_FORMAT_MAX characters */
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(buf_puts(&b, "550 "), 0);
    for (size_t i = 0; i < 700; i++)
        assert_int_equal(buf_puts(&b, "a"), 0);
    assert_int_equal(buf_puts(&b, "\r\n"), 0);
    const char *in = buf_cstr(&b);
    struct outcome o;
    char out[600];
    run_cuts(in, b.len, NULL, 0, &o);
    reply_format(&o.r, out, sizeof out);
    assert_int_equal(strlen(out), REPLY_FORMAT_MAX);
    assert_memory_equal(out, "550 aaa", 7);
    outcome_free(&o);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_line),
        cmocka_unit_test(test_multi_line),
        cmocka_unit_test(test_enhanced),
        cmocka_unit_test(test_rest_is_next_reply),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_bare_cr),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_8bit_text),
        cmocka_unit_test(test_line_length),
        cmocka_unit_test(test_too_many_lines),
        cmocka_unit_test(test_text_cap),
        cmocka_unit_test(test_mixed_codes),
        cmocka_unit_test(test_bad_codes),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
