/* SPDX-License-Identifier: MIT */
/* `delay`: sleeps as a remote call would, then passes the batch on unchanged
 * (tests, benchmarks, pacing). Each batch is one call of per_batch +
 * per_record x records, times a seeded jitter factor, times n / saturate_at
 * when n > saturate_at calls are in progress at its start. Blocking: its
 * tasks run on the blocking threads, `workers` of them at once; the
 * counters below are atomics shared by those threads, no lock.
 *
 * A timed sleep wakes late: on this project's 2-core VM a bare
 * clock_nanosleep with 1 us timer slack returns 28-52 us after its
 * deadline. Calls of 100 us then took 150 (the overload bench's 10-record
 * calls ran at two thirds of the asked rate), which measured the VM's timer,
 * not the runtime. So each call takes the lateness its node's calls left
 * before it (up to LATE_MAX_NS, which covers a timer, not a preemption) off
 * its own sleep: back-to-back calls add up to what was asked. Per node, not
 * per thread: a node's calls move between blocking threads. */
#include "stages/delay.h"

#include "buf.h"
#include "mem.h"
#include "runtime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* A stop (SIGINT, a failure) is noticed within this: the drain does not
 * wait for simulated calls, however long. */
/* Longest call (about 31 years): keeps start + duration within uint64_t. */
#define CALL_MAX_NS 1e18
/* The most lateness carried to the next call. */
#define LATE_MAX_NS 200000u

struct delay_conf {
    uint64_t per_batch;  /* ns */
    uint64_t per_record; /* ns */
    const char *jitter;  /* "10%" or "10": checked by delay_check */
    int64_t seed;
    int64_t saturate_at; /* 0 = never saturates */
};

/* clang-format off */
static const struct sluice_option delay_options[] = {
    SLUICE_OPT_ROW(struct delay_conf, per_batch, SLUICE_OPT_DURATION, "0", 0, 3600e9, NULL, 0,
                   "Duration of each call (one batch, empty ones too)."),
    SLUICE_OPT_ROW(struct delay_conf, per_record, SLUICE_OPT_DURATION, "0", 0, 3600e9, NULL, 0,
                   "Added to a call's duration per record of its batch."),
    SLUICE_OPT_ROW(struct delay_conf, jitter, SLUICE_OPT_STR, "0%", 0, 0, NULL, 0,
                   "Each call's duration times a uniform factor in [1 - j, 1 + j]; 10% or 10 (0 to 100)."),
    SLUICE_OPT_ROW(struct delay_conf, seed, SLUICE_OPT_INT, "1", 0, 9e18, NULL, 0,
                   "Seed of the jitter: the same seed gives the same durations."),
    SLUICE_OPT_ROW(struct delay_conf, saturate_at, SLUICE_OPT_INT, NULL, 1, 1e6, NULL, 0,
                   "Calls at once the service takes in its stride: a call that starts while n > "
                   "saturate_at are in progress takes n / saturate_at times as long."),
    {0},
};
/* clang-format on */

/* Shared by the node's tasks. Relaxed atomics throughout: each is a counter
 * read for itself (the PRNG's call number, the count in progress at a
 * call's start, the summary's figures), ordering nothing else. */
struct delay {
    double jitter;                   /* fraction, 0..1; set at open */
    atomic_uint_fast64_t calls;      /* calls started: call i draws random number i */
    atomic_uint_fast64_t active;     /* calls in progress */
    atomic_uint_fast64_t peak;       /* most in progress at once */
    atomic_uint_fast64_t slowed;     /* calls started past saturate_at */
    atomic_uint_fast64_t planned_ns; /* sum of the calls' durations */
    atomic_uint_fast64_t cut;        /* calls the stop cut short */
    atomic_uint_fast64_t credit_ns;  /* lateness taken off later calls */
    atomic_uint_fast64_t late_ns;    /* lateness not taken off yet */
};

/* "10%", "2.5%", "10" (a percentage, the sign of "-5" kept for the range
 * check). Returns 0 with *ret in percent, or SL_EINVAL for other text. */
static int parse_percent(const char *text, double *ret)
{
    const char *p = text;
    size_t digits = 0;

    if (*p == '-' || *p == '+') {
        p++;
    }
    for (; isdigit((unsigned char)*p); p++) {
        digits++;
    }
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++) {
            digits++;
        }
    }
    if (digits == 0) {
        return SL_EINVAL;
    }
    if (*p == '%') {
        p++;
    }
    if (*p != '\0') {
        return SL_EINVAL;
    }
    *ret = strtod(text, NULL); /* stops at the '%' */
    return 0;
}

/* What run would refuse, refused at load (validate too). */
static int delay_check(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct delay_conf *conf = cn->conf;
    double pct = 0;

    if (conf->per_batch == 0 && conf->per_record == 0) {
        return sl_conf_node_err(cn, "", err,
                                "delay needs per_batch or per_record (or both) above 0");
    }
    if (conf->jitter != NULL && parse_percent(conf->jitter, &pct) != 0) {
        return sl_conf_node_err(cn, "jitter", err,
                                "expected a percentage such as 10%% (or a number from 0 to 100), "
                                "got '%s'",
                                conf->jitter);
    }
    if (pct < 0 || pct > 100) {
        return sl_conf_node_err(cn, "jitter", err, "must be between 0%% and 100%%, got %s",
                                conf->jitter);
    }
    return 0;
}

static int delay_open(struct sl_node *node, struct sl_err *err)
{
    const struct delay_conf *conf = node->cn->conf;
    struct delay *d = sl_malloc(sizeof(*d));
    double pct = 0;

    if (d == NULL) {
        return sl_err_set(err, SL_ENOMEM, "%s: out of memory", node->name);
    }
    if (conf->jitter != NULL) {
        (void)parse_percent(conf->jitter, &pct); /* delay_check accepted it */
    }
    d->jitter = pct / 100;
    atomic_init(&d->calls, 0);
    atomic_init(&d->active, 0);
    atomic_init(&d->peak, 0);
    atomic_init(&d->slowed, 0);
    atomic_init(&d->planned_ns, 0);
    atomic_init(&d->cut, 0);
    atomic_init(&d->credit_ns, 0);
    atomic_init(&d->late_ns, 0);
    node->state = d;
    return 0;
}

static void delay_close(struct sl_node *node)
{
    sl_free(node->state);
    node->state = NULL;
}

/* splitmix64's finaliser: call i's random number is a pure function of
 * (seed, i), whichever thread makes the call. */
static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/* The duration of call number call over nrec records, started while
 * active calls (itself included) were in progress. */
static uint64_t call_ns(
    const struct delay_conf *conf, struct delay *d, uint32_t nrec, uint64_t call, uint64_t active)
{
    double ns = (double)conf->per_batch + (double)conf->per_record * (double)nrec;

    if (d->jitter > 0) {
        /* 53 random bits: u uniform in [0, 1). */
        double u = (double)(mix((uint64_t)conf->seed ^ mix(call)) >> 11) * 0x1p-53;
        ns *= 1 - d->jitter + 2 * d->jitter * u;
    }
    if (conf->saturate_at > 0 && active > (uint64_t)conf->saturate_at) {
        ns *= (double)active / (double)conf->saturate_at;
        atomic_fetch_add_explicit(&d->slowed, 1, memory_order_relaxed);
    }
    return ns >= CALL_MAX_NS ? (uint64_t)CALL_MAX_NS : (uint64_t)ns;
}

static int delay_process(struct sl_node *node, struct sl_batch *batch)
{
    const struct delay_conf *conf = node->cn->conf;
    struct delay *d = node->state;
    uint64_t start = sl_now_ns();
    uint64_t active = atomic_fetch_add_explicit(&d->active, 1, memory_order_relaxed) + 1;
    uint64_t peak = atomic_load_explicit(&d->peak, memory_order_relaxed);

    while (active > peak &&
           !atomic_compare_exchange_weak_explicit(&d->peak, &peak, active, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
    uint64_t call = atomic_fetch_add_explicit(&d->calls, 1, memory_order_relaxed);
    uint64_t ns = call_ns(conf, d, batch->n, call, active);
    atomic_fetch_add_explicit(&d->planned_ns, ns, memory_order_relaxed);
    uint64_t late = atomic_exchange_explicit(&d->late_ns, 0, memory_order_relaxed);
    late = late < LATE_MAX_NS ? late : LATE_MAX_NS;
    uint64_t credit = late < ns ? late : ns;
    uint64_t end = start + ns - credit;
    atomic_fetch_add_explicit(&d->credit_ns, credit, memory_order_relaxed);
    if (!sl_pipeline_sleep_until(node->pl, end)) {
        atomic_fetch_add_explicit(&d->cut, 1, memory_order_relaxed);
    }
    uint64_t now = sl_now_ns();
    late = late - credit + (now > end ? now - end : 0);
    atomic_fetch_add_explicit(&d->late_ns, late < LATE_MAX_NS ? late : LATE_MAX_NS,
                              memory_order_relaxed);
    atomic_fetch_sub_explicit(&d->active, 1, memory_order_relaxed);
    /* Unchanged, empty batches too (the emit-once rule): records pass
     * through even when the stop cut the call short. */
    sl_node_emit(node, 0, batch);
    return 0;
}

void sl_delay_read_stats(const struct sl_node *node, struct sl_delay_stats *ret)
{
    struct delay *d = node->state;

    *ret = (struct sl_delay_stats){0};
    if (d == NULL) {
        return;
    }
    ret->calls = atomic_load_explicit(&d->calls, memory_order_relaxed);
    ret->active = atomic_load_explicit(&d->active, memory_order_relaxed);
    ret->peak = atomic_load_explicit(&d->peak, memory_order_relaxed);
    ret->slowed = atomic_load_explicit(&d->slowed, memory_order_relaxed);
    ret->planned_ns = atomic_load_explicit(&d->planned_ns, memory_order_relaxed);
    ret->cut = atomic_load_explicit(&d->cut, memory_order_relaxed);
    ret->credit_ns = atomic_load_explicit(&d->credit_ns, memory_order_relaxed);
}

static int delay_summary_json(struct sl_node *node, struct sl_buf *buf)
{
    struct sl_delay_stats s;

    if (node->state == NULL) {
        return 0;
    }
    sl_delay_read_stats(node, &s);
    return sl_buf_appendf(buf,
                          ",\"delay\":{\"calls\":%llu,\"peak_at_once\":%llu,\"simulated_s\":%.6f,"
                          "\"slowed\":%llu,\"cut\":%llu,\"late_credit_s\":%.6f}",
                          (unsigned long long)s.calls, (unsigned long long)s.peak,
                          (double)s.planned_ns / 1e9, (unsigned long long)s.slowed,
                          (unsigned long long)s.cut, (double)s.credit_ns / 1e9);
}

static void delay_summary(struct sl_node *node, FILE *out)
{
    const struct delay_conf *conf = node->cn->conf;
    struct sl_delay_stats s;

    sl_delay_read_stats(node, &s);
    if (node->state == NULL) {
        return;
    }
    fprintf(out, "%s: %llu calls, at most %llu at once, %.3f s simulated", node->name,
            (unsigned long long)s.calls, (unsigned long long)s.peak, (double)s.planned_ns / 1e9);
    if (conf->saturate_at > 0) {
        fprintf(out, ", %llu slowed past saturate_at %lld", (unsigned long long)s.slowed,
                (long long)conf->saturate_at);
    }
    if (s.cut > 0) {
        fprintf(out, ", %llu cut short by the stop", (unsigned long long)s.cut);
    }
    fputc('\n', out);
}

const struct sl_node_type sl_stage_delay = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "delay",
            .description = "Sleeps as a remote call would, then passes records on unchanged.",
            .kind = SLUICE_KIND_TRANSFORM,
            .flags = SLUICE_STAGE_STATELESS | SLUICE_STAGE_BLOCKING,
            .conf_size = sizeof(struct delay_conf),
            .options = delay_options,
        },
    .check = delay_check,
    .open = delay_open,
    .process = delay_process,
    .close = delay_close,
    .summary = delay_summary,
    .summary_json = delay_summary_json,
};
