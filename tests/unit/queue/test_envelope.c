/*
 * tests/unit/queue/test_envelope.c - envelope and status records round-trip and reject junk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "queue/envelope.h"
#include "smtp/parse.h"
#include "util/str.h"
#include "util/xmalloc.h"

static void make_msg(struct env_msg *m)
{
    memset(m, 0, sizeof *m);
    str_copy(m->id, sizeof m->id, "0123456789ABCDEF");
    m->arrival = 1767225600;
    m->sender = xstrdup("we ird+=\"q\"@remote.test");
    m->envid = xstrdup("env id\n");
    m->ret = SMTP_RET_HDRS;
    m->body = SMTP_BODY_8BITMIME;
    m->smtputf8 = true;
    m->helo = xstrdup("client.example");
    m->client = xstrdup("192.0.2.7");
    env_add_rcpt(m, "alice@example.test", true, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE,
        "rfc822;alice@example.test");
    env_add_rcpt(m, "j\xc3\xb6@remote.test", false, 0, NULL);
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct env_msg m, d;
    make_msg(&m);
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(env_encode(&m, &b), 0);
    /* No peer byte reaches the file unescaped: one record a line, no spaces inside values. */
    size_t lines = 0;
    for (size_t i = 0; i < b.len; i++)
        lines += b.p[i] == '\n';
    assert_int_equal(lines, 13);
    buf_puts(&b, "Subject: x\n\nbody\n");
    char err[128];
    assert_int_equal(env_decode(b.p, b.len, &d, err, sizeof err), 0);
    assert_string_equal(d.id, m.id);
    assert_int_equal(d.arrival, m.arrival);
    assert_string_equal(d.sender, m.sender);
    assert_string_equal(d.envid, m.envid);
    assert_int_equal(d.ret, SMTP_RET_HDRS);
    assert_int_equal(d.body, SMTP_BODY_8BITMIME);
    assert_true(d.smtputf8);
    assert_string_equal(d.helo, "client.example");
    assert_int_equal(d.nrcpt, 2);
    assert_string_equal(d.rcpts[0].addr, "alice@example.test");
    assert_true(d.rcpts[0].local);
    assert_int_equal(d.rcpts[0].notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
    assert_string_equal(d.rcpts[0].orcpt, "rfc822;alice@example.test");
    assert_string_equal(d.rcpts[1].addr, "j\xc3\xb6@remote.test");
    assert_false(d.rcpts[1].local);
    assert_null(d.rcpts[1].orcpt);
    assert_memory_equal(b.p + d.body_offset, "Subject: x\n", 11);

    /* status */
    d.rcpts[0].state = ENV_R_DELIVERED;
    d.rcpts[1].attempts = 3;
    d.rcpts[1].next_try = 1767229200;
    d.rcpts[1].reason = xstrdup("451 4.3.0 try later\r\nfake record");
    d.rcpts[1].status = xstrdup("4.3.0");
    d.rcpts[1].host = xstrdup("mx.remote.test[192.0.2.9]");
    d.rcpts[1].delay_notified = true;
    struct buf s;
    buf_init(&s, 0);
    assert_int_equal(env_status_encode(&d, &s), 0);
    struct env_msg e;
    buf_reset(&b);
    env_encode(&m, &b);
    assert_int_equal(env_decode(b.p, b.len, &e, err, sizeof err), 0);
    assert_int_equal(env_status_decode(s.p, s.len, &e, err, sizeof err), 0);
    assert_int_equal(e.rcpts[0].state, ENV_R_DELIVERED);
    assert_int_equal(e.rcpts[1].state, ENV_R_PENDING);
    assert_int_equal(e.rcpts[1].attempts, 3);
    assert_int_equal(e.rcpts[1].next_try, 1767229200);
    assert_string_equal(e.rcpts[1].reason, "451 4.3.0 try later\r\nfake record");
    assert_string_equal(e.rcpts[1].status, "4.3.0");
    assert_string_equal(e.rcpts[1].host, "mx.remote.test[192.0.2.9]");
    assert_true(e.rcpts[1].delay_notified);
    assert_false(e.rcpts[0].delay_notified);
    env_free(&m);
    env_free(&d);
    env_free(&e);
    buf_free(&b);
    buf_free(&s);
}

static void expect_bad(const char *text)
{
    struct env_msg d;
    char err[128];
    assert_int_equal(env_decode(text, strlen(text), &d, err, sizeof err), -1);
}

static void test_rejects(void **state)
{
    (void)state;
    expect_bad("");
    expect_bad("postel-envelope 2\n");
    expect_bad("postel-envelope 1\nid ABC\nsender a@b\n");                 /* no end */
    expect_bad("postel-envelope 1\nid ABC\nsender a@b\nend\n");            /* no rcpt */
    expect_bad("postel-envelope 1\nsender a@b\nrcpt x@y local 0 -\nend\n"); /* no id */
    expect_bad("postel-envelope 1\nid abc\nsender a@b\nrcpt x@y local 0 -\nend\n");
    expect_bad("postel-envelope 1\nid ABC\nsender a@b\nrcpt x@y nowhere 0 -\nend\n");
    expect_bad("postel-envelope 1\nid ABC\nsender a@b\nrcpt x@y local 99 -\nend\n");
    expect_bad("postel-envelope 1\nid ABC\nsender a+zz@b\nrcpt x@y local 0 -\nend\n");
    expect_bad("postel-envelope 1\nid ABC\nsender a@b\nrcpt x@y local 0 -\nbogus\nend\n");
    expect_bad("postel-envelope 1\nid ABC\nsender a@b\nsender c@d\nrcpt x@y local 0 -\nend\n");
    struct env_msg d;
    char err[128];
    const char *ok = "postel-envelope 1\nid ABC\nsender \nrcpt x@y local 0 -\nend\n";
    assert_int_equal(env_decode(ok, strlen(ok), &d, err, sizeof err), 0);
    assert_string_equal(d.sender, "");
    const char *st = "postel-status 1\nst 5 d 0 0 0 - - -\n";
    assert_int_equal(env_status_decode(st, strlen(st), &d, err, sizeof err), -1);
    st = "postel-status 1\nst 0 x 0 0 0 - - -\n";
    assert_int_equal(env_status_decode(st, strlen(st), &d, err, sizeof err), -1);
    env_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
