/* SPDX-License-Identifier: MIT */
/* Batch lifetime, sharing and dead letters (see batch.h). */
#include "batch.h"

#include "clock.h"
#include "err.h"
#include "hash.h"
#include "json.h"
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* The batch struct itself and its arrays: what sl_batch_bytes counts
 * besides the arena and the block. */
static size_t arrays_bytes(const struct sl_batch *batch)
{
    return sizeof(*batch) + batch->cap * sizeof(struct sl_record) +
           batch->dead_cap * sizeof(struct sl_dead);
}

static void charge(struct sl_batch *batch, size_t bytes)
{
    if (batch->flow != NULL) {
        sl_flow_charge(batch->flow, batch->credit, bytes);
    }
}

/* A new batch charged to flow, drawing on credit (NULL: none). */
static struct sl_batch *new_batch(struct sl_flow *flow, struct sl_flow_credit *credit)
{
    struct sl_batch *batch = sl_calloc(1, sizeof(*batch));

    if (batch == NULL) {
        return NULL;
    }
    atomic_init(&batch->refs, 1);
    sl_arena_init(&batch->arena);
    batch->flow = flow;
    batch->arena.flow = flow;
    batch->credit = credit;
    batch->arena.credit = credit;
    charge(batch, sizeof(*batch));
    batch->read_ns = sl_now_ns();
    return batch;
}

struct sl_batch *sl_batch_new(struct sl_flow *flow)
{
    return new_batch(flow, NULL);
}

uint64_t sl_batch_adopt_bytes(const struct sl_batch *batch)
{
    return sl_batch_bytes(batch) + SL_BATCH_BLOCK_SLACK;
}

void sl_batch_adopt(struct sl_batch *batch, struct sl_flow *flow)
{
    SL_ASSERT(batch->flow == NULL && flow != NULL);
    batch->flow = flow;
    batch->arena.flow = flow;
    /* What sl_batch_adopt_bytes counted beyond the arena and the arrays,
     * which unref gives back on their own. */
    batch->block_charged = batch->block_len + SL_BATCH_BLOCK_SLACK;
    batch->base_bytes = batch->block_len > 0 ? batch->block_len : sl_batch_used_bytes(batch);
}

void sl_batch_grant(struct sl_batch *batch, uint64_t credit)
{
    SL_ASSERT(batch->flow != NULL && batch->credit == NULL);
    batch->family.granted = credit;
    batch->family.base = sl_batch_adopt_bytes(batch);
    atomic_init(&batch->family.drawn, 0);
    batch->credit = &batch->family;
    batch->arena.credit = &batch->family;
}

struct sl_batch *sl_batch_ref(struct sl_batch *batch)
{
    /* Relaxed: taking a reference needs no ordering, only the last unref does. */
    atomic_fetch_add_explicit(&batch->refs, 1, memory_order_relaxed);
    return batch;
}

struct sl_batch *sl_batch_unref(struct sl_batch *batch)
{
    if (batch == NULL) {
        return NULL;
    }
    /* acq_rel: the freeing thread must see every other owner's reads done. */
    if (atomic_fetch_sub_explicit(&batch->refs, 1, memory_order_acq_rel) != 1) {
        return NULL;
    }
    /* The bytes go back after the memory (as the arena does): given back
     * first, they woke the source waiting for them, which read much of its
     * next long line before this thread (one of 8 file sinks' threads on 2
     * cores) had unmapped the old block: 12 MB lines, 30 MB peak RSS
     * instead of 19. */
    uint64_t given = arrays_bytes(batch) + batch->block_charged;
    sl_arena_release(&batch->arena);
    if (!batch->recs_borrowed) {
        sl_free(batch->recs);
    }
    sl_free(batch->dead);
    sl_free(batch->block);
    if (batch->flow != NULL) {
        sl_flow_release(batch->flow, given);
    }
    sl_batch_unref(batch->parent);
    struct sl_flow_window *window = batch->window;
    bool granted = batch->credit == &batch->family;
    struct sl_flow_credit family = {.granted = batch->family.granted, .base = batch->family.base};
    /* Relaxed: the family's charges happened before their batches' last
     * unrefs, which our own acq_rel unref follows. */
    atomic_init(&family.drawn,
                granted ? atomic_load_explicit(&batch->family.drawn, memory_order_relaxed) : 0);
    struct sl_flow *flow = batch->flow;
    sl_free(batch);
    if (window != NULL) {
        /* After its bytes went back: a source woken by this sees them. */
        sl_flow_window_leave(window, granted ? &family : NULL);
    } else if (granted) {
        /* A credit without a window (plugin stages below its source):
         * what the family did not draw goes back. */
        uint64_t drawn = atomic_load_explicit(&family.drawn, memory_order_relaxed);
        if (family.granted > drawn) {
            sl_flow_release(flow, family.granted - drawn);
        }
    }
    return NULL;
}

struct sl_record *sl_batch_add(struct sl_batch *batch)
{
    SL_ASSERT(!batch->recs_borrowed); /* make it writable first */
    if (batch->n == batch->cap) {
        uint32_t cap = batch->cap ? batch->cap * 2 : 32;
        struct sl_record *r = sl_realloc(batch->recs, cap * sizeof(*r));
        if (r == NULL) {
            return NULL;
        }
        charge(batch, (cap - batch->cap) * sizeof(*r));
        batch->recs = r;
        batch->cap = cap;
    }
    struct sl_record *rec = &batch->recs[batch->n++];
    memset(rec, 0, sizeof(*rec));
    return rec;
}

int sl_batch_add_dead(struct sl_batch *batch,
                      const struct sl_record *rec,
                      const char *node,
                      const char *source,
                      const char *fmt,
                      ...)
{
    /* The reason, less than SL_DEAD_REASON_MAX bytes of valid UTF-8: a plugin's
     * (host->dead) may hold any bytes and be of any length, and a cut by
     * bytes could split a character; SQLite stores text as given. */
    char msg[2 * SL_DEAD_REASON_MAX], clean[SL_DEAD_REASON_MAX];
    va_list ap;

    if (batch->ndead == batch->dead_cap) {
        uint32_t cap = batch->dead_cap ? batch->dead_cap * 2 : 16;
        struct sl_dead *d = sl_realloc(batch->dead, cap * sizeof(*d));
        if (d == NULL) {
            return SL_ENOMEM;
        }
        charge(batch, (cap - batch->dead_cap) * sizeof(*d));
        batch->dead = d;
        batch->dead_cap = cap;
    }
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    }
    /* Each byte read gives at least one: the text beyond what msg holds is
     * never reached. */
    size_t len = sl_utf8_clean(clean, sizeof(clean), msg,
                               (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1, false);
    const char *error = sl_arena_strndup(&batch->arena, clean, len);
    if (error == NULL) {
        return SL_ENOMEM;
    }
    struct sl_dead *d = &batch->dead[batch->ndead++];
    d->rec = *rec;
    d->error = error;
    d->node = node;
    d->source = source;
    sl_dead_set_origin(d, batch);
    return 0;
}

/* The last dead letter of batch came from d (a copy): it keeps d's id. */
static void keep_origin(struct sl_batch *batch, const struct sl_dead *d)
{
    batch->dead[batch->ndead - 1].origin[0] = d->origin[0];
    batch->dead[batch->ndead - 1].origin[1] = d->origin[1];
    batch->dead[batch->ndead - 1].path = d->path;
}

void sl_dead_set_origin(struct sl_dead *d, const struct sl_batch *from)
{
    /* Names of any length: hashed in slices, each slice's hash keying the
     * next, so a long name is not cut. */
    const char *parts[4] = {d->source, from->stream_name,
                            from->fingerprint_is_epoch ? from->fingerprint : "", d->node};
    uint64_t h0 = 0x736c75696365ull, h1 = 0x646561646c6574ull; /* fixed keys: same every run */
    unsigned char buf[256];

    for (int i = 0; i < 4; i++) {
        const char *s = parts[i] != NULL ? parts[i] : "";
        size_t n = strlen(s);
        do {
            size_t take = n > sizeof(buf) - 1 ? sizeof(buf) - 1 : n;
            memcpy(buf, s, take);
            buf[take] = (unsigned char)i; /* which part: "ab"+"c" is not "a"+"bc" */
            uint64_t a = sl_siphash13(buf, take + 1, h0, h1);
            uint64_t b = sl_siphash13(buf, take + 1, h1 ^ 0x5a5a5a5a5a5a5a5aull, h0);
            h0 = a;
            h1 = b;
            s += take;
            n -= take;
        } while (n > 0);
    }
    d->origin[0] = h0;
    d->origin[1] = h1;
    d->path = from->path;
}

/* The longest id: the widest partition, offset and path, the hash and a sub. */
_Static_assert(sizeof("-2147483648:-9223372036854775808:4294967295:") - 1 + 32 + 17 <
                   SL_DEAD_ID_MAX,
               "SL_DEAD_ID_MAX holds every id");

void sl_dead_id(const struct sl_dead *d, char buf[SL_DEAD_ID_MAX])
{
    int n = snprintf(buf, SL_DEAD_ID_MAX, "%d:%lld:%u:%016llx%016llx", (int)d->rec.meta.partition,
                     (long long)d->rec.meta.offset, d->path, (unsigned long long)d->origin[0],
                     (unsigned long long)d->origin[1]);

    /* A record a plugin added shares its input record's offset: its
     * sub-position tells it apart. Only then, so that the ids of other
     * dead letters (stored by earlier versions) stay as they were. */
    if (d->rec.meta.sub != 0 && n > 0 && n < SL_DEAD_ID_MAX) {
        (void)snprintf(buf + n, SL_DEAD_ID_MAX - (size_t)n, ":%016llx",
                       (unsigned long long)d->rec.meta.sub);
    }
}

struct sl_batch *sl_batch_shell(const struct sl_batch *batch)
{
    struct sl_batch *shell = sl_batch_new(batch->flow);

    if (shell == NULL) {
        return NULL;
    }
    sl_batch_copy_position(shell, batch);
    sl_batch_drop_credit(shell); /* it outlives batch */
    shell->shell = true;
    for (uint32_t i = 0; i < batch->ndead; i++) {
        const struct sl_dead *d = &batch->dead[i];
        struct sl_record rec = d->rec, copy;
        /* +4: room for the sink to cut at a character boundary itself. */
        rec.raw_len = rec.raw_len > SL_DEAD_RAW_MAX + 4 ? SL_DEAD_RAW_MAX + 4 : rec.raw_len;
        if (sl_record_clone(&copy, &rec, &shell->arena) != 0 ||
            sl_batch_add_dead(shell, &copy, d->node, d->source, "%s", d->error) != 0) {
            return sl_batch_unref(shell);
        }
        keep_origin(shell, d);
    }
    return shell;
}

void sl_batch_copy_position(struct sl_batch *dst, const struct sl_batch *src)
{
    dst->source = src->source;
    dst->stream = src->stream;
    dst->stream_name = src->stream_name;
    dst->fingerprint = src->fingerprint;
    dst->fingerprint_is_epoch = src->fingerprint_is_epoch;
    dst->partition = src->partition;
    dst->seq = src->seq;
    dst->level = src->level;
    dst->path = src->path;
    dst->pos_start = src->pos_start;
    dst->pos_end = src->pos_end;
    dst->last = src->last;
    dst->read_ns = src->read_ns;
    dst->base_bytes = src->base_bytes;
    dst->credit = src->credit;
    dst->arena.credit = src->credit;
}

void sl_batch_drop_credit(struct sl_batch *batch)
{
    batch->credit = NULL;
    batch->arena.credit = NULL;
}

size_t sl_batch_bytes(const struct sl_batch *batch)
{
    return batch->arena.bytes + batch->block_len + arrays_bytes(batch);
}

/* Compaction: what of the arena a batch's records and dead letters still
 * point to, and moving that to a fresh arena. Only bytes in the arena
 * move: values in the block or in a parent stay where they are. */

/* Bytes of the arena p..p+len (and the NUL a copy adds) takes, or 0. */
static size_t owned(const struct sl_arena *arena, const void *p, size_t len)
{
    return p != NULL && sl_arena_owns(arena, p) ? (len + 8) & ~(size_t)7 : 0;
}

static size_t value_owned(const struct sl_arena *arena, const struct sl_value *v)
{
    return v->type >= SL_TYPE_STR && v->type <= SL_TYPE_OBJECT ? owned(arena, v->u.s, v->len) : 0;
}

static size_t record_owned(const struct sl_arena *arena, const struct sl_record *rec)
{
    size_t bytes = owned(arena, rec->fields, rec->nfields * sizeof(struct sl_field)) +
                   owned(arena, rec->raw, rec->raw_len) + value_owned(arena, &rec->meta.key) +
                   value_owned(arena, &rec->meta.headers);

    for (uint32_t i = 0; i < rec->nfields; i++) {
        bytes += owned(arena, rec->fields[i].name, rec->fields[i].name_len) +
                 value_owned(arena, &rec->fields[i].val);
    }
    return bytes;
}

size_t sl_batch_live_bytes(const struct sl_batch *batch)
{
    size_t bytes = 0;

    for (uint32_t i = 0; i < batch->n; i++) {
        bytes += record_owned(&batch->arena, &batch->recs[i]);
    }
    for (uint32_t i = 0; i < batch->ndead; i++) {
        const struct sl_dead *d = &batch->dead[i];
        bytes +=
            record_owned(&batch->arena, &d->rec) + owned(&batch->arena, d->error, strlen(d->error));
    }
    return bytes;
}

/* *p, len bytes, moved from `from` to `to` if `from` holds it. */
static int move_bytes(struct sl_arena *to, const struct sl_arena *from, const char **p, size_t len)
{
    if (*p == NULL || !sl_arena_owns(from, *p)) {
        return 0;
    }
    char *c = sl_arena_strndup(to, *p, len);
    if (c == NULL) {
        return SL_ENOMEM;
    }
    *p = c;
    return 0;
}

static int move_value(struct sl_arena *to, const struct sl_arena *from, struct sl_value *v)
{
    return v->type >= SL_TYPE_STR && v->type <= SL_TYPE_OBJECT
               ? move_bytes(to, from, &v->u.s, v->len)
               : 0;
}

/* Moves rec's arena bytes; its field array always moves (a copy of its own,
 * of its length: nothing appends to it after). */
static int move_record(struct sl_arena *to, const struct sl_arena *from, struct sl_record *rec)
{
    if (move_bytes(to, from, &rec->raw, rec->raw_len) != 0 ||
        move_value(to, from, &rec->meta.key) != 0 ||
        move_value(to, from, &rec->meta.headers) != 0) {
        return SL_ENOMEM;
    }
    if (rec->fields == NULL || !sl_arena_owns(from, rec->fields)) {
        return 0;
    }
    uint32_t cap = rec->nfields > 0 ? rec->nfields : 1;
    struct sl_field *fields = sl_arena_alloc(to, cap * sizeof(*fields));
    if (fields == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < rec->nfields; i++) {
        fields[i] = rec->fields[i];
        if (move_bytes(to, from, &fields[i].name, fields[i].name_len) != 0 ||
            move_value(to, from, &fields[i].val) != 0) {
            return SL_ENOMEM;
        }
    }
    rec->fields = fields;
    rec->cap = cap;
    return 0;
}

int sl_batch_compact(struct sl_batch *batch)
{
    struct sl_arena fresh;
    int rc = 0;

    SL_ASSERT(!batch->recs_borrowed);
    sl_arena_init(&fresh);
    fresh.flow = batch->arena.flow;
    fresh.credit = batch->arena.credit;
    /* Into copies first: on OOM the batch is left as it was. */
    struct sl_record *recs = sl_malloc((batch->n + batch->ndead) * sizeof(*recs) + 1);
    if (recs == NULL) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < batch->n && rc == 0; i++) {
        recs[i] = batch->recs[i];
        rc = move_record(&fresh, &batch->arena, &recs[i]);
    }
    const char **errors = sl_malloc(batch->ndead * sizeof(*errors) + 1);
    rc = rc == 0 && errors == NULL ? SL_ENOMEM : rc;
    for (uint32_t i = 0; i < batch->ndead && rc == 0; i++) {
        recs[batch->n + i] = batch->dead[i].rec;
        errors[i] = batch->dead[i].error;
        rc = move_record(&fresh, &batch->arena, &recs[batch->n + i]);
        if (rc == 0) {
            rc = move_bytes(&fresh, &batch->arena, &errors[i], strlen(errors[i]));
        }
    }
    if (rc != 0) {
        sl_arena_release(&fresh);
        sl_free(recs);
        sl_free(errors);
        return rc;
    }
    memcpy(batch->recs, recs, batch->n * sizeof(*recs));
    for (uint32_t i = 0; i < batch->ndead; i++) {
        batch->dead[i].rec = recs[batch->n + i];
        batch->dead[i].error = errors[i];
    }
    sl_free(recs);
    sl_free(errors);
    /* The old chunks' bytes go back to the budget now (the credit they
     * drew on stays drawn: the family did hold them). */
    sl_arena_release(&batch->arena);
    batch->arena = fresh;
    return 0;
}

size_t sl_batch_used_bytes(const struct sl_batch *batch)
{
    return sl_arena_used(&batch->arena) + batch->block_len + batch->n * sizeof(struct sl_record) +
           batch->ndead * sizeof(struct sl_dead);
}

/* A batch with batch's position, records and dead letters, its field
 * arrays its own and its names and values pointing into batch (which
 * becomes its parent: the caller's reference moves there). */
static struct sl_batch *copy_records(struct sl_batch *batch)
{
    struct sl_batch *copy = new_batch(batch->flow, batch->credit);
    if (copy == NULL) {
        return NULL;
    }
    sl_batch_copy_position(copy, batch);
    copy->aux = batch->aux;
    copy->line = batch->line;
    for (uint32_t i = 0; i < batch->n; i++) {
        struct sl_record *rec = sl_batch_add(copy);
        if (rec == NULL || sl_record_copy_fields(rec, &batch->recs[i], &copy->arena) != 0) {
            sl_batch_unref(copy);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < batch->ndead; i++) {
        const struct sl_dead *d = &batch->dead[i];
        if (sl_batch_add_dead(copy, &d->rec, d->node, d->source, "%s", d->error) != 0) {
            sl_batch_unref(copy);
            return NULL;
        }
        keep_origin(copy, d);
    }
    /* A fan-out of 20 editing stages then costs 20 field arrays, not 20
     * copies of every string. */
    copy->parent = batch;
    return copy;
}

struct sl_batch *sl_batch_make_writable(struct sl_batch *batch)
{
    /* Acquire: pairs with other owners' release in unref before we edit. A
     * fork reads its parent's records, which other paths read too. */
    if (atomic_load_explicit(&batch->refs, memory_order_acquire) == 1 && !batch->recs_borrowed) {
        return batch;
    }
    return copy_records(batch);
}

struct sl_batch *sl_batch_fork(struct sl_batch *batch)
{
    struct sl_batch *fork = new_batch(batch->flow, batch->credit);
    if (fork == NULL) {
        return NULL;
    }
    sl_batch_copy_position(fork, batch);
    fork->aux = batch->aux;
    fork->line = batch->line;
    fork->recs = batch->recs;
    fork->n = batch->n;
    fork->recs_borrowed = true;
    fork->shell = batch->shell;
    fork->parent = sl_batch_ref(batch);
    return fork;
}
