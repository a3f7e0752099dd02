/* SPDX-License-Identifier: MIT */
/* Private to the config loader (conf.c, conf_yaml.c, conf_opts.c, conf_dag.c):
 * the located YAML tree, the loader state and the helpers its files share.
 * Nothing outside conf*.c includes this. Thread: main, at start-up. */
#ifndef SL_CONF_INT_H
#define SL_CONF_INT_H

#include "arena.h"
#include "conf.h"
#include "err.h"
#include "expr.h"

#include <stddef.h>
#include <stdint.h>

#define SL__CONF_MAX_DEPTH 64 /* YAML nesting limit: bounds every recursion */
#define SL__SET_FILE       "--set"

enum sl__ykind { SL__Y_SCALAR, SL__Y_SEQ, SL__Y_MAP };

/* YAML 1.2 core schema types of a scalar; quoted and block scalars are STR. */
enum sl__ytag { SL__T_STR, SL__T_NULL, SL__T_BOOL, SL__T_INT, SL__T_FLOAT };

/* One YAML node with its location. Everything lives in the conf's arena. */
struct sl__ynode {
    enum sl__ykind kind;
    enum sl__ytag tag;           /* scalars only */
    const char *text;            /* scalars: NUL-terminated, after ${VAR} expansion */
    size_t len;                  /* bytes of text */
    int quoted;                  /* 1 for '...' and "...": the text starts one column later */
    int exact;                   /* text is its source bytes on one line (expression columns) */
    int verbatim;                /* keys: shown unquoted in paths even if they hold dots */
    const char *file;            /* for errors: the caller's path or SL__SET_FILE */
    int line, col;               /* 1-based; 0 for --set values */
    struct sl__ynode *parent;    /* enclosing SEQ or MAP; NULL for the root */
    const struct sl__ynode *key; /* MAP keys and values: the key node; else NULL */
    size_t index;                /* SEQ items: 0-based position */
    struct sl__ynode **kids;     /* SEQ: items; MAP: key, value, key, value, ... */
    size_t nkids;
    size_t cap;
};

struct sl__expr_link {
    struct sl_expr *expr;
    struct sl__expr_link *next;
};

/* What conf->priv points to; conf is its first member so one free does. */
struct sl__conf_priv {
    struct sl_conf conf;
    struct sl_arena arena;       /* tree, strings, nodes, conf structs */
    struct sl__expr_link *exprs; /* every compiled expression, for sl_conf_free */
    /* Loaded with its cases (sl_conf_load_cases): the tree after --set and
     * the cases' list, which sl_conf_load_case copies from. */
    const struct sl__ynode *root;
    const struct sl__ynode *tests;
};

struct sl__loader {
    struct sl__conf_priv *priv;
    struct sl_conf *conf;
    struct sl_arena *arena;
    struct sl_err *err;
    const char *file;              /* the caller's path: outlives the conf, so errors point at it */
    const struct sl__ynode **keys; /* per conf->nodes[i]: its key in the tree */
    const struct sl__ynode **inputs;  /* per conf->nodes[i]: its inputs list or NULL */
    struct sl__ynode *engine;         /* the engine mapping (made up when the file has none) */
    size_t test_case;                 /* sl_conf_load_case's case, or SIZE_MAX */
    bool skip_cases;                  /* sl_conf_load: the tests: section is not read */
    const char *cases_path;           /* a side file of cases (`sluice test FILE CASES`), or NULL */
    const struct sl__ynode *tests;    /* the cases, when a side file adds to the file's */
    const struct sl__conf_priv *from; /* sl_conf_load_case: the file loaded whole */
};

/* Nearest-name hints (edit distance). */
struct sl__hint {
    const char *word; /* the unknown name */
    const char *best; /* best candidate so far or NULL */
    size_t best_len;
    int best_dist;
};

/* ==== conf.c ==== */

/* Arena allocation, zeroed; on failure fills ld->err with SL_ENOMEM. */
void *sl__conf_alloc(struct sl__loader *ld, size_t size);
int sl__conf_oom(struct sl__loader *ld);
void sl__hint_init(struct sl__hint *hint, const char *word);
void sl__hint_add(struct sl__hint *hint, const char *cand, size_t len);
/* Formats " (did you mean 'x'?)" into buf, or "" without a close candidate. */
const char *sl__hint_text(const struct sl__hint *hint, char *buf, size_t len);

/* Refuses the first key of map not in known (NULL-ended), with a hint
 * and what appended to the message. */
int sl__check_keys(struct sl__loader *ld,
                   const struct sl__ynode *map,
                   const char *const *known,
                   const char *what);

/* A node's keys that are not its type's options, "type" first. */
extern const char *const sl__node_own_keys[];

/* ==== conf_yaml.c ==== */

/* Parses text (one YAML document) into a tree. *ret_root is NULL for an
 * empty stream. Returns 0, SL_ECONFIG with a located error, SL_ENOMEM. */
int sl__yaml_parse(struct sl__loader *ld,
                   const char *text,
                   size_t len,
                   struct sl__ynode **ret_root);
/* Makes a value node from text typed like a plain scalar, or like a YAML flow
 * collection when it starts with '[' or '{'. Every node gets file/line/col;
 * env expands ${VAR}. The result hangs under parent and key (for its path)
 * but is not added to parent. */
int sl__yaml_value(struct sl__loader *ld,
                   const char *text,
                   const char *file,
                   int line,
                   int col,
                   int env,
                   struct sl__ynode *parent,
                   const struct sl__ynode *key,
                   struct sl__ynode **ret);
/* The YAML 1.2 core schema type of s (len bytes, NUL-terminated) written as
 * a plain scalar. */
enum sl__ytag sl__yaml_plain_tag(const char *s, size_t len);
/* Applies one --set "a.b.c=value" to root (a MAP). */
int sl__yaml_set(struct sl__loader *ld, struct sl__ynode *root, const char *set);
struct sl__ynode *
sl__ynew(struct sl__loader *ld, enum sl__ykind kind, const char *file, int line, int col);
/* Appends key and value to map, setting their parent/key links. */
int sl__ymap_add(struct sl__loader *ld,
                 struct sl__ynode *map,
                 struct sl__ynode *key,
                 struct sl__ynode *value);
/* A copy of map (a MAP) with a kids array of its own, so that adding to
 * or replacing its values leaves map as it was; the kids are shared.
 * NULL on OOM. */
struct sl__ynode *sl__ycopy(struct sl__loader *ld, const struct sl__ynode *map);
/* Appends item to seq, setting its parent and index. */
int sl__yseq_add(struct sl__loader *ld, struct sl__ynode *seq, struct sl__ynode *item);
/* Returns the value of key in map (a MAP) or NULL. */
struct sl__ynode *sl__ymap_find(const struct sl__ynode *map, const char *key);
/* Formats node's key path ("stages.paid.where", "x.inputs[1]") into buf. */
const char *sl__ypath(const struct sl__ynode *node, char *buf, size_t len);
/* Describes node for "got ..." messages: "a list", "'abc'"... */
const char *sl__ydescribe(const struct sl__ynode *node, char *buf, size_t len);
/* Reports a config error at node (its file, line, col and key path). */
int sl__yerr(struct sl__loader *ld, const struct sl__ynode *node, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ==== conf_opts.c ==== */

/* v as the config would write it: "64MiB", "100ms", "0.5", "12". Returns
 * buf. */
const char *sl__conf_format_num(enum sluice_opt_type type, double v, char *buf, size_t len);

/* Fills conf (conf_size bytes, zeroed) from the keys of map (a MAP, or NULL
 * for none) following the option table opts; keys listed in own are the
 * caller's and skipped. at locates "missing required key" errors. */
int sl__conf_fill(struct sl__loader *ld,
                  struct sl__ynode *map,
                  const struct sl__ynode *at,
                  const struct sluice_option *opts,
                  void *conf,
                  size_t conf_size,
                  const char *const *own);
/* Parses an integer scalar within [min, max]. */
int sl__conf_int(
    struct sl__loader *ld, const struct sl__ynode *node, int64_t min, int64_t max, int64_t *ret);
/* Returns whether key is a key of later work ("not supported yet"). */
int sl__conf_is_later(const char *key);
/* Compiles a scalar's text as an expression, located errors. */
int sl__conf_expr(struct sl__loader *ld, const struct sl__ynode *node, struct sl_expr **ret);

/* ==== conf_dag.c ==== */

/* Resolves inputs and checks the graph: known inputs and outputs, no sink
 * consumed, no cycles, a path to a sink from every node, at least one
 * source and one sink. root locates errors about missing sections. */
int sl__conf_dag(struct sl__loader *ld, const struct sl__ynode *root);

/* ==== conf_cases.c ==== */

/* Makes the cases the file's `tests:` items followed by more's (a side
 * file's `tests:` list). */
int sl__conf_cases_add(struct sl__loader *ld, struct sl__ynode *root, const struct sl__ynode *more);
/* Loads the `tests:` section into conf->cases (structure and records; the
 * names it uses are checked by sl__conf_cases_check once the graph is). */
int sl__conf_cases_load(struct sl__loader *ld, const struct sl__ynode *root);
/* Checks that the cases' inputs name sources and their expect names nodes,
 * route outputs or dead_letter. */
int sl__conf_cases_check(struct sl__loader *ld, const struct sl__ynode *root);
/* Rewrites root, before its nodes are loaded, into case i's pipeline
 * (sl_conf_load_case). */
int sl__conf_case_rewrite(struct sl__loader *ld, struct sl__ynode *root, size_t i);

#endif
