/* SPDX-License-Identifier: MIT */
/* `map`: reshapes records. In order: `set` evaluates each expression (in
 * file order, so a later one sees an earlier one's result) into a field,
 * `rename` renames fields (old: new), `drop` removes fields, `keep` removes
 * every field not listed. An evaluation error dead-letters the record. Runs
 * on workers, stateless. */
#include "expr.h"
#include "runtime.h"

#include <stdio.h>
#include <string.h>

struct map_conf {
    struct sluice_map set;
    struct sluice_map rename;
    struct sluice_list drop;
    struct sluice_list keep;
};

/* clang-format off */
static const struct sluice_option map_options[] = {
    SLUICE_OPT_ROW(struct map_conf, set, SLUICE_OPT_EXPR_MAP, NULL, 0, 0, NULL, 0,
                   "Fields to set: name -> expression."),
    SLUICE_OPT_ROW(struct map_conf, rename, SLUICE_OPT_MAP, NULL, 0, 0, NULL, 0,
                   "Fields to rename: old name -> new name."),
    SLUICE_OPT_ROW(struct map_conf, drop, SLUICE_OPT_LIST, NULL, 0, 0, NULL, 0,
                   "Fields to remove."),
    SLUICE_OPT_ROW(struct map_conf, keep, SLUICE_OPT_LIST, NULL, 0, 0, NULL, 0,
                   "If given, only these fields are kept."),
    {0},
};
/* clang-format on */

static int map_check(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct map_conf *conf = cn->conf;

    if (conf->set.n == 0 && conf->rename.n == 0 && conf->drop.n == 0 && conf->keep.n == 0) {
        return sl_err_set_at(err, cn->file, cn->line, cn->col, cn->name,
                             "map needs at least one of set, rename, drop, keep");
    }
    return 0;
}

static bool listed(const struct sluice_list *list, const char *name, uint32_t len)
{
    for (size_t i = 0; i < list->n; i++) {
        if (strlen(list->items[i]) == len && memcmp(list->items[i], name, len) == 0) {
            return true;
        }
    }
    return false;
}

/* Returns 0, SL_EDATA (reason filled) or SL_ENOMEM. */
static int map_record(const struct map_conf *conf,
                      struct sl_record *rec,
                      struct sl_arena *arena,
                      char *reason,
                      size_t reason_len)
{
    for (size_t i = 0; i < conf->set.n; i++) {
        struct sl_value v;
        struct sl_err err;
        int rc = sl_expr_eval((const struct sl_expr *)conf->set.exprs[i], rec, arena, &v, &err);
        if (rc != 0) {
            snprintf(reason, reason_len, "set.%s: %s", conf->set.keys[i], err.msg);
            return rc;
        }
        const char *name = conf->set.keys[i];
        if (sl_record_set(rec, arena, name, (uint32_t)strlen(name), v) != 0) {
            return SL_ENOMEM;
        }
    }
    for (size_t i = 0; i < conf->rename.n; i++) {
        const char *from = conf->rename.keys[i];
        const char *to = conf->rename.values[i];
        struct sl_field *f = sl_record_find(rec, from, (uint32_t)strlen(from));
        if (f != NULL) {
            struct sl_value v = f->val;
            sl_record_remove(rec, from, (uint32_t)strlen(from));
            if (sl_record_set(rec, arena, to, (uint32_t)strlen(to), v) != 0) {
                return SL_ENOMEM;
            }
        }
    }
    for (size_t i = 0; i < conf->drop.n; i++) {
        sl_record_remove(rec, conf->drop.items[i], (uint32_t)strlen(conf->drop.items[i]));
    }
    if (conf->keep.n > 0) {
        uint32_t kept = 0;
        for (uint32_t i = 0; i < rec->nfields; i++) {
            if (listed(&conf->keep, rec->fields[i].name, rec->fields[i].name_len)) {
                rec->fields[kept++] = rec->fields[i];
            }
        }
        rec->nfields = kept;
    }
    return 0;
}

static int map_process(struct sl_node *node, struct sl_batch *batch)
{
    const struct map_conf *conf = node->cn->conf;
    uint32_t kept = 0;
    char reason[320];

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
        /* The dead letter keeps the record's place and raw text; its
         * fields would be half mapped (edited in place). */
        struct sl_record before = *rec;
        before.fields = NULL;
        before.nfields = before.cap = 0;
        int rc = map_record(conf, rec, &batch->arena, reason, sizeof(reason));
        if (rc == 0) {
            batch->recs[kept++] = *rec;
            continue;
        }
        if (rc != SL_EDATA || sl_node_dead(node, batch, &before, reason) != 0) {
            sl_batch_unref(batch);
            return SL_ENOMEM;
        }
    }
    batch->n = kept;
    sl_node_emit(node, 0, batch);
    return 0;
}

const struct sl_node_type sl_stage_map = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "map",
            .description = "Sets, renames, drops and keeps fields.",
            .kind = SLUICE_KIND_TRANSFORM,
            .flags = SLUICE_STAGE_STATELESS,
            .conf_size = sizeof(struct map_conf),
            .options = map_options,
        },
    .check = map_check,
    .process = map_process,
};
