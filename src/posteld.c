/*
 * posteld.c - the postel daemon: one process, one event loop.
 *
 * Usage: posteld [-f config] [-n] [-d | -s | -l file] [-v] | --help | -V
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "conf/conf.h"
#include "deliver/mx.h"
#include "deliver/remote.h"
#include "net/control.h"
#include "net/smtpd.h"
#include "net/tls.h"
#include "policy/auth.h"
#include "queue/pickup.h"
#include "queue/qmgr.h"
#include "queue/spool.h"
#include "util/container.h"
#include "util/fsx.h"
#include "util/log.h"
#include "util/str.h"
#include "util/tpool.h"

#ifndef POSTEL_VERSION
#error "POSTEL_VERSION comes from the Makefile (CHANGES.md's top entry)"
#endif

struct daemon {
    struct event_base *base;
    struct conf *conf;          /* the current configuration (the daemon's reference) */
    struct remote *remote;
    struct spool *spool;
    struct tpool *wq;
    struct smtpd *smtpd;
    struct qmgr *qmgr;
    struct event *stop_check;
    int stop_ticks;
    /* the drop directory, scanned at start and every PICKUP_EVERY seconds */
    struct event *pickup_timer;
    struct tpool_job pickup_job;
    bool pickup_busy;
    struct env_msg *picked;
    size_t npicked;
    struct conf *pickup_conf;   /* the configuration a scan runs with (a reference) */
};

#define PICKUP_EVERY 5

/* The directories postel keeps in spool_dir, and their modes when it creates them. */
static const struct spool_subdir {
    const char *name;
    mode_t mode;
    bool fix_mode;              /* set the mode even when the directory exists */
} spool_subdirs[] = {
    { "incoming", 0700, false },
    { "queue", 0700, false },
    { "corrupt", 0700, false },
    { "maildrop", 01733, true },    /* anyone drops a file in, nobody else can list it */
    { "tls", 0700, false },
};

/* Files postel itself makes in tls/ (tls_server_ctx() without tls_cert). */
static const char *const tls_own_files[] = { "selfsigned.crt", "selfsigned.key", NULL };

static void pickup_run(struct tpool_job *j)
{
    struct daemon *dm = container_of(j, struct daemon, pickup_job);
    dm->npicked = pickup_scan(dm->pickup_conf, dm->spool, &dm->picked);
}

static void pickup_done(struct tpool_job *j)
{
    struct daemon *dm = container_of(j, struct daemon, pickup_job);
    for (size_t i = 0; i < dm->npicked; i++)
        qmgr_add(dm->qmgr, &dm->picked[i]);
    free(dm->picked);
    dm->picked = NULL;
    dm->npicked = 0;
    dm->pickup_busy = false;
    conf_free(dm->pickup_conf);
    dm->pickup_conf = NULL;
}

static void on_pickup_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *dm = arg;
    if (dm->pickup_busy || dm->stop_check)
        return;
    dm->pickup_busy = true;
    dm->pickup_conf = conf_ref(dm->conf);
    dm->pickup_job.fn = pickup_run;
    dm->pickup_job.done = pickup_done;
    tpool_submit(dm->wq, &dm->pickup_job);
}

static void usage(FILE *f, int status)
{
    fprintf(f, "usage: posteld [-f config] [-n] [-d | -s | -l file] [-v]\n"
        "  -f FILE  configuration file (default: the built-in configuration)\n"
        "  -n       check the configuration, print the effective settings, exit\n"
        "  -d       log to stderr (the default)\n"
        "  -s       log to syslog (facility mail), as a service does\n"
        "  -l FILE  log to FILE (appended); SIGUSR1 opens it again after a rotation\n"
        "  -v       debug logging\n"
        "  -V, --version  print the version; -h, --help  this text\n"
        "Signals: SIGHUP reloads the certificate and key, SIGUSR1 reopens the log file,\n"
        "SIGTERM and SIGINT stop. See posteld(8).\n");
    exit(status);
}

/* SIGUSR1: open the log file again (logrotate moved it). */
static void on_sigusr1(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    if (log_reopen() == -1)
        log_warn("SIGUSR1: cannot reopen the log file; still writing the old one");
    else
        log_info("SIGUSR1: log file reopened");
}

static void raise_fd_limit(const struct conf *c)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
        return;
    rlim_t want = (rlim_t)c->max_connections + 256;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
        log_warn("cannot raise the open-file limit");
    if (rl.rlim_cur < want)
        log_warnx("open-file limit %llu is below max_connections %zu",
            (unsigned long long)rl.rlim_cur, c->max_connections);
}

static void on_stop_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *dm = arg;
    /* Give sessions up to 5 s to flush their 421 and finish a commit in flight. */
    if (smtpd_sessions(dm->smtpd) == 0 || ++dm->stop_ticks > 50)
        event_base_loopbreak(dm->base);
}

static void warn_log(void *arg, const char *text);

/* RELOAD: the new configuration for everything that starts from now on. */
static void on_reload(void *arg, struct conf *nc)
{
    struct daemon *dm = arg;
    struct conf *old = dm->conf;
    conf_warnings(nc, warn_log, NULL);
    dm->conf = nc;
    smtpd_set_conf(dm->smtpd, nc);
    qmgr_set_conf(dm->qmgr, nc);
    remote_set_conf(dm->remote, nc);
    conf_free(old);
}

static SSL_CTX *make_server_tls(const struct conf *c, bool at_start, char *err, size_t errsz)
{
    if (!c->tls && c->smtps.n == 0)
        return NULL;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tls", c->spool_dir);
    SSL_CTX *ctx = tls_server_ctx(c->tls_cert, c->tls_key, dir, c->hostname, err, errsz);
    if (ctx == NULL && at_start) {
        /* At start a configured certificate must load; on SIGHUP the old one stays. */
        if (c->tls_cert)
            log_fatalx("tls: %s", err);
        log_warnx("tls: %s; STARTTLS is not offered", err);
    }
    return ctx;
}

/* SIGHUP: load the certificate and key again (renewed certificates). */
static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct daemon *dm = arg;
    char err[1024] = "TLS is off";     /* make_server_tls() returns NULL without a word */
    SSL_CTX *ctx = make_server_tls(dm->conf, false, err, sizeof err);
    if (ctx == NULL) {
        log_warnx("SIGHUP: certificate not reloaded: %s", err);
        return;
    }
    smtpd_set_tls(dm->smtpd, ctx);
    log_info("SIGHUP: certificate and key reloaded");
}

/*
 * Create the directory name in the directory dirfd (AT_FDCWD: name is a path) with mode
 * when it is missing, open it without following a symbolic link (top: a configured path, whose
 * parents are the administrator's, may be reached through links; only its last component is
 * not followed when it is a spool subdirectory), and give the directory itself, not its
 * contents, to uid:gid. Returns the descriptor; the start is refused when this fails.
 */
static int own_dir(int dirfd, const char *name, const char *shown, mode_t mode, bool fix_mode,
    bool top, uid_t uid, gid_t gid)
{
    bool made = mkdirat(dirfd, name, mode) == 0;
    if (!made && errno != EEXIST)
        log_fatal("cannot create %s", shown);
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (top ? 0 : O_NOFOLLOW));
    if (fd == -1)
        log_fatal("%s: cannot open the directory (a symbolic link is not followed)", shown);
    struct stat st;
    if (fstat(fd, &st) == -1)
        log_fatal("cannot stat %s", shown);
    if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) == -1)
        log_fatal("cannot give %s to uid %u", shown, (unsigned)uid);
    /* mkdir() applies the umask; a drop directory needs its exact mode. */
    if ((made || fix_mode) && (st.st_mode & 07777) != mode && fchmod(fd, mode) == -1)
        log_fatal("cannot set the mode of %s", shown);
    return fd;
}

/*
 * Give root's regular files directly in the spool directory dirfd (an earlier run wrote them
 * before `user` was set) to uid:gid, so the daemon can read and rename them. Only regular files
 * with one link are taken (lstat first, then the open file is checked to be the same inode),
 * never a symbolic link, never recursively. only: if not NULL, just these names.
 */
static void take_root_files(int dirfd, const char *shown, const char *const *only, uid_t uid,
    gid_t gid)
{
    int dfd = dup(dirfd);
    DIR *d = dfd == -1 ? NULL : fdopendir(dfd);
    if (d == NULL) {
        if (dfd != -1)
            close(dfd);
        log_fatal("cannot read %s", shown);
    }
    size_t taken = 0, left = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        bool wanted = only == NULL;
        for (size_t i = 0; !wanted && only[i] != NULL; i++)
            wanted = strcmp(only[i], n) == 0;
        struct stat lst, st;
        if (!wanted || fstatat(dirfd, n, &lst, AT_SYMLINK_NOFOLLOW) == -1 || lst.st_uid != 0)
            continue;
        if (!S_ISREG(lst.st_mode) || lst.st_nlink != 1) {
            left++;
            continue;
        }
        int fd = openat(dirfd, n, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd == -1) {
            left++;
            continue;
        }
        if (fstat(fd, &st) == 0 && st.st_dev == lst.st_dev && st.st_ino == lst.st_ino &&
            S_ISREG(st.st_mode) && st.st_nlink == 1 && fchown(fd, uid, gid) == 0)
            taken++;
        else
            left++;
        close(fd);
    }
    closedir(d);
    if (taken > 0)
        log_info("%s: %zu file(s) of root's from an earlier run given to uid %u", shown, taken,
            (unsigned)uid);
    if (left > 0)
        log_warnx("%s: %zu entry(ies) owned by root left alone (not a regular file with one "
            "link); the daemon may not be able to use them", shown, left);
}

/*
 * The control socket's directory, when control_socket names one that does not exist yet.
 * Returns true when it was made here (it then belongs to postel).
 */
static bool make_control_dir(const char *ctlpath)
{
    char dir[4096];
    if (str_copy(dir, sizeof dir, ctlpath) == -1)
        return false;
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return false;
    *slash = '\0';
    struct stat st;
    if (lstat(dir, &st) == 0)
        return false;
    if (fsx_mkdirs(dir, 0755) == -1) {
        log_warn("cannot create %s", dir);
        return false;
    }
    return true;
}

/*
 * Hand what postel owns to uid:gid: spool_dir and its fixed subdirectories (created when
 * missing), root's leftover files in queue/ and incoming/, the self-signed pair in tls/,
 * mail_dir itself (not the Maildirs in it), the control socket and a directory made for it.
 * Nothing is walked recursively and no symbolic link is followed; files submitters left in
 * maildrop/ keep their owners (pickup learns the submitter from them).
 */
static void hand_over(const struct conf *c, const char *ctlpath, bool ctldir_made, uid_t uid,
    gid_t gid)
{
    char shown[4400];
    int sfd = own_dir(AT_FDCWD, c->spool_dir, c->spool_dir, 0700, false, true, uid, gid);
    for (size_t i = 0; i < sizeof spool_subdirs / sizeof spool_subdirs[0]; i++) {
        const struct spool_subdir *sd = &spool_subdirs[i];
        snprintf(shown, sizeof shown, "%s/%s", c->spool_dir, sd->name);
        int fd = own_dir(sfd, sd->name, shown, sd->mode, sd->fix_mode, false, uid, gid);
        if (strcmp(sd->name, "queue") == 0 || strcmp(sd->name, "incoming") == 0)
            take_root_files(fd, shown, NULL, uid, gid);
        else if (strcmp(sd->name, "tls") == 0)
            take_root_files(fd, shown, tls_own_files, uid, gid);
        close(fd);
    }
    close(own_dir(AT_FDCWD, c->mail_dir, c->mail_dir, 0700, false, true, uid, gid));
    /* The socket was bound a moment ago, as root: give it over without following a link. */
    char dir[4096];
    if (str_copy(dir, sizeof dir, ctlpath) == 0) {
        char *slash = strrchr(dir, '/');
        const char *base = ctlpath;
        if (slash != NULL) {
            base = ctlpath + (slash - dir) + 1;
            *slash = '\0';
        }
        int dfd = slash == NULL ? AT_FDCWD : open(slash == dir ? "/" : dir,
            O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct stat st;
        if (dfd == -1)
            log_warn("cannot open %s", dir);
        else if (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode) &&
            fchownat(dfd, base, uid, gid, AT_SYMLINK_NOFOLLOW) == -1)
            log_warn("cannot chown %s", ctlpath);
        if (dfd != -1 && ctldir_made && fchown(dfd, uid, gid) == -1)
            log_warn("cannot chown %s", dir);
        if (dfd != -1 && dfd != AT_FDCWD)
            close(dfd);
    }
    close(sfd);
}

/* Become the configured user for good: what postel owns changes hands first (hand_over()).
 * Refuses to go on if root could be regained. */
static void drop_privileges(const struct conf *c, const char *ctlpath, bool ctldir_made)
{
    struct passwd *pw = getpwnam(c->user);
    if (pw == NULL)
        log_fatalx("user %s: no such user", c->user);
    if (geteuid() != 0) {
        if (geteuid() != pw->pw_uid)
            log_fatalx("user = %s, but started as uid %u without root", c->user,
                (unsigned)geteuid());
        return;
    }
    if (pw->pw_uid == 0)
        log_fatalx("user = %s is root: pick an unprivileged user", c->user);
    hand_over(c, ctlpath, ctldir_made, pw->pw_uid, pw->pw_gid);
    gid_t g = pw->pw_gid;
    if (setgroups(1, &g) == -1 || setresgid(g, g, g) == -1 ||
        setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
        log_fatal("cannot become %s", c->user);
    uid_t r, e, sv;
    gid_t gr, ge, gs;
    if (getresuid(&r, &e, &sv) == -1 || r != pw->pw_uid || e != pw->pw_uid ||
        sv != pw->pw_uid || getresgid(&gr, &ge, &gs) == -1 || gr != g || ge != g || gs != g ||
        setuid(0) != -1 || seteuid(0) != -1)
        log_fatalx("privilege drop to %s did not hold", c->user);
    log_info("running as %s (uid %u, gid %u)", c->user, (unsigned)pw->pw_uid, (unsigned)g);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon *dm = arg;
    if (dm->stop_check)
        return;
    log_info("signal %d: shutting down", (int)sig);
    smtpd_shutdown(dm->smtpd);
    dm->stop_check = event_new(dm->base, -1, EV_PERSIST, on_stop_check, dm);
    struct timeval tv = { 0, 100000 };
    event_add(dm->stop_check, &tv);
}

/* conf_warnings() callbacks: posteld -n prints them, a starting daemon logs them. */
static void warn_stderr(void *arg, const char *text)
{
    (void)arg;
    fprintf(stderr, "posteld: warning: %s\n", text);
}

static void warn_log(void *arg, const char *text)
{
    (void)arg;
    log_warnx("config: %s", text);
}

int main(int argc, char **argv)
{
    const char *file = NULL, *logfile = NULL;
    bool check = false, debug = false, use_syslog = false;
    int ch;
    static const struct option longopts[] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    while ((ch = getopt_long(argc, argv, "f:ndsl:vVh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'f': file = optarg; break;
        case 'n': check = true; break;
        case 'd': use_syslog = false; logfile = NULL; break;
        case 's': use_syslog = true; logfile = NULL; break;
        case 'l': logfile = optarg; use_syslog = false; break;
        case 'v': debug = true; break;
        case 'V':
            printf("posteld %s\n", POSTEL_VERSION);
            return 0;
        case 'h': usage(stdout, 0); break;
        default: usage(stderr, 64);
        }
    }
    if (optind != argc)
        usage(stderr, 64);
    char err[1024];
    struct conf *conf = file ? conf_load(file, err, sizeof err) :
        conf_parse(conf_default_text, strlen(conf_default_text), "(built-in)", err,
            sizeof err);
    if (conf == NULL) {
        fprintf(stderr, "posteld: %s\n", err);
        return 78;      /* EX_CONFIG */
    }
    if (check) {
        conf_print(conf, stdout);
        fflush(stdout);
        conf_warnings(conf, warn_stderr, NULL);
        conf_free(conf);
        return 0;
    }
    log_init("posteld", use_syslog, debug || conf->log_debug ? LOG_LVL_DEBUG : LOG_LVL_INFO);
    if (logfile && log_open_file(logfile) == -1) {
        fprintf(stderr, "posteld: cannot open the log file %s: %s\n", logfile, strerror(errno));
        return 73;      /* EX_CANTCREAT */
    }
    conf_warnings(conf, warn_log, NULL);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(conf);

    struct spool *sp = spool_open(conf->spool_dir, err, sizeof err);
    if (sp == NULL)
        log_fatalx("%s", err);
    if (fsx_mkdirs(conf->mail_dir, 0700) == -1)
        log_fatal("cannot create mail_dir %s", conf->mail_dir);

    struct daemon dm = { 0 };
    if (evthread_use_pthreads() == -1)
        log_fatalx("libevent: no thread support");
    dm.base = event_base_new();
    if (dm.base == NULL)
        log_fatalx("cannot create the event loop");
    struct tpool *commit_wq = tpool_new(dm.base, conf->workers);
    struct tpool *deliver_wq = tpool_new(dm.base, conf->workers);
    struct tpool *auth_wq = tpool_new(dm.base, SMTPD_AUTH_THREADS);
    struct dns *dns = dns_new(dm.base, conf->dns_servers, 5000, err, sizeof err);
    if (dns == NULL)
        log_fatalx("%s", err);
    SSL_CTX *client_tls = tls_client_ctx(conf->tls_ca_file, err, sizeof err);
    if (client_tls == NULL)
        log_warnx("outbound TLS unavailable: %s", err);
    struct remote *rm = remote_new(dm.base, dns, conf, client_tls);
    dm.remote = rm;
    dm.qmgr = qmgr_new(dm.base, deliver_wq, sp, conf, rm);
    SSL_CTX *server_tls = make_server_tls(conf, true, err, sizeof err);
    struct auth_db *authdb = NULL;
    struct auth_senders *senders = NULL;
    if (conf->auth_passwd_file &&
        (authdb = auth_db_load(conf->auth_passwd_file, err, sizeof err)) == NULL)
        log_fatalx("%s", err);
    if (conf->sender_login_file &&
        (senders = auth_senders_load(conf->sender_login_file, err, sizeof err)) == NULL)
        log_fatalx("%s", err);
    dm.smtpd = smtpd_new(dm.base, conf, sp, commit_wq, auth_wq, dm.qmgr, server_tls, authdb,
        senders);
    dm.conf = conf;
    dm.spool = sp;
    dm.wq = commit_wq;
    char ctlpath[4096];
    if (conf->control_socket)
        snprintf(ctlpath, sizeof ctlpath, "%s", conf->control_socket);
    else
        snprintf(ctlpath, sizeof ctlpath, "%s/control", conf->spool_dir);
    struct control_deps cd = {
        .base = dm.base, .conf = conf, .conf_file = file, .smtpd = dm.smtpd,
        .qmgr = dm.qmgr, .spool = sp, .wq = deliver_wq, .dns = dns, .remote = rm,
        .started = time(NULL), .reload = on_reload, .reload_arg = &dm,
    };
    bool ctldir_made = conf->control_socket && make_control_dir(ctlpath);
    struct control *ctl = control_new(&cd, ctlpath);
    /* Ports are bound and keys read: from here on, no root. */
    if (conf->user)
        drop_privileges(conf, ctlpath, ctldir_made);
    else if (geteuid() == 0)
        log_warnx("running as root: set 'user' in the configuration to drop privileges");
    size_t n = qmgr_recover(dm.qmgr);
    if (pickup_init(sp) == 0) {
        dm.pickup_timer = event_new(dm.base, -1, EV_PERSIST, on_pickup_timer, &dm);
        struct timeval pt = { PICKUP_EVERY, 0 };
        event_add(dm.pickup_timer, &pt);
        on_pickup_timer(-1, 0, &dm);
    }
    struct event *sighup = evsignal_new(dm.base, SIGHUP, on_sighup, &dm);
    event_add(sighup, NULL);
    struct event *sigusr1 = evsignal_new(dm.base, SIGUSR1, on_sigusr1, NULL);
    event_add(sigusr1, NULL);
    struct event *sigterm = evsignal_new(dm.base, SIGTERM, on_signal, &dm);
    struct event *sigint = evsignal_new(dm.base, SIGINT, on_signal, &dm);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    log_info("postel started: hostname=%s spool=%s mail_dir=%s queued=%zu", conf->hostname,
        conf->spool_dir, conf->mail_dir, n);

    event_base_dispatch(dm.base);

    control_free(ctl);
    if (dm.pickup_timer)
        event_free(dm.pickup_timer);
    tpool_free(commit_wq);
    tpool_cancel(auth_wq);              /* checks not started: their sessions are gone */
    tpool_free(auth_wq);
    smtpd_free(dm.smtpd);
    remote_free(rm);
    tpool_free(deliver_wq);
    qmgr_free(dm.qmgr);
    dns_free(dns);
    if (dm.stop_check)
        event_free(dm.stop_check);
    event_free(sigterm);
    event_free(sigint);
    event_free(sighup);
    event_free(sigusr1);
    auth_db_free(authdb);
    auth_senders_free(senders);
    if (client_tls)
        SSL_CTX_free(client_tls);
    /* Sessions freed after the loop stopped (their checks or commits were still running)
     * finish freeing their TLS bufferevents in deferred callbacks: one more turn runs them. */
    (void)event_base_loop(dm.base, EVLOOP_NONBLOCK);
    event_base_free(dm.base);
    spool_close(sp);
    fsx_cleanup();
    conf_free(dm.conf);
    log_info("postel stopped");
    return 0;
}
