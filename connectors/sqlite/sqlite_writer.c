/* SPDX-License-Identifier: MIT */
/* The SQLite writer's write path: one connection, one BEGIN IMMEDIATE
 * transaction per call holding the rows, the dead letters and the positions.
 * Records map to columns (case-insensitive names, as SQLite), consecutive
 * records are grouped into multi-row INSERTs prepared once per column list,
 * and the hot path allocates nothing. Runs on the writer's thread. */
#include "sqlite_writer.h"

#include "fsutil.h"
#include "mem.h"
#include "sqlite_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define SL__SQLITE_BUSY_MS 5000 /* default busy_timeout */
#define SL__SQLITE_WHY     320  /* room for a rejection reason */

/* The dead-letter table's columns (DESIGN "Dead letters"), all untyped. */
static const struct sl_sqlite_column dead_cols[] = {
    {"_error", NULL}, {"_node", NULL},      {"_source", NULL}, {"_file", NULL}, {"_line", NULL},
    {"_topic", NULL}, {"_partition", NULL}, {"_offset", NULL}, {"_raw", NULL},  {"_id", NULL},
};

int sl__sqlite_fail(sqlite3 *db, int rc, struct sl_err *err, const char *what)
{
    int code = SL_EIO;

    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED) {
        code = SL_ERETRY;
    } else if ((rc & 0xff) == SQLITE_NOMEM) {
        code = SL_ENOMEM;
    }
    return sl_err_set(err, code, "%s: %s", what,
                      db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* ==== Open and close ==== */

static int check_conf(const struct sl_sqlite_writer_conf *conf, struct sl_err *err)
{
    if (conf->path == NULL || conf->path[0] == '\0') {
        return sl_err_set(err, SL_ECONFIG, "sqlite: path is empty");
    }
    if ((unsigned)conf->mode >= SL_SQLITE_MODE_COUNT) {
        return sl_err_set(err, SL_ECONFIG, "sqlite: bad mode %d", (int)conf->mode);
    }
    if (conf->mode == SL_SQLITE_UPSERT && conf->nkey_columns == 0) {
        return sl_err_set(err, SL_ECONFIG, "sqlite: mode upsert needs key_columns");
    }
    if (conf->dead_table != NULL && conf->table != NULL &&
        sqlite3_stricmp(conf->dead_table, conf->table) == 0) {
        return sl_err_set(err, SL_ECONFIG, "sqlite: dead-letter table %s is the sink's table",
                          conf->table);
    }
    return 0;
}

/* Runs a statement that returns no rows (or ignores them) and resets it. */
static int run(sqlite3 *db, sqlite3_stmt *st, struct sl_err *err, const char *what)
{
    int rc = sqlite3_step(st);

    (void)sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sl__sqlite_fail(db, rc, err, what);
}

static int init_targets(struct sl_sqlite_writer *w, struct sl_err *err)
{
    const struct sl_sqlite_writer_conf *conf = &w->conf;
    bool upsert = conf->mode == SL_SQLITE_UPSERT;
    int rc = sl__sqlite_target_init(&w->main, conf->table, conf->columns, conf->ncolumns,
                                    upsert ? conf->key_columns : NULL,
                                    upsert ? conf->nkey_columns : 0, err);

    if (rc == 0 && conf->dead_table != NULL) {
        /* The store's upsert key, so that rows it writes itself (for sinks
         * in other files) and rows written here meet one unique index. */
        rc = sl__sqlite_target_init(&w->dead, conf->dead_table, dead_cols,
                                    sizeof(dead_cols) / sizeof(dead_cols[0]), conf->dead_keys,
                                    conf->ndead_keys, err);
        /* Dead rows are built on the stack: never compare with a previous one. */
        w->dead.shape_cache = false;
    }
    return rc;
}

struct sl_sqlite_writer *sl_sqlite_writer_open(const struct sl_sqlite_writer_conf *conf,
                                               struct sl_err *err)
{
    struct sl_sqlite_writer *w = sl_calloc(1, sizeof(*w));
    int rc;

    if (w == NULL) {
        sl_err_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    w->conf = *conf;
    if (w->conf.writer_id == NULL) {
        w->conf.writer_id = conf->sink_name != NULL ? conf->sink_name : "";
    }
    rc = check_conf(conf, err);
    if (rc == 0) {
        rc = init_targets(w, err);
    }
    if (rc == 0) {
        rc = sl_mkdir_parents(conf->path) == 0
                 ? 0
                 : sl_err_set(err, SL_EIO, "%s: cannot create its directory: %s", conf->path,
                              strerror(errno));
    }
    if (rc == 0) {
        uint32_t busy_ms = conf->busy_timeout_ms ? conf->busy_timeout_ms : SL__SQLITE_BUSY_MS;
        w->file = sl__sqlite_file_open(conf->path, busy_ms, conf->cache_bytes, err);
        rc = w->file != NULL ? 0 : SL_EIO;
    }
    if (rc != 0) {
        return sl_sqlite_writer_close(w);
    }
    w->db = w->file->db;
    return w;
}

struct sl_sqlite_writer *sl_sqlite_writer_close(struct sl_sqlite_writer *w)
{
    if (w == NULL) {
        return NULL;
    }
    /* The statements are on the file's connection: finalized in our turn. */
    if (w->file != NULL) {
        sl__sqlite_file_take(w->file, SL__SQLITE_SHORT);
    }
    sl__sqlite_target_release(&w->main);
    sl__sqlite_target_release(&w->dead);
    if (w->file != NULL) {
        sl__sqlite_file_give(w->file);
    }
    w->file = sl__sqlite_file_close(w->file);
    sl_buf_release(&w->sql);
    sl_buf_release(&w->reasons);
    sl_free(w->pos);
    sl_free(w->rejects);
    sl_free(w);
    return NULL;
}

/* ==== Mapping fields to columns ==== */

static int why_set(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes a rejection reason; returns 1, the "rejected" result. */
static int why_set(char *why, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, SL__SQLITE_WHY, fmt, ap);
    va_end(ap);
    return 1;
}

/* Field names in messages: at most 64 bytes of them. */
#define NAME_ARG(f) (int)((f)->name_len < 64 ? (f)->name_len : 64), (f)->name

static int grow_u32(uint32_t **arr, uint32_t *cap, uint32_t need)
{
    if (need <= *cap) {
        return 0;
    }
    uint32_t c = *cap ? *cap : 64;
    while (c < need) {
        c *= 2;
    }
    uint32_t *p = sl_realloc(*arr, c * sizeof(*p));
    if (p == NULL) {
        return SL_ENOMEM;
    }
    *arr = p;
    *cap = c;
    return 0;
}

static bool shape_matches(const struct sl__sqlite_target *t, const struct sl_field *f, uint32_t n)
{
    if (t->prev == NULL || t->nprev != n) {
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        const struct sl_field *p = &t->prev[i];
        if (p->name_len != f[i].name_len ||
            (p->name != f[i].name && memcmp(p->name, f[i].name, p->name_len) != 0)) {
            return false;
        }
    }
    return true;
}

static uint32_t next_stamp(struct sl__sqlite_target *t)
{
    if (++t->stamp == 0) {
        memset(t->seen, 0, t->cols_cap * sizeof(*t->seen));
        t->stamp = 1;
    }
    return t->stamp;
}

/* Maps each field to its column in t->prev_map (SKIP for a missing column
 * or a name that a later field repeats: the last one wins). Returns 0 with
 * *ret_missing and *ret_ncols, or 1 (rejected, why set). */
static int map_fields(struct sl__sqlite_target *t,
                      const struct sl_field *f,
                      uint32_t n,
                      uint32_t *ret_missing,
                      uint32_t *ret_ncols,
                      char *why)
{
    uint32_t stamp = next_stamp(t);
    uint32_t *map = t->prev_map;
    uint32_t missing = 0, ncols = 0, col = 0;

    for (uint32_t i = 0; i < n; i++) {
        if (sl__sqlite_reserved(f[i].name, f[i].name_len)) {
            return why_set(why, "field '%.*s' uses the reserved prefix _sluice_", NAME_ARG(&f[i]));
        }
        switch (sl__sqlite_schema_find(&t->schema, f[i].name, f[i].name_len, &col)) {
        case SL__SQLITE_MISSING:
            map[i] = SL__SQLITE_SKIP;
            missing++;
            break;
        case SL__SQLITE_COLLIDES:
            return why_set(why,
                           "field '%.*s' collides with column '%s' (names differ only in case)",
                           NAME_ARG(&f[i]), t->schema.cols[col].name);
        case SL__SQLITE_FOUND:
            if (t->seen[col].stamp == stamp) {
                map[t->seen[col].field] = SL__SQLITE_SKIP;
            } else {
                ncols++;
            }
            t->seen[col].stamp = stamp;
            t->seen[col].field = i;
            map[i] = col;
            break;
        }
    }
    *ret_missing = missing;
    *ret_ncols = ncols;
    return 0;
}

/* Collects the distinct new column names of a record into names/lens
 * (*ret_k of them). Returns 0, or 1 (why set) for a record whose new names
 * differ only in case, contain a NUL byte or are empty. */
static int collect_missing(const struct sl__sqlite_target *t,
                           const struct sl_field *f,
                           uint32_t n,
                           const char **names,
                           uint32_t *lens,
                           uint32_t *ret_k,
                           char *why)
{
    uint32_t k = 0, col;

    for (uint32_t i = 0; i < n; i++) {
        if (sl__sqlite_schema_find(&t->schema, f[i].name, f[i].name_len, &col) !=
            SL__SQLITE_MISSING) {
            continue;
        }
        if (f[i].name_len == 0 || memchr(f[i].name, '\0', f[i].name_len) != NULL) {
            return why_set(why, "field name '%.*s' is empty or contains a NUL byte",
                           NAME_ARG(&f[i]));
        }
        uint32_t j = 0;
        while (j < k && !(lens[j] == f[i].name_len &&
                          sqlite3_strnicmp(names[j], f[i].name, (int)lens[j]) == 0)) {
            j++;
        }
        if (j < k && memcmp(names[j], f[i].name, lens[j]) != 0) {
            return why_set(why,
                           "field '%.*s' collides with field '%.*s' (names differ only in case)",
                           NAME_ARG(&f[i]), (int)(lens[j] < 64 ? lens[j] : 64), names[j]);
        }
        if (j == k) {
            names[k] = f[i].name;
            lens[k++] = f[i].name_len;
        }
    }
    *ret_k = k;
    return 0;
}

/* Adds the record's new columns (DDL inside the transaction). Returns 0, 1
 * (rejected: why set) or SL_E* (err set). */
static int add_missing(struct sl_sqlite_writer *w,
                       struct sl__sqlite_target *t,
                       const struct sl_field *f,
                       uint32_t n,
                       char *why,
                       struct sl_err *err)
{
    const char **names = sl_calloc(n + 1, sizeof(*names));
    uint32_t *lens = sl_calloc(n + 1, sizeof(*lens));
    struct sl_err local = {0};
    uint32_t k = 0;
    int rc;

    if (names == NULL || lens == NULL) {
        rc = sl_err_set(err, SL_ENOMEM, "out of memory");
    } else {
        rc = collect_missing(t, f, n, names, lens, &k, why);
    }
    if (rc == 0 && k > 0) {
        rc = sl__sqlite_schema_add(w->db, t, &w->sql, names, lens, NULL, k, &local);
        if (rc == SL_EDATA) {
            rc = why_set(why, "%s", local.msg); /* e.g. too many columns */
        } else if (rc != 0 && err != NULL) {
            *err = local;
        }
    }
    sl_free(names);
    sl_free(lens);
    return rc;
}

/* Maps a record's fields to columns, adding columns for new fields, into
 * t->prev_map (the shape cache). Returns 0 with *ret_ncols, 1 (rejected: why
 * set) or SL_E* (err set). */
static int resolve(struct sl_sqlite_writer *w,
                   struct sl__sqlite_target *t,
                   const struct sl_field *f,
                   uint32_t n,
                   uint32_t *ret_ncols,
                   char *why,
                   struct sl_err *err)
{
    uint32_t missing = 0;
    int rc = 0;

    if (t->shape_cache && shape_matches(t, f, n)) {
        *ret_ncols = t->prev_ncols;
        return 0;
    }
    t->prev = NULL;
    if (grow_u32(&t->prev_map, &t->prev_cap, n + 1) != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        rc = map_fields(t, f, n, &missing, ret_ncols, why);
        if (rc != 0 || missing == 0) {
            break;
        }
        rc = attempt == 0 ? add_missing(w, t, f, n, why, err)
                          : sl_err_set(err, SL_EIO, "table %s: added columns are missing", t->name);
        if (rc != 0) {
            break;
        }
    }
    if (rc == 0 && *ret_ncols == 0) {
        rc = why_set(why, "record has no fields");
    }
    if (rc == 0) {
        t->prev = f;
        t->nprev = n;
        t->prev_ncols = *ret_ncols;
    }
    return rc;
}

/* Upsert: every key column must be set and not null. 0 or 1 (why set). */
static int
check_keys(const struct sl__sqlite_target *t, const struct sl_field *f, uint32_t n, char *why)
{
    for (size_t k = 0; k < t->nkeys; k++) {
        uint32_t i = 0;
        while (i < n && t->prev_map[i] != t->key_cols[k]) {
            i++;
        }
        if (i == n || f[i].val.type == SL_TYPE_NULL) {
            return why_set(why, "key column '%s' is %s", t->keys[k], i == n ? "missing" : "null");
        }
    }
    return 0;
}

/* ==== Groups and binding ==== */

static int bind_value(sqlite3_stmt *st, int idx, const struct sl_value *v)
{
    switch (v->type) {
    case SL_TYPE_BOOL:
        return sqlite3_bind_int(st, idx, v->u.b ? 1 : 0);
    case SL_TYPE_INT:
        return sqlite3_bind_int64(st, idx, v->u.i);
    case SL_TYPE_DOUBLE:
        return sqlite3_bind_double(st, idx, v->u.d);
    case SL_TYPE_STR:
    case SL_TYPE_ARRAY:
    case SL_TYPE_OBJECT:
        /* Static: the batch outlives the step, and every step rebinds all. */
        return sqlite3_bind_text64(st, idx, v->u.s != NULL ? v->u.s : "", v->len, SQLITE_STATIC,
                                   SQLITE_UTF8);
    case SL_TYPE_BYTES:
        return v->len > 0 ? sqlite3_bind_blob64(st, idx, v->u.s, v->len, SQLITE_STATIC)
                          : sqlite3_bind_zeroblob(st, idx, 0);
    default:
        return sqlite3_bind_null(st, idx);
    }
}

static int bind_row(const struct sl__sqlite_target *t,
                    sqlite3_stmt *st,
                    const struct sl__sqlite_row *row,
                    uint32_t base,
                    uint32_t ncols)
{
    const uint32_t *map = t->map + row->map;
    int rc = SQLITE_OK;

    if (row->ncols < ncols) {
        for (uint32_t s = 0; s < ncols; s++) {
            (void)sqlite3_bind_null(st, (int)(base + s + 1));
        }
    }
    for (uint32_t i = 0; i < row->nfields && rc == SQLITE_OK; i++) {
        if (map[i] != SL__SQLITE_SKIP) {
            rc = bind_value(st, (int)(base + t->slot[map[i]] + 1), &row->fields[i].val);
        }
    }
    return rc;
}

/* Binds and steps rows through st; returns SQLite's result code. */
static int exec_rows(const struct sl__sqlite_target *t,
                     sqlite3_stmt *st,
                     const struct sl__sqlite_row *rows,
                     uint32_t nrows,
                     uint32_t ncols)
{
    int rc = SQLITE_OK;

    for (uint32_t r = 0; r < nrows && rc == SQLITE_OK; r++) {
        rc = bind_row(t, st, &rows[r], r * ncols, ncols);
    }
    /* A failed bind leaves its message for the reason; the next use rebinds
     * every parameter, so the statement needs no reset then. */
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        (void)sqlite3_reset(st);
    }
    return rc;
}

/* Failures that belong to one record, not to the database. */
static bool is_data_error(int rc)
{
    rc &= 0xff;
    return rc == SQLITE_CONSTRAINT || rc == SQLITE_MISMATCH || rc == SQLITE_TOOBIG;
}

static int reject_record(
    struct sl_sqlite_writer *w, uint32_t bi, uint32_t ri, const char *why, struct sl_err *err);

/* Writes the group: one multi-row INSERT when full, else row by row; a row
 * failing for a data reason is rejected (main table only). */
static int exec_group(struct sl_sqlite_writer *w,
                      struct sl__sqlite_target *t,
                      const struct sl__sqlite_stmt *e,
                      struct sl_err *err)
{
    char why[SL__SQLITE_WHY];
    int rc;

    if (t->nrows == e->rows && e->multi != NULL) {
        rc = exec_rows(t, e->multi, t->rows, t->nrows, e->ncols);
        if (rc == SQLITE_DONE) {
            return 0;
        }
        if (!is_data_error(rc) || t != &w->main) {
            return sl__sqlite_fail(w->db, rc, err, "inserting rows");
        }
    }
    for (uint32_t r = 0; r < t->nrows; r++) {
        rc = exec_rows(t, e->single, &t->rows[r], 1, e->ncols);
        if (rc == SQLITE_DONE) {
            continue;
        }
        if (!is_data_error(rc) || t != &w->main) {
            return sl__sqlite_fail(w->db, rc, err, "inserting a row");
        }
        why_set(why, "cannot store the record: %s", sqlite3_errmsg(w->db));
        rc = reject_record(w, t->rows[r].batch, t->rows[r].rec, why, err);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void group_clear(struct sl__sqlite_target *t)
{
    for (uint32_t i = 0; i < t->nucols; i++) {
        t->inset[t->ucols[i]] = 0;
    }
    t->nucols = 0;
    t->nrows = 0;
    t->nmap = 0;
}

static int flush(struct sl_sqlite_writer *w, struct sl__sqlite_target *t, struct sl_err *err)
{
    uint32_t n = t->nucols;
    uint32_t *key = t->sorted;
    int rc;

    if (t->nrows == 0) {
        return 0;
    }
    for (uint32_t i = 0; i < n; i++) { /* insertion sort: a handful of columns */
        uint32_t c = t->ucols[i], j = i;
        for (; j > 0 && key[j - 1] > c; j--) {
            key[j] = key[j - 1];
        }
        key[j] = c;
    }
    struct sl__sqlite_stmt *e = NULL;
    rc = sl__sqlite_stmt_get(w->db, t, &w->sql, w->file->max_vars, key, n, &e, err);
    if (rc == 0) {
        for (uint32_t s = 0; s < n; s++) {
            t->slot[key[s]] = s;
        }
        rc = exec_group(w, t, e, err);
    }
    group_clear(t);
    return rc;
}

/* True when a row with ncols columns, fresh of them new to the group, may
 * join it: insert groups take the union (missing values bind NULL), upsert
 * groups only the same columns (an upsert updates the record's columns). */
static bool row_fits(const struct sl_sqlite_writer *w,
                     const struct sl__sqlite_target *t,
                     uint32_t ncols,
                     uint32_t fresh)
{
    if (t->keys != NULL) {
        return fresh == 0 && ncols == t->nucols;
    }
    /* The group is never full here (flushed when it fills), so only new
     * columns can make the row not fit. */
    return fresh == 0 || t->nrows + 1 <= sl__sqlite_rows_for(t->nucols + fresh, w->file->max_vars);
}

/* Adds the record just resolved (mapping in t->prev_map) to the group,
 * flushing before when it does not fit and after when it is full. */
static int add_row(struct sl_sqlite_writer *w,
                   struct sl__sqlite_target *t,
                   const struct sl_field *f,
                   uint32_t n,
                   uint32_t ncols,
                   uint32_t bi,
                   uint32_t ri,
                   struct sl_err *err)
{
    const uint32_t *map = t->prev_map;
    uint32_t fresh = 0;
    int rc = 0;

    for (uint32_t i = 0; i < n; i++) {
        fresh += map[i] != SL__SQLITE_SKIP && !t->inset[map[i]];
    }
    if (t->nrows > 0 && !row_fits(w, t, ncols, fresh)) {
        rc = flush(w, t, err);
        fresh = ncols; /* the union is empty now */
    }
    if (rc == 0 && grow_u32(&t->map, &t->map_cap, t->nmap + n + 1) != 0) {
        rc = sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    if (rc != 0) {
        return rc;
    }
    struct sl__sqlite_row *row = &t->rows[t->nrows++];
    *row = (struct sl__sqlite_row){f, n, t->nmap, ncols, bi, ri};
    memcpy(t->map + t->nmap, map, n * sizeof(*map));
    t->nmap += n;
    for (uint32_t i = 0; i < n && fresh > 0; i++) {
        if (map[i] != SL__SQLITE_SKIP && !t->inset[map[i]]) {
            t->inset[map[i]] = 1;
            t->ucols[t->nucols++] = map[i];
        }
    }
    if (fresh > 0) {
        t->rows_cap = sl__sqlite_rows_for(t->nucols, w->file->max_vars);
    }
    return t->nrows >= t->rows_cap ? flush(w, t, err) : 0;
}

/* ==== Dead letters ==== */

static struct sl_field text_field(const char *name, const char *s)
{
    struct sl_field f = {.name = name, .name_len = (uint32_t)strlen(name)};

    f.val = s != NULL ? sl_value_str(s, (uint32_t)strlen(s)) : sl_value_null();
    return f;
}

static struct sl_field int_field(const char *name, int64_t i)
{
    struct sl_field f = {.name = name, .name_len = (uint32_t)strlen(name)};

    f.val = sl_value_int(i);
    return f;
}

/* True when s is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
static bool utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > len || (n == 2 && c < 0xC2)) {
            return false;
        }
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xC0) != 0x80) {
                return false;
            }
        }
        if ((n == 3 && ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0))) ||
            (n == 4 &&
             ((c == 0xF0 && s[i + 1] < 0x90) || c > 0xF4 || (c == 0xF4 && s[i + 1] >= 0x90)))) {
            return false;
        }
        i += n;
    }
    return true;
}

/* _raw: the input cut at 64 KiB on a character boundary; BLOB when the input
 * is not valid UTF-8 (a reason to dead-letter it in the first place) or
 * holds a NUL byte (SQLite's text functions and tools stop there). */
static struct sl_field raw_field(const struct sl_record *rec)
{
    struct sl_field f = {.name = "_raw", .name_len = 4, .val = sl_value_null()};
    uint32_t len = rec->raw_len;

    if (rec->raw == NULL) {
        return f;
    }
    if (len > SL__SQLITE_RAW_MAX) {
        len = SL__SQLITE_RAW_MAX;
        while (len > 0 && ((unsigned char)rec->raw[len] & 0xC0) == 0x80) {
            len--;
        }
    }
    f.val = sl_value_str(rec->raw, len);
    if (!utf8_valid((const unsigned char *)rec->raw, len) || memchr(rec->raw, '\0', len) != NULL) {
        f.val.type = SL_TYPE_BYTES;
    }
    return f;
}

/* Fills f (room for 9) with a dead letter's columns, its id written in
 * id; returns how many. */
static uint32_t dead_fields(struct sl_field *f, const struct sl_dead *d, char id[SL_DEAD_ID_MAX])
{
    const struct sl_record *rec = &d->rec;
    uint32_t n = 0;

    f[n++] = text_field("_error", d->error);
    f[n++] = text_field("_node", d->node);
    f[n++] = text_field("_source", d->source);
    if (rec->meta.line > 0) {
        f[n++] = text_field("_file", rec->meta.stream);
        f[n++] = int_field("_line", rec->meta.line);
    } else if (rec->meta.stream != NULL) {
        f[n++] = text_field("_topic", rec->meta.stream);
        f[n++] = int_field("_partition", rec->meta.partition);
        f[n++] = int_field("_offset", rec->meta.offset);
    }
    f[n++] = raw_field(rec);
    sl_dead_id(d, id);
    f[n++] = text_field("_id", id);
    return n;
}

/* Writes one dead letter to the dead-letter table at once (its fields live
 * on this stack frame). 0 or SL_E*. */
static int write_dead(struct sl_sqlite_writer *w, const struct sl_dead *d, struct sl_err *err)
{
    struct sl__sqlite_target *t = &w->dead;
    struct sl_field f[9];
    char why[SL__SQLITE_WHY], id[SL_DEAD_ID_MAX];
    uint32_t n = dead_fields(f, d, id);
    uint32_t ncols = 0;
    int rc = sl__sqlite_target_prepare(w->db, t, &w->sql, err);

    if (rc == 0) {
        rc = resolve(w, t, f, n, &ncols, why, err);
    }
    if (rc == 1) {
        rc = sl_err_set(err, SL_EIO, "table %s: %s", t->name, why);
    }
    if (rc == 0) {
        rc = add_row(w, t, f, n, ncols, UINT32_MAX, UINT32_MAX, err);
    }
    return rc == 0 ? flush(w, t, err) : rc;
}

static const char *source_name(const struct sl_sqlite_writer *w, const struct sl_batch *batch)
{
    return batch->source < w->conf.nsource_names ? w->conf.source_names[batch->source] : NULL;
}

/* Remembers a rejected record for the callback and, with a dead-letter
 * table, stores it there now. 0 or SL_E*. */
static int reject_record(
    struct sl_sqlite_writer *w, uint32_t bi, uint32_t ri, const char *why, struct sl_err *err)
{
    const struct sl_batch *batch = w->batches[bi];
    size_t off = w->reasons.len;

    if (w->nrejects == w->rejects_cap) {
        uint32_t cap = w->rejects_cap ? w->rejects_cap * 2 : 16;
        struct sl__sqlite_reject *r = sl_realloc(w->rejects, cap * sizeof(*r));
        if (r == NULL) {
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
        w->rejects = r;
        w->rejects_cap = cap;
    }
    if (sl_buf_append(&w->reasons, why, strlen(why) + 1) != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    w->rejects[w->nrejects++] = (struct sl__sqlite_reject){bi, ri, (uint32_t)off};
    if (w->dead.name == NULL) {
        return 0;
    }
    w->dead_stored++;
    struct sl_dead d = {.rec = batch->recs[ri],
                        .error = why,
                        .node = w->conf.sink_name,
                        .source = source_name(w, batch)};
    sl_dead_set_origin(&d, batch);
    return write_dead(w, &d, err);
}

/* ==== Transactions ==== */

static int write_record(struct sl_sqlite_writer *w, uint32_t bi, uint32_t ri, struct sl_err *err)
{
    struct sl__sqlite_target *t = &w->main;
    const struct sl_record *rec = &w->batches[bi]->recs[ri];
    char why[SL__SQLITE_WHY];
    uint32_t ncols = 0;
    int rc = resolve(w, t, rec->fields, rec->nfields, &ncols, why, err);

    if (rc == 0 && t->keys != NULL) {
        rc = check_keys(t, rec->fields, rec->nfields, why);
    }
    if (rc == 1) {
        return reject_record(w, bi, ri, why, err);
    }
    return rc == 0 ? add_row(w, t, rec->fields, rec->nfields, ncols, bi, ri, err) : rc;
}

/* A batch this large holds long records: SQLite builds each record whole
 * (a copy of its values) and keeps the largest in the statement. */
#define BIG_BATCH_BYTES (4u << 20)

/* Whether batch's records may be long: the bytes it and the batches it
 * points into (a map's or a route's output, a fork) hold. */
static bool is_big(const struct sl_batch *batch)
{
    size_t bytes = 0;

    for (const struct sl_batch *b = batch; b != NULL; b = b->parent) {
        bytes += sl_batch_bytes(b);
    }
    return bytes > BIG_BATCH_BYTES;
}

/* After a write of long records: the page cache's clean pages go back to
 * the system (the statements' record buffers went in write_rows), so that
 * several sinks writing long records do not each keep their largest
 * (memory_limit). */
static void give_back(struct sl_sqlite_writer *w)
{
    if (w->big) {
        (void)sqlite3_db_release_memory(w->db);
        w->big = false;
    }
}

static int write_batch(struct sl_sqlite_writer *w, uint32_t bi, struct sl_err *err)
{
    const struct sl_batch *batch = w->batches[bi];

    int64_t from = 0;
    int rc = sl__sqlite_ck_begin(w, batch, &from, err);

    for (uint32_t i = 0; i < batch->n && rc == 0; i++) {
        if (batch->recs[i].meta.offset >= from) {
            rc = write_record(w, bi, i, err);
        } else {
            w->replayed++;
        }
    }
    for (uint32_t i = 0; i < batch->ndead && rc == 0 && w->dead.name != NULL; i++) {
        const struct sl_dead *d = &batch->dead[i];
        if (d->rec.meta.offset >= from) {
            w->dead_stored++;
            rc = write_dead(w, d, err);
        }
    }
    if (rc == 0) {
        sl__sqlite_ck_advance(w, batch);
    }
    return rc;
}

static int write_all(struct sl_sqlite_writer *w, size_t n, struct sl_err *err)
{
    int rc = sl__sqlite_target_prepare(w->db, &w->main, &w->sql, err);

    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = write_batch(w, (uint32_t)i, err);
    }
    if (rc == 0) {
        rc = flush(w, &w->main, err);
    }
    return rc == 0 ? sl__sqlite_ck_store(w, err) : rc;
}

/* Undoes the transaction; what we believed about the schema may have been
 * rolled back too, so it is read again at the next transaction. */
static void abort_txn(struct sl_sqlite_writer *w)
{
    if (!sqlite3_get_autocommit(w->db)) {
        (void)sqlite3_step(w->file->rollback);
        (void)sqlite3_reset(w->file->rollback);
    }
    group_clear(&w->main);
    group_clear(&w->dead);
    w->main.ready = false;
    w->dead.ready = false;
    w->main.prev = NULL;
}

/* Tells the caller what was rejected, before the commit. */
static int report_rejects(struct sl_sqlite_writer *w,
                          sl_sqlite_reject_fn reject,
                          sl_sqlite_commit_fn before_commit,
                          void *arg,
                          struct sl_err *err)
{
    for (uint32_t i = 0; i < w->nrejects && reject != NULL; i++) {
        const struct sl__sqlite_reject *r = &w->rejects[i];
        int rc = reject(arg, w->batches[r->batch], r->rec, w->reasons.data + r->reason);
        if (rc != 0) {
            return sl_err_set(err, rc, "sqlite: cannot keep a rejected record: %s",
                              sl_strerror(rc));
        }
    }
    return before_commit != NULL ? before_commit(arg, err) : 0;
}

/* SQLite builds each record whole, a copy of its values: one writer at a
 * time builds long records, so that a fan-out of long lines into several
 * SQLite sinks holds one such copy, not one per sink. Held only while the
 * rows are built, after BEGIN IMMEDIATE and before the rejects go to the
 * dead-letter store and COMMIT: its holder waits for nothing else (no
 * busy handler, no other lock). Held around the whole transaction, a
 * writer waited here holding its store's dead_lock (more than 4 MiB of
 * dead letters) while the holder waited for that dead_lock to hand its
 * rejects on (tests/integration/test_sqlite_long_rows_dead.sh). */
static pthread_mutex_t big_writes = PTHREAD_MUTEX_INITIALIZER;

static int write_rows(struct sl_sqlite_writer *w, size_t n, struct sl_err *err)
{
    bool big = false;

    for (size_t i = 0; i < n && !big; i++) {
        big = is_big(w->batches[i]);
    }
    w->big = big; /* give_back after the commit */
    if (!big) {
        return write_all(w, n, err);
    }
    pthread_mutex_lock(&big_writes);
    int rc = write_all(w, n, err);
    /* The statements keep the largest record they built: finalized (they
     * are prepared again when next used) before the next writer builds. */
    sl__sqlite_target_drop_statements(&w->main);
    sl__sqlite_target_drop_statements(&w->dead);
    pthread_mutex_unlock(&big_writes);
    return rc;
}

int sl_sqlite_writer_write(struct sl_sqlite_writer *w,
                           struct sl_batch *const *batches,
                           size_t n,
                           sl_sqlite_reject_fn reject,
                           sl_sqlite_commit_fn before_commit,
                           void *arg,
                           uint64_t *ret_replayed,
                           struct sl_err *err)
{
    int rc;

    if (n == 0) {
        return 0;
    }
    w->batches = batches;
    w->npos = 0;
    w->nrejects = 0;
    w->replayed = 0;
    w->dead_stored = 0;
    sl_buf_reset(&w->reasons);
    w->main.prev = NULL; /* the previous call's batches may be gone */
    uint8_t level = 0;
    for (size_t i = 0; i < n; i++) {
        level = batches[i]->level > level ? batches[i]->level : level;
    }
    sl__sqlite_file_take(w->file, level);
    rc = run(w->db, w->file->begin, err, "BEGIN IMMEDIATE");
    if (rc == 0) {
        rc = write_rows(w, n, err);
    }
    if (rc == 0) {
        rc = report_rejects(w, reject, before_commit, arg, err);
    }
    if (rc == 0) {
        rc = run(w->db, w->file->commit, err, "COMMIT");
    }
    if (rc != 0) {
        abort_txn(w);
    }
    bool finish = rc == 0 && sl__sqlite_wal_due(w->file);
    give_back(w);
    sl__sqlite_file_give(w->file);
    if (finish) {
        /* In a turn of its own: a writer that queued meanwhile (an alert
         * beside a bulk load) goes first. */
        sl__sqlite_file_take(w->file, level);
        sl__sqlite_wal_finish(w->file);
        sl__sqlite_file_give(w->file);
    }
    if (rc != 0) {
        return rc;
    }
    if (ret_replayed != NULL) {
        *ret_replayed = w->replayed;
    }
    w->dead_stored_last = w->dead_stored;
    return 0;
}

uint64_t sl_sqlite_writer_dead_stored(const struct sl_sqlite_writer *w)
{
    return w->dead_stored_last;
}
