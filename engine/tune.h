/* SPDX-License-Identifier: MIT */
/* The worker tuner behind `workers: auto`: a pure function of its state, the
 * node's cumulative counters and a clock passed in, so that it is tested on
 * a virtual clock against simulated nodes (tests/unit/test_tune.c) and fed
 * the monotonic clock by the runtime (the loop thread's tuning tick). It
 * owns no thread and takes no lock: one caller at a time.
 *
 * How it decides, per measuring interval (at least `interval_ns` and enough
 * completed batches to trust the rate):
 * - Slow start: while the node keeps its workers busy, double them and keep
 *   doubling while the rate grows at least half as much as the workers did.
 *   When it stops growing, the knee lies between the last two settings:
 *   Little's law puts it at (previous workers) x (rate gain), where it goes.
 * - Then it holds, and probes now and then one step up or down (up only when
 *   the workers are busy). A probe is kept when it pays: up, the rate grows
 *   by at least half the workers' growth; down, it falls by less than half
 *   the workers' fall. A kept probe doubles the next step the same way at
 *   once (a changed service is followed fast); a lost one is undone and the
 *   hold before the next doubles (4 to 32 intervals), so in steady state the
 *   setting changes at most twice per hold.
 * A service past its knee (latency grows, throughput flat) thus keeps the
 * workers near the knee instead of piling calls onto it, and a CPU-bound
 * stage settles near the core count. */
#ifndef SL_TUNE_H
#define SL_TUNE_H

#include <stdbool.h>
#include <stdint.h>

/* Default measuring interval. */
#define SL_TUNE_INTERVAL_NS (100 * 1000 * 1000ull)

/* The node's counters, cumulative since it started: the tuner takes
 * differences. */
struct sl_tune_sample {
    uint64_t work;    /* units of work completed (records + batches) */
    uint64_t batches; /* batches completed */
    uint64_t busy_ns; /* time task slots were taken, summed over slots */
};

enum sl_tune_phase {
    SL_TUNE_SLOW_START,
    SL_TUNE_HOLD,  /* measuring the current setting before the next probe */
    SL_TUNE_PROBE, /* measuring a probe */
};

/* What the node's workers wait on, which sets what an extra worker must
 * bring to be kept. */
enum sl_tune_kind {
    SL_TUNE_CALLS, /* calls (a remote service, a sink): each call in flight costs the
                      service, so a worker must bring a third of its share */
    SL_TUNE_CPU,   /* the CPU: a task beyond what the cores run only waits, at no cost
                      to anyone, so any clear gain (3%) keeps a worker */
};

struct sl_tuner {
    enum sl_tune_kind kind;
    uint32_t min, max;    /* bounds on workers */
    uint64_t interval_ns; /* shortest measuring interval */
    uint32_t workers;     /* the setting now */
    uint32_t peak;        /* highest setting so far */
    enum sl_tune_phase phase;
    bool started;                /* a first sample was taken */
    uint64_t start_ns;           /* the current interval's start */
    struct sl_tune_sample start; /* counters at start_ns */
    uint64_t settle_ns;          /* after a change, measuring starts here */
    double rate;                 /* work per second measured at `base` workers */
    uint32_t base;               /* the setting `rate` was measured at (0: none) */
    uint32_t nrate;              /* intervals averaged into `rate` */
    uint32_t step;               /* the next probe's size */
    int dir;                     /* the next probe's direction: +1 up, -1 down */
    uint32_t hold;               /* intervals to hold between probes */
    uint32_t hold_left;          /* intervals left before the next probe */
    uint64_t intervals;          /* measuring intervals completed */
    uint64_t changes;            /* settings changed */
};

/* Sets t up for a node of that kind with workers in [min, max] (1 <= min <=
 * max), starting at min, measuring over at least interval_ns. */
void sl_tuner_init(
    struct sl_tuner *t, enum sl_tune_kind kind, uint32_t min, uint32_t max, uint64_t interval_ns);

/* Feeds the node's counters at now_ns (monotonic, not decreasing) and
 * returns the workers to run from now on (t->workers). Call it often (every
 * interval or more often); it decides only when an interval is complete. */
uint32_t sl_tuner_step(struct sl_tuner *t, const struct sl_tune_sample *s, uint64_t now_ns);

#endif
