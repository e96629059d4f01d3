/*
 * policy/passwd.c - the password file: loading, verifying a password, hashing a new one.
 *
 * Owns:  the password table (a sorted array, binary search), the accepted hash schemes,
 *        crypt_r() verification in constant-time comparison with a dummy run for unknown
 *        users, hashing for `postel passwd` (crypt_gensalt_rn() + getrandom()).
 * Never: performs I/O other than reading the file and getrandom(); logs hashes or passwords.
 * Limits: policy/auth.h (AUTH_USER_MAX, AUTH_HASH_PASS_MAX, AUTH_LINE_MAX, AUTH_FILE_MAX).
 */
#include "policy/auth.h"

#include <crypt.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/authutil.h"
#include "util/str.h"
#include "util/xmalloc.h"

_Static_assert(AUTH_HASH_PASS_MAX == CRYPT_MAX_PASSPHRASE_SIZE - 1,
    "AUTH_HASH_PASS_MAX follows libxcrypt");

/*
 * Used for unknown users when the table is empty (no user exists, so timing reveals
 * nothing then; this only keeps the code path the same). yescrypt of a random password.
 */
static const char dummy_hash[] =
    "$y$j9T$kaYOjIJKk6yojit7YCHdK0$XPo4reStqc8A5NzaZte0/ZjPdsDbB7XD5x1.HaNXng9";

/* Equality of two C strings whose time depends only on their lengths, not their content. */
static bool ct_streq(const char *a, const char *b)
{
    size_t an = strlen(a), bn = strlen(b);
    volatile unsigned char d = (unsigned char)(an != bn);

    for (size_t i = 0; i < bn; i++)
        d |= (unsigned char)((unsigned char)a[i < an ? i : 0] ^ (unsigned char)b[i]);
    return d == 0;
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
static int parse_user_line(const struct authutil_lines *it, const char *l, size_t ll,
    struct auth_user *u, char *err, size_t errsz)
{
    char e[AUTHUTIL_ESC_MAX];
    const char *colon = memchr(l, ':', ll);
    const char *problem;
    size_t ulen;

    if (colon == NULL) {
        str_err(err, errsz, "%s:%lu: expected \"user:hash\"", it->path, it->lineno);
        return -1;
    }
    ulen = (size_t)(colon - l);
    if (!authutil_user_ok(l, ulen)) {
        str_err(err, errsz, "%s:%lu: bad user name \"%s\"", it->path, it->lineno,
            str_escape(e, sizeof e, l, ulen));
        return -1;
    }
    u->hash = xstrndup(colon + 1, ll - ulen - 1);
    problem = hash_problem(u->hash, ll - ulen - 1);
    if (problem != NULL) {
        str_err(err, errsz, "%s:%lu: user \"%s\": %s", it->path, it->lineno,
            str_escape(e, sizeof e, l, ulen), problem);
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
    struct authutil_lines it = { .path = path };
    struct auth_user *u = NULL;
    struct auth_db *db;
    size_t n = 0, cap = 0, len, first = 0;
    const char *l;
    size_t ll;
    char *text;
    int r;

    text = authutil_read_file(path, &len, err, errsz);
    if (text == NULL)
        return NULL;
    it.p = text;
    it.n = len;
    while ((r = authutil_next_line(&it, &l, &ll, err, errsz)) == 1) {
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
        char e[AUTHUTIL_ESC_MAX];
        size_t orig = dup - 1;

        while (orig > 0 && strcmp(u[orig - 1].name, u[dup].name) == 0)
            orig--;
        str_err(err, errsz, "%s:%lu: duplicate user \"%s\" (first on line %lu)", path,
            u[dup].line, str_escape(e, sizeof e, u[dup].name, strlen(u[dup].name)), u[orig].line);
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
    if (authutil_random(rbytes, sizeof rbytes, 0) == -1)
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
            authutil_clear(out, osz);
            saved = ENOSPC;
        }
    }
    explicit_bzero(cd, sizeof *cd);
    free(cd);
    if (rc == -1)
        errno = saved;
    return rc;
}
