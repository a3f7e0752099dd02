/* SPDX-License-Identifier: MIT */
/* Signal handling, drain deadline and progress line (see loop.h). The loop
 * thread sleeps in ppoll on a signalfd (SIGINT/SIGTERM, blocked in every
 * thread) and an eventfd that sl_loop_attach, sl_loop_stop and a pipeline
 * stop (failure) write, with a timeout only for the next deadline: the
 * drain's end or the next progress line. It starts before the pipeline is
 * built (opening sinks may wait for a locked database), so signals are
 * handled all along; a stop asked before the pipeline exists is applied
 * when it is attached. */
#include "loop.h"

#include "control.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "summary.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PROGRESS_NS (500 * 1000 * 1000ull)
#define TAP_NS      (20 * 1000 * 1000ull)
#define CONTROL_FDS 9 /* the listening socket and 8 clients */
#define NO_DEADLINE UINT64_MAX
/* What the shutdown may take past the drain deadline: joins and closes of
 * nodes that all finished, so milliseconds unless something is stuck. */
/* Teardown's own time, past the drain deadline (or the end of the run):
 * closing a SQLite connection checkpoints its write-ahead log, which after
 * a bulk load can take seconds (a 224 MB log); the watchdog is for what
 * never ends, not for that. */
#define SHUTDOWN_GRACE_NS (10 * 1000 * 1000 * 1000ull)

/* The shutdown watchdog (sl_loop_guard_shutdown): a thread of its own,
 * since the loop thread is joined before the pipeline is freed. */
struct shutdown_guard {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC */
    uint64_t deadline_ns;
    bool done;           /* under lock: the shutdown finished */
    char what[320];      /* under lock: what the current step waits for */
    uint64_t timeout_ms; /* engine.drain_timeout, for the message */
};

struct sl_loop {
    _Atomic(struct sl_pipeline *) pl; /* NULL until sl_loop_attach; release store, acquire
                                         load */
    uint64_t drain_timeout_ns;        /* engine.drain_timeout */
    pthread_t thread;
    bool started;               /* thread created (main thread only) */
    int sig_fd;                 /* signalfd for SIGINT and SIGTERM */
    int wake_fd;                /* eventfd: attach, stop, a pipeline stop */
    struct sl_flow_waker waker; /* writes wake_fd; installed on pl->flow */
    atomic_bool quit;           /* set by sl_loop_stop before it writes wake_fd */
    atomic_bool drain_failed;   /* the drain deadline passed */
    bool progress;
    bool summary;             /* print it when the drain deadline ends the run */
    const char *summary_json; /* --summary-json OUT, written then too (or NULL) */
    int early_signo;          /* a signal caught before the loop started, or 0 */
    int signals;              /* signals received (loop thread only) */
    bool stopped;             /* the pipeline was asked to stop (loop thread only) */
    uint64_t drain_start_ns;
    bool tuning;         /* the pipeline may have `workers: auto` nodes (loop thread only) */
    uint64_t tune_at_ns; /* the next tuning tick (loop thread only) */
    struct shutdown_guard *guard; /* main only: the watchdog, once the shutdown starts */
    struct sl_metrics *metrics;   /* engine.metrics, served by the loop thread, or NULL */
    struct sl_control *control;   /* engine.control, served by the loop thread, or NULL */
};

/* Signals caught by the handler before they were blocked (main thread). */
static volatile sig_atomic_t caught_count;
static volatile sig_atomic_t caught_signo;

static void signal_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
}

/* Leaves at once with the workers still running, which checkpoints make safe
 * (what was not committed is replayed). The raw exit_group, not _exit: the
 * ThreadSanitizer build intercepts _exit and reports every worker that
 * happened to finish unjoined as a leak, failing a deliberate exit. */
static _Noreturn void exit_now(int code)
{
    syscall(SYS_exit_group, code);
    _exit(code);
}

static const char second_msg[] = "\nsluice: second signal: exiting now\n";

/* Before the pipeline exists there is nothing to drain: the first signal is
 * kept for the loop, a second one exits as it would later. */
static void on_early_signal(int sig)
{
    int saved = errno;

    caught_count = caught_count + 1;
    if (caught_count > 1) {
        (void)!write(2, second_msg, sizeof(second_msg) - 1);
        exit_now(130);
    }
    caught_signo = sig;
    errno = saved;
}

void sl_loop_catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_early_signal;
    sa.sa_flags = SA_RESTART; /* reading the config goes on */
    signal_set(&sa.sa_mask);
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);
}

void sl_loop_release_signals(void)
{
    struct sigaction sa;
    sigset_t set;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    (void)sigaction(SIGINT, &sa, NULL);
    (void)sigaction(SIGTERM, &sa, NULL);
    signal_set(&set);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    if (caught_count > 0) {
        (void)raise(caught_signo); /* dies of it, as if never caught */
    }
}

void sl_loop_block_signals(void)
{
    sigset_t set;

    signal_set(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static uint64_t sink_records(const struct sl_pipeline *pl)
{
    uint64_t n = 0;

    for (size_t i = 0; i < pl->nnodes; i++) {
        if (pl->nodes[i].cn->kind == SLUICE_KIND_SINK && &pl->nodes[i] != pl->dead_letter) {
            n += atomic_load_explicit(&pl->nodes[i].c.out, memory_order_relaxed);
        }
    }
    return n;
}

static void show_progress(struct sl_pipeline *pl, uint64_t *last_ns, uint64_t *last_n)
{
    uint64_t now = sl_now_ns();
    uint64_t n = sink_records(pl);
    double secs = (double)(now - *last_ns) / 1e9;

    sl_log_progress("sluice: %llu records written, %.0f rec/s, %.1f MiB in flight",
                    (unsigned long long)n, secs > 0 ? (double)(n - *last_n) / secs : 0.0,
                    (double)atomic_load(&pl->flow.used) / (1024.0 * 1024.0));
    *last_ns = now;
    *last_n = n;
}

static void on_signal(struct sl_loop *loop, int sig)
{
    loop->signals++;
    if (loop->signals > 1) {
        (void)!write(2, second_msg, sizeof(second_msg) - 1);
        exit_now(130);
    }
    sl_log_info("%s: draining (a second signal exits at once)",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
    loop->drain_start_ns = sl_now_ns();
}

/* The waker of pl->flow: a pipeline stop (a failure) wakes the loop so that
 * the drain deadline starts then. Thread: any; async-signal-safe. */
static void wake(void *arg)
{
    const struct sl_loop *loop = arg;
    uint64_t one = 1;

    /* EAGAIN: the counter is full, the loop is woken anyway. */
    (void)!write(loop->wake_fd, &one, sizeof(one));
}

static void read_signals(struct sl_loop *loop)
{
    struct signalfd_siginfo si;

    while (read(loop->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        on_signal(loop, (int)si.ssi_signo);
    }
}

/* The next time the loop must act by itself: the drain deadline, the next
 * progress line; NO_DEADLINE when only an event can wake it. */
static uint64_t next_deadline(const struct sl_loop *loop, bool show, uint64_t last_ns)
{
    uint64_t at = NO_DEADLINE;

    if (loop->drain_start_ns != 0) {
        at = loop->drain_start_ns + loop->drain_timeout_ns;
    }
    if (show && last_ns + PROGRESS_NS < at) {
        at = last_ns + PROGRESS_NS;
    }
    /* Acquire: as in tick. */
    if (loop->tuning && atomic_load_explicit(&loop->pl, memory_order_acquire) != NULL &&
        loop->tune_at_ns < at) {
        at = loop->tune_at_ns;
    }
    return at;
}

/* Sleeps until a signal, a wake-up or deadline_ns (NO_DEADLINE: none). */
static void wait_event(struct sl_loop *loop, uint64_t deadline_ns)
{
    struct pollfd fds[3 + CONTROL_FDS] = {
        {.fd = loop->sig_fd, .events = POLLIN},
        {.fd = loop->wake_fd, .events = POLLIN},
        {.fd = loop->metrics != NULL ? sl_metrics_fd(loop->metrics) : -1, .events = POLLIN}};
    size_t nfds = 3;
    struct timespec ts, *timeout = NULL;
    uint64_t now = sl_now_ns();
    uint64_t count;

    /* The HTTP server's own timeouts (idle connections) need a turn now
     * and then even when nothing arrives. */
    if (loop->metrics != NULL) {
        uint64_t due = sl_metrics_due_ns(loop->metrics, now);
        deadline_ns = deadline_ns == NO_DEADLINE || deadline_ns > due ? due : deadline_ns;
    }
    if (loop->control != NULL) {
        nfds += sl_control_pollfds(loop->control, fds + 3, CONTROL_FDS);
        /* Taps gather on the workers: their bytes are moved this often. */
        if (sl_control_tapping(loop->control) &&
            (deadline_ns == NO_DEADLINE || deadline_ns > now + TAP_NS)) {
            deadline_ns = now + TAP_NS;
        }
    }
    if (deadline_ns != NO_DEADLINE) {
        uint64_t left = deadline_ns > now ? deadline_ns - now : 0;

        ts.tv_sec = (time_t)(left / 1000000000ull);
        ts.tv_nsec = (long)(left % 1000000000ull);
        timeout = &ts;
    }
    int n = ppoll(fds, (nfds_t)nfds, timeout, NULL);
    if (loop->metrics != NULL) {
        sl_metrics_run(loop->metrics);
    }
    if (loop->control != NULL) {
        sl_control_run(loop->control);
    }
    if (n <= 0) {
        return; /* the deadline, or EINTR */
    }
    if (fds[1].revents & POLLIN) {
        (void)!read(loop->wake_fd, &count, sizeof(count));
    }
    if (fds[0].revents & POLLIN) {
        read_signals(loop);
    }
}

/* One pass after a wake-up: applies a stop, starts and checks the drain
 * deadline, shows progress. */
static void tick(struct sl_loop *loop, bool show, uint64_t *last_ns, uint64_t *last_n)
{
    /* Acquire pairs with the release in sl_loop_attach: pl is built. */
    struct sl_pipeline *pl = atomic_load_explicit(&loop->pl, memory_order_acquire);

    if (pl != NULL && loop->signals > 0 && !loop->stopped) {
        loop->stopped = true;
        sl_pipeline_stop(pl);
    }
    /* A failed run drains too (what is in flight is written), under the
     * same deadline as a signalled one. */
    if (pl != NULL && loop->drain_start_ns == 0 && atomic_load(&pl->failed)) {
        loop->drain_start_ns = sl_now_ns();
    }
    if (loop->drain_start_ns != 0 && sl_now_ns() - loop->drain_start_ns >= loop->drain_timeout_ns) {
        char running[256] = "";
        const char *opening = pl == NULL ? sl_pipeline_opening() : NULL;
        if (pl != NULL) {
            sl_pipeline_describe_running(pl, running, sizeof(running));
        }
        if (pl == NULL) {
            /* Stopped before it started: no counts to show or write. */
            sl_log_error("drain did not finish within engine.drain_timeout (still starting: "
                         "opening %s%s%s): exiting",
                         opening != NULL ? "'" : "the nodes", opening != NULL ? opening : "",
                         opening != NULL ? "'" : "");
        } else if (running[0] != '\0') {
            sl_log_error("drain did not finish within engine.drain_timeout (still running: %s): "
                         "exiting",
                         running);
        } else {
            sl_log_error("drain did not finish within engine.drain_timeout: exiting");
        }
        if (pl != NULL && loop->summary) {
            /* The counts so far (atomics, read while nodes still run): what
             * is not written is read again by the next run. */
            sl_summary_print_counts(pl, stderr, sl_now_ns());
        }
        if (pl != NULL && loop->summary_json != NULL) {
            struct sl_err err = {0};
            char msg[512];
            if (sl_summary_write_json(pl, loop->summary_json, &err) != 0) {
                sl_log_error("%s", sl_err_format(&err, msg, sizeof(msg)));
            }
        }
        atomic_store(&loop->drain_failed, true);
        exit_now(1);
    }
    if (pl != NULL && loop->tuning && sl_now_ns() >= loop->tune_at_ns) {
        uint64_t now = sl_now_ns();
        loop->tuning = sl_pipeline_tune(pl, now);
        loop->tune_at_ns = now + SL_TUNE_TICK_NS;
    }
    if (show && sl_now_ns() - *last_ns >= PROGRESS_NS) {
        if (pl != NULL) {
            show_progress(pl, last_ns, last_n);
        } else {
            *last_ns = sl_now_ns(); /* nothing to show yet: due again later */
        }
    }
}

static void *loop_main(void *arg)
{
    struct sl_loop *loop = arg;
    uint64_t last_ns = sl_now_ns();
    uint64_t last_n = 0;
    bool show = loop->progress && isatty(2);

    if (loop->early_signo != 0) {
        on_signal(loop, loop->early_signo);
    }
    for (;;) {
        tick(loop, show, &last_ns, &last_n);
        /* Acquire pairs with the release in sl_loop_stop. */
        if (atomic_load_explicit(&loop->quit, memory_order_acquire)) {
            break;
        }
        wait_event(loop, next_deadline(loop, show, last_ns));
    }
    if (show) {
        sl_log_progress_end();
    }
    return NULL;
}

static struct sl_loop *loop_free(struct sl_loop *loop)
{
    loop->metrics = sl_metrics_stop(loop->metrics);
    loop->control = sl_control_stop(loop->control);
    if (loop->sig_fd >= 0) {
        close(loop->sig_fd);
    }
    if (loop->wake_fd >= 0) {
        close(loop->wake_fd);
    }
    sl_free(loop);
    return NULL;
}

/* engine.control. A path given in the file that cannot be had stops the
 * run; the automatic one only warns (another run of the same file has it,
 * or its folder is not writable): top and tap are conveniences. */
static int start_control(struct sl_loop *loop, const struct sl_conf *conf, struct sl_err *err)
{
    char path[108];
    struct sl_err cerr = {0};

    if (conf->control_path == NULL && sl_control_auto_path(conf->file, path, sizeof(path)) != 0) {
        sl_log_warn("no control socket: no short enough path for %s (set engine.control)",
                    conf->file);
        return 0;
    }
    loop->control = sl_control_start(conf->control_path != NULL ? conf->control_path : path,
                                     conf->control_path == NULL, &cerr);
    if (loop->control == NULL && conf->control_path != NULL) {
        *err = cerr;
        return cerr.code;
    }
    if (loop->control == NULL) {
        sl_log_warn("no control socket (sluice top and tap will not find this run): %s", cerr.msg);
    }
    return 0;
}

struct sl_loop *sl_loop_start(const struct sl_conf *conf,
                              bool progress,
                              bool summary,
                              const char *summary_json,
                              struct sl_err *err)
{
    struct sl_loop *loop = sl_calloc(1, sizeof(*loop));
    sigset_t set;

    if (loop == NULL) {
        sl_err_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    signal_set(&set);
    atomic_init(&loop->pl, NULL);
    loop->drain_timeout_ns = conf->drain_timeout_ns;
    loop->progress = progress;
    loop->summary = summary;
    loop->summary_json = summary_json;
    loop->tuning = true; /* until the pipeline says it has nothing to tune */
    loop->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->sig_fd < 0 || loop->wake_fd < 0) {
        sl_err_set(err, SL_EFATAL, "cannot start the loop thread: %s", strerror(errno));
        return loop_free(loop);
    }
    /* Blocked by now (sl_loop_block_signals): the handler no longer runs. */
    loop->early_signo = caught_count > 0 ? (int)caught_signo : 0;
    if (conf->metrics_host != NULL &&
        (loop->metrics = sl_metrics_start(conf->metrics_host, conf->metrics_port, err)) == NULL) {
        return loop_free(loop);
    }
    if (conf->control && start_control(loop, conf, err) != 0) {
        return loop_free(loop);
    }
    loop->waker.fn = wake;
    loop->waker.arg = loop;
    if (pthread_create(&loop->thread, NULL, loop_main, loop) != 0) {
        sl_err_set(err, SL_EFATAL, "cannot start the loop thread");
        return loop_free(loop);
    }
    loop->started = true;
    return loop;
}

void sl_loop_attach(struct sl_loop *loop, struct sl_pipeline *pl)
{
    sl_flow_set_waker(&pl->flow, &loop->waker);
    /* Release: the loop thread sees the pipeline built. */
    atomic_store_explicit(&loop->pl, pl, memory_order_release);
    if (loop->metrics != NULL) {
        sl_metrics_attach(loop->metrics, pl);
    }
    if (loop->control != NULL) {
        atomic_store_explicit(&pl->control, loop->control, memory_order_release);
        sl_control_attach(loop->control, pl);
    }
    wake(loop);
}

bool sl_loop_drain_timed_out(const struct sl_loop *loop)
{
    return loop != NULL && atomic_load(&loop->drain_failed);
}

void sl_loop_stop(struct sl_loop *loop)
{
    if (loop == NULL || !loop->started) {
        return;
    }
    atomic_store_explicit(&loop->quit, true, memory_order_release);
    wake(loop);
    pthread_join(loop->thread, NULL);
    loop->started = false;
    /* Taps end while their nodes exist (the pipeline is freed next); the
     * socket itself goes with the loop, after the workers. */
    sl_control_close_clients(loop->control);
}

/* ==== The shutdown watchdog ==== */

static void *guard_main(void *arg)
{
    struct shutdown_guard *g = arg;
    struct timespec ts = {.tv_sec = (time_t)(g->deadline_ns / 1000000000ull),
                          .tv_nsec = (long)(g->deadline_ns % 1000000000ull)};

    pthread_mutex_lock(&g->lock);
    while (!g->done && sl_now_ns() < g->deadline_ns) {
        (void)pthread_cond_timedwait(&g->cond, &g->lock, &ts);
    }
    if (!g->done) {
        /* Leaves with the stuck thread running and nothing freed: main
         * frees a node's memory only after its threads were joined. */
        sl_log_error("shutdown did not finish within engine.drain_timeout (%llums) and %llu s "
                     "more: %s did not stop: exiting",
                     (unsigned long long)g->timeout_ms,
                     (unsigned long long)(SHUTDOWN_GRACE_NS / 1000000000ull),
                     g->what[0] ? g->what : "the pipeline");
        exit_now(1);
    }
    pthread_mutex_unlock(&g->lock);
    return NULL;
}

static void guard_note(void *arg, const char *what)
{
    struct shutdown_guard *g = arg;

    pthread_mutex_lock(&g->lock);
    snprintf(g->what, sizeof(g->what), "%s", what);
    pthread_mutex_unlock(&g->lock);
}

void sl_loop_guard_shutdown(struct sl_loop *loop, struct sl_pipeline *pl)
{
    struct shutdown_guard *g;
    pthread_condattr_t attr;
    sigset_t all, old;
    uint64_t now = sl_now_ns();

    if (loop == NULL || loop->guard != NULL || (g = sl_calloc(1, sizeof(*g))) == NULL) {
        return;
    }
    /* After a drain, its own deadline plus a grace; after a run that
     * ended by itself, a drain_timeout of its own plus the grace (a short
     * drain_timeout must not cut a normal close). drain_start_ns is read
     * after the loop thread was joined (sl_loop_stop). */
    uint64_t end = loop->drain_start_ns != 0 ? loop->drain_start_ns + loop->drain_timeout_ns
                                             : now + loop->drain_timeout_ns;
    g->deadline_ns = (end > now ? end : now) + SHUTDOWN_GRACE_NS;
    g->timeout_ms = loop->drain_timeout_ns / 1000000ull;
    pthread_mutex_init(&g->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC); /* sl_now_ns's clock */
    pthread_cond_init(&g->cond, &attr);
    pthread_condattr_destroy(&attr);
    (void)sigfillset(&all);
    (void)pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(&g->thread, NULL, guard_main, g);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        sl_log_warn("cannot start the shutdown watchdog: the shutdown is not bounded");
        pthread_cond_destroy(&g->cond);
        pthread_mutex_destroy(&g->lock);
        sl_free(g);
        return;
    }
    loop->guard = g;
    if (pl != NULL) {
        pl->on_teardown = guard_note;
        pl->on_teardown_arg = g;
    }
}

void sl_loop_guard_note(struct sl_loop *loop, const char *what)
{
    if (loop != NULL && loop->guard != NULL) {
        guard_note(loop->guard, what);
    }
}

struct sl_loop *sl_loop_free(struct sl_loop *loop)
{
    if (loop == NULL) {
        return NULL;
    }
    sl_loop_stop(loop);
    struct shutdown_guard *g = loop->guard;
    if (g != NULL) {
        pthread_mutex_lock(&g->lock);
        g->done = true;
        pthread_cond_signal(&g->cond);
        pthread_mutex_unlock(&g->lock);
        pthread_join(g->thread, NULL);
        pthread_cond_destroy(&g->cond);
        pthread_mutex_destroy(&g->lock);
        sl_free(g);
    }
    return loop_free(loop);
}
