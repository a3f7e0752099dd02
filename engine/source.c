/* SPDX-License-Identifier: MIT */
/* The budget sources hold outside batches (see source.h). */
#include "source.h"

int sl_source_hold(struct sl_node *src, uint64_t *held, uint64_t bytes)
{
    struct sl_pipeline *pl = src->pl;
    uint64_t was = *held;
    int rc = sl_flow_hold(&pl->flow, held, bytes, &pl->stop);

    /* seq_cst, and after the charge on the way up, after the release on the
     * way down: the gate in runtime.c lets decoders run while the budget is
     * spent if it is all raw input; a raw count ahead of the charge would
     * let them run when it is not. */
    if (rc == 0 && bytes > was) {
        atomic_fetch_add_explicit(&pl->raw_bytes, bytes - was, memory_order_seq_cst);
    } else if (rc == 0 && bytes < was) {
        atomic_fetch_sub_explicit(&pl->raw_bytes, was - bytes, memory_order_seq_cst);
    }
    return rc;
}

int sl_source_admit(struct sl_node *src, struct sl_batch *batch, uint64_t *held, uint64_t give)
{
    struct sl_pipeline *pl = src->pl;
    uint64_t credit;

    SL_ASSERT(batch->flow == NULL && give <= *held);
    /* A window's place first, as sl_node_source_push takes it, and the
     * credit for the family's growth (0 without a window). */
    int rc = sl__node_window_enter(src, batch, &credit);
    if (rc != 0) {
        return rc;
    }
    uint64_t need = sl_batch_adopt_bytes(batch) + credit;
    /* First the hold covers the batch (waiting as a hold does, so never on
     * the source's own bytes), then that part of it becomes the batch's. */
    rc = sl_source_hold(src, held, *held - give + need);
    if (rc != 0) {
        return rc;
    }
    sl_flow_unhold(&pl->flow, held, need);
    /* sl_node_source_push counts the batch as raw again until a decoder
     * pops it. */
    atomic_fetch_sub_explicit(&pl->raw_bytes, need, memory_order_seq_cst);
    sl_batch_adopt(batch, &pl->flow);
    if (batch->window != NULL || credit > 0) {
        sl_batch_grant(batch, credit);
    }
    return 0;
}

int sl_source_forward(struct sl_node *node, struct sl_batch *batch)
{
    /* Records it rejected while building the batch are counted dead then. */
    atomic_fetch_add_explicit(&node->c.in, batch->n + batch->ndead, memory_order_relaxed);
    sl_node_emit(node, 0, batch);
    return 0;
}

/* What src's plugin stages below measured: the largest figure (x16, 0
 * when none measured), whether one of them was not called yet
 * (*ret_unknown), and the fewest calls on none of the source's records of
 * those that measured nothing yet (*ret_blind: SL_GROWTH_BLIND + 1 when
 * none is so). */
static uint32_t most_growth(const struct sl_node *src, bool *ret_unknown, uint32_t *ret_blind)
{
    uint32_t most = 0;

    *ret_unknown = false;
    *ret_blind = SL_GROWTH_BLIND + 1;
    for (uint32_t i = 0; i < src->ngrowth; i++) {
        /* Relaxed: an estimate, written by whichever call measured last. */
        uint32_t x16 = atomic_load_explicit(&src->growth[i].x16, memory_order_relaxed);
        *ret_unknown |= x16 == 0;
        *ret_blind = x16 != 0 && x16 < *ret_blind ? x16 : *ret_blind;
        most = x16 > most && x16 > SL_GROWTH_BLIND ? x16 : most;
    }
    return most;
}

uint64_t sl_source_growth_credit(const struct sl_node *src, const struct sl_batch *batch)
{
    bool unknown;
    uint32_t blind;
    uint32_t growth = most_growth(src, &unknown, &blind);
    uint64_t base = batch->block_len > 0 ? batch->block_len : sl_batch_used_bytes(batch);
    uint64_t admitted = sl_batch_adopt_bytes(batch);

    if (unknown) {
        /* A stage not called yet: the batch (a record) may grow by as much
         * as a call may add (its room, and the arena chunk past it) at each
         * stage below. Without this, the records read one at a time while
         * the first call ran were all admitted at their own size, and each
         * grew to the room: 32 records, 500 MiB at a 64 MiB limit. */
        uint64_t room = src->pl->flow.limit / SL_PLUGIN_ROOM_DIV + SL_ARENA_CHUNK_MAX;
        uint64_t credit = room * src->ngrowth;
        return credit < src->window.credit_max ? credit : src->window.credit_max;
    }
    if (growth == 0 || base > UINT64_MAX / growth) {
        return 0;
    }
    uint64_t grown = base * growth / 16;
    uint64_t credit = grown > admitted ? grown - admitted : 0;
    return credit < src->window.credit_max ? credit : src->window.credit_max;
}

bool sl_source_batch_full(const struct sl_node *src,
                          const struct sl_batch *batch,
                          uint64_t most_base)
{
    uint64_t most_bytes = (uint64_t)src->pl->block_plan * src->pl->block_factor;
    /* Used bytes are at most the bytes held: counted only then. */
    size_t held = sl_batch_bytes(batch);

    return batch->n > 0 &&
           (held >= most_bytes || (held >= most_base && sl_batch_used_bytes(batch) >= most_base));
}

uint64_t sl_source_batch_limit(const struct sl_node *src)
{
    const struct sl_pipeline *pl = src->pl;
    bool unknown;
    uint32_t blind;

    if (src->ngrowth == 0) {
        return UINT64_MAX;
    }
    uint32_t growth = most_growth(src, &unknown, &blind);
    if (unknown) {
        return 1; /* a stage not called yet: a record at a time */
    }
    uint64_t limit =
        growth != 0 ? (uint64_t)pl->block_plan * pl->block_factor * 16 / growth : UINT64_MAX;
    if (blind <= SL_GROWTH_BLIND) {
        uint64_t most = (uint64_t)SL_GROWTH_BLIND_BYTES >> (SL_GROWTH_BLIND - blind);
        limit = limit < most ? limit : most;
    }
    return limit > 0 ? limit : 1;
}
