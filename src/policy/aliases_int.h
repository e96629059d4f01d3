/*
 * policy/aliases_int.h - what the alias modules share: the table's layout and the helpers
 * one of them defines for the others. Internal to src/policy/aliases_*.c.
 *
 * Owns:  struct aliases and its entries, the target kinds, string vectors, error helpers.
 * Never: is included outside the alias modules; aliases.h is the public surface.
 */
#ifndef POSTEL_POLICY_ALIASES_INT_H
#define POSTEL_POLICY_ALIASES_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct aliases;

#define AL_NO_ENTRY SIZE_MAX
#define AL_ESC_MAX 200          /* octets of quoted input shown in an error message */

/* Where entries came from: for error messages, relative :include: paths and owner checks. */
struct alias_src {
    char *origin;
    char *dir;                  /* NULL: current directory */
    uid_t owner;                /* owner of the file; :include: files it names must match */
};

struct alias_entry {
    char *name;                 /* lower-cased */
    char **members;             /* NULL-terminated, as written */
    const struct alias_src *src;
    unsigned long line;
};

struct aliases {
    atomic_uint refs;           /* aliases_ref(); freed when the last one goes */
    struct alias_entry *ent;
    size_t n, cap;
    size_t *slot;               /* entry index + 1; 0 is empty */
    size_t nslot;               /* power of two, at least 2 * n */
    struct alias_src **srcs;
    size_t nsrcs;
};

/* Kinds of target, as al_classify() sees them. */
enum al_tgt {
    TGT_LOCAL,                  /* alice */
    TGT_USER,                   /* \alice */
    TGT_ADDR,                   /* local@domain */
    TGT_INCLUDE,                /* :include:/path */
    TGT_FILEPIPE,               /* /file, |cmd, "/file", "|cmd" */
    TGT_EMPTY_INCLUDE,          /* :include: without a path */
    TGT_BAD
};

/* A growable array of owned strings. */
struct strvec {
    char **v;
    size_t n, cap;
};


/* ASCII lower case of c. */
static inline char al_lc(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* ---- aliases_parse.c ---- */


/*
 * Printable copy of the n bytes at s in out (size osz > 0) for an error message:
 * non-printable octets become \xHH, truncated to fit. Returns out.
 */
const char *al_esc(char *out, size_t osz, const char *s, size_t n);

/* Append s (the vector takes ownership) / free every string and the array. */
void al_strvec_push(struct strvec *v, char *s);
void al_strvec_free(struct strvec *v);

/*
 * Classify a trimmed target t (length tl > 0). *at: for TGT_ADDR the index of the '@' that
 * separates the domain, for TGT_INCLUDE the index where the path starts.
 */
enum al_tgt al_classify(const char *t, size_t tl, size_t *at);

/*
 * Parse the text (n octets) of the :include: file path into targets appended to out.
 * Error messages name the file and line, never its bytes. Returns 0 or -1 with the
 * message in err (size errsz).
 */
int al_parse_include(const char *path, const char *text, size_t n, struct strvec *out,
    char *err, size_t errsz);

/* ---- aliases_index.c ---- */

/* An empty table with one reference. */
struct aliases *al_table_new(void);

/* Index of the entry named name (length n, any case), or AL_NO_ENTRY; a may be NULL. */
size_t al_table_find(const struct aliases *a, const char *name, size_t n);

/* Append an entry (its name not yet in the table); the table takes ownership. */
void al_table_add(struct aliases *a, const struct alias_entry *e);

/* Record a source of entries (copies of origin and dir) owned by the table; returns it. */
struct alias_src *al_table_add_src(struct aliases *a, const char *origin, const char *dir,
    uid_t owner);

/*
 * Open path for reading and fstat it into *st. nofollow: a symbolic link as the last
 * component is refused. Returns the descriptor; -2 when it cannot be opened (why: strerror),
 * -1 when it is a symbolic link (nofollow) or not a regular file.
 */
int al_open_regular(const char *path, bool nofollow, struct stat *st, const char **why);

/*
 * Read the rest of the regular file open on fd (st: its fstat()); fd is closed. Returns 0
 * (*data NUL-terminated, free it), -2 when it cannot be read (why: strerror), -1 when it is
 * larger than ALIASES_FILE_MAX.
 */
int al_read_fd(int fd, const struct stat *st, char **data, size_t *len, const char **why);

/* Directory part of path (an allocated copy), or NULL when it has no '/'. */
char *al_dir_of(const char *path);

#endif
