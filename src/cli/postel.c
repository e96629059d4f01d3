/*
 * cli/postel.c - the postel command; also sendmail, mailq and newaliases by argv[0].
 *
 * Owns:  dispatch by the name it was called by, the postel subcommands (queue, status,
 *        reload, verify, config, check-config, log, passwd) from one table (subcmds[]: name, usage
 *        lines, handler) and the usage text made from it.
 * Never: talks to the daemon itself: ctlcmd.c, submit.c and sendmail.c do.
 *
 * Usage: see usage() and docs/postel.1, docs/sendmail.1.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <termios.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "cli/ctlcmd.h"
#include "cli/sendmail.h"
#include "conf/conf.h"
#include "policy/auth.h"

#ifndef POSTEL_VERSION
#error "POSTEL_VERSION comes from the Makefile (CHANGES.md's top entry)"
#endif

static void usage(FILE *f);

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "postel: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    usage(stderr);
    return EX_USAGE;
}

static int cmd_check_config(int argc, char **argv, const char *global)
{
    const char *file = global;
    if (argc == 3 && strcmp(argv[1], "-f") == 0)
        file = argv[2];
    else if (argc != 1)
        return usage_error("check-config takes [-f FILE]");
    struct ctlcmd cc;
    int st = ctlcmd_init(&cc, "postel", file);
    if (st != EX_OK)
        return st;
    conf_print(cc.conf, stdout);
    ctlcmd_free(&cc);
    return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
}

static void warn_stderr(void *arg, const char *text)
{
    (void)arg;
    fprintf(stderr, "postel: warning: %s\n", text);
}

/* config [-d | -n] [-f FILE]: the effective settings, only the changed ones, or defaults. */
static int cmd_config(int argc, char **argv, const char *global)
{
    const char *file = global;
    bool defaults = false, changed = false, own_file = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-d") == 0) {
            defaults = true;
        } else if (strcmp(argv[i], "-n") == 0) {
            changed = true;
        } else if (strcmp(argv[i], "-f") == 0 && i + 1 < argc) {
            file = argv[++i];
            own_file = true;
        } else {
            return usage_error("config takes [-d | -n] [-f FILE]");
        }
    }
    if (defaults && (changed || own_file))
        return usage_error("config -d reads no file: it takes neither -n nor -f");
    if (defaults) {
        conf_print_defaults(stdout);
        return fflush(stdout) == 0 ? EX_OK : EX_IOERR;
    }
    struct ctlcmd cc;
    int st = ctlcmd_init(&cc, "postel", file);
    if (st != EX_OK)
        return st;
    if (changed)
        conf_print_changed(cc.conf, stdout);
    else
        conf_print(cc.conf, stdout);
    int out = fflush(stdout);
    conf_warnings(cc.conf, warn_stderr, NULL);
    ctlcmd_free(&cc);
    return out == 0 ? EX_OK : EX_IOERR;
}

/* Print the lines of f that contain id. Returns how many. */
static unsigned long grep_id(FILE *f, const char *id)
{
    char *line = NULL;
    size_t cap = 0;
    unsigned long hits = 0;
    while (getline(&line, &cap, f) != -1) {
        if (strstr(line, id)) {
            fputs(line, stdout);
            hits++;
        }
    }
    free(line);
    return hits;
}

static int cmd_log(int argc, char **argv)
{
    const char *file = getenv("POSTEL_LOG");
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-l") == 0) {
        file = argv[i + 1];
        i += 2;
    }
    if (i + 1 != argc || argv[i][0] == '\0')
        return usage_error("log takes [-l FILE] ID");
    const char *id = argv[i];
    unsigned long hits;
    if (file && file[0]) {
        FILE *f = fopen(file, "r");
        if (f == NULL) {
            fprintf(stderr, "postel: %s: %s\n", file, strerror(errno));
            return EX_NOINPUT;
        }
        hits = grep_id(f, id);
        fclose(f);
    } else {
        int p[2];
        if (pipe(p) == -1)
            return EX_OSERR;
        pid_t pid = fork();
        if (pid == -1)
            return EX_OSERR;
        if (pid == 0) {
            close(p[0]);
            dup2(p[1], 1);
            close(p[1]);
            execlp("journalctl", "journalctl", "-t", "posteld", "--no-pager", "-o", "cat",
                (char *)NULL);
            _exit(127);
        }
        close(p[1]);
        FILE *f = fdopen(p[0], "r");
        hits = f ? grep_id(f, id) : 0;
        if (f)
            fclose(f);
        else
            close(p[0]);
        int ws = 0;
        while (waitpid(pid, &ws, 0) == -1 && errno == EINTR)
            ;
        if (WIFEXITED(ws) && WEXITSTATUS(ws) == 127) {
            fprintf(stderr, "postel: journalctl is not available; name the log file with "
                "-l FILE or POSTEL_LOG (or: grep %s FILE)\n", id);
            return EX_UNAVAILABLE;
        }
    }
    (void)fflush(stdout);
    if (hits == 0) {
        fprintf(stderr, "postel: no log lines for %s\n", id);
        return 1;
    }
    return EX_OK;
}

static int cmd_queue(struct ctlcmd *cc, int argc, char **argv)
{
    if (argc < 2)
        return usage_error("queue needs a subcommand");
    const char *sub = argv[1];
    bool json = argc >= 3 && strcmp(argv[argc - 1], "--json") == 0;
    int nargs = argc - 2 - (json ? 1 : 0);
    if (strcmp(sub, "list") == 0 && nargs == 0)
        return ctlcmd_list(cc, json);
    if (strcmp(sub, "show") == 0 && nargs == 1)
        return ctlcmd_show(cc, argv[2], json);
    if (json)
        return usage_error("--json goes with queue list and queue show");
    if (strcmp(sub, "flush") == 0 && nargs <= 1)
        return ctlcmd_admin(cc, "FLUSH", nargs ? argv[2] : NULL, false);
    static const char *const verbs[][2] = {
        { "hold", "HOLD" }, { "release", "RELEASE" }, { "delete", "DELETE" },
        { "bounce", "BOUNCE" },
    };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (strcmp(sub, verbs[i][0]) != 0)
            continue;
        if (nargs < 1)
            return usage_error("queue %s needs a queue id", verbs[i][0]);
        int worst = EX_OK;
        for (int k = 2; k < argc; k++) {
            int st = ctlcmd_admin(cc, verbs[i][1], argv[k], false);
            if (st != EX_OK)
                worst = st;
        }
        return worst;
    }
    return usage_error("unknown queue subcommand or arguments: %s", sub);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* Read a line from stdin without its end; without echo when it is a terminal. */
static int read_secret(const char *prompt, char *out, size_t osz)
{
    bool tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    if (tty) {
        fprintf(stderr, "%s", prompt);
        if (tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        } else {
            tty = false;
        }
    }
    char *r = fgets(out, (int)osz, stdin);
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    if (r == NULL)
        return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

/*
 * postel passwd USER [FILE]: read a password (twice on a terminal) and print or store the
 * "user:hash" line for auth_passwd_file. With FILE the user's line is replaced or added.
 */
static int cmd_passwd(int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        return usage_error("usage: postel passwd USER [FILE]");
    const char *user = argv[1];
    if (user[0] == '\0' || strpbrk(user, ": \t\r\n#") != NULL)
        return usage_error("passwd: a user name may not contain ':', '#' or white space");
    char pw[1100], again[1100];
    if (read_secret("Password: ", pw, sizeof pw) == -1 || pw[0] == '\0') {
        fprintf(stderr, "postel: passwd: no password given\n");
        return EX_DATAERR;
    }
    if (isatty(STDIN_FILENO)) {
        if (read_secret("Again: ", again, sizeof again) == -1 || strcmp(pw, again) != 0) {
            fprintf(stderr, "postel: passwd: the passwords differ\n");
            explicit_bzero(pw, sizeof pw);
            return EX_DATAERR;
        }
        explicit_bzero(again, sizeof again);
    }
    char hash[512];
    int r = auth_hash_password(pw, hash, sizeof hash);
    explicit_bzero(pw, sizeof pw);
    if (r == -1) {
        fprintf(stderr, "postel: passwd: cannot hash the password\n");
        return EX_SOFTWARE;
    }
    if (argc == 2) {
        printf("%s:%s\n", user, hash);
        return EX_OK;
    }
    /* Rewrite FILE with the user's line replaced (or added), atomically. */
    const char *file = argv[2];
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", file, (long)getpid());
    FILE *in = fopen(file, "r"), *out = NULL;
    if (in == NULL && errno != ENOENT) {
        fprintf(stderr, "postel: passwd: %s: %s\n", file, strerror(errno));
        return EX_NOINPUT;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd == -1 || (out = fdopen(fd, "w")) == NULL) {
        fprintf(stderr, "postel: passwd: %s: %s\n", tmp, strerror(errno));
        if (in)
            fclose(in);
        return EX_CANTCREAT;
    }
    size_t ul = strlen(user);
    bool done = false;
    char line[4096];
    while (in && fgets(line, sizeof line, in)) {
        if (!strncmp(line, user, ul) && line[ul] == ':') {
            if (!done)
                fprintf(out, "%s:%s\n", user, hash);
            done = true;
            continue;
        }
        fputs(line, out);
    }
    if (!done)
        fprintf(out, "%s:%s\n", user, hash);
    if (in)
        fclose(in);
    if (fflush(out) != 0 || fsync(fileno(out)) != 0 || fclose(out) != 0 ||
        rename(tmp, file) != 0) {
        fprintf(stderr, "postel: passwd: cannot write %s: %s\n", file, strerror(errno));
        unlink(tmp);
        return EX_IOERR;
    }
    fprintf(stderr, "postel: passwd: %s %s in %s\n", done ? "changed" : "added", user, file);
    return EX_OK;
}

/* ---- the subcommands ---- */

/* Connect to the daemon (through the configuration), run fn, disconnect. */
static int with_daemon(const char *conf_file, int argc, char **argv,
    int (*fn)(struct ctlcmd *cc, int argc, char **argv))
{
    struct ctlcmd cc;
    int st = ctlcmd_init(&cc, "postel", conf_file);
    if (st != EX_OK)
        return st;
    st = fn(&cc, argc, argv);
    ctlcmd_free(&cc);
    return st;
}

static int run_queue(int argc, char **argv, const char *conf_file)
{
    return with_daemon(conf_file, argc, argv, cmd_queue);
}

static int do_status(struct ctlcmd *cc, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return ctlcmd_status(cc);
}

static int run_status(int argc, char **argv, const char *conf_file)
{
    if (argc != 1)
        return usage_error("%s takes no arguments", argv[0]);
    return with_daemon(conf_file, argc, argv, do_status);
}

static int do_reload(struct ctlcmd *cc, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return ctlcmd_admin(cc, "RELOAD", NULL, false);
}

static int run_reload(int argc, char **argv, const char *conf_file)
{
    if (argc != 1)
        return usage_error("%s takes no arguments", argv[0]);
    return with_daemon(conf_file, argc, argv, do_reload);
}

static int do_verify(struct ctlcmd *cc, int argc, char **argv)
{
    return ctlcmd_verify(cc, argv + 1, (size_t)(argc - 1));
}

static int run_verify(int argc, char **argv, const char *conf_file)
{
    if (argc < 2)
        return usage_error("verify needs an address");
    return with_daemon(conf_file, argc, argv, do_verify);
}

static int run_check_config(int argc, char **argv, const char *conf_file)
{
    return cmd_check_config(argc, argv, conf_file);
}

static int run_config(int argc, char **argv, const char *conf_file)
{
    return cmd_config(argc, argv, conf_file);
}

static int run_log(int argc, char **argv, const char *conf_file)
{
    (void)conf_file;
    return cmd_log(argc, argv);
}

static int run_passwd(int argc, char **argv, const char *conf_file)
{
    (void)conf_file;
    return cmd_passwd(argc, argv);
}

/* sendmail, mailq, newaliases as subcommands: the global -C becomes theirs by going first. */
static int run_sendmail(int argc, char **argv, const char *conf_file)
{
    const char *cmd = argv[0];
    enum sendopts_mode mode = cmd[0] == 's' ? SENDOPTS_DELIVER :
        cmd[0] == 'm' ? SENDOPTS_QUEUE : SENDOPTS_ALIASES;
    if (conf_file == NULL)
        return sendmail_main(argc, argv, mode, cmd);
    char **v = calloc((size_t)argc + 3, sizeof *v);
    if (v == NULL)
        return EX_OSERR;
    v[0] = argv[0];
    v[1] = (char *)"-C";
    v[2] = (char *)conf_file;
    for (int k = 1; k < argc; k++)
        v[k + 2] = argv[k];
    int st = sendmail_main(argc + 2, v, mode, cmd);
    free(v);
    return st;
}

static int run_help(int argc, char **argv, const char *conf_file)
{
    (void)argc;
    (void)argv;
    (void)conf_file;
    usage(stdout);
    return EX_OK;
}

static int run_version(int argc, char **argv, const char *conf_file)
{
    (void)argc;
    (void)argv;
    (void)conf_file;
    printf("postel %s\n", POSTEL_VERSION);
    return EX_OK;
}

/* ---- the subcommand table ---- */

struct subcmd {
    const char *name;
    /* Its lines in usage(), in table order; NULL: described by the entry before. */
    const char *usage;
    /* Run it: argv[0] is the subcommand's name; conf_file is -C FILE or NULL. Checks its
     * own arguments. Returns the exit status (sysexits.h). */
    int (*run)(int argc, char **argv, const char *conf_file);
};

static const struct subcmd subcmds[] = {
    { "queue",
      "  queue list [--json]        the queue (like mailq)\n"
      "  queue show ID [--json]     one message: envelope and headers\n"
      "  queue flush [DOMAIN]       retry deferred mail now (of one domain)\n"
      "  queue hold ID | release ID | delete ID | bounce ID\n", run_queue },
    { "status",
      "  status                     the daemon's counters\n", run_status },
    { "reload",
      "  reload                     re-read the configuration and aliases\n", run_reload },
    { "verify",
      "  verify ADDRESS...          how each address would be delivered\n", run_verify },
    { "config",
      "  config [-f FILE]           print the effective configuration\n"
      "  config -n [-f FILE]        only the settings that differ from the defaults\n"
      "  config -d                  every setting with its default\n", run_config },
    { "check-config",
      "  check-config [-f FILE]     the effective configuration, as config prints it\n",
      run_check_config },
    { "log",
      "  log [-l FILE] ID           every log line of a queue id\n", run_log },
    { "passwd",
      "  passwd USER [FILE]         a user:hash line for auth_passwd_file (FILE: update it)\n",
      run_passwd },
    { "sendmail",
      "  sendmail ARGS | mailq ARGS | newaliases ARGS\n", run_sendmail },
    { "mailq", NULL, run_sendmail },
    { "newaliases", NULL, run_sendmail },
    { "help",
      "  help, --help; version, -V, --version\n", run_help },
    { "version", NULL, run_version },
};

static const struct subcmd *subcmd_find(const char *name)
{
    for (size_t i = 0; i < sizeof subcmds / sizeof subcmds[0]; i++)
        if (strcmp(subcmds[i].name, name) == 0)
            return &subcmds[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: postel [-C FILE] COMMAND [ARGS]\n");
    for (size_t i = 0; i < sizeof subcmds / sizeof subcmds[0]; i++)
        if (subcmds[i].usage)
            fputs(subcmds[i].usage, f);
    fprintf(f, "The configuration is -C FILE, else $POSTEL_CONF, else " CTLCMD_SYSTEM_CONF
        " if it exists,\nelse the built-in one. See postel(1) and sendmail(1).\n");
}

int main(int argc, char **argv)
{
    const char *name = argc > 0 ? base_name(argv[0]) : "postel";
    /* A reader that went away (mailq | head) is not worth a signal death. */
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(name, "sendmail") == 0)
        return sendmail_main(argc, argv, SENDOPTS_DELIVER, "sendmail");
    if (strcmp(name, "mailq") == 0)
        return sendmail_main(argc, argv, SENDOPTS_QUEUE, "mailq");
    if (strcmp(name, "newaliases") == 0)
        return sendmail_main(argc, argv, SENDOPTS_ALIASES, "newaliases");

    const char *conf_file = NULL;
    int i = 1;
    while (i < argc && argv[i][0] == '-') {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return EX_OK;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("postel %s\n", POSTEL_VERSION);
            return EX_OK;
        }
        if (strcmp(a, "-C") == 0 && i + 1 < argc) {
            conf_file = argv[i + 1];
            i += 2;
            continue;
        }
        return usage_error("unknown option %s", a);
    }
    if (i >= argc) {
        usage(stderr);
        return EX_USAGE;
    }
    const char *cmd = argv[i];
    const struct subcmd *sc = subcmd_find(cmd);
    if (sc == NULL)
        return usage_error("unknown command %s", cmd);
    return sc->run(argc - i, argv + i, conf_file);
}
