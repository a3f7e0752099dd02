/* SPDX-License-Identifier: MIT */
/* Signal handling, drain deadline and progress line (see loop.h). */
#include "loop.h"

#include "log.h"
#include "mem.h"

#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define TICK_NS     (200 * 1000 * 1000L)
#define PROGRESS_NS (500 * 1000 * 1000ull)

struct sl_loop {
    struct sl_pipeline *pl;
    pthread_t thread;
    atomic_bool quit;         /* set by sl_loop_stop */
    atomic_bool drain_failed; /* the drain deadline passed */
    bool progress;
    int signals; /* signals received (loop thread only) */
    uint64_t drain_start_ns;
};

void sl_loop_block_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
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

static void show_progress(struct sl_loop *loop, uint64_t *last_ns, uint64_t *last_n)
{
    uint64_t now = sl_now_ns();
    uint64_t n = sink_records(loop->pl);
    double secs = (double)(now - *last_ns) / 1e9;

    sl_log_progress("sluice: %llu records written, %.0f rec/s, %.1f MiB in flight",
                    (unsigned long long)n, secs > 0 ? (double)(n - *last_n) / secs : 0.0,
                    (double)atomic_load(&loop->pl->flow.used) / (1024.0 * 1024.0));
    *last_ns = now;
    *last_n = n;
}

static void on_signal(struct sl_loop *loop, int sig)
{
    loop->signals++;
    if (loop->signals > 1) {
        static const char msg[] = "\nsluice: second signal: exiting now\n";
        (void)!write(2, msg, sizeof(msg) - 1);
        exit_now(130);
    }
    sl_log_info("%s: draining (a second signal exits at once)",
                sig == SIGINT ? "SIGINT" : "SIGTERM");
    loop->drain_start_ns = sl_now_ns();
    sl_pipeline_stop(loop->pl);
}

static void *loop_main(void *arg)
{
    struct sl_loop *loop = arg;
    sigset_t set;
    struct timespec tick = {0, TICK_NS};
    uint64_t last_ns = sl_now_ns();
    uint64_t last_n = 0;
    bool tty = isatty(2);

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    while (!atomic_load_explicit(&loop->quit, memory_order_acquire)) {
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig > 0) {
            on_signal(loop, sig);
        }
        /* A failed run drains too (what is in flight is written), under the
         * same deadline as a signalled one. */
        if (loop->drain_start_ns == 0 && atomic_load(&loop->pl->failed)) {
            loop->drain_start_ns = sl_now_ns();
        }
        if (loop->drain_start_ns != 0 &&
            sl_now_ns() - loop->drain_start_ns > loop->pl->conf->drain_timeout_ns) {
            sl_log_error("drain did not finish within engine.drain_timeout: exiting");
            atomic_store(&loop->drain_failed, true);
            exit_now(1);
        }
        if (loop->progress && tty && sl_now_ns() - last_ns >= PROGRESS_NS) {
            show_progress(loop, &last_ns, &last_n);
        }
    }
    if (loop->progress && tty) {
        sl_log_progress_end();
    }
    return NULL;
}

struct sl_loop *sl_loop_start(struct sl_pipeline *pl, bool progress, struct sl_err *err)
{
    struct sl_loop *loop = sl_calloc(1, sizeof(*loop));

    if (loop == NULL) {
        sl_err_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    loop->pl = pl;
    loop->progress = progress;
    if (pthread_create(&loop->thread, NULL, loop_main, loop) != 0) {
        sl_free(loop);
        sl_err_set(err, SL_EFATAL, "cannot start the loop thread");
        return NULL;
    }
    return loop;
}

bool sl_loop_drain_timed_out(const struct sl_loop *loop)
{
    return loop != NULL && atomic_load(&loop->drain_failed);
}

void sl_loop_stop(struct sl_loop *loop)
{
    if (loop == NULL) {
        return;
    }
    atomic_store_explicit(&loop->quit, true, memory_order_release);
    pthread_join(loop->thread, NULL);
    sl_free(loop);
}
