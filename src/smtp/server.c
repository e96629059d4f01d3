/*
 * smtp/server.c - receiver-SMTP session state machine.
 *
 * Owns:  command order, the open transaction, reply text. Every verb is dispatched from one
 *        table (cmds[]) whose flags carry its preconditions, checked in one place
 *        (cmd_allowed); each verb then has its own check and run functions.
 * Never: reads sockets or touches the spool; it returns actions.
 * Limits: smtp/limits.h (RFC 5321 4.5.3.1), message limits from struct conf.
 */
#include "smtp/server.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "conf/conf.h"
#include "policy/aliases.h"
#include "policy/auth.h"
#include "smtp/limits.h"
#include "util/str.h"
#include "util/xmalloc.h"

/* Content not yet spooled is handed to the spool past this many octets. */
#define SRV_BODY_CAP (1024 * 1024)

static const char *with_proto(const struct smtp_server *s);

enum { AUTH_STEP_NONE, AUTH_STEP_PLAIN, AUTH_STEP_LOGIN_USER, AUTH_STEP_LOGIN_PASS };

static void auth_response(struct smtp_server *s, const char *line, size_t len,
    struct srv_out *out);

static void srv_set_state(struct smtp_server *s, enum srv_state st)
{
    s->state = st;
}

/*
 * Append one reply line. enh is the enhanced status code ("2.1.0"), shown only after EHLO
 * (RFC 2034); cont: a continuation line ("250-").
 */
static void __attribute__((format(printf, 5, 6)))
reply_line(struct smtp_server *s, struct srv_out *out, int code, const char *enh,
    const char *fmt, ...)
{
    struct buf *b = out->replies;
    bool cont = code < 0;
    if (cont)
        code = -code;
    buf_printf(b, "%03d%c", code, cont ? '-' : ' ');
    if (enh && s->esmtp)
        buf_printf(b, "%s ", enh);
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
    buf_puts(b, "\r\n");
}

#define reply(s, out, code, enh, ...) reply_line((s), (out), (code), (enh), __VA_ARGS__)

/* A reply string "CODE X.Y.Z text" from the parser, with the enhanced code dropped after HELO. */
static void reply_raw(struct smtp_server *s, struct srv_out *out, const char *r)
{
    if (!s->esmtp && strlen(r) > 4) {
        const char *sp = strchr(r + 4, ' ');
        if (sp && r[4] >= '2' && r[4] <= '5' && r[5] == '.') {
            buf_append(out->replies, r, 4);
            buf_puts(out->replies, sp + 1);
            buf_puts(out->replies, "\r\n");
            return;
        }
    }
    buf_puts(out->replies, r);
    buf_puts(out->replies, "\r\n");
}

static void tx_free(struct srv_tx *t)
{
    if (t == NULL)
        return;
    free(t->sender);
    free(t->envid);
    for (size_t i = 0; i < t->nrcpt; i++) {
        free(t->rcpts[i].addr);
        free(t->rcpts[i].orcpt);
    }
    free(t->rcpts);
    buf_free(&t->body);
    free(t);
}

static void tx_reset(struct smtp_server *s)
{
    tx_free(s->tx);
    s->tx = NULL;
    if (s->state != SRV_CLOSED)
        srv_set_state(s, s->helo[0] ? SRV_READY : SRV_INIT);
}

void srv_init(struct smtp_server *s, const struct conf *conf, const struct srv_env *env,
    const char *client_addr, bool relay_ok)
{
    memset(s, 0, sizeof *s);
    s->conf = conf;
    s->env = env;
    s->relay_ok = relay_ok;
    s->relay_by_net = relay_ok;
    str_copy(s->client_addr, sizeof s->client_addr, client_addr);
    srv_set_state(s, SRV_INIT);
}

void srv_free(struct smtp_server *s)
{
    explicit_bzero(s->auth_try_pass, sizeof s->auth_try_pass);
    tx_free(s->tx);
    s->tx = NULL;
}

void srv_greet(struct smtp_server *s, struct srv_out *out)
{
    reply(s, out, 220, NULL, "%s ESMTP postel", s->conf->hostname);
}

/* Count an error; past the limit, say 421 and close. */
static void count_error(struct smtp_server *s, struct srv_out *out)
{
    if (++s->errors >= s->conf->max_errors && s->conf->max_errors > 0) {
        reply(s, out, 421, "4.7.0", "%s Error: too many errors", s->conf->hostname);
        srv_set_state(s, SRV_CLOSED);
        out->act = SRV_ACT_CLOSE;
    }
}

static void error_reply(struct smtp_server *s, struct srv_out *out, int code, const char *enh,
    const char *text)
{
    reply(s, out, code, enh, "%s", text);
    count_error(s, out);
}

static bool arg_empty(const char *arg, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (arg[i] != ' ')
            return false;
    return true;
}

/* ---- the command table: types (the table itself is at the end, with the dispatch) ---- */

/*
 * What a command needs before it may run, and how long its line may be. cmd_allowed() checks
 * the state flags in one place, in this order, and gives the 503 5.5.1 replies.
 */
enum {
    CF_NOARG    = 1u << 0,  /* takes no argument: 501 "Syntax: <usage>", before state checks */
    CF_NEEDARG  = 1u << 1,  /* needs an argument: 501 "Syntax: <usage>" */
    CF_HELO     = 1u << 2,  /* needs HELO or EHLO */
    CF_EHLO     = 1u << 3,  /* needs EHLO: HELO is not enough */
    CF_NOAUTHED = 1u << 4,  /* not once the client has authenticated */
    CF_NOTX     = 1u << 5,  /* not inside a mail transaction */
    CF_TX       = 1u << 6,  /* needs an open transaction (MAIL) */
    CF_RCPT     = 1u << 7,  /* needs at least one accepted recipient (with CF_TX) */
    CF_CHUNK    = 1u << 8,  /* a chunk follows (BDAT; needs a check): cmd_dispatch() */
    CF_AUTH     = 1u << 9,  /* submission: needs AUTH (530 5.7.0, after the arguments) */
    CF_PARAMS   = 1u << 10, /* may carry ESMTP parameters: up to SMTP_CMDLINE_EXT_MAX */
    CF_AUTHLINE = 1u << 11, /* may carry a SASL initial response: up to SMTP_AUTHLINE_MAX */
    CF_8BIT     = 1u << 12, /* its parser judges 8-bit octets itself (SMTPUTF8 addresses) */
};

struct cmd;

/* One command being dispatched: the parsed line, and what its check learnt for its run. */
struct cmd_args {
    const struct cmd *cmd;
    const struct smtp_cmd *c;
    union {
        size_t helo_len;                                    /* HELO, EHLO */
        struct smtp_mail_args mail;                         /* MAIL */
        struct smtp_rcpt_args rcpt;                         /* RCPT */
        struct { unsigned long long size; bool last; } chunk;   /* CF_CHUNK: BDAT */
        struct { bool plain; size_t mech, resp; } auth;     /* AUTH: offsets into c->arg */
    } u;
};

struct cmd {
    const char *name;           /* the verb, for the replies that name it */
    const char *usage;          /* for 501 "Syntax: ..."; NULL where the parser words it */
    unsigned flags;             /* CF_* */
    /* Is the command offered in this session at all? Replies (502, 538) when not. Runs
     * before every other check; NULL: always offered. */
    bool (*offered)(struct smtp_server *s, struct srv_out *out);
    /* Are the arguments valid, and may the verb run in this state beyond what the flags
     * say? Replies when not. NULL: nothing to check. */
    bool (*check)(struct smtp_server *s, struct cmd_args *a, struct srv_out *out);
    /* Do it: policy decisions, the state change and the reply. */
    void (*run)(struct smtp_server *s, struct cmd_args *a, struct srv_out *out);
};

/* 501 5.5.4 "Syntax: <usage>" for the command being dispatched; counts as an error. */
static void syntax_error(struct smtp_server *s, const struct cmd_args *a, struct srv_out *out)
{
    reply(s, out, 501, "5.5.4", "Syntax: %s", a->cmd->usage);
    count_error(s, out);
}

/* ---- HELO / EHLO ---- */

static bool check_helo(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    const struct smtp_cmd *c = a->c;
    size_t n = c->arglen;
    while (n > 0 && c->arg[n - 1] == ' ')
        n--;
    if (n == 0 || n > SMTP_DOMAIN_MAX || !smtp_helo_valid(c->arg, n)) {
        /* An EHLO is answered the ESMTP way even when it fails. */
        bool was = s->esmtp;
        s->esmtp = c->verb == SMTP_VERB_EHLO || was;
        syntax_error(s, a, out);
        s->esmtp = was;
        return false;
    }
    a->u.helo_len = n;
    return true;
}

static void run_helo(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    bool ehlo = a->c->verb == SMTP_VERB_EHLO;
    /* EHLO/HELO in the middle of a session resets it (RFC 5321 4.1.4). */
    tx_reset(s);
    str_ncopy(s->helo, sizeof s->helo, a->c->arg, a->u.helo_len);
    s->esmtp = ehlo;
    srv_set_state(s, SRV_READY);
    s->errors = 0;
    if (!ehlo) {
        reply(s, out, 250, NULL, "%s", s->conf->hostname);
        return;
    }
    reply(s, out, -250, NULL, "%s Hello %s", s->conf->hostname, s->helo);
    reply(s, out, -250, NULL, "PIPELINING");
    if (s->conf->message_size_limit)
        reply(s, out, -250, NULL, "SIZE %llu", s->conf->message_size_limit);
    else
        reply(s, out, -250, NULL, "SIZE");
    reply(s, out, -250, NULL, "8BITMIME");
    reply(s, out, -250, NULL, "DSN");
    reply(s, out, -250, NULL, "ENHANCEDSTATUSCODES");
    reply(s, out, -250, NULL, "SMTPUTF8");
    reply(s, out, -250, NULL, "CHUNKING");
    if (s->tls_offer && !s->tls)
        reply(s, out, -250, NULL, "STARTTLS");
    if (s->auth_offer && (s->tls || s->auth_plaintext) && !s->auth_user[0])
        reply(s, out, -250, NULL, "AUTH PLAIN LOGIN");
    if (s->etrn_ok)
        reply(s, out, -250, NULL, "ETRN");
    reply(s, out, 250, NULL, "HELP");
}

/* ---- MAIL ---- */

static bool check_mail(struct smtp_server *s, struct cmd_args *args, struct srv_out *out)
{
    struct smtp_mail_args *a = &args->u.mail;
    enum smtp_perr e = smtp_parse_mail(args->c->arg, args->c->arglen, a);
    if (e != SMTP_PERR_OK) {
        reply_raw(s, out, smtp_perr_reply(e, false));
        count_error(s, out);
        return false;
    }
    bool any_param = a->has_size || a->body != SMTP_BODY_NONE || a->ret != SMTP_RET_NONE ||
        a->has_envid || a->smtputf8 || a->has_auth;
    if (!s->esmtp && any_param) {
        /* Extensions exist only after EHLO (RFC 5321 4.1.1.11). */
        reply_raw(s, out, smtp_perr_reply(SMTP_PERR_PARAM_UNKNOWN, false));
        count_error(s, out);
        return false;
    }
    if (a->body == SMTP_BODY_BINARYMIME) {
        error_reply(s, out, 501, "5.5.4", "BODY=BINARYMIME is not supported");
        return false;
    }
    if (a->has_auth && !s->auth_offer) {
        /* AUTH is not offered: an AUTH= parameter is an unknown parameter (RFC 4954 5). */
        reply_raw(s, out, smtp_perr_reply(SMTP_PERR_PARAM_UNKNOWN, false));
        count_error(s, out);
        return false;
    }
    return true;
}

static void run_mail(struct smtp_server *s, struct cmd_args *args, struct srv_out *out)
{
    const struct smtp_mail_args *a = &args->u.mail;
    if (s->auth_user[0] && s->env->sender_ok &&
        !s->env->sender_ok(s->env->ctx, s->auth_user, a->path.null ? "" : a->path.addr)) {
        char q[SMTP_PATH_MAX * 2];
        reply(s, out, 553, "5.7.1", "<%s>: Sender address rejected: not owned by user %s",
            str_escape(q, sizeof q, a->path.addr, strlen(a->path.addr)), s->auth_user);
        count_error(s, out);
        return;
    }
    unsigned long long lim = s->conf->message_size_limit;
    if (a->has_size && lim && a->size > lim) {
        error_reply(s, out, 552, "5.3.4", "Message size exceeds fixed maximum message size");
        return;
    }
    struct srv_tx *t = xcalloc(1, sizeof *t);
    t->sender = xstrdup(a->path.null ? "" : a->path.addr);
    t->declared_size = a->has_size ? a->size : 0;
    t->body_type = a->body;
    t->ret = a->ret;
    t->envid = a->has_envid ? xstrdup(a->envid) : NULL;
    t->smtputf8 = a->smtputf8;
    buf_init(&t->body, SRV_BODY_CAP + 64 * 1024);
    s->tx = t;
    srv_set_state(s, SRV_MAIL);
    s->errors = 0;
    reply(s, out, 250, "2.1.0", "Ok");
}

/* ---- RCPT ---- */

static bool rcpt_is_local(const struct smtp_server *s, const struct smtp_path *p, bool *known)
{
    const struct conf *cf = s->conf;
    *known = false;
    if (p->postmaster) {
        *known = true;
        return true;
    }
    if (!conf_is_local_domain(cf, p->domain))
        return false;
    /* Local parts keep their case on the envelope; lookups ignore it, as users expect. */
    if (strcasecmp(p->local, "postmaster") == 0 || conf_is_local_user(cf, p->local) ||
        aliases_exists(cf->aliases, p->local))
        *known = true;
    return true;
}

/* An alias whose members are all off-host: the first of them (for a 251 reply). Only the
 * direct members are looked at: no :include: file is read on the loop. */
static const char *forward_target(const struct smtp_server *s, const struct smtp_path *p)
{
    const char *const *m = aliases_members(s->conf->aliases, p->postmaster ? "postmaster" :
        p->local);
    if (m == NULL || m[0] == NULL)
        return NULL;
    for (size_t i = 0; m[i]; i++) {
        const char *at = strrchr(m[i], '@');
        if (at == NULL || m[i][0] == ':' || conf_is_local_domain(s->conf, at + 1))
            return NULL;
    }
    return m[0];
}

static bool check_rcpt(struct smtp_server *s, struct cmd_args *args, struct srv_out *out)
{
    struct smtp_rcpt_args *a = &args->u.rcpt;
    enum smtp_perr e = smtp_parse_rcpt(args->c->arg, args->c->arglen, s->tx->smtputf8, a);
    if (e != SMTP_PERR_OK) {
        reply_raw(s, out, smtp_perr_reply(e, true));
        count_error(s, out);
        return false;
    }
    if (!s->esmtp && (a->notify || a->has_orcpt)) {
        reply_raw(s, out, smtp_perr_reply(SMTP_PERR_PARAM_UNKNOWN, true));
        count_error(s, out);
        return false;
    }
    return true;
}

static void run_rcpt(struct smtp_server *s, struct cmd_args *args, struct srv_out *out)
{
    struct srv_tx *t = s->tx;
    const struct smtp_rcpt_args *a = &args->u.rcpt;
    if (t->nrcpt >= s->conf->max_recipients) {
        /* 452 lets the client send the rest in another transaction (RFC 5321 4.5.3.1.10). */
        reply(s, out, 452, "4.5.3", "Error: too many recipients");
        return;
    }
    bool known;
    bool local = rcpt_is_local(s, &a->path, &known);
    if (local && !known) {
        char q[SMTP_PATH_MAX * 2];
        reply(s, out, 550, "5.1.1", "<%s>: Recipient address rejected: User unknown",
            str_escape(q, sizeof q, a->path.addr, strlen(a->path.addr)));
        count_error(s, out);
        return;
    }
    if (!local && !s->relay_ok) {
        char q[SMTP_PATH_MAX * 2];
        reply(s, out, 554, "5.7.1", "<%s>: Relay access denied",
            str_escape(q, sizeof q, a->path.addr, strlen(a->path.addr)));
        count_error(s, out);
        return;
    }
    if (t->nrcpt == t->rcpt_cap) {
        t->rcpt_cap = t->rcpt_cap ? t->rcpt_cap * 2 : 4;
        t->rcpts = xreallocarray(t->rcpts, t->rcpt_cap, sizeof *t->rcpts);
    }
    struct srv_rcpt *r = &t->rcpts[t->nrcpt++];
    r->addr = xstrdup(a->path.postmaster ? "postmaster" : a->path.addr);
    r->local = local;
    r->notify = a->notify;
    r->orcpt = NULL;
    if (a->has_orcpt) {
        struct buf ob;
        buf_init(&ob, 0);
        buf_printf(&ob, "%s;%s", a->orcpt_type, a->orcpt);
        r->orcpt = xstrdup(buf_cstr(&ob));
        buf_free(&ob);
    }
    srv_set_state(s, SRV_RCPT);
    s->errors = 0;
    const char *fwd = local && s->conf->rcpt_251 ? forward_target(s, &a->path) : NULL;
    if (fwd) {
        /* RFC 821's "251 User not local; will forward" for those who want it */
        char q[SMTP_PATH_MAX * 2];
        reply(s, out, 251, "2.1.5", "User not local; will forward to <%s>",
            str_escape(q, sizeof q, fwd, strlen(fwd)));
        return;
    }
    reply(s, out, 250, "2.1.5", "Ok");
}

/* ---- DATA and BDAT ---- */

const char *srv_proto(const struct smtp_server *s)
{
    return with_proto(s);
}

static const char *with_proto(const struct smtp_server *s)
{
    /* RFC 3848 and RFC 6531 protocol types */
    static const char *const names[2][2][2] = {
        { { "ESMTP", "ESMTPA" }, { "ESMTPS", "ESMTPSA" } },
        { { "UTF8SMTP", "UTF8SMTPA" }, { "UTF8SMTPS", "UTF8SMTPSA" } },
    };
    if (!s->esmtp)
        return "SMTP";
    return names[s->tx && s->tx->smtputf8][s->tls][s->auth_user[0] != 0];
}

void srv_received(const struct smtp_server *s, struct buf *b)
{
    const struct srv_tx *t = s->tx;
    char date[64];
    time_t now = s->env->now(s->env->ctx);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    char helo[SMTP_DOMAIN_MAX * 4 + 1];
    str_escape(helo, sizeof helo, s->helo, strlen(s->helo));
    if (s->tls_info[0])
        /* the TLS comment goes before "by" so the clauses stay in RFC 5321 order */
        buf_printf(b, "Received: from %s (%s%s%s)\n\t(using %s)\n\tby %s (postel) with %s "
            "id %s", helo, strchr(s->client_addr, ':') ? "[IPv6:" : "[", s->client_addr, "]",
            s->tls_info, s->conf->hostname, with_proto(s), t->id);
    else if (s->local_user[0])
        buf_printf(b, "Received: from %s (local user %s)\n\tby %s (postel) with %s id %s",
            helo, s->local_user, s->conf->hostname, with_proto(s), t->id);
    else
        buf_printf(b, "Received: from %s (%s%s%s)\n\tby %s (postel) with %s id %s", helo,
            strchr(s->client_addr, ':') ? "[IPv6:" : "[", s->client_addr, "]",
            s->conf->hostname, with_proto(s), t->id);
    if (t->nrcpt == 1) {
        char q[SMTP_PATH_MAX * 4];
        const char *a = t->rcpts[0].addr;
        if (t->smtputf8)
            str_copy(q, sizeof q, a);
        else
            str_escape(q, sizeof q, a, strlen(a));
        buf_printf(b, "\n\tfor <%s>", q);
    }
    buf_printf(b, ";\n\t%s\n", date);
}

static void tx_start_content(struct smtp_server *s, enum data_mode mode)
{
    struct srv_tx *t = s->tx;
    s->env->new_id(s->env->ctx, t->id, sizeof t->id);
    t->arrival = s->env->now(s->env->ctx);
    data_init(&t->dr, mode, s->conf->message_size_limit ? s->conf->message_size_limit : ~0ULL,
        s->conf->max_line_length);
    srv_received(s, &t->body);
}

static bool check_data(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    (void)a;
    if (s->tx->bdat) {
        error_reply(s, out, 503, "5.5.1", "Error: DATA cannot follow BDAT in one transaction");
        return false;
    }
    return true;
}

static void run_data(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    (void)a;
    tx_start_content(s, DATA_MODE_DATA);
    srv_set_state(s, SRV_DATA);
    reply(s, out, 354, NULL, "End data with <CR><LF>.<CR><LF>");
}

/* Decide on finished content: reject it, or ask the driver to commit. */
static void content_done(struct smtp_server *s, struct srv_out *out)
{
    struct srv_tx *t = s->tx;
    unsigned f = t->dr.flags;
    const char *enh = NULL, *why = NULL;
    char longline[128];
    int code = 554;
    if (t->store_failed) {
        /* Not the client's fault: it may try again later (RFC 5321 4.2.5). */
        code = 452;
        enh = "4.3.1";
        why = "Error: insufficient system storage";
    } else if (f & DATA_F_OVERSIZE) {
        code = 552;
        enh = "5.3.4";
        why = "Error: message exceeds fixed maximum message size";
    } else if ((f & DATA_F_BARE_CR) ||
        ((f & DATA_F_BARE_LF) && s->conf->bare_lf == CONF_BARE_LF_REJECT)) {
        /* bare_lf = normalize (the default) keeps a line that ends in a bare LF as a line:
         * only a real CRLF.CRLF ends the content, so nothing can end it early */
        enh = "5.6.0";
        why = "Error: bare CR or LF in message; lines must end with CRLF (RFC 5321 2.3.8)";
    } else if (f & DATA_F_NUL) {
        enh = "5.6.0";
        why = "Error: NUL character in message";
    } else if (f & DATA_F_LONG_LINE) {
        enh = "5.6.0";
        snprintf(longline, sizeof longline, "Error: message line longer than the limit (%zu "
            "characters; RFC 5322 2.1.1)", s->conf->max_line_length);
        why = longline;
    }
    if (why) {
        bool spilled = t->spilled > 0;
        reply(s, out, code, enh, "%s", why);
        tx_reset(s);
        out->act = spilled ? SRV_ACT_ABORT : SRV_ACT_NONE;
        count_error(s, out);
        return;
    }
    srv_set_state(s, SRV_COMMIT);
    out->act = SRV_ACT_COMMIT;
}

size_t srv_feed_data(struct smtp_server *s, const char *in, size_t n, struct srv_out *out)
{
    struct srv_tx *t = s->tx;
    if (s->state == SRV_DATA) {
        bool done = false;
        size_t used = data_feed(&t->dr, in, n, &t->body, &done);
        if (used == (size_t)-1) {
            /* The driver spills before the cap; reaching it is a broken invariant. */
            reply(s, out, 451, "4.3.0", "Error: internal buffer overflow");
            srv_set_state(s, SRV_CLOSED);
            out->act = SRV_ACT_CLOSE;
            return n;
        }
        if (done) {
            data_finish(&t->dr, &t->body);
            content_done(s, out);
        }
        return used;
    }
    if (s->state != SRV_BDAT)
        return 0;
    size_t take = n;
    if (take > t->bdat_left)
        take = (size_t)t->bdat_left;
    if (t->nrcpt > 0) {
        bool done = false;
        if (data_feed(&t->dr, in, take, &t->body, &done) == (size_t)-1) {
            reply(s, out, 451, "4.3.0", "Error: internal buffer overflow");
            srv_set_state(s, SRV_CLOSED);
            out->act = SRV_ACT_CLOSE;
            return n;
        }
    }
    t->bdat_left -= take;
    t->bdat_total += take;
    if (t->bdat_left > 0)
        return take;
    /* End of chunk. */
    if (t->nrcpt == 0) {
        /* A chunk read only to stay in sync after an error. */
        tx_reset(s);
        return take;
    }
    if (t->dr.flags & DATA_F_OVERSIZE) {
        content_done(s, out);
        return take;
    }
    if (!t->bdat_last) {
        srv_set_state(s, SRV_RCPT);
        /* The octets as sent (dr.size leaves a CR that ends a chunk uncounted). */
        reply(s, out, 250, "2.0.0", "Ok: %llu octets received", t->bdat_total);
        return take;
    }
    data_finish(&t->dr, &t->body);
    content_done(s, out);
    return take;
}

unsigned long long srv_bdat_left(const struct smtp_server *s)
{
    return s->tx ? s->tx->bdat_left : 0;
}

/* BDAT size [LAST] */
static bool check_bdat(struct smtp_server *s, struct cmd_args *args, struct srv_out *out)
{
    const char *a = args->c->arg;
    size_t n = args->c->arglen, i = 0;
    while (i < n && a[i] >= '0' && a[i] <= '9')
        i++;
    if (i == 0 || str_to_u64(a, i, &args->u.chunk.size) == -1) {
        syntax_error(s, args, out);
        return false;
    }
    size_t j = i;
    while (j < n && a[j] == ' ')
        j++;
    args->u.chunk.last = false;
    if (j < n) {
        if (j == i || !str_ieq(a + j, n - j, "LAST")) {
            syntax_error(s, args, out);
            return false;
        }
        args->u.chunk.last = true;
    }
    return true;
}

/*
 * A refused BDAT: its chunk still follows on the wire, so read it and throw it away (RFC 3030
 * 2). A failed BDAT also ends the transaction (RFC 3030 4.2); a bare tx skips the chunk.
 */
static void chunk_skip(struct smtp_server *s, unsigned long long size)
{
    if (s->state == SRV_CLOSED)
        return;
    tx_reset(s);
    if (size == 0)
        return;
    s->tx = xcalloc(1, sizeof *s->tx);
    buf_init(&s->tx->body, 1);
    s->tx->bdat = true;
    s->tx->bdat_left = size;
    srv_set_state(s, SRV_BDAT);
}

static void run_bdat(struct smtp_server *s, struct cmd_args *args, struct srv_out *out)
{
    struct srv_tx *t = s->tx;
    if (!t->bdat) {
        t->bdat = true;
        tx_start_content(s, DATA_MODE_BDAT);
    }
    t->bdat_left = args->u.chunk.size;
    t->bdat_last = args->u.chunk.last;
    srv_set_state(s, SRV_BDAT);
    if (t->bdat_left == 0) {
        /* An empty chunk ends at once. */
        srv_feed_data(s, "", 0, out);
    }
}

/* ---- VRFY / EXPN / HELP ---- */

/* Extract the mailbox from a VRFY/EXPN argument: "<a@b>", "a@b" or "name". */
static void lookup_name(const char *arg, size_t n, char *local, size_t lsz, char *domain,
    size_t dsz)
{
    while (n > 0 && arg[n - 1] == ' ')
        n--;
    if (n >= 2 && arg[0] == '<' && arg[n - 1] == '>') {
        arg++;
        n -= 2;
    }
    const char *at = memchr(arg, '@', n);
    if (at) {
        str_ncopy(local, lsz, arg, (size_t)(at - arg));
        str_ncopy(domain, dsz, at + 1, n - (size_t)(at - arg) - 1);
    } else {
        str_ncopy(local, lsz, arg, n);
        domain[0] = '\0';
    }
}

static bool name_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || *s == '<' || *s == '>')
            return false;
    return true;
}

/* Split and check a VRFY/EXPN argument; false (after a 501) when it is not a name. */
static bool lookup_arg(struct smtp_server *s, const struct cmd_args *a, char *local,
    size_t lsz, char *domain, size_t dsz, struct srv_out *out)
{
    lookup_name(a->c->arg, a->c->arglen, local, lsz, domain, dsz);
    if (!name_ok(local) || (domain[0] && !name_ok(domain))) {
        syntax_error(s, a, out);
        return false;
    }
    return true;
}

static void run_vrfy(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    if (s->conf->vrfy != CONF_LOOKUP_ON) {
        /* Never reveal who exists (RFC 5321 3.5.3). */
        reply(s, out, 252, "2.1.5", "Cannot VRFY user, but will accept message and attempt "
            "delivery");
        return;
    }
    char local[SMTP_LOCAL_MAX * 2 + 1], domain[SMTP_DOMAIN_MAX + 1];
    if (!lookup_arg(s, a, local, sizeof local, domain, sizeof domain, out))
        return;
    if (domain[0] && !conf_is_local_domain(s->conf, domain)) {
        reply(s, out, 252, "2.1.5", "Cannot VRFY non-local address, but will attempt delivery");
        return;
    }
    const char *dom = domain[0] ? domain : s->conf->nlocal_domains ?
        s->conf->local_domains[0] : s->conf->hostname;
    if (conf_is_local_user(s->conf, local) || aliases_exists(s->conf->aliases, local) ||
        strcasecmp(local, "postmaster") == 0) {
        reply(s, out, 250, "2.1.5", "<%s@%s>", local, dom);
        return;
    }
    reply(s, out, 550, "5.1.1", "<%s@%s>: User unknown", local, dom);
}

static bool offered_expn(struct smtp_server *s, struct srv_out *out)
{
    if (s->conf->expn != CONF_LOOKUP_ON) {
        error_reply(s, out, 502, "5.5.1", "EXPN is disabled");
        return false;
    }
    return true;
}

static void run_expn(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    char local[SMTP_LOCAL_MAX * 2 + 1], domain[SMTP_DOMAIN_MAX + 1];
    if (!lookup_arg(s, a, local, sizeof local, domain, sizeof domain, out))
        return;
    if (domain[0] && !conf_is_local_domain(s->conf, domain)) {
        reply(s, out, 550, "5.1.2", "<%s@%s>: not a local address", local, domain);
        return;
    }
    const char *dom = s->conf->nlocal_domains ? s->conf->local_domains[0] : s->conf->hostname;
    const char *const *m = aliases_members(s->conf->aliases, local);
    if (m == NULL) {
        if (conf_is_local_user(s->conf, local)) {
            reply(s, out, 250, "2.1.5", "<%s@%s>", local, dom);
            return;
        }
        reply(s, out, 550, "5.1.1", "<%s@%s>: User unknown", local, dom);
        return;
    }
    size_t k = 0;
    while (m[k])
        k++;
    for (size_t i = 0; i < k; i++) {
        char q[SMTP_PATH_MAX * 2];
        str_escape(q, sizeof q, m[i], strlen(m[i]));
        if (strchr(m[i], '@') || m[i][0] == ':')
            reply(s, out, i + 1 < k ? -250 : 250, "2.1.5", "<%s>", q);
        else
            reply(s, out, i + 1 < k ? -250 : 250, "2.1.5", "<%s@%s>", q, dom);
    }
    if (k == 0)
        reply(s, out, 250, "2.1.5", "<%s@%s> (empty list)", local, dom);
}

static void run_help(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    (void)a;
    reply(s, out, -214, "2.0.0", "postel; commands:");
    reply(s, out, -214, "2.0.0", "  HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY EXPN HELP");
    reply(s, out, -214, "2.0.0", "  Not implemented: SEND SOML SAML TURN (RFC 5321 dropped them)");
    reply(s, out, 214, "2.0.0", "End of HELP info");
}

/* ---- STARTTLS (RFC 3207) ---- */

static bool check_starttls(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    (void)a;
    if (s->tls) {
        error_reply(s, out, 503, "5.5.1", "Error: TLS already active");
        return false;
    }
    if (!s->tls_offer) {
        error_reply(s, out, 502, "5.5.1", "Error: command not implemented");
        return false;
    }
    return true;
}

static void run_starttls(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    (void)a;
    reply(s, out, 220, "2.0.0", "Ready to start TLS");
    out->act = SRV_ACT_STARTTLS;
}

static void session_restart(struct smtp_server *s)
{
    tx_reset(s);
    s->helo[0] = '\0';
    s->esmtp = false;
    s->auth_user[0] = '\0';
    s->auth_step = AUTH_STEP_NONE;
    s->relay_ok = s->relay_by_net;
    srv_set_state(s, SRV_INIT);
}

void srv_tls_done(struct smtp_server *s, const char *info)
{
    /* Forget everything learned before TLS (RFC 3207 4.2). */
    session_restart(s);
    s->tls = true;
    str_copy(s->tls_info, sizeof s->tls_info, info);
}

void srv_tls_implicit(struct smtp_server *s, const char *info)
{
    s->tls = true;
    str_copy(s->tls_info, sizeof s->tls_info, info);
}

/* ---- AUTH (RFC 4954: PLAIN, LOGIN) ---- */

static void auth_clear(struct smtp_server *s)
{
    explicit_bzero(s->auth_try_pass, sizeof s->auth_try_pass);
    explicit_bzero(s->auth_try_user, sizeof s->auth_try_user);
    s->auth_step = AUTH_STEP_NONE;
}

/* Decode a PLAIN response and hand it to the driver. */
static void auth_plain(struct smtp_server *s, const char *b64, size_t n, struct srv_out *out)
{
    enum auth_perr e = auth_plain_decode(b64, n, s->auth_try_user, sizeof s->auth_try_user,
        s->auth_try_pass, sizeof s->auth_try_pass);
    s->auth_step = AUTH_STEP_NONE;
    if (e == AUTH_P_AUTHZ_MISMATCH) {
        auth_clear(s);
        error_reply(s, out, 535, "5.7.8", "Authentication credentials invalid");
        return;
    }
    if (e != AUTH_P_OK) {
        auth_clear(s);
        error_reply(s, out, 501, "5.5.2", "Cannot decode response");
        return;
    }
    s->auth_busy = true;
    out->act = SRV_ACT_AUTH;
}

static void auth_response(struct smtp_server *s, const char *line, size_t len,
    struct srv_out *out)
{
    if (len + 2 > SMTP_AUTHLINE_MAX) {
        auth_clear(s);
        error_reply(s, out, 500, "5.5.6", "Authentication exchange line is too long");
        return;
    }
    if (len == 1 && line[0] == '*') {
        auth_clear(s);
        error_reply(s, out, 501, "5.0.0", "Authentication cancelled");
        return;
    }
    if (s->auth_step == AUTH_STEP_PLAIN) {
        auth_plain(s, line, len, out);
        return;
    }
    bool user_step = s->auth_step == AUTH_STEP_LOGIN_USER;
    enum auth_perr e = user_step ?
        auth_login_decode(line, len, AUTH_USER_MAX, s->auth_try_user, sizeof s->auth_try_user) :
        auth_login_decode(line, len, AUTH_PASS_MAX, s->auth_try_pass, sizeof s->auth_try_pass);
    if (e != AUTH_P_OK) {
        auth_clear(s);
        error_reply(s, out, 501, "5.5.2", "Cannot decode response");
        return;
    }
    if (user_step) {
        s->auth_step = AUTH_STEP_LOGIN_PASS;
        reply(s, out, 334, NULL, "%s", AUTH_LOGIN_CHALLENGE_PASS);
        return;
    }
    s->auth_step = AUTH_STEP_NONE;
    s->auth_busy = true;
    out->act = SRV_ACT_AUTH;
}

static bool offered_auth(struct smtp_server *s, struct srv_out *out)
{
    if (s->auth_offer && (s->tls || s->auth_plaintext))
        return true;
    if (s->auth_offer && !s->tls)
        error_reply(s, out, 538, "5.7.11", "Encryption required for requested "
            "authentication mechanism");
    else
        error_reply(s, out, 502, "5.5.1", "Error: command not implemented");
    return false;
}

/* AUTH mechanism [initial-response] */
static bool check_auth(struct smtp_server *s, struct cmd_args *args, struct srv_out *out)
{
    const char *a = args->c->arg;
    size_t n = args->c->arglen, i = 0;
    while (i < n && a[i] != ' ')
        i++;
    size_t j = i;
    while (j < n && a[j] == ' ')
        j++;
    args->u.auth.mech = i;
    args->u.auth.resp = j;
    if (str_ieq(a, i, "PLAIN")) {
        args->u.auth.plain = true;
        return true;
    }
    if (str_ieq(a, i, "LOGIN")) {
        args->u.auth.plain = false;
        return true;
    }
    if (i == 0)
        syntax_error(s, args, out);
    else
        error_reply(s, out, 504, "5.5.4", "Unrecognized authentication type");
    return false;
}

static void run_auth(struct smtp_server *s, struct cmd_args *args, struct srv_out *out)
{
    const char *a = args->c->arg;
    size_t n = args->c->arglen, j = args->u.auth.resp;
    if (args->u.auth.plain) {
        if (j < n) {
            /* "=" is an empty initial response (RFC 4954 4). */
            auth_plain(s, a + j, n - j, out);
            return;
        }
        s->auth_step = AUTH_STEP_PLAIN;
        reply(s, out, 334, NULL, "%s", "");
        return;
    }
    s->auth_step = AUTH_STEP_LOGIN_USER;
    if (j < n) {
        auth_response(s, a + j, n - j, out);
        return;
    }
    reply(s, out, 334, NULL, "%s", AUTH_LOGIN_CHALLENGE_USER);
}

void srv_auth_done(struct smtp_server *s, bool ok, bool locked, struct srv_out *out)
{
    if (!s->auth_busy)
        return;
    s->auth_busy = false;
    if (locked) {
        auth_clear(s);
        reply(s, out, 421, "4.7.0", "%s Error: too many failed logins; try later",
            s->conf->hostname);
        srv_set_state(s, SRV_CLOSED);
        out->act = SRV_ACT_CLOSE;
        return;
    }
    if (!ok) {
        auth_clear(s);
        /* Never say whether the user exists. */
        error_reply(s, out, 535, "5.7.8", "Authentication credentials invalid");
        return;
    }
    str_copy(s->auth_user, sizeof s->auth_user, s->auth_try_user);
    auth_clear(s);
    s->relay_ok = true;
    s->errors = 0;
    reply(s, out, 235, "2.7.0", "Authentication successful");
}

void srv_auth_tempfail(struct smtp_server *s, struct srv_out *out)
{
    if (!s->auth_busy)
        return;
    s->auth_busy = false;
    auth_clear(s);
    reply(s, out, 454, "4.7.0", "Temporary authentication failure");
}

/* ---- ETRN (RFC 1985): start the queue for a domain; TURN stays refused ---- */

static bool offered_etrn(struct smtp_server *s, struct srv_out *out)
{
    if (!s->etrn_ok) {
        error_reply(s, out, 502, "5.5.1", "Error: command not implemented");
        return false;
    }
    return true;
}

static bool check_etrn(struct smtp_server *s, struct cmd_args *args, struct srv_out *out)
{
    size_t n = args->c->arglen;
    const char *a = args->c->arg;
    if (n > 0 && a[0] == '#') {
        /* queue names are not supported (RFC 1985 5.3) */
        reply(s, out, 458, "4.5.0", "Unable to queue messages for node %.*s", (int)n, a);
        return false;
    }
    bool sub = n > 0 && a[0] == '@';
    if (!smtp_domain_valid(a + sub, n - sub, false) || n - sub == 0 ||
        n >= sizeof s->etrn_arg) {
        syntax_error(s, args, out);
        return false;
    }
    return true;
}

static void run_etrn(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    str_ncopy(s->etrn_arg, sizeof s->etrn_arg, a->c->arg, a->c->arglen);
    out->act = SRV_ACT_ETRN;
}

void srv_etrn_done(struct smtp_server *s, size_t n, struct srv_out *out)
{
    s->errors = 0;
    if (n == 0)
        reply(s, out, 251, "2.0.0", "OK, no messages waiting for node %s", s->etrn_arg);
    else
        reply(s, out, 253, "2.0.0", "OK, %zu pending messages for node %s started", n,
            s->etrn_arg);
}

/* ---- the verbs with nothing to check ---- */

static void run_rset(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    (void)a;
    tx_reset(s);
    reply(s, out, 250, "2.0.0", "Ok");
}

static void run_noop(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    (void)a;
    reply(s, out, 250, "2.0.0", "Ok");
}

static void run_quit(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    (void)a;
    reply(s, out, 221, "2.0.0", "%s closing connection", s->conf->hostname);
    tx_reset(s);
    srv_set_state(s, SRV_CLOSED);
    out->act = SRV_ACT_CLOSE;
}

/* RFC 821 verbs that RFC 5321 dropped; TURN is unsafe over TCP (RFC 2821 4.1.1.10). */
static void run_not_implemented(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    (void)a;
    error_reply(s, out, 502, "5.5.1", "Error: command not implemented");
}

static void run_http(struct smtp_server *s, struct cmd_args *a, struct srv_out *out)
{
    (void)a;
    reply(s, out, 421, "4.7.0", "%s Error: this is an SMTP server, not HTTP",
        s->conf->hostname);
    srv_set_state(s, SRV_CLOSED);
    out->act = SRV_ACT_CLOSE;
}

/* ---- the command table and the dispatch ---- */

#define CF_ADDR (CF_PARAMS | CF_8BIT)   /* MAIL, RCPT: a path and ESMTP parameters */

static const struct cmd cmds[] = {
    /*                   name        usage            flags, offered, check, run */
    [SMTP_VERB_HELO] = { "HELO",     "HELO hostname", 0, NULL, check_helo, run_helo },
    [SMTP_VERB_EHLO] = { "EHLO",     "EHLO hostname", 0, NULL, check_helo, run_helo },
    [SMTP_VERB_MAIL] = { "MAIL",     NULL, CF_HELO | CF_NOTX | CF_AUTH | CF_ADDR,
                         NULL, check_mail, run_mail },
    [SMTP_VERB_RCPT] = { "RCPT",     NULL, CF_HELO | CF_TX | CF_ADDR,
                         NULL, check_rcpt, run_rcpt },
    [SMTP_VERB_DATA] = { "DATA",     "DATA", CF_NOARG | CF_HELO | CF_TX | CF_RCPT,
                         NULL, check_data, run_data },
    [SMTP_VERB_BDAT] = { "BDAT",     "BDAT size [LAST]",
                         CF_HELO | CF_EHLO | CF_TX | CF_RCPT | CF_CHUNK,
                         NULL, check_bdat, run_bdat },
    [SMTP_VERB_RSET] = { "RSET",     "RSET", CF_NOARG, NULL, NULL, run_rset },
    [SMTP_VERB_NOOP] = { "NOOP",     NULL, 0, NULL, NULL, run_noop },
    [SMTP_VERB_QUIT] = { "QUIT",     NULL, 0, NULL, NULL, run_quit },
    [SMTP_VERB_VRFY] = { "VRFY",     "VRFY address", CF_NEEDARG, NULL, NULL, run_vrfy },
    [SMTP_VERB_EXPN] = { "EXPN",     "EXPN name", CF_NEEDARG, offered_expn, NULL, run_expn },
    [SMTP_VERB_HELP] = { "HELP",     NULL, 0, NULL, NULL, run_help },
    [SMTP_VERB_SEND] = { "SEND",     NULL, 0, NULL, NULL, run_not_implemented },
    [SMTP_VERB_SOML] = { "SOML",     NULL, 0, NULL, NULL, run_not_implemented },
    [SMTP_VERB_SAML] = { "SAML",     NULL, 0, NULL, NULL, run_not_implemented },
    [SMTP_VERB_TURN] = { "TURN",     NULL, 0, NULL, NULL, run_not_implemented },
    [SMTP_VERB_STARTTLS] = { "STARTTLS", "STARTTLS", CF_NOARG,
                         NULL, check_starttls, run_starttls },
    [SMTP_VERB_AUTH] = { "AUTH",     "AUTH mechanism [initial-response]",
                         CF_EHLO | CF_NOAUTHED | CF_NOTX | CF_AUTHLINE,
                         offered_auth, check_auth, run_auth },
    [SMTP_VERB_ETRN] = { "ETRN",     "ETRN domain", CF_HELO | CF_NOTX,
                         offered_etrn, check_etrn, run_etrn },
    [SMTP_VERB_HTTP] = { "HTTP",     NULL, 0, NULL, NULL, run_http },
};

/* The table entry of a verb, or NULL for one we do not know. */
static const struct cmd *cmd_find(enum smtp_verb v)
{
    if ((size_t)v >= sizeof cmds / sizeof cmds[0] || cmds[v].run == NULL)
        return NULL;
    return &cmds[v];
}

/*
 * The state preconditions of every command, in one place: true when the flags allow it
 * now, else false after the 503 5.5.1 reply (which counts as an error).
 */
static bool cmd_allowed(struct smtp_server *s, const struct cmd *cmd, struct srv_out *out)
{
    unsigned f = cmd->flags;
    const char *why = NULL;
    bool named = false;         /* the reply starts with the verb: "Error: BDAT requires ..." */
    if ((f & CF_HELO) && s->state == SRV_INIT) {
        why = "send HELO/EHLO first";
    } else if ((f & CF_EHLO) && !s->esmtp) {
        /* Past HELO, say which verb HELO does not allow; else ask for EHLO. */
        named = f & CF_HELO;
        why = named ? " requires EHLO" : "send EHLO first";
    } else if ((f & CF_NOAUTHED) && s->auth_user[0]) {
        why = "already authenticated";
    } else if ((f & CF_NOTX) && s->tx) {
        /* A second MAIL is "nested", the wording clients have always seen. */
        named = cmd != &cmds[SMTP_VERB_MAIL];
        why = named ? " not allowed during a mail transaction" : "nested MAIL command";
    } else if ((f & CF_TX) && s->tx == NULL) {
        why = "need MAIL command";
    } else if ((f & CF_RCPT) && s->tx->nrcpt == 0) {
        why = "need RCPT command";
    }
    if (why == NULL)
        return true;
    reply(s, out, 503, "5.5.1", "Error: %s%s", named ? cmd->name : "", why);
    count_error(s, out);
    return false;
}

/*
 * Run one command through its table entry: offered? then the argument count, then the
 * state preconditions, then the verb's check, then (submission) AUTH, then the verb.
 */
static void cmd_dispatch(struct smtp_server *s, const struct cmd *cmd, const struct smtp_cmd *c,
    struct srv_out *out)
{
    struct cmd_args a;
    a.cmd = cmd;
    a.c = c;
    if (cmd->offered && !cmd->offered(s, out))
        return;
    bool empty = arg_empty(c->arg, c->arglen);
    if (((cmd->flags & CF_NOARG) && !empty) || ((cmd->flags & CF_NEEDARG) && empty)) {
        syntax_error(s, &a, out);
        return;
    }
    if (cmd->flags & CF_CHUNK) {
        /* The check learns the chunk's size first: a refused chunk is still read, to stay
         * in step with the client. */
        if (!cmd->check(s, &a, out))
            return;
        if (!cmd_allowed(s, cmd, out)) {
            chunk_skip(s, a.u.chunk.size);
            return;
        }
    } else {
        if (!cmd_allowed(s, cmd, out))
            return;
        if (cmd->check && !cmd->check(s, &a, out))
            return;
    }
    /* After the arguments, so that a malformed command hears what is wrong with it. */
    if ((cmd->flags & CF_AUTH) && s->require_auth && !s->auth_user[0]) {
        error_reply(s, out, 530, "5.7.0", "Authentication required");
        return;
    }
    cmd->run(s, &a, out);
}

void srv_feed_line(struct smtp_server *s, const char *line, size_t len, struct srv_out *out)
{
    if (s->state == SRV_CLOSED)
        return;
    if (s->auth_step != AUTH_STEP_NONE) {
        auth_response(s, line, len, out);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (line[i] == '\0' || line[i] == '\r') {
            error_reply(s, out, 500, "5.5.2", line[i] == '\0' ?
                "Error: NUL character in command" : "Error: bare CR in command");
            return;
        }
    }
    struct smtp_cmd c;
    smtp_parse_cmd(line, len, &c);
    const struct cmd *cmd = cmd_find(c.verb);
    unsigned f = cmd ? cmd->flags : 0;
    /* RFC 5321 4.5.3.1.4: 512 octets with CRLF; MAIL and RCPT may carry extension
     * parameters (RFC 5321 4.1.2), which we allow up to SMTP_CMDLINE_EXT_MAX. */
    size_t max = (f & CF_PARAMS) ? SMTP_CMDLINE_EXT_MAX :
        (f & CF_AUTHLINE) ? SMTP_AUTHLINE_MAX : SMTP_CMDLINE_MAX;
    if (len + 2 > max) {
        error_reply(s, out, 500, "5.5.2", "Error: line too long");
        return;
    }
    /* Without SMTPUTF8 only ASCII is allowed on command lines (RFC 5321 2.4); the MAIL and
     * RCPT parsers give the precise 553 5.6.7 for addresses. */
    if (!(f & CF_8BIT) && !(s->tx && s->tx->smtputf8)) {
        for (size_t i = 0; i < len; i++) {
            if ((unsigned char)line[i] >= 0x80) {
                error_reply(s, out, 500, "5.5.2", "Error: 8-bit characters in command");
                return;
            }
        }
    }
    if (cmd == NULL) {
        error_reply(s, out, 500, "5.5.1", "Error: command not recognized");
        return;
    }
    cmd_dispatch(s, cmd, &c, out);
}

void srv_line_too_long(struct smtp_server *s, struct srv_out *out)
{
    if (s->state == SRV_CLOSED)
        return;
    error_reply(s, out, 500, "5.5.2", "Error: line too long");
}

void srv_bare_lf(struct smtp_server *s, struct srv_out *out)
{
    if (s->state == SRV_CLOSED)
        return;
    error_reply(s, out, 500, "5.5.2", "Error: bare LF in command; lines must end with CRLF");
}

void srv_commit_done(struct smtp_server *s, int result, struct srv_out *out)
{
    if (s->state != SRV_COMMIT)
        return;
    char id[sizeof s->tx->id];
    str_copy(id, sizeof id, s->tx->id);
    tx_reset(s);
    switch (result) {
    case SRV_COMMIT_OK:
        s->errors = 0;
        reply(s, out, 250, "2.0.0", "Ok: queued as %s", id);
        break;
    case SRV_COMMIT_NOSPACE:
        reply(s, out, 452, "4.3.1", "Error: insufficient system storage");
        break;
    default:
        reply(s, out, 451, "4.3.0", "Error: local error in processing");
        break;
    }
}

void srv_timeout(struct smtp_server *s, struct srv_out *out)
{
    reply(s, out, 421, "4.4.2", "%s Error: timeout exceeded", s->conf->hostname);
    srv_set_state(s, SRV_CLOSED);
    out->act = SRV_ACT_CLOSE;
}

void srv_shutdown(struct smtp_server *s, struct srv_out *out)
{
    reply(s, out, 421, "4.3.2", "%s Service shutting down, closing connection",
        s->conf->hostname);
    srv_set_state(s, SRV_CLOSED);
    out->act = SRV_ACT_CLOSE;
}

void srv_content_store_failed(struct smtp_server *s)
{
    if (s->tx == NULL)
        return;
    /* OVERSIZE stops buffering the rest; store_failed makes the end-of-data reply 452 */
    s->tx->dr.flags |= DATA_F_OVERSIZE;
    s->tx->store_failed = true;
}

size_t srv_take_body(struct smtp_server *s, struct buf *b)
{
    struct srv_tx *t = s->tx;
    if (t == NULL)
        return 0;
    /* swap the buffers: no copy */
    struct buf tmp = *b;
    *b = t->body;
    t->body = tmp;
    t->body.max = b->max;
    buf_reset(&t->body);
    t->spilled += b->len;
    return b->len;
}

void srv_refuse_talker(struct smtp_server *s, struct srv_out *out)
{
    buf_printf(out->replies, "554 5.5.0 %s Error: talking before the greeting\r\n",
        s->conf->hostname);
    srv_set_state(s, SRV_CLOSED);
    out->act = SRV_ACT_CLOSE;
}

void srv_refusal(const struct conf *conf, enum srv_refusal why, const char *ip, struct buf *b)
{
    switch (why) {
    case SRV_REFUSE_SHUTDOWN:
        buf_printf(b, "421 4.3.2 %s Service shutting down\r\n", conf->hostname);
        break;
    case SRV_REFUSE_BUSY:
        buf_printf(b, "421 4.7.0 %s Error: too many connections\r\n", conf->hostname);
        break;
    case SRV_REFUSE_PER_IP:
        buf_printf(b, "421 4.7.0 %s Error: too many connections from %s\r\n",
            conf->hostname, ip);
        break;
    }
}

enum srv_input srv_input_mode(const struct smtp_server *s)
{
    if (s->auth_busy)
        return SRV_IN_WAIT;
    switch (s->state) {
    case SRV_DATA:
        return SRV_IN_DATA;
    case SRV_BDAT:
        return SRV_IN_BDAT;
    case SRV_COMMIT:
        return SRV_IN_WAIT;
    case SRV_CLOSED:
        return SRV_IN_NONE;
    default:
        return SRV_IN_LINE;
    }
}
