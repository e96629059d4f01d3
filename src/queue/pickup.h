/*
 * queue/pickup.h - the drop directory: messages the sendmail command left while no
 * daemon was running.
 *
 * Owns:  <spool_dir>/maildrop/ (mode 1733: anyone may drop, nobody may list), reading
 *        dropped files with the same address parser and limits as SMTP, and moving them
 *        into the queue under a new id.
 * Blocking: pickup_scan() runs on a worker thread.
 */
#ifndef POSTEL_QUEUE_PICKUP_H
#define POSTEL_QUEUE_PICKUP_H

#include <stddef.h>

#include "queue/envelope.h"

struct conf;
struct spool;

/* Create the drop directory. Returns 0 or -1 (logged). */
int pickup_init(const struct spool *sp);
/*
 * Queue every dropped message; files that are not valid are moved to corrupt/. Returns
 * the number queued; their envelopes are in *out (free each with env_free, then the array).
 */
size_t pickup_scan(const struct conf *c, struct spool *sp, struct env_msg **out);

#endif
