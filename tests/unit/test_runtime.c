/* SPDX-License-Identifier: MIT */
/* Unit tests of engine/runtime.c's scheduling of node tasks, driven by hand
 * on the test thread to force one interleaving: the room-freed hook (issue 6,
 * finding 3). A pipeline is built from a YAML file but its sources are never
 * started; the test pushes batches and runs tasks itself. */
#include "batch.h"
#include "conf.h"
#include "json.h"
#include "mem.h"
#include "ring.h"
#include "runtime.h"
#include "sink.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define WAIT_NS (30ull * 1000000000ull)

struct fixture {
    char dir[64];
    char path[96];
    struct sl_conf *conf;
    struct sl_pipeline *pl;
};

static struct sl_node *node_named(struct sl_pipeline *pl, const char *name)
{
    for (size_t i = 0; i < pl->nnodes; i++) {
        if (strcmp(pl->nodes[i].name, name) == 0) {
            return &pl->nodes[i];
        }
    }
    fail_msg("no node %s", name);
    return NULL;
}

/* Two producers (p1, p2) into one consumer whose ring holds one batch. */
static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct sl_err err = {0};

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_runtime_XXXXXX");
    if (fx == NULL || mkdtemp(fx->dir) == NULL) {
        return -1;
    }
    snprintf(fx->path, sizeof(fx->path), "%s/p.yaml", fx->dir);
    FILE *f = fopen(fx->path, "w");
    if (f == NULL) {
        return -1;
    }
    fputs("engine: { threads: 2 }\n"
          "sources:\n  gen: { type: generator, count: 10 }\n"
          "stages:\n"
          "  p1: { type: map, inputs: [gen], set: { a: '1' } }\n"
          "  p2: { type: map, inputs: [gen], set: { b: '2' } }\n"
          "sinks:\n  c: { type: null, inputs: [p1, p2], queue: 1 }\n",
          f);
    fclose(f);
    if (sl_conf_load(fx->path, NULL, 0, &fx->conf, &err) != 0 ||
        sl_pipeline_new(fx->conf, &fx->pl, &err) != 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    sl_pipeline_free(fx->pl);
    sl_conf_free(fx->conf);
    unlink(fx->path);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* Builds the pipeline of yaml (not started) in a new temporary folder. */
static void build(struct fixture *fx, const char *yaml)
{
    struct sl_err err = {0};

    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_runtime_XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/p.yaml", fx->dir);
    FILE *f = fopen(fx->path, "w");
    assert_non_null(f);
    fputs(yaml, f);
    fclose(f);
    assert_int_equal(sl_conf_load(fx->path, NULL, 0, &fx->conf, &err), 0);
    assert_int_equal(sl_pipeline_new(fx->conf, &fx->pl, &err), 0);
}

static void unbuild(struct fixture *fx)
{
    sl_pipeline_free(fx->pl);
    sl_conf_free(fx->conf);
    unlink(fx->path);
    rmdir(fx->dir);
}

/* A producer that could not reserve room went idle; a sibling producer then
 * cancels its reservation (its input was taken by another task). Nothing is
 * ever popped from the consumer's ring, so only the room-freed hook on the
 * cancel can wake the idle producer: without it, its batch stays for good. */
static void test_runtime_cancelled_reservation_wakes_blocked_producer(void **state)
{
    struct fixture *fx = *state;
    struct sl_node *p2 = node_named(fx->pl, "p2");
    struct sl_node *c = node_named(fx->pl, "c");
    struct sl_batch *batch = sl_batch_new(NULL);

    assert_non_null(batch);
    batch->source = node_named(fx->pl, "gen")->index;
    /* p1's task holds the consumer's only slot. */
    assert_int_equal(sl_ring_try_reserve(c->in), 0);
    /* p2 has input, and its task runs, finds no room and goes idle. */
    assert_int_equal(sl_ring_try_push(p2->in, batch), 0);
    atomic_fetch_and(&p2->free_slots, ~(uint_fast64_t)1);
    sl__node_task_run(&p2->tasks[0].task);
    assert_int_equal(sl_ring_count(p2->in), 1);
    assert_int_equal(atomic_load(&p2->free_slots), 1);
    /* p1's pop found nothing: it gives the slot back. */
    sl_ring_cancel_reserve(c->in);
    uint64_t deadline = sl_now_ns() + WAIT_NS;
    while (atomic_load(&c->c.batches) == 0 && sl_now_ns() < deadline) {
        usleep(1000);
    }
    assert_int_equal(sl_ring_count(p2->in), 0);
    assert_int_equal(atomic_load(&c->c.batches), 1);
}

/* A producer with two task slots fans out to k and h; h's ring is full. Its
 * task reserves k, fails on h and gives k back: that cancel must not start
 * its other task, which would fail the same way and kick the first again,
 * spinning a worker for as long as h stays full. */
static void test_runtime_blocked_fanout_does_not_spin(void **state)
{
    (void)state;
    const char *yaml = "engine: { threads: 2 }\n"
                       "sources:\n  gen: { type: generator, count: 10 }\n"
                       "stages:\n"
                       "  p: { type: map, inputs: [gen], set: { a: '1' }, workers: 2 }\n"
                       "sinks:\n  k: { type: null, inputs: [p], queue: 4 }\n"
                       "  h: { type: null, inputs: [p], queue: 1 }\n";
    struct fixture fx = {0};
    build(&fx, yaml);
    struct sl_pipeline *pl = fx.pl;
    struct sl_node *p = node_named(pl, "p");
    struct sl_node *h = node_named(pl, "h");
    struct sl_batch *batch = sl_batch_new(NULL);
    assert_non_null(batch);
    batch->source = node_named(pl, "gen")->index;
    assert_int_equal(sl_ring_try_reserve(h->in), 0); /* h is full */
    assert_int_equal(sl_ring_try_push(p->in, batch), 0);
    uint64_t before = 0, after = 0;
    sl_sched_stats(pl->sched, &before, NULL);
    atomic_fetch_and(&p->free_slots, ~(uint_fast64_t)1);
    sl__node_task_run(&p->tasks[0].task);
    usleep(200 * 1000);
    sl_sched_stats(pl->sched, &after, NULL);
    fprintf(stderr, "tasks run while blocked: %llu\n", (unsigned long long)(after - before));
    /* h frees its slot: p goes on. */
    sl_ring_cancel_reserve(h->in);
    uint64_t deadline = sl_now_ns() + WAIT_NS;
    while (atomic_load(&h->c.batches) == 0 && sl_now_ns() < deadline) {
        usleep(1000);
    }
    assert_int_equal(atomic_load(&h->c.batches), 1);
    assert_true(after - before < 100);
    unbuild(&fx);
}

/* A push held between the claim of its position and the publish of its
 * item (a pusher preempted mid-push). */
struct held_push {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool claimed; /* the push claimed its position */
    bool release; /* the test lets it publish */
    struct sl_node *from;
    struct sl_node *to;
    struct sl_batch *batch;
};

static void hold_claim(void *arg)
{
    struct held_push *h = arg;

    pthread_mutex_lock(&h->lock);
    h->claimed = true;
    pthread_cond_broadcast(&h->cond);
    while (!h->release) {
        pthread_cond_wait(&h->cond, &h->lock);
    }
    pthread_mutex_unlock(&h->lock);
}

/* The pusher: emits into `to` as a producer's task does (reserve, push,
 * kick), so the kick after the publish is the real one. */
static void *held_pusher(void *arg)
{
    struct held_push *h = arg;

    assert_int_equal(sl_ring_try_reserve(h->to->in), 0);
    sl_node_emit(h->from, 0, h->batch);
    return NULL;
}

/* Issue 6, finding 15: while a push into p's ring is claimed but not
 * published, the ring counts an item that no pop can take. A task of p
 * that meets it must stop and not be started again (its cancelled
 * reservation in k's ring and its own end used to kick it again: a busy
 * loop on the pool until the pusher ran). The pusher's kick after it
 * publishes then hands p the batch. */
static void test_runtime_unpublished_push_does_not_spin_consumer(void **state)
{
    (void)state;
    const char *yaml = "engine: { threads: 2 }\n"
                       "sources:\n  gen: { type: generator, count: 10 }\n"
                       "stages:\n"
                       "  p: { type: map, inputs: [gen], set: { a: '1' }, workers: 2 }\n"
                       "sinks:\n  k: { type: null, inputs: [p], queue: 4 }\n";
    struct fixture fx = {0};
    struct held_push h = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    pthread_t pusher;
    build(&fx, yaml);
    struct sl_pipeline *pl = fx.pl;
    struct sl_node *p = node_named(pl, "p");
    struct sl_node *k = node_named(pl, "k");
    h.from = node_named(pl, "gen");
    h.to = p;
    h.batch = sl_batch_new(NULL);
    assert_non_null(h.batch);
    h.batch->source = h.from->index;
    sl_ring_test_on_claim(p->in, hold_claim, &h);
    assert_int_equal(pthread_create(&pusher, NULL, held_pusher, &h), 0);
    pthread_mutex_lock(&h.lock);
    while (!h.claimed) {
        pthread_cond_wait(&h.cond, &h.lock);
    }
    pthread_mutex_unlock(&h.lock);
    assert_int_equal(sl_ring_count(p->in), 1);
    assert_false(sl_ring_ready(p->in));

    uint64_t before = 0, after = 0;
    sl_sched_stats(pl->sched, &before, NULL);
    /* A task of p (as a kick during the push would start) meets the
     * claimed slot, and room appears in k's ring. */
    atomic_fetch_and(&p->free_slots, ~(uint_fast64_t)1);
    sl__node_task_run(&p->tasks[0].task);
    sl__node_room_freed(k);
    usleep(200 * 1000); /* an observation window, not a synchronisation */
    sl_sched_stats(pl->sched, &after, NULL);
    fprintf(stderr, "tasks run while the push was held: %llu\n",
            (unsigned long long)(after - before));
    assert_int_equal(atomic_load(&p->c.batches), 0);

    pthread_mutex_lock(&h.lock);
    h.release = true;
    pthread_cond_broadcast(&h.cond);
    pthread_mutex_unlock(&h.lock);
    assert_int_equal(pthread_join(pusher, NULL), 0);
    uint64_t deadline = sl_now_ns() + WAIT_NS;
    while (atomic_load(&k->c.batches) == 0 && sl_now_ns() < deadline) {
        usleep(1000);
    }
    assert_int_equal(atomic_load(&p->c.batches), 1);
    assert_int_equal(atomic_load(&k->c.batches), 1);
    /* None: the only kicks that came found nothing published. */
    assert_true(after - before <= 2);
    sl_ring_test_on_claim(p->in, NULL, NULL);
    unbuild(&fx);
}

/* A fan-out hands every consumer the batch's records but its dead letters
 * to the first consumer only, so that each reaches one sink once, diamonds
 * included; what the forks hold is charged and given back. */
static void test_runtime_fork_leaves_dead_letters_on_the_first_path(void **state)
{
    struct sl_flow flow;
    (void)state;

    sl_flow_init(&flow, 1u << 20);
    struct sl_batch *plain = sl_batch_new(&flow);
    struct sl_batch *b = sl_batch_new(&flow);
    assert_non_null(plain);
    assert_non_null(b);
    b->seq = 7;
    b->pos_end = 99;
    for (int i = 0; i < 2; i++) {
        struct sl_record *rec = sl_batch_add(b);
        assert_non_null(rec);
        assert_int_equal(sl_record_append(rec, &b->arena, "id", 2, sl_value_int(i)), 0);
    }
    assert_int_equal(sl_batch_add_dead(b, &b->recs[1], "f", "gen", "bad"), 0);

    /* Its own struct even with nothing to leave out: the path tag is its own. */
    struct sl_batch *pf = sl_batch_fork(plain);
    assert_non_null(pf);
    assert_ptr_not_equal(pf, plain);
    assert_int_equal(atomic_load(&plain->refs), 2);
    struct sl_batch *f = sl_batch_fork(b);
    assert_non_null(f);
    assert_ptr_not_equal(f, b);
    assert_int_equal(f->n, 2);
    assert_int_equal(f->ndead, 0);
    assert_int_equal(b->ndead, 1);
    assert_int_equal(f->seq, 7);
    assert_int_equal(f->pos_end, 99);
    assert_int_equal(f->recs[1].fields[0].val.u.i, 1);

    sl_batch_unref(b); /* the fork keeps its records alive */
    assert_int_equal(f->recs[0].fields[0].val.u.i, 0);
    sl_batch_unref(f);
    sl_batch_unref(pf);
    sl_batch_unref(plain);
    assert_int_equal(atomic_load(&flow.used), 0);
}

/* A dead letter's reason is stored as valid UTF-8 and bounded, cut between
 * characters: a plugin's reason may hold any bytes (host->dead). */
static void test_runtime_dead_reason_is_valid_utf8(void **state)
{
    struct sl_flow flow;
    char reason[4000];

    (void)state;
    sl_flow_init(&flow, 1u << 20);
    struct sl_batch *b = sl_batch_new(&flow);
    assert_non_null(b);
    struct sl_record *rec = sl_batch_add(b);
    assert_non_null(rec);
    memcpy(reason, "x\xFF", 2);
    for (size_t i = 2; i + 1 < sizeof(reason); i += 2) {
        memcpy(reason + i, "\xC3\xA9", 2);
    }
    reason[sizeof(reason) - 1] = '\0';
    assert_int_equal(sl_batch_add_dead(b, rec, "p", "gen", "%s", reason), 0);
    const char *e = b->dead[0].error;
    assert_true(strlen(e) < SL_DEAD_REASON_MAX && strlen(e) > SL_DEAD_REASON_MAX - 4);
    assert_true(sl_utf8_valid(e, strlen(e)));
    assert_memory_equal(e, "x\xEF\xBF\xBD\xC3\xA9", 6);
    assert_int_equal(sl_batch_add_dead(b, rec, "p", "gen", "plain %d", 7), 0);
    assert_string_equal(b->dead[1].error, "plain 7");
    sl_batch_unref(b);
    assert_int_equal(atomic_load(&flow.used), 0);
}

/* A fork does not copy the records: at a 24-way fan-out of batches that
 * each carry a dead letter, copies for every sink made the run 20x slower
 * and tripled what was in flight. It reads its parent's records, so editing
 * it goes through a copy, and the parent's records stay as they were. */
static void test_runtime_fork_reads_the_records_in_place(void **state)
{
    struct sl_flow flow;
    (void)state;

    sl_flow_init(&flow, 1u << 20);
    struct sl_batch *b = sl_batch_new(&flow);
    assert_non_null(b);
    for (int i = 0; i < 100; i++) {
        struct sl_record *rec = sl_batch_add(b);
        assert_non_null(rec);
        assert_int_equal(sl_record_append(rec, &b->arena, "id", 2, sl_value_int(i)), 0);
    }
    assert_int_equal(sl_batch_add_dead(b, &b->recs[1], "f", "gen", "bad"), 0);
    uint64_t before = atomic_load(&flow.used);

    struct sl_batch *f = sl_batch_fork(b);
    assert_non_null(f);
    assert_ptr_not_equal(f, b);
    assert_int_equal(f->ndead, 0);
    assert_int_equal(f->n, 100);
    assert_int_equal(atomic_load(&flow.used) - before, sizeof(struct sl_batch));

    /* The only reference to the fork, still not editable in place. */
    struct sl_batch *w = sl_batch_make_writable(f);
    assert_non_null(w);
    assert_ptr_not_equal(w, f);
    assert_int_equal(w->n, 100);
    assert_int_equal(w->ndead, 0);
    w->recs[5].fields[0].val = sl_value_int(-1);
    w->n = 3;
    assert_int_equal(b->n, 100);
    assert_int_equal(b->recs[5].fields[0].val.u.i, 5);
    assert_ptr_equal(sl_batch_make_writable(w), w); /* its own now: edited in place */

    sl_batch_unref(b);
    assert_int_equal(w->recs[1].fields[0].val.u.i, 1);
    sl_batch_unref(w);
    assert_int_equal(atomic_load(&flow.used), 0);
}

/* A fork that cannot be made (out of memory) fails the run and gives its
 * consumer's reservation back; the first consumer still gets the batch and
 * its dead letters, and nothing stays charged. */
static void test_runtime_failed_fork_gives_the_reservation_back(void **state)
{
    (void)state;
    const char *yaml = "engine: { threads: 2 }\n"
                       "sources:\n  gen: { type: generator, count: 10 }\n"
                       "stages:\n  p: { type: map, inputs: [gen], set: { a: '1' } }\n"
                       "sinks:\n  k: { type: null, inputs: [p], queue: 2 }\n"
                       "  h: { type: null, inputs: [p], queue: 2 }\n";
    struct fixture fx = {0};
    build(&fx, yaml);
    struct sl_pipeline *pl = fx.pl;
    struct sl_node *p = node_named(pl, "p");
    struct sl_node *k = node_named(pl, "k");
    struct sl_node *h = node_named(pl, "h");
    assert_ptr_equal(p->outs[0].to[0], k);
    uint64_t used = atomic_load(&pl->flow.used);
    struct sl_batch *batch = sl_batch_new(&pl->flow);
    assert_non_null(batch);
    batch->source = node_named(pl, "gen")->index;
    struct sl_record *rec = sl_batch_add(batch);
    assert_non_null(rec);
    assert_int_equal(sl_batch_add_dead(batch, rec, "p", "gen", "bad"), 0);

    assert_int_equal(sl_ring_try_reserve(k->in), 0);
    assert_int_equal(sl_ring_try_reserve(h->in), 0);
    sl_mem_fail_nth(1); /* the fork for h */
    sl_node_emit(p, 0, batch);
    sl_mem_fail_nth(0);
    assert_true(atomic_load(&pl->failed));
    assert_int_equal(sl_ring_free_slots(h->in), sl_ring_capacity(h->in));
    assert_int_equal(sl_ring_count(h->in), 0);
    uint64_t deadline = sl_now_ns() + WAIT_NS;
    while (atomic_load(&k->c.batches) == 0 && sl_now_ns() < deadline) {
        usleep(1000);
    }
    assert_int_equal(atomic_load(&k->c.batches), 1);
    assert_int_equal(atomic_load(&k->c.in), 1);
    assert_int_equal(atomic_load(&h->c.batches), 0);
    /* k wrote it (its ring is empty) and let it go: fork and batch given back. */
    deadline = sl_now_ns() + WAIT_NS;
    while (atomic_load(&pl->flow.used) != used && sl_now_ns() < deadline) {
        usleep(1000);
    }
    assert_int_equal(atomic_load(&pl->flow.used), used);
    unbuild(&fx);
}

/* A dead letter's id is the same when a replay makes it again, and differs
 * for any other: names of any length (they were cut at 511 characters, so
 * 200 dead letters of a long-named source shared one id and the store's
 * upsert kept one), another Kafka offset epoch (a recreated topic reuses
 * offsets), another path, node or offset. */
static void test_runtime_dead_letter_ids(void **state)
{
    (void)state;
    char longa[600], longb[600], id[9][SL_DEAD_ID_MAX];
    memset(longa, 's', sizeof(longa) - 1);
    longa[sizeof(longa) - 1] = '\0';
    memcpy(longb, longa, sizeof(longa));
    longb[sizeof(longb) - 2] = 't';
    struct sl_batch b = {.stream_name = "orders", .path = 3};
    struct sl_dead d = {.source = longa, .node = "f"};

    d.rec.meta.offset = 7;
    sl_dead_set_origin(&d, &b);
    sl_dead_id(&d, id[0]);
    sl_dead_set_origin(&d, &b); /* a replay */
    sl_dead_id(&d, id[1]);
    assert_string_equal(id[0], id[1]);
    d.source = longb;
    sl_dead_set_origin(&d, &b);
    sl_dead_id(&d, id[2]);
    d.source = longa;
    b.fingerprint = "epoch-2";
    b.fingerprint_is_epoch = true;
    sl_dead_set_origin(&d, &b);
    sl_dead_id(&d, id[3]);
    b.fingerprint_is_epoch = false;
    b.path = 4;
    sl_dead_set_origin(&d, &b);
    sl_dead_id(&d, id[4]);
    b.path = 3;
    d.node = "g";
    sl_dead_set_origin(&d, &b);
    sl_dead_id(&d, id[5]);
    d.node = "f";
    d.rec.meta.offset = 8;
    sl_dead_set_origin(&d, &b);
    sl_dead_id(&d, id[6]);
    d.rec.meta.offset = 7;
    d.source = "ss"; /* parts do not run into each other: "ss"+"orders" */
    sl_dead_set_origin(&d, &b);
    sl_dead_id(&d, id[7]);
    b.stream_name = "sorders"; /* and "s"+"sorders" */
    d.source = "s";
    sl_dead_set_origin(&d, &b);
    sl_dead_id(&d, id[8]);
    for (int i = 2; i < 9; i++) {
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(id[i], id[j]);
        }
    }
}

/* A batch of source gen at seq, level 0, that came by the path tagged tag. */
static struct sl_batch *tagged(struct sl_pipeline *pl, uint64_t seq, uint32_t tag)
{
    struct sl_batch *batch = sl_batch_new(&pl->flow);

    assert_non_null(batch);
    batch->source = node_named(pl, "gen")->index;
    batch->seq = seq;
    batch->path = tag;
    return batch;
}

/* Each copy carries the path it came by (conf_dag.c number_paths): the
 * paths from a source have distinct tags, and a sink takes one copy per
 * path of each sequence; a second copy of one path, or one of a path that
 * does not lead there, fails the run instead of being written. */
static void test_runtime_sink_knows_each_copy_by_its_path(void **state)
{
    (void)state;
    const char *yaml =
        "sources:\n  gen: { type: generator, count: 10 }\n"
        "stages:\n  a: { type: map, inputs: [gen], set: { x: '1' } }\n"
        "  b: { type: map, inputs: [gen], set: { x: '2' } }\n"
        "  c: { type: map, inputs: [a, b], set: { y: '3' } }\n"
        "  t: { type: map, inputs: [c], set: { z: '4' }, priority: 'if(x == 1, 9, 0)' }\n"
        "  u: { type: map, inputs: [t], set: { w: '5' }, priority: 5 }\n"
        "sinks:\n  s: { type: null, inputs: [c, gen, u] }\n";
    struct fixture fx = {0};
    build(&fx, yaml);
    struct sl_pipeline *pl = fx.pl;
    struct sl_node *s = node_named(pl, "s");
    size_t key = node_named(pl, "gen")->index * SL_PRIORITY_LEVELS;

    /* Level 0: c's two paths and gen's own. Level 5: the two paths of c
     * through t, each split in two parts (levels 9 and 0) that u puts back
     * on one level: four copies, tags apart. */
    assert_int_equal(s->paths[key + 0], 3);
    assert_int_equal(s->paths[key + 5], 4);
    for (size_t l = 0; l < SL_PRIORITY_LEVELS; l++) {
        const uint32_t *tags = s->cn->path_ids + s->cn->path_ids_at[key + l];
        for (uint32_t i = 1; i < s->paths[key + l]; i++) {
            assert_true(tags[i - 1] < tags[i]);
        }
    }
    const uint32_t *tags = s->cn->path_ids + s->cn->path_ids_at[key];
    assert_int_equal(sl_sink_node_process(s, tagged(pl, 0, tags[0])), 0);
    assert_int_equal(sl_sink_node_process(s, tagged(pl, 0, tags[0])), SL_EFATAL);
    assert_int_equal(sl_sink_node_process(s, tagged(pl, 0, 1000)), SL_EFATAL);
    assert_int_equal(sl_sink_node_process(s, tagged(pl, 0, tags[1])), 0);
    assert_int_equal(sl_sink_node_process(s, tagged(pl, 0, tags[2])), 0);
    unbuild(&fx);
}

/* A node's tasks run in the pool at the highest level that reaches it or
 * that it gives; with one level in the whole pipeline, at 0. */
static void test_runtime_task_levels(void **state)
{
    (void)state;
    struct fixture fx = {0};
    build(&fx, "sources:\n  hi: { type: generator, count: 1, priority: 9 }\n"
               "  lo: { type: generator, count: 1 }\n"
               "stages:\n  m: { type: map, inputs: [hi, lo], set: { a: '1' } }\n"
               "  n: { type: map, inputs: [lo], set: { b: '1' } }\n"
               "  t: { type: map, inputs: [n], set: { c: '1' }, priority: 'if(b == 1, 7, 0)' }\n"
               "sinks:\n  s: { type: null, inputs: [m, t] }\n");
    assert_int_equal(node_named(fx.pl, "hi")->task_level, 9);
    assert_int_equal(node_named(fx.pl, "lo")->task_level, 0);
    assert_int_equal(node_named(fx.pl, "m")->task_level, 9);
    assert_int_equal(node_named(fx.pl, "n")->task_level, 0);
    assert_int_equal(node_named(fx.pl, "t")->task_level, 7);
    unbuild(&fx);
    build(&fx, "sources:\n  g: { type: generator, count: 1, priority: 5 }\n"
               "stages:\n  m: { type: map, inputs: [g], set: { a: '1' } }\n"
               "sinks:\n  s: { type: null, inputs: [m] }\n");
    assert_int_equal(node_named(fx.pl, "g")->task_level, 0);
    assert_int_equal(node_named(fx.pl, "m")->task_level, 0);
    unbuild(&fx);
}

/* With queues set by hand, while one path's rings hold a source's batches,
 * the copies of the same batches on the other paths wait at the sink for
 * them: the plan sizes blocks for copies x the longest path, not for the
 * rings alone (random DAG seed 2005 peaked at 26 MiB in flight with a 16 MiB
 * limit). Eight maps with queue 16 into one sink with queue 16: 8 copies x
 * 32 slots + 2 threads = 258 decoded batches of about 4x a block (the old
 * plan counted the 144 ring slots). */
static void test_runtime_plan_counts_copies_waiting_at_sinks(void **state)
{
    (void)state;
    char yaml[2048];
    int len = snprintf(yaml, sizeof(yaml),
                       "engine: { threads: 2, memory_limit: 16MiB }\n"
                       "sources:\n  gen: { type: generator, count: 10 }\n"
                       "stages:\n");
    for (int i = 0; i < 8; i++) {
        len += snprintf(yaml + len, sizeof(yaml) - (size_t)len,
                        "  m%d: { type: map, inputs: [gen], set: { k: '%d' }, queue: 16 }\n", i, i);
    }
    snprintf(yaml + len, sizeof(yaml) - (size_t)len,
             "sinks:\n  k: { type: null, queue: 16, inputs: [m0, m1, m2, m3, m4, m5, m6, m7] }\n");
    struct fixture fx = {0};
    build(&fx, yaml);
    struct sl_pipeline *pl = fx.pl;
    uint64_t held = 8 * (16 + 16) + 2;
    assert_true((uint64_t)pl->block_bytes * 4 * held <= fx.conf->memory_limit / 2);
    unbuild(&fx);
}

/* The wide diamond of the hostile probe (60 maps, and 20, behind one
 * fan-out into one sink, 16 MiB): the plan counted one fan-out's copies
 * as a decoded batch each in the whole budget (a window of 4 families of
 * 61 copies of 16 KiB blocks: 34 MiB in flight). Now its families (the
 * batch and a copy per path, COPY_FACTOR decoded batches each) fit half
 * the budget, blocks shrinking for it, and each batch is admitted with a
 * credit for its family. */
static void test_runtime_plan_fits_wide_diamonds(void **state)
{
    (void)state;
    for (int paths = 20; paths <= 60; paths += 40) {
        char yaml[8192];
        int len = snprintf(yaml, sizeof(yaml),
                           "engine: { threads: 2, memory_limit: 16MiB }\n"
                           "sources:\n  gen: { type: generator, count: 10 }\n"
                           "stages:\n  s0: { type: map, inputs: [gen], set: { z: '1' } }\n");
        for (int i = 0; i < paths; i++) {
            len += snprintf(yaml + len, sizeof(yaml) - (size_t)len,
                            "  a%d: { type: map, inputs: [s0], set: { y%d: '1' } }\n", i, i);
        }
        len += snprintf(yaml + len, sizeof(yaml) - (size_t)len,
                        "sinks:\n  k: { type: null, inputs: [");
        for (int i = 0; i < paths; i++) {
            len += snprintf(yaml + len, sizeof(yaml) - (size_t)len, "%sa%d", i > 0 ? ", " : "", i);
        }
        snprintf(yaml + len, sizeof(yaml) - (size_t)len, "] }\n");
        struct fixture fx = {0};
        build(&fx, yaml);
        struct sl_pipeline *pl = fx.pl;
        const struct sl_flow_window *win = &node_named(pl, "gen")->window;
        uint64_t family = (uint64_t)pl->block_plan * 4 * (1 + (uint64_t)paths * 2);
        assert_true(win->max >= 1);
        assert_true(win->max * family <= fx.conf->memory_limit / 2);
        assert_true(atomic_load(&win->growth_x16) > 0);
        assert_true(win->credit_max <= pl->flow.limit / 2);
        unbuild(&fx);
    }
}

/* Copies and forks of a window's batch draw on the credit it was admitted
 * with; a shell (which outlives it) does not; once all are freed, the rest
 * of the credit goes back and the window learnt the family's growth. */
static void test_runtime_copies_draw_on_the_window_credit(void **state)
{
    struct sl_flow flow;
    struct sl_flow_window win = {.flow = &flow, .max = 1, .credit_max = 1 << 20};
    (void)state;

    sl_flow_init(&flow, 4 << 20);
    atomic_init(&win.live, 0);
    atomic_init(&win.growth_x16, 8 * 16);
    struct sl_batch *batch = sl_batch_new(NULL);
    assert_non_null(batch);
    for (int i = 0; i < 100; i++) {
        struct sl_record *rec = sl_batch_add(batch);
        assert_non_null(rec);
        assert_int_equal(sl_record_append(rec, &batch->arena, "id", 2, sl_value_int(i)), 0);
    }
    assert_true(sl_flow_window_try_enter(&win));
    batch->window = &win;
    uint64_t credit = sl_flow_window_credit(&win, sl_batch_adopt_bytes(batch));
    assert_true(credit > 0);
    assert_true(sl_flow_try_acquire(&flow, sl_batch_adopt_bytes(batch) + credit));
    sl_batch_adopt(batch, &flow);
    sl_batch_grant(batch, credit);
    uint64_t used = atomic_load(&flow.used);
    struct sl_batch *copy = sl_batch_make_writable(sl_batch_ref(batch));
    assert_ptr_not_equal(copy, batch);
    struct sl_batch *fork = sl_batch_fork(batch);
    struct sl_batch *shell = sl_batch_shell(batch);
    assert_non_null(fork);
    assert_non_null(shell);
    assert_ptr_equal(copy->credit, &batch->family);
    assert_ptr_equal(fork->credit, &batch->family);
    assert_null(shell->credit);
    /* The copy's arrays came out of the credit; the shell's struct is its
     * own charge. */
    uint64_t drawn = atomic_load(&batch->family.drawn);
    assert_true(drawn > 0 && drawn < credit);
    assert_int_equal(atomic_load(&flow.used), used + sl_batch_bytes(shell));
    sl_batch_unref(shell);
    sl_batch_unref(fork);
    sl_batch_unref(copy);
    assert_int_equal(atomic_load(&win.live), 1);
    sl_batch_unref(batch);
    assert_int_equal(atomic_load(&win.live), 0);
    assert_int_equal(atomic_load(&flow.used), 0);
    assert_true(atomic_load(&win.growth_x16) < 8 * 16);
    sl_flow_release_all(&flow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_runtime_cancelled_reservation_wakes_blocked_producer,
                                        setup, teardown),
        cmocka_unit_test(test_runtime_blocked_fanout_does_not_spin),
        cmocka_unit_test(test_runtime_unpublished_push_does_not_spin_consumer),
        cmocka_unit_test(test_runtime_fork_leaves_dead_letters_on_the_first_path),
        cmocka_unit_test(test_runtime_plan_counts_copies_waiting_at_sinks),
        cmocka_unit_test(test_runtime_fork_reads_the_records_in_place),
        cmocka_unit_test(test_runtime_failed_fork_gives_the_reservation_back),
        cmocka_unit_test(test_runtime_sink_knows_each_copy_by_its_path),
        cmocka_unit_test(test_runtime_dead_letter_ids),
        cmocka_unit_test(test_runtime_dead_reason_is_valid_utf8),
        cmocka_unit_test(test_runtime_task_levels),
        cmocka_unit_test(test_runtime_plan_fits_wide_diamonds),
        cmocka_unit_test(test_runtime_copies_draw_on_the_window_credit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
