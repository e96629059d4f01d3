/*
 * tests/unit/policy/test_aliases.c - aliases table: parsing, errors, expansion, :include:.
 *
 * Run with cwd tests/unit: fixtures live in policy/fixtures/aliases/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/aliases.h"
#include "util/buf.h"
#include "util/xmalloc.h"

#define FIXDIR "policy/fixtures/aliases"

static char err[512];

static struct aliases *parse_ok(const char *text)
{
    struct aliases *a;

    err[0] = '\0';
    a = aliases_parse(text, strlen(text), "t", FIXDIR, err, sizeof err);
    if (a == NULL)
        fail_msg("parse failed: %s", err);
    return a;
}

static void parse_err(const char *text, size_t n, const char *want)
{
    struct aliases *a;

    err[0] = '\0';
    a = aliases_parse(text, n, "t", NULL, err, sizeof err);
    assert_null(a);
    assert_string_equal(err, want);
}

/* Assert that the n strings in got are exactly the NULL-terminated list want, in order. */
static void assert_list(char **got, size_t n, const char *const *want)
{
    size_t i;

    for (i = 0; want[i] != NULL; i++) {
        if (i >= n)
            fail_msg("missing \"%s\" at %zu (only %zu)", want[i], i, n);
        assert_string_equal(got[i], want[i]);
    }
    assert_int_equal(n, i);
}

#define LIST(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NONE ((const char *const[]){ NULL })

static bool local_domain(const char *domain, void *ctx)
{
    const char *mine = ctx;
    return strcasecmp(domain, mine) == 0;
}

/* Expand name against a with local domain "local.example"; returns the aliases_expand rc. */
static int expand(const struct aliases *a, const char *name, struct alias_result *res)
{
    err[0] = '\0';
    return aliases_expand(a, name, local_domain, (void *)"local.example", res, err, sizeof err);
}

/* ---- parsing ---- */

static void test_parse_comments_blank_continuation(void **state)
{
    (void)state;
    struct aliases *a = parse_ok(
        "# a comment\n"
        "\n"
        "postmaster: alice\n"
        "   # an indented comment does not end the entry\n"
        "root:       alice, bob\n"
        "\t\n"
        "longer:     alice,\n"
        "            bob,\n"
        "\t\tcarol\n"
        "# trailing comment\n");
    const char *const *m;

    assert_int_equal(aliases_count(a), 3);
    m = aliases_members(a, "longer");
    assert_non_null(m);
    assert_string_equal(m[0], "alice");
    assert_string_equal(m[1], "bob");
    assert_string_equal(m[2], "carol");
    assert_null(m[3]);
    m = aliases_members(a, "root");
    assert_string_equal(m[0], "alice");
    assert_string_equal(m[1], "bob");
    assert_null(m[2]);
    assert_null(aliases_members(a, "nobody"));
    aliases_free(a);
}

static void test_parse_continuation_without_commas_joined(void **state)
{
    (void)state;
    /* Continuation after a blank line and after a comment still belongs to the entry. */
    struct aliases *a = parse_ok("x: a,\n\n  b,\n# c\n  c\ny: d\n");
    const char *const *m = aliases_members(a, "x");

    assert_string_equal(m[0], "a");
    assert_string_equal(m[1], "b");
    assert_string_equal(m[2], "c");
    assert_null(m[3]);
    assert_true(aliases_exists(a, "y"));
    aliases_free(a);
}

static void test_parse_quoted_commas(void **state)
{
    (void)state;
    struct aliases *a = parse_ok(
        "team: alice, bob, carol@remote.example, \"quoted local\"@example.org,"
        " \"a, b\"@example.org , \"with \\\" quote\"@example.org,\n");
    const char *const *m = aliases_members(a, "team");

    assert_string_equal(m[0], "alice");
    assert_string_equal(m[1], "bob");
    assert_string_equal(m[2], "carol@remote.example");
    assert_string_equal(m[3], "\"quoted local\"@example.org");
    assert_string_equal(m[4], "\"a, b\"@example.org");
    assert_string_equal(m[5], "\"with \\\" quote\"@example.org");
    assert_null(m[6]);
    aliases_free(a);
}

static void test_parse_case_insensitive_names(void **state)
{
    (void)state;
    struct aliases *a = parse_ok("PostMaster: Alice\nMAILER-DAEMON : postmaster\n");
    struct alias_result r = { 0 };

    assert_true(aliases_exists(a, "postmaster"));
    assert_true(aliases_exists(a, "POSTMASTER"));
    assert_true(aliases_exists(a, "mailer-daemon"));
    assert_false(aliases_exists(a, "postmaste"));
    assert_false(aliases_exists(a, "alice"));
    assert_string_equal(aliases_members(a, "pOsTmAsTeR")[0], "Alice");   /* as written */
    assert_int_equal(expand(a, "Mailer-Daemon", &r), 0);
    assert_list(r.local, r.nlocal, LIST("alice"));
    alias_result_free(&r);
    aliases_free(a);
}

static void test_parse_crlf_and_no_final_newline(void **state)
{
    (void)state;
    struct aliases *a = parse_ok("a: b,\r\n  c\r\nd: e");
    const char *const *m = aliases_members(a, "a");

    assert_string_equal(m[0], "b");
    assert_string_equal(m[1], "c");
    assert_null(m[2]);
    assert_string_equal(aliases_members(a, "d")[0], "e");
    aliases_free(a);
}

static void test_parse_empty_text(void **state)
{
    (void)state;
    struct aliases *a = parse_ok("");
    assert_int_equal(aliases_count(a), 0);
    assert_false(aliases_exists(a, "x"));
    aliases_free(a);
    a = parse_ok("# only a comment\n\n");
    assert_int_equal(aliases_count(a), 0);
    aliases_free(a);
}

static void test_parse_target_kinds(void **state)
{
    (void)state;
    struct aliases *a = parse_ok(
        "k: \\alice, :include:list.txt, :INCLUDE: other.txt, user+tag, a.b@[192.0.2.1]\n");
    const char *const *m = aliases_members(a, "k");

    assert_string_equal(m[0], "\\alice");
    assert_string_equal(m[1], ":include:list.txt");
    assert_string_equal(m[2], ":INCLUDE: other.txt");
    assert_string_equal(m[3], "user+tag");
    assert_string_equal(m[4], "a.b@[192.0.2.1]");
    assert_null(m[5]);
    aliases_free(a);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *want;
    } cases[] = {
        { "a: b\nno colon here\n", "t:2: missing ':' after alias name" },
        { "a@b: c\n", "t:1: bad alias name \"a@b\"" },
        { ": c\n", "t:1: bad alias name \"\"" },
        { "two words: c\n", "t:1: bad alias name \"two words\"" },
        { "\"q\": c\n", "t:1: bad alias name \"\"q\"\"" },
        { "a:\n", "t:1: empty target list for \"a\"" },
        { "x: y\na: ,  ,\n  ,\n", "t:2: empty target list for \"a\"" },
        { "a: b\n\nA: c\n", "t:3: duplicate alias name \"A\" (first at line 1)" },
        { "a: \"unterminated\n", "t:1: unterminated quote" },
        { "a: b,\n  \"open,\n  more\"@x\n", "t:2: unterminated quote" },
        { "a: \"esc at end\\\"\n", "t:1: unterminated quote" },
        { "x: y\n\n\n\n\n\na: b,\n  |/usr/bin/foo\n",
          "t:8: file and pipe targets are not supported: |/usr/bin/foo" },
        { "a: /var/mail/a\n", "t:1: file and pipe targets are not supported: /var/mail/a" },
        { "a: b, \"|/usr/bin/foo bar\"\n",
          "t:1: file and pipe targets are not supported: \"|/usr/bin/foo bar\"" },
        { "a: \"/dev/null\"\n", "t:1: file and pipe targets are not supported: \"/dev/null\"" },
        { "  b\n", "t:1: continuation line without a preceding entry" },
        { "a: b c\n", "t:1: bad target: b c" },
        { "a: b,\n  c d\n", "t:2: bad target: c d" },
        { "a: \\b@c\n", "t:1: bad target: \\b@c" },
        { "a: b@\n", "t:1: bad target: b@" },
        { "a: @c\n", "t:1: bad target: @c" },
        { "a: \"q\"\n", "t:1: bad target: \"q\"" },
        { "a: Alice <alice@x>\n", "t:1: bad target: Alice <alice@x>" },
        { "a: b\x01\n", "t:1: bad target: b\\x01" },
        { "a: :include:\n", "t:1: empty :include: path" },
        { "a: :include:   ,b\n", "t:1: empty :include: path" },
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        parse_err(cases[i].text, strlen(cases[i].text), cases[i].want);
    parse_err("a: b\0c\n", 7, "t:1: NUL byte in line");
}

static void test_parse_line_length(void **state)
{
    (void)state;
    struct buf b;
    struct aliases *a;

    /* Exactly 4096 octets (plus CR LF) is fine. */
    buf_init(&b, 0);
    assert_int_equal(buf_puts(&b, "x: a,\nlong: "), 0);
    while (b.len < 6 + 4096)
        assert_int_equal(buf_puts(&b, "b"), 0);
    assert_int_equal(buf_puts(&b, "\r\n"), 0);
    a = aliases_parse(b.p, b.len, "t", NULL, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(strlen(aliases_members(a, "long")[0]), 4096 - 6);
    aliases_free(a);

    /* 4097 octets is not. */
    b.len -= 2;
    assert_int_equal(buf_puts(&b, "b\n"), 0);
    parse_err(b.p, b.len, "t:2: line too long (over 4096 octets)");
    buf_free(&b);
}

static void test_parse_origin_in_messages(void **state)
{
    (void)state;
    const char *text = "a: |cmd\n";
    struct aliases *a = aliases_parse(text, strlen(text), "postel.conf:12", NULL, err,
        sizeof err);

    assert_null(a);
    assert_string_equal(err, "postel.conf:12:1: file and pipe targets are not supported: |cmd");
}

static void test_load_file_and_missing(void **state)
{
    (void)state;
    struct aliases *a = aliases_load(FIXDIR "/main.aliases", err, sizeof err);

    assert_non_null(a);
    assert_int_equal(aliases_count(a), 10);
    assert_string_equal(aliases_members(a, "list")[0], ":include:list.txt");
    aliases_free(a);

    a = aliases_load(FIXDIR "/no-such.aliases", err, sizeof err);
    assert_null(a);
    assert_string_equal(err, FIXDIR "/no-such.aliases: No such file or directory");
    a = aliases_load(FIXDIR, err, sizeof err);
    assert_null(a);
    assert_string_equal(err, FIXDIR ": not a regular file");
}

static void test_merge(void **state)
{
    (void)state;
    struct aliases *a = parse_ok("a: x\nb: y\n");
    struct aliases *b = aliases_parse("c: z\n", 5, "conf:3", NULL, err, sizeof err);
    struct aliases *c = aliases_parse("d: w\nB: v\n", 10, "other", NULL, err, sizeof err);
    struct alias_result r = { 0 };

    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(aliases_merge(a, b, err, sizeof err), 0);
    assert_int_equal(aliases_count(a), 3);
    assert_string_equal(aliases_members(a, "c")[0], "z");
    assert_int_equal(aliases_merge(a, c, err, sizeof err), -1);
    assert_string_equal(err, "other:2: duplicate alias name \"b\" (first at t:2)");
    assert_int_equal(aliases_count(a), 3);      /* dst unchanged */
    assert_false(aliases_exists(a, "d"));
    assert_int_equal(expand(a, "c", &r), 0);
    assert_list(r.local, r.nlocal, LIST("z"));
    alias_result_free(&r);
    aliases_free(a);
}

/* ---- expansion ---- */

static void test_expand_simple_and_not_alias(void **state)
{
    (void)state;
    struct aliases *a = parse_ok("postmaster: alice\nroot: alice, bob\n");
    struct alias_result r = { 0 };

    assert_int_equal(expand(a, "postmaster", &r), 0);
    assert_list(r.local, r.nlocal, LIST("alice"));
    assert_int_equal(r.nremote, 0);
    alias_result_free(&r);

    assert_int_equal(expand(a, "root", &r), 0);
    assert_list(r.local, r.nlocal, LIST("alice", "bob"));
    alias_result_free(&r);

    /* Not an alias: itself, lower-cased. */
    assert_int_equal(expand(a, "Carol", &r), 0);
    assert_list(r.local, r.nlocal, LIST("carol"));
    alias_result_free(&r);

    assert_int_equal(expand(a, "", &r), -1);
    assert_string_equal(err, "empty recipient name");
    assert_int_equal(r.nlocal, 0);
    alias_result_free(&r);    aliases_free(a);
}

static void test_expand_nested_and_append(void **state)
{
    (void)state;
    struct aliases *a = parse_ok(
        "postmaster: root\n"
        "root: admins\n"
        "admins: Alice, bob\n"
        "abuse: root, carol\n");
    struct alias_result r = { 0 };

    assert_int_equal(expand(a, "postmaster", &r), 0);
    assert_list(r.local, r.nlocal, LIST("alice", "bob"));
    /* Appending: a second recipient of the same message; alice and bob not repeated. */
    assert_int_equal(expand(a, "abuse", &r), 0);
    assert_list(r.local, r.nlocal, LIST("alice", "bob", "carol"));
    assert_int_equal(expand(a, "BOB", &r), 0);
    assert_list(r.local, r.nlocal, LIST("alice", "bob", "carol"));
    alias_result_free(&r);
    assert_null(r.local);
    assert_int_equal(r.nlocal, 0);
    aliases_free(a);
}

static void test_expand_loop(void **state)
{
    (void)state;
    struct aliases *a = parse_ok("a: b\nb: a\nc: d, x\nd: e\ne: c, y\n");
    struct alias_result r = { 0 };

    /* a -> b -> a: a is not expanded again but delivered as the user "a". */
    assert_int_equal(expand(a, "a", &r), 0);
    assert_list(r.local, r.nlocal, LIST("a"));
    alias_result_free(&r);
    assert_int_equal(expand(a, "b", &r), 0);
    assert_list(r.local, r.nlocal, LIST("b"));
    alias_result_free(&r);
    /* c -> d -> e -> c: everyone on the loop still gets the other members. */
    assert_int_equal(expand(a, "c", &r), 0);
    assert_list(r.local, r.nlocal, LIST("c", "y", "x"));
    alias_result_free(&r);
    aliases_free(a);
}

static void test_expand_self_reference(void **state)
{
    (void)state;
    struct aliases *a = parse_ok("alice: alice, bob\nteam: alice, ALICE, \\alice\n");
    struct alias_result r = { 0 };

    assert_int_equal(expand(a, "alice", &r), 0);
    assert_list(r.local, r.nlocal, LIST("alice", "bob"));
    alias_result_free(&r);
    assert_int_equal(expand(a, "team", &r), 0);
    assert_list(r.local, r.nlocal, LIST("alice", "bob"));
    alias_result_free(&r);
    aliases_free(a);
}

static void test_expand_diamond(void **state)
{
    (void)state;
    struct aliases *a = parse_ok(
        "top: left, right, dave@local.example\n"
        "left: common, carol\n"
        "right: common, Carol\n"
        "common: dave, erin@remote.example\n");
    struct alias_result r = { 0 };

    assert_int_equal(expand(a, "top", &r), 0);
    assert_list(r.local, r.nlocal, LIST("dave", "carol"));
    assert_list(r.remote, r.nremote, LIST("erin@remote.example"));
    alias_result_free(&r);
    aliases_free(a);
}

static void test_expand_exponential_fanout_is_cheap(void **state)
{
    (void)state;
    /* a0 lists a1 twice, a1 lists a2 twice, ...: 2^19 paths but each alias is expanded once. */
    struct buf b;
    struct aliases *a;
    struct alias_result r = { 0 };

    buf_init(&b, 0);
    for (int i = 0; i < 19; i++)
        assert_int_equal(buf_printf(&b, "a%d: a%d, a%d, u%d\n", i, i + 1, i + 1, i), 0);
    assert_int_equal(buf_puts(&b, "a19: end\n"), 0);
    a = aliases_parse(b.p, b.len, "t", NULL, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(expand(a, "a0", &r), 0);
    assert_int_equal(r.nlocal, 20);
    assert_string_equal(r.local[0], "end");
    assert_string_equal(r.local[19], "u0");
    alias_result_free(&r);
    aliases_free(a);
    buf_free(&b);
}

static void test_expand_remote_dedupe(void **state)
{
    (void)state;
    struct aliases *a = parse_ok(
        "r: carol@remote.example, carol@REMOTE.example, Carol@remote.example,"
        " \"quoted local\"@example.org, \"quoted local\"@Example.ORG\n");
    struct alias_result r = { 0 };

    assert_int_equal(expand(a, "r", &r), 0);
    assert_int_equal(r.nlocal, 0);
    assert_list(r.remote, r.nremote, LIST("carol@remote.example", "Carol@remote.example",
        "\"quoted local\"@example.org"));
    alias_result_free(&r);
    aliases_free(a);
}

static void test_expand_local_domain(void **state)
{
    (void)state;
    struct aliases *a = parse_ok(
        "fwd: root@LOCAL.example, \"Bob\"@local.example, carol@other.example, bob\n"
        "root: alice\n");
    struct alias_result r = { 0 };

    assert_int_equal(expand(a, "fwd", &r), 0);
    assert_list(r.local, r.nlocal, LIST("alice", "bob"));
    assert_list(r.remote, r.nremote, LIST("carol@other.example"));
    alias_result_free(&r);

    /* Without a local-domain check every address is remote. */
    assert_int_equal(aliases_expand(a, "fwd", NULL, NULL, &r, err, sizeof err), 0);
    assert_list(r.local, r.nlocal, LIST("bob"));
    assert_list(r.remote, r.nremote, LIST("root@LOCAL.example", "\"Bob\"@local.example",
        "carol@other.example"));
    alias_result_free(&r);
    aliases_free(a);
}

static void test_expand_backslash(void **state)
{
    (void)state;
    struct aliases *a = parse_ok("root: \\root, \\Alice\nalice: bob\n");
    struct alias_result r = { 0 };

    assert_int_equal(expand(a, "root", &r), 0);
    assert_list(r.local, r.nlocal, LIST("root", "alice"));
    alias_result_free(&r);
    aliases_free(a);
}

static void test_expand_members_for_expn(void **state)
{
    (void)state;
    struct aliases *a = parse_ok("staff: Alice, \\bob, :include:list.txt, x@y.example\n");
    const char *const *m = aliases_members(a, "STAFF");

    assert_non_null(m);
    assert_string_equal(m[0], "Alice");
    assert_string_equal(m[1], "\\bob");
    assert_string_equal(m[2], ":include:list.txt");
    assert_string_equal(m[3], "x@y.example");
    assert_null(m[4]);
    assert_null(aliases_members(a, "alice"));
    aliases_free(a);
}

static void test_expand_depth_limit(void **state)
{
    (void)state;
    struct buf b;
    struct aliases *a;
    struct alias_result r = { 0 };

    /* n0 -> n1 -> ... -> n20 -> user: 21 nested aliases. */
    buf_init(&b, 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(buf_printf(&b, "n%d: n%d\n", i, i + 1), 0);
    assert_int_equal(buf_puts(&b, "n20: user\n"), 0);
    a = aliases_parse(b.p, b.len, "t", NULL, err, sizeof err);
    assert_non_null(a);

    assert_int_equal(expand(a, "n1", &r), 0);        /* 20 nested: fine */
    assert_list(r.local, r.nlocal, LIST("user"));
    assert_int_equal(expand(a, "n0", &r), -1);       /* 21 nested: too deep */
    assert_string_equal(err, "alias expansion too deep");
    assert_list(r.local, r.nlocal, LIST("user"));    /* result unchanged on error */
    alias_result_free(&r);
    aliases_free(a);
    buf_free(&b);
}

static void test_include_relative_and_nested(void **state)
{
    (void)state;
    struct aliases *a = aliases_load(FIXDIR "/main.aliases", err, sizeof err);
    struct alias_result r = { 0 };

    assert_non_null(a);
    assert_int_equal(expand(a, "list", &r), 0);
    assert_list(r.local, r.nlocal, LIST("bob", "carol"));
    assert_list(r.remote, r.nremote, LIST("dave@remote.example"));
    alias_result_free(&r);

    /* inc/outer.txt includes inner.txt relative to inc/; inner names postmaster -> alice. */
    assert_int_equal(expand(a, "nested", &r), 0);
    assert_list(r.local, r.nlocal, LIST("erin", "frank", "alice"));
    assert_list(r.remote, r.nremote, LIST("\"Quoted, Name\"@remote.example"));
    alias_result_free(&r);

    /* An include file that includes itself is read once. */
    assert_int_equal(expand(a, "selfinc", &r), 0);
    assert_list(r.local, r.nlocal, LIST("gina"));
    alias_result_free(&r);
    aliases_free(a);
}

static void test_include_parse_dir(void **state)
{
    (void)state;
    /* aliases_parse() with a dir: relative to it. */
    struct aliases *a = parse_ok("l: :include: list.txt , zed\n");
    struct alias_result r = { 0 };

    assert_int_equal(expand(a, "l", &r), 0);
    assert_list(r.local, r.nlocal, LIST("bob", "carol", "zed"));
    alias_result_free(&r);
    aliases_free(a);

    /* Without a dir: relative to the current directory (tests/unit). */
    const char *text = "l: :include:" FIXDIR "/list.txt\n";
    a = aliases_parse(text, strlen(text), "t", NULL, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(expand(a, "l", &r), 0);
    assert_list(r.local, r.nlocal, LIST("bob", "carol"));
    alias_result_free(&r);
    aliases_free(a);
}

static void test_include_missing_is_temporary(void **state)
{
    (void)state;
    struct aliases *a = aliases_load(FIXDIR "/main.aliases", err, sizeof err);
    struct alias_result r = { 0 };

    assert_non_null(a);
    assert_int_equal(expand(a, "bob", &r), 0);
    assert_int_equal(expand(a, "missing", &r), -2);
    assert_string_equal(err, "cannot read :include: file " FIXDIR
        "/inc/no-such-file.txt: No such file or directory");
    /* "mixed" had added zoe before failing: rolled back, earlier results kept. */
    assert_int_equal(expand(a, "mixed", &r), -2);
    assert_list(r.local, r.nlocal, LIST("bob"));
    alias_result_free(&r);
    aliases_free(a);
}

static void test_include_depth(void **state)
{
    (void)state;
    struct aliases *a = aliases_load(FIXDIR "/main.aliases", err, sizeof err);
    struct alias_result r = { 0 };

    assert_non_null(a);
    assert_int_equal(expand(a, "ok5", &r), 0);       /* c1 .. c5: 5 nested */
    assert_list(r.local, r.nlocal, LIST("bottom"));
    alias_result_free(&r);
    assert_int_equal(expand(a, "bad6", &r), -1);     /* d0, c1 .. c5: 6 nested */
    assert_string_equal(err, ":include: nesting too deep (limit 5) at c5.txt");
    assert_int_equal(r.nlocal, 0);
    alias_result_free(&r);
    aliases_free(a);
}

static void test_include_bad_content_and_empty(void **state)
{
    (void)state;
    struct aliases *a = aliases_load(FIXDIR "/main.aliases", err, sizeof err);
    struct alias_result r = { 0 };

    assert_non_null(a);
    assert_int_equal(expand(a, "badinc", &r), -1);
    /* The file and line, never its bytes. */
    assert_string_equal(err, FIXDIR "/inc/bad.txt:2: file and pipe targets are not supported");
    assert_int_equal(r.nlocal, 0);
    assert_int_equal(expand(a, "empty", &r), -1);
    assert_string_equal(err, "alias \"empty\" expands to no recipients");
    alias_result_free(&r);
    aliases_free(a);
}

static void test_include_not_regular(void **state)
{
    (void)state;
    struct aliases *a = parse_ok("d: :include:inc\n");
    struct alias_result r = { 0 };

    assert_int_equal(expand(a, "d", &r), -1);
    assert_string_equal(err, "mail system configuration error: :include: file " FIXDIR
        "/inc refused: not a regular file");
    alias_result_free(&r);
    aliases_free(a);
}

/* ---- :include: safety (a scratch directory under /tmp) ---- */

static char scratch[64];

static void scratch_file(const char *name, const char *text, mode_t mode, char *path,
    size_t psz)
{
    FILE *f;

    assert_true((size_t)snprintf(path, psz, "%s/%s", scratch, name) < psz);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static int scratch_setup(void **state)
{
    (void)state;
    (void)snprintf(scratch, sizeof scratch, "/tmp/test_aliases.XXXXXX");
    return mkdtemp(scratch) == NULL ? -1 : 0;
}

static int scratch_teardown(void **state)
{
    const char *names[] = { "secret", "list", "pipe", "gw", "ow", "good", "link", NULL };
    char path[128];

    (void)state;
    for (size_t i = 0; names[i] != NULL; i++) {
        (void)snprintf(path, sizeof path, "%s/%s", scratch, names[i]);
        (void)unlink(path);
    }
    return rmdir(scratch);
}

/* Expand name in a table "name: :include:path"; returns the rc, err set. */
static int expand_include(const char *path, struct alias_result *r)
{
    char text[256];
    struct aliases *a;
    int rc;

    (void)snprintf(text, sizeof text, "x: :include:%s\n", path);
    a = parse_ok(text);
    rc = expand(a, "x", r);
    aliases_free(a);
    return rc;
}

static void test_include_contents_never_quoted(void **state)
{
    (void)state;
    char secret[128], list[128], pipe[128], text[200];
    struct alias_result r = { 0 };

    /* A list that names a password file: the parse error names file and line only. */
    scratch_file("secret", "# shadow\nroot:$6$SECRETHASH$Zq0:19000:0:99999:7:::\n", 0600,
        secret, sizeof secret);
    (void)snprintf(text, sizeof text, "bob\n:include:%s\n", secret);
    scratch_file("list", text, 0644, list, sizeof list);
    assert_int_equal(expand_include(list, &r), -1);
    assert_null(strstr(err, "SECRET"));
    assert_null(strstr(err, "root"));
    (void)snprintf(text, sizeof text, "%s:2: bad address", secret);
    assert_string_equal(err, text);
    assert_int_equal(r.nlocal, 0);

    scratch_file("pipe", "alice, \"|/bin/echo SECRETHASH\"\n", 0644, pipe, sizeof pipe);
    assert_int_equal(expand_include(pipe, &r), -1);
    assert_null(strstr(err, "SECRET"));
    (void)snprintf(text, sizeof text, "%s:1: file and pipe targets are not supported", pipe);
    assert_string_equal(err, text);
    alias_result_free(&r);
}

static void test_include_writable_by_others_refused(void **state)
{
    (void)state;
    char gw[128], ow[128], good[128], want[300];
    struct alias_result r = { 0 };

    scratch_file("good", "carol\n", 0644, good, sizeof good);
    assert_int_equal(expand_include(good, &r), 0);
    assert_list(r.local, r.nlocal, LIST("carol"));
    alias_result_free(&r);

    scratch_file("gw", "carol\n", 0664, gw, sizeof gw);
    assert_int_equal(expand_include(gw, &r), -1);
    (void)snprintf(want, sizeof want, "mail system configuration error: :include: file %s "
        "refused: writable by group or others", gw);
    assert_string_equal(err, want);
    scratch_file("ow", "carol\n", 0646, ow, sizeof ow);
    assert_int_equal(expand_include(ow, &r), -1);
    (void)snprintf(want, sizeof want, "mail system configuration error: :include: file %s "
        "refused: writable by group or others", ow);
    assert_string_equal(err, want);
    assert_int_equal(r.nlocal, 0);
    alias_result_free(&r);
}

static void test_include_symlink_refused(void **state)
{
    (void)state;
    char good[128], link[128], want[300];
    struct alias_result r = { 0 };

    scratch_file("good", "carol\n", 0644, good, sizeof good);
    (void)snprintf(link, sizeof link, "%s/link", scratch);
    (void)unlink(link);
    assert_int_equal(symlink(good, link), 0);
    assert_int_equal(expand_include(link, &r), -1);
    (void)snprintf(want, sizeof want, "mail system configuration error: :include: file %s "
        "refused: is a symbolic link", link);
    assert_string_equal(err, want);
    assert_int_equal(r.nlocal, 0);
    alias_result_free(&r);
}

static void test_large_table(void **state)
{
    (void)state;
    enum { N = 100000 };
    struct buf b;
    struct aliases *a;
    struct alias_result r = { 0 };
    char name[32];

    buf_init(&b, 0);
    for (int i = 0; i < N; i++) {
        /* Each alias points at the next; every 10th ends at a user. */
        if (i % 10 == 9)
            assert_int_equal(buf_printf(&b, "Alias%d: user%d, x%d@remote.example\n", i, i, i),
                0);
        else
            assert_int_equal(buf_printf(&b, "alias%d: alias%d\n", i, i + 1), 0);
    }
    a = aliases_parse(b.p, b.len, "big", NULL, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(aliases_count(a), N);
    for (int i = 0; i < N; i += 997) {
        assert_int_equal(snprintf(name, sizeof name, "ALIAS%d", i) > 0, 1);
        assert_true(aliases_exists(a, name));
    }
    assert_false(aliases_exists(a, "alias100000"));
    assert_int_equal(expand(a, "alias99990", &r), 0);
    assert_list(r.local, r.nlocal, LIST("user99999"));
    assert_list(r.remote, r.nremote, LIST("x99999@remote.example"));
    alias_result_free(&r);

    /* A duplicate at the very end is found. */
    assert_int_equal(buf_puts(&b, "ALIAS5: z\n"), 0);
    assert_null(aliases_parse(b.p, b.len, "big", NULL, err, sizeof err));
    assert_string_equal(err, "big:100001: duplicate alias name \"ALIAS5\" (first at line 6)");
    aliases_free(a);
    buf_free(&b);
}

static void test_large_result(void **state)
{
    (void)state;
    /* Large :include:-like fan-out in one alias: dedupe stays linear. */
    struct buf b;
    struct aliases *a;
    struct alias_result r = { 0 };

    buf_init(&b, 0);
    assert_int_equal(buf_puts(&b, "big: u0"), 0);
    for (int i = 1; i < 20000; i++)
        assert_int_equal(buf_printf(&b, ",\n u%d, r%d@x.example, U%d", i, i, i), 0);
    assert_int_equal(buf_puts(&b, "\n"), 0);
    a = aliases_parse(b.p, b.len, "t", NULL, err, sizeof err);
    assert_non_null(a);
    assert_int_equal(expand(a, "big", &r), 0);
    assert_int_equal(r.nlocal, 20000);
    assert_int_equal(r.nremote, 19999);
    assert_int_equal(expand(a, "big", &r), 0);
    assert_int_equal(r.nlocal, 20000);
    assert_int_equal(r.nremote, 19999);
    alias_result_free(&r);
    aliases_free(a);
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_comments_blank_continuation),
        cmocka_unit_test(test_parse_continuation_without_commas_joined),
        cmocka_unit_test(test_parse_quoted_commas),
        cmocka_unit_test(test_parse_case_insensitive_names),
        cmocka_unit_test(test_parse_crlf_and_no_final_newline),
        cmocka_unit_test(test_parse_empty_text),
        cmocka_unit_test(test_parse_target_kinds),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_line_length),
        cmocka_unit_test(test_parse_origin_in_messages),
        cmocka_unit_test(test_load_file_and_missing),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_expand_simple_and_not_alias),
        cmocka_unit_test(test_expand_nested_and_append),
        cmocka_unit_test(test_expand_loop),
        cmocka_unit_test(test_expand_self_reference),
        cmocka_unit_test(test_expand_diamond),
        cmocka_unit_test(test_expand_exponential_fanout_is_cheap),
        cmocka_unit_test(test_expand_remote_dedupe),
        cmocka_unit_test(test_expand_local_domain),
        cmocka_unit_test(test_expand_backslash),
        cmocka_unit_test(test_expand_members_for_expn),
        cmocka_unit_test(test_expand_depth_limit),
        cmocka_unit_test(test_include_relative_and_nested),
        cmocka_unit_test(test_include_parse_dir),
        cmocka_unit_test(test_include_missing_is_temporary),
        cmocka_unit_test(test_include_depth),
        cmocka_unit_test(test_include_bad_content_and_empty),
        cmocka_unit_test(test_include_not_regular),
        cmocka_unit_test_setup_teardown(test_include_contents_never_quoted, scratch_setup,
            scratch_teardown),
        cmocka_unit_test_setup_teardown(test_include_writable_by_others_refused,
            scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_include_symlink_refused, scratch_setup,
            scratch_teardown),
        cmocka_unit_test(test_large_table),
        cmocka_unit_test(test_large_result),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
