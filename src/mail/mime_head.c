/*
 * mail/mime_head.c - the header block of a MIME entity: RFC 2045 5.1 lexing of folded field
 * values, Content-Type (type, subtype, boundary), Content-Transfer-Encoding, MIME-Version.
 *
 * Owns:  the lexer (CFWS, tokens, quoted strings, parameters), which fields matter and how
 *        often they occur, the boundary (MIME_BOUNDARY_MAX).
 * Never: writes output or changes the message; does I/O.
 */
#include "mail/mime.h"

#include <stdint.h>
#include <string.h>

#include "mail/mime_int.h"
#include "util/str.h"

/* ---- RFC 2045 5.1 lexical helpers over a (possibly folded) field value ---- */

struct lex {
    const char *p, *e;
};

static bool is_tspecial(char ch)
{
    return ch != '\0' && strchr("()<>@,;:\\\"/[]?=", ch) != NULL;
}

static bool is_token_char(char ch)
{
    return ch > 0x20 && ch < 0x7f && !is_tspecial(ch);
}

/* Skip white space (folding included) and comments, which nest. */
static void lex_cfws(struct lex *l)
{
    while (l->p < l->e) {
        char ch = *l->p;
        if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            l->p++;
            continue;
        }
        if (ch != '(')
            return;
        size_t level = 0;
        while (l->p < l->e) {
            ch = *l->p++;
            if (ch == '\\' && l->p < l->e)
                l->p++;
            else if (ch == '(')
                level++;
            else if (ch == ')' && --level == 0)
                break;
        }
    }
}

static bool lex_token(struct lex *l, const char **s, size_t *n)
{
    const char *t = l->p;
    while (l->p < l->e && is_token_char(*l->p))
        l->p++;
    *s = t;
    *n = (size_t)(l->p - t);
    return *n > 0;
}

/*
 * A token or a quoted-string, unquoted into dst (dsz bytes). *n gets its length; *trunc is
 * set if it did not fit. Returns false on a syntax error.
 */
static bool lex_value(struct lex *l, char *dst, size_t dsz, size_t *n, bool *trunc)
{
    size_t o = 0;
    *trunc = false;
    if (l->p < l->e && *l->p == '"') {
        l->p++;
        for (;;) {
            if (l->p >= l->e)
                return false;           /* unterminated */
            char ch = *l->p++;
            if (ch == '"')
                break;
            if (ch == '\\') {
                if (l->p >= l->e)
                    return false;
                ch = *l->p++;
            } else if (ch == '\n') {
                continue;               /* folding inside a quoted-string */
            }
            if (o < dsz)
                dst[o++] = ch;
            else
                *trunc = true;
        }
        *n = o;
        return true;
    }
    const char *t;
    size_t tn;
    if (!lex_token(l, &t, &tn))
        return false;
    if (tn > dsz) {
        tn = dsz;
        *trunc = true;
    }
    memcpy(dst, t, tn);
    *n = tn;
    return true;
}

/* After a parameter syntax error: skip to the next ';' outside quoted-strings and comments. */
static void lex_skip_param(struct lex *l)
{
    while (l->p < l->e && *l->p != ';') {
        if (*l->p == '"') {
            l->p++;
            while (l->p < l->e && *l->p != '"') {
                if (*l->p == '\\' && l->p + 1 < l->e)
                    l->p++;
                l->p++;
            }
            if (l->p < l->e)
                l->p++;
        } else if (*l->p == '(') {
            lex_cfws(l);
        } else {
            l->p++;
        }
    }
}

static bool ieq_prefix(const char *s, size_t n, const char *prefix)
{
    size_t pn = strlen(prefix);
    return n >= pn && str_ieq(s, pn, prefix);
}

void mime_parse_content_type(struct ent *en, const char *m, size_t s, size_t e)
{
    struct lex l = { m + s, m + e };
    const char *type, *sub;
    size_t tn, sn;

    en->kind = K_TEXT;          /* RFC 2045 5.2: an unparsable field means text/plain */
    lex_cfws(&l);
    if (!lex_token(&l, &type, &tn))
        return;
    lex_cfws(&l);
    if (l.p >= l.e || *l.p != '/')
        return;
    l.p++;
    lex_cfws(&l);
    if (!lex_token(&l, &sub, &sn))
        return;

    if (str_ieq(type, tn, "text")) {
        en->kind = K_TEXT;
    } else if (str_ieq(type, tn, "multipart")) {
        en->kind = K_MULTIPART;
        en->digest = str_ieq(sub, sn, "digest");
    } else if (str_ieq(type, tn, "message")) {
        if (str_ieq(sub, sn, "rfc822"))
            en->kind = K_RFC822;
        else if (ieq_prefix(sub, sn, "global"))
            en->kind = K_BINARY;    /* RFC 6532 3.5 allows base64 for message/global* */
        else
            en->kind = K_MSG_OTHER;
    } else {
        en->kind = K_BINARY;
    }
    if (en->kind != K_MULTIPART)
        return;

    for (;;) {
        const char *attr;
        size_t an, vn;
        bool trunc;
        char val[MIME_BOUNDARY_MAX];

        lex_cfws(&l);
        if (l.p >= l.e)
            return;
        if (*l.p != ';') {
            lex_skip_param(&l);
            continue;
        }
        l.p++;
        lex_cfws(&l);
        if (!lex_token(&l, &attr, &an)) {
            lex_skip_param(&l);
            continue;
        }
        lex_cfws(&l);
        if (l.p >= l.e || *l.p != '=') {
            lex_skip_param(&l);
            continue;
        }
        l.p++;
        lex_cfws(&l);
        if (!lex_value(&l, val, sizeof val, &vn, &trunc)) {
            lex_skip_param(&l);
            continue;
        }
        /* XXX: an RFC 2231 boundary*0= / boundary*= is not recognised; none seen in use */
        if (!str_ieq(attr, an, "boundary"))
            continue;
        if (en->blen > 0 || en->blong) {
            en->bdup = true;
            continue;
        }
        if (trunc)
            en->blong = true;
        else if (vn > 0) {
            memcpy(en->boundary, val, vn);
            en->blen = vn;
        }
    }
}

void mime_parse_cte(struct ent *en, const char *m, size_t s, size_t e)
{
    struct lex l = { m + s, m + e };
    const char *t;
    size_t tn;

    lex_cfws(&l);
    if (!lex_token(&l, &t, &tn)) {
        /* empty: receivers fall back to 7bit, so the body is shown as it is */
        en->cte = l.p >= l.e ? CTE_IDENTITY : CTE_OTHER;
        return;
    }
    lex_cfws(&l);
    if (l.p < l.e) {
        en->cte = CTE_OTHER;    /* trailing junk */
        return;
    }
    if (str_ieq(t, tn, "7bit")) {
        en->cte = CTE_IDENTITY;
    } else if (str_ieq(t, tn, "8bit") || str_ieq(t, tn, "binary")) {
        en->cte = CTE_IDENTITY;
        en->cte_rewrite = true;
    } else if (str_ieq(t, tn, "quoted-printable")) {
        en->cte = CTE_QP;
    } else if (str_ieq(t, tn, "base64")) {
        en->cte = CTE_BASE64;
    } else {
        en->cte = CTE_OTHER;
    }
}

/* Note one complete header field m[fs..fe) (fe: after its last LF, or the block end). */
static void note_field(struct ent *en, const char *m, size_t fs, size_t fe)
{
    const char *colon = memchr(m + fs, ':', fe - fs);
    if (colon == NULL)
        return;
    size_t ne = (size_t)(colon - m), vs = ne + 1;
    while (ne > fs && (m[ne - 1] == ' ' || m[ne - 1] == '\t'))
        ne--;                   /* obsolete "Name :" syntax */
    if (str_ieq(m + fs, ne - fs, "content-type")) {
        if (en->nct++ == 0) {
            en->ct_s = vs;
            en->ct_e = fe;
        }
    } else if (str_ieq(m + fs, ne - fs, "content-transfer-encoding")) {
        if (en->ncte++ == 0) {
            en->cte_s = fs;
            en->cte_e = fe;
            en->cte_vs = vs;
            en->cte_ve = fe;
        }
    } else if (str_ieq(m + fs, ne - fs, "mime-version")) {
        en->mime_version = true;
    }
}

void mime_parse_head(struct ent *en, const char *m, size_t s, size_t e)
{
    size_t pos = s, fs = SIZE_MAX;

    memset(en, 0, sizeof *en);
    en->s = s;
    en->e = e;
    en->hend = en->bstart = e;
    while (pos < e) {
        const char *lf = memchr(m + pos, '\n', e - pos);
        size_t le = lf ? (size_t)(lf - m) : e;
        if (le == pos) {
            en->hend = pos;
            en->bstart = pos + 1;
            break;
        }
        if (m[pos] != ' ' && m[pos] != '\t') {
            if (fs != SIZE_MAX)
                note_field(en, m, fs, pos);
            fs = pos;
        }
        pos = lf ? le + 1 : e;
    }
    if (fs != SIZE_MAX)
        note_field(en, m, fs, en->hend);
}
