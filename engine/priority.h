/* SPDX-License-Identifier: MIT */
/* Priority levels of batches (DESIGN.md "Flow control"): a node with an int
 * `priority` labels what it emits with that level; one with an expression
 * splits each batch it emits into one part per level the expression may
 * give (empty parts too, as shells), so that every level of a stream has
 * every sequence number and sinks restore order per (source, stream,
 * level). Runs on the emitting task's thread; batches only. */
#ifndef SL_PRIORITY_H
#define SL_PRIORITY_H

#include "batch.h"
#include "conf.h"

/* Returns batch at level: batch itself when its caller holds the only
 * reference, else a copy of its records (fan-out siblings read the shared
 * one at their own level), or NULL on OOM (batch released). Takes the
 * caller's reference. Thread: any. */
struct sl_batch *sl_priority_relabel(struct sl_batch *batch, uint8_t level);

/* Splits batch by cn's priority expression into parts[level], one for each
 * level of cn->priority_levels (NULL for the others): records at their
 * level (bytes kept alive by batch as parent; a fork's field arrays are
 * copied, for other paths read them),
 * empty levels as shells with batch's position. A record whose priority
 * is not an int 0..9 (or null: 0) becomes a dead letter of node, in the
 * lowest level's part, which also takes batch's own dead letters; *ret_dead
 * counts the new ones. When every record has one level, that part is batch
 * itself, with its dead letters. Takes the caller's reference; returns 0, or SL_ENOMEM with batch
 * released and no parts. Thread: any. */
int sl_priority_split(const struct sl_conf_node *cn,
                      const char *node,
                      const char *source,
                      struct sl_batch *batch,
                      struct sl_batch *parts[SL_PRIORITY_LEVELS],
                      uint32_t *ret_dead);

struct sl_node;

#define SL_PRIORITY_PLAN_MAX 32

/* The priority plan of what reaches sink from source src: the levels it
 * arrives at and the settings of the nodes between them, as text
 * ("<levels mask hex>:<hash hex>") for a SQLite sink to store beside its
 * positions, so that a later run notices changed settings. NULL when no
 * node between them sets a priority. The text is the sink's (freed with
 * the pipeline). Thread: any, after sl_priority_plans. */
const char *sl_priority_plan(const struct sl_node *sink, uint32_t src);

/* Works out every sink's plans (sl_priority_plan) once the nodes are
 * linked. 0 or SL_ENOMEM. Thread: main, building the pipeline. */
int sl_priority_plans(struct sl_node *nodes, size_t nnodes);

#endif
