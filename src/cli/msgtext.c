/*
 * cli/msgtext.c - sendmail's input: line rules, header fields, -t recipients, DATA form.
 *
 * Owns:  see msgtext.h.
 * Never: does I/O.
 * Limits: the caller's buffer caps; a header field is as long as the input makes it.
 */
#include "cli/msgtext.h"

#include <stdio.h>
#include <string.h>

#include "util/b64.h"
#include "util/str.h"

void msgtext_reader_init(struct msgtext_reader *r, bool ignore_dots)
{
    r->ignore_dots = ignore_dots;
    r->lines = 0;
}

int msgtext_feed_line(struct msgtext_reader *r, const char *line, size_t len, struct buf *out)
{
    size_t n = len;
    if (n > 0 && line[n - 1] == '\n')
        n--;
    if (n > 0 && line[n - 1] == '\r')
        n--;
    r->lines++;
    if (r->lines == 1 && n >= 5 && memcmp(line, "From ", 5) == 0)
        return 0;
    if (!r->ignore_dots && n == 1 && line[0] == '.')
        return 1;
    if (buf_append(out, line, n) == -1 || buf_append(out, "\n", 1) == -1)
        return -1;
    return 0;
}

/* The end of the line starting at i: the offset just past its LF (or n). */
static size_t line_end(const char *m, size_t n, size_t i)
{
    const char *lf = memchr(m + i, '\n', n - i);
    return lf ? (size_t)(lf - m) + 1 : n;
}

/* Length of the field name when the line at m (len octets) is "Name:" (obs: "Name :"). */
static size_t field_name_len(const char *m, size_t len)
{
    size_t i = 0;
    while (i < len && m[i] > 32 && m[i] < 127 && m[i] != ':')
        i++;
    if (i == 0)
        return 0;
    size_t k = i;
    while (k < len && (m[k] == ' ' || m[k] == '\t'))
        k++;
    return k < len && m[k] == ':' ? i : 0;
}

size_t msgtext_header_end(const char *m, size_t n, size_t *body, bool *has_sep)
{
    size_t i = 0;
    *has_sep = false;
    while (i < n) {
        size_t e = line_end(m, n, i);
        if (m[i] == '\n') {
            *has_sep = true;
            *body = i + 1;
            return i;
        }
        bool cont = (m[i] == ' ' || m[i] == '\t') && i > 0;
        if (!cont && field_name_len(m + i, e - i) == 0)
            break;
        i = e;
    }
    *body = i;
    return i;
}

int msgtext_next_field(const char *m, size_t hend, size_t *pos, struct msgtext_field *f)
{
    size_t i = *pos;
    if (i >= hend)
        return 0;
    size_t e = line_end(m, hend, i);
    f->off = i;
    f->name_len = field_name_len(m + i, e - i);
    const char *colon = memchr(m + i, ':', e - i);
    f->value_off = colon ? (size_t)(colon - m) + 1 : e;
    while (e < hend && (m[e] == ' ' || m[e] == '\t'))
        e = line_end(m, hend, e);
    f->len = e - i;
    *pos = e;
    return 1;
}

bool msgtext_field_is(const char *m, const struct msgtext_field *f, const char *name)
{
    return f->name_len > 0 && str_ieq(m + f->off, f->name_len, name);
}

bool msgtext_has_field(const char *m, size_t hend, const char *name)
{
    size_t pos = 0;
    struct msgtext_field f;
    while (msgtext_next_field(m, hend, &pos, &f))
        if (msgtext_field_is(m, &f, name))
            return true;
    return false;
}

static int add_from_fields(const char *m, size_t hend, const char *const *names,
    struct addrlist *out, char *err, size_t errsz)
{
    size_t pos = 0;
    struct msgtext_field f;
    while (msgtext_next_field(m, hend, &pos, &f)) {
        for (size_t k = 0; names[k]; k++) {
            if (!msgtext_field_is(m, &f, names[k]))
                continue;
            char why[128];
            if (addrlist_parse(m + f.value_off, f.off + f.len - f.value_off, out, why,
                    sizeof why) == -1) {
                snprintf(err, errsz, "%s: %s", names[k], why);
                return -1;
            }
        }
    }
    return 0;
}

int msgtext_recipients(const char *m, size_t hend, struct addrlist *out, char *err,
    size_t errsz)
{
    static const char *const plain[] = { "To", "Cc", "Bcc", NULL };
    static const char *const resent[] = { "Resent-To", "Resent-Cc", "Resent-Bcc", NULL };
    bool is_resent = false;
    for (size_t k = 0; resent[k]; k++)
        if (msgtext_has_field(m, hend, resent[k]))
            is_resent = true;
    return add_from_fields(m, hend, is_resent ? resent : plain, out, err, errsz);
}

static int add_field(struct buf *out, const char *name, const char *value)
{
    return buf_printf(out, "%s: %s\n", name, value);
}

int msgtext_rewrite(const char *m, size_t n, const struct msgtext_fix *fx, struct buf *out)
{
    size_t body;
    bool has_sep;
    size_t hend = msgtext_header_end(m, n, &body, &has_sep);
    size_t pos = 0;
    struct msgtext_field f;
    int r = 0;
    while (msgtext_next_field(m, hend, &pos, &f)) {
        if (fx->remove_bcc &&
            (msgtext_field_is(m, &f, "Bcc") || msgtext_field_is(m, &f, "Resent-Bcc")))
            continue;
        r |= buf_append(out, m + f.off, f.len);
    }
    /* The last header line may lack its LF when the input ends there. */
    if (hend > 0 && m[hend - 1] != '\n')
        r |= buf_append(out, "\n", 1);
    if (fx->from && !msgtext_has_field(m, hend, "From"))
        r |= add_field(out, "From", fx->from);
    if (fx->date && !msgtext_has_field(m, hend, "Date"))
        r |= add_field(out, "Date", fx->date);
    if (fx->msgid && !msgtext_has_field(m, hend, "Message-ID"))
        r |= add_field(out, "Message-ID", fx->msgid);
    if (has_sep || body < n)
        r |= buf_append(out, "\n", 1);
    if (body < n)
        r |= buf_append(out, m + body, n - body);
    return r ? -1 : 0;
}

static bool is_atext(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
        (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

int msgtext_format_from(const char *name, const char *addr, struct buf *out)
{
    if (name == NULL || name[0] == '\0')
        return buf_puts(out, addr);
    size_t n = strlen(name);
    bool ascii = true, plain = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 0x80 || c < 32 || c == 127)
            ascii = false;
        else if (!is_atext(c) && c != ' ')
            plain = false;
    }
    if (name[0] == ' ' || name[n - 1] == ' ')
        plain = false;
    int r = 0;
    if (!ascii) {
        /* RFC 2047 encoded words of at most 45 octets (75 characters each), cut only
         * between UTF-8 characters. */
        size_t i = 0;
        while (i < n) {
            size_t k = n - i > 45 ? 45 : n - i;
            while (i + k < n && k > 1 && ((unsigned char)name[i + k] & 0xC0) == 0x80)
                k--;
            r |= buf_puts(out, i ? " =?UTF-8?B?" : "=?UTF-8?B?");
            r |= b64_encode(name + i, k, out);
            r |= buf_puts(out, "?=");
            i += k;
        }
    } else if (plain) {
        r |= buf_puts(out, name);
    } else {
        r |= buf_append(out, "\"", 1);
        for (size_t i = 0; i < n; i++) {
            if (name[i] == '"' || name[i] == '\\')
                r |= buf_append(out, "\\", 1);
            if (name[i] >= 32 && name[i] != 127)
                r |= buf_append(out, name + i, 1);
        }
        r |= buf_append(out, "\"", 1);
    }
    r |= buf_printf(out, " <%s>", addr);
    return r ? -1 : 0;
}

bool msgtext_has_8bit(const char *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)m[i] & 0x80)
            return true;
    return false;
}

int msgtext_smtp_data(const char *m, size_t n, struct buf *out)
{
    int r = 0;
    size_t i = 0;
    while (i < n) {
        size_t e = line_end(m, n, i);
        size_t len = e - i;
        if (len > 0 && m[e - 1] == '\n')
            len--;
        if (m[i] == '.')
            r |= buf_append(out, ".", 1);
        r |= buf_append(out, m + i, len);
        r |= buf_append(out, "\r\n", 2);
        i = e;
    }
    r |= buf_append(out, ".\r\n", 3);
    return r ? -1 : 0;
}
