/*
 * tests/unit/smtp/test_data.c - DATA/BDAT content reader (smtp/data.c).
 *
 * Every expectation given to check() is verified for the input fed whole, split in two at
 * every offset, split in three at every pair of offsets (short inputs), and one byte at a
 * time: the reader must not care where the network split its input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "smtp/data.h"
#include "util/buf.h"

struct cfg {
    enum data_mode mode;
    unsigned long long max_size;
    size_t max_line;
    bool finish;                /* call data_finish() after the last piece */
};

static const struct cfg DATA_CFG = { DATA_MODE_DATA, 0, 0, false };
static const struct cfg BDAT_CFG = { DATA_MODE_BDAT, 0, 0, true };

struct result {
    struct buf out;
    unsigned flags;
    unsigned long long size;
    size_t consumed;
    bool done;
};

/* Feed in[0..n) in pieces ending at each of the ascending cuts, then the rest; stop at done. */
static void run_cuts(const struct cfg *c, const char *in, size_t n, const size_t *cuts,
    size_t ncuts, struct result *r)
{
    struct data_reader d;
    size_t start = 0;

    data_init(&d, c->mode, c->max_size, c->max_line);
    buf_init(&r->out, 0);
    r->consumed = 0;
    r->done = false;
    for (size_t k = 0; k <= ncuts && !r->done; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        size_t len = end - start;
        bool done = true;
        size_t got = data_feed(&d, in + start, len, &r->out, &done);
        assert_true(got != (size_t)-1);
        assert_true(got <= len);
        if (got < len)
            assert_true(done);
        if (c->mode == DATA_MODE_BDAT) {
            assert_int_equal(got, len);
            assert_false(done);
        }
        r->consumed += got;
        r->done = done;
        start = end;
    }
    if (c->finish)
        data_finish(&d, &r->out);
    r->flags = d.flags;
    r->size = d.size;
}

static void assert_same(const struct result *a, const struct result *b)
{
    assert_int_equal(a->out.len, b->out.len);
    if (a->out.len > 0)
        assert_memory_equal(a->out.p, b->out.p, a->out.len);
    assert_int_equal(a->flags, b->flags);
    assert_int_equal(a->size, b->size);
    assert_int_equal(a->consumed, b->consumed);
    assert_int_equal(a->done, b->done);
}

/* Feed whole, then every split, and compare each result with want. */
static void check_splits(const struct cfg *c, const char *in, size_t n,
    const struct result *want)
{
    struct result r;
    size_t cuts[2];

    run_cuts(c, in, n, NULL, 0, &r);
    assert_same(&r, want);
    buf_free(&r.out);

    for (size_t i = 1; i < n; i++) {
        cuts[0] = i;
        run_cuts(c, in, n, cuts, 1, &r);
        assert_same(&r, want);
        buf_free(&r.out);
    }
    if (n <= 48) {
        for (size_t i = 1; i < n; i++) {
            for (size_t j = i + 1; j < n; j++) {
                cuts[0] = i;
                cuts[1] = j;
                run_cuts(c, in, n, cuts, 2, &r);
                assert_same(&r, want);
                buf_free(&r.out);
            }
        }
    }

    /* one byte at a time; n pieces is at most n - 1 cuts */
    size_t *each = n > 1 ? test_malloc((n - 1) * sizeof *each) : NULL;
    for (size_t i = 1; i < n; i++)
        each[i - 1] = i;
    run_cuts(c, in, n, each, n > 1 ? n - 1 : 0, &r);
    assert_same(&r, want);
    buf_free(&r.out);
    if (each != NULL)
        test_free(each);
}

static void check_n(const struct cfg *c, const char *in, size_t n, const char *out,
    size_t out_n, unsigned flags, unsigned long long size, size_t consumed, bool done)
{
    struct result want;

    want.out.p = (char *)out;
    want.out.len = out_n;
    want.flags = flags;
    want.size = size;
    want.consumed = consumed;
    want.done = done;
    check_splits(c, in, n, &want);
}

/* String literals only (embedded NULs allowed). */
#define CHECK(cfg, in, out, flags, size, consumed, done) \
    check_n((cfg), (in), sizeof(in) - 1, (out), sizeof(out) - 1, (flags), (size), \
        (consumed), (done))

/* ---- DATA: normal content ---- */

static void test_normal_message(void **state)
{
    (void)state;
    CHECK(&DATA_CFG, "Subject: hi\r\n\r\nbody\r\n.\r\n", "Subject: hi\n\nbody\n",
        0, 21, 24, true);
}

static void test_empty_message(void **state)
{
    (void)state;
    CHECK(&DATA_CFG, ".\r\n", "", 0, 0, 3, true);
    CHECK(&DATA_CFG, ".\r\nQUIT\r\n", "", 0, 0, 3, true);
    /* a message that is one empty line */
    CHECK(&DATA_CFG, "\r\n.\r\n", "\n", 0, 2, 5, true);
}

static void test_incomplete_is_not_done(void **state)
{
    (void)state;
    CHECK(&DATA_CFG, "a\r\nb\r\n", "a\nb\n", 0, 6, 6, false);
    CHECK(&DATA_CFG, "a\r\n.\r", "a\n", 0, 3, 5, false);
    CHECK(&DATA_CFG, "a\r\n.", "a\n", 0, 3, 4, false);
    CHECK(&DATA_CFG, "a\r", "a", 0, 1, 2, false);
    CHECK(&DATA_CFG, "", "", 0, 0, 0, false);
}

static void test_dot_stuffing(void **state)
{
    (void)state;
    /* first line */
    CHECK(&DATA_CFG, "..foo\r\n.\r\n", ".foo\n", 0, 6, 10, true);
    CHECK(&DATA_CFG, ".x\r\n.\r\n", "x\n", 0, 3, 7, true);
    /* later lines; only the first dot, only at the start of a line */
    CHECK(&DATA_CFG, "a\r\n..b\r\n.x\r\na.b.\r\n...\r\n.\r\n", "a\n.b\nx\na.b.\n..\n",
        0, 20, 26, true);
    /* a dot followed by a space is stuffing, not the end */
    CHECK(&DATA_CFG, "a\r\n. \r\n.\r\n", "a\n \n", 0, 6, 10, true);
}

static void test_lone_double_dot(void **state)
{
    (void)state;
    CHECK(&DATA_CFG, "..\r\n.\r\n", ".\n", 0, 3, 7, true);
    CHECK(&DATA_CFG, "a\r\n..\r\nb\r\n.\r\n", "a\n.\nb\n", 0, 9, 13, true);
}

static void test_dot_line_middle_vs_end(void **state)
{
    (void)state;
    /* a line that is just "." is the end wherever it is; the rest is the next commands */
    CHECK(&DATA_CFG, "a\r\n.\r\nb\r\n.\r\n", "a\n", 0, 3, 6, true);
    /* stuffed, it is a content line */
    CHECK(&DATA_CFG, "a\r\n..\r\nb\r\n.\r\n", "a\n.\nb\n", 0, 9, 13, true);
}

/* ---- DATA: SMTP smuggling (end-of-data variants that must be content) ---- */

struct smuggle {
    const char *seq;
    const char *out;        /* content before the smuggled command */
    unsigned flags;
    unsigned long long size;
};

static void test_smuggling_sequences(void **state)
{
    static const struct smuggle cases[] = {
        { "\n.\n",         "a\n.\n",    DATA_F_BARE_LF, 4 },
        { "\r.\r",         "a\r.\r",    DATA_F_BARE_CR, 4 },
        { "\n.\r\n",       "a\n.\n",    DATA_F_BARE_LF, 5 },
        { "\r\n.\n",       "a\n\n",     DATA_F_BARE_LF, 4 },
        { "\r\n.\r\r\n",   "a\n\r\n",   DATA_F_BARE_CR, 6 },
        { "\r.\r\n",       "a\r.\n",    DATA_F_BARE_CR, 5 },
        { "\n.\r",         "a\n.\r",    DATA_F_BARE_LF | DATA_F_BARE_CR, 4 },
        { "\r\n.\r",       "a\n\r",     DATA_F_BARE_CR, 4 },
        { "\r\n\n.\r\n",   "a\n\n.\n",  DATA_F_BARE_LF, 7 },
        { "\r\n.\n\r\n",   "a\n\n\n",   DATA_F_BARE_LF, 6 },
        { "\n.\n\r\n",     "a\n.\n\n",  DATA_F_BARE_LF, 6 },
    };
    static const char smuggled[] = "MAIL FROM:<e@x>\r\n";   /* 17 octets, 16 out */
    static const char end[] = ".\r\n";
    static const char next[] = "QUIT\r\n";
    char in[128], out[128];
    (void)state;

    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct smuggle *s = &cases[k];
        size_t n = 0, on = 0;

        in[n++] = 'a';
        memcpy(in + n, s->seq, strlen(s->seq));
        n += strlen(s->seq);
        memcpy(in + n, smuggled, sizeof smuggled - 1);
        n += sizeof smuggled - 1;
        memcpy(in + n, end, sizeof end - 1);
        n += sizeof end - 1;
        size_t consumed = n;
        memcpy(in + n, next, sizeof next - 1);
        n += sizeof next - 1;

        memcpy(out, s->out, strlen(s->out));
        on = strlen(s->out);
        memcpy(out + on, "MAIL FROM:<e@x>\n", 16);
        on += 16;
        check_n(&DATA_CFG, in, n, out, on, s->flags, s->size + 17, consumed, true);
    }
}

static void test_smuggling_never_ends(void **state)
{
    (void)state;
    /* none of the variants ends the data on its own */
    CHECK(&DATA_CFG, "a\n.\nb", "a\n.\nb", DATA_F_BARE_LF, 5, 5, false);
    CHECK(&DATA_CFG, "a\r.\rb", "a\r.\rb", DATA_F_BARE_CR, 5, 5, false);
    CHECK(&DATA_CFG, "a\r\n.\nb", "a\n\nb", DATA_F_BARE_LF, 5, 6, false);
    CHECK(&DATA_CFG, "a\r\n.\r\r\nb", "a\n\r\nb", DATA_F_BARE_CR, 7, 8, false);
    CHECK(&DATA_CFG, ".\n", "\n", DATA_F_BARE_LF, 1, 2, false);
    CHECK(&DATA_CFG, ".\r.\r\n", "\r.\n", DATA_F_BARE_CR, 4, 5, false);
}

static void test_real_end_after_bare_lines(void **state)
{
    (void)state;
    /* bare LF lines, then a real CRLF "." CRLF: that is the end */
    CHECK(&DATA_CFG, "x\ny\n\r\n.\r\nRSET\r\n", "x\ny\n\n", DATA_F_BARE_LF, 6, 9, true);
    /* a bare CR right before the real CRLF */
    CHECK(&DATA_CFG, "a\r\r\n.\r\nQUIT\r\n", "a\r\n", DATA_F_BARE_CR, 4, 7, true);
    /* a smuggled end, then the real one */
    CHECK(&DATA_CFG, "a\n.\nRSET\r\n.\r\nQUIT\r\n", "a\n.\nRSET\n", DATA_F_BARE_LF, 10, 13,
        true);
}

/* ---- DATA: feeding in pieces ---- */

static void test_crlf_split_across_feeds(void **state)
{
    struct data_reader d;
    struct buf out;
    bool done = true;
    (void)state;

    data_init(&d, DATA_MODE_DATA, 0, 0);
    buf_init(&out, 0);
    assert_int_equal(data_feed(&d, "a\r", 2, &out, &done), 2);
    assert_false(done);
    assert_int_equal(out.len, 1);       /* the CR waits for the next byte */
    assert_int_equal(d.flags, 0);
    assert_int_equal(data_feed(&d, "\nb\r\n.\r\n", 7, &out, &done), 7);
    assert_true(done);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.p, "a\nb\n", 4);
    assert_int_equal(d.flags, 0);
    assert_int_equal(d.size, 6);
    buf_free(&out);
}

static void test_end_split_at_each_offset(void **state)
{
    static const char in[] = "hello\r\n.\r\nQUIT\r\n";
    const size_t n = sizeof in - 1, end = 10;
    (void)state;

    for (size_t k = 0; k <= n; k++) {
        struct data_reader d;
        struct buf out;
        bool done = true;

        data_init(&d, DATA_MODE_DATA, 0, 0);
        buf_init(&out, 0);
        size_t got = data_feed(&d, in, k, &out, &done);
        if (k < end) {
            assert_int_equal(got, k);
            assert_false(done);
            got = data_feed(&d, in + k, n - k, &out, &done);
            assert_int_equal(got, end - k);
        } else {
            assert_int_equal(got, end);
        }
        assert_true(done);
        assert_int_equal(out.len, 6);
        assert_memory_equal(out.p, "hello\n", 6);
        assert_int_equal(d.flags, 0);
        buf_free(&out);
    }
}

static void test_unconsumed_after_end(void **state)
{
    struct data_reader d;
    struct buf out;
    bool done = false;
    (void)state;

    data_init(&d, DATA_MODE_DATA, 0, 0);
    buf_init(&out, 0);
    assert_int_equal(data_feed(&d, "a\r\n.\r\nQUIT\r\n", 12, &out, &done), 6);
    assert_true(done);
    /* once done, nothing more is consumed or produced */
    done = false;
    assert_int_equal(data_feed(&d, "QUIT\r\n", 6, &out, &done), 0);
    assert_true(done);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.p, "a\n", 2);
    /* data_finish is a no-op in DATA mode */
    data_finish(&d, &out);
    assert_int_equal(out.len, 2);
    assert_int_equal(d.size, 3);
    assert_int_equal(d.flags, 0);
    /* done may be NULL */
    data_init(&d, DATA_MODE_DATA, 0, 0);
    assert_int_equal(data_feed(&d, ".\r\nX", 4, &out, NULL), 3);
    buf_free(&out);
}

/* ---- limits and octet flags ---- */

static void test_long_lines(void **state)
{
    const struct cfg data10 = { DATA_MODE_DATA, 0, 10, false };
    const struct cfg bdat10 = { DATA_MODE_BDAT, 0, 10, true };
    (void)state;

    CHECK(&data10, "0123456789\r\n.\r\n", "0123456789\n", 0, 12, 15, true);
    CHECK(&data10, "0123456789A\r\n.\r\n", "0123456789A\n", DATA_F_LONG_LINE, 13, 16,
        true);
    /* the count restarts at each line */
    CHECK(&data10, "0123456789\r\n0123456789\r\n.\r\n", "0123456789\n0123456789\n", 0,
        24, 27, true);
    /* a long line that is not the first, and continuing past it */
    CHECK(&data10, "a\r\n0123456789AB\r\nb\r\n.\r\n", "a\n0123456789AB\nb\n",
        DATA_F_LONG_LINE, 20, 23, true);
    /* the stuffing dot is not content */
    CHECK(&data10, "..123456789\r\n.\r\n", ".123456789\n", 0, 12, 16, true);
    CHECK(&data10, "..123456789A\r\n.\r\n", ".123456789A\n", DATA_F_LONG_LINE, 13, 17,
        true);
    /* a bare CR is a line octet */
    CHECK(&data10, "01234\r5678\r\n.\r\n", "01234\r5678\n", DATA_F_BARE_CR, 12, 15, true);
    CHECK(&data10, "01234\r56789\r\n.\r\n", "01234\r56789\n",
        DATA_F_BARE_CR | DATA_F_LONG_LINE, 13, 16, true);
    /* BDAT: same rule, the last line ended by data_finish */
    CHECK(&bdat10, "0123456789", "0123456789\n", 0, 12, 10, false);
    CHECK(&bdat10, "0123456789A", "0123456789A\n", DATA_F_LONG_LINE, 13, 11, false);
}

static void test_oversize(void **state)
{
    struct cfg c = { DATA_MODE_DATA, 5, 0, false };
    (void)state;

    /* "abc" CRLF is 5 octets: exactly at the limit */
    CHECK(&c, "abc\r\n.\r\n", "abc\n", 0, 5, 8, true);
    /* one over: the line end does not fit; the end is still found */
    c.max_size = 4;
    CHECK(&c, "abc\r\n.\r\nQUIT\r\n", "abc", DATA_F_OVERSIZE, 5, 8, true);
    /* after the first octet that does not fit nothing is appended, though "x" would fit */
    CHECK(&c, "abc\r\nx\r\n.\r\n", "abc", DATA_F_OVERSIZE, 8, 11, true);
    /* literal text keeps the prefix that fits, whatever the split */
    c.max_size = 3;
    CHECK(&c, "abcdef\r\nxy\r\n.\r\n", "abc", DATA_F_OVERSIZE, 12, 15, true);
    /* size keeps counting past the limit */
    c.max_size = 1;
    CHECK(&c, "abcdef\r\n..\r\nxy\r\n.\r\n", "a", DATA_F_OVERSIZE, 15, 19, true);
    /* BDAT, and the line end data_finish adds is counted too */
    const struct cfg b5 = { DATA_MODE_BDAT, 5, 0, true };
    const struct cfg b4 = { DATA_MODE_BDAT, 4, 0, true };
    CHECK(&b5, "abc", "abc\n", 0, 5, 3, false);
    CHECK(&b4, "abc", "abc", DATA_F_OVERSIZE, 5, 3, false);
    CHECK(&b4, "abcd", "abcd", DATA_F_OVERSIZE, 6, 4, false);
}

static void test_nul(void **state)
{
    (void)state;
    CHECK(&DATA_CFG, "a\0b\r\n.\r\n", "a\0b\n", DATA_F_NUL, 5, 8, true);
    CHECK(&DATA_CFG, "\0\r\n.\r\n", "\0\n", DATA_F_NUL, 3, 6, true);
    CHECK(&BDAT_CFG, "ab\0", "ab\0\n", DATA_F_NUL, 5, 3, false);
}

static void test_8bit(void **state)
{
    (void)state;
    CHECK(&DATA_CFG, "caf\xc3\xa9\r\n.\r\n", "caf\xc3\xa9\n", DATA_F_8BIT, 7, 10, true);
    CHECK(&DATA_CFG, "\xff\r\n.\r\n", "\xff\n", DATA_F_8BIT, 3, 6, true);
    CHECK(&DATA_CFG, "\x7f\r\n.\r\n", "\x7f\n", 0, 3, 6, true);
    CHECK(&DATA_CFG, "\x80\0\r\n.\r\n", "\x80\0\n", DATA_F_8BIT | DATA_F_NUL, 4, 7, true);
}

/* ---- BDAT ---- */

static void test_bdat_crlf_across_chunks(void **state)
{
    struct data_reader d;
    struct buf out;
    bool done = true;
    (void)state;

    data_init(&d, DATA_MODE_BDAT, 0, 0);
    buf_init(&out, 0);
    assert_int_equal(data_feed(&d, "a\r", 2, &out, &done), 2);
    assert_false(done);
    assert_int_equal(data_feed(&d, "\nb\r", 3, &out, &done), 3);
    assert_int_equal(data_feed(&d, "\n", 1, &out, &done), 1);
    assert_false(done);
    data_finish(&d, &out);
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.p, "a\nb\n", 4);
    assert_int_equal(d.flags, 0);
    assert_int_equal(d.size, 6);
    buf_free(&out);

    CHECK(&BDAT_CFG, "a\r\nb", "a\nb\n", 0, 6, 4, false);
}

static void test_bdat_no_dots_no_end(void **state)
{
    (void)state;
    CHECK(&BDAT_CFG, "..x\r\n.\r\nQUIT\r\n", "..x\n.\nQUIT\n", 0, 14, 14, false);
    CHECK(&BDAT_CFG, ".\r\n", ".\n", 0, 3, 3, false);
}

static void test_bdat_bare_cr_at_end(void **state)
{
    const struct cfg nofinish = { DATA_MODE_BDAT, 0, 0, false };
    (void)state;

    /* pending until data_finish settles it */
    CHECK(&nofinish, "abc\r", "abc", 0, 3, 4, false);
    CHECK(&BDAT_CFG, "abc\r", "abc\r\n", DATA_F_BARE_CR, 6, 4, false);
    CHECK(&BDAT_CFG, "\r", "\r\n", DATA_F_BARE_CR, 3, 1, false);
    CHECK(&BDAT_CFG, "a\nb", "a\nb\n", DATA_F_BARE_LF, 5, 3, false);
    CHECK(&BDAT_CFG, "a\rb\r\n", "a\rb\n", DATA_F_BARE_CR, 5, 5, false);
}

static void test_finish_final_newline(void **state)
{
    struct data_reader d;
    struct buf out;
    (void)state;

    CHECK(&BDAT_CFG, "abc", "abc\n", 0, 5, 3, false);
    CHECK(&BDAT_CFG, "abc\r\n", "abc\n", 0, 5, 5, false);
    CHECK(&BDAT_CFG, "a\r\n\r\n", "a\n\n", 0, 5, 5, false);
    CHECK(&BDAT_CFG, "", "", 0, 0, 0, false);

    /* twice is once */
    data_init(&d, DATA_MODE_BDAT, 0, 0);
    buf_init(&out, 0);
    assert_int_equal(data_feed(&d, "x", 1, &out, NULL), 1);
    data_finish(&d, &out);
    data_finish(&d, &out);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.p, "x\n", 2);
    assert_int_equal(d.size, 3);
    buf_free(&out);
}

/* ---- the out buffer ---- */

static void test_out_cap(void **state)
{
    struct data_reader d;
    struct buf out;
    bool done;
    (void)state;

    /* a cap below max_size is an internal error */
    data_init(&d, DATA_MODE_DATA, 0, 0);
    buf_init(&out, 3);
    assert_int_equal(data_feed(&d, "abcdef\r\n.\r\n", 11, &out, &done), (size_t)-1);
    buf_free(&out);

    /* a cap of max_size never fails, however big the message */
    data_init(&d, DATA_MODE_DATA, 3, 0);
    buf_init(&out, 3);
    assert_int_equal(data_feed(&d, "abcdef\r\nghi\r\n.\r\n", 16, &out, &done), 16);
    assert_true(done);
    assert_int_equal(d.flags, DATA_F_OVERSIZE);
    assert_int_equal(out.len, 3);
    buf_free(&out);

    /* data_finish hitting the cap reports it as oversize */
    data_init(&d, DATA_MODE_BDAT, 0, 0);
    buf_init(&out, 3);
    assert_int_equal(data_feed(&d, "abc", 3, &out, NULL), 3);
    data_finish(&d, &out);
    assert_int_equal(d.flags, DATA_F_OVERSIZE);
    buf_free(&out);
}

static void test_reader_is_small(void **state)
{
    (void)state;
    assert_true(sizeof(struct data_reader) <= 64);
}

/* ---- split equivalence over a mixed set of inputs and configurations ---- */

static void test_every_split_equivalent(void **state)
{
    static const char *const inputs[] = {
        "Subject: x\r\n\r\nline\r\n..dot\r\n.\r\nQUIT\r\n",
        "a\r\n.\r\r\n.\n.\r.\r\n\r\n.\r\nRSET\r\n",
        "\r\r\r\n\n\n.\r\n..\r\n.\r\n",
        "...\r\n.\r\r\n.\r\n",
        "x\ny\r\n.\nz\r\n.\r\n",
        "\0\xff\r\n\r.\r\n.\r\n",
        "0123456789abcdef\r\n0123\r\nxyz",
        "\r\n\r\n\r\n\r\n.\r\n",
        ".\r\n",
        ".",
        "\r",
        "\n",
        "a\r",
    };
    static const struct cfg cfgs[] = {
        { DATA_MODE_DATA, 0, 0, false },
        { DATA_MODE_DATA, 7, 4, false },
        { DATA_MODE_DATA, 12, 8, true },
        { DATA_MODE_BDAT, 0, 0, true },
        { DATA_MODE_BDAT, 9, 3, true },
        { DATA_MODE_BDAT, 0, 0, false },
    };
    (void)state;

    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        for (size_t k = 0; k < sizeof inputs / sizeof inputs[0]; k++) {
            struct result whole;
            size_t n = strlen(inputs[k]);
            if (k == 5)
                n = 11;     /* contains a NUL */
            run_cuts(&cfgs[c], inputs[k], n, NULL, 0, &whole);
            check_splits(&cfgs[c], inputs[k], n, &whole);
            buf_free(&whole.out);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normal_message),
        cmocka_unit_test(test_empty_message),
        cmocka_unit_test(test_incomplete_is_not_done),
        cmocka_unit_test(test_dot_stuffing),
        cmocka_unit_test(test_lone_double_dot),
        cmocka_unit_test(test_dot_line_middle_vs_end),
        cmocka_unit_test(test_smuggling_sequences),
        cmocka_unit_test(test_smuggling_never_ends),
        cmocka_unit_test(test_real_end_after_bare_lines),
        cmocka_unit_test(test_crlf_split_across_feeds),
        cmocka_unit_test(test_end_split_at_each_offset),
        cmocka_unit_test(test_unconsumed_after_end),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_8bit),
        cmocka_unit_test(test_bdat_crlf_across_chunks),
        cmocka_unit_test(test_bdat_no_dots_no_end),
        cmocka_unit_test(test_bdat_bare_cr_at_end),
        cmocka_unit_test(test_finish_final_newline),
        cmocka_unit_test(test_out_cap),
        cmocka_unit_test(test_reader_is_small),
        cmocka_unit_test(test_every_split_equivalent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
