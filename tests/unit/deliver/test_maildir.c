/*
 * tests/unit/deliver/test_maildir.c - Maildir delivery writes one copy per key, whatever
 * earlier attempts left: a copy in new/, one a reader moved to cur/, a half-written tmp/
 * file, a directory sync that failed after the rename.
 *
 * Real files in a temporary directory; fsx_dirsync is wrapped (-Wl,--wrap) so a test can
 * make the sync after the rename fail.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/maildir.h"

int __real_fsx_dirsync(const char *path);
int __wrap_fsx_dirsync(const char *path);

static int fail_syncs;          /* the next this many directory syncs fail with EIO */
static int syncs;

int __wrap_fsx_dirsync(const char *path)
{
    syncs++;
    if (fail_syncs > 0) {
        fail_syncs--;
        errno = EIO;
        return -1;
    }
    return __real_fsx_dirsync(path);
}

static char root[256];

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/postel-maildir-XXXXXX");
    assert_non_null(mkdtemp(root));
    fail_syncs = 0;
    syncs = 0;
    return 0;
}

static int rm_entry(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct dirent *de;
    char p[1024];
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            rm_entry(p);
        else
            unlink(p);
    }
    closedir(d);
    return rmdir(dir);
}

static int teardown(void **state)
{
    (void)state;
    rm_entry(root);
    return 0;
}

/* Files in <root>/alice/<sub>. */
static int count(const char *sub)
{
    char p[512];
    snprintf(p, sizeof p, "%s/alice/%s", root, sub);
    DIR *d = opendir(p);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int deliver(const char *key, enum maildir_seen seen, char *name, size_t nsz,
    bool *existed)
{
    char err[600];
    static const char prefix[] = "Return-Path: <a@b>\n";
    static const char body[] = "Subject: x\n\nhello\n";
    return maildir_deliver(root, "alice", key, seen, prefix, sizeof prefix - 1, body,
        sizeof body - 1, name, nsz, existed, err, sizeof err);
}

static void test_first_delivery_names_the_key_and_size(void **state)
{
    (void)state;
    char name[512];
    bool existed = true;
    assert_int_equal(deliver("1767225600.QABC", MAILDIR_FIRST, name, sizeof name, &existed), 0);
    assert_false(existed);
    assert_int_equal(count("new"), 1);
    assert_int_equal(count("tmp"), 0);
    assert_non_null(strstr(name, "1767225600.QABC."));
    char sz[32];
    snprintf(sz, sizeof sz, ",S=%zu", strlen("Return-Path: <a@b>\n") +
        strlen("Subject: x\n\nhello\n"));
    assert_non_null(strstr(name, sz));
    char p[1024];
    snprintf(p, sizeof p, "%s/alice/new/%s", root, name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal((size_t)st.st_size, strlen("Return-Path: <a@b>\n") +
        strlen("Subject: x\n\nhello\n"));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(syncs, 1);
}

static void test_same_key_again_finds_the_copy_in_new(void **state)
{
    (void)state;
    char n1[512], n2[512];
    bool existed;
    assert_int_equal(deliver("1.QK", MAILDIR_FIRST, n1, sizeof n1, &existed), 0);
    /* even without RETRY, new/ is never written twice */
    assert_int_equal(deliver("1.QK", MAILDIR_FIRST, n2, sizeof n2, &existed), 0);
    assert_true(existed);
    assert_string_equal(n1, n2);
    assert_int_equal(deliver("1.QK", MAILDIR_RETRY, n2, sizeof n2, &existed), 0);
    assert_true(existed);
    assert_int_equal(count("new"), 1);
    assert_int_equal(count("tmp"), 0);
    /* another key is another message */
    assert_int_equal(deliver("1.QL", MAILDIR_RETRY, n2, sizeof n2, &existed), 0);
    assert_false(existed);
    assert_int_equal(count("new"), 2);
}

static void test_retry_finds_the_copy_a_reader_moved_to_cur(void **state)
{
    (void)state;
    char n1[512], n2[512], from[1024], to[1100];
    bool existed;
    assert_int_equal(deliver("2.QK", MAILDIR_FIRST, n1, sizeof n1, &existed), 0);
    snprintf(from, sizeof from, "%s/alice/new/%s", root, n1);
    snprintf(to, sizeof to, "%s/alice/cur/%s:2,S", root, n1);
    assert_int_equal(rename(from, to), 0);
    assert_int_equal(deliver("2.QK", MAILDIR_RETRY, n2, sizeof n2, &existed), 0);
    assert_true(existed);
    assert_int_equal(count("new"), 0);
    assert_int_equal(count("cur"), 1);
    /* a name that merely starts with the same text is another message */
    char other[1100];
    snprintf(other, sizeof other, "%s/alice/cur/%sX:2,S", root, n1);
    assert_int_equal(rename(to, other), 0);
    assert_int_equal(deliver("2.QK", MAILDIR_RETRY, n2, sizeof n2, &existed), 0);
    assert_false(existed);
    assert_int_equal(count("new"), 1);
}

static void test_a_half_written_tmp_file_is_replaced(void **state)
{
    (void)state;
    char n1[512], p[1024];
    bool existed;
    assert_int_equal(deliver("3.QK", MAILDIR_FIRST, n1, sizeof n1, &existed), 0);
    /* what a crash before the rename leaves: a partial file in tmp/, nothing in new/ */
    char from[1024];
    snprintf(from, sizeof from, "%s/alice/new/%s", root, n1);
    assert_int_equal(unlink(from), 0);
    snprintf(p, sizeof p, "%s/alice/tmp/%s", root, n1);
    int fd = open(p, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "Return", 6), 6);
    close(fd);
    assert_int_equal(deliver("3.QK", MAILDIR_RETRY, n1, sizeof n1, &existed), 0);
    assert_false(existed);
    assert_int_equal(count("tmp"), 0);
    assert_int_equal(count("new"), 1);
    struct stat st;
    assert_int_equal(stat(from, &st), 0);
    assert_true(st.st_size > 6);
}

static void test_sync_failure_after_the_rename_leaves_one_copy(void **state)
{
    (void)state;
    char n1[512], n2[512];
    bool existed;
    fail_syncs = 1;
    /* the rename succeeded, the directory sync did not: a failure, the copy stays in new/ */
    assert_int_equal(deliver("4.QK", MAILDIR_FIRST, n1, sizeof n1, &existed), -1);
    assert_int_equal(errno, EIO);
    assert_int_equal(count("new"), 1);
    assert_int_equal(count("tmp"), 0);
    /* the retry finds it and makes new/ durable: delivered, once */
    int before = syncs;
    assert_int_equal(deliver("4.QK", MAILDIR_RETRY, n2, sizeof n2, &existed), 0);
    assert_true(existed);
    assert_string_equal(n1, n2);
    assert_int_equal(syncs, before + 1);
    assert_int_equal(count("new"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_delivery_names_the_key_and_size, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_same_key_again_finds_the_copy_in_new, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_retry_finds_the_copy_a_reader_moved_to_cur, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_a_half_written_tmp_file_is_replaced, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_sync_failure_after_the_rename_leaves_one_copy,
            setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
