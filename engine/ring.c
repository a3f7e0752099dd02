/* SPDX-License-Identifier: MIT */
/* Bounded MPMC ring (see ring.h). Storage is a power-of-two array of slots,
 * each with a sequence number in the style of Dmitry Vyukov's bounded queue:
 * a slot whose seq equals a position is free for the push at that position,
 * seq == position + 1 means it holds that push's item. A separate counter of
 * free slots implements the exact logical capacity and reservations, so a
 * reserved push always finds a slot. Pushers that must block park on a
 * mutex/condvar pair that poppers only touch when somebody waits. */
#include "ring.h"

#include "aging.h"
#include "clock.h"
#include "err.h"
#include "mem.h"

#include <pthread.h>
#include <sched.h>

/* Separates fields written by different sides so they do not share a cache
 * line (padding instead of alignas: sl_malloc only guarantees malloc
 * alignment). */
#define RING_PAD 64

/* Busy polls before push_wait parks, and before push_reserved yields. */
#define RING_SPIN 64

struct ring_slot {
    _Atomic uint64_t seq; /* acquire/release: hands the slot between one pusher and one popper */
    void *item;           /* written by the pusher that saw seq == pos, read by the popper that
                             saw seq == pos + 1; ordered by seq, so not atomic */
};

_Static_assert(sizeof(struct ring_slot) == SL_RING_SLOT_BYTES, "SL_RING_SLOT_BYTES");

/* One FIFO of a ring: a ring has one, or one per priority level. Each is
 * as large as the whole ring, so a reserved push always finds a slot in
 * any of them. */
struct ring_lane {
    struct ring_slot *slots; /* size entries; read-only after sl_ring_new */
    char pad0[RING_PAD];

    _Atomic uint64_t tail; /* next push position; seq_cst fetch_add (see sl_ring_count) */
    char pad1[RING_PAD];

    _Atomic uint64_t head; /* next pop position; relaxed CAS, slots carry the ordering */
    /* Lanes of a levelled ring: when the lane was last served (aging: 0
     * until then); relaxed, a hint for the choice of lane. Not when it
     * became non-empty: a lane whose batches a `shed` queue keeps evicting
     * would never age. */
    _Atomic uint64_t since_ns;
    char pad2[RING_PAD];
};

struct sl_ring {
    /* Read-only after sl_ring_new. */
    struct ring_lane *lanes; /* nlanes entries */
    uint32_t nlanes;
    uint8_t levels[SL_RING_LANES_MAX]; /* the priority level of each lane, ascending */
    uint64_t mask;                     /* size - 1, size = capacity rounded up to a power of two */
    uint32_t size;
    uint32_t capacity; /* logical bound on items + reservations, all lanes together */
    char pad0[RING_PAD];

    void (*on_room)(void *arg); /* room-freed hook (sl_ring_set_on_room), set before sharing */
    void *on_room_arg;
    void (*on_claim)(void *arg); /* tests: runs between a push's claim and its publish */
    void *on_claim_arg;
    atomic_int free_slots; /* capacity - items - reservations; seq_cst (pairs with waiters) */
    atomic_int waiters;    /* threads in push_wait's slow path; seq_cst (pairs with free_slots) */
    pthread_mutex_t mu;    /* protects the sleep of push_wait against lost wake-ups */
    pthread_cond_t cv;     /* signalled when a slot frees up while waiters > 0 */
    char pad3[RING_PAD];
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

struct sl_ring *sl_ring_new_lanes(uint32_t capacity, uint32_t nlanes, const uint8_t *levels)
{
    struct sl_ring *ring;
    uint32_t size = 1;

    SL_ASSERT(capacity >= 1 && capacity <= SL_RING_CAPACITY_MAX);
    SL_ASSERT(nlanes >= 1 && nlanes <= SL_RING_LANES_MAX);
    while (size < capacity) {
        size <<= 1;
    }
    ring = sl_calloc(1, sizeof(*ring));
    if (ring == NULL) {
        return NULL;
    }
    /* Default attributes cannot fail on Linux except for resources that a
     * mutex and a condvar do not use. First: sl_ring_free destroys them. */
    (void)pthread_mutex_init(&ring->mu, NULL);
    (void)pthread_cond_init(&ring->cv, NULL);
    ring->lanes = sl_calloc(nlanes, sizeof(*ring->lanes));
    if (ring->lanes == NULL) {
        return sl_ring_free(ring);
    }
    ring->nlanes = nlanes;
    for (uint32_t l = 0; l < nlanes; l++) {
        ring->levels[l] = levels != NULL ? levels[l] : (uint8_t)l;
        SL_ASSERT(l == 0 || ring->levels[l] > ring->levels[l - 1]);
        struct ring_lane *lane = &ring->lanes[l];
        lane->slots = sl_malloc((size_t)size * sizeof(*lane->slots));
        if (lane->slots == NULL) {
            return sl_ring_free(ring);
        }
        for (uint32_t i = 0; i < size; i++) {
            /* Relaxed: the ring is not shared yet; publishing the ring pointer
             * to other threads is the caller's job and orders these stores. */
            atomic_init(&lane->slots[i].seq, i);
            lane->slots[i].item = NULL;
        }
        atomic_init(&lane->tail, 0);
        atomic_init(&lane->head, 0);
        atomic_init(&lane->since_ns, 0);
    }
    ring->size = size;
    ring->mask = size - 1;
    ring->capacity = capacity;
    atomic_init(&ring->free_slots, (int)capacity);
    atomic_init(&ring->waiters, 0);
    return ring;
}

struct sl_ring *sl_ring_new(uint32_t capacity)
{
    return sl_ring_new_lanes(capacity, 1, NULL);
}

struct sl_ring *sl_ring_free(struct sl_ring *ring)
{
    if (ring == NULL) {
        return NULL;
    }
    (void)pthread_cond_destroy(&ring->cv);
    (void)pthread_mutex_destroy(&ring->mu);
    for (uint32_t l = 0; ring->lanes != NULL && l < ring->nlanes; l++) {
        sl_free(ring->lanes[l].slots);
    }
    sl_free(ring->lanes);
    sl_free(ring);
    return NULL;
}

int sl_ring_try_reserve(struct sl_ring *ring)
{
    /* seq_cst load and CAS: push_wait announces itself in waiters and then
     * re-checks free_slots here, while a popper increments free_slots and then
     * reads waiters (release_slot). Both sides need store->load order so that
     * at least one sees the other (the Dekker pattern); acquire/release does
     * not forbid both reading stale values. On x86 the load is a plain mov and
     * the CAS a locked instruction either way. Slot contents are ordered by
     * the slot seq, not by this counter. */
    int n = atomic_load_explicit(&ring->free_slots, memory_order_seq_cst);

    while (n > 0) {
        if (atomic_compare_exchange_weak_explicit(&ring->free_slots, &n, n - 1,
                                                  memory_order_seq_cst, memory_order_seq_cst)) {
            return 0;
        }
    }
    return SL_EAGAIN;
}

void sl_ring_set_on_room(struct sl_ring *ring, void (*fn)(void *arg), void *arg)
{
    ring->on_room = fn;
    ring->on_room_arg = arg;
}

/* Returns one slot to free_slots, wakes pushers parked in push_wait and
 * calls the room-freed hook: the one place where room appears, for pops and
 * cancelled reservations alike. */
static void release_slot(struct sl_ring *ring)
{
    /* seq_cst increment then seq_cst load of waiters: the popper half of the
     * Dekker pattern described in sl_ring_try_reserve. If this load reads 0,
     * any pusher that registers later is guaranteed to see the new free slot
     * in its re-check, so skipping the wake-up is safe. */
    atomic_fetch_add_explicit(&ring->free_slots, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&ring->waiters, memory_order_seq_cst) > 0) {
        /* Broadcast, not signal: waiters may have different cancel flags, and
         * one woken for a slot another thread took must not leave a second
         * waiter asleep while a slot is free. There is rarely more than one
         * waiter (one source thread per ring). */
        pthread_mutex_lock(&ring->mu);
        pthread_cond_broadcast(&ring->cv);
        pthread_mutex_unlock(&ring->mu);
    }
    /* After the seq_cst increment: a hook reading a producer's state pairs
     * with that producer's seq_cst read of free_slots (sl_ring_free_slots),
     * so either the hook sees the producer idle or the producer sees room. */
    if (ring->on_room != NULL) {
        ring->on_room(ring->on_room_arg);
    }
}

void sl_ring_cancel_reserve(struct sl_ring *ring)
{
    /* Relaxed: a sanity check. While we hold a reservation no other thread
     * can raise the count to the capacity. */
    SL_ASSERT(atomic_load_explicit(&ring->free_slots, memory_order_relaxed) < (int)ring->capacity);
    release_slot(ring);
}

/* Items in lane (see sl_ring_count for the orderings). */
static uint64_t lane_count(const struct ring_lane *lane)
{
    uint64_t head = atomic_load_explicit(&lane->head, memory_order_seq_cst);
    uint64_t tail = atomic_load_explicit(&lane->tail, memory_order_seq_cst);

    return tail > head ? tail - head : 0;
}

void sl_ring_push_reserved_lane(struct sl_ring *ring, void *item, uint32_t lane_no)
{
    struct ring_lane *lane = &ring->lanes[lane_no < ring->nlanes ? lane_no : ring->nlanes - 1];

    /* seq_cst, although the slot seq below carries the data: it makes the
     * promise of sl_ring_count hold (a caller that pushes, then reads its own
     * seq_cst flag, pairs with one that writes the flag, then counts). It
     * costs nothing extra on x86, where every RMW is a full barrier. The
     * reservation guarantees that the pop of position pos - size has at least
     * been claimed, so the wait below only spans the end of that pop. */
    uint64_t pos = atomic_fetch_add_explicit(&lane->tail, 1, memory_order_seq_cst);
    struct ring_slot *slot = &lane->slots[pos & ring->mask];
    unsigned spins = 0;

    SL_ASSERT(item != NULL);
    if (ring->on_claim != NULL) {
        ring->on_claim(ring->on_claim_arg);
    }
    /* Acquire: pairs with the popper's release store of seq = pos, so its read
     * of the previous item happens before our write below. */
    while (atomic_load_explicit(&slot->seq, memory_order_acquire) != pos) {
        if (++spins < RING_SPIN) {
            cpu_relax();
        } else {
            (void)sched_yield();
        }
    }
    slot->item = item;
    /* Release would publish item to the popper that acquires seq == pos + 1;
     * seq_cst also makes the promise of sl_ring_ready hold: the pusher's
     * next seq_cst read (node_kick's of free_slots) cannot be ordered
     * before this store, so a consumer that gives its task slot back and
     * then asks sl_ring_ready sees the item, or the pusher sees the slot
     * free (store-load on both sides). One xchg per push on x86. */
    atomic_store_explicit(&slot->seq, pos + 1, memory_order_seq_cst);
}

void sl_ring_test_on_claim(struct sl_ring *ring, void (*fn)(void *arg), void *arg)
{
    ring->on_claim = fn;
    ring->on_claim_arg = arg;
}

void sl_ring_push_reserved(struct sl_ring *ring, void *item)
{
    sl_ring_push_reserved_lane(ring, item, 0);
}

int sl_ring_try_push_lane(struct sl_ring *ring, void *item, uint32_t lane)
{
    int rc = sl_ring_try_reserve(ring);

    if (rc == 0) {
        sl_ring_push_reserved_lane(ring, item, lane);
    }
    return rc;
}

int sl_ring_try_push(struct sl_ring *ring, void *item)
{
    return sl_ring_try_push_lane(ring, item, 0);
}

/* Slow path of sl_ring_push_wait: sleeps until a slot is reserved (0) or
 * cancel is set (SL_ECANCELED). */
static int reserve_wait(struct sl_ring *ring, const atomic_bool *cancel)
{
    int rc;

    pthread_mutex_lock(&ring->mu);
    /* seq_cst: the pusher half of the Dekker pattern (see try_reserve): the
     * re-check below cannot miss a slot freed by a popper that then read
     * waiters == 0. */
    atomic_fetch_add_explicit(&ring->waiters, 1, memory_order_seq_cst);
    for (;;) {
        rc = sl_ring_try_reserve(ring);
        if (rc == 0) {
            break;
        }
        /* Relaxed: wake_all takes mu after the flag is set, and we test the
         * flag under mu before each sleep, so the mutex orders it. */
        if (cancel != NULL && atomic_load_explicit(cancel, memory_order_relaxed)) {
            rc = SL_ECANCELED;
            break;
        }
        /* A popper that saw waiters > 0 takes mu before broadcasting, so its
         * wake-up cannot fall between our re-check and this wait. */
        pthread_cond_wait(&ring->cv, &ring->mu);
    }
    /* Relaxed: a popper reading a stale non-zero count only pays for one
     * unneeded broadcast. */
    atomic_fetch_sub_explicit(&ring->waiters, 1, memory_order_relaxed);
    pthread_mutex_unlock(&ring->mu);
    return rc;
}

int sl_ring_push_wait(struct sl_ring *ring, void *item, const atomic_bool *cancel)
{
    int rc = SL_EAGAIN;

    for (unsigned i = 0; i < RING_SPIN && rc != 0; i++) {
        rc = sl_ring_try_reserve(ring);
        if (rc != 0) {
            cpu_relax();
        }
    }
    if (rc != 0) {
        rc = reserve_wait(ring, cancel);
    }
    if (rc == 0) {
        sl_ring_push_reserved(ring, item);
    }
    return rc;
}

/* Pops the oldest item of one lane (see sl_ring_try_pop). */
static int lane_pop(struct sl_ring *ring, struct ring_lane *lane, void **ret_item)
{
    /* Relaxed: a stale head only makes the CAS below fail and retry. */
    uint64_t pos = atomic_load_explicit(&lane->head, memory_order_relaxed);
    struct ring_slot *slot;
    void *item;

    for (;;) {
        slot = &lane->slots[pos & ring->mask];
        /* Acquire: pairs with the pusher's release of seq = pos + 1, making
         * its write of item visible. */
        uint64_t seq = atomic_load_explicit(&slot->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - (pos + 1));

        if (dif == 0) {
            /* Relaxed on success and failure: the CAS only arbitrates between
             * poppers; the item's visibility comes from the acquire above,
             * and no pusher can reuse the slot before our release below. */
            if (atomic_compare_exchange_weak_explicit(&lane->head, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                break;
            }
        } else if (dif < 0) {
            /* Empty, or the push of this position has not finished. */
            return SL_EAGAIN;
        } else {
            /* Another popper took this position; catch up. Relaxed as above. */
            pos = atomic_load_explicit(&lane->head, memory_order_relaxed);
        }
    }
    item = slot->item;
    /* Release: our read of item happens before the pusher of pos + size,
     * which acquires this value, overwrites it. */
    atomic_store_explicit(&slot->seq, pos + ring->size, memory_order_release);
    release_slot(ring);
    *ret_item = item;
    return 0;
}

uint32_t sl_ring_pick_lane(uint32_t nlanes,
                           const uint8_t *levels,
                           const uint64_t *counts,
                           const uint64_t *since_ns,
                           uint64_t now_ns,
                           uint64_t aging_ns)
{
    uint32_t best = UINT32_MAX;
    uint64_t best_score = 0;

    for (uint32_t l = nlanes; l-- > 0;) {
        if (counts[l] == 0) {
            continue;
        }
        uint64_t score = sl_aging_score(levels[l], since_ns[l], now_ns, aging_ns);
        if (best == UINT32_MAX || score > best_score) {
            best = l;
            best_score = score;
        }
    }
    return best;
}

/* Reads what sl_ring_pick_lane decides on (counts and since_ns of every
 * lane) and returns its choice, UINT32_MAX when all are empty. */
static uint32_t pick(const struct sl_ring *ring, uint64_t now_ns)
{
    uint64_t counts[SL_RING_LANES_MAX], since[SL_RING_LANES_MAX];

    for (uint32_t l = 0; l < ring->nlanes; l++) {
        counts[l] = lane_count(&ring->lanes[l]);
        since[l] = atomic_load_explicit(&ring->lanes[l].since_ns, memory_order_relaxed);
    }
    return sl_ring_pick_lane(ring->nlanes, ring->levels, counts, since, now_ns, SL_AGING_NS);
}

int sl_ring_try_pop(struct sl_ring *ring, void **ret_item)
{
    if (ring->nlanes == 1) {
        return lane_pop(ring, &ring->lanes[0], ret_item);
    }
    /* The choice is a hint (other poppers race us): take from the lane the
     * choice names, else from any, highest first. */
    uint64_t now = sl_now_ns();
    uint32_t l = pick(ring, now);
    if (l != UINT32_MAX && lane_pop(ring, &ring->lanes[l], ret_item) == 0) {
        atomic_store_explicit(&ring->lanes[l].since_ns, now, memory_order_relaxed);
        return 0;
    }
    for (uint32_t l = ring->nlanes; l-- > 0;) {
        if (lane_pop(ring, &ring->lanes[l], ret_item) == 0) {
            atomic_store_explicit(&ring->lanes[l].since_ns, now, memory_order_relaxed);
            return 0;
        }
    }
    return SL_EAGAIN;
}

int sl_ring_try_pop_lane(struct sl_ring *ring, uint32_t lane, void **ret_item)
{
    return lane < ring->nlanes ? lane_pop(ring, &ring->lanes[lane], ret_item) : SL_EAGAIN;
}

uint32_t sl_ring_lowest_lane(const struct sl_ring *ring)
{
    for (uint32_t l = 0; l < ring->nlanes; l++) {
        if (lane_count(&ring->lanes[l]) > 0) {
            return l;
        }
    }
    return UINT32_MAX;
}

uint32_t sl_ring_count(const struct sl_ring *ring)
{
    /* seq_cst loads (plain moves on x86): see sl_ring_count in ring.h, and
     * the tail increment in sl_ring_push_reserved. head is read first so that,
     * tail only growing, the difference is rarely negative; it is clamped
     * anyway. A stale head only overestimates. */
    uint64_t n = 0;

    for (uint32_t l = 0; l < ring->nlanes; l++) {
        n += lane_count(&ring->lanes[l]);
    }
    return n > ring->capacity ? ring->capacity : (uint32_t)n;
}

/* Whether the oldest position of lane holds a published item. */
static bool lane_ready(const struct sl_ring *ring, const struct ring_lane *lane)
{
    for (;;) {
        /* seq_cst loads: the consumer half of the pairing described at the
         * publish in sl_ring_push_reserved_lane. */
        uint64_t pos = atomic_load_explicit(&lane->head, memory_order_seq_cst);
        uint64_t seq =
            atomic_load_explicit(&lane->slots[pos & ring->mask].seq, memory_order_seq_cst);
        int64_t dif = (int64_t)(seq - (pos + 1));

        if (dif <= 0) {
            /* 0: published; < 0: empty, or claimed by a push that has not
             * published yet (it kicks the consumer once it has). */
            return dif == 0;
        }
        /* Popped since we read head: read it again. */
    }
}

bool sl_ring_ready(const struct sl_ring *ring)
{
    for (uint32_t l = 0; l < ring->nlanes; l++) {
        if (lane_ready(ring, &ring->lanes[l])) {
            return true;
        }
    }
    return false;
}

uint32_t sl_ring_free_slots(const struct sl_ring *ring)
{
    /* seq_cst: read after a task gave its slot back (runtime.c). */
    int n = atomic_load_explicit(&((struct sl_ring *)ring)->free_slots, memory_order_seq_cst);
    return n > 0 ? (uint32_t)n : 0;
}

uint32_t sl_ring_lanes(const struct sl_ring *ring)
{
    return ring->nlanes;
}

uint32_t sl_ring_capacity(const struct sl_ring *ring)
{
    return ring->capacity;
}

uint32_t sl_ring_waiters(const struct sl_ring *ring)
{
    /* Relaxed: a snapshot for metrics and tests. */
    int n = atomic_load_explicit(&ring->waiters, memory_order_relaxed);

    return n > 0 ? (uint32_t)n : 0;
}

void sl_ring_wake_all(struct sl_ring *ring)
{
    /* Taking mu orders the caller's earlier store to the cancel flag before
     * the waiters' next check of it (they test it under mu). */
    pthread_mutex_lock(&ring->mu);
    pthread_cond_broadcast(&ring->cv);
    pthread_mutex_unlock(&ring->mu);
}
