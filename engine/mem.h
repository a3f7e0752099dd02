/* SPDX-License-Identifier: MIT */
/* The one allocation path: every engine allocation goes through sl_malloc and
 * friends, so tests can inject failures (fail the Nth call) and memory can be
 * accounted in one place. Thread: any. */
#ifndef SL_MEM_H
#define SL_MEM_H

#include <stddef.h>

/* malloc/calloc/realloc/strdup work-alikes; NULL on failure (or injected
 * failure). sl_free accepts NULL. */
void *sl_malloc(size_t size);
void *sl_calloc(size_t n, size_t size);
void *sl_realloc(void *ptr, size_t size);
char *sl_strdup(const char *s);
char *sl_strndup(const char *s, size_t n);
void sl_free(void *ptr);

/* Tests: make the nth allocation from now fail (1 = the next one), and every
 * later one succeed; 0 turns injection off. Returns how many allocations were
 * made since the last call (to size OOM loops). */
void sl_mem_fail_nth(long nth);
long sl_mem_calls(void);

#endif
