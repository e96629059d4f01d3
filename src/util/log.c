/*
 * util/log.c - event log to stderr, a file or syslog. Safe to call from worker threads:
 * each line is formatted first and written with one call. A log file is reopened in place
 * (dup2 onto the same descriptor), so threads writing at that moment never see a closed one.
 */
#include "util/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/str.h"

static const char *log_prog = "postel";
static bool log_syslog;
static enum log_level log_level = LOG_LVL_INFO;
static int log_fd = STDERR_FILENO;
static char *log_path;          /* the file, for log_reopen(); NULL: stderr or syslog */

void log_init(const char *prog, bool use_syslog, enum log_level level)
{
    log_prog = prog;
    log_syslog = use_syslog;
    log_level = level;
    if (use_syslog)
        openlog(prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

int log_open_file(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd == -1)
        return -1;
    char *p = strdup(path);
    if (p == NULL) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    free(log_path);
    log_path = p;
    log_syslog = false;
    log_fd = fd;
    return 0;
}

int log_reopen(void)
{
    if (log_path == NULL)
        return 0;
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
    if (fd == -1)
        return -1;
    /* the same descriptor number now names the new file: no writer sees it closed */
    int r = dup2(fd, log_fd);
    int e = errno;
    close(fd);
    errno = e;
    return r == -1 ? -1 : 0;
}

enum log_level log_get_level(void)
{
    return log_level;
}

static void log_emit(enum log_level lvl, const char *fmt, va_list ap, const char *err)
{
    char raw[2048], msg[2048 * 4];
    int n = vsnprintf(raw, sizeof raw, fmt, ap);
    if (n < 0)
        return;
    /* A log line can never be forged or carry terminal controls, whatever a peer sent:
     * every octet outside printable ASCII is written as \xHH. */
    size_t rl = (size_t)n < sizeof raw ? (size_t)n : sizeof raw - 1, o = 0;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < rl && o + 5 < sizeof msg; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c >= 0x20 && c < 0x7f) {
            msg[o++] = (char)c;
        } else {
            msg[o++] = '\\';
            msg[o++] = 'x';
            msg[o++] = hex[c >> 4];
            msg[o++] = hex[c & 15];
        }
    }
    msg[o] = '\0';
    if (log_syslog) {
        static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
        if (err)
            syslog(prio[lvl], "%s: %s", msg, err);
        else
            syslog(prio[lvl], "%s", msg);
        return;
    }
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    static const char *tag[] = { "error: ", "warning: ", "", "debug: " };
    char line[sizeof msg + 256];
    int m = snprintf(line, sizeof line, "%s.%03ld %s[%ld]: %s%s%s%s\n", stamp,
        ts.tv_nsec / 1000000, log_prog, (long)getpid(), tag[lvl], msg, err ? ": " : "",
        err ? err : "");
    if (m < 0)
        return;
    size_t len = (size_t)m < sizeof line ? (size_t)m : sizeof line - 1;
    if (len > 0 && line[len - 1] != '\n')
        line[len - 1] = '\n';
    ssize_t w = write(log_fd, line, len);
    (void)w;
}

#define LOG_FN(name, lvl, with_err)                                  \
    void name(const char *fmt, ...)                                  \
    {                                                                \
        if ((lvl) > log_level)                                       \
            return;                                                  \
        int saved = errno;                                           \
        char eb[128];                                                \
        const char *e = (with_err) ? strerror_r(saved, eb, sizeof eb) : NULL; \
        va_list ap;                                                  \
        va_start(ap, fmt);                                           \
        log_emit((lvl), fmt, ap, e);                                 \
        va_end(ap);                                                  \
        errno = saved;                                               \
    }

LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_debug, LOG_LVL_DEBUG, 0)
LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)

void log_fatal(const char *fmt, ...)
{
    char eb[128];
    const char *e = strerror_r(errno, eb, sizeof eb);
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LVL_ERR, fmt, ap, e);
    va_end(ap);
    exit(1);
}

void log_fatalx(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_emit(LOG_LVL_ERR, fmt, ap, NULL);
    va_end(ap);
    exit(1);
}

const char *log_quote(char *out, size_t osz, const char *s, size_t n)
{
    return str_escape(out, osz, s, n);
}
