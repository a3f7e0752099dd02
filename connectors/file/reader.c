/* SPDX-License-Identifier: MIT */
/* Plain and LZ4-frame file reading (see reader.h). */
#include "reader.h"

#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CBUF_SIZE (256 * 1024)

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s);
    size_t m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int sl_reader_open(struct sl_reader *r, const char *path, struct sl_err *err)
{
    struct stat st;

    memset(r, 0, sizeof(*r));
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        return sl_err_set(err, SL_EIO, "%s: %s", path, strerror(errno));
    }
    if (fstat(r->fd, &st) == 0) {
        r->file_size = (uint64_t)st.st_size;
    }
    (void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    r->lz4 = has_suffix(path, ".lz4");
    if (r->lz4) {
        r->cbuf = sl_malloc(CBUF_SIZE);
        if (r->cbuf == NULL ||
            LZ4F_isError(LZ4F_createDecompressionContext(&r->dctx, LZ4F_VERSION))) {
            sl_reader_close(r);
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
        r->cbuf_cap = CBUF_SIZE;
        r->frame_done = true;
    }
    return 0;
}

static long read_plain(int fd, char *dst, size_t cap, struct sl_err *err)
{
    for (;;) {
        ssize_t n = read(fd, dst, cap);
        if (n >= 0) {
            return (long)n;
        }
        if (errno != EINTR) {
            return sl_err_set(err, SL_EIO, "read: %s", strerror(errno));
        }
    }
}

static long read_lz4(struct sl_reader *r, char *dst, size_t cap, struct sl_err *err)
{
    size_t produced = 0;

    while (produced == 0) {
        if (r->cbuf_pos == r->cbuf_len) {
            if (r->in_eof) {
                if (!r->frame_done) {
                    return sl_err_set(err, SL_EDATA, "corrupt LZ4 input: truncated frame");
                }
                return 0;
            }
            long n = read_plain(r->fd, r->cbuf, r->cbuf_cap, err);
            if (n < 0) {
                return n;
            }
            r->cbuf_len = (size_t)n;
            r->cbuf_pos = 0;
            r->in_eof = n == 0;
            continue;
        }
        size_t out_len = cap - produced;
        size_t in_len = r->cbuf_len - r->cbuf_pos;
        size_t hint = LZ4F_decompress(r->dctx, dst + produced, &out_len, r->cbuf + r->cbuf_pos,
                                      &in_len, NULL);
        if (LZ4F_isError(hint)) {
            return sl_err_set(err, SL_EDATA, "corrupt LZ4 input: %s", LZ4F_getErrorName(hint));
        }
        r->cbuf_pos += in_len;
        produced += out_len;
        /* hint == 0: a frame ended; another may follow (concatenated frames). */
        r->frame_done = hint == 0;
        if (out_len == 0 && in_len == 0) {
            return sl_err_set(err, SL_EDATA, "corrupt LZ4 input: decoder made no progress");
        }
    }
    return (long)produced;
}

long sl_reader_read(struct sl_reader *r, char *dst, size_t cap, struct sl_err *err)
{
    long n = r->lz4 ? read_lz4(r, dst, cap, err) : read_plain(r->fd, dst, cap, err);

    if (n > 0) {
        r->pos += n;
    }
    return n;
}

/* FNV-1a of the first n bytes of the file as stored (n <= 4 KiB): cheap and
 * stable, not meant to resist tampering. */
static int hash_head(struct sl_reader *r, size_t n, uint64_t *ret, struct sl_err *err)
{
    unsigned char head[4096];
    ssize_t got = pread(r->fd, head, n < sizeof(head) ? n : sizeof(head), 0);
    uint64_t h = 1469598103934665603ull;

    if (got < 0) {
        return sl_err_set(err, SL_EIO, "read: %s", strerror(errno));
    }
    for (ssize_t i = 0; i < got; i++) {
        h = (h ^ head[i]) * 1099511628211ull;
    }
    *ret = h;
    return 0;
}

int sl_reader_fingerprint(struct sl_reader *r, char *out, size_t len, struct sl_err *err)
{
    uint64_t h;
    int rc = hash_head(r, 4096, &h, err);

    if (rc == 0) {
        snprintf(out, len, "%llu:%016llx", (unsigned long long)r->file_size, (unsigned long long)h);
    }
    return rc;
}

int sl_reader_same_file(
    struct sl_reader *r, const char *stored, int64_t stored_pos, bool *ret_same, struct sl_err *err)
{
    unsigned long long size;
    unsigned long long want;
    uint64_t h;

    if (sscanf(stored, "%llu:%llx", &size, &want) != 2) {
        *ret_same = false;
        return 0;
    }
    int rc = hash_head(r, size < 4096 ? (size_t)size : 4096, &h, err);
    if (rc != 0) {
        return rc;
    }
    /* The position of an .lz4 file is in decompressed bytes: no size check. */
    *ret_same = h == want && r->file_size >= (size < 4096 ? size : 4096) &&
                (r->lz4 || (int64_t)r->file_size >= stored_pos);
    return 0;
}

void sl_reader_close(struct sl_reader *r)
{
    if (r->fd > 0) {
        close(r->fd);
    }
    r->fd = -1;
    if (r->dctx != NULL) {
        LZ4F_freeDecompressionContext(r->dctx);
        r->dctx = NULL;
    }
    sl_free(r->cbuf);
    r->cbuf = NULL;
}
