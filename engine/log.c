/* SPDX-License-Identifier: MIT */
/* stderr logging (see log.h). One fprintf per line keeps lines whole; the
 * lock orders them with the progress line, which a log line clears first
 * ("\r\033[K") and the next progress tick draws again. With
 * --log-format json every line is one JSON object instead, and progress
 * is a line of its own per tick (nothing is drawn over). */
#include "log.h"

#include "buf.h"
#include "json.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CLEAR_LINE "\r\033[K"

static atomic_int quiet;
static atomic_int level = SL_LOG_INFO; /* set once before any thread starts */
static atomic_bool json;               /* set once before any thread starts */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool progress_shown; /* guarded by lock */

/* {"time":"...Z","level":level,"msg":text[,extra]}\n into buf; extra is
 * JSON members (",\"k\":v") or NULL. A line that cannot be built (out of
 * memory) goes out as text. */
static void json_line(const char *level, const char *text, const char *extra)
{
    struct sl_buf buf = {0};
    struct timespec ts;
    struct tm tm;
    char when[40];

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    int rc = sl_buf_appendf(&buf, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"msg\":", when,
                            ts.tv_nsec / 1000000, level);
    rc = rc != 0 ? rc : sl_json_write_string(&buf, text, strlen(text));
    rc = rc != 0 || extra == NULL ? rc : sl_buf_append(&buf, extra, strlen(extra));
    rc = rc != 0 ? rc : sl_buf_append(&buf, "}\n", 2);
    pthread_mutex_lock(&lock);
    if (rc == 0) {
        fwrite(buf.data, 1, buf.len, stderr);
    } else {
        fprintf(stderr, "sluice: %s: %s\n", level, text);
    }
    pthread_mutex_unlock(&lock);
    sl_buf_release(&buf);
}

/* "[clear]prefix text\n", text escaped (log.h): 4 bytes at most for each
 * of text's (\xNN), which vlog keeps below 1 KiB. */
static void text_line(const char *prefix, const char *text)
{
    char clean[4 * 1024];

    sl_utf8_clean(clean, sizeof(clean), text, strlen(text), true);
    pthread_mutex_lock(&lock);
    fprintf(stderr, "%s%s%s\n", progress_shown ? CLEAR_LINE : "", prefix, clean);
    progress_shown = false;
    pthread_mutex_unlock(&lock);
}

/* level: the JSON level; prefix: the text form's ("warning: "). */
static void vlog(const char *level, const char *prefix, const char *fmt, va_list ap)
{
    char line[1024], head[32];

    vsnprintf(line, sizeof(line), fmt, ap);
    if (atomic_load_explicit(&json, memory_order_relaxed)) {
        json_line(level, line, NULL);
        return;
    }
    snprintf(head, sizeof(head), "sluice: %s", prefix);
    text_line(head, line);
}

void sl_log_text(const char *prefix, const char *text)
{
    text_line(prefix, text);
}

void sl_log_set_level(enum sl_log_level l)
{
    atomic_store_explicit(&level, (int)l, memory_order_relaxed);
}

bool sl_log_enabled(enum sl_log_level l)
{
    return (l == SL_LOG_ERROR || !atomic_load_explicit(&quiet, memory_order_relaxed)) &&
           (int)l <= atomic_load_explicit(&level, memory_order_relaxed);
}

void sl_log_set_json(bool on)
{
    atomic_store_explicit(&json, on, memory_order_relaxed);
}

bool sl_log_is_json(void)
{
    return atomic_load_explicit(&json, memory_order_relaxed);
}

void sl_log_json_line(const char *level, const char *msg, const char *members)
{
    json_line(level, msg, members);
}

void sl_log_warn(const char *fmt, ...)
{
    va_list ap;

    if (!sl_log_enabled(SL_LOG_WARN)) {
        return;
    }
    va_start(ap, fmt);
    vlog("warn", "warning: ", fmt, ap);
    va_end(ap);
}

void sl_log_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog("error", "error: ", fmt, ap);
    va_end(ap);
}

void sl_log_info(const char *fmt, ...)
{
    va_list ap;

    if (!sl_log_enabled(SL_LOG_INFO)) {
        return;
    }
    va_start(ap, fmt);
    vlog("info", "", fmt, ap);
    va_end(ap);
}

void sl_log_debug(const char *fmt, ...)
{
    va_list ap;

    if (!sl_log_enabled(SL_LOG_DEBUG)) {
        return;
    }
    va_start(ap, fmt);
    vlog("debug", "debug: ", fmt, ap);
    va_end(ap);
}

void sl_log_debug_asked(const char *fmt, ...)
{
    va_list ap;

    if (atomic_load_explicit(&quiet, memory_order_relaxed)) {
        return;
    }
    va_start(ap, fmt);
    vlog("debug", "debug: ", fmt, ap);
    va_end(ap);
}

void sl_log_always(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog("info", "", fmt, ap);
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
    if (atomic_load_explicit(&json, memory_order_relaxed)) {
        json_line("progress", line, NULL);
        return;
    }
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
