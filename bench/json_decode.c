/* SPDX-License-Identifier: MIT */
/* Benchmark of the JSON line decoder (engine/json_decode.c) on one core:
 * generates N order lines like the quickstart data (or reads a .jsonl file),
 * decodes them all in batches of 1024 records per arena, as a worker does,
 * reads two fields of each record, and reports records/s and MB/s (best of
 * the rounds).
 *
 * Build and run from the repository root:
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Iengine bench/json_decode.c engine/json_decode.c \
 *       engine/json_write.c engine/err.c engine/mem.c engine/arena.c engine/record.c \
 *       engine/buf.c -lm -o /tmp/bench_json_decode
 *   /tmp/bench_json_decode [records (default 1000000)] [rounds (default 5)] [file.jsonl]
 */
#include "arena.h"
#include "err.h"
#include "json.h"
#include "mem.h"
#include "record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_RECORDS 1024

struct lines {
    char *data; /* every line, each followed by '\n' */
    size_t len;
    size_t *start; /* offset of line i */
    size_t n;
};

/* CPU time of this thread: the rate per core, whatever else the machine
 * runs meanwhile (wall time is printed too). */
static double cpu_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void index_lines(struct lines *ls)
{
    size_t cap = 1024;

    ls->start = malloc(cap * sizeof(*ls->start));
    ls->n = 0;
    for (size_t off = 0; off < ls->len;) {
        char *nl = memchr(ls->data + off, '\n', ls->len - off);
        size_t next = nl != NULL ? (size_t)(nl - ls->data) + 1 : ls->len;
        if (ls->n == cap) {
            cap *= 2;
            ls->start = realloc(ls->start, cap * sizeof(*ls->start));
        }
        ls->start[ls->n++] = off;
        off = next;
    }
}

static void generate(struct lines *ls, size_t n)
{
    static const char *const countries[] = {"DE", "FR", "US", "GB", "JP", "BR", "IN", "ES"};
    static const char *const statuses[] = {"paid", "pending", "refunded", "test"};
    static const char *const tags[] = {"a", "b", "new", "vip", "gift", "promo"};
    size_t cap = n * 200 + 1;
    unsigned seed = 42;

    ls->data = malloc(cap);
    ls->len = 0;
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        ls->len += (size_t)snprintf(
            ls->data + ls->len, cap - ls->len,
            "{\"id\":%zu,\"user\":\"u%u\",\"amount\":%u.%02u,\"country\":\"%s\",\"status\":\"%s\","
            "\"ts\":\"2026-01-%02uT%02u:%02u:%02uZ\",\"tags\":[\"%s\",\"%s\"],"
            "\"meta\":{\"ip\":\"10.%u.%u.%u\",\"ua\":\"x\"}}\n",
            i + 1, r % 100000, r % 5000, (r >> 3) % 100, countries[r % 8], statuses[(r >> 4) % 4],
            1 + r % 28, r % 24, (r >> 2) % 60, (r >> 5) % 60, tags[r % 6], tags[(r >> 7) % 6],
            r % 256, (r >> 8) % 256, (r >> 16) % 256);
    }
    index_lines(ls);
}

static int load(struct lines *ls, const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t cap = 1 << 20;

    if (f == NULL) {
        perror(path);
        return -1;
    }
    ls->data = malloc(cap);
    ls->len = 0;
    for (;;) {
        if (ls->len == cap) {
            cap *= 2;
            ls->data = realloc(ls->data, cap);
        }
        size_t got = fread(ls->data + ls->len, 1, cap - ls->len, f);
        if (got == 0) {
            break;
        }
        ls->len += got;
    }
    fclose(f);
    index_lines(ls);
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    struct lines ls = {0};
    struct sl_json_decoder *d = sl_json_decoder_new(0);
    struct sl_arena arena;
    struct sl_err err = {0};
    double best = 1e30;
    double best_wall = 1e30;
    double checksum = 0;
    size_t bad = 0;

    if (argc > 3 ? load(&ls, argv[3]) != 0 : (generate(&ls, n), 0)) {
        return 1;
    }
    sl_arena_init(&arena);
    for (int round = 0; round < rounds; round++) {
        double t0 = cpu_s();
        double w0 = now_s();
        for (size_t i = 0; i < ls.n; i++) {
            if (i % BATCH_RECORDS == 0) {
                sl_arena_release(&arena);
            }
            const char *line = ls.data + ls.start[i];
            size_t len = (i + 1 < ls.n ? ls.start[i + 1] : ls.len) - ls.start[i];
            struct sl_record rec = {0};
            if (len > 0 && line[len - 1] == '\n') {
                len--;
            }
            if (sl_json_decode_object(d, line, len, &rec, &arena, &err) != 0) {
                bad++;
                continue;
            }
            const struct sl_field *amount = sl_record_find(&rec, "amount", 6);
            const struct sl_field *status = sl_record_find(&rec, "status", 6);
            if (amount != NULL && amount->val.type == SL_TYPE_DOUBLE) {
                checksum += amount->val.u.d;
            }
            if (status != NULL) {
                checksum += status->val.len;
            }
        }
        double dt = cpu_s() - t0;
        double wall = now_s() - w0;
        if (dt < best) {
            best = dt;
        }
        if (wall < best_wall) {
            best_wall = wall;
        }
    }
    printf("%zu records, %.1f MB, %zu rejected (%s), checksum %.2f\n", ls.n, (double)ls.len / 1e6,
           bad / (size_t)(rounds > 0 ? rounds : 1), bad ? err.msg : "-", checksum);
    printf("best of %d: %.3f s CPU  %.2f M records/s  %.0f MB/s  (wall %.3f s: %.2f M records/s)\n",
           rounds, best, (double)ls.n / best / 1e6, (double)ls.len / best / 1e6, best_wall,
           (double)ls.n / best_wall / 1e6);
    sl_arena_release(&arena);
    sl_json_decoder_free(d);
    free(ls.start);
    free(ls.data);
    return 0;
}
