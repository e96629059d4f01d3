/*
 * mail/mime.h - downgrade an 8-bit message to 7-bit MIME (RFC 6152 section 3).
 *
 * Owns:  finding 8-bit content, walking the MIME tree (RFC 2045, RFC 2046), and re-encoding
 *        8-bit leaf parts as quoted-printable (text) or base64 (anything else).
 * Never: does I/O, touches a header other than Content-Transfer-Encoding, or decodes.
 * Limits: MIME_MAX_DEPTH nested multipart and message/rfc822 entities; the cap of out.
 *
 * Messages are in spool form: LF line ends (the caller writes CRLF on the wire), so an LF
 * in the spool stands for a CRLF on the wire. Conversion rules:
 * - An entity without 8-bit octets (octets >= 0x80 or NUL) is copied byte for byte.
 * - An 8-bit leaf part whose type is text/... (or that has no Content-Type, or an unparsable
 *   one, RFC 2045 5.2) is re-encoded quoted-printable: each LF stays a hard line break,
 *   lines are at most 76 characters, and no line starts with "--" (the first '-' is then
 *   written "=2D"), so the encoding can never create a boundary delimiter line.
 * - Any other 8-bit leaf (message/global* included, RFC 6532 3.5) is re-encoded base64, 76
 *   characters a line. The encoded octets are the part's wire form, so every LF of its
 *   body is encoded as CRLF: a receiver decodes exactly what it would have got in 8-bit.
 * - The leaf's Content-Transfer-Encoding field is replaced in place, or added after its
 *   last header field. Every other header field is kept byte for byte, in order.
 * - multipart/... and message/rfc822 are walked; their own Content-Transfer-Encoding of 8bit
 *   or binary becomes 7bit. A part without Content-Type in multipart/digest is a
 *   message/rfc822 (RFC 2046 5.1.5). An embedded message/rfc822 needs MIME-Version like the
 *   top level.
 * - Delimiter lines are those that start with "--" boundary (RFC 2046 5.1.1, note to
 *   implementors); anything after the boundary is kept. A missing close delimiter ends the
 *   multipart at the end of its entity. A preamble or epilogue with 8-bit octets is
 *   dropped (MIME readers ignore both); its line ends are kept.
 * Anything that cannot be converted without guessing is refused; see enum mime_result.
 */
#ifndef POSTEL_MAIL_MIME_H
#define POSTEL_MAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>

struct buf;

/* Nested multipart and message/rfc822 entities a conversion walks at most. */
#define MIME_MAX_DEPTH 32

/*
 * Outcomes of mime_to_7bit(). Every refusal is a permanent failure for the next hop; the
 * suggested status is 5.6.3 (RFC 3463: conversion required but not supported), except
 * 5.3.4 for MIME_TOO_BIG.
 */
enum mime_result {
    MIME_OK,            /* out holds the converted message */
    MIME_UNCHANGED,     /* already 7-bit: out untouched */
    MIME_NOT_MIME,      /* 8-bit content without MIME-Version: cannot be converted */
    MIME_8BIT_HEADERS,  /* 8-bit octets in a header: cannot be converted */
    MIME_BAD,           /* MIME too malformed to convert safely */
    MIME_TOO_DEEP,      /* more than MIME_MAX_DEPTH nested entities to walk */
    MIME_TOO_BIG,       /* the converted message does not fit the cap of out */
};

/* Is there an octet >= 0x80 or a NUL in msg[0..n)? */
bool mime_has_8bit(const char *msg, size_t n);

/*
 * Convert msg (n bytes, LF line ends, a whole RFC 5322 message with headers) to 7-bit.
 * The result is appended to out (which the caller owns and frees); on any result but
 * MIME_OK, out is left as it was. For every result but MIME_OK, err (errsz bytes; may be
 * NULL if errsz is 0) gets a one-line reason without a status code, fit for a bounce, e.g.
 * "message has 8-bit content but is not MIME; the next hop does not accept 8-bit".
 * Runs in time linear in n times the nesting depth; recursion is bounded by MIME_MAX_DEPTH.
 */
enum mime_result mime_to_7bit(const char *msg, size_t n, struct buf *out, char *err,
    size_t errsz);

/* A short static text for r, e.g. "already 7-bit". */
const char *mime_result_str(enum mime_result r);

#endif
