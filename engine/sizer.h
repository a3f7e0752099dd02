/* SPDX-License-Identifier: MIT */
/* The transaction sizer behind a sink's `batch.target_latency`: a pure
 * function of what it has seen (how long writes of so many records took)
 * and a target, so that it is tested against simulated writers
 * (tests/unit/test_sizer.c). It fits a write's cost as a + b * records by
 * least squares, weighted towards recent writes so that it follows a
 * writer whose cost changes, and answers how many records one write may
 * hold for its cost to stay under the target (it aims at 90% of it, so
 * that commits that vary by less than 10% stay under). One caller at a time (the
 * sink's task). */
#ifndef SL_SIZER_H
#define SL_SIZER_H

#include <stdint.h>

struct sl_sizer {
    uint64_t min_records, max_records; /* bounds of the answer */
    double w, x, y, xx, xy;            /* decayed sums: weight, records, ns, records^2,
                                          records*ns */
    uint64_t writes;                   /* writes seen */
};

void sl_sizer_init(struct sl_sizer *s, uint64_t min_records, uint64_t max_records);
/* Notes that a write of records records took ns. */
void sl_sizer_note(struct sl_sizer *s, uint64_t records, uint64_t ns);
/* How many records a write may hold to take at most target_ns, within
 * [min_records, max_records]; max_records until a write was seen. */
uint64_t sl_sizer_limit(const struct sl_sizer *s, uint64_t target_ns);

#endif
