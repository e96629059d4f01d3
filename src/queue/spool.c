/*
 * queue/spool.c - queue files: create, commit, load, status, recovery.
 */
#include "queue/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/fsx.h"
#include "util/log.h"
#include "util/xmalloc.h"

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

struct spool *spool_open(const char *dir, char *err, size_t errsz)
{
    struct spool *sp = xcalloc(1, sizeof *sp);
    sp->dir = xstrdup(dir);
    sp->incoming = path_join(dir, "incoming");
    sp->queue = path_join(dir, "queue");
    sp->corrupt = path_join(dir, "corrupt");
    const char *dirs[] = { sp->incoming, sp->queue, sp->corrupt };
    for (size_t i = 0; i < 3; i++) {
        if (fsx_mkdirs(dirs[i], 0700) == -1) {
            snprintf(err, errsz, "spool: cannot create %s: %s", dirs[i], strerror(errno));
            spool_close(sp);
            return NULL;
        }
    }
    return sp;
}

void spool_close(struct spool *sp)
{
    if (sp == NULL)
        return;
    free(sp->dir);
    free(sp->incoming);
    free(sp->queue);
    free(sp->corrupt);
    free(sp);
}

void spool_new_id(char *id, size_t idsz)
{
    static atomic_uint counter;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    unsigned c = atomic_fetch_add(&counter, 1) & 0xfff;
    snprintf(id, idsz, "%08llX%05lX%03X", (unsigned long long)tv.tv_sec & 0xffffffffULL,
        (unsigned long)tv.tv_usec & 0xfffff, c);
}

static void file_path(char *out, size_t osz, const char *dir, const char *id, const char *sfx)
{
    snprintf(out, osz, "%s/%s%s", dir, id, sfx);
}

int spool_append(struct spool *sp, const char *id, int *fd, const void *p, size_t n)
{
    if (*fd == -1) {
        char path[4096];
        file_path(path, sizeof path, sp->incoming, id, "");
        *fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (*fd == -1)
            return -1;
    }
    return fsx_write_all(*fd, p, n);
}

int spool_commit_file(int fd, const char *from, const char *to, const char *todir,
    bool todir_may_be_closed)
{
    if (fdatasync(fd) == -1) {
        int e = errno;
        close(fd);
        unlink(from);
        errno = e;
        return -1;
    }
    close(fd);
    if (rename(from, to) == -1) {
        int e = errno;
        unlink(from);
        errno = e;
        return -1;
    }
    if (fsx_dirsync(todir) == -1 && !(todir_may_be_closed && errno == EACCES)) {
        /* Not known to be durable: do not acknowledge, and do not deliver either. */
        int e = errno;
        unlink(to);
        errno = e;
        return -1;
    }
    return 0;
}

int spool_commit(struct spool *sp, const char *id, int fd)
{
    char from[4096], to[4096];
    file_path(from, sizeof from, sp->incoming, id, "");
    file_path(to, sizeof to, sp->queue, id, "");
    return spool_commit_file(fd, from, to, sp->queue, false);
}

/* A random 32-bit number for a temporary file name. */
static unsigned rand32(void)
{
    unsigned v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
    return v;
}

int spool_tmp_create(const char *dir, unsigned mode, char *path, size_t psz)
{
    int fd = -1;
    for (int tries = 0; fd == -1 && tries < 5; tries++) {
        if (snprintf(path, psz, "%s/.tmp.%ld.%08x", dir, (long)getpid(), rand32()) >=
            (int)psz) {
            errno = ENAMETOOLONG;
            return -1;
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
        if (fd == -1 && errno != EEXIST)
            return -1;
    }
    if (fd != -1 && fchmod(fd, (mode_t)mode) == -1) {
        int e = errno;
        close(fd);
        unlink(path);
        errno = e;
        return -1;
    }
    return fd;
}

void spool_discard(struct spool *sp, const char *id, int fd)
{
    char path[4096];
    if (fd != -1)
        close(fd);
    file_path(path, sizeof path, sp->incoming, id, "");
    unlink(path);
}

int spool_inject(struct spool *sp, struct env_msg *m, const char *content, size_t len)
{
    spool_new_id(m->id, sizeof m->id);
    struct buf head;
    buf_init(&head, 0);
    int fd = -1, r = -1;
    if (env_encode(m, &head) == 0 && spool_append(sp, m->id, &fd, head.p, head.len) == 0 &&
        spool_append(sp, m->id, &fd, content, len) == 0) {
        r = spool_commit(sp, m->id, fd);
        fd = -1;
    }
    int e = errno;
    if (fd != -1)
        spool_discard(sp, m->id, fd);
    buf_free(&head);
    errno = e;
    return r;
}

static int read_file(const char *path, struct buf *b)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && st.st_size > 0)
        buf_reserve(b, (size_t)st.st_size);
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1 || (r > 0 && buf_append(b, chunk, (size_t)r) == -1)) {
            int e = r == -1 ? errno : EFBIG;
            close(fd);
            errno = e;
            return -1;
        }
        if (r == 0)
            break;
    }
    close(fd);
    return 0;
}

int spool_load(struct spool *sp, const char *id, struct env_msg *m, struct buf *content,
    char *err, size_t errsz)
{
    char path[4096];
    struct buf b;
    buf_init(&b, 0);
    file_path(path, sizeof path, sp->queue, id, "");
    if (read_file(path, &b) == -1) {
        snprintf(err, errsz, "%s", strerror(errno));
        buf_free(&b);
        return -1;
    }
    if (env_decode(b.p ? b.p : "", b.len, m, err, errsz) == -1) {
        buf_free(&b);
        return -2;
    }
    if (strcmp(m->id, id) != 0) {
        snprintf(err, errsz, "queue id in file does not match its name");
        env_free(m);
        buf_free(&b);
        return -2;
    }
    if (content) {
        buf_reset(content);
        buf_append(content, b.p + m->body_offset, b.len - m->body_offset);
    }
    buf_free(&b);
    struct buf st;
    buf_init(&st, 0);
    file_path(path, sizeof path, sp->queue, id, ".st");
    if (read_file(path, &st) == 0) {
        if (env_status_decode(st.p ? st.p : "", st.len, m, err, errsz) == -1) {
            buf_free(&st);
            env_free(m);
            return -2;
        }
    } else if (errno != ENOENT) {
        snprintf(err, errsz, "status file: %s", strerror(errno));
        buf_free(&st);
        env_free(m);
        return -1;
    }
    buf_free(&st);
    return 0;
}

int spool_save_status(struct spool *sp, const struct env_msg *m)
{
    char tmp[4096], dst[4096];
    file_path(tmp, sizeof tmp, sp->queue, m->id, ".st.tmp");
    file_path(dst, sizeof dst, sp->queue, m->id, ".st");
    struct buf b;
    buf_init(&b, 0);
    env_status_encode(m, &b);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int r = -1;
    if (fd != -1 && fsx_write_all(fd, b.p, b.len) == 0 && fdatasync(fd) == 0 &&
        rename(tmp, dst) == 0 && fsx_dirsync(sp->queue) == 0)
        r = 0;
    int e = errno;
    if (fd != -1)
        close(fd);
    buf_free(&b);
    errno = e;
    return r;
}

int spool_remove(struct spool *sp, const char *id)
{
    char path[4096];
    file_path(path, sizeof path, sp->queue, id, ".st");
    unlink(path);
    file_path(path, sizeof path, sp->queue, id, "");
    return unlink(path);
}

void spool_quarantine(struct spool *sp, const char *id)
{
    char from[4096], to[4096];
    file_path(from, sizeof from, sp->queue, id, "");
    file_path(to, sizeof to, sp->corrupt, id, "");
    if (rename(from, to) == -1)
        log_warn("%s cannot move to corrupt/", id);
    file_path(from, sizeof from, sp->queue, id, ".st");
    file_path(to, sizeof to, sp->corrupt, id, ".st");
    (void)rename(from, to);
}

static bool id_name(const char *n)
{
    size_t i;
    for (i = 0; n[i]; i++)
        if (!((n[i] >= '0' && n[i] <= '9') || (n[i] >= 'A' && n[i] <= 'Z')))
            return false;
    return i > 0 && i < 24;
}

long spool_recover(struct spool *sp, char ***ids)
{
    DIR *d = opendir(sp->incoming);
    if (d == NULL)
        return -1;
    struct dirent *e;
    long dropped = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        file_path(path, sizeof path, sp->incoming, e->d_name, "");
        if (unlink(path) == 0)
            dropped++;
    }
    closedir(d);
    if (dropped)
        log_info("spool: removed %ld unacknowledged incoming file(s)", dropped);
    d = opendir(sp->queue);
    if (d == NULL)
        return -1;
    size_t n = 0, cap = 0;
    char **v = NULL;
    while ((e = readdir(d)) != NULL) {
        if (!id_name(e->d_name)) {
            /* leftovers of an interrupted status write */
            if (strstr(e->d_name, ".st.tmp")) {
                char path[4096];
                file_path(path, sizeof path, sp->queue, e->d_name, "");
                unlink(path);
            }
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xreallocarray(v, cap, sizeof *v);
        }
        v[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    *ids = v;
    return (long)n;
}
