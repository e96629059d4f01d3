/*
 * util/str.h - small string helpers; no strcpy/strcat/sprintf/strncpy anywhere.
 */
#ifndef POSTEL_UTIL_STR_H
#define POSTEL_UTIL_STR_H

#include <stdbool.h>
#include <stddef.h>

/* Copy src into dst (size dsz), always terminated. Returns 0, or -1 if truncated. */
int str_copy(char *dst, size_t dsz, const char *src);
/* printf into err (size errsz), the error out-parameter's writer; err NULL or errsz 0:
 * nothing. */
void str_err(char *err, size_t errsz, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Copy n bytes of src into dst as a C string. Returns 0, or -1 if truncated. */
int str_ncopy(char *dst, size_t dsz, const char *src, size_t n);
/* ASCII case-insensitive equality of a (length alen) and the C string b. */
bool str_ieq(const char *a, size_t alen, const char *b);
/* Lower-case ASCII letters in place. */
void str_lower(char *s);
/*
 * Append to out (capacity osz, always terminated) an escaped copy of the n bytes at s,
 * safe for a log line: printable ASCII is kept (except '\\'), others become \xHH.
 * Returns out.
 */
char *str_escape(char *out, size_t osz, const char *s, size_t n);
/* Parse a non-negative decimal without sign or spaces into *v. Returns 0 or -1. */
int str_to_u64(const char *s, size_t n, unsigned long long *v);

#endif
