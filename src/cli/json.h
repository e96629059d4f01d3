/*
 * cli/json.h - a small JSON reader for the daemon's LIST and SHOW answers.
 *
 * Owns:  RFC 8259 values (objects, arrays, strings with \u escapes and surrogate pairs,
 *        numbers, true, false, null) parsed into a tree.
 * Never: writes JSON or does I/O.
 * Limits: JSON_MAX_DEPTH levels of nesting; strings may not hold NUL (\u0000 is refused).
 */
#ifndef POSTEL_CLI_JSON_H
#define POSTEL_CLI_JSON_H

#include <stdbool.h>
#include <stddef.h>

#define JSON_MAX_DEPTH 32

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUM, JSON_STR, JSON_ARR, JSON_OBJ };

struct json {
    enum json_type type;
    bool b;
    double num;
    char *str;                  /* JSON_STR: UTF-8, NUL-terminated */
    struct json *items;         /* JSON_ARR and JSON_OBJ: n values */
    char **keys;                /* JSON_OBJ: n keys */
    size_t n;
};

/*
 * Parse one JSON value from s (n bytes; white space around it allowed, nothing else).
 * Returns a new tree (free with json_free), or NULL with the reason in err.
 */
struct json *json_parse(const char *s, size_t n, char *err, size_t errsz);
void json_free(struct json *v);

/* The member key of object v, or NULL (v NULL or not an object, or no such key). */
const struct json *json_get(const struct json *v, const char *key);
/* Member key as a string, or def when absent or not a string. */
const char *json_get_str(const struct json *v, const char *key, const char *def);
/* Member key as a number, or def when absent or not a number. */
double json_get_num(const struct json *v, const char *key, double def);
/* Member key as a boolean, or def when absent or not a boolean. */
bool json_get_bool(const struct json *v, const char *key, bool def);

#endif
