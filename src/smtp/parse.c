/*
 * smtp/parse.c - SMTP command line, path and ESMTP parameter parsing.
 *
 * Owns:  the RFC 5321 4.1.2 grammar (verbs, paths, Mail-parameters), RFC 6531 UTF-8 in
 *        addresses, RFC 1870/6152/3030/3461/4954 parameters, xtext, and their error replies.
 * Never: does I/O, allocates, or keeps state; never reads past the length it is given.
 * Limits: smtp/limits.h (RFC 5321 4.5.3.1, RFC 3461 4.2 and 4.4).
 *
 * The scanners below all take (s, n, &i): they start at s[i], advance i past what they
 * accept, and check i < n before every read.
 */
#include "smtp/parse.h"

#include <arpa/inet.h>
#include <string.h>

#include "util/buf.h"
#include "util/str.h"

/* ---- verbs ---- */

static const struct {
    const char *name;
    enum smtp_verb verb;
} verbs[] = {
    { "HELO", SMTP_VERB_HELO }, { "EHLO", SMTP_VERB_EHLO }, { "MAIL", SMTP_VERB_MAIL },
    { "RCPT", SMTP_VERB_RCPT }, { "DATA", SMTP_VERB_DATA }, { "BDAT", SMTP_VERB_BDAT },
    { "RSET", SMTP_VERB_RSET }, { "NOOP", SMTP_VERB_NOOP }, { "QUIT", SMTP_VERB_QUIT },
    { "VRFY", SMTP_VERB_VRFY }, { "EXPN", SMTP_VERB_EXPN }, { "HELP", SMTP_VERB_HELP },
    { "SEND", SMTP_VERB_SEND }, { "SOML", SMTP_VERB_SOML }, { "SAML", SMTP_VERB_SAML },
    { "TURN", SMTP_VERB_TURN }, { "STARTTLS", SMTP_VERB_STARTTLS },
    { "AUTH", SMTP_VERB_AUTH }, { "ETRN", SMTP_VERB_ETRN },
    /* HTTP request lines: a proxy or browser talking to us (cross-protocol attacks) */
    { "GET", SMTP_VERB_HTTP }, { "POST", SMTP_VERB_HTTP }, { "HEAD", SMTP_VERB_HTTP },
    { "PUT", SMTP_VERB_HTTP }, { "CONNECT", SMTP_VERB_HTTP }, { "OPTIONS", SMTP_VERB_HTTP },
    { "DELETE", SMTP_VERB_HTTP }, { "TRACE", SMTP_VERB_HTTP }, { "PATCH", SMTP_VERB_HTTP },
};

int smtp_parse_cmd(const char *line, size_t len, struct smtp_cmd *cmd)
{
    size_t vlen = 0;
    while (vlen < len && line[vlen] != ' ')
        vlen++;

    cmd->verb = SMTP_VERB_UNKNOWN;
    for (size_t k = 0; k < sizeof verbs / sizeof verbs[0]; k++) {
        if (vlen > 0 && str_ieq(line, vlen, verbs[k].name)) {
            cmd->verb = verbs[k].verb;
            break;
        }
    }

    /* One or more SP between the verb and its argument (RFC 821 4.1.2, seed 003), as
     * Postfix and sendmail accept. */
    size_t a = vlen;
    while (a < len && line[a] == ' ')
        a++;
    size_t e = len;
    while (e > a && line[e - 1] == ' ')
        e--;
    cmd->arg = line == NULL ? line : line + a;
    cmd->arglen = e - a;
    return 0;
}

/* ---- character classes ---- */

static bool is_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(unsigned char c)
{
    return is_alpha(c) || is_digit(c);
}

/* RFC 5322 atext, ASCII part */
static bool is_atext(unsigned char c)
{
    return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* RFC 5321 dcontent: %d33-90 / %d94-126 */
static bool is_dcontent(unsigned char c)
{
    return (c >= 33 && c <= 90) || (c >= 94 && c <= 126);
}

/* RFC 5321 esmtp-value octet: %d33-60 / %d62-126 */
static bool is_vchar(unsigned char c)
{
    return (c >= 33 && c <= 60) || (c >= 62 && c <= 126);
}

static bool is_uhex(unsigned char c)
{
    return is_digit(c) || (c >= 'A' && c <= 'F');
}

static unsigned hexval(unsigned char c)
{
    return is_digit(c) ? (unsigned)(c - '0') : (unsigned)(c - 'A' + 10);
}

/* ---- UTF-8 ---- */

/* Length (1-4) of the valid UTF-8 sequence at s (n > 0 bytes available), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0], cp, min;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

bool smtp_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(u + i, n - i);
        if (k == 0)
            return false;
        i += k;
    }
    return true;
}

/* At a non-ASCII octet s[*i]: take one UTF-8 character if allowed and valid. */
static enum smtp_perr take_utf8(const char *s, size_t n, size_t *i, bool utf8_ok)
{
    if (!utf8_ok)
        return SMTP_PERR_NEED_UTF8;
    size_t k = utf8_seq((const unsigned char *)s + *i, n - *i);
    if (k == 0)
        return SMTP_PERR_BAD_UTF8;
    *i += k;
    return SMTP_PERR_OK;
}

/* ---- scanners ---- */

/* Dot-string = Atom *("." Atom); with utf8_ok, UTF-8 characters count as atext. */
static enum smtp_perr scan_dot_string(const char *s, size_t n, size_t *i, bool utf8_ok,
    bool *utf8)
{
    for (;;) {
        size_t start = *i;
        while (*i < n) {
            unsigned char c = (unsigned char)s[*i];
            if (is_atext(c)) {
                (*i)++;
            } else if (c >= 0x80) {
                enum smtp_perr r = take_utf8(s, n, i, utf8_ok);
                if (r != SMTP_PERR_OK)
                    return r;
                *utf8 = true;
            } else {
                break;
            }
        }
        if (*i == start)
            return SMTP_PERR_PATH_SYNTAX;   /* empty atom: leading, trailing or double dot */
        if (*i < n && s[*i] == '.') {
            (*i)++;
            continue;
        }
        return SMTP_PERR_OK;
    }
}

/* Quoted-string = DQUOTE *(qtextSMTP / quoted-pairSMTP) DQUOTE, at the opening quote. */
static enum smtp_perr scan_quoted(const char *s, size_t n, size_t *i, bool utf8_ok, bool *utf8)
{
    (*i)++;
    for (;;) {
        if (*i >= n)
            return SMTP_PERR_PATH_SYNTAX;
        unsigned char c = (unsigned char)s[*i];
        if (c == '"') {
            (*i)++;
            return SMTP_PERR_OK;
        }
        if (c == '\\') {
            /* quoted-pairSMTP = %d92 %d32-126; RFC 6531 does not extend it */
            if (*i + 1 >= n)
                return SMTP_PERR_PATH_SYNTAX;
            unsigned char d = (unsigned char)s[*i + 1];
            if (d < 32 || d > 126)
                return SMTP_PERR_PATH_SYNTAX;
            *i += 2;
        } else if (c >= 0x80) {
            enum smtp_perr r = take_utf8(s, n, i, utf8_ok);
            if (r != SMTP_PERR_OK)
                return r;
            *utf8 = true;
        } else if (c >= 32 && c <= 126) {
            (*i)++;
        } else {
            return SMTP_PERR_PATH_SYNTAX;
        }
    }
}

/*
 * Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str]. A UTF-8 character
 * counts as a letter (U-label) when utf8_ok. helo: '_' is allowed anywhere in a label.
 * Stops at the first octet that cannot continue the domain.
 */
static enum smtp_perr scan_domain(const char *s, size_t n, size_t *i, bool utf8_ok, bool helo,
    bool *utf8)
{
    for (;;) {
        size_t start = *i;
        bool hyphen_last = false;
        while (*i < n) {
            unsigned char c = (unsigned char)s[*i];
            if (is_alnum(c) || (helo && c == '_')) {
                hyphen_last = false;
                (*i)++;
            } else if (c == '-' && *i > start) {
                hyphen_last = true;
                (*i)++;
            } else if (c >= 0x80) {
                enum smtp_perr r = take_utf8(s, n, i, utf8_ok);
                if (r != SMTP_PERR_OK)
                    return r;
                *utf8 = true;
                hyphen_last = false;
            } else {
                break;
            }
        }
        if (*i == start || hyphen_last)
            return SMTP_PERR_PATH_SYNTAX;
        if (*i < n && s[*i] == '.') {
            (*i)++;
            continue;               /* a trailing dot fails on the empty label */
        }
        return SMTP_PERR_OK;
    }
}

/* IPv4-address-literal = Snum 3("." Snum), Snum = 1*3DIGIT with value 0-255 */
static bool ipv4_valid(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0) {
            if (i >= n || s[i] != '.')
                return false;
            i++;
        }
        unsigned v = 0;
        size_t digits = 0;
        while (i < n && is_digit((unsigned char)s[i]) && digits < 3) {
            v = v * 10 + (unsigned)(s[i] - '0');
            i++;
            digits++;
        }
        if (digits == 0 || v > 255)
            return false;
    }
    return i == n;
}

/* Ldh-str used as a Standardized-tag: Let-dig *(ALPHA / DIGIT / "-") Let-dig-at-end */
static bool tag_valid(const char *s, size_t n)
{
    if (n == 0 || !is_alnum((unsigned char)s[0]) || !is_alnum((unsigned char)s[n - 1]))
        return false;
    for (size_t k = 0; k < n; k++) {
        if (!is_alnum((unsigned char)s[k]) && s[k] != '-')
            return false;
    }
    return true;
}

/* address-literal = "[" ( IPv4 / "IPv6:" IPv6 / General-address-literal ) "]" */
static enum smtp_perr scan_literal(const char *s, size_t n, size_t *i)
{
    size_t start = *i + 1, j = start;
    while (j < n && s[j] != ']') {
        if (!is_dcontent((unsigned char)s[j]))
            return SMTP_PERR_PATH_SYNTAX;
        j++;
    }
    if (j >= n || j == start)
        return SMTP_PERR_PATH_SYNTAX;

    const char *c = s + start;
    size_t cn = j - start;
    const char *colon = memchr(c, ':', cn);
    if (colon == NULL) {
        if (!ipv4_valid(c, cn))
            return SMTP_PERR_PATH_SYNTAX;
    } else {
        size_t tn = (size_t)(colon - c);
        size_t rn = cn - tn - 1;
        if (!tag_valid(c, tn) || rn == 0)
            return SMTP_PERR_PATH_SYNTAX;
        if (str_ieq(c, tn, "IPv6")) {
            char a6[64];
            unsigned char bin[16];
            if (str_ncopy(a6, sizeof a6, colon + 1, rn) == -1
                || inet_pton(AF_INET6, a6, bin) != 1)
                return SMTP_PERR_PATH_SYNTAX;
        }
        /* any other tag: General-address-literal, dcontent already checked */
    }
    *i = j + 1;
    return SMTP_PERR_OK;
}

/* Whether the n bytes at s form a Dot-string (non-ASCII counts as atext). */
static bool is_dot_string(const char *s, size_t n)
{
    bool need_atom = true;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c == '.') {
            if (need_atom)
                return false;
            need_atom = true;
        } else if (is_atext(c) || c >= 0x80) {
            need_atom = false;
        } else {
            return false;
        }
    }
    return !need_atom;
}

/* Append n bytes to dst (size dsz, used *o), keeping room for the terminator. */
static int put(char *dst, size_t dsz, size_t *o, const char *s, size_t n)
{
    if (n >= dsz - *o)
        return -1;
    memcpy(dst + *o, s, n);
    *o += n;
    dst[*o] = '\0';
    return 0;
}

/* Fill p->local (decoded) from the raw local part, and p->addr as canonical text. */
static int build_addr(struct smtp_path *p, const char *raw, size_t rn, const char *dom,
    size_t dn)
{
    size_t o = 0;
    if (rn > 0 && raw[0] == '"') {
        for (size_t k = 1; k + 1 < rn; k++) {
            if (raw[k] == '\\')
                k++;
            if (put(p->local, sizeof p->local, &o, raw + k, 1) == -1)
                return -1;
        }
    } else if (put(p->local, sizeof p->local, &o, raw, rn) == -1) {
        return -1;
    }

    size_t ln = o;
    o = 0;
    if (is_dot_string(p->local, ln)) {
        if (put(p->addr, sizeof p->addr, &o, p->local, ln) == -1)
            return -1;
    } else {
        if (put(p->addr, sizeof p->addr, &o, "\"", 1) == -1)
            return -1;
        for (size_t k = 0; k < ln; k++) {
            if ((p->local[k] == '"' || p->local[k] == '\\')
                && put(p->addr, sizeof p->addr, &o, "\\", 1) == -1)
                return -1;
            if (put(p->addr, sizeof p->addr, &o, p->local + k, 1) == -1)
                return -1;
        }
        if (put(p->addr, sizeof p->addr, &o, "\"", 1) == -1)
            return -1;
    }
    if (put(p->addr, sizeof p->addr, &o, "@", 1) == -1
        || put(p->addr, sizeof p->addr, &o, dom, dn) == -1)
        return -1;
    if (str_ncopy(p->domain, sizeof p->domain, dom, dn) == -1)
        return -1;
    return 0;
}

/* ---- paths ---- */

enum smtp_perr smtp_parse_path(const char *s, size_t n, bool is_reverse, bool utf8_ok,
    struct smtp_path *p, size_t *end)
{
    enum smtp_perr r;
    size_t i = 1;

    memset(p, 0, sizeof *p);
    *end = 0;
    if (n == 0 || s[0] != '<')
        return SMTP_PERR_SYNTAX;

    if (i < n && s[i] == '>') {
        if (!is_reverse)
            return SMTP_PERR_PATH_SYNTAX;
        p->null = true;
        *end = 2;
        return SMTP_PERR_OK;
    }

    /* A-d-l = At-domain *( "," At-domain ) ":" -- obsolete source route, ignored (C.3) */
    if (i < n && s[i] == '@') {
        for (;;) {
            i++;
            r = scan_domain(s, n, &i, utf8_ok, false, &p->utf8);
            if (r != SMTP_PERR_OK)
                return r;
            if (i + 1 < n && s[i] == ',' && s[i + 1] == '@') {
                i++;
                continue;
            }
            if (i < n && s[i] == ':') {
                i++;
                break;
            }
            return SMTP_PERR_PATH_SYNTAX;
        }
    }

    size_t lstart = i;
    if (i < n && s[i] == '"')
        r = scan_quoted(s, n, &i, utf8_ok, &p->utf8);
    else
        r = scan_dot_string(s, n, &i, utf8_ok, &p->utf8);
    if (r != SMTP_PERR_OK)
        return r;
    size_t lend = i;

    /* "<Postmaster>" without domain (RFC 5321 4.5.1): forward-path only */
    if (!is_reverse && i < n && s[i] == '>' && str_ieq(s + lstart, lend - lstart, "postmaster")) {
        if (i + 1 > SMTP_PATH_MAX)
            return SMTP_PERR_PATH_TOO_LONG;     /* only with a source route */
        p->postmaster = true;
        if (str_ncopy(p->local, sizeof p->local, s + lstart, lend - lstart) == -1
            || str_copy(p->addr, sizeof p->addr, "postmaster") == -1)
            return SMTP_PERR_PATH_SYNTAX;   /* cannot happen: 10 octets */
        *end = i + 1;
        return SMTP_PERR_OK;
    }

    if (i >= n || s[i] != '@')
        return SMTP_PERR_PATH_SYNTAX;
    i++;
    size_t dstart = i;
    if (i < n && s[i] == '[') {
        r = scan_literal(s, n, &i);
        p->literal = true;
    } else {
        r = scan_domain(s, n, &i, utf8_ok, false, &p->utf8);
    }
    if (r != SMTP_PERR_OK)
        return r;
    size_t dend = i;
    if (i >= n || s[i] != '>')
        return SMTP_PERR_PATH_SYNTAX;
    i++;

    if (lend - lstart > SMTP_LOCAL_MAX)
        return SMTP_PERR_LOCAL_TOO_LONG;
    if (dend - dstart > SMTP_DOMAIN_MAX)
        return SMTP_PERR_DOMAIN_TOO_LONG;
    if (i > SMTP_PATH_MAX)
        return SMTP_PERR_PATH_TOO_LONG;
    /* the limits above guarantee that everything fits */
    if (build_addr(p, s + lstart, lend - lstart, s + dstart, dend - dstart) == -1)
        return SMTP_PERR_PATH_TOO_LONG;
    *end = i;
    return SMTP_PERR_OK;
}

static bool domain_check(const char *s, size_t n, bool utf8_ok, bool helo)
{
    size_t i = 0;
    bool utf8 = false;
    if (n == 0 || n > SMTP_DOMAIN_MAX)
        return false;
    if (s[0] == '[') {
        if (scan_literal(s, n, &i) != SMTP_PERR_OK)
            return false;
    } else if (scan_domain(s, n, &i, utf8_ok, helo, &utf8) != SMTP_PERR_OK) {
        return false;
    }
    return i == n;
}

bool smtp_domain_valid(const char *s, size_t n, bool utf8_ok)
{
    return domain_check(s, n, utf8_ok, false);
}

bool smtp_helo_valid(const char *s, size_t n)
{
    return domain_check(s, n, true, true);
}

/* ---- xtext ---- */

int smtp_xtext_decode(const char *s, size_t n, char *out, size_t osz, size_t *outlen)
{
    size_t o = 0;
    if (osz == 0)
        return -1;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            if (n - i < 3 || !is_uhex((unsigned char)s[i + 1])
                || !is_uhex((unsigned char)s[i + 2]))
                return -1;
            c = (unsigned char)(hexval((unsigned char)s[i + 1]) << 4
                | hexval((unsigned char)s[i + 2]));
            i += 3;
        } else if (c < 33 || c > 126 || c == '=') {
            return -1;
        } else {
            i++;
        }
        if (o + 1 >= osz)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    if (outlen != NULL)
        *outlen = o;
    return 0;
}

int smtp_xtext_encode(const char *s, size_t n, struct buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t mark = out->len;
    size_t run = 0;             /* start of the pending run of plain octets */

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 33 && c <= 126 && c != '+' && c != '=')
            continue;
        char h[3] = { '+', hex[c >> 4], hex[c & 15] };
        if (buf_append(out, s + run, i - run) == -1 || buf_append(out, h, 3) == -1)
            goto fail;
        run = i + 1;
    }
    if (buf_append(out, s + run, n - run) == -1)
        goto fail;
    return 0;
fail:
    out->len = mark;
    return -1;
}

/* ---- ESMTP parameters ---- */

static bool value_ok(const char *v, size_t vn)
{
    if (vn == 0)
        return false;
    for (size_t k = 0; k < vn; k++) {
        if (!is_vchar((unsigned char)v[k]))
            return false;
    }
    return true;
}

/* Every octet printable ASCII (32-126), and at least one. */
static bool printable(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t k = 0; k < n; k++) {
        if (s[k] < 32 || s[k] > 126)
            return false;
    }
    return true;
}

struct param {
    const char *key, *val;
    size_t keylen, vallen;
    bool has_val;
};

/* A parameter's handler: SMTP_PERR_OK or SMTP_PERR_PARAM_VALUE. */
typedef enum smtp_perr (*param_fn)(const struct param *, void *ctx);

struct param_def {
    const char *name;
    param_fn fn;
};

/*
 * Parse " KEY[=VALUE]"... after a path: each parameter is preceded by one or more SP;
 * trailing SPs are allowed. Errors: bad structure or a control octet SYNTAX, unknown
 * keyword PARAM_UNKNOWN, repeated keyword PARAM_DUP, then what the handler says.
 */
static enum smtp_perr parse_params(const char *s, size_t n, const struct param_def *defs,
    size_t ndefs, void *ctx)
{
    unsigned seen = 0;
    size_t i = 0;

    while (i < n) {
        if (s[i] != ' ')
            return SMTP_PERR_SYNTAX;
        while (i < n && s[i] == ' ')
            i++;
        if (i == n)
            break;
        size_t t = i;
        while (i < n && s[i] != ' ') {
            unsigned char c = (unsigned char)s[i];
            if (c < 32 || c == 127)
                return SMTP_PERR_SYNTAX;    /* NUL, TAB, other controls: never a value */
            i++;
        }

        struct param pa = { .key = s + t };
        const char *eq = memchr(s + t, '=', i - t);
        pa.keylen = eq != NULL ? (size_t)(eq - (s + t)) : i - t;
        if (eq != NULL) {
            pa.has_val = true;
            pa.val = eq + 1;
            pa.vallen = (size_t)(s + i - pa.val);
        }
        /* esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
        if (pa.keylen == 0 || !is_alnum((unsigned char)pa.key[0]))
            return SMTP_PERR_SYNTAX;
        for (size_t k = 1; k < pa.keylen; k++) {
            if (!is_alnum((unsigned char)pa.key[k]) && pa.key[k] != '-')
                return SMTP_PERR_SYNTAX;
        }

        size_t d;
        for (d = 0; d < ndefs; d++) {
            if (str_ieq(pa.key, pa.keylen, defs[d].name))
                break;
        }
        if (d == ndefs)
            return SMTP_PERR_PARAM_UNKNOWN;
        if (seen & (1u << d))
            return SMTP_PERR_PARAM_DUP;
        seen |= 1u << d;
        enum smtp_perr r = defs[d].fn(&pa, ctx);
        if (r != SMTP_PERR_OK)
            return r;
    }
    return SMTP_PERR_OK;
}

static enum smtp_perr mail_size(const struct param *pa, void *ctx)
{
    struct smtp_mail_args *m = ctx;
    if (!pa->has_val || str_to_u64(pa->val, pa->vallen, &m->size) == -1)
        return SMTP_PERR_PARAM_VALUE;
    m->has_size = true;
    return SMTP_PERR_OK;
}

static enum smtp_perr mail_body(const struct param *pa, void *ctx)
{
    struct smtp_mail_args *m = ctx;
    if (!pa->has_val)
        return SMTP_PERR_PARAM_VALUE;
    if (str_ieq(pa->val, pa->vallen, "7BIT"))
        m->body = SMTP_BODY_7BIT;
    else if (str_ieq(pa->val, pa->vallen, "8BITMIME"))
        m->body = SMTP_BODY_8BITMIME;
    else if (str_ieq(pa->val, pa->vallen, "BINARYMIME"))
        m->body = SMTP_BODY_BINARYMIME;
    else
        return SMTP_PERR_PARAM_VALUE;
    return SMTP_PERR_OK;
}

static enum smtp_perr mail_ret(const struct param *pa, void *ctx)
{
    struct smtp_mail_args *m = ctx;
    if (!pa->has_val)
        return SMTP_PERR_PARAM_VALUE;
    if (str_ieq(pa->val, pa->vallen, "FULL"))
        m->ret = SMTP_RET_FULL;
    else if (str_ieq(pa->val, pa->vallen, "HDRS"))
        m->ret = SMTP_RET_HDRS;
    else
        return SMTP_PERR_PARAM_VALUE;
    return SMTP_PERR_OK;
}

static enum smtp_perr mail_envid(const struct param *pa, void *ctx)
{
    struct smtp_mail_args *m = ctx;
    size_t dn;
    if (!pa->has_val || !value_ok(pa->val, pa->vallen)
        || smtp_xtext_decode(pa->val, pa->vallen, m->envid, sizeof m->envid, &dn) == -1
        || !printable(m->envid, dn)) {
        m->envid[0] = '\0';
        return SMTP_PERR_PARAM_VALUE;
    }
    m->has_envid = true;
    return SMTP_PERR_OK;
}

static enum smtp_perr mail_smtputf8(const struct param *pa, void *ctx)
{
    struct smtp_mail_args *m = ctx;
    if (pa->has_val)
        return SMTP_PERR_PARAM_VALUE;
    m->smtputf8 = true;
    return SMTP_PERR_OK;
}

static enum smtp_perr mail_auth(const struct param *pa, void *ctx)
{
    struct smtp_mail_args *m = ctx;
    size_t dn;
    if (!pa->has_val || !value_ok(pa->val, pa->vallen))
        return SMTP_PERR_PARAM_VALUE;
    if (pa->vallen == 2 && memcmp(pa->val, "<>", 2) == 0) {
        if (str_copy(m->auth, sizeof m->auth, "<>") == -1)
            return SMTP_PERR_PARAM_VALUE;
        m->has_auth = true;
        return SMTP_PERR_OK;
    }
    if (smtp_xtext_decode(pa->val, pa->vallen, m->auth, sizeof m->auth, &dn) == -1)
        goto bad;
    /* an addr-spec: no controls; UTF-8 (RFC 6531) allowed when well-formed */
    for (size_t k = 0; k < dn; k++) {
        unsigned char c = (unsigned char)m->auth[k];
        if (c < 32 || c == 127)
            goto bad;
    }
    if (!smtp_utf8_valid(m->auth, dn))
        goto bad;
    m->has_auth = true;
    return SMTP_PERR_OK;
bad:
    m->auth[0] = '\0';
    return SMTP_PERR_PARAM_VALUE;
}

static const struct param_def mail_params[] = {
    { "SIZE", mail_size }, { "BODY", mail_body }, { "RET", mail_ret },
    { "ENVID", mail_envid }, { "SMTPUTF8", mail_smtputf8 }, { "AUTH", mail_auth },
};

enum smtp_perr smtp_parse_mail(const char *arg, size_t n, struct smtp_mail_args *out)
{
    size_t i = 5, used;

    memset(out, 0, sizeof *out);
    if (n < 5 || !str_ieq(arg, 5, "FROM:"))
        return SMTP_PERR_SYNTAX;
    if (i < n && arg[i] == ' ')
        i++;
    /* SMTPUTF8 comes after the path: accept UTF-8 here and check once it is known */
    enum smtp_perr r = smtp_parse_path(arg + i, n - i, true, true, &out->path, &used);
    if (r != SMTP_PERR_OK)
        return r;
    i += used;
    r = parse_params(arg + i, n - i, mail_params, sizeof mail_params / sizeof mail_params[0],
        out);
    if (r != SMTP_PERR_OK)
        return r;
    if (out->path.utf8 && !out->smtputf8)
        return SMTP_PERR_NEED_UTF8;
    return SMTP_PERR_OK;
}

struct rcpt_ctx {
    struct smtp_rcpt_args *out;
    bool utf8_ok;
};

static enum smtp_perr rcpt_notify(const struct param *pa, void *ctx)
{
    struct smtp_rcpt_args *a = ((struct rcpt_ctx *)ctx)->out;
    static const struct {
        const char *name;
        unsigned bit;
    } kw[] = {
        { "NEVER", SMTP_NOTIFY_NEVER }, { "SUCCESS", SMTP_NOTIFY_SUCCESS },
        { "FAILURE", SMTP_NOTIFY_FAILURE }, { "DELAY", SMTP_NOTIFY_DELAY },
    };
    unsigned bits = 0;
    size_t i = 0;

    if (!pa->has_val)
        return SMTP_PERR_PARAM_VALUE;
    for (;;) {
        size_t t = i;
        while (i < pa->vallen && pa->val[i] != ',')
            i++;
        size_t k;
        for (k = 0; k < sizeof kw / sizeof kw[0]; k++) {
            if (str_ieq(pa->val + t, i - t, kw[k].name))
                break;
        }
        if (k == sizeof kw / sizeof kw[0] || (bits & kw[k].bit))
            return SMTP_PERR_PARAM_VALUE;
        bits |= kw[k].bit;
        if (i == pa->vallen)
            break;
        i++;                    /* the comma; an empty item after it fails above */
    }
    if ((bits & SMTP_NOTIFY_NEVER) && bits != SMTP_NOTIFY_NEVER)
        return SMTP_PERR_PARAM_VALUE;
    a->notify = bits;
    return SMTP_PERR_OK;
}

/* RFC 822 atom octet: printable ASCII except specials and SP */
static bool is_atom_char(unsigned char c)
{
    return c > 32 && c < 127 && strchr("()<>@,;:\\\".[]", c) == NULL;
}

static enum smtp_perr rcpt_orcpt(const struct param *pa, void *ctx)
{
    struct rcpt_ctx *rc = ctx;
    struct smtp_rcpt_args *a = rc->out;
    size_t dn;

    if (!pa->has_val || pa->vallen > SMTP_ORCPT_MAX)
        return SMTP_PERR_PARAM_VALUE;
    const char *semi = memchr(pa->val, ';', pa->vallen);
    if (semi == NULL)
        return SMTP_PERR_PARAM_VALUE;
    size_t tn = (size_t)(semi - pa->val);
    const char *x = semi + 1;
    size_t xn = pa->vallen - tn - 1;
    if (tn == 0 || tn >= sizeof a->orcpt_type || xn == 0)
        return SMTP_PERR_PARAM_VALUE;
    for (size_t k = 0; k < tn; k++) {
        if (!is_atom_char((unsigned char)pa->val[k]))
            return SMTP_PERR_PARAM_VALUE;
    }

    if (str_ieq(pa->val, tn, "utf-8")) {
        /* RFC 6533 utf-8-address: kept as given; raw UTF-8 only under SMTPUTF8 */
        for (size_t k = 0; k < xn; k++) {
            unsigned char c = (unsigned char)x[k];
            if (c >= 0x80 ? !rc->utf8_ok : !is_vchar(c))
                return SMTP_PERR_PARAM_VALUE;
        }
        if (!smtp_utf8_valid(x, xn) || str_ncopy(a->orcpt, sizeof a->orcpt, x, xn) == -1)
            return SMTP_PERR_PARAM_VALUE;
    } else {
        if (!value_ok(x, xn)
            || smtp_xtext_decode(x, xn, a->orcpt, sizeof a->orcpt, &dn) == -1
            || !printable(a->orcpt, dn)) {
            a->orcpt[0] = '\0';
            return SMTP_PERR_PARAM_VALUE;
        }
    }
    if (str_ncopy(a->orcpt_type, sizeof a->orcpt_type, pa->val, tn) == -1)
        return SMTP_PERR_PARAM_VALUE;
    a->has_orcpt = true;
    return SMTP_PERR_OK;
}

static const struct param_def rcpt_params[] = {
    { "NOTIFY", rcpt_notify }, { "ORCPT", rcpt_orcpt },
};

enum smtp_perr smtp_parse_rcpt(const char *arg, size_t n, bool utf8_ok,
    struct smtp_rcpt_args *out)
{
    size_t i = 3, used;

    memset(out, 0, sizeof *out);
    if (n < 3 || !str_ieq(arg, 3, "TO:"))
        return SMTP_PERR_SYNTAX;
    if (i < n && arg[i] == ' ')
        i++;
    enum smtp_perr r = smtp_parse_path(arg + i, n - i, false, utf8_ok, &out->path, &used);
    if (r != SMTP_PERR_OK)
        return r;
    i += used;
    struct rcpt_ctx rc = { out, utf8_ok };
    return parse_params(arg + i, n - i, rcpt_params, sizeof rcpt_params / sizeof rcpt_params[0],
        &rc);
}

/* ---- replies ---- */

const char *smtp_perr_reply(enum smtp_perr e, bool is_rcpt)
{
    switch (e) {
    case SMTP_PERR_OK:
        return is_rcpt ? "250 2.1.5 Ok" : "250 2.1.0 Ok";
    case SMTP_PERR_SYNTAX:
        return is_rcpt ? "501 5.5.4 Syntax: RCPT TO:<address>"
                       : "501 5.5.4 Syntax: MAIL FROM:<address>";
    case SMTP_PERR_PATH_SYNTAX:
        return is_rcpt ? "501 5.1.3 Bad recipient address syntax"
                       : "501 5.1.7 Bad sender address syntax";
    case SMTP_PERR_LOCAL_TOO_LONG:
        return is_rcpt ? "501 5.1.3 Recipient local part too long (max 64 octets)"
                       : "501 5.1.7 Sender local part too long (max 64 octets)";
    case SMTP_PERR_DOMAIN_TOO_LONG:
        return is_rcpt ? "501 5.1.3 Recipient domain too long (max 255 octets)"
                       : "501 5.1.7 Sender domain too long (max 255 octets)";
    case SMTP_PERR_PATH_TOO_LONG:
        return is_rcpt ? "501 5.1.3 Recipient path too long (max 256 octets)"
                       : "501 5.1.7 Sender path too long (max 256 octets)";
    case SMTP_PERR_NEED_UTF8:
        return is_rcpt ? "553 5.6.7 Recipient address needs SMTPUTF8"
                       : "553 5.6.7 Sender address needs SMTPUTF8";
    case SMTP_PERR_BAD_UTF8:
        return "501 5.6.7 Invalid UTF-8 in address";
    case SMTP_PERR_PARAM_UNKNOWN:
        return "555 5.5.4 Unsupported parameter";
    case SMTP_PERR_PARAM_VALUE:
        return "501 5.5.4 Invalid parameter value";
    case SMTP_PERR_PARAM_DUP:
        return "501 5.5.4 Duplicate parameter";
    }
    return "501 5.5.4 Syntax error";
}
