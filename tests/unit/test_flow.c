/* SPDX-License-Identifier: MIT */
/* Unit tests of engine/flow.c: the memory_limit budget (charge, wait, wake,
 * cancel) and the interruptible sleep source threads pace with (issue 6,
 * finding 11: a stop must end a sleep at once, not when it would expire).
 * Threads synchronise through atomics and bounded yield loops. */
#include "err.h"
#include "flow.h"

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

/* Upper bound for any wait on another thread before the test fails. */
#define WAIT_NS (30ull * 1000000000ull)

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct sleeper {
    struct sl_flow *flow;
    atomic_bool *cancel;
    uint64_t deadline_ns;
    atomic_bool started;
    atomic_bool done;
    int rc;
    pthread_t thread;
};

static void *sleeper_main(void *arg)
{
    struct sleeper *s = arg;

    atomic_store(&s->started, true);
    s->rc = sl_flow_sleep_until(s->flow, s->deadline_ns, s->cancel);
    atomic_store(&s->done, true);
    return NULL;
}

static void wait_for(atomic_bool *flag)
{
    uint64_t deadline = now_ns() + WAIT_NS;

    while (!atomic_load(flag)) {
        assert_true(now_ns() < deadline);
        sched_yield();
    }
}

static void test_flow_sleep_until_reaches_deadline(void **state)
{
    struct sl_flow flow;
    atomic_bool cancel = false;
    (void)state;

    sl_flow_init(&flow, 100);
    uint64_t start = now_ns();
    assert_int_equal(sl_flow_sleep_until(&flow, start + 20 * 1000 * 1000, &cancel), 0);
    assert_true(now_ns() >= start + 20 * 1000 * 1000);
    /* A deadline already past returns at once, cancel may be NULL. */
    assert_int_equal(sl_flow_sleep_until(&flow, start, NULL), 0);
    sl_flow_release_all(&flow);
}

static void test_flow_sleep_until_cancelled_before(void **state)
{
    struct sl_flow flow;
    atomic_bool cancel = true;
    (void)state;

    sl_flow_init(&flow, 100);
    assert_int_equal(sl_flow_sleep_until(&flow, now_ns() + WAIT_NS * 4, &cancel), SL_ECANCELED);
    sl_flow_release_all(&flow);
}

/* What sl_pipeline_stop does (set the flag, then sl_flow_wake_all) ends a
 * long sleep at once, whenever it happens relative to the sleeper's checks.
 * The old generator slept in usleep(), deaf to the stop. */
static void test_flow_sleep_until_woken_by_stop_issue6(void **state)
{
    (void)state;

    for (int round = 0; round < 200; round++) {
        struct sl_flow flow;
        atomic_bool cancel = false;
        struct sleeper s = {.flow = &flow, .cancel = &cancel};

        sl_flow_init(&flow, 100);
        s.deadline_ns = now_ns() + 4 * WAIT_NS;
        assert_int_equal(pthread_create(&s.thread, NULL, sleeper_main, &s), 0);
        wait_for(&s.started);
        /* Vary the moment of the stop: before, around and after the wait. */
        for (int k = 0; k < round % 8; k++) {
            sched_yield();
        }
        atomic_store_explicit(&cancel, true, memory_order_release);
        sl_flow_wake_all(&flow);
        wait_for(&s.done);
        assert_int_equal(pthread_join(s.thread, NULL), 0);
        assert_int_equal(s.rc, SL_ECANCELED);
        sl_flow_release_all(&flow);
    }
}

static void count_wake(void *arg)
{
    atomic_fetch_add((atomic_int *)arg, 1);
}

/* Hostile-user probe, item 6: a pipeline stop (a failure) tells the loop
 * thread through the flow's waker, so the loop sleeps until an event instead
 * of polling every 200 ms; once cleared, the waker is not called. */
static void test_flow_wake_all_calls_waker(void **state)
{
    struct sl_flow flow;
    atomic_int woken = 0;
    const struct sl_flow_waker waker = {count_wake, &woken};

    (void)state;
    sl_flow_init(&flow, 100);
    sl_flow_wake_all(&flow);
    assert_int_equal(atomic_load(&woken), 0);
    sl_flow_set_waker(&flow, &waker);
    sl_flow_wake_all(&flow);
    sl_flow_wake_all(&flow);
    assert_int_equal(atomic_load(&woken), 2);
    sl_flow_set_waker(&flow, NULL);
    sl_flow_wake_all(&flow);
    assert_int_equal(atomic_load(&woken), 2);
    sl_flow_release_all(&flow);
}

struct acquirer {
    struct sl_flow *flow;
    atomic_bool *cancel;
    uint64_t bytes;
    atomic_bool done;
    int rc;
    pthread_t thread;
};

static void *acquirer_main(void *arg)
{
    struct acquirer *a = arg;

    a->rc = sl_flow_acquire(a->flow, a->bytes, a->cancel);
    atomic_store(&a->done, true);
    return NULL;
}

static void wait_for_waiter(struct sl_flow *flow)
{
    uint64_t deadline = now_ns() + WAIT_NS;

    while (atomic_load(&flow->waiters) == 0) {
        assert_true(now_ns() < deadline);
        sched_yield();
    }
}

static void test_flow_acquire_waits_for_release(void **state)
{
    struct sl_flow flow;
    atomic_bool cancel = false;
    struct acquirer a = {.flow = &flow, .cancel = &cancel, .bytes = 60};
    (void)state;

    sl_flow_init(&flow, 100);
    assert_true(sl_flow_try_acquire(&flow, 50));
    assert_false(sl_flow_try_acquire(&flow, 60));
    assert_int_equal(pthread_create(&a.thread, NULL, acquirer_main, &a), 0);
    wait_for_waiter(&flow);
    assert_false(atomic_load(&a.done));
    sl_flow_release(&flow, 50);
    wait_for(&a.done);
    assert_int_equal(pthread_join(a.thread, NULL), 0);
    assert_int_equal(a.rc, 0);
    assert_int_equal(atomic_load(&flow.used), 60);
    assert_int_equal(atomic_load(&flow.waiters), 0);
    sl_flow_release(&flow, 60);
    /* Alone, a charge over the limit passes (a huge line). */
    assert_true(sl_flow_try_acquire(&flow, 500));
    assert_int_equal(atomic_load(&flow.peak), 500);
    sl_flow_release(&flow, 500);
    sl_flow_release_all(&flow);
}

static void test_flow_acquire_cancelled(void **state)
{
    struct sl_flow flow;
    atomic_bool cancel = false;
    struct acquirer a = {.flow = &flow, .cancel = &cancel, .bytes = 60};
    (void)state;

    sl_flow_init(&flow, 100);
    assert_true(sl_flow_try_acquire(&flow, 50));
    assert_int_equal(pthread_create(&a.thread, NULL, acquirer_main, &a), 0);
    wait_for_waiter(&flow);
    atomic_store_explicit(&cancel, true, memory_order_release);
    sl_flow_wake_all(&flow);
    wait_for(&a.done);
    assert_int_equal(pthread_join(a.thread, NULL), 0);
    assert_int_equal(a.rc, SL_ECANCELED);
    assert_int_equal(atomic_load(&flow.used), 50);
    assert_int_equal(atomic_load(&flow.waiters), 0);
    sl_flow_release(&flow, 50);
    sl_flow_release_all(&flow);
}

struct holder {
    struct sl_flow *flow;
    atomic_bool *cancel;
    uint64_t held; /* its hold; only the holder's thread touches it while it runs */
    uint64_t bytes;
    atomic_bool done;
    int rc;
    pthread_t thread;
};

static void *holder_main(void *arg)
{
    struct holder *h = arg;

    h->rc = sl_flow_hold(h->flow, &h->held, h->bytes, h->cancel);
    atomic_store(&h->done, true);
    return NULL;
}

static void hold_in_thread(struct holder *h, uint64_t bytes)
{
    atomic_store(&h->done, false);
    h->bytes = bytes;
    assert_int_equal(pthread_create(&h->thread, NULL, holder_main, h), 0);
}

static void join_holder(struct holder *h)
{
    wait_for(&h->done);
    assert_int_equal(pthread_join(h->thread, NULL), 0);
    assert_int_equal(h->rc, 0);
}

/* h2: a source's read buffer grown for a long line is held from the budget.
 * Past the limit goes one holder at a time, and only while nothing but
 * holds is in flight; two holders that both need more never wait on each
 * other (each holds what the other waits for). */
static void test_flow_hold_one_past_the_limit_at_a_time_h2(void **state)
{
    struct sl_flow flow;
    atomic_bool cancel = false;
    struct holder a = {.flow = &flow, .cancel = &cancel};
    struct holder b = {.flow = &flow, .cancel = &cancel};
    (void)state;

    sl_flow_init(&flow, 100);
    assert_int_equal(sl_flow_hold(&flow, &a.held, 60, &cancel), 0);
    assert_int_equal(sl_flow_hold(&flow, &b.held, 30, &cancel), 0);
    assert_int_equal(atomic_load(&flow.used), 90);
    assert_int_equal(atomic_load(&flow.held), 90);
    /* Both need more than is left, at once: one goes past the limit. */
    hold_in_thread(&a, 80);
    hold_in_thread(&b, 50);
    uint64_t deadline = now_ns() + WAIT_NS;
    while (!atomic_load(&a.done) && !atomic_load(&b.done)) {
        assert_true(now_ns() < deadline);
        sched_yield();
    }
    struct holder *first = atomic_load(&a.done) ? &a : &b;
    struct holder *second = first == &a ? &b : &a;
    assert_int_equal(pthread_join(first->thread, NULL), 0);
    assert_int_equal(first->rc, 0);
    assert_false(atomic_load(&second->done));
    /* Its line handed on as a batch: no longer a hold, but in flight. */
    uint64_t line = first->held;
    sl_flow_unhold(&flow, &first->held, line);
    assert_int_equal(first->held, 0);
    assert_false(atomic_load(&second->done));
    /* The batch drained: the other holder goes on. */
    sl_flow_release(&flow, line);
    join_holder(second);
    assert_int_equal(atomic_load(&flow.held), second->held);
    assert_int_equal(atomic_load(&flow.used), second->held);
    assert_int_equal(sl_flow_hold(&flow, &second->held, 0, &cancel), 0);
    assert_int_equal(atomic_load(&flow.used), 0);
    assert_int_equal(atomic_load(&flow.held), 0);
    sl_flow_release_all(&flow);
}

/* h2: a holder past the limit waits for batches to drain, not for holds;
 * a batch never passes a holder that is past the limit. */
static void test_flow_hold_waits_for_batches_h2(void **state)
{
    struct sl_flow flow;
    atomic_bool cancel = false;
    struct holder a = {.flow = &flow, .cancel = &cancel};
    (void)state;

    sl_flow_init(&flow, 100);
    assert_true(sl_flow_try_acquire(&flow, 50));
    assert_int_equal(sl_flow_hold(&flow, &a.held, 40, &cancel), 0);
    hold_in_thread(&a, 70);
    wait_for_waiter(&flow);
    assert_false(atomic_load(&a.done));
    sl_flow_release(&flow, 50);
    join_holder(&a);
    assert_int_equal(atomic_load(&flow.used), 70);
    /* No room for a batch of 40 beside the hold. */
    assert_false(sl_flow_try_acquire(&flow, 40));
    assert_int_equal(sl_flow_hold(&flow, &a.held, 120, &cancel), 0);
    assert_int_equal(atomic_load(&flow.peak), 120);
    /* With a batch in flight again, growing waits; cancelled while it
     * waits, the hold is as it was. */
    sl_flow_force(&flow, 10);
    hold_in_thread(&a, 200);
    wait_for_waiter(&flow);
    atomic_store_explicit(&cancel, true, memory_order_release);
    sl_flow_wake_all(&flow);
    wait_for(&a.done);
    assert_int_equal(pthread_join(a.thread, NULL), 0);
    assert_int_equal(a.rc, SL_ECANCELED);
    assert_int_equal(a.held, 120);
    assert_int_equal(atomic_load(&flow.used), 130);
    sl_flow_release(&flow, 10);
    assert_int_equal(sl_flow_hold(&flow, &a.held, 0, &cancel), 0);
    assert_int_equal(atomic_load(&flow.used), 0);
    assert_null(atomic_load(&flow.alone));
    sl_flow_release_all(&flow);
}

/* A window's batch brings a credit for what its family grows into: their
 * allocations draw on it first and are charged anew only past it (the
 * budget's `used` counted the credit at admission). */
static void test_flow_charge_draws_on_credit_first(void **state)
{
    struct sl_flow flow;
    struct sl_flow_credit credit = {.granted = 300, .base = 100};
    (void)state;

    sl_flow_init(&flow, 1000);
    atomic_init(&credit.drawn, 0);
    assert_true(sl_flow_try_acquire(&flow, 100 + 300));
    sl_flow_charge(&flow, &credit, 200);
    assert_int_equal(atomic_load(&flow.used), 400);
    sl_flow_charge(&flow, &credit, 150);
    assert_int_equal(atomic_load(&flow.used), 450);
    sl_flow_charge(&flow, NULL, 10);
    assert_int_equal(atomic_load(&flow.used), 460);
    assert_int_equal(atomic_load(&credit.drawn), 350);
    sl_flow_release(&flow, 460);
    sl_flow_release_all(&flow);
}

/* The credit is the family's expected growth, capped; a family gone gives
 * back what it did not draw, and teaches the window its growth: a larger
 * one at once, a smaller one a quarter of the way. */
static void test_flow_window_credit_learns_the_family(void **state)
{
    struct sl_flow flow;
    struct sl_flow_window win = {.flow = &flow, .max = 1, .credit_max = 500};
    struct sl_flow_credit credit = {.base = 100};
    (void)state;

    sl_flow_init(&flow, 1000);
    atomic_init(&win.live, 0);
    atomic_init(&win.growth_x16, 2 * 16);
    assert_int_equal(sl_flow_window_credit(&win, 100), 200);
    assert_int_equal(sl_flow_window_credit(&win, 1000), 500);
    /* A family that drew 50 of its 200. */
    assert_true(sl_flow_window_try_enter(&win));
    assert_false(sl_flow_window_try_enter(&win));
    credit.granted = sl_flow_window_credit(&win, 100);
    atomic_init(&credit.drawn, 0);
    assert_true(sl_flow_try_acquire(&flow, 100 + credit.granted));
    sl_flow_charge(&flow, &credit, 50);
    sl_flow_release(&flow, 100 + 50); /* the batch and its copy freed */
    assert_int_equal(atomic_load(&flow.used), 150);
    sl_flow_window_leave(&win, &credit);
    assert_int_equal(atomic_load(&flow.used), 0);
    assert_int_equal(atomic_load(&win.live), 0);
    assert_int_equal(atomic_load(&win.growth_x16), 32 - (32 - 8) / 4);
    /* A family that drew 400: past its credit, charged anew, learnt at
     * once. */
    assert_true(sl_flow_window_try_enter(&win));
    credit.granted = sl_flow_window_credit(&win, 100);
    assert_int_equal(credit.granted, 100 * 26 / 16);
    atomic_init(&credit.drawn, 0);
    assert_true(sl_flow_try_acquire(&flow, 100 + credit.granted));
    sl_flow_charge(&flow, &credit, 400);
    assert_int_equal(atomic_load(&flow.used), 100 + 400);
    sl_flow_release(&flow, 100 + 400);
    sl_flow_window_leave(&win, &credit);
    assert_int_equal(atomic_load(&flow.used), 0);
    assert_int_equal(atomic_load(&win.growth_x16), 64);
    sl_flow_release_all(&flow);
}

/* Releases wake a waiting acquire only once it may go on (a source that
 * waits for room for a family of 60 copies was woken by each copy freed);
 * one that may must still wake it, however small. */
static void test_flow_release_wakes_when_the_waiter_fits(void **state)
{
    struct sl_flow flow;
    atomic_bool cancel = false;
    struct acquirer a = {.flow = &flow, .cancel = &cancel, .bytes = 60};
    (void)state;

    sl_flow_init(&flow, 100);
    for (int i = 0; i < 10; i++) {
        assert_true(sl_flow_try_acquire(&flow, 9));
    }
    assert_int_equal(pthread_create(&a.thread, NULL, acquirer_main, &a), 0);
    /* It asks to be woken at 100 - 60 = 40 in flight. */
    uint64_t deadline = now_ns() + WAIT_NS;
    while (atomic_load(&flow.wake_at) == 0) {
        assert_true(now_ns() < deadline);
        sched_yield();
    }
    assert_int_equal(atomic_load(&flow.wake_at), 40);
    for (int i = 0; i < 5; i++) {
        sl_flow_release(&flow, 9); /* 90 down to 45: not yet */
    }
    assert_false(atomic_load(&a.done));
    sl_flow_release(&flow, 9);
    wait_for(&a.done);
    assert_int_equal(pthread_join(a.thread, NULL), 0);
    assert_int_equal(a.rc, 0);
    assert_int_equal(atomic_load(&flow.used), 36 + 60);
    assert_int_equal(atomic_load(&flow.wake_at), 0);
    sl_flow_release(&flow, 36 + 60);
    sl_flow_release_all(&flow);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow_sleep_until_reaches_deadline),
        cmocka_unit_test(test_flow_sleep_until_cancelled_before),
        cmocka_unit_test(test_flow_sleep_until_woken_by_stop_issue6),
        cmocka_unit_test(test_flow_wake_all_calls_waker),
        cmocka_unit_test(test_flow_acquire_waits_for_release),
        cmocka_unit_test(test_flow_acquire_cancelled),
        cmocka_unit_test(test_flow_hold_one_past_the_limit_at_a_time_h2),
        cmocka_unit_test(test_flow_hold_waits_for_batches_h2),
        cmocka_unit_test(test_flow_charge_draws_on_credit_first),
        cmocka_unit_test(test_flow_window_credit_learns_the_family),
        cmocka_unit_test(test_flow_release_wakes_when_the_waiter_fits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
