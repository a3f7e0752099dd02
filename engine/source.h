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

/* The most base bytes (sl_batch.base_bytes: the raw block, or the records
 * as built, as sl_batch_used_bytes counts them) src's next batch may take
 * beside the limits of the memory plan, or UINT64_MAX: plugin stages may
 * add records to the batches they get, after admission, and nothing waits
 * for that growth. So a source with plugin stages below it cuts its
 * batches at the plan's decoded batch over what they grew into there
 * (sl__pipeline_note_grown), and takes one record (or line) at a time
 * until each of those stages was called: what the first batches grow
 * into is not known when they are admitted, and one record's growth is
 * the least that can be risked; while one was called only on batches
 * without its records, at most SL_GROWTH_BLIND_BYTES (less after fewer
 * such calls, see runtime.h). Thread: source. */
uint64_t sl_source_batch_limit(const struct sl_node *src);
/* Whether a source that builds batch record by record stops before the
 * next one: the batch holds a record and reached the memory plan's
 * decoded block, or most_base (sl_source_batch_limit, read once per
 * batch). Thread: source. */
bool sl_source_batch_full(const struct sl_node *src,
                          const struct sl_batch *batch,
                          uint64_t most_base);

/* The credit (sl_batch_grant) a batch of src without a window is admitted
 * with when plugin stages below it make its batches grow: what they grew
 * into there per base byte (sl_source_batch_limit) beyond what the batch
 * holds, at most the window's credit_max; 0 when none or not measured.
 * The source then waits for room for what the batch will be, not for what
 * it is when it is read: the growth of the batches admitted before the
 * budget was spent took it 20% past the limit (two plugins in a row, 231
 * records per record). Thread: source. */
uint64_t sl_source_growth_credit(const struct sl_node *src, const struct sl_batch *batch);

#endif
