/* SPDX-License-Identifier: MIT */
/* Unit tests of engine/bucket.c, the throttle's GCRA buckets and their LRU
 * map, on a virtual clock in integer nanoseconds: in any window [a, b] at
 * most burst + rate x (b - a) events pass (a sliding-window scan over
 * randomized arrivals), the long-run rate is reached (the bound is tight),
 * nothing drifts over 1e9 events (TAT against its closed form), the leaky
 * bucket spaces events evenly, and the map evicts the least recently used
 * key, counting it. */
#include "bucket.h"
#include "err.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define SEC 1000000000ull

/* test_no_drift's long run: 1e9 events, 1e8 under the sanitizers (the
 * bucket is pure integer arithmetic; ThreadSanitizer takes 100 s for 1e9). */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define LONG_RUN 100000000ull
#else
#define LONG_RUN 1000000000ull
#endif

typedef unsigned __int128 u128;

/* T = 1e9 q / p ns: the emission interval, exactly, as 1e9 q in 1/p ns. */
static uint64_t t_scaled(const struct sl_bucket_rate *r)
{
    return SEC * r->q;
}

static void test_rate_fractions(void **state)
{
    (void)state;
    static const struct {
        double rate;
        uint64_t p, q;
    } cases[] = {
        {3, 3, 1},          {1000, 1000, 1},      {7.0 / 3, 7, 3}, {1e6, 1000000, 1},
        {0.001, 1, 1000},   {50000.5, 100001, 2}, {0.1, 1, 10},    {1e9, 1000000000, 1},
        {1e-6, 1, 1000000}, {2.5, 5, 2},
    };
    struct sl_bucket_rate r;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(sl_bucket_rate_init(&r, cases[i].rate, 1, SL_BUCKET_ALGORITHM_TOKEN), 0);
        assert_int_equal(r.p, cases[i].p);
        assert_int_equal(r.q, cases[i].q);
    }
    /* 7/3: T = 428571428 + 4/7 ns. */
    assert_int_equal(sl_bucket_rate_init(&r, 7.0 / 3, 5, SL_BUCKET_ALGORITHM_TOKEN), 0);
    assert_int_equal(r.inc_ns, 428571428);
    assert_int_equal(r.inc_rem, 4);
    assert_true(r.tau == (u128)4 * 3 * SEC);
    /* An irrational-looking rate still gets a fraction within 2^-50. */
    assert_int_equal(sl_bucket_rate_init(&r, M_PI * 1000, 1, SL_BUCKET_ALGORITHM_TOKEN), 0);
    assert_true(fabsl((long double)r.p / r.q - M_PI * 1000) <= M_PI * 1000 * 0x1p-40);
    /* The leaky bucket has no burst. */
    assert_int_equal(sl_bucket_rate_init(&r, 10, 50, SL_BUCKET_ALGORITHM_LEAKY), 0);
    assert_int_equal(r.burst, 1);
    assert_true(r.tau == 0);
}

static void test_rate_init_refuses(void **state)
{
    (void)state;
    struct sl_bucket_rate r = {.p = 42};
    const double bad[] = {0, -1, -0.0, 1e-7, 1e9 + 1, INFINITY, NAN};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(sl_bucket_rate_init(&r, bad[i], 1, SL_BUCKET_ALGORITHM_TOKEN), SL_EINVAL);
    }
    assert_int_equal(sl_bucket_rate_init(&r, 10, 0, SL_BUCKET_ALGORITHM_TOKEN), SL_EINVAL);
    assert_int_equal(
        sl_bucket_rate_init(&r, 10, SL_BUCKET_BURST_MAX + 1ull, SL_BUCKET_ALGORITHM_TOKEN),
        SL_EINVAL);
    assert_int_equal(sl_bucket_rate_init(&r, 10, 1, SL_BUCKET_ALGORITHM_COUNT), SL_EINVAL);
    assert_int_equal(r.p, 42); /* untouched */
}

/* A token bucket passes its burst at once, then one event per T. */
static void test_token_burst_then_rate(void **state)
{
    (void)state;
    struct sl_bucket_rate r;
    struct sl_bucket b;

    assert_int_equal(sl_bucket_rate_init(&r, 1000, 100, SL_BUCKET_ALGORITHM_TOKEN), 0);
    sl_bucket_init(&b);
    uint64_t t0 = 5 * SEC;
    for (int i = 0; i < 100; i++) {
        assert_true(sl_bucket_take(&r, &b, t0));
    }
    assert_false(sl_bucket_take(&r, &b, t0));
    /* The 101st passes 1 ms later, not 1 ns before. */
    assert_int_equal(sl_bucket_next_ns(&r, &b, t0), t0 + 1000000);
    assert_false(sl_bucket_take(&r, &b, t0 + 999999));
    assert_true(sl_bucket_take(&r, &b, t0 + 1000000));
    assert_false(sl_bucket_take(&r, &b, t0 + 1000000));
    /* Idle for a second: full again, but no fuller. */
    uint64_t t1 = t0 + 2 * SEC;
    int n = 0;
    while (sl_bucket_take(&r, &b, t1)) {
        n++;
    }
    assert_int_equal(n, 100);
    assert_int_equal(sl_bucket_next_ns(&r, &b, t1 + 7), t1 + 1000000);
}

/* xorshift64*: reproducible arrivals. */
static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

/* Up to n arrival times from time 0: exponential gaps of mean T x load,
 * with now and then a burst of simultaneous arrivals or a long idle gap. */
static size_t arrivals(uint64_t *t, size_t n, double t_ns, double load, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    uint64_t now = 1000;
    size_t i = 0;

    while (i < n) {
        uint64_t x = next_rand(&s);
        double u = ((double)(x >> 11) + 0.5) * 0x1p-53;
        if (x % 97 == 0) {
            for (size_t k = 0; k < x % 300 && i < n; k++) {
                t[i++] = now; /* a burst */
            }
            continue;
        }
        if (x % 89 == 0) {
            now += (uint64_t)(t_ns * (double)(x % 500)); /* idle */
        }
        now += (uint64_t)(-log(u) * t_ns * load);
        t[i++] = now;
    }
    return i;
}

/* The sliding-window bound over the passed events' times: for every i <= j,
 * (j - i + 1) events in [t_i, t_j] need (j - i + 1 - burst) T <= t_j - t_i,
 * that is g(j) - g(i) <= (burst - 1) T with g(k) = k T - t_k (scaled by p:
 * exact). A running minimum of g makes it one pass. Windows that start or
 * end between events hold no more, so this is every window. round_ns
 * widens each window: reserved admissions are exact times rounded up to
 * whole ns, so two of them may be up to 1 ns closer than T. */
static void
check_windows(const struct sl_bucket_rate *r, const uint64_t *pass, size_t n, uint64_t round_ns)
{
    __int128 lowest = 0;
    __int128 slack = (__int128)(r->burst - 1) * t_scaled(r) + (__int128)round_ns * r->p;

    for (size_t k = 0; k < n; k++) {
        __int128 g = (__int128)k * t_scaled(r) - (__int128)pass[k] * r->p;
        if (k == 0 || g < lowest) {
            lowest = g;
        }
        if (g - lowest > slack) {
            fail_msg("window ending at event %zu (t=%llu ns) holds more than burst %llu + rate x "
                     "length",
                     k, (unsigned long long)pass[k], (unsigned long long)r->burst);
        }
    }
}

static void test_window_bound_random(void **state)
{
    (void)state;
    static const struct {
        double rate;
        uint64_t burst;
        enum sl_bucket_algorithm alg;
    } cases[] = {
        {3, 1, SL_BUCKET_ALGORITHM_TOKEN},       {3, 10, SL_BUCKET_ALGORITHM_TOKEN},
        {1000, 100, SL_BUCKET_ALGORITHM_TOKEN},  {1000, 1, SL_BUCKET_ALGORITHM_LEAKY},
        {7.0 / 3, 4, SL_BUCKET_ALGORITHM_TOKEN}, {7.0 / 3, 1, SL_BUCKET_ALGORITHM_LEAKY},
        {1e6, 1000, SL_BUCKET_ALGORITHM_TOKEN},  {1e6, 1, SL_BUCKET_ALGORITHM_LEAKY},
        {0.5, 3, SL_BUCKET_ALGORITHM_TOKEN},     {123456.789, 77, SL_BUCKET_ALGORITHM_TOKEN},
    };
    static const double loads[] = {0.05, 0.5, 1, 3};
    enum { N = 200000 };
    uint64_t *t = malloc(N * sizeof(*t));
    uint64_t *pass = malloc(N * sizeof(*pass));
    assert_non_null(t);
    assert_non_null(pass);

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct sl_bucket_rate r;
        assert_int_equal(sl_bucket_rate_init(&r, cases[c].rate, cases[c].burst, cases[c].alg), 0);
        double t_ns = 1e9 / cases[c].rate;
        for (size_t l = 0; l < sizeof(loads) / sizeof(loads[0]); l++) {
            size_t n = arrivals(t, N, t_ns, loads[l], c * 31 + l + 1);
            struct sl_bucket b;
            sl_bucket_init(&b);
            size_t np = 0;
            for (size_t i = 0; i < n; i++) {
                if (sl_bucket_take(&r, &b, t[i])) {
                    pass[np++] = t[i];
                }
            }
            assert_true(np > 0);
            check_windows(&r, pass, np, 0);
            /* Waiting mode: every event admitted, at its reserved time. */
            sl_bucket_init(&b);
            for (size_t i = 0; i < n; i++) {
                uint64_t at = sl_bucket_reserve(&r, &b, t[i]);
                assert_true(at >= t[i]);
                assert_true(i == 0 || at >= pass[i - 1]);
                pass[i] = at;
            }
            check_windows(&r, pass, n, 1);
        }
    }
    free(t);
    free(pass);
}

/* The bound is tight: arrivals 10 times faster than the rate for a long
 * run (100 s, or 1e5 T when shorter) pass exactly burst + floor(run / T)
 * events (to the arrival grid). With
 * burst >= 2 the tolerance absorbs an arrival's lateness; with burst 1 a
 * late arrival restarts the clock at its own time (GCRA's nature: the
 * throttle spreads a batch's arrivals, see stages/throttle.c). */
static void test_long_run_rate_reached(void **state)
{
    (void)state;
    static const double rates[] = {3, 1000, 7.0 / 3, 1e6};
    static const uint64_t bursts[] = {2, 7, 100};

    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 3; j++) {
            struct sl_bucket_rate r;
            struct sl_bucket b;
            assert_int_equal(
                sl_bucket_rate_init(&r, rates[i], bursts[j], SL_BUCKET_ALGORITHM_TOKEN), 0);
            sl_bucket_init(&b);
            uint64_t step = (r.inc_ns + 1) / 10 + 1; /* 10 arrivals per T */
            uint64_t passed = 0;
            uint64_t run = 100000 * r.inc_ns < 100 * SEC ? 100000 * r.inc_ns : 100 * SEC;
            for (uint64_t now = 0; now <= run; now += step) {
                passed += sl_bucket_take(&r, &b, now);
            }
            /* Event k passes at the first arrival at or after k T - tau: those
             * with k T - tau <= the last arrival. */
            uint64_t last = run / step * step;
            uint64_t want = (uint64_t)(((u128)last * r.p + r.tau) / t_scaled(&r)) + 1;
            assert_int_equal(passed, want);
        }
    }
}

/* 1e9 events through a bucket kept saturated (each arrives at TAT's whole
 * ns, within the tolerance): TAT after N events is N T, to the 1/p ns, in
 * closed form; nothing drifts. (A bucket that rounded T to whole ns would
 * be 0.43 s off at 7/3 per s.) Reserved admissions (waiting mode) too: the
 * k-th at ceil((k - burst + 1) T), and TAT N T after N of them. */
static void test_no_drift(void **state)
{
    (void)state;
    static const double rates[] = {7.0 / 3, 1e6, 3, 123456.789};

    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        struct sl_bucket_rate r;
        struct sl_bucket b;
        assert_int_equal(sl_bucket_rate_init(&r, rates[i], 5, SL_BUCKET_ALGORITHM_TOKEN), 0);
        uint64_t count = i == 0 ? LONG_RUN : 10000000ull;
        sl_bucket_init(&b);
        for (uint64_t k = 0; k < count; k++) {
            if (!sl_bucket_take(&r, &b, b.tat_ns)) {
                fail_msg("event %llu refused on time", (unsigned long long)k);
            }
        }
        u128 tat = (u128)count * t_scaled(&r);
        assert_int_equal(b.tat_ns, (uint64_t)(tat / r.p));
        assert_int_equal(b.tat_rem, (uint64_t)(tat % r.p));

        count = 10000000;
        sl_bucket_init(&b);
        uint64_t at = 0;
        for (uint64_t k = 0; k < count; k++) {
            at = sl_bucket_reserve(&r, &b, 0);
        }
        tat = (u128)count * t_scaled(&r);
        assert_int_equal(b.tat_ns, (uint64_t)(tat / r.p));
        assert_int_equal(b.tat_rem, (uint64_t)(tat % r.p));
        u128 last = (u128)(count - r.burst) * t_scaled(&r);
        assert_int_equal(at, (uint64_t)((last + r.p - 1) / r.p));
    }
}

/* The leaky bucket: every gap between passed events is at least T (its
 * ceiling: times are whole ns), and reserved admissions are spaced by
 * floor(T) or ceil(T), never bunched. */
static void test_leaky_spacing(void **state)
{
    (void)state;
    static const double rates[] = {3, 1000, 7.0 / 3, 1e6, 333333.3};
    enum { N = 100000 };
    uint64_t *t = malloc(N * sizeof(*t));
    assert_non_null(t);

    for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
        struct sl_bucket_rate r;
        struct sl_bucket b;
        assert_int_equal(sl_bucket_rate_init(&r, rates[i], 1, SL_BUCKET_ALGORITHM_LEAKY), 0);
        size_t n = arrivals(t, N, 1e9 / rates[i], 0.3, i + 7);
        sl_bucket_init(&b);
        uint64_t prev = 0;
        bool any = false;
        for (size_t k = 0; k < n; k++) {
            if (sl_bucket_take(&r, &b, t[k])) {
                if (any) {
                    assert_true((u128)(t[k] - prev) * r.p >= t_scaled(&r));
                }
                prev = t[k];
                any = true;
            }
        }
        sl_bucket_init(&b);
        uint64_t first = sl_bucket_reserve(&r, &b, 0);
        prev = first;
        for (uint64_t k = 1; k < N; k++) {
            uint64_t at = sl_bucket_reserve(&r, &b, 0);
            uint64_t gap = at - prev;
            assert_true(gap == r.inc_ns || gap == r.inc_ns + 1);
            prev = at;
        }
        /* ... and they add up exactly: the N-th at ceil((N - 1) T). */
        u128 last = (u128)(N - 1) * t_scaled(&r);
        assert_int_equal(prev - first, (uint64_t)((last + r.p - 1) / r.p));
    }
    free(t);
}

/* take_by, as the throttle's drop mode uses it: batches of arrivals looked
 * at by irregular times, each record available since the previous look. A
 * leaky bucket keeps its pace however late the looks (it passes exactly
 * one record per T of input above the rate), its admissions are never
 * closer than T (to the rounding), and a token bucket's keep the window
 * bound. */
static void test_take_by_keeps_pace(void **state)
{
    (void)state;
    enum { N = 1000000 };
    uint64_t *at = malloc(N * sizeof(*at));
    assert_non_null(at);

    for (int alg = 0; alg < 2; alg++) {
        struct sl_bucket_rate r;
        struct sl_bucket b;
        uint64_t s = 12345 + (uint64_t)alg;
        assert_int_equal(sl_bucket_rate_init(&r, 50000, 500, (enum sl_bucket_algorithm)alg), 0);
        sl_bucket_init(&b);
        uint64_t from = SEC, by = SEC;
        size_t n = 0;
        while (by < 9 * SEC) {
            by = from + 100000 + next_rand(&s) % 3000000; /* 0.1 to 3.1 ms */
            /* Twice the rate's records arrived meanwhile. */
            uint64_t records = (by - from) / 10000 + 1;
            for (uint64_t k = 0; k < records && n < N; k++) {
                uint64_t t = 0;
                if (sl_bucket_take_by(&r, &b, from, by, &t)) {
                    assert_true(t >= from && t <= by);
                    at[n++] = t;
                }
            }
            from = by;
        }
        check_windows(&r, at, n, 1);
        /* From SEC to the last look: burst + floor(length / T), less the
         * one record that may be due between the last admission and by. */
        uint64_t want = (by - SEC) / 20000 + r.burst;
        if (n > want || n + 1 < want) {
            fail_msg("%zu passed, want %llu", n, (unsigned long long)want);
        }
    }
    free(at);
}

static struct sl_bucket *get(struct sl_bucket_map *map, const char *key)
{
    struct sl_bucket *b = sl_bucket_map_get(map, key, strlen(key));
    assert_non_null(b);
    return b;
}

static bool has(const struct sl_bucket_map *map, const char *key)
{
    return sl_bucket_map_find(map, key, strlen(key)) != NULL;
}

static void test_map_lru_order(void **state)
{
    (void)state;
    struct sl_bucket_rate r;
    struct sl_bucket_map *map = sl_bucket_map_new(3);
    assert_non_null(map);
    assert_int_equal(sl_bucket_rate_init(&r, 1, 2, SL_BUCKET_ALGORITHM_TOKEN), 0);

    assert_true(sl_bucket_take(&r, get(map, "a"), 0));
    assert_true(sl_bucket_take(&r, get(map, "a"), 0));
    assert_false(sl_bucket_take(&r, get(map, "a"), 0)); /* a is empty */
    (void)get(map, "b");
    (void)get(map, "c");
    assert_true(get(map, "a") == sl_bucket_map_get(map, "a", 1)); /* same bucket */
    assert_int_equal(sl_bucket_map_count(map), 3);
    assert_int_equal(sl_bucket_map_evictions(map), 0);
    /* Order, most recent first: a c b. d evicts b. */
    (void)get(map, "d");
    assert_int_equal(sl_bucket_map_evictions(map), 1);
    assert_false(has(map, "b"));
    assert_true(has(map, "a") && has(map, "c") && has(map, "d"));
    /* Order d a c; find does not touch, so e evicts c. */
    (void)sl_bucket_map_find(map, "c", 1);
    (void)get(map, "e");
    assert_false(has(map, "c"));
    assert_int_equal(sl_bucket_map_evictions(map), 2);
    /* Now e d a: f, g evict a, then d; a comes back full. */
    (void)get(map, "f");
    assert_false(has(map, "a"));
    (void)get(map, "g");
    assert_false(has(map, "d"));
    assert_true(sl_bucket_take(&r, get(map, "a"), 0));
    assert_int_equal(sl_bucket_map_evictions(map), 5); /* a evicted e */
    assert_false(has(map, "e"));
    assert_int_equal(sl_bucket_map_count(map), 3);
    /* The empty key and keys with NULs are keys like any other. */
    assert_non_null(sl_bucket_map_get(map, "", 0));
    assert_non_null(sl_bucket_map_get(map, "x\0y", 3));
    assert_null(sl_bucket_map_find(map, "x\0z", 3));
    assert_non_null(sl_bucket_map_find(map, "", 0));
    map = sl_bucket_map_free(map);
    assert_null(map);
}

/* Many keys through a small map: the last max_keys stay, each of the others
 * was evicted once; growing the chains keeps every key findable. */
static void test_map_many_keys(void **state)
{
    (void)state;
    struct sl_bucket_map *map = sl_bucket_map_new(1000);
    char key[32];

    assert_non_null(map);
    for (int i = 0; i < 50000; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        (void)get(map, key);
        if (i % 7 == 0) {
            (void)get(map, "hot"); /* touched often: never evicted */
        }
    }
    assert_int_equal(sl_bucket_map_count(map), 1000);
    assert_int_equal(sl_bucket_map_evictions(map), 50001 - 1000);
    assert_true(has(map, "hot"));
    for (int i = 50000 - 999; i < 50000; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        assert_true(has(map, key));
    }
    snprintf(key, sizeof(key), "user-%d", 50000 - 1000);
    assert_false(has(map, key));
    sl_bucket_map_free(map);
    /* max_keys 1: every new key evicts the last. */
    map = sl_bucket_map_new(1);
    (void)get(map, "a");
    (void)get(map, "a");
    (void)get(map, "b");
    assert_int_equal(sl_bucket_map_evictions(map), 1);
    assert_false(has(map, "a"));
    sl_bucket_map_free(map);
    assert_null(sl_bucket_map_free(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_fractions),        cmocka_unit_test(test_rate_init_refuses),
        cmocka_unit_test(test_token_burst_then_rate), cmocka_unit_test(test_window_bound_random),
        cmocka_unit_test(test_long_run_rate_reached), cmocka_unit_test(test_no_drift),
        cmocka_unit_test(test_leaky_spacing),         cmocka_unit_test(test_take_by_keeps_pace),
        cmocka_unit_test(test_map_lru_order),         cmocka_unit_test(test_map_many_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
