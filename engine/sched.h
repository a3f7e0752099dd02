/* SPDX-License-Identifier: MIT */
/* The worker pool: a fixed set of threads running tasks (a node's work on its
 * input batches) from per-thread work-stealing deques, plus a shared injection
 * queue for tasks submitted from other threads (sources, the event loop). Idle
 * workers steal, then park without spinning. Every function may be called
 * from any thread unless its comment says otherwise. */

#ifndef SL_SCHED_H
#define SL_SCHED_H

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
    struct sl_task *sl__next;         /* private: injection queue link */
};

/* Starts a pool of nthreads (1..SL_SCHED_THREADS_MAX) CPU workers and
 * nblocking (0..SL_SCHED_BLOCKING_MAX) blocking threads. All run with
 * asynchronous signals blocked (SIGINT, SIGTERM... go to the thread that
 * owns them, e.g. the event loop). Returns the pool (the caller owns it:
 * sl_sched_free), or NULL and fills err on failure (SL_EINVAL for a bad
 * count, SL_ENOMEM, SL_EFATAL when a thread cannot be started).
 * Thread: any. */
struct sl_sched *sl_sched_new(int nthreads, int nblocking, struct sl_err *err);

/* Queues task to run once on some worker; the pool does not own the memory.
 * From a worker of s: pushed on that worker's deque, or on the injection
 * queue if the deque is full. A worker runs its newest task first (LIFO: the
 * batch a task just emitted is still in cache), idle workers steal the oldest,
 * and every 61st pick takes the injection queue and the oldest local task
 * first, so nothing starves. From any other
 * thread: on the injection queue (a short mutex). Wakes one parked worker if
 * any is parked; an atomic load when none is. Never blocks for long. Must not
 * be called after sl_sched_stop has returned or while it runs from a thread
 * that is not a worker of s. Thread: any. */
void sl_sched_submit(struct sl_sched *s, struct sl_task *task);

/* Queues task to run once on a blocking thread, in submission order (FIFO,
 * as soon as a blocking thread is free): for work that sleeps or waits on
 * I/O, which would otherwise hold a CPU worker. With no blocking threads it
 * is sl_sched_submit. Same rules as sl_sched_submit otherwise; tasks of both
 * kinds may submit each other. Thread: any. */
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

#endif
