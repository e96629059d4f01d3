/*
 * tests/unit/conf/test_conf.c - configuration parsing, the table's defaults and bounds,
 * file:line errors (all of them), duplicate keys, printing and the reload diff.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

static void test_tls_policy_map(void **state)
{
    (void)state;
    char err[256];
    struct conf *c = parse("tls_policy = encrypt\n"
        "tls_policy_map = bank.example=verify, Plain.example=none\tother.example=may\n",
        err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->tls_policy, CONF_TLS_ENCRYPT);
    assert_int_equal(c->tls_policy_map.n, 3);
    assert_string_equal(c->tls_policy_map.v[1].dest, "Plain.example");
    assert_int_equal(conf_tls_policy(c, "BANK.example"), CONF_TLS_VERIFY);
    assert_int_equal(conf_tls_policy(c, "plain.example"), CONF_TLS_NONE);
    assert_int_equal(conf_tls_policy(c, "other.example"), CONF_TLS_MAY);
    assert_int_equal(conf_tls_policy(c, "elsewhere.example"), CONF_TLS_ENCRYPT);
    char out[4096];
    FILE *f = fmemopen(out, sizeof out, "w");
    conf_print(c, f);
    fclose(f);
    assert_non_null(strstr(out, "tls_policy = encrypt "));
    assert_non_null(strstr(out,
        "tls_policy_map = bank.example=verify Plain.example=none other.example=may "));
    conf_free(c);

    /* a later line replaces the map; an empty value clears it */
    c = parse("tls_policy_map = a.example=verify\ntls_policy_map = b.example=none\n", err,
        sizeof err);
    assert_non_null(c);
    assert_int_equal(c->tls_policy_map.n, 1);
    assert_int_equal(conf_tls_policy(c, "a.example"), CONF_TLS_MAY);
    conf_free(c);
    c = parse("tls_policy_map = a.example=verify\ntls_policy_map =\n", err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->tls_policy_map.n, 0);
    conf_free(c);
}

/* A map far longer than any fixed buffer: every entry is kept, the last one too. */
static void test_tls_policy_map_long(void **state)
{
    (void)state;
    char text[8000];
    size_t n = 0;
    n += (size_t)snprintf(text + n, sizeof text - n, "tls_policy_map =");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, " d%03d.example=none", i);
    n += (size_t)snprintf(text + n, sizeof text - n, " last.example=verify\n");
    assert_true(n > 4096 && n < sizeof text - 1);
    char err[256];
    struct conf *c = parse(text, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->tls_policy_map.n, 301);
    assert_int_equal(conf_tls_policy(c, "d299.example"), CONF_TLS_NONE);
    assert_int_equal(conf_tls_policy(c, "last.example"), CONF_TLS_VERIFY);
    conf_free(c);
}

static void test_relayhost_auth(void **state)
{
    (void)state;
    char err[256];
    struct conf *c = parse("relayhost = [192.0.2.1]:587\nrelayhost_auth = u:p:with:colons\n",
        err, sizeof err);
    assert_non_null(c);
    assert_string_equal(c->relayhost_user, "u");
    assert_string_equal(c->relayhost_pass, "p:with:colons");
    assert_false(c->relayhost_auth_unverified_tls);
    char out[8192];
    FILE *f = fmemopen(out, sizeof out, "w");
    conf_print(c, f);
    fclose(f);
    assert_non_null(strstr(out, "relayhost_auth = (set, not shown)"));
    assert_null(strstr(out, "with:colons"));
    conf_free(c);
    c = parse("relayhost_auth = u:p\nrelayhost_auth =\n", err, sizeof err);
    assert_non_null(c);
    assert_null(c->relayhost_user);
    assert_null(c->relayhost_pass);
    conf_free(c);
}

static void count_warning(void *arg, const char *text)
{
    size_t *n = arg;
    (*n)++;
    (void)text;
}

static size_t warnings(const char *text)
{
    char err[256];
    struct conf *c = parse(text, err, sizeof err);
    assert_non_null(c);
    size_t seen = 0;
    size_t n = conf_warnings(c, count_warning, &seen);
    assert_int_equal(n, seen);
    conf_free(c);
    return n;
}

static void test_relayhost_auth_warnings(void **state)
{
    (void)state;
    assert_int_equal(warnings("relayhost = [192.0.2.1]:587\n"), 0);
    assert_int_equal(warnings("relayhost = [192.0.2.1]:587\nrelayhost_auth = u:p\n"), 1);
    assert_int_equal(warnings("relayhost = [192.0.2.1]:587\nrelayhost_auth = u:p\n"
        "tls_policy = encrypt\n"), 1);
    assert_int_equal(warnings("relayhost = [192.0.2.1]:587\nrelayhost_auth = u:p\n"
        "tls_policy = verify\n"), 0);
    assert_int_equal(warnings("relayhost = [192.0.2.1]:587\nrelayhost_auth = u:p\n"
        "tls_policy_map = [192.0.2.1]:587=verify\n"), 0);
    assert_int_equal(warnings("relayhost = [192.0.2.1]:587\nrelayhost_auth = u:p\n"
        "tls_policy = verify\ntls_policy_map = [192.0.2.1]:587=may\n"), 1);
    assert_int_equal(warnings("relayhost = [192.0.2.1]:587\nrelayhost_auth = u:p\n"
        "relayhost_auth_unverified_tls = yes\n"), 1);
    assert_int_equal(warnings("relayhost_auth = u:p\n"), 1);
}

static void test_tls_errors(void **state)
{
    (void)state;
    /* a typo is an error, never a silent "may" */
    expect_err("hostname = a\ntls_policy_map = example.org=verfy\n",
        "test.conf:2: tls_policy_map: example.org: unknown policy 'verfy'");
    expect_err("tls_policy_map = a.example=verify example.org\n",
        "test.conf:1: tls_policy_map: 'example.org' is not destination=policy");
    expect_err("tls_policy_map = =verify\n", "test.conf:1: tls_policy_map:");
    expect_err("tls_policy_map = a.example=\n", "test.conf:1: tls_policy_map:");
    expect_err("tls_policy_map = a.example=none A.example=verify\n",
        "test.conf:1: tls_policy_map: 'A.example' is listed twice");
    expect_err("\ntls_policy = verfy\n", "test.conf:2: tls_policy: want none, may, encrypt");
    expect_err("relayhost_auth = nocolon\n", "test.conf:1: relayhost_auth: want user:password");
    expect_err("relayhost_auth = :pw\n", "test.conf:1: relayhost_auth:");
    expect_err("relayhost_auth = user:\n", "test.conf:1: relayhost_auth:");
    expect_err("relayhost_auth = us\rer:pw\n", "test.conf:1: relayhost_auth: CR or LF");
    char text[700];
    memset(text, 'x', sizeof text);
    memcpy(text, "relayhost_auth = u:", 19);
    memcpy(text + sizeof text - 2, "\n", 2);
    expect_err(text, "test.conf:1: relayhost_auth: user and password take at most 255");
}

/* Print c with fn into a string the caller frees. */
static char *printed(const struct conf *c, void (*fn)(const struct conf *, FILE *))
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    assert_non_null(f);
    fn(c, f);
    fclose(f);
    return out;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Every key's default comes from the table and parses; the printed defaults read back. */
static void test_table_defaults(void **state)
{
    (void)state;
    char err[256] = "";
    struct conf *c = parse("", err, sizeof err);
    assert_non_null(c);
    assert_non_null(c->hostname);
    assert_true(c->hostname[0] != '\0');
    assert_int_equal(c->listen.n, 1);
    assert_string_equal(c->listen.v[0].host, "127.0.0.1");
    assert_int_equal(c->listen.v[0].port, 25);
    assert_int_equal(c->submission.n, 0);
    assert_string_equal(c->spool_dir, "/var/spool/postel");
    assert_string_equal(c->mail_dir, "/var/mail/postel");
    assert_int_equal(c->trusted_networks.n, 2);
    assert_int_equal(c->message_size_limit, 10485760);
    assert_int_equal(c->max_recipients, 1000);
    assert_int_equal(c->max_connections, 15000);
    assert_int_equal(c->max_line_length, 998);
    assert_int_equal(c->timeout_command, 300);
    assert_int_equal(c->greet_pause_ms, 1000);
    assert_int_equal(c->workers, 8);
    assert_int_equal(c->retry_min, 300);
    assert_int_equal(c->retry_max, 1800);
    assert_int_equal(c->max_queue_lifetime, 5 * 86400);
    assert_int_equal(c->delay_warning_time, 4 * 3600);
    assert_int_equal(c->smtp_port, 25);
    assert_int_equal(c->connect_timeout, 30);
    assert_int_equal(c->connection_cache_time, 2);
    assert_int_equal(c->dest_concurrency, 20);
    assert_int_equal(c->remote_concurrency, 100);
    assert_int_equal(c->auth_max_failures, 5);
    assert_int_equal(c->auth_lockout, 600);
    assert_int_equal(c->double_bounce, CONF_LOOKUP_ON);
    assert_int_equal(c->tls_policy, CONF_TLS_MAY);
    assert_true(c->tls);
    assert_false(c->log_debug);
    assert_string_equal(c->admin_group, "mail");
    assert_null(c->relayhost);
    assert_null(c->load_warnings);

    /* postel config -d: the same text as printing the empty file, and it reads back */
    char *all = printed(c, conf_print);
    char *defs = NULL;
    size_t dlen = 0;
    FILE *f = open_memstream(&defs, &dlen);
    conf_print_defaults(f);
    fclose(f);
    assert_true(strncmp(all, defs, dlen) == 0);
    assert_non_null(strstr(defs, "workers = 8 # "));
    assert_non_null(strstr(defs, "trusted_networks = 127.0.0.0/8 ::1/128 # "));
    struct conf *again = parse(defs, err, sizeof err);
    if (again == NULL)
        fail_msg("the printed defaults do not parse: %s", err);
    char *all2 = printed(again, conf_print);
    assert_string_equal(all, all2);
    /* nothing differs from the defaults */
    char *changed = printed(again, conf_print_changed);
    assert_string_equal(changed, "");
    free(all);
    free(all2);
    free(defs);
    free(changed);
    conf_free(again);
    conf_free(c);
}

static void test_bounds(void **state)
{
    (void)state;
    expect_err("workers = 0\n", "test.conf:1: workers: must be 1 to 256");
    expect_err("\nworkers = 257\n", "test.conf:2: workers: must be 1 to 256");
    expect_err("smtp_port = 0\n", "test.conf:1: smtp_port: must be 1 to 65535");
    expect_err("smtp_port = 65536\n", "test.conf:1: smtp_port: must be 1 to 65535");
    expect_err("max_recipients = 99999999999999999999999\n", "test.conf:1: max_recipients");
    expect_err("timeout_data = 5000000000\n", "test.conf:1: timeout_data: bad duration");
    expect_err("listen =\n", "test.conf:1: listen takes 1 to 8");
    expect_err("spool_dir =\n", "test.conf:1: spool_dir needs a value");
    char err[256];
    /* the edges are allowed; workers (4 octets) does not spill into its neighbours */
    struct conf *c = parse("retry_min = 7\nworkers = 256\nretry_max = 9\nsmtp_port = 65535\n",
        err, sizeof err);
    assert_non_null(c);
    assert_int_equal(c->workers, 256);
    assert_int_equal(c->retry_min, 7);
    assert_int_equal(c->retry_max, 9);
    assert_int_equal(c->smtp_port, 65535);
    conf_free(c);
}

/* Every error of the file is reported, each with its line, not only the first. */
static void test_all_errors(void **state)
{
    (void)state;
    char err[1024] = "";
    struct conf *c = parse("hostname = a\nbogus = 1\nworkers = 0\n# fine\n"
        "vrfy = maybe\nmax_errors = 3\n", err, sizeof err);
    assert_null(c);
    assert_string_equal(err, "test.conf:2: unknown setting 'bogus'\n"
        "test.conf:3: workers: must be 1 to 256\n"
        "test.conf:5: vrfy: want on or off, not 'maybe'");

    /* more than fit: whole lines, then how many are left out */
    char text[300 * 16];
    size_t n = 0;
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, "bad%d = 1\n", i);
    char small[400];
    c = parse(text, small, sizeof small);
    assert_null(c);
    assert_true(strlen(small) < sizeof small);
    assert_true(strncmp(small, "test.conf:1: unknown setting 'bad0'\n", 36) == 0);
    const char *last = strrchr(small, '\n');
    assert_non_null(last);
    size_t shown = count_lines(small);
    char want[64];
    snprintf(want, sizeof want, "\ntest.conf: %zu more errors", (size_t)300 - shown);
    assert_string_equal(last, want);
}

/* A key given twice: the last value counts, and the load warns with both lines. */
static void test_duplicate_warned(void **state)
{
    (void)state;
    char err[256];
    struct conf *c = parse("hostname = a\nmax_recipients = 5\n\nhostname = b\n"
        "hostname = c\n", err, sizeof err);
    assert_non_null(c);
    assert_string_equal(c->hostname, "c");
    assert_int_equal(c->max_recipients, 5);
    assert_non_null(c->load_warnings);
    assert_string_equal(c->load_warnings,
        "test.conf:4: hostname set again (first at line 1); the last value counts\n"
        "test.conf:5: hostname set again (first at line 1); the last value counts\n");
    size_t seen = 0;
    assert_int_equal(conf_warnings(c, count_warning, &seen), 2);
    assert_int_equal(seen, 2);
    conf_free(c);
}

/* postel config -n: only the keys whose values differ from the defaults. */
static void test_print_changed(void **state)
{
    (void)state;
    char err[256];
    struct conf *c = parse("hostname = mx.test\nmax_recipients = 1000\nworkers = 3\n"
        "relayhost_auth = u:secret\nalias team: alice\n", err, sizeof err);
    assert_non_null(c);
    char *out = printed(c, conf_print_changed);
    assert_string_equal(out,
        "hostname = mx.test # our name in the greeting, EHLO and Received\n"
        "relayhost_auth = (set, not shown) "
        "# user:password for the relayhost, sent only over verified TLS\n"
        "workers = 3 # disk worker threads\n"
        "# aliases: 1 entries\n");
    free(out);
    conf_free(c);
}

/* A reload keeps the restart-only keys and names them by their keys, in table order. */
static void test_keep_static(void **state)
{
    (void)state;
    char err[256], changed[256];
    struct conf *old = parse("listen = 127.0.0.1:25\nworkers = 4\nmax_recipients = 10\n"
        "tls_cert = /a.pem\ntls_key = /a.key\n", err, sizeof err);
    assert_non_null(old);
    struct conf *c = parse("listen = 127.0.0.1:26\nsubmission_listen = 127.0.0.1:587\n"
        "workers = 4\nmax_recipients = 20\ntls_cert = /b.pem\ntls_key = /a.key\n"
        "spool_dir = /elsewhere\n", err, sizeof err);
    assert_non_null(c);
    conf_keep_static(c, old, changed, sizeof changed);
    assert_string_equal(changed, "listen submission_listen tls_cert spool_dir");
    assert_int_equal(c->listen.v[0].port, 25);
    assert_int_equal(c->submission.n, 0);
    assert_string_equal(c->tls_cert, "/a.pem");
    assert_string_equal(c->spool_dir, "/var/spool/postel");
    assert_int_equal(c->workers, 4);
    assert_int_equal(c->max_recipients, 20);    /* reloadable: the new value */
    conf_keep_static(c, old, changed, sizeof changed);
    assert_string_equal(changed, "");
    conf_free(c);
    conf_free(old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_tls_policy_map),
        cmocka_unit_test(test_tls_policy_map_long),
        cmocka_unit_test(test_relayhost_auth),
        cmocka_unit_test(test_relayhost_auth_warnings),
        cmocka_unit_test(test_tls_errors),
        cmocka_unit_test(test_table_defaults),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_all_errors),
        cmocka_unit_test(test_duplicate_warned),
        cmocka_unit_test(test_print_changed),
        cmocka_unit_test(test_keep_static),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
