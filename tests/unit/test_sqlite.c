/* SPDX-License-Identifier: MIT */
/* Tests of the SQLite writing library (connectors/sqlite): value typing,
 * quoting, table creation and evolution, rejected records, upsert, exactly
 * once through positions (replay, zombie, fingerprint, fan-out siblings),
 * dead letters in the same transaction, several writers on one file, busy
 * databases, failing allocations and a fault-injecting VFS. */
#include "batch.h"
#include "connectors/sqlite/sqlite_writer.h"
#include "err.h"
#include "mem.h"

#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

struct fixture {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL) {
        return -1;
    }
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_sqlite_XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    /* A nested path: the writer creates the missing directories. */
    snprintf(fx->path, sizeof(fx->path), "%s/out/db/orders.db", fx->dir);
    *state = fx;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    sl_mem_fail_nth(0);
    nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

/* ==== Helpers ==== */

static struct sl_sqlite_writer_conf conf_for(const char *path, const char *table)
{
    struct sl_sqlite_writer_conf conf = {0};

    conf.path = path;
    conf.table = table;
    conf.sink_name = "db";
    return conf;
}

static struct sl_sqlite_writer *open_ok(const struct sl_sqlite_writer_conf *conf)
{
    struct sl_err err = {0};
    struct sl_sqlite_writer *w = sl_sqlite_writer_open(conf, &err);

    if (w == NULL) {
        fail_msg("open: %s", err.msg);
    }
    return w;
}

static struct sl_batch *batch_new(const char *stream, int64_t pos_start, int64_t pos_end)
{
    struct sl_batch *batch = sl_batch_new(NULL);

    assert_non_null(batch);
    batch->stream_name = stream;
    batch->pos_start = pos_start;
    batch->pos_end = pos_end;
    return batch;
}

/* A file record at byte offset off (line off + 1). */
static struct sl_record *rec_add(struct sl_batch *batch, int64_t off)
{
    struct sl_record *rec = sl_batch_add(batch);

    assert_non_null(rec);
    rec->meta.stream = batch->stream_name;
    rec->meta.offset = off;
    rec->meta.line = off + 1;
    return rec;
}

static void
put(struct sl_batch *batch, struct sl_record *rec, const char *name, struct sl_value val)
{
    assert_int_equal(sl_record_append(rec, &batch->arena, name, (uint32_t)strlen(name), val), 0);
}

static void put_int(struct sl_batch *batch, struct sl_record *rec, const char *name, int64_t i)
{
    put(batch, rec, name, sl_value_int(i));
}

static void put_str(struct sl_batch *batch, struct sl_record *rec, const char *name, const char *s)
{
    put(batch, rec, name, sl_value_str(s, (uint32_t)strlen(s)));
}

/* n records {id, name, qty} at offsets start..start+n-1, positions to match. */
static struct sl_batch *orders(const char *stream, int64_t start, int n)
{
    struct sl_batch *batch = batch_new(stream, start, start + n);

    for (int i = 0; i < n; i++) {
        struct sl_record *rec = rec_add(batch, start + i);
        put_int(batch, rec, "id", start + i);
        put_str(batch, rec, "name", "widget");
        put_int(batch, rec, "qty", i % 7);
    }
    return batch;
}

struct rejects {
    int n;
    char reason[8][256];
    uint32_t rec[8];
};

static int
on_reject(void *arg, const struct sl_batch *batch, uint32_t rec_index, const char *reason)
{
    struct rejects *r = arg;

    (void)batch;
    if (r->n < 8) {
        snprintf(r->reason[r->n], sizeof(r->reason[0]), "%s", reason);
        r->rec[r->n] = rec_index;
    }
    r->n++;
    return 0;
}

static int
write_n(struct sl_sqlite_writer *w, struct sl_batch **batches, size_t n, struct rejects *r)
{
    struct sl_err err = {0};
    int rc = sl_sqlite_writer_write(w, batches, n, on_reject, NULL, r, NULL, &err);

    if (rc != 0 && rc != SL_ERETRY && rc != SL_EIO && rc != SL_ENOMEM) {
        fail_msg("write: %d %s", rc, err.msg);
    }
    return rc;
}

static void
write_ok(struct sl_sqlite_writer *w, struct sl_batch **batches, size_t n, struct rejects *r)
{
    struct sl_err err = {0};
    int rc = sl_sqlite_writer_write(w, batches, n, on_reject, NULL, r, NULL, &err);

    if (rc != 0) {
        fail_msg("write: %s: %s", sl_errname(rc), err.msg);
    }
}

static void unref_all(struct sl_batch **batches, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        batches[i] = sl_batch_unref(batches[i]);
    }
}

static sqlite3 *db_open(const char *path)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    return db;
}

/* First column of the first row as an int, or -999 when there is no row. */
static int64_t q_int(const char *path, const char *sql)
{
    sqlite3 *db = db_open(path);
    sqlite3_stmt *st = NULL;
    int64_t v = -999;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* First column of the first row as text ("<null>", "<none>"). */
static const char *q_text(const char *path, const char *sql, char *out, size_t len)
{
    sqlite3 *db = db_open(path);
    sqlite3_stmt *st = NULL;

    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    }
    int rc = sqlite3_step(st);
    const char *s = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    snprintf(out, len, "%s", rc != SQLITE_ROW ? "<none>" : s == NULL ? "<null>" : s);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static int64_t position(struct sl_sqlite_writer *w, const char *stream)
{
    int64_t pos = -1;
    int rc = sl_sqlite_writer_position(w, "", stream, 0, 0, NULL, &pos, NULL, 0, NULL);

    return rc == SL_EOF ? -2 : rc == 0 ? pos : -3;
}

/* ==== Typing and naming ==== */

static void test_sqlite_values_keep_their_type(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_sqlite_writer *w = open_ok(&conf);
    struct sl_batch *b = batch_new("in.jsonl", 0, 10);
    struct sl_value arr = {.type = SL_TYPE_ARRAY, .len = 7, .u.s = "[1,\"x\"]"};
    struct sl_value obj = {.type = SL_TYPE_OBJECT, .len = 7, .u.s = "{\"a\":1}"};
    struct sl_value blob = {.type = SL_TYPE_BYTES, .len = 3, .u.s = "\0\1\2"};
    char buf[64];

    struct sl_record *rec = rec_add(b, 0);
    put_int(b, rec, "zip", 501);
    put(b, rec, "ok", sl_value_bool(true));
    put(b, rec, "d", sl_value_double(1.5));
    rec = rec_add(b, 1);
    put_str(b, rec, "zip", "00501");
    put(b, rec, "ok", sl_value_bool(false));
    put(b, rec, "arr", arr);
    put(b, rec, "obj", obj);
    put(b, rec, "bin", blob);
    put(b, rec, "n", sl_value_null());
    put(b, rec, "empty", sl_value_str(NULL, 0));
    write_ok(w, &b, 1, NULL);
    w = sl_sqlite_writer_close(w);

    assert_string_equal(q_text(fx->path, "SELECT typeof(zip) FROM t WHERE rowid=1", buf, 64),
                        "integer");
    assert_string_equal(q_text(fx->path, "SELECT typeof(zip)||zip FROM t WHERE rowid=2", buf, 64),
                        "text00501");
    assert_int_equal(q_int(fx->path, "SELECT sum(ok) FROM t"), 1);
    assert_string_equal(q_text(fx->path, "SELECT typeof(ok) FROM t", buf, 64), "integer");
    assert_string_equal(q_text(fx->path, "SELECT typeof(d)||d FROM t WHERE rowid=1", buf, 64),
                        "real1.5");
    assert_string_equal(q_text(fx->path, "SELECT arr||obj FROM t WHERE rowid=2", buf, 64),
                        "[1,\"x\"]{\"a\":1}");
    assert_string_equal(
        q_text(fx->path, "SELECT typeof(bin)||length(bin) FROM t WHERE rowid=2", buf, 64), "blob3");
    assert_string_equal(q_text(fx->path, "SELECT typeof(n) FROM t WHERE rowid=2", buf, 64), "null");
    assert_string_equal(q_text(fx->path, "SELECT typeof(empty) FROM t WHERE rowid=2", buf, 64),
                        "text");
    /* Auto-created columns are untyped: no affinity. */
    assert_string_equal(
        q_text(fx->path, "SELECT type FROM pragma_table_info('t') LIMIT 1", buf, 64), "");
    sl_batch_unref(b);
}

static void test_sqlite_weird_names_are_quoted(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "my \"odd\" table");
    struct sl_sqlite_writer *w = open_ok(&conf);
    struct sl_batch *b = batch_new("in.jsonl", 0, 1);
    struct sl_record *rec = rec_add(b, 0);
    char buf[64];

    put_int(b, rec, "Cost Total $", 12);
    put_str(b, rec, "we\"ird", "q");
    put_str(b, rec, "a'b); DROP TABLE x;--", "sql");
    put_str(b, rec, "select", "kw");
    write_ok(w, &b, 1, NULL);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT \"Cost Total $\" FROM \"my \"\"odd\"\" table\""), 12);
    assert_string_equal(q_text(fx->path,
                               "SELECT \"we\"\"ird\" || \"a'b); DROP TABLE x;--\" || \"select\""
                               " FROM \"my \"\"odd\"\" table\"",
                               buf, 64),
                        "qsqlkw");
    sl_batch_unref(b);
}

static void test_sqlite_table_evolves_with_new_fields(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_sqlite_writer *w = open_ok(&conf);
    struct sl_batch *b[2] = {orders("in", 0, 3), batch_new("in", 3, 5)};
    char buf[64];

    put_str(b[1], rec_add(b[1], 3), "extra", "x");
    struct sl_record *rec = rec_add(b[1], 4);
    put_int(b[1], rec, "id", 4);
    put_str(b[1], rec, "extra", "y");
    write_ok(w, &b[0], 1, NULL);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM pragma_table_info('t')"), 3);
    write_ok(w, &b[1], 1, NULL);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM pragma_table_info('t')"), 4);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 5);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t WHERE extra IS NULL"), 3);
    assert_string_equal(q_text(fx->path, "SELECT typeof(id) FROM t WHERE extra='x'", buf, 64),
                        "null");
    unref_all(b, 2);
}

static void test_sqlite_ragged_records_share_statements(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_sqlite_writer *w = open_ok(&conf);
    struct sl_batch *b = batch_new("in", 0, 1000);
    char name[32];

    /* Alternating optional fields, and 20 distinct shapes (more than the
     * statement cache holds) further on. */
    for (int i = 0; i < 1000; i++) {
        struct sl_record *rec = rec_add(b, i);
        put_int(b, rec, "id", i);
        put_int(b, rec, i % 2 ? "odd" : "even", i);
        if (i >= 500) {
            snprintf(name, sizeof(name), "k%d", i % 20);
            put_int(b, rec, sl_arena_strndup(&b->arena, name, strlen(name)), i);
        }
    }
    write_ok(w, &b, 1, NULL);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 1000);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t WHERE odd IS NOT NULL"), 500);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t WHERE odd = id"), 500);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t WHERE even = id"), 500);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t WHERE k7 = id"), 25);
    assert_int_equal(q_int(fx->path, "SELECT sum(id) FROM t"), 999 * 1000 / 2);
    sl_batch_unref(b);
}

static void test_sqlite_wide_records_respect_variable_limit(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_sqlite_writer *w = open_ok(&conf);
    struct sl_batch *b = batch_new("in", 0, 100);
    char name[16];

    for (int i = 0; i < 100; i++) {
        struct sl_record *rec = rec_add(b, i);
        for (int c = 0; c < 1500; c++) {
            snprintf(name, sizeof(name), "c%d", c);
            put_int(b, rec, sl_arena_strndup(&b->arena, name, strlen(name)), i);
        }
    }
    write_ok(w, &b, 1, NULL);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t WHERE c1499 = c0"), 100);
    sl_batch_unref(b);
}

static void test_sqlite_explicit_columns_are_typed(void **state)
{
    struct fixture *fx = *state;
    static const struct sl_sqlite_column cols[] = {{"amount", "REAL"}, {"zip", "ANY"}};
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *b = batch_new("in", 0, 0);
    char buf[64];

    conf.columns = cols;
    conf.ncolumns = 2;
    struct sl_sqlite_writer *w = open_ok(&conf);
    write_ok(w, &b, 1, NULL); /* no records: the table exists all the same */
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM pragma_table_info('t')"), 2);
    b = sl_batch_unref(b);
    b = batch_new("in", 0, 1);
    struct sl_record *rec = rec_add(b, 0);
    put_str(b, rec, "amount", "12");
    put_str(b, rec, "zip", "00501");
    put_int(b, rec, "other", 1);
    write_ok(w, &b, 1, NULL);
    w = sl_sqlite_writer_close(w);
    assert_string_equal(q_text(fx->path, "SELECT typeof(amount)||amount FROM t", buf, 64),
                        "real12.0");
    assert_string_equal(q_text(fx->path, "SELECT typeof(zip)||zip FROM t", buf, 64), "text00501");
    sl_batch_unref(b);
}

static void test_sqlite_open_refuses_bad_conf(void **state)
{
    struct fixture *fx = *state;
    static const struct sl_sqlite_column bad_type[] = {{"a", "TEXT); DROP TABLE t; --"}};
    static const struct sl_sqlite_column dup[] = {{"a", NULL}, {"A", NULL}};
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "_sluice_t");
    struct sl_err err = {0};

    assert_null(sl_sqlite_writer_open(&conf, &err));
    assert_int_equal(err.code, SL_ECONFIG);
    conf = conf_for(fx->path, "t");
    conf.mode = SL_SQLITE_UPSERT;
    assert_null(sl_sqlite_writer_open(&conf, &err));
    assert_int_equal(err.code, SL_ECONFIG);
    conf = conf_for(fx->path, "t");
    conf.columns = bad_type;
    conf.ncolumns = 1;
    assert_null(sl_sqlite_writer_open(&conf, &err));
    assert_int_equal(err.code, SL_ECONFIG);
    conf.columns = dup;
    conf.ncolumns = 2;
    assert_null(sl_sqlite_writer_open(&conf, &err));
    assert_int_equal(err.code, SL_ECONFIG);
    conf = conf_for(fx->path, "t");
    conf.dead_table = "T";
    assert_null(sl_sqlite_writer_open(&conf, &err));
    assert_int_equal(err.code, SL_ECONFIG);
}

/* ==== Rejected records ==== */

static void test_sqlite_case_collision_is_rejected(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_sqlite_writer *w = open_ok(&conf);
    struct sl_batch *b = batch_new("in", 0, 4);
    struct rejects r = {0};

    put_int(b, rec_add(b, 0), "id", 1);
    struct sl_record *rec = rec_add(b, 1);
    put_int(b, rec, "Id", 2); /* column "id" exists (made by the record before) */
    rec = rec_add(b, 2);
    put_int(b, rec, "Name", 3);
    put_int(b, rec, "NAME", 3); /* both new: collide within the record */
    put_int(b, rec_add(b, 3), "id", 4);
    write_ok(w, &b, 1, &r);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.rec[0], 1);
    assert_string_equal(r.reason[0],
                        "field 'Id' collides with column 'id' (names differ only in case)");
    assert_int_equal(r.rec[1], 2);
    assert_string_equal(r.reason[1],
                        "field 'NAME' collides with field 'Name' (names differ only in case)");
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 2);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM pragma_table_info('t')"), 1);
    assert_int_equal(q_int(fx->path, "SELECT position FROM _sluice_checkpoints"), 4);
    sl_batch_unref(b);
}

/* The rejects reach the caller before the commit, so that it can store
 * them elsewhere first (a kill after the commit must not lose them), and a
 * failure to do so rolls the rows and the position back. */
struct commit_probe {
    struct rejects r;
    const char *path;
    int rejects_seen;  /* rejects reported when before_commit ran */
    int64_t rows_seen; /* rows another connection saw then */
    int rc;            /* what before_commit returns */
};

static int probe_reject(void *arg, const struct sl_batch *batch, uint32_t i, const char *why)
{
    return on_reject(&((struct commit_probe *)arg)->r, batch, i, why);
}

static int probe_before_commit(void *arg, struct sl_err *err)
{
    struct commit_probe *p = arg;

    p->rejects_seen = p->r.n;
    p->rows_seen = q_int(p->path, "SELECT count(*) FROM t");
    return p->rc != 0 ? sl_err_set(err, p->rc, "store refused") : 0;
}

static void test_sqlite_rejects_are_reported_before_the_commit(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_sqlite_writer *w = open_ok(&conf);
    struct sl_batch *b = orders("in", 0, 5);
    struct commit_probe p = {.path = fx->path, .rc = SL_EIO};
    struct sl_err err = {0};

    write_ok(w, &b, 1, &p.r); /* creates t with 5 rows */
    sl_batch_unref(b);
    b = orders("in", 5, 5);
    put_int(b, &b->recs[2], "ID", 1); /* collides with column id */
    p.r.n = 0;
    assert_int_equal(
        sl_sqlite_writer_write(w, &b, 1, probe_reject, probe_before_commit, &p, NULL, &err),
        SL_EIO);
    assert_int_equal(p.rejects_seen, 1);
    assert_int_equal(p.rows_seen, 5); /* not committed yet */
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 5);
    assert_int_equal(q_int(fx->path, "SELECT position FROM _sluice_checkpoints"), 5);
    p.rc = 0;
    p.r.n = 0;
    assert_int_equal(
        sl_sqlite_writer_write(w, &b, 1, probe_reject, probe_before_commit, &p, NULL, &err), 0);
    assert_int_equal(p.rejects_seen, 1);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 9);
    assert_int_equal(q_int(fx->path, "SELECT position FROM _sluice_checkpoints"), 10);
    sl_batch_unref(b);
}

static void test_sqlite_reserved_and_empty_names_are_rejected(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_sqlite_writer *w = open_ok(&conf);
    struct sl_batch *b = batch_new("in", 0, 4);
    struct rejects r = {0};

    put_int(b, rec_add(b, 0), "_sluice_x", 1);
    put_int(b, rec_add(b, 1), "_SLUICE_Y", 1);
    put_int(b, rec_add(b, 2), "", 1);
    rec_add(b, 3);                       /* no fields at all */
    put_int(b, rec_add(b, 4), "_ok", 1); /* a leading _ is fine */
    write_ok(w, &b, 1, &r);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(r.n, 4);
    assert_string_equal(r.reason[0], "field '_sluice_x' uses the reserved prefix _sluice_");
    assert_string_equal(r.reason[3], "record has no fields");
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 1);
    sl_batch_unref(b);
}

static void test_sqlite_constraint_failure_rejects_one_row(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_sqlite_writer *w = open_ok(&conf); /* creates the file and directories */
    struct sl_batch *b = orders("in", 0, 100);
    struct rejects r = {0};
    sqlite3 *db = db_open(fx->path);

    assert_int_equal(
        sqlite3_exec(db, "CREATE TABLE t(id, name, qty CHECK (id != 42))", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    write_ok(w, &b, 1, &r);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.rec[0], 42);
    assert_non_null(strstr(r.reason[0], "CHECK constraint failed"));
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 99);
    sl_batch_unref(b);
}

/* ==== Upsert ==== */

static void test_sqlite_upsert_updates_the_records_columns(void **state)
{
    struct fixture *fx = *state;
    static const char *const keys[] = {"id"};
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *b[2] = {batch_new("in", 0, 100), batch_new("in", 100, 103)};
    struct rejects r = {0};
    char buf[64];

    conf.mode = SL_SQLITE_UPSERT;
    conf.key_columns = keys;
    conf.nkey_columns = 1;
    struct sl_sqlite_writer *w = open_ok(&conf);
    for (int i = 0; i < 100; i++) { /* ids repeat inside one multi-row INSERT */
        struct sl_record *rec = rec_add(b[0], i);
        put_int(b[0], rec, "id", i % 5);
        put_int(b[0], rec, "v", i);
        if (i != 99) { /* the last one is narrower than its group: a group of its own */
            put_str(b[0], rec, "tag", "t");
        }
    }
    struct sl_record *rec = rec_add(b[1], 100);
    put_int(b[1], rec, "id", 2);
    put_int(b[1], rec, "w", 7); /* only w changes: v and tag stay */
    put_int(b[1], rec_add(b[1], 101), "v", 1);
    rec = rec_add(b[1], 102);
    put(b[1], rec, "id", sl_value_null());
    write_ok(w, b, 2, &r);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 5);
    assert_string_equal(q_text(fx->path, "SELECT v||tag FROM t WHERE id = 4", buf, 64), "99t");
    assert_string_equal(q_text(fx->path, "SELECT v||tag||w FROM t WHERE id = 2", buf, 64), "97t7");
    assert_int_equal(r.n, 2);
    assert_string_equal(r.reason[0], "key column 'id' is missing");
    assert_string_equal(r.reason[1], "key column 'id' is null");
    unref_all(b, 2);
}

/* ==== Exactly once ==== */

static void test_sqlite_replay_after_restart_is_trimmed(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *b[3] = {orders("a.jsonl", 0, 10), orders("a.jsonl", 10, 10),
                             orders("a.jsonl", 20, 10)};
    struct sl_sqlite_writer *w = open_ok(&conf);

    write_ok(w, b, 2, NULL);
    w = sl_sqlite_writer_close(w); /* a crash after the commit */
    w = open_ok(&conf);
    assert_int_equal(position(w, "a.jsonl"), 20);
    write_ok(w, b, 3, NULL); /* the source resumed from an older position */
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 30);
    assert_int_equal(q_int(fx->path, "SELECT count(DISTINCT id) FROM t"), 30);
    assert_int_equal(q_int(fx->path, "SELECT position FROM _sluice_checkpoints"), 30);
    unref_all(b, 3);
}

static void test_sqlite_overlapping_batch_is_trimmed_per_record(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *b[2] = {orders("k", 0, 5), orders("k", 3, 7)};
    struct sl_sqlite_writer *w = open_ok(&conf);

    write_ok(w, &b[0], 1, NULL);
    write_ok(w, &b[1], 1, NULL); /* offsets 3 and 4 are stored already */
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 10);
    assert_int_equal(q_int(fx->path, "SELECT count(DISTINCT id) FROM t"), 10);
    unref_all(b, 2);
}

static void test_sqlite_zombie_batch_is_trimmed(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *b[2] = {orders("topic", 0, 10), orders("topic", 10, 10)};
    struct sl_batch *late = orders("topic", 0, 10);
    struct sl_sqlite_writer *w = open_ok(&conf);
    struct sl_sqlite_writer *zombie = open_ok(&conf);

    b[0]->partition = b[1]->partition = late->partition = 0;
    write_ok(w, b, 2, NULL);
    write_ok(zombie, &late, 1, NULL); /* a stalled process wakes up */
    assert_int_equal(position(zombie, "topic"), 20);
    w = sl_sqlite_writer_close(w);
    zombie = sl_sqlite_writer_close(zombie);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 20);
    assert_int_equal(q_int(fx->path, "SELECT position FROM _sluice_checkpoints"), 20);
    unref_all(b, 2);
    sl_batch_unref(late);
}

/* Issue 6, finding 1: two sinks on one table keep positions of their own,
 * and two sources reading one file into one sink too. */
static void test_sqlite_positions_are_keyed_by_writer_and_source(void **state)
{
    struct fixture *fx = *state;
    static const char *const sources[] = {"cheap", "dear"};
    struct sl_sqlite_writer_conf ca = conf_for(fx->path, "t"), cb = conf_for(fx->path, "t");
    struct sl_batch *a = orders("o.jsonl", 0, 10), *b = orders("o.jsonl", 0, 10);
    struct sl_batch *s2 = orders("o.jsonl", 0, 10);
    int64_t pos = 0;

    ca.writer_id = "a";
    cb.writer_id = "b";
    ca.source_names = cb.source_names = sources;
    ca.nsource_names = cb.nsource_names = 2;
    s2->source = 1;
    struct sl_sqlite_writer *wa = open_ok(&ca), *wb = open_ok(&cb);
    write_ok(wa, &a, 1, NULL);
    write_ok(wb, &b, 1, NULL);  /* the same stream range, by another sink */
    write_ok(wa, &s2, 1, NULL); /* the same file, by another source */
    assert_int_equal(
        sl_sqlite_writer_position(wa, "dear", "o.jsonl", 0, 0, NULL, &pos, NULL, 0, NULL), 0);
    assert_int_equal(pos, 10);
    assert_int_equal(
        sl_sqlite_writer_position(wb, "dear", "o.jsonl", 0, 0, NULL, &pos, NULL, 0, NULL), SL_EOF);
    wa = sl_sqlite_writer_close(wa);
    wb = sl_sqlite_writer_close(wb);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 30);
    sl_batch_unref(a);
    sl_batch_unref(b);
    sl_batch_unref(s2);
}

/* A file made before positions named their writer: its positions are kept
 * aside and adopted, so an upgrade does not write everything again. */
static void test_sqlite_old_checkpoints_are_adopted(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *b = orders("o.jsonl", 0, 10);
    sqlite3 *db = NULL;

    sl_sqlite_writer_close(open_ok(&conf)); /* makes the directories */
    assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DROP TABLE _sluice_checkpoints", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE _sluice_checkpoints(tbl TEXT, stream TEXT,"
                     " \"partition\" INTEGER, position INTEGER, fingerprint TEXT,"
                     " PRIMARY KEY(tbl, stream, \"partition\"));"
                     "INSERT INTO _sluice_checkpoints VALUES('t', 'o.jsonl', 0, 6, NULL)",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    struct sl_sqlite_writer *w = open_ok(&conf);
    write_ok(w, &b, 1, NULL);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 4); /* records 6..9 */
    assert_int_equal(
        q_int(fx->path, "SELECT position FROM _sluice_checkpoints WHERE writer = 'db'"), 10);
    sl_batch_unref(b);
}

static void test_sqlite_partitions_and_streams_are_separate(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *b[3] = {orders("topic", 0, 10), orders("topic", 0, 10), orders("x", 0, 4)};
    struct sl_sqlite_writer *w = open_ok(&conf);
    int64_t pos = 0;

    b[1]->partition = 1;
    write_ok(w, b, 3, NULL);
    assert_int_equal(sl_sqlite_writer_position(w, "", "topic", 1, 0, NULL, &pos, NULL, 0, NULL), 0);
    assert_int_equal(pos, 10);
    assert_int_equal(sl_sqlite_writer_position(w, "", "topic", 2, 0, NULL, &pos, NULL, 0, NULL),
                     SL_EOF);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 24);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM _sluice_checkpoints"), 3);
    unref_all(b, 3);
}

struct listed {
    char keys[4][32];
    char fps[4][32];
    int n;
};

static void list_one(void *arg, const char *stream, const char *fp)
{
    struct listed *l = arg;

    if (l->n < 4) {
        snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", stream);
        snprintf(l->fps[l->n], sizeof(l->fps[0]), "%s", fp != NULL ? fp : "(null)");
    }
    l->n++;
}

/* A file stream's key is its identity: a batch under the same key with
 * another fingerprint (the file was renamed) keeps the position and stores
 * the new fingerprint, which listing the writer's streams returns. */
static void test_sqlite_fingerprint_follows_the_file(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *old = orders("4096:aa", 0, 10);
    struct sl_batch *renamed = orders("4096:aa", 0, 14);
    struct sl_sqlite_writer *w = open_ok(&conf);
    struct listed l = {0};
    char fp[8];
    int64_t pos = 0;

    old->fingerprint = "1:a.log";
    renamed->fingerprint = "1:a.log.1";
    write_ok(w, &old, 1, NULL);
    assert_int_equal(
        sl_sqlite_writer_position(w, "", "4096:aa", 0, 0, NULL, &pos, fp, sizeof(fp), NULL), 0);
    assert_int_equal(pos, 10);
    assert_string_equal(fp, "1:a.log"); /* cut to the buffer */
    write_ok(w, &renamed, 1, NULL);     /* the first 10 are trimmed, 4 new */
    assert_int_equal(sl_sqlite_writer_streams(w, "", list_one, &l, NULL), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.keys[0], "4096:aa");
    assert_string_equal(l.fps[0], "1:a.log.1");
    l.n = 0;
    assert_int_equal(sl_sqlite_writer_streams(w, "other", list_one, &l, NULL), 0);
    assert_int_equal(l.n, 0); /* another source's streams are not ours */
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 14);
    sl_batch_unref(old);
    sl_batch_unref(renamed);
}

/* A Kafka offset reset: a batch whose epoch differs from the stored one
 * restarts the stream's position instead of being trimmed. */
static void test_sqlite_new_epoch_starts_over(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *old = orders("topic", 0, 10);
    struct sl_batch *fresh = orders("topic", 0, 4);
    struct sl_sqlite_writer *w = open_ok(&conf);

    old->fingerprint = "kafka";
    fresh->fingerprint = "kafka:2";
    old->fingerprint_is_epoch = fresh->fingerprint_is_epoch = true;
    write_ok(w, &old, 1, NULL);
    assert_int_equal(position(w, "topic"), 10);
    write_ok(w, &fresh, 1, NULL); /* reset: from 0 again */
    assert_int_equal(position(w, "topic"), 4);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 14);
    sl_batch_unref(old);
    sl_batch_unref(fresh);
}

static void test_sqlite_fanout_siblings_keep_own_positions(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf ca = conf_for(fx->path, "a");
    struct sl_sqlite_writer_conf cb = conf_for(fx->path, "b");
    struct sl_batch *b[2] = {orders("in", 0, 10), orders("in", 10, 10)};
    struct sl_sqlite_writer *wa = open_ok(&ca);
    struct sl_sqlite_writer *wb = open_ok(&cb);

    sl_batch_ref(b[0]); /* shared read-only by both sinks */
    sl_batch_ref(b[1]);
    write_ok(wa, b, 2, NULL);
    write_ok(wb, b, 1, NULL); /* b is behind */
    assert_int_equal(position(wa, "in"), 20);
    assert_int_equal(position(wb, "in"), 10);
    write_ok(wb, b, 2, NULL); /* replays from the lowest: b catches up, a is untouched */
    assert_int_equal(position(wb, "in"), 20);
    wa = sl_sqlite_writer_close(wa);
    wb = sl_sqlite_writer_close(wb);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM a"), 20);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM b"), 20);
    sl_batch_unref(b[0]); /* the second sink's references */
    sl_batch_unref(b[1]);
    unref_all(b, 2);
}

static void test_sqlite_batch_without_stream_is_written_whole(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *b = orders(NULL, 0, 5);
    struct sl_sqlite_writer *w = open_ok(&conf);

    write_ok(w, &b, 1, NULL);
    write_ok(w, &b, 1, NULL);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 10);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM _sluice_checkpoints"), 0);
    sl_batch_unref(b);
}

/* ==== Dead letters ==== */

static void
add_dead(struct sl_batch *b, int64_t off, int64_t line, const char *raw, uint32_t raw_len)
{
    struct sl_record rec = {0};

    rec.meta.stream = b->stream_name;
    rec.meta.offset = off;
    rec.meta.line = line;
    rec.meta.partition = 3;
    rec.raw = raw;
    rec.raw_len = raw_len;
    assert_int_equal(sl_batch_add_dead(b, &rec, "parse", "orders", "bad line %d", (int)off), 0);
}

static void test_sqlite_dead_letters_share_the_transaction(void **state)
{
    struct fixture *fx = *state;
    static const char *const sources[] = {"orders"};
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *b = orders("a.jsonl", 0, 10);
    struct sl_batch *k = orders("topic", 100, 10);
    size_t big_len = 70000;
    char *big = malloc(big_len);
    char buf[128];

    assert_non_null(big);
    memset(big, 'x', big_len);
    memcpy(big + 65535, "\xc3\xa9", 2); /* a 2-byte character across the 64 KiB cut */
    conf.dead_table = "rejects";
    conf.source_names = sources;
    conf.nsource_names = 1;
    add_dead(b, 3, 4, "{bad", 4);
    add_dead(b, 5, 6, big, (uint32_t)big_len);
    add_dead(k, 105, 0, "\xff\xfe", 2); /* Kafka, not UTF-8 */
    put_int(b, &b->recs[7], "ID", 1);   /* rejected by the writer */
    struct sl_sqlite_writer *w = open_ok(&conf);
    struct sl_batch *both[2] = {b, k};
    struct rejects r = {0};
    write_ok(w, both, 2, &r);
    write_ok(w, both, 2, &r); /* replay: nothing twice */
    assert_int_equal(r.n, 1);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 19);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM rejects"), 4);
    assert_string_equal(q_text(fx->path,
                               "SELECT _error||_node||_source||_file||_line||_raw FROM rejects"
                               " WHERE _line = 4",
                               buf, sizeof(buf)),
                        "bad line 3parseordersa.jsonl4{bad");
    assert_int_equal(q_int(fx->path, "SELECT length(CAST(_raw AS BLOB)) FROM rejects"
                                     " WHERE _line = 6"),
                     65535);
    assert_string_equal(q_text(fx->path,
                               "SELECT _topic||_partition||_offset||typeof(_raw)||"
                               "coalesce(_file, 'nofile') FROM rejects WHERE _offset = 105",
                               buf, sizeof(buf)),
                        "topic3105blobnofile");
    assert_string_equal(q_text(fx->path,
                               "SELECT _error||'|'||_node||'|'||_source||'|'||_line FROM rejects"
                               " WHERE _line = 8",
                               buf, sizeof(buf)),
                        "field 'ID' collides with column 'id' (names differ only in case)|db|"
                        "orders|8");
    sl_batch_unref(b);
    sl_batch_unref(k);
    free(big);
}

/* ==== Several writers, busy databases ==== */

static void test_sqlite_two_writers_interleave_on_one_file(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf ca = conf_for(fx->path, "a");
    struct sl_sqlite_writer_conf cb = conf_for(fx->path, "b");
    struct sl_sqlite_writer *wa = open_ok(&ca);
    struct sl_sqlite_writer *wb = open_ok(&cb);

    for (int i = 0; i < 10; i++) {
        struct sl_batch *x = orders("x", i * 10, 10);
        struct sl_batch *y = orders("y", i * 5, 5);
        write_ok(i % 2 ? wa : wb, &x, 1, NULL);
        write_ok(i % 2 ? wb : wa, &y, 1, NULL);
        sl_batch_unref(x);
        sl_batch_unref(y);
    }
    wa = sl_sqlite_writer_close(wa);
    wb = sl_sqlite_writer_close(wb);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM a"), 75);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM b"), 75);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM _sluice_checkpoints"), 4);
}

struct thread_arg {
    const char *path;
    const char *table;
    int rc;
};

static void *writer_thread(void *p)
{
    struct thread_arg *arg = p;
    struct sl_sqlite_writer_conf conf = conf_for(arg->path, arg->table);
    struct sl_sqlite_writer *w = sl_sqlite_writer_open(&conf, NULL);

    arg->rc = w == NULL ? -1 : 0;
    for (int i = 0; i < 20 && arg->rc == 0; i++) {
        struct sl_batch *b = orders("in", i * 50, 50);
        arg->rc = sl_sqlite_writer_write(w, &b, 1, NULL, NULL, NULL, NULL, NULL);
        sl_batch_unref(b);
    }
    sl_sqlite_writer_close(w);
    return NULL;
}

static void test_sqlite_concurrent_writers_are_serialised(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "setup");
    struct thread_arg args[2] = {{fx->path, "a", 0}, {fx->path, "b", 0}};
    pthread_t th[2];

    sl_sqlite_writer_close(open_ok(&conf)); /* the file exists, in WAL mode */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pthread_create(&th[i], NULL, writer_thread, &args[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].rc, 0);
    }
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM a"), 1000);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM b"), 1000);
}

/* Descriptors this process has open on path (its connections to it). */
static int fds_on(const char *path)
{
    char want[PATH_MAX], link[64], got[PATH_MAX];
    int n = 0;

    assert_non_null(realpath(path, want));
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t len = readlink(link, got, sizeof(got) - 1);
        if (len > 0) {
            got[len] = '\0';
            n += strcmp(got, want) == 0;
        }
    }
    return n;
}

/* DESIGN: one writer connection per database file. Each writer had a
 * connection and a checkpointer's of its own (about 300 KB of RSS a sink);
 * now the writers of a file share one, however its path is spelled, and
 * keep their own tables and positions. */
static void test_sqlite_writers_of_one_file_share_a_connection(void **state)
{
    struct fixture *fx = *state;
    char other[256], link[256];
    struct sl_sqlite_writer_conf ca = conf_for(fx->path, "a");
    struct sl_sqlite_writer *wa = open_ok(&ca);

    snprintf(other, sizeof(other), "%s/out/./db/../db/orders.db", fx->dir);
    snprintf(link, sizeof(link), "%s/link.db", fx->dir);
    assert_int_equal(symlink(fx->path, link), 0);
    struct sl_sqlite_writer_conf cb = conf_for(other, "b");
    struct sl_sqlite_writer_conf cc = conf_for(link, "c");
    struct sl_sqlite_writer *wb = open_ok(&cb);
    struct sl_sqlite_writer *wc = open_ok(&cc);
    assert_int_equal(fds_on(fx->path), 1);
    for (int i = 0; i < 6; i++) {
        struct sl_batch *x = orders("x", i * 10, 10);
        write_ok(i % 3 == 0 ? wa : i % 3 == 1 ? wb : wc, &x, 1, NULL);
        sl_batch_unref(x);
    }
    wb = sl_sqlite_writer_close(wb);
    struct sl_batch *y = orders("x", 60, 10);
    write_ok(wa, &y, 1, NULL); /* the connection stays for the others */
    sl_batch_unref(y);
    wa = sl_sqlite_writer_close(wa);
    wc = sl_sqlite_writer_close(wc);
    assert_int_equal(fds_on(fx->path), 0);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM a"), 30);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM b"), 20);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM c"), 20);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM _sluice_checkpoints"), 3);
}

/* Checkpoints happen during a bulk load, and the log starts again from its
 * beginning: the checkpointer's connection once never opened the WAL, so
 * its checkpoints copied nothing and the log grew to the whole load. The
 * bound does not depend on the checkpointer's thread getting the CPU: a
 * writer that finds the log past 4000 pages finishes the checkpoint. */
static void test_sqlite_wal_stays_short_during_a_bulk_load(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_sqlite_writer *w = open_ok(&conf);
    char pad[1001], wal[160];
    struct stat st;

    memset(pad, 'p', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    for (int b = 0; b < 250; b++) { /* 25,000 rows of 1 KB: 6,500 pages */
        struct sl_batch *batch = batch_new("in", b * 100, b * 100 + 100);
        for (int i = 0; i < 100; i++) {
            struct sl_record *rec = rec_add(batch, b * 100 + i);
            put_int(batch, rec, "id", b * 100 + i);
            put_str(batch, rec, "pad", pad);
        }
        write_ok(w, &batch, 1, NULL);
        sl_batch_unref(batch);
    }
    snprintf(wal, sizeof(wal), "%s-wal", fx->path);
    assert_int_equal(stat(wal, &st), 0);
    /* 4000 pages and one write's, as frames of 4096 + 24 bytes. */
    assert_true(st.st_size <= 4100 * 4120);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(stat(wal, &st), -1); /* the last close removed it */
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 25000);
}

static void test_sqlite_busy_database_returns_eretry(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *b = orders("in", 0, 10);
    struct sl_err err = {0};
    struct rejects r = {0};

    conf.busy_timeout_ms = 20;
    struct sl_sqlite_writer *w = open_ok(&conf);
    sqlite3 *db = db_open(fx->path);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sl_sqlite_writer_write(w, &b, 1, on_reject, NULL, &r, NULL, &err), SL_ERETRY);
    assert_int_equal(err.code, SL_ERETRY);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    write_ok(w, &b, 1, &r);
    w = sl_sqlite_writer_close(w);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 10);
    assert_int_equal(r.n, 0);
    sl_batch_unref(b);
}

/* ==== Failures ==== */

/* Rows of table t, 0 when it does not exist. */
static int64_t rows_of_t(const char *path)
{
    if (q_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 't'") == 0) {
        return 0;
    }
    return q_int(path, "SELECT count(*) FROM t");
}

/* The table and the position agree: no position and no rows, or every
 * record below the position stored once (rejected ones excepted). */
static void assert_consistent(const char *path, int64_t rejected)
{
    int64_t rows = rows_of_t(path);
    int64_t pos = q_int(path, "SELECT max(position) FROM _sluice_checkpoints");

    if (pos <= 0) {
        assert_int_equal(rows, 0);
        return;
    }
    assert_int_equal(rows, pos - rejected);
    assert_int_equal(q_int(path, "SELECT count(*) - count(DISTINCT id) FROM t"), 0);
}

static void test_sqlite_failed_allocations_leave_no_trace(void **state)
{
    struct fixture *fx = *state;
    struct sl_sqlite_writer_conf conf = conf_for(fx->path, "t");
    struct sl_batch *b[2] = {orders("in", 0, 100), orders("in", 100, 100)};
    int done = 0;

    put_int(b[1], &b[1]->recs[5], "ID", 1); /* a rejection allocates too */
    for (long nth = 1; !done && nth < 1000; nth++) {
        struct sl_err err = {0};
        sl_mem_fail_nth(nth);
        struct sl_sqlite_writer *w = sl_sqlite_writer_open(&conf, &err);
        if (w == NULL) {
            sl_mem_fail_nth(0);
            assert_int_equal(err.code, SL_ENOMEM);
            continue;
        }
        int rc = sl_sqlite_writer_write(w, b, 2, NULL, NULL, NULL, NULL, &err);
        sl_mem_fail_nth(0);
        assert_true(rc == 0 || rc == SL_ENOMEM);
        done = rc == 0;
        w = sl_sqlite_writer_close(w);
        assert_consistent(fx->path, 1);
    }
    assert_true(done);
    assert_int_equal(q_int(fx->path, "SELECT count(*) FROM t"), 199);
    unref_all(b, 2);
}

/* A VFS over the default one whose xWrite/xSync fail once a countdown ends. */
struct shim_file {
    sqlite3_file base;
    sqlite3_file *real; /* follows this struct in the same allocation */
};

static sqlite3_vfs *shim_base;
static long shim_countdown; /* 0 = off; the call that brings it to 0 fails */
static long shim_failed;

static bool shim_tick(void)
{
    if (shim_countdown > 0 && --shim_countdown == 0) {
        shim_failed++;
        return true;
    }
    return false;
}

#define SHIM_REAL(f) (((struct shim_file *)(f))->real)

static int shim_close(sqlite3_file *f)
{
    return SHIM_REAL(f)->pMethods->xClose(SHIM_REAL(f));
}
static int shim_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
    return SHIM_REAL(f)->pMethods->xRead(SHIM_REAL(f), p, n, off);
}
static int shim_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
    return shim_tick() ? SQLITE_IOERR_WRITE
                       : SHIM_REAL(f)->pMethods->xWrite(SHIM_REAL(f), p, n, off);
}
static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return SHIM_REAL(f)->pMethods->xTruncate(SHIM_REAL(f), size);
}
static int shim_sync(sqlite3_file *f, int flags)
{
    return shim_tick() ? SQLITE_IOERR_FSYNC : SHIM_REAL(f)->pMethods->xSync(SHIM_REAL(f), flags);
}
static int shim_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return SHIM_REAL(f)->pMethods->xFileSize(SHIM_REAL(f), size);
}
static int shim_lock(sqlite3_file *f, int lock)
{
    return SHIM_REAL(f)->pMethods->xLock(SHIM_REAL(f), lock);
}
static int shim_unlock(sqlite3_file *f, int lock)
{
    return SHIM_REAL(f)->pMethods->xUnlock(SHIM_REAL(f), lock);
}
static int shim_check(sqlite3_file *f, int *out)
{
    return SHIM_REAL(f)->pMethods->xCheckReservedLock(SHIM_REAL(f), out);
}
static int shim_fcntl(sqlite3_file *f, int op, void *arg)
{
    return SHIM_REAL(f)->pMethods->xFileControl(SHIM_REAL(f), op, arg);
}
static int shim_sector(sqlite3_file *f)
{
    return SHIM_REAL(f)->pMethods->xSectorSize(SHIM_REAL(f));
}
static int shim_caps(sqlite3_file *f)
{
    return SHIM_REAL(f)->pMethods->xDeviceCharacteristics(SHIM_REAL(f));
}
static int shim_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **pp)
{
    return SHIM_REAL(f)->pMethods->xShmMap(SHIM_REAL(f), pg, sz, extend, pp);
}
static int shim_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return SHIM_REAL(f)->pMethods->xShmLock(SHIM_REAL(f), off, n, flags);
}
static void shim_shm_barrier(sqlite3_file *f)
{
    SHIM_REAL(f)->pMethods->xShmBarrier(SHIM_REAL(f));
}
static int shim_shm_unmap(sqlite3_file *f, int del)
{
    return SHIM_REAL(f)->pMethods->xShmUnmap(SHIM_REAL(f), del);
}

static const sqlite3_io_methods shim_io = {
    .iVersion = 2,
    .xClose = shim_close,
    .xRead = shim_read,
    .xWrite = shim_write,
    .xTruncate = shim_truncate,
    .xSync = shim_sync,
    .xFileSize = shim_size,
    .xLock = shim_lock,
    .xUnlock = shim_unlock,
    .xCheckReservedLock = shim_check,
    .xFileControl = shim_fcntl,
    .xSectorSize = shim_sector,
    .xDeviceCharacteristics = shim_caps,
    .xShmMap = shim_shm_map,
    .xShmLock = shim_shm_lock,
    .xShmBarrier = shim_shm_barrier,
    .xShmUnmap = shim_shm_unmap,
};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *out)
{
    struct shim_file *sf = (struct shim_file *)f;
    int rc;

    (void)vfs;
    sf->real = (sqlite3_file *)(sf + 1);
    rc = shim_base->xOpen(shim_base, name, sf->real, flags, out);
    f->pMethods = rc == SQLITE_OK && sf->real->pMethods != NULL ? &shim_io : NULL;
    return rc;
}

static sqlite3_vfs shim_vfs;

static void shim_register(void)
{
    shim_base = sqlite3_vfs_find(NULL);
    assert_non_null(shim_base);
    shim_vfs = *shim_base;
    shim_vfs.zName = "sl_shim";
    shim_vfs.szOsFile = (int)sizeof(struct shim_file) + shim_base->szOsFile;
    shim_vfs.xOpen = shim_open;
    shim_vfs.pNext = NULL;
    assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}

static void test_sqlite_io_errors_keep_rows_and_positions_consistent(void **state)
{
    struct fixture *fx = *state;
    struct sl_batch *b[3] = {orders("in", 0, 300), orders("in", 300, 300), orders("in", 600, 300)};
    char path[160];
    long nth;

    shim_register();
    for (nth = 1; nth < 500; nth++) {
        snprintf(path, sizeof(path), "%s/io%ld.db", fx->dir, nth);
        struct sl_sqlite_writer_conf conf = conf_for(path, "t");
        conf.cache_bytes = 16 * 1024; /* small cache: pages spill inside the transaction */
        struct sl_sqlite_writer *w = open_ok(&conf);
        write_ok(w, b, 1, NULL);
        shim_countdown = nth;
        shim_failed = 0;
        int rc = write_n(w, &b[1], 2, NULL);
        shim_countdown = 0;
        /* A failed commit must not leave the connection unusable. */
        int rc2 = write_n(w, &b[1], 2, NULL);
        w = sl_sqlite_writer_close(w);
        assert_true(rc == 0 || rc == SL_EIO);
        assert_true(rc2 == 0 || rc2 == SL_EIO);
        assert_consistent(path, 0);
        w = open_ok(&conf); /* restart: replay everything */
        write_ok(w, b, 3, NULL);
        w = sl_sqlite_writer_close(w);
        assert_int_equal(q_int(path, "SELECT count(*) FROM t"), 900);
        assert_int_equal(q_int(path, "SELECT count(DISTINCT id) FROM t"), 900);
        if (shim_failed == 0) {
            break;
        }
    }
    assert_true(nth > 2); /* some failures were injected before one run got through */
    assert_int_equal(sqlite3_vfs_unregister(&shim_vfs), SQLITE_OK);
    unref_all(b, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_sqlite_values_keep_their_type),
        T(test_sqlite_weird_names_are_quoted),
        T(test_sqlite_table_evolves_with_new_fields),
        T(test_sqlite_ragged_records_share_statements),
        T(test_sqlite_wide_records_respect_variable_limit),
        T(test_sqlite_explicit_columns_are_typed),
        T(test_sqlite_open_refuses_bad_conf),
        T(test_sqlite_case_collision_is_rejected),
        T(test_sqlite_rejects_are_reported_before_the_commit),
        T(test_sqlite_reserved_and_empty_names_are_rejected),
        T(test_sqlite_constraint_failure_rejects_one_row),
        T(test_sqlite_upsert_updates_the_records_columns),
        T(test_sqlite_replay_after_restart_is_trimmed),
        T(test_sqlite_overlapping_batch_is_trimmed_per_record),
        T(test_sqlite_zombie_batch_is_trimmed),
        T(test_sqlite_partitions_and_streams_are_separate),
        T(test_sqlite_positions_are_keyed_by_writer_and_source),
        T(test_sqlite_old_checkpoints_are_adopted),
        T(test_sqlite_fingerprint_follows_the_file),
        T(test_sqlite_new_epoch_starts_over),
        T(test_sqlite_fanout_siblings_keep_own_positions),
        T(test_sqlite_batch_without_stream_is_written_whole),
        T(test_sqlite_dead_letters_share_the_transaction),
        T(test_sqlite_two_writers_interleave_on_one_file),
        T(test_sqlite_concurrent_writers_are_serialised),
        T(test_sqlite_writers_of_one_file_share_a_connection),
        T(test_sqlite_wal_stays_short_during_a_bulk_load),
        T(test_sqlite_busy_database_returns_eretry),
        T(test_sqlite_failed_allocations_leave_no_trace),
        T(test_sqlite_io_errors_keep_rows_and_positions_consistent),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
