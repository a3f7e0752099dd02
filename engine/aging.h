/* SPDX-License-Identifier: MIT */
/* Priority with aging: the one rule for every place that orders waiting work
 * by level (ring lanes, SQLite write turns, the worker pool's levels 1..9,
 * whose level 0 has its fairness look instead: sched.h). A waiting
 * item's score is its level plus one for each aging_ns it has waited; the
 * highest score goes first. So a higher level is served first, and the
 * lowest still progresses: it overtakes a fresh level 9 after 9 x aging_ns. */

#ifndef SL_AGING_H
#define SL_AGING_H

#include <stdint.h>

/* The aging step used at run time: one level per 20 ms waited. */
#define SL_AGING_NS (20 * 1000 * 1000ull)

static inline uint64_t
sl_aging_score(uint8_t level, uint64_t since_ns, uint64_t now_ns, uint64_t aging_ns)
{
    return (uint64_t)level * aging_ns + (now_ns > since_ns ? now_ns - since_ns : 0);
}

#endif
