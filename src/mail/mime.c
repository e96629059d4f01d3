/*
 * mail/mime.c - downgrade an 8-bit message to 7-bit MIME (RFC 6152 section 3).
 *
 * Owns:  the MIME walk (entities, boundary delimiters, which part is re-encoded how) and
 *        the quoted-printable and base64 encoders; header fields are read by mime_head.c.
 * Never: does I/O, decodes content, or changes a header field other than
 *        Content-Transfer-Encoding.
 * Limits: MIME_MAX_DEPTH (mail/mime.h); boundaries longer than MIME_BOUNDARY_MAX octets are
 *         refused (RFC 2046 allows 70); the cap of the caller's out buffer.
 *
 * The message is never copied: an entity is a byte range of it, and output is either a
 * span of the input or freshly encoded text. Each nesting level scans its own range once
 * or twice (8-bit test, delimiter search), so the work is linear in the size times the
 * depth, and the depth is bounded.
 */
#include "mail/mime.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mail/mime_int.h"
#include "util/b64.h"
#include "util/buf.h"
#include "util/str.h"

#define QP_LINE_MAX       76    /* RFC 2045 6.7 rule 5 */
#define B64_LINE_MAX      76    /* RFC 2045 6.8 */
#define CTE_NAME          "Content-Transfer-Encoding: "

struct conv {
    const char *m;
    struct buf *out;
    char *err;
    size_t errsz;
};

static bool is_8bit(unsigned char ch)
{
    return ch >= 0x80 || ch == 0;
}

/* Offset of the first 8-bit octet in m[s..e), or e. */
static size_t find_8bit(const char *m, size_t s, size_t e)
{
    const unsigned char *p = (const unsigned char *)m;
    while (s < e && !is_8bit(p[s]))
        s++;
    return s;
}

bool mime_has_8bit(const char *msg, size_t n)
{
    return find_8bit(msg, 0, n) < n;
}

__attribute__((format(printf, 2, 3)))
static void set_err(struct conv *c, const char *fmt, ...)
{
    va_list ap;
    if (c->err == NULL || c->errsz == 0)
        return;
    va_start(ap, fmt);
    (void)vsnprintf(c->err, c->errsz, fmt, ap);
    va_end(ap);
}

static enum mime_result emit(struct conv *c, const void *p, size_t n)
{
    if (buf_append(c->out, p, n) == -1) {
        set_err(c, "the converted message is larger than the size limit");
        return MIME_TOO_BIG;
    }
    return MIME_OK;
}

/* Copy m[s..e) to the output. */
static enum mime_result copy(struct conv *c, size_t s, size_t e)
{
    return emit(c, c->m + s, e - s);
}

/* ---- encoders ---- */

static const char hexdig[] = "0123456789ABCDEF";

/*
 * Quoted-printable (RFC 2045 6.7) of m[s..e), LF as hard line break. Literal: '!'..'~'
 * except '='; SP and HT unless last on a line. Everything else is =XX. No output line
 * starts with "--" (the first '-' is written =2D): the input had no delimiter line here,
 * and neither encoding ("--=E9..." could match a boundary "=E9...") nor a soft break may
 * make one.
 */
static enum mime_result enc_qp(struct conv *c, size_t s, size_t e)
{
    const unsigned char *p = (const unsigned char *)c->m;
    char line[QP_LINE_MAX + 2];
    size_t col = 0;
    enum mime_result r;

    for (size_t i = s; i < e; i++) {
        unsigned char ch = p[i];
        if (ch == '\n') {
            line[col++] = '\n';
            if ((r = emit(c, line, col)) != MIME_OK)
                return r;
            col = 0;
            continue;
        }
        bool last = i + 1 == e || p[i + 1] == '\n';
        bool dashes = ch == '-' && !last && p[i + 1] == '-';
        bool lit = (ch > ' ' && ch < 0x7f && ch != '=') ||
            ((ch == ' ' || ch == '\t') && !last);
        if (col == 0 && dashes)
            lit = false;
        /* a line that goes on needs room for its '=' */
        if (col + (lit ? 1 : 3) > (last ? QP_LINE_MAX : QP_LINE_MAX - 1)) {
            line[col++] = '=';
            line[col++] = '\n';
            if ((r = emit(c, line, col)) != MIME_OK)
                return r;
            col = 0;
            if (dashes)
                lit = false;
        }
        if (lit) {
            line[col++] = (char)ch;
        } else {
            line[col++] = '=';
            line[col++] = hexdig[ch >> 4];
            line[col++] = hexdig[ch & 15];
        }
    }
    return emit(c, line, col);
}

/* Octets per base64 line: B64_LINE_MAX characters encode this many. */
#define B64_GROUP_MAX (B64_LINE_MAX / 4 * 3)

struct b64 {
    struct conv *c;
    unsigned char grp[B64_GROUP_MAX];
    size_t g;                   /* octets in grp */
    bool first;                 /* no line written yet */
    char line[1 + B64_LINE_MAX + 1];    /* line[0]: the LF that ends the previous line;
                                           + 1: the NUL b64_encode_block() writes */
};

/* Encode the octets in grp as one line (padded if it is the last) and emit it. */
static enum mime_result b64_flush(struct b64 *b)
{
    size_t skip = b->first ? 1 : 0, n;

    if (b->g == 0)
        return MIME_OK;
    n = b64_encode_block(b->line + 1, b->grp, b->g);
    b->g = 0;
    b->first = false;
    return emit(b->c, b->line + skip, n + 1 - skip);
}

static enum mime_result b64_put(struct b64 *b, unsigned char ch)
{
    b->grp[b->g++] = ch;
    return b->g == B64_GROUP_MAX ? b64_flush(b) : MIME_OK;
}

/*
 * Base64 (RFC 2045 6.8) of the wire form of m[s..e): each LF is encoded as CRLF. Lines are
 * separated by LF; the last one ends with LF only if the body did, so the encoding meets
 * what follows (a delimiter's LF, or the end of the message) the way the body did.
 */
static enum mime_result enc_b64(struct conv *c, size_t s, size_t e)
{
    struct b64 b;
    enum mime_result r;

    b.c = c;
    b.g = 0;
    b.first = true;
    b.line[0] = '\n';
    for (size_t i = s; i < e; i++) {
        unsigned char ch = (unsigned char)c->m[i];
        if (ch == '\n' && (r = b64_put(&b, '\r')) != MIME_OK)
            return r;
        if ((r = b64_put(&b, ch)) != MIME_OK)
            return r;
    }
    if ((r = b64_flush(&b)) != MIME_OK)
        return r;
    if (e > s && c->m[e - 1] == '\n')
        return emit(c, "\n", 1);
    return MIME_OK;
}

/* ---- the walk ---- */

static enum mime_result conv_entity(struct conv *c, size_t s, size_t e, unsigned depth,
    bool def_rfc822, bool is_msg);

/* Emit the header block and blank line, with the CTE field replaced by cte (NULL: as is). */
static enum mime_result emit_head(struct conv *c, const struct ent *en, const char *cte)
{
    enum mime_result r;

    if (cte == NULL)
        return copy(c, en->s, en->bstart);
    if (en->ncte > 0) {
        if ((r = copy(c, en->s, en->cte_s)) != MIME_OK)
            return r;
    } else if ((r = copy(c, en->s, en->hend)) != MIME_OK) {
        return r;
    }
    if ((r = emit(c, CTE_NAME, sizeof CTE_NAME - 1)) != MIME_OK ||
        (r = emit(c, cte, strlen(cte))) != MIME_OK || (r = emit(c, "\n", 1)) != MIME_OK)
        return r;
    if (en->ncte > 0 && (r = copy(c, en->cte_e, en->hend)) != MIME_OK)
        return r;
    return copy(c, en->hend, en->bstart);
}

/* Does the line m[ls..le) start with "--" boundary? *close: it is "--" boundary "--". */
static bool is_delim(const struct conv *c, const struct ent *en, size_t ls, size_t le,
    bool *close)
{
    const char *m = c->m;
    size_t bl = en->blen;

    if (le - ls < 2 + bl || m[ls] != '-' || m[ls + 1] != '-' ||
        memcmp(m + ls + 2, en->boundary, bl) != 0)
        return false;
    *close = le - ls >= 4 + bl && m[ls + 2 + bl] == '-' && m[ls + 3 + bl] == '-';
    return true;
}

/* Start of the next delimiter line at or after line start pos in [pos, e), or SIZE_MAX. */
static size_t next_delim(const struct conv *c, const struct ent *en, size_t pos, size_t e,
    size_t *le, bool *close)
{
    while (pos < e) {
        const char *lf = memchr(c->m + pos, '\n', e - pos);
        size_t end = lf ? (size_t)(lf - c->m) : e;
        if (is_delim(c, en, pos, end, close)) {
            *le = end;
            return pos;
        }
        pos = lf ? end + 1 : e;
    }
    return SIZE_MAX;
}

/* Copy m[s..e) (a preamble or an epilogue) unless it has 8-bit octets; then drop it. */
static enum mime_result copy_7bit(struct conv *c, size_t s, size_t e)
{
    if (find_8bit(c->m, s, e) < e)
        return MIME_OK;
    return copy(c, s, e);
}

/* Walk the body of multipart entity en, which has 8-bit content somewhere. */
static enum mime_result conv_multipart(struct conv *c, const struct ent *en, unsigned depth)
{
    size_t b = en->bstart, e = en->e, ls, le, copied;
    bool close;
    enum mime_result r;

    ls = next_delim(c, en, b, e, &le, &close);
    if (ls == SIZE_MAX) {
        set_err(c, "multipart entity at offset %zu has no boundary delimiter line", en->s);
        return MIME_BAD;
    }
    /* the LF before a delimiter belongs to the delimiter (RFC 2046 5.1.1) */
    if (ls > b && (r = copy_7bit(c, b, ls - 1)) != MIME_OK)
        return r;
    copied = ls > b ? ls - 1 : ls;
    for (;;) {
        size_t after = le < e ? le + 1 : e;
        if (find_8bit(c->m, ls, le) < le) {
            set_err(c, "8-bit octets on a boundary delimiter line at offset %zu", ls);
            return MIME_BAD;
        }
        if ((r = copy(c, copied, after)) != MIME_OK)
            return r;
        if (close)
            return copy_7bit(c, after, e);

        size_t nle = 0;
        bool nclose = false;
        size_t nls = next_delim(c, en, after, e, &nle, &nclose);
        /* no close delimiter: the part runs to the end of the entity */
        size_t pe = nls == SIZE_MAX ? e : nls > after ? nls - 1 : after;
        r = conv_entity(c, after, pe, depth + 1, en->digest, false);
        if (r != MIME_OK || nls == SIZE_MAX)
            return r;
        copied = pe;
        ls = nls;
        le = nle;
        close = nclose;
    }
}

/*
 * Convert entity m[s..e) at nesting depth depth (composite ancestors). def_rfc822: without
 * Content-Type it is a message/rfc822. is_msg: it is a whole message (needs MIME-Version).
 */
static enum mime_result conv_entity(struct conv *c, size_t s, size_t e, unsigned depth,
    bool def_rfc822, bool is_msg)
{
    struct ent en;
    const char *m = c->m;
    size_t bad;
    enum mime_result r;

    if (find_8bit(m, s, e) == e)
        return copy(c, s, e);

    mime_parse_head(&en, m, s, e);
    if ((bad = find_8bit(m, s, en.hend)) < en.hend) {
        set_err(c, "non-ASCII or NUL octet in %s header at offset %zu (headers cannot be "
            "converted to 7-bit)", s == 0 ? "the message" : is_msg ? "an embedded message"
            : "a MIME part", bad);
        return MIME_8BIT_HEADERS;
    }
    if (is_msg && !en.mime_version) {
        if (s == 0)
            set_err(c, "message has 8-bit content but is not MIME; the next hop does not "
                "accept 8-bit");
        else
            set_err(c, "embedded message at offset %zu has 8-bit content but is not MIME; "
                "the next hop does not accept 8-bit", s);
        return MIME_NOT_MIME;
    }
    if (en.nct > 1 || en.ncte > 1) {
        set_err(c, "entity at offset %zu has more than one %s field", s,
            en.nct > 1 ? "Content-Type" : "Content-Transfer-Encoding");
        return MIME_BAD;
    }
    en.kind = def_rfc822 ? K_RFC822 : K_TEXT;
    if (en.nct > 0)
        mime_parse_content_type(&en, m, en.ct_s, en.ct_e);
    en.cte = CTE_IDENTITY;
    if (en.ncte > 0)
        mime_parse_cte(&en, m, en.cte_vs, en.cte_ve);
    if (en.cte != CTE_IDENTITY) {
        set_err(c, "entity at offset %zu has 8-bit octets in a body that is already "
            "encoded (%s)", s, en.cte == CTE_QP ? "quoted-printable"
            : en.cte == CTE_BASE64 ? "base64" : "unknown encoding");
        return MIME_BAD;
    }

    switch (en.kind) {
    case K_TEXT:
        if ((r = emit_head(c, &en, "quoted-printable")) != MIME_OK)
            return r;
        return enc_qp(c, en.bstart, e);
    case K_BINARY:
        if ((r = emit_head(c, &en, "base64")) != MIME_OK)
            return r;
        return enc_b64(c, en.bstart, e);
    case K_MSG_OTHER:
        set_err(c, "entity at offset %zu is a message type that must be 7-bit but has "
            "8-bit content", s);
        return MIME_BAD;
    case K_MULTIPART:
    case K_RFC822:
        break;
    }

    if (depth >= MIME_MAX_DEPTH) {
        set_err(c, "MIME entities are nested more than %d deep", MIME_MAX_DEPTH);
        return MIME_TOO_DEEP;
    }
    if (en.kind == K_MULTIPART && (en.blen == 0 || en.bdup || en.blong)) {
        set_err(c, "multipart entity at offset %zu has %s boundary parameter", s,
            en.bdup ? "more than one" : en.blong ? "an overlong" : "no usable");
        return MIME_BAD;
    }
    if ((r = emit_head(c, &en, en.cte_rewrite ? "7bit" : NULL)) != MIME_OK)
        return r;
    if (en.kind == K_MULTIPART)
        return conv_multipart(c, &en, depth);
    return conv_entity(c, en.bstart, e, depth + 1, false, true);
}

enum mime_result mime_to_7bit(const char *msg, size_t n, struct buf *out, char *err,
    size_t errsz)
{
    struct conv c = { msg, out, err, errsz };
    size_t start = out->len;
    enum mime_result r;

    if (err != NULL && errsz > 0)
        err[0] = '\0';
    if (!mime_has_8bit(msg, n)) {
        set_err(&c, "message is already 7-bit");
        return MIME_UNCHANGED;
    }
    r = conv_entity(&c, 0, n, 0, false, true);
    if (r != MIME_OK)
        out->len = start;
    return r;
}

const char *mime_result_str(enum mime_result r)
{
    switch (r) {
    case MIME_OK:
        return "converted to 7-bit";
    case MIME_UNCHANGED:
        return "already 7-bit";
    case MIME_NOT_MIME:
        return "8-bit content in a message that is not MIME";
    case MIME_8BIT_HEADERS:
        return "8-bit octets in a header";
    case MIME_BAD:
        return "malformed MIME";
    case MIME_TOO_DEEP:
        return "MIME nesting too deep";
    case MIME_TOO_BIG:
        return "converted message too big";
    }
    return "unknown MIME result";
}
