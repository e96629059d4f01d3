/*
 * deliver/mbox.h - delivery into a Unix mbox file (/var/mail/USER, a .forward's /file).
 *
 * The Debian rules, as Postfix's local(8) and procmail follow them: a dotlock (PATH.lock,
 * made with O_EXCL; created with the mail group's rights where the spool directory needs
 * them) and an fcntl lock on the file; a "From " line, ">From " quoting (mboxo), a blank
 * line after the message; the file fsynced before success. A failed write is cut back to
 * the size the file had, so a reader never sees half a message.
 *
 * Blocking; the caller runs as the mailbox's owner (the delivery agent's child): the file
 * must be a regular file owned by the caller, with one link, never reached through a
 * symbolic link. Not thread-safe where lock_gid is used (it changes the effective gid).
 */
#ifndef POSTEL_DELIVER_MBOX_H
#define POSTEL_DELIVER_MBOX_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* How long a delivery waits for the locks; a dotlock older than this is stale. */
#define MBOX_LOCK_WAIT      30      /* seconds */
#define MBOX_LOCK_STALE     300     /* seconds */

enum mbox_result {
    MBOX_OK,
    MBOX_TEMP,          /* locked by someone else too long, disk full, I/O error: retry */
    MBOX_UNSAFE         /* a link, another owner, not a regular file: refused for good */
};

/*
 * Append one message to the mbox at path, creating it (mode 0600) when missing. sender is
 * the envelope sender for the "From " line ("" becomes MAILER-DAEMON), arrival its date.
 * prefix (headers to add) and content (the message) have LF line ends; content lines that
 * begin with "From " are written as ">From ". lock_gid: a group whose rights the dotlock
 * needs (the mail group, when the spool directory is root:mail 2775), or (gid_t)-1 for
 * none; the effective gid is that group only while the lock file is made or removed.
 * Returns MBOX_OK, or MBOX_TEMP / MBOX_UNSAFE with the reason in err (size errsz).
 */
enum mbox_result mbox_deliver(const char *path, const char *sender, time_t arrival,
    const char *prefix, size_t plen, const char *content, size_t clen, gid_t lock_gid,
    char *err, size_t errsz);

#endif
