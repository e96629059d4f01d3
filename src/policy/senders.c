/*
 * policy/senders.c - the submission sender-login map: who may use which MAIL FROM address.
 *
 * Owns:  the map (a sorted array of addresses and "@domain" entries, each with its users,
 *        looked up ASCII case-insensitively), the rule of auth_sender_ok().
 * Never: authenticates anyone (passwd.c) or decides which domains are local (the caller's
 *        is_local_domain); performs I/O other than reading the file.
 * Limits: policy/auth.h (AUTH_LINE_MAX, AUTH_FILE_MAX, AUTH_USER_MAX).
 */
#include "policy/auth.h"

#include <stdlib.h>
#include <string.h>

#include "policy/authutil.h"
#include "util/str.h"
#include "util/xmalloc.h"

static inline char lc(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
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
    return authutil_utf8_valid((const unsigned char *)s, n);
}

/*
 * Parse "address user[,user...]" into *e (initialised first, so the caller can always free
 * it). Returns 0 or -1 with "path:line: what" in err.
 */
static int parse_sender_line(const struct authutil_lines *it, const char *l, size_t ll,
    struct snd_ent *e, char *err, size_t errsz)
{
    char x[AUTHUTIL_ESC_MAX];
    size_t alen = 0, pos;

    e->addr = NULL;
    e->users = NULL;
    e->nusers = 0;
    e->line = it->lineno;
    while (alen < ll && !authutil_is_blank(l[alen]))
        alen++;
    if (!map_addr_ok(l, alen)) {
        str_err(err, errsz, "%s:%lu: bad address \"%s\"", it->path, it->lineno,
            str_escape(x, sizeof x, l, alen));
        return -1;
    }
    if (alen == ll) {
        str_err(err, errsz, "%s:%lu: no users for \"%s\"", it->path, it->lineno,
            str_escape(x, sizeof x, l, alen));
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
        while (pos < ll && authutil_is_blank(l[pos]))
            pos++;
        u = l + pos;
        while (pos + ulen < ll && l[pos + ulen] != ',')
            ulen++;
        pos += ulen;
        while (ulen > 0 && authutil_is_blank(u[ulen - 1]))
            ulen--;
        if (!authutil_user_ok(u, ulen)) {
            str_err(err, errsz, "%s:%lu: bad user name \"%s\"", it->path, it->lineno,
                str_escape(x, sizeof x, u, ulen));
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
    struct authutil_lines it = { .path = path };
    struct snd_ent *e = NULL;
    struct auth_senders *s;
    size_t n = 0, cap = 0, len, dup;
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
        char x[AUTHUTIL_ESC_MAX];
        size_t orig = dup - 1;

        while (orig > 0 && strcmp(e[orig - 1].addr, e[dup].addr) == 0)
            orig--;
        str_err(err, errsz, "%s:%lu: duplicate address \"%s\" (first on line %lu)", path,
            e[dup].line, str_escape(x, sizeof x, e[dup].addr, strlen(e[dup].addr)), e[orig].line);
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
