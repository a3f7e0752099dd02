/* SPDX-License-Identifier: MIT */
/* SQLite writing library behind the `sqlite` sink: writes ordered batches into
 * one table of one database file, exactly once, with the source positions
 * (_sluice_checkpoints) and the sink's dead letters in the same transaction.
 * The sink node wraps it (batching, ordering, timers). A writer is used by
 * one thread at a time. The writers of one file in a process share one
 * connection and take turns on it (sqlite_file.c); other processes' writers
 * meet SQLite's locking. */
#ifndef SL_SQLITE_WRITER_H
#define SL_SQLITE_WRITER_H

#include "batch.h"
#include "err.h"

#include <stddef.h>
#include <stdint.h>

enum sl_sqlite_mode {
    SL_SQLITE_INSERT, /* every record is a new row */
    SL_SQLITE_UPSERT, /* INSERT ... ON CONFLICT(key_columns) DO UPDATE the record's columns */
    SL_SQLITE_MODE_COUNT
};

/* One entry of the `columns:` mapping. */
struct sl_sqlite_column {
    const char *name; /* field name = column name, verbatim */
    const char *type; /* declared SQL type (TEXT, INTEGER, REAL, BLOB...); NULL, "" or
                         "ANY" declare no type (no affinity: values keep their type) */
};

/* Writer configuration. Every pointer is borrowed and must outlive the writer
 * (config values live as long as the pipeline). */
struct sl_sqlite_writer_conf {
    const char *path;  /* database file; missing parent directories are created */
    const char *table; /* target table (not starting with _sluice_) */
    enum sl_sqlite_mode mode;
    const char *const *key_columns; /* upsert keys (required for upsert, ignored for insert) */
    size_t nkey_columns;
    const struct sl_sqlite_column *columns; /* optional: created up front with these types;
                                               other fields still add untyped columns */
    size_t ncolumns;
    uint64_t cache_bytes;         /* SQLite cache_size budget; 0 = SQLite's default */
    uint32_t busy_timeout_ms;     /* wait for other writers' locks; 0 = 5000 */
    const char *dead_table;       /* dead-letter table in the same file, or NULL */
    const char *const *dead_keys; /* its upsert key: the store's (sqlite_sink.c) */
    size_t ndead_keys;
    const char *sink_name;           /* `_node` of the records this writer rejects */
    const char *writer_id;           /* identity of the positions this writer keeps (the
                                        sink's writer_id, by default its node name) */
    const char *const *source_names; /* optional: source node names by batch->source,
                                        `_source` of the records this writer rejects */
    uint32_t nsource_names;
    char *const *plans; /* optional: per batch->source (< nsource_names), the priority
                           plan stored beside its positions (priority.h), NULL: none */
};

struct sl_sqlite_writer;

/* Reports a record the writer could not store for a data reason (a field name
 * differing only in case from another field or a column, a reserved _sluice_
 * name, a missing or null upsert key, a constraint of a user-made table).
 * Called before the commit, once per rejected record, in order; when
 * conf->dead_table is set the record is already stored there (in the same
 * transaction), so the callback is for counting and logging. batch is one
 * of the write call's batches; reason is valid during the call only.
 * Returns 0, or an error code that rolls the transaction back. */
typedef int (*sl_sqlite_reject_fn)(void *arg,
                                   const struct sl_batch *batch,
                                   uint32_t rec_index,
                                   const char *reason);

/* Called once the rejects are reported, just before COMMIT: the caller
 * stores them elsewhere (a dead-letter store in another file) so that a
 * kill after the commit cannot lose them. Returns 0, or an error code (err
 * set) that rolls the transaction back. */
typedef int (*sl_sqlite_commit_fn)(void *arg, struct sl_err *err);

/* Opens (creating when missing) the database file and its parent directories,
 * sets WAL mode, synchronous=NORMAL, busy_timeout and cache_size, and creates
 * _sluice_checkpoints. A file that another writer of this process has open
 * is shared: its connection (with the first writer's busy_timeout) gets
 * conf->cache_bytes more page cache. The target table is created at the
 * first write (with conf->columns and the keys up front, else from the
 * first record). conf is copied (its pointers are borrowed). Returns the
 * writer, or NULL with err set: SL_ECONFIG (bad conf), SL_ERETRY (database
 * locked beyond busy_timeout), SL_ENOMEM, SL_EIO. Blocks (file I/O, lock
 * waits). Thread: any, then the writer belongs to the calling thread until
 * handed over. */
struct sl_sqlite_writer *sl_sqlite_writer_open(const struct sl_sqlite_writer_conf *conf,
                                               struct sl_err *err);

/* Finalizes the statements and closes the connection (the file's last
 * writer). Nothing is pending between write calls, so nothing is lost.
 * Accepts NULL; returns NULL. */
struct sl_sqlite_writer *sl_sqlite_writer_close(struct sl_sqlite_writer *w);

/* Writes n batches, already in order per stream, in one BEGIN IMMEDIATE ...
 * COMMIT transaction. Per batch with a stream_name: reads the stored position
 * of (table, writer_id, source name, stream_name, partition) (once per call
 * and stream), writes only the records and the
 * dead letters (when dead_table is set) whose
 * meta.offset >= that position, then stores pos_end when greater (and the
 * fingerprint). Batches without a stream_name are written whole and store no
 * position. Rejected records are reported through reject (may be NULL), then
 * before_commit (may be NULL) is called, both before the commit (a failed
 * commit reports them again on the next call); *ret_replayed (may be NULL) gets the number of
 * records trimmed as already stored. Borrows the batches for the call. Returns 0; SL_ERETRY when
 * the database stayed locked beyond busy_timeout; SL_ENOMEM; SL_EIO for other failures, or what a
 * callback returned. On failure the transaction is rolled back (nothing half-written). Blocks.
 * Thread: the writer's. */
int sl_sqlite_writer_write(struct sl_sqlite_writer *w,
                           struct sl_batch *const *batches,
                           size_t n,
                           sl_sqlite_reject_fn reject,
                           sl_sqlite_commit_fn before_commit,
                           void *arg,
                           uint64_t *ret_replayed,
                           struct sl_err *err);

/* How many dead letters (the batches' own: each reaches one sink only,
 * see NOTES.md "Dead letters"; and the rejected records) the last committed write
 * stored in the dead-letter table; replays trimmed are not among them.
 * Thread: the writer's. */
uint64_t sl_sqlite_writer_dead_stored(const struct sl_sqlite_writer *w);

/* Reads the stored position of (table, writer_id, source, stream, partition)
 * at priority level under plan (sqlite_positions.h), to resume from:
 * returns 0 with *ret_pos and, when fingerprint is not NULL, the stored
 * fingerprint copied (NUL-terminated, cut to fingerprint_len - 1; "" when none).
 * Returns SL_EOF when no position is stored, SL_ERETRY when locked, SL_EIO
 * otherwise. Uses the file's connection outside any transaction, in a turn
 * of its own. Blocks.
 * Thread: the writer's. */
int sl_sqlite_writer_position(struct sl_sqlite_writer *w,
                              const char *source,
                              const char *stream,
                              int32_t partition,
                              uint8_t level,
                              const char *plan,
                              int64_t *ret_pos,
                              char *fingerprint,
                              size_t fingerprint_len,
                              struct sl_err *err);

/* Calls fn with each file stream (partition 0) this writer stored a
 * position of for source, and its fingerprint (NULL if none): how a file
 * source recognises files it read before under another name. 0 or SL_E*
 * (err set). Thread: the writer's. */
int sl_sqlite_writer_streams(struct sl_sqlite_writer *w,
                             const char *source,
                             void (*fn)(void *arg, const char *stream, const char *fp),
                             void *arg,
                             struct sl_err *err);

/* sl_pos_store_claim for the writer's table and identity. Thread: the
 * writer's. */
int sl_sqlite_writer_claim(struct sl_sqlite_writer *w,
                           const char *source,
                           const char *pipeline,
                           char *last,
                           size_t last_len,
                           struct sl_err *err);

/* Calls fn for each writer identity holding positions of the writer's table
 * (the renamed-sink warning). 0 or SL_E* (err set). Thread: the writer's. */
int sl_sqlite_writer_writers(struct sl_sqlite_writer *w,
                             void (*fn)(void *arg, const char *writer),
                             void *arg,
                             struct sl_err *err);

#endif
