/*
 * util/fsx.c - durable file-system steps.
 *
 * Directory fsync is shared by a leader/follower scheme: each directory has a request
 * counter and a done counter. A caller takes a ticket; if no fsync of that directory is
 * running it becomes the leader, fsyncs once for every ticket issued so far, and wakes the
 * others. With many sessions committing at once, one fsync covers them all.
 */
#include "util/fsx.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/str.h"
#include "util/xmalloc.h"

struct dsync {
    char *path;
    int fd;
    uint64_t ticket, done;
    bool running;
    int last_err;
    pthread_cond_t cv;
    struct dsync *next;
};

static pthread_mutex_t fsx_mu = PTHREAD_MUTEX_INITIALIZER;
static struct dsync *fsx_dirs;

static struct dsync *dsync_get(const char *path)
{
    for (struct dsync *d = fsx_dirs; d; d = d->next)
        if (strcmp(d->path, path) == 0)
            return d;
    struct dsync *d = xcalloc(1, sizeof *d);
    d->path = xstrdup(path);
    d->fd = -1;
    pthread_cond_init(&d->cv, NULL);
    d->next = fsx_dirs;
    fsx_dirs = d;
    return d;
}

int fsx_dirsync(const char *path)
{
    pthread_mutex_lock(&fsx_mu);
    struct dsync *d = dsync_get(path);
    uint64_t mine = ++d->ticket;
    int err = 0;
    while (d->done < mine) {
        if (d->running) {
            pthread_cond_wait(&d->cv, &fsx_mu);
            continue;
        }
        d->running = true;
        uint64_t upto = d->ticket;
        int fd = d->fd;
        pthread_mutex_unlock(&fsx_mu);
        if (fd == -1)
            fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int e = 0;
        if (fd == -1 || fsync(fd) == -1)
            e = errno;
        pthread_mutex_lock(&fsx_mu);
        if (d->fd == -1 && fd != -1)
            d->fd = fd;
        d->running = false;
        d->last_err = e;
        d->done = upto;
        pthread_cond_broadcast(&d->cv);
    }
    err = d->last_err;
    pthread_mutex_unlock(&fsx_mu);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

int fsx_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int fsx_mkdirs(const char *path, unsigned mode)
{
    char tmp[4096];
    if (str_copy(tmp, sizeof tmp, path) == -1) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) == -1 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(tmp, mode) == -1 && errno != EEXIST)
        return -1;
    return 0;
}

void fsx_cleanup(void)
{
    pthread_mutex_lock(&fsx_mu);
    struct dsync *d = fsx_dirs;
    fsx_dirs = NULL;
    pthread_mutex_unlock(&fsx_mu);
    while (d) {
        struct dsync *n = d->next;
        if (d->fd != -1)
            close(d->fd);
        pthread_cond_destroy(&d->cv);
        free(d->path);
        free(d);
        d = n;
    }
}
