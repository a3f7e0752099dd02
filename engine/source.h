/* SPDX-License-Identifier: MIT */
/* Helpers every source shares: the budget a source holds outside batches;
 * and, through positions.h, where to resume a stream and what to commit. */
#ifndef SL_SOURCE_H
#define SL_SOURCE_H

#include "positions.h"
#include "runtime.h"

/* What a source holds outside any batch (a read buffer grown past its block
 * size for a long line) is charged to memory_limit too, as a hold
 * (sl_flow_hold: growing waits while other charges leave no room; a line
 * longer than the budget is read alone, one holder at a time).
 * sl_source_hold sets the source's hold, *held, to bytes. The hold counts
 * as raw input (pl->raw_bytes), so decoders never wait on it. Returns 0,
 * or SL_ECANCELED when the pipeline stops (*held unchanged). Thread:
 * source (blocks). */
int sl_source_hold(struct sl_node *src, uint64_t *held, uint64_t bytes);

/* Admits batch (built with sl_batch_new(NULL)) to the budget with `give`
 * bytes of the source's hold (*held, give <= *held) moved into its charge:
 * only what the batch needs beyond them is charged (waiting as a hold
 * does), a surplus is given back. A source with a window takes the
 * batch's place in it first (waiting while it is full), and charges the
 * credit for its family's growth with it (sl_batch_grant).
 * sl_node_source_push then only queues it. Returns 0 (*held lowered by
 * give) or SL_ECANCELED (the hold unchanged; a window's place taken is
 * left when the caller drops the batch). Thread: source (blocks). */
int sl_source_admit(struct sl_node *src, struct sl_batch *batch, uint64_t *held, uint64_t give);

/* process() of a source whose thread builds records itself (generator,
 * `sluice test`'s inputs): counts them in, with those it dead-lettered
 * (sl_node_dead) while building the batch, and hands the batch on. */
int sl_source_forward(struct sl_node *node, struct sl_batch *batch);

#endif
