/*
 * cli/ctlclient.h - the client side of posteld's control socket (net/control.h).
 *
 * Owns:  connecting to the UNIX socket, sending one request line, reading the answer's
 *        lines with a time limit, and telling data lines from the final "OK"/"ERR" line.
 * Never: interprets the data lines: the commands do.
 * Limits: CTL_LINE_MAX octets per line read.
 */
#ifndef POSTEL_CLI_CTLCLIENT_H
#define POSTEL_CLI_CTLCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define CTL_LINE_MAX (16u * 1024 * 1024)

struct ctl {
    int fd;
    struct buf in;              /* bytes read and not yet returned */
    size_t taken;               /* octets of in handed out by the last ctl_readline */
    bool eof;
};

/*
 * Connect to the socket at path. Returns 0, or -1 with errno: ENOENT or ECONNREFUSED mean
 * no daemon listens there, EACCES that the socket may not be used by this user.
 */
int ctl_open(struct ctl *c, const char *path);

/* Write n bytes. Returns 0 or -1 (errno). */
int ctl_write(struct ctl *c, const void *p, size_t n);

/*
 * Read one line into *line (NUL-terminated, without its LF or CRLF; valid until the next
 * call), its length in *len. Waits at most timeout_ms (< 0: no limit) for it.
 * Returns 1 for a line, 0 at end of file (a last line without LF is returned first), or
 * -1 with errno (ETIMEDOUT, EMSGSIZE for a line over CTL_LINE_MAX, or a read error).
 */
int ctl_readline(struct ctl *c, char **line, size_t *len, int timeout_ms);

void ctl_close(struct ctl *c);

/* The final line of an answer: "OK", "OK text", "ERR", "ERR text". */
enum ctl_final { CTL_DATA, CTL_OK, CTL_ERR };
/* Classify line; *text points at the text after "OK "/"ERR " ("" when none). */
enum ctl_final ctl_classify(const char *line, const char **text);

/*
 * One request on a fresh connection: send line (without LF), then call fn for each data
 * line until the final line. On OK returns 0 with its text in final; on ERR returns 1 with
 * its text in final; on a connection or protocol failure returns -1 with a message in
 * final (errno kept from the connect, so a caller can tell "no daemon").
 * timeout_ms applies to each line; fn may be NULL; fn returning -1 stops and returns -1.
 */
int ctl_request(const char *path, const char *line, int timeout_ms,
    int (*fn)(void *arg, const char *line, size_t len), void *arg, char *final,
    size_t finalsz);

#endif
