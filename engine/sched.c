/* SPDX-License-Identifier: MIT */
/* Fixed worker pool (see sched.h). Each worker owns a fixed-size Chase-Lev
 * deque (Chase & Lev 2005, with the C11 orderings of Le et al. 2013, written
 * with seq_cst operations instead of fences because ThreadSanitizer does not
 * model fences): the owner pushes and pops at the bottom, thieves take from
 * the top with a CAS. A full deque overflows into the injection queue, an
 * intrusive list under a mutex that also takes tasks from non-worker threads.
 * Idle workers steal from random victims, then park on a condvar;
 * submitters only touch that condvar when the sleeper count says somebody
 * is parked. With work stealing off, the pool partitions work statically
 * instead: a task with a home (a node's: pipeline.c gives each source's
 * subgraph one) runs on its home worker only, through that worker's inbox
 * (a FIFO under a mutex, as the injection queue) when another thread
 * submits it, so two equal loads get a worker each, as a fixed
 * thread-per-input design would; tasks without one take the injection
 * queue. Tasks of a priority level above 0 skip the deques: they wait in a
 * FIFO per level that every worker looks at first, so a level-9 task never
 * waits behind level-0 ones queued on a busy worker.
 * Workers may be pinned to CPUs (sl_sched_set_affinity).
 * Blocking tasks have their own threads, started on demand between a
 * minimum and a maximum, and one FIFO under a mutex (sched_blocking.c):
 * they may sleep or wait on I/O for long, so they never take a CPU worker,
 * and a handful of them per second does not need lock-free queues. */
#include "sched.h"

#include "aging.h"
#include "clock.h"
#include "err.h"
#include "mem.h"
#include "sched_blocking.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Entries per deque (power of two). Work beyond it goes to the injection
 * queue, so the size only trades memory for mutex traffic under bursts. */
#define DEQUE_SIZE 1024

/* Every FAIR_TICK tasks a worker looks at the injection queue, its inbox
 * and the oldest task of its own deque first, so LIFO order cannot starve
 * them (the constant of Go's scheduler). */
#define FAIR_TICK 61
/* ...and at least every FAIR_NS: a node task that kicks itself at the end
 * of its burst runs again at once from its own deque, and 61 bursts can
 * take seconds (a sink kicked from a blocking thread waited 1.2 s under
 * TSan while its queue filled and shed). */
#define FAIR_NS (1000 * 1000ull)

/* Rounds of "look everywhere, then yield" before an idle worker parks. */
#define IDLE_ROUNDS 2

/* Keeps fields written by different threads on different cache lines
 * (padding, since sl_malloc only guarantees malloc alignment). */
#define SCHED_PAD 64

enum steal_result { STEAL_OK, STEAL_EMPTY, STEAL_RETRY };

struct deque {
    _Atomic int64_t top; /* oldest entry; thieves and the last take CAS it (seq_cst) */
    char pad0[SCHED_PAD];
    _Atomic int64_t bottom; /* next free entry; only the owner stores it (release or seq_cst) */
    char pad1[SCHED_PAD];
    _Atomic(struct sl_task *) buf[DEQUE_SIZE]; /* relaxed: a thief may read an entry the owner
                                                  is rewriting; it then loses the top CAS */
};

/* A FIFO of tasks under a mutex: the injection queue, and each worker's
 * inbox. */
struct task_fifo {
    pthread_mutex_t mu;
    struct sl_task *head; /* under mu */
    struct sl_task *tail; /* under mu */
    atomic_long len;      /* changed under mu; seq_cst increment (parking) */
};

struct worker {
    struct sl_sched *s;      /* read-only */
    int index;               /* read-only, 0..nthreads-1 */
    pthread_t thread;        /* written by sl_sched_new before any join */
    uint64_t rng;            /* owner only: victim choice */
    unsigned tick;           /* owner only: fairness counter */
    uint64_t fair_ns;        /* owner only: when it last looked at the injection queue first */
    unsigned fair_turn;      /* owner only: which queue the next fairness look takes first */
    _Atomic uint64_t run;    /* owner stores, anyone loads; relaxed (statistics) */
    _Atomic uint64_t steals; /* same */
    char pad0[SCHED_PAD];
    struct task_fifo inbox; /* stealing off: its home tasks that others submitted */
    char pad1[SCHED_PAD];
    struct deque dq;
};

struct sl_sched {
    /* Read-only while the workers run. */
    int nthreads;
    int started;             /* threads created (joined by stop) */
    bool stopped;            /* stop has joined the workers; the stopping thread only */
    struct worker **workers; /* nthreads entries, each its own allocation */
    char pad0[SCHED_PAD];

    struct task_fifo inject;
    /* Tasks of levels 1..9, a FIFO per level (index 0 unused), under
     * urgent_mu; urgent_len as a task_fifo's len. */
    pthread_mutex_t urgent_mu;
    struct sl_task *urgent_head[SL_SCHED_LEVELS];
    struct sl_task *urgent_tail[SL_SCHED_LEVELS];
    atomic_long urgent_len;
    uint64_t aging_ns; /* aging.h's step; a test may change it before the first submit */
    char pad1[SCHED_PAD];

    atomic_long pending; /* submitted and not finished; release decrement, acquire in stop */
    char pad2[SCHED_PAD];

    atomic_int sleepers;  /* workers parked or about to; seq_cst (pairs with task publication) */
    atomic_uint epoch;    /* bumped under park_mu to wake a sleeper; seq_cst */
    atomic_bool stopping; /* set under park_mu once pending reached 0 */
    pthread_mutex_t park_mu;
    pthread_cond_t park_cv; /* sleeping workers */
    pthread_cond_t idle_cv; /* sl_sched_stop waiting for pending == 0 */
    atomic_bool stealing;   /* idle workers steal; relaxed (a setting, not a handshake) */
    char pad3[SCHED_PAD];

    struct sl_blocking blk; /* blocking threads (sched_blocking.h); max 0: none */
};

/* The worker running on this thread, NULL on other threads. */
static _Thread_local struct worker *tls_worker;

/* ==== Chase-Lev deque ==== */

/* Owner only. Returns false when full. */
static bool deque_push(struct deque *dq, struct sl_task *task)
{
    /* Relaxed: only this thread stores bottom. */
    int64_t b = atomic_load_explicit(&dq->bottom, memory_order_relaxed);
    /* Acquire: pairs with a thief's CAS of top, so its read of the entry we
     * may now overwrite happened before our store below. */
    int64_t t = atomic_load_explicit(&dq->top, memory_order_acquire);

    if (b - t >= DEQUE_SIZE) {
        return false;
    }
    /* Relaxed: published by the store of bottom below. */
    atomic_store_explicit(&dq->buf[b & (DEQUE_SIZE - 1)], task, memory_order_relaxed);
    /* seq_cst, not just release: release publishes the entry and the task's
     * contents to thieves; seq_cst also orders this store before the
     * submitter's load of sleepers (see wake_one and park). */
    atomic_store_explicit(&dq->bottom, b + 1, memory_order_seq_cst);
    return true;
}

/* Owner only. Returns the newest task, or NULL when empty or when a thief won
 * the last one. */
static struct sl_task *deque_take(struct deque *dq)
{
    /* Relaxed: only this thread stores bottom. */
    int64_t b = atomic_load_explicit(&dq->bottom, memory_order_relaxed) - 1;
    struct sl_task *task;
    int64_t t;

    /* seq_cst store then seq_cst load of top (the fence of Le et al.): either
     * we see a thief's increment of top or the thief sees our smaller bottom,
     * so the two never take the same entry without the CAS below. */
    atomic_store_explicit(&dq->bottom, b, memory_order_seq_cst);
    t = atomic_load_explicit(&dq->top, memory_order_seq_cst);
    if (t > b) {
        /* Empty. Release: every store of bottom publishes earlier entries. */
        atomic_store_explicit(&dq->bottom, b + 1, memory_order_release);
        return NULL;
    }
    /* Relaxed: our own earlier store. */
    task = atomic_load_explicit(&dq->buf[b & (DEQUE_SIZE - 1)], memory_order_relaxed);
    if (t == b) {
        /* Last entry: race the thieves for it. seq_cst as in steal; relaxed
         * on failure since we then return NULL without reading more. */
        if (!atomic_compare_exchange_strong_explicit(&dq->top, &t, t + 1, memory_order_seq_cst,
                                                     memory_order_relaxed)) {
            task = NULL;
        }
        /* Release: as above. */
        atomic_store_explicit(&dq->bottom, b + 1, memory_order_release);
    }
    return task;
}

/* Any thread. Takes the oldest task into *ret_task. */
static enum steal_result deque_steal(struct deque *dq, struct sl_task **ret_task)
{
    /* seq_cst load of top then of bottom: the thief side of the ordering
     * described in deque_take. The bottom load also acquires the owner's
     * release of the entry and of the task it points to. */
    int64_t t = atomic_load_explicit(&dq->top, memory_order_seq_cst);
    int64_t b = atomic_load_explicit(&dq->bottom, memory_order_seq_cst);
    struct sl_task *task;

    if (t >= b) {
        return STEAL_EMPTY;
    }
    /* Relaxed: ordered by the bottom load; if the owner rewrote the entry in
     * between, top moved and the CAS below fails. */
    task = atomic_load_explicit(&dq->buf[t & (DEQUE_SIZE - 1)], memory_order_relaxed);
    /* seq_cst: pairs with the owner's take of the last entry (and its release
     * part with deque_push's acquire of top). Relaxed on failure: we retry. */
    if (!atomic_compare_exchange_strong_explicit(&dq->top, &t, t + 1, memory_order_seq_cst,
                                                 memory_order_relaxed)) {
        return STEAL_RETRY;
    }
    *ret_task = task;
    return STEAL_OK;
}

/* Any thread: whether the deque looks non-empty. seq_cst loads: part of the
 * parking protocol (see park). */
static bool deque_busy(struct deque *dq)
{
    int64_t t = atomic_load_explicit(&dq->top, memory_order_seq_cst);
    int64_t b = atomic_load_explicit(&dq->bottom, memory_order_seq_cst);

    return b > t;
}

/* ==== Injection queue and inboxes ==== */

/* Appends task to the intrusive FIFO head/tail (under its mutex). */
static void list_push(struct sl_task **head, struct sl_task **tail, struct sl_task *task)
{
    task->sl__next = NULL;
    if (*tail != NULL) {
        (*tail)->sl__next = task;
    } else {
        *head = task;
    }
    *tail = task;
}

/* Takes the oldest task of the FIFO, or NULL (under its mutex). */
static struct sl_task *list_pop(struct sl_task **head, struct sl_task **tail)
{
    struct sl_task *task = *head;

    if (task != NULL) {
        *head = task->sl__next;
        if (*head == NULL) {
            *tail = NULL;
        }
    }
    return task;
}

static void fifo_push(struct task_fifo *q, struct sl_task *task)
{
    pthread_mutex_lock(&q->mu);
    list_push(&q->head, &q->tail, task);
    /* seq_cst: orders the publication before the submitter's load of
     * sleepers (see park); the list itself is ordered by the mutex. */
    atomic_fetch_add_explicit(&q->len, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&q->mu);
}

static struct sl_task *fifo_pop(struct task_fifo *q)
{
    struct sl_task *task;

    /* Relaxed: a hint that avoids the mutex when empty. A stale 0 is safe:
     * the worker re-checks with seq_cst in park before sleeping. */
    if (atomic_load_explicit(&q->len, memory_order_relaxed) == 0) {
        return NULL;
    }
    pthread_mutex_lock(&q->mu);
    task = list_pop(&q->head, &q->tail);
    if (task != NULL) {
        /* Relaxed: under the mutex; only the increment takes part in the
         * parking protocol. */
        atomic_fetch_sub_explicit(&q->len, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&q->mu);
    return task;
}

/* seq_cst: part of the parking protocol (see park). */
static bool fifo_busy(struct task_fifo *q)
{
    return atomic_load_explicit(&q->len, memory_order_seq_cst) > 0;
}

static void fifo_init(struct task_fifo *q)
{
    (void)pthread_mutex_init(&q->mu, NULL);
    atomic_init(&q->len, 0);
}

/* ==== Queues per priority level ==== */

static void urgent_push(struct sl_sched *s, struct sl_task *task)
{
    uint8_t level = task->level < SL_SCHED_LEVELS ? task->level : SL_SCHED_LEVELS - 1;

    task->sl__since_ns = sl_now_ns();
    pthread_mutex_lock(&s->urgent_mu);
    list_push(&s->urgent_head[level], &s->urgent_tail[level], task);
    /* seq_cst: as in fifo_push. */
    atomic_fetch_add_explicit(&s->urgent_len, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&s->urgent_mu);
}

/* Takes the oldest task of the level whose oldest task scores best
 * (aging.h), or NULL. */
static struct sl_task *urgent_pop(struct sl_sched *s)
{
    struct sl_task *task = NULL;
    uint64_t now, best_score = 0;
    int best = 0;

    /* Relaxed: a hint, as in fifo_pop. */
    if (atomic_load_explicit(&s->urgent_len, memory_order_relaxed) == 0) {
        return NULL;
    }
    now = sl_now_ns();
    pthread_mutex_lock(&s->urgent_mu);
    for (int l = SL_SCHED_LEVELS - 1; l > 0; l--) {
        struct sl_task *head = s->urgent_head[l];
        if (head != NULL) {
            uint64_t score = sl_aging_score((uint8_t)l, head->sl__since_ns, now, s->aging_ns);
            if (best == 0 || score > best_score) {
                best = l;
                best_score = score;
            }
        }
    }
    if (best > 0) {
        task = list_pop(&s->urgent_head[best], &s->urgent_tail[best]);
        /* Relaxed: as in fifo_pop. */
        atomic_fetch_sub_explicit(&s->urgent_len, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&s->urgent_mu);
    return task;
}

/* ==== Finding work, parking ==== */

static uint64_t next_random(struct worker *w)
{
    /* xorshift64: victim choice only needs to spread thieves. */
    w->rng ^= w->rng << 13;
    w->rng ^= w->rng >> 7;
    w->rng ^= w->rng << 17;
    return w->rng;
}

/* Adds one to an owner-written statistic. */
static void count(_Atomic uint64_t *counter)
{
    /* Relaxed load and store rather than an RMW: only the owner writes, and
     * readers only want an approximate total. */
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static struct sl_task *steal_any(struct worker *w)
{
    struct sl_sched *s = w->s;
    struct sl_task *task = NULL;
    bool contended = true;

    /* A lost CAS means the victim had work: look again before giving up. */
    for (int round = 0; contended && round < 4; round++) {
        int start = (int)(next_random(w) % (uint64_t)s->nthreads);

        contended = false;
        for (int i = 0; i < s->nthreads; i++) {
            struct worker *victim = s->workers[(start + i) % s->nthreads];
            enum steal_result res;

            if (victim == w) {
                continue;
            }
            res = deque_steal(&victim->dq, &task);
            if (res == STEAL_OK) {
                count(&w->steals);
                return task;
            }
            contended |= res == STEAL_RETRY;
        }
    }
    return NULL;
}

static struct sl_task *find_task(struct worker *w)
{
    struct sl_task *task = NULL;
    uint64_t now = sl_now_ns();

    if (++w->tick % FAIR_TICK == 0 || now - w->fair_ns >= FAIR_NS) {
        w->fair_ns = now;
        /* In turn, the deque's oldest or the two FIFOs first, and of
         * those, every other time the injection queue or the inbox first:
         * with urgent work always queued, the fairness look is level 0's
         * only way in, and a busy queue must not shut out the others (an
         * inbox looked at only after the injection queue waited until that
         * was dry): a queue with work waits at most three looks. */
        w->fair_turn = (w->fair_turn + 1) % 4;
        bool deque_first = (w->fair_turn & 1) == 0;
        struct task_fifo *first = (w->fair_turn & 2) == 0 ? &w->s->inject : &w->inbox;
        struct task_fifo *second = first == &w->inbox ? &w->s->inject : &w->inbox;
        if (deque_first && deque_steal(&w->dq, &task) != STEAL_OK) {
            task = NULL;
        }
        if (task == NULL) {
            task = fifo_pop(first);
        }
        if (task == NULL) {
            task = fifo_pop(second);
        }
        if (task == NULL && !deque_first && deque_steal(&w->dq, &task) != STEAL_OK) {
            task = NULL;
        }
        if (task != NULL) {
            return task;
        }
    }
    task = urgent_pop(w->s);
    if (task == NULL) {
        task = deque_take(&w->dq);
    }
    if (task == NULL) {
        task = fifo_pop(&w->inbox);
    }
    if (task == NULL) {
        task = fifo_pop(&w->s->inject);
    }
    /* Relaxed: a setting. */
    if (task == NULL && atomic_load_explicit(&w->s->stealing, memory_order_relaxed)) {
        task = steal_any(w);
    }
    return task;
}

/* Whether any queue w may take from looks non-empty. seq_cst loads, see
 * park. Without stealing, the other deques are not w's business: their
 * owners are awake (they pushed) and run them. */
static bool has_work(struct worker *w)
{
    struct sl_sched *s = w->s;

    if (fifo_busy(&s->inject) || fifo_busy(&w->inbox) ||
        atomic_load_explicit(&s->urgent_len, memory_order_seq_cst) > 0) {
        return true;
    }
    if (!atomic_load_explicit(&s->stealing, memory_order_relaxed)) {
        return deque_busy(&w->dq);
    }
    for (int i = 0; i < s->nthreads; i++) {
        if (deque_busy(&s->workers[i]->dq)) {
            return true;
        }
    }
    return false;
}

/* Sleeps until a submitter bumps epoch or the pool stops. Returns false when
 * the worker must exit.
 *
 * No lost wake-up: a submitter publishes its task (seq_cst store or RMW) then
 * loads sleepers (seq_cst); a parker increments sleepers (seq_cst), loads
 * epoch, then re-checks every queue (seq_cst). In the single total order of
 * seq_cst operations either the re-check sees the task, or the submitter sees
 * sleepers > 0 and bumps epoch under park_mu, which the parker detects before
 * or after it waits. */
static bool park(struct worker *w)
{
    struct sl_sched *s = w->s;
    unsigned epoch;
    bool stop;

    /* seq_cst, both: the parker half of the protocol described above. */
    atomic_fetch_add_explicit(&s->sleepers, 1, memory_order_seq_cst);
    epoch = atomic_load_explicit(&s->epoch, memory_order_seq_cst);
    if (has_work(w)) {
        /* Relaxed: a submitter reading the stale count only makes one
         * needless wake-up, not an error. */
        atomic_fetch_sub_explicit(&s->sleepers, 1, memory_order_relaxed);
        return true;
    }
    pthread_mutex_lock(&s->park_mu);
    /* Relaxed: both fields change under park_mu, which we hold. */
    while (atomic_load_explicit(&s->epoch, memory_order_relaxed) == epoch &&
           !atomic_load_explicit(&s->stopping, memory_order_relaxed)) {
        pthread_cond_wait(&s->park_cv, &s->park_mu);
    }
    stop = atomic_load_explicit(&s->stopping, memory_order_relaxed);
    pthread_mutex_unlock(&s->park_mu);
    /* Relaxed: as above. */
    atomic_fetch_sub_explicit(&s->sleepers, 1, memory_order_relaxed);
    return !stop;
}

/* Wakes one parked worker, if any (see park), or all of them: a task in
 * one worker's inbox needs that one, and they share one condvar. */
static void wake(struct sl_sched *s, bool all)
{
    /* seq_cst: the submitter half of the protocol described at park; it
     * follows the seq_cst publication of the task. */
    if (atomic_load_explicit(&s->sleepers, memory_order_seq_cst) == 0) {
        return;
    }
    pthread_mutex_lock(&s->park_mu);
    /* seq_cst: a parker's epoch load precedes its queue re-check, see park. */
    atomic_fetch_add_explicit(&s->epoch, 1, memory_order_seq_cst);
    if (all) {
        pthread_cond_broadcast(&s->park_cv);
    } else {
        pthread_cond_signal(&s->park_cv);
    }
    pthread_mutex_unlock(&s->park_mu);
}

/* A task of s has run: the last one wakes sl_sched_stop. */
static void task_done(struct sl_sched *s)
{
    /* Release: the task's effects (and its children's submission, sequenced
     * before) happen before stop's acquire load that sees 0. */
    if (atomic_fetch_sub_explicit(&s->pending, 1, memory_order_release) == 1) {
        pthread_mutex_lock(&s->park_mu);
        pthread_cond_broadcast(&s->idle_cv);
        pthread_mutex_unlock(&s->park_mu);
    }
}

static void run_task(struct worker *w, struct sl_task *task)
{
    task->fn(task);
    count(&w->run);
    task_done(w->s);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct sl_task *task;

    tls_worker = w;
    for (;;) {
        task = find_task(w);
        for (int i = 0; task == NULL && i < IDLE_ROUNDS; i++) {
            (void)sched_yield();
            task = find_task(w);
        }
        if (task != NULL) {
            run_task(w, task);
        } else if (!park(w)) {
            break;
        }
    }
    tls_worker = NULL;
    return NULL;
}

/* ==== Blocking threads ==== */

/* A blocking task has run (sl_blocking's done callback). */
static void blocking_done(void *arg)
{
    task_done(arg);
}

/* Queues a task already counted in pending on the CPU workers. */
static void submit_counted(struct sl_sched *s, struct sl_task *task)
{
    struct worker *w = tls_worker;
    /* Relaxed: a setting. */
    bool stealing = atomic_load_explicit(&s->stealing, memory_order_relaxed);

    if (w != NULL && w->s != s) {
        w = NULL;
    }
    if (task->level > 0) {
        urgent_push(s, task);
    } else if (!stealing && task->home > 0) {
        struct worker *home = s->workers[(task->home - 1) % s->nthreads];
        if (home == w && deque_push(&w->dq, task)) {
            return; /* only this worker, awake, will take it */
        }
        fifo_push(&home->inbox, task);
        wake(s, true);
        return;
    } else if (w == NULL || !deque_push(&w->dq, task)) {
        fifo_push(&s->inject, task);
    } else if (!stealing) {
        return; /* only this worker, awake, will take it */
    }
    wake(s, false);
}

void sl_sched_submit_blocking(struct sl_sched *s, struct sl_task *task)
{
    struct sl_task *orphans;

    SL_ASSERT(task != NULL && task->fn != NULL);
    if (s->blk.max == 0) {
        sl_sched_submit(s, task);
        return;
    }
    /* Relaxed: as in sl_sched_submit; the mutex publishes the task. */
    SL_ASSERT(!atomic_load_explicit(&s->stopping, memory_order_relaxed));
    atomic_fetch_add_explicit(&s->pending, 1, memory_order_relaxed);
    orphans = sl__blocking_submit(&s->blk, task);
    /* No blocking thread could be started and none is left (min 0): run
     * them on the workers, as a pool without blocking threads does. */
    while (orphans != NULL) {
        struct sl_task *next = orphans->sl__next;
        submit_counted(s, orphans);
        orphans = next;
    }
}

/* ==== Public API ==== */

void sl_sched_submit(struct sl_sched *s, struct sl_task *task)
{
    SL_ASSERT(task != NULL && task->fn != NULL);
    /* Relaxed: a hint for catching misuse, not synchronisation. */
    SL_ASSERT(!atomic_load_explicit(&s->stopping, memory_order_relaxed));
    /* Relaxed: the increment is sequenced before the task's publication,
     * which happens before its run and decrement, so pending cannot reach 0
     * while the task is queued. */
    atomic_fetch_add_explicit(&s->pending, 1, memory_order_relaxed);
    submit_counted(s, task);
}

/* Tells the workers to exit once parked and joins them. */
static void join_workers(struct sl_sched *s)
{
    pthread_mutex_lock(&s->park_mu);
    /* Relaxed: workers read it under park_mu. */
    atomic_store_explicit(&s->stopping, true, memory_order_relaxed);
    pthread_cond_broadcast(&s->park_cv);
    pthread_mutex_unlock(&s->park_mu);
    for (int i = 0; i < s->started; i++) {
        (void)pthread_join(s->workers[i]->thread, NULL);
    }
    sl__blocking_stop(&s->blk);
    s->stopped = true;
}

void sl_sched_stop(struct sl_sched *s)
{
    if (s->stopped) {
        return;
    }
    SL_ASSERT((tls_worker == NULL || tls_worker->s != s) && !sl__blocking_on_thread(&s->blk));
    pthread_mutex_lock(&s->park_mu);
    /* Acquire: pairs with the release decrements, so every task's effects
     * are visible to the caller once stop returns. A decrement to 0 takes
     * park_mu before broadcasting, so it cannot slip between this check and
     * the wait. */
    while (atomic_load_explicit(&s->pending, memory_order_acquire) > 0) {
        pthread_cond_wait(&s->idle_cv, &s->park_mu);
    }
    pthread_mutex_unlock(&s->park_mu);
    join_workers(s);
}

static struct sl_sched *sched_alloc(int nthreads, int blocking_min, int blocking_max)
{
    struct sl_sched *s = sl_calloc(1, sizeof(*s));

    if (s == NULL) {
        return NULL;
    }
    s->nthreads = nthreads;
    atomic_init(&s->stealing, true);
    s->aging_ns = SL_AGING_NS;
    s->workers = sl_calloc((size_t)nthreads, sizeof(*s->workers));
    if (s->workers == NULL ||
        sl__blocking_init(&s->blk, blocking_min, blocking_max, blocking_done, s) != 0) {
        sl__blocking_destroy(&s->blk);
        sl_free(s->workers);
        sl_free(s);
        return NULL;
    }
    for (int i = 0; i < nthreads; i++) {
        struct worker *w = sl_calloc(1, sizeof(*w));

        if (w == NULL) {
            for (int j = 0; j < i; j++) {
                sl_free(s->workers[j]);
            }
            sl__blocking_destroy(&s->blk);
            sl_free(s->workers);
            sl_free(s);
            return NULL;
        }
        w->s = s;
        w->index = i;
        w->rng = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1);
        fifo_init(&w->inbox);
        s->workers[i] = w;
    }
    fifo_init(&s->inject);
    (void)pthread_mutex_init(&s->urgent_mu, NULL);
    (void)pthread_mutex_init(&s->park_mu, NULL);
    (void)pthread_cond_init(&s->park_cv, NULL);
    (void)pthread_cond_init(&s->idle_cv, NULL);
    return s;
}

/* Starts the threads with asynchronous signals blocked (they inherit the
 * mask). Synchronous signals stay deliverable so crashes and sanitizer
 * reports still work. */
static int start_workers(struct sl_sched *s, struct sl_err *err)
{
    static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    sigset_t all, old;
    int rc = 0;

    (void)sigfillset(&all);
    for (size_t i = 0; i < sizeof(sync_signals) / sizeof(sync_signals[0]); i++) {
        (void)sigdelset(&all, sync_signals[i]);
    }
    (void)pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < s->nthreads; i++) {
        struct worker *w = s->workers[i];
        char name[32];
        int e = pthread_create(&w->thread, NULL, worker_main, w);

        if (e != 0) {
            rc = sl_err_set(err, SL_EFATAL, "cannot start worker thread: %s", strerror(e));
            break;
        }
        s->started++;
        (void)snprintf(name, sizeof(name), "sl-worker-%d", i);
        name[15] = '\0'; /* the kernel's limit; i <= 1023 fits anyway */
        (void)pthread_setname_np(w->thread, name);
    }
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc != 0 ? rc : sl__blocking_start(&s->blk, err);
}

struct sl_sched *sl_sched_new(int nthreads, int blocking_min, int blocking_max, struct sl_err *err)
{
    struct sl_sched *s;

    if (nthreads < 1 || nthreads > SL_SCHED_THREADS_MAX) {
        sl_err_set(err, SL_EINVAL, "worker threads must be 1..%d, not %d", SL_SCHED_THREADS_MAX,
                   nthreads);
        return NULL;
    }
    if (blocking_min < 0 || blocking_max > SL_SCHED_BLOCKING_MAX || blocking_min > blocking_max) {
        sl_err_set(err, SL_EINVAL, "blocking threads must be 0 <= min <= max <= %d, not %d..%d",
                   SL_SCHED_BLOCKING_MAX, blocking_min, blocking_max);
        return NULL;
    }
    s = sched_alloc(nthreads, blocking_min, blocking_max);
    if (s == NULL) {
        sl_err_set(err, SL_ENOMEM, "out of memory for %d worker threads", nthreads);
        return NULL;
    }
    if (start_workers(s, err) != 0) {
        join_workers(s);
        return sl_sched_free(s);
    }
    return s;
}

struct sl_sched *sl_sched_free(struct sl_sched *s)
{
    if (s == NULL) {
        return NULL;
    }
    sl_sched_stop(s);
    (void)pthread_cond_destroy(&s->idle_cv);
    (void)pthread_cond_destroy(&s->park_cv);
    (void)pthread_mutex_destroy(&s->park_mu);
    (void)pthread_mutex_destroy(&s->inject.mu);
    (void)pthread_mutex_destroy(&s->urgent_mu);
    sl__blocking_destroy(&s->blk);
    for (int i = 0; i < s->nthreads; i++) {
        (void)pthread_mutex_destroy(&s->workers[i]->inbox.mu);
        sl_free(s->workers[i]);
    }
    sl_free(s->workers);
    sl_free(s);
    return NULL;
}

int sl_sched_worker_index(void)
{
    return tls_worker != NULL ? tls_worker->index : -1;
}

int sl_sched_threads(const struct sl_sched *s)
{
    return s->nthreads;
}

void sl_sched_stats(const struct sl_sched *s, uint64_t *ret_run, uint64_t *ret_steals)
{
    uint64_t run = 0;
    uint64_t steals = 0;

    for (int i = 0; i < s->nthreads; i++) {
        /* Relaxed: statistics. */
        run += atomic_load_explicit(&s->workers[i]->run, memory_order_relaxed);
        steals += atomic_load_explicit(&s->workers[i]->steals, memory_order_relaxed);
    }
    if (ret_run != NULL) {
        *ret_run = run;
    }
    if (ret_steals != NULL) {
        *ret_steals = steals;
    }
}

void sl_sched_blocking_threads(struct sl_sched *s,
                               int *ret_now,
                               int *ret_peak,
                               uint64_t *ret_started)
{
    sl__blocking_stats(&s->blk, ret_now, ret_peak, ret_started);
}

bool sl_sched_on_blocking_thread(const struct sl_sched *s)
{
    return sl__blocking_on_thread(&s->blk);
}

long sl_sched_blocking_waiting(const struct sl_sched *s)
{
    return sl__blocking_waiting(&s->blk);
}

void sl_sched_set_stealing(struct sl_sched *s, bool on)
{
    /* Relaxed: workers read it as a setting. */
    atomic_store_explicit(&s->stealing, on, memory_order_relaxed);
}

int sl_sched_set_affinity(struct sl_sched *s, const int *cpus, size_t ncpus, struct sl_err *err)
{
    SL_ASSERT(ncpus > 0);
    for (int i = 0; i < s->nthreads; i++) {
        int cpu = cpus[(size_t)i % ncpus];
        cpu_set_t set;
        int e;

        if (cpu < 0 || cpu >= CPU_SETSIZE) {
            return sl_err_set(err, SL_EINVAL, "CPU %d is not 0..%d", cpu, CPU_SETSIZE - 1);
        }
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        e = pthread_setaffinity_np(s->workers[i]->thread, sizeof(set), &set);
        if (e != 0) {
            return sl_err_set(err, SL_EFATAL, "cannot pin worker %d to CPU %d: %s", i, cpu,
                              strerror(e));
        }
    }
    return 0;
}

void sl_sched_test_aging(struct sl_sched *s, uint64_t aging_ns)
{
    s->aging_ns = aging_ns;
}

int sl_sched_test_blocking_idle_count(struct sl_sched *s)
{
    return sl__blocking_idle_count(&s->blk);
}

void sl_sched_test_blocking_idle(struct sl_sched *s, uint64_t idle_ns)
{
    sl__blocking_set_idle(&s->blk, idle_ns);
}

void sl_sched_test_fail_blocking_start(struct sl_sched *s, int nth)
{
    sl__blocking_fail_start(&s->blk, nth);
}

void sl_sched_test_blocking_hooks(struct sl_sched *s,
                                  void (*on_timeout)(void *),
                                  void (*on_exit)(void *),
                                  void *arg)
{
    struct sl_blocking_hooks hooks = {on_timeout, on_exit, arg};

    sl__blocking_set_hooks(&s->blk, &hooks);
}
