/* SPDX-License-Identifier: MIT */
/* The loop thread: owns signals (SIGINT/SIGTERM: drain; a second one: exit
 * 130 at once), the drain deadline and the live progress line. Work stays on
 * the pool; this thread only watches and signals. */
#ifndef SL_LOOP_H
#define SL_LOOP_H

#include "runtime.h"

#include <stdbool.h>

struct sl_loop;

/* Blocks SIGINT/SIGTERM in the calling thread (and threads it creates
 * later), so only the loop thread receives them. Thread: main, first. */
void sl_loop_block_signals(void);
/* Starts the loop thread for pl. NULL + err on failure. */
struct sl_loop *sl_loop_start(struct sl_pipeline *pl, bool progress, struct sl_err *err);
/* True when a drain ran past engine.drain_timeout (the run failed). */
bool sl_loop_drain_timed_out(const struct sl_loop *loop);
/* Stops and joins the loop thread; NULL ok. */
void sl_loop_stop(struct sl_loop *loop);

#endif
