/* SPDX-License-Identifier: MIT */
/* The pipeline file: YAML (libyaml) -> a checked struct sl_conf. Every
 * mistake is reported as file:line:col: key.path: message (with a nearest-key
 * hint for unknown keys) before anything runs. Thread: main, at start-up. */
#ifndef SL_CONF_H
#define SL_CONF_H

#include "err.h"
#include "node.h"

#include <stddef.h>
#include <stdint.h>

struct sl_expr;
struct sl__ynode; /* the loader's located YAML tree (conf_int.h) */

struct sl_conf_input {
    const char *node;   /* upstream node name */
    const char *output; /* route output name ("paid" in "split.paid"), NULL for the main output */
    int line, col;
};

/* A node's `when_full`: what its producers do when its input ring is full. */
enum sl_when_full {
    SL_WHEN_FULL_BLOCK,       /* wait for room (backpressure) */
    SL_WHEN_FULL_DROP_NEWEST, /* shed the batch that does not fit */
    SL_WHEN_FULL_DROP_OLDEST, /* shed the oldest queued batch to make room */
    SL_WHEN_FULL_SHED,        /* shed the lowest priority: a queued lower one, else this one */
    SL_WHEN_FULL_COUNT
};

/* Priorities are 0..SL_PRIORITY_LEVELS-1, higher first. */
#define SL_PRIORITY_LEVELS 10

struct sl_conf_node {
    const char *name; /* the key under sources/stages/sinks */
    const struct sl_node_type *type;
    enum sluice_stage_kind kind;
    struct sl_conf_input *inputs; /* fan-in, file order */
    size_t ninputs;
    int64_t workers; /* default 1; 0 = auto, tuned in [workers_min, workers_max] */
    int64_t workers_min, workers_max;
    int64_t queue;                  /* input ring capacity in batches; 0 = auto (memory_limit) */
    enum sl_when_full when_full;    /* default block */
    int priority;                   /* -1: what it emits keeps its input's (0 at sources);
                                       else the level of everything it emits */
    struct sl_expr *priority_expr;  /* per record, or NULL (then `priority` says) */
    uint16_t priority_levels;       /* levels it may emit, a bit each; 0 when it inherits */
    uint16_t levels_in;             /* levels that may reach its input, a bit each (conf_dag.c):
                                       its queue gets a lane per level when more than one */
    void *conf;                     /* type's conf struct, filled from its options */
    const char *file;               /* config file name (for errors later) */
    int line, col;                  /* where the node's key is */
    const struct sl__ynode *yaml;   /* the node's YAML mapping, for sl_conf_locate */
    const struct sl_conf *pipeline; /* the whole file, for checks across nodes: during a
                                       check(), the nodes loaded so far (every node, for
                                       the dead_letter sink, which is loaded last) */
    uint32_t *paths; /* sinks but dead_letter: per [node index * SL_PRIORITY_LEVELS + level],
                        the copies of each batch of that source node that reach here at
                        that level, one per path and per part of a priority split (0 for
                        other nodes; at most 64, conf_dag.c) */
    /* Path tags (conf_dag.c number_paths): a copy of a batch carries the sum
     * of the increments of the edges it took (batch->path), unique among the
     * paths from its source. */
    uint32_t *path_inc;    /* per input: the increment of that edge */
    uint32_t path_stride;  /* paths on from here: a priority split's r-th part adds r x it */
    uint32_t *path_ids;    /* sinks: the tags that arrive, for each [source * levels + level]
                              in turn, paths[] of them each, ascending */
    uint32_t *path_ids_at; /* sinks: where each [source * levels + level]'s tags start */
};

/* engine.cpu_affinity. */
enum sl_affinity {
    SL_AFFINITY_OFF,  /* false: workers run where the kernel puts them */
    SL_AFFINITY_ALL,  /* true: worker i on the i-th CPU (mod n) of the process's affinity mask */
    SL_AFFINITY_LIST, /* [0, 2]: worker i on cpus[i % ncpus] */
};

/* Records of one node in a `tests:` case, as JSON lines (one object per
 * line, converted from YAML by the loader). */
struct sl_conf_case_records {
    const char *node; /* "orders", "split.eu" (a route output) or "dead_letter" */
    const char *json; /* count lines, each ending in '\n' */
    size_t count;
    int line, col; /* where the node's key is in the file */
};

/* One case of the file's `tests:` section (`sluice test`). */
struct sl_conf_case {
    const char *name;
    const char *file; /* where it is written: the pipeline file or a side file */
    bool named;       /* its name was written (else "case N") */
    int line, col;
    struct sl_conf_case_records *inputs; /* per source node: what it reads */
    size_t ninputs;
    struct sl_conf_case_records *expect; /* per node: all of its output, in order */
    size_t nexpect;
};

/* The node `sluice test` adds to capture what node `name` emits. */
#define SL_CONF_CASE_CAPTURE "expect:"

struct sl_conf {
    const char *file;
    int64_t threads;          /* engine.threads, 0 = auto (cores) */
    int64_t blocking_threads; /* engine.blocking_threads, 0 = auto (1 up front, grows to 256) */
    int work_stealing;        /* engine.work_stealing, default 1 */
    int log_level;            /* engine.log_level: enum sl_log_level (log.h), default info */
    enum sl_affinity cpu_affinity; /* engine.cpu_affinity, default off */
    const int *cpus;               /* SL_AFFINITY_LIST: worker i on cpus[i % ncpus] */
    size_t ncpus;
    uint64_t memory_limit;      /* engine.memory_limit bytes, default 64MiB */
    uint64_t drain_timeout_ns;  /* engine.drain_timeout, default 30s */
    const char *metrics_host;   /* engine.metrics: address to serve /metrics on, or NULL */
    int metrics_port;           /* its port, 1..65535 (0 when metrics_host is NULL) */
    bool control;               /* engine.control: a control socket (default: auto) */
    const char *control_path;   /* its path, or NULL for auto (a path per pipeline file) */
    struct sl_conf_node *nodes; /* sources first, then stages, then sinks, each in file order */
    size_t nnodes;
    struct sl_conf_node *dead_letter; /* NULL if none; a sink without inputs, name "dead_letter" */
    struct sl_conf_case *cases;       /* the `tests:` section, file order */
    size_t ncases;
    void *priv; /* loader's storage (strings, arrays) */
};

/* cn's string option name (a sink's `path`), or NULL when its type has no
 * such option or it is not set. For checks across node types. */
const char *sl_conf_node_str(const struct sl_conf_node *cn, const char *name);
/* Folds cn's name and everything written for it in the file (its YAML,
 * after ${VAR} and --set) into the FNV-1a hash h: what a change of a
 * node's settings changes. */
uint64_t sl_conf_node_digest(const struct sl_conf_node *cn, uint64_t h);
/* The text of cn's enum option name (a source's `format`: "csv"), or NULL
 * when its type has no such option. */
const char *sl_conf_node_enum(const struct sl_conf_node *cn, const char *name);

/* Loads and checks path for `run` and `graph`, applying the --set overrides ("a.b.c=v", quoted
 * dotted keys a."x.y"=v) in order. Returns 0 and *ret_conf, or SL_ECONFIG with
 * err located (file/line/col/path; --set errors have file "--set"), SL_EIO if
 * the file cannot be read, SL_ENOMEM. Does no I/O beyond reading path.
 * Thread: main. */
int sl_conf_load(const char *path,
                 const char *const *sets,
                 size_t nsets,
                 struct sl_conf **ret_conf,
                 struct sl_err *err);

/* sl_conf_load does not read the `tests:` section (only that it is a
 * top-level key). This loads path as sl_conf_load does and checks its
 * cases too (`validate`, `test`), with the cases of the file cases_path
 * (a mapping holding only `tests:`) after its own when not NULL. */
int sl_conf_load_cases(const char *path,
                       const char *cases_path,
                       const char *const *sets,
                       size_t nsets,
                       struct sl_conf **ret_conf,
                       struct sl_err *err);

/* Loads case i of conf (from sl_conf_load_cases, which must outlive the
 * result: it holds the tree) as a pipeline of its own: every source a
 * `test_input` reading the case's records, every sink and the dead-letter
 * sink (one is added when the file has none) a `test_capture`, and a
 * `test_capture` named SL_CONF_CASE_CAPTURE + node fed by each other node
 * the case expects output of; no metrics endpoint or control socket. The
 * test types must be registered (cases.h). */
int sl_conf_load_case(const struct sl_conf *conf,
                      size_t i,
                      struct sl_conf **ret_conf,
                      struct sl_err *err);

/* Frees conf and everything it holds (compiled expressions included).
 * Accepts NULL; returns NULL. */
struct sl_conf *sl_conf_free(struct sl_conf *conf);

/* Returns the node named name or NULL. */
struct sl_conf_node *sl_conf_find(const struct sl_conf *conf, const char *name);

/* Finds where the key subpath was written under node cn, for errors that a
 * type's check() finds inside an option's value (a bad librdkafka key).
 * subpath is keys joined by dots, "librdkafka.session.timeout.ms"; a key that
 * itself holds dots matches whole (the longest key wins). Returns 0 with
 * *ret_line and *ret_col (1-based) of the key, or of its value when --set
 * gave the value (then both are 0: report it against the file "--set");
 * SL_EOF when absent. Valid as long as the conf, during check() too.
 * Thread: any (the tree is read-only). */
int sl_conf_locate(const struct sl_conf_node *cn, const char *subpath, int *ret_line, int *ret_col);

/* Reports a mistake in node cn's options for a type's check(): fills err
 * with SL_ECONFIG, the location of the value of the key subpath (found as
 * sl_conf_locate finds keys; "key_columns[1]" is an item of a list; the
 * node's key when subpath is "" or absent; file "--set" when --set gave the
 * value) and the key path "sinks.db.table" ("dead_letter.table" for the
 * dead-letter sink). Returns SL_ECONFIG. Thread: main. */
int sl_conf_node_err(const struct sl_conf_node *cn,
                     const char *subpath,
                     struct sl_err *err,
                     const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));

#endif
