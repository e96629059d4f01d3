/*
 * cli/traceview.c - TRACE lines to sendmail -v lines.
 *
 * Owns:  see traceview.h.
 * Never: does I/O.
 */
#include "cli/traceview.h"

#include <string.h>
#include <strings.h>

#include "util/str.h"

void traceview_init(struct traceview *t, const char *const *rcpts, const bool *remote,
    size_t n)
{
    memset(t, 0, sizeof *t);
    t->rcpts = rcpts;
    t->remote = remote;
    t->nrcpt = n;
}

int traceview_split(char *line, const char **kind, const char **text)
{
    if (line[0] != 'T' || line[1] != ' ')
        return -1;
    char *k = line + 2;
    char *sp = strchr(k, ' ');
    if (sp) {
        *sp = '\0';
        *text = sp + 1;
    } else {
        *text = "";
    }
    *kind = k;
    return *k ? 0 : -1;
}

/* The recipient that names a connection to the destination being routed: the first whose
 * domain is the destination, else the first remote one, else the first. */
static const char *route_rcpt(const struct traceview *t)
{
    for (size_t i = 0; i < t->nrcpt; i++) {
        const char *at = strrchr(t->rcpts[i], '@');
        if (at && t->route[0] && strcasecmp(at + 1, t->route) == 0)
            return t->rcpts[i];
    }
    for (size_t i = 0; i < t->nrcpt; i++)
        if (t->remote == NULL || t->remote[i])
            return t->rcpts[i];
    return t->nrcpt ? t->rcpts[0] : NULL;
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "250 2.0.0 Ok: queued" -> "Ok: queued": sendmail shows a reply's text without codes. */
static const char *reply_text(const char *r)
{
    if (r[0] >= '2' && r[0] <= '5' && r[1] >= '0' && r[1] <= '9' && r[2] >= '0' &&
        r[2] <= '9' && (r[3] == ' ' || r[3] == '\0')) {
        r += r[3] ? 4 : 3;
        const char *p = r;
        if (*p >= '2' && *p <= '5' && p[1] == '.') {
            p += 2;
            while (*p >= '0' && *p <= '9')
                p++;
            if (*p == '.') {
                p++;
                while (*p >= '0' && *p <= '9')
                    p++;
                if (*p == ' ' || *p == '\0')
                    r = *p ? p + 1 : p;
            }
        }
    }
    return r;
}

/*
 * "<a@b>... Sent (250 2.0.0 Ok)" -> "a@b... Sent (Ok)"; counts the outcome. Returns 1 when
 * text was a recipient line (appended), 0 when not.
 */
static int rcpt_line(struct traceview *t, const char *text, bool local, struct buf *out,
    int *r)
{
    const char *end = text[0] == '<' ? strstr(text, ">... ") : NULL;
    if (end == NULL)
        return 0;
    const char *what = end + 5;
    *r |= buf_append(out, text + 1, (size_t)(end - text - 1));
    *r |= buf_puts(out, "... ");
    if (starts(what, "Sent (")) {
        t->sent++;
        const char *in = what + 6;
        size_t n = strlen(in);
        const char *body = reply_text(in);
        *r |= buf_puts(out, "Sent (");
        *r |= buf_append(out, body, n - (size_t)(body - in));
        *r |= buf_puts(out, "\n");
        return 1;
    }
    if (starts(what, "Deferred"))
        t->deferred++;
    else if (starts(what, "Failed"))
        t->failed++;
    else if (local && starts(what, "Delivered"))
        t->delivered++;
    *r |= buf_puts(out, what);
    *r |= buf_puts(out, "\n");
    return 1;
}

static int flush_close(struct traceview *t, struct buf *out)
{
    if (!t->pending_close)
        return 0;
    t->pending_close = false;
    int r = t->host[0] ? buf_printf(out, "Closing connection to %s\n", t->host) : 0;
    t->host[0] = '\0';
    return r;
}

int traceview_feed(struct traceview *t, const char *kind, const char *text, struct buf *out)
{
    int r = 0;
    if (strcmp(kind, "info") == 0) {
        if (text[0] == '<') {
            size_t before = out->len;
            if (rcpt_line(t, text, false, out, &r)) {
                if (t->host[0])
                    t->pending_close = true;
                return r ? -1 : 0;
            }
            out->len = before;
        }
        if (starts(text, "reusing ")) {
            t->pending_close = false;
            return 0;
        }
        r |= flush_close(t, out);
        if (starts(text, "routing ")) {
            str_copy(t->route, sizeof t->route, text + 8);
            return r ? -1 : 0;
        }
        /* "HOST: what went wrong": that connection is gone. */
        size_t hl = strlen(t->host);
        if (hl && strncmp(text, t->host, hl) == 0 && text[hl] == ':')
            t->host[0] = '\0';
        r |= buf_printf(out, "%s\n", text);
        return r ? -1 : 0;
    }
    if (strcmp(kind, "connect") == 0) {
        r |= flush_close(t, out);
        if (starts(text, "Connecting to ")) {
            const char *h = text + 14;
            const char *via = strstr(h, " via ");
            str_ncopy(t->host, sizeof t->host, h, via ? (size_t)(via - h) : strlen(h));
            const char *rc = route_rcpt(t);
            if (rc)
                r |= buf_printf(out, "%s... ", rc);
            r |= buf_printf(out, "%s\n", text);
        }
        /* "Connected to": sendmail prints nothing for it. */
        return r ? -1 : 0;
    }
    if (strcmp(kind, "local") == 0) {
        r |= flush_close(t, out);
        if (!rcpt_line(t, text, true, out, &r))
            r |= buf_printf(out, "%s\n", text);
        return r ? -1 : 0;
    }
    if (strcmp(kind, ">>>") == 0)
        return buf_printf(out, ">>> %s\n", text);
    if (strcmp(kind, "<<<") == 0)
        return buf_printf(out, "%s\n", text);
    return buf_printf(out, "%s %s\n", kind, text);
}

int traceview_end(struct traceview *t, struct buf *out)
{
    return flush_close(t, out);
}
