/* SPDX-License-Identifier: MIT */
/* Bump allocator owned by a batch: records, field arrays and decoded strings
 * live here and die together with the batch. Not thread-safe: one writer at a
 * time (the task that owns the batch). */
#ifndef SL_ARENA_H
#define SL_ARENA_H

#include <stdbool.h>
#include <stddef.h>

struct sl_arena_chunk;
struct sl_flow;
struct sl_flow_credit;

struct sl_arena {
    struct sl_arena_chunk *head;   /* newest chunk first */
    char *cur;                     /* next free byte in head */
    char *end;                     /* end of head's space */
    size_t bytes;                  /* total bytes of all chunks (for accounting) */
    size_t tails;                  /* free bytes left at the ends of the chunks before head
                                      (sl_arena_used) */
    struct sl_flow *flow;          /* chunks are charged to this memory budget (a batch's);
                                      NULL: not counted */
    struct sl_flow_credit *credit; /* drawn on first (sl_flow_charge): its batch's family's,
                                      or NULL */
};

/* Initialises an empty arena; allocates nothing yet. */
void sl_arena_init(struct sl_arena *arena);
/* Frees every chunk (giving their bytes back to flow); the arena may be
 * reused after, still charged to the same flow. Accepts a zeroed arena. */
void sl_arena_release(struct sl_arena *arena);
/* Returns size bytes aligned to 8, or NULL on OOM. */
void *sl_arena_alloc(struct sl_arena *arena, size_t size);
/* Bytes handed out (aligned): what the records take, without the free
 * room of the chunks (growth measures; sl_batch_used_bytes). */
size_t sl_arena_used(const struct sl_arena *arena);
/* Whether p points into one of arena's chunks. */
bool sl_arena_owns(const struct sl_arena *arena, const void *p);
/* Chunks double in size up to this, then grow by it: an arena holds at
 * most this much (or its last request) beyond what it handed out. */
#define SL_ARENA_CHUNK_MAX ((size_t)1 << 20)
/* Copies n bytes and appends a NUL; NULL on OOM. */
char *sl_arena_strndup(struct sl_arena *arena, const char *s, size_t n);

#endif
