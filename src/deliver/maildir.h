/*
 * deliver/maildir.h - Maildir delivery (the qmail rules: write in tmp/, fsync, move into
 * new/ under a unique name, then make new/ durable).
 *
 * Blocking: worker threads only.
 */
#ifndef POSTEL_DELIVER_MAILDIR_H
#define POSTEL_DELIVER_MAILDIR_H

#include <stddef.h>

/*
 * Deliver prefix (headers to add, LF line ends) followed by content into the Maildir
 * <root>/<user>/, creating it if missing. On success writes the file name under new/
 * into name (size namesz) and returns 0; on failure returns -1 with errno set and a
 * reason in err.
 */
int maildir_deliver(const char *root, const char *user, const char *prefix, size_t plen,
    const char *content, size_t clen, char *name, size_t namesz, char *err, size_t errsz);

#endif
