/* SPDX-License-Identifier: MIT */
/* Diagnostics on stderr, one line each, prefixed "sluice: ", and the live
 * progress line of --progress: a log line first clears a progress line
 * drawn on the terminal, so the two never share a line. Thread: any. */
#ifndef SL_LOG_H
#define SL_LOG_H

#include <stdbool.h>

/* engine.log_level: lines below it (error < warn < info < debug) are not
 * printed; info by default. --quiet hides all but errors whatever it is.
 * Set once before any thread starts. */
enum sl_log_level { SL_LOG_ERROR, SL_LOG_WARN, SL_LOG_INFO, SL_LOG_DEBUG };
void sl_log_set_level(enum sl_log_level level);
/* Whether a line at level would be printed (to skip building one). */
bool sl_log_enabled(enum sl_log_level level);

/* In the text format a line's text has its control characters escaped
 * (\n, \r, \t, \xNN) and each invalid UTF-8 byte as U+FFFD: one message,
 * one line, whatever it holds (a plugin's text, a field's value). */
void sl_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sl_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sl_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "sluice: debug: ...": at log_level debug (a plugin's debug lines). */
void sl_log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A debug line a user asked for where it comes from (librdkafka's `debug`
 * in a node's librdkafka map): printed at any log_level, unless --quiet. */
void sl_log_debug_asked(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A line that --quiet does not hide (the count of dead letters at the end
 * of a run), without a level. */
void sl_log_always(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* --quiet: info, debug and warnings are not printed. */
void sl_log_set_quiet(int quiet);

/* --log-format json: every line is one JSON object, {"time" (RFC 3339 UTC,
 * milliseconds), "level" (error, warn, info, debug, progress), "msg"}.
 * Set once before any thread starts. */
void sl_log_set_json(bool on);
bool sl_log_is_json(void);
/* One JSON line at level with msg, and members (",\"k\":v", or NULL)
 * added to the object (a config error's location, the summary). */
void sl_log_json_line(const char *level, const char *msg, const char *members);

/* "prefix text\n" on stderr in the text format (text escaped as above):
 * for what main prints itself (a failure, a config error). */
void sl_log_text(const char *prefix, const char *text);

/* Draws the progress line (no newline) over the previous one. The caller
 * draws it only when stderr is a terminal. */
void sl_log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Clears the progress line if one is drawn. */
void sl_log_progress_end(void);

#endif
