/* SPDX-License-Identifier: MIT */
/* Unit tests of the expression language (engine/expr_*.c): every row of the
 * DESIGN.md semantics table, precedence, functions, paths, metadata, compile
 * errors with their column, and integer overflow. Single-threaded except the
 * concurrent evaluation test. */
#include "arena.h"
#include "expr.h"
#include "mem.h"
#include "record.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wctype.h>

#include <cmocka.h>

struct fx {
    struct sl_arena arena;
    struct sl_record rec;   /* a file record */
    struct sl_record kafka; /* a Kafka record */
    struct sl_record *cur;  /* the record the helpers evaluate against */
};

static struct fx *g_fx;

#define FIELD(rec, name, val)                                                                      \
    assert_int_equal(sl_record_append(rec, &fx->arena, name, (uint32_t)strlen(name), val), 0)

static struct sl_value typed(uint8_t type, const char *s)
{
    struct sl_value v = {.type = type, .len = (uint32_t)strlen(s), .u.s = s};
    return v;
}

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    sl_arena_init(&fx->arena);
    FIELD(&fx->rec, "amount", sl_value_int(42));
    FIELD(&fx->rec, "price", sl_value_double(2.5));
    FIELD(&fx->rec, "name", sl_value_str("h\xc3\xa9llo", 6));
    FIELD(&fx->rec, "status", sl_value_str("paid", 4));
    FIELD(&fx->rec, "nul", sl_value_null());
    FIELD(&fx->rec, "flag", sl_value_bool(true));
    FIELD(&fx->rec, "big", sl_value_int(INT64_MAX));
    FIELD(&fx->rec, "small", sl_value_int(INT64_MIN));
    FIELD(&fx->rec, "zero", sl_value_int(0));
    FIELD(&fx->rec, "tags", typed(SL_TYPE_ARRAY, "[\"a\",\"b\",\"c\"]"));
    FIELD(&fx->rec, "meta",
          typed(SL_TYPE_OBJECT,
                "{\"ip\":\"10.0.0.1\",\"geo\":{\"city\":\"Paris\",\"pts\":[1,2,{\"c\":7}]},"
                "\"x-y\":3}"));
    FIELD(&fx->rec, "a", typed(SL_TYPE_OBJECT, "{\"b\":[0,1,{\"c\":\"deep\"}]}"));
    FIELD(&fx->rec, "esc",
          typed(SL_TYPE_OBJECT,
                "{\"a b\":\"x\\ty\",\"u\":\"\\u00e9\",\"q\\\"k\":[true,null,1.5],\"u\":2}"));
    FIELD(&fx->rec, "Cost Total $", sl_value_int(5));
    FIELD(&fx->rec, "raw",
          typed(SL_TYPE_BYTES, "\xff"
                               "ab"));
    fx->rec.meta.stream = "data/orders.jsonl";
    fx->rec.meta.line = 7;
    fx->rec.meta.offset = 1234;

    FIELD(&fx->kafka, "amount", sl_value_int(1));
    fx->kafka.meta.stream = "orders";
    fx->kafka.meta.partition = 3;
    fx->kafka.meta.offset = 99;
    fx->kafka.meta.timestamp_ms = 1700000000000;
    fx->kafka.meta.key = sl_value_str("k1", 2);
    fx->kafka.meta.headers = typed(SL_TYPE_OBJECT, "{\"trace\":\"abc\"}");
    fx->cur = &fx->rec;
    g_fx = fx;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;

    sl_arena_release(&fx->arena);
    free(fx);
    return 0;
}

/* Compiles (must succeed), evaluates against g_fx->cur, frees. Returns the
 * eval rc; err gets the message. */
static int run(const char *text, struct sl_value *ret, struct sl_err *err)
{
    struct sl_err cerr = {0};
    struct sl_expr *e = sl_expr_compile(text, strlen(text), &cerr);

    if (e == NULL) {
        fail_msg("compile '%s' failed at col %d: %s", text, cerr.col, cerr.msg);
    }
    assert_string_equal(sl_expr_text(e), text);
    int rc = sl_expr_eval(e, g_fx->cur, &g_fx->arena, ret, err);
    sl_expr_free(e);
    return rc;
}

static struct sl_value ok(const char *text)
{
    struct sl_err err = {0};
    struct sl_value v;

    if (run(text, &v, &err) != 0) {
        fail_msg("eval '%s' failed: %s", text, err.msg);
    }
    return v;
}

static void is_int(const char *text, int64_t want)
{
    struct sl_value v = ok(text);

    if (v.type != SL_TYPE_INT || v.u.i != want) {
        fail_msg("'%s': want int %lld, got type %s (%lld)", text, (long long)want,
                 sl_type_name(v.type), v.type == SL_TYPE_INT ? (long long)v.u.i : 0LL);
    }
}

static void is_double(const char *text, double want)
{
    struct sl_value v = ok(text);

    if (v.type != SL_TYPE_DOUBLE || v.u.d != want) {
        fail_msg("'%s': want float %g, got type %s (%g)", text, want, sl_type_name(v.type),
                 v.type == SL_TYPE_DOUBLE ? v.u.d : 0.0);
    }
}

static void is_bool(const char *text, bool want)
{
    struct sl_value v = ok(text);

    if (v.type != SL_TYPE_BOOL || v.u.b != want) {
        fail_msg("'%s': want %s, got type %s (%d)", text, want ? "true" : "false",
                 sl_type_name(v.type), v.type == SL_TYPE_BOOL ? v.u.b : -1);
    }
}

static void is_null(const char *text)
{
    struct sl_value v = ok(text);

    if (v.type != SL_TYPE_NULL) {
        fail_msg("'%s': want null, got %s", text, sl_type_name(v.type));
    }
}

static void is_str(const char *text, const char *want)
{
    struct sl_value v = ok(text);

    if (v.type != SL_TYPE_STR || v.len != strlen(want) || memcmp(v.u.s, want, v.len) != 0) {
        fail_msg("'%s': want \"%s\", got %s \"%.*s\"", text, want, sl_type_name(v.type),
                 v.type == SL_TYPE_STR ? (int)v.len : 0, v.type == SL_TYPE_STR ? v.u.s : "");
    }
}

/* Eval must fail with SL_EDATA and a message containing msg. */
static void is_data_error(const char *text, const char *msg)
{
    struct sl_err err = {0};
    struct sl_value v;
    int rc = run(text, &v, &err);

    if (rc != SL_EDATA || err.code != SL_EDATA || strstr(err.msg, msg) == NULL) {
        fail_msg("'%s': want EDATA \"%s\", got rc %d \"%s\"", text, msg, rc, err.msg);
    }
}

/* Compile must fail with SL_ECONFIG at col, message containing msg. */
static void is_compile_error(const char *text, int col, const char *msg)
{
    struct sl_err err = {0};
    struct sl_expr *e = sl_expr_compile(text, strlen(text), &err);

    if (e != NULL) {
        sl_expr_free(e);
        fail_msg("'%s': compiled, want error \"%s\"", text, msg);
    }
    if (err.code != SL_ECONFIG || err.col != col || strstr(err.msg, msg) == NULL) {
        fail_msg("'%s': want col %d \"%s\", got code %d col %d \"%s\"", text, col, msg, err.code,
                 err.col, err.msg);
    }
    assert_int_equal(err.line, 0);
}

/* ==== Literals ==== */

static void test_expr_literals(void **state)
{
    (void)state;
    is_int("42", 42);
    is_int("-7", -7);
    is_int("9223372036854775807", INT64_MAX);
    is_int("-9223372036854775808", INT64_MIN);
    is_double("2.5", 2.5);
    is_double("-0.25", -0.25);
    is_double("1e3", 1000.0);
    is_double("1.5E-2", 0.015);
    is_str("\"abc\"", "abc");
    is_str("'single'", "single");
    is_str("\"q\\\"b\\\\n\\nt\\t\"", "q\"b\\n\nt\t");
    is_str("'it\\'s \"x\"'", "it's \"x\"");
    is_str("\"\\u00e9\"", "\xc3\xa9");
    is_str("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80");
    is_str("\"\"", "");
    is_bool("true", true);
    is_bool("false", false);
    is_null("null");
}

static void test_expr_literal_string_outlives_expression(void **state)
{
    struct fx *fx = *state;
    struct sl_err err = {0};
    struct sl_value v;
    struct sl_expr *e = sl_expr_compile("'kept'", 6, &err);

    assert_non_null(e);
    assert_int_equal(sl_expr_eval(e, &fx->rec, &fx->arena, &v, &err), 0);
    sl_expr_free(e);
    /* The result was copied into the arena: still readable (ASan checks). */
    assert_int_equal(v.len, 4);
    assert_memory_equal(v.u.s, "kept", 4);
}

static void test_expr_text_not_nul_terminated(void **state)
{
    struct fx *fx = *state;
    struct sl_err err = {0};
    struct sl_value v;
    struct sl_expr *e = sl_expr_compile("amount + 1XXXX", 10, &err);

    assert_non_null(e);
    assert_string_equal(sl_expr_text(e), "amount + 1");
    assert_int_equal(sl_expr_eval(e, &fx->rec, &fx->arena, &v, &err), 0);
    assert_int_equal(v.u.i, 43);
    sl_expr_free(e);
    assert_null(sl_expr_free(NULL));
}

/* ==== Paths ==== */

static void test_expr_missing_field_is_null(void **state)
{
    (void)state;
    is_null("missing");
    is_null("missing.x.y");
    is_null("meta.nope");
    is_null("meta.geo.pts[9]");
    is_null("tags[3]");
    is_null("amount.x");
    is_null("name[0]");
    is_null("tags.x");
    is_null("meta[0]");
    is_null("nul.x");
    is_bool("missing == null", true);
}

static void test_expr_paths(void **state)
{
    (void)state;
    is_int("amount", 42);
    is_str("meta.ip", "10.0.0.1");
    is_str("meta.geo.city", "Paris");
    is_int("meta.geo.pts[1]", 2);
    is_int("meta.geo.pts[2].c", 7);
    is_str("a.b[2].c", "deep");
    is_str("tags[0]", "a");
    is_str("tags[2]", "c");
    is_int("`Cost Total $`", 5);
    is_int("`Cost Total $` * 2", 10);
    is_int("meta.`x-y`", 3);
    is_int("meta[\"x-y\"]", 3);
    is_str("meta['geo'].city", "Paris");
    is_int("`amount`", 42);
    is_bool("meta.geo.pts[2].c == 7 && tags[1] == 'b'", true);
    /* Members are decoded from the JSON text: escapes, last duplicate wins. */
    is_str("esc.`a b`", "x\ty");
    is_int("esc.u", 2);
    is_bool("esc['q\"k'][0]", true);
    is_null("esc['q\"k'][1]");
    is_double("esc['q\"k'][2]", 1.5);
    is_int("len(esc['q\"k'])", 3);
}

static void test_expr_metadata_file_record(void **state)
{
    (void)state;
    is_str("@file", "data/orders.jsonl");
    is_int("@line", 7);
    is_int("@offset", 1234);
    is_null("@topic");
    is_null("@partition");
    is_null("@timestamp");
    is_null("@key");
    is_null("@headers");
    is_null("@headers.trace");
    is_bool("@line > 5 && ends_with(@file, '.jsonl')", true);
}

static void test_expr_metadata_kafka_record(void **state)
{
    struct fx *fx = *state;

    fx->cur = &fx->kafka;
    is_str("@topic", "orders");
    is_int("@partition", 3);
    is_int("@offset", 99);
    is_int("@timestamp", 1700000000000);
    is_str("@key", "k1");
    is_str("@headers.trace", "abc");
    is_int("len(@headers)", 1);
    is_null("@file");
    is_null("@line");
    fx->cur = &fx->rec;
}

static void test_expr_metadata_without_source(void **state)
{
    struct fx *fx = *state;
    struct sl_record bare = {0};

    fx->cur = &bare;
    is_null("@offset");
    is_null("@topic");
    is_null("@file");
    is_null("amount");
    fx->cur = &fx->rec;
}

/* ==== Semantics table ==== */

static void test_expr_equality_with_null(void **state)
{
    (void)state;
    is_bool("null == null", true);
    is_bool("nul == null", true);
    is_bool("missing == nul", true);
    is_bool("null == 1", false);
    is_bool("1 == null", false);
    is_bool("null != 1", true);
    is_bool("null != null", false);
    is_bool("nul == ''", false);
}

static void test_expr_ordering_with_null_is_false(void **state)
{
    (void)state;
    is_bool("null < 1", false);
    is_bool("null <= 1", false);
    is_bool("1 > null", false);
    is_bool("missing >= 0", false);
    is_bool("null <= null", false);
    is_bool("'a' < null", false);
}

static void test_expr_arithmetic_with_null(void **state)
{
    (void)state;
    is_null("null + 1");
    is_null("1 - missing");
    is_null("nul * 2.5");
    is_null("1 / null");
    is_null("null % 2");
    is_null("-nul");
}

static void test_expr_int_arithmetic(void **state)
{
    (void)state;
    is_int("2 + 3", 5);
    is_int("2 - 3", -1);
    is_int("6 * 7", 42);
    is_int("7 % 3", 1);
    is_int("-7 % 3", -1);
    is_int("small % -1", 0);
    is_int("big - 1 + 1", INT64_MAX);
    is_double("2 + 0.5", 2.5);
    is_double("2.5 * 2", 5.0);
    is_double("7.5 % 2", 1.5);
    is_double("-price", -2.5);
    is_int("-amount", -42);
}

static void test_expr_division_gives_double(void **state)
{
    (void)state;
    is_double("7 / 2", 3.5);
    is_double("6 / 3", 2.0);
    is_double("amount / 4", 10.5);
    is_double("1 / 2.0", 0.5);
}

static void test_expr_division_by_zero(void **state)
{
    (void)state;
    is_data_error("1 / 0", "division by zero");
    is_data_error("1 / zero", "division by zero");
    is_data_error("1.5 / 0.0", "division by zero");
    is_data_error("5 % 0", "division by zero in %");
    is_data_error("5.5 % 0.0", "division by zero");
}

static void test_expr_integer_overflow(void **state)
{
    (void)state;
    is_data_error("big + 1", "integer overflow in +");
    is_data_error("9223372036854775807 + 1", "integer overflow in +");
    is_data_error("small - 1", "integer overflow in -");
    is_data_error("small * -1", "integer overflow in *");
    is_data_error("big * 2", "integer overflow in *");
    is_data_error("-small", "integer overflow in -");
    is_data_error("- -9223372036854775808", "integer overflow in -");
    is_data_error("abs(small)", "integer overflow in abs");
    is_data_error("1e308 * 10", "float overflow in *");
}

static void test_expr_round_floor_ceil(void **state)
{
    (void)state;
    is_int("round(2.5)", 3);
    is_int("round(-2.5)", -3);
    is_int("round(2.4)", 2);
    is_int("round(-0.4)", 0);
    is_int("round(7)", 7);
    is_int("round(price * 100)", 250);
    is_int("floor(-1.5)", -2);
    is_int("floor(1.9)", 1);
    is_int("ceil(1.2)", 2);
    is_int("ceil(-1.2)", -1);
    is_null("round(null)");
    is_data_error("round(1e300)", "integer overflow in round");
    is_data_error("floor(-1e19)", "integer overflow in floor");
    is_data_error("ceil(9223372036854775807.0)", "integer overflow in ceil");
    is_data_error("round('2')", "cannot apply round to string");
}

static void test_expr_abs_keeps_type(void **state)
{
    (void)state;
    is_int("abs(-3)", 3);
    is_int("abs(3)", 3);
    is_double("abs(-2.5)", 2.5);
    is_null("abs(nul)");
    is_data_error("abs('x')", "cannot apply abs to string");
}

static void test_expr_strings_compare_bytewise(void **state)
{
    (void)state;
    is_bool("'a' < 'b'", true);
    is_bool("'ab' < 'b'", true);
    is_bool("'a' < 'ab'", true);
    is_bool("'' < 'a'", true);
    is_bool("'Z' < 'a'", true);
    is_bool("'z' < '\\u00e9'", true); /* 0x7a < 0xc3 */
    is_bool("'abc' == 'abc'", true);
    is_bool("'abc' >= 'abc'", true);
    is_bool("'abc' > 'abd'", false);
    is_bool("status == 'paid'", true);
    is_bool("name != 'hello'", true);
}

static void test_expr_numeric_comparisons(void **state)
{
    (void)state;
    is_bool("1 == 1.0", true);
    is_bool("1.0 == 1", true);
    is_bool("1 < 1.5", true);
    is_bool("2 > 1.5", true);
    is_bool("amount >= 42.0", true);
    /* Exact: INT64_MAX is not 2^63, though (double)INT64_MAX is. */
    is_bool("big == 9223372036854775808.0", false);
    is_bool("big < 9223372036854775808.0", true);
    is_bool("small == -9223372036854775808.0", true);
    is_bool("-0.0 == 0", true);
}

static void test_expr_comparing_different_kinds(void **state)
{
    (void)state;
    is_bool("'1' == 1", false);
    is_bool("'1' != 1", true);
    is_bool("true == 1", false);
    is_bool("tags == 'a'", false);
    is_data_error("'a' < 1", "cannot compare string with int");
    is_data_error("amount > 'x'", "cannot compare int with string");
    is_data_error("true < 1.5", "cannot compare bool with float");
    is_data_error("tags < tags", "cannot compare array with array");
    is_bool("false < true", true);
}

static void test_expr_logical_operators(void **state)
{
    (void)state;
    is_bool("true && true", true);
    is_bool("true && false", false);
    is_bool("false || true", true);
    is_bool("false || false", false);
    is_bool("!true", false);
    is_bool("!false", true);
    is_bool("!!flag", true);
    /* null counts as false. */
    is_bool("null && true", false);
    is_bool("true && nul", false);
    is_bool("null || true", true);
    is_bool("null || false", false);
    is_bool("!null", true);
    is_bool("!missing", true);
    /* Short-circuit: the right side is not evaluated. */
    is_bool("false && 1 / 0 == 1", false);
    is_bool("true || 1 / 0 == 1", true);
    is_bool("nul && amount < 'x'", false);
    is_data_error("1 && true", "cannot apply && to int");
    is_data_error("true && 'x'", "cannot apply && to string");
    is_data_error("false || 2.5", "cannot apply || to float");
    is_data_error("!amount", "cannot apply ! to int");
}

static void test_expr_wrong_operand_types(void **state)
{
    (void)state;
    is_data_error("'a' * 2", "cannot apply * to string and int");
    is_data_error("'a' + 'b'", "cannot apply + to string and string");
    is_data_error("true + 1", "cannot apply + to bool and int");
    is_data_error("tags - 1", "cannot apply - to array and int");
    is_data_error("-'x'", "cannot apply - to string");
    is_data_error("-flag", "cannot apply - to bool");
    is_data_error("lower(1)", "cannot apply lower to int");
    is_data_error("upper(tags)", "cannot apply upper to array");
    is_data_error("len(5)", "cannot apply len to int");
    is_data_error("contains(5, 'a')", "cannot apply contains to int and string");
    is_data_error("substr(5, 1)", "cannot apply substr to int and int");
    is_data_error("substr('abc', 1.5)", "cannot apply substr to string and float");
    is_data_error("substr('abc', 1, '2')", "cannot apply substr to string, int and string");
}

static void test_expr_in_list(void **state)
{
    (void)state;
    is_bool("amount in [1, 42]", true);
    is_bool("amount in [1, 2]", false);
    is_bool("status in ['x', 'paid']", true);
    is_bool("1 in [1.0]", true);
    is_bool("'1' in [1]", false);
    is_bool("nul in [1, null]", true);
    is_bool("missing in [1]", false);
    is_bool("amount in []", false);
    is_bool("amount in [40 + 2]", true);
    is_bool("amount in [-1, 42] && flag", true);
    /* Elements after a match are not evaluated. */
    is_bool("1 in [1, 1 / 0]", true);
}

/* ==== Precedence ==== */

static void test_expr_precedence(void **state)
{
    (void)state;
    is_int("1 + 2 * 3", 7);
    is_int("(1 + 2) * 3", 9);
    is_int("10 - 2 - 3", 5);
    is_int("2 * 3 % 4", 2);
    is_int("-2 * 3", -6);
    is_int("- (2 + 3)", -5);
    is_int("-amount + 2", -40);
    is_double("1 + 6 / 3", 3.0);
    is_bool("1 + 2 == 3", true);
    is_bool("1 < 2 == true", true);
    is_bool("2 > 1 == 3 > 2", true);
    is_bool("true || false && false", true);
    is_bool("(true || false) && false", false);
    is_bool("!true == false", true);
    is_bool("!(1 == 2)", true);
    /* in binds looser than == and tighter than &&. */
    is_bool("status == 'paid' in [true]", true);
    is_bool("amount + 1 in [43] && true", true);
    is_bool("false && amount in [42] || true", true);
    is_bool("amount > 0 && status != 'test'", true);
}

/* ==== Functions ==== */

static void test_expr_lower_upper(void **state)
{
    (void)state;
    is_str("lower('H\\u00c9LLO World')", "h\xc3\xa9llo world");
    is_str("upper(name)", "H\xc3\x89LLO");
    is_str("lower(status)", "paid");
    is_null("lower(nul)");
}

/* Issue 6, finding 16: upper and lower map Latin-1, Latin Extended-A, Greek
 * and Cyrillic, not only ASCII; ß has no one-letter capital and stays. */
static void test_expr_lower_upper_unicode(void **state)
{
    (void)state;
    is_str("upper('été')", "ÉTÉ");
    is_str("upper('straße')", "STRAßE");
    is_str("lower('ŁÓDŹ')", "łódź");
    is_str("upper('привет')", "ПРИВЕТ");
    is_str("lower('ЁЖ')", "ёж");
    is_str("upper('σοφία')", "ΣΟΦΊΑ");
    is_str("upper('ı')", "I"); /* dotless i: the result is shorter in UTF-8 */
    is_str("lower('ẞ')", "ß");
    is_str("upper('\\ud83d\\ude00 ok')", "\xf0\x9f\x98\x80 OK"); /* other planes are kept */
}

/* The table of expr_func.c against glibc's C.UTF-8 mappings, code point by
 * code point over the blocks it claims (skipped where that locale is
 * missing). */
static void test_expr_lower_upper_match_glibc(void **state)
{
    static const uint32_t ranges[][2] = {{0x20, 0x17F}, {0x370, 0x52F}, {0x1E9E, 0x1E9E}};
    locale_t loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
    char text[64], want[8];
    size_t failed = 0;

    (void)state;
    if (loc == (locale_t)0) {
        skip();
    }
    for (size_t r = 0; r < sizeof(ranges) / sizeof(ranges[0]); r++) {
        for (uint32_t cp = ranges[r][0]; cp <= ranges[r][1]; cp++) {
            for (int up = 0; up < 2; up++) {
                wint_t m = up ? towupper_l((wint_t)cp, loc) : towlower_l((wint_t)cp, loc);
                struct sl_value v;

                snprintf(text, sizeof(text), "%s('\\u%04x')", up ? "upper" : "lower", cp);
                v = ok(text);
                memset(want, 0, sizeof(want));
                if (m < 0x80) {
                    want[0] = (char)m;
                } else if (m < 0x800) {
                    want[0] = (char)(0xC0 | (m >> 6));
                    want[1] = (char)(0x80 | (m & 0x3F));
                } else {
                    want[0] = (char)(0xE0 | (m >> 12));
                    want[1] = (char)(0x80 | ((m >> 6) & 0x3F));
                    want[2] = (char)(0x80 | (m & 0x3F));
                }
                if (v.len != strlen(want) || memcmp(v.u.s, want, v.len) != 0) {
                    print_error("%s(U+%04X): glibc U+%04X, sluice %.*s\n", up ? "upper" : "lower",
                                cp, (unsigned)m, (int)v.len, v.u.s);
                    failed++;
                }
            }
        }
    }
    freelocale(loc);
    assert_int_equal(failed, 0);
}

static void test_expr_len(void **state)
{
    (void)state;
    is_int("len(name)", 5);
    is_int("len('h\\u00e9llo')", 5);
    is_int("len('')", 0);
    is_int("len('\\ud83d\\ude00')", 1);
    is_int("len(tags)", 3);
    is_int("len(meta)", 3);
    is_int("len(raw)", 3);
    is_null("len(nul)");
    is_null("len(missing)");
}

static void test_expr_substr_utf8(void **state)
{
    (void)state;
    is_str("substr(name, 0, 2)", "h\xc3\xa9");
    is_str("substr(name, 1, 3)", "\xc3\xa9ll");
    is_str("substr(name, 1)", "\xc3\xa9llo");
    is_str("substr(name, 4)", "o");
    is_str("substr(name, 5)", "");
    is_str("substr(name, 10)", "");
    is_str("substr(name, -2, 2)", "h\xc3\xa9");
    is_str("substr(name, 2, 100)", "llo");
    is_str("substr(name, 1, -1)", "");
    is_str("substr(name, 1, 0)", "");
    is_null("substr(nul, 1)");
    is_null("substr(name, nul)");
    is_null("substr(name, 0, missing)");
}

static void test_expr_concat(void **state)
{
    (void)state;
    is_str("concat('a', 'b')", "ab");
    is_str("concat('id-', amount)", "id-42");
    is_str("concat('a', 1, null, 2.5, true, 100.0)", "a12.5true100.0");
    is_str("concat(name, '!')", "h\xc3\xa9llo!");
    is_str("concat(status)", "paid");
    is_str("concat(nul)", "");
    is_str("concat(tags, '')", "[\"a\",\"b\",\"c\"]");
    is_str("concat(raw)", "\xef\xbf\xbd"
                          "ab");
}

static void test_expr_contains_starts_ends(void **state)
{
    (void)state;
    is_bool("contains('hello', 'ell')", true);
    is_bool("contains('hello', 'elo')", false);
    is_bool("contains('hello', '')", true);
    is_bool("contains('', 'a')", false);
    is_bool("contains('aab', 'ab')", true);
    is_bool("contains(name, '\\u00e9l')", true);
    is_bool("contains(tags, 'b')", true);
    is_bool("contains(tags, 'z')", false);
    is_bool("contains(meta.geo.pts, 2.0)", true);
    is_bool("starts_with(status, 'pa')", true);
    is_bool("starts_with(status, 'paid!')", false);
    is_bool("starts_with(status, '')", true);
    is_bool("ends_with(status, 'id')", true);
    is_bool("ends_with(status, 'pa')", false);
    is_null("contains(nul, 'a')");
    is_null("starts_with('a', missing)");
    is_data_error("ends_with(tags, 'c')", "cannot apply ends_with to array and string");
}

static void test_expr_coalesce(void **state)
{
    (void)state;
    is_int("coalesce(nul, missing, 3)", 3);
    is_str("coalesce(status, 'x')", "paid");
    is_null("coalesce(nul)");
    is_null("coalesce(nul, missing)");
    is_int("coalesce(1, 1 / 0)", 1); /* lazy */
    is_int("coalesce(meta.nope, a.b[1])", 1);
}

/* DESIGN.md: if(cond, a, b), b when cond is false or null; lazy, as
 * coalesce (it was an unknown function). */
static void test_expr_if(void **state)
{
    (void)state;
    is_str("if(status == 'paid', 'yes', 'no')", "yes");
    is_int("if(amount > 100, 1, 9)", 9);
    is_int("if(nul, 1, 2)", 2);
    is_int("if(missing == 3, 1, 2)", 2);
    is_null("if(true, nul, 1)");
    is_int("if(true, 1, 1 / 0)", 1); /* lazy: the other branch is not run */
    is_int("if(false, 1 / 0 > 0, 5)", 5);
    is_int("if(amount > 1, if(amount > 50, 3, 2), 1)", 2);
    is_data_error("if(amount, 1, 2)", "cannot apply if to int");
    is_compile_error("if(true, 1)", 1, "if() takes 3 arguments, got 2");
}

static void test_expr_to_int(void **state)
{
    (void)state;
    is_int("to_int('12')", 12);
    is_int("to_int('-12')", -12);
    is_int("to_int('+7')", 7);
    is_int("to_int('-9223372036854775808')", INT64_MIN);
    is_int("to_int(2.9)", 2);
    is_int("to_int(-2.9)", -2);
    is_int("to_int(true)", 1);
    is_int("to_int(amount)", 42);
    is_null("to_int(nul)");
    is_data_error("to_int('x')", "to_int: cannot parse \"x\" as an int");
    is_data_error("to_int(' 12')", "cannot parse");
    is_data_error("to_int('1.5')", "cannot parse");
    is_data_error("to_int('')", "cannot parse");
    is_data_error("to_int('9223372036854775808')", "cannot parse");
    is_data_error("to_int(1e19)", "integer overflow in to_int");
    is_data_error("to_int(tags)", "cannot apply to_int to array");
}

static void test_expr_to_float(void **state)
{
    (void)state;
    is_double("to_float('2.5')", 2.5);
    is_double("to_float('1e3')", 1000.0);
    is_double("to_float('-3')", -3.0);
    is_double("to_float(3)", 3.0);
    is_double("to_float(price)", 2.5);
    is_double("to_float(false)", 0.0);
    is_null("to_float(missing)");
    is_data_error("to_float('nan')", "to_float: cannot parse \"nan\" as a float");
    is_data_error("to_float('inf')", "cannot parse");
    is_data_error("to_float('0x10')", "cannot parse");
    is_data_error("to_float('1e999')", "cannot parse");
    is_data_error("to_float('')", "cannot parse");
    is_data_error("to_float(meta)", "cannot apply to_float to object");
}

static void test_expr_to_string(void **state)
{
    (void)state;
    is_str("to_string(100.0)", "100.0");
    is_str("to_string(2.5)", "2.5");
    is_str("to_string(42)", "42");
    is_str("to_string(small)", "-9223372036854775808");
    is_str("to_string(true)", "true");
    is_str("to_string(false)", "false");
    is_str("to_string(status)", "paid");
    is_str("to_string(tags)", "[\"a\",\"b\",\"c\"]");
    is_str("to_string(meta.geo.pts)", "[1,2,{\"c\":7}]");
    is_str("to_string(raw)", "\xef\xbf\xbd"
                             "ab");
    is_null("to_string(nul)");
}

static void test_expr_now(void **state)
{
    (void)state;
    struct timespec ts;
    assert_int_equal(timespec_get(&ts, TIME_UTC), TIME_UTC);
    int64_t before = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    struct sl_value v = ok("now()");
    assert_int_equal(timespec_get(&ts, TIME_UTC), TIME_UTC);
    int64_t after = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;

    assert_int_equal(v.type, SL_TYPE_INT);
    assert_true(v.u.i >= before && v.u.i <= after);
    is_bool("now() > 1600000000000", true);
}

/* What the loader reads to refuse a priority that may not follow from the
 * record (conf_dag.c): now(), @file, and the top-level fields read. */
static void test_expr_reads_now_meta_and_fields(void **state)
{
    (void)state;
    struct sl_err err = {0};
    const char *text = "if(ends_with(@file, \"now()\") && meta.ip == `a.b` || now() > x[0], "
                       "@line, meta[\"k\"])";
    struct sl_expr *e = sl_expr_compile(text, strlen(text), &err);
    const char *want[] = {"meta", "a.b", "x", "meta"};
    const char *name;
    size_t len, pos = 0, n = 0;

    assert_non_null(e);
    assert_true(sl_expr_calls_now(e));
    assert_true(sl_expr_reads_meta(e, "file"));
    assert_true(sl_expr_reads_meta(e, "line"));
    assert_false(sl_expr_reads_meta(e, "offset"));
    while (sl_expr_next_field(e, &pos, &name, &len)) {
        assert_true(n < 4);
        assert_int_equal(len, strlen(want[n]));
        assert_memory_equal(name, want[n], len);
        n++;
    }
    assert_int_equal(n, 4);
    assert_false(sl_expr_next_field(e, &pos, &name, &len));
    sl_expr_free(e);

    /* A string that spells now() is not a call; metadata is not a field. */
    e = sl_expr_compile("\"now()\" == @priority", 20, &err);
    assert_non_null(e);
    assert_false(sl_expr_calls_now(e));
    assert_false(sl_expr_reads_meta(e, "file"));
    pos = 0;
    assert_false(sl_expr_next_field(e, &pos, &name, &len));
    sl_expr_free(e);
}

/* ==== Compile errors ==== */

static void test_expr_compile_errors(void **state)
{
    (void)state;
    is_compile_error("rond(x)", 1, "unknown function 'rond' (did you mean 'round'?)");
    is_compile_error("amount + lenn(x)", 10, "unknown function 'lenn' (did you mean 'len'?)");
    is_compile_error("frobnicate(1)", 1, "unknown function 'frobnicate'");
    is_compile_error("amount + (1", 12, "expected ')' here");
    is_compile_error("round(1, 2)", 1, "round() takes 1 argument, got 2");
    is_compile_error("substr(name)", 1, "substr() takes at least 2 arguments, got 1");
    is_compile_error("substr(name, 1, 2, 3)", 1, "substr() takes at most 3 arguments, got 4");
    is_compile_error("concat()", 1, "concat() takes at least 1 argument, got 0");
    is_compile_error("now(1)", 1, "now() takes 0 arguments, got 1");
    is_compile_error("round(1 2)", 9, "expected ',' or ')' here");
    is_compile_error("@offst", 1, "unknown metadata '@offst' (did you mean '@offset'?)");
    is_compile_error("@ x", 1, "expected a metadata name after '@'");
    is_compile_error("1 +", 4, "expected a value, found the end of the expression");
    is_compile_error("a = 1", 3, "unexpected character '=' (did you mean '=='?)");
    is_compile_error("a & b", 3, "did you mean '&&'?");
    is_compile_error("a and b", 3, "found 'and' (did you mean '&&'?)");
    is_compile_error("amount 5", 8, "expected an operator or the end of the expression");
    is_compile_error("\"abc", 1, "unterminated string");
    is_compile_error("x == 'a\\qb'", 8, "unknown escape '\\q'");
    is_compile_error("'\\ud800'", 2, "lone surrogate");
    is_compile_error("'\\\xc3\xa9'", 2, "unknown escape '\\\xc3\xa9'");
    is_compile_error("concat(1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1)", 1,
                     "concat() takes at most 32 arguments, got 33");
    is_compile_error("'\\u12'", 2, "expected 4 hex digits");
    is_compile_error("x in 1", 6, "expected '[' after 'in'");
    is_compile_error("x in [1, 2", 11, "expected ',' or ']' here");
    is_compile_error("", 1, "empty expression");
    is_compile_error("   ", 1, "empty expression");
    is_compile_error("9223372036854775808", 1, "out of range");
    is_compile_error("99999999999999999999", 1, "out of range");
    is_compile_error("1.", 3, "expected a digit after '.'");
    is_compile_error("1e", 3, "expected a digit in the exponent");
    is_compile_error("12abc", 1, "invalid number");
    is_compile_error("tags[-1]", 6, "expected an index");
    is_compile_error("tags[1", 7, "expected ']' here");
    is_compile_error("meta.", 6, "expected a field name after '.'");
    is_compile_error("``", 1, "empty quoted name");
    is_compile_error("`abc", 1, "unterminated quoted name");
    is_compile_error("(1 + 2))", 8, "found ')'");
    is_compile_error("in", 1, "expected a value, found 'in'");
    is_compile_error("1 # 2", 3, "unexpected character '#'");
    /* Columns count code points, not bytes. */
    is_compile_error("'\xc3\xa9' + )", 7, "expected a value, found ')'");
    is_compile_error("'\xc3\xa9\xc3\xa9' == `\xc3\xa9` $", 13, "unexpected character '$'");
}

static void test_expr_nesting_limits(void **state)
{
    (void)state;
    char buf[16384];
    size_t n = 0;

    /* Deep parentheses are refused, not a stack overflow. */
    for (int i = 0; i < 300; i++) {
        buf[n++] = '(';
    }
    buf[n++] = '1';
    for (int i = 0; i < 300; i++) {
        buf[n++] = ')';
    }
    buf[n] = '\0';
    struct sl_err err = {0};
    assert_null(sl_expr_compile(buf, n, &err));
    assert_int_equal(err.code, SL_ECONFIG);
    assert_non_null(strstr(err.msg, "nested too deeply"));

    /* A long left-leaning chain of + is a deep tree: refused too. */
    n = 0;
    for (int i = 0; i < 300; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "1 + ");
    }
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "1");
    err = (struct sl_err){0};
    assert_null(sl_expr_compile(buf, n, &err));
    assert_non_null(strstr(err.msg, "nested too deeply"));

    /* Long && / || chains are flat: fine. */
    n = 0;
    for (int i = 0; i < 400; i++) {
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "amount == %d || ", i);
    }
    n += (size_t)snprintf(buf + n, sizeof(buf) - n, "false");
    is_bool(buf, true);
}

/* ==== Memory and threads ==== */

static void test_expr_compile_oom_loop(void **state)
{
    (void)state;
    const char *text = "concat(lower(name), '-', to_string(round(price * 100))) in ['x', "
                       "'h\\u00e9llo-250'] && (a.b[2].c == 'deep' || @line > 0)";
    struct sl_expr *e = NULL;

    for (long nth = 1; e == NULL; nth++) {
        struct sl_err err = {0};
        sl_mem_fail_nth(nth);
        e = sl_expr_compile(text, strlen(text), &err);
        sl_mem_fail_nth(0);
        if (e == NULL) {
            assert_int_equal(err.code, SL_ENOMEM);
        }
        assert_true(nth < 1000);
    }
    sl_expr_free(e);
    is_bool(text, true);
}

static void test_expr_eval_oom_is_enomem(void **state)
{
    struct fx *fx = *state;
    struct sl_arena arena;
    struct sl_err err = {0};
    struct sl_value v;
    const char *text = "concat(status, '-', amount)";
    struct sl_expr *e = sl_expr_compile(text, strlen(text), &err);

    assert_non_null(e);
    sl_arena_init(&arena);
    sl_mem_fail_nth(1); /* the arena's first chunk */
    assert_int_equal(sl_expr_eval(e, &fx->rec, &arena, &v, &err), SL_ENOMEM);
    sl_mem_fail_nth(0);
    assert_int_equal(err.code, SL_ENOMEM);
    assert_int_equal(sl_expr_eval(e, &fx->rec, &arena, &v, &err), 0);
    assert_int_equal(v.len, 7);
    assert_memory_equal(v.u.s, "paid-42", 7);
    sl_arena_release(&arena);
    sl_expr_free(e);
}

struct thread_arg {
    const struct sl_expr *e;
    const struct sl_record *rec;
    int failures;
};

static void *eval_thread(void *p)
{
    struct thread_arg *ta = p;
    struct sl_arena arena;

    sl_arena_init(&arena);
    for (int i = 0; i < 2000; i++) {
        struct sl_err err = {0};
        struct sl_value v;
        if (sl_expr_eval(ta->e, ta->rec, &arena, &v, &err) != 0 || v.type != SL_TYPE_STR ||
            v.len != 8 || memcmp(v.u.s, "HELLO-42", 8) != 0) {
            ta->failures++;
        }
    }
    sl_arena_release(&arena);
    return NULL;
}

static void test_expr_concurrent_eval(void **state)
{
    struct fx *fx = *state;
    struct sl_err err = {0};
    const char *text = "upper(concat(substr(name, 0, 1), 'ello-', amount))";
    struct sl_expr *e = sl_expr_compile(text, strlen(text), &err);
    pthread_t th[4];
    struct thread_arg ta[4];

    assert_non_null(e);
    for (int i = 0; i < 4; i++) {
        ta[i] = (struct thread_arg){.e = e, .rec = &fx->rec};
        assert_int_equal(pthread_create(&th[i], NULL, eval_thread, &ta[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(ta[i].failures, 0);
    }
    sl_expr_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expr_literals),
        cmocka_unit_test(test_expr_literal_string_outlives_expression),
        cmocka_unit_test(test_expr_text_not_nul_terminated),
        cmocka_unit_test(test_expr_missing_field_is_null),
        cmocka_unit_test(test_expr_paths),
        cmocka_unit_test(test_expr_metadata_file_record),
        cmocka_unit_test(test_expr_metadata_kafka_record),
        cmocka_unit_test(test_expr_metadata_without_source),
        cmocka_unit_test(test_expr_equality_with_null),
        cmocka_unit_test(test_expr_ordering_with_null_is_false),
        cmocka_unit_test(test_expr_arithmetic_with_null),
        cmocka_unit_test(test_expr_int_arithmetic),
        cmocka_unit_test(test_expr_division_gives_double),
        cmocka_unit_test(test_expr_division_by_zero),
        cmocka_unit_test(test_expr_integer_overflow),
        cmocka_unit_test(test_expr_round_floor_ceil),
        cmocka_unit_test(test_expr_abs_keeps_type),
        cmocka_unit_test(test_expr_strings_compare_bytewise),
        cmocka_unit_test(test_expr_numeric_comparisons),
        cmocka_unit_test(test_expr_comparing_different_kinds),
        cmocka_unit_test(test_expr_logical_operators),
        cmocka_unit_test(test_expr_wrong_operand_types),
        cmocka_unit_test(test_expr_in_list),
        cmocka_unit_test(test_expr_precedence),
        cmocka_unit_test(test_expr_lower_upper),
        cmocka_unit_test(test_expr_lower_upper_unicode),
        cmocka_unit_test(test_expr_lower_upper_match_glibc),
        cmocka_unit_test(test_expr_len),
        cmocka_unit_test(test_expr_substr_utf8),
        cmocka_unit_test(test_expr_concat),
        cmocka_unit_test(test_expr_contains_starts_ends),
        cmocka_unit_test(test_expr_coalesce),
        cmocka_unit_test(test_expr_if),
        cmocka_unit_test(test_expr_to_int),
        cmocka_unit_test(test_expr_to_float),
        cmocka_unit_test(test_expr_to_string),
        cmocka_unit_test(test_expr_now),
        cmocka_unit_test(test_expr_reads_now_meta_and_fields),
        cmocka_unit_test(test_expr_compile_errors),
        cmocka_unit_test(test_expr_nesting_limits),
        cmocka_unit_test(test_expr_compile_oom_loop),
        cmocka_unit_test(test_expr_eval_oom_is_enomem),
        cmocka_unit_test(test_expr_concurrent_eval),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
