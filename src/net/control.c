/*
 * net/control.c - the local control socket (protocol in control.h).
 *
 * Requests dispatch from one table (creq_cmds[]: name, admin flag, argument rule, handler).
 */
#include "net/control.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "conf/conf.h"
#include "deliver/local.h"
#include "deliver/mx.h"
#include "deliver/remote.h"
#include "net/conn.h"
#include "net/smtpd.h"
#include "policy/aliases.h"
#include "queue/qmgr.h"
#include "queue/spool.h"
#include "smtp/parse.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/tpool.h"
#include "util/xmalloc.h"

#define REQ_MAX 4096
/* Input read ahead (a request line, and the start of an SMTP session after SMTP). */
#define CTL_IN_MAX (64 * 1024)

struct control {
    struct control_deps d;
    struct evconnlistener *ls;
    char *path;
    struct creq *reqs;
};

/* One client connection. */
struct creq {
    struct control *ctl;
    struct conn *conn;          /* CONN_BUSY: a worker job or a lookup holds this request */
    uid_t uid;
    gid_t gid;
    char user[96];
    bool admin;
    struct tpool_job job;
    char arg[REQ_MAX];
    struct buf out;             /* a worker's answer */
    struct aliases *al;         /* VERIFY: the table in use (a reference) */
    struct conf *newconf;       /* RELOAD: parsed on a worker */
    struct conf *conf;          /* VERIFY: the configuration in use (a reference) */
    struct creq *prev, *next;
};

static void creq_free(struct creq *r)
{
    struct control *ctl = r->ctl;
    qmgr_untrace(ctl->d.qmgr, r);
    if (r->prev)
        r->prev->next = r->next;
    else
        ctl->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    conn_free(r->conn);
    buf_free(&r->out);
    conf_free(r->conf);
    conf_free(r->newconf);
    free(r);
}

/* Send the final line and close once it is out. */
static void finish(struct creq *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void finish(struct creq *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(conn_output(r->conn), fmt, ap);
    va_end(ap);
    evbuffer_add(conn_output(r->conn), "\n", 1);
    conn_close(r->conn);        /* CONN_EV_CLOSED once the line is out */
}

static void line(struct creq *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(struct creq *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(conn_output(r->conn), fmt, ap);
    va_end(ap);
    evbuffer_add(conn_output(r->conn), "\n", 1);
}

/* JSON string (escaped) appended to b. */
static void json_str(struct buf *b, const char *s)
{
    buf_puts(b, "\"");
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            buf_printf(b, "\\u%04x", c);
        else
            buf_append(b, s, 1);
    }
    buf_puts(b, "\"");
}

static void json_msg(struct buf *b, const struct env_msg *m, bool busy)
{
    static const char *st[] = { "pending", "delivered", "failed" };
    buf_puts(b, "{\"id\":");
    json_str(b, m->id);
    buf_printf(b, ",\"size\":%llu,\"arrival\":%lld,\"sender\":", m->size, (long long)m->arrival);
    json_str(b, m->sender);
    buf_printf(b, ",\"held\":%s,\"active\":%s", m->held ? "true" : "false",
        busy ? "true" : "false");
    if (m->user) {
        buf_puts(b, ",\"user\":");
        json_str(b, m->user);
    }
    buf_puts(b, ",\"recipients\":[");
    for (size_t i = 0; i < m->nrcpt; i++) {
        const struct env_rcpt *rc = &m->rcpts[i];
        buf_puts(b, i ? ",{\"address\":" : "{\"address\":");
        json_str(b, rc->addr);
        buf_printf(b, ",\"state\":\"%s\",\"attempts\":%u,\"next_try\":%lld,\"status\":",
            st[rc->state], rc->attempts, (long long)rc->next_try);
        json_str(b, rc->status ? rc->status : "");
        buf_puts(b, ",\"host\":");
        json_str(b, rc->host ? rc->host : "");
        buf_puts(b, ",\"reason\":");
        json_str(b, rc->reason ? rc->reason : "");
        buf_puts(b, "}");
    }
    buf_puts(b, "]}");
}

static void list_one(void *arg, const struct env_msg *m, bool busy)
{
    struct creq *r = arg;
    struct buf b;
    buf_init(&b, 0);
    json_msg(&b, m, busy);
    line(r, "%s", buf_cstr(&b));
    buf_free(&b);
}

/* ---- TRACE ---- */

static void trace_line(void *arg, const char *kind, const char *text)
{
    struct creq *r = arg;
    line(r, "T %s %s", kind, text);
}

static void trace_done(void *arg)
{
    struct creq *r = arg;
    finish(r, "OK");
}

/* ---- worker-backed requests: SHOW and VERIFY (local part) ---- */

static void show_job(struct tpool_job *j)
{
    struct creq *r = (struct creq *)((char *)j - offsetof(struct creq, job));
    struct env_msg m;
    struct buf content;
    char err[256];
    buf_init(&content, 0);
    if (spool_load(r->ctl->d.spool, r->arg, &m, &content, err, sizeof err) != 0) {
        buf_printf(&r->out, "ERR %s: %s", r->arg, err);
        buf_free(&content);
        return;
    }
    m.size = content.len;
    json_msg(&r->out, &m, false);
    buf_puts(&r->out, "\n");
    /* the header block */
    const char *p = content.p ? content.p : "", *e = p + content.len;
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        size_t l = nl ? (size_t)(nl - p) : (size_t)(e - p);
        if (l == 0)
            break;
        char esc[2100];
        buf_printf(&r->out, "H %s\n", str_escape(esc, sizeof esc, p, l < 1000 ? l : 1000));
        p += l + 1;
    }
    buf_puts(&r->out, "OK");
    env_free(&m);
    buf_free(&content);
}

static bool is_local_cb(const char *domain, void *ctx)
{
    return conf_is_local_domain(ctx, domain);
}

static void verify_job(struct tpool_job *j)
{
    struct creq *r = (struct creq *)((char *)j - offsetof(struct creq, job));
    const struct conf *c = r->conf;
    const struct aliases *al = r->al;
    char local[SMTP_LOCAL_MAX * 2 + 3];
    str_copy(local, sizeof local, r->arg);
    char *at = strrchr(local, '@');
    if (at)
        *at = '\0';
    str_lower(local);
    struct alias_result res = { 0 };
    char err[300];
    if (aliases_exists(al, local)) {
        const char *const *mem = aliases_members(al, local);
        buf_printf(&r->out, "alias %s ->", local);
        for (size_t i = 0; mem && mem[i]; i++)
            buf_printf(&r->out, "%s %s", i ? "," : "", mem[i]);
        buf_puts(&r->out, "\n");
    }
    int x = aliases_expand(al, local, is_local_cb, (void *)c, &res, err, sizeof err);
    if (x != 0) {
        buf_printf(&r->out, "error %s\nERR undeliverable", err);
        return;
    }
    bool ok = true;
    for (size_t i = 0; i < res.nlocal; i++) {
        if (conf_is_local_user(c, res.local[i])) {
            buf_printf(&r->out, "local %s\n", res.local[i]);
        } else {
            buf_printf(&r->out, "error no such mailbox: %s\n", res.local[i]);
            ok = false;
        }
    }
    for (size_t i = 0; i < res.nremote; i++)
        buf_printf(&r->out, "forward %s\n", res.remote[i]);
    alias_result_free(&res);
    buf_puts(&r->out, ok ? "OK" : "ERR undeliverable");
}

/* RELOAD, worker side: read the configuration again (file or built-in). */
static void reload_job(struct tpool_job *j)
{
    struct creq *r = (struct creq *)((char *)j - offsetof(struct creq, job));
    const char *file = r->ctl->d.conf_file;
    char err[600];
    r->newconf = file ? conf_load(file, err, sizeof err) :
        conf_parse(conf_default_text, strlen(conf_default_text), "(built-in)", err, sizeof err);
    if (r->newconf == NULL) {
        /* one error per line in err; the answer is one line */
        for (char *nl = strchr(err, '\n'); nl; nl = strchr(nl, '\n'))
            *nl = ' ';
        buf_printf(&r->out, "ERR %s", err);
    } else {
        buf_printf(&r->out, "OK");
    }
}

static void job_done(struct tpool_job *j)
{
    struct creq *r = (struct creq *)((char *)j - offsetof(struct creq, job));
    bool dead = conn_state(r->conn) == CONN_DEAD;
    if (!dead)
        conn_set_state(r->conn, CONN_OPEN);
    aliases_free(r->al);
    r->al = NULL;
    conf_free(r->conf);
    r->conf = NULL;
    if (r->newconf) {
        /* RELOAD: settings read only at start stay as they are; the rest takes effect for
         * new sessions and rounds. */
        struct control *ctl = r->ctl;
        char changed[600];
        conf_keep_static(r->newconf, ctl->d.conf, changed, sizeof changed);
        struct conf *nc = r->newconf;
        r->newconf = NULL;
        ctl->d.conf = nc;
        ctl->d.reload(ctl->d.reload_arg, nc);
        log_info("configuration reloaded: %zu aliases%s%s", aliases_count(nc->aliases),
            changed[0] ? "; these take a restart: " : "", changed);
        buf_reset(&r->out);
        buf_printf(&r->out, "OK configuration reloaded%s%s", changed[0] ?
            "; these take a restart: " : "", changed);
    }
    if (dead) {
        creq_free(r);
        return;
    }
    finish(r, "%s", buf_cstr(&r->out));
}

static void run_job(struct creq *r, void (*fn)(struct tpool_job *))
{
    conn_set_state(r->conn, CONN_BUSY);
    r->job.fn = fn;
    r->job.done = job_done;
    tpool_submit(r->ctl->d.wq, &r->job);
}

static void on_route(void *arg, enum mx_status st, const char *code, const char *why,
    const struct mx_target *t, size_t n)
{
    struct creq *r = arg;
    if (conn_state(r->conn) == CONN_DEAD) {
        creq_free(r);
        return;
    }
    conn_set_state(r->conn, CONN_OPEN);
    if (st != MX_OK) {
        line(r, "error %s %s", code, why);
        finish(r, "ERR %s", st == MX_PERM ? "undeliverable" : "try again later");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        char ip[64] = "";
        const struct sockaddr *sa = (const struct sockaddr *)&t[i].addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip,
                sizeof ip);
        else
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
                ip, sizeof ip);
        line(r, "address %s %s", t[i].host, ip);
    }
    finish(r, "OK");
}

static void do_verify(struct creq *r, const char *a)
{
    const struct conf *c = r->ctl->d.conf;
    char path[SMTP_PATH_MAX * 2];
    if (a[0] == '<')
        str_copy(path, sizeof path, a);
    else
        snprintf(path, sizeof path, "<%s>", a);
    struct smtp_path p;
    size_t end;
    enum smtp_perr e = smtp_parse_path(path, strlen(path), false, true, &p, &end);
    if (e != SMTP_PERR_OK && strchr(a, '@') == NULL && a[0]) {
        /* a bare local name */
        snprintf(path, sizeof path, "<%s@%s>", a,
            c->nlocal_domains ? c->local_domains[0] : c->hostname);
        e = smtp_parse_path(path, strlen(path), false, true, &p, &end);
    }
    if (e != SMTP_PERR_OK) {
        finish(r, "ERR %s", smtp_perr_reply(e, true));
        return;
    }
    if (p.postmaster || (strchr(a, '@') == NULL) || conf_is_local_domain(c, p.domain)) {
        str_copy(r->arg, sizeof r->arg, p.postmaster ? "postmaster" : p.local);
        r->conf = conf_ref(r->ctl->d.conf);
        r->al = aliases_ref(c->aliases);
        run_job(r, verify_job);
        return;
    }
    if (!c->relayhost) {
        line(r, "remote %s", p.domain);
    } else {
        line(r, "remote %s via relayhost %s", p.domain, c->relayhost);
    }
    char d[300];
    int port = (int)c->smtp_port, no_mx = 0;
    if (c->relayhost)
        mx_relayhost(c->relayhost, d, sizeof d, &port, &no_mx);
    else
        str_copy(d, sizeof d, p.domain);
    conn_set_state(r->conn, CONN_BUSY);
    mx_route(r->ctl->d.dns, d, no_mx, c->hostname, port, on_route, r);
}

/* ---- requests ---- */

static void req_smtp(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    struct control *ctl = r->ctl;
    bool trace = !strcmp(arg, "TRACE");
    /* Hand the socket over to the SMTP engine, with what was read past the request. */
    int fd = conn_release_fd(r->conn);
    r->conn = NULL;
    char user[96];
    str_copy(user, sizeof user, r->user);
    creq_free(r);
    if (fd != -1)
        smtpd_adopt(ctl->d.smtpd, fd, user, trace, rest, restlen);
}

static void req_trace(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    (void)rest;
    (void)restlen;
    if (qmgr_trace(r->ctl->d.qmgr, arg, trace_line, trace_done, r) == -1)
        finish(r, "ERR %s: no such message in the queue (delivered already?)", arg);
}

static void req_list(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    (void)arg;
    (void)rest;
    (void)restlen;
    qmgr_foreach(r->ctl->d.qmgr, list_one, r);
    finish(r, "OK");
}

static void req_show(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    (void)rest;
    (void)restlen;
    if (qmgr_find(r->ctl->d.qmgr, arg) == NULL) {
        finish(r, "ERR %s: no such message", arg);
        return;
    }
    str_copy(r->arg, sizeof r->arg, arg);
    run_job(r, show_job);
}

static void req_status(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    (void)arg;
    (void)rest;
    (void)restlen;
    struct control *ctl = r->ctl;
    time_t now = time(NULL);
    line(r, "version " POSTEL_VERSION);
    line(r, "uptime %lld", (long long)(now - ctl->d.started));
    line(r, "sessions %zu", smtpd_sessions(ctl->d.smtpd));
    line(r, "queue %zu", qmgr_count(ctl->d.qmgr));
    line(r, "active %zu", qmgr_busy(ctl->d.qmgr));
    line(r, "outbound_connections %zu", remote_active(ctl->d.remote));
    struct qmgr_stats st;
    qmgr_get_stats(ctl->d.qmgr, &st);
    line(r, "held %zu", st.held);
    line(r, "received %llu", smtpd_received(ctl->d.smtpd));
    line(r, "delivered %llu", st.delivered);
    line(r, "bounced %llu", st.failed);
    line(r, "deferred %llu", st.deferred);
    finish(r, "OK");
}

static void req_verify(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    (void)rest;
    (void)restlen;
    do_verify(r, arg);
}

static void req_flush(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    (void)rest;
    (void)restlen;
    size_t n = qmgr_flush(r->ctl->d.qmgr, *arg ? arg : NULL);
    log_info("flush%s%s by %s: %zu message(s)", *arg ? " " : "", arg, r->user, n);
    finish(r, "OK %zu", n);
}

/* The answer to HOLD, RELEASE, DELETE and BOUNCE: x is the queue manager's result. */
static void queue_op_done(struct creq *r, const char *arg, int x)
{
    if (x == -1)
        finish(r, "ERR %s: no such message", arg);
    else
        finish(r, "OK");
}

static void req_hold(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    (void)rest;
    (void)restlen;
    queue_op_done(r, arg, qmgr_hold(r->ctl->d.qmgr, arg, true));
}

static void req_release(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    (void)rest;
    (void)restlen;
    queue_op_done(r, arg, qmgr_hold(r->ctl->d.qmgr, arg, false));
}

static void req_delete(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    (void)rest;
    (void)restlen;
    queue_op_done(r, arg, qmgr_delete(r->ctl->d.qmgr, arg));
}

static void req_bounce(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    (void)rest;
    (void)restlen;
    queue_op_done(r, arg, qmgr_bounce(r->ctl->d.qmgr, arg));
}

static void req_reload(struct creq *r, const char *arg, const char *rest, size_t restlen)
{
    (void)arg;
    (void)rest;
    (void)restlen;
    run_job(r, reload_job);
}

/* ---- the request table and the dispatch ---- */

enum {
    RQ_ADMIN = 1u << 0,         /* root or the admin group only */
    RQ_ARG   = 1u << 1,         /* needs an argument: "ERR usage: <usage>" */
};

struct creq_cmd {
    const char *name;
    unsigned flags;             /* RQ_* */
    const char *usage;          /* for RQ_ARG */
    /* Answer the request (finish() or a job that will); arg is "" when none was given;
     * rest: what the client sent past the request line (SMTP hands it on). */
    void (*run)(struct creq *r, const char *arg, const char *rest, size_t restlen);
};

static const struct creq_cmd creq_cmds[] = {
    { "SMTP",    0,        NULL,             req_smtp },
    { "TRACE",   0,        NULL,             req_trace },
    { "LIST",    0,        NULL,             req_list },
    { "SHOW",    0,        NULL,             req_show },
    { "STATUS",  0,        NULL,             req_status },
    { "VERIFY",  RQ_ARG,   "VERIFY ADDRESS", req_verify },
    { "FLUSH",   RQ_ADMIN, NULL,             req_flush },
    { "HOLD",    RQ_ADMIN, NULL,             req_hold },
    { "RELEASE", RQ_ADMIN, NULL,             req_release },
    { "DELETE",  RQ_ADMIN, NULL,             req_delete },
    { "BOUNCE",  RQ_ADMIN, NULL,             req_bounce },
    { "RELOAD",  RQ_ADMIN, NULL,             req_reload },
};

static void dispatch(struct creq *r, char *req, const char *rest, size_t restlen)
{
    char *arg = strchr(req, ' ');
    if (arg)
        *arg++ = '\0';
    else
        arg = req + strlen(req);
    const struct creq_cmd *cmd = NULL;
    for (size_t i = 0; i < sizeof creq_cmds / sizeof creq_cmds[0]; i++) {
        if (!strcmp(req, creq_cmds[i].name)) {
            cmd = &creq_cmds[i];
            break;
        }
    }
    if (cmd == NULL) {
        finish(r, "ERR unknown request");
        return;
    }
    if ((cmd->flags & RQ_ADMIN) && !r->admin) {
        finish(r, "ERR permission denied (root or group %s only)",
            r->ctl->d.conf->admin_group);
        return;
    }
    if ((cmd->flags & RQ_ARG) && *arg == '\0') {
        finish(r, "ERR usage: %s", cmd->usage);
        return;
    }
    cmd->run(r, arg, rest, restlen);
}

static void on_input(struct conn *cn, void *arg)
{
    struct creq *r = arg;
    struct evbuffer *in = conn_input(cn);
    if (conn_state(cn) != CONN_OPEN)
        return;
    struct evbuffer_ptr p = evbuffer_search(in, "\n", 1, NULL);
    if (p.pos == -1) {
        if (evbuffer_get_length(in) > REQ_MAX)
            finish(r, "ERR request too long");
        return;
    }
    if ((size_t)p.pos >= REQ_MAX) {
        finish(r, "ERR request too long");
        return;
    }
    char req[REQ_MAX + 1];
    evbuffer_remove(in, req, (size_t)p.pos + 1);
    req[p.pos] = '\0';
    if (p.pos > 0 && req[p.pos - 1] == '\r')
        req[p.pos - 1] = '\0';
    for (char *c = req; *c; c++) {
        if ((unsigned char)*c < 0x20) {
            finish(r, "ERR bad request");
            return;
        }
    }
    conn_read(cn, false);
    size_t restlen = evbuffer_get_length(in);
    char *rest = restlen ? xmalloc(restlen) : NULL;
    if (restlen)
        evbuffer_remove(in, rest, restlen);
    log_debug("control: request \"%s\" with %zu more octets", req, restlen);
    dispatch(r, req, rest, restlen);
    free(rest);
}

static void on_drained(struct conn *cn, void *arg)
{
    (void)cn;
    (void)arg;
}

/* The client went away (or its request is answered: CONN_EV_CLOSED). */
static void on_event(struct conn *cn, enum conn_event ev, void *arg)
{
    struct creq *r = arg;
    if (ev == CONN_EV_CONNECTED || ev == CONN_EV_TLS)
        return;
    if (conn_state(cn) == CONN_BUSY) {
        conn_set_state(cn, CONN_DEAD);
        return;
    }
    creq_free(r);
}

static const struct conn_ops creq_ops = { on_input, on_drained, on_event };

/* Is uid root or a member of the admin group? */
static bool is_admin(const struct conf *c, uid_t uid, gid_t gid)
{
    if (uid == 0)
        return true;
    if (c->admin_group == NULL)
        return false;
    /* XXX: NSS lookups block; they are local file reads on the systems we target. */
    struct group gr, *g = NULL;
    char gb[4096];
    if (getgrnam_r(c->admin_group, &gr, gb, sizeof gb, &g) != 0 || g == NULL)
        return false;
    if (g->gr_gid == gid)
        return true;
    struct passwd pw, *p = NULL;
    char pb[4096];
    if (getpwuid_r(uid, &pw, pb, sizeof pb, &p) != 0 || p == NULL)
        return false;
    for (char **m = g->gr_mem; m && *m; m++)
        if (strcmp(*m, p->pw_name) == 0)
            return true;
    return false;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct control *ctl = arg;
    struct ucred cr;
    socklen_t cl = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &cl) == -1) {
        close(fd);
        return;
    }
    struct creq *r = xcalloc(1, sizeof *r);
    r->ctl = ctl;
    r->uid = cr.uid;
    r->gid = cr.gid;
    buf_init(&r->out, 0);
    struct passwd pw, *p = NULL;
    char pb[4096];
    if (getpwuid_r(cr.uid, &pw, pb, sizeof pb, &p) == 0 && p)
        snprintf(r->user, sizeof r->user, "%.60s (uid %u)", p->pw_name, (unsigned)cr.uid);
    else
        snprintf(r->user, sizeof r->user, "uid %u", (unsigned)cr.uid);
    r->admin = is_admin(ctl->d.conf, cr.uid, cr.gid);
    r->conn = conn_new(ctl->d.base, fd, NULL, CTL_IN_MAX, 0, &creq_ops, r, "control");
    if (r->conn == NULL) {
        buf_free(&r->out);
        free(r);
        return;
    }
    r->next = ctl->reqs;
    if (ctl->reqs)
        ctl->reqs->prev = r;
    ctl->reqs = r;
    conn_set_timeouts(r->conn, 300, 0);
}

struct control *control_new(const struct control_deps *deps, const char *path)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (str_copy(sun.sun_path, sizeof sun.sun_path, path) == -1) {
        log_warnx("control socket path too long: %s", path);
        return NULL;
    }
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    struct control *ctl = xcalloc(1, sizeof *ctl);
    ctl->d = *deps;
    ctl->path = xstrdup(path);
    mode_t old = umask(0);
    ctl->ls = evconnlistener_new_bind(deps->base, on_accept, ctl,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 128, (struct sockaddr *)&sun,
        (int)sizeof sun);
    umask(old);
    if (ctl->ls == NULL) {
        log_warn("cannot listen on the control socket %s", path);
        free(ctl->path);
        free(ctl);
        return NULL;
    }
    log_info("control socket listening on %s", path);
    return ctl;
}

void control_free(struct control *c)
{
    if (c == NULL)
        return;
    evconnlistener_free(c->ls);
    while (c->reqs)
        creq_free(c->reqs);
    unlink(c->path);
    free(c->path);
    free(c);
}
