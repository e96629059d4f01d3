/*
 * net/smtpd.h - the SMTP listener and the thin I/O driver around smtp/server.c.
 *
 * Owns:  listening sockets, connections (bufferevents), connection limits, timeouts, the
 *        greet pause, and handing message content to the spool through worker threads.
 * Never: parses SMTP itself: every line and content byte goes to the session machine.
 */
#ifndef POSTEL_NET_SMTPD_H
#define POSTEL_NET_SMTPD_H

#include <stddef.h>

struct event_base;
struct conf;
struct spool;
struct workq;
struct qmgr;
struct smtpd;

/* Bind every listen address of conf. Aborts (startup) when a bind fails. */
struct smtpd *smtpd_new(struct event_base *base, const struct conf *conf, struct spool *sp,
    struct workq *wq, struct qmgr *qm);
/* Stop accepting; tell idle sessions 421 and close them; sessions in the middle of a
 * commit finish it first. */
void smtpd_shutdown(struct smtpd *d);
/* Open sessions. */
size_t smtpd_sessions(const struct smtpd *d);
void smtpd_free(struct smtpd *d);

#endif
