/* SPDX-License-Identifier: MIT */
/* A file source's own position store (see file_checkpoint.h). */
#include "connectors/file/file_checkpoint.h"

#include "fsutil.h"
#include "mem.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

struct sl_file_ckpt {
    sqlite3 *db;
    sqlite3_stmt *get;
    sqlite3_stmt *put;
    char *tbl; /* "_sluice_source:<node>" */
};

static const char create_sql[] =
    "CREATE TABLE IF NOT EXISTS _sluice_checkpoints(tbl TEXT NOT NULL, stream TEXT NOT NULL, "
    "partition INTEGER NOT NULL, position INTEGER NOT NULL, fingerprint TEXT, "
    "PRIMARY KEY(tbl, stream, partition))";

static int fail(struct sl_file_ckpt *ck, struct sl_err *err, const char *what)
{
    return sl_err_set(err, SL_EIO, "checkpoints: %s: %s", what,
                      ck->db != NULL ? sqlite3_errmsg(ck->db) : "cannot open");
}

struct sl_file_ckpt *sl_file_ckpt_open(const char *path, const char *name, struct sl_err *err)
{
    struct sl_file_ckpt *ck = sl_calloc(1, sizeof(*ck));
    size_t n = strlen(name) + sizeof("_sluice_source:");

    if (ck == NULL || (ck->tbl = sl_malloc(n)) == NULL) {
        sl_free(ck);
        sl_err_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(ck->tbl, n, "_sluice_source:%s", name);
    if (sl_mkdir_parents(path) != 0 || sqlite3_open(path, &ck->db) != SQLITE_OK ||
        sqlite3_busy_timeout(ck->db, 5000) != SQLITE_OK ||
        sqlite3_exec(ck->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(ck->db, create_sql, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(ck->db,
                           "SELECT position, fingerprint FROM _sluice_checkpoints "
                           "WHERE tbl = ?1 AND stream = ?2 AND partition = 0",
                           -1, &ck->get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(ck->db,
                           "INSERT INTO _sluice_checkpoints VALUES(?1, ?2, 0, ?3, ?4) "
                           "ON CONFLICT(tbl, stream, partition) DO UPDATE SET "
                           "position = excluded.position, fingerprint = excluded.fingerprint",
                           -1, &ck->put, NULL) != SQLITE_OK) {
        char msg[SL_ERR_MSG_MAX];
        snprintf(msg, sizeof(msg), "%s", ck->db != NULL ? sqlite3_errmsg(ck->db) : "cannot open");
        sl_err_set(err, SL_EIO, "checkpoints: %s: %s", path, msg);
        sl_file_ckpt_close(ck);
        return NULL;
    }
    return ck;
}

struct sl_file_ckpt *sl_file_ckpt_close(struct sl_file_ckpt *ck)
{
    if (ck == NULL) {
        return NULL;
    }
    sqlite3_finalize(ck->get);
    sqlite3_finalize(ck->put);
    sqlite3_close(ck->db);
    sl_free(ck->tbl);
    sl_free(ck);
    return NULL;
}

int sl_file_ckpt_get(struct sl_file_ckpt *ck,
                     const char *stream,
                     int64_t *ret_pos,
                     char *fp,
                     size_t fp_len,
                     struct sl_err *err)
{
    int rc;

    sqlite3_bind_text(ck->get, 1, ck->tbl, -1, SQLITE_STATIC);
    sqlite3_bind_text(ck->get, 2, stream, -1, SQLITE_STATIC);
    rc = sqlite3_step(ck->get);
    if (rc == SQLITE_ROW) {
        const unsigned char *f = sqlite3_column_text(ck->get, 1);
        *ret_pos = sqlite3_column_int64(ck->get, 0);
        snprintf(fp, fp_len, "%s", f != NULL ? (const char *)f : "");
    }
    sqlite3_reset(ck->get);
    if (rc == SQLITE_ROW) {
        return 0;
    }
    return rc == SQLITE_DONE ? SL_EOF : fail(ck, err, "reading a position");
}

int sl_file_ckpt_put(
    struct sl_file_ckpt *ck, const char *stream, int64_t pos, const char *fp, struct sl_err *err)
{
    sqlite3_bind_text(ck->put, 1, ck->tbl, -1, SQLITE_STATIC);
    sqlite3_bind_text(ck->put, 2, stream, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ck->put, 3, pos);
    sqlite3_bind_text(ck->put, 4, fp, -1, SQLITE_STATIC);
    int rc = sqlite3_step(ck->put);
    sqlite3_reset(ck->put);
    return rc == SQLITE_DONE ? 0 : fail(ck, err, "storing a position");
}
