/* SPDX-License-Identifier: MIT */
/* Throughput of engine/ring.c: 10M pointers through a capacity-1024 ring,
 * single producer / single consumer and 2 producers / 2 consumers, with
 * try_push/try_pop (spin a little, then yield), plus SPSC with push_wait.
 * Prints items per second (one item = one push and one pop).
 *
 * Build and run from the repository root:
 *   gcc -std=c11 -O2 -g -D_GNU_SOURCE -Iengine bench/ring_bench.c engine/ring.c \
 *       engine/err.c engine/mem.c -lpthread -o /tmp/ring_bench && /tmp/ring_bench [items]
 */
#include "err.h"
#include "ring.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CAPACITY 1024

struct bench {
    struct sl_ring *ring;
    uint64_t per_producer;
    int producers;
    int wait;                  /* producers use push_wait */
    atomic_int producers_done; /* set after every producer joined */
    atomic_uint_fast64_t checksum;
};

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void backoff(unsigned *spins)
{
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __asm__ __volatile__("pause");
#endif
    } else {
        *spins = 0;
        sched_yield();
    }
}

static void *producer(void *arg)
{
    struct bench *b = arg;
    unsigned spins = 0;

    for (uint64_t i = 1; i <= b->per_producer; i++) {
        if (b->wait) {
            (void)sl_ring_push_wait(b->ring, (void *)(uintptr_t)i, NULL);
            continue;
        }
        while (sl_ring_try_push(b->ring, (void *)(uintptr_t)i) != 0) {
            backoff(&spins);
        }
    }
    return NULL;
}

static void *consumer(void *arg)
{
    struct bench *b = arg;
    uint64_t sum = 0;
    unsigned spins = 0;
    void *item;

    for (;;) {
        /* Read before popping: if producers were done and the pop then
         * fails, every push has completed and the ring is really empty. */
        int done = atomic_load(&b->producers_done);

        if (sl_ring_try_pop(b->ring, &item) == 0) {
            sum += (uintptr_t)item;
        } else if (done) {
            break;
        } else {
            backoff(&spins);
        }
    }
    atomic_fetch_add(&b->checksum, sum);
    return NULL;
}

static void run(const char *name, uint64_t items, int producers, int consumers, int wait)
{
    struct bench b = {.ring = sl_ring_new(CAPACITY),
                      .per_producer = items / (uint64_t)producers,
                      .producers = producers,
                      .wait = wait};
    pthread_t threads[16];
    uint64_t expect = (uint64_t)producers * (b.per_producer * (b.per_producer + 1) / 2);
    uint64_t t0 = now_ns();
    double secs;
    int n = 0;

    for (int i = 0; i < producers; i++) {
        pthread_create(&threads[n++], NULL, producer, &b);
    }
    for (int i = 0; i < consumers; i++) {
        pthread_create(&threads[n++], NULL, consumer, &b);
    }
    for (int i = 0; i < producers; i++) {
        pthread_join(threads[i], NULL);
    }
    atomic_store(&b.producers_done, 1);
    for (int i = producers; i < n; i++) {
        pthread_join(threads[i], NULL);
    }
    secs = (double)(now_ns() - t0) / 1e9;
    printf("%-22s %10.1f M items/s  (%.3f s)%s\n", name,
           (double)(b.per_producer * (uint64_t)producers) / secs / 1e6, secs,
           atomic_load(&b.checksum) == expect ? "" : "  CHECKSUM MISMATCH");
    sl_ring_free(b.ring);
}

/* One thread pushing and popping: the uncontended cost of a push + pop. */
static void run_single(uint64_t items)
{
    struct sl_ring *ring = sl_ring_new(CAPACITY);
    uint64_t t0 = now_ns();
    uint64_t sum = 0;
    double secs;
    void *item;

    for (uint64_t i = 1; i <= items; i++) {
        (void)sl_ring_try_push(ring, (void *)(uintptr_t)i);
        (void)sl_ring_try_pop(ring, &item);
        sum += (uintptr_t)item;
    }
    secs = (double)(now_ns() - t0) / 1e9;
    printf("%-22s %10.1f M items/s  (%.1f ns per push+pop)%s\n", "1 thread push+pop",
           (double)items / secs / 1e6, secs * 1e9 / (double)items,
           sum == items * (items + 1) / 2 ? "" : "  CHECKSUM MISMATCH");
    sl_ring_free(ring);
}

int main(int argc, char **argv)
{
    uint64_t items = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000;

    printf("ring capacity %d, %llu items\n", CAPACITY, (unsigned long long)items);
    run_single(items);
    run("spsc try_push/try_pop", items, 1, 1, 0);
    run("2p2c try_push/try_pop", items, 2, 2, 0);
    run("spsc push_wait/try_pop", items, 1, 1, 1);
    return 0;
}
