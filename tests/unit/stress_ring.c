/* SPDX-License-Identifier: MIT */
/* Sequence-integrity stress of engine/ring.c (in the spirit of ck's
 * validate/ programs): 4 producers and 4 consumers share a capacity-8 ring so
 * that the full and empty paths run constantly. Producers tag items with their
 * id and a sequence number; half of them use try_push / try_reserve, half
 * push_wait. Consumers check that each producer's items reach them in
 * increasing order and that every item arrives exactly once. Meant to run
 * under ThreadSanitizer too. SLUICE_STRESS_ITEMS overrides the items per
 * producer. */
#include "err.h"
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

#define PRODUCERS 4
#define CONSUMERS 4
#define CAPACITY  8

/* GCC defines __SANITIZE_THREAD__, Clang has __has_feature. */
#if defined(__SANITIZE_THREAD__)
#define STRESS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define STRESS_TSAN 1
#endif
#endif

#if defined(STRESS_TSAN)
#define DEFAULT_ITEMS 400000 /* ThreadSanitizer: about 5 s on 2 cores */
#else
#define DEFAULT_ITEMS 1000000
#endif

/* An item is (producer << 40) | seq, seq counting from 1, so never NULL. */
#define SEQ_BITS       40
#define TAG(prod, seq) ((void *)(((uintptr_t)(prod) << SEQ_BITS) | (uintptr_t)(seq)))
_Static_assert(sizeof(uintptr_t) >= 8, "items pack 40-bit sequence numbers into pointers");

struct stress {
    struct sl_ring *ring;
    uint64_t items;                    /* per producer */
    atomic_bool cancel;                /* never set: push_wait runs uncancelled */
    atomic_uint_fast64_t consumed;     /* items popped, all consumers */
    _Atomic uint64_t *seen[PRODUCERS]; /* one bit per (producer, seq) */
    atomic_int errors;                 /* failures found by threads (checked in main) */
};

struct producer {
    struct stress *st;
    int id;
    pthread_t thread;
};

struct consumer {
    struct stress *st;
    pthread_t thread;
    uint64_t count[PRODUCERS]; /* items of each producer seen here */
    uint64_t sum[PRODUCERS];   /* sum of their seqs */
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    struct stress *st = p->st;

    for (uint64_t seq = 1; seq <= st->items; seq++) {
        void *item = TAG(p->id, seq);

        if (p->id >= 2) {
            if (sl_ring_push_wait(st->ring, item, &st->cancel) != 0) {
                atomic_fetch_add(&st->errors, 1);
            }
            continue;
        }
        if (p->id == 1 && seq % 3 == 0) {
            /* Reserve first, like a pool task; now and then give it back and
             * reserve again, to exercise cancel_reserve. */
            while (sl_ring_try_reserve(st->ring) != 0) {
                sched_yield();
            }
            if (seq % 7 == 0) {
                sl_ring_cancel_reserve(st->ring);
                while (sl_ring_try_reserve(st->ring) != 0) {
                    sched_yield();
                }
            }
            sl_ring_push_reserved(st->ring, item);
            continue;
        }
        while (sl_ring_try_push(st->ring, item) == SL_EAGAIN) {
            sched_yield();
        }
    }
    return NULL;
}

static void check_item(struct consumer *c, uint64_t *last, void *item)
{
    struct stress *st = c->st;
    uintptr_t v = (uintptr_t)item;
    uint64_t prod = v >> SEQ_BITS;
    uint64_t seq = v & (((uint64_t)1 << SEQ_BITS) - 1);
    uint64_t bit;

    if (prod >= PRODUCERS || seq == 0 || seq > st->items || seq <= last[prod]) {
        atomic_fetch_add(&st->errors, 1);
        return;
    }
    last[prod] = seq;
    bit = (uint64_t)1 << ((seq - 1) % 64);
    if (atomic_fetch_or(&st->seen[prod][(seq - 1) / 64], bit) & bit) {
        atomic_fetch_add(&st->errors, 1); /* duplicate */
    }
    c->count[prod]++;
    c->sum[prod] += seq;
}

static void *consume(void *arg)
{
    struct consumer *c = arg;
    struct stress *st = c->st;
    uint64_t total = st->items * PRODUCERS;
    uint64_t last[PRODUCERS] = {0};
    void *item;

    while (atomic_load(&st->consumed) < total) {
        if (sl_ring_try_pop(st->ring, &item) != 0) {
            sched_yield();
            continue;
        }
        check_item(c, last, item);
        atomic_fetch_add(&st->consumed, 1);
    }
    return NULL;
}

static uint64_t items_per_producer(void)
{
    const char *env = getenv("SLUICE_STRESS_ITEMS");

    if (env != NULL && atoll(env) > 0) {
        return (uint64_t)atoll(env);
    }
    return DEFAULT_ITEMS;
}

static void test_ring_stress_mpmc_sequence_integrity(void **state)
{
    struct stress st = {.ring = sl_ring_new(CAPACITY), .items = items_per_producer()};
    struct producer prods[PRODUCERS];
    struct consumer cons[CONSUMERS] = {0};
    size_t words = (st.items + 63) / 64;
    void *item;

    (void)state;
    assert_non_null(st.ring);
    for (int p = 0; p < PRODUCERS; p++) {
        st.seen[p] = calloc(words, sizeof(*st.seen[p]));
        assert_non_null(st.seen[p]);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        cons[i].st = &st;
        assert_int_equal(pthread_create(&cons[i].thread, NULL, consume, &cons[i]), 0);
    }
    for (int p = 0; p < PRODUCERS; p++) {
        prods[p] = (struct producer){.st = &st, .id = p};
        assert_int_equal(pthread_create(&prods[p].thread, NULL, produce, &prods[p]), 0);
    }
    for (int p = 0; p < PRODUCERS; p++) {
        assert_int_equal(pthread_join(prods[p].thread, NULL), 0);
    }
    for (int i = 0; i < CONSUMERS; i++) {
        assert_int_equal(pthread_join(cons[i].thread, NULL), 0);
    }

    assert_int_equal(atomic_load(&st.errors), 0);
    assert_int_equal(sl_ring_try_pop(st.ring, &item), SL_EAGAIN);
    assert_int_equal(sl_ring_count(st.ring), 0);
    assert_int_equal(sl_ring_waiters(st.ring), 0);
    for (int p = 0; p < PRODUCERS; p++) {
        uint64_t count = 0;
        uint64_t sum = 0;

        for (int i = 0; i < CONSUMERS; i++) {
            count += cons[i].count[p];
            sum += cons[i].sum[p];
        }
        assert_int_equal(count, st.items);
        assert_int_equal(sum, st.items * (st.items + 1) / 2);
        free(st.seen[p]);
    }
    /* All slots came back: the full capacity is usable again. */
    for (uint32_t i = 0; i < CAPACITY; i++) {
        assert_int_equal(sl_ring_try_push(st.ring, TAG(0, i + 1)), 0);
    }
    assert_int_equal(sl_ring_try_push(st.ring, TAG(0, 1)), SL_EAGAIN);
    sl_ring_free(st.ring);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_stress_mpmc_sequence_integrity),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
