/*
 * tests/unit/cli/test_mailq.c - the mailq table from LIST objects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "cli/mailq.h"

static struct json *obj(const char *s)
{
    char err[128];
    struct json *v = json_parse(s, strlen(s), err, sizeof err);
    if (v == NULL)
        fail_msg("%s", err);
    return v;
}

static void test_empty(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(mailq_format(NULL, 0, &b), 0);
    assert_string_equal(buf_cstr(&b), "Mail queue is empty\n");
    buf_free(&b);
}

static void test_table(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    struct json *m[2];
    /* 2026-11-22 15:47:55 UTC is a Sunday */
    m[0] = obj("{\"id\":\"6B030EAB29EAB001\",\"size\":267,\"arrival\":1795362475,"
        "\"sender\":\"root@localhost\",\"held\":true,\"active\":false,\"recipients\":["
        "{\"address\":\"bob@remote.test\",\"state\":\"pending\",\"attempts\":2,"
        "\"status\":\"4.4.1\",\"reason\":\"connect failed: Connection refused\"},"
        "{\"address\":\"eve@localhost\",\"state\":\"delivered\",\"attempts\":1,"
        "\"status\":\"2.0.0\",\"reason\":\"\"},"
        "{\"address\":\"x@remote.test\",\"state\":\"failed\",\"attempts\":1,"
        "\"status\":\"5.1.1\",\"reason\":\"550 5.1.1 no such user\"},"
        "{\"address\":\"new@remote.test\",\"state\":\"pending\",\"attempts\":0,"
        "\"status\":\"\",\"reason\":\"\"}]}");
    m[1] = obj("{\"id\":\"6B030EAB29EAB002\",\"size\":2000,\"arrival\":1795362475,"
        "\"sender\":\"\",\"held\":false,\"active\":true,\"recipients\":["
        "{\"address\":\"a\\u0001b@x\",\"state\":\"pending\",\"attempts\":0}]}");
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(mailq_format((const struct json *const *)m, 2, &b), 0);
    const char *want =
        "-Queue ID-------- --Size-- ----Arrival Time---- -Sender/Recipient-------\n"
        "6B030EAB29EAB001!      267 Sun Nov 22 15:47:55  root@localhost\n"
        "                                                bob@remote.test (deferred: 4.4.1 "
        "connect failed: Connection refused)\n"
        "                                                eve@localhost (delivered)\n"
        "                                                x@remote.test (failed: 550 5.1.1 "
        "no such user)\n"
        "                                                new@remote.test (queued)\n"
        "\n"
        "6B030EAB29EAB002*     2000 Sun Nov 22 15:47:55  MAILER-DAEMON\n"
        "                                                a?b@x (queued)\n"
        "\n"
        "-- 3 Kbytes in 2 Requests.\n";
    assert_string_equal(buf_cstr(&b), want);
    buf_reset(&b);
    assert_int_equal(mailq_format((const struct json *const *)m, 1, &b), 0);
    assert_non_null(strstr(buf_cstr(&b), "-- 1 Kbytes in 1 Request.\n"));
    buf_free(&b);
    json_free(m[0]);
    json_free(m[1]);
}

static void test_states(void **state)
{
    (void)state;
    struct json *r = obj("{\"state\":\"pending\",\"attempts\":3}");
    assert_string_equal(mailq_rcpt_state(r), "deferred");
    json_free(r);
    r = obj("{\"state\":\"pending\"}");
    assert_string_equal(mailq_rcpt_state(r), "queued");
    json_free(r);
    r = obj("{\"state\":\"failed\"}");
    assert_string_equal(mailq_rcpt_state(r), "failed");
    json_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
