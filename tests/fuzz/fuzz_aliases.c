/*
 * tests/fuzz/fuzz_aliases.c - libFuzzer target for aliases_parse() and aliases_expand().
 *
 * Owns:  parsing arbitrary text as an aliases table; when it parses, expanding the names it
 *        defines and checking the result invariants (lower-cased, deduplicated locals).
 * Never: expands inputs that mention "include": that would read files named by the input.
 * Build: clang -fsanitize=fuzzer,address,undefined -Isrc tests/fuzz/fuzz_aliases.c
 *        src/policy/aliases_*.c src/util/buf.c src/util/str.c src/util/xmalloc.c src/util/log.c
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/aliases.h"
#include "util/str.h"
#include "util/xmalloc.h"

#define MAX_NAMES 64

static bool is_local(const char *domain, void *ctx)
{
    (void)ctx;
    return str_ieq(domain, strlen(domain), "local.example");
}

static bool mentions_include(const uint8_t *d, size_t n)
{
    static const char w[] = "include";

    for (size_t i = 0; i + sizeof w - 1 <= n; i++) {
        if (str_ieq((const char *)d + i, sizeof w - 1, w))
            return true;
    }
    return false;
}

static void check_result(const struct alias_result *r)
{
    for (size_t i = 0; i < r->nlocal; i++) {
        for (const char *p = r->local[i]; *p; p++) {
            if (*p >= 'A' && *p <= 'Z')
                __builtin_trap();
        }
        for (size_t j = i + 1; j < r->nlocal && j < i + 64; j++) {
            if (strcmp(r->local[i], r->local[j]) == 0)
                __builtin_trap();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct alias_result r = { 0 };
    struct aliases *a, *b;
    size_t pos = 0, names = 0;

    a = aliases_parse((const char *)data, size, "fuzz", NULL, err, sizeof err);
    if (a == NULL) {
        if (err[0] == '\0' || strchr(err, '\n') != NULL)
            __builtin_trap();       /* errors are one non-empty line */
        return 0;
    }
    /* Merging a table with a copy of itself clashes exactly when it is not empty. */
    b = aliases_parse((const char *)data, size, "copy", NULL, err, sizeof err);
    if (b == NULL)
        __builtin_trap();
    if ((aliases_merge(a, b, err, sizeof err) == 0) != (aliases_count(a) == 0))
        __builtin_trap();

    if (!mentions_include(data, size)) {
        while (pos < size && names < MAX_NAMES) {
            const char *l = (const char *)data + pos;
            const char *nl = memchr(l, '\n', size - pos);
            size_t ll = nl ? (size_t)(nl - l) : size - pos;
            const char *colon = memchr(l, ':', ll);
            pos += ll + 1;
            if (colon == NULL || colon == l)
                continue;
            char *name = xstrndup(l, (size_t)(colon - l));
            names++;
            if (aliases_exists(a, name) != (aliases_members(a, name) != NULL))
                __builtin_trap();
            size_t nl0 = r.nlocal, nr0 = r.nremote;
            int rc = aliases_expand(a, name, is_local, NULL, &r, err, sizeof err);
            if (rc == -2)
                __builtin_trap();   /* no :include: here, so nothing temporary */
            if (rc == -1 && (r.nlocal != nl0 || r.nremote != nr0))
                __builtin_trap();   /* errors leave the result unchanged */
            free(name);
        }
        check_result(&r);
    }
    alias_result_free(&r);
    aliases_free(a);
    return 0;
}
