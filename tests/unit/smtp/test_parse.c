/*
 * tests/unit/smtp/test_parse.c - smtp/parse: verbs, paths, parameters, xtext, replies.
 *
 * Every input is handed over in a heap block of exactly its length (no terminator), so a
 * SANITIZE=1 build catches any read past n.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/parse.h"
#include "util/buf.h"

/* ---- helpers ---- */

static char *exact(const char *s, size_t n)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    if (n > 0)
        memcpy(p, s, n);
    return p;
}

static void check_cmd_n(const char *line, size_t n, enum smtp_verb v, const char *arg)
{
    char *c = exact(line, n);
    struct smtp_cmd cmd;
    assert_int_equal(smtp_parse_cmd(c, n, &cmd), 0);
    assert_int_equal(cmd.verb, v);
    assert_int_equal(cmd.arglen, strlen(arg));
    assert_true(cmd.arg >= c && cmd.arg + cmd.arglen <= c + n);
    if (cmd.arglen > 0)
        assert_memory_equal(cmd.arg, arg, cmd.arglen);
    free(c);
}

static void check_cmd(const char *line, enum smtp_verb v, const char *arg)
{
    check_cmd_n(line, strlen(line), v, arg);
}

static enum smtp_perr path_n(const char *s, size_t n, bool rev, bool utf8, struct smtp_path *p,
    size_t *end)
{
    char *c = exact(s, n);
    enum smtp_perr r = smtp_parse_path(c, n, rev, utf8, p, end);
    free(c);
    return r;
}

/* Parse s as a whole path: on success the whole string must be consumed. */
static enum smtp_perr path(const char *s, bool rev, bool utf8, struct smtp_path *p)
{
    size_t end = 99999;
    enum smtp_perr r = path_n(s, strlen(s), rev, utf8, p, &end);
    if (r == SMTP_PERR_OK)
        assert_int_equal(end, strlen(s));
    return r;
}

static enum smtp_perr fwd(const char *s)
{
    struct smtp_path p;
    return path(s, false, false, &p);
}

static enum smtp_perr fwd8(const char *s)
{
    struct smtp_path p;
    return path(s, false, true, &p);
}

static enum smtp_perr mail_n(const char *s, size_t n, struct smtp_mail_args *a)
{
    char *c = exact(s, n);
    enum smtp_perr r = smtp_parse_mail(c, n, a);
    free(c);
    return r;
}

static enum smtp_perr mail(const char *s, struct smtp_mail_args *a)
{
    return mail_n(s, strlen(s), a);
}

static enum smtp_perr mail1(const char *s)
{
    struct smtp_mail_args a;
    return mail(s, &a);
}

static enum smtp_perr rcpt(const char *s, bool utf8, struct smtp_rcpt_args *a)
{
    size_t n = strlen(s);
    char *c = exact(s, n);
    enum smtp_perr r = smtp_parse_rcpt(c, n, utf8, a);
    free(c);
    return r;
}

static enum smtp_perr rcpt1(const char *s)
{
    struct smtp_rcpt_args a;
    return rcpt(s, false, &a);
}

static bool dom_ok(const char *s, bool utf8)
{
    size_t n = strlen(s);
    char *c = exact(s, n);
    bool r = smtp_domain_valid(c, n, utf8);
    free(c);
    return r;
}

static bool helo_ok(const char *s)
{
    size_t n = strlen(s);
    char *c = exact(s, n);
    bool r = smtp_helo_valid(c, n);
    free(c);
    return r;
}

static bool utf8_ok(const char *s)
{
    size_t n = strlen(s);
    char *c = exact(s, n);
    bool r = smtp_utf8_valid(c, n);
    free(c);
    return r;
}

/* A domain of exactly n octets: labels of 'd' separated by dots, never ending in one. */
static void mk_domain(char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (i % 64 == 63 && i + 1 < n) ? '.' : 'd';
    out[n] = '\0';
}

/* "<" + local of ln 'l' + "@" + domain of dn octets + ">" into out. */
static void mk_path(char *out, size_t ln, size_t dn)
{
    size_t o = 0;
    out[o++] = '<';
    memset(out + o, 'l', ln);
    o += ln;
    out[o++] = '@';
    mk_domain(out + o, dn);
    o += dn;
    out[o++] = '>';
    out[o] = '\0';
}

/* ---- verbs ---- */

static void test_verbs_all(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum smtp_verb v;
    } t[] = {
        { "HELO", SMTP_VERB_HELO }, { "EHLO", SMTP_VERB_EHLO }, { "MAIL", SMTP_VERB_MAIL },
        { "RCPT", SMTP_VERB_RCPT }, { "DATA", SMTP_VERB_DATA }, { "BDAT", SMTP_VERB_BDAT },
        { "RSET", SMTP_VERB_RSET }, { "NOOP", SMTP_VERB_NOOP }, { "QUIT", SMTP_VERB_QUIT },
        { "VRFY", SMTP_VERB_VRFY }, { "EXPN", SMTP_VERB_EXPN }, { "HELP", SMTP_VERB_HELP },
        { "SEND", SMTP_VERB_SEND }, { "SOML", SMTP_VERB_SOML }, { "SAML", SMTP_VERB_SAML },
        { "TURN", SMTP_VERB_TURN }, { "STARTTLS", SMTP_VERB_STARTTLS },
        { "AUTH", SMTP_VERB_AUTH }, { "ETRN", SMTP_VERB_ETRN },
        { "GET", SMTP_VERB_HTTP }, { "POST", SMTP_VERB_HTTP }, { "HEAD", SMTP_VERB_HTTP },
        { "PUT", SMTP_VERB_HTTP }, { "CONNECT", SMTP_VERB_HTTP },
        { "OPTIONS", SMTP_VERB_HTTP }, { "DELETE", SMTP_VERB_HTTP },
        { "TRACE", SMTP_VERB_HTTP }, { "PATCH", SMTP_VERB_HTTP },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        char line[64], lower[64], mixed[64];
        size_t n = strlen(t[i].name);
        memcpy(line, t[i].name, n + 1);
        for (size_t k = 0; k <= n; k++) {
            char c = line[k];
            lower[k] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            mixed[k] = (k % 2 && c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        check_cmd(line, t[i].v, "");
        check_cmd(lower, t[i].v, "");
        check_cmd(mixed, t[i].v, "");
        /* with an argument */
        memcpy(line + n, " x y", 5);
        check_cmd(line, t[i].v, "x y");
        /* verb glued to more letters: unknown */
        memcpy(line + n, "X", 2);
        check_cmd(line, SMTP_VERB_UNKNOWN, "");
    }
}

static void test_verbs_args(void **state)
{
    (void)state;
    check_cmd("HELO client.example", SMTP_VERB_HELO, "client.example");
    check_cmd("ehlo client.example  ", SMTP_VERB_EHLO, "client.example");
    check_cmd("MAIL FROM:<a@b.example> SIZE=10", SMTP_VERB_MAIL, "FROM:<a@b.example> SIZE=10");
    check_cmd("rcpt TO:<a@b.example>", SMTP_VERB_RCPT, "TO:<a@b.example>");
    check_cmd("MAIL  FROM:<>", SMTP_VERB_MAIL, "FROM:<>");
    check_cmd("HELO   client.example", SMTP_VERB_HELO, "client.example");
    check_cmd("QUIT ", SMTP_VERB_QUIT, "");
    check_cmd("DATA  ", SMTP_VERB_DATA, "");
    check_cmd("DATA x", SMTP_VERB_DATA, "x");
    check_cmd("BDAT 100 LAST", SMTP_VERB_BDAT, "100 LAST");
    check_cmd("GET / HTTP/1.1", SMTP_VERB_HTTP, "/ HTTP/1.1");
    check_cmd("CONNECT mx.example:25 HTTP/1.0", SMTP_VERB_HTTP, "mx.example:25 HTTP/1.0");
    check_cmd("post /x", SMTP_VERB_HTTP, "/x");
    check_cmd("MAILX", SMTP_VERB_UNKNOWN, "");
    check_cmd("MAILX FROM:<a@b>", SMTP_VERB_UNKNOWN, "FROM:<a@b>");
    check_cmd("MAI", SMTP_VERB_UNKNOWN, "");
    check_cmd("GETS /", SMTP_VERB_UNKNOWN, "/");
    check_cmd("", SMTP_VERB_UNKNOWN, "");
    check_cmd(" QUIT", SMTP_VERB_UNKNOWN, "QUIT");
    check_cmd("QUIT\t", SMTP_VERB_UNKNOWN, "");
    check_cmd("STARTTLSX", SMTP_VERB_UNKNOWN, "");
    check_cmd("XYZZY plugh", SMTP_VERB_UNKNOWN, "plugh");
    check_cmd_n("QU\0T", 4, SMTP_VERB_UNKNOWN, "");
    check_cmd_n("QUIT\0", 5, SMTP_VERB_UNKNOWN, "");

    /* a NUL in the argument is passed on as it is */
    struct smtp_cmd c;
    assert_int_equal(smtp_parse_cmd("NOOP \0x", 7, &c), 0);
    assert_int_equal(c.verb, SMTP_VERB_NOOP);
    assert_int_equal(c.arglen, 2);
    assert_memory_equal(c.arg, "\0x", 2);

    /* arg points just after the SPs that follow the verb, and at the end without one */
    const char *line = "VRFY  bob ";
    assert_int_equal(smtp_parse_cmd(line, strlen(line), &c), 0);
    assert_ptr_equal(c.arg, line + 6);
    assert_int_equal(c.arglen, 3);
    assert_int_equal(smtp_parse_cmd("RSET", 4, &c), 0);
    assert_int_equal(c.verb, SMTP_VERB_RSET);
    assert_int_equal(c.arglen, 0);
    /* length is respected: "NOOPX" cut to 4 is NOOP */
    assert_int_equal(smtp_parse_cmd("NOOPX", 4, &c), 0);
    assert_int_equal(c.verb, SMTP_VERB_NOOP);
}

/* ---- paths ---- */

static void test_path_simple(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(path("<a@b.example>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.local, "a");
    assert_string_equal(p.domain, "b.example");
    assert_string_equal(p.addr, "a@b.example");
    assert_false(p.null);
    assert_false(p.postmaster);
    assert_false(p.utf8);
    assert_false(p.literal);

    assert_int_equal(path("<Joe.Smith@Example.COM>", true, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.local, "Joe.Smith");
    assert_string_equal(p.domain, "Example.COM");
    assert_string_equal(p.addr, "Joe.Smith@Example.COM");

    assert_int_equal(path("<!#$%&'*+-/=?^_`{|}~@x.example>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.addr, "!#$%&'*+-/=?^_`{|}~@x.example");

    assert_int_equal(path("<a.b.c@x>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.addr, "a.b.c@x");

    /* text after the path is left to the caller */
    size_t end = 0;
    assert_int_equal(path_n("<a@b> SIZE=1", 12, true, false, &p, &end), SMTP_PERR_OK);
    assert_int_equal(end, 5);
    assert_string_equal(p.addr, "a@b");
}

static void test_path_quoted(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(path("<\"john smith\"@example.com>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.local, "john smith");
    assert_string_equal(p.addr, "\"john smith\"@example.com");

    /* quoting that is not needed is dropped in the canonical form */
    assert_int_equal(path("<\"john\"@example.com>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.local, "john");
    assert_string_equal(p.addr, "john@example.com");
    assert_int_equal(path("<\"j\\ohn\"@example.com>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.local, "john");
    assert_string_equal(p.addr, "john@example.com");

    /* escapes decoded; only " and \ re-escaped */
    assert_int_equal(path("<\"a\\\"b\\\\c\"@x.example>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.local, "a\"b\\c");
    assert_string_equal(p.addr, "\"a\\\"b\\\\c\"@x.example");
    assert_int_equal(path("<\"a\\ b\"@x>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.local, "a b");
    assert_string_equal(p.addr, "\"a b\"@x");

    assert_int_equal(path("<\"\"@x.example>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.local, "");
    assert_string_equal(p.addr, "\"\"@x.example");
    assert_int_equal(path("<\".a\"@x>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.addr, "\".a\"@x");
    assert_int_equal(path("<\"a..b\"@x>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.addr, "\"a..b\"@x");
    assert_int_equal(path("<\"a@b\"@x>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.local, "a@b");
    assert_string_equal(p.addr, "\"a@b\"@x");

    /* '>' inside a quoted string does not end the path */
    size_t end = 0;
    assert_int_equal(path_n("<\"a>b\"@x> X", 11, true, false, &p, &end), SMTP_PERR_OK);
    assert_int_equal(end, 9);
    assert_string_equal(p.local, "a>b");

    assert_int_equal(fwd("<\"abc@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<\"abc\\"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<\"a\tb\"@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<\"a\\\tb\"@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<\"a\x7f\"@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<\"a\"b@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a\"b\"@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(path_n("<\"a\0\"@x>", 8, false, false, &p, &end), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(path_n("<\"a\\\0\"@x>", 9, false, false, &p, &end),
        SMTP_PERR_PATH_SYNTAX);
}

static void test_path_dot_string(void **state)
{
    (void)state;
    assert_int_equal(fwd("<.a@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a.@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a..b@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<.@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a b@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a(b)@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a,b@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a\\b@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@b@x>"), SMTP_PERR_PATH_SYNTAX);
    size_t end;
    struct smtp_path p;
    assert_int_equal(path_n("<a\0b@x>", 7, false, false, &p, &end), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(path_n("<ab@x\0>", 7, false, false, &p, &end), SMTP_PERR_PATH_SYNTAX);
}

static void test_path_brackets(void **state)
{
    (void)state;
    assert_int_equal(fwd("a@b.example"), SMTP_PERR_SYNTAX);
    assert_int_equal(fwd("a@b.example>"), SMTP_PERR_SYNTAX);
    assert_int_equal(fwd(""), SMTP_PERR_SYNTAX);
    assert_int_equal(fwd(" <a@b.example>"), SMTP_PERR_SYNTAX);
    assert_int_equal(fwd("<a@b.example"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("< a@b.example>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@b.example >"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a @b.example>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@ b.example>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<<a@x>>"), SMTP_PERR_PATH_SYNTAX);
}

static void test_path_domain(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(fwd("<a@x.example.>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@.x.example>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@x..example>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@-x.example>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@x-.example>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@x.example->"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@x_y.example>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@x-y.example>"), SMTP_PERR_OK);
    assert_int_equal(fwd("<a@x--y.example>"), SMTP_PERR_OK);
    assert_int_equal(fwd("<a@123.example>"), SMTP_PERR_OK);
    assert_int_equal(fwd("<a@1.2.3.4>"), SMTP_PERR_OK);
    assert_int_equal(path("<a@localhost>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.domain, "localhost");
    assert_false(p.literal);
}

static void test_path_literal(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(path("<a@[192.0.2.1]>", false, false, &p), SMTP_PERR_OK);
    assert_true(p.literal);
    assert_string_equal(p.domain, "[192.0.2.1]");
    assert_string_equal(p.addr, "a@[192.0.2.1]");
    assert_int_equal(fwd("<a@[255.255.255.255]>"), SMTP_PERR_OK);
    assert_int_equal(fwd("<a@[0.0.0.0]>"), SMTP_PERR_OK);
    assert_int_equal(fwd("<a@[010.1.1.1]>"), SMTP_PERR_OK);
    assert_int_equal(fwd("<a@[256.1.1.1]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[1.1.1.256]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[1.2.3]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[1.2.3.4.5]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[1.2.3.]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[1..2.3]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[1.2.3.0004]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[1.2.3.4>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[1.2.3.4]x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[1.2.3.4"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[a b]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[a[b]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@x.[1.2.3.4]>"), SMTP_PERR_PATH_SYNTAX);

    assert_int_equal(path("<a@[IPv6:2001:db8::1]>", false, false, &p), SMTP_PERR_OK);
    assert_true(p.literal);
    assert_string_equal(p.domain, "[IPv6:2001:db8::1]");
    assert_string_equal(p.addr, "a@[IPv6:2001:db8::1]");
    assert_int_equal(fwd("<a@[ipv6:::1]>"), SMTP_PERR_OK);
    assert_int_equal(fwd("<a@[IPv6:::ffff:192.0.2.1]>"), SMTP_PERR_OK);
    assert_int_equal(fwd("<a@[IPv6:1:2:3:4:5:6:7:8]>"), SMTP_PERR_OK);
    assert_int_equal(fwd("<a@[IPv6:1:2:3:4:5:6:7:8:9]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[IPv6:2001:db8::g]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[IPv6:1::2::3]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[IPv6:]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[IPv6:192.0.2.1]>"), SMTP_PERR_PATH_SYNTAX);

    assert_int_equal(path("<a@[x-tag:some.thing]>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.domain, "[x-tag:some.thing]");
    assert_int_equal(fwd("<a@[tag:a:b:c]>"), SMTP_PERR_OK);
    assert_int_equal(fwd("<a@[x-:foo]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[-x:foo]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[:foo]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[tag:]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[t_g:x]>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<a@[tag:a\\b]>"), SMTP_PERR_PATH_SYNTAX);
}

static void test_path_source_route(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(path("<@ONE,@TWO:JOE@THREE>", false, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.addr, "JOE@THREE");
    assert_string_equal(p.local, "JOE");
    assert_string_equal(p.domain, "THREE");
    assert_int_equal(path("<@one.example:joe@x.example>", true, false, &p), SMTP_PERR_OK);
    assert_string_equal(p.addr, "joe@x.example");
    assert_int_equal(fwd("<@ONE,TWO:joe@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<@ONE joe@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<@ONE,@TWO,joe@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<@:joe@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<@one.:joe@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<@one:>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<@one:@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<@one,:joe@x>"), SMTP_PERR_PATH_SYNTAX);
}

static void test_path_null_postmaster(void **state)
{
    (void)state;
    struct smtp_path p;
    assert_int_equal(path("<>", true, false, &p), SMTP_PERR_OK);
    assert_true(p.null);
    assert_false(p.postmaster);
    assert_string_equal(p.addr, "");
    assert_string_equal(p.domain, "");
    assert_int_equal(path("<>", false, false, &p), SMTP_PERR_PATH_SYNTAX);
    size_t end = 0;
    assert_int_equal(path_n("<> BODY=7BIT", 12, true, false, &p, &end), SMTP_PERR_OK);
    assert_int_equal(end, 2);

    assert_int_equal(path("<postmaster>", false, false, &p), SMTP_PERR_OK);
    assert_true(p.postmaster);
    assert_false(p.null);
    assert_string_equal(p.domain, "");
    assert_string_equal(p.addr, "postmaster");
    assert_int_equal(path("<POSTMASTER>", false, false, &p), SMTP_PERR_OK);
    assert_true(p.postmaster);
    assert_string_equal(p.local, "POSTMASTER");
    assert_string_equal(p.addr, "postmaster");
    assert_int_equal(path("<PostMaster>", false, false, &p), SMTP_PERR_OK);
    assert_true(p.postmaster);
    /* as a reverse path it is not special */
    assert_int_equal(path("<postmaster>", true, false, &p), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(path("<postmaster@x.example>", false, false, &p), SMTP_PERR_OK);
    assert_false(p.postmaster);
    assert_string_equal(p.addr, "postmaster@x.example");
    assert_int_equal(fwd("<\"postmaster\">"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<postmasterx>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd("<post.master>"), SMTP_PERR_PATH_SYNTAX);
}

static void test_path_limits(void **state)
{
    (void)state;
    char s[1024];
    struct smtp_path p;

    /* local part: 64 octets ok, 65 not */
    mk_path(s, 64, 10);
    assert_int_equal(fwd(s), SMTP_PERR_OK);
    mk_path(s, 65, 10);
    assert_int_equal(fwd(s), SMTP_PERR_LOCAL_TOO_LONG);
    /* the limit counts the quoted form as sent */
    char q[128];
    q[0] = '<';
    q[1] = '"';
    memset(q + 2, 'q', 62);
    memcpy(q + 64, "\"@x>", 5);
    assert_int_equal(path(q, false, false, &p), SMTP_PERR_OK);
    assert_int_equal(strlen(p.local), 62);
    memset(q + 2, 'q', 63);
    memcpy(q + 65, "\"@x>", 5);
    assert_int_equal(fwd(q), SMTP_PERR_LOCAL_TOO_LONG);
    memset(q + 2, 'q', 20);
    memset(q + 22, '\\', 40);     /* 20 escaped backslashes */
    memcpy(q + 62, "zz\"@x>", 7);
    assert_int_equal(path(q, false, false, &p), SMTP_PERR_OK);
    assert_int_equal(strlen(p.local), 42);
    assert_int_equal(strlen(p.addr), 2 + 20 + 40 + 2 + 2);

    /* whole path: 256 octets ok, 257 not (local 64 + domain 189 + "<@>") */
    mk_path(s, 64, 189);
    assert_int_equal(strlen(s), 256);
    assert_int_equal(path(s, false, false, &p), SMTP_PERR_OK);
    assert_int_equal(strlen(p.domain), 189);
    assert_int_equal(strlen(p.addr), 254);
    mk_path(s, 64, 190);
    assert_int_equal(fwd(s), SMTP_PERR_PATH_TOO_LONG);
    mk_path(s, 1, 252);
    assert_int_equal(fwd(s), SMTP_PERR_OK);
    mk_path(s, 1, 253);
    assert_int_equal(fwd(s), SMTP_PERR_PATH_TOO_LONG);

    /* domain: 255 octets is within its own limit (the path limit then applies), 256 not */
    mk_path(s, 1, 255);
    assert_int_equal(fwd(s), SMTP_PERR_PATH_TOO_LONG);
    mk_path(s, 1, 256);
    assert_int_equal(fwd(s), SMTP_PERR_DOMAIN_TOO_LONG);
    mk_path(s, 65, 300);
    assert_int_equal(fwd(s), SMTP_PERR_LOCAL_TOO_LONG);

    /* a source route counts towards the path */
    char r[400];
    memcpy(r, "<@", 2);
    mk_domain(r + 2, 250);
    memcpy(r + 252, ":abcdefghi@x.example>", 22);
    assert_int_equal(strlen(r), 273);
    assert_int_equal(fwd(r), SMTP_PERR_PATH_TOO_LONG);
    memcpy(r + 252, ":postmaster>", 13);
    assert_int_equal(fwd(r), SMTP_PERR_PATH_TOO_LONG);

    /* smtp_domain_valid: 255 ok, 256 not */
    mk_domain(s, 255);
    assert_true(dom_ok(s, false));
    assert_true(helo_ok(s));
    mk_domain(s, 256);
    assert_false(dom_ok(s, false));
    assert_false(helo_ok(s));
}

static void test_path_utf8(void **state)
{
    (void)state;
    struct smtp_path p;
    /* "jös@exämple.com" */
    const char *u = "<j\xc3\xb6s@ex\xc3\xa4mple.com>";
    assert_int_equal(path(u, false, true, &p), SMTP_PERR_OK);
    assert_true(p.utf8);
    assert_string_equal(p.local, "j\xc3\xb6s");
    assert_string_equal(p.domain, "ex\xc3\xa4mple.com");
    assert_string_equal(p.addr, "j\xc3\xb6s@ex\xc3\xa4mple.com");
    assert_int_equal(path(u, false, false, &p), SMTP_PERR_NEED_UTF8);
    assert_int_equal(fwd("<a@b\xc3\xa4.example>"), SMTP_PERR_NEED_UTF8);
    assert_int_equal(fwd8("<a@\xc3\xa4.example>"), SMTP_PERR_OK);
    assert_int_equal(fwd8("<a@x\xc3\xa4-.example>"), SMTP_PERR_PATH_SYNTAX);
    /* 4-byte character (U+1F600) and the largest (U+10FFFF) */
    assert_int_equal(fwd8("<\xf0\x9f\x98\x80@x>"), SMTP_PERR_OK);
    assert_int_equal(fwd8("<\xf4\x8f\xbf\xbf@x>"), SMTP_PERR_OK);
    /* quoted local part with UTF-8 */
    assert_int_equal(path("<\"j \xc3\xb6\"@x>", false, true, &p), SMTP_PERR_OK);
    assert_string_equal(p.addr, "\"j \xc3\xb6\"@x");
    assert_int_equal(fwd("<\"j \xc3\xb6\"@x>"), SMTP_PERR_NEED_UTF8);
    /* UTF-8 is not allowed after a backslash, nor in a literal */
    assert_int_equal(fwd8("<\"\\\xc3\xb6\"@x>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(fwd8("<a@[x:\xc3\xb6]>"), SMTP_PERR_PATH_SYNTAX);

    /* overlong '/', overlong NUL, surrogate, above U+10FFFF, bare continuation, bad lead */
    assert_int_equal(fwd8("<a\xc0\xaf@x>"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(fwd8("<a\xc0\x80@x>"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(fwd8("<a\xe0\x80\xaf@x>"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(fwd8("<a\xf0\x80\x80\xaf@x>"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(fwd8("<a\xed\xa0\x80@x>"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(fwd8("<a\xf4\x90\x80\x80@x>"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(fwd8("<a\x80@x>"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(fwd8("<a\xff@x>"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(fwd8("<a@x\xed\xbf\xbf>"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(fwd8("<\"\xc3\"@x>"), SMTP_PERR_BAD_UTF8);
    /* truncated: inside the path and at the end of the input */
    assert_int_equal(fwd8("<a\xc3@x>"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(fwd8("<a\xe2\x82@x>"), SMTP_PERR_BAD_UTF8);
    size_t end;
    assert_int_equal(path_n("<a\xc3", 3, false, true, &p, &end), SMTP_PERR_BAD_UTF8);
    assert_int_equal(path_n("<a\xf0\x9f\x98", 5, false, true, &p, &end), SMTP_PERR_BAD_UTF8);
    /* without SMTPUTF8 any octet >= 0x80 is NEED_UTF8, valid or not */
    assert_int_equal(fwd("<a\xc0\xaf@x>"), SMTP_PERR_NEED_UTF8);

    assert_true(utf8_ok("plain ascii"));
    assert_true(utf8_ok(""));
    assert_true(utf8_ok("\xc3\xa4\xe2\x82\xac\xf0\x9f\x98\x80"));
    assert_true(smtp_utf8_valid("a\0b", 3));
    assert_false(utf8_ok("\xc3"));
    assert_false(utf8_ok("\xc1\xbf"));
    assert_false(utf8_ok("\xe0\x9f\xbf"));
    assert_false(utf8_ok("\xed\xa0\x80"));
    assert_false(utf8_ok("\xf4\x90\x80\x80"));
    assert_false(utf8_ok("\xf5\x80\x80\x80"));
    assert_false(utf8_ok("\xc3\x28"));
    assert_true(utf8_ok("\xee\x80\x80"));
    assert_true(utf8_ok("\xef\xbf\xbf"));
}

/* ---- domains (HELO / EHLO) ---- */

static void test_domain_valid(void **state)
{
    (void)state;
    assert_true(dom_ok("example.com", false));
    assert_true(dom_ok("x", false));
    assert_true(dom_ok("a-b.c-d.example", false));
    assert_true(dom_ok("[192.0.2.1]", false));
    assert_true(dom_ok("[IPv6:::1]", false));
    assert_false(dom_ok("", false));
    assert_false(dom_ok("example.com.", false));
    assert_false(dom_ok(".example.com", false));
    assert_false(dom_ok("exa mple", false));
    assert_false(dom_ok("a_b.example", false));
    assert_false(dom_ok("-a.example", false));
    assert_false(dom_ok("a-.example", false));
    assert_false(dom_ok("[300.1.1.1]", false));
    assert_false(dom_ok("[192.0.2.1", false));
    assert_false(dom_ok("[192.0.2.1]x", false));
    assert_false(dom_ok("ex\xc3\xa4mple.com", false));
    assert_true(dom_ok("ex\xc3\xa4mple.com", true));
    assert_false(dom_ok("ex\xc3mple.com", true));
    assert_false(smtp_domain_valid("a\0b", 3, false));

    assert_true(helo_ok("a_b.example"));
    assert_true(helo_ok("_dmarc.example"));
    assert_true(helo_ok("host_.example"));
    assert_true(helo_ok("client.example"));
    assert_true(helo_ok("[192.0.2.1]"));
    assert_true(helo_ok("ex\xc3\xa4mple.com"));
    assert_false(helo_ok("ex\xc3mple.com"));
    assert_false(helo_ok("-x.example"));
    assert_false(helo_ok("x.example."));
    assert_false(helo_ok("x example"));
    assert_false(helo_ok(""));
    assert_false(smtp_helo_valid("a\0b", 3));
}

/* ---- MAIL ---- */

static void test_mail_basic(void **state)
{
    (void)state;
    struct smtp_mail_args a;
    assert_int_equal(mail("FROM:<a@b.example>", &a), SMTP_PERR_OK);
    assert_string_equal(a.path.addr, "a@b.example");
    assert_false(a.has_size);
    assert_int_equal(a.body, SMTP_BODY_NONE);
    assert_int_equal(a.ret, SMTP_RET_NONE);
    assert_false(a.has_envid);
    assert_false(a.smtputf8);
    assert_false(a.has_auth);
    assert_int_equal(mail("from:<a@b.example>", &a), SMTP_PERR_OK);
    assert_int_equal(mail("From: <a@b.example>", &a), SMTP_PERR_OK);
    assert_string_equal(a.path.addr, "a@b.example");
    assert_int_equal(mail("FROM:<>", &a), SMTP_PERR_OK);
    assert_true(a.path.null);
    assert_int_equal(mail("FROM: <>", &a), SMTP_PERR_OK);
    assert_true(a.path.null);
    assert_int_equal(mail1("FROM:  <a@b.example>"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM <a@b.example>"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM:"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM: "), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1(""), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("TO:<a@b.example>"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM:a@b.example"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM:<a@b.example"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(mail1("FROM:<postmaster>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(mail1("FROM:<a@b.example>x"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM:<a@b.example>\tSIZE=1"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail_n("FROM:<a@b.example>\0", 19, &a), SMTP_PERR_SYNTAX);
    assert_int_equal(mail_n("FROM:<a@b.example> \0", 20, &a), SMTP_PERR_SYNTAX);
    assert_int_equal(mail("FROM:<a@b.example>   ", &a), SMTP_PERR_OK);
    assert_int_equal(mail("FROM:<a@b.example>  SIZE=5   BODY=7BIT ", &a), SMTP_PERR_OK);
    assert_int_equal(a.size, 5);
    assert_int_equal(a.body, SMTP_BODY_7BIT);
}

static void test_mail_all_params(void **state)
{
    (void)state;
    struct smtp_mail_args a;
    assert_int_equal(mail("FROM:<a@b.example> SIZE=1000 BODY=8BITMIME RET=HDRS "
                          "ENVID=QQ314159+2Bx SMTPUTF8 AUTH=<>", &a), SMTP_PERR_OK);
    assert_true(a.has_size);
    assert_int_equal(a.size, 1000);
    assert_int_equal(a.body, SMTP_BODY_8BITMIME);
    assert_int_equal(a.ret, SMTP_RET_HDRS);
    assert_true(a.has_envid);
    assert_string_equal(a.envid, "QQ314159+x");
    assert_true(a.smtputf8);
    assert_true(a.has_auth);
    assert_string_equal(a.auth, "<>");
    assert_string_equal(a.path.addr, "a@b.example");
}

static void test_mail_size(void **state)
{
    (void)state;
    struct smtp_mail_args a;
    assert_int_equal(mail("FROM:<a@b> SIZE=0", &a), SMTP_PERR_OK);
    assert_true(a.has_size);
    assert_int_equal(a.size, 0);
    assert_int_equal(mail("FROM:<a@b> size=12345", &a), SMTP_PERR_OK);
    assert_int_equal(a.size, 12345);
    assert_int_equal(mail("FROM:<a@b> SIZE=18446744073709551615", &a), SMTP_PERR_OK);
    assert_true(a.size == 18446744073709551615ull);
    assert_int_equal(mail("FROM:<a@b> SIZE=00000000000000000001", &a), SMTP_PERR_OK);
    assert_int_equal(a.size, 1);
    assert_int_equal(mail1("FROM:<a@b> SIZE=18446744073709551616"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> SIZE=000000000000000000001"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> SIZE=-1"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> SIZE=+1"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> SIZE=1a"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> SIZE="), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> SIZE"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> SIZE=1=2"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> SIZE=1 SIZE=1"), SMTP_PERR_PARAM_DUP);
    assert_int_equal(mail1("FROM:<a@b> size=1 SIZE=2"), SMTP_PERR_PARAM_DUP);
}

static void test_mail_body_ret(void **state)
{
    (void)state;
    struct smtp_mail_args a;
    assert_int_equal(mail("FROM:<a@b> BODY=7BIT", &a), SMTP_PERR_OK);
    assert_int_equal(a.body, SMTP_BODY_7BIT);
    assert_int_equal(mail("FROM:<a@b> body=8bitmime", &a), SMTP_PERR_OK);
    assert_int_equal(a.body, SMTP_BODY_8BITMIME);
    assert_int_equal(mail("FROM:<a@b> Body=BinaryMIME", &a), SMTP_PERR_OK);
    assert_int_equal(a.body, SMTP_BODY_BINARYMIME);
    assert_int_equal(mail1("FROM:<a@b> BODY=8BIT"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> BODY=8BITMIMEX"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> BODY="), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> BODY"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> BODY=7BIT BODY=7BIT"), SMTP_PERR_PARAM_DUP);

    assert_int_equal(mail("FROM:<a@b> RET=FULL", &a), SMTP_PERR_OK);
    assert_int_equal(a.ret, SMTP_RET_FULL);
    assert_int_equal(mail("FROM:<a@b> ret=hdrs", &a), SMTP_PERR_OK);
    assert_int_equal(a.ret, SMTP_RET_HDRS);
    assert_int_equal(mail1("FROM:<a@b> RET=ALL"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> RET"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> RET=FULL RET=HDRS"), SMTP_PERR_PARAM_DUP);
}

static void test_mail_envid(void **state)
{
    (void)state;
    struct smtp_mail_args a;
    char s[512];
    assert_int_equal(mail("FROM:<a@b> ENVID=abc", &a), SMTP_PERR_OK);
    assert_true(a.has_envid);
    assert_string_equal(a.envid, "abc");
    assert_int_equal(mail("FROM:<a@b> ENVID=a+2Bb+3Dc+20d", &a), SMTP_PERR_OK);
    assert_string_equal(a.envid, "a+b=c d");

    /* decoded length: 100 ok, 101 not; the encoded form may be longer */
    memcpy(s, "FROM:<a@b> ENVID=", 17);
    memset(s + 17, 'e', 100);
    s[117] = '\0';
    assert_int_equal(mail(s, &a), SMTP_PERR_OK);
    assert_int_equal(strlen(a.envid), 100);
    memset(s + 17, 'e', 101);
    s[118] = '\0';
    assert_int_equal(mail(s, &a), SMTP_PERR_PARAM_VALUE);
    assert_false(a.has_envid);
    for (size_t i = 0; i < 100; i++)
        memcpy(s + 17 + 3 * i, "+41", 3);
    s[317] = '\0';
    assert_int_equal(mail(s, &a), SMTP_PERR_OK);
    assert_int_equal(strlen(a.envid), 100);
    assert_int_equal(a.envid[99], 'A');

    assert_int_equal(mail1("FROM:<a@b> ENVID=a+0Ab"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> ENVID=a+00b"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> ENVID=a+C3+A4"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> ENVID=a+2b"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> ENVID=a+2"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> ENVID=a+"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> ENVID="), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> ENVID"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> ENVID=a\x01"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM:<a@b> ENVID=\xc3\xa4"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> ENVID=x ENVID=x"), SMTP_PERR_PARAM_DUP);
}

static void test_mail_smtputf8(void **state)
{
    (void)state;
    struct smtp_mail_args a;
    assert_int_equal(mail("FROM:<a@b> SMTPUTF8", &a), SMTP_PERR_OK);
    assert_true(a.smtputf8);
    assert_false(a.path.utf8);
    assert_int_equal(mail("FROM:<j\xc3\xb6s@b\xc3\xa4r.example> smtputf8", &a), SMTP_PERR_OK);
    assert_true(a.smtputf8);
    assert_true(a.path.utf8);
    assert_string_equal(a.path.addr, "j\xc3\xb6s@b\xc3\xa4r.example");
    assert_int_equal(mail1("FROM:<j\xc3\xb6s@b.example>"), SMTP_PERR_NEED_UTF8);
    assert_int_equal(mail1("FROM:<j\xc3\xb6s@b.example> BODY=8BITMIME"), SMTP_PERR_NEED_UTF8);
    assert_int_equal(mail1("FROM:<j\xc3@b.example> SMTPUTF8"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(mail1("FROM:<j\xed\xa0\x80@b.example> SMTPUTF8"), SMTP_PERR_BAD_UTF8);
    assert_int_equal(mail1("FROM:<a@b> SMTPUTF8=yes"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> SMTPUTF8="), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> SMTPUTF8 SMTPUTF8"), SMTP_PERR_PARAM_DUP);
}

static void test_mail_auth(void **state)
{
    (void)state;
    struct smtp_mail_args a;
    assert_int_equal(mail("FROM:<a@b> AUTH=<>", &a), SMTP_PERR_OK);
    assert_true(a.has_auth);
    assert_string_equal(a.auth, "<>");
    assert_int_equal(mail("FROM:<a@b> AUTH=bob+40example.com", &a), SMTP_PERR_OK);
    assert_string_equal(a.auth, "bob@example.com");
    assert_int_equal(mail("FROM:<a@b> auth=e+3Dmc2@example.com", &a), SMTP_PERR_OK);
    assert_string_equal(a.auth, "e=mc2@example.com");
    assert_int_equal(mail("FROM:<a@b> AUTH=j+C3+B6s@x", &a), SMTP_PERR_OK);
    assert_string_equal(a.auth, "j\xc3\xb6s@x");
    assert_int_equal(mail1("FROM:<a@b> AUTH=j+C3s@x"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> AUTH=a+0Db"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> AUTH=a+zz"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> AUTH=a=b"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> AUTH="), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> AUTH"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(mail1("FROM:<a@b> AUTH=<> AUTH=<>"), SMTP_PERR_PARAM_DUP);
}

static void test_mail_unknown_syntax(void **state)
{
    (void)state;
    struct smtp_mail_args a;
    assert_int_equal(mail1("FROM:<a@b> FOO=bar"), SMTP_PERR_PARAM_UNKNOWN);
    assert_int_equal(mail1("FROM:<a@b> X-FOO"), SMTP_PERR_PARAM_UNKNOWN);
    assert_int_equal(mail1("FROM:<a@b> FOO=\x01"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM:<a@b> FOO=\x7f"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail_n("FROM:<a@b> SIZE=1\0", 18, &a), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM:<a@b> NOTIFY=NEVER"), SMTP_PERR_PARAM_UNKNOWN);
    assert_int_equal(mail1("FROM:<a@b> ORCPT=rfc822;a@b"), SMTP_PERR_PARAM_UNKNOWN);
    assert_int_equal(mail1("FROM:<a@b> SIZEX=1"), SMTP_PERR_PARAM_UNKNOWN);
    assert_int_equal(mail1("FROM:<a@b> SIZE=1 FOO"), SMTP_PERR_PARAM_UNKNOWN);
    assert_int_equal(mail1("FROM:<a@b> -FOO=1"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM:<a@b> FO_O=1"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM:<a@b> =1"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM:<a@b> SIZE:1"), SMTP_PERR_SYNTAX);
    assert_int_equal(mail1("FROM:<a@b> \xc3\xa4=1"), SMTP_PERR_SYNTAX);
    /* the first error from the left wins */
    assert_int_equal(mail1("FROM:<a@b> FOO SIZE=x"), SMTP_PERR_PARAM_UNKNOWN);
    assert_int_equal(mail1("FROM:<a@b> SIZE=x FOO"), SMTP_PERR_PARAM_VALUE);
}

/* ---- RCPT ---- */

static void test_rcpt_basic(void **state)
{
    (void)state;
    struct smtp_rcpt_args a;
    assert_int_equal(rcpt("TO:<a@b.example>", false, &a), SMTP_PERR_OK);
    assert_string_equal(a.path.addr, "a@b.example");
    assert_int_equal(a.notify, 0);
    assert_false(a.has_orcpt);
    assert_int_equal(rcpt("to: <a@b.example>", false, &a), SMTP_PERR_OK);
    assert_string_equal(a.path.addr, "a@b.example");
    assert_int_equal(rcpt("To:<Postmaster>", false, &a), SMTP_PERR_OK);
    assert_true(a.path.postmaster);
    assert_int_equal(rcpt("TO:<@hop.example:c@d.example>", false, &a), SMTP_PERR_OK);
    assert_string_equal(a.path.addr, "c@d.example");
    assert_int_equal(rcpt1("TO:<>"), SMTP_PERR_PATH_SYNTAX);
    assert_int_equal(rcpt1("TO:"), SMTP_PERR_SYNTAX);
    assert_int_equal(rcpt1("TO"), SMTP_PERR_SYNTAX);
    assert_int_equal(rcpt1("TO:  <a@b>"), SMTP_PERR_SYNTAX);
    assert_int_equal(rcpt1("FROM:<a@b>"), SMTP_PERR_SYNTAX);
    assert_int_equal(rcpt1("TO:a@b"), SMTP_PERR_SYNTAX);
    assert_int_equal(rcpt1("TO:<a@b>x"), SMTP_PERR_SYNTAX);
    assert_int_equal(rcpt1("TO:<a@b> SIZE=1"), SMTP_PERR_PARAM_UNKNOWN);
    assert_int_equal(rcpt1("TO:<a@b> SMTPUTF8"), SMTP_PERR_PARAM_UNKNOWN);
    assert_int_equal(rcpt1("TO:<j\xc3\xb6s@b>"), SMTP_PERR_NEED_UTF8);
    assert_int_equal(rcpt("TO:<j\xc3\xb6s@b>", true, &a), SMTP_PERR_OK);
    assert_true(a.path.utf8);
    assert_int_equal(rcpt("TO:<j\xc3@b>", true, &a), SMTP_PERR_BAD_UTF8);
}

static void test_rcpt_notify(void **state)
{
    (void)state;
    struct smtp_rcpt_args a;
    assert_int_equal(rcpt("TO:<a@b> NOTIFY=NEVER", false, &a), SMTP_PERR_OK);
    assert_int_equal(a.notify, SMTP_NOTIFY_NEVER);
    assert_int_equal(rcpt("TO:<a@b> NOTIFY=SUCCESS", false, &a), SMTP_PERR_OK);
    assert_int_equal(a.notify, SMTP_NOTIFY_SUCCESS);
    assert_int_equal(rcpt("TO:<a@b> NOTIFY=FAILURE", false, &a), SMTP_PERR_OK);
    assert_int_equal(a.notify, SMTP_NOTIFY_FAILURE);
    assert_int_equal(rcpt("TO:<a@b> NOTIFY=DELAY", false, &a), SMTP_PERR_OK);
    assert_int_equal(a.notify, SMTP_NOTIFY_DELAY);
    assert_int_equal(rcpt("TO:<a@b> NOTIFY=SUCCESS,FAILURE,DELAY", false, &a), SMTP_PERR_OK);
    assert_int_equal(a.notify,
        SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
    assert_int_equal(rcpt("TO:<a@b> notify=delay,success", false, &a), SMTP_PERR_OK);
    assert_int_equal(a.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_DELAY);
    assert_int_equal(rcpt("TO:<a@b> NOTIFY=never", false, &a), SMTP_PERR_OK);
    assert_int_equal(a.notify, SMTP_NOTIFY_NEVER);

    assert_int_equal(rcpt1("TO:<a@b> NOTIFY=NEVER,SUCCESS"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> NOTIFY=DELAY,NEVER"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> NOTIFY=NEVER,NEVER"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> NOTIFY=SUCCESS,SUCCESS"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> NOTIFY=SUCCESS,"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> NOTIFY=,SUCCESS"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> NOTIFY=SUCCESS,,DELAY"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> NOTIFY=BOGUS"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> NOTIFY=SUCCES"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> NOTIFY="), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> NOTIFY"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> NOTIFY=NEVER NOTIFY=NEVER"), SMTP_PERR_PARAM_DUP);
}

static void test_rcpt_orcpt(void **state)
{
    (void)state;
    struct smtp_rcpt_args a;
    char s[700];
    assert_int_equal(rcpt("TO:<a@b> ORCPT=rfc822;bob+40example.com", false, &a), SMTP_PERR_OK);
    assert_true(a.has_orcpt);
    assert_string_equal(a.orcpt_type, "rfc822");
    assert_string_equal(a.orcpt, "bob@example.com");
    assert_int_equal(rcpt("TO:<a@b> ORCPT=RFC822;x+2By@z NOTIFY=FAILURE", false, &a),
        SMTP_PERR_OK);
    assert_string_equal(a.orcpt_type, "RFC822");
    assert_string_equal(a.orcpt, "x+y@z");
    assert_int_equal(a.notify, SMTP_NOTIFY_FAILURE);
    assert_int_equal(rcpt("TO:<a@b> ORCPT=x-local;a+20b", false, &a), SMTP_PERR_OK);
    assert_string_equal(a.orcpt_type, "x-local");
    assert_string_equal(a.orcpt, "a b");

    assert_int_equal(rcpt1("TO:<a@b> ORCPT=rfc822"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> ORCPT=;a@b"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> ORCPT=rfc822;"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> ORCPT=rfc822;a+zz"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> ORCPT=rfc822;a+0Ab"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> ORCPT=rf@c;a"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> ORCPT=rf.c;a"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> ORCPT"), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt1("TO:<a@b> ORCPT=rfc822;a ORCPT=rfc822;b"), SMTP_PERR_PARAM_DUP);

    /* addr-type: 31 octets ok, 32 not */
    memcpy(s, "TO:<a@b> ORCPT=", 15);
    memset(s + 15, 't', 31);
    memcpy(s + 46, ";x", 3);
    assert_int_equal(rcpt(s, false, &a), SMTP_PERR_OK);
    assert_int_equal(strlen(a.orcpt_type), 31);
    memset(s + 15, 't', 32);
    memcpy(s + 47, ";x", 3);
    assert_int_equal(rcpt(s, false, &a), SMTP_PERR_PARAM_VALUE);

    /* whole value (encoded): 500 octets ok, 501 not */
    memcpy(s + 15, "rfc822;", 7);
    memset(s + 22, 'v', 493);
    s[515] = '\0';
    assert_int_equal(rcpt(s, false, &a), SMTP_PERR_OK);
    assert_int_equal(strlen(a.orcpt), 493);
    memset(s + 22, 'v', 494);
    s[516] = '\0';
    assert_int_equal(rcpt(s, false, &a), SMTP_PERR_PARAM_VALUE);

    /* utf-8 addr-type (RFC 6533): kept as given, xtext rules not applied */
    assert_int_equal(rcpt("TO:<a@b> ORCPT=utf-8;j\\x{00F6}s@x", false, &a), SMTP_PERR_OK);
    assert_string_equal(a.orcpt_type, "utf-8");
    assert_string_equal(a.orcpt, "j\\x{00F6}s@x");
    assert_int_equal(rcpt("TO:<a@b> ORCPT=UTF-8;a+b", false, &a), SMTP_PERR_OK);
    assert_string_equal(a.orcpt, "a+b");
    assert_int_equal(rcpt("TO:<a@b> ORCPT=utf-8;j\xc3\xb6s@x", true, &a), SMTP_PERR_OK);
    assert_string_equal(a.orcpt, "j\xc3\xb6s@x");
    assert_int_equal(rcpt("TO:<a@b> ORCPT=utf-8;j\xc3\xb6s@x", false, &a),
        SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt("TO:<a@b> ORCPT=utf-8;j\xc3s@x", true, &a), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt("TO:<a@b> ORCPT=utf-8;a=b", true, &a), SMTP_PERR_PARAM_VALUE);
    assert_int_equal(rcpt("TO:<a@b> ORCPT=rfc822;j\xc3\xb6s@x", true, &a),
        SMTP_PERR_PARAM_VALUE);
}

/* ---- xtext ---- */

static int dec(const char *s, char *out, size_t osz, size_t *len)
{
    size_t n = strlen(s);
    char *c = exact(s, n);
    int r = smtp_xtext_decode(c, n, out, osz, len);
    free(c);
    return r;
}

static void test_xtext_decode(void **state)
{
    (void)state;
    char out[64];
    size_t len = 0;
    assert_int_equal(dec("abc", out, sizeof out, &len), 0);
    assert_int_equal(len, 3);
    assert_string_equal(out, "abc");
    assert_int_equal(dec("a+2Bb", out, sizeof out, &len), 0);
    assert_string_equal(out, "a+b");
    assert_int_equal(dec("+3D+20+7E", out, sizeof out, &len), 0);
    assert_string_equal(out, "= ~");
    assert_int_equal(dec("", out, sizeof out, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(out, "");
    assert_int_equal(dec("x+00y", out, sizeof out, &len), 0);
    assert_int_equal(len, 3);
    assert_memory_equal(out, "x\0y", 3);
    assert_int_equal(dec("+FF", out, sizeof out, NULL), 0);
    assert_int_equal((unsigned char)out[0], 0xff);

    assert_int_equal(dec("a+2b", out, sizeof out, &len), -1);
    assert_int_equal(dec("a+g0", out, sizeof out, &len), -1);
    assert_int_equal(dec("a+2", out, sizeof out, &len), -1);
    assert_int_equal(dec("a+", out, sizeof out, &len), -1);
    assert_int_equal(dec("+", out, sizeof out, &len), -1);
    assert_int_equal(dec("a=b", out, sizeof out, &len), -1);
    assert_int_equal(dec("a b", out, sizeof out, &len), -1);
    assert_int_equal(dec("a\x7f", out, sizeof out, &len), -1);
    assert_int_equal(dec("a\xc3\xa4", out, sizeof out, &len), -1);
    assert_int_equal(smtp_xtext_decode("a\0b", 3, out, sizeof out, &len), -1);
    /* output cap counts the terminator */
    assert_int_equal(dec("abc", out, 4, &len), 0);
    assert_int_equal(dec("abcd", out, 4, &len), -1);
    assert_int_equal(dec("ab+41", out, 4, &len), 0);
    assert_string_equal(out, "abA");
    assert_int_equal(dec("", out, 0, &len), -1);
    /* length is respected: the '+' cut off after one hex digit */
    assert_int_equal(smtp_xtext_decode("+41", 2, out, sizeof out, &len), -1);
}

static void test_xtext_encode(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(smtp_xtext_encode("a+b=c d\x01\xc3\xa4~!", 12, &b), 0);
    assert_string_equal(buf_cstr(&b), "a+2Bb+3Dc+20d+01+C3+A4~!");
    buf_reset(&b);
    assert_int_equal(smtp_xtext_encode("", 0, &b), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(smtp_xtext_encode("x\0y", 3, &b), 0);
    assert_string_equal(buf_cstr(&b), "x+00y");
    buf_free(&b);

    /* round trip of every octet */
    char all[256], back[256 * 3 + 1];
    size_t len = 0;
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    buf_init(&b, 0);
    assert_int_equal(smtp_xtext_encode(all, sizeof all, &b), 0);
    assert_int_equal(b.len, 256 + 2 * (256 - 94 + 2));
    assert_int_equal(smtp_xtext_decode(b.p, b.len, back, sizeof back, &len), 0);
    assert_int_equal(len, 256);
    assert_memory_equal(back, all, 256);
    buf_free(&b);

    /* over the cap: -1 and the buffer is left as it was */
    buf_init(&b, 5);
    assert_int_equal(smtp_xtext_encode("a+b", 3, &b), 0);
    assert_int_equal(b.len, 5);
    buf_reset(&b);
    assert_int_equal(buf_append(&b, "zz", 2), 0);
    assert_int_equal(smtp_xtext_encode("a+b", 3, &b), -1);
    assert_int_equal(b.len, 2);
    assert_int_equal(smtp_xtext_encode("abcd", 4, &b), -1);
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.p, "zz", 2);
    buf_free(&b);
}

/* ---- replies ---- */

static void test_replies(void **state)
{
    (void)state;
    assert_string_equal(smtp_perr_reply(SMTP_PERR_SYNTAX, false),
        "501 5.5.4 Syntax: MAIL FROM:<address>");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_SYNTAX, true),
        "501 5.5.4 Syntax: RCPT TO:<address>");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_PATH_SYNTAX, false),
        "501 5.1.7 Bad sender address syntax");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_PATH_SYNTAX, true),
        "501 5.1.3 Bad recipient address syntax");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_LOCAL_TOO_LONG, false),
        "501 5.1.7 Sender local part too long (max 64 octets)");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_LOCAL_TOO_LONG, true),
        "501 5.1.3 Recipient local part too long (max 64 octets)");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_DOMAIN_TOO_LONG, false),
        "501 5.1.7 Sender domain too long (max 255 octets)");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_DOMAIN_TOO_LONG, true),
        "501 5.1.3 Recipient domain too long (max 255 octets)");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_PATH_TOO_LONG, false),
        "501 5.1.7 Sender path too long (max 256 octets)");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_PATH_TOO_LONG, true),
        "501 5.1.3 Recipient path too long (max 256 octets)");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_NEED_UTF8, false),
        "553 5.6.7 Sender address needs SMTPUTF8");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_NEED_UTF8, true),
        "553 5.6.7 Recipient address needs SMTPUTF8");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_BAD_UTF8, false),
        "501 5.6.7 Invalid UTF-8 in address");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_BAD_UTF8, true),
        "501 5.6.7 Invalid UTF-8 in address");
    for (int r = 0; r < 2; r++) {
        assert_string_equal(smtp_perr_reply(SMTP_PERR_PARAM_UNKNOWN, r),
            "555 5.5.4 Unsupported parameter");
        assert_string_equal(smtp_perr_reply(SMTP_PERR_PARAM_VALUE, r),
            "501 5.5.4 Invalid parameter value");
        assert_string_equal(smtp_perr_reply(SMTP_PERR_PARAM_DUP, r),
            "501 5.5.4 Duplicate parameter");
    }
    assert_string_equal(smtp_perr_reply(SMTP_PERR_OK, false), "250 2.1.0 Ok");
    assert_string_equal(smtp_perr_reply(SMTP_PERR_OK, true), "250 2.1.5 Ok");
    assert_string_equal(smtp_perr_reply((enum smtp_perr)99, true), "501 5.5.4 Syntax error");
}

/* ---- bounds: every prefix of good lines, each in an exact-size block ---- */

static void test_prefixes(void **state)
{
    (void)state;
    static const char *mails[] = {
        "FROM:<\"a b\\\"c\"@[IPv6:2001:db8::1]> SIZE=100 BODY=8BITMIME RET=FULL "
        "ENVID=x+2By SMTPUTF8 AUTH=a+40b",
        "FROM:<@r1.example,@r2.example:j\xc3\xb6s@[192.0.2.1]> SMTPUTF8",
    };
    static const char *rcpts[] = {
        "TO:<\"x\\\\y\"@[tag:z]> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;a+40b",
        "TO:<postmaster> ORCPT=utf-8;j\xc3\xb6s@x",
    };
    struct smtp_mail_args m;
    struct smtp_rcpt_args r;
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(mails[i]);
        size_t close = (size_t)(strstr(mails[i], "> ") - mails[i]);
        for (size_t k = 0; k < n; k++) {
            enum smtp_perr e = mail_n(mails[i], k, &m);
            /* nothing before the closing '>' can be a whole MAIL */
            if (k <= close)
                assert_int_not_equal(e, SMTP_PERR_OK);
        }
        assert_int_equal(mail_n(mails[i], n, &m), SMTP_PERR_OK);
        assert_true(m.smtputf8);
    }
    for (size_t i = 0; i < 2; i++) {
        size_t n = strlen(rcpts[i]);
        for (size_t k = 0; k < n; k++) {
            char *c = exact(rcpts[i], k);
            (void)smtp_parse_rcpt(c, k, true, &r);
            struct smtp_cmd cmd;
            assert_int_equal(smtp_parse_cmd(c, k, &cmd), 0);
            (void)smtp_domain_valid(c, k, true);
            (void)smtp_helo_valid(c, k);
            free(c);
        }
        char *c = exact(rcpts[i], n);
        assert_int_equal(smtp_parse_rcpt(c, n, true, &r), SMTP_PERR_OK);
        free(c);
    }
    assert_string_equal(r.orcpt, "j\xc3\xb6s@x");
    assert_true(r.path.postmaster);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verbs_all),
        cmocka_unit_test(test_verbs_args),
        cmocka_unit_test(test_path_simple),
        cmocka_unit_test(test_path_quoted),
        cmocka_unit_test(test_path_dot_string),
        cmocka_unit_test(test_path_brackets),
        cmocka_unit_test(test_path_domain),
        cmocka_unit_test(test_path_literal),
        cmocka_unit_test(test_path_source_route),
        cmocka_unit_test(test_path_null_postmaster),
        cmocka_unit_test(test_path_limits),
        cmocka_unit_test(test_path_utf8),
        cmocka_unit_test(test_domain_valid),
        cmocka_unit_test(test_mail_basic),
        cmocka_unit_test(test_mail_all_params),
        cmocka_unit_test(test_mail_size),
        cmocka_unit_test(test_mail_body_ret),
        cmocka_unit_test(test_mail_envid),
        cmocka_unit_test(test_mail_smtputf8),
        cmocka_unit_test(test_mail_auth),
        cmocka_unit_test(test_mail_unknown_syntax),
        cmocka_unit_test(test_rcpt_basic),
        cmocka_unit_test(test_rcpt_notify),
        cmocka_unit_test(test_rcpt_orcpt),
        cmocka_unit_test(test_xtext_decode),
        cmocka_unit_test(test_xtext_encode),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
