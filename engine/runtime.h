/* SPDX-License-Identifier: MIT */
/* The running pipeline: nodes built from the config, joined by bounded rings,
 * their (node, batch) tasks run on the work-stealing pool. Sources read on
 * their own threads and push raw blocks into their own node's ring; decoding
 * and every stage run on the pool; sinks restore per-stream order before
 * writing. Backpressure: a task starts only when it could reserve a slot in
 * every ring it will emit into; a source blocks on its full ring. */
#ifndef SL_RUNTIME_H
#define SL_RUNTIME_H

#include "batch.h"
#include "clock.h"
#include "conf.h"
#include "flow.h"
#include "node.h"
#include "ring.h"
#include "sched.h"
#include "tune.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct sl_pipeline;
struct sl_node;
struct sl_control;

/* What a source's batches grow into at one plugin stage below it: bytes
 * after a call per base byte (sl_batch.base_bytes), x16, as measured
 * (sl__pipeline_note_grown). */
struct sl_growth {
    const struct sl_node *stage; /* the plugin stage */
    _Atomic uint32_t x16;        /* 0 until a call; 1..SL_GROWTH_BLIND: the calls so far,
                                    all on none of the source's records; then the measure
                                    (at least 16: a byte per byte); relaxed (an estimate) */
};
/* A stage called only on batches without its source's records (a route
 * output that stays empty) tells nothing of what it makes of them: the
 * source's batches take at most SL_GROWTH_BLIND_BYTES, halved for each
 * such call short of SL_GROWTH_BLIND (so that a first batch without
 * records, a CSV header's or a blank line's, leaves the next ones small).
 * A record at a time made such a run 40 times slower, and the plan's
 * block, when records came, a call that grew 6 MiB at 5 copies per
 * record. */
#define SL_GROWTH_BLIND       15
#define SL_GROWTH_BLIND_BYTES (16 * 1024)

/* One call may add to its batch (records, fields) at most this part of
 * the records' budget (memory_limit less what nodes hold): a call runs on
 * a task, which never waits for memory, so nothing else would bound it.
 * Sources cut their batches by what calls measured (sl_source_batch_limit),
 * so a stage adding many records per record meets it only when a few
 * records alone add that much. */
#define SL_PLUGIN_ROOM_DIV 4

/* How often the loop thread feeds the tuners. */
#define SL_TUNE_TICK_NS (50 * 1000 * 1000ull)

struct sl_node_task {
    struct sl_task task; /* submitted to the pool */
    struct sl_node *node;
    uint32_t slot; /* bit in node->free_slots */
    /* Tuned nodes: start of the busy time not yet added to node->busy_ns
     * (slot taken, or the last batch done), 0 when idle; written by the
     * task's thread, read by the tuning tick (relaxed: a sample may be off
     * by one batch, the next one makes up for it). */
    atomic_uint_fast64_t busy_since_ns;
};

/* An output of a node and who consumes it. */
struct sl_out {
    const char *name;    /* NULL for the main output, route name otherwise */
    struct sl_node **to; /* consumers (fan-out) */
    uint32_t *inc;       /* per consumer: the edge's path increment (batch->path) */
    size_t n;
};

struct sl_counters {
    atomic_uint_fast64_t in;      /* records received */
    atomic_uint_fast64_t out;     /* records emitted (or written, for sinks) */
    atomic_uint_fast64_t dropped; /* removed by a rule */
    atomic_uint_fast64_t shed;    /* dropped by the input ring's when_full policy */
    atomic_uint_fast64_t shed_level[SL_PRIORITY_LEVELS]; /* shed, per priority level */
    atomic_uint_fast64_t dead;                           /* dead-lettered here */
    atomic_uint_fast64_t added;    /* records the node made beside its input (plugins' emit):
                                      in + added = out + dropped + shed + dead */
    atomic_uint_fast64_t replayed; /* sinks: already stored by an earlier run or process
                                      (trimmed), counted in dropped too */
    atomic_uint_fast64_t batches;  /* batches processed */
};

struct sl_node {
    struct sl_pipeline *pl;
    const struct sl_conf_node *cn;
    const struct sl_node_type *type;
    const char *name;
    uint32_t index;                      /* in pl->nodes */
    void *state;                         /* the type's instance data (open/close) */
    struct sl_ring *in;                  /* input ring; sources: raw blocks from their thread */
    uint8_t lane_of[SL_PRIORITY_LEVELS]; /* the ring lane of each level that reaches it */
    uint8_t task_level;  /* its tasks' priority in the worker pool (pipeline.c plan_task_levels) */
    uint16_t home;       /* its tasks' home worker + 1 with stealing off (pipeline.c plan_homes) */
    uint32_t ring_cap;   /* the capacity asked for (`queue`) */
    struct sl_out *outs; /* outs[0] main output; route outputs after it */
    size_t nouts;
    struct sl_node **ups; /* producers, for re-kicking after a pop */
    size_t nups;
    atomic_int ups_open; /* producers not yet finished (sources: their thread) */
    atomic_uint_fast64_t
        free_slots; /* bit i set = tasks[i] idle; acq_rel hand-off of the node's state */
    struct sl_node_task *tasks;
    uint32_t max_tasks;            /* the node's `workers` (workers_max when auto) */
    uint32_t nparts;               /* batches per output batch: a priority expression's levels
                                      (one part each, empty ones too), else 1; a task
                                      reserves this many slots per edge */
    uint32_t edges_into_max;       /* the most of its edges into one consumer (a route's
                                      outputs all into one sink); set at build */
    _Atomic uint32_t workers;      /* task slots that may be taken at once; tuned nodes: set
                                      by the loop thread (seq_cst: pairs with the slot CAS) */
    _Atomic uint32_t workers_peak; /* highest `workers` so far; relaxed (statistics) */
    struct sl_tuner *tuner;        /* workers: auto, else NULL; the loop thread's */
    atomic_uint_fast64_t busy_ns;  /* tuned nodes: time task slots were taken; relaxed */
    uint64_t busy_seen_ns;         /* tuned nodes: the last busy time fed to the tuner (loop) */
    uint64_t work_seen;            /* tuned nodes: the last work count fed to the tuner (loop) */
    bool blocking; /* tasks run on the blocking threads (sinks: they write and retry) */
    atomic_bool finished;
    atomic_bool gated; /* source nodes: decoding waits for the budget; seq_cst (flow.c) */
    struct sl_flow_window window; /* source nodes: its batches alive at once (memory plan,
                                     pipeline.c); max 0: no window */
    struct sl_growth *growth;     /* source nodes: one per plugin stage below it, which may
                                     add records to its batches (sl_source_batch_limit);
                                     set at build, NULL when none */
    uint32_t ngrowth;
    struct sl_counters c;
    atomic_uint tapped; /* `sluice tap` clients of this node; relaxed (control.c) */
    /* when_full other than block: what its producers shed instead of
     * waiting for room, kept as empty shells (position, sequence number and
     * dead letters, no records: sinks wait for every sequence number) that
     * its tasks take before the ring. Memory: shells are charged to the
     * budget like any batch. */
    enum sl_when_full when_full;
    pthread_mutex_t shells_lock;
    struct sl_batch *shells; /* oldest first, under shells_lock */
    struct sl_batch **shells_tail;
    atomic_uint nshells;        /* seq_cst: pairs with free_slots like a ring push (node_kick) */
    pthread_t thread;           /* sources only */
    bool thread_started;        /* main only */
    atomic_bool thread_running; /* sources: set before the thread starts, cleared as it
                                   returns; read by the loop and the shutdown watchdog to
                                   name what did not stop (seq_cst) */
    char **plans;               /* sinks: per source index, the priority plan (priority.h), NULL
                                   when none; NULL when no source has one */
    const uint32_t *paths;      /* sinks: per [source index * SL_PRIORITY_LEVELS + level], the
                                   copies of each batch that come here (the config's,
                                   conf_dag.c); NULL for the dead_letter sink */
};

struct sl_pipeline {
    struct sl_conf *conf;
    struct sl_sched *sched;
    struct sl_flow flow;
    _Atomic uint32_t block_bytes;   /* what file sources read at once: from SL_BLOCK_START up
                                       to block_plan, by what decoded blocks measured
                                       (sl__pipeline_note_decoded); relaxed */
    uint32_t block_plan;            /* the memory plan's read size (pipeline.c) */
    uint32_t block_factor;          /* the decoded size per block byte the plan assumed */
    _Atomic uint32_t decoded_x16;   /* measured decoded size per block byte, x16; relaxed */
    atomic_uint_fast64_t raw_bytes; /* budget held by blocks waiting in source rings */
    struct sl_node *nodes;
    size_t nnodes;
    struct sl_node *dead_letter; /* the dead_letter sink node, or NULL */
    atomic_bool stop;            /* sources stop reading (SIGINT/SIGTERM or failure) */
    atomic_int sinks_open;       /* sinks not yet finished */
    pthread_mutex_t lock;        /* guards failure info and done signalling */
    pthread_cond_t done;
    atomic_bool failed; /* set once, under lock, after fail_err */
    struct sl_err fail_err;
    uint64_t start_ns; /* set before the loop thread sees the pipeline */
    uint64_t end_ns;
    /* Told, before each step of sl_pipeline_free that may wait (a join, a
     * close), what it waits for: the shutdown watchdog names it if the
     * step never ends (loop.c). NULL: nobody listens. Main only. */
    void (*on_teardown)(void *arg, const char *what);
    /* The control socket (taps), set by sl_loop_attach before the sources
     * start, or NULL; release/acquire. */
    _Atomic(struct sl_control *) control;
    void *on_teardown_arg;
};

/* Builds the pipeline from conf (borrowed for its life): nodes, rings, pool.
 * Opens every node (sinks first, so sources can ask them for positions).
 * Returns 0 or an error with err filled. Thread: main. */
int sl_pipeline_new(struct sl_conf *conf, struct sl_pipeline **ret_pl, struct sl_err *err);
/* Starts the source threads. Thread: main. */
int sl_pipeline_start(struct sl_pipeline *pl, struct sl_err *err);
/* Waits until every sink finished or the timeout (ns, 0 = none) passed since
 * the call. Returns 0 when done, SL_ETIMEDOUT. Thread: main. */
int sl_pipeline_wait(struct sl_pipeline *pl, uint64_t timeout_ns);
/* Asks sources to stop reading; everything in flight drains. Async-signal
 * unsafe: call from the loop thread. */
void sl_pipeline_stop(struct sl_pipeline *pl);
/* Writes into buf (NUL-terminated, cut at len) what is still running: the
 * sources whose thread has not returned and the nodes with tasks running,
 * as "source 'f' (its thread), sink 'db' (1 task)"; empty when nothing
 * runs. Reads atomics only: safe while the pipeline runs. Thread: any. */
void sl_pipeline_describe_running(struct sl_pipeline *pl, char *buf, size_t len);
/* The name of the node being opened while a pipeline is built, or NULL.
 * Thread: any. */
const char *sl_pipeline_opening(void);
/* Joins threads, closes nodes, frees everything, telling pl->on_teardown
 * what each step that may wait waits for. Nothing is freed while a thread
 * that may use it runs: a step that never ends hangs here (the shutdown
 * watchdog then exits the process). NULL ok; returns NULL. */
struct sl_pipeline *sl_pipeline_free(struct sl_pipeline *pl);
/* Feeds each `workers: auto` node's tuner its counters and applies what it
 * decides (more workers start at once). True when the pipeline has such
 * nodes. Thread: the loop thread, every SL_TUNE_TICK_NS. */
bool sl_pipeline_tune(struct sl_pipeline *pl, uint64_t now_ns);
/* Sleeps until end_ns (sl_now_ns's clock) in slices of at most 50 ms,
 * giving up once the pipeline stops: for stages that wait by design
 * (delay, throttle), on blocking threads. (Not on the budget's condition
 * variable, as sources do: it is broadcast at every release, and 64 calls
 * asleep would all wake for each.) Returns false when the stop cut the
 * sleep short. Thread: blocking threads (blocks). */
bool sl_pipeline_sleep_until(const struct sl_pipeline *pl, uint64_t end_ns);
/* The read size sources start with, until a decoded block told what a
 * block grows into. */
#define SL_BLOCK_START (16 * 1024)
/* A source node decoded its block into batch: sets the read size so that
 * a decoded batch is what the memory plan assumed (see runtime.c).
 * Thread: any. */
void sl__pipeline_note_decoded(struct sl_pipeline *pl, const struct sl_batch *batch);
/* Plugin stage node's call on n records left batch as it is now (records
 * added, fields set): notes, for the batch's source, what its batches grow
 * into per base byte there, which cuts the source's next batches
 * (sl_source_batch_limit). A call on no records tells nothing. Thread: any. */
void sl__pipeline_note_grown(const struct sl_node *node, const struct sl_batch *batch, uint32_t n);
/* The copies of one batch of source node src that sink s waits for
 * together at one level (parts of a priority split hold the batch's
 * records between them, so the level with the most copies is what
 * counts); 0 when src does not reach s. Thread: any. */
uint32_t sl_sink_copies(const struct sl_node *s, size_t src);
/* Records a runtime failure (first one wins), stops sources. Thread: any. */
void sl_pipeline_fail(struct sl_pipeline *pl, const struct sl_err *err);

/* ---- for node types ---- */

/* Emits batch on output `out` (0 = main) of node; the caller's reference is
 * transferred (fan-out adds references). Only valid inside process(); every
 * output must be emitted exactly once per input batch, done by the runtime
 * by process() itself. Thread: worker. */
void sl_node_emit(struct sl_node *node, size_t out, struct sl_batch *batch);
/* Source threads: hands a batch the source built (sl_batch_new(NULL)) to the
 * node's own ring, blocking while the memory budget is spent or the ring is
 * full. Returns 0, or SL_ECANCELED when the pipeline stops (the caller still
 * owns batch and drops it). The batch is charged to memory_limit as a whole
 * first (sl_batch_adopt). Thread: source. */
int sl_node_source_push(struct sl_node *node, struct sl_batch *batch);
/* The window's place for a source's batch (node's window, if it has one):
 * waits while the window is full, unless batch holds a place already.
 * *ret_credit: the credit to charge with it at admission (0 without a
 * window, or when the batch was admitted). Returns 0 or SL_ECANCELED.
 * Thread: source (blocks). */
int sl__node_window_enter(struct sl_node *node, struct sl_batch *batch, uint64_t *ret_credit);
/* What a source's admitted batch counts in pl->raw_bytes while it waits in
 * the source's ring: its charge and its credit. */
uint64_t sl__batch_raw_bytes(const struct sl_batch *batch);
/* Like sl_node_source_push, without waiting: SL_EAGAIN when the memory
 * budget or the ring is full (the caller still owns batch; Kafka pauses its
 * partitions and keeps polling). Thread: source. */
int sl_node_source_try_push(struct sl_node *node, struct sl_batch *batch);
/* Marks a record as dead: appends it to the batch's dead letters with the
 * node's name and reason, and counts it. Returns 0 or SL_ENOMEM. */
int sl_node_dead(struct sl_node *node,
                 struct sl_batch *batch,
                 const struct sl_record *rec,
                 const char *reason);
/* The room-freed hook of a node's input ring (runtime.c): kicks the node's
 * producers. pipeline.c installs it. Thread: any. */
void sl__node_room_freed(void *node);
/* The memory budget's release hook (runtime.c): kicks the source nodes
 * whose decoding waited for the budget. pipeline.c installs it. Thread: any. */
void sl__pipeline_budget_freed(void *pl);
/* A node's task body (runtime.c); pipeline.c hands it to the pool. */
void sl__node_task_run(struct sl_task *task);
/* Name of the source node a batch came from. */
const char *sl_node_source_name(const struct sl_node *node, const struct sl_batch *batch);

#endif
