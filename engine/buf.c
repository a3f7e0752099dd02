/* SPDX-License-Identifier: MIT */
/* Growable byte buffer (see buf.h). */
#include "buf.h"

#include "err.h"
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int sl_buf_reserve(struct sl_buf *buf, size_t extra)
{
    if (buf->len + extra + 1 <= buf->cap) {
        return 0;
    }
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap < buf->len + extra + 1) {
        cap *= 2;
    }
    char *p = sl_realloc(buf->data, cap);
    if (p == NULL) {
        return SL_ENOMEM;
    }
    buf->data = p;
    buf->cap = cap;
    return 0;
}

int sl_buf_append(struct sl_buf *buf, const void *data, size_t len)
{
    if (sl_buf_reserve(buf, len) != 0) {
        return SL_ENOMEM;
    }
    if (len > 0) {
        memcpy(buf->data + buf->len, data, len);
    }
    buf->len += len;
    buf->data[buf->len] = '\0';
    return 0;
}

int sl_buf_putc(struct sl_buf *buf, char c)
{
    return sl_buf_append(buf, &c, 1);
}

int sl_buf_appendf(struct sl_buf *buf, const char *fmt, ...)
{
    va_list ap;
    char small[256];

    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return SL_EINVAL;
    }
    if ((size_t)n < sizeof(small)) {
        return sl_buf_append(buf, small, (size_t)n);
    }
    if (sl_buf_reserve(buf, (size_t)n) != 0) {
        return SL_ENOMEM;
    }
    va_start(ap, fmt);
    vsnprintf(buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return 0;
}

void sl_buf_reset(struct sl_buf *buf)
{
    buf->len = 0;
    if (buf->data != NULL) {
        buf->data[0] = '\0';
    }
}

void sl_buf_release(struct sl_buf *buf)
{
    sl_free(buf->data);
    memset(buf, 0, sizeof(*buf));
}
