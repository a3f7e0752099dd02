/* SPDX-License-Identifier: MIT */
/* The worker tuner (see tune.h for how it decides). */
#include "tune.h"

#include <math.h>

/* Share of the interval the workers must be busy for the setting to be
 * what limits the node (below it the input or the outputs do). */
#define BUSY 0.75
/* Share of the workers' relative growth the rate must show for the extra
 * workers to be worth their cost. A half refused the second worker of a
 * CPU-bound stage on two cores (+45..57% while decoding and the source
 * share the cores); a quarter let a knee at 10 pass the doubling from 8. */
#define PAID (1.0 / 3.0)
/* CPU-bound stages: a gain clear of a tuning interval's noise. On two
 * cores shared with the source and the sinks, a map's second worker adds
 * 13-25%, short of a third; a task past the cores costs nothing but waits. */
#define CPU_GAIN 0.03
/* Holds between probes, in intervals. */
#define HOLD_MIN 4
#define HOLD_MAX 32
/* An interval is trusted once this many batches per worker completed, or
 * after this many intervals whatever completed. */
#define BATCHES_PER_WORKER 2
#define LONGEST_INTERVALS  20
/* A rate this far from the held setting's average means the service
 * changed: the average starts again. */
#define SHIFT 0.25
/* Longest settling time after a change. */
#define SETTLE_MAX_NS (1000 * 1000 * 1000ull)

void sl_tuner_init(
    struct sl_tuner *t, enum sl_tune_kind kind, uint32_t min, uint32_t max, uint64_t interval_ns)
{
    *t = (struct sl_tuner){
        .kind = kind,
        .min = min,
        .max = max,
        .interval_ns = interval_ns,
        .workers = min,
        .peak = min,
        .phase = SL_TUNE_SLOW_START,
        .step = 1,
        .dir = -1,
        .hold = HOLD_MIN,
    };
}

static uint32_t clamp(const struct sl_tuner *t, int64_t w)
{
    return w < (int64_t)t->min ? t->min : w > (int64_t)t->max ? t->max : (uint32_t)w;
}

/* Moves to w; measuring starts again once the calls of the old setting
 * had time to finish (one batch's time). */
static void change(struct sl_tuner *t, uint32_t w, uint64_t now_ns, uint64_t batch_ns)
{
    if (w == t->workers) {
        return;
    }
    t->workers = w;
    t->peak = w > t->peak ? w : t->peak;
    t->changes++;
    t->settle_ns = now_ns + (batch_ns < SETTLE_MAX_NS ? batch_ns : SETTLE_MAX_NS);
}

/* Remembers rate as measured at the current setting: a running average
 * over the intervals held there, started again after a change of setting
 * or of the service. */
static void note_rate(struct sl_tuner *t, double rate)
{
    if (t->base != t->workers || t->nrate == 0 || fabs(rate - t->rate) > SHIFT * t->rate) {
        t->base = t->workers;
        t->rate = rate;
        t->nrate = 1;
        return;
    }
    t->rate += (rate - t->rate) / (double)++t->nrate;
}

/* Starts the hold before the next probe. */
static void hold(struct sl_tuner *t)
{
    t->phase = SL_TUNE_HOLD;
    t->hold_left = t->hold;
}

/* Whether a probe in direction dir can go anywhere: more workers only
 * help when the ones there are stay busy. */
static bool can_probe(const struct sl_tuner *t, int dir, double util)
{
    return dir > 0 ? util >= BUSY && t->workers < t->max : t->workers > t->min;
}

/* Probes from the current setting in t->dir by t->step; `turn`: the other
 * way when that way is closed. Holds when neither can go. */
static void probe(struct sl_tuner *t, double util, bool turn, uint64_t now_ns, uint64_t batch_ns)
{
    if (!can_probe(t, t->dir, util) && turn) {
        t->dir = -t->dir;
    }
    if (!can_probe(t, t->dir, util)) {
        t->step = 1;
        hold(t);
        return;
    }
    t->phase = SL_TUNE_PROBE;
    change(t, clamp(t, (int64_t)t->workers + t->dir * (int64_t)t->step), now_ns, batch_ns);
}

/* Whether going from `from` to `to` workers paid. Calls: the rate moved by
 * at least PAID times as much as the workers did (up), or by less (down).
 * CPU: the rate grew by CPU_GAIN (up), or fell by less (down). */
static bool paid(const struct sl_tuner *t, double gain, uint32_t from, uint32_t to)
{
    double ratio = (double)to / (double)from;

    if (t->kind == SL_TUNE_CPU) {
        return to > from ? gain >= 1.0 + CPU_GAIN : gain >= 1.0 - CPU_GAIN;
    }
    return to > from ? gain >= 1.0 + (ratio - 1.0) * PAID : gain >= 1.0 - (1.0 - ratio) * PAID;
}

static void decide(struct sl_tuner *t, double rate, double util, uint64_t now_ns, uint64_t batch_ns)
{
    switch (t->phase) {
    case SL_TUNE_SLOW_START:
        if (t->base == 0 || t->base == t->workers) {
            t->base = t->workers;
            t->rate = rate;
            if (util >= BUSY && t->workers < t->max) {
                change(t, clamp(t, (int64_t)t->workers * 2), now_ns, batch_ns);
            }
            return;
        }
        if (util >= BUSY && paid(t, rate / t->rate, t->base, t->workers)) {
            t->base = t->workers;
            t->rate = rate;
            if (t->workers < t->max) {
                change(t, clamp(t, (int64_t)t->workers * 2), now_ns, batch_ns);
            } else {
                hold(t);
            }
            return;
        }
        {
            /* The knee lies between base and workers: Little's law puts it
             * where the rate gain says. The hold measures it afresh. */
            double gain = t->rate > 0 ? rate / t->rate : 1.0;
            double knee = (double)t->base * (gain < 1.0 ? 1.0 : gain);
            uint32_t w = clamp(t, (int64_t)llround(knee));
            w = w < t->base ? t->base : w > t->workers ? t->workers : w;
            t->base = 0;
            hold(t);
            change(t, w, now_ns, batch_ns);
        }
        return;
    case SL_TUNE_HOLD:
        note_rate(t, rate);
        if (t->hold_left > 0) {
            t->hold_left--;
        }
        if (t->hold_left == 0) {
            probe(t, util, true, now_ns, batch_ns);
        }
        return;
    case SL_TUNE_PROBE: {
        uint32_t from = t->base;
        if (t->rate > 0 && paid(t, rate / t->rate, from, t->workers)) {
            /* Kept: go on the same way, twice as far. */
            t->base = t->workers;
            t->rate = rate;
            t->nrate = 1;
            t->hold = HOLD_MIN;
            t->step *= 2;
            probe(t, util, false, now_ns, batch_ns);
            return;
        }
        /* Lost: back, turn round, hold longer. */
        t->step = 1;
        t->dir = -t->dir;
        t->hold = t->hold * 2 > HOLD_MAX ? HOLD_MAX : t->hold * 2;
        hold(t);
        change(t, from, now_ns, batch_ns);
        return;
    }
    }
}

uint32_t sl_tuner_step(struct sl_tuner *t, const struct sl_tune_sample *s, uint64_t now_ns)
{
    if (!t->started || now_ns < t->settle_ns) {
        t->started = true;
        t->start = *s;
        t->start_ns = now_ns;
        return t->workers;
    }
    uint64_t elapsed = now_ns - t->start_ns;
    uint64_t batches = s->batches - t->start.batches;
    if (elapsed < t->interval_ns || (batches < (uint64_t)BATCHES_PER_WORKER * t->workers &&
                                     elapsed < LONGEST_INTERVALS * t->interval_ns)) {
        return t->workers;
    }
    double secs = (double)elapsed / 1e9;
    double rate = (double)(s->work - t->start.work) / secs;
    double util = (double)(s->busy_ns - t->start.busy_ns) / ((double)elapsed * t->workers);
    uint64_t batch_ns = batches > 0 ? (s->busy_ns - t->start.busy_ns) / batches : 0;

    t->intervals++;
    t->start = *s;
    t->start_ns = now_ns;
    decide(t, rate, util, now_ns, batch_ns);
    return t->workers;
}
