/* SPDX-License-Identifier: MIT */
/* Unit tests of the dead-letter store as the SQLite sink reaches it from
 * inside its write transaction (sl_sink_store_rejects, before COMMIT), and
 * of the positions a sink reports as committed (sl_acks_get). A
 * pipeline is built from a YAML file but its sources are never started: the
 * test hands a batch to the sink on a helper thread, so that a write that
 * never returns fails the test instead of hanging it. */
#include "batch.h"
#include "conf.h"
#include "runtime.h"
#include "sink.h"

#include <pthread.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

/* A write of two records takes milliseconds; this only keeps a stuck one
 * from hanging the test. */
#define WRITE_WAIT_NS (20ull * 1000000000ull)

struct fixture {
    char dir[64];
    char yaml[128];
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

static void exec_sql(const char *path, const char *sql)
{
    sqlite3 *db = NULL;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int64_t q_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;

    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Builds the pipeline of yaml_fmt (%s: the test's directory). */
static void build(struct fixture *fx, const char *yaml_fmt)
{
    struct sl_err err = {0};

    snprintf(fx->yaml, sizeof(fx->yaml), "%s/p.yaml", fx->dir);
    FILE *f = fopen(fx->yaml, "w");
    assert_non_null(f);
    fprintf(f, yaml_fmt, fx->dir, fx->dir);
    fclose(f);
    if (sl_conf_load(fx->yaml, NULL, 0, &fx->conf, &err) != 0 ||
        sl_pipeline_new(fx->conf, &fx->pl, &err) != 0) {
        fail_msg("build: %s", err.msg);
    }
}

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL) {
        return -1;
    }
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl_dead_store_XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;
    char cmd[128];

    sl_pipeline_free(fx->pl);
    sl_conf_free(fx->conf);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
    (void)!system(cmd);
    free(fx);
    return 0;
}

/* Two records for sink s: one good, one whose fields collide in case (the
 * SQLite writer rejects it: a dead letter of s). */
static struct sl_batch *batch_with_a_reject(struct sl_pipeline *pl)
{
    struct sl_batch *b = sl_batch_new(NULL);

    assert_non_null(b);
    b->source = node_named(pl, "gen")->index;
    b->stream_name = "in";
    b->pos_start = 0;
    b->pos_end = 2;
    for (int i = 0; i < 2; i++) {
        struct sl_record *rec = sl_batch_add(b);
        assert_non_null(rec);
        rec->meta.stream = "in";
        rec->meta.offset = i;
        rec->meta.line = i + 1;
        assert_int_equal(sl_record_append(rec, &b->arena, "id", 2, sl_value_int(i)), 0);
        if (i == 1) {
            assert_int_equal(sl_record_append(rec, &b->arena, "ID", 2, sl_value_int(i)), 0);
        }
    }
    return b;
}

struct writer {
    struct sl_node *sink;
    struct sl_batch *batch;
    int rc;
    atomic_bool done;
};

static void *write_thread(void *arg)
{
    struct writer *w = arg;

    w->rc = sl_sink_process(sl_sink_of(w->sink), w->batch);
    atomic_store(&w->done, true);
    return NULL;
}

/* Hands the batch to sink s as its task would, on another thread. Returns
 * whether the write returned within WRITE_WAIT_NS (and its result); if not,
 * the thread is left behind, stuck. */
static bool write_returns(struct fixture *fx, int *ret_rc)
{
    struct writer *w = calloc(1, sizeof(*w)); /* leaked when stuck */
    pthread_t t;

    assert_non_null(w);
    w->sink = node_named(fx->pl, "s");
    w->batch = batch_with_a_reject(fx->pl);
    assert_int_equal(pthread_create(&t, NULL, write_thread, w), 0);
    uint64_t deadline = sl_now_ns() + WRITE_WAIT_NS;
    while (!atomic_load(&w->done) && sl_now_ns() < deadline) {
        usleep(1000);
    }
    if (!atomic_load(&w->done)) {
        /* Wakes retry back-offs: a write only waiting on those returns now. */
        struct sl_err err = {.code = SL_ETIMEDOUT};
        sl_pipeline_fail(fx->pl, &err);
        deadline = sl_now_ns() + WRITE_WAIT_NS;
        while (!atomic_load(&w->done) && sl_now_ns() < deadline) {
            usleep(1000);
        }
        if (!atomic_load(&w->done)) {
            (void)pthread_detach(t);
            return false;
        }
    }
    pthread_join(t, NULL);
    *ret_rc = w->rc;
    free(w);
    return true;
}

/* The store is a user-made table whose CHECK refuses the dead letter of s.
 * The store's writer rejects it, and its before_commit hands that reject
 * to... the store itself: deliver_dead locks store->dead_lock, which the
 * sink's deliver_dead already holds on this thread (and the store's own
 * sqlite mutex too). Before 82cd83c the store's rejects were only counted
 * after its commit. The write must return (the run may fail or count the
 * dead letter as lost, but the sink's thread must not be stuck holding its
 * write transaction). */
static void test_dead_store_that_rejects_does_not_deadlock(void **state)
{
    struct fixture *fx = *state;
    char dl[128];
    int rc = 0;

    snprintf(dl, sizeof(dl), "%s/dl.db", fx->dir);
    exec_sql(dl, "CREATE TABLE dead(_error TEXT CHECK (_error NOT LIKE '%collides%'))");
    build(fx, "engine: { threads: 1 }\n"
              "sources:\n  gen: { type: generator, count: 10 }\n"
              "sinks:\n  s: { type: sqlite, inputs: [gen], path: '%s/a.db', table: t }\n"
              "dead_letter: { type: sqlite, path: '%s/dl.db', table: dead }\n");
    bool returned = write_returns(fx, &rc);
    if (!returned) {
        /* The stuck thread still uses them: leave them be. */
        fx->pl = NULL;
        fx->conf = NULL;
        fail_msg("the sink's write is stuck: the store's reject re-entered the store "
                 "(dead_lock held by the same thread)");
    }
    /* The dead letter the store refused is counted dead at the store (and
     * logged): in = out + dead there. */
    const struct sl_counters *c = &fx->pl->dead_letter->c;
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&c->in), 1);
    assert_int_equal(atomic_load(&c->out), 0);
    assert_int_equal(atomic_load(&c->dead), 1);
}

/* The store is another table of the sink's own file, spelled differently
 * ("dir/a.db" and "dir/./a.db": one file, as same_path says). The sink does
 * not see that it shares the file (same_file_dead_table compares with
 * strcmp), so it stores its reject through the store's own connection from
 * inside its BEGIN IMMEDIATE: that connection waits for the write lock the
 * sink holds, busy_timeout after busy_timeout, retry after retry. Before
 * 82cd83c the rejects were stored after the commit and this worked. */
static void test_dead_store_in_same_file_spelled_differently(void **state)
{
    struct fixture *fx = *state;
    char db[128];
    int rc = -1;

    build(fx, "engine: { threads: 1 }\n"
              "sources:\n  gen: { type: generator, count: 10 }\n"
              "sinks:\n  s: { type: sqlite, inputs: [gen], path: '%s/a.db', table: t }\n"
              "dead_letter: { type: sqlite, path: '%s/./a.db', table: dead }\n");
    bool returned = write_returns(fx, &rc);
    if (!returned) {
        fx->pl = NULL;
        fx->conf = NULL;
        fail_msg("the sink's write is stuck");
    }
    assert_int_equal(rc, 0);
    assert_false(atomic_load(&fx->pl->failed));
    snprintf(db, sizeof(db), "%s/a.db", fx->dir);
    assert_int_equal(q_int(db, "SELECT count(*) FROM t"), 1);
    assert_int_equal(q_int(db, "SELECT count(*) FROM dead"), 1);
}

/* Records ids [from, to) at offsets [from, to), as sequence seq of stream
 * "t" of source gen. */
static struct sl_batch *kafka_like(struct sl_pipeline *pl, uint64_t seq, int64_t from, int64_t to)
{
    struct sl_batch *b = sl_batch_new(NULL);

    assert_non_null(b);
    b->source = node_named(pl, "gen")->index;
    b->stream_name = "t";
    b->seq = seq;
    b->pos_start = from;
    b->pos_end = to;
    for (int64_t i = from; i < to; i++) {
        struct sl_record *rec = sl_batch_add(b);
        assert_non_null(rec);
        rec->meta.offset = i;
        assert_int_equal(sl_record_append(rec, &b->arena, "id", 2, sl_value_int(i)), 0);
    }
    return b;
}

/* Offsets that go back in the middle of a run (a topic recreated, an
 * offset reset): what the sink reports as committed follows them, so the
 * group's offset is not left at the old, higher one (a restart would skip
 * the new records below it). */
static void test_sink_committed_follows_an_offset_reset(void **state)
{
    struct fixture *fx = *state;
    int64_t pos = -1;

    build(fx, "sources:\n  gen: { type: generator, count: 1 }\n"
              "sinks:\n  s: { type: file, inputs: [gen], path: '%s/out.jsonl' }\n# %s\n");
    struct sl_sink *sink = sl_sink_of(node_named(fx->pl, "s"));
    uint32_t src = node_named(fx->pl, "gen")->index;
    assert_int_equal(sl_sink_process(sink, kafka_like(fx->pl, 0, 0, 300)), 0);
    assert_int_equal(sl_acks_get(&sink->acks, src, 0, 0, &pos), 0);
    assert_int_equal(pos, 300);
    assert_int_equal(sl_sink_process(sink, kafka_like(fx->pl, 1, 0, 50)), 0);
    assert_int_equal(sl_acks_get(&sink->acks, src, 0, 0, &pos), 0);
    assert_int_equal(pos, 50);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dead_store_that_rejects_does_not_deadlock, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sink_committed_follows_an_offset_reset, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dead_store_in_same_file_spelled_differently, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
