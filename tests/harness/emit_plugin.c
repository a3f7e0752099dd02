/* SPDX-License-Identifier: MIT */
/* A stage `explode` that adds `copies` records per input record, as a
 * split or explode plugin does: each a copy of its input's fields with
 * `n` set to 1..copies (the input keeps no `n`). For the memory tests of
 * records added by plugins (tests/integration/test_plugin_emit_memory.sh):
 * one batch in becomes copies + 1 times its records out. A record whose
 * `copies` field is an int uses that instead of the option. Stateless. */
#include <sluice/plugin.h>
#include <stdio.h>
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

static int explode_process(struct sluice_stage *st, void *ctx, struct sluice_batch *batch)
{
    const struct explode_conf *conf = ctx;
    size_t n = host->batch_size(batch);

    (void)st;
    for (size_t i = 0; i < n; i++) {
        struct sluice_record *rec = host->batch_record(batch, i);
        struct sluice_value v;
        int64_t copies = conf->copies;
        if (host->get(rec, "copies", 6, &v) == 0 && v.type == SLUICE_TYPE_INT) {
            copies = v.u.i;
        }
        for (int64_t k = 1; k <= copies; k++) {
            struct sluice_record *copy = host->emit(batch, rec, true);
            struct sluice_value nv = {.type = SLUICE_TYPE_INT};
            nv.u.i = k;
            if (copy == NULL || host->set(batch, copy, "n", 1, &nv) != 0) {
                return SLUICE_ENOMEM;
            }
        }
    }
    return 0;
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
