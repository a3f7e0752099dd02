/* SPDX-License-Identifier: MIT */
/* Tests of the pipeline file loader (engine/conf*.c) against fake node types:
 * a corpus of broken files under tests/data/conf/bad_*.yaml, each naming its
 * expected error in a first-lines comment, valid files checked field by
 * field, --set, ${VAR}, OOM loops and a small fuzz of truncated and garbled
 * variants (run it under ASan). */
#include "conf.h"
#include "err.h"
#include "expr.h"
#include "mem.h"
#include "node.h"

#include <glob.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* ==== Fake node types ==== */

struct gen_conf {
    int64_t count;
    const char *label;
    uint64_t rate_ns;
};

struct filt_conf {
    struct sluice_expr *where;
};

struct rt_conf {
    struct sluice_map routes;
};

struct agg_conf {
    struct sluice_list key;
    int64_t spill;
    double ratio;
};

struct store_conf {
    const char *path;
    int64_t max_records;
    uint64_t max_wait_ns;
    int mode;
    struct sluice_list key_columns;
    struct sluice_map columns;
    uint64_t memory;
    int sync;
    const char *password;
};

static const char *const store_modes[] = {"insert", "upsert", NULL};

/* clang-format off */
static const struct sluice_option gen_options[] = {
    {"count", SLUICE_OPT_INT, "10", offsetof(struct gen_conf, count), 0, 1000000, NULL, 0, ""},
    {"label", SLUICE_OPT_STR, NULL, offsetof(struct gen_conf, label), 0, 0, NULL, 0, ""},
    {"rate", SLUICE_OPT_DURATION, "1s", offsetof(struct gen_conf, rate_ns), 1000, 3600e9, NULL, 0, ""},
    {NULL, 0, NULL, 0, 0, 0, NULL, 0, NULL},
};
static const struct sluice_option filt_options[] = {
    {"where", SLUICE_OPT_EXPR, NULL, offsetof(struct filt_conf, where), 0, 0, NULL, SLUICE_OPT_REQUIRED, ""},
    {NULL, 0, NULL, 0, 0, 0, NULL, 0, NULL},
};
static const struct sluice_option rt_options[] = {
    {"routes", SLUICE_OPT_EXPR_MAP, NULL, offsetof(struct rt_conf, routes), 0, 0, NULL, SLUICE_OPT_REQUIRED, ""},
    {NULL, 0, NULL, 0, 0, 0, NULL, 0, NULL},
};
static const struct sluice_option agg_options[] = {
    {"key", SLUICE_OPT_LIST, "[id]", offsetof(struct agg_conf, key), 0, 0, NULL, 0, ""},
    {"spill", SLUICE_OPT_INT, NULL, offsetof(struct agg_conf, spill), 0, 0, NULL, SLUICE_OPT_LATER, ""},
    {"ratio", SLUICE_OPT_DOUBLE, "0.5", offsetof(struct agg_conf, ratio), 0, 1, NULL, 0, ""},
    {NULL, 0, NULL, 0, 0, 0, NULL, 0, NULL},
};
static const struct sluice_option store_options[] = {
    {"path", SLUICE_OPT_STR, NULL, offsetof(struct store_conf, path), 0, 0, NULL, SLUICE_OPT_REQUIRED, ""},
    {"batch.max_records", SLUICE_OPT_INT, "10000", offsetof(struct store_conf, max_records), 1, 1000000, NULL, 0, ""},
    {"batch.max_wait", SLUICE_OPT_DURATION, "100ms", offsetof(struct store_conf, max_wait_ns), 0, 0, NULL, 0, ""},
    {"mode", SLUICE_OPT_ENUM, "insert", offsetof(struct store_conf, mode), 0, 0, store_modes, 0, ""},
    {"key_columns", SLUICE_OPT_LIST, NULL, offsetof(struct store_conf, key_columns), 0, 0, NULL, 0, ""},
    {"columns", SLUICE_OPT_MAP, NULL, offsetof(struct store_conf, columns), 0, 0, NULL, 0, ""},
    {"memory", SLUICE_OPT_SIZE, "1MiB", offsetof(struct store_conf, memory), 4096, 0, NULL, 0, ""},
    {"sync", SLUICE_OPT_BOOL, "true", offsetof(struct store_conf, sync), 0, 0, NULL, 0, ""},
    {"password", SLUICE_OPT_STR, NULL, offsetof(struct store_conf, password), 0, 0, NULL, SLUICE_OPT_SECRET, ""},
    {NULL, 0, NULL, 0, 0, 0, NULL, 0, NULL},
};
/* clang-format on */

static size_t rt_outputs(const void *conf, const char **names, size_t max)
{
    const struct rt_conf *rc = conf;

    for (size_t i = 0; i < rc->routes.n && i < max; i++) {
        names[i] = rc->routes.keys[i];
    }
    if (rc->routes.n < max) {
        names[rc->routes.n] = "_unmatched";
    }
    return rc->routes.n + 1;
}

static int store_check(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct store_conf *sc = cn->conf;

    if (sc->mode == 1 && sc->key_columns.n == 0) {
        char path[128];

        snprintf(path, sizeof(path), "sinks.%s", cn->name);
        return sl_err_set_at(err, cn->file, cn->line, cn->col, path,
                             "mode upsert needs key_columns");
    }
    return 0;
}

#define DEF(nm, kd, fl, st, opts)                                                                  \
    {                                                                                              \
        SLUICE_ABI_VERSION, sizeof(struct sluice_stage_def), nm, "", kd, fl, sizeof(st), opts,     \
            NULL, NULL, NULL, NULL                                                                 \
    }

static const struct sl_node_type gen_type = {
    .def = DEF("gen", SLUICE_KIND_SOURCE, 0, struct gen_conf, gen_options)};
static const struct sl_node_type filt_type = {
    .def =
        DEF("filt", SLUICE_KIND_TRANSFORM, SLUICE_STAGE_STATELESS, struct filt_conf, filt_options)};
static const struct sl_node_type rt_type = {
    .def = DEF("rt", SLUICE_KIND_TRANSFORM, SLUICE_STAGE_STATELESS, struct rt_conf, rt_options),
    .outputs = rt_outputs};
/* The built-in route's name: the loader holds its conditions to following
 * from the record (conf_dag.c). */
static const struct sl_node_type route_type = {
    .def = DEF("route", SLUICE_KIND_TRANSFORM, SLUICE_STAGE_STATELESS, struct rt_conf, rt_options),
    .outputs = rt_outputs};
static const struct sl_node_type agg_type = {
    .def = DEF("agg", SLUICE_KIND_TRANSFORM, 0, struct agg_conf, agg_options)};
static const struct sl_node_type store_type = {
    .def = DEF("store", SLUICE_KIND_SINK, 0, struct store_conf, store_options),
    .check = store_check};
static const struct sl_node_type *const fake_types[] = {
    &gen_type, &filt_type, &rt_type, &route_type, &agg_type, &store_type, NULL};

/* ==== Helpers ==== */

static const char *data_dir(void)
{
    const char *dir = getenv("SLUICE_TEST_DATA");

    return dir != NULL ? dir : "tests/data";
}

static void data_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/conf/%s", data_dir(), name);
}

static struct sl_conf *load_ok(const char *name, const char *const *sets, size_t nsets)
{
    struct sl_conf *conf = NULL;
    struct sl_err err;
    char path[512], msg[1024];
    int rc;

    data_path(path, sizeof(path), name);
    rc = sl_conf_load(path, sets, nsets, &conf, &err);
    if (rc != 0) {
        fail_msg("%s: %s", name, sl_err_format(&err, msg, sizeof(msg)));
    }
    return conf;
}

static const void *node_conf(const struct sl_conf *conf, const char *name)
{
    const struct sl_conf_node *cn = sl_conf_find(conf, name);

    assert_non_null(cn);
    return cn->conf;
}

/* Header lines of a corpus file: "# expect: ...", "# expect-prefix: ...",
 * "# set: ...", "# env: K=V". In expectations, FILE stands for the path. */
struct corpus_case {
    char expect[512];
    int prefix_only;
    char sets[4][256];
    size_t nsets;
    char env[4][128];
    size_t nenv;
};

/* Copies src into dst (len bytes), truncating; no format-truncation noise. */
static void copy_str(char *dst, size_t len, const char *src)
{
    size_t n = strlen(src) < len - 1 ? strlen(src) : len - 1;

    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void strip_nl(char *s)
{
    s[strcspn(s, "\r\n")] = '\0';
}

static int read_case(const char *path, struct corpus_case *c)
{
    FILE *fp = fopen(path, "r");
    char line[512];

    memset(c, 0, sizeof(*c));
    if (fp == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), fp) != NULL && strncmp(line, "# ", 2) == 0) {
        strip_nl(line);
        if (strncmp(line, "# expect: ", 10) == 0) {
            copy_str(c->expect, sizeof(c->expect), line + 10);
        } else if (strncmp(line, "# expect-prefix: ", 17) == 0) {
            copy_str(c->expect, sizeof(c->expect), line + 17);
            c->prefix_only = 1;
        } else if (strncmp(line, "# set: ", 7) == 0 && c->nsets < 4) {
            copy_str(c->sets[c->nsets++], sizeof(c->sets[0]), line + 7);
        } else if (strncmp(line, "# env: ", 7) == 0 && c->nenv < 4) {
            copy_str(c->env[c->nenv++], sizeof(c->env[0]), line + 7);
        }
    }
    fclose(fp);
    return c->expect[0] != '\0' ? 0 : -1;
}

static void expand_expect(const char *expect, const char *path, char *out, size_t len)
{
    size_t n = 0;

    if (strncmp(expect, "FILE", 4) == 0) {
        copy_str(out, len, path);
        n = strlen(out);
        expect += 4;
    }
    copy_str(out + n, len - n, expect);
}

/* Loads one corpus file; returns 0 when the error matches. */
static int run_case(const char *path, char *why, size_t why_len)
{
    struct corpus_case c;
    const char *sets[4];
    struct sl_conf *conf = NULL;
    struct sl_err err;
    char want[1024], got[1024];
    int rc;

    if (read_case(path, &c) != 0) {
        snprintf(why, why_len, "%s: no '# expect:' line", path);
        return -1;
    }
    for (size_t i = 0; i < c.nenv; i++) {
        char *eq = strchr(c.env[i], '=');

        *eq = '\0';
        setenv(c.env[i], eq + 1, 1);
    }
    for (size_t i = 0; i < c.nsets; i++) {
        sets[i] = c.sets[i];
    }
    /* What validate refuses (the tests: section included). */
    rc = sl_conf_load_cases(path, NULL, sets, c.nsets, &conf, &err);
    for (size_t i = 0; i < c.nenv; i++) {
        unsetenv(c.env[i]);
    }
    expand_expect(c.expect, path, want, sizeof(want));
    if (rc == 0) {
        conf = sl_conf_free(conf);
        snprintf(why, why_len, "%s: loaded, expected\n    %s", path, want);
        return -1;
    }
    sl_err_format(&err, got, sizeof(got));
    if (c.prefix_only ? strncmp(got, want, strlen(want)) == 0 : strcmp(got, want) == 0) {
        return 0;
    }
    snprintf(why, why_len, "%s:\n    want %s\n    got  %s", path, want, got);
    return -1;
}

/* ==== Corpus of broken files ==== */

static void test_conf_corpus_bad(void **state)
{
    char pattern[512], why[4096];
    glob_t g;
    size_t failed = 0;

    (void)state;
    data_path(pattern, sizeof(pattern), "bad_*.yaml");
    assert_int_equal(glob(pattern, 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 30);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (run_case(g.gl_pathv[i], why, sizeof(why)) != 0) {
            print_error("%s\n", why);
            failed++;
        }
    }
    globfree(&g);
    assert_int_equal(failed, 0);
}

static void test_conf_load_missing_file_is_eio(void **state)
{
    struct sl_conf *conf = NULL;
    struct sl_err err;

    (void)state;
    assert_int_equal(sl_conf_load("/nonexistent/p.yaml", NULL, 0, &conf, &err), SL_EIO);
    assert_null(conf);
    assert_non_null(strstr(err.msg, "/nonexistent/p.yaml"));
    assert_non_null(strstr(err.msg, "No such file"));
    assert_int_equal(sl_conf_load(data_dir(), NULL, 0, &conf, &err), SL_EIO);
    assert_non_null(strstr(err.msg, "Is a directory"));
}

static void test_conf_bad_set_syntax(void **state)
{
    const char *cases[][2] = {
        {"sinks.db.path", "--set: expected key.path=value, got 'sinks.db.path'"},
        {"=x", "--set: expected key.path=value, got '=x'"},
        {"a..b=1", "--set: expected key.path=value, got 'a..b=1'"},
        {"a.\"b=1", "--set: expected key.path=value, got 'a.\"b=1'"},
        {"sinks.db.path.x=1", "--set: sinks.db.path: cannot set a key inside 'out/db.sqlite'"},
        {"stages.paid.wher=x",
         "--set: stages.paid.wher: unknown key 'wher' (did you mean 'where'?)"},
        {"sinks.db.batch.max_records=abc",
         "--set: sinks.db.batch.max_records: expected an integer, got 'abc'"},
        {"sinks.db.inputs=[cents, nope]", "--set: sinks.db.inputs[1]: unknown input 'nope'"},
        {"sinks.db.mode=[a", "--set: sinks.db.mode: did not find expected ',' or ']' (while "
                             "parsing a flow sequence)"},
        {"stages.\"x.y\"={type: filt}",
         "--set: stages.\"x.y\": invalid node name 'x.y': use only letters, digits, '_' and '-'"},
        /* Issue 6, finding 14: a key of a node that does not exist. */
        {"stages.\"x.y\".type=filt", "--set: stages.\"x.y\": no node 'x.y' under stages"},
        {"sinks.nosuch.table=x", "--set: sinks.nosuch: no node 'nosuch' under sinks"},
    };
    char path[512], got[1024];

    (void)state;
    data_path(path, sizeof(path), "valid_basic.yaml");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_conf *conf = NULL;
        struct sl_err err;
        const char *set = cases[i][0];

        assert_int_equal(sl_conf_load(path, &set, 1, &conf, &err), SL_ECONFIG);
        assert_string_equal(sl_err_format(&err, got, sizeof(got)), cases[i][1]);
    }
}

/* ==== Valid files ==== */

static void test_conf_valid_basic_defaults(void **state)
{
    struct sl_conf *conf = load_ok("valid_basic.yaml", NULL, 0);
    const struct store_conf *sc;
    const struct gen_conf *gc;

    (void)state;
    assert_int_equal(conf->threads, 0);
    assert_int_equal(conf->blocking_threads, 0);
    assert_int_equal(conf->cpu_affinity, SL_AFFINITY_OFF);
    assert_int_equal(conf->work_stealing, 1);
    assert_int_equal(conf->memory_limit, 64u << 20);
    assert_int_equal(conf->drain_timeout_ns, 30000000000ull);
    assert_int_equal(conf->nnodes, 4);
    assert_string_equal(conf->nodes[0].name, "orders");
    assert_string_equal(conf->nodes[1].name, "paid");
    assert_string_equal(conf->nodes[2].name, "cents");
    assert_string_equal(conf->nodes[3].name, "db");
    assert_int_equal(conf->nodes[3].line, 13);
    assert_int_equal(conf->nodes[3].col, 3);
    assert_int_equal(conf->nodes[1].kind, SLUICE_KIND_TRANSFORM);
    assert_int_equal(conf->nodes[1].workers, 1);
    assert_int_equal(conf->nodes[1].queue, 0); /* auto: sized from memory_limit */
    assert_null(conf->dead_letter);
    gc = node_conf(conf, "orders");
    assert_int_equal(gc->count, 10);
    assert_null(gc->label);
    assert_int_equal(gc->rate_ns, 1000000000ull);
    sc = node_conf(conf, "db");
    assert_string_equal(sc->path, "out/db.sqlite");
    assert_int_equal(sc->max_records, 10000);
    assert_int_equal(sc->max_wait_ns, 100000000ull);
    assert_int_equal(sc->mode, 0);
    assert_int_equal(sc->memory, 1u << 20);
    assert_int_equal(sc->sync, 1);
    assert_int_equal(sc->key_columns.n, 0);
    assert_int_equal(conf->nodes[3].ninputs, 1);
    assert_string_equal(conf->nodes[3].inputs[0].node, "cents");
    assert_null(conf->nodes[3].inputs[0].output);
    assert_int_equal(conf->nodes[3].inputs[0].line, 16);
    const struct filt_conf *fc = node_conf(conf, "paid");
    assert_string_equal(sl_expr_text((const struct sl_expr *)fc->where), "amount > 0");
    sl_conf_free(conf);
}

static void test_conf_valid_full_values(void **state)
{
    struct sl_conf *conf;
    const struct store_conf *sc;
    const struct rt_conf *rc;

    (void)state;
    setenv("SL_TEST_DB", "/tmp/x.db", 1);
    unsetenv("SL_TEST_UNSET");
    conf = load_ok("valid_full.yaml", NULL, 0);
    unsetenv("SL_TEST_DB");
    assert_int_equal(conf->threads, 4);
    assert_int_equal(conf->blocking_threads, 3);
    assert_int_equal(conf->cpu_affinity, SL_AFFINITY_LIST);
    assert_int_equal(conf->ncpus, 3); /* a repeat puts two workers on one CPU */
    assert_int_equal(conf->cpus[0], 0);
    assert_int_equal(conf->cpus[2], 2);
    assert_int_equal(conf->work_stealing, 0);
    assert_int_equal(conf->memory_limit, 512ull << 20);
    assert_int_equal(conf->drain_timeout_ns, 90000000000ull);
    sc = node_conf(conf, "db");
    assert_string_equal(sc->path, "/tmp/x.db");
    assert_int_equal(sc->max_records, 500);
    assert_int_equal(sc->max_wait_ns, 1500000000ull);
    assert_int_equal(sc->mode, 1);
    assert_int_equal(sc->key_columns.n, 2);
    assert_string_equal(sc->key_columns.items[1], "line");
    assert_int_equal(sc->columns.n, 2);
    assert_string_equal(sc->columns.keys[1], "Cost Total $");
    assert_string_equal(sc->columns.values[1], "REAL");
    assert_int_equal(sc->memory, 1536ull << 10);
    assert_int_equal(sc->sync, 0);
    assert_string_equal(sc->password, "s3cret$x");
    sc = node_conf(conf, "archive");
    assert_string_equal(sc->path, "default.db");
    assert_int_equal(sc->memory, 2000000);
    rc = node_conf(conf, "split");
    assert_int_equal(rc->routes.n, 2);
    assert_string_equal(rc->routes.keys[0], "paid");
    assert_non_null(rc->routes.exprs[1]);
    const struct sl_conf_node *db = sl_conf_find(conf, "db");
    assert_int_equal(db->ninputs, 2);
    assert_string_equal(db->inputs[0].node, "split");
    assert_string_equal(db->inputs[0].output, "paid");
    assert_int_equal(sl_conf_find(conf, "paid")->workers, 4);
    assert_int_equal(sl_conf_find(conf, "paid")->queue, 64);
    const struct agg_conf *ac = node_conf(conf, "totals");
    assert_int_equal(ac->key.n, 1);
    assert_string_equal(ac->key.items[0], "id");
    assert_true(ac->ratio == 0.5);
    assert_non_null(conf->dead_letter);
    assert_string_equal(conf->dead_letter->name, "dead_letter");
    assert_int_equal(conf->dead_letter->ninputs, 0);
    assert_ptr_equal(sl_conf_find(conf, "dead_letter"), conf->dead_letter);
    assert_null(sl_conf_find(conf, "nope"));
    sl_conf_free(conf);
}

static void test_conf_yaml_core_typing(void **state)
{
    struct sl_conf *conf = load_ok("valid_typing.yaml", NULL, 0);
    const struct gen_conf *gc = node_conf(conf, "a");

    (void)state;
    assert_string_equal(gc->label, "yes");
    assert_int_equal(gc->count, 0x1f);
    gc = node_conf(conf, "b");
    assert_string_equal(gc->label, "123");
    assert_int_equal(gc->count, 8);
    gc = node_conf(conf, "c");
    assert_string_equal(gc->label, "a $ b ${literal} $");
    sl_conf_free(conf);
}

/* Writes text to a new file named from the template tmp (mkstemp). */
static void write_tmp(char *tmp, const char *text, size_t len)
{
    int fd = mkstemp(tmp);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* Issue 6, finding 16: a quoted ${VAR} takes the type of its expansion, as
 * Fluent Bit's variables do; an empty one stays an empty string. */
static void test_conf_env_quoted_takes_expanded_type(void **state)
{
    static const char text[] =
        "engine: {threads: '${SL_TEST_T:-3}'}\n"
        "sources:\n"
        "  orders: {type: gen, count: '${SL_TEST_C}', label: '${SL_TEST_E}'}\n"
        "stages:\n"
        "  a: {type: agg, inputs: [orders], ratio: \"${SL_TEST_R}\"}\n"
        "sinks:\n"
        "  db: {type: store, inputs: [a], path: '${SL_TEST_C}',\n"
        "       sync: '${SL_TEST_B}', batch: {max_wait: '${SL_TEST_W}'}}\n";
    char tmp[] = "/tmp/test_conf_env_XXXXXX";
    struct sl_conf *conf = NULL;
    struct sl_err err;
    char msg[1024];

    (void)state;
    write_tmp(tmp, text, sizeof(text) - 1);
    setenv("SL_TEST_C", "7", 1);
    setenv("SL_TEST_E", "", 1);
    setenv("SL_TEST_R", "0.25", 1);
    setenv("SL_TEST_B", "false", 1);
    setenv("SL_TEST_W", "2s", 1);
    if (sl_conf_load(tmp, NULL, 0, &conf, &err) != 0) {
        fail_msg("%s", sl_err_format(&err, msg, sizeof(msg)));
    }
    const struct gen_conf *gc = node_conf(conf, "orders");
    const struct agg_conf *ac = node_conf(conf, "a");
    const struct store_conf *sc = node_conf(conf, "db");

    assert_int_equal(conf->threads, 3);
    assert_int_equal(gc->count, 7);
    assert_string_equal(gc->label, "");
    assert_true(ac->ratio == 0.25);
    assert_string_equal(sc->path, "7");
    assert_int_equal(sc->sync, 0);
    assert_int_equal(sc->max_wait_ns, 2000000000ull);
    sl_conf_free(conf);
    unsetenv("SL_TEST_C");
    unsetenv("SL_TEST_E");
    unsetenv("SL_TEST_R");
    unsetenv("SL_TEST_B");
    unsetenv("SL_TEST_W");
    unlink(tmp);
}

/* Hostile-user probe, item 5: a default that holds a reference is expanded
 * (inner first, and only when used), as Docker Compose does, instead of
 * leaving "${B}" or a stray "}" in the value. */
/* Docker Compose's other forms: ${V-d} (unset only), ${V:+t} / ${V+t},
 * ${V:?msg} / ${V?msg}. */
static void test_conf_env_compose_forms(void **state)
{
    static const char text[] =
        "sources:\n"
        "  orders: {type: gen, label: 'a${SL_TEST_E-unset}b${SL_TEST_U-d}c${SL_TEST_E:+t}"
        "${SL_TEST_E+s}${SL_TEST_U:+no}${SL_TEST_S:+yes}', count: '${SL_TEST_U:?need U}'}\n"
        "sinks:\n"
        "  db: {type: store, inputs: [orders], path: '${SL_TEST_E?}x'}\n";
    char tmp[] = "/tmp/test_conf_env_XXXXXX";
    struct sl_conf *conf = NULL;
    struct sl_err err;
    char msg[1024];

    (void)state;
    write_tmp(tmp, text, sizeof(text) - 1);
    setenv("SL_TEST_E", "", 1);
    setenv("SL_TEST_S", "v", 1);
    setenv("SL_TEST_U", "7", 1);
    if (sl_conf_load(tmp, NULL, 0, &conf, &err) != 0) {
        fail_msg("%s", sl_err_format(&err, msg, sizeof(msg)));
    }
    assert_string_equal(((const struct gen_conf *)node_conf(conf, "orders"))->label, "ab7csnoyes");
    assert_int_equal(((const struct gen_conf *)node_conf(conf, "orders"))->count, 7);
    assert_string_equal(((const struct store_conf *)node_conf(conf, "db"))->path, "x");
    conf = sl_conf_free(conf);
    unsetenv("SL_TEST_U");
    assert_int_not_equal(sl_conf_load(tmp, NULL, 0, &conf, &err), 0);
    assert_non_null(strstr(err.msg, "environment variable 'SL_TEST_U' is not set: need U"));
    setenv("SL_TEST_U", "", 1);
    assert_int_not_equal(sl_conf_load(tmp, NULL, 0, &conf, &err), 0);
    assert_non_null(strstr(err.msg, "environment variable 'SL_TEST_U' is empty: need U"));
    unsetenv("SL_TEST_U");
    unsetenv("SL_TEST_E");
    unsetenv("SL_TEST_S");
    unlink(tmp);
}

static void test_conf_env_nested_default(void **state)
{
    static const char text[] =
        "sources:\n"
        "  orders: {type: gen, label: '${SL_TEST_A:-${SL_TEST_B}}', count: "
        "'${SL_TEST_A:-${SL_TEST_N:-${SL_TEST_C:-4}}}'}\n"
        "sinks:\n"
        "  db: {type: store, inputs: [orders], path: 'x${SL_TEST_A:-$${B}-{z}$$}y',\n"
        "       password: '${SL_TEST_B:-${SL_TEST_UNSET}}', batch: {max_records: "
        "'${SL_TEST_A:-}9'}}\n";
    char tmp[] = "/tmp/test_conf_env_XXXXXX";
    struct sl_conf *conf = NULL;
    struct sl_err err;
    char msg[1024];

    (void)state;
    write_tmp(tmp, text, sizeof(text) - 1);
    unsetenv("SL_TEST_A");
    unsetenv("SL_TEST_N");
    unsetenv("SL_TEST_UNSET");
    setenv("SL_TEST_B", "b-value", 1);
    setenv("SL_TEST_C", "", 1);
    if (sl_conf_load(tmp, NULL, 0, &conf, &err) != 0) {
        fail_msg("%s", sl_err_format(&err, msg, sizeof(msg)));
    }
    const struct gen_conf *gc = node_conf(conf, "orders");
    const struct store_conf *sc = node_conf(conf, "db");

    assert_string_equal(gc->label, "b-value");
    assert_int_equal(gc->count, 4);
    assert_string_equal(sc->path, "x${B}-{z}$y");
    assert_string_equal(sc->password, "b-value"); /* the unused default is not expanded */
    assert_int_equal(sc->max_records, 9);
    conf = sl_conf_free(conf);
    setenv("SL_TEST_A", "a-value", 1);
    if (sl_conf_load(tmp, NULL, 0, &conf, &err) == 0) {
        conf = sl_conf_free(conf);
        fail_msg("a-value as a count loaded");
    }
    /* A set variable wins over its default, nested or not. */
    assert_non_null(strstr(sl_err_format(&err, msg, sizeof(msg)),
                           ":2:67: sources.orders.count: expected an integer, got 'a-value'"));
    unsetenv("SL_TEST_A");
    unsetenv("SL_TEST_B");
    unsetenv("SL_TEST_C");
    unlink(tmp);
}

static void test_conf_set_overrides(void **state)
{
    const char *sets[] = {
        "sinks.db.batch.max_records=7",    "sinks.db.path=${SL_TEST_SET:-fallback.db}",
        "sources.orders.label=\"quoted\"", "stages.paid.where=amount > 10",
        "sinks.db.columns.\"a.b\"=TEXT",   "engine.threads=2",
        "sinks.db.inputs=[cents, paid]",   "sinks.db.key_columns=[id]",
    };
    struct sl_conf *conf = load_ok("valid_basic.yaml", sets, sizeof(sets) / sizeof(sets[0]));
    const struct store_conf *sc = node_conf(conf, "db");
    const struct filt_conf *fc = node_conf(conf, "paid");
    const struct gen_conf *gc = node_conf(conf, "orders");

    (void)state;
    assert_int_equal(sc->max_records, 7);
    assert_string_equal(sc->path, "fallback.db");
    assert_string_equal(gc->label, "\"quoted\"");
    assert_string_equal(sl_expr_text((const struct sl_expr *)fc->where), "amount > 10");
    assert_int_equal(sc->columns.n, 1);
    assert_string_equal(sc->columns.keys[0], "a.b");
    assert_int_equal(conf->threads, 2);
    assert_int_equal(sl_conf_find(conf, "db")->ninputs, 2);
    assert_int_equal(sc->key_columns.n, 1);
    sl_conf_free(conf);
    sets[0] = "engine.threads=auto";
    setenv("SL_TEST_DB", "/tmp/x.db", 1);
    conf = load_ok("valid_full.yaml", sets, 1);
    unsetenv("SL_TEST_DB");
    assert_int_equal(conf->threads, 0);
    sl_conf_free(conf);
    sets[0] = "engine.cpu_affinity=true";
    sets[1] = "engine.work_stealing=true";
    setenv("SL_TEST_DB", "/tmp/x.db", 1);
    conf = load_ok("valid_full.yaml", sets, 2);
    unsetenv("SL_TEST_DB");
    assert_int_equal(conf->cpu_affinity, SL_AFFINITY_ALL);
    assert_int_equal(conf->work_stealing, 1);
    sl_conf_free(conf);
    sets[0] = "engine.cpu_affinity=[1]";
    setenv("SL_TEST_DB", "/tmp/x.db", 1);
    conf = load_ok("valid_full.yaml", sets, 1);
    unsetenv("SL_TEST_DB");
    assert_int_equal(conf->cpu_affinity, SL_AFFINITY_LIST);
    assert_int_equal(conf->ncpus, 1);
    assert_int_equal(conf->cpus[0], 1);
    sl_conf_free(conf);
}

static void test_conf_sizes_and_durations(void **state)
{
    static const struct {
        const char *set;
        uint64_t want;
    } sizes[] = {{"8192", 8192},    {"64KiB", 65536}, {"1GiB", 1ull << 30}, {"10MB", 10000000},
                 {"4.5 KiB", 4608}, {"4096B", 4096},  {"5kb", 5000},        {"1TiB", 1ull << 40}},
      waits[] = {{"250us", 250000},
                 {"100ms", 100000000},
                 {"30s", 30000000000ull},
                 {"5m", 300000000000ull},
                 {"1h30m", 5400000000000ull},
                 {"1.5s", 1500000000},
                 {"0", 0},
                 {"10ns", 10}};
    char set1[64], set2[64];

    (void)state;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        const char *sets[2] = {set1, set2};

        snprintf(set1, sizeof(set1), "sinks.db.memory=%s", sizes[i].set);
        snprintf(set2, sizeof(set2), "sinks.db.batch.max_wait=%s", waits[i].set);
        struct sl_conf *conf = load_ok("valid_basic.yaml", sets, 2);
        const struct store_conf *sc = node_conf(conf, "db");

        assert_int_equal(sc->memory, sizes[i].want);
        assert_int_equal(sc->max_wait_ns, waits[i].want);
        sl_conf_free(conf);
    }
}

/* ==== Robustness ==== */

static char *slurp(const char *path, size_t *ret_len)
{
    FILE *fp = fopen(path, "rb");
    char *buf = malloc(1 << 16);
    size_t n;

    assert_non_null(fp);
    assert_non_null(buf);
    n = fread(buf, 1, (1 << 16) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    *ret_len = n;
    return buf;
}

static void load_bytes(const char *tmp, const char *bytes, size_t len)
{
    FILE *fp = fopen(tmp, "wb");
    struct sl_conf *conf = NULL;
    struct sl_err err;
    char msg[1024];

    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, len, fp), len);
    fclose(fp);
    if (sl_conf_load(tmp, NULL, 0, &conf, &err) == 0) {
        sl_conf_free(conf);
    } else {
        assert_true(err.code == SL_ECONFIG || err.code == SL_EIO);
        sl_err_format(&err, msg, sizeof(msg));
        assert_true(strlen(msg) > 0);
    }
}

static void test_conf_fuzz_truncated_and_garbled(void **state)
{
    static const char garble[] = {':', '-', '[', '{', '"',  '\'', '\n', ' ',       '&',
                                  '*', '!', '#', '$', '\t', '\0', '|',  (char)0xff};
    char path[512], tmp[] = "/tmp/test_conf_fuzz_XXXXXX";
    size_t len;
    int fd = mkstemp(tmp);
    char *text;

    (void)state;
    assert_true(fd >= 0);
    close(fd);
    data_path(path, sizeof(path), "valid_full.yaml");
    setenv("SL_TEST_DB", "/tmp/x.db", 1);
    text = slurp(path, &len);
    for (size_t n = 0; n <= len; n++) {
        load_bytes(tmp, text, n);
    }
    for (size_t i = 0; i < len; i++) {
        char saved = text[i];

        for (size_t g = 0; g < sizeof(garble); g++) {
            text[i] = garble[g];
            load_bytes(tmp, text, len);
        }
        text[i] = saved;
    }
    unsetenv("SL_TEST_DB");
    free(text);
    unlink(tmp);
}

static void test_conf_oom_loop_fails_cleanly(void **state)
{
    char path[512];
    const char *set = "sinks.db.batch.max_records=7";

    (void)state;
    data_path(path, sizeof(path), "valid_full.yaml");
    setenv("SL_TEST_DB", "/tmp/x.db", 1);
    for (long nth = 1;; nth++) {
        struct sl_conf *conf = NULL;
        struct sl_err err;
        int rc;

        sl_mem_fail_nth(nth);
        rc = sl_conf_load(path, &set, 1, &conf, &err);
        sl_mem_fail_nth(0);
        if (rc == 0) {
            sl_conf_free(conf);
            assert_true(nth > 5);
            break;
        }
        assert_int_equal(rc, SL_ENOMEM);
        assert_int_equal(err.code, SL_ENOMEM);
        assert_null(conf);
    }
    unsetenv("SL_TEST_DB");
}

static int setup(void **state)
{
    (void)state;
    return sl_node_type_register(fake_types);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_corpus_bad),
        cmocka_unit_test(test_conf_load_missing_file_is_eio),
        cmocka_unit_test(test_conf_bad_set_syntax),
        cmocka_unit_test(test_conf_valid_basic_defaults),
        cmocka_unit_test(test_conf_valid_full_values),
        cmocka_unit_test(test_conf_yaml_core_typing),
        cmocka_unit_test(test_conf_set_overrides),
        cmocka_unit_test(test_conf_env_quoted_takes_expanded_type),
        cmocka_unit_test(test_conf_env_nested_default),
        cmocka_unit_test(test_conf_env_compose_forms),
        cmocka_unit_test(test_conf_sizes_and_durations),
        cmocka_unit_test(test_conf_fuzz_truncated_and_garbled),
        cmocka_unit_test(test_conf_oom_loop_fails_cleanly),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
