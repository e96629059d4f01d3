/*
 * util/buf.h - growable byte buffers with a hard cap.
 *
 * Every buffer fed from the network has a cap (max); appends past it fail so the
 * caller can answer 500/552 instead of growing without bound.
 */
#ifndef POSTEL_UTIL_BUF_H
#define POSTEL_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *p;
    size_t len, cap, max;   /* max: hard cap on len; 0 means SIZE_MAX */
};

/* Initialise an empty buffer with hard cap max (0: no cap). Allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* Free the storage and reset to empty (the cap is kept). */
void buf_free(struct buf *b);
/* Make room for n more bytes. Returns 0, or -1 when len + n would pass the cap. */
int buf_reserve(struct buf *b, size_t n);
/* Append n bytes. Returns 0, or -1 (buffer unchanged) when over the cap. */
int buf_append(struct buf *b, const void *d, size_t n);
/* Append a C string. Returns 0 or -1 as buf_append. */
int buf_puts(struct buf *b, const char *s);
/* Append formatted text. Returns 0 or -1 (over the cap; buffer unchanged). */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Drop the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Empty the buffer without freeing its storage. */
static inline void buf_reset(struct buf *b) { b->len = 0; }
/* NUL-terminate the content (not counted in len) and return it; NULL if over the cap. */
const char *buf_cstr(struct buf *b);

#endif
