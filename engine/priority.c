/* SPDX-License-Identifier: MIT */
/* Priority labels and splits of batches (see priority.h). */
#include "priority.h"

#include "expr.h"
#include "mem.h"
#include "runtime.h"

#include <stdio.h>
#include <string.h>

#define DEAD_LEVEL 0xFF

/* batch, or a copy of it the caller alone holds (its own struct: the level
 * is a field of it). NULL on OOM, batch released. */
static struct sl_batch *own(struct sl_batch *batch)
{
    /* Acquire: as sl_batch_make_writable, before we write the struct. */
    if (atomic_load_explicit(&batch->refs, memory_order_acquire) == 1) {
        return batch;
    }
    bool shell = batch->shell;
    struct sl_batch *copy = sl_batch_make_writable(batch);
    if (copy == NULL) {
        sl_batch_unref(batch);
        return NULL;
    }
    copy->shell = shell;
    return copy;
}

struct sl_batch *sl_priority_relabel(struct sl_batch *batch, uint8_t level)
{
    if (batch->level == level) {
        return batch;
    }
    batch = own(batch);
    if (batch != NULL) {
        batch->level = level;
    }
    return batch;
}

/* rec's level by expression e into *ret, or DEAD_LEVEL with the reason in
 * why. 0, or SL_ENOMEM. */
static int level_of(const struct sl_conf_node *cn,
                    const struct sl_record *rec,
                    struct sl_arena *arena,
                    uint8_t *ret,
                    char *why,
                    size_t why_len)
{
    struct sl_value v = {0};
    struct sl_err err = {0};
    int rc = sl_expr_eval(cn->priority_expr, rec, arena, &v, &err);

    *ret = DEAD_LEVEL;
    if (rc == SL_ENOMEM) {
        return rc;
    }
    if (rc != 0) {
        snprintf(why, why_len, "priority: %s", err.msg);
        return 0;
    }
    if (v.type == SL_TYPE_NULL) {
        v = sl_value_int(0);
    }
    if (v.type != SL_TYPE_INT) {
        snprintf(why, why_len, "priority: expected an int 0..%d, got %s", SL_PRIORITY_LEVELS - 1,
                 sl_type_name((enum sl_type)v.type));
        return 0;
    }
    if (v.u.i < 0 || v.u.i >= SL_PRIORITY_LEVELS || ((cn->priority_levels >> v.u.i) & 1u) == 0) {
        snprintf(why, why_len, "priority: %lld is not a level this node gives (0..%d)",
                 (long long)v.u.i, SL_PRIORITY_LEVELS - 1);
        return 0;
    }
    *ret = (uint8_t)v.u.i;
    return 0;
}

/* An empty part at level: a shell with batch's position. */
static struct sl_batch *empty_part(const struct sl_batch *batch, uint8_t level)
{
    struct sl_batch *part = sl_batch_new(batch->flow);

    if (part != NULL) {
        sl_batch_copy_position(part, batch);
        part->level = level;
        part->shell = true;
    }
    return part;
}

static void release_parts(struct sl_batch *parts[SL_PRIORITY_LEVELS])
{
    for (int l = 0; l < SL_PRIORITY_LEVELS; l++) {
        parts[l] = sl_batch_unref(parts[l]);
    }
}

/* Parts for several levels (or dead letters): new batches reading batch's
 * bytes. lv: each record's level. */
static int split_records(const struct sl_conf_node *cn,
                         const char *node,
                         const char *source,
                         struct sl_batch *batch,
                         const uint8_t *lv,
                         struct sl_batch *parts[SL_PRIORITY_LEVELS],
                         uint32_t *ret_dead)
{
    int lowest = __builtin_ctz(cn->priority_levels);
    char why[300];
    int rc = 0;

    for (int l = 0; l < SL_PRIORITY_LEVELS; l++) {
        if (((cn->priority_levels >> l) & 1u) == 0) {
            continue;
        }
        if ((parts[l] = empty_part(batch, (uint8_t)l)) == NULL) {
            return SL_ENOMEM;
        }
    }
    /* The dead letters so far travel in the lowest level's part. */
    struct sl_batch *low = parts[lowest];
    low->dead = batch->dead;
    low->ndead = batch->ndead;
    low->dead_cap = batch->dead_cap;
    batch->dead = NULL;
    batch->ndead = batch->dead_cap = 0;
    for (uint32_t i = 0; i < batch->n && rc == 0; i++) {
        const struct sl_record *rec = &batch->recs[i];
        if (lv[i] == DEAD_LEVEL) {
            uint8_t again;
            /* The reason again (a second look that passes, as now() may,
             * keeps the first verdict). */
            snprintf(why, sizeof(why), "priority: not an int 0..%d", SL_PRIORITY_LEVELS - 1);
            rc = level_of(cn, rec, &batch->arena, &again, why, sizeof(why));
            if (rc == 0) {
                rc = sl_batch_add_dead(low, rec, node, source, "%s", why);
            }
            *ret_dead += rc == 0;
            continue;
        }
        struct sl_record *copy = sl_batch_add(parts[lv[i]]);
        if (copy != NULL && !batch->recs_borrowed) {
            /* The batch is ours alone and so are its records' field
             * arrays (a fork's are its parent's, read by other paths):
             * each record moves to one part, which keeps the arrays alive
             * through its parent. */
            *copy = *rec;
            continue;
        }
        rc = copy == NULL ? SL_ENOMEM : sl_record_copy_fields(copy, rec, &parts[lv[i]]->arena);
    }
    for (int l = 0; l < SL_PRIORITY_LEVELS; l++) {
        if (parts[l] != NULL) {
            parts[l]->shell = parts[l]->n == 0;
            /* Parts with records or dead letters read batch's bytes; an
             * empty one must not hold them all the way to the sinks. */
            if (parts[l]->n > 0 || parts[l]->ndead > 0) {
                parts[l]->parent = sl_batch_ref(batch);
            } else {
                sl_batch_drop_credit(parts[l]); /* it may outlive batch */
            }
        }
    }
    return rc;
}

int sl_priority_split(const struct sl_conf_node *cn,
                      const char *node,
                      const char *source,
                      struct sl_batch *batch,
                      struct sl_batch *parts[SL_PRIORITY_LEVELS],
                      uint32_t *ret_dead)
{
    uint8_t *lv = NULL;
    uint8_t first = (uint8_t)__builtin_ctz(cn->priority_levels);
    bool one = true; /* every record at one level */
    char why[300];
    int rc = 0;

    memset(parts, 0, SL_PRIORITY_LEVELS * sizeof(*parts));
    *ret_dead = 0;
    if ((batch = own(batch)) == NULL) {
        return SL_ENOMEM;
    }
    /* @priority in the expression: the level the batch has so far. */
    sl_expr_set_priority(batch->level);
    /* Batches hold about 1k records: the levels fit on the stack. */
    uint8_t on_stack[2048];
    lv = batch->n <= sizeof(on_stack) ? on_stack : sl_malloc(batch->n);
    if (lv == NULL) {
        sl_batch_unref(batch);
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < batch->n && rc == 0; i++) {
        rc = level_of(cn, &batch->recs[i], &batch->arena, &lv[i], why, sizeof(why));
        first = i == 0 ? lv[0] : first;
        one = one && lv[i] == first && lv[i] != DEAD_LEVEL;
    }
    if (rc == 0 && one) {
        /* The common case: no copy, the other levels get shells. */
        batch->level = first;
        for (int l = 0; l < SL_PRIORITY_LEVELS && rc == 0; l++) {
            if (l != first && ((cn->priority_levels >> l) & 1u) != 0 &&
                (parts[l] = empty_part(batch, (uint8_t)l)) == NULL) {
                rc = SL_ENOMEM;
            } else if (parts[l] != NULL) {
                sl_batch_drop_credit(parts[l]); /* a shell: it outlives batch */
            }
        }
        parts[first] = batch;
        batch = NULL;
    } else if (rc == 0) {
        rc = split_records(cn, node, source, batch, lv, parts, ret_dead);
    }
    if (lv != on_stack) {
        sl_free(lv);
    }
    sl_batch_unref(batch);
    if (rc != 0) {
        release_parts(parts);
        *ret_dead = 0;
    }
    return rc;
}

/* ==== Plans ==== */

/* Marks the nodes reachable from node downstream (down) or upstream. */
static void mark(const struct sl_node *node, bool down, unsigned char *seen)
{
    if (seen[node->index]) {
        return;
    }
    seen[node->index] = 1;
    if (!down) {
        for (size_t i = 0; i < node->nups; i++) {
            mark(node->ups[i], false, seen);
        }
        return;
    }
    for (size_t o = 0; o < node->nouts; o++) {
        for (size_t c = 0; c < node->outs[o].n; c++) {
            mark(node->outs[o].to[c], true, seen);
        }
    }
}

/* sink's plan for src into buf, or false when nothing between them sets a
 * priority. seen: scratch, 2 per node. */
static bool plan_of(const struct sl_node *nodes,
                    size_t nnodes,
                    const struct sl_node *sink,
                    uint32_t src,
                    unsigned char *seen,
                    char *buf,
                    size_t len)
{
    unsigned char *up = seen, *down = seen + nnodes;
    uint64_t h = 0xcbf29ce484222325ull;
    unsigned lanes = 0;
    bool any = false;

    memset(seen, 0, 2 * nnodes);
    mark(sink, false, up);
    mark(&nodes[src], true, down);
    /* Every node between them: a level may come from any of their
     * settings (a map's formula that a priority reads), not only from the
     * nodes that set one. */
    for (size_t i = 0; i < nnodes; i++) {
        const struct sl_conf_node *cn = nodes[i].cn;
        if (!up[i] || !down[i] || &nodes[i] == sink) {
            continue;
        }
        any |= cn->priority_levels != 0;
        h = sl_conf_node_digest(cn, h);
    }
    for (int l = 0; l < SL_PRIORITY_LEVELS; l++) {
        lanes |= sink->paths[src * SL_PRIORITY_LEVELS + l] > 0 ? 1u << l : 0;
    }
    snprintf(buf, len, "%x:%016llx", lanes, (unsigned long long)h);
    return any;
}

int sl_priority_plans(struct sl_node *nodes, size_t nnodes)
{
    unsigned char *seen = sl_malloc(2 * nnodes);
    char buf[SL_PRIORITY_PLAN_MAX];

    if (seen == NULL) {
        return SL_ENOMEM;
    }
    for (size_t s = 0; s < nnodes; s++) {
        struct sl_node *sink = &nodes[s];
        if (sink->cn->kind != SLUICE_KIND_SINK || sink->paths == NULL) {
            continue;
        }
        for (uint32_t src = 0; src < nnodes; src++) {
            if (nodes[src].cn->kind != SLUICE_KIND_SOURCE ||
                !plan_of(nodes, nnodes, sink, src, seen, buf, sizeof(buf))) {
                continue;
            }
            if (sink->plans == NULL &&
                (sink->plans = sl_calloc(nnodes, sizeof(*sink->plans))) == NULL) {
                sl_free(seen);
                return SL_ENOMEM;
            }
            if ((sink->plans[src] = sl_malloc(strlen(buf) + 1)) == NULL) {
                sl_free(seen);
                return SL_ENOMEM;
            }
            memcpy(sink->plans[src], buf, strlen(buf) + 1);
        }
    }
    sl_free(seen);
    return 0;
}

const char *sl_priority_plan(const struct sl_node *sink, uint32_t src)
{
    return sink->plans != NULL && src < sink->pl->nnodes ? sink->plans[src] : NULL;
}
