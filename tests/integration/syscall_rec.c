/*
 * tests/integration/syscall_rec.c - LD_PRELOAD recorder of durability-relevant calls.
 *
 * Owns:  one log line per intercepted call of the process it is preloaded into.
 * Never: changes what a call does (but for the optional delay below); every wrapper calls
 *        the real function (RTLD_NEXT) and keeps its errno.
 * Used by: test_fsync_order.py, which compiles it with cc into the test's temp directory.
 *
 * Environment:
 *   SYSCALL_REC_LOG     the log file (appended, one write(2) per line, O_APPEND, so the
 *                       lines of concurrent threads never interleave)
 *   SYSCALL_REC_PREFIX  ':'-separated path prefixes; file operations on other paths (the
 *                       daemon's own log, /etc, ...) are not recorded
 *   SYSCALL_REC_DIRSYNC_US  microseconds a directory fsync under a prefix takes at least:
 *                       the one thing the recorder changes, so that a test on a file system
 *                       whose flushes cost nothing (tmpfs) still sees concurrent commits
 *                       arrive while a flush is running, as they do on a disk
 *
 * Every line is "BEGIN END OP ARGS...", tab-separated. BEGIN is taken from one global
 * counter just before the real call, END just after it returns, so "A happened before B"
 * is A.END < B.BEGIN whatever the threads did in between. Paths of file descriptors come
 * from /proc/self/fd. Recorded:
 *   fsync|fdatasync  path (of the file or directory), ret
 *   write|writev     to a regular file under a prefix: path, byte count, ret
 *   rename           from, to, ret (renameat/renameat2 with AT_FDCWD or absolute paths)
 *   unlink           path, ret (unlinkat likewise)
 *   reply            a socket write (write, writev, send, sendto, sendmsg) whose bytes
 *                    carry "queued as ID": one line per ID, with the fd
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *,
    socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_rename)(const char *, const char *);
static int (*real_renameat)(int, const char *, int, const char *);
static int (*real_renameat2)(int, const char *, int, const char *, unsigned);
static int (*real_unlink)(const char *);
static int (*real_unlinkat)(int, const char *, int);

static pthread_once_t rec_once = PTHREAD_ONCE_INIT;
static int rec_fd = -1;
/* Shared with any forked child, so the order stays global. */
static atomic_ulong *rec_seq;
static atomic_ulong rec_seq_local;
static char rec_prefix[4096];

static void rec_init(void)
{
    real_write = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    real_writev = (ssize_t (*)(int, const struct iovec *, int))dlsym(RTLD_NEXT, "writev");
    real_send = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
    real_sendto = (ssize_t (*)(int, const void *, size_t, int, const struct sockaddr *,
        socklen_t))dlsym(RTLD_NEXT, "sendto");
    real_sendmsg = (ssize_t (*)(int, const struct msghdr *, int))dlsym(RTLD_NEXT, "sendmsg");
    real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    real_rename = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    real_renameat = (int (*)(int, const char *, int, const char *))dlsym(RTLD_NEXT,
        "renameat");
    real_renameat2 = (int (*)(int, const char *, int, const char *, unsigned))dlsym(
        RTLD_NEXT, "renameat2");
    real_unlink = (int (*)(const char *))dlsym(RTLD_NEXT, "unlink");
    real_unlinkat = (int (*)(int, const char *, int))dlsym(RTLD_NEXT, "unlinkat");
    void *m = mmap(NULL, sizeof *rec_seq, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
        -1, 0);
    rec_seq = m == MAP_FAILED ? &rec_seq_local : m;
    const char *pre = getenv("SYSCALL_REC_PREFIX");
    if (pre != NULL && strlen(pre) < sizeof rec_prefix)
        memcpy(rec_prefix, pre, strlen(pre) + 1);
    const char *log = getenv("SYSCALL_REC_LOG");
    if (log != NULL) {
        int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        /* Far above the daemon's descriptors, so its fd numbers stay as they would be. */
        if (fd != -1) {
            rec_fd = fcntl(fd, F_DUPFD_CLOEXEC, 700);
            close(fd);
        }
    }
}

static void rec_ensure(void)
{
    (void)pthread_once(&rec_once, rec_init);
}

static unsigned long rec_tick(void)
{
    return atomic_fetch_add(rec_seq, 1) + 1;
}

static int under_prefix(const char *path)
{
    if (rec_prefix[0] == '\0')
        return 1;
    const char *p = rec_prefix;
    while (*p) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > 0 && strncmp(path, p, n) == 0)
            return 1;
        p += n;
        if (*p == ':')
            p++;
    }
    return 0;
}

__attribute__((format(printf, 1, 2)))
static void rec_line(const char *fmt, ...)
{
    if (rec_fd == -1)
        return;
    char line[9000];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    (void)real_write(rec_fd, line, (size_t)n);
}

/* What fd is: 'f' regular file, 'd' directory, 's' socket, '?' anything else. */
static char fd_kind(int fd)
{
    struct stat st;
    if (fd == rec_fd || fstat(fd, &st) == -1)
        return '?';
    return S_ISSOCK(st.st_mode) ? 's' : S_ISREG(st.st_mode) ? 'f' : S_ISDIR(st.st_mode) ?
        'd' : '?';
}

/* The path behind fd ("" if unknown), from /proc/self/fd. */
static void fd_path(int fd, char *path, size_t psz)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, psz - 1);
    path[n > 0 ? n : 0] = '\0';
}

/* Find every "queued as ID" in a socket write and log it. */
static void scan_reply(unsigned long b, int fd, const char *p, size_t n)
{
    static const char key[] = "queued as ";
    const size_t klen = sizeof key - 1;
    for (size_t i = 0; i + klen < n; i++) {
        if (memcmp(p + i, key, klen) != 0)
            continue;
        size_t j = i + klen, k = 0;
        char id[32];
        while (j < n && k < sizeof id - 1 &&
            ((p[j] >= '0' && p[j] <= '9') || (p[j] >= 'A' && p[j] <= 'Z')))
            id[k++] = p[j++];
        id[k] = '\0';
        if (k > 0)
            rec_line("%lu\t0\treply\t%d\t%s", b, fd, id);
        i = j - 1;
    }
}

static void scan_iov(unsigned long b, int fd, const struct iovec *iov, int cnt)
{
    /* Replies are short: join the pieces so a split "queued as" is still found. */
    char tmp[65536];
    size_t len = 0;
    for (int i = 0; i < cnt && len < sizeof tmp; i++) {
        size_t n = iov[i].iov_len;
        if (n > sizeof tmp - len)
            n = sizeof tmp - len;
        memcpy(tmp + len, iov[i].iov_base, n);
        len += n;
    }
    scan_reply(b, fd, tmp, len);
}

static void file_write(unsigned long b, int fd, size_t n, ssize_t r, unsigned long e)
{
    char path[4096];
    fd_path(fd, path, sizeof path);
    if (under_prefix(path))
        rec_line("%lu\t%lu\twrite\t%s\t%zu\t%zd", b, e, path, n, r);
}

ssize_t write(int fd, const void *p, size_t n)
{
    rec_ensure();
    if (fd == rec_fd)
        return real_write(fd, p, n);
    char kind = fd_kind(fd);
    unsigned long b = rec_tick();
    if (kind == 's')
        scan_reply(b, fd, p, n);
    ssize_t r = real_write(fd, p, n);
    int e = errno;
    if (kind == 'f')
        file_write(b, fd, n, r, rec_tick());
    errno = e;
    return r;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    rec_ensure();
    char kind = fd_kind(fd);
    unsigned long b = rec_tick();
    if (kind == 's')
        scan_iov(b, fd, iov, cnt);
    ssize_t r = real_writev(fd, iov, cnt);
    int e = errno;
    if (kind == 'f') {
        size_t n = 0;
        for (int i = 0; i < cnt; i++)
            n += iov[i].iov_len;
        file_write(b, fd, n, r, rec_tick());
    }
    errno = e;
    return r;
}

ssize_t send(int fd, const void *p, size_t n, int flags)
{
    rec_ensure();
    scan_reply(rec_tick(), fd, p, n);
    return real_send(fd, p, n, flags);
}

ssize_t sendto(int fd, const void *p, size_t n, int flags, const struct sockaddr *a,
    socklen_t alen)
{
    rec_ensure();
    scan_reply(rec_tick(), fd, p, n);
    return real_sendto(fd, p, n, flags, a, alen);
}

ssize_t sendmsg(int fd, const struct msghdr *m, int flags)
{
    rec_ensure();
    scan_iov(rec_tick(), fd, m->msg_iov, (int)m->msg_iovlen);
    return real_sendmsg(fd, m, flags);
}

static int sync_common(int fd, int (*fn)(int), const char *name)
{
    rec_ensure();
    char path[4096];
    fd_path(fd, path, sizeof path);
    unsigned long b = rec_tick();
    const char *slow = getenv("SYSCALL_REC_DIRSYNC_US");
    struct stat st;
    if (slow && under_prefix(path) && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        usleep((useconds_t)atoi(slow));
    int r = fn(fd);
    int e = errno;
    unsigned long end = rec_tick();
    if (under_prefix(path))
        rec_line("%lu\t%lu\t%s\t%s\t%d", b, end, name, path, r);
    errno = e;
    return r;
}

int fsync(int fd)
{
    rec_ensure();
    return sync_common(fd, real_fsync, "fsync");
}

int fdatasync(int fd)
{
    rec_ensure();
    return sync_common(fd, real_fdatasync, "fdatasync");
}

static void log_rename(unsigned long b, unsigned long e, const char *from, const char *to,
    int r)
{
    if (under_prefix(from) || under_prefix(to))
        rec_line("%lu\t%lu\trename\t%s\t%s\t%d", b, e, from, to, r);
}

int rename(const char *from, const char *to)
{
    rec_ensure();
    unsigned long b = rec_tick();
    int r = real_rename(from, to);
    int e = errno;
    log_rename(b, rec_tick(), from, to, r);
    errno = e;
    return r;
}

int renameat(int fd1, const char *from, int fd2, const char *to)
{
    rec_ensure();
    unsigned long b = rec_tick();
    int r = real_renameat(fd1, from, fd2, to);
    int e = errno;
    log_rename(b, rec_tick(), from, to, r);
    errno = e;
    return r;
}

int renameat2(int fd1, const char *from, int fd2, const char *to, unsigned flags)
{
    rec_ensure();
    unsigned long b = rec_tick();
    int r = real_renameat2(fd1, from, fd2, to, flags);
    int e = errno;
    log_rename(b, rec_tick(), from, to, r);
    errno = e;
    return r;
}

static void log_unlink(unsigned long b, unsigned long e, const char *path, int r)
{
    if (under_prefix(path))
        rec_line("%lu\t%lu\tunlink\t%s\t%d", b, e, path, r);
}

int unlink(const char *path)
{
    rec_ensure();
    unsigned long b = rec_tick();
    int r = real_unlink(path);
    int e = errno;
    log_unlink(b, rec_tick(), path, r);
    errno = e;
    return r;
}

int unlinkat(int fd, const char *path, int flags)
{
    rec_ensure();
    unsigned long b = rec_tick();
    int r = real_unlinkat(fd, path, flags);
    int e = errno;
    log_unlink(b, rec_tick(), path, r);
    errno = e;
    return r;
}
