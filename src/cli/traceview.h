/*
 * cli/traceview.h - the daemon's delivery transcript shown as sendmail -v shows it.
 *
 * Owns:  turning TRACE data lines ("T <kind> <text>", net/control.h) into sendmail 8's
 *        verbose lines: "rcpt... Connecting to HOST via smtp...", ">>> COMMAND", the
 *        server's replies as they are, "rcpt... Sent (text)", "Closing connection to HOST",
 *        and the local deliveries; it counts the outcomes.
 * Never: does I/O.
 *
 * The daemon sends:   info routing DEST | connect Connecting to HOST via smtp... |
 *                     connect Connected to HOST | >>> CMD | <<< REPLY |
 *                     info <rcpt>... Sent|Deferred|Failed (REPLY) | info reusing ... |
 *                     info TEXT | local <rcpt>... TEXT
 */
#ifndef POSTEL_CLI_TRACEVIEW_H
#define POSTEL_CLI_TRACEVIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

struct traceview {
    const char *const *rcpts;   /* the message's recipients, to name a connection */
    const bool *remote;         /* per recipient: not in a local domain */
    size_t nrcpt;
    char route[300];            /* destination being routed (domain or relayhost) */
    char host[300];             /* host of the open connection, "" when none */
    bool pending_close;         /* its request ended: "Closing" unless it is reused */
    unsigned sent, delivered, deferred, failed;
};

/* Start a view for one message; rcpts and remote stay owned by the caller. */
void traceview_init(struct traceview *t, const char *const *rcpts, const bool *remote,
    size_t n);

/*
 * Split a TRACE data line "T KIND TEXT" in place. Returns 0 with *kind and *text set, or
 * -1 when line is not a trace line.
 */
int traceview_split(char *line, const char **kind, const char **text);

/* Append what sendmail -v prints for one trace event (zero or more lines) to out. */
int traceview_feed(struct traceview *t, const char *kind, const char *text, struct buf *out);

/* The round is over: append the "Closing connection" still due. */
int traceview_end(struct traceview *t, struct buf *out);

#endif
