/* SPDX-License-Identifier: MIT */
/* File identity by content (connectors/file/file_identity.h): stored
 * fingerprints of every form parse (older ones without a tail keep their
 * meaning, a path may hold ':' and '+'), a tail is added or replaced
 * without touching the rest, readers that predate tails still find the
 * inode and path in a fingerprint with one, and a tail check tells an edit
 * before its offset from growth after it. Works on a file in /tmp. */
#include "connectors/file/file_identity.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static void test_file_identity_parse_without_tail(void **state)
{
    struct sl_file_known k;

    (void)state;
    sl_file_known_parse("key", "4096:00000000000000ff:2049:77:logs/a:b+c.log", &k);
    assert_int_equal(k.fields, 4);
    assert_int_equal(k.prefix, 4096);
    assert_int_equal(k.hash, 0xff);
    assert_int_equal(k.dev, 2049);
    assert_int_equal(k.ino, 77);
    assert_int_equal(k.tail_at, 0);
    assert_string_equal(k.path, "logs/a:b+c.log");

    sl_file_known_parse("key", "9000:00000000000000ff", &k); /* older "size:hash" */
    assert_int_equal(k.fields, 2);
    assert_int_equal(k.prefix, SL_FILE_HEAD);
    assert_int_equal(k.tail_at, 0);

    sl_file_known_parse("logs/a.log", NULL, &k); /* keyed by path, no fingerprint */
    assert_int_equal(k.fields, 0);
}

static void test_file_identity_tail_added_and_replaced(void **state)
{
    const char *fp = "4096:00000000000000ff:2049:77:logs/+1+2:x.log";
    char with[SL_FILE_FP_MAX];
    char again[SL_FILE_FP_MAX];
    struct sl_file_known k;

    (void)state;
    sl_file_fp_tail(fp, 20050, 0xabc, with, sizeof(with));
    assert_string_equal(with,
                        "4096:00000000000000ff:2049:77+20050+0000000000000abc:logs/+1+2:x.log");
    sl_file_known_parse("key", with, &k);
    assert_int_equal(k.fields, 4);
    assert_int_equal(k.ino, 77);
    assert_int_equal(k.tail_at, 20050);
    assert_int_equal(k.tail_hash, 0xabc);
    assert_string_equal(k.path, "logs/+1+2:x.log");

    sl_file_fp_tail(with, 30000, 0xdef, again, sizeof(again));
    assert_string_equal(again,
                        "4096:00000000000000ff:2049:77+30000+0000000000000def:logs/+1+2:x.log");
    sl_file_fp_tail(again, 0, 0, with, sizeof(with)); /* offset 0: no tail */
    assert_string_equal(with, "4096:00000000000000ff:2049:77:logs/+1+2:x.log");
    sl_file_fp_tail("9000:00000000000000ff", 5, 1, with, sizeof(with)); /* no inode: as is */
    assert_string_equal(with, "9000:00000000000000ff");
}

/* A reader from before tails: four numbers, then the path after the
 * fourth ':'. */
static void test_file_identity_tail_read_by_older_parser(void **state)
{
    char fp[SL_FILE_FP_MAX];
    unsigned long long p, x, dev, ino;
    const char *q;

    (void)state;
    sl_file_fp_tail("4096:00000000000000ff:2049:77:dir/a.log", 5000, 0x1234, fp, sizeof(fp));
    assert_int_equal(sscanf(fp, "%llu:%llx:%llu:%llu", &p, &x, &dev, &ino), 4);
    assert_int_equal(ino, 77);
    q = fp;
    for (int i = 0; i < 4; i++) {
        q = strchr(q, ':') + 1;
    }
    assert_string_equal(q, "dir/a.log");
}

static void write_all(int fd, const char *p, size_t n, off_t at)
{
    assert_int_equal(pwrite(fd, p, n, at), (ssize_t)n);
}

/* The stored tail of a file read to `at`, as the file source makes it. */
static void
known_with_tail(const char *path, uint64_t at, struct sl_file_known *k, char *fp, size_t len)
{
    struct sl_file_head h;
    struct sl_err err = {0};
    char base[SL_FILE_FP_MAX];
    uint64_t x;
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    assert_int_equal(sl_file_tail_hash(fd, at, &x), 0);
    close(fd);
    assert_int_equal(sl_file_head_read(path, &h, &err), 0);
    sl_file_fp_make(&h, NULL, path, base, sizeof(base));
    sl_file_fp_tail(base, at, x, fp, len);
    sl_file_known_parse("key", fp, k);
}

static void test_file_identity_tail_check(void **state)
{
    char path[] = "/tmp/test_file_identity_XXXXXX";
    int fd = mkstemp(path);
    char *text = malloc(20000);
    struct sl_file_head *h = malloc(sizeof(*h));
    struct sl_err err = {0};
    struct sl_file_known k;
    char fp[SL_FILE_FP_MAX];

    (void)state;
    assert_true(fd >= 0 && text != NULL && h != NULL);
    for (size_t i = 0; i < 20000; i++) {
        text[i] = (char)('a' + i % 26);
    }
    write_all(fd, text, 20000, 0);
    known_with_tail(path, 20000, &k, fp, sizeof(fp));
    assert_int_equal(k.tail_at, 20000);

    /* The same bytes, grown: the same file. */
    write_all(fd, "more", 4, 20000);
    assert_int_equal(sl_file_head_read(path, h, &err), 0);
    assert_true(sl_file_match(h, path, &k) > 0);
    assert_int_equal(sl_file_tail_check(path, h, &k), 1);
    /* An edit in the 4 KiB before the offset, the size kept: changed. */
    write_all(fd, "Z", 1, 19000);
    assert_int_equal(sl_file_head_read(path, h, &err), 0);
    assert_true(sl_file_match(h, path, &k) > 0); /* the head alone cannot tell */
    assert_int_equal(sl_file_tail_check(path, h, &k), 0);
    /* Shorter than the offset: cannot tell. */
    assert_int_equal(ftruncate(fd, 10000), 0);
    assert_int_equal(sl_file_head_read(path, h, &err), 0);
    assert_int_equal(sl_file_tail_check(path, h, &k), -1);
    /* A tail inside the first 4 KiB is checked against the head. */
    write_all(fd, text, 10000, 0);
    known_with_tail(path, 3000, &k, fp, sizeof(fp));
    assert_int_equal(sl_file_head_read(path, h, &err), 0);
    assert_int_equal(sl_file_tail_check(path, h, &k), 1);
    write_all(fd, "Z", 1, 2999);
    assert_int_equal(sl_file_head_read(path, h, &err), 0);
    assert_int_equal(sl_file_tail_check(path, h, &k), 0);
    /* No tail (an older fingerprint): cannot tell. */
    sl_file_known_parse("key", "4096:00000000000000ff:2049:77:x", &k);
    assert_int_equal(sl_file_tail_check(path, h, &k), -1);

    close(fd);
    unlink(path);
    free(text);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_identity_parse_without_tail),
        cmocka_unit_test(test_file_identity_tail_added_and_replaced),
        cmocka_unit_test(test_file_identity_tail_read_by_older_parser),
        cmocka_unit_test(test_file_identity_tail_check),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
