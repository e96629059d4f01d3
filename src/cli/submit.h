/*
 * cli/submit.h - hand a message to posteld: SMTP over the control socket, or the drop
 *        directory when no daemon answers.
 *
 * Owns:  the submission's envelope as the SMTP client machine takes it (SIZE, BODY,
 *        SMTPUTF8, RET, ENVID, NOTIFY), the policy that a deferred recipient abandons the
 *        message, and the exit status and text for each kind of refusal.
 * Never: parses replies, builds commands or dot-stuffs: the dialogue is smtp/client.c's,
 *        run by cli/smtpdrive.c; never writes maildrop files itself (queue/maildrop.h).
 *        Never parses or rewrites the message: it sends the text it is given.
 * Limits: replies as smtp/reply.h, waited for as long as cli_timeout() says.
 */
#ifndef POSTEL_CLI_SUBMIT_H
#define POSTEL_CLI_SUBMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct conf;

struct submit_msg {
    const char *sender;         /* reverse-path without <>; "" for <> */
    const char *const *rcpts;   /* forward-paths without <> */
    size_t nrcpt;
    unsigned notify;            /* SMTP_NOTIFY_* bits for every recipient; 0: none */
    int ret;                    /* enum smtp_ret */
    const char *envid;          /* or NULL */
    int body;                   /* enum smtp_body; SMTP_BODY_NONE: none declared */
    bool smtputf8;
    const char *helo;           /* our name for EHLO */
    const char *text;           /* the message, LF line ends */
    size_t len;
    bool trace_hold;            /* sendmail -v: the daemon waits for our TRACE request */
};

struct submit_result {
    int status;                 /* exit status (sysexits.h); EX_OK when queued */
    bool no_daemon;             /* nothing listens on the socket (fall back to the drop) */
    char id[32];                /* queue id from "queued as ID", or the maildrop file name */
    size_t accepted;            /* recipients the daemon accepted */
    char why[8448];             /* for a failure: what went wrong */
};

/*
 * Submit m over the control socket at path: request "SMTP" ("SMTP TRACE" with
 * m->trace_hold). Recipients refused with 5xx are reported on err as
 * "ADDR... REPLY" and skipped (status EX_NOUSER, or EX_NOPERM for 5.7.x, once the rest
 * is queued); a 4xx for any recipient abandons the message (EX_TEMPFAIL). res->no_daemon
 * is set when the socket is missing or refuses connections, or the daemon closes or
 * answers 421 before its greeting. Returns res->status.
 */
int submit_smtp(const char *path, const struct submit_msg *m, FILE *err,
    struct submit_result *res);

/*
 * Leave m in <spool_dir>/maildrop/ with maildrop_write() (queue/maildrop.h has the
 * format); c gives the spool and the local domains. res->id gets the file's name.
 * Returns res->status (EX_OK, or EX_TEMPFAIL / EX_CANTCREAT / EX_CONFIG with res->why).
 */
int submit_maildrop(const struct conf *c, const struct submit_msg *m,
    struct submit_result *res);

/* The exit status for a refusal with reply code code and enhanced code enh ("" if none)
 * at stage: 'M' MAIL, 'R' RCPT, 'D' end of DATA, 'O' other commands. */
int submit_status_for(int code, const char *enh, char stage);

#endif
