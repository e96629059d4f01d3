/*
 * tests/unit/smtp/test_server.c - session machine driven by transcripts.
 *
 * Each file tests/transcripts/NAME.txt is one test:
 *   # comment
 *   @conf key = value        config line (before the first C:)
 *   @relay                   the client may relay
 *   @commit ok|nospace|fail  result of the next commit (default ok)
 *   C: line                  a command line (CRLF added), or content while in DATA
 *   C+ bytes                 raw bytes with \r \n \0 \\ escapes, fed as is
 *   S: reply                 expected reply line; "S: 250-..." etc. A line ending in '*'
 *                            matches any reply with that prefix.
 *   S! act                   expected action after the last feed: close, abort, starttls,
 *                            auth
 *   @offer tls|auth|auth_plaintext|require_auth|etrn   session options (before the first C:)
 *                            (ETRN: the runner reports 2 messages started, 0 for a domain
 *                            whose name contains "empty")
 *   @tls_done                the TLS handshake finished (after S! starttls)
 *   @auth ok|fail|locked     result of the password check (after S! auth); the checked
 *                            credentials must then be "@user" and "@pass" lines' values
 *   @user NAME / @pass PASS  what the session must have asked the driver to check
 *   @spill                   the driver hands the buffered content to the spool
 *                            (srv_take_body): all of it moves, ending in "second\n"
 *   @spool_failed            the spool could not store it (srv_content_store_failed)
 *   @nogreet                 no greeting yet (before the first C:); then
 *   @early                   the client talked before the greeting (srv_refuse_talker)
 * The clock is fixed (2026-01-01) and queue ids count up from QID0001.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/conf.h"
#include "smtp/server.h"
#include "util/buf.h"

#define TDIR "../transcripts"

static unsigned next_qid;

static void t_new_id(void *ctx, char *id, size_t idsz)
{
    (void)ctx;
    snprintf(id, idsz, "QID%04u", ++next_qid);
}

static time_t t_now(void *ctx)
{
    (void)ctx;
    return 1767225600;  /* 2026-01-01T00:00:00Z */
}

static const struct srv_env t_env = { .new_id = t_new_id, .now = t_now };

static size_t unescape(const char *s, char *out, size_t osz)
{
    size_t o = 0;
    for (; *s && o < osz; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            *s == 'r' ? (out[o++] = '\r') : *s == 'n' ? (out[o++] = '\n') :
                *s == '0' ? (out[o++] = '\0') : (out[o++] = *s);
        } else {
            out[o++] = *s;
        }
    }
    return o;
}

struct run {
    struct smtp_server srv;
    struct buf replies;
    size_t rpos;                /* next unread reply byte */
    int commit_result;
    enum srv_act last_act;
    const char *file;
    int lineno;
};

/* Feed bytes like the driver does: lines in LINE mode, raw bytes in DATA/BDAT. */
static void feed(struct run *r, const char *p, size_t n)
{
    struct srv_out out = { &r->replies, SRV_ACT_NONE };
    static char pend[1 << 16];
    static size_t plen;
    if (n > sizeof pend - plen)
        fail_msg("%s:%d: input too long", r->file, r->lineno);
    memcpy(pend + plen, p, n);
    plen += n;
    for (;;) {
        enum srv_input m = srv_input_mode(&r->srv);
        if (plen == 0 || m == SRV_IN_NONE || m == SRV_IN_WAIT)
            break;
        if (m == SRV_IN_LINE) {
            char *nl = memchr(pend, '\n', plen);
            if (nl == NULL)
                break;
            size_t ll = (size_t)(nl - pend);
            if (ll > 0 && pend[ll - 1] == '\r')
                srv_feed_line(&r->srv, pend, ll - 1, &out);
            else
                srv_bare_lf(&r->srv, &out);
            memmove(pend, nl + 1, plen - ll - 1);
            plen -= ll + 1;
        } else {
            size_t used = srv_feed_data(&r->srv, pend, plen, &out);
            memmove(pend, pend + used, plen - used);
            plen -= used;
            if (used == 0 && out.act == SRV_ACT_NONE)
                break;
        }
        if (out.act == SRV_ACT_COMMIT) {
            out.act = SRV_ACT_NONE;
            srv_commit_done(&r->srv, r->commit_result, &out);
            r->commit_result = SRV_COMMIT_OK;
            r->last_act = SRV_ACT_COMMIT;
        } else if (out.act == SRV_ACT_ETRN) {
            /* the driver starts the queue: pretend two messages were waiting */
            out.act = SRV_ACT_NONE;
            srv_etrn_done(&r->srv, strstr(r->srv.etrn_arg, "empty") ? 0 : 2, &out);
            r->last_act = SRV_ACT_ETRN;
        } else if (out.act == SRV_ACT_STARTTLS) {
            /* The driver drops whatever the client sent after STARTTLS. */
            r->last_act = out.act;
            plen = 0;
            break;
        } else if (out.act != SRV_ACT_NONE) {
            r->last_act = out.act;
            out.act = SRV_ACT_NONE;
        }
    }
    if (srv_input_mode(&r->srv) == SRV_IN_NONE)
        plen = 0;
}

static void expect_reply(struct run *r, const char *want)
{
    const char *p = r->replies.p + r->rpos;
    size_t left = r->replies.len - r->rpos;
    const char *crlf = left ? memmem(p, left, "\r\n", 2) : NULL;
    if (crlf == NULL)
        fail_msg("%s:%d: expected \"%s\", got no reply", r->file, r->lineno, want);
    size_t len = (size_t)(crlf - p);
    size_t wl = strlen(want);
    bool ok = (wl > 0 && want[wl - 1] == '*') ? (len >= wl - 1 && !memcmp(p, want, wl - 1)) :
        (len == wl && !memcmp(p, want, wl));
    if (!ok)
        fail_msg("%s:%d: expected \"%s\", got \"%.*s\"", r->file, r->lineno, want, (int)len, p);
    r->rpos += len + 2;
}

static void run_transcript(void **state)
{
    const char *name = *state;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TDIR, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    struct buf conftext;
    buf_init(&conftext, 0);
    buf_puts(&conftext, "hostname = mx.test\nlocal_domains = example.test localhost\n"
        "local_users = alice bob\nalias postmaster: alice\nalias team: alice, bob, "
        "far@remote.test\n");
    struct run *r = calloc(1, sizeof *r);
    r->file = name;
    buf_init(&r->replies, 0);
    bool started = false, relay = false, nogreet = false;
    bool o_tls = false, o_auth = false, o_plain = false, o_req = false, o_etrn = false;
    struct conf *conf = NULL;
    char line[70000];
    next_qid = 0;
    while (fgets(line, sizeof line, f)) {
        r->lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0 || line[0] == '#')
            continue;
        if (!strncmp(line, "@conf ", 6)) {
            buf_printf(&conftext, "%s\n", line + 6);
            continue;
        }
        if (!strcmp(line, "@relay")) {
            relay = true;
            continue;
        }
        if (!strcmp(line, "@nogreet")) {
            nogreet = true;
            continue;
        }
        if (!strncmp(line, "@offer ", 7)) {
            o_tls |= !strcmp(line + 7, "tls");
            o_auth |= !strcmp(line + 7, "auth");
            o_plain |= !strcmp(line + 7, "auth_plaintext");
            o_req |= !strcmp(line + 7, "require_auth");
            o_etrn |= !strcmp(line + 7, "etrn");
            continue;
        }
        if (!started) {
            char err[512];
            conf = conf_parse(conftext.p, conftext.len, name, err, sizeof err);
            if (conf == NULL)
                fail_msg("%s: config: %s", name, err);
            srv_init(&r->srv, conf, &t_env, "192.0.2.7", relay);
            r->srv.tls_offer = o_tls;
            r->srv.auth_offer = o_auth;
            r->srv.auth_plaintext = o_plain;
            r->srv.require_auth = o_req;
            r->srv.etrn_ok = o_etrn;
            struct srv_out out = { &r->replies, SRV_ACT_NONE };
            if (!nogreet)
                srv_greet(&r->srv, &out);
            started = true;
        }
        if (!strncmp(line, "@commit ", 8)) {
            r->commit_result = !strcmp(line + 8, "nospace") ? SRV_COMMIT_NOSPACE :
                !strcmp(line + 8, "fail") ? SRV_COMMIT_FAIL : SRV_COMMIT_OK;
        } else if (!strncmp(line, "C: ", 3) || !strcmp(line, "C:")) {
            char b[70002];
            size_t k = n > 3 ? n - 3 : 0;
            memcpy(b, line + 3 > line + n ? line + n : line + 3, k);
            b[k++] = '\r';
            b[k++] = '\n';
            feed(r, b, k);
        } else if (!strncmp(line, "C+ ", 3)) {
            char b[70000];
            size_t k = unescape(line + 3, b, sizeof b);
            feed(r, b, k);
        } else if (!strncmp(line, "S: ", 3)) {
            expect_reply(r, line + 3);
        } else if (!strcmp(line, "@tls_done")) {
            srv_tls_done(&r->srv, "TLSv1.3 with cipher TEST (256/256 bits)");
            r->last_act = SRV_ACT_NONE;
        } else if (!strncmp(line, "@user ", 6)) {
            if (strcmp(r->srv.auth_try_user, line + 6) != 0)
                fail_msg("%s:%d: user to check is \"%s\"", name, r->lineno,
                    r->srv.auth_try_user);
        } else if (!strncmp(line, "@pass ", 6)) {
            if (strcmp(r->srv.auth_try_pass, line + 6) != 0)
                fail_msg("%s:%d: password to check differs", name, r->lineno);
        } else if (!strncmp(line, "@auth ", 6)) {
            struct srv_out out = { &r->replies, SRV_ACT_NONE };
            srv_auth_done(&r->srv, !strcmp(line + 6, "ok"), !strcmp(line + 6, "locked"), &out);
            r->last_act = out.act;
            feed(r, "", 0);
        } else if (!strcmp(line, "@spill")) {
            if (r->srv.tx == NULL)
                fail_msg("%s:%d: no transaction to spill", name, r->lineno);
            struct buf taken;
            buf_init(&taken, 0);
            size_t had = r->srv.tx->body.len;
            unsigned long long spilled = r->srv.tx->spilled;
            size_t moved = srv_take_body(&r->srv, &taken);
            if (had == 0 || moved != had || taken.len != had || r->srv.tx->body.len != 0 ||
                r->srv.tx->spilled != spilled + had ||
                memmem(taken.p, taken.len, "second\n", 7) == NULL)
                fail_msg("%s:%d: srv_take_body moved %zu of %zu octets", name, r->lineno,
                    moved, had);
            buf_free(&taken);
        } else if (!strcmp(line, "@spool_failed")) {
            srv_content_store_failed(&r->srv);
        } else if (!strcmp(line, "@early")) {
            struct srv_out out = { &r->replies, SRV_ACT_NONE };
            srv_refuse_talker(&r->srv, &out);
            r->last_act = out.act;
        } else if (!strncmp(line, "S! ", 3)) {
            enum srv_act want = !strcmp(line + 3, "close") ? SRV_ACT_CLOSE :
                !strcmp(line + 3, "abort") ? SRV_ACT_ABORT :
                !strcmp(line + 3, "starttls") ? SRV_ACT_STARTTLS :
                !strcmp(line + 3, "auth") ? SRV_ACT_AUTH : SRV_ACT_NONE;
            if (r->last_act != want)
                fail_msg("%s:%d: expected action %s, got %d", name, r->lineno, line + 3,
                    (int)r->last_act);
        } else {
            fail_msg("%s:%d: bad transcript line", name, r->lineno);
        }
    }
    fclose(f);
    if (r->rpos != r->replies.len)
        fail_msg("%s: unexpected extra replies: \"%.*s\"", name,
            (int)(r->replies.len - r->rpos), r->replies.p + r->rpos);
    srv_free(&r->srv);
    conf_free(conf);
    buf_free(&r->replies);
    buf_free(&conftext);
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
    qsort(names, n, sizeof names[0], cmp);
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    for (size_t i = 0; i < n; i++) {
        tests[i].name = names[i];
        tests[i].test_func = run_transcript;
        tests[i].initial_state = names[i];
    }
    int rc = _cmocka_run_group_tests("transcripts", tests, n, NULL, NULL);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(tests);
    return rc;
}
