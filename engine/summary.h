/* SPDX-License-Identifier: MIT */
/* The end-of-run summary: per node records in, out, dropped, dead-lettered
 * and the rate. Thread: main, after the pipeline finished. */
#ifndef SL_SUMMARY_H
#define SL_SUMMARY_H

#include "runtime.h"

#include <stdio.h>

void sl_summary_print(const struct sl_pipeline *pl, FILE *out);

#endif
