/*
 * tests/fuzz/fuzz_conf.c - the configuration parser on arbitrary text.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    /* aliases_file and spool paths would touch the file system: the parser only reads. */
    if (memmem(data, size, "aliases_file", 12))
        return 0;
    struct conf *c = conf_parse((const char *)data, size, "fuzz.conf", err, sizeof err);
    if (c) {
        FILE *f = fopen("/dev/null", "w");
        if (f) {
            conf_print(c, f);
            fclose(f);
        }
        conf_free(c);
    }
    return 0;
}
