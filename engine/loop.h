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

/* Catches SIGINT/SIGTERM from the start of the process, before the loop
 * exists: the first is kept for the loop (which drains at once), a second
 * exits 130 at once, as later. Thread: main, first thing. */
void sl_loop_catch_signals(void);
/* Gives SIGINT/SIGTERM their default action back, for a command that runs
 * no pipeline; a signal caught so far is raised again (the process dies of
 * it). Thread: main, before any other thread. */
void sl_loop_release_signals(void);
/* Blocks SIGINT/SIGTERM in the calling thread (and threads it creates
 * later), so only the loop thread receives them. Thread: main, before it
 * creates any thread. */
void sl_loop_block_signals(void);
/* Starts the loop thread (after sl_loop_block_signals), before the
 * pipeline exists: from now on a second signal exits 130 at once, and a
 * first one (or one caught before) stops the pipeline once attached. conf
 * is borrowed (engine.drain_timeout). summary: print the summary (counts
 * so far) when the drain deadline ends the run; summary_json (borrowed, or
 * NULL): write --summary-json then too. NULL + err on failure.
 * Thread: main. */
struct sl_loop *sl_loop_start(const struct sl_conf *conf,
                              bool progress,
                              bool summary,
                              const char *summary_json,
                              struct sl_err *err);
/* Hands the built pipeline to the loop: a stop asked so far is applied at
 * once. The loop installs a waker on pl->flow (a failure wakes it), so free
 * the loop only after pl (sl_loop_free). Thread: main, before
 * sl_pipeline_start. */
void sl_loop_attach(struct sl_loop *loop, struct sl_pipeline *pl);
/* True when a drain ran past engine.drain_timeout (the run failed). */
bool sl_loop_drain_timed_out(const struct sl_loop *loop);
/* Wakes and joins the loop thread at once; NULL ok. Thread: main. */
void sl_loop_stop(struct sl_loop *loop);
/* Bounds the shutdown once the run ended (after sl_loop_stop): starts a
 * watchdog that exits the process with 1, naming what did not stop, when
 * the shutdown has not finished (sl_loop_free) by the drain deadline plus
 * 2 s, or, when no drain ran, engine.drain_timeout from now. pl (may be
 * NULL) gets the watchdog as its teardown listener (pl->on_teardown).
 * The process exits with every thread still running and nothing freed:
 * memory a stuck thread uses is never freed under it. Thread: main. */
void sl_loop_guard_shutdown(struct sl_loop *loop, struct sl_pipeline *pl);
/* Tells the watchdog what the next step of the shutdown waits for (main's
 * own steps, such as writing the summary). No-op without a watchdog.
 * Thread: main. */
void sl_loop_guard_note(struct sl_loop *loop, const char *what);
/* Stops the loop and the shutdown watchdog if needed and frees it; call
 * after sl_pipeline_free of its pipeline. NULL ok; returns NULL.
 * Thread: main. */
struct sl_loop *sl_loop_free(struct sl_loop *loop);

#endif
