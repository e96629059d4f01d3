/*
 * tests/unit/net/test_conn.c - net/conn on a socketpair (and one loopback connect).
 *
 * Each test runs a private event loop; every wait is bounded (WAIT_TURNS turns of at most
 * a millisecond) and asserts that the awaited event came.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "net/conn.h"
#include "util/log.h"

#define WAIT_TURNS 5000

struct seen {
    int inputs, drained, closed, connected, tls, eof, errors;
    enum conn_state state_at_error;
    char got[64];
    size_t ngot;
};

static void on_input(struct conn *c, void *arg)
{
    struct seen *s = arg;
    s->inputs++;
    struct evbuffer *in = conn_input(c);
    size_t n = evbuffer_get_length(in);
    if (n > sizeof s->got - 1 - s->ngot)
        n = sizeof s->got - 1 - s->ngot;
    s->ngot += (size_t)evbuffer_remove(in, s->got + s->ngot, n);
    s->got[s->ngot] = '\0';
}

/* Like on_input, but leaves the input where it is. */
static void on_input_keep(struct conn *c, void *arg)
{
    (void)c;
    ((struct seen *)arg)->inputs++;
}

static void on_drained(struct conn *c, void *arg)
{
    (void)c;
    ((struct seen *)arg)->drained++;
}

static void on_event(struct conn *c, enum conn_event ev, void *arg)
{
    struct seen *s = arg;
    switch (ev) {
    case CONN_EV_CLOSED:
        s->closed++;
        break;
    case CONN_EV_CONNECTED:
        s->connected++;
        break;
    case CONN_EV_TLS:
        s->tls++;
        break;
    case CONN_EV_EOF:
        s->eof++;
        s->state_at_error = conn_state(c);
        break;
    default:
        s->errors++;
        s->state_at_error = conn_state(c);
        break;
    }
}

static const struct conn_ops ops = { on_input, on_drained, on_event };
static const struct conn_ops ops_keep = { on_input_keep, on_drained, on_event };

/* Run the loop until *flag is non-zero or WAIT_TURNS turns passed; true if it became so. */
static bool wait_for(struct event_base *base, const int *flag)
{
    for (int i = 0; i < WAIT_TURNS && *flag == 0; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (*flag == 0)
            usleep(1000);
    }
    return *flag != 0;
}

/* A few loop turns in which nothing is expected to happen. */
static void spin(struct event_base *base, int turns)
{
    for (int i = 0; i < turns; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
}

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
}

/* Read and drop everything the peer socket has now; returns the octets read. */
static size_t drain_peer(int fd)
{
    char b[65536];
    size_t total = 0;
    for (int i = 0; i < 1000; i++) {
        ssize_t n = read(fd, b, sizeof b);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
    return total;
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(conn_state_name(CONN_OPEN), "OPEN");
    assert_string_equal(conn_state_name(CONN_CONNECTING), "CONNECTING");
    assert_string_equal(conn_state_name(CONN_TLS_HANDSHAKE), "TLS_HANDSHAKE");
    assert_string_equal(conn_state_name(CONN_WAIT_DRAIN), "WAIT_DRAIN");
    assert_string_equal(conn_state_name(CONN_BUSY), "BUSY");
    assert_string_equal(conn_state_name(CONN_CLOSING), "CLOSING");
    assert_string_equal(conn_state_name(CONN_DEAD), "DEAD");
}

/* BUSY stops reading, OPEN reads again; each change is traced with the old and new name. */
static void test_busy_stops_reading_and_is_traced(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/test_conn_log.XXXXXX";
    int lfd = mkstemp(tmpl);
    assert_true(lfd != -1);
    int saved = dup(2);
    assert_true(saved != -1);
    assert_int_equal(dup2(lfd, 2), 2);
    log_init("test_conn", false, LOG_LVL_DEBUG);

    struct event_base *base = event_base_new();
    int sv[2];
    pair(sv);
    struct seen s = { 0 };
    struct conn *c = conn_new(base, sv[0], NULL, 4096, 0, &ops, &s, "sid=7");
    assert_non_null(c);
    assert_int_equal(conn_state(c), CONN_OPEN);
    conn_set_state(c, CONN_BUSY);
    assert_int_equal(write(sv[1], "x", 1), 1);
    spin(base, 50);
    assert_int_equal(s.inputs, 0);
    conn_set_state(c, CONN_OPEN);
    assert_true(wait_for(base, &s.inputs));
    assert_string_equal(s.got, "x");
    conn_free(c);
    close(sv[1]);
    event_base_free(base);

    fflush(stderr);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    log_init("test_conn", false, LOG_LVL_INFO);
    char text[4096];
    ssize_t n = pread(lfd, text, sizeof text - 1, 0);
    assert_true(n > 0);
    text[n] = '\0';
    close(lfd);
    unlink(tmpl);
    assert_non_null(strstr(text, "sid=7 conn OPEN -> BUSY"));
    assert_non_null(strstr(text, "sid=7 conn BUSY -> OPEN"));
}

/* Past the output cap reading pauses until the peer has taken half of it. */
static void test_out_cap_pauses_reading(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    int sv[2];
    pair(sv);
    struct seen s = { 0 };
    const size_t cap = 64 * 1024;
    struct conn *c = conn_new(base, sv[0], NULL, 4096, cap, &ops, &s, "cap");
    assert_non_null(c);
    static char big[1 << 20];
    memset(big, 'a', sizeof big);
    assert_int_equal(conn_write(c, big, sizeof big), 0);
    assert_true(conn_out_full(c));
    /* the kernel takes what fits; the rest stays queued while the peer does not read */
    spin(base, 50);
    assert_true(conn_unsent(c) > cap / 2);
    assert_int_equal(write(sv[1], "y", 1), 1);
    spin(base, 50);
    assert_int_equal(s.inputs, 0);
    /* the peer reads: the output drains, reading goes on */
    size_t taken = 0;
    for (int i = 0; i < WAIT_TURNS && s.inputs == 0; i++) {
        taken += drain_peer(sv[1]);
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    assert_int_equal(s.inputs, 1);
    assert_true(s.drained >= 1);
    assert_true(taken > 0);
    assert_string_equal(s.got, "y");
    assert_false(conn_out_full(c));
    conn_free(c);
    close(sv[1]);
    event_base_free(base);
}

/* An owner that stopped reading itself stays stopped when its output drains. */
static void test_drain_keeps_owner_pause(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    int sv[2];
    pair(sv);
    struct seen s = { 0 };
    struct conn *c = conn_new(base, sv[0], NULL, 4096, 0, &ops, &s, "ctl");
    assert_non_null(c);
    conn_read(c, false);
    assert_int_equal(conn_write(c, "T line\n", 7), 0);
    assert_true(wait_for(base, &s.drained));
    assert_int_equal(write(sv[1], "more\n", 5), 5);
    spin(base, 50);
    assert_int_equal(s.inputs, 0);
    conn_read(c, true);
    assert_true(wait_for(base, &s.inputs));
    assert_string_equal(s.got, "more\n");
    conn_free(c);
    close(sv[1]);
    event_base_free(base);
}

/* conn_close() flushes, then reports CLOSED; in BUSY it makes the connection DEAD. */
static void test_close_flushes_first(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    int sv[2];
    pair(sv);
    struct seen s = { 0 };
    struct conn *c = conn_new(base, sv[0], NULL, 4096, 0, &ops, &s, "close");
    assert_non_null(c);
    assert_int_equal(conn_write(c, "bye\r\n", 5), 0);
    conn_close(c);
    assert_int_equal(conn_state(c), CONN_CLOSING);
    assert_int_equal(s.closed, 0);
    assert_true(wait_for(base, &s.closed));
    char b[16] = "";
    assert_int_equal(read(sv[1], b, sizeof b - 1), 5);
    assert_string_equal(b, "bye\r\n");
    conn_free(c);
    close(sv[1]);

    pair(sv);
    struct seen s2 = { 0 };
    c = conn_new(base, sv[0], NULL, 4096, 0, &ops, &s2, "dead");
    assert_non_null(c);
    conn_set_state(c, CONN_BUSY);
    conn_close(c);
    assert_int_equal(conn_state(c), CONN_DEAD);
    spin(base, 20);
    assert_int_equal(s2.closed, 0);
    conn_free(c);
    close(sv[1]);
    event_base_free(base);
}

/* Server STARTTLS: unread input is dropped, the handshake waits for the reply to drain. */
static void test_starttls_waits_for_drain(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    int sv[2];
    pair(sv);
    struct seen s = { 0 };
    struct conn *c = conn_new(base, sv[0], NULL, 4096, 0, &ops_keep, &s, "tls");
    assert_non_null(c);
    assert_int_equal(write(sv[1], "EHLO x\r\n", 8), 8);
    assert_true(wait_for(base, &s.inputs));
    static char reply[1 << 20];
    memset(reply, 'r', sizeof reply);
    assert_int_equal(conn_write(c, reply, sizeof reply), 0);
    assert_int_equal(conn_starttls(c, ctx, CONN_TLS_SERVER, NULL, false), 8);
    assert_int_equal(evbuffer_get_length(conn_input(c)), 0);
    spin(base, 50);
    assert_int_equal(conn_state(c), CONN_WAIT_DRAIN);
    size_t taken = 0;
    for (int i = 0; i < WAIT_TURNS && conn_state(c) == CONN_WAIT_DRAIN; i++) {
        taken += drain_peer(sv[1]);
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    assert_int_equal(conn_state(c), CONN_TLS_HANDSHAKE);
    taken += drain_peer(sv[1]);
    assert_int_equal(taken, sizeof reply);
    /* not a ClientHello: the handshake fails, reported while still in TLS_HANDSHAKE */
    assert_int_equal(write(sv[1], "QUIT\r\n", 6), 6);
    int failed = 0;
    for (int i = 0; i < WAIT_TURNS && !failed; i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        failed = s.errors + s.eof;
        if (!failed)
            usleep(1000);
    }
    assert_true(failed);
    assert_int_equal(s.state_at_error, CONN_TLS_HANDSHAKE);
    assert_int_equal(s.tls, 0);
    conn_free(c);
    close(sv[1]);
    SSL_CTX_free(ctx);
    event_base_free(base);
}

/* The socket outlives its connection after conn_release_fd(). */
static void test_release_fd(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    int sv[2];
    pair(sv);
    struct seen s = { 0 };
    struct conn *c = conn_new(base, sv[0], NULL, 4096, 0, &ops, &s, "release");
    assert_non_null(c);
    int fd = conn_release_fd(c);
    assert_int_equal(fd, sv[0]);
    assert_int_equal(write(fd, "z", 1), 1);
    char b = 0;
    assert_int_equal(read(sv[1], &b, 1), 1);
    assert_int_equal(b, 'z');
    close(fd);
    close(sv[1]);
    event_base_free(base);
}

/* A client connection on loopback: CONNECTING, then CONNECTED and OPEN. */
static void test_connect(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l != -1);
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
    socklen_t sl = sizeof sin;
    assert_int_equal(bind(l, (struct sockaddr *)&sin, sl), 0);
    assert_int_equal(listen(l, 1), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &sl), 0);
    struct seen s = { 0 };
    struct conn *c = conn_connect(base, (struct sockaddr *)&sin, sl, 4096, 0, &ops, &s, "out");
    assert_non_null(c);
    assert_int_equal(conn_state(c), CONN_CONNECTING);
    assert_true(wait_for(base, &s.connected));
    assert_int_equal(conn_state(c), CONN_OPEN);
    int a = accept(l, NULL, NULL);
    assert_true(a != -1);
    assert_int_equal(write(a, "220 hi\r\n", 8), 8);
    assert_true(wait_for(base, &s.inputs));
    assert_string_equal(s.got, "220 hi\r\n");
    conn_free(c);
    close(a);
    close(l);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_busy_stops_reading_and_is_traced),
        cmocka_unit_test(test_out_cap_pauses_reading),
        cmocka_unit_test(test_drain_keeps_owner_pause),
        cmocka_unit_test(test_close_flushes_first),
        cmocka_unit_test(test_starttls_waits_for_drain),
        cmocka_unit_test(test_release_fd),
        cmocka_unit_test(test_connect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
