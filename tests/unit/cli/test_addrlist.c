/*
 * tests/unit/cli/test_addrlist.c - RFC 5322 address lists as sendmail -t reads them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/addrlist.h"

/* Parse s and compare with the expected addresses (NULL-terminated). */
static void expect_list(const char *s, const char *const *want)
{
    struct addrlist l = { 0 };
    char err[128] = "";
    int r = addrlist_parse(s, strlen(s), &l, err, sizeof err);
    if (r != 0)
        fail_msg("%s: %s", s, err);
    size_t n = 0;
    while (want[n])
        n++;
    if (l.n != n)
        fail_msg("%s: %zu addresses, wanted %zu", s, l.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l.addrs[i], want[i]);
    addrlist_free(&l);
}

#define EXPECT(s, ...) do { \
        const char *const w_[] = { __VA_ARGS__, NULL }; \
        expect_list(s, w_); \
    } while (0)

static void expect_none(const char *s)
{
    const char *const w[] = { NULL };
    expect_list(s, w);
}

static void expect_error(const char *s, const char *why)
{
    struct addrlist l = { 0 };
    char err[128] = "";
    assert_int_equal(addrlist_parse(s, strlen(s), &l, err, sizeof err), -1);
    assert_non_null(strstr(err, why));
    addrlist_free(&l);
}

static void test_plain(void **state)
{
    (void)state;
    EXPECT("alice@example.org", "alice@example.org");
    EXPECT("  alice@example.org  ", "alice@example.org");
    EXPECT("a@x.test, b@y.test,c@z.test", "a@x.test", "b@y.test", "c@z.test");
    EXPECT("alice", "alice");
    EXPECT("a@x.test,,b@x.test", "a@x.test", "b@x.test");
    expect_none("");
    expect_none("   ");
}

static void test_display_names(void **state)
{
    (void)state;
    EXPECT("Alice Smith <alice@example.org>", "alice@example.org");
    EXPECT("\"Smith, Alice\" <alice@example.org>, Bob <bob@x.test>", "alice@example.org",
        "bob@x.test");
    EXPECT("\"a \\\"quoted\\\" name, with comma\" <q@x.test>", "q@x.test");
    EXPECT("J. R. Doe <jrd@x.test>", "jrd@x.test");
    EXPECT("=?UTF-8?B?SsO2cmc=?= <joerg@x.test>", "joerg@x.test");
    EXPECT("J\xc3\xb6rg <joerg@x.test>", "joerg@x.test");
    EXPECT("<bare@x.test>", "bare@x.test");
    expect_none("<>");
    EXPECT("<>, a@x.test", "a@x.test");
}

static void test_comments(void **state)
{
    (void)state;
    EXPECT("alice@example.org (Alice Smith)", "alice@example.org");
    EXPECT("(lead) alice (the local one) @ (at) example.org", "alice@example.org");
    EXPECT("a@x.test (nested (comment, with) comma), b@x.test", "a@x.test", "b@x.test");
    EXPECT("Name (c) <a@x.test> (trailing)", "a@x.test");
    EXPECT("a@x.test (escaped \\) paren, still comment)", "a@x.test");
}

static void test_groups(void **state)
{
    (void)state;
    expect_none("undisclosed-recipients:;");
    EXPECT("Team: a@x.test, Bob <b@x.test>;, c@x.test", "a@x.test", "b@x.test", "c@x.test");
    EXPECT("Friends: a@x.test; Others: \"B, b\" <b@y.test>;", "a@x.test", "b@y.test");
    EXPECT("Empty:; z@x.test", "z@x.test");
}

static void test_folded_and_routes(void **state)
{
    (void)state;
    EXPECT(" Alice <alice@x.test>,\n\tBob\n <bob@y.test>", "alice@x.test", "bob@y.test");
    EXPECT(" a@x.test,\r\n b@x.test\r\n", "a@x.test", "b@x.test");
    EXPECT("<@relay.test,@other.test:user@dest.test>", "user@dest.test");
    EXPECT("\"odd user\"@x.test", "\"odd user\"@x.test");
    EXPECT("\"folded\n quoted\"@x.test", "\"folded quoted\"@x.test");
    EXPECT("user@[192.0.2.1]", "user@[192.0.2.1]");
    EXPECT("user@x.test.", "user@x.test.");
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("Alice <alice@x.test", "unbalanced <");
    expect_error("a@x.test (open comment", "unbalanced comment");
    expect_error("\"open quote@x.test", "unbalanced quote");
    expect_error("user@[192.0.2.1", "unbalanced [");
    expect_error("a@x.test>", "unbalanced >");
    expect_error("<<a@x.test>>", "nested <");
    expect_error("a\x01@x.test", "control");
    expect_error("A <a@x.test> <b@x.test>", "two <addresses>");
    /* what was parsed before the error is kept */
    struct addrlist l = { 0 };
    char err[64];
    const char *s = "a@x.test, <b@x.test";
    assert_int_equal(addrlist_parse(s, strlen(s), &l, err, sizeof err), -1);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.addrs[0], "a@x.test");
    addrlist_free(&l);
}

static void test_appends(void **state)
{
    (void)state;
    struct addrlist l = { 0 };
    char err[64];
    assert_int_equal(addrlist_parse("a@x", 3, &l, err, sizeof err), 0);
    assert_int_equal(addrlist_parse("b@x, c@x", 8, &l, err, sizeof err), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.addrs[2], "c@x");
    addrlist_free(&l);
    assert_int_equal(l.n, 0);
    assert_null(l.addrs);
    /* the length is honoured: nothing after n is read */
    assert_int_equal(addrlist_parse("a@x, b@y", 3, &l, err, sizeof err), 0);
    assert_int_equal(l.n, 1);
    addrlist_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_display_names),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_groups),
        cmocka_unit_test(test_folded_and_routes),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_appends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
