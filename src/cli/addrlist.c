/*
 * cli/addrlist.c - RFC 5322 3.4 address lists: a tokeniser and a small state machine.
 *
 * Owns:  the grammar of address lists as mail clients write them (display names, groups,
 *        comments, quoted strings, obsolete routes), turned into bare addr-specs.
 * Never: does I/O; never looks at what the addresses mean.
 * Limits: addrlist.h (ADDRLIST_MAX, ADDRLIST_ADDR_MAX).
 */
#include "cli/addrlist.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xmalloc.h"

enum tok_type { TOK_END, TOK_ATOM, TOK_QSTR, TOK_DLIT, TOK_SPECIAL, TOK_ERROR };

struct tok {
    enum tok_type type;
    const char *p;              /* the token's text as written (quotes and brackets kept) */
    size_t len;
};

struct lexer {
    const char *s;
    size_t n, i;
    const char *err;
};

static bool is_special(unsigned char c)
{
    return c != '\0' && strchr("()<>[]:;@\\,.\"", c) != NULL;
}

static bool is_wsp(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_ctl(unsigned char c)
{
    return c < 32 || c == 127;
}

/* Skip a comment starting at s[i] == '(' (nesting and quoted-pairs). Returns 0 or -1. */
static int skip_comment(struct lexer *lx)
{
    int depth = 0;
    while (lx->i < lx->n) {
        char c = lx->s[lx->i++];
        if (c == '\\') {
            if (lx->i < lx->n)
                lx->i++;
        } else if (c == '(') {
            depth++;
        } else if (c == ')') {
            if (--depth == 0)
                return 0;
        }
    }
    lx->err = "unbalanced comment";
    return -1;
}

/* Scan a quoted string or domain literal from s[i] (the opening char) through close. */
static int scan_delimited(struct lexer *lx, char close, struct tok *t)
{
    size_t start = lx->i++;
    while (lx->i < lx->n) {
        unsigned char c = (unsigned char)lx->s[lx->i++];
        if (c == '\\') {
            if (lx->i >= lx->n)
                break;
            c = (unsigned char)lx->s[lx->i++];
            if (is_ctl(c) && c != '\t') {
                lx->err = "control character in address";
                return -1;
            }
        } else if (c == (unsigned char)close) {
            t->p = lx->s + start;
            t->len = lx->i - start;
            return 0;
        } else if (c == '\r' || c == '\n') {
            continue;           /* folding inside a quoted string: the line break goes */
        } else if (is_ctl(c) && c != '\t') {
            lx->err = "control character in address";
            return -1;
        }
    }
    lx->err = close == '"' ? "unbalanced quote" : "unbalanced [";
    return -1;
}

static struct tok next_tok(struct lexer *lx)
{
    struct tok t = { TOK_END, NULL, 0 };
    for (;;) {
        while (lx->i < lx->n && is_wsp((unsigned char)lx->s[lx->i]))
            lx->i++;
        if (lx->i >= lx->n)
            return t;
        if (lx->s[lx->i] != '(')
            break;
        if (skip_comment(lx) == -1) {
            t.type = TOK_ERROR;
            return t;
        }
    }
    unsigned char c = (unsigned char)lx->s[lx->i];
    if (c == '"' || c == '[') {
        if (scan_delimited(lx, c == '"' ? '"' : ']', &t) == -1) {
            t.type = TOK_ERROR;
            return t;
        }
        t.type = c == '"' ? TOK_QSTR : TOK_DLIT;
        return t;
    }
    if (c == ')' || c == ']' || c == '\\') {
        lx->err = c == ')' ? "unbalanced )" : c == ']' ? "unbalanced ]" : "stray backslash";
        t.type = TOK_ERROR;
        return t;
    }
    if (is_special(c)) {
        t.type = TOK_SPECIAL;
        t.p = lx->s + lx->i++;
        t.len = 1;
        return t;
    }
    if (is_ctl(c)) {
        lx->err = "control character in address";
        t.type = TOK_ERROR;
        return t;
    }
    size_t start = lx->i;
    while (lx->i < lx->n) {
        c = (unsigned char)lx->s[lx->i];
        if (is_wsp(c) || is_special(c) || is_ctl(c))
            break;
        lx->i++;
    }
    t.type = TOK_ATOM;
    t.p = lx->s + start;
    t.len = lx->i - start;
    return t;
}

/* Append a token's text to b; line breaks of a folded quoted string are dropped. */
static int put_tok(struct buf *b, const struct tok *t)
{
    for (size_t i = 0; i < t->len; i++) {
        if (t->p[i] == '\r' || t->p[i] == '\n')
            continue;
        if (buf_append(b, t->p + i, 1) == -1)
            return -1;
    }
    return 0;
}

/* Append a finished address (the text in a) to out, unless it is empty. */
static int emit(struct addrlist *out, struct buf *a, const char **err)
{
    if (a->len == 0)
        return 0;
    if (out->n >= ADDRLIST_MAX) {
        *err = "too many addresses";
        return -1;
    }
    out->addrs = xreallocarray(out->addrs, out->n + 1, sizeof *out->addrs);
    out->addrs[out->n++] = xstrndup(a->p, a->len);
    buf_reset(a);
    return 0;
}

int addrlist_parse(const char *s, size_t n, struct addrlist *out, char *err, size_t errsz)
{
    struct lexer lx = { s, n, 0, NULL };
    struct buf plain, angle;    /* the tokens outside <>, and the address inside <> */
    buf_init(&plain, ADDRLIST_ADDR_MAX);
    buf_init(&angle, ADDRLIST_ADDR_MAX);
    bool in_angle = false, have_angle = false;
    const char *why = NULL;
    for (;;) {
        struct tok t = next_tok(&lx);
        if (t.type == TOK_ERROR) {
            why = lx.err;
            break;
        }
        if (t.type == TOK_END) {
            if (in_angle)
                why = "unbalanced <";
            else if (have_angle)
                (void)emit(out, &angle, &why);
            else
                (void)emit(out, &plain, &why);
            break;
        }
        char c = t.type == TOK_SPECIAL ? t.p[0] : '\0';
        if (in_angle) {
            if (c == '>') {
                in_angle = false;
                have_angle = true;
            } else if (c == ':') {
                buf_reset(&angle);      /* the end of an obsolete route "@a,@b:" */
            } else if (c == '<') {
                why = "nested <";
                break;
            } else if (put_tok(&angle, &t) == -1) {
                why = "address too long";
                break;
            }
            continue;
        }
        if (c == '<') {
            if (have_angle) {
                why = "two <addresses> in one mailbox";
                break;
            }
            in_angle = true;
            buf_reset(&angle);
        } else if (c == ',' || c == ';') {
            if (emit(out, have_angle ? &angle : &plain, &why) == -1)
                break;
            buf_reset(&plain);
            have_angle = false;
        } else if (c == ':') {
            /* The end of a group's display name; its ';' ends the group like a ','. */
            buf_reset(&plain);
        } else if (c == '>') {
            why = "unbalanced >";
            break;
        } else if (!have_angle && put_tok(&plain, &t) == -1) {
            why = "address too long";
            break;
        }
    }
    buf_free(&plain);
    buf_free(&angle);
    if (why) {
        snprintf(err, errsz, "%s", why);
        return -1;
    }
    return 0;
}

void addrlist_free(struct addrlist *out)
{
    for (size_t i = 0; i < out->n; i++)
        free(out->addrs[i]);
    free(out->addrs);
    out->addrs = NULL;
    out->n = 0;
}
