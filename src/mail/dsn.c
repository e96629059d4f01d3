/*
 * mail/dsn.c - delivery status notifications (RFC 3464, RFC 3461, RFC 6522, RFC 6533).
 *
 * Owns:  the report layout and wording, field folding, the escaping of peer strings, the
 *        choice of RET and of the MIME boundary.
 * Never: does I/O or reads the clock; every fact comes from struct dsn_msg.
 * Limits: lines <= 998 octets (RFC 5322 2.1.1); peer strings <= PEER_MAX octets; boundary
 *         <= 70 characters (RFC 2046 5.1.1).
 *
 * A report is built in two steps: the text and delivery-status parts go to scratch
 * buffers first, so that the boundary can be chosen to occur in none of the content
 * (a hostile reply cannot guess it into a part), then the message is written out.
 */
#include "mail/dsn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "smtp/parse.h"
#include "util/str.h"

#define LINE_OCTETS_MAX 998     /* RFC 5322 2.1.1, without the line end */
#define FOLD_AT 78              /* RFC 5322 2.1.1 SHOULD */
#define WRAP_AT 76              /* text part */
#define PEER_MAX 998            /* any one peer string, after escaping */
#define HOST_MAX 255            /* our own host name and similar tokens */
#define BOUNDARY_BASE_MAX 60    /* leaves room for ".HHHHHHHH" under 70 */
#define STATUS_SZ 10            /* "5.123.123" and its NUL */

/* An appender that remembers the first failure, so callers check once at the end. */
struct w {
    struct buf *b;
    int err;
};

static void w_put(struct w *w, const void *p, size_t n)
{
    if (w->err == 0 && buf_append(w->b, p, n) == -1)
        w->err = -1;
}

static void w_puts(struct w *w, const char *s)
{
    w_put(w, s, strlen(s));
}

static void w_printf(struct w *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void w_printf(struct w *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (w->err == 0 && buf_vprintf(w->b, fmt, ap) == -1)
        w->err = -1;
    va_end(ap);
}

struct ctx {
    const struct dsn_msg *m;
    bool global;                /* RFC 6533 types; well-formed UTF-8 is kept */
    bool full;                  /* return the whole message, not only its header block */
    size_t nfailed, ndelayed, nsuccess, nrelayed;
    struct buf v;               /* scratch for one field value or text line */
};

static bool has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80)
            return true;
    return false;
}

static bool str_8bit(const char *s)
{
    return s != NULL && has_8bit(s, strlen(s));
}

/* Controls and SP: what is trimmed from both ends of a peer string. */
static bool is_blank(unsigned char c)
{
    return c <= 0x20 || c == 0x7f;
}

enum clean { CLEAN_TEXT, CLEAN_ADDR };

/*
 * Append s (length n) to b made safe for a header field or a text line: CR, LF and the
 * other controls (C0, DEL, and C1 in UTF-8) become SP, blanks at both ends are dropped,
 * and at most cap octets are written, never splitting an escape or a UTF-8 character.
 * utf8: keep s's non-ASCII octets if s is well-formed UTF-8. Otherwise they become '?'
 * (CLEAN_TEXT) or xtext "+HH" (CLEAN_ADDR, RFC 3461 4).
 */
static void put_clean(struct w *w, const char *s, size_t n, size_t cap, enum clean how,
    bool utf8)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;
    size_t mark = w->b->len, used = 0;

    while (n > 0 && is_blank(u[0])) {
        u++;
        n--;
    }
    while (n > 0 && is_blank(u[n - 1]))
        n--;
    bool keep8 = utf8 && smtp_utf8_valid((const char *)u, n);
    for (size_t i = 0; i < n;) {
        char t[4];
        size_t tn = 1, adv = 1;
        unsigned char c = u[i];
        if (c < 0x80) {
            t[0] = c < 0x20 || c == 0x7f ? ' ' : (char)c;
        } else if (keep8) {
            adv = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (c == 0xc2 && u[i + 1] < 0xa0) {
                t[0] = ' ';     /* C1 control, e.g. U+0085 NEL */
            } else {
                memcpy(t, u + i, adv);
                tn = adv;
            }
        } else if (how == CLEAN_ADDR) {
            t[0] = '+';
            t[1] = hex[c >> 4];
            t[2] = hex[c & 15];
            tn = 3;
        } else {
            t[0] = '?';
        }
        if (tn > cap - used)
            break;
        w_put(w, t, tn);
        used += tn;
        i += adv;
    }
    /* a cut or a trailing C1 may leave blanks at the end */
    while (w->err == 0 && w->b->len > mark && w->b->p[w->b->len - 1] == ' ')
        w->b->len--;
}

/* As put_clean for a C string; NULL appends nothing. */
static void put_cleans(struct w *w, const char *s, size_t cap, enum clean how, bool utf8)
{
    if (s != NULL)
        put_clean(w, s, strlen(s), cap, how, utf8);
}

/*
 * Append s as a token: letters, digits and the octets in extra are kept, others become
 * '_'; at most cap octets; "" (or NULL) gives dflt. For our own names (host, queue id).
 */
static void put_token(struct w *w, const char *s, size_t cap, const char *extra,
    const char *dflt)
{
    size_t i = 0;
    for (; s != NULL && s[i] != '\0' && i < cap; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
            || strchr(extra, c) != NULL;
        w_put(w, ok ? &c : "_", 1);
    }
    if (i == 0)
        w_puts(w, dflt);
}

#define HOST_CHARS "-._[]:"
#define ATEXT_CHARS "!#$%&'*+-/=?^_`{|}~."

/* Append an RFC 5322 date-time in UTC for t (an unrepresentable t gives the epoch). */
static void put_date(struct w *w, time_t t)
{
    static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
    static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
        "Aug", "Sep", "Oct", "Nov", "Dec" };
    struct tm tm;
    /* names from tables, not strftime: the locale must not change the wire format */
    if (gmtime_r(&t, &tm) == NULL || tm.tm_year < 0 || tm.tm_year > 9999 - 1900) {
        time_t zero = 0;
        if (gmtime_r(&zero, &tm) == NULL)
            memset(&tm, 0, sizeof tm);
    }
    w_printf(w, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7], tm.tm_mday,
        months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/*
 * Append "name: v\n", folding before a SP (one that follows a non-SP, so no line is blank)
 * to keep lines within FOLD_AT where the value allows. A word that does not fit is not
 * split; the caller keeps strlen(name) + 2 + n <= LINE_OCTETS_MAX, and longer values
 * are cut here all the same, so no line passes 998 octets.
 */
static void put_field(struct w *w, const char *name, const char *v, size_t n)
{
    size_t col = strlen(name) + 2, pos = 0;

    if (col + n > LINE_OCTETS_MAX) {
        n = LINE_OCTETS_MAX - col;
        while (n > 0 && ((unsigned char)v[n] & 0xc0) == 0x80)
            n--;
    }
    while (n > 0 && v[n - 1] == ' ')
        n--;
    w_puts(w, name);
    w_puts(w, ": ");
    while (col + (n - pos) > FOLD_AT) {
        size_t brk = 0;
        for (size_t i = pos + 1; i < n && col + (i - pos) <= FOLD_AT; i++)
            if (v[i] == ' ' && v[i - 1] != ' ')
                brk = i;
        for (size_t i = pos + 1; brk == 0 && i < n; i++)
            if (v[i] == ' ' && v[i - 1] != ' ')
                brk = i;
        if (brk == 0)
            break;
        w_put(w, v + pos, brk - pos);
        w_puts(w, "\n");
        pos = brk;
        col = 0;
    }
    w_put(w, v + pos, n - pos);
    w_puts(w, "\n");
}

/* Room left for a value in "name: " + the prefix already in the scratch buffer. */
static size_t room(const char *name, const struct buf *v)
{
    size_t used = strlen(name) + 2 + v->len;
    size_t r = used < LINE_OCTETS_MAX ? LINE_OCTETS_MAX - used : 0;
    return r < PEER_MAX ? r : PEER_MAX;
}

/* Write the scratch buffer c->v as field name to w; a scratch failure fails w. */
static void flush_field(struct ctx *c, struct w *sv, struct w *w, const char *name)
{
    if (sv->err != 0)
        w->err = -1;
    else
        put_field(w, name, c->v.p, c->v.len);
}

/* "name: prefix" + the cleaned peer string s, folded; nothing if s is NULL or blank. */
static void field_clean(struct ctx *c, struct w *w, const char *name, const char *prefix,
    const char *s, enum clean how)
{
    struct w sv = { &c->v, 0 };
    if (s == NULL)
        return;
    buf_reset(&c->v);
    w_puts(&sv, prefix);
    size_t plen = c->v.len;
    put_clean(&sv, s, strlen(s), room(name, &c->v), how, c->global);
    if (c->v.len == plen)
        return;
    flush_field(c, &sv, w, name);
}

/*
 * Append the paragraph s (length n, no line ends) wrapped at WRAP_AT octets; lines after
 * the first start with indent. A word longer than a line is split (not inside a UTF-8
 * character), so no line is longer than WRAP_AT.
 */
static void put_wrapped(struct w *w, const char *s, size_t n, const char *indent)
{
    size_t ind = strlen(indent), pos = 0;
    bool first = true;

    while (pos < n && s[pos] == ' ')
        pos++;
    while (pos < n) {
        size_t width = WRAP_AT - (first ? 0 : ind), end = 0;
        if (n - pos <= width) {
            end = n;
        } else {
            for (size_t i = pos + width; i > pos && end == 0; i--)
                if (s[i] == ' ')
                    end = i;
            if (end == 0) {
                end = pos + width;
                while (end > pos + 1 && ((unsigned char)s[end] & 0xc0) == 0x80)
                    end--;
            }
        }
        size_t e = end;
        while (e > pos && s[e - 1] == ' ')
            e--;
        if (!first)
            w_puts(w, indent);
        w_put(w, s + pos, e - pos);
        w_puts(w, "\n");
        pos = end;
        while (pos < n && s[pos] == ' ')
            pos++;
        first = false;
    }
}

static const char *action_word(enum dsn_action a)
{
    switch (a) {
    case DSN_FAILED:    return "failed";
    case DSN_DELAYED:   return "delayed";
    case DSN_DELIVERED: return "delivered";
    case DSN_RELAYED:   return "relayed";
    case DSN_EXPANDED:  return "expanded";
    }
    return "failed";
}

/*
 * The RFC 3463 status "class.subject.detail" of r, in st (STATUS_SZ). A malformed status
 * gives X.0.0 for the action. Between failed and delayed only the class is changed, so a
 * recipient that expired in the queue keeps its 4.4.1 as 5.4.1; a success with another
 * class gives 2.0.0.
 */
static const char *status_of(const struct dsn_rcpt *r, char *st)
{
    const char *s = r->status;
    size_t n = s ? strlen(s) : 0, dots = 0, digits = 0;
    bool ok = n >= 5 && n <= 9;
    for (size_t i = 0; ok && i < n; i++) {
        if (s[i] == '.') {
            ok = digits > 0 && digits <= 3;
            dots++;
            digits = 0;
        } else {
            ok = s[i] >= '0' && s[i] <= '9';
            digits++;
        }
    }
    ok = ok && dots == 2 && digits > 0 && digits <= 3 && s[1] == '.';
    char want = r->action == DSN_FAILED ? '5' : r->action == DSN_DELAYED ? '4' : '2';
    if (ok && (s[0] == want || (want != '2' && (s[0] == '4' || s[0] == '5')))) {
        memcpy(st, s, n + 1);
        st[0] = want;
    } else {
        memcpy(st, "X.0.0", 6);
        st[0] = want;
    }
    return st;
}

/* Whether an RFC 6533 report is needed: SMTPUTF8 and non-ASCII where it must be kept. */
static bool need_global(const struct dsn_msg *m, size_t hdr_len)
{
    if (!m->smtputf8)
        return false;
    if (str_8bit(m->sender) || (m->original && has_8bit(m->original, hdr_len)))
        return true;
    for (size_t i = 0; i < m->nrcpt; i++)
        if (str_8bit(m->rcpts[i].addr) || str_8bit(m->rcpts[i].orcpt))
            return true;
    return false;
}

/* Length of the header block of p (through the newline before the blank line). */
static size_t header_len(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (p[i] == '\n' || (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n'))
            return i;
        const char *nl = memchr(p + i, '\n', n - i);
        if (nl == NULL)
            return n;
        i = (size_t)(nl - p) + 1;
    }
    return n;
}

/* ---- part 1: text/plain for a human ---- */

static void put_host_said(struct ctx *c, struct w *sv, const struct dsn_rcpt *r)
{
    if (r->remote_mta) {
        w_puts(sv, "host ");
        put_cleans(sv, r->remote_mta, PEER_MAX, CLEAN_TEXT, c->global);
        w_puts(sv, " said: ");
    }
    put_cleans(sv, r->diagnostic, PEER_MAX, CLEAN_TEXT, c->global);
}

/* One "<addr>: what happened" paragraph. */
static void text_rcpt(struct ctx *c, struct w *w, const struct dsn_rcpt *r)
{
    struct w sv = { &c->v, 0 };
    bool diag = r->diagnostic != NULL && r->diagnostic[0] != '\0';

    buf_reset(&c->v);
    w_puts(&sv, "<");
    put_cleans(&sv, r->addr, PEER_MAX, CLEAN_ADDR, c->global);
    w_puts(&sv, ">: ");
    switch (r->action) {
    case DSN_FAILED:
    case DSN_DELAYED:
        if (diag) {
            put_host_said(c, &sv, r);
        } else {
            w_printf(&sv, "delivery %s", r->action == DSN_FAILED ? "failed" : "delayed");
            if (r->remote_mta) {
                w_puts(&sv, " at host ");
                put_cleans(&sv, r->remote_mta, PEER_MAX, CLEAN_TEXT, c->global);
            }
            char st[STATUS_SZ];
            w_printf(&sv, " (status %s)", status_of(r, st));
        }
        if (r->action == DSN_DELAYED && r->will_retry_until != 0) {
            w_puts(&sv, "; the mail system will keep trying until ");
            put_date(&sv, r->will_retry_until);
        }
        break;
    case DSN_DELIVERED:
    case DSN_RELAYED:
    case DSN_EXPANDED:
        w_puts(&sv, r->action == DSN_EXPANDED ? "delivered to a list or alias, which expanded"
            : action_word(r->action));
        if (r->remote_mta && r->action != DSN_EXPANDED) {
            w_puts(&sv, " to host ");
            put_cleans(&sv, r->remote_mta, PEER_MAX, CLEAN_TEXT, c->global);
            if (diag)
                w_puts(&sv, ", which said: ");
        } else if (diag) {
            w_puts(&sv, ": ");
        }
        if (diag)
            put_cleans(&sv, r->diagnostic, PEER_MAX, CLEAN_TEXT, c->global);
        break;
    }
    if (sv.err != 0)
        w->err = -1;
    else
        put_wrapped(w, c->v.p, c->v.len, "    ");
}

static bool in_group(enum dsn_action a, int group)
{
    if (group == 0)
        return a == DSN_FAILED;
    if (group == 1)
        return a == DSN_DELAYED;
    return a != DSN_FAILED && a != DSN_DELAYED;
}

static void text_part(struct ctx *c, struct w *w)
{
    const struct dsn_msg *m = c->m;
    struct w sv = { &c->v, 0 };

    buf_reset(&c->v);
    w_puts(&sv, "This is the mail system at host ");
    put_token(&sv, m->reporting_mta, HOST_MAX, HOST_CHARS, "localhost");
    w_puts(&sv, ".");
    if (sv.err != 0)
        w->err = -1;
    else
        put_wrapped(w, c->v.p, c->v.len, "    ");
    w_puts(w, "\n");

    for (int g = 0; g < 3; g++) {
        if (g == 0 && c->nfailed > 0)
            w_puts(w, "Your message could not be delivered to one or more recipients.\n"
                "The mail system has given up on the addresses below. If you need\n"
                "help, write to postmaster and include this report.\n\n");
        else if (g == 1 && c->ndelayed > 0)
            w_puts(w, "Your message has not yet been delivered to the recipients below.\n"
                "The mail system will keep trying; you do not need to send it again.\n\n");
        else if (g == 2 && c->nsuccess > 0)
            w_printf(w, "Your message was delivered to the recipients below.\n%s\n",
                c->nrelayed == 0 ? "" :
                "A recipient marked \"relayed\" was handed to a system that does not send\n"
                "delivery reports, so you may hear nothing more about it.\n");
        else
            continue;
        for (size_t i = 0; i < m->nrcpt; i++)
            if (in_group(m->rcpts[i].action, g))
                text_rcpt(c, w, &m->rcpts[i]);
        w_puts(w, "\n");
    }
    if (m->original != NULL)
        w_puts(w, c->full ? "A copy of your message is attached below.\n"
            : "The headers of your message are attached below.\n");
}

/* ---- part 2: message/delivery-status ---- */

/* "name: type; address" with the address escaped for the report's character set. */
static void field_addr(struct ctx *c, struct w *w, const char *name, const char *type,
    const char *sep, const char *addr, size_t alen)
{
    struct w sv = { &c->v, 0 };
    buf_reset(&c->v);
    w_puts(&sv, type);
    w_puts(&sv, sep);
    put_clean(&sv, addr, alen, room(name, &c->v), CLEAN_ADDR, c->global);
    flush_field(c, &sv, w, name);
}

static void field_date(struct ctx *c, struct w *w, const char *name, time_t t)
{
    struct w sv = { &c->v, 0 };
    buf_reset(&c->v);
    put_date(&sv, t);
    flush_field(c, &sv, w, name);
}

/* Received-From-MTA: dns; HELO (ADDR), the address shown only if it looks like one. */
static void field_from_mta(struct ctx *c, struct w *w)
{
    const struct dsn_msg *m = c->m;
    const char *ip = m->client_addr;
    size_t iplen = ip ? strlen(ip) : 0;
    bool ip_ok = iplen > 0 && iplen <= 45 && strspn(ip, "0123456789abcdefABCDEF.:") == iplen;
    bool helo = m->client_helo != NULL && m->client_helo[0] != '\0';
    struct w sv = { &c->v, 0 };

    if (!helo && !ip_ok)
        return;
    buf_reset(&c->v);
    w_puts(&sv, "dns; ");
    if (helo)
        put_clean(&sv, m->client_helo, strlen(m->client_helo),
            room("Received-From-MTA", &c->v) - (ip_ok ? iplen + 4 : 0), CLEAN_TEXT, c->global);
    if (ip_ok)
        w_printf(&sv, helo ? " ([%s])" : "[%s]", ip);
    flush_field(c, &sv, w, "Received-From-MTA");
}

static void status_part(struct ctx *c, struct w *w)
{
    const struct dsn_msg *m = c->m;
    struct w sv = { &c->v, 0 };

    if (m->envid != NULL && m->envid[0] != '\0') {
        /* RFC 3464 2.2.1: the ENVID in xtext, so it can hold no line end */
        buf_reset(&c->v);
        if (smtp_xtext_encode(m->envid, strlen(m->envid), &c->v) == -1)
            sv.err = -1;
        size_t max = LINE_OCTETS_MAX - strlen("Original-Envelope-Id: ");
        if (c->v.len > max) {
            c->v.len = max;
            /* do not leave half of a "+HH" */
            if (c->v.len >= 1 && c->v.p[c->v.len - 1] == '+')
                c->v.len -= 1;
            else if (c->v.len >= 2 && c->v.p[c->v.len - 2] == '+')
                c->v.len -= 2;
        }
        flush_field(c, &sv, w, "Original-Envelope-Id");
    }
    buf_reset(&c->v);
    w_puts(&sv, "dns; ");
    put_token(&sv, m->reporting_mta, HOST_MAX, HOST_CHARS, "localhost");
    flush_field(c, &sv, w, "Reporting-MTA");
    field_from_mta(c, w);
    if (m->arrival != 0)
        field_date(c, w, "Arrival-Date", m->arrival);
    buf_reset(&c->v);
    put_token(&sv, m->queue_id, HOST_MAX, ATEXT_CHARS, "unknown");
    flush_field(c, &sv, w, "X-Postel-Queue-ID");

    for (size_t i = 0; i < m->nrcpt; i++) {
        const struct dsn_rcpt *r = &m->rcpts[i];
        const char *addr = r->addr ? r->addr : "";
        w_puts(w, "\n");
        if (r->orcpt != NULL && r->orcpt[0] != '\0') {
            /* keep the sender's addr-type (an atom) and escape the address */
            const char *semi = strchr(r->orcpt, ';');
            const char *oaddr = semi ? semi + 1 : r->orcpt;
            char type[33];
            size_t tn = 0;
            for (const char *p = r->orcpt; semi && p < semi && tn < sizeof type - 1; p++)
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                    || (*p >= '0' && *p <= '9') || *p == '-')
                    type[tn++] = *p;
            type[tn] = '\0';
            /* RFC 6533 3: a UTF-8 address in a global report is of type utf-8 */
            bool utf8 = c->global && str_8bit(oaddr);
            if (tn == 0 || (utf8 && str_ieq(type, tn, "rfc822")))
                (void)str_copy(type, sizeof type, utf8 ? "utf-8" : "rfc822");
            field_addr(c, w, "Original-Recipient", type, ";", oaddr, strlen(oaddr));
        }
        field_addr(c, w, "Final-Recipient", c->global && str_8bit(addr) ? "utf-8" : "rfc822",
            "; ", addr, strlen(addr));
        w_printf(w, "Action: %s\n", action_word(r->action));
        char st[STATUS_SZ];
        w_printf(w, "Status: %s\n", status_of(r, st));
        /* RFC 3464 2.3.5: a "dns" Remote-MTA is a host name; the "host[address]" form of
         * our logs (and of the text part) keeps the name only here */
        char mta[HOST_MAX + 1];
        const char *rm = r->remote_mta;
        const char *lb = rm != NULL ? strrchr(rm, '[') : NULL;
        if (lb != NULL && lb > rm && rm[strlen(rm) - 1] == ']') {
            (void)str_ncopy(mta, sizeof mta, rm, (size_t)(lb - rm));
            rm = mta;
        }
        field_clean(c, w, "Remote-MTA", "dns; ", rm, CLEAN_TEXT);
        if (r->diagnostic != NULL) {
            /* "smtp" only for what looks like a reply; local errors get our own type */
            const char *d = r->diagnostic;
            bool reply = d[0] >= '2' && d[0] <= '5' && d[1] >= '0' && d[1] <= '9'
                && d[2] >= '0' && d[2] <= '9' && (d[3] == ' ' || d[3] == '-' || d[3] == '\0');
            field_clean(c, w, "Diagnostic-Code", reply ? "smtp; " : "x-postel; ", d,
                CLEAN_TEXT);
        }
        if (r->last_attempt != 0)
            field_date(c, w, "Last-Attempt-Date", r->last_attempt);
        if (r->action == DSN_DELAYED && r->will_retry_until != 0)
            field_date(c, w, "Will-Retry-Until", r->will_retry_until);
    }
}

/* ---- the message ---- */

/* FNV-1a over the n areas: a clash-breaker no sender can choose in advance. */
static uint64_t areas_hash(const char *const *area, const size_t *alen, size_t n)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; area[i] != NULL && j < alen[i]; j++)
            h = (h ^ (unsigned char)area[i][j]) * 1099511628211u;
    return h;
}

/*
 * Choose a boundary "SEED/HOST" (as tokens) that occurs in none of the n areas. On a clash
 * it appends "." and 8 hex digits taken from a hash of the content, so a sender who
 * knows the seed cannot fill the message with every next candidate. out must hold
 * BOUNDARY_BASE_MAX + 12 octets.
 */
static int choose_boundary(const struct dsn_msg *m, const char *const *area,
    const size_t *alen, size_t n, char *out, size_t osz)
{
    struct buf b;
    struct w bw = { &b, 0 };

    buf_init(&b, 0);
    put_token(&bw, m->boundary_seed, BOUNDARY_BASE_MAX / 2, "._-", "dsn");
    w_puts(&bw, "/");
    put_token(&bw, m->reporting_mta, BOUNDARY_BASE_MAX / 2 - 1, "._-", "x");
    if (bw.err != 0 || b.len + 12 > osz) {
        buf_free(&b);
        return -1;
    }
    size_t base = b.len;
    memcpy(out, b.p, base);
    out[base] = '\0';
    buf_free(&b);

    uint64_t h = 0;
    for (uint32_t k = 1;; k++) {
        size_t bl = strlen(out);
        bool clash = false;
        for (size_t i = 0; i < n && !clash; i++)
            clash = area[i] != NULL && memmem(area[i], alen[i], out, bl) != NULL;
        if (!clash)
            return 0;
        if (h == 0)
            h = areas_hash(area, alen, n);
        uint32_t x = (uint32_t)(h ^ (h >> 32)) + k * 2654435769u;
        (void)snprintf(out + base, osz - base, ".%08lx", (unsigned long)x);
    }
}

static int build(const struct dsn_msg *m, struct buf *out, bool full)
{
    struct ctx c = { .m = m, .full = full };
    struct buf t1, t2;
    struct w w = { out, 0 }, w1 = { &t1, 0 }, w2 = { &t2, 0 };
    const char *orig = m->original;
    size_t olen = orig ? m->original_len : 0;
    size_t hlen = orig ? header_len(orig, olen) : 0;
    size_t p3len = full ? olen : hlen;

    for (size_t i = 0; i < m->nrcpt; i++) {
        enum dsn_action a = m->rcpts[i].action;
        c.nfailed += a == DSN_FAILED;
        c.ndelayed += a == DSN_DELAYED;
        c.nsuccess += a != DSN_FAILED && a != DSN_DELAYED;
        c.nrelayed += a == DSN_RELAYED;
    }
    c.global = need_global(m, hlen);
    buf_init(&c.v, 0);
    buf_init(&t1, out->max);
    buf_init(&t2, out->max);
    text_part(&c, &w1);
    status_part(&c, &w2);

    char boundary[BOUNDARY_BASE_MAX + 12];
    const char *area[3] = { t1.p, t2.p, orig };
    size_t alen[3] = { t1.len, t2.len, p3len };
    if (choose_boundary(m, area, alen, 3, boundary, sizeof boundary) == -1)
        w.err = -1;

    bool p1_8 = has_8bit(t1.p, t1.len), p2_8 = has_8bit(t2.p, t2.len);
    bool p3_8 = orig && has_8bit(orig, p3len);
    struct w sv = { &c.v, 0 };

    w_puts(&w, "From: Mail Delivery System <MAILER-DAEMON@");
    put_token(&w, m->reporting_mta, HOST_MAX, HOST_CHARS, "localhost");
    w_puts(&w, ">\n");
    buf_reset(&c.v);
    w_puts(&sv, "<");
    put_cleans(&sv, m->sender, room("To", &c.v) - 1, CLEAN_ADDR, c.global);
    w_puts(&sv, ">");
    flush_field(&c, &sv, &w, "To");
    w_printf(&w, "Subject: %s\n", c.nfailed ? "Undelivered Mail Returned to Sender"
        : c.ndelayed ? "Delayed Mail (still being retried)" : "Successful Mail Delivery Report");
    w_puts(&w, "Date: ");
    put_date(&w, m->now);
    w_puts(&w, "\nMessage-ID: <");
    put_token(&w, m->queue_id, HOST_MAX, ATEXT_CHARS, "dsn");
    w_printf(&w, ".%lld.dsn@", (long long)m->now);
    put_token(&w, m->reporting_mta, HOST_MAX, HOST_CHARS, "localhost");
    w_puts(&w, ">\nAuto-Submitted: auto-replied\nMIME-Version: 1.0\n");
    /* RFC 6522 3: report-type names the subtype of the second part */
    w_printf(&w, "Content-Type: multipart/report; report-type=%sdelivery-status;\n"
        "\tboundary=\"%s\"\n", c.global ? "global-" : "", boundary);
    if (p1_8 || p2_8 || p3_8)
        w_puts(&w, "Content-Transfer-Encoding: 8bit\n");
    w_puts(&w, "\nThis is a MIME-encapsulated message.\n\n");

    w_printf(&w, "--%s\nContent-Description: Notification\n"
        "Content-Type: text/plain; charset=%s\n%s\n", boundary, p1_8 ? "utf-8" : "us-ascii",
        p1_8 ? "Content-Transfer-Encoding: 8bit\n" : "");
    w_put(&w, t1.p, t1.len);

    w_printf(&w, "\n--%s\nContent-Description: Delivery report\n"
        "Content-Type: message/%sdelivery-status\n%s\n", boundary, c.global ? "global-" : "",
        p2_8 ? "Content-Transfer-Encoding: 8bit\n" : "");
    w_put(&w, t2.p, t2.len);

    if (orig != NULL) {
        const char *desc = full ? "Undelivered Message"
            : c.nfailed ? "Undelivered Message Headers" : "Message Headers";
        const char *type = full ? (c.global ? "message/global" : "message/rfc822")
            : (c.global ? "message/global-headers" : "text/rfc822-headers");
        w_printf(&w, "\n--%s\nContent-Description: %s\nContent-Type: %s\n%s\n", boundary,
            desc, type, p3_8 ? "Content-Transfer-Encoding: 8bit\n" : "");
        w_put(&w, orig, p3len);
        if (p3len > 0 && orig[p3len - 1] != '\n')
            w_puts(&w, "\n");
    }
    w_printf(&w, "\n--%s--\n", boundary);

    int err = w.err | w1.err | w2.err;
    buf_free(&c.v);
    buf_free(&t1);
    buf_free(&t2);
    return err ? -1 : 0;
}

/* RFC 3461 4.3: RET matters only if a recipient failed; else only headers are returned. */
static bool want_full(const struct dsn_msg *m)
{
    bool failed = false;
    for (size_t i = 0; i < m->nrcpt; i++)
        failed = failed || m->rcpts[i].action == DSN_FAILED;
    if (!failed || m->original == NULL)
        return false;
    if (m->ret == SMTP_RET_FULL)
        return true;
    if (m->ret == SMTP_RET_HDRS)
        return false;
    return m->original_len <= DSN_FULL_MAX;
}

int dsn_build(const struct dsn_msg *m, struct buf *out)
{
    if (m == NULL || out == NULL || m->sender == NULL || m->sender[0] == '\0'
        || m->rcpts == NULL || m->nrcpt == 0) {
        errno = EINVAL;
        return -1;
    }
    size_t mark = out->len;
    bool full = want_full(m);
    if (build(m, out, full) == 0)
        return 0;
    out->len = mark;
    /* a message too big for the cap is still reported, with its headers only */
    if (full && build(m, out, false) == 0)
        return 0;
    out->len = mark;
    errno = ENOBUFS;
    return -1;
}
