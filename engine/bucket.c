/* SPDX-License-Identifier: MIT */
/* GCRA buckets in exact integer arithmetic, and the bounded LRU map of
 * buckets per key (see bucket.h). No clock, no lock: callers pass the time
 * and own what they pass. */
#include "bucket.h"

#include "err.h"
#include "hash.h"
#include "mem.h"

#include <math.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* The fraction p/q stops at q <= 2^32: 1e9 q then fits in 63 bits. */
#define Q_MAX (1ull << 32)

typedef unsigned __int128 u128;

/* The convergent p/q of the continued fraction of num/den (exact: a double
 * is a fraction with a power of two below) with the smallest q <= Q_MAX
 * that is within 2^-50 of rate, relatively; or the last one with q <=
 * Q_MAX when none is that close. */
static void nearest_fraction(double rate, u128 num, u128 den, uint64_t *ret_p, uint64_t *ret_q)
{
    u128 h1 = 1, h2 = 0, k1 = 0, k2 = 1; /* convergents i-1 and i-2 */
    uint64_t p = 0, q = 1;

    while (den != 0) {
        u128 a = num / den;
        u128 h = a * h1 + h2;
        u128 k = a * k1 + k2;
        if (k > Q_MAX) {
            break;
        }
        p = (uint64_t)h;
        q = (uint64_t)k;
        long double err = fabsl((long double)p / (long double)q - (long double)rate);
        if (err <= (long double)rate * 0x1p-50L) {
            break;
        }
        u128 r = num - a * den;
        num = den;
        den = r;
        h2 = h1;
        h1 = h;
        k2 = k1;
        k1 = k;
    }
    *ret_p = p;
    *ret_q = q;
}

int sl_bucket_rate_init(struct sl_bucket_rate *ret,
                        double rate,
                        uint64_t burst,
                        enum sl_bucket_algorithm algorithm)
{
    if (!(rate >= SL_BUCKET_RATE_MIN && rate <= SL_BUCKET_RATE_MAX) || burst < 1 ||
        burst > SL_BUCKET_BURST_MAX || algorithm >= SL_BUCKET_ALGORITHM_COUNT) {
        return SL_EINVAL;
    }
    /* rate = mant x 2^exp exactly, mant a 53-bit integer: rate >= 2^-20
     * and < 2^30 bound exp to -73..-23, so 2^-exp fits in 128 bits. */
    int exp = 0;
    double frac = frexp(rate, &exp);
    u128 mant = (u128)ldexp(frac, 53);
    exp -= 53;
    u128 num = exp >= 0 ? mant << exp : mant;
    u128 den = exp >= 0 ? 1 : (u128)1 << -exp;
    uint64_t p = 0, q = 1;
    nearest_fraction(rate, num, den, &p, &q);
    if (p == 0) {
        return SL_EINVAL; /* cannot happen above SL_BUCKET_RATE_MIN */
    }
    uint64_t t_num = 1000000000ull * q; /* T = t_num / p ns */
    if (algorithm == SL_BUCKET_ALGORITHM_LEAKY) {
        burst = 1;
    }
    *ret = (struct sl_bucket_rate){
        .p = p,
        .q = q,
        .inc_ns = t_num / p,
        .inc_rem = t_num % p,
        .burst = burst,
        .tau = (u128)(burst - 1) * t_num,
    };
    return 0;
}

void sl_bucket_init(struct sl_bucket *b)
{
    *b = (struct sl_bucket){0};
}

/* TAT in 1/p ns. */
static u128 tat_scaled(const struct sl_bucket_rate *rate, const struct sl_bucket *b)
{
    return (u128)b->tat_ns * rate->p + b->tat_rem;
}

static bool passes(const struct sl_bucket_rate *rate, const struct sl_bucket *b, uint64_t now_ns)
{
    /* now >= TAT - tau, without a negative TAT - tau. */
    return (u128)now_ns * rate->p + rate->tau >= tat_scaled(rate, b);
}

/* TAT = max(TAT, now) + T. */
static void advance(const struct sl_bucket_rate *rate, struct sl_bucket *b, uint64_t now_ns)
{
    if (now_ns > b->tat_ns) {
        b->tat_ns = now_ns;
        b->tat_rem = 0;
    }
    b->tat_ns += rate->inc_ns;
    b->tat_rem += rate->inc_rem; /* both < p < 2^63: no overflow */
    if (b->tat_rem >= rate->p) {
        b->tat_rem -= rate->p;
        b->tat_ns++;
    }
}

bool sl_bucket_take(const struct sl_bucket_rate *rate, struct sl_bucket *b, uint64_t now_ns)
{
    if (!passes(rate, b, now_ns)) {
        return false;
    }
    advance(rate, b, now_ns);
    return true;
}

uint64_t
sl_bucket_next_ns(const struct sl_bucket_rate *rate, const struct sl_bucket *b, uint64_t now_ns)
{
    if (passes(rate, b, now_ns)) {
        return now_ns;
    }
    /* The least t with t p >= TAT p - tau, which is above now p >= 0. */
    u128 x = tat_scaled(rate, b) - rate->tau;
    return (uint64_t)((x + rate->p - 1) / rate->p);
}

bool sl_bucket_take_by(const struct sl_bucket_rate *rate,
                       struct sl_bucket *b,
                       uint64_t from_ns,
                       uint64_t by_ns,
                       uint64_t *ret_at)
{
    if (sl_bucket_next_ns(rate, b, from_ns) > by_ns) {
        return false;
    }
    *ret_at = sl_bucket_reserve(rate, b, from_ns);
    return true;
}

uint64_t sl_bucket_reserve(const struct sl_bucket_rate *rate, struct sl_bucket *b, uint64_t now_ns)
{
    if (passes(rate, b, now_ns)) {
        advance(rate, b, now_ns);
        return now_ns;
    }
    /* Admitted at TAT - tau exactly, which is below TAT: TAT grows by T
     * from itself. Advancing from the admission time, rounded up to whole
     * ns, would make every wait up to 1 ns longer than T. */
    uint64_t at = sl_bucket_next_ns(rate, b, now_ns);
    advance(rate, b, b->tat_ns);
    return at;
}

/* ==== Buckets per key ==== */

/* One key's bucket: in a hash chain and in the LRU list. */
struct entry {
    struct entry *hnext; /* next in its hash chain */
    struct entry *prev;  /* towards the most recently used */
    struct entry *next;  /* towards the least recently used */
    uint64_t hash;
    struct sl_bucket bucket;
    size_t len;
    unsigned char key[]; /* len bytes */
};

struct sl_bucket_map {
    struct entry **slots; /* hash chains; nslots is a power of two */
    size_t nslots;
    size_t count;
    size_t max_keys;
    uint64_t evictions;
    struct entry *mru; /* head of the LRU list */
    struct entry *lru; /* its tail: evicted first */
    uint64_t k0, k1;   /* SipHash key */
};

struct sl_bucket_map *sl_bucket_map_new(size_t max_keys)
{
    struct sl_bucket_map *map = sl_calloc(1, sizeof(*map));

    if (map == NULL) {
        return NULL;
    }
    map->nslots = 16;
    map->slots = sl_calloc(map->nslots, sizeof(*map->slots));
    if (map->slots == NULL) {
        sl_free(map);
        return NULL;
    }
    map->max_keys = max_keys < 1 ? 1 : max_keys;
    uint64_t seed[2];
    if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        /* No entropy yet (early boot): still a key nobody can read back. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed[0] = (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)map;
        seed[1] = (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&ts;
    }
    map->k0 = seed[0];
    map->k1 = seed[1];
    return map;
}

struct sl_bucket_map *sl_bucket_map_free(struct sl_bucket_map *map)
{
    if (map == NULL) {
        return NULL;
    }
    for (struct entry *e = map->mru, *next; e != NULL; e = next) {
        next = e->next;
        sl_free(e);
    }
    sl_free(map->slots);
    sl_free(map);
    return NULL;
}

static struct entry **chain_of(const struct sl_bucket_map *map, uint64_t hash)
{
    return &map->slots[hash & (map->nslots - 1)];
}

static struct entry *
lookup(const struct sl_bucket_map *map, uint64_t hash, const void *key, size_t len)
{
    for (struct entry *e = *chain_of(map, hash); e != NULL; e = e->hnext) {
        if (e->hash == hash && e->len == len && memcmp(e->key, key, len) == 0) {
            return e;
        }
    }
    return NULL;
}

static void lru_unlink(struct sl_bucket_map *map, struct entry *e)
{
    if (e->prev != NULL) {
        e->prev->next = e->next;
    } else {
        map->mru = e->next;
    }
    if (e->next != NULL) {
        e->next->prev = e->prev;
    } else {
        map->lru = e->prev;
    }
}

static void lru_push_front(struct sl_bucket_map *map, struct entry *e)
{
    e->prev = NULL;
    e->next = map->mru;
    if (map->mru != NULL) {
        map->mru->prev = e;
    } else {
        map->lru = e;
    }
    map->mru = e;
}

static void chain_remove(struct sl_bucket_map *map, struct entry *e)
{
    struct entry **pp = chain_of(map, e->hash);

    while (*pp != e) {
        pp = &(*pp)->hnext;
    }
    *pp = e->hnext;
}

/* Doubles the chains while they average more than one entry (up to what
 * max_keys needs). Failing to grow is no error: chains get longer. */
static void maybe_grow(struct sl_bucket_map *map)
{
    if (map->count < map->nslots || map->nslots >= map->max_keys) {
        return;
    }
    size_t n = map->nslots * 2;
    struct entry **slots = sl_calloc(n, sizeof(*slots));
    if (slots == NULL) {
        return;
    }
    for (size_t i = 0; i < map->nslots; i++) {
        for (struct entry *e = map->slots[i], *next; e != NULL; e = next) {
            next = e->hnext;
            e->hnext = slots[e->hash & (n - 1)];
            slots[e->hash & (n - 1)] = e;
        }
    }
    sl_free(map->slots);
    map->slots = slots;
    map->nslots = n;
}

struct sl_bucket *sl_bucket_map_get(struct sl_bucket_map *map, const void *key, size_t len)
{
    uint64_t hash = sl_siphash13(key, len, map->k0, map->k1);
    struct entry *e = lookup(map, hash, key, len);

    if (e != NULL) {
        if (e != map->mru) {
            lru_unlink(map, e);
            lru_push_front(map, e);
        }
        return &e->bucket;
    }
    e = sl_malloc(sizeof(*e) + len);
    if (e == NULL) {
        return NULL;
    }
    if (map->count >= map->max_keys) {
        struct entry *old = map->lru;
        lru_unlink(map, old);
        chain_remove(map, old);
        sl_free(old);
        map->count--;
        map->evictions++;
    }
    e->hash = hash;
    e->len = len;
    if (len > 0) {
        memcpy(e->key, key, len);
    }
    sl_bucket_init(&e->bucket);
    struct entry **chain = chain_of(map, hash);
    e->hnext = *chain;
    *chain = e;
    lru_push_front(map, e);
    map->count++;
    maybe_grow(map);
    return &e->bucket;
}

struct sl_bucket *sl_bucket_map_find(const struct sl_bucket_map *map, const void *key, size_t len)
{
    struct entry *e = lookup(map, sl_siphash13(key, len, map->k0, map->k1), key, len);

    return e != NULL ? &e->bucket : NULL;
}

size_t sl_bucket_map_count(const struct sl_bucket_map *map)
{
    return map->count;
}

uint64_t sl_bucket_map_evictions(const struct sl_bucket_map *map)
{
    return map->evictions;
}
