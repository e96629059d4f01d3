/*
 * tests/fuzz/fuzz_parse.c - libFuzzer target for smtp/parse.
 *
 * The input is one command line. It goes through every parser, and each result is checked:
 * arguments stay inside the input, outputs are terminated, a canonical address re-parses to
 * itself, and xtext survives a round trip. A broken invariant aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp/parse.h"
#include "util/buf.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void check_terminated(const char *s, size_t sz)
{
    CHECK(memchr(s, '\0', sz) != NULL);
}

/* A parsed path is consistent and its canonical text parses to the same path. */
static void check_path(const struct smtp_path *p, bool is_reverse, bool utf8_ok)
{
    check_terminated(p->local, sizeof p->local);
    check_terminated(p->domain, sizeof p->domain);
    check_terminated(p->addr, sizeof p->addr);
    CHECK(utf8_ok || !p->utf8);
    CHECK(!(p->null && p->postmaster));
    if (p->null) {
        CHECK(is_reverse && p->addr[0] == '\0' && p->domain[0] == '\0');
        return;
    }
    if (p->postmaster) {
        CHECK(!is_reverse && strcmp(p->addr, "postmaster") == 0 && p->domain[0] == '\0');
        return;
    }
    CHECK(strlen(p->local) <= SMTP_LOCAL_MAX);
    CHECK(strlen(p->domain) <= SMTP_DOMAIN_MAX);
    CHECK(smtp_domain_valid(p->domain, strlen(p->domain), utf8_ok));

    char again[SMTP_PATH_MAX * 2 + 2];
    size_t an = strlen(p->addr), end;
    CHECK(an + 2 <= sizeof again);
    again[0] = '<';
    memcpy(again + 1, p->addr, an);
    again[an + 1] = '>';
    struct smtp_path q;
    CHECK(smtp_parse_path(again, an + 2, is_reverse, utf8_ok, &q, &end) == SMTP_PERR_OK);
    CHECK(end == an + 2);
    CHECK(strcmp(q.addr, p->addr) == 0);
    CHECK(strcmp(q.local, p->local) == 0);
    CHECK(strcmp(q.domain, p->domain) == 0);
    CHECK(q.literal == p->literal);
}

static void check_mail(const char *s, size_t n)
{
    struct smtp_mail_args m;
    enum smtp_perr e = smtp_parse_mail(s, n, &m);
    CHECK(smtp_perr_reply(e, false) != NULL);
    if (e != SMTP_PERR_OK)
        return;
    check_path(&m.path, true, m.smtputf8);
    check_terminated(m.envid, sizeof m.envid);
    check_terminated(m.auth, sizeof m.auth);
    CHECK(m.has_envid == (m.envid[0] != '\0'));
}

static void check_rcpt(const char *s, size_t n, bool utf8_ok)
{
    struct smtp_rcpt_args r;
    enum smtp_perr e = smtp_parse_rcpt(s, n, utf8_ok, &r);
    CHECK(smtp_perr_reply(e, true) != NULL);
    if (e != SMTP_PERR_OK)
        return;
    check_path(&r.path, false, utf8_ok);
    CHECK((r.notify & ~15u) == 0);
    CHECK(!(r.notify & SMTP_NOTIFY_NEVER) || r.notify == SMTP_NOTIFY_NEVER);
    check_terminated(r.orcpt_type, sizeof r.orcpt_type);
    check_terminated(r.orcpt, sizeof r.orcpt);
    CHECK(r.has_orcpt == (r.orcpt_type[0] != '\0'));
}

static void check_xtext(const char *s, size_t n)
{
    static char dec[4096 + 1], dec2[4096 + 1];
    size_t dn, dn2;
    struct buf b;

    /* raw octets survive encode + decode */
    buf_init(&b, 0);
    CHECK(smtp_xtext_encode(s, n, &b) == 0);
    CHECK(smtp_xtext_decode(b.p, b.len, dec, sizeof dec, &dn) == 0);
    CHECK(dn == n && (n == 0 || memcmp(dec, s, n) == 0));
    buf_free(&b);

    /* valid xtext decodes to something that encodes to valid xtext of the same octets */
    if (smtp_xtext_decode(s, n, dec, sizeof dec, &dn) == 0) {
        CHECK(dn <= n);
        buf_init(&b, 0);
        CHECK(smtp_xtext_encode(dec, dn, &b) == 0);
        CHECK(smtp_xtext_decode(b.p, b.len, dec2, sizeof dec2, &dn2) == 0);
        CHECK(dn2 == dn && (dn == 0 || memcmp(dec, dec2, dn) == 0));
        buf_free(&b);
    }

    /* a capped buffer is left untouched on failure */
    buf_init(&b, 8);
    if (smtp_xtext_encode(s, n, &b) == -1)
        CHECK(b.len == 0);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    if (size > 4096)
        return 0;

    struct smtp_cmd cmd;
    CHECK(smtp_parse_cmd(s, size, &cmd) == 0);
    CHECK(cmd.arg >= s && cmd.arglen <= size && cmd.arg + cmd.arglen <= s + size);
    if (cmd.verb == SMTP_VERB_MAIL) {
        check_mail(cmd.arg, cmd.arglen);
    } else if (cmd.verb == SMTP_VERB_RCPT) {
        check_rcpt(cmd.arg, cmd.arglen, false);
        check_rcpt(cmd.arg, cmd.arglen, true);
    }

    /* the whole input as an argument, as a path and as a domain */
    check_mail(s, size);
    check_rcpt(s, size, false);
    check_rcpt(s, size, true);
    for (int k = 0; k < 4; k++) {
        struct smtp_path p;
        size_t end;
        bool rev = k & 1, utf8 = k & 2;
        if (smtp_parse_path(s, size, rev, utf8, &p, &end) == SMTP_PERR_OK) {
            CHECK(end >= 2 && end <= size && s[end - 1] == '>');
            CHECK(end <= SMTP_PATH_MAX);
            check_path(&p, rev, utf8);
        }
    }
    bool d = smtp_domain_valid(s, size, false), du = smtp_domain_valid(s, size, true);
    bool h = smtp_helo_valid(s, size);
    CHECK(!d || du);
    CHECK(!du || h);
    CHECK(!du || smtp_utf8_valid(s, size));

    check_xtext(s, size);
    return 0;
}
