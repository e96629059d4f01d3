/*
 * queue/qmgr.h - the queue manager: schedules deliveries of committed messages.
 *
 * Owns:  the in-memory list of queued messages, retry timers with back-off, expiry, and
 *        the per-recipient state (made durable before it takes effect).
 * Never: blocks the loop: loading, delivering and status writes run on worker threads.
 */
#ifndef POSTEL_QUEUE_QMGR_H
#define POSTEL_QUEUE_QMGR_H

#include <stddef.h>

#include "queue/envelope.h"

struct event_base;
struct workq;
struct spool;
struct conf;
struct qmgr;

struct qmgr *qmgr_new(struct event_base *base, struct workq *wq, struct spool *sp,
    const struct conf *conf);
/* Take a committed message (ownership of m's contents moves to the queue manager). */
void qmgr_add(struct qmgr *q, struct env_msg *m);
/* Startup: load queue/ and schedule every message. Returns the number loaded. */
size_t qmgr_recover(struct qmgr *q);
/* Messages in the queue. */
size_t qmgr_count(const struct qmgr *q);
/* Deliveries still running on workers. */
size_t qmgr_busy(const struct qmgr *q);
void qmgr_free(struct qmgr *q);

#endif
