/*
 * smtp/reply.h - incremental parser for SMTP server replies (RFC 5321 4.2, RFC 2034/3463).
 *
 * Owns:  the Reply-line grammar, multi-line replies, enhanced status code extraction, and a
 *        log- and bounce-safe one-line rendering of a reply.
 * Never: does I/O or keeps a pointer into the caller's input; bytes may be split anywhere.
 * Limits: REPLY_LINE_MAX octets per line, REPLY_LINES_MAX lines, REPLY_TEXT_MAX octets of
 *        text per reply (all lenient next to RFC 5321 4.5.3.1.5's 512).
 */
#ifndef POSTEL_SMTP_REPLY_H
#define POSTEL_SMTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

/* One reply line, line end included. RFC 5321 says 512 (SMTP_REPLY_MAX); real servers
 * send longer EHLO and rejection lines, so we allow four times that. */
#define REPLY_LINE_MAX  2048
/* Lines in one reply. */
#define REPLY_LINES_MAX 1000
/* Octets of text in one reply (the joined lines, separators included). */
#define REPLY_TEXT_MAX  (64 * 1024)
/* reply_format() never writes more than this many characters (plus the terminator). */
#define REPLY_FORMAT_MAX 500

struct smtp_reply {
    int code;                   /* 200..559: first digit 2-5, second 0-5 */
    char enh[16];               /* enhanced status code "5.1.1", or "" when absent */
    struct buf text;            /* every line's text after "CODE-"/"CODE ", joined with "\n";
                                   a leading enhanced code (and the SPs after it) is removed
                                   from each line that has one; not NUL-terminated */
    size_t nlines;
};

struct reply_parser {
    struct smtp_reply cur;      /* the reply being assembled */
    char line[REPLY_LINE_MAX];  /* the current line, without its end */
    size_t len;
    bool cr;                    /* the previous octet was a CR */
    bool failed;                /* sticky: every later call fails too */
    char err[80];               /* why the parse failed */
};

/* Initialise a parser. It allocates only while a reply is being assembled. */
void reply_parser_init(struct reply_parser *p);

/* Free the partly assembled reply, if any (the parser may be initialised again). */
void reply_parser_free(struct reply_parser *p);

/*
 * Feed n bytes of server output (split anywhere). Returns the number of bytes consumed, or
 * (size_t)-1 on a protocol error, with the reason in p->err; the parser then stays failed.
 * When a reply is complete, *done is set, the reply is moved into *r (its previous content
 * is overwritten, not freed; free it with reply_free()) and parsing stops: the bytes not
 * consumed belong to the next reply. *r is not touched otherwise.
 *
 * Accepted: "ddd", "ddd " text, "ddd-" text, with a first digit 2-5 and a second 0-5, the
 * same code on every line; lines end with CRLF or, leniently, a bare LF (sloppy servers);
 * text may hold any octet but NUL and CR (8-bit and UTF-8 text, RFC 6531, are kept raw).
 * Errors: a malformed code, mixed codes in one reply, a NUL, a CR not followed by LF, a line
 * over REPLY_LINE_MAX, more than REPLY_LINES_MAX lines, text over REPLY_TEXT_MAX.
 *
 * An enhanced status code (RFC 3463: class "." 1*3digit "." 1*3digit, then SP or the line's
 * end) is recognised only when its class (2, 4 or 5) equals the reply's first digit;
 * otherwise it is plain text. r->enh is the first one found.
 */
size_t reply_parse(struct reply_parser *p, const char *in, size_t n, struct smtp_reply *r,
    bool *done);

/* Free a reply's text and clear it. */
void reply_free(struct smtp_reply *r);

/*
 * Render r on one line as "550 5.1.1 text text" into out (size osz, always terminated when
 * osz > 0): lines are joined with a single SP, every control or non-ASCII octet becomes '?',
 * and at most REPLY_FORMAT_MAX characters are written. Safe for logs and bounces.
 */
void reply_format(const struct smtp_reply *r, char *out, size_t osz);

#endif
