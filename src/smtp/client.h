/*
 * smtp/client.h - sender-SMTP session state machine (RFC 5321; RFC 2920 client side,
 * RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3461 DSN, RFC 6531 SMTPUTF8, RFC 3207 STARTTLS,
 * RFC 4954 AUTH with PLAIN and LOGIN).
 *
 * Owns:  the command sequence of one connection to one server (greeting, EHLO/HELO,
 *        then MAIL/RCPT/DATA for one message after another, QUIT), the extensions the
 *        server offered, and the per-recipient outcome of the current message.
 * Never: touches sockets, clocks, DNS, TLS libraries or the spool. The driver connects,
 *        reads replies (smtp/reply.h), enforces the timeouts from cli_timeout(), writes the
 *        bytes and the message content, runs the TLS handshake, and carries out the actions
 *        in struct cli_out.
 * Limits: replies are bounded by smtp/reply.h; commands carry the caller's addresses as
 *        given (no CR, LF or other control octet ever reaches a command).
 *
 * A session, as the driver sees it:
 *   cli_init(); [cli_set_tls()] [cli_set_auth()]
 *   cli_start(m1)                         connect; feed each complete reply to cli_reply()
 *   ... CLI_ACT_STARTTLS                  drop unread input, handshake, then cli_tls_done()
 *   ... CLI_ACT_SEND_BODY                 send m1's content, then cli_body_sent()
 *   ... CLI_ACT_MSG_DONE | CLI_ACT_READY  read cli_results(); then cli_next(m2) or cli_quit()
 *   ... CLI_ACT_CLOSE                     close; cli_free()
 * Socket trouble goes to cli_fail().
 */
#ifndef POSTEL_SMTP_CLIENT_H
#define POSTEL_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/limits.h"
#include "smtp/reply.h"
#include "util/buf.h"

/* Seconds to wait for each reply (RFC 5321 4.5.3.2); the driver enforces them. */
#define CLI_TIMEOUT_GREETING   300
#define CLI_TIMEOUT_HELO       300
#define CLI_TIMEOUT_MAIL       300
#define CLI_TIMEOUT_RCPT       300
#define CLI_TIMEOUT_DATA_INIT  120
#define CLI_TIMEOUT_DATA_BLOCK 180     /* per write of message content */
#define CLI_TIMEOUT_DATA_END   600
#define CLI_TIMEOUT_OTHER      300     /* RSET, QUIT, STARTTLS, AUTH */
#define CLI_TIMEOUT_TLS        300     /* the whole TLS handshake (CLI_S_TLS) */

/* The longest user name or password cli_set_auth() takes (RFC 4616 2: 255 octets). */
#define CLI_AUTH_MAX 255

/*
 * TLS policy for one destination (cli_set_tls()). STARTTLS is sent only when the server
 * offers it in EHLO; ENCRYPT and VERIFY defer the message (TEMP, when_connecting) when it
 * is not offered, is refused or the handshake fails. The machine treats VERIFY as ENCRYPT:
 * checking the certificate chain and the name is the driver's part of the handshake.
 */
enum cli_tls {
    CLI_TLS_NONE,               /* never STARTTLS */
    CLI_TLS_MAY,                /* opportunistic: plaintext when not offered or refused */
    CLI_TLS_ENCRYPT,            /* TLS required, any certificate */
    CLI_TLS_VERIFY              /* TLS required; the driver verifies chain and MX name */
};

/* One message to send; owned by the caller and kept valid until its CLI_ACT_MSG_DONE. */
struct cli_msg {
    const char *sender;         /* reverse-path without <>; "" for <> */
    const char *const *rcpts;   /* envelope recipients, without <> */
    const unsigned *notify;     /* per recipient SMTP_NOTIFY_* bits or 0; may be NULL */
    const char *const *orcpt;   /* per recipient "type;address" or NULL; may be NULL. The
                                   address is decoded (xtext is applied here), except for
                                   type utf-8 (RFC 6533), which is sent as given */
    size_t nrcpt;
    unsigned long long size;    /* content size in octets, declared with SIZE= */
    unsigned long long size7bit;    /* the size once converted to 7 bit (cli_needs_7bit()),
                                       declared instead when known; 0: unknown, use size */
    bool eightbit;              /* the content has 8-bit octets */
    bool body7bit;              /* declare BODY=7BIT (when 8BITMIME is offered and the
                                   content is not eightbit): the submitter asked for it */
    bool smtputf8;              /* the envelope or headers need SMTPUTF8 */
    int ret;                    /* enum smtp_ret */
    const char *envid;          /* RFC 3461 ENVID, decoded, or NULL */
};

/* What the server offered in its EHLO reply; all false after HELO. */
struct cli_ext {
    bool esmtp;                 /* EHLO was accepted */
    bool pipelining, size, eightbitmime, dsn, smtputf8, starttls, enhanced;
    bool auth;                  /* AUTH (or the old AUTH=) was offered, with any mechanisms */
    bool auth_plain, auth_login;    /* ... among them PLAIN, LOGIN */
    unsigned long long size_max;    /* SIZE's argument; 0: none announced */
};

/*
 * Actions, as bits in cli_out.acts. The driver handles them in this order:
 * MSG_DONE (read cli_results()), SEND (write out->send; SECRET says how to trace it), then
 * at most one of SEND_BODY, READY, STARTTLS and CLOSE.
 */
enum cli_act {
    CLI_ACT_NONE      = 0,
    CLI_ACT_SEND      = 1u << 0,    /* bytes were appended to out->send */
    CLI_ACT_SEND_BODY = 1u << 1,    /* send the content now: dot-stuffed, LF -> CRLF, then
                                       ".\r\n"; converted to 7 bit if cli_needs_7bit();
                                       then call cli_body_sent() */
    CLI_ACT_MSG_DONE  = 1u << 2,    /* the current message's results are final */
    CLI_ACT_READY     = 1u << 3,    /* idle: call cli_next() or cli_quit() */
    CLI_ACT_CLOSE     = 1u << 4,    /* close the connection (after writing out->send) */
    CLI_ACT_STARTTLS  = 1u << 5,    /* the server said 220 to STARTTLS: discard every byte
                                       already received after that reply (and reset the
                                       reply parser), run the TLS handshake, then call
                                       cli_tls_done(); nothing is read or written in
                                       plaintext meanwhile */
    CLI_ACT_SECRET    = 1u << 6     /* with SEND: out->send holds credentials (an AUTH
                                       command or response). Write it, but never log or
                                       trace those bytes; trace "AUTH <mech>" or "***" */
};

/* The result of one call. */
struct cli_out {
    struct buf *send;           /* commands are appended here, CRLF-terminated; the driver
                                   owns it and writes it out */
    unsigned acts;              /* CLI_ACT_* bits; set (not or-ed) by every call */
};

/* Driver-side failures, for cli_fail(). */
enum cli_fail {
    CLI_FAIL_CONNECT,           /* connection refused, unreachable or timed out */
    CLI_FAIL_TIMEOUT,           /* no reply within cli_timeout(), or a write timed out */
    CLI_FAIL_CLOSED,            /* the server closed the connection, or a read/write error */
    CLI_FAIL_PROTOCOL,          /* reply_parse() failed; detail: the parser's err */
    CLI_FAIL_LOCAL              /* our side failed (e.g. the content could not be read) */
};

enum cli_rkind { CLI_R_OK, CLI_R_TEMP, CLI_R_PERM };

/* Where a result was decided: the command it answers, or LOCAL (nothing was sent, or our
 * own configuration is at fault). STARTTLS also covers the handshake and "TLS required but
 * not offered". Everything up to and including AUTH is connection setup (when_connecting). */
enum cli_stage {
    CLI_STAGE_CONNECT, CLI_STAGE_GREETING, CLI_STAGE_HELO, CLI_STAGE_STARTTLS, CLI_STAGE_AUTH,
    CLI_STAGE_RSET, CLI_STAGE_MAIL, CLI_STAGE_RCPT, CLI_STAGE_DATA, CLI_STAGE_BODY,
    CLI_STAGE_DOT, CLI_STAGE_LOCAL
};

/* The outcome for one recipient of the current message. */
struct cli_result {
    enum cli_rkind kind;
    char reply[520];            /* the server's reply (reply_format()) or our own reason */
    char status[16];            /* RFC 3463 code: the server's enhanced code when it gave one,
                                   else 2.0.0/4.0.0/5.0.0 from the basic code, or ours */
    enum cli_stage stage;
    bool when_connecting;       /* decided before any MAIL for this host: connect, greeting,
                                   EHLO/HELO, STARTTLS/TLS or AUTH; the caller may try the
                                   next MX */
};

enum cli_state {
    CLI_S_INIT,         /* cli_start() not called yet */
    CLI_S_GREETING,     /* waiting for the greeting */
    CLI_S_EHLO,         /* EHLO sent */
    CLI_S_HELO,         /* HELO sent (EHLO was refused) */
    CLI_S_STARTTLS,     /* STARTTLS sent */
    CLI_S_TLS,          /* the driver is running the TLS handshake */
    CLI_S_AUTH,         /* AUTH (or a response to its 334) sent */
    CLI_S_READY,        /* between messages */
    CLI_S_RSET,         /* RSET sent before the next message */
    CLI_S_MAIL,         /* waiting for the MAIL reply */
    CLI_S_RCPT,         /* waiting for RCPT replies */
    CLI_S_DATA,         /* waiting for the DATA reply (354) */
    CLI_S_BODY,         /* the driver is sending the content */
    CLI_S_DOT,          /* waiting for the end-of-data reply */
    CLI_S_QUIT,         /* QUIT sent; any reply or close ends the session */
    CLI_S_CLOSED        /* done: the connection is to be closed */
};

struct smtp_client {
    enum cli_state state;
    char helo[SMTP_DOMAIN_MAX + 1];
    struct cli_ext ext;         /* read-only for the driver */
    const struct cli_msg *msg;  /* the current message (the caller's) or NULL */
    struct cli_result *res;     /* per recipient of msg */
    unsigned char *rst;         /* per recipient: internal progress (client.c) */
    size_t nres;
    size_t ri;                  /* next recipient whose RCPT reply is due */
    size_t rcpt_due;            /* RCPT replies still to come */
    size_t naccepted;           /* recipients accepted by RCPT, awaiting the DATA outcome */
    bool mail_failed;           /* MAIL refused under PIPELINING: replies only consumed */
    bool ignore_dot;            /* nobody accepted but DATA got 354: end-of-data ignored */
    bool need_7bit;
    bool need_rset;             /* a transaction may still be open on the server */
    bool msg_open;              /* the current message's results are not final */
    /* TLS and AUTH (cli_set_tls(), cli_set_auth()) */
    enum cli_tls tls_policy;
    bool tls_available;         /* the driver can do TLS at all */
    bool tls;                   /* the session is in TLS (read-only for the driver) */
    bool auth_set;              /* cli_set_auth() was called (maybe with bad credentials) */
    bool auth_bad;              /* ... and refused them: the session defers, 4.3.5 */
    bool auth_plaintext;        /* credentials may go without TLS (tests, loopback) */
    bool authed;                /* AUTH succeeded (read-only for the driver) */
    bool auth_login;            /* the mechanism in use: LOGIN, else PLAIN */
    unsigned auth_sent;         /* responses sent for the mechanism so far */
    char auth_user[CLI_AUTH_MAX + 1], auth_pass[CLI_AUTH_MAX + 1];  /* wiped by cli_free() */
};

/* Initialise a session that introduces itself as helo_name (CR, LF, SP and other
 * controls are dropped from it). Allocates nothing. */
void cli_init(struct smtp_client *c, const char *helo_name);

/* Free what the session owns (the results) and wipe the credentials. The caller's message
 * is not touched. */
void cli_free(struct smtp_client *c);

/*
 * Set the TLS policy for this connection; only between cli_init() and cli_start() (the
 * default is CLI_TLS_NONE). tls_available: the driver can run a TLS client here; without
 * it MAY acts as NONE, and ENCRYPT/VERIFY defer every recipient (TEMP 4.7.4, stage LOCAL,
 * so no other MX is tried for our own lack) after EHLO, with QUIT.
 */
void cli_set_tls(struct smtp_client *c, enum cli_tls policy, bool tls_available);

/*
 * Authenticate with user and pass (copied; wiped by cli_free(); never put in a result)
 * after the EHLO, before the first MAIL; only between cli_init() and cli_start().
 * Credentials go only over TLS unless allow_plaintext (tests, loopback). A server that does
 * not offer AUTH at all is used unauthenticated (it may relay by address); one that offers
 * AUTH but neither PLAIN nor LOGIN defers every recipient (TEMP 4.7.0).
 * Returns 0, or -1 with errno EINVAL when user or pass is empty, longer than CLI_AUTH_MAX
 * or holds a CR or LF; the session then defers every recipient (TEMP 4.3.5, stage LOCAL)
 * rather than going on unauthenticated.
 */
int cli_set_auth(struct smtp_client *c, const char *user, const char *pass,
    bool allow_plaintext);

/*
 * Begin the session with its first message m (kept by pointer). Call it when the
 * connection attempt starts or completes; nothing is sent yet (out->acts is NONE). The next
 * reply fed is the greeting; a failed connect is reported with cli_fail(CLI_FAIL_CONNECT).
 */
void cli_start(struct smtp_client *c, const struct cli_msg *m, struct cli_out *out);

/*
 * Feed one complete server reply (from reply_parse()). r stays the caller's. Replies that
 * are not expected in the current state are a protocol error: the pending recipients become
 * TEMP and the session closes. Any 421 (RFC 5321 3.8) does the same with its own text.
 */
void cli_reply(struct smtp_client *c, const struct smtp_reply *r, struct cli_out *out);

/* The driver has written the whole content and the final ".\r\n" after CLI_ACT_SEND_BODY. */
void cli_body_sent(struct smtp_client *c, struct cli_out *out);

/*
 * The TLS handshake after CLI_ACT_STARTTLS is over; only in CLI_S_TLS. ok: the session is
 * now in TLS (c->tls); what the server said in the first EHLO is forgotten and EHLO is sent
 * again (RFC 3207 4.2). !ok (the handshake failed or timed out, or, for CLI_TLS_VERIFY,
 * the certificate did not verify; detail, may be NULL, says why): every recipient becomes
 * TEMP 4.7.5 "TLS handshake failed: detail" with stage STARTTLS (when_connecting, so the
 * next MX is tried; MAY too: no plaintext retry on this host), the message is done and the
 * connection is closed at once, without QUIT.
 */
void cli_tls_done(struct smtp_client *c, bool ok, const char *detail, struct cli_out *out);

/*
 * Send the next message m over this connection; only after CLI_ACT_READY. The previous
 * results are freed. An RSET goes first when the last transaction was left open (nobody
 * accepted, or DATA refused); after a completed transaction none is needed.
 */
void cli_next(struct smtp_client *c, const struct cli_msg *m, struct cli_out *out);

/* End the session politely: QUIT, then CLI_ACT_CLOSE on its reply. Only after
 * CLI_ACT_READY; in QUIT or CLOSED it only asks to close. */
void cli_quit(struct smtp_client *c, struct cli_out *out);

/*
 * A driver-side failure; detail (may be NULL) is a short reason such as strerror() or the
 * parser's err. Every recipient of the current message without a final result becomes
 * TEMP, the message is done (CLI_ACT_MSG_DONE, when one was open) and the session closes
 * (CLI_ACT_CLOSE). After QUIT was sent this is just the end of the session.
 */
void cli_fail(struct smtp_client *c, enum cli_fail why, const char *detail,
    struct cli_out *out);

/* Seconds to wait in the current state (CLI_TIMEOUT_*): for the next reply, for each
 * write of content in CLI_S_BODY, or for the whole handshake in CLI_S_TLS. 0: nothing is
 * awaited (before cli_start(), READY, CLOSED); idle connections are the driver's business. */
unsigned cli_timeout(const struct smtp_client *c);

/*
 * Whether the current message must be sent converted to 7 bit: it has 8-bit content and
 * the server did not offer 8BITMIME (or only HELO worked). Known from the MAIL command on
 * (MAIL then carries no BODY=); the driver checks it at CLI_ACT_SEND_BODY.
 */
bool cli_needs_7bit(const struct smtp_client *c);

/* Whether the session is in TLS (after cli_tls_done(ok)). */
bool cli_in_tls(const struct smtp_client *c);

/* The per-recipient results of the current message, in the order of m->rcpts; *n gets the
 * count. Final only after CLI_ACT_MSG_DONE; valid until cli_next() or cli_free(). */
const struct cli_result *cli_results(const struct smtp_client *c, size_t *n);

/*
 * The SIZE= value (RFC 1870 4) of n octets of text with LF line ends, as cli_body_put()
 * sends it: every LF counts as CRLF and a last line without one gets one; neither the
 * dot-stuffing nor the final ".\r\n" counts. Set cli_msg.size (and size7bit) with it.
 */
unsigned long long cli_body_size(const char *text, size_t n);

/*
 * Append text (n octets, LF line ends) to out as DATA content for CLI_ACT_SEND_BODY:
 * every line ends in CRLF (a last line without an LF gets one), a line starting with "."
 * gets another one (RFC 5321 4.5.2), then the final ".\r\n". Returns 0, or -1 when out
 * is over its cap (out then holds part of it).
 */
int cli_body_put(const char *text, size_t n, struct buf *out);

#endif
