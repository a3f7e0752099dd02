/* SPDX-License-Identifier: MIT */
/* The built-in functions of the expression language (round ... now), called
 * by expr_eval.c. Null in gives null out, except coalesce, concat and if; a
 * wrong argument type is a data error naming the function. New strings go
 * into the evaluation's arena. Any worker thread. */
#include "expr_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *fn_name(uint8_t fn)
{
    return sl__expr_fns[fn].name;
}

static bool is_cont(char c)
{
    return ((unsigned char)c & 0xC0) == 0x80;
}

static int64_t count_code_points(const char *s, uint32_t len)
{
    int64_t n = 0;

    for (uint32_t i = 0; i < len; i++) {
        n += is_cont(s[i]) ? 0 : 1;
    }
    return n;
}

/* Byte offset of code point k of s (len when past the end). */
static uint32_t code_point_offset(const char *s, uint32_t len, int64_t k)
{
    uint32_t i = 0;

    while (k > 0 && i < len) {
        i++;
        while (i < len && is_cont(s[i])) {
            i++;
        }
        k--;
    }
    return i;
}

/* Length of the valid UTF-8 sequence at p (n bytes available), 0 if none. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t len;

    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi) {
        return 0;
    }
    for (size_t i = 2; i < len; i++) {
        if (!is_cont((char)p[i])) {
            return 0;
        }
    }
    return len;
}

/* Bytes as a string: borrowed when valid UTF-8, else a copy in the arena
 * with each invalid byte replaced by U+FFFD. */
static int
bytes_to_string(const struct sl__expr_ctx *cx, const struct sl_value *v, struct sl_value *ret)
{
    const unsigned char *p = (const unsigned char *)v->u.s;
    size_t i = 0, k;
    size_t o = 0;

    for (; i < v->len; i += k) {
        k = utf8_seq(p + i, v->len - i);
        if (k == 0) {
            break;
        }
    }
    if (i == v->len) {
        *ret = sl_value_str(v->u.s, v->len);
        return 0;
    }
    char *out = sl_arena_alloc(cx->arena, (size_t)v->len * 3);
    if (out == NULL) {
        return sl__expr_oom(cx);
    }
    for (i = 0; i < v->len; i += k) {
        k = utf8_seq(p + i, v->len - i);
        if (k == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            k = 1;
        } else {
            memcpy(out + o, p + i, k);
            o += k;
        }
    }
    *ret = sl_value_str(out, (uint32_t)o);
    return 0;
}

/* to_string: every type converts; null stays null. */
static int stringify(const struct sl__expr_ctx *cx, const struct sl_value *v, struct sl_value *ret)
{
    char *buf;
    size_t n;

    switch (v->type) {
    case SL_TYPE_NULL:
    case SL_TYPE_STR:
        *ret = *v;
        return 0;
    case SL_TYPE_BOOL:
        *ret = v->u.b ? sl_value_str("true", 4) : sl_value_str("false", 5);
        return 0;
    case SL_TYPE_BYTES:
        return bytes_to_string(cx, v, ret);
    case SL_TYPE_ARRAY:
    case SL_TYPE_OBJECT:
        *ret = sl_value_str(v->u.s, v->len);
        return 0;
    default:
        break;
    }
    buf = sl_arena_alloc(cx->arena, 32);
    if (buf == NULL) {
        return sl__expr_oom(cx);
    }
    if (v->type == SL_TYPE_INT) {
        n = (size_t)snprintf(buf, 32, "%" PRId64, v->u.i);
    } else {
        n = sl_json_format_double(v->u.d, buf);
    }
    *ret = sl_value_str(buf, (uint32_t)n);
    return 0;
}

/* round, floor, ceil: an int; a double out of the int64 range is an error. */
static int
fn_round(const struct sl__expr_ctx *cx, uint8_t fn, const struct sl_value *v, struct sl_value *ret)
{
    double r;

    if (v->type == SL_TYPE_NULL || v->type == SL_TYPE_INT) {
        *ret = *v;
        return 0;
    }
    if (v->type != SL_TYPE_DOUBLE) {
        return sl__expr_type_error(cx, fn_name(fn), v, NULL);
    }
    r = fn == SL__FN_ROUND ? round(v->u.d) : fn == SL__FN_FLOOR ? floor(v->u.d) : ceil(v->u.d);
    if (!(r >= -0x1p63 && r < 0x1p63)) {
        return sl_err_set(cx->err, SL_EDATA, "integer overflow in %s", fn_name(fn));
    }
    *ret = sl_value_int((int64_t)r);
    return 0;
}

static int fn_abs(const struct sl__expr_ctx *cx, const struct sl_value *v, struct sl_value *ret)
{
    switch (v->type) {
    case SL_TYPE_NULL:
        *ret = *v;
        return 0;
    case SL_TYPE_INT:
        if (v->u.i == INT64_MIN) {
            return sl_err_set(cx->err, SL_EDATA, "integer overflow in abs");
        }
        *ret = sl_value_int(v->u.i < 0 ? -v->u.i : v->u.i);
        return 0;
    case SL_TYPE_DOUBLE:
        *ret = sl_value_double(fabs(v->u.d));
        return 0;
    default:
        return sl__expr_type_error(cx, "abs", v, NULL);
    }
}

/* ==== lower, upper ==== */

/* Unicode's simple case mappings (one code point to one, UnicodeData.txt)
 * for ASCII, Latin-1 Supplement, Latin Extended-A, Greek and Coptic,
 * Cyrillic and Cyrillic Supplement, plus U+1E9E (capital sharp s). A row
 * maps each code point of [lo, hi] by delta, or every other one (step 2,
 * the pairs of the Latin and Cyrillic blocks). Code points without a
 * simple mapping (ß, ŉ, ΐ) and those of other blocks are kept: the result
 * does not depend on the locale. */
struct case_row {
    uint16_t lo, hi;
    int16_t delta;
    uint8_t step;
};

/* clang-format off */
static const struct case_row upper_rows[] = {
    {0x0061, 0x007A, -32, 1},   {0x00B5, 0x00B5, 743, 1},   {0x00E0, 0x00F6, -32, 1},
    {0x00F8, 0x00FE, -32, 1},   {0x00FF, 0x00FF, 121, 1},   {0x0101, 0x012F, -1, 2},
    {0x0131, 0x0131, -232, 1},  {0x0133, 0x0137, -1, 2},    {0x013A, 0x0148, -1, 2},
    {0x014B, 0x0177, -1, 2},    {0x017A, 0x017E, -1, 2},    {0x017F, 0x017F, -300, 1},
    {0x0371, 0x0373, -1, 2},    {0x0377, 0x0377, -1, 1},    {0x037B, 0x037D, 130, 1},
    {0x03AC, 0x03AC, -38, 1},   {0x03AD, 0x03AF, -37, 1},   {0x03B1, 0x03C1, -32, 1},
    {0x03C2, 0x03C2, -31, 1},   {0x03C3, 0x03CB, -32, 1},   {0x03CC, 0x03CC, -64, 1},
    {0x03CD, 0x03CE, -63, 1},   {0x03D0, 0x03D0, -62, 1},   {0x03D1, 0x03D1, -57, 1},
    {0x03D5, 0x03D5, -47, 1},   {0x03D6, 0x03D6, -54, 1},   {0x03D7, 0x03D7, -8, 1},
    {0x03D9, 0x03EF, -1, 2},    {0x03F0, 0x03F0, -86, 1},   {0x03F1, 0x03F1, -80, 1},
    {0x03F2, 0x03F2, 7, 1},     {0x03F3, 0x03F3, -116, 1},  {0x03F5, 0x03F5, -96, 1},
    {0x03F8, 0x03F8, -1, 1},    {0x03FB, 0x03FB, -1, 1},    {0x0430, 0x044F, -32, 1},
    {0x0450, 0x045F, -80, 1},   {0x0461, 0x0481, -1, 2},    {0x048B, 0x04BF, -1, 2},
    {0x04C2, 0x04CE, -1, 2},    {0x04CF, 0x04CF, -15, 1},   {0x04D1, 0x052F, -1, 2},
};
static const struct case_row lower_rows[] = {
    {0x0041, 0x005A, 32, 1},    {0x00C0, 0x00D6, 32, 1},    {0x00D8, 0x00DE, 32, 1},
    {0x0100, 0x012E, 1, 2},     {0x0130, 0x0130, -199, 1},  {0x0132, 0x0136, 1, 2},
    {0x0139, 0x0147, 1, 2},     {0x014A, 0x0176, 1, 2},     {0x0178, 0x0178, -121, 1},
    {0x0179, 0x017D, 1, 2},     {0x0370, 0x0372, 1, 2},     {0x0376, 0x0376, 1, 1},
    {0x037F, 0x037F, 116, 1},   {0x0386, 0x0386, 38, 1},    {0x0388, 0x038A, 37, 1},
    {0x038C, 0x038C, 64, 1},    {0x038E, 0x038F, 63, 1},    {0x0391, 0x03A1, 32, 1},
    {0x03A3, 0x03AB, 32, 1},    {0x03CF, 0x03CF, 8, 1},     {0x03D8, 0x03EE, 1, 2},
    {0x03F4, 0x03F4, -60, 1},   {0x03F7, 0x03F7, 1, 1},     {0x03F9, 0x03F9, -7, 1},
    {0x03FA, 0x03FA, 1, 1},     {0x03FD, 0x03FF, -130, 1},  {0x0400, 0x040F, 80, 1},
    {0x0410, 0x042F, 32, 1},    {0x0460, 0x0480, 1, 2},     {0x048A, 0x04BE, 1, 2},
    {0x04C0, 0x04C0, 15, 1},    {0x04C1, 0x04CD, 1, 2},     {0x04D0, 0x052E, 1, 2},
    {0x1E9E, 0x1E9E, -7615, 1},
};
/* clang-format on */

static uint32_t case_map(uint32_t cp, const struct case_row *rows, size_t n)
{
    for (size_t i = 0; i < n && cp >= rows[i].lo; i++) {
        if (cp <= rows[i].hi && (rows[i].step == 1 || (cp - rows[i].lo) % 2 == 0)) {
            return (uint32_t)((int32_t)cp + rows[i].delta);
        }
    }
    return cp;
}

/* Decodes the valid UTF-8 sequence of k bytes at p. */
static uint32_t utf8_decode(const unsigned char *p, size_t k)
{
    static const unsigned char lead_mask[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
    uint32_t cp = p[0] & lead_mask[k];

    for (size_t i = 1; i < k; i++) {
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    return cp;
}

/* Encodes cp (below 0x10000 here) at out; returns the bytes written. */
static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* Walks s (len bytes) from byte from, mapping each code point; writes the
 * result at out + o when out is not NULL. Bytes that are not valid UTF-8
 * are kept. Returns the end of the output, or, when out is NULL, the byte
 * offset of the first code point that changes (len when none does). */
static uint32_t case_walk(const char *s,
                          uint32_t len,
                          uint32_t from,
                          const struct case_row *rows,
                          size_t nrows,
                          char *out,
                          uint32_t o)
{
    for (uint32_t i = from; i < len;) {
        size_t k = utf8_seq((const unsigned char *)s + i, len - i);
        uint32_t cp = k != 0 ? utf8_decode((const unsigned char *)s + i, k) : 0;
        uint32_t mapped = k != 0 ? case_map(cp, rows, nrows) : 0;

        k = k != 0 ? k : 1;
        if (out == NULL && mapped != cp) {
            return i;
        }
        if (out != NULL && mapped != cp) {
            size_t w = utf8_encode(mapped, out + o);

            /* No mapping of the table makes a code point's UTF-8 longer. */
            SL_ASSERT(w <= k);
            o += (uint32_t)w;
        } else if (out != NULL) {
            memcpy(out + o, s + i, k);
            o += (uint32_t)k;
        }
        i += (uint32_t)k;
    }
    return out != NULL ? o : len;
}

/* lower, upper: Unicode simple case mapping of the blocks above. */
static int
fn_case(const struct sl__expr_ctx *cx, uint8_t fn, const struct sl_value *v, struct sl_value *ret)
{
    const struct case_row *rows = fn == SL__FN_UPPER ? upper_rows : lower_rows;
    size_t nrows = fn == SL__FN_UPPER ? sizeof(upper_rows) / sizeof(upper_rows[0])
                                      : sizeof(lower_rows) / sizeof(lower_rows[0]);
    uint32_t first, n;
    char *out;

    if (v->type == SL_TYPE_NULL) {
        *ret = *v;
        return 0;
    }
    if (v->type != SL_TYPE_STR) {
        return sl__expr_type_error(cx, fn_name(fn), v, NULL);
    }
    first = case_walk(v->u.s, v->len, 0, rows, nrows, NULL, 0);
    if (first == v->len) {
        *ret = *v; /* nothing to change: borrow */
        return 0;
    }
    out = sl_arena_alloc(cx->arena, v->len + 1);
    if (out == NULL) {
        return sl__expr_oom(cx);
    }
    memcpy(out, v->u.s, first);
    n = case_walk(v->u.s, v->len, first, rows, nrows, out, first);
    out[n] = '\0';
    *ret = sl_value_str(out, n);
    return 0;
}

static int fn_len(const struct sl__expr_ctx *cx, const struct sl_value *v, struct sl_value *ret)
{
    switch (v->type) {
    case SL_TYPE_NULL:
        *ret = *v;
        return 0;
    case SL_TYPE_STR:
        *ret = sl_value_int(count_code_points(v->u.s, v->len));
        return 0;
    case SL_TYPE_BYTES:
        *ret = sl_value_int(v->len);
        return 0;
    case SL_TYPE_ARRAY:
    case SL_TYPE_OBJECT:
        *ret = sl_value_int((int64_t)sl_json_count(v->u.s, v->len));
        return 0;
    default:
        return sl__expr_type_error(cx, "len", v, NULL);
    }
}

/* concat: null arguments are skipped, others converted as by to_string. */
static int
fn_concat(const struct sl__expr_ctx *cx, struct sl_value *argv, uint32_t argc, struct sl_value *ret)
{
    size_t total = 0;
    uint32_t nonempty = 0, last = 0;

    for (uint32_t i = 0; i < argc; i++) {
        int rc = stringify(cx, &argv[i], &argv[i]);
        if (rc != 0) {
            return rc;
        }
        if (argv[i].type == SL_TYPE_STR && argv[i].len > 0) {
            total += argv[i].len;
            nonempty++;
            last = i;
        }
    }
    if (total > UINT32_MAX) {
        return sl_err_set(cx->err, SL_EDATA, "concat: result longer than 4 GiB");
    }
    if (nonempty <= 1) {
        *ret = nonempty == 1 ? argv[last] : sl_value_str("", 0);
        return 0;
    }
    char *out = sl_arena_alloc(cx->arena, total + 1);
    if (out == NULL) {
        return sl__expr_oom(cx);
    }
    size_t o = 0;
    for (uint32_t i = 0; i < argc; i++) {
        if (argv[i].type == SL_TYPE_STR && argv[i].len > 0) {
            memcpy(out + o, argv[i].u.s, argv[i].len);
            o += argv[i].len;
        }
    }
    out[o] = '\0';
    *ret = sl_value_str(out, (uint32_t)o);
    return 0;
}

/* substr(s, start[, len]) in code points, 0-based; out-of-range clamps. The
 * result borrows s's bytes. */
static int fn_substr(const struct sl__expr_ctx *cx,
                     const struct sl_value *argv,
                     uint32_t argc,
                     struct sl_value *ret)
{
    const struct sl_value *s = &argv[0];

    for (uint32_t i = 0; i < argc; i++) {
        if (argv[i].type == SL_TYPE_NULL) {
            *ret = sl_value_null();
            return 0;
        }
    }
    if (s->type != SL_TYPE_STR || argv[1].type != SL_TYPE_INT ||
        (argc == 3 && argv[2].type != SL_TYPE_INT)) {
        const char *t0 = sl_type_name((enum sl_type)s->type);
        const char *t1 = sl_type_name((enum sl_type)argv[1].type);
        if (argc == 2) {
            return sl_err_set(cx->err, SL_EDATA, "cannot apply substr to %s and %s", t0, t1);
        }
        return sl_err_set(cx->err, SL_EDATA, "cannot apply substr to %s, %s and %s", t0, t1,
                          sl_type_name((enum sl_type)argv[2].type));
    }
    int64_t start = argv[1].u.i < 0 ? 0 : argv[1].u.i;
    uint32_t from = code_point_offset(s->u.s, s->len, start);
    uint32_t to = s->len;
    if (argc == 3) {
        int64_t n = argv[2].u.i < 0 ? 0 : argv[2].u.i;
        to = from + code_point_offset(s->u.s + from, s->len - from, n);
    }
    *ret = sl_value_str(s->u.s + from, to - from);
    return 0;
}

static bool find_bytes(const char *h, size_t hlen, const char *n, size_t nlen)
{
    if (nlen == 0) {
        return true;
    }
    for (size_t i = 0; i + nlen <= hlen; i++) {
        const char *p = memchr(h + i, n[0], hlen - nlen - i + 1);
        if (p == NULL) {
            return false;
        }
        i = (size_t)(p - h);
        if (memcmp(p, n, nlen) == 0) {
            return true;
        }
    }
    return false;
}

/* contains(array, x): an element equal to x (as by ==). */
static int array_contains(const struct sl__expr_ctx *cx,
                          const struct sl_value *arr,
                          const struct sl_value *x,
                          struct sl_value *ret)
{
    size_t pos = 0;
    struct sl_value item;
    int rc;

    /* One pass over the text: indexing element by element is quadratic. */
    while ((rc = sl_json_array_next(arr->u.s, arr->len, &pos, cx->arena, &item)) == 0) {
        if (sl__expr_equal(&item, x)) {
            *ret = sl_value_bool(true);
            return 0;
        }
    }
    if (rc == SL_ENOMEM) {
        return sl__expr_oom(cx);
    }
    if (rc != SL_EOF) {
        return sl_err_set(cx->err, SL_EDATA, "contains: malformed JSON array");
    }
    *ret = sl_value_bool(false);
    return 0;
}

/* contains, starts_with, ends_with on strings (or bytes); contains also
 * looks for an element of an array. */
static int fn_match(const struct sl__expr_ctx *cx,
                    uint8_t fn,
                    const struct sl_value *h,
                    const struct sl_value *n,
                    struct sl_value *ret)
{
    bool text = (h->type == SL_TYPE_STR || h->type == SL_TYPE_BYTES) &&
                (n->type == SL_TYPE_STR || n->type == SL_TYPE_BYTES);

    if (h->type == SL_TYPE_NULL || n->type == SL_TYPE_NULL) {
        *ret = sl_value_null();
        return 0;
    }
    if (fn == SL__FN_CONTAINS && h->type == SL_TYPE_ARRAY) {
        return array_contains(cx, h, n, ret);
    }
    if (!text) {
        return sl__expr_type_error(cx, fn_name(fn), h, n);
    }
    if (fn == SL__FN_CONTAINS) {
        *ret = sl_value_bool(find_bytes(h->u.s, h->len, n->u.s, n->len));
    } else if (n->len > h->len) {
        *ret = sl_value_bool(false);
    } else {
        const char *at = fn == SL__FN_STARTS_WITH ? h->u.s : h->u.s + h->len - n->len;
        *ret = sl_value_bool(n->len == 0 || memcmp(at, n->u.s, n->len) == 0);
    }
    return 0;
}

static int
parse_error(const struct sl__expr_ctx *cx, uint8_t fn, const struct sl_value *v, const char *what)
{
    return sl_err_set(cx->err, SL_EDATA, "%s: cannot parse \"%.*s\"%s as %s", fn_name(fn),
                      (int)(v->len > 40 ? 40 : v->len), v->u.s, v->len > 40 ? "..." : "", what);
}

/* Parses [+-]digits exactly, within int64. */
static bool parse_int(const char *s, uint32_t len, int64_t *ret)
{
    uint32_t i = (len > 0 && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
    bool neg = len > 0 && s[0] == '-';
    uint64_t limit = neg ? (UINT64_C(1) << 63) : (uint64_t)INT64_MAX;
    uint64_t u = 0;

    if (i == len) {
        return false;
    }
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        unsigned d = (unsigned)(s[i] - '0');
        if (u > (limit - d) / 10) {
            return false;
        }
        u = u * 10 + d;
    }
    *ret = neg ? (int64_t)(0 - u) : (int64_t)u;
    return true;
}

static int fn_to_int(const struct sl__expr_ctx *cx, const struct sl_value *v, struct sl_value *ret)
{
    int64_t i;
    double t;

    switch (v->type) {
    case SL_TYPE_NULL:
    case SL_TYPE_INT:
        *ret = *v;
        return 0;
    case SL_TYPE_BOOL:
        *ret = sl_value_int(v->u.b ? 1 : 0);
        return 0;
    case SL_TYPE_DOUBLE:
        t = trunc(v->u.d);
        if (!(t >= -0x1p63 && t < 0x1p63)) {
            return sl_err_set(cx->err, SL_EDATA, "integer overflow in to_int");
        }
        *ret = sl_value_int((int64_t)t);
        return 0;
    case SL_TYPE_STR:
        if (!parse_int(v->u.s, v->len, &i)) {
            return parse_error(cx, SL__FN_TO_INT, v, "an int");
        }
        *ret = sl_value_int(i);
        return 0;
    default:
        return sl__expr_type_error(cx, "to_int", v, NULL);
    }
}

/* Parses a decimal number (strtod syntax without hex, inf and nan). */
static bool parse_float(const char *s, uint32_t len, double *ret)
{
    char buf[128];
    char *end;
    bool digit = false;

    if (len == 0 || len >= sizeof(buf)) {
        return false;
    }
    for (uint32_t i = 0; i < len; i++) {
        if (!strchr("0123456789+-.eE", s[i]) || s[i] == '\0') {
            return false;
        }
        digit = digit || (s[i] >= '0' && s[i] <= '9');
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    *ret = strtod(buf, &end);
    return digit && end == buf + len && isfinite(*ret);
}

static int
fn_to_float(const struct sl__expr_ctx *cx, const struct sl_value *v, struct sl_value *ret)
{
    double d;

    switch (v->type) {
    case SL_TYPE_NULL:
    case SL_TYPE_DOUBLE:
        *ret = *v;
        return 0;
    case SL_TYPE_BOOL:
        *ret = sl_value_double(v->u.b ? 1.0 : 0.0);
        return 0;
    case SL_TYPE_INT:
        *ret = sl_value_double((double)v->u.i);
        return 0;
    case SL_TYPE_STR:
        if (!parse_float(v->u.s, v->len, &d)) {
            return parse_error(cx, SL__FN_TO_FLOAT, v, "a float");
        }
        *ret = sl_value_double(d);
        return 0;
    default:
        return sl__expr_type_error(cx, "to_float", v, NULL);
    }
}

static int64_t now_ms(void)
{
    struct timespec ts;

    if (timespec_get(&ts, TIME_UTC) != TIME_UTC) {
        return 0;
    }
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* coalesce: the first non-null argument; later ones are not evaluated. */
static int
fn_coalesce(const struct sl__expr_ctx *cx, const struct sl__expr_node *n, struct sl_value *ret)
{
    struct sl_value v = sl_value_null();

    for (uint32_t i = 0; i < n->count && v.type == SL_TYPE_NULL; i++) {
        int rc = sl__expr_eval_node(cx, cx->e->args[n->first + i], &v);
        if (rc != 0) {
            return rc;
        }
    }
    *ret = v;
    return 0;
}

/* if(cond, a, b): a when cond is true, b when it is false or null (as &&
 * and || read null); only that branch is evaluated. A cond of another type
 * is a data error. */
static int fn_if(const struct sl__expr_ctx *cx, const struct sl__expr_node *n, struct sl_value *ret)
{
    struct sl_value c;
    int rc = sl__expr_eval_node(cx, cx->e->args[n->first], &c);

    if (rc != 0) {
        return rc;
    }
    if (c.type != SL_TYPE_BOOL && c.type != SL_TYPE_NULL) {
        return sl__expr_type_error(cx, "if", &c, NULL);
    }
    bool yes = c.type == SL_TYPE_BOOL && c.u.b;
    return sl__expr_eval_node(cx, cx->e->args[n->first + (yes ? 1 : 2)], ret);
}

int sl__expr_call(const struct sl__expr_ctx *cx,
                  const struct sl__expr_node *n,
                  struct sl_value *ret)
{
    /* The first entries are set so that gcc -O2 sees no read of an unset
     * value (arity is checked at compile time, it cannot prove it). */
    struct sl_value argv[SL__EXPR_MAX_ARGS];
    argv[0] = argv[1] = argv[2] = sl_value_null();

    if (n->fn == SL__FN_COALESCE) {
        return fn_coalesce(cx, n, ret);
    }
    if (n->fn == SL__FN_IF) {
        return fn_if(cx, n, ret);
    }
    for (uint32_t i = 0; i < n->count; i++) {
        int rc = sl__expr_eval_node(cx, cx->e->args[n->first + i], &argv[i]);
        if (rc != 0) {
            return rc;
        }
    }
    switch (n->fn) {
    case SL__FN_ROUND:
    case SL__FN_FLOOR:
    case SL__FN_CEIL:
        return fn_round(cx, n->fn, &argv[0], ret);
    case SL__FN_ABS:
        return fn_abs(cx, &argv[0], ret);
    case SL__FN_LOWER:
    case SL__FN_UPPER:
        return fn_case(cx, n->fn, &argv[0], ret);
    case SL__FN_LEN:
        return fn_len(cx, &argv[0], ret);
    case SL__FN_CONCAT:
        return fn_concat(cx, argv, n->count, ret);
    case SL__FN_SUBSTR:
        return fn_substr(cx, argv, n->count, ret);
    case SL__FN_CONTAINS:
    case SL__FN_STARTS_WITH:
    case SL__FN_ENDS_WITH:
        return fn_match(cx, n->fn, &argv[0], &argv[1], ret);
    case SL__FN_TO_INT:
        return fn_to_int(cx, &argv[0], ret);
    case SL__FN_TO_FLOAT:
        return fn_to_float(cx, &argv[0], ret);
    case SL__FN_TO_STRING:
        return stringify(cx, &argv[0], ret);
    default:
        *ret = sl_value_int(now_ms());
        return 0;
    }
}
