/* SPDX-License-Identifier: MIT */
/* WAL checkpoints off the writer's thread. SQLite's automatic checkpoint
 * runs inside the COMMIT that crosses 1000 WAL pages: that commit then
 * copies ~4 MB into the database file and takes ten times as long as the
 * others, which is the p99 of every record behind it. Instead the writer's
 * WAL hook (after each commit, on the writer's thread) wakes a thread of
 * its own with its own connection, which runs PASSIVE checkpoints: they
 * never wait for and never block the writer, and the WAL restarts from its
 * beginning at the next write after a complete one. At close the thread
 * goes first, so the writer's connection is the last one and its close
 * checkpoints and removes the WAL as before. */
#include "mem.h"
#include "sqlite_priv.h"

#include <pthread.h>
#include <signal.h>

/* WAL pages after which a checkpoint is due (SQLite's own default). */
#define WAL_PAGES 1000

struct sl__sqlite_wal {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool due;    /* under lock: the writer's commit crossed WAL_PAGES */
    bool stop;   /* under lock */
    sqlite3 *db; /* the checkpointer's connection: its thread only */
};

/* sqlite3_wal_hook: runs on the writer's thread after each commit. */
static int on_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct sl__sqlite_wal *wal = arg;

    (void)db;
    (void)name;
    if (pages >= WAL_PAGES) {
        pthread_mutex_lock(&wal->lock);
        wal->due = true;
        pthread_cond_signal(&wal->cond);
        pthread_mutex_unlock(&wal->lock);
    }
    return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
    struct sl__sqlite_wal *wal = arg;

    pthread_mutex_lock(&wal->lock);
    for (;;) {
        while (!wal->due && !wal->stop) {
            pthread_cond_wait(&wal->cond, &wal->lock);
        }
        if (wal->stop) {
            break;
        }
        wal->due = false;
        pthread_mutex_unlock(&wal->lock);
        /* A failure (the file is busy with another process's checkpoint,
         * an I/O error) is harmless: the next commit asks again, and the
         * writer's close checkpoints anyway. */
        (void)sqlite3_wal_checkpoint_v2(wal->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_lock(&wal->lock);
    }
    pthread_mutex_unlock(&wal->lock);
    return NULL;
}

int sl__sqlite_wal_start(struct sl_sqlite_writer *w, struct sl_err *err)
{
    struct sl__sqlite_wal *wal = sl_calloc(1, sizeof(*wal));
    sigset_t all, old;

    if (wal == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    int rc =
        sqlite3_open_v2(w->conf.path, &wal->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        rc = sl__sqlite_fail(wal->db, rc, err, w->conf.path);
        (void)sqlite3_close(wal->db);
        sl_free(wal);
        return rc;
    }
    pthread_mutex_init(&wal->lock, NULL);
    pthread_cond_init(&wal->cond, NULL);
    /* Signals belong to the loop thread. */
    (void)sigfillset(&all);
    (void)pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(&wal->thread, NULL, checkpointer, wal);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        /* SQLite's own checkpoints in COMMIT stay: slower tails, nothing
         * lost. */
        (void)sqlite3_close(wal->db);
        pthread_cond_destroy(&wal->cond);
        pthread_mutex_destroy(&wal->lock);
        sl_free(wal);
        return 0;
    }
    (void)pthread_setname_np(wal->thread, "sl-checkpoint");
    w->wal = wal;
    (void)sqlite3_wal_hook(w->db, on_commit, wal); /* replaces the automatic checkpoint */
    return 0;
}

void sl__sqlite_wal_stop(struct sl_sqlite_writer *w)
{
    struct sl__sqlite_wal *wal = w->wal;

    if (wal == NULL) {
        return;
    }
    (void)sqlite3_wal_hook(w->db, NULL, NULL);
    pthread_mutex_lock(&wal->lock);
    wal->stop = true;
    pthread_cond_signal(&wal->cond);
    pthread_mutex_unlock(&wal->lock);
    pthread_join(wal->thread, NULL);
    (void)sqlite3_close(wal->db);
    pthread_cond_destroy(&wal->cond);
    pthread_mutex_destroy(&wal->lock);
    sl_free(wal);
    w->wal = NULL;
}
