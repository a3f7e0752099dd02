/* SPDX-License-Identifier: MIT */
/* Filling a type's conf struct from its option table (struct sluice_option
 * rows) and the node's YAML mapping: value parsing (sizes, durations, enums,
 * expressions, lists, maps), ranges, defaults, required keys, unknown keys
 * with a nearest-key hint, keys of later work. Thread: main, at start-up.
 *
 * Chosen rules:
 * - SIZE: a whole number of bytes ("512", 512), or a number (decimals
 *   allowed) with a unit, case-insensitive, optional space: B, KiB MiB GiB TiB
 *   (powers of 1024), KB MB GB TB (powers of 1000). Negative, fractional
 *   bytes and other units ("64M") are errors.
 * - DURATION: one or more number+unit parts, Go style: "250us", "100ms",
 *   "30s", "5m", "1h30m", "1.5s"; units ns, us (or µs), ms, s, m, h, each
 *   part's unit smaller than the one before ("500ms2s" and "1s1s" are
 *   errors: they read as typos). A plain number is an error asking for a
 *   unit, except "0".
 * - STR, ENUM, LIST items and MAP values take the text of any non-empty
 *   scalar (123 and true are strings there); INT, BOOL and DOUBLE need the
 *   YAML type, so '5' (quoted) is not an integer.
 * - Ranges: checked unless min and max are both 0; a max below min (or
 *   beyond 2^63) means no upper bound.
 * - Dotted rows ("batch.max_records") are nested mappings only; a flat key
 *   "batch.max_records: 5" is an error with a hint. */
#include "conf_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KEY_MAX 256
#define KiB     1024.0

/* One sl__conf_fill call. */
struct fill {
    struct sl__loader *ld;
    const struct sl__ynode *at; /* the node's key: "missing required key" points here */
    const struct sluice_option *opts;
    size_t nopts;
    unsigned char *seen; /* per row: given in the file */
    void *conf;
    size_t conf_size;
    const char *const *own; /* keys the caller handles */
};

static const char *const later_keys[] = {
    "timeout", "retry", "circuit_breaker", "standby", NULL,
};

int sl__conf_is_later(const char *key)
{
    for (size_t i = 0; later_keys[i] != NULL; i++) {
        if (strcmp(later_keys[i], key) == 0) {
            return 1;
        }
    }
    return 0;
}

static int in_list(const char *const *list, const char *key)
{
    for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
        if (strcmp(list[i], key) == 0) {
            return 1;
        }
    }
    return 0;
}

/* "got ..." text; a SECRET option's value is never echoed. */
static const char *
got(const struct sluice_option *row, const struct sl__ynode *val, char *buf, size_t len)
{
    if (row != NULL && (row->flags & SLUICE_OPT_SECRET) && val->kind == SL__Y_SCALAR &&
        val->len != 0) {
        snprintf(buf, len, "a hidden value");
        return buf;
    }
    return sl__ydescribe(val, buf, len);
}

/* Like got(), noting quotes when they made the value a string: '5' is a
 * string in YAML, so not an integer. */
static const char *
got_typed(const struct sluice_option *row, const struct sl__ynode *val, char *buf, size_t len)
{
    got(row, val, buf, len);
    if (val->kind == SL__Y_SCALAR && val->quoted && val->tag == SL__T_STR &&
        sl__yaml_plain_tag(val->text, val->len) != SL__T_STR && strlen(buf) + 20 < len) {
        strcat(buf, " (a quoted string)");
    }
    return buf;
}

/* ==== Scalar parsers ==== */

static int parse_int(struct sl__loader *ld,
                     const struct sluice_option *row,
                     const struct sl__ynode *val,
                     int64_t *ret)
{
    const char *s = val->text;
    char buf[64];
    int base = 10;
    char *end = NULL;

    if (val->kind != SL__Y_SCALAR || val->tag != SL__T_INT) {
        return sl__yerr(ld, val, "expected an integer, got %s",
                        got_typed(row, val, buf, sizeof(buf)));
    }
    if (s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
        base = s[1] == 'o' ? 8 : 16;
        s += 2;
    }
    errno = 0;
    long long v = strtoll(s, &end, base);

    if (errno == ERANGE) {
        return sl__yerr(ld, val, "integer out of range, got %s", got(row, val, buf, sizeof(buf)));
    }
    *ret = (int64_t)v;
    return 0;
}

int sl__conf_int(
    struct sl__loader *ld, const struct sl__ynode *node, int64_t min, int64_t max, int64_t *ret)
{
    int64_t v = 0;
    int rc = parse_int(ld, NULL, node, &v);

    if (rc == 0 && (v < min || v > max)) {
        return sl__yerr(ld, node, "must be between %" PRId64 " and %" PRId64 ", got %" PRId64, min,
                        max, v);
    }
    if (rc == 0) {
        *ret = v;
    }
    return rc;
}

static uint64_t size_unit(const char *u)
{
    static const struct {
        const char *name;
        double mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KB", 1e3},
        {"MB", 1e6},
        {"GB", 1e9},
        {"TB", 1e12},
        {"KiB", KiB},
        {"MiB", KiB * KiB},
        {"GiB", KiB * KiB * KiB},
        {"TiB", KiB * KiB * KiB * KiB},
    };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(u, units[i].name) == 0) {
            return (uint64_t)units[i].mult;
        }
    }
    return 0;
}

/* "512", "64KiB", "1.5 GiB", "10MB". Returns 0, -1 malformed, -2 too large,
 * -3 a fraction of a byte. */
static int parse_size(const char *s, uint64_t *ret)
{
    size_t nd = strspn(s, "0123456789"), nf = 0;
    const char *unit = s + nd;
    uint64_t mult;

    if (nd == 0) {
        return -1;
    }
    if (*unit == '.') {
        nf = strspn(unit + 1, "0123456789");
        if (nf == 0) {
            return -1;
        }
        unit += 1 + nf;
    }
    unit += *unit == ' ';
    mult = size_unit(unit);
    if (mult == 0) {
        return -1;
    }
    if (mult == 1 && nf != 0) {
        return -3;
    }
    if (nf == 0) {
        errno = 0;
        unsigned long long n = strtoull(s, NULL, 10);

        if (errno == ERANGE || n > UINT64_MAX / mult) {
            return -2;
        }
        *ret = (uint64_t)n * mult;
        return 0;
    }
    double d = strtod(s, NULL) * (double)mult;

    if (d >= 18446744073709551615.0) {
        return -2;
    }
    *ret = (uint64_t)d;
    return 0;
}

static uint64_t duration_unit(const char **p)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"\xc2\xb5s", 1000},
        {"ms", 1000000},
        {"s", 1000000000ull},
        {"m", 60000000000ull},
        {"h", 3600000000000ull},
    };

    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        size_t n = strlen(units[i].name);

        if (strncmp(*p, units[i].name, n) == 0) {
            *p += n;
            return units[i].ns;
        }
    }
    return 0;
}

/* "250us", "100ms", "30s", "5m", "1h30m", "1.5s", "0". Returns 0, -1
 * malformed, -2 too large, -3 a number without a unit, -4 units not in
 * descending order. */
static int parse_duration(const char *s, uint64_t *ret)
{
    const char *p = s;
    double total = 0;
    uint64_t prev = UINT64_MAX;

    if (strcmp(s, "0") == 0) {
        *ret = 0;
        return 0;
    }
    while (*p != '\0') {
        size_t nd = strspn(p, "0123456789"), nf = 0;
        const char *q = p + nd;
        uint64_t unit;

        if (*q == '.') {
            nf = strspn(q + 1, "0123456789");
            q += 1 + nf;
        }
        if (nd + nf == 0) {
            return -1;
        }
        double v = strtod(p, NULL);

        p = q;
        unit = duration_unit(&p);
        if (unit == 0) {
            return *p == '\0' ? -3 : -1;
        }
        if (unit >= prev) {
            return -4;
        }
        prev = unit;
        total += v * (double)unit;
    }
    if (total >= 18446744073709551615.0) {
        return -2;
    }
    *ret = (uint64_t)(total + 0.5);
    return 0;
}

/* Text of a size or duration: any non-empty scalar that is not a bool. */
static int unit_text(struct fill *f,
                     const struct sluice_option *row,
                     const struct sl__ynode *val,
                     const char *what)
{
    char buf[64];

    if (val->kind != SL__Y_SCALAR || val->tag == SL__T_NULL || val->tag == SL__T_BOOL) {
        return sl__yerr(f->ld, val, "expected %s, got %s", what, got(row, val, buf, sizeof(buf)));
    }
    return 0;
}

static int parse_size_val(struct fill *f,
                          const struct sluice_option *row,
                          const struct sl__ynode *val,
                          uint64_t *ret)
{
    char buf[64];
    int rc = unit_text(f, row, val, "a size such as 512, 64KiB or 1GiB");

    if (rc != 0) {
        return rc;
    }
    switch (parse_size(val->text, ret)) {
    case 0:
        return 0;
    case -2:
        return sl__yerr(f->ld, val, "size too large, got %s", got(row, val, buf, sizeof(buf)));
    case -3:
        return sl__yerr(f->ld, val, "a size in bytes must be a whole number, got %s",
                        got(row, val, buf, sizeof(buf)));
    default:
        return sl__yerr(f->ld, val,
                        "expected a size such as 512, 64KiB or 1GiB (units B, KiB, MiB, GiB, TiB, "
                        "KB, MB, GB, TB), got %s",
                        got(row, val, buf, sizeof(buf)));
    }
}

static int parse_duration_val(struct fill *f,
                              const struct sluice_option *row,
                              const struct sl__ynode *val,
                              uint64_t *ret)
{
    char buf[64];
    int rc = unit_text(f, row, val, "a duration such as 100ms, 30s or 5m");

    if (rc != 0) {
        return rc;
    }
    switch (parse_duration(val->text, ret)) {
    case 0:
        return 0;
    case -2:
        return sl__yerr(f->ld, val, "duration too long, got %s", got(row, val, buf, sizeof(buf)));
    case -3:
        return sl__yerr(f->ld, val, "a duration needs a unit (ns, us, ms, s, m, h), got %s",
                        got(row, val, buf, sizeof(buf)));
    case -4:
        return sl__yerr(f->ld, val,
                        "the units of a duration go from largest to smallest, each once "
                        "(1h30m, 1s500ms), got %s",
                        got(row, val, buf, sizeof(buf)));
    default:
        return sl__yerr(f->ld, val,
                        "expected a duration such as 250us, 100ms, 30s, 5m or 1h30m, got %s",
                        got(row, val, buf, sizeof(buf)));
    }
}

/* ==== Ranges ==== */

const char *sl__conf_format_num(enum sluice_opt_type type, double v, char *buf, size_t len)
{
    static const struct {
        const char *unit;
        double mult;
    } sizes[] = {{"TiB", KiB * KiB * KiB * KiB},
                 {"GiB", KiB * KiB * KiB},
                 {"MiB", KiB * KiB},
                 {"KiB", KiB}},
      durations[] = {{"h", 3600e9}, {"m", 60e9}, {"s", 1e9}, {"ms", 1e6}, {"us", 1e3}};
    size_t n = type == SLUICE_OPT_SIZE ? 4 : type == SLUICE_OPT_DURATION ? 5 : 0;

    if (v == 0) {
        snprintf(buf, len, "0");
        return buf;
    }

    for (size_t i = 0; i < n; i++) {
        double mult = type == SLUICE_OPT_SIZE ? sizes[i].mult : durations[i].mult;
        const char *unit = type == SLUICE_OPT_SIZE ? sizes[i].unit : durations[i].unit;

        if (v >= mult && v / mult == (double)(uint64_t)(v / mult)) {
            snprintf(buf, len, "%.0f%s", v / mult, unit);
            return buf;
        }
    }
    snprintf(buf, len, type == SLUICE_OPT_DOUBLE ? "%g" : "%.0f%s", v,
             type == SLUICE_OPT_DURATION ? "ns" : "");
    return buf;
}

/* Checks [min, max] unless both are 0; a max below min (or beyond 2^63)
 * means "no upper bound". */
static int
check_range(struct fill *f, const struct sluice_option *row, const struct sl__ynode *val, double v)
{
    char lo[48], hi[48], have[48];
    int has_max = row->max >= row->min && row->max < 9.2e18;

    if (row->min == 0 && row->max == 0) {
        return 0;
    }
    if (v >= row->min && (!has_max || v <= row->max)) {
        return 0;
    }
    sl__conf_format_num(row->type, row->min, lo, sizeof(lo));
    sl__conf_format_num(row->type, row->max, hi, sizeof(hi));
    sl__conf_format_num(row->type, v, have, sizeof(have));
    if (!has_max) {
        return sl__yerr(f->ld, val, "must be at least %s, got %s", lo, have);
    }
    return sl__yerr(f->ld, val, "must be between %s and %s, got %s", lo, hi, have);
}

/* ==== Rows ==== */

static int put(struct fill *f,
               const struct sluice_option *row,
               const struct sl__ynode *val,
               const void *v,
               size_t size)
{
    if (row->offset > f->conf_size || size > f->conf_size - row->offset) {
        return sl__yerr(f->ld, val, "option '%s' lies outside its conf struct (a bug in the type)",
                        row->name);
    }
    memcpy((char *)f->conf + row->offset, v, size);
    return 0;
}

/* Any non-empty scalar's text (123 and true are strings here too). */
static int want_text(struct fill *f,
                     const struct sluice_option *row,
                     const struct sl__ynode *val,
                     const char *what,
                     const char **ret)
{
    char buf[64];

    if (val->kind != SL__Y_SCALAR || val->tag == SL__T_NULL) {
        return sl__yerr(f->ld, val, "expected %s, got %s", what, got(row, val, buf, sizeof(buf)));
    }
    *ret = val->text;
    return 0;
}

static int opt_number(struct fill *f, const struct sluice_option *row, const struct sl__ynode *val)
{
    char buf[64];
    int64_t i = 0;
    double d = 0;
    int rc;

    if (row->type == SLUICE_OPT_INT || (val->kind == SL__Y_SCALAR && val->tag == SL__T_INT)) {
        rc = parse_int(f->ld, row, val, &i);
        d = (double)i;
    } else if (val->kind != SL__Y_SCALAR || val->tag != SL__T_FLOAT || strpbrk(val->text, "iInN")) {
        rc = sl__yerr(f->ld, val, "expected a number, got %s",
                      got_typed(row, val, buf, sizeof(buf)));
    } else {
        d = strtod(val->text, NULL);
        rc = 0;
    }
    if (rc == 0) {
        rc = check_range(f, row, val, d);
    }
    if (rc == 0 && row->type == SLUICE_OPT_INT) {
        return put(f, row, val, &i, sizeof(i));
    }
    return rc != 0 ? rc : put(f, row, val, &d, sizeof(d));
}

static int opt_units(struct fill *f, const struct sluice_option *row, const struct sl__ynode *val)
{
    uint64_t v = 0;
    int rc = row->type == SLUICE_OPT_SIZE ? parse_size_val(f, row, val, &v)
                                          : parse_duration_val(f, row, val, &v);

    if (rc == 0) {
        rc = check_range(f, row, val, (double)v);
    }
    return rc != 0 ? rc : put(f, row, val, &v, sizeof(v));
}

static int opt_scalar(struct fill *f, const struct sluice_option *row, const struct sl__ynode *val)
{
    char buf[64];
    const char *s = NULL;
    int b;

    if (row->type == SLUICE_OPT_STR) {
        int rc = want_text(f, row, val, "a string", &s);

        return rc != 0 ? rc : put(f, row, val, &s, sizeof(s));
    }
    if (val->kind != SL__Y_SCALAR || val->tag != SL__T_BOOL) {
        return sl__yerr(f->ld, val, "expected true or false, got %s",
                        got_typed(row, val, buf, sizeof(buf)));
    }
    b = val->text[0] == 't' || val->text[0] == 'T';
    return put(f, row, val, &b, sizeof(b));
}

static int opt_enum(struct fill *f, const struct sluice_option *row, const struct sl__ynode *val)
{
    char list[160] = "", have[64], hint[96];
    struct sl__hint h;
    const char *s = NULL;
    size_t off = 0;

    /* A choice may be a YAML null word (e.g. `compression: null`). */
    if (val->kind != SL__Y_SCALAR || val->len == 0) {
        return sl__yerr(f->ld, val, "expected a choice, got %s", got(row, val, have, sizeof(have)));
    }
    s = val->text;
    sl__hint_init(&h, s);
    for (int i = 0; row->choices != NULL && row->choices[i] != NULL; i++) {
        if (strcmp(row->choices[i], s) == 0) {
            return put(f, row, val, &i, sizeof(i));
        }
        sl__hint_add(&h, row->choices[i], strlen(row->choices[i]));
        if (off < sizeof(list)) {
            int w = snprintf(list + off, sizeof(list) - off, "%s%s", i != 0 ? ", " : "",
                             row->choices[i]);
            off += w > 0 ? (size_t)w : 0;
        }
    }
    return sl__yerr(f->ld, val, "expected one of %s; got %s%s", list,
                    got(row, val, have, sizeof(have)), sl__hint_text(&h, hint, sizeof(hint)));
}

int sl__conf_expr(struct sl__loader *ld, const struct sl__ynode *node, struct sl_expr **ret)
{
    struct sl_err e = {0};
    struct sl__expr_link *link = sl__conf_alloc(ld, sizeof(*link));
    char path[SL_ERR_PATH_MAX];
    char buf[64];
    int col = node->col;

    if (link == NULL) {
        return SL_ENOMEM;
    }
    if (node->kind != SL__Y_SCALAR || node->tag == SL__T_NULL) {
        return sl__yerr(ld, node, "expected an expression, got %s",
                        sl__ydescribe(node, buf, sizeof(buf)));
    }
    link->expr = sl_expr_compile(node->text, node->len, &e);
    if (link->expr == NULL && e.code == SL_ENOMEM) {
        return sl__conf_oom(ld);
    }
    if (link->expr == NULL) {
        if (node->exact && node->line > 0 && e.col > 0) {
            col = node->col + node->quoted + e.col - 1;
        }
        return sl_err_set_at(ld->err, node->file, node->line, col,
                             sl__ypath(node, path, sizeof(path)), "%s",
                             e.msg[0] != '\0' ? e.msg : "invalid expression");
    }
    link->next = ld->priv->exprs;
    ld->priv->exprs = link;
    *ret = link->expr;
    return 0;
}

static int opt_expr(struct fill *f, const struct sluice_option *row, const struct sl__ynode *val)
{
    struct sl_expr *expr = NULL;
    int rc = sl__conf_expr(f->ld, val, &expr);
    struct sluice_expr *pub = (struct sluice_expr *)expr;

    return rc != 0 ? rc : put(f, row, val, &pub, sizeof(pub));
}

static int opt_list(struct fill *f, const struct sluice_option *row, const struct sl__ynode *val)
{
    struct sluice_list list = {0};
    char buf[64];

    if (val->kind == SL__Y_SCALAR && val->tag != SL__T_NULL) {
        return sl__yerr(f->ld, val, "expected a list, got a single value %s (write [%s])",
                        got(row, val, buf, sizeof(buf)),
                        row->flags & SLUICE_OPT_SECRET ? "..." : val->text);
    }
    if (val->kind != SL__Y_SEQ) {
        return sl__yerr(f->ld, val, "expected a list, got %s", got(row, val, buf, sizeof(buf)));
    }
    list.n = val->nkids;
    list.items = sl__conf_alloc(f->ld, (list.n + 1) * sizeof(*list.items));
    if (list.items == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < list.n; i++) {
        int rc = want_text(f, row, val->kids[i], "a string", &list.items[i]);

        if (rc != 0) {
            return rc;
        }
    }
    return put(f, row, val, &list, sizeof(list));
}

static int opt_map(struct fill *f, const struct sluice_option *row, const struct sl__ynode *val)
{
    struct sluice_map map = {0};
    char buf[64];
    int rc = 0;

    if (val->kind != SL__Y_MAP) {
        return sl__yerr(f->ld, val, "expected a mapping, got %s", got(row, val, buf, sizeof(buf)));
    }
    map.n = val->nkids / 2;
    map.keys = sl__conf_alloc(f->ld, (map.n + 1) * sizeof(*map.keys));
    map.values = sl__conf_alloc(f->ld, (map.n + 1) * sizeof(*map.values));
    if (row->type == SLUICE_OPT_EXPR_MAP) {
        map.exprs = sl__conf_alloc(f->ld, (map.n + 1) * sizeof(*map.exprs));
    }
    if (map.keys == NULL || map.values == NULL ||
        (row->type == SLUICE_OPT_EXPR_MAP && map.exprs == NULL)) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; rc == 0 && i < map.n; i++) {
        struct sl_expr *expr = NULL;

        map.keys[i] = val->kids[2 * i]->text;
        rc = want_text(f, row, val->kids[2 * i + 1], "a string", &map.values[i]);
        if (rc == 0 && map.exprs != NULL) {
            rc = sl__conf_expr(f->ld, val->kids[2 * i + 1], &expr);
            map.exprs[i] = (struct sluice_expr *)expr;
        }
    }
    return rc != 0 ? rc : put(f, row, val, &map, sizeof(map));
}

static int fill_row(struct fill *f, const struct sluice_option *row, const struct sl__ynode *val)
{
    switch (row->type) {
    case SLUICE_OPT_STR:
    case SLUICE_OPT_BOOL:
        return opt_scalar(f, row, val);
    case SLUICE_OPT_INT:
    case SLUICE_OPT_DOUBLE:
        return opt_number(f, row, val);
    case SLUICE_OPT_SIZE:
    case SLUICE_OPT_DURATION:
        return opt_units(f, row, val);
    case SLUICE_OPT_ENUM:
        return opt_enum(f, row, val);
    case SLUICE_OPT_EXPR:
        return opt_expr(f, row, val);
    case SLUICE_OPT_LIST:
        return opt_list(f, row, val);
    case SLUICE_OPT_MAP:
    case SLUICE_OPT_EXPR_MAP:
        return opt_map(f, row, val);
    case SLUICE_OPT_TYPE_COUNT:
        break;
    }
    return sl__yerr(f->ld, val, "option '%s' has an unknown type (a bug in the type)", row->name);
}

/* ==== Keys ==== */

static const struct sluice_option *find_row(const struct fill *f, const char *name, size_t *ret_i)
{
    for (size_t i = 0; i < f->nopts; i++) {
        if (strcmp(f->opts[i].name, name) == 0) {
            *ret_i = i;
            return &f->opts[i];
        }
    }
    return NULL;
}

/* Whether some row is nested under name ("batch" for "batch.max_records"). */
static int is_group(const struct fill *f, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < f->nopts; i++) {
        if (strncmp(f->opts[i].name, name, n) == 0 && f->opts[i].name[n] == '.') {
            return 1;
        }
    }
    return 0;
}

static int unknown_key(struct fill *f, const struct sl__ynode *key, const char *prefix)
{
    size_t pl = strlen(prefix);
    struct sl__hint h;
    char hint[96];

    sl__hint_init(&h, key->text);
    for (size_t i = 0; i < f->nopts; i++) {
        const char *name = f->opts[i].name;

        if (pl != 0 && (strncmp(name, prefix, pl) != 0 || name[pl] != '.')) {
            continue;
        }
        name += pl != 0 ? pl + 1 : 0;
        sl__hint_add(&h, name, strcspn(name, "."));
    }
    for (size_t i = 0; pl == 0 && f->own != NULL && f->own[i] != NULL; i++) {
        sl__hint_add(&h, f->own[i], strlen(f->own[i]));
    }
    for (size_t i = 0; pl == 0 && later_keys[i] != NULL; i++) {
        sl__hint_add(&h, later_keys[i], strlen(later_keys[i]));
    }
    return sl__yerr(f->ld, key, "unknown key '%s'%s", key->text,
                    sl__hint_text(&h, hint, sizeof(hint)));
}

static int fill_map(struct fill *f, const struct sl__ynode *map, const char *prefix, int depth);

/* One key of a node (or of an option group such as batch:). */
static int fill_key(struct fill *f,
                    const struct sl__ynode *key,
                    const struct sl__ynode *val,
                    const char *prefix,
                    int depth)
{
    const struct sluice_option *row;
    char full[KEY_MAX];
    size_t i = 0;

    if (prefix[0] == '\0' && in_list(f->own, key->text)) {
        return 0;
    }
    if ((size_t)snprintf(full, sizeof(full), "%s%s%s", prefix, prefix[0] ? "." : "", key->text) >=
        sizeof(full)) {
        return unknown_key(f, key, prefix);
    }
    if (strchr(key->text, '.') != NULL) {
        if (find_row(f, full, &i) == NULL && !is_group(f, full)) {
            return unknown_key(f, key, prefix);
        }
        return sl__yerr(f->ld, key, "unknown key '%s' (write it as nested keys, e.g. %.*s: {...})",
                        key->text, (int)strcspn(key->text, "."), key->text);
    }
    row = find_row(f, full, &i);
    if (row != NULL && (row->flags & SLUICE_OPT_LATER)) {
        return sl__yerr(f->ld, key, "'%s' is not supported yet", full);
    }
    if (row != NULL) {
        f->seen[i] = 1;
        return fill_row(f, row, val);
    }
    if (is_group(f, full)) {
        if (val->kind == SL__Y_SCALAR && val->tag == SL__T_NULL) {
            return 0;
        }
        if (val->kind != SL__Y_MAP) {
            char buf[64];

            return sl__yerr(f->ld, val, "expected a mapping, got %s",
                            sl__ydescribe(val, buf, sizeof(buf)));
        }
        return fill_map(f, val, full, depth + 1);
    }
    if (prefix[0] == '\0' && sl__conf_is_later(key->text)) {
        return sl__yerr(f->ld, key, "'%s' is not supported yet", key->text);
    }
    return unknown_key(f, key, prefix);
}

static int fill_map(struct fill *f, const struct sl__ynode *map, const char *prefix, int depth)
{
    if (depth > SL__CONF_MAX_DEPTH) {
        return sl__yerr(f->ld, map, "nested too deep");
    }
    for (size_t i = 0; map != NULL && i + 1 < map->nkids; i += 2) {
        int rc = fill_key(f, map->kids[i], map->kids[i + 1], prefix, depth);

        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* A default is parsed as if written in the file, at the node's key. */
static int fill_default(struct fill *f, const struct sluice_option *row, struct sl__ynode *map)
{
    struct sl__ynode *key = sl__ynew(f->ld, SL__Y_SCALAR, f->at->file, f->at->line, f->at->col);
    struct sl__ynode *val = NULL;
    int rc;

    if (key == NULL) {
        return SL_ENOMEM;
    }
    key->text = row->name;
    key->len = strlen(row->name);
    key->verbatim = 1;
    key->parent = map;
    key->key = key;
    rc = sl__yaml_value(f->ld, row->default_text, f->at->file, f->at->line, f->at->col, 0, map, key,
                        &val);
    return rc != 0 ? rc : fill_row(f, row, val);
}

int sl__conf_fill(struct sl__loader *ld,
                  struct sl__ynode *map,
                  const struct sl__ynode *at,
                  const struct sluice_option *opts,
                  void *conf,
                  size_t conf_size,
                  const char *const *own)
{
    struct fill f = {
        .ld = ld, .at = at, .opts = opts, .conf = conf, .conf_size = conf_size, .own = own};
    int rc;

    while (opts != NULL && opts[f.nopts].name != NULL) {
        f.nopts++;
    }
    f.seen = sl__conf_alloc(ld, f.nopts + 1);
    if (f.seen == NULL) {
        return SL_ENOMEM;
    }
    rc = fill_map(&f, map, "", 0);
    for (size_t i = 0; rc == 0 && i < f.nopts; i++) {
        const struct sluice_option *row = &opts[i];

        if (f.seen[i] || (row->flags & SLUICE_OPT_LATER)) {
            continue;
        }
        if (row->flags & SLUICE_OPT_REQUIRED) {
            rc = sl__yerr(ld, at, "missing required key '%s'", row->name);
        } else if (row->default_text != NULL) {
            rc = fill_default(&f, row, map);
        }
    }
    return rc;
}
