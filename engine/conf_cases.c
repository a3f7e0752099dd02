/* SPDX-License-Identifier: MIT */
/* The `tests:` section of a pipeline file: cases of input records per
 * source and expected output per node, converted from YAML to JSON lines
 * (so that records are decoded exactly as a JSON source decodes them), and
 * the rewrite that turns the pipeline into one case's run in memory
 * (`sluice test`): sources read the case's records, sinks capture what
 * they receive, and a capture sink hangs below every other node whose
 * output the case expects. */
#include "buf.h"
#include "conf_int.h"
#include "json.h"
#include "mem.h"
#include "sink.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const case_keys[] = {"name", "inputs", "expect", NULL};

/* Whether s is a number as JSON writes them: a JSON source reads it (an
 * integer beyond int64 or a double beyond its range as text), so a case
 * passes it on as written. */
static bool json_number(const char *s)
{
    s += *s == '-';
    if (*s == '0') {
        s++;
    } else if (*s >= '1' && *s <= '9') {
        s += strspn(s, "0123456789");
    } else {
        return false;
    }
    if (*s == '.') {
        size_t n = strspn(s + 1, "0123456789");
        if (n == 0) {
            return false;
        }
        s += 1 + n;
    }
    if (*s == 'e' || *s == 'E') {
        s += 1 + (s[1] == '+' || s[1] == '-');
        size_t n = strspn(s, "0123456789");
        if (n == 0) {
            return false;
        }
        s += n;
    }
    return *s == '\0';
}

static int write_scalar(struct sl__loader *ld, struct sl_buf *out, const struct sl__ynode *y)
{
    char num[40];

    if ((y->tag == SL__T_INT || y->tag == SL__T_FLOAT) && json_number(y->text)) {
        return sl_buf_append(out, y->text, y->len);
    }
    switch (y->tag) {
    case SL__T_NULL:
        return sl_buf_appendf(out, "null");
    case SL__T_BOOL:
        return sl_buf_appendf(out, "%s", y->text[0] == 't' || y->text[0] == 'T' ? "true" : "false");
    case SL__T_INT: {
        int64_t v = 0;
        int rc = sl__conf_int(ld, y, INT64_MIN, INT64_MAX, &v);
        return rc != 0 ? rc : sl_buf_appendf(out, "%" PRId64, v);
    }
    case SL__T_FLOAT: {
        double d = strpbrk(y->text, "iInN") != NULL ? NAN : strtod(y->text, NULL);
        if (!isfinite(d)) {
            return sl__yerr(ld, y, "a record holds no infinity or NaN (JSON has none): got '%s'",
                            y->text);
        }
        sl_json_format_double(d, num);
        return sl_buf_appendf(out, "%s", num);
    }
    case SL__T_STR:
        break;
    }
    return sl_json_write_string(out, y->text, y->len);
}

/* Appends y (any YAML value) to out as JSON. */
static int write_value(struct sl__loader *ld, struct sl_buf *out, const struct sl__ynode *y)
{
    int rc = 0;

    if (y->kind == SL__Y_SCALAR) {
        return write_scalar(ld, out, y);
    }
    bool map = y->kind == SL__Y_MAP;
    rc = sl_buf_appendf(out, map ? "{" : "[");
    for (size_t i = 0; rc == 0 && i < y->nkids; i += map ? 2 : 1) {
        rc = i > 0 ? sl_buf_appendf(out, ",") : 0;
        if (rc == 0 && map) {
            rc = sl_json_write_string(out, y->kids[i]->text, y->kids[i]->len);
            rc = rc != 0 ? rc : sl_buf_appendf(out, ":");
        }
        rc = rc != 0 ? rc : write_value(ld, out, y->kids[i + (map ? 1 : 0)]);
    }
    return rc != 0 ? rc : sl_buf_appendf(out, map ? "}" : "]");
}

/* Metadata an input record may set with "@name" keys, and what it takes. */
enum meta_kind { META_STR_OR_NULL, META_MAP, META_UINT, META_LINE, META_NAME };
static const struct {
    const char *name;
    enum meta_kind kind;
    bool kafka, file; /* which sources' records have it */
} metas[] = {
    {"@key", META_STR_OR_NULL, true, false}, {"@headers", META_MAP, true, false},
    {"@offset", META_UINT, true, true},      {"@partition", META_UINT, true, false},
    {"@timestamp", META_UINT, true, false},  {"@topic", META_NAME, true, false},
    {"@file", META_NAME, false, true},       {"@line", META_LINE, false, true},
};
#define NMETAS (sizeof(metas) / sizeof(metas[0]))

static int check_meta_value(struct sl__loader *ld,
                            const struct sl__ynode *k,
                            const struct sl__ynode *v,
                            size_t m)
{
    int64_t n = 0;
    char buf[64];

    switch (metas[m].kind) {
    case META_STR_OR_NULL:
        if (v->kind == SL__Y_SCALAR && (v->tag == SL__T_STR || v->tag == SL__T_NULL)) {
            return 0;
        }
        return sl__yerr(ld, v, "%s takes a string or null, got %s", k->text,
                        sl__ydescribe(v, buf, sizeof(buf)));
    case META_MAP:
        if (v->kind == SL__Y_MAP) {
            return 0;
        }
        return sl__yerr(ld, v, "%s takes a mapping of header names to values, got %s", k->text,
                        sl__ydescribe(v, buf, sizeof(buf)));
    case META_UINT:
    case META_LINE:
        if (v->kind != SL__Y_SCALAR || v->tag != SL__T_INT) {
            return sl__yerr(ld, v, "%s takes an integer, got %s", k->text,
                            sl__ydescribe(v, buf, sizeof(buf)));
        }
        return sl__conf_int(ld, v, metas[m].kind == META_LINE ? 1 : 0,
                            strcmp(k->text, "@partition") == 0 ? INT32_MAX : INT64_MAX, &n);
    case META_NAME:
        if (v->kind == SL__Y_SCALAR && v->tag == SL__T_STR && v->len > 0) {
            return 0;
        }
        return sl__yerr(ld, v, "%s takes a name, got %s", k->text,
                        sl__ydescribe(v, buf, sizeof(buf)));
    }
    return 0;
}

/* An input record's "@name" keys set its metadata: known names, with
 * values of their type. */
static int check_meta_keys(struct sl__loader *ld, const struct sl__ynode *rec)
{
    for (size_t i = 0; i < rec->nkids; i += 2) {
        const struct sl__ynode *k = rec->kids[i];
        size_t m = 0;

        if (k->text[0] != '@') {
            continue;
        }
        while (m < NMETAS && strcmp(metas[m].name, k->text) != 0) {
            m++;
        }
        if (m == NMETAS) {
            return sl__yerr(ld, k,
                            "unknown metadata '%s': an input record may set @key, @headers, "
                            "@offset, @partition, @timestamp, @topic (Kafka), @file, @line (files)",
                            k->text);
        }
        int rc = check_meta_value(ld, k, rec->kids[i + 1], m);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

/* An expected dead letter can only list the fields sinks write. */
static int check_dead_keys(struct sl__loader *ld, const struct sl__ynode *rec)
{
    for (size_t i = 0; i < rec->nkids; i += 2) {
        const struct sl__ynode *k = rec->kids[i];
        size_t j = 0;

        while (sl_dead_fields[j] != NULL && strcmp(sl_dead_fields[j], k->text) != 0) {
            j++;
        }
        if (sl_dead_fields[j] == NULL) {
            return sl__yerr(ld, k,
                            "a dead letter has no field '%s': it has _error, _node, _source, "
                            "_file and _line (or _topic, _partition, _offset), _raw, _id",
                            k->text);
        }
    }
    return 0;
}

/* One `node: [records]` entry of a case's inputs (input: "@" keys are
 * metadata) or expect. */
static int load_records(struct sl__loader *ld,
                        const struct sl__ynode *key,
                        const struct sl__ynode *list,
                        bool input,
                        struct sl_conf_case_records *ret)
{
    struct sl_buf out = {0};
    char buf[64];
    int rc = 0;

    if (list->kind == SL__Y_SCALAR && list->tag == SL__T_NULL) {
        list = NULL; /* `node:` alone: no records */
    } else if (list->kind != SL__Y_SEQ) {
        return sl__yerr(ld, list, "expected a list of records, got %s",
                        sl__ydescribe(list, buf, sizeof(buf)));
    }
    for (size_t i = 0; list != NULL && i < list->nkids && rc == 0; i++) {
        const struct sl__ynode *rec = list->kids[i];

        if (rec->kind != SL__Y_MAP) {
            rc = sl__yerr(ld, rec, "expected a record (a mapping of fields), got %s",
                          sl__ydescribe(rec, buf, sizeof(buf)));
            break;
        }
        rc = input                                   ? check_meta_keys(ld, rec)
             : strcmp(key->text, "dead_letter") == 0 ? check_dead_keys(ld, rec)
                                                     : 0;
        rc = rc != 0 ? rc : write_value(ld, &out, rec);
        rc = rc != 0 ? rc : sl_buf_appendf(&out, "\n");
    }
    if (rc == 0) {
        ret->node = key->text;
        ret->json = out.len > 0 ? sl_arena_strndup(ld->arena, out.data, out.len) : "";
        ret->count = list != NULL ? list->nkids : 0;
        ret->line = key->line;
        ret->col = key->col;
        rc = ret->json == NULL ? sl__conf_oom(ld) : 0;
    }
    sl_buf_release(&out);
    return rc == SL_ENOMEM ? sl__conf_oom(ld) : rc;
}

static int load_map(struct sl__loader *ld,
                    const struct sl__ynode *map,
                    bool input,
                    struct sl_conf_case_records **ret,
                    size_t *ret_n)
{
    char buf[64];

    if (map->kind == SL__Y_SCALAR && map->tag == SL__T_NULL) {
        return 0;
    }
    if (map->kind != SL__Y_MAP) {
        return sl__yerr(ld, map, "expected a mapping of node names to lists of records, got %s",
                        sl__ydescribe(map, buf, sizeof(buf)));
    }
    *ret = sl__conf_alloc(ld, (map->nkids / 2 + 1) * sizeof(**ret));
    if (*ret == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        int rc = load_records(ld, map->kids[i], map->kids[i + 1], input, &(*ret)[i / 2]);
        if (rc != 0) {
            return rc;
        }
    }
    *ret_n = map->nkids / 2;
    return 0;
}

/* Case i (0-based among all cases) c. Its records are converted only when
 * they are needed: sl_conf_load_case loads case i alone (the file was
 * checked whole before), which keeps the cases of a file linear. */
static int
load_case(struct sl__loader *ld, const struct sl__ynode *c, size_t i, struct sl_conf_case *ret)
{
    const struct sl__ynode *name = sl__ymap_find(c, "name");
    const struct sl__ynode *inputs = sl__ymap_find(c, "inputs");
    const struct sl__ynode *expect = sl__ymap_find(c, "expect");
    char buf[64];
    int rc = sl__check_keys(ld, c, case_keys, " (a case has name, inputs, expect)");

    if (rc != 0) {
        return rc;
    }
    if (name != NULL && (name->kind != SL__Y_SCALAR || name->len == 0)) {
        return sl__yerr(ld, name, "expected the case's name, got %s",
                        sl__ydescribe(name, buf, sizeof(buf)));
    }
    if (expect == NULL) {
        return sl__yerr(ld, c, "missing required key 'expect': the output a node should give");
    }
    ret->file = c->file;
    ret->line = c->line;
    ret->col = c->col;
    if (name != NULL) {
        ret->name = name->text;
    } else {
        snprintf(buf, sizeof(buf), "case %zu", i + 1);
        ret->name = sl_arena_strndup(ld->arena, buf, strlen(buf));
        if (ret->name == NULL) {
            return sl__conf_oom(ld);
        }
    }
    ret->named = name != NULL;
    if (ld->test_case != SIZE_MAX && ld->test_case != i) {
        return 0;
    }
    rc = inputs != NULL ? load_map(ld, inputs, true, &ret->inputs, &ret->ninputs) : 0;
    rc = rc != 0 ? rc : load_map(ld, expect, false, &ret->expect, &ret->nexpect);
    if (rc == 0 && ret->nexpect == 0) {
        return sl__yerr(ld, expect, "expected at least one node's output");
    }
    return rc;
}

int sl__conf_cases_add(struct sl__loader *ld, struct sl__ynode *root, const struct sl__ynode *more)
{
    const struct sl__ynode *mine = sl__ymap_find(root, "tests");
    struct sl__ynode *all;
    char buf[64];

    if (more->kind != SL__Y_SEQ) {
        return sl__yerr(ld, more, "expected a list of cases, got %s",
                        sl__ydescribe(more, buf, sizeof(buf)));
    }
    if (mine != NULL && mine->kind != SL__Y_SEQ) {
        return 0; /* sl__conf_cases_load says what is wrong with it */
    }
    /* Both lists' items, left under their own list (errors name their own
     * file and index). */
    size_t n = (mine != NULL ? mine->nkids : 0) + more->nkids;
    all = sl__ynew(ld, SL__Y_SEQ, more->file, more->line, more->col);
    if (all == NULL || (all->kids = sl__conf_alloc(ld, (n + 1) * sizeof(*all->kids))) == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; mine != NULL && i < mine->nkids; i++) {
        all->kids[all->nkids++] = mine->kids[i];
    }
    for (size_t i = 0; i < more->nkids; i++) {
        all->kids[all->nkids++] = more->kids[i];
    }
    all->cap = n + 1;
    ld->tests = all;
    return 0;
}

int sl__conf_cases_load(struct sl__loader *ld, const struct sl__ynode *root)
{
    const struct sl__ynode *tests = ld->tests != NULL ? ld->tests : sl__ymap_find(root, "tests");
    struct sl_conf *conf = ld->conf;
    char buf[64];

    if (tests == NULL || (tests->kind == SL__Y_SCALAR && tests->tag == SL__T_NULL)) {
        return 0;
    }
    if (tests->kind != SL__Y_SEQ) {
        return sl__yerr(ld, tests, "expected a list of cases, got %s",
                        sl__ydescribe(tests, buf, sizeof(buf)));
    }
    conf->cases = sl__conf_alloc(ld, (tests->nkids + 1) * sizeof(*conf->cases));
    if (conf->cases == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < tests->nkids; i++) {
        const struct sl__ynode *c = tests->kids[i];
        int rc;

        if (c->kind != SL__Y_MAP) {
            return sl__yerr(ld, c, "expected a case (name, inputs, expect), got %s",
                            sl__ydescribe(c, buf, sizeof(buf)));
        }
        rc = load_case(ld, c, i, &conf->cases[i]);
        /* Names written twice; a default "case N" may equal a written one
         * (the FAIL line tells them apart by file and line). */
        for (size_t j = 0; rc == 0 && ld->test_case == SIZE_MAX && conf->cases[i].named && j < i;
             j++) {
            if (conf->cases[j].named && strcmp(conf->cases[j].name, conf->cases[i].name) == 0) {
                rc =
                    sl__yerr(ld, sl__ymap_find(c, "name"), "case name '%s' is already used (%s:%d)",
                             conf->cases[i].name, conf->cases[j].file, conf->cases[j].line);
            }
        }
        if (rc != 0) {
            return rc;
        }
        conf->ncases++;
    }
    return 0;
}

/* ==== Names, once the graph is known ==== */

/* A Kafka source's records have Kafka metadata, the others a file's. */
static int
check_meta_kinds(struct sl__loader *ld, const struct sl_conf_node *cn, const struct sl__ynode *list)
{
    bool kafka = strcmp(cn->type->def.name, "kafka") == 0;

    for (size_t r = 0; list->kind == SL__Y_SEQ && r < list->nkids; r++) {
        const struct sl__ynode *rec = list->kids[r];

        for (size_t i = 0; i < rec->nkids; i += 2) {
            for (size_t m = 0; m < NMETAS; m++) {
                if (strcmp(metas[m].name, rec->kids[i]->text) == 0 &&
                    !(kafka ? metas[m].kafka : metas[m].file)) {
                    return sl__yerr(ld, rec->kids[i], "records of %s source '%s' have no %s (%s)",
                                    kafka ? "Kafka" : "a", cn->name, metas[m].name,
                                    kafka ? "they have @key, @headers, @offset, @partition, "
                                            "@timestamp, @topic"
                                          : "they have @file, @line, @offset");
                }
            }
        }
    }
    return 0;
}

/* Whether "node" or "node.output" names something whose output can be
 * expected: a node, a route's output, or the dead-letter sink. */
static const char *expect_target_problem(const struct sl_conf *conf, const char *name)
{
    static char why[160];
    const char *dot = strchr(name, '.');
    size_t len = dot != NULL ? (size_t)(dot - name) : strlen(name);

    if (strcmp(name, "dead_letter") == 0) {
        return NULL;
    }
    for (size_t i = 0; i < conf->nnodes; i++) {
        const struct sl_conf_node *cn = &conf->nodes[i];
        const char *outs[64];
        size_t n;

        if (strlen(cn->name) != len || strncmp(cn->name, name, len) != 0) {
            continue;
        }
        if (dot == NULL) {
            return NULL;
        }
        n = cn->type->outputs != NULL ? cn->type->outputs(cn->conf, outs, 64) : 0;
        for (size_t j = 0; j < n && j < 64; j++) {
            if (strcmp(outs[j], dot + 1) == 0) {
                return NULL;
            }
        }
        snprintf(why, sizeof(why), "node '%s' has no output '%s'", cn->name, dot + 1);
        return why;
    }
    snprintf(why, sizeof(why), "no node named '%.*s'", (int)len, name);
    return why;
}

int sl__conf_cases_check(struct sl__loader *ld, const struct sl__ynode *root)
{
    const struct sl__ynode *tests = ld->tests != NULL ? ld->tests : sl__ymap_find(root, "tests");
    const struct sl_conf *conf = ld->conf;

    for (size_t i = 0; ld->test_case == SIZE_MAX && i < conf->ncases; i++) {
        const struct sl__ynode *c = tests->kids[i];
        const struct sl__ynode *inputs = sl__ymap_find(c, "inputs");
        const struct sl__ynode *expect = sl__ymap_find(c, "expect");

        for (size_t j = 0; j < conf->cases[i].ninputs; j++) {
            const struct sl__ynode *key = inputs->kids[2 * j];
            const struct sl_conf_node *cn = sl_conf_find(conf, key->text);

            if (cn == NULL || cn->kind != SLUICE_KIND_SOURCE || cn == conf->dead_letter) {
                return sl__yerr(ld, key, "'%s' is not a source: inputs are given to sources",
                                key->text);
            }
            int rc = check_meta_kinds(ld, cn, inputs->kids[2 * j + 1]);
            if (rc != 0) {
                return rc;
            }
        }
        for (size_t j = 0; j < conf->cases[i].nexpect; j++) {
            const struct sl__ynode *key = expect->kids[2 * j];
            const char *why = expect_target_problem(conf, key->text);

            if (why != NULL) {
                return sl__yerr(ld, key, "%s", why);
            }
        }
    }
    return 0;
}

/* ==== One case's pipeline ==== */

static struct sl__ynode *scalar(struct sl__loader *ld, const struct sl__ynode *at, const char *text)
{
    struct sl__ynode *y = sl__ynew(ld, SL__Y_SCALAR, at->file, at->line, at->col);

    if (y != NULL) {
        y->tag = SL__T_STR;
        y->text = text;
        y->len = strlen(text);
    }
    return y;
}

static int add_scalar(struct sl__loader *ld,
                      struct sl__ynode *map,
                      const char *key,
                      const char *text,
                      const struct sl__ynode *at)
{
    struct sl__ynode *k = scalar(ld, at, key), *v = scalar(ld, at, text);

    if (k == NULL || v == NULL) {
        return SL_ENOMEM;
    }
    v->parent = map;
    k->parent = map;
    return sl__ymap_add(ld, map, k, v);
}

/* Appends key and value, nodes of the file's tree that other cases load
 * too, to map without changing them (not even their parent). */
static int add_shared(struct sl__loader *ld,
                      struct sl__ynode *map,
                      const struct sl__ynode *key,
                      const struct sl__ynode *value)
{
    if (map->nkids + 2 > map->cap) {
        size_t cap = map->cap != 0 ? map->cap * 2 : 8;
        struct sl__ynode **kids = sl__conf_alloc(ld, cap * sizeof(*kids));

        if (kids == NULL) {
            return SL_ENOMEM;
        }
        if (map->nkids > 0) {
            memcpy(kids, map->kids, map->nkids * sizeof(*kids));
        }
        map->kids = kids;
        map->cap = cap;
    }
    map->kids[map->nkids++] = (struct sl__ynode *)key;
    map->kids[map->nkids++] = (struct sl__ynode *)value;
    return 0;
}

/* A test node's mapping in place of old (which stays where it was in the
 * file, for errors): `type`, the node's own keys but type copied (inputs,
 * workers, priority...), and extra, a (key, value) if not NULL; for a
 * Kafka source, `topic`: its first topic. */
static int replace_node(struct sl__loader *ld,
                        struct sl__ynode *parent,
                        size_t at,
                        const char *type,
                        const char *extra_key,
                        const char *extra_val)
{
    struct sl__ynode *old = parent->kids[at];
    const struct sl__ynode *was = sl__ymap_find(old, "type");
    const struct sl__ynode *topics = sl__ymap_find(old, "topics");
    bool kafka = extra_key != NULL && was != NULL && strcmp(was->text, "kafka") == 0;
    struct sl__ynode *map = sl__ynew(ld, SL__Y_MAP, old->file, old->line, old->col);
    int rc;

    if (map == NULL) {
        return SL_ENOMEM;
    }
    map->parent = parent;
    map->key = parent->kids[at - 1];
    rc = add_scalar(ld, map, "type", type, old);
    for (size_t i = 0; rc == 0 && old->kind == SL__Y_MAP && i + 1 < old->nkids; i += 2) {
        const char *k = old->kids[i]->text;

        for (size_t j = 1; sl__node_own_keys[j] != NULL; j++) { /* [0] is "type" */
            if (strcmp(k, sl__node_own_keys[j]) == 0) {
                rc = add_shared(ld, map, old->kids[i], old->kids[i + 1]);
                break;
            }
        }
    }
    if (rc == 0 && extra_key != NULL) {
        rc = add_scalar(ld, map, extra_key, extra_val, old);
    }
    const struct sl__ynode *depth = sl__ymap_find(old, "max_depth");
    if (rc == 0 && extra_key != NULL && depth != NULL) {
        rc = add_shared(ld, map, depth->key, depth);
    }
    if (rc == 0 && kafka) {
        bool named = topics != NULL && topics->kind == SL__Y_SEQ && topics->nkids > 0 &&
                     topics->kids[0]->kind == SL__Y_SCALAR;
        rc = add_scalar(ld, map, "topic", named ? topics->kids[0]->text : "test", old);
    }
    if (rc == 0) {
        parent->kids[at] = map;
    }
    return rc;
}

/* The key of case i's j-th expect entry. */
static const struct sl__ynode *
expect_key(const struct sl__loader *ld, const struct sl__ynode *root, size_t i, size_t j)
{
    const struct sl__ynode *tests = ld->tests != NULL ? ld->tests : sl__ymap_find(root, "tests");

    return sl__ymap_find(tests->kids[i], "expect")->kids[2 * j];
}

/* Adds sinks[SL_CONF_CASE_CAPTURE + name] = {type: test_capture, inputs: [name]}. */
static int add_capture(struct sl__loader *ld, struct sl__ynode *sinks, const struct sl__ynode *at)
{
    size_t len = strlen(SL_CONF_CASE_CAPTURE) + at->len;
    char *name = sl__conf_alloc(ld, len + 1);
    struct sl__ynode *map = sl__ynew(ld, SL__Y_MAP, at->file, at->line, at->col);
    struct sl__ynode *list = sl__ynew(ld, SL__Y_SEQ, at->file, at->line, at->col);
    struct sl__ynode *key, *item, *in;
    int rc;

    if (name == NULL || map == NULL || list == NULL) {
        return SL_ENOMEM;
    }
    snprintf(name, len + 1, "%s%s", SL_CONF_CASE_CAPTURE, at->text);
    key = scalar(ld, at, name);
    in = scalar(ld, at, "inputs");
    item = scalar(ld, at, at->text);
    if (key == NULL || in == NULL || item == NULL) {
        return SL_ENOMEM;
    }
    key->verbatim = 1;
    key->parent = sinks;
    map->parent = sinks;
    rc = add_scalar(ld, map, "type", "test_capture", at);
    in->parent = map;
    list->parent = map;
    item->parent = list;
    rc = rc != 0 ? rc : sl__yseq_add(ld, list, item);
    rc = rc != 0 ? rc : sl__ymap_add(ld, map, in, list);
    return rc != 0 ? rc : sl__ymap_add(ld, sinks, key, map);
}

/* root's value of key replaced by a copy of its own (a MAP), or NULL. */
static struct sl__ynode *own_map(struct sl__loader *ld, struct sl__ynode *root, const char *key)
{
    for (size_t k = 0; k + 1 < root->nkids; k += 2) {
        struct sl__ynode *map = root->kids[k + 1];

        if (strcmp(root->kids[k]->text, key) == 0 && map->kind == SL__Y_MAP) {
            root->kids[k + 1] = sl__ycopy(ld, map);
            return root->kids[k + 1];
        }
    }
    return NULL;
}

int sl__conf_case_rewrite(struct sl__loader *ld, struct sl__ynode *root, size_t i)
{
    const struct sl_conf_case *c = &ld->conf->cases[i];
    /* root is the case's copy of the file's tree (sl_conf_load_case): the
     * maps it changes are copied too, the rest is shared with other cases. */
    struct sl__ynode *sources = own_map(ld, root, "sources");
    struct sl__ynode *sinks = own_map(ld, root, "sinks");
    struct sl__ynode *dead = sl__ymap_find(root, "dead_letter");
    int rc = 0;

    /* The file loaded whole before: both are there. */
    if (sources == NULL || sinks == NULL) {
        return SL_ENOMEM;
    }
    for (size_t k = 1; rc == 0 && k < sources->nkids; k += 2) {
        const char *records = "";

        for (size_t j = 0; j < c->ninputs; j++) {
            if (strcmp(c->inputs[j].node, sources->kids[k - 1]->text) == 0) {
                records = c->inputs[j].json;
            }
        }
        rc = replace_node(ld, sources, k, "test_input", "records", records);
    }
    for (size_t k = 1; rc == 0 && k < sinks->nkids; k += 2) {
        rc = replace_node(ld, sinks, k, "test_capture", NULL, NULL);
    }
    if (rc == 0 && dead != NULL) {
        for (size_t k = 1; k < root->nkids; k += 2) {
            if (root->kids[k] == dead) {
                rc = replace_node(ld, root, k, "test_capture", NULL, NULL);
            }
        }
    } else if (rc == 0) {
        struct sl__ynode *map = sl__ynew(ld, SL__Y_MAP, root->file, root->line, root->col);
        struct sl__ynode *key = scalar(ld, root, "dead_letter");

        if (map == NULL || key == NULL) {
            return SL_ENOMEM;
        }
        map->parent = root;
        key->parent = root;
        rc = add_scalar(ld, map, "type", "test_capture", root);
        rc = rc != 0 ? rc : sl__ymap_add(ld, root, key, map);
    }
    /* After the sinks were replaced: captures are test nodes already. */
    size_t nsinks = sinks->nkids;
    for (size_t j = 0; rc == 0 && j < c->nexpect; j++) {
        const char *node = c->expect[j].node;
        bool sink = strcmp(node, "dead_letter") == 0;

        for (size_t k = 0; !sink && k < nsinks; k += 2) {
            sink = strcmp(sinks->kids[k]->text, node) == 0;
        }
        if (!sink) {
            rc = add_capture(ld, sinks, expect_key(ld, root, i, j));
        }
    }
    return rc;
}
