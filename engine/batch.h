/* SPDX-License-Identifier: MIT */
/* A batch: up to ~1k records in one arena, the input block they point into,
 * the dead letters produced on the way, and the source position range it
 * covers with a per-stream sequence number (so sinks can restore order and
 * commit exact positions, even when filters emptied the batch).
 * Ownership: one owner at a time, or shared read-only by fan-out through
 * sl_batch_ref/unref; edit only after sl_batch_make_writable(). */
#ifndef SL_BATCH_H
#define SL_BATCH_H

#include "arena.h"
#include "flow.h"
#include "record.h"

#include <stdatomic.h>
#include <stdint.h>

/* A record rejected on the way, with why and where. */
struct sl_dead {
    struct sl_record rec; /* its fields at the time (may be empty) and meta/raw */
    const char *error;    /* NUL-terminated reason, arena */
    const char *node;     /* name of the node that rejected it (pipeline lifetime) */
    const char *source;   /* name of the source node (pipeline lifetime) */
    /* Where it was rejected, for its id (sl_dead_id): a 128-bit hash of
     * (source, stream key, Kafka offset epoch, node) and the path tag of the
     * batch at that node (sl_dead_set_origin). */
    uint64_t origin[2];
    uint32_t path;
};

struct sl_batch {
    atomic_int refs;       /* fan-out sharing; acq_rel on unref so the last owner sees all writes */
    struct sl_arena arena; /* records, fields, decoded strings */
    struct sl_record *recs; /* sl_malloc'ed, or the parent's when recs_borrowed */
    uint32_t n;             /* live records */
    uint32_t cap;           /* 0 when recs_borrowed */
    bool recs_borrowed;     /* a fork: recs are the parent's, read-only (sl_batch_fork) */
    struct sl_dead *dead;   /* dead letters (sl_malloc'ed array) */
    uint32_t ndead;
    uint32_t dead_cap;

    char *block; /* input bytes records may point into; sl_free'd with the batch */
    size_t block_len;
    struct sl_batch *parent; /* keeps the records' bytes alive (route outputs), unref'd at free */
    struct sl_batch *shell_next; /* link in a node's list of shed batches (runtime.c) */
    bool shell;                  /* what is left of a shed batch: no records, only its position
                                    and dead letters; stages pass it on untouched */

    /* Position: which stream of which source, which range of it. */
    uint32_t source;           /* index of the source node */
    uint32_t stream;           /* index of the stream within the source (file number, partition) */
    const char *stream_name;   /* path or topic (pipeline lifetime) */
    bool fingerprint_is_epoch; /* Kafka: a fingerprint other than the stored one restarts the
                                  stream's position (an offset reset) */
    const char *fingerprint;   /* stored beside the position (file_identity.h, Kafka epoch);
                                  pipeline lifetime */
    int32_t partition;         /* Kafka partition, 0 for files */
    uint64_t seq;              /* per (source, stream, level) sequence, from 0, no gaps */
    uint8_t level;             /* priority 0..9: a node that sets it splits its output into
                                  one part per level it may give, each with the same seq */
    uint32_t path;             /* the path it came by from its source: the sum of the
                                  increments of the edges it took (conf_dag.c number_paths) */
    int64_t pos_start;         /* first position covered (file offset / Kafka offset) */
    int64_t pos_end;           /* position to resume from once this batch is committed */
    int64_t line;              /* raw file blocks: line number of the first line */
    const void *aux;           /* raw blocks: source data for decoding (CSV header) */
    uint8_t last;              /* last batch of its stream */
    uint64_t read_ns;          /* when its source began it (sl_batch_new, copied with the
                                  position): sinks measure latency from it */
    uint64_t base_bytes;       /* what its source made it of, set at admission
                                  (sl_batch_adopt) and copied with the position: its raw
                                  block, else its records as built (generator, Kafka);
                                  plugins' added records are measured against it
                                  (sl__source_note_grown); 0: not a source's */

    /* Memory: every allocation of the batch (arena chunks, record and dead
     * arrays, the input block) is charged to flow when it is made and given
     * back when the batch is freed, so no node can forget to count. */
    struct sl_flow *flow; /* memory_limit budget, NULL: not counted */
    size_t block_charged; /* bytes charged for block (sl_batch_adopt; given back at free) */
    struct sl_flow_window *window; /* a source's batch: left when it is freed, which is after
                                      everything derived from it (runtime.c), or NULL */
    struct sl_flow_credit *credit; /* what its allocations draw on first: its source batch's
                                      `family` (sl_batch_grant), or NULL */
    struct sl_flow_credit family;  /* a source's batch with a window or plugin stages below:
                                      the credit it was admitted with */
};

/* Returns a new empty batch with refs = 1 whose memory is charged to flow
 * (the pipeline's memory_limit budget; NULL for batches that are not in
 * flight, e.g. in tests), or NULL on OOM. A batch made from another one
 * passes the other's flow. Thread: any. */
struct sl_batch *sl_batch_new(struct sl_flow *flow);
/* A source builds its batch outside the budget (flow NULL), then has it
 * admitted: sl_batch_adopt_bytes is what to acquire for it (everything it
 * holds, the block with its buffer slack), and sl_batch_adopt, once
 * acquired, puts the batch in flow so that it gives those bytes back when
 * freed and its later growth is charged. Thread: the batch's owner. */
#define SL_BATCH_BLOCK_SLACK 4096
uint64_t sl_batch_adopt_bytes(const struct sl_batch *batch);
void sl_batch_adopt(struct sl_batch *batch, struct sl_flow *flow);
/* A window's batch (or one whose source has plugin stages below it),
 * adopted, was charged `credit` bytes more for what it and everything
 * derived from it (which keep it alive) grow into: their allocations draw
 * on it first, and what is left goes back when the batch is freed (with
 * the measured growth, sl_flow_window_leave, for a window's). Thread: the
 * batch's owner, before it is shared. */
void sl_batch_grant(struct sl_batch *batch, uint64_t credit);
/* Adds a reference (fan-out). Returns batch. */
struct sl_batch *sl_batch_ref(struct sl_batch *batch);
/* Drops a reference; at zero frees arena, block and arrays and gives their
 * bytes back to the budget. Accepts NULL; returns NULL. */
struct sl_batch *sl_batch_unref(struct sl_batch *batch);
/* Returns a batch the caller may edit: batch itself if it holds the only
 * reference, else a copy with its own record and field arrays whose names
 * and values still point into the original (the caller's reference on the
 * original moves to the copy's parent, keeping those bytes alive; never
 * write through a value's pointer). NULL on OOM (the original reference is
 * kept then). */
struct sl_batch *sl_batch_make_writable(struct sl_batch *batch);
/* Appends an empty record slot and returns it (zeroed), or NULL on OOM. */
struct sl_record *sl_batch_add(struct sl_batch *batch);
/* Records a dead letter: copies rec (shallowly: its bytes must live in the
 * batch) with the reason (copied into arena as valid UTF-8, each invalid
 * byte as U+FFFD, cut at a character boundary to at most
 * SL_DEAD_REASON_MAX - 1 bytes). Returns 0 or SL_ENOMEM. */
#define SL_DEAD_REASON_MAX 512
int sl_batch_add_dead(struct sl_batch *batch,
                      const struct sl_record *rec,
                      const char *node,
                      const char *source,
                      const char *fmt,
                      ...) __attribute__((format(printf, 5, 6)));
/* The copy of batch for a further path of a fan-out: its records without
 * its dead letters, which travel on the first path only, so that each dead
 * letter reaches exactly one sink once whatever the shape of the DAG
 * (diamonds included). A batch of its own (its own path tag and level),
 * that reads batch's records in place (batch becomes its parent, with one
 * more reference): it costs one batch struct, not a copy of the records,
 * and it is edited only through sl_batch_make_writable, which copies them.
 * NULL on OOM. batch keeps the caller's reference. */
struct sl_batch *sl_batch_fork(struct sl_batch *batch);
/* Sets where d was made, for its id: d->source and d->node, and from's
 * stream key, offset epoch (Kafka) and path tag. */
void sl_dead_set_origin(struct sl_dead *d, const struct sl_batch *from);
/* A dead letter's id, the same whenever a replay makes it again:
 * "partition:offset:path:hash" with the record's place in its input, the
 * path it came by to the node that rejected it (a record that reaches a
 * node by two paths is two dead letters there) and 32 hex digits hashing
 * its source, stream, offset epoch and node; for a record a plugin added
 * (meta.sub not 0), ":sub" after it, 16 hex digits. Fixed width at most
 * (93 characters): writes it NUL-terminated into buf (SL_DEAD_ID_MAX
 * bytes). */
#define SL_DEAD_ID_MAX 96
void sl_dead_id(const struct sl_dead *d, char buf[SL_DEAD_ID_MAX]);
/* Dead letters keep at most this much of their input text (`_raw`). */
#define SL_DEAD_RAW_MAX (64 * 1024)
/* What is left of batch when its records are shed: a new batch (in batch's
 * flow) with its position and sequence number, no records, and deep copies
 * of its dead letters (input text cut a little past SL_DEAD_RAW_MAX, so
 * that the sink's own cut still applies), so that batch's memory can go.
 * NULL on OOM. batch is not touched. */
struct sl_batch *sl_batch_shell(const struct sl_batch *batch);
/* Copies the position/sequence fields of src into dst (no records), and
 * the credit its allocations draw on: dst must keep src alive (as its
 * parent) or drop it (sl_batch_drop_credit). */
void sl_batch_copy_position(struct sl_batch *dst, const struct sl_batch *src);
/* batch will not keep the batch it was made from alive (a shell, an empty
 * priority part): it draws on no credit from now on. */
void sl_batch_drop_credit(struct sl_batch *batch);
/* Bytes this batch holds (arena + block + arrays), for memory accounting. */
size_t sl_batch_bytes(const struct sl_batch *batch);
/* Bytes its records take: the arena's used part, the block and the
 * records and dead letters in use, without the struct and the free room
 * of chunks and arrays (which sl_batch_bytes counts). What a batch is
 * measured in when it is small: a batch of one record has an 8 KiB arena
 * chunk. */
size_t sl_batch_used_bytes(const struct sl_batch *batch);
/* Bytes of its arena its records and dead letters point to (names, values,
 * input text, field arrays, reasons), without what nothing points to any
 * more (records added and dropped again, replaced values). Walks every
 * field: for when a batch may hold much it no longer uses. */
size_t sl_batch_live_bytes(const struct sl_batch *batch);
/* Moves what its records and dead letters point to in its arena to a new
 * arena and frees the old one, giving its bytes back to the budget at
 * once: a plugin call that added records and dropped them again (emit
 * refused past its room) left the batch holding its room in garbage while
 * it travelled on. Bytes elsewhere (block, parent) stay. 0, or SL_ENOMEM
 * with the batch unchanged. Thread: the batch's owner (writable). */
int sl_batch_compact(struct sl_batch *batch);

#endif
