/* SPDX-License-Identifier: MIT */
/* `throttle`: limits the records per second that pass, with a token bucket
 * (bursts up to `burst`, then the rate) or a leaky bucket (even spacing),
 * one bucket per distinct `key` value (bounded LRU, engine/bucket.c). Over
 * the limit, `drop` removes records (counted as dropped) and `wait` holds
 * the batch back until its last record is due: its input ring fills and
 * upstream waits (backpressure). Stateful: one task at a time. wait runs on
 * the blocking threads (it sleeps), drop on the workers. */
#include "stages/throttle.h"

#include "bucket.h"
#include "buf.h"
#include "expr.h"
#include "json.h"
#include "mem.h"
#include "runtime.h"

#include <stdio.h>
#include <time.h>

/* A stop (SIGINT, a failure) is noticed within this while waiting. */
/* wait: how late the throttle itself may be (a sleep the OS overshot, the
 * next task's start) and still admit a queued batch on schedule. */
#define CATCH_UP_NS      (1000000ull)
#define MAX_KEYS_DEFAULT 100000

enum when_limited { WHEN_LIMITED_DROP, WHEN_LIMITED_WAIT };

struct throttle_conf {
    int algorithm; /* enum sl_bucket_algorithm */
    double rate;   /* records per second; checked by throttle_check */
    int64_t burst; /* 0: not given (rate / 10, at least 1) */
    struct sluice_expr *key;
    int64_t max_keys; /* 0: not given (MAX_KEYS_DEFAULT) */
    int when_limited; /* enum when_limited */
};

static const char *const algorithms[] = {"token_bucket", "leaky_bucket", NULL};
static const char *const when_limited[] = {"drop", "wait", NULL};

/* clang-format off */
static const struct sluice_option throttle_options[] = {
    SLUICE_OPT_ROW(struct throttle_conf, algorithm, SLUICE_OPT_ENUM, "token_bucket", 0, 0, algorithms,
                   0, "token_bucket: bursts of up to burst, then the rate; leaky_bucket: even spacing."),
    SLUICE_OPT_ROW(struct throttle_conf, rate, SLUICE_OPT_DOUBLE, NULL, 0, 0, NULL, SLUICE_OPT_REQUIRED,
                   "Records per second (per key with key), above 0."),
    SLUICE_OPT_ROW(struct throttle_conf, burst, SLUICE_OPT_INT, NULL, 1, SL_BUCKET_BURST_MAX, NULL, 0,
                   "token_bucket: records that may pass at once; default rate / 10, at least 1."),
    SLUICE_OPT_ROW(struct throttle_conf, key, SLUICE_OPT_EXPR, NULL, 0, 0, NULL, 0,
                   "One bucket per distinct value of this expression, as text (null is a key too)."),
    SLUICE_OPT_ROW(struct throttle_conf, max_keys, SLUICE_OPT_INT, NULL, 1, 1e9, NULL, 0,
                   "With key: buckets kept at most (default 100000); the least recently used "
                   "goes first, counted."),
    SLUICE_OPT_ROW(struct throttle_conf, when_limited, SLUICE_OPT_ENUM, "drop", 0, 0, when_limited, 0,
                   "drop: remove records over the limit (counted); wait: hold them back "
                   "(backpressure)."),
    {0},
};
/* clang-format on */

/* The node's state: the buckets belong to its one task at a time (the
 * runtime hands a node's state from task to task through its free_slots
 * acq_rel); the counters are relaxed atomics, read by the summary. */
struct throttle {
    struct sl_bucket_rate rate;
    struct sl_bucket one;        /* without key */
    struct sl_bucket_map *map;   /* with key, else NULL */
    struct sl_buf text;          /* a key's text, reused */
    uint64_t last_ns;            /* drop: when the previous batch came (0: none yet) */
    uint64_t last_until;         /* wait: the previous batch's last admission */
    atomic_uint_fast64_t passed; /* counters: see struct sl_throttle_stats */
    atomic_uint_fast64_t limited;
    atomic_uint_fast64_t waited_ns;
    atomic_uint_fast64_t keys;
    atomic_uint_fast64_t evicted;
    atomic_uint_fast64_t cut;
};

static uint64_t burst_of(const struct throttle_conf *conf)
{
    if (conf->burst > 0) {
        return (uint64_t)conf->burst;
    }
    double b = conf->rate / 10;
    return b < 1 ? 1 : b > SL_BUCKET_BURST_MAX ? SL_BUCKET_BURST_MAX : (uint64_t)b;
}

/* What run would refuse, refused at load (validate too). */
static int throttle_check(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct throttle_conf *conf = cn->conf;

    if (!(conf->rate > 0)) {
        return sl_conf_node_err(cn, "rate", err, "must be above 0 (records per second), got %g",
                                conf->rate);
    }
    if (conf->rate < SL_BUCKET_RATE_MIN) {
        return sl_conf_node_err(cn, "rate", err,
                                "must be at least 0.000001 (one record in 11.6 days), got %g",
                                conf->rate);
    }
    if (conf->rate > SL_BUCKET_RATE_MAX) {
        return sl_conf_node_err(cn, "rate", err,
                                "must be at most 1000000000 (one record per ns), got %.17g",
                                conf->rate);
    }
    if (conf->burst > 0 && conf->algorithm == SL_BUCKET_ALGORITHM_LEAKY) {
        return sl_conf_node_err(cn, "burst", err,
                                "only with algorithm: token_bucket (a leaky bucket spaces records "
                                "evenly: it has no burst)");
    }
    if (conf->max_keys > 0 && conf->key == NULL) {
        return sl_conf_node_err(cn, "max_keys", err,
                                "only with key (without a key there is one bucket)");
    }
    return 0;
}

static bool throttle_blocking(const void *conf)
{
    return ((const struct throttle_conf *)conf)->when_limited == WHEN_LIMITED_WAIT;
}

static void throttle_close(struct sl_node *node)
{
    struct throttle *t = node->state;

    if (t != NULL) {
        sl_bucket_map_free(t->map);
        sl_buf_release(&t->text);
        sl_free(t);
    }
    node->state = NULL;
}

static int throttle_open(struct sl_node *node, struct sl_err *err)
{
    const struct throttle_conf *conf = node->cn->conf;
    struct throttle *t = sl_calloc(1, sizeof(*t));

    if (t == NULL) {
        return sl_err_set(err, SL_ENOMEM, "%s: out of memory", node->name);
    }
    node->state = t;
    if (sl_bucket_rate_init(&t->rate, conf->rate, burst_of(conf),
                            (enum sl_bucket_algorithm)conf->algorithm) != 0) {
        /* throttle_check refused what this would. */
        return sl_err_set(err, SL_EINVAL, "%s: rate %g out of range", node->name, conf->rate);
    }
    sl_bucket_init(&t->one);
    if (conf->key != NULL) {
        t->map = sl_bucket_map_new(conf->max_keys > 0 ? (size_t)conf->max_keys : MAX_KEYS_DEFAULT);
        if (t->map == NULL) {
            return sl_err_set(err, SL_ENOMEM, "%s: out of memory", node->name);
        }
    }
    atomic_init(&t->passed, 0);
    atomic_init(&t->limited, 0);
    atomic_init(&t->waited_ns, 0);
    atomic_init(&t->keys, 0);
    atomic_init(&t->evicted, 0);
    atomic_init(&t->cut, 0);
    return 0;
}

/* The bucket of rec: the only one without a key; else the bucket of the
 * key's text (a string's bytes, other values as JSON text: 1 and "1" are
 * one key), tagged so that null is a key of its own. Returns 0 with
 * *ret, SL_EDATA with reason filled (the record is a dead letter), or
 * SL_ENOMEM. */
static int bucket_of(struct throttle *t,
                     const struct throttle_conf *conf,
                     struct sl_batch *batch,
                     const struct sl_record *rec,
                     struct sl_bucket **ret,
                     char *reason,
                     size_t reason_len)
{
    struct sl_value v;
    struct sl_err err;

    if (t->map == NULL) {
        *ret = &t->one;
        return 0;
    }
    int rc = sl_expr_eval((const struct sl_expr *)conf->key, rec, &batch->arena, &v, &err);
    if (rc == SL_ENOMEM) {
        return rc;
    }
    if (rc != 0) {
        snprintf(reason, reason_len, "key: %s", err.msg);
        return SL_EDATA;
    }
    sl_buf_reset(&t->text);
    if (v.type == SL_TYPE_NULL) {
        rc = sl_buf_putc(&t->text, 'n');
    } else if (v.type == SL_TYPE_STR || v.type == SL_TYPE_BYTES) {
        rc = sl_buf_putc(&t->text, 't');
        rc = rc != 0 ? rc : sl_buf_append(&t->text, v.u.s, v.len);
    } else {
        rc = sl_buf_putc(&t->text, 't');
        rc = rc != 0 ? rc : sl_json_write_value(&t->text, &v);
    }
    if (rc != 0) {
        return SL_ENOMEM;
    }
    *ret = sl_bucket_map_get(t->map, t->text.data, t->text.len);
    return *ret != NULL ? 0 : SL_ENOMEM;
}

/* When batch's records arrived, for the buckets: a batch gathers what came
 * since the throttle last looked, and a bucket that took them all at one
 * instant would pass one burst per batch (a leaky bucket: one record).
 * drop: since the previous batch (the first batch: since it was begun),
 * and a record passes when its bucket admits it by now, so a batch passes
 * what the bucket allows over that time. wait: every record arrives when
 * the previous batch's last one was due, unless the batch is newer (it was
 * begun later) or the throttle is more than CATCH_UP_NS late: its own
 * lateness (the OS wakes it late, the next task starts late) is not the
 * input's, and would slow a leaky bucket by as much on every batch. */
static uint64_t
arrival(const struct throttle *t, const struct sl_batch *batch, bool wait, uint64_t now)
{
    uint64_t from = batch->read_ns;

    if (wait) {
        from = t->last_until > from ? t->last_until : from;
        uint64_t late = now > CATCH_UP_NS ? now - CATCH_UP_NS : 0;
        from = late > from ? late : from;
    } else if (t->last_ns != 0) {
        from = t->last_ns;
    }
    return from < now ? from : now;
}

/* Passes batch's records through their buckets, arriving as arrival()
 * says. drop: records over the limit are dropped. wait: each record
 * reserves its admission; *ret_until is the last one (at least now), and
 * *ret_limited counts those due after now. */
static int admit(struct sl_node *node,
                 struct sl_batch *batch,
                 uint64_t now,
                 uint64_t *ret_until,
                 uint64_t *ret_limited)
{
    const struct throttle_conf *conf = node->cn->conf;
    struct throttle *t = node->state;
    bool wait = conf->when_limited == WHEN_LIMITED_WAIT;
    uint64_t from = arrival(t, batch, wait, now), until = now, limited = 0;
    uint32_t kept = 0, n = batch->n;

    for (uint32_t i = 0; i < n; i++) {
        struct sl_record *rec = &batch->recs[i];
        struct sl_bucket *b = NULL;
        char reason[300];
        int rc = bucket_of(t, conf, batch, rec, &b, reason, sizeof(reason));
        if (rc == SL_EDATA) {
            rc = sl_node_dead(node, batch, rec, reason);
            if (rc != 0) {
                return rc;
            }
            continue;
        }
        if (rc != 0) {
            return rc;
        }
        if (wait) {
            uint64_t at = sl_bucket_reserve(&t->rate, b, from);
            limited += at > now;
            until = at > until ? at : until;
            batch->recs[kept++] = *rec;
            continue;
        }
        uint64_t at = 0;
        if (sl_bucket_take_by(&t->rate, b, from, now, &at)) {
            batch->recs[kept++] = *rec;
        } else {
            limited++;
        }
    }
    batch->n = kept;
    t->last_ns = now;
    t->last_until = until;
    *ret_until = until;
    *ret_limited = limited;
    return 0;
}

static int throttle_process(struct sl_node *node, struct sl_batch *batch)
{
    const struct throttle_conf *conf = node->cn->conf;
    struct throttle *t = node->state;
    uint64_t until = 0, limited = 0;

    /* On failure the input keeps our reference: process() owns it. */
    struct sl_batch *writable = sl_batch_make_writable(batch);
    if (writable == NULL) {
        sl_batch_unref(batch);
        return SL_ENOMEM;
    }
    batch = writable;
    uint64_t now = sl_now_ns();
    int rc = admit(node, batch, now, &until, &limited);
    if (rc != 0) {
        sl_batch_unref(batch);
        return rc;
    }
    if (conf->when_limited == WHEN_LIMITED_DROP) {
        atomic_fetch_add_explicit(&node->c.dropped, limited, memory_order_relaxed);
    } else if (until > now) {
        if (!sl_pipeline_sleep_until(node->pl, until)) {
            atomic_fetch_add_explicit(&t->cut, 1, memory_order_relaxed);
        }
        /* The time slept, not the time planned: a stop cuts it short. */
        atomic_fetch_add_explicit(&t->waited_ns, sl_now_ns() - now, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&t->passed, batch->n, memory_order_relaxed);
    atomic_fetch_add_explicit(&t->limited, limited, memory_order_relaxed);
    if (t->map != NULL) {
        atomic_store_explicit(&t->keys, sl_bucket_map_count(t->map), memory_order_relaxed);
        atomic_store_explicit(&t->evicted, sl_bucket_map_evictions(t->map), memory_order_relaxed);
    } else {
        atomic_store_explicit(&t->keys, 1, memory_order_relaxed);
    }
    /* Every batch, empty ones too (the emit-once rule), whole: records of
     * one batch leave together, even when the stop cut the wait short. */
    sl_node_emit(node, 0, batch);
    return 0;
}

void sl_throttle_read_stats(const struct sl_node *node, struct sl_throttle_stats *ret)
{
    struct throttle *t = node->state;

    *ret = (struct sl_throttle_stats){0};
    if (t == NULL) {
        return;
    }
    ret->passed = atomic_load_explicit(&t->passed, memory_order_relaxed);
    ret->limited = atomic_load_explicit(&t->limited, memory_order_relaxed);
    ret->waited_ns = atomic_load_explicit(&t->waited_ns, memory_order_relaxed);
    ret->keys = atomic_load_explicit(&t->keys, memory_order_relaxed);
    ret->evicted = atomic_load_explicit(&t->evicted, memory_order_relaxed);
    ret->cut = atomic_load_explicit(&t->cut, memory_order_relaxed);
}

static int throttle_summary_json(struct sl_node *node, struct sl_buf *buf)
{
    struct sl_throttle_stats s;

    if (node->state == NULL) {
        return 0;
    }
    sl_throttle_read_stats(node, &s);
    return sl_buf_appendf(buf,
                          ",\"throttle\":{\"passed\":%llu,\"limited\":%llu,\"waited_s\":%.6f,"
                          "\"keys\":%llu,\"evicted\":%llu,\"cut\":%llu}",
                          (unsigned long long)s.passed, (unsigned long long)s.limited,
                          (double)s.waited_ns / 1e9, (unsigned long long)s.keys,
                          (unsigned long long)s.evicted, (unsigned long long)s.cut);
}

/* "limit: rate 1000/s token_bucket burst 100: passed N, limited M
 * (dropped), keys K, evicted E". */
static void throttle_summary(struct sl_node *node, FILE *out)
{
    const struct throttle_conf *conf = node->cn->conf;
    struct throttle *t = node->state;
    struct sl_throttle_stats s;

    if (t == NULL) {
        return;
    }
    sl_throttle_read_stats(node, &s);
    fprintf(out, "%s: rate %g/s %s", node->name, conf->rate, algorithms[conf->algorithm]);
    if (conf->algorithm == SL_BUCKET_ALGORITHM_TOKEN) {
        fprintf(out, " burst %llu", (unsigned long long)t->rate.burst);
    }
    fprintf(out, ": passed %llu, limited %llu", (unsigned long long)s.passed,
            (unsigned long long)s.limited);
    if (conf->when_limited == WHEN_LIMITED_DROP) {
        fputs(" (dropped)", out);
    } else {
        fprintf(out, " (waited %.3f s)", (double)s.waited_ns / 1e9);
    }
    fprintf(out, ", keys %llu, evicted %llu", (unsigned long long)s.keys,
            (unsigned long long)s.evicted);
    if (s.cut > 0) {
        fprintf(out, ", %llu waits cut short by the stop", (unsigned long long)s.cut);
    }
    fputc('\n', out);
}

const struct sl_node_type sl_stage_throttle = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "throttle",
            .description = "Limits the records per second that pass (token or leaky bucket, "
                           "per key), dropping or holding back the rest.",
            .kind = SLUICE_KIND_TRANSFORM,
            .flags = 0, /* stateful: one worker; blocking when it waits */
            .conf_size = sizeof(struct throttle_conf),
            .options = throttle_options,
        },
    .check = throttle_check,
    .open = throttle_open,
    .process = throttle_process,
    .close = throttle_close,
    .summary = throttle_summary,
    .summary_json = throttle_summary_json,
    .blocking = throttle_blocking,
};
