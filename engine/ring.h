/* SPDX-License-Identifier: MIT */
/* Bounded lock-free MPMC ring of pointers: the input queue of every DAG node
 * (a slot holds a batch pointer). Pool tasks reserve a slot before they take
 * their own input, so a worker never blocks on a full ring; source I/O threads
 * use sl_ring_push_wait, which parks until a consumer frees a slot or the run
 * is cancelled. Every function may be called from any thread. */
#ifndef SL_RING_H
#define SL_RING_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Largest capacity sl_ring_new accepts (config loaders check against it). */
#define SL_RING_CAPACITY_MAX (UINT32_C(1) << 24)
/* Memory per slot of capacity (rounded up to a power of two): what a
 * `queue` setting costs before any batch is queued (conf_dag.c). */
#define SL_RING_SLOT_BYTES 16

/* Lanes of a levelled ring, at most (priority levels). */
#define SL_RING_LANES_MAX 16
struct sl_ring;

/* Returns a new empty ring that holds at most capacity items, counting slots
 * reserved and not yet pushed; capacity must be 1..SL_RING_CAPACITY_MAX
 * (asserted). Returns NULL on OOM. The caller owns the ring.
 * Thread: any. */
struct sl_ring *sl_ring_new(uint32_t capacity);

/* The same with nlanes FIFOs (1..SL_RING_LANES_MAX) sharing the capacity:
 * a priority queue. levels[l] is lane l's priority level, ascending (NULL:
 * l). Pushes name their lane; sl_ring_try_pop takes from the highest
 * non-empty lane, with aging (sl_ring_pick_lane), so that a lower lane
 * still progresses. Reservations are per ring, not per lane. Thread: any. */
struct sl_ring *sl_ring_new_lanes(uint32_t capacity, uint32_t nlanes, const uint8_t *levels);

/* Which lane a pop takes from: the non-empty one (counts[l] > 0) with the
 * highest level levels[l] plus one for each aging_ns it waited since
 * since_ns[l] (when it was last served), the higher on ties;
 * UINT32_MAX when all are empty. A pure function (unit-tested on a
 * virtual clock). */
uint32_t sl_ring_pick_lane(uint32_t nlanes,
                           const uint8_t *levels,
                           const uint64_t *counts,
                           const uint64_t *since_ns,
                           uint64_t now_ns,
                           uint64_t aging_ns);

/* Frees ring. Items still inside are not touched (they remain the caller's
 * problem: drain with sl_ring_try_pop first). No thread may use the ring any
 * more. Accepts NULL; returns NULL. Thread: any. */
struct sl_ring *sl_ring_free(struct sl_ring *ring);

/* Reserves one slot for a later sl_ring_push_reserved, so the push cannot
 * fail. Reservations count against the capacity exactly like items. Returns 0
 * on success, SL_EAGAIN when items + reservations already reach the capacity.
 * Lock-free, never blocks. Thread: any. */
int sl_ring_try_reserve(struct sl_ring *ring);

/* Sets the room-freed hook: fn(arg) runs on the thread that frees a slot,
 * after the slot is counted free, for every pop and every cancelled
 * reservation (the runtime kicks the ring's producers). fn must not block.
 * Call before the ring is shared. Thread: any. */
void sl_ring_set_on_room(struct sl_ring *ring, void (*fn)(void *arg), void *arg);

/* Gives back a slot reserved by sl_ring_try_reserve and not pushed, wakes
 * blocked pushers if any and calls the room-freed hook. Never blocks for
 * long. Thread: any. */
void sl_ring_cancel_reserve(struct sl_ring *ring);

/* Pushes item (not NULL) into a slot reserved earlier by any thread (lane
 * 0 of a levelled ring); never
 * fails, and ownership of item passes to the ring. Does not block, except
 * for a short wait when a consumer that is popping the previous occupant of
 * the same physical slot has been preempted mid-pop. Thread: any. */
void sl_ring_push_reserved(struct sl_ring *ring, void *item);

/* As sl_ring_push_reserved, into lane (clamped to the last lane).
 * Thread: any. */
void sl_ring_push_reserved_lane(struct sl_ring *ring, void *item, uint32_t lane);

/* As sl_ring_try_push, into lane (clamped to the last lane). Thread: any. */
int sl_ring_try_push_lane(struct sl_ring *ring, void *item, uint32_t lane);

/* Pops the oldest item of lane: 0 or SL_EAGAIN (see sl_ring_try_pop).
 * Thread: any. */
int sl_ring_try_pop_lane(struct sl_ring *ring, uint32_t lane, void **ret_item);

/* The lowest non-empty lane, UINT32_MAX when none (approximate while
 * others push and pop). Thread: any. */
uint32_t sl_ring_lowest_lane(const struct sl_ring *ring);

/* Reserves and pushes item (not NULL). Returns 0 (the ring owns item now) or
 * SL_EAGAIN when full (the caller still owns item). Never blocks.
 * Thread: any. */
int sl_ring_try_push(struct sl_ring *ring, void *item);

/* Pushes item (not NULL), blocking while the ring is full: spins briefly, then
 * sleeps until a slot is freed (pop or cancelled reservation) or
 * sl_ring_wake_all is called. Returns 0 once pushed (the ring owns item), or
 * SL_ECANCELED when *cancel is true and the ring is full (the caller still
 * owns item). A free slot is taken even if *cancel is already true. cancel
 * may be NULL (wait forever). Whoever sets *cancel must then call
 * sl_ring_wake_all on the ring, or the waiter only notices at the next pop.
 * Meant for dedicated source threads, never for pool workers.
 * Thread: any (not a pool worker). */
int sl_ring_push_wait(struct sl_ring *ring, void *item, const atomic_bool *cancel);

/* Pops the oldest item into *ret_item (ownership passes to the caller).
 * Returns 0, or SL_EAGAIN when empty; SL_EAGAIN is also returned while the
 * oldest slot is claimed by a push that has not finished writing it. Frees a
 * slot, wakes blocked pushers if any (no system call when nobody waits) and
 * calls the room-freed hook.
 * Lock-free. Thread: any. */
int sl_ring_try_pop(struct sl_ring *ring, void **ret_item);

/* Approximate number of items held: pushes begun minus pops begun, excluding
 * bare reservations, clamped to 0..capacity. Exact when the ring is
 * quiescent, and a push is counted from the moment it claims its position
 * (the item may still be in flight: a try_pop can then return SL_EAGAIN).
 * Ordering promise, for lost-wake-up-free kicks: a push and the count are
 * sequentially consistent, so if thread A pushes and then reads a seq_cst
 * flag while thread B sets that flag (seq_cst) and then counts, A sees the
 * flag or B counts the item. For metrics and idle checks. Thread: any. */
uint32_t sl_ring_count(const struct sl_ring *ring);

/* Whether a pop could take an item now: the oldest position of some lane
 * holds a published item. Unlike sl_ring_count, a slot claimed by a push
 * that has not published yet does not count: a consumer that finds only
 * such a slot has nothing to do until that push ends, and the pusher kicks
 * it then. Ordering promise: the publish is a seq_cst store, and these
 * are seq_cst loads, so if a pusher publishes and then reads a seq_cst
 * flag while a consumer sets that flag (seq_cst) and then asks, the pusher
 * sees the flag or the consumer sees the item. Thread: any. */
bool sl_ring_ready(const struct sl_ring *ring);
/* Tests only: fn(arg) runs in every push between the claim of its position
 * (counted by sl_ring_count from then on) and the publish of its item, on
 * the pushing thread; a test blocks there to hold a push mid-way. NULL
 * removes it. Call before the ring is shared. Thread: any. */
void sl_ring_test_on_claim(struct sl_ring *ring, void (*fn)(void *arg), void *arg);
/* Slots neither holding an item nor reserved: 0 means a reservation would
 * fail now. seq_cst load. Thread: any. */
uint32_t sl_ring_free_slots(const struct sl_ring *ring);

/* Its number of lanes (1 for sl_ring_new). Thread: any. */
uint32_t sl_ring_lanes(const struct sl_ring *ring);

/* The capacity given to sl_ring_new. Thread: any. */
uint32_t sl_ring_capacity(const struct sl_ring *ring);

/* Approximate number of threads blocked (or about to block) in
 * sl_ring_push_wait: a source stalled by backpressure. For metrics and
 * tests. Thread: any. */
uint32_t sl_ring_waiters(const struct sl_ring *ring);

/* Wakes every thread blocked in sl_ring_push_wait so it re-checks its cancel
 * flag (and the free slots). Takes a mutex; meant for rare events such as
 * SIGINT drain. Thread: any. */
void sl_ring_wake_all(struct sl_ring *ring);

#endif
