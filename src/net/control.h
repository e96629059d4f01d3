/*
 * net/control.h - the local control socket: submission by the sendmail command, queue
 * control and status for the postel command.
 *
 * Owns:  the UNIX socket <spool_dir>/control (or `control_socket`), the requester's
 *        identity (SO_PEERCRED), permission checks, and the request protocol below.
 * Never: parses mail itself: a submission is an SMTP session on the same engine as port 25.
 *
 * Protocol: the client sends one request line (at most 4096 octets, LF-terminated). The
 * daemon answers with zero or more data lines and one final line, "OK[ text]" or
 * "ERR text". Requests:
 *   SMTP [TRACE]          the rest of the connection is an SMTP session (greeting first),
 *                         as a trusted local client that may relay; the user's name and
 *                         uid go into the Received header and the envelope. With TRACE,
 *                         each queued message waits (at most 10 s) for a TRACE request
 *                         before its delivery starts (sendmail -v).
 *   TRACE ID              deliver message ID now; while it runs, data lines
 *                         "T <kind> <text>" show the dialogue (kind: connect, >>>, <<<,
 *                         info, local); then "OK" when the round is over.
 *   LIST                  the queue: one data line per message as JSON (one object a line):
 *                         {"id":..,"size":..,"arrival":..,"sender":..,"held":bool,
 *                          "active":bool (a delivery round is running), "user":.. (local
 *                          submitter, when known),
 *                          "recipients":[{"address":..,"state":"pending|delivered|failed",
 *                          "attempts":..,"next_try":..,"status":..,"host":..,
 *                          "reason":..}]}
 *   SHOW ID               the envelope as JSON (one line), then the message headers as
 *                         data lines "H <header line>".
 *   FLUSH [DOMAIN]        retry deferred recipients now (of one domain). OK <n messages>
 *   HOLD ID | RELEASE ID  keep a message from delivery / let it go again
 *   DELETE ID             remove a message without notice
 *   BOUNCE ID             fail every pending recipient, with a report to the sender
 *   STATUS                data lines "key value": version, uptime (seconds), sessions,
 *                         queue (messages), active (delivery rounds running),
 *                         outbound_connections, held (messages), and since start: received
 *                         (messages), delivered, bounced, deferred (recipient outcomes)
 *   RELOAD                re-read the configuration file and its aliases: new sessions and
 *                         delivery rounds use them, open ones finish with the old ones;
 *                         "OK ..." names the settings that only a restart changes
 *   VERIFY ADDRESS        how ADDRESS would be delivered, as data lines:
 *                         "alias NAME -> TARGETS", "local MAILBOX", "forward ADDRESS",
 *                         "remote DOMAIN [via relayhost HOST]", "address HOST IP" (in the
 *                         order they would be tried), or "error [CODE] TEXT"; the final line
 *                         is "OK", "ERR undeliverable" or "ERR try again later".
 * DELETE of a message in the middle of a delivery round takes effect when the round ends.
 * HOLD, RELEASE, DELETE, BOUNCE, FLUSH and RELOAD need root or the admin group
 * (`admin_group`, default "mail"); the others are open to every local user.
 */
#ifndef POSTEL_NET_CONTROL_H
#define POSTEL_NET_CONTROL_H

#include <time.h>

struct event_base;
struct conf;
struct smtpd;
struct qmgr;
struct spool;
struct tpool;
struct dns;
struct remote;
struct control;

/* The daemon's parts the control socket works with. */
struct control_deps {
    struct event_base *base;
    struct conf *conf;
    const char *conf_file;      /* for RELOAD; NULL: built-in configuration */
    struct smtpd *smtpd;
    struct qmgr *qmgr;
    struct spool *spool;
    struct tpool *wq;
    struct dns *dns;
    struct remote *remote;
    time_t started;
    /* RELOAD: make newconf the daemon's configuration (the callee takes its reference). */
    void (*reload)(void *arg, struct conf *newconf);
    void *reload_arg;
};

/* Listen on path (a stale socket file is replaced). Returns NULL on failure (logged). */
struct control *control_new(const struct control_deps *deps, const char *path);
void control_free(struct control *c);

#endif
