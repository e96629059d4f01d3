/*
 * cli/smtpdrive.h - a small blocking driver for the sender-SMTP machine (smtp/client.h)
 *        on a connected stream socket, for the command-line programs.
 *
 * Owns:  poll()/read()/write() on the socket with the machine's timeouts, feeding every
 *        byte the server sends through the reply parser (smtp/reply.h) into cli_reply(),
 *        writing the machine's commands, and the message content in the form and size the
 *        machine defines (cli_body_put(), cli_body_size()); QUIT once the message is done.
 * Never: connects, runs TLS (a STARTTLS the machine asks for fails the session; use the
 *        default policy CLI_TLS_NONE), authenticates, or interprets the results: the caller
 *        reads cli_results().
 * Limits: replies as smtp/reply.h; every wait is bounded (cli_timeout(), or timeout_ms).
 */
#ifndef POSTEL_CLI_SMTPDRIVE_H
#define POSTEL_CLI_SMTPDRIVE_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/client.h"

/* What went wrong on the driver's side (smtpdrive.err). */
enum smtpdrive_err {
    SMTPDRIVE_OK,               /* the session ended as the machine wanted */
    SMTPDRIVE_CLOSED,           /* the server closed the connection */
    SMTPDRIVE_TIMEOUT,          /* no reply, or no room to write, in time */
    SMTPDRIVE_PROTOCOL,         /* the server's output is not SMTP replies */
    SMTPDRIVE_READ,             /* read() failed (errno in sys_errno) */
    SMTPDRIVE_WRITE,            /* write() failed (errno in sys_errno) */
    SMTPDRIVE_LOCAL             /* our side: 8-bit content for a server without 8BITMIME
                                   (converting is not done here), or TLS asked for */
};

struct smtpdrive {
    /* set by the caller (smtpdrive_init() gives the defaults) */
    int fd;                     /* a connected stream socket; not closed here */
    unsigned timeout_ms;        /* 0: the machine's cli_timeout() for every wait; else this */
    /* Called at CLI_ACT_SEND_BODY, before any content is written; NULL: always send.
     * Returning false abandons the message: the connection is closed without the final
     * dot, so the server discards the transaction (RFC 5321 4.1.1.4), and every open
     * recipient becomes TEMP. */
    bool (*before_body)(void *arg, const struct smtp_client *c);
    void *arg;
    /* set by smtpdrive_run() */
    enum smtpdrive_err err;
    enum cli_state err_state;   /* the machine's state when err happened */
    int sys_errno;              /* for SMTPDRIVE_READ, SMTPDRIVE_WRITE */
    bool abandoned;             /* before_body() said no */
    char why[160];              /* for err: a short reason ("" for SMTPDRIVE_OK) */
};

/* Defaults for fd: the machine's timeouts, no before_body hook. */
void smtpdrive_init(struct smtpdrive *d, int fd);

/*
 * Run one session of c (cli_init()ed, nothing else done) for message m, whose content is
 * text (n octets, LF line ends; m->size should be cli_body_size(text, n)): cli_start(),
 * then replies and commands until the machine asks to close; after the message is done,
 * QUIT. m and text stay the caller's. Afterwards cli_results() holds the final outcome of
 * every recipient (also after a failure: cli_fail() was called). Returns 0 when the
 * session ended on the machine's terms (refusals included), or -1 on a driver-side
 * failure described by d->err, d->err_state and d->why.
 */
int smtpdrive_run(struct smtpdrive *d, struct smtp_client *c, const struct cli_msg *m,
    const char *text, size_t n);

#endif
