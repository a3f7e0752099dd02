/* SPDX-License-Identifier: MIT */
/* Graph checks of the pipeline file, after every node is loaded: inputs name
 * existing nodes and outputs, no sink feeds another node, no cycles, every
 * source and stage reaches a sink, at least one source and one sink, queue
 * settings within the budget, at most 64 paths from a source to a sink, no
 * two sinks of different types on one file, no priority expression or
 * route condition that may not follow from the record.
 * Thread: main, at start-up. */
#include "conf_int.h"
#include "fsutil.h"
#include "node.h"
#include "ring.h"

#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NONE        ((size_t)-1)
#define OUTPUTS_MAX 64

struct dag {
    size_t n;
    size_t **up;        /* per node: the node index of each input */
    size_t *nconsumers; /* per node: how many inputs name it */
};

static int node_err(struct sl__loader *ld, size_t i, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int node_err(struct sl__loader *ld, size_t i, const char *fmt, ...)
{
    char msg[SL_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sl__yerr(ld, ld->keys[i], "%s", msg);
}

static int check_counts(struct sl__loader *ld, const struct sl__ynode *root)
{
    static const char *const what[] = {"source", "stage", "sink"};
    static const char *const section[] = {"sources", "stages", "sinks"};
    size_t count[3] = {0, 0, 0};

    for (size_t i = 0; i < ld->conf->nnodes; i++) {
        count[ld->conf->nodes[i].kind]++;
    }
    for (size_t k = 0; k < 3; k += 2) {
        const struct sl__ynode *val = sl__ymap_find(root, section[k]);

        if (count[k] != 0) {
            continue;
        }
        if (val != NULL) {
            return sl__yerr(ld, val->key, "the pipeline needs at least one %s", what[k]);
        }
        /* No section to point at: the top of the file (1:1). */
        return sl_err_set_at(ld->err, ld->file, root != NULL && root->line > 0 ? root->line : 1,
                             root != NULL && root->col > 0 ? root->col : 1, section[k],
                             "the pipeline needs at least one %s", what[k]);
    }
    return 0;
}

static size_t find_node(const struct sl_conf *conf, const char *name)
{
    for (size_t i = 0; i < conf->nnodes; i++) {
        if (strcmp(conf->nodes[i].name, name) == 0) {
            return i;
        }
    }
    return NONE;
}

/* Checks that the output named by input in exists on node up. */
static int check_output(struct sl__loader *ld,
                        const struct sl__ynode *item,
                        const struct sl_conf_input *in,
                        const struct sl_conf_node *up)
{
    const char *local[OUTPUTS_MAX], **names = local;
    char list[128] = "", hint[96];
    struct sl__hint h;
    size_t n, off = 0;

    if (up->type->outputs == NULL) {
        return sl__yerr(ld, item,
                        "node '%s' has no output '%s' (only types such as route have "
                        "named outputs)",
                        up->name, in->output);
    }
    n = up->type->outputs(up->conf, local, OUTPUTS_MAX);
    if (n > OUTPUTS_MAX) {
        names = sl__conf_alloc(ld, n * sizeof(*names));
        if (names == NULL) {
            return SL_ENOMEM;
        }
        n = up->type->outputs(up->conf, names, n);
    }
    sl__hint_init(&h, in->output);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], in->output) == 0) {
            return 0;
        }
        sl__hint_add(&h, names[i], strlen(names[i]));
        if (off < sizeof(list)) {
            int w = snprintf(list + off, sizeof(list) - off, "%s%s", i != 0 ? ", " : "", names[i]);
            off += w > 0 ? (size_t)w : 0;
        }
    }
    if (h.best != NULL) {
        return sl__yerr(ld, item, "node '%s' has no output '%s'%s", up->name, in->output,
                        sl__hint_text(&h, hint, sizeof(hint)));
    }
    return sl__yerr(ld, item, "node '%s' has no output '%s' (its outputs: %s)", up->name,
                    in->output, list);
}

static int resolve_input(struct sl__loader *ld, struct dag *dag, size_t i, size_t j)
{
    const struct sl_conf *conf = ld->conf;
    const struct sl_conf_input *in = &conf->nodes[i].inputs[j];
    const struct sl__ynode *item = ld->inputs[i]->kids[j];
    size_t up = find_node(conf, in->node);
    struct sl__hint h;
    char hint[96];

    if (up == NONE && conf->dead_letter != NULL && strcmp(in->node, "dead_letter") == 0) {
        return sl__yerr(ld, item, "'dead_letter' is a sink: it has no output to consume");
    }
    if (up == NONE) {
        sl__hint_init(&h, in->node);
        for (size_t k = 0; k < conf->nnodes; k++) {
            sl__hint_add(&h, conf->nodes[k].name, strlen(conf->nodes[k].name));
        }
        return sl__yerr(ld, item, "unknown input '%s'%s", in->node,
                        sl__hint_text(&h, hint, sizeof(hint)));
    }
    if (conf->nodes[up].kind == SLUICE_KIND_SINK) {
        return sl__yerr(ld, item, "'%s' is a sink: it has no output to consume", in->node);
    }
    if (in->output != NULL) {
        int rc = check_output(ld, item, in, &conf->nodes[up]);

        if (rc != 0) {
            return rc;
        }
    }
    dag->up[i][j] = up;
    dag->nconsumers[up]++;
    return 0;
}

static int resolve(struct sl__loader *ld, struct dag *dag)
{
    const struct sl_conf *conf = ld->conf;

    dag->n = conf->nnodes;
    dag->up = sl__conf_alloc(ld, dag->n * sizeof(*dag->up));
    dag->nconsumers = sl__conf_alloc(ld, dag->n * sizeof(*dag->nconsumers));
    if (dag->up == NULL || dag->nconsumers == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < dag->n; i++) {
        dag->up[i] = sl__conf_alloc(ld, conf->nodes[i].ninputs * sizeof(**dag->up));
        if (dag->up[i] == NULL) {
            return SL_ENOMEM;
        }
        for (size_t j = 0; j < conf->nodes[i].ninputs; j++) {
            int rc = resolve_input(ld, dag, i, j);

            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* stack[k..sp) is a path along inputs from u (= stack[k]) back to a node
 * whose input is u: data flows u -> stack[sp-1] -> ... -> stack[k+1] -> u. */
static int report_cycle(struct sl__loader *ld, const size_t *stack, size_t sp, size_t u)
{
    const struct sl_conf *conf = ld->conf;
    char msg[200];
    size_t k = 0, off;

    while (stack[k] != u) {
        k++;
    }
    off = (size_t)snprintf(msg, sizeof(msg), "cycle: %s", conf->nodes[u].name);
    for (size_t i = sp; i-- > k + 1 && off < sizeof(msg);) {
        off += (size_t)snprintf(msg + off, sizeof(msg) - off, " -> %s", conf->nodes[stack[i]].name);
    }
    if (off < sizeof(msg)) {
        snprintf(msg + off, sizeof(msg) - off, " -> %s", conf->nodes[u].name);
    }
    return node_err(ld, u, "%s", msg);
}

/* Iterative DFS along inputs; a gray node met again closes a cycle. */
static int check_cycles(struct sl__loader *ld, const struct dag *dag)
{
    unsigned char *color = sl__conf_alloc(ld, dag->n + 1); /* 0 new, 1 on stack, 2 done */
    size_t *stack = sl__conf_alloc(ld, (dag->n + 1) * sizeof(*stack));
    size_t *next = sl__conf_alloc(ld, (dag->n + 1) * sizeof(*next));

    if (color == NULL || stack == NULL || next == NULL) {
        return SL_ENOMEM;
    }
    for (size_t s = 0; s < dag->n; s++) {
        size_t sp = 0;

        if (color[s] != 0) {
            continue;
        }
        color[s] = 1;
        stack[sp++] = s;
        while (sp > 0) {
            size_t v = stack[sp - 1];

            if (next[v] == ld->conf->nodes[v].ninputs) {
                color[v] = 2;
                sp--;
                continue;
            }
            size_t u = dag->up[v][next[v]++];

            if (color[u] == 1) {
                return report_cycle(ld, stack, sp, u);
            }
            if (color[u] == 0) {
                color[u] = 1;
                stack[sp++] = u;
            }
        }
    }
    return 0;
}

/* Marks everything upstream of a sink; reports an unmarked node, preferring
 * one nothing consumes (where the user forgot a consumer). */
static int check_reach(struct sl__loader *ld, const struct dag *dag)
{
    unsigned char *reached = sl__conf_alloc(ld, dag->n + 1);
    size_t *queue = sl__conf_alloc(ld, (dag->n + 1) * sizeof(*queue));
    size_t head = 0, tail = 0, bad = NONE;

    if (reached == NULL || queue == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < dag->n; i++) {
        if (ld->conf->nodes[i].kind == SLUICE_KIND_SINK) {
            reached[i] = 1;
            queue[tail++] = i;
        }
    }
    while (head < tail) {
        size_t v = queue[head++];

        for (size_t j = 0; j < ld->conf->nodes[v].ninputs; j++) {
            if (!reached[dag->up[v][j]]) {
                reached[dag->up[v][j]] = 1;
                queue[tail++] = dag->up[v][j];
            }
        }
    }
    for (size_t i = 0; i < dag->n; i++) {
        if (!reached[i] &&
            (bad == NONE || (dag->nconsumers[bad] != 0 && dag->nconsumers[i] == 0))) {
            bad = i;
        }
    }
    if (bad == NONE) {
        return 0;
    }
    if (dag->nconsumers[bad] == 0) {
        return node_err(ld, bad, "node '%s' has no path to a sink (no node lists it in inputs)",
                        ld->conf->nodes[bad].name);
    }
    return node_err(ld, bad, "node '%s' has no path to a sink", ld->conf->nodes[bad].name);
}

/* A sink waits for one copy of each batch per path from its source, and
 * the plan divides the budget by the paths: a chain of diamonds doubles
 * them at each diamond, and memory and start-up time with them (16
 * diamonds: 6.8 GB). 64 lets a route with 64 outputs into one sink (six
 * diamonds in a row make 64: already past the memory bound). */
#define PATHS_MAX 64

#define LEVELS SL_PRIORITY_LEVELS

/* Copies per level of each batch of source src that node v emits, into
 * memo[v] (done[v] set once known), saturating just past PATHS_MAX: one per
 * path, and a node that sets the priority splits everything it receives
 * into one part per level it may give (empty parts included, so that each
 * level's sequence has no gaps). Adds the levels v receives to its
 * levels_in. */
static const uint32_t *copies_from(const struct sl__loader *ld,
                                   const struct dag *dag,
                                   size_t src,
                                   size_t v,
                                   uint32_t (*memo)[LEVELS],
                                   unsigned char *done)
{
    struct sl_conf_node *cn = &ld->conf->nodes[v];
    uint32_t *c = memo[v];
    uint32_t total = 0;

    if (done[v]) {
        return c;
    }
    memset(c, 0, sizeof(memo[v]));
    if (v == src) {
        c[0] = 1; /* a source's own batches are level 0 unless it sets one */
    }
    for (size_t j = 0; v != src && j < cn->ninputs; j++) {
        const uint32_t *up = copies_from(ld, dag, src, dag->up[v][j], memo, done);
        for (int l = 0; l < LEVELS; l++) {
            c[l] = c[l] + up[l] > PATHS_MAX ? PATHS_MAX + 1 : c[l] + up[l];
        }
    }
    for (int l = 0; v != src && l < LEVELS; l++) {
        cn->levels_in |= c[l] > 0 ? (uint16_t)(1u << l) : 0;
    }
    if (cn->kind != SLUICE_KIND_SINK && cn->priority_levels != 0) {
        for (int l = 0; l < LEVELS; l++) {
            total = total + c[l] > PATHS_MAX ? PATHS_MAX + 1 : total + c[l];
        }
        for (int l = 0; l < LEVELS; l++) {
            c[l] = (cn->priority_levels >> l) & 1u ? total : 0;
        }
    }
    done[v] = 1;
    return c;
}

/* Counts, for each sink, the copies of each batch from each source per
 * level (the runtime's order restoration and memory plan read them:
 * sl_conf_node.paths). */
static int check_paths(struct sl__loader *ld, const struct dag *dag)
{
    struct sl_conf_node *nodes = ld->conf->nodes;
    uint32_t(*memo)[LEVELS] = sl__conf_alloc(ld, (dag->n + 1) * sizeof(*memo));
    unsigned char *done = sl__conf_alloc(ld, dag->n + 1);

    if (memo == NULL || done == NULL) {
        return SL_ENOMEM;
    }
    for (size_t v = 0; v < dag->n; v++) {
        if (nodes[v].kind == SLUICE_KIND_SINK &&
            (nodes[v].paths = sl__conf_alloc(ld, (dag->n + 1) * LEVELS * sizeof(uint32_t))) ==
                NULL) {
            return SL_ENOMEM;
        }
    }
    for (size_t src = 0; src < dag->n; src++) {
        if (nodes[src].kind != SLUICE_KIND_SOURCE) {
            continue;
        }
        memset(done, 0, dag->n);
        for (size_t v = 0; v < dag->n; v++) {
            if (nodes[v].kind != SLUICE_KIND_SINK) {
                continue;
            }
            const uint32_t *c = copies_from(ld, dag, src, v, memo, done);
            for (int l = 0; l < LEVELS; l++) {
                nodes[v].paths[src * LEVELS + (size_t)l] = c[l];
                if (c[l] > PATHS_MAX) {
                    return node_err(ld, v,
                                    "sink '%s' is reached from source '%s' by more than %d paths "
                                    "(fan-outs merged again, one after the other, or priorities "
                                    "set again after an expression split them): each path holds "
                                    "its own copy of every batch; merge the paths sooner",
                                    nodes[v].name, nodes[src].name, PATHS_MAX);
                }
            }
        }
    }
    return 0;
}

/* ==== Path tags ==== */

/* Paths from any node are numbered as Ball and Larus number them ("Efficient
 * path profiling", 1996): each edge u -> v gets as increment the number of
 * paths to a sink from the targets of u's edges before it, so the increments
 * along the paths from a node add up to 0, 1, ... (each once). A copy of a
 * batch adds up the increments of the edges it takes (runtime.c send), so
 * at a sink its tag names the path it came by: a sink knows which copies of
 * a sequence it has, not only how many. A node that sets the priority
 * splits what it emits into parts, one per level it may give (an int: one
 * part), which then take the same edges: the part of the r-th of those
 * levels adds r x path_stride (the paths on from the node), as if each
 * level were an edge of its own. So two parts of one batch that an int
 * priority further on puts on one level still arrive with tags apart. */

struct edge {
    size_t to, input; /* the consumer and which of its inputs */
};

struct path_walk {
    struct sl__loader *ld;
    struct edge **out; /* per node: its edges to consumers */
    size_t *nout;
    uint64_t *npaths; /* per node: paths to a sink (0: not counted yet) */
    size_t keys;      /* (nodes + 1) x LEVELS: [source * LEVELS + level] */
    size_t *sink_at;  /* per node: its row in fill (sinks) */
    uint32_t *fill;   /* per sink, per key: tags written so far */
};

#define PATHS_TAG_MAX UINT32_MAX

/* Paths from v to a sink (the parts of a split counted apart). */
static uint64_t count_paths(struct path_walk *w, size_t v)
{
    struct sl_conf_node *cn = &w->ld->conf->nodes[v];

    if (w->npaths[v] != 0) {
        return w->npaths[v];
    }
    uint64_t n = cn->kind == SLUICE_KIND_SINK ? 1 : 0;
    for (size_t e = 0; e < w->nout[v]; e++) {
        n += count_paths(w, w->out[v][e].to);
        n = n > PATHS_TAG_MAX ? (uint64_t)PATHS_TAG_MAX + 1 : n;
    }
    cn->path_stride = (uint32_t)(n > PATHS_TAG_MAX ? PATHS_TAG_MAX : n);
    if (cn->kind != SLUICE_KIND_SINK && cn->priority_levels != 0) {
        n *= (uint64_t)__builtin_popcount(cn->priority_levels);
        n = n > PATHS_TAG_MAX ? (uint64_t)PATHS_TAG_MAX + 1 : n;
    }
    w->npaths[v] = n > 0 ? n : 1; /* 1 for a node without a way on (none by now) */
    return w->npaths[v];
}

/* Walks every path from source src on, v reached with tag at level, and
 * writes the tags that reach each sink per level. */
static void walk_paths(struct path_walk *w, size_t src, size_t v, uint32_t tag, int level)
{
    struct sl_conf_node *cn = &w->ld->conf->nodes[v];

    if (cn->kind == SLUICE_KIND_SINK) {
        size_t k = src * LEVELS + (size_t)level;
        uint32_t *fill = &w->fill[w->sink_at[v] * w->keys + k];
        SL_ASSERT(*fill < cn->paths[k]);
        cn->path_ids[cn->path_ids_at[k] + (*fill)++] = tag;
        return;
    }
    for (int l = 0, rank = 0; l < LEVELS; l++) {
        uint32_t part = tag;
        if (cn->priority_levels != 0) {
            if (((cn->priority_levels >> l) & 1u) == 0) {
                continue;
            }
            part += (uint32_t)rank++ * cn->path_stride;
        } else if (l != level) {
            continue;
        }
        for (size_t e = 0; e < w->nout[v]; e++) {
            const struct edge *ed = &w->out[v][e];
            walk_paths(w, src, ed->to, part + w->ld->conf->nodes[ed->to].path_inc[ed->input], l);
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Gives every edge its increment and every sink the tags it receives
 * (after check_paths: at most PATHS_MAX per source, level and sink). */
static int number_paths(struct sl__loader *ld, const struct dag *dag)
{
    struct sl_conf_node *nodes = ld->conf->nodes;
    size_t n = dag->n, keys = (n + 1) * LEVELS;
    struct path_walk w = {.ld = ld, .keys = keys};

    w.out = sl__conf_alloc(ld, (n + 1) * sizeof(*w.out));
    w.nout = sl__conf_alloc(ld, (n + 1) * sizeof(*w.nout));
    w.npaths = sl__conf_alloc(ld, (n + 1) * sizeof(*w.npaths));
    w.sink_at = sl__conf_alloc(ld, (n + 1) * sizeof(*w.sink_at));
    if (w.out == NULL || w.nout == NULL || w.npaths == NULL || w.sink_at == NULL) {
        return SL_ENOMEM;
    }
    size_t nsinks = 0;
    for (size_t v = 0; v < n; v++) {
        w.sink_at[v] = nsinks;
        nsinks += nodes[v].kind == SLUICE_KIND_SINK;
    }
    /* A row per sink, not per node: (nodes + 1)^2 rows were 160 MB at
     * 2,000 nodes. */
    w.fill = sl__conf_alloc(ld, (nsinks + 1) * keys * sizeof(*w.fill));
    if (w.fill == NULL) {
        return SL_ENOMEM;
    }
    for (size_t v = 0; v < n; v++) {
        w.out[v] = sl__conf_alloc(ld, (dag->nconsumers[v] + 1) * sizeof(**w.out));
        nodes[v].path_inc = sl__conf_alloc(ld, (nodes[v].ninputs + 1) * sizeof(uint32_t));
        if (w.out[v] == NULL || nodes[v].path_inc == NULL) {
            return SL_ENOMEM;
        }
    }
    for (size_t v = 0; v < n; v++) {
        for (size_t j = 0; j < nodes[v].ninputs; j++) {
            size_t u = dag->up[v][j];
            w.out[u][w.nout[u]++] = (struct edge){v, j};
        }
    }
    for (size_t u = 0; u < n; u++) {
        uint64_t before = 0;
        if (count_paths(&w, u) > PATHS_TAG_MAX) {
            return node_err(ld, u, "node '%s' starts more than %u paths to sinks", nodes[u].name,
                            PATHS_TAG_MAX);
        }
        for (size_t e = 0; e < w.nout[u]; e++) {
            nodes[w.out[u][e].to].path_inc[w.out[u][e].input] = (uint32_t)before;
            before += count_paths(&w, w.out[u][e].to);
        }
    }
    for (size_t v = 0; v < n; v++) {
        uint32_t at = 0;
        if (nodes[v].kind != SLUICE_KIND_SINK || nodes[v].paths == NULL) {
            continue;
        }
        nodes[v].path_ids_at = sl__conf_alloc(ld, keys * sizeof(uint32_t));
        for (size_t k = 0; nodes[v].path_ids_at != NULL && k < keys; k++) {
            nodes[v].path_ids_at[k] = at;
            at += nodes[v].paths[k];
        }
        nodes[v].path_ids = sl__conf_alloc(ld, (at + 1) * sizeof(uint32_t));
        if (nodes[v].path_ids_at == NULL || nodes[v].path_ids == NULL) {
            return SL_ENOMEM;
        }
    }
    for (size_t src = 0; src < n; src++) {
        if (nodes[src].kind == SLUICE_KIND_SOURCE) {
            walk_paths(&w, src, src, 0, 0);
        }
    }
    for (size_t v = 0; v < n; v++) {
        for (size_t k = 0; nodes[v].path_ids != NULL && k < keys; k++) {
            /* The walk and check_paths' count agree, copy for copy. */
            SL_ASSERT(w.fill[w.sink_at[v] * keys + k] == nodes[v].paths[k]);
            qsort(nodes[v].path_ids + nodes[v].path_ids_at[k], nodes[v].paths[k], sizeof(uint32_t),
                  cmp_u32);
        }
    }
    return 0;
}

/* Queues set by hand cost their slots before any batch is queued, outside
 * the budget: refuse settings whose slots alone would take more than an
 * eighth of memory_limit (the plan also shrinks blocks to fit their
 * batches, pipeline.c). Reported at the largest queue. */
static int check_queues(struct sl__loader *ld)
{
    const struct sl_conf *conf = ld->conf;
    uint64_t slots = 0;
    size_t largest = 0;

    for (size_t i = 0; i < conf->nnodes; i++) {
        uint64_t size = 1;
        while (size < (uint64_t)conf->nodes[i].queue) {
            size <<= 1;
        }
        slots += conf->nodes[i].queue > 0 ? size : 0;
        largest = conf->nodes[i].queue > conf->nodes[largest].queue ? i : largest;
    }
    uint64_t bytes = slots * SL_RING_SLOT_BYTES;
    if (conf->nnodes == 0 || bytes <= conf->memory_limit / 8) {
        return 0;
    }
    const struct sl__ynode *at = sl__ymap_find(conf->nodes[largest].yaml, "queue");
    return sl__yerr(ld, at != NULL ? at : ld->keys[largest],
                    "the queue settings hold %llu slots (%.1f MiB before any record), more than "
                    "an eighth of memory_limit (%.1f MiB): lower queue, or raise memory_limit",
                    (unsigned long long)slots, (double)bytes / 1048576.0,
                    (double)conf->memory_limit / 1048576.0);
}

/* Where memory_limit is set, or where it would be: engine.memory_limit
 * at the engine key (the top of the file when there is none). */
static const struct sl__ynode *memory_limit_at(struct sl__loader *ld)
{
    struct sl__ynode *val = sl__ymap_find(ld->engine, "memory_limit");

    if (val != NULL) {
        return val;
    }
    const struct sl__ynode *engine = ld->engine->key != NULL ? ld->engine->key : ld->engine;
    struct sl__ynode *key = sl__ynew(ld, SL__Y_SCALAR, engine->file, engine->line, engine->col);
    val = sl__ynew(ld, SL__Y_SCALAR, engine->file, engine->line, engine->col);
    if (key == NULL || val == NULL) {
        return NULL;
    }
    key->text = "memory_limit";
    key->parent = ld->engine;
    key->key = key;
    val->parent = ld->engine;
    val->key = key;
    return val;
}

/* Nodes that hold memory of their own beside the records in flight (SQLite
 * sinks: connections, page caches, statements, their threads; node.h
 * fixed_bytes) take it out of memory_limit, but the records keep half of
 * it: past that half, SL_FIXED_FREE_BYTES more may come out of the 16 MiB
 * above the limit, and more than that is refused, saying how much they
 * need (80 SQLite sinks at 4 MiB peaked at 33-37 MB before they were
 * counted, against a bound of 20). */
static int check_fixed_memory(struct sl__loader *ld)
{
    const struct sl_conf *conf = ld->conf;
    uint64_t bytes = 0;
    size_t n = 0, first = 0;
    bool one_type = true;

    for (size_t i = 0; i < conf->nnodes; i++) {
        const struct sl_conf_node *cn = &conf->nodes[i];
        uint64_t b = cn->type->fixed_bytes != NULL ? cn->type->fixed_bytes(cn) : 0;
        if (b == 0) {
            continue;
        }
        first = n == 0 ? i : first;
        one_type &= cn->type == conf->nodes[first].type;
        bytes += b;
        n++;
    }
    if (bytes <= SL_FIXED_FREE_BYTES + conf->memory_limit / 2) {
        return 0;
    }
    const struct sl__ynode *at = memory_limit_at(ld);
    if (at == NULL) {
        return SL_ENOMEM;
    }
    const struct sl_conf_node *cn = &conf->nodes[first];
    uint64_t need_mib = (2 * (bytes - SL_FIXED_FREE_BYTES) + (1u << 20) - 1) >> 20;
    return sl__yerr(ld, at,
                    "%zu %s%s hold about %.1f MiB beside the records (connections, caches, "
                    "statements, threads: %.0f KiB each), more than 2 MiB + memory_limit / 2 "
                    "(%.1f MiB): set it to at least %lluMiB, or use fewer (a SQLite file's "
                    "sinks share one connection)",
                    n, one_type ? cn->type->def.name : "", one_type ? " sinks" : "nodes",
                    (double)bytes / 1048576.0, (double)bytes / 1024.0 / (double)n,
                    (double)(SL_FIXED_FREE_BYTES + conf->memory_limit / 2) / 1048576.0,
                    (unsigned long long)need_mib);
}

/* The file a sink writes: its `path` option, whatever its type, or NULL. */
static const char *sink_path(const struct sl_conf_node *n)
{
    return n != NULL && n->kind == SLUICE_KIND_SINK ? sl_conf_node_str(n, "path") : NULL;
}

/* Sinks of different types writing one file: a file sink's lines appended
 * to a SQLite database vanish at its next checkpoint (which truncates the
 * file), and the database may be damaged. Two sinks of one type are the
 * type's own check (SQLite sinks may share a file; file sinks may not). */
static int check_shared_files(struct sl__loader *ld)
{
    const struct sl_conf *conf = ld->conf;
    size_t n = conf->nnodes + 1;

    for (size_t i = 0; i < n; i++) {
        const struct sl_conf_node *a = i < conf->nnodes ? &conf->nodes[i] : conf->dead_letter;
        const char *pa = sink_path(a);
        for (size_t j = 0; pa != NULL && j < i; j++) {
            const struct sl_conf_node *b = &conf->nodes[j];
            const char *pb = sink_path(b);
            if (pb != NULL && b->type != a->type && sl_same_path(pa, pb)) {
                return sl_conf_node_err(a, "path", ld->err,
                                        "the %s sink '%s' writes the same file (%s): a %s sink "
                                        "and a %s sink cannot share a file; give each its own",
                                        b->type->def.name, b->name, pb, a->type->def.name,
                                        b->type->def.name);
            }
        }
    }
    return 0;
}

/* A sink writing a file that a file source's glob matches would read its
 * own output on the next run (and a SQLite sink on a source's input file
 * fails at run: "file is not a database"): refused by validate. */
static int check_sink_reads_itself(struct sl__loader *ld)
{
    const struct sl_conf *conf = ld->conf;
    char glob_abs[PATH_MAX], sink_abs[PATH_MAX];

    for (size_t i = 0; i < conf->nnodes; i++) {
        const struct sl_conf_node *src = &conf->nodes[i];
        if (src->kind != SLUICE_KIND_SOURCE || strcmp(src->type->def.name, "file") != 0) {
            continue;
        }
        const char *glob = sl_conf_node_str(src, "path");
        for (size_t j = 0; glob != NULL && j <= conf->nnodes; j++) {
            const struct sl_conf_node *sink =
                j < conf->nnodes ? &conf->nodes[j] : conf->dead_letter;
            const char *path = sink_path(sink);
            if (path != NULL && sl_path_lexical_abs(glob, glob_abs, sizeof(glob_abs)) &&
                sl_path_lexical_abs(path, sink_abs, sizeof(sink_abs)) &&
                fnmatch(glob_abs, sink_abs, FNM_PATHNAME) == 0) {
                return sl_conf_node_err(sink, "path", ld->err,
                                        "'%s' is a file that source '%s' reads (path '%s'): a "
                                        "sink must not write its own input",
                                        path, src->name, glob);
            }
        }
    }
    return 0;
}

/* ==== Decisions that follow from the record ==== */

/* A record's level must follow from the record and the config: positions
 * are kept per level, and after a crash a record that came back on another
 * level would be trimmed by that level's position, unwritten (or written
 * twice by the other). So a priority expression may read neither now(),
 * nor @file (the name the file had when read: a rotation renames it, and
 * the file resumes under the new name), nor a field whose value may come
 * from them: an unstable field. Which fields are unstable is worked out
 * node by node along the inputs: a map's `set` makes a field unstable when
 * its expression calls now(), reads @file or reads an unstable field (one
 * from before, or from an earlier entry of the same `set`), and stable
 * again when it does none of these; `rename` moves the mark, `drop` and
 * `keep` remove fields; a fan-in takes the union. The other metadata is the
 * record's own (@line, @offset, the Kafka ones), and @priority is the
 * level the record has so far, which ints decide before any expression.
 *
 * A route's conditions decide the same way which position a record meets:
 * its outputs lead to other sinks, or to other levels of one sink, each
 * with its own position over the stream. A record that took route a and
 * was committed there, read again and sent down b, whose position is
 * behind, is written twice (once by each); one sent down b and not
 * committed, read again and sent down a, whose position is past it, is
 * lost. So the conditions are held to the same rule, by the same analysis,
 * unless every record the route sends by them can only meet one position:
 * one sink, and no priority set on the way (route_meets_positions). Then
 * a replay changes the record's path, not its position: a sink writes the
 * copies of a sequence from all its paths in one transaction, trimmed by
 * the one position.
 *
 * A filter's `where` is not held to it. A filter decides whether a record
 * goes on, not where: at each position after it, a record read again is
 * either behind the position (trimmed: its first decision stands) or not
 * (decided there for the first time), so each sink holds every record
 * once or not at all, and only records the rule drops are missing: what
 * some run of the rule gives, as with any rule by the clock. What a replay
 * can change is which records in the replayed range the rule drops, and,
 * where the filter's output fans out to several positions, one that had
 * not committed a record may then decide it otherwise than one that had:
 * the two disagree about a record at the rule's edge, without losing or
 * doubling one the rule keeps. A route's outputs are one decision's
 * alternatives (`_unmatched` is "no other"), so the same disagreement
 * there puts a record in two or in none. */

enum cause { CAUSE_NOW, CAUSE_FILE };

/* A field whose value may differ when its record is read again. */
struct unstable {
    const char *name;         /* the field, top level (the conf's string) */
    size_t node;              /* the node that gave it this name or this value */
    const char *from;         /* the field it was set or renamed from there; NULL: the cause */
    bool renamed;             /* from: by rename, not by set */
    size_t origin;            /* the node whose set calls now() or reads @file */
    const char *origin_field; /* the field that set gives */
    enum cause cause;
};

/* Names (len bytes each, not NUL-terminated). */
struct names {
    const char **s;
    size_t *len;
    size_t n;
};

/* Per node: the unstable fields of what it emits (its own map applied). */
struct taint {
    struct names rel;    /* the only names followed: those a decision may read */
    struct unstable **f; /* per node: its fields (shared with its input when the same) */
    size_t *n;
    size_t *any;         /* per node: NONE, or a stage up to it that may set any field */
    unsigned char *done; /* per node: f, n and any worked out */
};

/* Stage types that pass every field on as it came (map is worked out; any
 * other stage type may set fields the loader cannot see). */
static bool passes_fields(const char *type)
{
    static const char *const types[] = {"filter", "route", "throttle", "delay", NULL};

    for (size_t i = 0; types[i] != NULL; i++) {
        if (strcmp(type, types[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* The value of cn's option name, of type type, in its conf struct, or NULL. */
static const void *
opt_value(const struct sl_conf_node *cn, const char *name, enum sluice_opt_type type)
{
    for (const struct sluice_option *o = cn->conf != NULL ? cn->type->def.options : NULL;
         o != NULL && o->name != NULL; o++) {
        if (o->type == type && strcmp(o->name, name) == 0) {
            return (const char *)cn->conf + o->offset;
        }
    }
    return NULL;
}

/* The conditions of cn when it is a route (its option `routes`), or NULL. */
static const struct sluice_map *route_conditions(const struct sl_conf_node *cn)
{
    if (cn->kind != SLUICE_KIND_TRANSFORM || strcmp(cn->type->def.name, "route") != 0) {
        return NULL;
    }
    return opt_value(cn, "routes", SLUICE_OPT_EXPR_MAP);
}

static bool names_has(const struct names *r, const char *s, size_t len)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->len[i] == len && memcmp(r->s[i], s, len) == 0) {
            return true;
        }
    }
    return false;
}

/* Adds the fields e reads to r (room for them is the caller's), once each. */
static void names_add_reads(struct names *r, const struct sl_expr *e)
{
    const char *name;
    size_t len, pos = 0;

    while (sl_expr_next_field(e, &pos, &name, &len)) {
        if (!names_has(r, name, len)) {
            r->s[r->n] = name;
            r->len[r->n++] = len;
        }
    }
}

static size_t count_reads(const struct sl_expr *e)
{
    const char *name;
    size_t len, pos = 0, n = 0;

    while (sl_expr_next_field(e, &pos, &name, &len)) {
        n++;
    }
    return n;
}

/* The names whose value may reach a priority expression or a route
 * condition, into r: what those read and, until none is added, what a
 * `set` entry of such a name reads and the old name of a rename to one, in
 * any map (a superset). Only these are followed, so that an unstable field
 * no decision reads costs nothing: a map per node setting a now() field of
 * its own would otherwise copy a growing list at each one (230 MB for
 * 2,000 nodes). Returns 0 or SL_ENOMEM. */
static int relevant_names(struct sl__loader *ld, struct names *r)
{
    const struct sl_conf *conf = ld->conf;
    size_t cap = 1;

    /* Room for every field a priority, route or set expression reads, and
     * every old name of a rename. */
    for (size_t v = 0; v < conf->nnodes; v++) {
        const struct sl_conf_node *cn = &conf->nodes[v];
        const struct sluice_map *set = opt_value(cn, "set", SLUICE_OPT_EXPR_MAP);
        const struct sluice_map *ren = opt_value(cn, "rename", SLUICE_OPT_MAP);
        const struct sluice_map *routes = route_conditions(cn);

        cap += cn->priority_expr != NULL ? count_reads(cn->priority_expr) : 0;
        for (size_t i = 0; set != NULL && i < set->n; i++) {
            cap += count_reads((const struct sl_expr *)set->exprs[i]);
        }
        for (size_t i = 0; routes != NULL && i < routes->n; i++) {
            cap += count_reads((const struct sl_expr *)routes->exprs[i]);
        }
        cap += ren != NULL ? ren->n : 0;
    }
    r->s = sl__conf_alloc(ld, cap * sizeof(*r->s));
    r->len = sl__conf_alloc(ld, cap * sizeof(*r->len));
    if (r->s == NULL || r->len == NULL) {
        return SL_ENOMEM;
    }
    for (size_t v = 0; v < conf->nnodes; v++) {
        const struct sluice_map *routes = route_conditions(&conf->nodes[v]);

        if (conf->nodes[v].priority_expr != NULL) {
            names_add_reads(r, conf->nodes[v].priority_expr);
        }
        for (size_t i = 0; routes != NULL && i < routes->n; i++) {
            names_add_reads(r, (const struct sl_expr *)routes->exprs[i]);
        }
    }
    for (size_t k = 0; k < r->n; k++) { /* r->n grows as names are found */
        for (size_t v = 0; v < conf->nnodes; v++) {
            const struct sluice_map *set = opt_value(&conf->nodes[v], "set", SLUICE_OPT_EXPR_MAP);
            const struct sluice_map *ren = opt_value(&conf->nodes[v], "rename", SLUICE_OPT_MAP);
            for (size_t i = 0; set != NULL && i < set->n; i++) {
                if (strlen(set->keys[i]) == r->len[k] &&
                    memcmp(set->keys[i], r->s[k], r->len[k]) == 0) {
                    names_add_reads(r, (const struct sl_expr *)set->exprs[i]);
                }
            }
            for (size_t i = 0; ren != NULL && i < ren->n; i++) {
                const char *old = ren->keys[i], *to = ren->values[i];
                if (strlen(to) == r->len[k] && memcmp(to, r->s[k], r->len[k]) == 0 &&
                    !names_has(r, old, strlen(old))) {
                    r->s[r->n] = old;
                    r->len[r->n++] = strlen(old);
                }
            }
        }
    }
    return 0;
}

static struct unstable *find_unstable(struct unstable *f, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(f[i].name) == len && memcmp(f[i].name, name, len) == 0) {
            return &f[i];
        }
    }
    return NULL;
}

/* The first unstable field among f[0 .. n) that e reads, or NULL. */
static const struct unstable *reads_unstable(const struct sl_expr *e, struct unstable *f, size_t n)
{
    const char *name;
    size_t len, pos = 0;

    while (sl_expr_next_field(e, &pos, &name, &len)) {
        const struct unstable *u = find_unstable(f, n, name, len);
        if (u != NULL) {
            return u;
        }
    }
    return NULL;
}

static void forget_unstable(struct unstable *f, size_t *n, const char *name)
{
    struct unstable *u = find_unstable(f, *n, name, strlen(name));

    if (u != NULL) {
        *u = f[--*n];
    }
}

/* Adds u (a copy: u may point into f), or replaces the entry of its name. */
static void put_unstable(struct unstable *f, size_t *n, struct unstable u)
{
    struct unstable *old = find_unstable(f, *n, u.name, strlen(u.name));

    if (old != NULL) {
        *old = u;
    } else {
        f[(*n)++] = u;
    }
}

/* Applies map node v's set, rename, drop and keep to the unstable fields
 * f[0 .. *n), in map.c's order (set entries in file order, each seeing the
 * ones before). f has room for one more per set and rename entry. */
static void map_taint(
    const struct sl_conf *conf, const struct names *rel, size_t v, struct unstable *f, size_t *n)
{
    const struct sl_conf_node *cn = &conf->nodes[v];
    const struct sluice_map *set = opt_value(cn, "set", SLUICE_OPT_EXPR_MAP);
    const struct sluice_map *rename = opt_value(cn, "rename", SLUICE_OPT_MAP);
    const struct sluice_list *drop = opt_value(cn, "drop", SLUICE_OPT_LIST);
    const struct sluice_list *keep = opt_value(cn, "keep", SLUICE_OPT_LIST);

    for (size_t i = 0; set != NULL && i < set->n; i++) {
        const struct sl_expr *e = (const struct sl_expr *)set->exprs[i];
        struct unstable u = {.name = set->keys[i],
                             .node = v,
                             .origin = v,
                             .origin_field = set->keys[i],
                             .cause = CAUSE_NOW};
        bool now = sl_expr_calls_now(e);

        if (!names_has(rel, u.name, strlen(u.name))) {
            continue; /* no decision reads it, nor anything set from it */
        }
        if (!now && sl_expr_reads_meta(e, "file")) {
            u.cause = CAUSE_FILE;
        } else if (!now) {
            const struct unstable *up = reads_unstable(e, f, *n);
            if (up == NULL) {
                /* Whatever it held, the field is set from the record now. */
                forget_unstable(f, n, set->keys[i]);
                continue;
            }
            u.from = up->name;
            u.origin = up->origin;
            u.origin_field = up->origin_field;
            u.cause = up->cause;
        }
        put_unstable(f, n, u);
    }
    for (size_t i = 0; rename != NULL && i < rename->n; i++) {
        const char *old = rename->keys[i], *to = rename->values[i];
        struct unstable *up = find_unstable(f, *n, old, strlen(old));

        /* A stable old name leaves `to` as it was when the record lacks it. */
        if (up == NULL || strcmp(old, to) == 0) {
            continue;
        }
        struct unstable u = *up;
        u.name = to;
        u.node = v;
        u.from = up->name;
        u.renamed = true;
        forget_unstable(f, n, old);
        if (names_has(rel, to, strlen(to))) {
            put_unstable(f, n, u);
        }
    }
    for (size_t i = 0; drop != NULL && i < drop->n; i++) {
        forget_unstable(f, n, drop->items[i]);
    }
    for (size_t i = *n; keep != NULL && keep->n > 0 && i-- > 0;) {
        bool kept = false;
        for (size_t k = 0; k < keep->n && !kept; k++) {
            kept = strcmp(keep->items[k], f[i].name) == 0;
        }
        if (!kept) {
            f[i] = f[--*n];
        }
    }
}

/* Works out t's entries for node v (and the nodes before it) once. Returns
 * 0 or SL_ENOMEM. */
static int taint_of(struct sl__loader *ld, const struct dag *dag, struct taint *t, size_t v)
{
    const struct sl_conf_node *cn = &ld->conf->nodes[v];
    bool map = cn->kind == SLUICE_KIND_TRANSFORM && strcmp(cn->type->def.name, "map") == 0;
    size_t cap = 0, n = 0;

    if (t->done[v]) {
        return 0;
    }
    t->any[v] = NONE;
    for (size_t j = 0; j < cn->ninputs; j++) {
        size_t u = dag->up[v][j];
        int rc = taint_of(ld, dag, t, u);

        if (rc != 0) {
            return rc;
        }
        cap += t->n[u];
        t->any[v] = t->any[v] != NONE ? t->any[v] : t->any[u];
    }
    if (cn->kind == SLUICE_KIND_TRANSFORM && !map && !passes_fields(cn->type->def.name) &&
        t->any[v] == NONE) {
        t->any[v] = v;
    }
    t->done[v] = 1;
    if (!map && cn->ninputs == 1) {
        t->f[v] = t->f[dag->up[v][0]];
        t->n[v] = t->n[dag->up[v][0]];
        return 0;
    }
    if (map) {
        const struct sluice_map *set = opt_value(cn, "set", SLUICE_OPT_EXPR_MAP);
        const struct sluice_map *rename = opt_value(cn, "rename", SLUICE_OPT_MAP);
        cap += (set != NULL ? set->n : 0) + (rename != NULL ? rename->n : 0);
    }
    struct unstable *f = sl__conf_alloc(ld, (cap + 1) * sizeof(*f));
    if (f == NULL) {
        return SL_ENOMEM;
    }
    /* A fan-in takes the union (each input's fields are distinct). */
    for (size_t j = 0; j < cn->ninputs; j++) {
        size_t u = dag->up[v][j];
        for (size_t k = 0; k < t->n[u]; k++) {
            const char *name = t->f[u][k].name;
            if (j == 0 || find_unstable(f, n, name, strlen(name)) == NULL) {
                f[n++] = t->f[u][k];
            }
        }
    }
    if (map) {
        map_taint(ld->conf, &t->rel, v, f, &n);
    }
    t->f[v] = f;
    t->n[v] = n;
    return 0;
}

/* What a decision is, and what a record read again after a crash could do
 * when the decision does not follow from the record: the analysis has two
 * users. */
struct decision {
    const char *what;  /* the subject of its messages */
    const char *could; /* "a record read again after a crash could ..." */
};

static const struct decision priority_decision = {
    "a priority",
    "take another level, whose position would skip it",
};
static const struct decision route_decision = {
    "a route",
    "take another route, whose position may skip it or write it twice",
};

/* Refuses decision d at `at` (on records that have u unstable) for reading
 * u. Returns SL_ECONFIG. */
static int unstable_err(struct sl__loader *ld,
                        const struct decision *d,
                        const struct sl__ynode *at,
                        const struct unstable *u)
{
    const struct sl_conf_node *nodes = ld->conf->nodes;
    const char *cause = u->cause == CAUSE_NOW ? "with now()" : "from @file";
    const char *rotation = u->cause == CAUSE_FILE ? "a rotation changes @file: " : "";
    char via[160] = "";

    if (u->from != NULL) {
        int w =
            snprintf(via, sizeof(via), "%s from '%.40s'", u->renamed ? "renames" : "sets", u->from);
        if (w > 0 && (size_t)w < sizeof(via) && strcmp(u->from, u->origin_field) != 0) {
            snprintf(via + w, sizeof(via) - (size_t)w, ", which comes from '%.40s'",
                     u->origin_field);
        }
        return sl__yerr(ld, at,
                        "%s must follow from the record: it reads '%.40s', which node '%.40s' "
                        "%s, which node '%.40s' sets %s (%sa record read again after a crash "
                        "could %s)",
                        d->what, u->name, nodes[u->node].name, via, nodes[u->origin].name, cause,
                        rotation, d->could);
    }
    return sl__yerr(ld, at,
                    "%s must follow from the record: it reads '%.40s', which node '%.40s' sets "
                    "%s (%sa record read again after a crash could %s)",
                    d->what, u->name, nodes[u->node].name, cause, rotation, d->could);
}

/* Refuses expression e of decision d, at `at`, when it calls now() or
 * reads @file itself. Returns 0 or SL_ECONFIG. */
static int check_clock_and_file(struct sl__loader *ld,
                                const struct decision *d,
                                const struct sl__ynode *at,
                                const struct sl_expr *e)
{
    if (sl_expr_calls_now(e)) {
        return sl__yerr(ld, at,
                        "%s must follow from the record: with now() a record read again after a "
                        "crash could %s",
                        d->what, d->could);
    }
    if (sl_expr_reads_meta(e, "file")) {
        return sl__yerr(ld, at,
                        "%s must follow from the record: @file changes when the file is rotated, "
                        "and a record read again after a crash could %s",
                        d->what, d->could);
    }
    return 0;
}

/* Refuses expression e of decision d, at `at`, evaluated on what node v
 * emits (a route emits what it receives), when it reads an unstable field,
 * or any field after a stage that may set any. Returns 0, SL_ECONFIG or
 * SL_ENOMEM. */
static int check_fields(struct sl__loader *ld,
                        const struct dag *dag,
                        struct taint *t,
                        const struct decision *d,
                        const struct sl__ynode *at,
                        const struct sl_expr *e,
                        size_t v)
{
    const char *name;
    size_t len, pos = 0;
    int rc = taint_of(ld, dag, t, v);

    if (rc != 0) {
        return rc;
    }
    const struct unstable *u = reads_unstable(e, t->f[v], t->n[v]);
    if (u != NULL) {
        return unstable_err(ld, d, at, u);
    }
    if (t->any[v] != NONE && sl_expr_next_field(e, &pos, &name, &len)) {
        const struct sl_conf_node *by = &ld->conf->nodes[t->any[v]];
        return sl__yerr(ld, at,
                        "%s must follow from the record: it reads '%.*s', and node '%s'%s, of "
                        "type %s, may set any field from anything: the loader cannot tell that "
                        "what it sets follows from the record",
                        d->what, (int)(len > 40 ? 40 : len), name, by->name,
                        t->any[v] != v ? " before it" : "", by->type->def.name);
    }
    return 0;
}

/* Marks in seen the nodes upstream of v (v excluded). */
static void
mark_upstream(const struct sl__loader *ld, const struct dag *dag, size_t v, unsigned char *seen)
{
    for (size_t j = 0; j < ld->conf->nodes[v].ninputs; j++) {
        size_t u = dag->up[v][j];
        if (!seen[u]) {
            seen[u] = 1;
            mark_upstream(ld, dag, u, seen);
        }
    }
}

/* Refuses a priority expression of node v that may give a record read
 * again another level (see the section's comment), or that splits parts a
 * node before it split. Returns 0, SL_ECONFIG or SL_ENOMEM. */
static int check_priority_of(
    struct sl__loader *ld, const struct dag *dag, struct taint *t, unsigned char *seen, size_t v)
{
    const struct sl_conf_node *cn = &ld->conf->nodes[v];
    const struct sl__ynode *at = cn->yaml != NULL ? sl__ymap_find(cn->yaml, "priority") : NULL;
    int rc;

    if (cn->priority_expr == NULL || at == NULL) {
        return 0;
    }
    rc = check_clock_and_file(ld, &priority_decision, at, cn->priority_expr);
    if (rc != 0) {
        return rc;
    }
    memset(seen, 0, dag->n);
    mark_upstream(ld, dag, v, seen);
    for (size_t u = 0; u < dag->n; u++) {
        /* Each part of the first split split again: up to 100 batches
         * for one, nearly all empty, and empty parts take no queue
         * room, so nothing held them back (28 MiB in flight for a
         * 16 MiB limit, 300x slower). */
        if (seen[u] && ld->conf->nodes[u].priority_expr != NULL) {
            return sl__yerr(ld, at,
                            "node '%s' before it already splits batches by a priority "
                            "expression, and splitting each part again is not supported: "
                            "give one of them an expression that decides both (nested if())",
                            ld->conf->nodes[u].name);
        }
    }
    return check_fields(ld, dag, t, &priority_decision, at, cn->priority_expr, v);
}

/* Whether node x receives records that route v sends by a condition
 * (through `v.<route>` or `v._unmatched`: reading v itself gives every
 * record, whatever the conditions say), memoised in below[x]: 0 not known
 * yet, 1 no, 2 yes. */
static bool below_conditions(
    const struct sl__loader *ld, const struct dag *dag, size_t v, size_t x, unsigned char *below)
{
    const struct sl_conf_node *cn = &ld->conf->nodes[x];

    if (below[x] == 0) {
        below[x] = 1;
        for (size_t j = 0; j < cn->ninputs && below[x] == 1; j++) {
            size_t u = dag->up[x][j];
            bool yes =
                u == v ? cn->inputs[j].output != NULL : below_conditions(ld, dag, v, u, below);
            below[x] = yes ? 2 : 1;
        }
    }
    return below[x] == 2;
}

/* Whether the records route v sends by its conditions may meet more than
 * one position: they reach two sinks, or a node that sets a priority
 * (another level is another position; refused even when it would give the
 * level they had). below has a byte per node. */
static bool route_meets_positions(const struct sl__loader *ld,
                                  const struct dag *dag,
                                  size_t v,
                                  unsigned char *below)
{
    size_t sink = NONE;

    memset(below, 0, dag->n);
    for (size_t x = 0; x < dag->n; x++) {
        const struct sl_conf_node *cn = &ld->conf->nodes[x];

        if (!below_conditions(ld, dag, v, x, below)) {
            continue;
        }
        if (cn->kind != SLUICE_KIND_SINK && cn->priority_levels != 0) {
            return true;
        }
        if (cn->kind == SLUICE_KIND_SINK && sink != NONE) {
            return true;
        }
        sink = cn->kind == SLUICE_KIND_SINK ? x : sink;
    }
    return false;
}

/* Refuses a condition of route v that may send a record read again down
 * another route, to another position (see the section's comment). Returns
 * 0, SL_ECONFIG or SL_ENOMEM. */
static int check_route_of(
    struct sl__loader *ld, const struct dag *dag, struct taint *t, unsigned char *below, size_t v)
{
    const struct sl_conf_node *cn = &ld->conf->nodes[v];
    const struct sluice_map *routes = route_conditions(cn);
    const struct sl__ynode *ys = cn->yaml != NULL ? sl__ymap_find(cn->yaml, "routes") : NULL;

    if (routes == NULL || !route_meets_positions(ld, dag, v, below)) {
        return 0;
    }
    for (size_t i = 0; i < routes->n; i++) {
        const struct sl_expr *e = (const struct sl_expr *)routes->exprs[i];
        const struct sl__ynode *at = sl__ymap_find(ys, routes->keys[i]);
        int rc;

        /* Where the file has it; else the node (the loader built it from
         * there, so this is a fallback that should not be needed). */
        at = at != NULL ? at : ys != NULL ? ys : ld->keys[v];
        rc = check_clock_and_file(ld, &route_decision, at, e);
        if (rc == 0) {
            rc = check_fields(ld, dag, t, &route_decision, at, e, v);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* Refuses the priority expressions and route conditions that may not
 * follow from the record, over one analysis of the unstable fields.
 * Returns 0, SL_ECONFIG or SL_ENOMEM. */
static int check_decisions(struct sl__loader *ld, const struct dag *dag)
{
    unsigned char *seen = sl__conf_alloc(ld, dag->n + 1);
    struct taint t = {
        .f = sl__conf_alloc(ld, (dag->n + 1) * sizeof(*t.f)),
        .n = sl__conf_alloc(ld, (dag->n + 1) * sizeof(*t.n)),
        .any = sl__conf_alloc(ld, (dag->n + 1) * sizeof(*t.any)),
        .done = sl__conf_alloc(ld, dag->n + 1),
    };

    if (seen == NULL || t.f == NULL || t.n == NULL || t.any == NULL || t.done == NULL ||
        relevant_names(ld, &t.rel) != 0) {
        return SL_ENOMEM;
    }
    for (size_t v = 0; v < dag->n; v++) {
        int rc = check_priority_of(ld, dag, &t, seen, v);

        if (rc == 0) {
            rc = check_route_of(ld, dag, &t, seen, v);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

int sl__conf_dag(struct sl__loader *ld, const struct sl__ynode *root)
{
    struct dag dag = {0};
    int rc = check_counts(ld, root);

    if (rc == 0) {
        rc = resolve(ld, &dag);
    }
    if (rc == 0) {
        rc = check_cycles(ld, &dag);
    }
    if (rc == 0) {
        rc = check_reach(ld, &dag);
    }
    if (rc == 0) {
        rc = check_paths(ld, &dag);
    }
    if (rc == 0) {
        rc = check_decisions(ld, &dag);
    }
    if (rc == 0) {
        rc = number_paths(ld, &dag);
    }
    if (rc == 0) {
        rc = check_queues(ld);
    }
    if (rc == 0) {
        rc = check_shared_files(ld);
    }
    if (rc == 0) {
        rc = check_sink_reads_itself(ld);
    }
    if (rc == 0) {
        rc = check_fixed_memory(ld);
    }
    return rc;
}
