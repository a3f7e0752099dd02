/* SPDX-License-Identifier: MIT */
/* Unit tests of the built-in stages' process() contract under allocation
 * failure (issue 6, finding 15): filter, map and route take the caller's
 * reference on the batch, so on any failure they must drop it, and with it
 * the batch's memory_limit charge; a shared input stays untouched. Each
 * stage runs on a hand-built node whose outputs have no consumers (emitting
 * then frees the batch), charged through the real source path. The `delay`
 * stage: its config errors, pass-through and counts, and what its calls
 * plan (jitter, saturate_at, a stop), read from its counters. */
#include "conf.h"
#include "err.h"
#include "mem.h"
#include "runtime.h"
#include "stages/delay.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define MAX_OUTS 64

static const char pipeline_yaml[] =
    "sources:\n"
    "  gen: { type: generator }\n"
    "stages:\n"
    "  f: { type: filter, inputs: [gen], where: 'amount > 5' }\n"
    "  m: { type: map, inputs: [gen], set: { cents: 'amount * 100', label: 'concat(name, \"!\")' "
    "}, rename: { name: who }, drop: [extra] }\n"
    "  r: { type: route, inputs: [gen], routes: { big: 'amount > 5', small: 'amount <= 5' } }\n"
    "  d: { type: delay, inputs: [gen], per_batch: 2ms, per_record: 20us }\n"
    "  d7: { type: delay, inputs: [gen], per_batch: 1s, jitter: 50%, seed: 7, workers: 4 }\n"
    "  d8: { type: delay, inputs: [gen], per_batch: 1s, jitter: 50, seed: 8, workers: 4 }\n"
    "  dsat: { type: delay, inputs: [gen], per_batch: 1h, saturate_at: 2, workers: 4 }\n"
    "sinks:\n"
    "  s1: { type: null, inputs: [f, m, d, d7, d8, dsat] }\n"
    "  s2: { type: null, inputs: [r.big, r.small, r._unmatched] }\n";

struct fixture {
    struct sl_conf *conf;
    struct sl_pipeline pl;        /* only what process() reaches: flow, nodes, stop */
    struct sl_node nodes[2];      /* [0] the source (charges batches), [1] the stage */
    struct sl_out outs[MAX_OUTS]; /* the stage's outputs, all without consumers */
    struct sl_node consumer;      /* delay tests: outs[0]'s consumer, whose ring we read */
    struct sl_node *consumers[1];
    uint32_t incs[1]; /* its edge's path increment: 0 */
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    char path[] = "/tmp/sluice-test-stages-XXXXXX";
    struct sl_err err;
    char msg[1024];
    int fd = mkstemp(path);

    assert_non_null(fx);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, pipeline_yaml, sizeof(pipeline_yaml) - 1),
                     (ssize_t)(sizeof(pipeline_yaml) - 1));
    close(fd);
    if (sl_conf_load(path, NULL, 0, &fx->conf, &err) != 0) {
        fail_msg("%s", sl_err_format(&err, msg, sizeof(msg)));
    }
    unlink(path);
    fx->pl.conf = fx->conf;
    sl_flow_init(&fx->pl.flow, 1ull << 30);
    fx->pl.nodes = fx->nodes;
    fx->pl.nnodes = 2;
    struct sl_node *src = &fx->nodes[0];
    src->pl = &fx->pl;
    src->cn = sl_conf_find(fx->conf, "gen");
    src->type = src->cn->type;
    src->name = src->cn->name;
    src->index = 0;
    /* free_slots stays 0: pushing into the ring starts no task. */
    src->in = sl_ring_new(4);
    assert_non_null(src->in);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    sl_ring_free(fx->nodes[0].in);
    sl_ring_free(fx->consumer.in);
    sl_flow_release_all(&fx->pl.flow);
    sl_conf_free(fx->conf);
    free(fx);
    return 0;
}

/* Points the stage node at the config node `name`. */
static struct sl_node *stage_node(struct fixture *fx, const char *name)
{
    struct sl_node *node = &fx->nodes[1];
    const char *names[MAX_OUTS - 1];

    memset(node, 0, sizeof(*node));
    memset(fx->outs, 0, sizeof(fx->outs));
    node->pl = &fx->pl;
    node->cn = sl_conf_find(fx->conf, name);
    assert_non_null(node->cn);
    node->type = node->cn->type;
    node->name = node->cn->name;
    node->index = 1;
    node->outs = fx->outs;
    node->nouts = 1;
    if (node->type->outputs != NULL) {
        size_t n = node->type->outputs(node->cn->conf, names, MAX_OUTS - 1);
        for (size_t i = 0; i < n; i++) {
            fx->outs[1 + i].name = names[i];
        }
        node->nouts += n;
    }
    return node;
}

/* A batch of 10 records (amount 0..9, a name, an extra field) and one whose
 * amount is a string (a type error: a dead letter in every stage), charged
 * to memory_limit the way a source's batch is. */
static struct sl_batch *charged_batch(struct fixture *fx)
{
    struct sl_batch *batch = sl_batch_new(NULL); /* admitted by the push */
    void *item = NULL;

    assert_non_null(batch);
    for (int k = 0; k <= 10; k++) {
        struct sl_record *rec = sl_batch_add(batch);
        assert_non_null(rec);
        struct sl_value amount = k < 10 ? sl_value_int(k) : sl_value_str("x", 1);
        assert_int_equal(sl_record_append(rec, &batch->arena, "amount", 6, amount), 0);
        assert_int_equal(sl_record_append(rec, &batch->arena, "name", 4, sl_value_str("ann", 3)),
                         0);
        assert_int_equal(sl_record_append(rec, &batch->arena, "extra", 5, sl_value_int(k)), 0);
    }
    assert_int_equal(sl_node_source_try_push(&fx->nodes[0], batch), 0);
    assert_int_equal(sl_ring_try_pop(fx->nodes[0].in, &item), 0);
    assert_ptr_equal(item, batch);
    assert_true(atomic_load(&fx->pl.flow.used) > 0);
    return batch;
}

struct call {
    struct sl_node *node;
    struct sl_batch *batch;
    long fail_nth;
    int rc;
};

static void *call_main(void *arg)
{
    struct call *c = arg;

    sl_mem_fail_nth(c->fail_nth);
    c->rc = c->node->type->process(c->node, c->batch);
    sl_mem_fail_nth(0);
    return NULL;
}

/* Runs process() with the fail_nth-th allocation failing. On a thread of
 * its own: the runtime checks emit-once per call with thread-local state. */
static int process_failing(struct sl_node *node, struct sl_batch *batch, long fail_nth)
{
    struct call c = {.node = node, .batch = batch, .fail_nth = fail_nth};
    pthread_t t;

    assert_int_equal(pthread_create(&t, NULL, call_main, &c), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    return c.rc;
}

/* The OOM loop: fail allocation N = 1, 2, ... until process() succeeds.
 * Each failure must return SL_ENOMEM having dropped process()'s reference:
 * when the caller drops the other one (shared) the batch is freed and the
 * whole charge is back. */
static void oom_loop(struct fixture *fx, const char *name, bool shared)
{
    struct sl_node *node = stage_node(fx, name);
    long failures = 0;

    for (long n = 1;; n++) {
        assert_true(n < 10000);
        struct sl_batch *batch = charged_batch(fx);
        if (shared) {
            sl_batch_ref(batch); /* a fan-out sibling still reads it */
        }
        int rc = process_failing(node, batch, n);
        if (shared) {
            /* Untouched, and only the sibling's reference is left. */
            assert_int_equal(batch->n, 11);
            assert_int_equal(atomic_load(&batch->refs), 1);
            sl_batch_unref(batch);
        }
        if (atomic_load(&fx->pl.flow.used) != 0) {
            fail_msg("%s (shared %d), allocation %ld failed (rc %d): %llu bytes still charged",
                     name, shared, n, rc, (unsigned long long)atomic_load(&fx->pl.flow.used));
        }
        if (rc == 0) {
            break;
        }
        assert_int_equal(rc, SL_ENOMEM);
        failures++;
    }
    print_message("%s (shared %d): %ld failing allocations, then success\n", name, shared,
                  failures);
    assert_true(failures > 0);
    /* The string amount went through the dead-letter path. */
    assert_true(atomic_load(&node->c.dead) > 0);
}

/* A copy of a shared batch gives each record exactly its fields: with one
 * field, appending one more wrote past the array into the next record's
 * (a `lines` source read by two maps crashed: hostile probe). */
static void test_append_to_a_one_field_copy(void **state)
{
    (void)state;
    struct sl_batch *b = sl_batch_new(NULL);
    assert_non_null(b);
    for (int i = 0; i < 4; i++) {
        struct sl_record *rec = sl_batch_add(b);
        assert_non_null(rec);
        assert_int_equal(sl_record_append(rec, &b->arena, "message", 7, sl_value_int(i)), 0);
    }
    struct sl_batch *shared = sl_batch_ref(b);
    struct sl_batch *copy = sl_batch_make_writable(b);
    assert_non_null(copy);
    assert_ptr_not_equal(copy, shared);
    for (uint32_t i = 0; i < copy->n; i++) {
        for (int k = 0; k < 3; k++) {
            assert_int_equal(
                sl_record_append(&copy->recs[i], &copy->arena, "added", 5, sl_value_int(100 + k)),
                0);
        }
    }
    for (uint32_t i = 0; i < copy->n; i++) {
        const struct sl_record *rec = &copy->recs[i];
        assert_int_equal(rec->nfields, 4);
        assert_int_equal(rec->fields[0].name_len, 7);
        assert_memory_equal(rec->fields[0].name, "message", 7);
        assert_int_equal(rec->fields[0].val.u.i, (int64_t)i);
        for (int k = 0; k < 3; k++) {
            assert_int_equal(rec->fields[1 + k].val.u.i, 100 + k);
        }
        /* The shared original is untouched. */
        assert_int_equal(shared->recs[i].nfields, 1);
    }
    sl_batch_unref(copy);
    sl_batch_unref(shared);
}

static void test_filter_oom_frees_batch_and_charge_issue6(void **state)
{
    oom_loop(*state, "f", true);
    oom_loop(*state, "f", false);
}

static void test_map_oom_frees_batch_and_charge_issue6(void **state)
{
    oom_loop(*state, "m", true);
    oom_loop(*state, "m", false);
}

static void test_route_oom_frees_batch_and_charge_issue6(void **state)
{
    oom_loop(*state, "r", true);
    oom_loop(*state, "r", false);
}

/* ==== delay ==== */

#define WAIT_NS (30ull * 1000000000ull)
#define MS      1000000ull
#define HOUR    (3600ull * 1000000000ull)

/* Opens the delay node `name` (its state: node->state) with one consumer
 * on its output: a ring without tasks (free_slots 0), so what it emits can
 * be read back. */
static struct sl_node *delay_node(struct fixture *fx, const char *name)
{
    struct sl_node *node = stage_node(fx, name);
    struct sl_err err = {0};

    if (fx->consumer.in == NULL) {
        fx->consumer.in = sl_ring_new(16);
        assert_non_null(fx->consumer.in);
    }
    fx->consumers[0] = &fx->consumer;
    fx->outs[0].to = fx->consumers;
    fx->outs[0].inc = fx->incs;
    fx->outs[0].n = 1;
    assert_int_equal(node->type->open(node, &err), 0);
    assert_non_null(node->state);
    return node;
}

static struct sl_delay_stats delay_stats(const struct sl_node *node)
{
    struct sl_delay_stats s;

    sl_delay_read_stats(node, &s);
    return s;
}

/* Pops the one batch the node emitted: it must be batch itself. */
static void expect_emitted(struct fixture *fx, struct sl_batch *batch)
{
    void *item = NULL;

    assert_int_equal(sl_ring_try_pop(fx->consumer.in, &item), 0);
    assert_ptr_equal(item, batch);
    sl_batch_unref(batch);
}

/* One call on an empty batch (the runtime's reservation first); returns
 * its duration as the stage planned it. */
static uint64_t delay_call(struct fixture *fx, struct sl_node *node)
{
    struct sl_batch *batch = sl_batch_new(NULL);
    uint64_t before = delay_stats(node).planned_ns;

    assert_non_null(batch);
    assert_int_equal(sl_ring_try_reserve(fx->consumer.in), 0);
    assert_int_equal(process_failing(node, batch, 0), 0);
    expect_emitted(fx, batch);
    return delay_stats(node).planned_ns - before;
}

/* A call on its own thread, joined later (calls at once). */
static void call_start(struct call *c, pthread_t *t, struct sl_node *node, struct sl_batch *batch)
{
    *c = (struct call){.node = node, .batch = batch};
    assert_int_equal(pthread_create(t, NULL, call_main, c), 0);
}

/* Waits (polling, at most WAIT_NS) until node has `active` calls in
 * progress. */
static void wait_active(const struct sl_node *node, uint64_t active)
{
    uint64_t deadline = sl_now_ns() + WAIT_NS;

    while (delay_stats(node).active != active) {
        if (sl_now_ns() > deadline) {
            fail_msg("%llu calls in progress, waited for %llu",
                     (unsigned long long)delay_stats(node).active, (unsigned long long)active);
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

/* Records pass through unchanged (the same batch, counted out), empty
 * batches too; a call sleeps per_batch + per_record x records, at least. */
static void test_delay_passes_batches_through_and_counts(void **state)
{
    struct fixture *fx = *state;
    struct sl_node *node = delay_node(fx, "d");
    struct sl_batch *batch = charged_batch(fx);

    assert_int_equal(sl_ring_try_reserve(fx->consumer.in), 0);
    uint64_t t0 = sl_now_ns();
    assert_int_equal(process_failing(node, batch, 0), 0);
    uint64_t took = sl_now_ns() - t0;
    struct sl_delay_stats s = delay_stats(node);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.planned_ns, 2 * MS + 11 * 20000);
    assert_true(took >= s.planned_ns);
    assert_int_equal(s.active, 0);
    assert_int_equal(s.peak, 1);
    assert_int_equal(s.cut, 0);
    assert_int_equal(s.credit_ns, 0);
    assert_int_equal(batch->n, 11);
    for (int k = 0; k < 10; k++) {
        struct sl_field *f = sl_record_find(&batch->recs[k], "amount", 6);
        assert_non_null(f);
        assert_int_equal(f->val.type, SL_TYPE_INT);
        assert_int_equal(f->val.u.i, k);
    }
    assert_int_equal(atomic_load(&node->c.out), 11);
    expect_emitted(fx, batch);
    assert_int_equal(atomic_load(&fx->pl.flow.used), 0);

    /* An empty batch is a call too, and is emitted (sinks need it). It
     * sleeps the first call's lateness (a timer wakes late) less, so that
     * back-to-back calls add up to what they asked; the planned time
     * stays as asked. */
    assert_int_equal(delay_call(fx, node), 2 * MS);
    assert_int_equal(delay_stats(node).calls, 2);
    assert_true(delay_stats(node).credit_ns > 0);
    assert_true(delay_stats(node).credit_ns <= 200000);
    assert_int_equal(atomic_load(&node->c.out), 11);
    node->type->close(node);
    assert_null(node->state);
}

/* Jitter: each call within [1 - j, 1 + j] x per_batch, not all the same;
 * the same seed gives the same durations, another seed others. A stopped
 * pipeline does not sleep: every call is cut short, and still planned. */
static void test_delay_jitter_is_seeded(void **state)
{
    struct fixture *fx = *state;
    uint64_t a[50], b[50], c[50];
    bool varies = false, differs = false;
    const char *names[] = {"d7", "d7", "d8"};
    uint64_t *runs[] = {a, b, c};

    atomic_store(&fx->pl.stop, true);
    for (size_t r = 0; r < 3; r++) {
        struct sl_node *node = delay_node(fx, names[r]);
        for (size_t i = 0; i < 50; i++) {
            runs[r][i] = delay_call(fx, node);
            assert_true(runs[r][i] >= 500 * MS && runs[r][i] <= 1500 * MS);
        }
        assert_int_equal(delay_stats(node).cut, 50);
        node->type->close(node);
    }
    for (size_t i = 0; i < 50; i++) {
        assert_int_equal(a[i], b[i]);
        varies |= a[i] != a[0];
        differs |= a[i] != c[i];
    }
    assert_true(varies);
    assert_true(differs);
}

/* saturate_at 2: calls 1 and 2 at once take per_batch, a third that starts
 * while they are in progress takes 3/2 of it. A stop cuts all three short
 * (calls of an hour: the sleep notices it within its slice) and each batch
 * is still emitted. */
static void test_delay_saturate_slows_calls_past_the_knee(void **state)
{
    struct fixture *fx = *state;
    struct sl_node *node = delay_node(fx, "dsat");
    struct sl_batch *batches[3];
    struct call calls[3];
    pthread_t threads[3];

    for (size_t i = 0; i < 3; i++) {
        batches[i] = sl_batch_new(NULL);
        assert_non_null(batches[i]);
        assert_int_equal(sl_ring_try_reserve(fx->consumer.in), 0);
        call_start(&calls[i], &threads[i], node, batches[i]);
        wait_active(node, i + 1);
    }
    atomic_store(&fx->pl.stop, true);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(calls[i].rc, 0);
    }
    struct sl_delay_stats s = delay_stats(node);
    assert_int_equal(s.calls, 3);
    assert_int_equal(s.peak, 3);
    assert_int_equal(s.slowed, 1);
    assert_int_equal(s.planned_ns, HOUR + HOUR + HOUR * 3 / 2);
    assert_int_equal(s.cut, 3);
    assert_int_equal(s.active, 0);
    for (size_t i = 0; i < 3; i++) {
        void *item = NULL;
        assert_int_equal(sl_ring_try_pop(fx->consumer.in, &item), 0);
        sl_batch_unref(item);
    }
    node->type->close(node);
}

/* open fails cleanly when out of memory; the summary's counters read 0. */
static void test_delay_open_oom(void **state)
{
    struct fixture *fx = *state;
    struct sl_node *node = stage_node(fx, "d");
    struct sl_err err = {0};

    sl_mem_fail_nth(1);
    assert_int_equal(node->type->open(node, &err), SL_ENOMEM);
    sl_mem_fail_nth(0);
    assert_null(node->state);
    assert_int_equal(delay_stats(node).calls, 0);
    node->type->close(node);
}

/* Loads a one-delay pipeline whose stage options are `opts`, with --set
 * `set` (or none); returns the error formatted without the file name, ""
 * when it loads. */
static const char *load_delay(const char *opts, const char *set, char *buf, size_t len)
{
    char path[] = "/tmp/sluice-test-delay-XXXXXX";
    char yaml[512], msg[1024];
    struct sl_conf *conf = NULL;
    struct sl_err err = {0};
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    int n = snprintf(yaml, sizeof(yaml),
                     "sources:\n  gen: { type: generator }\n"
                     "stages:\n  d: { type: delay, inputs: [gen], %s }\n"
                     "sinks:\n  s: { type: null, inputs: [d] }\n",
                     opts);
    assert_int_equal(write(fd, yaml, (size_t)n), n);
    close(fd);
    int rc = sl_conf_load(path, set != NULL ? &set : NULL, set != NULL ? 1 : 0, &conf, &err);
    unlink(path);
    sl_conf_free(conf);
    if (rc == 0) {
        return "";
    }
    assert_int_equal(rc, SL_ECONFIG);
    sl_err_format(&err, msg, sizeof(msg));
    const char *at = strncmp(msg, path, strlen(path)) == 0 ? msg + strlen(path) : msg;
    snprintf(buf, len, "%s", at);
    return buf;
}

static void test_delay_config_errors(void **state)
{
    const char *cases[][3] = {
        {"jitter: 10%", NULL,
         ":4:3: stages.d: delay needs per_batch or per_record (or both) above 0"},
        {"per_batch: 0s, per_record: 0", NULL,
         ":4:3: stages.d: delay needs per_batch or per_record (or both) above 0"},
        {"per_batch: 2ms, jitter: 150%", NULL,
         ":4:60: stages.d.jitter: must be between 0% and 100%, got 150%"},
        {"per_batch: 2ms, jitter: -1", NULL,
         ":4:60: stages.d.jitter: must be between 0% and 100%, got -1"},
        {"per_batch: 2ms, jitter: 10 %", NULL,
         ":4:60: stages.d.jitter: expected a percentage such as 10% (or a number from 0 to 100), "
         "got '10 %'"},
        {"per_batch: 2ms, jitter: 1e1", NULL,
         ":4:60: stages.d.jitter: expected a percentage such as 10% (or a number from 0 to 100), "
         "got '1e1'"},
        {"per_batch: 2ms", "stages.d.jitter=lots",
         "--set: stages.d.jitter: expected a percentage such as 10% (or a number from 0 to 100), "
         "got 'lots'"},
        {"per_batch: 2ms, saturate_at: 0", NULL,
         ":4:65: stages.d.saturate_at: must be between 1 and 1000000, got 0"},
        {"per_batch: 2h", NULL, ":4:47: stages.d.per_batch: must be between 0 and 1h, got 2h"},
        {"per_record: 20", NULL,
         ":4:48: stages.d.per_record: a duration needs a unit (ns, us, ms, s, m, h), got '20'"},
        {"per_batch: 2ms, jitter: 100%, saturate_at: 8, workers: 64", NULL, ""},
        {"per_record: 1us, jitter: 12.5", NULL, ""},
        {"per_batch: 1h, jitter: 0", NULL, ""},
    };
    char buf[1024];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = load_delay(cases[i][0], cases[i][1], buf, sizeof(buf));

        if (strcmp(got, cases[i][2]) != 0) {
            fail_msg("%s (--set %s):\n    want %s\n    got  %s", cases[i][0],
                     cases[i][1] ? cases[i][1] : "-", cases[i][2], got);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_to_a_one_field_copy),
        cmocka_unit_test_setup_teardown(test_filter_oom_frees_batch_and_charge_issue6, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_map_oom_frees_batch_and_charge_issue6, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_route_oom_frees_batch_and_charge_issue6, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delay_passes_batches_through_and_counts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delay_jitter_is_seeded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay_saturate_slows_calls_past_the_knee, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_delay_open_oom, setup, teardown),
        cmocka_unit_test(test_delay_config_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
