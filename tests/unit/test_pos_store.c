/* SPDX-License-Identifier: MIT */
/* The durable position store's priority lanes (sqlite_positions.h): each
 * level of a stream keeps its own position, a lane that never committed
 * has none, and when the priority settings change (another plan), the
 * lowest position of a complete earlier plan stands for the lanes not yet
 * written under the new one. Also the rebuild of a table from before
 * lanes, and which pipeline file owns a writer's positions. Runs on an
 * in-memory database. */
#include "connectors/sqlite/sqlite_positions.h"
#include "err.h"

#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct fixture {
    sqlite3 *db;
    struct sl_pos_store ps;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    if (fx == NULL || sqlite3_open(":memory:", &fx->db) != SQLITE_OK) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    sl_pos_store_close(&fx->ps);
    sqlite3_close(fx->db);
    free(fx);
    return 0;
}

static struct sl_pos_key key(uint8_t level, const char *plan)
{
    return (struct sl_pos_key){"t", "db", "src", "o.jsonl", 0, level, plan};
}

static void put(struct fixture *fx, uint8_t level, const char *plan, int64_t pos)
{
    struct sl_pos_key k = key(level, plan);
    struct sl_err err = {0};

    assert_int_equal(sl_pos_store_put(&fx->ps, &k, pos, NULL, &err), 0);
}

/* The position lane level resumes from under plan, -1 for none. */
static int64_t get(struct fixture *fx, uint8_t level, const char *plan)
{
    struct sl_pos_key k = key(level, plan);
    struct sl_err err = {0};
    int64_t pos = -2;
    char fp[64];
    int rc = sl_pos_store_get(&fx->ps, &k, &pos, fp, sizeof(fp), &err);

    assert_true(rc == 0 || rc == SL_EOF);
    return rc == SL_EOF ? -1 : pos;
}

static void open_store(struct fixture *fx)
{
    struct sl_err err = {0};

    assert_int_equal(sl_pos_store_open(&fx->ps, fx->db, &err), 0);
}

static void test_pos_store_lanes_keep_their_own_positions(void **state)
{
    struct fixture *fx = *state;

    open_store(fx);
    put(fx, 0, "201:aa", 100);
    put(fx, 9, "201:aa", 300);
    assert_int_equal(get(fx, 0, "201:aa"), 100);
    assert_int_equal(get(fx, 9, "201:aa"), 300);
}

/* Under unchanged settings a lane without a row never committed: its
 * records below the other lanes' positions were not written. */
static void test_pos_store_lane_that_never_committed_has_none(void **state)
{
    struct fixture *fx = *state;

    open_store(fx);
    put(fx, 0, "201:aa", 100);
    assert_int_equal(get(fx, 9, "201:aa"), -1);
}

/* Priorities added to a pipeline that ran without: every record below
 * the old position was written, whatever lane it now takes. */
static void test_pos_store_priorities_added_adopt_the_old_position(void **state)
{
    struct fixture *fx = *state;

    open_store(fx);
    put(fx, 0, NULL, 500);
    assert_int_equal(get(fx, 0, "201:aa"), 500);
    assert_int_equal(get(fx, 9, "201:aa"), 500);
    /* Once a lane commits under the new plan, it has its own. */
    put(fx, 9, "201:aa", 800);
    assert_int_equal(get(fx, 9, "201:aa"), 800);
    assert_int_equal(get(fx, 0, "201:aa"), 500);
}

/* Settings changed after a kill left lanes apart: a record between them
 * was written by its old level, which the new settings cannot tell, so
 * neither trimming it nor writing it is right: refused, with a message. */
static void test_pos_store_changed_plan_with_lanes_apart_is_refused(void **state)
{
    struct fixture *fx = *state;
    struct sl_pos_key k = key(0, "201:bb");
    struct sl_err err = {0};
    int64_t pos = 0;

    open_store(fx);
    put(fx, 0, "201:aa", 100);
    put(fx, 9, "201:aa", 300);
    assert_int_equal(sl_pos_store_get(&fx->ps, &k, &pos, NULL, 0, &err), SL_EFATAL);
    assert_non_null(strstr(err.msg, "positions 100 to 300"));
    k = key(0, NULL); /* priorities removed */
    assert_int_equal(sl_pos_store_get(&fx->ps, &k, &pos, NULL, 0, &err), SL_EFATAL);
    assert_int_equal(sl_pos_store_put(&fx->ps, &k, 400, NULL, &err), SL_EFATAL);
    /* The same settings go on. */
    assert_int_equal(get(fx, 0, "201:aa"), 100);
    assert_int_equal(get(fx, 9, "201:aa"), 300);
}

/* An earlier plan whose lane never committed tells nothing below which
 * every record is written: start over (at least once, never a loss). */
static void test_pos_store_incomplete_old_plan_starts_over(void **state)
{
    struct fixture *fx = *state;

    open_store(fx);
    put(fx, 0, "201:aa", 100); /* lane 9 of plan aa never committed */
    assert_int_equal(get(fx, 0, "201:bb"), 0);
    assert_int_equal(get(fx, 9, "201:bb"), 0);
}

/* Settings changed after a run that ended cleanly (both lanes at 500), and
 * the new run is killed after lane 9's first commit under the new plan,
 * before lane 0's: lane 9's row now names the new plan, so the old plan
 * looks as if its lane 9 never committed. Lane 0 must still resume from
 * 500 (every record below it was written under the old plan): 0 makes it,
 * and the source (the lowest over lanes), write [0, 500) of lane 0 again. */
static void test_pos_store_changed_plan_survives_a_lane_committing_first(void **state)
{
    struct fixture *fx = *state;

    open_store(fx);
    put(fx, 0, "201:aa", 500);
    put(fx, 9, "201:aa", 500);
    assert_int_equal(get(fx, 0, "201:bb"), 500);
    put(fx, 9, "201:bb", 800); /* lane 9 commits first under bb; kill -9 */
    assert_int_equal(get(fx, 9, "201:bb"), 800);
    assert_int_equal(get(fx, 0, "201:bb"), 500);
}

/* The same with a level added by the new settings: lanes 0 and 9 commit
 * under the new plan, lane 5 does not before a kill. Lane 5 then has no
 * row and no older plan to fall back on: it resumes from nothing (the
 * source from 0) and writes again every record of level 5 below 500 that
 * the old plan wrote in lane 0 or 9. */
static void test_pos_store_added_level_survives_the_others_committing_first(void **state)
{
    struct fixture *fx = *state;

    open_store(fx);
    put(fx, 0, "201:aa", 500);
    put(fx, 9, "201:aa", 500);
    assert_int_equal(get(fx, 5, "221:bb"), 500);
    put(fx, 0, "221:bb", 800);
    put(fx, 9, "221:bb", 800); /* lane 5 has not committed under bb; kill -9 */
    assert_int_equal(get(fx, 5, "221:bb"), 500);
}

/* A table from before lanes is rebuilt: its positions become lane 0
 * under no plan, and stay what they were. */
static void test_pos_store_table_without_lanes_is_rebuilt(void **state)
{
    struct fixture *fx = *state;

    assert_int_equal(
        sqlite3_exec(fx->db,
                     "CREATE TABLE _sluice_checkpoints(tbl TEXT NOT NULL, writer TEXT NOT NULL,"
                     " source TEXT NOT NULL, stream TEXT NOT NULL, \"partition\" INTEGER NOT NULL,"
                     " position INTEGER NOT NULL, fingerprint TEXT,"
                     " PRIMARY KEY(tbl, writer, source, stream, \"partition\"));"
                     "INSERT INTO _sluice_checkpoints VALUES('t', 'db', 'src', 'o.jsonl', 0, 42,"
                     " '4096:ff')",
                     NULL, NULL, NULL),
        SQLITE_OK);
    open_store(fx);
    assert_int_equal(get(fx, 0, NULL), 42);
    assert_int_equal(get(fx, 9, NULL), -1);
    assert_int_equal(get(fx, 9, "201:aa"), 42);
    put(fx, 9, "201:aa", 50);
    assert_int_equal(get(fx, 9, "201:aa"), 50);
}

/* Each claim notes its pipeline file, and says which other file claimed
 * (table, writer) last; other writers and tables are apart. */
static int
claim(struct fixture *fx, const char *table, const char *writer, const char *file, char *last)
{
    struct sl_err err = {0};

    return sl_pos_store_claim(&fx->ps, table, writer, "src", file, last, 64, &err);
}

static void test_pos_store_claim_says_another_pipeline_file(void **state)
{
    struct fixture *fx = *state;
    char last[64];

    open_store(fx);
    assert_int_equal(claim(fx, "t", "db", "/a.yaml", last), 0);
    assert_int_equal(claim(fx, "t", "db", "/a.yaml", last), 0);
    assert_int_equal(claim(fx, "t", "db", "/b.yaml", last), 1);
    assert_string_equal(last, "/a.yaml");
    assert_int_equal(claim(fx, "t", "db", "/b.yaml", last), 0);
    assert_int_equal(claim(fx, "t", "db2", "/a.yaml", last), 0);
    assert_int_equal(claim(fx, "u", "db", "/a.yaml", last), 0);
    assert_int_equal(claim(fx, "t", "db", "/a.yaml", last), 1);
    assert_string_equal(last, "/b.yaml");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pos_store_lanes_keep_their_own_positions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pos_store_lane_that_never_committed_has_none, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pos_store_priorities_added_adopt_the_old_position,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_pos_store_changed_plan_with_lanes_apart_is_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_pos_store_incomplete_old_plan_starts_over, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_pos_store_changed_plan_survives_a_lane_committing_first, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_pos_store_added_level_survives_the_others_committing_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pos_store_claim_says_another_pipeline_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pos_store_table_without_lanes_is_rebuilt, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
