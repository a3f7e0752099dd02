/* SPDX-License-Identifier: MIT */
/* stderr logging (see log.h). One fprintf per line keeps lines whole. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static int quiet;

static void vlog(const char *level, const char *fmt, va_list ap)
{
    char line[1024];

    vsnprintf(line, sizeof(line), fmt, ap);
    fprintf(stderr, "sluice: %s%s\n", level, line);
}

void sl_log_warn(const char *fmt, ...)
{
    va_list ap;

    if (quiet) {
        return;
    }
    va_start(ap, fmt);
    vlog("warning: ", fmt, ap);
    va_end(ap);
}

void sl_log_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog("error: ", fmt, ap);
    va_end(ap);
}

void sl_log_info(const char *fmt, ...)
{
    va_list ap;

    if (quiet) {
        return;
    }
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void sl_log_set_quiet(int q)
{
    quiet = q;
}
