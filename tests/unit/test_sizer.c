/* SPDX-License-Identifier: MIT */
/* Unit tests of engine/sizer.c, the `batch.target_latency` sizer, against a
 * simulated single writer whose commit costs a + b * rows: the size it
 * settles on keeps the commit under the target and within 10% of the
 * largest that does; it follows a cost that changes mid-run; and its bounds
 * hold. It aims at 90% of the target. The writer writes what the sizer allows of an ample backlog,
 * as a sink at full speed does. */
#include "sizer.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define MS 1000000ull

struct writer {
    double a_ns, b_ns; /* cost of a commit: a + b * rows */
    double noise;      /* relative */
    uint64_t rng;
};

static double uniform(struct writer *w)
{
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return (double)(w->rng >> 11) / (double)(1ull << 53) * 2.0 - 1.0;
}

static uint64_t cost(struct writer *w, uint64_t rows)
{
    return (uint64_t)((w->a_ns + w->b_ns * (double)rows) * (1.0 + w->noise * uniform(w)));
}

/* Runs n writes; returns the last size and the largest commit time of the
 * last half. Sizes also vary below the limit when the backlog is short:
 * every fifth write takes a third of it. */
static uint64_t run(struct sl_sizer *s, struct writer *w, uint64_t target, int n, uint64_t *worst)
{
    uint64_t rows = 0;

    *worst = 0;
    for (int i = 0; i < n; i++) {
        rows = sl_sizer_limit(s, target);
        if (i % 5 == 4 && rows >= 3) {
            rows /= 3;
        }
        uint64_t ns = cost(w, rows);
        if (i >= n / 2 && ns > *worst) {
            *worst = ns;
        }
        sl_sizer_note(s, rows, ns);
    }
    return sl_sizer_limit(s, target);
}

static void test_settles_under_target(void **state)
{
    (void)state;
    /* 2 ms per commit + 1 us per row, target 20 ms: 16,000 rows at 90%. */
    struct writer w = {.a_ns = 2 * MS, .b_ns = 1000, .noise = 0.02, .rng = 3};
    struct sl_sizer s;
    uint64_t worst;

    sl_sizer_init(&s, 1, 100000);
    uint64_t rows = run(&s, &w, 20 * MS, 400, &worst);
    print_message("settled at %llu rows, worst commit %.2f ms\n", (unsigned long long)rows,
                  (double)worst / 1e6);
    assert_true(rows >= 15200 && rows <= 16000 * 1.03);
    assert_true(worst <= 20 * MS);
}

static void test_follows_a_changing_writer(void **state)
{
    (void)state;
    struct writer w = {.a_ns = 1 * MS, .b_ns = 500, .noise = 0.02, .rng = 5};
    struct sl_sizer s;
    uint64_t worst;

    sl_sizer_init(&s, 1, 1000000);
    uint64_t rows = run(&s, &w, 10 * MS, 300, &worst);
    assert_true(rows >= 15200 && rows <= 16000 * 1.03); /* (9 - 1) ms / 0.5 us */
    /* The disk gets four times slower per row. */
    w.b_ns = 2000;
    rows = run(&s, &w, 10 * MS, 300, &worst);
    print_message("after the change: %llu rows, worst %.2f ms\n", (unsigned long long)rows,
                  (double)worst / 1e6);
    assert_true(rows >= 3800 && rows <= 4000 * 1.03);
    assert_true(worst <= 10 * MS);
}

static void test_bounds(void **state)
{
    (void)state;
    struct writer w = {.a_ns = 50 * MS, .b_ns = 1000, .rng = 7};
    struct sl_sizer s;
    uint64_t worst;

    sl_sizer_init(&s, 100, 5000);
    assert_int_equal(sl_sizer_limit(&s, 10 * MS), 5000); /* nothing seen yet */
    /* A commit alone takes longer than the target: the smallest size. */
    assert_int_equal(run(&s, &w, 10 * MS, 100, &worst), 100);
    /* A generous target: the largest. */
    assert_int_equal(sl_sizer_limit(&s, 10000 * MS), 5000);
    /* Empty writes teach nothing. */
    struct sl_sizer fresh;
    sl_sizer_init(&fresh, 1, 10);
    sl_sizer_note(&fresh, 0, 5 * MS);
    assert_int_equal(sl_sizer_limit(&fresh, 1), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settles_under_target),
        cmocka_unit_test(test_follows_a_changing_writer),
        cmocka_unit_test(test_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
