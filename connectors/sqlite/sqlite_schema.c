/* SPDX-License-Identifier: MIT */
/* Tables, columns and statements of the SQLite writer: creates a table (from
 * declared columns or the first record), adds columns for new fields while
 * tolerating another process doing the same, looks field names up
 * case-insensitively as SQLite does, and caches the prepared multi-row
 * INSERTs per column list. Auto-created columns have no declared type, so no
 * affinity converts a value. Runs on the writer's thread. */
#include "mem.h"
#include "sqlite_priv.h"

#include <string.h>

static uint32_t hash_ci(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a over ASCII-lowercased bytes */

    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c + ('a' - 'A'));
        }
        h = (h ^ c) * 16777619u;
    }
    return h;
}

/* SQLite folds ASCII letters only (sqlite3StrICmp), so do we. */
static bool equal_ci(const char *a, const char *b, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char x = (unsigned char)a[i];
        unsigned char y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') {
            x = (unsigned char)(x + ('a' - 'A'));
        }
        if (y >= 'A' && y <= 'Z') {
            y = (unsigned char)(y + ('a' - 'A'));
        }
        if (x != y) {
            return false;
        }
    }
    return true;
}

int sl__sqlite_quote(struct sl_buf *buf, const char *name, size_t len)
{
    int rc = sl_buf_putc(buf, '"');

    for (size_t i = 0; i < len && rc == 0; i++) {
        rc = name[i] == '"' ? sl_buf_append(buf, "\"\"", 2) : sl_buf_putc(buf, name[i]);
    }
    return rc == 0 ? sl_buf_putc(buf, '"') : rc;
}

bool sl__sqlite_reserved(const char *name, size_t len)
{
    return len >= SL__SQLITE_RESERVED_LEN &&
           equal_ci(name, SL__SQLITE_RESERVED, SL__SQLITE_RESERVED_LEN);
}

/* The type text to declare, or NULL for none: "ANY" would give NUMERIC
 * affinity in an ordinary table, which turns "00501" into 501. */
static const char *decl_type(const char *type)
{
    if (type == NULL || type[0] == '\0' || (strlen(type) == 3 && equal_ci(type, "ANY", 3))) {
        return NULL;
    }
    return type;
}

static bool type_valid(const char *type)
{
    for (const char *p = type; *p != '\0'; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              strchr(" _(),+-", *p) != NULL)) {
            return false;
        }
    }
    return true;
}

/* ==== Targets ==== */

#define APPEND_LIT(buf, lit) sl_buf_append((buf), (lit), sizeof(lit) - 1)

static int check_decl(const struct sl__sqlite_target *t, struct sl_err *err)
{
    for (uint32_t i = 0; i < t->ndecl; i++) {
        const char *name = t->decl_names[i];
        const char *type = t->decl_types[i];
        if (t->decl_lens[i] == 0 || sl__sqlite_reserved(name, t->decl_lens[i])) {
            return sl_err_set(err, SL_ECONFIG, "table %s: column name '%s' is empty or reserved",
                              t->name, name);
        }
        if (type != NULL && !type_valid(type)) {
            return sl_err_set(err, SL_ECONFIG, "table %s: column '%s': bad type '%s'", t->name,
                              name, type);
        }
        for (uint32_t j = 0; j < i; j++) {
            if (t->decl_lens[j] == t->decl_lens[i] &&
                equal_ci(t->decl_names[j], name, t->decl_lens[i])) {
                return sl_err_set(err, SL_ECONFIG, "table %s: columns '%s' and '%s' are the same",
                                  t->name, t->decl_names[j], name);
            }
        }
    }
    return 0;
}

static void decl_push(struct sl__sqlite_target *t, const char *name, const char *type)
{
    t->decl_names[t->ndecl] = name;
    t->decl_types[t->ndecl] = type;
    t->decl_lens[t->ndecl++] = (uint32_t)strlen(name);
}

/* decl = the declared columns, then each key that is not one of them. */
static int build_decl(struct sl__sqlite_target *t,
                      const struct sl_sqlite_column *cols,
                      size_t ncols,
                      const char *const *keys,
                      size_t nkeys,
                      struct sl_err *err)
{
    t->decl_names = sl_calloc(ncols + nkeys + 1, sizeof(*t->decl_names));
    t->decl_types = sl_calloc(ncols + nkeys + 1, sizeof(*t->decl_types));
    t->decl_lens = sl_calloc(ncols + nkeys + 1, sizeof(*t->decl_lens));
    if (t->decl_names == NULL || t->decl_types == NULL || t->decl_lens == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < ncols; i++) {
        if (cols[i].name == NULL) {
            return sl_err_set(err, SL_ECONFIG, "table %s: a column has no name", t->name);
        }
        decl_push(t, cols[i].name, cols[i].type);
    }
    for (size_t k = 0; k < nkeys; k++) {
        uint32_t i = 0;
        if (keys[k] == NULL) {
            return sl_err_set(err, SL_ECONFIG, "table %s: a key column has no name", t->name);
        }
        while (i < t->ndecl && strcmp(t->decl_names[i], keys[k]) != 0) {
            i++;
        }
        if (i == t->ndecl) {
            decl_push(t, keys[k], NULL);
        } else if (i >= ncols) {
            return sl_err_set(err, SL_ECONFIG, "table %s: key column '%s' is listed twice", t->name,
                              keys[k]);
        }
    }
    return check_decl(t, err);
}

int sl__sqlite_target_init(struct sl__sqlite_target *t,
                           const char *name,
                           const struct sl_sqlite_column *cols,
                           size_t ncols,
                           const char *const *keys,
                           size_t nkeys,
                           struct sl_err *err)
{
    struct sl_buf q = {0};

    memset(t, 0, sizeof(*t));
    t->name = name;
    t->shape_cache = true;
    if (name == NULL || name[0] == '\0' || sl__sqlite_reserved(name, strlen(name))) {
        return sl_err_set(err, SL_ECONFIG, "table name '%s' is empty or reserved (_sluice_)",
                          name != NULL ? name : "");
    }
    if (sl__sqlite_quote(&q, name, strlen(name)) != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    t->qname = q.data;
    t->keys = nkeys > 0 ? keys : NULL;
    t->nkeys = nkeys;
    if (nkeys > 0) {
        t->key_cols = sl_calloc(nkeys, sizeof(*t->key_cols));
        if (t->key_cols == NULL) {
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
    }
    return build_decl(t, cols, ncols, keys, nkeys, err);
}

static void cache_clear(struct sl__sqlite_target *t)
{
    for (size_t i = 0; i < SL__SQLITE_CACHE; i++) {
        struct sl__sqlite_stmt *e = &t->cache[i];
        (void)sqlite3_finalize(e->multi);
        (void)sqlite3_finalize(e->single);
        sl_free(e->cols);
        memset(e, 0, sizeof(*e));
    }
}

static void schema_clear(struct sl__sqlite_schema *s)
{
    for (uint32_t i = 0; i < s->ncols; i++) {
        sl_free(s->cols[i].name);
    }
    s->ncols = 0;
    s->exists = false;
    if (s->index != NULL) {
        memset(s->index, 0, s->index_cap * sizeof(*s->index));
    }
}

void sl__sqlite_target_drop_statements(struct sl__sqlite_target *t)
{
    cache_clear(t);
}

void sl__sqlite_target_release(struct sl__sqlite_target *t)
{
    cache_clear(t);
    schema_clear(&t->schema);
    sl_free(t->schema.cols);
    sl_free(t->schema.index);
    sl_free(t->qname);
    sl_free(t->decl_names);
    sl_free(t->decl_types);
    sl_free(t->decl_lens);
    sl_free(t->key_cols);
    sl_free(t->inset);
    sl_free(t->slot);
    sl_free(t->seen);
    sl_free(t->sorted);
    sl_free(t->ucols);
    sl_free(t->map);
    sl_free(t->prev_map);
    memset(t, 0, sizeof(*t));
}

/* ==== Schema ==== */

enum sl__sqlite_found sl__sqlite_schema_find(const struct sl__sqlite_schema *s,
                                             const char *name,
                                             uint32_t len,
                                             uint32_t *ret_col)
{
    if (s->ncols == 0) {
        return SL__SQLITE_MISSING;
    }
    uint32_t h = hash_ci(name, len);
    uint32_t mask = s->index_cap - 1;
    for (uint32_t i = h & mask; s->index[i] != 0; i = (i + 1) & mask) {
        const struct sl__sqlite_col *c = &s->cols[s->index[i] - 1];
        if (c->hash == h && c->len == len && equal_ci(c->name, name, len)) {
            *ret_col = s->index[i] - 1;
            return memcmp(c->name, name, len) == 0 ? SL__SQLITE_FOUND : SL__SQLITE_COLLIDES;
        }
    }
    return SL__SQLITE_MISSING;
}

static int grow_index(struct sl__sqlite_schema *s)
{
    uint32_t cap = s->index_cap ? s->index_cap * 2 : 64;
    uint32_t *index = sl_calloc(cap, sizeof(*index));

    if (index == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t c = 0; c < s->ncols; c++) {
        uint32_t i = s->cols[c].hash & (cap - 1);
        while (index[i] != 0) {
            i = (i + 1) & (cap - 1);
        }
        index[i] = c + 1;
    }
    sl_free(s->index);
    s->index = index;
    s->index_cap = cap;
    return 0;
}

static int schema_push(struct sl__sqlite_schema *s, const char *name)
{
    if (s->ncols == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 16;
        struct sl__sqlite_col *cols = sl_realloc(s->cols, cap * sizeof(*cols));
        if (cols == NULL) {
            return SL_ENOMEM;
        }
        s->cols = cols;
        s->cap = cap;
    }
    if ((s->ncols + 1) * 2 > s->index_cap && grow_index(s) != 0) {
        return SL_ENOMEM;
    }
    struct sl__sqlite_col *c = &s->cols[s->ncols];
    c->len = (uint32_t)strlen(name);
    c->name = sl_strndup(name, c->len);
    if (c->name == NULL) {
        return SL_ENOMEM;
    }
    c->hash = hash_ci(name, c->len);
    uint32_t i = c->hash & (s->index_cap - 1);
    while (s->index[i] != 0) {
        i = (i + 1) & (s->index_cap - 1);
    }
    s->index[i] = ++s->ncols;
    return 0;
}

/* Grows the per-column scratch arrays to the schema's column count. */
static int grow_scratch(struct sl__sqlite_target *t)
{
    uint32_t cap = t->cols_cap ? t->cols_cap : 16;

    while (cap < t->schema.ncols) {
        cap *= 2;
    }
    if (cap == t->cols_cap) {
        return 0;
    }
    uint8_t *inset = sl_realloc(t->inset, cap);
    uint32_t *slot = inset ? sl_realloc(t->slot, cap * sizeof(*slot)) : NULL;
    struct sl__sqlite_seen *seen = slot ? sl_realloc(t->seen, cap * sizeof(*seen)) : NULL;
    uint32_t *sorted = seen ? sl_realloc(t->sorted, cap * sizeof(*sorted)) : NULL;
    uint32_t *ucols = sorted ? sl_realloc(t->ucols, cap * sizeof(*ucols)) : NULL;
    /* Each successful realloc is kept at once, so a failure leaks nothing. */
    t->inset = inset ? inset : t->inset;
    t->slot = slot ? slot : t->slot;
    t->seen = seen ? seen : t->seen;
    t->sorted = sorted ? sorted : t->sorted;
    t->ucols = ucols ? ucols : t->ucols;
    if (ucols == NULL) {
        return SL_ENOMEM;
    }
    memset(inset + t->cols_cap, 0, cap - t->cols_cap);
    memset(seen + t->cols_cap, 0, (cap - t->cols_cap) * sizeof(*seen));
    t->cols_cap = cap;
    return 0;
}

/* True when the columns we knew are still the first columns, in order, so
 * cached statements, the group and the shape cache stay valid. */
static bool schema_extends(const struct sl__sqlite_schema *s, char **old, uint32_t nold)
{
    if (nold > s->ncols) {
        return false;
    }
    for (uint32_t i = 0; i < nold; i++) {
        if (strcmp(old[i], s->cols[i].name) != 0) {
            return false;
        }
    }
    return true;
}

static int read_columns(sqlite3 *db, struct sl__sqlite_target *t, struct sl_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1)", -1, &st, NULL);

    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_text(st, 1, t->name, -1, SQLITE_STATIC);
    }
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        rc = name == NULL ? SQLITE_NOMEM : SQLITE_OK;
        if (rc == SQLITE_OK && schema_push(&t->schema, name) != 0) {
            (void)sqlite3_finalize(st);
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
    }
    if (rc != SQLITE_DONE) {
        rc = sl__sqlite_fail(db, rc, err, "reading the columns");
        (void)sqlite3_finalize(st);
        return rc;
    }
    (void)sqlite3_finalize(st);
    t->schema.exists = t->schema.ncols > 0;
    return 0;
}

/* Re-reads the table's columns. Keeps the old names until the new list is
 * read, to tell whether the cached statements still apply. */
static int schema_load(sqlite3 *db, struct sl__sqlite_target *t, struct sl_err *err)
{
    struct sl__sqlite_schema *s = &t->schema;
    uint32_t nold = s->ncols;
    char **old = sl_calloc(nold + 1, sizeof(*old));
    int rc;

    if (old == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < nold; i++) {
        old[i] = s->cols[i].name;
    }
    s->ncols = 0; /* the names now belong to old */
    s->exists = false;
    if (s->index != NULL) {
        memset(s->index, 0, s->index_cap * sizeof(*s->index));
    }
    rc = read_columns(db, t, err);
    if (rc != 0 || !schema_extends(s, old, nold)) {
        cache_clear(t);
        t->prev = NULL;
    }
    for (uint32_t i = 0; i < nold; i++) {
        sl_free(old[i]);
    }
    sl_free(old);
    if (rc == 0 && grow_scratch(t) != 0) {
        rc = sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    return rc;
}

/* Appends `"name" TYPE` for a column definition. */
static int append_coldef(struct sl_buf *sql, const char *name, uint32_t len, const char *type)
{
    int rc = sl__sqlite_quote(sql, name, len);

    type = decl_type(type);
    if (rc == 0 && type != NULL) {
        rc = sl_buf_appendf(sql, " %s", type);
    }
    return rc;
}

static int exec_sql(sqlite3 *db, struct sl_buf *sql, struct sl_err *err, const char *what)
{
    int rc = sqlite3_exec(db, sql->data, NULL, NULL, NULL);

    if (rc == SQLITE_OK) {
        return 0;
    }
    if (strncmp(sqlite3_errmsg(db), "too many columns", 16) == 0) {
        /* A data reason: the record that needs the column is rejected.
         * SQLite's own text names its scratch copy of the table in an
         * ALTER TABLE ("too many columns on sqlite_altertab_t"). */
        return sl_err_set(err, SL_EDATA,
                          "%s: the table would have more than %d columns, SQLite's limit", what,
                          sqlite3_limit(db, SQLITE_LIMIT_COLUMN, -1));
    }
    return sl__sqlite_fail(db, rc, err, what);
}

static int create_table(sqlite3 *db,
                        struct sl__sqlite_target *t,
                        struct sl_buf *sql,
                        const char *const *names,
                        const uint32_t *lens,
                        const char *const *types,
                        const uint32_t *todo,
                        uint32_t ntodo,
                        struct sl_err *err)
{
    int rc = 0;

    sl_buf_reset(sql);
    rc |= sl_buf_appendf(sql, "CREATE TABLE IF NOT EXISTS %s(", t->qname);
    for (uint32_t j = 0; j < ntodo; j++) {
        uint32_t i = todo[j];
        rc |= j > 0 ? sl_buf_putc(sql, ',') : 0;
        rc |= append_coldef(sql, names[i], lens[i], types ? types[i] : NULL);
    }
    rc |= sl_buf_putc(sql, ')');
    if (rc != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    return exec_sql(db, sql, err, "creating the table");
}

static int add_column(sqlite3 *db,
                      struct sl__sqlite_target *t,
                      struct sl_buf *sql,
                      const char *name,
                      uint32_t len,
                      const char *type,
                      struct sl_err *err)
{
    int rc = 0;

    sl_buf_reset(sql);
    rc |= sl_buf_appendf(sql, "ALTER TABLE %s ADD COLUMN ", t->qname);
    rc |= append_coldef(sql, name, len, type);
    if (rc != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    rc = sqlite3_exec(db, sql->data, NULL, NULL, NULL);
    if (rc != SQLITE_OK && strncmp(sqlite3_errmsg(db), "duplicate column name", 21) == 0) {
        return 0; /* another process added it: the re-read schema will show it */
    }
    return rc == SQLITE_OK ? 0 : exec_sql(db, sql, err, "adding a column");
}

int sl__sqlite_schema_add(sqlite3 *db,
                          struct sl__sqlite_target *t,
                          struct sl_buf *sql,
                          const char *const *names,
                          const uint32_t *lens,
                          const char *const *types,
                          uint32_t n,
                          struct sl_err *err)
{
    uint32_t *todo = sl_calloc(n + 1, sizeof(*todo));
    uint32_t ntodo = 0;
    uint32_t col;
    int rc;

    if (todo == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    rc = schema_load(db, t, err); /* authoritative: we hold the write lock */
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (sl__sqlite_schema_find(&t->schema, names[i], lens[i], &col) == SL__SQLITE_MISSING) {
            todo[ntodo++] = i;
        }
    }
    /* Refused before any column is added: the columns of a record that is
     * then rejected would stay (the transaction commits the other rows),
     * and every later record with a new field would be rejected too. */
    int most = sqlite3_limit(db, SQLITE_LIMIT_COLUMN, -1);
    if (rc == 0 && (uint64_t)t->schema.ncols + ntodo > (uint64_t)most) {
        rc = sl_err_set(err, SL_EDATA,
                        "%s: the table would have more than %d columns, SQLite's limit",
                        t->schema.exists ? "adding a column" : "creating the table", most);
    } else if (rc == 0 && ntodo > 0 && !t->schema.exists) {
        rc = create_table(db, t, sql, names, lens, types, todo, ntodo, err);
    } else {
        for (uint32_t j = 0; j < ntodo && rc == 0; j++) {
            uint32_t i = todo[j];
            rc = add_column(db, t, sql, names[i], lens[i], types ? types[i] : NULL, err);
        }
    }
    sl_free(todo);
    return rc == 0 && ntodo > 0 ? schema_load(db, t, err) : rc;
}

static int
create_key_index(sqlite3 *db, struct sl__sqlite_target *t, struct sl_buf *sql, struct sl_err *err)
{
    struct sl_buf ix = {0};
    int rc = 0;

    /* One index per table, "_sluice_ux_<table>": changing key_columns later
     * makes ON CONFLICT fail with a clear message instead of adding indexes. */
    rc |= APPEND_LIT(&ix, SL__SQLITE_RESERVED "ux_");
    rc |= sl_buf_append(&ix, t->name, strlen(t->name));
    sl_buf_reset(sql);
    rc |= APPEND_LIT(sql, "CREATE UNIQUE INDEX IF NOT EXISTS ");
    rc |= rc == 0 ? sl__sqlite_quote(sql, ix.data, ix.len) : rc;
    sl_buf_release(&ix);
    rc |= sl_buf_appendf(sql, " ON %s(", t->qname);
    for (size_t k = 0; k < t->nkeys; k++) {
        rc |= k > 0 ? sl_buf_putc(sql, ',') : 0;
        rc |= sl__sqlite_quote(sql, t->keys[k], strlen(t->keys[k]));
    }
    rc |= sl_buf_putc(sql, ')');
    if (rc != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    return exec_sql(db, sql, err, "creating the upsert key index");
}

static int resolve_keys(struct sl__sqlite_target *t, struct sl_err *err)
{
    for (size_t k = 0; k < t->nkeys; k++) {
        const char *key = t->keys[k];
        if (sl__sqlite_schema_find(&t->schema, key, (uint32_t)strlen(key), &t->key_cols[k]) ==
            SL__SQLITE_MISSING) {
            return sl_err_set(err, SL_EIO, "table %s: key column '%s' is missing", t->name, key);
        }
    }
    return 0;
}

int sl__sqlite_target_prepare(sqlite3 *db,
                              struct sl__sqlite_target *t,
                              struct sl_buf *sql,
                              struct sl_err *err)
{
    int rc;

    if (t->ready) {
        return 0;
    }
    if (t->ndecl > 0) {
        rc = sl__sqlite_schema_add(db, t, sql, t->decl_names, t->decl_lens, t->decl_types, t->ndecl,
                                   err);
    } else {
        rc = schema_load(db, t, err);
    }
    if (rc == 0 && t->nkeys > 0) {
        rc = resolve_keys(t, err);
    }
    if (rc == 0 && t->nkeys > 0) {
        rc = create_key_index(db, t, sql, err);
    }
    t->ready = rc == 0;
    return rc;
}

/* ==== Statements ==== */

uint32_t sl__sqlite_rows_for(uint32_t ncols, uint32_t max_vars)
{
    uint32_t rows = ncols > 0 ? max_vars / ncols : SL__SQLITE_MAX_ROWS;

    return rows < 1 ? 1 : rows > SL__SQLITE_MAX_ROWS ? SL__SQLITE_MAX_ROWS : rows;
}

static bool is_key(const struct sl__sqlite_target *t, uint32_t col)
{
    for (size_t k = 0; k < t->nkeys; k++) {
        if (t->key_cols[k] == col) {
            return true;
        }
    }
    return false;
}

static int append_upsert(struct sl_buf *sql,
                         const struct sl__sqlite_target *t,
                         const uint32_t *cols,
                         uint32_t ncols)
{
    const struct sl__sqlite_col *sc = t->schema.cols;
    int rc = APPEND_LIT(sql, " ON CONFLICT(");
    bool any = false;

    for (size_t k = 0; k < t->nkeys; k++) {
        rc |= k > 0 ? sl_buf_putc(sql, ',') : 0;
        rc |= sl__sqlite_quote(sql, sc[t->key_cols[k]].name, sc[t->key_cols[k]].len);
    }
    rc |= APPEND_LIT(sql, ") DO ");
    for (uint32_t i = 0; i < ncols; i++) {
        if (is_key(t, cols[i])) {
            continue;
        }
        rc |= sl_buf_append(sql, any ? "," : "UPDATE SET ", any ? 1 : 11);
        rc |= sl__sqlite_quote(sql, sc[cols[i]].name, sc[cols[i]].len);
        rc |= APPEND_LIT(sql, "=excluded.");
        rc |= sl__sqlite_quote(sql, sc[cols[i]].name, sc[cols[i]].len);
        any = true;
    }
    return any ? rc : rc | APPEND_LIT(sql, "NOTHING");
}

static int build_insert(struct sl_buf *sql,
                        const struct sl__sqlite_target *t,
                        const uint32_t *cols,
                        uint32_t ncols,
                        uint32_t rows)
{
    const struct sl__sqlite_col *sc = t->schema.cols;
    int rc = 0;

    sl_buf_reset(sql);
    rc |= sl_buf_appendf(sql, "INSERT INTO %s(", t->qname);
    for (uint32_t i = 0; i < ncols; i++) {
        rc |= i > 0 ? sl_buf_putc(sql, ',') : 0;
        rc |= sl__sqlite_quote(sql, sc[cols[i]].name, sc[cols[i]].len);
    }
    rc |= APPEND_LIT(sql, ") VALUES ");
    for (uint32_t r = 0; r < rows; r++) {
        rc |= sl_buf_append(sql, r > 0 ? ",(" : "(", r > 0 ? 2 : 1);
        for (uint32_t i = 0; i < ncols; i++) {
            rc |= sl_buf_append(sql, i > 0 ? ",?" : "?", i > 0 ? 2 : 1);
        }
        rc |= sl_buf_putc(sql, ')');
    }
    if (t->keys != NULL) {
        rc |= append_upsert(sql, t, cols, ncols);
    }
    return rc;
}

static int prepare_insert(sqlite3 *db,
                          const struct sl__sqlite_target *t,
                          struct sl_buf *sql,
                          const uint32_t *cols,
                          uint32_t ncols,
                          uint32_t rows,
                          sqlite3_stmt **ret_st,
                          struct sl_err *err)
{
    if (build_insert(sql, t, cols, ncols, rows) != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    int rc = sqlite3_prepare_v3(db, sql->data, (int)sql->len + 1, SQLITE_PREPARE_PERSISTENT, ret_st,
                                NULL);
    return rc == SQLITE_OK ? 0 : sl__sqlite_fail(db, rc, err, "preparing the INSERT");
}

static uint32_t hash_cols(const uint32_t *cols, uint32_t ncols)
{
    uint32_t h = 2166136261u;

    for (uint32_t i = 0; i < ncols; i++) {
        h = (h ^ cols[i]) * 16777619u;
    }
    return h;
}

static struct sl__sqlite_stmt *cache_victim(struct sl__sqlite_target *t)
{
    struct sl__sqlite_stmt *victim = &t->cache[0];

    for (size_t i = 0; i < SL__SQLITE_CACHE; i++) {
        if (t->cache[i].cols == NULL) {
            return &t->cache[i];
        }
        if (t->cache[i].used < victim->used) {
            victim = &t->cache[i];
        }
    }
    (void)sqlite3_finalize(victim->multi);
    (void)sqlite3_finalize(victim->single);
    sl_free(victim->cols);
    memset(victim, 0, sizeof(*victim));
    return victim;
}

int sl__sqlite_stmt_get(sqlite3 *db,
                        struct sl__sqlite_target *t,
                        struct sl_buf *sql,
                        uint32_t max_vars,
                        const uint32_t *cols,
                        uint32_t ncols,
                        struct sl__sqlite_stmt **ret,
                        struct sl_err *err)
{
    uint32_t h = hash_cols(cols, ncols);
    int rc;

    for (size_t i = 0; i < SL__SQLITE_CACHE; i++) {
        struct sl__sqlite_stmt *e = &t->cache[i];
        if (e->cols != NULL && e->hash == h && e->ncols == ncols &&
            memcmp(e->cols, cols, ncols * sizeof(*cols)) == 0) {
            e->used = ++t->tick;
            *ret = e;
            return 0;
        }
    }
    struct sl__sqlite_stmt *e = cache_victim(t);
    e->cols = sl_malloc(ncols * sizeof(*cols));
    if (e->cols == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    memcpy(e->cols, cols, ncols * sizeof(*cols));
    e->ncols = ncols;
    e->hash = h;
    e->rows = sl__sqlite_rows_for(ncols, max_vars);
    e->used = ++t->tick;
    rc = prepare_insert(db, t, sql, cols, ncols, 1, &e->single, err);
    if (rc == 0 && e->rows > 1) {
        rc = prepare_insert(db, t, sql, cols, ncols, e->rows, &e->multi, err);
    }
    if (rc != 0) {
        (void)sqlite3_finalize(e->single);
        sl_free(e->cols);
        memset(e, 0, sizeof(*e));
        return rc;
    }
    *ret = e;
    return 0;
}
