/*
 * queue/qmgr.h - the queue manager: schedules deliveries of committed messages.
 *
 * Owns:  the in-memory list of queued messages, delivery rounds (local on a worker, remote
 *        on the loop through deliver/remote.c), retry timers with back-off, expiry, delivery
 *        status notifications, and the per-recipient state (made durable before the round
 *        ends).
 * Never: blocks the loop: loading, delivering, notices and status writes run on workers.
 */
#ifndef POSTEL_QUEUE_QMGR_H
#define POSTEL_QUEUE_QMGR_H

#include <stddef.h>

#include "queue/envelope.h"

struct event_base;
struct workq;
struct spool;
struct conf;
struct remote;
struct qmgr;

struct qmgr *qmgr_new(struct event_base *base, struct workq *wq, struct spool *sp,
    const struct conf *conf, struct remote *rm);
/* Take a committed message (ownership of m's contents moves to the queue manager). */
void qmgr_add(struct qmgr *q, struct env_msg *m);
/* Startup: load queue/ and schedule every message. Returns the number loaded. */
size_t qmgr_recover(struct qmgr *q);
/* Deliver now every deferred recipient whose domain is domain (NULL: all). Returns the
 * number of messages scheduled. */
size_t qmgr_flush(struct qmgr *q, const char *domain);
/* Messages in the queue. */
size_t qmgr_count(const struct qmgr *q);
/* Delivery rounds running. */
size_t qmgr_busy(const struct qmgr *q);
void qmgr_free(struct qmgr *q);

#endif
