/*
 * deliver/mbox.c - delivery into a Unix mbox file.
 *
 * Owns:  the dotlock and fcntl lock, the "From " line, ">From " quoting, the rollback of a
 *        failed append, the safety checks on the file.
 * Never: changes the caller's uid, resolves users, or decides where the mailbox is.
 */
#include "deliver/mbox.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/fsx.h"

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Run fn with the effective gid lock_gid (when it is not -1), then the old one again. */
static int as_lock_group(gid_t lock_gid, int (*fn)(const char *), const char *path)
{
    gid_t old = getegid();
    if (lock_gid != (gid_t)-1 && lock_gid != old && setegid(lock_gid) == -1)
        return -1;
    int r = fn(path);
    int e = errno;
    if (lock_gid != (gid_t)-1 && lock_gid != old && setegid(old) == -1)
        r = -1;
    errno = e;
    return r;
}

static int make_lockfile(const char *lock)
{
    int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd == -1)
        return -1;
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    (void)fsx_write_all(fd, pid, (size_t)n);
    return close(fd);
}

static int remove_lockfile(const char *lock)
{
    return unlink(lock);
}

/* Try try_lock(arg) until it succeeds, fails for another reason than "held", or
 * MBOX_LOCK_WAIT s pass (then errno EAGAIN); waits grow from 10 ms to 0.5 s. */
static int patiently(int (*try_lock)(void *), void *arg)
{
    time_t deadline = time(NULL) + MBOX_LOCK_WAIT;
    long wait = 10;
    for (;;) {
        int r = try_lock(arg);
        if (r <= 0)
            return r;           /* 0: taken; -1: failed (errno) */
        if (time(NULL) >= deadline) {
            errno = EAGAIN;
            return -1;
        }
        sleep_ms(wait);
        if (wait < 500)
            wait *= 2;
    }
}

struct dot { const char *lock; gid_t gid; };

/* One try at the dotlock: 0 taken, 1 held by another (a stale one, older than
 * MBOX_LOCK_STALE s, is removed for the next try), -1 failed. */
static int try_dotlock(void *arg)
{
    const struct dot *d = arg;
    if (as_lock_group(d->gid, make_lockfile, d->lock) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    struct stat st;
    if (lstat(d->lock, &st) == 0 && time(NULL) - st.st_mtime > MBOX_LOCK_STALE)
        (void)as_lock_group(d->gid, remove_lockfile, d->lock);
    return 1;
}

/* One try at the fcntl lock on the whole file: 0, 1 (held), -1. */
static int try_fcntl(void *arg)
{
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0 };
    if (fcntl(*(const int *)arg, F_SETLK, &fl) == 0)
        return 0;
    return errno == EACCES || errno == EAGAIN || errno == EINTR ? 1 : -1;
}

/* Append text (LF line ends) to b, quoting lines that begin with "From " (mboxo). bol: the
 * text starts at the beginning of a line. Returns whether it ended at a line's end. */
static bool put_quoted(struct buf *b, const char *p, size_t n, bool bol)
{
    size_t i = 0;
    while (i < n) {
        if (bol && n - i >= 5 && memcmp(p + i, "From ", 5) == 0)
            buf_append(b, ">", 1);
        const char *lf = memchr(p + i, '\n', n - i);
        size_t end = lf ? (size_t)(lf - p) + 1 : n;
        buf_append(b, p + i, end - i);
        bol = lf != NULL;
        i = end;
    }
    return bol;
}

/* The "From " line: sender and date in asctime's form, in UTC. */
static void from_line(struct buf *b, const char *sender, time_t arrival)
{
    struct tm tm;
    char date[64];
    gmtime_r(&arrival, &tm);
    strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
    const char *s = sender[0] ? sender : "MAILER-DAEMON";
    buf_puts(b, "From ");
    /* the sender is one word on this line: blanks and controls would break it */
    for (; *s; s++)
        buf_append(b, (unsigned char)*s <= ' ' || *s == 0x7f ? "_" : s, 1);
    buf_printf(b, " %s\n", date);
}

enum mbox_result mbox_deliver(const char *path, const char *sender, time_t arrival,
    const char *prefix, size_t plen, const char *content, size_t clen, gid_t lock_gid,
    char *err, size_t errsz)
{
    char lock[4096];
    if (snprintf(lock, sizeof lock, "%s.lock", path) >= (int)sizeof lock) {
        snprintf(err, errsz, "mailbox path too long");
        return MBOX_UNSAFE;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK |
        O_CLOEXEC, 0600);
    if (fd == -1) {
        int e = errno;
        snprintf(err, errsz, "cannot open mailbox %s: %s", path,
            e == ELOOP ? "it is a symbolic link" : strerror(e));
        return e == ELOOP || e == EISDIR ? MBOX_UNSAFE : MBOX_TEMP;
    }
    struct stat st;
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode) || st.st_nlink != 1 ||
        st.st_uid != geteuid()) {
        snprintf(err, errsz, "mailbox %s is not safe: %s", path,
            !S_ISREG(st.st_mode) ? "not a regular file" : st.st_nlink != 1 ?
            "it has more than one link" : "it belongs to another user");
        close(fd);
        return MBOX_UNSAFE;
    }
    struct dot dl = { lock, lock_gid };
    if (patiently(try_dotlock, &dl) == -1) {
        snprintf(err, errsz, "cannot lock %s: %s", lock,
            errno == EAGAIN ? "locked for too long" : strerror(errno));
        close(fd);
        return MBOX_TEMP;
    }
    enum mbox_result res = MBOX_TEMP;
    if (patiently(try_fcntl, &fd) == -1) {
        snprintf(err, errsz, "cannot lock %s: %s", path,
            errno == EAGAIN ? "locked for too long" : strerror(errno));
        goto unlock;
    }
    /* the size under the lock: what a failed append is cut back to */
    if (fstat(fd, &st) == -1) {
        snprintf(err, errsz, "cannot stat %s: %s", path, strerror(errno));
        goto unlock;
    }
    struct buf b;
    buf_init(&b, 0);
    /* a mailbox whose last message lacks its blank line still gets one before ours */
    if (st.st_size > 0) {
        char tail[2] = { 0, 0 };
        int rfd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (rfd != -1) {
            off_t at = st.st_size >= 2 ? st.st_size - 2 : 0;
            ssize_t got = pread(rfd, tail, 2, at);
            close(rfd);
            if (got > 0 && tail[got - 1] != '\n')
                buf_puts(&b, "\n\n");
            else if (got == 2 && tail[0] != '\n')
                buf_puts(&b, "\n");
        }
    }
    from_line(&b, sender, arrival);
    bool bol = put_quoted(&b, prefix, plen, true);
    bol = put_quoted(&b, content, clen, bol);
    buf_puts(&b, bol ? "\n" : "\n\n");
    if (fsx_write_all(fd, b.p, b.len) == -1 || fsync(fd) == -1) {
        int e = errno;
        /* never leave half a message: back to the size before this one */
        if (ftruncate(fd, st.st_size) == -1 || fsync(fd) == -1)
            snprintf(err, errsz, "cannot write %s: %s; and it could not be cut back to %lld "
                "octets", path, strerror(e), (long long)st.st_size);
        else
            snprintf(err, errsz, "cannot write %s: %s", path, strerror(e));
    } else {
        res = MBOX_OK;
    }
    buf_free(&b);
unlock:
    close(fd);      /* releases the fcntl lock */
    /* a lock that cannot be removed goes stale and is removed by a later delivery */
    (void)as_lock_group(lock_gid, remove_lockfile, lock);
    return res;
}
