/* SPDX-License-Identifier: MIT */
/* A file source's own position store (see file_checkpoint.h). */
#include "connectors/file/file_checkpoint.h"

#include "connectors/sqlite/sqlite_positions.h"
#include "fsutil.h"
#include "log.h"
#include "mem.h"

#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

struct sl_file_ckpt {
    sqlite3 *db;
    struct sl_pos_store ps;
    char *tbl;        /* "_sluice_source:<node>" */
    const char *name; /* the source node's name (pipeline lifetime) */
};

struct sl_file_ckpt *
sl_file_ckpt_open(const char *path, const char *name, const char *pipeline, struct sl_err *err)
{
    char self[PATH_MAX], last[PATH_MAX];
    struct sl_file_ckpt *ck = sl_calloc(1, sizeof(*ck));
    size_t n = strlen(name) + sizeof("_sluice_source:");

    if (ck == NULL || (ck->tbl = sl_malloc(n)) == NULL) {
        sl_free(ck);
        sl_err_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(ck->tbl, n, "_sluice_source:%s", name);
    ck->name = name;
    if (sl_mkdir_parents(path) != 0 || sqlite3_open(path, &ck->db) != SQLITE_OK ||
        sqlite3_busy_timeout(ck->db, 5000) != SQLITE_OK ||
        sqlite3_exec(ck->db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK) {
        sl_err_set(err, SL_EIO, "checkpoints: %s: %s", path,
                   ck->db != NULL ? sqlite3_errmsg(ck->db) : "cannot open");
        return sl_file_ckpt_close(ck);
    }
    if (sl_pos_store_open(&ck->ps, ck->db, err) != 0) {
        char msg[SL_ERR_MSG_MAX];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        sl_err_set(err, SL_EIO, "checkpoints: %s: %s", path, msg);
        return sl_file_ckpt_close(ck);
    }
    /* As a SQLite sink's identity (sqlite_sink.c warn_shared_identity). */
    struct sl_err note = {0};
    pipeline = sl_pipeline_identity(pipeline, self, sizeof(self));
    int rc = sl_pos_store_claim(&ck->ps, ck->tbl, name, name, pipeline, last, sizeof(last), &note);
    if (rc < 0) {
        sl_log_warn("%s: checkpoints: %s: %s", name, path, note.msg);
    } else if (rc == 1) {
        sl_log_warn("%s: checkpoints: %s was last used by source '%s' of another pipeline file, "
                    "%s: if that is another pipeline, give each its own checkpoints file, since "
                    "each skips what the other read",
                    name, path, name, last);
    }
    return ck;
}

struct sl_file_ckpt *sl_file_ckpt_close(struct sl_file_ckpt *ck)
{
    if (ck == NULL) {
        return NULL;
    }
    sl_pos_store_close(&ck->ps);
    sqlite3_close(ck->db);
    sl_free(ck->tbl);
    sl_free(ck);
    return NULL;
}

/* The source is its own writer here: the positions stand in for its sinks. */
static struct sl_pos_key key_of(const struct sl_file_ckpt *ck, const char *stream)
{
    return (struct sl_pos_key){ck->tbl, ck->name, ck->name, stream, 0, 0, NULL};
}

int sl_file_ckpt_get(struct sl_file_ckpt *ck,
                     const char *stream,
                     int64_t *ret_pos,
                     char *fp,
                     size_t fp_len,
                     struct sl_err *err)
{
    struct sl_pos_key key = key_of(ck, stream);

    return sl_pos_store_get(&ck->ps, &key, ret_pos, fp, fp_len, err);
}

int sl_file_ckpt_streams(struct sl_file_ckpt *ck,
                         void (*fn)(void *arg, const char *stream, const char *fp),
                         void *arg,
                         struct sl_err *err)
{
    struct sl_pos_key key = key_of(ck, NULL);

    return sl_pos_store_streams(&ck->ps, &key, fn, arg, err);
}

int sl_file_ckpt_put(
    struct sl_file_ckpt *ck, const char *stream, int64_t pos, const char *fp, struct sl_err *err)
{
    struct sl_pos_key key = key_of(ck, stream);

    return sl_pos_store_put(&ck->ps, &key, pos, fp, err);
}
