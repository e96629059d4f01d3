/*
 * net/conn.h - one network connection: buffered I/O, TLS, bounds, timeouts, state.
 *
 * Owns:  the socket, its one bufferevent (plaintext or TLS: a STARTTLS upgrade replaces the
 *        plaintext bufferevent with a TLS one on the same descriptor, so one input
 *        watermark and one output cap bound the whole connection), the SSL object, the
 *        read/write timeouts, and the connection's lifecycle state (enum conn_state),
 *        changed only by conn_set_state(), which traces old -> new at debug level.
 * Never: parses a protocol or decides what to say: its owner (the SMTP server driver, the
 *        SMTP client, the control socket) reads conn_input() and calls conn_write().
 * Limits: the input watermark (reading pauses when that much is unread) and the output cap
 *        given to conn_new()/conn_connect().
 */
#ifndef POSTEL_NET_CONN_H
#define POSTEL_NET_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct conn;
struct evbuffer;
struct event_base;
typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

/* Where a connection is in its life. Only conn_set_state() changes it. */
enum conn_state {
    CONN_OPEN,          /* reading and writing */
    CONN_CONNECTING,    /* client: the TCP connect is running */
    CONN_TLS_HANDSHAKE, /* a TLS handshake is running: input is held until it ends */
    CONN_WAIT_DRAIN,    /* STARTTLS (server): waiting for the reply to drain, then TLS */
    CONN_BUSY,          /* the owner has a worker job in flight: no reading */
    CONN_CLOSING,       /* flushing the last output, then CONN_EV_CLOSED */
    CONN_DEAD           /* the peer is gone while the owner is busy: free when it is done */
};

/* What conn_ops.on_event reports. An EOF, error or timeout during a handshake comes while
 * the state is still CONN_TLS_HANDSHAKE: that is how the owner tells a failed handshake
 * (conn_tls_error() says why). */
enum conn_event {
    CONN_EV_CONNECTED,      /* client: the TCP connect finished */
    CONN_EV_TLS,            /* the TLS handshake finished (conn_tls_info() describes it) */
    CONN_EV_EOF,            /* the peer closed its side (conn_eof() is true from now on) */
    CONN_EV_ERROR,          /* a socket error or reset (errno-style text: conn_error()) */
    CONN_EV_TIMEOUT_READ,   /* nothing came within the read timeout */
    CONN_EV_TIMEOUT_WRITE,  /* the peer did not take our output within the write timeout */
    CONN_EV_CLOSED          /* CONN_CLOSING: the output has drained; free the connection */
};

/* The owner's callbacks; arg is the one given to conn_new()/conn_connect(). */
struct conn_ops {
    /* Input is available in conn_input() (never during a TLS handshake). */
    void (*on_input)(struct conn *c, void *arg);
    /* The output drained (to empty, or below half the cap after conn_out_full() paused
     * reading: then reading is on again). */
    void (*on_drained)(struct conn *c, void *arg);
    /* Something happened (enum conn_event). */
    void (*on_event)(struct conn *c, enum conn_event ev, void *arg);
};

/* Which side of a TLS handshake we are. */
enum conn_tls_role { CONN_TLS_SERVER, CONN_TLS_CLIENT };

/*
 * Wrap an accepted (or adopted) socket fd; the connection owns it from now on. With tls
 * non-NULL the connection starts with a server-side handshake (implicit TLS) in
 * CONN_TLS_HANDSHAKE, otherwise in CONN_OPEN with reading on. in_max: input watermark;
 * out_max: the output cap conn_out_full() checks (0: none). label names the connection in
 * trace lines ("sid=1a"). Returns NULL (fd closed) on failure.
 */
struct conn *conn_new(struct event_base *base, int fd, SSL_CTX *tls, size_t in_max,
    size_t out_max, const struct conn_ops *ops, void *arg, const char *label);
/*
 * Start a client connection to sa in CONN_CONNECTING; CONN_EV_CONNECTED (then CONN_OPEN)
 * or CONN_EV_ERROR / CONN_EV_TIMEOUT_* follow. Returns NULL when the connect failed at
 * once (no callback runs then).
 */
struct conn *conn_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
    size_t in_max, size_t out_max, const struct conn_ops *ops, void *arg, const char *label);
/* Close the socket and free everything (no callback runs). NULL is ignored. */
void conn_free(struct conn *c);

/* Free the connection but keep its socket, which the caller owns from now on (handing a
 * control connection over to the SMTP server). Unread input is dropped: take it first.
 * Returns the descriptor, or -1 (and the socket is closed) for a TLS connection. */
int conn_release_fd(struct conn *c);

/* Change the state; traces "label conn OLD -> NEW" at debug level. Entering CONN_BUSY,
 * CONN_CLOSING or CONN_DEAD stops reading; CONN_DEAD also stops writing; entering CONN_OPEN
 * (from CONN_BUSY) reads again. */
void conn_set_state(struct conn *c, enum conn_state st);
enum conn_state conn_state(const struct conn *c);
/* The name of a state ("OPEN", "BUSY" ...). */
const char *conn_state_name(enum conn_state st);

/* The input buffer: the owner reads and drains it. */
struct evbuffer *conn_input(struct conn *c);
/* Queue n bytes for the peer. Returns 0 or -1. */
int conn_write(struct conn *c, const void *p, size_t n);
/* The output buffer (for owners that move whole buffers into it). */
struct evbuffer *conn_output(struct conn *c);
/* Octets not yet handed to the kernel. */
size_t conn_unsent(const struct conn *c);
/* More than the output cap is unsent: reading stops until the peer takes half of it
 * (then on_drained). Returns true if the owner must stop producing output now. */
bool conn_out_full(struct conn *c);
/* Read (or stop reading) from the socket, in CONN_OPEN. */
void conn_read(struct conn *c, bool on);
/* Read and write timeouts in seconds (0: none). */
void conn_set_timeouts(struct conn *c, unsigned rd, unsigned wr);
/* The peer half-closed (CONN_EV_EOF was reported). */
bool conn_eof(const struct conn *c);
/* The socket descriptor (for peeking at it before the first read), or -1. */
int conn_fd(const struct conn *c);

/*
 * Flush what is queued, then report CONN_EV_CLOSED (at once, from inside this call, when
 * nothing is queued). Reading stops. In CONN_BUSY the connection becomes CONN_DEAD
 * instead: the owner frees it when its job is done.
 */
void conn_close(struct conn *c);

/*
 * STARTTLS. Unread input is discarded (it came in plaintext and must never be read as
 * data inside TLS: CVE-2011-0411); returns how many octets were dropped, or -1 (nothing
 * changed: no SSL object). Server role: reading stops, the connection waits in
 * CONN_WAIT_DRAIN until the queued reply reached the kernel, then handshakes on the same
 * descriptor. Client role: handshakes at once; host (non-NULL) goes into SNI and, with
 * verify, is the name the certificate must carry (the chain is checked too).
 * CONN_EV_TLS or an event in CONN_TLS_HANDSHAKE follows (CONN_EV_ERROR if the swap failed).
 */
long conn_starttls(struct conn *c, SSL_CTX *ctx, enum conn_tls_role role, const char *host,
    bool verify);
/* Describe the TLS session ("TLSv1.3 with cipher ...") into out; "TLS" if unknown. */
void conn_tls_info(struct conn *c, char *out, size_t osz);
/* Why the handshake failed: a certificate verification error when verify was asked and
 * the chain or name did not pass, else the OpenSSL error, else "" (none known). */
void conn_tls_error(struct conn *c, char *out, size_t osz);
/* Text for the last socket error (CONN_EV_ERROR). */
const char *conn_error(const struct conn *c);

#endif
