/* SPDX-License-Identifier: MIT */
/* Source positions of the SQLite writer: _sluice_checkpoints(tbl, stream,
 * partition, position, fingerprint), read and written inside the data's
 * transaction so that replays, zombies and lagging fan-out siblings are
 * trimmed, never duplicated (DESIGN "Checkpoints and delivery guarantees").
 * Runs on the writer's thread. */
#include "mem.h"
#include "sqlite_priv.h"

#include <string.h>

/* DESIGN's four columns plus the file fingerprint. "partition" is quoted: it
 * is a keyword (window functions). */
static const char ck_create[] =
    "CREATE TABLE IF NOT EXISTS _sluice_checkpoints(tbl TEXT, stream TEXT, \"partition\" INTEGER,"
    " position INTEGER, fingerprint TEXT, PRIMARY KEY(tbl, stream, \"partition\"))";
static const char ck_has_fp[] =
    "SELECT count(*) FROM pragma_table_info('_sluice_checkpoints') WHERE name = 'fingerprint'";
static const char ck_add_fp[] = "ALTER TABLE _sluice_checkpoints ADD COLUMN fingerprint TEXT";
static const char ck_get[] = "SELECT position, fingerprint FROM _sluice_checkpoints"
                             " WHERE tbl = ?1 AND stream = ?2 AND \"partition\" = ?3";
/* A NULL fingerprint (Kafka, or a source that has none) keeps the stored one. */
static const char ck_put[] =
    "INSERT INTO _sluice_checkpoints(tbl, stream, \"partition\", position, fingerprint)"
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(tbl, stream, \"partition\") DO UPDATE SET"
    " position = excluded.position, fingerprint = coalesce(excluded.fingerprint, fingerprint)";

/* Adds the fingerprint column to a table made with DESIGN's four columns. */
static int ensure_fingerprint(sqlite3 *db, struct sl_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, ck_has_fp, -1, &st, NULL);
    int has = 0;

    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        has = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
        rc = rc == SQLITE_ROW ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK) {
        rc = sl__sqlite_fail(db, rc, err, "reading _sluice_checkpoints");
        (void)sqlite3_finalize(st);
        return rc;
    }
    (void)sqlite3_finalize(st);
    if (has) {
        return 0;
    }
    rc = sqlite3_exec(db, ck_add_fp, NULL, NULL, NULL);
    if (rc != SQLITE_OK && strncmp(sqlite3_errmsg(db), "duplicate column name", 21) != 0) {
        return sl__sqlite_fail(db, rc, err, "adding the fingerprint column");
    }
    return 0;
}

int sl__sqlite_ck_open(struct sl_sqlite_writer *w, struct sl_err *err)
{
    int rc = sqlite3_exec(w->db, ck_create, NULL, NULL, NULL);

    if (rc != SQLITE_OK) {
        return sl__sqlite_fail(w->db, rc, err, "creating _sluice_checkpoints");
    }
    rc = ensure_fingerprint(w->db, err);
    if (rc != 0) {
        return rc;
    }
    rc = sqlite3_prepare_v3(w->db, ck_get, -1, SQLITE_PREPARE_PERSISTENT, &w->ck_get, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v3(w->db, ck_put, -1, SQLITE_PREPARE_PERSISTENT, &w->ck_put, NULL);
    }
    return rc == SQLITE_OK ? 0 : sl__sqlite_fail(w->db, rc, err, "preparing checkpoint statements");
}

/* Another file under the same path: both fingerprints known and different. */
static bool fp_differs(const char *batch_fp, const char *stored_fp)
{
    return batch_fp != NULL && stored_fp != NULL && strcmp(batch_fp, stored_fp) != 0;
}

static struct sl__sqlite_pos *pos_find(struct sl_sqlite_writer *w, const struct sl_batch *batch)
{
    for (uint32_t i = 0; i < w->npos; i++) {
        struct sl__sqlite_pos *p = &w->pos[i];
        if (p->partition == batch->partition && strcmp(p->stream, batch->stream_name) == 0) {
            return p;
        }
    }
    return NULL;
}

/* Binds (tbl, stream, partition) and steps ck_get: SQLITE_ROW or SQLITE_DONE
 * leave the row readable until the caller resets. */
static int get_row(struct sl_sqlite_writer *w, const char *stream, int32_t partition)
{
    int rc = sqlite3_bind_text(w->ck_get, 1, w->conf.table, -1, SQLITE_STATIC);

    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_text(w->ck_get, 2, stream, -1, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int(w->ck_get, 3, partition);
    }
    return rc == SQLITE_OK ? sqlite3_step(w->ck_get) : rc;
}

/* Reads the stored position of the batch's stream into a new entry. */
static int pos_read(struct sl_sqlite_writer *w,
                    const struct sl_batch *batch,
                    struct sl__sqlite_pos **ret,
                    struct sl_err *err)
{
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
    *p = (struct sl__sqlite_pos){batch->stream_name, batch->partition,   INT64_MIN,
                                 INT64_MIN,          batch->fingerprint, false};
    int rc = get_row(w, batch->stream_name, batch->partition);
    if (rc == SQLITE_ROW) {
        const char *fp = (const char *)sqlite3_column_text(w->ck_get, 1);
        p->pos = sqlite3_column_int64(w->ck_get, 0);
        if (fp_differs(batch->fingerprint, fp)) {
            p->pos = 0; /* the file was replaced: start over, store the new fingerprint */
            p->dirty = true;
        }
        p->next = p->pos;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        rc = sl__sqlite_fail(w->db, rc, err, "reading a position");
        (void)sqlite3_reset(w->ck_get);
        return rc;
    }
    (void)sqlite3_reset(w->ck_get);
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
    } else if (fp_differs(batch->fingerprint, p->fingerprint)) {
        p->pos = 0;
        p->next = 0;
        p->fingerprint = batch->fingerprint;
        p->dirty = true;
    } else if (p->fingerprint == NULL) {
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

static int put_row(struct sl_sqlite_writer *w, const struct sl__sqlite_pos *p)
{
    sqlite3_stmt *st = w->ck_put;
    int rc = sqlite3_bind_text(st, 1, w->conf.table, -1, SQLITE_STATIC);

    rc = rc == SQLITE_OK ? sqlite3_bind_text(st, 2, p->stream, -1, SQLITE_STATIC) : rc;
    rc = rc == SQLITE_OK ? sqlite3_bind_int(st, 3, p->partition) : rc;
    rc = rc == SQLITE_OK ? sqlite3_bind_int64(st, 4, p->next == INT64_MIN ? 0 : p->next) : rc;
    if (rc == SQLITE_OK && p->fingerprint != NULL) {
        rc = sqlite3_bind_text(st, 5, p->fingerprint, -1, SQLITE_STATIC);
    } else if (rc == SQLITE_OK) {
        rc = sqlite3_bind_null(st, 5);
    }
    rc = rc == SQLITE_OK ? sqlite3_step(st) : rc;
    (void)sqlite3_reset(st);
    return rc;
}

int sl__sqlite_ck_store(struct sl_sqlite_writer *w, struct sl_err *err)
{
    for (uint32_t i = 0; i < w->npos; i++) {
        if (!w->pos[i].dirty) {
            continue;
        }
        int rc = put_row(w, &w->pos[i]);
        if (rc != SQLITE_DONE) {
            return sl__sqlite_fail(w->db, rc, err, "storing a position");
        }
    }
    return 0;
}

int sl_sqlite_writer_position(struct sl_sqlite_writer *w,
                              const char *stream,
                              int32_t partition,
                              int64_t *ret_pos,
                              char *fingerprint,
                              size_t fingerprint_len,
                              struct sl_err *err)
{
    int rc = get_row(w, stream, partition);

    if (rc == SQLITE_ROW) {
        const char *fp = (const char *)sqlite3_column_text(w->ck_get, 1);
        *ret_pos = sqlite3_column_int64(w->ck_get, 0);
        if (fingerprint != NULL && fingerprint_len > 0) {
            size_t len = fp != NULL ? strlen(fp) : 0;
            len = len < fingerprint_len - 1 ? len : fingerprint_len - 1;
            memcpy(fingerprint, fp != NULL ? fp : "", len);
            fingerprint[len] = '\0';
        }
        rc = 0;
    } else if (rc == SQLITE_DONE) {
        rc = SL_EOF;
    } else {
        rc = sl__sqlite_fail(w->db, rc, err, "reading a position");
    }
    (void)sqlite3_reset(w->ck_get);
    return rc;
}
