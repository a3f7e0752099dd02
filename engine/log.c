/* SPDX-License-Identifier: MIT */
/* stderr logging (see log.h). One fprintf per line keeps lines whole; the
 * lock orders them with the progress line, which a log line clears first
 * ("\r\033[K") and the next progress tick draws again. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#define CLEAR_LINE "\r\033[K"

static atomic_int quiet;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool progress_shown; /* guarded by lock */

static void vlog(const char *level, const char *fmt, va_list ap)
{
    char line[1024];

    vsnprintf(line, sizeof(line), fmt, ap);
    pthread_mutex_lock(&lock);
    fprintf(stderr, "%ssluice: %s%s\n", progress_shown ? CLEAR_LINE : "", level, line);
    progress_shown = false;
    pthread_mutex_unlock(&lock);
}

void sl_log_warn(const char *fmt, ...)
{
    va_list ap;

    if (atomic_load_explicit(&quiet, memory_order_relaxed)) {
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

    if (atomic_load_explicit(&quiet, memory_order_relaxed)) {
        return;
    }
    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void sl_log_debug(const char *fmt, ...)
{
    va_list ap;

    if (atomic_load_explicit(&quiet, memory_order_relaxed)) {
        return;
    }
    va_start(ap, fmt);
    vlog("debug: ", fmt, ap);
    va_end(ap);
}

void sl_log_always(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog("", fmt, ap);
    va_end(ap);
}

void sl_log_set_quiet(int q)
{
    /* Relaxed: set once before any thread starts. */
    atomic_store_explicit(&quiet, q, memory_order_relaxed);
}

void sl_log_progress(const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&lock);
    fprintf(stderr, CLEAR_LINE "%s", line);
    progress_shown = true;
    pthread_mutex_unlock(&lock);
}

void sl_log_progress_end(void)
{
    pthread_mutex_lock(&lock);
    if (progress_shown) {
        fputs(CLEAR_LINE, stderr);
        progress_shown = false;
    }
    pthread_mutex_unlock(&lock);
}
