/* SPDX-License-Identifier: MIT */
/* Internals shared by the SQLite writer's files: sqlite_writer.c (transactions,
 * grouping rows, binding), sqlite_schema.c (tables, columns, statements),
 * sqlite_checkpoint.c (positions), sqlite_file.c (the connection a file's
 * writers share, turns on it) and sqlite_wal.c (checkpoints). Not for other
 * modules. A writer belongs to one thread at a time; its file's connection
 * to whoever holds the file's turn. */
#ifndef SL_SQLITE_PRIV_H
#define SL_SQLITE_PRIV_H

#include "buf.h"
#include "conf.h"
#include "connectors/sqlite/sqlite_positions.h"
#include "sqlite_writer.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <sys/types.h>

/* Rows per multi-row INSERT: DESIGN measured 32 rows at 1.8x one-row inserts;
 * fewer when the columns times the rows would pass SQLITE_LIMIT_VARIABLE_NUMBER. */
#define SL__SQLITE_MAX_ROWS     32
#define SL__SQLITE_CACHE        16         /* cached statement pairs per table (LRU) */
#define SL__SQLITE_SKIP         UINT32_MAX /* field not written: a later one has its name */
#define SL__SQLITE_RESERVED     "_sluice_" /* prefix of our tables and indexes */
#define SL__SQLITE_RESERVED_LEN 8
#define SL__SQLITE_RAW_MAX      65536 /* dead letters keep this much of the input */
/* The turn level of short work outside transactions (reads, closes): the
 * highest, so that it does not wait behind queued bulk writes. */
#define SL__SQLITE_SHORT (SL_PRIORITY_LEVELS - 1)

enum sl__sqlite_found {
    SL__SQLITE_MISSING,  /* no such column */
    SL__SQLITE_FOUND,    /* the column has exactly this name */
    SL__SQLITE_COLLIDES, /* a column has this name in another case */
};

struct sl__sqlite_col {
    char *name;    /* sl_malloc'ed, NUL-terminated */
    uint32_t len;  /* bytes of name */
    uint32_t hash; /* hash of the ASCII-lowercased name */
};

/* A table's columns as last read (PRAGMA table_info) or added by us, with a
 * case-insensitive hash index (SQLite's identifiers ignore ASCII case). */
struct sl__sqlite_schema {
    struct sl__sqlite_col *cols; /* in table order (cid) */
    uint32_t ncols;
    uint32_t cap;
    uint32_t *index;    /* open addressing: column index + 1, 0 = empty slot */
    uint32_t index_cap; /* power of two, at least twice ncols */
    bool exists;        /* the table exists */
};

/* Prepared INSERTs for one column list: `rows` rows and one row. */
struct sl__sqlite_stmt {
    uint32_t *cols; /* ascending column indexes, sl_malloc'ed; NULL = free entry */
    uint32_t ncols;
    uint32_t hash;        /* of cols */
    uint32_t rows;        /* rows of multi */
    sqlite3_stmt *multi;  /* NULL when rows == 1 */
    sqlite3_stmt *single; /* one row */
    uint64_t used;        /* LRU tick */
};

/* A record waiting in a group for its multi-row INSERT. */
struct sl__sqlite_row {
    const struct sl_field *fields; /* borrowed from the batch (or the caller's stack, flushed
                                      before it returns) */
    uint32_t nfields;
    uint32_t map;   /* offset of its column indexes (one per field) in target map */
    uint32_t ncols; /* distinct columns it sets */
    uint32_t batch; /* index in the write call's batch array */
    uint32_t rec;   /* index in the batch; UINT32_MAX for rows of the dead-letter table */
};

/* Remembers what one field of the record being resolved mapped to. */
struct sl__sqlite_seen {
    uint32_t stamp; /* record stamp when set */
    uint32_t field; /* index of the field that set it */
};

/* One table this writer writes: the main table or the dead-letter table. */
struct sl__sqlite_target {
    const char *name;        /* table name, borrowed from conf */
    char *qname;             /* name quoted for SQL, sl_malloc'ed */
    const char **decl_names; /* declared columns: conf columns, then missing keys */
    const char **decl_types; /* their types (NULL: none) */
    uint32_t *decl_lens;
    uint32_t ndecl;
    const char *const *keys; /* upsert keys (conf), NULL when inserting */
    size_t nkeys;
    uint32_t *key_cols;              /* column index of each key, valid when ready */
    bool ready;                      /* schema read and declared columns/index ensured; cleared
                                        on rollback */
    bool shape_cache;                /* reuse the previous record's mapping when names match */
    struct sl__sqlite_schema schema; /* columns of the table */

    /* Per-column scratch, cols_cap entries each, grown with the schema. */
    uint8_t *inset;               /* column is in the group's union */
    uint32_t *slot;               /* parameter slot of the column in the statement bound */
    struct sl__sqlite_seen *seen; /* duplicate detection while resolving a record */
    uint32_t *sorted;             /* union sorted, the statement key */
    uint32_t *ucols;              /* the group's union of columns, first-seen order */
    uint32_t cols_cap;
    uint32_t nucols;
    uint32_t stamp; /* per resolved record */

    struct sl__sqlite_stmt cache[SL__SQLITE_CACHE];
    uint64_t tick;

    struct sl__sqlite_row rows[SL__SQLITE_MAX_ROWS]; /* the group */
    uint32_t nrows;
    uint32_t rows_cap; /* rows of a full group: sl__sqlite_rows_for(nucols) */
    uint32_t *map;     /* column index per field of the group's rows */
    uint32_t nmap;
    uint32_t map_cap;

    const struct sl_field *prev; /* shape cache: last resolved record's fields */
    uint32_t nprev;
    uint32_t prev_ncols;
    uint32_t *prev_map; /* its column indexes, prev_cap entries */
    uint32_t prev_cap;
};

/* Position of one (stream, partition) during a write call. */
struct sl__sqlite_pos {
    uint32_t source;         /* batch's source node index */
    const char *source_name; /* its name (conf.source_names), "" when unknown */
    const char *stream;      /* batch's stream_name (pipeline lifetime) */
    int32_t partition;
    uint8_t level;           /* batch's priority lane */
    const char *plan;        /* the priority plan stored beside it (conf.plans), or NULL */
    int64_t pos;             /* records below it are in the table (as of the transaction's
                                start: copies of one batch arriving by several DAG paths
                                are all written, none trimmed by its sibling) */
    int64_t next;            /* position to store at commit */
    const char *fingerprint; /* of the file pos belongs to (batch's), NULL if unknown */
    bool dirty;              /* store at commit */
};

/* A record rejected during the call, reported after the commit. */
struct sl__sqlite_reject {
    uint32_t batch;  /* index in the call's batch array */
    uint32_t rec;    /* index in the batch */
    uint32_t reason; /* offset of its NUL-terminated reason in reasons */
};

/* One database file as this process's writers share it (sqlite_file.c).
 * The connection, its statements and the fields marked "turn" belong to
 * whoever holds the file's turn (sl__sqlite_file_take). */
struct sl__sqlite_file {
    sqlite3 *db;            /* the file's one connection */
    struct sl_pos_store ps; /* _sluice_checkpoints on db */
    sqlite3_stmt *begin;
    sqlite3_stmt *commit;
    sqlite3_stmt *rollback;
    uint32_t max_vars;    /* SQLITE_LIMIT_VARIABLE_NUMBER */
    uint64_t cache_bytes; /* turn: the page cache, its writers' shares together */
    int wal_pages;        /* turn: WAL frames after the last commit (the WAL hook) */
    int ck_from;          /* turn: wal_pages when the last checkpoint was asked for */
    char *path;           /* as SQLite resolved it: for the checkpointer */

    /* sqlite_file.c: the registry (its lock) and the turns (mu). */
    dev_t dev;
    ino_t ino;
    bool listed; /* in the registry: shared by every writer of the file */
    int refs;    /* under the registry's lock */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool held;                         /* under mu: someone has the turn */
    struct sl__sqlite_waiter *waiting; /* under mu: oldest first */
    struct sl__sqlite_file *link;      /* under the registry's lock */

    /* sqlite_wal.c's (under its lock, but ck_attached: the owner's). */
    bool ck_attached; /* the checkpointer has the WAL hook */
    bool ck_due;      /* queued for a checkpoint */
    struct sl__sqlite_file *ck_next;
};

struct sl_sqlite_writer {
    struct sl__sqlite_file *file;      /* shared with the file's other writers */
    sqlite3 *db;                       /* file->db: used while holding file's turn */
    struct sl_sqlite_writer_conf conf; /* copy; its pointers are borrowed */
    struct sl__sqlite_target main;     /* conf.table */
    struct sl__sqlite_target dead;     /* conf.dead_table (name NULL when none) */
    struct sl_buf sql;                 /* scratch for building SQL text */

    /* State of the current write call, reset at its start. */
    struct sl_batch *const *batches;
    struct sl__sqlite_pos *pos;
    uint32_t npos;
    uint32_t pos_cap;
    struct sl__sqlite_reject *rejects;
    uint32_t nrejects;
    uint32_t rejects_cap;
    struct sl_buf reasons;     /* NUL-separated reasons of rejects */
    uint64_t replayed;         /* records trimmed: already stored (below the position) */
    uint64_t dead_stored;      /* dead letters written to the dead-letter table by this call */
    uint64_t dead_stored_last; /* ... by the last call that committed */
    bool big;                  /* this call writes a batch of long records (see give_back) */
};

/* ==== sqlite_file.c ==== */

/* Makes the database file when it does not exist (an empty file is a new
 * database to SQLite), so that its identity is known before any
 * connection exists; never opens one that exists (see sqlite_file.c).
 * Thread: main. */
void sl__sqlite_create_file(const char *path);

/* The shared connection of the database file at path, creating the file
 * (and setting it up: WAL, synchronous=NORMAL, busy_ms, the position
 * store) for its first writer; cache_bytes is added to its page cache.
 * NULL with err set: SL_ERETRY (locked beyond busy_ms), SL_ENOMEM, SL_EIO.
 * The file's parent directory must exist. Blocks. Thread: any. */
struct sl__sqlite_file *
sl__sqlite_file_open(const char *path, uint32_t busy_ms, uint64_t cache_bytes, struct sl_err *err);
/* Drops a reference; the last closes the connection. NULL ok; returns
 * NULL. Thread: any, not holding the turn. */
struct sl__sqlite_file *sl__sqlite_file_close(struct sl__sqlite_file *f);
/* Waits for the caller's turn on the file (the highest priority level
 * first, with aging, else in arrival order) for work whose highest level
 * is level; a thread holding it already gets it again. give ends it.
 * Thread: any. */
void sl__sqlite_file_take(struct sl__sqlite_file *f, uint8_t level);
void sl__sqlite_file_give(struct sl__sqlite_file *f);

/* ==== sqlite_wal.c ==== */

/* Moves f's WAL checkpoints to the process's checkpointer thread
 * (PASSIVE, off the COMMIT path), starting it for the first file; when it
 * cannot start, SQLite keeps checkpointing in COMMIT. Thread: f's opener. */
void sl__sqlite_wal_attach(struct sl__sqlite_file *f);
/* Takes f off the checkpointer, waiting for a checkpoint of it in
 * progress, before f's connection closes; the last file stops the thread.
 * Thread: f's last user. */
void sl__sqlite_wal_detach(struct sl__sqlite_file *f);
/* After a commit, in f's turn: whether the log is long enough for the
 * writer to finish the checkpoint (sl__sqlite_wal_finish, in a turn of
 * its own: see sqlite_wal.c). */
bool sl__sqlite_wal_due(const struct sl__sqlite_file *f);
/* In f's turn: when the log is still long, waits for a checkpoint in
 * progress and copies what it left, so that the log starts again at the
 * next transaction. Blocks (I/O). */
void sl__sqlite_wal_finish(struct sl__sqlite_file *f);

/* ==== sqlite_schema.c ==== */

/* Appends name (len bytes) double-quoted with `"` doubled. 0 or SL_ENOMEM. */
int sl__sqlite_quote(struct sl_buf *buf, const char *name, size_t len);
/* True when name starts with _sluice_ in any ASCII case. */
bool sl__sqlite_reserved(const char *name, size_t len);
/* Sets up a target for table name with declared columns and upsert keys
 * (keys NULL for insert); allocates nothing per write. 0, SL_ECONFIG or
 * SL_ENOMEM (err set). */
int sl__sqlite_target_init(struct sl__sqlite_target *t,
                           const char *name,
                           const struct sl_sqlite_column *cols,
                           size_t ncols,
                           const char *const *keys,
                           size_t nkeys,
                           struct sl_err *err);
/* Finalizes the cached statements and frees the target's memory. */
/* Finalizes the cached statements (they are prepared again when next
 * used): SQLite keeps the memory of the largest record a statement built
 * until then. */
void sl__sqlite_target_drop_statements(struct sl__sqlite_target *t);
void sl__sqlite_target_release(struct sl__sqlite_target *t);
/* Inside a write transaction: reads the schema if not ready, creates the
 * table when declared columns exist, adds missing declared columns and the
 * upsert index. 0 or SL_E* (err set). */
int sl__sqlite_target_prepare(sqlite3 *db,
                              struct sl__sqlite_target *t,
                              struct sl_buf *sql,
                              struct sl_err *err);
/* Looks a field name up; on FOUND or COLLIDES sets *ret_col. */
enum sl__sqlite_found sl__sqlite_schema_find(const struct sl__sqlite_schema *s,
                                             const char *name,
                                             uint32_t len,
                                             uint32_t *ret_col);
/* Inside a write transaction: creates the table or adds the n columns
 * (names[i], lens[i], types[i] may be NULL), tolerating columns another
 * process added meanwhile, then re-reads the schema. 0 or SL_E* (err set). */
int sl__sqlite_schema_add(sqlite3 *db,
                          struct sl__sqlite_target *t,
                          struct sl_buf *sql,
                          const char *const *names,
                          const uint32_t *lens,
                          const char *const *types,
                          uint32_t n,
                          struct sl_err *err);
/* Sets *ret to the cached statements for the ascending column list cols,
 * preparing them on a miss (evicting the least recently used). 0 or SL_E*
 * (err set). */
int sl__sqlite_stmt_get(sqlite3 *db,
                        struct sl__sqlite_target *t,
                        struct sl_buf *sql,
                        uint32_t max_vars,
                        const uint32_t *cols,
                        uint32_t ncols,
                        struct sl__sqlite_stmt **ret,
                        struct sl_err *err);
/* Rows of a multi-row INSERT of ncols columns. */
uint32_t sl__sqlite_rows_for(uint32_t ncols, uint32_t max_vars);

/* ==== sqlite_checkpoint.c ==== */

/* Inside the write transaction: the position below which this batch's
 * records are already stored (INT64_MIN without a stream_name). Reads the
 * table at the stream's first batch of the call. 0 or SL_E* (err set). */
int sl__sqlite_ck_begin(struct sl_sqlite_writer *w,
                        const struct sl_batch *batch,
                        int64_t *ret_pos,
                        struct sl_err *err);
/* Advances the stream's position to batch->pos_end when greater. */
void sl__sqlite_ck_advance(struct sl_sqlite_writer *w, const struct sl_batch *batch);
/* Inside the write transaction: stores the advanced positions. 0 or SL_E*. */
int sl__sqlite_ck_store(struct sl_sqlite_writer *w, struct sl_err *err);

/* ==== sqlite_writer.c ==== */

/* Maps a SQLite result code to SL_ERETRY (busy, locked), SL_ENOMEM or
 * SL_EIO and sets err to "what: SQLite's message". Returns the code. */
int sl__sqlite_fail(sqlite3 *db, int rc, struct sl_err *err, const char *what);

#endif
