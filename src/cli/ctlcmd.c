/*
 * cli/ctlcmd.c - one control request per command, its output and exit status.
 *
 * Owns:  see ctlcmd.h.
 * Never: submits mail or parses command lines.
 */
#include "cli/ctlcmd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/ctlclient.h"
#include "cli/json.h"
#include "cli/mailq.h"
#include "cli/traceview.h"
#include "conf/conf.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define CTLCMD_TIMEOUT_MS (60 * 1000)

const char *ctlcmd_conf_path(const char *file)
{
    if (file)
        return file;
    const char *env = getenv("POSTEL_CONF");
    if (env && env[0])
        return env;
    if (access(CTLCMD_SYSTEM_CONF, F_OK) == 0)
        return CTLCMD_SYSTEM_CONF;
    return NULL;
}

int ctlcmd_init(struct ctlcmd *cc, const char *prog, const char *file)
{
    memset(cc, 0, sizeof *cc);
    cc->prog = prog;
    cc->conf_file = ctlcmd_conf_path(file);
    char err[1024];
    cc->conf = cc->conf_file ? conf_load(cc->conf_file, err, sizeof err) :
        conf_parse(conf_default_text, strlen(conf_default_text), "(built-in)", err,
            sizeof err);
    if (cc->conf == NULL) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return EX_CONFIG;
    }
    int n = cc->conf->control_socket ?
        snprintf(cc->socket, sizeof cc->socket, "%s", cc->conf->control_socket) :
        snprintf(cc->socket, sizeof cc->socket, "%s/control", cc->conf->spool_dir);
    if (n < 0 || (size_t)n >= sizeof cc->socket) {
        fprintf(stderr, "%s: the control socket path is too long\n", prog);
        conf_free(cc->conf);
        cc->conf = NULL;
        return EX_CONFIG;
    }
    return EX_OK;
}

void ctlcmd_free(struct ctlcmd *cc)
{
    conf_free(cc->conf);
    cc->conf = NULL;
}

bool ctlcmd_arg_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 1000)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 32 || s[i] == 127)
            return false;
    return true;
}

int ctlcmd_fail(const struct ctlcmd *cc, const char *request, int rc, const char *final,
    int err)
{
    if (rc == 0)
        return EX_OK;
    if (rc == -1) {
        bool down = err == ENOENT || err == ECONNREFUSED;
        fprintf(stderr, "%s: %s%s\n", cc->prog, final, down ? " (is posteld running?)" : "");
        return err == EACCES || err == EPERM ? EX_NOPERM : EX_UNAVAILABLE;
    }
    if (strncmp(final, "permission denied", 17) == 0) {
        fprintf(stderr, "%s: %s: %s; run it as root or as a member of the admin group\n",
            cc->prog, request, final);
        return EX_NOPERM;
    }
    fprintf(stderr, "%s: %s: %s\n", cc->prog, request, final);
    if (strstr(final, "no such message"))
        return EX_NOINPUT;
    if (strncmp(final, "unknown request", 15) == 0 || strncmp(final, "usage", 5) == 0)
        return EX_SOFTWARE;
    if (strstr(final, "try again"))
        return EX_TEMPFAIL;
    return EX_UNAVAILABLE;
}

/* Run request; data lines go to fn. Returns the exit status (errors printed). */
static int request(struct ctlcmd *cc, const char *req, int timeout_ms,
    int (*fn)(void *, const char *, size_t), void *arg, char *final, size_t fsz)
{
    errno = 0;
    int rc = ctl_request(cc->socket, req, timeout_ms, fn, arg, final, fsz);
    int e = errno;
    if (rc == 0)
        return EX_OK;
    /* "VERIFY a@b" and friends: name the verb only, the argument is in the message. */
    char verb[32];
    const char *sp = strchr(req, ' ');
    str_ncopy(verb, sizeof verb, req, sp ? (size_t)(sp - req) : strlen(req));
    return ctlcmd_fail(cc, verb, rc, final, e);
}

/* ---- LIST ---- */

struct lines {
    char **v;
    size_t n;
};

static int collect(void *arg, const char *line, size_t len)
{
    struct lines *l = arg;
    l->v = xreallocarray(l->v, l->n + 1, sizeof *l->v);
    l->v[l->n++] = xstrndup(line, len);
    return 0;
}

static void lines_free(struct lines *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int print_buf(struct buf *b)
{
    if (b->len && fwrite(b->p, 1, b->len, stdout) != b->len)
        return EX_IOERR;
    return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
}

int ctlcmd_list(struct ctlcmd *cc, bool json)
{
    struct lines l = { 0 };
    char final[1024];
    int st = request(cc, "LIST", CTLCMD_TIMEOUT_MS, collect, &l, final, sizeof final);
    if (st != EX_OK) {
        lines_free(&l);
        return st;
    }
    struct buf out;
    buf_init(&out, 0);
    if (json) {
        (void)buf_puts(&out, "[");
        for (size_t i = 0; i < l.n; i++)
            (void)buf_printf(&out, "%s\n%s", i ? "," : "", l.v[i]);
        (void)buf_puts(&out, l.n ? "\n]\n" : "]\n");
    } else {
        struct json **msgs = xcalloc(l.n + 1, sizeof *msgs);
        for (size_t i = 0; i < l.n && st == EX_OK; i++) {
            char err[200];
            msgs[i] = json_parse(l.v[i], strlen(l.v[i]), err, sizeof err);
            if (msgs[i] == NULL) {
                fprintf(stderr, "%s: LIST: bad answer from posteld: %s\n", cc->prog, err);
                st = EX_PROTOCOL;
            }
        }
        if (st == EX_OK)
            (void)mailq_format((const struct json *const *)msgs, l.n, &out);
        for (size_t i = 0; i < l.n; i++)
            json_free(msgs[i]);
        free(msgs);
    }
    if (st == EX_OK)
        st = print_buf(&out);
    buf_free(&out);
    lines_free(&l);
    return st;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 :
        c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* A header line as SHOW sends it (util/str.h str_escape: \xHH): TAB, printable ASCII and
 * 8-bit octets come back; other control octets stay escaped. */
static void put_header(struct buf *out, const char *s)
{
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] == 'x' && hexval(s[2]) >= 0 && hexval(s[3]) >= 0) {
            unsigned char c = (unsigned char)(hexval(s[2]) << 4 | hexval(s[3]));
            if (c == '\t' || (c >= 32 && c != 127)) {
                (void)buf_append(out, &c, 1);
                s += 3;
                continue;
            }
        }
        (void)buf_append(out, s, 1);
    }
    (void)buf_puts(out, "\n");
}

int ctlcmd_show(struct ctlcmd *cc, const char *id, bool json)
{
    if (!ctlcmd_arg_ok(id) || strchr(id, ' ')) {
        fprintf(stderr, "%s: bad queue id\n", cc->prog);
        return EX_USAGE;
    }
    struct lines l = { 0 };
    char final[1024], req[1100];
    snprintf(req, sizeof req, "SHOW %s", id);
    int st = request(cc, req, CTLCMD_TIMEOUT_MS, collect, &l, final, sizeof final);
    if (st != EX_OK) {
        lines_free(&l);
        return st;
    }
    struct buf out;
    buf_init(&out, 0);
    for (size_t i = 0; i < l.n; i++) {
        const char *s = l.v[i];
        if (s[0] == '{') {
            if (json) {
                (void)buf_printf(&out, "%s\n", s);
                continue;
            }
            char err[200];
            struct json *m = json_parse(s, strlen(s), err, sizeof err);
            if (m == NULL) {
                fprintf(stderr, "%s: SHOW: bad answer from posteld: %s\n", cc->prog, err);
                st = EX_PROTOCOL;
                break;
            }
            (void)mailq_title(&out);
            (void)mailq_entry(m, &out);
            json_free(m);
        } else if (s[0] == 'H' && s[1] == ' ' && !json) {
            put_header(&out, s + 2);
        }
    }
    if (st == EX_OK)
        st = print_buf(&out);
    buf_free(&out);
    lines_free(&l);
    return st;
}

int ctlcmd_admin(struct ctlcmd *cc, const char *verb, const char *arg, bool quiet)
{
    if (arg && (!ctlcmd_arg_ok(arg) || strchr(arg, ' '))) {
        fprintf(stderr, "%s: bad argument for %s\n", cc->prog, verb);
        return EX_USAGE;
    }
    char req[1100], final[1024];
    snprintf(req, sizeof req, "%s%s%s", verb, arg ? " " : "", arg ? arg : "");
    int st = request(cc, req, CTLCMD_TIMEOUT_MS, NULL, NULL, final, sizeof final);
    if (st != EX_OK || quiet)
        return st;
    if (strcmp(verb, "FLUSH") == 0) {
        unsigned long n = strtoul(final, NULL, 10);
        printf("%lu message%s scheduled for delivery%s%s\n", n, n == 1 ? "" : "s",
            arg ? " to " : "", arg ? arg : "");
    } else if (strcmp(verb, "RELOAD") == 0) {
        printf("%s\n", final[0] ? final : "aliases reloaded");
    } else {
        const char *done = strcmp(verb, "HOLD") == 0 ? "held" :
            strcmp(verb, "RELEASE") == 0 ? "released" :
            strcmp(verb, "DELETE") == 0 ? "deleted" : "bounced";
        printf("%s: %s\n", arg ? arg : "", done);
    }
    return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
}

static int print_line(void *arg, const char *line, size_t len)
{
    (void)arg;
    printf("%.*s\n", (int)len, line);
    return 0;
}

int ctlcmd_status(struct ctlcmd *cc)
{
    char final[1024];
    int st = request(cc, "STATUS", CTLCMD_TIMEOUT_MS, print_line, NULL, final, sizeof final);
    if (fflush(stdout) != 0 && st == EX_OK)
        st = EX_IOERR;
    return st;
}

/* ---- VERIFY ---- */

struct verify_view {
    const char *addr;
    bool printed;               /* a finding was printed */
    bool errors;                /* an "error" line came */
    bool mailer;                /* the "mailer smtp" line was printed */
    char remote[600];           /* "remote DOMAIN [via relayhost X]" text, until an address */
};

static int verify_line(void *arg, const char *line, size_t len)
{
    (void)len;
    struct verify_view *v = arg;
    const char *sp = strchr(line, ' ');
    const char *rest = sp ? sp + 1 : "";
    size_t kl = sp ? (size_t)(sp - line) : strlen(line);
    if (kl == 5 && strncmp(line, "local", 5) == 0) {
        printf("%s... deliverable: mailbox %s\n", v->addr, rest);
    } else if (kl == 5 && strncmp(line, "alias", 5) == 0) {
        printf("%s... deliverable: alias %s\n", v->addr, rest);
    } else if (kl == 7 && strncmp(line, "forward", 7) == 0) {
        printf("%s... deliverable: forwarded to %s\n", v->addr, rest);
    } else if (kl == 6 && strncmp(line, "remote", 6) == 0) {
        str_copy(v->remote, sizeof v->remote, rest);
        return 0;
    } else if (kl == 2 && strncmp(line, "mx", 2) == 0) {
        return 0;               /* the addresses that follow say it all */
    } else if (kl == 7 && strncmp(line, "address", 7) == 0) {
        if (v->mailer)
            return 0;           /* the first address is the one tried first */
        const char *host_end = strchr(rest, ' ');
        const char *via = strstr(v->remote, " via relayhost ");
        if (host_end)
            printf("%s... deliverable: mailer smtp, %s %.*s [%s]\n", v->addr,
                via ? "relay" : "host", (int)(host_end - rest), rest, host_end + 1);
        else
            printf("%s... deliverable: mailer smtp, host %s\n", v->addr, rest);
        v->mailer = true;
    } else if (kl == 5 && strncmp(line, "error", 5) == 0) {
        printf("%s... undeliverable: %s\n", v->addr, rest);
        v->errors = true;
    } else {
        printf("%s... %s\n", v->addr, line);
    }
    v->printed = true;
    return 0;
}

int ctlcmd_verify(struct ctlcmd *cc, char *const *addrs, size_t n)
{
    int worst = EX_OK;
    for (size_t i = 0; i < n; i++) {
        if (!ctlcmd_arg_ok(addrs[i])) {
            fprintf(stderr, "%s: bad address\n", cc->prog);
            worst = EX_USAGE;
            continue;
        }
        struct verify_view v = { .addr = addrs[i] };
        char req[1100], final[1024];
        snprintf(req, sizeof req, "VERIFY %s", addrs[i]);
        errno = 0;
        int rc = ctl_request(cc->socket, req, CTLCMD_TIMEOUT_MS, verify_line, &v, final,
            sizeof final);
        int e = errno;
        int st = EX_OK;
        if (rc == 0 && !v.mailer && v.remote[0]) {
            printf("%s... deliverable: mailer smtp, domain %s\n", addrs[i], v.remote);
        } else if (rc == 1) {
            if (!v.errors)
                printf("%s... undeliverable: %s\n", addrs[i], final);
            st = strstr(final, "try again") ? EX_TEMPFAIL :
                strncmp(final, "undeliverable", 13) == 0 ? EX_NOUSER : EX_DATAERR;
        } else if (rc == -1) {
            st = ctlcmd_fail(cc, "VERIFY", rc, final, e);
            return st;
        }
        (void)fflush(stdout);
        if (st != EX_OK && (worst == EX_OK || st == EX_TEMPFAIL))
            worst = st;
    }
    return worst;
}

/* ---- TRACE ---- */

struct trace_run {
    struct traceview view;
    struct buf out;
};

static int trace_line(void *arg, const char *line, size_t len)
{
    (void)len;
    struct trace_run *t = arg;
    char copy[4200];
    str_copy(copy, sizeof copy, line);
    const char *kind, *text;
    buf_reset(&t->out);
    if (traceview_split(copy, &kind, &text) == 0)
        (void)traceview_feed(&t->view, kind, text, &t->out);
    else
        (void)buf_printf(&t->out, "%s\n", line);
    (void)print_buf(&t->out);
    return 0;
}

int ctlcmd_trace(struct ctlcmd *cc, const char *id, const char *const *rcpts,
    const bool *remote, size_t n)
{
    struct trace_run t;
    traceview_init(&t.view, rcpts, remote, n);
    buf_init(&t.out, 0);
    char req[100], final[1024];
    snprintf(req, sizeof req, "TRACE %.64s", id);
    errno = 0;
    int rc = ctl_request(cc->socket, req, CTLCMD_TRACE_TIMEOUT * 1000, trace_line, &t, final,
        sizeof final);
    int e = errno;
    buf_reset(&t.out);
    (void)traceview_end(&t.view, &t.out);
    (void)print_buf(&t.out);
    buf_free(&t.out);
    if (rc == 0)
        return EX_OK;
    return ctlcmd_fail(cc, "TRACE", rc, final, e);
}
