/*
 * queue/notify.h - delivery status notifications as queued messages (RFC 3464, 3461).
 *
 * Owns:  choosing who gets a report (the envelope sender; postmaster for a failed message
 *        that had a null sender), building it with mail/dsn.c and queueing it with a null
 *        reverse-path so that a report never causes another report.
 * Blocking: worker threads only (it writes the spool).
 */
#ifndef POSTEL_QUEUE_NOTIFY_H
#define POSTEL_QUEUE_NOTIFY_H

#include <stddef.h>
#include <time.h>

#include "mail/dsn.h"
#include "queue/envelope.h"

struct conf;
struct spool;

/* "No report" for a recipient in notify_queue()'s action array. */
#define NOTIFY_NONE (-1)

/*
 * Queue one report on the recipients of m whose act[i] is not NOTIFY_NONE (a dsn_action).
 * content is the original message. On success returns 0 and fills *out with the queued
 * report's envelope (for the queue manager); returns 1 when no report is due (for example a
 * failed report about a report: logged and dropped), -1 on a spool error.
 */
int notify_queue(const struct conf *c, struct spool *sp, const struct env_msg *m,
    const char *content, size_t len, const int *act, time_t now, struct env_msg *out);

#endif
