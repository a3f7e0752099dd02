/* SPDX-License-Identifier: MIT */
/* Unit tests of the host function table plugins get (engine/plugin_host.c):
 * what set accepts and refuses (bad UTF-8, JSON text that is not of its
 * kind), get and field_at, remove, meta, eval, drop and dead (each record
 * once), emit (added records keep their source's place, may be dropped but
 * not dead-lettered), and what the call leaves in the batch and counters;
 * the room one call has to grow its batch (emit_full), and what sources
 * make of what calls measured (sl__pipeline_note_grown, source.c). */
#include "batch.h"
#include "expr.h"
#include "plugin_int.h"
#include "runtime.h"
#include "source.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static const struct sluice_host_api *h = &sl__plugin_host;

struct fixture {
    struct sl_pipeline pl;
    struct sl_node node;
    struct sl_batch *batch;
    struct sl__plugin_call call;
};

static struct sluice_value str(const char *s)
{
    struct sluice_value v = {.type = SLUICE_TYPE_STR, .len = (uint32_t)strlen(s)};
    v.u.s = s;
    return v;
}

/* A batch of three records read from input, lines 1-3. */
static struct sl_batch *three_records(void)
{
    struct sl_batch *batch = sl_batch_new(NULL);

    assert_non_null(batch);
    batch->stream_name = "in.jsonl";
    for (int i = 0; i < 3; i++) {
        struct sl_record *rec = sl_batch_add(batch);
        assert_non_null(rec);
        rec->meta.stream = "in.jsonl";
        rec->meta.line = i + 1;
        rec->meta.offset = i * 10;
        assert_int_equal(sl_record_append(rec, &batch->arena, "id", 2, sl_value_int(i)), 0);
    }
    return batch;
}

static int setup(void **state)
{
    struct fixture *fx = test_calloc(1, sizeof(*fx));

    fx->pl.nodes = &fx->node;
    fx->pl.nnodes = 1;
    fx->node.pl = &fx->pl;
    fx->node.name = "p";
    fx->batch = three_records();
    assert_int_equal(sl__plugin_call_begin(&fx->call, &fx->node, fx->batch), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    sl_batch_unref(fx->batch);
    test_free(fx);
    return 0;
}

static void test_get_set_remove(void **state)
{
    struct fixture *fx = *state;
    struct sluice_batch *b = (struct sluice_batch *)fx->batch;
    struct sluice_record *rec = h->batch_record(b, 1);
    struct sluice_value v;
    char buf[8] = "hello";

    assert_int_equal(h->batch_size(b), 3);
    assert_null(h->batch_record(b, 3));
    assert_int_equal(h->get(rec, "id", 2, &v), 0);
    assert_int_equal(v.type, SLUICE_TYPE_INT);
    assert_int_equal(v.u.i, 1);
    assert_int_equal(h->get(rec, "nope", 4, &v), SLUICE_ENOENT);
    assert_int_equal(v.type, SLUICE_TYPE_NULL);

    /* set copies: the plugin's buffer may change afterwards. */
    v = str(buf);
    assert_int_equal(h->set(b, rec, "greeting", 8, &v), 0);
    buf[0] = 'j';
    assert_int_equal(h->get(rec, "greeting", 8, &v), 0);
    assert_int_equal(v.len, 5);
    assert_memory_equal(v.u.s, "hello", 5);
    assert_int_equal(h->field_count(rec), 2);
    const char *name;
    size_t len;
    assert_int_equal(h->field_at(rec, 1, &name, &len, &v), 0);
    assert_int_equal(len, 8);
    assert_memory_equal(name, "greeting", 8);
    assert_int_equal(h->field_at(rec, 2, &name, &len, &v), SLUICE_ENOENT);

    /* Refused, and the record unchanged. */
    v = str("\xc3\x28");
    assert_int_equal(h->set(b, rec, "bad", 3, &v), SLUICE_EINVAL);
    v = str("[1, 2");
    v.type = SLUICE_TYPE_ARRAY;
    assert_int_equal(h->set(b, rec, "arr", 3, &v), SLUICE_EINVAL);
    v = str("{\"a\": 1}");
    v.type = SLUICE_TYPE_ARRAY; /* an object is not an array */
    assert_int_equal(h->set(b, rec, "arr", 3, &v), SLUICE_EINVAL);
    v.type = 42;
    assert_int_equal(h->set(b, rec, "x", 1, &v), SLUICE_EINVAL);
    assert_int_equal(h->field_count(rec), 2);
    v = str("[1, {\"b\": [true]}]");
    v.type = SLUICE_TYPE_ARRAY;
    assert_int_equal(h->set(b, rec, "arr", 3, &v), 0);
    v = str("\xff\x00");
    v.type = SLUICE_TYPE_BYTES;
    v.len = 2;
    assert_int_equal(h->set(b, rec, "raw", 3, &v), 0);
    assert_int_equal(h->field_count(rec), 4);

    assert_int_equal(h->remove(b, rec, "greeting", 8), 0);
    assert_int_equal(h->remove(b, rec, "greeting", 8), SLUICE_ENOENT);
    assert_int_equal(h->field_count(rec), 3);

    /* A batch this call was not given is refused. */
    struct sl_batch *other = sl_batch_new(NULL);
    v = str("x");
    assert_int_equal(h->set((struct sluice_batch *)other, rec, "x", 1, &v), SLUICE_EINVAL);
    assert_int_equal(h->batch_size((struct sluice_batch *)other), 0);
    sl_batch_unref(other);
    assert_int_equal(sl__plugin_call_end(&fx->call), 0);
    assert_int_equal(fx->batch->n, 3);
}

static void test_meta_eval(void **state)
{
    struct fixture *fx = *state;
    struct sluice_batch *b = (struct sluice_batch *)fx->batch;
    struct sluice_record *rec = h->batch_record(b, 2);
    struct sluice_value v;
    struct sl_err err;
    char errbuf[128];

    assert_int_equal(h->meta(rec, "line", &v), 0);
    assert_int_equal(v.u.i, 3);
    assert_int_equal(h->meta(rec, "file", &v), 0);
    assert_memory_equal(v.u.s, "in.jsonl", 8);
    assert_int_equal(h->meta(rec, "topic", &v), SLUICE_ENOENT); /* a file record */
    assert_int_equal(h->meta(rec, "nonsense", &v), SLUICE_ENOENT);

    struct sl_expr *e = sl_expr_compile("id * 10 + 1", 11, &err);
    assert_non_null(e);
    assert_int_equal(h->eval((struct sluice_expr *)e, b, rec, &v, errbuf, sizeof(errbuf)), 0);
    assert_int_equal(v.u.i, 21);
    sl_expr_free(e);
    e = sl_expr_compile("\"a\" * 2", 7, &err);
    assert_non_null(e);
    assert_int_equal(h->eval((struct sluice_expr *)e, b, rec, &v, errbuf, sizeof(errbuf)),
                     SLUICE_EINVAL);
    assert_true(strlen(errbuf) > 0);
    sl_expr_free(e);
    assert_int_equal(sl__plugin_call_end(&fx->call), 0);
}

static void test_drop_dead_emit(void **state)
{
    struct fixture *fx = *state;
    struct sluice_batch *b = (struct sluice_batch *)fx->batch;
    struct sluice_stage *st = (struct sluice_stage *)&fx->node;
    struct sluice_record *r0 = h->batch_record(b, 0);
    struct sluice_record *r1 = h->batch_record(b, 1);
    struct sluice_record *r2 = h->batch_record(b, 2);
    struct sluice_value v = str("copy");

    /* Two copies of r2: one kept, one dropped again. */
    struct sluice_record *c1 = h->emit(b, r2, true);
    struct sluice_record *c2 = h->emit(b, r2, false);
    assert_non_null(c1);
    assert_non_null(c2);
    assert_int_equal(h->set(b, c1, "tag", 3, &v), 0);
    assert_int_equal(h->field_count(c2), 0);
    assert_int_equal(h->meta(c2, "line", &v), 0);
    assert_int_equal(v.u.i, 3);
    assert_int_equal(h->dead(st, b, c1, "no"), SLUICE_EINVAL); /* added: only dropped */
    h->drop(b, c2);
    h->drop(b, c2);

    h->drop(b, r0);
    h->drop(b, r0); /* counted once */
    assert_int_equal(h->dead(st, b, r0, "late"), SLUICE_EINVAL);
    assert_int_equal(h->dead(st, b, r1, "bad id"), 0);
    assert_int_equal(h->dead(st, b, r1, "again"), SLUICE_EINVAL);
    assert_int_equal(h->batch_size(b), 3); /* gone ones still there during the call */
    /* Gone records are no longer the plugin's to edit (a dead letter
     * shares its fields). */
    v = str("late");
    assert_int_equal(h->set(b, r0, "x", 1, &v), SLUICE_EINVAL);
    assert_int_equal(h->set(b, r1, "x", 1, &v), SLUICE_EINVAL);
    assert_int_equal(h->remove(b, r1, "id", 2), SLUICE_EINVAL);
    assert_int_equal(h->set(b, c2, "x", 1, &v), SLUICE_EINVAL);

    assert_int_equal(sl__plugin_call_end(&fx->call), 0);
    assert_int_equal(fx->batch->n, 2);
    assert_int_equal(fx->batch->recs[0].fields[0].val.u.i, 2);
    assert_int_equal(fx->batch->recs[1].nfields, 2);
    assert_int_equal(fx->batch->recs[1].meta.line, 3);
    assert_int_equal(fx->batch->ndead, 1);
    assert_string_equal(fx->batch->dead[0].error, "bad id");
    assert_int_equal(atomic_load(&fx->node.c.dropped), 1);
    assert_int_equal(atomic_load(&fx->node.c.dead), 1);
    assert_int_equal(atomic_load(&fx->node.c.added), 1);
    /* After the call, the host refuses the batch. */
    assert_int_equal(h->batch_size(b), 0);
}

/* A call may grow its batch by a quarter of the records' budget: then
 * emit returns NULL, set SLUICE_EFULL, and emit_full says why; what it
 * added so far stays, and may be dropped. */
static void test_emit_room(void **state)
{
    struct fixture *fx = *state;
    struct sl_flow flow;
    struct sl_batch *batch;
    struct sl__plugin_call call;
    struct sluice_value v = str("x");
    size_t emitted = 0;

    (void)fx;
    assert_true(SLUICE_HOST_HAS(h, emit_full));
    sl_flow_init(&flow, 256 * 1024);
    batch = sl_batch_new(&flow);
    assert_non_null(batch);
    struct sl_record *rec = sl_batch_add(batch);
    assert_non_null(rec);
    assert_int_equal(sl_record_append(rec, &batch->arena, "id", 2, sl_value_int(7)), 0);
    assert_int_equal(sl__plugin_call_begin(&call, &fx->node, batch), 0);
    struct sluice_batch *b = (struct sluice_batch *)batch;
    struct sluice_record *r0 = h->batch_record(b, 0);
    size_t start = sl_batch_bytes(batch);

    assert_false(h->emit_full(b));
    struct sluice_record *last = NULL;
    while (emitted < 100000) {
        struct sluice_record *c = h->emit(b, r0, true);
        if (c == NULL) {
            break;
        }
        last = c;
        emitted++;
    }
    assert_in_range(emitted, 10, 99999);
    assert_true(h->emit_full(b));
    assert_true(call.full);
    /* About the room: the arena chunk that went past it is the most over. */
    assert_in_range(sl_batch_bytes(batch) - start, 64 * 1024, 2 * 64 * 1024 + 8192);
    assert_int_equal(h->set(b, r0, "x", 1, &v), SLUICE_EFULL);
    assert_int_equal(h->set(b, last, "x", 1, &v), SLUICE_EFULL);
    h->drop(b, last);
    assert_int_equal(sl__plugin_call_end(&call), 0);
    assert_int_equal(batch->n, emitted); /* the input and all but the dropped copy */
    assert_int_equal(atomic_load(&fx->node.c.added), emitted - 1);
    sl_batch_unref(batch);
    assert_int_equal(atomic_load(&flow.used), 0);
    sl_flow_release_all(&flow);
}

/* Sources cut their batches by what plugin calls measured their batches
 * grow into: a record at a time until each stage below was called, at
 * most SL_GROWTH_BLIND_BYTES while one got none of the records, then the
 * plan's decoded batch over the largest figure, taken at once when
 * larger, a quarter of the way when smaller; and they are admitted with
 * a credit for the growth. */
static void test_growth(void **state)
{
    struct fixture *fx = *state;
    struct sl_conf_node src_cn = {.kind = SLUICE_KIND_SOURCE};
    struct sl_node nodes[3] = {{0}};
    struct sl_growth growth[2];
    struct sl_pipeline *pl = &fx->pl;

    pl->nodes = nodes;
    pl->nnodes = 3;
    pl->block_plan = 64 * 1024;
    pl->block_factor = 4; /* the plan's decoded batch: 256 KiB */
    for (int i = 0; i < 3; i++) {
        nodes[i].pl = pl;
        nodes[i].index = (uint32_t)i;
        nodes[i].cn = &src_cn;
    }
    nodes[0].growth = growth;
    nodes[0].window.credit_max = 1 << 20;
    growth[0].stage = &nodes[1];
    growth[1].stage = &nodes[2];
    atomic_init(&growth[0].x16, 0);
    atomic_init(&growth[1].x16, 0);
    assert_int_equal(sl_source_batch_limit(&nodes[0]), UINT64_MAX); /* no plugin below */
    nodes[0].ngrowth = 2;
    assert_int_equal(sl_source_batch_limit(&nodes[0]), 1);

    struct sl_batch *batch = sl_batch_new(NULL);
    assert_non_null(batch);
    batch->source = 0;
    batch->block = test_malloc(1000);
    batch->block_len = 1000;
    batch->base_bytes = 1000;
    assert_non_null(sl_arena_alloc(&batch->arena, 50 * 1000)); /* it grew */
    size_t bytes = sl_batch_bytes(batch);
    /* Called on none of the source's records: reached, nothing measured;
     * the batches grow to SL_GROWTH_BLIND_BYTES with such calls. */
    sl__pipeline_note_grown(&nodes[1], batch, 0);
    assert_int_equal(atomic_load(&growth[0].x16), 1);
    assert_int_equal(sl_source_batch_limit(&nodes[0]), 1); /* nodes[2] not called yet */
    sl__pipeline_note_grown(&nodes[2], batch, 0);
    assert_int_equal(sl_source_batch_limit(&nodes[0]),
                     SL_GROWTH_BLIND_BYTES >> (SL_GROWTH_BLIND - 1));
    for (int i = 0; i < 2 * SL_GROWTH_BLIND; i++) {
        sl__pipeline_note_grown(&nodes[1], batch, 0);
        sl__pipeline_note_grown(&nodes[2], batch, 0);
    }
    assert_int_equal(atomic_load(&growth[0].x16), SL_GROWTH_BLIND);
    assert_int_equal(sl_source_batch_limit(&nodes[0]), SL_GROWTH_BLIND_BYTES);
    assert_int_equal(sl_source_growth_credit(&nodes[0], batch), 0);
    sl__pipeline_note_grown(&nodes[1], batch, 10);
    uint64_t x16 = bytes * 16 / 1000;
    assert_int_equal(atomic_load(&growth[0].x16), x16);
    sl__pipeline_note_grown(&nodes[1], batch, 0); /* a measure stays */
    assert_int_equal(atomic_load(&growth[0].x16), x16);
    /* The plan's batch over the growth, at most the blind size while the
     * other stage saw none of the records. */
    uint64_t limit = 256 * 1024 * 16 / x16;
    assert_true(limit < SL_GROWTH_BLIND_BYTES);
    assert_int_equal(sl_source_batch_limit(&nodes[0]), limit);
    sl__pipeline_note_grown(&nodes[2], batch, 10);
    assert_int_equal(sl_source_batch_limit(&nodes[0]), limit);
    /* A new batch of a 1000-byte block: credited for what it will be, less
     * what it is charged at admission. */
    struct sl_batch *fresh = sl_batch_new(NULL);
    assert_non_null(fresh);
    fresh->block_len = 1000;
    assert_int_equal(sl_source_growth_credit(&nodes[0], fresh),
                     1000 * x16 / 16 - sl_batch_adopt_bytes(fresh));
    /* A batch that holds its growth already gets none. */
    assert_int_equal(sl_source_growth_credit(&nodes[0], batch), 0);
    /* Smaller: a quarter of the way (to 1: less counts as 1). */
    batch->base_bytes = 2 * bytes;
    sl__pipeline_note_grown(&nodes[2], batch, 10);
    assert_int_equal(atomic_load(&growth[1].x16), x16 - (x16 - 16) / 4);
    /* The credit is at most credit_max. */
    nodes[0].window.credit_max = 100;
    assert_int_equal(sl_source_growth_credit(&nodes[0], fresh), 100);
    fresh->block_len = 0;
    sl_batch_unref(fresh);
    test_free(batch->block);
    batch->block = NULL;
    sl_batch_unref(batch);
}

/* The id of the dead letter node f would make of rec of batch. */
static void dead_id(struct sl_batch *batch, const struct sl_record *rec, char id[SL_DEAD_ID_MAX])
{
    struct sl_dead d = {.rec = *rec, .source = "src", .node = "f"};

    sl_dead_set_origin(&d, batch);
    sl_dead_id(&d, id);
}

/* One call of node on a fresh batch, as a plugin that adds two records
 * from record 0, one from the first of those (nested) and one from record
 * 1: before the others when r1_first. Returns the batch after the call and
 * the added records' sub-positions in that order, whatever the order of
 * the emits. */
static struct sl_batch *explode(struct sl_node *node, bool r1_first, uint64_t ret_sub[4])
{
    struct sl_batch *batch = three_records();
    struct sluice_batch *b = (struct sluice_batch *)batch;
    struct sl__plugin_call call;

    assert_int_equal(sl__plugin_call_begin(&call, node, batch), 0);
    struct sluice_record *r0 = h->batch_record(b, 0);
    struct sluice_record *r1 = h->batch_record(b, 1);
    if (r1_first) {
        assert_non_null(h->emit(b, r1, true));
    }
    struct sluice_record *c1 = h->emit(b, r0, true);
    assert_non_null(c1);
    assert_non_null(h->emit(b, r0, false));
    assert_non_null(h->emit(b, c1, true));
    if (!r1_first) {
        assert_non_null(h->emit(b, r1, true));
    }
    assert_int_equal(sl__plugin_call_end(&call), 0);
    assert_int_equal(batch->n, 7);
    for (int i = 0; i < 4; i++) {
        ret_sub[i] = batch->recs[3 + (r1_first ? (i + 1) % 4 : i)].meta.sub;
    }
    return batch;
}

/* Records a plugin adds share their input record's offset: each gets a
 * sub-position of its own, so that the dead letters a later node makes of
 * them have ids of their own (a SQLite store upserts on _id: an explode
 * into 3 copies, all then rejected, kept one row of 4). The same on a
 * replay, whatever order the plugin added them in; the ids of records
 * read from input are as they were; copies of the batch keep them. */
static void test_emit_sub_positions(void **state)
{
    struct fixture *fx = *state;
    struct sl_node other = fx->node;
    uint64_t sub[4], again[4], elsewhere[4];
    char ids[5][SL_DEAD_ID_MAX], id[SL_DEAD_ID_MAX];

    struct sl_batch *batch = explode(&fx->node, false, sub);
    struct sl_batch *replay = explode(&fx->node, true, again);
    other.name = "q";
    struct sl_batch *q = explode(&other, false, elsewhere);
    for (int i = 0; i < 4; i++) {
        assert_true(sub[i] != 0);
        assert_true(sub[i] == again[i]);
        assert_true(sub[i] != elsewhere[i]); /* two plugin stages in a row */
    }
    /* Apart within a family; the first copy of record 1 has record 0's
     * first one's (its offset tells them apart): a record's copies depend
     * on what the plugin does with it only. */
    assert_true(sub[0] != sub[1] && sub[0] != sub[2] && sub[1] != sub[2]);
    assert_true(sub[3] == sub[0]);
    for (int i = 0; i < 3; i++) {
        assert_true(batch->recs[i].meta.sub == 0);
    }
    /* Record 0, its two copies and the copy's copy: one offset, four ids. */
    dead_id(batch, &batch->recs[0], ids[0]);
    dead_id(batch, &batch->recs[3], ids[1]);
    dead_id(batch, &batch->recs[4], ids[2]);
    dead_id(batch, &batch->recs[5], ids[3]);
    dead_id(batch, &batch->recs[6], ids[4]);
    assert_true(batch->recs[3].meta.offset == batch->recs[0].meta.offset);
    for (int i = 1; i < 5; i++) {
        for (int j = 0; j < i; j++) {
            assert_string_not_equal(ids[i], ids[j]);
        }
    }
    /* A record read from input: the old form, partition:offset:path:hash. */
    assert_int_equal(strlen(ids[0]), strlen("0:0:0:") + 32);
    assert_int_equal(strncmp(ids[1], ids[0], strlen(ids[0])), 0);
    assert_int_equal(strlen(ids[1]), strlen(ids[0]) + 17);
    /* A replay makes the same ids. */
    dead_id(replay, &replay->recs[4], id);
    assert_string_equal(id, ids[1]);

    /* Copies keep it: an editable copy of a fork, and a shell's dead letter. */
    struct sl_batch *fork = sl_batch_fork(batch);
    assert_non_null(fork);
    fork = sl_batch_make_writable(fork);
    assert_non_null(fork);
    assert_true(fork->recs[4].meta.sub == sub[1]);
    assert_int_equal(sl_batch_add_dead(fork, &fork->recs[4], "f", "src", "no"), 0);
    sl_dead_id(&fork->dead[0], ids[0]);
    struct sl_batch *shell = sl_batch_shell(fork);
    assert_non_null(shell);
    assert_true(shell->dead[0].rec.meta.sub == sub[1]);
    sl_dead_id(&shell->dead[0], id);
    assert_string_equal(id, ids[0]);

    sl_batch_unref(shell);
    sl_batch_unref(fork);
    sl_batch_unref(q);
    sl_batch_unref(replay);
    sl_batch_unref(batch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_set_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta_eval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drop_dead_emit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emit_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_growth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_emit_sub_positions, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
