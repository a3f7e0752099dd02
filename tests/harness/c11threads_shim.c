/* SPDX-License-Identifier: MIT */
/* C11 <threads.h> on pthreads, linked into every executable of a TSan build.
 * Debian's librdkafka uses glibc's C11 threads, which reach pthreads through
 * glibc-internal calls TSan cannot intercept: librdkafka's threads are unknown
 * to TSan (our callbacks crash there) and its locks invisible (false races).
 * Defined in the executable, these interpose glibc's for every library and go
 * through TSan's pthread interceptors. Also sets the TSan suppressions. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
#include <time.h>

/* The same ABI as glibc: mtx_t, cnd_t and once_flag wrap the pthread types,
 * thrd_t is pthread_t and tss_t is pthread_key_t. */
_Static_assert(sizeof(mtx_t) == sizeof(pthread_mutex_t), "mtx_t wraps pthread_mutex_t");
_Static_assert(sizeof(cnd_t) == sizeof(pthread_cond_t), "cnd_t wraps pthread_cond_t");
_Static_assert(sizeof(thrd_t) == sizeof(pthread_t), "thrd_t is pthread_t");
_Static_assert(sizeof(tss_t) == sizeof(pthread_key_t), "tss_t is pthread_key_t");
_Static_assert(sizeof(once_flag) == sizeof(pthread_once_t), "once_flag wraps pthread_once_t");

#if defined(__SANITIZE_THREAD__)
#define SL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SL_TSAN 1
#endif
#endif

#ifdef SL_TSAN
/* From the TSan runtime: ignore this thread's memory accesses (not its
 * synchronisation) between begin and end. */
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#define IGNORE_BEGIN() __tsan_ignore_thread_begin()
#define IGNORE_END()   __tsan_ignore_thread_end()
#else
#define IGNORE_BEGIN() ((void)0)
#define IGNORE_END()   ((void)0)
#endif

#define MTX(m) ((pthread_mutex_t *)(void *)(m))
#define CND(c) ((pthread_cond_t *)(void *)(c))

/* Maps a pthread result to a thrd_* code, as glibc's thrd_err_map does. */
static int thrd_err(int rc)
{
    switch (rc) {
    case 0:
        return thrd_success;
    case ENOMEM:
        return thrd_nomem;
    case ETIMEDOUT:
        return thrd_timedout;
    case EBUSY:
        return thrd_busy;
    default:
        return thrd_error;
    }
}

/* Each function below is the C11 one (7.26), with glibc's return codes.
 * Thread: any. */

/* ==== Threads ==== */

/* Plain malloc, not sl_malloc: the shim sits below the engine and the mock. */
struct start {
    thrd_start_t func; /* the C11 entry point */
    void *arg;         /* its argument */
};

/* A pthread entry returns void *: carry the C11 int result in it. */
static void *start_thread(void *p)
{
    struct start st = *(struct start *)p;

    free(p);
    return (void *)(intptr_t)st.func(st.arg);
}

/* Starts func(arg) on a new pthread (C11 7.26.5.1). Thread: any. */
int thrd_create(thrd_t *thr, thrd_start_t func, void *arg)
{
    struct start *st = malloc(sizeof(*st));
    pthread_t tid;
    int rc;

    if (st == NULL) {
        return thrd_nomem;
    }
    st->func = func;
    st->arg = arg;
    rc = pthread_create(&tid, NULL, start_thread, st);
    if (rc != 0) {
        free(st);
        return rc == EAGAIN ? thrd_nomem : thrd_err(rc);
    }
    *thr = tid;
    return thrd_success;
}

/* Waits for thr and stores its int result in *res if res is not NULL. */
int thrd_join(thrd_t thr, int *res)
{
    void *ret = NULL;
    int rc = pthread_join(thr, &ret);

    if (rc != 0) {
        return thrd_error;
    }
    if (res != NULL) {
        *res = (int)(intptr_t)ret;
    }
    return thrd_success;
}

int thrd_detach(thrd_t thr)
{
    return pthread_detach(thr) == 0 ? thrd_success : thrd_error;
}

thrd_t thrd_current(void)
{
    return pthread_self();
}

int thrd_equal(thrd_t a, thrd_t b)
{
    return pthread_equal(a, b);
}

_Noreturn void thrd_exit(int res)
{
    pthread_exit((void *)(intptr_t)res);
}

void thrd_yield(void)
{
    (void)sched_yield();
}

/* Returns 0 after sleeping, -1 if a signal interrupted the sleep (the time
 * left is then in *remaining), another negative value on error. */
int thrd_sleep(const struct timespec *duration, struct timespec *remaining)
{
    if (nanosleep(duration, remaining) == 0) {
        return 0;
    }
    return errno == EINTR ? -1 : -2;
}

/* ==== Mutexes ==== */

/* Accepts mtx_plain or mtx_timed, each optionally | mtx_recursive. */
int mtx_init(mtx_t *mtx, int type)
{
    pthread_mutexattr_t attr;
    int rc;

    switch (type) {
    case mtx_plain:
    case mtx_timed:
    case mtx_plain | mtx_recursive:
    case mtx_timed | mtx_recursive:
        break;
    default:
        return thrd_error;
    }
    if (pthread_mutexattr_init(&attr) != 0) {
        return thrd_error;
    }
    if ((type & mtx_recursive) != 0) {
        (void)pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    }
    /* TSan records initialisation and destruction as plain writes to the
     * mutex. librdkafka often publishes a new object to other threads (or
     * retires it) through atomics TSan cannot see, so those writes would
     * "race" with the next lock: hide them, keep the lock semantics. */
    IGNORE_BEGIN();
    rc = pthread_mutex_init(MTX(mtx), &attr);
    IGNORE_END();
    (void)pthread_mutexattr_destroy(&attr);
    return thrd_err(rc);
}

int mtx_lock(mtx_t *mtx)
{
    return thrd_err(pthread_mutex_lock(MTX(mtx)));
}

/* time_point is absolute, on TIME_UTC (CLOCK_REALTIME), as in C11. */
int mtx_timedlock(mtx_t *restrict mtx, const struct timespec *restrict time_point)
{
    return thrd_err(pthread_mutex_timedlock(MTX(mtx), time_point));
}

int mtx_trylock(mtx_t *mtx)
{
    return thrd_err(pthread_mutex_trylock(MTX(mtx)));
}

int mtx_unlock(mtx_t *mtx)
{
    return thrd_err(pthread_mutex_unlock(MTX(mtx)));
}

void mtx_destroy(mtx_t *mtx)
{
    IGNORE_BEGIN(); /* see mtx_init() */
    (void)pthread_mutex_destroy(MTX(mtx));
    IGNORE_END();
}

/* ==== Condition variables ==== */

int cnd_init(cnd_t *cond)
{
    int rc;

    IGNORE_BEGIN(); /* see mtx_init() */
    rc = pthread_cond_init(CND(cond), NULL);
    IGNORE_END();
    return thrd_err(rc);
}

int cnd_signal(cnd_t *cond)
{
    return thrd_err(pthread_cond_signal(CND(cond)));
}

int cnd_broadcast(cnd_t *cond)
{
    return thrd_err(pthread_cond_broadcast(CND(cond)));
}

int cnd_wait(cnd_t *cond, mtx_t *mtx)
{
    return thrd_err(pthread_cond_wait(CND(cond), MTX(mtx)));
}

/* time_point is absolute, on TIME_UTC (CLOCK_REALTIME), as in C11. */
int cnd_timedwait(cnd_t *restrict cond,
                  mtx_t *restrict mtx,
                  const struct timespec *restrict time_point)
{
    return thrd_err(pthread_cond_timedwait(CND(cond), MTX(mtx), time_point));
}

void cnd_destroy(cnd_t *cond)
{
    IGNORE_BEGIN(); /* see mtx_init() */
    (void)pthread_cond_destroy(CND(cond));
    IGNORE_END();
}

/* ==== Thread-specific storage and call_once ==== */

int tss_create(tss_t *key, tss_dtor_t dtor)
{
    return pthread_key_create(key, dtor) == 0 ? thrd_success : thrd_error;
}

void *tss_get(tss_t key)
{
    return pthread_getspecific(key);
}

int tss_set(tss_t key, void *val)
{
    return pthread_setspecific(key, val) == 0 ? thrd_success : thrd_error;
}

void tss_delete(tss_t key)
{
    (void)pthread_key_delete(key);
}

void call_once(once_flag *flag, void (*func)(void))
{
    (void)pthread_once((pthread_once_t *)(void *)flag, func);
}

/* ==== ThreadSanitizer suppressions ==== */

/* librdkafka is not instrumented and synchronises much of its own state with
 * atomics (reference counts, flags) that TSan cannot see, so the pthread and
 * libc calls it makes itself (rwlocks, memcpy, free) look racy among its own
 * threads. called_from_lib makes TSan pass those calls straight through,
 * unobserved. Its mutexes, condition variables and threads are not affected:
 * librdkafka reaches them through the functions above, so the happens-before
 * between its threads and ours stays visible and races in our callbacks are
 * still reported. TSan reads this at startup, on top of any
 * TSAN_OPTIONS=suppressions file. */
#ifdef SL_TSAN
const char *__tsan_default_suppressions(void);

const char *__tsan_default_suppressions(void)
{
    return "called_from_lib:librdkafka.so\n";
}
#endif
