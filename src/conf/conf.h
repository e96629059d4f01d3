/*
 * conf/conf.h - the one configuration file of posteld.
 *
 * Owns:  the settings struct, its defaults, parsing with file:line errors, and printing
 *        the effective configuration (posteld -n, postel config [-d | -n]). Every key is
 *        declared once, in conf.c's table: type, default, bounds, whether a reload can
 *        change it, help text.
 * Format: "key = value" lines, '#' comments, lists separated by spaces or commas, and
 *        "alias NAME: targets" lines for aliases kept in the config itself.
 */
#ifndef POSTEL_CONF_CONF_H
#define POSTEL_CONF_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "util/cidr.h"

struct aliases;

#define CONF_MAX_LISTEN 8
/* conf_parse() keeps the messages of this many errors of a file (and counts the rest). */
#define CONF_MAX_ERRORS 100

enum conf_lookup { CONF_LOOKUP_OFF, CONF_LOOKUP_ON };
/* A message line that ends in a bare LF: stored as if it ended in CRLF, or the message is
 * refused (554 5.6.0). The end of data is a real CRLF.CRLF either way. */
enum conf_bare_lf { CONF_BARE_LF_NORMALIZE, CONF_BARE_LF_REJECT };

/* Outbound TLS policy (tls_policy, tls_policy_map), weakest first. */
enum conf_tls {
    CONF_TLS_NONE,          /* never STARTTLS */
    CONF_TLS_MAY,           /* STARTTLS when offered, any certificate; else plaintext */
    CONF_TLS_ENCRYPT,       /* TLS required, any certificate */
    CONF_TLS_VERIFY         /* TLS required, certificate chain and host name checked */
};

/* One tls_policy_map entry. */
struct conf_tls_entry {
    char *dest;             /* a destination domain or the relayhost spec, as written */
    enum conf_tls policy;
};

/* The parsed tls_policy_map; every dest differs (case-insensitively) from the others. */
struct conf_tls_map {
    struct conf_tls_entry *v;
    size_t n;
};

/* The longest relayhost_auth user name or password (RFC 4616 2: 255 octets). */
#define CONF_AUTH_MAX 255

struct conf_listen {
    char host[64];          /* numeric address */
    int port;
};

struct conf_listen_set {
    struct conf_listen v[CONF_MAX_LISTEN];
    size_t n;
};

struct conf {
    unsigned refs;                      /* conf_ref()/conf_free(); atomic */
    char *hostname;                     /* our name in the greeting, EHLO and Received */
    struct conf_listen_set listen;      /* SMTP (port 25): STARTTLS offered */
    struct conf_listen_set submission;  /* port 587: STARTTLS, AUTH required */
    struct conf_listen_set smtps;       /* port 465: implicit TLS, AUTH required */
    char *spool_dir;
    char *mail_dir;                     /* Maildirs are <mail_dir>/<user>/ */
    char **local_domains;               /* lower-cased */
    size_t nlocal_domains;
    char **local_users;                 /* lower-cased */
    size_t nlocal_users;
    char *aliases_file;                 /* may be NULL */
    struct aliases *aliases;            /* file entries and inline "alias" lines */
    struct cidr_list relay_networks;    /* clients that may relay */
    struct cidr_list trusted_networks;  /* exempt from per-address limits and greet pause */
    struct cidr_list etrn_networks;     /* clients that may use ETRN */

    unsigned long long message_size_limit;  /* octets; 0: none */
    size_t max_recipients;              /* per message */
    size_t max_errors;                  /* errors in a row before 421 */
    size_t max_connections;             /* in total */
    size_t max_connections_per_ip;      /* per client address, untrusted clients */
    size_t max_line_length;             /* message text line, octets without CRLF */
    enum conf_bare_lf bare_lf;          /* content lines ending in a bare LF */
    size_t max_hops;                    /* Received headers before a message is a loop */
    unsigned timeout_command;           /* seconds: waiting for a command */
    unsigned timeout_data;              /* seconds: waiting for DATA/BDAT content */
    unsigned greet_pause_ms;            /* delay before the greeting, untrusted clients */
    enum conf_lookup vrfy;              /* off: 252 for everyone */
    enum conf_lookup expn;              /* off: 502 */
    unsigned workers;                   /* disk worker threads */
    unsigned retry_min;                 /* seconds: first retry of a deferred delivery */
    unsigned retry_max;                 /* seconds: back-off ceiling */
    unsigned max_queue_lifetime;        /* seconds before a deferred message bounces */
    unsigned delay_warning_time;        /* seconds before a "delayed" DSN; 0: never */
    char *relayhost;                    /* smarthost "host", "[host]" or "[host]:port"; NULL */
    char *dns_servers;                  /* "127.0.0.1:5353,..."; NULL: /etc/resolv.conf */
    size_t smtp_port;                   /* port of remote MX hosts */
    unsigned connect_timeout;           /* seconds */
    unsigned connection_cache_time;     /* seconds an idle outbound connection is kept */
    size_t dest_concurrency;            /* connections per destination */
    size_t remote_concurrency;          /* outbound connections in total */
    bool rcpt_251;                      /* answer 251 for forwarded aliases (RFC 821 style) */
    enum conf_lookup double_bounce;     /* undeliverable bounces: on: to postmaster; off: drop */
    char *user;                         /* run as this user after binding (when root) */
    bool tls;                           /* offer STARTTLS */
    char *tls_cert, *tls_key;           /* NULL: a self-signed pair in <spool_dir>/tls */
    char *tls_ca_file;                  /* client verification; NULL: the system store */
    enum conf_tls tls_policy;           /* outbound, every destination not in the map */
    struct conf_tls_map tls_policy_map; /* "domain=policy ..." overrides, parsed at load */
    char *auth_passwd_file;             /* user:crypt-hash lines; NULL: no AUTH */
    char *sender_login_file;            /* "address user,user" lines */
    bool auth_plaintext;                /* AUTH without TLS from trusted networks */
    size_t auth_max_failures;           /* failed logins per address before lockout */
    unsigned auth_lockout;              /* seconds */
    char *relayhost_user;               /* relayhost_auth "user:password", split at the */
    char *relayhost_pass;               /* first ':'; both set or both NULL; no CR or LF */
    bool relayhost_auth_unverified_tls; /* send them over TLS that is not verified */
    char *control_socket;               /* NULL: <spool_dir>/control */
    char *admin_group;                  /* may change the queue over the control socket */
    bool log_debug;
    char *load_warnings;                /* "origin:line: ..." lines (a key set twice); NULL */
};

/* The embedded default configuration text that `make run` uses (no -f). */
extern const char conf_default_text[];

/*
 * Parse configuration text (length n) named origin (used in "origin:line: ..." errors).
 * Keys absent from the text keep their built-in defaults; a key given twice takes its last
 * value (conf_warnings() reports it). Returns a new conf, or NULL with every error in err:
 * one "origin:line: message" per line, newline separated, no final newline; what does not
 * fit in errsz ends in a line "origin: N more errors".
 */
struct conf *conf_parse(const char *text, size_t n, const char *origin, char *err, size_t errsz);
/* Read and parse a file; NULL with the messages in err (as conf_parse()). */
struct conf *conf_load(const char *path, char *err, size_t errsz);
/* Drop a reference; the last one frees. A session or delivery round holds a reference to
 * the configuration it started with, so a reload never changes it under their feet. */
void conf_free(struct conf *c);
/* Take a reference. Returns c. */
struct conf *conf_ref(struct conf *c);
/*
 * After a reload: the settings the table marks as read only at start (listeners,
 * directories, user, workers, resolvers, TLS files, AUTH files, control socket) are copied
 * from old into c, so the running daemon stays consistent. Writes the names of those keys
 * whose values differ (space separated, in table order) into changed, "" if none.
 */
void conf_keep_static(struct conf *c, const struct conf *old, char *changed, size_t csz);
/* Print every setting of c in the file syntax, each with its help as a comment. */
void conf_print(const struct conf *c, FILE *f);
/* Print only the settings of c whose values differ from the defaults (postel config -n). */
void conf_print_changed(const struct conf *c, FILE *f);
/* Print every setting with its built-in default (postel config -d). */
void conf_print_defaults(FILE *f);

/*
 * The outbound TLS policy for dest (a recipient domain, or the relayhost spec for mail sent
 * through the relayhost): its tls_policy_map entry (any case), else tls_policy.
 */
enum conf_tls conf_tls_policy(const struct conf *c, const char *dest);
/* The policy's name as the configuration spells it ("none", "may", ...); static. */
const char *conf_tls_name(enum conf_tls p);
/*
 * Call warn(arg, text) once for each load warning (a key set twice, "origin:line: ...") and
 * each setting that is valid but risky or without effect (e.g. relayhost_auth without a
 * verified TLS policy for the relayhost). Returns how many.
 */
size_t conf_warnings(const struct conf *c, void (*warn)(void *arg, const char *text),
    void *arg);

/* Is domain (any case; an address literal included) one of ours? */
bool conf_is_local_domain(const struct conf *c, const char *domain);
/* Is name (a local part, any case) a local user? */
bool conf_is_local_user(const struct conf *c, const char *name);

#endif
