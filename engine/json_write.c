/* SPDX-License-Identifier: MIT */
/* JSON writers (see json.h): compact JSON for the file and Kafka sinks and
 * for JSON text columns, and the double formatting shared with to_string().
 * Output is valid JSON whatever the input values hold. Thread: any (each
 * call writes only its own buffer). */
#include "json.h"
#include "json_int.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ==== Numbers ==== */

static size_t put_u64(uint64_t v, char *out)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        out[i] = tmp[n - 1 - i];
    }
    return n;
}

static size_t put_i64(int64_t i, char *out)
{
    if (i < 0) {
        out[0] = '-';
        return 1 + put_u64(0 - (uint64_t)i, out + 1);
    }
    return put_u64((uint64_t)i, out);
}

#if FLT_EVAL_METHOD == 0
static const double pow10_exact[18] = {
    1e0, 1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
    1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
};

/* Writes m / 10^k in positional notation, always with a '.'. */
static size_t put_fixed(uint64_t m, int k, char *out)
{
    char digits[20];
    size_t nd = put_u64(m, digits);
    size_t uk = (size_t)k;
    char *o = out;

    if (uk == 0) {
        memcpy(o, digits, nd);
        memcpy(o + nd, ".0", 2);
        return nd + 2;
    }
    if (uk >= nd) {
        *o++ = '0';
        *o++ = '.';
        memset(o, '0', uk - nd);
        o += uk - nd;
        memcpy(o, digits, nd);
        return (size_t)(o - out) + nd;
    }
    memcpy(o, digits, nd - uk);
    o += nd - uk;
    *o++ = '.';
    memcpy(o, digits + nd - uk, uk);
    return (size_t)(o - out) + uk;
}

/* Finds the fewest decimals k with d == m / 10^k (m an integer) and writes
 * that. m / 10^k is one correctly rounded division of exact doubles, as
 * strtod of the text is, so the text reads back as d; keeping m * 2^-50
 * far below one unit makes the nearest integer the right m at every k, so
 * the first k that works gives the shortest text. Returns 0 when d is
 * outside that range (the caller then uses printf). */
static size_t format_fixed(double d, char *out)
{
    if (d < 1e-5 || d >= 0x1p50) {
        return 0;
    }
    for (int k = 0; k < 18; k++) {
        double s = d * pow10_exact[k];
        if (s >= 0x1p50) {
            break;
        }
        double m = floor(s + 0.5);
        if (m / pow10_exact[k] == d) {
            return put_fixed((uint64_t)m, k, out);
        }
    }
    return 0;
}
#else
static size_t format_fixed(double d, char *out)
{
    (void)d;
    (void)out;
    return 0; /* excess precision would break the exactness argument */
}
#endif

/* Writes the shortest %g text of d (> 0) that reads back as d. For normal
 * doubles, any decimal of up to DBL_DIG digits survives the round trip, so
 * when a 15-digit form works it is the shortest (%g drops trailing zeros);
 * subnormals have fewer digits of precision and search from 1. */
static size_t format_general(double d, char *out)
{
    locale_t loc = sl__json_c_locale();
    locale_t old = loc != (locale_t)0 ? uselocale(loc) : (locale_t)0;
    int prec = d < DBL_MIN ? 1 : DBL_DIG;
    int n = 0;

    for (; prec <= 17; prec++) {
        n = snprintf(out, 32, "%.*g", prec, d);
        if (prec == 17 || sl__json_strtod(out, NULL) == d) {
            break;
        }
    }
    if (old != (locale_t)0) {
        (void)uselocale(old);
    }
    if (strpbrk(out, ".e") == NULL) {
        memcpy(out + n, ".0", 3); /* keeps the type: 100.0, not 100 */
        n += 2;
    }
    return (size_t)n;
}

size_t sl_json_format_double(double d, char *out)
{
    char *o = out;
    size_t n;

    if (!isfinite(d)) {
        memcpy(out, "null", 5);
        return 4;
    }
    if (signbit(d)) {
        *o++ = '-';
        d = -d;
    }
    if (d == 0) {
        memcpy(o, "0.0", 4);
        return (size_t)(o - out) + 3;
    }
    n = format_fixed(d, o);
    if (n == 0) {
        n = format_general(d, o);
    }
    o[n] = '\0';
    return (size_t)(o - out) + n;
}

/* ==== Strings and bytes ==== */

static int put_escape(struct sl_buf *buf, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

    switch (c) {
    case '"':
        return sl_buf_append(buf, "\\\"", 2);
    case '\\':
        return sl_buf_append(buf, "\\\\", 2);
    case '\b':
        return sl_buf_append(buf, "\\b", 2);
    case '\f':
        return sl_buf_append(buf, "\\f", 2);
    case '\n':
        return sl_buf_append(buf, "\\n", 2);
    case '\r':
        return sl_buf_append(buf, "\\r", 2);
    case '\t':
        return sl_buf_append(buf, "\\t", 2);
    default:
        break;
    }
    if (c >= 0x80) {
        return sl_buf_append(buf, "\xEF\xBF\xBD", 3); /* an invalid byte: U+FFFD */
    }
    return sl_buf_append(buf, e, sizeof(e));
}

/* Appends the escaped text of the characters that start in [p, stop) of a
 * string ending at end: a UTF-8 sequence that starts before stop is read
 * whole, against end, so cutting a string anywhere gives the same text.
 * Returns where it stopped (stop, or the end of that sequence), or NULL on
 * SL_ENOMEM. Inlined: it is the writers' inner loop, and a call per string
 * cost 1% of a generator-to-file run. */
static inline __attribute__((always_inline)) const unsigned char *escape_span(
    struct sl_buf *buf, const unsigned char *p, const unsigned char *stop, const unsigned char *end)
{
    const unsigned char *run = p; /* bytes that pass through as they are */

    while (p < stop) {
        unsigned char c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            p++;
            continue;
        }
        size_t n = c >= 0x80 ? sl__utf8_seq_len(p, end) : 0;
        if (n != 0) {
            p += n;
            continue;
        }
        if (sl_buf_append(buf, run, (size_t)(p - run)) != 0 || put_escape(buf, c) != 0) {
            return NULL;
        }
        run = ++p;
    }
    return sl_buf_append(buf, run, (size_t)(p - run)) == 0 ? p : NULL;
}

int sl_json_write_string(struct sl_buf *buf, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;

    if (sl_buf_putc(buf, '"') != 0 || escape_span(buf, p, p + len, p + len) == NULL) {
        return SL_ENOMEM;
    }
    return sl_buf_putc(buf, '"');
}

/* Appends len bytes as base64, padded when len is not a multiple of 3. */
static int append_base64(struct sl_buf *buf, const unsigned char *p, size_t len)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t out_len = (len + 2) / 3 * 4;

    if (sl_buf_reserve(buf, out_len) != 0) {
        return SL_ENOMEM;
    }
    char *o = buf->data + buf->len;
    for (; len >= 3; p += 3, len -= 3) {
        uint32_t v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        *o++ = b64[v >> 18];
        *o++ = b64[v >> 12 & 63];
        *o++ = b64[v >> 6 & 63];
        *o++ = b64[v & 63];
    }
    if (len > 0) {
        uint32_t v = (uint32_t)p[0] << 16 | (len == 2 ? (uint32_t)p[1] << 8 : 0);
        *o++ = b64[v >> 18];
        *o++ = b64[v >> 12 & 63];
        *o++ = len == 2 ? b64[v >> 6 & 63] : '=';
        *o++ = '=';
    }
    buf->len += out_len;
    buf->data[buf->len] = '\0';
    return 0;
}

static int write_base64(struct sl_buf *buf, const unsigned char *p, size_t len)
{
    if (sl_buf_putc(buf, '"') != 0 || append_base64(buf, p, len) != 0) {
        return SL_ENOMEM;
    }
    return sl_buf_putc(buf, '"');
}

/* ==== Values and records ==== */

int sl_json_write_value(struct sl_buf *buf, const struct sl_value *v)
{
    char tmp[32];

    switch (v->type) {
    case SL_TYPE_BOOL:
        return v->u.b ? sl_buf_append(buf, "true", 4) : sl_buf_append(buf, "false", 5);
    case SL_TYPE_INT:
        return sl_buf_append(buf, tmp, put_i64(v->u.i, tmp));
    case SL_TYPE_DOUBLE:
        return sl_buf_append(buf, tmp, sl_json_format_double(v->u.d, tmp));
    case SL_TYPE_STR:
        return sl_json_write_string(buf, v->u.s, v->len);
    case SL_TYPE_BYTES:
        return write_base64(buf, (const unsigned char *)v->u.s, v->len);
    case SL_TYPE_ARRAY:
    case SL_TYPE_OBJECT:
        if (v->len > 0) {
            return sl_buf_append(buf, v->u.s, v->len);
        }
        break; /* no text: not a value, written as null */
    default:
        break;
    }
    return sl_buf_append(buf, "null", 4);
}

int sl_json_write_record(struct sl_buf *buf, const struct sl_record *rec)
{
    if (sl_buf_putc(buf, '{') != 0) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < rec->nfields; i++) {
        const struct sl_field *f = &rec->fields[i];
        if ((i > 0 && sl_buf_putc(buf, ',') != 0) ||
            sl_json_write_string(buf, f->name, f->name_len) != 0 || sl_buf_putc(buf, ':') != 0 ||
            sl_json_write_value(buf, &f->val) != 0) {
            return SL_ENOMEM;
        }
    }
    return sl_buf_putc(buf, '}');
}

/* ==== Writing in pieces (sl_json_out) ==== */

/* A record of more than a piece of input bytes is written a field at a
 * time, and its names and values longer than a piece a piece at a time;
 * shorter ones by the writers above. A piece makes at most 6 times its
 * size of text (escapes); between two looks at the buffer's size the
 * writers add at most the end of one piece, a field's punctuation and the
 * start of the next (or a short value), or a whole short record: out's buf
 * stays below chunk_bytes + 12 pieces + 64 bytes, under twice chunk_bytes. */
static size_t piece_of(const struct sl_json_out *out)
{
    return out->chunk_bytes / 16 > 16 ? out->chunk_bytes / 16 : 16;
}

/* Hands out's text to its flush once it holds chunk_bytes or more. */
static int flush_full(struct sl_json_out *out)
{
    if (out->buf->len < out->chunk_bytes) {
        return 0;
    }
    int rc = out->flush(out->arg, out->buf->data, out->buf->len);
    if (rc == 0) {
        sl_buf_reset(out->buf);
    }
    return rc;
}

static int out_string(struct sl_json_out *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + len;
    size_t piece = piece_of(out);
    int rc = 0;

    if (len <= piece) {
        return sl_json_write_string(out->buf, s, len);
    }
    if (sl_buf_putc(out->buf, '"') != 0) {
        return SL_ENOMEM;
    }
    while (rc == 0 && p < end) {
        p = escape_span(out->buf, p, (size_t)(end - p) > piece ? p + piece : end, end);
        rc = p == NULL ? SL_ENOMEM : flush_full(out);
    }
    return rc != 0 ? rc : sl_buf_putc(out->buf, '"');
}

/* Base64 in pieces of a multiple of 3 bytes: only the last may be padded. */
static int out_base64(struct sl_json_out *out, const unsigned char *p, size_t len)
{
    size_t piece = piece_of(out) / 3 * 3;
    int rc = sl_buf_putc(out->buf, '"');

    while (rc == 0 && len > 0) {
        size_t n = len > piece ? piece : len;
        rc = append_base64(out->buf, p, n);
        rc = rc != 0 ? rc : flush_full(out);
        p += n;
        len -= n;
    }
    return rc != 0 ? rc : sl_buf_putc(out->buf, '"');
}

/* JSON text (an array or object value), copied as it is. */
static int out_raw(struct sl_json_out *out, const char *s, size_t len)
{
    size_t piece = piece_of(out);
    int rc = 0;

    while (rc == 0 && len > 0) {
        size_t n = len > piece ? piece : len;
        rc = sl_buf_append(out->buf, s, n);
        rc = rc != 0 ? rc : flush_full(out);
        s += n;
        len -= n;
    }
    return rc;
}

static int out_value(struct sl_json_out *out, const struct sl_value *v)
{
    bool long_text = v->len > piece_of(out);

    switch (v->type) {
    case SL_TYPE_STR:
        return long_text ? out_string(out, v->u.s, v->len) : sl_json_write_value(out->buf, v);
    case SL_TYPE_BYTES:
        return long_text ? out_base64(out, (const unsigned char *)v->u.s, v->len)
                         : sl_json_write_value(out->buf, v);
    case SL_TYPE_ARRAY:
    case SL_TYPE_OBJECT:
        return long_text ? out_raw(out, v->u.s, v->len) : sl_json_write_value(out->buf, v);
    default:
        return sl_json_write_value(out->buf, v); /* no text of its own */
    }
}

/* An upper bound of the input bytes rec's text is made of (names, text
 * values, and 32 for each field's punctuation and number), counted up to
 * just past limit. */
static size_t record_bytes(const struct sl_record *rec, size_t limit)
{
    size_t bytes = 0;

    for (uint32_t i = 0; i < rec->nfields && bytes <= limit; i++) {
        const struct sl_field *f = &rec->fields[i];
        /* STR, BYTES, ARRAY and OBJECT, the types with text, come last. */
        bytes += f->name_len + 32u + (f->val.type >= SL_TYPE_STR ? f->val.len : 0);
    }
    return bytes;
}

int sl_json_out_record(struct sl_json_out *out, const struct sl_record *rec)
{
    struct sl_buf *buf = out->buf;

    /* Most records are short: written whole, they make at most 6 pieces of
     * text, and the caller looks at the size after each record. */
    if (record_bytes(rec, piece_of(out)) <= piece_of(out)) {
        return sl_json_write_record(buf, rec);
    }
    int rc = sl_buf_putc(buf, '{');
    for (uint32_t i = 0; i < rec->nfields && rc == 0; i++) {
        const struct sl_field *f = &rec->fields[i];
        rc = i > 0 ? sl_buf_putc(buf, ',') : 0;
        rc = rc != 0 ? rc : out_string(out, f->name, f->name_len);
        rc = rc != 0 ? rc : sl_buf_putc(buf, ':');
        rc = rc != 0 ? rc : out_value(out, &f->val);
        rc = rc != 0 ? rc : flush_full(out);
    }
    return rc != 0 ? rc : sl_buf_putc(buf, '}');
}
