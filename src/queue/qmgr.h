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

#include <stdbool.h>
#include <stddef.h>

#include "queue/envelope.h"

struct event_base;
struct tpool;
struct spool;
struct conf;
struct remote;
struct qmgr;

struct qmgr *qmgr_new(struct event_base *base, struct tpool *wq, struct spool *sp,
    struct conf *conf, struct remote *rm);
/* Counters since start (recipients), for `postel status`. */
struct qmgr_stats {
    unsigned long long delivered, failed, deferred;
    size_t held;                /* messages held now */
};
void qmgr_get_stats(struct qmgr *q, struct qmgr_stats *out);
/* Use conf for rounds that start from now on (a reload); rounds running keep theirs. */
void qmgr_set_conf(struct qmgr *q, struct conf *conf);
/* Take a committed message (ownership of m's contents moves to the queue manager). */
void qmgr_add(struct qmgr *q, struct env_msg *m);
/* The same; trace_hold: wait (at most QMGR_TRACE_WAIT seconds) for qmgr_trace(). */
void qmgr_add_ex(struct qmgr *q, struct env_msg *m, bool trace_hold);
#define QMGR_TRACE_WAIT 10

/* A live transcript of one delivery round (sendmail -v). */
typedef void (*qmgr_trace_fn)(void *arg, const char *kind, const char *text);
typedef void (*qmgr_trace_done_fn)(void *arg);
/*
 * Deliver message id now and report the round through fn, then done. Returns 0, or -1
 * when there is no such message (already delivered) or it is held.
 */
int qmgr_trace(struct qmgr *q, const char *id, qmgr_trace_fn fn, qmgr_trace_done_fn done,
    void *arg);
/* Forget every trace going to arg (its reader went away). */
void qmgr_untrace(struct qmgr *q, void *arg);

/* Administrative changes; each returns 0, or -1 when there is no such message. */
int qmgr_hold(struct qmgr *q, const char *id, bool hold);
int qmgr_delete(struct qmgr *q, const char *id);
int qmgr_bounce(struct qmgr *q, const char *id);
/* Call fn for each message (on the loop; the envelope is stable during the call). */
void qmgr_foreach(struct qmgr *q, void (*fn)(void *arg, const struct env_msg *m, bool busy),
    void *arg);
/* Find a message's envelope (stable only until the loop runs again). */
const struct env_msg *qmgr_find(struct qmgr *q, const char *id);

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
