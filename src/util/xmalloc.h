/*
 * util/xmalloc.h - allocators that abort on out-of-memory.
 *
 * Peer input is capped everywhere, so a peer can never make these fail.
 */
#ifndef POSTEL_UTIL_XMALLOC_H
#define POSTEL_UTIL_XMALLOC_H

#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Multiply-checked reallocarray; aborts on overflow or OOM. */
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
