/* SPDX-License-Identifier: MIT */
/* End-of-run summary table (see summary.h). */
#include "summary.h"

#include "buf.h"
#include "json.h"
#include "log.h"
#include "sink.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* The sink node's record latencies (or, commits: its write times), or
 * NULL (not a sink, the dead-letter store, nothing written). */
static const struct sl_latency *
latency_of(const struct sl_pipeline *pl, const struct sl_node *node, bool commits)
{
    if (node->cn->kind != SLUICE_KIND_SINK || node == pl->dead_letter || node->state == NULL) {
        return NULL;
    }
    const struct sl_sink *sink = sl_sink_of((struct sl_node *)node);
    const struct sl_latency *h = commits ? &sink->commit : &sink->latency;
    return atomic_load_explicit(&h->total, memory_order_relaxed) > 0 ? h : NULL;
}

/* "p50 X, p99 Y, max Z" in ms, as text or JSON members. */
static void format_quantiles(const struct sl_latency *h, bool json, char *out, size_t len)
{
    snprintf(out, len,
             json ? "\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f"
                  : "p50 %.3f ms, p99 %.3f ms, max %.3f ms",
             (double)sl_latency_quantile(h, 0.5) / 1e3, (double)sl_latency_quantile(h, 0.99) / 1e3,
             (double)atomic_load(&h->max_us) / 1e3);
}

static const char *kind_name(enum sluice_stage_kind kind)
{
    return kind == SLUICE_KIND_SOURCE ? "source" : kind == SLUICE_KIND_SINK ? "sink" : "stage";
}

static int format_json(const struct sl_pipeline *pl, struct sl_buf *buf);

int sl_summary_node_counts(struct sl_buf *buf,
                           const struct sl_pipeline *pl,
                           const struct sl_node *node,
                           const char *open)
{
    int rc = sl_buf_appendf(buf, "%s\"kind\":\"%s\",\"type\":", open,
                            node == pl->dead_letter ? "dlq" : kind_name(node->cn->kind));

    rc = rc != 0 ? rc
                 : sl_json_write_string(buf, node->type->def.name, strlen(node->type->def.name));
    return rc != 0 ? rc
                   : sl_buf_appendf(
                         buf,
                         ",\"in\":%llu,\"out\":%llu,\"dropped\":%llu,\"shed\":%llu,\"dead\":%llu,"
                         "\"added\":%llu",
                         (unsigned long long)atomic_load(&node->c.in),
                         (unsigned long long)atomic_load(&node->c.out),
                         (unsigned long long)atomic_load(&node->c.dropped),
                         (unsigned long long)atomic_load(&node->c.shed),
                         (unsigned long long)atomic_load(&node->c.dead),
                         (unsigned long long)atomic_load(&node->c.added));
}

/* --log-format json: the summary as one log line, its JSON form under
 * "summary". */
static void log_json(const struct sl_pipeline *pl)
{
    struct sl_buf buf = {0};
    int rc = sl_buf_appendf(&buf, ",\"summary\":");

    rc = rc != 0 ? rc : format_json(pl, &buf);
    if (rc == 0) {
        if (buf.len > 0 && buf.data[buf.len - 1] == '\n') {
            buf.data[--buf.len] = '\0';
        }
        sl_log_json_line("info", "summary", buf.data);
    } else {
        sl_log_json_line("error", "summary: out of memory", NULL);
    }
    sl_buf_release(&buf);
}

void sl_summary_print(const struct sl_pipeline *pl, FILE *out)
{
    if (sl_log_is_json()) {
        log_json(pl);
        return;
    }
    sl_summary_print_counts(pl, out, pl->end_ns ? pl->end_ns : sl_now_ns());
    for (size_t i = 0; i < pl->nnodes; i++) {
        if (pl->nodes[i].type->summary != NULL) {
            pl->nodes[i].type->summary((struct sl_node *)&pl->nodes[i], out);
        }
    }
    for (size_t i = 0; i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        if (node->tuner != NULL) {
            fprintf(out, "%s: workers auto (%u..%u): final %u, peak %u\n", node->name,
                    node->tuner->min, node->tuner->max, atomic_load(&node->workers),
                    atomic_load(&node->workers_peak));
        }
        const struct sl_latency *h = latency_of(pl, node, false);
        const struct sl_latency *c = latency_of(pl, node, true);
        if (h != NULL && c != NULL) {
            char lat[128], com[128];
            format_quantiles(h, false, lat, sizeof(lat));
            format_quantiles(c, false, com, sizeof(com));
            fprintf(out, "%s: latency from source read to commit: %s; %llu writes took %s\n",
                    node->name, lat, (unsigned long long)atomic_load(&c->total), com);
        }
    }
    int now = 0, peak = 0;
    uint64_t started = 0;
    sl_sched_blocking_threads(pl->sched, &now, &peak, &started);
    if (started > 0) {
        /* Ten fields: scripts take eight-field lines for node rows. */
        fprintf(out, "blocking threads (%s): peak %d, now %d, started %llu\n",
                pl->conf->blocking_threads > 0 ? "fixed" : "on demand", peak, now,
                (unsigned long long)started);
    }
    fprintf(out, "elapsed %.3f s, peak in flight %.1f MiB\n",
            (double)((pl->end_ns ? pl->end_ns : sl_now_ns()) - pl->start_ns) / 1e9,
            (double)atomic_load(&pl->flow.peak) / (1024.0 * 1024.0));
}

void sl_summary_print_counts(const struct sl_pipeline *pl, FILE *out, uint64_t end)
{
    if (sl_log_is_json()) {
        log_json(pl);
        return;
    }
    double secs = (double)(end - pl->start_ns) / 1e9;

    if (secs <= 0) {
        secs = 1e-9;
    }
    /* The shed column only where a node can shed (when_full). */
    bool shedding = false;
    for (size_t i = 0; i < pl->nnodes; i++) {
        shedding |= pl->nodes[i].when_full != SL_WHEN_FULL_BLOCK;
    }
    fprintf(out, "%-20s %-7s %-10s %12s %12s %10s", "node", "kind", "type", "in", "out", "dropped");
    if (shedding) {
        fprintf(out, " %10s", "shed");
    }
    fprintf(out, " %10s %12s\n", "dead", "rate/s");
    bool replays = false;
    for (size_t i = 0; i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        uint64_t in = atomic_load(&node->c.in);
        uint64_t o = atomic_load(&node->c.out);
        fprintf(out, "%-20s %-7s %-10s %12llu %12llu %10llu", node->name,
                node == pl->dead_letter ? "dlq" : kind_name(node->cn->kind), node->type->def.name,
                (unsigned long long)in, (unsigned long long)o,
                (unsigned long long)atomic_load(&node->c.dropped));
        if (shedding) {
            fprintf(out, " %10llu", (unsigned long long)atomic_load(&node->c.shed));
        }
        fprintf(out, " %10llu %12.0f\n", (unsigned long long)atomic_load(&node->c.dead),
                (double)in / secs);
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
        uint64_t done = atomic_load(&node->c.out) + atomic_load(&node->c.dropped) +
                        atomic_load(&node->c.shed) + atomic_load(&node->c.dead);
        uint64_t in = atomic_load(&node->c.in) + atomic_load(&node->c.added);
        if (in > done) {
            fprintf(out,
                    "%s: %llu record(s) not finished when the run ended (not committed: the "
                    "next run reads them again)\n",
                    node->name, (unsigned long long)(in - done));
        }
    }
}

/* The summary as one JSON object in buf. */
static int format_json(const struct sl_pipeline *pl, struct sl_buf *buf)
{
    uint64_t end = pl->end_ns ? pl->end_ns : sl_now_ns();
    int blk_now = 0, blk_peak = 0;
    uint64_t blk_started = 0;
    struct rusage ru;
    int rc;

    (void)getrusage(RUSAGE_SELF, &ru);
    sl_sched_blocking_threads(pl->sched, &blk_now, &blk_peak, &blk_started);
    rc = sl_buf_appendf(buf,
                        "{\"elapsed_s\":%.6f,\"peak_rss_bytes\":%llu,\"peak_in_flight_bytes\":%llu,"
                        "\"blocking_threads\":{\"peak\":%d,\"final\":%d,\"started\":%llu},"
                        "\"nodes\":{",
                        (double)(end - pl->start_ns) / 1e9,
                        (unsigned long long)ru.ru_maxrss * 1024ull,
                        (unsigned long long)atomic_load(&pl->flow.peak), blk_peak, blk_now,
                        (unsigned long long)blk_started);
    for (size_t i = 0; rc == 0 && i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        rc = i > 0 ? sl_buf_putc(buf, ',') : 0;
        rc = rc != 0 ? rc : sl_json_write_string(buf, node->name, strlen(node->name));
        rc = rc != 0 ? rc : sl_buf_putc(buf, ':');
        rc = rc != 0 ? rc : sl_summary_node_counts(buf, pl, node, "{");
        rc = rc != 0
                 ? rc
                 : sl_buf_appendf(buf,
                                  ",\"replayed\":%llu,\"batches\":%llu,\"workers_auto\":%s,"
                                  "\"workers_final\":%u,\"workers_peak\":%u",
                                  (unsigned long long)atomic_load(&node->c.replayed),
                                  (unsigned long long)atomic_load(&node->c.batches),
                                  node->tuner != NULL ? "true" : "false",
                                  atomic_load(&node->workers), atomic_load(&node->workers_peak));
        /* Per priority level, where a node can shed: {"0": n, ...}. */
        for (int l = 0; rc == 0 && node->when_full != SL_WHEN_FULL_BLOCK && l < SL_PRIORITY_LEVELS;
             l++) {
            rc = sl_buf_appendf(buf, "%s\"%d\":%llu", l == 0 ? ",\"shed_by_priority\":{" : ",", l,
                                (unsigned long long)atomic_load(&node->c.shed_level[l]));
            rc = rc == 0 && l == SL_PRIORITY_LEVELS - 1 ? sl_buf_putc(buf, '}') : rc;
        }
        const struct sl_latency *h = latency_of(pl, node, false);
        const struct sl_latency *c = latency_of(pl, node, true);
        if (rc == 0 && h != NULL && c != NULL) {
            char lat[128], com[128];
            format_quantiles(h, true, lat, sizeof(lat));
            format_quantiles(c, true, com, sizeof(com));
            rc = sl_buf_appendf(buf, ",\"latency_ms\":{%s},\"writes\":%llu,\"write_ms\":{%s}", lat,
                                (unsigned long long)atomic_load(&c->total), com);
        }
        if (rc == 0 && node->type->summary_json != NULL) {
            rc = node->type->summary_json((struct sl_node *)node, buf);
        }
        rc = rc != 0 ? rc : sl_buf_putc(buf, '}');
    }
    return rc != 0 ? rc : sl_buf_append(buf, "}}\n", 3);
}

int sl_summary_write_json(const struct sl_pipeline *pl, const char *path, struct sl_err *err)
{
    struct sl_buf buf = {0};
    int rc = format_json(pl, &buf);
    FILE *f = NULL;

    if (rc != 0) {
        sl_buf_release(&buf);
        return sl_err_set(err, rc, "--summary-json: %s", sl_strerror(rc));
    }
    f = fopen(path, "w");
    if (f == NULL || fwrite(buf.data, 1, buf.len, f) != buf.len) {
        rc = sl_err_set(err, SL_EIO, "--summary-json: %s: %s", path, strerror(errno));
    }
    if (f != NULL && fclose(f) != 0 && rc == 0) {
        rc = sl_err_set(err, SL_EIO, "--summary-json: %s: %s", path, strerror(errno));
    }
    sl_buf_release(&buf);
    return rc;
}
