/*
 * mail/dsn.h - delivery status notifications: bounces, delay notices and success reports.
 *
 * Owns:  the whole report message (RFC 3464 multipart/report, RFC 3461 RET/ENVID/ORCPT,
 *        RFC 6533 message/global-* types for SMTPUTF8 mail, RFC 3834 Auto-Submitted), its
 *        wording, and the escaping of every peer-supplied string placed in it.
 * Never: does I/O, reads the clock or the queue, or decides whom to notify; the caller
 *        passes every fact in and sends the result with MAIL FROM:<> to m->sender.
 * Limits: every line the module writes is at most 998 octets (RFC 5322 2.1.1); each
 *        peer-supplied string is cut to at most 998 octets; the returned message is
 *        included as is; whole messages are returned only up to DSN_FULL_MAX when the
 *        sender did not ask with RET.
 */
#ifndef POSTEL_MAIL_DSN_H
#define POSTEL_MAIL_DSN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util/buf.h"

/* Without RET, a failure report returns the whole message only up to this size. */
#define DSN_FULL_MAX (100 * 1024)

/* RFC 3464 2.3.3 Action values. */
enum dsn_action { DSN_FAILED, DSN_DELAYED, DSN_DELIVERED, DSN_RELAYED, DSN_EXPANDED };

struct dsn_rcpt {
    const char *addr;           /* final recipient (envelope address, as in the queue) */
    const char *orcpt;          /* "type;address" from RCPT ORCPT= (xtext-decoded), or NULL */
    enum dsn_action action;
    const char *status;         /* "5.1.1" etc.; the class follows the action (4.4.1 of a
                                   failed recipient is sent as 5.4.1); malformed: X.0.0 */
    const char *remote_mta;     /* host that answered (e.g. "mx.example.org"), or NULL */
    const char *diagnostic;     /* the reply ("smtp;") or a local error ("x-postel;"); may
                                   be hostile; NULL */
    time_t last_attempt;        /* 0: omit */
    time_t will_retry_until;    /* used for DSN_DELAYED only; 0: omit */
};

struct dsn_msg {
    const char *reporting_mta;  /* our hostname */
    const char *queue_id;
    const char *envid;          /* ENVID (xtext-decoded), or NULL */
    const char *sender;         /* original envelope sender; never "" */
    time_t arrival;             /* 0: omit Arrival-Date */
    const char *client_helo;    /* Received-From-MTA, or NULL */
    const char *client_addr;    /* client IP (shown next to the HELO name), or NULL */
    int ret;                    /* enum smtp_ret from MAIL RET= */
    const struct dsn_rcpt *rcpts;
    size_t nrcpt;
    const char *original;       /* the original message (LF line ends), or NULL: no part 3 */
    size_t original_len;
    time_t now;                 /* Date: and Message-ID */
    const char *boundary_seed;  /* makes the MIME boundary unique (e.g. queue id + time) */
    bool smtputf8;              /* the original was sent with SMTPUTF8 */
};

/*
 * Append to out a complete RFC 5322 message (LF line ends) reporting on m->rcpts to
 * m->sender: a human-readable text/plain part, a message/delivery-status part, and (when
 * m->original is set) the original message, as message/rfc822 or only its header block as
 * text/rfc822-headers. The subject follows the worst action present: failed, then delayed,
 * then success.
 *
 * The whole message is returned only in a report with a failed recipient (RFC 3461 4.3)
 * and RET=FULL, or no RET and at most DSN_FULL_MAX octets; if it does not fit out's cap,
 * the headers are returned instead. With m->smtputf8 and a non-ASCII address or original
 * header, the RFC 6533 types (and report-type=global-delivery-status) are used and UTF-8
 * is kept; otherwise the parts this module writes are US-ASCII (non-ASCII address octets
 * become xtext "+HH", other non-ASCII '?').
 * Peer strings have CR, LF and other controls replaced by SP, so they can start no header
 * line; the boundary occurs nowhere in the content.
 *
 * Returns 0, or -1 with out unchanged and errno EINVAL (no sender or no recipients) or
 * ENOBUFS (the report does not fit out's cap).
 */
int dsn_build(const struct dsn_msg *m, struct buf *out);

#endif
