/* SPDX-License-Identifier: MIT */
/* Unit tests of priority levels (engine/priority.c, DESIGN.md "Flow
 * control"): sl_priority_split on one level, on mixed levels and on records
 * whose priority is not a level (dead letters), shared batches left as they
 * were, sl_priority_relabel, OOM loops over both, the levels an expression
 * may give (sl_expr_int_choices), and the copies per level the loader counts
 * for sinks (sl_conf_node.paths, conf_dag.c). */
#include "batch.h"
#include "conf.h"
#include "err.h"
#include "expr.h"
#include "flow.h"
#include "mem.h"
#include "priority.h"
#include "record.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define LEVELS SL_PRIORITY_LEVELS

/* The levels expressions in these tests use. */
#define TIERS "if(amount > 900, 9, if(amount > 500, 5, 0))"

/* ==== Helpers ==== */

/* A node as the loader leaves it for an expression priority. */
struct prio_node {
    struct sl_conf_node cn;
};

static void node_init(struct prio_node *pn, const char *text)
{
    struct sl_err err = {0};
    uint64_t mask = 0;

    memset(pn, 0, sizeof(*pn));
    pn->cn.name = "tag";
    pn->cn.kind = SLUICE_KIND_TRANSFORM;
    pn->cn.priority = -1;
    pn->cn.priority_expr = sl_expr_compile(text, strlen(text), &err);
    if (pn->cn.priority_expr == NULL) {
        fail_msg("%s: %s", text, err.msg);
    }
    assert_int_equal(sl_expr_int_choices(pn->cn.priority_expr, 0, LEVELS - 1, &mask, &err), 0);
    pn->cn.priority_levels = (uint16_t)mask;
}

static void node_fini(struct prio_node *pn)
{
    sl_expr_free(pn->cn.priority_expr);
}

/* A record's value: what a test puts in `amount` or `prio`. */
struct val {
    uint8_t type;
    int64_t i;
    double d;
    const char *s;
};

#define VI(x)   ((struct val){.type = SL_TYPE_INT, .i = (x)})
#define VD(x)   ((struct val){.type = SL_TYPE_DOUBLE, .d = (x)})
#define VS(x)   ((struct val){.type = SL_TYPE_STR, .s = (x)})
#define VNULL   ((struct val){.type = SL_TYPE_NULL})
#define VABSENT ((struct val){.type = 0xFF})

static struct sl_value to_value(struct sl_arena *arena, struct val v)
{
    switch (v.type) {
    case SL_TYPE_INT:
        return sl_value_int(v.i);
    case SL_TYPE_DOUBLE:
        return sl_value_double(v.d);
    case SL_TYPE_STR: {
        char *s = sl_arena_strndup(arena, v.s, strlen(v.s));
        assert_non_null(s);
        return sl_value_str(s, (uint32_t)strlen(v.s));
    }
    default:
        return sl_value_null();
    }
}

/* A batch at level 0 with a position (source 1, stream 2, seq 7, positions
 * 100..200) and n records: id = i + 1, name = "n<id>" (arena bytes), and the
 * field `field` set to vals[i] (not set at all for VABSENT). */
static struct sl_batch *
make_batch(struct sl_flow *flow, const char *field, const struct val *vals, size_t n)
{
    struct sl_batch *b = sl_batch_new(flow);

    assert_non_null(b);
    b->source = 1;
    b->stream = 2;
    b->stream_name = "orders.jsonl";
    b->seq = 7;
    b->pos_start = 100;
    b->pos_end = 200;
    b->line = 11;
    for (size_t i = 0; i < n; i++) {
        struct sl_record *rec = sl_batch_add(b);
        char name[16];
        int len = snprintf(name, sizeof(name), "n%zu", i + 1);
        char *s = sl_arena_strndup(&b->arena, name, (size_t)len);

        assert_non_null(rec);
        assert_non_null(s);
        rec->meta.stream = "orders.jsonl";
        rec->meta.line = (int64_t)i + 11;
        assert_int_equal(sl_record_append(rec, &b->arena, "id", 2, sl_value_int((int64_t)i + 1)),
                         0);
        assert_int_equal(
            sl_record_append(rec, &b->arena, "name", 4, sl_value_str(s, (uint32_t)len)), 0);
        if (vals[i].type != 0xFF) {
            assert_int_equal(sl_record_append(rec, &b->arena, field, (uint32_t)strlen(field),
                                              to_value(&b->arena, vals[i])),
                             0);
        }
    }
    return b;
}

/* Adds a dead letter (as an earlier node of the same task would have). */
static void add_dead(struct sl_batch *b, const char *why)
{
    struct sl_record rec = {0};

    rec.raw = "{bad";
    rec.raw_len = 4;
    rec.meta.line = 3;
    assert_int_equal(sl_batch_add_dead(b, &rec, "orders", "orders", "%s", why), 0);
}

static int64_t rec_int(const struct sl_record *rec, const char *name)
{
    const struct sl_field *f = sl_record_find(rec, name, (uint32_t)strlen(name));

    assert_non_null(f);
    assert_int_equal(f->val.type, SL_TYPE_INT);
    return f->val.u.i;
}

/* rec is record id of make_batch: its id, name and `field` = want. */
static void
check_record(const struct sl_record *rec, int64_t id, const char *field, struct val want)
{
    char name[16];
    int len = snprintf(name, sizeof(name), "n%lld", (long long)id);
    const struct sl_field *f = sl_record_find(rec, "name", 4);

    assert_int_equal(rec_int(rec, "id"), id);
    assert_non_null(f);
    assert_int_equal(f->val.type, SL_TYPE_STR);
    assert_int_equal(f->val.len, len);
    assert_memory_equal(f->val.u.s, name, (size_t)len);
    assert_int_equal(rec->meta.line, id + 10);
    f = sl_record_find(rec, field, (uint32_t)strlen(field));
    if (want.type == 0xFF) {
        assert_null(f);
        return;
    }
    assert_non_null(f);
    assert_int_equal(f->val.type, want.type);
    if (want.type == SL_TYPE_INT) {
        assert_int_equal(f->val.u.i, want.i);
    } else if (want.type == SL_TYPE_DOUBLE) {
        assert_true(f->val.u.d == want.d);
    } else if (want.type == SL_TYPE_STR) {
        assert_int_equal(f->val.len, strlen(want.s));
        assert_memory_equal(f->val.u.s, want.s, strlen(want.s));
    }
}

/* part has the position of make_batch, at level. */
static void check_position(const struct sl_batch *part, int level)
{
    assert_int_equal(part->source, 1);
    assert_int_equal(part->stream, 2);
    assert_string_equal(part->stream_name, "orders.jsonl");
    assert_int_equal(part->seq, 7);
    assert_int_equal(part->pos_start, 100);
    assert_int_equal(part->pos_end, 200);
    assert_int_equal(part->level, level);
}

/* parts: exactly the levels of mask, each with batch's position, never a
 * shell with records (an empty part made for a level is a shell, the input
 * itself keeps its flag: checked by the callers). */
static void check_parts(struct sl_batch *const parts[LEVELS], unsigned mask)
{
    for (int l = 0; l < LEVELS; l++) {
        if (((mask >> l) & 1u) == 0) {
            assert_null(parts[l]);
            continue;
        }
        assert_non_null(parts[l]);
        check_position(parts[l], l);
        assert_true(parts[l]->n == 0 || !parts[l]->shell);
        assert_int_equal(atomic_load(&parts[l]->refs), 1);
    }
}

static uint32_t total_dead(struct sl_batch *const parts[LEVELS])
{
    uint32_t n = 0;

    for (int l = 0; l < LEVELS; l++) {
        n += parts[l] != NULL ? parts[l]->ndead : 0;
    }
    return n;
}

static void release(struct sl_batch *parts[LEVELS])
{
    for (int l = 0; l < LEVELS; l++) {
        parts[l] = sl_batch_unref(parts[l]);
    }
}

#define BIT(l) (1u << (l))

/* ==== sl_priority_split ==== */

/* Every record at one level: that part is the batch itself, relabelled;
 * every other level the expression may give gets an empty shell with the
 * same position and sequence number. */
static void test_priority_split_one_level_is_the_batch_itself(void **state)
{
    const struct val amounts[] = {VD(950.5), VI(901), VI(999)};
    struct sl_batch *parts[LEVELS];
    struct prio_node pn;
    uint32_t dead = 99;

    (void)state;
    node_init(&pn, TIERS);
    assert_int_equal(pn.cn.priority_levels, BIT(0) | BIT(5) | BIT(9));
    struct sl_batch *b = make_batch(NULL, "amount", amounts, 3);
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    assert_int_equal(dead, 0);
    check_parts(parts, BIT(0) | BIT(5) | BIT(9));
    assert_ptr_equal(parts[9], b);
    assert_int_equal(parts[9]->n, 3);
    assert_false(parts[9]->shell);
    for (int i = 0; i < 3; i++) {
        check_record(&parts[9]->recs[i], i + 1, "amount", amounts[i]);
    }
    assert_int_equal(parts[0]->n, 0);
    assert_int_equal(parts[5]->n, 0);
    assert_true(parts[0]->shell && parts[5]->shell);
    release(parts);

    /* The lowest level too, and an empty batch (all filtered out): one
     * level, the lowest. */
    const struct val low[] = {VI(1), VNULL, VABSENT};
    b = make_batch(NULL, "amount", low, 3);
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    check_parts(parts, BIT(0) | BIT(5) | BIT(9));
    assert_ptr_equal(parts[0], b);
    assert_int_equal(parts[0]->n, 3);
    assert_true(parts[5]->shell && parts[9]->shell);
    release(parts);
    b = make_batch(NULL, "amount", low, 0);
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    check_parts(parts, BIT(0) | BIT(5) | BIT(9));
    assert_int_equal(parts[0]->n + parts[5]->n + parts[9]->n, 0);
    assert_ptr_equal(parts[0], b); /* an empty batch, as a filter emits it */
    assert_true(parts[5]->shell && parts[9]->shell);
    release(parts);
    node_fini(&pn);
}

/* @priority in the expression reads the level the batch has so far. */
static void test_priority_split_reads_the_batch_level(void **state)
{
    const struct val amounts[] = {VI(1), VI(2)};
    struct sl_batch *parts[LEVELS];
    struct prio_node pn;
    uint32_t dead = 99;

    (void)state;
    node_init(&pn, "if(@priority > 4, 9, 1)");
    assert_int_equal(pn.cn.priority_levels, BIT(1) | BIT(9));
    for (int level = 0; level < LEVELS; level++) {
        struct sl_batch *b = make_batch(NULL, "amount", amounts, 2);
        b->level = (uint8_t)level;
        assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
        check_parts(parts, BIT(1) | BIT(9));
        assert_ptr_equal(parts[level > 4 ? 9 : 1], b);
        assert_int_equal(b->n, 2);
        release(parts);
    }
    node_fini(&pn);
    node_init(&pn, "@priority"); /* computed: any level, here the batch's own */
    assert_int_equal(pn.cn.priority_levels, 0x3FF);
    struct sl_batch *b = make_batch(NULL, "amount", amounts, 2);
    b->level = 7;
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    check_parts(parts, 0x3FF);
    assert_ptr_equal(parts[7], b);
    release(parts);
    node_fini(&pn);
}

/* Mixed levels: each record in its level's part, in input order, its
 * fields intact (they read the input's bytes, kept alive as the parts'
 * parent); the input's dead letters travel in the lowest level's part. */
static void test_priority_split_mixed_levels_keep_order_and_values(void **state)
{
    const struct val amounts[] = {VI(950), VI(10), VD(600.25), VI(920), VNULL, VI(510), VI(901)};
    const int want9[] = {1, 4, 7}, want5[] = {3, 6}, want0[] = {2, 5};
    struct sl_batch *parts[LEVELS];
    struct prio_node pn;
    struct sl_flow flow;
    uint32_t dead = 99;

    (void)state;
    sl_flow_init(&flow, 64 << 20);
    node_init(&pn, TIERS);
    struct sl_batch *b = make_batch(&flow, "amount", amounts, 7);
    add_dead(b, "bad json");
    add_dead(b, "bad too");
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    assert_int_equal(dead, 0);
    check_parts(parts, BIT(0) | BIT(5) | BIT(9));
    assert_int_equal(parts[9]->n, 3);
    assert_int_equal(parts[5]->n, 2);
    assert_int_equal(parts[0]->n, 2);
    assert_false(parts[9]->shell || parts[5]->shell || parts[0]->shell);
    for (int i = 0; i < 3; i++) {
        check_record(&parts[9]->recs[i], want9[i], "amount", amounts[want9[i] - 1]);
    }
    for (int i = 0; i < 2; i++) {
        check_record(&parts[5]->recs[i], want5[i], "amount", amounts[want5[i] - 1]);
        check_record(&parts[0]->recs[i], want0[i], "amount", amounts[want0[i] - 1]);
    }
    assert_int_equal(parts[0]->ndead, 2);
    assert_int_equal(total_dead(parts), 2);
    assert_string_equal(parts[0]->dead[0].error, "bad json");
    assert_string_equal(parts[0]->dead[1].error, "bad too");
    assert_int_equal(parts[0]->dead[0].rec.raw_len, 4);
    assert_memory_equal(parts[0]->dead[0].rec.raw, "{bad", 4);
    /* Free the parts in an order that leaves the input's bytes to the
     * last: the records above read them (ASan checks the lifetimes). */
    parts[0] = sl_batch_unref(parts[0]);
    parts[5] = sl_batch_unref(parts[5]);
    check_record(&parts[9]->recs[2], 7, "amount", amounts[6]);
    release(parts);
    /* Every byte charged to the budget was given back. */
    assert_int_equal(atomic_load(&flow.used), 0);

    /* No record at the lowest level: its part is a shell that still
     * carries the dead letters. */
    const struct val high[] = {VI(950), VI(600)};
    b = make_batch(&flow, "amount", high, 2);
    add_dead(b, "bad json");
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    check_parts(parts, BIT(0) | BIT(5) | BIT(9));
    assert_int_equal(parts[0]->n, 0);
    assert_true(parts[0]->shell);
    assert_int_equal(parts[0]->ndead, 1);
    assert_int_equal(total_dead(parts), 1);
    assert_int_equal(parts[9]->n, 1);
    assert_int_equal(parts[5]->n, 1);
    release(parts);
    assert_int_equal(atomic_load(&flow.used), 0);
    node_fini(&pn);
}

/* The input's dead letters when every record has one level: whichever part
 * takes them, exactly one does (each dead letter reaches one sink once). */
static void test_priority_split_one_level_keeps_dead_letters_once(void **state)
{
    const struct val amounts[] = {VI(950), VI(999)};
    struct sl_batch *parts[LEVELS];
    struct prio_node pn;
    uint32_t dead = 99;

    (void)state;
    node_init(&pn, TIERS);
    struct sl_batch *b = make_batch(NULL, "amount", amounts, 2);
    add_dead(b, "bad json");
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    assert_int_equal(dead, 0);
    check_parts(parts, BIT(0) | BIT(5) | BIT(9));
    assert_int_equal(parts[9]->n, 2);
    assert_int_equal(total_dead(parts), 1);
    release(parts);
    node_fini(&pn);
}

/* A record whose priority is not a level it may give is a dead letter of
 * the node, with the reason, in the lowest level's part, and counted; null
 * (or a missing field) is level 0. */
static void test_priority_split_bad_values_are_dead_letters(void **state)
{
    const struct val prio[] = {VS("high"), VI(3), VD(2.5), VI(12), VNULL,
                               VI(-1),     VI(9), VABSENT, VI(0)};
    struct sl_batch *parts[LEVELS];
    struct prio_node pn;
    uint32_t dead = 99;

    (void)state;
    node_init(&pn, "prio"); /* computed: any level */
    assert_int_equal(pn.cn.priority_levels, 0x3FF);
    struct sl_batch *b = make_batch(NULL, "prio", prio, 9);
    add_dead(b, "earlier");
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    assert_int_equal(dead, 4);
    check_parts(parts, 0x3FF);
    /* 0: null, missing, 0; 3; 9. */
    assert_int_equal(parts[0]->n, 3);
    check_record(&parts[0]->recs[0], 5, "prio", VNULL);
    check_record(&parts[0]->recs[1], 8, "prio", VABSENT);
    check_record(&parts[0]->recs[2], 9, "prio", VI(0));
    assert_int_equal(parts[3]->n, 1);
    check_record(&parts[3]->recs[0], 2, "prio", VI(3));
    assert_int_equal(parts[9]->n, 1);
    check_record(&parts[9]->recs[0], 7, "prio", VI(9));
    for (int l = 1; l < LEVELS; l++) {
        assert_int_equal(parts[l]->n, l == 3 || l == 9);
        assert_int_equal(parts[l]->ndead, 0);
    }
    /* The input's own dead letter first, then the new ones in input order. */
    assert_int_equal(parts[0]->ndead, 5);
    assert_string_equal(parts[0]->dead[0].error, "earlier");
    const struct {
        int64_t id;
        const char *error;
    } want[] = {
        {1, "priority: expected an int 0..9, got string"},
        {3, "priority: expected an int 0..9, got float"},
        {4, "priority: 12 is not a level this node gives (0..9)"},
        {6, "priority: -1 is not a level this node gives (0..9)"},
    };
    for (int i = 0; i < 4; i++) {
        const struct sl_dead *d = &parts[0]->dead[i + 1];
        assert_int_equal(rec_int(&d->rec, "id"), want[i].id);
        assert_string_equal(d->error, want[i].error);
        assert_string_equal(d->node, "tag");
        assert_string_equal(d->source, "orders");
        assert_int_equal(d->rec.meta.line, want[i].id + 10);
    }
    release(parts);
    node_fini(&pn);

    /* The expression fails on a record (a type error): a dead letter with
     * the evaluator's message. */
    const struct val amounts[] = {VI(950), VS("x"), VI(10)};
    node_init(&pn, "if(amount * 2 > 1000, 9, 0)");
    b = make_batch(NULL, "amount", amounts, 3);
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    assert_int_equal(dead, 1);
    check_parts(parts, BIT(0) | BIT(9));
    assert_int_equal(parts[9]->n, 1);
    assert_int_equal(parts[0]->n, 1);
    check_record(&parts[0]->recs[0], 3, "amount", VI(10));
    assert_int_equal(parts[0]->ndead, 1);
    assert_int_equal(rec_int(&parts[0]->dead[0].rec, "id"), 2);
    assert_true(strncmp(parts[0]->dead[0].error, "priority: ", 10) == 0);
    assert_true(strlen(parts[0]->dead[0].error) > 10);
    release(parts);

    /* Every record dead: no part has records, the lowest has them all. */
    const struct val bad[] = {VS("x"), VS("y")};
    b = make_batch(NULL, "amount", bad, 2);
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    assert_int_equal(dead, 2);
    check_parts(parts, BIT(0) | BIT(9));
    assert_int_equal(parts[0]->n + parts[9]->n, 0);
    assert_int_equal(parts[0]->ndead, 2);
    assert_true(parts[0]->shell && parts[9]->shell);
    release(parts);
    node_fini(&pn);
}

/* A batch another path still reads (refs 2) is left as it was: the split
 * works on a copy, the other reference sees its level and its records. */
static void test_priority_split_shared_batch_is_not_modified(void **state)
{
    const struct val one[] = {VI(950), VI(990)};
    const struct val mixed[] = {VI(950), VI(10), VI(600)};
    struct sl_batch *parts[LEVELS];
    struct prio_node pn;
    uint32_t dead = 99;

    (void)state;
    node_init(&pn, TIERS);
    /* One level. */
    struct sl_batch *b = make_batch(NULL, "amount", one, 2);
    b->level = 2;
    sl_batch_ref(b);
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    check_parts(parts, BIT(0) | BIT(5) | BIT(9));
    assert_ptr_not_equal(parts[9], b);
    assert_int_equal(parts[9]->n, 2);
    check_record(&parts[9]->recs[1], 2, "amount", VI(990));
    assert_int_equal(b->level, 2);
    assert_int_equal(b->n, 2);
    assert_false(b->shell);
    release(parts);
    /* Ours alone again, and still intact. */
    assert_int_equal(atomic_load(&b->refs), 1);
    check_record(&b->recs[0], 1, "amount", VI(950));
    sl_batch_unref(b);

    /* Mixed levels. */
    b = make_batch(NULL, "amount", mixed, 3);
    sl_batch_ref(b);
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead), 0);
    check_parts(parts, BIT(0) | BIT(5) | BIT(9));
    assert_int_equal(parts[9]->n + parts[5]->n + parts[0]->n, 3);
    assert_int_equal(b->level, 0);
    assert_int_equal(b->n, 3);
    for (int i = 0; i < 3; i++) {
        check_record(&b->recs[i], i + 1, "amount", mixed[i]);
    }
    release(parts);
    assert_int_equal(atomic_load(&b->refs), 1);
    check_record(&b->recs[2], 3, "amount", VI(600));
    sl_batch_unref(b);

    /* A fork (records read in place from its parent) with refs 1. */
    b = make_batch(NULL, "amount", mixed, 3);
    add_dead(b, "bad json");
    struct sl_batch *fork = sl_batch_fork(b);
    assert_non_null(fork);
    assert_true(fork->recs_borrowed);
    assert_int_equal(sl_priority_split(&pn.cn, "tag", "orders", fork, parts, &dead), 0);
    check_parts(parts, BIT(0) | BIT(5) | BIT(9));
    assert_int_equal(parts[9]->n + parts[5]->n + parts[0]->n, 3);
    assert_int_equal(total_dead(parts), 0);
    assert_int_equal(b->n, 3);
    assert_int_equal(b->ndead, 1);
    release(parts);
    sl_batch_unref(b);
    node_fini(&pn);
}

/* ==== sl_priority_relabel ==== */

static void test_priority_relabel_unshared_and_shared(void **state)
{
    const struct val amounts[] = {VI(1), VI(2)};

    (void)state;
    /* Ours alone: the batch itself. */
    struct sl_batch *b = make_batch(NULL, "amount", amounts, 2);
    struct sl_batch *r = sl_priority_relabel(b, 4);
    assert_ptr_equal(r, b);
    assert_int_equal(r->level, 4);
    /* Already at that level: itself, even when shared. */
    sl_batch_ref(b);
    assert_ptr_equal(sl_priority_relabel(b, 4), b);
    assert_int_equal(atomic_load(&b->refs), 2);
    /* Shared: a copy at the new level, the other reference keeps its own. */
    r = sl_priority_relabel(b, 7);
    assert_non_null(r);
    assert_ptr_not_equal(r, b);
    assert_int_equal(r->level, 7);
    assert_int_equal(b->level, 4);
    check_position(r, 7);
    assert_int_equal(r->n, 2);
    check_record(&r->recs[1], 2, "amount", VI(2));
    sl_batch_unref(r);
    assert_int_equal(atomic_load(&b->refs), 1);
    check_record(&b->recs[0], 1, "amount", VI(1));
    sl_batch_unref(b);

    /* A shared shell stays a shell, its dead letters with it. */
    b = make_batch(NULL, "amount", amounts, 0);
    b->shell = true;
    add_dead(b, "bad json");
    sl_batch_ref(b);
    r = sl_priority_relabel(b, 9);
    assert_ptr_not_equal(r, b);
    assert_true(r->shell);
    assert_int_equal(r->level, 9);
    assert_int_equal(r->ndead, 1);
    assert_int_equal(b->level, 0);
    sl_batch_unref(r);
    sl_batch_unref(b);
}

/* ==== Out of memory ==== */

/* Fails the nth allocation, n = 1, 2, ... until the split succeeds: each
 * failure is SL_ENOMEM with no part, nothing counted, the caller's reference
 * released (ASan: no leak) and a shared input untouched. */
static void split_oom_loop(const char *expr, const struct val *vals, size_t n, bool shared)
{
    struct prio_node pn;
    long nth;

    node_init(&pn, expr);
    for (nth = 1;; nth++) {
        struct sl_batch *parts[LEVELS];
        struct sl_batch *b = make_batch(NULL, "amount", vals, n);
        uint32_t dead = 99;
        int rc;

        add_dead(b, "bad json");
        if (shared) {
            sl_batch_ref(b);
        }
        sl_mem_fail_nth(nth);
        rc = sl_priority_split(&pn.cn, "tag", "orders", b, parts, &dead);
        sl_mem_fail_nth(0);
        if (shared) {
            /* A success's parts hold a copy whose parent is b. */
            assert_int_equal(atomic_load(&b->refs), rc == 0 ? 2 : 1);
            assert_int_equal(b->n, n);
            assert_int_equal(b->ndead, 1);
            assert_int_equal(b->level, 0);
        }
        if (rc == 0) {
            check_parts(parts, pn.cn.priority_levels);
            uint32_t got = 0;
            for (int l = 0; l < LEVELS; l++) {
                got += parts[l] != NULL ? parts[l]->n : 0;
            }
            assert_int_equal(got + dead, n);
            assert_int_equal(total_dead(parts), dead + 1);
            release(parts);
            if (shared) {
                sl_batch_unref(b);
            }
            break;
        }
        assert_int_equal(rc, SL_ENOMEM);
        assert_int_equal(dead, 0);
        for (int l = 0; l < LEVELS; l++) {
            assert_null(parts[l]);
        }
        if (shared) {
            sl_batch_unref(b);
        }
    }
    assert_true(nth > 1);
    node_fini(&pn);
}

static void test_priority_split_oom_loop(void **state)
{
    const struct val mixed[] = {VI(950), VI(10), VS("x"), VI(600), VI(920), VS("y")};
    const struct val one[] = {VI(950), VI(960)};

    (void)state;
    split_oom_loop("if(amount * 2 > 1800, 9, if(amount * 2 > 1000, 5, 0))", mixed, 6, false);
    split_oom_loop("if(amount * 2 > 1800, 9, if(amount * 2 > 1000, 5, 0))", mixed, 6, true);
    split_oom_loop(TIERS, one, 2, false);
    split_oom_loop(TIERS, one, 2, true);
}

static void test_priority_relabel_oom_releases_the_reference(void **state)
{
    const struct val amounts[] = {VI(1), VI(2)};
    long nth;

    (void)state;
    for (nth = 1;; nth++) {
        struct sl_batch *b = make_batch(NULL, "amount", amounts, 2);
        sl_batch_ref(b);
        sl_mem_fail_nth(nth);
        struct sl_batch *r = sl_priority_relabel(b, 6);
        sl_mem_fail_nth(0);
        /* Either way the other reference is ours alone again, untouched. */
        assert_int_equal(b->level, 0);
        assert_int_equal(b->n, 2);
        if (r != NULL) {
            assert_int_equal(r->level, 6);
            assert_int_equal(atomic_load(&b->refs), 2); /* r's parent, and ours */
            sl_batch_unref(r);
            assert_int_equal(atomic_load(&b->refs), 1);
            sl_batch_unref(b);
            break;
        }
        assert_int_equal(atomic_load(&b->refs), 1);
        sl_batch_unref(b);
    }
    assert_true(nth > 1);
}

/* ==== sl_expr_int_choices ==== */

/* 0 and the mask expr may give within lo..hi in *ret, or -1 with the error
 * in msg. */
static int choices(const char *text, int64_t lo, int64_t hi, uint64_t *ret, char *msg, size_t len)
{
    struct sl_err err = {0};
    struct sl_expr *e = sl_expr_compile(text, strlen(text), &err);
    uint64_t mask = 0xDEAD;
    int rc;

    if (e == NULL) {
        fail_msg("%s: %s", text, err.msg);
    }
    rc = sl_expr_int_choices(e, lo, hi, &mask, &err);
    sl_expr_free(e);
    if (rc != 0) {
        assert_int_equal(rc, SL_ECONFIG);
        snprintf(msg, len, "%s", err.msg);
        assert_int_equal(mask, 0xDEAD); /* left alone */
        return -1;
    }
    *ret = mask;
    return 0;
}

static void test_priority_expr_int_choices(void **state)
{
    static const struct {
        const char *text;
        int64_t lo, hi;
        uint64_t mask;
    } ok[] = {
        {"5", 0, 9, 1 << 5},
        {"0", 0, 9, 1 << 0},
        {"9", 0, 9, 1 << 9},
        {"if(amount > 900, 9, 0)", 0, 9, (1 << 9) | 1},
        {TIERS, 0, 9, (1 << 9) | (1 << 5) | 1},
        {"if(a, if(b, 1, 2), if(c, 3, if(d, 4, 2)))", 0, 9, 0x1E},
        {"if(a, 7, 7)", 0, 9, 1 << 7},
        {"null", 0, 9, 1},
        {"if(a, null, 7)", 0, 9, (1 << 7) | 1},
        {"null", 3, 9, 1 << 3},
        /* Computed: any level of the range. */
        {"prio", 0, 9, 0x3FF},
        {"amount % 10", 0, 9, 0x3FF},
        {"if(a, amount, 3)", 0, 9, 0x3FF},
        {"if(a, 3, to_int(p))", 2, 5, 0x3C},
        {"1 + 1", 0, 9, 0x3FF},
        {"prio", 0, 63, UINT64_MAX}, /* every bit */
    };
    static const char *const bad[] = {
        "12",
        "\"high\"",
        "2.5",
        "true",
        "if(a, 9, 10)",
        "if(a, \"x\", 0)",
        "if(a, 1, if(b, 2, 3.0))",
        "-1",
        "if(a, 9, -1)",
    };
    uint64_t got = 0;
    char msg[256];

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (choices(ok[i].text, ok[i].lo, ok[i].hi, &got, msg, sizeof(msg)) != 0) {
            fail_msg("%s: %s", ok[i].text, msg);
        }
        if (got != ok[i].mask) {
            fail_msg("%s in %lld..%lld: mask %#llx, want %#llx", ok[i].text, (long long)ok[i].lo,
                     (long long)ok[i].hi, (unsigned long long)got, (unsigned long long)ok[i].mask);
        }
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (choices(bad[i], 0, 9, &got, msg, sizeof(msg)) != -1) {
            fail_msg("%s: accepted", bad[i]);
        }
        assert_non_null(strstr(msg, ", not an int 0..9"));
    }
    assert_int_equal(choices("2", 3, 9, &got, msg, sizeof(msg)), -1);
    assert_string_equal(msg, "it gives 2, not an int 3..9");
    /* What can never be an int, computed or not. */
    static const struct {
        const char *text, *msg;
    } never[] = {
        {"status == \"alert\"", "it gives a bool, not an int 0..9"},
        {"amount / 10", "it gives a float (/ always does), not an int 0..9"},
        {"to_string(id)", "it gives a string, not an int 0..9"},
        {"lower(status)", "it gives a string, not an int 0..9"},
        {"to_float(id)", "it gives a float, not an int 0..9"},
        {"if(x, 9, contains(s, \"a\"))", "it gives a bool, not an int 0..9"},
        {"if(x, 2.5, 1)", "it gives a float, not an int 0..9"},
    };
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        assert_int_equal(choices(never[i].text, 0, 9, &got, msg, sizeof(msg)), -1);
        assert_string_equal(msg, never[i].msg);
    }
}

/* ==== Copies per level (the loader, conf_dag.c) ==== */

/* Loads yaml from a temporary file. */
static int load_yaml(const char *yaml, struct sl_conf **conf, struct sl_err *err)
{
    char path[64];
    int fd;
    int rc;

    snprintf(path, sizeof(path), "/tmp/sl_priority_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    rc = sl_conf_load(path, NULL, 0, conf, err);
    unlink(path);
    return rc;
}

static struct sl_conf *load_ok(const char *yaml)
{
    struct sl_conf *conf = NULL;
    struct sl_err err = {0};

    if (load_yaml(yaml, &conf, &err) != 0) {
        fail_msg("%s\n%s", yaml, err.msg);
    }
    return conf;
}

/* Checks the copies per level of each batch of source `src` at sink
 * `sink`: want[l] for each level. */
static void check_copies(const struct sl_conf *conf,
                         const char *src,
                         const char *sink,
                         const uint32_t want[LEVELS])
{
    const struct sl_conf_node *s = sl_conf_find(conf, src);
    const struct sl_conf_node *k = sl_conf_find(conf, sink);

    assert_non_null(s);
    assert_non_null(k);
    assert_non_null(k->paths);
    size_t i = (size_t)(s - conf->nodes);
    for (int l = 0; l < LEVELS; l++) {
        if (k->paths[i * LEVELS + (size_t)l] != want[l]) {
            fail_msg("%s -> %s at level %d: %u copies, want %u", src, sink, l,
                     k->paths[i * LEVELS + (size_t)l], want[l]);
        }
    }
}

#define GEN  "sources:\n  gen: { type: generator, count: 10 }\n"
#define GEN5 "sources:\n  gen: { type: generator, count: 10, priority: 5 }\n"

static void test_priority_conf_copies_per_level(void **state)
{
    struct sl_conf *conf;

    (void)state;
    /* An int priority on the source: one copy, at level 5 only. */
    conf = load_ok(GEN5 "sinks:\n  k: { type: null, inputs: [gen] }\n");
    check_copies(conf, "gen", "k", (uint32_t[LEVELS]){[5] = 1});
    assert_int_equal(sl_conf_find(conf, "gen")->priority, 5);
    assert_int_equal(sl_conf_find(conf, "gen")->priority_levels, BIT(5));
    conf = sl_conf_free(conf);

    /* ... and through a stage that inherits it. */
    conf = load_ok(GEN5 "stages:\n  m: { type: map, inputs: [gen], set: { a: '1' } }\n"
                        "sinks:\n  k: { type: null, inputs: [m] }\n");
    check_copies(conf, "gen", "k", (uint32_t[LEVELS]){[5] = 1});
    assert_int_equal(sl_conf_find(conf, "m")->priority, -1);
    assert_int_equal(sl_conf_find(conf, "m")->priority_levels, 0);
    conf = sl_conf_free(conf);

    /* An expression {0, 9}, then the sink: one part at each. */
    conf = load_ok(GEN "stages:\n"
                       "  m: { type: map, inputs: [gen], set: { a: '1' },"
                       " priority: 'if(amount > 900, 9, 0)' }\n"
                       "sinks:\n  k: { type: null, inputs: [m] }\n");
    check_copies(conf, "gen", "k", (uint32_t[LEVELS]){[0] = 1, [9] = 1});
    assert_non_null(sl_conf_find(conf, "m")->priority_expr);
    assert_int_equal(sl_conf_find(conf, "m")->priority_levels, BIT(0) | BIT(9));
    conf = sl_conf_free(conf);

    /* An expression on the source itself. */
    conf = load_ok("sources:\n  gen: { type: generator, priority: '" TIERS "' }\n"
                   "sinks:\n  k: { type: null, inputs: [gen] }\n");
    check_copies(conf, "gen", "k", (uint32_t[LEVELS]){[0] = 1, [5] = 1, [9] = 1});
    conf = sl_conf_free(conf);

    /* One level only (if(x, 9, 9)): an int, nothing to split. */
    conf = load_ok(GEN "stages:\n"
                       "  m: { type: map, inputs: [gen], set: { a: '1' },"
                       " priority: 'if(amount > 900, 9, 9)' }\n"
                       "sinks:\n  k: { type: null, inputs: [m] }\n");
    check_copies(conf, "gen", "k", (uint32_t[LEVELS]){[9] = 1});
    assert_null(sl_conf_find(conf, "m")->priority_expr);
    assert_int_equal(sl_conf_find(conf, "m")->priority, 9);
    conf = sl_conf_free(conf);

    /* A diamond whose one branch sets 9: one copy at 9, one at 0. */
    conf = load_ok(GEN "stages:\n"
                       "  a: { type: map, inputs: [gen], set: { x: '1' }, priority: 9 }\n"
                       "  b: { type: map, inputs: [gen], set: { y: '2' } }\n"
                       "sinks:\n  k: { type: null, inputs: [a, b] }\n");
    check_copies(conf, "gen", "k", (uint32_t[LEVELS]){[0] = 1, [9] = 1});
    conf = sl_conf_free(conf);

    /* The same diamond without priorities: two copies at 0. */
    conf = load_ok(GEN "stages:\n"
                       "  a: { type: map, inputs: [gen], set: { x: '1' } }\n"
                       "  b: { type: map, inputs: [gen], set: { y: '2' } }\n"
                       "sinks:\n  k: { type: null, inputs: [a, b] }\n");
    check_copies(conf, "gen", "k", (uint32_t[LEVELS]){[0] = 2});
    conf = sl_conf_free(conf);

    /* Both branches set 9 and merge again: two copies at 9. */
    conf = load_ok(GEN5 "stages:\n"
                        "  a: { type: map, inputs: [gen], set: { x: '1' }, priority: 9 }\n"
                        "  b: { type: filter, inputs: [gen], where: 'true', priority: 9 }\n"
                        "sinks:\n  k: { type: null, inputs: [a, b] }\n");
    check_copies(conf, "gen", "k", (uint32_t[LEVELS]){[9] = 2});
    conf = sl_conf_free(conf);

    /* Two expression nodes in a row are refused: each part of the first
     * split would be split again (conf_dag.c check_priority_inputs). */
    {
        struct sl_err err = {0};
        struct sl_conf *twice = NULL;
        assert_int_equal(
            load_yaml(GEN "stages:\n"
                          "  m1: { type: map, inputs: [gen], set: { a: '1' },"
                          " priority: 'if(amount > 900, 9, 0)' }\n"
                          "  m2: { type: filter, inputs: [m1], where: 'true',"
                          " priority: 'if(country == \"DE\", 5, if(country == \"FR\", 3, 0))' }\n"
                          "sinks:\n"
                          "  k: { type: null, inputs: [m2] }\n",
                      &twice, &err),
            SL_ECONFIG);
        assert_null(twice);
        assert_non_null(strstr(err.msg, "node 'm1' before it already splits batches"));
    }

    /* An int after an expression: both parts come to that level. */
    conf =
        load_ok(GEN "stages:\n"
                    "  m1: { type: map, inputs: [gen], set: { a: '1' }, priority: '" TIERS "' }\n"
                    "  m2: { type: map, inputs: [m1], set: { b: '1' }, priority: 4 }\n"
                    "sinks:\n  k: { type: null, inputs: [m2] }\n");
    check_copies(conf, "gen", "k", (uint32_t[LEVELS]){[4] = 3});
    conf = sl_conf_free(conf);

    /* A route with an int priority, one output merged with the source. */
    conf = load_ok(GEN "stages:\n"
                       "  r: { type: route, inputs: [gen], routes: { big: 'amount > 5' },"
                       " priority: 7 }\n"
                       "sinks:\n  k: { type: null, inputs: [r.big, r._unmatched, gen] }\n");
    check_copies(conf, "gen", "k", (uint32_t[LEVELS]){[0] = 1, [7] = 2});
    conf = sl_conf_free(conf);

    /* Two sources: each its own copies. */
    conf = load_ok("sources:\n"
                   "  g1: { type: generator, priority: 2 }\n"
                   "  g2: { type: generator }\n"
                   "stages:\n"
                   "  m: { type: map, inputs: [g1, g2], set: { a: '1' },"
                   " priority: 'if(amount > 1, 8, 1)' }\n"
                   "sinks:\n  k: { type: null, inputs: [m, g2] }\n");
    check_copies(conf, "g1", "k", (uint32_t[LEVELS]){[1] = 1, [8] = 1});
    check_copies(conf, "g2", "k", (uint32_t[LEVELS]){[0] = 1, [1] = 1, [8] = 1});
    conf = sl_conf_free(conf);
}

/* More than 64 copies at one level is refused, as more than 64 paths are.
 * A split does not multiply the copies of a level (each part holds some of
 * the records): it sums the copies of every level it receives into each
 * level it gives, and an int after it brings every part to one level. So a
 * ten-level split, an int and a 7-path diamond make 70 at that level; 7
 * paths after a split, without the int, only 7 per level. */
static void test_priority_conf_more_than_64_copies_is_refused(void **state)
{
    const uint32_t *k;
    struct sl_conf *conf = NULL;
    struct sl_err err = {0};

    (void)state;
#define ROUTE7                                                                                     \
    "  r: { type: route, inputs: [m2], routes: { a: 'true', b: 'true', c: 'true', d: 'true',"      \
    " e: 'true', f: 'true' } }\n"
#define M1 "  m1: { type: map, inputs: [gen], set: { a: '1' }, priority: 'id % 10' }\n"
#define M2 "  m2: { type: map, inputs: [m1], set: { b: '1' }, priority: 4 }\n"
    assert_int_equal(load_yaml(GEN "stages:\n" M1 M2 ROUTE7
                                   "sinks:\n  k: { type: null, inputs: [r.a, r.b, r.c, r.d, r.e,"
                                   " r.f, r._unmatched] }\n",
                               &conf, &err),
                     SL_ECONFIG);
    assert_null(conf);
    assert_non_null(strstr(err.msg, "by more than 64 paths"));

    /* 6 paths: 60 at level 4, allowed. */
    conf = load_ok(GEN "stages:\n" M1 M2 ROUTE7
                       "sinks:\n  k: { type: null, inputs: [r.a, r.b, r.c, r.d, r.e, r.f] }\n");
    k = sl_conf_find(conf, "k")->paths;
    for (int l = 0; l < LEVELS; l++) {
        assert_int_equal(k[l], l == 4 ? 60 : 0); /* gen is node 0 */
    }
    conf = sl_conf_free(conf);

    /* Without the int: 7 per level. */
    conf =
        load_ok(GEN "stages:\n" M1
                    "  r: { type: route, inputs: [m1], routes: { a: 'true', b: 'true', c: 'true',"
                    " d: 'true', e: 'true', f: 'true' } }\n"
                    "sinks:\n  k: { type: null, inputs: [r.a, r.b, r.c, r.d, r.e, r.f,"
                    " r._unmatched] }\n");
    check_copies(conf, "gen", "k", (uint32_t[LEVELS]){7, 7, 7, 7, 7, 7, 7, 7, 7, 7});
    conf = sl_conf_free(conf);
#undef ROUTE7
#undef M1
#undef M2
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_priority_split_one_level_is_the_batch_itself),
        cmocka_unit_test(test_priority_split_reads_the_batch_level),
        cmocka_unit_test(test_priority_split_mixed_levels_keep_order_and_values),
        cmocka_unit_test(test_priority_split_one_level_keeps_dead_letters_once),
        cmocka_unit_test(test_priority_split_bad_values_are_dead_letters),
        cmocka_unit_test(test_priority_split_shared_batch_is_not_modified),
        cmocka_unit_test(test_priority_relabel_unshared_and_shared),
        cmocka_unit_test(test_priority_split_oom_loop),
        cmocka_unit_test(test_priority_relabel_oom_releases_the_reference),
        cmocka_unit_test(test_priority_expr_int_choices),
        cmocka_unit_test(test_priority_conf_copies_per_level),
        cmocka_unit_test(test_priority_conf_more_than_64_copies_is_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
