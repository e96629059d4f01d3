/*
 * tests/unit/util/test_log.c - log lines escape everything outside printable ASCII.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/log.h"

static void test_escapes_peer_bytes(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    int saved = dup(STDERR_FILENO);
    dup2(p[1], STDERR_FILENO);
    log_init("test", false, LOG_LVL_INFO);
    log_info("from=<%s> helo=%s", "ev\r\nil\x1b[31m@x", "caf\xc3\xa9");
    dup2(saved, STDERR_FILENO);
    close(p[1]);
    char buf[1024] = "";
    ssize_t n = read(p[0], buf, sizeof buf - 1);
    close(p[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "from=<ev\\x0d\\x0ail\\x1b[31m@x> helo=caf\\xc3\\xa9\n"));
    /* exactly one line */
    assert_ptr_equal(strchr(buf, '\n'), buf + n - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_escapes_peer_bytes) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
