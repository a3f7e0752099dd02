/* SPDX-License-Identifier: MIT */
/* The one clock of the engine: CLOCK_MONOTONIC in nanoseconds, what every
 * *_ns time (deadlines, latency, aging, tuning) is measured on. Header
 * only, so that the low modules (ring, sched, flow, batch) need nothing
 * above them. Thread: any. */
#ifndef SL_CLOCK_H
#define SL_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic clock in ns. */
static inline uint64_t sl_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

#endif
