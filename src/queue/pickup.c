/*
 * queue/pickup.c - the drop directory.
 */
#include "queue/pickup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "deliver/local.h"
#include "queue/spool.h"
#include "smtp/parse.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/str.h"
#include "util/xmalloc.h"

/* A dropped message may be as large as one received over SMTP, plus its envelope. */
#define PICKUP_ENV_MAX (1024 * 1024)

int pickup_init(const struct spool *sp)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/maildrop", sp->dir);
    if (mkdir(path, 01733) == -1 && errno != EEXIST) {
        log_warn("cannot create %s", path);
        return -1;
    }
    if (chmod(path, 01733) == -1)
        log_warn("cannot set the mode of %s", path);
    return 0;
}

static bool path_ok(const char *addr, bool reverse, bool utf8)
{
    char p[SMTP_PATH_MAX * 2 + 4];
    if (snprintf(p, sizeof p, "<%s>", addr) >= (int)sizeof p)
        return false;
    struct smtp_path sp;
    size_t end;
    return smtp_parse_path(p, strlen(p), reverse, utf8, &sp, &end) == SMTP_PERR_OK &&
        end == strlen(p);
}

static int read_all(int fd, struct buf *b)
{
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1)
            return -1;
        if (r == 0)
            return 0;
        if (buf_append(b, chunk, (size_t)r) == -1) {
            errno = EFBIG;
            return -1;
        }
    }
}

/* Read, check and queue one dropped file. Returns 0 (queued), -1 (keep, retry), -2 (bad). */
static int pick_one(const struct conf *c, struct spool *sp, const char *path,
    struct env_msg *out)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd == -1)
        return errno == ENOENT ? -1 : -2;
    struct stat st;
    if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
        close(fd);
        return -2;
    }
    struct buf b;
    buf_init(&b, (size_t)(c->message_size_limit ? c->message_size_limit : 1ULL << 30) +
        PICKUP_ENV_MAX);
    int r = read_all(fd, &b);
    close(fd);
    if (r == -1) {
        buf_free(&b);
        return errno == EFBIG ? -2 : -1;
    }
    struct env_msg m;
    char err[200];
    if (env_decode(b.p ? b.p : "", b.len, &m, err, sizeof err) == -1) {
        log_warnx("maildrop: %s: %s", path, err);
        buf_free(&b);
        return -2;
    }
    bool ok = m.sender[0] == '\0' || path_ok(m.sender, true, m.smtputf8);
    for (size_t i = 0; ok && i < m.nrcpt; i++)
        ok = path_ok(m.rcpts[i].addr, false, m.smtputf8) ||
            strcasecmp(m.rcpts[i].addr, "postmaster") == 0;
    if (!ok || m.nrcpt > c->max_recipients) {
        log_warnx("maildrop: %s: bad address or too many recipients", path);
        env_free(&m);
        buf_free(&b);
        return -2;
    }
    /* The sender's uid is the file's owner, whatever the envelope says. */
    char user[96];
    snprintf(user, sizeof user, "uid %u (maildrop)", (unsigned)st.st_uid);
    free(m.user);
    m.user = xstrdup(user);
    free(m.client);
    m.client = xstrdup("127.0.0.1");
    for (size_t i = 0; i < m.nrcpt; i++)
        m.rcpts[i].local = local_addr_is_local(c, m.rcpts[i].addr);
    time_t now = time(NULL);
    m.arrival = now;
    struct buf msg;
    buf_init(&msg, 0);
    char date[64];
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    char newid[24];
    spool_new_id(newid, sizeof newid);
    buf_printf(&msg, "Received: by %s (postel, from %s)\n\tid %s; %s\n", c->hostname, user,
        newid, date);
    buf_append(&msg, b.p + m.body_offset, b.len - m.body_offset);
    buf_free(&b);
    if (spool_inject(sp, &m, msg.p, msg.len) == -1) {
        log_warn("maildrop: cannot queue %s", path);
        env_free(&m);
        buf_free(&msg);
        return -1;
    }
    m.size = msg.len;
    buf_free(&msg);
    *out = m;
    return 0;
}

size_t pickup_scan(const struct conf *c, struct spool *sp, struct env_msg **out)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/maildrop", sp->dir);
    DIR *d = opendir(dir);
    *out = NULL;
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;       /* "." "..", and files still being written (".tmp...") */
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct env_msg m;
        int r = pick_one(c, sp, path, &m);
        if (r == 0) {
            log_info("%s received from=<%s> size=%llu nrcpt=%zu user=%s", m.id,
                m.sender, m.size, m.nrcpt, m.user);
            *out = xreallocarray(*out, n + 1, sizeof **out);
            (*out)[n++] = m;
            unlink(path);
        } else if (r == -2) {
            char to[4400];
            snprintf(to, sizeof to, "%s/maildrop.%s", sp->corrupt, e->d_name);
            if (rename(path, to) == -1)
                unlink(path);
        }
    }
    closedir(d);
    return n;
}
