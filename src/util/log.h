/*
 * util/log.h - one line per event, to stderr (foreground) or syslog (service).
 *
 * Lines about a message start with its queue id and carry key=value fields.
 * Values that came from a peer are escaped with log_quote() first.
 */
#ifndef POSTEL_UTIL_LOG_H
#define POSTEL_UTIL_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERR, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Set the program name, the destination (syslog or stderr) and the verbosity. */
void log_init(const char *prog, bool use_syslog, enum log_level level);
/* Current verbosity. */
enum log_level log_get_level(void);
/* Log to the file at path from now on (appended; created 0640 if missing), instead of
 * stderr or syslog. Returns 0, or -1 with errno. */
int log_open_file(const char *path);
/* Open the log file again under its name (after logrotate moved it; SIGUSR1). Returns 0
 * (also when logging does not go to a file), or -1 with errno: the old file stays in use. */
int log_reopen(void);

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Warning with ": strerror(errno)" appended. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Warning without errno. */
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Error and exit(1): startup, configuration and broken invariants only. */
void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void log_fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/*
 * Escape n bytes of peer data for a log line into out (size osz): printable ASCII kept,
 * everything else as \xHH. Returns out.
 */
const char *log_quote(char *out, size_t osz, const char *s, size_t n);

#endif
