/*
 * queue/maildrop.c - writing drop files (the format is at maildrop.h).
 *
 * Owns:  see maildrop.h.
 * Never: has its own commit: the temporary file and the commit are queue/spool.c's.
 */
#include "queue/maildrop.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/spool.h"
#include "util/buf.h"
#include "util/fsx.h"

/* Create dir with MAILDROP_DIR_MODE (the mode posteld gives it) when missing; errors show
 * up when the file is created. */
static void make_dir(const char *spool_dir, const char *dir)
{
    if (mkdir(dir, MAILDROP_DIR_MODE) == 0) {
        (void)chmod(dir, MAILDROP_DIR_MODE);    /* past the umask */
    } else if (errno == ENOENT) {
        if (fsx_mkdirs(spool_dir, 0700) == 0 && mkdir(dir, MAILDROP_DIR_MODE) == 0)
            (void)chmod(dir, MAILDROP_DIR_MODE);
    }
}

int maildrop_write(const char *spool_dir, struct env_msg *m, const char *text, size_t len,
    char *err, size_t errsz)
{
    char dir[4096], tmp[4200], final[4200];
    if (snprintf(dir, sizeof dir, "%s/maildrop", spool_dir) >= (int)sizeof dir) {
        snprintf(err, errsz, "spool_dir too long");
        errno = ENAMETOOLONG;
        return MAILDROP_ECREATE;
    }
    make_dir(spool_dir, dir);
    spool_new_id(m->id, sizeof m->id);
    struct buf head;
    buf_init(&head, 0);
    if (env_encode(m, &head) == -1) {
        buf_free(&head);
        snprintf(err, errsz, "cannot encode the envelope");
        errno = EINVAL;
        return MAILDROP_EENCODE;
    }
    int fd = spool_tmp_create(dir, MAILDROP_FILE_MODE, tmp, sizeof tmp);
    if (fd == -1) {
        int e = errno;
        snprintf(err, errsz, "cannot create a file in %s: %s", dir, strerror(e));
        buf_free(&head);
        errno = e;
        return MAILDROP_ECREATE;
    }
    snprintf(final, sizeof final, "%s/%s", dir, m->id);
    int r = 0;
    if (fsx_write_all(fd, head.p, head.len) == -1 || fsx_write_all(fd, text, len) == -1) {
        r = -1;
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
    }
    buf_free(&head);
    if (r == 0)
        r = spool_commit_file(fd, tmp, final, dir, true);
    if (r == -1) {
        int e = errno;
        snprintf(err, errsz, "cannot write %s: %s", tmp, strerror(e));
        errno = e;
        return MAILDROP_EWRITE;
    }
    return 0;
}
