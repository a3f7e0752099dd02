/* SPDX-License-Identifier: MIT */
/* Builds and runs the pipeline (see runtime.h): node tasks on the pool,
 * slot reservation for backpressure, end-of-input propagation. Threads: main
 * builds and frees; workers run tasks; source threads push raw batches. */
#include "runtime.h"

#include "control.h"
#include "expr.h"
#include "log.h"
#include "mem.h"
#include "priority.h"
#include "source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Batches a task handles before it yields its thread (fairness). */
#define TASK_BURST 8
/* A blocking task goes on past TASK_BURST, up to this, while no blocking
 * task waits for a thread (more_blocking). */
#define BLOCKING_BURST 256

const char *sl_node_source_name(const struct sl_node *node, const struct sl_batch *batch)
{
    return batch->source < node->pl->nnodes ? node->pl->nodes[batch->source].name : "?";
}

static void node_finish(struct sl_node *node);

/* ==== Scheduling ==== */

/* Starts a task for node if it has an idle task slot: on a blocking thread
 * for blocking nodes (sinks), which may sleep in retries or wait on I/O. */
static void node_start_task(struct sl_node *node)
{
    /* seq_cst (see sl__node_task_run): taking a slot also acquires the
     * previous task's writes to the node's state. */
    uint_fast64_t slots = atomic_load_explicit(&node->free_slots, memory_order_seq_cst);
    while (slots != 0) {
        /* Tuned nodes take at most `workers` slots: the CAS below checks
         * that the slots counted here are still the ones taken. seq_cst:
         * a raise by the tuner, then its kick, cannot be missed by both. */
        if (node->tuner != NULL &&
            node->max_tasks - (uint32_t)__builtin_popcountll((unsigned long long)slots) >=
                atomic_load_explicit(&node->workers, memory_order_seq_cst)) {
            return;
        }
        uint_fast64_t bit = slots & (~slots + 1);
        if (atomic_compare_exchange_weak_explicit(&node->free_slots, &slots, slots & ~bit,
                                                  memory_order_seq_cst, memory_order_seq_cst)) {
            struct sl_node_task *t = &node->tasks[__builtin_ctzll((unsigned long long)bit)];
            if (node->tuner != NULL) {
                atomic_store_explicit(&t->busy_since_ns, sl_now_ns(), memory_order_relaxed);
            }
            t->task.level = node->task_level;
            if (node->blocking) {
                sl_sched_submit_blocking(node->pl->sched, &t->task);
            } else {
                sl_sched_submit(node->pl->sched, &t->task);
            }
            return;
        }
    }
}

/* Starts a task for node if it has input a pop can take and an idle task
 * slot. Input a pop can take: a published item (sl_ring_ready), not merely
 * a counted one. A push claims its position, then publishes; a task that
 * finds only a claimed position gets SL_EAGAIN, and if this kick started
 * tasks on it, they re-kicked themselves (and each cancelled reservation
 * kicked them again) in a busy loop until the pusher, perhaps preempted,
 * ran again (issue 6, finding 15). No wake-up is lost: every push kicks
 * its consumer after it published, and a task re-kicks after it gave its
 * slot back; the publish and sl_ring_ready, and the slot release and
 * node_start_task's read of free_slots, are seq_cst store-load pairs, so
 * either the pusher's kick finds the slot free or the task sees the item. */
static void node_kick(struct sl_node *node)
{
    if (node->in == NULL || (!sl_ring_ready(node->in) &&
                             atomic_load_explicit(&node->nshells, memory_order_seq_cst) == 0)) {
        return;
    }
    node_start_task(node);
}

/* A producer reserves room in a consumer's ring, and waits for it, only
 * when the consumer's when_full is block. */
static bool reserves(const struct sl_node *consumer)
{
    return consumer->when_full == SL_WHEN_FULL_BLOCK;
}

/* True when every consumer ring has as many free slots as this node has
 * edges into it, times its parts (a hint, rechecked by the reservation). */
static bool outputs_have_room(struct sl_node *node)
{
    for (size_t o = 0; o < node->nouts; o++) {
        for (size_t c = 0; c < node->outs[o].n; c++) {
            struct sl_ring *r = node->outs[o].to[c]->in;
            uint32_t need = 0;
            if (!reserves(node->outs[o].to[c])) {
                continue;
            }
            uint32_t room = sl_ring_free_slots(r);
            /* Room for the most edges into any one consumer is room for
             * ours: only then count them (a 60-way fan-out counted 60 x
             * 60 edges per check, on every pop of any of its consumers). */
            if (room >= node->edges_into_max * node->nparts) {
                continue;
            }
            for (size_t o2 = 0; o2 < node->nouts; o2++) {
                for (size_t c2 = 0; c2 < node->outs[o2].n; c2++) {
                    need += node->outs[o2].to[c2]->in == r;
                }
            }
            if (room < need * node->nparts) {
                return false;
            }
        }
    }
    return true;
}

/* The room-freed hook of every node's input ring (pop or cancelled
 * reservation): a producer that could not reserve may go on now. Only one
 * that would find room everywhere: kicking the others made blocked
 * producers cancel and kick each other in a loop while a ring stayed full.
 * No wake-up is lost: room can only appear through a release of a ring
 * slot, which runs this hook, or of a task slot, which re-checks. */
void sl__node_room_freed(void *arg)
{
    struct sl_node *node = arg;

    for (size_t i = 0; i < node->nups; i++) {
        if (outputs_have_room(node->ups[i])) {
            node_kick(node->ups[i]);
        }
    }
}

/* Gives back one reservation per part in every consumer ring of output o
 * before consumer c. */
static void cancel_before(struct sl_node *node, size_t o, size_t c)
{
    while (c-- > 0) {
        for (uint32_t p = 0; reserves(node->outs[o].to[c]) && p < node->nparts; p++) {
            sl_ring_cancel_reserve(node->outs[o].to[c]->in);
        }
    }
}

/* Reserves one slot per part (node->nparts) in every consumer ring of
 * every output: all of them, or none. */
static bool reserve_outputs(struct sl_node *node)
{
    for (size_t o = 0; o < node->nouts; o++) {
        for (size_t c = 0; c < node->outs[o].n; c++) {
            if (!reserves(node->outs[o].to[c])) {
                continue;
            }
            for (uint32_t p = 0; p < node->nparts; p++) {
                if (sl_ring_try_reserve(node->outs[o].to[c]->in) == 0) {
                    continue;
                }
                /* Give back what this call took, in reverse. */
                while (p-- > 0) {
                    sl_ring_cancel_reserve(node->outs[o].to[c]->in);
                }
                cancel_before(node, o, c);
                while (o-- > 0) {
                    cancel_before(node, o, node->outs[o].n);
                }
                return false;
            }
        }
    }
    return true;
}

static void cancel_output(struct sl_node *node, size_t o)
{
    cancel_before(node, o, node->outs[o].n);
}

static void cancel_outputs(struct sl_node *node)
{
    for (size_t o = 0; o < node->nouts; o++) {
        cancel_output(node, o);
    }
}

/* A copy a path needs could not be made: that path's sequence never
 * comes, so the run fails, and what it did not commit is read again next
 * time. */
static void fail_oom(struct sl_node *node)
{
    struct sl_err err = {0};

    sl_err_set(&err, SL_ENOMEM, "%s: out of memory", node->name);
    sl_pipeline_fail(node->pl, &err);
}

/* Appends shell to node's shell list and starts a task for it. */
static void add_shell(struct sl_node *node, struct sl_batch *shell)
{
    /* The list links through the batch: a struct is its holder's alone
     * (a fork is never the batch itself), so it is on one list at most;
     * forks holding it as their parent never read shell_next. */
    shell->shell_next = NULL;
    pthread_mutex_lock(&node->shells_lock);
    *node->shells_tail = shell;
    node->shells_tail = &shell->shell_next;
    /* Counted under the lock, so that nshells never runs behind the list
     * (a take before the count would wrap it). seq_cst, then the kick reads
     * free_slots: as a ring push. */
    atomic_fetch_add_explicit(&node->nshells, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&node->shells_lock);
    node_kick(node);
}

/* Keeps a shed batch as an empty shell in node's shell list: its records
 * are counted as received and shed by node, and their memory given back;
 * the position and sequence number go on (a sink waits for every one), and
 * so do copies of its dead letters (they are no one's to drop). */
static void shed(struct sl_node *node, struct sl_batch *batch)
{
    struct sl_batch *shell;

    atomic_fetch_add_explicit(&node->c.in, batch->n, memory_order_relaxed);
    atomic_fetch_add_explicit(&node->c.shed, batch->n, memory_order_relaxed);
    atomic_fetch_add_explicit(&node->c.shed_level[batch->level % SL_PRIORITY_LEVELS], batch->n,
                              memory_order_relaxed);
    shell = sl_batch_shell(batch);
    sl_batch_unref(batch);
    if (shell == NULL) {
        /* As for a failed fork: this path's sequence never comes, the run
         * fails and what it did not commit is read again next time. */
        fail_oom(node);
        return;
    }
    add_shell(node, shell);
}

/* The oldest shell of node, or NULL. */
static struct sl_batch *take_shell(struct sl_node *node)
{
    struct sl_batch *shell;

    if (atomic_load_explicit(&node->nshells, memory_order_seq_cst) == 0) {
        return NULL;
    }
    pthread_mutex_lock(&node->shells_lock);
    shell = node->shells;
    if (shell != NULL) {
        node->shells = shell->shell_next;
        if (node->shells == NULL) {
            node->shells_tail = &node->shells;
        }
        atomic_fetch_sub_explicit(&node->nshells, 1, memory_order_seq_cst);
    }
    pthread_mutex_unlock(&node->shells_lock);
    return shell;
}

/* Pushes batch into consumer's ring, which producers do not reserve
 * (when_full other than block); when it is full, sheds by the policy. */
static void push_or_shed(struct sl_node *consumer, struct sl_batch *batch)
{
    void *oldest;

    /* A shell from a shedding node above takes no room in the queue: in
     * it, it would make this node shed real batches for it (drop_oldest). */
    if (batch->shell) {
        add_shell(consumer, batch);
        return;
    }
    uint32_t lane = consumer->lane_of[batch->level];

    if (sl_ring_try_push_lane(consumer->in, batch, lane) == 0) {
        node_kick(consumer);
        return;
    }
    /* drop_oldest: the oldest of the lowest level queued (a pop would take
     * the next to serve: the highest). */
    uint32_t low = sl_ring_lowest_lane(consumer->in);
    if (consumer->when_full == SL_WHEN_FULL_DROP_OLDEST && low != UINT32_MAX &&
        sl_ring_try_pop_lane(consumer->in, low, &oldest) == 0) {
        shed(consumer, oldest);
        if (sl_ring_try_push_lane(consumer->in, batch, lane) == 0) {
            node_kick(consumer);
            return;
        }
    }
    /* shed: a queued batch of a lower level goes first, the oldest of the
     * lowest; never this one while a lower one is queued (unless another
     * producer takes the room first, a few times in a row). Lanes are in
     * level order, so a lower lane is a lower level. */
    for (int tries = 0; consumer->when_full == SL_WHEN_FULL_SHED && tries < 8; tries++) {
        low = sl_ring_lowest_lane(consumer->in);
        if (low == UINT32_MAX || low >= lane) {
            break;
        }
        if (sl_ring_try_pop_lane(consumer->in, low, &oldest) == 0) {
            shed(consumer, oldest);
        }
        if (sl_ring_try_push_lane(consumer->in, batch, lane) == 0) {
            node_kick(consumer);
            return;
        }
    }
    shed(consumer, batch);
}

/* Outputs emitted by the process() call running on this thread. */
static _Thread_local uint64_t tl_emitted;

/* Hands batch to every consumer of output o: the first gets the batch
 * itself (with its dead letters), the others forks. Each copy adds its
 * edge's increment to its path tag. Each edge holds one reservation for it
 * (consumers that block). */
static void send(struct sl_node *node, struct sl_out *o, struct sl_batch *batch)
{
    uint32_t path = batch->path;

    /* Backwards, so that the first consumer gets the batch itself, with
     * its dead letters, after the others took their forks of it. The
     * struct is this node's alone (forks never share one), so its tag is
     * ours to change. */
    for (size_t c = o->n; c-- > 0;) {
        struct sl_batch *copy = c == 0 ? batch : sl_batch_fork(batch);
        if (copy != NULL) {
            copy->path = path + o->inc[c];
        }
        if (copy == NULL) {
            /* This path's copy never comes: its sink commits nothing from
             * this batch on, and the failed run is read again next time. */
            fail_oom(node);
            if (reserves(o->to[c])) {
                sl_ring_cancel_reserve(o->to[c]->in);
            }
            continue;
        }
        if (!reserves(o->to[c])) {
            push_or_shed(o->to[c], copy);
            continue;
        }
        if (copy->shell) {
            /* Shells take no queue room anywhere: behind a shedding node
             * there are hundreds per real batch, and in a queue they held
             * its consumers' producers back. */
            sl_ring_cancel_reserve(o->to[c]->in);
            add_shell(o->to[c], copy);
            continue;
        }
        sl_ring_push_reserved_lane(o->to[c]->in, copy, o->to[c]->lane_of[copy->level]);
        node_kick(o->to[c]);
    }
}

/* Splits batch by node's priority expression and sends each part, the
 * highest level first. count: node's `out` is counted here. */
static void send_parts(struct sl_node *node, size_t out, struct sl_batch *batch, bool count)
{
    struct sl_batch *parts[SL_PRIORITY_LEVELS];
    uint32_t dead = 0;
    uint64_t n = 0;
    int rc = sl_priority_split(node->cn, node->name, sl_node_source_name(node, batch), batch, parts,
                               &dead);

    if (rc != 0) {
        fail_oom(node);
        cancel_output(node, out);
        return;
    }
    for (int l = SL_PRIORITY_LEVELS; l-- > 0;) {
        n += parts[l] != NULL ? parts[l]->n : 0;
    }
    if (count) {
        atomic_fetch_add_explicit(&node->c.out, n, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&node->c.dead, dead, memory_order_relaxed);
    for (int l = SL_PRIORITY_LEVELS; l-- > 0;) {
        if (parts[l] != NULL) {
            /* The r-th level the node gives: as if an edge of its own
             * (conf_dag.c number_paths). */
            uint32_t rank =
                (uint32_t)__builtin_popcount(node->cn->priority_levels & ((1u << l) - 1));
            parts[l]->path += rank * node->cn->path_stride;
            send(node, &node->outs[out], parts[l]);
        }
    }
}

/* `sluice tap` clients of node take what they want of batch. */
static void tap(struct sl_node *node, size_t out, const struct sl_batch *batch)
{
    struct sl_control *c = atomic_load_explicit(&node->pl->control, memory_order_acquire);

    if (c != NULL) {
        sl_control_tap(c, node, out, batch);
    }
}

void sl_node_emit(struct sl_node *node, size_t out, struct sl_batch *batch)
{
    struct sl_out *o = &node->outs[out];

    if (atomic_load_explicit(&node->tapped, memory_order_relaxed) > 0) {
        tap(node, out, batch);
    }

    if (node->cn->kind == SLUICE_KIND_SOURCE && out == 0) {
        sl__pipeline_note_decoded(node->pl, batch);
    }

    SL_ASSERT((tl_emitted & ((uint64_t)1 << out)) == 0);
    tl_emitted |= (uint64_t)1 << out;
    /* A node with several outputs (route) may send one record to several
     * of them: it counts its records out itself, once each. */
    bool count = node->cn->kind != SLUICE_KIND_SINK && node->nouts == 1 && o->n > 0;

    if (o->n == 0) {
        sl_batch_unref(batch);
        return;
    }
    if (node->cn->priority_expr != NULL) {
        send_parts(node, out, batch, count);
        return;
    }
    if (node->cn->priority >= 0 &&
        (batch = sl_priority_relabel(batch, (uint8_t)node->cn->priority)) == NULL) {
        fail_oom(node);
        cancel_output(node, out);
        return;
    }
    if (count) {
        atomic_fetch_add_explicit(&node->c.out, batch->n, memory_order_relaxed);
    }
    send(node, o, batch);
}

static void process_one(struct sl_node *node, struct sl_batch *batch)
{
    uint32_t n_in = batch->n;
    int rc;

    if (node->cn->kind != SLUICE_KIND_SOURCE) {
        atomic_fetch_add_explicit(&node->c.in, n_in, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&node->c.batches, 1, memory_order_relaxed);
    tl_emitted = 0;
    sl_expr_set_priority(batch->level);
    /* A sink's output is what it writes: its input. */
    if (node->cn->kind == SLUICE_KIND_SINK &&
        atomic_load_explicit(&node->tapped, memory_order_relaxed) > 0) {
        tap(node, 0, batch);
    }
    rc = node->type->process(node, batch);
    if (rc != 0) {
        struct sl_err err = {0};
        sl_err_set(&err, rc, "%s: processing failed: %s", node->name, sl_strerror(rc));
        sl_pipeline_fail(node->pl, &err);
    }
    /* Give back the reservations of outputs process() did not emit on. */
    for (size_t o = 0; o < node->nouts; o++) {
        if ((tl_emitted & ((uint64_t)1 << o)) == 0) {
            cancel_output(node, o);
        }
    }
}

/* A shed batch's shell passes a stage untouched: it holds no records, so
 * a stage could only emit it again, and a slow stage (the kind that sheds)
 * would spend a call on each. Dead letters go with the first output anyone
 * reads, as a route sends them (NOTES.md "Dead letters"). */
static void forward_shell(struct sl_node *node, struct sl_batch *shell)
{
    size_t first = 0; /* the first output someone reads: the dead letters' way */

    while (first + 1 < node->nouts && node->outs[first].n == 0) {
        first++;
    }
    tl_emitted = 0;
    /* The others' forks first: once emitted, the shell may be freed. */
    for (size_t o = node->nouts; o-- > 0;) {
        struct sl_batch *copy = o == first ? NULL : sl_batch_fork(shell);
        if (copy != NULL) {
            sl_node_emit(node, o, copy);
        }
    }
    sl_node_emit(node, first, shell);
    for (size_t o = 0; o < node->nouts; o++) {
        if ((tl_emitted & ((uint64_t)1 << o)) == 0) {
            fail_oom(node);
            cancel_output(node, o);
        }
    }
}

static bool node_done_inputs(struct sl_node *node)
{
    return atomic_load_explicit(&node->ups_open, memory_order_seq_cst) == 0 &&
           sl_ring_count(node->in) == 0 &&
           atomic_load_explicit(&node->nshells, memory_order_seq_cst) == 0;
}

static uint_fast64_t all_slots(const struct sl_node *node)
{
    return node->max_tasks == 64 ? ~(uint_fast64_t)0 : (((uint_fast64_t)1 << node->max_tasks) - 1);
}

/* Decoding multiplies what a source admitted (about 4x, more with fan-out
 * copies): a source node's task does not start on a new block while the
 * budget is spent, so what is in flight drains first. Only sources wait
 * this way: every other node moves memory towards the sinks, and holding
 * it back could deadlock on a sink that waits for a batch behind it. */
static bool gate_on_budget(struct sl_node *node)
{
    struct sl_flow *flow = &node->pl->flow;

    if (node->cn->kind != SLUICE_KIND_SOURCE || !sl_flow_spent(flow)) {
        return false;
    }
    /* When all that is spent waits in source rings, nothing downstream
     * will give it back (a line longer than the limit): decode anyway. */
    if (atomic_load_explicit(&flow->used, memory_order_seq_cst) <=
        atomic_load_explicit(&node->pl->raw_bytes, memory_order_seq_cst)) {
        return false;
    }
    bool was = false;
    /* seq_cst: the store half of the store-load pair with sl_flow_release
     * (we then read `used` in the caller's re-check). */
    if (atomic_compare_exchange_strong_explicit(&node->gated, &was, true, memory_order_seq_cst,
                                                memory_order_seq_cst)) {
        atomic_fetch_add_explicit(&flow->gated, 1, memory_order_seq_cst);
    }
    return true;
}

void sl__pipeline_budget_freed(void *arg)
{
    struct sl_pipeline *pl = arg;

    for (size_t i = 0; i < pl->nnodes; i++) {
        struct sl_node *node = &pl->nodes[i];
        bool was = true;
        if (atomic_compare_exchange_strong_explicit(&node->gated, &was, false, memory_order_seq_cst,
                                                    memory_order_seq_cst)) {
            atomic_fetch_sub_explicit(&pl->flow.gated, 1, memory_order_seq_cst);
            node_kick(node);
        }
    }
}

/* Whether more tasks of a tuned node run than its `workers` now allow: a
 * task goes on with its burst otherwise (up to TASK_BURST batches, seconds
 * of slow calls), and the tuner would measure the old setting as the new. */
static bool over_workers(struct sl_node *node)
{
    if (node->tuner == NULL) {
        return false;
    }
    uint_fast64_t free = atomic_load_explicit(&node->free_slots, memory_order_relaxed);
    uint32_t running = node->max_tasks - (uint32_t)__builtin_popcountll((unsigned long long)free);
    return running > atomic_load_explicit(&node->workers, memory_order_relaxed);
}

/* Adds the task's busy time up to now to its node's, per batch: a task
 * runs up to TASK_BURST batches, longer than a tuning interval when they
 * are slow calls, and counting only at its end made the busy share of an
 * interval swing between 0 and several times the truth. next_ns is when
 * the next busy span starts (0: the task ends). */
static void add_busy(struct sl_node_task *t, uint64_t next_ns)
{
    uint64_t now = next_ns != 0 ? next_ns : sl_now_ns();
    uint64_t since = atomic_exchange_explicit(&t->busy_since_ns, next_ns, memory_order_relaxed);

    atomic_fetch_add_explicit(&t->node->busy_ns, now - since, memory_order_relaxed);
}

/* The node's busy time so far, the running tasks' current spans included:
 * never less than the last sample's (a task adding its span between our
 * two reads could make it look so). Loop thread. */
static uint64_t node_busy_ns(struct sl_node *node, uint64_t now_ns)
{
    uint64_t busy = atomic_load_explicit(&node->busy_ns, memory_order_relaxed);

    for (uint32_t i = 0; i < node->max_tasks; i++) {
        uint64_t since = atomic_load_explicit(&node->tasks[i].busy_since_ns, memory_order_relaxed);
        busy += since != 0 && since < now_ns ? now_ns - since : 0;
    }
    node->busy_seen_ns = busy > node->busy_seen_ns ? busy : node->busy_seen_ns;
    return node->busy_seen_ns;
}

/* Whether a blocking node's task, i batches in, goes on. A blocking thread
 * is the task's alone (an idle one, or a new one, takes every submit), so
 * there is nobody to be fair to unless a task waits for a thread. Ending
 * the burst and kicking itself again handed the node to another blocking
 * thread, woken through a condvar: about 10 us more between calls (the
 * overload bench's slow stage, 1,700 calls a second, was idle 4% of the
 * time between them). */
static bool more_blocking(struct sl_node *node, int i)
{
    /* Only on one of its blocking threads: a pool whose blocking threads
     * could not start runs blocking tasks on the CPU workers. */
    return node->blocking && i < BLOCKING_BURST && sl_sched_on_blocking_thread(node->pl->sched) &&
           sl_sched_blocking_waiting(node->pl->sched) == 0;
}

void sl__node_task_run(struct sl_task *task)
{
    struct sl_node_task *t = (struct sl_node_task *)task;
    struct sl_node *node = t->node;
    bool blocked = false;
    bool gated = false;

    for (int i = 0; i < TASK_BURST || more_blocking(node, i); i++) {
        struct sl_batch *batch;
        if (i > 0 && over_workers(node)) {
            break; /* the tuner lowered `workers`: make room at once */
        }
        if (gate_on_budget(node)) {
            gated = true; /* a release of the budget kicks us again */
            break;
        }
        if (!reserve_outputs(node)) {
            blocked = true; /* a consumer's pop kicks us again */
            break;
        }
        /* Shells and queued batches in turn: shells first always let a
         * stream of them starve the queue, which then shed (drop_oldest)
         * the real batches it held. */
        batch = (i & 1) == 0 ? take_shell(node) : NULL;
        if (batch == NULL && sl_ring_try_pop(node->in, (void **)&batch) != 0) {
            batch = (i & 1) != 0 ? take_shell(node) : NULL;
        }
        if (batch == NULL) {
            cancel_outputs(node);
            break;
        }
        if (node->cn->kind == SLUICE_KIND_SOURCE) {
            atomic_fetch_sub_explicit(&node->pl->raw_bytes, sl__batch_raw_bytes(batch),
                                      memory_order_seq_cst);
        }
        if (batch->shell && node->cn->kind == SLUICE_KIND_TRANSFORM) {
            forward_shell(node, batch);
        } else {
            process_one(node, batch);
        }
        if (node->tuner != NULL) {
            add_busy(t, sl_now_ns());
        }
    }
    if (node->tuner != NULL) {
        add_busy(t, 0);
    }
    /* seq_cst: giving the slot back and then reading the rings must not be
     * reordered against a producer's push-then-read of free_slots in
     * node_kick, or a wake-up is lost (store-load pattern). It also releases
     * this task's writes to the node's state to the next task. */
    atomic_fetch_or_explicit(&node->free_slots, (uint_fast64_t)1 << t->slot, memory_order_seq_cst);
    if (node_done_inputs(node) &&
        atomic_load_explicit(&node->free_slots, memory_order_seq_cst) == all_slots(node)) {
        node_finish(node);
        return;
    }
    /* Blocked on a full consumer or the budget: only retry if room
     * appeared meanwhile, otherwise this would spin a worker until the
     * consumer drains. The budget is read after the slot is given back:
     * a release that came before either sees us gated or is seen here. */
    if (gated ? !sl_flow_spent(&node->pl->flow) : !blocked || outputs_have_room(node)) {
        node_kick(node);
    }
}

/* Records and batches the node processed so far: shed records are not its
 * work (counting them made a shedding node's rate its arrival rate, whatever
 * its workers). Never less than the last sample's: `in` and `shed` are read
 * apart. Loop thread. */
static uint64_t node_work(struct sl_node *node, uint64_t batches)
{
    uint64_t shed = atomic_load_explicit(&node->c.shed, memory_order_relaxed);
    uint64_t in = atomic_load_explicit(&node->c.in, memory_order_relaxed);
    uint64_t work = (in > shed ? in - shed : 0) + batches;

    node->work_seen = work > node->work_seen ? work : node->work_seen;
    return node->work_seen;
}

bool sl_pipeline_tune(struct sl_pipeline *pl, uint64_t now_ns)
{
    /* For benchmarks (bench/tune.sh): every change of setting, on stderr. */
    static int trace = -1;
    bool any = false;

    if (trace < 0) {
        trace = getenv("SLUICE_TUNE_TRACE") != NULL;
    }

    for (size_t i = 0; i < pl->nnodes; i++) {
        struct sl_node *node = &pl->nodes[i];
        if (node->tuner == NULL) {
            continue;
        }
        any = true;
        /* Relaxed: counters only need to be recent. */
        uint64_t batches = atomic_load_explicit(&node->c.batches, memory_order_relaxed);
        struct sl_tune_sample s = {
            .work = node_work(node, batches),
            .batches = batches,
            .busy_ns = node_busy_ns(node, now_ns),
        };
        uint32_t old = atomic_load_explicit(&node->workers, memory_order_relaxed);
        uint32_t w = sl_tuner_step(node->tuner, &s, now_ns);
        if (w == old) {
            continue;
        }
        if (trace) {
            sl_log_always("tune %s: %.3f s: workers %u -> %u (rate %.0f/s at %u)", node->name,
                          (double)(now_ns - pl->start_ns) / 1e9, old, w, node->tuner->rate,
                          node->tuner->base);
        }
        atomic_store_explicit(&node->workers, w, memory_order_seq_cst);
        atomic_store_explicit(&node->workers_peak, node->tuner->peak, memory_order_relaxed);
        /* Each kick starts at most one task. */
        for (uint32_t k = old; k < w; k++) {
            node_kick(node);
        }
    }
    return any;
}

#define SLEEP_SLICE_NS (50 * 1000000ull)

bool sl_pipeline_sleep_until(const struct sl_pipeline *pl, uint64_t end_ns)
{
    for (;;) {
        uint64_t now = sl_now_ns();
        if (now >= end_ns) {
            return true;
        }
        /* Acquire: pairs with sl_pipeline_stop's release store. */
        if (atomic_load_explicit(&pl->stop, memory_order_acquire)) {
            return false;
        }
        uint64_t until = end_ns - now > SLEEP_SLICE_NS ? now + SLEEP_SLICE_NS : end_ns;
        struct timespec ts = {.tv_sec = (time_t)(until / 1000000000ull),
                              .tv_nsec = (long)(until % 1000000000ull)};
        /* Returns the error (EINTR) rather than setting errno. */
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
    }
}

/* The memory plan sizes blocks from an estimate of what a decoded batch
 * takes per block byte: 4 (JSON orders of 170 bytes, 8 fields), 8 for CSV.
 * Short records take more (60-byte lines: about 10), and with blocks sized
 * for 4 the rings held twice the limit (2 paths of such lines at 16 MiB:
 * 26-33 MiB in flight, 34-38 MB RSS). So file sources start with small
 * blocks, and each decoded block sets the read size to what keeps a
 * decoded batch at the plan's size: plan x assumed / measured, at most the
 * plan's. The measure follows a larger ratio at once and a smaller one
 * slowly (a quarter of the way per block). */
void sl__pipeline_note_decoded(struct sl_pipeline *pl, const struct sl_batch *batch)
{
    if (batch->block_len < 1024) {
        return; /* too small to tell (a dead letter's, a last piece) */
    }
    uint32_t seen = (uint32_t)(sl_batch_bytes(batch) * 16 / batch->block_len);
    uint32_t was = atomic_load_explicit(&pl->decoded_x16, memory_order_relaxed);
    uint32_t now = was == 0 || seen > was ? seen : was - (was - seen) / 4;
    atomic_store_explicit(&pl->decoded_x16, now, memory_order_relaxed);
    uint64_t block = pl->block_plan;
    if (now > pl->block_factor * 16u) {
        block = block * pl->block_factor * 16u / now;
    }
    block = block < SL_BLOCK_START && pl->block_plan >= SL_BLOCK_START ? SL_BLOCK_START : block;
    if (atomic_load_explicit(&pl->block_bytes, memory_order_relaxed) != block) {
        atomic_store_explicit(&pl->block_bytes, (uint32_t)block, memory_order_relaxed);
    }
}

/* Plugin stages may add records to the batches they get (host->emit): a
 * split adding 200 records per record made each batch 200 times what the
 * plan counted on, after its source had admitted it, and no task waits for
 * memory (at 16 MiB: 294 MiB in flight, 195 MB RSS). As for decoding
 * (above), the source reads less instead: each call notes its batch's
 * bytes per base byte (the raw block, or the records as built), per plugin
 * stage and source, and the source cuts its next batches to the plan's
 * decoded batch over the largest of its stages' figures
 * (sl_source_batch_limit), admitted with a credit for what they will grow
 * into (sl_source_growth_credit). Bytes, not records: a call on a batch the
 * stage shares (a fan-out) counts its copy of the records, and the
 * parent is in flight as a batch of its own. A larger figure is taken at
 * once, a smaller one a quarter of the way per call (a call on a batch a
 * filter thinned must not make the next ones large). */
void sl__pipeline_note_grown(const struct sl_node *node, const struct sl_batch *batch, uint32_t n)
{
    const struct sl_pipeline *pl = node->pl;

    if (batch->base_bytes == 0 || batch->source >= pl->nnodes) {
        return;
    }
    const struct sl_node *src = &pl->nodes[batch->source];
    struct sl_growth *g = NULL;
    for (uint32_t i = 0; i < src->ngrowth && g == NULL; i++) {
        g = src->growth[i].stage == node ? &src->growth[i] : NULL;
    }
    if (g == NULL) {
        return;
    }
    if (n == 0) {
        /* Called, but on none of the source's records: counted while
         * nothing is measured (SL_GROWTH_BLIND). */
        uint32_t was = atomic_load_explicit(&g->x16, memory_order_relaxed);
        while (was < SL_GROWTH_BLIND &&
               !atomic_compare_exchange_weak_explicit(&g->x16, &was, was + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
        }
        return;
    }
    uint64_t seen = sl_batch_bytes(batch) * 16 / batch->base_bytes;
    seen = seen < 16 ? 16 : seen > UINT32_MAX ? UINT32_MAX : seen;
    /* Relaxed (an estimate), but a compare-and-swap: with workers > 1 a
     * smaller figure stored over a larger one measured at the same time
     * would lose the growth that the sources must follow at once. */
    uint32_t was = atomic_load_explicit(&g->x16, memory_order_relaxed);
    for (;;) {
        uint32_t now = was < 16 || seen > was ? (uint32_t)seen : was - (uint32_t)((was - seen) / 4);
        if (now == was || atomic_compare_exchange_weak_explicit(
                              &g->x16, &was, now, memory_order_relaxed, memory_order_relaxed)) {
            break;
        }
    }
}

/* A producer of node finished: the last one may finish node. */
static void producer_done(struct sl_node *node)
{
    /* seq_cst: decrement-then-read free_slots here against the task's
     * release-slot-then-read ups_open is a store-load pair on each side;
     * weaker orders let both read stale values and nobody finishes. */
    if (atomic_fetch_sub_explicit(&node->ups_open, 1, memory_order_seq_cst) != 1) {
        return;
    }
    if (sl_ring_count(node->in) == 0 &&
        atomic_load_explicit(&node->nshells, memory_order_seq_cst) == 0 &&
        atomic_load_explicit(&node->free_slots, memory_order_seq_cst) == all_slots(node)) {
        if (node->blocking) {
            /* Its final flush writes: a task of its own finishes it (or a
             * task still running does, when it gives its slot back). */
            node_start_task(node);
        } else {
            node_finish(node);
        }
    } else {
        node_kick(node);
    }
}

/* Runs once per node when all input is processed: flush, then tell
 * consumers. Several threads may race here; the flag picks one. */
static void node_finish(struct sl_node *node)
{
    bool expected = false;

    if (!atomic_compare_exchange_strong_explicit(&node->finished, &expected, true,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        return;
    }
    if (node->type->flush != NULL) {
        int rc = node->type->flush(node);
        if (rc != 0) {
            struct sl_err err = {0};
            sl_err_set(&err, rc, "%s: final flush failed: %s", node->name, sl_strerror(rc));
            sl_pipeline_fail(node->pl, &err);
        }
    }
    for (size_t o = 0; o < node->nouts; o++) {
        for (size_t c = 0; c < node->outs[o].n; c++) {
            producer_done(node->outs[o].to[c]);
        }
    }
    if (node->cn->kind == SLUICE_KIND_SINK) {
        struct sl_pipeline *pl = node->pl;
        pthread_mutex_lock(&pl->lock);
        int left = atomic_fetch_sub_explicit(&pl->sinks_open, 1, memory_order_acq_rel) - 1;
        if (left == 0) {
            pl->end_ns = sl_now_ns();
            pthread_cond_broadcast(&pl->done);
        }
        pthread_mutex_unlock(&pl->lock);
        /* The dead-letter store is fed by the other sinks' writes: it
         * finishes (final flush, LZ4 end mark, sync) after the last of them. */
        if (left == 1 && pl->dead_letter != NULL && node != pl->dead_letter) {
            node_finish(pl->dead_letter);
        }
    }
}

/* ==== Sources ==== */

/* The credit batch, not yet admitted, is admitted with: its window
 * family's expected growth, or what plugin stages below grow it into,
 * whichever is more (a window's growth is learnt from families freed, and
 * knows nothing of a plugin stage not called yet). */
static uint64_t source_credit(const struct sl_node *node,
                              const struct sl_batch *batch,
                              struct sl_flow_window *window)
{
    uint64_t growth = sl_source_growth_credit(node, batch);
    uint64_t family =
        window != NULL ? sl_flow_window_credit(window, sl_batch_adopt_bytes(batch)) : 0;

    return growth > family ? growth : family;
}

int sl__node_window_enter(struct sl_node *node, struct sl_batch *batch, uint64_t *ret_credit)
{
    uint64_t credit = 0;

    /* Entered once: a retried push does not count the batch twice (it
     * leaves when the caller drops it). */
    if (batch->window == NULL && node->window.max != 0) {
        int rc = sl_flow_window_enter(&node->window, &node->pl->stop);
        if (rc != 0) {
            return rc;
        }
        batch->window = &node->window;
    }
    if (batch->flow == NULL) {
        credit = source_credit(node, batch, batch->window);
    }
    *ret_credit = credit;
    return 0;
}

uint64_t sl__batch_raw_bytes(const struct sl_batch *batch)
{
    return sl_batch_adopt_bytes(batch) +
           (batch->credit == &batch->family ? batch->family.granted : 0);
}

/* A source's batch is built outside the budget and admitted here as a
 * whole (block, records); what decoding and stages make of it afterwards is
 * charged by the batch allocator as it happens (batch.c), from the credit
 * it was admitted with if its source has a window. */
int sl_node_source_push(struct sl_node *node, struct sl_batch *batch)
{
    struct sl_pipeline *pl = node->pl;
    uint64_t credit;
    int rc;

    /* The window first: a batch waiting for it is not charged yet, so
     * others' admissions and the decode gate do not count it. */
    rc = sl__node_window_enter(node, batch, &credit);
    if (rc != 0) {
        return rc;
    }
    /* Admitted once: a batch whose push failed is still charged (it gives
     * its bytes back when the caller drops it) and may be pushed again. A
     * window's batch is charged its family's growth with it (its credit),
     * so that admission waits for room for that too. */
    if (batch->flow == NULL) {
        rc = sl_flow_acquire(&pl->flow, sl_batch_adopt_bytes(batch) + credit, &pl->stop);
        if (rc != 0) {
            return rc;
        }
        sl_batch_adopt(batch, &pl->flow);
        if (batch->window != NULL || credit > 0) {
            sl_batch_grant(batch, credit);
        }
    }
    batch->source = node->index;
    /* Counted before the push: the pop that subtracts may come at once. */
    uint64_t raw = sl__batch_raw_bytes(batch);
    atomic_fetch_add_explicit(&pl->raw_bytes, raw, memory_order_seq_cst);
    rc = sl_ring_push_wait(node->in, batch, &pl->stop);
    if (rc != 0) {
        atomic_fetch_sub_explicit(&pl->raw_bytes, raw, memory_order_seq_cst);
        return rc;
    }
    node_kick(node);
    return 0;
}

int sl_node_source_try_push(struct sl_node *node, struct sl_batch *batch)
{
    struct sl_pipeline *pl = node->pl;

    if (sl_ring_try_reserve(node->in) != 0) {
        return SL_EAGAIN;
    }
    bool entered = false;
    if (batch->window == NULL && node->window.max != 0) {
        if (!sl_flow_window_try_enter(&node->window)) {
            sl_ring_cancel_reserve(node->in);
            return SL_EAGAIN;
        }
        entered = true;
    }
    struct sl_flow_window *window = entered ? &node->window : batch->window;
    if (batch->flow == NULL) {
        uint64_t credit = source_credit(node, batch, window);
        if (!sl_flow_try_acquire(&pl->flow, sl_batch_adopt_bytes(batch) + credit)) {
            sl_ring_cancel_reserve(node->in);
            if (entered) {
                sl_flow_window_leave(&node->window, NULL);
            }
            return SL_EAGAIN;
        }
        sl_batch_adopt(batch, &pl->flow);
        batch->window = window;
        if (window != NULL || credit > 0) {
            sl_batch_grant(batch, credit);
        }
    }
    batch->source = node->index;
    atomic_fetch_add_explicit(&pl->raw_bytes, sl__batch_raw_bytes(batch), memory_order_seq_cst);
    sl_ring_push_reserved(node->in, batch);
    node_kick(node);
    return 0;
}

static void *source_thread(void *arg)
{
    struct sl_node *node = arg;
    int rc = node->type->run(node);

    if (rc != 0 && rc != SL_ECANCELED) {
        struct sl_err err = {0};
        sl_err_set(&err, rc, "%s: source failed: %s", node->name, sl_strerror(rc));
        sl_pipeline_fail(node->pl, &err);
    }
    producer_done(node);
    atomic_store(&node->thread_running, false);
    return NULL;
}

int sl_node_dead(struct sl_node *node,
                 struct sl_batch *batch,
                 const struct sl_record *rec,
                 const char *reason)
{
    int rc =
        sl_batch_add_dead(batch, rec, node->name, sl_node_source_name(node, batch), "%s", reason);

    if (rc == 0) {
        atomic_fetch_add_explicit(&node->c.dead, 1, memory_order_relaxed);
    }
    return rc;
}

void sl_pipeline_fail(struct sl_pipeline *pl, const struct sl_err *err)
{
    pthread_mutex_lock(&pl->lock);
    if (!atomic_load(&pl->failed)) {
        pl->fail_err = *err;
        atomic_store(&pl->failed, true);
    }
    pthread_mutex_unlock(&pl->lock);
    sl_pipeline_stop(pl);
}

void sl_pipeline_stop(struct sl_pipeline *pl)
{
    atomic_store_explicit(&pl->stop, true, memory_order_release);
    sl_flow_wake_all(&pl->flow);
    for (size_t i = 0; i < pl->nnodes; i++) {
        if (pl->nodes[i].in != NULL) {
            sl_ring_wake_all(pl->nodes[i].in);
        }
    }
}

int sl_pipeline_start(struct sl_pipeline *pl, struct sl_err *err)
{
    for (size_t i = 0; i < pl->nnodes; i++) {
        struct sl_node *node = &pl->nodes[i];
        if (node->cn->kind != SLUICE_KIND_SOURCE) {
            continue;
        }
        atomic_store(&node->thread_running, true);
        if (pthread_create(&node->thread, NULL, source_thread, node) != 0) {
            atomic_store(&node->thread_running, false);
            /* Failed, not just stopped: sinks' retries and waits end now. */
            sl_err_set(err, SL_EFATAL, "%s: cannot start thread", node->name);
            sl_pipeline_fail(pl, err);
            return SL_EFATAL;
        }
        node->thread_started = true;
    }
    return 0;
}

static const char *kind_name(const struct sl_node *node)
{
    switch (node->cn->kind) {
    case SLUICE_KIND_SOURCE:
        return "source";
    case SLUICE_KIND_SINK:
        return "sink";
    default:
        return "stage";
    }
}

/* Appends one "kind 'name' (what)" to buf, after a comma when not first. */
static void
append_running(char *buf, size_t len, size_t *used, const struct sl_node *node, const char *what)
{
    if (*used + 1 >= len) {
        return;
    }
    int n = snprintf(buf + *used, len - *used, "%s%s '%s' (%s)", *used > 0 ? ", " : "",
                     kind_name(node), node->name, what);
    *used = n < 0 ? *used : (size_t)n >= len - *used ? len - 1 : *used + (size_t)n;
}

void sl_pipeline_describe_running(struct sl_pipeline *pl, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < pl->nnodes; i++) {
        struct sl_node *node = &pl->nodes[i];
        /* seq_cst loads: a snapshot taken while the nodes run. */
        uint_fast64_t free = atomic_load(&node->free_slots);
        uint32_t tasks = node->max_tasks - (uint32_t)__builtin_popcountll(
                                               (unsigned long long)(free & all_slots(node)));
        char what[48];

        if (atomic_load(&node->thread_running)) {
            append_running(buf, len, &used, node, "its thread");
        }
        if (tasks > 0) {
            snprintf(what, sizeof(what), "%u task%s", tasks, tasks > 1 ? "s" : "");
            append_running(buf, len, &used, node, what);
        }
    }
}

int sl_pipeline_wait(struct sl_pipeline *pl, uint64_t timeout_ns)
{
    int rc = 0;

    pthread_mutex_lock(&pl->lock);
    if (timeout_ns == 0) {
        while (atomic_load(&pl->sinks_open) > 0) {
            pthread_cond_wait(&pl->done, &pl->lock);
        }
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t t = (uint64_t)ts.tv_nsec + timeout_ns;
        ts.tv_sec += (time_t)(t / 1000000000ull);
        ts.tv_nsec = (long)(t % 1000000000ull);
        while (atomic_load(&pl->sinks_open) > 0 && rc == 0) {
            if (pthread_cond_timedwait(&pl->done, &pl->lock, &ts) != 0) {
                rc = atomic_load(&pl->sinks_open) > 0 ? SL_ETIMEDOUT : 0;
            }
        }
    }
    pthread_mutex_unlock(&pl->lock);
    return rc;
}
