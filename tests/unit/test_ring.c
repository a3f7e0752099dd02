/* SPDX-License-Identifier: MIT */
/* Unit tests of engine/ring.c: exact capacity, reservations, FIFO order,
 * blocking push_wait and its cancellation. Threads synchronise through atomics
 * and bounded yield loops, never sleeps. */
#include "err.h"
#include "mem.h"
#include "ring.h"

#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

/* Items are small integers disguised as pointers (never NULL). */
#define ITEM(i)  ((void *)(uintptr_t)((i) + 1))
#define VALUE(p) ((uintptr_t)(p)-1)

/* Upper bound for any wait on another thread before the test fails. */
#define WAIT_NS (30ull * 1000000000ull)

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Yields until ring has a blocked pusher, or fails the test. */
static void wait_for_waiter(struct sl_ring *ring)
{
    uint64_t deadline = now_ns() + WAIT_NS;

    while (sl_ring_waiters(ring) == 0) {
        assert_true(now_ns() < deadline);
        sched_yield();
    }
}

/* Yields until *flag is non-zero, or fails the test. */
static void wait_for_flag(atomic_int *flag)
{
    uint64_t deadline = now_ns() + WAIT_NS;

    while (atomic_load(flag) == 0) {
        assert_true(now_ns() < deadline);
        sched_yield();
    }
}

/* Fills ring with try_push until SL_EAGAIN; returns how many went in. */
static uint32_t fill(struct sl_ring *ring, uint32_t first)
{
    uint32_t n = 0;

    while (sl_ring_try_push(ring, ITEM(first + n)) == 0) {
        n++;
        assert_true(n <= sl_ring_capacity(ring));
    }
    return n;
}

/* Pops everything, checking values first, first + 1, ...; returns the count. */
static uint32_t drain(struct sl_ring *ring, uint32_t first)
{
    void *item;
    uint32_t n = 0;

    while (sl_ring_try_pop(ring, &item) == 0) {
        assert_int_equal(VALUE(item), first + n);
        n++;
    }
    return n;
}

static void check_capacity_exact(uint32_t capacity)
{
    struct sl_ring *ring = sl_ring_new(capacity);

    assert_non_null(ring);
    assert_int_equal(sl_ring_capacity(ring), capacity);
    /* Several rounds so positions wrap around the storage many times. */
    for (uint32_t round = 0; round < 50; round++) {
        assert_int_equal(fill(ring, round * 1000), capacity);
        assert_int_equal(sl_ring_count(ring), capacity);
        assert_int_equal(sl_ring_try_push(ring, ITEM(7)), SL_EAGAIN);
        assert_int_equal(sl_ring_try_reserve(ring), SL_EAGAIN);
        assert_int_equal(drain(ring, round * 1000), capacity);
        assert_int_equal(sl_ring_count(ring), 0);
    }
    /* Interleaved: never more than capacity inside. */
    for (uint32_t i = 0; i < 1000; i++) {
        void *item;

        assert_int_equal(fill(ring, 0), capacity);
        assert_int_equal(sl_ring_try_pop(ring, &item), 0);
        assert_int_equal(VALUE(item), 0);
        assert_int_equal(sl_ring_try_push(ring, ITEM(capacity)), 0);
        assert_int_equal(sl_ring_try_push(ring, ITEM(0)), SL_EAGAIN);
        assert_int_equal(drain(ring, 1), capacity);
    }
    sl_ring_free(ring);
}

static void test_ring_capacity_1_exact(void **state)
{
    (void)state;
    check_capacity_exact(1);
}

static void test_ring_capacity_3_exact(void **state)
{
    (void)state;
    check_capacity_exact(3);
}

static void test_ring_capacity_16_exact(void **state)
{
    (void)state;
    check_capacity_exact(16);
}

static void test_ring_try_pop_empty_returns_eagain(void **state)
{
    struct sl_ring *ring = sl_ring_new(4);
    void *item = ITEM(42);

    (void)state;
    assert_int_equal(sl_ring_try_pop(ring, &item), SL_EAGAIN);
    assert_ptr_equal(item, ITEM(42)); /* untouched on failure */
    assert_int_equal(sl_ring_count(ring), 0);
    sl_ring_free(ring);
}

static void test_ring_reserve_counts_against_capacity(void **state)
{
    struct sl_ring *ring = sl_ring_new(3);
    void *item;

    (void)state;
    assert_int_equal(sl_ring_try_reserve(ring), 0);
    assert_int_equal(sl_ring_try_reserve(ring), 0);
    /* Reservations are not items. */
    assert_int_equal(sl_ring_count(ring), 0);
    assert_int_equal(sl_ring_try_pop(ring, &item), SL_EAGAIN);
    assert_int_equal(sl_ring_try_push(ring, ITEM(0)), 0);
    assert_int_equal(sl_ring_try_push(ring, ITEM(1)), SL_EAGAIN);
    assert_int_equal(sl_ring_try_reserve(ring), SL_EAGAIN);
    sl_ring_push_reserved(ring, ITEM(1));
    sl_ring_push_reserved(ring, ITEM(2));
    assert_int_equal(sl_ring_count(ring), 3);
    assert_int_equal(sl_ring_try_reserve(ring), SL_EAGAIN);
    assert_int_equal(drain(ring, 0), 3);
    sl_ring_free(ring);
}

static void test_ring_cancel_reserve_gives_slot_back(void **state)
{
    struct sl_ring *ring = sl_ring_new(2);

    (void)state;
    assert_int_equal(sl_ring_try_reserve(ring), 0);
    assert_int_equal(sl_ring_try_reserve(ring), 0);
    assert_int_equal(sl_ring_try_push(ring, ITEM(0)), SL_EAGAIN);
    sl_ring_cancel_reserve(ring);
    assert_int_equal(sl_ring_try_push(ring, ITEM(0)), 0);
    assert_int_equal(sl_ring_try_reserve(ring), SL_EAGAIN);
    sl_ring_cancel_reserve(ring);
    assert_int_equal(sl_ring_try_push(ring, ITEM(1)), 0);
    assert_int_equal(drain(ring, 0), 2);
    /* Back to full capacity. */
    assert_int_equal(fill(ring, 0), 2);
    assert_int_equal(drain(ring, 0), 2);
    sl_ring_free(ring);
}

static void test_ring_push_reserved_keeps_push_order(void **state)
{
    struct sl_ring *ring = sl_ring_new(4);

    (void)state;
    /* Order follows the pushes, not the reservations. */
    assert_int_equal(sl_ring_try_reserve(ring), 0);
    assert_int_equal(sl_ring_try_reserve(ring), 0);
    assert_int_equal(sl_ring_try_push(ring, ITEM(0)), 0);
    sl_ring_push_reserved(ring, ITEM(1));
    sl_ring_push_reserved(ring, ITEM(2));
    assert_int_equal(drain(ring, 0), 3);
    sl_ring_free(ring);
}

struct spsc {
    struct sl_ring *ring;
    uint32_t n;
    int failures; /* producer-side errors, checked after join (cmocka asserts only in main) */
};

static void *spsc_producer(void *arg)
{
    struct spsc *p = arg;

    for (uint32_t i = 0; i < p->n; i++) {
        if (i % 2 == 0) {
            while (sl_ring_try_push(p->ring, ITEM(i)) == SL_EAGAIN) {
                sched_yield();
            }
        } else if (sl_ring_push_wait(p->ring, ITEM(i), NULL) != 0) {
            p->failures++;
        }
    }
    return NULL;
}

static void test_ring_fifo_single_producer_consumer(void **state)
{
    struct spsc p = {.ring = sl_ring_new(5), .n = 200000};
    pthread_t thread;
    void *item;

    (void)state;
    assert_int_equal(pthread_create(&thread, NULL, spsc_producer, &p), 0);
    for (uint32_t i = 0; i < p.n; i++) {
        while (sl_ring_try_pop(p.ring, &item) == SL_EAGAIN) {
            sched_yield();
        }
        assert_int_equal(VALUE(item), i);
        assert_true(sl_ring_count(p.ring) <= 5);
    }
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(p.failures, 0);
    assert_int_equal(sl_ring_try_pop(p.ring, &item), SL_EAGAIN);
    sl_ring_free(p.ring);
}

struct waiter {
    struct sl_ring *ring;
    atomic_bool cancel;
    atomic_int started;
    atomic_int done;
    int rc;
};

static void *push_wait_thread(void *arg)
{
    struct waiter *w = arg;

    atomic_store(&w->started, 1);
    w->rc = sl_ring_push_wait(w->ring, ITEM(99), &w->cancel);
    atomic_store(&w->done, 1);
    return NULL;
}

static void test_ring_push_wait_blocks_until_pop(void **state)
{
    struct waiter w = {.ring = sl_ring_new(1)};
    pthread_t thread;
    void *item;

    (void)state;
    assert_int_equal(sl_ring_try_push(w.ring, ITEM(0)), 0);
    assert_int_equal(pthread_create(&thread, NULL, push_wait_thread, &w), 0);
    wait_for_flag(&w.started);
    /* It parks: the waiter count shows it, and it has not returned. */
    wait_for_waiter(w.ring);
    assert_int_equal(atomic_load(&w.done), 0);
    assert_int_equal(sl_ring_try_pop(w.ring, &item), 0);
    assert_int_equal(VALUE(item), 0);
    wait_for_flag(&w.done);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(w.rc, 0);
    assert_int_equal(sl_ring_waiters(w.ring), 0);
    assert_int_equal(sl_ring_try_pop(w.ring, &item), 0);
    assert_int_equal(VALUE(item), 99);
    sl_ring_free(w.ring);
}

static void test_ring_push_wait_wakes_on_cancel_reserve(void **state)
{
    struct waiter w = {.ring = sl_ring_new(1)};
    pthread_t thread;
    void *item;

    (void)state;
    assert_int_equal(sl_ring_try_reserve(w.ring), 0);
    assert_int_equal(pthread_create(&thread, NULL, push_wait_thread, &w), 0);
    wait_for_waiter(w.ring);
    sl_ring_cancel_reserve(w.ring);
    wait_for_flag(&w.done);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(w.rc, 0);
    assert_int_equal(sl_ring_try_pop(w.ring, &item), 0);
    assert_int_equal(VALUE(item), 99);
    sl_ring_free(w.ring);
}

static void test_ring_push_wait_cancel_returns_ecanceled(void **state)
{
    struct waiter w = {.ring = sl_ring_new(2)};
    pthread_t thread;

    (void)state;
    assert_int_equal(fill(w.ring, 0), 2);
    assert_int_equal(pthread_create(&thread, NULL, push_wait_thread, &w), 0);
    wait_for_waiter(w.ring);
    atomic_store(&w.cancel, true);
    sl_ring_wake_all(w.ring);
    wait_for_flag(&w.done);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(w.rc, SL_ECANCELED);
    assert_int_equal(sl_ring_waiters(w.ring), 0);
    /* The item was not pushed. */
    assert_int_equal(drain(w.ring, 0), 2);
    sl_ring_free(w.ring);
}

static void test_ring_push_wait_cancelled_full_returns_at_once(void **state)
{
    struct sl_ring *ring = sl_ring_new(1);
    atomic_bool cancel = true;

    (void)state;
    assert_int_equal(sl_ring_try_push(ring, ITEM(0)), 0);
    assert_int_equal(sl_ring_push_wait(ring, ITEM(1), &cancel), SL_ECANCELED);
    assert_int_equal(drain(ring, 0), 1);
    /* A free slot is still taken when cancel is set. */
    assert_int_equal(sl_ring_push_wait(ring, ITEM(5), &cancel), 0);
    assert_int_equal(drain(ring, 5), 1);
    sl_ring_free(ring);
}

static void count_room(void *arg)
{
    (*(int *)arg)++;
}

/* The room-freed hook runs for pops and cancelled reservations alike. */
static void test_ring_room_hook_runs_on_pop_and_cancel(void **state)
{
    struct sl_ring *ring = sl_ring_new(2);
    void *item = NULL;
    int calls = 0;

    (void)state;
    assert_non_null(ring);
    sl_ring_set_on_room(ring, count_room, &calls);
    assert_int_equal(sl_ring_try_push(ring, ITEM(1)), 0);
    assert_int_equal(sl_ring_try_reserve(ring), 0);
    assert_int_equal(calls, 0);
    sl_ring_cancel_reserve(ring);
    assert_int_equal(calls, 1);
    assert_int_equal(sl_ring_try_pop(ring, &item), 0);
    assert_int_equal(calls, 2);
    assert_int_equal(sl_ring_try_pop(ring, &item), SL_EAGAIN);
    assert_int_equal(calls, 2);
    sl_ring_free(ring);
}

static void test_ring_new_oom_returns_null(void **state)
{
    struct sl_ring *ring = NULL;

    (void)state;
    for (long nth = 1; ring == NULL; nth++) {
        sl_mem_fail_nth(nth);
        ring = sl_ring_new(8);
        assert_true(nth < 100);
    }
    sl_mem_fail_nth(0);
    assert_int_equal(fill(ring, 0), 8);
    assert_int_equal(drain(ring, 0), 8);
    assert_null(sl_ring_free(ring));
    assert_null(sl_ring_free(NULL));
}

/* Lanes share the capacity; a pop takes the highest level first. */
static void test_ring_lanes_pop_highest_first_within_capacity(void **state)
{
    (void)state;
    struct sl_ring *ring = sl_ring_new_lanes(3, 10, NULL);
    int a = 1, b = 2, c = 3, d = 4;
    void *item = NULL;

    assert_non_null(ring);
    assert_int_equal(sl_ring_try_push_lane(ring, &a, 0), 0);
    assert_int_equal(sl_ring_try_push_lane(ring, &b, 9), 0);
    assert_int_equal(sl_ring_try_push_lane(ring, &c, 0), 0);
    assert_int_equal(sl_ring_try_push_lane(ring, &d, 5), SL_EAGAIN); /* shared capacity 3 */
    assert_int_equal(sl_ring_count(ring), 3);
    assert_int_equal(sl_ring_lowest_lane(ring), 0);
    assert_int_equal(sl_ring_try_pop(ring, &item), 0);
    assert_ptr_equal(item, &b);
    assert_int_equal(sl_ring_try_pop_lane(ring, 0, &item), 0); /* oldest of lane 0 */
    assert_ptr_equal(item, &a);
    assert_int_equal(sl_ring_try_pop(ring, &item), 0);
    assert_ptr_equal(item, &c);
    assert_int_equal(sl_ring_try_pop(ring, &item), SL_EAGAIN);
    assert_int_equal(sl_ring_lowest_lane(ring), UINT32_MAX);
    sl_ring_free(ring);
}

/* The choice of lane on a virtual clock: the higher level first, a lower
 * one once it waited a level's worth of aging per level apart. */
static void test_ring_pick_lane_ages_lower_levels(void **state)
{
    (void)state;
    const uint64_t age = 20;
    const uint8_t levels[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    uint64_t counts[10] = {0}, since[10] = {0};

    assert_int_equal(sl_ring_pick_lane(10, levels, counts, since, 100, age), UINT32_MAX);
    counts[0] = counts[9] = 1;
    since[0] = since[9] = 100;
    assert_int_equal(sl_ring_pick_lane(10, levels, counts, since, 100, age), 9);
    /* Level 9 just served (since = now), level 0 waiting 9 x age: a tie
     * goes to the higher; past it, level 0. */
    since[9] = 280;
    assert_int_equal(sl_ring_pick_lane(10, levels, counts, since, 280, age), 9);
    assert_int_equal(sl_ring_pick_lane(10, levels, counts, since, 281, age), 9);
    since[9] = 300;
    assert_int_equal(sl_ring_pick_lane(10, levels, counts, since, 300, age), 0);
    /* An empty lane is never picked, however long it waited. */
    counts[0] = 0;
    assert_int_equal(sl_ring_pick_lane(10, levels, counts, since, 10000, age), 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_capacity_1_exact),
        cmocka_unit_test(test_ring_capacity_3_exact),
        cmocka_unit_test(test_ring_capacity_16_exact),
        cmocka_unit_test(test_ring_try_pop_empty_returns_eagain),
        cmocka_unit_test(test_ring_reserve_counts_against_capacity),
        cmocka_unit_test(test_ring_cancel_reserve_gives_slot_back),
        cmocka_unit_test(test_ring_push_reserved_keeps_push_order),
        cmocka_unit_test(test_ring_fifo_single_producer_consumer),
        cmocka_unit_test(test_ring_push_wait_blocks_until_pop),
        cmocka_unit_test(test_ring_push_wait_wakes_on_cancel_reserve),
        cmocka_unit_test(test_ring_push_wait_cancel_returns_ecanceled),
        cmocka_unit_test(test_ring_push_wait_cancelled_full_returns_at_once),
        cmocka_unit_test(test_ring_room_hook_runs_on_pop_and_cancel),
        cmocka_unit_test(test_ring_new_oom_returns_null),
        cmocka_unit_test(test_ring_lanes_pop_highest_first_within_capacity),
        cmocka_unit_test(test_ring_pick_lane_ages_lower_levels),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
