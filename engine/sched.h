/* SPDX-License-Identifier: MIT */
/* The worker pool: a fixed set of threads running tasks (a node's work on its
 * input batches) from per-thread work-stealing deques, plus a shared injection
 * queue for tasks submitted from other threads (sources, the event loop). Idle
 * workers steal, then park without spinning. Beside them, blocking threads,
 * started on demand, run the tasks that sleep or wait on I/O. Every function
 * may be called from any thread unless its comment says otherwise. */

#ifndef SL_SCHED_H
#define SL_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sl_err;
struct sl_sched;

#define SL_SCHED_THREADS_MAX  1024
#define SL_SCHED_BLOCKING_MAX 256

/* A unit of work. The caller embeds it in its own struct (container_of) and
 * sets fn; fn receives the task and may submit tasks, including this one
 * again. The caller guarantees a task is never queued twice at the same time
 * and stays alive until fn has been called. */
struct sl_task {
    void (*fn)(struct sl_task *task); /* set by the caller */
    uint8_t level;                    /* set by the caller before each submit: 0..9, see below */
    uint16_t home;            /* set by the caller: 0 none, else see sl_sched_set_stealing */
    struct sl_task *sl__next; /* private: injection queue link */
    uint64_t sl__since_ns;    /* private: when it was queued at its level */
};

/* Priority levels of tasks: 0 (the default) .. SL_SCHED_LEVELS - 1. */
#define SL_SCHED_LEVELS 10

/* Starts a pool of nthreads (1..SL_SCHED_THREADS_MAX) CPU workers and
 * blocking_min blocking threads; more blocking threads start on demand, up
 * to blocking_max (0 <= min <= max <= SL_SCHED_BLOCKING_MAX; max 0: none),
 * and those above min exit after 2 s idle (sl_sched_submit_blocking). All
 * run with asynchronous signals blocked (SIGINT, SIGTERM... go to the thread
 * that owns them, e.g. the event loop). Workers steal (see
 * sl_sched_set_stealing) and are not pinned (sl_sched_set_affinity).
 * Returns the pool (the caller owns it: sl_sched_free), or NULL and fills
 * err on failure (SL_EINVAL for a bad count, SL_ENOMEM, SL_EFATAL when a
 * thread cannot be started). Thread: any. */
struct sl_sched *sl_sched_new(int nthreads, int blocking_min, int blocking_max, struct sl_err *err);

/* Queues task to run once on some worker; the pool does not own the memory.
 * From a worker of s: pushed on that worker's deque, or on the injection
 * queue if the deque is full. A worker runs its newest task first (LIFO: the
 * batch a task just emitted is still in cache), idle workers steal the oldest,
 * and every 61st pick takes the injection queue and the oldest local task
 * first, so nothing starves. From any other
 * thread: on the injection queue (a short mutex). A task of a level above 0
 * goes to a queue per level that every worker looks at before its own
 * deque: the highest level first, with aging (aging.h) among levels 1..9.
 * Level 0 does not age against them: the look at the oldest local task and
 * the injection queue (in turn) every 61st pick or 1 ms is what bounds how
 * long it waits. Blocking tasks (sl_sched_submit_blocking) ignore level. Wakes one parked worker if
 * any is parked; an atomic load when none is. Never blocks for long. Must not
 * be called after sl_sched_stop has returned or while it runs from a thread
 * that is not a worker of s. Thread: any. */
void sl_sched_submit(struct sl_sched *s, struct sl_task *task);

/* Queues task to run once on a blocking thread, in submission order (FIFO,
 * as soon as a blocking thread is free): for work that sleeps or waits on
 * I/O, which would otherwise hold a CPU worker. The most recently idle
 * blocking thread takes it; with none idle, a new one starts if there are
 * fewer than blocking_max (the start, pthread_create, runs in this call but
 * under no lock that other submits wait on). If that start fails, the task
 * waits for a running blocking thread (a warning is logged once), or, when
 * there is none, runs on a CPU worker. A blocking thread above blocking_min
 * that stays idle 2 s exits; it is joined by the next start or by stop.
 * With blocking_max 0 it is sl_sched_submit. Same rules as sl_sched_submit
 * otherwise; tasks of both kinds may submit each other. Thread: any. */
void sl_sched_submit_blocking(struct sl_sched *s, struct sl_task *task);

/* Waits until every submitted task, and every task those submit, has run,
 * then stops and joins the workers. Idempotent. Blocks. Thread: any thread
 * that is not a worker of s. */
void sl_sched_stop(struct sl_sched *s);

/* Stops s if needed (see sl_sched_stop) and frees it. Accepts NULL; returns
 * NULL. Thread: not a worker of s. */
struct sl_sched *sl_sched_free(struct sl_sched *s);

/* Index 0..n-1 of the calling worker thread, -1 on any thread that is not a
 * pool worker. Thread: any. */
int sl_sched_worker_index(void);

/* Number of worker threads. Thread: any. */
int sl_sched_threads(const struct sl_sched *s);

/* Totals since sl_sched_new: tasks run, and tasks taken from another
 * worker's deque. Approximate while tasks run. Either pointer may be NULL.
 * Thread: any. */
void sl_sched_stats(const struct sl_sched *s, uint64_t *ret_run, uint64_t *ret_steals);

/* Blocking threads: running now (after stop: those running when it began),
 * the most at once, and how many were started in all. Any pointer may be
 * NULL. Thread: any. */
void sl_sched_blocking_threads(struct sl_sched *s,
                               int *ret_now,
                               int *ret_peak,
                               uint64_t *ret_started);

/* Whether the calling thread is one of s's blocking threads. Thread: any. */
bool sl_sched_on_blocking_thread(const struct sl_sched *s);

/* Blocking tasks waiting for a blocking thread now: a hint (0 while every
 * submit finds or starts a thread). Thread: any. */
long sl_sched_blocking_waiting(const struct sl_sched *s);

/* on = false: an idle worker never takes from another worker's deque, to
 * measure what stealing brings against a static partition of the work: a
 * level-0 task with a home h > 0 runs on worker (h - 1) mod threads only
 * (its own deque when that worker submits it, else its inbox), tasks
 * without one on the worker that submitted them or, from other threads,
 * on any (the injection queue). Levels above 0 run on any worker. With
 * stealing on, home is ignored. Default true. Best set before the first
 * submit. Thread: any. */
void sl_sched_set_stealing(struct sl_sched *s, bool on);

/* Pins CPU worker i to CPU cpus[i % ncpus] (ncpus >= 1); blocking threads
 * are not pinned (they sleep). Returns 0, SL_EINVAL for a CPU outside
 * 0..CPU_SETSIZE-1, or SL_EFATAL when the kernel refuses (a CPU outside the
 * process's affinity mask: EINVAL), err naming the CPU. Thread: any. */
int sl_sched_set_affinity(struct sl_sched *s, const int *cpus, size_t ncpus, struct sl_err *err);

/* ==== Test hooks ==== */

/* The aging step of the queues per level (aging.h, 20 ms); call before the
 * first submit. */
void sl_sched_test_aging(struct sl_sched *s, uint64_t aging_ns);
/* Blocking threads waiting for a task now (a live thread may still be
 * between its last task and its idle wait). */
int sl_sched_test_blocking_idle_count(struct sl_sched *s);
/* The idle time after which a blocking thread above min exits (2 s). */
void sl_sched_test_blocking_idle(struct sl_sched *s, uint64_t idle_ns);
/* Makes the nth blocking-thread start from now fail (1 = the next; 0 = none). */
void sl_sched_test_fail_blocking_start(struct sl_sched *s, int nth);
/* Calls on_timeout(arg) on a blocking thread whose idle wait timed out,
 * before it decides whether to exit, and on_exit(arg) once it decided to
 * exit (no longer counted), before it returns; both with no lock held.
 * Either may be NULL. */
void sl_sched_test_blocking_hooks(struct sl_sched *s,
                                  void (*on_timeout)(void *),
                                  void (*on_exit)(void *),
                                  void *arg);

#endif
