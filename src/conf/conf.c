/*
 * conf/conf.c - configuration parsing, defaults and printing.
 *
 * Owns:  struct conf and its lifetime.
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
    CT_LOOKUP, CT_TLS, CT_TLSMAP, CT_CRED };

struct ckey {
    const char *name;
    enum ctype type;
    size_t off;
    const char *help;
};

#define OFF(f) offsetof(struct conf, f)
static const struct ckey keys[] = {
    { "hostname", CT_STR, OFF(hostname), "our name in the greeting, EHLO and Received" },
    { "listen", CT_LISTEN, OFF(listen), "addresses and ports of the SMTP listener" },
    { "submission_listen", CT_LISTEN, OFF(submission),
        "submission (587): STARTTLS, then AUTH required" },
    { "smtps_listen", CT_LISTEN, OFF(smtps), "submission over implicit TLS (465)" },
    { "user", CT_STR, OFF(user), "run as this user after binding the ports" },
    { "tls", CT_BOOL, OFF(tls), "offer STARTTLS" },
    { "tls_cert", CT_STR, OFF(tls_cert), "certificate chain (PEM); empty: self-signed" },
    { "tls_key", CT_STR, OFF(tls_key), "private key (PEM)" },
    { "tls_ca_file", CT_STR, OFF(tls_ca_file), "CAs for outbound verify; empty: system" },
    { "tls_policy", CT_TLS, OFF(tls_policy), "outbound TLS: none, may, encrypt, verify" },
    { "tls_policy_map", CT_TLSMAP, OFF(tls_policy_map), "per destination: domain=policy ..." },
    { "auth_passwd_file", CT_STR, OFF(auth_passwd_file), "AUTH users (user:crypt-hash)" },
    { "sender_login_file", CT_STR, OFF(sender_login_file),
        "which users may send as which addresses" },
    { "auth_plaintext", CT_BOOL, OFF(auth_plaintext),
        "offer AUTH without TLS to trusted networks" },
    { "auth_max_failures", CT_COUNT, OFF(auth_max_failures),
        "failed logins per address before a lockout" },
    { "auth_lockout", CT_TIME, OFF(auth_lockout), "how long a lockout lasts" },
    { "relayhost_auth", CT_CRED, OFF(relayhost_user),
        "user:password for the relayhost, sent only over verified TLS" },
    { "relayhost_auth_unverified_tls", CT_BOOL, OFF(relayhost_auth_unverified_tls),
        "RISK: send relayhost_auth over TLS whose certificate is not verified" },
    { "spool_dir", CT_STR, OFF(spool_dir), "the queue" },
    { "mail_dir", CT_STR, OFF(mail_dir), "Maildirs: <mail_dir>/<user>/" },
    { "local_domains", CT_LIST, OFF(local_domains), "domains delivered here" },
    { "local_users", CT_LIST, OFF(local_users), "mailboxes of the local domains" },
    { "aliases_file", CT_STR, OFF(aliases_file), "aliases(5) file" },
    { "relay_networks", CT_CIDRS, OFF(relay_networks), "clients that may relay" },
    { "trusted_networks", CT_CIDRS, OFF(trusted_networks),
        "clients exempt from per-address limits and the greet pause" },
    { "etrn_networks", CT_CIDRS, OFF(etrn_networks), "clients that may use ETRN (RFC 1985)" },
    { "message_size_limit", CT_SIZE, OFF(message_size_limit), "octets, 0: none" },
    { "max_recipients", CT_COUNT, OFF(max_recipients), "recipients per message" },
    { "max_errors", CT_COUNT, OFF(max_errors), "errors in a row before 421" },
    { "max_connections", CT_COUNT, OFF(max_connections), "connections in total" },
    { "max_connections_per_ip", CT_COUNT, OFF(max_connections_per_ip),
        "connections per client address" },
    { "max_line_length", CT_COUNT, OFF(max_line_length),
        "message text line length, octets without CRLF" },
    { "max_hops", CT_COUNT, OFF(max_hops),
        "Received headers after which a message is a mail loop (bounced 5.4.6)" },
    { "timeout_command", CT_TIME, OFF(timeout_command), "waiting for a command" },
    { "timeout_data", CT_TIME, OFF(timeout_data), "waiting for message content" },
    { "greet_pause", CT_MS, OFF(greet_pause_ms), "delay before the greeting" },
    { "vrfy", CT_LOOKUP, OFF(vrfy), "off: 252 to all; on: answer from users and aliases" },
    { "expn", CT_LOOKUP, OFF(expn), "off: 502; on: list alias members" },
    { "workers", CT_COUNT, OFF(workers), "disk worker threads" },
    { "retry_min", CT_TIME, OFF(retry_min), "first retry of a deferred delivery" },
    { "retry_max", CT_TIME, OFF(retry_max), "longest retry interval" },
    { "max_queue_lifetime", CT_TIME, OFF(max_queue_lifetime), "then a deferred message bounces" },
    { "delay_warning_time", CT_TIME, OFF(delay_warning_time),
        "send a 'delayed' notice after this long; 0: never" },
    { "relayhost", CT_STR, OFF(relayhost), "smarthost for all remote mail: host, [host], :port" },
    { "dns_servers", CT_STR, OFF(dns_servers), "resolvers as ip:port,...; empty: resolv.conf" },
    { "smtp_port", CT_COUNT, OFF(smtp_port), "port of remote mail hosts" },
    { "connect_timeout", CT_TIME, OFF(connect_timeout), "outbound connect timeout" },
    { "connection_cache_time", CT_TIME, OFF(connection_cache_time),
        "keep an idle outbound connection this long for the next message; 0: never" },
    { "dest_concurrency", CT_COUNT, OFF(dest_concurrency), "connections per destination" },
    { "remote_concurrency", CT_COUNT, OFF(remote_concurrency), "outbound connections in total" },
    { "rcpt_251", CT_BOOL, OFF(rcpt_251), "answer 251 for aliases forwarded off-host" },
    { "double_bounce", CT_LOOKUP, OFF(double_bounce),
        "on: undeliverable bounces go to postmaster; off: dropped (logged)" },
    { "control_socket", CT_STR, OFF(control_socket), "default <spool_dir>/control" },
    { "admin_group", CT_STR, OFF(admin_group), "group that may change the queue" },
    { "log_debug", CT_BOOL, OFF(log_debug), "debug logging" },
};

static void set_defaults(struct conf *c)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
        str_copy(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    c->hostname = xstrdup(host);
    c->spool_dir = xstrdup("/var/spool/postel");
    c->mail_dir = xstrdup("/var/mail/postel");
    struct cidr lo;
    if (cidr_parse("127.0.0.0/8", &lo) == 0)
        cidr_list_add(&c->trusted_networks, &lo);
    if (cidr_parse("::1/128", &lo) == 0)
        cidr_list_add(&c->trusted_networks, &lo);
    c->message_size_limit = 10 * 1024 * 1024;
    c->max_recipients = 1000;
    c->max_errors = 10;
    c->max_connections = 15000;
    c->max_connections_per_ip = 50;
    c->max_line_length = 998;
    c->max_hops = 50;
    c->timeout_command = 300;
    c->timeout_data = 300;
    c->greet_pause_ms = 1000;
    c->vrfy = CONF_LOOKUP_OFF;
    c->expn = CONF_LOOKUP_OFF;
    c->workers = 8;
    c->retry_min = 300;
    c->retry_max = 3600;
    c->max_queue_lifetime = 5 * 86400;
    c->delay_warning_time = 4 * 3600;
    c->smtp_port = 25;
    c->connect_timeout = 30;
    c->connection_cache_time = 2;
    c->dest_concurrency = 20;
    c->remote_concurrency = 100;
    c->double_bounce = CONF_LOOKUP_ON;
    c->admin_group = xstrdup("mail");
    c->tls = true;
    c->tls_policy = CONF_TLS_MAY;
    c->auth_max_failures = 5;
    c->auth_lockout = 600;
}

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

struct conf *conf_ref(struct conf *c)
{
    __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void conf_free(struct conf *c)
{
    if (c == NULL || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    free(c->hostname);
    free(c->spool_dir);
    free(c->mail_dir);
    free(c->aliases_file);
    free(c->relayhost);
    free(c->dns_servers);
    free(c->control_socket);
    char **strs[] = { &c->user, &c->tls_cert, &c->tls_key, &c->tls_ca_file,
        &c->auth_passwd_file, &c->sender_login_file };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        free(*strs[i]);
    tls_map_free(&c->tls_policy_map);
    free_secret(&c->relayhost_user);
    free_secret(&c->relayhost_pass);
    free(c->admin_group);
    free_list(c->local_domains, c->nlocal_domains);
    free_list(c->local_users, c->nlocal_users);
    if (c->aliases)
        aliases_free(c->aliases);
    cidr_list_free(&c->relay_networks);
    cidr_list_free(&c->trusted_networks);
    cidr_list_free(&c->etrn_networks);
    free(c);
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
static int parse_cred(const char *v, struct conf *c, char *err, size_t errsz)
{
    free_secret(&c->relayhost_user);
    free_secret(&c->relayhost_pass);
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
    c->relayhost_user = xstrndup(v, ul);
    c->relayhost_pass = xstrdup(colon + 1);
    return 0;
}

static int set_key(struct conf *c, const struct ckey *k, char *v, char *err, size_t errsz)
{
    char *p = (char *)c + k->off;
    unsigned long long n;
    char *words[4096];
    size_t nw;
    switch (k->type) {
    case CT_STR:
        /* Most strings may be emptied ("relayhost ="); these three may not. */
        if (*v == '\0' && (k->off == OFF(hostname) || k->off == OFF(spool_dir) ||
            k->off == OFF(mail_dir))) {
            snprintf(err, errsz, "%s needs a value", k->name);
            return -1;
        }
        free(*(char **)p);
        *(char **)p = *v ? xstrdup(v) : NULL;
        return 0;
    case CT_LISTEN: {
        struct conf_listen_set *ls = (struct conf_listen_set *)p;
        nw = split_words(v, words, CONF_MAX_LISTEN);
        if (nw > CONF_MAX_LISTEN || (nw == 0 && k->off == OFF(listen))) {
            snprintf(err, errsz, "%s takes %d to %d address:port pairs", k->name,
                k->off == OFF(listen) ? 1 : 0, CONF_MAX_LISTEN);
            return -1;
        }
        for (size_t i = 0; i < nw; i++) {
            if (parse_listen(words[i], &ls->v[i]) == -1) {
                snprintf(err, errsz, "bad %s address '%s' (want 127.0.0.1:25 or [::1]:25)",
                    k->name, words[i]);
                return -1;
            }
        }
        ls->n = nw;
        return 0;
    }
    case CT_LIST: {
        nw = split_words(v, words, sizeof words / sizeof words[0] - 1);
        if (nw >= sizeof words / sizeof words[0] - 1) {
            snprintf(err, errsz, "%s: too many entries", k->name);
            return -1;
        }
        /* each list is a (char **, size_t) pair of adjacent fields */
        char ***lp = (char ***)p;
        size_t *np = (size_t *)(p + sizeof(char **));
        free_list(*lp, *np);
        *lp = xcalloc(nw + 1, sizeof(char *));
        for (size_t i = 0; i < nw; i++) {
            (*lp)[i] = xstrdup(words[i]);
            str_lower((*lp)[i]);
        }
        *np = nw;
        return 0;
    }
    case CT_CIDRS: {
        struct cidr_list *l = (struct cidr_list *)p;
        cidr_list_free(l);
        nw = split_words(v, words, sizeof words / sizeof words[0]);
        for (size_t i = 0; i < nw && i < sizeof words / sizeof words[0]; i++) {
            struct cidr ci;
            if (cidr_parse(words[i], &ci) == -1) {
                snprintf(err, errsz, "%s: bad network '%s'", k->name, words[i]);
                return -1;
            }
            cidr_list_add(l, &ci);
        }
        return 0;
    }
    case CT_SIZE:
        if (parse_size(v, &n) == -1) {
            snprintf(err, errsz, "%s: bad size '%s' (e.g. 10485760, 64k, 10M)", k->name, v);
            return -1;
        }
        *(unsigned long long *)p = n;
        return 0;
    case CT_COUNT:
        if (parse_size(v, &n) == -1 || n > SIZE_MAX / 2) {
            snprintf(err, errsz, "%s: bad number '%s'", k->name, v);
            return -1;
        }
        if (k->off == OFF(workers)) {
            /* the one unsigned count: a size_t store would overwrite retry_min */
            if (n < 1 || n > 256) {
                snprintf(err, errsz, "workers: must be 1 to 256");
                return -1;
            }
            *(unsigned *)p = (unsigned)n;
            return 0;
        }
        *(size_t *)p = (size_t)n;
        return 0;
    case CT_TIME:
    case CT_MS:
        if (parse_time(v, k->type == CT_MS, &n) == -1) {
            snprintf(err, errsz, "%s: bad duration '%s' (e.g. 300, 300s, 5m, 1h, 5d)", k->name,
                v);
            return -1;
        }
        *(unsigned *)p = (unsigned)n;
        return 0;
    case CT_TLS:
        if (parse_tls(v, (enum conf_tls *)p) == -1) {
            snprintf(err, errsz, "%s: want none, may, encrypt or verify, not '%.40s'", k->name,
                v);
            return -1;
        }
        return 0;
    case CT_TLSMAP:
        return parse_tls_map(v, (struct conf_tls_map *)p, err, errsz);
    case CT_CRED:
        return parse_cred(v, c, err, errsz);
    case CT_BOOL:
    case CT_LOOKUP:
        if (!strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcasecmp(v, "true")) {
            n = 1;
        } else if (!strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcasecmp(v, "false")) {
            n = 0;
        } else {
            snprintf(err, errsz, "%s: want on or off, not '%s'", k->name, v);
            return -1;
        }
        if (k->type == CT_BOOL)
            *(bool *)p = n != 0;
        else
            *(enum conf_lookup *)p = n ? CONF_LOOKUP_ON : CONF_LOOKUP_OFF;
        return 0;
    }
    return -1;
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
    struct buf inline_aliases;
    buf_init(&inline_aliases, 0);
    size_t alias_lines = 0;
    char msg[512];
    size_t lineno = 0;
    const char *p = text, *end = text + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        lineno++;
        char line[8192];
        if (len >= sizeof line) {
            snprintf(err, errsz, "%s:%zu: line too long", origin, lineno);
            goto fail;
        }
        memcpy(line, p, len);
        line[len] = '\0';
        p += len + (nl ? 1 : 0);
        if (memchr(line, '\0', len)) {
            snprintf(err, errsz, "%s:%zu: NUL byte in line", origin, lineno);
            goto fail;
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
            snprintf(err, errsz, "%s:%zu: expected 'key = value'", origin, lineno);
            goto fail;
        }
        *eq = '\0';
        char *key = trim(s), *val = trim(eq + 1);
        const struct ckey *k = NULL;
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
            if (strcmp(keys[i].name, key) == 0)
                k = &keys[i];
        if (k == NULL) {
            snprintf(err, errsz, "%s:%zu: unknown setting '%s'", origin, lineno, key);
            goto fail;
        }
        if (set_key(c, k, val, msg, sizeof msg) == -1) {
            snprintf(err, errsz, "%s:%zu: %s", origin, lineno, msg);
            goto fail;
        }
    }
    if (c->listen.n == 0) {
        parse_listen("127.0.0.1:25", &c->listen.v[0]);
        c->listen.n = 1;
    }
    if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
        snprintf(err, errsz, "%s: tls_cert and tls_key go together", origin);
        goto fail;
    }
    if (c->aliases_file) {
        c->aliases = aliases_load(c->aliases_file, msg, sizeof msg);
        if (c->aliases == NULL) {
            snprintf(err, errsz, "%s", msg);
            goto fail;
        }
    }
    if (inline_aliases.len > 0) {
        struct aliases *a = aliases_parse(inline_aliases.p, inline_aliases.len, origin, NULL, msg,
            sizeof msg);
        if (a == NULL) {
            snprintf(err, errsz, "%s", msg);
            goto fail;
        }
        if (c->aliases == NULL) {
            c->aliases = a;
        } else if (aliases_merge(c->aliases, a, msg, sizeof msg) == -1) {
            snprintf(err, errsz, "%s", msg);
            goto fail;
        }
    }
    if (c->aliases == NULL)
        c->aliases = aliases_parse("", 0, origin, NULL, msg, sizeof msg);
    buf_free(&inline_aliases);
    return c;
fail:
    buf_free(&inline_aliases);
    conf_free(c);
    return NULL;
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

static void print_time(FILE *f, unsigned s)
{
    if (s && s % 86400 == 0)
        fprintf(f, "%ud", s / 86400);
    else if (s && s % 3600 == 0)
        fprintf(f, "%uh", s / 3600);
    else if (s && s % 60 == 0)
        fprintf(f, "%um", s / 60);
    else
        fprintf(f, "%us", s);
}

void conf_print(const struct conf *c, FILE *f)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const struct ckey *k = &keys[i];
        const char *p = (const char *)c + k->off;
        fprintf(f, "%s =", k->name);
        switch (k->type) {
        case CT_STR:
            if (*(char *const *)p)
                fprintf(f, " %s", *(char *const *)p);
            break;
        case CT_CRED:
            if (c->relayhost_user)
                fprintf(f, " (set, not shown)");
            break;
        case CT_TLS:
            fprintf(f, " %s", conf_tls_name(*(const enum conf_tls *)p));
            break;
        case CT_TLSMAP: {
            const struct conf_tls_map *m = (const struct conf_tls_map *)p;
            for (size_t j = 0; j < m->n; j++)
                fprintf(f, " %s=%s", m->v[j].dest, conf_tls_name(m->v[j].policy));
            break;
        }
        case CT_LISTEN: {
            const struct conf_listen_set *ls = (const struct conf_listen_set *)p;
            for (size_t j = 0; j < ls->n; j++)
                fprintf(f, strchr(ls->v[j].host, ':') ? " [%s]:%d" : " %s:%d",
                    ls->v[j].host, ls->v[j].port);
            break;
        }
        case CT_LIST: {
            char *const *l = *(char **const *)p;
            size_t cnt = *(const size_t *)(p + sizeof(char **));
            for (size_t j = 0; j < cnt; j++)
                fprintf(f, " %s", l[j]);
            break;
        }
        case CT_CIDRS: {
            const struct cidr_list *l = (const struct cidr_list *)p;
            char tmp[64];
            for (size_t j = 0; j < l->n; j++)
                fprintf(f, " %s", cidr_format(&l->v[j], tmp, sizeof tmp));
            break;
        }
        case CT_SIZE:
            fprintf(f, " %llu", *(const unsigned long long *)p);
            break;
        case CT_COUNT:
            if (k->off == OFF(workers))
                fprintf(f, " %u", *(const unsigned *)p);
            else
                fprintf(f, " %zu", *(const size_t *)p);
            break;
        case CT_TIME:
            fputc(' ', f);
            print_time(f, *(const unsigned *)p);
            break;
        case CT_MS:
            fprintf(f, " %ums", *(const unsigned *)p);
            break;
        case CT_BOOL:
            fprintf(f, " %s", *(const bool *)p ? "on" : "off");
            break;
        case CT_LOOKUP:
            fprintf(f, " %s", *(const enum conf_lookup *)p == CONF_LOOKUP_ON ? "on" : "off");
            break;
        }
        fprintf(f, "%*s# %s\n", 1, "", k->help);
    }
    fprintf(f, "# aliases: %zu entries\n", c->aliases ? aliases_count(c->aliases) : (size_t)0);
}

enum conf_tls conf_tls_policy(const struct conf *c, const char *dest)
{
    for (size_t i = 0; i < c->tls_policy_map.n; i++)
        if (strcasecmp(c->tls_policy_map.v[i].dest, dest) == 0)
            return c->tls_policy_map.v[i].policy;
    return c->tls_policy;
}

size_t conf_warnings(const struct conf *c, void (*warn)(void *arg, const char *text),
    void *arg)
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

static bool str_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static void keep_str(char **dst, const char *old)
{
    free(*dst);
    *dst = old ? xstrdup(old) : NULL;
}

void conf_keep_static(struct conf *c, const struct conf *old, char *changed, size_t csz)
{
    struct buf b;
    buf_init(&b, 0);
#define KEEP_SET(f) do { \
        if (memcmp(&c->f, &old->f, sizeof c->f) != 0) \
            buf_printf(&b, "%s" #f, b.len ? " " : ""); \
        c->f = old->f; \
    } while (0)
#define KEEP_STR(f) do { \
        if (!str_same(c->f, old->f)) \
            buf_printf(&b, "%s" #f, b.len ? " " : ""); \
        keep_str(&c->f, old->f); \
    } while (0)
    KEEP_SET(listen);
    KEEP_SET(submission);
    KEEP_SET(smtps);
    KEEP_SET(workers);
    KEEP_SET(tls);
    KEEP_STR(spool_dir);
    KEEP_STR(mail_dir);
    KEEP_STR(user);
    KEEP_STR(dns_servers);
    KEEP_STR(tls_cert);
    KEEP_STR(tls_key);
    KEEP_STR(tls_ca_file);
    KEEP_STR(auth_passwd_file);
    KEEP_STR(sender_login_file);
    KEEP_STR(control_socket);
#undef KEEP_SET
#undef KEEP_STR
    snprintf(changed, csz, "%s", b.len ? buf_cstr(&b) : "");
    buf_free(&b);
}
