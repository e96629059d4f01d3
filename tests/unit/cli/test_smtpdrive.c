/*
 * tests/unit/cli/test_smtpdrive.c - the blocking driver of the SMTP client machine, against
 * a scripted server in a thread on the other end of a socketpair: pipelining, the DATA form
 * and SIZE value, the machine's SIZE check, abandoning before the content, and every kind
 * of driver-side failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/smtpdrive.h"

/* One step of the server: wait until `after` has arrived (NULL: at once), then send `send`
 * (NULL: nothing). The script ends with a step whose after and send are both NULL. */
struct step {
    const char *after;
    const char *send;
};

struct server {
    int fd;
    const struct step *script;
    bool close_at_end;          /* close right after the script, without reading to EOF */
    char got[8192];             /* everything the client sent */
    size_t len;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read what is there within the deadline. Returns 1 (data), 0 (EOF) or -1 (time is up). */
static int server_read(struct server *s, long long until)
{
    long long left = until - now_ms();
    struct pollfd p = { .fd = s->fd, .events = POLLIN };
    if (left <= 0 || poll(&p, 1, (int)left) <= 0)
        return -1;
    ssize_t k = read(s->fd, s->got + s->len, sizeof s->got - 1 - s->len);
    if (k <= 0)
        return 0;
    s->len += (size_t)k;
    s->got[s->len] = '\0';
    return 1;
}

static void *server_main(void *arg)
{
    struct server *s = arg;
    long long until = now_ms() + 5000;          /* the whole script, bounded */
    size_t seen = 0;                            /* matched up to here */
    for (const struct step *st = s->script; st->after || st->send; st++) {
        if (st->after) {
            char *at;
            while ((at = strstr(s->got + seen, st->after)) == NULL) {
                if (server_read(s, until) != 1)
                    goto out;
            }
            seen = (size_t)(at - s->got) + strlen(st->after);
        }
        if (st->send && write(s->fd, st->send, strlen(st->send)) == -1)
            goto out;
    }
    if (!s->close_at_end) {
        while (server_read(s, until) == 1)
            ;
    }
out:
    close(s->fd);
    return NULL;
}

struct session {
    struct server srv;
    pthread_t th;
    int fd;
    struct smtp_client cli;
    struct smtpdrive d;
};

static void start(struct session *x, const struct step *script, bool close_at_end)
{
    int sv[2];
    memset(x, 0, sizeof *x);
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    x->fd = sv[0];
    x->srv.fd = sv[1];
    x->srv.script = script;
    x->srv.close_at_end = close_at_end;
    assert_int_equal(pthread_create(&x->th, NULL, server_main, &x->srv), 0);
    cli_init(&x->cli, "client.test");
    smtpdrive_init(&x->d, x->fd);
}

/* Run the session for m/text; close our end; wait for the server. Returns the run's. */
static int run(struct session *x, const struct cli_msg *m, const char *text)
{
    int r = smtpdrive_run(&x->d, &x->cli, m, text, strlen(text));
    close(x->fd);
    assert_int_equal(pthread_join(x->th, NULL), 0);
    return r;
}

static const char *const RCPTS[] = { "x@y.test", "z@y.test" };

static const char EHLO_PIPE[] =
    "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250 DSN\r\n";

/* The text as the machine sends it: LF -> CRLF, the last line completed, dots doubled. */
static const char TEXT[] = ".hidden\nline\n..two\n.\nlast";
static const char WIRE[] = "..hidden\r\nline\r\n...two\r\n..\r\nlast\r\n.\r\n";

static void test_pipelined_session(void **state)
{
    (void)state;
    static const struct step script[] = {
        { NULL, "220 mx.test ready\r\n" },
        { "EHLO client.test\r\n", EHLO_PIPE },
        { "DATA\r\n", "250 2.1.0 ok\r\n250 2.1.5 ok\r\n250 2.1.5 ok\r\n"
            "550 5.1.1 no such user\r\n354 go\r\n" },
        { "\r\n.\r\n", "250 2.0.0 ok: queued as ABC123\r\n" },
        { "QUIT\r\n", "221 2.0.0 bye\r\n" },
        { NULL, NULL }
    };
    static const char *const rcpts[] = { "x@y.test", "z@y.test", "nobody@y.test" };
    unsigned long long size = cli_body_size(TEXT, strlen(TEXT));
    assert_int_equal(size, strlen(".hidden\r\nline\r\n..two\r\n.\r\nlast\r\n"));
    struct cli_msg m = { .sender = "a@b.test", .rcpts = rcpts, .nrcpt = 3, .size = size };
    struct session x;
    start(&x, script, false);
    assert_int_equal(run(&x, &m, TEXT), 0);
    assert_int_equal(x.d.err, SMTPDRIVE_OK);
    assert_false(x.d.abandoned);
    char want[1024];
    snprintf(want, sizeof want, "EHLO client.test\r\nMAIL FROM:<a@b.test> SIZE=%llu\r\n"
        "RCPT TO:<x@y.test>\r\nRCPT TO:<z@y.test>\r\nRCPT TO:<nobody@y.test>\r\nDATA\r\n"
        "%sQUIT\r\n", size, WIRE);
    assert_string_equal(x.srv.got, want);
    size_t n;
    const struct cli_result *cr = cli_results(&x.cli, &n);
    assert_int_equal(n, 3);
    assert_int_equal(cr[0].kind, CLI_R_OK);
    assert_int_equal(cr[0].stage, CLI_STAGE_DOT);
    assert_string_equal(cr[0].reply, "250 2.0.0 ok: queued as ABC123");
    assert_int_equal(cr[1].kind, CLI_R_OK);
    assert_int_equal(cr[2].kind, CLI_R_PERM);
    assert_int_equal(cr[2].stage, CLI_STAGE_RCPT);
    assert_string_equal(cr[2].reply, "550 5.1.1 no such user");
    cli_free(&x.cli);
}

static void test_size_over_the_limit(void **state)
{
    (void)state;
    static const struct step script[] = {
        { NULL, "220 mx.test\r\n" },
        { "EHLO client.test\r\n", "250-mx.test\r\n250 SIZE 10\r\n" },
        { "QUIT\r\n", "221 bye\r\n" },
        { NULL, NULL }
    };
    struct cli_msg m = { .sender = "a@b.test", .rcpts = RCPTS, .nrcpt = 1,
        .size = cli_body_size(TEXT, strlen(TEXT)) };
    struct session x;
    start(&x, script, false);
    assert_int_equal(run(&x, &m, TEXT), 0);
    assert_string_equal(x.srv.got, "EHLO client.test\r\nQUIT\r\n");
    size_t n;
    const struct cli_result *cr = cli_results(&x.cli, &n);
    assert_int_equal(cr[0].kind, CLI_R_PERM);
    assert_int_equal(cr[0].stage, CLI_STAGE_LOCAL);
    assert_string_equal(cr[0].status, "5.3.4");
    cli_free(&x.cli);
}

/* Not pipelined: one command at a time, and the body is abandoned on request. */
static bool say_no(void *arg, const struct smtp_client *c)
{
    (void)c;
    *(int *)arg += 1;
    return false;
}

static void test_abandon_before_the_content(void **state)
{
    (void)state;
    static const struct step script[] = {
        { NULL, "220 mx.test\r\n" },
        { "EHLO client.test\r\n", "250 mx.test\r\n" },
        { "MAIL FROM:<a@b.test>\r\n", "250 ok\r\n" },
        { "RCPT TO:<x@y.test>\r\n", "451 4.3.0 try later\r\n" },
        { "RCPT TO:<z@y.test>\r\n", "250 ok\r\n" },
        { "DATA\r\n", "354 go\r\n" },
        { NULL, NULL }
    };
    struct cli_msg m = { .sender = "a@b.test", .rcpts = RCPTS, .nrcpt = 2, .size = 5 };
    struct session x;
    int calls = 0;
    start(&x, script, false);
    x.d.before_body = say_no;
    x.d.arg = &calls;
    assert_int_equal(run(&x, &m, "text\n"), 0);
    assert_int_equal(calls, 1);
    assert_true(x.d.abandoned);
    /* no content, no final dot, no QUIT: the connection just ends */
    assert_string_equal(x.srv.got, "EHLO client.test\r\nMAIL FROM:<a@b.test>\r\n"
        "RCPT TO:<x@y.test>\r\nRCPT TO:<z@y.test>\r\nDATA\r\n");
    size_t n;
    const struct cli_result *cr = cli_results(&x.cli, &n);
    assert_int_equal(cr[0].kind, CLI_R_TEMP);
    assert_int_equal(cr[0].stage, CLI_STAGE_RCPT);
    assert_int_equal(cr[1].kind, CLI_R_TEMP);
    assert_int_equal(cr[1].stage, CLI_STAGE_BODY);
    cli_free(&x.cli);
}

static void test_timeout(void **state)
{
    (void)state;
    static const struct step script[] = { { NULL, NULL } };
    struct cli_msg m = { .sender = "a@b.test", .rcpts = RCPTS, .nrcpt = 1, .size = 5 };
    struct session x;
    start(&x, script, false);
    x.d.timeout_ms = 200;
    long long t0 = now_ms();
    assert_int_equal(run(&x, &m, "text\n"), -1);
    assert_true(now_ms() - t0 >= 190);
    assert_int_equal(x.d.err, SMTPDRIVE_TIMEOUT);
    assert_int_equal(x.d.err_state, CLI_S_GREETING);
    size_t n;
    const struct cli_result *cr = cli_results(&x.cli, &n);
    assert_int_equal(cr[0].kind, CLI_R_TEMP);
    assert_int_equal(cr[0].stage, CLI_STAGE_GREETING);
    cli_free(&x.cli);
}

static void test_closed_after_ehlo(void **state)
{
    (void)state;
    static const struct step script[] = {
        { NULL, "220 mx.test\r\n" },
        { "EHLO client.test\r\n", NULL },
        { NULL, NULL }
    };
    struct cli_msg m = { .sender = "a@b.test", .rcpts = RCPTS, .nrcpt = 1, .size = 5 };
    struct session x;
    start(&x, script, true);
    assert_int_equal(run(&x, &m, "text\n"), -1);
    assert_int_equal(x.d.err, SMTPDRIVE_CLOSED);
    assert_int_equal(x.d.err_state, CLI_S_EHLO);
    cli_free(&x.cli);
}

static void test_not_smtp(void **state)
{
    (void)state;
    static const struct step script[] = { { NULL, "hello there\r\n" }, { NULL, NULL } };
    struct cli_msg m = { .sender = "a@b.test", .rcpts = RCPTS, .nrcpt = 1, .size = 5 };
    struct session x;
    start(&x, script, false);
    assert_int_equal(run(&x, &m, "text\n"), -1);
    assert_int_equal(x.d.err, SMTPDRIVE_PROTOCOL);
    assert_int_equal(x.d.err_state, CLI_S_GREETING);
    assert_true(x.d.why[0] != '\0');
    cli_free(&x.cli);
}

/* A reply split over many reads, and a server that closes instead of answering QUIT. */
static void test_split_reply_and_quiet_quit(void **state)
{
    (void)state;
    static const struct step script[] = {
        { NULL, "22" }, { NULL, "0 mx" }, { NULL, ".test\r" }, { NULL, "\n" },
        { "EHLO client.test\r\n", "250-mx.test\r\n" }, { NULL, "250 PIPELINING\r\n" },
        { "DATA\r\n", "250 ok\r\n250 ok\r\n354 go\r\n" },
        { "\r\n.\r\n", "250 ok\r\n" },
        { "QUIT\r\n", NULL },
        { NULL, NULL }
    };
    struct cli_msg m = { .sender = "", .rcpts = RCPTS, .nrcpt = 1, .size = 7 };
    struct session x;
    start(&x, script, true);
    assert_int_equal(run(&x, &m, "a\n.\n"), 0);
    assert_int_equal(x.d.err, SMTPDRIVE_OK);
    assert_string_equal(x.srv.got, "EHLO client.test\r\nMAIL FROM:<>\r\nRCPT TO:<x@y.test>\r\n"
        "DATA\r\na\r\n..\r\n.\r\nQUIT\r\n");
    size_t n;
    const struct cli_result *cr = cli_results(&x.cli, &n);
    assert_int_equal(cr[0].kind, CLI_R_OK);
    cli_free(&x.cli);
}

/* A server without 8BITMIME: text declared 8-bit but plain ASCII goes as it is; real
 * 8-bit content is not converted here, so the session fails before any content. */
static void test_no_8bitmime(void **state)
{
    (void)state;
    static const struct step script[] = {
        { NULL, "220 mx.test\r\n" },
        { "EHLO client.test\r\n", "250 mx.test\r\n" },
        { "MAIL FROM:<a@b.test>\r\n", "250 ok\r\n" },
        { "RCPT TO:<x@y.test>\r\n", "250 ok\r\n" },
        { "DATA\r\n", "354 go\r\n" },
        { "\r\n.\r\n", "250 ok\r\n" },
        { "QUIT\r\n", "221 bye\r\n" },
        { NULL, NULL }
    };
    struct cli_msg m = { .sender = "a@b.test", .rcpts = RCPTS, .nrcpt = 1, .size = 7,
        .eightbit = true };
    struct session x;
    start(&x, script, false);
    assert_int_equal(run(&x, &m, "ascii\n"), 0);
    assert_non_null(strstr(x.srv.got, "DATA\r\nascii\r\n.\r\nQUIT\r\n"));
    cli_free(&x.cli);

    start(&x, script, false);
    assert_int_equal(run(&x, &m, "gr\xc3\xbc\xc3\x9f\n"), -1);
    assert_int_equal(x.d.err, SMTPDRIVE_LOCAL);
    assert_int_equal(x.d.err_state, CLI_S_BODY);
    assert_null(strstr(x.srv.got, "gr"));
    size_t n;
    const struct cli_result *cr = cli_results(&x.cli, &n);
    assert_int_equal(cr[0].kind, CLI_R_TEMP);
    cli_free(&x.cli);
}

static void test_body_form(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(cli_body_put("", 0, &b), 0);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.p, ".\r\n", 3);
    assert_int_equal(cli_body_size("", 0), 0);
    buf_reset(&b);
    assert_int_equal(cli_body_put("\n\n.x\n", 5, &b), 0);
    assert_int_equal(b.len, strlen("\r\n\r\n..x\r\n.\r\n"));
    assert_memory_equal(b.p, "\r\n\r\n..x\r\n.\r\n", b.len);
    assert_int_equal(cli_body_size("\n\n.x\n", 5), 8);
    assert_int_equal(cli_body_size("ab", 2), 4);
    buf_free(&b);
    buf_init(&b, 4);
    assert_int_equal(cli_body_put("abcdef\n", 7, &b), -1);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelined_session),
        cmocka_unit_test(test_size_over_the_limit),
        cmocka_unit_test(test_abandon_before_the_content),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_closed_after_ehlo),
        cmocka_unit_test(test_not_smtp),
        cmocka_unit_test(test_split_reply_and_quiet_quit),
        cmocka_unit_test(test_no_8bitmime),
        cmocka_unit_test(test_body_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
