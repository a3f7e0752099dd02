/* SPDX-License-Identifier: MIT */
/* The durable position store: the `_sluice_checkpoints` table, keyed by
 * (table, writer, source, stream, partition). The SQLite sink reads and
 * writes it inside each batch's transaction (exactly once); a file source's
 * `checkpoints:` file uses the same table for the sinks that keep no
 * positions. The key names the writer (which sink) and the source (which
 * source node), so two sinks on one table, or two sources reading one file
 * into one table, never trim each other's records. One store per connection;
 * used by one thread at a time. */
#ifndef SL_SQLITE_POSITIONS_H
#define SL_SQLITE_POSITIONS_H

#include "err.h"

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Identifies one stored position. Every string is borrowed for the call. */
struct sl_pos_key {
    const char *table;  /* the table the positions belong to */
    const char *writer; /* the writer's identity: the sink's `writer_id` (its node name) */
    const char *source; /* the source node's name */
    const char *stream; /* file identity (connectors/file/file_identity.h) or Kafka topic */
    int32_t partition;  /* Kafka partition, 0 for files */
    uint8_t level;      /* priority lane: each level of a stream is ordered on its own */
    const char *plan;   /* the priority settings the writer works under (NULL: none):
                           "<lanes mask hex>:<hash>" (sl_sink's plans) */
};

/* Longest plan text kept. */
#define SL_POS_PLAN_MAX 64

struct sl_pos_store {
    sqlite3 *db;          /* borrowed connection */
    sqlite3_stmt *get;    /* position, fingerprint of a key */
    sqlite3_stmt *put;    /* upsert of a key */
    sqlite3_stmt *legacy; /* the same key in a pre-writer table (_sluice_checkpoints_v1), or NULL */
    sqlite3_stmt *writers; /* distinct writers holding positions of table ?1 */
    sqlite3_stmt *others;  /* whether a stream has rows of another plan than ?9 */
    sqlite3_stmt *forget;  /* deletes them */
    sqlite3_stmt *seed;    /* a lane's row under ?9 at ?6, unless it has one */
    bool legacy_fp;        /* _sluice_checkpoints_v1 has a fingerprint column */
};

/* Creates _sluice_checkpoints on db when missing (moving a table of the
 * older (tbl, stream, partition) layout to _sluice_checkpoints_v1, whose
 * positions are then adopted by every writer that has none) and prepares
 * the statements. Takes a write lock briefly (busy_timeout applies).
 * Returns 0 or SL_ERETRY / SL_EIO / SL_ENOMEM with err set. */
int sl_pos_store_open(struct sl_pos_store *ps, sqlite3 *db, struct sl_err *err);
/* Finalizes the statements (the connection stays open). NULL-safe. */
void sl_pos_store_close(struct sl_pos_store *ps);
/* Reads key's position: 0 with *ret_pos and the stored fingerprint copied
 * into fp (NUL-terminated, "" when none; fp may be NULL), SL_EOF when none is
 * stored, else SL_ERETRY / SL_EIO with err set. Inside or outside a
 * transaction. The lane's own row counts when it was written under the
 * same plan. Rows of another plan mean the priority settings changed:
 * then the lowest position of those rows (0 when one of their lanes has
 * none) stands for every lane not yet written under the new plan, so a
 * record that moved to another lane is neither lost nor written twice
 * below it. A lane without a row under an unchanged plan has none. */
int sl_pos_store_get(struct sl_pos_store *ps,
                     const struct sl_pos_key *key,
                     int64_t *ret_pos,
                     char *fp,
                     size_t fp_len,
                     struct sl_err *err);
/* Stores key's position; a NULL fingerprint keeps the stored one. The
 * first store under a plan where the stream has rows of another (changed
 * priority settings) first gives every lane of the new plan a row at the
 * position sl_pos_store_get falls back on, and forgets the old rows: a
 * lane that commits first must not make the old plan look incomplete to
 * the others. Inside the caller's transaction when it has one. 0 or
 * SL_ERETRY / SL_EIO with err set. */
int sl_pos_store_put(struct sl_pos_store *ps,
                     const struct sl_pos_key *key,
                     int64_t pos,
                     const char *fp,
                     struct sl_err *err);
/* Calls fn with each stream (and its fingerprint, NULL if none) that key's
 * table, writer and source hold a partition-0 position of (file streams),
 * older-layout rows included. 0 or SL_EIO / SL_ERETRY with err set. */
int sl_pos_store_streams(struct sl_pos_store *ps,
                         const struct sl_pos_key *key,
                         void (*fn)(void *arg, const char *stream, const char *fp),
                         void *arg,
                         struct sl_err *err);
/* Calls fn for each distinct writer holding positions of table (the
 * renamed-sink warning). 0 or SL_EIO / SL_ERETRY with err set. */
int sl_pos_store_writers(struct sl_pos_store *ps,
                         const char *table,
                         void (*fn)(void *arg, const char *writer),
                         void *arg,
                         struct sl_err *err);

/* Notes that the pipeline file pipeline (its real path) writes under
 * (table, writer) from source, in `_sluice_writers`. A writer identity is
 * a name: two pipeline files may give their sinks the same one, and when
 * a source of the same name feeds both, each skips the other's records as
 * already written. Returns 1 when another file did so last (its path
 * copied into last), 0 when none or this one did, or SL_ERETRY / SL_EIO
 * with err set. Never waits for another process's write lock (the note
 * is then left for a later run). Outside a transaction. */
int sl_pos_store_claim(struct sl_pos_store *ps,
                       const char *table,
                       const char *writer,
                       const char *source,
                       const char *pipeline,
                       char *last,
                       size_t last_len,
                       struct sl_err *err);
#endif
