/* SPDX-License-Identifier: MIT */
/* The bound one SQLite writer can reach: inserts N seven-column order rows
 * (prepared in memory, no parsing) with 32-row multi-VALUES INSERTs in
 * 10k-row transactions, WAL, synchronous=NORMAL, as sluice's sink does.
 * Build: gcc -O2 -o insert_bound bench/sqlite_insert_bound.c -lsqlite3
 * Run:   insert_bound out.db 1000000 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROWS_PER_STMT 32
#define ROWS_PER_TXN  10000

struct row {
    long long id;
    char user[8];
    double amount;
    const char *country;
    const char *status;
    char ts[24];
    long long cents;
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const char *countries[] = {"DE", "FR", "US", "GB", "JP", "BR", "IN", "ES"};
    const char *path = argc > 1 ? argv[1] : "bound.db";
    long n = argc > 2 ? atol(argv[2]) : 1000000;
    struct row *rows = calloc((size_t)n, sizeof(*rows));
    sqlite3 *db;
    sqlite3_stmt *stmt;
    char sql[8192];

    for (long i = 0; i < n; i++) {
        rows[i].id = i + 1;
        snprintf(rows[i].user, sizeof(rows[i].user), "u%ld", (i * 7919) % 1000);
        rows[i].amount = (double)((i * 104729) % 100000) / 100.0;
        rows[i].country = countries[i % 8];
        rows[i].status = "paid";
        snprintf(rows[i].ts, sizeof(rows[i].ts), "2026-%02ld-%02ldT10:00:00Z", i % 12 + 1,
                 i % 28 + 1);
        rows[i].cents = (long long)(rows[i].amount * 100 + 0.5);
    }
    remove(path);
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        return 1;
    }
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                 "CREATE TABLE orders(id, user, amount, country, status, ts, amount_cents)",
                 NULL, NULL, NULL);
    int off = snprintf(sql, sizeof(sql), "INSERT INTO orders VALUES ");
    for (int r = 0; r < ROWS_PER_STMT; r++) {
        off += snprintf(sql + off, sizeof(sql) - (size_t)off, "%s(?,?,?,?,?,?,?)", r ? "," : "");
    }
    sqlite3_prepare_v2(db, sql, -1, &stmt, NULL);
    double t0 = now();
    long i = 0;
    while (i < n) {
        sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
        long end = i + ROWS_PER_TXN < n ? i + ROWS_PER_TXN : n;
        for (; i + ROWS_PER_STMT <= end; i += ROWS_PER_STMT) {
            for (int r = 0; r < ROWS_PER_STMT; r++) {
                const struct row *w = &rows[i + r];
                int b = r * 7;
                sqlite3_bind_int64(stmt, b + 1, w->id);
                sqlite3_bind_text(stmt, b + 2, w->user, -1, SQLITE_STATIC);
                sqlite3_bind_double(stmt, b + 3, w->amount);
                sqlite3_bind_text(stmt, b + 4, w->country, 2, SQLITE_STATIC);
                sqlite3_bind_text(stmt, b + 5, w->status, -1, SQLITE_STATIC);
                sqlite3_bind_text(stmt, b + 6, w->ts, -1, SQLITE_STATIC);
                sqlite3_bind_int64(stmt, b + 7, w->cents);
            }
            sqlite3_step(stmt);
            sqlite3_reset(stmt);
        }
        for (; i < end; i++) { /* the tail, one row at a time */
            char one[128];
            const struct row *w = &rows[i];
            snprintf(one, sizeof(one),
                     "INSERT INTO orders VALUES(%lld,'%s',%.2f,'%s','%s','%s',%lld)", w->id,
                     w->user, w->amount, w->country, w->status, w->ts, w->cents);
            sqlite3_exec(db, one, NULL, NULL, NULL);
        }
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    }
    double secs = now() - t0;
    printf("%ld rows in %.3f s: %.0f rows/s\n", n, secs, (double)n / secs);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    free(rows);
    return 0;
}
