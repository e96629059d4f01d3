/*
 * policy/auth.c - server side of SMTP AUTH: SASL payloads, password file, throttling,
 * sender-login map.
 *
 * Owns:  strict base64, PLAIN/LOGIN payload checks, the password table (a sorted array,
 *        binary search), crypt_r() verification with a dummy run for unknown users, hashing
 *        for `postel passwd`, the failure throttle (three tables: addresses, users and
 *        (address, user) pairs, each a chained hash index + LRU list in one array of at most
 *        AUTH_THROTTLE_MAX entries), the sender-login map (sorted array).
 * Never: performs I/O other than reading the two files and getrandom(); sleeps; logs secrets.
 * Limits: auth.h (AUTH_USER_MAX, AUTH_PASS_MAX, AUTH_ZID_MAX, AUTH_LINE_MAX, AUTH_FILE_MAX,
 *        AUTH_THROTTLE_MAX, AUTH_ADDR_MAX).
 */
#include "policy/auth.h"

#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/str.h"
#include "util/xmalloc.h"

_Static_assert(AUTH_HASH_PASS_MAX == CRYPT_MAX_PASSPHRASE_SIZE - 1,
    "AUTH_HASH_PASS_MAX follows libxcrypt");

#define ESC_MAX 120             /* octets of escaped input shown in an error message */

/*
 * Used for unknown users when the table is empty (no user exists, so timing reveals
 * nothing then; this only keeps the code path the same). yescrypt of a random password.
 */
static const char dummy_hash[] =
    "$y$j9T$kaYOjIJKk6yojit7YCHdK0$XPo4reStqc8A5NzaZte0/ZjPdsDbB7XD5x1.HaNXng9";

__attribute__((format(printf, 3, 4)))
static void set_err(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errsz == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

static const char *esc(char *out, size_t osz, const char *s, size_t n)
{
    return str_escape(out, osz, s, n);
}

static inline char lc(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static inline bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* ASCII case-insensitive strcmp, ordering as if both were lower-cased. */
static int ascii_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)lc(*a), y = (unsigned char)lc(*b);
        if (x != y || x == '\0')
            return (int)x - (int)y;
    }
}

/*
 * Is s (n octets) well-formed UTF-8 (RFC 3629: shortest form, no surrogates, at most
 * U+10FFFF)? NUL is accepted here; callers reject it separately.
 */
static bool utf8_valid(const unsigned char *s, size_t n)
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

/* Equality of two C strings whose time depends only on their lengths, not their content. */
static bool ct_streq(const char *a, const char *b)
{
    size_t an = strlen(a), bn = strlen(b);
    volatile unsigned char d = (unsigned char)(an != bn);

    for (size_t i = 0; i < bn; i++)
        d |= (unsigned char)((unsigned char)a[i < an ? i : 0] ^ (unsigned char)b[i]);
    return d == 0;
}

/* ---- base64 ---- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_val(char ch)
{
    unsigned char c = (unsigned char)ch;

    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

ssize_t auth_b64_decode(const char *in, size_t n, unsigned char *out, size_t osz)
{
    size_t pad = 0, olen, o = 0;

    if (n == 1 && in[0] == '=')
        return 0;                               /* RFC 4954 4: empty response */
    if (n % 4 != 0)
        return -1;
    if (n == 0)
        return 0;
    if (in[n - 1] == '=')
        pad = in[n - 2] == '=' ? 2 : 1;
    olen = n / 4 * 3 - pad;
    if (olen > osz || olen > (size_t)SSIZE_MAX)
        return -1;
    for (size_t i = 0; i < n; i += 4) {
        bool last = i + 4 == n;
        size_t real = last ? 4 - pad : 4;       /* alphabet characters in this group */
        int v[4] = { 0, 0, 0, 0 };
        uint32_t w;

        for (size_t j = 0; j < real; j++) {
            v[j] = b64_val(in[i + j]);          /* '=' before the end fails here */
            if (v[j] < 0)
                return -1;
        }
        /* RFC 4648 3.5: the bits padding leaves over must be zero (canonical form). */
        if ((real == 2 && (v[1] & 0x0f) != 0) || (real == 3 && (v[2] & 0x03) != 0))
            return -1;
        w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (real >= 3)
            out[o++] = (unsigned char)(w >> 8);
        if (real == 4)
            out[o++] = (unsigned char)w;
    }
    return (ssize_t)o;
}

int auth_b64_encode(const void *in, size_t n, struct buf *out)
{
    const unsigned char *s = in;
    size_t elen, i;
    char *p;

    if (n == 0)
        return 0;
    if (n > SIZE_MAX - 2 || (n + 2) / 3 > SIZE_MAX / 4)
        return -1;
    elen = (n + 2) / 3 * 4;
    if (buf_reserve(out, elen) == -1)
        return -1;
    p = out->p + out->len;
    for (i = 0; i + 3 <= n; i += 3) {
        uint32_t w = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *p++ = b64_alphabet[w >> 18];
        *p++ = b64_alphabet[(w >> 12) & 63];
        *p++ = b64_alphabet[(w >> 6) & 63];
        *p++ = b64_alphabet[w & 63];
    }
    if (i < n) {
        uint32_t w = (uint32_t)s[i] << 16;
        if (i + 1 < n)
            w |= (uint32_t)s[i + 1] << 8;
        *p++ = b64_alphabet[w >> 18];
        *p++ = b64_alphabet[(w >> 12) & 63];
        *p++ = i + 1 < n ? b64_alphabet[(w >> 6) & 63] : '=';
        *p++ = '=';
    }
    out->len += elen;
    return 0;
}

/* ---- PLAIN and LOGIN ---- */

static void clear_str(char *s, size_t sz)
{
    if (s != NULL && sz > 0)
        explicit_bzero(s, sz);
}

enum auth_perr auth_plain_decode(const char *b64, size_t n, char *user, size_t usz,
    char *pass, size_t psz)
{
    unsigned char msg[AUTH_PLAIN_MAX];
    const unsigned char *z1, *z2, *cid, *pw;
    size_t zlen, clen, plen, m;
    ssize_t r;
    enum auth_perr res;

    clear_str(user, usz);
    clear_str(pass, psz);
    if (n > AUTH_PLAIN_B64_MAX)
        return AUTH_P_TOO_LONG;
    r = auth_b64_decode(b64, n, msg, sizeof msg);
    if (r < 0) {
        res = AUTH_P_BAD_B64;
        goto out;
    }
    m = (size_t)r;
    z1 = memchr(msg, '\0', m);
    z2 = z1 ? memchr(z1 + 1, '\0', m - (size_t)(z1 + 1 - msg)) : NULL;
    if (z2 == NULL || memchr(z2 + 1, '\0', m - (size_t)(z2 + 1 - msg)) != NULL) {
        res = AUTH_P_BAD_FORMAT;                /* not exactly two NULs */
        goto out;
    }
    cid = z1 + 1;
    pw = z2 + 1;
    zlen = (size_t)(z1 - msg);
    clen = (size_t)(z2 - cid);
    plen = m - (size_t)(pw - msg);
    if (clen == 0 || plen == 0) {
        res = AUTH_P_BAD_FORMAT;
        goto out;
    }
    if (zlen > AUTH_ZID_MAX || clen > AUTH_USER_MAX || plen > AUTH_PASS_MAX) {
        res = AUTH_P_TOO_LONG;
        goto out;
    }
    if (!utf8_valid(msg, zlen) || !utf8_valid(cid, clen) || !utf8_valid(pw, plen)) {
        res = AUTH_P_BAD_FORMAT;
        goto out;
    }
    if (zlen != 0 && (zlen != clen || memcmp(msg, cid, clen) != 0)) {
        res = AUTH_P_AUTHZ_MISMATCH;
        goto out;
    }
    if (clen >= usz || plen >= psz) {
        res = AUTH_P_TOO_LONG;
        goto out;
    }
    memcpy(user, cid, clen);
    user[clen] = '\0';
    memcpy(pass, pw, plen);
    pass[plen] = '\0';
    res = AUTH_P_OK;
out:
    explicit_bzero(msg, sizeof msg);
    return res;
}

enum auth_perr auth_login_decode(const char *b64, size_t n, size_t max, char *out, size_t osz)
{
    unsigned char field[AUTH_PASS_MAX + 3];     /* + 3: a full last group past max */
    enum auth_perr res;
    size_t m;
    ssize_t r;

    clear_str(out, osz);
    if (max > AUTH_PASS_MAX)
        max = AUTH_PASS_MAX;
    if (n > 4 * ((max + 2) / 3))
        return AUTH_P_TOO_LONG;
    r = auth_b64_decode(b64, n, field, sizeof field);
    if (r < 0) {
        res = AUTH_P_BAD_B64;
        goto done;
    }
    m = (size_t)r;
    if (m == 0 || memchr(field, '\0', m) != NULL) {
        res = AUTH_P_BAD_FORMAT;
    } else if (m > max) {
        res = AUTH_P_TOO_LONG;
    } else if (!utf8_valid(field, m)) {
        res = AUTH_P_BAD_FORMAT;
    } else if (m >= osz) {
        res = AUTH_P_TOO_LONG;
    } else {
        memcpy(out, field, m);
        out[m] = '\0';
        res = AUTH_P_OK;
    }
done:
    explicit_bzero(field, sizeof field);
    return res;
}

/* ---- reading the two files ---- */

/*
 * Read the regular file at path (at most AUTH_FILE_MAX octets). Returns a malloc'd buffer
 * (length *lenp, not terminated), or NULL with "path: reason" in err.
 */
static char *read_file(const char *path, size_t *lenp, char *err, size_t errsz)
{
    struct stat st;
    char *p = NULL;
    size_t len = 0, cap = 0;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd == -1) {
        set_err(err, errsz, "%s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) == -1) {
        set_err(err, errsz, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(err, errsz, "%s: not a regular file", path);
        goto fail;
    }
    if ((unsigned long long)st.st_size > AUTH_FILE_MAX) {
        set_err(err, errsz, "%s: larger than %lu octets", path, (unsigned long)AUTH_FILE_MAX);
        goto fail;
    }
    cap = (size_t)st.st_size + 1;               /* + 1: see EOF without a second read */
    p = xmalloc(cap);
    for (;;) {
        ssize_t r;

        if (len == cap) {
            if (cap > AUTH_FILE_MAX) {          /* grew while we read it */
                set_err(err, errsz, "%s: larger than %lu octets", path,
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
            set_err(err, errsz, "%s: %s", path, strerror(errno));
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

/* Walks the content lines of a file: blank and '#' lines skipped, blanks trimmed. */
struct line_iter {
    const char *path;
    const char *p;
    size_t n, pos;
    unsigned long lineno;
};

/*
 * Next content line into *l / *ll. Returns 1, 0 at the end, or -1 with "path:line: what"
 * in err (line too long, NUL octet).
 */
static int next_line(struct line_iter *it, const char **l, size_t *ll, char *err, size_t errsz)
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
            set_err(err, errsz, "%s:%lu: line longer than %d octets", it->path, it->lineno,
                AUTH_LINE_MAX);
            return -1;
        }
        if (memchr(s, '\0', len) != NULL) {
            set_err(err, errsz, "%s:%lu: NUL octet", it->path, it->lineno);
            return -1;
        }
        while (len > 0 && is_blank(*s)) {
            s++;
            len--;
        }
        while (len > 0 && is_blank(s[len - 1]))
            len--;
        if (len == 0 || *s == '#')
            continue;
        *l = s;
        *ll = len;
        return 1;
    }
    return 0;
}

/* A user name: 1..AUTH_USER_MAX octets of UTF-8 without ':', blanks or controls. */
static bool user_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > AUTH_USER_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == ':')
            return false;
    }
    return utf8_valid((const unsigned char *)s, n);
}

/* ---- the password file ---- */

struct auth_user {
    char *name;
    char *hash;
    unsigned long line;
};

struct auth_db {
    struct auth_user *u;        /* sorted by name (strcmp) */
    size_t n;
    const char *dummy;          /* for unknown users: u[first in file].hash or dummy_hash */
};

/* Accepted schemes and the length of the hash part after the last '$'. */
static const struct {
    const char *prefix;
    size_t tail;
} hash_schemes[] = {
    { "$y$", 43 },      /* yescrypt */
    { "$gy$", 43 },     /* gost-yescrypt */
    { "$7$", 43 },      /* scrypt */
    { "$2b$", 53 },     /* bcrypt: 22 salt + 31 hash characters */
    { "$6$", 86 },      /* SHA-512 crypt */
};

static bool crypt_b64_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '/';
}

/* Why the hash h (n octets, NUL-terminated) is refused, or NULL if it is acceptable. */
static const char *hash_problem(const char *h, size_t n)
{
    const char *last;
    size_t k;

    if (n == 0)
        return "empty hash";
    if (h[0] == '!' || h[0] == '*')
        return "locked or disabled entry (\"!\" or \"*\") not supported; remove the line";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c <= 0x20 || c >= 0x7f || c == ':')
            return "bad character in hash";
    }
    if (h[0] != '$')
        return "weak hash scheme (DES crypt) refused; rehash with `postel passwd`";
    if (strncmp(h, "$1$", 3) == 0 || strncmp(h, "$md5", 4) == 0)
        return "weak hash scheme (MD5 crypt) refused; rehash with `postel passwd`";
    for (k = 0; k < sizeof hash_schemes / sizeof hash_schemes[0]; k++) {
        if (strncmp(h, hash_schemes[k].prefix, strlen(hash_schemes[k].prefix)) == 0)
            break;
    }
    if (k == sizeof hash_schemes / sizeof hash_schemes[0])
        return "weak or unknown hash scheme refused (use $y$ or $6$; see `postel passwd`)";
    last = strrchr(h, '$');
    if ((size_t)(h + n - (last + 1)) != hash_schemes[k].tail)
        return "truncated or malformed hash";
    for (const char *p = last + 1; *p; p++) {
        if (!crypt_b64_char(*p))
            return "truncated or malformed hash";
    }
    switch (crypt_checksalt(h)) {
    case CRYPT_SALT_OK:
        return NULL;
    case CRYPT_SALT_INVALID:
        return "malformed hash";
    default:
        return "hash scheme not supported or disabled in this libcrypt";
    }
}

static int user_cmp(const void *a, const void *b)
{
    const struct auth_user *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

static void users_free(struct auth_user *u, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(u[i].name);
        explicit_bzero(u[i].hash, strlen(u[i].hash));
        free(u[i].hash);
    }
    free(u);
}

/* Parse one "user:hash" line into *u. Returns 0 or -1 with "path:line: what" in err. */
static int parse_user_line(const struct line_iter *it, const char *l, size_t ll,
    struct auth_user *u, char *err, size_t errsz)
{
    char e[ESC_MAX];
    const char *colon = memchr(l, ':', ll);
    const char *problem;
    size_t ulen;

    if (colon == NULL) {
        set_err(err, errsz, "%s:%lu: expected \"user:hash\"", it->path, it->lineno);
        return -1;
    }
    ulen = (size_t)(colon - l);
    if (!user_name_ok(l, ulen)) {
        set_err(err, errsz, "%s:%lu: bad user name \"%s\"", it->path, it->lineno,
            esc(e, sizeof e, l, ulen));
        return -1;
    }
    u->hash = xstrndup(colon + 1, ll - ulen - 1);
    problem = hash_problem(u->hash, ll - ulen - 1);
    if (problem != NULL) {
        set_err(err, errsz, "%s:%lu: user \"%s\": %s", it->path, it->lineno,
            esc(e, sizeof e, l, ulen), problem);
        explicit_bzero(u->hash, ll - ulen - 1);
        free(u->hash);
        u->hash = NULL;
        return -1;
    }
    u->name = xstrndup(l, ulen);
    u->line = it->lineno;
    return 0;
}

struct auth_db *auth_db_load(const char *path, char *err, size_t errsz)
{
    struct line_iter it = { .path = path };
    struct auth_user *u = NULL;
    struct auth_db *db;
    size_t n = 0, cap = 0, len, first = 0;
    const char *l;
    size_t ll;
    char *text;
    int r;

    text = read_file(path, &len, err, errsz);
    if (text == NULL)
        return NULL;
    it.p = text;
    it.n = len;
    while ((r = next_line(&it, &l, &ll, err, errsz)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            u = xreallocarray(u, cap, sizeof *u);
        }
        if (parse_user_line(&it, l, ll, &u[n], err, errsz) == -1) {
            r = -1;
            break;
        }
        n++;
    }
    explicit_bzero(text, len);
    free(text);
    if (r == -1) {
        users_free(u, n);
        return NULL;
    }

    if (n > 1)
        qsort(u, n, sizeof *u, user_cmp);      /* u is NULL when n == 0 */
    /* Report the duplicate that comes first in the file. */
    size_t dup = n;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(u[i - 1].name, u[i].name) == 0 && (dup == n || u[i].line < u[dup].line))
            dup = i;
    }
    if (dup != n) {
        char e[ESC_MAX];
        size_t orig = dup - 1;

        while (orig > 0 && strcmp(u[orig - 1].name, u[dup].name) == 0)
            orig--;
        set_err(err, errsz, "%s:%lu: duplicate user \"%s\" (first on line %lu)", path,
            u[dup].line, esc(e, sizeof e, u[dup].name, strlen(u[dup].name)), u[orig].line);
        users_free(u, n);
        return NULL;
    }
    for (size_t i = 1; i < n; i++) {
        if (u[i].line < u[first].line)
            first = i;
    }
    db = xcalloc(1, sizeof *db);
    db->u = u;
    db->n = n;
    db->dummy = n > 0 ? u[first].hash : dummy_hash;
    return db;
}

void auth_db_free(struct auth_db *db)
{
    if (db == NULL)
        return;
    users_free(db->u, db->n);
    free(db);
}

static const struct auth_user *db_find(const struct auth_db *db, const char *user)
{
    size_t lo = 0, hi = db->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(user, db->u[mid].name);
        if (c == 0)
            return &db->u[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

bool auth_db_verify(const struct auth_db *db, const char *user, const char *pass)
{
    const struct auth_user *u;
    struct crypt_data *cd;
    const char *out;
    bool match;

    if (db == NULL || user == NULL || pass == NULL)
        return false;
    u = db_find(db, user);
    /* crypt_data is ~32 KB: too big for a worker thread's stack. */
    cd = xcalloc(1, sizeof *cd);
    out = crypt_r(pass, u != NULL ? u->hash : db->dummy, cd);
    match = out != NULL && out[0] != '*' && ct_streq(out, u != NULL ? u->hash : db->dummy);
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    return match && u != NULL;
}

bool auth_db_has_user(const struct auth_db *db, const char *user)
{
    return db != NULL && user != NULL && db_find(db, user) != NULL;
}

size_t auth_db_count(const struct auth_db *db)
{
    return db != NULL ? db->n : 0;
}

/* Fill p with n random octets from getrandom(). Returns 0 or -1 with errno. */
static int fill_random(void *p, size_t n, unsigned flags)
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

int auth_hash_password(const char *pass, char *out, size_t osz)
{
    char rbytes[16];
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd;
    const char *h;
    size_t plen = strlen(pass);
    int rc = -1, saved = EINVAL;

    if (osz > 0)
        out[0] = '\0';
    if (plen == 0 || plen > AUTH_HASH_PASS_MAX) {
        errno = EINVAL;
        return -1;
    }
    if (fill_random(rbytes, sizeof rbytes, 0) == -1)
        return -1;
    if (crypt_gensalt_rn("$y$", 0, rbytes, (int)sizeof rbytes, setting, (int)sizeof setting)
            == NULL &&
        crypt_gensalt_rn("$6$", 0, rbytes, (int)sizeof rbytes, setting, (int)sizeof setting)
            == NULL) {
        explicit_bzero(rbytes, sizeof rbytes);
        errno = EINVAL;
        return -1;
    }
    explicit_bzero(rbytes, sizeof rbytes);
    cd = xcalloc(1, sizeof *cd);
    h = crypt_r(pass, setting, cd);
    if (h != NULL && h[0] != '*') {
        if (str_copy(out, osz, h) == 0) {
            rc = 0;
        } else {
            clear_str(out, osz);
            saved = ENOSPC;
        }
    }
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    if (rc == -1)
        errno = saved;
    return rc;
}

/* ---- failed-login throttling ---- */

/*
 * Three tables of the same shape: addresses (key addr, user NULL), users (key "" and user)
 * and (address, user) pairs. Address and user entries hold counts; a pair entry holds how
 * many of the failures in its address's and its user's current windows it added, each tagged
 * with that window's epoch, so a success takes back exactly those and a pair left over from
 * an earlier window takes back nothing.
 */
#define THR_NIL UINT32_MAX
#define THR_BUCKETS 16384       /* power of two, > AUTH_THROTTLE_MAX */

enum { THR_ADDR, THR_USER, THR_PAIR, THR_NTAB };

struct thr_ent {
    char addr[AUTH_ADDR_MAX];   /* "" in the user table */
    char *user;                 /* NULL in the address table */
    uint32_t hnext;             /* next in hash chain, or in the free list */
    uint32_t prev, next;        /* LRU list: head has the latest activity */
    unsigned failures;          /* address, user: in the current window */
    unsigned inflight;          /* address, user: checks in progress */
    bool locked;
    uint64_t epoch;             /* address, user: the current window (changes on a reset) */
    time_t first;               /* first failure of the current window */
    time_t last;                /* latest activity */
    time_t locked_until;
    uint64_t addr_epoch, user_epoch;    /* pair: the windows its counts belong to */
    unsigned addr_n, user_n;            /* pair: failures it added to them */
};

struct thr_tab {
    struct thr_ent *e;
    uint32_t nalloc, nused;     /* allocated entries; high-water mark of used ones */
    uint32_t freelist;
    uint32_t count;
    uint32_t head, tail;
    uint32_t *bucket;
};

struct auth_throttle {
    unsigned max_failures, window_s, lockout_s;
    struct thr_tab tab[THR_NTAB];
    uint64_t seed;
    uint64_t epochs;            /* last epoch handed out */
};

struct auth_throttle *auth_throttle_new(unsigned max_failures, unsigned window_s,
    unsigned lockout_s)
{
    struct auth_throttle *t = xcalloc(1, sizeof *t);

    t->max_failures = max_failures;
    t->window_s = window_s;
    t->lockout_s = lockout_s;
    for (int k = 0; k < THR_NTAB; k++) {
        struct thr_tab *b = &t->tab[k];

        b->freelist = b->head = b->tail = THR_NIL;
        b->bucket = xmalloc(THR_BUCKETS * sizeof *b->bucket);
        for (size_t i = 0; i < THR_BUCKETS; i++)
            b->bucket[i] = THR_NIL;
    }
    /* A keyed hash keeps clients from choosing colliding keys; the seed changes nothing else. */
    if (fill_random(&t->seed, sizeof t->seed, GRND_NONBLOCK) == -1)
        t->seed = (uint64_t)(uintptr_t)t ^ (uint64_t)getpid();
    return t;
}

void auth_throttle_free(struct auth_throttle *t)
{
    if (t == NULL)
        return;
    for (int k = 0; k < THR_NTAB; k++) {
        struct thr_tab *b = &t->tab[k];

        for (uint32_t i = 0; i < b->nused; i++)
            free(b->e[i].user);
        free(b->e);
        free(b->bucket);
    }
    free(t);
}

size_t auth_throttle_count(const struct auth_throttle *t)
{
    return t != NULL ? t->tab[THR_ADDR].count : 0;
}

/* The limit of failures plus checks in progress for an entry of table k; 0: none. */
static unsigned thr_limit(const struct auth_throttle *t, int k)
{
    if (k == THR_USER)
        return t->max_failures > UINT_MAX / AUTH_USER_FACTOR ? UINT_MAX :
            t->max_failures * AUTH_USER_FACTOR;
    return t->max_failures;
}

static uint32_t thr_hash(const struct auth_throttle *t, const char *addr, const char *user)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ t->seed;

    for (const unsigned char *p = (const unsigned char *)addr; *p; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
    }
    if (user != NULL) {
        h ^= 0x100;                             /* not an octet: ends the address */
        h *= 0x100000001b3ULL;
        for (const unsigned char *p = (const unsigned char *)user; *p; p++) {
            h ^= *p;
            h *= 0x100000001b3ULL;
        }
    }
    h ^= h >> 29;
    return (uint32_t)h & (THR_BUCKETS - 1);
}

static bool thr_same(const struct thr_ent *e, const char *addr, const char *user)
{
    if (strcmp(e->addr, addr) != 0)
        return false;
    if (user == NULL || e->user == NULL)
        return user == NULL && e->user == NULL;
    return strcmp(e->user, user) == 0;
}

static uint32_t thr_find(const struct auth_throttle *t, int k, const char *addr,
    const char *user)
{
    const struct thr_tab *b = &t->tab[k];

    for (uint32_t i = b->bucket[thr_hash(t, addr, user)]; i != THR_NIL; i = b->e[i].hnext) {
        if (thr_same(&b->e[i], addr, user))
            return i;
    }
    return THR_NIL;
}

static void lru_unlink(struct thr_tab *b, uint32_t i)
{
    struct thr_ent *e = &b->e[i];

    if (e->prev != THR_NIL)
        b->e[e->prev].next = e->next;
    else
        b->head = e->next;
    if (e->next != THR_NIL)
        b->e[e->next].prev = e->prev;
    else
        b->tail = e->prev;
    e->prev = e->next = THR_NIL;
}

static void lru_push_head(struct thr_tab *b, uint32_t i)
{
    struct thr_ent *e = &b->e[i];

    e->prev = THR_NIL;
    e->next = b->head;
    if (b->head != THR_NIL)
        b->e[b->head].prev = i;
    b->head = i;
    if (b->tail == THR_NIL)
        b->tail = i;
}

/* Mark entry i of table k active at now: the newest in its LRU list. */
static void thr_touch(struct auth_throttle *t, int k, uint32_t i, time_t now)
{
    struct thr_tab *b = &t->tab[k];

    b->e[i].last = now;
    lru_unlink(b, i);
    lru_push_head(b, i);
}

static void thr_remove(struct auth_throttle *t, int k, uint32_t i)
{
    struct thr_tab *b = &t->tab[k];
    struct thr_ent *e = &b->e[i];
    uint32_t *pp = &b->bucket[thr_hash(t, e->addr, e->user)];

    while (*pp != i)
        pp = &b->e[*pp].hnext;
    *pp = e->hnext;
    lru_unlink(b, i);
    e->addr[0] = '\0';
    free(e->user);
    e->user = NULL;
    e->hnext = b->freelist;
    b->freelist = i;
    b->count--;
}

/* Seconds from a to b, 0 if the clock went backwards. */
static unsigned long long elapsed(time_t a, time_t b)
{
    return b > a ? (unsigned long long)(b - a) : 0;
}

/* An address or user entry: forget a lockout or a window that has run out at now. */
static void thr_refresh(struct auth_throttle *t, struct thr_ent *e, time_t now)
{
    if (e->locked) {
        if (now < e->locked_until)
            return;
        e->locked = false;
    } else if (e->failures == 0 || elapsed(e->first, now) < t->window_s) {
        return;
    }
    e->failures = 0;
    e->epoch = ++t->epochs;                     /* pairs of the old window count no more */
}

/* Does entry i of table k remember nothing that matters at now? (Refreshes it first.) */
static bool thr_idle(struct auth_throttle *t, int k, uint32_t i, time_t now)
{
    struct thr_ent *e = &t->tab[k].e[i];

    if (k == THR_PAIR) {
        /* Its counts belong to windows that began by e->last; such a window, and the
         * lockout it may have led to, are over by then. */
        return elapsed(e->last, now) >= (unsigned long long)t->window_s + t->lockout_s;
    }
    thr_refresh(t, e, now);
    return e->inflight == 0 && e->failures == 0 && !e->locked;
}

/* Forget idle entries at the cold end of each LRU list. */
static void thr_sweep(struct auth_throttle *t, time_t now)
{
    for (int k = 0; k < THR_NTAB; k++) {
        struct thr_tab *b = &t->tab[k];

        while (b->tail != THR_NIL && thr_idle(t, k, b->tail, now))
            thr_remove(t, k, b->tail);
    }
}

/* The entry for the key in table k, refreshed, or THR_NIL (an idle one is dropped). */
static uint32_t thr_lookup(struct auth_throttle *t, int k, const char *addr, const char *user,
    time_t now)
{
    uint32_t i = thr_find(t, k, addr, user);

    if (i != THR_NIL && thr_idle(t, k, i, now)) {
        thr_remove(t, k, i);
        return THR_NIL;
    }
    return i;
}

/*
 * A new entry for the key in table k, or THR_NIL if the table is full of entries with
 * checks in progress. At capacity the entry with the oldest activity and no check in
 * progress is forgotten to make room.
 */
static uint32_t thr_add(struct auth_throttle *t, int k, const char *addr, const char *user,
    time_t now)
{
    struct thr_tab *b = &t->tab[k];
    struct thr_ent *e;
    uint32_t i, h;

    if (b->count >= AUTH_THROTTLE_MAX) {
        /* Entries with checks in progress are at most the checks running: a short walk. */
        for (i = b->tail; i != THR_NIL && b->e[i].inflight > 0; i = b->e[i].prev)
            ;
        if (i == THR_NIL)
            return THR_NIL;
        thr_remove(t, k, i);
    }
    if (b->freelist != THR_NIL) {
        i = b->freelist;
        b->freelist = b->e[i].hnext;
    } else {
        if (b->nused == b->nalloc) {
            uint32_t ncap = b->nalloc ? b->nalloc * 2 : 64;
            if (ncap > AUTH_THROTTLE_MAX)
                ncap = AUTH_THROTTLE_MAX;
            b->e = xreallocarray(b->e, ncap, sizeof *b->e);
            b->nalloc = ncap;
        }
        i = b->nused++;
    }
    b->count++;
    e = &b->e[i];
    memset(e, 0, sizeof *e);
    (void)str_copy(e->addr, sizeof e->addr, addr);
    e->user = user != NULL ? xstrdup(user) : NULL;
    e->epoch = ++t->epochs;
    e->first = e->last = now;
    h = thr_hash(t, e->addr, e->user);
    e->hnext = b->bucket[h];
    b->bucket[h] = i;
    e->prev = e->next = THR_NIL;
    lru_push_head(b, i);
    return i;
}

/* The keys as stored: truncated address, user name cut at AUTH_USER_MAX octets. */
static void thr_keys(const char *addr, const char *user, char *ka, size_t kasz, char *ku,
    size_t kusz)
{
    (void)str_copy(ka, kasz, addr != NULL ? addr : "");    /* truncated: a coarser key */
    (void)str_copy(ku, kusz, user != NULL ? user : "");
}

/* Entry i of table k (or THR_NIL) has reached its limit, counting checks in progress. */
static bool thr_full(const struct auth_throttle *t, int k, uint32_t i)
{
    const struct thr_ent *e;
    unsigned limit = thr_limit(t, k);

    if (i == THR_NIL || limit == 0)
        return false;
    e = &t->tab[k].e[i];
    return e->failures >= limit || e->inflight >= limit - e->failures;
}

static enum auth_gate thr_gate(struct auth_throttle *t, const char *ka, const char *ku,
    time_t now, unsigned *delay_ms, uint32_t *ai, uint32_t *ui)
{
    enum auth_gate g;
    unsigned f;

    *ai = thr_lookup(t, THR_ADDR, ka, NULL, now);
    *ui = thr_lookup(t, THR_USER, "", ku, now);
    if ((*ai != THR_NIL && t->tab[THR_ADDR].e[*ai].locked) ||
        (*ui != THR_NIL && t->tab[THR_USER].e[*ui].locked))
        return AUTH_GATE_LOCKED;
    f = *ai != THR_NIL ? t->tab[THR_ADDR].e[*ai].failures : 0;
    if (thr_full(t, THR_ADDR, *ai) || thr_full(t, THR_USER, *ui))
        g = AUTH_GATE_BUSY;
    else
        g = f > 0 ? AUTH_GATE_DELAY : AUTH_GATE_OPEN;
    if (f > 4)
        f = 4;
    if (delay_ms != NULL && f > 0)
        *delay_ms = 1000u << (f - 1);           /* 1 s, 2 s, 4 s, 8 s */
    return g;
}

enum auth_gate auth_throttle_check(struct auth_throttle *t, const char *addr, const char *user,
    time_t now, unsigned *delay_ms)
{
    char ka[AUTH_ADDR_MAX], ku[AUTH_USER_MAX + 1];
    uint32_t ai, ui;

    if (delay_ms != NULL)
        *delay_ms = 0;
    if (t->window_s == 0)
        return AUTH_GATE_OPEN;
    thr_keys(addr, user, ka, sizeof ka, ku, sizeof ku);
    return thr_gate(t, ka, ku, now, delay_ms, &ai, &ui);
}

enum auth_gate auth_throttle_begin(struct auth_throttle *t, const char *addr, const char *user,
    time_t now)
{
    char ka[AUTH_ADDR_MAX], ku[AUTH_USER_MAX + 1];
    enum auth_gate g;
    uint32_t ai, ui;

    if (t->window_s == 0)
        return AUTH_GATE_OPEN;
    thr_keys(addr, user, ka, sizeof ka, ku, sizeof ku);
    thr_sweep(t, now);
    g = thr_gate(t, ka, ku, now, NULL, &ai, &ui);
    if (g == AUTH_GATE_BUSY || g == AUTH_GATE_LOCKED)
        return g;
    if (ai == THR_NIL && (ai = thr_add(t, THR_ADDR, ka, NULL, now)) == THR_NIL)
        return AUTH_GATE_BUSY;
    if (ui == THR_NIL && (ui = thr_add(t, THR_USER, "", ku, now)) == THR_NIL) {
        if (thr_idle(t, THR_ADDR, ai, now))
            thr_remove(t, THR_ADDR, ai);
        return AUTH_GATE_BUSY;
    }
    t->tab[THR_ADDR].e[ai].inflight++;
    t->tab[THR_USER].e[ui].inflight++;
    thr_touch(t, THR_ADDR, ai, now);
    thr_touch(t, THR_USER, ui, now);
    return g;
}

/* Count a failure in address or user entry i of table k. Returns whether it was counted. */
static bool thr_count_failure(struct auth_throttle *t, int k, uint32_t i, time_t now)
{
    struct thr_ent *e = &t->tab[k].e[i];
    unsigned limit = thr_limit(t, k);

    thr_refresh(t, e, now);
    if (e->locked)
        return false;                           /* refused attempts do not extend it */
    if (e->failures == 0)
        e->first = now;
    if (e->failures < UINT_MAX)
        e->failures++;
    if (limit != 0 && e->failures >= limit) {
        e->locked = true;
        e->locked_until = now + (time_t)t->lockout_s;
    }
    thr_touch(t, k, i, now);
    return true;
}

/* A pair's share n (of the window epoch) no longer counts in address or user entry i. */
static void thr_take_back(struct auth_throttle *t, int k, uint32_t i, uint64_t epoch,
    unsigned n)
{
    struct thr_ent *e;

    if (i == THR_NIL)
        return;
    e = &t->tab[k].e[i];
    if (e->epoch != epoch || e->locked)
        return;
    e->failures = n < e->failures ? e->failures - n : 0;
}

/* Record a failure of (ka, ku) in the address and user entries ai, ui (THR_NIL: add one). */
static void thr_record_failure(struct auth_throttle *t, const char *ka, const char *ku,
    uint32_t ai, uint32_t ui, time_t now)
{
    bool in_a = false, in_u = false;
    struct thr_ent *p;
    uint32_t pi;

    if (ai == THR_NIL)
        ai = thr_add(t, THR_ADDR, ka, NULL, now);
    if (ui == THR_NIL)
        ui = thr_add(t, THR_USER, "", ku, now);
    if (ai != THR_NIL)
        in_a = thr_count_failure(t, THR_ADDR, ai, now);
    if (ui != THR_NIL)
        in_u = thr_count_failure(t, THR_USER, ui, now);
    if (!in_a && !in_u)
        return;
    pi = thr_find(t, THR_PAIR, ka, ku);
    if (pi == THR_NIL && (pi = thr_add(t, THR_PAIR, ka, ku, now)) == THR_NIL)
        return;                                 /* a success then takes back nothing */
    p = &t->tab[THR_PAIR].e[pi];
    if (in_a) {
        uint64_t ep = t->tab[THR_ADDR].e[ai].epoch;
        if (p->addr_epoch != ep) {
            p->addr_epoch = ep;
            p->addr_n = 0;
        }
        if (p->addr_n < UINT_MAX)
            p->addr_n++;
    }
    if (in_u) {
        uint64_t ep = t->tab[THR_USER].e[ui].epoch;
        if (p->user_epoch != ep) {
            p->user_epoch = ep;
            p->user_n = 0;
        }
        if (p->user_n < UINT_MAX)
            p->user_n++;
    }
    thr_touch(t, THR_PAIR, pi, now);
}

void auth_throttle_end(struct auth_throttle *t, const char *addr, const char *user,
    enum auth_result r, time_t now)
{
    char ka[AUTH_ADDR_MAX], ku[AUTH_USER_MAX + 1];
    uint32_t ai, ui, pi;

    if (t->window_s == 0)
        return;
    thr_keys(addr, user, ka, sizeof ka, ku, sizeof ku);
    ai = thr_find(t, THR_ADDR, ka, NULL);
    ui = thr_find(t, THR_USER, "", ku);
    if (ai != THR_NIL && t->tab[THR_ADDR].e[ai].inflight > 0)
        t->tab[THR_ADDR].e[ai].inflight--;
    if (ui != THR_NIL && t->tab[THR_USER].e[ui].inflight > 0)
        t->tab[THR_USER].e[ui].inflight--;
    if (ai != THR_NIL)
        thr_refresh(t, &t->tab[THR_ADDR].e[ai], now);
    if (ui != THR_NIL)
        thr_refresh(t, &t->tab[THR_USER].e[ui], now);
    if (r == AUTH_RES_FAIL) {
        thr_record_failure(t, ka, ku, ai, ui, now);
        thr_sweep(t, now);
        return;
    }
    if (r == AUTH_RES_OK && (pi = thr_find(t, THR_PAIR, ka, ku)) != THR_NIL) {
        const struct thr_ent *p = &t->tab[THR_PAIR].e[pi];

        thr_take_back(t, THR_ADDR, ai, p->addr_epoch, p->addr_n);
        thr_take_back(t, THR_USER, ui, p->user_epoch, p->user_n);
        thr_remove(t, THR_PAIR, pi);
    }
    if (ai != THR_NIL && thr_idle(t, THR_ADDR, ai, now))
        thr_remove(t, THR_ADDR, ai);
    if (ui != THR_NIL && thr_idle(t, THR_USER, ui, now))
        thr_remove(t, THR_USER, ui);
}

/* ---- the sender-login map ---- */

struct snd_ent {
    char *addr;                 /* lower-cased; "@domain" for a whole domain */
    char **users;
    size_t nusers;
    unsigned long line;
};

struct auth_senders {
    struct snd_ent *e;          /* sorted by addr */
    size_t n;
};

static void snd_ents_free(struct snd_ent *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < e[i].nusers; k++)
            free(e[i].users[k]);
        free(e[i].users);
        free(e[i].addr);
    }
    free(e);
}

/* address is local@domain or @domain: exactly one '@', a domain, no blanks, controls, <>. */
static bool map_addr_ok(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);

    if (at == NULL || at + 1 == s + n || memchr(at + 1, '@', n - (size_t)(at + 1 - s)))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '<' || c == '>')
            return false;
    }
    return utf8_valid((const unsigned char *)s, n);
}

/*
 * Parse "address user[,user...]" into *e (initialised first, so the caller can always free
 * it). Returns 0 or -1 with "path:line: what" in err.
 */
static int parse_sender_line(const struct line_iter *it, const char *l, size_t ll,
    struct snd_ent *e, char *err, size_t errsz)
{
    char x[ESC_MAX];
    size_t alen = 0, pos;

    e->addr = NULL;
    e->users = NULL;
    e->nusers = 0;
    e->line = it->lineno;
    while (alen < ll && !is_blank(l[alen]))
        alen++;
    if (!map_addr_ok(l, alen)) {
        set_err(err, errsz, "%s:%lu: bad address \"%s\"", it->path, it->lineno,
            esc(x, sizeof x, l, alen));
        return -1;
    }
    if (alen == ll) {
        set_err(err, errsz, "%s:%lu: no users for \"%s\"", it->path, it->lineno,
            esc(x, sizeof x, l, alen));
        return -1;
    }
    e->addr = xstrndup(l, alen);
    str_lower(e->addr);
    /* pos is at the blank after the address, then at each ',' (ll after the last user). */
    pos = alen;
    do {
        const char *u;
        size_t ulen = 0;

        pos++;
        while (pos < ll && is_blank(l[pos]))
            pos++;
        u = l + pos;
        while (pos + ulen < ll && l[pos + ulen] != ',')
            ulen++;
        pos += ulen;
        while (ulen > 0 && is_blank(u[ulen - 1]))
            ulen--;
        if (!user_name_ok(u, ulen)) {
            set_err(err, errsz, "%s:%lu: bad user name \"%s\"", it->path, it->lineno,
                esc(x, sizeof x, u, ulen));
            return -1;
        }
        e->users = xreallocarray(e->users, e->nusers + 1, sizeof *e->users);
        e->users[e->nusers++] = xstrndup(u, ulen);
    } while (pos < ll);
    return 0;
}

static int snd_cmp(const void *a, const void *b)
{
    const struct snd_ent *x = a, *y = b;
    int c = strcmp(x->addr, y->addr);

    if (c != 0)
        return c;
    return x->line < y->line ? -1 : x->line > y->line;
}

struct auth_senders *auth_senders_load(const char *path, char *err, size_t errsz)
{
    struct line_iter it = { .path = path };
    struct snd_ent *e = NULL;
    struct auth_senders *s;
    size_t n = 0, cap = 0, len, dup;
    const char *l;
    size_t ll;
    char *text;
    int r;

    text = read_file(path, &len, err, errsz);
    if (text == NULL)
        return NULL;
    it.p = text;
    it.n = len;
    while ((r = next_line(&it, &l, &ll, err, errsz)) == 1) {
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            e = xreallocarray(e, cap, sizeof *e);
        }
        if (parse_sender_line(&it, l, ll, &e[n], err, errsz) == -1) {
            n++;                                /* free the partial entry too */
            r = -1;
            break;
        }
        n++;
    }
    free(text);
    if (r == -1) {
        snd_ents_free(e, n);
        return NULL;
    }
    if (n > 1)
        qsort(e, n, sizeof *e, snd_cmp);       /* e is NULL when n == 0 */
    dup = n;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(e[i - 1].addr, e[i].addr) == 0 && (dup == n || e[i].line < e[dup].line))
            dup = i;
    }
    if (dup != n) {
        char x[ESC_MAX];
        size_t orig = dup - 1;

        while (orig > 0 && strcmp(e[orig - 1].addr, e[dup].addr) == 0)
            orig--;
        set_err(err, errsz, "%s:%lu: duplicate address \"%s\" (first on line %lu)", path,
            e[dup].line, esc(x, sizeof x, e[dup].addr, strlen(e[dup].addr)), e[orig].line);
        snd_ents_free(e, n);
        return NULL;
    }
    s = xcalloc(1, sizeof *s);
    s->e = e;
    s->n = n;
    return s;
}

void auth_senders_free(struct auth_senders *s)
{
    if (s == NULL)
        return;
    snd_ents_free(s->e, s->n);
    free(s);
}

/* The entry for addr (any case), or NULL. */
static const struct snd_ent *snd_find(const struct auth_senders *s, const char *addr)
{
    size_t lo = 0, hi;

    if (s == NULL)
        return NULL;
    hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = ascii_casecmp(addr, s->e[mid].addr);
        if (c == 0)
            return &s->e[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

static bool snd_lists(const struct snd_ent *e, const char *user)
{
    for (size_t i = 0; i < e->nusers; i++) {
        if (strcmp(e->users[i], user) == 0)
            return true;
    }
    return false;
}

bool auth_sender_ok(const struct auth_senders *s, const char *user, const char *sender,
    bool (*is_local_domain)(const char *domain, void *ctx), void *ctx)
{
    const struct snd_ent *e;
    const char *at;
    size_t slen;

    if (user == NULL || sender == NULL || user[0] == '\0')
        return false;
    at = strrchr(sender, '@');
    slen = strlen(sender);
    if (at == NULL || at == sender || at[1] == '\0')
        return false;                           /* also the null sender "" */
    e = snd_find(s, sender);
    if (e != NULL)
        return snd_lists(e, user);
    e = snd_find(s, at);
    if (e != NULL && snd_lists(e, user))
        return true;
    if (is_local_domain == NULL || !is_local_domain(at + 1, ctx))
        return false;
    if (strchr(user, '@') != NULL)
        return str_ieq(sender, slen, user);
    return str_ieq(sender, (size_t)(at - sender), user);
}
