/*
 * cli/postel.c - the postel command (sendmail, mailq, newaliases by argv[0]).
 *
 * Today: `postel check-config [-f FILE]`. The sendmail-compatible interface is the
 * command-line stage of the project.
 */
#include <stdio.h>
#include <string.h>

#include "conf/conf.h"

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "check-config") == 0) {
        char err[1024];
        struct conf *c = argc >= 4 && strcmp(argv[2], "-f") == 0 ?
            conf_load(argv[3], err, sizeof err) :
            conf_parse(conf_default_text, strlen(conf_default_text), "(built-in)", err,
                sizeof err);
        if (c == NULL) {
            fprintf(stderr, "postel: %s\n", err);
            return 78;
        }
        conf_print(c, stdout);
        conf_free(c);
        return 0;
    }
    fprintf(stderr, "usage: postel check-config [-f FILE]\n");
    return 64;
}
