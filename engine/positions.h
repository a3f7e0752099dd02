/* SPDX-License-Identifier: MIT */
/* The position service: where each stream of each source stands in each
 * sink, and the rules that make delivery exactly once into SQLite and at
 * least once elsewhere. The argument, in one place:
 *
 * 1. Every batch carries its (source, stream), priority level and the
 *    position range it covers, with a sequence number without gaps per
 *    level, even when stages emptied it (a priority split sends every level
 *    every sequence number). A sink restores sequence order per (stream,
 *    level) and waits for one copy per path (sink.c), so what it writes of
 *    each level is a prefix of the stream's records at that level. Levels
 *    advance on their own: a higher one may run ahead.
 * 2. Durable positions (SQLite sinks; a file source's `checkpoints:` file)
 *    live in `_sluice_checkpoints`, keyed by (table, writer, source, stream,
 *    partition, level) (connectors/sqlite/sqlite_positions.h), with the
 *    priority settings they were written under: when those change, the
 *    lowest position of the old rows stands for every new lane. A SQLite sink reads
 *    its position inside the batch's BEGIN IMMEDIATE transaction, writes
 *    only the records at or beyond it (with the dead letters in its own file)
 *    and stores the new one in the same transaction: a replay, a zombie
 *    process or a sibling behind is trimmed, never written twice.
 * 3. Acknowledged positions (here, struct sl_acks): after a sink's write
 *    returned (committed or acknowledged by Kafka), the position of the
 *    last batch of each stream it wrote. Dead letters bound for another
 *    store were handed over before (sink.c), so an acknowledged position
 *    never runs ahead of them.
 * 4. Sources resume from the lowest durable position over the sinks they
 *    reach and the levels that reach them (sl_source_resume; 0 when one of
 *    them has none), and commit
 *    outside positions (Kafka group offsets, `checkpoints:`) only up to the
 *    lowest acknowledged one (sl_source_committed). A sink that is behind
 *    thus holds every source that feeds it back, and nothing is skipped.
 *
 * Positions of file streams are keyed by the file's identity (a content
 * fingerprint), not its name; Kafka's by topic and partition, with a
 * rebalance epoch as fingerprint. */
#ifndef SL_POSITIONS_H
#define SL_POSITIONS_H

#include "batch.h"
#include "runtime.h"

#include <pthread.h>

#define SL_FINGERPRINT_MAX 64

/* One sink's acknowledged positions, per (source node, stream). Written by
 * the sink's task, read by source threads. */
struct sl_acks {
    pthread_mutex_t lock;
    struct sl_ack *v;
    size_t n;
};

void sl_acks_init(struct sl_acks *acks);
void sl_acks_release(struct sl_acks *acks);
/* Notes the positions the n batches (in order per stream) just written
 * reach: the last batch's per stream, not the highest, so that an offset
 * reset takes it back. 0 or SL_ENOMEM. Thread: the sink's. */
int sl_acks_note(struct sl_acks *acks, struct sl_batch *const *batches, size_t n);
/* The position up to which the sink has written one priority level of the
 * stream of a source: every record of that level before it is done. 0 and
 * *ret_pos, or SL_EOF when nothing of it was written yet in this run.
 * Thread: any. */
int sl_acks_get(
    struct sl_acks *acks, uint32_t source, uint32_t stream, uint8_t level, int64_t *ret_pos);

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

#endif
