/* SPDX-License-Identifier: MIT */
/* The `delay` stage's counters (stages/delay.c), read by its summary line
 * and by tests: what the simulated calls did, not how long they took. */
#ifndef SL_DELAY_H
#define SL_DELAY_H

#include <stdint.h>

struct sl_node;

struct sl_delay_stats {
    uint64_t calls;      /* calls started (batches, empty ones too) */
    uint64_t active;     /* calls in progress now */
    uint64_t peak;       /* most calls in progress at once */
    uint64_t slowed;     /* calls that started past saturate_at */
    uint64_t planned_ns; /* sum of the calls' durations (jitter and saturation applied) */
    uint64_t cut;        /* calls whose sleep the pipeline's stop cut short */
    uint64_t credit_ns;  /* the timer's lateness taken off later calls (delay.c) */
};

/* Fills *ret with the counters of node, a `delay` node that was opened
 * (all zero when its open failed or never ran). Each counter is read
 * atomically, not all of them together. Thread: any. */
void sl_delay_read_stats(const struct sl_node *node, struct sl_delay_stats *ret);

#endif
