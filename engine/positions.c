/* SPDX-License-Identifier: MIT */
/* The position service (see positions.h for the whole argument). */
#include "positions.h"

#include "mem.h"
#include "priority.h"
#include "sink.h"

#include <stdio.h>
#include <string.h>

/* ==== Acknowledged positions of one sink ==== */

struct sl_ack {
    uint32_t source;
    uint32_t stream;
    uint8_t level;
    int64_t pos;
};

void sl_acks_init(struct sl_acks *acks)
{
    memset(acks, 0, sizeof(*acks));
    pthread_mutex_init(&acks->lock, NULL);
}

void sl_acks_release(struct sl_acks *acks)
{
    pthread_mutex_destroy(&acks->lock);
    sl_free(acks->v);
}

static struct sl_ack *
find_ack(struct sl_acks *acks, uint32_t source, uint32_t stream, uint8_t level)
{
    for (size_t i = 0; i < acks->n; i++) {
        if (acks->v[i].source == source && acks->v[i].stream == stream &&
            acks->v[i].level == level) {
            return &acks->v[i];
        }
    }
    return NULL;
}

int sl_acks_note(struct sl_acks *acks, struct sl_batch *const *batches, size_t n)
{
    int rc = 0;

    pthread_mutex_lock(&acks->lock);
    for (size_t b = 0; b < n; b++) {
        struct sl_ack *a =
            find_ack(acks, batches[b]->source, batches[b]->stream, batches[b]->level);
        if (a == NULL) {
            struct sl_ack *grown = sl_realloc(acks->v, (acks->n + 1) * sizeof(*grown));
            if (grown == NULL) {
                rc = SL_ENOMEM;
                break;
            }
            acks->v = grown;
            a = &grown[acks->n++];
            a->source = batches[b]->source;
            a->stream = batches[b]->stream;
            a->level = batches[b]->level;
        }
        a->pos = batches[b]->pos_end;
    }
    pthread_mutex_unlock(&acks->lock);
    return rc;
}

int sl_acks_get(
    struct sl_acks *acks, uint32_t source, uint32_t stream, uint8_t level, int64_t *ret_pos)
{
    int rc = SL_EOF;

    pthread_mutex_lock(&acks->lock);
    struct sl_ack *a = find_ack(acks, source, stream, level);
    if (a != NULL) {
        *ret_pos = a->pos;
        rc = 0;
    }
    pthread_mutex_unlock(&acks->lock);
    return rc;
}

/* ==== What sources resume from and commit ==== */

/* Calls fn for every sink reachable from node, once per path, until it
 * returns non-zero (returned). */
static int each_sink(struct sl_node *node, int (*fn)(struct sl_sink *sink, void *arg), void *arg)
{
    if (node->cn->kind == SLUICE_KIND_SINK) {
        return fn(sl_sink_of(node), arg);
    }
    for (size_t o = 0; o < node->nouts; o++) {
        for (size_t c = 0; c < node->outs[o].n; c++) {
            int rc = each_sink(node->outs[o].to[c], fn, arg);
            if (rc != 0) {
                return rc;
            }
        }
    }
    return 0;
}

struct resume {
    uint32_t src; /* the source node's index */
    const char *source;
    const char *stream;
    int32_t partition;
    struct sl_err *err;
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

static int resume_visit(struct sl_sink *sink, void *arg)
{
    struct resume *r = arg;
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
    /* Each priority level of the stream is written on its own: the lowest
     * of them is where every level is done. */
    const char *plan = sl_priority_plan(sink->node, r->src);
    for (uint8_t l = 0; l < SL_PRIORITY_LEVELS; l++) {
        if (sink->node->paths == NULL || sink->node->paths[r->src * SL_PRIORITY_LEVELS + l] == 0) {
            continue;
        }
        int rc = sink->position(sink, r->source, r->stream, r->partition, l, plan, &pos, fp,
                                sizeof(fp), r->err);
        if (rc == SL_EOF) {
            r->unknown = true;
        } else if (rc == 0) {
            take(r, pos, fp);
        } else {
            return rc;
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
    struct resume r = {.src = src->index,
                       .source = src->name,
                       .stream = stream,
                       .partition = partition,
                       .err = err,
                       .own = own};
    int rc = each_sink(src, resume_visit, &r);

    if (rc != 0) {
        return rc;
    }
    if (ret_known != NULL) {
        *ret_known = r.any && !r.unknown;
    }
    *ret_pos = r.unknown || !r.any ? 0 : r.pos;
    snprintf(fingerprint, fingerprint_len, "%s", r.any ? r.fp : "");
    return 0;
}

struct streams_walk {
    const char *source;
    void (*fn)(void *arg, const char *stream, const char *fp);
    void *arg;
    struct sl_err *err;
};

static int streams_visit(struct sl_sink *sink, void *arg)
{
    struct streams_walk *w = arg;

    return sink != NULL && sink->stored_streams != NULL
               ? sink->stored_streams(sink, w->source, w->fn, w->arg, w->err)
               : 0;
}

int sl_source_streams(struct sl_node *src,
                      void (*fn)(void *arg, const char *stream, const char *fp),
                      void *arg,
                      struct sl_err *err)
{
    struct streams_walk w = {src->name, fn, arg, err};

    return each_sink(src, streams_visit, &w);
}

struct committed {
    uint32_t source;
    uint32_t stream;
    int64_t min;
    bool seen;
};

static int committed_visit(struct sl_sink *sink, void *arg)
{
    struct committed *c = arg;
    int64_t pos;

    for (uint8_t l = 0; l < SL_PRIORITY_LEVELS; l++) {
        /* The levels that reach this sink (every one, for a sink without
         * counts: the dead-letter store is never reached by a path). */
        if (sink->node->paths != NULL &&
            sink->node->paths[c->source * SL_PRIORITY_LEVELS + l] == 0) {
            continue;
        }
        if (sink->node->paths == NULL && l > 0) {
            break;
        }
        if (sl_acks_get(&sink->acks, c->source, c->stream, l, &pos) != 0) {
            return SL_EOF;
        }
        if (!c->seen || pos < c->min) {
            c->min = pos;
        }
        c->seen = true;
    }
    return 0;
}

int sl_source_committed(struct sl_node *src, uint32_t stream, int64_t *ret_pos)
{
    struct committed c = {.source = src->index, .stream = stream};

    if (each_sink(src, committed_visit, &c) != 0 || !c.seen) {
        return SL_EOF;
    }
    *ret_pos = c.min;
    return 0;
}
