/*
 * policy/aliases_parse.c - the parser for alias tables and :include: files.
 *
 * Owns:  physical and logical lines (continuations), the target grammar (al_classify()),
 *        splitting a target list at commas outside quotes, entries and their error messages
 *        ("origin:line: what").
 * Never: reads files (aliases_index.c) or expands anything (aliases_expand.c).
 * Limits: aliases.h (ALIASES_LINE_MAX, ALIASES_FILE_MAX for a logical line).
 */
#include "policy/aliases.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/aliases_int.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xmalloc.h"

struct seg {
    size_t off;
    unsigned long line;
};

struct segmap {
    struct seg *s;
    size_t n, cap;
};



const char *al_esc(char *out, size_t osz, const char *s, size_t n)
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

void al_strvec_push(struct strvec *v, char *s)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->v = xreallocarray(v->v, v->cap, sizeof *v->v);
    }
    v->v[v->n++] = s;
}

void al_strvec_free(struct strvec *v)
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
        str_err(err, errsz, "%s:%lu: line too long (over %d octets)", origin, line,
            ALIASES_LINE_MAX);
        return -1;
    }
    if (memchr(l, '\0', ll) != NULL) {
        str_err(err, errsz, "%s:%lu: NUL byte in line", origin, line);
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

enum al_tgt al_classify(const char *t, size_t tl, size_t *at)
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
    char e[AL_ESC_MAX];
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
            str_err(err, errsz, "%s:%lu: unterminated quote", origin, segmap_line(m, qpos));
            return -1;
        }
        te = i;
        while (ts < te && is_space(s[ts]))
            ts++;
        while (te > ts && is_space(s[te - 1]))
            te--;
        if (te > ts) {
            unsigned long line = segmap_line(m, ts);
            switch (al_classify(s + ts, te - ts, &at)) {
            case TGT_FILEPIPE:
                if (quote)
                    str_err(err, errsz, "%s:%lu: file and pipe targets are not supported: %s",
                        origin, line, al_esc(e, sizeof e, s + ts, te - ts));
                else
                    str_err(err, errsz, "%s:%lu: file and pipe targets are not supported",
                        origin, line);
                return -1;
            case TGT_EMPTY_INCLUDE:
                str_err(err, errsz, "%s:%lu: empty :include: path", origin, line);
                return -1;
            case TGT_BAD:
                if (quote)
                    str_err(err, errsz, "%s:%lu: bad target: %s", origin, line,
                        al_esc(e, sizeof e, s + ts, te - ts));
                else
                    str_err(err, errsz, "%s:%lu: bad address", origin, line);
                return -1;
            default:
                al_strvec_push(out, xstrndup(s + ts, te - ts));
                break;
            }
        }
        i++;            /* past the comma, or past end to stop */
    }
    return 0;
}

/* FNV-1a over the ASCII-lower-cased name. */

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
    char e[AL_ESC_MAX];
    struct alias_entry ent;
    size_t nl, idx;

    if (colon == NULL) {
        str_err(p->err, p->errsz, "%s:%lu: missing ':' after alias name", origin, line);
        return -1;
    }
    nl = (size_t)(colon - s);
    while (nl > 0 && is_blank(s[nl - 1]))
        nl--;
    if (!name_ok(s, nl)) {
        str_err(p->err, p->errsz, "%s:%lu: bad alias name \"%s\"", origin, line,
            al_esc(e, sizeof e, s, nl));
        return -1;
    }
    idx = al_table_find(p->a, s, nl);
    if (idx != AL_NO_ENTRY) {
        str_err(p->err, p->errsz, "%s:%lu: duplicate alias name \"%s\" (first at line %lu)",
            origin, line, al_esc(e, sizeof e, s, nl), p->a->ent[idx].line);
        return -1;
    }
    if (parse_rhs(s, (size_t)(colon - s) + 1, len, &p->m, origin, true, &p->tv, p->err,
            p->errsz) == -1)
        return -1;
    if (p->tv.n == 0) {
        str_err(p->err, p->errsz, "%s:%lu: empty target list for \"%s\"", origin, line,
            al_esc(e, sizeof e, s, nl));
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
    al_table_add(p->a, &ent);
    return 0;
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
                str_err(p->err, p->errsz, "%s:%lu: continuation line without a preceding entry",
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
    str_err(p->err, p->errsz, "%s:%lu: entry too long", origin, line);
    return -1;
}

struct aliases *aliases_parse(const char *text, size_t n, const char *origin, const char *dir,
    char *err, size_t errsz)
{
    struct parser p;
    int rc;

    memset(&p, 0, sizeof p);
    p.a = al_table_new();
    p.src = al_table_add_src(p.a, origin ? origin : "aliases", dir, geteuid());
    p.err = err;
    p.errsz = errsz;
    buf_init(&p.lb, ALIASES_FILE_MAX);
    rc = parse_into(&p, text ? text : "", text ? n : 0);
    buf_free(&p.lb);
    free(p.m.s);
    al_strvec_free(&p.tv);
    if (rc == -1) {
        aliases_free(p.a);
        return NULL;
    }
    return p.a;
}

int al_parse_include(const char *path, const char *text, size_t n, struct strvec *out,
    char *err, size_t errsz)
{
    struct segmap m = { 0 };
    size_t pos = 0, ll;
    unsigned long line = 0;
    const char *l;
    int rc = 0;

    while (rc == 0 && next_line(text, n, &pos, &l, &ll)) {
        line++;
        rc = check_line(l, ll, path, line, err, errsz);
        if (rc == 0 && !is_ignorable(l, ll)) {
            m.n = 0;
            segmap_push(&m, 0, line);
            /* false: an error names the file and line, never its bytes (it may hold
             * anything; the message reaches bounces and "postel verify"). */
            rc = parse_rhs(l, 0, ll, &m, path, false, out, err, errsz);
        }
    }
    free(m.s);
    return rc;
}
