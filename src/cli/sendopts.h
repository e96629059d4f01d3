/*
 * cli/sendopts.h - the sendmail command line (sendmail, mailq, newaliases).
 *
 * Owns:  the sendmail 8 / Postfix option set: which options postel acts on, which it
 *        accepts and ignores, which it refuses, and their argument syntax (-N, -R, -B, -V).
 * Never: does I/O or reads the configuration.
 *
 * Options are parsed getopt-style: flags may be grouped ("-ti"), an option's argument is
 * the rest of its word or the next word ("-fa@b", "-f a@b"); parsing stops at "--" or the
 * first word that is not an option, and the rest are recipients.
 */
#ifndef POSTEL_CLI_SENDOPTS_H
#define POSTEL_CLI_SENDOPTS_H

#include <stdbool.h>
#include <stddef.h>

enum sendopts_mode {
    SENDOPTS_DELIVER,           /* -bm: read a message and submit it (the default) */
    SENDOPTS_SMTP,              /* -bs: SMTP on standard input and output */
    SENDOPTS_VERIFY,            /* -bv: tell how each recipient would be delivered */
    SENDOPTS_QUEUE,             /* -bp, mailq: list the queue */
    SENDOPTS_ALIASES,           /* -bi, -I, newaliases: reload the aliases */
    SENDOPTS_FLUSH,             /* -q, -qR DOMAIN: retry deferred mail now */
    SENDOPTS_NOTHING            /* -q INTERVAL: accepted, nothing to do */
};

struct sendopts {
    enum sendopts_mode mode;
    bool extract;               /* -t */
    bool ignore_dots;           /* -i, -oi */
    int verbose;                /* -v, counted */
    bool json;                  /* --json (with -bp / mailq) */
    const char *sender;         /* -f / -r, as given; NULL: the invoking user */
    const char *fullname;       /* -F */
    const char *config;         /* -C */
    unsigned notify;            /* -N: SMTP_NOTIFY_* bits; 0: not given */
    int ret;                    /* -R: enum smtp_ret */
    const char *envid;          /* -V */
    int body;                   /* -B: enum smtp_body */
    const char *flush_domain;   /* -qR DOMAIN */
    char **rcpts;               /* the words after the options (pointers into argv) */
    size_t nrcpt;
};

/*
 * Parse argv[1..argc-1] into o (zeroed first; argv is kept, not copied). mode is the
 * starting mode: SENDOPTS_DELIVER for sendmail, SENDOPTS_QUEUE for mailq, SENDOPTS_ALIASES
 * for newaliases. Returns 0, or an exit status from <sysexits.h> (EX_USAGE) with the
 * message in err, e.g. "unknown option -Z".
 */
int sendopts_parse(int argc, char **argv, enum sendopts_mode mode, struct sendopts *o,
    char *err, size_t errsz);

/* Parse a -N argument ("never" or a list of success, failure, delay). Returns the bits or 0
 * when it is not valid. */
unsigned sendopts_parse_notify(const char *s);

#endif
