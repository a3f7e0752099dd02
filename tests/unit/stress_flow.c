/* SPDX-License-Identifier: MIT */
/* Stress of engine/flow.c's budget handshake: 4 "source" threads charge
 * with the blocking sl_flow_acquire and hand their charges through a small
 * ring to 4 "worker" threads that give them back with sl_flow_release, as
 * batches are freed on workers. The budget fits only a few charges, so the
 * wait/wake path (the store-load pair between release and acquire) runs
 * constantly. Checks: the budget is never exceeded, every charge comes
 * back, nobody is left waiting. Meant to run under ThreadSanitizer too.
 * SLUICE_STRESS_ITEMS overrides the charges per source. */
#include "err.h"
#include "flow.h"
#include "ring.h"

#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#define SOURCES  4
#define WORKERS  4
#define LIMIT    1000 /* bytes; a charge is 100..400 */
#define CAPACITY 8

#if defined(__SANITIZE_THREAD__)
#define STRESS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STRESS_TSAN 1
#endif
#endif

#if defined(STRESS_TSAN)
#define DEFAULT_ITEMS 20000
#else
#define DEFAULT_ITEMS 100000
#endif

struct stress {
    struct sl_flow flow;
    struct sl_ring *ring; /* charges in flight, as (bytes) disguised as pointers */
    uint64_t items;       /* per source */
    atomic_bool cancel;   /* never set */
    atomic_uint_fast64_t released;
    atomic_int errors;
};

static void *source_main(void *arg)
{
    struct stress *st = arg;
    uint64_t x = (uint64_t)(uintptr_t)&x; /* a per-thread xorshift seed */

    for (uint64_t i = 0; i < st->items; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uintptr_t bytes = 100 + (uintptr_t)(x % 301);
        if (sl_flow_acquire(&st->flow, bytes, &st->cancel) != 0) {
            atomic_fetch_add(&st->errors, 1);
            return NULL;
        }
        if (atomic_load_explicit(&st->flow.used, memory_order_relaxed) > LIMIT) {
            atomic_fetch_add(&st->errors, 1);
        }
        if (sl_ring_push_wait(st->ring, (void *)bytes, &st->cancel) != 0) {
            atomic_fetch_add(&st->errors, 1);
            return NULL;
        }
    }
    return NULL;
}

static void *worker_main(void *arg)
{
    struct stress *st = arg;
    uint64_t total = st->items * SOURCES;

    while (atomic_load(&st->released) < total) {
        void *item;
        if (sl_ring_try_pop(st->ring, &item) != 0) {
            sched_yield();
            continue;
        }
        sl_flow_release(&st->flow, (uint64_t)(uintptr_t)item);
        atomic_fetch_add(&st->released, 1);
    }
    return NULL;
}

static void test_flow_stress_acquire_release(void **state)
{
    struct stress st = {0};
    pthread_t sources[SOURCES], workers[WORKERS];
    const char *env = getenv("SLUICE_STRESS_ITEMS");
    (void)state;

    st.items = env != NULL ? strtoull(env, NULL, 10) : DEFAULT_ITEMS;
    sl_flow_init(&st.flow, LIMIT);
    st.ring = sl_ring_new(CAPACITY);
    assert_non_null(st.ring);
    for (int i = 0; i < WORKERS; i++) {
        assert_int_equal(pthread_create(&workers[i], NULL, worker_main, &st), 0);
    }
    for (int i = 0; i < SOURCES; i++) {
        assert_int_equal(pthread_create(&sources[i], NULL, source_main, &st), 0);
    }
    for (int i = 0; i < SOURCES; i++) {
        assert_int_equal(pthread_join(sources[i], NULL), 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        assert_int_equal(pthread_join(workers[i], NULL), 0);
    }
    assert_int_equal(atomic_load(&st.errors), 0);
    assert_int_equal(atomic_load(&st.released), st.items * SOURCES);
    assert_int_equal(atomic_load(&st.flow.used), 0);
    assert_int_equal(atomic_load(&st.flow.waiters), 0);
    assert_true(atomic_load(&st.flow.peak) <= LIMIT);
    sl_ring_free(st.ring);
    sl_flow_release_all(&st.flow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow_stress_acquire_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
