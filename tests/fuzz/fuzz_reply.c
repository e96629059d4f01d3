/*
 * tests/fuzz/fuzz_reply.c - libFuzzer target for smtp/reply.c.
 *
 * Input: a 4-byte header, then a stream of server output.
 *   [0..1] [2..3] two cut offsets, big-endian, modulo len + 1, for a three-piece feed
 * The stream is parsed reply after reply until it ends or fails: fed whole, in three pieces,
 * one byte at a time (short inputs), and by a naive line-at-a-time reference model. Each run
 * writes a transcript (every reply's code, enhanced code, line count, text and end offset,
 * then how it ended); all four must be identical. Each reply's reply_format() must be one
 * printable line of at most REPLY_FORMAT_MAX characters.
 *
 * Build: clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -fsanitize=fuzzer,address,undefined \
 *            tests/fuzz/fuzz_reply.c src/smtp/reply.c src/util/buf.c src/util/str.c \
 *            src/util/xmalloc.c
 * Corpus: tests/fuzz/corpus/reply/
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/reply.h"
#include "util/buf.h"

static void put(struct buf *t, const void *p, size_t n)
{
    if (buf_append(t, p, n) == -1)
        abort();
}

static void put_num(struct buf *t, size_t v)
{
    if (buf_printf(t, "%zu;", v) == -1)
        abort();
}

static void check_format(const struct smtp_reply *r)
{
    char out[REPLY_FORMAT_MAX + 50];
    reply_format(r, out, sizeof out);
    size_t n = strlen(out);
    if (n > REPLY_FORMAT_MAX || n < 3)
        abort();
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] >= 0x7f)
            abort();
    }
    /* a short buffer gets a prefix of the same rendering */
    char small[5];
    reply_format(r, small, sizeof small);
    size_t sn = n < 4 ? n : 4;
    if (strlen(small) != sn || memcmp(small, out, sn) != 0)
        abort();
}

/* One complete reply into the transcript (after checking its invariants). */
static void record(struct buf *t, int code, const char *enh, size_t nlines, const char *text,
    size_t tlen, size_t end)
{
    if (code < 200 || code > 559 || code % 100 > 59 || nlines < 1 || nlines > REPLY_LINES_MAX
        || tlen > REPLY_TEXT_MAX)
        abort();
    if (enh[0] != '\0' && enh[0] - '0' != code / 100)
        abort();
    put_num(t, (size_t)code);
    put(t, enh, strlen(enh));
    put(t, ";", 1);
    put_num(t, nlines);
    put_num(t, tlen);
    put(t, text, tlen);
    put_num(t, end);
}

/* The parser, fed in pieces ending at the ascending cuts[0..ncuts), then the rest. */
static void run(const char *in, size_t n, const size_t *cuts, size_t ncuts, struct buf *t)
{
    struct reply_parser p;
    size_t start = 0, pos = 0;

    reply_parser_init(&p);
    for (size_t k = 0; k <= ncuts; k++) {
        size_t end = k < ncuts ? cuts[k] : n;
        pos = start;
        while (pos < end) {
            struct smtp_reply r;
            bool done = true;
            size_t got = reply_parse(&p, in + pos, end - pos, &r, &done);
            if (got == (size_t)-1) {
                if (done || p.err[0] == '\0')
                    abort();
                put(t, "ERR ", 4);
                put(t, p.err, strlen(p.err));
                reply_parser_free(&p);
                return;
            }
            if (got > end - pos || (!done && got != end - pos) || (done && got == 0))
                abort();
            pos += got;
            if (done) {
                check_format(&r);
                record(t, r.code, r.enh, r.nlines, r.text.p, r.text.len, pos);
                reply_free(&r);
            }
        }
        start = end;
    }
    /* a parser at a reply boundary holds nothing */
    if (p.len == 0 && !p.cr && p.cur.nlines == 0)
        put(t, "END", 3);
    else
        put(t, "PARTIAL", 7);
    reply_parser_free(&p);
}

/* ---- reference model: whole lines, no incremental state ---- */

static bool dig(char c)
{
    return c >= '0' && c <= '9';
}

/* "c.s.d" with 1-3 digits in s and d and class cls, then SP or the end: its length or 0. */
static size_t ref_enh(const char *s, size_t n, int cls)
{
    size_t part[3] = { 0, 0, 0 }, k = 0, i = 0;
    if (cls != 2 && cls != 4 && cls != 5)
        return 0;
    for (; i < n && s[i] != ' '; i++) {
        if (s[i] == '.') {
            if (++k > 2)
                return 0;
        } else if (dig(s[i])) {
            part[k]++;
        } else {
            return 0;
        }
    }
    if (k != 2 || part[0] != 1 || s[0] != '0' + cls || part[1] < 1 || part[1] > 3
        || part[2] < 1 || part[2] > 3)
        return 0;
    return i;
}

static void ref_run(const char *in, size_t n, struct buf *t)
{
    size_t pos = 0;
    bool partial = false;

    while (pos < n) {
        int code = 0;
        char enh[16] = "";
        size_t nlines = 0;
        struct buf text;
        const char *err = NULL;

        buf_init(&text, 0);
        for (;;) {
            /* find the line's end */
            size_t i = pos, next = 0;
            bool eol = false;
            while (i < n && err == NULL) {
                if (in[i] == '\n') {
                    eol = true;
                    next = i + 1;
                    break;
                }
                if (in[i] == '\r') {
                    if (i + 1 == n)
                        break;
                    if (in[i + 1] != '\n') {
                        err = "bare CR in reply";
                        break;
                    }
                    eol = true;
                    next = i + 2;
                    break;
                }
                if (in[i] == '\0')
                    err = "NUL in reply";
                else if (i - pos + 2 >= REPLY_LINE_MAX)
                    err = "reply line too long";
                else
                    i++;
            }
            if (err == NULL && !eol) {
                partial = true;
                pos = n;
                break;
            }
            if (err != NULL)
                break;
            const char *l = in + pos;
            size_t len = i - pos;
            pos = next;
            if (len < 3 || !dig(l[0]) || !dig(l[1]) || !dig(l[2]) || l[0] < '2' || l[0] > '5'
                || l[1] > '5') {
                err = "malformed reply code";
                break;
            }
            if (len > 3 && l[3] != ' ' && l[3] != '-') {
                err = "malformed reply line";
                break;
            }
            int c = atoi((char[]){ l[0], l[1], l[2], 0 });
            if (nlines > 0 && c != code) {
                err = "mixed reply codes in a multi-line reply";
                break;
            }
            code = c;
            if (nlines == REPLY_LINES_MAX) {
                err = "too many lines in a reply";
                break;
            }
            const char *tx = len > 4 ? l + 4 : l + len;
            size_t tn = len > 4 ? len - 4 : 0;
            size_t e = ref_enh(tx, tn, code / 100);
            if (e > 0) {
                if (enh[0] == '\0') {
                    memcpy(enh, tx, e);
                    enh[e] = '\0';
                }
                while (e < tn && tx[e] == ' ')
                    e++;
            }
            if (text.len + (nlines > 0) + (tn - e) > REPLY_TEXT_MAX) {
                err = "reply text too long";
                break;
            }
            if (nlines > 0)
                put(&text, "\n", 1);
            put(&text, tx + e, tn - e);
            nlines++;
            if (len == 3 || l[3] == ' ')
                break;
        }
        if (err != NULL) {
            put(t, "ERR ", 4);
            put(t, err, strlen(err));
            buf_free(&text);
            return;
        }
        if (partial) {
            buf_free(&text);
            break;
        }
        record(t, code, enh, nlines, text.p, text.len, pos);
        buf_free(&text);
    }
    put(t, partial ? "PARTIAL" : "END", partial ? 7 : 3);
}

static void same(const struct buf *a, const struct buf *b)
{
    if (a->len != b->len || (a->len && memcmp(a->p, b->p, a->len) != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct buf whole, split, ref;
    size_t cuts[2];

    if (size < 4)
        return 0;
    const char *in = (const char *)data + 4;
    size_t n = size - 4;
    cuts[0] = ((size_t)data[0] << 8 | data[1]) % (n + 1);
    cuts[1] = ((size_t)data[2] << 8 | data[3]) % (n + 1);
    if (cuts[0] > cuts[1]) {
        size_t x = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = x;
    }

    buf_init(&whole, 0);
    buf_init(&split, 0);
    buf_init(&ref, 0);
    run(in, n, NULL, 0, &whole);
    run(in, n, cuts, 2, &split);
    same(&whole, &split);
    ref_run(in, n, &ref);
    same(&whole, &ref);
    if (n > 1 && n <= 4096) {
        struct buf bytes;
        size_t *each = malloc((n - 1) * sizeof *each);
        if (each == NULL)
            abort();
        for (size_t i = 1; i < n; i++)
            each[i - 1] = i;
        buf_init(&bytes, 0);
        run(in, n, each, n - 1, &bytes);
        same(&whole, &bytes);
        buf_free(&bytes);
        free(each);
    }
    buf_free(&whole);
    buf_free(&split);
    buf_free(&ref);
    return 0;
}
