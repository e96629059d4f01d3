/*
 * smtp/server.h - receiver-SMTP session state machine (RFC 5321 and extensions).
 *
 * Owns:  command order, the open transaction (struct srv_tx), reply text, the DATA/BDAT
 *        reader state.
 * Never: reads sockets, looks at clocks, or touches the spool; the I/O driver feeds it
 *        complete lines or content bytes and carries out the actions it returns.
 * Limits: smtp/limits.h; per-message limits from struct conf.
 */
#ifndef POSTEL_SMTP_SERVER_H
#define POSTEL_SMTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "smtp/data.h"
#include "smtp/parse.h"
#include "util/buf.h"

struct conf;

enum srv_state {
    SRV_INIT,       /* greeting sent, no HELO/EHLO yet */
    SRV_READY,      /* HELO/EHLO done, no transaction */
    SRV_MAIL,       /* MAIL accepted */
    SRV_RCPT,       /* at least one RCPT accepted */
    SRV_DATA,       /* reading DATA content */
    SRV_BDAT,       /* reading a BDAT chunk */
    SRV_COMMIT,     /* waiting for the spool to commit */
    SRV_CLOSED      /* QUIT or a fatal error: close after flushing replies */
};

/* What the driver must do after a feed call, besides sending the replies. */
enum srv_act {
    SRV_ACT_NONE,
    SRV_ACT_COMMIT,     /* content complete: commit tx (srv_tx_body) then srv_commit_done() */
    SRV_ACT_ABORT,      /* the tx was rejected after content was spooled: discard the file */
    SRV_ACT_CLOSE,      /* flush the replies, then close the connection */
    SRV_ACT_STARTTLS,   /* flush the 220, discard unread input, handshake, srv_tls_done() */
    SRV_ACT_AUTH,       /* check auth_try_user/auth_try_pass, then srv_auth_done() */
    SRV_ACT_ETRN        /* start the queue for etrn_arg, then srv_etrn_done() */
};

/* What the driver should read next. */
enum srv_input { SRV_IN_LINE, SRV_IN_DATA, SRV_IN_BDAT, SRV_IN_WAIT, SRV_IN_NONE };

struct srv_rcpt {
    char *addr;                 /* canonical mailbox text (path.addr) */
    bool local;                 /* in one of our domains (or bare postmaster) */
    unsigned notify;            /* SMTP_NOTIFY_* or 0 */
    char *orcpt;                /* "type;decoded-address" or NULL */
};

struct srv_tx {
    char id[24];                /* queue id, assigned at DATA/first BDAT */
    char *sender;               /* "" for the null reverse-path */
    unsigned long long declared_size;
    enum smtp_body body_type;
    enum smtp_ret ret;
    char *envid;                /* decoded, or NULL */
    bool smtputf8;
    struct srv_rcpt *rcpts;
    size_t nrcpt, rcpt_cap;
    bool bdat;                  /* content came by BDAT */
    bool bdat_last;
    unsigned long long bdat_left;   /* bytes left in the current chunk */
    unsigned long long bdat_total;  /* BDAT octets received so far (all chunks) */
    struct data_reader dr;
    struct buf body;            /* content not yet handed to the spool (LF line ends) */
    unsigned long long spilled; /* octets already handed to the spool */
    bool store_failed;          /* the spool could not store content (disk full): 452 */
    time_t arrival;
};

/* Facts the driver knows about the connection and the world. */
struct srv_env {
    void *ctx;
    /* May the authenticated user send as sender? NULL: anyone may use any sender. */
    bool (*sender_ok)(void *ctx, const char *user, const char *sender);
    /* Write a fresh queue id (letters and digits) into id (size idsz). */
    void (*new_id)(void *ctx, char *id, size_t idsz);
    /* Current time. */
    time_t (*now)(void *ctx);
};

struct smtp_server {
    enum srv_state state;
    const struct conf *conf;
    const struct srv_env *env;
    bool esmtp;                 /* EHLO seen: enhanced codes and extensions in effect */
    bool relay_ok;              /* client may relay (relay_networks or, later, AUTH) */
    bool tls;                   /* the session is encrypted */
    char tls_info[128];         /* "TLSv1.3 with cipher ..." for Received */
    bool tls_offer;             /* STARTTLS may be offered (a context exists, not yet TLS) */
    bool auth_offer;            /* an AUTH password database exists */
    bool auth_plaintext;        /* AUTH allowed without TLS (loopback, by configuration) */
    bool require_auth;          /* submission: MAIL needs AUTH first */
    char auth_user[256];        /* authenticated user, or "" */
    int auth_step;              /* AUTH exchange in progress (server.c) */
    bool auth_busy;             /* waiting for the driver's password check */
    char auth_try_user[256];    /* credentials to check (cleared after) */
    char auth_try_pass[1025];
    bool relay_by_net;          /* relay_ok came from relay_networks */
    bool etrn_ok;               /* the client may use ETRN (RFC 1985) */
    char etrn_arg[SMTP_DOMAIN_MAX + 2];  /* "example.org" or "@example.org" */
    char helo[SMTP_DOMAIN_MAX + 1];
    char client_addr[64];       /* numeric address of the peer */
    char local_user[96];        /* local submission: "name (uid N)"; "" for network peers */
    size_t errors;              /* errors in a row */
    struct srv_tx *tx;          /* open transaction or NULL */
};

/* Per-feed output: replies to send (CRLF-terminated) and one action. */
struct srv_out {
    struct buf *replies;
    enum srv_act act;
};

/* Initialise a session for a peer; client_addr is its numeric address. */
void srv_init(struct smtp_server *s, const struct conf *conf, const struct srv_env *env,
    const char *client_addr, bool relay_ok);
/* Free everything the session owns. */
void srv_free(struct smtp_server *s);
/* Append the 220 greeting. */
void srv_greet(struct smtp_server *s, struct srv_out *out);
/* Feed one command line without its CRLF (may contain any octet). */
void srv_feed_line(struct smtp_server *s, const char *line, size_t len, struct srv_out *out);
/* The driver saw a command line longer than it accepts (the rest is being discarded). */
void srv_line_too_long(struct smtp_server *s, struct srv_out *out);
/* The driver saw a bare LF ending a command line. */
void srv_bare_lf(struct smtp_server *s, struct srv_out *out);
/*
 * Feed content bytes in SRV_IN_DATA or SRV_IN_BDAT. Returns how many were consumed; in DATA
 * mode the bytes after the end-of-data mark are left for srv_feed_line (pipelining).
 */
size_t srv_feed_data(struct smtp_server *s, const char *in, size_t n, struct srv_out *out);
/* Bytes left in the current BDAT chunk (for SRV_IN_BDAT). */
unsigned long long srv_bdat_left(const struct smtp_server *s);
/* The spool finished a commit: ok, or err_disk_full / other failure. Appends the reply. */
void srv_commit_done(struct smtp_server *s, int result, struct srv_out *out);
/* Result codes for srv_commit_done. */
enum { SRV_COMMIT_OK = 0, SRV_COMMIT_NOSPACE = 1, SRV_COMMIT_FAIL = 2 };
/* The TLS handshake after STARTTLS finished: ok, and info for Received ("TLSv1.3 ..."). A
 * failed handshake closes the session (the driver just drops it). The session starts
 * over: the client must say EHLO again (RFC 3207 4.2). */
void srv_tls_done(struct smtp_server *s, const char *info);
/* Implicit TLS (port 465): the session is encrypted from the start. */
void srv_tls_implicit(struct smtp_server *s, const char *info);
/* The password check after SRV_ACT_AUTH: ok, or refused; locked: the client address is
 * locked out for failing too often (421 and close). Appends the reply. */
void srv_auth_done(struct smtp_server *s, bool ok, bool locked, struct srv_out *out);
/* The password check after SRV_ACT_AUTH could not run now (too many checks in progress or
 * queued): 454 4.7.0 (RFC 4954 6); the session goes on and the client may try again later.
 * Not counted as a client error. Appends the reply. */
void srv_auth_tempfail(struct smtp_server *s, struct srv_out *out);
/* The queue run that ETRN asked for started for n messages (RFC 1985 replies). */
void srv_etrn_done(struct smtp_server *s, size_t n, struct srv_out *out);
/* Timeout or shutdown: append the 421 reply and move to CLOSED. */
void srv_timeout(struct smtp_server *s, struct srv_out *out);
void srv_shutdown(struct smtp_server *s, struct srv_out *out);
/* The spool could not store content already handed to it (a failed write): the rest of
 * the content is read and dropped, and its end is answered 452 (4.3.1). */
void srv_content_store_failed(struct smtp_server *s);
/* Move the open transaction's buffered content into b (whose old contents are dropped) for
 * the spool, and count it as handed over (tx->spilled). The transaction keeps an empty
 * buffer with the same cap. Returns the number of octets moved (0 without a transaction). */
size_t srv_take_body(struct smtp_server *s, struct buf *b);
/* The client sent something before the greeting (RFC 5321 4.3.1): append the 554 reply,
 * move to CLOSED and ask to close. */
void srv_refuse_talker(struct smtp_server *s, struct srv_out *out);
/* Why a connection is refused before it has a session. */
enum srv_refusal {
    SRV_REFUSE_SHUTDOWN,    /* the server is shutting down */
    SRV_REFUSE_BUSY,        /* max_connections reached */
    SRV_REFUSE_PER_IP       /* max_connections_per_ip reached for ip */
};
/* Append the 421 reply that refuses a connection (hostname from conf; ip for PER_IP). */
void srv_refusal(const struct conf *conf, enum srv_refusal why, const char *ip, struct buf *b);
/* What to read next. */
enum srv_input srv_input_mode(const struct smtp_server *s);
/* The protocol name of the Received header ("ESMTPSA" ...). */
const char *srv_proto(const struct smtp_server *s);
/* Write the Received: header for the open tx into b (LF line ends). */
void srv_received(const struct smtp_server *s, struct buf *b);

#endif
