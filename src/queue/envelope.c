/*
 * queue/envelope.c - envelope records: encode and a strict decoder (fuzzed).
 */
#include "queue/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/parse.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define ENV_MAGIC "postel-envelope 1\n"
#define ST_MAGIC "postel-status 1\n"
#define ENV_FIELD_MAX 4096
/* Times are seconds since 1970; anything past year 10000 is not a time we wrote. */
#define ENV_TIME_MAX 253402300799ULL

static int put_xtext(struct buf *b, const char *s)
{
    return smtp_xtext_encode(s, strlen(s), b);
}

struct env_rcpt *env_add_rcpt(struct env_msg *m, const char *addr, bool local, unsigned notify,
    const char *orcpt)
{
    m->rcpts = xreallocarray(m->rcpts, m->nrcpt + 1, sizeof *m->rcpts);
    struct env_rcpt *r = &m->rcpts[m->nrcpt++];
    memset(r, 0, sizeof *r);
    r->addr = xstrdup(addr);
    r->local = local;
    r->notify = notify;
    r->orcpt = orcpt ? xstrdup(orcpt) : NULL;
    return r;
}

void env_free(struct env_msg *m)
{
    free(m->sender);
    free(m->envid);
    free(m->helo);
    free(m->client);
    free(m->user);
    for (size_t i = 0; i < m->nrcpt; i++) {
        free(m->rcpts[i].addr);
        free(m->rcpts[i].orcpt);
        free(m->rcpts[i].reason);
        free(m->rcpts[i].status);
        free(m->rcpts[i].host);
    }
    free(m->rcpts);
    m->rcpts = NULL;
    m->nrcpt = 0;
    m->sender = m->envid = m->helo = m->client = m->user = NULL;
}

int env_encode(const struct env_msg *m, struct buf *b)
{
    int r = 0;
    r |= buf_puts(b, ENV_MAGIC);
    r |= buf_printf(b, "id %s\narrival %lld\nsender ", m->id, (long long)m->arrival);
    r |= put_xtext(b, m->sender ? m->sender : "");
    r |= buf_puts(b, "\n");
    if (m->envid) {
        r |= buf_puts(b, "envid ");
        r |= put_xtext(b, m->envid);
        r |= buf_puts(b, "\n");
    }
    if (m->ret == SMTP_RET_FULL || m->ret == SMTP_RET_HDRS)
        r |= buf_printf(b, "ret %s\n", m->ret == SMTP_RET_FULL ? "FULL" : "HDRS");
    if (m->body == SMTP_BODY_7BIT || m->body == SMTP_BODY_8BITMIME)
        r |= buf_printf(b, "body %s\n", m->body == SMTP_BODY_7BIT ? "7BIT" : "8BITMIME");
    if (m->smtputf8)
        r |= buf_puts(b, "smtputf8\n");
    r |= buf_puts(b, "helo ");
    r |= put_xtext(b, m->helo ? m->helo : "");
    r |= buf_puts(b, "\nclient ");
    r |= put_xtext(b, m->client ? m->client : "");
    r |= buf_puts(b, "\n");
    if (m->user) {
        r |= buf_puts(b, "user ");
        r |= put_xtext(b, m->user);
        r |= buf_puts(b, "\n");
    }
    for (size_t i = 0; i < m->nrcpt; i++) {
        const struct env_rcpt *rc = &m->rcpts[i];
        r |= buf_puts(b, "rcpt ");
        r |= put_xtext(b, rc->addr);
        r |= buf_printf(b, " %s %u ", rc->local ? "local" : "remote", rc->notify);
        if (rc->orcpt)
            r |= put_xtext(b, rc->orcpt);
        else
            r |= buf_puts(b, "-");
        r |= buf_puts(b, "\n");
    }
    r |= buf_puts(b, "end\n");
    return r ? -1 : 0;
}

/* Decode an xtext field into a new string. */
static char *get_xtext(const char *s, size_t n)
{
    char out[ENV_FIELD_MAX];
    size_t olen;
    if (smtp_xtext_decode(s, n, out, sizeof out, &olen) == -1)
        return NULL;
    if (memchr(out, '\0', olen))
        return NULL;
    return xstrndup(out, olen);
}

/* Split a line into at most max space-separated words. Returns the count, or -1. */
static int split(const char *s, size_t n, const char **w, size_t *wl, int max)
{
    int k = 0;
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != ' ')
            j++;
        if (k == max)
            return -1;
        w[k] = s + i;
        wl[k] = j - i;
        k++;
        i = j + 1;
    }
    return k;
}

static bool word_is(const char *w, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

static int get_num(const char *w, size_t n, unsigned long long *v)
{
    return str_to_u64(w, n, v);
}

int env_decode(const char *p, size_t n, struct env_msg *m, char *err, size_t errsz)
{
    memset(m, 0, sizeof *m);
    size_t ml = strlen(ENV_MAGIC);
    if (n < ml || memcmp(p, ENV_MAGIC, ml) != 0) {
        snprintf(err, errsz, "not a postel queue file (version 1)");
        return -1;
    }
    size_t off = ml;
    bool have_id = false, have_sender = false, ended = false;
    int lineno = 1;
    while (off < n && !ended) {
        const char *nl = memchr(p + off, '\n', n - off);
        if (nl == NULL) {
            snprintf(err, errsz, "truncated envelope");
            goto fail;
        }
        const char *line = p + off;
        size_t len = (size_t)(nl - line);
        off += len + 1;
        lineno++;
        const char *w[6];
        size_t wl[6];
        int k = split(line, len, w, wl, 6);
        if (k < 1)
            goto bad;
        unsigned long long v;
        if (word_is(w[0], wl[0], "end") && k == 1) {
            ended = true;
        } else if (word_is(w[0], wl[0], "id") && k == 2) {
            if (wl[1] == 0 || str_ncopy(m->id, sizeof m->id, w[1], wl[1]) == -1)
                goto bad;
            for (size_t i = 0; i < wl[1]; i++)
                if (!((w[1][i] >= '0' && w[1][i] <= '9') || (w[1][i] >= 'A' && w[1][i] <= 'Z')))
                    goto bad;
            have_id = true;
        } else if (word_is(w[0], wl[0], "arrival") && k == 2) {
            if (get_num(w[1], wl[1], &v) == -1 || v > ENV_TIME_MAX)
                goto bad;
            m->arrival = (time_t)v;
        } else if (word_is(w[0], wl[0], "sender") && k == 2 && !have_sender) {
            if ((m->sender = get_xtext(w[1], wl[1])) == NULL)
                goto bad;
            have_sender = true;
        } else if (word_is(w[0], wl[0], "envid") && k == 2 && !m->envid) {
            if ((m->envid = get_xtext(w[1], wl[1])) == NULL)
                goto bad;
        } else if (word_is(w[0], wl[0], "ret") && k == 2) {
            if (word_is(w[1], wl[1], "FULL"))
                m->ret = SMTP_RET_FULL;
            else if (word_is(w[1], wl[1], "HDRS"))
                m->ret = SMTP_RET_HDRS;
            else
                goto bad;
        } else if (word_is(w[0], wl[0], "body") && k == 2) {
            if (word_is(w[1], wl[1], "7BIT"))
                m->body = SMTP_BODY_7BIT;
            else if (word_is(w[1], wl[1], "8BITMIME"))
                m->body = SMTP_BODY_8BITMIME;
            else
                goto bad;
        } else if (word_is(w[0], wl[0], "smtputf8") && k == 1) {
            m->smtputf8 = true;
        } else if (word_is(w[0], wl[0], "helo") && k == 2 && !m->helo) {
            if ((m->helo = get_xtext(w[1], wl[1])) == NULL)
                goto bad;
        } else if (word_is(w[0], wl[0], "client") && k == 2 && !m->client) {
            if ((m->client = get_xtext(w[1], wl[1])) == NULL)
                goto bad;
        } else if (word_is(w[0], wl[0], "user") && k == 2 && !m->user) {
            if ((m->user = get_xtext(w[1], wl[1])) == NULL)
                goto bad;
        } else if (word_is(w[0], wl[0], "rcpt") && k == 5) {
            char *addr = get_xtext(w[1], wl[1]);
            char *orcpt = NULL;
            bool local;
            if (addr == NULL || addr[0] == '\0')
                goto bad_rcpt;
            if (word_is(w[2], wl[2], "local"))
                local = true;
            else if (word_is(w[2], wl[2], "remote"))
                local = false;
            else
                goto bad_rcpt;
            if (get_num(w[3], wl[3], &v) == -1 || v > 15)
                goto bad_rcpt;
            if (!word_is(w[4], wl[4], "-") && (orcpt = get_xtext(w[4], wl[4])) == NULL)
                goto bad_rcpt;
            env_add_rcpt(m, addr, local, (unsigned)v, orcpt);
            free(addr);
            free(orcpt);
            continue;
bad_rcpt:
            free(addr);
            goto bad;
        } else {
            goto bad;
        }
    }
    if (!ended || !have_id || !have_sender || m->nrcpt == 0) {
        snprintf(err, errsz, "incomplete envelope");
        goto fail;
    }
    m->body_offset = off;
    return 0;
bad:
    snprintf(err, errsz, "bad envelope record at line %d", lineno);
fail:
    env_free(m);
    return -1;
}

int env_status_encode(const struct env_msg *m, struct buf *b)
{
    int r = buf_puts(b, ST_MAGIC);
    static const char st[] = { 'p', 'd', 'f' };
    if (m->held)
        r |= buf_puts(b, "hold\n");
    for (size_t i = 0; i < m->nrcpt; i++) {
        const struct env_rcpt *rc = &m->rcpts[i];
        r |= buf_printf(b, "st %zu %c %u %lld %u", i, st[rc->state], rc->attempts,
            (long long)rc->next_try, rc->delay_notified ? 1u : 0u);
        const char *f[3] = { rc->status, rc->host, rc->reason };
        for (int k = 0; k < 3; k++) {
            r |= buf_puts(b, " ");
            if (f[k] && f[k][0])
                r |= put_xtext(b, f[k]);
            else
                r |= buf_puts(b, "-");
        }
        r |= buf_puts(b, "\n");
    }
    return r ? -1 : 0;
}

int env_status_decode(const char *p, size_t n, struct env_msg *m, char *err, size_t errsz)
{
    size_t ml = strlen(ST_MAGIC);
    if (n < ml || memcmp(p, ST_MAGIC, ml) != 0) {
        snprintf(err, errsz, "not a postel status file (version 1)");
        return -1;
    }
    size_t off = ml;
    while (off < n) {
        const char *nl = memchr(p + off, '\n', n - off);
        if (nl == NULL)
            break;      /* a torn last line cannot happen (atomic rename); ignore it */
        const char *line = p + off;
        size_t len = (size_t)(nl - line);
        off += len + 1;
        if (len == 4 && memcmp(line, "hold", 4) == 0) {
            m->held = true;
            continue;
        }
        const char *w[9];
        size_t wl[9];
        unsigned long long idx, att, next, flags;
        if (split(line, len, w, wl, 9) != 9 || !word_is(w[0], wl[0], "st") ||
            get_num(w[1], wl[1], &idx) == -1 || idx >= m->nrcpt || wl[2] != 1 ||
            get_num(w[3], wl[3], &att) == -1 || att > 1000000 ||
            get_num(w[4], wl[4], &next) == -1 || next > ENV_TIME_MAX ||
            get_num(w[5], wl[5], &flags) == -1) {
            snprintf(err, errsz, "bad status record");
            return -1;
        }
        struct env_rcpt *rc = &m->rcpts[idx];
        switch (w[2][0]) {
        case 'p': rc->state = ENV_R_PENDING; break;
        case 'd': rc->state = ENV_R_DELIVERED; break;
        case 'f': rc->state = ENV_R_FAILED; break;
        default:
            snprintf(err, errsz, "bad status record");
            return -1;
        }
        rc->attempts = (unsigned)att;
        rc->next_try = (time_t)next;
        rc->delay_notified = (flags & 1) != 0;
        char **dst[3] = { &rc->status, &rc->host, &rc->reason };
        for (int k = 0; k < 3; k++) {
            free(*dst[k]);
            *dst[k] = word_is(w[6 + k], wl[6 + k], "-") ? NULL : get_xtext(w[6 + k], wl[6 + k]);
        }
    }
    return 0;
}
