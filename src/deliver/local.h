/*
 * deliver/local.h - the local delivery agent: aliases, then Maildirs, for the local
 * recipients of one message.
 *
 * Owns:  alias expansion per delivery round (one copy per mailbox across the message's
 *        recipients), the headers added on delivery (Return-Path, Delivered-To), and the
 *        forwarded copy for aliases that point off-host.
 * Never: runs on the event loop (it blocks on the disk), decides retries or bounces: it
 *        sets each recipient's outcome and the queue manager does the rest.
 */
#ifndef POSTEL_DELIVER_LOCAL_H
#define POSTEL_DELIVER_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "queue/envelope.h"

struct aliases;
struct conf;
struct spool;

/* Per-recipient outcome of a local round. */
enum local_outcome { LOCAL_SKIPPED, LOCAL_DELIVERED, LOCAL_TEMP, LOCAL_PERM };

/*
 * Deliver every local recipient of m that is pending and due at now, expanding through al
 * (the aliases table the round holds a reference to). content is the
 * message (LF line ends). outcome[i] and why[i] (a "x.y.z text" reason, caller frees) are
 * set for each recipient handled. Aliases that point off-host are collected into one
 * forwarded copy, queued in sp with the original sender; *fwd receives its envelope
 * (fwd->nrcpt == 0: none) for the queue manager to schedule.
 * Each mailbox gets one copy of m, ever: retry says an earlier attempt (before a restart,
 * or one that failed half-way) may have delivered some already, so each Maildir is
 * searched for it (new/ and cur/) before writing; without it only new/ is checked.
 */
void local_deliver(const struct conf *c, const struct aliases *al, struct spool *sp,
    const struct env_msg *m,
    const char *content, size_t len, time_t now, bool retry, enum local_outcome *outcome,
    char **why, struct env_msg *fwd);

/* Is the address in one of our domains (or a bare "postmaster")? */
bool local_addr_is_local(const struct conf *c, const char *addr);

#endif
