/*
 * deliver/maildir.c - Maildir delivery.
 */
#include "deliver/maildir.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
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

int maildir_deliver(const char *root, const char *user, const char *prefix, size_t plen,
    const char *content, size_t clen, char *name, size_t namesz, char *err, size_t errsz)
{
    static atomic_uint seq;
    char base[4096], tmp[4096], dst[4096], newdir[4096], host[128];
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
    /* '/' and ':' cannot appear in a Maildir name (the Maildir spec). */
    for (char *h = host; *h; h++)
        if (*h == '/' || *h == ':')
            *h = '_';
    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned q = atomic_fetch_add(&seq, 1);
    snprintf(name, namesz, "%lld.M%ldP%ldQ%u.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
        (long)getpid(), q, host);
    if (snprintf(tmp, sizeof tmp, "%s/tmp/%s", base, name) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/new/%s", base, name) >= (int)sizeof dst ||
        snprintf(newdir, sizeof newdir, "%s/new", base) >= (int)sizeof newdir) {
        snprintf(err, errsz, "Maildir path too long");
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
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
    close(fd);
    if (rename(tmp, dst) == -1 || fsx_dirsync(newdir) == -1) {
        int e = errno;
        snprintf(err, errsz, "cannot move into %s: %s", newdir, strerror(e));
        unlink(tmp);
        errno = e;
        return -1;
    }
    return 0;
}
