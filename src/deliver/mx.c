/*
 * deliver/mx.c - c-ares on libevent: MX and address lookups.
 */
#include "deliver/mx.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ares.h>
#include <event2/event.h>

#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define DNS_MAX_SOCKS 16
#define MX_MAX_HOSTS  16
#define MX_MAX_TARGETS 32

struct dns_sock {
    ares_socket_t fd;
    struct event *ev;
    struct dns *d;
};

struct dns {
    struct event_base *base;
    ares_channel ch;
    struct event *timer;
    struct dns_sock socks[DNS_MAX_SOCKS];
};

static void dns_reschedule(struct dns *d)
{
    struct timeval tv, *tp = ares_timeout(d->ch, NULL, &tv);
    if (tp)
        evtimer_add(d->timer, tp);
    else
        evtimer_del(d->timer);
}

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
    struct dns_sock *s = arg;
    ares_process_fd(s->d->ch, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
        (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    dns_reschedule(s->d);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct dns *d = arg;
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_reschedule(d);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct dns *d = data;
    struct dns_sock *s = NULL, *free_slot = NULL;
    for (int i = 0; i < DNS_MAX_SOCKS; i++) {
        if (d->socks[i].ev && d->socks[i].fd == fd)
            s = &d->socks[i];
        else if (d->socks[i].ev == NULL && free_slot == NULL)
            free_slot = &d->socks[i];
    }
    if (s) {
        event_free(s->ev);
        s->ev = NULL;
    }
    if (!readable && !writable)
        return;
    if (s == NULL)
        s = free_slot;
    if (s == NULL) {
        log_warnx("dns: too many resolver sockets");
        return;
    }
    s->fd = fd;
    s->d = d;
    s->ev = event_new(d->base, fd, (short)(EV_PERSIST | (readable ? EV_READ : 0) |
        (writable ? EV_WRITE : 0)), on_sock, s);
    event_add(s->ev, NULL);
}

struct dns *dns_new(struct event_base *base, const char *servers, unsigned timeout_ms,
    char *err, size_t errsz)
{
    static bool lib_init;
    if (!lib_init) {
        if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
            snprintf(err, errsz, "c-ares: library init failed");
            return NULL;
        }
        lib_init = true;
    }
    struct dns *d = xcalloc(1, sizeof *d);
    d->base = base;
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = d;
    o.timeout = (int)(timeout_ms ? timeout_ms : 5000);
    o.tries = 2;
    int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    int r = ares_init_options(&d->ch, &o, mask);
    if (r != ARES_SUCCESS) {
        snprintf(err, errsz, "c-ares: %s", ares_strerror(r));
        free(d);
        return NULL;
    }
    if (servers && *servers && (r = ares_set_servers_ports_csv(d->ch, servers)) != ARES_SUCCESS) {
        snprintf(err, errsz, "dns servers '%s': %s", servers, ares_strerror(r));
        ares_destroy(d->ch);
        free(d);
        return NULL;
    }
    d->timer = evtimer_new(base, on_timer, d);
    return d;
}

void dns_free(struct dns *d)
{
    if (d == NULL)
        return;
    ares_destroy(d->ch);    /* runs pending callbacks with ARES_EDESTRUCTION */
    for (int i = 0; i < DNS_MAX_SOCKS; i++)
        if (d->socks[i].ev)
            event_free(d->socks[i].ev);
    event_free(d->timer);
    free(d);
}

/* ---- routing ---- */

struct mxhost {
    char name[256];
    unsigned short pref;
};

struct route {
    struct dns *d;
    char domain[256];
    char myname[256];
    int port;
    mx_cb cb;
    void *arg;
    struct mxhost hosts[MX_MAX_HOSTS];
    size_t nhosts, next_host;
    struct mx_target t[MX_MAX_TARGETS];
    size_t nt;
    bool any_temp;              /* an address lookup failed temporarily */
};

static void route_finish(struct route *r, enum mx_status st, const char *code, const char *why)
{
    r->cb(r->arg, st, code, why, r->t, r->nt);
    free(r);
}

static void resolve_next_host(struct route *r);

static void on_addr(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    (void)timeouts;
    struct route *r = arg;
    if (status == ARES_EDESTRUCTION) {
        if (ai)
            ares_freeaddrinfo(ai);
        route_finish(r, MX_TEMP, "4.4.3", "resolver shut down");
        return;
    }
    const char *host = r->hosts[r->next_host].name;
    if (status == ARES_SUCCESS && ai) {
        /* IPv6 and IPv4 addresses each in turn, in the order the resolver gave them. */
        for (struct ares_addrinfo_node *n = ai->nodes; n && r->nt < MX_MAX_TARGETS;
             n = n->ai_next) {
            if (n->ai_family != AF_INET && n->ai_family != AF_INET6)
                continue;
            bool dup = false;
            for (size_t i = 0; i < r->nt; i++)
                if (r->t[i].addrlen == n->ai_addrlen &&
                    !memcmp(&r->t[i].addr, n->ai_addr, n->ai_addrlen) &&
                    !strcasecmp(r->t[i].host, host))
                    dup = true;
            if (dup)
                continue;
            struct mx_target *t = &r->t[r->nt++];
            str_copy(t->host, sizeof t->host, host);
            memcpy(&t->addr, n->ai_addr, n->ai_addrlen);
            t->addrlen = n->ai_addrlen;
            if (n->ai_family == AF_INET)
                ((struct sockaddr_in *)&t->addr)->sin_port = htons((uint16_t)r->port);
            else
                ((struct sockaddr_in6 *)&t->addr)->sin6_port = htons((uint16_t)r->port);
        }
    } else if (status != ARES_ENOTFOUND && status != ARES_ENODATA) {
        r->any_temp = true;
        log_debug("dns: %s: address lookup: %s", host, ares_strerror(status));
    }
    if (ai)
        ares_freeaddrinfo(ai);
    r->next_host++;
    resolve_next_host(r);
}

static void resolve_next_host(struct route *r)
{
    if (r->next_host >= r->nhosts) {
        if (r->nt > 0)
            route_finish(r, MX_OK, "2.0.0", "");
        else if (r->any_temp)
            route_finish(r, MX_TEMP, "4.4.3", "cannot resolve the mail hosts' addresses");
        else
            route_finish(r, MX_PERM, "5.1.2", "the mail hosts of the domain have no address");
        return;
    }
    struct ares_addrinfo_hints h;
    memset(&h, 0, sizeof h);
    h.ai_family = AF_UNSPEC;
    h.ai_socktype = SOCK_STREAM;
    ares_getaddrinfo(r->d->ch, r->hosts[r->next_host].name, NULL, &h, on_addr, r);
    dns_reschedule(r->d);
}

static int cmp_pref(const void *a, const void *b)
{
    const struct mxhost *x = a, *y = b;
    return (int)x->pref - (int)y->pref;
}

/* No MX records: the domain itself is the implicit MX (RFC 5321 5.1); its address lookup
 * follows a CNAME at the domain. */
static void route_implicit(struct route *r)
{
    str_copy(r->hosts[0].name, sizeof r->hosts[0].name, r->domain);
    r->nhosts = 1;
    resolve_next_host(r);
}

static void on_mx(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    struct route *r = arg;
    if (status == ARES_EDESTRUCTION) {
        route_finish(r, MX_TEMP, "4.4.3", "resolver shut down");
        return;
    }
    if (status == ARES_ENOTFOUND) {
        char why[400];
        snprintf(why, sizeof why, "domain %s does not exist (NXDOMAIN)", r->domain);
        route_finish(r, MX_PERM, "5.1.2", why);
        return;
    }
    struct ares_mx_reply *mx = NULL;
    if (status == ARES_SUCCESS) {
        int pr = ares_parse_mx_reply(abuf, alen, &mx);
        if (pr == ARES_ENODATA)
            status = ARES_ENODATA;
        else if (pr != ARES_SUCCESS)
            status = pr;
    }
    if (status == ARES_ENODATA) {
        route_implicit(r);
        return;
    }
    if (status != ARES_SUCCESS) {
        char why[400];
        snprintf(why, sizeof why, "MX lookup for %s failed: %s", r->domain,
            ares_strerror(status));
        route_finish(r, MX_TEMP, "4.4.3", why);
        return;
    }
    size_t n = 0;
    bool nullmx = false;
    for (struct ares_mx_reply *m = mx; m; m = m->next) {
        if (m->host == NULL || m->host[0] == '\0' || strcmp(m->host, ".") == 0) {
            nullmx = true;
            continue;
        }
        if (n < MX_MAX_HOSTS) {
            str_copy(r->hosts[n].name, sizeof r->hosts[n].name, m->host);
            r->hosts[n].pref = m->priority;
            n++;
        }
    }
    ares_free_data(mx);
    if (nullmx && n == 0) {
        char why[400];
        snprintf(why, sizeof why, "domain %s accepts no mail (null MX, RFC 7505)", r->domain);
        route_finish(r, MX_PERM, "5.1.10", why);
        return;
    }
    if (n == 0) {
        /* The answer held no MX record (a CNAME to a name that has none). */
        route_implicit(r);
        return;
    }
    qsort(r->hosts, n, sizeof r->hosts[0], cmp_pref);
    /* Random order among equal preferences (RFC 5321 5.1). */
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && r->hosts[j].pref == r->hosts[i].pref)
            j++;
        for (size_t k = j - 1; k > i; k--) {
            size_t s = i + (size_t)random() % (k - i + 1);
            struct mxhost tmp = r->hosts[k];
            r->hosts[k] = r->hosts[s];
            r->hosts[s] = tmp;
        }
        i = j;
    }
    /* If we are an MX, only hosts more preferred than us may be used (RFC 5321 5.1). */
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(r->hosts[i].name, r->myname) == 0) {
            unsigned short mine = r->hosts[i].pref;
            size_t k = 0;
            for (size_t j = 0; j < n; j++)
                if (r->hosts[j].pref < mine)
                    r->hosts[k++] = r->hosts[j];
            n = k;
            if (n == 0) {
                char why[400];
                snprintf(why, sizeof why, "mail for %s loops back to myself", r->domain);
                route_finish(r, MX_PERM, "5.4.6", why);
                return;
            }
            break;
        }
    }
    r->nhosts = n;
    resolve_next_host(r);
}

void mx_route(struct dns *d, const char *domain, int no_mx, const char *myname, int port,
    mx_cb cb, void *arg)
{
    struct route *r = xcalloc(1, sizeof *r);
    r->d = d;
    r->port = port;
    r->cb = cb;
    r->arg = arg;
    str_copy(r->myname, sizeof r->myname, myname);
    size_t dl = strlen(domain);
    if (dl >= 2 && domain[0] == '[' && domain[dl - 1] == ']') {
        /* Address literal, or a "[host]" smarthost without MX lookup. */
        char inner[256];
        str_ncopy(inner, sizeof inner, domain + 1, dl - 2);
        const char *ip = inner;
        if (strncasecmp(inner, "IPv6:", 5) == 0)
            ip = inner + 5;
        struct mx_target *t = &r->t[0];
        memset(t, 0, sizeof *t);
        struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr;
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr;
        if (inet_pton(AF_INET, ip, &s4->sin_addr) == 1) {
            s4->sin_family = AF_INET;
            s4->sin_port = htons((uint16_t)port);
            t->addrlen = sizeof *s4;
        } else if (inet_pton(AF_INET6, ip, &s6->sin6_addr) == 1) {
            s6->sin6_family = AF_INET6;
            s6->sin6_port = htons((uint16_t)port);
            t->addrlen = sizeof *s6;
        } else {
            /* "[host]": the host's addresses, no MX. */
            str_copy(r->domain, sizeof r->domain, inner);
            str_copy(r->hosts[0].name, sizeof r->hosts[0].name, inner);
            r->nhosts = 1;
            resolve_next_host(r);
            return;
        }
        str_copy(t->host, sizeof t->host, ip);
        r->nt = 1;
        route_finish(r, MX_OK, "2.0.0", "");
        return;
    }
    str_copy(r->domain, sizeof r->domain, domain);
    if (no_mx) {
        str_copy(r->hosts[0].name, sizeof r->hosts[0].name, domain);
        r->nhosts = 1;
        resolve_next_host(r);
        return;
    }
    ares_query(d->ch, domain, 1 /* C_IN */, 15 /* T_MX */, on_mx, r);
    dns_reschedule(d);
}

void mx_relayhost(const char *spec, char *dest, size_t dsz, int *port, int *no_mx)
{
    str_copy(dest, dsz, spec);
    char *colon = strrchr(dest, ':'), *rb = strrchr(dest, ']');
    if (colon && (rb == NULL || colon > rb)) {
        *port = atoi(colon + 1);
        *colon = '\0';
    }
    *no_mx = dest[0] == '[';
}
