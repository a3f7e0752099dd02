/* SPDX-License-Identifier: MIT */
/* Helpers every source shares: where to resume a stream (the lowest stored
 * position over the sinks it feeds), per-worker decoder slots, and the
 * budget a source holds outside batches. */
#ifndef SL_SOURCE_H
#define SL_SOURCE_H

#include "runtime.h"

#define SL_FINGERPRINT_MAX 64

/* A source's own stored position of a stream (file sources' `checkpoints:`
 * file): it stands in for the sinks that keep no positions. */
struct sl_own_position {
    int64_t pos;
    const char *fingerprint;
};

/* The position to resume stream/partition from for source node src: the
 * lowest position stored by the sinks reachable from src (own, if not NULL,
 * for the sinks that keep none), with the fingerprint stored beside it (""
 * if none). 0 when a reachable sink has no position for the stream;
 * *ret_known (may be NULL) tells the two cases apart. Returns 0 or an
 * error (SL_EIO). Thread: source. */
int sl_source_resume(struct sl_node *src,
                     const char *stream,
                     int32_t partition,
                     const struct sl_own_position *own,
                     int64_t *ret_pos,
                     bool *ret_known,
                     char *fingerprint,
                     size_t fingerprint_len,
                     struct sl_err *err);

/* Calls fn with each file stream of src that a sink reachable from src
 * stored a position of, with its fingerprint (NULL if none); a stream held
 * by several sinks comes once per sink. Returns 0 or an error. Thread:
 * source. */
int sl_source_streams(struct sl_node *src,
                      void (*fn)(void *arg, const char *stream, const char *fp),
                      void *arg,
                      struct sl_err *err);

/* The position below which every record of (source src, stream) is done in
 * every sink reachable from src (written and committed, or acknowledged):
 * 0 and *ret_pos, or SL_EOF when some sink has nothing of it yet.
 * Thread: any. */
int sl_source_committed(struct sl_node *src, uint32_t stream, int64_t *ret_pos);

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
 * does), a surplus is given back. sl_node_source_push then only queues
 * it. Returns 0 (*held lowered by give) or SL_ECANCELED (nothing changed).
 * Thread: source (blocks). */
int sl_source_admit(struct sl_node *src, struct sl_batch *batch, uint64_t *held, uint64_t give);

#endif
