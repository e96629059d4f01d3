/*
 * cli/json.c - recursive-descent JSON reader (RFC 8259), bounded in depth.
 *
 * Owns:  see json.h.
 * Never: does I/O.
 * Limits: JSON_MAX_DEPTH.
 */
#include "cli/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xmalloc.h"

struct jp {
    const char *s;
    size_t n, i;
    const char *err;
};

static void ws(struct jp *p)
{
    while (p->i < p->n && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
            p->s[p->i] == '\r'))
        p->i++;
}

static int bad(struct jp *p, const char *why)
{
    if (p->err == NULL)
        p->err = why;
    return -1;
}

static int hex4(struct jp *p, unsigned *v)
{
    if (p->n - p->i < 4)
        return bad(p, "short \\u escape");
    *v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p->s[p->i++];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return bad(p, "bad \\u escape");
        *v = *v << 4 | d;
    }
    return 0;
}

static int put_utf8(struct buf *b, unsigned cp)
{
    unsigned char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        k = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 63));
        k = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
        u[2] = (unsigned char)(0x80 | (cp & 63));
        k = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 63));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 63));
        u[3] = (unsigned char)(0x80 | (cp & 63));
        k = 4;
    }
    return buf_append(b, u, k);
}

static int parse_string(struct jp *p, char **out)
{
    struct buf b;
    buf_init(&b, 0);
    p->i++;                     /* the opening quote */
    while (p->i < p->n) {
        unsigned char c = (unsigned char)p->s[p->i++];
        if (c == '"') {
            *out = xstrndup(b.p ? b.p : "", b.len);
            buf_free(&b);
            return 0;
        }
        if (c < 32) {
            buf_free(&b);
            return bad(p, "control character in string");
        }
        if (c != '\\') {
            (void)buf_append(&b, &c, 1);
            continue;
        }
        if (p->i >= p->n)
            break;
        c = (unsigned char)p->s[p->i++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *hit = c ? strchr(from, c) : NULL;
        if (hit) {
            (void)buf_append(&b, to + (hit - from), 1);
            continue;
        }
        unsigned cp;
        if (c != 'u' || hex4(p, &cp) == -1) {
            buf_free(&b);
            return bad(p, "bad escape in string");
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            unsigned lo;
            if (p->n - p->i < 6 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
                buf_free(&b);
                return bad(p, "lone surrogate");
            }
            p->i += 2;
            if (hex4(p, &lo) == -1 || lo < 0xDC00 || lo > 0xDFFF) {
                buf_free(&b);
                return bad(p, "lone surrogate");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if ((cp >= 0xDC00 && cp <= 0xDFFF) || cp == 0) {
            buf_free(&b);
            return bad(p, cp ? "lone surrogate" : "NUL in string");
        }
        (void)put_utf8(&b, cp);
    }
    buf_free(&b);
    return bad(p, "unterminated string");
}

static int parse_value(struct jp *p, struct json *v, int depth);

static int parse_container(struct jp *p, struct json *v, int depth, bool obj)
{
    char close = obj ? '}' : ']';
    v->type = obj ? JSON_OBJ : JSON_ARR;
    p->i++;
    ws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        return 0;
    }
    for (;;) {
        ws(p);
        char *key = NULL;
        if (obj) {
            if (p->i >= p->n || p->s[p->i] != '"')
                return bad(p, "object key expected");
            if (parse_string(p, &key) == -1)
                return -1;
            ws(p);
            if (p->i >= p->n || p->s[p->i] != ':') {
                free(key);
                return bad(p, "':' expected");
            }
            p->i++;
        }
        v->items = xreallocarray(v->items, v->n + 1, sizeof *v->items);
        if (obj) {
            v->keys = xreallocarray(v->keys, v->n + 1, sizeof *v->keys);
            v->keys[v->n] = key;
        }
        memset(&v->items[v->n], 0, sizeof v->items[v->n]);
        v->n++;
        if (parse_value(p, &v->items[v->n - 1], depth + 1) == -1)
            return -1;
        ws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            return 0;
        }
        return bad(p, obj ? "',' or '}' expected" : "',' or ']' expected");
    }
}

static int parse_number(struct jp *p, struct json *v)
{
    size_t st = p->i;
    if (p->i < p->n && p->s[p->i] == '-')
        p->i++;
    size_t digits = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
        p->i++;
    if (p->i == digits || (p->s[digits] == '0' && p->i - digits > 1))
        return bad(p, "bad number");
    if (p->i < p->n && p->s[p->i] == '.') {
        size_t f = ++p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        if (p->i == f)
            return bad(p, "bad number");
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        size_t e = p->i;
        while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
            p->i++;
        if (p->i == e)
            return bad(p, "bad number");
    }
    char tmp[64];
    size_t len = p->i - st;
    if (len >= sizeof tmp)
        return bad(p, "number too long");
    memcpy(tmp, p->s + st, len);
    tmp[len] = '\0';
    v->type = JSON_NUM;
    v->num = strtod(tmp, NULL);
    return 0;
}

static int literal(struct jp *p, const char *word)
{
    size_t k = strlen(word);
    if (p->n - p->i < k || memcmp(p->s + p->i, word, k) != 0)
        return bad(p, "unexpected character");
    p->i += k;
    return 0;
}

static int parse_value(struct jp *p, struct json *v, int depth)
{
    if (depth > JSON_MAX_DEPTH)
        return bad(p, "nested too deeply");
    ws(p);
    if (p->i >= p->n)
        return bad(p, "value expected");
    char c = p->s[p->i];
    switch (c) {
    case '{': return parse_container(p, v, depth, true);
    case '[': return parse_container(p, v, depth, false);
    case '"':
        v->type = JSON_STR;
        return parse_string(p, &v->str);
    case 't': v->type = JSON_BOOL; v->b = true; return literal(p, "true");
    case 'f': v->type = JSON_BOOL; v->b = false; return literal(p, "false");
    case 'n': v->type = JSON_NULL; return literal(p, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return parse_number(p, v);
        return bad(p, "unexpected character");
    }
}

static void free_inner(struct json *v)
{
    free(v->str);
    for (size_t i = 0; i < v->n; i++) {
        free_inner(&v->items[i]);
        if (v->keys)
            free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
}

void json_free(struct json *v)
{
    if (v == NULL)
        return;
    free_inner(v);
    free(v);
}

struct json *json_parse(const char *s, size_t n, char *err, size_t errsz)
{
    struct jp p = { s, n, 0, NULL };
    struct json *v = xcalloc(1, sizeof *v);
    if (parse_value(&p, v, 0) == 0) {
        ws(&p);
        if (p.i == p.n)
            return v;
        bad(&p, "text after the value");
    }
    snprintf(err, errsz, "JSON: %s at offset %zu", p.err, p.i);
    json_free(v);
    return NULL;
}

const struct json *json_get(const struct json *v, const char *key)
{
    if (v == NULL || v->type != JSON_OBJ)
        return NULL;
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->keys[i], key) == 0)
            return &v->items[i];
    return NULL;
}

const char *json_get_str(const struct json *v, const char *key, const char *def)
{
    const struct json *m = json_get(v, key);
    return m && m->type == JSON_STR ? m->str : def;
}

double json_get_num(const struct json *v, const char *key, double def)
{
    const struct json *m = json_get(v, key);
    return m && m->type == JSON_NUM ? m->num : def;
}

bool json_get_bool(const struct json *v, const char *key, bool def)
{
    const struct json *m = json_get(v, key);
    return m && m->type == JSON_BOOL ? m->b : def;
}
