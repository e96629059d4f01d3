/*
 * cli/msgtext.h - the message text that sendmail reads on its standard input.
 *
 * Owns:  the input rules (line ends, a lone "." ending the input unless -i, a leading mbox
 *        "From " line), the header section (folded fields, Bcc removal, the From:, Date:
 *        and Message-ID: fields added when missing), recipients from To/Cc/Bcc for -t,
 *        8-bit detection, and the SMTP DATA form (CRLF, dot-stuffing).
 * Never: does I/O; every function works on memory (pointer and length).
 *
 * Internally the text has LF line ends, the form the queue file stores it in; SMTP CRLF
 * is made only by msgtext_smtp_data().
 */
#ifndef POSTEL_CLI_MSGTEXT_H
#define POSTEL_CLI_MSGTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "cli/addrlist.h"
#include "util/buf.h"

/* The state of reading the input one line at a time. */
struct msgtext_reader {
    bool ignore_dots;           /* -i / -oi: a lone "." is text, not the end */
    unsigned long long lines;   /* lines seen so far */
};

void msgtext_reader_init(struct msgtext_reader *r, bool ignore_dots);

/*
 * Take one input line (with its "\n", or without one for the last line of the input).
 * A trailing CR before the LF goes ("\r\n" -> "\n"); a last line without an LF gets one.
 * A first line starting "From " (an mbox separator) is dropped. Without ignore_dots, a
 * line that is just "." (with or without CR) ends the input and is not stored.
 * Returns 1 at that end, 0 when the line was appended to out, -1 when out is over its cap.
 */
int msgtext_feed_line(struct msgtext_reader *r, const char *line, size_t len, struct buf *out);

/* One header field: the whole field with its continuation lines and the final LF. */
struct msgtext_field {
    size_t off, len;            /* the field in the text */
    size_t name_len;            /* the field name, at off */
    size_t value_off;           /* the value: just after the ':' */
};

/*
 * Find the header section of m (n bytes, LF line ends). The section is the run of header
 * lines ("Name:" or continuation lines) from the start; it ends at an empty line or at the
 * first line that is neither. Returns the offset just past the last header line; *body
 * gets the offset of the body (past the empty line when there is one), *has_sep whether
 * there is that empty line.
 */
size_t msgtext_header_end(const char *m, size_t n, size_t *body, bool *has_sep);

/* The field at *pos (below hend, the header end); advances *pos. Returns 1, or 0 at the end. */
int msgtext_next_field(const char *m, size_t hend, size_t *pos, struct msgtext_field *f);

/* Whether f's name is name (ASCII, any case). */
bool msgtext_field_is(const char *m, const struct msgtext_field *f, const char *name);

/* Whether the header section (m up to hend) has a field called name. */
bool msgtext_has_field(const char *m, size_t hend, const char *name);

/*
 * sendmail -t: append to out the addresses of every To, Cc and Bcc field, in order; when
 * the header has any Resent-To, Resent-Cc or Resent-Bcc field, those are taken instead
 * (the message is being resent). Returns 0, or -1 with "Field: reason" in err.
 */
int msgtext_recipients(const char *m, size_t hend, struct addrlist *out, char *err,
    size_t errsz);

/* Fields to change on the way out; NULL leaves that field alone. */
struct msgtext_fix {
    bool remove_bcc;            /* drop Bcc and Resent-Bcc fields */
    const char *from;           /* value of a From: field to add when there is none */
    const char *date;           /* value of a Date: field to add when there is none */
    const char *msgid;          /* value of a Message-ID: field to add when there is none */
};

/*
 * Append m to out with the changes of fx: removed fields go, added fields come at the end
 * of the header section, and an empty line is put between header and body when the input
 * had a body without one. Returns 0, or -1 over out's cap.
 */
int msgtext_rewrite(const char *m, size_t n, const struct msgtext_fix *fx, struct buf *out);

/*
 * Append the value of a From: field for addr with the display name name (NULL or "": the
 * bare address): "Name <addr>", quoted when the name has specials, RFC 2047-encoded
 * (UTF-8, base64) when it is not ASCII. Returns 0 or -1 (cap).
 */
int msgtext_format_from(const char *name, const char *addr, struct buf *out);

/* Whether m (n bytes) has an octet with the high bit set. */
bool msgtext_has_8bit(const char *m, size_t n);

/* Append m (LF line ends) as DATA content: CRLF, dot-stuffed, then ".\r\n". */
int msgtext_smtp_data(const char *m, size_t n, struct buf *out);

#endif
