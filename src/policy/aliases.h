/*
 * policy/aliases.h - the aliases table of the local delivery agent (/etc/aliases syntax).
 *
 * Owns:  parsing alias tables, name lookup, expansion of a local part into final local users
 *        and off-host addresses (loops, duplicates, :include: files).
 * Never: delivers, looks up the user database, runs programs or writes files; file ("/path")
 *        and pipe ("|cmd") targets are refused at load time.
 * Limits: physical lines <= ALIASES_LINE_MAX octets; alias nesting <= ALIASES_DEPTH_MAX;
 *        :include: nesting <= ALIASES_INCLUDE_MAX; files <= ALIASES_FILE_MAX octets.
 * Files: aliases_parse.c (syntax), aliases_index.c (the table, loading, lookup),
 *        aliases_expand.c (expansion); aliases_int.h is what they share.
 *
 * Syntax (Postfix/sendmail style):
 *   - A logical line starts in column 1 with "name: target, target, ...". A physical line that
 *     starts with a space or tab continues the previous logical line. Blank lines and lines whose
 *     first non-blank character is '#' are ignored anywhere (they do not end a logical line).
 *     Lines may end in LF or CRLF.
 *   - name: a local part without '@', stored lower-cased (lookups ignore ASCII case). Allowed:
 *     any octet above 0x20 except DEL, whitespace and ( ) < > [ ] : ; @ \ , "
 *   - targets are split at commas outside double quotes; whitespace around each is trimmed and
 *     empty elements (e.g. a trailing comma) are skipped. A target is one of
 *       alice              a local name: a local user or another alias
 *       \alice             the local user alice, never expanded as an alias
 *       bob@example.org    an address; the local part may be a quoted string
 *       :include:/path     more targets from a file, read at expansion time (see below)
 *     "/file" and "|command" targets (also in double quotes) are refused.
 *   - :include: files hold targets in right-hand-side syntax, one or more per line, with blank
 *     lines and '#' comment lines; no continuation lines and no "name:" prefixes. A relative
 *     path is relative to the directory of the file that names it (the aliases file, or the
 *     including :include: file); when that is unknown (aliases_parse() with dir NULL), to the
 *     current directory.
 *   - An :include: file is read only if it is a regular file (a symbolic link as the last
 *     component is not followed), owned by root or by the owner of the file that names it
 *     (the aliases file for aliases_load(), the process's effective uid at parse time for
 *     aliases_parse(), or the including :include: file), not writable by group or others,
 *     and, when it is root's but named by another owner's file, readable by everyone (a
 *     user's list cannot read root's files for them). Otherwise it is refused: a permanent
 *     error "mail system configuration error: :include: file PATH refused: REASON" and a
 *     warning in the log naming the file and the reason.
 *   - Errors about an :include: file give its path and line number, never bytes of its
 *     contents: they reach bounces and "postel verify" output.
 */
#ifndef POSTEL_POLICY_ALIASES_H
#define POSTEL_POLICY_ALIASES_H

#include <stdbool.h>
#include <stddef.h>

#define ALIASES_LINE_MAX 4096               /* octets per physical line, without CR LF */
#define ALIASES_DEPTH_MAX 20                /* aliases nested inside each other */
#define ALIASES_INCLUDE_MAX 5               /* :include: files nested inside each other */
#define ALIASES_FILE_MAX (256UL << 20)      /* size of an aliases or :include: file */

struct aliases;     /* opaque */

/*
 * Parse text (length n; need not be NUL-terminated) whose origin is named `origin` (a file
 * name, or e.g. "postel.conf:12" for inline entries) into a new table. dir: directory for
 * relative :include: paths (NULL: the current directory). Returns the table (free with
 * aliases_free()), or NULL with a one-line message "origin:line: what" in err (size errsz).
 * Errors: line too long, NUL byte, continuation line without an entry, missing ':', bad name,
 * empty target list, duplicate name (the later one is the error), unterminated quote, bad
 * target, empty :include: path, file and pipe targets.
 */
struct aliases *aliases_parse(const char *text, size_t n, const char *origin, const char *dir,
    char *err, size_t errsz);

/*
 * Read and parse the file at path; relative :include: paths are relative to its directory.
 * Same return as aliases_parse(); a file that cannot be read gives "path: reason".
 */
struct aliases *aliases_load(const char *path, char *err, size_t errsz);

/*
 * Move src's entries into dst; src is freed in every case. Returns 0, or -1 with a message
 * in err when a name is in both tables (dst is then unchanged).
 */
int aliases_merge(struct aliases *dst, struct aliases *src, char *err, size_t errsz);

/* Take another reference (a table being replaced stays alive for its users). Returns a. */
struct aliases *aliases_ref(struct aliases *a);
/* Drop a reference; the last one frees the table and everything it owns. NULL is fine. */
void aliases_free(struct aliases *a);

/* Does an alias of this name exist? (name: a local part, any case) */
bool aliases_exists(const struct aliases *a, const char *name);

/*
 * The direct members of an alias as written (whitespace trimmed), for EXPN: a NULL-terminated
 * array owned by the table, valid until it is freed or merged away. NULL if no such alias.
 */
const char *const *aliases_members(const struct aliases *a, const char *name);

/* Number of aliases in the table. */
size_t aliases_count(const struct aliases *a);

/* Result of expansions; initialise to {0}, free with alias_result_free(). */
struct alias_result {
    char **local;  size_t nlocal;   /* final local user names (lower-cased), deduplicated,
                                       in first-seen order */
    char **remote; size_t nremote;  /* off-host addresses (local@domain as written),
                                       deduplicated (domain compared case-insensitively, local
                                       part case-sensitively), in first-seen order */
};

/*
 * Expand `name` (a local part, any case) for delivery and APPEND the recipients to *res;
 * duplicates of recipients already in *res are not added, so expanding every recipient of
 * one message into one result gives one copy per mailbox. A name that is not an alias yields
 * itself (lower-cased) as a local user.
 *
 * x@domain targets whose domain is_local_domain(domain, ctx) accepts are treated as the local
 * name x (quotes removed, lower-cased) and expanded as such; others are remote. With
 * is_local_domain NULL every domain is remote. "\x" targets are the local user x, unexpanded.
 *
 * Loops and repeats, per call:
 *   - An alias reached again while it is being expanded (a loop: "a: b", "b: a", or the
 *     self-reference "alice: alice, bob") is not expanded again; the name is delivered as the
 *     local user of that name, as "\name" would be. This module does not know the user
 *     database: the delivery agent decides. If a name in local[] is both an alias
 *     (aliases_exists()) and not a real user, it came from a loop or "\name": drop or bounce it.
 *   - An alias reached again after its expansion has finished (a diamond) is skipped: its
 *     recipients are already in *res. Likewise each :include: file is read at most once.
 *   - More than ALIASES_DEPTH_MAX aliases nested: -1, "alias expansion too deep".
 *     More than ALIASES_INCLUDE_MAX :include: files nested: -1.
 *   - An alias that yields no recipient at all (e.g. only empty :include: files) is -1, so
 *     that mail is bounced rather than silently discarded.
 *
 * Returns 0; -1 for a permanent error (bad :include: file content, an :include: file that is
 * refused as unsafe (see the syntax notes above) or is too large, limits), -2 for a temporary
 * one (an :include: file that is missing or cannot be read). On error, err (size errsz)
 * holds a one-line message and *res is unchanged.
 */
int aliases_expand(const struct aliases *a, const char *name,
    bool (*is_local_domain)(const char *domain, void *ctx), void *ctx,
    struct alias_result *res, char *err, size_t errsz);

/* Free the arrays of a result and reset it to {0}. */
void alias_result_free(struct alias_result *res);

#endif
