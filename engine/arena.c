/* SPDX-License-Identifier: MIT */
/* Chunked bump allocator for batches (see arena.h). */
#include "arena.h"

#include "flow.h"
#include "mem.h"

#include <stdint.h>
#include <string.h>

#define ARENA_CHUNK_MIN (8 * 1024) /* small first: route outputs and copies hold few records */

struct sl_arena_chunk {
    struct sl_arena_chunk *next;
    size_t size;
    max_align_t data[]; /* aligned payload */
};

void sl_arena_init(struct sl_arena *arena)
{
    memset(arena, 0, sizeof(*arena));
}

void sl_arena_release(struct sl_arena *arena)
{
    struct sl_arena_chunk *c = arena->head;
    struct sl_flow *flow = arena->flow;
    struct sl_flow_credit *credit = arena->credit;

    while (c != NULL) {
        struct sl_arena_chunk *next = c->next;
        sl_free(c);
        c = next;
    }
    if (flow != NULL && arena->bytes > 0) {
        sl_flow_release(flow, arena->bytes);
    }
    memset(arena, 0, sizeof(*arena));
    arena->flow = flow;
    arena->credit = credit;
}

/* A new head chunk for a request of size bytes (aligned), which the head
 * cannot take, then the request from it; NULL on OOM. Apart from
 * sl_arena_alloc so that the common case stays small enough to inline. */
static void *alloc_chunk(struct sl_arena *arena, size_t size)
{
    /* Grow geometrically so a batch needs few chunks, but never less than
     * the request (a 20 MB string gets its own chunk), and by at most
     * SL_ARENA_CHUNK_MAX: a plugin call's room (plugin_host.c) is checked
     * against what the batch holds, and a chunk as large as everything
     * before it let a call at a 16 MiB room hold 32 MiB. */
    size_t want = arena->bytes < ARENA_CHUNK_MIN      ? ARENA_CHUNK_MIN
                  : arena->bytes > SL_ARENA_CHUNK_MAX ? SL_ARENA_CHUNK_MAX
                                                      : arena->bytes;
    if (want < size) {
        want = size;
    }
    struct sl_arena_chunk *c = sl_malloc(sizeof(*c) + want);
    if (c == NULL) {
        return NULL;
    }
    if (arena->flow != NULL) {
        /* Workers never wait: the sources wait for the budget instead, and
         * a window's batch brought a credit for this. */
        sl_flow_charge(arena->flow, arena->credit, want);
    }
    c->size = want;
    /* What the old head leaves unused (sl_arena_used). */
    arena->tails += arena->cur != NULL ? (size_t)(arena->end - arena->cur) : 0;
    c->next = arena->head;
    arena->head = c;
    arena->cur = (char *)c->data;
    arena->end = arena->cur + want;
    arena->bytes += want;
    void *p = arena->cur;
    arena->cur += size;
    return p;
}

/* sl_arena_alloc, inlined where this file allocates (strndup). */
static inline void *arena_alloc(struct sl_arena *arena, size_t size)
{
    size = (size + 7) & ~(size_t)7;
    if ((size_t)(arena->end - arena->cur) < size || arena->cur == NULL) {
        return alloc_chunk(arena, size);
    }
    void *p = arena->cur;
    arena->cur += size;
    return p;
}

void *sl_arena_alloc(struct sl_arena *arena, size_t size)
{
    return arena_alloc(arena, size);
}

size_t sl_arena_used(const struct sl_arena *arena)
{
    return arena->bytes - arena->tails -
           (arena->cur != NULL ? (size_t)(arena->end - arena->cur) : 0);
}

bool sl_arena_owns(const struct sl_arena *arena, const void *p)
{
    for (const struct sl_arena_chunk *c = arena->head; c != NULL; c = c->next) {
        const char *start = (const char *)c->data;
        if ((const char *)p >= start && (const char *)p < start + c->size) {
            return true;
        }
    }
    return false;
}

char *sl_arena_strndup(struct sl_arena *arena, const char *s, size_t n)
{
    char *p = arena_alloc(arena, n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}
