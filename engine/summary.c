/* SPDX-License-Identifier: MIT */
/* End-of-run summary table (see summary.h). */
#include "summary.h"

static const char *kind_name(enum sluice_stage_kind kind)
{
    return kind == SLUICE_KIND_SOURCE ? "source" : kind == SLUICE_KIND_SINK ? "sink" : "stage";
}

void sl_summary_print(const struct sl_pipeline *pl, FILE *out)
{
    sl_summary_print_counts(pl, out, pl->end_ns ? pl->end_ns : sl_now_ns());
    for (size_t i = 0; i < pl->nnodes; i++) {
        if (pl->nodes[i].type->summary != NULL) {
            pl->nodes[i].type->summary((struct sl_node *)&pl->nodes[i], out);
        }
    }
    fprintf(out, "elapsed %.3f s, peak in flight %.1f MiB\n",
            (double)((pl->end_ns ? pl->end_ns : sl_now_ns()) - pl->start_ns) / 1e9,
            (double)atomic_load(&pl->flow.peak) / (1024.0 * 1024.0));
}

void sl_summary_print_counts(const struct sl_pipeline *pl, FILE *out, uint64_t end)
{
    double secs = (double)(end - pl->start_ns) / 1e9;

    if (secs <= 0) {
        secs = 1e-9;
    }
    fprintf(out, "%-20s %-7s %-10s %12s %12s %10s %10s %12s\n", "node", "kind", "type", "in", "out",
            "dropped", "dead", "rate/s");
    bool replays = false;
    for (size_t i = 0; i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        uint64_t in = atomic_load(&node->c.in);
        uint64_t o = atomic_load(&node->c.out);
        fprintf(out, "%-20s %-7s %-10s %12llu %12llu %10llu %10llu %12.0f\n", node->name,
                node == pl->dead_letter ? "dlq" : kind_name(node->cn->kind), node->type->def.name,
                (unsigned long long)in, (unsigned long long)o,
                (unsigned long long)atomic_load(&node->c.dropped),
                (unsigned long long)atomic_load(&node->c.dead), (double)in / secs);
        replays |= atomic_load(&node->c.replayed) > 0;
    }
    /* Replays are counted in dropped: say which ones, so that a re-run
     * that wrote nothing new does not look like a loss. */
    for (size_t i = 0; replays && i < pl->nnodes; i++) {
        uint64_t r = atomic_load(&pl->nodes[i].c.replayed);
        if (r > 0) {
            fprintf(out, "%s: %llu of the dropped records were already stored (replayed input)\n",
                    pl->nodes[i].name, (unsigned long long)r);
        }
    }
    /* A run that failed or was cut short by the drain deadline leaves
     * records between in and the rest: say so, so the counts add up. */
    for (size_t i = 0; i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        uint64_t done =
            atomic_load(&node->c.out) + atomic_load(&node->c.dropped) + atomic_load(&node->c.dead);
        uint64_t in = atomic_load(&node->c.in);
        if (in > done) {
            fprintf(out,
                    "%s: %llu record(s) not finished when the run ended (not committed: the "
                    "next run reads them again)\n",
                    node->name, (unsigned long long)(in - done));
        }
    }
}
