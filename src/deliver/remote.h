/*
 * deliver/remote.h - the remote delivery agent: routes a message to its destination's
 * mail hosts and drives smtp/client.c over the connections.
 *
 * Owns:  outbound connections, their timeouts, falling back to the next MX address when a
 *        host cannot be reached or refuses service, per-destination and total concurrency
 *        (requests past the limits wait, and a connection that finishes a message takes
 *        the next one waiting for the same destination: one connection, many messages),
 *        dot-stuffing and the 8bit-to-7bit conversion on the way out.
 * Never: touches the spool: the caller gives the content and gets per-recipient results.
 */
#ifndef POSTEL_DELIVER_REMOTE_H
#define POSTEL_DELIVER_REMOTE_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

#include "smtp/client.h"

struct event_base;
struct dns;
struct conf;
struct remote;

struct remote_result {
    enum cli_rkind kind;
    char status[16];            /* RFC 3463 code */
    char reply[520];            /* what the host said, or our reason */
    char host[300];             /* "mx.example.org[192.0.2.1]", or "" */
    bool dsn_passed;            /* the host offered DSN: NOTIFY/ORCPT went on with it */
};

/* One message to one destination. The caller owns all of it until done() runs. */
struct remote_req {
    char dest[300];             /* recipient domain, or the relayhost spec */
    struct cli_msg msg;         /* envelope; pointers into the caller's memory */
    const char *content;        /* the message, LF line ends */
    size_t len;
    struct remote_result *res;  /* msg.nrcpt results, filled before done() */
    void (*done)(struct remote_req *r);
    /* Optional live transcript (sendmail -v): dir is "connect", ">>>", "<<<" or "info". */
    void (*trace)(void *arg, const char *dir, const char *text);
    void *arg;
    /* private to remote.c */
    struct remote *rm;
    struct remote_req *next;
    struct buf conv;            /* 7-bit version, when needed */
    int conv_state;             /* 0 not tried, 1 ok, 2 unchanged, -1 failed */
    char conv_err[200];
};

/* client_tls: the outbound TLS context (kept, not owned), or NULL: never STARTTLS. */
struct remote *remote_new(struct event_base *base, struct dns *dns, const struct conf *conf,
    SSL_CTX *client_tls);
/* Use conf from now on (a reload; the caller keeps it alive while it is in use here). */
void remote_set_conf(struct remote *rm, const struct conf *conf);
/* Deliver req (asynchronously; req->done runs on the loop when every result is final). */
void remote_send(struct remote *rm, struct remote_req *req);
/* Outbound connections open now. */
size_t remote_active(const struct remote *rm);
/* Close every connection; pending requests complete with temporary failures. */
void remote_free(struct remote *rm);

#endif
