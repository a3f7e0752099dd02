/* SPDX-License-Identifier: MIT */
/* Unit tests of the control socket's taps (engine/control.c): the loop
 * thread never waits for a worker that formats a tapped batch (the worker
 * formats outside the tap's lock), what the worker formatted still reaches
 * the client, and taps started and ended while workers tap them (slot
 * reuse, where expressions freed) under the sanitizers. */
#include "batch.h"
#include "control.h"
#include "runtime.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

struct fixture {
    char dir[64];
    char path[96];
    struct sl_control *c;
    struct sl_pipeline pl;
    struct sl_node node;
    struct sl_batch *batch;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));
    struct sl_err err = {0};

    assert_non_null(fx);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/sl-control-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    snprintf(fx->path, sizeof(fx->path), "%s/c.sock", fx->dir);
    fx->c = sl_control_start(fx->path, false, &err);
    assert_non_null(fx->c);
    fx->pl.nodes = &fx->node;
    fx->pl.nnodes = 1;
    fx->node.pl = &fx->pl;
    fx->node.name = "n";
    sl_control_attach(fx->c, &fx->pl);
    fx->batch = sl_batch_new(NULL);
    assert_non_null(fx->batch);
    for (int i = 0; i < 8; i++) {
        struct sl_record *rec = sl_batch_add(fx->batch);
        assert_non_null(rec);
        assert_int_equal(sl_record_append(rec, &fx->batch->arena, "id", 2, sl_value_int(i)), 0);
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    sl_control_close_clients(fx->c);
    assert_int_equal(atomic_load(&fx->node.tapped), 0);
    fx->c = sl_control_stop(fx->c);
    sl_batch_unref(fx->batch);
    rmdir(fx->dir);
    free(fx);
    return 0;
}

/* A client asking for a tap of node n; returns once the server answered. */
static int tap_client(struct fixture *fx, const char *where)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    char req[128], line[64];
    size_t got = 0;

    assert_true(fd >= 0);
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", fx->path);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    snprintf(req, sizeof(req), "tap n\t0\t%s\n", where);
    assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
    sl_control_run(fx->c); /* accepts, reads, answers */
    while (got < 7) {
        ssize_t n = recv(fd, line + got, 7 - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
    assert_memory_equal(line, "#tap n\n", 7);
    return fd;
}

/* ---- the loop thread does not wait for a worker's formatting ---- */

struct held {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool in_hook; /* the worker formatted and waits in the hook */
    bool ran;     /* the loop's turn returned */
    bool saw_ran; /* the worker saw it return while it was in the hook */
    bool once;
};

static void hold_worker(void *arg)
{
    struct held *h = arg;
    struct timespec until;

    pthread_mutex_lock(&h->lock);
    if (h->once) {
        pthread_mutex_unlock(&h->lock);
        return;
    }
    h->once = true;
    h->in_hook = true;
    pthread_cond_broadcast(&h->cond);
    /* The bound only ends a test that failed (the loop's turn waits on a
     * lock this worker holds): a passing one is woken at once. */
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (!h->ran && pthread_cond_timedwait(&h->cond, &h->lock, &until) != ETIMEDOUT) {
    }
    h->saw_ran = h->ran;
    pthread_mutex_unlock(&h->lock);
}

static void *tap_once(void *arg)
{
    struct fixture *fx = arg;

    sl_control_tap(fx->c, &fx->node, 0, fx->batch);
    return NULL;
}

static void test_loop_does_not_wait_for_formatting(void **state)
{
    struct fixture *fx = *state;
    struct held h = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    pthread_t worker;
    char data[4096];
    size_t got = 0;

    int fd = tap_client(fx, "id >= 6");
    assert_int_equal(atomic_load(&fx->node.tapped), 1);
    sl_control_test_on_format(fx->c, hold_worker, &h);
    assert_int_equal(pthread_create(&worker, NULL, tap_once, fx), 0);
    pthread_mutex_lock(&h.lock);
    while (!h.in_hook) {
        pthread_cond_wait(&h.cond, &h.lock);
    }
    pthread_mutex_unlock(&h.lock);
    sl_control_run(fx->c); /* the loop's turn, while the worker formats */
    pthread_mutex_lock(&h.lock);
    h.ran = true;
    pthread_cond_broadcast(&h.cond);
    pthread_mutex_unlock(&h.lock);
    pthread_join(worker, NULL);
    assert_true(h.saw_ran);
    /* What the worker formatted reaches the client at the next turn. */
    sl_control_run(fx->c);
    while (got < 2 * 9) {
        ssize_t n = recv(fd, data + got, sizeof(data) - 1 - got, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
    data[got] = '\0';
    assert_string_equal(data, "{\"id\":6}\n{\"id\":7}\n");
    close(fd);
    sl_control_run(fx->c); /* the hangup ends the tap */
    assert_int_equal(atomic_load(&fx->node.tapped), 0);
}

/* ---- taps come and go while workers tap ---- */

struct stress {
    struct fixture *fx;
    atomic_bool stop;
};

static void *tap_loop(void *arg)
{
    struct stress *s = arg;

    while (!atomic_load(&s->stop)) {
        sl_control_tap(s->fx->c, &s->fx->node, 0, s->fx->batch);
    }
    return NULL;
}

static void test_taps_come_and_go(void **state)
{
    struct fixture *fx = *state;
    struct stress s = {.fx = fx};
    pthread_t workers[3];
    static const char *const wheres[] = {"", "id > 3", "id % 2 == 0"};

    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(pthread_create(&workers[i], NULL, tap_loop, &s), 0);
    }
    for (int round = 0; round < 200; round++) {
        int a = tap_client(fx, wheres[round % 3]);
        int b = tap_client(fx, wheres[(round + 1) % 3]);
        assert_int_equal(atomic_load(&fx->node.tapped), 2);
        sl_control_run(fx->c);
        close(a);
        sl_control_run(fx->c); /* ends a's tap: b's and a new one share the slots */
        int d = tap_client(fx, wheres[(round + 2) % 3]);
        close(b);
        close(d);
        sl_control_run(fx->c);
        assert_int_equal(atomic_load(&fx->node.tapped), 0);
    }
    atomic_store(&s.stop, true);
    for (size_t i = 0; i < 3; i++) {
        pthread_join(workers[i], NULL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_loop_does_not_wait_for_formatting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taps_come_and_go, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
