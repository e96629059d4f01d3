/*
 * tests/fuzz/fuzz_cli.c - the command line's parsers: the -t address-list parser (message
 * headers come from any local program) and the JSON reader of control-socket answers.
 * The first input byte picks the parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/addrlist.h"
#include "cli/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    char err[256];
    if (data[0] & 1) {
        struct addrlist al = { 0 };
        if (addrlist_parse(s, n, &al, err, sizeof err) == 0) {
            for (size_t i = 0; i < al.n; i++)
                if (al.addrs[i] == NULL || strchr(al.addrs[i], '\n') != NULL)
                    abort();    /* an address never spans lines */
        }
        addrlist_free(&al);
    } else {
        struct json *v = json_parse(s, n, err, sizeof err);
        if (v) {
            (void)json_get_str(v, "id", NULL);
            (void)json_get_num(v, "size", 0);
            (void)json_get_bool(v, "held", false);
            json_free(v);
        }
    }
    return 0;
}
