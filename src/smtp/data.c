/*
 * smtp/data.c - DATA and BDAT message content reader.
 *
 * Owns:  end-of-data detection, dot-unstuffing, CRLF -> LF, the content flags and size.
 * Never: does I/O, allocates (except by growing out), or decides the reply.
 * Limits: max_size and max_line from data_init(); see smtp/data.h for the counting rules.
 *
 * The hot path is the middle of a line: memchr finds the next LF (remembered across CRs so
 * a line full of bare CRs stays linear), then the next CR before it, and the text between
 * is checked and appended as one span. Only line ends, CRs and line-initial dots go through
 * the small state machine.
 */
#include "smtp/data.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "util/buf.h"

enum {
    ST_BOL,     /* at the start of a line: after CRLF, or before the first byte */
    ST_MID,     /* inside a line */
    ST_CR,      /* a CR was read, not yet known to be part of a CRLF */
    ST_DOT,     /* DATA: "." at the start of a line, not yet known to be the end */
    ST_DOT_CR,  /* DATA: "." CR at the start of a line: one LF away from the end */
    ST_DONE,    /* DATA: the end-of-data sequence was read */
};

void data_init(struct data_reader *d, enum data_mode mode, unsigned long long max_size,
    size_t max_line)
{
    d->max_size = max_size ? max_size : ULLONG_MAX;
    d->max_line = max_line ? max_line : SIZE_MAX;
    d->line_len = 0;
    d->mode = (unsigned char)mode;
    d->state = ST_BOL;
    d->flags = 0;
    d->size = 0;
}

/*
 * Account for `octets` content octets, appended to out as the n bytes at s. A literal span
 * (n == octets) keeps the prefix that fits under max_size, a line end (n < octets) is all
 * or nothing; after the first refusal nothing is appended. This makes out depend only on
 * the content, never on how the input was split. Returns 0, or -1 if out's cap was hit.
 */
static int put(struct data_reader *d, struct buf *out, const char *s, size_t n,
    unsigned long long octets)
{
    if (!(d->flags & DATA_F_OVERSIZE)) {
        unsigned long long room = d->max_size - d->size;    /* size <= max_size here */
        if (octets > room) {
            d->flags |= DATA_F_OVERSIZE;
            n = n == octets ? (size_t)room : 0;
        }
        if (buf_append(out, s, n) == -1)
            return -1;
    }
    d->size = octets > ULLONG_MAX - d->size ? ULLONG_MAX : d->size + octets;
    return 0;
}

/* Count n octets of line content against max_line. */
static void count_line(struct data_reader *d, size_t n)
{
    if (n > d->max_line - d->line_len) {
        d->flags |= DATA_F_LONG_LINE;
        d->line_len = d->max_line;      /* stays flagged; keeps the sum from overflowing */
    } else {
        d->line_len += n;
    }
}

/* Whether any of the n octets at s is >= 0x80; a word at a time (-O2 does not vectorise a
 * byte loop). */
static bool has_8bit(const char *s, size_t n)
{
    uint64_t acc = 0;
    size_t i = 0;

    for (; n - i >= 8; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, sizeof w);
        acc |= w;
    }
    for (; i < n; i++)
        acc |= (unsigned char)s[i];
    return (acc & 0x8080808080808080ULL) != 0;
}

/* Line text without CR or LF: check it for NUL and 8-bit octets, count it, append it. */
static int text(struct data_reader *d, struct buf *out, const char *s, size_t n)
{
    if (n == 0)
        return 0;
    /* each check stops once its flag is set: the flag cannot be unset */
    if (!(d->flags & DATA_F_NUL) && memchr(s, '\0', n) != NULL)
        d->flags |= DATA_F_NUL;
    if (!(d->flags & DATA_F_8BIT) && has_8bit(s, n))
        d->flags |= DATA_F_8BIT;
    count_line(d, n);
    return put(d, out, s, n, n);
}

/* A CR that turned out not to start a CRLF: flag it and keep it as a line octet. */
static int bare_cr(struct data_reader *d, struct buf *out)
{
    d->flags |= DATA_F_BARE_CR;
    count_line(d, 1);
    d->state = ST_MID;
    return put(d, out, "\r", 1, 1);
}

size_t data_feed(struct data_reader *d, const char *in, size_t n, struct buf *out,
    bool *done)
{
    size_t i = 0;
    size_t nl = 0;          /* index of the next LF at or after i, or n; valid if nl_known */
    bool nl_known = false;

    while (i < n && d->state != ST_DONE) {
        switch (d->state) {
        case ST_BOL:
            if (d->mode == DATA_MODE_DATA && in[i] == '.') {
                i++;        /* a stuffing dot or the end: dropped either way */
                d->state = ST_DOT;
            } else {
                d->state = ST_MID;
            }
            break;
        case ST_MID: {
            if (!nl_known || nl < i) {
                const char *lf = memchr(in + i, '\n', n - i);
                nl = lf ? (size_t)(lf - in) : n;
                nl_known = true;
            }
            const char *cr = memchr(in + i, '\r', nl - i);
            size_t stop = cr ? (size_t)(cr - in) : nl;
            if (text(d, out, in + i, stop - i) == -1)
                return (size_t)-1;
            i = stop;
            if (cr) {
                i++;
                d->state = ST_CR;
            } else if (i < n) {
                /* an LF with no CR before it on this line */
                d->flags |= DATA_F_BARE_LF;
                d->line_len = 0;
                if (put(d, out, "\n", 1, 1) == -1)
                    return (size_t)-1;
                i++;
            }
            break;
        }
        case ST_CR:
            if (in[i] == '\n') {
                d->line_len = 0;
                if (put(d, out, "\n", 1, 2) == -1)
                    return (size_t)-1;
                i++;
                d->state = ST_BOL;
            } else if (bare_cr(d, out) == -1) {     /* in[i] is read again as ST_MID */
                return (size_t)-1;
            }
            break;
        case ST_DOT:
            if (in[i] == '\r') {
                i++;
                d->state = ST_DOT_CR;
            } else {
                d->state = ST_MID;  /* the dot was stuffing */
            }
            break;
        case ST_DOT_CR:
            if (in[i] == '\n') {
                i++;
                d->state = ST_DONE;
            } else if (bare_cr(d, out) == -1) {     /* the dot was stuffing */
                return (size_t)-1;
            }
            break;
        }
    }
    if (done != NULL)
        *done = d->state == ST_DONE;
    return i;
}

void data_finish(struct data_reader *d, struct buf *out)
{
    if (d->mode != DATA_MODE_BDAT)
        return;
    if (d->state == ST_CR && bare_cr(d, out) == -1) {
        d->flags |= DATA_F_OVERSIZE;
        return;
    }
    if (d->state != ST_BOL) {
        d->line_len = 0;
        d->state = ST_BOL;
        if (put(d, out, "\n", 1, 2) == -1)
            d->flags |= DATA_F_OVERSIZE;
    }
}
