/*
 * policy/auth.h - server side of SMTP AUTH (RFC 4954): SASL PLAIN (RFC 4616) and LOGIN
 * payloads, the password file, failed-login throttling and the submission sender-login map.
 *
 * Owns:  base64 for SASL, PLAIN/LOGIN payload checks, the password file (user:crypt-hash),
 *        password verification and hashing (libxcrypt), failure throttling per address and
 *        per user, counting checks in progress,
 *        the sender-login map and the rule "who may use which MAIL FROM".
 * Never: reads sockets, sends replies or sleeps: callers turn outcomes into 334/235/535/454/421
 *        replies and do the waiting. Never logs passwords; never normalises them (no SASLprep:
 *        passwords and user names are compared octet for octet).
 * Limits: AUTH_USER_MAX, AUTH_PASS_MAX, AUTH_ZID_MAX (RFC 4616 2), AUTH_LINE_MAX and
 *        AUTH_FILE_MAX for both files, AUTH_THROTTLE_MAX tracked addresses, users and
 *        (address, user) pairs each.
 *
 * Files: the sections below are implemented by sasl.c, passwd.c, throttle.c and senders.c
 * (shared helpers: authutil.h, internal to src/policy/).
 *
 * Threads: auth_db and auth_senders are immutable after loading; any number of threads may
 * use one concurrently. An auth_throttle belongs to one thread (the event loop).
 */
#ifndef POSTEL_POLICY_AUTH_H
#define POSTEL_POLICY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "util/buf.h"

#define AUTH_USER_MAX 255           /* octets of an authentication identity (authcid) */
#define AUTH_ZID_MAX 255            /* octets of an authorization identity (authzid) */
#define AUTH_PASS_MAX 1024          /* octets of a password on the wire */
/* Octets of a password libxcrypt can hash (CRYPT_MAX_PASSPHRASE_SIZE - 1); see auth_db_verify. */
#define AUTH_HASH_PASS_MAX 511
/* Decoded PLAIN message: authzid NUL authcid NUL passwd. */
#define AUTH_PLAIN_MAX (AUTH_ZID_MAX + 1 + AUTH_USER_MAX + 1 + AUTH_PASS_MAX)
/* Base64 text of the longest PLAIN message; longer input is AUTH_P_TOO_LONG undecoded. */
#define AUTH_PLAIN_B64_MAX (4 * ((AUTH_PLAIN_MAX + 2) / 3))
/* Base64 text of the longest LOGIN field (the password). */
#define AUTH_LOGIN_B64_MAX (4 * ((AUTH_PASS_MAX + 2) / 3))
#define AUTH_LINE_MAX 4096          /* octets per line of the password and sender files */
#define AUTH_FILE_MAX (64UL << 20)  /* size of the password and sender files */
#define AUTH_THROTTLE_MAX 10000     /* entries of each kind an auth_throttle tracks at most */
#define AUTH_ADDR_MAX 64            /* octets of a throttle key kept (longer: truncated) */

/* The LOGIN mechanism's challenges, already base64: "Username:" and "Password:". */
#define AUTH_LOGIN_CHALLENGE_USER "VXNlcm5hbWU6"
#define AUTH_LOGIN_CHALLENGE_PASS "UGFzc3dvcmQ6"

/* ---- SASL payloads (pure; sasl.c) ---- */

/*
 * Decode the n octets of base64 at in (RFC 4648 4: alphabet A-Z a-z 0-9 + /, no whitespace or
 * line breaks, length a multiple of 4, '=' padding required and only at the end, unused bits
 * of the last group zero, so only the canonical encoding is accepted) into out (size osz).
 * "=" alone is the empty response of RFC 4954 4 and decodes to 0 octets; so does n == 0
 * (RFC 4648 10: BASE64("") = ""); whether an empty line is acceptable is the caller's call.
 * The result is binary and not NUL-terminated. in need not be NUL-terminated.
 * Returns the decoded length, or -1 if the input is invalid or the result needs more than
 * osz octets (3 * n / 4 always suffices); after -1, out may hold part of the result.
 */
ssize_t auth_b64_decode(const char *in, size_t n, unsigned char *out, size_t osz);

/*
 * Append the base64 encoding (RFC 4648 4, padded, no line breaks) of the n octets at in to
 * out; n == 0 appends nothing (an empty "334 " challenge; the client's "=" for an empty
 * response is the client's business). Returns 0, or -1 (out unchanged) if out's cap would be
 * passed or the length overflows.
 */
int auth_b64_encode(const void *in, size_t n, struct buf *out);

/* Outcome of decoding a client's SASL response. */
enum auth_perr {
    AUTH_P_OK,
    AUTH_P_BAD_B64,         /* not canonical base64: 501 5.5.2 */
    AUTH_P_BAD_FORMAT,      /* wrong NUL count, empty field, NUL inside, not UTF-8: 501 5.5.2 */
    AUTH_P_AUTHZ_MISMATCH,  /* authzid non-empty and not the authcid: 535 5.7.8 */
    AUTH_P_TOO_LONG         /* a field or the payload over its limit, or the caller's buffer
                               too small: 500 5.5.6 (RFC 4954 4) */
};

/*
 * Decode a PLAIN response (RFC 4616 2): base64 of "authzid NUL authcid NUL passwd", n octets
 * at b64 (not NUL-terminated; the caller has already split off "AUTH PLAIN " and handles
 * "*"). Checks in this order: input length (AUTH_PLAIN_B64_MAX), base64, exactly two NULs
 * and non-empty authcid and passwd (BAD_FORMAT), field lengths (authzid <= AUTH_ZID_MAX,
 * authcid <= AUTH_USER_MAX, passwd <= AUTH_PASS_MAX: TOO_LONG), UTF-8 of all three fields
 * (shortest forms, no surrogates, <= U+10FFFF: BAD_FORMAT), then the authzid: it may be empty
 * or equal to the authcid (octet for octet), anything else is AUTHZ_MISMATCH, since we do
 * not let one user act as another.
 * On AUTH_P_OK user (size usz) and pass (size psz) hold the authcid and the password as C
 * strings; usz > AUTH_USER_MAX and psz > AUTH_PASS_MAX always suffice, smaller buffers that
 * cannot hold the value give AUTH_P_TOO_LONG. On any other result both are set to "" and no
 * copy of the password is left in memory this function used.
 */
enum auth_perr auth_plain_decode(const char *b64, size_t n, char *user, size_t usz,
    char *pass, size_t psz);

/*
 * Decode one LOGIN response (the user name after AUTH_LOGIN_CHALLENGE_USER, or the password
 * after AUTH_LOGIN_CHALLENGE_PASS): base64 of 1..max octets (max: AUTH_USER_MAX for the user
 * name, AUTH_PASS_MAX for the password) of UTF-8 without NUL, into out (size osz, > max) as a
 * C string. Results as auth_plain_decode(); "=" (empty) is AUTH_P_BAD_FORMAT. On failure out
 * is set to "".
 */
enum auth_perr auth_login_decode(const char *b64, size_t n, size_t max, char *out, size_t osz);

/* ---- the password file (passwd.c) ---- */

struct auth_db;     /* opaque */

/*
 * Load the password file at path (auth_passwd_file). Syntax, one entry per line:
 *   user:hash
 * Lines end in LF or CRLF; blank lines and lines whose first non-blank octet is '#' are
 * ignored; blanks after the hash are ignored. user: 1..AUTH_USER_MAX octets of UTF-8 without
 * ':', blanks or control characters, compared case-sensitively; a user may appear only once.
 * hash: a crypt(3) hash in one of the schemes yescrypt "$y$", gost-yescrypt "$gy$", scrypt
 * "$7$", bcrypt "$2b$", SHA-512 crypt "$6$", complete (right length and alphabet) and
 * supported by this libcrypt. Weaker or legacy schemes (DES, BSDi "_", MD5 "$1$" and "$md5",
 * SHA-256 crypt "$5$", "$sha1$", NT "$3$") and locked entries ("!", "*") are refused.
 * Returns the table (free with auth_db_free()), or NULL with a one-line message in err (size
 * errsz): "path:line: what" for content errors, "path: reason" if it cannot be read (not a
 * regular file, larger than AUTH_FILE_MAX, I/O error).
 * XXX: the file's permissions are not checked; it should not be readable by others.
 */
struct auth_db *auth_db_load(const char *path, char *err, size_t errsz);

/* Free a table and everything it owns (hashes are wiped first). NULL is fine. */
void auth_db_free(struct auth_db *db);

/*
 * Does pass match user's hash? Blocking and slow on purpose (one crypt_r() run, typically
 * 10-100 ms): call it on a worker thread, never on the event loop. The hash comparison is in
 * constant time, and for an unknown user crypt_r() runs on a dummy hash anyway (the hash of
 * the file's first entry, so the cost parameters match) and false is returned, so the time
 * taken does not tell whether the user exists. A NULL db, a NULL user or pass is false.
 * A password longer than AUTH_HASH_PASS_MAX never matches (libxcrypt refuses it at once,
 * for every user alike); bcrypt ("$2b$") only looks at the first 72 octets.
 */
bool auth_db_verify(const struct auth_db *db, const char *user, const char *pass);

/* Is user (case-sensitive) in the table? For tests and sender-login checks. */
bool auth_db_has_user(const struct auth_db *db, const char *user);

/* Number of users in the table. */
size_t auth_db_count(const struct auth_db *db);

/*
 * Hash pass (1..AUTH_HASH_PASS_MAX octets) for `postel passwd`: a yescrypt setting from
 * crypt_gensalt_rn("$y$", 0, ...) with 16 random bytes from getrandom(), or "$6$" when this
 * libcrypt has no yescrypt. Writes the hash as a C string to out (size osz; 128 suffices).
 * Returns 0, or -1 with errno: EINVAL (empty or overlong password, crypt failure), ENOSPC
 * (out too small), or getrandom()'s errno.
 */
int auth_hash_password(const char *pass, char *out, size_t osz);

/* ---- failed-login throttling (throttle.c) ---- */

struct auth_throttle;   /* opaque */

/*
 * The rule. Every password check is counted under three keys:
 *   - the client address A (the address bucket),
 *   - the user name U that was tried, from any address (the user bucket),
 *   - the pair (A, U), which only remembers how much of A's and of U's counts came from U
 *     at A.
 * A failed check adds one to A and to U. A successful check by U from A takes away what (A, U)
 * had added, from A and from U alike, and nothing else: a valid account does not buy its
 * owner's address more guesses at other accounts, it only forgives its own typing errors.
 * A is locked once max_failures failures are on record for it (so one address guessing many
 * users is locked as fast as one guessing one user); U is locked from every address once
 * AUTH_USER_FACTOR * max_failures failures from any number of addresses are on record for it
 * (a guess spread over many addresses). A counts start when window_s has passed since the
 * first failure it counted; a lock lasts lockout_s from the failure that reached the limit.
 * Checks in progress count too: a check may start only while failures plus checks running
 * stay below the limit of both A and U (auth_throttle_begin()), so no more than max_failures
 * checks can be running or failed for one address within the window, however many sessions
 * run them in parallel.
 * The price of the user bucket: anyone who spreads enough wrong guesses over several addresses
 * can lock an account out for lockout_s. With max_failures 0 nothing is locked or refused
 * (failures still delay the answers).
 */
#define AUTH_USER_FACTOR 4

/*
 * A throttle with the limits above. window_s 0 turns throttling off (every gate is OPEN and
 * nothing is recorded). Returns the new throttle (free with auth_throttle_free()); it
 * allocates as keys appear, at most AUTH_THROTTLE_MAX entries for each of the three kinds of
 * key (about 10 MB with the longest user names).
 */
struct auth_throttle *auth_throttle_new(unsigned max_failures, unsigned window_s,
    unsigned lockout_s);

/* Free a throttle. NULL is fine. */
void auth_throttle_free(struct auth_throttle *t);

enum auth_gate {
    AUTH_GATE_OPEN,     /* no failures on record for the address: check at once */
    AUTH_GATE_DELAY,    /* failures on record: check; a failure's reply waits *delay_ms */
    AUTH_GATE_BUSY,     /* failures plus checks in progress reach the address's or the user's
                           limit: refuse without a check (454 4.7.0); may pass once the
                           checks running have finished */
    AUTH_GATE_LOCKED    /* the address or the user is locked out: refuse with 421 4.7.0 */
};

/* What became of a check that auth_throttle_begin() let start. */
enum auth_result {
    AUTH_RES_OK,        /* the password matched */
    AUTH_RES_FAIL,      /* it did not */
    AUTH_RES_NONE       /* no check ran after all (e.g. no room to queue it) */
};

/*
 * The gate for a check of user (the authentication identity tried, compared exactly; the
 * first AUTH_USER_MAX octets are used; NULL is "") from addr (an opaque key compared
 * exactly, e.g. "192.0.2.7"; the first AUTH_ADDR_MAX - 1 octets are used). The caller picks
 * the aggregation: an IPv6 client can use many addresses, so pass its /64 prefix. Changes no
 * counts; entries whose window (and lockout) has passed are forgotten here.
 * Returns LOCKED (*delay_ms = 0); BUSY or DELAY with *delay_ms = 1000 after one failure of
 * the address, doubling per failure up to 8000 (0 for BUSY without failures); or OPEN
 * (*delay_ms = 0). delay_ms may be NULL.
 */
enum auth_gate auth_throttle_check(struct auth_throttle *t, const char *addr, const char *user,
    time_t now, unsigned *delay_ms);

/*
 * Before a password check: the gate as auth_throttle_check() gives it. On OPEN or DELAY the
 * check is counted as in progress for addr and user, and the caller must report its end
 * with auth_throttle_end() (same addr and user), exactly once. On BUSY or LOCKED nothing is
 * recorded and no check may run. BUSY is also the answer when all AUTH_THROTTLE_MAX entries
 * of a kind are taken by checks in progress.
 */
enum auth_gate auth_throttle_begin(struct auth_throttle *t, const char *addr, const char *user,
    time_t now);

/*
 * A check that auth_throttle_begin() let start has ended at now with result r: it no longer
 * counts as in progress; a failure is recorded (see the rule above; at capacity the entry
 * whose last activity is the oldest is forgotten to make room; failures reported while the
 * key is locked do not extend the lockout); a success takes back what (addr, user) had
 * added.
 */
void auth_throttle_end(struct auth_throttle *t, const char *addr, const char *user,
    enum auth_result r, time_t now);

/* Number of client addresses tracked now (for tests and statistics). */
size_t auth_throttle_count(const struct auth_throttle *t);

/* ---- submission: who may use which sender address (senders.c) ---- */

struct auth_senders;    /* opaque */

/*
 * Load the sender-login map at path (sender_login_file). Syntax, one entry per line:
 *   address user[,user...]
 * Same line rules as auth_db_load(). address is local@domain (an owner list for that
 * address) or @domain (users who may use any address in the domain); it has no blanks, no
 * angle brackets, exactly one '@' and a non-empty domain. Addresses are compared ASCII
 * case-insensitively in full: RFC 5321 2.4 makes the local part case-sensitive, but no real
 * mailbox relies on that and treating Alice@ and alice@ as different owners would only let
 * one user pose as another. Users are separated by commas (blanks around them are allowed)
 * and compared case-sensitively, as in the password file; an address may appear only once.
 * Returns the map (free with auth_senders_free()) or NULL with "path:line: what" or
 * "path: reason" in err (size errsz).
 */
struct auth_senders *auth_senders_load(const char *path, char *err, size_t errsz);

/* Free a map. NULL is fine. */
void auth_senders_free(struct auth_senders *s);

/*
 * May the authenticated user use sender (the MAIL FROM address without angle brackets) on
 * the submission service? Rules, in order:
 *   1. The null sender "" is refused: a submission client has a mailbox to send from, and
 *      bounces (the null sender's use) are the server's job, not the client's.
 *      A sender without '@' or with an empty local part or domain is refused too.
 *   2. If s has an entry for the exact address, it decides alone: allowed iff user is in its
 *      list. (This lets an admin hand alice@example.org to someone other than alice.)
 *   3. Otherwise allowed if s has an "@domain" entry for the sender's domain listing user,
 *   4. or by the default rule: is_local_domain(domain, ctx) is true and the local part
 *      equals user (ASCII case-insensitively), or, for a user name that is itself an
 *      address, the whole sender equals user.
 * s may be NULL (only rules 1 and 4); is_local_domain may be NULL (rule 4 never applies).
 * The domain handed to is_local_domain is the text after the last '@', as written.
 * Subaddresses (alice+tag@) get no special treatment: map them explicitly.
 */
bool auth_sender_ok(const struct auth_senders *s, const char *user, const char *sender,
    bool (*is_local_domain)(const char *domain, void *ctx), void *ctx);

#endif
