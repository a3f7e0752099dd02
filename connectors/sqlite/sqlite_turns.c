/* SPDX-License-Identifier: MIT */
/* Turns on a database file's write lock, in arrival order, for the writers
 * of one process. Sinks on one file each have a connection, and SQLite
 * serialises their transactions with BEGIN IMMEDIATE: a writer that finds
 * the lock taken sleeps in its busy handler (1, 2, 5 ... 100 ms) and polls,
 * while the holder, a bulk load, takes it again at once after each COMMIT.
 * 200 alerts/s beside a bulk load into the same file waited 300-650 ms
 * (p99). Here a writer queues before BEGIN and is woken when its turn
 * comes: the waiter with the highest priority level of what it writes,
 * with aging (aging.h: one level more per 20 ms waited),
 * arrival order among equals. Other processes still meet SQLite's own
 * lock. Files are known by device and inode, not by how their path is
 * spelled. */
#include "aging.h"
#include "clock.h"
#include "connectors/sqlite/sqlite_priv.h"
#include "mem.h"

#include <pthread.h>
#include <sys/stat.h>

/* A writer waiting for its turn, on its own stack. */
struct waiter {
    uint8_t level;
    uint64_t since_ns;
    bool granted;
    struct waiter *next; /* arrival order */
};

struct sl__sqlite_turns {
    dev_t dev;
    ino_t ino;
    int refs; /* under registry */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool held;              /* under mu: a writer has the turn */
    struct waiter *waiting; /* under mu: oldest first */
    struct sl__sqlite_turns *link;
};

static pthread_mutex_t registry = PTHREAD_MUTEX_INITIALIZER;
static struct sl__sqlite_turns *files;
/* The turn this thread holds, and how many times it took it: a writer that
 * writes another sink's rows inside its transaction (dead letters) into
 * the same file must not wait for itself. SQLite's own lock would still
 * refuse the second connection, as before (busy, then retried). */
static _Thread_local struct sl__sqlite_turns *tl_held;
static _Thread_local int tl_depth;

struct sl__sqlite_turns *sl__sqlite_turns_get(const char *path)
{
    struct stat st;
    struct sl__sqlite_turns *t;

    if (stat(path, &st) != 0) {
        return NULL;
    }
    pthread_mutex_lock(&registry);
    for (t = files; t != NULL; t = t->link) {
        if (t->dev == st.st_dev && t->ino == st.st_ino) {
            t->refs++;
            break;
        }
    }
    if (t == NULL && (t = sl_calloc(1, sizeof(*t))) != NULL) {
        t->dev = st.st_dev;
        t->ino = st.st_ino;
        t->refs = 1;
        pthread_mutex_init(&t->mu, NULL);
        pthread_cond_init(&t->cv, NULL);
        t->link = files;
        files = t;
    }
    pthread_mutex_unlock(&registry);
    return t;
}

struct sl__sqlite_turns *sl__sqlite_turns_put(struct sl__sqlite_turns *t)
{
    if (t == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&registry);
    if (--t->refs == 0) {
        struct sl__sqlite_turns **p = &files;
        while (*p != t) {
            p = &(*p)->link;
        }
        *p = t->link;
        pthread_mutex_destroy(&t->mu);
        pthread_cond_destroy(&t->cv);
        sl_free(t);
    }
    pthread_mutex_unlock(&registry);
    return NULL;
}

void sl__sqlite_turns_take(struct sl__sqlite_turns *t, uint8_t level)
{
    if (t == NULL) {
        return;
    }
    if (tl_held == t) {
        tl_depth++;
        return;
    }
    struct waiter me = {.level = level, .since_ns = sl_now_ns()};
    pthread_mutex_lock(&t->mu);
    if (!t->held && t->waiting == NULL) {
        t->held = true;
    } else {
        struct waiter **p = &t->waiting;
        while (*p != NULL) {
            p = &(*p)->next;
        }
        *p = &me;
        while (!me.granted) {
            pthread_cond_wait(&t->cv, &t->mu);
        }
    }
    pthread_mutex_unlock(&t->mu);
    if (tl_held == NULL) {
        tl_held = t;
        tl_depth = 1;
    }
}

/* Under mu: hands the turn to the waiter with the best score (the level,
 * plus one per SL_AGING_NS waited: aging.h), the oldest among equals. */
static void grant_next(struct sl__sqlite_turns *t)
{
    uint64_t now = sl_now_ns(), best_score = 0;
    struct waiter **best = NULL;

    for (struct waiter **p = &t->waiting; *p != NULL; p = &(*p)->next) {
        uint64_t score = sl_aging_score((*p)->level, (*p)->since_ns, now, SL_AGING_NS);
        if (best == NULL || score > best_score) {
            best = p;
            best_score = score;
        }
    }
    t->held = best != NULL;
    if (best != NULL) {
        struct waiter *w = *best;
        *best = w->next;
        w->granted = true;
        pthread_cond_broadcast(&t->cv);
    }
}

void sl__sqlite_turns_give(struct sl__sqlite_turns *t)
{
    if (t == NULL) {
        return;
    }
    if (tl_held == t && --tl_depth > 0) {
        return;
    }
    if (tl_held == t) {
        tl_held = NULL;
    }
    pthread_mutex_lock(&t->mu);
    grant_next(t);
    pthread_mutex_unlock(&t->mu);
}
