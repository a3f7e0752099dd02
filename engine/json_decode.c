/* SPDX-License-Identifier: MIT */
/* JSON decoding (see json.h): one validating pass over a line that decodes
 * the top-level object straight into a record, plus nested access on the
 * verbatim text of array and object values. Nothing recurses: nesting below
 * the top object is checked by an explicit state machine over a bit stack,
 * and every step moves forward, so time is linear in the line length.
 * Runs on worker threads (one decoder per thread); nested access on any. */
#include "json.h"
#include "json_int.h"
#include "mem.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* String bodies are scanned 16 bytes at a time with SSE2 (x86-64 baseline),
 * else 8 at a time in a 64-bit word; SL_JSON_NO_SSE2 / SL_JSON_NO_SWAR
 * turn them off (tests of the fallbacks). */
#if defined(__SSE2__) && !defined(SL_JSON_NO_SSE2)
#include <emmintrin.h>
#define JSON_SSE2 1
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ &&                      \
    !defined(SL_JSON_NO_SWAR)
#define JSON_SWAR 1
#endif

#define COLD __attribute__((cold, noinline))
/* For the few hot helpers GCC would otherwise call out of line (measured:
 * about 3% of the decode time). */
#define HOT_INLINE __attribute__((always_inline)) inline

/* Up to this many fields, duplicate keys are found by a scan of the record
 * (guarded by a 64-bit filter); past it, by the decoder's hash table. */
#define DUP_LINEAR_MAX 16
#define DUP_SLOTS_MIN  64

/* One slot of the duplicate-key table; in use when gen is the decoder's. */
struct dup_slot {
    uint32_t gen;  /* line generation that filled the slot */
    uint32_t idx;  /* index of the field in the record */
    uint32_t hash; /* hash of the field name */
};

struct sl_json_decoder {
    uint32_t max_depth;     /* nesting limit, the top object included */
    uint32_t stack_words;   /* capacity of stack in 64-bit words */
    uint64_t *stack;        /* 1 bit per open container below a field: 1 = object */
    struct dup_slot *slots; /* duplicate-key table, power-of-two size */
    uint32_t nslots;        /* 0 until a line has more than DUP_LINEAR_MAX fields */
    uint32_t gen;           /* generation of the current line's slots, never 0 */
    uint64_t seed;          /* hash seed, per decoder (hash flooding) */
};

enum scan_fail {
    FAIL_SYNTAX,     /* "invalid JSON at byte N: what" */
    FAIL_UTF8,       /* "invalid UTF-8 at byte N" */
    FAIL_DEPTH,      /* "nesting deeper than M at byte N" */
    FAIL_TRAILING,   /* "trailing data at byte N" */
    FAIL_NOT_OBJECT, /* "not an object at byte N" */
    FAIL_BOM,        /* "unexpected byte-order mark (U+FEFF) at byte N" */
    FAIL_NOMEM,
};

/* State of one decode or nested access call. */
struct scan {
    const char *base;          /* first byte of the text: offsets count from here */
    const char *end;           /* one past its last byte */
    struct sl_json_decoder *d; /* NULL for nested access (text already validated) */
    struct sl_arena *arena;    /* unescaped strings */
    struct sl_record *rec;     /* the record being filled (decoder only) */
    uint64_t key_filter;       /* bits of the keys seen, while not hashed */
    bool hashed;               /* duplicate keys are tracked in d->slots */
    enum scan_fail fail;       /* set with fail_at when a function returns NULL */
    const char *fail_at;       /* where the error was found */
    const char *fail_what;     /* FAIL_SYNTAX detail, a static string */
};

/* ==== Errors ==== */

COLD static const char *fail(struct scan *sc, const char *at, enum scan_fail kind, const char *what)
{
    sc->fail = kind;
    sc->fail_at = at;
    sc->fail_what = what;
    return NULL;
}

COLD static const char *syntax(struct scan *sc, const char *at, const char *what)
{
    return fail(sc, at, FAIL_SYNTAX, what);
}

COLD static int report(const struct scan *sc, struct sl_err *err)
{
    size_t off = (size_t)(sc->fail_at - sc->base);

    switch (sc->fail) {
    case FAIL_NOMEM:
        return sl_err_set(err, SL_ENOMEM, "out of memory decoding JSON");
    case FAIL_UTF8:
        return sl_err_set(err, SL_EDATA, "invalid UTF-8 at byte %zu", off);
    case FAIL_DEPTH:
        return sl_err_set(err, SL_EDATA, "nesting deeper than %u at byte %zu", sc->d->max_depth,
                          off);
    case FAIL_TRAILING:
        return sl_err_set(err, SL_EDATA, "trailing data at byte %zu", off);
    case FAIL_NOT_OBJECT:
        return sl_err_set(err, SL_EDATA, "not an object at byte %zu", off);
    case FAIL_BOM:
        return sl_err_set(err, SL_EDATA, "unexpected byte-order mark (U+FEFF) at byte %zu", off);
    case FAIL_SYNTAX:
        break;
    }
    return sl_err_set(err, SL_EDATA, "invalid JSON at byte %zu: %s", off,
                      sc->fail_at == sc->end ? "unexpected end of input" : sc->fail_what);
}

/* ==== Lexical helpers ==== */

static inline bool is_digit(char c)
{
    return (unsigned char)(c - '0') < 10;
}

static inline const char *skip_ws(const char *p, const char *end)
{
    /* Every byte that may start or end a token is above ' ', so compact
     * JSON costs one comparison here. */
    while (p < end && (unsigned char)*p <= ' ' &&
           (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

static inline bool str_special(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

/* Returns the first byte in [p, end) that needs a closer look inside a
 * string body ('"', '\\', a control character, non-ASCII), or end; sets
 * *ret_quote when it is a '"' (the common case: the string ends there). */
static inline const char *find_special(const char *p, const char *end, bool *ret_quote)
{
#if defined(JSON_SSE2)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(' ');

    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* Signed compare: bytes >= 0x80 are negative, so "< ' '" catches
         * control characters and non-ASCII at once. */
        unsigned q = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote));
        unsigned m = q | (unsigned)_mm_movemask_epi8(
                             _mm_or_si128(_mm_cmpeq_epi8(v, bslash), _mm_cmplt_epi8(v, space)));
        if (m != 0) {
            *ret_quote = (m & (0u - m) & q) != 0;
            return p + __builtin_ctz(m);
        }
        p += 16;
    }
#elif defined(JSON_SWAR)
    const uint64_t ones = 0x0101010101010101ULL;
    const uint64_t high = 0x8080808080808080ULL;

    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t q = w ^ (ones * '"');
        uint64_t b = w ^ (ones * '\\');
        /* Zero-byte and less-than tricks: a borrow only flags bytes above a
         * true hit, so the lowest flagged byte is exact. */
        uint64_t t = ((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w;
        t &= high;
        if (t != 0) {
            p += __builtin_ctzll(t) >> 3;
            *ret_quote = *p == '"';
            return p;
        }
        p += 8;
    }
#endif
    while (p < end && !str_special((unsigned char)*p)) {
        p++;
    }
    *ret_quote = p < end && *p == '"';
    return p;
}

/* Hex digit values plus one; 0 = not a hex digit. */
static const uint8_t hex_plus1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/* Value of the 4 hex digits at p (end - p >= 4), or -1. */
static inline long hex4(const char *p)
{
    unsigned a = hex_plus1[(unsigned char)p[0]];
    unsigned b = hex_plus1[(unsigned char)p[1]];
    unsigned c = hex_plus1[(unsigned char)p[2]];
    unsigned e = hex_plus1[(unsigned char)p[3]];

    if (a == 0 || b == 0 || c == 0 || e == 0) {
        return -1;
    }
    return (long)((a - 1) << 12 | (b - 1) << 8 | (c - 1) << 4 | (e - 1));
}

static inline bool is_high_surrogate(long cp)
{
    return cp >= 0xD800 && cp <= 0xDBFF;
}

static inline bool is_low_surrogate(long cp)
{
    return cp >= 0xDC00 && cp <= 0xDFFF;
}

/* ==== Strings ==== */

/* p is at a backslash inside a string body. Returns the byte after the
 * escape (a surrogate pair is one escape), or NULL. */
static const char *scan_escape(struct scan *sc, const char *p)
{
    const char *end = sc->end;

    if (end - p < 2) {
        return syntax(sc, end, "unterminated string");
    }
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return p + 2;
    case 'u':
        break;
    default:
        return syntax(sc, p, "invalid escape");
    }
    long cp = end - p >= 6 ? hex4(p + 2) : -1;
    if (cp < 0) {
        return syntax(sc, p, "invalid \\u escape");
    }
    if (!is_high_surrogate(cp)) {
        return is_low_surrogate(cp) ? syntax(sc, p, "unpaired surrogate escape") : p + 6;
    }
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || !is_low_surrogate(hex4(p + 8))) {
        return syntax(sc, p, "unpaired surrogate escape");
    }
    return p + 12;
}

/* p is just past an opening quote. Validates the string body (escapes,
 * UTF-8, no raw control characters) and returns its closing quote, setting
 * *ret_esc when the body holds escapes; NULL on error. */
static HOT_INLINE const char *scan_string(struct scan *sc, const char *p, bool *ret_esc)
{
    const char *end = sc->end;
    const char *open = p - 1;
    bool esc = false;

    for (;;) {
        bool quote;
        p = find_special(p, end, &quote);
        if (quote) {
            *ret_esc = esc;
            return p;
        }
        if (p == end) {
            return syntax(sc, open, "unterminated string");
        }
        unsigned char c = (unsigned char)*p;
        if (c == '\\') {
            esc = true;
            p = scan_escape(sc, p);
            if (p == NULL) {
                return NULL;
            }
        } else if (c < 0x20) {
            return syntax(sc, p, "control character in string");
        } else {
            size_t n = sl__utf8_seq_len((const unsigned char *)p, (const unsigned char *)end);
            if (n == 0) {
                return fail(sc, p, FAIL_UTF8, NULL);
            }
            p += n;
        }
    }
}

static size_t utf8_put(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unescapes the escape at p, which scan_escape accepted, into out (up to 4
 * bytes); sets *ret_n and returns the byte after the escape. */
static const char *unescape_one(const char *p, char *out, size_t *ret_n)
{
    static const char simple[128] = {
        ['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
        ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t',
    };

    if (p[1] != 'u') {
        out[0] = simple[p[1] & 0x7F];
        *ret_n = 1;
        return p + 2;
    }
    long cp = hex4(p + 2);
    if (!is_high_surrogate(cp)) {
        *ret_n = utf8_put((uint32_t)cp, out);
        return p + 6;
    }
    cp = 0x10000 + ((cp - 0xD800) << 10) + (hex4(p + 8) - 0xDC00);
    *ret_n = utf8_put((uint32_t)cp, out);
    return p + 12;
}

/* Unescapes the validated body [p, end) into out, which has room for
 * end - p bytes (no escape is shorter than what it stands for). Returns the
 * decoded length. */
static size_t unescape(const char *p, const char *end, char *out)
{
    char *o = out;

    for (;;) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        if (bs == NULL) {
            memcpy(o, p, (size_t)(end - p));
            o += end - p;
            return (size_t)(o - out);
        }
        memcpy(o, p, (size_t)(bs - p));
        o += bs - p;
        size_t n;
        p = unescape_one(bs, o, &n);
        o += n;
    }
}

/* p is just past an opening quote: validates the string and returns the
 * byte after its closing quote, with its text in *ret_s / *ret_len: zero
 * copy without escapes, else unescaped into the arena. NULL on error. */
static inline const char *
decode_string(struct scan *sc, const char *p, const char **ret_s, uint32_t *ret_len)
{
    bool esc = false;
    const char *q = scan_string(sc, p, &esc);

    if (q == NULL) {
        return NULL;
    }
    if (!esc) {
        *ret_s = p;
        *ret_len = (uint32_t)(q - p);
        return q + 1;
    }
    char *out = sl_arena_alloc(sc->arena, (size_t)(q - p));
    if (out == NULL) {
        return fail(sc, p, FAIL_NOMEM, NULL);
    }
    *ret_s = out;
    *ret_len = (uint32_t)unescape(p, q, out);
    return q + 1;
}

/* ==== Numbers and literals ==== */

static const double pow10_exact[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;
static locale_t c_locale;

static void c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

locale_t sl__json_c_locale(void)
{
    (void)pthread_once(&c_locale_once, c_locale_init);
    return c_locale;
}

double sl__json_strtod(const char *s, char **endp)
{
    locale_t loc = sl__json_c_locale();

    return loc != (locale_t)0 ? strtod_l(s, endp, loc) : strtod(s, endp);
}

/* Converts the validated number text [s, s + n) with strtod; *ret_ok is
 * false on OOM. */
static double slow_double(const char *s, size_t n, bool *ret_ok)
{
    char small[64];
    char *copy = n < sizeof(small) ? small : sl_malloc(n + 1);
    double v;

    *ret_ok = copy != NULL;
    if (copy == NULL) {
        return 0;
    }
    memcpy(copy, s, n);
    copy[n] = '\0';
    v = sl__json_strtod(copy, NULL);
    if (copy != small) {
        sl_free(copy);
    }
    return v;
}

/* A number as scanned: its value is m * 10^exp10 when exact. */
struct num {
    uint64_t m;  /* the first (up to 19) significant digits */
    long exp10;  /* decimal exponent of m's last digit */
    bool exact;  /* m holds every nonzero digit */
    bool is_int; /* no fraction and no exponent */
};

/* Decodes the validated number text [start, end) scanned as n. */
static const char *number_value(
    struct scan *sc, const char *start, const char *end, const struct num *n, struct sl_value *ret)
{
    bool neg = *start == '-';
    double v;

    if (n->is_int) {
        if (n->exact && n->m <= (uint64_t)INT64_MAX + neg) {
            *ret = sl_value_int(neg && n->m > 0 ? -(int64_t)(n->m - 1) - 1 : (int64_t)n->m);
            return end;
        }
        *ret = sl_value_str(start, (uint32_t)(end - start)); /* outside int64: kept as text */
        return end;
    }
    if (n->m == 0) {
        v = 0.0; /* only zero digits, whatever the exponent */
#if FLT_EVAL_METHOD == 0
    } else if (n->exact && n->m <= (1ULL << 53) && n->exp10 >= -22 && n->exp10 <= 22) {
        /* Clinger's fast path: both operands are exact doubles, so the one
         * rounding of the product or quotient is the correct rounding. */
        v = n->exp10 < 0 ? (double)n->m / pow10_exact[-n->exp10]
                         : (double)n->m * pow10_exact[n->exp10];
#endif
    } else {
        bool ok;
        v = fabs(slow_double(start, (size_t)(end - start), &ok));
        if (!ok) {
            return fail(sc, start, FAIL_NOMEM, NULL);
        }
        if (isinf(v)) {
            *ret = sl_value_str(start, (uint32_t)(end - start)); /* beyond double: text */
            return end;
        }
    }
    *ret = sl_value_double(neg ? -v : v);
    return end;
}

/* p is at '-' or a digit. Validates the number and, when ret is not NULL,
 * decodes it. Returns the byte after it, or NULL. */
static inline const char *scan_number(struct scan *sc, const char *p, struct sl_value *ret)
{
    const char *start = p;
    const char *end = sc->end;
    struct num n = {.exact = true, .is_int = true};
    int nsig = 0; /* digits in n.m, leading zeros excluded */

    if (*p == '-') {
        p++;
    }
    if (p == end || !is_digit(*p)) {
        return syntax(sc, p, "invalid number");
    }
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) {
            return syntax(sc, start, "leading zero in number");
        }
    } else {
        do {
            if (nsig < 19) {
                n.m = n.m * 10 + (uint64_t)(*p - '0');
                nsig++;
            } else {
                n.exact = false;
                n.exp10++;
            }
            p++;
        } while (p < end && is_digit(*p));
    }
    if (p < end && *p == '.') {
        n.is_int = false;
        p++;
        if (p == end || !is_digit(*p)) {
            return syntax(sc, p, "expected digit after '.'");
        }
        do {
            if (nsig < 19) {
                n.m = n.m * 10 + (uint64_t)(*p - '0');
                n.exp10--;
                nsig += n.m != 0;
            } else if (*p != '0') {
                n.exact = false;
            }
            p++;
        } while (p < end && is_digit(*p));
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        n.is_int = false;
        p++;
        bool eneg = p < end && *p == '-';
        if (p < end && (*p == '-' || *p == '+')) {
            p++;
        }
        if (p == end || !is_digit(*p)) {
            return syntax(sc, p, "expected digit in exponent");
        }
        long e = 0;
        do {
            if (e < 1000000) { /* beyond, the value is 0 or infinite anyway */
                e = e * 10 + (*p - '0');
            }
            p++;
        } while (p < end && is_digit(*p));
        n.exp10 += eneg ? -e : e;
    }
    return ret != NULL ? number_value(sc, start, p, &n, ret) : p;
}

/* p is at 't', 'f' or 'n'. ret may be NULL (validation only). */
static inline const char *scan_literal(struct scan *sc, const char *p, struct sl_value *ret)
{
    size_t avail = (size_t)(sc->end - p);
    struct sl_value v;
    size_t n;

    if (*p == 't' && avail >= 4 && memcmp(p, "true", 4) == 0) {
        v = sl_value_bool(true);
        n = 4;
    } else if (*p == 'f' && avail >= 5 && memcmp(p, "false", 5) == 0) {
        v = sl_value_bool(false);
        n = 5;
    } else if (*p == 'n' && avail >= 4 && memcmp(p, "null", 4) == 0) {
        v = sl_value_null();
        n = 4;
    } else {
        return syntax(sc, p, "invalid literal");
    }
    if (ret != NULL) {
        *ret = v;
    }
    return p + n;
}

/* ==== Nested containers ==== */

static bool stack_reserve(struct sl_json_decoder *d, uint32_t idx)
{
    uint32_t words = d->stack_words;

    while ((uint64_t)words * 64 <= idx) {
        words *= 2;
    }
    uint64_t *s = sl_realloc(d->stack, (size_t)words * sizeof(*s));
    if (s == NULL) {
        return false;
    }
    d->stack = s;
    d->stack_words = words;
    return true;
}

/* p is at the '[' or '{' of a value held at nesting level `level` (1 = a
 * field of the top object). Validates the whole value and returns the byte
 * after it, or NULL. The grammar runs as a state machine over the bit
 * stack instead of recursing, so a 100k-deep line costs no stack and stops
 * at the depth limit; gotos between the states are the clearest form. */
static const char *skip_container(struct scan *sc, const char *p, uint32_t level)
{
    struct sl_json_decoder *d = sc->d;
    const char *end = sc->end;
    uint32_t depth = level; /* nesting of the container being read */
    bool in_obj;
    bool esc = false;

open: /* *p is '[' or '{' */
    if (depth >= d->max_depth) {
        return fail(sc, p, FAIL_DEPTH, NULL);
    }
    uint32_t idx = depth - level; /* bit of the container being opened */
    depth++;
    if ((uint64_t)idx >= (uint64_t)d->stack_words * 64 && !stack_reserve(d, idx)) {
        return fail(sc, p, FAIL_NOMEM, NULL);
    }
    in_obj = *p == '{';
    if (in_obj) {
        d->stack[idx / 64] |= 1ULL << (idx % 64);
    } else {
        d->stack[idx / 64] &= ~(1ULL << (idx % 64));
    }
    p = skip_ws(p + 1, end);
    if (p < end && *p == (in_obj ? '}' : ']')) {
        p++;
        goto close;
    }
    if (!in_obj) {
        goto value;
    }

key:
    if (p == end || *p != '"') {
        /* An empty object was handled at open: '}' here follows a comma. */
        return syntax(sc, p, p < end && *p == '}' ? "trailing comma" : "expected string key");
    }
    p = scan_string(sc, p + 1, &esc);
    if (p == NULL) {
        return NULL;
    }
    p = skip_ws(p + 1, end);
    if (p == end || *p != ':') {
        return syntax(sc, p, "expected ':'");
    }
    p = skip_ws(p + 1, end);

value:
    if (p == end) {
        return syntax(sc, p, "expected value");
    }
    switch (*p) {
    case '"':
        p = scan_string(sc, p + 1, &esc);
        p = p != NULL ? p + 1 : NULL;
        break;
    case '[':
    case '{':
        goto open;
    case 't':
    case 'f':
    case 'n':
        p = scan_literal(sc, p, NULL);
        break;
    default:
        if (*p != '-' && !is_digit(*p)) {
            return syntax(sc, p, *p == ']' && !in_obj ? "trailing comma" : "expected value");
        }
        p = scan_number(sc, p, NULL);
        break;
    }
    if (p == NULL) {
        return NULL;
    }

after: /* a value of the container at depth ended */
    p = skip_ws(p, end);
    if (p < end && *p == ',') {
        p = skip_ws(p + 1, end);
        if (in_obj) {
            goto key;
        }
        goto value;
    }
    if (p == end || *p != (in_obj ? '}' : ']')) {
        return syntax(sc, p, in_obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    p++;

close: /* the container at depth ended just before p */
    depth--;
    if (depth == level) {
        return p;
    }
    idx = depth - level - 1;
    in_obj = (d->stack[idx / 64] >> (idx % 64)) & 1;
    goto after;
}

/* Returns the closing quote of the string whose body starts at p, in text
 * that was validated before, or NULL when there is none. */
static const char *string_end_fast(const char *p, const char *end)
{
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (q == NULL) {
            return NULL;
        }
        /* The quote is escaped when an odd run of backslashes precedes it;
         * each run is counted once, so this stays linear. */
        const char *b = q;
        while (b > p && b[-1] == '\\') {
            b--;
        }
        if ((q - b) % 2 == 0) {
            return q;
        }
        p = q + 1;
    }
}

/* Returns the byte after the value starting at p in text that was
 * validated before, or NULL when it is cut short. Containers are matched by
 * counting brackets outside strings; a scalar ends at a delimiter. */
static const char *skip_value_fast(const char *p, const char *end)
{
    const char *start = p;
    size_t depth = 0;

    if (p == end) {
        return NULL;
    }
    if (*p == '"') {
        p = string_end_fast(p + 1, end);
        return p != NULL ? p + 1 : NULL;
    }
    if (*p == '[' || *p == '{') {
        for (; p < end; p++) {
            if (*p == '"') {
                p = string_end_fast(p + 1, end);
                if (p == NULL) {
                    return NULL;
                }
            } else if (*p == '[' || *p == '{') {
                depth++;
            } else if ((*p == ']' || *p == '}') && --depth == 0) {
                return p + 1;
            }
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != ']' && *p != '}' && *p != ' ' && *p != '\t' &&
           *p != '\n' && *p != '\r') {
        p++;
    }
    return p > start ? p : NULL;
}

/* ==== Values ==== */

/* Decodes the value at p (level 1: a field of the top object, or an
 * element of the text being accessed) into *ret; returns the byte after it,
 * or NULL. Containers are validated when decoding a line and only matched
 * in nested access, whose text was validated before. */
static HOT_INLINE const char *parse_value(struct scan *sc, const char *p, struct sl_value *ret)
{
    const char *q;
    const char *s;
    uint32_t len;

    if (p == sc->end) {
        return syntax(sc, p, "expected value");
    }
    switch (*p) {
    case '"':
        q = decode_string(sc, p + 1, &s, &len);
        if (q != NULL) {
            *ret = sl_value_str(s, len);
        }
        return q;
    case 't':
    case 'f':
    case 'n':
        return scan_literal(sc, p, ret);
    case '[':
    case '{':
        q = sc->d != NULL ? skip_container(sc, p, 1) : skip_value_fast(p, sc->end);
        if (q == NULL) {
            return sc->d != NULL ? NULL : syntax(sc, p, "unbalanced container");
        }
        ret->type = *p == '[' ? SL_TYPE_ARRAY : SL_TYPE_OBJECT;
        ret->u.s = p;
        ret->len = (uint32_t)(q - p);
        return q;
    default:
        if (*p == '-' || is_digit(*p)) {
            return scan_number(sc, p, ret);
        }
        return syntax(sc, p, "expected value");
    }
}

/* ==== Duplicate keys ==== */

static uint32_t hash_key(const char *s, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ULL);
    uint64_t w = 0;

    for (; n >= 8; s += 8, n -= 8) {
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 31;
    }
    w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94D049BB133111EBULL;
    h ^= h >> 32;
    h *= 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 29;
    return (uint32_t)h;
}

static bool field_is(const struct sl_field *f, const char *name, uint32_t len)
{
    return f->name_len == len && memcmp(f->name, name, len) == 0;
}

/* Puts field idx of rec into the table (known absent). */
static void slot_insert(struct sl_json_decoder *d, uint32_t hash, uint32_t idx)
{
    uint32_t mask = d->nslots - 1;
    uint32_t i = hash & mask;

    while (d->slots[i].gen == d->gen) {
        i = (i + 1) & mask;
    }
    d->slots[i] = (struct dup_slot){.gen = d->gen, .idx = idx, .hash = hash};
}

/* Empties the table in O(1) by starting a new generation. */
static void table_clear(struct sl_json_decoder *d)
{
    if (++d->gen == 0) {
        memset(d->slots, 0, (size_t)d->nslots * sizeof(*d->slots));
        d->gen = 1;
    }
}

/* Makes sure the table holds the record's fields with room for one more at
 * load <= 1/2: a new line (fresh) starts a generation and inserts the
 * fields seen so far; a table that would get too full is replaced by one
 * twice as large and refilled. */
static int table_prepare(struct scan *sc, bool fresh)
{
    struct sl_json_decoder *d = sc->d;
    const struct sl_record *rec = sc->rec;
    size_t want = d->nslots ? d->nslots : DUP_SLOTS_MIN;

    while (((size_t)rec->nfields + 1) * 2 > want) {
        want *= 2;
    }
    if (want != d->nslots) {
        struct dup_slot *slots = sl_calloc(want, sizeof(*slots));
        if (slots == NULL) {
            return SL_ENOMEM;
        }
        sl_free(d->slots);
        d->slots = slots;
        d->nslots = (uint32_t)want;
        d->gen = 1;
    } else if (fresh) {
        table_clear(d);
    } else {
        return 0;
    }
    for (uint32_t i = 0; i < rec->nfields; i++) {
        const struct sl_field *f = &rec->fields[i];
        slot_insert(d, hash_key(f->name, f->name_len, d->seed), i);
    }
    return 0;
}

/* Appends a field named name with a null value; *ret_val is its value. */
static inline int
append_field(struct scan *sc, const char *name, uint32_t len, struct sl_value **ret_val)
{
    struct sl_record *rec = sc->rec;
    int rc = 0;

    /* Filling spare capacity in place is what sl_record_append does; doing
     * it here saves a call per field (10% of the decode time). */
    if (rec->nfields < rec->cap) {
        struct sl_field *f = &rec->fields[rec->nfields++];
        f->name = name;
        f->name_len = len;
        f->val = sl_value_null();
    } else {
        rc = sl_record_append(rec, sc->arena, name, len, sl_value_null());
    }
    if (rc == 0) {
        *ret_val = &rec->fields[rec->nfields - 1].val;
    }
    return rc;
}

static int
field_slot_hashed(struct scan *sc, const char *name, uint32_t len, struct sl_value **ret_val)
{
    struct sl_json_decoder *d = sc->d;
    struct sl_record *rec = sc->rec;
    uint32_t hash = hash_key(name, len, d->seed);
    int rc = table_prepare(sc, false);

    if (rc != 0) {
        return rc;
    }
    uint32_t mask = d->nslots - 1;
    for (uint32_t i = hash & mask; d->slots[i].gen == d->gen; i = (i + 1) & mask) {
        struct sl_field *f = &rec->fields[d->slots[i].idx];
        if (d->slots[i].hash == hash && field_is(f, name, len)) {
            *ret_val = &f->val;
            return 0;
        }
    }
    rc = append_field(sc, name, len, ret_val);
    if (rc == 0) {
        slot_insert(d, hash, rec->nfields - 1);
    }
    return rc;
}

/* Finds where the value of top-level key name goes: the earlier field of
 * that name (a duplicate replaces its value in place: the last one wins)
 * or a new field at the end. Small records scan their fields, behind a
 * 64-bit filter that lets the common all-distinct case skip the scan;
 * larger ones use the decoder's hash table, so many keys stay linear. The
 * value is decoded in place afterwards. Returns 0 or SL_ENOMEM. */
static inline int
field_slot(struct scan *sc, const char *name, uint32_t len, struct sl_value **ret_val)
{
    struct sl_record *rec = sc->rec;

    if (!sc->hashed) {
        unsigned h =
            len * 7u + (len ? (unsigned char)name[0] + (unsigned char)name[len - 1] * 3u : 0);
        uint64_t bit = 1ULL << (h & 63);
        if (sc->key_filter & bit) {
            for (uint32_t i = 0; i < rec->nfields; i++) {
                if (field_is(&rec->fields[i], name, len)) {
                    *ret_val = &rec->fields[i].val;
                    return 0;
                }
            }
        }
        if (rec->nfields < DUP_LINEAR_MAX) {
            sc->key_filter |= bit;
            return append_field(sc, name, len, ret_val);
        }
        int rc = table_prepare(sc, true);
        if (rc != 0) {
            return rc;
        }
        sc->hashed = true;
    }
    return field_slot_hashed(sc, name, len, ret_val);
}

/* ==== Decoder ==== */

struct sl_json_decoder *sl_json_decoder_new(uint32_t max_depth)
{
    struct sl_json_decoder *d = sl_calloc(1, sizeof(*d));

    if (d == NULL) {
        return NULL;
    }
    d->max_depth = max_depth ? max_depth : SL_JSON_DEFAULT_MAX_DEPTH;
    d->stack_words = 1;
    d->stack = sl_calloc(d->stack_words, sizeof(*d->stack));
    if (d->stack == NULL) {
        return sl_json_decoder_free(d);
    }
    d->gen = 1;
    d->seed = ((uint64_t)(uintptr_t)d * 0x9E3779B97F4A7C15ULL) ^ (uint64_t)time(NULL);
    return d;
}

struct sl_json_decoder *sl_json_decoder_free(struct sl_json_decoder *d)
{
    if (d != NULL) {
        sl_free(d->stack);
        sl_free(d->slots);
        sl_free(d);
    }
    return NULL;
}

/* p is just past the top object's '{': decodes its members into the record
 * and returns the byte after its '}', or NULL. */
static const char *decode_members(struct scan *sc, const char *p)
{
    const char *end = sc->end;
    struct sl_value *val = NULL;
    const char *name = NULL;
    uint32_t name_len = 0;

    p = skip_ws(p, end);
    if (p < end && *p == '}') {
        return p + 1;
    }
    for (;;) {
        if (p == end || *p != '"') {
            return syntax(sc, p, p < end && *p == '}' ? "trailing comma" : "expected string key");
        }
        p = decode_string(sc, p + 1, &name, &name_len);
        if (p == NULL) {
            return NULL;
        }
        p = skip_ws(p, end);
        if (p == end || *p != ':') {
            return syntax(sc, p, "expected ':'");
        }
        if (field_slot(sc, name, name_len, &val) != 0) {
            return fail(sc, p, FAIL_NOMEM, NULL);
        }
        p = parse_value(sc, skip_ws(p + 1, end), val);
        if (p == NULL) {
            return NULL;
        }
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            return p + 1;
        }
        return syntax(sc, p, "expected ',' or '}'");
    }
}

int sl_json_decode_object(struct sl_json_decoder *d,
                          const char *line,
                          size_t len,
                          struct sl_record *rec,
                          struct sl_arena *arena,
                          struct sl_err *err)
{
    struct scan sc = {.base = line, .end = line + len, .d = d, .arena = arena, .rec = rec};
    const char *p;

    /* rec is empty on entry; should it hold fields, the filter sends every
     * key to the scan, so they are still found as duplicates. */
    sc.key_filter = rec->nfields > 0 ? ~0ULL : 0;
    if (len > UINT32_MAX) {
        return sl_err_set(err, SL_EDATA, "line longer than 4 GiB");
    }
    p = skip_ws(line, sc.end);
    if (p == sc.end || *p != '{') {
        /* A byte-order mark is named: "not an object" would puzzle. */
        bool bom = sc.end - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0;
        fail(&sc, p, bom ? FAIL_BOM : FAIL_NOT_OBJECT, NULL);
        return report(&sc, err);
    }
    p = decode_members(&sc, p + 1);
    if (p == NULL) {
        return report(&sc, err);
    }
    p = skip_ws(p, sc.end);
    if (p != sc.end) {
        fail(&sc, p, FAIL_TRAILING, NULL);
        return report(&sc, err);
    }
    return 0;
}

/* ==== Nested access ==== */

/* Walks the members of an array or object text. */
struct walk {
    struct scan sc;
    const char *p;   /* next member, or NULL when done */
    bool obj;        /* walking an object */
    const char *key; /* the current member's raw key (objects) */
    size_t key_len;
    bool key_esc;    /* the raw key holds escapes */
    const char *val; /* the current member's value */
};

static void walk_init(struct walk *w, const char *text, size_t len)
{
    memset(w, 0, sizeof(*w));
    w->sc.base = text;
    w->sc.end = text + len;
}

/* Starts a walk over text, which must be an array (want '['), an object
 * ('{') or either (0). Returns 0, SL_EOF when text is another kind,
 * SL_EDATA when it is too long to be a value. */
static int walk_start(struct walk *w, const char *text, size_t len, char want)
{
    const char *end = text + len;
    const char *p = skip_ws(text, end);

    walk_init(w, text, len);
    if (len > UINT32_MAX) {
        return SL_EDATA;
    }
    if (p == end || (*p != '[' && *p != '{') || (want != 0 && *p != want)) {
        return SL_EOF;
    }
    w->obj = *p == '{';
    p = skip_ws(p + 1, end);
    w->p = p < end && *p == (w->obj ? '}' : ']') ? NULL : p;
    return 0;
}

/* Steps to the next member: returns 1 with key/val set, 0 at the end,
 * SL_EDATA on malformed text. */
static int walk_next(struct walk *w)
{
    const char *end = w->sc.end;
    const char *p = w->p;

    if (p == NULL) {
        return 0;
    }
    if (w->obj) {
        if (p == end || *p != '"') {
            return SL_EDATA;
        }
        const char *q = scan_string(&w->sc, p + 1, &w->key_esc);
        if (q == NULL) {
            return SL_EDATA;
        }
        w->key = p + 1;
        w->key_len = (size_t)(q - p - 1);
        p = skip_ws(q + 1, end);
        if (p == end || *p != ':') {
            return SL_EDATA;
        }
        p = skip_ws(p + 1, end);
    }
    w->val = p;
    p = skip_value_fast(p, end);
    if (p == NULL) {
        return SL_EDATA;
    }
    p = skip_ws(p, end);
    if (p < end && *p == ',') {
        w->p = skip_ws(p + 1, end);
        return 1;
    }
    if (p < end && *p == (w->obj ? '}' : ']')) {
        w->p = NULL;
        return 1;
    }
    return SL_EDATA;
}

/* Compares a validated raw key (escapes allowed) with key. */
static bool key_equals(const char *raw, size_t raw_len, bool esc, const char *key, size_t key_len)
{
    const char *end = raw + raw_len;
    size_t k = 0;

    if (!esc) {
        return raw_len == key_len && memcmp(raw, key, key_len) == 0;
    }
    while (raw < end) {
        char tmp[4];
        size_t n = 1;
        if (*raw == '\\') {
            raw = unescape_one(raw, tmp, &n);
        } else {
            tmp[0] = *raw++;
        }
        if (key_len - k < n || memcmp(key + k, tmp, n) != 0) {
            return false;
        }
        k += n;
    }
    return k == key_len;
}

/* Decodes the member value at p of the walked text into *ret. */
static int walk_value(struct walk *w, const char *p, struct sl_arena *arena, struct sl_value *ret)
{
    struct sl_value v;

    w->sc.arena = arena;
    if (parse_value(&w->sc, p, &v) == NULL) {
        return w->sc.fail == FAIL_NOMEM ? SL_ENOMEM : SL_EDATA;
    }
    *ret = v;
    return 0;
}

int sl_json_object_get(const char *text,
                       size_t len,
                       const char *key,
                       size_t key_len,
                       struct sl_arena *arena,
                       struct sl_value *ret)
{
    struct walk w;
    const char *found = NULL;
    int rc = walk_start(&w, text, len, '{');

    while (rc == 0 && (rc = walk_next(&w)) == 1) {
        if (key_equals(w.key, w.key_len, w.key_esc, key, key_len)) {
            found = w.val; /* keep going: the last one wins */
        }
        rc = 0;
    }
    if (rc != 0) {
        return rc;
    }
    return found != NULL ? walk_value(&w, found, arena, ret) : SL_EOF;
}

int sl_json_array_get(
    const char *text, size_t len, size_t idx, struct sl_arena *arena, struct sl_value *ret)
{
    struct walk w;
    size_t i = 0;
    int rc = walk_start(&w, text, len, '[');

    while (rc == 0 && (rc = walk_next(&w)) == 1) {
        if (i++ == idx) {
            return walk_value(&w, w.val, arena, ret);
        }
        rc = 0;
    }
    return rc != 0 ? rc : SL_EOF;
}

int sl_json_array_next(
    const char *text, size_t len, size_t *pos, struct sl_arena *arena, struct sl_value *ret)
{
    struct walk w;
    int rc;

    /* The cursor is 0 before the first element, then 1 + the offset of the
     * next one, and SIZE_MAX after the last. */
    if (*pos == 0) {
        rc = walk_start(&w, text, len, '[');
        if (rc != 0) {
            return rc;
        }
    } else if (*pos != SIZE_MAX && *pos - 1 <= len) {
        walk_init(&w, text, len);
        w.p = text + *pos - 1;
    } else {
        return SL_EOF;
    }
    rc = walk_next(&w);
    if (rc <= 0) {
        return rc == 0 ? SL_EOF : rc;
    }
    rc = walk_value(&w, w.val, arena, ret);
    if (rc == 0) {
        *pos = w.p != NULL ? (size_t)(w.p - text) + 1 : SIZE_MAX;
    }
    return rc;
}

size_t sl_json_count(const char *text, size_t len)
{
    struct walk w;
    size_t n = 0;
    int rc = walk_start(&w, text, len, 0);

    while (rc == 0 && (rc = walk_next(&w)) == 1) {
        n++;
        rc = 0;
    }
    return rc == 0 ? n : 0;
}

/* ==== UTF-8 ==== */

bool sl_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + len;

    while (p < end) {
#if defined(JSON_SSE2)
        while (end - p >= 16 &&
               _mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(const void *)p)) == 0) {
            p += 16;
        }
#endif
        while (p < end && *p < 0x80) {
            p++;
        }
        if (p == end) {
            break;
        }
        size_t n = sl__utf8_seq_len(p, end);
        if (n == 0) {
            return false;
        }
        p += n;
    }
    return true;
}

size_t sl_utf8_clean(char *out, size_t cap, const char *s, size_t len, bool escape_controls)
{
    const unsigned char *p = (const unsigned char *)s;
    const unsigned char *end = p + len;
    size_t o = 0;

    if (cap == 0) {
        return 0;
    }
    while (p < end) {
        unsigned c = *p;
        char esc[8];
        const char *put = (const char *)p;
        size_t n = 1;
        size_t adv = 1;
        if (escape_controls && (c < 0x20 || c == 0x7F)) {
            put = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : esc;
            n = put == esc ? (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c) : 2;
        } else if (c >= 0x80 && (adv = n = sl__utf8_seq_len(p, end)) == 0) {
            put = "\xEF\xBF\xBD"; /* an invalid byte: U+FFFD */
            n = 3;
            adv = 1;
        }
        if (n > cap - 1 - o) {
            break;
        }
        memcpy(out + o, put, n);
        o += n;
        p += adv;
    }
    out[o] = '\0';
    return o;
}
