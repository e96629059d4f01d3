/*
 * cli/ctlcmd.h - the commands that are one control-socket request each: the queue
 *        listing (mailq), show, flush, hold, release, delete, bounce, status, reload
 *        (newaliases), verify (sendmail -bv) and the delivery transcript (sendmail -v).
 *
 * Owns:  finding the configuration (-C, $POSTEL_CONF, /etc/postel/postel.conf, built-in)
 *        and the socket, each request's output on stdout, its errors on stderr prefixed
 *        with the program name, and the exit status (sysexits.h) for each daemon answer.
 * Never: submits mail (submit.c) or parses command lines (sendopts.c, postel.c).
 */
#ifndef POSTEL_CLI_CTLCMD_H
#define POSTEL_CLI_CTLCMD_H

#include <stdbool.h>
#include <stddef.h>

#define CTLCMD_SYSTEM_CONF "/etc/postel/postel.conf"
#define CTLCMD_TRACE_TIMEOUT 900        /* seconds between two transcript lines */

struct conf;

struct ctlcmd {
    const char *prog;           /* for messages: "sendmail", "mailq", "postel" */
    struct conf *conf;
    const char *conf_file;      /* the file read, or NULL for the built-in configuration */
    char socket[4096];          /* control socket path */
};

/*
 * The configuration file to use: file when not NULL, else $POSTEL_CONF when set and not
 * empty, else CTLCMD_SYSTEM_CONF when it exists, else NULL (the built-in configuration,
 * the one posteld uses without -f).
 */
const char *ctlcmd_conf_path(const char *file);

/* Load the configuration (see ctlcmd_conf_path) into cc. Returns 0, or EX_CONFIG after
 * printing the error. */
int ctlcmd_init(struct ctlcmd *cc, const char *prog, const char *file);
void ctlcmd_free(struct ctlcmd *cc);

/*
 * The exit status for a request that failed: rc and final as from ctl_request(); err is
 * the errno of a connection failure. Prints "PROG: REQUEST: text" with a hint. Returns
 * EX_OK when rc is 0.
 */
int ctlcmd_fail(const struct ctlcmd *cc, const char *request, int rc, const char *final,
    int err);

/* Whether s is a safe request argument: non-empty, no control octet, at most 1000 octets. */
bool ctlcmd_arg_ok(const char *s);

/* mailq: the queue as a table, or as a JSON array with json. */
int ctlcmd_list(struct ctlcmd *cc, bool json);
/* One message: its entry and headers, or its envelope JSON with json. */
int ctlcmd_show(struct ctlcmd *cc, const char *id, bool json);
/*
 * HOLD, RELEASE, DELETE, BOUNCE, FLUSH [DOMAIN] or RELOAD (verb), with arg (may be NULL).
 * quiet: print nothing on success (sendmail -q). Returns an exit status.
 */
int ctlcmd_admin(struct ctlcmd *cc, const char *verb, const char *arg, bool quiet);
/* STATUS, printed as the daemon sends it. */
int ctlcmd_status(struct ctlcmd *cc);
/* sendmail -bv / postel verify: one "ADDR... deliverable: ..." line per finding. */
int ctlcmd_verify(struct ctlcmd *cc, char *const *addrs, size_t n);
/*
 * sendmail -v: TRACE id and print the transcript in sendmail's words (cli/traceview.h).
 * rcpts/remote: the message's recipients. Returns EX_OK, or a status when the trace
 * could not run (the message is queued all the same).
 */
int ctlcmd_trace(struct ctlcmd *cc, const char *id, const char *const *rcpts,
    const bool *remote, size_t n);

#endif
