/*
 * tests/unit/policy/test_auth.c - SMTP AUTH: base64, PLAIN/LOGIN, password file, verify,
 * hashing, throttling, sender-login map.
 *
 * Run with cwd tests/unit: static fixtures live in policy/fixtures/passwd/ (their hashes are
 * of "fixture-password", carol's of "other-password"). Files with fresh hashes and the
 * sender maps are written to a temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <crypt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "policy/auth.h"
#include "util/buf.h"
#include "util/str.h"

#define FIXDIR "policy/fixtures/passwd"

static char err[512];
static char tmpdir[] = "/tmp/postel-test-auth.XXXXXX";

/* ---- helpers ---- */

/* Write content to a file named name in tmpdir; returns its path (static storage, one slot
 * per call site is enough: callers use it at once). */
static const char *write_tmp(const char *name, const char *content)
{
    static char path[256];
    FILE *f;

    assert_int_equal(snprintf(path, sizeof path, "%s/%s", tmpdir, name) < (int)sizeof path, 1);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(content, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    return path;
}

static int group_setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
    char cmd[300];

    (void)state;
    (void)snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Base64 of n octets, as a C string in out (size osz). */
static const char *enc(const void *d, size_t n, char *out, size_t osz)
{
    struct buf b;

    buf_init(&b, 0);
    assert_int_equal(auth_b64_encode(d, n, &b), 0);
    assert_true(b.len < osz);
    memcpy(out, b.p ? b.p : "", b.len);
    out[b.len] = '\0';
    buf_free(&b);
    return out;
}

static enum auth_perr plain(const void *msg, size_t n, char *user, char *pass)
{
    static char b64[4096];

    enc(msg, n, b64, sizeof b64);
    return auth_plain_decode(b64, strlen(b64), user, AUTH_USER_MAX + 1, pass,
        AUTH_PASS_MAX + 1);
}

/* PLAIN decoding of a string literal (which may contain NULs). */
#define PLAIN(lit) plain(lit, sizeof(lit) - 1, user, pass)

static double mono_now(void)
{
    struct timespec ts;

    assert_int_equal(clock_gettime(CLOCK_MONOTONIC, &ts), 0);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- base64 ---- */

static void test_b64_rfc4648_vectors(void **state)
{
    static const char *const vec[][2] = {
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" },
    };
    unsigned char out[16];
    char e[32];

    (void)state;
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        size_t n = strlen(vec[i][0]);
        assert_string_equal(enc(vec[i][0], n, e, sizeof e), vec[i][1]);
        memset(out, 0x55, sizeof out);
        assert_int_equal(auth_b64_decode(vec[i][1], strlen(vec[i][1]), out, sizeof out),
            (ssize_t)n);
        assert_memory_equal(out, vec[i][0], n);
    }
}

static void test_b64_empty_response(void **state)
{
    unsigned char out[4];

    (void)state;
    /* RFC 4954 4: "=" alone is an empty response. */
    assert_int_equal(auth_b64_decode("=", 1, out, sizeof out), 0);
    assert_int_equal(auth_b64_decode("=", 1, NULL, 0), 0);
    assert_int_equal(auth_b64_decode("", 0, out, sizeof out), 0);
    assert_int_equal(auth_b64_decode("==", 2, out, sizeof out), -1);
    assert_int_equal(auth_b64_decode("====", 4, out, sizeof out), -1);
}

static void test_b64_invalid(void **state)
{
    static const char *const bad[] = {
        "Zg",           /* padding missing */
        "Zg=",          /* length not a multiple of 4 */
        "Z===",         /* three pad characters */
        "=Zm9",         /* pad at the start */
        "Zg==Zg==",     /* pad in the middle */
        "Zm=v",         /* pad inside a group */
        "Zm9v\r\n",     /* line break */
        "Zm9 ",         /* space */
        "Zm9 v",
        "Zm9v YmFy",
        "Zm9-",         /* base64url alphabet */
        "Zm9_",
        "Zh==",         /* non-zero unused bits: not canonical ("Zg==") */
        "Zm9=",         /* likewise for "Zm8=" */
        "Zm9v\0AAA",    /* NUL */
        "Zm9v\xc3\xa9\x41\x41",
    };
    unsigned char out[64];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = strlen(bad[i]);
        if (i == 14)
            n = 8;                              /* the NUL case */
        if (auth_b64_decode(bad[i], n, out, sizeof out) != -1)
            fail_msg("accepted bad base64 #%zu", i);
    }
}

static void test_b64_output_too_small(void **state)
{
    unsigned char out[6];

    (void)state;
    assert_int_equal(auth_b64_decode("Zm9vYmFy", 8, out, 5), -1);
    assert_int_equal(auth_b64_decode("Zm9vYmFy", 8, out, 6), 6);
    assert_int_equal(auth_b64_decode("Zm9vYmE=", 8, out, 5), 5);
}

static void test_b64_binary_roundtrip_and_cap(void **state)
{
    unsigned char all[256], back[256];
    char e[400];
    struct buf b;

    (void)state;
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t n = 0; n <= sizeof all; n++) {
        enc(all + 256 - n, n, e, sizeof e);
        assert_int_equal(strlen(e), (n + 2) / 3 * 4);
        assert_int_equal(auth_b64_decode(e, strlen(e), back, sizeof back), (ssize_t)n);
        assert_memory_equal(back, all + 256 - n, n);
    }
    /* The cap holds: nothing is appended when the encoding does not fit. */
    buf_init(&b, 10);
    assert_int_equal(buf_puts(&b, "334 "), 0);
    assert_int_equal(auth_b64_encode("Username:", 9, &b), -1);
    assert_int_equal(b.len, 4);
    assert_int_equal(auth_b64_encode("User", 4, &b), -1);
    assert_int_equal(auth_b64_encode("Use", 3, &b), 0);
    assert_int_equal(b.len, 8);
    assert_memory_equal(b.p, "334 VXNl", 8);
    buf_free(&b);
}

static void test_login_challenges(void **state)
{
    unsigned char out[16];
    char e[32];

    (void)state;
    assert_string_equal(enc("Username:", 9, e, sizeof e), AUTH_LOGIN_CHALLENGE_USER);
    assert_string_equal(enc("Password:", 9, e, sizeof e), AUTH_LOGIN_CHALLENGE_PASS);
    assert_int_equal(auth_b64_decode(AUTH_LOGIN_CHALLENGE_USER, 12, out, sizeof out), 9);
    assert_memory_equal(out, "Username:", 9);
}

/* ---- PLAIN ---- */

static void test_plain_good(void **state)
{
    char user[AUTH_USER_MAX + 1], pass[AUTH_PASS_MAX + 1];
    static const char rfc[] = "AGFsaWNlAHNlY3JldA==";      /* "\0alice\0secret" */

    (void)state;
    assert_int_equal(auth_plain_decode(rfc, strlen(rfc), user, sizeof user, pass, sizeof pass),
        AUTH_P_OK);
    assert_string_equal(user, "alice");
    assert_string_equal(pass, "secret");

    /* RFC 4616 4 example: authzid and authcid "tim", password "tanstaaftanstaaf". */
    assert_int_equal(PLAIN("tim\0tim\0tanstaaftanstaaf"), AUTH_P_OK);
    assert_string_equal(user, "tim");
    assert_string_equal(pass, "tanstaaftanstaaf");

    /* UTF-8 in the user name and password; blanks in the password are data. */
    assert_int_equal(PLAIN("\0j\xc3\xb6rg\0p\xc3\xa4ss w\xe2\x82\xac rd"),
        AUTH_P_OK);
    assert_string_equal(user, "j\xc3\xb6rg");
    assert_string_equal(pass, "p\xc3\xa4ss w\xe2\x82\xac rd");
}

static void test_plain_authzid(void **state)
{
    char user[AUTH_USER_MAX + 1], pass[AUTH_PASS_MAX + 1];

    (void)state;
    assert_int_equal(PLAIN("alice\0alice\0pw"), AUTH_P_OK);
    assert_string_equal(user, "alice");
    assert_int_equal(PLAIN("bob\0alice\0pw"), AUTH_P_AUTHZ_MISMATCH);
    assert_string_equal(user, "");
    assert_string_equal(pass, "");
    /* Case matters: users are case-sensitive. */
    assert_int_equal(PLAIN("Alice\0alice\0pw"), AUTH_P_AUTHZ_MISMATCH);
    /* A prefix is not the same identity. */
    assert_int_equal(PLAIN("alic\0alice\0pw"), AUTH_P_AUTHZ_MISMATCH);
}

static void test_plain_format(void **state)
{
    char user[AUTH_USER_MAX + 1], pass[AUTH_PASS_MAX + 1];

    (void)state;
    assert_int_equal(PLAIN("alice\0secret"), AUTH_P_BAD_FORMAT);
    assert_int_equal(PLAIN("alicesecret"), AUTH_P_BAD_FORMAT);
    assert_int_equal(PLAIN("\0alice\0sec\0ret"), AUTH_P_BAD_FORMAT);
    assert_int_equal(PLAIN("\0\0secret"), AUTH_P_BAD_FORMAT);
    assert_int_equal(PLAIN("\0alice\0"), AUTH_P_BAD_FORMAT);
    assert_int_equal(PLAIN("\0\0"), AUTH_P_BAD_FORMAT);
    assert_int_equal(PLAIN(""), AUTH_P_BAD_FORMAT);
    assert_int_equal(auth_plain_decode("=", 1, user, sizeof user, pass, sizeof pass),
        AUTH_P_BAD_FORMAT);
    /* Not UTF-8: a stray octet, an overlong NUL, a surrogate, past U+10FFFF, truncated. */
    assert_int_equal(PLAIN("\0alice\0pass\xff"), AUTH_P_BAD_FORMAT);
    assert_int_equal(PLAIN("\0ali\xc0\x80\0pw"), AUTH_P_BAD_FORMAT);
    assert_int_equal(PLAIN("\0alice\0\xed\xa0\x80"), AUTH_P_BAD_FORMAT);
    assert_int_equal(PLAIN("\0alice\0\xf4\x90\x80\x80"), AUTH_P_BAD_FORMAT);
    assert_int_equal(PLAIN("\0alice\0pw\xe2\x82"), AUTH_P_BAD_FORMAT);
    assert_int_equal(PLAIN("\xff\0alice\0pw"), AUTH_P_BAD_FORMAT);
    /* Bad base64 */
    assert_int_equal(auth_plain_decode("AGFsaWNlAHNlY3JldA", 18, user, sizeof user, pass,
        sizeof pass), AUTH_P_BAD_B64);
    assert_int_equal(auth_plain_decode("AGFsaWNl AHNlY3JldA==", 21, user, sizeof user, pass,
        sizeof pass), AUTH_P_BAD_B64);
    assert_string_equal(user, "");
    assert_string_equal(pass, "");
}

static void test_plain_lengths(void **state)
{
    char user[AUTH_USER_MAX + 1], pass[AUTH_PASS_MAX + 1];
    static unsigned char msg[AUTH_PLAIN_MAX + 16];
    static char b64[AUTH_PLAIN_B64_MAX + 64];
    size_t n;

    (void)state;
    /* Longest acceptable: authzid = authcid of 255 octets, password of 1024. */
    n = 0;
    memset(msg + n, 'u', AUTH_ZID_MAX);
    n += AUTH_ZID_MAX;
    msg[n++] = '\0';
    memset(msg + n, 'u', AUTH_USER_MAX);
    n += AUTH_USER_MAX;
    msg[n++] = '\0';
    memset(msg + n, 'p', AUTH_PASS_MAX);
    n += AUTH_PASS_MAX;
    assert_int_equal(n, AUTH_PLAIN_MAX);
    enc(msg, n, b64, sizeof b64);
    assert_int_equal(strlen(b64), AUTH_PLAIN_B64_MAX);
    assert_int_equal(plain(msg, n, user, pass), AUTH_P_OK);
    assert_int_equal(strlen(user), AUTH_USER_MAX);
    assert_int_equal(strlen(pass), AUTH_PASS_MAX);

    /* One more octet of password: the input is over AUTH_PLAIN_B64_MAX. */
    msg[n++] = 'p';
    assert_int_equal(plain(msg, n, user, pass), AUTH_P_TOO_LONG);
    /* Input too long even when it is garbage: refused before decoding. */
    memset(b64, '!', AUTH_PLAIN_B64_MAX + 4);
    assert_int_equal(auth_plain_decode(b64, AUTH_PLAIN_B64_MAX + 4, user, sizeof user, pass,
        sizeof pass), AUTH_P_TOO_LONG);

    /* authcid of 256 octets (no authzid, so the payload itself is short enough). */
    n = 0;
    msg[n++] = '\0';
    memset(msg + n, 'u', AUTH_USER_MAX + 1);
    n += AUTH_USER_MAX + 1;
    msg[n++] = '\0';
    msg[n++] = 'p';
    assert_int_equal(plain(msg, n, user, pass), AUTH_P_TOO_LONG);

    /* Password of 1025 octets. */
    n = 0;
    memcpy(msg, "\0alice\0", 7);
    n = 7;
    memset(msg + n, 'p', AUTH_PASS_MAX + 1);
    n += AUTH_PASS_MAX + 1;
    assert_int_equal(plain(msg, n, user, pass), AUTH_P_TOO_LONG);

    /* authzid of 256 octets. */
    memset(msg, 'z', AUTH_ZID_MAX + 1);
    n = AUTH_ZID_MAX + 1;
    memcpy(msg + n, "\0alice\0pw", 9);
    n += 9;
    assert_int_equal(plain(msg, n, user, pass), AUTH_P_TOO_LONG);

    /* The caller's buffers are too small for the values. */
    enc("\0alice\0secret", 13, b64, sizeof b64);
    assert_int_equal(auth_plain_decode(b64, strlen(b64), user, 5, pass, sizeof pass),
        AUTH_P_TOO_LONG);
    assert_int_equal(auth_plain_decode(b64, strlen(b64), user, 6, pass, 6), AUTH_P_TOO_LONG);
    assert_int_equal(auth_plain_decode(b64, strlen(b64), user, 6, pass, 7), AUTH_P_OK);
    assert_string_equal(pass, "secret");
}

/* ---- LOGIN ---- */

static void test_login_decode(void **state)
{
    char out[AUTH_PASS_MAX + 1];
    static unsigned char big[AUTH_PASS_MAX + 1];
    static char b64[2 * AUTH_PASS_MAX];

    (void)state;
    assert_int_equal(auth_login_decode("YWxpY2U=", 8, AUTH_USER_MAX, out, sizeof out),
        AUTH_P_OK);
    assert_string_equal(out, "alice");
    assert_int_equal(auth_login_decode("=", 1, AUTH_USER_MAX, out, sizeof out),
        AUTH_P_BAD_FORMAT);
    assert_int_equal(auth_login_decode("", 0, AUTH_USER_MAX, out, sizeof out),
        AUTH_P_BAD_FORMAT);
    assert_int_equal(auth_login_decode("YWxp", 3, AUTH_USER_MAX, out, sizeof out),
        AUTH_P_BAD_B64);
    enc("al\0ce", 5, b64, sizeof b64);
    assert_int_equal(auth_login_decode(b64, strlen(b64), AUTH_USER_MAX, out, sizeof out),
        AUTH_P_BAD_FORMAT);
    enc("al\xfe", 3, b64, sizeof b64);
    assert_int_equal(auth_login_decode(b64, strlen(b64), AUTH_USER_MAX, out, sizeof out),
        AUTH_P_BAD_FORMAT);
    assert_string_equal(out, "");

    memset(big, 'p', sizeof big);
    enc(big, AUTH_PASS_MAX, b64, sizeof b64);
    assert_int_equal(auth_login_decode(b64, strlen(b64), AUTH_PASS_MAX, out, sizeof out),
        AUTH_P_OK);
    assert_int_equal(strlen(out), AUTH_PASS_MAX);
    enc(big, AUTH_PASS_MAX + 1, b64, sizeof b64);
    assert_int_equal(auth_login_decode(b64, strlen(b64), AUTH_PASS_MAX, out, sizeof out),
        AUTH_P_TOO_LONG);
    /* 256-octet user name */
    enc(big, AUTH_USER_MAX + 1, b64, sizeof b64);
    assert_int_equal(auth_login_decode(b64, strlen(b64), AUTH_USER_MAX, out, sizeof out),
        AUTH_P_TOO_LONG);
    enc(big, AUTH_USER_MAX, b64, sizeof b64);
    assert_int_equal(auth_login_decode(b64, strlen(b64), AUTH_USER_MAX, out, sizeof out),
        AUTH_P_OK);
    assert_int_equal(auth_login_decode(b64, strlen(b64), AUTH_USER_MAX, out, AUTH_USER_MAX),
        AUTH_P_TOO_LONG);
}

/* ---- password file ---- */

static void load_err(const char *name, const char *want)
{
    char path[256];
    struct auth_db *db;

    (void)snprintf(path, sizeof path, "%s/%s", FIXDIR, name);
    err[0] = '\0';
    db = auth_db_load(path, err, sizeof err);
    if (db != NULL)
        fail_msg("%s loaded, wanted \"%s\"", name, want);
    assert_string_equal(err, want);
}

static void test_db_load_errors(void **state)
{
    (void)state;
    load_err("des", FIXDIR "/des:3: user \"bob\": weak hash scheme (DES crypt) refused; "
        "rehash with `postel passwd`");
    load_err("md5", FIXDIR "/md5:3: user \"bob\": weak hash scheme (MD5 crypt) refused; "
        "rehash with `postel passwd`");
    load_err("sha256", FIXDIR "/sha256:1: user \"alice\": weak or unknown hash scheme "
        "refused (use $y$ or $6$; see `postel passwd`)");
    load_err("no_colon", FIXDIR "/no_colon:3: expected \"user:hash\"");
    load_err("dup", FIXDIR "/dup:4: duplicate user \"alice\" (first on line 1)");
    load_err("bad_user", FIXDIR "/bad_user:2: bad user name \"bob smith\"");
    load_err("truncated", FIXDIR "/truncated:1: user \"alice\": truncated or malformed hash");
    load_err("locked", FIXDIR "/locked:1: user \"alice\": locked or disabled entry "
        "(\"!\" or \"*\") not supported; remove the line");
    load_err("empty_hash", FIXDIR "/empty_hash:1: user \"alice\": empty hash");
    load_err("missing", FIXDIR "/missing: No such file or directory");
    assert_null(auth_db_load(FIXDIR, err, sizeof err));
    assert_string_equal(err, FIXDIR ": not a regular file");
}

static void test_db_load_errors_generated(void **state)
{
    static char big[AUTH_LINE_MAX + 64];
    const char *p;

    (void)state;
    {
        FILE *f;
        char path[256];
        (void)snprintf(path, sizeof path, "%s/nul2", tmpdir);
        f = fopen(path, "w");
        assert_non_null(f);
        static const char text[] = "# x\nalice\0:$6$\n";
        assert_int_equal(fwrite(text, 1, sizeof text - 1, f), sizeof text - 1);
        assert_int_equal(fclose(f), 0);
        assert_null(auth_db_load(path, err, sizeof err));
        assert_non_null(strstr(err, "/nul2:2: NUL octet"));
    }
    memset(big, 'a', AUTH_LINE_MAX + 1);
    big[AUTH_LINE_MAX + 1] = '\n';
    p = write_tmp("long", big);
    assert_null(auth_db_load(p, err, sizeof err));
    assert_non_null(strstr(err, "/long:1: line longer than 4096 octets"));
    /* A user name over AUTH_USER_MAX octets. */
    memset(big, 'a', AUTH_USER_MAX + 1);
    (void)snprintf(big + AUTH_USER_MAX + 1, sizeof big - AUTH_USER_MAX - 1, ":%s\n",
        "$6$NEslcjdgjIaOa2vc$PIQWQniZljcLIPwerErWUeHMFlnzzFif70AxqqEEybn7XmQl5oZWEfVE"
        ".NTigJcIHTmmwScJqApschhdrYNPk0");
    p = write_tmp("longuser", big);
    assert_null(auth_db_load(p, err, sizeof err));
    assert_non_null(strstr(err, "/longuser:1: bad user name"));
    p = write_tmp("emptyuser", ":$6$abc\n");
    assert_null(auth_db_load(p, err, sizeof err));
    assert_non_null(strstr(err, "/emptyuser:1: bad user name \"\""));
    p = write_tmp("badutf8", "al\xffice:$6$abc\n");
    assert_null(auth_db_load(p, err, sizeof err));
    assert_non_null(strstr(err, "/badutf8:1: bad user name \"al\\xffice\""));
    p = write_tmp("space_in_hash", "alice:$6$NEslcjdgjIaOa2vc$PIQWQniZljcLIPwer "
        "ErWUeHMFlnzzFif70AxqqEEybn7XmQl5oZWEfVE.NTigJcIHTmmwScJqApschhdrYNPk0\n");
    assert_null(auth_db_load(p, err, sizeof err));
    assert_non_null(strstr(err, "/space_in_hash:1: user \"alice\": bad character in hash"));
    p = write_tmp("sha1", "alice:$sha1$260345$5Qk/5Qk/5Qk/$K7ls17/DDHaLyF/jwczAqb0nX1cz\n");
    assert_null(auth_db_load(p, err, sizeof err));
    assert_non_null(strstr(err, "weak or unknown hash scheme"));
    p = write_tmp("md5sun", "alice:$md5,rounds=34567$5Qk/5Qk/$$TBC79jcWBdCRII3/rD7dW0\n");
    assert_null(auth_db_load(p, err, sizeof err));
    assert_non_null(strstr(err, "MD5"));
}

static void test_db_fixture_good(void **state)
{
    struct auth_db *db;

    (void)state;
    db = auth_db_load(FIXDIR "/good", err, sizeof err);
    if (db == NULL)
        fail_msg("%s", err);
    assert_int_equal(auth_db_count(db), 5);
    assert_true(auth_db_has_user(db, "alice"));
    assert_true(auth_db_has_user(db, "bob"));
    assert_true(auth_db_has_user(db, "carol"));
    assert_true(auth_db_has_user(db, "dave"));
    assert_true(auth_db_has_user(db, "Alice.Smith@example.org"));
    assert_false(auth_db_has_user(db, "Alice"));
    assert_false(auth_db_has_user(db, "eve"));
    assert_false(auth_db_has_user(db, ""));
    assert_true(auth_db_verify(db, "alice", "fixture-password"));       /* $y$ */
    assert_true(auth_db_verify(db, "bob", "fixture-password"));         /* $6$, CRLF line */
    assert_true(auth_db_verify(db, "carol", "other-password"));         /* trailing blanks */
    assert_true(auth_db_verify(db, "dave", "fixture-password"));        /* $2b$ */
    assert_true(auth_db_verify(db, "Alice.Smith@example.org", "fixture-password"));
    assert_false(auth_db_verify(db, "carol", "fixture-password"));
    assert_false(auth_db_verify(db, "alice", "Fixture-password"));
    assert_false(auth_db_verify(db, "ALICE", "fixture-password"));
    assert_false(auth_db_verify(db, "eve", "fixture-password"));
    auth_db_free(db);

    db = auth_db_load(FIXDIR "/empty", err, sizeof err);
    assert_non_null(db);
    assert_int_equal(auth_db_count(db), 0);
    assert_false(auth_db_verify(db, "alice", "fixture-password"));
    auth_db_free(db);
    auth_db_free(NULL);
    assert_false(auth_db_verify(NULL, "alice", "x"));
    assert_false(auth_db_has_user(NULL, "alice"));
}

static void test_db_verify_fresh_hashes(void **state)
{
    char yhash[256], shash[256], setting[CRYPT_GENSALT_OUTPUT_SIZE], file[1024];
    struct crypt_data *cd;
    struct auth_db *db;
    const char *h, *p;
    double t0, known = 1e9, unknown = 1e9;

    (void)state;
    assert_int_equal(auth_hash_password("correct horse battery staple", yhash, sizeof yhash),
        0);
    assert_int_equal(strncmp(yhash, "$y$", 3), 0);
    assert_non_null(crypt_gensalt_rn("$6$", 0, NULL, 0, setting, sizeof setting));
    cd = calloc(1, sizeof *cd);
    assert_non_null(cd);
    h = crypt_r("Tr0ub4dor&3 \xc3\xa9", setting, cd);
    assert_non_null(h);
    assert_int_equal(strncmp(h, "$6$", 3), 0);
    assert_int_equal(str_copy(shash, sizeof shash, h), 0);
    free(cd);

    (void)snprintf(file, sizeof file,
        "# generated\r\n\r\nalice:%s\r\n\t# comment\nbob:%s", yhash, shash);
    p = write_tmp("fresh", file);
    db = auth_db_load(p, err, sizeof err);
    if (db == NULL)
        fail_msg("%s", err);
    assert_int_equal(auth_db_count(db), 2);
    assert_true(auth_db_verify(db, "alice", "correct horse battery staple"));
    assert_true(auth_db_verify(db, "bob", "Tr0ub4dor&3 \xc3\xa9"));
    assert_false(auth_db_verify(db, "alice", "correct horse battery stapl"));
    assert_false(auth_db_verify(db, "alice", "correct horse battery staple "));
    assert_false(auth_db_verify(db, "alice", ""));
    assert_false(auth_db_verify(db, "bob", "Tr0ub4dor&3 \xc3\xa8"));
    assert_false(auth_db_verify(db, "alice", "Tr0ub4dor&3 \xc3\xa9"));
    assert_false(auth_db_verify(db, "mallory", "correct horse battery staple"));
    assert_false(auth_db_verify(db, NULL, "x"));
    assert_false(auth_db_verify(db, "alice", NULL));

    /*
     * An unknown user costs a crypt_r() run too. Without the dummy run it would take
     * microseconds against milliseconds; allow a factor of 10 for noise.
     */
    for (int i = 0; i < 3; i++) {
        double d;
        t0 = mono_now();
        assert_false(auth_db_verify(db, "alice", "wrong password"));
        d = mono_now() - t0;
        known = d < known ? d : known;
        t0 = mono_now();
        assert_false(auth_db_verify(db, "no-such-user", "wrong password"));
        d = mono_now() - t0;
        unknown = d < unknown ? d : unknown;
    }
    if (unknown * 10 < known)
        fail_msg("unknown user took %.6fs, known %.6fs", unknown, known);
    auth_db_free(db);
}

static void test_hash_password(void **state)
{
    char a[256], b[256], small[20];
    struct crypt_data *cd;
    static char huge[AUTH_PASS_MAX + 2];    /* zero-filled: always terminated */

    (void)state;
    assert_int_equal(auth_hash_password("s3cret", a, sizeof a), 0);
    assert_int_equal(auth_hash_password("s3cret", b, sizeof b), 0);
    assert_string_not_equal(a, b);              /* fresh salt each time */
    assert_int_equal(strncmp(a, "$y$", 3), 0);
    assert_true(strlen(a) < 128);
    cd = calloc(1, sizeof *cd);
    assert_non_null(cd);
    assert_string_equal(crypt_r("s3cret", a, cd), a);
    assert_string_equal(crypt_r("s3cret", b, cd), b);
    assert_string_not_equal(crypt_r("s3creT", a, cd), a);
    free(cd);

    errno = 0;
    assert_int_equal(auth_hash_password("", a, sizeof a), -1);
    assert_int_equal(errno, EINVAL);
    /* libxcrypt's limit: 511 octets hash, 512 cannot. */
    memset(huge, 'x', AUTH_HASH_PASS_MAX + 1);
    assert_int_equal(auth_hash_password(huge, a, sizeof a), -1);
    assert_int_equal(errno, EINVAL);
    huge[AUTH_HASH_PASS_MAX] = '\0';
    assert_int_equal(auth_hash_password(huge, a, sizeof a), 0);
    {
        char line[300];
        struct auth_db *db;

        (void)snprintf(line, sizeof line, "u:%s\n", a);
        db = auth_db_load(write_tmp("huge", line), err, sizeof err);
        if (db == NULL)
            fail_msg("%s", err);
        assert_true(auth_db_verify(db, "u", huge));
        huge[AUTH_HASH_PASS_MAX] = 'x';         /* 512 octets: never matches */
        assert_false(auth_db_verify(db, "u", huge));
        memset(huge, 'x', AUTH_PASS_MAX);       /* the longest PLAIN allows */
        assert_false(auth_db_verify(db, "u", huge));
        auth_db_free(db);
    }
    assert_int_equal(auth_hash_password("s3cret", small, sizeof small), -1);
    assert_int_equal(errno, ENOSPC);
    assert_string_equal(small, "");
}

/* ---- throttle ---- */

/* One check of user from addr at now that ends with r, if the gate lets it start. Returns
 * the gate. */
static enum auth_gate attempt(struct auth_throttle *t, const char *addr, const char *user,
    time_t now, enum auth_result r)
{
    enum auth_gate g = auth_throttle_begin(t, addr, user, now);

    if (g == AUTH_GATE_OPEN || g == AUTH_GATE_DELAY)
        auth_throttle_end(t, addr, user, r, now);
    return g;
}

static enum auth_gate failed(struct auth_throttle *t, const char *addr, const char *user,
    time_t now)
{
    return attempt(t, addr, user, now, AUTH_RES_FAIL);
}

static enum auth_gate login(struct auth_throttle *t, const char *addr, const char *user,
    time_t now)
{
    return attempt(t, addr, user, now, AUTH_RES_OK);
}

static void test_throttle_delays(void **state)
{
    struct auth_throttle *t = auth_throttle_new(10, 600, 900);
    static const unsigned want[] = { 1000, 2000, 4000, 8000, 8000, 8000 };
    unsigned d = 42;

    (void)state;
    assert_int_equal(auth_throttle_check(t, "192.0.2.7", "u", 1000, &d), AUTH_GATE_OPEN);
    assert_int_equal(d, 0);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        failed(t, "192.0.2.7", i % 2 ? "u" : "v", 1000 + (time_t)i);
        assert_int_equal(auth_throttle_check(t, "192.0.2.7", "w", 1000 + (time_t)i, &d),
            AUTH_GATE_DELAY);
        assert_int_equal(d, want[i]);
    }
    /* Other addresses are not delayed, not even for the same users; delay_ms may be NULL. */
    assert_int_equal(auth_throttle_check(t, "192.0.2.8", "u", 1010, &d), AUTH_GATE_OPEN);
    assert_int_equal(d, 0);
    assert_int_equal(auth_throttle_check(t, "192.0.2.7", "u", 1010, NULL), AUTH_GATE_DELAY);
    assert_int_equal(auth_throttle_count(t), 1);
    auth_throttle_free(t);
}

static void test_throttle_lockout(void **state)
{
    struct auth_throttle *t = auth_throttle_new(3, 600, 900);
    unsigned d;

    (void)state;
    failed(t, "2001:db8::/64", "alice", 100);
    failed(t, "2001:db8::/64", "bob", 200);
    assert_int_equal(auth_throttle_check(t, "2001:db8::/64", "carol", 250, &d),
        AUTH_GATE_DELAY);
    assert_int_equal(d, 2000);
    /* third failure from the address, whoever the user: locked until 1200, for everyone */
    assert_int_equal(failed(t, "2001:db8::/64", "carol", 300), AUTH_GATE_DELAY);
    assert_int_equal(auth_throttle_check(t, "2001:db8::/64", "dave", 300, &d),
        AUTH_GATE_LOCKED);
    assert_int_equal(d, 0);
    /* A locked address may not start a check, so nothing extends the lockout. */
    assert_int_equal(auth_throttle_begin(t, "2001:db8::/64", "alice", 1000), AUTH_GATE_LOCKED);
    assert_int_equal(auth_throttle_check(t, "2001:db8::/64", "alice", 1199, &d),
        AUTH_GATE_LOCKED);
    assert_int_equal(auth_throttle_check(t, "2001:db8::/64", "alice", 1200, &d),
        AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_count(t), 0);
    /* After the lockout the count starts over. */
    failed(t, "2001:db8::/64", "alice", 1300);
    assert_int_equal(auth_throttle_check(t, "2001:db8::/64", "alice", 1300, &d),
        AUTH_GATE_DELAY);
    assert_int_equal(d, 1000);
    auth_throttle_free(t);

    /* max_failures 0: delays, never a lockout, never busy. */
    t = auth_throttle_new(0, 600, 900);
    for (int i = 0; i < 50; i++)
        assert_int_not_equal(failed(t, "192.0.2.1", "alice", 10 + i), AUTH_GATE_LOCKED);
    for (int i = 0; i < 50; i++)
        assert_int_equal(auth_throttle_begin(t, "192.0.2.1", "alice", 60), AUTH_GATE_DELAY);
    assert_int_equal(auth_throttle_check(t, "192.0.2.1", "alice", 60, &d), AUTH_GATE_DELAY);
    assert_int_equal(d, 8000);
    for (int i = 0; i < 50; i++)
        auth_throttle_end(t, "192.0.2.1", "alice", AUTH_RES_NONE, 60);
    auth_throttle_free(t);
}

static void test_throttle_window(void **state)
{
    struct auth_throttle *t = auth_throttle_new(3, 600, 900);
    unsigned d;

    (void)state;
    failed(t, "a", "ua", 1000);
    failed(t, "a", "ua", 1100);
    assert_int_equal(auth_throttle_check(t, "a", "ua", 1599, &d), AUTH_GATE_DELAY);
    assert_int_equal(d, 2000);
    /* window_s after the first failure everything is forgotten. */
    assert_int_equal(auth_throttle_check(t, "a", "ua", 1600, &d), AUTH_GATE_OPEN);
    assert_int_equal(d, 0);
    assert_int_equal(auth_throttle_count(t), 0);

    /* Three failures inside the window lock; the third just outside starts over. */
    failed(t, "b", "ub", 0 + 5000);
    failed(t, "b", "ub", 300 + 5000);
    failed(t, "b", "ub", 599 + 5000);
    assert_int_equal(auth_throttle_check(t, "b", "ub", 599 + 5000, &d), AUTH_GATE_LOCKED);
    failed(t, "c", "uc", 0 + 5000);
    failed(t, "c", "uc", 300 + 5000);
    failed(t, "c", "uc", 600 + 5000);             /* new window: count 1 */
    assert_int_equal(auth_throttle_check(t, "c", "uc", 600 + 5000, &d), AUTH_GATE_DELAY);
    assert_int_equal(d, 1000);

    /* A clock that goes backwards does not underflow into "expired". */
    assert_int_equal(auth_throttle_check(t, "c", "uc", 10, &d), AUTH_GATE_DELAY);
    assert_int_equal(auth_throttle_check(t, "b", "ub", 10, &d), AUTH_GATE_LOCKED);

    /* Expired entries are swept when later checks come in. */
    assert_int_equal(auth_throttle_count(t), 2);
    failed(t, "d", "ud", 100000);
    assert_int_equal(auth_throttle_count(t), 1);
    auth_throttle_free(t);

    /* window_s 0: throttling off; nothing is counted, not even checks in progress. */
    t = auth_throttle_new(3, 0, 900);
    failed(t, "a", "ua", 1);
    for (int i = 0; i < 10; i++)
        assert_int_equal(auth_throttle_begin(t, "a", "ua", 1), AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_check(t, "a", "ua", 1, &d), AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_count(t), 0);
    auth_throttle_free(t);
}

static void test_throttle_success_clears_only_that_user(void **state)
{
    struct auth_throttle *t = auth_throttle_new(5, 600, 900);
    unsigned d;

    (void)state;
    /* alice forgets her password twice, bob is guessed twice, alice logs in */
    failed(t, "192.0.2.7", "alice", 10);
    failed(t, "192.0.2.7", "alice", 11);
    failed(t, "192.0.2.7", "bob", 12);
    failed(t, "192.0.2.7", "bob", 13);
    assert_int_equal(login(t, "192.0.2.7", "alice", 14), AUTH_GATE_DELAY);
    /* only alice's two are forgiven */
    assert_int_equal(auth_throttle_check(t, "192.0.2.7", "bob", 15, &d), AUTH_GATE_DELAY);
    assert_int_equal(d, 2000);
    /* Guesses at bob, each followed by alice's login, lock after five in all. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(failed(t, "192.0.2.7", "bob", 20 + i), AUTH_GATE_DELAY);
        if (i < 2)
            assert_int_equal(login(t, "192.0.2.7", "alice", 20 + i), AUTH_GATE_DELAY);
    }
    assert_int_equal(login(t, "192.0.2.7", "alice", 30), AUTH_GATE_LOCKED);
    assert_int_equal(auth_throttle_check(t, "192.0.2.7", "bob", 30, &d), AUTH_GATE_LOCKED);
    auth_throttle_free(t);

    /* A login from another address, or by a user without failures here, takes nothing back;
     * a login for a user or address never seen does nothing. */
    t = auth_throttle_new(5, 600, 900);
    failed(t, "192.0.2.7", "alice", 10);
    failed(t, "192.0.2.7", "alice", 11);
    assert_int_equal(login(t, "192.0.2.9", "alice", 12), AUTH_GATE_OPEN);
    assert_int_equal(login(t, "192.0.2.7", "carol", 12), AUTH_GATE_DELAY);
    assert_int_equal(login(t, "198.51.100.1", "zed", 12), AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_check(t, "192.0.2.7", "carol", 13, &d), AUTH_GATE_DELAY);
    assert_int_equal(d, 2000);
    assert_int_equal(auth_throttle_count(t), 1);
    /* alice's own login here does. */
    assert_int_equal(login(t, "192.0.2.7", "alice", 14), AUTH_GATE_DELAY);
    assert_int_equal(auth_throttle_check(t, "192.0.2.7", "carol", 15, &d), AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_count(t), 0);
    auth_throttle_free(t);
    auth_throttle_free(NULL);

    /* Failures of an earlier window are not taken back from a later one. */
    t = auth_throttle_new(5, 600, 900);
    failed(t, "192.0.2.7", "alice", 0);           /* window 0..599 */
    failed(t, "192.0.2.7", "bob", 600);           /* a new window */
    failed(t, "192.0.2.7", "bob", 601);
    failed(t, "192.0.2.7", "bob", 602);
    login(t, "192.0.2.7", "alice", 603);
    assert_int_equal(auth_throttle_check(t, "192.0.2.7", "bob", 604, &d), AUTH_GATE_DELAY);
    assert_int_equal(d, 4000);
    auth_throttle_free(t);
}

static void test_throttle_user_bucket(void **state)
{
    struct auth_throttle *t = auth_throttle_new(2, 600, 900);
    char a[32];
    unsigned d;

    (void)state;
    /* One guess at alice from each of 7 addresses: each address has one of its two ... */
    for (int i = 1; i <= 7; i++) {
        (void)snprintf(a, sizeof a, "10.0.0.%d", i);
        assert_int_equal(failed(t, a, "alice", 100 + i), AUTH_GATE_OPEN);
    }
    /* ... and alice has 7 of her 2 * AUTH_USER_FACTOR = 8. Her login from 10.0.0.1 takes
     * back the one from there. */
    assert_int_equal(AUTH_USER_FACTOR, 4);
    assert_int_equal(login(t, "10.0.0.1", "alice", 110), AUTH_GATE_DELAY);
    assert_int_equal(failed(t, "10.0.0.8", "alice", 111), AUTH_GATE_OPEN);        /* 7 */
    assert_int_equal(auth_throttle_check(t, "10.0.0.10", "alice", 112, &d), AUTH_GATE_OPEN);
    assert_int_equal(failed(t, "10.0.0.9", "alice", 112), AUTH_GATE_OPEN);        /* 8 */
    /* alice is locked out from everywhere now, even from an address without failures ... */
    assert_int_equal(auth_throttle_check(t, "10.0.0.10", "alice", 113, &d), AUTH_GATE_LOCKED);
    assert_int_equal(auth_throttle_begin(t, "10.0.0.1", "alice", 113), AUTH_GATE_LOCKED);
    /* ... until lockout_s after the failure that reached the limit; other users are not. */
    assert_int_equal(auth_throttle_check(t, "10.0.0.10", "bob", 113, &d), AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_check(t, "10.0.0.10", "alice", 112 + 899, &d),
        AUTH_GATE_LOCKED);
    assert_int_equal(auth_throttle_check(t, "10.0.0.10", "alice", 112 + 900, &d),
        AUTH_GATE_OPEN);
    auth_throttle_free(t);
}

static void test_throttle_checks_in_progress(void **state)
{
    struct auth_throttle *t = auth_throttle_new(5, 600, 900);
    unsigned d;
    int started = 0;

    (void)state;
    /* 40 parallel checks from one address: 5 may start, none of them has failed yet. */
    for (int i = 0; i < 40; i++) {
        enum auth_gate g = auth_throttle_begin(t, "192.0.2.7", i % 3 ? "bob" : "carol", 10);

        if (g == AUTH_GATE_OPEN)
            started++;
        else
            assert_int_equal(g, AUTH_GATE_BUSY);
    }
    assert_int_equal(started, 5);
    assert_int_equal(auth_throttle_check(t, "192.0.2.7", "dave", 10, &d), AUTH_GATE_BUSY);
    assert_int_equal(d, 0);
    assert_int_equal(auth_throttle_check(t, "192.0.2.8", "bob", 10, &d), AUTH_GATE_OPEN);
    /* Three fail: 3 failed + 2 running is still the limit. */
    for (int i = 0; i < 3; i++)
        auth_throttle_end(t, "192.0.2.7", i % 3 ? "bob" : "carol", AUTH_RES_FAIL, 11);
    assert_int_equal(auth_throttle_check(t, "192.0.2.7", "bob", 11, &d), AUTH_GATE_BUSY);
    assert_int_equal(d, 4000);
    /* One did not run after all: one more may start. */
    auth_throttle_end(t, "192.0.2.7", "bob", AUTH_RES_NONE, 12);
    assert_int_equal(auth_throttle_begin(t, "192.0.2.7", "bob", 12), AUTH_GATE_DELAY);
    assert_int_equal(auth_throttle_begin(t, "192.0.2.7", "bob", 12), AUTH_GATE_BUSY);
    /* Both running fail: five failures, locked. */
    auth_throttle_end(t, "192.0.2.7", "bob", AUTH_RES_FAIL, 13);
    auth_throttle_end(t, "192.0.2.7", "bob", AUTH_RES_FAIL, 13);
    assert_int_equal(auth_throttle_check(t, "192.0.2.7", "bob", 13, &d), AUTH_GATE_LOCKED);
    auth_throttle_free(t);

    /* Checks that succeed leave nothing behind. */
    t = auth_throttle_new(5, 600, 900);
    for (int i = 0; i < 5; i++)
        assert_int_equal(auth_throttle_begin(t, "192.0.2.7", "alice", 10), AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_begin(t, "192.0.2.7", "alice", 10), AUTH_GATE_BUSY);
    assert_int_equal(auth_throttle_count(t), 1);
    for (int i = 0; i < 5; i++)
        auth_throttle_end(t, "192.0.2.7", "alice", AUTH_RES_OK, 11);
    assert_int_equal(auth_throttle_count(t), 0);
    assert_int_equal(auth_throttle_check(t, "192.0.2.7", "alice", 11, &d), AUTH_GATE_OPEN);
    /* The user's limit counts checks in progress from any address. */
    auth_throttle_free(t);
    t = auth_throttle_new(1, 600, 900);
    assert_int_equal(auth_throttle_begin(t, "10.0.0.1", "alice", 10), AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_begin(t, "10.0.0.1", "bob", 10), AUTH_GATE_BUSY);
    for (int i = 2; i <= 4; i++) {
        char a[32];

        (void)snprintf(a, sizeof a, "10.0.0.%d", i);
        assert_int_equal(auth_throttle_begin(t, a, "alice", 10), AUTH_GATE_OPEN);
    }
    assert_int_equal(auth_throttle_begin(t, "10.0.0.5", "alice", 10), AUTH_GATE_BUSY);
    assert_int_equal(auth_throttle_begin(t, "10.0.0.5", "bob", 10), AUTH_GATE_OPEN);
    auth_throttle_free(t);                      /* with checks in progress: no leak */
}

static void test_throttle_full_of_checks_in_progress(void **state)
{
    struct auth_throttle *t = auth_throttle_new(0, 600, 900);
    char a[32];

    (void)state;
    for (unsigned i = 0; i < AUTH_THROTTLE_MAX; i++) {
        (void)snprintf(a, sizeof a, "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
        assert_int_equal(auth_throttle_begin(t, a, a, 10), AUTH_GATE_OPEN);
    }
    /* Entries with checks in progress are never evicted: no room, refused. */
    assert_int_equal(auth_throttle_begin(t, "192.0.2.1", "x", 10), AUTH_GATE_BUSY);
    assert_int_equal(auth_throttle_count(t), AUTH_THROTTLE_MAX);
    auth_throttle_end(t, "10.0.0.0", "10.0.0.0", AUTH_RES_FAIL, 11);
    /* A failed one has no check in progress any more: it can go to make room. */
    assert_int_equal(auth_throttle_begin(t, "192.0.2.1", "x", 12), AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_check(t, "10.0.0.0", "10.0.0.0", 12, NULL), AUTH_GATE_OPEN);
    auth_throttle_free(t);
}

static void test_throttle_eviction(void **state)
{
    struct auth_throttle *t = auth_throttle_new(5, 3600, 900);
    char addr[64];
    unsigned d;

    (void)state;
    for (unsigned i = 0; i < AUTH_THROTTLE_MAX; i++) {
        (void)snprintf(addr, sizeof addr, "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
        failed(t, addr, addr, 1000 + (time_t)(i / 100));
    }
    assert_int_equal(auth_throttle_count(t), AUTH_THROTTLE_MAX);
    /* Touch the oldest one again: it becomes the newest. */
    failed(t, "10.0.0.0", "10.0.0.0", 1200);
    assert_int_equal(auth_throttle_count(t), AUTH_THROTTLE_MAX);
    failed(t, "192.0.2.1", "192.0.2.1", 1200);
    failed(t, "192.0.2.2", "192.0.2.2", 1200);
    assert_int_equal(auth_throttle_count(t), AUTH_THROTTLE_MAX);
    /* The two with the oldest last failure went: 10.0.0.1 and 10.0.0.2. */
    assert_int_equal(auth_throttle_check(t, "10.0.0.1", "x", 1200, &d), AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_check(t, "10.0.0.2", "x", 1200, &d), AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_check(t, "10.0.0.0", "x", 1200, &d), AUTH_GATE_DELAY);
    assert_int_equal(d, 2000);
    assert_int_equal(auth_throttle_check(t, "10.0.0.3", "x", 1200, &d), AUTH_GATE_DELAY);
    assert_int_equal(auth_throttle_check(t, "10.0.39.15", "x", 1200, &d), AUTH_GATE_DELAY);
    assert_int_equal(auth_throttle_check(t, "192.0.2.2", "x", 1200, &d), AUTH_GATE_DELAY);
    /* Entries stay bounded under a flood of new addresses and users. */
    for (unsigned i = 0; i < 3 * AUTH_THROTTLE_MAX; i++) {
        (void)snprintf(addr, sizeof addr, "flood-%u", i);
        failed(t, addr, addr, 1300);
    }
    assert_int_equal(auth_throttle_count(t), AUTH_THROTTLE_MAX);
    /* All expire together once the window has passed. */
    failed(t, "late", "late", 1300 + 3600);
    assert_int_equal(auth_throttle_count(t), 1);
    auth_throttle_free(t);
}

static void test_throttle_long_key(void **state)
{
    struct auth_throttle *t = auth_throttle_new(3, 600, 900);
    char a[200], b[200], u[1000];
    unsigned d;

    (void)state;
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[150] = 'y';                               /* differs after AUTH_ADDR_MAX - 1 octets */
    memset(u, 'u', sizeof u - 1);
    u[sizeof u - 1] = '\0';
    failed(t, a, u, 1);
    assert_int_equal(auth_throttle_check(t, b, "x", 1, &d), AUTH_GATE_DELAY);
    /* user names are cut at AUTH_USER_MAX octets; a login takes back what it added */
    u[AUTH_USER_MAX + 10] = 'v';
    assert_int_equal(login(t, b, u, 2), AUTH_GATE_DELAY);
    assert_int_equal(auth_throttle_check(t, a, NULL, 3, &d), AUTH_GATE_OPEN);
    assert_int_equal(auth_throttle_count(t), 0);
    auth_throttle_free(t);
}

/* ---- sender-login map ---- */

static bool local_domain(const char *domain, void *ctx)
{
    (void)ctx;
    return str_ieq(domain, strlen(domain), "example.org") ||
           str_ieq(domain, strlen(domain), "example.net");
}

static void test_sender_default_rule(void **state)
{
    (void)state;
    assert_true(auth_sender_ok(NULL, "carol", "carol@example.org", local_domain, NULL));
    assert_true(auth_sender_ok(NULL, "carol", "carol@example.net", local_domain, NULL));
    assert_true(auth_sender_ok(NULL, "carol", "Carol@EXAMPLE.org", local_domain, NULL));
    assert_false(auth_sender_ok(NULL, "carol", "carol@remote.example", local_domain, NULL));
    assert_false(auth_sender_ok(NULL, "carol", "dave@example.org", local_domain, NULL));
    assert_false(auth_sender_ok(NULL, "carol", "carol+tag@example.org", local_domain, NULL));
    assert_false(auth_sender_ok(NULL, "carol", "carolx@example.org", local_domain, NULL));
    assert_false(auth_sender_ok(NULL, "carol", "caro@example.org", local_domain, NULL));
    /* The null sender and malformed senders are refused on submission. */
    assert_false(auth_sender_ok(NULL, "carol", "", local_domain, NULL));
    assert_false(auth_sender_ok(NULL, "carol", "carol", local_domain, NULL));
    assert_false(auth_sender_ok(NULL, "carol", "@example.org", local_domain, NULL));
    assert_false(auth_sender_ok(NULL, "carol", "carol@", local_domain, NULL));
    assert_false(auth_sender_ok(NULL, "", "@example.org", local_domain, NULL));
    assert_false(auth_sender_ok(NULL, NULL, "carol@example.org", local_domain, NULL));
    /* No local-domain predicate: the default rule never applies. */
    assert_false(auth_sender_ok(NULL, "carol", "carol@example.org", NULL, NULL));
    /* Login names that are addresses. */
    assert_true(auth_sender_ok(NULL, "frank@example.org", "frank@example.org", local_domain,
        NULL));
    assert_true(auth_sender_ok(NULL, "frank@example.org", "Frank@Example.ORG", local_domain,
        NULL));
    assert_false(auth_sender_ok(NULL, "frank@example.org", "frank@example.net", local_domain,
        NULL));
    assert_false(auth_sender_ok(NULL, "frank@remote.example", "frank@remote.example",
        local_domain, NULL));
}

static void test_sender_map(void **state)
{
    struct auth_senders *s;
    const char *p;

    (void)state;
    p = write_tmp("senders",
        "# who may send as what\n"
        "postmaster@example.org alice, bob\n"
        "\n"
        "Shared@Example.ORG\tcarol,dave\r\n"
        "  @sales.example.org eve\n"
        "alice@example.org bob\n"
        "info@remote.example carol\n");
    s = auth_senders_load(p, err, sizeof err);
    if (s == NULL)
        fail_msg("%s", err);
    /* Explicit entries, case-insensitive addresses, case-sensitive users. */
    assert_true(auth_sender_ok(s, "alice", "postmaster@example.org", local_domain, NULL));
    assert_true(auth_sender_ok(s, "bob", "PostMaster@example.ORG", local_domain, NULL));
    assert_false(auth_sender_ok(s, "carol", "postmaster@example.org", local_domain, NULL));
    assert_false(auth_sender_ok(s, "Alice", "postmaster@example.org", local_domain, NULL));
    assert_true(auth_sender_ok(s, "carol", "shared@example.org", local_domain, NULL));
    assert_true(auth_sender_ok(s, "dave", "SHARED@example.org", local_domain, NULL));
    assert_true(auth_sender_ok(s, "carol", "info@remote.example", local_domain, NULL));
    assert_false(auth_sender_ok(s, "dave", "info@remote.example", local_domain, NULL));
    /* An exact entry overrides the default rule: alice@ was given to bob. */
    assert_false(auth_sender_ok(s, "alice", "alice@example.org", local_domain, NULL));
    assert_true(auth_sender_ok(s, "bob", "alice@example.org", local_domain, NULL));
    /* The default rule still applies to addresses the map does not mention. */
    assert_true(auth_sender_ok(s, "alice", "alice@example.net", local_domain, NULL));
    assert_true(auth_sender_ok(s, "bob", "bob@example.org", local_domain, NULL));
    /* Another user's address is refused. */
    assert_false(auth_sender_ok(s, "alice", "bob@example.org", local_domain, NULL));
    /* Domain-wide entries. */
    assert_true(auth_sender_ok(s, "eve", "anyone@sales.example.org", local_domain, NULL));
    assert_true(auth_sender_ok(s, "eve", "x@SALES.example.org", local_domain, NULL));
    assert_false(auth_sender_ok(s, "alice", "alice@sales.example.org", local_domain, NULL));
    assert_false(auth_sender_ok(s, "eve", "eve@sub.sales.example.org", local_domain, NULL));
    /* Null sender refused even for listed users. */
    assert_false(auth_sender_ok(s, "eve", "", local_domain, NULL));
    auth_senders_free(s);
    auth_senders_free(NULL);
}

static void sender_err(const char *content, const char *want)
{
    const char *p = write_tmp("senders_bad", content);
    char full[512];

    (void)snprintf(full, sizeof full, "%s/senders_bad:%s", tmpdir, want);
    err[0] = '\0';
    if (auth_senders_load(p, err, sizeof err) != NULL)
        fail_msg("loaded, wanted \"%s\"", full);
    assert_string_equal(err, full);
}

static void test_sender_map_errors(void **state)
{
    (void)state;
    sender_err("a@example.org alice\nexample.org alice\n",
        "2: bad address \"example.org\"");
    sender_err("a@b@example.org alice\n", "1: bad address \"a@b@example.org\"");
    sender_err("<a@example.org> alice\n", "1: bad address \"<a@example.org>\"");
    sender_err("a@ alice\n", "1: bad address \"a@\"");
    sender_err("# c\na@example.org\n", "2: no users for \"a@example.org\"");
    sender_err("a@example.org alice,,bob\n", "1: bad user name \"\"");
    sender_err("a@example.org alice,\n", "1: bad user name \"\"");
    sender_err("a@example.org alice bob\n", "1: bad user name \"alice bob\"");
    sender_err("a@example.org alice:x\n", "1: bad user name \"alice:x\"");
    sender_err("a@example.org alice\nb@example.org bob\nA@Example.org carol\n",
        "3: duplicate address \"a@example.org\" (first on line 1)");
    assert_null(auth_senders_load("policy/fixtures/passwd/nonexistent", err, sizeof err));
    assert_string_equal(err, "policy/fixtures/passwd/nonexistent: No such file or directory");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_rfc4648_vectors),
        cmocka_unit_test(test_b64_empty_response),
        cmocka_unit_test(test_b64_invalid),
        cmocka_unit_test(test_b64_output_too_small),
        cmocka_unit_test(test_b64_binary_roundtrip_and_cap),
        cmocka_unit_test(test_login_challenges),
        cmocka_unit_test(test_plain_good),
        cmocka_unit_test(test_plain_authzid),
        cmocka_unit_test(test_plain_format),
        cmocka_unit_test(test_plain_lengths),
        cmocka_unit_test(test_login_decode),
        cmocka_unit_test(test_db_load_errors),
        cmocka_unit_test(test_db_load_errors_generated),
        cmocka_unit_test(test_db_fixture_good),
        cmocka_unit_test(test_db_verify_fresh_hashes),
        cmocka_unit_test(test_hash_password),
        cmocka_unit_test(test_throttle_delays),
        cmocka_unit_test(test_throttle_lockout),
        cmocka_unit_test(test_throttle_window),
        cmocka_unit_test(test_throttle_success_clears_only_that_user),
        cmocka_unit_test(test_throttle_user_bucket),
        cmocka_unit_test(test_throttle_checks_in_progress),
        cmocka_unit_test(test_throttle_full_of_checks_in_progress),
        cmocka_unit_test(test_throttle_eviction),
        cmocka_unit_test(test_throttle_long_key),
        cmocka_unit_test(test_sender_default_rule),
        cmocka_unit_test(test_sender_map),
        cmocka_unit_test(test_sender_map_errors),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
