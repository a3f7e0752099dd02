/* SPDX-License-Identifier: MIT */
/* The scheduler's blocking threads (internal to sched.c; see sched.h for
 * what they are for): between min and max threads running tasks that may
 * sleep or wait on I/O, in submission order. A submit with no idle thread
 * starts one (below max); a thread above min that stays idle idle_ns exits
 * and is joined by the next start or by stop. Thread: any unless said. */
#ifndef SL_SCHED_BLOCKING_H
#define SL_SCHED_BLOCKING_H

#include "sched.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct sl_err;
struct blk_slot; /* one thread's seat (sched_blocking.c) */

/* Test hooks, called on the blocking thread with no lock held. */
struct sl_blocking_hooks {
    void (*on_timeout)(void *arg); /* idle timeout fired, before deciding to exit */
    void (*on_exit)(void *arg);    /* decided to exit (no longer counted), before returning */
    void *arg;
};

struct sl_blocking {
    /* Read-only while threads run. */
    int min, max;
    void (*done)(void *arg); /* called after each task (the pool's pending count) */
    void *done_arg;
    struct blk_slot *slots; /* max entries */
    cpu_set_t cpus;         /* the process's CPUs at init: threads run on all of them */
    bool has_cpus;          /* cpus was read */

    pthread_mutex_t start_mu; /* serialises thread starts (never held by a task) */
    pthread_mutex_t mu;       /* everything below */
    struct sl_task *head;     /* tasks no thread has taken yet (FIFO) */
    struct sl_task *tail;
    atomic_long queued;    /* entries in head..tail; changed under mu, read anywhere (relaxed) */
    struct blk_slot *idle; /* idle threads, most recently idle first */
    int live;              /* threads counted: running, idle or starting */
    int starting;          /* reserved by a submit, not yet in their loop */
    int peak;              /* most live at once */
    uint64_t started;      /* threads started since init */
    uint64_t idle_ns;      /* idle time after which a thread above min exits */
    int fail_countdown;    /* tests: the countdown-th start fails; 0 = never */
    bool warned;           /* a failed start was logged */
    bool stopping;         /* stop: idle threads exit */
    struct sl_blocking_hooks hooks;
};

/* Sets b up for min..max threads (0 <= min <= max <= SL_SCHED_BLOCKING_MAX)
 * without starting any. Returns 0 or SL_ENOMEM. Thread: the owner. */
int sl__blocking_init(struct sl_blocking *b, int min, int max, void (*done)(void *), void *arg);

/* Starts the min threads. Returns 0, or SL_EFATAL with err filled (the
 * threads started are joined by sl__blocking_stop). Thread: the owner. */
int sl__blocking_start(struct sl_blocking *b, struct sl_err *err);

/* Queues task for a blocking thread: hands it to the most recently idle
 * one, else queues it and, below max, starts a thread (outside mu). If no
 * thread exists after a failed start, returns the queued tasks (a list
 * through sl__next, oldest first) for the caller to run elsewhere; else
 * NULL. */
struct sl_task *sl__blocking_submit(struct sl_blocking *b, struct sl_task *task);

/* Makes the threads exit once the queue is empty and joins them all.
 * Call once no task runs or can be submitted. Thread: not a blocking thread. */
void sl__blocking_stop(struct sl_blocking *b);

/* Frees what init allocated (after stop). */
void sl__blocking_destroy(struct sl_blocking *b);

/* Tasks waiting for a thread now (a hint: relaxed, read without mu). */
long sl__blocking_waiting(const struct sl_blocking *b);

/* Whether the calling thread is one of b's. */
bool sl__blocking_on_thread(const struct sl_blocking *b);

/* See sl_sched_blocking_threads. */
void sl__blocking_stats(struct sl_blocking *b, int *ret_now, int *ret_peak, uint64_t *ret_started);

/* Tests: threads idle on the list now, idle timeout, the nth start from
 * now failing (0: none), hooks. */
int sl__blocking_idle_count(struct sl_blocking *b);
void sl__blocking_set_idle(struct sl_blocking *b, uint64_t idle_ns);
void sl__blocking_fail_start(struct sl_blocking *b, int nth);
void sl__blocking_set_hooks(struct sl_blocking *b, const struct sl_blocking_hooks *hooks);

#endif
