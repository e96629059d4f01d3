/*
 * net/listener.c - the SMTP listening sockets and the checks made before a session exists.
 *
 * Owns:  the evconnlisteners, the per-address counts (a small hash of address -> open
 *        sessions), and the 421 refusals, sent without blocking and without a session.
 * Never: keeps an accepted socket: it is refused and closed, or handed to the owner.
 * Limits: max_connections, max_connections_per_ip; LISTENER_MAX listening sockets.
 */
#include "net/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "conf/conf.h"
#include "smtp/server.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define LISTENER_MAX    (3 * CONF_MAX_LISTEN)
#define IPTAB_SIZE      4096

struct ipcount {
    char ip[64];
    unsigned n;
    struct ipcount *next;
};

struct lsn {
    struct listener *l;
    enum lsn_kind kind;
    struct evconnlistener *ev;
};

struct listener {
    struct event_base *base;
    struct conf *conf;          /* the current configuration (a reference) */
    const struct listener_ops *ops;
    void *arg;
    struct lsn ls[LISTENER_MAX];
    size_t nls;
    bool closed;
    struct ipcount *iptab[IPTAB_SIZE];
};

/* ---- per-address counts ---- */

static unsigned ip_hash(const char *ip)
{
    unsigned h = 2166136261u;
    for (; *ip; ip++)
        h = (h ^ (unsigned char)*ip) * 16777619u;
    return h % IPTAB_SIZE;
}

/* Add delta to ip's count; returns the new count. */
static unsigned ip_add(struct listener *l, const char *ip, int delta)
{
    unsigned h = ip_hash(ip);
    struct ipcount **pp = &l->iptab[h], *e;
    for (e = *pp; e; pp = &e->next, e = e->next)
        if (strcmp(e->ip, ip) == 0)
            break;
    if (e == NULL) {
        if (delta < 0)
            return 0;
        e = xcalloc(1, sizeof *e);
        (void)str_copy(e->ip, sizeof e->ip, ip);
        e->next = l->iptab[h];
        l->iptab[h] = e;
    }
    e->n = (unsigned)((int)e->n + delta);
    unsigned n = e->n;
    if (n == 0) {
        for (pp = &l->iptab[h]; *pp != e; pp = &(*pp)->next)
            ;
        *pp = e->next;
        free(e);
    }
    return n;
}

void listener_release(struct listener *l, const char *ip)
{
    (void)ip_add(l, ip, -1);
}

/* ---- accepting ---- */

static void addr_text(const struct sockaddr *sa, char *out, size_t osz)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const void *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)osz);
        else
            inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)osz);
    } else if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
            (socklen_t)osz);
    } else {
        (void)str_copy(out, osz, "unknown");
    }
}

/* Say why (one 421 line, never waiting for the peer) and close. */
static void refuse(struct listener *l, evutil_socket_t fd, enum srv_refusal why,
    const char *ip)
{
    struct buf b;
    buf_init(&b, 0);
    srv_refusal(l->conf, why, ip, &b);
    ssize_t w = send(fd, b.p, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)w;
    buf_free(&b);
    close(fd);
}

static void on_accept(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
    (void)ev;
    (void)salen;
    struct lsn *ln = arg;
    struct listener *l = ln->l;
    const struct conf *cf = l->conf;
    struct lsn_peer p = { .fd = fd, .sa = sa, .kind = ln->kind };
    addr_text(sa, p.ip, sizeof p.ip);
    if (l->closed) {
        refuse(l, fd, SRV_REFUSE_SHUTDOWN, p.ip);
        return;
    }
    size_t n = l->ops->sessions(l->arg);
    if (n >= cf->max_connections) {
        log_info("client=[%s] refused: %zu connections (max_connections)", p.ip, n);
        refuse(l, fd, SRV_REFUSE_BUSY, p.ip);
        return;
    }
    p.trusted = cidr_list_match(&cf->trusted_networks, sa);
    if (!p.trusted && cf->max_connections_per_ip > 0 &&
        ip_add(l, p.ip, 0) >= cf->max_connections_per_ip) {
        log_info("client=[%s] refused: too many connections from this address", p.ip);
        refuse(l, fd, SRV_REFUSE_PER_IP, p.ip);
        return;
    }
    if (!p.trusted)
        (void)ip_add(l, p.ip, 1);
    l->ops->accept(l->arg, &p);
}

static void on_accept_error(struct evconnlistener *ev, void *arg)
{
    (void)ev;
    (void)arg;
    /* EMFILE and friends: log and carry on; libevent retries on the next event. */
    log_warn("accept");
}

/* ---- binding ---- */

void listener_bind(struct listener *l, const struct conf_listen_set *set, enum lsn_kind kind)
{
    static const char *names[] = { "smtp", "submission", "smtps" };
    for (size_t i = 0; i < set->n; i++) {
        const struct conf_listen *cl = &set->v[i];
        struct sockaddr_storage ss;
        socklen_t sl;
        memset(&ss, 0, sizeof ss);
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, cl->host, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)cl->port);
            sl = sizeof *s4;
        } else if (inet_pton(AF_INET6, cl->host, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)cl->port);
            sl = sizeof *s6;
        } else {
            log_fatalx("listen: bad address %s", cl->host);
        }
        if (l->nls >= LISTENER_MAX)
            log_fatalx("listen: more than %d addresses", LISTENER_MAX);
        struct lsn *ln = &l->ls[l->nls];
        ln->l = l;
        ln->kind = kind;
        ln->ev = evconnlistener_new_bind(l->base, on_accept, ln,
            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 4096,
            (struct sockaddr *)&ss, (int)sl);
        if (ln->ev == NULL)
            log_fatal("cannot listen on %s port %d", cl->host, cl->port);
        evconnlistener_set_error_cb(ln->ev, on_accept_error);
        l->nls++;
        log_info("listening on %s%s%s:%d (%s)", strchr(cl->host, ':') ? "[" : "", cl->host,
            strchr(cl->host, ':') ? "]" : "", cl->port, names[kind]);
    }
}

struct listener *listener_new(struct event_base *base, struct conf *conf,
    const struct listener_ops *ops, void *arg)
{
    struct listener *l = xcalloc(1, sizeof *l);
    l->base = base;
    l->conf = conf_ref(conf);
    l->ops = ops;
    l->arg = arg;
    return l;
}

void listener_set_conf(struct listener *l, struct conf *conf)
{
    struct conf *old = l->conf;
    l->conf = conf_ref(conf);
    conf_free(old);
}

void listener_close(struct listener *l)
{
    l->closed = true;
    for (size_t i = 0; i < l->nls; i++) {
        evconnlistener_free(l->ls[i].ev);
        l->ls[i].ev = NULL;
    }
    l->nls = 0;
}

void listener_free(struct listener *l)
{
    if (l == NULL)
        return;
    listener_close(l);
    for (size_t i = 0; i < IPTAB_SIZE; i++) {
        while (l->iptab[i]) {
            struct ipcount *e = l->iptab[i];
            l->iptab[i] = e->next;
            free(e);
        }
    }
    conf_free(l->conf);
    free(l);
}
