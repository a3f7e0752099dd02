/* SPDX-License-Identifier: MIT */
/* The pipeline file loader: reads the file, builds the located YAML tree
 * (conf_yaml.c), applies --set, then checks and converts the top level, the
 * engine section and every node (type, inputs, workers, queue, options via
 * conf_opts.c) before the graph checks (conf_dag.c). The result is one
 * struct sl_conf whose storage is one arena. Thread: main, at start-up. */
#include "conf.h"

#include "buf.h"
#include "conf_int.h"
#include "expr.h"
#include "mem.h"
#include "plugin.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONF_FILE_MAX (16u << 20) /* a pipeline file larger than this is a mistake */
#define MAX_THREADS   1024
#define MAX_WORKERS   64   /* task slots are bits of one word (runtime.c) */
#define MAX_BLOCKING  256  /* SL_SCHED_BLOCKING_MAX */
#define MAX_CPU       1023 /* CPU_SETSIZE - 1 */
#define MAX_QUEUE     65536

static const char *const top_keys[] = {"engine",      "sources", "stages", "sinks",
                                       "dead_letter", "tests",   NULL};
static const char *const sections[] = {"sources", "stages", "sinks"};
static const char *const kind_names[] = {"source", "stage", "sink"};
static const enum sluice_stage_kind section_kinds[] = {SLUICE_KIND_SOURCE, SLUICE_KIND_TRANSFORM,
                                                       SLUICE_KIND_SINK};
const char *const sl__node_own_keys[] = {"type",        "inputs",      "workers",
                                         "workers_min", "workers_max", "queue",
                                         "when_full",   "priority",    NULL};
static const char *const engine_own_keys[] = {
    "threads", "blocking_threads", "cpu_affinity", "plugin_path", "metrics", "control", NULL};

struct engine_conf {
    uint64_t memory_limit;
    uint64_t drain_timeout_ns;
    int work_stealing;
    int log_level;
};

/* In the order of enum sl_log_level (log.h). */
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

/* clang-format off */
static const struct sluice_option engine_options[] = {
    {"memory_limit", SLUICE_OPT_SIZE, "64MiB", offsetof(struct engine_conf, memory_limit),
     1024.0 * 1024.0, 0, NULL, 0, "Bytes of records in flight, all queues together."},
    /* 0 would exit at the first tick of a drain, flushing nothing: a
     * second signal already does that. */
    {"drain_timeout", SLUICE_OPT_DURATION, "30s", offsetof(struct engine_conf, drain_timeout_ns),
     1e6, 0, NULL, 0, "How long a stop may take to flush."},
    {"work_stealing", SLUICE_OPT_BOOL, "true", offsetof(struct engine_conf, work_stealing),
     0, 0, NULL, 0, "Idle workers take tasks from busy ones (false: only to measure what it brings)."},
    {"log_level", SLUICE_OPT_ENUM, "info", offsetof(struct engine_conf, log_level),
     0, 0, log_levels, 0, "The lowest level of the log lines shown (debug: plugins' debug lines too)."},
    {NULL, 0, NULL, 0, 0, 0, NULL, 0, NULL},
};
/* clang-format on */

static const struct sluice_option *
node_option(const struct sl_conf_node *cn, const char *name, enum sluice_opt_type type)
{
    for (const struct sluice_option *o = cn != NULL && cn->conf != NULL ? cn->type->def.options
                                                                        : NULL;
         o != NULL && o->name != NULL; o++) {
        if (o->type == type && strcmp(o->name, name) == 0) {
            return o;
        }
    }
    return NULL;
}

static uint64_t digest(uint64_t h, const struct sl__ynode *y)
{
    h = (h ^ (uint64_t)(y->kind + 1)) * 0x100000001b3ull;
    for (size_t i = 0; y->kind == SL__Y_SCALAR && i < y->len; i++) {
        h = (h ^ (unsigned char)y->text[i]) * 0x100000001b3ull;
    }
    for (size_t i = 0; i < y->nkids; i++) {
        h = digest(h, y->kids[i]);
    }
    return (h ^ 0xFF) * 0x100000001b3ull;
}

uint64_t sl_conf_node_digest(const struct sl_conf_node *cn, uint64_t h)
{
    for (const char *p = cn->name; *p != '\0'; p++) {
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    }
    return cn->yaml != NULL ? digest(h, cn->yaml) : h;
}

const char *sl_conf_node_str(const struct sl_conf_node *cn, const char *name)
{
    const struct sluice_option *o = node_option(cn, name, SLUICE_OPT_STR);

    return o != NULL ? *(const char *const *)((const char *)cn->conf + o->offset) : NULL;
}

const char *sl_conf_node_enum(const struct sl_conf_node *cn, const char *name)
{
    const struct sluice_option *o = node_option(cn, name, SLUICE_OPT_ENUM);

    return o != NULL ? o->choices[*(const int *)((const char *)cn->conf + o->offset)] : NULL;
}

/* ==== Loader helpers ==== */

void *sl__conf_alloc(struct sl__loader *ld, size_t size)
{
    void *p = sl_arena_alloc(ld->arena, size != 0 ? size : 1);

    if (p == NULL) {
        sl__conf_oom(ld);
        return NULL;
    }
    memset(p, 0, size != 0 ? size : 1);
    return p;
}

int sl__conf_oom(struct sl__loader *ld)
{
    sl_err_clear(ld->err);
    return sl_err_set(ld->err, SL_ENOMEM, "out of memory while loading the pipeline file");
}

/* Optimal string alignment distance, case-insensitive; large when either
 * word is too long to be a typo of the other. */
static int distance(const char *a, size_t la, const char *b, size_t lb)
{
    int d[33][33];

    if (la > 32 || lb > 32) {
        return 99;
    }
    for (size_t i = 0; i <= la; i++) {
        for (size_t j = 0; j <= lb; j++) {
            if (i == 0 || j == 0) {
                d[i][j] = (int)(i + j);
                continue;
            }
            int cost = (a[i - 1] | 0x20) != (b[j - 1] | 0x20);
            int best = d[i - 1][j - 1] + cost;

            best = d[i - 1][j] + 1 < best ? d[i - 1][j] + 1 : best;
            best = d[i][j - 1] + 1 < best ? d[i][j - 1] + 1 : best;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best) {
                best = d[i - 2][j - 2] + 1;
            }
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

void sl__hint_init(struct sl__hint *hint, const char *word)
{
    size_t len = strlen(word);

    hint->word = word;
    hint->best = NULL;
    hint->best_len = 0;
    /* Close means: 1 edit for short words, 2 up to 6 letters, 3 beyond. */
    hint->best_dist = len <= 3 ? 2 : len <= 6 ? 3 : 4;
}

void sl__hint_add(struct sl__hint *hint, const char *cand, size_t len)
{
    int d = distance(hint->word, strlen(hint->word), cand, len);

    if (d < hint->best_dist && (size_t)d < strlen(hint->word)) {
        hint->best = cand;
        hint->best_len = len;
        hint->best_dist = d;
    }
}

const char *sl__hint_text(const struct sl__hint *hint, char *buf, size_t len)
{
    if (hint->best == NULL) {
        buf[0] = '\0';
    } else {
        snprintf(buf, len, " (did you mean '%.*s'?)", (int)hint->best_len, hint->best);
    }
    return buf;
}

/* ==== Reading ==== */

static int read_file(struct sl__loader *ld, const char *path, char **ret_text, size_t *ret_len)
{
    struct sl_buf buf = {0};
    FILE *fp = fopen(path, "rb");
    int rc = 0;

    if (fp == NULL) {
        return sl_err_set(ld->err, SL_EIO, "cannot read '%s': %s", path, strerror(errno));
    }
    while (rc == 0 && !feof(fp)) {
        rc = sl_buf_reserve(&buf, 65536);
        if (rc == 0) {
            size_t n = fread(buf.data + buf.len, 1, 65536, fp);

            buf.len += n;
            buf.data[buf.len] = '\0';
        }
        if (rc == 0 && ferror(fp)) {
            rc = sl_err_set(ld->err, SL_EIO, "cannot read '%s': %s", path, strerror(errno));
        } else if (rc == 0 && buf.len > CONF_FILE_MAX) {
            rc = sl_err_set(ld->err, SL_EIO, "cannot read '%s': larger than %u MiB", path,
                            CONF_FILE_MAX >> 20);
        }
    }
    fclose(fp);
    if (rc == SL_ENOMEM) {
        rc = sl__conf_oom(ld);
    }
    if (rc != 0) {
        sl_buf_release(&buf);
        return rc;
    }
    *ret_text = buf.data;
    *ret_len = buf.len;
    return 0;
}

/* ==== Top level and engine ==== */

int sl__check_keys(struct sl__loader *ld,
                   const struct sl__ynode *map,
                   const char *const *known,
                   const char *what)
{
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        const struct sl__ynode *key = map->kids[i];
        struct sl__hint h;
        char hint[96];
        size_t j = 0;

        while (known[j] != NULL && strcmp(known[j], key->text) != 0) {
            j++;
        }
        if (known[j] != NULL) {
            continue;
        }
        sl__hint_init(&h, key->text);
        for (j = 0; known[j] != NULL; j++) {
            sl__hint_add(&h, known[j], strlen(known[j]));
        }
        return sl__yerr(ld, key, "unknown key '%s'%s%s", key->text,
                        sl__hint_text(&h, hint, sizeof(hint)), what);
    }
    return 0;
}

/* *ret = the mapping under name in root, NULL when absent or empty. */
static int section(struct sl__loader *ld,
                   const struct sl__ynode *root,
                   const char *name,
                   const char *what,
                   struct sl__ynode **ret)
{
    struct sl__ynode *val = sl__ymap_find(root, name);
    char buf[64];

    *ret = NULL;
    if (val == NULL || (val->kind == SL__Y_SCALAR && val->tag == SL__T_NULL)) {
        return 0;
    }
    if (val->kind != SL__Y_MAP) {
        return sl__yerr(ld, val, "expected %s, got %s", what, sl__ydescribe(val, buf, sizeof(buf)));
    }
    *ret = val;
    return 0;
}

/* engine.cpu_affinity: false | true | [cpu, ...]. CPUs are checked against
 * the machine at run (pipeline.c), not here: validate may run elsewhere. */
static int load_affinity(struct sl__loader *ld, const struct sl__ynode *val)
{
    struct sl_conf *conf = ld->conf;
    char buf[64];
    int *cpus;

    conf->cpu_affinity = SL_AFFINITY_OFF;
    if (val == NULL) {
        return 0;
    }
    if (val->kind == SL__Y_SCALAR && val->tag == SL__T_BOOL) {
        bool on = val->text[0] == 't' || val->text[0] == 'T';
        conf->cpu_affinity = on ? SL_AFFINITY_ALL : SL_AFFINITY_OFF;
        return 0;
    }
    if (val->kind == SL__Y_SCALAR && val->tag == SL__T_INT) {
        return sl__yerr(ld, val, "a CPU is written as a list, even alone: [%s]", val->text);
    }
    if (val->kind != SL__Y_SEQ || val->nkids == 0) {
        return sl__yerr(ld, val,
                        "expected true, false or a list of CPU numbers such as [0, 2], got %s",
                        val->kind == SL__Y_SEQ ? "an empty list" : sl__ydescribe(val, buf, 64));
    }
    if (val->nkids > MAX_CPU + 1) {
        return sl__yerr(ld, val->kids[MAX_CPU + 1], "at most %d CPUs are listed (one per worker)",
                        MAX_CPU + 1);
    }
    cpus = sl__conf_alloc(ld, val->nkids * sizeof(*cpus));
    if (cpus == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < val->nkids; i++) {
        int64_t cpu = 0;
        int rc = sl__conf_int(ld, val->kids[i], 0, MAX_CPU, &cpu);
        if (rc != 0) {
            return rc;
        }
        cpus[i] = (int)cpu;
    }
    conf->cpu_affinity = SL_AFFINITY_LIST;
    conf->cpus = cpus;
    conf->ncpus = val->nkids;
    return 0;
}

/* A plugin type's option defaults, filled as the loader would fill them
 * for a node that sets nothing: a default the type's own rows refuse is
 * the plugin's mistake, said at load with its file, not the user's at the
 * node (and never, when every user sets the option). */
static int check_plugin_defaults(struct sl__loader *ld,
                                 const struct sl__ynode *at,
                                 const struct sl_node_type *type)
{
    const struct sluice_option *opts = type->def.options;
    size_t n = 0, kept = 0;

    while (opts != NULL && opts[n].name != NULL) {
        n++;
    }
    struct sluice_option *rows = sl__conf_alloc(ld, (n + 1) * sizeof(*rows));
    void *scratch = sl__conf_alloc(ld, type->def.conf_size);
    struct sl__ynode *key = sl__ynew(ld, SL__Y_SCALAR, at->file, at->line, at->col);
    struct sl__ynode *map = sl__ynew(ld, SL__Y_MAP, at->file, at->line, at->col);
    if (rows == NULL || scratch == NULL || key == NULL || map == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (!(opts[i].flags & (SLUICE_OPT_REQUIRED | SLUICE_OPT_LATER))) {
            rows[kept++] = opts[i];
        }
    }
    key->text = type->def.name;
    key->len = strlen(type->def.name);
    key->key = key;
    map->key = key;
    int rc = sl__conf_fill(ld, map, at, rows, scratch, type->def.conf_size, NULL);
    if (rc == SL_ECONFIG) {
        char msg[SL_ERR_MSG_MAX];
        snprintf(msg, sizeof(msg), "%s", ld->err->msg);
        return sl__yerr(ld, at, "plugin %s: type '%s': a default its option rows refuse: %s: %s",
                        sl_plugin_file_of(type), type->def.name, ld->err->path, msg);
    }
    return rc;
}

/* engine.plugin_path: a folder or a list of folders whose *.so files are
 * loaded as plugins, before any node's type is looked up. A plugin's error
 * points at the folder that holds it. */
static int load_plugins(struct sl__loader *ld, const struct sl__ynode *val)
{
    char buf[64];

    if (val == NULL) {
        return 0;
    }
    if (val->kind == SL__Y_SCALAR && val->tag != SL__T_NULL) {
        const struct sl__ynode *one[] = {val};
        struct sl__ynode seq = {.kind = SL__Y_SEQ, .kids = (struct sl__ynode **)one, .nkids = 1};
        return load_plugins(ld, &seq);
    }
    if (val->kind != SL__Y_SEQ) {
        return sl__yerr(ld, val, "expected a list of folders, got %s",
                        sl__ydescribe(val, buf, sizeof(buf)));
    }
    for (size_t i = 0; i < val->nkids; i++) {
        const struct sl__ynode *item = val->kids[i];
        struct sl_err perr = {0};

        if (item->kind != SL__Y_SCALAR || item->len == 0) {
            return sl__yerr(ld, item, "expected a folder, got %s",
                            sl__ydescribe(item, buf, sizeof(buf)));
        }
        int rc = sl_plugin_load_dir(item->text, &perr);
        if (rc == SL_ENOMEM) {
            return sl__conf_oom(ld);
        }
        if (rc != 0) {
            return sl__yerr(ld, item, "%s", perr.msg);
        }
        const struct sl_node_type *type;
        for (size_t t = 0; (type = sl_node_type_at(t)) != NULL; t++) {
            const char *file = sl_plugin_file_of(type);
            if (file != NULL && (rc = check_plugin_defaults(ld, item, type)) != 0) {
                return rc == SL_ENOMEM ? sl__conf_oom(ld) : rc;
            }
        }
    }
    return 0;
}

/* engine.metrics: "host:port", "[v6 address]:port", or a port alone (or
 * ":port"), which listens on the loopback address: metrics are not served
 * beyond this machine unless asked. */
static int load_metrics(struct sl__loader *ld, const struct sl__ynode *val)
{
    const char *text, *colon;
    char buf[64];
    int64_t port = 0;

    if (val == NULL || (val->kind == SL__Y_SCALAR && val->tag == SL__T_NULL)) {
        return 0;
    }
    if (val->kind != SL__Y_SCALAR || val->len == 0) {
        return sl__yerr(ld, val, "expected host:port (127.0.0.1:9600) or a port, got %s",
                        sl__ydescribe(val, buf, sizeof(buf)));
    }
    text = val->text;
    colon = strrchr(text, ':');
    const char *digits = colon != NULL ? colon + 1 : text;
    size_t hlen = colon != NULL ? (size_t)(colon - text) : 0;
    if (digits[0] == '\0' || strspn(digits, "0123456789") != strlen(digits) || strlen(digits) > 5 ||
        (port = strtoll(digits, NULL, 10)) < 1 || port > 65535) {
        return sl__yerr(ld, val, "expected host:port with a port from 1 to 65535, got '%s'", text);
    }
    if (hlen >= 2 && text[0] == '[' && text[hlen - 1] == ']') {
        text++;
        hlen -= 2;
    } else if (memchr(text, ':', hlen) != NULL || memchr(text, '[', hlen) != NULL) {
        return sl__yerr(ld, val, "write an IPv6 address in brackets: [::1]:9600, got '%s'", text);
    }
    ld->conf->metrics_host = hlen == 0 ? "127.0.0.1" : sl_arena_strndup(ld->arena, text, hlen);
    if (ld->conf->metrics_host == NULL) {
        return sl__conf_oom(ld);
    }
    ld->conf->metrics_port = (int)port;
    return 0;
}

/* engine.control: auto (the default: a socket path per pipeline file),
 * a socket path, or false (none). */
static int load_control(struct sl__loader *ld, const struct sl__ynode *val)
{
    char buf[64];

    ld->conf->control = true;
    ld->conf->control_path = NULL;
    if (val == NULL || (val->kind == SL__Y_SCALAR && strcmp(val->text, "auto") == 0)) {
        return 0;
    }
    if (val->kind == SL__Y_SCALAR && val->tag == SL__T_BOOL) {
        if (strcmp(val->text, "true") == 0) {
            return 0;
        }
        ld->conf->control = false;
        return 0;
    }
    if (val->kind != SL__Y_SCALAR || val->tag != SL__T_STR || val->len == 0) {
        return sl__yerr(ld, val, "expected auto, false or a socket path, got %s",
                        sl__ydescribe(val, buf, sizeof(buf)));
    }
    if (val->len >= 108) {
        return sl__yerr(ld, val, "a unix socket path is at most 107 bytes, this one is %zu",
                        val->len);
    }
    ld->conf->control_path = sl_arena_strndup(ld->arena, val->text, val->len);
    return ld->conf->control_path != NULL ? 0 : sl__conf_oom(ld);
}

static int load_engine(struct sl__loader *ld, struct sl__ynode *root)
{
    struct engine_conf ec = {0};
    struct sl__ynode *map = NULL, *threads;
    const struct sl__ynode *at = root;
    int rc = section(ld, root, "engine", "a mapping of engine settings", &map);

    if (rc == 0 && map == NULL) {
        /* Defaults need a place in the tree so their paths read engine.x. */
        struct sl__ynode *key = sl__ynew(ld, SL__Y_SCALAR, ld->file, root->line, root->col);

        map = sl__ynew(ld, SL__Y_MAP, ld->file, root->line, root->col);
        if (key == NULL || map == NULL) {
            return SL_ENOMEM;
        }
        key->text = "engine";
        key->parent = root;
        key->key = key;
        map->parent = root;
        map->key = key;
    }
    if (rc != 0) {
        return rc;
    }
    at = map->key != NULL ? map->key : root;
    ld->engine = map;
    threads = sl__ymap_find(map, "threads");
    ld->conf->threads = 0;
    if (threads != NULL && !(threads->kind == SL__Y_SCALAR && strcmp(threads->text, "auto") == 0)) {
        rc = sl__conf_int(ld, threads, 1, MAX_THREADS, &ld->conf->threads);
    }
    threads = sl__ymap_find(map, "blocking_threads");
    ld->conf->blocking_threads = 0;
    if (rc == 0 && threads != NULL &&
        !(threads->kind == SL__Y_SCALAR && strcmp(threads->text, "auto") == 0)) {
        rc = sl__conf_int(ld, threads, 1, MAX_BLOCKING, &ld->conf->blocking_threads);
    }
    if (rc == 0) {
        rc = load_affinity(ld, sl__ymap_find(map, "cpu_affinity"));
    }
    if (rc == 0) {
        rc = load_plugins(ld, sl__ymap_find(map, "plugin_path"));
    }
    if (rc == 0) {
        rc = load_metrics(ld, sl__ymap_find(map, "metrics"));
    }
    if (rc == 0) {
        rc = load_control(ld, sl__ymap_find(map, "control"));
    }
    if (rc == 0) {
        rc = sl__conf_fill(ld, map, at, engine_options, &ec, sizeof(ec), engine_own_keys);
    }
    ld->conf->memory_limit = ec.memory_limit;
    ld->conf->drain_timeout_ns = ec.drain_timeout_ns;
    ld->conf->work_stealing = ec.work_stealing;
    ld->conf->log_level = ec.log_level;
    return rc;
}

/* ==== Nodes ==== */

static int check_name(struct sl__loader *ld, const struct sl__ynode *key)
{
    const char *ok = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    const struct sl_conf *conf = ld->conf;

    /* The captures sl_conf_load_case adds: no name in a file has ':'. */
    bool capture = ld->test_case != SIZE_MAX &&
                   strncmp(key->text, SL_CONF_CASE_CAPTURE, strlen(SL_CONF_CASE_CAPTURE)) == 0;

    if (!capture && (key->len == 0 || strspn(key->text, ok) != key->len)) {
        return sl__yerr(ld, key, "invalid node name '%s': use only letters, digits, '_' and '-'",
                        key->text);
    }
    /* The runtime, `graph` and dead letters' _node name the dead-letter
     * sink so: a node of that name would be two nodes with one name. */
    if (strcmp(key->text, "dead_letter") == 0) {
        return sl__yerr(ld, key,
                        "the node name 'dead_letter' is reserved for the top-level dead_letter "
                        "sink: choose another name");
    }
    for (size_t i = 0; i < conf->nnodes; i++) {
        if (strcmp(conf->nodes[i].name, key->text) == 0) {
            const struct sl__ynode *first = ld->keys[i];

            if (first->line > 0) {
                return sl__yerr(ld, key, "node name '%s' is already used (line %d)", key->text,
                                first->line);
            }
            return sl__yerr(ld, key, "node name '%s' is already used", key->text);
        }
    }
    return 0;
}

/* The type named name, preferring one of kind: a name may be both a
 * source and a sink (`file`). */
static const struct sl_node_type *find_type(const char *name, enum sluice_stage_kind kind)
{
    const struct sl_node_type *type, *any = NULL;

    for (size_t i = 0; (type = sl_node_type_at(i)) != NULL; i++) {
        if (strcmp(type->def.name, name) != 0) {
            continue;
        }
        if (type->def.kind == kind) {
            return type;
        }
        any = any != NULL ? any : type;
    }
    return any;
}

static int load_type(struct sl__loader *ld,
                     enum sluice_stage_kind kind,
                     const struct sl__ynode *map,
                     const struct sl__ynode *key,
                     const struct sl_node_type **ret)
{
    const struct sl__ynode *val = sl__ymap_find(map, "type");
    const struct sl_node_type *type;
    struct sl__hint h;
    char buf[96];

    if (val == NULL) {
        return sl__yerr(ld, key, "missing required key 'type'");
    }
    /* `type: null` names the null sink: a null word is a name here. */
    if (val->kind != SL__Y_SCALAR || val->len == 0) {
        return sl__yerr(ld, val, "expected a type name, got %s",
                        sl__ydescribe(val, buf, sizeof(buf)));
    }
    type = find_type(val->text, kind);
    if (type == NULL) {
        sl__hint_init(&h, val->text);
        for (size_t i = 0; (type = sl_node_type_at(i)) != NULL; i++) {
            sl__hint_add(&h, type->def.name, strlen(type->def.name));
        }
        return sl__yerr(ld, val, "unknown type '%s'%s", val->text,
                        sl__hint_text(&h, buf, sizeof(buf)));
    }
    if (type->def.kind != kind) {
        unsigned have = (unsigned)type->def.kind < 3 ? (unsigned)type->def.kind : 0;

        return sl__yerr(ld, val, "type '%s' is a %s, not a %s (it belongs under %s)", val->text,
                        kind_names[have], kind_names[kind], sections[have]);
    }
    *ret = type;
    return 0;
}

/* Parses one inputs item: "node" or "node.output". */
static int load_input(struct sl__loader *ld, const struct sl__ynode *item, struct sl_conf_input *in)
{
    const char *dot;
    char buf[64];

    if (item->kind != SL__Y_SCALAR || item->tag == SL__T_NULL) {
        return sl__yerr(ld, item, "expected a node name, got %s",
                        sl__ydescribe(item, buf, sizeof(buf)));
    }
    dot = strchr(item->text, '.');
    in->node = item->text;
    in->line = item->line;
    in->col = item->col;
    if (dot != NULL) {
        char *name = sl_arena_strndup(ld->arena, item->text, (size_t)(dot - item->text));

        if (name == NULL) {
            return sl__conf_oom(ld);
        }
        in->node = name;
        in->output = dot + 1;
    }
    if (in->node[0] == '\0' || (in->output != NULL && in->output[0] == '\0')) {
        return sl__yerr(ld, item, "expected 'node' or 'node.output', got '%s'", item->text);
    }
    return 0;
}

static int load_inputs(struct sl__loader *ld,
                       const struct sl__ynode *map,
                       const struct sl__ynode *key,
                       struct sl_conf_node *cn,
                       int dead_letter,
                       const struct sl__ynode **ret_seq)
{
    const struct sl__ynode *val = sl__ymap_find(map, "inputs");
    char buf[64];

    *ret_seq = NULL;
    if (val != NULL && (cn->kind == SLUICE_KIND_SOURCE || dead_letter)) {
        return sl__yerr(ld, val->key, "%s takes no inputs%s",
                        dead_letter ? "dead_letter" : "a source",
                        dead_letter ? ": it receives the dead letters of every node" : "");
    }
    if (cn->kind == SLUICE_KIND_SOURCE || dead_letter) {
        return 0;
    }
    if (val == NULL) {
        return sl__yerr(ld, key, "missing required key 'inputs'");
    }
    if (val->kind != SL__Y_SEQ || val->nkids == 0) {
        return sl__yerr(ld, val, "expected a list of node names such as [orders], got %s",
                        val->kind == SL__Y_SEQ ? "an empty list" : sl__ydescribe(val, buf, 64));
    }
    cn->inputs = sl__conf_alloc(ld, val->nkids * sizeof(*cn->inputs));
    if (cn->inputs == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < val->nkids; i++) {
        int rc = load_input(ld, val->kids[i], &cn->inputs[i]);

        for (size_t j = 0; rc == 0 && j < i; j++) {
            if (strcmp(val->kids[j]->text, val->kids[i]->text) == 0) {
                rc = sl__yerr(ld, val->kids[i], "input '%s' is listed twice", val->kids[i]->text);
            }
        }
        if (rc != 0) {
            return rc;
        }
    }
    cn->ninputs = val->nkids;
    *ret_seq = val;
    return 0;
}

/* workers: N | auto, with workers_min/workers_max bounding auto. */
static int load_workers(struct sl__loader *ld, const struct sl__ynode *map, struct sl_conf_node *cn)
{
    const struct sl__ynode *workers = sl__ymap_find(map, "workers");
    const struct sl__ynode *lo = sl__ymap_find(map, "workers_min");
    const struct sl__ynode *hi = sl__ymap_find(map, "workers_max");
    bool stateless = (cn->type->def.flags & SLUICE_STAGE_STATELESS) != 0;
    int rc = 0;

    cn->workers = 1;
    cn->workers_min = 1;
    cn->workers_max = MAX_WORKERS;
    if (workers != NULL && workers->kind == SL__Y_SCALAR && strcmp(workers->text, "auto") == 0) {
        if (!stateless) {
            return sl__yerr(ld, workers, "type '%s' runs one worker: it cannot be auto",
                            cn->type->def.name);
        }
        cn->workers = 0;
    } else if (workers != NULL) {
        rc = sl__conf_int(ld, workers, 1, MAX_WORKERS, &cn->workers);
        if (rc == 0 && cn->workers > 1 && !stateless) {
            return sl__yerr(ld, workers, "type '%s' does not support workers > 1",
                            cn->type->def.name);
        }
    }
    const struct sl__ynode *bound = lo != NULL ? lo : hi;
    if (rc == 0 && bound != NULL && cn->workers != 0) {
        return sl__yerr(ld, bound, "only with workers: auto");
    }
    if (rc == 0 && lo != NULL) {
        rc = sl__conf_int(ld, lo, 1, MAX_WORKERS, &cn->workers_min);
    }
    if (rc == 0 && hi != NULL) {
        rc = sl__conf_int(ld, hi, 1, MAX_WORKERS, &cn->workers_max);
    }
    if (rc == 0 && cn->workers_min > cn->workers_max) {
        return sl__yerr(ld, hi != NULL ? hi : lo, "workers_min (%lld) is above workers_max (%lld)",
                        (long long)cn->workers_min, (long long)cn->workers_max);
    }
    return rc;
}

/* when_full: block | drop_newest | drop_oldest | shed. */
static int load_when_full(struct sl__loader *ld,
                          const struct sl__ynode *map,
                          struct sl_conf_node *cn,
                          int dead_letter)
{
    static const char *const names[SL_WHEN_FULL_COUNT] = {"block", "drop_newest", "drop_oldest",
                                                          "shed"};
    const struct sl__ynode *val = sl__ymap_find(map, "when_full");
    char buf[64];

    cn->when_full = SL_WHEN_FULL_BLOCK;
    if (val == NULL) {
        return 0;
    }
    if (cn->kind == SLUICE_KIND_SOURCE || dead_letter) {
        return sl__yerr(ld, val,
                        "when_full is the policy of a node's input queue toward its "
                        "producers: %s",
                        dead_letter ? "the dead_letter sink has no queue"
                                    : "a source fills its own, and waits for room");
    }
    if (val->kind == SL__Y_SCALAR && val->tag == SL__T_STR) {
        for (int i = 0; i < SL_WHEN_FULL_COUNT; i++) {
            if (strcmp(val->text, names[i]) == 0) {
                cn->when_full = (enum sl_when_full)i;
                return 0;
            }
        }
    }
    return sl__yerr(ld, val, "expected block, drop_newest, drop_oldest or shed, got %s",
                    sl__ydescribe(val, buf, sizeof(buf)));
}

/* priority: an int 0..9, or an expression giving one per record; which
 * levels it may give is worked out here (the runtime splits a batch into
 * one part per level, and sinks wait for each). */
static int load_priority(struct sl__loader *ld,
                         const struct sl__ynode *map,
                         struct sl_conf_node *cn,
                         int dead_letter)
{
    const struct sl__ynode *val = sl__ymap_find(map, "priority");
    struct sl_err e = {0};
    uint64_t mask = 0;
    int64_t level = 0;
    char buf[64];
    int rc;

    cn->priority = -1;
    cn->priority_expr = NULL;
    cn->priority_levels = 0;
    if (val == NULL) {
        return 0;
    }
    if (dead_letter) {
        return sl__yerr(ld, val,
                        "priority is the level of what a node emits: the dead_letter sink "
                        "emits nothing, and writes what sinks send it when they write");
    }
    if (cn->kind == SLUICE_KIND_SINK) {
        return sl__yerr(ld, val,
                        "priority is the level of what a node emits, and a sink emits nothing: "
                        "set it on a source or stage before the sink");
    }
    if (val->kind == SL__Y_SCALAR && val->tag == SL__T_INT) {
        rc = sl__conf_int(ld, val, 0, SL_PRIORITY_LEVELS - 1, &level);
        cn->priority = (int)level;
        cn->priority_levels = (uint16_t)(1u << level);
        return rc;
    }
    if (val->kind != SL__Y_SCALAR || val->tag != SL__T_STR) {
        return sl__yerr(ld, val, "expected an int 0..%d or an expression, got %s",
                        SL_PRIORITY_LEVELS - 1, sl__ydescribe(val, buf, sizeof(buf)));
    }
    rc = sl__conf_expr(ld, val, &cn->priority_expr);
    if (rc == 0 && cn->type->outputs != NULL) {
        /* A record it sends to several outputs is counted out once. */
        return sl__yerr(ld, val,
                        "a %s sends one record to several outputs: give it an int priority, or "
                        "set the expression on the nodes after it",
                        cn->type->def.name);
    }
    if (rc == 0 && sl_expr_int_choices(cn->priority_expr, 0, SL_PRIORITY_LEVELS - 1, &mask, &e)) {
        return sl__yerr(ld, val, "%s", e.msg);
    }
    cn->priority_levels = (uint16_t)mask;
    if (rc == 0 && __builtin_popcountll(mask) == 1) {
        /* '9', or if(x, 9, 9): one level, no need to evaluate it. */
        cn->priority = __builtin_ctzll(mask);
        cn->priority_expr = NULL;
    }
    return rc;
}

static int load_common(struct sl__loader *ld,
                       const struct sl__ynode *map,
                       struct sl_conf_node *cn,
                       int dead_letter)
{
    const struct sl__ynode *queue = sl__ymap_find(map, "queue");
    int rc = load_workers(ld, map, cn);

    cn->queue = 0; /* auto: sized from memory_limit (pipeline.c) */
    if (rc == 0 && queue != NULL) {
        rc = sl__conf_int(ld, queue, 1, MAX_QUEUE, &cn->queue);
    }
    if (rc == 0) {
        rc = load_when_full(ld, map, cn, dead_letter);
    }
    if (rc == 0) {
        rc = load_priority(ld, map, cn, dead_letter);
    }
    return rc;
}

/* Loads one node: key is its name, map its mapping (or whatever was written).
 * dead_letter: the top-level dead_letter sink, which takes no inputs. */
static int load_node(struct sl__loader *ld,
                     enum sluice_stage_kind kind,
                     int dead_letter,
                     const struct sl__ynode *key,
                     struct sl__ynode *map,
                     struct sl_conf_node *cn,
                     const struct sl__ynode **ret_in)
{
    char buf[64];
    int rc;

    if (map->kind != SL__Y_MAP) {
        if (map->kind == SL__Y_SCALAR && map->tag == SL__T_NULL) {
            return sl__yerr(ld, key, "missing required key 'type'");
        }
        return sl__yerr(ld, map, "expected a mapping with the node's type and options, got %s",
                        sl__ydescribe(map, buf, sizeof(buf)));
    }
    cn->name = key->text;
    cn->kind = kind;
    cn->file = key->file == ld->file ? ld->conf->file : key->file;
    cn->line = key->line;
    cn->col = key->col;
    cn->yaml = map;
    cn->pipeline = ld->conf;
    rc = load_type(ld, kind, map, key, &cn->type);
    if (rc == 0) {
        rc = load_inputs(ld, map, key, cn, dead_letter, ret_in);
    }
    if (rc == 0) {
        rc = load_common(ld, map, cn, dead_letter);
    }
    if (rc == 0) {
        cn->conf = sl__conf_alloc(ld, cn->type->def.conf_size);
        rc = cn->conf == NULL ? SL_ENOMEM : 0;
    }
    if (rc == 0) {
        rc = sl__conf_fill(ld, map, key, cn->type->def.options, cn->conf, cn->type->def.conf_size,
                           sl__node_own_keys);
    }
    if (rc == 0 && cn->type->check != NULL) {
        rc = cn->type->check(cn, ld->err);
    }
    return rc;
}

static int load_nodes(struct sl__loader *ld, const struct sl__ynode *root)
{
    struct sl__ynode *maps[3];
    size_t n = 0;
    int rc = 0;

    for (size_t s = 0; s < 3 && rc == 0; s++) {
        rc = section(ld, root, sections[s], "a mapping of node names to nodes", &maps[s]);
        n += maps[s] != NULL ? maps[s]->nkids / 2 : 0;
    }
    if (rc != 0) {
        return rc;
    }
    ld->conf->nodes = sl__conf_alloc(ld, n * sizeof(*ld->conf->nodes));
    ld->keys = sl__conf_alloc(ld, n * sizeof(*ld->keys));
    ld->inputs = sl__conf_alloc(ld, n * sizeof(*ld->inputs));
    if (ld->conf->nodes == NULL || ld->keys == NULL || ld->inputs == NULL) {
        return SL_ENOMEM;
    }
    for (size_t s = 0; s < 3; s++) {
        for (size_t i = 0; maps[s] != NULL && i + 1 < maps[s]->nkids; i += 2) {
            size_t at = ld->conf->nnodes;
            const struct sl__ynode *key = maps[s]->kids[i];

            rc = check_name(ld, key);
            if (rc == 0) {
                rc = load_node(ld, section_kinds[s], 0, key, maps[s]->kids[i + 1],
                               &ld->conf->nodes[at], &ld->inputs[at]);
            }
            if (rc != 0) {
                return rc;
            }
            ld->keys[at] = key;
            ld->conf->nnodes++;
        }
    }
    return 0;
}

static int load_dead_letter(struct sl__loader *ld, const struct sl__ynode *root)
{
    struct sl__ynode *val = sl__ymap_find(root, "dead_letter");
    const struct sl__ynode *unused = NULL;

    if (val == NULL) {
        return 0;
    }
    ld->conf->dead_letter = sl__conf_alloc(ld, sizeof(*ld->conf->dead_letter));
    if (ld->conf->dead_letter == NULL) {
        return SL_ENOMEM;
    }
    return load_node(ld, SLUICE_KIND_SINK, 1, val->key, val, ld->conf->dead_letter, &unused);
}

/* ==== Entry points ==== */

/* `sluice test FILE CASES`: the cases of the side file CASES, which holds
 * only a `tests:` list, come after FILE's own. */
static int add_cases_file(struct sl__loader *ld, struct sl__ynode *root)
{
    const char *file = ld->file;
    struct sl__ynode *croot = NULL, *tests;
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(ld, ld->cases_path, &text, &len);

    if (rc != 0) {
        return rc;
    }
    ld->file = ld->cases_path; /* its nodes' file, for errors */
    rc = sl__yaml_parse(ld, text, len, &croot);
    ld->file = file;
    sl_free(text);
    if (rc != 0) {
        return rc;
    }
    if (croot == NULL || croot->kind != SL__Y_MAP) {
        return sl_err_set_at(ld->err, ld->cases_path, croot != NULL ? croot->line : 0,
                             croot != NULL ? croot->col : 0, "",
                             "expected a mapping with a tests: list of cases");
    }
    for (size_t i = 0; i + 1 < croot->nkids; i += 2) {
        if (strcmp(croot->kids[i]->text, "tests") != 0) {
            return sl__yerr(ld, croot->kids[i],
                            "a file of cases holds only tests: (the pipeline is in %s)", file);
        }
    }
    tests = sl__ymap_find(croot, "tests");
    if (tests == NULL) {
        return sl_err_set_at(ld->err, ld->cases_path, croot->line, croot->col, "",
                             "expected a mapping with a tests: list of cases");
    }
    return sl__conf_cases_add(ld, root, tests);
}

static int load(struct sl__loader *ld, const char *const *sets, size_t nsets)
{
    struct sl__ynode *root = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc;

    ld->conf->file = sl_arena_strndup(ld->arena, ld->file, strlen(ld->file));
    if (ld->conf->file == NULL) {
        return sl__conf_oom(ld);
    }
    if (ld->from != NULL) {
        /* A case of a file loaded whole: its tree, read and checked once
         * (a file of 2000 cases was parsed 2000 times), copied where the
         * case's rewrite changes it. */
        root = sl__ycopy(ld, ld->from->root);
        ld->tests = ld->from->tests;
        rc = root == NULL ? SL_ENOMEM : sl__conf_cases_load(ld, root);
        rc = rc != 0 ? rc : sl__conf_case_rewrite(ld, root, ld->test_case);
        goto loaded;
    }
    rc = read_file(ld, ld->file, &text, &len);
    if (rc != 0) {
        return rc;
    }
    rc = sl__yaml_parse(ld, text, len, &root);
    sl_free(text);
    if (rc == 0 && (root == NULL || (root->kind == SL__Y_SCALAR && root->tag == SL__T_NULL))) {
        return sl_err_set_at(ld->err, ld->file, 0, 0, "",
                             "the file is empty: expected a pipeline with sources and sinks");
    }
    if (rc == 0 && root->kind != SL__Y_MAP) {
        char buf[64];

        return sl__yerr(ld, root, "expected a mapping (sources, stages, sinks) at the top, got %s",
                        sl__ydescribe(root, buf, sizeof(buf)));
    }
    for (size_t i = 0; rc == 0 && i < nsets; i++) {
        rc = sl__yaml_set(ld, root, sets[i]);
    }
    rc = rc != 0 ? rc : sl__check_keys(ld, root, top_keys, "");
    if (rc == 0 && ld->cases_path != NULL) {
        rc = add_cases_file(ld, root);
    }
    /* `run` does not read the cases: a stale one must not stop a pipeline. */
    rc = rc != 0 || ld->skip_cases ? rc : sl__conf_cases_load(ld, root);
    if (rc == 0 && !ld->skip_cases) {
        ld->priv->root = root; /* for sl_conf_load_case */
        ld->priv->tests = ld->tests != NULL ? ld->tests : sl__ymap_find(root, "tests");
    }
loaded:
    rc = rc != 0 ? rc : load_engine(ld, root);
    rc = rc != 0 ? rc : load_nodes(ld, root);
    rc = rc != 0 ? rc : load_dead_letter(ld, root);
    rc = rc != 0 ? rc : sl__conf_dag(ld, root);
    return rc != 0 ? rc : sl__conf_cases_check(ld, root);
}

static int load_path(const char *path,
                     const char *cases_path,
                     const char *const *sets,
                     size_t nsets,
                     const struct sl__conf_priv *from,
                     size_t test_case,
                     bool skip_cases,
                     struct sl_conf **ret_conf,
                     struct sl_err *err)
{
    struct sl__conf_priv *priv = sl_calloc(1, sizeof(*priv));
    struct sl_err local;
    int rc;

    if (err == NULL) {
        err = &local;
    }
    sl_err_clear(err);
    if (priv == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory while loading the pipeline file");
    }
    struct sl__loader ld = {.priv = priv,
                            .conf = &priv->conf,
                            .arena = &priv->arena,
                            .err = err,
                            .file = path,
                            .test_case = test_case,
                            .skip_cases = skip_cases,
                            .cases_path = cases_path,
                            .from = from};

    sl_arena_init(&priv->arena);
    priv->conf.priv = priv;
    rc = load(&ld, sets, nsets);
    if (rc != 0) {
        /* Errors may point at conf->file (via a node), which dies with the
         * conf: point them at the caller's path instead. */
        if (err->file != NULL && err->file == priv->conf.file) {
            err->file = path;
        }
        if (err->code == 0) {
            sl_err_set(err, rc, "%s", sl_strerror(rc));
        }
        sl_conf_free(&priv->conf);
        return rc;
    }
    *ret_conf = &priv->conf;
    return 0;
}

int sl_conf_load(const char *path,
                 const char *const *sets,
                 size_t nsets,
                 struct sl_conf **ret_conf,
                 struct sl_err *err)
{
    return load_path(path, NULL, sets, nsets, NULL, SIZE_MAX, true, ret_conf, err);
}

int sl_conf_load_cases(const char *path,
                       const char *cases_path,
                       const char *const *sets,
                       size_t nsets,
                       struct sl_conf **ret_conf,
                       struct sl_err *err)
{
    return load_path(path, cases_path, sets, nsets, NULL, SIZE_MAX, false, ret_conf, err);
}

int sl_conf_load_case(const struct sl_conf *conf,
                      size_t i,
                      struct sl_conf **ret_conf,
                      struct sl_err *err)
{
    const struct sl__conf_priv *from = conf->priv;
    int rc = from->root == NULL || i >= conf->ncases
                 ? sl_err_set(err, SL_EINVAL, "%s has no case %zu", conf->file, i + 1)
                 : load_path(conf->file, NULL, NULL, 0, from, i, false, ret_conf, err);

    if (rc == 0) {
        (*ret_conf)->metrics_host = NULL;
        (*ret_conf)->metrics_port = 0;
        (*ret_conf)->control = false;
    }
    return rc;
}

struct sl_conf *sl_conf_free(struct sl_conf *conf)
{
    struct sl__conf_priv *priv;

    if (conf == NULL) {
        return NULL;
    }
    priv = conf->priv;
    for (struct sl__expr_link *link = priv->exprs; link != NULL; link = link->next) {
        link->expr = sl_expr_free(link->expr);
    }
    sl_arena_release(&priv->arena);
    sl_free(priv);
    return NULL;
}

/* The key under map that subpath names, and its value, trying longer keys
 * first ("a.b.c" may be a key "a.b" holding "c" or a key "a" holding "b.c"). */
static const struct sl__ynode *locate(const struct sl__ynode *map,
                                      const char *subpath,
                                      int depth,
                                      const struct sl__ynode **ret_val)
{
    const struct sl__ynode *found = NULL;
    size_t found_len = 0;

    if (map == NULL || map->kind != SL__Y_MAP || depth > SL__CONF_MAX_DEPTH) {
        return NULL;
    }
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        const struct sl__ynode *key = map->kids[i], *hit = NULL;

        if (key->len <= found_len || strncmp(subpath, key->text, key->len) != 0) {
            continue;
        }
        if (subpath[key->len] == '\0') {
            hit = key;
            *ret_val = map->kids[i + 1];
        } else if (subpath[key->len] == '.') {
            hit = locate(map->kids[i + 1], subpath + key->len + 1, depth + 1, ret_val);
        }
        if (hit != NULL) {
            found = hit;
            found_len = key->len;
        }
    }
    return found;
}

int sl_conf_locate(const struct sl_conf_node *cn, const char *subpath, int *ret_line, int *ret_col)
{
    const struct sl__ynode *val = NULL;
    const struct sl__ynode *key = locate(cn->yaml, subpath, 0, &val);

    if (key == NULL) {
        return SL_EOF;
    }
    if (val->line == 0) {
        *ret_line = 0; /* --set gave the value */
        *ret_col = 0;
        return 0;
    }
    *ret_line = key->line;
    *ret_col = key->col;
    return 0;
}

/* The value at subpath under cn, "key_columns[1]" naming an item of a
 * list; NULL when absent. */
static const struct sl__ynode *locate_value(const struct sl_conf_node *cn, const char *subpath)
{
    const char *bracket = strrchr(subpath, '[');
    const struct sl__ynode *val = NULL;
    char base[SL_ERR_PATH_MAX];
    char *end = NULL;
    size_t index;

    if (bracket == NULL || bracket == subpath || (size_t)(bracket - subpath) >= sizeof(base)) {
        return locate(cn->yaml, subpath, 0, &val) != NULL ? val : NULL;
    }
    index = strtoul(bracket + 1, &end, 10);
    memcpy(base, subpath, (size_t)(bracket - subpath));
    base[bracket - subpath] = '\0';
    if (end == NULL || strcmp(end, "]") != 0 || locate(cn->yaml, base, 0, &val) == NULL) {
        return NULL;
    }
    return val->kind == SL__Y_SEQ && index < val->nkids ? val->kids[index] : val;
}

int sl_conf_node_err(
    const struct sl_conf_node *cn, const char *subpath, struct sl_err *err, const char *fmt, ...)
{
    char msg[SL_ERR_MSG_MAX], path[SL_ERR_PATH_MAX];
    const char *file = cn->file;
    int line = cn->line, col = cn->col;
    const char *sep = subpath[0] != '\0' ? "." : "";
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (subpath[0] != '\0') {
        const struct sl__ynode *val = locate_value(cn, subpath);

        if (val != NULL) {
            file = val->line == 0 ? SL__SET_FILE : file;
            line = val->line;
            col = val->col;
        }
    }
    if (cn->pipeline != NULL && cn->pipeline->dead_letter == cn) {
        snprintf(path, sizeof(path), "dead_letter%s%s", sep, subpath);
    } else {
        snprintf(path, sizeof(path), "%s.%s%s%s", (unsigned)cn->kind < 3 ? sections[cn->kind] : "?",
                 cn->name, sep, subpath);
    }
    return sl_err_set_at(err, file, line, col, path, "%s", msg);
}

struct sl_conf_node *sl_conf_find(const struct sl_conf *conf, const char *name)
{
    for (size_t i = 0; conf != NULL && i < conf->nnodes; i++) {
        if (strcmp(conf->nodes[i].name, name) == 0) {
            return &conf->nodes[i];
        }
    }
    if (conf != NULL && conf->dead_letter != NULL && strcmp(name, "dead_letter") == 0) {
        return conf->dead_letter;
    }
    return NULL;
}
