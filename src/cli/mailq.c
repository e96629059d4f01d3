/*
 * cli/mailq.c - format the queue listing.
 *
 * Owns:  see mailq.h.
 * Never: does I/O.
 */
#include "cli/mailq.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

/* Width of the columns before the sender: id (16 + status), size, arrival time. */
#define MQ_INDENT 48

int mailq_title(struct buf *out)
{
    return buf_puts(out, "-Queue ID-------- --Size-- ----Arrival Time---- "
        "-Sender/Recipient-------\n");
}

const char *mailq_rcpt_state(const struct json *rcpt)
{
    const char *st = json_get_str(rcpt, "state", "pending");
    if (strcmp(st, "pending") == 0)
        return json_get_num(rcpt, "attempts", 0) > 0 ? "deferred" : "queued";
    return st;
}

/* Printable copy of a peer-supplied string: control octets become '?'. */
static int put_clean(struct buf *out, const char *s)
{
    int r = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char ch = c < 32 || c == 127 ? '?' : (char)c;
        r |= buf_append(out, &ch, 1);
    }
    return r;
}

int mailq_entry(const struct json *msg, struct buf *out)
{
    const char *id = json_get_str(msg, "id", "?");
    char status = json_get_bool(msg, "held", false) ? '!' :
        json_get_bool(msg, "active", false) ? '*' : ' ';
    double size = json_get_num(msg, "size", 0);
    time_t arrival = (time_t)json_get_num(msg, "arrival", 0);
    struct tm tm;
    char when[32] = "?";
    if (localtime_r(&arrival, &tm))
        strftime(when, sizeof when, "%a %b %d %H:%M:%S", &tm);
    const char *sender = json_get_str(msg, "sender", "");
    int r = 0;
    r |= buf_printf(out, "%.16s%c %8llu %-20s ", id, status,
        size > 0 ? (unsigned long long)size : 0ULL, when);
    r |= put_clean(out, sender[0] ? sender : "MAILER-DAEMON");
    r |= buf_puts(out, "\n");
    const struct json *rc = json_get(msg, "recipients");
    for (size_t i = 0; rc && rc->type == JSON_ARR && i < rc->n; i++) {
        const struct json *x = &rc->items[i];
        const char *reason = json_get_str(x, "reason", NULL);
        const char *code = json_get_str(x, "status", NULL);
        r |= buf_printf(out, "%*s", MQ_INDENT, "");
        r |= put_clean(out, json_get_str(x, "address", "?"));
        r |= buf_printf(out, " (%s", mailq_rcpt_state(x));
        if (reason && reason[0]) {
            r |= buf_puts(out, ": ");
            /* The code goes first unless the reason already has it. */
            if (code && code[0] && strstr(reason, code) == NULL) {
                r |= put_clean(out, code);
                r |= buf_puts(out, " ");
            }
            r |= put_clean(out, reason);
        }
        r |= buf_puts(out, ")\n");
    }
    r |= buf_puts(out, "\n");
    return r ? -1 : 0;
}

int mailq_format(const struct json *const *msgs, size_t n, struct buf *out)
{
    if (n == 0)
        return buf_puts(out, "Mail queue is empty\n");
    int r = mailq_title(out);
    unsigned long long total = 0;
    for (size_t i = 0; i < n; i++) {
        r |= mailq_entry(msgs[i], out);
        double s = json_get_num(msgs[i], "size", 0);
        if (s > 0)
            total += (unsigned long long)s;
    }
    r |= buf_printf(out, "-- %llu Kbytes in %zu Request%s.\n", (total + 1023) / 1024, n,
        n == 1 ? "" : "s");
    return r ? -1 : 0;
}
