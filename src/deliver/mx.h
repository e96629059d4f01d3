/*
 * deliver/mx.h - asynchronous routing: domain -> ordered list of (MX host, address).
 *
 * Owns:  the c-ares channel on the event loop, MX selection (RFC 5321 5.1): preference
 *        order, random among equal preferences, implicit MX, null MX (RFC 7505), MX hosts
 *        that are this host (and those less preferred than it) skipped, A and AAAA.
 * Never: blocks: every lookup is a callback on the loop.
 */
#ifndef POSTEL_DELIVER_MX_H
#define POSTEL_DELIVER_MX_H

#include <stddef.h>
#include <sys/socket.h>

struct event_base;
struct dns;

struct mx_target {
    char host[256];
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

enum mx_status {
    MX_OK,              /* targets in order */
    MX_TEMP,            /* SERVFAIL, timeout, no address for any host yet: try later */
    MX_PERM             /* NXDOMAIN, null MX, MX pointing only at ourselves: bounce */
};

/*
 * Result callback. On MX_OK, t[0..n-1] in the order to try. status_code is an enhanced
 * status ("5.1.2", "5.1.10", "4.4.3") and why a readable reason for the others.
 */
typedef void (*mx_cb)(void *arg, enum mx_status st, const char *status_code, const char *why,
    const struct mx_target *t, size_t n);

/*
 * Start a resolver on base. servers: "127.0.0.1:5353,..." or NULL for the system's
 * resolv.conf. timeout_ms: per try. Returns NULL with err on failure.
 */
struct dns *dns_new(struct event_base *base, const char *servers, unsigned timeout_ms,
    char *err, size_t errsz);
void dns_free(struct dns *d);

/*
 * Route mail for domain. myname: our hostname (MX records naming it are loops). port: the
 * SMTP port to put in the addresses. A domain given as an address literal "[192.0.2.1]"
 * routes to that address directly. A smarthost is routed the same way with no_mx set:
 * "[host]" in relayhost syntax means no MX lookup.
 */
void mx_route(struct dns *d, const char *domain, int no_mx, const char *myname, int port,
    mx_cb cb, void *arg);

/*
 * Split a relayhost spec ("host", "[host]", either with ":port") into dest (size dsz) for
 * mx_route(), *port (left alone when the spec has none) and *no_mx ("[host]": no MX lookup).
 */
void mx_relayhost(const char *spec, char *dest, size_t dsz, int *port, int *no_mx);

#endif
