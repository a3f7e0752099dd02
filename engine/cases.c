/* SPDX-License-Identifier: MIT */
/* `sluice test FILE`: each case of the file's `tests:` section runs the
 * pipeline on its own, in memory (sl_conf_load_case), then every node the
 * case expects output of is compared record by record with what its
 * capture received. Records are equal when they hold the same fields
 * (in any order) with equal values of the same type; arrays and objects
 * compare as JSON values (object keys in any order). Dead letters are
 * compared on the fields the case lists, in any order, since several
 * sinks hand them over concurrently. */
#include "cases.h"

#include "json.h"
#include "log.h"
#include "loop.h"
#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTEXT      2        /* equal records shown around a difference */
#define SHOW_MAX     300      /* bytes of a record's JSON shown */
#define TRACE_MAX    4000000u /* diagonals the diff keeps; beyond, position by position */
#define DEAD_SHOWN   5        /* dead letters listed under a failing case */
#define SHOW_CHANGES 20       /* differences shown per node */

static bool same_json(const struct sl_value *a, const struct sl_value *b)
{
    struct sl_buf x = {0}, y = {0};
    bool same = sl_json_canon(&x, a->u.s, a->len) == 0 && sl_json_canon(&y, b->u.s, b->len) == 0 &&
                x.len == y.len && memcmp(x.data, y.data, x.len) == 0;

    sl_buf_release(&x);
    sl_buf_release(&y);
    return same;
}

static bool same_value(const struct sl_value *a, const struct sl_value *b)
{
    if (a->type != b->type) {
        return false;
    }
    switch (a->type) {
    case SL_TYPE_NULL:
        return true;
    case SL_TYPE_BOOL:
        return a->u.b == b->u.b;
    case SL_TYPE_INT:
        return a->u.i == b->u.i;
    case SL_TYPE_DOUBLE:
        return a->u.d == b->u.d;
    case SL_TYPE_ARRAY:
    case SL_TYPE_OBJECT:
        return same_json(a, b);
    default:
        return a->len == b->len && memcmp(a->u.s, b->u.s, a->len) == 0;
    }
}

/* Whether got holds want's fields with equal values, and (unless partial)
 * no other field. */
static bool same_record(const struct sl_record *want, const struct sl_record *got, bool partial)
{
    if (!partial && want->nfields != got->nfields) {
        return false;
    }
    for (uint32_t i = 0; i < want->nfields; i++) {
        const struct sl_field *f = &want->fields[i];
        const struct sl_field *g = sl_record_find(got, f->name, f->name_len);

        if (g == NULL || !same_value(&f->val, &g->val)) {
            return false;
        }
    }
    return true;
}

/* ==== Records of one node, from JSON lines ==== */

struct recs {
    const char **line;
    size_t *len;
    struct sl_record *rec;
    size_t n;
};

static int recs_parse(struct recs *r,
                      const char *text,
                      size_t text_len,
                      struct sl_json_decoder *d,
                      struct sl_arena *arena)
{
    size_t n = 0;

    for (size_t i = 0; i < text_len; i++) {
        n += text[i] == '\n';
    }
    r->line = sl_calloc(n + 1, sizeof(*r->line));
    r->len = sl_calloc(n + 1, sizeof(*r->len));
    r->rec = sl_calloc(n + 1, sizeof(*r->rec));
    if (r->line == NULL || r->len == NULL || r->rec == NULL) {
        return SL_ENOMEM;
    }
    for (const char *p = text; r->n < n; r->n++) {
        const char *nl = memchr(p, '\n', (size_t)(text + text_len - p));
        r->line[r->n] = p;
        r->len[r->n] = (size_t)(nl - p);
        int rc = sl_json_decode_object(d, p, r->len[r->n], &r->rec[r->n], arena, NULL);
        if (rc != 0) {
            return rc;
        }
        p = nl + 1;
    }
    return 0;
}

static void recs_release(struct recs *r)
{
    sl_free(r->line);
    sl_free(r->len);
    sl_free(r->rec);
}

/* ==== Printing ==== */

static void show(const char *mark, const struct recs *r, size_t i)
{
    int len = r->len[i] > SHOW_MAX ? SHOW_MAX : (int)r->len[i];

    printf("        %s %.*s%s\n", mark, len, r->line[i], r->len[i] > SHOW_MAX ? " ..." : "");
}

static void show_value(const struct sl_value *v)
{
    struct sl_buf b = {0};

    if (sl_json_write_value(&b, v) == 0) {
        printf("%.*s%s", b.len > 120 ? 120 : (int)b.len, b.data, b.len > 120 ? " ..." : "");
    }
    sl_buf_release(&b);
}

/* Up to 100 bytes of text from byte from on, starting at a character. */
static void show_window(const char *label, const char *text, size_t len, size_t from)
{
    size_t n = len - from > 100 ? 100 : len - from;

    while (n > 0 && n < len - from && ((unsigned char)text[from + n] & 0xC0) == 0x80) {
        n--; /* end at a character */
    }
    printf("\n                %s %s%.*s%s", label, from > 0 ? "..." : "", (int)n, text + from,
           from + n < len ? "..." : "");
}

/* Two long strings, arrays or objects that differ: from which byte, and
 * both around that place (arrays and objects as JSON, keys sorted). */
static bool show_long(const struct sl_value *a, const struct sl_value *b)
{
    struct sl_buf x = {0}, y = {0};
    bool json = a->type == b->type && (a->type == SL_TYPE_ARRAY || a->type == SL_TYPE_OBJECT);

    if ((a->type != SL_TYPE_STR || b->type != SL_TYPE_STR) && !json) {
        return false;
    }
    if (a->len <= 100 && b->len <= 100) {
        return false;
    }
    if (json) {
        if (sl_json_canon(&x, a->u.s, a->len) != 0 || sl_json_canon(&y, b->u.s, b->len) != 0) {
            sl_buf_release(&x);
            sl_buf_release(&y);
            return false;
        }
    } else if (sl_json_write_value(&x, a) != 0 || sl_json_write_value(&y, b) != 0) {
        sl_buf_release(&x);
        sl_buf_release(&y);
        return false;
    }
    size_t n = x.len < y.len ? x.len : y.len, at = 0;
    while (at < n && x.data[at] == y.data[at]) {
        at++;
    }
    size_t from = at > 40 ? at - 40 : 0;
    while (from > 0 && ((unsigned char)x.data[from] & 0xC0) == 0x80) {
        from--; /* start at a character */
    }
    printf("%s of %zu and %zu bytes (as JSON) that differ from byte %zu:",
           json ? "values" : "strings", x.len, y.len, at);
    show_window("expected", x.data, x.len, from);
    show_window("got     ", y.data, y.len, from);
    sl_buf_release(&x);
    sl_buf_release(&y);
    return true;
}

/* Under a - / + pair: which fields differ. */
static void show_fields(const struct sl_record *want, const struct sl_record *got)
{
    for (uint32_t i = 0; i < want->nfields; i++) {
        const struct sl_field *f = &want->fields[i];
        const struct sl_field *g = sl_record_find(got, f->name, f->name_len);

        if (g != NULL && same_value(&f->val, &g->val)) {
            continue;
        }
        printf("            %.*s: ", (int)f->name_len, f->name);
        if (g != NULL && show_long(&f->val, &g->val)) {
            printf("\n");
            continue;
        }
        printf("expected ");
        show_value(&f->val);
        if (g == NULL) {
            printf(", missing\n");
            continue;
        }
        printf(", got ");
        show_value(&g->val);
        printf("\n");
    }
    for (uint32_t i = 0; i < got->nfields; i++) {
        const struct sl_field *g = &got->fields[i];

        if (sl_record_find(want, g->name, g->name_len) == NULL) {
            printf("            %.*s: not expected, got ", (int)g->name_len, g->name);
            show_value(&g->val);
            printf("\n");
        }
    }
}

enum op { OP_SAME, OP_MISSING, OP_EXTRA };

/* Myers' O((n + m) D) shortest edit script from w to g, appended to ops
 * at *k. SL_ENOMEM when it needs more than TRACE_MAX saved diagonals
 * (then nothing was appended). */
static int myers(const struct sl_record *w,
                 size_t n,
                 const struct sl_record *g,
                 size_t m,
                 enum op *ops,
                 size_t *k)
{
    long max = (long)(n + m), width = 2 * max + 3, off = max + 1, d, found = -1;
    long dmax = max < (long)(TRACE_MAX / (size_t)width) ? max : (long)(TRACE_MAX / (size_t)width);
    long *v = sl_calloc((size_t)width, sizeof(*v));
    long *trace = sl_calloc((size_t)(dmax + 1) * (size_t)width, sizeof(*trace));
    size_t at = 0;

    if (v == NULL || trace == NULL) {
        sl_free(v);
        sl_free(trace);
        return SL_ENOMEM;
    }
    for (d = 0; d <= dmax && found < 0; d++) {
        memcpy(trace + d * width, v, (size_t)width * sizeof(*v));
        for (long kk = -d; kk <= d; kk += 2) {
            long x = kk == -d || (kk != d && v[off + kk - 1] < v[off + kk + 1])
                         ? v[off + kk + 1]
                         : v[off + kk - 1] + 1;
            long y = x - kk;
            while (x < (long)n && y < (long)m && same_record(&w[x], &g[y], false)) {
                x++, y++;
            }
            v[off + kk] = x;
            if (x >= (long)n && y >= (long)m) {
                found = d;
                break;
            }
        }
    }
    if (found < 0) {
        sl_free(v);
        sl_free(trace);
        return SL_ENOMEM;
    }
    /* Back from the end, written backwards from ops[n + m - 1]... then moved. */
    enum op *rev = ops + n + m; /* room: ops has n + m free cells after *k */
    long x = (long)n, y = (long)m;
    for (d = found; d > 0; d--) {
        const long *pv = trace + d * width;
        long kk = x - y;
        long pk = kk == -d || (kk != d && pv[off + kk - 1] < pv[off + kk + 1]) ? kk + 1 : kk - 1;
        long px = pv[off + pk], py = px - pk;
        while (x > px && y > py) {
            *--rev = OP_SAME, at++;
            x--, y--;
        }
        *--rev = pk == kk + 1 ? OP_EXTRA : OP_MISSING, at++;
        x = px, y = py;
    }
    while (x > 0 && y > 0) {
        *--rev = OP_SAME, at++;
        x--, y--;
    }
    memmove(ops, rev, at * sizeof(*ops));
    *k += at;
    sl_free(v);
    sl_free(trace);
    return 0;
}

/* The edit script from want to got: the common head and tail, and the
 * shortest edit script between (position by position when that is too
 * long to find). */
static int diff_ops(const struct recs *want, const struct recs *got, enum op **ret, size_t *ret_n)
{
    size_t n = want->n, m = got->n, k = 0, head = 0, tail = 0;
    enum op *ops = sl_calloc(n + m + 1, sizeof(*ops));

    if (ops == NULL) {
        return SL_ENOMEM;
    }
    while (head < n && head < m && same_record(&want->rec[head], &got->rec[head], false)) {
        ops[k++] = OP_SAME;
        head++;
    }
    while (tail < n - head && tail < m - head &&
           same_record(&want->rec[n - 1 - tail], &got->rec[m - 1 - tail], false)) {
        tail++;
    }
    size_t wn = n - head - tail, gm = m - head - tail; /* the middle */
    const struct sl_record *w = want->rec + head, *g = got->rec + head;
    size_t k_before = k;

    if (myers(w, wn, g, gm, ops + k, &k) != 0) {
        /* Too different for the table: position by position. */
        k = k_before;
        for (size_t i = 0; i < wn || i < gm; i++) {
            if (i < wn && i < gm && same_record(&w[i], &g[i], false)) {
                ops[k++] = OP_SAME;
                continue;
            }
            if (i < wn) {
                ops[k++] = OP_MISSING;
            }
            if (i < gm) {
                ops[k++] = OP_EXTRA;
            }
        }
    }
    while (tail-- > 0) {
        ops[k++] = OP_SAME;
    }
    *ret = ops;
    *ret_n = k;
    return 0;
}

/* Prints the ordered diff of want and got. */
static int show_diff(const struct recs *want, const struct recs *got)
{
    enum op *ops = NULL;
    size_t nops = 0, i = 0, j = 0, shown = 0;
    int rc = diff_ops(want, got, &ops, &nops);

    for (size_t k = 0; rc == 0 && k < nops;) {
        if (shown >= SHOW_CHANGES) {
            /* The rest: only how many differences it holds, counted as
             * above (a missing and an extra one side by side are one). */
            while (k < nops) {
                size_t miss = 0, extra = 0;
                for (; k < nops && ops[k] != OP_SAME; k++) {
                    ops[k] == OP_MISSING ? miss++ : extra++;
                }
                shown += miss > extra ? miss : extra;
                k += k < nops;
            }
            break;
        }
        if (ops[k] == OP_SAME) {
            size_t run = 0;
            while (k + run < nops && ops[k + run] == OP_SAME) {
                run++;
            }
            size_t head = k > 0 ? CONTEXT : 0;          /* after the change before */
            size_t tail = k + run < nops ? CONTEXT : 0; /* before the next one */
            for (size_t r = 0; r < run; r++) {
                if (head + tail >= run || r < head || r >= run - tail) {
                    show(" ", got, j + r);
                } else if (r == head) {
                    size_t hidden = run - head - tail;
                    printf("          ... %zu equal record%s\n", hidden, hidden == 1 ? "" : "s");
                }
            }
            i += run, j += run, k += run;
            continue;
        }
        /* A run of changes: missing ones, then extra ones, paired up. */
        size_t miss = 0, extra = 0;
        while (k + miss + extra < nops && ops[k + miss + extra] != OP_SAME) {
            ops[k + miss + extra] == OP_MISSING ? miss++ : extra++;
        }
        for (size_t r = 0; r < miss || r < extra; r++) {
            if (++shown > SHOW_CHANGES) {
                continue;
            }
            if (r < miss) {
                show("-", want, i + r);
            }
            if (r < extra) {
                show("+", got, j + r);
            }
            if (r < miss && r < extra) {
                show_fields(&want->rec[i + r], &got->rec[j + r]);
            }
        }
        i += miss, j += extra, k += miss + extra;
    }
    if (shown > SHOW_CHANGES) {
        printf("          ... and %zu more differences after these (%zu records expected, %zu "
               "got)\n",
               shown - SHOW_CHANGES, want->n, got->n);
    }
    sl_free(ops);
    return rc;
}

/* Kuhn's augmenting path from expected i: true when i gets a received
 * one, taking it from another expected one that can use something else. */
static bool
augment(const struct recs *want, const struct recs *got, size_t i, size_t *owner, bool *seen)
{
    for (size_t j = 0; j < got->n; j++) {
        if (seen[j] || !same_record(&want->rec[i], &got->rec[j], true)) {
            continue;
        }
        seen[j] = true;
        if (owner[j] == SIZE_MAX || augment(want, got, owner[j], owner, seen)) {
            owner[j] = i;
            return true;
        }
    }
    return false;
}

/* Dead letters: each expected one matches a distinct received one on the
 * fields it lists, in any order (the most matches there can be, whatever
 * the order the case lists them in). Returns whether all matched both
 * ways; prints what did not when show_them. */
static bool match_dead(const struct recs *want, const struct recs *got, bool show_them)
{
    size_t *owner = sl_calloc(got->n + 1, sizeof(*owner));
    bool *seen = sl_calloc(got->n + 1, sizeof(*seen));
    bool *matched = sl_calloc(want->n + 1, sizeof(*matched));
    bool ok = owner != NULL && seen != NULL && matched != NULL;

    for (size_t j = 0; ok && j < got->n; j++) {
        owner[j] = SIZE_MAX;
    }
    for (size_t i = 0; ok && i < want->n; i++) {
        memset(seen, 0, got->n * sizeof(*seen));
        (void)augment(want, got, i, owner, seen);
    }
    for (size_t j = 0; ok && j < got->n; j++) {
        if (owner[j] != SIZE_MAX) {
            matched[owner[j]] = true;
        }
    }
    bool all = ok;
    size_t shown = 0;
    for (size_t i = 0; ok && i < want->n; i++) {
        if (!matched[i]) {
            all = false;
            if (show_them && shown++ < SHOW_CHANGES) {
                show("- (not received)", want, i);
            }
        }
    }
    for (size_t j = 0; ok && j < got->n; j++) {
        if (owner[j] == SIZE_MAX) {
            all = false;
            if (show_them && shown++ < SHOW_CHANGES) {
                show("+ (not expected)", got, j);
            }
        }
    }
    if (shown > SHOW_CHANGES) {
        printf("          ... and %zu more differences after these (%zu dead letters expected, "
               "%zu got)\n",
               shown - SHOW_CHANGES, want->n, got->n);
    }
    sl_free(owner);
    sl_free(seen);
    sl_free(matched);
    return all;
}

/* ==== One case ==== */

static size_t count_lines(const struct sl_buf *b)
{
    size_t n = 0;

    for (size_t i = 0; i < b->len; i++) {
        n += b->data[i] == '\n';
    }
    return n;
}

struct run {
    struct sl_pipeline *pl;
    struct sl_loop *loop;
    struct sl_conf *conf;
    struct sl_json_decoder *d;
    struct sl_arena arena;
    struct sl_buf dead; /* what the dead-letter capture received */
    bool printed;       /* the case's FAIL line is out */
};

/* A case's name on one line: control characters as \xNN. */
static void print_name(const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        if (*p < 0x20 || *p == 0x7f) {
            printf("\\x%02x", *p);
        } else {
            putchar(*p);
        }
    }
}

static void fail_line(struct run *r, const struct sl_conf_case *c)
{
    if (!r->printed) {
        printf("FAIL  ");
        print_name(c->name);
        printf("  (%s:%d)\n", c->file, c->line);
        r->printed = true;
    }
}

/* Under a failing case: nodes that shed or dropped records by timing
 * (when_full), which makes a case's output depend on the machine. */
static void show_shed(const struct run *r)
{
    for (size_t i = 0; i < r->pl->nnodes; i++) {
        const struct sl_node *node = &r->pl->nodes[i];
        unsigned long long shed = atomic_load(&node->c.shed);

        if (shed > 0) {
            printf("    %s shed %llu record%s (when_full: its queue was full; the output depends "
                   "on timing)\n",
                   node->name, shed, shed == 1 ? "" : "s");
        }
    }
}

static struct sl_node *find_capture(struct sl_pipeline *pl, const char *name)
{
    size_t cap_len = strlen(SL_CONF_CASE_CAPTURE);

    for (size_t i = 0; i < pl->nnodes; i++) {
        struct sl_node *node = &pl->nodes[i];
        const char *n = node->cn->name;

        if (node->cn->type != &sl_case_capture) {
            continue;
        }
        if (strncmp(n, SL_CONF_CASE_CAPTURE, cap_len) == 0) {
            n += cap_len;
        }
        if (strcmp(n, name) == 0) {
            return node;
        }
    }
    return NULL;
}

/* Compares one expect entry; prints its diff when it fails. */
static int check_node(struct run *r,
                      const struct sl_conf_case *c,
                      const struct sl_conf_case_records *want_text,
                      bool *ret_ok)
{
    struct sl_node *node = find_capture(r->pl, want_text->node);
    bool dead = strcmp(want_text->node, "dead_letter") == 0;
    struct sl_buf got_text = {0};
    struct recs want = {0}, got = {0};
    int rc = node == NULL ? SL_EINVAL : sl_case_captured(node, &got_text);

    rc =
        rc != 0 ? rc : recs_parse(&want, want_text->json, strlen(want_text->json), r->d, &r->arena);
    rc = rc != 0 ? rc : recs_parse(&got, got_text.data, got_text.len, r->d, &r->arena);
    if (rc == 0) {
        bool ok = dead ? match_dead(&want, &got, false) : want.n == got.n;

        for (size_t i = 0; ok && !dead && i < want.n; i++) {
            ok = same_record(&want.rec[i], &got.rec[i], false);
        }
        if (!ok) {
            fail_line(r, c);
            printf("    %s: expected %zu %s, got %zu%s\n", want_text->node, want.n,
                   dead ? (want.n == 1 ? "dead letter" : "dead letters")
                        : (want.n == 1 ? "record" : "records"),
                   got.n, dead ? "" : " (- expected, + got)");
            rc = dead ? (match_dead(&want, &got, true), 0) : show_diff(&want, &got);
        }
        *ret_ok = *ret_ok && ok;
    }
    recs_release(&want);
    recs_release(&got);
    sl_buf_release(&got_text);
    return rc;
}

/* Under a failing case: the dead letters it made, which often say why. */
static void show_dead(struct run *r)
{
    struct recs dl = {0};

    if (r->dead.len == 0 || recs_parse(&dl, r->dead.data, r->dead.len, r->d, &r->arena) != 0) {
        recs_release(&dl);
        return;
    }
    printf("    %zu dead letter%s:\n", dl.n, dl.n == 1 ? "" : "s");
    for (size_t i = 0; i < dl.n && i < DEAD_SHOWN; i++) {
        const struct sl_field *node = sl_record_find(&dl.rec[i], "_node", 5);
        const struct sl_field *why = sl_record_find(&dl.rec[i], "_error", 6);

        printf("        at %.*s: %.*s\n", node != NULL ? (int)node->val.len : 1,
               node != NULL ? node->val.u.s : "?", why != NULL ? (int)why->val.len : 1,
               why != NULL ? why->val.u.s : "?");
    }
    if (dl.n > DEAD_SHOWN) {
        printf("        ... %zu more\n", dl.n - DEAD_SHOWN);
    }
    recs_release(&dl);
}

static int start(struct run *r, struct sl_err *err)
{
    r->loop = sl_loop_start(r->conf, false, false, NULL, err);
    if (r->loop == NULL || sl_pipeline_new(r->conf, &r->pl, err) != 0) {
        return err->code != 0 ? err->code : SL_ENOMEM;
    }
    sl_loop_attach(r->loop, r->pl);
    return sl_pipeline_start(r->pl, err);
}

/* Runs case i; *ret_ok tells whether it passed. Returns 0, or an error
 * that stops the remaining cases (out of memory, interrupted). */
static int run_case(const struct sl_conf *plain, size_t i, unsigned timeout_s, bool *ret_ok)
{
    const struct sl_conf_case *c = &plain->cases[i];
    struct run r = {0};
    struct sl_err err = {0};
    char msg[1024];
    bool ok = true;
    size_t dead_unlisted = 0;
    int rc = sl_conf_load_case(plain, i, &r.conf, &err);

    sl_arena_init(&r.arena);
    r.d = sl_json_decoder_new(0);
    rc = rc != 0 ? rc : r.d == NULL ? SL_ENOMEM : start(&r, &err);
    if (rc == 0 && sl_pipeline_wait(r.pl, timeout_s * 1000000000ull) == SL_ETIMEDOUT) {
        /* A case that does not end (a stuck plugin, a wait on something
         * that never comes) fails, drained within engine.drain_timeout
         * like a stopped run, instead of holding CI for ever. */
        struct sl_err late = {0};
        sl_err_set(&late, SL_ETIMEDOUT, "the case did not finish within %u s (--timeout)",
                   timeout_s);
        sl_pipeline_fail(r.pl, &late);
        sl_pipeline_wait(r.pl, 0);
    }
    sl_loop_stop(r.loop);
    sl_loop_guard_shutdown(r.loop, r.pl);
    bool stopped = rc == 0 && atomic_load(&r.pl->stop) && !atomic_load(&r.pl->failed);
    if (stopped) {
        printf("      %s: interrupted\n", c->name);
        ok = false;
    } else if (rc != 0 || (r.pl != NULL && atomic_load(&r.pl->failed))) {
        fail_line(&r, c);
        printf("    the pipeline failed: %s\n",
               sl_err_format(rc != 0 ? &err : &r.pl->fail_err, msg, sizeof(msg)));
        ok = false;
        rc = 0;
    } else {
        struct sl_node *dl = find_capture(r.pl, "dead_letter");

        rc = dl != NULL ? sl_case_captured(dl, &r.dead) : 0;
        for (size_t j = 0; rc == 0 && j < c->nexpect; j++) {
            rc = check_node(&r, c, &c->expect[j], &ok);
        }
        bool listed = false; /* the dead letters are in the diff already */
        for (size_t j = 0; j < c->nexpect; j++) {
            listed = listed || strcmp(c->expect[j].node, "dead_letter") == 0;
        }
        if (rc == 0 && !ok && !listed) {
            show_dead(&r);
        }
        if (rc == 0 && !ok) {
            show_shed(&r);
        }
        dead_unlisted = listed ? 0 : count_lines(&r.dead);
    }
    if (rc == 0 && ok) {
        printf("ok    ");
        print_name(c->name);
        /* Records that went nowhere the case looks: say so, even when it passes. */
        if (dead_unlisted > 0) {
            printf("  (%zu dead letter%s, not in expect)", dead_unlisted,
                   dead_unlisted == 1 ? "" : "s");
        }
        printf("\n");
    }
    if (stopped) {
        rc = SL_ECANCELED; /* a signal stopped it: do not go on */
    }
    sl_pipeline_free(r.pl);
    sl_loop_free(r.loop);
    sl_conf_free(r.conf);
    sl_json_decoder_free(r.d);
    sl_arena_release(&r.arena);
    sl_buf_release(&r.dead);
    *ret_ok = ok;
    return rc;
}

int sl_cases_run(const struct sl_conf *conf,
                 const char *path,
                 const char *cases_path,
                 unsigned timeout_s)
{
    size_t failed = 0, ran = 0;
    int rc = 0;

    if (conf->ncases == 0) {
        fprintf(stderr,
                "sluice: %s has no cases: its tests: section (a list of cases with inputs and "
                "expected output) is missing or empty\n",
                cases_path != NULL ? cases_path : path);
        return 2;
    }
    sl_log_set_quiet(1); /* errors still show */
    for (size_t i = 0; i < conf->ncases && rc == 0; i++) {
        bool ok = false;

        rc = run_case(conf, i, timeout_s, &ok);
        failed += !ok;
        ran++;
        fflush(stdout);
    }
    if (rc != 0) {
        printf("stopped after %zu of %zu cases: %s\n", ran, conf->ncases, sl_strerror(rc));
    }
    printf("%zu case%s: %zu passed, %zu failed\n", conf->ncases, conf->ncases == 1 ? "" : "s",
           ran - failed, failed);
    return failed > 0 || rc != 0 ? 1 : 0;
}
