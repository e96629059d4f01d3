/*
 * util/fsx.h - durable file-system steps: group-committed directory fsync, full writes.
 *
 * Blocking: call only from worker threads (or at startup).
 */
#ifndef POSTEL_UTIL_FSX_H
#define POSTEL_UTIL_FSX_H

#include <stddef.h>

/*
 * fsync the directory `path` so that entries created or renamed in it before this call are
 * durable. Concurrent callers for the same directory share one fsync (group commit): a caller
 * waits for the first fsync that starts after its call. Returns 0 or -1 (errno set).
 */
int fsx_dirsync(const char *path);
/* write() all n bytes, retrying on EINTR and short writes. Returns 0 or -1 (errno set). */
int fsx_write_all(int fd, const void *p, size_t n);
/* mkdir -p with mode; returns 0 or -1. */
int fsx_mkdirs(const char *path, unsigned mode);
/* Forget cached directory handles (at shutdown). */
void fsx_cleanup(void);

#endif
