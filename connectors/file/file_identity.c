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
    /* FNV-1a: cheap and stable, not meant to resist tampering. Every prefix
     * length at once, so matching many stored files costs no rereading. */
    h->hash[0] = 1469598103934665603ull;
    for (size_t i = 0; i < h->got; i++) {
        h->hash[i + 1] = (h->hash[i] ^ head[i]) * 1099511628211ull;
    }
    return 0;
}

void sl_file_known_parse(const char *key, const char *fp, struct sl_file_known *k)
{
    unsigned long long p = 0;
    unsigned long long x = 0;
    unsigned long long dev = 0;
    unsigned long long ino = 0;
    int n = fp != NULL ? sscanf(fp, "%llu:%llx:%llu:%llu", &p, &x, &dev, &ino) : 0;

    *k = (struct sl_file_known){.key = key, .fp = fp, .path = ""};
    if (n == 2 || n == 4) {
        k->fields = n;
        /* An older "size:hash" holds the size then, the hash over 4 KiB. */
        k->prefix = p < SL_FILE_HEAD ? p : SL_FILE_HEAD;
        k->hash = x;
        k->dev = dev;
        k->ino = ino;
    }
    if (n == 4) {
        /* Four ':'-ended numbers, then the path. */
        const char *q = fp;
        for (int i = 0; i < 4 && q != NULL; i++) {
            q = strchr(q, ':');
            q = q != NULL ? q + 1 : NULL;
        }
        k->path = q != NULL ? q : "";
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
