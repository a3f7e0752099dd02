/* SPDX-License-Identifier: MIT */
/* `route`: sends each record to every named route whose condition is true
 * (outputs `<node>.<route>`), and records matching none to
 * `<node>._unmatched`. Output batches share the input's memory (they hold a
 * reference to it). Consuming the node itself (`inputs: [node]`) gets every
 * record. A condition that errors dead-letters the record. Stateless. */
#include "expr.h"
#include "mem.h"
#include "runtime.h"

#include <stdio.h>
#include <string.h>

struct route_conf {
    struct sluice_map routes;
};

/* clang-format off */
static const struct sluice_option route_options[] = {
    SLUICE_OPT_ROW(struct route_conf, routes, SLUICE_OPT_EXPR_MAP, NULL, 0, 0, NULL,
                   SLUICE_OPT_REQUIRED, "Named conditions: route name -> expression."),
    {0},
};
/* clang-format on */

static size_t route_outputs(const void *conf, const char **names, size_t max)
{
    const struct route_conf *rc = conf;
    size_t n = 0;

    for (size_t i = 0; i < rc->routes.n && n < max; i++) {
        names[n++] = rc->routes.keys[i];
    }
    if (n < max) {
        names[n++] = "_unmatched";
    }
    return n;
}

static int route_check(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct route_conf *conf = cn->conf;

    if (conf->routes.n == 0 || conf->routes.n > 62) {
        return sl_err_set_at(err, cn->file, cn->line, cn->col, cn->name,
                             "route needs between 1 and 62 routes");
    }
    for (size_t i = 0; i < conf->routes.n; i++) {
        if (strcmp(conf->routes.keys[i], "_unmatched") == 0) {
            return sl_err_set_at(err, cn->file, cn->line, cn->col, cn->name,
                                 "'_unmatched' is reserved for records matching no route");
        }
    }
    return 0;
}

/* Evaluates every condition on rec; sets bit i of *ret_mask when route i
 * matches. Returns 0 or SL_EDATA/SL_ENOMEM with reason. */
static int match(const struct route_conf *conf,
                 struct sl_record *rec,
                 struct sl_arena *arena,
                 uint64_t *ret_mask,
                 char *reason,
                 size_t len)
{
    uint64_t mask = 0;

    for (size_t i = 0; i < conf->routes.n; i++) {
        struct sl_value v;
        struct sl_err err;
        int rc = sl_expr_eval((const struct sl_expr *)conf->routes.exprs[i], rec, arena, &v, &err);
        if (rc != 0) {
            snprintf(reason, len, "routes.%s: %s", conf->routes.keys[i], err.msg);
            return rc;
        }
        if (v.type == SL_TYPE_BOOL) {
            mask |= v.u.b ? (uint64_t)1 << i : 0;
        } else if (v.type != SL_TYPE_NULL) {
            snprintf(reason, len, "routes.%s: expected a bool, got %s", conf->routes.keys[i],
                     sl_type_name((enum sl_type)v.type));
            return SL_EDATA;
        }
    }
    *ret_mask = mask;
    return 0;
}

static int route_process(struct sl_node *node, struct sl_batch *batch)
{
    const struct route_conf *conf = node->cn->conf;
    size_t nroutes = conf->routes.n;
    struct sl_batch *child[64] = {0};
    char reason[320];
    uint64_t consumed = 0, out = 0, dropped = 0;
    int rc = 0;

    /* On failure the input keeps our reference (and its memory charge):
     * process() owns it, so drop it. */
    struct sl_batch *writable = sl_batch_make_writable(batch);
    if (writable == NULL) {
        sl_batch_unref(batch);
        return SL_ENOMEM;
    }
    batch = writable;
    for (size_t o = 1; o < node->nouts; o++) {
        consumed |= node->outs[o].n > 0 ? (uint64_t)1 << (o - 1) : 0;
        if ((child[o] = sl_batch_new(batch->flow)) == NULL) {
            rc = SL_ENOMEM;
            goto out;
        }
        sl_batch_copy_position(child[o], batch);
        child[o]->parent = sl_batch_ref(batch);
    }
    for (uint32_t i = 0; i < batch->n; i++) {
        struct sl_record *rec = &batch->recs[i];
        uint64_t mask = 0;
        rc = match(conf, rec, &batch->arena, &mask, reason, sizeof(reason));
        if (rc == SL_EDATA) {
            rc = sl_node_dead(node, batch, rec, reason);
            rec->nfields = UINT32_MAX; /* marks it gone from the pass-through output */
        } else if (rc == 0) {
            mask = mask != 0 ? mask : (uint64_t)1 << nroutes; /* _unmatched */
            /* Out once if any consumer gets it, else dropped: in = out +
             * dropped + dead, however many routes it matched. */
            if (node->outs[0].n > 0 || (mask & consumed) != 0) {
                out++;
            } else {
                dropped++;
            }
            for (size_t r = 0; r <= nroutes && rc == 0; r++) {
                struct sl_record *copy;
                if ((mask & ((uint64_t)1 << r)) == 0) {
                    continue;
                }
                copy = sl_batch_add(child[1 + r]);
                if (copy == NULL) {
                    rc = SL_ENOMEM;
                } else {
                    rc = sl_record_copy_fields(copy, rec, &child[1 + r]->arena);
                }
            }
        }
        if (rc != 0) {
            goto out;
        }
    }
    /* Dead letters travel on the first path only, as at every fan-out
     * (sl_batch_fork): here the first consumed output. */
    if (node->outs[0].n == 0) {
        for (size_t o = 1; o < node->nouts; o++) {
            if (node->outs[o].n > 0 && batch->ndead > 0) {
                child[o]->dead = batch->dead;
                child[o]->ndead = batch->ndead;
                child[o]->dead_cap = batch->dead_cap;
                batch->dead = NULL;
                batch->ndead = batch->dead_cap = 0;
                break;
            }
        }
    }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < batch->n; i++) {
        if (batch->recs[i].nfields != UINT32_MAX) {
            batch->recs[kept++] = batch->recs[i];
        }
    }
    batch->n = kept;
    atomic_fetch_add_explicit(&node->c.out, out, memory_order_relaxed);
    atomic_fetch_add_explicit(&node->c.dropped, dropped, memory_order_relaxed);
    for (size_t o = 1; o < node->nouts; o++) {
        sl_node_emit(node, o, child[o]);
        child[o] = NULL;
    }
    sl_node_emit(node, 0, batch);
    return 0;
out:
    for (size_t o = 1; o < node->nouts; o++) {
        sl_batch_unref(child[o]);
    }
    sl_batch_unref(batch);
    return rc;
}

const struct sl_node_type sl_stage_route = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "route",
            .description = "Sends records to named outputs by condition.",
            .kind = SLUICE_KIND_TRANSFORM,
            .flags = SLUICE_STAGE_STATELESS,
            .conf_size = sizeof(struct route_conf),
            .options = route_options,
        },
    .check = route_check,
    .outputs = route_outputs,
    .process = route_process,
};
