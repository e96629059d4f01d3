/*
 * deliver/maildir.h - Maildir delivery (the qmail rules: write in tmp/, fsync, move into
 * new/ under a unique name, then make new/ durable), exactly once per delivery key.
 *
 * Blocking: worker threads only.
 */
#ifndef POSTEL_DELIVER_MAILDIR_H
#define POSTEL_DELIVER_MAILDIR_H

#include <stdbool.h>
#include <stddef.h>

/* What the caller knows about earlier attempts at the same delivery. */
enum maildir_seen {
    MAILDIR_FIRST,      /* no earlier attempt can have written it: check new/ only */
    MAILDIR_RETRY       /* an earlier attempt (before a crash, or one that failed after
                           its rename) may have: look in new/ and cur/ */
};

/*
 * Deliver prefix (headers to add, LF line ends) followed by content into the Maildir
 * <root>/<user>/, creating it if missing. The file's name is made from key (unique for
 * one message and one mailbox, e.g. "<arrival>.Q<queue id>"), the host name and the size,
 * so delivering the same key again finds the earlier copy, in new/ or (seen RETRY) in cur/
 * where a reader moved it with a ":2,..." suffix, and writes no second one.
 * On success writes the file name under new/ into name (size namesz), sets *existed (the
 * copy was already there; new/ is synced again all the same) and returns 0. On failure
 * returns -1 with errno set and a reason in err; a copy may then be in new/ already (its
 * rename succeeded but the directory sync did not), which the retry finds.
 */
int maildir_deliver(const char *root, const char *user, const char *key, enum maildir_seen seen,
    const char *prefix, size_t plen, const char *content, size_t clen, char *name,
    size_t namesz, bool *existed, char *err, size_t errsz);

#endif
