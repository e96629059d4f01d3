/*
 * tests/unit/cli/test_json.c - the JSON reader used for the daemon's LIST and SHOW answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/json.h"

static struct json *parse_ok(const char *s)
{
    char err[128] = "";
    struct json *v = json_parse(s, strlen(s), err, sizeof err);
    if (v == NULL)
        fail_msg("%s: %s", s, err);
    return v;
}

static void parse_bad(const char *s)
{
    char err[128] = "";
    struct json *v = json_parse(s, strlen(s), err, sizeof err);
    if (v != NULL)
        fail_msg("%s: accepted", s);
    assert_non_null(strstr(err, "JSON: "));
}

static void test_list_object(void **state)
{
    (void)state;
    struct json *v = parse_ok("{\"id\":\"0123456789ABCDEF\",\"size\":267,\"arrival\":1795362475,"
        "\"sender\":\"root@localhost\",\"held\":false,\"active\":true,\"recipients\":["
        "{\"address\":\"bob@remote.test\",\"state\":\"pending\",\"attempts\":1,"
        "\"status\":\"4.4.1\",\"reason\":\"connect failed\"}]}");
    assert_int_equal(v->type, JSON_OBJ);
    assert_string_equal(json_get_str(v, "id", NULL), "0123456789ABCDEF");
    assert_true(json_get_num(v, "size", 0) == 267);
    assert_true(json_get_num(v, "arrival", 0) == 1795362475.0);
    assert_false(json_get_bool(v, "held", true));
    assert_true(json_get_bool(v, "active", false));
    const struct json *r = json_get(v, "recipients");
    assert_non_null(r);
    assert_int_equal(r->type, JSON_ARR);
    assert_int_equal(r->n, 1);
    assert_string_equal(json_get_str(&r->items[0], "reason", NULL), "connect failed");
    assert_null(json_get(v, "nope"));
    assert_string_equal(json_get_str(v, "size", "def"), "def");
    assert_true(json_get_num(v, "id", -1) == -1);
    json_free(v);
}

static void test_strings(void **state)
{
    (void)state;
    struct json *v = parse_ok("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20ac"
        "\\ud83d\\ude00\"");
    assert_int_equal(v->type, JSON_STR);
    assert_string_equal(v->str, "a\"b\\c/d\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    json_free(v);
    v = parse_ok("\"caf\xc3\xa9\"");
    assert_string_equal(v->str, "caf\xc3\xa9");
    json_free(v);
    v = parse_ok("\"\"");
    assert_string_equal(v->str, "");
    json_free(v);
}

static void test_scalars(void **state)
{
    (void)state;
    struct json *v = parse_ok(" [true, false, null, -1.5e2, 0, 12] ");
    assert_int_equal(v->n, 6);
    assert_int_equal(v->items[0].type, JSON_BOOL);
    assert_true(v->items[0].b);
    assert_int_equal(v->items[2].type, JSON_NULL);
    assert_true(v->items[3].num == -150.0);
    assert_true(v->items[5].num == 12.0);
    json_free(v);
    v = parse_ok("{}");
    assert_int_equal(v->type, JSON_OBJ);
    assert_int_equal(v->n, 0);
    json_free(v);
    v = parse_ok("[[[]]]");
    json_free(v);
}

static void test_rejects(void **state)
{
    (void)state;
    parse_bad("");
    parse_bad("{");
    parse_bad("{\"a\"}");
    parse_bad("{\"a\":1,}");
    parse_bad("[1,]");
    parse_bad("[1 2]");
    parse_bad("{a:1}");
    parse_bad("\"unterminated");
    parse_bad("\"bad \\x escape\"");
    parse_bad("\"ctl \x01\"");
    parse_bad("\"\\u0000\"");
    parse_bad("\"\\ud83d alone\"");
    parse_bad("\"\\ude00\"");
    parse_bad("01");
    parse_bad("1.");
    parse_bad("-");
    parse_bad("1e");
    parse_bad("tru");
    parse_bad("nul");
    parse_bad("{} x");
    char deep[200];
    memset(deep, '[', 100);
    memset(deep + 100, ']', 100);
    char err[64];
    assert_null(json_parse(deep, sizeof deep, err, sizeof err));
    assert_non_null(strstr(err, "nested too deeply"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_object),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
