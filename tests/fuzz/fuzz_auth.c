/*
 * tests/fuzz/fuzz_auth.c - libFuzzer target for the SMTP AUTH decoders and parsers.
 *
 * Owns:  auth_b64_decode() (a successful decode re-encodes to the input: only canonical
 *        base64 is accepted), auth_b64_encode() round trips, auth_plain_decode() and
 *        auth_login_decode() on the input as base64 and on its encoding (results obey the
 *        limits; PLAIN accepts exactly when the payload has the RFC 4616 shape), the password
 *        and sender-map parsers on the input as a file (through a memfd), and the throttle
 *        driven by the input as a list of operations.
 * Never: runs crypt_r() on input (auth_db_verify is slow by design); touches the disk.
 * Build: make build-fuzz/fuzz_auth (clang -fsanitize=fuzzer,address,undefined, linked with
 *        the library sources: policy/sasl.c, passwd.c, throttle.c, senders.c and their helpers)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "policy/auth.h"
#include "util/buf.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static unsigned char dec[AUTH_PLAIN_B64_MAX + 4096];

/* The input as base64 text: a successful decode must re-encode to exactly the input. */
static void check_decode(const char *in, size_t n)
{
    ssize_t r = auth_b64_decode(in, n, dec, sizeof dec);
    struct buf b;

    if (r < 0)
        return;
    CHECK((size_t)r <= n / 4 * 3);
    if (n == 1) {
        CHECK(in[0] == '=' && r == 0);
        return;
    }
    buf_init(&b, 0);
    CHECK(auth_b64_encode(dec, (size_t)r, &b) == 0);
    CHECK(b.len == n && (n == 0 || memcmp(b.p, in, n) == 0));
    buf_free(&b);
}

/* A weak independent check: octets that never occur in UTF-8 (C0, C1, F5..FF). */
static bool utf8_ok_ref(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == 0xc0 || s[i] == 0xc1 || s[i] >= 0xf5)
            return false;
    }
    return true;
}

/* The input as a raw PLAIN payload: encode it and decode it again. */
static void check_plain_raw(const unsigned char *d, size_t n)
{
    char user[AUTH_USER_MAX + 1], pass[AUTH_PASS_MAX + 1];
    const unsigned char *z1, *z2;
    enum auth_perr e;
    struct buf b;

    buf_init(&b, 0);
    CHECK(auth_b64_encode(d, n, &b) == 0);
    e = auth_plain_decode(b.p ? b.p : "", b.len, user, sizeof user, pass, sizeof pass);
    buf_free(&b);
    z1 = memchr(d, 0, n);
    z2 = z1 ? memchr(z1 + 1, 0, n - (size_t)(z1 + 1 - d)) : NULL;
    if (e != AUTH_P_OK) {
        CHECK(user[0] == '\0' && pass[0] == '\0');
        if (e == AUTH_P_BAD_B64)
            CHECK(0);                           /* our own encoding is always valid */
        return;
    }
    /* Accepted: exactly "[authzid] NUL authcid NUL passwd" with the pieces we got. */
    CHECK(z1 != NULL && z2 != NULL);
    CHECK(memchr(z2 + 1, 0, n - (size_t)(z2 + 1 - d)) == NULL);
    CHECK(strlen(user) == (size_t)(z2 - z1 - 1) && memcmp(user, z1 + 1, strlen(user)) == 0);
    CHECK(strlen(pass) == n - (size_t)(z2 + 1 - d));
    CHECK(memcmp(pass, z2 + 1, strlen(pass)) == 0);
    CHECK(strlen(user) >= 1 && strlen(user) <= AUTH_USER_MAX);
    CHECK(strlen(pass) >= 1 && strlen(pass) <= AUTH_PASS_MAX);
    CHECK(z1 == d || ((size_t)(z1 - d) == strlen(user) && memcmp(d, user, strlen(user)) == 0));
    CHECK(utf8_ok_ref(d, n));
}

/* The input as a PLAIN or LOGIN response (base64 text). */
static void check_responses(const char *in, size_t n)
{
    char user[AUTH_USER_MAX + 1], pass[AUTH_PASS_MAX + 1], small[8];
    enum auth_perr e;

    e = auth_plain_decode(in, n, user, sizeof user, pass, sizeof pass);
    if (e == AUTH_P_OK) {
        CHECK(strlen(user) >= 1 && strlen(user) <= AUTH_USER_MAX);
        CHECK(strlen(pass) >= 1 && strlen(pass) <= AUTH_PASS_MAX);
    } else {
        CHECK(user[0] == '\0' && pass[0] == '\0');
    }
    /* Tiny output buffers never overflow. */
    e = auth_plain_decode(in, n, small, sizeof small, small, sizeof small);
    CHECK(e != AUTH_P_OK || strlen(small) < sizeof small);

    e = auth_login_decode(in, n, AUTH_USER_MAX, user, sizeof user);
    CHECK(e == AUTH_P_OK ? strlen(user) >= 1 && strlen(user) <= AUTH_USER_MAX
                         : user[0] == '\0');
    e = auth_login_decode(in, n, AUTH_PASS_MAX, pass, sizeof pass);
    CHECK(e == AUTH_P_OK ? strlen(pass) >= 1 && strlen(pass) <= AUTH_PASS_MAX
                         : pass[0] == '\0');
    e = auth_login_decode(in, n, AUTH_PASS_MAX, small, sizeof small);
    CHECK(e != AUTH_P_OK || strlen(small) < sizeof small);
}

/* The input as a password file and as a sender map, read through a memfd. */
static void check_files(const uint8_t *d, size_t n)
{
    static int fd = -1;
    char path[64], err[256];
    struct auth_db *db;
    struct auth_senders *s;

    if (fd == -1) {
        fd = memfd_create("fuzz_auth", MFD_CLOEXEC);
        CHECK(fd != -1);
    }
    CHECK(ftruncate(fd, 0) == 0);
    CHECK(pwrite(fd, d, n, 0) == (ssize_t)n);
    (void)snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    err[0] = '\0';
    db = auth_db_load(path, err, sizeof err);
    if (db == NULL) {
        CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    } else {
        CHECK(!auth_db_has_user(db, ""));
        CHECK(auth_db_count(db) <= n / 2);
        auth_db_free(db);
    }
    err[0] = '\0';
    s = auth_senders_load(path, err, sizeof err);
    if (s == NULL) {
        CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    } else {
        CHECK(!auth_sender_ok(s, "x", "", NULL, NULL));
        (void)auth_sender_ok(s, "x", "x@y", NULL, NULL);
        auth_senders_free(s);
    }
}

/*
 * The input as throttle operations, 2 octets each: the operation and a key (address and
 * user), then a time step. Checks begun and not yet ended are kept in a small list; the
 * invariants: the gate never lets more checks run from one address or for one user than
 * its limit, and a failure always leaves the address throttled.
 */
#define FZ_MAX 3
#define FZ_RUNNING 16

struct fz_run {
    char addr[8], user[8];
};

static unsigned fz_count(const struct fz_run *r, size_t n, const char *addr, const char *user)
{
    unsigned c = 0;

    for (size_t i = 0; i < n; i++) {
        if ((addr == NULL || strcmp(r[i].addr, addr) == 0) &&
            (user == NULL || strcmp(r[i].user, user) == 0))
            c++;
    }
    return c;
}

static void check_throttle(const uint8_t *d, size_t n)
{
    struct auth_throttle *t = auth_throttle_new(FZ_MAX, 60, 120);
    struct fz_run run[FZ_RUNNING];
    size_t nrun = 0;
    time_t now = 1000;
    char addr[8], user[8];
    unsigned delay;

    for (size_t i = 0; i + 1 < n; i += 2) {
        enum auth_gate g;

        (void)snprintf(addr, sizeof addr, "a%u", d[i] & 0x0f);
        (void)snprintf(user, sizeof user, "u%u", (d[i] >> 4) & 0x03);
        now += d[i + 1] & 0x7f;
        if (d[i + 1] & 0x80)
            now -= 50;                          /* the clock may step back */
        switch (d[i] >> 6) {
        case 0:
            if (nrun == FZ_RUNNING)
                break;
            g = auth_throttle_begin(t, addr, user, now);
            if (g == AUTH_GATE_OPEN || g == AUTH_GATE_DELAY) {
                (void)snprintf(run[nrun].addr, sizeof run[nrun].addr, "%s", addr);
                (void)snprintf(run[nrun].user, sizeof run[nrun].user, "%s", user);
                nrun++;
                CHECK(fz_count(run, nrun, addr, NULL) <= FZ_MAX);
                CHECK(fz_count(run, nrun, NULL, user) <= FZ_MAX * AUTH_USER_FACTOR);
            }
            break;
        case 1:
        case 2:
            if (nrun == 0)
                break;
            /* end the oldest running check: a failure (1) or a success (2) */
            auth_throttle_end(t, run[0].addr, run[0].user,
                d[i] >> 6 == 1 ? AUTH_RES_FAIL : AUTH_RES_OK, now);
            if (d[i] >> 6 == 1) {
                g = auth_throttle_check(t, run[0].addr, run[0].user, now, &delay);
                CHECK(g != AUTH_GATE_OPEN);
                CHECK(g == AUTH_GATE_LOCKED ? delay == 0 : delay >= 1000 && delay <= 8000);
            }
            memmove(run, run + 1, (nrun - 1) * sizeof run[0]);
            nrun--;
            break;
        default:
            g = auth_throttle_check(t, addr, user, now, NULL);
            CHECK(g == AUTH_GATE_OPEN || g == AUTH_GATE_DELAY || g == AUTH_GATE_BUSY ||
                g == AUTH_GATE_LOCKED);
            CHECK(fz_count(run, nrun, addr, NULL) < FZ_MAX || g == AUTH_GATE_BUSY ||
                g == AUTH_GATE_LOCKED);
            break;
        }
        CHECK(auth_throttle_count(t) <= 16);
    }
    while (nrun > 0) {
        nrun--;
        auth_throttle_end(t, run[nrun].addr, run[nrun].user, AUTH_RES_NONE, now);
    }
    auth_throttle_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;

    check_decode(in, size);
    check_responses(in, size);
    if (size <= AUTH_PLAIN_MAX + 8)
        check_plain_raw(data, size);
    check_files(data, size);
    check_throttle(data, size);
    return 0;
}
