/* SPDX-License-Identifier: MIT */
/* Blocking threads that grow on demand (see sched_blocking.h).
 *
 * Everything a decision needs (the queue, the idle list, the live count)
 * is under one mutex, mu, so that a submit and an idle thread deciding to
 * leave are serialised:
 * - submit: hand the task to the most recently idle thread (LIFO, so that
 *   under a light load the same few threads work and the others time out);
 *   with none idle, queue it, and start a thread if more tasks are queued
 *   than threads are starting, below max.
 * - an idle thread waits on its own condvar, on the idle list. When its
 *   wait times out it decides, under mu, while it is still on the list:
 *   a task handed to it meanwhile (me->task) is run; otherwise, above min,
 *   it leaves the list and the live count in the same critical section.
 *   A submit either comes first (and finds it idle: hand-off) or after
 *   (and, finding no idle thread, starts one). No wake-up can be lost.
 *   (tests/unit/test_sched.c puts a submit at both points.)
 * - the idle list non-empty implies the queue is empty: a thread goes idle
 *   only when the queue is, and a task is queued only when nobody is idle.
 *   So hand-offs keep submission order.
 * Starting a thread (pthread_create, joining the threads that left) holds
 * start_mu, never mu: only submits that start a thread wait for it. */
#include "sched_blocking.h"

#include "err.h"
#include "log.h"
#include "mem.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#define IDLE_NS_DEFAULT (2ull * 1000000000ull)

enum slot_state { SLOT_FREE, SLOT_USED, SLOT_LEFT };

struct blk_slot {
    struct sl_blocking *b; /* read-only */
    int index;             /* read-only: the thread's name */
    pthread_cond_t cv;     /* its thread waits here while idle (CLOCK_MONOTONIC) */
    /* Under mu. */
    enum slot_state state; /* USED from start to exit, LEFT until joined */
    bool has_id;           /* thread is set (the starter stores it after create) */
    pthread_t thread;      /* to join */
    struct sl_task *task;  /* handed over by a submit while idle */
    bool on_list;          /* on the idle list */
    struct blk_slot *next; /* idle list links */
    struct blk_slot *prev;
};

/* The pool whose blocking thread this is, NULL on other threads. */
static _Thread_local const struct sl_blocking *tls_pool;

/* ==== Lists (under mu) ==== */

static void queue_push(struct sl_blocking *b, struct sl_task *task)
{
    task->sl__next = NULL;
    if (b->tail != NULL) {
        b->tail->sl__next = task;
    } else {
        b->head = task;
    }
    b->tail = task;
    atomic_fetch_add_explicit(&b->queued, 1, memory_order_relaxed);
}

static struct sl_task *queue_pop(struct sl_blocking *b)
{
    struct sl_task *task = b->head;

    if (task != NULL) {
        b->head = task->sl__next;
        b->tail = b->head != NULL ? b->tail : NULL;
        atomic_fetch_sub_explicit(&b->queued, 1, memory_order_relaxed);
    }
    return task;
}

static void idle_push(struct sl_blocking *b, struct blk_slot *me)
{
    me->prev = NULL;
    me->next = b->idle;
    if (b->idle != NULL) {
        b->idle->prev = me;
    }
    b->idle = me;
    me->on_list = true;
}

static void idle_remove(struct sl_blocking *b, struct blk_slot *me)
{
    if (!me->on_list) {
        return;
    }
    if (me->prev != NULL) {
        me->prev->next = me->next;
    } else {
        b->idle = me->next;
    }
    if (me->next != NULL) {
        me->next->prev = me->prev;
    }
    me->on_list = false;
}

/* ==== Threads ==== */

static struct timespec deadline_after(uint64_t ns)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ns += (uint64_t)ts.tv_nsec;
    ts.tv_sec += (time_t)(ns / 1000000000ull);
    ts.tv_nsec = (long)(ns % 1000000000ull);
    return ts;
}

/* Waits on the idle list until handed a task or stopping (true), or until
 * it timed out above min (false: it left the live count). mu held. */
static bool idle_wait(struct sl_blocking *b, struct blk_slot *me)
{
    bool timed = b->live > b->min;
    struct timespec deadline = deadline_after(b->idle_ns);

    idle_push(b, me);
    for (;;) {
        int rc = timed ? pthread_cond_timedwait(&me->cv, &b->mu, &deadline)
                       : pthread_cond_wait(&me->cv, &b->mu);

        if (me->task != NULL || b->stopping) {
            idle_remove(b, me); /* a submit took it off the list; stop did not */
            return true;
        }
        if (rc != ETIMEDOUT) {
            continue; /* a spurious wake-up */
        }
        if (b->hooks.on_timeout != NULL) {
            pthread_mutex_unlock(&b->mu);
            b->hooks.on_timeout(b->hooks.arg);
            pthread_mutex_lock(&b->mu);
            if (me->task != NULL || b->stopping) {
                idle_remove(b, me);
                return true;
            }
        }
        if (b->live > b->min) {
            idle_remove(b, me);
            b->live--;
            return false;
        }
        timed = false; /* at min: sleep until there is work */
    }
}

static void *blk_main(void *arg)
{
    struct blk_slot *me = arg;
    struct sl_blocking *b = me->b;
    void (*on_exit)(void *) = NULL;
    bool left = false;

    tls_pool = b;
    if (b->has_cpus) {
        (void)pthread_setaffinity_np(pthread_self(), sizeof(b->cpus), &b->cpus);
    }
    /* Timed sleeps here model calls (`delay`) and pace retries: Linux lets
     * a normal thread's timer fire up to 50 us late (timer slack), which
     * made each short call 50 us longer than asked. 1 us. */
    (void)prctl(PR_SET_TIMERSLACK, 1000UL, 0UL, 0UL, 0UL);
    pthread_mutex_lock(&b->mu);
    b->starting--;
    for (;;) {
        struct sl_task *task = me->task != NULL ? me->task : queue_pop(b);

        me->task = NULL;
        if (task != NULL) {
            pthread_mutex_unlock(&b->mu);
            task->fn(task);
            b->done(b->done_arg);
            pthread_mutex_lock(&b->mu);
        } else if (b->stopping) {
            break;
        } else if (!idle_wait(b, me)) {
            left = true;
            break;
        }
    }
    me->state = SLOT_LEFT;
    on_exit = left ? b->hooks.on_exit : NULL;
    void *hook_arg = b->hooks.arg;
    pthread_mutex_unlock(&b->mu);
    if (on_exit != NULL) {
        on_exit(hook_arg);
    }
    tls_pool = NULL;
    return NULL;
}

/* Starts one thread for a reservation (live and starting counted). Holds
 * start_mu, not mu, while it joins the threads that left and creates the new
 * one. Returns 0 or an errno value (the reservation is then given back by
 * the caller). */
static int start_one(struct sl_blocking *b)
{
    static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    pthread_t left[SL_SCHED_BLOCKING_MAX];
    struct blk_slot *slot = NULL;
    sigset_t all, old;
    pthread_t id;
    int nleft = 0;
    int e = 0;

    pthread_mutex_lock(&b->start_mu);
    pthread_mutex_lock(&b->mu);
    for (int i = 0; i < b->max; i++) {
        struct blk_slot *s = &b->slots[i];
        if (s->state == SLOT_LEFT && s->has_id) {
            left[nleft++] = s->thread;
            s->state = SLOT_FREE;
            s->has_id = false;
        }
        if (s->state == SLOT_FREE && slot == NULL) {
            slot = s;
        }
    }
    /* live counts this reservation and every USED slot: one is free. */
    SL_ASSERT(slot != NULL);
    slot->state = SLOT_USED;
    if (b->fail_countdown > 0 && --b->fail_countdown == 0) {
        e = EAGAIN;
    }
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < nleft; i++) {
        (void)pthread_join(left[i], NULL); /* they left mu: only returning */
    }
    /* Started with asynchronous signals blocked, whatever thread submits. */
    (void)sigfillset(&all);
    for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++) {
        (void)sigdelset(&all, sync_signals[i]);
    }
    (void)pthread_sigmask(SIG_BLOCK, &all, &old);
    e = e != 0 ? e : pthread_create(&id, NULL, blk_main, slot);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_lock(&b->mu);
    if (e == 0) {
        slot->thread = id;
        slot->has_id = true;
        b->started++;
        b->peak = b->live > b->peak ? b->live : b->peak;
    } else {
        slot->state = SLOT_FREE;
    }
    pthread_mutex_unlock(&b->mu);
    if (e == 0) {
        char name[16];
        (void)snprintf(name, sizeof(name), "sl-blocking-%d", slot->index);
        (void)pthread_setname_np(id, name);
    }
    pthread_mutex_unlock(&b->start_mu);
    return e;
}

/* A start failed: gives the reservation back. Returns the queue when no
 * thread is left to run it. */
static struct sl_task *start_failed(struct sl_blocking *b, int e)
{
    struct sl_task *orphans = NULL;
    bool warn;
    int live;

    pthread_mutex_lock(&b->mu);
    b->live--;
    b->starting--;
    live = b->live;
    warn = !b->warned;
    b->warned = true;
    if (live == 0) {
        orphans = b->head;
        b->head = b->tail = NULL;
        atomic_store_explicit(&b->queued, 0, memory_order_relaxed);
    }
    pthread_mutex_unlock(&b->mu);
    if (warn) {
        sl_log_warn("cannot start a blocking thread: %s; %s", strerror(e),
                    live > 0 ? "blocking tasks wait for the threads running"
                             : "blocking tasks run on the worker threads");
    }
    return orphans;
}

/* ==== API ==== */

int sl__blocking_init(struct sl_blocking *b, int min, int max, void (*done)(void *), void *arg)
{
    pthread_condattr_t attr;

    memset(b, 0, sizeof(*b));
    b->min = min;
    b->max = max;
    b->done = done;
    b->done_arg = arg;
    b->idle_ns = IDLE_NS_DEFAULT;
    atomic_init(&b->queued, 0);
    /* A thread inherits its creator's CPUs, and most are started by CPU
     * workers, which cpu_affinity pins: reset them to the process's. */
    b->has_cpus = sched_getaffinity(0, sizeof(b->cpus), &b->cpus) == 0;
    b->slots = sl_calloc((size_t)max + 1, sizeof(*b->slots));
    if (b->slots == NULL) {
        return SL_ENOMEM;
    }
    (void)pthread_condattr_init(&attr);
    (void)pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    for (int i = 0; i < max; i++) {
        b->slots[i].b = b;
        b->slots[i].index = i;
        (void)pthread_cond_init(&b->slots[i].cv, &attr);
    }
    (void)pthread_condattr_destroy(&attr);
    (void)pthread_mutex_init(&b->mu, NULL);
    (void)pthread_mutex_init(&b->start_mu, NULL);
    return 0;
}

int sl__blocking_start(struct sl_blocking *b, struct sl_err *err)
{
    for (int i = 0; i < b->min; i++) {
        int e;

        pthread_mutex_lock(&b->mu);
        b->live++;
        b->starting++;
        pthread_mutex_unlock(&b->mu);
        e = start_one(b);
        if (e != 0) {
            (void)start_failed(b, e); /* nothing queued yet */
            return sl_err_set(err, SL_EFATAL, "cannot start blocking thread: %s", strerror(e));
        }
    }
    return 0;
}

struct sl_task *sl__blocking_submit(struct sl_blocking *b, struct sl_task *task)
{
    bool start = false;
    int e;

    pthread_mutex_lock(&b->mu);
    SL_ASSERT(!b->stopping);
    if (b->idle != NULL) {
        struct blk_slot *s = b->idle;
        idle_remove(b, s);
        s->task = task;
        pthread_cond_signal(&s->cv);
    } else {
        queue_push(b, task);
        /* Each queued task beyond the threads already starting gets one:
         * busy threads may take long. */
        if (atomic_load_explicit(&b->queued, memory_order_relaxed) > b->starting &&
            b->live < b->max) {
            b->live++;
            b->starting++;
            start = true;
        }
    }
    pthread_mutex_unlock(&b->mu);
    if (!start) {
        return NULL;
    }
    e = start_one(b);
    return e == 0 ? NULL : start_failed(b, e);
}

void sl__blocking_stop(struct sl_blocking *b)
{
    pthread_t ids[SL_SCHED_BLOCKING_MAX];
    int n = 0;

    SL_ASSERT(tls_pool != b);
    pthread_mutex_lock(&b->start_mu); /* no start in flight (none can be: no task runs) */
    pthread_mutex_lock(&b->mu);
    b->stopping = true;
    for (struct blk_slot *s = b->idle; s != NULL; s = s->next) {
        pthread_cond_signal(&s->cv);
    }
    for (int i = 0; i < b->max; i++) {
        if (b->slots[i].has_id) { /* running, idle or left: all get joined */
            ids[n++] = b->slots[i].thread;
            b->slots[i].has_id = false;
        }
    }
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < n; i++) {
        (void)pthread_join(ids[i], NULL);
    }
    pthread_mutex_unlock(&b->start_mu);
}

void sl__blocking_destroy(struct sl_blocking *b)
{
    if (b->slots == NULL) {
        return;
    }
    for (int i = 0; i < b->max; i++) {
        (void)pthread_cond_destroy(&b->slots[i].cv);
    }
    (void)pthread_mutex_destroy(&b->mu);
    (void)pthread_mutex_destroy(&b->start_mu);
    sl_free(b->slots);
    b->slots = NULL;
}

long sl__blocking_waiting(const struct sl_blocking *b)
{
    /* Relaxed: a hint for a task deciding whether to give its thread up. */
    return atomic_load_explicit(&b->queued, memory_order_relaxed);
}

bool sl__blocking_on_thread(const struct sl_blocking *b)
{
    return tls_pool == b;
}

void sl__blocking_stats(struct sl_blocking *b, int *ret_now, int *ret_peak, uint64_t *ret_started)
{
    pthread_mutex_lock(&b->mu);
    if (ret_now != NULL) {
        *ret_now = b->live;
    }
    if (ret_peak != NULL) {
        *ret_peak = b->peak;
    }
    if (ret_started != NULL) {
        *ret_started = b->started;
    }
    pthread_mutex_unlock(&b->mu);
}

int sl__blocking_idle_count(struct sl_blocking *b)
{
    int n = 0;

    pthread_mutex_lock(&b->mu);
    for (const struct blk_slot *slot = b->idle; slot != NULL; slot = slot->next) {
        n++;
    }
    pthread_mutex_unlock(&b->mu);
    return n;
}

void sl__blocking_set_idle(struct sl_blocking *b, uint64_t idle_ns)
{
    pthread_mutex_lock(&b->mu);
    b->idle_ns = idle_ns;
    pthread_mutex_unlock(&b->mu);
}

void sl__blocking_fail_start(struct sl_blocking *b, int nth)
{
    pthread_mutex_lock(&b->mu);
    b->fail_countdown = nth;
    pthread_mutex_unlock(&b->mu);
}

void sl__blocking_set_hooks(struct sl_blocking *b, const struct sl_blocking_hooks *hooks)
{
    pthread_mutex_lock(&b->mu);
    b->hooks = *hooks;
    pthread_mutex_unlock(&b->mu);
}
