/*
 * policy/aliases_index.c - the alias table: its index, loading files, merging, lookup.
 *
 * Owns:  the entry array and its open-addressing hash index (ASCII case-insensitive names,
 *        so loading is O(n)), the sources entries came from, reference counting, reading
 *        regular files (tables and :include: files) within ALIASES_FILE_MAX.
 * Never: parses (aliases_parse.c) or expands (aliases_expand.c).
 * Limits: aliases.h (ALIASES_FILE_MAX).
 */
#include "policy/aliases.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/aliases_int.h"
#include "util/str.h"
#include "util/xmalloc.h"

static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)al_lc(s[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

size_t al_table_find(const struct aliases *a, const char *name, size_t n)
{
    size_t mask, i;

    if (a == NULL || a->nslot == 0)
        return AL_NO_ENTRY;
    mask = a->nslot - 1;
    for (i = (size_t)hash_name(name, n) & mask; a->slot[i] != 0; i = (i + 1) & mask) {
        const struct alias_entry *e = &a->ent[a->slot[i] - 1];
        if (str_ieq(name, n, e->name))
            return a->slot[i] - 1;
    }
    return AL_NO_ENTRY;
}

static void slot_put(size_t *slot, size_t nslot, const char *name, size_t idx)
{
    size_t mask = nslot - 1;
    size_t i = (size_t)hash_name(name, strlen(name)) & mask;

    while (slot[i] != 0)
        i = (i + 1) & mask;
    slot[i] = idx + 1;
}

void al_table_add(struct aliases *a, const struct alias_entry *e)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->ent = xreallocarray(a->ent, a->cap, sizeof *a->ent);
    }
    if (a->nslot / 2 < a->n + 1) {
        size_t nslot = a->nslot ? a->nslot * 2 : 32;
        size_t *slot = xcalloc(nslot, sizeof *slot);
        for (size_t i = 0; i < a->n; i++)
            slot_put(slot, nslot, a->ent[i].name, i);
        free(a->slot);
        a->slot = slot;
        a->nslot = nslot;
    }
    a->ent[a->n] = *e;
    slot_put(a->slot, a->nslot, e->name, a->n);
    a->n++;
}

struct aliases *al_table_new(void)
{
    struct aliases *a = xcalloc(1, sizeof(struct aliases));
    atomic_init(&a->refs, 1);
    return a;
}

struct alias_src *al_table_add_src(struct aliases *a, const char *origin, const char *dir,
    uid_t owner)
{
    struct alias_src *s = xcalloc(1, sizeof *s);

    s->origin = xstrdup(origin);
    s->dir = dir ? xstrdup(dir) : NULL;
    s->owner = owner;
    a->srcs = xreallocarray(a->srcs, a->nsrcs + 1, sizeof *a->srcs);
    a->srcs[a->nsrcs++] = s;
    return s;
}

int al_read_fd(int fd, const struct stat *st, char **data, size_t *len, const char **why)
{
    size_t cap, n = 0;
    char *d;

    if ((unsigned long long)st->st_size > ALIASES_FILE_MAX) {
        *why = "file too large";
        (void)close(fd);
        return -1;
    }
    cap = (size_t)st->st_size + 1;
    d = xmalloc(cap);
    for (;;) {
        ssize_t r;
        if (n + 1 == cap) {
            if (cap > ALIASES_FILE_MAX) {
                *why = "file too large";
                free(d);
                (void)close(fd);
                return -1;
            }
            cap *= 2;
            d = xrealloc(d, cap);
        }
        r = read(fd, d + n, cap - n - 1);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            *why = strerror(errno);
            free(d);
            (void)close(fd);
            return -2;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    (void)close(fd);
    d[n] = '\0';
    *data = d;
    *len = n;
    return 0;
}

int al_open_regular(const char *path, bool nofollow, struct stat *st, const char **why)
{
    struct stat lst;
    int fd, flags = O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC;

    /* O_NONBLOCK: a FIFO must not hang us in open(); it is refused below anyway. */
    fd = open(path, flags | (nofollow ? O_NOFOLLOW : 0));
    if (fd == -1) {
        int e = errno;
        if (nofollow && e == ELOOP && lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
            *why = "is a symbolic link";
            return -1;
        }
        *why = strerror(e);
        return -2;
    }
    if (fstat(fd, st) == -1) {
        *why = strerror(errno);
        (void)close(fd);
        return -2;
    }
    if (!S_ISREG(st->st_mode)) {
        *why = "not a regular file";
        (void)close(fd);
        return -1;
    }
    return fd;
}

/*
 * Read a whole regular file, following symbolic links. Returns 0 (*data NUL-terminated,
 * free it; *owner: its owner), -2 when it cannot be opened or read (why: strerror), -1 when
 * it is not a regular file or too large.
 */
static int read_file(const char *path, char **data, size_t *len, uid_t *owner,
    const char **why)
{
    struct stat st;
    int fd = al_open_regular(path, false, &st, why);

    if (fd < 0)
        return fd;
    *owner = st.st_uid;
    return al_read_fd(fd, &st, data, len, why);
}

char *al_dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return NULL;
    if (slash == path)
        return xstrdup("/");
    return xstrndup(path, (size_t)(slash - path));
}

struct aliases *aliases_load(const char *path, char *err, size_t errsz)
{
    struct aliases *a;
    const char *why = NULL;
    char *data = NULL, *dir;
    size_t len = 0;
    uid_t owner = 0;

    if (read_file(path, &data, &len, &owner, &why) != 0) {
        str_err(err, errsz, "%s: %s", path, why);
        return NULL;
    }
    dir = al_dir_of(path);
    a = aliases_parse(data, len, path, dir, err, errsz);
    free(dir);
    free(data);
    if (a != NULL)
        a->srcs[0]->owner = owner;  /* :include: files it names must be root's or its own */
    return a;
}

int aliases_merge(struct aliases *dst, struct aliases *src, char *err, size_t errsz)
{
    if (src == NULL)
        return 0;
    for (size_t i = 0; i < src->n; i++) {
        const struct alias_entry *e = &src->ent[i];
        size_t idx = al_table_find(dst, e->name, strlen(e->name));
        if (idx != AL_NO_ENTRY) {
            const struct alias_entry *d = &dst->ent[idx];
            char q[AL_ESC_MAX];
            str_err(err, errsz, "%s:%lu: duplicate alias name \"%s\" (first at %s:%lu)",
                e->src->origin, e->line, al_esc(q, sizeof q, e->name, strlen(e->name)),
                d->src->origin, d->line);
            aliases_free(src);
            return -1;
        }
    }
    for (size_t i = 0; i < src->n; i++)
        al_table_add(dst, &src->ent[i]);
    dst->srcs = xreallocarray(dst->srcs, dst->nsrcs + src->nsrcs, sizeof *dst->srcs);
    memcpy(dst->srcs + dst->nsrcs, src->srcs, src->nsrcs * sizeof *src->srcs);
    dst->nsrcs += src->nsrcs;
    /* Everything the entries point to now belongs to dst; free only src's arrays. */
    free(src->ent);
    free(src->slot);
    free(src->srcs);
    free(src);
    return 0;
}

struct aliases *aliases_ref(struct aliases *a)
{
    atomic_fetch_add(&a->refs, 1);
    return a;
}

void aliases_free(struct aliases *a)
{
    if (a == NULL || atomic_fetch_sub(&a->refs, 1) != 1)
        return;
    for (size_t i = 0; i < a->n; i++) {
        free(a->ent[i].name);
        for (char **m = a->ent[i].members; *m != NULL; m++)
            free(*m);
        free(a->ent[i].members);
    }
    for (size_t i = 0; i < a->nsrcs; i++) {
        free(a->srcs[i]->origin);
        free(a->srcs[i]->dir);
        free(a->srcs[i]);
    }
    free(a->srcs);
    free(a->ent);
    free(a->slot);
    free(a);
}

bool aliases_exists(const struct aliases *a, const char *name)
{
    return name != NULL && al_table_find(a, name, strlen(name)) != AL_NO_ENTRY;
}

const char *const *aliases_members(const struct aliases *a, const char *name)
{
    size_t idx;

    if (name == NULL)
        return NULL;
    idx = al_table_find(a, name, strlen(name));
    if (idx == AL_NO_ENTRY)
        return NULL;
    return (const char *const *)a->ent[idx].members;
}

size_t aliases_count(const struct aliases *a)
{
    return a ? a->n : 0;
}
