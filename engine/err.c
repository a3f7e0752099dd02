/* SPDX-License-Identifier: MIT */
/* Error code names and the struct sl_err helpers declared in err.h. */
#include "err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sl_strerror(int code)
{
    switch (code) {
    case SL_OK:
        return "success";
#define SL__ERR_STR(name, msg)                                                                     \
    case SL_##name:                                                                                \
        return msg;
        SL_ERRNO_MAP(SL__ERR_STR)
#undef SL__ERR_STR
    default:
        return "unknown error";
    }
}

const char *sl_errname(int code)
{
    switch (code) {
    case SL_OK:
        return "OK";
#define SL__ERR_NAME(name, msg)                                                                    \
    case SL_##name:                                                                                \
        return #name;
        SL_ERRNO_MAP(SL__ERR_NAME)
#undef SL__ERR_NAME
    default:
        return "EUNKNOWN";
    }
}

int sl_err_vset(struct sl_err *err, int code, const char *fmt, va_list ap)
{
    if (err != NULL) {
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    }
    return code;
}

int sl_err_set(struct sl_err *err, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sl_err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

int sl_err_set_at(
    struct sl_err *err, const char *file, int line, int col, const char *path, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL) {
        return SL_ECONFIG;
    }
    va_start(ap, fmt);
    sl_err_vset(err, SL_ECONFIG, fmt, ap);
    va_end(ap);
    err->file = file;
    err->line = line;
    err->col = col;
    snprintf(err->path, sizeof(err->path), "%s", path != NULL ? path : "");
    return SL_ECONFIG;
}

void sl_err_clear(struct sl_err *err)
{
    memset(err, 0, sizeof(*err));
}

const char *sl_err_format(const struct sl_err *err, char *buf, size_t len)
{
    size_t off = 0;

    buf[0] = '\0';
    if (err->file != NULL) {
        if (err->line > 0) {
            off += (size_t)snprintf(buf + off, len - off, "%s:%d:%d: ", err->file, err->line,
                                    err->col > 0 ? err->col : 1);
        } else {
            off += (size_t)snprintf(buf + off, len - off, "%s: ", err->file);
        }
    }
    if (off < len && err->path[0] != '\0') {
        off += (size_t)snprintf(buf + off, len - off, "%s: ", err->path);
    }
    if (off < len) {
        snprintf(buf + off, len - off, "%s", err->msg[0] ? err->msg : sl_strerror(err->code));
    }
    return buf;
}

void sl__assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "sluice: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
