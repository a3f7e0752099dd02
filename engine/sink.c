/* SPDX-License-Identifier: MIT */
/* Order restoration, batching and dead-letter delivery for sinks (sink.h). */
#include "sink.h"

#include "log.h"
#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEAD_LOG_FIRST    10
#define DEAD_LOG_INTERVAL 1000000000ull
/* Transient write errors (a database locked by another process) are
 * retried with exponential backoff and full jitter, then the run fails:
 * every wait is bounded (about 2.5 minutes in all). */
#define RETRY_MAX        10
#define RETRY_BACKOFF_NS 100000000ull   /* 100 ms */
#define RETRY_CAP_NS     30000000000ull /* 30 s */

/* One copy expected per path; pending holds out-of-order sequences. */
struct pending {
    uint64_t seq;
    uint32_t got;
    uint64_t have;              /* bit i: the copy of the i-th path (st->tags[i]) came */
    struct sl_batch *copies[4]; /* first copies; more paths than 4 use extra */
    struct sl_batch **extra;
};

struct sl_sink_stream {
    uint32_t source;
    uint32_t stream;
    uint8_t level; /* each priority level of a stream is its own sequence */
    uint32_t paths;
    const uint32_t *tags; /* the paths' tags, ascending (paths of them); NULL: any */
    uint64_t next_seq;
    struct pending *pending;
    size_t npending;
    size_t cap;
};

void sl_sink_init(struct sl_sink *sink,
                  struct sl_node *node,
                  sl_sink_write_fn write,
                  const struct sl_sink_batching *batching)
{
    static const struct sl_sink_batching none = {0};
    const struct sl_sink_batching *b = batching != NULL ? batching : &none;
    uint64_t max_bytes = b->max_bytes;

    memset(sink, 0, sizeof(*sink));
    sink->node = node;
    sink->write = write;
    sink->max_records = (uint64_t)b->max_records;
    sink->target_latency_ns = b->target_latency_ns;
    sl_sizer_init(&sink->sizer, 1, sink->max_records != 0 ? sink->max_records : UINT64_MAX);
    /* What a sink holds before it writes is in flight too: a share of the
     * memory budget at most (memory plan, pipeline.c). */
    uint64_t sinks = (uint64_t)atomic_load(&node->pl->sinks_open);
    uint64_t share = node->pl->flow.limit / 8 / (sinks > 0 ? sinks : 1);
    sink->max_bytes = max_bytes == 0 || max_bytes > share ? share : max_bytes;
    sink->max_wait_ns = b->max_wait_ns;
    sink->is_dead_letter = node->pl->dead_letter == node;
    sink->seed = (unsigned)(sl_now_ns() ^ node->index);
    pthread_mutex_init(&sink->dead_lock, NULL);
    sl_acks_init(&sink->acks);
}

static struct sl_batch **pending_slot(struct pending *p, uint32_t i)
{
    return i < 4 ? &p->copies[i] : &p->extra[i - 4];
}

void sl_sink_release(struct sl_sink *sink)
{
    for (size_t i = 0; i < sink->nready; i++) {
        sl_batch_unref(sink->ready[i]);
    }
    sl_free(sink->ready);
    sl_batch_unref(sink->rejects);
    for (size_t s = 0; s < sink->nstreams; s++) {
        struct sl_sink_stream *st = &sink->streams[s];
        for (size_t i = 0; i < st->npending; i++) {
            for (uint32_t c = 0; c < st->pending[i].got; c++) {
                sl_batch_unref(*pending_slot(&st->pending[i], c));
            }
            sl_free(st->pending[i].extra);
        }
        sl_free(st->pending);
    }
    sl_free(sink->streams);
    pthread_mutex_destroy(&sink->dead_lock);
    sl_acks_release(&sink->acks);
}

static struct sl_sink_stream *find_stream(struct sl_sink *sink, const struct sl_batch *batch)
{
    for (size_t i = 0; i < sink->nstreams; i++) {
        struct sl_sink_stream *st = &sink->streams[i];
        if (st->source == batch->source && st->stream == batch->stream &&
            st->level == batch->level) {
            return st;
        }
    }
    struct sl_sink_stream *s = sl_realloc(sink->streams, (sink->nstreams + 1) * sizeof(*s));
    if (s == NULL) {
        return NULL;
    }
    sink->streams = s;
    struct sl_sink_stream *st = &s[sink->nstreams++];
    memset(st, 0, sizeof(*st));
    st->source = batch->source;
    st->stream = batch->stream;
    st->level = batch->level;
    st->paths = sink->node->paths != NULL
                    ? sink->node->paths[batch->source * SL_PRIORITY_LEVELS + batch->level]
                    : 1;
    const struct sl_conf_node *cn = sink->node->cn;
    if (cn->path_ids != NULL) {
        st->tags =
            cn->path_ids + cn->path_ids_at[batch->source * SL_PRIORITY_LEVELS + batch->level];
    }
    if (st->paths == 0) {
        st->paths = 1;
        st->tags = NULL; /* a source the loader does not know (unit tests) */
    }
    return st;
}

/* Which of st's paths tag names, or -1 when none does. */
static int path_index(const struct sl_sink_stream *st, uint32_t tag)
{
    uint32_t lo = 0, hi = st->paths;

    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (st->tags[mid] < tag) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < st->paths && st->tags[lo] == tag ? (int)lo : -1;
}

static int push_ready(struct sl_sink *sink, struct sl_batch *batch)
{
    if (sink->nready == sink->ready_cap) {
        size_t cap = sink->ready_cap ? sink->ready_cap * 2 : 64;
        struct sl_batch **r = sl_realloc(sink->ready, cap * sizeof(*r));
        if (r == NULL) {
            return SL_ENOMEM;
        }
        sink->ready = r;
        sink->ready_cap = cap;
    }
    if (sink->nready == 0) {
        sink->first_ready_ns = sl_now_ns();
    }
    sink->ready[sink->nready++] = batch;
    sink->ready_records += batch->n;
    sink->ready_bytes += sl_batch_bytes(batch);
    return 0;
}

static struct pending *find_pending(struct sl_sink_stream *st, uint64_t seq)
{
    for (size_t i = 0; i < st->npending; i++) {
        if (st->pending[i].seq == seq) {
            return &st->pending[i];
        }
    }
    if (st->npending == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        struct pending *p = sl_realloc(st->pending, cap * sizeof(*p));
        if (p == NULL) {
            return NULL;
        }
        st->pending = p;
        st->cap = cap;
    }
    struct pending *p = &st->pending[st->npending++];
    memset(p, 0, sizeof(*p));
    p->seq = seq;
    if (st->paths > 4) {
        p->extra = sl_calloc(st->paths - 4, sizeof(*p->extra));
        if (p->extra == NULL) {
            st->npending--;
            return NULL;
        }
    }
    return p;
}

/* Moves complete sequences, in order, to the ready list. */
static int drain_in_order(struct sl_sink *sink, struct sl_sink_stream *st)
{
    for (;;) {
        size_t i;
        for (i = 0; i < st->npending; i++) {
            if (st->pending[i].seq == st->next_seq && st->pending[i].got == st->paths) {
                break;
            }
        }
        if (i == st->npending) {
            return 0;
        }
        struct pending p = st->pending[i];
        st->pending[i] = st->pending[--st->npending];
        int rc = 0;
        for (uint32_t c = 0; c < p.got; c++) {
            if (rc == 0) {
                rc = push_ready(sink, *pending_slot(&p, c));
            }
            if (rc != 0) {
                sl_batch_unref(*pending_slot(&p, c));
            }
        }
        sl_free(p.extra);
        if (rc != 0) {
            return rc;
        }
        st->next_seq++;
    }
}

static int order_batch(struct sl_sink *sink, struct sl_batch *batch)
{
    if (sink->is_dead_letter) {
        return push_ready(sink, batch);
    }
    struct sl_sink_stream *st = find_stream(sink, batch);
    struct pending *p = st != NULL ? find_pending(st, batch->seq) : NULL;
    if (p == NULL) {
        sl_batch_unref(batch);
        return SL_ENOMEM;
    }
    /* The copy's path tag says which path it came by: a second copy of
     * one path, or one of a path that cannot reach here, would be written
     * twice or never completed; stop before writing anything of it. */
    int i = st->tags != NULL ? path_index(st, batch->path) : (int)p->got;
    if (i < 0 || i >= (int)st->paths || ((p->have >> i) & 1u)) {
        sl_log_error("%s: batch %llu of %s (level %u) came twice by path %u, or by a path "
                     "that does not lead here: a bug in sluice; nothing of it is written",
                     sink->node->name, (unsigned long long)batch->seq,
                     sl_node_source_name(sink->node, batch), batch->level, batch->path);
        sl_batch_unref(batch);
        return SL_EFATAL;
    }
    p->have |= (uint64_t)1 << i;
    *pending_slot(p, p->got++) = batch;
    return drain_in_order(sink, st);
}

/* ==== Retries ==== */

int sl_sink_retry_wait(struct sl_sink *sink,
                       struct sl_sink *target,
                       unsigned attempt,
                       struct sl_err *err)
{
    struct sl_pipeline *pl = sink->node->pl;

    if (attempt > RETRY_MAX) {
        return sl_err_set(err, SL_ETIMEDOUT, "%s: still busy or locked after %d retries: giving up",
                          target->node->name, RETRY_MAX);
    }
    uint64_t cap = RETRY_BACKOFF_NS << (attempt - 1 < 20 ? attempt - 1 : 20);
    cap = cap < RETRY_CAP_NS ? cap : RETRY_CAP_NS;
    /* Full jitter: processes that collided do not retry in step. */
    uint64_t wait = (uint64_t)(((double)rand_r(&sink->seed) / RAND_MAX) * (double)cap);
    sl_log_warn("%s: database busy or locked (another writer?): retry %u of %d in %llu ms",
                target->node->name, attempt, RETRY_MAX, (unsigned long long)(wait / 1000000));
    /* Woken early when the run fails (sl_pipeline_stop wakes the budget's
     * sleepers). */
    if (sl_flow_sleep_until(&pl->flow, sl_now_ns() + wait, &pl->failed) != 0) {
        return SL_ECANCELED;
    }
    return 0;
}

/* ==== Dead letters ==== */

const char *const sl_dead_fields[] = {"_error", "_node",  "_source",    "_file",
                                      "_line",  "_topic", "_partition", "_offset",
                                      "_raw",   "_id",    NULL};

static int
dead_field(struct sl_record *rec, struct sl_arena *arena, const char *name, struct sl_value v)
{
    return sl_record_append(rec, arena, name, (uint32_t)strlen(name), v);
}

static int dead_to_record(struct sl_batch *out, const struct sl_dead *d)
{
    struct sl_record *rec = sl_batch_add(out);
    struct sl_arena *a = &out->arena;
    const struct sl_meta *m = &d->rec.meta;
    uint32_t raw_len = d->rec.raw_len > SL_DEAD_RAW_MAX ? SL_DEAD_RAW_MAX : d->rec.raw_len;
    int rc = 0;

    if (rec == NULL) {
        return SL_ENOMEM;
    }
    rec->meta = *m;
    rc |= dead_field(rec, a, "_error", sl_value_str(d->error, (uint32_t)strlen(d->error)));
    rc |= dead_field(rec, a, "_node", sl_value_str(d->node, (uint32_t)strlen(d->node)));
    rc |= dead_field(rec, a, "_source", sl_value_str(d->source, (uint32_t)strlen(d->source)));
    const char *stream = m->stream != NULL ? m->stream : "";
    if (m->line > 0) {
        rc |= dead_field(rec, a, "_file", sl_value_str(stream, (uint32_t)strlen(stream)));
        rc |= dead_field(rec, a, "_line", sl_value_int(m->line));
    } else {
        rc |= dead_field(rec, a, "_topic", sl_value_str(stream, (uint32_t)strlen(stream)));
        rc |= dead_field(rec, a, "_partition", sl_value_int(m->partition));
        rc |= dead_field(rec, a, "_offset", sl_value_int(m->offset));
    }
    const char *raw = d->rec.raw != NULL ? d->rec.raw : "";
    /* Cutting may split a UTF-8 sequence: keep the text valid. */
    while (raw_len > 0 && raw_len < d->rec.raw_len &&
           ((unsigned char)raw[raw_len] & 0xC0) == 0x80) {
        raw_len--;
    }
    rc |= dead_field(rec, a, "_raw", sl_value_str(raw, raw_len));
    char id[SL_DEAD_ID_MAX];
    sl_dead_id(d, id);
    const char *idc = sl_arena_strndup(a, id, strlen(id));
    rc |= idc == NULL ? SL_ENOMEM
                      : dead_field(rec, a, "_id", sl_value_str(idc, (uint32_t)strlen(idc)));
    return rc != 0 ? SL_ENOMEM : 0;
}

static void log_dead(struct sl_sink *sink, const struct sl_dead *d)
{
    uint64_t now = sl_now_ns();

    sink->dead_logged++;
    if (sink->dead_logged > DEAD_LOG_FIRST && now - sink->dead_log_ns < DEAD_LOG_INTERVAL) {
        return;
    }
    sink->dead_log_ns = now;
    if (d->rec.meta.line > 0) {
        sl_log_warn("dead letter from %s (%s:%lld): %s", d->node,
                    d->rec.meta.stream ? d->rec.meta.stream : "?", (long long)d->rec.meta.line,
                    d->error);
    } else {
        sl_log_warn("dead letter from %s (%s/%d@%lld): %s", d->node,
                    d->rec.meta.stream ? d->rec.meta.stream : "?", (int)d->rec.meta.partition,
                    (long long)d->rec.meta.offset, d->error);
    }
}

int sl_sink_reject(struct sl_sink *sink,
                   const struct sl_batch *batch,
                   const struct sl_record *rec,
                   const char *reason)
{
    struct sl_node *node = sink->node;

    if (sink->rejects == NULL && (sink->rejects = sl_batch_new(&node->pl->flow)) == NULL) {
        return SL_ENOMEM;
    }
    int rc = sl_batch_add_dead(sink->rejects, rec, node->name, sl_node_source_name(node, batch),
                               "%s", reason);
    if (rc == 0) {
        sl_dead_set_origin(&sink->rejects->dead[sink->rejects->ndead - 1], batch);
        atomic_fetch_add_explicit(&node->c.dead, 1, memory_order_relaxed);
    }
    return rc;
}

/* Drops the store's rejects of a failed attempt (the retry makes them
 * again), or logs those of a stored one: a dead letter the store itself
 * refuses has nowhere else to go, and is counted dead at the store. Returns
 * how many. Under dead_lock. */
static uint64_t settle_store_rejects(struct sl_sink *store, bool stored)
{
    uint64_t n = store->rejects != NULL ? store->rejects->ndead : 0;

    for (uint32_t i = 0; stored && i < n; i++) {
        log_dead(store, &store->rejects->dead[i]);
    }
    if (!stored && n > 0) {
        atomic_fetch_sub_explicit(&store->node->c.dead, n, memory_order_relaxed);
    }
    store->rejects = sl_batch_unref(store->rejects);
    return n;
}

/* Writes out to the dead-letter store under its lock. retry: with backoff
 * until the retries are used up; otherwise once, for a caller inside its
 * own write transaction, which must not wait holding it (it rolls back
 * and retries later). */
static int store_dead(struct sl_sink *sink, struct sl_batch *out, bool retry)
{
    struct sl_node *dlq = sink->node->pl->dead_letter;
    struct sl_sink *store = sl_sink_of(dlq);
    struct sl_err err = {0};
    uint64_t refused = 0;
    int rc;

    pthread_mutex_lock(&store->dead_lock);
    for (unsigned attempt = 1;; attempt++) {
        rc = store->write(store, &out, 1);
        refused = settle_store_rejects(store, rc == 0);
        if (rc != SL_ERETRY || !retry) {
            break;
        }
        int wrc = sl_sink_retry_wait(sink, store, attempt, &err);
        if (wrc != 0) {
            if (wrc == SL_ETIMEDOUT) {
                sl_pipeline_fail(sink->node->pl, &err);
            }
            break;
        }
    }
    pthread_mutex_unlock(&store->dead_lock);
    if (rc == 0) {
        atomic_fetch_add_explicit(&dlq->c.in, out->n, memory_order_relaxed);
        atomic_fetch_add_explicit(&dlq->c.out, out->n - refused, memory_order_relaxed);
    }
    return rc;
}

/* Hands the dead letters this sink owns to the dead-letter store (or the
 * log when there is none). before_write: the batches' dead letters, stored
 * before the batches are committed, so that a failure or a kill -9 between
 * the two replays them (at least once) instead of losing them. Afterwards:
 * the records the write itself rejected, unless write() had them stored
 * before its commit (n == 0 is that call). With writes_own_dead the write
 * stores all of them in its own transaction: they are only counted, after. */
static int
deliver_dead(struct sl_sink *sink, struct sl_batch *const *batches, size_t n, bool before_write)
{
    struct sl_node *dlq = sink->node->pl->dead_letter;
    struct sl_batch *out = NULL;
    int rc = 0;
    /* Stored by our own transaction: those not trimmed as replays. */
    uint64_t stored = sink->writes_own_dead ? sink->dead_stored : 0;
    uint64_t handed = 0; /* dead letters that transaction was given */

    if (before_write && sink->writes_own_dead) {
        return 0;
    }
    for (size_t b = 0; b <= n; b++) {
        const struct sl_batch *from = b < n                  ? batches[b]
                                      : sink->rejects_stored ? NULL
                                                             : sink->rejects;
        if (from == NULL || (before_write && b == n) ||
            (!before_write && b < n && !sink->writes_own_dead)) {
            continue;
        }
        if (sink->writes_own_dead) {
            handed += from->ndead; /* the write stored them or trimmed them: counted below */
            continue;
        }
        for (uint32_t i = 0; i < from->ndead; i++) {
            const struct sl_dead *d = &from->dead[i];
            if (dlq == NULL) {
                log_dead(sink, d);
                continue;
            }
            if (out == NULL && (out = sl_batch_new(&sink->node->pl->flow)) == NULL) {
                return SL_ENOMEM;
            }
            if ((rc = dead_to_record(out, d)) != 0) {
                sl_batch_unref(out);
                return rc;
            }
        }
    }
    if (sink->writes_own_dead && dlq != NULL) {
        /* The ones it trimmed were stored by an earlier run or another
         * process: received, and dropped as replays, like a sink's. */
        uint64_t trimmed = handed > stored ? handed - stored : 0;
        atomic_fetch_add_explicit(&dlq->c.in, stored + trimmed, memory_order_relaxed);
        atomic_fetch_add_explicit(&dlq->c.out, stored, memory_order_relaxed);
        atomic_fetch_add_explicit(&dlq->c.dropped, trimmed, memory_order_relaxed);
        atomic_fetch_add_explicit(&dlq->c.replayed, trimmed, memory_order_relaxed);
    }
    if (out == NULL) {
        return 0;
    }
    rc = store_dead(sink, out, n > 0); /* n == 0: from inside write() */
    sl_batch_unref(out);
    return rc;
}

int sl_sink_store_rejects(struct sl_sink *sink)
{
    /* The store's own rejects have nowhere to go: store_dead logs them. */
    if (sink->writes_own_dead || sink->is_dead_letter || sink->rejects == NULL ||
        sink->rejects_stored) {
        return 0;
    }
    int rc = deliver_dead(sink, NULL, 0, false);
    sink->rejects_stored = rc == 0;
    return rc;
}

/* ==== Writing ==== */

/* Gives back the batches of the ready list. */
static void drop_ready(struct sl_sink *sink)
{
    for (size_t i = 0; i < sink->nready; i++) {
        sink->ready[i] = sl_batch_unref(sink->ready[i]);
    }
    sink->nready = 0;
    sink->ready_records = 0;
    sink->ready_bytes = 0;
}

static int write_ready(struct sl_sink *sink)
{
    int rc;

    if (sink->nready == 0) {
        return 0;
    }
    if (sink->broken != 0) {
        /* The run failed here: writing again would store the dead letters
         * again. What is not committed is read again by the next run. */
        drop_ready(sink);
        return sink->broken;
    }
    rc = deliver_dead(sink, sink->ready, sink->nready, true);
    if (rc != 0) {
        return rc;
    }
    struct sl_err err = {0};
    unsigned attempt = 0;
    do {
        if (sink->rejects != NULL) {
            /* A failed attempt's rejects: the retry reports them again. */
            atomic_fetch_sub_explicit(&sink->node->c.dead, sink->rejects->ndead,
                                      memory_order_relaxed);
            sink->rejects = sl_batch_unref(sink->rejects);
        }
        sink->rejects_stored = false;
        sink->replayed = 0;
        sink->dead_stored = 0;
        uint64_t t0 = sl_now_ns();
        rc = sink->write(sink, sink->ready, sink->nready);
        if (rc == 0) {
            uint64_t took = sl_now_ns() - t0;
            sl_sizer_note(&sink->sizer, sink->ready_records, took);
            sl_latency_add(&sink->commit, took, 1);
        }
        if (rc == SL_ERETRY) {
            int wrc = sl_sink_retry_wait(sink, sink, ++attempt, &err);
            if (wrc != 0) {
                if (wrc == SL_ETIMEDOUT) {
                    sl_pipeline_fail(sink->node->pl, &err);
                }
                break;
            }
        }
    } while (rc == SL_ERETRY);
    if (rc != 0) {
        sink->broken = rc;
        return rc;
    }
    /* Rejects before the position: for sinks whose commit is this
     * acknowledgement (checkpoints, Kafka offsets follow it). */
    rc = deliver_dead(sink, sink->ready, sink->nready, false);
    if (rc == 0) {
        rc = sl_acks_note(&sink->acks, sink->ready, sink->nready);
    }
    uint64_t now = sl_now_ns();
    for (size_t i = 0; i < sink->nready; i++) {
        const struct sl_batch *b = sink->ready[i];
        sl_latency_add(&sink->latency, now > b->read_ns ? now - b->read_ns : 0, b->n);
    }
    /* Records write() rejected are counted dead, not out; records an
     * earlier run or another process already stored are dropped as replays. */
    uint64_t rejected = sink->rejects != NULL ? sink->rejects->ndead : 0;
    uint64_t replayed = sink->replayed;
    sink->rejects = sl_batch_unref(sink->rejects);
    atomic_fetch_add_explicit(&sink->node->c.out, sink->ready_records - rejected - replayed,
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&sink->node->c.dropped, replayed, memory_order_relaxed);
    atomic_fetch_add_explicit(&sink->node->c.replayed, replayed, memory_order_relaxed);
    drop_ready(sink);
    return rc;
}

static bool should_write(struct sl_sink *sink)
{
    if (sink->nready == 0) {
        return false;
    }
    uint64_t max_records = sink->max_records;
    if (sink->target_latency_ns != 0) {
        max_records = sl_sizer_limit(&sink->sizer, sink->target_latency_ns);
    }
    if ((max_records && sink->ready_records >= max_records) ||
        (sink->max_bytes && sink->ready_bytes >= sink->max_bytes)) {
        return true;
    }
    if (sink->max_wait_ns && sl_now_ns() - sink->first_ready_ns >= sink->max_wait_ns) {
        return true;
    }
    /* Intelligent batching: nothing more is waiting, so waiting longer only
     * adds latency. Shells of shed batches count as waiting: their positions
     * go into the next write. Nothing else would call this again when the
     * input goes idle, so what is ready (positions only, too) is written
     * now: no timer flushes a sink. */
    return sl_ring_count(sink->node->in) == 0 &&
           atomic_load_explicit(&sink->node->nshells, memory_order_relaxed) == 0;
}

int sl_sink_process(struct sl_sink *sink, struct sl_batch *batch)
{
    int rc = order_batch(sink, batch);

    if (rc != 0) {
        return rc;
    }
    return should_write(sink) ? write_ready(sink) : 0;
}

int sl_sink_flush(struct sl_sink *sink)
{
    return write_ready(sink);
}

int sl_sink_node_process(struct sl_node *node, struct sl_batch *batch)
{
    return sl_sink_process(sl_sink_of(node), batch);
}

int sl_sink_node_flush(struct sl_node *node)
{
    return sl_sink_flush(sl_sink_of(node));
}
