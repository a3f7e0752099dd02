/* SPDX-License-Identifier: MIT */
/* The memory_limit byte budget (see flow.h). */
#include "flow.h"

#include "err.h"

#include <time.h>

void sl_flow_init(struct sl_flow *flow, uint64_t limit)
{
    flow->limit = limit;
    atomic_init(&flow->used, 0);
    atomic_init(&flow->peak, 0);
    atomic_init(&flow->waiters, 0);
    pthread_mutex_init(&flow->lock, NULL);
    pthread_cond_init(&flow->cond, NULL);
}

void sl_flow_release_all(struct sl_flow *flow)
{
    pthread_mutex_destroy(&flow->lock);
    pthread_cond_destroy(&flow->cond);
}

static bool try_charge(struct sl_flow *flow, uint64_t bytes)
{
    /* Relaxed CAS loop: the budget is a counter, it guards no other data. */
    uint_fast64_t used = atomic_load_explicit(&flow->used, memory_order_relaxed);
    do {
        if (used > 0 && used + bytes > flow->limit) {
            return false;
        }
    } while (!atomic_compare_exchange_weak_explicit(&flow->used, &used, used + bytes,
                                                    memory_order_relaxed, memory_order_relaxed));
    uint_fast64_t peak = atomic_load_explicit(&flow->peak, memory_order_relaxed);
    while (used + bytes > peak &&
           !atomic_compare_exchange_weak_explicit(&flow->peak, &peak, used + bytes,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    return true;
}

bool sl_flow_try_acquire(struct sl_flow *flow, uint64_t bytes)
{
    return try_charge(flow, bytes);
}

int sl_flow_acquire(struct sl_flow *flow, uint64_t bytes, const atomic_bool *cancel)
{
    if (try_charge(flow, bytes)) {
        return 0;
    }
    pthread_mutex_lock(&flow->lock);
    atomic_fetch_add_explicit(&flow->waiters, 1, memory_order_seq_cst);
    while (!try_charge(flow, bytes)) {
        if (cancel != NULL && atomic_load_explicit(cancel, memory_order_acquire)) {
            atomic_fetch_sub_explicit(&flow->waiters, 1, memory_order_seq_cst);
            pthread_mutex_unlock(&flow->lock);
            return SL_ECANCELED;
        }
        /* A timed wait bounds the cost of a wake-up lost between the failed
         * charge and the wait (release does not take the lock when it sees no
         * waiter). */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&flow->cond, &flow->lock, &ts);
    }
    atomic_fetch_sub_explicit(&flow->waiters, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&flow->lock);
    return 0;
}

void sl_flow_force(struct sl_flow *flow, uint64_t bytes)
{
    uint_fast64_t used = atomic_fetch_add_explicit(&flow->used, bytes, memory_order_relaxed);
    uint_fast64_t peak = atomic_load_explicit(&flow->peak, memory_order_relaxed);

    while (used + bytes > peak &&
           !atomic_compare_exchange_weak_explicit(&flow->peak, &peak, used + bytes,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void sl_flow_release(struct sl_flow *flow, uint64_t bytes)
{
    atomic_fetch_sub_explicit(&flow->used, bytes, memory_order_relaxed);
    /* seq_cst pairs with the waiter's increment: either we see the waiter or
     * it sees our release when it retries the charge. */
    if (atomic_load_explicit(&flow->waiters, memory_order_seq_cst) > 0) {
        pthread_mutex_lock(&flow->lock);
        pthread_cond_broadcast(&flow->cond);
        pthread_mutex_unlock(&flow->lock);
    }
}

void sl_flow_wake_all(struct sl_flow *flow)
{
    pthread_mutex_lock(&flow->lock);
    pthread_cond_broadcast(&flow->cond);
    pthread_mutex_unlock(&flow->lock);
}
