/* SPDX-License-Identifier: MIT */
/* Diagnostics on stderr, one line each, prefixed "sluice: ". Thread: any. */
#ifndef SL_LOG_H
#define SL_LOG_H

void sl_log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sl_log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sl_log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* --quiet: info and warnings are not printed. */
void sl_log_set_quiet(int quiet);

#endif
