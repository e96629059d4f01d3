/*
 * cli/sendmail.c - sendmail(1): read a message, submit it to posteld, and the other
 *        sendmail modes (-bs, -bv, -bp, -bi, -q).
 *
 * Owns:  see sendmail.h.
 * Never: parses SMTP paths itself: the daemon checks every address with the SMTP parser
 *        and limits, and its refusals are reported as they come.
 */
#include "cli/sendmail.h"

#include <errno.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli/addrlist.h"
#include "cli/ctlclient.h"
#include "cli/ctlcmd.h"
#include "cli/msgtext.h"
#include "cli/submit.h"
#include "conf/conf.h"
#include "deliver/local.h"
#include "queue/spool.h"
#include "smtp/parse.h"
#include "util/buf.h"
#include "util/fsx.h"
#include "util/str.h"
#include "util/xmalloc.h"

/* How often posteld looks into the drop directory (posteld.c PICKUP_EVERY). */
#define SENDMAIL_PICKUP_SECONDS 5

const char *sendmail_qualify_domain(const struct conf *c)
{
    if (conf_is_local_domain(c, c->hostname) || c->nlocal_domains == 0)
        return c->hostname;
    return c->local_domains[0];
}

/* Whether a has a domain: an '@' that is not inside a quoted local part. */
static bool is_qualified(const char *a)
{
    const char *at = strrchr(a, '@');
    const char *q = strrchr(a, '"');
    return at && (q == NULL || at > q);
}

static char *qualify(const char *a, const char *domain)
{
    if (is_qualified(a))
        return xstrdup(a);
    struct buf b;
    buf_init(&b, 0);
    (void)buf_printf(&b, "%s@%s", a, domain);
    char *s = xstrdup(buf_cstr(&b));
    buf_free(&b);
    return s;
}

/* Add each address of the list s to out (deduplicated, qualified). Returns 0 or -1. */
static int add_addrs(const char *prog, const char *what, const char *s, size_t n,
    const char *domain, struct addrlist *out)
{
    struct addrlist l = { 0 };
    char err[200];
    if (addrlist_parse(s, n, &l, err, sizeof err) == -1) {
        fprintf(stderr, "%s: %s: %s\n", prog, what, err);
        addrlist_free(&l);
        return -1;
    }
    for (size_t i = 0; i < l.n; i++) {
        char *a = qualify(l.addrs[i], domain);
        bool dup = false;
        for (size_t k = 0; k < out->n && !dup; k++)
            dup = strcasecmp(out->addrs[k], a) == 0;
        if (dup) {
            free(a);
            continue;
        }
        out->addrs = xreallocarray(out->addrs, out->n + 1, sizeof *out->addrs);
        out->addrs[out->n++] = a;
    }
    addrlist_free(&l);
    return 0;
}

/* Read standard input by sendmail's rules into out. Returns an exit status. */
static int read_message(const char *prog, bool ignore_dots, struct buf *out)
{
    struct msgtext_reader rd;
    msgtext_reader_init(&rd, ignore_dots);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int st = EX_OK;
    while ((n = getline(&line, &cap, stdin)) != -1) {
        int r = msgtext_feed_line(&rd, line, (size_t)n, out);
        if (r == 1)
            break;
        if (r == -1) {
            fprintf(stderr, "%s: message too large: the limit is %zu octets\n", prog,
                out->max);
            st = EX_DATAERR;
            break;
        }
    }
    if (st == EX_OK && ferror(stdin)) {
        fprintf(stderr, "%s: reading the message: %s\n", prog, strerror(errno));
        st = EX_IOERR;
    }
    free(line);
    return st;
}

/* The invoking user's login name and full name (GECOS up to the first comma). */
static void whoami(char *login, size_t lsz, char *full, size_t fsz)
{
    struct passwd *pw = getpwuid(getuid());
    if (pw && pw->pw_name[0]) {
        str_copy(login, lsz, pw->pw_name);
        const char *g = pw->pw_gecos ? pw->pw_gecos : "";
        const char *comma = strchr(g, ',');
        str_ncopy(full, fsz, g, comma ? (size_t)(comma - g) : strlen(g));
    } else {
        snprintf(login, lsz, "uid%u", (unsigned)getuid());
        full[0] = '\0';
    }
}

/* -f/-r: "" and "<>" are the null sender; otherwise one address. Returns 0 or -1. */
static int pick_sender(const char *prog, const char *given, const char *domain, char **out)
{
    struct addrlist l = { 0 };
    if (add_addrs(prog, "-f", given, strlen(given), domain, &l) == -1)
        return -1;
    if (l.n > 1) {
        fprintf(stderr, "%s: -f: one sender address, please\n", prog);
        addrlist_free(&l);
        return -1;
    }
    *out = l.n ? xstrdup(l.addrs[0]) : xstrdup("");
    addrlist_free(&l);
    return 0;
}

static void make_date(char *out, size_t osz)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(out, osz, "%a, %d %b %Y %H:%M:%S %z", &tm);
}

static void make_msgid(const char *host, char *out, size_t osz)
{
    char id[24];
    unsigned r = 0;
    spool_new_id(id, sizeof id);
    if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
        r = (unsigned)getpid();
    snprintf(out, osz, "<%s.%08X@%s>", id, r, host);
}

struct delivery {
    char *sender;
    struct addrlist rcpts;
    struct buf raw;             /* as read */
    struct buf text;            /* with the header fixes */
    bool *remote;
};

static void delivery_free(struct delivery *d)
{
    free(d->sender);
    addrlist_free(&d->rcpts);
    buf_free(&d->raw);
    buf_free(&d->text);
    free(d->remote);
}

/* Fill d: read the message, pick sender and recipients, fix the header. */
static int prepare(struct ctlcmd *cc, const struct sendopts *o, struct delivery *d)
{
    const struct conf *c = cc->conf;
    const char *dom = sendmail_qualify_domain(c);
    char login[256], gecos[256];
    whoami(login, sizeof login, gecos, sizeof gecos);
    if (o->sender) {
        if (pick_sender(cc->prog, o->sender, dom, &d->sender) == -1)
            return EX_USAGE;
    } else {
        d->sender = qualify(login, dom);
    }
    for (size_t i = 0; i < o->nrcpt; i++)
        if (add_addrs(cc->prog, o->rcpts[i], o->rcpts[i], strlen(o->rcpts[i]), dom,
                &d->rcpts) == -1)
            return EX_USAGE;
    if (!o->extract && d->rcpts.n == 0) {
        fprintf(stderr, "%s: no recipients given (name them, or use -t)\n", cc->prog);
        return EX_USAGE;
    }
    /* Room for what the daemon would take, plus the fields added here. */
    buf_init(&d->raw, c->message_size_limit ? (size_t)c->message_size_limit + 65536 : 0);
    int st = read_message(cc->prog, o->ignore_dots, &d->raw);
    if (st != EX_OK)
        return st;
    const char *m = d->raw.p ? d->raw.p : "";
    size_t body;
    bool sep;
    size_t hend = msgtext_header_end(m, d->raw.len, &body, &sep);
    if (o->extract) {
        struct addrlist hdr = { 0 };
        char err[300];
        if (msgtext_recipients(m, hend, &hdr, err, sizeof err) == -1) {
            fprintf(stderr, "%s: -t: %s\n", cc->prog, err);
            addrlist_free(&hdr);
            return EX_DATAERR;
        }
        /* Header recipients first, then those of the command line (Postfix's way). */
        struct addrlist all = { 0 };
        for (size_t i = 0; i < hdr.n; i++)
            (void)add_addrs(cc->prog, "-t", hdr.addrs[i], strlen(hdr.addrs[i]), dom, &all);
        for (size_t i = 0; i < d->rcpts.n; i++)
            (void)add_addrs(cc->prog, "-t", d->rcpts.addrs[i], strlen(d->rcpts.addrs[i]), dom,
                &all);
        addrlist_free(&hdr);
        addrlist_free(&d->rcpts);
        d->rcpts = all;
        if (d->rcpts.n == 0) {
            fprintf(stderr, "%s: -t: no recipients in To, Cc or Bcc\n", cc->prog);
            return EX_USAGE;
        }
    }
    const char *name = o->fullname;
    if (name == NULL) {
        const char *env = getenv("NAME");
        name = env && env[0] ? env : gecos;
    }
    struct buf from;
    buf_init(&from, 0);
    (void)msgtext_format_from(name, d->sender, &from);
    char date[64], msgid[600];
    make_date(date, sizeof date);
    make_msgid(c->hostname, msgid, sizeof msgid);
    struct msgtext_fix fx = {
        .remove_bcc = true,
        .from = d->sender[0] ? buf_cstr(&from) : NULL,
        .date = date,
        .msgid = msgid,
    };
    buf_init(&d->text, 0);
    (void)msgtext_rewrite(m, d->raw.len, &fx, &d->text);
    buf_free(&from);
    d->remote = xcalloc(d->rcpts.n + 1, sizeof *d->remote);
    for (size_t i = 0; i < d->rcpts.n; i++)
        d->remote[i] = !local_addr_is_local(c, d->rcpts.addrs[i]);
    return EX_OK;
}

static bool any_utf8(const struct delivery *d)
{
    if (msgtext_has_8bit(d->sender, strlen(d->sender)))
        return true;
    for (size_t i = 0; i < d->rcpts.n; i++)
        if (msgtext_has_8bit(d->rcpts.addrs[i], strlen(d->rcpts.addrs[i])))
            return true;
    return false;
}

static int deliver(struct ctlcmd *cc, const struct sendopts *o)
{
    struct delivery d;
    memset(&d, 0, sizeof d);
    int st = prepare(cc, o, &d);
    if (st != EX_OK) {
        delivery_free(&d);
        return st;
    }
    const char *text = d.text.p ? d.text.p : "";
    struct submit_msg m = {
        .sender = d.sender,
        .rcpts = (const char *const *)d.rcpts.addrs,
        .nrcpt = d.rcpts.n,
        .notify = o->notify,
        .ret = o->ret,
        .envid = o->envid,
        .body = o->body != SMTP_BODY_NONE ? o->body :
            msgtext_has_8bit(text, d.text.len) ? SMTP_BODY_8BITMIME : SMTP_BODY_NONE,
        .smtputf8 = any_utf8(&d),
        .helo = cc->conf->hostname,
        .text = text,
        .len = d.text.len,
        .trace_hold = o->verbose > 0,
    };
    struct submit_result res;
    st = submit_smtp(cc->socket, &m, stderr, &res);
    if (res.no_daemon) {
        char why[sizeof res.why];
        str_copy(why, sizeof why, res.why);
        st = submit_maildrop(cc->conf, &m, &res);
        if (st == EX_OK && o->verbose)
            printf("%s: posteld is not running (%s)\n%s: message left in %s/maildrop/%s; "
                "posteld picks it up when it starts and every %d seconds while it runs\n",
                cc->prog, why, cc->prog, cc->conf->spool_dir, res.id, SENDMAIL_PICKUP_SECONDS);
        else if (st != EX_OK)
            fprintf(stderr, "%s: posteld is not running (%s), and the drop directory "
                "failed: %s\n", cc->prog, why, res.why);
        delivery_free(&d);
        return st;
    }
    if (res.accepted == 0 || (st != EX_OK && st != EX_NOUSER && st != EX_NOPERM)) {
        fprintf(stderr, "%s: %s\n", cc->prog, res.why);
        delivery_free(&d);
        return st;
    }
    if (st != EX_OK)
        fprintf(stderr, "%s: %s\n", cc->prog, res.why);
    if (o->verbose) {
        printf("%s: submitted to posteld over %s: queued as %s\n", cc->prog, cc->socket,
            res.id[0] ? res.id : "(no id)");
        (void)fflush(stdout);
        if (res.id[0]) {
            int t = ctlcmd_trace(cc, res.id, (const char *const *)d.rcpts.addrs, d.remote,
                d.rcpts.n);
            (void)t;    /* the message is queued whatever the transcript showed */
        }
    }
    delivery_free(&d);
    return st;
}

/* -bs: the SMTP dialogue on stdin/stdout, relayed to posteld's SMTP engine. */
static int smtp_proxy(struct ctlcmd *cc)
{
    struct ctl c;
    if (ctl_open(&c, cc->socket) == -1 || ctl_write(&c, "SMTP\n", 5) == -1) {
        int e = errno;
        ctl_close(&c);
        printf("421 4.3.0 %s mail system unavailable\r\n", cc->conf->hostname);
        (void)fflush(stdout);
        fprintf(stderr, "%s: cannot connect to posteld at %s: %s\n", cc->prog, cc->socket,
            strerror(e));
        return EX_UNAVAILABLE;
    }
    char b[65536];
    bool in_open = true;
    int st = EX_OK;
    for (;;) {
        struct pollfd p[2] = { { c.fd, POLLIN, 0 }, { 0, POLLIN, 0 } };
        int np = in_open ? 2 : 1;
        if (poll(p, (nfds_t)np, -1) == -1) {
            if (errno == EINTR)
                continue;
            st = EX_OSERR;
            break;
        }
        if (p[0].revents) {
            ssize_t r = read(c.fd, b, sizeof b);
            if (r == -1 && errno == EINTR)
                continue;
            if (r <= 0)
                break;          /* the daemon ended the session */
            if (fsx_write_all(1, b, (size_t)r) == -1) {
                st = EX_IOERR;
                break;
            }
        }
        if (np == 2 && p[1].revents) {
            ssize_t r = read(0, b, sizeof b);
            if (r == -1 && errno == EINTR)
                continue;
            if (r <= 0) {
                /* No more commands: let the daemon finish its replies, then close. */
                in_open = false;
                (void)shutdown(c.fd, SHUT_WR);
                continue;
            }
            if (ctl_write(&c, b, (size_t)r) == -1)
                break;
        }
    }
    ctl_close(&c);
    return st;
}

int sendmail_main(int argc, char **argv, enum sendopts_mode mode, const char *prog)
{
    struct sendopts o;
    char err[300];
    int st = sendopts_parse(argc, argv, mode, &o, err, sizeof err);
    if (st != EX_OK) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return st;
    }
    if (o.mode == SENDOPTS_NOTHING)
        return EX_OK;
    struct ctlcmd cc;
    st = ctlcmd_init(&cc, prog, o.config);
    if (st != EX_OK)
        return st;
    switch (o.mode) {
    case SENDOPTS_DELIVER:
        st = deliver(&cc, &o);
        break;
    case SENDOPTS_SMTP:
        st = smtp_proxy(&cc);
        break;
    case SENDOPTS_VERIFY: {
        struct addrlist l = { 0 };
        for (size_t i = 0; i < o.nrcpt; i++) {
            char e2[200];
            if (addrlist_parse(o.rcpts[i], strlen(o.rcpts[i]), &l, e2, sizeof e2) == -1) {
                fprintf(stderr, "%s: %s: %s\n", prog, o.rcpts[i], e2);
                st = EX_USAGE;
            }
        }
        if (st == EX_OK && l.n == 0) {
            fprintf(stderr, "%s: -bv: name the addresses to verify\n", prog);
            st = EX_USAGE;
        }
        if (st == EX_OK)
            st = ctlcmd_verify(&cc, l.addrs, l.n);
        addrlist_free(&l);
        break;
    }
    case SENDOPTS_QUEUE:
        st = ctlcmd_list(&cc, o.json);
        break;
    case SENDOPTS_ALIASES:
        st = ctlcmd_admin(&cc, "RELOAD", NULL, false);
        break;
    case SENDOPTS_FLUSH:
        st = ctlcmd_admin(&cc, "FLUSH", o.flush_domain, o.verbose == 0);
        break;
    case SENDOPTS_NOTHING:
        break;
    }
    ctlcmd_free(&cc);
    return st;
}
