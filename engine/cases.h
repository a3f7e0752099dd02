/* SPDX-License-Identifier: MIT */
/* `sluice test FILE`: runs each case of the file's `tests:` section through
 * the pipeline in memory (cases_nodes.c stands in for its sources and
 * sinks) and compares what each expected node gave with what the case
 * says, printing a diff per failing case. Thread: main. */
#ifndef SL_CASES_H
#define SL_CASES_H

#include "buf.h"
#include "conf.h"
#include "runtime.h"

#include <stdbool.h>

extern const struct sl_node_type sl_case_input;
extern const struct sl_node_type sl_case_capture;

/* Makes test_input and test_capture known to the loader. 0 or SL_ENOMEM.
 * Thread: main, before loading. */
int sl_cases_register(void);

/* Appends what a test_capture node received to out as JSON lines: grouped
 * by source (in the order the file declares them), then in each source's
 * order. 0, SL_EINVAL (not a capture), SL_ENOMEM. Thread: main, after
 * the pipeline finished. */
int sl_case_captured(struct sl_node *node, struct sl_buf *out);

/* Runs every case of conf (sl_conf_load_cases of path, with the side file
 * of cases cases_path if not NULL) and prints one line
 * per case on stdout, with a diff under each failing one, then a count.
 * A case still running after timeout_s fails (its pipeline is stopped and
 * drained within engine.drain_timeout). Returns the exit code: 0 all passed, 1 one failed or could
 * not run, 2 the file has no cases. */
int sl_cases_run(const struct sl_conf *conf,
                 const char *path,
                 const char *cases_path,
                 unsigned timeout_s);

#endif
