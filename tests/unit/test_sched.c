/* SPDX-License-Identifier: MIT */
/* Unit tests of engine/sched.c: exactly-once execution of task trees, work
 * stealing, stop waiting for everything, submission from outside threads,
 * deque overflow, fairness of the LIFO deque, and an idle pool that sleeps.
 * Threads synchronise through atomics and bounded yield loops. */
#include "err.h"
#include "mem.h"
#include "sched.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Upper bound for any wait on another thread before the test fails. */
#define WAIT_NS (30ull * 1000000000ull)

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Yields until *flag is non-zero; returns false on timeout (callable from
 * tasks, where cmocka asserts must not run). */
static bool wait_for_flag(atomic_int *flag)
{
    uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + WAIT_NS;

    while (atomic_load(flag) == 0) {
        if (clock_ns(CLOCK_MONOTONIC) > deadline) {
            return false;
        }
        sched_yield();
    }
    return true;
}

static struct sl_sched *new_sched(int nthreads)
{
    struct sl_err err = {0};
    struct sl_sched *s = sl_sched_new(nthreads, 0, 0, &err);

    assert_non_null(s);
    assert_int_equal(err.code, 0);
    assert_int_equal(sl_sched_threads(s), nthreads);
    return s;
}

/* ==== A binary tree of tasks: each submits its two children ==== */

struct tree_node {
    struct sl_task task;
    struct tree *tree;
    atomic_int runs;
};

struct tree {
    struct sl_sched *s;
    struct tree_node *nodes;
    uint32_t n;
    int nthreads;
    atomic_int failures; /* worker index out of range */
};

static void tree_fn(struct sl_task *task)
{
    struct tree_node *node = CONTAINER_OF(task, struct tree_node, task);
    struct tree *tree = node->tree;
    uint32_t i = (uint32_t)(node - tree->nodes);
    int idx = sl_sched_worker_index();

    if (idx < 0 || idx >= tree->nthreads) {
        atomic_fetch_add(&tree->failures, 1);
    }
    atomic_fetch_add(&node->runs, 1);
    for (uint32_t child = 2 * i + 1; child <= 2 * i + 2 && child < tree->n; child++) {
        sl_sched_submit(tree->s, &tree->nodes[child].task);
    }
}

static void run_tree(int nthreads, uint32_t n)
{
    struct tree tree = {.s = new_sched(nthreads), .n = n, .nthreads = nthreads};
    uint64_t run = 0;

    tree.nodes = calloc(n, sizeof(*tree.nodes));
    assert_non_null(tree.nodes);
    for (uint32_t i = 0; i < n; i++) {
        tree.nodes[i].task.fn = tree_fn;
        tree.nodes[i].tree = &tree;
    }
    sl_sched_submit(tree.s, &tree.nodes[0].task);
    sl_sched_stop(tree.s);
    for (uint32_t i = 0; i < n; i++) {
        assert_int_equal(atomic_load(&tree.nodes[i].runs), 1);
    }
    assert_int_equal(atomic_load(&tree.failures), 0);
    sl_sched_stats(tree.s, &run, NULL);
    assert_int_equal(run, n);
    sl_sched_free(tree.s);
    free(tree.nodes);
}

static void test_sched_tree_runs_each_task_once(void **state)
{
    (void)state;
    run_tree(4, 100000);
}

static void test_sched_tree_runs_on_one_thread(void **state)
{
    (void)state;
    run_tree(1, 20000);
}

/* ==== Stealing: the child can only run on another worker ==== */

struct steal_pair {
    struct sl_task root;
    struct sl_task child;
    struct sl_sched *s;
    int root_worker;
    atomic_int child_worker;
    atomic_int child_ran;
    atomic_int timed_out;
};

static void steal_child_fn(struct sl_task *task)
{
    struct steal_pair *p = CONTAINER_OF(task, struct steal_pair, child);

    atomic_store(&p->child_worker, sl_sched_worker_index());
    atomic_store(&p->child_ran, 1);
}

static void steal_root_fn(struct sl_task *task)
{
    struct steal_pair *p = CONTAINER_OF(task, struct steal_pair, root);

    p->root_worker = sl_sched_worker_index();
    /* The child lands on this worker's deque; this worker stays busy until
     * the child has run, so another worker must steal it. */
    sl_sched_submit(p->s, &p->child);
    if (!wait_for_flag(&p->child_ran)) {
        atomic_store(&p->timed_out, 1);
    }
}

static void test_sched_idle_worker_steals(void **state)
{
    struct steal_pair p = {.root.fn = steal_root_fn, .child.fn = steal_child_fn};
    uint64_t run = 0;
    uint64_t steals = 0;

    (void)state;
    p.s = new_sched(2);
    sl_sched_submit(p.s, &p.root);
    sl_sched_stop(p.s);
    assert_int_equal(atomic_load(&p.timed_out), 0);
    assert_int_equal(atomic_load(&p.child_ran), 1);
    assert_true(p.root_worker >= 0 && p.root_worker < 2);
    assert_int_equal(atomic_load(&p.child_worker), 1 - p.root_worker);
    sl_sched_stats(p.s, &run, &steals);
    assert_int_equal(run, 2);
    assert_true(steals >= 1);
    sl_sched_free(p.s);
}

/* ==== Chains: stop waits for tasks submitted by tasks ==== */

struct chain {
    struct sl_task task;
    struct sl_sched *s;
    int left; /* links still to run after this one; touched by one task at a time */
    atomic_int *done;
};

static void chain_fn(struct sl_task *task)
{
    struct chain *c = CONTAINER_OF(task, struct chain, task);

    if (c->left-- > 0) {
        /* The same task object again: allowed, it is no longer queued. */
        sl_sched_submit(c->s, &c->task);
    } else {
        atomic_fetch_add(c->done, 1);
    }
}

static void test_sched_stop_waits_for_submitted_children(void **state)
{
    enum { CHAINS = 64, LINKS = 2000 };
    struct sl_sched *s = new_sched(3);
    struct chain *chains = calloc(CHAINS, sizeof(*chains));
    atomic_int done = 0;
    uint64_t run = 0;

    (void)state;
    assert_non_null(chains);
    for (int i = 0; i < CHAINS; i++) {
        chains[i] = (struct chain){.task.fn = chain_fn, .s = s, .left = LINKS, .done = &done};
        sl_sched_submit(s, &chains[i].task);
    }
    sl_sched_stop(s);
    assert_int_equal(atomic_load(&done), CHAINS);
    for (int i = 0; i < CHAINS; i++) {
        assert_int_equal(chains[i].left, -1);
    }
    sl_sched_stats(s, &run, NULL);
    assert_int_equal(run, (uint64_t)CHAINS * (LINKS + 1));
    sl_sched_stop(s); /* idempotent */
    sl_sched_free(s);
    free(chains);
}

/* ==== Submission from threads that are not workers ==== */

struct counted {
    struct sl_task task;
    atomic_int runs;
};

static void counted_fn(struct sl_task *task)
{
    struct counted *c = CONTAINER_OF(task, struct counted, task);

    atomic_fetch_add(&c->runs, 1);
}

struct submitter {
    struct sl_sched *s;
    struct counted *tasks;
    int n;
    int index_seen; /* sl_sched_worker_index() on this thread */
};

static void *submit_thread(void *arg)
{
    struct submitter *sub = arg;

    sub->index_seen = sl_sched_worker_index();
    for (int i = 0; i < sub->n; i++) {
        sl_sched_submit(sub->s, &sub->tasks[i].task);
    }
    return NULL;
}

static void test_sched_submit_from_outside_threads(void **state)
{
    enum { THREADS = 4, PER_THREAD = 20000 };
    struct sl_sched *s = new_sched(2);
    struct counted *tasks = calloc(THREADS * PER_THREAD, sizeof(*tasks));
    struct submitter subs[THREADS];
    pthread_t threads[THREADS];

    (void)state;
    assert_non_null(tasks);
    assert_int_equal(sl_sched_worker_index(), -1);
    for (int i = 0; i < THREADS * PER_THREAD; i++) {
        tasks[i].task.fn = counted_fn;
    }
    for (int t = 0; t < THREADS; t++) {
        subs[t] = (struct submitter){.s = s, .tasks = tasks + t * PER_THREAD, .n = PER_THREAD};
        assert_int_equal(pthread_create(&threads[t], NULL, submit_thread, &subs[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        assert_int_equal(pthread_join(threads[t], NULL), 0);
        assert_int_equal(subs[t].index_seen, -1);
    }
    /* free stops first: everything submitted still runs. */
    assert_null(sl_sched_free(s));
    for (int i = 0; i < THREADS * PER_THREAD; i++) {
        assert_int_equal(atomic_load(&tasks[i].runs), 1);
    }
    free(tasks);
}

/* Ping-pong with parked workers: every submission must wake one (a lost
 * wake-up hangs here until the bounded wait fails). */
static void test_sched_parked_workers_wake_for_each_submit(void **state)
{
    enum { ROUNDS = 3000 };
    struct sl_sched *s = new_sched(4);
    struct counted *tasks = calloc(ROUNDS, sizeof(*tasks));

    (void)state;
    assert_non_null(tasks);
    for (int i = 0; i < ROUNDS; i++) {
        tasks[i].task.fn = counted_fn;
        sl_sched_submit(s, &tasks[i].task);
        assert_true(wait_for_flag(&tasks[i].runs));
    }
    sl_sched_free(s);
    for (int i = 0; i < ROUNDS; i++) {
        assert_int_equal(atomic_load(&tasks[i].runs), 1);
    }
    free(tasks);
}

/* ==== A burst larger than a deque overflows to the injection queue ==== */

struct burst {
    struct sl_task task;
    struct sl_sched *s;
    struct counted *children;
    int n;
};

static void burst_fn(struct sl_task *task)
{
    struct burst *b = CONTAINER_OF(task, struct burst, task);

    for (int i = 0; i < b->n; i++) {
        sl_sched_submit(b->s, &b->children[i].task);
    }
}

static void test_sched_deque_overflow_runs_everything(void **state)
{
    enum { CHILDREN = 5000 };
    struct burst b = {.task.fn = burst_fn, .s = new_sched(1), .n = CHILDREN};

    (void)state;
    b.children = calloc(CHILDREN, sizeof(*b.children));
    assert_non_null(b.children);
    for (int i = 0; i < CHILDREN; i++) {
        b.children[i].task.fn = counted_fn;
    }
    sl_sched_submit(b.s, &b.task);
    sl_sched_stop(b.s);
    for (int i = 0; i < CHILDREN; i++) {
        assert_int_equal(atomic_load(&b.children[i].runs), 1);
    }
    sl_sched_free(b.s);
    free(b.children);
}

/* ==== Fairness: a task that keeps resubmitting itself does not starve the
 * older task under it in the deque, nor the injection queue ==== */

struct hog {
    struct sl_task task;
    struct sl_sched *s;
    struct counted local; /* pushed under the hog on the same deque */
    atomic_int started;
    atomic_int injected_ran; /* set by the task main submits from outside */
    long spins;
};

static void hog_fn(struct sl_task *task)
{
    struct hog *h = CONTAINER_OF(task, struct hog, task);

    if (h->spins++ == 0) {
        sl_sched_submit(h->s, &h->local.task);
        atomic_store(&h->started, 1);
    }
    /* Give up after far more rounds than fairness needs, so a broken
     * scheduler fails the test instead of hanging it. */
    if ((atomic_load(&h->local.runs) == 0 || atomic_load(&h->injected_ran) == 0) &&
        h->spins < 50000000) {
        sl_sched_submit(h->s, &h->task);
    }
}

struct injected {
    struct sl_task task;
    struct hog *hog;
};

static void injected_mark_fn(struct sl_task *task)
{
    struct injected *in = CONTAINER_OF(task, struct injected, task);

    atomic_store(&in->hog->injected_ran, 1);
}

/* A hog at level: its older local task and an injected one still run. */
static void hog_at(uint8_t level)
{
    struct hog h = {
        .task.fn = hog_fn, .task.level = level, .local.task.fn = counted_fn, .s = new_sched(1)};
    struct injected in = {.task.fn = injected_mark_fn, .hog = &h};

    sl_sched_submit(h.s, &h.task);
    assert_true(wait_for_flag(&h.started));
    sl_sched_submit(h.s, &in.task);
    sl_sched_stop(h.s);
    assert_int_equal(atomic_load(&h.local.runs), 1);
    assert_int_equal(atomic_load(&h.injected_ran), 1);
    assert_true(h.spins < 50000000);
    sl_sched_free(h.s);
}

static void test_sched_lifo_does_not_starve_older_tasks(void **state)
{
    (void)state;
    hog_at(0);
}

/* The same with the hog at level 9: the queues per level come first, but
 * the look at the injection queue and the deque's oldest task still does. */
static void test_sched_level_zero_progresses_beside_level_nine(void **state)
{
    (void)state;
    hog_at(9);
}

/* ==== Priority levels: higher first ==== */

#define LEVELED_ZEROS 16

struct leveled {
    struct sl_task task;
    atomic_int *next; /* shared run counter */
    int ran_as;       /* its place in the run order */
};

static void leveled_fn(struct sl_task *task)
{
    struct leveled *l = CONTAINER_OF(task, struct leveled, task);

    l->ran_as = atomic_fetch_add(l->next, 1);
}

struct spawner {
    struct sl_task task;
    struct sl_sched *s;
    struct leveled zeros[LEVELED_ZEROS];
    struct leveled l3, l7, l9;
};

/* On the pool's only worker: levels 3, 9 and 7, then level-0 tasks, which
 * a LIFO deque alone would run first (the newest). */
static void spawner_fn(struct sl_task *task)
{
    struct spawner *sp = CONTAINER_OF(task, struct spawner, task);

    sl_sched_submit(sp->s, &sp->l3.task);
    sl_sched_submit(sp->s, &sp->l9.task);
    sl_sched_submit(sp->s, &sp->l7.task);
    for (int i = 0; i < LEVELED_ZEROS; i++) {
        sl_sched_submit(sp->s, &sp->zeros[i].task);
    }
}

static void test_sched_higher_level_runs_first(void **state)
{
    atomic_int next = 0;
    struct spawner sp = {.task.fn = spawner_fn, .s = new_sched(1)};
    int zeros_after = 0;

    (void)state;
    /* No aging within the test: a preempted spawner must not let l3 age
     * past l7. */
    sl_sched_test_aging(sp.s, UINT64_C(1) << 50);
    for (int i = 0; i < LEVELED_ZEROS; i++) {
        sp.zeros[i] = (struct leveled){.task.fn = leveled_fn, .next = &next};
    }
    sp.l3 = (struct leveled){.task.fn = leveled_fn, .task.level = 3, .next = &next};
    sp.l7 = (struct leveled){.task.fn = leveled_fn, .task.level = 7, .next = &next};
    sp.l9 = (struct leveled){.task.fn = leveled_fn, .task.level = 9, .next = &next};
    sl_sched_submit(sp.s, &sp.task);
    sl_sched_stop(sp.s);
    assert_int_equal(atomic_load(&next), LEVELED_ZEROS + 3);
    assert_true(sp.l9.ran_as < sp.l7.ran_as);
    assert_true(sp.l7.ran_as < sp.l3.ran_as);
    for (int i = 0; i < LEVELED_ZEROS; i++) {
        zeros_after += sp.zeros[i].ran_as > sp.l3.ran_as;
    }
    /* The fairness look takes one level-0 task per 1 ms at most: on a
     * loaded machine a few may pass, not most. */
    assert_true(zeros_after >= LEVELED_ZEROS / 2);
    sl_sched_free(sp.s);
}

/* ==== Latency of a task submitted from outside the pool ==== */

/* A task submitted from a thread outside the pool waits in the injection
 * queue behind a worker whose own deque never empties: a node task that
 * kicks itself again at the end of its burst (a decoding source, a map
 * fed faster than it runs) lands LIFO on its worker's deque and runs again
 * at once. The injected task (a CPU sink kicked by a `delay` stage on a
 * blocking thread) ran only at the worker's next FAIR_TICK look: after 60
 * runs of the hog. Each run of a node task is up to TASK_BURST batches:
 * under TSan on a loaded machine 1.2 s passed between the kick of the
 * `null` sink of tests/integration/test_when_full.sh case 1b and its run,
 * while its 10-slot queue filled and `drop_oldest` shed (measured with
 * timestamps on kicks and runs). A worker now also looks at the injection
 * queue first once a millisecond passed since it last did: each run of
 * the hog here takes 2 ms, so the injected task goes at most one run
 * later. */

struct outside_hog {
    struct sl_task task;
    struct sl_sched *s;
    atomic_int started;
    atomic_int submitted;   /* main has submitted the injected task */
    atomic_int waited_runs; /* hog runs after that, before the injected task ran */
    atomic_int injected_ran;
    atomic_int failures;
    long runs;
};

static void outside_hog_fn(struct sl_task *task)
{
    struct outside_hog *h = CONTAINER_OF(task, struct outside_hog, task);

    if (h->runs++ == 0) {
        /* The first run waits for main's submission: the worker's tick is
         * known (1) when the injected task arrives. */
        atomic_store(&h->started, 1);
        if (!wait_for_flag(&h->submitted)) {
            atomic_fetch_add(&h->failures, 1);
        }
    } else if (atomic_load(&h->injected_ran) == 0) {
        atomic_fetch_add(&h->waited_runs, 1);
    }
    /* A burst of batches: longer than the worker's fairness interval. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        clock_gettime(CLOCK_MONOTONIC, &t1);
    } while ((t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec) < 2000000L);
    if (atomic_load(&h->injected_ran) == 0 && h->runs < 10000) {
        sl_sched_submit(h->s, &h->task);
    }
}

struct outside_task {
    struct sl_task task;
    struct outside_hog *hog;
};

static void outside_task_fn(struct sl_task *task)
{
    struct outside_task *o = CONTAINER_OF(task, struct outside_task, task);

    atomic_store(&o->hog->injected_ran, 1);
}

static void test_sched_outside_submit_waits_for_few_runs(void **state)
{
    struct outside_hog h = {.task.fn = outside_hog_fn, .s = new_sched(1)};
    struct outside_task o = {.task.fn = outside_task_fn, .hog = &h};

    (void)state;
    sl_sched_submit(h.s, &h.task);
    assert_true(wait_for_flag(&h.started));
    sl_sched_submit(h.s, &o.task);
    atomic_store(&h.submitted, 1);
    sl_sched_stop(h.s);
    assert_int_equal(atomic_load(&h.failures), 0);
    assert_int_equal(atomic_load(&h.injected_ran), 1);
    /* One run of the hog may be under way when the task arrives; then the
     * injected task goes before the hog's next. */
    assert_in_range(atomic_load(&h.waited_runs), 0, 1);
    sl_sched_free(h.s);
}

/* ==== Idle pool, worker index, argument errors, OOM ==== */

static void test_sched_idle_pool_sleeps(void **state)
{
    struct sl_sched *s = new_sched(4);
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 300 * 1000000};
    struct counted c = {.task.fn = counted_fn};
    uint64_t cpu0;
    uint64_t cpu;

    (void)state;
    /* Wake every worker once, then measure CPU over a pause (a measurement,
     * not synchronisation): spinning workers would use ~4 x 300 ms. */
    sl_sched_submit(s, &c.task);
    cpu0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    nanosleep(&pause, NULL);
    cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0;
    assert_true(cpu < 60 * 1000000ull);
    sl_sched_free(s);
    assert_int_equal(atomic_load(&c.runs), 1);
}

struct index_probe {
    struct sl_task task;
    int nthreads;
    atomic_int bad;
};

static void index_probe_fn(struct sl_task *task)
{
    struct index_probe *p = CONTAINER_OF(task, struct index_probe, task);
    int idx = sl_sched_worker_index();

    if (idx < 0 || idx >= p->nthreads) {
        atomic_store(&p->bad, 1);
    }
}

static void test_sched_worker_index(void **state)
{
    struct index_probe probes[64];
    struct sl_sched *s = new_sched(3);

    (void)state;
    for (int i = 0; i < 64; i++) {
        probes[i] = (struct index_probe){.task.fn = index_probe_fn, .nthreads = 3};
        sl_sched_submit(s, &probes[i].task);
    }
    sl_sched_stop(s);
    for (int i = 0; i < 64; i++) {
        assert_int_equal(atomic_load(&probes[i].bad), 0);
    }
    assert_int_equal(sl_sched_worker_index(), -1);
    sl_sched_free(s);
}

static void test_sched_new_rejects_bad_thread_count(void **state)
{
    struct sl_err err = {0};

    (void)state;
    assert_null(sl_sched_new(0, 0, 0, &err));
    assert_int_equal(err.code, SL_EINVAL);
    sl_err_clear(&err);
    assert_null(sl_sched_new(-3, 0, 0, &err));
    assert_int_equal(err.code, SL_EINVAL);
    sl_err_clear(&err);
    assert_null(sl_sched_new(SL_SCHED_THREADS_MAX + 1, 0, 0, &err));
    assert_int_equal(err.code, SL_EINVAL);
    sl_err_clear(&err);
    assert_null(sl_sched_new(1, 0, SL_SCHED_BLOCKING_MAX + 1, &err));
    assert_int_equal(err.code, SL_EINVAL);
    assert_null(sl_sched_new(0, 0, 0, NULL));
    assert_null(sl_sched_free(NULL));
}

static void test_sched_new_oom_fails_cleanly(void **state)
{
    struct sl_sched *s = NULL;
    struct sl_err err;

    (void)state;
    for (long nth = 1; s == NULL; nth++) {
        sl_err_clear(&err);
        sl_mem_fail_nth(nth);
        s = sl_sched_new(3, 2, 4, &err);
        if (s == NULL) {
            assert_int_equal(err.code, SL_ENOMEM);
        }
        assert_true(nth < 100);
    }
    sl_mem_fail_nth(0);
    sl_sched_free(s);
}

/* ==== Blocking threads ==== */

/* A blocking task waits for a CPU task that it submits itself: on one CPU
 * worker this completes only if the blocking task runs elsewhere. */
struct handoff {
    struct sl_task waiter;
    struct sl_task setter;
    struct sl_sched *s;
    atomic_int set;
    atomic_int waited;
    atomic_int on_worker; /* the blocking task ran on a CPU worker */
};

static void handoff_set(struct sl_task *task)
{
    struct handoff *h = (struct handoff *)((char *)task - offsetof(struct handoff, setter));

    atomic_store(&h->set, 1);
}

static void handoff_wait(struct sl_task *task)
{
    struct handoff *h = (struct handoff *)task;

    atomic_store(&h->on_worker, sl_sched_worker_index() >= 0);
    sl_sched_submit(h->s, &h->setter);
    atomic_store(&h->waited, wait_for_flag(&h->set) ? 1 : -1);
}

/* Runs a handoff on a pool of nthreads workers and nblocking blocking
 * threads; returns whether the waiter ran on a CPU worker. */
static int run_handoff(int nthreads, int nblocking)
{
    struct sl_err err = {0};
    struct sl_sched *s = sl_sched_new(nthreads, nblocking, nblocking, &err);
    struct handoff h = {.waiter.fn = handoff_wait, .setter.fn = handoff_set};

    assert_non_null(s);
    h.s = s;
    sl_sched_submit_blocking(s, &h.waiter);
    sl_sched_stop(s);
    assert_int_equal(atomic_load(&h.waited), 1);
    sl_sched_free(s);
    return atomic_load(&h.on_worker);
}

static void test_sched_blocking_task_never_holds_a_worker(void **state)
{
    (void)state;
    assert_int_equal(run_handoff(1, 1), 0);
}

/* Blocking threads sleep with 1 us of timer slack, not Linux's default
 * 50 us: a `delay` call of 100 us overslept by half its length, and a
 * stage shedding with priorities (many small calls) was busy 77% of the
 * time instead of 85%. */
struct slack_probe {
    struct sl_task task;
    atomic_long slack;
};

static void slack_probe_fn(struct sl_task *task)
{
    struct slack_probe *p = (struct slack_probe *)task;

    atomic_store(&p->slack, (long)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0));
}

static void test_sched_blocking_threads_sleep_on_time(void **state)
{
    struct sl_err err = {0};
    struct sl_sched *s = sl_sched_new(1, 1, 4, &err);
    struct slack_probe p = {.task.fn = slack_probe_fn};

    (void)state;
    assert_non_null(s);
    sl_sched_submit_blocking(s, &p.task);
    sl_sched_stop(s);
    assert_int_equal(atomic_load(&p.slack), 1000);
    sl_sched_free(s);
}

/* Without blocking threads a blocking submit is an ordinary one. */
static void test_sched_blocking_without_threads_runs_on_workers(void **state)
{
    (void)state;
    assert_int_equal(run_handoff(2, 0), 1);
}

/* ==== Blocking threads on demand ==== */

/* A blocking task that waits at a gate: counts itself running, waits for the
 * gate to open (bounded), notes where it ran. */
struct gated {
    struct sl_task task;
    atomic_int *running;
    atomic_int *gate;
    atomic_int ran;
    atomic_int on_worker;
    atomic_int timed_out;
};

static void gated_fn(struct sl_task *task)
{
    struct gated *g = CONTAINER_OF(task, struct gated, task);

    atomic_store(&g->on_worker, sl_sched_worker_index() >= 0);
    atomic_fetch_add(g->running, 1);
    if (g->gate != NULL && !wait_for_flag(g->gate)) {
        atomic_store(&g->timed_out, 1);
    }
    atomic_fetch_sub(g->running, 1);
    atomic_store(&g->ran, 1);
}

static void gated_init(struct gated *g, int n, atomic_int *running, atomic_int *gate)
{
    for (int i = 0; i < n; i++) {
        g[i] = (struct gated){.task.fn = gated_fn, .running = running, .gate = gate};
    }
}

/* Yields until *v == want; false on timeout. */
static bool wait_for_value(atomic_int *v, int want)
{
    uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + WAIT_NS;

    while (atomic_load(v) != want) {
        if (clock_ns(CLOCK_MONOTONIC) > deadline) {
            return false;
        }
        sched_yield();
    }
    return true;
}

/* Yields until the pool has want blocking threads; false on timeout. */
/* Until want threads live, all of them idle: a thread counted live may
 * still be on its way from its last task to the idle list, and a submit
 * then would start another. */
static bool wait_for_blocking_now(struct sl_sched *s, int want)
{
    uint64_t deadline = clock_ns(CLOCK_MONOTONIC) + WAIT_NS;
    int now = -1;

    for (;;) {
        sl_sched_blocking_threads(s, &now, NULL, NULL);
        if (now == want && sl_sched_test_blocking_idle_count(s) == want) {
            return true;
        }
        if (clock_ns(CLOCK_MONOTONIC) > deadline) {
            return false;
        }
        sched_yield();
    }
}

static struct sl_sched *new_blocking_sched(int min, int max)
{
    struct sl_err err = {0};
    struct sl_sched *s = sl_sched_new(1, min, max, &err);

    assert_non_null(s);
    return s;
}

static void assert_blocking_stats(struct sl_sched *s, int now, int peak, uint64_t started)
{
    int n = -1, p = -1;
    uint64_t st = 0;

    sl_sched_blocking_threads(s, &n, &p, &st);
    assert_int_equal(n, now);
    assert_int_equal(p, peak);
    assert_int_equal(st, started);
}

/* Five tasks that wait for each other's company need five threads: the pool
 * starts them on demand, from one. */
static void test_sched_blocking_grows_on_demand(void **state)
{
    struct sl_sched *s = new_blocking_sched(1, 8);
    atomic_int running = 0, gate = 0;
    struct gated g[5];

    (void)state;
    assert_blocking_stats(s, 1, 1, 1);
    gated_init(g, 5, &running, &gate);
    for (int i = 0; i < 5; i++) {
        sl_sched_submit_blocking(s, &g[i].task);
    }
    assert_true(wait_for_value(&running, 5));
    assert_blocking_stats(s, 5, 5, 5);
    atomic_store(&gate, 1);
    sl_sched_stop(s);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(atomic_load(&g[i].ran), 1);
        assert_int_equal(atomic_load(&g[i].on_worker), 0);
        assert_int_equal(atomic_load(&g[i].timed_out), 0);
    }
    sl_sched_free(s);
}

/* Past max, tasks wait for a free thread (FIFO) instead of starting more. */
static void test_sched_blocking_stops_growing_at_max(void **state)
{
    struct sl_sched *s = new_blocking_sched(1, 3);
    atomic_int running = 0, gate = 0;
    struct gated g[6];

    (void)state;
    gated_init(g, 6, &running, &gate);
    for (int i = 0; i < 6; i++) {
        sl_sched_submit_blocking(s, &g[i].task);
    }
    assert_true(wait_for_value(&running, 3));
    assert_blocking_stats(s, 3, 3, 3);
    atomic_store(&gate, 1);
    sl_sched_stop(s);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(atomic_load(&g[i].ran), 1);
    }
    assert_blocking_stats(s, 3, 3, 3);
    sl_sched_free(s);
}

/* Threads above min leave after the idle timeout; the next burst starts new
 * ones (which join those that left). */
static void test_sched_blocking_idle_threads_exit(void **state)
{
    struct sl_sched *s = new_blocking_sched(1, 8);
    atomic_int running = 0, gate = 0, gate2 = 0;
    struct gated g[4], h[4];

    (void)state;
    sl_sched_test_blocking_idle(s, 1000000); /* 1 ms */
    gated_init(g, 4, &running, &gate);
    for (int i = 0; i < 4; i++) {
        sl_sched_submit_blocking(s, &g[i].task);
    }
    assert_true(wait_for_value(&running, 4));
    atomic_store(&gate, 1);
    assert_true(wait_for_blocking_now(s, 1));
    assert_blocking_stats(s, 1, 4, 4);
    /* The one left takes the first task; three more start. */
    gated_init(h, 4, &running, &gate2);
    for (int i = 0; i < 4; i++) {
        sl_sched_submit_blocking(s, &h[i].task);
    }
    assert_true(wait_for_value(&running, 4));
    assert_blocking_stats(s, 4, 4, 7);
    atomic_store(&gate2, 1);
    sl_sched_stop(s);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(atomic_load(&g[i].ran), 1);
        assert_int_equal(atomic_load(&h[i].ran), 1);
    }
    sl_sched_free(s);
}

/* A number N: N threads up front, never more, none leaves. */
static void test_sched_blocking_fixed_count(void **state)
{
    struct sl_sched *s = new_blocking_sched(3, 3);
    atomic_int running = 0, gate = 0;
    struct gated g[6];

    (void)state;
    sl_sched_test_blocking_idle(s, 1000);
    assert_blocking_stats(s, 3, 3, 3);
    gated_init(g, 6, &running, &gate);
    for (int i = 0; i < 6; i++) {
        sl_sched_submit_blocking(s, &g[i].task);
    }
    assert_true(wait_for_value(&running, 3));
    atomic_store(&gate, 1);
    sl_sched_stop(s);
    assert_blocking_stats(s, 3, 3, 3);
    sl_sched_free(s);
}

/* The wake-up race, made deterministic with the test hooks: two blocking
 * threads, one busy (at a gate), the other the last idle one, whose idle
 * wait times out. */
struct race {
    atomic_int timeouts; /* on_timeout calls */
    atomic_int at_timeout;
    atomic_int go;
    atomic_int exits;
    atomic_int hook_timed_out;
};

static void race_on_timeout(void *arg)
{
    struct race *r = arg;

    /* Only the first timeout waits for the test. */
    if (atomic_fetch_add(&r->timeouts, 1) == 0) {
        atomic_store(&r->at_timeout, 1);
        if (!wait_for_flag(&r->go)) {
            atomic_store(&r->hook_timed_out, 1);
        }
    }
}

static void race_on_exit(void *arg)
{
    struct race *r = arg;

    atomic_fetch_add(&r->exits, 1);
}

/* Sets up a pool with one busy blocking thread (busy at *gate) and one idle
 * above min, with a 1 ms idle timeout and the race hooks. */
static struct sl_sched *race_setup(struct race *r,
                                   struct gated *busy,
                                   struct gated *other,
                                   atomic_int *running,
                                   atomic_int *gate,
                                   bool wait_timeout)
{
    struct sl_sched *s = new_blocking_sched(1, 4);

    gated_init(busy, 1, running, gate);
    sl_sched_submit_blocking(s, &busy->task); /* the thread started up front */
    assert_true(wait_for_value(running, 1));
    gated_init(other, 1, running, NULL);
    sl_sched_test_blocking_idle(s, 1000000);
    sl_sched_test_blocking_hooks(s, wait_timeout ? race_on_timeout : NULL, race_on_exit, r);
    sl_sched_submit_blocking(s, &other->task); /* starts the second, which then idles */
    assert_true(wait_for_flag(&other->ran));
    return s;
}

/* A submit between the idle thread's timeout and its decision: the thread
 * is still idle (on the list), so it is handed the task and stays; no new
 * thread starts. */
static void test_sched_blocking_submit_during_exit_decision(void **state)
{
    struct race r = {0};
    atomic_int running = 0, gate = 0;
    struct gated busy, other, late;
    struct sl_sched *s;

    (void)state;
    s = race_setup(&r, &busy, &other, &running, &gate, true);
    assert_true(wait_for_flag(&r.at_timeout));
    gated_init(&late, 1, &running, NULL);
    sl_sched_submit_blocking(s, &late.task);
    atomic_store(&r.go, 1);
    assert_true(wait_for_flag(&late.ran));
    assert_int_equal(atomic_load(&late.on_worker), 0);
    int now = 0, peak = 0;
    uint64_t started = 0;
    sl_sched_blocking_threads(s, &now, &peak, &started);
    assert_int_equal(started, 2); /* handed over, nothing started */
    assert_int_equal(peak, 2);
    atomic_store(&gate, 1);
    sl_sched_stop(s);
    assert_int_equal(atomic_load(&r.hook_timed_out), 0);
    sl_sched_free(s);
}

/* A submit right after the last idle thread decided to leave: no thread is
 * idle, so the submit starts one (and joins the one that left). */
static void test_sched_blocking_submit_after_exit_decision(void **state)
{
    struct race r = {0};
    atomic_int running = 0, gate = 0;
    struct gated busy, other, late;
    struct sl_sched *s;

    (void)state;
    s = race_setup(&r, &busy, &other, &running, &gate, false);
    assert_true(wait_for_value(&r.exits, 1));
    assert_blocking_stats(s, 1, 2, 2);
    gated_init(&late, 1, &running, NULL);
    sl_sched_submit_blocking(s, &late.task);
    /* Runs while the only other thread is still at its gate. */
    assert_true(wait_for_flag(&late.ran));
    assert_int_equal(atomic_load(&late.on_worker), 0);
    assert_int_equal(atomic_load(&busy.ran), 0);
    /* Started a third thread; how many live now is a race: the one that ran
     * late may already have idled past the 1 ms timeout and left. */
    int now = 0, peak = 0;
    uint64_t started = 0;
    sl_sched_blocking_threads(s, &now, &peak, &started);
    assert_int_equal(started, 3);
    assert_int_equal(peak, 2);
    assert_true(now == 1 || now == 2);
    atomic_store(&gate, 1);
    sl_sched_stop(s);
    sl_sched_free(s);
}

/* Stress: submissions spaced around a tiny idle timeout, so threads keep
 * leaving and starting; each task must run. */
static void test_sched_blocking_churn_loses_nothing(void **state)
{
    enum { ROUNDS = 2000 };
    struct sl_sched *s = new_blocking_sched(0, 3);
    struct counted *tasks = calloc(ROUNDS, sizeof(*tasks));
    uint64_t started = 0;

    (void)state;
    assert_non_null(tasks);
    sl_sched_test_blocking_idle(s, 20000); /* 20 us */
    for (int i = 0; i < ROUNDS; i++) {
        struct timespec pause = {.tv_sec = 0, .tv_nsec = (i * 7919) % 40000};
        tasks[i].task.fn = counted_fn;
        sl_sched_submit_blocking(s, &tasks[i].task);
        if (i % 3 == 0) {
            nanosleep(&pause, NULL);
        }
    }
    sl_sched_stop(s);
    for (int i = 0; i < ROUNDS; i++) {
        assert_int_equal(atomic_load(&tasks[i].runs), 1);
    }
    sl_sched_blocking_threads(s, NULL, NULL, &started);
    assert_true(started >= 1);
    sl_sched_free(s);
    free(tasks);
}

/* A failed start is not fatal while a blocking thread exists: the task
 * waits for it. The next start works again. */
static void test_sched_blocking_failed_start_waits(void **state)
{
    struct sl_sched *s = new_blocking_sched(1, 4);
    atomic_int running = 0, gate = 0, gate2 = 0;
    struct gated busy, late, more[2];

    (void)state;
    gated_init(&busy, 1, &running, &gate);
    sl_sched_submit_blocking(s, &busy.task);
    assert_true(wait_for_value(&running, 1));
    sl_sched_test_fail_blocking_start(s, 1);
    gated_init(&late, 1, &running, NULL);
    sl_sched_submit_blocking(s, &late.task); /* its start fails: queued */
    assert_blocking_stats(s, 1, 1, 1);
    assert_int_equal(atomic_load(&late.ran), 0); /* the only thread is at the gate */
    atomic_store(&gate, 1);
    assert_true(wait_for_flag(&late.ran));
    assert_int_equal(atomic_load(&late.on_worker), 0);
    gated_init(more, 2, &running, &gate2);
    sl_sched_submit_blocking(s, &more[0].task);
    sl_sched_submit_blocking(s, &more[1].task);
    assert_true(wait_for_value(&running, 2)); /* starting works again */
    atomic_store(&gate2, 1);
    sl_sched_stop(s);
    sl_sched_free(s);
}

/* With min 0 and no thread at all, a failed start hands the task to the CPU
 * workers rather than losing it. */
static void test_sched_blocking_failed_start_without_threads(void **state)
{
    struct sl_sched *s = new_blocking_sched(0, 2);
    atomic_int running = 0;
    struct gated g;

    (void)state;
    assert_blocking_stats(s, 0, 0, 0);
    sl_sched_test_fail_blocking_start(s, 1);
    gated_init(&g, 1, &running, NULL);
    sl_sched_submit_blocking(s, &g.task);
    sl_sched_stop(s);
    assert_int_equal(atomic_load(&g.ran), 1);
    assert_int_equal(atomic_load(&g.on_worker), 1);
    assert_blocking_stats(s, 0, 0, 0);
    sl_sched_free(s);
}

/* ==== Work stealing off ==== */

struct pinned_pair {
    struct sl_task root;
    struct sl_task child;
    struct sl_sched *s;
    int root_worker;
    atomic_int child_worker;
};

static void pinned_child_fn(struct sl_task *task)
{
    struct pinned_pair *p = CONTAINER_OF(task, struct pinned_pair, child);

    atomic_store(&p->child_worker, sl_sched_worker_index());
}

static void pinned_root_fn(struct sl_task *task)
{
    struct pinned_pair *p = CONTAINER_OF(task, struct pinned_pair, root);

    p->root_worker = sl_sched_worker_index();
    sl_sched_submit(p->s, &p->child);
    /* Time for an idle worker to steal, were it allowed to. */
    for (int i = 0; i < 2000; i++) {
        sched_yield();
    }
}

static void test_sched_no_stealing_when_off(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        struct sl_sched *s = new_sched(2);
        struct pinned_pair p = {.root.fn = pinned_root_fn, .child.fn = pinned_child_fn, .s = s};
        uint64_t steals = 1;

        sl_sched_set_stealing(s, false);
        atomic_init(&p.child_worker, -1);
        sl_sched_submit(s, &p.root);
        sl_sched_stop(s);
        assert_int_equal(atomic_load(&p.child_worker), p.root_worker);
        sl_sched_stats(s, NULL, &steals);
        assert_int_equal(steals, 0);
        sl_sched_free(s);
    }
}

/* Stealing off: a task with a home runs on its home worker only, whoever
 * submits it (a thread outside the pool, the other worker, or its home
 * worker itself), even while the other worker idles; home 3 of 2 workers
 * is worker 0. The home worker may be parked: the submit must wake it. */
struct homed {
    struct sl_task task;
    struct sl_sched *s;
    struct homed *child; /* submitted by this task, or NULL */
    atomic_int worker;   /* where it ran */
};

static void homed_fn(struct sl_task *task)
{
    struct homed *h = CONTAINER_OF(task, struct homed, task);

    atomic_store(&h->worker, sl_sched_worker_index());
    if (h->child != NULL) {
        sl_sched_submit(h->s, &h->child->task);
    }
}

static void test_sched_home_worker_when_stealing_off(void **state)
{
    enum { N = 64 };

    (void)state;
    for (int round = 0; round < 10; round++) {
        struct sl_sched *s = new_sched(2);
        static struct homed h[N][2];

        sl_sched_set_stealing(s, false);
        for (int i = 0; i < N; i++) {
            uint16_t home = (uint16_t)(1 + i % 3);
            h[i][1] =
                (struct homed){.task = {.fn = homed_fn, .home = (uint16_t)(3 - i % 2)}, .s = s};
            h[i][0] =
                (struct homed){.task = {.fn = homed_fn, .home = home}, .s = s, .child = &h[i][1]};
            atomic_init(&h[i][0].worker, -1);
            atomic_init(&h[i][1].worker, -1);
            sl_sched_submit(s, &h[i][0].task);
            if (i % 8 == 0) {
                usleep(200); /* let the workers park now and then */
            }
        }
        sl_sched_stop(s);
        for (int i = 0; i < N; i++) {
            for (int k = 0; k < 2; k++) {
                assert_int_equal(atomic_load(&h[i][k].worker), (h[i][k].task.home - 1) % 2);
            }
        }
        sl_sched_free(s);
    }
}

/* Stealing switched off and on while homed tasks are queued: a task put in
 * an inbox while stealing was off is run by that worker after stealing is
 * on again (only it looks there), and one on a deque while stealing was on
 * by that deque's owner once it is off. Nothing is stranded: stop returns
 * and every task ran. Parked workers and workers between looks meet
 * both settings (no timing is asserted). */
static void test_sched_stealing_toggled_strands_nothing(void **state)
{
    enum { N = 512 };
    static struct homed h[N][2];

    (void)state;
    for (int round = 0; round < 4; round++) {
        struct sl_sched *s = new_sched(3);

        for (int i = 0; i < N; i++) {
            h[i][1] = (struct homed){.task = {.fn = homed_fn, .home = (uint16_t)(1 + (i + 1) % 3)},
                                     .s = s};
            h[i][0] = (struct homed){
                .task = {.fn = homed_fn, .home = (uint16_t)(1 + i % 3)}, .s = s, .child = &h[i][1]};
            atomic_init(&h[i][0].worker, -1);
            atomic_init(&h[i][1].worker, -1);
            sl_sched_set_stealing(s, (i / 16 + round) % 2 == 0);
            sl_sched_submit(s, &h[i][0].task);
            if (i % 32 == 0) {
                usleep(200); /* let the workers park now and then */
            }
        }
        sl_sched_stop(s);
        for (int i = 0; i < N; i++) {
            assert_true(atomic_load(&h[i][0].worker) >= 0);
            assert_true(atomic_load(&h[i][1].worker) >= 0);
        }
        sl_sched_free(s);
    }
}

/* ==== Priority levels: wake-ups and level 0's way in ==== */

/* Stealing off, 2 workers: a worker submits a level-5 task and waits for
 * it; only the parked worker can run it, so it must be woken. */
struct waiter_task {
    struct sl_task task;
    struct sl_sched *s;
    struct counted urgent;
    atomic_int ok;
};

static void waiter_fn(struct sl_task *task)
{
    struct waiter_task *w = CONTAINER_OF(task, struct waiter_task, task);

    sl_sched_submit(w->s, &w->urgent.task);
    atomic_store(&w->ok, wait_for_flag(&w->urgent.runs));
}

static void test_sched_level_task_wakes_a_worker_without_stealing(void **state)
{
    (void)state;
    for (int r = 0; r < 50; r++) {
        struct waiter_task w = {.task.fn = waiter_fn, .s = new_sched(2)};
        w.urgent.task.fn = counted_fn;
        w.urgent.task.level = 5;
        sl_sched_set_stealing(w.s, false);
        sl_sched_submit(w.s, &w.task);
        sl_sched_stop(w.s);
        assert_int_equal(atomic_load(&w.ok), 1);
        sl_sched_free(w.s);
    }
}

/* One worker, a level-9 hog resubmitting itself, FEED level-0 tasks in the
 * injection queue, then a level-0 task pushed on the hog's deque: the
 * fairness look, level 0's only way in while urgent work is queued, must
 * reach the deque within a few looks, not once the injection queue is dry
 * (which takes FEED looks, or never while outside threads keep feeding it).
 * Counts looks by the feeders run, so no timing is involved. */
#define FEED 256

struct feeder {
    struct sl_task task;
    atomic_long *ran;
};

static void feeder_fn(struct sl_task *task)
{
    struct feeder *f = CONTAINER_OF(task, struct feeder, task);

    atomic_fetch_add(f->ran, 1);
}

struct hog9 {
    struct sl_task task;
    struct sl_sched *s;
    struct sl_task local;
    atomic_long *ran;
    atomic_int push_local;
    atomic_long ran_at_push, ran_at_local;
    bool pushed;
};

static void hog9_local_fn(struct sl_task *task)
{
    struct hog9 *h = CONTAINER_OF(task, struct hog9, local);

    atomic_store(&h->ran_at_local, atomic_load(h->ran));
}

static void hog9_fn(struct sl_task *task)
{
    struct hog9 *h = CONTAINER_OF(task, struct hog9, task);

    if (!h->pushed && atomic_load(&h->push_local)) {
        h->pushed = true;
        atomic_store(&h->ran_at_push, atomic_load(h->ran));
        sl_sched_submit(h->s, &h->local);
    }
    if (atomic_load(&h->ran_at_local) < 0) {
        sl_sched_submit(h->s, &h->task);
    }
}

static void test_sched_busy_injection_queue_does_not_shut_out_the_deque(void **state)
{
    static struct feeder f[FEED];
    atomic_long ran = 0;
    struct hog9 h = {.task.fn = hog9_fn, .task.level = 9, .s = new_sched(1), .ran = &ran};

    (void)state;
    h.local.fn = hog9_local_fn;
    atomic_store(&h.ran_at_local, -1);
    sl_sched_submit(h.s, &h.task);
    for (int i = 0; i < FEED; i++) {
        f[i] = (struct feeder){.task.fn = feeder_fn, .ran = &ran};
        sl_sched_submit(h.s, &f[i].task);
    }
    atomic_store(&h.push_local, 1);
    sl_sched_stop(h.s);
    assert_int_equal(atomic_load(&ran), FEED);
    assert_true(atomic_load(&h.ran_at_local) - atomic_load(&h.ran_at_push) <= 2);
    sl_sched_free(h.s);
}

/* The same with stealing off and the level-0 task in the worker's inbox
 * (a home task another thread submitted): the fairness look must reach the
 * inbox within a few looks too, not once the injection queue is dry. A gate
 * task holds the one worker while the hog, the feeders and the homed task
 * are queued, so what each look finds does not depend on timing. */
struct gate {
    struct sl_task task;
    atomic_int entered;
    atomic_int open;
    atomic_int ok; /* the gate opened before the wait's deadline */
};

static void gate_fn(struct sl_task *task)
{
    struct gate *g = CONTAINER_OF(task, struct gate, task);

    atomic_store(&g->entered, 1);
    atomic_store(&g->ok, wait_for_flag(&g->open));
}

static void test_sched_busy_injection_queue_does_not_shut_out_the_inbox(void **state)
{
    static struct feeder f[FEED];
    atomic_long ran = 0;
    struct hog9 h = {.task.fn = hog9_fn, .task.level = 9, .s = new_sched(1), .ran = &ran};
    struct gate g = {.task.fn = gate_fn};

    (void)state;
    sl_sched_set_stealing(h.s, false);
    h.local.fn = hog9_local_fn;
    h.local.home = 1;
    h.pushed = true; /* the homed task comes from this thread, not the hog */
    atomic_store(&h.ran_at_local, -1);
    sl_sched_submit(h.s, &g.task);
    assert_true(wait_for_flag(&g.entered));
    sl_sched_submit(h.s, &h.task);
    for (int i = 0; i < FEED; i++) {
        f[i] = (struct feeder){.task.fn = feeder_fn, .ran = &ran};
        sl_sched_submit(h.s, &f[i].task); /* no home: the injection queue */
    }
    sl_sched_submit(h.s, &h.local); /* home 1 from outside: worker 0's inbox */
    atomic_store(&g.open, 1);
    sl_sched_stop(h.s);
    assert_int_equal(atomic_load(&g.ok), 1);
    assert_int_equal(atomic_load(&ran), FEED);
    assert_true(atomic_load(&h.ran_at_local) <= 2);
    sl_sched_free(h.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sched_tree_runs_each_task_once),
        cmocka_unit_test(test_sched_tree_runs_on_one_thread),
        cmocka_unit_test(test_sched_idle_worker_steals),
        cmocka_unit_test(test_sched_stop_waits_for_submitted_children),
        cmocka_unit_test(test_sched_submit_from_outside_threads),
        cmocka_unit_test(test_sched_parked_workers_wake_for_each_submit),
        cmocka_unit_test(test_sched_deque_overflow_runs_everything),
        cmocka_unit_test(test_sched_level_zero_progresses_beside_level_nine),
        cmocka_unit_test(test_sched_higher_level_runs_first),
        cmocka_unit_test(test_sched_lifo_does_not_starve_older_tasks),
        cmocka_unit_test(test_sched_outside_submit_waits_for_few_runs),
        cmocka_unit_test(test_sched_idle_pool_sleeps),
        cmocka_unit_test(test_sched_worker_index),
        cmocka_unit_test(test_sched_new_rejects_bad_thread_count),
        cmocka_unit_test(test_sched_new_oom_fails_cleanly),
        cmocka_unit_test(test_sched_blocking_task_never_holds_a_worker),
        cmocka_unit_test(test_sched_blocking_threads_sleep_on_time),
        cmocka_unit_test(test_sched_blocking_without_threads_runs_on_workers),
        cmocka_unit_test(test_sched_blocking_grows_on_demand),
        cmocka_unit_test(test_sched_blocking_stops_growing_at_max),
        cmocka_unit_test(test_sched_blocking_idle_threads_exit),
        cmocka_unit_test(test_sched_blocking_fixed_count),
        cmocka_unit_test(test_sched_blocking_submit_during_exit_decision),
        cmocka_unit_test(test_sched_blocking_submit_after_exit_decision),
        cmocka_unit_test(test_sched_blocking_churn_loses_nothing),
        cmocka_unit_test(test_sched_blocking_failed_start_waits),
        cmocka_unit_test(test_sched_blocking_failed_start_without_threads),
        cmocka_unit_test(test_sched_no_stealing_when_off),
        cmocka_unit_test(test_sched_home_worker_when_stealing_off),
        cmocka_unit_test(test_sched_stealing_toggled_strands_nothing),
        cmocka_unit_test(test_sched_level_task_wakes_a_worker_without_stealing),
        cmocka_unit_test(test_sched_busy_injection_queue_does_not_shut_out_the_deque),
        cmocka_unit_test(test_sched_busy_injection_queue_does_not_shut_out_the_inbox),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
