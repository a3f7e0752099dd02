/* SPDX-License-Identifier: MIT */
/* Building the running pipeline from a checked config: nodes, rings, edges,
 * the memory plan; and tearing it down. Thread:
 * main only. */
#include "mem.h"
#include "plugin.h"
#include "priority.h"
#include "runtime.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Raw blocks waiting for decode per source: enough to keep every worker busy. */
#define SOURCE_RING_MIN 2

static struct sl_node *find_node(struct sl_pipeline *pl, const char *name)
{
    for (size_t i = 0; i < pl->nnodes; i++) {
        if (strcmp(pl->nodes[i].name, name) == 0) {
            return &pl->nodes[i];
        }
    }
    return NULL;
}

static int add_consumer(struct sl_out *out, struct sl_node *consumer, uint32_t inc)
{
    struct sl_node **to = sl_realloc(out->to, (out->n + 1) * sizeof(*to));
    if (to != NULL) {
        out->to = to;
    }
    uint32_t *incs = to != NULL ? sl_realloc(out->inc, (out->n + 1) * sizeof(*incs)) : NULL;
    if (incs == NULL) {
        return SL_ENOMEM;
    }
    out->inc = incs;
    to[out->n] = consumer;
    incs[out->n++] = inc;
    return 0;
}

static int add_producer(struct sl_node *node, struct sl_node *producer)
{
    struct sl_node **ups = sl_realloc(node->ups, (node->nups + 1) * sizeof(*ups));

    if (ups == NULL) {
        return SL_ENOMEM;
    }
    ups[node->nups++] = producer;
    node->ups = ups;
    atomic_fetch_add(&node->ups_open, 1);
    return 0;
}

static int init_outputs(struct sl_node *node)
{
    const char *names[64];
    size_t extra = 0;

    if (node->type->outputs != NULL) {
        extra = node->type->outputs(node->cn->conf, names, 64);
    }
    node->nouts = 1 + extra;
    node->outs = sl_calloc(node->nouts, sizeof(*node->outs));
    if (node->outs == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < extra; i++) {
        node->outs[1 + i].name = names[i];
    }
    return 0;
}

static size_t find_output(const struct sl_node *node, const char *name)
{
    if (name == NULL) {
        return 0;
    }
    for (size_t i = 1; i < node->nouts; i++) {
        if (strcmp(node->outs[i].name, name) == 0) {
            return i;
        }
    }
    return SIZE_MAX;
}

static int init_node(struct sl_pipeline *pl,
                     struct sl_node *node,
                     const struct sl_conf_node *cn,
                     uint32_t index,
                     int threads)
{
    node->pl = pl;
    node->cn = cn;
    node->type = cn->type;
    node->name = cn->name;
    node->index = index;
    node->paths = cn->paths;
    node->window.flow = &pl->flow;
    atomic_init(&node->window.live, 0);
    atomic_init(&node->window.growth_x16, 0);
    /* One part per level a priority expression may give (conf_dag.c). */
    node->nparts =
        cn->priority_expr != NULL ? (uint32_t)__builtin_popcount(cn->priority_levels) : 1;
    node->max_tasks = (uint32_t)(cn->workers > 0 ? cn->workers : cn->workers_max);
    uint32_t cap = (uint32_t)cn->queue; /* 0: plan_memory sizes it */
    if (cn->kind == SLUICE_KIND_SOURCE) {
        /* Decoding is stateless: as many decode tasks as threads. */
        node->max_tasks = (uint32_t)threads;
        cap = cap != 0 && cap < SOURCE_RING_MIN ? SOURCE_RING_MIN : cap;
        atomic_init(&node->ups_open, 1); /* its reading thread */
    } else if (cn->kind == SLUICE_KIND_SINK) {
        node->max_tasks = 1; /* a sink writes in order, one batch at a time */
    }
    /* Writes that wait on I/O and sleep between retries: never on a CPU
     * worker. */
    node->blocking = (cn->type->def.flags & SLUICE_STAGE_BLOCKING) != 0 ||
                     (cn->type->blocking != NULL && cn->type->blocking(cn->conf));
    if (node->max_tasks > 64) {
        node->max_tasks = 64;
    }
    node->ring_cap = cap;
    node->tasks = sl_calloc(node->max_tasks, sizeof(*node->tasks));
    if (node->tasks == NULL) {
        return SL_ENOMEM;
    }
    atomic_init(&node->workers, node->max_tasks);
    if (cn->workers == 0 && cn->kind == SLUICE_KIND_TRANSFORM) {
        node->tuner = sl_malloc(sizeof(*node->tuner));
        if (node->tuner == NULL) {
            return SL_ENOMEM;
        }
        /* A CPU stage's tasks run on the `threads` workers: more at once
         * than those only queue. */
        bool cpu = !node->blocking;
        uint32_t max =
            cpu && (uint32_t)threads < node->max_tasks ? (uint32_t)threads : node->max_tasks;
        max = max < (uint32_t)cn->workers_min ? (uint32_t)cn->workers_min : max;
        sl_tuner_init(node->tuner, cpu ? SL_TUNE_CPU : SL_TUNE_CALLS, (uint32_t)cn->workers_min,
                      max, SL_TUNE_INTERVAL_NS);
        atomic_init(&node->workers, node->tuner->workers);
    }
    atomic_init(&node->workers_peak, atomic_load(&node->workers));
    node->when_full = cn->when_full;
    pthread_mutex_init(&node->shells_lock, NULL);
    node->shells_tail = &node->shells;
    atomic_init(&node->nshells, 0);
    for (uint32_t i = 0; i < node->max_tasks; i++) {
        node->tasks[i].node = node;
        node->tasks[i].slot = i;
        node->tasks[i].task.fn = sl__node_task_run;
        atomic_init(&node->tasks[i].busy_since_ns, 0);
    }
    atomic_init(&node->free_slots, node->max_tasks == 64
                                       ? ~(uint_fast64_t)0
                                       : (((uint_fast64_t)1 << node->max_tasks) - 1));
    return init_outputs(node);
}

/* ==== Memory plan ====
 *
 * memory_limit bounds every batch in flight: the sources wait for the budget
 * (flow.c) and every allocation of a batch is charged as it is made
 * (batch.c). What a source admits still grows afterwards (decoding, fan-out
 * copies, route outputs), and that growth is bounded by the rings: each
 * holds a few batches. So the rings whose `queue` is not set are sized from
 * the budget and the number of rings, and the sources keep a reserve free
 * for the decoding in progress. Libraries' buffers (SQLite's page cache) are
 * set aside from the budget by their nodes at open. */

/* Blocks go below BLOCK_MIN, down to BLOCK_FLOOR, only when hand-set
 * queues, or one family of a wide fan-out's copies, would hold more than
 * the budget. */
#define BLOCK_MAX   (256 * 1024)
#define BLOCK_MIN   (16 * 1024)
#define BLOCK_FLOOR (2 * 1024)
/* A decoded batch is about 4x its block (records, fields: JSON orders of
 * 170 bytes and 8 fields); CSV rows are shorter for as many fields, about
 * 8x (1M orders, 2 paths into one sink at 16 MiB: 37 MB RSS with 4x, 29 MB
 * with 8x). */
#define DECODED_FACTOR     4
#define DECODED_FACTOR_CSV 8
#define QUEUE_MAX_AUTO     16
/* Fan-out copies (plan_windows): a source's batches alive at once. */
#define WINDOW_MIN        2
#define WINDOW_MAX        64
#define WINDOW_COPIES_MAX (1u << 20)
#define COPY_FACTOR       2

static uint32_t clamp_u32(uint64_t v, uint32_t lo, uint32_t hi)
{
    return v < lo ? lo : v > hi ? hi : (uint32_t)v;
}

uint32_t sl_sink_copies(const struct sl_node *s, size_t src)
{
    uint32_t most = 0;

    for (size_t l = 0; s->paths != NULL && l < SL_PRIORITY_LEVELS; l++) {
        uint32_t c = s->paths[src * SL_PRIORITY_LEVELS + l];
        most = c > most ? c : most;
    }
    return most;
}

/* The most paths from one source to one sink: a sink waits for every
 * path's copy of a batch, so that many copies are in flight together.
 * unwindowed: only from sources without a window (whose batches bring a
 * credit for their copies instead, see plan_windows). */
static uint32_t max_paths(const struct sl_pipeline *pl, bool unwindowed)
{
    uint32_t most = 1;

    for (size_t s = 0; s < pl->nnodes; s++) {
        for (size_t i = 0; i < pl->nnodes; i++) {
            uint32_t c =
                unwindowed && pl->nodes[i].window.max != 0 ? 1 : sl_sink_copies(&pl->nodes[s], i);
            most = c > most ? c : most;
        }
    }
    return most;
}

/* Copies of one batch of source src in flight together: one per path to
 * every sink (a fan-out to ten sinks makes ten). */
static uint64_t source_copies(const struct sl_pipeline *pl, size_t src)
{
    uint64_t copies = 0;

    for (size_t s = 0; s < pl->nnodes; s++) {
        copies += sl_sink_copies(&pl->nodes[s], src);
    }
    return copies;
}

/* The most batches the rings on one path from node to a sink hold (node's
 * own ring included, a source's raw ring not). memo: per node, 0 = not
 * known yet. */
static uint64_t path_slots(const struct sl_node *node, uint64_t *memo)
{
    if (memo[node->index] != 0) {
        return memo[node->index] - 1;
    }
    uint64_t most = 0;
    for (size_t o = 0; o < node->nouts; o++) {
        for (size_t c = 0; c < node->outs[o].n; c++) {
            uint64_t v = path_slots(node->outs[o].to[c], memo);
            most = v > most ? v : most;
        }
    }
    most += node->cn->kind != SLUICE_KIND_SOURCE ? node->ring_cap : 0;
    memo[node->index] = most + 1;
    return most;
}

/* Decoded batches the DAG may hold at once when `queue` is set by hand.
 * While the rings of one path hold a source's batches (a slow sink behind
 * long queues), the copies of the same batches that took the other paths
 * wait at the sinks for them (order restoration): per source, its copies
 * times its longest path, plus one batch per thread being worked on; at
 * least every ring full. (Automatic queues share half the budget among all
 * rings, which bounds the longest path; a route's copies hold only the
 * records of their route, so counting them as full copies there would
 * only make blocks smaller than they need to be.) */
static uint64_t batches_held(const struct sl_pipeline *pl, int threads, uint64_t ring_slots)
{
    uint64_t *memo = sl_calloc(pl->nnodes, sizeof(*memo));
    uint64_t held = (uint64_t)threads;

    if (memo == NULL) {
        return ring_slots; /* the plan is an estimate: fall back to the rings */
    }
    for (size_t i = 0; i < pl->nnodes; i++) {
        if (pl->nodes[i].cn->kind == SLUICE_KIND_SOURCE) {
            held += source_copies(pl, i) * path_slots(&pl->nodes[i], memo);
        }
    }
    sl_free(memo);
    return held > ring_slots ? held : ring_slots;
}

/* Copies of one batch of source src that arrive at node: one per path from
 * src to node (ups has an entry per edge). memo: per node, 0 = not known
 * yet, else the count + 1. */
static uint64_t arrivals(const struct sl_node *node, size_t src, uint64_t *memo)
{
    if (memo[node->index] != 0) {
        return memo[node->index] - 1;
    }
    uint64_t n = node->index == src ? 1 : 0;
    for (size_t i = 0; i < node->nups; i++) {
        n += arrivals(node->ups[i], src, memo);
    }
    n = n > WINDOW_COPIES_MAX ? WINDOW_COPIES_MAX : n;
    memo[node->index] = n + 1;
    return n;
}

/* Batches one batch of source src becomes while it is in flight: itself,
 * and a copy (sl_batch_make_writable) for every stage that receives it
 * shared, that is from an output read by more than one edge, once per
 * path that reaches that output. A chain of k full-copy diamonds makes
 * 2 + 4 + ... + 2^k: 126 copies for 6 in a row, and the sink holds every
 * path's copy of a sequence until the last one arrives. Route outputs
 * hold only their route's records and are not counted. */
static uint64_t copies_made(const struct sl_pipeline *pl, size_t src, uint64_t *memo)
{
    uint64_t copies = 1;

    memset(memo, 0, pl->nnodes * sizeof(*memo));
    for (size_t u = 0; u < pl->nnodes; u++) {
        const struct sl_node *node = &pl->nodes[u];
        for (size_t o = 0; o < node->nouts; o++) {
            for (size_t c = 0; node->outs[o].n > 1 && c < node->outs[o].n; c++) {
                bool edits = node->outs[o].to[c]->cn->kind != SLUICE_KIND_SINK;
                copies += edits ? arrivals(node, src, memo) : 0;
            }
        }
    }
    return copies < WINDOW_COPIES_MAX ? copies : WINDOW_COPIES_MAX;
}

/* Whether some sink is reached from src by more than one path: it holds
 * each path's copy of a batch until the last one arrives, so the copies
 * of many batches pile up there. Paths into separate sinks drain on their
 * own (10 maps into 10 sinks stay far below the limit: no window, as
 * before). */
static bool meets_again(const struct sl_pipeline *pl, size_t src)
{
    for (size_t s = 0; s < pl->nnodes; s++) {
        if (sl_sink_copies(&pl->nodes[s], src) > 1) {
            return true;
        }
    }
    return false;
}

/* A family's bytes (see struct sl_flow_window): a batch decoded from a
 * block of block_bytes, and its copies (copies_made counts the batch
 * itself too) at COPY_FACTOR decoded batches each. A copy shares its
 * parent's strings but has its own field arrays, and a map that adds a
 * field grows them again: 6 diamonds of maps adding a field each peaked
 * at 30 MiB in flight at 16 MiB counting a copy as one decoded batch, 15
 * MiB counting it as COPY_FACTOR; a 60-way fan-out's copies measured 2.2
 * decoded batches each. */
static uint64_t family_bytes(uint64_t copies, uint64_t factor, uint64_t block_bytes)
{
    return block_bytes * factor * (1 + (copies - 1) * COPY_FACTOR);
}

/* Bounds what fan-out copies grow into (see struct sl_flow_window): a
 * source whose paths meet again at a sink gets a window, and each of its
 * batches is admitted with a credit for its family (the batch, decoded,
 * and every copy made of it), so that admission waits for room for all
 * of it: a copy is charged when it is made and never waits. The plan
 * splits half the budget among the windowed sources, and makes blocks
 * smaller until WINDOW_MIN families fit in each share (down to
 * BLOCK_FLOOR), whatever the fan-out: the width of one fan-out counts as
 * much as copies of copies (a 60-way diamond at 16 MiB with 16 KiB blocks
 * and a window of 4: 61 copies of 145 KiB each per batch, 34 MiB in
 * flight). The window is as many families as fit in the share (at least
 * one); the credits, learnt from the families freed, hold the bytes to
 * the budget when the estimate is off. A chain edits its one batch in
 * place, and paths into separate sinks drain on their own: no window.
 * *block_bytes: the plan's block, made smaller if need be. */
static void plan_windows(struct sl_pipeline *pl, uint64_t factor, uint32_t *block_bytes)
{
    uint64_t limit = pl->flow.limit;
    uint64_t *memo = sl_calloc(pl->nnodes, sizeof(*memo));
    uint64_t most = 1; /* the most copies one batch of a windowed source becomes */
    uint64_t windowed = 0;

    if (memo == NULL) {
        return; /* no window: the plan is an estimate, the budget still holds */
    }
    for (size_t i = 0; i < pl->nnodes; i++) {
        if (pl->nodes[i].cn->kind == SLUICE_KIND_SOURCE && meets_again(pl, i)) {
            uint64_t c = copies_made(pl, i, memo);
            pl->nodes[i].window.max = c > 1 ? (uint32_t)c : 0; /* the copies, for now */
            windowed += c > 1;
            most = c > most ? c : most;
        }
    }
    sl_free(memo);
    if (windowed == 0) {
        return;
    }
    uint64_t share = limit / 2 / windowed;
    uint64_t per_byte = family_bytes(most, factor, 1);
    if (WINDOW_MIN * per_byte * *block_bytes > share) {
        /* WINDOW_MIN families of blocks no smaller than BLOCK_MIN, or else
         * one family of larger blocks: a wide fan-out keeps the workers
         * busy within one family, and small batches cost more than
         * windows gain (a 60-way diamond at 4 MiB: 1.5 s of CPU with two
         * families of 2 KiB blocks, 0.55 s with one of 4 KiB). */
        uint64_t smaller = share / WINDOW_MIN / per_byte;
        if (smaller < BLOCK_MIN) {
            smaller = share / per_byte;
            smaller = smaller < BLOCK_FLOOR ? BLOCK_FLOOR : smaller;
            smaller = smaller < *block_bytes ? smaller : *block_bytes;
        }
        *block_bytes = (uint32_t)smaller;
    }
    uint64_t block = *block_bytes;
    for (size_t i = 0; i < pl->nnodes; i++) {
        struct sl_flow_window *win = &pl->nodes[i].window;
        if (pl->nodes[i].cn->kind != SLUICE_KIND_SOURCE || win->max == 0) {
            continue;
        }
        uint64_t family = family_bytes(win->max, factor, block);
        win->max = clamp_u32(share / family, 1, WINDOW_MAX);
        /* Per admitted byte (the block and its slack): what the family
         * adds to it. */
        uint64_t growth = (family - block) * 16 / (block + SL_BATCH_BLOCK_SLACK);
        atomic_init(&win->growth_x16, growth < UINT32_MAX ? (unsigned)growth : UINT32_MAX);
        win->credit_max = limit; /* until cap_reserve knows the reserve */
    }
}

/* The decoded size of a block, as a multiple of it, for the pipeline's
 * sources: the largest of their formats' (the `format` option every
 * decoding source has). */
static uint64_t decoded_factor(const struct sl_pipeline *pl)
{
    uint64_t factor = DECODED_FACTOR;

    for (size_t i = 0; i < pl->nnodes; i++) {
        const struct sl_conf_node *cn = pl->nodes[i].cn;
        const char *format =
            cn->kind == SLUICE_KIND_SOURCE ? sl_conf_node_enum(cn, "format") : NULL;
        if (format != NULL && strcmp(format, "csv") == 0) {
            factor = DECODED_FACTOR_CSV;
        }
    }
    return factor;
}

/* Slots node's ring must have for its blocking producers to run all their
 * tasks at once: a task reserves its slot in every consumer ring before it
 * starts, and a blocking one (a `delay` call) holds it while it waits, so a
 * smaller ring caps the calls at once below the producer's `workers`. */
static uint32_t blocking_reservations(const struct sl_node *node)
{
    uint32_t n = 0;

    for (size_t i = 0; i < node->nups; i++) {
        /* One entry per edge: a producer with two edges here holds two. */
        n += node->ups[i]->blocking ? node->ups[i]->max_tasks * node->ups[i]->nparts : 0;
    }
    return n;
}

/* What the nodes hold beside the records (node.h fixed_bytes: SQLite
 * sinks' connections, caches, statements and threads) comes out of the
 * budget before anything is planned with it: the records get the rest,
 * and at least half (sl_flow_set_aside; the loader refused nodes holding
 * more than SL_FIXED_FREE_BYTES past that half). Planned with the whole
 * limit, 80 maps into 80 SQLite sinks at 21 MiB kept 23 MB of copies in
 * flight beside the sinks' 10 MB: 43 MB peak RSS. */
static void plan_fixed(struct sl_pipeline *pl)
{
    uint64_t bytes = 0;

    for (size_t i = 0; i < pl->nnodes; i++) {
        const struct sl_conf_node *cn = pl->nodes[i].cn;
        bytes += cn->type->fixed_bytes != NULL ? cn->type->fixed_bytes(cn) : 0;
    }
    sl_flow_set_aside(&pl->flow, bytes);
}

static void plan_memory(struct sl_pipeline *pl, int threads)
{
    uint64_t limit = pl->flow.limit; /* after plan_fixed */
    uint64_t rings = 0, source_rings = 0;
    uint64_t factor = decoded_factor(pl);

    for (size_t i = 0; i < pl->nnodes; i++) {
        bool source = pl->nodes[i].cn->kind == SLUICE_KIND_SOURCE;
        source_rings += source;
        rings += !source && pl->nodes[i].nups > 0;
    }
    /* Blocks small enough that a couple of batches' copies on every path
     * fit in a quarter of the budget. */
    uint64_t block = limit / (8 * factor * (uint64_t)max_paths(pl, false));
    uint32_t block_bytes = block < BLOCK_MIN   ? BLOCK_MIN
                           : block > BLOCK_MAX ? BLOCK_MAX
                                               : (uint32_t)block;
    uint64_t batch_est = (uint64_t)block_bytes * factor;
    uint64_t raw_est = block_bytes + 4096;
    /* Half the budget for what the rings hold; raw blocks grow several
     * times once decoded, so their rings get a sixteenth; the rest is for the
     * batches being worked on and the sinks' buffers. */
    uint32_t cap = clamp_u32(limit / 2 / (rings ? rings : 1) / batch_est, 1, QUEUE_MAX_AUTO);
    uint32_t raw_cap = clamp_u32(limit / 16 / (source_rings ? source_rings : 1) / raw_est,
                                 SOURCE_RING_MIN, QUEUE_MAX_AUTO);
    uint64_t slots = 0; /* decoded batches the rings may hold, `queue` settings included */
    bool hand_set = false;
    for (size_t i = 0; i < pl->nnodes; i++) {
        struct sl_node *node = &pl->nodes[i];
        hand_set |= node->ring_cap != 0 && node->cn->kind != SLUICE_KIND_SOURCE;
        if (node->ring_cap == 0) {
            node->ring_cap = node->cn->kind == SLUICE_KIND_SOURCE ? raw_cap : cap;
            /* Counted in slots below: blocks shrink if they hold too much. */
            uint32_t held = blocking_reservations(node);
            node->ring_cap = held > node->ring_cap ? held : node->ring_cap;
        }
        slots += node->cn->kind != SLUICE_KIND_SOURCE && node->nups > 0 ? node->ring_cap : 0;
    }
    /* Queues set by hand, or copies waiting for their siblings, may hold
     * more than the budget allows for: then the batches get smaller. */
    uint64_t held = hand_set ? batches_held(pl, threads, slots) : slots;
    if (held * batch_est > limit / 2) {
        uint64_t smaller = limit / 2 / held / factor;
        block_bytes = smaller < BLOCK_FLOOR ? BLOCK_FLOOR : (uint32_t)smaller;
        batch_est = (uint64_t)block_bytes * factor;
    }
    plan_windows(pl, factor, &block_bytes);
    batch_est = (uint64_t)block_bytes * factor;
    /* Sources keep room free for what admitted blocks grow into: decoding
     * on every thread, and with several paths into one sink, the copies
     * that wait there for their siblings (a batch whose decoding was
     * preempted holds up every later one on the other paths), unless a
     * window's credits pay for those. */
    uint32_t paths = max_paths(pl, true);
    uint64_t reserve = (uint64_t)threads * batch_est;
    uint64_t copies = limit / 2 * (paths - 1) / paths;
    reserve = reserve > copies ? reserve : copies;
    pl->flow.reserve = reserve;
    /* Read small until a decoded block tells what blocks grow into. */
    pl->block_plan = block_bytes;
    pl->block_factor = (uint32_t)factor;
    atomic_init(&pl->block_bytes, block_bytes < SL_BLOCK_START ? block_bytes : SL_BLOCK_START);
    atomic_init(&pl->decoded_x16, 0);
}

/* After the nodes set their libraries' buffers aside: a reserve as large
 * as what is left would admit one block at a time (or, with anything left
 * charged, nothing): keep room for two blocks. */
static void cap_reserve(struct sl_pipeline *pl)
{
    uint64_t room = 2 * ((uint64_t)pl->block_plan + SL_BATCH_BLOCK_SLACK);
    uint64_t most = pl->flow.limit > room ? pl->flow.limit - room : 0;
    uint64_t most34 = pl->flow.limit * 3 / 4;

    most = most < most34 ? most : most34;
    pl->flow.reserve = pl->flow.reserve < most ? pl->flow.reserve : most;
    /* One family's credit leaves room for another's block beside it: a
     * source is never kept waiting for room nothing else will make. */
    for (size_t i = 0; i < pl->nnodes; i++) {
        pl->nodes[i].window.credit_max = (pl->flow.limit - pl->flow.reserve) / 2;
    }
}

/* Gives every source upstream of node (node included) an entry for plugin
 * stage `stage`. seen: per node, already walked. */
static int add_growth_above(struct sl_node *node, const struct sl_node *stage, bool *seen)
{
    if (seen[node->index]) {
        return 0;
    }
    seen[node->index] = true;
    if (node->cn->kind == SLUICE_KIND_SOURCE) {
        struct sl_growth *g = sl_realloc(node->growth, (node->ngrowth + 1) * sizeof(*g));
        if (g == NULL) {
            return SL_ENOMEM;
        }
        node->growth = g;
        g[node->ngrowth].stage = stage;
        atomic_init(&g[node->ngrowth].x16, 0);
        node->ngrowth++;
    }
    for (size_t i = 0; i < node->nups; i++) {
        if (add_growth_above(node->ups[i], stage, seen) != 0) {
            return SL_ENOMEM;
        }
    }
    return 0;
}

/* Sources with plugin stages below them cut their batches by what those
 * stages make of them (sl_source_batch_limit): a plugin may add any number
 * of records to a batch, and the plan cannot know how many. */
static int plan_plugins(struct sl_pipeline *pl)
{
    bool *seen = sl_malloc(pl->nnodes * sizeof(*seen));
    int rc = seen != NULL ? 0 : SL_ENOMEM;

    for (size_t i = 0; rc == 0 && i < pl->nnodes; i++) {
        if (sl_plugin_file_of(pl->nodes[i].type) != NULL) {
            memset(seen, 0, pl->nnodes * sizeof(*seen));
            rc = add_growth_above(&pl->nodes[i], &pl->nodes[i], seen);
        }
    }
    sl_free(seen);
    return rc;
}

/* The highest level in a bit set of levels (0 for none). */
static uint8_t top_level(uint16_t levels)
{
    return levels != 0 ? (uint8_t)(31 - __builtin_clz((unsigned)levels)) : 0;
}

/* Each node's tasks run in the worker pool at the highest level that can
 * reach its queue, or that it gives what it emits (a source's decoding: its
 * output waits for it). Fixed per node, not taken from what is queued when
 * a task starts: a task queued at level 0 would keep a level-9 batch that
 * arrives after it waiting at level 0's pace; the node's queue orders its
 * own work. When one level is all there is, every task is level 0: there
 * is nothing to overtake, and level-0 tasks keep the workers' own deques. */
static void plan_task_levels(struct sl_pipeline *pl)
{
    uint16_t seen = 0;

    for (size_t i = 0; i < pl->nnodes; i++) {
        struct sl_node *node = &pl->nodes[i];
        uint8_t in = top_level(node->cn->levels_in);
        uint8_t own = top_level(node->cn->priority_levels);
        node->task_level = own > in ? own : in;
        seen |= node->blocking ? 0 : (uint16_t)(1u << node->task_level);
    }
    for (size_t i = 0; __builtin_popcount(seen) <= 1 && i < pl->nnodes; i++) {
        pl->nodes[i].task_level = 0;
    }
}

/* With work stealing off, the pool partitions work statically (sched.h,
 * sl_sched_set_stealing): each source's subgraph on one worker, sources
 * taking the workers in turn, as a thread-per-input design would. A node
 * reached from several sources goes with the first of them. */
static void plan_homes(struct sl_pipeline *pl)
{
    uint16_t rank = 0;
    bool changed = true;

    for (size_t i = 0; i < pl->nnodes; i++) {
        bool source = pl->nodes[i].cn->kind == SLUICE_KIND_SOURCE;
        pl->nodes[i].home = source && rank < UINT16_MAX ? ++rank : 0;
    }
    while (changed) {
        changed = false;
        for (size_t i = 0; i < pl->nnodes; i++) {
            struct sl_node *node = &pl->nodes[i];
            for (size_t u = 0; node->cn->kind != SLUICE_KIND_SOURCE && u < node->nups; u++) {
                uint16_t h = node->ups[u]->home;
                if (h != 0 && (node->home == 0 || h < node->home)) {
                    node->home = h;
                    changed = true;
                }
            }
        }
    }
    for (size_t i = 0; i < pl->nnodes; i++) {
        for (uint32_t t = 0; t < pl->nodes[i].max_tasks; t++) {
            pl->nodes[i].tasks[t].task.home = pl->nodes[i].home;
        }
    }
}

/* Creates node's input ring once its producers are known: a producer
 * reserves one slot per edge into it (a route whose outputs all feed one
 * sink, `inputs: [x, x]`) and per part of its priority split, so the ring
 * must hold that many at least. */
static int create_ring(struct sl_node *node)
{
    uint32_t cap = node->ring_cap;

    for (size_t i = 0; i < node->nups; i++) {
        uint32_t edges = 0;
        for (size_t j = 0; j < node->nups; j++) {
            edges += node->ups[j] == node->ups[i];
        }
        edges *= node->ups[i]->nparts;
        cap = edges > cap ? edges : cap;
    }
    /* Several levels arrive: a lane per level, the higher taken first. */
    uint16_t levels = node->cn->levels_in;
    uint8_t lane_levels[SL_PRIORITY_LEVELS];
    uint32_t nlanes = 0;
    for (uint8_t l = 0; l < SL_PRIORITY_LEVELS; l++) {
        node->lane_of[l] = (uint8_t)(nlanes > 0 ? nlanes - 1 : 0);
        if ((levels >> l) & 1u) {
            node->lane_of[l] = (uint8_t)nlanes;
            lane_levels[nlanes++] = l;
        }
    }
    node->in = nlanes > 1 ? sl_ring_new_lanes(cap, nlanes, lane_levels) : sl_ring_new(cap);
    if (node->in == NULL) {
        return SL_ENOMEM;
    }
    sl_ring_set_on_room(node->in, sl__node_room_freed, node);
    return 0;
}

static int link_inputs(struct sl_pipeline *pl, struct sl_node *node, struct sl_err *err)
{
    for (size_t j = 0; j < node->cn->ninputs; j++) {
        uint32_t edges = 0;
        for (size_t k = 0; k < node->cn->ninputs; k++) {
            edges += strcmp(node->cn->inputs[k].node, node->cn->inputs[j].node) == 0;
        }
        const struct sl_conf_input *in = &node->cn->inputs[j];
        struct sl_node *up = find_node(pl, in->node);
        size_t o = up != NULL ? find_output(up, in->output) : SIZE_MAX;
        if (o == SIZE_MAX) {
            return sl_err_set(err, SL_ECONFIG, "%s: unknown input %s", node->name, in->node);
        }
        uint32_t inc = node->cn->path_inc != NULL ? node->cn->path_inc[j] : 0;
        if (add_consumer(&up->outs[o], node, inc) != 0 || add_producer(node, up) != 0) {
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
        up->edges_into_max = edges > up->edges_into_max ? edges : up->edges_into_max;
    }
    return 0;
}

/* The node whose open() runs now, for the event loop's drain-deadline
 * message (the pipeline is not attached to the loop while it is built): a
 * sink waiting for a locked database at start-up was "drain did not finish"
 * with nothing named. One pipeline is built at a time. */
static _Atomic(const char *) opening;

const char *sl_pipeline_opening(void)
{
    return atomic_load_explicit(&opening, memory_order_acquire);
}

static int open_nodes(struct sl_pipeline *pl, struct sl_err *err)
{
    /* Sinks first (sources ask them for positions), then stages, then sources. */
    static const enum sluice_stage_kind order[] = {SLUICE_KIND_SINK, SLUICE_KIND_TRANSFORM,
                                                   SLUICE_KIND_SOURCE};
    for (size_t k = 0; k < 3; k++) {
        for (size_t i = 0; i < pl->nnodes; i++) {
            struct sl_node *node = &pl->nodes[i];
            if (node->cn->kind != order[k] || node->type->open == NULL) {
                continue;
            }
            atomic_store_explicit(&opening, node->name, memory_order_release);
            int rc = node->type->open(node, err);
            atomic_store_explicit(&opening, NULL, memory_order_release);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

/* engine.blocking_threads into the pool's bounds: N starts exactly N up
 * front; auto starts one and grows on demand up to SL_SCHED_BLOCKING_MAX
 * (idle ones exit), so a `delay` stage with `workers: auto` (64 task slots)
 * gets threads as its tuner raises its calls at once, not 64 at start.
 * No blocking node (the dead-letter store runs no tasks: other sinks write
 * it): no blocking thread. */
static void blocking_threads(const struct sl_pipeline *pl, int *ret_min, int *ret_max)
{
    bool any = false;

    for (size_t i = 0; i < pl->nnodes; i++) {
        any |= pl->nodes[i].blocking && pl->nodes[i].in != NULL && &pl->nodes[i] != pl->dead_letter;
    }
    if (pl->conf->blocking_threads > 0) {
        *ret_min = *ret_max = any ? (int)pl->conf->blocking_threads : 0;
    } else {
        *ret_min = any ? 1 : 0;
        *ret_max = any ? SL_SCHED_BLOCKING_MAX : 0;
    }
}

/* The CPUs of mask as a list such as "0-3,6" (cut short with "..."). */
static void format_cpus(const cpu_set_t *mask, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int cpu = 0; cpu < CPU_SETSIZE && used + 16 < len; cpu++) {
        if (!CPU_ISSET(cpu, mask) || (cpu > 0 && CPU_ISSET(cpu - 1, mask))) {
            continue;
        }
        int last = cpu;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, mask)) {
            last++;
        }
        used += (size_t)snprintf(buf + used, len - used, last > cpu ? "%s%d-%d" : "%s%d",
                                 used > 0 ? "," : "", cpu, last);
    }
    if (used + 16 >= len) {
        snprintf(buf + used, len - used, "...");
    }
}

/* engine.cpu_affinity: pins the CPU workers to CPUs of the process's own
 * affinity mask (a container or taskset may give it fewer than the
 * machine has). A listed CPU outside it is a run-time error (exit 1): the
 * config may be valid on the machine it was written for. */
static int pin_workers(struct sl_pipeline *pl, struct sl_err *err)
{
    const struct sl_conf *conf = pl->conf;
    int cpus[CPU_SETSIZE];
    size_t ncpus = 0;
    cpu_set_t mask;

    if (conf->cpu_affinity == SL_AFFINITY_OFF) {
        return 0;
    }
    if (sched_getaffinity(0, sizeof(mask), &mask) != 0) {
        return sl_err_set(err, SL_EFATAL, "engine.cpu_affinity: cannot read the process's CPUs");
    }
    if (conf->cpu_affinity == SL_AFFINITY_ALL) {
        for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
            if (CPU_ISSET(cpu, &mask)) {
                cpus[ncpus++] = cpu;
            }
        }
    } else {
        for (size_t i = 0; i < conf->ncpus && ncpus < CPU_SETSIZE; i++) {
            if (!CPU_ISSET(conf->cpus[i], &mask)) {
                char allowed[128];
                format_cpus(&mask, allowed, sizeof(allowed));
                return sl_err_set(err, SL_EFATAL,
                                  "engine.cpu_affinity: CPU %d is not one this process may run on "
                                  "(its CPUs: %s)",
                                  conf->cpus[i], allowed);
            }
            cpus[ncpus++] = conf->cpus[i];
        }
    }
    return ncpus == 0 ? 0 : sl_sched_set_affinity(pl->sched, cpus, ncpus, err);
}

static int build(struct sl_pipeline *pl, struct sl_err *err)
{
    struct sl_conf *conf = pl->conf;
    int threads = conf->threads > 0 ? (int)conf->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);

    if (threads < 1) {
        threads = 1;
    }
    size_t nnodes = conf->nnodes + (conf->dead_letter != NULL ? 1 : 0);
    pl->nodes = sl_calloc(nnodes, sizeof(*pl->nodes));
    if (pl->nodes == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    pl->nnodes = nnodes;
    for (size_t i = 0; i < pl->nnodes; i++) {
        const struct sl_conf_node *cn = i < conf->nnodes ? &conf->nodes[i] : conf->dead_letter;
        if (init_node(pl, &pl->nodes[i], cn, (uint32_t)i, threads) != 0) {
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
        if (pl->nodes[i].cn->kind == SLUICE_KIND_SINK) {
            atomic_fetch_add(&pl->sinks_open, 1);
        }
    }
    if (conf->dead_letter != NULL) {
        pl->dead_letter = &pl->nodes[pl->nnodes - 1];
    }
    for (size_t i = 0; i < pl->nnodes; i++) {
        int rc = link_inputs(pl, &pl->nodes[i], err);
        if (rc != 0) {
            return rc;
        }
    }
    if (sl_priority_plans(pl->nodes, pl->nnodes) != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    plan_fixed(pl);
    plan_memory(pl, threads);
    if (plan_plugins(pl) != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    plan_task_levels(pl);
    plan_homes(pl);
    for (size_t i = 0; i < pl->nnodes; i++) {
        if (create_ring(&pl->nodes[i]) != 0) {
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
    }
    int blk_min, blk_max;
    blocking_threads(pl, &blk_min, &blk_max);
    pl->sched = sl_sched_new(threads, blk_min, blk_max, err);
    if (pl->sched == NULL) {
        return err->code ? err->code : SL_ENOMEM;
    }
    sl_sched_set_stealing(pl->sched, conf->work_stealing);
    if (pin_workers(pl, err) != 0) {
        return err->code;
    }
    int rc = open_nodes(pl, err);
    cap_reserve(pl);
    return rc;
}

int sl_pipeline_new(struct sl_conf *conf, struct sl_pipeline **ret_pl, struct sl_err *err)
{
    struct sl_pipeline *pl = sl_calloc(1, sizeof(*pl));

    if (pl == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    pl->conf = conf;
    sl_flow_init(&pl->flow, conf->memory_limit);
    pl->flow.on_release = sl__pipeline_budget_freed;
    pl->flow.on_release_arg = pl;
    pthread_mutex_init(&pl->lock, NULL);
    pthread_cond_init(&pl->done, NULL);
    int rc = build(pl, err);
    if (rc != 0) {
        sl_pipeline_free(pl);
        return rc;
    }
    /* Here, not at start: the loop thread reads it once attached. */
    pl->start_ns = sl_now_ns();
    *ret_pl = pl;
    return 0;
}

/* Tells the shutdown watchdog what the next step waits for. */
static void teardown_step(struct sl_pipeline *pl, const char *fmt, const char *name)
{
    char what[320];

    if (pl->on_teardown != NULL) {
        snprintf(what, sizeof(what), fmt, name);
        pl->on_teardown(pl->on_teardown_arg, what);
    }
}

struct sl_pipeline *sl_pipeline_free(struct sl_pipeline *pl)
{
    if (pl == NULL) {
        return NULL;
    }
    sl_pipeline_stop(pl);
    for (size_t i = 0; i < pl->nnodes; i++) {
        if (pl->nodes[i].thread_started) {
            teardown_step(pl, "source '%s' (its thread)", pl->nodes[i].name);
            pthread_join(pl->nodes[i].thread, NULL);
        }
    }
    if (pl->sched != NULL) {
        /* Joining the pool waits for every task that still runs. */
        char running[256];
        sl_pipeline_describe_running(pl, running, sizeof(running));
        teardown_step(pl, "%s", running[0] != '\0' ? running : "the worker pool");
    }
    pl->sched = sl_sched_free(pl->sched);
    /* No more kicks: the pool is gone, and the drain below pops and frees. */
    pl->flow.on_release = NULL;
    for (size_t i = 0; i < pl->nnodes && pl->nodes != NULL; i++) {
        if (pl->nodes[i].in != NULL) {
            sl_ring_set_on_room(pl->nodes[i].in, NULL, NULL);
        }
    }
    for (size_t i = 0; i < pl->nnodes && pl->nodes != NULL; i++) {
        struct sl_node *node = &pl->nodes[i];
        if (node->type != NULL && node->type->close != NULL) {
            teardown_step(pl, "closing '%s'", node->name);
            node->type->close(node);
        }
        void *item;
        while (node->in != NULL && sl_ring_try_pop(node->in, &item) == 0) {
            sl_batch_unref(item);
        }
        for (struct sl_batch *b = node->shells, *next; b != NULL; b = next) {
            next = b->shell_next;
            sl_batch_unref(b);
        }
        if (node->shells_tail != NULL) {
            pthread_mutex_destroy(&node->shells_lock);
        }
        sl_ring_free(node->in);
        for (size_t o = 0; o < node->nouts; o++) {
            sl_free(node->outs[o].to);
            sl_free(node->outs[o].inc);
        }
        sl_free(node->outs);
        sl_free(node->ups);
        sl_free(node->tasks);
        sl_free(node->tuner);
        sl_free(node->growth);
        for (size_t j = 0; node->plans != NULL && j < pl->nnodes; j++) {
            sl_free(node->plans[j]);
        }
        sl_free(node->plans);
    }
    sl_free(pl->nodes);
    sl_flow_release_all(&pl->flow);
    pthread_mutex_destroy(&pl->lock);
    pthread_cond_destroy(&pl->done);
    sl_free(pl);
    return NULL;
}
