/*
 * tests/unit/queue/test_retry.c - the retry schedule: back-off, expiry, delay notices and
 * the next wake-up, driven with explicit times (no clock).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "queue/retry.h"
#include "smtp/parse.h"

#define T0 ((time_t)1767225600)     /* arrival used throughout */

static const struct retry_policy pol = {
    .retry_min = 300, .retry_max = 4000, .max_queue_lifetime = 5 * 86400,
    .delay_warning_time = 4 * 3600,
};

static void test_backoff_doubles_to_ceiling(void **state)
{
    (void)state;
    assert_int_equal(retry_backoff(&pol, 0), 300);
    assert_int_equal(retry_backoff(&pol, 1), 300);
    assert_int_equal(retry_backoff(&pol, 2), 600);
    assert_int_equal(retry_backoff(&pol, 3), 1200);
    assert_int_equal(retry_backoff(&pol, 4), 2400);
    assert_int_equal(retry_backoff(&pol, 5), 4000);     /* 4800 capped */
    assert_int_equal(retry_backoff(&pol, 6), 4000);
    assert_int_equal(retry_backoff(&pol, UINT32_MAX), 4000);
    assert_true(retry_next_try(&pol, 3, T0 + 50) == T0 + 50 + 1200);
}

static void test_backoff_edges(void **state)
{
    (void)state;
    struct retry_policy p = pol;

    p.retry_min = 0;                /* counts as one second */
    assert_int_equal(retry_backoff(&p, 1), 1);
    assert_int_equal(retry_backoff(&p, 4), 8);
    p.retry_min = 900;              /* ceiling below the start: the ceiling */
    p.retry_max = 600;
    assert_int_equal(retry_backoff(&p, 1), 600);
    assert_int_equal(retry_backoff(&p, 9), 600);
    p.retry_min = 3000000000u;      /* no overflow of unsigned on the way up */
    p.retry_max = 4000000000u;
    assert_int_equal(retry_backoff(&p, 2), 4000000000u);
}

static void test_expiry(void **state)
{
    (void)state;
    time_t life = (time_t)pol.max_queue_lifetime;

    assert_false(retry_expired(&pol, T0, T0));
    assert_false(retry_expired(&pol, T0, T0 + life - 1));
    assert_true(retry_expired(&pol, T0, T0 + life));
    assert_true(retry_expired(&pol, T0, T0 + life + 1));
    assert_true(retry_expires_at(&pol, T0) == T0 + life);
    /* Expiry wins over a delay notice that is due at the same time. */
    assert_int_equal(retry_decide(&pol, T0, false, true, T0 + life), RETRY_EXPIRE);
    assert_int_equal(retry_decide(&pol, T0, true, false, T0 + life), RETRY_EXPIRE);
}

static void test_delay_notice(void **state)
{
    (void)state;
    time_t warn = (time_t)pol.delay_warning_time;
    struct retry_policy off = pol;

    assert_int_equal(retry_decide(&pol, T0, false, true, T0 + warn - 1), RETRY_WAIT);
    assert_int_equal(retry_decide(&pol, T0, false, true, T0 + warn), RETRY_DELAY_NOTICE);
    assert_int_equal(retry_decide(&pol, T0, false, true, T0 + warn + 60), RETRY_DELAY_NOTICE);
    /* Once only, and only when wanted. */
    assert_int_equal(retry_decide(&pol, T0, true, true, T0 + warn), RETRY_WAIT);
    assert_int_equal(retry_decide(&pol, T0, false, false, T0 + warn), RETRY_WAIT);
    /* delay_warning_time 0: never. */
    off.delay_warning_time = 0;
    assert_int_equal(retry_decide(&off, T0, false, true, T0 + 86400), RETRY_WAIT);
}

static void test_delay_wanted(void **state)
{
    (void)state;
    assert_true(retry_delay_wanted(0, false));                  /* NOTIFY not given */
    assert_true(retry_delay_wanted(SMTP_NOTIFY_DELAY, false));
    assert_true(retry_delay_wanted(SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, false));
    assert_false(retry_delay_wanted(SMTP_NOTIFY_FAILURE, false));
    assert_false(retry_delay_wanted(SMTP_NOTIFY_NEVER, false));
    assert_false(retry_delay_wanted(0, true));                  /* null sender */
}

static void test_wakeup(void **state)
{
    (void)state;
    time_t warn = T0 + (time_t)pol.delay_warning_time;
    struct retry_policy off = pol;

    /* A notice due before the next try brings the wake-up forward. */
    assert_true(retry_wakeup(&pol, T0, true, warn + 100, T0 + 10) == warn);
    /* Not when nothing awaits a notice, or the next try comes first. */
    assert_true(retry_wakeup(&pol, T0, false, warn + 100, T0 + 10) == warn + 100);
    assert_true(retry_wakeup(&pol, T0, true, warn - 1, T0 + 10) == warn - 1);
    assert_true(retry_wakeup(&pol, T0, true, warn, T0 + 10) == warn);
    /* A notice time already past is the end-of-round's business, not a timer's. */
    assert_true(retry_wakeup(&pol, T0, true, warn + 500, warn) == warn + 500);
    off.delay_warning_time = 0;
    assert_true(retry_wakeup(&off, T0, true, T0 + 999999, T0 + 10) == T0 + 999999);
}

static void test_policy_of_conf(void **state)
{
    (void)state;
    struct conf c = { .retry_min = 1, .retry_max = 2, .max_queue_lifetime = 3,
        .delay_warning_time = 4 };
    struct retry_policy p = retry_policy_of(&c);

    assert_int_equal(p.retry_min, 1);
    assert_int_equal(p.retry_max, 2);
    assert_int_equal(p.max_queue_lifetime, 3);
    assert_int_equal(p.delay_warning_time, 4);
}

/* The built-in schedule, as postel.conf(5) states it with its numbers: retries 5, 15, 35
 * and 65 minutes after the first failure, then every 30 minutes (RFC 1123 5.3.1.1: "at
 * least 30 minutes", as sendmail's -q30m queue runs), a delay notice after 4 hours, a
 * bounce after 5 days. */
static void test_default_schedule(void **state)
{
    (void)state;
    char err[512];
    struct conf *c = conf_parse("", 0, "(test)", err, sizeof err);
    assert_non_null(c);
    struct retry_policy p = retry_policy_of(c);
    conf_free(c);
    assert_int_equal(p.retry_min, 300);
    assert_int_equal(p.retry_max, 1800);
    assert_int_equal(p.delay_warning_time, 4 * 3600);
    assert_int_equal(p.max_queue_lifetime, 5 * 86400);
    static const unsigned want_min[] = { 5, 15, 35, 65, 95, 125, 155 };
    time_t t = T0;
    for (unsigned a = 1; a <= sizeof want_min / sizeof want_min[0]; a++) {
        t = retry_next_try(&p, a, t);
        assert_int_equal((t - T0) / 60, want_min[a - 1]);
    }
    /* every 30 minutes from then on, until the fifth day: about 240 attempts in all */
    unsigned attempts = 1;
    for (t = T0; !retry_expired(&p, T0, t); attempts++)
        t = retry_next_try(&p, attempts, t);
    assert_true(attempts >= 235 && attempts <= 245);
    assert_int_equal(retry_decide(&p, T0, false, true, T0 + 4 * 3600 - 1), RETRY_WAIT);
    assert_int_equal(retry_decide(&p, T0, false, true, T0 + 4 * 3600), RETRY_DELAY_NOTICE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_to_ceiling),
        cmocka_unit_test(test_backoff_edges),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_delay_notice),
        cmocka_unit_test(test_delay_wanted),
        cmocka_unit_test(test_wakeup),
        cmocka_unit_test(test_policy_of_conf),
        cmocka_unit_test(test_default_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
