/*
 * smtp/parse.h - SMTP command line, path and ESMTP parameter parsing.
 *
 * Owns:  the RFC 5321 4.1.2 grammar (verbs, paths, Mail-parameters), RFC 6531 UTF-8 in
 *        addresses, RFC 1870/6152/3030/3461/4954 parameters, xtext, and their error replies.
 * Never: does I/O, allocates, or keeps state; every input is (pointer, length) and may
 *        contain NUL bytes; nothing is read past the given length.
 * Limits: smtp/limits.h (RFC 5321 4.5.3.1, RFC 3461 4.2 and 4.4).
 */
#ifndef POSTEL_SMTP_PARSE_H
#define POSTEL_SMTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "smtp/limits.h"

struct buf;

enum smtp_verb {
    SMTP_VERB_UNKNOWN, SMTP_VERB_HELO, SMTP_VERB_EHLO, SMTP_VERB_MAIL, SMTP_VERB_RCPT,
    SMTP_VERB_DATA, SMTP_VERB_BDAT, SMTP_VERB_RSET, SMTP_VERB_NOOP, SMTP_VERB_QUIT,
    SMTP_VERB_VRFY, SMTP_VERB_EXPN, SMTP_VERB_HELP, SMTP_VERB_SEND, SMTP_VERB_SOML,
    SMTP_VERB_SAML, SMTP_VERB_TURN, SMTP_VERB_STARTTLS, SMTP_VERB_AUTH, SMTP_VERB_ETRN,
    SMTP_VERB_HTTP
};

struct smtp_cmd {
    enum smtp_verb verb;
    const char *arg;            /* points into the line; not NUL-terminated */
    size_t arglen;
};

enum smtp_perr {
    SMTP_PERR_OK, SMTP_PERR_SYNTAX, SMTP_PERR_PATH_SYNTAX, SMTP_PERR_LOCAL_TOO_LONG,
    SMTP_PERR_DOMAIN_TOO_LONG, SMTP_PERR_PATH_TOO_LONG, SMTP_PERR_NEED_UTF8,
    SMTP_PERR_BAD_UTF8, SMTP_PERR_PARAM_UNKNOWN, SMTP_PERR_PARAM_VALUE, SMTP_PERR_PARAM_DUP
};

struct smtp_path {
    bool null;                  /* "<>" (reverse-path only) */
    bool postmaster;            /* "<postmaster>" with no domain, any case (forward-path only) */
    bool utf8;                  /* the path (source route included) has non-ASCII octets */
    bool literal;               /* domain is an address literal [..] */
    char local[SMTP_LOCAL_MAX * 2 + 3];  /* local part, decoded: quotes and \ escapes removed */
    char domain[SMTP_DOMAIN_MAX + 1];    /* as given (case kept), literal incl. brackets;
                                            "" for null and postmaster */
    char addr[SMTP_PATH_MAX * 2];        /* canonical local@domain, local quoted only when it
                                            is not a dot-string; "" for null; "postmaster"
                                            for bare postmaster */
};

enum smtp_body { SMTP_BODY_NONE, SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_NOTIFY_NEVER   1u
#define SMTP_NOTIFY_SUCCESS 2u
#define SMTP_NOTIFY_FAILURE 4u
#define SMTP_NOTIFY_DELAY   8u

struct smtp_mail_args {
    struct smtp_path path;
    bool has_size;
    unsigned long long size;
    enum smtp_body body;
    enum smtp_ret ret;
    bool has_envid;
    char envid[SMTP_ENVID_MAX + 1];     /* xtext-decoded, printable ASCII */
    bool smtputf8;
    bool has_auth;
    char auth[SMTP_PATH_MAX * 2];       /* xtext-decoded; "<>" kept as "<>" */
};

struct smtp_rcpt_args {
    struct smtp_path path;
    unsigned notify;            /* 0: not given; else SMTP_NOTIFY_* bits, NEVER alone */
    bool has_orcpt;
    char orcpt_type[32];        /* addr-type as given, e.g. "rfc822" */
    char orcpt[SMTP_ORCPT_MAX + 1];     /* xtext-decoded address; raw for addr-type utf-8 */
};

/*
 * Split a command line (without CRLF, length len, may hold NUL) into verb and argument.
 * The verb is the text before the first SP (or the whole line), matched case-insensitively;
 * "MAILX" and " QUIT" are SMTP_VERB_UNKNOWN. GET POST HEAD PUT CONNECT OPTIONS DELETE TRACE
 * PATCH give SMTP_VERB_HTTP. cmd->arg points into line just after that single SP (or at
 * line + len when there is none) and cmd->arglen excludes trailing SPs, so "QUIT  " has an
 * empty argument while "MAIL  FROM:<>" keeps its extra leading SP. Always returns 0.
 */
int smtp_parse_cmd(const char *line, size_t len, struct smtp_cmd *cmd);

/*
 * Parse a reverse-path (is_reverse: "<>" allowed) or forward-path (not is_reverse:
 * "<postmaster>" without domain allowed, any case) at s (length n), which must start with
 * '<'. A source route is accepted and ignored. utf8_ok: non-ASCII allowed (RFC 6531).
 * On SMTP_PERR_OK fills *p and sets *end to the bytes consumed (through the closing '>');
 * text after it is the caller's. No '<' at s gives SMTP_PERR_SYNTAX; anything wrong inside
 * the brackets SMTP_PERR_PATH_SYNTAX or a more specific code.
 */
enum smtp_perr smtp_parse_path(const char *s, size_t n, bool is_reverse, bool utf8_ok,
    struct smtp_path *p, size_t *end);

/*
 * Parse the MAIL argument arg (length n), e.g. "FROM:<a@b> SIZE=10 BODY=8BITMIME".
 * One SP is allowed between "FROM:" and '<'. UTF-8 in the path needs the SMTPUTF8
 * parameter (SMTP_PERR_NEED_UTF8 otherwise). Fills *out (zeroed first). Returns
 * SMTP_PERR_OK or the first error found: the path first, then the parameters left to right.
 */
enum smtp_perr smtp_parse_mail(const char *arg, size_t n, struct smtp_mail_args *out);

/*
 * Parse the RCPT argument arg (length n), e.g. "TO:<a@b> NOTIFY=SUCCESS,DELAY".
 * utf8_ok: the transaction has SMTPUTF8. Fills *out (zeroed first). Returns SMTP_PERR_OK
 * or the first error found.
 */
enum smtp_perr smtp_parse_rcpt(const char *arg, size_t n, bool utf8_ok,
    struct smtp_rcpt_args *out);

/*
 * Decode xtext (RFC 3461 4) s (length n) into out (size osz, NUL-terminated; the output
 * may itself contain NUL from "+00"), length in *outlen (may be NULL). Returns 0, or -1 when
 * s is not xtext ('+' not followed by two upper-case hex digits, '=', octets outside 33-126)
 * or the output with its terminator does not fit.
 */
int smtp_xtext_decode(const char *s, size_t n, char *out, size_t osz, size_t *outlen);

/*
 * Append the xtext encoding of s (length n) to out: '+', '=' and octets outside 33-126
 * become "+HH". Returns 0, or -1 over out's cap (out is then left as it was).
 */
int smtp_xtext_encode(const char *s, size_t n, struct buf *out);

/*
 * The reply for e as "CODE X.Y.Z text" (no CRLF), worded for MAIL (is_rcpt false) or RCPT.
 * Returns a static string; SMTP_PERR_OK gives the 250 reply.
 */
const char *smtp_perr_reply(enum smtp_perr e, bool is_rcpt);

/*
 * Whether s (length n) is a Domain (RFC 5321 4.1.2, strict: no trailing dot, no '_') or an
 * address literal, at most SMTP_DOMAIN_MAX octets. utf8_ok allows U-labels (UTF-8).
 */
bool smtp_domain_valid(const char *s, size_t n, bool utf8_ok);

/*
 * As smtp_domain_valid, but lenient for the HELO/EHLO argument: '_' may appear anywhere in
 * a label, and well-formed UTF-8 (U-labels) is accepted since EHLO comes before any MAIL.
 */
bool smtp_helo_valid(const char *s, size_t n);

/*
 * Whether s (length n) is valid UTF-8: no overlong forms, no surrogates, nothing above
 * U+10FFFF, no truncated sequence. ASCII (NUL included) is valid.
 */
bool smtp_utf8_valid(const char *s, size_t n);

#endif
