/*
 * policy/aliases_expand.c - expansion of a local part into final recipients.
 *
 * Owns:  the walk through aliases and :include: files (depth limits, loop and duplicate
 *        suppression, the owner and permission checks of :include: files), the result.
 * Never: delivers, consults the user database, runs programs, writes files.
 * Limits: aliases.h (ALIASES_DEPTH_MAX, ALIASES_INCLUDE_MAX).
 */
#include "policy/aliases.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/aliases_int.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

/*
 * A set of strings borrowed from a result (the strings never move; the arrays holding the
 * pointers may). remote: keys are addresses, domain compared case-insensitively.
 */
struct strset {
    const char **k;
    size_t cap, n;
    bool remote;
};

static size_t addr_at(const char *s)
{
    const char *at = strrchr(s, '@');
    return at ? (size_t)(at - s) : strlen(s);
}

static uint64_t strset_hash(const struct strset *set, const char *s)
{
    uint64_t h = 14695981039346656037ULL;
    size_t at = set->remote ? addr_at(s) : SIZE_MAX;

    for (size_t i = 0; s[i] != '\0'; i++) {
        h ^= (unsigned char)(i > at ? al_lc(s[i]) : s[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

static bool strset_eq(const struct strset *set, const char *a, const char *b)
{
    size_t at;

    if (!set->remote)
        return strcmp(a, b) == 0;
    at = addr_at(a);
    if (at != addr_at(b) || memcmp(a, b, at) != 0)
        return false;
    return str_ieq(a + at, strlen(a + at), b + at);
}

/* Add s unless an equal key is present. Returns true if added. */
static bool strset_add(struct strset *set, const char *s)
{
    size_t mask, i;

    if (set->cap / 2 < set->n + 1) {
        size_t ncap = set->cap ? set->cap * 2 : 64;
        const char **nk = xcalloc(ncap, sizeof *nk);
        for (size_t j = 0; j < set->cap; j++) {
            if (set->k[j] == NULL)
                continue;
            i = (size_t)strset_hash(set, set->k[j]) & (ncap - 1);
            while (nk[i] != NULL)
                i = (i + 1) & (ncap - 1);
            nk[i] = set->k[j];
        }
        free(set->k);
        set->k = nk;
        set->cap = ncap;
    }
    mask = set->cap - 1;
    for (i = (size_t)strset_hash(set, s) & mask; set->k[i] != NULL; i = (i + 1) & mask) {
        if (strset_eq(set, set->k[i], s))
            return false;
    }
    set->k[i] = s;
    set->n++;
    return true;
}

/* Append to a result array; capacity is the power of two above the count. */
static void res_push(char ***arr, size_t *n, char *s)
{
    if (*n == 0 || (*n & (*n - 1)) == 0)
        *arr = xreallocarray(*arr, *n ? *n * 2 : 1, sizeof **arr);
    (*arr)[(*n)++] = s;
}

enum { ST_NEW = 0, ST_ON_PATH, ST_DONE };

/* One aliases_expand() call. */
struct xp {
    const struct aliases *a;
    bool (*is_local)(const char *domain, void *ctx);
    void *ctx;
    struct alias_result *res;
    struct strset seen_local, seen_remote;
    unsigned char *state;       /* per entry: ST_* */
    struct strvec incs;         /* :include: files read (resolved paths) */
    int depth, idepth;
    size_t leaves;              /* recipients produced, duplicates included */
    char *err;
    size_t errsz;
};

static int xp_target(struct xp *x, const char *t, size_t tl, const char *dir, uid_t owner);
static int xp_alias(struct xp *x, size_t idx);

static void xp_add_local(struct xp *x, char *name)
{
    x->leaves++;
    if (strset_add(&x->seen_local, name))
        res_push(&x->res->local, &x->res->nlocal, name);
    else
        free(name);
}

static void xp_add_remote(struct xp *x, char *addr)
{
    x->leaves++;
    if (strset_add(&x->seen_remote, addr))
        res_push(&x->res->remote, &x->res->nremote, addr);
    else
        free(addr);
}

/* A local name; noexpand: "\name", deliver to the user without alias lookup. */
static int xp_local(struct xp *x, const char *name, size_t n, bool noexpand)
{
    char *s = xstrndup(name, n);
    size_t idx;

    str_lower(s);
    if (!noexpand && (idx = al_table_find(x->a, s, n)) != AL_NO_ENTRY) {
        if (x->state[idx] == ST_DONE) {
            free(s);            /* a diamond: its recipients are in the result already */
            return 0;
        }
        if (x->state[idx] == ST_NEW) {
            free(s);
            return xp_alias(x, idx);
        }
        /* ST_ON_PATH: a loop; deliver to the user of that name (aliases.h). */
    }
    xp_add_local(x, s);
    return 0;
}

static int xp_alias(struct xp *x, size_t idx)
{
    const struct alias_entry *e = &x->a->ent[idx];

    if (x->depth >= ALIASES_DEPTH_MAX) {
        str_err(x->err, x->errsz, "alias expansion too deep");
        return -1;
    }
    x->state[idx] = ST_ON_PATH;
    x->depth++;
    for (char **m = e->members; *m != NULL; m++) {
        int rc = xp_target(x, *m, strlen(*m), e->src->dir, e->src->owner);
        if (rc != 0)
            return rc;
    }
    x->depth--;
    x->state[idx] = ST_DONE;
    return 0;
}

/*
 * Refuse the :include: file path for reason: a permanent error for the recipient (the
 * administrator must fix the file) and a warning in the log. Never quotes the contents.
 */
static int refuse_include(struct xp *x, const char *path, const char *reason)
{
    log_warnx(":include: file %s refused: %s", path, reason);
    str_err(x->err, x->errsz, "mail system configuration error: :include: file %s refused: %s",
        path, reason);
    return -1;
}

/*
 * Is the :include: file behind fd (st: its fstat()) safe to read for a file owned by owner?
 * Returns NULL if so, else the reason (static text, or written into buf).
 */
static const char *include_unsafe(const struct stat *st, uid_t owner, char *buf, size_t bsz)
{
    if (st->st_uid != 0 && st->st_uid != owner) {
        (void)snprintf(buf, bsz, "owned by uid %u, not by root or by uid %u (the owner of "
            "the file that names it)", (unsigned)st->st_uid, (unsigned)owner);
        return buf;
    }
    if (st->st_mode & (S_IWGRP | S_IWOTH))
        return "writable by group or others";
    /* A user's list must not read root's files for them: a root-owned file named by a
     * file of another owner must be readable by everyone. */
    if (st->st_uid != owner && !(st->st_mode & S_IROTH)) {
        (void)snprintf(buf, bsz, "not readable by uid %u (the owner of the file that "
            "names it)", (unsigned)owner);
        return buf;
    }
    return NULL;
}

static int xp_include(struct xp *x, const char *path, size_t plen, const char *dir,
    uid_t owner)
{
    struct strvec tv = { 0 };
    struct stat st;
    const char *why = NULL;
    char *full, *data = NULL, *incdir, reason[160];
    size_t len = 0;
    int rc, fd;

    if (x->idepth >= ALIASES_INCLUDE_MAX) {
        char e[AL_ESC_MAX];
        str_err(x->err, x->errsz, ":include: nesting too deep (limit %d) at %s",
            ALIASES_INCLUDE_MAX, al_esc(e, sizeof e, path, plen));
        return -1;
    }
    if (path[0] == '/' || dir == NULL) {
        full = xstrndup(path, plen);
    } else {
        size_t dl = strlen(dir);
        bool slash = dl > 0 && dir[dl - 1] == '/';
        full = xmalloc(dl + 1 + plen + 1);
        memcpy(full, dir, dl);
        if (!slash)
            full[dl++] = '/';
        memcpy(full + dl, path, plen);
        full[dl + plen] = '\0';
    }
    for (size_t i = 0; i < x->incs.n; i++) {
        if (strcmp(x->incs.v[i], full) == 0) {
            free(full);         /* read already, or being read: an include loop */
            return 0;
        }
    }
    al_strvec_push(&x->incs, full);
    /* sendmail's and Postfix's rules: a regular file (a symbolic link is not followed),
     * owned by root or by the owner of the file that names it, not writable by others. */
    fd = al_open_regular(full, true, &st, &why);
    if (fd == -1)
        return refuse_include(x, full, why);
    if (fd == -2) {
        str_err(x->err, x->errsz, "cannot read :include: file %s: %s", full, why);
        return -2;
    }
    if ((why = include_unsafe(&st, owner, reason, sizeof reason)) != NULL) {
        (void)close(fd);
        return refuse_include(x, full, why);
    }
    rc = al_read_fd(fd, &st, &data, &len, &why);
    if (rc != 0) {
        str_err(x->err, x->errsz, "cannot read :include: file %s: %s", full, why);
        return rc;
    }
    rc = al_parse_include(full, data, len, &tv, x->err, x->errsz);
    free(data);
    if (rc == 0) {
        incdir = al_dir_of(full);
        x->idepth++;
        for (size_t i = 0; i < tv.n && rc == 0; i++)
            rc = xp_target(x, tv.v[i], strlen(tv.v[i]), incdir, st.st_uid);
        x->idepth--;
        free(incdir);
    }
    al_strvec_free(&tv);
    return rc;
}

/* Local part of an address without quotes and quoted-pair backslashes. */
static char *unquote_local(const char *t, size_t n)
{
    char *s;
    size_t o = 0;

    if (n == 0 || t[0] != '"')
        return xstrndup(t, n);
    s = xmalloc(n + 1);
    for (size_t i = 1; i + 1 < n; i++) {
        if (t[i] == '\\' && i + 2 < n)
            i++;
        s[o++] = t[i];
    }
    s[o] = '\0';
    return s;
}

static int xp_target(struct xp *x, const char *t, size_t tl, const char *dir, uid_t owner)
{
    size_t at;

    switch (al_classify(t, tl, &at)) {
    case TGT_LOCAL:
        return xp_local(x, t, tl, false);
    case TGT_USER:
        return xp_local(x, t + 1, tl - 1, true);
    case TGT_INCLUDE:
        return xp_include(x, t + at, tl - at, dir, owner);
    case TGT_ADDR:
        if (x->is_local != NULL) {
            char *domain = xstrndup(t + at + 1, tl - at - 1);
            bool local = x->is_local(domain, x->ctx);
            free(domain);
            if (local) {
                char *lp = unquote_local(t, at);
                int rc = xp_local(x, lp, strlen(lp), false);
                free(lp);
                return rc;
            }
        }
        xp_add_remote(x, xstrndup(t, tl));
        return 0;
    default:
        /* The parsers let no other kind through. */
        str_err(x->err, x->errsz, "bad target");
        return -1;
    }
}

static void res_truncate(char **arr, size_t *n, size_t keep)
{
    while (*n > keep)
        free(arr[--*n]);
}

int aliases_expand(const struct aliases *a, const char *name,
    bool (*is_local_domain)(const char *domain, void *ctx), void *ctx,
    struct alias_result *res, char *err, size_t errsz)
{
    struct xp x;
    size_t nlocal0 = res->nlocal, nremote0 = res->nremote, len, idx;
    char e[AL_ESC_MAX];
    int rc;

    len = name ? strlen(name) : 0;
    if (len == 0) {
        str_err(err, errsz, "empty recipient name");
        return -1;
    }
    memset(&x, 0, sizeof x);
    x.a = a;
    x.is_local = is_local_domain;
    x.ctx = ctx;
    x.res = res;
    x.err = err;
    x.errsz = errsz;
    x.seen_remote.remote = true;
    for (size_t i = 0; i < res->nlocal; i++)
        (void)strset_add(&x.seen_local, res->local[i]);
    for (size_t i = 0; i < res->nremote; i++)
        (void)strset_add(&x.seen_remote, res->remote[i]);

    idx = al_table_find(a, name, len);
    if (idx == AL_NO_ENTRY) {
        char *s = xstrndup(name, len);
        str_lower(s);
        xp_add_local(&x, s);
        rc = 0;
    } else {
        x.state = xcalloc(a->n, 1);
        rc = xp_alias(&x, idx);
        if (rc == 0 && x.leaves == 0) {
            str_err(err, errsz, "alias \"%s\" expands to no recipients",
                al_esc(e, sizeof e, name, len));
            rc = -1;
        }
    }
    free(x.seen_local.k);
    free(x.seen_remote.k);
    free(x.state);
    al_strvec_free(&x.incs);
    if (rc != 0) {
        res_truncate(res->local, &res->nlocal, nlocal0);
        res_truncate(res->remote, &res->nremote, nremote0);
        /* Unchanged means no array either: callers do not free a result after an error. */
        if (res->nlocal == 0) {
            free(res->local);
            res->local = NULL;
        }
        if (res->nremote == 0) {
            free(res->remote);
            res->remote = NULL;
        }
    }
    return rc;
}

void alias_result_free(struct alias_result *res)
{
    if (res == NULL)
        return;
    res_truncate(res->local, &res->nlocal, 0);
    res_truncate(res->remote, &res->nremote, 0);
    free(res->local);
    free(res->remote);
    res->local = res->remote = NULL;
}
