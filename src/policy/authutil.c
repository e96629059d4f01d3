/*
 * policy/authutil.c - helpers shared by the AUTH modules: UTF-8, user names, reading the
 * password and sender files line by line, random octets.
 *
 * Owns:  the file reader (regular files only, at most AUTH_FILE_MAX octets), the line walker
 *        (LF or CRLF, blanks trimmed, '#' comments skipped, AUTH_LINE_MAX).
 * Never: parses either file's entries (passwd.c, senders.c do); keeps state; logs.
 * Limits: policy/auth.h (AUTH_FILE_MAX, AUTH_LINE_MAX, AUTH_USER_MAX).
 */
#include "policy/authutil.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "policy/auth.h"
#include "util/str.h"
#include "util/xmalloc.h"


bool authutil_utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t len;
        unsigned char lo = 0x80, hi = 0xbf;     /* range of the second octet */

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            if (c == 0xe0)
                lo = 0xa0;                      /* no overlong forms */
            else if (c == 0xed)
                hi = 0x9f;                      /* no surrogates */
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;                      /* <= U+10FFFF */
        } else {
            return false;
        }
        if (len > n - i || s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k < len; k++) {
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return false;
        }
        i += len;
    }
    return true;
}

char *authutil_read_file(const char *path, size_t *lenp, char *err, size_t errsz)
{
    struct stat st;
    char *p = NULL;
    size_t len = 0, cap = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd == -1) {
        str_err(err, errsz, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) == -1) {
        str_err(err, errsz, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        str_err(err, errsz, "%s: not a regular file", path);
        goto fail;
    }
    if ((unsigned long long)st.st_size > AUTH_FILE_MAX) {
        str_err(err, errsz, "%s: larger than %lu octets", path, (unsigned long)AUTH_FILE_MAX);
        goto fail;
    }
    cap = (size_t)st.st_size + 1;               /* + 1: see EOF without a second read */
    p = xmalloc(cap);
    for (;;) {
        ssize_t r;

        if (len == cap) {
            if (cap > AUTH_FILE_MAX) {          /* grew while we read it */
                str_err(err, errsz, "%s: larger than %lu octets", path,
                    (unsigned long)AUTH_FILE_MAX);
                goto fail;
            }
            cap = cap * 2 > AUTH_FILE_MAX + 1 ? AUTH_FILE_MAX + 1 : cap * 2;
            p = xrealloc(p, cap);
        }
        r = read(fd, p + len, cap - len);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            str_err(err, errsz, "%s: %s", path, strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    (void)close(fd);
    *lenp = len;
    return p;
fail:
    if (p != NULL)
        explicit_bzero(p, cap);
    free(p);
    (void)close(fd);
    return NULL;
}

int authutil_next_line(struct authutil_lines *it, const char **l, size_t *ll, char *err,
    size_t errsz)
{
    while (it->pos < it->n) {
        const char *s = it->p + it->pos;
        const char *nl = memchr(s, '\n', it->n - it->pos);
        size_t len = nl ? (size_t)(nl - s) : it->n - it->pos;

        it->pos += len + (nl != NULL);
        it->lineno++;
        if (len > 0 && s[len - 1] == '\r')
            len--;
        if (len > AUTH_LINE_MAX) {
            str_err(err, errsz, "%s:%lu: line longer than %d octets", it->path, it->lineno,
                AUTH_LINE_MAX);
            return -1;
        }
        if (memchr(s, '\0', len) != NULL) {
            str_err(err, errsz, "%s:%lu: NUL octet", it->path, it->lineno);
            return -1;
        }
        while (len > 0 && authutil_is_blank(*s)) {
            s++;
            len--;
        }
        while (len > 0 && authutil_is_blank(s[len - 1]))
            len--;
        if (len == 0 || *s == '#')
            continue;
        *l = s;
        *ll = len;
        return 1;
    }
    return 0;
}

bool authutil_user_ok(const char *s, size_t n)
{
    if (n == 0 || n > AUTH_USER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == ':')
            return false;
    }
    return authutil_utf8_valid((const unsigned char *)s, n);
}

int authutil_random(void *p, size_t n, unsigned flags)
{
    unsigned char *d = p;

    while (n > 0) {
        ssize_t r = getrandom(d, n, flags);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        d += r;
        n -= (size_t)r;
    }
    return 0;
}
