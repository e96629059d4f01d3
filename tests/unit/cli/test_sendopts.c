/*
 * tests/unit/cli/test_sendopts.c - the sendmail command line: flags acted on, ignored,
 * refused, argument forms, and where the recipients start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include <cmocka.h>

#include "cli/sendopts.h"
#include "smtp/parse.h"

#define MAXW 32

/* Parse a space-separated command line (words have no spaces). */
static int parse(const char *line, enum sendopts_mode mode, struct sendopts *o, char *err,
    size_t errsz)
{
    static char store[512];
    static char *argv[MAXW];
    int argc = 0;
    snprintf(store, sizeof store, "sendmail %s", line);
    for (char *p = strtok(store, " "); p && argc < MAXW; p = strtok(NULL, " "))
        argv[argc++] = p;
    return sendopts_parse(argc, argv, mode, o, err, errsz);
}

static void ok(const char *line, struct sendopts *o)
{
    char err[256] = "";
    int r = parse(line, SENDOPTS_DELIVER, o, err, sizeof err);
    if (r != 0)
        fail_msg("%s: %s", line, err);
}

static void refused(const char *line, const char *msg)
{
    struct sendopts o;
    char err[256] = "";
    assert_int_equal(parse(line, SENDOPTS_DELIVER, &o, err, sizeof err), EX_USAGE);
    if (strstr(err, msg) == NULL)
        fail_msg("%s: got \"%s\", wanted \"%s\"", line, err, msg);
}

static void test_basic(void **state)
{
    (void)state;
    struct sendopts o;
    ok("alice@x bob@y", &o);
    assert_int_equal(o.mode, SENDOPTS_DELIVER);
    assert_int_equal(o.nrcpt, 2);
    assert_string_equal(o.rcpts[0], "alice@x");
    assert_false(o.extract);
    assert_false(o.ignore_dots);
    ok("-t -i -v -v", &o);
    assert_true(o.extract);
    assert_true(o.ignore_dots);
    assert_int_equal(o.verbose, 2);
    assert_int_equal(o.nrcpt, 0);
    ok("-ti", &o);
    assert_true(o.extract && o.ignore_dots);
    ok("-oi a@x", &o);
    assert_true(o.ignore_dots);
    assert_int_equal(o.nrcpt, 1);
    ok("-o i", &o);
    assert_true(o.ignore_dots);
    ok("-oem -odb -odi -odq -oee -oep -oeq -oew -oQ/var/spool a@x", &o);
    assert_false(o.ignore_dots);
    assert_int_equal(o.nrcpt, 1);
}

static void test_arguments(void **state)
{
    (void)state;
    struct sendopts o;
    ok("-f a@x -F Full -C /etc/x.conf b@y", &o);
    assert_string_equal(o.sender, "a@x");
    assert_string_equal(o.fullname, "Full");
    assert_string_equal(o.config, "/etc/x.conf");
    ok("-fa@x -rb@y c@z", &o);
    assert_string_equal(o.sender, "b@y");
    ok("-tfa@x c@z", &o);
    assert_true(o.extract);
    assert_string_equal(o.sender, "a@x");
    ok("-N success,failure,delay -R hdrs -V env1 -B 8BITMIME a@x", &o);
    assert_int_equal(o.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
    assert_int_equal(o.ret, SMTP_RET_HDRS);
    assert_string_equal(o.envid, "env1");
    assert_int_equal(o.body, SMTP_BODY_8BITMIME);
    ok("-Nnever -Rfull -B7bit a@x", &o);
    assert_int_equal(o.notify, SMTP_NOTIFY_NEVER);
    assert_int_equal(o.ret, SMTP_RET_FULL);
    assert_int_equal(o.body, SMTP_BODY_7BIT);
    ok("-N FAILURE a@x", &o);
    assert_int_equal(o.notify, SMTP_NOTIFY_FAILURE);
}

static void test_ignored(void **state)
{
    (void)state;
    struct sendopts o;
    ok("-U -G -n -m -x -Am -Ac -L tag -h 5 -O Opt=v -e q a@x", &o);
    assert_int_equal(o.nrcpt, 1);
    assert_string_equal(o.rcpts[0], "a@x");
    ok("-Ltag -h5 a@x", &o);
    assert_int_equal(o.nrcpt, 1);
}

static void test_modes(void **state)
{
    (void)state;
    struct sendopts o;
    ok("-bs", &o);
    assert_int_equal(o.mode, SENDOPTS_SMTP);
    ok("-bv a@x", &o);
    assert_int_equal(o.mode, SENDOPTS_VERIFY);
    ok("-bp", &o);
    assert_int_equal(o.mode, SENDOPTS_QUEUE);
    ok("-bp --json", &o);
    assert_true(o.json);
    ok("-bi", &o);
    assert_int_equal(o.mode, SENDOPTS_ALIASES);
    ok("-I", &o);
    assert_int_equal(o.mode, SENDOPTS_ALIASES);
    ok("-bm a@x", &o);
    assert_int_equal(o.mode, SENDOPTS_DELIVER);
    ok("-q", &o);
    assert_int_equal(o.mode, SENDOPTS_FLUSH);
    assert_null(o.flush_domain);
    ok("-qR example.org", &o);
    assert_int_equal(o.mode, SENDOPTS_FLUSH);
    assert_string_equal(o.flush_domain, "example.org");
    ok("-qRexample.net", &o);
    assert_string_equal(o.flush_domain, "example.net");
    ok("-q30m", &o);
    assert_int_equal(o.mode, SENDOPTS_NOTHING);
    char err[128];
    assert_int_equal(parse("--json", SENDOPTS_QUEUE, &o, err, sizeof err), 0);
    assert_int_equal(o.mode, SENDOPTS_QUEUE);
    assert_int_equal(parse("", SENDOPTS_ALIASES, &o, err, sizeof err), 0);
    assert_int_equal(o.mode, SENDOPTS_ALIASES);
}

static void test_end_of_options(void **state)
{
    (void)state;
    struct sendopts o;
    ok("-- -odd@x", &o);
    assert_int_equal(o.nrcpt, 1);
    assert_string_equal(o.rcpts[0], "-odd@x");
    /* the first word that is no option ends them */
    ok("a@x -t", &o);
    assert_false(o.extract);
    assert_int_equal(o.nrcpt, 2);
    assert_string_equal(o.rcpts[1], "-t");
    ok("- a@x", &o);
    assert_int_equal(o.nrcpt, 2);
}

static void test_refused(void **state)
{
    (void)state;
    refused("-Z a@x", "unknown option -Z");
    refused("-tZ a@x", "unknown option -Z");
    refused("-X /tmp/log a@x", "-X (traffic log) is not supported");
    refused("-X", "-X (traffic log) is not supported");
    refused("-d0.1 a@x", "-d (debugging) is not supported");
    refused("-bd", "run posteld");
    refused("-bt", "unsupported mode -bt");
    refused("-f", "option -f needs an argument");
    refused("-N sometimes a@x", "-N sometimes");
    refused("-N never,success a@x", "-N never,success");
    refused("-R body a@x", "-R body");
    refused("-B binarymime a@x", "-B binarymime");
    refused("-V \x01 a@x", "printable ASCII");
    refused("-qR", "-qR needs a domain");
    refused("-qSfoo", "-qSfoo is not supported");
    refused("--verbose a@x", "unknown option --verbose");
    refused("--json a@x", "--json goes with -bp");
    char v[200];
    memset(v, 'e', 101);
    v[101] = '\0';
    char line[256];
    snprintf(line, sizeof line, "-V %s a@x", v);
    refused(line, "1 to 100 characters");
}

static void test_notify(void **state)
{
    (void)state;
    assert_int_equal(sendopts_parse_notify("never"), SMTP_NOTIFY_NEVER);
    assert_int_equal(sendopts_parse_notify("NEVER"), SMTP_NOTIFY_NEVER);
    assert_int_equal(sendopts_parse_notify("delay,success"),
        SMTP_NOTIFY_DELAY | SMTP_NOTIFY_SUCCESS);
    assert_int_equal(sendopts_parse_notify(""), 0);
    assert_int_equal(sendopts_parse_notify("success,"), 0);
    assert_int_equal(sendopts_parse_notify("succes"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_ignored),
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_end_of_options),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_notify),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
