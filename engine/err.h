/* SPDX-License-Identifier: MIT */
/* Error codes and error messages shared by every module.
 * SL_ERRNO_MAP generates the enum, sl_strerror() and sl_errname(). A struct
 * sl_err carries a message and, for config errors, the file:line:col and the
 * key path. Any thread. */
#ifndef SL_ERR_H
#define SL_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define SL_ERRNO_MAP(X)                                                                            \
    X(EAGAIN, "resource temporarily unavailable, retry")                                           \
    X(EOF, "end of input")                                                                         \
    X(ENOMEM, "out of memory")                                                                     \
    X(EINVAL, "invalid argument")                                                                  \
    X(ECONFIG, "configuration error")                                                              \
    X(EIO, "input/output error")                                                                   \
    X(ETIMEDOUT, "timed out")                                                                      \
    X(ECANCELED, "canceled")                                                                       \
    X(ERETRY, "transient failure, retry later")                                                    \
    X(EFATAL, "fatal error")                                                                       \
    X(EABI, "plugin ABI mismatch")                                                                 \
    X(EDATA, "malformed record")

enum sl_errno {
    SL_OK = 0,
#define SL__ERR_ENUM(name, msg) SL_##name,
    SL__ERRNO_FIRST = -1000,
    SL_ERRNO_MAP(SL__ERR_ENUM)
#undef SL__ERR_ENUM
};

#define SL_ERR_MSG_MAX  256
#define SL_ERR_PATH_MAX 256

struct sl_err {
    int code;                   /* negative SL_E*, 0 when unset */
    char msg[SL_ERR_MSG_MAX];   /* human readable, no trailing newline */
    const char *file;           /* config file name, NULL if none */
    int line;                   /* 1-based, 0 if unknown */
    int col;                    /* 1-based, 0 if unknown */
    char path[SL_ERR_PATH_MAX]; /* key path such as "stages.paid.where", may be "" */
};

/* Returns a static description of an SL_E* code. Thread: any. */
const char *sl_strerror(int code);
/* Returns the code's name without prefix, e.g. "EAGAIN". Thread: any. */
const char *sl_errname(int code);

/* Fills err (if not NULL) with code and a printf-style message; leaves the
 * location untouched. Returns code, so `return sl_err_set(err, SL_EIO, ...)`
 * works. Thread: any. */
int sl_err_set(struct sl_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int sl_err_vset(struct sl_err *err, int code, const char *fmt, va_list ap);
/* Like sl_err_set, with a config location and key path. */
int sl_err_set_at(
    struct sl_err *err, const char *file, int line, int col, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Clears err to "no error". */
void sl_err_clear(struct sl_err *err);
/* Formats err as "file:line:col: path: msg" (parts omitted when unknown) into
 * buf; returns buf. */
const char *sl_err_format(const struct sl_err *err, char *buf, size_t len);

#define SL_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            sl__assert_fail(#cond, __FILE__, __LINE__);                                            \
        }                                                                                          \
    } while (0)
void sl__assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));

#endif
