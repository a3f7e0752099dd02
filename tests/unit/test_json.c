/* SPDX-License-Identifier: MIT */
/* Unit tests of engine/json_*.c: the line decoder (grammar, UTF-8, escapes,
 * numbers, depth, duplicates, linear time on huge lines), nested access and
 * the writers. Each test frees what it allocates (the suite also runs
 * under ASan/UBSan and TSan). */
#include "arena.h"
#include "buf.h"
#include "err.h"
#include "json.h"
#include "mem.h"
#include "record.h"

#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct fixture {
    struct sl_json_decoder *d;
    struct sl_arena arena;
    struct sl_record rec;
    struct sl_err err;
};

static int setup(void **state)
{
    struct fixture *fx = calloc(1, sizeof(*fx));

    assert_non_null(fx);
    fx->d = sl_json_decoder_new(0);
    assert_non_null(fx->d);
    sl_arena_init(&fx->arena);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    sl_json_decoder_free(fx->d);
    sl_arena_release(&fx->arena);
    free(fx);
    return 0;
}

/* Decodes len bytes of line into a fresh record. */
static int decode_n(struct fixture *fx, const char *line, size_t len)
{
    memset(&fx->rec, 0, sizeof(fx->rec));
    memset(&fx->err, 0, sizeof(fx->err));
    return sl_json_decode_object(fx->d, line, len, &fx->rec, &fx->arena, &fx->err);
}

static int decode(struct fixture *fx, const char *line)
{
    return decode_n(fx, line, strlen(line));
}

static const struct sl_value *field(struct fixture *fx, const char *name)
{
    const struct sl_field *f = sl_record_find(&fx->rec, name, (uint32_t)strlen(name));

    assert_non_null(f);
    return &f->val;
}

static void assert_text(const struct sl_value *v, enum sl_type type, const char *text)
{
    assert_int_equal(v->type, type);
    assert_int_equal(v->len, strlen(text));
    assert_memory_equal(v->u.s, text, v->len);
}

static void assert_rejects(struct fixture *fx, const char *line, size_t len, const char *msg)
{
    int rc = decode_n(fx, line, len);

    if (rc != SL_EDATA) {
        print_error("accepted: %.*s\n", (int)len, line);
    }
    assert_int_equal(rc, SL_EDATA);
    assert_int_equal(fx->err.code, SL_EDATA);
    if (msg != NULL) {
        assert_string_equal(fx->err.msg, msg);
    }
}

static void assert_rejects_all(struct fixture *fx, const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        assert_rejects(fx, lines[i], strlen(lines[i]), NULL);
    }
}

static void assert_accepts(struct fixture *fx, const char *line)
{
    int rc = decode(fx, line);

    if (rc != 0) {
        print_error("rejected: %s: %s\n", line, fx->err.msg);
    }
    assert_int_equal(rc, 0);
}

/* ==== Values ==== */

static void test_json_decodes_all_value_types(void **state)
{
    struct fixture *fx = *state;

    assert_accepts(fx, "{\"n\":null,\"t\":true,\"f\":false,\"i\":42,\"neg\":-7,\"d\":12.5,"
                       "\"e\":1E3,\"s\":\"hi\",\"a\":[1,\"x\",[2]],\"o\":{\"x\":{\"y\":1}}}");
    assert_int_equal(fx->rec.nfields, 10);
    assert_int_equal(fx->rec.fields[0].name_len, 1);
    assert_memory_equal(fx->rec.fields[0].name, "n", 1);
    assert_int_equal(fx->rec.fields[9].name_len, 1);
    assert_memory_equal(fx->rec.fields[9].name, "o", 1);
    assert_int_equal(field(fx, "n")->type, SL_TYPE_NULL);
    assert_int_equal(field(fx, "t")->type, SL_TYPE_BOOL);
    assert_true(field(fx, "t")->u.b);
    assert_int_equal(field(fx, "f")->type, SL_TYPE_BOOL);
    assert_false(field(fx, "f")->u.b);
    assert_int_equal(field(fx, "i")->type, SL_TYPE_INT);
    assert_int_equal(field(fx, "i")->u.i, 42);
    assert_int_equal(field(fx, "neg")->u.i, -7);
    assert_int_equal(field(fx, "d")->type, SL_TYPE_DOUBLE);
    assert_true(field(fx, "d")->u.d == 12.5);
    assert_int_equal(field(fx, "e")->type, SL_TYPE_DOUBLE);
    assert_true(field(fx, "e")->u.d == 1000.0);
    assert_text(field(fx, "s"), SL_TYPE_STR, "hi");
    assert_text(field(fx, "a"), SL_TYPE_ARRAY, "[1,\"x\",[2]]");
    assert_text(field(fx, "o"), SL_TYPE_OBJECT, "{\"x\":{\"y\":1}}");
}

static void test_json_empty_object(void **state)
{
    struct fixture *fx = *state;

    assert_accepts(fx, "{}");
    assert_int_equal(fx->rec.nfields, 0);
    assert_accepts(fx, " { \t} ");
    assert_int_equal(fx->rec.nfields, 0);
    assert_accepts(fx, "{\"e\":\"\",\"\":[],\"o\":{}}");
    assert_text(field(fx, "e"), SL_TYPE_STR, "");
    assert_text(field(fx, ""), SL_TYPE_ARRAY, "[]");
    assert_text(field(fx, "o"), SL_TYPE_OBJECT, "{}");
}

static void test_json_int64_limits_and_beyond(void **state)
{
    struct fixture *fx = *state;

    assert_accepts(fx, "{\"max\":9223372036854775807,\"min\":-9223372036854775808,"
                       "\"over\":9223372036854775808,\"under\":-9223372036854775809,"
                       "\"big\":123456789012345678901234567890,\"z\":0,\"mz\":-0,"
                       "\"u64\":18446744073709551615,\"u64p\":18446744073709551616}");
    assert_int_equal(field(fx, "max")->type, SL_TYPE_INT);
    assert_true(field(fx, "max")->u.i == INT64_MAX);
    assert_int_equal(field(fx, "min")->type, SL_TYPE_INT);
    assert_true(field(fx, "min")->u.i == INT64_MIN);
    assert_text(field(fx, "over"), SL_TYPE_STR, "9223372036854775808");
    assert_text(field(fx, "under"), SL_TYPE_STR, "-9223372036854775809");
    assert_text(field(fx, "big"), SL_TYPE_STR, "123456789012345678901234567890");
    assert_text(field(fx, "u64"), SL_TYPE_STR, "18446744073709551615");
    assert_text(field(fx, "u64p"), SL_TYPE_STR, "18446744073709551616");
    assert_int_equal(field(fx, "z")->type, SL_TYPE_INT);
    assert_int_equal(field(fx, "z")->u.i, 0);
    assert_int_equal(field(fx, "mz")->type, SL_TYPE_INT);
    assert_int_equal(field(fx, "mz")->u.i, 0);
}

static void assert_double_as_strtod(struct fixture *fx, const char *num)
{
    char line[2048];

    snprintf(line, sizeof(line), "{\"d\":%s}", num);
    assert_accepts(fx, line);
    const struct sl_value *v = field(fx, "d");
    double want = strtod(num, NULL);
    if (v->type != SL_TYPE_DOUBLE || memcmp(&v->u.d, &want, sizeof(want)) != 0) {
        print_error("%s: got %.17g want %.17g\n", num, v->u.d, want);
        fail();
    }
}

static void test_json_doubles_correctly_rounded(void **state)
{
    static const char *const nums[] = {
        "0.1",
        "0.0",
        "-0.0",
        "1e-7",
        "2.5E+3",
        "1E-2",
        "12.50",
        "0.30000000000000004",
        "1.7976931348623157e308",
        "2.2250738585072014e-308",
        "2.2250738585072011e-308",
        "4.9406564584124654e-324",
        "5e-324",
        "9007199254740993.0",
        "9007199254740992e1",
        "123456789012345678901234567890.5",
        "3.141592653589793238462643383279502884197",
        "0.000000000000000000000000000001234567",
        "1e22",
        "1e23",
        "8.98846567431158e307",
        "-1.5e-300",
        "1e-400",
        "0e999999999999",
        "100000000000000000000000000000000000000000000000000e-50",
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        assert_double_as_strtod(fx, nums[i]);
    }
    assert_accepts(fx, "{\"d\":-0.0}");
    assert_true(signbit(field(fx, "d")->u.d));
    /* Random decimals against strtod (glibc's is correctly rounded). */
    srand(7);
    for (int i = 0; i < 20000; i++) {
        char num[64];
        int digits = 1 + rand() % 20;
        int dot = rand() % (digits + 1); /* no '.' when 0 or digits */
        int n = 0;
        if (rand() % 2) {
            num[n++] = '-';
        }
        num[n++] = (char)('1' + rand() % 9);
        for (int k = 1; k < digits; k++) {
            if (k == dot) {
                num[n++] = '.';
            }
            num[n++] = (char)('0' + rand() % 10);
        }
        if (rand() % 2) {
            n += snprintf(num + n, sizeof(num) - (size_t)n, "e%d", rand() % 80 - 40);
        } else if (dot == 0 || dot >= digits) {
            n += snprintf(num + n, sizeof(num) - (size_t)n, ".0");
        }
        num[n] = '\0';
        assert_double_as_strtod(fx, num);
    }
}

static void test_json_double_overflow_kept_as_text(void **state)
{
    struct fixture *fx = *state;

    assert_accepts(fx, "{\"a\":1e400,\"b\":-2.5e99999}");
    assert_text(field(fx, "a"), SL_TYPE_STR, "1e400");
    assert_text(field(fx, "b"), SL_TYPE_STR, "-2.5e99999");
}

/* ==== Strings and escapes ==== */

static void test_json_escapes_decoded(void **state)
{
    struct fixture *fx = *state;

    assert_accepts(fx, "{\"s\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\","
                       "\"u\":\"\\u00e9\\u20AC\\ud83d\\ude00\\u0041\","
                       "\"z\":\"x\\u0000y\",\"k\\u00e9y\":1}");
    assert_text(field(fx, "s"), SL_TYPE_STR, "a\"b\\c/d\be\ff\ng\rh\ti");
    assert_text(field(fx, "u"), SL_TYPE_STR,
                "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"
                "A");
    assert_int_equal(field(fx, "z")->len, 3);
    assert_memory_equal(field(fx, "z")->u.s, "x\0y", 3);
    assert_int_equal(field(fx, "k\xC3\xA9y")->u.i, 1);
    /* Surrogate pair edges: U+10000 and U+10FFFF. */
    assert_accepts(fx, "{\"a\":\"\\uD800\\uDC00\",\"b\":\"\\udbff\\udfff\"}");
    assert_text(field(fx, "a"), SL_TYPE_STR, "\xF0\x90\x80\x80");
    assert_text(field(fx, "b"), SL_TYPE_STR, "\xF4\x8F\xBF\xBF");
}

static void test_json_rejects_lone_surrogates(void **state)
{
    static const char *const lines[] = {
        "{\"a\":\"\\ud800\"}",        "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\\ud800x\"}",       "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"\\ud800\\ud800\"}", "{\"a\":\"\\udbff\\n\"}",
        "{\"a\":\"x\\udfff\"}",       "{\"\\ud800\":1}",
        "{\"a\":[\"\\ud800\"]}",      "{\"a\":\"\\ud800\\",
        "{\"a\":\"\\ud800\\u",
    };
    struct fixture *fx = *state;

    assert_rejects_all(fx, lines, sizeof(lines) / sizeof(lines[0]));
    assert_rejects(fx, "{\"a\":\"\\ud800\"}", 14,
                   "invalid JSON at byte 6: unpaired surrogate escape");
}

static void test_json_rejects_bad_escapes(void **state)
{
    static const char *const lines[] = {
        "{\"a\":\"\\x41\"}", "{\"a\":\"\\u12\"}",   "{\"a\":\"\\u12G4\"}",
        "{\"a\":\"\\'\"}",   "{\"a\":\"\\U0041\"}", "{\"a\":\"\\\"}",
        "{\"a\":\"\\",       "{\"a\":\"\\u004\"}",  "{\"a\":{\"b\":\"\\a\"}}",
    };
    struct fixture *fx = *state;

    assert_rejects_all(fx, lines, sizeof(lines) / sizeof(lines[0]));
    assert_rejects(fx, "{\"a\":\"\\x41\"}", 12, "invalid JSON at byte 6: invalid escape");
}

static void test_json_rejects_invalid_utf8(void **state)
{
    static const char *const bad[] = {
        "\xC0\x80",         /* overlong NUL */
        "\xC1\xBF",         /* overlong */
        "\xE0\x80\x80",     /* overlong 3 bytes */
        "\xE0\x9F\xBF",     /* overlong 3 bytes */
        "\xF0\x80\x80\x80", /* overlong 4 bytes */
        "\xF0\x8F\xBF\xBF", /* overlong 4 bytes */
        "\xED\xA0\x80",     /* U+D800 encoded */
        "\xED\xBF\xBF",     /* U+DFFF encoded */
        "\xF4\x90\x80\x80", /* U+110000 */
        "\xF5\x80\x80\x80", /* beyond */
        "\xFF",
        "\xFE",
        "\x80",         /* stray continuation */
        "a\xBF",        /* stray continuation */
        "\xE2\x82",     /* truncated */
        "\xF0\x9F\x98", /* truncated */
        "\xC3",         /* truncated */
        "\xC3\x28",     /* bad continuation */
        "\xE2\x28\xA1", /* bad continuation */
        "\xF0\x9F\x28\x80",
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "{\"v\":\"%s\"}", bad[i]);
        assert_rejects(fx, line, (size_t)n, NULL);
        assert_non_null(strstr(fx->err.msg, "invalid UTF-8 at byte"));
        n = snprintf(line, sizeof(line), "{\"%s\":1}", bad[i]); /* in a key */
        assert_rejects(fx, line, (size_t)n, NULL);
        n = snprintf(line, sizeof(line), "{\"a\":[{\"b\":\"%s\"}]}", bad[i]); /* nested */
        assert_rejects(fx, line, (size_t)n, NULL);
        assert_false(sl_utf8_valid(bad[i], strlen(bad[i])));
    }
    assert_rejects(fx, "{\"v\":\"ab\xC0\x80\"}", 12, "invalid UTF-8 at byte 8");
    /* Outside strings, any non-ASCII byte is a syntax error. */
    assert_rejects(fx, "{\"v\":1\xC3\xA9}", 9, NULL);
}

static void test_json_accepts_valid_utf8_edges(void **state)
{
    static const char *const good[] = {
        "\xC2\x80",          "\xDF\xBF",         "\xE0\xA0\x80",     "\xED\x9F\xBF",
        "\xEE\x80\x80",      "\xEF\xBF\xBF",     "\xF0\x90\x80\x80", "\xF4\x8F\xBF\xBF",
        "\xC3\xA9t\xC3\xA9", "\xE2\x82\xAC\x7F",
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char line[64];
        snprintf(line, sizeof(line), "{\"v\":\"%s\",\"%s\":0}", good[i], good[i]);
        assert_accepts(fx, line);
        assert_text(field(fx, "v"), SL_TYPE_STR, good[i]);
        assert_true(sl_utf8_valid(good[i], strlen(good[i])));
    }
    assert_true(sl_utf8_valid("", 0));
    assert_true(sl_utf8_valid("plain ascii text that is longer than sixteen bytes", 50));
}

/* sl_utf8_clean: invalid bytes as U+FFFD, controls escaped when asked,
 * cut at a character boundary. */
static void test_json_utf8_clean(void **state)
{
    char out[16];

    (void)state;
    assert_int_equal(sl_utf8_clean(out, sizeof(out),
                                   "a\xFF\xC3"
                                   "b",
                                   4, false),
                     8);
    assert_string_equal(out, "a\xEF\xBF\xBD\xEF\xBF\xBD"
                             "b");
    assert_int_equal(sl_utf8_clean(out, sizeof(out), "a\nb\tc", 5, false), 5);
    assert_string_equal(out, "a\nb\tc");
    assert_int_equal(sl_utf8_clean(out, sizeof(out), "a\nb\t\x1B\x7F", 6, true), 14);
    assert_string_equal(out, "a\\nb\\t\\x1b\\x7f");
    /* 7 two-byte characters fit in 15 bytes, not a half of the eighth. */
    assert_int_equal(sl_utf8_clean(out, sizeof(out),
                                   "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3"
                                   "\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
                                   16, false),
                     14);
    assert_true(sl_utf8_valid(out, strlen(out)));
    /* An escape that does not fit whole is left out. */
    assert_int_equal(sl_utf8_clean(out, 4, "ab\x01", 3, true), 2);
    assert_string_equal(out, "ab");
    assert_int_equal(sl_utf8_clean(out, 1, "ab", 2, false), 0);
    assert_string_equal(out, "");
    /* A truncated sequence at the end is an invalid byte. */
    assert_int_equal(sl_utf8_clean(out, sizeof(out), "x\xE2\x82", 3, false), 7);
    assert_string_equal(out, "x\xEF\xBF\xBD\xEF\xBF\xBD");
}

static void test_json_rejects_raw_control_chars(void **state)
{
    struct fixture *fx = *state;

    for (int c = 0; c < 0x20; c++) {
        char line[32];
        int n = snprintf(line, sizeof(line), "{\"v\":\"a%cb\"}", c);
        if (c == 0) {
            n = 12;
            memcpy(line, "{\"v\":\"a\0b\"}", 12);
        }
        assert_rejects(fx, line, (size_t)n, "invalid JSON at byte 7: control character in string");
    }
    assert_rejects(fx, "{\"a\tb\":1}", 9, NULL);
    assert_accepts(fx, "{\"v\":\"a\x7f"
                       "b\"}"); /* DEL is not a control character here */
}

/* ==== Grammar ==== */

static void test_json_rejects_trailing_comma(void **state)
{
    static const char *const lines[] = {
        "{\"a\":1,}", "{\"a\":[1,]}", "{\"a\":{\"b\":1,}}", "{\"a\":[1,2,],\"b\":2}",
        "{,}",        "{\"a\":[,]}",  "{\"a\":[,1]}",
    };
    struct fixture *fx = *state;

    assert_rejects_all(fx, lines, sizeof(lines) / sizeof(lines[0]));
    assert_rejects(fx, "{\"a\":1,}", 8, "invalid JSON at byte 7: trailing comma");
    assert_rejects(fx, "{\"a\":[1,]}", 10, "invalid JSON at byte 8: trailing comma");
}

static void test_json_rejects_double_comma(void **state)
{
    static const char *const lines[] = {
        "{\"a\":1,,}",
        "{\"a\":1,,\"b\":2}",
        "{\"a\":[1,,2]}",
        "{\"a\":{\"b\":1,,\"c\":2}}",
    };
    struct fixture *fx = *state;

    assert_rejects_all(fx, lines, sizeof(lines) / sizeof(lines[0]));
    assert_rejects(fx, "{\"a\":1,,}", 9, "invalid JSON at byte 7: expected string key");
}

static void test_json_rejects_key_without_value(void **state)
{
    static const char *const lines[] = {
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":,\"b\":1}",
        "{:1}",
        "{1:2}",
        "{\"a\" 1}",
        "{\"a\"::1}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":{\"b\"}}",
        "{\"a\":{\"b\":}}",
        "{\"a\":{1:2}}",
        "{\"a\":[1 2]}",
        "{\"a\":[1:2]}",
        "{\"a\":{\"b\",1}}",
        "{\"a\":1",
        "{\"a\":",
        "{\"a\"",
        "{",
        "{\"a\":[",
        "{\"a\":[1",
        "{\"a\":{",
        "{\"a\":[}",
        "{\"a\":{]}",
        "{\"a\":[1}",
        "{\"a\":{\"b\":1]}",
    };
    struct fixture *fx = *state;

    assert_rejects_all(fx, lines, sizeof(lines) / sizeof(lines[0]));
    assert_rejects(fx, "{\"a\":1 \"b\":2}", 13, "invalid JSON at byte 7: expected ',' or '}'");
    assert_rejects(fx, "{\"a\"}", 5, "invalid JSON at byte 4: expected ':'");
    assert_rejects(fx, "{\"a\":", 5, "invalid JSON at byte 5: unexpected end of input");
    assert_rejects(fx, "{\"a\":\"xy", 8, "invalid JSON at byte 5: unterminated string");
}

static void test_json_rejects_bad_numbers(void **state)
{
    static const char *const nums[] = {
        "01",  "-01",  "00",    "+1",   ".5",        "1.",       "-",    "1e",    "1e+",
        "1E-", "NaN",  "nan",   "Inf",  "-Infinity", "Infinity", "0x1F", "1.5.3", "--1",
        "- 1", "1.e5", "1e5.5", "0.e1", "-.5",       "1_000",    "١",
    };
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        char line[64];
        int n = snprintf(line, sizeof(line), "{\"n\":%s}", nums[i]);
        assert_rejects(fx, line, (size_t)n, NULL);
        n = snprintf(line, sizeof(line), "{\"n\":[%s]}", nums[i]);
        assert_rejects(fx, line, (size_t)n, NULL);
    }
    assert_rejects(fx, "{\"n\":01}", 8, "invalid JSON at byte 5: leading zero in number");
}

static void test_json_rejects_quotes_comments_literals(void **state)
{
    static const char *const lines[] = {
        "{'a':1}",           "{\"a\":'x'}",          "{\"a\":1 /* c */}",  "{\"a\":1} // c",
        "// c\n{\"a\":1}",   "{\"a\":tru}",          "{\"a\":nul}",        "{\"a\":True}",
        "{\"a\":fals}",      "{\"a\":nulll}",        "{\"a\":truefalse}",  "{a:1}",
        "{\"a\":undefined}", "{\"a\":[true false]}", "{\"a\":\"x\"\"y\"}", "{\"a\":1}\f",
        "\v{\"a\":1}",       "{\"a\":1}\xC2\xA0",
    };
    struct fixture *fx = *state;

    assert_rejects_all(fx, lines, sizeof(lines) / sizeof(lines[0]));
}

static void test_json_rejects_trailing_data(void **state)
{
    static const char *const lines[] = {
        "{\"a\":1}x", "{\"a\":1}{\"b\":2}", "{\"a\":1}}", "{\"a\":1} 1", "{\"a\":1},", "{}[]",
    };
    struct fixture *fx = *state;

    assert_rejects_all(fx, lines, sizeof(lines) / sizeof(lines[0]));
    assert_rejects(fx, "{\"a\":1}x", 8, "trailing data at byte 7");
    assert_rejects(fx, "{\"a\":1} \t{\"b\":2}", 16, "trailing data at byte 9");
    assert_rejects(fx, "{\"a\":1}\0", 8, "trailing data at byte 7");
}

static void test_json_rejects_top_level_non_object(void **state)
{
    static const char *const lines[] = {
        "[1]", "1", "\"s\"", "null", "true", "", " \t\r", "[{\"a\":1}]", "\xEF\xBB\xBF{}",
    };
    struct fixture *fx = *state;

    assert_rejects_all(fx, lines, sizeof(lines) / sizeof(lines[0]));
    assert_rejects(fx, "[1]", 3, "not an object at byte 0");
    assert_rejects(fx, "  42", 4, "not an object at byte 2");
}

/* Issue 6, finding 16: a byte-order mark before the object is named as
 * such, not "not an object at byte 0". */
static void test_json_rejects_bom_by_name(void **state)
{
    struct fixture *fx = *state;

    assert_rejects(fx, "\xEF\xBB\xBF{}", 5, "unexpected byte-order mark (U+FEFF) at byte 0");
    assert_rejects(fx, " \xEF\xBB\xBF{\"a\":1}", 11,
                   "unexpected byte-order mark (U+FEFF) at byte 1");
    assert_rejects(fx, "\xEF\xBB", 2, "not an object at byte 0");
}

static void test_json_accepts_whitespace_around(void **state)
{
    struct fixture *fx = *state;

    assert_accepts(fx, " \t{ \"a\" : 1 ,\n\"b\" :\t[ 1 , { \"c\" : [ ] } ] , \"c\":\"x\" }\r");
    assert_int_equal(fx->rec.nfields, 3);
    assert_int_equal(field(fx, "a")->u.i, 1);
    assert_text(field(fx, "b"), SL_TYPE_ARRAY, "[ 1 , { \"c\" : [ ] } ]");
    assert_text(field(fx, "c"), SL_TYPE_STR, "x");
    assert_accepts(fx, "{\"a\":1}\r");
    assert_accepts(fx, "\r\n{\"a\":1}\r\n  ");
}

static void test_json_error_leaves_other_lines_unaffected(void **state)
{
    struct fixture *fx = *state;

    assert_rejects(fx, "{\"a\":[[[[", 9, NULL);
    assert_accepts(fx, "{\"a\":[[1]],\"b\":{\"c\":[{}]}}");
    assert_text(field(fx, "b"), SL_TYPE_OBJECT, "{\"c\":[{}]}");
}

/* ==== Duplicate keys ==== */

static void test_json_duplicate_keys_last_wins_small(void **state)
{
    struct fixture *fx = *state;

    assert_accepts(fx, "{\"a\":1,\"b\":2,\"a\":3,\"c\":[1],\"b\":\"x\",\"\\u0061\":4}");
    assert_int_equal(fx->rec.nfields, 3);
    assert_memory_equal(fx->rec.fields[0].name, "a", 1);
    assert_int_equal(fx->rec.fields[0].val.u.i, 4);
    assert_text(&fx->rec.fields[1].val, SL_TYPE_STR, "x");
    assert_text(&fx->rec.fields[2].val, SL_TYPE_ARRAY, "[1]");
}

static void build_keys(struct sl_buf *buf, int from, int to, int value_offset)
{
    for (int i = from; i < to; i++) {
        assert_int_equal(
            sl_buf_appendf(buf, "%s\"k%d\":%d", buf->len > 1 ? "," : "", i, i + value_offset), 0);
    }
}

static void test_json_duplicate_keys_last_wins_many(void **state)
{
    struct fixture *fx = *state;
    struct sl_buf buf = {0};

    /* 40 distinct keys, then duplicates of some of them (hash table). */
    assert_int_equal(sl_buf_putc(&buf, '{'), 0);
    build_keys(&buf, 0, 40, 0);
    build_keys(&buf, 5, 6, 1000);
    build_keys(&buf, 39, 40, 1000);
    build_keys(&buf, 0, 1, 1000);
    assert_int_equal(sl_buf_append(&buf, ",\"k\\u0031\":7}", 13), 0);
    assert_accepts(fx, buf.data);
    assert_int_equal(fx->rec.nfields, 40);
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof(name), "k%d", i);
        assert_int_equal(fx->rec.fields[i].name_len, strlen(name));
        assert_memory_equal(fx->rec.fields[i].name, name, strlen(name));
        int64_t want = i == 0 || i == 5 || i == 39 ? i + 1000 : i == 1 ? 7 : i;
        assert_int_equal(fx->rec.fields[i].val.u.i, want);
    }
    /* Exactly at the switch from scanning to hashing: 16 then 17 fields. */
    for (int n = 15; n <= 18; n++) {
        sl_buf_reset(&buf);
        assert_int_equal(sl_buf_putc(&buf, '{'), 0);
        build_keys(&buf, 0, n, 0);
        build_keys(&buf, 0, n, 100);
        assert_int_equal(sl_buf_putc(&buf, '}'), 0);
        assert_accepts(fx, buf.data);
        assert_int_equal(fx->rec.nfields, n);
        assert_int_equal(fx->rec.fields[n - 1].val.u.i, n - 1 + 100);
    }
    sl_buf_release(&buf);
}

static void test_json_decoder_reused_across_lines(void **state)
{
    struct fixture *fx = *state;
    struct sl_buf buf = {0};

    /* The hash table is reused: keys of a previous line must not count as
     * duplicates of the next one. */
    assert_int_equal(sl_buf_putc(&buf, '{'), 0);
    build_keys(&buf, 0, 100, 0);
    assert_int_equal(sl_buf_putc(&buf, '}'), 0);
    for (int round = 0; round < 3; round++) {
        assert_accepts(fx, buf.data);
        assert_int_equal(fx->rec.nfields, 100);
        assert_accepts(fx, "{\"k1\":1,\"k2\":2}");
        assert_int_equal(fx->rec.nfields, 2);
    }
    sl_buf_release(&buf);
}

/* ==== Depth ==== */

/* Returns {"a":<n nested arrays>} (total depth n + 1). */
static char *nested_line(size_t n, char open, char close, size_t *ret_len)
{
    size_t len = 5 + 2 * n + 1;
    char *line = malloc(len + 1);

    assert_non_null(line);
    memcpy(line, "{\"a\":", 5);
    memset(line + 5, open, n);
    memset(line + 5 + n, close, n);
    line[len - 1] = '}';
    line[len] = '\0';
    *ret_len = len;
    return line;
}

/* Returns a line nesting objects and arrays alternately, depth levels in
 * all (the top object is level 1): {"o":[{"o":[ ... 1 ... ]}]}. */
static char *mixed_line(int depth, size_t *ret_len)
{
    struct sl_buf buf = {0};

    assert_int_equal(sl_buf_append(&buf, "{\"o\":", 5), 0);
    for (int level = 2; level <= depth; level++) {
        assert_int_equal(level % 2 ? sl_buf_append(&buf, "{\"o\":", 5) : sl_buf_putc(&buf, '['), 0);
    }
    assert_int_equal(sl_buf_putc(&buf, '1'), 0);
    for (int level = depth; level >= 1; level--) {
        assert_int_equal(sl_buf_putc(&buf, level % 2 ? '}' : ']'), 0);
    }
    *ret_len = buf.len;
    return buf.data; /* sl_malloc'ed: sl_free */
}

static void test_json_depth_limit_64(void **state)
{
    struct fixture *fx = *state;
    size_t len;
    char *ok = nested_line(63, '[', ']', &len);
    char *deep = nested_line(64, '[', ']', &len);

    assert_accepts(fx, ok);
    assert_int_equal(field(fx, "a")->len, 126);
    assert_rejects(fx, deep, len, "nesting deeper than 64 at byte 68");
    free(ok);
    free(deep);
    /* Objects count like arrays. */
    ok = nested_line(63, '{', '}', &len);
    assert_rejects(fx, ok, len, NULL); /* {{ is not valid: build real objects */
    free(ok);
    ok = mixed_line(64, &len);
    assert_accepts(fx, ok);
    sl_free(ok);
    deep = mixed_line(65, &len);
    assert_rejects(fx, deep, len, NULL);
    assert_non_null(strstr(fx->err.msg, "nesting deeper than 64 at byte"));
    sl_free(deep);
}

static void test_json_depth_limit_configurable(void **state)
{
    struct fixture *fx = *state;
    struct sl_json_decoder *d = sl_json_decoder_new(3);
    struct sl_record rec = {0};
    struct sl_err err = {0};
    const char *ok = "{\"a\":[{\"b\":1}],\"c\":{\"d\":[]}}";
    const char *deep = "{\"a\":[{\"b\":[1]}]}";

    assert_non_null(d);
    assert_int_equal(sl_json_decode_object(d, ok, strlen(ok), &rec, &fx->arena, &err), 0);
    memset(&rec, 0, sizeof(rec));
    assert_int_equal(sl_json_decode_object(d, deep, strlen(deep), &rec, &fx->arena, &err),
                     SL_EDATA);
    assert_string_equal(err.msg, "nesting deeper than 3 at byte 11");
    sl_json_decoder_free(d);
    d = sl_json_decoder_new(1);
    assert_non_null(d);
    memset(&rec, 0, sizeof(rec));
    assert_int_equal(sl_json_decode_object(d, "{\"a\":1}", 7, &rec, &fx->arena, &err), 0);
    memset(&rec, 0, sizeof(rec));
    assert_int_equal(sl_json_decode_object(d, "{\"a\":[]}", 8, &rec, &fx->arena, &err), SL_EDATA);
    sl_json_decoder_free(d);
}

static void test_json_deep_nesting_rejected_fast(void **state)
{
    struct fixture *fx = *state;
    size_t len;
    char *line = nested_line(100000, '[', ']', &len);

    assert_rejects(fx, line, len, "nesting deeper than 64 at byte 68");
    line[len - 100000 / 2] = '}'; /* unbalanced and deep: still the depth error first */
    assert_rejects(fx, line, len, NULL);
    free(line);

    /* Unclosed: only openers. */
    line = malloc(100006);
    assert_non_null(line);
    memcpy(line, "{\"a\":", 5);
    memset(line + 5, '{', 100000);
    assert_rejects(fx, line, 100005, NULL);
    free(line);

    /* With a limit that allows it, 100k levels validate without recursion,
     * and nested access walks them iteratively. */
    struct sl_json_decoder *d = sl_json_decoder_new(200000);
    struct sl_record rec = {0};
    struct sl_value v;
    line = nested_line(100000, '[', ']', &len);
    assert_non_null(d);
    assert_int_equal(sl_json_decode_object(d, line, len, &rec, &fx->arena, &fx->err), 0);
    assert_int_equal(rec.fields[0].val.type, SL_TYPE_ARRAY);
    assert_int_equal(rec.fields[0].val.len, 200000);
    assert_int_equal(sl_json_count(rec.fields[0].val.u.s, rec.fields[0].val.len), 1);
    assert_int_equal(
        sl_json_array_get(rec.fields[0].val.u.s, rec.fields[0].val.len, 0, &fx->arena, &v), 0);
    assert_int_equal(v.len, 199998);
    line[len / 2] = '{'; /* [[..{]].. : mismatched */
    memset(&rec, 0, sizeof(rec));
    assert_int_equal(sl_json_decode_object(d, line, len, &rec, &fx->arena, &fx->err), SL_EDATA);
    free(line);
    /* Objects and arrays alternately, 100k deep. */
    line = mixed_line(100000, &len);
    memset(&rec, 0, sizeof(rec));
    assert_int_equal(sl_json_decode_object(d, line, len, &rec, &fx->arena, &fx->err), 0);
    assert_int_equal(rec.fields[0].val.type, SL_TYPE_ARRAY);
    assert_rejects(fx, line, len, NULL);
    assert_non_null(strstr(fx->err.msg, "nesting deeper than 64 at byte"));
    sl_free(line);
    sl_json_decoder_free(d);
}

/* ==== Huge lines ==== */

static void test_json_huge_string_line(void **state)
{
    struct fixture *fx = *state;
    size_t n = 20 * 1000 * 1000;
    char *line = malloc(n + 16);

    assert_non_null(line);
    memcpy(line, "{\"s\":\"", 6);
    for (size_t i = 0; i < n; i += 10) {
        memcpy(line + 6 + i,
               "abc\xC3\xA9"
               "defgh",
               10); /* ASCII and 2-byte UTF-8 */
    }
    memcpy(line + 6 + n, "\"}", 2);
    assert_int_equal(decode_n(fx, line, n + 8), 0);
    assert_int_equal(field(fx, "s")->len, n);
    assert_ptr_equal(field(fx, "s")->u.s, line + 6); /* zero copy */

    /* With escapes: unescaped into the arena. */
    for (size_t i = 0; i < n; i += 1000) {
        memcpy(line + 6 + i, "\\n", 2);
    }
    assert_int_equal(decode_n(fx, line, n + 8), 0);
    const struct sl_value *v = field(fx, "s");
    assert_int_equal(v->len, n - n / 1000);
    assert_true(v->u.s < line || v->u.s >= line + n + 8);
    assert_memory_equal(v->u.s,
                        "\nc\xC3\xA9"
                        "defg",
                        8);

    /* Unterminated. */
    assert_rejects(fx, line, n + 6, "invalid JSON at byte 5: unterminated string");
    free(line);
}

static void test_json_many_keys_line(void **state)
{
    struct fixture *fx = *state;
    struct sl_buf buf = {0};

    assert_int_equal(sl_buf_putc(&buf, '{'), 0);
    build_keys(&buf, 0, 200000, 0);
    assert_int_equal(sl_buf_putc(&buf, '}'), 0);
    assert_accepts(fx, buf.data);
    assert_int_equal(fx->rec.nfields, 200000);
    assert_int_equal(field(fx, "k199999")->u.i, 199999);

    /* Second half repeats the first: every one is a duplicate. */
    buf.len--;
    build_keys(&buf, 0, 200000, 7);
    assert_int_equal(sl_buf_putc(&buf, '}'), 0);
    assert_accepts(fx, buf.data);
    assert_int_equal(fx->rec.nfields, 200000);
    assert_int_equal(fx->rec.fields[12345].val.u.i, 12345 + 7);

    /* One key 200k times. */
    sl_buf_reset(&buf);
    assert_int_equal(sl_buf_putc(&buf, '{'), 0);
    for (int i = 0; i < 200000; i++) {
        assert_int_equal(sl_buf_append(&buf, i ? ",\"a\":1" : "\"a\":0", i ? 6 : 5), 0);
    }
    assert_int_equal(sl_buf_putc(&buf, '}'), 0);
    assert_accepts(fx, buf.data);
    assert_int_equal(fx->rec.nfields, 1);
    assert_int_equal(fx->rec.fields[0].val.u.i, 1);

    /* A 200k-element nested array. */
    sl_buf_reset(&buf);
    assert_int_equal(sl_buf_append(&buf, "{\"a\":[0", 7), 0);
    for (int i = 1; i < 200000; i++) {
        assert_int_equal(sl_buf_appendf(&buf, ",%d", i), 0);
    }
    assert_int_equal(sl_buf_append(&buf, "]}", 2), 0);
    assert_accepts(fx, buf.data);
    const struct sl_value *a = field(fx, "a");
    assert_int_equal(sl_json_count(a->u.s, a->len), 200000);
    struct sl_value v;
    assert_int_equal(sl_json_array_get(a->u.s, a->len, 199999, &fx->arena, &v), 0);
    assert_int_equal(v.u.i, 199999);
    sl_buf_release(&buf);
}

static void test_json_long_number_line(void **state)
{
    struct fixture *fx = *state;
    size_t n = 1000 * 1000;
    char *line = malloc(n + 32);

    assert_non_null(line);
    memcpy(line, "{\"n\":1.", 7);
    memset(line + 7, '0', n);
    memcpy(line + 7 + n, "1}", 2);
    assert_int_equal(decode_n(fx, line, n + 9), 0);
    assert_int_equal(field(fx, "n")->type, SL_TYPE_DOUBLE);
    assert_true(field(fx, "n")->u.d == 1.0);
    memcpy(line, "{\"n\":11", 7);
    memset(line + 7, '1', n);
    assert_int_equal(decode_n(fx, line, n + 9), 0);
    assert_int_equal(field(fx, "n")->type, SL_TYPE_STR); /* outside int64 */
    assert_int_equal(field(fx, "n")->len, n + 3);
    free(line);
}

/* ==== Zero copy ==== */

static void test_json_zero_copy_strings_and_containers(void **state)
{
    struct fixture *fx = *state;
    const char *line = "{\"plain\":\"abc\",\"esc\":\"a\\tb\",\"arr\":[1],\"obj\":{}}";
    const char *end = line + strlen(line);

    assert_accepts(fx, line);
    for (uint32_t i = 0; i < fx->rec.nfields; i++) {
        assert_true(fx->rec.fields[i].name > line && fx->rec.fields[i].name < end);
    }
    const struct sl_value *plain = field(fx, "plain");
    assert_ptr_equal(plain->u.s, line + 10);
    const struct sl_value *esc = field(fx, "esc");
    assert_true(esc->u.s < line || esc->u.s >= end);
    assert_text(esc, SL_TYPE_STR, "a\tb");
    assert_ptr_equal(field(fx, "arr")->u.s, strchr(line, '['));
    assert_ptr_equal(field(fx, "obj")->u.s, strrchr(line, '{'));
}

/* ==== Nested access ==== */

static void test_json_object_get(void **state)
{
    struct fixture *fx = *state;
    const char *text = "{ \"ip\" : \"10.0.0.1\", \"ua\":\"x\\u0041\", \"n\":{\"k\":[1,2]},"
                       " \"i\":-5, \"d\":2.5, \"b\":false, \"z\":null, \"k\\u00e9\":1,"
                       " \"dup\":1, \"big\":99999999999999999999, \"dup\":2 }";
    size_t len = strlen(text);
    struct sl_value v;

    assert_int_equal(sl_json_object_get(text, len, "ip", 2, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_STR, "10.0.0.1");
    assert_ptr_equal(v.u.s, strstr(text, "10.0"));
    assert_int_equal(sl_json_object_get(text, len, "ua", 2, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_STR, "xA");
    assert_int_equal(sl_json_object_get(text, len, "n", 1, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_OBJECT, "{\"k\":[1,2]}");
    assert_int_equal(sl_json_object_get(v.u.s, v.len, "k", 1, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_ARRAY, "[1,2]");
    assert_int_equal(sl_json_object_get(text, len, "i", 1, &fx->arena, &v), 0);
    assert_int_equal(v.type, SL_TYPE_INT);
    assert_int_equal(v.u.i, -5);
    assert_int_equal(sl_json_object_get(text, len, "d", 1, &fx->arena, &v), 0);
    assert_true(v.type == SL_TYPE_DOUBLE && v.u.d == 2.5);
    assert_int_equal(sl_json_object_get(text, len, "b", 1, &fx->arena, &v), 0);
    assert_true(v.type == SL_TYPE_BOOL && !v.u.b);
    assert_int_equal(sl_json_object_get(text, len, "z", 1, &fx->arena, &v), 0);
    assert_int_equal(v.type, SL_TYPE_NULL);
    assert_int_equal(sl_json_object_get(text, len, "k\xC3\xA9", 3, &fx->arena, &v), 0);
    assert_int_equal(v.u.i, 1);
    assert_int_equal(sl_json_object_get(text, len, "dup", 3, &fx->arena, &v), 0);
    assert_int_equal(v.u.i, 2); /* last one wins */
    assert_int_equal(sl_json_object_get(text, len, "big", 3, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_STR, "99999999999999999999");
    assert_int_equal(sl_json_object_get(text, len, "missing", 7, &fx->arena, &v), SL_EOF);
    assert_int_equal(sl_json_object_get(text, len, "k", 1, &fx->arena, &v), SL_EOF);
    assert_int_equal(sl_json_object_get(text, len, "i\0", 2, &fx->arena, &v), SL_EOF);
    assert_int_equal(sl_json_object_get("{}", 2, "a", 1, &fx->arena, &v), SL_EOF);
    assert_int_equal(sl_json_object_get("[1]", 3, "a", 1, &fx->arena, &v), SL_EOF);
    assert_int_equal(sl_json_object_get("{\"a\":1", 6, "a", 1, &fx->arena, &v), SL_EDATA);
    assert_int_equal(sl_json_object_get("{\"a\" 1}", 7, "a", 1, &fx->arena, &v), SL_EDATA);
    assert_int_equal(sl_json_object_get("{\"a\":\"x}", 8, "a", 1, &fx->arena, &v), SL_EDATA);
}

static void test_json_array_get_and_count(void **state)
{
    struct fixture *fx = *state;
    const char *text = "[\"a\", \"b\\\"]\" ,[1,[2]], {\"x\":\"]\"}, 3.5 ,true]";
    size_t len = strlen(text);
    struct sl_value v;

    assert_int_equal(sl_json_count(text, len), 6);
    assert_int_equal(sl_json_array_get(text, len, 0, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_STR, "a");
    assert_int_equal(sl_json_array_get(text, len, 1, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_STR, "b\"]");
    assert_int_equal(sl_json_array_get(text, len, 2, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_ARRAY, "[1,[2]]");
    assert_int_equal(sl_json_array_get(text, len, 3, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_OBJECT, "{\"x\":\"]\"}");
    assert_int_equal(sl_json_count(v.u.s, v.len), 1);
    assert_int_equal(sl_json_array_get(text, len, 4, &fx->arena, &v), 0);
    assert_true(v.type == SL_TYPE_DOUBLE && v.u.d == 3.5);
    assert_int_equal(sl_json_array_get(text, len, 5, &fx->arena, &v), 0);
    assert_true(v.type == SL_TYPE_BOOL && v.u.b);
    assert_int_equal(sl_json_array_get(text, len, 6, &fx->arena, &v), SL_EOF);
    assert_int_equal(sl_json_array_get(text, len, SIZE_MAX, &fx->arena, &v), SL_EOF);
    assert_int_equal(sl_json_array_get("[]", 2, 0, &fx->arena, &v), SL_EOF);
    assert_int_equal(sl_json_array_get(" [ ] ", 5, 0, &fx->arena, &v), SL_EOF);
    assert_int_equal(sl_json_array_get("{\"a\":1}", 7, 0, &fx->arena, &v), SL_EOF);
    assert_int_equal(sl_json_array_get("[1,", 3, 1, &fx->arena, &v), SL_EDATA);
    assert_int_equal(sl_json_array_get("[[1,2]", 6, 0, &fx->arena, &v), SL_EDATA);

    assert_int_equal(sl_json_count("[]", 2), 0);
    assert_int_equal(sl_json_count("{}", 2), 0);
    assert_int_equal(sl_json_count("{\"a\":1,\"b\":[1,2,3],\"a\":2}", 25), 3);
    assert_int_equal(sl_json_count("[1,[2,3],{\"a\":[4]}]", 19), 3);
    assert_int_equal(sl_json_count("\"x\"", 3), 0);
    assert_int_equal(sl_json_count("[1,2", 4), 0);
    assert_int_equal(sl_json_count("", 0), 0);
}

static void test_json_array_next_iterates(void **state)
{
    struct fixture *fx = *state;
    const char *text = " [ 1, \"a\\u0042\" ,[2,[3]], {\"x\":\"]\"} ] ";
    size_t len = strlen(text);
    size_t pos = 0;
    struct sl_value v;

    assert_int_equal(sl_json_array_next(text, len, &pos, &fx->arena, &v), 0);
    assert_int_equal(v.u.i, 1);
    assert_int_equal(sl_json_array_next(text, len, &pos, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_STR, "aB");
    assert_int_equal(sl_json_array_next(text, len, &pos, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_ARRAY, "[2,[3]]");
    assert_int_equal(sl_json_array_next(text, len, &pos, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_OBJECT, "{\"x\":\"]\"}");
    assert_int_equal(sl_json_array_next(text, len, &pos, &fx->arena, &v), SL_EOF);
    assert_int_equal(sl_json_array_next(text, len, &pos, &fx->arena, &v), SL_EOF);
    pos = 0;
    assert_int_equal(sl_json_array_next("[]", 2, &pos, &fx->arena, &v), SL_EOF);
    pos = 0;
    assert_int_equal(sl_json_array_next("{\"a\":1}", 7, &pos, &fx->arena, &v), SL_EOF);
    pos = 0;
    assert_int_equal(sl_json_array_next("[1 2]", 5, &pos, &fx->arena, &v), SL_EDATA);
    pos = 0;
    assert_int_equal(sl_json_array_next("[1,", 3, &pos, &fx->arena, &v), 0);
    assert_int_equal(sl_json_array_next("[1,", 3, &pos, &fx->arena, &v), SL_EDATA);
    /* 200k elements in one linear pass. */
    struct sl_buf buf = {0};
    assert_int_equal(sl_buf_putc(&buf, '['), 0);
    for (int i = 0; i < 200000; i++) {
        assert_int_equal(sl_buf_appendf(&buf, i ? ",%d" : "%d", i), 0);
    }
    assert_int_equal(sl_buf_putc(&buf, ']'), 0);
    pos = 0;
    int64_t i = 0;
    while (sl_json_array_next(buf.data, buf.len, &pos, &fx->arena, &v) == 0) {
        assert_int_equal(v.u.i, i++);
    }
    assert_int_equal(i, 200000);
    sl_buf_release(&buf);
}

static void test_json_nested_access_on_decoded_record(void **state)
{
    struct fixture *fx = *state;
    struct sl_value v;

    assert_accepts(
        fx, "{\"id\":123,\"tags\":[\"a\",\"b\"],\"meta\":{\"ip\":\"10.0.0.1\",\"ua\":\"x\"}}");
    const struct sl_value *tags = field(fx, "tags");
    const struct sl_value *meta = field(fx, "meta");
    assert_int_equal(sl_json_array_get(tags->u.s, tags->len, 1, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_STR, "b");
    assert_int_equal(sl_json_object_get(meta->u.s, meta->len, "ip", 2, &fx->arena, &v), 0);
    assert_text(&v, SL_TYPE_STR, "10.0.0.1");
    assert_int_equal(sl_json_count(meta->u.s, meta->len), 2);
}

/* ==== Writers ==== */

static void assert_format_double(double d, const char *want)
{
    char out[32];
    size_t n = sl_json_format_double(d, out);

    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_json_format_double(void **state)
{
    (void)state;
    assert_format_double(100.0, "100.0");
    assert_format_double(0.1, "0.1");
    assert_format_double(-0.0, "-0.0");
    assert_format_double(0.0, "0.0");
    assert_format_double(1e300, "1e+300");
    assert_format_double(12.5, "12.5");
    assert_format_double(-12.5, "-12.5");
    assert_format_double(1.5e-7, "1.5e-07");
    assert_format_double(0.30000000000000004, "0.30000000000000004");
    assert_format_double(5e-324, "5e-324");
    assert_format_double(DBL_MAX, "1.7976931348623157e+308");
    assert_format_double(-DBL_MAX, "-1.7976931348623157e+308");
    assert_format_double(9007199254740992.0, "9007199254740992.0");
    assert_format_double(1e21, "1e+21");
    assert_format_double(123456.789, "123456.789");
    assert_format_double(0.001, "0.001");
    assert_format_double(NAN, "null");
    assert_format_double(INFINITY, "null");
    assert_format_double(-INFINITY, "null");
}

/* Number of significant digits in a formatted double. */
static int sig_digits(const char *s)
{
    int n = 0;
    int lead = 1;
    int trailing_zeros = 0;

    for (; *s != '\0' && *s != 'e'; s++) {
        if (*s < '0' || *s > '9') {
            continue;
        }
        if (lead && *s == '0') {
            continue;
        }
        lead = 0;
        n++;
        trailing_zeros = *s == '0' ? trailing_zeros + 1 : 0;
    }
    return n - trailing_zeros;
}

static void test_json_format_double_round_trips_shortest(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ULL;

    for (int i = 0; i < 200000; i++) {
        double d;
        char out[32];
        char ref[40];
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (i % 2 == 0) {
            memcpy(&d, &x, sizeof(d)); /* any bit pattern */
        } else {
            d = (double)(x % 100000000) / pow(10, (double)(x % 9)); /* typical decimals */
        }
        if (!isfinite(d)) {
            continue;
        }
        sl_json_format_double(d, out);
        double back = strtod(out, NULL);
        if (memcmp(&back, &d, sizeof(d)) != 0) {
            print_error("%.17g formatted as %s\n", d, out);
            fail();
        }
        assert_true(strpbrk(out, ".e") != NULL);
        int prec = 1;
        for (; prec < 17; prec++) {
            snprintf(ref, sizeof(ref), "%.*g", prec, d);
            if (strtod(ref, NULL) == d) {
                break;
            }
        }
        if (sig_digits(out) > prec) {
            print_error("%.17g formatted as %s, %d digits suffice\n", d, out, prec);
            fail();
        }
    }
}

static void assert_written(const struct sl_value *v, const char *want)
{
    struct sl_buf buf = {0};

    assert_int_equal(sl_json_write_value(&buf, v), 0);
    assert_int_equal(buf.len, strlen(want));
    assert_memory_equal(buf.data, want, buf.len);
    sl_buf_release(&buf);
}

static void test_json_write_values(void **state)
{
    (void)state;
    struct sl_value v = sl_value_null();

    assert_written(&v, "null");
    v = sl_value_bool(true);
    assert_written(&v, "true");
    v = sl_value_bool(false);
    assert_written(&v, "false");
    v = sl_value_int(INT64_MIN);
    assert_written(&v, "-9223372036854775808");
    v = sl_value_int(INT64_MAX);
    assert_written(&v, "9223372036854775807");
    v = sl_value_int(0);
    assert_written(&v, "0");
    v = sl_value_double(100.0);
    assert_written(&v, "100.0");
    v = sl_value_double(NAN);
    assert_written(&v, "null");
    v = (struct sl_value){.type = SL_TYPE_ARRAY, .len = 7, .u.s = "[1, 2 ]"};
    assert_written(&v, "[1, 2 ]");
    v = (struct sl_value){.type = SL_TYPE_OBJECT, .len = 7, .u.s = "{\"a\":1}"};
    assert_written(&v, "{\"a\":1}");
}

static void test_json_write_string_escaping(void **state)
{
    (void)state;
    struct sl_value v = sl_value_str("a\"b\\c\n\r\t\b\f\x01\x1f\x7f/\xC3\xA9\xF0\x9F\x98\x80", 20);

    assert_written(&v, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\x7f/\xC3\xA9\xF0\x9F\x98\x80\"");
    v = sl_value_str("x\0y", 3);
    assert_written(&v, "\"x\\u0000y\"");
    v = sl_value_str("", 0);
    assert_written(&v, "\"\"");
    /* Invalid UTF-8 never reaches the output: each bad byte is U+FFFD. */
    v = sl_value_str("a\xC0\x80z\xED\xA0\x80\xE2\x82", 9);
    assert_written(&v, "\"a\xEF\xBF\xBD\xEF\xBF\xBDz\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                       "\xEF\xBF\xBD\xEF\xBF\xBD\"");
}

static void test_json_write_bytes_base64(void **state)
{
    (void)state;
    static const char *const want[] = {
        "\"\"", "\"Zg==\"", "\"Zm8=\"", "\"Zm9v\"", "\"Zm9vYg==\"", "\"Zm9vYmE=\"", "\"Zm9vYmFy\"",
    };

    for (uint32_t n = 0; n <= 6; n++) {
        struct sl_value v = {.type = SL_TYPE_BYTES, .len = n, .u.s = "foobar"};
        assert_written(&v, want[n]);
    }
    struct sl_value v = {.type = SL_TYPE_BYTES, .len = 3, .u.s = "\xFF\xFE\x00"};
    assert_written(&v, "\"//4A\"");
}

static void test_json_write_record_round_trip(void **state)
{
    struct fixture *fx = *state;
    struct sl_buf buf = {0};
    const char *line = " { \"id\" : 123, \"user\":\"u\\u0042\", \"amount\":12.50, \"big\":1e400,"
                       "\"n\":null, \"ok\":true, \"f\":100.0, \"tags\":[\"a\",\"b\"], "
                       "\"meta\":{\"ip\":\"10.0.0.1\"}, \"min\":-9223372036854775808,"
                       "\"t\\t\":\"\\u0001\", \"neg0\":-0.0, \"tiny\":1e-300 }";
    const char *want =
        "{\"id\":123,\"user\":\"uB\",\"amount\":12.5,\"big\":\"1e400\",\"n\":null,"
        "\"ok\":true,\"f\":100.0,\"tags\":[\"a\",\"b\"],\"meta\":{\"ip\":\"10.0.0.1\"},"
        "\"min\":-9223372036854775808,\"t\\t\":\"\\u0001\",\"neg0\":-0.0,"
        "\"tiny\":1e-300}";

    assert_accepts(fx, line);
    assert_int_equal(sl_json_write_record(&buf, &fx->rec), 0);
    assert_string_equal(buf.data, want);
    /* Written output decodes to the same values. */
    char *copy = strdup(buf.data);
    assert_non_null(copy);
    assert_accepts(fx, copy);
    sl_buf_reset(&buf);
    assert_int_equal(sl_json_write_record(&buf, &fx->rec), 0);
    assert_string_equal(buf.data, want);
    assert_int_equal(field(fx, "f")->type, SL_TYPE_DOUBLE);
    free(copy);
    sl_buf_reset(&buf);
    struct sl_record empty = {0};
    assert_int_equal(sl_json_write_record(&buf, &empty), 0);
    assert_string_equal(buf.data, "{}");
    sl_buf_release(&buf);
}

/* ==== Writing in pieces (sl_json_out) ==== */

struct pieces {
    struct sl_buf all; /* everything flushed, in order */
    size_t most;       /* the longest text flushed at once */
    int calls;
    int fail_at; /* flush call number that fails with SL_EIO; 0: none */
};

static int take_piece(void *arg, const char *text, size_t len)
{
    struct pieces *pc = arg;

    if (++pc->calls == pc->fail_at) {
        return SL_EIO;
    }
    pc->most = len > pc->most ? len : pc->most;
    return sl_buf_append(&pc->all, text, len);
}

/* A record of long values of every kind that cut awkwardly: multibyte
 * characters, escapes and invalid bytes all through a long string, bytes
 * of a length that is not a multiple of 3, long JSON text, a long name, and
 * many short fields between them. Its strings are malloc'ed into *ret_mem. */
static struct sl_record long_record(char **ret_mem)
{
    static const char unit[] = "ab\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\"\\\n\x01\xC0\xE2\x82z";
    size_t unit_len = sizeof(unit) - 1;
    size_t n = 9001;
    char *mem = malloc(n * unit_len + 3 * 70001 + 64);
    assert_non_null(mem);
    char *str = mem, *bytes = str + n * unit_len, *raw = bytes + 70001, *name = raw + 70001;
    for (size_t i = 0; i < n; i++) {
        memcpy(str + i * unit_len, unit, unit_len);
    }
    for (size_t i = 0; i < 70001; i++) {
        bytes[i] = (char)(i * 7);
        name[i] = (char)('a' + i % 26);
    }
    raw[0] = '[';
    for (size_t i = 1; i < 70000; i++) {
        raw[i] = i % 2 ? '1' : ',';
    }
    raw[70000] = ']';
    static struct sl_field f[300];
    f[0] = (struct sl_field){"s", 1, sl_value_str(str, n * unit_len)};
    f[1] = (struct sl_field){"b", 1, {.type = SL_TYPE_BYTES, .len = 70001, .u.s = bytes}};
    f[2] = (struct sl_field){"r", 1, {.type = SL_TYPE_ARRAY, .len = 70001, .u.s = raw}};
    f[3] = (struct sl_field){name, 70001, sl_value_int(-42)};
    for (uint32_t i = 4; i < 300; i++) {
        f[i] = (struct sl_field){"k\xC3\xA9", 3,
                                 i % 3 ? sl_value_double(i / 4.0) : sl_value_bool(i % 2)};
    }
    *ret_mem = mem;
    return (struct sl_record){.fields = f, .nfields = 300};
}

static void test_json_out_record_in_pieces_is_the_same_text(void **state)
{
    (void)state;
    char *mem;
    struct sl_record rec = long_record(&mem);
    struct sl_buf whole = {0};
    static const size_t chunks[] = {1024, 1500, 4096, 65536, 1 << 20};

    assert_int_equal(sl_json_write_record(&whole, &rec), 0);
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct pieces pc = {0};
        struct sl_buf buf = {0};
        struct sl_json_out out = {&buf, chunks[c], take_piece, &pc};
        assert_int_equal(sl_json_out_record(&out, &rec), 0);
        assert_true(buf.len < 2 * chunks[c]);
        assert_true(pc.most < 2 * chunks[c]);
        assert_true(buf.cap <= 2 * chunks[c] || chunks[c] >= whole.len);
        assert_int_equal(sl_buf_append(&pc.all, buf.data, buf.len), 0);
        assert_int_equal(pc.all.len, whole.len);
        assert_memory_equal(pc.all.data, whole.data, whole.len);
        assert_true(chunks[c] >= whole.len || pc.calls > 1);
        sl_buf_release(&pc.all);
        sl_buf_release(&buf);
    }
    sl_buf_release(&whole);
    free(mem);
    /* Many short fields: written a field at a time. */
    static struct sl_field many[5000];
    for (uint32_t i = 0; i < 5000; i++) {
        many[i] = (struct sl_field){"k", 1, sl_value_str("\xC3\xA9\n", 3)};
    }
    struct sl_record wide = {.fields = many, .nfields = 5000};
    struct pieces pc = {0};
    struct sl_buf buf = {0};
    struct sl_json_out out = {&buf, 1024, take_piece, &pc};
    assert_int_equal(sl_json_write_record(&whole, &wide), 0);
    assert_int_equal(sl_json_out_record(&out, &wide), 0);
    assert_true(pc.most < 2048 && buf.cap <= 2048);
    assert_int_equal(sl_buf_append(&pc.all, buf.data, buf.len), 0);
    assert_int_equal(pc.all.len, whole.len);
    assert_memory_equal(pc.all.data, whole.data, whole.len);
    sl_buf_release(&pc.all);
    sl_buf_release(&buf);
    sl_buf_release(&whole);
}

static void test_json_out_record_flush_error_is_returned(void **state)
{
    (void)state;
    char *mem;
    struct sl_record rec = long_record(&mem);

    for (int at = 1; at <= 3; at++) {
        struct pieces pc = {.fail_at = at};
        struct sl_buf buf = {0};
        struct sl_json_out out = {&buf, 4096, take_piece, &pc};
        assert_int_equal(sl_json_out_record(&out, &rec), SL_EIO);
        assert_int_equal(pc.calls, at);
        sl_buf_release(&pc.all);
        sl_buf_release(&buf);
    }
    free(mem);
}

/* ==== Allocation failures ==== */

static void test_json_oom_is_clean(void **state)
{
    struct fixture *fx = *state;
    struct sl_buf line = {0};
    int rc;

    assert_int_equal(sl_buf_append(&line, "{\"e\":\"a\\nb\"", 11), 0);
    build_keys(&line, 0, 300, 0);
    assert_int_equal(sl_buf_append(&line, ",\"x\":[[[1]]]}", 13), 0);
    for (long nth = 1;; nth++) {
        struct sl_json_decoder *d;
        struct sl_arena arena;
        struct sl_record rec = {0};
        struct sl_err err = {0};
        sl_arena_init(&arena);
        sl_mem_fail_nth(nth);
        d = sl_json_decoder_new(0);
        rc = d == NULL ? SL_ENOMEM
                       : sl_json_decode_object(d, line.data, line.len, &rec, &arena, &err);
        sl_mem_fail_nth(0);
        sl_json_decoder_free(d);
        sl_arena_release(&arena);
        if (rc == 0) {
            assert_int_equal(rec.nfields, 302);
            break;
        }
        assert_int_equal(rc, SL_ENOMEM);
        assert_true(nth < 1000);
    }
    /* Writers. */
    for (long nth = 1;; nth++) {
        struct sl_buf out = {0};
        sl_mem_fail_nth(nth);
        rc = sl_json_write_string(&out, "a\nb", 3);
        sl_mem_fail_nth(0);
        sl_buf_release(&out);
        if (rc == 0) {
            break;
        }
        assert_int_equal(rc, SL_ENOMEM);
    }
    /* The piece writer: a failed allocation mid-record is SL_ENOMEM. */
    char *mem;
    struct sl_record rec = long_record(&mem);
    for (long nth = 1;; nth++) {
        struct pieces pc = {0};
        struct sl_buf buf = {0};
        struct sl_json_out out = {&buf, 4096, take_piece, &pc};
        sl_mem_fail_nth(nth);
        rc = sl_json_out_record(&out, &rec);
        sl_mem_fail_nth(0);
        sl_buf_release(&pc.all);
        sl_buf_release(&buf);
        if (rc == 0) {
            break;
        }
        assert_int_equal(rc, SL_ENOMEM);
        assert_true(nth < 1000);
    }
    free(mem);
    (void)fx;
    sl_buf_release(&line);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_json_decodes_all_value_types),
        T(test_json_empty_object),
        T(test_json_int64_limits_and_beyond),
        T(test_json_doubles_correctly_rounded),
        T(test_json_double_overflow_kept_as_text),
        T(test_json_escapes_decoded),
        T(test_json_rejects_lone_surrogates),
        T(test_json_rejects_bad_escapes),
        T(test_json_rejects_invalid_utf8),
        T(test_json_accepts_valid_utf8_edges),
        T(test_json_utf8_clean),
        T(test_json_rejects_raw_control_chars),
        T(test_json_rejects_trailing_comma),
        T(test_json_rejects_double_comma),
        T(test_json_rejects_key_without_value),
        T(test_json_rejects_bad_numbers),
        T(test_json_rejects_quotes_comments_literals),
        T(test_json_rejects_trailing_data),
        T(test_json_rejects_top_level_non_object),
        T(test_json_rejects_bom_by_name),
        T(test_json_accepts_whitespace_around),
        T(test_json_error_leaves_other_lines_unaffected),
        T(test_json_duplicate_keys_last_wins_small),
        T(test_json_duplicate_keys_last_wins_many),
        T(test_json_decoder_reused_across_lines),
        T(test_json_depth_limit_64),
        T(test_json_depth_limit_configurable),
        T(test_json_deep_nesting_rejected_fast),
        T(test_json_huge_string_line),
        T(test_json_many_keys_line),
        T(test_json_long_number_line),
        T(test_json_zero_copy_strings_and_containers),
        T(test_json_object_get),
        T(test_json_array_get_and_count),
        T(test_json_array_next_iterates),
        T(test_json_nested_access_on_decoded_record),
        T(test_json_format_double),
        T(test_json_format_double_round_trips_shortest),
        T(test_json_write_values),
        T(test_json_write_string_escaping),
        T(test_json_write_bytes_base64),
        T(test_json_write_record_round_trip),
        T(test_json_out_record_in_pieces_is_the_same_text),
        T(test_json_out_record_flush_error_is_returned),
        T(test_json_oom_is_clean),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
