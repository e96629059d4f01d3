/*
 * policy/authutil.h - helpers shared by the AUTH modules (sasl.c, passwd.c, throttle.c,
 * senders.c); internal to src/policy/, not part of auth.h's public surface.
 *
 * Owns:  UTF-8 validation, the user-name rule, reading the password and sender files and
 *        walking their content lines, error messages for them, random octets.
 * Never: keeps state; logs; knows either file's syntax beyond "one entry per line".
 * Limits: AUTH_FILE_MAX, AUTH_LINE_MAX, AUTH_USER_MAX (policy/auth.h).
 */
#ifndef POSTEL_POLICY_AUTHUTIL_H
#define POSTEL_POLICY_AUTHUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define AUTHUTIL_ESC_MAX 120    /* octets of escaped input shown in an error message */

/* Is c a blank (SP or HTAB)? */
static inline bool authutil_is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Wipe the sz octets at s (NULL or sz 0: nothing), so no secret is left behind. */
static inline void authutil_clear(char *s, size_t sz)
{
    if (s != NULL && sz > 0)
        explicit_bzero(s, sz);
}


/*
 * Is s (n octets) well-formed UTF-8 (RFC 3629: shortest form, no surrogates, at most
 * U+10FFFF)? NUL is accepted here; callers reject it separately.
 */
bool authutil_utf8_valid(const unsigned char *s, size_t n);

/* A user name: 1..AUTH_USER_MAX octets of UTF-8 without ':', blanks or controls? */
bool authutil_user_ok(const char *s, size_t n);

/*
 * Read the regular file at path (at most AUTH_FILE_MAX octets). Returns a malloc'd buffer
 * (length *lenp, not terminated; the caller frees it), or NULL with "path: reason" in err.
 */
char *authutil_read_file(const char *path, size_t *lenp, char *err, size_t errsz);

/* Walks the content lines of a file: blank and '#' lines skipped, blanks trimmed. */
struct authutil_lines {
    const char *path;
    const char *p;
    size_t n, pos;
    unsigned long lineno;
};

/*
 * Next content line into *l / *ll (pointing into it->p). Returns 1, 0 at the end, or -1
 * with "path:line: what" in err (line longer than AUTH_LINE_MAX, NUL octet).
 */
int authutil_next_line(struct authutil_lines *it, const char **l, size_t *ll, char *err,
    size_t errsz);

/* Fill p with n random octets from getrandom(flags). Returns 0 or -1 with errno. */
int authutil_random(void *p, size_t n, unsigned flags);

#endif
