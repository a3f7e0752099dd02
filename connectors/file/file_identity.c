/* SPDX-License-Identifier: MIT */
/* File identity by content (see file_identity.h). */
#include "connectors/file/file_identity.h"

#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* FNV-1a: cheap and stable, not meant to resist tampering. */
#define FNV_BASIS 1469598103934665603ull
#define FNV_PRIME 1099511628211ull

uint64_t sl_file_hash(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t x = FNV_BASIS;

    for (size_t i = 0; i < n; i++) {
        x = (x ^ b[i]) * FNV_PRIME;
    }
    return x;
}

int sl_file_head_read(const char *path, struct sl_file_head *h, struct sl_err *err)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        return sl_err_set(err, SL_EIO, "%s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sl_err_set(err, SL_EIO, "%s: %s", path, strerror(e));
    }
    h->size = (uint64_t)st.st_size;
    h->dev = (uint64_t)st.st_dev;
    h->ino = (uint64_t)st.st_ino;
    h->got = 0;
    unsigned char head[SL_FILE_HEAD];
    while (h->got < sizeof(head)) {
        ssize_t n = pread(fd, head + h->got, sizeof(head) - h->got, (off_t)h->got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;
            close(fd);
            return sl_err_set(err, SL_EIO, "%s: read: %s", path, strerror(e));
        }
        if (n == 0) {
            break;
        }
        h->got += (size_t)n;
    }
    close(fd);
    /* Every prefix length at once, so matching many stored files costs no
     * rereading. */
    h->hash[0] = FNV_BASIS;
    for (size_t i = 0; i < h->got; i++) {
        h->hash[i + 1] = (h->hash[i] ^ head[i]) * FNV_PRIME;
    }
    h->tail_at = 0;
    return 0;
}

/* The end of the identity numbers "P:hash:dev:ino" at the start of fp (0
 * if fp does not start with them), and their values. */
static size_t identity_end(const char *fp,
                           unsigned long long *p,
                           unsigned long long *x,
                           unsigned long long *dev,
                           unsigned long long *ino)
{
    int end = 0;

    return sscanf(fp, "%llu:%llx:%llu:%llu%n", p, x, dev, ino, &end) == 4 ? (size_t)end : 0;
}

/* The tail after the identity numbers, "+T+hash:": the bytes it takes (0
 * if none) and its values. */
static size_t tail_parse(const char *s, unsigned long long *at, unsigned long long *hash)
{
    int end = 0;

    if (s[0] != '+' || sscanf(s, "+%llu+%llx%n", at, hash, &end) != 2 || s[end] != ':') {
        return 0;
    }
    return (size_t)end;
}

void sl_file_known_parse(const char *key, const char *fp, struct sl_file_known *k)
{
    unsigned long long p = 0;
    unsigned long long x = 0;
    unsigned long long dev = 0;
    unsigned long long ino = 0;
    unsigned long long at = 0;
    unsigned long long tail = 0;
    int n = fp != NULL ? sscanf(fp, "%llu:%llx:%llu:%llu", &p, &x, &dev, &ino) : 0;
    size_t end = n == 4 ? identity_end(fp, &p, &x, &dev, &ino) : 0;

    *k = (struct sl_file_known){.key = key, .fp = fp, .path = ""};
    if (n == 2 || n == 4) {
        k->fields = n;
        /* An older "size:hash" holds the size then, the hash over 4 KiB. */
        k->prefix = p < SL_FILE_HEAD ? p : SL_FILE_HEAD;
        k->hash = x;
    }
    if (n == 4) {
        k->dev = dev;
        k->ino = ino;
        size_t t = tail_parse(fp + end, &at, &tail);
        if (t > 0 && at > 0) {
            k->tail_at = at;
            k->tail_hash = tail;
        }
        /* Then ':' and the path. */
        end += t;
        k->path = fp[end] == ':' ? fp + end + 1 : "";
    }
}

void sl_file_key_new(const struct sl_file_head *h, char *out, size_t len)
{
    snprintf(out, len, "%zu:%016" PRIx64, h->got, h->hash[h->got]);
}

void sl_file_fp_make(const struct sl_file_head *h,
                     const struct sl_file_known *k,
                     const char *path,
                     char *out,
                     size_t len)
{
    uint64_t p = k != NULL && k->fields != 0 ? k->prefix : h->got;
    uint64_t x = k != NULL && k->fields != 0 ? k->hash : h->hash[h->got];

    snprintf(out, len, "%" PRIu64 ":%016" PRIx64 ":%" PRIu64 ":%" PRIu64 ":%s", p, x, h->dev,
             h->ino, path);
}

void sl_file_fp_tail(const char *fp, uint64_t at, uint64_t hash, char *out, size_t len)
{
    unsigned long long p;
    unsigned long long x;
    unsigned long long dev;
    unsigned long long ino;
    unsigned long long old_at;
    unsigned long long old_hash;
    size_t end = identity_end(fp, &p, &x, &dev, &ino);

    if (end == 0) {
        snprintf(out, len, "%s", fp); /* not a fingerprint of this form: left as it is */
        return;
    }
    size_t t = tail_parse(fp + end, &old_at, &old_hash);
    if (at == 0) {
        snprintf(out, len, "%.*s%s", (int)end, fp, fp + end + t);
        return;
    }
    snprintf(out, len, "%.*s+%" PRIu64 "+%016" PRIx64 "%s", (int)end, fp, at, hash, fp + end + t);
}

int sl_file_tail_hash(int fd, uint64_t at, uint64_t *ret_hash)
{
    unsigned char win[SL_FILE_HEAD];
    size_t n = at < SL_FILE_HEAD ? (size_t)at : SL_FILE_HEAD;
    size_t got = 0;

    while (got < n) {
        ssize_t r = pread(fd, win + got, n - got, (off_t)(at - n + got));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            return SL_EIO;
        }
        if (r == 0) {
            return SL_EOF;
        }
        got += (size_t)r;
    }
    *ret_hash = sl_file_hash(win, n);
    return 0;
}

int sl_file_tail_check(const char *path, struct sl_file_head *h, const struct sl_file_known *k)
{
    uint64_t x;

    if (k->tail_at == 0 || k->tail_at > h->size) {
        return -1;
    }
    if (k->tail_at <= h->got) {
        x = h->hash[k->tail_at]; /* the window is the file's start: in the head */
    } else if (h->tail_at == k->tail_at) {
        x = h->tail_hash;
    } else {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            return -1;
        }
        int rc = sl_file_tail_hash(fd, k->tail_at, &x);
        close(fd);
        if (rc != 0) {
            return -1;
        }
        h->tail_at = k->tail_at;
        h->tail_hash = x;
    }
    return x == k->tail_hash ? 1 : 0;
}

bool sl_file_known_path(const struct sl_file_known *k, const char *path)
{
    return strcmp(k->key, path) == 0 || strcmp(k->path, path) == 0;
}

uint64_t
sl_file_match(const struct sl_file_head *h, const char *path, const struct sl_file_known *k)
{
    bool same_path = sl_file_known_path(k, path);

    if (k->fields == 0) {
        return same_path ? 1 : 0; /* stored by path before fingerprints existed */
    }
    if (k->prefix > h->got || h->hash[k->prefix] != k->hash) {
        return 0;
    }
    bool same_inode = k->fields == 4 && k->dev == h->dev && k->ino == h->ino;
    /* A prefix shorter than 4 KiB is a whole file as it was then: another
     * file that merely begins with it is not that file. */
    if (k->prefix < SL_FILE_HEAD && h->size != k->prefix && !same_inode &&
        !(k->fields == 2 && same_path)) {
        return 0;
    }
    return 2 + k->prefix * 4 + (same_inode ? 2u : 0u) + (same_path ? 1u : 0u);
}

bool sl_file_same_bytes(const char *a, const char *b)
{
    enum { CHUNK = 64 * 1024 };
    char *x = sl_malloc(2 * CHUNK);
    int fa = open(a, O_RDONLY | O_CLOEXEC);
    int fb = open(b, O_RDONLY | O_CLOEXEC);
    bool same = x != NULL && fa >= 0 && fb >= 0;

    while (same) {
        ssize_t na = read(fa, x, CHUNK);
        ssize_t nb = na > 0 ? read(fb, x + CHUNK, (size_t)na) : read(fb, x + CHUNK, 1);
        same = na >= 0 && na == nb && memcmp(x, x + CHUNK, (size_t)(na > 0 ? na : 0)) == 0;
        if (na <= 0) {
            break;
        }
    }
    if (fa >= 0) {
        close(fa);
    }
    if (fb >= 0) {
        close(fb);
    }
    sl_free(x);
    return same;
}
