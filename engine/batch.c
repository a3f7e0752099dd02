/* SPDX-License-Identifier: MIT */
/* Batch lifetime, sharing and dead letters (see batch.h). */
#include "batch.h"

#include "err.h"
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct sl_batch *sl_batch_new(void)
{
    struct sl_batch *batch = sl_calloc(1, sizeof(*batch));

    if (batch == NULL) {
        return NULL;
    }
    atomic_init(&batch->refs, 1);
    sl_arena_init(&batch->arena);
    return batch;
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
    if (batch->on_free != NULL) {
        batch->on_free(batch, batch->on_free_arg);
    }
    sl_arena_release(&batch->arena);
    sl_free(batch->recs);
    sl_free(batch->dead);
    sl_free(batch->block);
    sl_batch_unref(batch->parent);
    sl_free(batch);
    return NULL;
}

struct sl_record *sl_batch_add(struct sl_batch *batch)
{
    if (batch->n == batch->cap) {
        uint32_t cap = batch->cap ? batch->cap * 2 : 256;
        struct sl_record *r = sl_realloc(batch->recs, cap * sizeof(*r));
        if (r == NULL) {
            return NULL;
        }
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
    char msg[512];
    va_list ap;

    if (batch->ndead == batch->dead_cap) {
        uint32_t cap = batch->dead_cap ? batch->dead_cap * 2 : 16;
        struct sl_dead *d = sl_realloc(batch->dead, cap * sizeof(*d));
        if (d == NULL) {
            return SL_ENOMEM;
        }
        batch->dead = d;
        batch->dead_cap = cap;
    }
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        n = 0;
    }
    const char *error =
        sl_arena_strndup(&batch->arena, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    if (error == NULL) {
        return SL_ENOMEM;
    }
    struct sl_dead *d = &batch->dead[batch->ndead++];
    d->rec = *rec;
    d->error = error;
    d->node = node;
    d->source = source;
    d->owner = 0;
    return 0;
}

void sl_batch_copy_position(struct sl_batch *dst, const struct sl_batch *src)
{
    dst->source = src->source;
    dst->stream = src->stream;
    dst->stream_name = src->stream_name;
    dst->fingerprint = src->fingerprint;
    dst->partition = src->partition;
    dst->seq = src->seq;
    dst->pos_start = src->pos_start;
    dst->pos_end = src->pos_end;
    dst->last = src->last;
}

size_t sl_batch_bytes(const struct sl_batch *batch)
{
    return batch->arena.bytes + batch->block_len + batch->cap * sizeof(struct sl_record) +
           batch->dead_cap * sizeof(struct sl_dead);
}

struct sl_batch *sl_batch_make_writable(struct sl_batch *batch)
{
    /* Acquire: pairs with other owners' release in unref before we edit. */
    if (atomic_load_explicit(&batch->refs, memory_order_acquire) == 1) {
        return batch;
    }
    struct sl_batch *copy = sl_batch_new();
    if (copy == NULL) {
        return NULL;
    }
    sl_batch_copy_position(copy, batch);
    /* The copy is memory in flight too: it is charged by the next
     * sl_node_account and gives its bytes back the same way. */
    copy->on_free = batch->on_free;
    copy->on_free_arg = batch->on_free_arg;
    for (uint32_t i = 0; i < batch->n; i++) {
        struct sl_record *rec = sl_batch_add(copy);
        if (rec == NULL || sl_record_clone(rec, &batch->recs[i], &copy->arena) != 0) {
            sl_batch_unref(copy);
            return NULL;
        }
    }
    for (uint32_t i = 0; i < batch->ndead; i++) {
        const struct sl_dead *d = &batch->dead[i];
        struct sl_record rec;
        if (sl_record_clone(&rec, &d->rec, &copy->arena) != 0 ||
            sl_batch_add_dead(copy, &rec, d->node, d->source, "%s", d->error) != 0) {
            sl_batch_unref(copy);
            return NULL;
        }
        copy->dead[copy->ndead - 1].owner = d->owner;
    }
    sl_batch_unref(batch);
    return copy;
}
