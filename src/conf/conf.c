/*
 * conf/conf.c - configuration parsing, defaults and printing.
 *
 * Owns:  struct conf and its lifetime, and keys[]: the one table of settings. Each entry
 *        gives a key's type, where and how wide it is stored, its default (in the file's
 *        syntax, parsed by the same code as the file), its bounds, whether a reload can
 *        change it, and its help text. Defaults, parsing, printing, freeing and the reload
 *        diff all walk that table.
 * Never: opens sockets or the spool; it only reads the config and the aliases files.
 */
#include "conf/conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "policy/aliases.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xmalloc.h"

const char conf_default_text[] =
    "# postel built-in configuration (posteld without -f)\n"
    "listen = 127.0.0.1:2525\n"
    "spool_dir = var/spool\n"
    "mail_dir = var/mail\n"
    "local_domains = localhost\n"
    "local_users = alice bob\n"
    "alias postmaster: alice\n"
    "alias root: alice\n"
    "relay_networks =\n";

enum ctype { CT_STR, CT_LISTEN, CT_LIST, CT_CIDRS, CT_SIZE, CT_COUNT, CT_TIME, CT_MS, CT_BOOL,
    CT_LOOKUP, CT_TLS, CT_TLSMAP, CT_CRED, CT_BARELF };

#define CK_RESTART  0x1u    /* read only at start: a reload keeps the running value */
#define CK_REQUIRED 0x2u    /* the value may not be empty */
#define CK_HOSTNAME 0x4u    /* the default is this machine's name */

struct ckey {
    const char *name;
    enum ctype type;
    size_t off;                 /* the field in struct conf */
    size_t off2;                /* CT_LIST: its count; CT_CRED: the password */
    size_t width;               /* sizeof the field; numbers take 4 or 8 octets */
    const char *def;            /* the default in the file's syntax; NULL: empty */
    unsigned long long min, max;    /* numbers (CT_SIZE, CT_COUNT, CT_TIME, CT_MS); max 0: none */
    unsigned flags;             /* CK_* */
    const char *help;
};

#define OFF(f) offsetof(struct conf, f)
#define W(f) sizeof(((struct conf *)0)->f)
#define KEY(n, t, f, d, fl, h) { n, t, OFF(f), 0, W(f), d, 0, 0, fl, h }
#define NUM(n, t, f, d, lo, hi, fl, h) { n, t, OFF(f), 0, W(f), d, lo, hi, fl, h }
#define PAIR(n, t, f, f2, d, fl, h) { n, t, OFF(f), OFF(f2), W(f), d, 0, 0, fl, h }

static const struct ckey keys[] = {
    KEY("hostname", CT_STR, hostname, NULL, CK_REQUIRED | CK_HOSTNAME,
        "our name in the greeting, EHLO and Received"),
    KEY("listen", CT_LISTEN, listen, "127.0.0.1:25", CK_REQUIRED | CK_RESTART,
        "addresses and ports of the SMTP listener"),
    KEY("submission_listen", CT_LISTEN, submission, NULL, CK_RESTART,
        "submission (587): STARTTLS, then AUTH required"),
    KEY("smtps_listen", CT_LISTEN, smtps, NULL, CK_RESTART,
        "submission over implicit TLS (465)"),
    KEY("user", CT_STR, user, NULL, CK_RESTART, "run as this user after binding the ports"),
    KEY("tls", CT_BOOL, tls, "on", CK_RESTART, "offer STARTTLS"),
    KEY("tls_cert", CT_STR, tls_cert, NULL, CK_RESTART,
        "certificate chain (PEM); empty: self-signed"),
    KEY("tls_key", CT_STR, tls_key, NULL, CK_RESTART, "private key (PEM)"),
    KEY("tls_ca_file", CT_STR, tls_ca_file, NULL, CK_RESTART,
        "CAs for outbound verify; empty: system"),
    KEY("tls_policy", CT_TLS, tls_policy, "may", 0, "outbound TLS: none, may, encrypt, verify"),
    KEY("tls_policy_map", CT_TLSMAP, tls_policy_map, NULL, 0,
        "per destination: domain=policy ..."),
    KEY("auth_passwd_file", CT_STR, auth_passwd_file, NULL, CK_RESTART,
        "AUTH users (user:crypt-hash)"),
    KEY("sender_login_file", CT_STR, sender_login_file, NULL, CK_RESTART,
        "which users may send as which addresses"),
    KEY("auth_plaintext", CT_BOOL, auth_plaintext, "off", 0,
        "offer AUTH without TLS to trusted networks"),
    KEY("auth_max_failures", CT_COUNT, auth_max_failures, "5", 0,
        "failed logins per address before a lockout"),
    KEY("auth_lockout", CT_TIME, auth_lockout, "10m", 0, "how long a lockout lasts"),
    PAIR("relayhost_auth", CT_CRED, relayhost_user, relayhost_pass, NULL, 0,
        "user:password for the relayhost, sent only over verified TLS"),
    KEY("relayhost_auth_unverified_tls", CT_BOOL, relayhost_auth_unverified_tls, "off", 0,
        "RISK: send relayhost_auth over TLS whose certificate is not verified"),
    KEY("spool_dir", CT_STR, spool_dir, "/var/spool/postel", CK_REQUIRED | CK_RESTART,
        "the queue"),
    KEY("mail_dir", CT_STR, mail_dir, "/var/mail/postel", CK_REQUIRED | CK_RESTART,
        "Maildirs: <mail_dir>/<user>/"),
    PAIR("local_domains", CT_LIST, local_domains, nlocal_domains, NULL, 0,
        "domains delivered here"),
    PAIR("local_users", CT_LIST, local_users, nlocal_users, NULL, 0,
        "mailboxes of the local domains"),
    KEY("aliases_file", CT_STR, aliases_file, NULL, 0, "aliases(5) file"),
    KEY("relay_networks", CT_CIDRS, relay_networks, NULL, 0, "clients that may relay"),
    KEY("trusted_networks", CT_CIDRS, trusted_networks, "127.0.0.0/8 ::1/128", 0,
        "clients exempt from per-address limits and the greet pause"),
    KEY("etrn_networks", CT_CIDRS, etrn_networks, NULL, 0,
        "clients that may use ETRN (RFC 1985)"),
    KEY("message_size_limit", CT_SIZE, message_size_limit, "10M", 0, "octets, 0: none"),
    KEY("max_recipients", CT_COUNT, max_recipients, "1000", 0, "recipients per message"),
    KEY("max_errors", CT_COUNT, max_errors, "10", 0, "errors in a row before 421"),
    KEY("max_connections", CT_COUNT, max_connections, "15000", 0, "connections in total"),
    KEY("max_connections_per_ip", CT_COUNT, max_connections_per_ip, "50", 0,
        "connections per client address"),
    KEY("max_line_length", CT_COUNT, max_line_length, "998", 0,
        "message text line length, octets without CRLF"),
    KEY("bare_lf", CT_BARELF, bare_lf, "normalize", 0,
        "content lines ending in a bare LF: normalize (as CRLF) or reject (554 5.6.0)"),
    KEY("max_hops", CT_COUNT, max_hops, "50", 0,
        "Received headers after which a message is a mail loop (bounced 5.4.6)"),
    KEY("timeout_command", CT_TIME, timeout_command, "5m", 0, "waiting for a command"),
    KEY("timeout_data", CT_TIME, timeout_data, "5m", 0, "waiting for message content"),
    KEY("greet_pause", CT_MS, greet_pause_ms, "1000ms", 0, "delay before the greeting"),
    KEY("vrfy", CT_LOOKUP, vrfy, "off", 0, "off: 252 to all; on: answer from users and aliases"),
    KEY("expn", CT_LOOKUP, expn, "off", 0, "off: 502; on: list alias members"),
    NUM("workers", CT_COUNT, workers, "8", 1, 256, CK_RESTART, "disk worker threads"),
    KEY("retry_min", CT_TIME, retry_min, "5m", 0, "first retry of a deferred delivery"),
    KEY("retry_max", CT_TIME, retry_max, "30m", 0, "longest retry interval"),
    KEY("max_queue_lifetime", CT_TIME, max_queue_lifetime, "5d", 0,
        "then a deferred message bounces"),
    KEY("delay_warning_time", CT_TIME, delay_warning_time, "4h", 0,
        "send a 'delayed' notice after this long; 0: never"),
    KEY("relayhost", CT_STR, relayhost, NULL, 0,
        "smarthost for all remote mail: host, [host], :port"),
    KEY("dns_servers", CT_STR, dns_servers, NULL, CK_RESTART,
        "resolvers as ip:port,...; empty: resolv.conf"),
    NUM("smtp_port", CT_COUNT, smtp_port, "25", 1, 65535, 0, "port of remote mail hosts"),
    KEY("connect_timeout", CT_TIME, connect_timeout, "30s", 0, "outbound connect timeout"),
    KEY("connection_cache_time", CT_TIME, connection_cache_time, "2s", 0,
        "keep an idle outbound connection this long for the next message; 0: never"),
    KEY("dest_concurrency", CT_COUNT, dest_concurrency, "20", 0, "connections per destination"),
    KEY("remote_concurrency", CT_COUNT, remote_concurrency, "100", 0,
        "outbound connections in total"),
    KEY("rcpt_251", CT_BOOL, rcpt_251, "off", 0, "answer 251 for aliases forwarded off-host"),
    KEY("double_bounce", CT_LOOKUP, double_bounce, "on", 0,
        "on: undeliverable bounces go to postmaster; off: dropped (logged)"),
    KEY("control_socket", CT_STR, control_socket, NULL, CK_RESTART,
        "default <spool_dir>/control"),
    KEY("admin_group", CT_STR, admin_group, "mail", 0, "group that may change the queue"),
    KEY("log_debug", CT_BOOL, log_debug, "off", 0, "debug logging"),
};

#define NKEYS (sizeof keys / sizeof keys[0])

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void tls_map_free(struct conf_tls_map *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].dest);
    free(m->v);
    m->v = NULL;
    m->n = 0;
}

/* Free a secret string after wiping it. */
static void free_secret(char **s)
{
    if (*s)
        explicit_bzero(*s, strlen(*s));
    free(*s);
    *s = NULL;
}

/* Split a value into words at spaces and commas. */
static size_t split_words(char *v, char **words, size_t max)
{
    size_t n = 0;
    char *save = NULL;
    for (char *w = strtok_r(v, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
        if (n == max)
            return max + 1;
        words[n++] = w;
    }
    return n;
}

static int parse_size(const char *v, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || errno || v[0] == '-')
        return -1;
    unsigned long long mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
        mul = 1024ULL * 1024 * 1024, end++;
    if (*end != '\0' || (n && mul > UINT64_MAX / n))
        return -1;
    *out = n * mul;
    return 0;
}

/* Durations: plain seconds or with s, m, h, d; ms_unit: plain numbers are milliseconds. */
static int parse_time(const char *v, bool ms_unit, unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v || errno || v[0] == '-')
        return -1;
    unsigned long long mul = ms_unit ? 1 : 1000;
    if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else if (strcmp(end, "h") == 0)
        mul = 3600000;
    else if (strcmp(end, "d") == 0)
        mul = 86400000;
    else if (*end != '\0')
        return -1;
    if (n > UINT32_MAX || n * mul / (ms_unit ? 1 : 1000) > UINT32_MAX)
        return -1;
    *out = n * mul / (ms_unit ? 1 : 1000);
    return 0;
}

static int parse_listen(const char *w, struct conf_listen *l)
{
    const char *colon;
    size_t hl;
    if (w[0] == '[') {
        const char *rb = strchr(w, ']');
        if (rb == NULL || rb[1] != ':')
            return -1;
        colon = rb + 1;
        if (str_ncopy(l->host, sizeof l->host, w + 1, (size_t)(rb - w - 1)) == -1)
            return -1;
    } else {
        colon = strrchr(w, ':');
        if (colon == NULL)
            return -1;
        hl = (size_t)(colon - w);
        if (str_ncopy(l->host, sizeof l->host, w, hl) == -1)
            return -1;
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 1 || p > 65535)
        return -1;
    struct cidr probe;
    if (cidr_parse(l->host, &probe) == -1)
        return -1;
    l->port = (int)p;
    return 0;
}

static const char *const tls_names[] = { "none", "may", "encrypt", "verify" };

const char *conf_tls_name(enum conf_tls p)
{
    return (size_t)p < sizeof tls_names / sizeof tls_names[0] ? tls_names[p] : "?";
}

static int parse_tls(const char *v, enum conf_tls *out)
{
    for (size_t i = 0; i < sizeof tls_names / sizeof tls_names[0]; i++) {
        if (strcmp(v, tls_names[i]) == 0) {
            *out = (enum conf_tls)i;
            return 0;
        }
    }
    return -1;
}

/* tls_policy_map: "dest=policy" words; m is replaced only when all of them are valid. */
static int parse_tls_map(char *v, struct conf_tls_map *m, char *err, size_t errsz)
{
    struct conf_tls_map n = { NULL, 0 };
    size_t cap = 0;
    char *save = NULL;
    for (char *w = strtok_r(v, " \t,", &save); w; w = strtok_r(NULL, " \t,", &save)) {
        char *eq = strchr(w, '=');
        enum conf_tls pol;
        if (eq == NULL || eq == w) {
            snprintf(err, errsz, "tls_policy_map: '%.200s' is not destination=policy", w);
            goto fail;
        }
        *eq = '\0';
        if (parse_tls(eq + 1, &pol) == -1) {
            snprintf(err, errsz, "tls_policy_map: %.200s: unknown policy '%.40s' (want none, "
                "may, encrypt or verify)", w, eq + 1);
            goto fail;
        }
        for (size_t i = 0; i < n.n; i++) {
            if (strcasecmp(n.v[i].dest, w) == 0) {
                snprintf(err, errsz, "tls_policy_map: '%.200s' is listed twice", w);
                goto fail;
            }
        }
        if (n.n == cap) {
            cap = cap ? cap * 2 : 16;
            n.v = xreallocarray(n.v, cap, sizeof *n.v);
        }
        n.v[n.n].dest = xstrdup(w);
        n.v[n.n].policy = pol;
        n.n++;
    }
    tls_map_free(m);
    *m = n;
    return 0;
fail:
    tls_map_free(&n);
    return -1;
}

/* relayhost_auth: "user:password" (split at the first ':'), or empty for none. */
static int parse_cred(const char *v, char **user, char **pass, char *err, size_t errsz)
{
    free_secret(user);
    free_secret(pass);
    if (*v == '\0')
        return 0;
    const char *colon = strchr(v, ':');
    size_t ul = colon ? (size_t)(colon - v) : 0;
    size_t pl = colon ? strlen(colon + 1) : 0;
    if (colon == NULL || ul == 0 || pl == 0) {
        snprintf(err, errsz, "relayhost_auth: want user:password");
        return -1;
    }
    if (ul > CONF_AUTH_MAX || pl > CONF_AUTH_MAX) {
        snprintf(err, errsz, "relayhost_auth: user and password take at most %d octets each",
            CONF_AUTH_MAX);
        return -1;
    }
    if (strpbrk(v, "\r\n")) {
        snprintf(err, errsz, "relayhost_auth: CR or LF in user:password");
        return -1;
    }
    *user = xstrndup(v, ul);
    *pass = xstrdup(colon + 1);
    return 0;
}

/* Store n in a number field of width octets (checked against the table at the bounds). */
static void store_num(void *p, size_t width, unsigned long long n)
{
    if (width == sizeof(uint32_t)) {
        uint32_t v = (uint32_t)n;
        memcpy(p, &v, sizeof v);
    } else if (width == sizeof(uint64_t)) {
        uint64_t v = n;
        memcpy(p, &v, sizeof v);
    } else {
        abort();            /* a keys[] entry with a field the table cannot store */
    }
}

static unsigned long long load_num(const void *p, size_t width)
{
    if (width == sizeof(uint32_t)) {
        uint32_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    uint64_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* The largest number a field can hold (counts stay well below SIZE_MAX). */
static unsigned long long num_limit(const struct ckey *k)
{
    if (k->width == sizeof(uint32_t))
        return UINT32_MAX;
    return k->type == CT_COUNT ? SIZE_MAX / 2 : UINT64_MAX;
}

static void print_time(struct buf *b, unsigned long long s)
{
    if (s && s % 86400 == 0)
        buf_printf(b, "%llud", s / 86400);
    else if (s && s % 3600 == 0)
        buf_printf(b, "%lluh", s / 3600);
    else if (s && s % 60 == 0)
        buf_printf(b, "%llum", s / 60);
    else
        buf_printf(b, "%llus", s);
}

/* A number in the key's unit, as the file would spell it. */
static void print_num(struct buf *b, const struct ckey *k, unsigned long long n)
{
    if (k->type == CT_TIME)
        print_time(b, n);
    else if (k->type == CT_MS)
        buf_printf(b, "%llums", n);
    else
        buf_printf(b, "%llu", n);
}

static int set_num(void *p, const struct ckey *k, const char *v, char *err, size_t errsz)
{
    unsigned long long n;
    int bad = k->type == CT_TIME || k->type == CT_MS ? parse_time(v, k->type == CT_MS, &n) :
        parse_size(v, &n);
    if (bad == -1 || n > num_limit(k)) {
        if (k->type == CT_SIZE)
            snprintf(err, errsz, "%s: bad size '%s' (e.g. 10485760, 64k, 10M)", k->name, v);
        else if (k->type == CT_COUNT)
            snprintf(err, errsz, "%s: bad number '%s'", k->name, v);
        else
            snprintf(err, errsz, "%s: bad duration '%s' (e.g. 300, 300s, 5m, 1h, 5d)",
                k->name, v);
        return -1;
    }
    if (n < k->min || (k->max && n > k->max)) {
        struct buf lo, hi;
        buf_init(&lo, 0);
        buf_init(&hi, 0);
        print_num(&lo, k, k->min);
        print_num(&hi, k, k->max ? k->max : num_limit(k));
        snprintf(err, errsz, "%s: must be %s to %s", k->name, buf_cstr(&lo), buf_cstr(&hi));
        buf_free(&lo);
        buf_free(&hi);
        return -1;
    }
    store_num(p, k->width, n);
    return 0;
}

/* Empty a field, freeing what it holds. */
static void clear_value(struct conf *c, const struct ckey *k)
{
    char *p = (char *)c + k->off;
    switch (k->type) {
    case CT_STR:
        free(*(char **)p);
        *(char **)p = NULL;
        break;
    case CT_LISTEN:
        ((struct conf_listen_set *)p)->n = 0;
        break;
    case CT_LIST: {
        size_t *np = (size_t *)((char *)c + k->off2);
        free_list(*(char ***)p, *np);
        *(char ***)p = NULL;
        *np = 0;
        break;
    }
    case CT_CIDRS:
        cidr_list_free((struct cidr_list *)p);
        break;
    case CT_TLSMAP:
        tls_map_free((struct conf_tls_map *)p);
        break;
    case CT_CRED:
        free_secret((char **)p);
        free_secret((char **)((char *)c + k->off2));
        break;
    case CT_SIZE:
    case CT_COUNT:
    case CT_TIME:
    case CT_MS:
    case CT_BOOL:
    case CT_LOOKUP:
    case CT_TLS:
    case CT_BARELF:
        break;
    }
}

/* Set key k from value v (v is modified). Returns 0, or -1 with the message in err. */
static int set_key(struct conf *c, const struct ckey *k, char *v, char *err, size_t errsz)
{
    char *p = (char *)c + k->off;
    char *words[4096];
    size_t nw;
    switch (k->type) {
    case CT_STR:
        if (*v == '\0' && (k->flags & CK_REQUIRED)) {
            snprintf(err, errsz, "%s needs a value", k->name);
            return -1;
        }
        free(*(char **)p);
        *(char **)p = *v ? xstrdup(v) : NULL;
        return 0;
    case CT_LISTEN: {
        struct conf_listen_set *ls = (struct conf_listen_set *)p;
        size_t least = (k->flags & CK_REQUIRED) ? 1 : 0;
        nw = split_words(v, words, CONF_MAX_LISTEN);
        if (nw > CONF_MAX_LISTEN || nw < least) {
            snprintf(err, errsz, "%s takes %zu to %d address:port pairs", k->name, least,
                CONF_MAX_LISTEN);
            return -1;
        }
        struct conf_listen_set n = { .n = nw };
        for (size_t i = 0; i < nw; i++) {
            if (parse_listen(words[i], &n.v[i]) == -1) {
                snprintf(err, errsz, "bad %s address '%s' (want 127.0.0.1:25 or [::1]:25)",
                    k->name, words[i]);
                return -1;
            }
        }
        *ls = n;
        return 0;
    }
    case CT_LIST: {
        nw = split_words(v, words, sizeof words / sizeof words[0] - 1);
        if (nw >= sizeof words / sizeof words[0] - 1) {
            snprintf(err, errsz, "%s: too many entries", k->name);
            return -1;
        }
        clear_value(c, k);
        char **l = xcalloc(nw + 1, sizeof(char *));
        for (size_t i = 0; i < nw; i++) {
            l[i] = xstrdup(words[i]);
            str_lower(l[i]);
        }
        *(char ***)p = l;
        *(size_t *)((char *)c + k->off2) = nw;
        return 0;
    }
    case CT_CIDRS: {
        struct cidr_list n = { 0 };
        nw = split_words(v, words, sizeof words / sizeof words[0]);
        for (size_t i = 0; i < nw && i < sizeof words / sizeof words[0]; i++) {
            struct cidr ci;
            if (cidr_parse(words[i], &ci) == -1) {
                snprintf(err, errsz, "%s: bad network '%s'", k->name, words[i]);
                cidr_list_free(&n);
                return -1;
            }
            cidr_list_add(&n, &ci);
        }
        cidr_list_free((struct cidr_list *)p);
        *(struct cidr_list *)p = n;
        return 0;
    }
    case CT_SIZE:
    case CT_COUNT:
    case CT_TIME:
    case CT_MS:
        return set_num(p, k, v, err, errsz);
    case CT_TLS:
        if (parse_tls(v, (enum conf_tls *)p) == -1) {
            snprintf(err, errsz, "%s: want none, may, encrypt or verify, not '%.40s'", k->name,
                v);
            return -1;
        }
        return 0;
    case CT_BARELF:
        if (strcasecmp(v, "normalize") == 0) {
            *(enum conf_bare_lf *)p = CONF_BARE_LF_NORMALIZE;
        } else if (strcasecmp(v, "reject") == 0) {
            *(enum conf_bare_lf *)p = CONF_BARE_LF_REJECT;
        } else {
            snprintf(err, errsz, "%s: want normalize or reject, not '%.40s'", k->name, v);
            return -1;
        }
        return 0;
    case CT_TLSMAP:
        return parse_tls_map(v, (struct conf_tls_map *)p, err, errsz);
    case CT_CRED:
        return parse_cred(v, (char **)p, (char **)((char *)c + k->off2), err, errsz);
    case CT_BOOL:
    case CT_LOOKUP: {
        bool on;
        if (!strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcasecmp(v, "true")) {
            on = true;
        } else if (!strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcasecmp(v, "false")) {
            on = false;
        } else {
            snprintf(err, errsz, "%s: want on or off, not '%s'", k->name, v);
            return -1;
        }
        if (k->type == CT_BOOL)
            *(bool *)p = on;
        else
            *(enum conf_lookup *)p = on ? CONF_LOOKUP_ON : CONF_LOOKUP_OFF;
        return 0;
    }
    }
    return -1;
}

/*
 * Append k's value in c to b in the file's syntax (words separated by one space).
 * reveal: the relayhost_auth secret as it is, else "(set, not shown)".
 */
static void format_value(const struct conf *c, const struct ckey *k, struct buf *b,
    bool reveal)
{
    const char *p = (const char *)c + k->off;
    switch (k->type) {
    case CT_STR:
        if (*(char *const *)p)
            buf_puts(b, *(char *const *)p);
        break;
    case CT_CRED: {
        const char *pass = *(char *const *)((const char *)c + k->off2);
        if (*(char *const *)p && reveal)
            buf_printf(b, "%s:%s", *(char *const *)p, pass);
        else if (*(char *const *)p)
            buf_puts(b, "(set, not shown)");
        break;
    }
    case CT_TLS:
        buf_puts(b, conf_tls_name(*(const enum conf_tls *)p));
        break;
    case CT_BARELF:
        buf_puts(b, *(const enum conf_bare_lf *)p == CONF_BARE_LF_REJECT ? "reject" :
            "normalize");
        break;
    case CT_TLSMAP: {
        const struct conf_tls_map *m = (const struct conf_tls_map *)p;
        for (size_t j = 0; j < m->n; j++)
            buf_printf(b, "%s%s=%s", j ? " " : "", m->v[j].dest, conf_tls_name(m->v[j].policy));
        break;
    }
    case CT_LISTEN: {
        const struct conf_listen_set *ls = (const struct conf_listen_set *)p;
        for (size_t j = 0; j < ls->n; j++)
            buf_printf(b, strchr(ls->v[j].host, ':') ? "%s[%s]:%d" : "%s%s:%d", j ? " " : "",
                ls->v[j].host, ls->v[j].port);
        break;
    }
    case CT_LIST: {
        char *const *l = *(char **const *)p;
        size_t cnt = *(const size_t *)((const char *)c + k->off2);
        for (size_t j = 0; j < cnt; j++)
            buf_printf(b, "%s%s", j ? " " : "", l[j]);
        break;
    }
    case CT_CIDRS: {
        const struct cidr_list *l = (const struct cidr_list *)p;
        char tmp[64];
        for (size_t j = 0; j < l->n; j++)
            buf_printf(b, "%s%s", j ? " " : "", cidr_format(&l->v[j], tmp, sizeof tmp));
        break;
    }
    case CT_SIZE:
    case CT_COUNT:
    case CT_TIME:
    case CT_MS:
        print_num(b, k, load_num(p, k->width));
        break;
    case CT_BOOL:
        buf_puts(b, *(const bool *)p ? "on" : "off");
        break;
    case CT_LOOKUP:
        buf_puts(b, *(const enum conf_lookup *)p == CONF_LOOKUP_ON ? "on" : "off");
        break;
    }
}

/* Free a buffer that may hold a secret. */
static void buf_free_wiped(struct buf *b)
{
    if (b->p)
        explicit_bzero(b->p, b->cap);
    buf_free(b);
}

/* Do a and b hold the same value of k? */
static bool same_value(const struct conf *a, const struct conf *b, const struct ckey *k)
{
    struct buf x, y;
    buf_init(&x, 0);
    buf_init(&y, 0);
    format_value(a, k, &x, true);
    format_value(b, k, &y, true);
    bool same = strcmp(buf_cstr(&x), buf_cstr(&y)) == 0;
    buf_free_wiped(&x);
    buf_free_wiped(&y);
    return same;
}

/* Set k in dst to its value in src, through the parser (src's value is valid). */
static void copy_value(struct conf *dst, const struct conf *src, const struct ckey *k)
{
    struct buf v;
    char msg[512];
    buf_init(&v, 0);
    format_value(src, k, &v, true);
    (void)buf_cstr(&v);
    char empty[1] = "";
    if (set_key(dst, k, v.p ? v.p : empty, msg, sizeof msg) == -1)
        abort();            /* a value the parser gave cannot be parsed back */
    buf_free_wiped(&v);
}

/* Every key to its default. */
static void set_defaults(struct conf *c)
{
    char host[256], msg[512];
    for (size_t i = 0; i < NKEYS; i++) {
        const struct ckey *k = &keys[i];
        if (k->flags & CK_HOSTNAME) {
            if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
                str_copy(host, sizeof host, "localhost");
            host[sizeof host - 1] = '\0';
        } else if (str_copy(host, sizeof host, k->def ? k->def : "") == -1) {
            abort();
        }
        if (set_key(c, k, host, msg, sizeof msg) == -1) {
            fprintf(stderr, "conf: the default of %s does not parse: %s\n", k->name, msg);
            abort();
        }
    }
}

static const struct ckey *find_key(const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

struct conf *conf_ref(struct conf *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void conf_free(struct conf *c)
{
    if (c == NULL || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (size_t i = 0; i < NKEYS; i++)
        clear_value(c, &keys[i]);
    if (c->aliases)
        aliases_free(c->aliases);
    free(c->load_warnings);
    free(c);
}

/* The errors of one file: every one counted, the first CONF_MAX_ERRORS kept as lines. */
struct errs {
    struct buf b;
    size_t n;
};

static void errs_add(struct errs *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void errs_add(struct errs *e, const char *fmt, ...)
{
    if (e->n++ >= CONF_MAX_ERRORS)
        return;
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&e->b, fmt, ap);
    va_end(ap);
    buf_puts(&e->b, "\n");
}

/* Write as many whole error lines as fit in err, then how many more there are. */
static void errs_write(struct errs *e, const char *origin, char *err, size_t errsz)
{
    if (errsz == 0)
        return;
    err[0] = '\0';
    const char *p = buf_cstr(&e->b);
    size_t used = 0, shown = 0;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p);
        /* keep room for the "N more errors" line */
        if (shown > 0 && used + 1 + len + 80 >= errsz)
            break;
        int w = snprintf(err + used, errsz - used, "%s%.*s", shown ? "\n" : "", (int)len, p);
        if (w < 0 || (size_t)w >= errsz - used)
            return;         /* the first line alone did not fit: it is cut */
        used += (size_t)w;
        shown++;
        p = nl + 1;
    }
    if (shown < e->n)
        snprintf(err + used, errsz - used, "\n%.60s: %zu more error%s", origin, e->n - shown,
            e->n - shown == 1 ? "" : "s");
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

struct conf *conf_parse(const char *text, size_t n, const char *origin, char *err, size_t errsz)
{
    struct conf *c = xcalloc(1, sizeof *c);
    c->refs = 1;
    set_defaults(c);
    struct errs e = { .n = 0 };
    buf_init(&e.b, 0);
    struct buf warns;
    buf_init(&warns, 0);
    struct buf inline_aliases;
    buf_init(&inline_aliases, 0);
    size_t alias_lines = 0;
    size_t set_at[NKEYS] = { 0 };       /* the line that last set each key; 0: none */
    char msg[512];
    size_t lineno = 0;
    const char *p = text, *end = text + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        char line[8192];
        bool too_long = len >= sizeof line;
        if (!too_long) {
            memcpy(line, p, len);
            line[len] = '\0';
        }
        p += len + (nl ? 1 : 0);
        if (too_long) {
            errs_add(&e, "%s:%zu: line too long", origin, lineno);
            continue;
        }
        if (memchr(line, '\0', len)) {
            errs_add(&e, "%s:%zu: NUL byte in line", origin, lineno);
            continue;
        }
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (*s == '\0')
            continue;
        if (strncmp(s, "alias", 5) == 0 && (s[5] == ' ' || s[5] == '\t')) {
            /* Pad with empty lines so alias errors carry the config's own line numbers. */
            for (; alias_lines < lineno - 1; alias_lines++)
                buf_puts(&inline_aliases, "\n");
            buf_puts(&inline_aliases, trim(s + 5));
            buf_puts(&inline_aliases, "\n");
            alias_lines++;
            continue;
        }
        char *eq = strchr(s, '=');
        if (eq == NULL) {
            errs_add(&e, "%s:%zu: expected 'key = value'", origin, lineno);
            continue;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        const struct ckey *k = find_key(key);
        if (k == NULL) {
            errs_add(&e, "%s:%zu: unknown setting '%.200s'", origin, lineno, key);
            continue;
        }
        size_t ki = (size_t)(k - keys);
        if (set_at[ki])
            buf_printf(&warns, "%s:%zu: %s set again (first at line %zu); the last value "
                "counts\n", origin, lineno, k->name, set_at[ki]);
        else
            set_at[ki] = lineno;
        if (set_key(c, k, val, msg, sizeof msg) == -1)
            errs_add(&e, "%s:%zu: %s", origin, lineno, msg);
    }
    if ((c->tls_cert == NULL) != (c->tls_key == NULL))
        errs_add(&e, "%s: tls_cert and tls_key go together", origin);
    if (c->aliases_file) {
        c->aliases = aliases_load(c->aliases_file, msg, sizeof msg);
        if (c->aliases == NULL)
            errs_add(&e, "%s", msg);
    }
    if (inline_aliases.len > 0) {
        struct aliases *a = aliases_parse(inline_aliases.p, inline_aliases.len, origin, NULL, msg,
            sizeof msg);
        if (a == NULL) {
            errs_add(&e, "%s", msg);
        } else if (c->aliases == NULL) {
            c->aliases = a;
        } else if (aliases_merge(c->aliases, a, msg, sizeof msg) == -1) {
            errs_add(&e, "%s", msg);
        }
    }
    if (c->aliases == NULL && e.n == 0)
        c->aliases = aliases_parse("", 0, origin, NULL, msg, sizeof msg);
    buf_free(&inline_aliases);
    if (e.n > 0) {
        errs_write(&e, origin, err, errsz);
        buf_free(&e.b);
        buf_free(&warns);
        conf_free(c);
        return NULL;
    }
    buf_free(&e.b);
    if (warns.len > 0)
        c->load_warnings = xstrdup(buf_cstr(&warns));
    buf_free(&warns);
    return c;
}

struct conf *conf_load(const char *path, char *err, size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errsz, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct buf b;
    buf_init(&b, 16 * 1024 * 1024);
    char chunk[8192];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (buf_append(&b, chunk, r) == -1) {
            snprintf(err, errsz, "%s: file too large", path);
            fclose(f);
            buf_free(&b);
            return NULL;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errsz, "%s: read error", path);
        buf_free(&b);
        return NULL;
    }
    struct conf *c = conf_parse(b.p ? b.p : "", b.len, path, err, errsz);
    buf_free(&b);
    return c;
}

/* Print the keys of c (those whose value differs from base's when base is not NULL). */
static void print_keys(const struct conf *c, const struct conf *base, FILE *f)
{
    struct buf v;
    buf_init(&v, 0);
    for (size_t i = 0; i < NKEYS; i++) {
        const struct ckey *k = &keys[i];
        if (base && same_value(c, base, k))
            continue;
        buf_reset(&v);
        format_value(c, k, &v, false);
        fprintf(f, "%s =%s%s # %s\n", k->name, v.len ? " " : "", buf_cstr(&v), k->help);
    }
    buf_free(&v);
}

void conf_print(const struct conf *c, FILE *f)
{
    print_keys(c, NULL, f);
    fprintf(f, "# aliases: %zu entries\n", c->aliases ? aliases_count(c->aliases) : (size_t)0);
}

void conf_print_changed(const struct conf *c, FILE *f)
{
    char err[64];
    struct conf *d = conf_parse("", 0, "(defaults)", err, sizeof err);
    if (d == NULL)
        abort();            /* the defaults always parse (set_defaults aborts otherwise) */
    print_keys(c, d, f);
    conf_free(d);
    size_t na = c->aliases ? aliases_count(c->aliases) : 0;
    if (na > 0)
        fprintf(f, "# aliases: %zu entries\n", na);
}

void conf_print_defaults(FILE *f)
{
    char err[64];
    struct conf *d = conf_parse("", 0, "(defaults)", err, sizeof err);
    if (d == NULL)
        abort();
    print_keys(d, NULL, f);
    conf_free(d);
}

enum conf_tls conf_tls_policy(const struct conf *c, const char *dest)
{
    for (size_t i = 0; i < c->tls_policy_map.n; i++)
        if (strcasecmp(c->tls_policy_map.v[i].dest, dest) == 0)
            return c->tls_policy_map.v[i].policy;
    return c->tls_policy;
}

/* The relayhost_auth warnings of conf_warnings(). */
static size_t relayhost_warnings(const struct conf *c,
    void (*warn)(void *arg, const char *text), void *arg)
{
    char t[1024];
    size_t n = 0;
    if (c->relayhost_user == NULL)
        return 0;
    if (c->relayhost == NULL) {
        warn(arg, "relayhost_auth is set but relayhost is not: the credentials are not used");
        return 1;
    }
    enum conf_tls pol = conf_tls_policy(c, c->relayhost);
    if (pol == CONF_TLS_VERIFY) {
        if (c->relayhost_auth_unverified_tls) {
            snprintf(t, sizeof t, "relayhost_auth_unverified_tls = yes has no effect: the TLS "
                "policy for relayhost %.300s is verify", c->relayhost);
            warn(arg, t);
            n++;
        }
        return n;
    }
    if (c->relayhost_auth_unverified_tls)
        snprintf(t, sizeof t, "relayhost_auth_unverified_tls = yes: the relayhost_auth "
            "password goes to any server that answers for relayhost %.300s with any "
            "certificate (TLS policy %s, not verify)", c->relayhost, conf_tls_name(pol));
    else
        snprintf(t, sizeof t, "relayhost_auth is set but the TLS policy for relayhost %.300s "
            "is %s, not verify: the credentials are not sent and mail for the relayhost is "
            "deferred; set tls_policy = verify (or tls_policy_map = %.300s=verify) and "
            "tls_ca_file, or accept the risk with relayhost_auth_unverified_tls = yes",
            c->relayhost, conf_tls_name(pol), c->relayhost);
    warn(arg, t);
    return n + 1;
}

size_t conf_warnings(const struct conf *c, void (*warn)(void *arg, const char *text),
    void *arg)
{
    size_t n = 0;
    char line[1024];
    for (const char *p = c->load_warnings; p && *p; n++) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        (void)str_ncopy(line, sizeof line, p, len < sizeof line ? len : sizeof line - 1);
        warn(arg, line);
        p += len + (nl ? 1 : 0);
    }
    return n + relayhost_warnings(c, warn, arg);
}

bool conf_is_local_domain(const struct conf *c, const char *domain)
{
    for (size_t i = 0; i < c->nlocal_domains; i++)
        if (strcasecmp(c->local_domains[i], domain) == 0)
            return true;
    return false;
}

bool conf_is_local_user(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->nlocal_users; i++)
        if (strcasecmp(c->local_users[i], name) == 0)
            return true;
    return false;
}

void conf_keep_static(struct conf *c, const struct conf *old, char *changed, size_t csz)
{
    struct buf b;
    buf_init(&b, 0);
    for (size_t i = 0; i < NKEYS; i++) {
        const struct ckey *k = &keys[i];
        if (!(k->flags & CK_RESTART) || same_value(c, old, k))
            continue;
        buf_printf(&b, "%s%s", b.len ? " " : "", k->name);
        copy_value(c, old, k);
    }
    snprintf(changed, csz, "%s", buf_cstr(&b));
    buf_free(&b);
}
