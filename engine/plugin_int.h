/* SPDX-License-Identifier: MIT */
/* Between the plugin loader and adapter (plugin.c) and the host function
 * table (plugin_host.c). Not for node types. */
#ifndef SL_PLUGIN_INT_H
#define SL_PLUGIN_INT_H

#include "batch.h"
#include "runtime.h"

#include <sluice/plugin.h>
#include <stdatomic.h>

struct added;

/* One process() call of a plugin node, on the thread that makes it. */
struct sl__plugin_call {
    struct sl_node *node;
    struct sl_batch *batch; /* writable, the plugin's for the call */
    uint32_t n;             /* the batch's own records */
    uint8_t *gone;          /* per own record: 0 kept, 1 dropped, 2 dead (arena) */
    uint32_t *emits;        /* per own record: records added from it (arena, first emit) */
    uint64_t node_key;      /* hash of the node's name, set with emits (sub-positions) */
    struct added *added;    /* records the plugin added, in order (arena) */
    struct added **added_tail;
    uint32_t nadded;
    uint32_t added_gone; /* records added, then dropped again in the call */
    size_t start_bytes;  /* the batch's bytes (sl_batch_bytes) when the call began */
    size_t room;         /* the most the call may add to them (SL_PLUGIN_ROOM_DIV) */
    bool full;           /* an emit or set was refused for want of room */
};

/* A plugin node's state (node->state). */
struct sl__plugin_node {
    void *ctx;           /* what the plugin's init returned */
    char crash_msg[512]; /* what the crash guard says if process() crashes */
    size_t crash_len;
    atomic_bool failed; /* process() failed once: said once */
    atomic_bool full;   /* a call ran out of room (SL_PLUGIN_ROOM_DIV) once: said once */
    unsigned ncounters;
    atomic_uint_fast64_t counters[SLUICE_MAX_COUNTERS]; /* relaxed */
};

extern const struct sluice_host_api sl__plugin_host;

/* Makes call the one this thread's host calls work on. 0 or SL_ENOMEM. */
int sl__plugin_call_begin(struct sl__plugin_call *call,
                          struct sl_node *node,
                          struct sl_batch *batch);
/* Ends it: takes the dropped and dead-lettered records out of the batch
 * (counting the dropped ones) and appends the added ones (counted as
 * added). 0 or SL_ENOMEM. */
int sl__plugin_call_end(struct sl__plugin_call *call);
/* A JSON decoder for this thread, freed when it exits; NULL on OOM. */
struct sl_json_decoder *sl__plugin_thread_decoder(void);

#endif
