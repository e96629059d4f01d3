/*
 * tests/fuzz/fuzz_conf.c - the configuration parser on arbitrary text: the error report,
 * printing (all, changed only), and the reload diff against the defaults.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"

static void ignore(void *arg, const char *text)
{
    (void)arg;
    (void)text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    /* aliases_file and spool paths would touch the file system: the parser only reads. */
    if (memmem(data, size, "aliases_file", 12))
        return 0;
    struct conf *c = conf_parse((const char *)data, size, "fuzz.conf", err, sizeof err);
    if (c == NULL) {
        if (strlen(err) >= sizeof err)
            __builtin_trap();
        return 0;
    }
    FILE *f = fopen("/dev/null", "w");
    if (f) {
        conf_print(c, f);
        conf_print_changed(c, f);
        fclose(f);
    }
    (void)conf_warnings(c, ignore, NULL);
    struct conf *d = conf_parse("", 0, "(defaults)", err, sizeof err);
    if (d) {
        char changed[1024];
        conf_keep_static(d, c, changed, sizeof changed);
        conf_free(d);
    }
    conf_free(c);
    return 0;
}
