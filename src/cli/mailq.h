/*
 * cli/mailq.h - the queue as mailq(1) prints it, from the daemon's LIST objects.
 *
 * Owns:  the table layout (after Postfix's mailq): queue id with '!' when held and '*'
 *        while a delivery runs, size, arrival time, sender; each recipient below with its
 *        state and last error; the "-- N Kbytes in M Requests." summary.
 * Never: does I/O; the time zone is the process's (localtime).
 *
 * Input objects (net/control.h, LIST):
 *   {"id":..,"size":..,"arrival":..,"sender":..,"held":bool,"active":bool,["user":..,]
 *    "recipients":[{"address":..,"state":"pending|delivered|failed","attempts":..,
 *                   "next_try":..,"status":..,"host":..,"reason":..}]}
 */
#ifndef POSTEL_CLI_MAILQ_H
#define POSTEL_CLI_MAILQ_H

#include <stddef.h>

#include "cli/json.h"
#include "util/buf.h"

/* Append the column titles line. */
int mailq_title(struct buf *out);
/* Append one message's entry (its line, one line per recipient, an empty line). */
int mailq_entry(const struct json *msg, struct buf *out);
/* The state word of a recipient object: queued, deferred, delivered or failed. */
const char *mailq_rcpt_state(const struct json *rcpt);
/*
 * Append the whole listing for n messages: "Mail queue is empty" when n is 0, else the
 * titles, each entry, and "-- K Kbytes in N Request(s)." (K rounded up).
 */
int mailq_format(const struct json *const *msgs, size_t n, struct buf *out);

#endif
