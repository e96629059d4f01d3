/*
 * tests/unit/smtp/test_client.c - sender-SMTP session machine (smtp/client.c).
 *
 * Each test is a transcript: server replies go in as text (through the real reply parser),
 * and the exact bytes the client sends, its actions, its timeouts and the per-recipient
 * results are checked at every step.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/client.h"
#include "smtp/parse.h"
#include "smtp/reply.h"
#include "util/buf.h"

struct sess {
    struct smtp_client c;
    struct buf send;
    struct cli_out out;
};

static void sess_init(struct sess *s)
{
    memset(s, 0, sizeof *s);
    cli_init(&s->c, "client.example");
    buf_init(&s->send, 1024 * 1024);
    s->out.send = &s->send;
}

static void sess_free(struct sess *s)
{
    cli_free(&s->c);
    buf_free(&s->send);
}

/* The bytes sent since the last check must be exactly want; then forget them. */
static void sent(struct sess *s, const char *want)
{
    const char *got = buf_cstr(&s->send);
    assert_non_null(got);
    assert_string_equal(got, want);
    buf_reset(&s->send);
}

/* Feed the server output in (one or more complete replies, e.g. a pipelined batch) through
 * the reply parser; the OR of the actions must be acts. */
static void srv(struct sess *s, const char *in, unsigned acts)
{
    struct reply_parser p;
    size_t n = strlen(in), off = 0;
    unsigned all = 0;

    reply_parser_init(&p);
    while (off < n) {
        struct smtp_reply r;
        bool done;
        size_t got = reply_parse(&p, in + off, n - off, &r, &done);
        assert_int_not_equal(got, (size_t)-1);
        assert_true(done);
        off += got;
        s->out.acts = 0xdead;
        cli_reply(&s->c, &r, &s->out);
        all |= s->out.acts;
        reply_free(&r);
    }
    reply_parser_free(&p);
    assert_int_equal(all, acts);
}

static void check_res(const struct sess *s, size_t i, enum cli_rkind kind, const char *status,
    enum cli_stage stage, const char *reply)
{
    size_t n;
    const struct cli_result *res = cli_results(&s->c, &n);
    assert_true(i < n);
    assert_int_equal(res[i].kind, kind);
    assert_string_equal(res[i].status, status);
    assert_int_equal(res[i].stage, stage);
    assert_int_equal(res[i].when_connecting, stage <= CLI_STAGE_AUTH);
    if (reply != NULL)
        assert_string_equal(res[i].reply, reply);
}

static const char EHLO_FULL[] =
    "250-mx.example Hello client.example\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 10240000\r\n"
    "250-8BITMIME\r\n"
    "250-DSN\r\n"
    "250-ENHANCEDSTATUSCODES\r\n"
    "250-STARTTLS\r\n"
    "250 SMTPUTF8\r\n";

static const char EHLO_PLAIN[] =
    "250-mx.example\r\n"
    "250-SIZE\r\n"
    "250 HELP\r\n";

static const char *const RCPTS2[] = { "x@d.example", "y@d.example" };
static const char *const RCPTS3[] = { "u1@d.example", "u2@d.example", "u3@d.example" };

/* Greeting and EHLO with the given EHLO reply, on a session set up already (sess_init(),
 * cli_set_tls(), cli_set_auth()); the message's commands follow. */
static void start_session(struct sess *s, const struct cli_msg *m, const char *ehlo,
    unsigned acts)
{
    assert_int_equal(cli_timeout(&s->c), 0);
    s->out.acts = 0xdead;
    cli_start(&s->c, m, &s->out);
    assert_int_equal(s->out.acts, CLI_ACT_NONE);
    assert_int_equal(s->send.len, 0);
    assert_int_equal(cli_timeout(&s->c), CLI_TIMEOUT_GREETING);
    srv(s, "220 mx.example ESMTP\r\n", CLI_ACT_SEND);
    sent(s, "EHLO client.example\r\n");
    assert_int_equal(cli_timeout(&s->c), CLI_TIMEOUT_HELO);
    srv(s, ehlo, acts);
}

static void open_session(struct sess *s, const struct cli_msg *m, const char *ehlo,
    unsigned acts)
{
    sess_init(s);
    start_session(s, m, ehlo, acts);
}

/* 354, content, end-of-data reply. */
static void send_body(struct sess *s, const char *dot_reply, unsigned acts)
{
    assert_int_equal(cli_timeout(&s->c), CLI_TIMEOUT_DATA_BLOCK);
    s->out.acts = 0xdead;
    cli_body_sent(&s->c, &s->out);
    assert_int_equal(s->out.acts, CLI_ACT_NONE);
    assert_int_equal(cli_timeout(&s->c), CLI_TIMEOUT_DATA_END);
    srv(s, dot_reply, acts);
}

static void quit(struct sess *s)
{
    cli_quit(&s->c, &s->out);
    assert_int_equal(s->out.acts, CLI_ACT_SEND);
    sent(s, "QUIT\r\n");
    assert_int_equal(cli_timeout(&s->c), CLI_TIMEOUT_OTHER);
    srv(s, "221 2.0.0 Bye\r\n", CLI_ACT_CLOSE);
    assert_int_equal(s->send.len, 0);
    assert_int_equal(s->c.state, CLI_S_CLOSED);
}

/* ---- full ESMTP with PIPELINING ---- */

static void test_esmtp_pipelining(void **state)
{
    (void)state;
    static const unsigned notify[] = { SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE,
        SMTP_NOTIFY_NEVER };
    static const char *const orcpt[] = { "rfc822;x+1@d.example", NULL };
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .notify = notify,
        .orcpt = orcpt, .nrcpt = 2, .size = 1234, .eightbit = true, .ret = SMTP_RET_HDRS,
        .envid = "id=1 2" };
    struct sess s;

    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=1234 BODY=8BITMIME RET=HDRS ENVID=id+3D1+202\r\n"
        "RCPT TO:<x@d.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;x+2B1@d.example\r\n"
        "RCPT TO:<y@d.example> NOTIFY=NEVER\r\n"
        "DATA\r\n");
    assert_true(s.c.ext.esmtp && s.c.ext.pipelining && s.c.ext.size && s.c.ext.eightbitmime);
    assert_true(s.c.ext.dsn && s.c.ext.enhanced && s.c.ext.starttls && s.c.ext.smtputf8);
    assert_int_equal(s.c.ext.size_max, 10240000);
    assert_false(cli_needs_7bit(&s.c));

    assert_int_equal(cli_timeout(&s.c), CLI_TIMEOUT_MAIL);
    srv(&s, "250 2.1.0 Ok\r\n", CLI_ACT_NONE);
    assert_int_equal(cli_timeout(&s.c), CLI_TIMEOUT_RCPT);
    srv(&s, "250 2.1.5 Ok\r\n", CLI_ACT_NONE);
    srv(&s, "250 2.1.5 Ok\r\n", CLI_ACT_NONE);
    assert_int_equal(cli_timeout(&s.c), CLI_TIMEOUT_DATA_INIT);
    srv(&s, "354 End data with <CR><LF>.<CR><LF>\r\n", CLI_ACT_SEND_BODY);
    assert_int_equal(s.send.len, 0);
    send_body(&s, "250 2.0.0 Ok: queued as 4F2A\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    assert_int_equal(cli_timeout(&s.c), 0);
    check_res(&s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 2.0.0 Ok: queued as 4F2A");
    check_res(&s, 1, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 2.0.0 Ok: queued as 4F2A");
    quit(&s);
    sess_free(&s);
}

/* The pipelined replies may arrive in one read; the client takes them one at a time. */
static void test_pipelining_one_read(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "", .rcpts = RCPTS2, .nrcpt = 2, .size = 10 };
    struct sess s;

    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<> SIZE=10\r\nRCPT TO:<x@d.example>\r\nRCPT TO:<y@d.example>\r\n"
        "DATA\r\n");
    srv(&s, "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n354 go\r\n", CLI_ACT_SEND_BODY);
    send_body(&s, "250 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 ok");
    check_res(&s, 1, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 ok");
    sess_free(&s);
}

/* ---- no PIPELINING: one command at a time ---- */

static void test_one_by_one(void **state)
{
    (void)state;
    static const unsigned notify[] = { SMTP_NOTIFY_DELAY, 0 };
    static const char *const orcpt[] = { "rfc822;x@d.example", "rfc822;y@d.example" };
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .notify = notify,
        .orcpt = orcpt, .nrcpt = 2, .size = 77, .ret = SMTP_RET_FULL, .envid = "e1" };
    struct sess s;

    open_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    assert_true(s.c.ext.esmtp && s.c.ext.size);
    assert_false(s.c.ext.pipelining || s.c.ext.dsn || s.c.ext.eightbitmime);
    assert_int_equal(s.c.ext.size_max, 0);
    /* no DSN offered: RET, ENVID, NOTIFY, ORCPT are left out (RFC 3461 4.1) */
    sent(&s, "MAIL FROM:<a@b.example> SIZE=77\r\n");
    assert_int_equal(cli_timeout(&s.c), CLI_TIMEOUT_MAIL);
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<x@d.example>\r\n");
    assert_int_equal(cli_timeout(&s.c), CLI_TIMEOUT_RCPT);
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<y@d.example>\r\n");
    srv(&s, "251 will forward\r\n", CLI_ACT_SEND);
    sent(&s, "DATA\r\n");
    assert_int_equal(cli_timeout(&s.c), CLI_TIMEOUT_DATA_INIT);
    srv(&s, "354 go ahead\r\n", CLI_ACT_SEND_BODY);
    send_body(&s, "250 accepted\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 accepted");
    check_res(&s, 1, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 accepted");
    quit(&s);
    sess_free(&s);
}

/* ---- EHLO refused: HELO, plain SMTP ---- */

static void test_helo_fallback(void **state)
{
    (void)state;
    static const unsigned notify[] = { SMTP_NOTIFY_SUCCESS };
    static const char *const rc[] = { "x@d.example" };
    struct cli_msg m = { .sender = "a@b.example", .rcpts = rc, .notify = notify, .nrcpt = 1,
        .size = 5, .eightbit = true, .ret = SMTP_RET_FULL, .envid = "e" };
    struct sess s;

    open_session(&s, &m, "500 Command unrecognized\r\n", CLI_ACT_SEND);
    sent(&s, "HELO client.example\r\n");
    assert_int_equal(cli_timeout(&s.c), CLI_TIMEOUT_HELO);
    srv(&s, "250 sun.tuc.noao.edu Hello\r\n", CLI_ACT_SEND);
    assert_false(s.c.ext.esmtp);
    /* no SIZE, BODY, RET, ENVID, NOTIFY: plain RFC 821 */
    sent(&s, "MAIL FROM:<a@b.example>\r\n");
    assert_true(cli_needs_7bit(&s.c));
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<x@d.example>\r\n");
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "DATA\r\n");
    srv(&s, "354 go\r\n", CLI_ACT_SEND_BODY);
    assert_true(cli_needs_7bit(&s.c));
    send_body(&s, "250 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 ok");
    quit(&s);
    sess_free(&s);
}

static void test_helo_refused(void **state)
{
    (void)state;
    static const char *const rc[] = { "x@d.example" };
    struct cli_msg m = { .sender = "a@b.example", .rcpts = rc, .nrcpt = 1 };
    struct sess s;

    open_session(&s, &m, "502 5.5.1 no EHLO\r\n", CLI_ACT_SEND);
    sent(&s, "HELO client.example\r\n");
    srv(&s, "550 5.7.1 go away\r\n", CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_PERM, "5.7.1", CLI_STAGE_HELO, "550 5.7.1 go away");
    srv(&s, "221 bye\r\n", CLI_ACT_CLOSE);
    sess_free(&s);
}

static void test_ehlo_temp(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    open_session(&s, &m, "454 4.7.0 try later\r\n", CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_TEMP, "4.7.0", CLI_STAGE_HELO, "454 4.7.0 try later");
    check_res(&s, 1, CLI_R_TEMP, "4.7.0", CLI_STAGE_HELO, "454 4.7.0 try later");
    /* the server hangs up instead of answering QUIT: just close */
    cli_fail(&s.c, CLI_FAIL_CLOSED, NULL, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.7.0", CLI_STAGE_HELO, "454 4.7.0 try later");
    sess_free(&s);
}

/* ---- recipients ---- */

static void test_some_refused(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS3, .nrcpt = 3, .size = 9 };
    struct sess s;

    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=9\r\nRCPT TO:<u1@d.example>\r\n"
        "RCPT TO:<u2@d.example>\r\nRCPT TO:<u3@d.example>\r\nDATA\r\n");
    srv(&s, "250 2.1.0 Ok\r\n", CLI_ACT_NONE);
    srv(&s, "550-5.1.1 <u1@d.example>: Recipient address rejected:\r\n"
        "550 5.1.1 User unknown in local recipient table\r\n", CLI_ACT_NONE);
    srv(&s, "450 mailbox busy\r\n", CLI_ACT_NONE);
    srv(&s, "250 2.1.5 Ok\r\n", CLI_ACT_NONE);
    srv(&s, "354 go\r\n", CLI_ACT_SEND_BODY);
    send_body(&s, "250 2.0.0 queued\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_PERM, "5.1.1", CLI_STAGE_RCPT,
        "550 5.1.1 <u1@d.example>: Recipient address rejected: User unknown in local "
        "recipient table");
    check_res(&s, 1, CLI_R_TEMP, "4.0.0", CLI_STAGE_RCPT, "450 mailbox busy");
    check_res(&s, 2, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 2.0.0 queued");
    quit(&s);
    sess_free(&s);
}

static void test_all_refused_pipelined(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2, .size = 9 };
    static const char *const rc2[] = { "z@d.example" };
    struct cli_msg m2 = { .sender = "a@b.example", .rcpts = rc2, .nrcpt = 1, .size = 3 };
    struct sess s;

    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    buf_reset(&s.send);
    srv(&s, "250 2.1.0 Ok\r\n", CLI_ACT_NONE);
    srv(&s, "550 5.1.1 no such user\r\n", CLI_ACT_NONE);
    srv(&s, "550 5.1.1 no such user either\r\n", CLI_ACT_NONE);
    /* no body is sent; the DATA refusal itself is not a result */
    srv(&s, "554 5.5.1 Error: no valid recipients\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 0, CLI_R_PERM, "5.1.1", CLI_STAGE_RCPT, "550 5.1.1 no such user");
    check_res(&s, 1, CLI_R_PERM, "5.1.1", CLI_STAGE_RCPT, "550 5.1.1 no such user either");

    /* the transaction MAIL opened is still there: RSET before the next one */
    cli_next(&s.c, &m2, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_SEND);
    sent(&s, "RSET\r\n");
    assert_int_equal(cli_timeout(&s.c), CLI_TIMEOUT_OTHER);
    srv(&s, "250 2.0.0 Ok\r\n", CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=3\r\nRCPT TO:<z@d.example>\r\nDATA\r\n");
    srv(&s, "250 ok\r\n250 ok\r\n354 go\r\n", CLI_ACT_SEND_BODY);
    send_body(&s, "250 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 ok");
    quit(&s);
    sess_free(&s);
}

static void test_all_refused_one_by_one(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    open_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=0\r\n");
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<x@d.example>\r\n");
    srv(&s, "550 no\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<y@d.example>\r\n");
    /* no DATA at all */
    srv(&s, "553 5.1.3 bad\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 0, CLI_R_PERM, "5.0.0", CLI_STAGE_RCPT, "550 no");
    check_res(&s, 1, CLI_R_PERM, "5.1.3", CLI_STAGE_RCPT, "553 5.1.3 bad");
    /* QUIT needs no RSET */
    quit(&s);
    sess_free(&s);
}

/* A server that says 354 although nobody was accepted gets an empty message (RFC 2920). */
static void test_all_refused_but_354(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    buf_reset(&s.send);
    srv(&s, "250 ok\r\n450 busy\r\n550 unknown\r\n", CLI_ACT_NONE);
    srv(&s, "354 go\r\n", CLI_ACT_SEND);
    sent(&s, ".\r\n");
    assert_int_equal(cli_timeout(&s.c), CLI_TIMEOUT_DATA_END);
    srv(&s, "250 ok whatever\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_TEMP, "4.0.0", CLI_STAGE_RCPT, "450 busy");
    check_res(&s, 1, CLI_R_PERM, "5.0.0", CLI_STAGE_RCPT, "550 unknown");
    assert_false(s.c.need_rset);
    sess_free(&s);
}

/* ---- MAIL refused ---- */

static void test_mail_refused(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    open_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=0\r\n");
    srv(&s, "553 5.1.8 sender domain does not exist\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 0, CLI_R_PERM, "5.1.8", CLI_STAGE_MAIL,
        "553 5.1.8 sender domain does not exist");
    check_res(&s, 1, CLI_R_PERM, "5.1.8", CLI_STAGE_MAIL, NULL);
    assert_false(s.c.need_rset);
    quit(&s);
    sess_free(&s);
}

static void test_mail_refused_pipelined(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    buf_reset(&s.send);
    srv(&s, "451 4.3.0 try again later\r\n", CLI_ACT_NONE);
    /* the rest of the group's replies are consumed, not taken as results */
    srv(&s, "503 5.5.1 need MAIL\r\n", CLI_ACT_NONE);
    srv(&s, "250 odd but fine\r\n", CLI_ACT_NONE);
    srv(&s, "503 5.5.1 no valid recipients\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 0, CLI_R_TEMP, "4.3.0", CLI_STAGE_MAIL, "451 4.3.0 try again later");
    check_res(&s, 1, CLI_R_TEMP, "4.3.0", CLI_STAGE_MAIL, "451 4.3.0 try again later");
    assert_false(s.c.need_rset);
    sess_free(&s);
}

/* ---- end of data ---- */

static void test_data_end_452(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS3, .nrcpt = 3 };
    static const char *const rc2[] = { "z@d.example" };
    struct cli_msg m2 = { .sender = "", .rcpts = rc2, .nrcpt = 1 };
    struct sess s;

    open_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=0\r\n");
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<u1@d.example>\r\n");
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<u2@d.example>\r\n");
    srv(&s, "550 5.1.1 unknown\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<u3@d.example>\r\n");
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "DATA\r\n");
    srv(&s, "354 go\r\n", CLI_ACT_SEND_BODY);
    send_body(&s, "452 4.3.1 Insufficient system storage\r\n",
        CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_TEMP, "4.3.1", CLI_STAGE_DOT,
        "452 4.3.1 Insufficient system storage");
    check_res(&s, 1, CLI_R_PERM, "5.1.1", CLI_STAGE_RCPT, "550 5.1.1 unknown");
    check_res(&s, 2, CLI_R_TEMP, "4.3.1", CLI_STAGE_DOT, NULL);
    /* the end of data ends the transaction either way: no RSET */
    cli_next(&s.c, &m2, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<> SIZE=0\r\n");
    sess_free(&s);
}

static void test_data_refused(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    open_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=0\r\n");
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<x@d.example>\r\n");
    srv(&s, "450 4.2.1 later\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<y@d.example>\r\n");
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "DATA\r\n");
    srv(&s, "554 5.7.1 no thanks\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_TEMP, "4.2.1", CLI_STAGE_RCPT, "450 4.2.1 later");
    check_res(&s, 1, CLI_R_PERM, "5.7.1", CLI_STAGE_DATA, "554 5.7.1 no thanks");
    assert_true(s.c.need_rset);
    quit(&s);
    sess_free(&s);
}

/* ---- checks before MAIL ---- */

static void test_size_over_limit(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2, .size = 5000 };
    struct cli_msg ok = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2, .size = 1000 };
    struct sess s;

    open_session(&s, &m, "250-mx\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
        CLI_ACT_MSG_DONE | CLI_ACT_READY);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 0, CLI_R_PERM, "5.3.4", CLI_STAGE_LOCAL,
        "message size exceeds the server's limit (5000 > 1000)");
    check_res(&s, 1, CLI_R_PERM, "5.3.4", CLI_STAGE_LOCAL, NULL);
    /* exactly the limit is fine */
    cli_next(&s.c, &ok, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=1000\r\nRCPT TO:<x@d.example>\r\n"
        "RCPT TO:<y@d.example>\r\nDATA\r\n");
    sess_free(&s);
}

static void test_smtputf8(void **state)
{
    (void)state;
    static const char *const rc[] = { "j\xc3\xb6rg@d.example" };
    static const char *const orcpt[] = { "utf-8;j\xc3\xb6rg@d.example" };
    struct cli_msg m = { .sender = "\xc3\xa5@b.example", .rcpts = rc, .orcpt = orcpt,
        .nrcpt = 1, .size = 1, .eightbit = true, .smtputf8 = true };
    struct sess s;

    /* not offered: refused here, 5.6.7 (RFC 6531 3.2) */
    open_session(&s, &m, EHLO_PLAIN, CLI_ACT_MSG_DONE | CLI_ACT_READY);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 0, CLI_R_PERM, "5.6.7", CLI_STAGE_LOCAL, NULL);
    sess_free(&s);

    /* offered: SMTPUTF8 parameter, raw UTF-8 ORCPT of type utf-8 */
    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<\xc3\xa5@b.example> SIZE=1 BODY=8BITMIME SMTPUTF8\r\n"
        "RCPT TO:<j\xc3\xb6rg@d.example> ORCPT=utf-8;j\xc3\xb6rg@d.example\r\nDATA\r\n");
    sess_free(&s);
}

static void test_8bit_without_8bitmime(void **state)
{
    (void)state;
    static const char *const rc[] = { "x@d.example" };
    struct cli_msg m = { .sender = "a@b.example", .rcpts = rc, .nrcpt = 1, .size = 100,
        .size7bit = 140, .eightbit = true };
    struct cli_msg m7 = { .sender = "a@b.example", .rcpts = rc, .nrcpt = 1, .size = 100,
        .size7bit = 140 };
    struct cli_msg m8 = { .sender = "a@b.example", .rcpts = rc, .nrcpt = 1, .size = 100,
        .size7bit = 140, .eightbit = true };
    struct sess s;

    /* declared with the converted size */
    open_session(&s, &m, "250-mx\r\n250-PIPELINING\r\n250 SIZE 100000\r\n", CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=140\r\nRCPT TO:<x@d.example>\r\nDATA\r\n");
    assert_true(cli_needs_7bit(&s.c));
    srv(&s, "250 ok\r\n250 ok\r\n354 go\r\n", CLI_ACT_SEND_BODY);
    assert_true(cli_needs_7bit(&s.c));
    send_body(&s, "250 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    /* a 7-bit message needs nothing */
    cli_next(&s.c, &m7, &s.out);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=100\r\nRCPT TO:<x@d.example>\r\nDATA\r\n");
    assert_false(cli_needs_7bit(&s.c));
    sess_free(&s);

    /* with 8BITMIME: BODY=8BITMIME and the size as it is */
    open_session(&s, &m8, EHLO_FULL, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<x@d.example>\r\n"
        "DATA\r\n");
    assert_false(cli_needs_7bit(&s.c));
    sess_free(&s);
}

/* ---- greeting refused ---- */

static void test_greeting_421(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    sess_init(&s);
    cli_start(&s.c, &m, &s.out);
    srv(&s, "421 4.3.2 mx.example Service not available, closing channel\r\n",
        CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 0, CLI_R_TEMP, "4.3.2", CLI_STAGE_GREETING,
        "421 4.3.2 mx.example Service not available, closing channel");
    check_res(&s, 1, CLI_R_TEMP, "4.3.2", CLI_STAGE_GREETING, NULL);
    assert_int_equal(cli_timeout(&s.c), 0);
    sess_free(&s);
}

static void test_greeting_554(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    sess_init(&s);
    cli_start(&s.c, &m, &s.out);
    srv(&s, "554-mx.example no SMTP service here\r\n554 blocked\r\n",
        CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    /* RFC 5321 3.1: the server waits for QUIT */
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_PERM, "5.0.0", CLI_STAGE_GREETING,
        "554 mx.example no SMTP service here blocked");
    check_res(&s, 1, CLI_R_PERM, "5.0.0", CLI_STAGE_GREETING, NULL);
    srv(&s, "221 bye\r\n", CLI_ACT_CLOSE);
    sess_free(&s);
}

/* ---- driver-side failures ---- */

static void test_lost_mid_rcpt(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS3, .nrcpt = 3 };
    struct sess s;

    open_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=0\r\n");
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<u1@d.example>\r\n");
    srv(&s, "550 5.1.1 unknown\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<u2@d.example>\r\n");
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<u3@d.example>\r\n");
    cli_fail(&s.c, CLI_FAIL_CLOSED, "Connection reset by peer", &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 0, CLI_R_PERM, "5.1.1", CLI_STAGE_RCPT, "550 5.1.1 unknown");
    /* accepted but not delivered yet: TEMP too */
    check_res(&s, 1, CLI_R_TEMP, "4.4.2", CLI_STAGE_RCPT,
        "lost connection after RCPT TO: Connection reset by peer");
    check_res(&s, 2, CLI_R_TEMP, "4.4.2", CLI_STAGE_RCPT, NULL);
    assert_int_equal(s.c.state, CLI_S_CLOSED);
    sess_free(&s);
}

static void test_connect_failed(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    sess_init(&s);
    cli_start(&s.c, &m, &s.out);
    cli_fail(&s.c, CLI_FAIL_CONNECT, "Connection refused", &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.4.1", CLI_STAGE_CONNECT,
        "connect failed: Connection refused");
    check_res(&s, 1, CLI_R_TEMP, "4.4.1", CLI_STAGE_CONNECT, NULL);
    sess_free(&s);
}

static void test_timeouts_and_protocol(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    /* timed out in the greeting: when_connecting */
    sess_init(&s);
    cli_start(&s.c, &m, &s.out);
    cli_fail(&s.c, CLI_FAIL_TIMEOUT, NULL, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.4.2", CLI_STAGE_GREETING,
        "timed out while waiting for the greeting");
    sess_free(&s);

    /* a reply parse error after DATA */
    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    buf_reset(&s.send);
    srv(&s, "250 ok\r\n250 ok\r\n250 ok\r\n", CLI_ACT_NONE);
    cli_fail(&s.c, CLI_FAIL_PROTOCOL, "bare CR in reply", &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.5.0", CLI_STAGE_DATA,
        "protocol error after DATA: bare CR in reply");
    sess_free(&s);

    /* an unexpected reply: 354 to MAIL */
    open_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    buf_reset(&s.send);
    srv(&s, "354 what\x01\r\n", CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 1, CLI_R_TEMP, "4.5.0", CLI_STAGE_MAIL,
        "protocol error: unexpected reply after MAIL FROM: 354 what?");
    sess_free(&s);

    /* a reply while the content is being sent; then the timeout while writing */
    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    srv(&s, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", CLI_ACT_SEND_BODY);
    srv(&s, "550 5.0.0 stop\r\n", CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.5.0", CLI_STAGE_BODY, NULL);
    sess_free(&s);

    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    srv(&s, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", CLI_ACT_SEND_BODY);
    cli_fail(&s.c, CLI_FAIL_TIMEOUT, NULL, &s.out);
    check_res(&s, 1, CLI_R_TEMP, "4.4.2", CLI_STAGE_BODY,
        "timed out while sending the message content");
    sess_free(&s);

    /* lost after the end of data: TEMP (a duplicate is possible, RFC 5321 6.1) */
    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    srv(&s, "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n", CLI_ACT_SEND_BODY);
    cli_body_sent(&s.c, &s.out);
    cli_fail(&s.c, CLI_FAIL_CLOSED, NULL, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.4.2", CLI_STAGE_DOT, "lost connection after the end of data");
    sess_free(&s);
}

/* A 421 in the middle of a pipelined group: the replies stop there. */
static void test_421_mid_group(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS3, .nrcpt = 3 };
    struct sess s;

    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    buf_reset(&s.send);
    srv(&s, "250 ok\r\n550 5.1.1 unknown\r\n250 ok\r\n", CLI_ACT_NONE);
    srv(&s, "421 4.4.2 timeout, closing\r\n", CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 0, CLI_R_PERM, "5.1.1", CLI_STAGE_RCPT, "550 5.1.1 unknown");
    check_res(&s, 1, CLI_R_TEMP, "4.4.2", CLI_STAGE_RCPT, "421 4.4.2 timeout, closing");
    check_res(&s, 2, CLI_R_TEMP, "4.4.2", CLI_STAGE_RCPT, "421 4.4.2 timeout, closing");
    sess_free(&s);
}

/* ---- several messages over one connection ---- */

static void test_two_messages(void **state)
{
    (void)state;
    static const char *const rc1[] = { "x@d.example" };
    static const char *const rc2[] = { "y@d.example", "z@d.example" };
    struct cli_msg m1 = { .sender = "a@b.example", .rcpts = rc1, .nrcpt = 1, .size = 10 };
    struct cli_msg m2 = { .sender = "c@b.example", .rcpts = rc2, .nrcpt = 2, .size = 20 };
    struct sess s;

    open_session(&s, &m1, EHLO_FULL, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=10\r\nRCPT TO:<x@d.example>\r\nDATA\r\n");
    srv(&s, "250 ok\r\n250 ok\r\n354 go\r\n", CLI_ACT_SEND_BODY);
    send_body(&s, "250 2.0.0 queued as A\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 2.0.0 queued as A");

    cli_next(&s.c, &m2, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_SEND);
    /* no RSET after a completed transaction */
    sent(&s, "MAIL FROM:<c@b.example> SIZE=20\r\nRCPT TO:<y@d.example>\r\n"
        "RCPT TO:<z@d.example>\r\nDATA\r\n");
    size_t n;
    (void)cli_results(&s.c, &n);
    assert_int_equal(n, 2);
    srv(&s, "250 ok\r\n250 ok\r\n452 4.5.3 too many recipients\r\n354 go\r\n",
        CLI_ACT_SEND_BODY);
    send_body(&s, "250 2.0.0 queued as B\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 2.0.0 queued as B");
    check_res(&s, 1, CLI_R_TEMP, "4.5.3", CLI_STAGE_RCPT, "452 4.5.3 too many recipients");
    quit(&s);
    sess_free(&s);
}

/* ---- what reaches a command ---- */

static void test_command_injection(void **state)
{
    (void)state;
    static const char *const rc[] = { "x@d.example\r\nRSET", "y@d.example" };
    static const char *const orcpt[] = { NULL, "rfc822;evil\r\nQUIT" };
    struct cli_msg m = { .sender = "a@b.example", .rcpts = rc, .orcpt = orcpt, .nrcpt = 2,
        .envid = "e\r\nx" };
    struct cli_msg bad = { .sender = "a@b\nx", .rcpts = rc + 1, .nrcpt = 1 };
    struct sess s;

    sess_init(&s);
    cli_init(&s.c, "bad\r\nname here");
    assert_string_equal(s.c.helo, "badnamehere");
    cli_start(&s.c, &m, &s.out);
    srv(&s, "220 hi\r\n", CLI_ACT_SEND);
    sent(&s, "EHLO badnamehere\r\n");
    srv(&s, EHLO_FULL, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=0 ENVID=e+0D+0Ax\r\n"
        "RCPT TO:<y@d.example> ORCPT=rfc822;evil+0D+0AQUIT\r\nDATA\r\n");
    check_res(&s, 0, CLI_R_PERM, "5.1.3", CLI_STAGE_LOCAL,
        "invalid recipient address (control character)");
    srv(&s, "250 ok\r\n250 ok\r\n354 go\r\n", CLI_ACT_SEND_BODY);
    send_body(&s, "250 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_PERM, "5.1.3", CLI_STAGE_LOCAL, NULL);
    check_res(&s, 1, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 ok");

    cli_next(&s.c, &bad, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_MSG_DONE | CLI_ACT_READY);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 0, CLI_R_PERM, "5.1.7", CLI_STAGE_LOCAL, NULL);
    sess_free(&s);
}

static void test_orcpt_forms(void **state)
{
    (void)state;
    static const char *const rc[] = { "a@d", "b@d", "c@d", "d@d", "e@d" };
    static char longaddr[400];
    static const char *orcpt[] = { "utf-8;caf\\x{E9}@d", "x400;c=us;a= ;p=x", "bad type;a@d",
        "noaddr;", longaddr };
    static const unsigned notify[] = { SMTP_NOTIFY_DELAY, SMTP_NOTIFY_NEVER | SMTP_NOTIFY_DELAY,
        SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, 0, 0 };
    struct cli_msg m = { .sender = "s@d", .rcpts = rc, .orcpt = orcpt, .notify = notify,
        .nrcpt = 5, .ret = SMTP_RET_FULL };
    struct sess s;

    /* 300 '+' become 900 octets of xtext: over SMTP_ORCPT_MAX, so left out */
    memcpy(longaddr, "rfc822;", 7);
    memset(longaddr + 7, '+', 300);
    longaddr[307] = '\0';
    open_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<s@d> SIZE=0 RET=FULL\r\n"
        "RCPT TO:<a@d> NOTIFY=DELAY ORCPT=utf-8;caf\\x{E9}@d\r\n"
        "RCPT TO:<b@d> NOTIFY=NEVER ORCPT=x400;c+3Dus;a+3D+20;p+3Dx\r\n"
        "RCPT TO:<c@d> NOTIFY=FAILURE,DELAY\r\n"
        "RCPT TO:<d@d>\r\n"
        "RCPT TO:<e@d>\r\n"
        "DATA\r\n");
    sess_free(&s);
}

static void test_idle_and_misc(void **state)
{
    (void)state;
    static const char *const rc[] = { "x@d.example" };
    struct cli_msg m = { .sender = "a@b.example", .rcpts = rc, .nrcpt = 1 };
    struct cli_msg none = { .sender = "a@b.example", .rcpts = rc, .nrcpt = 0 };
    struct sess s;

    open_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    srv(&s, "354 go\r\n", CLI_ACT_SEND_BODY);
    send_body(&s, "250 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    buf_reset(&s.send);
    /* no recipients: done at once */
    cli_next(&s.c, &none, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_MSG_DONE | CLI_ACT_READY);
    assert_int_equal(s.send.len, 0);
    /* the server times out an idle connection: no message is affected */
    srv(&s, "421 4.4.2 idle timeout\r\n", CLI_ACT_CLOSE);
    assert_int_equal(s.c.state, CLI_S_CLOSED);
    cli_quit(&s.c, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_CLOSE);
    sess_free(&s);

    /* an unsolicited reply while idle closes the session */
    open_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    srv(&s, "250 ok\r\n250 ok\r\n354 go\r\n", CLI_ACT_SEND | CLI_ACT_SEND_BODY);
    send_body(&s, "250 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    srv(&s, "250 surprise\r\n", CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 ok");
    sess_free(&s);

    /* a refused RSET ends the session; the new message is TEMP */
    open_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    srv(&s, "250 ok\r\n550 no\r\n", CLI_ACT_SEND | CLI_ACT_MSG_DONE | CLI_ACT_READY);
    buf_reset(&s.send);
    cli_next(&s.c, &m, &s.out);
    sent(&s, "RSET\r\n");
    srv(&s, "500 what\r\n", CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.5.0", CLI_STAGE_RSET,
        "protocol error: unexpected reply after RSET: 500 what");
    sess_free(&s);
}

/* The output buffer is the driver's and capped: a group that does not fit fails cleanly. */
static void test_output_cap(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS3, .nrcpt = 3 };
    struct sess s;

    sess_init(&s);
    s.send.max = 40;
    cli_start(&s.c, &m, &s.out);
    srv(&s, "220 hi\r\n", CLI_ACT_SEND);
    sent(&s, "EHLO client.example\r\n");
    srv(&s, EHLO_FULL, CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 2, CLI_R_TEMP, "4.3.0", CLI_STAGE_LOCAL,
        "local error: commands do not fit the output buffer");
    sess_free(&s);
}

/* ---- STARTTLS (RFC 3207) ---- */

static const char EHLO_TLS1[] =         /* before TLS: no SIZE, no AUTH */
    "250-mx.example\r\n"
    "250-PIPELINING\r\n"
    "250-STARTTLS\r\n"
    "250 8BITMIME\r\n";

static const char EHLO_TLS2[] =         /* in TLS: SIZE (and STARTTLS again, wrongly) */
    "250-mx.example\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 1000\r\n"
    "250 STARTTLS\r\n";

static const char *const RC1[] = { "x@d.example" };

/* On a session from sess_init() (maybe with cli_set_auth()): policy, greeting, the first
 * EHLO offering STARTTLS; only STARTTLS goes out. */
static void to_starttls(struct sess *s, const struct cli_msg *m, enum cli_tls policy,
    const char *ehlo)
{
    cli_set_tls(&s->c, policy, true);
    start_session(s, m, ehlo, CLI_ACT_SEND);
    /* RFC 2920 3.1 / RFC 3207: nothing is pipelined after STARTTLS */
    sent(s, "STARTTLS\r\n");
    assert_int_equal(s->c.state, CLI_S_STARTTLS);
    assert_int_equal(cli_timeout(&s->c), CLI_TIMEOUT_OTHER);
}

/* ... then 220: the handshake is the driver's. */
static void to_handshake(struct sess *s, const struct cli_msg *m, enum cli_tls policy,
    const char *ehlo)
{
    to_starttls(s, m, policy, ehlo);
    srv(s, "220 2.0.0 Ready to start TLS\r\n", CLI_ACT_STARTTLS);
    assert_int_equal(s->send.len, 0);
    assert_int_equal(s->c.state, CLI_S_TLS);
    assert_int_equal(cli_timeout(&s->c), CLI_TIMEOUT_TLS);
    assert_false(cli_in_tls(&s->c));
}

/* ... then the handshake succeeds: EHLO again. */
static void to_tls_ehlo(struct sess *s, const struct cli_msg *m, enum cli_tls policy)
{
    to_handshake(s, m, policy, EHLO_TLS1);
    s->out.acts = 0xdead;
    cli_tls_done(&s->c, true, NULL, &s->out);
    assert_int_equal(s->out.acts, CLI_ACT_SEND);
    sent(s, "EHLO client.example\r\n");
    assert_true(cli_in_tls(&s->c));
    assert_true(s->c.tls);
    /* RFC 3207 4.2: the first EHLO's extensions are forgotten */
    assert_false(s->c.ext.esmtp || s->c.ext.pipelining || s->c.ext.starttls);
    assert_false(s->c.ext.eightbitmime);
    assert_int_equal(cli_timeout(&s->c), CLI_TIMEOUT_HELO);
}

static void test_starttls_may(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RC1, .nrcpt = 1, .size = 10,
        .eightbit = true };
    struct sess s;

    sess_init(&s);
    to_tls_ehlo(&s, &m, CLI_TLS_MAY);
    /* the second EHLO's extensions count: SIZE= now, no BODY=8BITMIME any more; and no
     * second STARTTLS although it is offered again */
    srv(&s, EHLO_TLS2, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=10\r\nRCPT TO:<x@d.example>\r\nDATA\r\n");
    assert_true(cli_needs_7bit(&s.c));
    srv(&s, "250 ok\r\n250 ok\r\n354 go\r\n", CLI_ACT_SEND_BODY);
    send_body(&s, "250 2.0.0 queued\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 2.0.0 queued");
    assert_true(cli_in_tls(&s.c));
    quit(&s);
    sess_free(&s);
}

static void test_starttls_may_not_offered(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RC1, .nrcpt = 1, .size = 10 };
    struct sess s;

    sess_init(&s);
    cli_set_tls(&s.c, CLI_TLS_MAY, true);
    start_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=10\r\n");
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "RCPT TO:<x@d.example>\r\n");
    srv(&s, "250 ok\r\n", CLI_ACT_SEND);
    sent(&s, "DATA\r\n");
    srv(&s, "354 go\r\n", CLI_ACT_SEND_BODY);
    send_body(&s, "250 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 ok");
    assert_false(cli_in_tls(&s.c));
    sess_free(&s);

    /* offered, but we have no TLS here: MAY is NONE */
    sess_init(&s);
    cli_set_tls(&s.c, CLI_TLS_MAY, false);
    start_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=10\r\nRCPT TO:<x@d.example>\r\nDATA\r\n");
    sess_free(&s);
}

static void test_starttls_may_refused(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RC1, .nrcpt = 1, .size = 10,
        .eightbit = true };
    struct sess s;

    sess_init(&s);
    to_starttls(&s, &m, CLI_TLS_MAY, EHLO_TLS1);
    /* plaintext goes on with the first EHLO's extensions; no second EHLO */
    srv(&s, "454 4.7.0 TLS not available due to temporary reason\r\n", CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> BODY=8BITMIME\r\nRCPT TO:<x@d.example>\r\nDATA\r\n");
    assert_false(cli_in_tls(&s.c));
    srv(&s, "250 ok\r\n250 ok\r\n354 go\r\n", CLI_ACT_SEND_BODY);
    send_body(&s, "250 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(&s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 ok");
    quit(&s);
    sess_free(&s);

    /* a 5xx the same */
    sess_init(&s);
    to_starttls(&s, &m, CLI_TLS_MAY, EHLO_TLS1);
    srv(&s, "502 5.5.1 not implemented\r\n", CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> BODY=8BITMIME\r\nRCPT TO:<x@d.example>\r\nDATA\r\n");
    sess_free(&s);
}

static void test_starttls_none(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RC1, .nrcpt = 1, .size = 10 };
    struct sess s;

    sess_init(&s);
    cli_set_tls(&s.c, CLI_TLS_NONE, true);
    start_session(&s, &m, EHLO_FULL, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=10\r\nRCPT TO:<x@d.example>\r\nDATA\r\n");
    assert_true(s.c.ext.starttls);
    assert_false(cli_in_tls(&s.c));
    sess_free(&s);
}

static void test_starttls_required(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    /* ENCRYPT, not offered: deferred for this host, QUIT */
    sess_init(&s);
    cli_set_tls(&s.c, CLI_TLS_ENCRYPT, true);
    start_session(&s, &m, EHLO_PLAIN, CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_TEMP, "4.7.4", CLI_STAGE_STARTTLS,
        "TLS required but not offered by the server");
    check_res(&s, 1, CLI_R_TEMP, "4.7.4", CLI_STAGE_STARTTLS, NULL);
    assert_true(cli_results(&s.c, &(size_t){ 0 })[0].when_connecting);
    srv(&s, "221 bye\r\n", CLI_ACT_CLOSE);
    sess_free(&s);

    /* VERIFY, EHLO refused and HELO: no STARTTLS without EHLO */
    sess_init(&s);
    cli_set_tls(&s.c, CLI_TLS_VERIFY, true);
    start_session(&s, &m, "500 what\r\n", CLI_ACT_SEND);
    sent(&s, "HELO client.example\r\n");
    srv(&s, "250 hi\r\n", CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_TEMP, "4.7.4", CLI_STAGE_STARTTLS,
        "TLS required but not offered by the server");
    sess_free(&s);

    /* ENCRYPT, refused */
    sess_init(&s);
    to_starttls(&s, &m, CLI_TLS_ENCRYPT, EHLO_TLS1);
    srv(&s, "454 4.7.0 TLS not available\r\n", CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_TEMP, "4.7.4", CLI_STAGE_STARTTLS,
        "TLS required but STARTTLS was refused: 454 4.7.0 TLS not available");
    check_res(&s, 1, CLI_R_TEMP, "4.7.4", CLI_STAGE_STARTTLS, NULL);
    sess_free(&s);

    /* ENCRYPT, but no TLS on our side: our fault, stage LOCAL (no other MX) */
    sess_init(&s);
    cli_set_tls(&s.c, CLI_TLS_ENCRYPT, false);
    start_session(&s, &m, EHLO_FULL, CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_TEMP, "4.7.4", CLI_STAGE_LOCAL,
        "TLS required but not available on this side");
    sess_free(&s);

    /* ENCRYPT and offered: a normal session in TLS */
    sess_init(&s);
    to_tls_ehlo(&s, &m, CLI_TLS_ENCRYPT);
    srv(&s, EHLO_TLS2, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=0\r\nRCPT TO:<x@d.example>\r\n"
        "RCPT TO:<y@d.example>\r\nDATA\r\n");
    sess_free(&s);
}

static void test_starttls_handshake_failed(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2 };
    struct sess s;

    /* VERIFY: the driver reports a certificate that does not verify */
    sess_init(&s);
    to_handshake(&s, &m, CLI_TLS_VERIFY, EHLO_TLS1);
    s.out.acts = 0xdead;
    cli_tls_done(&s.c, false, "certificate verification failed: name mismatch", &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    assert_int_equal(s.send.len, 0);       /* no QUIT: the connection is unusable */
    check_res(&s, 0, CLI_R_TEMP, "4.7.5", CLI_STAGE_STARTTLS,
        "TLS handshake failed: certificate verification failed: name mismatch");
    check_res(&s, 1, CLI_R_TEMP, "4.7.5", CLI_STAGE_STARTTLS, NULL);
    assert_int_equal(s.c.state, CLI_S_CLOSED);
    assert_false(cli_in_tls(&s.c));
    sess_free(&s);

    /* MAY: the same, the next MX is tried (no plaintext retry on this host) */
    sess_init(&s);
    to_handshake(&s, &m, CLI_TLS_MAY, EHLO_TLS1);
    cli_tls_done(&s.c, false, NULL, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.7.5", CLI_STAGE_STARTTLS, "TLS handshake failed");
    sess_free(&s);

    /* the driver's timeout during the handshake */
    sess_init(&s);
    to_handshake(&s, &m, CLI_TLS_MAY, EHLO_TLS1);
    cli_fail(&s.c, CLI_FAIL_TIMEOUT, NULL, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.4.2", CLI_STAGE_STARTTLS,
        "timed out during the TLS handshake");
    sess_free(&s);
}

/* Replies after 220 are injected plaintext: the driver drops them; if one gets here, the
 * session ends (it is never taken as the answer to the EHLO in TLS). */
static void test_starttls_injection(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RC1, .nrcpt = 1 };
    struct sess s;

    sess_init(&s);
    to_starttls(&s, &m, CLI_TLS_MAY, EHLO_TLS1);
    srv(&s, "220 go ahead\r\n250-evil\r\n250 AUTH PLAIN\r\n",
        CLI_ACT_STARTTLS | CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    assert_int_equal(s.send.len, 0);
    check_res(&s, 0, CLI_R_TEMP, "4.5.0", CLI_STAGE_STARTTLS,
        "protocol error: unexpected reply during the TLS handshake: 250 evil AUTH PLAIN");
    sess_free(&s);

    /* not even a 421 counts */
    sess_init(&s);
    to_handshake(&s, &m, CLI_TLS_MAY, EHLO_TLS1);
    srv(&s, "421 4.3.0 bye\r\n", CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.5.0", CLI_STAGE_STARTTLS, NULL);
    sess_free(&s);

    /* any reply to STARTTLS but 220, 4xx, 5xx */
    sess_init(&s);
    to_starttls(&s, &m, CLI_TLS_MAY, EHLO_TLS1);
    srv(&s, "250 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.5.0", CLI_STAGE_STARTTLS,
        "protocol error: unexpected reply after STARTTLS: 250 ok");
    sess_free(&s);
}

/* ---- AUTH (RFC 4954) ---- */

static const char EHLO_AUTH[] =         /* in TLS */
    "250-mx.example\r\n"
    "250-PIPELINING\r\n"
    "250-SIZE 1000\r\n"
    "250 AUTH PLAIN LOGIN CRAM-MD5\r\n";

/* A session with credentials in TLS; the second EHLO is ehlo2, its actions acts. */
static void to_auth(struct sess *s, const struct cli_msg *m, const char *user,
    const char *pass, const char *ehlo2, unsigned acts)
{
    sess_init(s);
    assert_int_equal(cli_set_auth(&s->c, user, pass, false), 0);
    to_tls_ehlo(s, m, CLI_TLS_MAY);
    srv(s, ehlo2, acts);
}

/* The whole transaction after AUTH, as one pipelined group. */
static void auth_then_mail(struct sess *s)
{
    sent(s, "MAIL FROM:<a@b.example> SIZE=10\r\nRCPT TO:<x@d.example>\r\nDATA\r\n");
    srv(s, "250 ok\r\n250 ok\r\n354 go\r\n", CLI_ACT_SEND_BODY);
    send_body(s, "250 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_READY);
    check_res(s, 0, CLI_R_OK, "2.0.0", CLI_STAGE_DOT, "250 ok");
}

static void test_auth_plain(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RC1, .nrcpt = 1, .size = 10 };
    struct sess s;

    /* PLAIN preferred, with the initial response; alone, though PIPELINING is offered */
    to_auth(&s, &m, "user", "pass", EHLO_AUTH, CLI_ACT_SEND | CLI_ACT_SECRET);
    assert_true(s.c.ext.auth && s.c.ext.auth_plain && s.c.ext.auth_login);
    sent(&s, "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
    assert_int_equal(s.c.state, CLI_S_AUTH);
    assert_int_equal(cli_timeout(&s.c), CLI_TIMEOUT_OTHER);
    assert_false(s.c.authed);
    srv(&s, "235 2.7.0 Authentication successful\r\n", CLI_ACT_SEND);
    assert_true(s.c.authed);
    auth_then_mail(&s);

    /* the next message on this connection: no second AUTH */
    cli_next(&s.c, &m, &s.out);
    assert_int_equal(s.out.acts, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=10\r\nRCPT TO:<x@d.example>\r\nDATA\r\n");
    sess_free(&s);
    /* cli_free() wiped the credentials */
    assert_int_equal(s.c.auth_user[0], 0);
    assert_int_equal(s.c.auth_pass[0], 0);
    assert_int_equal(s.c.auth_pass[3], 0);

    /* 8-bit octets in the password are sent as they are */
    to_auth(&s, &m, "a@b.example", "s3cr\xc3\xa9t", EHLO_AUTH, CLI_ACT_SEND | CLI_ACT_SECRET);
    sent(&s, "AUTH PLAIN AGFAYi5leGFtcGxlAHMzY3LDqXQ=\r\n");
    sess_free(&s);
}

static void test_auth_login(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RC1, .nrcpt = 1, .size = 10 };
    struct sess s;

    /* RFC 4648 10's vectors: "foob" -> "Zm9vYg==", "fooba" -> "Zm9vYmE=" */
    to_auth(&s, &m, "foob", "fooba",
        "250-mx.example\r\n250-PIPELINING\r\n250-SIZE\r\n250 AUTH LOGIN CRAM-MD5\r\n",
        CLI_ACT_SEND | CLI_ACT_SECRET);
    assert_false(s.c.ext.auth_plain);
    sent(&s, "AUTH LOGIN\r\n");
    srv(&s, "334 VXNlcm5hbWU6\r\n", CLI_ACT_SEND | CLI_ACT_SECRET);
    sent(&s, "Zm9vYg==\r\n");
    srv(&s, "334 UGFzc3dvcmQ6\r\n", CLI_ACT_SEND | CLI_ACT_SECRET);
    sent(&s, "Zm9vYmE=\r\n");
    srv(&s, "235 2.7.0 ok\r\n", CLI_ACT_SEND);
    auth_then_mail(&s);
    sess_free(&s);

    /* the old "AUTH=" form; "foobar" -> "Zm9vYmFy", "fo" -> "Zm8=" */
    to_auth(&s, &m, "foobar", "fo", "250-mx.example\r\n250-AUTH=LOGIN\r\n250 SIZE\r\n",
        CLI_ACT_SEND | CLI_ACT_SECRET);
    assert_true(s.c.ext.auth && s.c.ext.auth_login);
    sent(&s, "AUTH LOGIN\r\n");
    srv(&s, "334 VXNlcm5hbWU6\r\n", CLI_ACT_SEND | CLI_ACT_SECRET);
    sent(&s, "Zm9vYmFy\r\n");
    srv(&s, "334 UGFzc3dvcmQ6\r\n", CLI_ACT_SEND | CLI_ACT_SECRET);
    sent(&s, "Zm8=\r\n");
    /* one challenge too many */
    srv(&s, "334 what\r\n", CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.5.0", CLI_STAGE_AUTH,
        "protocol error: unexpected reply after AUTH: 334 what");
    assert_int_equal(s.send.len, 0);
    sess_free(&s);

    /* both forms: "AUTH=PLAIN LOGIN" next to "AUTH CRAM-MD5": PLAIN */
    to_auth(&s, &m, "f", "foo",
        "250-mx.example\r\n250-AUTH CRAM-MD5\r\n250 auth=plain LOGIN\r\n",
        CLI_ACT_SEND | CLI_ACT_SECRET);
    assert_true(s.c.ext.auth_plain && s.c.ext.auth_login);
    sent(&s, "AUTH PLAIN AGYAZm9v\r\n");
    sess_free(&s);
}

/* Base64 decoder for checking the long PLAIN response (independent of the client's
 * encoder). Returns the decoded length, or -1. */
static long b64_decode(const char *s, size_t n, unsigned char *out, size_t osz)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    unsigned long acc = 0;
    int bits = 0;

    if (n % 4 != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '=')
            break;
        const char *p = strchr(tab, s[i]);
        if (p == NULL || s[i] == '\0')
            return -1;
        acc = (acc << 6) | (unsigned long)(p - tab);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= osz)
                return -1;
            out[o++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
    return (long)o;
}

static void check_plain(const char *line, size_t len, const char *user, const char *pass)
{
    unsigned char raw[600];
    size_t un = strlen(user), pn = strlen(pass);
    long n = b64_decode(line, len, raw, sizeof raw);

    assert_int_equal(n, (long)(un + pn + 2));
    assert_int_equal(raw[0], 0);
    assert_memory_equal(raw + 1, user, un);
    assert_int_equal(raw[1 + un], 0);
    assert_memory_equal(raw + 2 + un, pass, pn);
}

/* The initial response only while "AUTH PLAIN <b64>\r\n" fits 512 octets. */
static void test_auth_plain_long(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RC1, .nrcpt = 1, .size = 10 };
    char user[CLI_AUTH_MAX + 1], pass[CLI_AUTH_MAX + 1];
    struct sess s;

    /* 372 octets of PLAIN message: 496 of base64, a line of 509 */
    memset(user, 'u', 185);
    user[185] = '\0';
    memset(pass, 'p', 185);
    pass[185] = '\0';
    to_auth(&s, &m, user, pass, EHLO_AUTH, CLI_ACT_SEND | CLI_ACT_SECRET);
    assert_int_equal(s.send.len, 509);
    assert_memory_equal(s.send.p, "AUTH PLAIN ", 11);
    assert_memory_equal(s.send.p + 507, "\r\n", 2);
    check_plain(s.send.p + 11, 496, user, pass);
    sess_free(&s);

    /* one more: 500 of base64 would make 513; the response follows an empty 334 */
    pass[185] = 'p';
    pass[186] = '\0';
    to_auth(&s, &m, user, pass, EHLO_AUTH, CLI_ACT_SEND | CLI_ACT_SECRET);
    sent(&s, "AUTH PLAIN\r\n");
    srv(&s, "334 \r\n", CLI_ACT_SEND | CLI_ACT_SECRET);
    assert_int_equal(s.send.len, 502);
    assert_memory_equal(s.send.p + 500, "\r\n", 2);
    check_plain(s.send.p, 500, user, pass);
    buf_reset(&s.send);
    srv(&s, "235 2.7.0 ok\r\n", CLI_ACT_SEND);
    auth_then_mail(&s);
    sess_free(&s);

    /* the longest credentials */
    memset(user, 'U', CLI_AUTH_MAX);
    user[CLI_AUTH_MAX] = '\0';
    memset(pass, 'P', CLI_AUTH_MAX);
    pass[CLI_AUTH_MAX] = '\0';
    to_auth(&s, &m, user, pass, EHLO_AUTH, CLI_ACT_SEND | CLI_ACT_SECRET);
    sent(&s, "AUTH PLAIN\r\n");
    srv(&s, "334\r\n", CLI_ACT_SEND | CLI_ACT_SECRET);
    assert_int_equal(s.send.len, 686);
    check_plain(s.send.p, 684, user, pass);
    sess_free(&s);
}

static void test_auth_refused(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2, .size = 10 };
    struct sess s;

    /* 535: TEMP 4.7.8 with the server's words (the admin may fix the credentials) */
    to_auth(&s, &m, "user", "wrong", EHLO_AUTH, CLI_ACT_SEND | CLI_ACT_SECRET);
    buf_reset(&s.send);
    srv(&s, "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6\r\n",
        CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_TEMP, "4.7.8", CLI_STAGE_AUTH,
        "535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6");
    check_res(&s, 1, CLI_R_TEMP, "4.7.8", CLI_STAGE_AUTH, NULL);
    srv(&s, "221 bye\r\n", CLI_ACT_CLOSE);
    sess_free(&s);

    /* 535 without an enhanced code: 4.7.8 too */
    to_auth(&s, &m, "user", "wrong", EHLO_AUTH, CLI_ACT_SEND | CLI_ACT_SECRET);
    buf_reset(&s.send);
    srv(&s, "535 no\r\n", CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    check_res(&s, 0, CLI_R_TEMP, "4.7.8", CLI_STAGE_AUTH, "535 no");
    sess_free(&s);

    /* another 5xx keeps its detail, as class 4 */
    to_auth(&s, &m, "user", "pass", EHLO_AUTH, CLI_ACT_SEND | CLI_ACT_SECRET);
    buf_reset(&s.send);
    srv(&s, "534 5.7.9 Authentication mechanism is too weak\r\n",
        CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_TEMP, "4.7.9", CLI_STAGE_AUTH,
        "534 5.7.9 Authentication mechanism is too weak");
    sess_free(&s);

    /* 4xx in the middle of LOGIN */
    to_auth(&s, &m, "user", "pass", "250-mx\r\n250 AUTH LOGIN\r\n",
        CLI_ACT_SEND | CLI_ACT_SECRET);
    sent(&s, "AUTH LOGIN\r\n");
    srv(&s, "334 VXNlcm5hbWU6\r\n", CLI_ACT_SEND | CLI_ACT_SECRET);
    sent(&s, "dXNlcg==\r\n");
    srv(&s, "454 4.7.0 Temporary authentication failure\r\n",
        CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 1, CLI_R_TEMP, "4.7.0", CLI_STAGE_AUTH,
        "454 4.7.0 Temporary authentication failure");
    sess_free(&s);

    /* 2xx before all responses are sent is not success */
    to_auth(&s, &m, "user", "pass", "250-mx\r\n250 AUTH LOGIN\r\n",
        CLI_ACT_SEND | CLI_ACT_SECRET);
    buf_reset(&s.send);
    srv(&s, "235 ok\r\n", CLI_ACT_MSG_DONE | CLI_ACT_CLOSE);
    check_res(&s, 0, CLI_R_TEMP, "4.5.0", CLI_STAGE_AUTH, NULL);
    assert_false(s.c.authed);
    sess_free(&s);
}

static void test_auth_without_tls(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RCPTS2, .nrcpt = 2, .size = 10 };
    struct sess s;

    /* no TLS (policy NONE): the credentials stay here */
    sess_init(&s);
    assert_int_equal(cli_set_auth(&s.c, "user", "pass", false), 0);
    start_session(&s, &m, "250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n",
        CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_TEMP, "4.7.0", CLI_STAGE_AUTH, "not sending credentials without TLS");
    check_res(&s, 1, CLI_R_TEMP, "4.7.0", CLI_STAGE_AUTH, NULL);
    sess_free(&s);

    /* MAY and STARTTLS refused: the same */
    sess_init(&s);
    assert_int_equal(cli_set_auth(&s.c, "user", "pass", false), 0);
    to_starttls(&s, &m, CLI_TLS_MAY, "250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n");
    srv(&s, "454 4.7.0 no TLS today\r\n", CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_TEMP, "4.7.0", CLI_STAGE_AUTH, "not sending credentials without TLS");
    sess_free(&s);

    /* allowed in plaintext (loopback, tests) */
    sess_init(&s);
    assert_int_equal(cli_set_auth(&s.c, "user", "pass", true), 0);
    start_session(&s, &m, "250-mx\r\n250 AUTH PLAIN LOGIN\r\n", CLI_ACT_SEND | CLI_ACT_SECRET);
    sent(&s, "AUTH PLAIN AHVzZXIAcGFzcw==\r\n");
    srv(&s, "235 2.7.0 ok\r\n", CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example>\r\n");
    assert_true(s.c.authed);
    assert_false(cli_in_tls(&s.c));
    sess_free(&s);
}

static void test_auth_not_offered(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RC1, .nrcpt = 1, .size = 10 };
    struct sess s;

    /* no AUTH at all: unauthenticated (the smarthost may relay for our address) */
    to_auth(&s, &m, "user", "pass", EHLO_TLS2, CLI_ACT_SEND);
    assert_false(s.c.ext.auth);
    auth_then_mail(&s);
    assert_false(s.c.authed);
    sess_free(&s);

    /* the same in plaintext: nothing would be sent */
    sess_init(&s);
    assert_int_equal(cli_set_auth(&s.c, "user", "pass", false), 0);
    start_session(&s, &m, EHLO_PLAIN, CLI_ACT_SEND);
    sent(&s, "MAIL FROM:<a@b.example> SIZE=10\r\n");
    sess_free(&s);

    /* AUTH, but no mechanism we have: it expects AUTH, so defer */
    to_auth(&s, &m, "user", "pass", "250-mx\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n",
        CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    assert_true(s.c.ext.auth);
    assert_false(s.c.ext.auth_plain || s.c.ext.auth_login);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_TEMP, "4.7.0", CLI_STAGE_AUTH,
        "the server offers no AUTH mechanism we support (PLAIN, LOGIN)");
    sess_free(&s);

    /* no credentials: AUTH offered but not used */
    sess_init(&s);
    to_tls_ehlo(&s, &m, CLI_TLS_MAY);
    srv(&s, EHLO_AUTH, CLI_ACT_SEND);
    auth_then_mail(&s);
    sess_free(&s);
}

static void test_auth_bad_credentials(void **state)
{
    (void)state;
    struct cli_msg m = { .sender = "a@b.example", .rcpts = RC1, .nrcpt = 1 };
    char longer[CLI_AUTH_MAX + 2];
    struct sess s;

    memset(longer, 'x', CLI_AUTH_MAX + 1);
    longer[CLI_AUTH_MAX + 1] = '\0';
    sess_init(&s);
    errno = 0;
    assert_int_equal(cli_set_auth(&s.c, "user\r\nRSET", "pass", false), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(cli_set_auth(&s.c, "user", "pa\nss", false), -1);
    assert_int_equal(cli_set_auth(&s.c, "", "pass", false), -1);
    assert_int_equal(cli_set_auth(&s.c, "user", "", false), -1);
    assert_int_equal(cli_set_auth(&s.c, NULL, "pass", false), -1);
    assert_int_equal(cli_set_auth(&s.c, "user", longer, false), -1);
    assert_int_equal(cli_set_auth(&s.c, longer + 1, "pass", false), 0);
    assert_int_equal(cli_set_auth(&s.c, longer, "pass", false), -1);
    /* refused credentials defer the mail instead of sending it unauthenticated; our own
     * fault: stage LOCAL, no other MX */
    to_tls_ehlo(&s, &m, CLI_TLS_MAY);
    srv(&s, EHLO_AUTH, CLI_ACT_MSG_DONE | CLI_ACT_SEND);
    sent(&s, "QUIT\r\n");
    check_res(&s, 0, CLI_R_TEMP, "4.3.5", CLI_STAGE_LOCAL,
        "invalid SMTP AUTH credentials configured");
    sess_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_esmtp_pipelining),
        cmocka_unit_test(test_pipelining_one_read),
        cmocka_unit_test(test_one_by_one),
        cmocka_unit_test(test_helo_fallback),
        cmocka_unit_test(test_helo_refused),
        cmocka_unit_test(test_ehlo_temp),
        cmocka_unit_test(test_some_refused),
        cmocka_unit_test(test_all_refused_pipelined),
        cmocka_unit_test(test_all_refused_one_by_one),
        cmocka_unit_test(test_all_refused_but_354),
        cmocka_unit_test(test_mail_refused),
        cmocka_unit_test(test_mail_refused_pipelined),
        cmocka_unit_test(test_data_end_452),
        cmocka_unit_test(test_data_refused),
        cmocka_unit_test(test_size_over_limit),
        cmocka_unit_test(test_smtputf8),
        cmocka_unit_test(test_8bit_without_8bitmime),
        cmocka_unit_test(test_greeting_421),
        cmocka_unit_test(test_greeting_554),
        cmocka_unit_test(test_lost_mid_rcpt),
        cmocka_unit_test(test_connect_failed),
        cmocka_unit_test(test_timeouts_and_protocol),
        cmocka_unit_test(test_421_mid_group),
        cmocka_unit_test(test_two_messages),
        cmocka_unit_test(test_command_injection),
        cmocka_unit_test(test_orcpt_forms),
        cmocka_unit_test(test_idle_and_misc),
        cmocka_unit_test(test_output_cap),
        cmocka_unit_test(test_starttls_may),
        cmocka_unit_test(test_starttls_may_not_offered),
        cmocka_unit_test(test_starttls_may_refused),
        cmocka_unit_test(test_starttls_none),
        cmocka_unit_test(test_starttls_required),
        cmocka_unit_test(test_starttls_handshake_failed),
        cmocka_unit_test(test_starttls_injection),
        cmocka_unit_test(test_auth_plain),
        cmocka_unit_test(test_auth_login),
        cmocka_unit_test(test_auth_plain_long),
        cmocka_unit_test(test_auth_refused),
        cmocka_unit_test(test_auth_without_tls),
        cmocka_unit_test(test_auth_not_offered),
        cmocka_unit_test(test_auth_bad_credentials),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
