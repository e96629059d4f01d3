/*
 * tests/unit/conf/test_conf.c - configuration parsing, defaults and file:line errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "policy/aliases.h"

static struct conf *parse(const char *t, char *err, size_t errsz)
{
    return conf_parse(t, strlen(t), "test.conf", err, errsz);
}

static void test_defaults(void **state)
{
    (void)state;
    char err[256];
    struct conf *c = conf_parse(conf_default_text, strlen(conf_default_text), "(built-in)", err,
        sizeof err);
    assert_non_null(c);
    assert_int_equal(c->listen.n, 1);
    assert_string_equal(c->listen.v[0].host, "127.0.0.1");
    assert_int_equal(c->listen.v[0].port, 2525);
    assert_true(conf_is_local_domain(c, "LOCALHOST"));
    assert_false(conf_is_local_domain(c, "example.org"));
    assert_true(conf_is_local_user(c, "Alice"));
    assert_false(conf_is_local_user(c, "carol"));
    assert_true(aliases_exists(c->aliases, "postmaster"));
    assert_true(aliases_exists(c->aliases, "root"));
    assert_int_equal(c->relay_networks.n, 0);
    assert_int_equal(c->message_size_limit, 10485760);
    assert_int_equal(c->vrfy, CONF_LOOKUP_OFF);
    assert_int_equal(c->expn, CONF_LOOKUP_OFF);
    conf_free(c);
}

static void test_values(void **state)
{
    (void)state;
    char err[256];
    struct conf *c = parse("listen = 127.0.0.1:25, [::1]:587\n"
        "message_size_limit = 20M  # comment\n"
        "timeout_command = 5m\ntimeout_data = 90\ngreet_pause = 2s\n"
        "relay_networks = 192.0.2.0/24 2001:db8::/32\nvrfy = on\n", err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->listen.n, 2);
    assert_string_equal(c->listen.v[1].host, "::1");
    assert_int_equal(c->listen.v[1].port, 587);
    assert_int_equal(c->message_size_limit, 20 * 1024 * 1024);
    assert_int_equal(c->timeout_command, 300);
    assert_int_equal(c->timeout_data, 90);
    assert_int_equal(c->greet_pause_ms, 2000);
    assert_int_equal(c->relay_networks.n, 2);
    assert_int_equal(c->vrfy, CONF_LOOKUP_ON);
    char out[4096];
    FILE *f = fmemopen(out, sizeof out, "w");
    conf_print(c, f);
    fclose(f);
    assert_non_null(strstr(out, "listen = 127.0.0.1:25 [::1]:587"));
    assert_non_null(strstr(out, "timeout_command = 5m"));
    assert_non_null(strstr(out, "relay_networks = 192.0.2.0/24 2001:db8::/32"));
    conf_free(c);
}

static void expect_err(const char *text, const char *want)
{
    char err[256] = "";
    struct conf *c = parse(text, err, sizeof err);
    assert_null(c);
    if (strstr(err, want) == NULL)
        fail_msg("wanted \"%s\" in \"%s\"", want, err);
}

static void test_errors(void **state)
{
    (void)state;
    expect_err("hostname = a\nbogus = 1\n", "test.conf:2: unknown setting 'bogus'");
    expect_err("listen = 127.0.0.1\n", "test.conf:1: bad listen address");
    expect_err("\n\nlisten = 127.0.0.1:99999\n", "test.conf:3:");
    expect_err("timeout_command = 5 minutes\n", "test.conf:1: timeout_command: bad duration");
    expect_err("message_size_limit = -1\n", "test.conf:1:");
    expect_err("relay_networks = 10.0.0.0/33\n", "test.conf:1: relay_networks: bad network");
    expect_err("vrfy = maybe\n", "test.conf:1: vrfy: want on or off");
    expect_err("just words\n", "test.conf:1: expected 'key = value'");
    expect_err("workers = 0\n", "test.conf:1: workers");
    /* Inline aliases keep the config's line numbers. */
    expect_err("hostname = a\n\nalias x: |/bin/sh\n", "test.conf:3:");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
