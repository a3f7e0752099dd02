/* SPDX-License-Identifier: MIT */
/* A latency histogram: log-linear buckets (16 per power of two, so a
 * quantile is within 1/16 of the truth) over microseconds, with atomic
 * counters so that one thread records while others read (the summary, later
 * metrics). Sinks record each written record's source-read-to-commit time. */
#ifndef SL_LATENCY_H
#define SL_LATENCY_H

#include <stdatomic.h>
#include <stdint.h>

#define SL_LATENCY_SUB     16 /* buckets per power of two */
#define SL_LATENCY_BUCKETS (SL_LATENCY_SUB * 40)

struct sl_latency {
    atomic_uint_fast64_t counts[SL_LATENCY_BUCKETS]; /* relaxed: statistics */
    atomic_uint_fast64_t total;                      /* values recorded */
    atomic_uint_fast64_t max_us;                     /* largest value */
    atomic_uint_fast64_t sum_us;                     /* of every value (metrics' _sum) */
};

/* Records a latency of ns, weight times (records of one batch). Thread: any. */
void sl_latency_add(struct sl_latency *h, uint64_t ns, uint64_t weight);
/* The q-quantile (0 < q <= 1) in microseconds: the upper end of the bucket
 * it falls in, at most the largest value; 0 when nothing was recorded.
 * Thread: any (approximate while another thread records). */
uint64_t sl_latency_quantile(const struct sl_latency *h, double q);
/* How many values were at most us microseconds, counting whole buckets
 * whose every value is (so within 1/16 of us). Thread: any. */
uint64_t sl_latency_count_le(const struct sl_latency *h, uint64_t us);

#endif
