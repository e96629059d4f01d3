/*
 * smtp/data.h - DATA and BDAT message content reader: a pure byte machine.
 *
 * Owns:  end-of-data detection (CRLF "." CRLF, nothing else), dot-unstuffing, CRLF -> LF
 *        normalisation, and the content checks (bare CR/LF, NUL, 8-bit, line length, size).
 * Never: does I/O or picks a reply; the caller reads the flags once the content has ended
 *        and rejects the whole message if any error flag is set.
 * Limits: max_size and max_line given to data_init() (RFC 1870, RFC 5321 4.5.3.1.6).
 *
 * Input may arrive split at any byte offset: output, flags, size and the consumed count do
 * not depend on where it was split (the state carries across calls).
 *
 * Counting rules:
 * - size is the RFC 1870 size of the content in CRLF form, so that it compares fairly with
 *   a client's SIZE=: each CRLF line end counts 2 octets although out gets a single "\n";
 *   a bare CR or bare LF counts 1; a stuffing dot and the end-of-data sequence count 0.
 * - A line's length is its content octets after dot-unstuffing, without the line end, so a
 *   message measures the same through DATA and BDAT. CRLF and bare LF end a line for this
 *   count; a bare CR is an octet of the line.
 * - out never gets more than max_size bytes from one reader: literal octets are appended
 *   up to the limit, a line end only when both of its octets fit, and nothing after the
 *   first octet that does not fit. So an out buffer whose cap leaves max_size bytes free
 *   never makes data_feed() fail.
 */
#ifndef POSTEL_SMTP_DATA_H
#define POSTEL_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

enum data_mode { DATA_MODE_DATA, DATA_MODE_BDAT };

#define DATA_F_BARE_LF   0x01u  /* an LF not preceded by CR */
#define DATA_F_BARE_CR   0x02u  /* a CR not followed by LF */
#define DATA_F_LONG_LINE 0x04u  /* a line longer than max_line octets (excluding CRLF) */
#define DATA_F_OVERSIZE  0x08u  /* content passed max_size */
#define DATA_F_NUL       0x10u  /* a NUL octet */
#define DATA_F_8BIT      0x20u  /* an octet >= 0x80 (informational, not an error) */
/* Flags that make the message unacceptable (all but DATA_F_8BIT). */
#define DATA_F_ERRORS    (DATA_F_BARE_LF | DATA_F_BARE_CR | DATA_F_LONG_LINE | \
                          DATA_F_OVERSIZE | DATA_F_NUL)

/*
 * One message's content reader; lives in the session while it is in DATA/BDAT state.
 * Fields before `flags` are private. It holds no pointers and owns nothing: it can be
 * dropped at any time without cleanup. 40 bytes on LP64.
 */
struct data_reader {
    unsigned long long max_size;    /* private */
    size_t max_line;                /* private */
    size_t line_len;                /* private: octets of the current line, <= max_line */
    unsigned char mode;             /* private: enum data_mode */
    unsigned char state;            /* private */
    unsigned flags;                 /* DATA_F_*, read-only for the caller */
    unsigned long long size;        /* content octets so far, CRLF form (counted even past
                                     * max_size; saturates at ULLONG_MAX) */
};

/*
 * Start reading one message's content. max_size: the largest acceptable size in octets
 * (see size above), 0 for no limit. max_line: the longest acceptable line in octets
 * excluding the line end (998 for RFC 5321's 1000 with CRLF), 0 for no limit.
 * In DATA mode the reader starts at the start of a line: the 354 reply stands in for the
 * CRLF before it, so "." CRLF as the very first line ends an empty message.
 */
void data_init(struct data_reader *d, enum data_mode mode, unsigned long long max_size,
    size_t max_line);

/*
 * Feed n bytes (in may be NULL when n is 0). Appends the decoded content to out: CRLF
 * becomes "\n", a bare CR or LF is kept as-is and flagged, in DATA mode the first dot of a
 * line is removed.
 * DATA mode: returns the number of bytes consumed: all n, or fewer when the end-of-data
 * sequence was found; then *done is true and the bytes after the sequence are not consumed
 * (they are the next pipelined commands). Once done, further calls consume nothing.
 * The end is only CRLF "." CRLF, where the first CRLF ends the previous line, or "." CRLF
 * as the very first line; every bare-CR/bare-LF variant of it is content.
 * BDAT mode: no dot handling and no end detection: consumes all n, *done is false.
 * done may be NULL. Returns (size_t)-1 only if out's cap was hit (an internal error: see
 * the out rule at the top); the reader must not be fed again then.
 */
size_t data_feed(struct data_reader *d, const char *in, size_t n, struct buf *out,
    bool *done);

/*
 * End of the content for BDAT (after BDAT ... LAST): a CR pending at the very end is settled
 * as a bare CR, and if the content does not end with a CRLF line end (and is not empty),
 * one "\n" is appended to out and 2 octets to size (subject to max_size like any line end).
 * A bare LF at the end does not count as a line end here; the message is rejected anyway.
 * If out's cap is hit, DATA_F_OVERSIZE is set. In DATA mode it does nothing: the end
 * sequence has already ended the last line.
 */
void data_finish(struct data_reader *d, struct buf *out);

#endif
