/* SPDX-License-Identifier: MIT */
/* The loop thread: owns signals (SIGINT/SIGTERM: drain; a second one: exit
 * 130 at once), the drain deadline and the live progress line. Work stays on
 * the pool; this thread only watches and signals. It sleeps until a signal,
 * a stop or its next deadline, so it never delays the end of a run. */
#ifndef SL_LOOP_H
#define SL_LOOP_H

#include "runtime.h"

#include <stdbool.h>

struct sl_loop;

/* Blocks SIGINT/SIGTERM in the calling thread (and threads it creates
 * later), so only the loop thread receives them. Thread: main, before it
 * creates any thread. */
void sl_loop_block_signals(void);
/* Starts the loop thread for pl. It installs a waker on pl->flow (a
 * failure wakes it), so free the loop only after pl (sl_loop_free). NULL +
 * err on failure. Thread: main. */
struct sl_loop *sl_loop_start(struct sl_pipeline *pl, bool progress, struct sl_err *err);
/* True when a drain ran past engine.drain_timeout (the run failed). */
bool sl_loop_drain_timed_out(const struct sl_loop *loop);
/* Wakes and joins the loop thread at once; NULL ok. Thread: main. */
void sl_loop_stop(struct sl_loop *loop);
/* Stops the loop if needed and frees it; call after sl_pipeline_free of its
 * pipeline. NULL ok; returns NULL. Thread: main. */
struct sl_loop *sl_loop_free(struct sl_loop *loop);

#endif
