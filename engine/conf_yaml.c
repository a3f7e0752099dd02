/* SPDX-License-Identifier: MIT */
/* The YAML layer of the config loader: libyaml events -> a tree of located
 * nodes (conf_int.h) with YAML 1.2 core typing, ${VAR} expansion, and refusal
 * of anchors, aliases, tags, duplicate keys and extra documents; plus the
 * --set overrides, applied to that tree. Thread: main, at start-up.
 *
 * Chosen rules:
 * - Only plain scalars are typed: null (~, null, empty), bool (true/True/TRUE,
 *   false/False/FALSE), int (decimal, 0o17, 0x1f), float; yes/no/on/off are
 *   strings. Quoted and block scalars are always strings.
 * - ${VAR} and ${VAR:-default} (default when unset or empty) are expanded in
 *   every scalar, keys and quoted ones included, before typing, with Docker
 *   Compose's other forms: ${VAR-default} (when unset), ${VAR:?message} and
 *   ${VAR?message} (an error), ${VAR:+text} and ${VAR+text} (when set); `$$` is a
 *   literal `$`; a `$` not followed by `{` or `$` is kept as is. An unset
 *   variable without default is an error naming it. A default may hold
 *   references, expanded only when the default is used, as Docker Compose
 *   does: ${A:-${B:-x}}.
 * - --set a.b."c.d"=value: segments split at dots, double quotes keep dots;
 *   missing mappings are created. The value is a plain scalar (typed, quotes
 *   kept literally), or a YAML flow collection when it starts with [ or {.
 *   Errors in it are reported with file "--set" and no line. */
#include "buf.h"
#include "conf_int.h"
#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define SET_MAX_SEGS 16
#define PATH_CHAIN   (2 * SL__CONF_MAX_DEPTH + SET_MAX_SEGS + 8)

/* One libyaml parse: of the file, or of a --set value or option default. */
struct yb {
    struct sl__loader *ld;
    yaml_parser_t parser;
    const char *text; /* the bytes parsed, to locate reader errors */
    size_t len;
    const char *file;            /* file of every node */
    int fixed, line, col;        /* fixed: every node gets line/col */
    int env;                     /* expand ${VAR} */
    struct sl__ynode *parent;    /* where the root will hang (paths) */
    const struct sl__ynode *key; /* the root's key, or NULL */
};

/* ==== Nodes, paths, errors ==== */

struct sl__ynode *
sl__ynew(struct sl__loader *ld, enum sl__ykind kind, const char *file, int line, int col)
{
    struct sl__ynode *node = sl__conf_alloc(ld, sizeof(*node));

    if (node != NULL) {
        node->kind = kind;
        node->tag = kind == SL__Y_SCALAR ? SL__T_NULL : SL__T_STR;
        node->text = "";
        node->file = file;
        node->line = line;
        node->col = col;
    }
    return node;
}

static int push_kid(struct sl__loader *ld, struct sl__ynode *parent, struct sl__ynode *kid)
{
    if (parent->nkids == parent->cap) {
        size_t cap = parent->cap != 0 ? parent->cap * 2 : 8;
        struct sl__ynode **kids = sl__conf_alloc(ld, cap * sizeof(*kids));

        if (kids == NULL) {
            return SL_ENOMEM;
        }
        if (parent->nkids != 0) {
            memcpy(kids, parent->kids, parent->nkids * sizeof(*kids));
        }
        parent->kids = kids;
        parent->cap = cap;
    }
    kid->parent = parent;
    parent->kids[parent->nkids++] = kid;
    return 0;
}

int sl__ymap_add(struct sl__loader *ld,
                 struct sl__ynode *map,
                 struct sl__ynode *key,
                 struct sl__ynode *value)
{
    int rc;

    key->key = key;
    value->key = key;
    rc = push_kid(ld, map, key);
    if (rc == 0) {
        rc = push_kid(ld, map, value);
    }
    return rc;
}

struct sl__ynode *sl__ycopy(struct sl__loader *ld, const struct sl__ynode *map)
{
    struct sl__ynode *copy = sl__conf_alloc(ld, sizeof(*copy));
    struct sl__ynode **kids = sl__conf_alloc(ld, (map->nkids + 1) * sizeof(*kids));

    if (copy == NULL || kids == NULL) {
        return NULL;
    }
    *copy = *map;
    if (map->nkids > 0) {
        memcpy(kids, map->kids, map->nkids * sizeof(*kids));
    }
    copy->kids = kids;
    copy->cap = map->nkids + 1;
    return copy;
}

int sl__yseq_add(struct sl__loader *ld, struct sl__ynode *seq, struct sl__ynode *item)
{
    item->index = seq->nkids;
    return push_kid(ld, seq, item);
}

struct sl__ynode *sl__ymap_find(const struct sl__ynode *map, const char *key)
{
    if (map == NULL || map->kind != SL__Y_MAP) {
        return NULL;
    }
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        if (strcmp(map->kids[i]->text, key) == 0) {
            return map->kids[i + 1];
        }
    }
    return NULL;
}

const char *sl__ypath(const struct sl__ynode *node, char *buf, size_t len)
{
    const struct sl__ynode *chain[PATH_CHAIN];
    size_t n = 0, off = 0;

    for (const struct sl__ynode *p = node; p != NULL && p->parent != NULL && n < PATH_CHAIN;
         p = p->parent) {
        chain[n++] = p;
    }
    buf[0] = '\0';
    while (n-- > 0 && off < len) {
        const struct sl__ynode *p = chain[n];
        int w;

        if (p->key != NULL) {
            const char *k = p->key->text;
            const char *q = !p->key->verbatim && strchr(k, '.') != NULL ? "\"" : "";

            w = snprintf(buf + off, len - off, "%s%s%s%s", off != 0 ? "." : "", q, k, q);
        } else {
            w = snprintf(buf + off, len - off, "[%zu]", p->index);
        }
        off += w > 0 ? (size_t)w : 0;
    }
    return buf;
}

const char *sl__ydescribe(const struct sl__ynode *node, char *buf, size_t len)
{
    if (node->kind == SL__Y_SEQ) {
        snprintf(buf, len, "a list");
    } else if (node->kind == SL__Y_MAP) {
        snprintf(buf, len, "a mapping");
    } else if (node->len == 0) {
        snprintf(buf, len, "an empty value");
    } else if (node->len > 40) {
        snprintf(buf, len, "'%.37s...'", node->text);
    } else {
        snprintf(buf, len, "'%s'", node->text);
    }
    return buf;
}

int sl__yerr(struct sl__loader *ld, const struct sl__ynode *node, const char *fmt, ...)
{
    char msg[SL_ERR_MSG_MAX];
    char path[SL_ERR_PATH_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return sl_err_set_at(ld->err, node->file, node->line, node->col,
                         sl__ypath(node, path, sizeof(path)), "%s", msg);
}

/* ==== Scalars: ${VAR} and core-schema typing ==== */

static int is_float(const char *s, size_t len)
{
    const char *p = s + (s[0] == '-' || s[0] == '+');
    size_t n = strspn(p, "0123456789"), f = 0;

    if (strcmp(p, ".inf") == 0 || strcmp(p, ".Inf") == 0 || strcmp(p, ".INF") == 0) {
        return 1;
    }
    if (strcmp(s, ".nan") == 0 || strcmp(s, ".NaN") == 0 || strcmp(s, ".NAN") == 0) {
        return 1;
    }
    p += n;
    if (*p == '.') {
        f = strspn(p + 1, "0123456789");
        p += 1 + f;
    }
    if (n == 0 && f == 0) {
        return 0;
    }
    if (*p == 'e' || *p == 'E') {
        p += 1 + (p[1] == '-' || p[1] == '+');
        n = strspn(p, "0123456789");
        if (n == 0) {
            return 0;
        }
        p += n;
    }
    return p == s + len;
}

/* YAML 1.2 core schema: null, bool, int (decimal, 0o octal, 0x hex), float. */
static enum sl__ytag plain_tag(const char *s, size_t len)
{
    return sl__yaml_plain_tag(s, len);
}

enum sl__ytag sl__yaml_plain_tag(const char *s, size_t len)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE", NULL};
    size_t sign = s[0] == '-' || s[0] == '+';

    for (size_t i = 0; nulls[i] != NULL; i++) {
        if (strcmp(s, nulls[i]) == 0) {
            return SL__T_NULL;
        }
    }
    for (size_t i = 0; bools[i] != NULL; i++) {
        if (strcmp(s, bools[i]) == 0) {
            return SL__T_BOOL;
        }
    }
    if (len > 2 && s[0] == '0' && s[1] == 'o' && strspn(s + 2, "01234567") == len - 2) {
        return SL__T_INT;
    }
    if (len > 2 && s[0] == '0' && s[1] == 'x' &&
        strspn(s + 2, "0123456789abcdefABCDEF") == len - 2) {
        return SL__T_INT;
    }
    if (len > sign && strspn(s + sign, "0123456789") == len - sign) {
        return SL__T_INT;
    }
    return is_float(s, len) ? SL__T_FLOAT : SL__T_STR;
}

#define ENV_MAX_NESTING 16 /* ${A:-${B:-...}} levels: bounds the recursion */

static int expand_env(struct sl__loader *ld,
                      const struct sl__ynode *at,
                      const char *s,
                      size_t len,
                      int depth,
                      struct sl_buf *out,
                      int *ret_refs);

/* The '}' that closes the "${" before s[0], or NULL. Braces pair up as in
 * a shell, so a default may hold "${B}", "$${B}" (a literal "${B}") or
 * "{x}" whole. */
static const char *env_close(const char *s, size_t len)
{
    int open = 1;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '{') {
            open++;
        } else if (s[i] == '}' && --open == 0) {
            return s + i;
        }
    }
    return NULL;
}

/* Appends the value of the text inside ${}: NAME, or NAME then one of
 * Docker Compose's operators: ":-" / "-" default when unset or empty / unset,
 * ":?" / "?" error (with the text as message) when unset or empty / unset,
 * ":+" / "+" the text when set and not empty / set. The text is expanded
 * in turn, only when used: ${A:-${B:-x}}. */
static int expand_var(struct sl__loader *ld,
                      const struct sl__ynode *at,
                      const char *in,
                      size_t n,
                      int depth,
                      struct sl_buf *out,
                      int *ret_refs)
{
    static const char word[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
    char name[128];
    size_t nlen = 0;

    while (nlen < n && strchr(word, in[nlen]) != NULL && in[nlen] != '\0') {
        nlen++;
    }
    bool colon = nlen < n && in[nlen] == ':';
    size_t op = nlen + (colon ? 1 : 0);
    char kind = op < n ? in[op] : '\0';
    if (nlen == 0 || nlen >= sizeof(name) || strspn(in, "0123456789") != 0 ||
        (nlen < n && kind != '-' && kind != '?' && kind != '+')) {
        return sl__yerr(ld, at, "invalid variable name in '${%.*s}'", (int)(n > 60 ? 60 : n), in);
    }
    memcpy(name, in, nlen);
    name[nlen] = '\0';
    const char *val = getenv(name);
    bool set = val != NULL && (!colon || val[0] != '\0');
    const char *text = in + op + 1;
    size_t tlen = nlen < n ? n - op - 1 : 0;

    if ((kind == '-' && !set) || (kind == '+' && set)) {
        return expand_env(ld, at, text, tlen, depth + 1, out, ret_refs);
    }
    if (kind == '+') {
        return 0;
    }
    if (kind == '?' && !set) {
        struct sl_buf msg = {0};
        int rc = expand_env(ld, at, text, tlen, depth + 1, &msg, ret_refs);
        if (rc == 0) {
            rc = sl__yerr(ld, at, "environment variable '%s' is %s: %.*s", name,
                          val == NULL ? "not set" : "empty", (int)msg.len,
                          msg.data != NULL ? msg.data : "");
        }
        sl_buf_release(&msg);
        return rc;
    }
    if (val == NULL) {
        return sl__yerr(ld, at,
                        "environment variable '%s' is not set (write ${%s:-default} for a default)",
                        name, name);
    }
    return sl_buf_append(out, val, strlen(val));
}

/* ${VAR} -> environment, ${VAR:-default} and the other forms of
 * expand_var, $$ -> $; any other $ is literal.
 * depth counts the defaults being expanded around s. *ret_refs counts the
 * ${...} references. */
static int expand_env(struct sl__loader *ld,
                      const struct sl__ynode *at,
                      const char *s,
                      size_t len,
                      int depth,
                      struct sl_buf *out,
                      int *ret_refs)
{
    int rc = 0;

    if (depth > ENV_MAX_NESTING) {
        return sl__yerr(ld, at, "${VAR:-default} nested more than %d deep", ENV_MAX_NESTING);
    }
    for (size_t i = 0; i < len && rc == 0; i++) {
        if (s[i] != '$' || i + 1 == len || (s[i + 1] != '$' && s[i + 1] != '{')) {
            rc = sl_buf_putc(out, s[i]);
        } else if (s[i + 1] == '$') {
            rc = sl_buf_putc(out, '$');
            i++;
        } else {
            const char *end = env_close(s + i + 2, len - i - 2);

            if (end == NULL) {
                return sl__yerr(ld, at, "unterminated '${' (write '$$' for a literal '$')");
            }
            (*ret_refs)++;
            rc = expand_var(ld, at, s + i + 2, (size_t)(end - s - i - 2), depth, out, ret_refs);
            i = (size_t)(end - s);
        }
    }
    return rc;
}

/* Sets node's text from raw (expanding ${VAR} when env) and its tag: typed
 * when plain, or when a quoted or block scalar held a ${VAR} reference:
 * '${T:-2}' is the integer 2, as in Fluent Bit, where a variable's value
 * takes the type its option wants. An empty expansion stays an empty
 * string there, not null. */
static int set_text(
    struct sl__loader *ld, struct sl__ynode *node, const char *raw, size_t len, int env, int plain)
{
    struct sl_buf buf = {0};
    int refs = 0;
    int rc = 0;

    if (memchr(raw, '\0', len) != NULL) {
        return sl__yerr(ld, node, "NUL characters are not allowed");
    }
    if (env && memchr(raw, '$', len) != NULL) {
        rc = expand_env(ld, node, raw, len, 0, &buf, &refs);
        if (rc == 0 && (buf.len != len || memcmp(buf.data, raw, len) != 0)) {
            node->exact = 0;
        }
        if (rc == 0 && buf.len != 0) {
            raw = buf.data;
            len = buf.len;
        } else if (rc == 0) {
            raw = "";
            len = 0;
        }
    }
    if (rc == 0) {
        node->text = sl_arena_strndup(ld->arena, raw, len);
        node->len = len;
        rc = node->text == NULL ? sl__conf_oom(ld) : 0;
    }
    if (rc == 0) {
        enum sl__ytag tag = plain_tag(node->text, len);

        node->tag = plain || (refs > 0 && tag != SL__T_NULL) ? tag : SL__T_STR;
    }
    sl_buf_release(&buf);
    return rc == SL_ENOMEM ? sl__conf_oom(ld) : rc;
}

/* ==== Events -> tree ==== */

static void offset_to_linecol(const char *text, size_t len, size_t offset, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/* The bytes of line (0-based) of text, and their count in *ret_len. */
static const char *line_at(const char *text, size_t len, size_t line, size_t *ret_len)
{
    const char *p = text, *end = text + len, *nl;

    while (line > 0 && (nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        p = nl + 1;
        line--;
    }
    nl = line == 0 ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    *ret_len = line != 0 ? 0 : nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
    return p;
}

/* What libyaml's messages leave out for two common mistakes: a tab in the
 * indentation, and a ${VAR} inside a flow collection, where '{' ends a
 * plain scalar. "" when neither applies. */
static const char *parser_hint(const struct yb *b)
{
    const yaml_parser_t *p = &b->parser;
    size_t n = 0;
    const char *s = line_at(b->text, b->len, p->problem_mark.line, &n);
    size_t indent = strspn(s, " \t");

    if (memchr(s, '\t', indent < n ? indent : n) != NULL) {
        return "; tabs are not allowed for indentation in YAML: use spaces";
    }
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] == '$' && s[i + 1] == '{' && p->context != NULL && strstr(p->context, "flow")) {
            return "; inside [...] or {...}, quote a ${VAR}: '${VAR}' (a number stays a number)";
        }
    }
    return "";
}

static int parser_error(struct yb *b)
{
    const yaml_parser_t *p = &b->parser;
    struct sl__ynode at = {.parent = b->parent, .key = b->key};
    char path[SL_ERR_PATH_MAX];
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;

    if (p->error == YAML_MEMORY_ERROR) {
        return sl__conf_oom(b->ld);
    }
    if (p->error == YAML_READER_ERROR) {
        offset_to_linecol(b->text, b->len, p->problem_offset, &line, &col);
    }
    if (b->fixed) {
        line = b->line;
        col = b->col;
    }
    sl__ypath(&at, path, sizeof(path));
    return sl_err_set_at(b->ld->err, b->file, line, col, path, "%s%s%s%s%s",
                         p->problem != NULL ? p->problem : "invalid YAML",
                         p->context != NULL ? " (" : "", p->context != NULL ? p->context : "",
                         p->context != NULL ? ")" : "",
                         p->error == YAML_READER_ERROR ? "" : parser_hint(b));
}

static int next_event(struct yb *b, yaml_event_t *ev)
{
    return yaml_parser_parse(&b->parser, ev) ? 0 : parser_error(b);
}

static struct sl__ynode *new_at(struct yb *b, enum sl__ykind kind, const yaml_mark_t *mark)
{
    if (b->fixed) {
        return sl__ynew(b->ld, kind, b->file, b->line, b->col);
    }
    return sl__ynew(b->ld, kind, b->file, (int)mark->line + 1, (int)mark->column + 1);
}

/* Refuses aliases, anchors and tags: sluice configs are plain data. */
static int refuse(struct yb *b, const yaml_event_t *ev, const struct sl__ynode *at)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;

    if (ev->type == YAML_ALIAS_EVENT) {
        return sl__yerr(b->ld, at, "anchors and aliases are not supported");
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
    } else if (ev->type == YAML_MAPPING_START_EVENT) {
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
    }
    if (anchor != NULL) {
        return sl__yerr(b->ld, at, "anchors and aliases are not supported");
    }
    if (tag != NULL) {
        return sl__yerr(b->ld, at, "tags are not supported ('%.60s')", (const char *)tag);
    }
    return 0;
}

static int fill_scalar(struct yb *b, const yaml_event_t *ev, struct sl__ynode *node)
{
    yaml_scalar_style_t style = ev->data.scalar.style;
    int block = style == YAML_LITERAL_SCALAR_STYLE || style == YAML_FOLDED_SCALAR_STYLE;
    size_t len = ev->data.scalar.length;
    size_t span = ev->end_mark.index - ev->start_mark.index;

    node->quoted =
        style == YAML_SINGLE_QUOTED_SCALAR_STYLE || style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    node->exact = !b->fixed && !block && ev->start_mark.line == ev->end_mark.line &&
                  span == len + 2 * (size_t)node->quoted;
    return set_text(b->ld, node, (const char *)ev->data.scalar.value, len, b->env,
                    !block && !node->quoted);
}

static int build(struct yb *b,
                 const yaml_event_t *ev,
                 struct sl__ynode *parent,
                 const struct sl__ynode *key,
                 size_t index,
                 int depth,
                 struct sl__ynode **ret);

static int build_seq(struct yb *b, struct sl__ynode *seq, int depth)
{
    for (;;) {
        struct sl__ynode *item = NULL;
        yaml_event_t ev;
        int rc = next_event(b, &ev);

        if (rc != 0) {
            return rc;
        }
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        rc = build(b, &ev, seq, NULL, seq->nkids, depth + 1, &item);
        yaml_event_delete(&ev);
        if (rc == 0) {
            item->index = seq->nkids;
            rc = push_kid(b->ld, seq, item);
        }
        if (rc != 0) {
            return rc;
        }
    }
}

static int
build_key(struct yb *b, const yaml_event_t *ev, struct sl__ynode *map, struct sl__ynode **ret)
{
    struct sl__ynode *key = new_at(b, SL__Y_SCALAR, &ev->start_mark);
    const struct sl__ynode *first;
    int rc;

    if (key == NULL) {
        return SL_ENOMEM;
    }
    if (ev->type != YAML_SCALAR_EVENT) {
        char path[SL_ERR_PATH_MAX];

        return sl_err_set_at(b->ld->err, key->file, key->line, key->col,
                             sl__ypath(map, path, sizeof(path)), "keys must be plain strings");
    }
    key->parent = map;
    key->key = key;
    rc = refuse(b, ev, key);
    if (rc == 0) {
        rc = fill_scalar(b, ev, key);
    }
    first = rc == 0 ? sl__ymap_find(map, key->text) : NULL;
    if (first != NULL && first->key->line > 0) {
        return sl__yerr(b->ld, key, "duplicate key '%s' (first at line %d)", key->text,
                        first->key->line);
    }
    if (first != NULL) {
        return sl__yerr(b->ld, key, "duplicate key '%s'", key->text);
    }
    *ret = key;
    return rc;
}

static int build_map(struct yb *b, struct sl__ynode *map, int depth)
{
    for (;;) {
        struct sl__ynode *key = NULL, *value = NULL;
        yaml_event_t ev;
        int rc = next_event(b, &ev);

        if (rc != 0) {
            return rc;
        }
        if (ev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        rc = build_key(b, &ev, map, &key);
        yaml_event_delete(&ev);
        if (rc == 0) {
            rc = next_event(b, &ev);
            if (rc == 0) {
                rc = build(b, &ev, map, key, 0, depth + 1, &value);
                yaml_event_delete(&ev);
            }
        }
        if (rc == 0) {
            rc = sl__ymap_add(b->ld, map, key, value);
        }
        if (rc != 0) {
            return rc;
        }
    }
}

/* Builds the node that starts with ev (borrowed) and everything inside it. */
static int build(struct yb *b,
                 const yaml_event_t *ev,
                 struct sl__ynode *parent,
                 const struct sl__ynode *key,
                 size_t index,
                 int depth,
                 struct sl__ynode **ret)
{
    enum sl__ykind kind = ev->type == YAML_SEQUENCE_START_EVENT  ? SL__Y_SEQ
                          : ev->type == YAML_MAPPING_START_EVENT ? SL__Y_MAP
                                                                 : SL__Y_SCALAR;
    struct sl__ynode *node = new_at(b, kind, &ev->start_mark);
    int rc;

    if (node == NULL) {
        return SL_ENOMEM;
    }
    node->parent = parent;
    node->key = key;
    node->index = index;
    rc = refuse(b, ev, node);
    if (rc == 0 && depth > SL__CONF_MAX_DEPTH) {
        rc = sl__yerr(b->ld, node, "nested deeper than %d levels", SL__CONF_MAX_DEPTH);
    }
    if (rc == 0 && kind == SL__Y_SCALAR) {
        rc = fill_scalar(b, ev, node);
    } else if (rc == 0 && kind == SL__Y_SEQ) {
        rc = build_seq(b, node, depth);
    } else if (rc == 0) {
        rc = build_map(b, node, depth);
    }
    *ret = node;
    return rc;
}

/* Reads the stream: at most one document; *ret_root NULL if there is none. */
static int parse_stream(struct yb *b, struct sl__ynode **ret_root)
{
    int ndocs = 0;

    *ret_root = NULL;
    for (;;) {
        yaml_event_t ev;
        int rc = next_event(b, &ev);

        if (rc != 0) {
            return rc;
        }
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            return 0;
        }
        if (ev.type == YAML_DOCUMENT_START_EVENT && ndocs++ > 0) {
            struct sl__ynode *at = new_at(b, SL__Y_SCALAR, &ev.start_mark);

            rc = at == NULL ? SL_ENOMEM : sl__yerr(b->ld, at, "only one YAML document is allowed");
        } else if (ev.type != YAML_STREAM_START_EVENT && ev.type != YAML_DOCUMENT_START_EVENT &&
                   ev.type != YAML_DOCUMENT_END_EVENT) {
            rc = build(b, &ev, b->parent, b->key, 0, 0, ret_root);
        }
        yaml_event_delete(&ev);
        if (rc != 0) {
            return rc;
        }
    }
}

static int run_parser(struct yb *b, struct sl__ynode **ret_root)
{
    int rc;

    if (!yaml_parser_initialize(&b->parser)) {
        return sl__conf_oom(b->ld);
    }
    yaml_parser_set_input_string(&b->parser, (const unsigned char *)b->text, b->len);
    rc = parse_stream(b, ret_root);
    yaml_parser_delete(&b->parser);
    return rc;
}

int sl__yaml_parse(struct sl__loader *ld, const char *text, size_t len, struct sl__ynode **ret_root)
{
    struct yb b = {.ld = ld, .text = text, .len = len, .file = ld->file, .env = 1};

    return run_parser(&b, ret_root);
}

int sl__yaml_value(struct sl__loader *ld,
                   const char *text,
                   const char *file,
                   int line,
                   int col,
                   int env,
                   struct sl__ynode *parent,
                   const struct sl__ynode *key,
                   struct sl__ynode **ret)
{
    struct sl__ynode *node = NULL;
    int rc;

    if (text[0] == '[' || text[0] == '{') {
        struct yb b = {.ld = ld,
                       .text = text,
                       .len = strlen(text),
                       .file = file,
                       .fixed = 1,
                       .line = line,
                       .col = col,
                       .env = env,
                       .parent = parent,
                       .key = key};

        rc = run_parser(&b, &node);
        if (rc == 0 && node == NULL) {
            rc = sl_err_set_at(ld->err, file, line, col, "", "empty value");
        }
    } else {
        node = sl__ynew(ld, SL__Y_SCALAR, file, line, col);
        rc = node == NULL ? SL_ENOMEM : 0;
        if (rc == 0) {
            node->parent = parent;
            node->key = key;
            rc = set_text(ld, node, text, strlen(text), env, 1);
        }
    }
    if (rc == 0) {
        *ret = node;
    }
    return rc;
}

/* ==== --set ==== */

static int bad_set(struct sl__loader *ld, const char *set)
{
    return sl_err_set_at(ld->err, SL__SET_FILE, 0, 0, "", "expected key.path=value, got '%.100s'",
                         set);
}

/* Splits "a.\"x.y\".c=value" into segments and the value. */
static int split_set(struct sl__loader *ld,
                     const char *set,
                     const char **segs,
                     size_t *lens,
                     size_t *ret_n,
                     const char **ret_value)
{
    const char *p = set;
    size_t n = 0;

    for (;;) {
        if (n == SET_MAX_SEGS) {
            return sl_err_set_at(ld->err, SL__SET_FILE, 0, 0, "", "key path too deep in '%.100s'",
                                 set);
        }
        if (*p == '"') {
            const char *q = strchr(p + 1, '"');

            if (q == NULL || q == p + 1) {
                return bad_set(ld, set);
            }
            segs[n] = p + 1;
            lens[n++] = (size_t)(q - p - 1);
            p = q + 1;
        } else {
            size_t k = strcspn(p, ".=\"");

            if (k == 0) {
                return bad_set(ld, set);
            }
            segs[n] = p;
            lens[n++] = k;
            p += k;
        }
        if (*p == '=') {
            *ret_n = n;
            *ret_value = p + 1;
            return 0;
        }
        if (*p != '.') {
            return bad_set(ld, set);
        }
        p++;
    }
}

/* Puts value under key text seg in map, replacing an existing value. */
static int
set_entry(struct sl__loader *ld, struct sl__ynode *map, const char *seg, struct sl__ynode *value)
{
    struct sl__ynode *key;

    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        if (strcmp(map->kids[i]->text, seg) == 0) {
            map->kids[i + 1] = value;
            value->parent = map;
            value->key = map->kids[i];
            return 0;
        }
    }
    key = sl__ynew(ld, SL__Y_SCALAR, SL__SET_FILE, 0, 0);
    if (key == NULL) {
        return SL_ENOMEM;
    }
    key->text = seg;
    key->len = strlen(seg);
    key->tag = SL__T_STR;
    return sl__ymap_add(ld, map, key, value);
}

/* Returns in *ret the mapping under seg in map, creating it if missing. */
static int
set_descend(struct sl__loader *ld, struct sl__ynode *map, const char *seg, struct sl__ynode **ret)
{
    struct sl__ynode *val = sl__ymap_find(map, seg);
    char path[SL_ERR_PATH_MAX], got[64];
    int rc = 0;

    if (val == NULL || (val->kind == SL__Y_SCALAR && val->tag == SL__T_NULL)) {
        val = sl__ynew(ld, SL__Y_MAP, SL__SET_FILE, 0, 0);
        rc = val == NULL ? SL_ENOMEM : set_entry(ld, map, seg, val);
    } else if (val->kind != SL__Y_MAP) {
        return sl_err_set_at(ld->err, SL__SET_FILE, 0, 0, sl__ypath(val, path, sizeof(path)),
                             "cannot set a key inside %s", sl__ydescribe(val, got, sizeof(got)));
    }
    *ret = val;
    return rc;
}

/* A --set that goes into a node must name one that exists: creating
 * sinks.x from `sinks.x.table=t` would only report x's missing type. The
 * whole node may still be given: `--set 'sinks.x={type: null, ...}'`. */
static int set_node_exists(struct sl__loader *ld,
                           const struct sl__ynode *root,
                           const char *section,
                           const char *name)
{
    static const char *const sections[] = {"sources", "stages", "sinks", NULL};
    const struct sl__ynode *map = sl__ymap_find(root, section);
    const struct sl__ynode *node = name != NULL ? sl__ymap_find(map, name) : NULL;
    char path[SL_ERR_PATH_MAX], hint[96];
    struct sl__hint h;
    size_t i = 0;

    if (strcmp(section, "dead_letter") == 0 && (map == NULL || map->kind != SL__Y_MAP)) {
        return sl_err_set_at(ld->err, SL__SET_FILE, 0, 0, section,
                             "the file has no dead_letter sink to set a key in");
    }
    while (sections[i] != NULL && strcmp(sections[i], section) != 0) {
        i++;
    }
    if (sections[i] == NULL || name == NULL || node != NULL) {
        return 0;
    }
    sl__hint_init(&h, name);
    for (size_t k = 0; map != NULL && map->kind == SL__Y_MAP && k + 1 < map->nkids; k += 2) {
        sl__hint_add(&h, map->kids[k]->text, map->kids[k]->len);
    }
    snprintf(path, sizeof(path), strchr(name, '.') != NULL ? "%s.\"%s\"" : "%s.%s", section, name);
    return sl_err_set_at(ld->err, SL__SET_FILE, 0, 0, path, "no node '%s' under %s%s", name,
                         section, sl__hint_text(&h, hint, sizeof(hint)));
}

int sl__yaml_set(struct sl__loader *ld, struct sl__ynode *root, const char *set)
{
    const char *segs[SET_MAX_SEGS], *text = NULL;
    size_t lens[SET_MAX_SEGS], n = 0;
    struct sl__ynode *map = root, *value = NULL, *key = NULL;
    char *seg = NULL, *first = NULL;
    int rc = split_set(ld, set, segs, lens, &n, &text);

    for (size_t i = 0; rc == 0 && i < n; i++) {
        seg = sl_arena_strndup(ld->arena, segs[i], lens[i]);
        if (seg == NULL) {
            return sl__conf_oom(ld);
        }
        first = i == 0 ? seg : first;
        if (i + 1 < n && i < 2) {
            rc = set_node_exists(ld, root, first, i == 1 ? seg : NULL);
        }
        if (rc == 0 && i + 1 < n) {
            rc = set_descend(ld, map, seg, &map);
        }
    }
    if (rc != 0) {
        return rc == SL_ENOMEM ? sl__conf_oom(ld) : rc;
    }
    /* The value's errors name its full path, so parse it under its key. */
    key = sl__ynew(ld, SL__Y_SCALAR, SL__SET_FILE, 0, 0);
    if (key == NULL) {
        return sl__conf_oom(ld);
    }
    key->text = seg;
    key->len = strlen(seg);
    key->parent = map;
    key->key = key;
    rc = sl__yaml_value(ld, text, SL__SET_FILE, 0, 0, 1, map, key, &value);
    if (rc == 0) {
        rc = set_entry(ld, map, seg, value);
    }
    return rc == SL_ENOMEM ? sl__conf_oom(ld) : rc;
}
