/* SPDX-License-Identifier: MIT */
/* Unit tests of the built-in stages' process() contract under allocation
 * failure (issue 6, finding 15): filter, map and route take the caller's
 * reference on the batch, so on any failure they must drop it, and with it
 * the batch's memory_limit charge; a shared input stays untouched. Each
 * stage runs on a hand-built node whose outputs have no consumers (emitting
 * then frees the batch), charged through the real source path. */
#include "conf.h"
#include "err.h"
#include "mem.h"
#include "runtime.h"

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
    "sinks:\n"
    "  s1: { type: null, inputs: [f, m] }\n"
    "  s2: { type: null, inputs: [r.big, r.small, r._unmatched] }\n";

struct fixture {
    struct sl_conf *conf;
    struct sl_pipeline pl;        /* only what process() reaches: flow, nodes */
    struct sl_node nodes[2];      /* [0] the source (charges batches), [1] the stage */
    struct sl_out outs[MAX_OUTS]; /* the stage's outputs, all without consumers */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_filter_oom_frees_batch_and_charge_issue6, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_map_oom_frees_batch_and_charge_issue6, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_route_oom_frees_batch_and_charge_issue6, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
