/*
 * tests/unit/cli/test_msgtext.c - sendmail's input rules, header fields, -t recipients,
 * Bcc removal, added fields and the DATA form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cli/msgtext.h"

/* Feed text line by line as sendmail reads stdin; returns what was stored. */
static const char *feed(const char *text, bool ignore_dots, int *ended, struct buf *out)
{
    struct msgtext_reader r;
    msgtext_reader_init(&r, ignore_dots);
    buf_reset(out);
    *ended = 0;
    const char *p = text;
    while (*p) {
        const char *lf = strchr(p, '\n');
        size_t n = lf ? (size_t)(lf - p) + 1 : strlen(p);
        int x = msgtext_feed_line(&r, p, n, out);
        assert_int_not_equal(x, -1);
        if (x == 1) {
            *ended = 1;
            break;
        }
        p += n;
    }
    return buf_cstr(out);
}

static void test_dot_ends_input(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    int ended;
    assert_string_equal(feed("a\n.\nb\n", false, &ended, &b), "a\n");
    assert_int_equal(ended, 1);
    assert_string_equal(feed("a\r\n.\r\nb\r\n", false, &ended, &b), "a\n");
    assert_int_equal(ended, 1);
    /* -i: a lone dot is text */
    assert_string_equal(feed("a\n.\nb\n", true, &ended, &b), "a\n.\nb\n");
    assert_int_equal(ended, 0);
    /* only a lone dot ends it */
    assert_string_equal(feed("..\n. \n.x\n", false, &ended, &b), "..\n. \n.x\n");
    assert_int_equal(ended, 0);
    /* a last line without LF gets one; a dot at the very end without LF ends too */
    assert_string_equal(feed("a\nb", false, &ended, &b), "a\nb\n");
    assert_string_equal(feed("a\n.", false, &ended, &b), "a\n");
    assert_int_equal(ended, 1);
    /* CRLF becomes LF; a CR inside a line stays */
    assert_string_equal(feed("a\rb\r\nc\r", false, &ended, &b), "a\rb\nc\n");
    buf_free(&b);
}

static void test_from_line_dropped(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    int ended;
    assert_string_equal(feed("From alice Mon Jan  1 00:00:00 2026\nSubject: x\n\nFrom here\n",
        false, &ended, &b), "Subject: x\n\nFrom here\n");
    assert_string_equal(feed("Subject: x\nFrom me\n", false, &ended, &b),
        "Subject: x\nFrom me\n");
    buf_free(&b);
}

static void test_cap(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 8);
    struct msgtext_reader r;
    msgtext_reader_init(&r, false);
    assert_int_equal(msgtext_feed_line(&r, "1234\n", 5, &b), 0);
    assert_int_equal(msgtext_feed_line(&r, "5678\n", 5, &b), -1);
    buf_free(&b);
}

static void test_header_end(void **state)
{
    (void)state;
    size_t body;
    bool sep;
    const char *m = "A: 1\nB: 2\n folded\n\nbody\n";
    assert_int_equal(msgtext_header_end(m, strlen(m), &body, &sep), 18);
    assert_true(sep);
    assert_int_equal(body, 19);
    m = "no header here\nA: 1\n";
    assert_int_equal(msgtext_header_end(m, strlen(m), &body, &sep), 0);
    assert_false(sep);
    assert_int_equal(body, 0);
    m = "A: 1\nnot a header\n";
    assert_int_equal(msgtext_header_end(m, strlen(m), &body, &sep), 5);
    assert_false(sep);
    assert_int_equal(body, 5);
    m = "A: 1\nB : obs form\n";
    assert_int_equal(msgtext_header_end(m, strlen(m), &body, &sep), strlen(m));
    m = " continuation first\n";
    assert_int_equal(msgtext_header_end(m, strlen(m), &body, &sep), 0);
    assert_int_equal(msgtext_header_end("", 0, &body, &sep), 0);
}

static void test_fields(void **state)
{
    (void)state;
    const char *m = "To: a@x\nSubject: s\n\tmore\nCC: c@x\n\nTo: not@header\n";
    size_t body;
    bool sep;
    size_t hend = msgtext_header_end(m, strlen(m), &body, &sep);
    size_t pos = 0;
    struct msgtext_field f;
    assert_int_equal(msgtext_next_field(m, hend, &pos, &f), 1);
    assert_true(msgtext_field_is(m, &f, "to"));
    assert_int_equal(msgtext_next_field(m, hend, &pos, &f), 1);
    assert_true(msgtext_field_is(m, &f, "Subject"));
    assert_int_equal(f.len, strlen("Subject: s\n\tmore\n"));
    assert_int_equal(msgtext_next_field(m, hend, &pos, &f), 1);
    assert_true(msgtext_field_is(m, &f, "Cc"));
    assert_int_equal(msgtext_next_field(m, hend, &pos, &f), 0);
    assert_true(msgtext_has_field(m, hend, "cc"));
    assert_false(msgtext_has_field(m, hend, "Bcc"));
}

static void expect_rcpts(const char *m, const char *const *want)
{
    size_t body;
    bool sep;
    size_t hend = msgtext_header_end(m, strlen(m), &body, &sep);
    struct addrlist l = { 0 };
    char err[128] = "";
    if (msgtext_recipients(m, hend, &l, err, sizeof err) != 0)
        fail_msg("%s", err);
    size_t n = 0;
    while (want[n])
        n++;
    assert_int_equal(l.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l.addrs[i], want[i]);
    addrlist_free(&l);
}

static void test_recipients(void **state)
{
    (void)state;
    const char *const w1[] = { "a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test",
        NULL };
    expect_rcpts("From: f@x.test\nTo: A <a@x.test>,\n  \"B, b\" <b@x.test>\n"
        "Subject: hi\ncc: c@x.test (see)\nBcc: Team: d@x.test, e@x.test;\n\n"
        "To: body@x.test\n", w1);
    /* Resent- fields win when there are any */
    const char *const w2[] = { "r@x.test", "s@x.test", NULL };
    expect_rcpts("To: a@x.test\nResent-To: r@x.test\nResent-Bcc: s@x.test\n\n", w2);
    const char *const w3[] = { NULL };
    expect_rcpts("Subject: none\n\n", w3);
    expect_rcpts("To: undisclosed-recipients:;\n\n", w3);
    size_t body;
    bool sep;
    const char *bad = "To: <a@x.test\n\n";
    struct addrlist l = { 0 };
    char err[128];
    assert_int_equal(msgtext_recipients(bad, msgtext_header_end(bad, strlen(bad), &body,
        &sep), &l, err, sizeof err), -1);
    assert_string_equal(err, "To: unbalanced <");
    addrlist_free(&l);
}

static const char *rewrite(const char *m, const struct msgtext_fix *fx, struct buf *out)
{
    buf_reset(out);
    assert_int_equal(msgtext_rewrite(m, strlen(m), fx, out), 0);
    return buf_cstr(out);
}

static void test_rewrite(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    struct msgtext_fix bcc = { .remove_bcc = true };
    assert_string_equal(rewrite("To: a@x\nBcc: secret@x,\n  other@x\nSubject: s\n\nBcc: body\n",
        &bcc, &b), "To: a@x\nSubject: s\n\nBcc: body\n");
    assert_string_equal(rewrite("BCC: x@y\nResent-Bcc: z@y\n\nb\n", &bcc, &b), "\nb\n");
    struct msgtext_fix keep = { .remove_bcc = false };
    assert_string_equal(rewrite("Bcc: x@y\n\nb\n", &keep, &b), "Bcc: x@y\n\nb\n");
    struct msgtext_fix add = { .remove_bcc = true, .from = "Me <me@x>", .date = "D",
        .msgid = "<id@x>" };
    assert_string_equal(rewrite("Subject: s\n\nbody\n", &add, &b),
        "Subject: s\nFrom: Me <me@x>\nDate: D\nMessage-ID: <id@x>\n\nbody\n");
    assert_string_equal(rewrite("from: x@y\nDATE: d\nMessage-Id: <m@y>\n\nbody\n", &add, &b),
        "from: x@y\nDATE: d\nMessage-Id: <m@y>\n\nbody\n");
    /* no header at all: the added fields and an empty line come first */
    assert_string_equal(rewrite("just text\n", &add, &b),
        "From: Me <me@x>\nDate: D\nMessage-ID: <id@x>\n\njust text\n");
    /* a header without an empty line before the body gets one */
    assert_string_equal(rewrite("Subject: s\nbody line\n", &bcc, &b),
        "Subject: s\n\nbody line\n");
    /* header only */
    assert_string_equal(rewrite("Subject: s\n", &bcc, &b), "Subject: s\n");
    assert_string_equal(rewrite("", &add, &b), "From: Me <me@x>\nDate: D\nMessage-ID: <id@x>\n");
    buf_free(&b);
}

static const char *from(const char *name, const char *addr, struct buf *out)
{
    buf_reset(out);
    assert_int_equal(msgtext_format_from(name, addr, out), 0);
    return buf_cstr(out);
}

static void test_format_from(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_string_equal(from(NULL, "a@x", &b), "a@x");
    assert_string_equal(from("", "a@x", &b), "a@x");
    assert_string_equal(from("Alice Smith", "a@x", &b), "Alice Smith <a@x>");
    assert_string_equal(from("Smith, Alice", "a@x", &b), "\"Smith, Alice\" <a@x>");
    assert_string_equal(from("A \"Q\" \\ B.", "a@x", &b), "\"A \\\"Q\\\" \\\\ B.\" <a@x>");
    assert_string_equal(from("J\xc3\xb6rg", "j@x", &b), "=?UTF-8?B?SsO2cmc=?= <j@x>");
    /* long names are cut into several encoded words, never inside a character */
    const char *longname = "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
    const char *s = from(longname, "e@x", &b);
    assert_non_null(strstr(s, "?= =?UTF-8?B?"));
    assert_non_null(strstr(s, "?= <e@x>"));
    buf_free(&b);
}

static void test_data_form(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    const char *m = "Subject: s\n\n.leading dot\n..two\n.\nend\n";
    assert_int_equal(msgtext_smtp_data(m, strlen(m), &b), 0);
    assert_string_equal(buf_cstr(&b),
        "Subject: s\r\n\r\n..leading dot\r\n...two\r\n..\r\nend\r\n.\r\n");
    buf_reset(&b);
    assert_int_equal(msgtext_smtp_data("", 0, &b), 0);
    assert_string_equal(buf_cstr(&b), ".\r\n");
    buf_free(&b);
    assert_false(msgtext_has_8bit("plain", 5));
    assert_true(msgtext_has_8bit("caf\xc3\xa9", 5));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_ends_input),
        cmocka_unit_test(test_from_line_dropped),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_header_end),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_recipients),
        cmocka_unit_test(test_rewrite),
        cmocka_unit_test(test_format_from),
        cmocka_unit_test(test_data_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
