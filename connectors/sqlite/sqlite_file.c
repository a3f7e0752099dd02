/* SPDX-License-Identifier: MIT */
/* One database file as the SQLite writers of this process share it: one
 * connection (DESIGN: one writer connection per database file), the
 * position store and the transaction statements on it, and turns on it.
 * A connection costs about 100 KB of SQLite's memory and parses the
 * file's whole schema: 80 sinks writing 80 tables of one file had 80
 * connections, each holding the 80 tables' schema (about 10 MB).
 *
 * Turns: whoever holds the file's turn uses its connection, nobody else.
 * Writers take a turn per transaction, and for the reads they make
 * outside one (positions to resume from). Sinks on one file would
 * otherwise meet SQLite's lock: a writer that finds it taken sleeps in its
 * busy handler (1, 2, 5 ... 100 ms) and polls, while the holder, a bulk
 * load, takes it again at once after each COMMIT; 200 alerts/s beside a
 * bulk load into the same file waited 300-650 ms (p99). Here a writer
 * queues and is woken when its turn comes: the waiter with the highest
 * priority level of what it writes, with aging (aging.h: one level more
 * per 20 ms waited), arrival order among equals. Other processes still
 * meet SQLite's lock. Files are known by device and inode, not by how
 * their path is spelled. */
#include "aging.h"
#include "clock.h"
#include "connectors/sqlite/sqlite_priv.h"
#include "mem.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A writer waiting for its turn, on its own stack. */
struct sl__sqlite_waiter {
    uint8_t level;
    uint64_t since_ns;
    bool granted;
    struct sl__sqlite_waiter *next; /* arrival order */
};

/* The files with a connection, and their references. Held while a
 * file's connection is set up (at start-up: sinks open one at a time), so
 * that two writers of one new file never make two connections. */
static pthread_mutex_t registry = PTHREAD_MUTEX_INITIALIZER;
static struct sl__sqlite_file *files;
/* The turn this thread holds, and how many times it took it: a writer that
 * writes another sink's rows inside its transaction into the same file
 * must not wait for itself (it cannot happen: such dead letters share the
 * sink's transaction, sqlite_sink.c; SQLite would refuse the nested
 * BEGIN). */
static _Thread_local struct sl__sqlite_file *tl_held;
static _Thread_local int tl_depth;

/* ==== The connection ==== */

static int exec(sqlite3 *db, const char *sql, struct sl_err *err)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

    return rc == SQLITE_OK ? 0 : sl__sqlite_fail(db, rc, err, sql);
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret_st, struct sl_err *err)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, ret_st, NULL);

    return rc == SQLITE_OK ? 0 : sl__sqlite_fail(db, rc, err, sql);
}

/* Switching to WAL takes an exclusive lock, and SQLite does not call the
 * busy handler for it: two processes opening a new file at once would fail.
 * Retry for as long as busy_timeout would have waited. */
static int set_wal(sqlite3 *db, uint32_t busy_ms, struct sl_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = prepare(db, "PRAGMA journal_mode=WAL", &st, err);
    int src = SQLITE_BUSY;

    for (uint32_t waited = 0; rc == 0 && (src & 0xff) == SQLITE_BUSY; waited += 20) {
        src = sqlite3_step(st);
        if ((src & 0xff) == SQLITE_BUSY && waited < busy_ms) {
            (void)sqlite3_reset(st);
            (void)sqlite3_sleep(20);
        } else {
            break;
        }
    }
    if (rc != 0) {
        return rc;
    }
    if (src != SQLITE_ROW) {
        rc = sl__sqlite_fail(db, src, err, "setting WAL mode");
    } else if (sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        rc = sl_err_set(err, SL_EIO, "cannot use WAL mode (journal mode stays %s)",
                        (const char *)sqlite3_column_text(st, 0));
    }
    (void)sqlite3_finalize(st);
    return rc;
}

/* A negative cache_size is KiB. Thread: the turn's holder. */
static int set_cache(struct sl__sqlite_file *f, struct sl_err *err)
{
    char pragma[64];

    snprintf(pragma, sizeof(pragma), "PRAGMA cache_size=-%llu",
             (unsigned long long)(f->cache_bytes + 1023) / 1024);
    return exec(f->db, pragma, err);
}

static int
open_db(struct sl__sqlite_file *f, const char *path, uint32_t busy_ms, struct sl_err *err)
{
    int rc = sqlite3_open_v2(
        path, &f->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc != SQLITE_OK) {
        return sl__sqlite_fail(f->db, rc, err, path);
    }
    (void)sqlite3_extended_result_codes(f->db, 1);
    (void)sqlite3_busy_timeout(f->db, (int)busy_ms);
    rc = set_wal(f->db, busy_ms, err);
    if (rc == 0) {
        rc = exec(f->db, "PRAGMA synchronous=NORMAL", err);
    }
    if (rc == 0 && f->cache_bytes > 0) {
        rc = set_cache(f, err);
    }
    f->max_vars = (uint32_t)sqlite3_limit(f->db, SQLITE_LIMIT_VARIABLE_NUMBER, -1);
    if (rc == 0) {
        rc = prepare(f->db, "BEGIN IMMEDIATE", &f->begin, err);
    }
    if (rc == 0) {
        rc = prepare(f->db, "COMMIT", &f->commit, err);
    }
    if (rc == 0) {
        rc = prepare(f->db, "ROLLBACK", &f->rollback, err);
    }
    if (rc == 0) {
        rc = sl_pos_store_open(&f->ps, f->db, err);
    }
    const char *name = rc == 0 ? sqlite3_db_filename(f->db, "main") : NULL;
    if (rc == 0 && (f->path = sl_strdup(name != NULL && name[0] != '\0' ? name : path)) == NULL) {
        rc = sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    return rc;
}

/* Frees f, its connection last: the last connection to a file
 * checkpoints and removes the WAL as it closes. */
static void file_free(struct sl__sqlite_file *f)
{
    if (f->db != NULL) {
        sl__sqlite_wal_detach(f);
    }
    sl_pos_store_close(&f->ps);
    (void)sqlite3_finalize(f->begin);
    (void)sqlite3_finalize(f->commit);
    (void)sqlite3_finalize(f->rollback);
    (void)sqlite3_close(f->db);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    sl_free(f->path);
    sl_free(f);
}

void sl__sqlite_create_file(const char *path)
{
    struct stat st;

    /* Never an open and close of a file that exists: closing any
     * descriptor of a file drops every POSIX lock this process holds on
     * it, the SQLite connection's included. Another process's connection
     * then believed itself the last one, checkpointed and deleted the WAL
     * and shm files this process was still writing: rows lost, database
     * corrupted (hostile probe, session 11). A file that does not exist
     * (a dangling symlink's target included) has no connection. */
    if (stat(path, &st) == 0) {
        return;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 && errno == EEXIST && stat(path, &st) != 0) {
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644); /* a dangling symlink */
    }
    if (fd >= 0) {
        (void)close(fd);
    }
}

/* Under registry: the file of st, NULL when none has a connection. */
static struct sl__sqlite_file *find(const struct stat *st)
{
    for (struct sl__sqlite_file *f = files; f != NULL; f = f->link) {
        if (f->dev == st->st_dev && f->ino == st->st_ino) {
            return f;
        }
    }
    return NULL;
}

/* Adds a writer's page cache share to a file already open. */
static int add_cache(struct sl__sqlite_file *f, uint64_t cache_bytes, struct sl_err *err)
{
    if (cache_bytes == 0) {
        return 0;
    }
    sl__sqlite_file_take(f, SL__SQLITE_SHORT);
    f->cache_bytes += cache_bytes;
    int rc = set_cache(f, err);
    sl__sqlite_file_give(f);
    return rc;
}

struct sl__sqlite_file *
sl__sqlite_file_open(const char *path, uint32_t busy_ms, uint64_t cache_bytes, struct sl_err *err)
{
    struct sl__sqlite_file *f;
    struct stat st;

    sl__sqlite_create_file(path);
    bool known = stat(path, &st) == 0;
    pthread_mutex_lock(&registry);
    f = known ? find(&st) : NULL;
    if (f != NULL) {
        f->refs++;
        pthread_mutex_unlock(&registry);
        if (add_cache(f, cache_bytes, err) != 0) {
            return sl__sqlite_file_close(f);
        }
        return f;
    }
    f = sl_calloc(1, sizeof(*f));
    if (f == NULL) {
        pthread_mutex_unlock(&registry);
        sl_err_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    f->refs = 1;
    f->cache_bytes = cache_bytes;
    if (open_db(f, path, busy_ms, err) != 0) {
        pthread_mutex_unlock(&registry);
        file_free(f);
        return NULL;
    }
    sl__sqlite_wal_attach(f);
    /* A file whose identity cannot be read is not shared: a connection
     * of its own, as before. */
    if (known) {
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        f->listed = true;
        f->link = files;
        files = f;
    }
    pthread_mutex_unlock(&registry);
    return f;
}

struct sl__sqlite_file *sl__sqlite_file_close(struct sl__sqlite_file *f)
{
    if (f == NULL) {
        return NULL;
    }
    pthread_mutex_lock(&registry);
    bool last = --f->refs == 0;
    if (last && f->listed) {
        struct sl__sqlite_file **p = &files;
        while (*p != f) {
            p = &(*p)->link;
        }
        *p = f->link;
    }
    pthread_mutex_unlock(&registry);
    if (last) {
        file_free(f);
    }
    return NULL;
}

/* ==== Turns ==== */

void sl__sqlite_file_take(struct sl__sqlite_file *f, uint8_t level)
{
    if (tl_held == f) {
        tl_depth++;
        return;
    }
    struct sl__sqlite_waiter me = {.level = level, .since_ns = sl_now_ns()};
    pthread_mutex_lock(&f->mu);
    if (!f->held && f->waiting == NULL) {
        f->held = true;
    } else {
        struct sl__sqlite_waiter **p = &f->waiting;
        while (*p != NULL) {
            p = &(*p)->next;
        }
        *p = &me;
        while (!me.granted) {
            pthread_cond_wait(&f->cv, &f->mu);
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (tl_held == NULL) {
        tl_held = f;
        tl_depth = 1;
    }
}

/* Under mu: hands the turn to the waiter with the best score (the level,
 * plus one per SL_AGING_NS waited: aging.h), the oldest among equals. */
static void grant_next(struct sl__sqlite_file *f)
{
    uint64_t now = sl_now_ns(), best_score = 0;
    struct sl__sqlite_waiter **best = NULL;

    for (struct sl__sqlite_waiter **p = &f->waiting; *p != NULL; p = &(*p)->next) {
        uint64_t score = sl_aging_score((*p)->level, (*p)->since_ns, now, SL_AGING_NS);
        if (best == NULL || score > best_score) {
            best = p;
            best_score = score;
        }
    }
    f->held = best != NULL;
    if (best != NULL) {
        struct sl__sqlite_waiter *w = *best;
        *best = w->next;
        w->granted = true;
        pthread_cond_broadcast(&f->cv);
    }
}

void sl__sqlite_file_give(struct sl__sqlite_file *f)
{
    if (tl_held == f && --tl_depth > 0) {
        return;
    }
    if (tl_held == f) {
        tl_held = NULL;
    }
    pthread_mutex_lock(&f->mu);
    grant_next(f);
    pthread_mutex_unlock(&f->mu);
}
