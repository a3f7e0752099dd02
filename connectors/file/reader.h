/* SPDX-License-Identifier: MIT */
/* Sequential reading of one input file in blocks with read(2) (never mmap:
 * mapped pages would count in RSS), decompressing LZ4 frames (*.lz4) on the
 * fly with liblz4. Positions are offsets in the decompressed stream. One
 * owner thread (the source's). */
#ifndef SL_FILE_READER_H
#define SL_FILE_READER_H

#include "err.h"

#include <lz4frame.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_reader {
    int fd;
    bool lz4;
    LZ4F_dctx *dctx;
    char *cbuf; /* compressed input not yet consumed */
    size_t cbuf_len;
    size_t cbuf_pos;
    size_t cbuf_cap;
    uint64_t cbuf_off;    /* file offset of cbuf[0] */
    bool in_eof;          /* the file itself is exhausted */
    bool frame_done;      /* the last LZ4 frame ended cleanly */
    bool not_lz4;         /* *.lz4 that does not start with an LZ4 frame */
    bool truncated;       /* the input ended inside an LZ4 frame */
    int64_t pos;          /* decompressed bytes returned so far */
    uint64_t file_size;   /* size at open */
    uint64_t state_bytes; /* what decompressing takes beside the caller's buffer (lz4), from
                             the first frame's header; 0 for plain files */
};

/* Opens path; lz4 is decided by the ".lz4" suffix. Returns 0 or SL_EIO with
 * a message naming the file (SL_ENOMEM). A file that does not start with an
 * LZ4 frame magic number opens: its first read reports it. */
int sl_reader_open(struct sl_reader *r, const char *path, struct sl_err *err);
/* Reads up to cap bytes into dst. Returns the count, 0 at end of input, or
 * a negative code: SL_EDATA for LZ4 input that is not an LZ4 frame or is
 * damaged (err->msg says which, in words, without the path), SL_EIO for
 * read errors. An .lz4 file that ends inside a frame (still being written,
 * or cut short) is an end of input with r->truncated set: what decompressed
 * so far is returned first. */
long sl_reader_read(struct sl_reader *r, char *dst, size_t cap, struct sl_err *err);
/* Copies the file's first bytes as stored (not decompressed), at most cap,
 * into dst: what a dead letter shows of a file that is not LZ4. Returns the
 * count (0 for an empty file) or SL_EIO. */
long sl_reader_head(struct sl_reader *r, char *dst, size_t cap, struct sl_err *err);
/* Closes; safe on a zeroed or closed reader. */
void sl_reader_close(struct sl_reader *r);

#endif
