/*
 * policy/aliases.c - the aliases table of the local delivery agent.
 *
 * Owns:  the alias table (an entry array plus an open-addressing hash index, so loading is
 *        O(n)), the parser for tables and :include: files, expansion with loop and duplicate
 *        suppression.
 * Never: delivers, consults the user database, runs programs, writes files.
 * Limits: aliases.h (ALIASES_LINE_MAX, ALIASES_DEPTH_MAX, ALIASES_INCLUDE_MAX,
 *        ALIASES_FILE_MAX).
 */
#include "policy/aliases.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define NO_ENTRY SIZE_MAX
#define ESC_MAX 200             /* octets of quoted input shown in an error message */

/* Where entries came from: for error messages, relative :include: paths and owner checks. */
struct alias_src {
    char *origin;
    char *dir;                  /* NULL: current directory */
    uid_t owner;                /* owner of the file; :include: files it names must match */
};

struct alias_entry {
    char *name;                 /* lower-cased */
    char **members;             /* NULL-terminated, as written */
    const struct alias_src *src;
    unsigned long line;
};

struct aliases {
    atomic_uint refs;           /* aliases_ref(); freed when the last one goes */
    struct alias_entry *ent;
    size_t n, cap;
    size_t *slot;               /* entry index + 1; 0 is empty */
    size_t nslot;               /* power of two, at least 2 * n */
    struct alias_src **srcs;
    size_t nsrcs;
};

/* Kinds of target, as classify() sees them. */
enum tgt {
    TGT_LOCAL,                  /* alice */
    TGT_USER,                   /* \alice */
    TGT_ADDR,                   /* local@domain */
    TGT_INCLUDE,                /* :include:/path */
    TGT_FILEPIPE,               /* /file, |cmd, "/file", "|cmd" */
    TGT_EMPTY_INCLUDE,          /* :include: without a path */
    TGT_BAD
};

/* A growable array of owned strings. */
struct strvec {
    char **v;
    size_t n, cap;
};

/* Physical line number of each part of a logical line (parts joined with '\n'). */
struct seg {
    size_t off;
    unsigned long line;
};

struct segmap {
    struct seg *s;
    size_t n, cap;
};

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

/* Printable copy of n bytes for an error message: non-printable octets become \xHH. */
static const char *esc(char *out, size_t osz, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
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

static inline char lc(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

static inline bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Whitespace inside a logical line: blanks and the '\n' that joins continuation lines. */
static inline bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

static inline bool is_ctl(char c)
{
    unsigned char u = (unsigned char)c;
    return u < 0x20 || u == 0x7f;
}

/* May c appear in an alias name, a local user name or an unquoted local part? */
static bool name_char(char c)
{
    return !is_ctl(c) && c != ' ' && strchr("()<>[]:;@\\,\"", c) == NULL;
}

static bool name_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!name_char(s[i]))
            return false;
    }
    return true;
}

static bool domain_char(char c)
{
    return !is_ctl(c) && c != ' ' && strchr("()<>;@\\,\"", c) == NULL;
}

static void strvec_push(struct strvec *v, char *s)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->v = xreallocarray(v->v, v->cap, sizeof *v->v);
    }
    v->v[v->n++] = s;
}

static void strvec_free(struct strvec *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

static void segmap_push(struct segmap *m, size_t off, unsigned long line)
{
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 8;
        m->s = xreallocarray(m->s, m->cap, sizeof *m->s);
    }
    m->s[m->n].off = off;
    m->s[m->n].line = line;
    m->n++;
}

/* Line of offset off: the last part starting at or before it (binary search). */
static unsigned long segmap_line(const struct segmap *m, size_t off)
{
    size_t lo = 0, hi = m->n;

    if (m->n == 0)
        return 0;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->s[mid].off <= off)
            lo = mid;
        else
            hi = mid;
    }
    return m->s[lo].line;
}

/* Next physical line of t (length n) from *pos, without LF or CRLF. false at the end. */
static bool next_line(const char *t, size_t n, size_t *pos, const char **l, size_t *ll)
{
    const char *s, *nl;
    size_t rem, len;

    if (*pos >= n)
        return false;
    s = t + *pos;
    rem = n - *pos;
    nl = memchr(s, '\n', rem);
    len = nl ? (size_t)(nl - s) : rem;
    *pos += nl ? len + 1 : len;
    if (len > 0 && s[len - 1] == '\r')
        len--;
    *l = s;
    *ll = len;
    return true;
}

/* Checks every physical line passes. Returns 0, or -1 with "origin:line: what". */
static int check_line(const char *l, size_t ll, const char *origin, unsigned long line,
    char *err, size_t errsz)
{
    if (ll > ALIASES_LINE_MAX) {
        set_err(err, errsz, "%s:%lu: line too long (over %d octets)", origin, line,
            ALIASES_LINE_MAX);
        return -1;
    }
    if (memchr(l, '\0', ll) != NULL) {
        set_err(err, errsz, "%s:%lu: NUL byte in line", origin, line);
        return -1;
    }
    return 0;
}

/* Blank line, or a comment: first non-blank octet is '#'. */
static bool is_ignorable(const char *l, size_t ll)
{
    size_t i = 0;

    while (i < ll && is_blank(l[i]))
        i++;
    return i == ll || l[i] == '#';
}

/* End of a quoted string that starts at s[i] == '"': index of the closing quote, or n. */
static size_t quoted_end(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n)
            i++;
        else if (s[i] == '"')
            return i;
    }
    return n;
}

/*
 * Classify a trimmed target t (length tl > 0). *at: for TGT_ADDR the index of the '@' that
 * separates the domain, for TGT_INCLUDE the index where the path starts.
 */
static enum tgt classify(const char *t, size_t tl, size_t *at)
{
    size_t i;

    *at = 0;
    if (tl >= 9 && str_ieq(t, 9, ":include:")) {
        for (i = 9; i < tl && is_space(t[i]); i++)
            ;
        if (i == tl)
            return TGT_EMPTY_INCLUDE;
        *at = i;
        for (; i < tl; i++) {
            if (is_ctl(t[i]))
                return TGT_BAD;
        }
        return TGT_INCLUDE;
    }
    if (t[0] == '|' || t[0] == '/')
        return TGT_FILEPIPE;
    if (t[0] == '\\')
        return name_ok(t + 1, tl - 1) ? TGT_USER : TGT_BAD;
    if (t[0] == '"') {
        i = quoted_end(t, tl, 0);
        if (i >= tl)
            return TGT_BAD;
        for (size_t j = 1; j < i; j++) {
            if (is_ctl(t[j]))
                return TGT_BAD;
        }
        if (i == tl - 1)    /* only a quoted string: sendmail's "|cmd args" or "/file" */
            return (tl > 2 && (t[1] == '|' || t[1] == '/')) ? TGT_FILEPIPE : TGT_BAD;
        if (t[i + 1] != '@')
            return TGT_BAD;
        i++;
    } else {
        for (i = 0; i < tl && t[i] != '@'; i++) {
            if (!name_char(t[i]))
                return TGT_BAD;
        }
        if (i == tl)
            return TGT_LOCAL;
        if (i == 0)
            return TGT_BAD;
    }
    *at = i;
    if (i + 1 == tl)
        return TGT_BAD;
    for (i++; i < tl; i++) {
        if (!domain_char(t[i]))
            return TGT_BAD;
    }
    return TGT_ADDR;
}

/*
 * Split s[start..end) into targets at commas outside quotes, validate each and append copies
 * to out. m maps offsets in s to line numbers. Returns 0, or -1 with "origin:line: what".
 */
static int parse_rhs(const char *s, size_t start, size_t end, const struct segmap *m,
    const char *origin, bool quote, struct strvec *out, char *err, size_t errsz)
{
    char e[ESC_MAX];
    size_t i = start;

    while (i <= end) {
        size_t ts = i, te, at;
        bool inq = false;
        size_t qpos = 0;

        for (; i < end; i++) {
            char c = s[i];
            if (inq) {
                if (c == '\\' && i + 1 < end && s[i + 1] != '\n') {
                    i++;
                } else if (c == '"') {
                    inq = false;
                } else if (c == '\n') {
                    break;      /* quotes do not span lines */
                }
            } else if (c == ',') {
                break;
            } else if (c == '"') {
                inq = true;
                qpos = i;
            }
        }
        if (inq) {
            set_err(err, errsz, "%s:%lu: unterminated quote", origin, segmap_line(m, qpos));
            return -1;
        }
        te = i;
        while (ts < te && is_space(s[ts]))
            ts++;
        while (te > ts && is_space(s[te - 1]))
            te--;
        if (te > ts) {
            unsigned long line = segmap_line(m, ts);
            switch (classify(s + ts, te - ts, &at)) {
            case TGT_FILEPIPE:
                if (quote)
                    set_err(err, errsz, "%s:%lu: file and pipe targets are not supported: %s",
                        origin, line, esc(e, sizeof e, s + ts, te - ts));
                else
                    set_err(err, errsz, "%s:%lu: file and pipe targets are not supported",
                        origin, line);
                return -1;
            case TGT_EMPTY_INCLUDE:
                set_err(err, errsz, "%s:%lu: empty :include: path", origin, line);
                return -1;
            case TGT_BAD:
                if (quote)
                    set_err(err, errsz, "%s:%lu: bad target: %s", origin, line,
                        esc(e, sizeof e, s + ts, te - ts));
                else
                    set_err(err, errsz, "%s:%lu: bad address", origin, line);
                return -1;
            default:
                strvec_push(out, xstrndup(s + ts, te - ts));
                break;
            }
        }
        i++;            /* past the comma, or past end to stop */
    }
    return 0;
}

/* FNV-1a over the ASCII-lower-cased name. */
static uint64_t hash_name(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ULL;

    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)lc(s[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

/* Index of the entry named name (length n, any case), or NO_ENTRY. */
static size_t table_find(const struct aliases *a, const char *name, size_t n)
{
    size_t mask, i;

    if (a == NULL || a->nslot == 0)
        return NO_ENTRY;
    mask = a->nslot - 1;
    for (i = (size_t)hash_name(name, n) & mask; a->slot[i] != 0; i = (i + 1) & mask) {
        const struct alias_entry *e = &a->ent[a->slot[i] - 1];
        if (str_ieq(name, n, e->name))
            return a->slot[i] - 1;
    }
    return NO_ENTRY;
}

static void slot_put(size_t *slot, size_t nslot, const char *name, size_t idx)
{
    size_t mask = nslot - 1;
    size_t i = (size_t)hash_name(name, strlen(name)) & mask;

    while (slot[i] != 0)
        i = (i + 1) & mask;
    slot[i] = idx + 1;
}

/* Append an entry (its name not yet in the table); the table takes ownership. */
static void table_add(struct aliases *a, const struct alias_entry *e)
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

static struct alias_src *table_add_src(struct aliases *a, const char *origin, const char *dir,
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

/* Parser state for one table. */
struct parser {
    struct aliases *a;
    const struct alias_src *src;
    struct buf lb;              /* the logical line */
    struct segmap m;
    struct strvec tv;
    char *err;
    size_t errsz;
};

/* Turn the logical line in p->lb into an entry. Returns 0 or -1 (p->err set). */
static int finish_entry(struct parser *p)
{
    const char *origin = p->src->origin;
    const char *s = p->lb.p;
    size_t len = p->lb.len;
    size_t first = p->m.n > 1 ? p->m.s[1].off - 1 : len;
    unsigned long line = p->m.s[0].line;
    const char *colon = memchr(s, ':', first);
    char e[ESC_MAX];
    struct alias_entry ent;
    size_t nl, idx;

    if (colon == NULL) {
        set_err(p->err, p->errsz, "%s:%lu: missing ':' after alias name", origin, line);
        return -1;
    }
    nl = (size_t)(colon - s);
    while (nl > 0 && is_blank(s[nl - 1]))
        nl--;
    if (!name_ok(s, nl)) {
        set_err(p->err, p->errsz, "%s:%lu: bad alias name \"%s\"", origin, line,
            esc(e, sizeof e, s, nl));
        return -1;
    }
    idx = table_find(p->a, s, nl);
    if (idx != NO_ENTRY) {
        set_err(p->err, p->errsz, "%s:%lu: duplicate alias name \"%s\" (first at line %lu)",
            origin, line, esc(e, sizeof e, s, nl), p->a->ent[idx].line);
        return -1;
    }
    if (parse_rhs(s, (size_t)(colon - s) + 1, len, &p->m, origin, true, &p->tv, p->err,
            p->errsz) == -1)
        return -1;
    if (p->tv.n == 0) {
        set_err(p->err, p->errsz, "%s:%lu: empty target list for \"%s\"", origin, line,
            esc(e, sizeof e, s, nl));
        return -1;
    }
    ent.name = xstrndup(s, nl);
    str_lower(ent.name);
    ent.members = xreallocarray(NULL, p->tv.n + 1, sizeof *ent.members);
    memcpy(ent.members, p->tv.v, p->tv.n * sizeof *ent.members);
    ent.members[p->tv.n] = NULL;
    p->tv.n = 0;                /* the strings now belong to the entry */
    ent.src = p->src;
    ent.line = line;
    table_add(p->a, &ent);
    return 0;
}

static struct aliases *table_new(void)
{
    struct aliases *a = xcalloc(1, sizeof(struct aliases));
    atomic_init(&a->refs, 1);
    return a;
}

static int parse_into(struct parser *p, const char *text, size_t n)
{
    const char *origin = p->src->origin;
    size_t pos = 0, ll;
    unsigned long line = 0;
    bool open = false;
    const char *l;

    while (next_line(text, n, &pos, &l, &ll)) {
        line++;
        if (check_line(l, ll, origin, line, p->err, p->errsz) == -1)
            return -1;
        if (is_ignorable(l, ll))
            continue;
        if (is_blank(l[0])) {
            if (!open) {
                set_err(p->err, p->errsz, "%s:%lu: continuation line without a preceding entry",
                    origin, line);
                return -1;
            }
            if (buf_append(&p->lb, "\n", 1) == -1)
                goto toolong;
            segmap_push(&p->m, p->lb.len, line);
            if (buf_append(&p->lb, l, ll) == -1)
                goto toolong;
            continue;
        }
        if (open && finish_entry(p) == -1)
            return -1;
        buf_reset(&p->lb);
        p->m.n = 0;
        segmap_push(&p->m, 0, line);
        if (buf_append(&p->lb, l, ll) == -1)
            goto toolong;
        open = true;
    }
    if (open && finish_entry(p) == -1)
        return -1;
    return 0;
toolong:
    set_err(p->err, p->errsz, "%s:%lu: entry too long", origin, line);
    return -1;
}

struct aliases *aliases_parse(const char *text, size_t n, const char *origin, const char *dir,
    char *err, size_t errsz)
{
    struct parser p;
    int rc;

    memset(&p, 0, sizeof p);
    p.a = table_new();
    p.src = table_add_src(p.a, origin ? origin : "aliases", dir, geteuid());
    p.err = err;
    p.errsz = errsz;
    buf_init(&p.lb, ALIASES_FILE_MAX);
    rc = parse_into(&p, text ? text : "", text ? n : 0);
    buf_free(&p.lb);
    free(p.m.s);
    strvec_free(&p.tv);
    if (rc == -1) {
        aliases_free(p.a);
        return NULL;
    }
    return p.a;
}

/*
 * Read the rest of the regular file open on fd (st: its fstat()); fd is closed. Returns 0
 * (*data NUL-terminated, free it), -2 when it cannot be read (why: strerror), -1 when it is
 * too large.
 */
static int read_fd(int fd, const struct stat *st, char **data, size_t *len, const char **why)
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

/*
 * Open path for reading and fstat it into *st. nofollow: a symbolic link as the last
 * component is refused. Returns the descriptor; -2 when it cannot be opened (why: strerror),
 * -1 when it is a symbolic link (nofollow) or not a regular file.
 */
static int open_regular(const char *path, bool nofollow, struct stat *st, const char **why)
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
    int fd = open_regular(path, false, &st, why);

    if (fd < 0)
        return fd;
    *owner = st.st_uid;
    return read_fd(fd, &st, data, len, why);
}

/* Directory part of path (an allocated copy), or NULL when it has no '/'. */
static char *dir_of(const char *path)
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
        set_err(err, errsz, "%s: %s", path, why);
        return NULL;
    }
    dir = dir_of(path);
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
        size_t idx = table_find(dst, e->name, strlen(e->name));
        if (idx != NO_ENTRY) {
            const struct alias_entry *d = &dst->ent[idx];
            char q[ESC_MAX];
            set_err(err, errsz, "%s:%lu: duplicate alias name \"%s\" (first at %s:%lu)",
                e->src->origin, e->line, esc(q, sizeof q, e->name, strlen(e->name)),
                d->src->origin, d->line);
            aliases_free(src);
            return -1;
        }
    }
    for (size_t i = 0; i < src->n; i++)
        table_add(dst, &src->ent[i]);
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
    return name != NULL && table_find(a, name, strlen(name)) != NO_ENTRY;
}

const char *const *aliases_members(const struct aliases *a, const char *name)
{
    size_t idx;

    if (name == NULL)
        return NULL;
    idx = table_find(a, name, strlen(name));
    if (idx == NO_ENTRY)
        return NULL;
    return (const char *const *)a->ent[idx].members;
}

size_t aliases_count(const struct aliases *a)
{
    return a ? a->n : 0;
}

/* ---- expansion ---- */

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
        h ^= (unsigned char)(i > at ? lc(s[i]) : s[i]);
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
    if (!noexpand && (idx = table_find(x->a, s, n)) != NO_ENTRY) {
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
        set_err(x->err, x->errsz, "alias expansion too deep");
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

/* Parse the text of an :include: file into targets. Returns 0 or -1 (x->err set). */
static int parse_include(struct xp *x, const char *path, const char *text, size_t n,
    struct strvec *out)
{
    struct segmap m = { 0 };
    size_t pos = 0, ll;
    unsigned long line = 0;
    const char *l;
    int rc = 0;

    while (rc == 0 && next_line(text, n, &pos, &l, &ll)) {
        line++;
        rc = check_line(l, ll, path, line, x->err, x->errsz);
        if (rc == 0 && !is_ignorable(l, ll)) {
            m.n = 0;
            segmap_push(&m, 0, line);
            /* false: an error names the file and line, never its bytes (it may hold
             * anything; the message reaches bounces and "postel verify"). */
            rc = parse_rhs(l, 0, ll, &m, path, false, out, x->err, x->errsz);
        }
    }
    free(m.s);
    return rc;
}

/*
 * Refuse the :include: file path for reason: a permanent error for the recipient (the
 * administrator must fix the file) and a warning in the log. Never quotes the contents.
 */
static int refuse_include(struct xp *x, const char *path, const char *reason)
{
    log_warnx(":include: file %s refused: %s", path, reason);
    set_err(x->err, x->errsz, "mail system configuration error: :include: file %s refused: %s",
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
        char e[ESC_MAX];
        set_err(x->err, x->errsz, ":include: nesting too deep (limit %d) at %s",
            ALIASES_INCLUDE_MAX, esc(e, sizeof e, path, plen));
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
    strvec_push(&x->incs, full);
    /* sendmail's and Postfix's rules: a regular file (a symbolic link is not followed),
     * owned by root or by the owner of the file that names it, not writable by others. */
    fd = open_regular(full, true, &st, &why);
    if (fd == -1)
        return refuse_include(x, full, why);
    if (fd == -2) {
        set_err(x->err, x->errsz, "cannot read :include: file %s: %s", full, why);
        return -2;
    }
    if ((why = include_unsafe(&st, owner, reason, sizeof reason)) != NULL) {
        (void)close(fd);
        return refuse_include(x, full, why);
    }
    rc = read_fd(fd, &st, &data, &len, &why);
    if (rc != 0) {
        set_err(x->err, x->errsz, "cannot read :include: file %s: %s", full, why);
        return rc;
    }
    rc = parse_include(x, full, data, len, &tv);
    free(data);
    if (rc == 0) {
        incdir = dir_of(full);
        x->idepth++;
        for (size_t i = 0; i < tv.n && rc == 0; i++)
            rc = xp_target(x, tv.v[i], strlen(tv.v[i]), incdir, st.st_uid);
        x->idepth--;
        free(incdir);
    }
    strvec_free(&tv);
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

    switch (classify(t, tl, &at)) {
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
        set_err(x->err, x->errsz, "bad target");
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
    char e[ESC_MAX];
    int rc;

    len = name ? strlen(name) : 0;
    if (len == 0) {
        set_err(err, errsz, "empty recipient name");
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

    idx = table_find(a, name, len);
    if (idx == NO_ENTRY) {
        char *s = xstrndup(name, len);
        str_lower(s);
        xp_add_local(&x, s);
        rc = 0;
    } else {
        x.state = xcalloc(a->n, 1);
        rc = xp_alias(&x, idx);
        if (rc == 0 && x.leaves == 0) {
            set_err(err, errsz, "alias \"%s\" expands to no recipients",
                esc(e, sizeof e, name, len));
            rc = -1;
        }
    }
    free(x.seen_local.k);
    free(x.seen_remote.k);
    free(x.state);
    strvec_free(&x.incs);
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
