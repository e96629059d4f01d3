/*
 * tests/unit/deliver/test_mbox.c - mbox delivery: the "From " line and quoting, the blank
 * line between messages, the file's mode, the refusals (a link, another owner, a directory),
 * a dotlock held by someone else, a stale one, and 50 deliveries at once from 50 processes.
 *
 * Real files in a temporary directory, as the user running the tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "deliver/mbox.h"

static char dir[256], box[300];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/postel-mbox-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(box, sizeof box, "%s/user", dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[400];
    unlink(box);
    snprintf(p, sizeof p, "%s.lock", box);
    unlink(p);
    snprintf(p, sizeof p, "%s/target", dir);
    unlink(p);
    rmdir(box);
    rmdir(dir);
    return 0;
}

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char data[1 << 20];
    *n = fread(data, 1, sizeof data - 1, f);
    data[*n] = '\0';
    fclose(f);
    return data;
}

static enum mbox_result put(const char *sender, const char *content, char *err, size_t esz)
{
    static const char prefix[] = "Return-Path: <a@b>\nDelivered-To: user@x\n";
    return mbox_deliver(box, sender, 1767225600, prefix, sizeof prefix - 1, content,
        strlen(content), (gid_t)-1, err, esz);
}

static void test_from_line_quoting_and_blank_line(void **state)
{
    (void)state;
    char err[600];
    assert_int_equal(put("a@b.example", "Subject: one\n\nFrom here\n>From there\nend\n", err,
        sizeof err), MBOX_OK);
    assert_int_equal(put("", "Subject: two\n\nno final newline", err, sizeof err), MBOX_OK);
    size_t n;
    const char *t = slurp(box, &n);
    assert_string_equal(t,
        "From a@b.example Thu Jan  1 00:00:00 2026\n"
        "Return-Path: <a@b>\nDelivered-To: user@x\n"
        "Subject: one\n\n>From here\n>From there\nend\n\n"
        "From MAILER-DAEMON Thu Jan  1 00:00:00 2026\n"
        "Return-Path: <a@b>\nDelivered-To: user@x\n"
        "Subject: two\n\nno final newline\n\n");
    struct stat st;
    assert_int_equal(stat(box, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    char lock[400];
    snprintf(lock, sizeof lock, "%s.lock", box);
    assert_int_equal(access(lock, F_OK), -1);
}

static void test_sender_with_blanks_stays_one_word(void **state)
{
    (void)state;
    char err[600];
    assert_int_equal(put("\"a b\"@c\tx", "Subject: s\n\nx\n", err, sizeof err), MBOX_OK);
    size_t n;
    const char *t = slurp(box, &n);
    assert_true(strncmp(t, "From \"a_b\"@c_x Thu", 18) == 0);
}

static void test_an_unterminated_mailbox_gets_its_separator(void **state)
{
    (void)state;
    int fd = open(box, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "From x Thu\n\nold body", 20), 20);
    close(fd);
    char err[600];
    assert_int_equal(put("a@b", "Subject: new\n\nx\n", err, sizeof err), MBOX_OK);
    size_t n;
    const char *t = slurp(box, &n);
    assert_non_null(strstr(t, "old body\n\nFrom a@b "));
}

static void test_refusals(void **state)
{
    (void)state;
    char err[600], target[400];
    /* a symbolic link */
    snprintf(target, sizeof target, "%s/target", dir);
    int fd = open(target, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(symlink(target, box), 0);
    assert_int_equal(put("a@b", "x\n", err, sizeof err), MBOX_UNSAFE);
    assert_non_null(strstr(err, "symbolic link"));
    unlink(box);
    /* a hard link */
    assert_int_equal(link(target, box), 0);
    assert_int_equal(put("a@b", "x\n", err, sizeof err), MBOX_UNSAFE);
    assert_non_null(strstr(err, "more than one link"));
    unlink(box);
    /* a directory */
    assert_int_equal(mkdir(box, 0700), 0);
    assert_int_equal(put("a@b", "x\n", err, sizeof err), MBOX_UNSAFE);
    rmdir(box);
    /* another owner (only root can make one) */
    if (geteuid() == 0) {
        fd = open(box, O_WRONLY | O_CREAT, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(chown(box, 65534, 65534), 0);
        assert_int_equal(put("a@b", "x\n", err, sizeof err), MBOX_UNSAFE);
        assert_non_null(strstr(err, "another user"));
        struct stat st;
        assert_int_equal(stat(box, &st), 0);
        assert_int_equal(st.st_size, 0);
        unlink(box);
    }
    /* the target of the links was never written */
    struct stat st;
    assert_int_equal(stat(target, &st), 0);
    assert_int_equal(st.st_size, 0);
}

static void test_stale_dotlock_is_removed(void **state)
{
    (void)state;
    char lock[400], err[600];
    snprintf(lock, sizeof lock, "%s.lock", box);
    int fd = open(lock, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    struct utimbuf old = { time(NULL) - MBOX_LOCK_STALE - 60, time(NULL) - MBOX_LOCK_STALE - 60 };
    assert_int_equal(utime(lock, &old), 0);
    assert_int_equal(put("a@b", "Subject: x\n\nafter a stale lock\n", err, sizeof err), MBOX_OK);
    assert_int_equal(access(lock, F_OK), -1);
}

static void test_a_held_dotlock_is_waited_for(void **state)
{
    (void)state;
    char lock[400], err[600];
    snprintf(lock, sizeof lock, "%s.lock", box);
    int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    close(fd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        usleep(300 * 1000);     /* the reader lets go */
        unlink(lock);
        _exit(0);
    }
    assert_int_equal(put("a@b", "Subject: x\n\nwaited\n", err, sizeof err), MBOX_OK);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    size_t n;
    assert_non_null(strstr(slurp(box, &n), "waited\n"));
}

static void test_a_held_fcntl_lock_is_waited_for(void **state)
{
    (void)state;
    char err[600];
    int fd = open(box, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    int go[2];
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* a reader (mutt, an IMAP server) holds the file's lock for a while */
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        if (fcntl(fd, F_SETLK, &fl) == -1)
            _exit(2);
        if (write(go[1], "x", 1) != 1)
            _exit(3);
        usleep(400 * 1000);
        _exit(0);
    }
    char c;
    assert_int_equal(read(go[0], &c, 1), 1);
    close(fd);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(put("a@b", "Subject: x\n\nafter the reader\n", err, sizeof err), MBOX_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* it waited for the reader (who held the lock 400 ms), and not for the whole limit */
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 250);
    assert_true(ms < MBOX_LOCK_WAIT * 1000);
    size_t n;
    assert_non_null(strstr(slurp(box, &n), "after the reader\n"));
    close(go[0]);
    close(go[1]);
}

static void test_fifty_at_once(void **state)
{
    (void)state;
    enum { N = 50 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            char body[256], err[600];
            snprintf(body, sizeof body, "Subject: m%d\n\nline one of %d\nFrom line %d\nend %d\n",
                i, i, i, i);
            _exit(put("a@b", body, err, sizeof err) == MBOX_OK ? 0 : 1);
        }
    }
    for (int i = 0; i < N; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    size_t n;
    const char *t = slurp(box, &n);
    /* each message whole: its From line, its lines in order, a blank line after */
    int froms = 0;
    for (const char *p = t; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        froms += strncmp(p, "From a@b ", 9) == 0;
    assert_int_equal(froms, N);
    for (int i = 0; i < N; i++) {
        char want[256];
        snprintf(want, sizeof want, "Subject: m%d\n\nline one of %d\n>From line %d\nend %d\n\n",
            i, i, i, i);
        assert_non_null(strstr(t, want));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_from_line_quoting_and_blank_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sender_with_blanks_stays_one_word, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_unterminated_mailbox_gets_its_separator, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_dotlock_is_removed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_held_dotlock_is_waited_for, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_held_fcntl_lock_is_waited_for, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifty_at_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
