/* SPDX-License-Identifier: MIT */
/* Expression evaluation: walks the compiled node array against one record.
 * Operators, comparisons, field paths and metadata live here; functions in
 * expr_func.c. Evaluation never touches the heap: new strings go into the
 * caller's arena, and the recursion depth is bounded at compile time. Any
 * number of worker threads evaluate the same (read-only) expression. */
#include "expr_int.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

static const char *const op_names[SL__OP_COUNT] = {
    [SL__OP_NEG] = "-", [SL__OP_NOT] = "!", [SL__OP_ADD] = "+",  [SL__OP_SUB] = "-",
    [SL__OP_MUL] = "*", [SL__OP_DIV] = "/", [SL__OP_MOD] = "%",  [SL__OP_LT] = "<",
    [SL__OP_LE] = "<=", [SL__OP_GT] = ">",  [SL__OP_GE] = ">=",  [SL__OP_EQ] = "==",
    [SL__OP_NE] = "!=", [SL__OP_IN] = "in", [SL__OP_AND] = "&&", [SL__OP_OR] = "||",
};

int sl__expr_type_error(const struct sl__expr_ctx *cx,
                        const char *op,
                        const struct sl_value *l,
                        const struct sl_value *r)
{
    if (r == NULL) {
        return sl_err_set(cx->err, SL_EDATA, "cannot apply %s to %s", op,
                          sl_type_name((enum sl_type)l->type));
    }
    return sl_err_set(cx->err, SL_EDATA, "cannot apply %s to %s and %s", op,
                      sl_type_name((enum sl_type)l->type), sl_type_name((enum sl_type)r->type));
}

int sl__expr_oom(const struct sl__expr_ctx *cx)
{
    return sl_err_set(cx->err, SL_ENOMEM, "out of memory evaluating an expression");
}

static bool is_number(const struct sl_value *v)
{
    return v->type == SL_TYPE_INT || v->type == SL_TYPE_DOUBLE;
}

static bool is_text(const struct sl_value *v)
{
    return v->type == SL_TYPE_STR || v->type == SL_TYPE_BYTES;
}

static double as_double(const struct sl_value *v)
{
    return v->type == SL_TYPE_INT ? (double)v->u.i : v->u.d;
}

/* Exact comparison of an int64 with a double (no rounding of the int). */
static int cmp_int_double(int64_t i, double d)
{
    if (isnan(d)) {
        return 1; /* unordered; cannot come from JSON, CSV or arithmetic */
    }
    if (d >= 0x1p63) {
        return -1;
    }
    if (d < -0x1p63) {
        return 1;
    }
    double t = trunc(d);
    int64_t ti = (int64_t)t;
    if (i != ti) {
        return i < ti ? -1 : 1;
    }
    return d > t ? -1 : d < t ? 1 : 0;
}

static int cmp_numbers(const struct sl_value *l, const struct sl_value *r)
{
    if (l->type == SL_TYPE_INT && r->type == SL_TYPE_INT) {
        return l->u.i < r->u.i ? -1 : l->u.i > r->u.i ? 1 : 0;
    }
    if (l->type == SL_TYPE_INT) {
        return cmp_int_double(l->u.i, r->u.d);
    }
    if (r->type == SL_TYPE_INT) {
        return -cmp_int_double(r->u.i, l->u.d);
    }
    return l->u.d < r->u.d ? -1 : l->u.d > r->u.d ? 1 : 0;
}

/* memcmp order, a shorter prefix first. */
static int cmp_bytes(const struct sl_value *l, const struct sl_value *r)
{
    uint32_t n = l->len < r->len ? l->len : r->len;
    int c = n > 0 ? memcmp(l->u.s, r->u.s, n) : 0;

    if (c != 0) {
        return c < 0 ? -1 : 1;
    }
    return l->len < r->len ? -1 : l->len > r->len ? 1 : 0;
}

bool sl__expr_equal(const struct sl_value *l, const struct sl_value *r)
{
    if (is_number(l) && is_number(r)) {
        return cmp_numbers(l, r) == 0;
    }
    if (is_text(l) && is_text(r)) {
        return cmp_bytes(l, r) == 0;
    }
    if (l->type != r->type) {
        return false;
    }
    switch (l->type) {
    case SL_TYPE_NULL:
        return true;
    case SL_TYPE_BOOL:
        return l->u.b == r->u.b;
    case SL_TYPE_ARRAY:
    case SL_TYPE_OBJECT:
        /* Compared as JSON text: equal values written differently differ. */
        return cmp_bytes(l, r) == 0;
    default:
        return false;
    }
}

/* < <= > >=: false when either side is null; numbers numerically, strings
 * and bytes bytewise, bools false < true; anything else is a data error. */
static int order(const struct sl__expr_ctx *cx,
                 uint8_t op,
                 const struct sl_value *l,
                 const struct sl_value *r,
                 struct sl_value *ret)
{
    int c;

    if (l->type == SL_TYPE_NULL || r->type == SL_TYPE_NULL) {
        *ret = sl_value_bool(false);
        return 0;
    }
    if (is_number(l) && is_number(r)) {
        c = cmp_numbers(l, r);
    } else if (is_text(l) && is_text(r)) {
        c = cmp_bytes(l, r);
    } else if (l->type == SL_TYPE_BOOL && r->type == SL_TYPE_BOOL) {
        c = (int)l->u.b - (int)r->u.b;
    } else {
        return sl_err_set(cx->err, SL_EDATA, "cannot compare %s with %s",
                          sl_type_name((enum sl_type)l->type), sl_type_name((enum sl_type)r->type));
    }
    switch (op) {
    case SL__OP_LT:
        *ret = sl_value_bool(c < 0);
        break;
    case SL__OP_LE:
        *ret = sl_value_bool(c <= 0);
        break;
    case SL__OP_GT:
        *ret = sl_value_bool(c > 0);
        break;
    default:
        *ret = sl_value_bool(c >= 0);
        break;
    }
    return 0;
}

static int overflow(const struct sl__expr_ctx *cx, uint8_t op)
{
    return sl_err_set(cx->err, SL_EDATA, "integer overflow in %s", op_names[op]);
}

static int
arith_int(const struct sl__expr_ctx *cx, uint8_t op, int64_t a, int64_t b, struct sl_value *ret)
{
    int64_t v = 0;
    bool ovf = false;

    switch (op) {
    case SL__OP_ADD:
        ovf = __builtin_add_overflow(a, b, &v);
        break;
    case SL__OP_SUB:
        ovf = __builtin_sub_overflow(a, b, &v);
        break;
    case SL__OP_MUL:
        ovf = __builtin_mul_overflow(a, b, &v);
        break;
    case SL__OP_DIV:
        if (b == 0) {
            return sl_err_set(cx->err, SL_EDATA, "division by zero in /");
        }
        *ret = sl_value_double((double)a / (double)b);
        return 0;
    default:
        if (b == 0) {
            return sl_err_set(cx->err, SL_EDATA, "division by zero in %%");
        }
        v = b == -1 ? 0 : a % b; /* INT64_MIN % -1 traps in C; the result is 0 */
        break;
    }
    if (ovf) {
        return overflow(cx, op);
    }
    *ret = sl_value_int(v);
    return 0;
}

static int arith(const struct sl__expr_ctx *cx,
                 uint8_t op,
                 const struct sl_value *l,
                 const struct sl_value *r,
                 struct sl_value *ret)
{
    double a, b, v;

    if (l->type == SL_TYPE_NULL || r->type == SL_TYPE_NULL) {
        *ret = sl_value_null();
        return 0;
    }
    if (l->type == SL_TYPE_INT && r->type == SL_TYPE_INT) {
        return arith_int(cx, op, l->u.i, r->u.i, ret);
    }
    if (!is_number(l) || !is_number(r)) {
        return sl__expr_type_error(cx, op_names[op], l, r);
    }
    a = as_double(l);
    b = as_double(r);
    if ((op == SL__OP_DIV || op == SL__OP_MOD) && b == 0.0) {
        return sl_err_set(cx->err, SL_EDATA, "division by zero in %s", op_names[op]);
    }
    switch (op) {
    case SL__OP_ADD:
        v = a + b;
        break;
    case SL__OP_SUB:
        v = a - b;
        break;
    case SL__OP_MUL:
        v = a * b;
        break;
    case SL__OP_DIV:
        v = a / b;
        break;
    default:
        v = fmod(a, b);
        break;
    }
    if (!isfinite(v)) {
        return sl_err_set(cx->err, SL_EDATA, "float overflow in %s", op_names[op]);
    }
    *ret = sl_value_double(v);
    return 0;
}

static int negate(const struct sl__expr_ctx *cx, const struct sl_value *v, struct sl_value *ret)
{
    switch (v->type) {
    case SL_TYPE_NULL:
        *ret = *v;
        return 0;
    case SL_TYPE_INT:
        if (v->u.i == INT64_MIN) {
            return overflow(cx, SL__OP_NEG);
        }
        *ret = sl_value_int(-v->u.i);
        return 0;
    case SL_TYPE_DOUBLE:
        *ret = sl_value_double(-v->u.d);
        return 0;
    default:
        return sl__expr_type_error(cx, "-", v, NULL);
    }
}

/* The operand of && || !: null counts as false, anything but a bool is a
 * data error. */
static int truth(const struct sl__expr_ctx *cx, uint8_t op, const struct sl_value *v, bool *ret)
{
    if (v->type == SL_TYPE_BOOL) {
        *ret = v->u.b;
        return 0;
    }
    if (v->type == SL_TYPE_NULL) {
        *ret = false;
        return 0;
    }
    return sl__expr_type_error(cx, op_names[op], v, NULL);
}

static int
eval_logical(const struct sl__expr_ctx *cx, const struct sl__expr_node *n, struct sl_value *ret)
{
    bool stop_on = n->op == SL__OP_OR; /* || stops at the first true, && at the first false */
    struct sl_value v;
    bool b = false;

    for (uint32_t i = 0; i < n->count; i++) {
        int rc = sl__expr_eval_node(cx, cx->e->args[n->first + i], &v);
        if (rc == 0) {
            rc = truth(cx, n->op, &v, &b);
        }
        if (rc != 0) {
            return rc;
        }
        if (b == stop_on) {
            break;
        }
    }
    *ret = sl_value_bool(b);
    return 0;
}

static int
eval_in(const struct sl__expr_ctx *cx, const struct sl__expr_node *n, struct sl_value *ret)
{
    struct sl_value x, item;
    int rc = sl__expr_eval_node(cx, n->a, &x);

    for (uint32_t i = 0; rc == 0 && i < n->count; i++) {
        rc = sl__expr_eval_node(cx, cx->e->args[n->first + i], &item);
        if (rc == 0 && sl__expr_equal(&x, &item)) {
            *ret = sl_value_bool(true);
            return 0;
        }
    }
    if (rc == 0) {
        *ret = sl_value_bool(false);
    }
    return rc;
}

/* Metadata. A record is a file record when meta.line > 0, a Kafka record
 * when line == 0 and it has a stream (the topic); the other kind's names
 * read null, as does everything of a record without a source. */
/* The level of the batch being worked on by this thread (@priority): a
 * batch's, not a record's, and records are shared read-only between
 * fan-out paths at different levels. */
static _Thread_local uint8_t tl_priority;

void sl_expr_set_priority(uint8_t level)
{
    tl_priority = level;
}

static struct sl_value meta_value(const struct sl_meta *m, uint8_t which)
{
    bool file = m->line > 0;
    bool kafka = !file && m->stream != NULL;

    switch (which) {
    case SL__META_OFFSET:
        return file || kafka ? sl_value_int(m->offset) : sl_value_null();
    case SL__META_PARTITION:
        return kafka ? sl_value_int(m->partition) : sl_value_null();
    case SL__META_TOPIC:
        return kafka ? sl_value_str(m->stream, (uint32_t)strlen(m->stream)) : sl_value_null();
    case SL__META_KEY:
        return m->key;
    case SL__META_TIMESTAMP:
        return kafka && m->timestamp_ms != 0 ? sl_value_int(m->timestamp_ms) : sl_value_null();
    case SL__META_HEADERS:
        return m->headers;
    case SL__META_FILE:
        return file ? sl_value_str(m->stream, (uint32_t)strlen(m->stream)) : sl_value_null();
    case SL__META_PRIORITY:
        return sl_value_int(tl_priority);
    default:
        return file ? sl_value_int(m->line) : sl_value_null();
    }
}

int sl_expr_meta(const struct sl_record *rec, const char *name, struct sl_value *ret)
{
    for (uint8_t i = 0; i < SL__META_COUNT; i++) {
        if (strcmp(sl__expr_meta_names[i], name) == 0) {
            *ret = meta_value(&rec->meta, i);
            return 0;
        }
    }
    return SL_EINVAL;
}

/* Follows node n's path segments from *v, decoding members of arrays and
 * objects from their JSON text. Whatever is missing, out of range or not a
 * container gives null. */
static int walk(const struct sl__expr_ctx *cx, const struct sl__expr_node *n, struct sl_value *v)
{
    for (uint32_t i = 0; i < n->count; i++) {
        const struct sl__expr_seg *seg = &cx->e->segs[n->first + i];
        struct sl_value out;
        int rc;
        if (v->type == SL_TYPE_OBJECT && seg->kind == SL__SEG_NAME) {
            rc = sl_json_object_get(v->u.s, v->len, seg->name, seg->len, cx->arena, &out);
        } else if (v->type == SL_TYPE_ARRAY && seg->kind == SL__SEG_INDEX) {
            rc = sl_json_array_get(v->u.s, v->len, (size_t)seg->idx, cx->arena, &out);
        } else {
            rc = SL_EOF;
        }
        if (rc == SL_EOF) {
            *v = sl_value_null();
            return 0;
        }
        if (rc == SL_ENOMEM) {
            return sl__expr_oom(cx);
        }
        if (rc != 0) {
            return sl_err_set(cx->err, SL_EDATA, "malformed JSON %s in a field path",
                              sl_type_name((enum sl_type)v->type));
        }
        *v = out;
    }
    return 0;
}

int sl__expr_eval_node(const struct sl__expr_ctx *cx, uint32_t idx, struct sl_value *ret)
{
    const struct sl__expr_node *n = &cx->e->nodes[idx];
    struct sl_value l, r;
    const struct sl_field *f;
    int rc;

    switch (n->op) {
    case SL__OP_LIT:
        *ret = n->lit;
        return 0;
    case SL__OP_FIELD:
        f = sl_record_find(cx->rec, n->lit.u.s, n->lit.len);
        *ret = f != NULL ? f->val : sl_value_null();
        return n->count > 0 ? walk(cx, n, ret) : 0;
    case SL__OP_META:
        *ret = meta_value(&cx->rec->meta, n->fn);
        return n->count > 0 ? walk(cx, n, ret) : 0;
    case SL__OP_NEG:
        rc = sl__expr_eval_node(cx, n->a, &l);
        return rc != 0 ? rc : negate(cx, &l, ret);
    case SL__OP_NOT: {
        bool b = false;
        rc = sl__expr_eval_node(cx, n->a, &l);
        if (rc == 0) {
            rc = truth(cx, n->op, &l, &b);
        }
        if (rc == 0) {
            *ret = sl_value_bool(!b);
        }
        return rc;
    }
    case SL__OP_AND:
    case SL__OP_OR:
        return eval_logical(cx, n, ret);
    case SL__OP_IN:
        return eval_in(cx, n, ret);
    case SL__OP_CALL:
        return sl__expr_call(cx, n, ret);
    default:
        break;
    }
    rc = sl__expr_eval_node(cx, n->a, &l);
    if (rc == 0) {
        rc = sl__expr_eval_node(cx, n->b, &r);
    }
    if (rc != 0) {
        return rc;
    }
    switch (n->op) {
    case SL__OP_EQ:
    case SL__OP_NE:
        *ret = sl_value_bool(sl__expr_equal(&l, &r) == (n->op == SL__OP_EQ));
        return 0;
    case SL__OP_LT:
    case SL__OP_LE:
    case SL__OP_GT:
    case SL__OP_GE:
        return order(cx, n->op, &l, &r, ret);
    default:
        return arith(cx, n->op, &l, &r, ret);
    }
}

int sl_expr_eval(const struct sl_expr *e,
                 const struct sl_record *rec,
                 struct sl_arena *arena,
                 struct sl_value *ret,
                 struct sl_err *err)
{
    struct sl__expr_ctx cx = {.e = e, .rec = rec, .arena = arena, .err = err};
    struct sl_value v;
    int rc = sl__expr_eval_node(&cx, e->root, &v);

    if (rc != 0) {
        return rc;
    }
    /* A string literal lives in e; the caller may store the result in the
     * record, which must not outlive the arena, so copy it there. */
    uintptr_t p = (uintptr_t)v.u.s;
    if (v.type == SL_TYPE_STR && p >= (uintptr_t)e->pool && p <= (uintptr_t)e->pool + e->pool_len) {
        char *s = sl_arena_strndup(arena, v.u.s, v.len);
        if (s == NULL) {
            return sl__expr_oom(&cx);
        }
        v.u.s = s;
    }
    *ret = v;
    return 0;
}
