/* SPDX-License-Identifier: MIT */
/* `null` sink: consumes and counts records, keeps nothing (benchmarks,
 * dry runs). Ordering and batching still run, like any sink. */
#include "mem.h"
#include "sink.h"

struct null_conf {
    int unused; /* the type has no options */
};

static const struct sluice_option null_options[] = {{0}};

static int null_write(struct sl_sink *sink, struct sl_batch *const *batches, size_t n)
{
    (void)sink;
    (void)batches;
    (void)n;
    return 0;
}

static int null_open(struct sl_node *node, struct sl_err *err)
{
    struct sl_sink *sink = sl_malloc(sizeof(*sink));

    if (sink == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    sl_sink_init(sink, node, null_write, NULL);
    node->state = sink;
    return 0;
}

static void null_close(struct sl_node *node)
{
    if (node->state != NULL) {
        sl_sink_release(node->state);
        sl_free(node->state);
        node->state = NULL;
    }
}

const struct sl_node_type sl_stage_null = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "null",
            .description = "Discards records (counts them).",
            .kind = SLUICE_KIND_SINK,
            .conf_size = sizeof(struct null_conf),
            .options = null_options,
        },
    .open = null_open,
    .process = sl_sink_node_process,
    .flush = sl_sink_node_flush,
    .close = null_close,
};
