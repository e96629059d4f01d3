/*
 * net/smtpd.h - the SMTP server: the thin I/O driver around smtp/server.c.
 *
 * Owns:  SMTP sessions (a net/conn connection and a session machine each), their timeouts,
 *        the greet pause, and handing message content to the spool through worker threads;
 *        its listening sockets and connection limits through net/listener.
 * Never: parses SMTP or writes reply text itself: every line and content byte goes to the
 *        session machine.
 */
#ifndef POSTEL_NET_SMTPD_H
#define POSTEL_NET_SMTPD_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct conf;
struct spool;
struct tpool;
struct qmgr;
struct smtpd;
struct auth_db;
struct auth_senders;
typedef struct ssl_ctx_st SSL_CTX;

/* Password checks (crypt) run on a pool of their own, so that a flood of AUTH never delays a
 * commit: SMTPD_AUTH_THREADS threads, and at most SMTPD_AUTH_PENDING checks queued or
 * running; AUTH beyond that is answered 454 4.7.0 at once. */
#define SMTPD_AUTH_THREADS 1
#define SMTPD_AUTH_PENDING 16

/* Bind every listen address of conf (SMTP, submission, smtps). wq: the pool for spool
 * writes and commits; auth_wq: the pool for password checks (SMTPD_AUTH_THREADS threads),
 * both the caller's, freed after the loop stops and before smtpd_free(). tls: the server
 * context (owned from now on) or NULL; authdb/senders: AUTH users and sender ownership, or
 * NULL. Aborts (startup) when a bind fails. */
struct smtpd *smtpd_new(struct event_base *base, struct conf *conf, struct spool *sp,
    struct tpool *wq, struct tpool *auth_wq, struct qmgr *qm, SSL_CTX *tls,
    struct auth_db *authdb, struct auth_senders *senders);
/* New sessions use conf (a reload); open sessions keep theirs. */
void smtpd_set_conf(struct smtpd *d, struct conf *conf);
/* Replace the server TLS context (SIGHUP); the smtpd owns it from now on. */
void smtpd_set_tls(struct smtpd *d, SSL_CTX *tls);
/*
 * Serve an SMTP session on fd, a connection from the control socket: a trusted local
 * client that may relay; user ("name (uid N)") goes into Received and the envelope.
 * trace_hold: its messages wait for a TRACE request before delivery (sendmail -v).
 * pre: bytes the client already sent after its request line.
 */
void smtpd_adopt(struct smtpd *d, int fd, const char *user, bool trace_hold, const char *pre,
    size_t prelen);
/* Stop accepting; tell idle sessions 421 and close them; sessions in the middle of a
 * commit finish it first. */
void smtpd_shutdown(struct smtpd *d);
/* Messages received over SMTP (and the control socket) since start. */
unsigned long long smtpd_received(const struct smtpd *d);
/* Open sessions. */
size_t smtpd_sessions(const struct smtpd *d);
void smtpd_free(struct smtpd *d);

#endif
