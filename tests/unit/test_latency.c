/* SPDX-License-Identifier: MIT */
/* Unit tests of engine/latency.c: quantiles within the buckets' 1/16
 * precision on known distributions, weights, the max, and empty
 * histograms. */
#include "latency.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

static struct sl_latency *new_hist(void)
{
    struct sl_latency *h = calloc(1, sizeof(*h));

    assert_non_null(h);
    return h;
}

/* |got - want| within 1/16 of want (the bucket width), or 1 us. */
static void assert_near(uint64_t got, uint64_t want)
{
    uint64_t tol = want / 16 > 1 ? want / 16 : 1;

    if (got + tol < want || got > want + tol) {
        fail_msg("got %llu us, want %llu us (+-%llu)", (unsigned long long)got,
                 (unsigned long long)want, (unsigned long long)tol);
    }
}

static void test_uniform(void **state)
{
    (void)state;
    struct sl_latency *h = new_hist();

    /* 1..100000 us, one each. */
    for (uint64_t us = 1; us <= 100000; us++) {
        sl_latency_add(h, us * 1000, 1);
    }
    assert_near(sl_latency_quantile(h, 0.5), 50000);
    assert_near(sl_latency_quantile(h, 0.99), 99000);
    assert_int_equal(sl_latency_quantile(h, 1.0), 100000);
    assert_int_equal(atomic_load(&h->max_us), 100000);
    assert_int_equal(sl_latency_quantile(h, 0.00001), 1);
    free(h);
}

static void test_weights_and_small_values(void **state)
{
    (void)state;
    struct sl_latency *h = new_hist();

    /* 990 records at 3 us (one batch), 10 at 7 ms: p50 exact, p99 is the
     * last of the fast ones, p99.5 a slow one. */
    sl_latency_add(h, 3000, 990);
    sl_latency_add(h, 7000000, 10);
    sl_latency_add(h, 5000, 0); /* an empty batch counts nothing */
    assert_int_equal(atomic_load(&h->total), 1000);
    assert_int_equal(sl_latency_quantile(h, 0.5), 3);
    assert_int_equal(sl_latency_quantile(h, 0.99), 3);
    assert_near(sl_latency_quantile(h, 0.995), 7000);
    assert_int_equal(atomic_load(&h->max_us), 7000);
    free(h);
}

static void test_empty_and_huge(void **state)
{
    (void)state;
    struct sl_latency *h = new_hist();

    assert_int_equal(sl_latency_quantile(h, 0.5), 0);
    /* Past the last bucket's range: kept in the last bucket, max exact. */
    sl_latency_add(h, UINT64_MAX, 1);
    assert_int_equal(sl_latency_quantile(h, 0.5), UINT64_MAX / 1000);
    free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_weights_and_small_values),
        cmocka_unit_test(test_empty_and_huge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
