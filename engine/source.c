/* SPDX-License-Identifier: MIT */
/* Resume positions for sources (see source.h). */
#include "source.h"

#include "sink.h"

#include <stdio.h>
#include <string.h>

struct resume {
    int64_t pos;
    bool any;
    bool unknown; /* a sink without positions: start over */
    char fp[SL_FINGERPRINT_MAX];
    const struct sl_own_position *own; /* stands in for sinks without positions */
};

static void take(struct resume *r, int64_t pos, const char *fp)
{
    if (!r->any || pos < r->pos) {
        r->pos = pos;
        snprintf(r->fp, sizeof(r->fp), "%s", fp != NULL ? fp : "");
    }
    r->any = true;
}

static int visit(struct sl_node *node,
                 const char *source,
                 const char *stream,
                 int32_t partition,
                 struct resume *r,
                 struct sl_err *err)
{
    if (node->cn->kind == SLUICE_KIND_SINK) {
        struct sl_sink *sink = sl_sink_of(node);
        int64_t pos = 0;
        char fp[SL_FINGERPRINT_MAX] = "";
        if (sink == NULL || sink->position == NULL) {
            if (r->own != NULL) {
                take(r, r->own->pos, r->own->fingerprint);
            } else {
                r->unknown = true;
            }
            return 0;
        }
        int rc = sink->position(sink, source, stream, partition, &pos, fp, sizeof(fp), err);
        if (rc == SL_EOF) {
            r->unknown = true;
            return 0;
        }
        if (rc != 0) {
            return rc;
        }
        take(r, pos, fp);
        return 0;
    }
    for (size_t o = 0; o < node->nouts; o++) {
        for (size_t c = 0; c < node->outs[o].n; c++) {
            int rc = visit(node->outs[o].to[c], source, stream, partition, r, err);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

int sl_source_resume(struct sl_node *src,
                     const char *stream,
                     int32_t partition,
                     const struct sl_own_position *own,
                     int64_t *ret_pos,
                     bool *ret_known,
                     char *fingerprint,
                     size_t fingerprint_len,
                     struct sl_err *err)
{
    struct resume r = {.own = own};
    int rc = visit(src, src->name, stream, partition, &r, err);

    if (rc != 0) {
        return rc;
    }
    if (ret_known != NULL) {
        *ret_known = r.any && !r.unknown;
    }
    if (r.unknown || !r.any) {
        *ret_pos = 0;
        snprintf(fingerprint, fingerprint_len, "%s", r.any ? r.fp : "");
        return 0;
    }
    *ret_pos = r.pos;
    snprintf(fingerprint, fingerprint_len, "%s", r.fp);
    return 0;
}

struct streams_walk {
    const char *source;
    void (*fn)(void *arg, const char *stream, const char *fp);
    void *arg;
};

static int streams_visit(struct sl_node *node, const struct streams_walk *w, struct sl_err *err)
{
    if (node->cn->kind == SLUICE_KIND_SINK) {
        struct sl_sink *sink = sl_sink_of(node);
        return sink != NULL && sink->stored_streams != NULL
                   ? sink->stored_streams(sink, w->source, w->fn, w->arg, err)
                   : 0;
    }
    for (size_t o = 0; o < node->nouts; o++) {
        for (size_t c = 0; c < node->outs[o].n; c++) {
            int rc = streams_visit(node->outs[o].to[c], w, err);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

int sl_source_streams(struct sl_node *src,
                      void (*fn)(void *arg, const char *stream, const char *fp),
                      void *arg,
                      struct sl_err *err)
{
    struct streams_walk w = {src->name, fn, arg};

    return streams_visit(src, &w, err);
}

static int
committed_visit(struct sl_node *node, uint32_t source, uint32_t stream, int64_t *min, bool *seen)
{
    if (node->cn->kind == SLUICE_KIND_SINK) {
        int64_t pos;
        if (sl_sink_committed(sl_sink_of(node), source, stream, &pos) != 0) {
            return SL_EOF;
        }
        if (!*seen || pos < *min) {
            *min = pos;
        }
        *seen = true;
        return 0;
    }
    for (size_t o = 0; o < node->nouts; o++) {
        for (size_t c = 0; c < node->outs[o].n; c++) {
            if (committed_visit(node->outs[o].to[c], source, stream, min, seen) != 0) {
                return SL_EOF;
            }
        }
    }
    return 0;
}

int sl_source_committed(struct sl_node *src, uint32_t stream, int64_t *ret_pos)
{
    int64_t min = 0;
    bool seen = false;

    if (committed_visit(src, src->index, stream, &min, &seen) != 0 || !seen) {
        return SL_EOF;
    }
    *ret_pos = min;
    return 0;
}

/* ==== Holds ==== */

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
    uint64_t need = sl_batch_adopt_bytes(batch);

    SL_ASSERT(batch->flow == NULL && give <= *held);
    /* First the hold covers the batch (waiting as a hold does, so never on
     * the source's own bytes), then that part of it becomes the batch's. */
    int rc = sl_source_hold(src, held, *held - give + need);
    if (rc != 0) {
        return rc;
    }
    sl_flow_unhold(&pl->flow, held, need);
    /* sl_node_source_push counts the batch as raw again until a decoder
     * pops it. */
    atomic_fetch_sub_explicit(&pl->raw_bytes, need, memory_order_seq_cst);
    sl_batch_adopt(batch, &pl->flow);
    return 0;
}
