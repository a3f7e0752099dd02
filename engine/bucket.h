/* SPDX-License-Identifier: MIT */
/* Rate limiting for the `throttle` stage: GCRA (the generic cell rate
 * algorithm) in integer nanoseconds, and a bounded map of buckets per key
 * with LRU eviction. Pure: every call takes the time from its caller (the
 * monotonic clock at run time, a virtual clock in tests). A bucket and a map
 * have one owner thread at a time (the throttle runs one task at a time). */
#ifndef SL_BUCKET_H
#define SL_BUCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sl_bucket_algorithm {
    SL_BUCKET_ALGORITHM_TOKEN, /* bursts of up to `burst` at once, then the rate */
    SL_BUCKET_ALGORITHM_LEAKY, /* even spacing: burst 1 */
    SL_BUCKET_ALGORITHM_COUNT
};

/* The limit, shared by every bucket of a throttle. The rate is kept as an
 * exact fraction p/q records per second, so the emission interval T =
 * 1e9 q / p ns is exact too: T = inc_ns + inc_rem / p, and a theoretical
 * arrival time is an integer part plus a remainder in 1/p ns. Nothing is
 * rounded per event, so nothing drifts. */
struct sl_bucket_rate {
    uint64_t p, q;         /* rate = p / q records per second, in lowest terms */
    uint64_t inc_ns;       /* floor(T) */
    uint64_t inc_rem;      /* T - floor(T), in 1/p ns */
    uint64_t burst;        /* events that may pass at once (1 for the leaky bucket) */
    unsigned __int128 tau; /* tolerance (burst - 1) x T, in 1/p ns */
};

/* One bucket: its theoretical arrival time TAT = tat_ns + tat_rem / p ns.
 * All zero is a full bucket. */
struct sl_bucket {
    uint64_t tat_ns;
    uint64_t tat_rem; /* < p */
};

/* Lowest and highest rates sl_bucket_rate_init accepts (records/s). */
#define SL_BUCKET_RATE_MIN  1e-6
#define SL_BUCKET_RATE_MAX  1e9
#define SL_BUCKET_BURST_MAX 1000000000

/* Fills *ret for rate records per second (SL_BUCKET_RATE_MIN..MAX) and
 * burst (1..SL_BUCKET_BURST_MAX; the leaky bucket takes 1 whatever it is
 * given). The double rate becomes the fraction p/q (q <= 2^32) nearest to
 * it that agrees within a few units in its last place: 2.3333333333333335
 * (7/3 as YAML gives it) is 7/3, 0.001 is 1/1000. Returns 0, or SL_EINVAL
 * (and leaves *ret alone) when rate or burst is out of range or not finite.
 * Thread: any. */
int sl_bucket_rate_init(struct sl_bucket_rate *ret,
                        double rate,
                        uint64_t burst,
                        enum sl_bucket_algorithm algorithm);

/* Makes b a full bucket: the first `burst` events pass at any time. */
void sl_bucket_init(struct sl_bucket *b);

/* An event at now_ns: passes when now_ns >= TAT - tau, and then TAT =
 * max(TAT, now_ns) + T. Returns whether it passed (b is unchanged when not).
 * Times must not go back by more than tau between calls (the monotonic
 * clock never does). Thread: b's owner. */
bool sl_bucket_take(const struct sl_bucket_rate *rate, struct sl_bucket *b, uint64_t now_ns);

/* The earliest time >= now_ns at which sl_bucket_take would pass (now_ns
 * itself when it would pass now). Thread: b's owner. */
uint64_t
sl_bucket_next_ns(const struct sl_bucket_rate *rate, const struct sl_bucket *b, uint64_t now_ns);

/* An event available from from_ns that may pass until by_ns (a batch's
 * records, gathered since from_ns and looked at by by_ns): passes when
 * sl_bucket_next_ns(from_ns) <= by_ns, and is then admitted at that time
 * (*ret_at), as sl_bucket_reserve would. b is unchanged when not. So the
 * bucket's schedule continues from TAT, not from when the caller got to
 * look: a caller that is late loses no pace. Thread: b's owner. */
bool sl_bucket_take_by(const struct sl_bucket_rate *rate,
                       struct sl_bucket *b,
                       uint64_t from_ns,
                       uint64_t by_ns,
                       uint64_t *ret_at);

/* Reserves the next pass: takes at sl_bucket_next_ns(now_ns) and returns
 * that time (waiting mode: the event is admitted then). Thread: b's owner. */
uint64_t sl_bucket_reserve(const struct sl_bucket_rate *rate, struct sl_bucket *b, uint64_t now_ns);

/* ==== Buckets per key ==== */

/* A map from key bytes to buckets holding at most max_keys of them: when a
 * new key comes and the map is full, the least recently used bucket is
 * evicted (counted) and the new one starts full. Keys are hashed with
 * SipHash-1-3 under a random key per map, so input records cannot pick
 * keys that all collide. Each key costs about 64 bytes plus its length. */
struct sl_bucket_map;

/* Returns an empty map, or NULL on OOM. max_keys >= 1. Thread: any. */
struct sl_bucket_map *sl_bucket_map_new(size_t max_keys);

/* Frees map and its buckets; accepts NULL; returns NULL. */
struct sl_bucket_map *sl_bucket_map_free(struct sl_bucket_map *map);

/* The bucket of key (len bytes, copied), created full when absent (evicting
 * the least recently used one when the map holds max_keys), and made the
 * most recently used. The pointer stays valid until the next call that may
 * evict. NULL on OOM (the map is unchanged). Thread: the map's owner. */
struct sl_bucket *sl_bucket_map_get(struct sl_bucket_map *map, const void *key, size_t len);

/* The bucket of key, or NULL when absent; does not change the LRU order.
 * Thread: the map's owner. */
struct sl_bucket *sl_bucket_map_find(const struct sl_bucket_map *map, const void *key, size_t len);

/* Buckets held now, and buckets evicted so far. Thread: the map's owner. */
size_t sl_bucket_map_count(const struct sl_bucket_map *map);
uint64_t sl_bucket_map_evictions(const struct sl_bucket_map *map);

#endif
