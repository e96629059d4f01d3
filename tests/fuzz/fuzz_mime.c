/*
 * tests/fuzz/fuzz_mime.c - libFuzzer target for mail/mime.c and mail/mime_head.c.
 *
 * Input: a whole message in spool form (LF line ends), converted with mime_to_7bit().
 * Checked:
 * - MIME_UNCHANGED exactly when the input is 7-bit; then and on every refusal, out is left
 *   as it was and err holds a reason.
 * - MIME_OK output has no octet >= 0x80 or NUL, and converting it again is MIME_UNCHANGED.
 * - No output line is longer than the longest input line or 76 (the encoders' lines), so
 *   a conversion never makes a line too long for SMTP.
 * - Conversion makes no new candidate delimiter line: the output's lines that start with
 *   "--" are a subsequence of the input's (the encoders never start a line with "--").
 * - The out cap is honoured exactly: the same conversion into a buffer one byte too small
 *   is MIME_TOO_BIG and leaves it untouched; with just enough room it gives the same bytes.
 *
 * Build: clang -std=c11 -D_GNU_SOURCE -g -O1 -Isrc -fsanitize=fuzzer,address,undefined \
 *            -fno-sanitize-recover=all tests/fuzz/fuzz_mime.c src/mail/mime.c \
 *            src/mail/mime_head.c src/util/b64.c src/util/buf.c src/util/str.c \
 *            src/util/xmalloc.c -lcrypto (or: make build-fuzz/fuzz_mime)
 * Corpus: tests/fuzz/corpus/mime/
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mime.h"
#include "util/buf.h"

static size_t longest_line(const char *p, size_t n)
{
    size_t best = 0, col = 0;
    for (size_t i = 0; i < n; i++) {
        col = p[i] == '\n' ? 0 : col + 1;
        if (col > best)
            best = col;
    }
    return best;
}

/* Next line of p[0..n) at or after *pos that starts with "--"; false when none is left. */
static bool next_dash_line(const char *p, size_t n, size_t *pos, size_t *ls, size_t *len)
{
    while (*pos < n) {
        const char *lf = memchr(p + *pos, '\n', n - *pos);
        size_t le = lf ? (size_t)(lf - p) : n;
        size_t s = *pos;
        *pos = lf ? le + 1 : n;
        if (le - s >= 2 && p[s] == '-' && p[s + 1] == '-') {
            *ls = s;
            *len = le - s;
            return true;
        }
    }
    return false;
}

static bool dash_lines_subsequence(const char *out, size_t on, const char *in, size_t n)
{
    size_t op = 0, ip = 0, os, ol, is, il;
    while (next_dash_line(out, on, &op, &os, &ol)) {
        for (;;) {
            if (!next_dash_line(in, n, &ip, &is, &il))
                return false;
            if (il == ol && memcmp(in + is, out + os, ol) == 0)
                break;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    struct buf out, again, small;
    char err[200];

    buf_init(&out, 0);
    err[0] = 'x';
    err[1] = '\0';
    enum mime_result r = mime_to_7bit(in, size, &out, err, sizeof err);
    if (memchr(err, '\0', sizeof err) == NULL)
        abort();
    if ((r == MIME_UNCHANGED) != !mime_has_8bit(in, size))
        abort();
    if (r != MIME_OK) {
        if (out.len != 0 || err[0] == '\0' || r == MIME_TOO_BIG)
            abort();
        buf_free(&out);
        return 0;
    }
    if (mime_has_8bit(out.p, out.len))
        abort();
    size_t lim = longest_line(in, size);
    if (longest_line(out.p, out.len) > (lim > 76 ? lim : 76))
        abort();

    if (!dash_lines_subsequence(out.p, out.len, in, size))
        abort();

    buf_init(&again, 0);
    if (mime_to_7bit(out.p, out.len, &again, NULL, 0) != MIME_UNCHANGED || again.len != 0)
        abort();
    buf_free(&again);

    buf_init(&small, out.len + 3);
    if (buf_append(&small, "pre", 3) == -1)
        abort();
    small.max = out.len + 2;
    if (mime_to_7bit(in, size, &small, err, sizeof err) != MIME_TOO_BIG || small.len != 3)
        abort();
    small.max = out.len + 3;
    if (mime_to_7bit(in, size, &small, err, sizeof err) != MIME_OK ||
        small.len != out.len + 3 || memcmp(small.p + 3, out.p, out.len) != 0)
        abort();
    buf_free(&small);
    buf_free(&out);
    return 0;
}
