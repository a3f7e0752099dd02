/* SPDX-License-Identifier: MIT */
/* `sqlite` sink node: batches of records written through sqlite_writer.c in
 * one transaction per write, with the source positions (exactly once). The
 * dead-letter store, when it is a table of the same database file, is
 * written in that same transaction. */
#include "connectors/sqlite/sqlite_priv.h"
#include "connectors/sqlite/sqlite_writer.h"
#include "fsutil.h"
#include "log.h"
#include "mem.h"
#include "sink.h"

#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct sqlite_conf {
    const char *path;
    const char *table;
    int mode;
    struct sluice_list key_columns;
    struct sluice_map columns;
    struct sl_sink_batching batch;
    const char *writer_id;
};

static const char *const modes[] = {"insert", "upsert", NULL};

/* clang-format off */
static const struct sluice_option sqlite_options[] = {
    SLUICE_OPT_ROW(struct sqlite_conf, path, SLUICE_OPT_STR, NULL, 0, 0, NULL, SLUICE_OPT_REQUIRED,
                   "Database file (parent directories are created)."),
    SLUICE_OPT_ROW(struct sqlite_conf, table, SLUICE_OPT_STR, NULL, 0, 0, NULL,
                   SLUICE_OPT_REQUIRED, "Table; created from the first batch when missing."),
    SLUICE_OPT_ROW(struct sqlite_conf, mode, SLUICE_OPT_ENUM, "insert", 0, 0, modes, 0,
                   "insert, or upsert on key_columns."),
    SLUICE_OPT_ROW(struct sqlite_conf, key_columns, SLUICE_OPT_LIST, NULL, 0, 0, NULL, 0,
                   "Upsert key (a unique index is created)."),
    SLUICE_OPT_ROW(struct sqlite_conf, columns, SLUICE_OPT_MAP, NULL, 0, 0, NULL, 0,
                   "Explicit column types: field -> SQL type."),
    SL_SINK_BATCH_ROWS(struct sqlite_conf, batch, "16MiB"),
    SLUICE_OPT_ROW(struct sqlite_conf, writer_id, SLUICE_OPT_STR, NULL, 0, 0, NULL, 0,
                   "Identity of this sink's positions in the table (default: the node name); "
                   "keep it when renaming the node."),
    {0},
};
/* clang-format on */

struct sqlite_sink {
    struct sl_sink sink; /* first: sl_sink_of() */
    struct sl_sqlite_writer *w;
    pthread_mutex_t lock; /* the writer: writes (worker) vs resume reads (source threads) */
    struct sl_sqlite_column *columns;
    const char **source_names;
};

/* ==== Config check: everything the writer would refuse at open ==== */

/* Why name cannot be a column (NULL when it can): the writer's rules. */
static const char *column_name_invalid(const char *name)
{
    if (name[0] == '\0') {
        return "a column name cannot be empty";
    }
    if (sqlite3_strnicmp(name, "_sluice_", 8) == 0) {
        return "column names starting with _sluice_ are reserved";
    }
    return NULL;
}

/* A column type is a SQL type name, "INTEGER", "VARCHAR(20)", "DECIMAL(10,
 * 2)", "DOUBLE PRECISION": words, then at most one parenthesised list of
 * one or two numbers. Constraints ("PRIMARY KEY", "NOT NULL") are refused:
 * SQLite cannot add such a column to an existing table, so a pipeline would
 * work on a new table and fail on the next run. "" and "ANY" declare none. */
static bool column_type_valid(const char *type)
{
    static const char *const constraints[] = {
        "PRIMARY",       "KEY",     "NOT",        "NULL",      "UNIQUE",  "CHECK",
        "DEFAULT",       "COLLATE", "REFERENCES", "GENERATED", "AS",      "CONSTRAINT",
        "AUTOINCREMENT", "ON",      "CONFLICT",   "STORED",    "VIRTUAL", NULL,
    };
    const char *p = type + strspn(type, " ");
    size_t words = 0, nums = 0;

    while (*p != '\0' && *p != '(') {
        size_t n = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789");
        if (n == 0 || (p[0] >= '0' && p[0] <= '9')) {
            return false;
        }
        for (size_t i = 0; constraints[i] != NULL; i++) {
            if (strlen(constraints[i]) == n && sqlite3_strnicmp(p, constraints[i], (int)n) == 0) {
                return false;
            }
        }
        p += n;
        p += strspn(p, " ");
        words++;
    }
    if (*p == '\0') {
        return true;
    }
    if (words == 0) {
        return false; /* "(20)": a size without a type name */
    }
    do {
        p++;
        p += strspn(p, " ");
        p += *p == '+' || *p == '-';
        if (strspn(p, "0123456789") == 0) {
            return false;
        }
        p += strspn(p, "0123456789");
        p += strspn(p, " ");
        nums++;
    } while (*p == ',' && nums < 2);
    return *p == ')' && p[1 + strspn(p + 1, " ")] == '\0';
}

/* The index in cols of the column that name is in SQLite (names ignore
 * case), or cols->n when none. */
static size_t column_index(const struct sluice_map *cols, const char *name)
{
    size_t i = 0;

    while (i < cols->n && sqlite3_stricmp(cols->keys[i], name) != 0) {
        i++;
    }
    return i;
}

/* A sink that declares columns has its upsert keys among them, spelled the
 * same: the writer would add an undeclared key as an untyped column that no
 * record fills (each record then a dead letter: "key column is missing"),
 * and refuse a key spelled in another case as a second column of one name. */
static int check_key_declared(const struct sl_conf_node *cn,
                              const char *at,
                              const char *key,
                              struct sl_err *err)
{
    const struct sluice_map *cols = &((const struct sqlite_conf *)cn->conf)->columns;
    size_t i = column_index(cols, key);

    if (cols->n == 0 || (i < cols->n && strcmp(cols->keys[i], key) == 0)) {
        return 0;
    }
    if (i < cols->n) {
        return sl_conf_node_err(cn, at, err,
                                "key column '%s' is declared as '%s' in columns: spell it the same",
                                key, cols->keys[i]);
    }
    return sl_conf_node_err(cn, at, err,
                            "key column '%s' is not one of the declared columns: declare it in "
                            "columns with its type",
                            key);
}

static int check_columns(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct sqlite_conf *conf = cn->conf;
    const struct sluice_map *cols = &conf->columns;
    const struct sluice_list *keys = &conf->key_columns;
    char at[SL_ERR_PATH_MAX];
    const char *why;

    for (size_t i = 0; i < cols->n; i++) {
        snprintf(at, sizeof(at), "columns.%s", cols->keys[i]);
        if ((why = column_name_invalid(cols->keys[i])) != NULL) {
            return sl_conf_node_err(cn, at, err, "%s", why);
        }
        if (!column_type_valid(cols->values[i])) {
            return sl_conf_node_err(cn, at, err,
                                    "expected a SQL column type such as INTEGER, REAL, TEXT, BLOB "
                                    "or VARCHAR(20) (no constraints), got '%.60s'",
                                    cols->values[i]);
        }
        for (size_t j = 0; j < i; j++) {
            if (sqlite3_stricmp(cols->keys[j], cols->keys[i]) == 0) {
                return sl_conf_node_err(cn, at, err,
                                        "columns '%s' and '%s' are the same column in SQLite "
                                        "(names ignore case)",
                                        cols->keys[j], cols->keys[i]);
            }
        }
    }
    for (size_t i = 0; i < keys->n; i++) {
        snprintf(at, sizeof(at), "key_columns[%zu]", i);
        if ((why = column_name_invalid(keys->items[i])) != NULL) {
            return sl_conf_node_err(cn, at, err, "%s", why);
        }
        for (size_t j = 0; j < i; j++) {
            if (sqlite3_stricmp(keys->items[j], keys->items[i]) == 0) {
                return sl_conf_node_err(cn, at, err,
                                        "key column '%s' is listed twice (names ignore case)",
                                        keys->items[i]);
            }
        }
        int rc = check_key_declared(cn, at, keys->items[i], err);

        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* The dead-letter sink is loaded last: it sees every sink. Dead letters in
 * a sink's own table would be read back as records of that table. */
static int check_dead_table(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct sqlite_conf *conf = cn->conf;
    const struct sl_conf *pipeline = cn->pipeline;

    if (pipeline == NULL || pipeline->dead_letter != cn) {
        return 0;
    }
    for (size_t i = 0; i < pipeline->nnodes; i++) {
        const struct sl_conf_node *sink = &pipeline->nodes[i];
        const struct sqlite_conf *sc = sink->conf;

        if (sink->type == cn->type && sl_same_path(sc->path, conf->path) &&
            sqlite3_stricmp(sc->table, conf->table) == 0) {
            return sl_conf_node_err(cn, "table", err,
                                    "table '%s' in '%s' is the table of sink '%s': dead letters "
                                    "need a table of their own",
                                    conf->table, conf->path, sink->name);
        }
    }
    return 0;
}

/* ==== Sinks that share a table ==== */

static const char *conf_writer_id(const struct sl_conf_node *cn)
{
    const struct sqlite_conf *conf = cn->conf;

    return conf->writer_id != NULL ? conf->writer_id : cn->name;
}

/* Folds a declared type into buf as SQLite reads it: "" for none ("" and
 * "ANY", see sqlite_schema.c), else upper case with one space between words
 * and none around parentheses and commas ("varchar( 20 )" is VARCHAR(20)). */
static void type_fold(const char *type, char *buf, size_t len)
{
    size_t n = 0;
    bool space = false;

    for (const char *p = type; *p != '\0' && n + 2 < len; p++) {
        char c = *p;

        if (c == ' ' || c == '\t') {
            space = n > 0;
            continue;
        }
        if (space && strchr("(),", c) == NULL && strchr("(,", buf[n - 1]) == NULL) {
            buf[n++] = ' ';
        }
        space = false;
        buf[n++] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
    }
    buf[n] = '\0';
    if (strcmp(buf, "ANY") == 0) {
        buf[0] = '\0';
    }
}

/* Two sinks declaring one column with different types: the table gets the
 * type of whichever creates the column first, and the other's is ignored. */
static int
check_types(const struct sl_conf_node *cn, const struct sl_conf_node *other, struct sl_err *err)
{
    const struct sluice_map *cols = &((const struct sqlite_conf *)cn->conf)->columns;
    const struct sluice_map *theirs = &((const struct sqlite_conf *)other->conf)->columns;
    char mine[128], their[128], at[SL_ERR_PATH_MAX];

    /* Declared by one only: the table would take whichever sink creates
     * it first (a race), so the declaration could be silently ignored. */
    for (int side = 0; side < 2; side++) {
        const struct sluice_map *a = side == 0 ? cols : theirs;
        const struct sluice_map *b = side == 0 ? theirs : cols;
        for (size_t i = 0; i < a->n; i++) {
            if (column_index(b, a->keys[i]) < b->n) {
                continue;
            }
            snprintf(at, sizeof(at), "columns.%s", a->keys[i]);
            return sl_conf_node_err(
                cn, side == 0 ? at : "columns", err,
                "column '%s' is declared in sink '%s' but not in sink '%s', which writes the "
                "same table: the table takes the columns of whichever sink creates it first; "
                "declare the same columns in both",
                a->keys[i], side == 0 ? cn->name : other->name, side == 0 ? other->name : cn->name);
        }
    }
    for (size_t i = 0; i < cols->n; i++) {
        size_t j = column_index(theirs, cols->keys[i]);

        if (j == theirs->n) {
            continue;
        }
        type_fold(cols->values[i], mine, sizeof(mine));
        type_fold(theirs->values[j], their, sizeof(their));
        if (strcmp(mine, their) != 0) {
            snprintf(at, sizeof(at), "columns.%s", cols->keys[i]);
            return sl_conf_node_err(cn, at, err,
                                    "column '%s' is %s here but %s in sink '%s', which writes the "
                                    "same table: a column has one type, declare the same in both",
                                    cols->keys[i], mine[0] != '\0' ? mine : "untyped",
                                    their[0] != '\0' ? their : "untyped", other->name);
        }
    }
    return 0;
}

/* Two sinks of one table under one writer identity share its positions:
 * each would take the other's rows for replays and drop them. Reported at
 * the writer_id that makes the clash (the later one when both are set). */
static int
check_identity(const struct sl_conf_node *cn, const struct sl_conf_node *other, struct sl_err *err)
{
    const char *id = conf_writer_id(cn);
    const struct sl_conf_node *at = cn;

    if (strcmp(id, conf_writer_id(other)) != 0) {
        return 0;
    }
    if (((const struct sqlite_conf *)cn->conf)->writer_id == NULL) {
        at = other; /* other's writer_id is our name */
    }
    return sl_conf_node_err(at, "writer_id", err,
                            "sinks '%s' and '%s' write table '%s' of '%s' under the same "
                            "writer_id '%s': each would drop the other's records as already "
                            "stored; give each sink its own writer_id",
                            other->name, cn->name, ((const struct sqlite_conf *)at->conf)->table,
                            ((const struct sqlite_conf *)at->conf)->path, id);
}

/* Upserts into one table under different key_columns: a table has one
 * upsert index (sqlite_schema.c), so the second sink's ON CONFLICT would
 * match no index and its first write would fail the run. */
static int
check_keys(const struct sl_conf_node *cn, const struct sl_conf_node *other, struct sl_err *err)
{
    const struct sqlite_conf *conf = cn->conf, *oc = other->conf;
    bool same = conf->key_columns.n == oc->key_columns.n;

    if (conf->mode != oc->mode) {
        /* The upsert's unique index makes the inserts of keys already
         * there fail (dead letters), or, when the inserts came first, the
         * index cannot be made over duplicate keys: which one depends on
         * which sink starts first. */
        return sl_conf_node_err(cn, "mode", err,
                                "sink '%s' writes the same table with mode %s: inserts and "
                                "upserts on one table clash on its upsert key; give both sinks "
                                "the same mode",
                                other->name, modes[oc->mode]);
    }
    if (conf->mode != 1) {
        return 0;
    }
    for (size_t i = 0; i < conf->key_columns.n && same; i++) {
        size_t j = 0;

        while (j < oc->key_columns.n &&
               sqlite3_stricmp(conf->key_columns.items[i], oc->key_columns.items[j]) != 0) {
            j++;
        }
        same = j < oc->key_columns.n;
    }
    if (same) {
        return 0;
    }
    return sl_conf_node_err(cn, "key_columns", err,
                            "sink '%s' upserts into the same table on other key_columns: a table "
                            "has one upsert key, give both sinks the same key_columns",
                            other->name);
}

/* Checks cn against the sqlite sinks loaded before it that write the same
 * table of the same file (names ignore case, paths compare as sl_same_path). */
static int check_siblings(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct sqlite_conf *conf = cn->conf;
    const struct sl_conf *pipeline = cn->pipeline;
    int rc = 0;

    for (size_t i = 0; pipeline != NULL && i < pipeline->nnodes && rc == 0; i++) {
        const struct sl_conf_node *other = &pipeline->nodes[i];
        const struct sqlite_conf *oc = other->conf;

        if (other == cn || other->type != cn->type ||
            sqlite3_stricmp(oc->table, conf->table) != 0 || !sl_same_path(oc->path, conf->path)) {
            continue;
        }
        rc = check_identity(cn, other, err);
        if (rc == 0) {
            rc = check_types(cn, other, err);
        }
        if (rc == 0) {
            rc = check_keys(cn, other, err);
        }
    }
    return rc;
}

static int sqlite_check(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct sqlite_conf *conf = cn->conf;

    if (conf->path[0] == '\0') {
        return sl_conf_node_err(cn, "path", err, "expected a database file, got an empty value");
    }
    /* Positions must outlive the process, and WAL needs a file. */
    if (strcmp(conf->path, ":memory:") == 0 || strncmp(conf->path, "file:", 5) == 0) {
        return sl_conf_node_err(cn, "path", err,
                                "expected a database file path, got '%s' (in-memory databases and "
                                "SQLite URIs are not supported: positions must survive a restart)",
                                conf->path);
    }
    if (conf->table[0] == '\0') {
        return sl_conf_node_err(cn, "table", err, "expected a table name, got an empty value");
    }
    if (sqlite3_strnicmp(conf->table, "_sluice_", 8) == 0) {
        return sl_conf_node_err(cn, "table", err,
                                "table names starting with _sluice_ are reserved");
    }
    if (sqlite3_strnicmp(conf->table, "sqlite_", 7) == 0) {
        return sl_conf_node_err(cn, "table", err,
                                "table names starting with sqlite_ are SQLite's own "
                                "(sqlite_master, sqlite_sequence...): choose another name");
    }
    if (conf->mode == 1 && conf->key_columns.n == 0) {
        return sl_conf_node_err(cn, "mode", err, "mode upsert needs key_columns");
    }
    if (conf->mode == 0 && conf->key_columns.n != 0) {
        return sl_conf_node_err(cn, "key_columns", err,
                                "key_columns is used by mode: upsert only (mode is insert)");
    }
    if (conf->writer_id != NULL && conf->writer_id[0] == '\0') {
        return sl_conf_node_err(cn, "writer_id", err,
                                "expected a writer name, got an empty value (leave writer_id out "
                                "for the node name)");
    }
    int rc = check_columns(cn, err);

    if (rc == 0 && cn->pipeline != NULL && cn->pipeline->dead_letter != cn) {
        rc = check_siblings(cn, err);
    }
    return rc != 0 ? rc : check_dead_table(cn, err);
}

static int
on_reject(void *arg, const struct sl_batch *batch, uint32_t rec_index, const char *reason)
{
    return sl_sink_reject(arg, batch, &batch->recs[rec_index], reason);
}

static int before_commit(void *arg, struct sl_err *err)
{
    int rc = sl_sink_store_rejects(arg);

    return rc != 0 ? sl_err_set(err, rc, "dead-letter store: %s", sl_strerror(rc)) : 0;
}

static int sqlite_write(struct sl_sink *sink, struct sl_batch *const *batches, size_t n)
{
    struct sqlite_sink *ss = (struct sqlite_sink *)sink;
    struct sl_err err = {0};

    pthread_mutex_lock(&ss->lock);
    int rc = sl_sqlite_writer_write(ss->w, batches, n, on_reject, before_commit, sink,
                                    &sink->replayed, &err);
    sink->dead_stored = rc == 0 ? sl_sqlite_writer_dead_stored(ss->w) : 0;
    pthread_mutex_unlock(&ss->lock);
    if (rc != 0 && rc != SL_ERETRY) {
        sl_pipeline_fail(sink->node->pl, &err);
    }
    return rc;
}

static int sqlite_position(struct sl_sink *sink,
                           const char *source,
                           const char *stream,
                           int32_t partition,
                           uint8_t level,
                           const char *plan,
                           int64_t *ret_pos,
                           char *fp,
                           size_t fp_len,
                           struct sl_err *err)
{
    struct sqlite_sink *ss = (struct sqlite_sink *)sink;

    pthread_mutex_lock(&ss->lock);
    int rc = sl_sqlite_writer_position(ss->w, source, stream, partition, level, plan, ret_pos, fp,
                                       fp_len, err);
    pthread_mutex_unlock(&ss->lock);
    return rc;
}

static int sqlite_streams(struct sl_sink *sink,
                          const char *source,
                          void (*fn)(void *arg, const char *stream, const char *fp),
                          void *arg,
                          struct sl_err *err)
{
    struct sqlite_sink *ss = (struct sqlite_sink *)sink;

    pthread_mutex_lock(&ss->lock);
    int rc = sl_sqlite_writer_streams(ss->w, source, fn, arg, err);
    pthread_mutex_unlock(&ss->lock);
    return rc;
}

/* The dead-letter store shares our transaction when it is a sqlite table in
 * the same file (exactly once: trimmed with the records). */
static const char *same_file_dead_table(const struct sl_node *node, const struct sqlite_conf *conf)
{
    const struct sl_node *dlq = node->pl->dead_letter;

    if (dlq == NULL || dlq == node || dlq->type != node->type) {
        return NULL;
    }
    const struct sqlite_conf *dconf = dlq->cn->conf;
    /* Our file made first (an empty file is a new database to SQLite), so
     * that a symlink or a directory that did not exist yet compares as the
     * file it names: told apart, the store's own connection waited for our
     * transaction's lock until the run failed (hostile probe). */
    if (sl_mkdir_parents(conf->path) == 0) {
        sl__sqlite_create_file(conf->path);
    }
    return sl_same_path(dconf->path, conf->path) ? dconf->table : NULL;
}

/* The dead-letter store's upsert key: the user's key_columns with mode
 * upsert, else _id. */
static void dead_key(const struct sqlite_conf *store, const char *const **ret_keys, size_t *ret_n)
{
    static const char *const id[] = {"_id"};

    *ret_keys = store->mode == 1 ? (const char *const *)store->key_columns.items : id;
    *ret_n = store->mode == 1 ? store->key_columns.n : 1;
}

static const char *writer_id_of(const struct sl_node *node)
{
    const struct sqlite_conf *conf = node->cn->conf;

    return conf->writer_id != NULL ? conf->writer_id : node->name;
}

extern const struct sl_node_type sl_stage_sqlite;

/* The SQLite sinks of the pipeline, the dead-letter store included. */
static uint64_t sqlite_sinks(const struct sl_conf *pipeline)
{
    uint64_t n = 0;

    for (size_t i = 0; i < pipeline->nnodes; i++) {
        n += pipeline->nodes[i].type == &sl_stage_sqlite;
    }
    return n > 0 ? n : 1;
}

/* Appends touch few pages: a small page cache per sink, shared out of
 * memory_limit / 32 (a file's sinks share one connection, whose cache is
 * their shares together). */
static uint64_t cache_share(const struct sl_conf *pipeline)
{
    uint64_t cache = pipeline->memory_limit / 32 / sqlite_sinks(pipeline);

    return cache < 32u << 10 ? 32u << 10 : cache > 4u << 20 ? 4u << 20 : cache;
}

/* What a SQLite sink holds beside the records in flight and its page
 * cache, measured as peak RSS against the number of sinks (1 to 80 sinks
 * of 5,000 generated orders each at 4 MiB, one table each): a sink's
 * statements and state and the blocking thread that runs its writes
 * (SINK_BYTES, the slope with every table in one file), and a database
 * file's connection, wal-index and position statements (FILE_BYTES, the
 * slope with a file each, less SINK_BYTES). */
#define SINK_BYTES (96u << 10)
#define FILE_BYTES (80u << 10)

/* Whether a SQLite sink before cn writes cn's database file. */
static bool file_seen(const struct sl_conf_node *cn)
{
    const struct sl_conf *pipeline = cn->pipeline;
    const char *path = ((const struct sqlite_conf *)cn->conf)->path;

    for (size_t i = 0; i < pipeline->nnodes && &pipeline->nodes[i] != cn; i++) {
        const struct sl_conf_node *other = &pipeline->nodes[i];
        if (other->type == &sl_stage_sqlite &&
            sl_same_path(((const struct sqlite_conf *)other->conf)->path, path)) {
            return true;
        }
    }
    return false;
}

/* node.h fixed_bytes: the page cache, the sink's own share, and the file's
 * connection for the first sink of each file. */
static uint64_t sqlite_fixed_bytes(const struct sl_conf_node *cn)
{
    if (cn->pipeline == NULL) {
        return 0;
    }
    return cache_share(cn->pipeline) + SINK_BYTES + (file_seen(cn) ? 0 : FILE_BYTES);
}

static int
fill_writer_conf(struct sl_node *node, struct sqlite_sink *ss, struct sl_sqlite_writer_conf *wc)
{
    const struct sqlite_conf *conf = node->cn->conf;
    struct sl_pipeline *pl = node->pl;

    ss->columns = sl_calloc(conf->columns.n + 1, sizeof(*ss->columns));
    ss->source_names = sl_calloc(pl->nnodes, sizeof(*ss->source_names));
    if (ss->columns == NULL || ss->source_names == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < conf->columns.n; i++) {
        ss->columns[i].name = conf->columns.keys[i];
        ss->columns[i].type = conf->columns.values[i];
    }
    for (size_t i = 0; i < pl->nnodes; i++) {
        ss->source_names[i] = pl->nodes[i].name;
    }
    memset(wc, 0, sizeof(*wc));
    wc->path = conf->path;
    wc->table = conf->table;
    wc->mode = conf->mode == 1 ? SL_SQLITE_UPSERT : SL_SQLITE_INSERT;
    wc->key_columns = conf->key_columns.items;
    wc->nkey_columns = conf->key_columns.n;
    /* The dead-letter store writes a dead letter that a replay makes again
     * over itself (its _id is the same): exactly once in a file of its own
     * too, unless the user chose an upsert key. */
    if (node == pl->dead_letter) {
        dead_key(conf, &wc->key_columns, &wc->nkey_columns);
        wc->mode = SL_SQLITE_UPSERT;
    }
    wc->columns = ss->columns;
    wc->ncolumns = conf->columns.n;
    /* Out of the budget with the rest of what the sink holds (pipeline.c
     * plan_fixed, sqlite_fixed_bytes). */
    wc->cache_bytes = cache_share(pl->conf);
    wc->dead_table = same_file_dead_table(node, conf);
    if (wc->dead_table != NULL) {
        dead_key(node->pl->dead_letter->cn->conf, &wc->dead_keys, &wc->ndead_keys);
    }
    wc->sink_name = node->name;
    wc->writer_id = writer_id_of(node);
    wc->source_names = ss->source_names;
    wc->nsource_names = (uint32_t)pl->nnodes;
    wc->plans = node->plans;
    return 0;
}

/* What the table's positions say about this sink's identity. */
struct identity_check {
    const struct sl_node *node;
    bool mine;        /* positions under our writer_id exist */
    char others[256]; /* writers that are not sinks of this pipeline on this table */
    size_t len;
};

static bool is_sibling_writer(const struct sl_node *node, const char *writer)
{
    const struct sqlite_conf *conf = node->cn->conf;

    for (size_t i = 0; i < node->pl->nnodes; i++) {
        const struct sl_node *n = &node->pl->nodes[i];
        if (n == node || n->type != node->type || n == n->pl->dead_letter) {
            continue;
        }
        const struct sqlite_conf *c = n->cn->conf;
        if (strcmp(c->path, conf->path) == 0 && strcmp(c->table, conf->table) == 0 &&
            strcmp(writer_id_of(n), writer) == 0) {
            return true;
        }
    }
    return false;
}

static void on_writer(void *arg, const char *writer)
{
    struct identity_check *ic = arg;

    if (strcmp(writer, writer_id_of(ic->node)) == 0) {
        ic->mine = true;
    } else if (!is_sibling_writer(ic->node, writer) && ic->len < sizeof(ic->others)) {
        int n = snprintf(ic->others + ic->len, sizeof(ic->others) - ic->len, "%s'%s'",
                         ic->len > 0 ? ", " : "", writer);
        ic->len = n < 0 ? sizeof(ic->others) : ic->len + (size_t)n;
    }
}

/* A renamed sink finds no positions under its new name and would write its
 * input again: say so, and how to keep the old positions. */
static void warn_renamed(struct sl_node *node, struct sqlite_sink *ss)
{
    const struct sqlite_conf *conf = node->cn->conf;
    struct identity_check ic = {.node = node};
    struct sl_err err = {0};

    if (conf->writer_id != NULL) {
        return; /* chosen on purpose: a new one starts from the beginning */
    }
    if (sl_sqlite_writer_writers(ss->w, on_writer, &ic, &err) != 0) {
        sl_log_warn("%s: %s", node->name, err.msg);
        return;
    }
    if (!ic.mine && ic.len > 0) {
        sl_log_warn("%s: no positions stored for writer '%s' in table %s, which holds positions "
                    "of %s: if this sink was renamed, set writer_id to its old name to keep them; "
                    "otherwise it starts from the beginning of its input",
                    node->name, writer_id_of(node), conf->table, ic.others);
    }
}

/* A writer identity is a name: another pipeline file whose sink has the
 * same name and writes this table from a source of the same name would
 * skip its records as already written by this one (a different filter
 * into one table). Not refused: the same pipeline read from another file
 * (a copy, a FIFO, a generated file) is common and must go on; said
 * unless writer_id names the identity on purpose, at start (closing:
 * false) and again at the end, when another file claimed it meanwhile
 * (two such pipelines started together). */
static void warn_shared_identity(struct sl_node *node, struct sqlite_sink *ss, bool closing)
{
    const struct sqlite_conf *conf = node->cn->conf;
    char self[PATH_MAX], last[PATH_MAX];
    const char *pipeline = sl_pipeline_identity(node->pl->conf->file, self, sizeof(self));

    for (size_t i = 0; i < node->pl->nnodes; i++) {
        struct sl_err err = {0};
        const char *source = node->pl->nodes[i].name;
        if (node->pl->nodes[i].cn->kind != SLUICE_KIND_SOURCE || sl_sink_copies(node, i) == 0) {
            continue;
        }
        int rc = sl_sqlite_writer_claim(ss->w, source, pipeline, last, sizeof(last), &err);
        if (rc < 0) {
            sl_log_warn("%s: %s", node->name, err.msg);
            return;
        }
        if (rc == 1 && conf->writer_id == NULL) {
            sl_log_warn("%s: writer '%s' of table %s (source '%s') was %s by another pipeline "
                        "file, %s: if that is another pipeline, give this sink a writer_id of its "
                        "own, since each skips what the other wrote as already written (set "
                        "writer_id to say that this is the same pipeline)",
                        node->name, writer_id_of(node), conf->table, source,
                        closing ? "used during this run" : "last used", last);
            return; /* once per sink */
        }
    }
}

static int sqlite_open(struct sl_node *node, struct sl_err *err)
{
    const struct sqlite_conf *conf = node->cn->conf;
    struct sqlite_sink *ss = sl_calloc(1, sizeof(*ss));
    struct sl_sqlite_writer_conf wc;

    if (ss == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    node->state = ss;
    pthread_mutex_init(&ss->lock, NULL);
    sl_sink_init(&ss->sink, node, sqlite_write, &conf->batch);
    if (fill_writer_conf(node, ss, &wc) != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    ss->sink.writes_own_dead = wc.dead_table != NULL;
    if (node != node->pl->dead_letter) {
        ss->sink.position = sqlite_position;
        ss->sink.stored_streams = sqlite_streams;
    }
    /* Another process may hold the database (it creates it too, or writes
     * a big transaction): wait for it like for a busy write. */
    for (unsigned attempt = 1;
         (ss->w = sl_sqlite_writer_open(&wc, err)) == NULL && err->code == SL_ERETRY &&
         sl_sink_retry_wait(&ss->sink, &ss->sink, attempt, err) == 0;
         attempt++) {
    }
    if (ss->w == NULL) {
        /* Named once: the retries' give-up message already is. */
        if (err->code == SL_ETIMEDOUT) {
            return err->code;
        }
        char msg[SL_ERR_MSG_MAX];
        memcpy(msg, err->msg, sizeof(msg));
        return sl_err_set(err, err->code ? err->code : SL_EIO, "%s: %s", node->name, msg);
    }
    if (ss->sink.position != NULL) {
        warn_shared_identity(node, ss, false);
        warn_renamed(node, ss);
    }
    return 0;
}

static void sqlite_close(struct sl_node *node)
{
    struct sqlite_sink *ss = node->state;

    if (ss == NULL) {
        return;
    }
    if (ss->w != NULL && ss->sink.position != NULL) {
        warn_shared_identity(node, ss, true);
    }
    sl_sqlite_writer_close(ss->w);
    sl_sink_release(&ss->sink);
    pthread_mutex_destroy(&ss->lock);
    sl_free(ss->columns);
    sl_free(ss->source_names);
    sl_free(ss);
    node->state = NULL;
}

const struct sl_node_type sl_stage_sqlite = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "sqlite",
            .description = "Writes records to a SQLite table, exactly once.",
            .kind = SLUICE_KIND_SINK,
            .flags = SLUICE_STAGE_BLOCKING,
            .conf_size = sizeof(struct sqlite_conf),
            .options = sqlite_options,
        },
    .check = sqlite_check,
    .open = sqlite_open,
    .process = sl_sink_node_process,
    .flush = sl_sink_node_flush,
    .close = sqlite_close,
    .fixed_bytes = sqlite_fixed_bytes,
};
