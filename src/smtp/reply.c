/*
 * smtp/reply.c - incremental parser for SMTP server replies.
 *
 * Owns:  Reply-line grammar (RFC 5321 4.2), enhanced codes (RFC 2034/3463), reply_format().
 * Never: does I/O; the parser works one octet at a time, so where the input is split does
 *        not matter.
 * Limits: REPLY_LINE_MAX, REPLY_LINES_MAX, REPLY_TEXT_MAX (smtp/reply.h).
 */
#include "smtp/reply.h"

#include <string.h>

#include "util/str.h"

static void reply_reset(struct smtp_reply *r)
{
    r->code = 0;
    r->enh[0] = '\0';
    buf_init(&r->text, REPLY_TEXT_MAX);
    r->nlines = 0;
}

void reply_parser_init(struct reply_parser *p)
{
    reply_reset(&p->cur);
    p->len = 0;
    p->cr = false;
    p->failed = false;
    p->err[0] = '\0';
}

void reply_parser_free(struct reply_parser *p)
{
    buf_free(&p->cur.text);
    p->cur.nlines = 0;
    p->len = 0;
}

void reply_free(struct smtp_reply *r)
{
    buf_free(&r->text);
    reply_reset(r);
}

static size_t fail(struct reply_parser *p, const char *why)
{
    p->failed = true;
    (void)str_copy(p->err, sizeof p->err, why);
    reply_parser_free(p);
    return (size_t)-1;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* 1 to 3 digits at s[*i] (i < n); advances *i. */
static bool digits13(const char *s, size_t n, size_t *i)
{
    size_t k = 0;
    while (*i < n && is_digit(s[*i]) && k < 4) {
        (*i)++;
        k++;
    }
    return k >= 1 && k <= 3;
}

/*
 * Length of the enhanced status code at the start of s (n octets) whose class is cls, or 0
 * when there is none: class "." subject "." detail, followed by SP or the end.
 */
static size_t enh_len(const char *s, size_t n, int cls)
{
    size_t i;
    /* RFC 3463 2: the classes are 2, 4 and 5 only */
    if ((cls != 2 && cls != 4 && cls != 5) || n < 5 || s[0] != (char)('0' + cls) || s[1] != '.')
        return 0;
    i = 2;
    if (!digits13(s, n, &i) || i >= n || s[i] != '.')
        return 0;
    i++;
    if (i >= n || !digits13(s, n, &i))
        return 0;
    if (i < n && s[i] != ' ')
        return 0;
    return i;
}

/* One complete line (without its end) is in p->line. Returns 1 when the reply is complete,
 * 0 when more lines follow, -1 on error (p->err set). */
static int end_line(struct reply_parser *p)
{
    const char *l = p->line;
    size_t n = p->len;
    bool last;

    if (n < 3 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '5' || !is_digit(l[2])) {
        (void)fail(p, "malformed reply code");
        return -1;
    }
    if (n == 3 || l[3] == ' ') {
        last = true;
    } else if (l[3] == '-') {
        last = false;
    } else {
        (void)fail(p, "malformed reply line");
        return -1;
    }
    int code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
    if (p->cur.nlines == 0) {
        p->cur.code = code;
    } else if (code != p->cur.code) {
        (void)fail(p, "mixed reply codes in a multi-line reply");
        return -1;
    }
    if (p->cur.nlines >= REPLY_LINES_MAX) {
        (void)fail(p, "too many lines in a reply");
        return -1;
    }

    const char *t = n > 4 ? l + 4 : l + n;
    size_t tn = n > 4 ? n - 4 : 0;
    size_t e = enh_len(t, tn, code / 100);
    if (e > 0) {
        if (p->cur.enh[0] == '\0')
            (void)str_ncopy(p->cur.enh, sizeof p->cur.enh, t, e);
        while (e < tn && t[e] == ' ')
            e++;
        t += e;
        tn -= e;
    }
    if ((p->cur.nlines > 0 && buf_append(&p->cur.text, "\n", 1) == -1)
        || buf_append(&p->cur.text, t, tn) == -1) {
        (void)fail(p, "reply text too long");
        return -1;
    }
    p->cur.nlines++;
    p->len = 0;
    return last ? 1 : 0;
}

size_t reply_parse(struct reply_parser *p, const char *in, size_t n, struct smtp_reply *r,
    bool *done)
{
    *done = false;
    if (p->failed)
        return (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        bool eol = false;

        if (p->cr) {
            if (c != '\n')
                return fail(p, "bare CR in reply");
            p->cr = false;
            eol = true;
        } else if (c == '\r') {
            p->cr = true;
        } else if (c == '\n') {
            eol = true;         /* bare LF: accepted, see reply.h */
        } else if (c == '\0') {
            return fail(p, "NUL in reply");
        } else {
            /* room for the line end counts against the limit too */
            if (p->len + 2 >= REPLY_LINE_MAX)
                return fail(p, "reply line too long");
            p->line[p->len++] = c;
        }
        if (!eol)
            continue;
        int k = end_line(p);
        if (k == -1)
            return (size_t)-1;
        if (k == 1) {
            *r = p->cur;
            reply_reset(&p->cur);
            *done = true;
            return i + 1;
        }
    }
    return n;
}

void reply_format(const struct smtp_reply *r, char *out, size_t osz)
{
    if (osz == 0)
        return;
    size_t cap = osz - 1 < REPLY_FORMAT_MAX ? osz - 1 : REPLY_FORMAT_MAX;
    char head[32];
    size_t o = 0;
    int code = r->code >= 0 && r->code <= 999 ? r->code : 0;

    head[0] = (char)('0' + code / 100);
    head[1] = (char)('0' + code / 10 % 10);
    head[2] = (char)('0' + code % 10);
    size_t hn = 3;
    if (r->enh[0] != '\0') {
        head[hn++] = ' ';
        for (size_t k = 0; r->enh[k] != '\0' && k < sizeof r->enh && hn < sizeof head; k++) {
            unsigned char c = (unsigned char)r->enh[k];
            head[hn++] = c > 0x20 && c < 0x7f ? (char)c : '?';
        }
    }
    for (size_t k = 0; k < hn && o < cap; k++)
        out[o++] = head[k];
    if (r->text.len > 0 && o < cap)
        out[o++] = ' ';
    for (size_t k = 0; k < r->text.len && o < cap; k++) {
        unsigned char c = (unsigned char)r->text.p[k];
        if (c == '\n') {
            /* one SP between lines, not two when a line ends with SP or is empty */
            if (out[o - 1] != ' ')
                out[o++] = ' ';
        } else {
            out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
        }
    }
    out[o] = '\0';
}
