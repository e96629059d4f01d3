/*
 * queue/envelope.h - the message envelope and its on-disk form (version 1).
 *
 * Owns:  struct env_msg and the text records that store it at the head of a queue file,
 *        and the per-recipient status file.
 * Never: touches files; encode to a buffer, decode from bytes. Every peer-supplied string
 *        is xtext-encoded in the records, so no record can be forged by a peer.
 *
 * Queue file:  "postel-envelope 1\n" then one record a line, "end\n", then the message
 *              content (LF line ends). Records:
 *                id ID | arrival UNIXTIME | sender XTEXT | envid XTEXT | ret FULL|HDRS |
 *                body 7BIT|8BITMIME | smtputf8 | helo XTEXT | client XTEXT | user XTEXT |
 *                rcpt XTEXT local|remote NOTIFYMASK ORCPT-XTEXT-or-"-"
 * Status file: "postel-status 1\n" then lines
 *              "st INDEX STATE ATTEMPTS NEXT FLAGS STATUS HOST REASON" (STATE: p pending,
 *              d delivered, f failed; FLAGS: a number, 1 = delay notice sent; STATUS,
 *              HOST and REASON xtext or "-"), and "hold" when the message is held;
 *              rewritten atomically.
 */
#ifndef POSTEL_QUEUE_ENVELOPE_H
#define POSTEL_QUEUE_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util/buf.h"

enum env_rstate { ENV_R_PENDING, ENV_R_DELIVERED, ENV_R_FAILED };

struct env_rcpt {
    char *addr;
    bool local;
    unsigned notify;            /* SMTP_NOTIFY_* mask, 0: not given */
    char *orcpt;                /* "type;address" or NULL */
    enum env_rstate state;
    unsigned attempts;
    time_t next_try;
    char *reason;               /* last error text or NULL */
    char *status;               /* RFC 3463 code of the last outcome, or NULL */
    char *host;                 /* the remote host that gave it, or NULL */
    bool delay_notified;        /* a "delayed" DSN was sent */
};

struct env_msg {
    char id[24];
    time_t arrival;
    char *sender;               /* "" for <> */
    char *envid;                /* or NULL */
    int ret;                    /* enum smtp_ret */
    int body;                   /* enum smtp_body */
    bool smtputf8;
    char *helo;
    char *client;
    char *user;                 /* local submitter "name (uid N)", or NULL */
    bool held;                  /* kept from delivery by the administrator (status file) */
    unsigned long long size;    /* content octets, when known (not stored) */
    struct env_rcpt *rcpts;
    size_t nrcpt;
    size_t body_offset;         /* where the content starts in the queue file */
};

/* Append the queue-file head for m (records and "end\n") to b. Returns 0 or -1 (cap). */
int env_encode(const struct env_msg *m, struct buf *b);
/*
 * Decode a queue-file head from p (n bytes, possibly followed by content). Fills m (owned
 * strings; free with env_free) and m->body_offset. Returns 0, or -1 with a reason in err.
 */
int env_decode(const char *p, size_t n, struct env_msg *m, char *err, size_t errsz);
/* Append the status file for m to b. */
int env_status_encode(const struct env_msg *m, struct buf *b);
/* Apply a status file to m (whose recipients are already decoded). Returns 0 or -1. */
int env_status_decode(const char *p, size_t n, struct env_msg *m, char *err, size_t errsz);
/* Add a recipient (strings copied). */
struct env_rcpt *env_add_rcpt(struct env_msg *m, const char *addr, bool local, unsigned notify,
    const char *orcpt);
/* Free the strings and recipients of m (not m itself). */
void env_free(struct env_msg *m);

#endif
