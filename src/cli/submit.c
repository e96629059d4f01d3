/*
 * cli/submit.c - submission to posteld over the control socket, or into the drop directory.
 *
 * Owns:  see submit.h.
 * Never: changes the message text.
 * Limits: smtp/reply.h (replies), smtp/client.h (CLI_TIMEOUT_*).
 */
#include "cli/submit.h"

#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "cli/ctlclient.h"
#include "cli/smtpdrive.h"
#include "conf/conf.h"
#include "deliver/local.h"
#include "queue/envelope.h"
#include "queue/maildrop.h"
#include "smtp/client.h"
#include "smtp/parse.h"
#include "util/str.h"
#include "util/xmalloc.h"

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

static bool is_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* The reply code behind a result: the server's, or one standing for our own verdict. */
static int result_code(const struct cli_result *r)
{
    const char *t = r->reply;
    if (digit(t[0]) && digit(t[1]) && digit(t[2]) && (t[3] == ' ' || t[3] == '\0'))
        return (t[0] - '0') * 100 + (t[1] - '0') * 10 + (t[2] - '0');
    return r->kind == CLI_R_OK ? 250 : r->kind == CLI_R_TEMP ? 451 : 554;
}

static int result_status(const struct cli_result *r, char stage)
{
    return submit_status_for(result_code(r), r->status, stage);
}

/* A recipient's fate was decided before DATA: by its RCPT reply, or by us. */
static bool rcpt_decided(const struct cli_result *r)
{
    return r->stage == CLI_STAGE_RCPT || r->stage == CLI_STAGE_LOCAL;
}

/* Before the content goes: a recipient deferred at RCPT abandons the whole message, so
 * that the submitter can send it again to everyone later. */
static bool body_wanted(void *arg, const struct smtp_client *c)
{
    size_t n;
    const struct cli_result *cr = cli_results(c, &n);
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        /* (the accepted ones still carry the machine's "not attempted" placeholder) */
        if (cr[i].stage == CLI_STAGE_RCPT && cr[i].kind == CLI_R_TEMP)
            return false;
    }
    return true;
}

/* The driver failed (the daemon went away, did not answer, or did not speak SMTP). */
static void drive_failed(const struct smtpdrive *d, struct submit_result *res)
{
    bool greeting = d->err_state == CLI_S_GREETING || d->err_state == CLI_S_INIT;
    switch (d->err) {
    case SMTPDRIVE_CLOSED:
        snprintf(res->why, sizeof res->why, "posteld closed the connection");
        break;
    case SMTPDRIVE_TIMEOUT:
        snprintf(res->why, sizeof res->why, "posteld did not answer in time");
        break;
    case SMTPDRIVE_PROTOCOL:
        snprintf(res->why, sizeof res->why, "unexpected answer from posteld: %s", d->why);
        break;
    case SMTPDRIVE_READ:
        snprintf(res->why, sizeof res->why, "%s", strerror(d->sys_errno));
        break;
    case SMTPDRIVE_WRITE:
        snprintf(res->why, sizeof res->why, "cannot send %sto posteld: %s",
            d->err_state == CLI_S_BODY ? "the message " : "", strerror(d->sys_errno));
        break;
    default:
        snprintf(res->why, sizeof res->why, "%s", d->why);
        break;
    }
    if (greeting) {
        /* A daemon on its way out: the drop directory will do. */
        res->no_daemon = d->err != SMTPDRIVE_PROTOCOL;
        res->status = EX_UNAVAILABLE;
    } else {
        /* The message was not acknowledged: the caller may try again later. */
        res->status = EX_TEMPFAIL;
    }
}

/* The session ran its course: turn the machine's results into an exit status and text. */
static void judge(const struct submit_msg *m, const struct cli_result *cr, size_t n, FILE *err,
    struct submit_result *res)
{
    const struct cli_result *r0 = &cr[0];
    bool all_local = true;
    for (size_t i = 0; i < n; i++)
        all_local = all_local && cr[i].stage == CLI_STAGE_LOCAL;

    /* Outcomes for the whole message: every recipient shares them. */
    switch (r0->stage) {
    case CLI_STAGE_GREETING:
        snprintf(res->why, sizeof res->why, "posteld refused the submission: %s", r0->reply);
        res->no_daemon = result_code(r0) == 421;
        res->status = result_code(r0) / 100 == 4 ? EX_TEMPFAIL : EX_UNAVAILABLE;
        return;
    case CLI_STAGE_CONNECT:
    case CLI_STAGE_HELO:
    case CLI_STAGE_STARTTLS:
    case CLI_STAGE_AUTH:
        snprintf(res->why, sizeof res->why, "EHLO refused: %s", r0->reply);
        res->status = result_status(r0, 'O');
        return;
    case CLI_STAGE_MAIL:
        snprintf(res->why, sizeof res->why, "sender <%s> refused: %s", m->sender, r0->reply);
        res->status = result_status(r0, 'M');
        return;
    default:
        break;
    }
    if (all_local && r0->kind == CLI_R_PERM && strcmp(r0->status, "5.1.3") != 0) {
        /* refused here before MAIL, e.g. over the daemon's SIZE limit */
        snprintf(res->why, sizeof res->why, "message refused: %s", r0->reply);
        res->status = result_status(r0, 'M');
        return;
    }
    int refused = EX_OK;
    const struct cli_result *acc = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!rcpt_decided(&cr[i])) {
            res->accepted++;
            if (acc == NULL)
                acc = &cr[i];
            continue;
        }
        fprintf(err, "%s... %s\n", m->rcpts[i], cr[i].reply);
        if (cr[i].kind != CLI_R_PERM) {
            snprintf(res->why, sizeof res->why, "recipient <%s> deferred: %s; message not sent",
                m->rcpts[i], cr[i].reply);
            res->status = EX_TEMPFAIL;
            return;
        }
        if (refused == EX_OK || refused == EX_NOUSER)
            refused = result_status(&cr[i], 'R');
    }
    if (acc == NULL) {
        snprintf(res->why, sizeof res->why, "no recipient was accepted");
        res->status = refused;
        return;
    }
    if (acc->stage == CLI_STAGE_DATA || acc->kind != CLI_R_OK) {
        snprintf(res->why, sizeof res->why, "%s refused: %s",
            acc->stage == CLI_STAGE_DATA ? "DATA" : "message", acc->reply);
        res->status = result_status(acc, 'D');
        return;
    }
    const char *q = strstr(acc->reply, "queued as ");
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
}

int submit_smtp(const char *path, const struct submit_msg *m, FILE *err,
    struct submit_result *res)
{
    memset(res, 0, sizeof *res);
    if (m->nrcpt == 0) {
        snprintf(res->why, sizeof res->why, "no recipient was accepted");
        return res->status = EX_USAGE;
    }
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
    if (ctl_write(&c, m->trace_hold ? "SMTP TRACE\n" : "SMTP\n",
            m->trace_hold ? 11 : 5) == -1) {
        snprintf(res->why, sizeof res->why, "cannot send to posteld: %s", strerror(errno));
        res->no_daemon = true;
        res->status = EX_UNAVAILABLE;
        ctl_close(&c);
        return res->status;
    }
    bool utf8 = m->smtputf8 || !is_ascii(m->sender);
    for (size_t i = 0; i < m->nrcpt; i++)
        utf8 = utf8 || !is_ascii(m->rcpts[i]);
    unsigned *notify = xcalloc(m->nrcpt, sizeof *notify);
    for (size_t i = 0; i < m->nrcpt; i++)
        notify[i] = m->notify;
    struct cli_msg cm = {
        .sender = m->sender,
        .rcpts = m->rcpts,
        .notify = notify,
        .nrcpt = m->nrcpt,
        .size = cli_body_size(m->text, m->len),
        .eightbit = m->body == SMTP_BODY_8BITMIME,
        .body7bit = m->body == SMTP_BODY_7BIT,
        .smtputf8 = utf8,
        .ret = m->ret,
        .envid = m->envid,
    };
    struct smtp_client cli;
    struct smtpdrive d;
    cli_init(&cli, m->helo);
    smtpdrive_init(&d, c.fd);
    d.before_body = body_wanted;
    if (smtpdrive_run(&d, &cli, &cm, m->text, m->len) == -1) {
        drive_failed(&d, res);
    } else {
        size_t n;
        const struct cli_result *cr = cli_results(&cli, &n);
        judge(m, cr, n, err, res);
    }
    cli_free(&cli);
    free(notify);
    ctl_close(&c);
    return res->status;
}

int submit_maildrop(const struct conf *c, const struct submit_msg *m,
    struct submit_result *res)
{
    memset(res, 0, sizeof *res);
    struct env_msg env;
    memset(&env, 0, sizeof env);
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
    env.rcpts = xcalloc(m->nrcpt ? m->nrcpt : 1, sizeof *env.rcpts);
    for (size_t i = 0; i < m->nrcpt; i++) {
        env.rcpts[i].addr = (char *)m->rcpts[i];
        env.rcpts[i].local = local_addr_is_local(c, m->rcpts[i]);
        env.rcpts[i].notify = m->notify;
    }
    env.nrcpt = m->nrcpt;
    int r = maildrop_write(c->spool_dir, &env, m->text, m->len, res->why, sizeof res->why);
    int e = errno;
    free(env.rcpts);
    switch (r) {
    case 0:
        str_copy(res->id, sizeof res->id, env.id);
        res->accepted = m->nrcpt;
        return res->status = EX_OK;
    case MAILDROP_ECREATE:
        if (e == ENAMETOOLONG)
            return res->status = EX_CONFIG;
        return res->status = e == ENOSPC || e == EDQUOT || e == EIO ? EX_TEMPFAIL :
            EX_CANTCREAT;
    case MAILDROP_EENCODE:
        return res->status = EX_SOFTWARE;
    default:
        return res->status = EX_TEMPFAIL;
    }
}
