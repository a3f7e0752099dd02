/* SPDX-License-Identifier: MIT */
/* `generator` source: deterministic synthetic orders (for tests, demos and
 * benchmarks), built straight into records on the source thread. Record i
 * (0-based) is a pure function of (seed, i), so a restart resumes at the
 * position the sinks stored and produces the same records. */
#include "log.h"
#include "mem.h"
#include "source.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define GEN_BATCH 1024
/* With a rate: batches at most this often, records at most this late. */
#define GEN_SLACK_NS (500 * 1000ull)

struct generator_conf {
    int64_t count;
    double rate;
    int64_t seed;
};

/* clang-format off */
static const struct sluice_option generator_options[] = {
    SLUICE_OPT_ROW(struct generator_conf, count, SLUICE_OPT_INT, "1000", 0, 1e15, NULL, 0,
                   "How many records to produce."),
    SLUICE_OPT_ROW(struct generator_conf, rate, SLUICE_OPT_DOUBLE, "0", 0, 1e9, NULL, 0,
                   "Records per second; 0 = as fast as possible."),
    SLUICE_OPT_ROW(struct generator_conf, seed, SLUICE_OPT_INT, "1", 0, 9e18, NULL, 0,
                   "Seed of the pseudo-random values."),
    {0},
};
/* clang-format on */

static const char *const countries[] = {"DE", "FR", "US", "GB", "JP", "BR", "IN", "ES"};
static const char *const statuses[] = {"paid", "paid", "paid", "pending", "refunded", "test"};
static const char *const tag_sets[] = {"[]", "[\"new\"]", "[\"vip\",\"promo\"]", "[\"promo\"]"};

static uint64_t mix(uint64_t x)
{
    /* splitmix64: a good 64-bit mixer, so record i is independent of i-1. */
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static int
put_str(struct sl_record *rec, struct sl_arena *a, const char *name, const char *s, size_t n)
{
    return sl_record_append(rec, a, name, (uint32_t)strlen(name), sl_value_str(s, (uint32_t)n));
}

static int make_order(struct sl_batch *batch, const char *stream, uint64_t seed, int64_t i)
{
    struct sl_record *rec = sl_batch_add(batch);
    struct sl_arena *a = &batch->arena;
    uint64_t r = mix(seed ^ mix((uint64_t)i));
    char tmp[160];
    int rc = 0;

    if (rec == NULL) {
        return SL_ENOMEM;
    }
    rec->meta.stream = stream;
    rec->meta.offset = i;
    int n = snprintf(tmp, sizeof(tmp), "u%u", (unsigned)(r % 1000));
    char *user = sl_arena_strndup(a, tmp, (size_t)n);
    time_t ts = (time_t)(1767225600 + (int64_t)((r >> 10) % 31536000)); /* during 2026 */
    struct tm tm;
    gmtime_r(&ts, &tm);
    n = (int)strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    char *tstext = sl_arena_strndup(a, tmp, (size_t)n);
    n = snprintf(tmp, sizeof(tmp), "{\"ip\":\"10.%u.%u.%u\",\"ua\":\"sluice-gen/1\"}",
                 (unsigned)(r >> 20) & 255, (unsigned)(r >> 28) & 255, (unsigned)(r >> 36) & 255);
    char *meta = sl_arena_strndup(a, tmp, (size_t)n);
    if (user == NULL || tstext == NULL || meta == NULL) {
        return SL_ENOMEM;
    }
    const char *country = countries[(r >> 44) % 8];
    const char *status = statuses[(r >> 48) % 6];
    const char *tags = tag_sets[(r >> 52) % 4];
    /* Cents in 0..99999, with 1 in 50 orders at zero (the filter drops them). */
    double amount = (r >> 56) % 50 == 0 ? 0.0 : (double)((r >> 4) % 100000) / 100.0;
    rc |= sl_record_append(rec, a, "id", 2, sl_value_int(i + 1));
    rc |= put_str(rec, a, "user", user, strlen(user));
    rc |= sl_record_append(rec, a, "amount", 6, sl_value_double(amount));
    rc |= put_str(rec, a, "country", country, 2);
    rc |= put_str(rec, a, "status", status, strlen(status));
    rc |= put_str(rec, a, "ts", tstext, strlen(tstext));
    struct sl_value tv = {.type = SL_TYPE_ARRAY, .len = (uint32_t)strlen(tags), .u.s = tags};
    rc |= sl_record_append(rec, a, "tags", 4, tv);
    struct sl_value mv = {.type = SL_TYPE_OBJECT, .len = (uint32_t)strlen(meta), .u.s = meta};
    rc |= sl_record_append(rec, a, "meta", 4, mv);
    return rc != 0 ? SL_ENOMEM : 0;
}

/* When record i is due: the run's first record at start_ns, then one every
 * 1/rate s. A due time past the clock's range is "never" (a tiny rate). */
static uint64_t
due_ns(const struct generator_conf *conf, uint64_t start_ns, int64_t first, int64_t i)
{
    double d = (double)(i - first) * 1e9 / conf->rate;

    return d >= 1.8e19 - (double)start_ns ? UINT64_MAX : start_ns + (uint64_t)d;
}

/* Builds records [from, *to) into one batch and hands it to the node's ring
 * (blocking on backpressure). The batch stops early at the size of the
 * memory plan's decoded block (smaller than GEN_BATCH orders only when
 * fan-out copies made the plan shrink blocks, pipeline.c), or at what
 * plugin stages below let it take (sl_source_batch_limit): *to is then
 * where it stopped. Returns 0, SL_ECANCELED or SL_ENOMEM. */
static int emit_range(struct sl_node *node,
                      const struct generator_conf *conf,
                      uint64_t seq,
                      int64_t from,
                      int64_t *to)
{
    struct sl_batch *batch = sl_batch_new(NULL); /* admitted at push */
    uint64_t most_base = sl_source_batch_limit(node);
    int rc = 0;

    if (batch == NULL) {
        return SL_ENOMEM;
    }
    batch->stream_name = node->name;
    batch->seq = seq;
    batch->pos_start = from;
    for (int64_t i = from; i < *to && rc == 0; i++) {
        if (sl_source_batch_full(node, batch, most_base)) {
            *to = i;
            break;
        }
        rc = make_order(batch, node->name, (uint64_t)conf->seed, i);
    }
    int64_t end = *to;
    batch->pos_end = end;
    batch->last = end == conf->count;
    if (rc == 0) {
        rc = sl_node_source_push(node, batch);
    }
    if (rc != 0) {
        sl_batch_unref(batch);
    }
    return rc;
}

/* Pacing (`rate`): a source emits what is ready rather than filling a batch.
 * Each turn emits the records due now (up to GEN_BATCH), then sleeps until
 * the next one is due, in sl_flow_sleep_until so that a stop wakes it at
 * once. Emitting no more often than every GEN_SLACK_NS bounds the batches
 * per second at high rates; a record is then at most GEN_SLACK_NS late. */
static int generator_run(struct sl_node *node)
{
    const struct generator_conf *conf = node->cn->conf;
    struct sl_pipeline *pl = node->pl;
    char fp[SL_FINGERPRINT_MAX];
    int64_t i = 0;
    struct sl_err err = {0};
    uint64_t seq = 0;
    int rc = sl_source_resume(node, node->name, 0, NULL, &i, NULL, fp, sizeof(fp), &err);
    uint64_t start_ns = sl_now_ns();
    uint64_t last_ns = 0; /* when the previous batch was emitted */
    int64_t first = i;

    if (rc != 0) {
        sl_log_error("%s: %s", node->name, err.msg);
        return rc;
    }
    while (i < conf->count) {
        if (atomic_load_explicit(&pl->stop, memory_order_acquire)) {
            return SL_ECANCELED;
        }
        int64_t end = conf->count - i > GEN_BATCH ? i + GEN_BATCH : conf->count;
        if (conf->rate > 0) {
            uint64_t now = sl_now_ns();
            uint64_t wake = due_ns(conf, start_ns, first, i);
            if (wake < last_ns + GEN_SLACK_NS) {
                wake = last_ns + GEN_SLACK_NS;
            }
            /* A full batch that is due goes out at once (catching up). */
            if (wake > now && due_ns(conf, start_ns, first, end - 1) > now) {
                rc = sl_flow_sleep_until(&pl->flow, wake, &pl->stop);
                if (rc != 0) {
                    return rc;
                }
                continue;
            }
            int64_t due = i + 1;
            while (due < end && due_ns(conf, start_ns, first, due) <= now) {
                due++;
            }
            end = due;
            last_ns = now;
        }
        rc = emit_range(node, conf, seq++, i, &end);
        if (rc != 0) {
            return rc;
        }
        i = end;
    }
    return 0;
}

const struct sl_node_type sl_stage_generator = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "generator",
            .description = "Synthetic orders, deterministic by seed.",
            .kind = SLUICE_KIND_SOURCE,
            .conf_size = sizeof(struct generator_conf),
            .options = generator_options,
        },
    .process = sl_source_forward,
    .run = generator_run,
};
