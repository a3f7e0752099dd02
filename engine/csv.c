/* SPDX-License-Identifier: MIT */
/* RFC 4180 CSV decoder (see csv.h): row splitting, header parsing, row
 * decoding and the plain-decimal number rule. Stateless apart from a C
 * locale created once for strtod_l; reentrant, any thread. */
#include "csv.h"

#include "mem.h"

#include <locale.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define CSV_DELIM ','
#define CSV_QUOTE '"'

/* How far into the current row the splitter is; the same machine is used for
 * finding boundaries and splitting rows, so both always agree. */
enum csv_state {
    CSV_FIELD_START, /* at the first byte of a field: a quote opens it */
    CSV_UNQUOTED,    /* inside an unquoted field: quotes are literal bytes */
    CSV_QUOTED,      /* inside a quoted field: line breaks are data */
    CSV_QUOTE_SEEN,  /* a quote inside a quoted field: "" escape or the close */
};

/* ==== UTF-8 ==== */

/* TODO: replace by sl_utf8_valid() from json.c once it exists. Rejects
 * overlongs, surrogates, code points above U+10FFFF and truncated
 * sequences. */
static bool csv_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + len;

    while (p < end) {
        uint64_t w;
        if (end - p >= 8) {
            memcpy(&w, p, sizeof(w));
            if ((w & 0x8080808080808080ull) == 0) {
                p += 8;
                continue;
            }
        }
        unsigned c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        unsigned lo = 0x80;
        unsigned hi = 0xBF;
        size_t n;
        if (c < 0xC2 || c > 0xF4) {
            return false; /* continuation, overlong 2-byte lead, or past U+10FFFF */
        }
        if (c < 0xE0) {
            n = 1;
        } else if (c < 0xF0) {
            n = 2;
            lo = c == 0xE0 ? 0xA0 : 0x80; /* overlong */
            hi = c == 0xED ? 0x9F : 0xBF; /* surrogates */
        } else {
            n = 3;
            lo = c == 0xF0 ? 0x90 : 0x80; /* overlong */
            hi = c == 0xF4 ? 0x8F : 0xBF; /* above U+10FFFF */
        }
        if ((size_t)(end - p) <= n || p[1] < lo || p[1] > hi) {
            return false;
        }
        for (size_t i = 2; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80) {
                return false;
            }
        }
        p += n + 1;
    }
    return true;
}

/* ==== Row splitting ==== */

static uint32_t count_lf(const char *p, size_t n)
{
    uint32_t lines = 0;
    const char *end = p + n;

    for (;;) {
        p = memchr(p, '\n', (size_t)(end - p));
        if (p == NULL) {
            return lines;
        }
        lines++;
        p++;
    }
}

/* Runs the row machine over buf from i in state st. Returns the offset of
 * the LF ending the row, or len if the row runs to the end of buf. Adds the
 * line breaks met inside quotes to *lines. */
static size_t scan_row(const char *buf, size_t len, size_t i, enum csv_state st, uint32_t *lines)
{
    for (; i < len; i++) {
        char c = buf[i];
        switch (st) {
        case CSV_FIELD_START:
            if (c == CSV_QUOTE) {
                st = CSV_QUOTED;
            } else if (c == '\n') {
                return i;
            } else if (c != CSV_DELIM) {
                st = CSV_UNQUOTED;
            }
            break;
        case CSV_UNQUOTED:
            if (c == CSV_DELIM) {
                st = CSV_FIELD_START;
            } else if (c == '\n') {
                return i;
            }
            break;
        case CSV_QUOTED: {
            /* Jump to the next quote; only line breaks in between matter. */
            const char *q = memchr(buf + i, CSV_QUOTE, len - i);
            size_t j = q != NULL ? (size_t)(q - buf) : len;
            *lines += count_lf(buf + i, j - i);
            i = j;
            st = CSV_QUOTE_SEEN;
            break;
        }
        case CSV_QUOTE_SEEN:
            if (c == CSV_QUOTE) {
                st = CSV_QUOTED;
            } else if (c == CSV_DELIM) {
                st = CSV_FIELD_START;
            } else if (c == '\n') {
                return i;
            } else {
                st = CSV_UNQUOTED; /* malformed: the decoder reports it */
            }
            break;
        }
    }
    return len;
}

/* Finds the end of the row at the start of buf: returns the offset of its
 * LF, or len if it has none. Fast path: a row without quotes is one memchr
 * for the LF and one for a quote. */
static size_t find_row_end(const char *buf, size_t len, uint32_t *lines)
{
    const char *lf = memchr(buf, '\n', len);
    size_t end = lf != NULL ? (size_t)(lf - buf) : len;
    const char *q = memchr(buf, CSV_QUOTE, end);

    if (q == NULL) {
        return end;
    }
    /* No quote before q, so the machine's state at q is known. */
    size_t i = (size_t)(q - buf);
    enum csv_state st = i == 0 || buf[i - 1] == CSV_DELIM ? CSV_FIELD_START : CSV_UNQUOTED;
    return scan_row(buf, len, i, st, lines);
}

size_t sl_csv_complete_prefix(const char *buf, size_t len, bool at_eof, size_t max_row)
{
    size_t off = 0;

    while (off < len) {
        uint32_t lines = 0;
        size_t end = find_row_end(buf + off, len - off, &lines);
        /* The row's length as sl_csv_next_row gives it: no LF, no CR. */
        size_t row_len = end > 0 && buf[off + end - 1] == '\r' ? end - 1 : end;
        if (row_len > max_row) {
            break;
        }
        if (end == len - off) {
            off = at_eof ? len : off;
            break;
        }
        off += end + 1;
    }
    return off;
}

size_t sl_csv_next_row(const char *buf, size_t len, size_t *ret_row_len, uint32_t *ret_lines)
{
    uint32_t lines = 1;
    size_t end;
    size_t used;

    if (len == 0) {
        *ret_row_len = 0;
        *ret_lines = 0;
        return 0;
    }
    end = find_row_end(buf, len, &lines);
    used = end < len ? end + 1 : len;
    if (end > 0 && buf[end - 1] == '\r') {
        end--;
    }
    *ret_row_len = end;
    *ret_lines = lines;
    return used;
}

bool sl_csv_row_blank(const char *row, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (row[i] != ' ' && row[i] != '\t' && row[i] != '\r') {
            return false;
        }
    }
    return true;
}

/* ==== Fields ==== */

enum csv_field_err {
    CSV_OK,
    CSV_ERR_STRAY_QUOTE,  /* quote inside an unquoted field */
    CSV_ERR_AFTER_QUOTE,  /* bytes between a closing quote and the delimiter */
    CSV_ERR_UNTERMINATED, /* quoted field without its closing quote */
    CSV_ERR_LINE_BREAK,   /* LF outside quotes: the caller passed several rows */
    CSV_ERR_TOO_LONG,     /* does not fit a value's uint32_t length */
};

/* One field of a row. For quoted fields s/len are the bytes between the
 * quotes, "" pairs not yet collapsed. */
struct csv_tok {
    const char *s;
    size_t len;
    bool quoted;
    bool escaped; /* quoted and holds "" pairs */
};

/* Reads the field starting at *pos (at most len) into tok and moves *pos to
 * the delimiter after it, or to len. Returns CSV_OK or the error. */
static enum csv_field_err next_field(const char *row, size_t len, size_t *pos, struct csv_tok *tok)
{
    size_t i = *pos;

    tok->escaped = false;
    if (i < len && row[i] == CSV_QUOTE) {
        size_t start = ++i;
        for (;;) {
            const char *q = memchr(row + i, CSV_QUOTE, len - i);
            if (q == NULL) {
                return CSV_ERR_UNTERMINATED;
            }
            i = (size_t)(q - row) + 1;
            if (i < len && row[i] == CSV_QUOTE) {
                tok->escaped = true;
                i++;
                continue;
            }
            break;
        }
        if (i < len && row[i] != CSV_DELIM) {
            return CSV_ERR_AFTER_QUOTE;
        }
        tok->s = row + start;
        tok->len = i - 1 - start;
        tok->quoted = true;
    } else {
        size_t start = i;
        for (; i < len; i++) {
            unsigned char c = (unsigned char)row[i];
            /* Most bytes (digits, letters, '.', '-', UTF-8) sort above ','. */
            if (c > CSV_DELIM) {
                continue;
            }
            if (c == CSV_DELIM) {
                break;
            }
            if (c == CSV_QUOTE) {
                return CSV_ERR_STRAY_QUOTE;
            }
            if (c == '\n') {
                return CSV_ERR_LINE_BREAK;
            }
        }
        tok->s = row + start;
        tok->len = i - start;
        tok->quoted = false;
    }
    if (tok->len > UINT32_MAX) {
        return CSV_ERR_TOO_LONG;
    }
    *pos = i;
    return CSV_OK;
}

/* Collapses the "" pairs of tok into dst (at least tok->len bytes); returns
 * the length written. */
static size_t unescape(const struct csv_tok *tok, char *dst)
{
    size_t n = 0;

    for (size_t i = 0; i < tok->len; i++) {
        dst[n++] = tok->s[i];
        if (tok->s[i] == CSV_QUOTE) {
            i++; /* skip the second quote of the pair */
        }
    }
    return n;
}

static int field_error(struct sl_err *err, enum csv_field_err fe, const char *what, size_t idx)
{
    switch (fe) {
    case CSV_ERR_STRAY_QUOTE:
        return sl_err_set(err, SL_EDATA, "quote inside unquoted %s %zu", what, idx);
    case CSV_ERR_AFTER_QUOTE:
        return sl_err_set(err, SL_EDATA, "unexpected character after closing quote in %s %zu", what,
                          idx);
    case CSV_ERR_UNTERMINATED:
        return sl_err_set(err, SL_EDATA, "unterminated quoted %s %zu", what, idx);
    case CSV_ERR_LINE_BREAK:
        return sl_err_set(err, SL_EDATA, "line break outside quotes in %s %zu", what, idx);
    case CSV_ERR_TOO_LONG:
        return sl_err_set(err, SL_EDATA, "%s %zu is longer than 4 GiB", what, idx);
    case CSV_OK:
        break;
    }
    return sl_err_set(err, SL_EDATA, "malformed %s %zu", what, idx);
}

/* ==== Header ==== */

struct csv_name {
    const char *s; /* into the header's text, NUL-terminated */
    uint32_t len;
};

struct sl_csv_header {
    size_t count;           /* columns, >= 1 */
    struct csv_name *names; /* count entries, in the same allocation */
    char *text;             /* the names' bytes, each followed by a NUL */
};

/* Counts the columns of a header row and checks its syntax and UTF-8. */
static int header_count(const char *row, size_t len, size_t *ret_count, struct sl_err *err)
{
    bool utf8_ok = csv_utf8_valid(row, len);
    size_t pos = 0;
    size_t count = 0;
    struct csv_tok tok;

    for (;;) {
        enum csv_field_err fe = next_field(row, len, &pos, &tok);
        count++;
        if (fe != CSV_OK) {
            return field_error(err, fe, "column name", count);
        }
        if (!utf8_ok && !csv_utf8_valid(tok.s, tok.len)) {
            return sl_err_set(err, SL_EDATA, "invalid UTF-8 in column name %zu", count);
        }
        if (tok.len == 0) {
            return sl_err_set(err, SL_EDATA, "empty column name (column %zu)", count);
        }
        if (pos == len) {
            break;
        }
        pos++;
    }
    *ret_count = count;
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    const struct csv_name *x = a;
    const struct csv_name *y = b;

    if (x->len != y->len) {
        return x->len < y->len ? -1 : 1;
    }
    return memcmp(x->s, y->s, x->len);
}

/* Sorts a copy of the names to find duplicates in O(n log n). */
static int header_check_dups(const struct sl_csv_header *h, struct sl_err *err)
{
    struct csv_name *sorted = sl_malloc(h->count * sizeof(*sorted));
    int rc = 0;

    if (sorted == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    memcpy(sorted, h->names, h->count * sizeof(*sorted));
    qsort(sorted, h->count, sizeof(*sorted), name_cmp);
    for (size_t i = 1; i < h->count; i++) {
        if (name_cmp(&sorted[i - 1], &sorted[i]) == 0) {
            int shown = sorted[i].len > 64 ? 64 : (int)sorted[i].len;
            rc = sl_err_set(err, SL_EDATA, "duplicate column name %.*s%s", shown, sorted[i].s,
                            sorted[i].len > 64 ? "..." : "");
            break;
        }
    }
    sl_free(sorted);
    return rc;
}

int sl_csv_header_parse(const char *row, size_t len, struct sl_csv_header **ret, struct sl_err *err)
{
    struct sl_csv_header *h;
    size_t count = 0;
    size_t pos = 0;
    char *out;
    int rc = header_count(row, len, &count, err);

    if (rc != 0) {
        return rc;
    }
    /* One block: the struct, the name array, then the unescaped names with
     * a NUL each (never longer than the row plus count bytes). */
    h = sl_malloc(sizeof(*h) + count * sizeof(struct csv_name) + len + count);
    if (h == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    h->count = count;
    h->names = (struct csv_name *)(h + 1);
    h->text = (char *)(h->names + count);
    out = h->text;
    for (size_t i = 0; i < count; i++) {
        struct csv_tok tok;
        (void)next_field(row, len, &pos, &tok); /* header_count validated it */
        size_t n = tok.escaped ? unescape(&tok, out) : tok.len;
        if (!tok.escaped) {
            memcpy(out, tok.s, n);
        }
        out[n] = '\0';
        h->names[i].s = out;
        h->names[i].len = (uint32_t)n;
        out += n + 1;
        pos++;
    }
    rc = header_check_dups(h, err);
    if (rc != 0) {
        sl_free(h);
        return rc;
    }
    *ret = h;
    return 0;
}

struct sl_csv_header *sl_csv_header_free(struct sl_csv_header *h)
{
    sl_free(h);
    return NULL;
}

size_t sl_csv_header_count(const struct sl_csv_header *h)
{
    return h->count;
}

const char *sl_csv_header_name(const struct sl_csv_header *h, size_t i, uint32_t *ret_len)
{
    SL_ASSERT(i < h->count);
    if (ret_len != NULL) {
        *ret_len = h->names[i].len;
    }
    return h->names[i].s;
}

/* ==== Rows ==== */

/* Turns a field token into a value; SL_ENOMEM only. */
static int tok_value(const struct csv_tok *tok, struct sl_arena *arena, struct sl_value *ret)
{
    if (tok->quoted) {
        if (!tok->escaped) {
            *ret = sl_value_str(tok->s, (uint32_t)tok->len);
            return 0;
        }
        char *dst = sl_arena_alloc(arena, tok->len);
        if (dst == NULL) {
            return SL_ENOMEM;
        }
        *ret = sl_value_str(dst, (uint32_t)unescape(tok, dst));
        return 0;
    }
    if (tok->len == 0) {
        *ret = sl_value_null();
        return 0;
    }
    char c = tok->s[0];
    if ((c >= '0' && c <= '9') || c == '-') {
        if (sl_csv_parse_number(tok->s, tok->len, ret)) {
            return 0;
        }
    }
    *ret = sl_value_str(tok->s, (uint32_t)tok->len);
    return 0;
}

int sl_csv_decode_row(const struct sl_csv_header *h,
                      const char *row,
                      size_t len,
                      struct sl_record *rec,
                      struct sl_arena *arena,
                      struct sl_err *err)
{
    /* One check of the whole row is enough when it passes (delimiters and
     * quotes are ASCII); fields are checked one by one only to name the
     * culprit. */
    bool utf8_ok = csv_utf8_valid(row, len);
    size_t pos = 0;
    size_t idx = 0;

    SL_ASSERT(rec->nfields == 0);
    if (rec->cap < h->count) {
        /* Size the field array once instead of growing it by doubling. */
        struct sl_field *fields = sl_arena_alloc(arena, h->count * sizeof(*fields));
        if (fields == NULL) {
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
        rec->fields = fields;
        rec->cap = (uint32_t)h->count;
    }
    for (;;) {
        struct csv_tok tok;
        enum csv_field_err fe = next_field(row, len, &pos, &tok);
        idx++;
        if (fe != CSV_OK) {
            return field_error(err, fe, "field", idx);
        }
        if (!utf8_ok && !csv_utf8_valid(tok.s, tok.len)) {
            return sl_err_set(err, SL_EDATA, "invalid UTF-8 in field %zu", idx);
        }
        if (idx <= h->count) {
            struct sl_value val;
            const struct csv_name *name = &h->names[idx - 1];
            if (tok_value(&tok, arena, &val) != 0 ||
                sl_record_append(rec, arena, name->s, name->len, val) != 0) {
                return sl_err_set(err, SL_ENOMEM, "out of memory");
            }
        }
        if (pos == len) {
            break;
        }
        pos++;
    }
    if (idx != h->count) {
        return sl_err_set(err, SL_EDATA, "row has %zu field%s, the header has %zu", idx,
                          idx == 1 ? "" : "s", h->count);
    }
    return 0;
}

/* ==== Numbers ==== */

/* The C locale for strtod_l, created on first use and kept for the
 * process's life. Not pthread_once: <pthread.h> pulls in <sched.h>, which
 * engine/sched.h shadows on the engine include path. */
static _Atomic(locale_t) c_locale;

static locale_t c_locale_get(void)
{
    /* Acquire pairs with the release of the winning exchange below, so the
     * locale object is fully built before another thread uses it. */
    locale_t loc = atomic_load_explicit(&c_locale, memory_order_acquire);
    locale_t fresh;

    if (loc != (locale_t)0) {
        return loc;
    }
    fresh = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (fresh == (locale_t)0) {
        return fresh;
    }
    if (atomic_compare_exchange_strong_explicit(&c_locale, &loc, fresh, memory_order_acq_rel,
                                                memory_order_acquire)) {
        return fresh;
    }
    freelocale(fresh); /* another thread won the race; use its locale */
    return loc;
}

/* Correctly rounded conversion of a validated decimal through strtod_l in
 * the C locale (the process locale may use a decimal comma). */
static bool decimal_slow(const char *s, size_t len, double *ret)
{
    locale_t loc = c_locale_get();
    char small[128];
    char *buf = small;
    double d;

    if (loc == (locale_t)0) {
        return false;
    }
    if (len >= sizeof(small)) {
        buf = sl_malloc(len + 1);
        if (buf == NULL) {
            return false;
        }
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    d = strtod_l(buf, NULL, loc);
    if (buf != small) {
        sl_free(buf);
    }
    if (isinf(d)) {
        return false;
    }
    *ret = d;
    return true;
}

/* Reads digits from s[*i] on, accumulating into *mant; sets *overflow when
 * mant no longer fits. Returns how many digits were read. */
static size_t read_digits(const char *s, size_t len, size_t *i, uint64_t *mant, bool *overflow)
{
    size_t start = *i;
    size_t j = start;

    for (; j < len && s[j] >= '0' && s[j] <= '9'; j++) {
        unsigned d = (unsigned)(s[j] - '0');
        if (*mant > (UINT64_MAX - d) / 10) {
            *overflow = true;
        } else {
            *mant = *mant * 10 + d;
        }
    }
    *i = j;
    return j - start;
}

bool sl_csv_parse_number(const char *s, size_t len, struct sl_value *ret)
{
    /* Exact powers of ten: with a mantissa <= 2^53, m / 10^k rounds
     * correctly in one IEEE division (Clinger's fast path). */
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    uint64_t mant = 0;
    bool overflow = false;
    bool neg = false;
    size_t i = 0;
    size_t nint;
    size_t nfrac;
    double d;

    if (i < len && s[i] == '-') {
        neg = true;
        i++;
    }
    nint = read_digits(s, len, &i, &mant, &overflow);
    if (nint == 0 || (nint > 1 && s[i - nint] == '0')) {
        return false; /* no digits, or a leading zero */
    }
    if (i == len) {
        uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        if (overflow || mant > limit) {
            return false;
        }
        /* -(mant - 1) - 1 reaches INT64_MIN without overflowing. */
        *ret = sl_value_int(neg && mant > 0 ? -(int64_t)(mant - 1) - 1 : (int64_t)mant);
        return true;
    }
    if (s[i] != '.') {
        return false;
    }
    i++;
    nfrac = read_digits(s, len, &i, &mant, &overflow);
    if (nfrac == 0 || i != len) {
        return false;
    }
    if (!overflow && mant <= (1ull << 53) && nfrac < sizeof(pow10) / sizeof(pow10[0])) {
        d = (double)mant / pow10[nfrac];
        *ret = sl_value_double(neg ? -d : d);
        return true;
    }
    if (!decimal_slow(s, len, &d)) {
        return false;
    }
    *ret = sl_value_double(d);
    return true;
}
