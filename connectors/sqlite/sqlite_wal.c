/* SPDX-License-Identifier: MIT */
/* WAL checkpoints off the writers' threads. SQLite's automatic checkpoint
 * runs inside the COMMIT that crosses 1000 WAL pages: that commit then
 * copies ~4 MB into the database file and takes ten times as long as the
 * others, which is the p99 of every record behind it. Instead a file's WAL
 * hook (after each commit, on the writer's thread) queues the file for one
 * checkpointer thread per process every WAL_PAGES new pages of log; it
 * opens a connection for the checkpoint and closes it after (a
 * checkpointer thread and connection per sink cost about 150 KB of RSS
 * each beyond memory_limit).
 *
 * Its PASSIVE checkpoints copy what was committed when they began, while
 * the writers go on: they never wait for them nor block them, so alone
 * they never catch up with a writer that keeps committing, and the log
 * restarts from its beginning only after a checkpoint that copied all of
 * it. The writer that finds the log past FINISH_PAGES after its commit
 * waits for a checkpoint in progress and copies the rest itself, in a
 * turn of its own (no writer of this process is in a transaction then,
 * and those that queued meanwhile went first): about WAL_PAGES pages, and
 * a bound on the log whatever the checkpointer's thread gets. (The checkpointer taking the turn
 * itself for that copy, a fourth as large but four times as often, waited for the disk while the
 * writers waited for it: the orders benchmark took 1.2-1.3x as long on a
 * busy machine.) At close the file's connection goes last, so its close
 * checkpoints and removes the WAL as before. */
#include "mem.h"
#include "sqlite_priv.h"

#include <pthread.h>
#include <signal.h>

/* WAL pages after which a checkpoint is due (SQLite's own default). */
#define WAL_PAGES 1000
/* WAL pages after which the writer finishes the checkpoint itself: the
 * log then fits in the first 32 KiB block of the wal-index (4062 frames). */
#define FINISH_PAGES (4 * WAL_PAGES)

static struct {
    pthread_mutex_t life;                /* attach and detach: the thread's start and join */
    pthread_mutex_t mu;                  /* the rest */
    pthread_cond_t cv;                   /* a file is due, or stop */
    pthread_cond_t done;                 /* a checkpoint ended */
    struct sl__sqlite_file *head, *tail; /* due files, oldest first */
    struct sl__sqlite_file *busy;        /* the file being checkpointed */
    int attached;                        /* under life: files with the hook */
    bool stop;
    pthread_t thread; /* under life: runs while attached > 0 */
} ck = {
    .life = PTHREAD_MUTEX_INITIALIZER,
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
    .done = PTHREAD_COND_INITIALIZER,
};

/* sqlite3_wal_hook: runs on the writer's thread after each commit, in the
 * file's turn. */
static int on_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
    struct sl__sqlite_file *f = arg;

    (void)db;
    (void)name;
    f->wal_pages = pages;
    f->ck_from = pages < f->ck_from ? 0 : f->ck_from; /* the log started again */
    if (pages >= f->ck_from + WAL_PAGES) {
        f->ck_from = pages;
        pthread_mutex_lock(&ck.mu);
        if (!f->ck_due) {
            f->ck_due = true;
            f->ck_next = NULL;
            *(ck.tail != NULL ? &ck.tail->ck_next : &ck.head) = f;
            ck.tail = f;
            pthread_cond_signal(&ck.cv);
        }
        pthread_mutex_unlock(&ck.mu);
    }
    return SQLITE_OK;
}

/* Checkpoints f on a connection of its own. A connection that has read
 * nothing has not opened the WAL, and its checkpoint does nothing at all
 * (SQLITE_OK, no frame copied): a read transaction opens it (the header's
 * schema cookie: no schema parsed). A failure (another process's
 * checkpoint or reader, an I/O error) is harmless: the next commits ask
 * again, a writer finishes, and the last close checkpoints anyway. */
static void checkpoint(const char *path)
{
    sqlite3 *db = NULL;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) ==
            SQLITE_OK &&
        sqlite3_exec(db, "PRAGMA schema_version", NULL, NULL, NULL) == SQLITE_OK) {
        (void)sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    }
    (void)sqlite3_close(db);
}

static void *checkpointer(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&ck.mu);
    for (;;) {
        while (ck.head == NULL && !ck.stop) {
            pthread_cond_wait(&ck.cv, &ck.mu);
        }
        if (ck.stop) {
            break;
        }
        struct sl__sqlite_file *f = ck.head;
        ck.head = f->ck_next;
        ck.tail = ck.head != NULL ? ck.tail : NULL;
        f->ck_due = false;
        ck.busy = f; /* detach waits: f and its path stay */
        pthread_mutex_unlock(&ck.mu);
        checkpoint(f->path);
        pthread_mutex_lock(&ck.mu);
        ck.busy = NULL;
        pthread_cond_broadcast(&ck.done);
    }
    pthread_mutex_unlock(&ck.mu);
    return NULL;
}

void sl__sqlite_wal_attach(struct sl__sqlite_file *f)
{
    pthread_mutex_lock(&ck.life);
    if (ck.attached == 0) {
        sigset_t all, old;
        /* Signals belong to the loop thread. */
        (void)sigfillset(&all);
        (void)pthread_sigmask(SIG_BLOCK, &all, &old);
        int e = pthread_create(&ck.thread, NULL, checkpointer, NULL);
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (e != 0) {
            /* SQLite's own checkpoints in COMMIT stay: slower tails,
             * nothing lost. */
            pthread_mutex_unlock(&ck.life);
            return;
        }
        (void)pthread_setname_np(ck.thread, "sl-checkpoint");
    }
    ck.attached++;
    f->ck_attached = true;
    (void)sqlite3_wal_hook(f->db, on_commit, f); /* replaces the automatic checkpoint */
    pthread_mutex_unlock(&ck.life);
}

void sl__sqlite_wal_detach(struct sl__sqlite_file *f)
{
    if (!f->ck_attached) {
        return;
    }
    (void)sqlite3_wal_hook(f->db, NULL, NULL);
    pthread_mutex_lock(&ck.mu);
    if (f->ck_due) {
        struct sl__sqlite_file **p = &ck.head, *prev = NULL;
        while (*p != f) {
            prev = *p;
            p = &(*p)->ck_next;
        }
        *p = f->ck_next;
        ck.tail = ck.tail == f ? prev : ck.tail;
        f->ck_due = false;
    }
    while (ck.busy == f) {
        pthread_cond_wait(&ck.done, &ck.mu);
    }
    pthread_mutex_unlock(&ck.mu);
    pthread_mutex_lock(&ck.life);
    f->ck_attached = false;
    if (--ck.attached == 0) {
        pthread_mutex_lock(&ck.mu);
        ck.stop = true;
        pthread_cond_signal(&ck.cv);
        pthread_mutex_unlock(&ck.mu);
        pthread_join(ck.thread, NULL);
        ck.stop = false;
    }
    pthread_mutex_unlock(&ck.life);
}

bool sl__sqlite_wal_due(const struct sl__sqlite_file *f)
{
    return f->ck_attached && f->wal_pages >= FINISH_PAGES;
}

void sl__sqlite_wal_finish(struct sl__sqlite_file *f)
{
    if (!sl__sqlite_wal_due(f)) {
        return; /* another writer finished it meanwhile */
    }
    /* The checkpointer holds the checkpoint lock (we would get
     * SQLITE_BUSY), and never waits for the turn we hold. */
    pthread_mutex_lock(&ck.mu);
    while (ck.busy == f) {
        pthread_cond_wait(&ck.done, &ck.mu);
    }
    pthread_mutex_unlock(&ck.mu);
    /* RESTART: waits (busy_timeout at most) for the other processes
     * writing this file to end their transaction, so that the next write
     * starts the log again from its beginning. PASSIVE never waited, and
     * with another process always in a transaction the log never started
     * again: 26-377 MB of WAL for two processes of 2M rows each (hostile
     * probe). Alone in the file, it does what PASSIVE did. */
    if (sqlite3_wal_checkpoint_v2(f->db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL) ==
        SQLITE_OK) {
        f->wal_pages = 0;
    }
}
