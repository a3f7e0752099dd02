/* SPDX-License-Identifier: MIT */
/* sl_malloc and friends: libc allocation plus failure injection for tests. */
#include "mem.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Relaxed: the counters only need to be exact within one test thread. */
static atomic_long fail_countdown;
static atomic_long calls;

static int should_fail(void)
{
    atomic_fetch_add_explicit(&calls, 1, memory_order_relaxed);
    if (atomic_load_explicit(&fail_countdown, memory_order_relaxed) == 0) {
        return 0;
    }
    return atomic_fetch_sub_explicit(&fail_countdown, 1, memory_order_relaxed) == 1;
}

void *sl_malloc(size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return malloc(size);
}

void *sl_calloc(size_t n, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return calloc(n, size);
}

void *sl_realloc(void *ptr, size_t size)
{
    if (should_fail()) {
        return NULL;
    }
    return realloc(ptr, size);
}

char *sl_strndup(const char *s, size_t n)
{
    char *p = sl_malloc(n + 1);

    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *sl_strdup(const char *s)
{
    return sl_strndup(s, strlen(s));
}

void sl_free(void *ptr)
{
    free(ptr);
}

void sl_mem_fail_nth(long nth)
{
    atomic_store_explicit(&fail_countdown, nth, memory_order_relaxed);
}

long sl_mem_calls(void)
{
    return atomic_exchange_explicit(&calls, 0, memory_order_relaxed);
}
