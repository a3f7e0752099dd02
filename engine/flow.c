/* SPDX-License-Identifier: MIT */
/* The memory_limit byte budget (see flow.h). */
#include "flow.h"

#include "clock.h"
#include "err.h"

#include <time.h>

/* How long a waiter sleeps before it re-checks on its own. Wake-ups are not
 * lost (see sl_flow_release), so this is only a backstop. */
#define WAIT_SLICE_NS (20 * 1000 * 1000ull)

void sl_flow_init(struct sl_flow *flow, uint64_t limit)
{
    pthread_condattr_t attr;

    flow->limit = limit;
    flow->configured = limit;
    flow->reserve = 0;
    atomic_init(&flow->used, 0);
    atomic_init(&flow->peak, 0);
    atomic_init(&flow->waiters, 0);
    atomic_init(&flow->wake_at, 0);
    atomic_init(&flow->gated, 0);
    atomic_init(&flow->held, 0);
    atomic_init(&flow->alone, NULL);
    flow->on_release = NULL;
    flow->on_release_arg = NULL;
    atomic_init(&flow->waker, NULL);
    pthread_mutex_init(&flow->lock, NULL);
    /* Timed waits use the monotonic clock: sleep deadlines are sl_now_ns()
     * values, and a wall-clock step must not stretch or cut a wait. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&flow->cond, &attr);
    pthread_condattr_destroy(&attr);
}

void sl_flow_release_all(struct sl_flow *flow)
{
    pthread_mutex_destroy(&flow->lock);
    pthread_cond_destroy(&flow->cond);
}

/* Waits on flow->cond (lock held) until woken or the monotonic deadline. */
static void wait_until(struct sl_flow *flow, uint64_t deadline_ns)
{
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / 1000000000ull),
        .tv_nsec = (long)(deadline_ns % 1000000000ull),
    };

    (void)pthread_cond_timedwait(&flow->cond, &flow->lock, &ts);
}

/* Whether holder may go past the limit now: no other holder is past it
 * (it takes that turn), and nothing but holds is in flight. */
static bool may_go_alone(struct sl_flow *flow, const void *holder, uint_fast64_t used)
{
    const void *none = NULL;
    /* Acquire: pairs with the release in hold_done, so a turn given back
     * comes with the `held` that holder lowered before (a batch of its
     * bytes is in flight, and must be seen as one). */
    bool took = atomic_compare_exchange_strong_explicit(&flow->alone, &none, holder,
                                                        memory_order_acquire, memory_order_acquire);

    if (!took && none != holder) {
        return false;
    }
    /* Relaxed: ordered by the exchange above; a stale value only makes the
     * holder wait for the next release or check (WAIT_SLICE_NS). */
    if (used == atomic_load_explicit(&flow->held, memory_order_relaxed)) {
        return true;
    }
    if (took) {
        /* Not now: a holder cancelled while waiting must not keep it. */
        atomic_store_explicit(&flow->alone, NULL, memory_order_relaxed);
    }
    return false;
}

/* holder: NULL for a batch, which passes over the limit only when nothing
 * at all is in flight; a hold's owner passes as may_go_alone says. */
static bool try_charge(struct sl_flow *flow, uint64_t bytes, const void *holder)
{
    /* seq_cst load: in sl_flow_acquire this is the load half of the waiter's
     * store-load pair (see sl_flow_release). The CAS itself is relaxed: the
     * budget is a counter, it guards no other data, and a failed CAS re-reads
     * the latest value anyway. */
    uint_fast64_t used = atomic_load_explicit(&flow->used, memory_order_seq_cst);
    do {
        bool over = used + bytes + flow->reserve > flow->limit;
        if (over && (holder != NULL ? !may_go_alone(flow, holder, used) : used > 0)) {
            return false;
        }
    } while (!atomic_compare_exchange_weak_explicit(&flow->used, &used, used + bytes,
                                                    memory_order_relaxed, memory_order_relaxed));
    if (holder != NULL) {
        atomic_fetch_add_explicit(&flow->held, bytes, memory_order_relaxed);
    }
    uint_fast64_t peak = atomic_load_explicit(&flow->peak, memory_order_relaxed);
    while (used + bytes > peak &&
           !atomic_compare_exchange_weak_explicit(&flow->peak, &peak, used + bytes,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    return true;
}

bool sl_flow_try_acquire(struct sl_flow *flow, uint64_t bytes)
{
    return try_charge(flow, bytes, NULL);
}

/* What a waiter on the budget waits for: try(wish) is true once it got it
 * (a charge of bytes for holder, or a place in win). */
struct flow_wish {
    bool (*try)(const struct flow_wish *wish);
    struct sl_flow *flow;
    uint64_t bytes;
    const void *holder;
    struct sl_flow_window *win;
    uint64_t wake_at; /* the highest `used` it may succeed at (see sl_flow.wake_at) */
};

/* Waits until wish->try succeeds or *cancel is set (SL_ECANCELED): the one
 * wait of the budget's waiters (a charge, a window's place), woken by
 * whatever gives back (sl_flow_release, sl_flow_window_leave). */
static int wait_for(struct sl_flow *flow, const struct flow_wish *wish, const atomic_bool *cancel)
{
    if (wish->try(wish)) {
        return 0;
    }
    pthread_mutex_lock(&flow->lock);
    /* seq_cst: the store half of the waiter's store-load pair; the load
     * half is the seq_cst load in the try below (of `used`, or a window's
     * `live`). */
    atomic_fetch_add_explicit(&flow->waiters, 1, memory_order_seq_cst);
    /* Releases that cannot let any waiter on leave them asleep: a source
     * waiting for room for a family of copies was woken by each copy
     * freed, 60 times per batch of a 60-way diamond. seq_cst, between the
     * two halves above: a releaser that read the old value had lowered
     * `used` before, and the try below sees it. */
    uint_fast64_t at = atomic_load_explicit(&flow->wake_at, memory_order_seq_cst);
    while (at < wish->wake_at &&
           !atomic_compare_exchange_weak_explicit(&flow->wake_at, &at, wish->wake_at,
                                                  memory_order_seq_cst, memory_order_seq_cst)) {
    }
    int rc = 0;
    while (!wish->try(wish)) {
        if (cancel != NULL && atomic_load_explicit(cancel, memory_order_acquire)) {
            rc = SL_ECANCELED;
            break;
        }
        wait_until(flow, sl_now_ns() + WAIT_SLICE_NS);
    }
    /* The last waiter out: no threshold is wanted any more (waiters join
     * and leave under the lock, so none is between the two). */
    if (atomic_fetch_sub_explicit(&flow->waiters, 1, memory_order_seq_cst) == 1) {
        atomic_store_explicit(&flow->wake_at, 0, memory_order_seq_cst);
    }
    pthread_mutex_unlock(&flow->lock);
    return rc;
}

static bool try_charge_wish(const struct flow_wish *wish)
{
    return try_charge(wish->flow, wish->bytes, wish->holder);
}

/* Charges bytes for holder (NULL: a batch), waiting as sl_flow_acquire
 * says. */
static int
charge_wait(struct sl_flow *flow, uint64_t bytes, const void *holder, const atomic_bool *cancel)
{
    struct flow_wish wish = {
        .try = try_charge_wish, .flow = flow, .bytes = bytes, .holder = holder};

    /* A batch goes on once it fits, or once nothing is in flight; a hold
     * may go alone when only holds are (which releases do not tell): any
     * release wakes it. */
    if (holder != NULL) {
        wish.wake_at = UINT64_MAX;
    } else if (bytes + flow->reserve <= flow->limit) {
        wish.wake_at = flow->limit - flow->reserve - bytes;
    }
    return wait_for(flow, &wish, cancel);
}

int sl_flow_acquire(struct sl_flow *flow, uint64_t bytes, const atomic_bool *cancel)
{
    return charge_wait(flow, bytes, NULL, cancel);
}

/* The holder's hold is down to 0: another may go past the limit. */
static void hold_done(struct sl_flow *flow, uint64_t *held)
{
    const void *me = held;

    if (*held == 0) {
        /* Release: after this holder lowered `held` (see may_go_alone). */
        (void)atomic_compare_exchange_strong_explicit(&flow->alone, &me, NULL, memory_order_release,
                                                      memory_order_relaxed);
    }
}

int sl_flow_hold(struct sl_flow *flow, uint64_t *held, uint64_t bytes, const atomic_bool *cancel)
{
    if (bytes > *held) {
        int rc = charge_wait(flow, bytes - *held, held, cancel);
        if (rc != 0) {
            return rc;
        }
    } else if (bytes < *held) {
        atomic_fetch_sub_explicit(&flow->held, *held - bytes, memory_order_relaxed);
        sl_flow_release(flow, *held - bytes);
    }
    *held = bytes;
    hold_done(flow, held);
    return 0;
}

void sl_flow_unhold(struct sl_flow *flow, uint64_t *held, uint64_t bytes)
{
    SL_ASSERT(bytes <= *held);
    atomic_fetch_sub_explicit(&flow->held, bytes, memory_order_relaxed);
    *held -= bytes;
    hold_done(flow, held);
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

void sl_flow_charge(struct sl_flow *flow, struct sl_flow_credit *credit, uint64_t bytes)
{
    if (credit != NULL) {
        /* Relaxed: the credit is a counter of the family's own; the bytes
         * it stands for are in `used` already. */
        uint_fast64_t was = atomic_fetch_add_explicit(&credit->drawn, bytes, memory_order_relaxed);
        uint64_t left = was < credit->granted ? credit->granted - was : 0;
        bytes -= left < bytes ? left : bytes;
    }
    if (bytes > 0) {
        sl_flow_force(flow, bytes);
    }
}

void sl_flow_release(struct sl_flow *flow, uint64_t bytes)
{
    /* A store-load (Dekker) pair on each side: here "lower `used`, then read
     * `waiters`"; in sl_flow_acquire "raise `waiters`, then read `used`".
     * At least one side must see the other's store, or the waiter sleeps
     * through this release while nobody wakes it. Only seq_cst on all four
     * operations guarantees that (they are then in one total order, and the
     * later load sees the earlier store): a relaxed store here may become
     * visible after the load of `waiters` on non-TSO CPUs (ARM, POWER). On
     * x86 the RMW is a locked instruction either way, so this costs nothing
     * there. */
    uint_fast64_t used =
        atomic_fetch_sub_explicit(&flow->used, bytes, memory_order_seq_cst) - bytes;
    /* The same store-load pair with a gated decoder, which raises `gated`
     * and then reads `used` (runtime.c): one of us sees the other. */
    if (atomic_load_explicit(&flow->gated, memory_order_seq_cst) > 0 && !sl_flow_spent(flow) &&
        flow->on_release != NULL) {
        flow->on_release(flow->on_release_arg);
    }
    if (atomic_load_explicit(&flow->waiters, memory_order_seq_cst) > 0 &&
        used <= atomic_load_explicit(&flow->wake_at, memory_order_seq_cst)) {
        /* The waiter checks under the lock before it waits: taking the lock
         * here means it either already waits or will see our release. */
        pthread_mutex_lock(&flow->lock);
        pthread_cond_broadcast(&flow->cond);
        pthread_mutex_unlock(&flow->lock);
    }
}

bool sl_flow_spent(struct sl_flow *flow)
{
    return atomic_load_explicit(&flow->used, memory_order_seq_cst) >= flow->limit;
}

void sl_flow_set_aside(struct sl_flow *flow, uint64_t bytes)
{
    uint64_t floor = flow->configured / 2;

    flow->limit = flow->limit > floor + bytes ? flow->limit - bytes : floor;
}

void sl_flow_wake_all(struct sl_flow *flow)
{
    /* Acquire pairs with the release in sl_flow_set_waker: the waker's
     * fields are seen as written. */
    const struct sl_flow_waker *waker = atomic_load_explicit(&flow->waker, memory_order_acquire);

    pthread_mutex_lock(&flow->lock);
    pthread_cond_broadcast(&flow->cond);
    pthread_mutex_unlock(&flow->lock);
    if (waker != NULL) {
        waker->fn(waker->arg);
    }
}

void sl_flow_set_waker(struct sl_flow *flow, const struct sl_flow_waker *waker)
{
    /* Release: a thread that loads the pointer sees fn and arg. */
    atomic_store_explicit(&flow->waker, waker, memory_order_release);
}

int sl_flow_sleep_until(struct sl_flow *flow, uint64_t deadline_ns, const atomic_bool *cancel)
{
    int rc = 0;

    pthread_mutex_lock(&flow->lock);
    for (;;) {
        /* Checked under the lock: sl_pipeline_stop sets the flag before it
         * takes the lock to broadcast, so the stop is either seen here or
         * wakes the wait below. Acquire pairs with its release store. */
        if (cancel != NULL && atomic_load_explicit(cancel, memory_order_acquire)) {
            rc = SL_ECANCELED;
            break;
        }
        if (sl_now_ns() >= deadline_ns) {
            break;
        }
        /* Other wake-ups (budget releases) only make us re-check. */
        wait_until(flow, deadline_ns);
    }
    pthread_mutex_unlock(&flow->lock);
    return rc;
}

bool sl_flow_window_try_enter(struct sl_flow_window *win)
{
    /* seq_cst: the load half of the waiter's store-load pair (the store is
     * `waiters` in sl_flow_window_enter; the leaver's pair is the other way
     * round, see sl_flow_window_leave). */
    unsigned live = atomic_load_explicit(&win->live, memory_order_seq_cst);

    do {
        if (win->max != 0 && live >= win->max) {
            return false;
        }
    } while (!atomic_compare_exchange_weak_explicit(&win->live, &live, live + 1,
                                                    memory_order_seq_cst, memory_order_seq_cst));
    return true;
}

static bool try_enter_wish(const struct flow_wish *wish)
{
    return sl_flow_window_try_enter(wish->win);
}

int sl_flow_window_enter(struct sl_flow_window *win, const atomic_bool *cancel)
{
    struct flow_wish wish = {.try = try_enter_wish, .win = win};

    return wait_for(win->flow, &wish, cancel);
}

/* A family's growth, x16, is kept below this (no overflow in
 * sl_flow_window_credit for any admitted size a process can hold). */
#define GROWTH_X16_MAX (1u << 24)

uint64_t sl_flow_window_credit(const struct sl_flow_window *win, uint64_t admitted)
{
    uint64_t growth = atomic_load_explicit(&win->growth_x16, memory_order_relaxed);
    uint64_t credit = admitted < (UINT64_MAX >> 24) ? admitted * growth / 16 : win->credit_max;

    return credit < win->credit_max ? credit : win->credit_max;
}

/* Learns a family's growth from credit: a larger one at once (the next
 * batches must be admitted with room for it), a smaller one a quarter of
 * the way per family (one that a filter emptied must not make the next
 * ones look small). Racing leavers may lose one's update: it is an
 * estimate, and the next family measures again. */
static void learn_growth(struct sl_flow_window *win, const struct sl_flow_credit *credit)
{
    uint64_t drawn = atomic_load_explicit(&credit->drawn, memory_order_relaxed);

    if (credit->base == 0) {
        return;
    }
    uint64_t seen =
        drawn / credit->base < GROWTH_X16_MAX / 16 ? drawn * 16 / credit->base : GROWTH_X16_MAX;
    unsigned was = atomic_load_explicit(&win->growth_x16, memory_order_relaxed);
    unsigned now = seen > was ? (unsigned)seen : was - (unsigned)((was - seen) / 4);
    if (now != was) {
        atomic_store_explicit(&win->growth_x16, now, memory_order_relaxed);
    }
}

void sl_flow_window_leave(struct sl_flow_window *win, const struct sl_flow_credit *credit)
{
    struct sl_flow *flow = win->flow;

    if (credit != NULL) {
        uint64_t drawn = atomic_load_explicit(&credit->drawn, memory_order_relaxed);
        learn_growth(win, credit);
        /* Before `live` drops: a source woken below sees the bytes too. */
        if (drawn < credit->granted) {
            sl_flow_release(flow, credit->granted - drawn);
        }
    }

    /* The same store-load pair as sl_flow_release: lower `live`, then read
     * `waiters`; the waiter raises `waiters`, then reads `live`. */
    atomic_fetch_sub_explicit(&win->live, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&flow->waiters, memory_order_seq_cst) > 0) {
        pthread_mutex_lock(&flow->lock);
        pthread_cond_broadcast(&flow->cond);
        pthread_mutex_unlock(&flow->lock);
    }
}
