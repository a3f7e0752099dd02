/* SPDX-License-Identifier: MIT */
/* `kafka` source: a consumer-group member (librdkafka). The source thread
 * polls, gathers messages into one batch per partition (one stream per
 * topic/partition, positions are offsets) and hands them to the pool, which
 * decodes them. Positions come from the sinks on assignment (the SQLite
 * position wins over the group's); offsets go back to the group once every
 * sink committed. On a full pipeline the partitions are paused and polling
 * goes on, so the member stays in the group; on resume each partition is
 * sought to the offset after the last message taken. On revoke, everything
 * taken from the revoked partitions is committed before the rebalance
 * completes (within a bound). A reset offset (on_offset_out_of_range)
 * starts a new offset epoch, carried as the batches' fingerprint, so that
 * the sinks restart their stored positions there instead of trimming. */
#include "connectors/kafka/kafka_conf.h"
#include "decode.h"
#include "log.h"
#include "mem.h"
#include "metrics.h"
#include "source.h"

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A partition's batch is sealed at this many messages, or at the memory
 * plan's block size of message bytes (pipeline.c: the read size a file
 * source gets, from memory_limit and the copies it makes; 1 MiB at most):
 * decoded, a batch grows by the plan's factor, so a fixed 1 MiB put 6.3 MiB
 * in flight at a 4 MiB limit. */
#define BATCH_MAX_RECORDS 1024
#define BATCH_MAX_BYTES   (1024 * 1024)
#define COMMIT_EVERY_NS   (500 * 1000 * 1000ull)
#define LIVE_LAG_NS       (1000 * 1000 * 1000ull) /* how often /metrics' lag is rebuilt */
#define POLL_MS           100
#define BUSY_POLL_MS      10
#define POLL_BATCH        1024
/* How long the pipeline may stay full before the partitions are paused.
 * Pausing drops librdkafka's prefetched messages (they are fetched again on
 * resume), so a short stall is absorbed by not polling for a moment:
 * librdkafka's own bounded queue then stops its fetching. Past this the
 * member must poll again (max.poll.interval.ms), so it pauses and polls. */
#define STALL_BEFORE_PAUSE_NS (500 * 1000 * 1000ull)
#define STALL_STEP_US         1000
/* settle(): first sleep between checks, doubled up to the last. */
#define SETTLE_FIRST_US 1000
#define SETTLE_MAX_US   32000
/* The group's committed offsets: tries of COMMITTED_TRY_MS each (a
 * coordinator loading its offsets answers COORDINATOR_LOAD_IN_PROGRESS,
 * which librdkafka retries within one try) before the run fails. */
#define COMMITTED_TRIES  3
#define COMMITTED_TRY_MS 10000
#define WATERMARK_MS     10000
#define LAG_QUERY_MS     2000
/* exit_on_eof: the longest wait for a first assignment (brokers
 * unreachable, topic missing) before the run fails. */
#define ASSIGN_WAIT_NS (30 * 1000 * 1000 * 1000ull)
/* Bounds of the wait for the sinks on a revoke (a half of
 * max.poll.interval.ms, within these) and at the end of a run. */
#define REVOKE_WAIT_MIN_NS (1000 * 1000 * 1000ull)
#define REVOKE_WAIT_MAX_NS (120 * 1000 * 1000 * 1000ull)
/* The fingerprint of batches of a partition whose offsets were never reset
 * (or whose stored epoch is unknown). */
#define EPOCH_FIRST "kafka"
#define EPOCH_MAX   48

struct sl_kafka_source_conf {
    const char *brokers;
    struct sluice_list topics;
    const char *group;
    int format;
    struct sluice_list columns;
    int start;
    int exit_on_eof;
    int on_offset_out_of_range;
    int64_t max_depth;
    struct sluice_map librdkafka;
};

static const char *const starts[] = {"earliest", "latest", NULL};
static const char *const oor_choices[] = {"fail", "earliest", "latest", NULL};

/* clang-format off */
static const struct sluice_option kafka_options[] = {
    SLUICE_OPT_ROW(struct sl_kafka_source_conf, brokers, SLUICE_OPT_STR, NULL, 0, 0, NULL,
                   SLUICE_OPT_REQUIRED, "Bootstrap brokers, comma-separated (host:port,...)."),
    SLUICE_OPT_ROW(struct sl_kafka_source_conf, topics, SLUICE_OPT_LIST, NULL, 0, 0, NULL,
                   SLUICE_OPT_REQUIRED, "Topics to consume."),
    SLUICE_OPT_ROW(struct sl_kafka_source_conf, group, SLUICE_OPT_STR, NULL, 0, 0, NULL,
                   SLUICE_OPT_REQUIRED, "Consumer group: processes with the same group split the "
                   "partitions."),
    SLUICE_OPT_ROW(struct sl_kafka_source_conf, format, SLUICE_OPT_ENUM, "json", 0, 0,
                   sl_format_names, 0, "json, csv (one row per message, names from columns) or "
                   "lines: one record per message."),
    SLUICE_OPT_ROW(struct sl_kafka_source_conf, columns, SLUICE_OPT_LIST, NULL, 0, 0, NULL, 0,
                   "csv: the field names of the columns."),
    SLUICE_OPT_ROW(struct sl_kafka_source_conf, start, SLUICE_OPT_ENUM, "earliest", 0, 0, starts, 0,
                   "Where to start when neither the sinks nor the group hold a position."),
    SLUICE_OPT_ROW(struct sl_kafka_source_conf, exit_on_eof, SLUICE_OPT_BOOL, "false", 0, 0, NULL,
                   0, "Stop once every assigned partition reached its end (batch jobs, tests)."),
    SLUICE_OPT_ROW(struct sl_kafka_source_conf, on_offset_out_of_range, SLUICE_OPT_ENUM, "fail", 0,
                   0, oor_choices, 0, "A stored offset Kafka no longer has: fail (default), or "
                   "restart from earliest or latest."),
    SLUICE_OPT_ROW(struct sl_kafka_source_conf, max_depth, SLUICE_OPT_INT, "64", 1, 10000, NULL,
                   0, "JSON nesting limit."),
    SLUICE_OPT_ROW(struct sl_kafka_source_conf, librdkafka, SLUICE_OPT_MAP, NULL, 0, 0, NULL, 0,
                   "librdkafka consumer properties, passed verbatim."),
    {0},
};
/* clang-format on */

/* One topic/partition this member has consumed from (kept across
 * rebalances, so sequence numbers continue when it comes back). */
struct kpart {
    char *topic;
    int32_t partition;
    uint32_t stream;         /* index: batch->stream */
    uint64_t seq;            /* next batch's sequence number */
    int64_t pushed_end;      /* pos_end of the last batch handed on, -1 if none */
    int64_t committed_group; /* the group's committed offset as far as known, -1 none */
    int64_t start;           /* where consumption started at the last assignment, -1 unknown */
    int64_t next;            /* offset after the last message taken, -1 unknown */
    int64_t hwm;             /* high watermark when assigned (exit_on_eof), -1 unknown */
    int64_t lag;             /* at the end of the run, for the summary; -1 unknown */
    bool held;               /* assigned at the end of the run (summary) */
    const char *epoch;       /* batches' fingerprint: a new one after an offset reset */
    bool assigned;
    bool eof;               /* reached the end seen at assignment */
    bool commit_start;      /* start goes to the group (start: latest, nothing committed) */
    struct sl_batch *batch; /* being filled */
};

struct kafka_source {
    const struct sl_kafka_source_conf *conf;
    struct sl_node *node;
    rd_kafka_t *rk;
    struct kpart *parts;
    size_t nparts;
    size_t parts_cap;
    rd_kafka_queue_t *consumer_queue;
    rd_kafka_message_t *msgs[POLL_BATCH];
    struct sl_batch **queue; /* full batches waiting for room, in order */
    size_t nqueue;
    size_t queue_cap;
    bool paused;
    uint64_t stalled_ns; /* when the pipeline became full, 0 if it is not */
    uint64_t pauses;     /* times the pipeline was full (summary) */
    bool had_assignment;
    uint64_t first_assign_ns; /* when the first assignment came (summary) */
    bool rebalancing;         /* between a revoke and the next assign */
    uint64_t last_commit_ns;
    enum sl_format format;
    struct sl_decoders decoders;
    struct sl_csv_header *header;
    struct sl_buf headers_buf; /* source thread: builds @headers JSON */
    int fatal;                 /* a failure seen in a callback */
    char fatal_msg[SL_ERR_MSG_MAX];
    char last_error[256];    /* librdkafka's last error event (source thread) */
    uint64_t revoke_wait_ns; /* how long a revoke waits for the sinks */
    char **epochs;           /* every epoch text made: batches point at them until close */
    size_t nepochs;
    uint64_t epoch_count; /* makes each new epoch of this run unique */
    /* The lag /metrics shows: the source thread rebuilds it every
     * LIVE_LAG_NS from cached watermarks (no broker call) in next, then
     * swaps it with lags under lag_lock; the loop thread reads lags under
     * it. So the loop thread never waits for a rebuild (librdkafka's
     * locks, every sink's positions), only for a swap. Topics point into
     * parts' strings, which live until close. */
    pthread_mutex_t lag_lock;
    struct live_lag *lags; /* under lag_lock */
    size_t nlags, lags_cap;
    struct live_lag *next; /* source thread */
    size_t next_cap;
    uint64_t lag_at_ns; /* source thread: the last rebuild */
};

struct live_lag {
    const char *topic;
    int32_t partition;
    int64_t lag;
};

static void set_fatal(struct kafka_source *ks, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void set_fatal(struct kafka_source *ks, const char *fmt, ...)
{
    va_list ap;

    if (ks->fatal) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(ks->fatal_msg, sizeof(ks->fatal_msg), fmt, ap);
    va_end(ap);
    ks->fatal = SL_EFATAL;
}

/* ==== Partitions and batches (source thread) ==== */

static struct kpart *part_find(struct kafka_source *ks, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < ks->nparts; i++) {
        if (ks->parts[i].partition == partition && strcmp(ks->parts[i].topic, topic) == 0) {
            return &ks->parts[i];
        }
    }
    return NULL;
}

/* Returns the partition's entry, creating it; NULL on OOM. Entries are
 * never removed: a stream index names one partition for the whole run. */
static struct kpart *part_get(struct kafka_source *ks, const char *topic, int32_t partition)
{
    struct kpart *p = part_find(ks, topic, partition);

    if (p != NULL) {
        return p;
    }
    if (ks->nparts == ks->parts_cap) {
        size_t cap = ks->parts_cap ? ks->parts_cap * 2 : 32;
        struct kpart *grown = sl_realloc(ks->parts, cap * sizeof(*grown));
        if (grown == NULL) {
            return NULL;
        }
        ks->parts = grown;
        ks->parts_cap = cap;
    }
    p = &ks->parts[ks->nparts];
    memset(p, 0, sizeof(*p));
    p->topic = sl_strdup(topic);
    if (p->topic == NULL) {
        return NULL;
    }
    p->partition = partition;
    p->stream = (uint32_t)ks->nparts;
    p->pushed_end = -1;
    p->committed_group = -1;
    p->start = -1;
    p->next = -1;
    p->hwm = -1;
    p->lag = -1;
    p->epoch = EPOCH_FIRST;
    ks->nparts++;
    return p;
}

/* Sets p's offset epoch, the fingerprint its batches carry: a copy of text,
 * or with text NULL a new one, "offsets reset" and the wall-clock time (a
 * SQLite sink whose stored fingerprint differs restarts its position, see
 * sqlite_checkpoint.c). Texts live until close: batches point at them.
 * 0 or SL_ENOMEM. */
static int set_epoch(struct kafka_source *ks, struct kpart *p, const char *text)
{
    char fresh[EPOCH_MAX];

    if (text == NULL) {
        struct timespec ts;
        struct tm tm;
        char when[32];
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(fresh, sizeof(fresh), "offsets reset %.20s.%03dZ #%u", when,
                 (int)(ts.tv_nsec / 1000000), (unsigned)(++ks->epoch_count % 100000));
        text = fresh;
    }
    if (strcmp(text, p->epoch) == 0) {
        return 0;
    }
    char **grown = sl_realloc(ks->epochs, (ks->nepochs + 1) * sizeof(*grown));
    if (grown == NULL) {
        return SL_ENOMEM;
    }
    ks->epochs = grown;
    char *copy = sl_strdup(text);
    if (copy == NULL) {
        return SL_ENOMEM;
    }
    ks->epochs[ks->nepochs++] = copy;
    p->epoch = copy;
    return 0;
}

static int queue_add(struct kafka_source *ks, struct sl_batch *batch)
{
    if (ks->nqueue == ks->queue_cap) {
        size_t cap = ks->queue_cap ? ks->queue_cap * 2 : 16;
        struct sl_batch **grown = sl_realloc(ks->queue, cap * sizeof(*grown));
        if (grown == NULL) {
            return SL_ENOMEM;
        }
        ks->queue = grown;
        ks->queue_cap = cap;
    }
    ks->queue[ks->nqueue++] = batch;
    return 0;
}

/* Closes the partition's batch (if any) and queues it for the pipeline. */
static int seal(struct kafka_source *ks, struct kpart *p)
{
    struct sl_batch *batch = p->batch;

    if (batch == NULL) {
        return 0;
    }
    p->batch = NULL;
    batch->seq = p->seq++;
    batch->pos_end = batch->recs[batch->n - 1].meta.offset + 1;
    return queue_add(ks, batch);
}

static int seal_all(struct kafka_source *ks)
{
    for (size_t i = 0; i < ks->nparts; i++) {
        int rc = seal(ks, &ks->parts[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static rd_kafka_topic_partition_list_t *assigned_list(struct kafka_source *ks)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)ks->nparts);

    for (size_t i = 0; i < ks->nparts; i++) {
        if (ks->parts[i].assigned) {
            rd_kafka_topic_partition_list_add(list, ks->parts[i].topic, ks->parts[i].partition);
        }
    }
    return list;
}

/* Moves every assigned partition whose next offset is known there. On
 * resume: librdkafka 2.0.2's batch API advances a partition's position over
 * the prefetched messages that a pause then discards, and resume starts
 * from that position (fixed in 2.1.0): without this seek those offsets
 * would be skipped. The seek is asynchronous (librdkafka 2.0.2 waits a
 * thousandth of the timeout it is given); messages fetched before it takes
 * effect are outdated and dropped by librdkafka. */
static void seek_next(struct kafka_source *ks)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)ks->nparts);

    for (size_t i = 0; i < ks->nparts; i++) {
        const struct kpart *p = &ks->parts[i];
        if (p->assigned && p->next >= 0) {
            rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset = p->next;
        }
    }
    if (list->cnt > 0) {
        rd_kafka_error_t *error = rd_kafka_seek_partitions(ks->rk, list, 0);
        if (error != NULL) {
            sl_log_warn("%s: kafka: seeking after a resume: %s", ks->node->name,
                        rd_kafka_error_string(error));
            rd_kafka_error_destroy(error);
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

static void set_paused(struct kafka_source *ks, bool pause)
{
    if (ks->paused == pause) {
        return;
    }
    rd_kafka_topic_partition_list_t *list = assigned_list(ks);
    if (pause) {
        ks->pauses++;
        rd_kafka_pause_partitions(ks->rk, list);
    } else {
        rd_kafka_resume_partitions(ks->rk, list);
        seek_next(ks);
    }
    rd_kafka_topic_partition_list_destroy(list);
    ks->paused = pause;
}

/* Hands queued batches on in order. Without blocking: when the pipeline is
 * full the partitions are paused (polling goes on, so the group keeps us)
 * and resumed once everything queued went through. With block (revoke,
 * end): waits for room. */
static int push_queue(struct kafka_source *ks, bool block)
{
    size_t done = 0;
    int rc = 0;

    while (done < ks->nqueue) {
        struct sl_batch *batch = ks->queue[done];
        /* Read before the push: after it the batch belongs to the pipeline. */
        struct kpart *p = &ks->parts[batch->stream];
        int64_t end = batch->pos_end;
        rc =
            block ? sl_node_source_push(ks->node, batch) : sl_node_source_try_push(ks->node, batch);
        if (rc != 0) {
            break;
        }
        p->pushed_end = end;
        done++;
    }
    if (done > 0) {
        memmove(ks->queue, ks->queue + done, (ks->nqueue - done) * sizeof(*ks->queue));
        ks->nqueue -= done;
    }
    if (rc == SL_EAGAIN) {
        if (ks->stalled_ns == 0) {
            ks->stalled_ns = sl_now_ns();
        } else if (sl_now_ns() - ks->stalled_ns >= STALL_BEFORE_PAUSE_NS) {
            set_paused(ks, true);
        }
        return 0;
    }
    if (rc == 0) {
        ks->stalled_ns = 0;
        set_paused(ks, false);
    }
    return rc;
}

/* ==== Messages ==== */

/* Key: text when it is valid UTF-8, else bytes. */
static struct sl_value key_value(struct sl_arena *arena, const rd_kafka_message_t *m)
{
    struct sl_value v = sl_value_null();

    if (m->key == NULL) {
        return v;
    }
    const char *k = sl_arena_strndup(arena, m->key, m->key_len);
    if (k != NULL) {
        v = sl_value_str(k, (uint32_t)m->key_len);
        v.type = sl_utf8_valid(k, m->key_len) ? SL_TYPE_STR : SL_TYPE_BYTES;
    }
    return v;
}

/* Headers as a JSON object text {"name":"value",...} (invalid UTF-8
 * replaced; a header without value is null). */
static int headers_value(struct kafka_source *ks,
                         struct sl_arena *arena,
                         rd_kafka_message_t *m,
                         struct sl_value *ret)
{
    rd_kafka_headers_t *hdrs = NULL;
    struct sl_buf *buf = &ks->headers_buf; /* reused: no allocation per message */
    const char *name;
    const void *val;
    size_t len;
    int rc = 0;

    *ret = sl_value_null();
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || hdrs == NULL) {
        return 0;
    }
    sl_buf_reset(buf);
    rc |= sl_buf_putc(buf, '{');
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &len) == 0; i++) {
        rc |= i > 0 ? sl_buf_putc(buf, ',') : 0;
        rc |= sl_json_write_string(buf, name, strlen(name));
        rc |= sl_buf_putc(buf, ':');
        rc |= val != NULL ? sl_json_write_string(buf, val, len) : sl_buf_append(buf, "null", 4);
    }
    rc |= sl_buf_putc(buf, '}');
    if (rc == 0) {
        const char *text = sl_arena_strndup(arena, buf->data, buf->len);
        if (text == NULL) {
            rc = SL_ENOMEM;
        } else {
            ret->type = SL_TYPE_OBJECT;
            ret->len = (uint32_t)buf->len;
            ret->u.s = text;
        }
    }
    return rc != 0 ? SL_ENOMEM : 0;
}

static struct sl_batch *new_batch(struct kpart *p, int64_t first)
{
    struct sl_batch *batch = sl_batch_new(NULL); /* admitted at push */

    if (batch != NULL) {
        batch->stream = p->stream;
        batch->stream_name = p->topic;
        batch->partition = p->partition;
        batch->fingerprint = p->epoch;
        batch->fingerprint_is_epoch = true;
        batch->pos_start = first;
    }
    return batch;
}

/* A message below the partition's next offset: the partition's log was
 * cut back under us (topic recreated, log truncated) and librdkafka reset
 * the offset (on_offset_out_of_range earliest or latest), or a message
 * delivered twice. Returns true to take it: a reset, which starts a new
 * offset epoch (the batch so far is sealed first: a batch has one epoch). */
static bool went_back(struct kafka_source *ks, struct kpart *p, int64_t offset, int *rc)
{
    int64_t lo = 0, hi = -1;

    *rc = 0;
    if (rd_kafka_get_watermark_offsets(ks->rk, p->topic, p->partition, &lo, &hi) !=
            RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi < 0 || hi >= p->next) {
        return false; /* the log still holds what was taken: a duplicate */
    }
    *rc = seal(ks, p);
    if (*rc == 0) {
        *rc = set_epoch(ks, p, NULL);
    }
    sl_log_warn("%s: %s [%d]: offsets went back from %lld to %lld (Kafka now has %lld..%lld: the "
                "topic was recreated or its log truncated): reading from %lld, and the sinks' "
                "stored positions of this partition restart there too",
                ks->node->name, p->topic, (int)p->partition, (long long)p->next, (long long)offset,
                (long long)lo, (long long)hi, (long long)offset);
    return true;
}

static int take_message(struct kafka_source *ks, rd_kafka_message_t *m)
{
    struct kpart *p = part_get(ks, rd_kafka_topic_name(m->rkt), m->partition);
    int rc = 0;

    if (p == NULL) {
        return SL_ENOMEM;
    }
    if (p->next >= 0 && m->offset < p->next && !went_back(ks, p, m->offset, &rc)) {
        return 0; /* already taken */
    }
    if (rc != 0) {
        return rc;
    }
    if (p->start < 0) {
        p->start = m->offset; /* consumption began at a logical offset: now known */
    }
    p->next = m->offset + 1;
    if (p->batch == NULL && (p->batch = new_batch(p, m->offset)) == NULL) {
        return SL_ENOMEM;
    }
    struct sl_batch *batch = p->batch;
    struct sl_record *rec = sl_batch_add(batch);
    if (rec == NULL) {
        return SL_ENOMEM;
    }
    rd_kafka_timestamp_type_t tstype;
    rec->meta.stream = p->topic;
    rec->meta.partition = p->partition;
    rec->meta.offset = m->offset;
    rec->meta.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
    if (rec->meta.timestamp_ms < 0) {
        rec->meta.timestamp_ms = 0;
    }
    rec->meta.key = key_value(&batch->arena, m);
    rec->raw = sl_arena_strndup(&batch->arena, m->payload != NULL ? m->payload : "", m->len);
    rec->raw_len = (uint32_t)m->len;
    if (rec->raw == NULL || headers_value(ks, &batch->arena, m, &rec->meta.headers) != 0) {
        return SL_ENOMEM;
    }
    if (p->hwm >= 0 && m->offset + 1 >= p->hwm) {
        p->eof = true; /* reached the end seen at assignment */
    }
    uint64_t most = ks->node->pl->block_plan;
    most = most < BATCH_MAX_BYTES ? most : BATCH_MAX_BYTES;
    /* And what plugin stages below let a batch take (they may add records
     * to it once it is admitted), in used bytes, at most the bytes held. */
    uint64_t limit = sl_source_batch_limit(ks->node);
    if (batch->n >= BATCH_MAX_RECORDS || batch->arena.bytes >= most ||
        (sl_batch_bytes(batch) >= limit && sl_batch_used_bytes(batch) >= limit)) {
        return seal(ks, p);
    }
    return 0;
}

static void on_error_message(struct kafka_source *ks, rd_kafka_message_t *m)
{
    const char *topic = m->rkt != NULL ? rd_kafka_topic_name(m->rkt) : "?";

    switch (m->err) {
    case RD_KAFKA_RESP_ERR__PARTITION_EOF: {
        /* The end seen at assignment, or any end when that one is unknown. */
        struct kpart *p = part_find(ks, topic, m->partition);
        if (p != NULL && (p->hwm < 0 || m->offset >= p->hwm)) {
            p->eof = true;
        }
        break;
    }
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
        set_fatal(ks, "%s [%d]: offset out of range: %s (on_offset_out_of_range: fail)", topic,
                  (int)m->partition, rd_kafka_message_errstr(m));
        break;
    default:
        snprintf(ks->last_error, sizeof(ks->last_error), "%s", rd_kafka_message_errstr(m));
        if (rd_kafka_fatal_error(ks->rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            set_fatal(ks, "kafka: %s", rd_kafka_message_errstr(m));
        } else {
            sl_log_warn("%s: kafka: %s", ks->node->name, rd_kafka_message_errstr(m));
        }
    }
}

/* ==== Offsets ==== */

/* Commits to the group, for each assigned (or listed) partition, the offset
 * every sink has committed: users' lag tools see real progress. A partition
 * no sink has written yet whose start must be kept (start: latest, nothing
 * committed) gets its start: a restart resumes there, not at a later end. */
static void
commit_group(struct kafka_source *ks, const rd_kafka_topic_partition_list_t *only, bool sync)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)ks->nparts);

    for (size_t i = 0; i < ks->nparts; i++) {
        struct kpart *p = &ks->parts[i];
        int64_t pos;
        if ((only == NULL && !p->assigned) ||
            (only != NULL &&
             rd_kafka_topic_partition_list_find(only, p->topic, p->partition) == NULL)) {
            continue;
        }
        if (sl_source_committed(ks->node, p->stream, &pos) != 0 || pos < p->start) {
            if (!p->commit_start || p->start < 0) {
                continue;
            }
            pos = p->start;
        }
        if (pos <= p->committed_group) {
            continue;
        }
        rd_kafka_topic_partition_list_add(list, p->topic, p->partition)->offset = pos;
        p->committed_group = pos;
    }
    if (list->cnt > 0) {
        rd_kafka_resp_err_t err = rd_kafka_commit(ks->rk, list, sync ? 0 : 1);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
            sl_log_warn("%s: committing offsets to the group: %s", ks->node->name,
                        rd_kafka_err2str(err));
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    ks->last_commit_ns = sl_now_ns();
}

/* True when every batch taken from p has been committed by every sink. */
static bool part_settled(struct kafka_source *ks, const struct kpart *p)
{
    int64_t pos;

    if (p->batch != NULL) {
        return false;
    }
    if (p->pushed_end < 0) {
        return true;
    }
    return sl_source_committed(ks->node, p->stream, &pos) == 0 && pos >= p->pushed_end;
}

/* Waits until the listed partitions' work is committed, the run failed or
 * limit_ns passed. The sinks do not signal their commits: it looks every
 * millisecond at first, backing off to every 32 ms. Returns true when
 * everything is committed. */
static bool
settle(struct kafka_source *ks, const rd_kafka_topic_partition_list_t *list, uint64_t limit_ns)
{
    uint64_t start_ns = sl_now_ns();
    useconds_t step = SETTLE_FIRST_US;

    for (;;) {
        bool all = true;
        for (int i = 0; i < list->cnt && all; i++) {
            struct kpart *p = part_find(ks, list->elems[i].topic, list->elems[i].partition);
            all = p == NULL || part_settled(ks, p);
        }
        if (all) {
            return true;
        }
        if (atomic_load(&ks->node->pl->failed) || sl_now_ns() - start_ns >= limit_ns) {
            return false;
        }
        usleep(step);
        step = step * 2 > SETTLE_MAX_US ? SETTLE_MAX_US : step * 2;
    }
}

/* ==== Rebalances (served inside rd_kafka_consumer_poll: source thread) ==== */

/* "t[0], t[3], u[1]" for the partitions of list (cut short with "..."). */
static void describe(const rd_kafka_topic_partition_list_t *list, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; i < list->cnt && used < len; i++) {
        int n = snprintf(buf + used, len - used, "%s%s[%d]", i > 0 ? ", " : "",
                         list->elems[i].topic, (int)list->elems[i].partition);
        used += n > 0 ? (size_t)n : 0;
    }
    if (used >= len && len > 4) {
        memcpy(buf + len - 4, "...", 4);
    }
}

/* Reads the group's committed offsets of list (the partitions no sink has a
 * position of). A coordinator that does not answer, or answers for some
 * partitions with an error (COORDINATOR_LOAD_IN_PROGRESS, which librdkafka
 * retries within one try), is tried again; after COMMITTED_TRIES the run
 * fails naming the group and the partitions. Taking "none" there would
 * silently start at `start`: losing messages (latest) or reading them again
 * (earliest). Returns 0, -1 after set_fatal, or 1 when the run stops. */
static int read_committed(struct kafka_source *ks, rd_kafka_topic_partition_list_t *list)
{
    char names[200];
    const char *why = "";

    for (int attempt = 1; attempt <= COMMITTED_TRIES; attempt++) {
        for (int i = 0; i < list->cnt; i++) {
            list->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
            list->elems[i].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        }
        rd_kafka_resp_err_t err = rd_kafka_committed(ks->rk, list, COMMITTED_TRY_MS);
        for (int i = 0; i < list->cnt && err == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
            err = list->elems[i].err;
        }
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            return 0;
        }
        why = rd_kafka_err2str(err);
        if (atomic_load_explicit(&ks->node->pl->stop, memory_order_acquire)) {
            return 1;
        }
        describe(list, names, sizeof(names));
        if (attempt < COMMITTED_TRIES) {
            sl_log_warn("%s: group '%s': the committed offsets of %s cannot be read (%s): "
                        "trying again",
                        ks->node->name, ks->conf->group, names, why);
        }
    }
    describe(list, names, sizeof(names));
    set_fatal(ks,
              "group '%s': cannot read the committed offsets of %s (%s, for %d s): not "
              "starting without them (the group coordinator may still be loading its "
              "offsets; run again later)",
              ks->conf->group, names, why, COMMITTED_TRIES * COMMITTED_TRY_MS / 1000);
    return -1;
}

/* An offset outside [lo, hi]: fail, or move to one end (with a log line).
 * Returns the offset to use, or -1 after set_fatal. */
static int64_t check_range(struct kafka_source *ks,
                           const struct kpart *p,
                           int64_t off,
                           int64_t lo,
                           int64_t hi,
                           const char *whose)
{
    if (off >= lo && off <= hi) {
        return off;
    }
    if (ks->conf->on_offset_out_of_range == 0) {
        set_fatal(ks,
                  "%s [%d]: the %s offset %lld is out of range: Kafka has offsets %lld..%lld "
                  "(set on_offset_out_of_range: earliest or latest to skip)",
                  p->topic, (int)p->partition, whose, (long long)off, (long long)lo, (long long)hi);
        return -1;
    }
    int64_t to = ks->conf->on_offset_out_of_range == 1 ? lo : hi;
    sl_log_warn("%s: %s [%d]: %s offset %lld is gone (Kafka has %lld..%lld): starting at %lld, "
                "and the sinks' stored positions and the group's offset of this partition "
                "restart there too",
                ks->node->name, p->topic, (int)p->partition, whose, (long long)off, (long long)lo,
                (long long)hi, (long long)to);
    return to;
}

/* p's stored offset was reset to off (on_offset_out_of_range): a new
 * epoch, so that the SQLite sinks restart their positions at off instead
 * of trimming what is below their old one; an empty batch at off, so that
 * they store it even if nothing comes (else the next run would reset again,
 * and with latest skip what came meanwhile); and off goes to the group too,
 * for the same reason. 0 or SL_ENOMEM. */
static int reset_to(struct kafka_source *ks, struct kpart *p, int64_t off)
{
    struct sl_batch *mark;
    int rc = set_epoch(ks, p, NULL);

    if (rc != 0 || (mark = new_batch(p, off)) == NULL) {
        return SL_ENOMEM;
    }
    mark->seq = p->seq++;
    mark->pos_end = off;
    rc = queue_add(ks, mark);
    if (rc != 0) {
        sl_batch_unref(mark);
        return rc;
    }
    p->commit_start = true;
    p->committed_group = -1;
    return 0;
}

/* Sets one partition's start: the sinks' position (known), else the
 * group's committed offset, else `start`, resolved to an offset with the
 * watermarks when they could be read. An offset moved back below the
 * sinks' (or the group's) starts a new epoch. */
static int choose_offset(struct kafka_source *ks,
                         struct kpart *p,
                         rd_kafka_topic_partition_t *tp,
                         int64_t stored,
                         bool known,
                         const char *fp,
                         int64_t committed)
{
    int64_t lo = 0, hi = 0, off;
    bool wm = rd_kafka_query_watermark_offsets(ks->rk, p->topic, p->partition, &lo, &hi,
                                               WATERMARK_MS) == RD_KAFKA_RESP_ERR_NO_ERROR;

    if (set_epoch(ks, p, fp[0] != '\0' ? fp : EPOCH_FIRST) != 0) {
        return SL_ENOMEM;
    }
    p->commit_start = false;
    p->committed_group = committed >= 0 ? committed : -1;
    if (known || committed >= 0) {
        int64_t from = known ? stored : committed;
        off = wm ? check_range(ks, p, from, lo, hi, known ? "stored" : "group's committed") : from;
        if (off >= 0 && off != from) {
            if (off < from && known && fp[0] == '\0') {
                set_fatal(ks,
                          "%s [%d]: cannot restart at %lld: the sinks' position %lld was stored "
                          "by an older sluice, without an offset epoch, and they would skip "
                          "the records below it; delete that partition's rows of "
                          "_sluice_checkpoints to start over",
                          p->topic, (int)p->partition, (long long)off, (long long)from);
                off = -1;
            } else if (reset_to(ks, p, off) != 0) {
                return SL_ENOMEM;
            }
        }
    } else if (ks->conf->start == 0) {
        off = wm ? lo : RD_KAFKA_OFFSET_BEGINNING;
    } else {
        off = wm ? hi : RD_KAFKA_OFFSET_END;
        p->commit_start = true;
    }
    tp->offset = off >= 0 || !ks->fatal ? off : RD_KAFKA_OFFSET_INVALID;
    p->start = off >= 0 ? off : -1;
    p->next = p->start;
    p->hwm = wm ? hi : -1;
    p->assigned = true;
    p->eof = wm && (off >= hi || lo == hi);
    return 0;
}

/* Sets each partition's start (choose_offset); the group's committed
 * offsets are read only for the partitions no sink has a position of. */
static int choose_offsets(struct kafka_source *ks, rd_kafka_topic_partition_list_t *list)
{
    rd_kafka_topic_partition_list_t *group = rd_kafka_topic_partition_list_new(list->cnt);
    int64_t *stored = sl_calloc((size_t)list->cnt + 1, sizeof(*stored));
    char(*fps)[SL_FINGERPRINT_MAX] = sl_calloc((size_t)list->cnt + 1, sizeof(*fps));
    bool *known = sl_calloc((size_t)list->cnt + 1, sizeof(*known));
    struct sl_err err = {0};
    int rc = group != NULL && stored != NULL && fps != NULL && known != NULL ? 0 : SL_ENOMEM;
    bool abandon = false; /* failed or stopping: nothing is fetched, the run ends */

    for (int i = 0; i < list->cnt && rc == 0; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        struct kpart *p = part_get(ks, tp->topic, tp->partition);
        if (p == NULL) {
            rc = SL_ENOMEM;
        } else if (sl_source_resume(ks->node, p->topic, p->partition, NULL, &stored[i], &known[i],
                                    fps[i], sizeof(fps[i]), &err) != 0) {
            set_fatal(ks, "%s", err.msg);
        } else if (!known[i]) {
            rd_kafka_topic_partition_list_add(group, tp->topic, tp->partition);
        }
    }
    if (rc == 0 && !ks->fatal && group->cnt > 0 && read_committed(ks, group) != 0) {
        abandon = true;
    }
    for (int i = 0; i < list->cnt && rc == 0; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        rd_kafka_topic_partition_t *g =
            rd_kafka_topic_partition_list_find(group, tp->topic, tp->partition);
        if (abandon || ks->fatal) {
            tp->offset = RD_KAFKA_OFFSET_INVALID; /* the loop ends before anything is taken */
            continue;
        }
        rc = choose_offset(ks, part_find(ks, tp->topic, tp->partition), tp, stored[i], known[i],
                           fps[i], g != NULL ? g->offset : -1);
    }
    if (group != NULL) {
        rd_kafka_topic_partition_list_destroy(group);
    }
    sl_free(stored);
    sl_free(fps);
    sl_free(known);
    return rc;
}

static void
on_assign(struct kafka_source *ks, rd_kafka_topic_partition_list_t *list, bool cooperative)
{
    if (choose_offsets(ks, list) != 0) {
        set_fatal(ks, "out of memory");
    }
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    if (cooperative) {
        error = rd_kafka_incremental_assign(ks->rk, list);
    } else {
        err = rd_kafka_assign(ks->rk, list);
    }
    if (error != NULL) {
        set_fatal(ks, "kafka: assign: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        set_fatal(ks, "kafka: assign: %s", rd_kafka_err2str(err));
    }
    if (ks->paused) {
        /* New partitions start paused too while the pipeline is full. */
        rd_kafka_pause_partitions(ks->rk, list);
    }
    if (!ks->had_assignment) {
        ks->first_assign_ns = sl_now_ns();
    }
    sl_log_info("%s: assigned %d partition(s)%s", ks->node->name, list->cnt,
                cooperative ? " (incremental)" : "");
    ks->had_assignment = true;
    ks->rebalancing = false;
    ks->last_commit_ns = 0; /* commit the starts to keep (commit_start) at the next turn */
}

/* Hands the queued batches on, in order, until the queue is empty or
 * deadline_ns (then SL_ETIMEDOUT) or the run failed (SL_ECANCELED). Looks
 * again every millisecond at first, backing off to every 32 ms. */
static int push_until(struct kafka_source *ks, uint64_t deadline_ns)
{
    useconds_t step = SETTLE_FIRST_US;

    while (ks->nqueue > 0) {
        struct sl_batch *batch = ks->queue[0];
        struct kpart *p = &ks->parts[batch->stream];
        int64_t end = batch->pos_end; /* after the push the batch is the pipeline's */
        int rc = sl_node_source_try_push(ks->node, batch);
        if (rc == 0) {
            p->pushed_end = end;
            memmove(ks->queue, ks->queue + 1, (ks->nqueue - 1) * sizeof(*ks->queue));
            ks->nqueue--;
            step = SETTLE_FIRST_US;
            continue;
        }
        if (rc != SL_EAGAIN) {
            return rc;
        }
        if (atomic_load(&ks->node->pl->failed)) {
            return SL_ECANCELED;
        }
        if (sl_now_ns() >= deadline_ns) {
            return SL_ETIMEDOUT;
        }
        usleep(step);
        step = step * 2 > SETTLE_MAX_US ? SETTLE_MAX_US : step * 2;
    }
    return 0;
}

/* Drops the queued batches of the listed partitions: never handed on, so
 * not committed either; the next owner reads them again. Their sequence
 * numbers go to the partition's next batches (no gap at the sinks, which
 * restore order by them). Returns how many were dropped. */
static size_t drop_queued(struct kafka_source *ks, const rd_kafka_topic_partition_list_t *list)
{
    size_t kept = 0, dropped = 0;

    for (size_t i = 0; i < ks->nqueue; i++) {
        struct sl_batch *batch = ks->queue[i];
        struct kpart *p = &ks->parts[batch->stream];
        if (rd_kafka_topic_partition_list_find(list, p->topic, p->partition) == NULL) {
            ks->queue[kept++] = batch;
            continue;
        }
        if (batch->seq < p->seq) {
            p->seq = batch->seq;
        }
        sl_batch_unref(batch);
        dropped++;
    }
    ks->nqueue = kept;
    return dropped;
}

/* Before giving partitions up: hand on what was taken from them, wait until
 * every sink committed it, commit it to the group. All within
 * revoke_wait_ns (the other members wait for us): what could not be handed
 * on by then is dropped (the next owner reads it again), and what a sink
 * commits after it is trimmed by SQLite sinks (their positions), written
 * twice by at-least-once sinks. Nothing is half done. */
static void
on_revoke(struct kafka_source *ks, rd_kafka_topic_partition_list_t *list, bool cooperative)
{
    uint64_t deadline_ns = sl_now_ns() + ks->revoke_wait_ns;
    char names[200];
    size_t dropped = 0;

    for (int i = 0; i < list->cnt; i++) {
        struct kpart *p = part_find(ks, list->elems[i].topic, list->elems[i].partition);
        if (p != NULL && seal(ks, p) != 0) {
            set_fatal(ks, "out of memory");
        }
    }
    int rc = push_until(ks, deadline_ns);
    if (rc == SL_ETIMEDOUT || rc == SL_ECANCELED) {
        dropped = drop_queued(ks, list);
    } else if (rc != 0) {
        set_fatal(ks, "handing on revoked partitions' messages: %s", sl_strerror(rc));
    }
    uint64_t now = sl_now_ns();
    bool settled = settle(ks, list, deadline_ns > now ? deadline_ns - now : 0);
    if ((!settled || dropped > 0) && !atomic_load(&ks->node->pl->failed)) {
        describe(list, names, sizeof(names));
        sl_log_warn("%s: the pipeline did not take and commit what was read from %s within "
                    "%.0f s (%zu batch(es) dropped, to be read again by the next owner): giving "
                    "the partitions up anyway; SQLite sinks trim what another member writes "
                    "first, other sinks may write it twice",
                    ks->node->name, names, (double)ks->revoke_wait_ns / 1e9, dropped);
    }
    commit_group(ks, list, true);
    bool any = false; /* still assigned after this revoke */
    for (size_t i = 0; i < ks->nparts; i++) {
        struct kpart *p = &ks->parts[i];
        if (rd_kafka_topic_partition_list_find(list, p->topic, p->partition) != NULL) {
            p->assigned = false;
        }
        any |= p->assigned;
    }
    if (ks->paused) {
        /* librdkafka keeps a partition paused across an unassign and a
         * later assign: resume it now, or it would never fetch again. */
        rd_kafka_resume_partitions(ks->rk, list);
        ks->paused = any;
    }
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(ks->rk, list);
        if (error != NULL) {
            rd_kafka_error_destroy(error);
        }
    } else {
        rd_kafka_assign(ks->rk, NULL);
    }
    ks->rebalancing = true;
}

static void rebalance_cb(rd_kafka_t *rk,
                         rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *list,
                         void *opaque)
{
    struct kafka_source *ks = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        on_assign(ks, list, cooperative);
    } else {
        on_revoke(ks, list, cooperative);
    }
}

/* ==== The consumer (source thread) ==== */

/* librdkafka's error events: kept (the last one explains a run that gets
 * no assignment), then logged as every Kafka node logs them. */
static void error_event(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    struct kafka_source *ks = opaque;

    /* Without librdkafka's " (after 0ms in state CONNECT...)" tail. */
    const char *tail = strstr(reason, " (after ");
    int len = tail != NULL ? (int)(tail - reason) : (int)strlen(reason);
    snprintf(ks->last_error, sizeof(ks->last_error), "%.*s", len, reason);
    sl_kafka_conf_log_error(rk, code, reason);
}

/* A half of max.poll.interval.ms (the group's rebalance timeout: the other
 * members wait that long for us), within REVOKE_WAIT_MIN/MAX_NS. */
static uint64_t revoke_wait(rd_kafka_t *rk)
{
    char text[32];
    size_t len = sizeof(text);
    uint64_t ns = 150 * 1000 * 1000 * 1000ull; /* librdkafka's default, halved */

    if (rd_kafka_conf_get(rd_kafka_conf(rk), "max.poll.interval.ms", text, &len) ==
        RD_KAFKA_CONF_OK) {
        ns = strtoull(text, NULL, 10) * 1000 * 1000 / 2;
    }
    return ns < REVOKE_WAIT_MIN_NS   ? REVOKE_WAIT_MIN_NS
           : ns > REVOKE_WAIT_MAX_NS ? REVOKE_WAIT_MAX_NS
                                     : ns;
}

static rd_kafka_t *create_consumer(struct kafka_source *ks, struct sl_err *err)
{
    const struct sl_kafka_source_conf *conf = ks->conf;
    static const char *const reset[] = {"error", "earliest", "latest"};
    /* Keys sluice owns (the user's map may not set them). */
    const char *const owned[][2] = {
        {"group.id", conf->group},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        {"auto.offset.reset", reset[conf->on_offset_out_of_range]},
    };
    char errbuf[512];
    rd_kafka_conf_t *kc = NULL;
    int rc =
        sl_kafka_conf_build(SL_KAFKA_CONSUMER, conf->brokers, &conf->librdkafka,
                            ks->node->pl->conf->memory_limit, &kc, NULL, errbuf, sizeof(errbuf));

    for (size_t i = 0; rc == 0 && i < sizeof(owned) / sizeof(owned[0]); i++) {
        if (rd_kafka_conf_set(kc, owned[i][0], owned[i][1], errbuf, sizeof(errbuf)) !=
            RD_KAFKA_CONF_OK) {
            rc = SL_ECONFIG;
        }
    }
    if (rc != 0) {
        if (kc != NULL) {
            rd_kafka_conf_destroy(kc);
        }
        sl_err_set(err, rc, "%s: %s", ks->node->name, errbuf);
        return NULL;
    }
    rd_kafka_conf_set_rebalance_cb(kc, rebalance_cb);
    rd_kafka_conf_set_error_cb(kc, error_event);
    rd_kafka_conf_set_opaque(kc, ks);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errbuf, sizeof(errbuf));
    if (rk == NULL) {
        rd_kafka_conf_destroy(kc);
        sl_err_set(err, SL_EIO, "%s: %s", ks->node->name, errbuf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    ks->consumer_queue = rd_kafka_queue_get_consumer(rk);
    ks->revoke_wait_ns = revoke_wait(rk);
    return rk;
}

static int subscribe(struct kafka_source *ks, struct sl_err *err)
{
    rd_kafka_topic_partition_list_t *topics =
        rd_kafka_topic_partition_list_new((int)ks->conf->topics.n);

    for (size_t i = 0; i < ks->conf->topics.n; i++) {
        rd_kafka_topic_partition_list_add(topics, ks->conf->topics.items[i], RD_KAFKA_PARTITION_UA);
    }
    rd_kafka_resp_err_t e = rd_kafka_subscribe(ks->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return sl_err_set(err, SL_EIO, "%s: subscribe: %s", ks->node->name, rd_kafka_err2str(e));
    }
    return 0;
}

/* exit_on_eof: the member had an assignment, is not mid-rebalance, every
 * partition it holds reached the end seen at assignment, and all of it is
 * committed. A member assigned nothing is done too. */
static bool finished(struct kafka_source *ks)
{
    if (!ks->conf->exit_on_eof || !ks->had_assignment || ks->rebalancing || ks->nqueue > 0) {
        return false;
    }
    for (size_t i = 0; i < ks->nparts; i++) {
        const struct kpart *p = &ks->parts[i];
        if (p->assigned && (!p->eof || p->batch != NULL || !part_settled(ks, p))) {
            return false;
        }
    }
    return true;
}

static int poll_once(struct kafka_source *ks)
{
    int rc = push_queue(ks, false);

    if (rc != 0) {
        return rc;
    }
    if (ks->stalled_ns != 0 && !ks->paused) {
        usleep(STALL_STEP_US); /* a short stall: let the pipeline drain */
        return 0;
    }
    /* A batch of messages per call (rebalance callbacks are served here
     * too): per-message polling costs more than the rest of the source. */
    ssize_t n = rd_kafka_consume_batch_queue(
        ks->consumer_queue, ks->nqueue > 0 ? BUSY_POLL_MS : POLL_MS, ks->msgs, POLL_BATCH);
    if (n <= 0) {
        return seal_all(ks); /* idle: hand on what we have */
    }
    for (ssize_t i = 0; i < n; i++) {
        rd_kafka_message_t *m = ks->msgs[i];
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            on_error_message(ks, m);
        } else if (rc == 0) {
            rc = take_message(ks, m);
        }
        rd_kafka_message_destroy(m);
    }
    return rc;
}

/* The summary's lag of each partition held at the end: its end offset
 * minus what every sink committed, or where consumption started when
 * nothing was written since. Partitions revoked meanwhile belong to another
 * member now: not shown. The end offset is asked for (LAG_QUERY_MS), or
 * taken from the last fetch when the brokers do not answer. */
static void record_lag(struct kafka_source *ks)
{
    bool ask = true; /* stop asking once a broker does not answer */

    for (size_t i = 0; i < ks->nparts; i++) {
        struct kpart *p = &ks->parts[i];
        int64_t lo = 0, hi = -1, pos = -1;
        p->held = p->assigned;
        p->lag = -1;
        if (!p->assigned) {
            continue;
        }
        if (ask && rd_kafka_query_watermark_offsets(ks->rk, p->topic, p->partition, &lo, &hi,
                                                    LAG_QUERY_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            ask = false;
            hi = -1;
        }
        if (hi < 0 && rd_kafka_get_watermark_offsets(ks->rk, p->topic, p->partition, &lo, &hi) !=
                          RD_KAFKA_RESP_ERR_NO_ERROR) {
            hi = -1;
        }
        if (sl_source_committed(ks->node, p->stream, &pos) != 0 || pos < p->start) {
            pos = p->start;
        }
        if (hi >= 0 && pos >= 0) {
            p->lag = hi > pos ? hi - pos : 0;
        }
    }
}

/* Rebuilds the lag /metrics shows, for the partitions assigned now: the
 * end offset of the last fetch (cached by librdkafka: no broker call)
 * minus what every sink committed, or where consumption started. */
static void publish_lag(struct kafka_source *ks)
{
    size_t n = 0;

    ks->lag_at_ns = sl_now_ns();
    if (ks->next_cap < ks->nparts) {
        struct live_lag *grown = sl_realloc(ks->next, ks->nparts * sizeof(*grown));
        if (grown == NULL) {
            return; /* the last one stays */
        }
        ks->next = grown;
        ks->next_cap = ks->nparts;
    }
    for (size_t i = 0; i < ks->nparts; i++) {
        struct kpart *p = &ks->parts[i];
        int64_t lo = 0, hi = -1, pos = -1;
        if (!p->assigned ||
            rd_kafka_get_watermark_offsets(ks->rk, p->topic, p->partition, &lo, &hi) !=
                RD_KAFKA_RESP_ERR_NO_ERROR ||
            hi < 0) {
            continue;
        }
        if (sl_source_committed(ks->node, p->stream, &pos) != 0 || pos < p->start) {
            pos = p->start;
        }
        if (pos >= 0) {
            ks->next[n++] = (struct live_lag){p->topic, p->partition, hi > pos ? hi - pos : 0};
        }
    }
    pthread_mutex_lock(&ks->lag_lock);
    struct live_lag *shown = ks->lags;
    size_t shown_cap = ks->lags_cap;
    ks->lags = ks->next;
    ks->lags_cap = ks->next_cap;
    ks->nlags = n;
    pthread_mutex_unlock(&ks->lag_lock);
    ks->next = shown;
    ks->next_cap = shown_cap;
}

static int kafka_metrics(struct sl_node *node, struct sl_buf *buf, bool head)
{
    struct kafka_source *ks = node->state;
    int rc = 0;

    if (head) {
        rc = sl_buf_appendf(buf, "# HELP sluice_kafka_consumer_lag Messages of a partition not "
                                 "committed by every sink yet (as of the last fetch).\n"
                                 "# TYPE sluice_kafka_consumer_lag gauge\n");
    }
    if (ks == NULL) {
        return rc;
    }
    pthread_mutex_lock(&ks->lag_lock);
    for (size_t i = 0; rc == 0 && i < ks->nlags; i++) {
        rc = sl_buf_appendf(buf, "sluice_kafka_consumer_lag{node=\"");
        rc = rc != 0 ? rc : sl_metrics_label(buf, node->name);
        rc = rc != 0 ? rc : sl_buf_appendf(buf, "\",topic=\"");
        rc = rc != 0 ? rc : sl_metrics_label(buf, ks->lags[i].topic);
        rc = rc != 0 ? rc
                     : sl_buf_appendf(buf, "\",partition=\"%d\"} %lld\n",
                                      (int)ks->lags[i].partition, (long long)ks->lags[i].lag);
    }
    pthread_mutex_unlock(&ks->lag_lock);
    return rc;
}

/* exit_on_eof without an assignment after ASSIGN_WAIT_NS: the brokers are
 * unreachable, or the topics do not exist (then librdkafka says so as a
 * consumer error). Fails the run with what librdkafka last reported. */
static void no_assignment(struct kafka_source *ks)
{
    char topics[200] = "";
    size_t used = 0;

    for (size_t i = 0; i < ks->conf->topics.n && used < sizeof(topics); i++) {
        int n = snprintf(topics + used, sizeof(topics) - used, "%s%s", i > 0 ? ", " : "",
                         ks->conf->topics.items[i]);
        used += n > 0 ? (size_t)n : 0;
    }
    set_fatal(ks,
              "exit_on_eof: no partition of %s was assigned within %llu s: are the brokers "
              "(%s) reachable, and do the topics exist?%s%s",
              topics, (unsigned long long)(ASSIGN_WAIT_NS / 1000000000ull), ks->conf->brokers,
              ks->last_error[0] != '\0' ? " librdkafka's last error: " : "", ks->last_error);
}

static int kafka_run(struct sl_node *node)
{
    struct kafka_source *ks = node->state;
    struct sl_err err = {0};
    uint64_t start_ns = sl_now_ns();
    int rc = subscribe(ks, &err);

    while (rc == 0 && !ks->fatal && !finished(ks) &&
           !atomic_load_explicit(&node->pl->stop, memory_order_acquire)) {
        rc = poll_once(ks);
        if (sl_now_ns() - ks->last_commit_ns >= COMMIT_EVERY_NS) {
            commit_group(ks, NULL, false);
        }
        if (sl_now_ns() - ks->lag_at_ns >= LIVE_LAG_NS) {
            publish_lag(ks);
        }
        if (ks->conf->exit_on_eof && !ks->had_assignment &&
            sl_now_ns() - start_ns >= ASSIGN_WAIT_NS) {
            no_assignment(ks);
        }
    }
    /* Stopping (exit_on_eof, SIGINT or a failure): what was polled but not
     * handed on is dropped; its offsets are not committed, so it comes
     * back (and the revoke at close has nothing left to hand on). */
    for (size_t i = 0; i < ks->nparts; i++) {
        ks->parts[i].batch = sl_batch_unref(ks->parts[i].batch);
    }
    for (size_t i = 0; i < ks->nqueue; i++) {
        sl_batch_unref(ks->queue[i]);
    }
    ks->nqueue = 0;
    if (rc == 0 && !ks->fatal) {
        rd_kafka_topic_partition_list_t *all = assigned_list(ks);
        (void)settle(ks, all, node->pl->conf->drain_timeout_ns);
        rd_kafka_topic_partition_list_destroy(all);
        commit_group(ks, NULL, true);
    }
    record_lag(ks);
    rd_kafka_consumer_close(ks->rk); /* leaves the group now, not after a timeout */
    if (ks->fatal) {
        sl_log_error("%s: %s", node->name, ks->fatal_msg);
        return ks->fatal;
    }
    if (rc != 0 && err.msg[0] != '\0') {
        sl_log_error("%s", err.msg);
    }
    return rc;
}

/* ==== Decoding (workers) ==== */

static int kafka_process(struct sl_node *node, struct sl_batch *batch)
{
    struct kafka_source *ks = node->state;
    struct sl_json_decoder *dec = sl_decoders_mine(&ks->decoders);
    uint32_t kept = 0;
    uint32_t blank = 0;
    int rc = 0;

    atomic_fetch_add_explicit(&node->c.in, batch->n, memory_order_relaxed);
    for (uint32_t i = 0; i < batch->n && rc == 0; i++) {
        struct sl_record *rec = &batch->recs[i];
        struct sl_err err;
        if (sl_decode_blank(ks->format, rec->raw, rec->raw_len)) {
            blank++; /* skipped as a file's blank line is; counted as dropped */
            continue;
        }
        rc = sl_decode_text(ks->format, dec, ks->header, rec->raw, rec->raw_len, rec, &batch->arena,
                            &err);
        if (rc == 0) {
            batch->recs[kept++] = *rec;
        } else if (rc == SL_EDATA) {
            struct sl_record dead = *rec;
            dead.fields = NULL;
            dead.nfields = dead.cap = 0;
            rc = sl_node_dead(node, batch, &dead, err.msg);
        }
    }
    batch->n = kept;
    atomic_fetch_add_explicit(&node->c.dropped, blank, memory_order_relaxed);
    if (rc != 0) {
        sl_batch_unref(batch);
        return rc;
    }
    sl_node_emit(node, 0, batch);
    return 0;
}

/* ==== Life cycle (main thread) ==== */

/* csv: a header row made of the `columns` names. */
static int csv_header(struct kafka_source *ks, struct sl_err *err)
{
    struct sl_buf row = {0};
    int rc = 0;

    for (size_t i = 0; i < ks->conf->columns.n && rc == 0; i++) {
        const char *name = ks->conf->columns.items[i];
        rc |= i > 0 ? sl_buf_putc(&row, ',') : 0;
        rc |= sl_buf_putc(&row, '"');
        for (const char *c = name; *c != '\0' && rc == 0; c++) {
            rc |= *c == '"' ? sl_buf_append(&row, "\"\"", 2) : sl_buf_putc(&row, *c);
        }
        rc |= sl_buf_putc(&row, '"');
    }
    if (rc == 0) {
        rc = sl_csv_header_parse(row.data, row.len, &ks->header, err);
    }
    sl_buf_release(&row);
    return rc;
}

static bool uses_cooperative(const struct sl_kafka_source_conf *conf)
{
    for (size_t i = 0; i < conf->librdkafka.n; i++) {
        if (strcmp(conf->librdkafka.keys[i], "partition.assignment.strategy") == 0 &&
            strstr(conf->librdkafka.values[i], "cooperative") != NULL) {
            return true;
        }
    }
    return false;
}

static void kafka_close(struct sl_node *node)
{
    struct kafka_source *ks = node->state;

    if (ks == NULL) {
        return;
    }
    if (ks->consumer_queue != NULL) {
        rd_kafka_queue_destroy(ks->consumer_queue);
    }
    /* Debian's librdkafka 2.0.2 asserts when a cooperative-sticky consumer
     * is destroyed before its first assignment (librdkafka #4312, fixed in
     * 2.3.0). The process is exiting then: leave the handle to the OS. */
    if (ks->rk != NULL && (ks->had_assignment || !uses_cooperative(ks->conf))) {
        rd_kafka_destroy(ks->rk);
    }
    for (size_t i = 0; i < ks->nparts; i++) {
        sl_batch_unref(ks->parts[i].batch);
        sl_free(ks->parts[i].topic);
    }
    for (size_t i = 0; i < ks->nqueue; i++) {
        sl_batch_unref(ks->queue[i]);
    }
    for (size_t i = 0; i < ks->nepochs; i++) {
        sl_free(ks->epochs[i]);
    }
    sl_free(ks->epochs);
    sl_free(ks->parts);
    sl_free(ks->queue);
    sl_decoders_release(&ks->decoders);
    sl_csv_header_free(ks->header);
    sl_buf_release(&ks->headers_buf);
    sl_free(ks->lags);
    sl_free(ks->next);
    pthread_mutex_destroy(&ks->lag_lock);
    sl_free(ks);
    node->state = NULL;
}

static int kafka_open(struct sl_node *node, struct sl_err *err)
{
    struct kafka_source *ks = sl_calloc(1, sizeof(*ks));

    if (ks == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&ks->lag_lock, NULL);
    node->state = ks;
    ks->node = node;
    ks->conf = node->cn->conf;
    ks->format = sl_format_of(ks->conf->format);
    if (ks->format == SL_FORMAT_CSV && csv_header(ks, err) != 0) {
        return SL_ECONFIG;
    }
    if (sl_decoders_init(&ks->decoders, (size_t)sl_sched_threads(node->pl->sched),
                         (uint32_t)ks->conf->max_depth) != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    ks->rk = create_consumer(ks, err);
    return ks->rk != NULL ? 0 : err->code;
}

static int kafka_check(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct sl_kafka_source_conf *conf = cn->conf;
    int rc = sl_kafka_conf_check_options(cn, conf->brokers, &conf->topics, conf->group, err);

    if (rc != 0) {
        return rc;
    }
    if (sl_format_of(conf->format) == SL_FORMAT_CSV && conf->columns.n == 0) {
        return sl_err_set_at(err, cn->file, cn->line, cn->col, cn->name,
                             "format csv needs columns: the field names of a message's values");
    }
    return sl_kafka_conf_check(cn, SL_KAFKA_CONSUMER, &conf->librdkafka, err);
}

static void kafka_summary(struct sl_node *node, FILE *out)
{
    struct kafka_source *ks = node->state;

    if (ks == NULL) {
        return;
    }
    if (ks->had_assignment) {
        fprintf(out, "%s: first assignment after %.3f s, paused %llu times (pipeline full)\n",
                node->name, (double)(ks->first_assign_ns - node->pl->start_ns) / 1e9,
                (unsigned long long)ks->pauses);
    }
    if (ks->nparts == 0) {
        return;
    }
    fprintf(out, "%s consumer lag:", node->name);
    size_t shown = 0;
    for (size_t i = 0; i < ks->nparts; i++) {
        const struct kpart *p = &ks->parts[i];
        if (!p->held) {
            continue; /* another member's now */
        }
        shown++;
        if (p->lag >= 0) {
            fprintf(out, " %s[%d]=%lld", p->topic, (int)p->partition, (long long)p->lag);
        } else {
            fprintf(out, " %s[%d]=?", p->topic, (int)p->partition);
        }
    }
    fprintf(out, "%s\n", shown == 0 ? " none (no partition held at the end)" : "");
}

const struct sl_node_type sl_stage_kafka = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "kafka",
            .description = "Consumes Kafka topics in a consumer group, exactly once into SQLite.",
            .kind = SLUICE_KIND_SOURCE,
            .conf_size = sizeof(struct sl_kafka_source_conf),
            .options = kafka_options,
        },
    .check = kafka_check,
    .open = kafka_open,
    .process = kafka_process,
    .close = kafka_close,
    .run = kafka_run,
    .summary = kafka_summary,
    .metrics = kafka_metrics,
};
