/*
 * queue/retry.h - the retry schedule and expiry of deferred recipients, as pure decisions.
 *
 * Owns:  the back-off (retry_min doubling per attempt up to retry_max), expiry after
 *        max_queue_lifetime, when a delay notice (RFC 3464 "delayed") is due, and when the
 *        queue manager should wake up for a message next.
 * Never: reads a clock (every function takes now), touches the spool, logs or locks; the
 *        queue manager applies the decisions.
 */
#ifndef POSTEL_QUEUE_RETRY_H
#define POSTEL_QUEUE_RETRY_H

#include <stdbool.h>
#include <time.h>

struct conf;

/* The settings the schedule depends on (seconds; see postel.conf(5)). */
struct retry_policy {
    unsigned retry_min;             /* delay before the first retry; 0 counts as 1 */
    unsigned retry_max;             /* back-off ceiling */
    unsigned max_queue_lifetime;    /* age at which a pending recipient expires */
    unsigned delay_warning_time;    /* age at which a delay notice is due; 0: never */
};

/* The policy of configuration c (its four settings of the same names). */
struct retry_policy retry_policy_of(const struct conf *c);

/*
 * Seconds to wait after attempt number attempts (1 for the first failed try; 0 is treated
 * as 1) before the next: retry_min (0 counts as 1), doubled for each further attempt, never
 * more than retry_max (so retry_max alone when it is below retry_min).
 */
unsigned retry_backoff(const struct retry_policy *p, unsigned attempts);

/* When to try a recipient again after attempts attempts that ended at now. */
time_t retry_next_try(const struct retry_policy *p, unsigned attempts, time_t now);

/* Has a message that arrived at arrival been queued for max_queue_lifetime or longer? */
bool retry_expired(const struct retry_policy *p, time_t arrival, time_t now);

/* The time at which a message that arrived at arrival expires (for reports). */
time_t retry_expires_at(const struct retry_policy *p, time_t arrival);

/*
 * Would a pending recipient want a delay notice at all? Only with a non-null sender
 * (null_sender false) and a NOTIFY (SMTP_NOTIFY_* flags; 0: none given, the default) that
 * is empty or includes DELAY (RFC 3461 4.1).
 */
bool retry_delay_wanted(unsigned notify, bool null_sender);

/*
 * What to do with a pending recipient at the end of a delivery round at now, for a message
 * that arrived at arrival: RETRY_EXPIRE once it has expired (this wins over a delay
 * notice); else RETRY_DELAY_NOTICE when delay_warning_time is set, the recipient wants a
 * notice (delay_wanted, see retry_delay_wanted()), has not had one (notified false) and the
 * message is at least delay_warning_time old; else RETRY_WAIT.
 */
enum retry_action {
    RETRY_WAIT,
    RETRY_DELAY_NOTICE,
    RETRY_EXPIRE
};
enum retry_action retry_decide(const struct retry_policy *p, time_t arrival, bool notified,
    bool delay_wanted, time_t now);

/*
 * When to wake up for a message whose earliest pending recipient is due at next: next,
 * or earlier when a delay notice falls due strictly between now and next (notice_pending:
 * the message has a non-null sender and a pending recipient not yet notified).
 */
time_t retry_wakeup(const struct retry_policy *p, time_t arrival, bool notice_pending,
    time_t next, time_t now);

#endif
