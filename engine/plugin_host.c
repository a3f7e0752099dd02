/* SPDX-License-Identifier: MIT */
/* The host function table a plugin reads and writes records with (struct
 * sluice_host_api in <sluice/plugin.h>), and the per-call state behind it:
 * while a plugin's process() runs, this thread knows which node and batch
 * it works on, which records it dropped or dead-lettered and which it
 * added, so that the adapter (plugin.c) emits what is left once it
 * returns. Records the plugin adds live in the batch's arena until then,
 * so the record pointers it holds never move during the call. */
#include "expr.h"
#include "hash.h"
#include "json.h"
#include "log.h"
#include "plugin_int.h"
#include "runtime.h"

#include <stdio.h>
#include <string.h>

/* A public value is an engine value: same members, same places. */
_Static_assert(sizeof(struct sluice_value) == sizeof(struct sl_value), "value layout");
_Static_assert(offsetof(struct sluice_value, len) == offsetof(struct sl_value, len), "len");
_Static_assert(offsetof(struct sluice_value, u) == offsetof(struct sl_value, u), "union");
_Static_assert((int)SLUICE_TYPE_OBJECT == (int)SL_TYPE_OBJECT &&
                   (int)SLUICE_TYPE_BYTES == (int)SL_TYPE_BYTES &&
                   (int)SLUICE_TYPE_COUNT == (int)SL_TYPE_COUNT,
               "type numbers");

/* A record the plugin added (emit), in the batch's arena. */
struct added {
    struct sl_record rec; /* first: the plugin holds a pointer to it */
    struct added *next;
    uint32_t emits; /* records added from it so far in the call (sub_of) */
    bool gone;      /* dropped again before the call ended */
};

static _Thread_local struct sl__plugin_call *tl_call;

#define REC(r)  ((struct sl_record *)(r))
#define CREC(r) ((const struct sl_record *)(r))
#define VAL(v)  ((struct sl_value *)(v))

int sl__plugin_call_begin(struct sl__plugin_call *call,
                          struct sl_node *node,
                          struct sl_batch *batch)
{
    memset(call, 0, sizeof(*call));
    call->node = node;
    call->batch = batch;
    call->n = batch->n;
    call->added_tail = &call->added;
    call->room = batch->flow != NULL ? batch->flow->limit / SL_PLUGIN_ROOM_DIV : SIZE_MAX;
    /* Up front, so that drop, which cannot fail, never has to allocate. */
    call->gone = sl_arena_alloc(&batch->arena, batch->n > 0 ? batch->n : 1);
    if (call->gone == NULL) {
        return SL_ENOMEM;
    }
    memset(call->gone, 0, batch->n);
    call->start_bytes = sl_batch_bytes(batch);
    tl_call = call;
    return 0;
}

/* Whether the call added as much to its batch as one call may: what the
 * batch holds, so the arena chunk that went past the room was allocated
 * (a call takes at most about twice its room). */
static bool out_of_room(const struct sl__plugin_call *call)
{
    return sl_batch_bytes(call->batch) - call->start_bytes >= call->room;
}

/* out_of_room, and marks the call full when it is (the adapter says so). */
static bool refuse_growth(struct sl__plugin_call *call)
{
    call->full = call->full || out_of_room(call);
    return call->full;
}

/* The call working on batch on this thread, or NULL (a plugin passing a
 * batch it was not given). */
static struct sl__plugin_call *call_of(const struct sluice_batch *batch)
{
    struct sl__plugin_call *call = tl_call;

    return call != NULL && (const void *)call->batch == (const void *)batch ? call : NULL;
}

/* rec's index among the batch's own records, or -1 for an added one. */
static int64_t index_of(const struct sl__plugin_call *call, const struct sl_record *rec)
{
    const struct sl_record *recs = call->batch->recs;

    return rec >= recs && rec < recs + call->n ? rec - recs : -1;
}

/* Whether rec was dropped or dead-lettered in this call: it is no longer
 * the plugin's to edit (a dead letter shares its fields). */
static bool is_gone(const struct sl__plugin_call *call, const struct sl_record *rec)
{
    int64_t i = index_of(call, rec);

    return i >= 0 ? call->gone[i] != 0 : ((const struct added *)rec)->gone;
}

/* Marks record rec gone (1 dropped, 2 dead). False when it already was. */
static bool mark(struct sl__plugin_call *call, struct sl_record *rec, uint8_t how)
{
    int64_t i = index_of(call, rec);

    if (i < 0) {
        struct added *a = (struct added *)rec;
        if (a->gone) {
            return false;
        }
        a->gone = true;
        call->nadded--;
        call->added_gone++;
        return true;
    }
    if (call->gone[i] != 0) {
        return false;
    }
    call->gone[i] = how;
    return true;
}

int sl__plugin_call_end(struct sl__plugin_call *call)
{
    struct sl_batch *batch = call->batch;
    uint32_t kept = 0;
    uint64_t dropped = 0;

    tl_call = NULL;
    for (uint32_t i = 0; i < call->n; i++) {
        uint8_t how = call->gone[i];
        if (how == 0) {
            batch->recs[kept++] = batch->recs[i];
        }
        dropped += how == 1;
    }
    batch->n = kept;
    atomic_fetch_add_explicit(&call->node->c.dropped, dropped, memory_order_relaxed);
    for (struct added *a = call->added; a != NULL; a = a->next) {
        if (a->gone) {
            continue;
        }
        struct sl_record *rec = sl_batch_add(batch);
        if (rec == NULL) {
            return SL_ENOMEM;
        }
        *rec = a->rec;
        atomic_fetch_add_explicit(&call->node->c.added, 1, memory_order_relaxed);
    }
    return 0;
}

static size_t host_batch_size(const struct sluice_batch *batch)
{
    const struct sl__plugin_call *call = call_of(batch);

    return call != NULL ? call->n : 0;
}

static struct sluice_record *host_batch_record(struct sluice_batch *batch, size_t i)
{
    struct sl__plugin_call *call = call_of(batch);

    return call != NULL && i < call->n ? (struct sluice_record *)&call->batch->recs[i] : NULL;
}

static int host_get(const struct sluice_record *rec,
                    const char *name,
                    size_t name_len,
                    struct sluice_value *ret_value)
{
    const struct sl_field *f =
        name_len <= UINT32_MAX ? sl_record_find(CREC(rec), name, (uint32_t)name_len) : NULL;

    *VAL(ret_value) = f != NULL ? f->val : sl_value_null();
    return f != NULL ? 0 : SLUICE_ENOENT;
}

static size_t host_field_count(const struct sluice_record *rec)
{
    return CREC(rec)->nfields;
}

static int host_field_at(const struct sluice_record *rec,
                         size_t i,
                         const char **ret_name,
                         size_t *ret_name_len,
                         struct sluice_value *ret_value)
{
    const struct sl_record *r = CREC(rec);

    if (i >= r->nfields) {
        return SLUICE_ENOENT;
    }
    *ret_name = r->fields[i].name;
    *ret_name_len = r->fields[i].name_len;
    *VAL(ret_value) = r->fields[i].val;
    return 0;
}

/* Whether text is one JSON value of kind type (ARRAY or OBJECT): decoded
 * as the member of an object, with the decoder of this thread. */
static int valid_json(struct sl_arena *arena, uint8_t type, const char *text, uint32_t len)
{
    static _Thread_local struct sl_json_decoder *dec;
    char *line = sl_arena_alloc(arena, (size_t)len + 6);
    struct sl_record rec = {0};

    if (dec == NULL) {
        dec = sl__plugin_thread_decoder();
    }
    if (line == NULL || dec == NULL) {
        return SLUICE_ENOMEM;
    }
    memcpy(line, "{\"v\":", 5);
    memcpy(line + 5, text, len);
    line[5 + len] = '}';
    int rc = sl_json_decode_object(dec, line, (size_t)len + 6, &rec, arena, NULL);
    if (rc == SL_ENOMEM) {
        return SLUICE_ENOMEM;
    }
    return rc == 0 && rec.nfields == 1 && rec.fields[0].val.type == type ? 0 : SLUICE_EINVAL;
}

static int host_set(struct sluice_batch *batch,
                    struct sluice_record *rec,
                    const char *name,
                    size_t name_len,
                    const struct sluice_value *value)
{
    struct sl__plugin_call *call = call_of(batch);
    struct sl_value v = *(const struct sl_value *)value;

    if (call == NULL || name_len == 0 || name_len > UINT32_MAX || v.type >= SL_TYPE_COUNT ||
        is_gone(call, REC(rec))) {
        return SLUICE_EINVAL;
    }
    if (refuse_growth(call)) {
        return SLUICE_EFULL;
    }
    struct sl_arena *arena = &call->batch->arena;
    bool text = v.type == SL_TYPE_STR || v.type == SL_TYPE_BYTES || v.type == SL_TYPE_ARRAY ||
                v.type == SL_TYPE_OBJECT;
    if (text && v.len > 0 && v.u.s == NULL) {
        return SLUICE_EINVAL;
    }
    if (v.type == SL_TYPE_STR && !sl_utf8_valid(v.u.s, v.len)) {
        return SLUICE_EINVAL;
    }
    if (v.type == SL_TYPE_ARRAY || v.type == SL_TYPE_OBJECT) {
        int rc = valid_json(arena, v.type, v.u.s, v.len);
        if (rc != 0) {
            return rc;
        }
    }
    if (text) {
        char *copy = sl_arena_alloc(arena, v.len > 0 ? v.len : 1);
        if (copy == NULL) {
            return SLUICE_ENOMEM;
        }
        memcpy(copy, v.len > 0 ? v.u.s : "", v.len);
        v.u.s = copy;
    }
    struct sl_field *f = sl_record_find(REC(rec), name, (uint32_t)name_len);
    if (f != NULL) {
        f->val = v;
        return 0;
    }
    char *key = sl_arena_strndup(arena, name, name_len);
    if (key == NULL || sl_record_append(REC(rec), arena, key, (uint32_t)name_len, v) != 0) {
        return SLUICE_ENOMEM;
    }
    return 0;
}

static int host_remove(struct sluice_batch *batch,
                       struct sluice_record *rec,
                       const char *name,
                       size_t name_len)
{
    struct sl__plugin_call *call = call_of(batch);

    if (call == NULL || name_len > UINT32_MAX || is_gone(call, REC(rec))) {
        return SLUICE_EINVAL;
    }
    if (sl_record_find(REC(rec), name, (uint32_t)name_len) == NULL) {
        return SLUICE_ENOENT;
    }
    sl_record_remove(REC(rec), name, (uint32_t)name_len);
    return 0;
}

static int
host_meta(const struct sluice_record *rec, const char *name, struct sluice_value *ret_value)
{
    struct sl_value v = sl_value_null();
    int rc = name != NULL ? sl_expr_meta(CREC(rec), name, &v) : SL_EINVAL;

    *VAL(ret_value) = v;
    return rc == 0 && v.type != SL_TYPE_NULL ? 0 : SLUICE_ENOENT;
}

static int host_eval(const struct sluice_expr *expr,
                     struct sluice_batch *batch,
                     const struct sluice_record *rec,
                     struct sluice_value *ret_value,
                     char *errbuf,
                     size_t errbuf_len)
{
    struct sl__plugin_call *call = call_of(batch);
    struct sl_err err = {0};

    if (call == NULL || expr == NULL) {
        snprintf(errbuf, errbuf_len, "eval: no such expression or batch");
        return SLUICE_EINVAL;
    }
    int rc = sl_expr_eval((const struct sl_expr *)expr, CREC(rec), &call->batch->arena,
                          VAL(ret_value), &err);
    if (rc == SL_ENOMEM) {
        return SLUICE_ENOMEM;
    }
    if (rc != 0) {
        snprintf(errbuf, errbuf_len, "%s", err.msg);
        return SLUICE_EINVAL;
    }
    return 0;
}

static void host_drop(struct sluice_batch *batch, struct sluice_record *rec)
{
    struct sl__plugin_call *call = call_of(batch);

    if (call != NULL) {
        (void)mark(call, REC(rec), 1);
    }
}

static int host_dead(struct sluice_stage *st,
                     struct sluice_batch *batch,
                     struct sluice_record *rec,
                     const char *reason)
{
    struct sl__plugin_call *call = call_of(batch);

    /* An added record shares its source's place, and so the id of a dead
     * letter its source would make here: it may only be dropped. */
    if (call == NULL || (void *)st != (void *)call->node || index_of(call, REC(rec)) < 0 ||
        call->gone[index_of(call, REC(rec))] != 0) {
        return SLUICE_EINVAL;
    }
    if (sl_node_dead(call->node, call->batch, REC(rec), reason != NULL ? reason : "rejected") !=
        0) {
        return SLUICE_ENOMEM;
    }
    (void)mark(call, REC(rec), 2);
    return 0;
}

static void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}

/* The sub-position (sl_meta.sub) of the next record added from from, the
 * k-th added from it in this call: a hash of from's own, the node's name
 * and k. It depends only on what the plugin does with from, not on where
 * the batch was cut, so a replay makes it again; the node's name keeps
 * apart the records two plugin stages in a row add from one record.
 * Counts the record as added from from. 0 or SL_ENOMEM. */
static int sub_of(struct sl__plugin_call *call, const struct sl_record *from, uint64_t *ret_sub)
{
    int64_t i = index_of(call, from);
    unsigned char buf[16];

    if (call->emits == NULL) {
        const char *name = call->node->name != NULL ? call->node->name : "";
        call->emits =
            sl_arena_alloc(&call->batch->arena, (call->n > 0 ? call->n : 1) * sizeof(*call->emits));
        if (call->emits == NULL) {
            return SL_ENOMEM;
        }
        memset(call->emits, 0, call->n * sizeof(*call->emits));
        /* Fixed keys: the same every run. */
        call->node_key = sl_siphash13((const unsigned char *)name, strlen(name), 0x736c75696365ull,
                                      0x656d6974ull);
    }
    uint32_t *emits = i >= 0 ? &call->emits[i] : &((struct added *)from)->emits;
    *emits += 1;
    put_le64(buf, from->meta.sub);
    put_le64(buf + 8, *emits);
    uint64_t sub = sl_siphash13(buf, sizeof(buf), call->node_key, 0x737562ull);
    *ret_sub = sub != 0 ? sub : 1; /* 0 is a record read from input */
    return 0;
}

static struct sluice_record *
host_emit(struct sluice_batch *batch, const struct sluice_record *from, bool copy_fields)
{
    struct sl__plugin_call *call = call_of(batch);
    uint64_t sub;

    if (call == NULL || from == NULL || refuse_growth(call)) {
        return NULL;
    }
    struct added *a = sl_arena_alloc(&call->batch->arena, sizeof(*a));
    if (a == NULL) {
        return NULL;
    }
    memset(a, 0, sizeof(*a));
    a->rec.meta = CREC(from)->meta;
    a->rec.raw = CREC(from)->raw;
    a->rec.raw_len = CREC(from)->raw_len;
    if (copy_fields && sl_record_copy_fields(&a->rec, CREC(from), &call->batch->arena) != 0) {
        return NULL;
    }
    /* Last: a record that was not added does not count. */
    if (sub_of(call, CREC(from), &sub) != 0) {
        return NULL;
    }
    a->rec.meta.sub = sub;
    *call->added_tail = a;
    call->added_tail = &a->next;
    call->nadded++;
    return (struct sluice_record *)&a->rec;
}

static bool host_emit_full(const struct sluice_batch *batch)
{
    struct sl__plugin_call *call = call_of(batch);

    return call != NULL && out_of_room(call);
}

/* A plugin's line, at its level (SLUICE_LOG_DEBUG only at engine.log_level
 * debug); its text is escaped by the log (one message, one line). */
static void host_log(struct sluice_stage *st, enum sluice_log_level level, const char *fmt, ...)
{
    const struct sl_node *node = (const struct sl_node *)st;
    char text[1024];
    va_list ap;

    /* Not built when not shown: a plugin may log per record. */
    if (!sl_log_enabled(level == SLUICE_LOG_ERROR  ? SL_LOG_ERROR
                        : level == SLUICE_LOG_WARN ? SL_LOG_WARN
                        : level == SLUICE_LOG_INFO ? SL_LOG_INFO
                                                   : SL_LOG_DEBUG)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    switch (level) {
    case SLUICE_LOG_ERROR:
        sl_log_error("node '%s': %s", node->name, text);
        break;
    case SLUICE_LOG_WARN:
        sl_log_warn("node '%s': %s", node->name, text);
        break;
    case SLUICE_LOG_INFO:
        sl_log_info("node '%s': %s", node->name, text);
        break;
    default:
        sl_log_debug("node '%s': %s", node->name, text);
        break;
    }
}

static void host_count(struct sluice_stage *st, unsigned index, uint64_t n)
{
    struct sl__plugin_node *pn = ((struct sl_node *)st)->state;

    if (pn != NULL && index < pn->ncounters) {
        atomic_fetch_add_explicit(&pn->counters[index], n, memory_order_relaxed);
    }
}

static const char *host_stage_name(const struct sluice_stage *st)
{
    return ((const struct sl_node *)st)->name;
}

const struct sluice_host_api sl__plugin_host = {
    .abi_version = SLUICE_ABI_VERSION,
    .struct_size = sizeof(struct sluice_host_api),
    .batch_size = host_batch_size,
    .batch_record = host_batch_record,
    .get = host_get,
    .field_count = host_field_count,
    .field_at = host_field_at,
    .set = host_set,
    .remove = host_remove,
    .meta = host_meta,
    .eval = host_eval,
    .drop = host_drop,
    .dead = host_dead,
    .emit = host_emit,
    .log = host_log,
    .count = host_count,
    .stage_name = host_stage_name,
    .emit_full = host_emit_full,
};
