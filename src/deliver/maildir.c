/*
 * deliver/maildir.c - Maildir delivery, exactly once per delivery key.
 */
#include "deliver/maildir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include "util/fsx.h"

static int ensure_maildir(const char *base)
{
    static const char *sub[] = { "tmp", "new", "cur" };
    char p[4096];
    for (size_t i = 0; i < 3; i++) {
        if (snprintf(p, sizeof p, "%s/%s", base, sub[i]) >= (int)sizeof p) {
            errno = ENAMETOOLONG;
            return -1;
        }
        if (access(p, F_OK) == 0)
            continue;
        if (fsx_mkdirs(p, 0700) == -1)
            return -1;
    }
    return 0;
}

static int write_iov(int fd, const char *a, size_t alen, const char *b, size_t blen)
{
    struct iovec iov[2] = { { (void *)a, alen }, { (void *)b, blen } };
    int cnt = 2;
    struct iovec *v = iov;
    while (cnt > 0) {
        ssize_t w = writev(fd, v, cnt);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        size_t left = (size_t)w;
        while (cnt > 0 && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            cnt--;
        }
        if (cnt > 0) {
            v->iov_base = (char *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return 0;
}

/* Is there a file name, or name:2,FLAGS, in dir (a reader moved it to cur/)? */
static int find_in(const char *dir, const char *name, bool *found)
{
    *found = false;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? 0 : -1;
    size_t nl = strlen(name);
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, name, nl) == 0 &&
            (de->d_name[nl] == '\0' || de->d_name[nl] == ':')) {
            *found = true;
            break;
        }
    }
    int e = errno;
    closedir(d);
    errno = e;
    return *found || e == 0 ? 0 : -1;
}

/* Move tmp to dst unless dst exists (*existed then; tmp is removed either way).
 * renameat2 where the file system has it; else link, which never replaces, and unlink. */
static int move_noreplace(const char *tmp, const char *dst, bool *existed)
{
    *existed = false;
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EINVAL || errno == ENOSYS) {
        if (link(tmp, dst) == 0) {
            (void)unlink(tmp);
            return 0;
        }
    }
    if (errno != EEXIST)
        return -1;
    *existed = true;
    (void)unlink(tmp);
    return 0;
}

int maildir_deliver(const char *root, const char *user, const char *key, enum maildir_seen seen,
    const char *prefix, size_t plen, const char *content, size_t clen, char *name,
    size_t namesz, bool *existed, char *err, size_t errsz)
{
    char base[4096], tmp[4096], dst[4096], newdir[4096], curdir[4096], host[128];
    *existed = false;
    if (snprintf(base, sizeof base, "%s/%s", root, user) >= (int)sizeof base) {
        snprintf(err, errsz, "Maildir path too long");
        errno = ENAMETOOLONG;
        return -1;
    }
    if (ensure_maildir(base) == -1) {
        snprintf(err, errsz, "cannot create Maildir %s: %s", base, strerror(errno));
        return -1;
    }
    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    /* '/', ':' and ',' cannot appear in a Maildir name's host part (the Maildir spec;
     * ',' starts the size field). */
    for (char *h = host; *h; h++)
        if (*h == '/' || *h == ':' || *h == ',')
            *h = '_';
    /* S= is the file's size, which Maildir readers use without a stat. */
    if (snprintf(name, namesz, "%s.%s,S=%zu", key, host, plen + clen) >= (int)namesz ||
        snprintf(tmp, sizeof tmp, "%s/tmp/%s", base, name) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/new/%s", base, name) >= (int)sizeof dst ||
        snprintf(newdir, sizeof newdir, "%s/new", base) >= (int)sizeof newdir ||
        snprintf(curdir, sizeof curdir, "%s/cur", base) >= (int)sizeof curdir) {
        snprintf(err, errsz, "Maildir path too long");
        errno = ENAMETOOLONG;
        return -1;
    }
    if (seen == MAILDIR_RETRY) {
        struct stat st;
        bool found = false;
        if (lstat(dst, &st) == 0)
            found = true;
        else if (find_in(curdir, name, &found) == -1) {
            int e = errno;
            snprintf(err, errsz, "cannot read %s: %s", curdir, strerror(e));
            errno = e;
            return -1;
        }
        if (found) {
            *existed = true;
            goto sync;
        }
    }
    /* A file of this name in tmp/ is a copy an attempt left unfinished: start over. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd == -1) {
        snprintf(err, errsz, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    if (write_iov(fd, prefix, plen, content, clen) == -1 || fdatasync(fd) == -1) {
        int e = errno;
        snprintf(err, errsz, "cannot write %s: %s", tmp, strerror(e));
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (close(fd) == -1) {
        int e = errno;
        snprintf(err, errsz, "cannot write %s: %s", tmp, strerror(e));
        unlink(tmp);
        errno = e;
        return -1;
    }
    if (move_noreplace(tmp, dst, existed) == -1) {
        /* Not moved: tmp/ holds the only copy, and it is not delivered. */
        int e = errno;
        snprintf(err, errsz, "cannot move into %s: %s", newdir, strerror(e));
        unlink(tmp);
        errno = e;
        return -1;
    }
sync:
    /* The copy is in new/ now: only the directory's durability is left. A failure here
     * leaves it there, and the retry finds it instead of writing a second. */
    if (fsx_dirsync(newdir) == -1) {
        int e = errno;
        snprintf(err, errsz, "cannot sync %s: %s", newdir, strerror(e));
        errno = e;
        return -1;
    }
    return 0;
}
