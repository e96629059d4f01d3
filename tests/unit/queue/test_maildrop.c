/*
 * tests/unit/queue/test_maildrop.c - the drop directory's writer: the directory and file
 * modes, the name, a file that decodes as a queue file, and nothing left behind.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/maildrop.h"
#include "smtp/parse.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xmalloc.h"

static char base[64];

static int setup(void **state)
{
    (void)state;
    str_copy(base, sizeof base, "/tmp/test_maildrop.XXXXXX");
    return mkdtemp(base) == NULL ? -1 : 0;
}

/* Remove base/spool/maildrop/<files>, base/spool/maildrop (or a file there), base/spool. */
static int teardown(void **state)
{
    char p[256], f[600];
    (void)state;
    snprintf(p, sizeof p, "%s/spool/maildrop", base);
    DIR *d = opendir(p);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(f, sizeof f, "%s/%s", p, e->d_name);
            unlink(f);
        }
    }
    if (d != NULL)
        closedir(d);
    if (rmdir(p) == -1)
        unlink(p);
    snprintf(p, sizeof p, "%s/spool", base);
    rmdir(p);
    return rmdir(base);
}

static void make_msg(struct env_msg *m)
{
    memset(m, 0, sizeof *m);
    m->arrival = 1767225600;
    m->sender = xstrdup("sender@example.test");
    m->user = xstrdup("someone (uid 1000)");
    m->body = SMTP_BODY_7BIT;
    env_add_rcpt(m, "alice@localhost", true, SMTP_NOTIFY_FAILURE, NULL);
    env_add_rcpt(m, "bob@remote.test", false, 0, NULL);
}

/* The names in dir other than "." and ".." (at most 8), space-separated, into out. */
static size_t list_dir(const char *dir, char *out, size_t osz)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    out[0] = '\0';
    assert_non_null(d);
    while ((e = readdir(d)) != NULL && n < 8) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        size_t l = strlen(out);
        if (n > 0 && l + 1 < osz)
            out[l++] = ' ';
        assert_int_equal(str_copy(out + l, osz - l, e->d_name), 0);
        n++;
    }
    closedir(d);
    return n;
}

static void test_write_and_read_back(void **state)
{
    (void)state;
    char spool[128], dir[160], path[200], names[256], err[200];
    snprintf(spool, sizeof spool, "%s/spool", base);    /* missing: created */
    snprintf(dir, sizeof dir, "%s/maildrop", spool);
    struct env_msg m;
    make_msg(&m);
    static const char text[] = "Subject: dropped\n\n.a line with a dot\n";
    assert_int_equal(maildrop_write(spool, &m, text, strlen(text), err, sizeof err), 0);
    assert_int_equal(strlen(m.id), 16);

    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 07777, MAILDROP_DIR_MODE);
    assert_int_equal(list_dir(dir, names, sizeof names), 1);    /* no temporary file left */
    assert_string_equal(names, m.id);
    snprintf(path, sizeof path, "%s/%s", dir, m.id);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, MAILDROP_FILE_MODE);

    /* what pickup.c reads: a queue file, envelope then the text as given */
    char raw[4096];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = read(fd, raw, sizeof raw);
    close(fd);
    assert_true(n > 0);
    struct env_msg back;
    assert_int_equal(env_decode(raw, (size_t)n, &back, err, sizeof err), 0);
    assert_string_equal(back.id, m.id);
    assert_string_equal(back.sender, "sender@example.test");
    assert_int_equal(back.body, SMTP_BODY_7BIT);
    assert_int_equal(back.nrcpt, 2);
    assert_string_equal(back.rcpts[0].addr, "alice@localhost");
    assert_int_equal(back.rcpts[0].notify, SMTP_NOTIFY_FAILURE);
    assert_string_equal(back.rcpts[1].addr, "bob@remote.test");
    assert_int_equal((size_t)n - back.body_offset, strlen(text));
    assert_memory_equal(raw + back.body_offset, text, strlen(text));
    env_free(&back);
    env_free(&m);
}

static void test_cannot_create(void **state)
{
    (void)state;
    char spool[128], dir[160], err[200];
    snprintf(spool, sizeof spool, "%s/spool", base);
    snprintf(dir, sizeof dir, "%s/maildrop", spool);
    assert_int_equal(mkdir(spool, 0700), 0);
    int fd = open(dir, O_WRONLY | O_CREAT | O_EXCL, 0600);     /* a file where the dir goes */
    assert_true(fd >= 0);
    close(fd);
    struct env_msg m;
    make_msg(&m);
    assert_int_equal(maildrop_write(spool, &m, "x\n", 2, err, sizeof err), MAILDROP_ECREATE);
    assert_int_equal(errno, ENOTDIR);
    assert_non_null(strstr(err, "cannot create a file in "));
    env_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_and_read_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cannot_create, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
