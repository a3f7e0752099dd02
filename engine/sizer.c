/* SPDX-License-Identifier: MIT */
/* Transaction sizer (see sizer.h). */
#include "sizer.h"

/* Share of the target aimed at: commits vary around the fit, and the
 * target is a ceiling, not an average. */
#define AIM 0.9

/* Weight kept by the past at each new write: about the last 20 writes
 * count. */
#define DECAY 0.95

void sl_sizer_init(struct sl_sizer *s, uint64_t min_records, uint64_t max_records)
{
    *s = (struct sl_sizer){.min_records = min_records, .max_records = max_records};
}

void sl_sizer_note(struct sl_sizer *s, uint64_t records, uint64_t ns)
{
    double x = (double)records;
    double y = (double)ns;

    if (records == 0) {
        return;
    }
    s->w = s->w * DECAY + 1.0;
    s->x = s->x * DECAY + x;
    s->y = s->y * DECAY + y;
    s->xx = s->xx * DECAY + x * x;
    s->xy = s->xy * DECAY + x * y;
    s->writes++;
}

uint64_t sl_sizer_limit(const struct sl_sizer *s, uint64_t target_ns)
{
    if (s->writes == 0) {
        return s->max_records;
    }
    /* Least squares for y = a + b x; with too little spread in x to tell a
     * from b, the cost is taken as proportional (a = 0), which is
     * conservative when it is not: the size then moves towards the target
     * by itself, since each write teaches the cost at its own size. */
    double den = s->w * s->xx - s->x * s->x;
    double b = 0;
    double a = 0;
    if (den > 1e-9 * s->w * s->xx) {
        b = (s->w * s->xy - s->x * s->y) / den;
        a = (s->y - b * s->x) / s->w;
    }
    if (b <= 0 || a < 0) {
        a = 0;
        b = s->y / s->x;
    }
    double n = (AIM * (double)target_ns - a) / b;
    if (!(n >= (double)s->min_records)) { /* also NaN */
        return s->min_records;
    }
    return n >= (double)s->max_records ? s->max_records : (uint64_t)n;
}
