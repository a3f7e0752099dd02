/* SPDX-License-Identifier: MIT */
/* Latency histogram (see latency.h). */
#include "latency.h"

#include <math.h>

/* Bucket of a value in microseconds: exact below SL_LATENCY_SUB, then
 * SL_LATENCY_SUB buckets per power of two. */
static unsigned bucket_of(uint64_t us)
{
    if (us < SL_LATENCY_SUB) {
        return (unsigned)us;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(us); /* >= 4 */
    unsigned sub = (unsigned)(us >> (msb - 4)) & (SL_LATENCY_SUB - 1);
    unsigned b = (msb - 3) * SL_LATENCY_SUB + sub;
    return b < SL_LATENCY_BUCKETS ? b : SL_LATENCY_BUCKETS - 1;
}

/* The largest value in microseconds that falls in bucket b. */
static uint64_t bucket_top(unsigned b)
{
    if (b < SL_LATENCY_SUB) {
        return b;
    }
    unsigned msb = b / SL_LATENCY_SUB + 3;
    uint64_t sub = b % SL_LATENCY_SUB;
    return (((uint64_t)SL_LATENCY_SUB + sub + 1) << (msb - 4)) - 1;
}

void sl_latency_add(struct sl_latency *h, uint64_t ns, uint64_t weight)
{
    uint64_t us = ns / 1000;

    if (weight == 0) {
        return;
    }
    atomic_fetch_add_explicit(&h->counts[bucket_of(us)], weight, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->total, weight, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us * weight, memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&h->max_us, memory_order_relaxed);
    while (us > max && !atomic_compare_exchange_weak_explicit(
                           &h->max_us, &max, us, memory_order_relaxed, memory_order_relaxed)) {
    }
}

uint64_t sl_latency_quantile(const struct sl_latency *h, double q)
{
    uint64_t total = atomic_load_explicit(&h->total, memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&h->max_us, memory_order_relaxed);
    uint64_t seen = 0;

    if (total == 0) {
        return 0;
    }
    /* The rank of the quantile, 1-based, rounded up. */
    uint64_t rank = (uint64_t)ceil(q * (double)total);
    rank = rank < 1 ? 1 : rank > total ? total : rank;
    for (unsigned b = 0; b < SL_LATENCY_BUCKETS; b++) {
        seen += atomic_load_explicit(&h->counts[b], memory_order_relaxed);
        if (seen >= rank) {
            /* The last bucket also holds everything past its range. */
            uint64_t top = b + 1 < SL_LATENCY_BUCKETS ? bucket_top(b) : max;
            return top < max ? top : max;
        }
    }
    return max;
}

uint64_t sl_latency_count_le(const struct sl_latency *h, uint64_t us)
{
    uint64_t n = 0;

    for (unsigned b = 0; b + 1 < SL_LATENCY_BUCKETS && bucket_top(b) <= us; b++) {
        n += atomic_load_explicit(&h->counts[b], memory_order_relaxed);
    }
    return n;
}
