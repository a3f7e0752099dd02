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

/* Whether the file's first bytes (up to 4) are, or begin, the magic number of
 * an LZ4 frame (04 22 4D 18) or of a skippable frame (5X 2A 4D 18). An empty
 * file passes: it is an empty input. liblz4 only checks the magic once it
 * holds a whole frame header (7 bytes), so a short text file named .lz4
 * would otherwise look like a truncated frame. */
static bool starts_like_lz4(int fd)
{
    unsigned char m[4];
    ssize_t got = pread(fd, m, sizeof(m), 0);

    if (got <= 0) {
        return true; /* empty, or a read error the first read reports */
    }
    bool frame = m[0] == 0x04;
    if (!frame && (m[0] & 0xF0) != 0x50) {
        return false;
    }
    return (got < 2 || m[1] == (frame ? 0x22 : 0x2A)) && (got < 3 || m[2] == 0x4D) &&
           (got < 4 || m[3] == 0x18);
}

/* What liblz4 allocates to decompress a frame whose header starts the file
 * (its input and output block buffers, and the 64 KiB window of linked
 * blocks), before it does: the frame descriptor's BD byte gives the block
 * size (64 KiB to 4 MiB). Unknown headers count as 4 MiB blocks. */
static uint64_t lz4_state_bytes(int fd)
{
    unsigned char h[6];
    uint64_t block = 4u << 20;

    if (pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) && h[0] == 0x04 && h[1] == 0x22 &&
        h[2] == 0x4D && h[3] == 0x18) {
        unsigned id = (h[5] >> 4) & 7;
        block = id >= 4 ? (uint64_t)1 << (8 + 2 * id) : block;
    }
    return CBUF_SIZE + 2 * block + 128 * 1024;
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
        r->not_lz4 = !starts_like_lz4(r->fd);
        r->state_bytes = lz4_state_bytes(r->fd);
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

/* Says in words what liblz4's error means for the reader: the file is not
 * LZ4 at all, or which part of it is damaged. */
static int lz4_error(const struct sl_reader *r, size_t code, struct sl_err *err)
{
    static const struct {
        const char *name;
        const char *msg;
    } known[] = {
        {"ERROR_headerChecksum_invalid", "damaged LZ4 frame header (checksum mismatch)"},
        {"ERROR_headerVersion_wrong", "unsupported LZ4 frame version"},
        {"ERROR_reservedFlag_set", "damaged LZ4 frame header (reserved bit set)"},
        {"ERROR_maxBlockSize_invalid", "damaged LZ4 frame header (invalid block size)"},
        {"ERROR_blockMode_invalid", "damaged LZ4 frame header (invalid block mode)"},
        {"ERROR_blockChecksum_invalid", "damaged LZ4 data (block checksum mismatch)"},
        {"ERROR_contentChecksum_invalid", "damaged LZ4 data (content checksum mismatch)"},
        {"ERROR_decompressionFailed", "damaged LZ4 data (a block does not decompress)"},
        {"ERROR_frameSize_wrong", "damaged LZ4 frame (its size differs from its header's)"},
    };
    const char *name = LZ4F_getErrorName(code);
    uint64_t at = r->cbuf_off + r->cbuf_pos;

    if (strcmp(name, "ERROR_frameType_unknown") == 0) {
        if (at == 0) {
            return sl_err_set(err, SL_EDATA, "not an LZ4 frame");
        }
        return sl_err_set(err, SL_EDATA,
                          "not an LZ4 frame at byte %llu (after the end of the last one)",
                          (unsigned long long)at);
    }
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strcmp(name, known[i].name) == 0) {
            return sl_err_set(err, SL_EDATA, "%s near byte %llu of the file", known[i].msg,
                              (unsigned long long)at);
        }
    }
    return sl_err_set(err, SL_EDATA, "damaged LZ4 data near byte %llu of the file (liblz4: %s)",
                      (unsigned long long)at, name);
}

static long read_lz4(struct sl_reader *r, char *dst, size_t cap, struct sl_err *err)
{
    size_t produced = 0;

    if (r->not_lz4) {
        return sl_err_set(err, SL_EDATA, "not an LZ4 frame");
    }
    while (produced == 0) {
        if (r->cbuf_pos == r->cbuf_len) {
            if (r->in_eof) {
                /* Inside a frame: the writer may not be done; the caller
                 * leaves what is incomplete for a later run. */
                r->truncated = !r->frame_done;
                return 0;
            }
            long n = read_plain(r->fd, r->cbuf, r->cbuf_cap, err);
            if (n < 0) {
                return n;
            }
            r->cbuf_off += r->cbuf_len;
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
            return lz4_error(r, hint, err);
        }
        r->cbuf_pos += in_len;
        produced += out_len;
        /* hint == 0: a frame ended; another may follow (concatenated frames). */
        r->frame_done = hint == 0;
        if (out_len == 0 && in_len == 0) {
            return sl_err_set(err, SL_EDATA, "damaged LZ4 data near byte %llu of the file",
                              (unsigned long long)(r->cbuf_off + r->cbuf_pos));
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

long sl_reader_head(struct sl_reader *r, char *dst, size_t cap, struct sl_err *err)
{
    ssize_t got = pread(r->fd, dst, cap, 0);

    if (got < 0) {
        return sl_err_set(err, SL_EIO, "read: %s", strerror(errno));
    }
    return (long)got;
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
