/* SPDX-License-Identifier: MIT */
/* The `throttle` stage's counters (stages/throttle.c), read by its summary
 * line and by tests. */
#ifndef SL_THROTTLE_H
#define SL_THROTTLE_H

#include <stdint.h>

struct sl_node;

struct sl_throttle_stats {
    uint64_t passed;    /* records let through (at once or after a wait) */
    uint64_t limited;   /* records over the limit: dropped, or held back (wait) */
    uint64_t waited_ns; /* wait: total time batches were held back (slept) */
    uint64_t keys;      /* buckets held now (1 without a key, once a record came) */
    uint64_t evicted;   /* buckets evicted past max_keys */
    uint64_t cut;       /* wait: waits the pipeline's stop cut short */
};

/* Fills *ret with the counters of node, a `throttle` node that was opened
 * (all zero when its open failed or never ran). Each counter is read
 * atomically, not all of them together. Thread: any. */
void sl_throttle_read_stats(const struct sl_node *node, struct sl_throttle_stats *ret);

#endif
