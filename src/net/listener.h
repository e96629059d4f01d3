/*
 * net/listener.h - the SMTP listening sockets and the checks made before a session exists.
 *
 * Owns:  binding the listen addresses (SMTP, submission, smtps), accepting, the
 *        per-address connection counts, and refusing (421) when shutting down, past
 *        max_connections or past max_connections_per_ip.
 * Never: reads from an accepted socket: a connection that passes goes to the owner's
 *        accept callback, which owns the descriptor from then on.
 * Limits: max_connections, max_connections_per_ip (trusted_networks are not counted per
 *        address); 3 * CONF_MAX_LISTEN listening sockets.
 */
#ifndef POSTEL_NET_LISTENER_H
#define POSTEL_NET_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct conf;
struct conf_listen_set;
struct event_base;
struct listener;

/* What a listening socket serves. */
enum lsn_kind { LSN_SMTP, LSN_SUBMISSION, LSN_SMTPS };

/* A connection that passed the checks. */
struct lsn_peer {
    int fd;                     /* the accepted socket: the callee owns it */
    const struct sockaddr *sa;
    char ip[64];                /* numeric address text */
    enum lsn_kind kind;
    bool trusted;               /* in trusted_networks: not counted per address */
};

struct listener_ops {
    /* Serve p (owns p->fd). An untrusted peer was counted: listener_release() it. */
    void (*accept)(void *arg, const struct lsn_peer *p);
    /* Open sessions now (for max_connections). */
    size_t (*sessions)(void *arg);
};

/* A listener on base; conf is the current configuration (a reference is kept). */
struct listener *listener_new(struct event_base *base, struct conf *conf,
    const struct listener_ops *ops, void *arg);
/* Bind every address of set for kind. Aborts (startup) when a bind fails. */
void listener_bind(struct listener *l, const struct conf_listen_set *set, enum lsn_kind kind);
/* New connections are checked against conf (a reload). */
void listener_set_conf(struct listener *l, struct conf *conf);
/* Close the listening sockets; connections still pending get 421. */
void listener_close(struct listener *l);
/* A counted (untrusted) peer's session ended. */
void listener_release(struct listener *l, const char *ip);
/* Close everything and free l. NULL is ignored. */
void listener_free(struct listener *l);

#endif
