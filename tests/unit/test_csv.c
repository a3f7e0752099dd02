/* SPDX-License-Identifier: MIT */
/* Unit tests for the CSV decoder (engine/csv.c): row splitting and block
 * boundaries, header parsing, value typing, dead-letter reasons, zero copy
 * and OOM handling. Single-threaded. */
#include "arena.h"
#include "csv.h"
#include "decode.h"
#include "err.h"
#include "mem.h"
#include "record.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ==== Helpers ==== */

struct fixture {
    struct sl_arena arena;
    struct sl_csv_header *h;
    struct sl_record rec;
    struct sl_err err;
};

static int setup(void **state)
{
    struct fixture *fx = sl_calloc(1, sizeof(*fx));

    if (fx == NULL) {
        return -1;
    }
    sl_arena_init(&fx->arena);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *fx = *state;

    fx->h = sl_csv_header_free(fx->h);
    sl_arena_release(&fx->arena);
    sl_free(fx);
    return 0;
}

static void header(struct fixture *fx, const char *row)
{
    fx->h = sl_csv_header_free(fx->h);
    assert_int_equal(sl_csv_header_parse(row, strlen(row), &fx->h, &fx->err), 0);
}

/* Decodes row (a NUL-terminated string without terminator) into fx->rec. */
static int decode(struct fixture *fx, const char *row)
{
    memset(&fx->rec, 0, sizeof(fx->rec));
    memset(&fx->err, 0, sizeof(fx->err));
    return sl_csv_decode_row(fx->h, row, strlen(row), &fx->rec, &fx->arena, &fx->err);
}

static const struct sl_value *val(struct fixture *fx, uint32_t i)
{
    assert_true(i < fx->rec.nfields);
    return &fx->rec.fields[i].val;
}

static void assert_str(const struct sl_value *v, const char *want)
{
    assert_int_equal(v->type, SL_TYPE_STR);
    assert_int_equal(v->len, strlen(want));
    assert_memory_equal(v->u.s, want, v->len);
}

static void assert_data_error(struct fixture *fx, const char *row, const char *msg)
{
    assert_int_equal(decode(fx, row), SL_EDATA);
    assert_int_equal(fx->err.code, SL_EDATA);
    assert_string_equal(fx->err.msg, msg);
}

/* ==== Row splitting ==== */

static void test_csv_lf_and_crlf_rows(void **state)
{
    const char *buf = "a,b\r\nc,d\ne,f\r\n";
    size_t len = strlen(buf);
    size_t row_len;
    uint32_t lines;
    size_t used;

    (void)state;
    used = sl_csv_next_row(buf, len, &row_len, &lines);
    assert_int_equal(used, 5);
    assert_int_equal(row_len, 3);
    assert_int_equal(lines, 1);
    used += sl_csv_next_row(buf + used, len - used, &row_len, &lines);
    assert_int_equal(used, 9);
    assert_int_equal(row_len, 3);
    used += sl_csv_next_row(buf + used, len - used, &row_len, &lines);
    assert_int_equal(used, len);
    assert_int_equal(row_len, 3);
    assert_int_equal(sl_csv_next_row(buf + used, 0, &row_len, &lines), 0);
    assert_int_equal(row_len, 0);
    assert_int_equal(lines, 0);
}

static void test_csv_no_final_newline(void **state)
{
    const char *buf = "a,b\nc,d";
    size_t row_len;
    uint32_t lines;

    (void)state;
    assert_int_equal(sl_csv_next_row(buf + 4, 3, &row_len, &lines), 3);
    assert_int_equal(row_len, 3);
    assert_int_equal(lines, 1);
    /* A trailing CR without LF at the very end is not part of the row. */
    assert_int_equal(sl_csv_next_row("c,d\r", 4, &row_len, &lines), 4);
    assert_int_equal(row_len, 3);
    assert_int_equal(sl_csv_complete_prefix(buf, 7, false, SIZE_MAX), 4);
    assert_int_equal(sl_csv_complete_prefix(buf, 7, true, SIZE_MAX), 7);
}

static void test_csv_quoted_newline_is_one_row(void **state)
{
    struct fixture *fx = *state;
    const char *buf = "1,\"two\nlines\",x\n2,y,z\n";
    size_t row_len;
    uint32_t lines;
    size_t used = sl_csv_next_row(buf, strlen(buf), &row_len, &lines);

    assert_int_equal(used, strlen("1,\"two\nlines\",x\n"));
    assert_int_equal(row_len, used - 1);
    assert_int_equal(lines, 2);
    header(fx, "a,b,c");
    char row[32];
    memcpy(row, buf, row_len);
    row[row_len] = '\0';
    assert_int_equal(decode(fx, row), 0);
    assert_int_equal(fx->rec.nfields, 3);
    assert_str(val(fx, 1), "two\nlines");
    /* CRLF inside quotes is kept verbatim; the row's own CRLF is not. */
    buf = "\"x\r\ny\r\nz\"\r\nnext\r\n";
    used = sl_csv_next_row(buf, strlen(buf), &row_len, &lines);
    assert_int_equal(used, strlen("\"x\r\ny\r\nz\"\r\n"));
    assert_int_equal(row_len, used - 2);
    assert_int_equal(lines, 3);
}

static void test_csv_complete_prefix_cuts_at_last_boundary(void **state)
{
    const char *buf = "a,b\nc,d\ne,f";

    (void)state;
    assert_int_equal(sl_csv_complete_prefix(buf, strlen(buf), false, SIZE_MAX), 8);
    assert_int_equal(sl_csv_complete_prefix(buf, 8, false, SIZE_MAX), 8);
    assert_int_equal(sl_csv_complete_prefix(buf, 7, false, SIZE_MAX), 4);
    assert_int_equal(sl_csv_complete_prefix(buf, 3, false, SIZE_MAX), 0);
    assert_int_equal(sl_csv_complete_prefix(buf, 0, false, SIZE_MAX), 0);
    /* CR of a CRLF at the end of the block: the row is not complete yet. */
    assert_int_equal(sl_csv_complete_prefix("a,b\r\nc,d\r", 9, false, SIZE_MAX), 5);
}

static void test_csv_complete_prefix_block_ends_inside_quotes(void **state)
{
    /* The LF after "x" is inside quotes, so the last boundary is after 1,2. */
    const char *buf = "1,2\n3,\"x\ny";

    (void)state;
    assert_int_equal(sl_csv_complete_prefix(buf, strlen(buf), false, SIZE_MAX), 4);
    /* At EOF, an unterminated quote is handed to the decoder as complete. */
    assert_int_equal(sl_csv_complete_prefix(buf, strlen(buf), true, SIZE_MAX), strlen(buf));
}

static void test_csv_complete_prefix_quote_across_boundary(void **state)
{
    /* The full input; every cut must agree with splitting the whole. */
    const char *full = "a,\"he said \"\"hi\n\"\"\",c\nd,\"\"\"\",f\n\"g\nh\",i,\"\"\n";
    size_t len = strlen(full);
    size_t bounds[8];
    size_t nb = 0;
    size_t off = 0;

    (void)state;
    while (off < len) {
        size_t row_len;
        uint32_t lines;
        off += sl_csv_next_row(full + off, len - off, &row_len, &lines);
        bounds[nb++] = off;
    }
    assert_int_equal(nb, 3);
    assert_int_equal(bounds[0], strlen("a,\"he said \"\"hi\n\"\"\",c\n"));
    for (size_t cut = 0; cut <= len; cut++) {
        size_t want = 0;
        for (size_t i = 0; i < nb; i++) {
            if (bounds[i] <= cut) {
                want = bounds[i];
            }
        }
        assert_int_equal(sl_csv_complete_prefix(full, cut, false, SIZE_MAX), want);
    }
}

/* h2: an unclosed quote makes the rest of the input one row. The prefix
 * stops before a row longer than max_row, complete or not, so that the
 * source sees it is too long however the input was cut into reads. */
static void test_csv_complete_prefix_stops_before_long_row_h2(void **state)
{
    const char *buf = "1,a\n2,\"abc\n3,x\n4,\"q\"\n5,y\n";
    size_t len = strlen(buf);

    (void)state;
    /* Unbounded, the open quote runs to the next quote: one long row. */
    assert_int_equal(sl_csv_complete_prefix(buf, len, false, SIZE_MAX), len);
    assert_int_equal(sl_csv_complete_prefix(buf, len, false, 8), 4);
    assert_int_equal(sl_csv_complete_prefix(buf, len, true, 8), 4);
    /* Not yet complete and already too long: the same cut. */
    assert_int_equal(sl_csv_complete_prefix(buf, 14, false, 8), 4);
    /* A row of exactly max_row bytes passes; its CRLF does not count. */
    assert_int_equal(sl_csv_complete_prefix("abc\r\nde", 7, false, 3), 5);
    assert_int_equal(sl_csv_complete_prefix("abc\r\nde", 7, true, 3), 7);
    assert_int_equal(sl_csv_complete_prefix("abc\r\nde", 7, true, 2), 0);
    /* At EOF the unterminated last row goes too, unless it is too long. */
    assert_int_equal(sl_csv_complete_prefix("1,a\n2,\"bcd", 10, true, 8), 10);
    assert_int_equal(sl_csv_complete_prefix("1,a\n2,\"bcdefgh", 14, true, 8), 4);
}

/* h2: a quoted field still open at the end of the input may end in a line
 * break: only the quote state says the row has no terminator. */
static void test_csv_next_row_open_quote_has_no_terminator_h2(void **state)
{
    const char *rows[] = {"3,\"abc\n4,d\n", "3,\"abc\r\n", "3,abc\r", "3,abc"};
    const char *done[] = {"3,\"a\nb\"\n", "3,abc\r\n", "3,abc\n"};
    size_t row_len;
    uint32_t lines;

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        size_t used = sl_csv_next_row(rows[i], strlen(rows[i]), &row_len, &lines);
        assert_int_equal(used, strlen(rows[i]));
        assert_false(row_len < used && rows[i][used - 1] == '\n');
    }
    for (size_t i = 0; i < sizeof(done) / sizeof(done[0]); i++) {
        size_t used = sl_csv_next_row(done[i], strlen(done[i]), &row_len, &lines);
        assert_int_equal(used, strlen(done[i]));
        assert_true(row_len < used && done[i][used - 1] == '\n');
    }
    assert_int_equal(sl_csv_next_row(rows[0], strlen(rows[0]), &row_len, &lines), 11);
    assert_int_equal(lines, 3);
}

static void test_csv_stray_quote_does_not_swallow_rows(void **state)
{
    /* A quote in the middle of an unquoted field is literal for splitting:
     * only that row is bad. */
    const char *buf = "a,b\"c\nd,e\n";
    size_t row_len;
    uint32_t lines;

    (void)state;
    assert_int_equal(sl_csv_next_row(buf, strlen(buf), &row_len, &lines), 6);
    assert_int_equal(row_len, 5);
    assert_int_equal(sl_csv_complete_prefix(buf, strlen(buf), false, SIZE_MAX), strlen(buf));
}

static void test_csv_blank_lines(void **state)
{
    (void)state;
    assert_true(sl_csv_row_blank("", 0));
    assert_true(sl_csv_row_blank(" \t \r", 4));
    assert_false(sl_csv_row_blank(" x ", 3));
    assert_false(sl_csv_row_blank("\"\"", 2));
    assert_false(sl_csv_row_blank(",", 1));
}

/* Walks a block the way a source does and checks records and lines. */
static void test_csv_block_walk_counts_lines(void **state)
{
    struct fixture *fx = *state;
    const char *buf = "id,note\r\n1,plain\r\n\r\n   \r\n2,\"multi\r\nline\"\r\n3,last";
    size_t len = strlen(buf);
    size_t off = 0;
    uint32_t line = 1;
    int64_t ids[3];
    uint32_t at[3];
    int n = 0;

    while (off < len) {
        size_t row_len;
        uint32_t lines;
        size_t used = sl_csv_next_row(buf + off, len - off, &row_len, &lines);
        if (line == 1) {
            assert_int_equal(sl_csv_header_parse(buf, row_len, &fx->h, &fx->err), 0);
        } else if (!sl_csv_row_blank(buf + off, row_len)) {
            memset(&fx->rec, 0, sizeof(fx->rec));
            assert_int_equal(
                sl_csv_decode_row(fx->h, buf + off, row_len, &fx->rec, &fx->arena, &fx->err), 0);
            assert_int_equal(val(fx, 0)->type, SL_TYPE_INT);
            ids[n] = val(fx, 0)->u.i;
            at[n++] = line;
        }
        line += lines;
        off += used;
    }
    assert_int_equal(n, 3);
    assert_int_equal(ids[0], 1);
    assert_int_equal(at[0], 2);
    assert_int_equal(ids[1], 2);
    assert_int_equal(at[1], 5);
    assert_int_equal(ids[2], 3);
    assert_int_equal(at[2], 7);
}

/* ==== Values ==== */

static void test_csv_numbers_vs_text(void **state)
{
    static const struct {
        const char *in;
        int type;
        int64_t i;
        double d;
    } cases[] = {
        {"0", SL_TYPE_INT, 0, 0},
        {"-0", SL_TYPE_INT, 0, 0},
        {"-12", SL_TYPE_INT, -12, 0},
        {"42", SL_TYPE_INT, 42, 0},
        {"9223372036854775807", SL_TYPE_INT, INT64_MAX, 0},
        {"-9223372036854775808", SL_TYPE_INT, INT64_MIN, 0},
        {"0.5", SL_TYPE_DOUBLE, 0, 0.5},
        {"-1.25", SL_TYPE_DOUBLE, 0, -1.25},
        {"100.0", SL_TYPE_DOUBLE, 0, 100.0},
        {"0.1", SL_TYPE_DOUBLE, 0, 0.1},
        {"3.14159", SL_TYPE_DOUBLE, 0, 3.14159},
        {"9223372036854775808", SL_TYPE_STR, 0, 0},
        {"-9223372036854775809", SL_TYPE_STR, 0, 0},
        {"99999999999999999999999", SL_TYPE_STR, 0, 0},
        {"00501", SL_TYPE_STR, 0, 0},
        {"01.5", SL_TYPE_STR, 0, 0},
        {"1E0000", SL_TYPE_STR, 0, 0},
        {"1.5e3", SL_TYPE_STR, 0, 0},
        {"0x1F", SL_TYPE_STR, 0, 0},
        {" 12", SL_TYPE_STR, 0, 0},
        {"12 ", SL_TYPE_STR, 0, 0},
        {"+1", SL_TYPE_STR, 0, 0},
        {"1.", SL_TYPE_STR, 0, 0},
        {".5", SL_TYPE_STR, 0, 0},
        {"-", SL_TYPE_STR, 0, 0},
        {"--1", SL_TYPE_STR, 0, 0},
        {"1.2.3", SL_TYPE_STR, 0, 0},
        {"NaN", SL_TYPE_STR, 0, 0},
        {"inf", SL_TYPE_STR, 0, 0},
        {"1,5", SL_TYPE_STR, 0, 0},
    };

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct sl_value v = sl_value_str("untouched", 9);
        bool ok = sl_csv_parse_number(cases[k].in, strlen(cases[k].in), &v);
        if (cases[k].type == SL_TYPE_STR) {
            if (ok) {
                fail_msg("\"%s\" parsed as a number", cases[k].in);
            }
            assert_int_equal(v.type, SL_TYPE_STR); /* untouched on false */
            continue;
        }
        if (!ok || v.type != cases[k].type) {
            fail_msg("\"%s\" not parsed as expected", cases[k].in);
        }
        if (v.type == SL_TYPE_INT) {
            assert_true(v.u.i == cases[k].i);
        } else {
            assert_true(v.u.d == cases[k].d);
        }
    }
}

static void test_csv_decimal_slow_path_is_exact(void **state)
{
    struct sl_value v;
    char big[400];

    (void)state;
    /* More than 19 digits, or more than 22 fraction digits: strtod. */
    const char *s = "0.30000000000000000000000000001";
    assert_true(sl_csv_parse_number(s, strlen(s), &v));
    assert_int_equal(v.type, SL_TYPE_DOUBLE);
    assert_true(v.u.d == strtod(s, NULL));
    s = "123456789012345678901234.5";
    assert_true(sl_csv_parse_number(s, strlen(s), &v));
    assert_true(v.u.d == strtod(s, NULL));
    /* Negative zero as a decimal keeps its sign. */
    assert_true(sl_csv_parse_number("-0.0", 4, &v));
    assert_int_equal(v.type, SL_TYPE_DOUBLE);
    assert_true(v.u.d == 0.0 && 1.0 / v.u.d < 0);
    /* A decimal longer than the stack buffer, within range. */
    memset(big, '0', sizeof(big));
    big[0] = '1';
    big[200] = '.';
    big[399] = '7';
    assert_true(sl_csv_parse_number(big, sizeof(big), &v));
    assert_int_equal(v.type, SL_TYPE_DOUBLE);
    assert_true(v.u.d == 1e199);
    /* Beyond the double range: text. */
    memset(big, '9', sizeof(big));
    big[398] = '.';
    assert_false(sl_csv_parse_number(big, sizeof(big), &v));
}

static void test_csv_quoted_field_is_text(void **state)
{
    struct fixture *fx = *state;

    header(fx, "a,b,c");
    assert_int_equal(decode(fx, "\"123\",123,\"1.5\""), 0);
    assert_str(val(fx, 0), "123");
    assert_int_equal(val(fx, 1)->type, SL_TYPE_INT);
    assert_str(val(fx, 2), "1.5");
}

static void test_csv_escaped_quotes(void **state)
{
    struct fixture *fx = *state;
    const char *row = "\"say \"\"hi\"\"\",\"\"\"\",\"a,b\"";

    header(fx, "a,b,c");
    assert_int_equal(decode(fx, row), 0);
    assert_str(val(fx, 0), "say \"hi\"");
    assert_str(val(fx, 1), "\"");
    assert_str(val(fx, 2), "a,b");
    /* Unescaped values live in the arena, not in the row. */
    assert_true(val(fx, 0)->u.s < row || val(fx, 0)->u.s >= row + strlen(row));
}

static void test_csv_empty_field_is_null_quoted_is_empty_string(void **state)
{
    struct fixture *fx = *state;

    header(fx, "a,b,c,d");
    assert_int_equal(decode(fx, ",\"\",x,"), 0);
    assert_int_equal(fx->rec.nfields, 4);
    assert_int_equal(val(fx, 0)->type, SL_TYPE_NULL);
    assert_str(val(fx, 1), "");
    assert_str(val(fx, 2), "x");
    assert_int_equal(val(fx, 3)->type, SL_TYPE_NULL);
}

static void test_csv_values_are_verbatim(void **state)
{
    struct fixture *fx = *state;

    header(fx, "a,b,c");
    assert_int_equal(decode(fx, " x , 12,caf\xc3\xa9 \xe2\x82\xac"), 0);
    assert_str(val(fx, 0), " x ");
    assert_str(val(fx, 1), " 12");
    assert_str(val(fx, 2), "caf\xc3\xa9 \xe2\x82\xac");
}

static void test_csv_zero_copy(void **state)
{
    struct fixture *fx = *state;
    const char *row = "abc,\"quoted, no escapes\",-7";

    header(fx, "a,b,c");
    assert_int_equal(decode(fx, row), 0);
    assert_ptr_equal(val(fx, 0)->u.s, row);
    assert_ptr_equal(val(fx, 1)->u.s, row + 5);
    assert_int_equal(val(fx, 1)->len, strlen("quoted, no escapes"));
    assert_int_equal(val(fx, 2)->type, SL_TYPE_INT);
    /* Field names point into the header, which owns them. */
    assert_ptr_equal(fx->rec.fields[0].name, sl_csv_header_name(fx->h, 0, NULL));
}

/* ==== Dead letters ==== */

static void test_csv_wrong_column_count(void **state)
{
    struct fixture *fx = *state;

    header(fx, "a,b,c,d");
    assert_data_error(fx, "1,2,3", "row has 3 fields, the header has 4");
    assert_data_error(fx, "1,2,3,4,5", "row has 5 fields, the header has 4");
    assert_data_error(fx, "1,2,3,4,", "row has 5 fields, the header has 4");
    assert_int_equal(decode(fx, "1,2,3,4"), 0);
}

/* Issue 6, finding 16: one field is "1 field", and the count is the
 * header's. */
static void test_csv_wrong_column_count_one_field(void **state)
{
    struct fixture *fx = *state;

    header(fx, "a,b,c");
    assert_data_error(fx, "1", "row has 1 field, the header has 3");
}

static void test_csv_stray_quote_is_malformed(void **state)
{
    struct fixture *fx = *state;

    header(fx, "a,b");
    assert_data_error(fx, "x,ab\"c", "quote inside unquoted field 2");
    assert_data_error(fx, "x,ab\"", "quote inside unquoted field 2");
    assert_data_error(fx, "\"ab\"c,x", "unexpected character after closing quote in field 1");
    assert_data_error(fx, "\"ab\" ,x", "unexpected character after closing quote in field 1");
    assert_data_error(fx, "x,\"abc", "unterminated quoted field 2");
    assert_data_error(fx, "x,\"ab\"\"", "unterminated quoted field 2");
    assert_data_error(fx, "x,y\nz", "line break outside quotes in field 2");
}

static void test_csv_invalid_utf8(void **state)
{
    static const char *const bad[] = {
        "\x80",             /* lone continuation byte */
        "\xc0\x80",         /* overlong NUL */
        "\xc1\xbf",         /* overlong 2-byte */
        "\xe0\x80\xaf",     /* overlong 3-byte */
        "\xf0\x80\x80\xaf", /* overlong 4-byte */
        "\xed\xa0\x80",     /* surrogate U+D800 */
        "\xed\xbf\xbf",     /* surrogate U+DFFF */
        "\xf4\x90\x80\x80", /* U+110000 */
        "\xf5\x80\x80\x80", /* lead byte above F4 */
        "\xff",             /* never valid */
        "\xe2\x82",         /* truncated */
        "\xf0\x9f\x98",     /* truncated */
        "\xc3x",            /* bad continuation */
    };
    static const char *const good[] = {
        "\xc3\xa9",         /* U+00E9 */
        "\xe2\x82\xac",     /* U+20AC */
        "\xed\x9f\xbf",     /* U+D7FF */
        "\xee\x80\x80",     /* U+E000 */
        "\xf0\x9f\x98\x80", /* U+1F600 */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF */
    };
    struct fixture *fx = *state;
    char row[64];

    header(fx, "a,b,c");
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        snprintf(row, sizeof(row), "ok,x%s,ok", bad[k]);
        assert_data_error(fx, row, "invalid UTF-8 in field 2");
        /* Quoted too, and past the 8-byte ASCII fast path. */
        snprintf(row, sizeof(row), "0123456789,\"x%s\",ok", bad[k]);
        assert_data_error(fx, row, "invalid UTF-8 in field 2");
    }
    for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
        snprintf(row, sizeof(row), "ok,x%s,0123456789%s", good[k], good[k]);
        assert_int_equal(decode(fx, row), 0);
    }
}

/* ==== Header ==== */

static void test_csv_header_names_verbatim(void **state)
{
    struct fixture *fx = *state;
    uint32_t len;

    header(fx, " Cost Total $ ,a.b,\"x,\"\"y\"\"\",\xc3\xa9t\xc3\xa9,_line");
    assert_int_equal(sl_csv_header_count(fx->h), 5);
    assert_string_equal(sl_csv_header_name(fx->h, 0, &len), " Cost Total $ ");
    assert_int_equal(len, 14);
    assert_string_equal(sl_csv_header_name(fx->h, 1, NULL), "a.b");
    assert_string_equal(sl_csv_header_name(fx->h, 2, NULL), "x,\"y\"");
    assert_string_equal(sl_csv_header_name(fx->h, 3, NULL), "\xc3\xa9t\xc3\xa9");
    assert_int_equal(decode(fx, "1,2,3,4,5"), 0);
    assert_int_equal(fx->rec.fields[0].name_len, 14);
    assert_memory_equal(fx->rec.fields[0].name, " Cost Total $ ", 14);
    assert_memory_equal(fx->rec.fields[2].name, "x,\"y\"", 5);
}

static void test_csv_header_outlives_row(void **state)
{
    struct fixture *fx = *state;
    char *row = sl_strdup("first,second");

    assert_non_null(row);
    assert_int_equal(sl_csv_header_parse(row, strlen(row), &fx->h, &fx->err), 0);
    memset(row, 'z', strlen(row));
    sl_free(row);
    assert_string_equal(sl_csv_header_name(fx->h, 1, NULL), "second");
}

static void test_csv_header_errors(void **state)
{
    static const struct {
        const char *row;
        const char *msg;
    } cases[] = {
        {"a,b,a", "duplicate column name a"},
        {"x,\"x\"", "duplicate column name x"},
        {"a,,b", "empty column name (column 2)"},
        {"a,b,", "empty column name (column 3)"},
        {"a,\"\"", "empty column name (column 2)"},
        {"", "empty column name (column 1)"},
        {"a,b\"c", "quote inside unquoted column name 2"},
        {"a,\"b", "unterminated quoted column name 2"},
        {"a\xed\xa0\x80,b", "invalid UTF-8 in column name 1"},
    };
    struct sl_csv_header *h = NULL;
    struct sl_err err;

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(sl_csv_header_parse(cases[k].row, strlen(cases[k].row), &h, &err),
                         SL_EDATA);
        assert_null(h);
        assert_string_equal(err.msg, cases[k].msg);
    }
    /* Names differing only in case or spacing are distinct. */
    assert_int_equal(sl_csv_header_parse("a,A,a ", 6, &h, &err), 0);
    h = sl_csv_header_free(h);
    assert_null(sl_csv_header_free(NULL));
}

static void test_csv_single_column(void **state)
{
    struct fixture *fx = *state;

    header(fx, "only");
    assert_int_equal(sl_csv_header_count(fx->h), 1);
    assert_int_equal(decode(fx, "\"\""), 0);
    assert_str(val(fx, 0), "");
    assert_data_error(fx, "a,b", "row has 2 fields, the header has 1");
}

/* ==== Messages (sl_decode_text, as the Kafka source uses it) ==== */

/* Decodes text as one message of format fmt into fx->rec. */
static int decode_msg(struct fixture *fx, enum sl_format fmt, const char *text)
{
    memset(&fx->rec, 0, sizeof(fx->rec));
    memset(&fx->err, 0, sizeof(fx->err));
    return sl_decode_text(fmt, NULL, fx->h, text, strlen(text), &fx->rec, &fx->arena, &fx->err);
}

/* Issue 6, finding 25: a message may end in one "\n" or "\r\n", as a JSON
 * message may; csv used to refuse it ("line break outside quotes"). */
static void test_decode_csv_message_with_final_newline(void **state)
{
    static const char *const msgs[] = {"1,x,3", "1,x,3\n", "1,x,3\r\n"};
    struct fixture *fx = *state;

    header(fx, "a,b,c");
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        assert_int_equal(decode_msg(fx, SL_FORMAT_CSV, msgs[i]), 0);
        assert_int_equal(fx->rec.nfields, 3);
        assert_int_equal(val(fx, 2)->type, SL_TYPE_INT);
        assert_int_equal(val(fx, 2)->u.i, 3);
    }
    /* A quoted value keeps its own line break; only one terminator goes. */
    assert_int_equal(decode_msg(fx, SL_FORMAT_CSV, "1,\"x\n\",3\n"), 0);
    assert_str(val(fx, 1), "x\n");
    assert_int_equal(decode_msg(fx, SL_FORMAT_CSV, "1,x,3\n\n"), SL_EDATA);
    assert_int_equal(decode_msg(fx, SL_FORMAT_CSV, "1,x,3\n4,y,6"), SL_EDATA);
}

static void test_decode_lines_message_with_final_newline(void **state)
{
    static const char *const msgs[] = {"hello", "hello\n", "hello\r\n", "hello\r"};
    struct fixture *fx = *state;

    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        assert_int_equal(decode_msg(fx, SL_FORMAT_LINES, msgs[i]), 0);
        assert_int_equal(fx->rec.nfields, 1);
        assert_str(val(fx, 0), "hello");
    }
    assert_int_equal(decode_msg(fx, SL_FORMAT_LINES, "a\nb\n"), 0);
    assert_str(val(fx, 0), "a\nb");
}

/* Issue 6, finding 25: an empty message is skipped as a blank line of a
 * file is, in every format (the Kafka source counts it as dropped). */
static void test_decode_blank_messages(void **state)
{
    (void)state;
    assert_true(sl_decode_blank(SL_FORMAT_LINES, "", 0));
    assert_true(sl_decode_blank(SL_FORMAT_LINES, NULL, 0));
    assert_true(sl_decode_blank(SL_FORMAT_LINES, "\n", 1));
    assert_true(sl_decode_blank(SL_FORMAT_LINES, "\r\n", 2));
    assert_true(sl_decode_blank(SL_FORMAT_LINES, "\r", 1));
    assert_false(sl_decode_blank(SL_FORMAT_LINES, " ", 1));
    assert_false(sl_decode_blank(SL_FORMAT_LINES, "\n\n", 2));
    assert_false(sl_decode_blank(SL_FORMAT_LINES, "x\n", 2));
    for (int fmt = SL_FORMAT_JSON; fmt <= SL_FORMAT_CSV; fmt++) {
        assert_true(sl_decode_blank((enum sl_format)fmt, "", 0));
        assert_true(sl_decode_blank((enum sl_format)fmt, " \t\r\n", 4));
        assert_false(sl_decode_blank((enum sl_format)fmt, " x", 2));
        assert_false(sl_decode_blank((enum sl_format)fmt, ",", 1));
    }
}

/* ==== Out of memory ==== */

static void test_csv_oom_is_clean(void **state)
{
    const char *hdr = "a,b,c";
    const char *row = "\"x\"\"y\",2,z";
    int rc = SL_ENOMEM;

    (void)state;
    for (long n = 1; rc == SL_ENOMEM; n++) {
        struct sl_arena arena;
        struct sl_record rec;
        struct sl_csv_header *h = NULL;
        struct sl_err err;
        sl_arena_init(&arena);
        memset(&rec, 0, sizeof(rec));
        memset(&err, 0, sizeof(err));
        sl_mem_fail_nth(n);
        rc = sl_csv_header_parse(hdr, strlen(hdr), &h, &err);
        if (rc == 0) {
            rc = sl_csv_decode_row(h, row, strlen(row), &rec, &arena, &err);
        }
        sl_mem_fail_nth(0);
        if (rc == SL_ENOMEM) {
            assert_int_equal(err.code, SL_ENOMEM);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(rec.nfields, 3);
            assert_str(&rec.fields[0].val, "x\"y");
        }
        h = sl_csv_header_free(h);
        sl_arena_release(&arena);
        assert_true(n < 100);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_csv_lf_and_crlf_rows),
        T(test_csv_no_final_newline),
        T(test_csv_quoted_newline_is_one_row),
        T(test_csv_complete_prefix_cuts_at_last_boundary),
        T(test_csv_complete_prefix_block_ends_inside_quotes),
        T(test_csv_complete_prefix_quote_across_boundary),
        T(test_csv_complete_prefix_stops_before_long_row_h2),
        T(test_csv_next_row_open_quote_has_no_terminator_h2),
        T(test_csv_stray_quote_does_not_swallow_rows),
        T(test_csv_blank_lines),
        T(test_csv_block_walk_counts_lines),
        T(test_csv_numbers_vs_text),
        T(test_csv_decimal_slow_path_is_exact),
        T(test_csv_quoted_field_is_text),
        T(test_csv_escaped_quotes),
        T(test_csv_empty_field_is_null_quoted_is_empty_string),
        T(test_csv_values_are_verbatim),
        T(test_csv_zero_copy),
        T(test_csv_wrong_column_count),
        T(test_csv_wrong_column_count_one_field),
        T(test_csv_stray_quote_is_malformed),
        T(test_csv_invalid_utf8),
        T(test_csv_header_names_verbatim),
        T(test_csv_header_outlives_row),
        T(test_csv_header_errors),
        T(test_csv_single_column),
        T(test_decode_csv_message_with_final_newline),
        T(test_decode_lines_message_with_final_newline),
        T(test_decode_blank_messages),
        T(test_csv_oom_is_clean),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
