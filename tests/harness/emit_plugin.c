/* SPDX-License-Identifier: MIT */
/* A stage `explode` that adds `copies` records per input record, as a
 * split or explode plugin does: each a copy of its input's fields with
 * `n` set to 1..copies (the input keeps no `n`). For the memory tests of
 * records added by plugins (tests/integration/test_plugin_emit_memory.sh):
 * one batch in becomes copies + 1 times its records out. A record whose
 * `copies` field is an int uses that instead of the option. When the call
 * runs out of room (host->emit_full, ABI 1.2), the record's copies are
 * dropped and it is dead-lettered. Stateless. */
#include <sluice/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct explode_conf {
    int64_t copies;
};

/* clang-format off */
static const struct sluice_option explode_options[] = {
    SLUICE_OPT_ROW(struct explode_conf, copies, SLUICE_OPT_INT, "1", 0, 1e6, NULL, 0,
                   "Records added per input record."),
    {0},
};
/* clang-format on */

static const struct sluice_host_api *host;

static int explode_init(
    struct sluice_stage *st, const void *conf, void **ret_ctx, char *errbuf, size_t errbuf_len)
{
    (void)st;
    (void)errbuf;
    (void)errbuf_len;
    *ret_ctx = (void *)conf;
    return 0;
}

/* The call ran out of room while rec's copies were made: they go, and rec
 * becomes a dead letter. 0, or an error when that is not what happened. */
static int give_up(struct sluice_stage *st,
                   struct sluice_batch *batch,
                   struct sluice_record *rec,
                   struct sluice_record **made,
                   size_t nmade)
{
    if (!SLUICE_HOST_HAS(host, emit_full) || !host->emit_full(batch)) {
        return SLUICE_ENOMEM;
    }
    for (size_t j = 0; j < nmade; j++) {
        host->drop(batch, made[j]);
    }
    return host->dead(st, batch, rec, "explode: too many copies for one call");
}

static int explode_process(struct sluice_stage *st, void *ctx, struct sluice_batch *batch)
{
    const struct explode_conf *conf = ctx;
    size_t n = host->batch_size(batch);
    struct sluice_record **made = NULL; /* the copies of the record being exploded */
    size_t cap = 0;
    int rc = 0;

    for (size_t i = 0; i < n && rc == 0; i++) {
        struct sluice_record *rec = host->batch_record(batch, i);
        struct sluice_value v;
        int64_t copies = conf->copies;
        size_t nmade = 0;
        if (host->get(rec, "copies", 6, &v) == 0 && v.type == SLUICE_TYPE_INT) {
            copies = v.u.i;
        }
        for (int64_t k = 1; k <= copies && rc == 0; k++) {
            struct sluice_record *copy = host->emit(batch, rec, true);
            struct sluice_value nv = {.type = SLUICE_TYPE_INT};
            nv.u.i = k;
            if (copy != NULL && nmade == cap) {
                cap = cap != 0 ? cap * 2 : 64;
                struct sluice_record **grown = realloc(made, cap * sizeof(*made));
                if (grown == NULL) {
                    rc = SLUICE_ENOMEM;
                    break;
                }
                made = grown;
            }
            if (copy != NULL) {
                made[nmade++] = copy;
            }
            if (copy == NULL || host->set(batch, copy, "n", 1, &nv) != 0) {
                rc = give_up(st, batch, rec, made, nmade);
                break;
            }
        }
    }
    free(made);
    return rc;
}

static void explode_fini(void *ctx)
{
    (void)ctx;
}

static const struct sluice_stage_def explode_stage = {
    .abi_version = SLUICE_ABI_VERSION,
    .struct_size = sizeof(struct sluice_stage_def),
    .name = "explode",
    .description = "Adds `copies` copies of each record, numbered by `n`.",
    .kind = SLUICE_KIND_TRANSFORM,
    .flags = SLUICE_STAGE_STATELESS,
    .conf_size = sizeof(struct explode_conf),
    .options = explode_options,
    .init = explode_init,
    .process = explode_process,
    .fini = explode_fini,
};

static const struct sluice_stage_def *const explode_stages[] = {&explode_stage, NULL};

static const struct sluice_plugin explode_plugin = {
    .abi_version = SLUICE_ABI_VERSION,
    .struct_size = sizeof(struct sluice_plugin),
    .name = "explode",
    .version = "0.1",
    .stages = explode_stages,
};

SLUICE_EXPORT const struct sluice_plugin *
sluice_plugin_entry(const struct sluice_host_api *api, char *errbuf, size_t errbuf_len)
{
    (void)errbuf;
    (void)errbuf_len;
    host = api;
    return &explode_plugin;
}
