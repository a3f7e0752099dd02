/* SPDX-License-Identifier: MIT */
/* JSON text in a canonical form, so that two texts of the same value
 * compare equal byte for byte (`sluice test` compares arrays and objects
 * this way). */
#include "json.h"
#include "mem.h"

#include <stdlib.h>
#include <string.h>

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

/* The end of the string starting at p (its opening quote). */
static const char *string_end(const char *p, const char *end)
{
    for (p++; p < end && *p != '"'; p++) {
        p += *p == '\\';
    }
    return p < end ? p + 1 : end;
}

struct member {
    const char *key;
    size_t key_len;
    size_t off, len; /* its canonical value in the scratch buffer */
};

static int cmp_member(const void *a, const void *b)
{
    const struct member *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);

    return c != 0 ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Appends the JSON value at *p (already validated by the decoder) to out
 * with no whitespace, object members sorted by key and numbers as the
 * writers print them, and moves *p past it. */
static int canon(struct sl_buf *out, const char **p, const char *end, int depth)
{
    const char *s = skip_ws(*p, end);
    int rc = 0;

    if (s >= end || depth > SL_JSON_DEFAULT_MAX_DEPTH) {
        return SL_EDATA;
    }
    if (*s == '"') {
        *p = string_end(s, end);
        return sl_buf_append(out, s, (size_t)(*p - s));
    }
    if (*s == '[') {
        rc = sl_buf_putc(out, '[');
        s = skip_ws(s + 1, end);
        while (rc == 0 && s < end && *s != ']') {
            rc = canon(out, &s, end, depth + 1);
            s = skip_ws(s, end);
            if (rc == 0 && s < end && *s == ',') {
                rc = sl_buf_putc(out, ',');
                s++;
            }
        }
        *p = s + 1;
        return rc != 0 ? rc : sl_buf_putc(out, ']');
    }
    if (*s == '{') {
        struct sl_buf vals = {0};
        struct member *m = NULL;
        size_t n = 0, cap = 0;

        s = skip_ws(s + 1, end);
        while (rc == 0 && s < end && *s == '"') {
            if (n == cap) {
                cap = cap != 0 ? cap * 2 : 8;
                struct member *grown = sl_realloc(m, cap * sizeof(*m));
                if (grown == NULL) {
                    rc = SL_ENOMEM;
                    break;
                }
                m = grown;
            }
            const char *kend = string_end(s, end);
            m[n] = (struct member){.key = s, .key_len = (size_t)(kend - s), .off = vals.len};
            s = skip_ws(kend, end) + 1; /* the ':' */
            rc = canon(&vals, &s, end, depth + 1);
            m[n].len = vals.len - m[n].off;
            n++;
            s = skip_ws(s, end);
            s = s < end && *s == ',' ? skip_ws(s + 1, end) : s;
        }
        *p = s + 1;
        if (m != NULL) {
            qsort(m, n, sizeof(*m), cmp_member);
        }
        rc = rc != 0 ? rc : sl_buf_putc(out, '{');
        for (size_t i = 0; i < n && rc == 0; i++) {
            rc = i > 0 ? sl_buf_putc(out, ',') : 0;
            rc = rc != 0 ? rc : sl_buf_append(out, m[i].key, m[i].key_len);
            rc = rc != 0 ? rc : sl_buf_putc(out, ':');
            rc = rc != 0 ? rc : sl_buf_append(out, vals.data + m[i].off, m[i].len);
        }
        sl_free(m);
        sl_buf_release(&vals);
        return rc != 0 ? rc : sl_buf_putc(out, '}');
    }
    const char *e = s;
    while (e < end && strchr(",]} \t\r\n", *e) == NULL) {
        e++;
    }
    *p = e;
    if (strcspn(s, ".eE") < (size_t)(e - s) && (*s == '-' || (*s >= '0' && *s <= '9'))) {
        char num[40];
        sl_json_format_double(strtod(s, NULL), num);
        return sl_buf_append(out, num, strlen(num));
    }
    return sl_buf_append(out, s, (size_t)(e - s));
}

int sl_json_canon(struct sl_buf *out, const char *text, size_t len)
{
    const char *p = text;

    return canon(out, &p, text + len, 0);
}
