/* SPDX-License-Identifier: MIT */
/* `lookup`: an example sluice stage plugin that holds state. At init it
 * loads a CSV reference table (a header row, then rows; quoted fields with
 * "" escapes) into a hash table keyed by one of its columns; each record
 * whose `key` field matches a row gets that row's other columns as string
 * fields (named with `prefix`). A record with no match is kept, dropped or
 * dead-lettered (`on_miss`). The table is read-only once loaded, so
 * several batches may be looked up at once (stateless in sluice's sense). */
#include <errno.h>
#include <inttypes.h>
#include <sluice/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lookup_conf {
    const char *path;
    const char *key;
    const char *column;
    const char *prefix;
    int on_miss;
};

static const char *const miss_choices[] = {"keep", "drop", "dead", NULL};
enum { MISS_KEEP, MISS_DROP, MISS_DEAD };

/* clang-format off */
static const struct sluice_option lookup_options[] = {
    SLUICE_OPT_ROW(struct lookup_conf, path, SLUICE_OPT_STR, NULL, 0, 0, NULL, SLUICE_OPT_REQUIRED,
                   "CSV file of the reference table, with a header row; read once at start."),
    SLUICE_OPT_ROW(struct lookup_conf, key, SLUICE_OPT_STR, NULL, 0, 0, NULL, SLUICE_OPT_REQUIRED,
                   "Record field to look up (a string or an integer)."),
    SLUICE_OPT_ROW(struct lookup_conf, column, SLUICE_OPT_STR, NULL, 0, 0, NULL, 0,
                   "Column of the table it matches; default: the first."),
    SLUICE_OPT_ROW(struct lookup_conf, prefix, SLUICE_OPT_STR, NULL, 0, 0, NULL, 0,
                   "Put before the names of the fields added."),
    SLUICE_OPT_ROW(struct lookup_conf, on_miss, SLUICE_OPT_ENUM, "keep", 0, 0, miss_choices, 0,
                   "A record with no match: keep it as it is, drop it (counted), or dead-letter it."),
    {0},
};
/* clang-format on */

static const char *const lookup_counters[] = {"hits", "misses", NULL};
enum { COUNT_HITS, COUNT_MISSES };

static const struct sluice_host_api *host;

/* The loaded table: rows of ncols strings, and an open-addressing index of
 * the key column. */
struct table {
    const char *key; /* the record field (the conf's, borrowed) */
    int on_miss;
    size_t ncols, keycol;
    char **names; /* header, with the prefix */
    char **cells; /* row r, column c: cells[r * ncols + c] */
    size_t nrows, cap;
    size_t *slots; /* row + 1, 0 empty; nslots a power of two */
    size_t nslots;
};

static uint64_t hash(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    }
    return h;
}

/* Reads one CSV row from f into fields (malloc'ed strings). Returns the
 * number of fields, 0 at the end, -1 on error (errno or a message). */
static long read_row(FILE *f, char ***ret_fields, char *errbuf, size_t errbuf_len)
{
    char **fields = NULL;
    size_t n = 0, cap = 0, len = 0, bcap = 0;
    char *buf = NULL;
    int c, quoted = 0, any = 0;

    for (;;) {
        c = fgetc(f);
        if (c == EOF && !any) {
            return 0;
        }
        any = 1;
        if (quoted) {
            if (c == EOF) {
                snprintf(errbuf, errbuf_len, "unterminated quote at the end of the file");
                goto fail;
            }
            if (c == '"') {
                int next = fgetc(f);
                if (next != '"') {
                    quoted = 0;
                    ungetc(next, f);
                    continue;
                }
            }
        } else if (c == '"' && len == 0) {
            quoted = 1;
            continue;
        } else if (c == ',' || c == '\n' || c == EOF) {
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                char **grown = realloc(fields, cap * sizeof(*fields));
                if (grown == NULL) {
                    goto oom;
                }
                fields = grown;
            }
            if (len > 0 && buf[len - 1] == '\r' && c != ',') {
                len--;
            }
            fields[n] = malloc(len + 1);
            if (fields[n] == NULL) {
                goto oom;
            }
            memcpy(fields[n], buf != NULL ? buf : "", len);
            fields[n++][len] = '\0';
            len = 0;
            if (c != ',') {
                free(buf);
                *ret_fields = fields;
                return (long)n;
            }
            continue;
        }
        if (len + 1 >= bcap) {
            bcap = bcap ? bcap * 2 : 64;
            char *grown = realloc(buf, bcap);
            if (grown == NULL) {
                goto oom;
            }
            buf = grown;
        }
        buf[len++] = (char)c;
    }
oom:
    snprintf(errbuf, errbuf_len, "out of memory");
fail:
    for (size_t i = 0; i < n; i++) {
        free(fields[i]);
    }
    free(fields);
    free(buf);
    return -1;
}

static void table_free(struct table *t)
{
    if (t == NULL) {
        return;
    }
    for (size_t i = 0; t->names != NULL && i < t->ncols; i++) {
        free(t->names[i]);
    }
    for (size_t i = 0; t->cells != NULL && i < t->nrows * t->ncols; i++) {
        free(t->cells[i]);
    }
    free(t->names);
    free(t->cells);
    free(t->slots);
    free(t);
}

static const size_t *find_slot(const struct table *t, const char *key, size_t len)
{
    for (size_t i = hash(key, len) & (t->nslots - 1);; i = (i + 1) & (t->nslots - 1)) {
        size_t row = t->slots[i];
        if (row == 0) {
            return &t->slots[i];
        }
        const char *k = t->cells[(row - 1) * t->ncols + t->keycol];
        if (strlen(k) == len && memcmp(k, key, len) == 0) {
            return &t->slots[i];
        }
    }
}

static int index_rows(struct table *t, char *errbuf, size_t errbuf_len)
{
    t->nslots = 16;
    while (t->nslots < t->nrows * 2) {
        t->nslots *= 2;
    }
    t->slots = calloc(t->nslots, sizeof(*t->slots));
    if (t->slots == NULL) {
        snprintf(errbuf, errbuf_len, "out of memory");
        return SLUICE_ENOMEM;
    }
    for (size_t r = 0; r < t->nrows; r++) {
        const char *k = t->cells[r * t->ncols + t->keycol];
        size_t *slot = (size_t *)find_slot(t, k, strlen(k));
        if (*slot != 0) {
            snprintf(errbuf, errbuf_len, "key '%s' is in rows %zu and %zu", k, *slot + 1, r + 2);
            return SLUICE_EINVAL;
        }
        *slot = r + 1;
    }
    return 0;
}

static int load_table(const struct lookup_conf *conf, struct table *t, char *errbuf, size_t len)
{
    FILE *f = fopen(conf->path, "r");
    char **row = NULL;
    long n;
    int rc = SLUICE_EINVAL;

    if (f == NULL) {
        snprintf(errbuf, len, "%s: %s", conf->path, strerror(errno));
        return SLUICE_EINVAL;
    }
    n = read_row(f, &row, errbuf, len);
    if (n <= 0) {
        if (n == 0) {
            snprintf(errbuf, len, "%s: no header row", conf->path);
        }
        goto out;
    }
    t->ncols = (size_t)n;
    t->names = row;
    t->keycol = t->ncols; /* none yet */
    for (size_t c = 0; c < t->ncols; c++) {
        if (conf->column == NULL ? c == 0 : strcmp(row[c], conf->column) == 0) {
            t->keycol = c;
        }
        const char *prefix = conf->prefix != NULL ? conf->prefix : "";
        char *name = malloc(strlen(prefix) + strlen(row[c]) + 1);
        if (name == NULL) {
            snprintf(errbuf, len, "out of memory");
            goto out;
        }
        strcpy(name, prefix);
        strcat(name, row[c]);
        free(row[c]);
        row[c] = name;
    }
    if (t->keycol == t->ncols) {
        snprintf(errbuf, len, "%s: no column '%s' in its header", conf->path, conf->column);
        goto out;
    }
    for (size_t line = 2; (n = read_row(f, &row, errbuf, len)) > 0; line++) {
        if ((size_t)n != t->ncols) {
            snprintf(errbuf, len, "%s:%zu: %ld fields, the header has %zu", conf->path, line, n,
                     t->ncols);
            for (long i = 0; i < n; i++) {
                free(row[i]);
            }
            free(row);
            goto out;
        }
        if (t->nrows == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 64;
            char **grown = realloc(t->cells, t->cap * t->ncols * sizeof(*grown));
            if (grown == NULL) {
                snprintf(errbuf, len, "out of memory");
                for (long i = 0; i < n; i++) {
                    free(row[i]);
                }
                free(row);
                goto out;
            }
            t->cells = grown;
        }
        memcpy(t->cells + t->nrows * t->ncols, row, t->ncols * sizeof(*row));
        free(row);
        t->nrows++;
    }
    rc = n < 0 ? SLUICE_EINVAL : index_rows(t, errbuf, len);
out:
    fclose(f);
    return rc;
}

static int lookup_init(
    struct sluice_stage *st, const void *conf, void **ret_ctx, char *errbuf, size_t errbuf_len)
{
    struct table *t = calloc(1, sizeof(*t));

    if (t == NULL) {
        snprintf(errbuf, errbuf_len, "out of memory");
        return SLUICE_ENOMEM;
    }
    int rc = load_table(conf, t, errbuf, errbuf_len);
    if (rc != 0) {
        table_free(t);
        return rc;
    }
    const struct lookup_conf *c = conf;
    t->key = c->key;
    t->on_miss = c->on_miss;
    host->log(st, SLUICE_LOG_INFO, "%zu rows loaded from %s", t->nrows, c->path);
    *ret_ctx = t;
    return 0;
}

static int lookup_process(struct sluice_stage *st, void *ctx, struct sluice_batch *batch)
{
    const struct table *t = ctx;
    size_t n = host->batch_size(batch);
    char num[24];

    for (size_t i = 0; i < n; i++) {
        struct sluice_record *rec = host->batch_record(batch, i);
        struct sluice_value v;
        const char *key = NULL;
        size_t len = 0;
        if (host->get(rec, t->key, strlen(t->key), &v) == 0) {
            if (v.type == SLUICE_TYPE_STR) {
                key = v.u.s;
                len = v.len;
            } else if (v.type == SLUICE_TYPE_INT) {
                len = (size_t)snprintf(num, sizeof(num), "%" PRId64, v.u.i);
                key = num;
            }
        }
        size_t row = key != NULL ? *find_slot(t, key, len) : 0;
        if (row == 0) {
            host->count(st, COUNT_MISSES, 1);
            if (t->on_miss == MISS_DROP) {
                host->drop(batch, rec);
            } else if (t->on_miss == MISS_DEAD) {
                char reason[160];
                snprintf(reason, sizeof(reason), "lookup: no row for %s '%.*s'", t->key,
                         key != NULL ? (int)(len < 64 ? len : 64) : 0, key != NULL ? key : "");
                if (host->dead(st, batch, rec, reason) != 0) {
                    return SLUICE_ENOMEM;
                }
            }
            continue;
        }
        host->count(st, COUNT_HITS, 1);
        for (size_t c = 0; c < t->ncols; c++) {
            if (c == t->keycol) {
                continue;
            }
            const char *cell = t->cells[(row - 1) * t->ncols + c];
            struct sluice_value s = {.type = SLUICE_TYPE_STR, .len = (uint32_t)strlen(cell)};
            s.u.s = cell;
            int rc = host->set(batch, rec, t->names[c], strlen(t->names[c]), &s);
            if (rc == SLUICE_EINVAL) {
                /* Not UTF-8: the table's bytes go in as they are. */
                s.type = SLUICE_TYPE_BYTES;
                rc = host->set(batch, rec, t->names[c], strlen(t->names[c]), &s);
            }
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

static void lookup_fini(void *ctx)
{
    table_free(ctx);
}

static const struct sluice_stage_def lookup_stage = {
    .abi_version = SLUICE_ABI_VERSION,
    .struct_size = sizeof(struct sluice_stage_def),
    .name = "lookup",
    .description = "Adds the columns of a CSV reference table's matching row to each record.",
    .kind = SLUICE_KIND_TRANSFORM,
    .flags = SLUICE_STAGE_STATELESS,
    .conf_size = sizeof(struct lookup_conf),
    .options = lookup_options,
    .init = lookup_init,
    .process = lookup_process,
    .fini = lookup_fini,
    .counters = lookup_counters,
};

static const struct sluice_stage_def *const lookup_stages[] = {&lookup_stage, NULL};

static const struct sluice_plugin lookup_plugin = {
    .abi_version = SLUICE_ABI_VERSION,
    .struct_size = sizeof(struct sluice_plugin),
    .name = "lookup",
    .version = "1.0.0",
    .stages = lookup_stages,
};

SLUICE_EXPORT const struct sluice_plugin *
sluice_plugin_entry(const struct sluice_host_api *api, char *errbuf, size_t errbuf_len)
{
    /* Members are only ever added at the end: a host that has stage_name
     * has every call this plugin makes. */
    if (api->struct_size < offsetof(struct sluice_host_api, stage_name) + sizeof(api->stage_name)) {
        snprintf(errbuf, errbuf_len, "this sluice is older than the plugin (ABI %u.%u)",
                 api->abi_version >> 16, api->abi_version & 0xFFFF);
        return NULL;
    }
    host = api;
    return &lookup_plugin;
}
