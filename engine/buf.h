/* SPDX-License-Identifier: MIT */
/* A growable byte buffer for building text (JSON output, SQL). One owner. */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>

struct sl_buf {
    char *data; /* sl_malloc'ed, NUL-terminated after every append */
    size_t len;
    size_t cap;
};

/* All return 0 or SL_ENOMEM. */
int sl_buf_reserve(struct sl_buf *buf, size_t extra);
int sl_buf_append(struct sl_buf *buf, const void *data, size_t len);
int sl_buf_appendf(struct sl_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sl_buf_putc(struct sl_buf *buf, char c);
/* Empties the buffer, keeping its memory. */
void sl_buf_reset(struct sl_buf *buf);
/* Frees the memory; the buffer is empty and reusable after. */
void sl_buf_release(struct sl_buf *buf);

#endif
