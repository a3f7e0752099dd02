/* SPDX-License-Identifier: MIT */
/* The end-of-run summary: per node records in, out, dropped, dead-lettered
 * and the rate. Thread: main, after the pipeline finished. */
#ifndef SL_SUMMARY_H
#define SL_SUMMARY_H

#include "buf.h"
#include "runtime.h"

#include <stdio.h>

void sl_summary_print(const struct sl_pipeline *pl, FILE *out);
/* The node table alone (counters are atomics: callable while nodes run,
 * e.g. when the drain deadline ends the run), rates up to end (ns). */
void sl_summary_print_counts(const struct sl_pipeline *pl, FILE *out, uint64_t end);

/* Writes the summary as one JSON object to path (--summary-json): elapsed_s,
 * peak_rss_bytes, peak_in_flight_bytes, blocking_threads {peak, final,
 * started}, and per node kind, type, in, out,
 * dropped, shed, dead, replayed, batches, workers_auto, workers_final,
 * workers_peak. Returns 0 or SL_EIO/SL_ENOMEM with err filled. */
/* Appends open, then node's "kind", "type" and record counts ("in",
 * "out", "dropped", "shed", "dead", "added") as JSON members, read while
 * it runs: the summary JSON and the control socket's stats share them.
 * 0 or SL_ENOMEM. Thread: any. */
int sl_summary_node_counts(struct sl_buf *buf,
                           const struct sl_pipeline *pl,
                           const struct sl_node *node,
                           const char *open);
int sl_summary_write_json(const struct sl_pipeline *pl, const char *path, struct sl_err *err);

#endif
