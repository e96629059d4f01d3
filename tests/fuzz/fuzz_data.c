/*
 * tests/fuzz/fuzz_data.c - libFuzzer target for smtp/data.c.
 *
 * Input: a 7-byte header, then the bytes fed to the reader.
 *   [0] mode: 'B' or any odd byte: BDAT; otherwise DATA ('D')
 *   [1] max_line: 0 for no limit, else 1..255
 *   [2] max_size: 0 for no limit, else 4 * [2]
 *   [3..4] [5..6] two cut offsets, big-endian, modulo len + 1, for a three-piece feed
 * The content is fed whole, in three pieces, one byte at a time (short inputs) and through
 * a naive byte-at-a-time reference model; all four must agree on output, flags, size,
 * consumed count and done. Invariants of the end sequence and the size cap are checked too.
 *
 * Build: clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -fsanitize=fuzzer,address,undefined \
 *            tests/fuzz/fuzz_data.c src/smtp/data.c src/util/buf.c src/util/xmalloc.c
 * Corpus: tests/fuzz/corpus/data/
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/data.h"
#include "util/buf.h"

struct res {
    struct buf out;
    unsigned flags;
    unsigned long long size;
    size_t consumed;
    bool done;
};

struct cfg {
    enum data_mode mode;
    unsigned long long max_size;    /* 0: none */
    size_t max_line;                /* 0: none */
};

static void out_init(const struct cfg *c, struct buf *out)
{
    /* a cap of max_size must be enough: data_feed() may never fail with it */
    buf_init(out, (size_t)c->max_size);
}

/* Feed in pieces ending at cuts[0..ncuts) (ascending), then the rest. */
static void run(const struct cfg *c, const char *in, size_t n, const size_t *cuts,
    size_t ncuts, struct res *r)
{
    struct data_reader d;
    size_t start = 0;

    data_init(&d, c->mode, c->max_size, c->max_line);
    out_init(c, &r->out);
    r->consumed = 0;
    r->done = false;
    for (size_t k = 0; k <= ncuts && !r->done; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        bool done = true;
        size_t got = data_feed(&d, in + start, end - start, &r->out, &done);
        if (got == (size_t)-1 || got > end - start)
            abort();
        if (got < end - start && !done)
            abort();
        if (c->mode == DATA_MODE_BDAT && (done || got != end - start))
            abort();
        r->consumed += got;
        r->done = done;
        start = end;
    }
    data_finish(&d, &r->out);
    r->flags = d.flags;
    r->size = d.size;
}

/* ---- reference model: one byte at a time, no cleverness ---- */

struct ref {
    const struct cfg *c;
    struct res *r;
    size_t line;
};

static void ref_octets(struct ref *m, char ch, unsigned octets)
{
    unsigned long long max = m->c->max_size ? m->c->max_size : ~0ULL;
    if (!(m->r->flags & DATA_F_OVERSIZE)) {
        if (m->r->size + octets > max)
            m->r->flags |= DATA_F_OVERSIZE;
        else if (buf_append(&m->r->out, &ch, 1) == -1)
            abort();
    }
    m->r->size += octets;
}

static void ref_text(struct ref *m, char ch)
{
    unsigned char u = (unsigned char)ch;
    if (u == 0)
        m->r->flags |= DATA_F_NUL;
    if (u >= 0x80)
        m->r->flags |= DATA_F_8BIT;
    m->line++;
    if (m->c->max_line && m->line > m->c->max_line)
        m->r->flags |= DATA_F_LONG_LINE;
    ref_octets(m, ch, 1);
}

enum { R_BOL, R_MID, R_CR, R_DOT, R_DOT_CR };

static void ref_run(const struct cfg *c, const char *in, size_t n, struct res *r)
{
    struct ref m = { c, r, 0 };
    int st = R_BOL;
    size_t i = 0;

    out_init(c, &r->out);
    r->flags = 0;
    r->size = 0;
    r->done = false;
    while (i < n && !r->done) {
        char ch = in[i];
        switch (st) {
        case R_BOL:
            st = R_MID;
            if (c->mode == DATA_MODE_DATA && ch == '.') {
                st = R_DOT;
                i++;
            }
            continue;
        case R_MID:
            if (ch == '\r') {
                st = R_CR;
            } else if (ch == '\n') {
                r->flags |= DATA_F_BARE_LF;
                m.line = 0;
                ref_octets(&m, '\n', 1);
            } else {
                ref_text(&m, ch);
            }
            i++;
            continue;
        case R_CR:
        case R_DOT_CR:
            if (ch == '\n') {
                if (st == R_DOT_CR) {
                    r->done = true;
                } else {
                    m.line = 0;
                    ref_octets(&m, '\n', 2);
                    st = R_BOL;
                }
                i++;
            } else {
                r->flags |= DATA_F_BARE_CR;
                ref_text(&m, '\r');
                st = R_MID;
            }
            continue;
        case R_DOT:
            if (ch == '\r') {
                st = R_DOT_CR;
                i++;
            } else {
                st = R_MID;
            }
            continue;
        }
    }
    r->consumed = i;
    if (c->mode == DATA_MODE_BDAT) {
        if (st == R_CR) {
            r->flags |= DATA_F_BARE_CR;
            ref_text(&m, '\r');
            st = R_MID;
        }
        if (st != R_BOL)
            ref_octets(&m, '\n', 2);
    }
}

static void same(const struct res *a, const struct res *b)
{
    if (a->out.len != b->out.len || a->flags != b->flags || a->size != b->size ||
        a->consumed != b->consumed || a->done != b->done)
        abort();
    if (a->out.len && memcmp(a->out.p, b->out.p, a->out.len) != 0)
        abort();
}

static void invariants(const struct cfg *c, const char *in, size_t n, const struct res *r)
{
    if (r->out.len > r->size)
        abort();
    if (c->max_size && r->out.len > c->max_size)
        abort();
    if (!(r->flags & DATA_F_OVERSIZE) && c->max_size && r->size > c->max_size)
        abort();
    if (c->mode == DATA_MODE_DATA && r->done) {
        /* the end is exactly CRLF "." CRLF, or "." CRLF at the very start */
        size_t k = r->consumed;
        bool first = k == 3 && memcmp(in, ".\r\n", 3) == 0;
        if (!first && (k < 5 || memcmp(in + k - 5, "\r\n.\r\n", 5) != 0))
            abort();
    } else if (r->consumed != n) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg c;
    struct res whole, split, bytes, ref;
    size_t cuts[2];

    if (size < 7)
        return 0;
    c.mode = data[0] == 'B' || (data[0] & 1) ? DATA_MODE_BDAT : DATA_MODE_DATA;
    c.max_line = data[1];
    c.max_size = 4ULL * data[2];
    const char *in = (const char *)data + 7;
    size_t n = size - 7;
    cuts[0] = ((size_t)data[3] << 8 | data[4]) % (n + 1);
    cuts[1] = ((size_t)data[5] << 8 | data[6]) % (n + 1);
    if (cuts[0] > cuts[1]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }

    run(&c, in, n, NULL, 0, &whole);
    invariants(&c, in, n, &whole);
    run(&c, in, n, cuts, 2, &split);
    same(&whole, &split);
    ref_run(&c, in, n, &ref);
    same(&whole, &ref);
    if (n > 1 && n <= 4096) {
        size_t *each = malloc((n - 1) * sizeof *each);
        if (each == NULL)
            abort();
        for (size_t i = 1; i < n; i++)
            each[i - 1] = i;
        run(&c, in, n, each, n - 1, &bytes);
        same(&whole, &bytes);
        buf_free(&bytes.out);
        free(each);
    }

    buf_free(&whole.out);
    buf_free(&split.out);
    buf_free(&ref.out);
    return 0;
}
