/*
 * queue/maildrop.h - the one writer of the drop directory, <spool_dir>/maildrop/: where
 *        sendmail leaves a message when no daemon answers, for queue/pickup.c to queue.
 *
 * Owns:  the drop file format, its names while written and once complete, its mode, and
 *        creating the directory (mode MAILDROP_DIR_MODE) when it is missing.
 * Never: decides who submitted: pickup takes that from the file's owner.
 * Limits: none here; pickup.c refuses files over message_size_limit plus PICKUP_ENV_MAX.
 *
 * A drop file is a queue file: an envelope head exactly as env_encode() writes it
 * (queue/envelope.h: "postel-envelope 1", "id ID", the sender, "rcpt" lines, ..., "end")
 * followed by the message text with LF line ends. Pickup decodes it with env_decode(),
 * checks every address, replaces the user (with "uid N (maildrop)" from the file's owner),
 * the client, the arrival time and each recipient's local flag, and queues it under a new
 * id. While written, a file is named ".tmp.<pid>.<random>" (pickup skips names starting
 * with "."); it is renamed to its envelope id ([0-9A-F]{16}) once durable. Files are mode
 * 0644, so that a daemon running as its own user can read them; nobody else can find them,
 * since the directory cannot be listed.
 */
#ifndef POSTEL_QUEUE_MAILDROP_H
#define POSTEL_QUEUE_MAILDROP_H

#include <stddef.h>

#include "queue/envelope.h"

#define MAILDROP_DIR_MODE  01733    /* anyone drops a file in, only its owner lists it */
#define MAILDROP_FILE_MODE 0644

/* Outcomes of maildrop_write() other than 0. */
enum maildrop_err {
    MAILDROP_ECREATE = -1,      /* no file could be created (errno) */
    MAILDROP_EWRITE = -2,       /* the file could not be written or made durable (errno) */
    MAILDROP_EENCODE = -3       /* the envelope cannot be encoded */
};

/*
 * Drop m and its text (len octets, LF line ends) into <spool_dir>/maildrop/, creating the
 * directory (and spool_dir) when missing: assigns m->id (the file's name), writes the
 * temporary file, then commits it with spool_commit_file() (fdatasync, rename, directory
 * fsync where this process may open the directory). Nothing is left behind on failure.
 * Returns 0, or an enum maildrop_err with errno set and a reason in err (size errsz).
 */
int maildrop_write(const char *spool_dir, struct env_msg *m, const char *text, size_t len,
    char *err, size_t errsz);

#endif
