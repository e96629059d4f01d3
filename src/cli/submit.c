/*
 * cli/submit.c - submission to posteld over the control socket, or into the drop directory.
 *
 * Owns:  see submit.h.
 * Never: changes the message text.
 * Limits: submit.h (SUBMIT_TIMEOUT, SUBMIT_TIMEOUT_DOT), ctlclient.h (CTL_LINE_MAX).
 */
#include "cli/submit.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli/ctlclient.h"
#include "cli/msgtext.h"
#include "conf/conf.h"
#include "deliver/local.h"
#include "queue/envelope.h"
#include "queue/spool.h"
#include "smtp/parse.h"
#include "util/buf.h"
#include "util/fsx.h"
#include "util/str.h"

struct reply {
    int code;
    char enh[16];
    char text[1024];            /* the last line, as sent */
};

int submit_status_for(int code, const char *enh, char stage)
{
    if (code >= 400 && code < 500)
        return EX_TEMPFAIL;
    if (strncmp(enh, "5.7.", 4) == 0)
        return EX_NOPERM;
    switch (stage) {
    case 'R': return EX_NOUSER;
    case 'M':
    case 'D': return EX_DATAERR;
    default: return EX_PROTOCOL;
    }
}

static bool digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Read one reply (all its lines). Returns 0, or -1 with why (EOF, timeout, not SMTP). */
static int read_reply(struct ctl *c, int timeout_s, struct reply *rp, char *why, size_t wsz)
{
    for (;;) {
        char *l;
        size_t n;
        int r = ctl_readline(c, &l, &n, timeout_s * 1000);
        if (r <= 0) {
            snprintf(why, wsz, "%s", r == 0 ? "posteld closed the connection" :
                errno == ETIMEDOUT ? "posteld did not answer in time" : strerror(errno));
            return -1;
        }
        if (n < 3 || !digit(l[0]) || !digit(l[1]) || !digit(l[2]) ||
            (n > 3 && l[3] != ' ' && l[3] != '-')) {
            snprintf(why, wsz, "unexpected answer from posteld: %.900s", l);
            return -1;
        }
        if (n > 3 && l[3] == '-')
            continue;
        rp->code = (l[0] - '0') * 100 + (l[1] - '0') * 10 + (l[2] - '0');
        str_copy(rp->text, sizeof rp->text, l);
        rp->enh[0] = '\0';
        const char *e = n > 4 ? l + 4 : "";
        size_t k = 0;
        while (e[k] && e[k] != ' ' && k + 1 < sizeof rp->enh) {
            rp->enh[k] = e[k];
            k++;
        }
        rp->enh[k] = '\0';
        if (!(digit(rp->enh[0]) && rp->enh[1] == '.'))
            rp->enh[0] = '\0';
        return 0;
    }
}

static int send_line(struct ctl *c, const char *s)
{
    return ctl_write(c, s, strlen(s)) == -1 || ctl_write(c, "\r\n", 2) == -1 ? -1 : 0;
}

/* Send a command and read its reply. Returns 0 or -1 (why filled). */
static int command(struct ctl *c, const char *cmd, int timeout_s, struct reply *rp, char *why,
    size_t wsz)
{
    if (send_line(c, cmd) == -1) {
        snprintf(why, wsz, "cannot send to posteld: %s", strerror(errno));
        return -1;
    }
    return read_reply(c, timeout_s, rp, why, wsz);
}

/* The message as DATA content: CRLF, dot-stuffed, the final dot. */
static int send_data(struct ctl *c, const char *text, size_t len)
{
    struct buf b;
    buf_init(&b, 0);
    int r = msgtext_smtp_data(text, len, &b);
    if (r == 0)
        r = ctl_write(c, b.p, b.len);
    buf_free(&b);
    return r;
}

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

static void notify_text(unsigned bits, struct buf *b)
{
    if (bits & SMTP_NOTIFY_NEVER) {
        (void)buf_puts(b, " NOTIFY=NEVER");
        return;
    }
    const char *sep = " NOTIFY=";
    if (bits & SMTP_NOTIFY_SUCCESS) {
        (void)buf_printf(b, "%sSUCCESS", sep);
        sep = ",";
    }
    if (bits & SMTP_NOTIFY_FAILURE) {
        (void)buf_printf(b, "%sFAILURE", sep);
        sep = ",";
    }
    if (bits & SMTP_NOTIFY_DELAY)
        (void)buf_printf(b, "%sDELAY", sep);
}

/* The CRLF size of an LF text: each LF becomes two octets. */
static unsigned long long crlf_size(const char *t, size_t n)
{
    unsigned long long s = n;
    for (const char *p = t; (p = memchr(p, '\n', n - (size_t)(p - t))) != NULL; p++)
        s++;
    return s;
}

static void quit(struct ctl *c)
{
    struct reply rp;
    char why[200];
    (void)command(c, "QUIT", 10, &rp, why, sizeof why);
}

int submit_smtp(const char *path, const struct submit_msg *m, FILE *err,
    struct submit_result *res)
{
    memset(res, 0, sizeof *res);
    struct ctl c;
    if (ctl_open(&c, path) == -1) {
        int e = errno;
        ctl_close(&c);
        snprintf(res->why, sizeof res->why, "cannot connect to posteld at %s: %s", path,
            strerror(e));
        res->no_daemon = e == ENOENT || e == ECONNREFUSED || e == ENOTDIR;
        res->status = e == EACCES || e == EPERM ? EX_NOPERM : EX_UNAVAILABLE;
        return res->status;
    }
    struct reply rp;
    struct buf cmd;
    buf_init(&cmd, 0);
    res->status = EX_PROTOCOL;
    if (ctl_write(&c, m->trace_hold ? "SMTP TRACE\n" : "SMTP\n",
            m->trace_hold ? 11 : 5) == -1 ||
        read_reply(&c, SUBMIT_TIMEOUT, &rp, res->why, sizeof res->why) == -1) {
        /* A daemon on its way out: the drop directory will do. */
        res->no_daemon = strncmp(res->why, "unexpected", 10) != 0;
        res->status = EX_UNAVAILABLE;
        goto out;
    }
    if (rp.code != 220) {
        snprintf(res->why, sizeof res->why, "posteld refused the submission: %s", rp.text);
        res->no_daemon = rp.code == 421;
        res->status = rp.code / 100 == 4 ? EX_TEMPFAIL : EX_UNAVAILABLE;
        goto out;
    }
    (void)buf_printf(&cmd, "EHLO %s", m->helo);
    if (command(&c, buf_cstr(&cmd), SUBMIT_TIMEOUT, &rp, res->why, sizeof res->why) == -1)
        goto fail_io;
    if (rp.code != 250) {
        snprintf(res->why, sizeof res->why, "EHLO refused: %s", rp.text);
        res->status = submit_status_for(rp.code, rp.enh, 'O');
        goto out_quit;
    }
    bool utf8 = m->smtputf8 || !is_ascii(m->sender);
    for (size_t i = 0; i < m->nrcpt; i++)
        utf8 = utf8 || !is_ascii(m->rcpts[i]);
    buf_reset(&cmd);
    (void)buf_printf(&cmd, "MAIL FROM:<%s> SIZE=%llu", m->sender, crlf_size(m->text, m->len));
    if (m->body == SMTP_BODY_8BITMIME)
        (void)buf_puts(&cmd, " BODY=8BITMIME");
    else if (m->body == SMTP_BODY_7BIT)
        (void)buf_puts(&cmd, " BODY=7BIT");
    if (utf8)
        (void)buf_puts(&cmd, " SMTPUTF8");
    if (m->ret == SMTP_RET_FULL || m->ret == SMTP_RET_HDRS)
        (void)buf_puts(&cmd, m->ret == SMTP_RET_FULL ? " RET=FULL" : " RET=HDRS");
    if (m->envid) {
        (void)buf_puts(&cmd, " ENVID=");
        (void)smtp_xtext_encode(m->envid, strlen(m->envid), &cmd);
    }
    if (command(&c, buf_cstr(&cmd), SUBMIT_TIMEOUT, &rp, res->why, sizeof res->why) == -1)
        goto fail_io;
    if (rp.code / 100 != 2) {
        snprintf(res->why, sizeof res->why, "sender <%s> refused: %s", m->sender, rp.text);
        res->status = submit_status_for(rp.code, rp.enh, 'M');
        goto out_quit;
    }
    int refused = EX_OK;
    for (size_t i = 0; i < m->nrcpt; i++) {
        buf_reset(&cmd);
        (void)buf_printf(&cmd, "RCPT TO:<%s>", m->rcpts[i]);
        if (m->notify)
            notify_text(m->notify, &cmd);
        if (command(&c, buf_cstr(&cmd), SUBMIT_TIMEOUT, &rp, res->why, sizeof res->why) == -1)
            goto fail_io;
        if (rp.code / 100 == 2) {
            res->accepted++;
            continue;
        }
        fprintf(err, "%s... %s\n", m->rcpts[i], rp.text);
        if (rp.code / 100 == 4) {
            snprintf(res->why, sizeof res->why, "recipient <%s> deferred: %s; message not sent",
                m->rcpts[i], rp.text);
            res->status = EX_TEMPFAIL;
            goto out_quit;
        }
        if (refused == EX_OK || refused == EX_NOUSER)
            refused = submit_status_for(rp.code, rp.enh, 'R');
    }
    if (res->accepted == 0) {
        snprintf(res->why, sizeof res->why, "no recipient was accepted");
        res->status = refused;
        goto out_quit;
    }
    if (command(&c, "DATA", SUBMIT_TIMEOUT, &rp, res->why, sizeof res->why) == -1)
        goto fail_io;
    if (rp.code != 354) {
        snprintf(res->why, sizeof res->why, "DATA refused: %s", rp.text);
        res->status = submit_status_for(rp.code, rp.enh, 'D');
        goto out_quit;
    }
    if (send_data(&c, m->text, m->len) == -1) {
        snprintf(res->why, sizeof res->why, "cannot send the message to posteld: %s",
            strerror(errno));
        res->status = EX_TEMPFAIL;
        goto out;
    }
    if (read_reply(&c, SUBMIT_TIMEOUT_DOT, &rp, res->why, sizeof res->why) == -1)
        goto fail_io;
    if (rp.code / 100 != 2) {
        snprintf(res->why, sizeof res->why, "message refused: %s", rp.text);
        res->status = submit_status_for(rp.code, rp.enh, 'D');
        goto out_quit;
    }
    const char *q = strstr(rp.text, "queued as ");
    if (q) {
        q += 10;
        size_t k = 0;
        while (k + 1 < sizeof res->id && ((q[k] >= '0' && q[k] <= '9') ||
                (q[k] >= 'A' && q[k] <= 'Z') || (q[k] >= 'a' && q[k] <= 'z')))
            k++;
        str_ncopy(res->id, sizeof res->id, q, k);
    }
    res->status = refused;
    if (refused != EX_OK)
        snprintf(res->why, sizeof res->why, "some recipients were refused; the message went "
            "to the other %zu", res->accepted);
out_quit:
    quit(&c);
    goto out;
fail_io:
    /* The message was not acknowledged: the caller may try again later. */
    res->status = EX_TEMPFAIL;
out:
    buf_free(&cmd);
    ctl_close(&c);
    return res->status;
}

/* A random 32-bit number for a temporary file name. */
static unsigned rand32(void)
{
    unsigned v;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v)
        v = (unsigned)time(NULL) ^ (unsigned)getpid() << 16;
    return v;
}

static int write_file(int fd, const struct buf *head, const struct submit_msg *m)
{
    if (fsx_write_all(fd, head->p, head->len) == -1 || fsx_write_all(fd, m->text, m->len) == -1)
        return -1;
    return fsync(fd);
}

int submit_maildrop(const struct conf *c, const struct submit_msg *m,
    struct submit_result *res)
{
    memset(res, 0, sizeof *res);
    char dir[4096];
    if (snprintf(dir, sizeof dir, "%s/maildrop", c->spool_dir) >= (int)sizeof dir) {
        snprintf(res->why, sizeof res->why, "spool_dir too long");
        return res->status = EX_CONFIG;
    }
    if (mkdir(dir, 01733) == 0) {
        (void)chmod(dir, 01733);        /* the mode posteld gives it: drop, but not list */
    } else if (errno == ENOENT) {
        if (fsx_mkdirs(c->spool_dir, 0700) == 0 && mkdir(dir, 01733) == 0)
            (void)chmod(dir, 01733);
    }
    struct env_msg env;
    memset(&env, 0, sizeof env);
    spool_new_id(env.id, sizeof env.id);
    env.arrival = time(NULL);
    env.sender = (char *)m->sender;
    env.envid = (char *)m->envid;
    env.ret = m->ret;
    env.body = m->body;
    env.smtputf8 = m->smtputf8;
    env.helo = (char *)m->helo;
    char user[96];
    struct passwd *pw = getpwuid(getuid());
    snprintf(user, sizeof user, "%.60s (uid %u)", pw ? pw->pw_name : "?", (unsigned)getuid());
    env.user = user;
    for (size_t i = 0; i < m->nrcpt; i++) {
        env.rcpts = realloc(env.rcpts, (i + 1) * sizeof *env.rcpts);
        if (env.rcpts == NULL)
            abort();
        memset(&env.rcpts[i], 0, sizeof env.rcpts[i]);
        env.rcpts[i].addr = (char *)m->rcpts[i];
        env.rcpts[i].local = local_addr_is_local(c, m->rcpts[i]);
        env.rcpts[i].notify = m->notify;
        env.nrcpt = i + 1;
    }
    struct buf head;
    buf_init(&head, 0);
    int enc = env_encode(&env, &head);
    free(env.rcpts);
    if (enc == -1) {
        buf_free(&head);
        snprintf(res->why, sizeof res->why, "cannot encode the envelope");
        return res->status = EX_SOFTWARE;
    }
    char tmp[4200], final[4200];
    int fd = -1;
    for (int tries = 0; fd == -1 && tries < 5; tries++) {
        snprintf(tmp, sizeof tmp, "%s/.tmp.%ld.%08x", dir, (long)getpid(), rand32());
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd == -1 && errno != EEXIST)
            break;
    }
    /* The daemon may run as its own user: it must be able to read the file. The drop
     * directory (mode 1733) cannot be listed, so other users cannot find it. */
    if (fd != -1 && fchmod(fd, 0644) == -1) {
        close(fd);
        unlink(tmp);
        fd = -1;
    }
    if (fd == -1) {
        int e = errno;
        snprintf(res->why, sizeof res->why, "cannot create a file in %s: %s", dir,
            strerror(e));
        buf_free(&head);
        return res->status = e == ENOSPC || e == EDQUOT || e == EIO ? EX_TEMPFAIL :
            EX_CANTCREAT;
    }
    snprintf(final, sizeof final, "%s/%s", dir, env.id);
    int r = write_file(fd, &head, m);
    int e = errno;
    buf_free(&head);
    if (close(fd) == -1 && r == 0) {
        r = -1;
        e = errno;
    }
    if (r == 0 && rename(tmp, final) == -1) {
        r = -1;
        e = errno;
    }
    if (r == -1) {
        unlink(tmp);
        snprintf(res->why, sizeof res->why, "cannot write %s: %s", tmp, strerror(e));
        return res->status = EX_TEMPFAIL;
    }
    /* Make the rename durable; the directory may not be readable by us (mode 1733). */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd != -1) {
        (void)fsync(dfd);
        close(dfd);
    }
    str_copy(res->id, sizeof res->id, env.id);
    res->accepted = m->nrcpt;
    return res->status = EX_OK;
}
