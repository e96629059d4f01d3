/*
 * tests/unit/cli/test_traceview.c - TRACE transcripts shown as sendmail -v shows them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/traceview.h"

/* Feed "T kind text" lines (NULL-terminated) and the end; return the output. */
static const char *run(struct traceview *t, const char *const *lines, struct buf *out)
{
    buf_reset(out);
    for (size_t i = 0; lines[i]; i++) {
        char copy[1024];
        snprintf(copy, sizeof copy, "%s", lines[i]);
        const char *kind, *text;
        assert_int_equal(traceview_split(copy, &kind, &text), 0);
        assert_int_equal(traceview_feed(t, kind, text, out), 0);
    }
    assert_int_equal(traceview_end(t, out), 0);
    return buf_cstr(out);
}

static void test_remote(void **state)
{
    (void)state;
    const char *rcpts[] = { "alice@localhost", "bob@remote.test" };
    const bool remote[] = { false, true };
    struct traceview t;
    traceview_init(&t, rcpts, remote, 2);
    const char *in[] = {
        "T info routing [127.0.0.2]:2592",
        "T connect Connecting to 127.0.0.2[127.0.0.2] via smtp...",
        "T connect Connected to 127.0.0.2[127.0.0.2]",
        "T <<< 220 remote.test ESMTP postel",
        "T >>> EHLO mx.test",
        "T <<< 250 remote.test Hello mx.test PIPELINING",
        "T >>> MAIL FROM:<root@localhost> SIZE=302",
        "T >>> RCPT TO:<bob@remote.test>",
        "T >>> DATA",
        "T <<< 250 2.1.0 Ok",
        "T <<< 250 2.1.5 Ok",
        "T <<< 354 End data with <CR><LF>.<CR><LF>",
        "T >>> .",
        "T <<< 250 2.0.0 Ok: queued as 6B030EA661B25000",
        "T info <bob@remote.test>... Sent (250 2.0.0 Ok: queued as 6B030EA661B25000)",
        "T local <alice@localhost>... Delivered to the local mailbox",
        NULL
    };
    struct buf b;
    buf_init(&b, 0);
    assert_string_equal(run(&t, in, &b),
        "bob@remote.test... Connecting to 127.0.0.2[127.0.0.2] via smtp...\n"
        "220 remote.test ESMTP postel\n"
        ">>> EHLO mx.test\n"
        "250 remote.test Hello mx.test PIPELINING\n"
        ">>> MAIL FROM:<root@localhost> SIZE=302\n"
        ">>> RCPT TO:<bob@remote.test>\n"
        ">>> DATA\n"
        "250 2.1.0 Ok\n"
        "250 2.1.5 Ok\n"
        "354 End data with <CR><LF>.<CR><LF>\n"
        ">>> .\n"
        "250 2.0.0 Ok: queued as 6B030EA661B25000\n"
        "bob@remote.test... Sent (Ok: queued as 6B030EA661B25000)\n"
        "Closing connection to 127.0.0.2[127.0.0.2]\n"
        "alice@localhost... Delivered to the local mailbox\n");
    assert_int_equal(t.sent, 1);
    assert_int_equal(t.delivered, 1);
    buf_free(&b);
}

static void test_domain_route_and_failures(void **state)
{
    (void)state;
    const char *rcpts[] = { "a@one.test", "b@two.test", "c@two.test" };
    const bool remote[] = { true, true, true };
    struct traceview t;
    traceview_init(&t, rcpts, remote, 3);
    const char *in[] = {
        "T info routing two.test",
        "T connect Connecting to mx.two.test[192.0.2.2] via smtp...",
        "T info mx.two.test[192.0.2.2]: Connection refused",
        "T connect Connecting to mx2.two.test[192.0.2.3] via smtp...",
        "T connect Connected to mx2.two.test[192.0.2.3]",
        "T <<< 220 hi",
        "T >>> RCPT TO:<b@two.test>",
        "T <<< 550 5.1.1 no",
        "T info <b@two.test>... Failed (550 5.1.1 no)",
        "T info <c@two.test>... Deferred (451 4.3.0 later)",
        "T info reusing the connection to mx2.two.test[192.0.2.3]",
        "T >>> MAIL FROM:<x@y>",
        "T info <a@one.test>... Sent (250 Ok)",
        "T info something else",
        NULL
    };
    struct buf b;
    buf_init(&b, 0);
    assert_string_equal(run(&t, in, &b),
        "b@two.test... Connecting to mx.two.test[192.0.2.2] via smtp...\n"
        "mx.two.test[192.0.2.2]: Connection refused\n"
        "b@two.test... Connecting to mx2.two.test[192.0.2.3] via smtp...\n"
        "220 hi\n"
        ">>> RCPT TO:<b@two.test>\n"
        "550 5.1.1 no\n"
        "b@two.test... Failed (550 5.1.1 no)\n"
        "c@two.test... Deferred (451 4.3.0 later)\n"
        ">>> MAIL FROM:<x@y>\n"
        "a@one.test... Sent (Ok)\n"
        "Closing connection to mx2.two.test[192.0.2.3]\n"
        "something else\n");
    assert_int_equal(t.failed, 1);
    assert_int_equal(t.deferred, 1);
    assert_int_equal(t.sent, 1);
    buf_free(&b);
}

static void test_split(void **state)
{
    (void)state;
    char a[] = "T >>> DATA", b[] = "T info", c[] = "OK", d[] = "T ";
    const char *k, *t;
    assert_int_equal(traceview_split(a, &k, &t), 0);
    assert_string_equal(k, ">>>");
    assert_string_equal(t, "DATA");
    assert_int_equal(traceview_split(b, &k, &t), 0);
    assert_string_equal(k, "info");
    assert_string_equal(t, "");
    assert_int_equal(traceview_split(c, &k, &t), -1);
    assert_int_equal(traceview_split(d, &k, &t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remote),
        cmocka_unit_test(test_domain_route_and_failures),
        cmocka_unit_test(test_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
