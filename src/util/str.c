/*
 * util/str.c - small string helpers.
 */
#include "util/str.h"

#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int str_copy(char *dst, size_t dsz, const char *src)
{
    return str_ncopy(dst, dsz, src, strlen(src));
}

int str_ncopy(char *dst, size_t dsz, const char *src, size_t n)
{
    if (dsz == 0)
        return -1;
    if (n >= dsz) {
        memcpy(dst, src, dsz - 1);
        dst[dsz - 1] = '\0';
        return -1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return 0;
}

static inline char lc(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

bool str_ieq(const char *a, size_t alen, const char *b)
{
    size_t i;
    for (i = 0; i < alen; i++) {
        if (b[i] == '\0' || lc(a[i]) != lc(b[i]))
            return false;
    }
    return b[i] == '\0';
}

void str_lower(char *s)
{
    for (; *s; s++)
        *s = lc(*s);
}

char *str_escape(char *out, size_t osz, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (osz == 0)
        return out;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            if (o + 1 >= osz)
                break;
            out[o++] = (char)c;
        } else {
            if (o + 4 >= osz)
                break;
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

int str_to_u64(const char *s, size_t n, unsigned long long *v)
{
    unsigned long long r = 0;
    if (n == 0 || n > 20)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (r > (UINT64_MAX - d) / 10)
            return -1;
        r = r * 10 + d;
    }
    *v = r;
    return 0;
}

void str_err(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errsz == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}
