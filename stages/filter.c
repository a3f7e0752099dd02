/* SPDX-License-Identifier: MIT */
/* `filter`: keeps the records for which `where` is true. false or null drop
 * the record (counted); a non-bool result or an evaluation error sends it to
 * the dead letters with the reason. Runs on workers, stateless. */
#include "expr.h"
#include "runtime.h"

#include <stdio.h>

struct filter_conf {
    struct sluice_expr *where;
};

/* clang-format off */
static const struct sluice_option filter_options[] = {
    SLUICE_OPT_ROW(struct filter_conf, where, SLUICE_OPT_EXPR, NULL, 0, 0, NULL,
                   SLUICE_OPT_REQUIRED, "Keep records for which this expression is true."),
    {0},
};
/* clang-format on */

static int filter_process(struct sl_node *node, struct sl_batch *batch)
{
    const struct filter_conf *conf = node->cn->conf;
    const struct sl_expr *where = (const struct sl_expr *)conf->where;
    uint32_t kept = 0;
    uint64_t dropped = 0;

    /* On failure the input keeps our reference (and its memory charge):
     * process() owns it, so drop it. */
    struct sl_batch *writable = sl_batch_make_writable(batch);
    if (writable == NULL) {
        sl_batch_unref(batch);
        return SL_ENOMEM;
    }
    batch = writable;
    for (uint32_t i = 0; i < batch->n; i++) {
        struct sl_record *rec = &batch->recs[i];
        struct sl_value v;
        struct sl_err err;
        int rc = sl_expr_eval(where, rec, &batch->arena, &v, &err);
        if (rc == SL_ENOMEM) {
            sl_batch_unref(batch);
            return rc;
        }
        if (rc == 0 && v.type == SL_TYPE_BOOL) {
            if (v.u.b) {
                batch->recs[kept++] = *rec;
            } else {
                dropped++;
            }
            continue;
        }
        if (rc == 0 && v.type == SL_TYPE_NULL) {
            dropped++;
            continue;
        }
        char reason[300];
        if (rc == 0) {
            snprintf(reason, sizeof(reason), "where: expected a bool, got %s",
                     sl_type_name((enum sl_type)v.type));
        } else {
            snprintf(reason, sizeof(reason), "where: %s", err.msg);
        }
        if (sl_node_dead(node, batch, rec, reason) != 0) {
            sl_batch_unref(batch);
            return SL_ENOMEM;
        }
    }
    batch->n = kept;
    atomic_fetch_add_explicit(&node->c.dropped, dropped, memory_order_relaxed);
    sl_node_emit(node, 0, batch);
    return 0;
}

const struct sl_node_type sl_stage_filter = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "filter",
            .description = "Keeps records matching an expression.",
            .kind = SLUICE_KIND_TRANSFORM,
            .flags = SLUICE_STAGE_STATELESS,
            .conf_size = sizeof(struct filter_conf),
            .options = filter_options,
        },
    .process = filter_process,
};
