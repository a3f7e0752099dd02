/* SPDX-License-Identifier: MIT */
/* Source positions in SQLite: the position store (sqlite_positions.h) and
 * the SQLite writer's use of it inside each transaction, so that replays,
 * zombies and lagging fan-out siblings are trimmed, never duplicated (DESIGN
 * "Checkpoints and delivery guarantees"). A position is keyed by (table,
 * writer, source, stream, partition): a sink trims only against what it
 * wrote itself from that source. Runs on the owning thread. */
#include "connectors/sqlite/sqlite_positions.h"
#include "mem.h"
#include "sqlite_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "partition" is quoted: it is a keyword (window functions). `level` is
 * the priority lane; `plan` names the priority settings the row was
 * written under (NULL: none), so that a changed setting is noticed. */
static const char ck_create[] =
    "CREATE TABLE IF NOT EXISTS _sluice_checkpoints(tbl TEXT NOT NULL, writer TEXT NOT NULL,"
    " source TEXT NOT NULL, stream TEXT NOT NULL, \"partition\" INTEGER NOT NULL,"
    " position INTEGER NOT NULL, fingerprint TEXT, level INTEGER NOT NULL DEFAULT 0, plan TEXT,"
    " PRIMARY KEY(tbl, writer, source, stream, \"partition\", level));"
    "CREATE TABLE IF NOT EXISTS _sluice_writers(tbl TEXT NOT NULL, writer TEXT NOT NULL,"
    " source TEXT NOT NULL, pipeline TEXT NOT NULL, PRIMARY KEY(tbl, writer, source))";
/* Every lane of a key, its own first. */
static const char ck_get[] =
    "SELECT position, fingerprint, level, plan FROM _sluice_checkpoints WHERE tbl = ?1"
    " AND writer = ?2 AND source = ?3 AND stream = ?4 AND \"partition\" = ?5"
    " ORDER BY level != ?8, level";
/* A NULL fingerprint (Kafka, or a source that has none) keeps the stored one. */
static const char ck_put[] =
    "INSERT INTO _sluice_checkpoints(tbl, writer, source, stream, \"partition\", position,"
    " fingerprint, level, plan) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    " ON CONFLICT(tbl, writer, source, stream, \"partition\", level) DO UPDATE SET"
    " position = excluded.position, fingerprint = coalesce(excluded.fingerprint, fingerprint),"
    " plan = excluded.plan";
static const char ck_others[] =
    "SELECT 1 FROM _sluice_checkpoints WHERE tbl = ?1 AND writer = ?2 AND source = ?3"
    " AND stream = ?4 AND \"partition\" = ?5 AND plan IS NOT ?9 LIMIT 1";
static const char ck_forget[] =
    "DELETE FROM _sluice_checkpoints WHERE tbl = ?1 AND writer = ?2 AND source = ?3"
    " AND stream = ?4 AND \"partition\" = ?5 AND plan IS NOT ?9";
static const char ck_seed[] =
    "INSERT OR IGNORE INTO _sluice_checkpoints(tbl, writer, source, stream, \"partition\","
    " position, fingerprint, level, plan) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
static const char ck_writers[] =
    "SELECT DISTINCT writer FROM _sluice_checkpoints WHERE tbl = ?1 ORDER BY writer";
/* The layout before priority lanes, rebuilt with lane 0. */
static const char ck_rebuild[] =
    "ALTER TABLE _sluice_checkpoints RENAME TO _sluice_checkpoints_v2;"
    "CREATE TABLE _sluice_checkpoints(tbl TEXT NOT NULL, writer TEXT NOT NULL,"
    " source TEXT NOT NULL, stream TEXT NOT NULL, \"partition\" INTEGER NOT NULL,"
    " position INTEGER NOT NULL, fingerprint TEXT, level INTEGER NOT NULL DEFAULT 0, plan TEXT,"
    " PRIMARY KEY(tbl, writer, source, stream, \"partition\", level));"
    "INSERT INTO _sluice_checkpoints(tbl, writer, source, stream, \"partition\", position,"
    " fingerprint) SELECT tbl, writer, source, stream, \"partition\", position, fingerprint"
    " FROM _sluice_checkpoints_v2;"
    "DROP TABLE _sluice_checkpoints_v2";
/* The layout before positions named their writer, kept for adoption. */
static const char ck_legacy_fp[] =
    "SELECT position, fingerprint FROM _sluice_checkpoints_v1 WHERE tbl = ?1 AND stream = ?4"
    " AND \"partition\" = ?5";
static const char ck_legacy_nofp[] =
    "SELECT position, NULL FROM _sluice_checkpoints_v1 WHERE tbl = ?1 AND stream = ?4"
    " AND \"partition\" = ?5";

/* ==== The store ==== */

/* -1: no such table; 0: the table lacks the column; 1: it has it. */
static int column_state(sqlite3 *db, const char *table, const char *col, int *ret)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                                " AND name = ?1), (SELECT count(*) FROM pragma_table_info(?1)"
                                " WHERE name = ?2)",
                                -1, &st, NULL);

    if (rc == SQLITE_OK) {
        (void)sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        (void)sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
        *ret = sqlite3_column_int(st, 0) == 0 ? -1 : sqlite3_column_int(st, 1) > 0;
        rc = SQLITE_OK;
    }
    (void)sqlite3_finalize(st);
    return rc;
}

/* Inside BEGIN IMMEDIATE: moves an older-layout _sluice_checkpoints aside
 * (merging into a _sluice_checkpoints_v1 left by another file's move). */
static int move_legacy(sqlite3 *db)
{
    int v1 = 0;
    int rc = column_state(db, "_sluice_checkpoints_v1", "tbl", &v1);

    if (rc != SQLITE_OK) {
        return rc;
    }
    if (v1 < 0) {
        return sqlite3_exec(db, "ALTER TABLE _sluice_checkpoints RENAME TO _sluice_checkpoints_v1",
                            NULL, NULL, NULL);
    }
    rc = sqlite3_exec(db,
                      "INSERT OR IGNORE INTO _sluice_checkpoints_v1(tbl, stream, \"partition\","
                      " position) SELECT tbl, stream, \"partition\", position"
                      " FROM _sluice_checkpoints",
                      NULL, NULL, NULL);
    return rc == SQLITE_OK ? sqlite3_exec(db, "DROP TABLE _sluice_checkpoints", NULL, NULL, NULL)
                           : rc;
}

/* Creates the table, moving an older layout aside (no writer) or
 * rebuilding it with lanes (no level) first. Another process may race us:
 * BEGIN IMMEDIATE serialises, and the check is redone inside. */
static int create_table(sqlite3 *db, struct sl_err *err)
{
    int writer = 0, level = 0;
    int rc = column_state(db, "_sluice_checkpoints", "writer", &writer);

    rc = rc == SQLITE_OK ? column_state(db, "_sluice_checkpoints", "level", &level) : rc;
    if (rc == SQLITE_OK && (writer == 0 || level == 0)) {
        rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        if (rc == SQLITE_OK) {
            rc = column_state(db, "_sluice_checkpoints", "writer", &writer);
        }
        if (rc == SQLITE_OK) {
            rc = column_state(db, "_sluice_checkpoints", "level", &level);
        }
        if (rc == SQLITE_OK && writer == 0) {
            rc = move_legacy(db);
        } else if (rc == SQLITE_OK && level == 0) {
            rc = sqlite3_exec(db, ck_rebuild, NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK) {
            rc = sqlite3_exec(db, ck_create, NULL, NULL, NULL);
        }
        if (rc == SQLITE_OK) {
            rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        }
        if (rc != SQLITE_OK) {
            int keep = rc;
            rc = sl__sqlite_fail(db, keep, err, "moving the old _sluice_checkpoints aside");
            (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        return 0;
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db, ck_create, NULL, NULL, NULL);
    }
    return rc == SQLITE_OK ? 0 : sl__sqlite_fail(db, rc, err, "creating _sluice_checkpoints");
}

static int prepare_legacy(struct sl_pos_store *ps, struct sl_err *err)
{
    int state = 0;
    int rc = column_state(ps->db, "_sluice_checkpoints_v1", "fingerprint", &state);

    if (rc == SQLITE_OK && state >= 0) {
        ps->legacy_fp = state > 0;
        rc = sqlite3_prepare_v3(ps->db, state ? ck_legacy_fp : ck_legacy_nofp, -1,
                                SQLITE_PREPARE_PERSISTENT, &ps->legacy, NULL);
    }
    return rc == SQLITE_OK ? 0 : sl__sqlite_fail(ps->db, rc, err, "reading old positions");
}

int sl_pos_store_open(struct sl_pos_store *ps, sqlite3 *db, struct sl_err *err)
{
    int rc;

    memset(ps, 0, sizeof(*ps));
    ps->db = db;
    if ((rc = create_table(db, err)) != 0 || (rc = prepare_legacy(ps, err)) != 0) {
        return rc;
    }
    const char *const sql[] = {ck_get, ck_put, ck_writers, ck_others, ck_forget, ck_seed};
    sqlite3_stmt **st[] = {&ps->get, &ps->put, &ps->writers, &ps->others, &ps->forget, &ps->seed};
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
        rc = sqlite3_prepare_v3(db, sql[i], -1, SQLITE_PREPARE_PERSISTENT, st[i], NULL);
        if (rc != SQLITE_OK) {
            return sl__sqlite_fail(db, rc, err, "preparing checkpoint statements");
        }
    }
    return 0;
}

void sl_pos_store_close(struct sl_pos_store *ps)
{
    if (ps == NULL) {
        return;
    }
    (void)sqlite3_finalize(ps->get);
    (void)sqlite3_finalize(ps->put);
    (void)sqlite3_finalize(ps->legacy);
    (void)sqlite3_finalize(ps->writers);
    (void)sqlite3_finalize(ps->others);
    (void)sqlite3_finalize(ps->forget);
    (void)sqlite3_finalize(ps->seed);
    memset(ps, 0, sizeof(*ps));
}

static int bind_key(sqlite3_stmt *st, const struct sl_pos_key *key)
{
    int rc = sqlite3_bind_text(st, 1, key->table, -1, SQLITE_STATIC);

    /* The legacy statement has no ?2 or ?3: binding them is SQLITE_RANGE. */
    if (rc == SQLITE_OK && sqlite3_bind_parameter_index(st, "?2") > 0) {
        rc = sqlite3_bind_text(st, 2, key->writer, -1, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK && sqlite3_bind_parameter_index(st, "?3") > 0) {
        rc = sqlite3_bind_text(st, 3, key->source, -1, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_text(st, 4, key->stream, -1, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK && sqlite3_bind_parameter_index(st, "?8") > 0) {
        rc = sqlite3_bind_int(st, 8, key->level);
    }
    return rc == SQLITE_OK ? sqlite3_bind_int(st, 5, key->partition) : rc;
}

/* Steps st for key: SQLITE_ROW copies the row out. Resets st. */
static int
read_row(sqlite3_stmt *st, const struct sl_pos_key *key, int64_t *pos, char *fp, size_t n)
{
    int rc = bind_key(st, key);

    rc = rc == SQLITE_OK ? sqlite3_step(st) : rc;
    if (rc == SQLITE_ROW) {
        const char *f = (const char *)sqlite3_column_text(st, 1);
        *pos = sqlite3_column_int64(st, 0);
        if (fp != NULL && n > 0) {
            snprintf(fp, n, "%s", f != NULL ? f : "");
        }
    }
    (void)sqlite3_reset(st);
    return rc;
}

static bool same_plan(const char *a, const char *b)
{
    return (a == NULL || a[0] == '\0') ? (b == NULL || b[0] == '\0')
                                       : (b != NULL && strcmp(a, b) == 0);
}

/* The lanes a plan had: "<mask hex>:<hash>", none (NULL) is lane 0 only. */
static unsigned plan_lanes(const char *plan)
{
    return plan == NULL || plan[0] == '\0' ? 1u : (unsigned)strtoul(plan, NULL, 16);
}

/* One plan's rows of a key, while reading them. */
struct plan_rows {
    char plan[SL_POS_PLAN_MAX];
    unsigned lanes; /* lanes with a row */
    int64_t min;
    int64_t max;
    char fp[128]; /* beside min */
};

/* read_lanes: the settings changed while lanes stood apart. */
#define LANES_APART (-2)

/* Reads key's lanes into *ret_pos / fp (see sl_pos_store_get). SQLITE_ROW
 * when a position applies, SQLITE_DONE when none does, LANES_APART with
 * the lowest and highest positions in *ret_pos and fp (as text). */
static int read_lanes(struct sl_pos_store *ps,
                      const struct sl_pos_key *key,
                      int64_t *ret_pos,
                      char *fp,
                      size_t fp_len)
{
    struct plan_rows old[4];
    size_t nold = 0;
    bool any = false, changed = false, overflow = false;
    sqlite3_stmt *st = ps->get;
    int rc = bind_key(st, key);

    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t pos = sqlite3_column_int64(st, 0);
        const char *f = (const char *)sqlite3_column_text(st, 1);
        int level = sqlite3_column_int(st, 2);
        const char *plan = (const char *)sqlite3_column_text(st, 3);
        rc = SQLITE_OK;
        if (!any && level == key->level && same_plan(plan, key->plan)) {
            /* Its own lane, under the same settings (ordered first). */
            *ret_pos = pos;
            snprintf(fp, fp_len, "%s", f != NULL ? f : "");
            (void)sqlite3_reset(st);
            return SQLITE_ROW;
        }
        any = true;
        if (same_plan(plan, key->plan)) {
            continue; /* a lane written since the settings changed */
        }
        changed = true;
        size_t i = 0;
        while (i < nold && !same_plan(old[i].plan, plan)) {
            i++;
        }
        if (i == nold && nold == sizeof(old) / sizeof(old[0])) {
            overflow = true;
            continue;
        }
        if (i == nold) {
            nold++;
            snprintf(old[i].plan, sizeof(old[i].plan), "%s", plan != NULL ? plan : "");
            old[i].lanes = 0;
            old[i].min = pos;
            old[i].max = pos;
            snprintf(old[i].fp, sizeof(old[i].fp), "%s", f != NULL ? f : "");
        }
        old[i].lanes |= level >= 0 && level < 32 ? 1u << level : 0;
        if (pos < old[i].min) {
            old[i].min = pos;
            snprintf(old[i].fp, sizeof(old[i].fp), "%s", f != NULL ? f : "");
        }
        old[i].max = pos > old[i].max ? pos : old[i].max;
    }
    (void)sqlite3_reset(st);
    if (rc != SQLITE_DONE || !changed) {
        return rc; /* an error, or this lane never committed under these settings */
    }
    /* The priority settings changed since these rows were written: below
     * the lowest position of a complete earlier setting, every record was
     * written in some lane. One with a lane that never committed, or too
     * many settings to follow, gives nothing (read again: at least once).
     * Lanes apart (a run that stopped with a level ahead): the records
     * between were written by their old level, which the new settings
     * cannot tell; neither trimming nor writing them is right. */
    for (size_t i = 0; i < nold; i++) {
        if (!overflow && old[i].min != old[i].max) {
            *ret_pos = old[i].min;
            snprintf(fp, fp_len, "%lld", (long long)old[i].max);
            return LANES_APART;
        }
    }
    *ret_pos = INT64_MAX;
    for (size_t i = 0; i < nold; i++) {
        int64_t pos =
            overflow || (old[i].lanes & plan_lanes(old[i].plan)) != plan_lanes(old[i].plan)
                ? 0
                : old[i].min;
        if (pos < *ret_pos) {
            *ret_pos = pos;
            snprintf(fp, fp_len, "%s", old[i].fp);
        }
    }
    return SQLITE_ROW;
}

static int
apart_err(const struct sl_pos_key *key, int64_t low, const char *high, struct sl_err *err)
{
    /* A source error names the file already: this must fit SL_ERR_MSG_MAX. */

    return sl_err_set(err, SL_EFATAL,
                      "sink %s: settings changed since a run stopped with priority levels apart "
                      "(positions %lld to %s): records between may have changed level; run the "
                      "old settings to a clean stop first (end of input or SIGINT)",
                      key->writer, (long long)low, high);
}

int sl_pos_store_get(struct sl_pos_store *ps,
                     const struct sl_pos_key *key,
                     int64_t *ret_pos,
                     char *fp,
                     size_t fp_len,
                     struct sl_err *err)
{
    char own[32];
    char *buf = fp != NULL && fp_len >= sizeof(own) ? fp : own;
    int rc = read_lanes(ps, key, ret_pos, buf, buf == fp ? fp_len : sizeof(own));

    if (buf != fp && fp != NULL && fp_len > 0) {
        snprintf(fp, fp_len, "%s", own);
    }

    if (rc == SQLITE_DONE && ps->legacy != NULL) {
        /* Written before positions named their writer: every writer of the
         * table adopts it (the old layout shared one position per table). */
        rc = read_row(ps->legacy, key, ret_pos, fp, fp_len);
    }
    if (rc == SQLITE_ROW) {
        return 0;
    }
    if (rc == LANES_APART) {
        return apart_err(key, *ret_pos, buf, err);
    }
    return rc == SQLITE_DONE ? SL_EOF : sl__sqlite_fail(ps->db, rc, err, "reading a position");
}

/* Binds key, the plan as ?9, and steps st once; resets it. */
static int step_plan(sqlite3_stmt *st, const struct sl_pos_key *key)
{
    int rc = bind_key(st, key);

    if (rc == SQLITE_OK) {
        rc = key->plan != NULL ? sqlite3_bind_text(st, 9, key->plan, -1, SQLITE_STATIC)
                               : sqlite3_bind_null(st, 9);
    }
    rc = rc == SQLITE_OK ? sqlite3_step(st) : rc;
    (void)sqlite3_reset(st);
    return rc;
}

/* The priority settings changed: every lane of key's plan gets a row at
 * the position the old rows give, then the old rows go. */
static int adopt_plan(struct sl_pos_store *ps, const struct sl_pos_key *key, struct sl_err *err)
{
    struct sl_pos_key lane = *key;
    int64_t from = 0;
    char fp[128] = "";
    int rc;

    lane.level = 0xFF; /* no lane's own: the fallback over the old rows */
    rc = read_lanes(ps, &lane, &from, fp, sizeof(fp));
    if (rc == LANES_APART) {
        return apart_err(key, from, fp, err);
    }
    if (rc != SQLITE_ROW) {
        return rc == SQLITE_DONE ? 0 : sl__sqlite_fail(ps->db, rc, err, "storing a position");
    }
    rc = step_plan(ps->forget, key);
    for (unsigned l = 0; rc == SQLITE_DONE && l < 16; l++) {
        if (((plan_lanes(key->plan) >> l) & 1u) == 0) {
            continue;
        }
        lane.level = (uint8_t)l;
        rc = bind_key(ps->seed, &lane);
        rc = rc == SQLITE_OK ? sqlite3_bind_int64(ps->seed, 6, from) : rc;
        rc = rc == SQLITE_OK ? sqlite3_bind_text(ps->seed, 7, fp, -1, SQLITE_TRANSIENT) : rc;
        rc = rc == SQLITE_OK ? step_plan(ps->seed, &lane) : rc;
    }
    return rc == SQLITE_DONE ? 0 : sl__sqlite_fail(ps->db, rc, err, "storing a position");
}

int sl_pos_store_put(struct sl_pos_store *ps,
                     const struct sl_pos_key *key,
                     int64_t pos,
                     const char *fp,
                     struct sl_err *err)
{
    sqlite3_stmt *st = ps->put;
    int rc = step_plan(ps->others, key);

    if (rc == SQLITE_ROW && (rc = adopt_plan(ps, key, err)) != 0) {
        return rc;
    }
    if (rc != SQLITE_DONE && rc != 0) {
        return sl__sqlite_fail(ps->db, rc, err, "storing a position");
    }
    rc = bind_key(st, key);

    rc = rc == SQLITE_OK ? sqlite3_bind_int64(st, 6, pos) : rc;
    if (rc == SQLITE_OK) {
        rc =
            fp != NULL ? sqlite3_bind_text(st, 7, fp, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 7);
    }
    if (rc == SQLITE_OK) {
        rc = key->plan != NULL ? sqlite3_bind_text(st, 9, key->plan, -1, SQLITE_STATIC)
                               : sqlite3_bind_null(st, 9);
    }
    rc = rc == SQLITE_OK ? sqlite3_step(st) : rc;
    (void)sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sl__sqlite_fail(ps->db, rc, err, "storing a position");
}

int sl_pos_store_writers(struct sl_pos_store *ps,
                         const char *table,
                         void (*fn)(void *arg, const char *writer),
                         void *arg,
                         struct sl_err *err)
{
    sqlite3_stmt *st = ps->writers;
    int rc = sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);

    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *w = (const char *)sqlite3_column_text(st, 0);
        fn(arg, w != NULL ? w : "");
        rc = SQLITE_OK;
    }
    (void)sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sl__sqlite_fail(ps->db, rc, err, "reading writers");
}

/* Runs sql once with its parameters bound in turn to vals (as many as it
 * has); copies the text of a row's first column into out (when not NULL).
 * SQLITE_DONE or an SQLite error. */
static int
run_owner(sqlite3 *db, const char *sql, const char *const *vals, char *out, size_t out_len)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

    for (int i = 1; rc == SQLITE_OK && i <= sqlite3_bind_parameter_count(st); i++) {
        rc = sqlite3_bind_text(st, i, vals[i - 1], -1, SQLITE_STATIC);
    }
    rc = rc == SQLITE_OK ? sqlite3_step(st) : rc;
    if (rc == SQLITE_ROW && out != NULL) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        snprintf(out, out_len, "%s", text != NULL ? text : "");
    }
    (void)sqlite3_finalize(st);
    return rc == SQLITE_ROW ? SQLITE_DONE : rc;
}

/* The connection's busy timeout in ms (PRAGMA busy_timeout), or -1. */
static int busy_ms(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int ms = -1;

    if (sqlite3_prepare_v2(db, "PRAGMA busy_timeout", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        ms = sqlite3_column_int(st, 0);
    }
    (void)sqlite3_finalize(st);
    return ms;
}

int sl_pos_store_claim(struct sl_pos_store *ps,
                       const char *table,
                       const char *writer,
                       const char *source,
                       const char *pipeline,
                       char *last,
                       size_t last_len,
                       struct sl_err *err)
{
    const char *const vals[] = {table, writer, source, pipeline};
    /* A read (WAL: never waits for a writer of another process); the note
     * only when it changes, and only if the write lock is free at once: a
     * sink must not wait at its start for another process's transaction
     * (a Kafka member joining its group late stalled a rebalance), and a
     * note missed now is taken next time. */
    int rc;

    last[0] = '\0';
    rc = run_owner(ps->db,
                   "SELECT pipeline FROM _sluice_writers WHERE tbl = ?1 AND writer = ?2"
                   " AND source = ?3",
                   vals, last, last_len);

    if (rc == SQLITE_DONE && strcmp(last, pipeline) != 0) {
        int keep_ms = busy_ms(ps->db);
        (void)sqlite3_busy_timeout(ps->db, 0);
        int wrc = run_owner(ps->db,
                            "INSERT INTO _sluice_writers(tbl, writer, source, pipeline)"
                            " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(tbl, writer, source)"
                            " DO UPDATE SET pipeline = excluded.pipeline",
                            vals, NULL, 0);
        (void)sqlite3_busy_timeout(ps->db, keep_ms > 0 ? keep_ms : 0);
        rc = wrc == SQLITE_BUSY || wrc == SQLITE_LOCKED ? SQLITE_DONE : wrc;
    }
    if (rc != SQLITE_DONE) {
        return sl__sqlite_fail(ps->db, rc, err, "noting the writer's pipeline");
    }
    return last[0] != '\0' && strcmp(last, pipeline) != 0 ? 1 : 0;
}

/* Runs sql (?1 table, ?2 writer, ?3 source) and calls fn per row. */
static int each_stream(struct sl_pos_store *ps,
                       const char *sql,
                       const struct sl_pos_key *key,
                       void (*fn)(void *arg, const char *stream, const char *fp),
                       void *arg,
                       struct sl_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(ps->db, sql, -1, &st, NULL);

    for (int i = 1; rc == SQLITE_OK && i <= sqlite3_bind_parameter_count(st); i++) {
        rc = sqlite3_bind_text(st, i,
                               i == 1   ? key->table
                               : i == 2 ? key->writer
                                        : key->source,
                               -1, SQLITE_STATIC);
    }
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *stream = (const char *)sqlite3_column_text(st, 0);
        fn(arg, stream != NULL ? stream : "", (const char *)sqlite3_column_text(st, 1));
        rc = SQLITE_OK;
    }
    if (rc != SQLITE_DONE) {
        rc = sl__sqlite_fail(ps->db, rc, err, "reading stored streams");
    } else {
        rc = 0;
    }
    (void)sqlite3_finalize(st);
    return rc;
}

int sl_pos_store_streams(struct sl_pos_store *ps,
                         const struct sl_pos_key *key,
                         void (*fn)(void *arg, const char *stream, const char *fp),
                         void *arg,
                         struct sl_err *err)
{
    int rc =
        each_stream(ps,
                    "SELECT stream, fingerprint FROM _sluice_checkpoints WHERE tbl = ?1"
                    " AND writer = ?2 AND source = ?3 AND \"partition\" = 0 AND level = ("
                    "SELECT min(level) FROM _sluice_checkpoints AS o WHERE o.tbl = ?1 AND"
                    " o.writer = ?2 AND o.source = ?3 AND o.stream = _sluice_checkpoints.stream"
                    " AND o.\"partition\" = 0)",
                    key, fn, arg, err);

    if (rc == 0 && ps->legacy != NULL) {
        /* The older layout: adopted by every writer (sl_pos_store_get). */
        const char *sql = ps->legacy_fp ? "SELECT stream, fingerprint FROM _sluice_checkpoints_v1"
                                          " WHERE tbl = ?1 AND \"partition\" = 0"
                                        : "SELECT stream, NULL FROM _sluice_checkpoints_v1"
                                          " WHERE tbl = ?1 AND \"partition\" = 0";
        rc = each_stream(ps, sql, key, fn, arg, err);
    }
    return rc;
}

/* ==== The writer's positions during a write call ==== */

static const char *source_of(const struct sl_sqlite_writer *w, const struct sl_batch *batch)
{
    const char *name = batch->source < w->conf.nsource_names && w->conf.source_names != NULL
                           ? w->conf.source_names[batch->source]
                           : NULL;

    return name != NULL ? name : "";
}

static const char *plan_of(const struct sl_sqlite_writer *w, const struct sl_batch *batch)
{
    return w->conf.plans != NULL && batch->source < w->conf.nsource_names
               ? w->conf.plans[batch->source]
               : NULL;
}

static struct sl_pos_key key_of(const struct sl_sqlite_writer *w, const struct sl__sqlite_pos *p)
{
    return (struct sl_pos_key){w->conf.table, w->conf.writer_id, p->source_name, p->stream,
                               p->partition,  p->level,          p->plan};
}

/* A Kafka offset reset: the batch's epoch is not the stored one. (A file's
 * fingerprint only describes it: its identity is the stream key.) */
static bool epoch_differs(const struct sl_batch *batch, const char *stored_fp)
{
    return batch->fingerprint_is_epoch && batch->fingerprint != NULL && stored_fp != NULL &&
           stored_fp[0] != '\0' && strcmp(batch->fingerprint, stored_fp) != 0;
}

static struct sl__sqlite_pos *pos_find(struct sl_sqlite_writer *w, const struct sl_batch *batch)
{
    for (uint32_t i = 0; i < w->npos; i++) {
        struct sl__sqlite_pos *p = &w->pos[i];
        if (p->source == batch->source && p->partition == batch->partition &&
            p->level == batch->level && strcmp(p->stream, batch->stream_name) == 0) {
            return p;
        }
    }
    return NULL;
}

/* Reads the stored position of the batch's stream into a new entry. */
static int pos_read(struct sl_sqlite_writer *w,
                    const struct sl_batch *batch,
                    struct sl__sqlite_pos **ret,
                    struct sl_err *err)
{
    char fp[128];

    if (w->npos == w->pos_cap) {
        uint32_t cap = w->pos_cap ? w->pos_cap * 2 : 8;
        struct sl__sqlite_pos *p = sl_realloc(w->pos, cap * sizeof(*p));
        if (p == NULL) {
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
        w->pos = p;
        w->pos_cap = cap;
    }
    struct sl__sqlite_pos *p = &w->pos[w->npos];
    *p = (struct sl__sqlite_pos){.source = batch->source,
                                 .source_name = source_of(w, batch),
                                 .stream = batch->stream_name,
                                 .partition = batch->partition,
                                 .level = batch->level,
                                 .plan = plan_of(w, batch),
                                 .pos = INT64_MIN,
                                 .next = INT64_MIN,
                                 .fingerprint = batch->fingerprint};
    struct sl_pos_key key = key_of(w, p);
    int64_t pos = 0;
    int rc = sl_pos_store_get(&w->file->ps, &key, &pos, fp, sizeof(fp), err);
    if (rc == 0) {
        p->pos = pos;
        if (epoch_differs(batch, fp)) {
            p->pos = 0; /* the offsets were reset: start over, store the new epoch */
            p->dirty = true;
        }
        p->next = p->pos;
    } else if (rc != SL_EOF) {
        return rc;
    }
    w->npos++;
    *ret = p;
    return 0;
}

int sl__sqlite_ck_begin(struct sl_sqlite_writer *w,
                        const struct sl_batch *batch,
                        int64_t *ret_pos,
                        struct sl_err *err)
{
    struct sl__sqlite_pos *p;

    if (batch->stream_name == NULL) {
        *ret_pos = INT64_MIN;
        return 0;
    }
    p = pos_find(w, batch);
    if (p == NULL) {
        int rc = pos_read(w, batch, &p, err);
        if (rc != 0) {
            return rc;
        }
    } else if (epoch_differs(batch, p->fingerprint)) {
        p->pos = 0;
        p->next = 0;
        p->fingerprint = batch->fingerprint;
        p->dirty = true;
    } else if (batch->fingerprint != NULL) {
        /* The stream key is the file's identity; the fingerprint beside it
         * follows the file's latest name. */
        p->fingerprint = batch->fingerprint;
    }
    *ret_pos = p->pos;
    return 0;
}

void sl__sqlite_ck_advance(struct sl_sqlite_writer *w, const struct sl_batch *batch)
{
    struct sl__sqlite_pos *p = batch->stream_name != NULL ? pos_find(w, batch) : NULL;

    if (p != NULL && batch->pos_end > p->next) {
        p->next = batch->pos_end;
        p->dirty = true;
    }
}

int sl__sqlite_ck_store(struct sl_sqlite_writer *w, struct sl_err *err)
{
    for (uint32_t i = 0; i < w->npos; i++) {
        const struct sl__sqlite_pos *p = &w->pos[i];
        if (!p->dirty) {
            continue;
        }
        struct sl_pos_key key = key_of(w, p);
        int rc = sl_pos_store_put(&w->file->ps, &key, p->next == INT64_MIN ? 0 : p->next,
                                  p->fingerprint, err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int sl_sqlite_writer_position(struct sl_sqlite_writer *w,
                              const char *source,
                              const char *stream,
                              int32_t partition,
                              uint8_t level,
                              const char *plan,
                              int64_t *ret_pos,
                              char *fingerprint,
                              size_t fingerprint_len,
                              struct sl_err *err)
{
    struct sl_pos_key key = {w->conf.table, w->conf.writer_id, source, stream, partition, level,
                             plan};

    sl__sqlite_file_take(w->file, SL__SQLITE_SHORT);
    int rc = sl_pos_store_get(&w->file->ps, &key, ret_pos, fingerprint, fingerprint_len, err);
    sl__sqlite_file_give(w->file);
    return rc;
}

int sl_sqlite_writer_streams(struct sl_sqlite_writer *w,
                             const char *source,
                             void (*fn)(void *arg, const char *stream, const char *fp),
                             void *arg,
                             struct sl_err *err)
{
    struct sl_pos_key key = {w->conf.table, w->conf.writer_id, source, NULL, 0, 0, NULL};

    sl__sqlite_file_take(w->file, SL__SQLITE_SHORT);
    int rc = sl_pos_store_streams(&w->file->ps, &key, fn, arg, err);
    sl__sqlite_file_give(w->file);
    return rc;
}

int sl_sqlite_writer_writers(struct sl_sqlite_writer *w,
                             void (*fn)(void *arg, const char *writer),
                             void *arg,
                             struct sl_err *err)
{
    sl__sqlite_file_take(w->file, SL__SQLITE_SHORT);
    int rc = sl_pos_store_writers(&w->file->ps, w->conf.table, fn, arg, err);
    sl__sqlite_file_give(w->file);
    return rc;
}

int sl_sqlite_writer_claim(struct sl_sqlite_writer *w,
                           const char *source,
                           const char *pipeline,
                           char *last,
                           size_t last_len,
                           struct sl_err *err)
{
    sl__sqlite_file_take(w->file, SL__SQLITE_SHORT);
    int rc = sl_pos_store_claim(&w->file->ps, w->conf.table, w->conf.writer_id, source, pipeline,
                                last, last_len, err);
    sl__sqlite_file_give(w->file);
    return rc;
}
