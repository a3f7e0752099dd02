/* SPDX-License-Identifier: MIT */
/* memory_limit: a byte budget for records in flight. Source threads acquire
 * bytes before they read a block (and wait while the budget is spent); the
 * bytes come back when the batch is freed, on whatever thread frees it.
 * Its condition variable is also where source threads sleep (pacing), since
 * a pipeline stop already wakes it (sl_flow_wake_all). */
#ifndef SL_FLOW_H
#define SL_FLOW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Told when sl_flow_wake_all runs, i.e. when the pipeline stops (a signal,
 * a failure): the loop thread's wake-up (loop.c). */
struct sl_flow_waker {
    void (*fn)(void *arg); /* Thread: any; must not block */
    void *arg;
};

struct sl_flow {
    uint64_t limit;                /* bytes for batches; set before sharing (init, set_aside) */
    uint64_t configured;           /* memory_limit as configured */
    uint64_t reserve;              /* acquire keeps this much free for what admitted work
                                      grows into (decoding, copies); set before sharing */
    atomic_uint_fast64_t used;     /* bytes charged now */
    atomic_uint_fast64_t peak;     /* highest `used` seen (metrics) */
    atomic_int waiters;            /* threads blocked in acquire; seq_cst */
    atomic_uint_fast64_t wake_at;  /* a release that leaves `used` at most this wakes them:
                                      the highest `used` one of them may go on at
                                      (UINT64_MAX: any; 0 with none); seq_cst, written
                                      under lock */
    atomic_int gated;              /* decoders waiting for the budget (sl_flow_gate); seq_cst */
    atomic_uint_fast64_t held;     /* the part of `used` sources hold outside batches */
    _Atomic(const void *) alone;   /* the holder let past the limit (sl_flow_hold), or NULL */
    void (*on_release)(void *arg); /* called by release while gated > 0 and the budget
                                      has room; set before sharing */
    void *on_release_arg;
    _Atomic(const struct sl_flow_waker *) waker; /* or NULL; release store, acquire load:
                                                   may be set while threads run */
    pthread_mutex_t lock;                        /* only for the sleep/wake handshake */
    pthread_cond_t cond;                         /* CLOCK_MONOTONIC timed waits */
};

void sl_flow_init(struct sl_flow *flow, uint64_t limit);
void sl_flow_release_all(struct sl_flow *flow);
/* Charges bytes, waiting while used + bytes + reserve > limit (a charge
 * larger than the limit is allowed when nothing else is in flight, so a huge
 * line can pass).
 * Returns 0, or SL_ECANCELED if *cancel became true while waiting.
 * Thread: source threads (blocks). */
int sl_flow_acquire(struct sl_flow *flow, uint64_t bytes, const atomic_bool *cancel);
/* A hold: budget for what a source keeps outside any batch (a read buffer
 * grown for a long line), *held being the caller's (0 at first; its address
 * names the holder). Sets it to bytes. Growing waits while used + growth +
 * reserve > limit, unless nothing but holds is in flight: then one holder
 * at a time may go past the limit (a line longer than the whole budget is
 * read alone, and two holders never wait on each other, since batches
 * drain and holds do not). Shrinking gives bytes back; at 0 the holder
 * lets another go past the limit. Returns 0, or SL_ECANCELED if *cancel
 * became true while waiting (*held unchanged). Thread: the holder's
 * (blocks). */
int sl_flow_hold(struct sl_flow *flow, uint64_t *held, uint64_t bytes, const atomic_bool *cancel);
/* Turns bytes of the hold *held into an ordinary charge, `used` unchanged:
 * the held memory became a batch, adopted next (sl_batch_adopt). Thread:
 * the holder's. */
void sl_flow_unhold(struct sl_flow *flow, uint64_t *held, uint64_t bytes);
/* Charges bytes if the budget allows now; false otherwise (nothing charged).
 * Thread: any; never blocks. */
bool sl_flow_try_acquire(struct sl_flow *flow, uint64_t bytes);
/* Charges bytes without waiting (a batch that grew after its charge).
 * Thread: any. */
void sl_flow_force(struct sl_flow *flow, uint64_t bytes);
/* Gives bytes back and wakes waiters. Thread: any; never blocks for long. */
void sl_flow_release(struct sl_flow *flow, uint64_t bytes);
/* Takes bytes out of the budget for a library's own buffers (SQLite's page
 * cache), so that they fit within memory_limit too; the batches keep at
 * least half of it. Thread: main, before the pipeline starts. */
void sl_flow_set_aside(struct sl_flow *flow, uint64_t bytes);
/* Wakes every waiter and sleeper so it re-checks its cancel flag, then
 * calls the waker if one is set. Set the flag first. Thread: any. */
void sl_flow_wake_all(struct sl_flow *flow);
/* Sets (or, with NULL, clears) the waker called by sl_flow_wake_all. The
 * waker must stay valid until the flow is released or a call with NULL
 * returned and no sl_flow_wake_all can still be running. Thread: any. */
void sl_flow_set_waker(struct sl_flow *flow, const struct sl_flow_waker *waker);
/* True when the budget is spent: work that makes memory (decoding) should
 * wait for a release instead of starting. seq_cst load. Thread: any. */
bool sl_flow_spent(struct sl_flow *flow);
/* Sleeps until deadline_ns (CLOCK_MONOTONIC, as sl_now_ns) or until *cancel
 * is true, whichever comes first; a cancel set before sl_flow_wake_all is
 * never missed (sl_pipeline_stop does both). cancel may be NULL. Returns 0 at
 * the deadline (at once if it passed), SL_ECANCELED when cancelled.
 * Thread: source threads (blocks). */
int sl_flow_sleep_until(struct sl_flow *flow, uint64_t deadline_ns, const atomic_bool *cancel);

/* A credit: bytes charged ahead, at a batch's admission, for what it and
 * everything derived from it (its family) will grow into. Their
 * allocations draw on it first (sl_flow_charge), and only what goes past
 * it is charged anew; what is left goes back when the family is gone
 * (sl_flow_window_leave). */
struct sl_flow_credit {
    uint64_t granted;           /* charged at admission; set before sharing */
    uint64_t base;              /* the admitted bytes it was granted for (learning) */
    atomic_uint_fast64_t drawn; /* bytes the family allocated; relaxed (a counter, read
                                   after the last unref's acq_rel) */
};
/* Charges bytes a batch allocated, from credit first (NULL: none), the
 * rest without waiting (as sl_flow_force). Thread: any. */
void sl_flow_charge(struct sl_flow *flow, struct sl_flow_credit *credit, uint64_t bytes);

/* A window: at most `max` batches of one source alive at once, each with
 * everything derived from it (copies, forks, route outputs and priority
 * parts keep their parent alive, so the source's batch is freed last).
 * What a batch grows into after admission (decoding, a copy per fan-out
 * edge into a stage that edits: a hundred times the block with chained
 * diamonds, 60 with a 60-way one) is allocated by tasks that must not
 * wait (a stage cannot wait for memory that only the sink downstream of it
 * gives back). So each batch is admitted with a credit for that growth
 * (sl_flow_window_credit), learnt from the families before it, and the
 * window bounds how many grow at once. max 0: no window. Waits and wakes
 * through flow's lock and cond, like acquire. */
struct sl_flow_window {
    struct sl_flow *flow;
    uint32_t max;           /* set before sharing */
    uint64_t credit_max;    /* the most credit one batch gets; set before sharing */
    atomic_uint growth_x16; /* a family's growth per admitted byte, x16: the plan's
                               estimate, then what freed families measured; relaxed */
    atomic_uint live;       /* batches entered and not yet left; seq_cst */
};
/* Waits while max batches are alive, then counts one more. Returns 0, or
 * SL_ECANCELED if *cancel became true while waiting. Thread: the source's
 * (blocks). */
int sl_flow_window_enter(struct sl_flow_window *win, const atomic_bool *cancel);
/* Counts one more if fewer than max are alive; false otherwise. Thread:
 * the source's; never blocks. */
bool sl_flow_window_try_enter(struct sl_flow_window *win);
/* The credit to charge with a batch of `admitted` bytes entering win: its
 * family's expected growth, at most win->credit_max. Thread: any. */
uint64_t sl_flow_window_credit(const struct sl_flow_window *win, uint64_t admitted);
/* One batch and all derived from it are gone: gives back what is left of
 * its credit (NULL: it had none), learns the family's growth from it, and
 * wakes a waiting source. Thread: any. */
void sl_flow_window_leave(struct sl_flow_window *win, const struct sl_flow_credit *credit);

#endif
