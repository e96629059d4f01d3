/*
 * queue/retry.c - the retry schedule and expiry of deferred recipients.
 *
 * Owns:  the arithmetic behind retry_backoff(), retry_decide() and retry_wakeup().
 * Never: reads a clock, does I/O, logs or locks.
 */
#include "queue/retry.h"

#include "conf/conf.h"
#include "smtp/parse.h"

struct retry_policy retry_policy_of(const struct conf *c)
{
    struct retry_policy p = {
        .retry_min = c->retry_min,
        .retry_max = c->retry_max,
        .max_queue_lifetime = c->max_queue_lifetime,
        .delay_warning_time = c->delay_warning_time,
    };
    return p;
}

unsigned retry_backoff(const struct retry_policy *p, unsigned attempts)
{
    unsigned long long d = p->retry_min ? p->retry_min : 1;

    for (unsigned i = 1; i < attempts && d < p->retry_max; i++)
        d *= 2;
    if (d > p->retry_max)
        d = p->retry_max;
    return (unsigned)d;
}

time_t retry_next_try(const struct retry_policy *p, unsigned attempts, time_t now)
{
    return now + (time_t)retry_backoff(p, attempts);
}

bool retry_expired(const struct retry_policy *p, time_t arrival, time_t now)
{
    return now - arrival >= (time_t)p->max_queue_lifetime;
}

time_t retry_expires_at(const struct retry_policy *p, time_t arrival)
{
    return arrival + (time_t)p->max_queue_lifetime;
}

bool retry_delay_wanted(unsigned notify, bool null_sender)
{
    return !null_sender && (notify == 0 || (notify & SMTP_NOTIFY_DELAY) != 0);
}

enum retry_action retry_decide(const struct retry_policy *p, time_t arrival, bool notified,
    bool delay_wanted, time_t now)
{
    if (retry_expired(p, arrival, now))
        return RETRY_EXPIRE;
    if (p->delay_warning_time && !notified && delay_wanted &&
        now - arrival >= (time_t)p->delay_warning_time)
        return RETRY_DELAY_NOTICE;
    return RETRY_WAIT;
}

time_t retry_wakeup(const struct retry_policy *p, time_t arrival, bool notice_pending,
    time_t next, time_t now)
{
    time_t warn;

    if (p->delay_warning_time == 0 || !notice_pending)
        return next;
    warn = arrival + (time_t)p->delay_warning_time;
    return warn > now && warn < next ? warn : next;
}
