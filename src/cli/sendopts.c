/*
 * cli/sendopts.c - sendmail option parsing, getopt-style, with the sendmail 8 and Postfix
 * option set.
 *
 * Owns:  see sendopts.h.
 * Never: does I/O.
 */
#include "cli/sendopts.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sysexits.h>

#include "smtp/limits.h"
#include "smtp/parse.h"

/* Options that take an argument (the rest of the word or the next word). */
static const char with_arg[] = "ABbCdeFfhLNOoRrVX";
/* Flags accepted and ignored: -G gateway, -m me too, -n no aliasing, -U initial
 * submission, -x (sendmail 8.x extension flags). */
static const char ignored_flags[] = "GmnUx";

unsigned sendopts_parse_notify(const char *s)
{
    if (strcasecmp(s, "never") == 0)
        return SMTP_NOTIFY_NEVER;
    unsigned bits = 0;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 7 && strncasecmp(p, "success", 7) == 0)
            bits |= SMTP_NOTIFY_SUCCESS;
        else if (n == 7 && strncasecmp(p, "failure", 7) == 0)
            bits |= SMTP_NOTIFY_FAILURE;
        else if (n == 5 && strncasecmp(p, "delay", 5) == 0)
            bits |= SMTP_NOTIFY_DELAY;
        else
            return 0;
        if (e == NULL)
            break;
        p = e + 1;
    }
    return bits;
}

static int fail(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
    return EX_USAGE;
}

/* Act on option c with argument a (NULL for flags). Returns 0 or EX_USAGE. */
static int take(struct sendopts *o, char c, const char *a, char *err, size_t errsz)
{
    char opt[3] = { '-', c, '\0' };
    switch (c) {
    case 't': o->extract = true; return 0;
    case 'i': o->ignore_dots = true; return 0;
    case 'v': o->verbose++; return 0;
    case 'I': o->mode = SENDOPTS_ALIASES; return 0;
    case 'f':
    case 'r': o->sender = a; return 0;
    case 'F': o->fullname = a; return 0;
    case 'C': o->config = a; return 0;
    case 'o':
        if (strcmp(a, "i") == 0)
            o->ignore_dots = true;
        return 0;           /* -oXXX: sendmail options postel has no use for */
    case 'A': case 'e': case 'h': case 'L': case 'O':
        return 0;           /* -Am/-Ac, -e X, -h hops, -L tag, -O opt=val: ignored */
    case 'b':
        if (strcmp(a, "m") == 0)
            o->mode = SENDOPTS_DELIVER;
        else if (strcmp(a, "s") == 0)
            o->mode = SENDOPTS_SMTP;
        else if (strcmp(a, "v") == 0)
            o->mode = SENDOPTS_VERIFY;
        else if (strcmp(a, "p") == 0)
            o->mode = SENDOPTS_QUEUE;
        else if (strcmp(a, "i") == 0)
            o->mode = SENDOPTS_ALIASES;
        else if (strcmp(a, "d") == 0 || strcmp(a, "D") == 0)
            return fail(err, errsz, "-b%s: run posteld(8) to start the daemon", a);
        else
            return fail(err, errsz, "unsupported mode -b%s", a);
        return 0;
    case 'N':
        o->notify = sendopts_parse_notify(a);
        if (o->notify == 0)
            return fail(err, errsz, "-N %s: use never, or success,failure,delay", a);
        return 0;
    case 'R':
        if (strcasecmp(a, "full") == 0)
            o->ret = SMTP_RET_FULL;
        else if (strcasecmp(a, "hdrs") == 0)
            o->ret = SMTP_RET_HDRS;
        else
            return fail(err, errsz, "-R %s: use full or hdrs", a);
        return 0;
    case 'B':
        if (strcasecmp(a, "7bit") == 0)
            o->body = SMTP_BODY_7BIT;
        else if (strcasecmp(a, "8bitmime") == 0)
            o->body = SMTP_BODY_8BITMIME;
        else
            return fail(err, errsz, "-B %s: use 7BIT or 8BITMIME", a);
        return 0;
    case 'V': {
        size_t n = strlen(a);
        if (n == 0 || n > SMTP_ENVID_MAX)
            return fail(err, errsz, "-V %s: an envelope id has 1 to 100 characters", a);
        for (size_t i = 0; i < n; i++)
            if (a[i] < 33 || a[i] > 126)
                return fail(err, errsz, "-V %s: an envelope id is printable ASCII", a);
        o->envid = a;
        return 0;
    }
    case 'd':
        return fail(err, errsz, "%s (debugging) is not supported; use -v", opt);
    case 'X':
        return fail(err, errsz, "%s (traffic log) is not supported; use -v, or postel log ID "
            "for the daemon's log", opt);
    default:
        if (strchr(ignored_flags, c))
            return 0;
        return fail(err, errsz, "unknown option %s", opt);
    }
}

/* -q, -qR DOMAIN, -qRDOMAIN, -q INTERVAL; rest is the text after "-q". */
static int take_q(struct sendopts *o, const char *rest, int argc, char **argv, int *i,
    char *err, size_t errsz)
{
    if (rest[0] == '\0' || strcmp(rest, "f") == 0) {
        o->mode = SENDOPTS_FLUSH;
        return 0;
    }
    if (rest[0] == 'R') {
        const char *d = rest + 1;
        if (*d == '\0') {
            if (*i + 1 >= argc)
                return fail(err, errsz, "-qR needs a domain");
            d = argv[++*i];
        }
        o->mode = SENDOPTS_FLUSH;
        o->flush_domain = d;
        return 0;
    }
    if (rest[0] >= '0' && rest[0] <= '9') {
        o->mode = SENDOPTS_NOTHING;     /* a queue-run interval: posteld has its own */
        return 0;
    }
    return fail(err, errsz, "-q%s is not supported; use -q or -qR DOMAIN", rest);
}

int sendopts_parse(int argc, char **argv, enum sendopts_mode mode, struct sendopts *o,
    char *err, size_t errsz)
{
    memset(o, 0, sizeof *o);
    o->mode = mode;
    int i = 1;
    for (; i < argc; i++) {
        const char *w = argv[i];
        if (strcmp(w, "--") == 0) {
            i++;
            break;
        }
        if (w[0] != '-' || w[1] == '\0')
            break;
        if (w[1] == '-') {
            if (strcmp(w, "--json") == 0) {
                o->json = true;
                continue;
            }
            return fail(err, errsz, "unknown option %s", w);
        }
        if (w[1] == 'q') {
            int r = take_q(o, w + 2, argc, argv, &i, err, errsz);
            if (r)
                return r;
            continue;
        }
        for (size_t k = 1; w[k]; k++) {
            char c = w[k];
            if (strchr(with_arg, c) == NULL || c == 'd' || c == 'X') {
                int r = take(o, c, NULL, err, errsz);
                if (r)
                    return r;
                continue;
            }
            const char *a = w + k + 1;
            if (*a == '\0') {
                if (i + 1 >= argc) {
                    char opt[3] = { '-', c, '\0' };
                    return fail(err, errsz, "option %s needs an argument", opt);
                }
                a = argv[++i];
            }
            int r = take(o, c, a, err, errsz);
            if (r)
                return r;
            break;
        }
    }
    o->rcpts = argv + i;
    o->nrcpt = (size_t)(argc - i);
    if (o->json && o->mode != SENDOPTS_QUEUE)
        return fail(err, errsz, "--json goes with -bp (mailq)");
    return 0;
}
