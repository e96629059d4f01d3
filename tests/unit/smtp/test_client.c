/*
 * tests/unit/smtp/test_client.c - sender-SMTP session machine (smtp/client.c), driven by
 * the transcripts in tests/transcripts/client/ (one test per NAME.txt).
 *
 * The runner plays the fake server and the driver. Server replies go in as text through
 * the real reply parser (smtp/reply.c); the exact bytes the client sends, its actions, its
 * timeouts and the per-recipient results are checked at every step. Every command sent
 * must be matched by a C: line and every step's actions by an A: line before the next step.
 *
 *   # comment
 *   Set-up (before @start, or after @new):
 *   @helo NAME               cli_init() with NAME (default client.example)
 *   @tls none|may|encrypt|verify [unavailable]      cli_set_tls()
 *   @auth USER PASS [plaintext] [=> -1]             cli_set_auth(); must return 0, or -1
 *                            with errno EINVAL; USER \N is a NULL pointer
 *   @cap N                   the output buffer holds at most N octets
 *   Messages (for the whole file):
 *   @msg NAME [from=ADDR] [size=N] [size7bit=N] [8bit] [smtputf8] [ret=full|hdrs]
 *            [envid=TEXT]    a message; from= is the reverse-path without <> ("" if absent)
 *   @rcpt ADDR [notify=success,failure,delay,never] [orcpt=TYPE;ADDR]   a recipient of
 *                            the last @msg
 *   Steps (each must be followed by an A: line):
 *   S: reply line            the server says this (CRLF added); consecutive S: lines are
 *                            one read, fed reply by reply; A: is the OR of their actions
 *   @start NAME | @next NAME | @quit | @body_sent
 *   @tls_done ok | @tls_done fail [DETAIL]
 *   @fail connect|timeout|closed|protocol|local [DETAIL]      cli_fail()
 *   Checks:
 *   A: send secret body msg_done ready close starttls | A: none     the actions, exactly
 *   C: line                  the next command line the client sent (CRLF added)
 *   R: I ok|temp|perm STATUS STAGE [REPLY]   recipient I's result (when_connecting is
 *                            checked against the stage); without REPLY the text is not
 *   ? timeout greeting|helo|mail|rcpt|data_init|data_block|data_end|other|tls|0
 *   ? state NAME             (init greeting ehlo helo starttls tls auth ready rset mail rcpt
 *                            data body dot quit closed)
 *   ? ext NAME... / ? noext NAME...   these extensions were (not) offered: esmtp pipelining
 *                            size eightbitmime dsn smtputf8 starttls enhanced auth
 *                            auth_plain auth_login
 *   ? size_max N | ? nres N | ? helo NAME
 *   ? 7bit|tls|authed|need_rset yes|no
 *   Sessions:
 *   @new                     end the session (cli_free()) and set up a new one
 *   @free                    cli_free() now; only "? wiped" (credentials zeroed) and @new
 *                            may follow
 * Escapes in every argument and in S:, C:, R: text: \r \n \\ \xHH, \R{N}c (N times c),
 * \- (nothing: an empty argument). Arguments are separated by spaces: write one as \x20.
 * Set CLIENT_TRANSCRIPT_CHECKS=1 to print how many checks each transcript made.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "smtp/client.h"
#include "smtp/parse.h"
#include "smtp/reply.h"
#include "util/buf.h"

#define TDIR "../transcripts/client"
#define MAX_MSGS 16
#define MAX_RCPTS 16
#define LINE_MAX_T 8192

struct tmsg {
    char name[32];
    char *sender, *envid;
    char *rcpts[MAX_RCPTS];
    char *orcpt[MAX_RCPTS];
    unsigned notify[MAX_RCPTS];
    bool any_notify, any_orcpt;
    struct cli_msg m;
};

struct run {
    const char *file;
    int lineno;
    struct smtp_client c;
    bool freed;                 /* @free: the session is over */
    struct buf send;            /* the commands sent, from spos on not yet matched */
    size_t spos;
    struct cli_out out;
    unsigned acts;              /* the last step's actions */
    bool pending;               /* ... not yet checked by an A: line */
    struct buf sin;             /* S: lines not fed yet */
    struct tmsg msgs[MAX_MSGS];
    size_t nmsg;
    unsigned checks;
};

/* Fail the test with the transcript's file and line; does not return (cmocka longjmps). */
static void __attribute__((format(printf, 2, 3))) FAIL(struct run *r, const char *fmt, ...)
{
    char m[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    fail_msg("%s:%d: %s", r->file, r->lineno, m);
}

/* Decode the escapes of s into out (at most osz octets); returns the length. */
static size_t unescape(struct run *r, const char *s, char *out, size_t osz)
{
    size_t o = 0;
    while (*s) {
        if (o + 1 >= osz)
            FAIL(r, "line too long");
        if (*s != '\\') {
            out[o++] = *s++;
            continue;
        }
        s++;
        if (*s == '-') {
            s++;                /* nothing: "\-" alone is the empty string */
        } else if (*s == 'r' || *s == 'n' || *s == '\\') {
            out[o++] = *s == 'r' ? '\r' : *s == 'n' ? '\n' : '\\';
            s++;
        } else if (*s == 'x' && isxdigit((unsigned char)s[1]) &&
            isxdigit((unsigned char)s[2])) {
            char hex[3] = { s[1], s[2], '\0' };
            out[o++] = (char)strtoul(hex, NULL, 16);
            s += 3;
        } else if (*s == 'R' && s[1] == '{') {
            char *end;
            unsigned long k = strtoul(s + 2, &end, 10);
            if (*end != '}' || end[1] == '\0' || k >= osz - o)
                FAIL(r, "bad \\R{N}c escape");
            memset(out + o, end[1], k);
            o += k;
            s = end + 2;
        } else {
            FAIL(r, "bad escape \\%c", *s);
        }
    }
    out[o] = '\0';
    return o;
}

static char *unescape_dup(struct run *r, const char *s)
{
    char b[LINE_MAX_T];
    size_t n = unescape(r, s, b, sizeof b);
    char *d = malloc(n + 1);
    assert_non_null(d);
    memcpy(d, b, n + 1);
    return d;
}

/* Split line (modified) at spaces into at most max words; returns the count. */
static size_t words(char *line, char **w, size_t max)
{
    size_t n = 0;
    for (char *p = strtok(line, " "); p != NULL && n < max; p = strtok(NULL, " "))
        w[n++] = p;
    return n;
}

static const char *const act_names[] = {
    "send", "body", "msg_done", "ready", "close", "starttls", "secret"
};

static void acts_text(unsigned acts, char *out, size_t osz)
{
    size_t o = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < 7; i++) {
        if (acts & (1u << i))
            o += (size_t)snprintf(out + o, osz - o, "%s%s", o ? " " : "", act_names[i]);
    }
    if (o == 0)
        snprintf(out, osz, "none");
}

static const char *const state_names[] = {
    "init", "greeting", "ehlo", "helo", "starttls", "tls", "auth", "ready", "rset", "mail",
    "rcpt", "data", "body", "dot", "quit", "closed"
};

static const char *const stage_names[] = {
    "connect", "greeting", "helo", "starttls", "auth", "rset", "mail", "rcpt", "data", "body",
    "dot", "local"
};

static int lookup(const char *const *names, size_t n, const char *w)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], w) == 0)
            return (int)i;
    }
    return -1;
}

#define LOOKUP(names, w) lookup(names, sizeof names / sizeof names[0], w)

static void session_init(struct run *r)
{
    cli_init(&r->c, "client.example");
    buf_init(&r->send, 1024 * 1024);
    r->spos = 0;
    r->out.send = &r->send;
    r->freed = false;
    r->pending = false;
}

static void check_all_matched(struct run *r)
{
    if (r->spos != r->send.len)
        FAIL(r, "commands sent but not matched by C: lines: \"%.*s\"",
            (int)(r->send.len - r->spos), r->send.p + r->spos);
    r->checks++;
}

static void session_end(struct run *r)
{
    check_all_matched(r);
    if (r->pending)
        FAIL(r, "the actions of the last step were not checked (A:)");
    if (!r->freed)
        cli_free(&r->c);
    buf_free(&r->send);
}

/* A step begins: the previous one must be fully checked. */
static void step(struct run *r)
{
    if (r->freed)
        FAIL(r, "the session was freed (@free)");
    if (r->pending)
        FAIL(r, "the actions of the last step were not checked (A:)");
    check_all_matched(r);
    r->out.acts = 0xdead;       /* every call sets the actions, never or-s them */
}

static void stepped(struct run *r)
{
    r->acts = r->out.acts;
    r->pending = true;
}

/* Feed the S: lines gathered so far, reply by reply; the actions are or-ed. */
static void flush_server(struct run *r)
{
    if (r->sin.len == 0)
        return;
    struct reply_parser p;
    size_t off = 0;
    unsigned all = 0;

    step(r);
    reply_parser_init(&p);
    while (off < r->sin.len) {
        struct smtp_reply rep;
        bool done = false;
        size_t got = reply_parse(&p, r->sin.p + off, r->sin.len - off, &rep, &done);
        if (got == (size_t)-1)
            FAIL(r, "the reply does not parse: %s", p.err);
        if (!done)
            FAIL(r, "the S: lines end inside a reply");
        off += got;
        r->out.acts = 0xdead;
        cli_reply(&r->c, &rep, &r->out);
        all |= r->out.acts;
        reply_free(&rep);
    }
    reply_parser_free(&p);
    buf_reset(&r->sin);
    r->out.acts = all;
    stepped(r);
}

static struct tmsg *find_msg(struct run *r, const char *name)
{
    for (size_t i = 0; i < r->nmsg; i++) {
        if (strcmp(r->msgs[i].name, name) == 0)
            return &r->msgs[i];
    }
    FAIL(r, "no message %s", name);
    return NULL;
}

static void parse_msg(struct run *r, char **w, size_t nw)
{
    if (nw < 2 || r->nmsg == MAX_MSGS)
        FAIL(r, "@msg NAME ...");
    struct tmsg *t = &r->msgs[r->nmsg++];
    snprintf(t->name, sizeof t->name, "%s", w[1]);
    t->sender = unescape_dup(r, "");
    for (size_t i = 2; i < nw; i++) {
        if (!strncmp(w[i], "from=", 5)) {
            free(t->sender);
            t->sender = unescape_dup(r, w[i] + 5);
        } else if (!strncmp(w[i], "size=", 5)) {
            t->m.size = strtoull(w[i] + 5, NULL, 10);
        } else if (!strncmp(w[i], "size7bit=", 9)) {
            t->m.size7bit = strtoull(w[i] + 9, NULL, 10);
        } else if (!strcmp(w[i], "8bit")) {
            t->m.eightbit = true;
        } else if (!strcmp(w[i], "smtputf8")) {
            t->m.smtputf8 = true;
        } else if (!strcmp(w[i], "ret=full")) {
            t->m.ret = SMTP_RET_FULL;
        } else if (!strcmp(w[i], "ret=hdrs")) {
            t->m.ret = SMTP_RET_HDRS;
        } else if (!strncmp(w[i], "envid=", 6)) {
            t->envid = unescape_dup(r, w[i] + 6);
        } else {
            FAIL(r, "bad @msg word %s", w[i]);
        }
    }
    t->m.sender = t->sender;
    t->m.envid = t->envid;
    t->m.rcpts = (const char *const *)t->rcpts;
}

static void parse_rcpt(struct run *r, char **w, size_t nw)
{
    if (nw < 2 || r->nmsg == 0)
        FAIL(r, "@rcpt ADDR ... after @msg");
    struct tmsg *t = &r->msgs[r->nmsg - 1];
    size_t i = t->m.nrcpt;
    if (i == MAX_RCPTS)
        FAIL(r, "too many recipients");
    t->rcpts[i] = unescape_dup(r, w[1]);
    for (size_t k = 2; k < nw; k++) {
        if (!strncmp(w[k], "notify=", 7)) {
            char *save = NULL;
            for (char *p = strtok_r(w[k] + 7, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
                t->notify[i] |= !strcmp(p, "success") ? SMTP_NOTIFY_SUCCESS :
                    !strcmp(p, "failure") ? SMTP_NOTIFY_FAILURE :
                    !strcmp(p, "delay") ? SMTP_NOTIFY_DELAY :
                    !strcmp(p, "never") ? SMTP_NOTIFY_NEVER : 0;
            }
            t->any_notify = true;
        } else if (!strncmp(w[k], "orcpt=", 6)) {
            t->orcpt[i] = unescape_dup(r, w[k] + 6);
            t->any_orcpt = true;
        } else {
            FAIL(r, "bad @rcpt word %s", w[k]);
        }
    }
    t->m.nrcpt = i + 1;
    t->m.notify = t->any_notify ? t->notify : NULL;
    t->m.orcpt = t->any_orcpt ? (const char *const *)t->orcpt : NULL;
}

static void do_auth(struct run *r, char **w, size_t nw)
{
    if (nw < 3)
        FAIL(r, "@auth USER PASS [plaintext] [=> -1]");
    char *user = strcmp(w[1], "\\N") ? unescape_dup(r, w[1]) : NULL;
    char *pass = unescape_dup(r, w[2]);
    bool plain = false, fails = false;
    for (size_t i = 3; i < nw; i++) {
        if (!strcmp(w[i], "plaintext"))
            plain = true;
        else if (!strcmp(w[i], "=>") && i + 1 < nw && !strcmp(w[i + 1], "-1"))
            fails = true, i++;
        else
            FAIL(r, "bad @auth word %s", w[i]);
    }
    errno = 0;
    int rc = cli_set_auth(&r->c, user, pass, plain);
    if (rc != (fails ? -1 : 0) || (fails && errno != EINVAL))
        FAIL(r, "cli_set_auth() returned %d (errno %d)", rc, errno);
    r->checks++;
    free(user);
    free(pass);
}

static void do_step(struct run *r, char **w, size_t nw, const char *rest)
{
    step(r);
    if (!strcmp(w[0], "@start") && nw == 2) {
        if (cli_timeout(&r->c) != 0)
            FAIL(r, "a timeout before cli_start()");
        cli_start(&r->c, &find_msg(r, w[1])->m, &r->out);
    } else if (!strcmp(w[0], "@next") && nw == 2) {
        cli_next(&r->c, &find_msg(r, w[1])->m, &r->out);
    } else if (!strcmp(w[0], "@quit")) {
        cli_quit(&r->c, &r->out);
    } else if (!strcmp(w[0], "@body_sent")) {
        cli_body_sent(&r->c, &r->out);
    } else if (!strcmp(w[0], "@tls_done") && nw >= 2) {
        char *detail = nw > 2 ? unescape_dup(r, rest) : NULL;
        cli_tls_done(&r->c, !strcmp(w[1], "ok"), detail, &r->out);
        free(detail);
    } else if (!strcmp(w[0], "@fail") && nw >= 2) {
        static const char *const why[] = { "connect", "timeout", "closed", "protocol",
            "local" };
        int k = LOOKUP(why, w[1]);
        if (k < 0)
            FAIL(r, "bad @fail reason %s", w[1]);
        char *detail = nw > 2 ? unescape_dup(r, rest) : NULL;
        cli_fail(&r->c, (enum cli_fail)k, detail, &r->out);
        free(detail);
    } else {
        FAIL(r, "bad step %s", w[0]);
    }
    stepped(r);
}

static void check_acts(struct run *r, char **w, size_t nw)
{
    unsigned want = 0;
    for (size_t i = 1; i < nw; i++) {
        int k = LOOKUP(act_names, w[i]);
        if (k < 0 && strcmp(w[i], "none") != 0)
            FAIL(r, "bad action %s", w[i]);
        if (k >= 0)
            want |= 1u << k;
    }
    if (!r->pending)
        FAIL(r, "A: without a step");
    if (r->acts != want) {
        char got[120];
        acts_text(r->acts, got, sizeof got);
        FAIL(r, "actions: got %s", got);
    }
    r->pending = false;
    r->checks++;
}

static void check_sent(struct run *r, const char *text)
{
    char want[LINE_MAX_T];
    size_t n = unescape(r, text, want, sizeof want - 2);
    want[n++] = '\r';
    want[n++] = '\n';
    size_t left = r->send.len - r->spos;
    const char *p = r->send.p + r->spos;
    if (left < n || memcmp(p, want, n) != 0)
        FAIL(r, "expected the command \"%s\", the client sent \"%.*s\"", text, (int)left,
            left ? p : "");
    r->spos += n;
    if (r->spos == r->send.len) {
        buf_reset(&r->send);
        r->spos = 0;
    }
    r->checks++;
}

static void check_result(struct run *r, char *line)
{
    char *w[5];
    size_t nw = 0;
    char *p = line;
    /* I KIND STATUS STAGE, then the reply (the rest of the line, spaces and all) */
    while (nw < 4) {
        while (*p == ' ')
            p++;
        if (*p == '\0')
            FAIL(r, "R: I ok|temp|perm STATUS STAGE [REPLY]");
        w[nw++] = p;
        p += strcspn(p, " ");
        if (*p)
            *p++ = '\0';
    }
    size_t n, i = strtoul(w[0], NULL, 10);
    const struct cli_result *res = cli_results(&r->c, &n);
    static const char *const kinds[] = { "ok", "temp", "perm" };
    int kind = LOOKUP(kinds, w[1]), stage = LOOKUP(stage_names, w[3]);
    if (kind < 0 || stage < 0)
        FAIL(r, "bad kind or stage");
    if (i >= n)
        FAIL(r, "no result %zu (%zu results)", i, n);
    if ((int)res[i].kind != kind)
        FAIL(r, "result %zu: kind %s", i, kinds[res[i].kind]);
    if (strcmp(res[i].status, w[2]) != 0)
        FAIL(r, "result %zu: status %s", i, res[i].status);
    if ((int)res[i].stage != stage)
        FAIL(r, "result %zu: stage %s", i, stage_names[res[i].stage]);
    if (res[i].when_connecting != (stage <= CLI_STAGE_AUTH))
        FAIL(r, "result %zu: when_connecting is %d", i, res[i].when_connecting);
    r->checks += 4;
    if (*p) {
        char want[LINE_MAX_T];
        (void)unescape(r, p, want, sizeof want);
        if (strcmp(res[i].reply, want) != 0)
            FAIL(r, "result %zu: reply \"%s\"", i, res[i].reply);
        r->checks++;
    }
}

static bool yes_no(struct run *r, const char *w)
{
    if (strcmp(w, "yes") && strcmp(w, "no"))
        FAIL(r, "yes or no, not %s", w);
    return w[0] == 'y';
}

static bool *ext_flag(struct run *r, struct cli_ext *e, const char *w)
{
    static const char *const names[] = { "esmtp", "pipelining", "size", "eightbitmime",
        "dsn", "smtputf8", "starttls", "enhanced", "auth", "auth_plain", "auth_login" };
    bool *flags[] = { &e->esmtp, &e->pipelining, &e->size, &e->eightbitmime, &e->dsn,
        &e->smtputf8, &e->starttls, &e->enhanced, &e->auth, &e->auth_plain, &e->auth_login };
    int k = LOOKUP(names, w);
    if (k < 0)
        FAIL(r, "no extension %s", w);
    return flags[k];
}

static void check_state(struct run *r, char **w, size_t nw)
{
    struct smtp_client *c = &r->c;
    if (nw < 2)
        FAIL(r, "? WHAT ...");
    if (!strcmp(w[1], "wiped")) {
        if (!r->freed)
            FAIL(r, "? wiped needs @free first");
        for (size_t i = 0; i < sizeof c->auth_user; i++) {
            if (c->auth_user[i] != 0 || c->auth_pass[i] != 0)
                FAIL(r, "credentials left at offset %zu", i);
        }
        r->checks++;
        return;
    }
    if (r->freed)
        FAIL(r, "the session was freed (@free)");
    if (nw < 3 && strcmp(w[1], "ext") && strcmp(w[1], "noext"))
        FAIL(r, "? %s VALUE", w[1]);
    if (!strcmp(w[1], "timeout")) {
        static const char *const names[] = { "greeting", "helo", "mail", "rcpt", "data_init",
            "data_block", "data_end", "other", "tls", "0" };
        static const unsigned vals[] = { CLI_TIMEOUT_GREETING, CLI_TIMEOUT_HELO,
            CLI_TIMEOUT_MAIL, CLI_TIMEOUT_RCPT, CLI_TIMEOUT_DATA_INIT, CLI_TIMEOUT_DATA_BLOCK,
            CLI_TIMEOUT_DATA_END, CLI_TIMEOUT_OTHER, CLI_TIMEOUT_TLS, 0 };
        int k = LOOKUP(names, w[2]);
        if (k < 0)
            FAIL(r, "no timeout %s", w[2]);
        if (cli_timeout(c) != vals[k])
            FAIL(r, "timeout is %u", cli_timeout(c));
    } else if (!strcmp(w[1], "state")) {
        int k = LOOKUP(state_names, w[2]);
        if (k < 0)
            FAIL(r, "no state %s", w[2]);
        if ((int)c->state != k)
            FAIL(r, "state is %s", state_names[c->state]);
    } else if (!strcmp(w[1], "ext") || !strcmp(w[1], "noext")) {
        bool want = !strcmp(w[1], "ext");
        for (size_t i = 2; i < nw; i++) {
            if (*ext_flag(r, &c->ext, w[i]) != want)
                FAIL(r, "extension %s is %s", w[i], want ? "off" : "on");
            r->checks++;
        }
        return;
    } else if (!strcmp(w[1], "size_max")) {
        if (c->ext.size_max != strtoull(w[2], NULL, 10))
            FAIL(r, "size_max is %llu", c->ext.size_max);
    } else if (!strcmp(w[1], "nres")) {
        size_t n;
        (void)cli_results(c, &n);
        if (n != strtoul(w[2], NULL, 10))
            FAIL(r, "%zu results", n);
    } else if (!strcmp(w[1], "helo")) {
        char want[LINE_MAX_T];
        (void)unescape(r, w[2], want, sizeof want);
        if (strcmp(c->helo, want) != 0)
            FAIL(r, "helo is \"%s\"", c->helo);
    } else if (!strcmp(w[1], "7bit")) {
        if (cli_needs_7bit(c) != yes_no(r, w[2]))
            FAIL(r, "cli_needs_7bit() differs");
    } else if (!strcmp(w[1], "tls")) {
        if (cli_in_tls(c) != yes_no(r, w[2]) || c->tls != yes_no(r, w[2]))
            FAIL(r, "cli_in_tls() differs");
        r->checks++;
    } else if (!strcmp(w[1], "authed")) {
        if (c->authed != yes_no(r, w[2]))
            FAIL(r, "authed differs");
    } else if (!strcmp(w[1], "need_rset")) {
        if (c->need_rset != yes_no(r, w[2]))
            FAIL(r, "need_rset differs");
    } else {
        FAIL(r, "bad check %s", w[1]);
    }
    r->checks++;
}

/* Set-up directives; only before the session's first step. */
static void set_up(struct run *r, char **w, size_t nw, bool started)
{
    if (started)
        FAIL(r, "%s after the session started", w[0]);
    if (!strcmp(w[0], "@helo") && nw == 2) {
        char *h = unescape_dup(r, w[1]);
        cli_init(&r->c, h);
        free(h);
    } else if (!strcmp(w[0], "@tls") && nw >= 2) {
        static const char *const pol[] = { "none", "may", "encrypt", "verify" };
        int k = LOOKUP(pol, w[1]);
        if (k < 0)
            FAIL(r, "bad TLS policy %s", w[1]);
        cli_set_tls(&r->c, (enum cli_tls)k, !(nw > 2 && !strcmp(w[2], "unavailable")));
    } else if (!strcmp(w[0], "@auth")) {
        do_auth(r, w, nw);
    } else if (!strcmp(w[0], "@cap") && nw == 2) {
        r->send.max = strtoul(w[1], NULL, 10);
    } else {
        FAIL(r, "bad line");
    }
}

static void run_transcript(void **state)
{
    const char *name = *state;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TDIR, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    struct run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->file = name;
    buf_init(&r->sin, 0);
    session_init(r);
    bool started = false;
    char line[LINE_MAX_T];
    while (fgets(line, sizeof line, f)) {
        r->lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1)
            FAIL(r, "line too long");
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        if (!strncmp(line, "S: ", 3) || !strcmp(line, "S:")) {
            char b[LINE_MAX_T];
            size_t k = unescape(r, line + (n > 3 ? 3 : n), b, sizeof b - 2);
            b[k++] = '\r';
            b[k++] = '\n';
            assert_int_equal(buf_append(&r->sin, b, k), 0);
            started = true;
            continue;
        }
        flush_server(r);
        if (!strncmp(line, "C: ", 3)) {
            check_sent(r, line + 3);
            continue;
        }
        if (!strncmp(line, "R: ", 3)) {
            check_result(r, line + 3);
            continue;
        }
        char copy[LINE_MAX_T];
        memcpy(copy, line, n + 1);
        char *w[32];
        size_t nw = words(copy, w, 32);
        /* the text after the first two words, for DETAIL */
        const char *rest = line;
        for (int k = 0; k < 2 && *rest; k++) {
            rest += strcspn(rest, " ");
            rest += strspn(rest, " ");
        }
        if (!strcmp(w[0], "A:")) {
            check_acts(r, w, nw);
        } else if (!strcmp(w[0], "?")) {
            check_state(r, w, nw);
        } else if (!strcmp(w[0], "@msg")) {
            parse_msg(r, w, nw);
        } else if (!strcmp(w[0], "@rcpt")) {
            parse_rcpt(r, w, nw);
        } else if (!strcmp(w[0], "@new")) {
            session_end(r);
            session_init(r);
            started = false;
        } else if (!strcmp(w[0], "@free")) {
            step(r);
            cli_free(&r->c);
            r->freed = true;
        } else if (!strcmp(w[0], "@start") || !strcmp(w[0], "@next") ||
            !strcmp(w[0], "@quit") || !strcmp(w[0], "@body_sent") ||
            !strcmp(w[0], "@tls_done") || !strcmp(w[0], "@fail")) {
            do_step(r, w, nw, rest);
            started = true;
        } else {
            set_up(r, w, nw, started);
        }
    }
    flush_server(r);
    fclose(f);
    session_end(r);
    if (getenv("CLIENT_TRANSCRIPT_CHECKS"))
        printf("client/%s: %u checks\n", name, r->checks);
    buf_free(&r->sin);
    for (size_t i = 0; i < r->nmsg; i++) {
        struct tmsg *t = &r->msgs[i];
        free(t->sender);
        free(t->envid);
        for (size_t k = 0; k < t->m.nrcpt; k++) {
            free(t->rcpts[k]);
            free(t->orcpt[k]);
        }
    }
    free(r);
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(void)
{
    DIR *d = opendir(TDIR);
    if (d == NULL) {
        perror(TDIR);
        return 1;
    }
    char *names[512];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 512) {
        size_t l = strlen(e->d_name);
        if (l > 4 && !strcmp(e->d_name + l - 4, ".txt"))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "%s: no transcripts\n", TDIR);
        return 1;
    }
    qsort(names, n, sizeof names[0], cmp);
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    for (size_t i = 0; i < n; i++) {
        tests[i].name = names[i];
        tests[i].test_func = run_transcript;
        tests[i].initial_state = names[i];
    }
    int rc = _cmocka_run_group_tests("client_transcripts", tests, n, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(tests);
    return rc;
}
