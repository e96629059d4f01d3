/*
 * smtp/limits.h - protocol size limits (RFC 5321 4.5.3.1 and the extensions).
 */
#ifndef POSTEL_SMTP_LIMITS_H
#define POSTEL_SMTP_LIMITS_H

#define SMTP_LOCAL_MAX     64     /* local part, octets (4.5.3.1.1) */
#define SMTP_DOMAIN_MAX    255    /* domain, octets (4.5.3.1.2) */
#define SMTP_PATH_MAX      256    /* reverse/forward path incl. <>, octets (4.5.3.1.3) */
#define SMTP_CMDLINE_MAX   512    /* command line incl. CRLF (4.5.3.1.4) */
/* Extensions add parameters (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH, NOTIFY, ORCPT):
 * RFC 1869 allows each to extend the line; this is the cap we accept. */
#define SMTP_CMDLINE_EXT_MAX 2048
#define SMTP_AUTHLINE_MAX  12288  /* AUTH command and responses incl. CRLF (RFC 4954 4) */
#define SMTP_TEXTLINE_MAX  1000   /* text line incl. CRLF (4.5.3.1.6) */
#define SMTP_ENVID_MAX     100    /* RFC 3461 4.4, decoded */
#define SMTP_ORCPT_MAX     500    /* RFC 3461 4.2, encoded */
#define SMTP_REPLY_MAX     512    /* reply line incl. CRLF (4.5.3.1.5) */

#endif
