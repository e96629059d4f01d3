/*
 * queue/spool.h - the durable queue on disk.
 *
 * Owns:  the spool directories (incoming/, queue/, corrupt/), queue ids, and every file
 *        operation on queue files. A message is written into incoming/ while it arrives;
 *        spool_commit() makes it durable (fdatasync, rename into queue/, group-committed
 *        fsync of queue/) and only then may the 250 go out.
 * Never: runs file operations on the event loop: everything but spool_new_id() and
 *        spool_open() blocks and belongs on a worker thread.
 */
#ifndef POSTEL_QUEUE_SPOOL_H
#define POSTEL_QUEUE_SPOOL_H

#include <stdbool.h>
#include <stddef.h>

#include "queue/envelope.h"
#include "util/buf.h"

struct spool {
    char *dir;
    char *incoming;
    char *queue;
    char *corrupt;
};

/* Open (and create) the spool under dir. Returns NULL with err on failure (startup). */
struct spool *spool_open(const char *dir, char *err, size_t errsz);
void spool_close(struct spool *sp);
/* A new unique queue id: 16 characters [0-9A-F]. Thread-safe. */
void spool_new_id(char *id, size_t idsz);

/* Append n bytes to incoming/ID, creating it when *fd is -1. Returns 0 or -1 (errno). */
int spool_append(struct spool *sp, const char *id, int *fd, const void *p, size_t n);
/* Make incoming/ID durable in queue/ and close fd. Returns 0 or -1 (errno; file removed). */
int spool_commit(struct spool *sp, const char *id, int fd);
/* Remove incoming/ID (fd closed if not -1). */
void spool_discard(struct spool *sp, const char *id, int fd);

/*
 * The commit step under spool_commit(), for files outside incoming/ and queue/ (the drop
 * directory): make the fully written file fd, named from, durable as to in the directory
 * todir: fdatasync, close fd, rename, then fsync todir (group-committed, fsx_dirsync()).
 * todir_may_be_closed: a todir this process may not open (EACCES, as the drop directory,
 * mode 1733, is for a submitter) is synced by whoever can; any other failure counts.
 * Returns 0, or -1 with errno; fd is closed and no file is left behind either way.
 */
int spool_commit_file(int fd, const char *from, const char *to, const char *todir,
    bool todir_may_be_closed);

/*
 * Create and open for writing a new file in dir named ".tmp.<pid>.<random>" (readers of
 * the directory skip names starting with "."), with exactly mode (whatever the umask);
 * its path goes to path (size psz). Returns the fd, or -1 with errno.
 */
int spool_tmp_create(const char *dir, unsigned mode, char *path, size_t psz);

/*
 * Queue a message made here (a bounce, a forwarded copy): assign m->id, write the envelope
 * and content (LF line ends) and commit. Returns 0 or -1 (errno; nothing left behind).
 */
int spool_inject(struct spool *sp, struct env_msg *m, const char *content, size_t len);
/* Read queue/ID (and its status file) into m, and the content into content if not NULL.
 * Returns 0, -1 (errno: cannot read), or -2 (corrupt: reason in err). */
int spool_load(struct spool *sp, const char *id, struct env_msg *m, struct buf *content,
    char *err, size_t errsz);
/* Durably record the recipient states of m (status file, atomic). Returns 0 or -1. */
int spool_save_status(struct spool *sp, const struct env_msg *m);
/* Remove a finished message. Returns 0 or -1. */
int spool_remove(struct spool *sp, const char *id);
/* Move a queue file that cannot be read to corrupt/. */
void spool_quarantine(struct spool *sp, const char *id);
/* Startup: delete incoming/ leftovers (never acknowledged); list the ids in queue/.
 * Returns the number of ids (array in *ids, free each and the array), or -1. */
long spool_recover(struct spool *sp, char ***ids);

#endif
