/* SPDX-License-Identifier: MIT */
/* What every sink shares: per-stream order restoration (by sequence number,
 * waiting for one copy per path when a source reaches the sink by several
 * paths), batching of whole batches into one write (max_records, max_bytes,
 * max_wait, early flush when the input is idle) and dead-letter delivery.
 * A sink node runs one task at a time, so this state needs no locks; the
 * dead-letter store is shared by all sinks and has its own lock. */
#ifndef SL_SINK_H
#define SL_SINK_H

#include "latency.h"
#include "positions.h"
#include "runtime.h"
#include "sizer.h"

#include <pthread.h>
#include <stddef.h>

struct sl_sink;

/* The fields of a dead letter as sinks write it (NULL-ended). */
extern const char *const sl_dead_fields[];

/* Writes batches (in order per stream) as one unit: all or nothing. Returns
 * 0, SL_ERETRY (transient: the sink retries after a pause) or an error. */
typedef int (*sl_sink_write_fn)(struct sl_sink *sink, struct sl_batch *const *batches, size_t n);

struct sl_sink_stream;

/* Reads the position this sink stored for a stream of a source at a
 * priority level, under the sink's priority plan for that source
 * (priority.h; NULL: none) (resume point): 0 with *ret_pos and the
 * fingerprint text, SL_EOF when none is stored, or an error. */
typedef int (*sl_sink_position_fn)(struct sl_sink *sink,
                                   const char *source,
                                   const char *stream,
                                   int32_t partition,
                                   uint8_t level,
                                   const char *plan,
                                   int64_t *ret_pos,
                                   char *fingerprint,
                                   size_t fingerprint_len,
                                   struct sl_err *err);

/* Calls fn with each file stream (partition 0) of source that the sink
 * stored a position of, and the fingerprint beside it (NULL if none). 0 or
 * an error. */
typedef int (*sl_sink_streams_fn)(struct sl_sink *sink,
                                  const char *source,
                                  void (*fn)(void *arg, const char *stream, const char *fp),
                                  void *arg,
                                  struct sl_err *err);

/* A sink's `batch:` options, the same for every sink type (SL_SINK_BATCH_ROWS). */
struct sl_sink_batching {
    int64_t max_records;        /* per write, at most */
    uint64_t max_bytes;         /* per write, at most */
    uint64_t max_wait_ns;       /* longest a record waits for its write */
    uint64_t target_latency_ns; /* size writes aiming each at this; 0: none */
};

/* The option rows of a sink conf struct `type` whose struct sl_sink_batching
 * is `member`, with the type's default max_bytes. */
/* clang-format off */
#define SL_SINK_BATCH_ROWS(type, member, max_bytes_default)                                     \
    {"batch.max_records", SLUICE_OPT_INT, "10000", offsetof(type, member.max_records), 1, 1e9,  \
     NULL, 0, "Records per write (transaction), at most."},                                      \
    {"batch.max_bytes", SLUICE_OPT_SIZE, max_bytes_default, offsetof(type, member.max_bytes),   \
     1024, 1099511627776.0, NULL, 0, "Bytes per write, at most (1 TiB)."},                     \
    {"batch.max_wait", SLUICE_OPT_DURATION, "100ms", offsetof(type, member.max_wait_ns), 0, 0,  \
     NULL, 0, "Longest a record waits for its write; idle input is written at once."},           \
    {"batch.target_latency", SLUICE_OPT_DURATION, "0", offsetof(type, member.target_latency_ns),\
     0, 0, NULL, 0, "Size writes from their measured cost, aiming each at this (a target, "      \
     "not a bound; 0: none)."}
/* clang-format on */

struct sl_sink {
    struct sl_node *node;
    sl_sink_write_fn write;
    sl_sink_position_fn position;      /* NULL: the sink keeps no positions (at least once) */
    sl_sink_streams_fn stored_streams; /* NULL with position */
    bool writes_own_dead; /* write() stores the owned dead letters itself (same DB file) */
    bool is_dead_letter;  /* this sink is the dead-letter store: no ordering */
    uint64_t max_records;
    uint64_t max_bytes;
    uint64_t max_wait_ns;
    uint64_t target_latency_ns; /* 0: none; else `sizer` caps max_records */
    struct sl_sizer sizer;      /* the sink's task only */
    struct sl_batch **ready;    /* in order, waiting for the next write */
    size_t nready;
    size_t ready_cap;
    uint64_t ready_records;
    uint64_t ready_bytes;
    uint64_t first_ready_ns;
    struct sl_sink_stream *streams; /* order restoration per (source, stream) */
    size_t nstreams;
    pthread_mutex_t dead_lock; /* dead-letter store only: serialises writers */
    struct sl_acks acks;       /* positions written, per (source, stream) (positions.h) */
    struct sl_batch *rejects;  /* dead letters write() made (records the store refused) */
    bool rejects_stored;       /* write() had them stored before its commit */
    int broken;                /* a write failed for good (the run fails): no more writes */
    uint64_t replayed;         /* set by write(): records it found already stored (trimmed) */
    uint64_t dead_stored;      /* set by write() with writes_own_dead: dead letters it stored */
    uint64_t dead_logged;      /* dead letters printed (no store configured) */
    uint64_t dead_log_ns;
    unsigned seed;             /* retry jitter (rand_r), the sink's thread only */
    struct sl_latency latency; /* source read to commit, per record written */
    struct sl_latency commit;  /* how long each successful write took */
};

/* Initialises sink for node with its batching options (NULL: none, limits
 * 0 mean "no limit"). */
void sl_sink_init(struct sl_sink *sink,
                  struct sl_node *node,
                  sl_sink_write_fn write,
                  const struct sl_sink_batching *batching);
/* Frees held batches and state. */
void sl_sink_release(struct sl_sink *sink);
/* The sink node's process(): takes the batch reference. Thread: worker. */
int sl_sink_process(struct sl_sink *sink, struct sl_batch *batch);
/* Writes whatever is ready (final flush at end of input). Thread: worker/main. */
int sl_sink_flush(struct sl_sink *sink);
/* Called by write() for a record the store refused for a data reason (e.g.
 * a column name clash): it becomes a dead letter of this sink, delivered
 * before the write's position is committed (sl_sink_store_rejects) or
 * acknowledged. rec's bytes must live until then (they are in a batch
 * being written). Returns 0 or SL_ENOMEM. */
int sl_sink_reject(struct sl_sink *sink,
                   const struct sl_batch *batch,
                   const struct sl_record *rec,
                   const char *reason);
/* Stores the rejects of the write in progress in the dead-letter store (a
 * no-op when write() stores them in its own transaction): a sink with a
 * durable commit calls it just before committing, so that a kill after the
 * commit cannot lose them (a kill before replays them: at least once). Once
 * per attempt; sl_sink's write path stores them itself after write() when
 * it was not called. 0 or an error. Thread: the sink's. */
int sl_sink_store_rejects(struct sl_sink *sink);
/* Waits before retry number attempt (1, 2, ...) of a transient failure of
 * target (sink itself, or the dead-letter store it writes to), with
 * exponential backoff and full jitter, and says so in the log. Returns 0 to
 * retry; SL_ETIMEDOUT (err set) once the retries are used up; SL_ECANCELED
 * when the run failed meanwhile. Blocks. Thread: the sink's (or main, at
 * open). */
int sl_sink_retry_wait(struct sl_sink *sink,
                       struct sl_sink *target,
                       unsigned attempt,
                       struct sl_err *err);
/* Node callbacks every sink type can use as they are (the node's state
 * starts with a struct sl_sink). */
int sl_sink_node_process(struct sl_node *node, struct sl_batch *batch);
int sl_sink_node_flush(struct sl_node *node);
/* Returns the sl_sink of a sink node (every sink type's state starts with one). */
static inline struct sl_sink *sl_sink_of(struct sl_node *node)
{
    return (struct sl_sink *)node->state;
}

#endif
