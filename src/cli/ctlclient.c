/*
 * cli/ctlclient.c - control socket client: connect, one request, read lines.
 *
 * Owns:  see ctlclient.h.
 * Never: interprets data lines.
 * Limits: CTL_LINE_MAX.
 */
#include "cli/ctlclient.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/str.h"

int ctl_open(struct ctl *c, const char *path)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    buf_init(&c->in, CTL_LINE_MAX + 2);
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (str_copy(sa.sun_path, sizeof sa.sun_path, path) == -1) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == -1) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    c->fd = fd;
    return 0;
}

int ctl_write(struct ctl *c, const void *p, size_t n)
{
    /* MSG_NOSIGNAL: a daemon that went away is an error to report, not a SIGPIPE. */
    const char *q = p;
    while (n > 0) {
        ssize_t w = send(c->fd, q, n, MSG_NOSIGNAL);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        q += w;
        n -= (size_t)w;
    }
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ctl_readline(struct ctl *c, char **line, size_t *len, int timeout_ms)
{
    buf_consume(&c->in, c->taken);
    c->taken = 0;
    long long deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    size_t scanned = 0;
    for (;;) {
        char *lf = c->in.len > scanned ? memchr(c->in.p + scanned, '\n', c->in.len - scanned)
            : NULL;
        if (lf || (c->eof && c->in.len > 0)) {
            /* A last line without LF needs room for its terminator. */
            if (!lf && buf_cstr(&c->in) == NULL) {
                errno = EMSGSIZE;
                return -1;
            }
            size_t n = lf ? (size_t)(lf - c->in.p) : c->in.len;
            c->taken = lf ? n + 1 : n;
            if (n > 0 && c->in.p[n - 1] == '\r')
                n--;
            c->in.p[n] = '\0';
            *line = c->in.p;
            *len = n;
            return 1;
        }
        if (c->eof)
            return 0;
        scanned = c->in.len;
        if (c->in.len > CTL_LINE_MAX) {
            errno = EMSGSIZE;
            return -1;
        }
        int wait = -1;
        if (deadline >= 0) {
            long long left = deadline - now_ms();
            if (left <= 0) {
                errno = ETIMEDOUT;
                return -1;
            }
            wait = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd pfd = { c->fd, POLLIN, 0 };
        int pr = poll(&pfd, 1, wait);
        if (pr == -1) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (pr == 0)
            continue;
        if (buf_reserve(&c->in, 65536) == -1 && buf_reserve(&c->in, 1) == -1) {
            errno = EMSGSIZE;
            return -1;
        }
        size_t room = c->in.cap - c->in.len;
        if (c->in.max && room > c->in.max - c->in.len)
            room = c->in.max - c->in.len;
        ssize_t r = read(c->fd, c->in.p + c->in.len, room);
        if (r == -1) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            if (errno == ECONNRESET) {
                c->eof = true;
                continue;
            }
            return -1;
        }
        if (r == 0)
            c->eof = true;
        c->in.len += (size_t)r;
    }
}

void ctl_close(struct ctl *c)
{
    if (c->fd != -1)
        close(c->fd);
    c->fd = -1;
    buf_free(&c->in);
}

enum ctl_final ctl_classify(const char *line, const char **text)
{
    if (strcmp(line, "OK") == 0 || strcmp(line, "ERR") == 0) {
        *text = "";
        return line[0] == 'O' ? CTL_OK : CTL_ERR;
    }
    if (strncmp(line, "OK ", 3) == 0) {
        *text = line + 3;
        return CTL_OK;
    }
    if (strncmp(line, "ERR ", 4) == 0) {
        *text = line + 4;
        return CTL_ERR;
    }
    *text = line;
    return CTL_DATA;
}

int ctl_request(const char *path, const char *line, int timeout_ms,
    int (*fn)(void *arg, const char *line, size_t len), void *arg, char *final,
    size_t finalsz)
{
    struct ctl c;
    final[0] = '\0';
    if (ctl_open(&c, path) == -1) {
        int e = errno;
        snprintf(final, finalsz, "cannot connect to posteld at %s: %s", path, strerror(e));
        ctl_close(&c);
        errno = e;
        return -1;
    }
    int rc = -1;
    if (ctl_write(&c, line, strlen(line)) == -1 || ctl_write(&c, "\n", 1) == -1) {
        snprintf(final, finalsz, "cannot send to posteld at %s: %s", path, strerror(errno));
        goto out;
    }
    for (;;) {
        char *l;
        size_t n;
        int r = ctl_readline(&c, &l, &n, timeout_ms);
        if (r <= 0) {
            snprintf(final, finalsz, "posteld at %s: %s", path,
                r == 0 ? "connection closed before the answer ended" :
                errno == ETIMEDOUT ? "no answer in time" : strerror(errno));
            goto out;
        }
        const char *text;
        enum ctl_final k = ctl_classify(l, &text);
        if (k == CTL_DATA) {
            if (fn && fn(arg, l, n) == -1)
                goto out;
            continue;
        }
        snprintf(final, finalsz, "%s", text);
        rc = k == CTL_OK ? 0 : 1;
        break;
    }
out:
    ctl_close(&c);
    return rc;
}
