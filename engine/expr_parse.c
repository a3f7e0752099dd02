/* SPDX-License-Identifier: MIT */
/* The expression parser: recursive descent over expr_lex.c's tokens,
 * building the flat node array that expr_eval.c walks. Every syntax error,
 * unknown name and wrong arity is found here, with its column. Runs once
 * per expression, on the thread that loads the config; the result is
 * read-only afterwards. */
#include "expr_int.h"
#include "mem.h"

#include <string.h>

#define MAX_TEXT_BYTES (1u << 20)

const struct sl__expr_fn_def sl__expr_fns[SL__FN_COUNT] = {
    [SL__FN_ROUND] = {"round", 1, 1},
    [SL__FN_FLOOR] = {"floor", 1, 1},
    [SL__FN_CEIL] = {"ceil", 1, 1},
    [SL__FN_ABS] = {"abs", 1, 1},
    [SL__FN_LOWER] = {"lower", 1, 1},
    [SL__FN_UPPER] = {"upper", 1, 1},
    [SL__FN_LEN] = {"len", 1, 1},
    [SL__FN_CONCAT] = {"concat", 1, SL__EXPR_MAX_ARGS},
    [SL__FN_SUBSTR] = {"substr", 2, 3},
    [SL__FN_CONTAINS] = {"contains", 2, 2},
    [SL__FN_STARTS_WITH] = {"starts_with", 2, 2},
    [SL__FN_ENDS_WITH] = {"ends_with", 2, 2},
    [SL__FN_COALESCE] = {"coalesce", 1, SL__EXPR_MAX_ARGS},
    [SL__FN_TO_INT] = {"to_int", 1, 1},
    [SL__FN_TO_FLOAT] = {"to_float", 1, 1},
    [SL__FN_TO_STRING] = {"to_string", 1, 1},
    [SL__FN_IF] = {"if", 3, 3},
    [SL__FN_NOW] = {"now", 0, 0},
};

const char *const sl__expr_meta_names[SL__META_COUNT] = {
    [SL__META_OFFSET] = "offset",       [SL__META_PARTITION] = "partition",
    [SL__META_TOPIC] = "topic",         [SL__META_KEY] = "key",
    [SL__META_TIMESTAMP] = "timestamp", [SL__META_HEADERS] = "headers",
    [SL__META_FILE] = "file",           [SL__META_LINE] = "line",
    [SL__META_PRIORITY] = "priority",
};

struct parser {
    struct sl_expr *e;
    struct sl__lexer lx;
    struct sl__tok tok; /* the current token */
    struct sl_err *err;
    uint32_t node_cap, seg_cap, arg_cap;
    uint32_t *stack; /* operands of lists being parsed, innermost last */
    uint32_t nstack, stack_cap;
    int nest; /* recursion depth of parse_expr/parse_unary */
};

static int parse_expr(struct parser *p, uint32_t *ret);

static int advance(struct parser *p)
{
    return sl__expr_lex_next(&p->lx, &p->tok, p->err);
}

static bool tok_is_word(const struct sl__tok *tok, const char *word)
{
    return tok->kind == SL__TOK_IDENT && tok->slen == strlen(word) &&
           memcmp(tok->s, word, tok->slen) == 0;
}

static int oom(struct parser *p)
{
    return sl_err_set(p->err, SL_ENOMEM, "out of memory compiling an expression");
}

/* Grows *arr (of elem_size items, *cap of them) to hold one more. */
static int grow(struct parser *p, void **arr, uint32_t *cap, uint32_t used, size_t elem_size)
{
    if (used < *cap) {
        return 0;
    }
    uint32_t n = *cap ? *cap * 2 : 16;
    void *a = sl_realloc(*arr, (size_t)n * elem_size);
    if (a == NULL) {
        return oom(p);
    }
    *arr = a;
    *cap = n;
    return 0;
}

/* Reports an unexpected current token. */
static int unexpected(struct parser *p, const char *what)
{
    const struct sl__tok *t = &p->tok;

    if (t->kind == SL__TOK_EOF) {
        return sl__expr_error_at(p->e, t->pos, p->err, "%s, found the end of the expression", what);
    }
    const char *hint = tok_is_word(t, "and")   ? " (did you mean '&&'?)"
                       : tok_is_word(t, "or")  ? " (did you mean '||'?)"
                       : tok_is_word(t, "not") ? " (did you mean '!'?)"
                                               : "";
    return sl__expr_error_at(p->e, t->pos, p->err, "%s, found '%.*s'%s", what,
                             (int)(t->len > 40 ? 40 : t->len), p->e->text + t->pos, hint);
}

static int expect(struct parser *p, uint8_t kind, const char *what)
{
    if (p->tok.kind != kind) {
        return sl__expr_error_at(p->e, p->tok.pos, p->err, "expected %s here", what);
    }
    return advance(p);
}

/* Appends a node and returns its index; depth is computed by finish(). */
static int new_node(struct parser *p, uint8_t op, uint32_t *ret)
{
    struct sl_expr *e = p->e;
    int rc = grow(p, (void **)&e->nodes, &p->node_cap, e->nnodes, sizeof(*e->nodes));

    if (rc != 0) {
        return rc;
    }
    memset(&e->nodes[e->nnodes], 0, sizeof(e->nodes[0]));
    e->nodes[e->nnodes].op = op;
    e->nodes[e->nnodes].depth = 1;
    *ret = e->nnodes++;
    return 0;
}

static uint16_t max_depth(uint16_t a, uint16_t b)
{
    return a > b ? a : b;
}

/* Computes the node's depth from its children and enforces the limit, so
 * evaluation recursion stays bounded. pos locates the error. */
static int finish(struct parser *p, uint32_t idx, size_t pos)
{
    struct sl_expr *e = p->e;
    struct sl__expr_node *n = &e->nodes[idx];
    uint16_t d = 0;

    switch (n->op) {
    case SL__OP_LIT:
    case SL__OP_FIELD:
    case SL__OP_META:
        break;
    case SL__OP_NEG:
    case SL__OP_NOT:
        d = e->nodes[n->a].depth;
        break;
    case SL__OP_IN:
    case SL__OP_AND:
    case SL__OP_OR:
    case SL__OP_CALL:
        d = n->op == SL__OP_IN ? e->nodes[n->a].depth : 0;
        for (uint32_t i = 0; i < n->count; i++) {
            d = max_depth(d, e->nodes[e->args[n->first + i]].depth);
        }
        break;
    default:
        d = max_depth(e->nodes[n->a].depth, e->nodes[n->b].depth);
        break;
    }
    if (d + 1 > SL__EXPR_MAX_DEPTH) {
        return sl__expr_error_at(e, pos, p->err, "expression is nested too deeply (limit %d)",
                                 SL__EXPR_MAX_DEPTH);
    }
    n->depth = (uint16_t)(d + 1);
    return 0;
}

static int push_operand(struct parser *p, uint32_t idx)
{
    int rc = grow(p, (void **)&p->stack, &p->stack_cap, p->nstack, sizeof(*p->stack));

    if (rc == 0) {
        p->stack[p->nstack++] = idx;
    }
    return rc;
}

/* Moves the operands pushed since base into e->args as node idx's list. */
static int pop_operands(struct parser *p, uint32_t base, uint32_t idx)
{
    struct sl_expr *e = p->e;
    uint32_t n = p->nstack - base;

    while (p->arg_cap < e->nargs + n) {
        int rc = grow(p, (void **)&e->args, &p->arg_cap, p->arg_cap, sizeof(*e->args));
        if (rc != 0) {
            return rc;
        }
    }
    if (n > 0) {
        memcpy(e->args + e->nargs, p->stack + base, n * sizeof(*e->args));
    }
    e->nodes[idx].first = e->nargs;
    e->nodes[idx].count = n;
    e->nargs += n;
    p->nstack = base;
    return 0;
}

static int push_seg(struct parser *p, uint8_t kind, const char *name, uint32_t len, int64_t idx)
{
    struct sl_expr *e = p->e;
    int rc = grow(p, (void **)&e->segs, &p->seg_cap, e->nsegs, sizeof(*e->segs));

    if (rc != 0) {
        return rc;
    }
    e->segs[e->nsegs].kind = kind;
    e->segs[e->nsegs].name = name;
    e->segs[e->nsegs].len = len;
    e->segs[e->nsegs].idx = idx;
    e->nsegs++;
    return 0;
}

/* Parses the segments after a path's root: .name, .`name`, [n], ["name"]. */
static int parse_segments(struct parser *p, uint32_t idx)
{
    uint32_t first = p->e->nsegs;
    int rc = 0;

    while (rc == 0 && (p->tok.kind == SL__TOK_DOT || p->tok.kind == SL__TOK_LBRACK)) {
        bool dot = p->tok.kind == SL__TOK_DOT;
        rc = advance(p);
        if (rc != 0) {
            break;
        }
        struct sl__tok t = p->tok;
        if (dot && (t.kind == SL__TOK_IDENT || t.kind == SL__TOK_QNAME)) {
            rc = push_seg(p, SL__SEG_NAME, t.s, t.slen, 0);
        } else if (dot) {
            return unexpected(p, "expected a field name after '.'");
        } else if (t.kind == SL__TOK_STRING) {
            rc = push_seg(p, SL__SEG_NAME, t.s, t.slen, 0);
        } else if (t.kind == SL__TOK_INT && t.u <= INT64_MAX) {
            rc = push_seg(p, SL__SEG_INDEX, NULL, 0, (int64_t)t.u);
        } else {
            return unexpected(p, "expected an index (a non-negative integer) or a \"name\"");
        }
        if (rc == 0) {
            rc = advance(p);
        }
        if (rc == 0 && !dot) {
            rc = expect(p, SL__TOK_RBRACK, "']'");
        }
    }
    p->e->nodes[idx].first = first;
    p->e->nodes[idx].count = p->e->nsegs - first;
    return rc;
}

static int parse_meta(struct parser *p, uint32_t *ret)
{
    struct sl__tok t = p->tok;
    int rc;

    for (int m = 0; m < SL__META_COUNT; m++) {
        if (t.slen == strlen(sl__expr_meta_names[m]) &&
            memcmp(t.s, sl__expr_meta_names[m], t.slen) == 0) {
            rc = new_node(p, SL__OP_META, ret);
            if (rc == 0) {
                p->e->nodes[*ret].fn = (uint8_t)m;
                rc = advance(p);
            }
            return rc != 0 ? rc : parse_segments(p, *ret);
        }
    }
    const char *near = sl__expr_suggest(t.s, t.slen, sl__expr_meta_names, SL__META_COUNT);
    return sl__expr_error_at(p->e, t.pos, p->err, "unknown metadata '@%.*s'%s%s%s", (int)t.slen,
                             t.s, near ? " (did you mean '@" : "", near ? near : "",
                             near ? "'?)" : "");
}

static int lookup_fn(struct parser *p, const struct sl__tok *t, int *ret_fn)
{
    const char *names[SL__FN_COUNT];

    for (int f = 0; f < SL__FN_COUNT; f++) {
        names[f] = sl__expr_fns[f].name;
        if (t->slen == strlen(names[f]) && memcmp(t->s, names[f], t->slen) == 0) {
            *ret_fn = f;
            return 0;
        }
    }
    const char *near = sl__expr_suggest(t->s, t->slen, names, SL__FN_COUNT);
    return sl__expr_error_at(p->e, t->pos, p->err, "unknown function '%.*s'%s%s%s", (int)t->slen,
                             t->s, near ? " (did you mean '" : "", near ? near : "",
                             near ? "'?)" : "");
}

static int check_arity(struct parser *p, const struct sl__tok *name, int fn, uint32_t n)
{
    const struct sl__expr_fn_def *def = &sl__expr_fns[fn];

    if (n >= def->min_args && n <= def->max_args) {
        return 0;
    }
    if (def->min_args == def->max_args) {
        return sl__expr_error_at(p->e, name->pos, p->err, "%s() takes %d argument%s, got %u",
                                 def->name, def->min_args, def->min_args == 1 ? "" : "s", n);
    }
    if (n < def->min_args) {
        return sl__expr_error_at(p->e, name->pos, p->err,
                                 "%s() takes at least %d argument%s, got %u", def->name,
                                 def->min_args, def->min_args == 1 ? "" : "s", n);
    }
    return sl__expr_error_at(p->e, name->pos, p->err, "%s() takes at most %d arguments, got %u",
                             def->name, def->max_args, n);
}

/* Parses a comma-separated list up to `close` (the opening token is already
 * consumed) and attaches it to node idx. */
static int parse_list(struct parser *p, uint32_t idx, uint8_t close, const char *what)
{
    uint32_t base = p->nstack;
    uint32_t item;
    int rc = 0;

    if (p->tok.kind != close) {
        for (;;) {
            rc = parse_expr(p, &item);
            if (rc == 0) {
                rc = push_operand(p, item);
            }
            if (rc != 0 || p->tok.kind != SL__TOK_COMMA) {
                break;
            }
            rc = advance(p);
            if (rc != 0) {
                break;
            }
        }
    }
    if (rc == 0) {
        rc = expect(p, close, what);
    }
    if (rc != 0) {
        p->nstack = base;
        return rc;
    }
    return pop_operands(p, base, idx);
}

/* An identifier: a function call if '(' follows, else a field path. */
static int parse_name(struct parser *p, uint32_t *ret)
{
    struct sl__tok name = p->tok;
    int fn = 0;
    int rc = advance(p);

    if (rc == 0 && name.kind == SL__TOK_IDENT && p->tok.kind == SL__TOK_LPAREN) {
        rc = lookup_fn(p, &name, &fn);
        if (rc == 0) {
            rc = new_node(p, SL__OP_CALL, ret);
        }
        if (rc == 0) {
            p->e->nodes[*ret].fn = (uint8_t)fn;
            rc = advance(p);
        }
        if (rc == 0) {
            rc = parse_list(p, *ret, SL__TOK_RPAREN, "',' or ')'");
        }
        if (rc == 0) {
            rc = check_arity(p, &name, fn, p->e->nodes[*ret].count);
        }
        return rc != 0 ? rc : finish(p, *ret, name.pos);
    }
    if (rc == 0) {
        rc = new_node(p, SL__OP_FIELD, ret);
    }
    if (rc == 0) {
        p->e->nodes[*ret].lit = sl_value_str(name.s, name.slen);
        rc = parse_segments(p, *ret);
    }
    return rc;
}

static int parse_literal(struct parser *p, struct sl_value v, uint32_t *ret)
{
    int rc = new_node(p, SL__OP_LIT, ret);

    if (rc == 0) {
        p->e->nodes[*ret].lit = v;
        rc = advance(p);
    }
    return rc;
}

static int parse_primary(struct parser *p, uint32_t *ret)
{
    struct sl__tok t = p->tok;
    int rc;

    switch (t.kind) {
    case SL__TOK_INT:
        if (t.u > INT64_MAX) {
            return sl__expr_error_at(p->e, t.pos, p->err, "integer %.*s is out of range",
                                     (int)t.len, p->e->text + t.pos);
        }
        return parse_literal(p, sl_value_int((int64_t)t.u), ret);
    case SL__TOK_FLOAT:
        return parse_literal(p, sl_value_double(t.d), ret);
    case SL__TOK_STRING:
        return parse_literal(p, sl_value_str(t.s, t.slen), ret);
    case SL__TOK_META:
        return parse_meta(p, ret);
    case SL__TOK_QNAME:
        return parse_name(p, ret);
    case SL__TOK_LPAREN:
        rc = advance(p);
        if (rc == 0) {
            rc = parse_expr(p, ret);
        }
        return rc != 0 ? rc : expect(p, SL__TOK_RPAREN, "')'");
    case SL__TOK_IDENT:
        if (tok_is_word(&t, "true") || tok_is_word(&t, "false")) {
            return parse_literal(p, sl_value_bool(tok_is_word(&t, "true")), ret);
        }
        if (tok_is_word(&t, "null")) {
            return parse_literal(p, sl_value_null(), ret);
        }
        if (!tok_is_word(&t, "in")) {
            return parse_name(p, ret);
        }
        break;
    default:
        break;
    }
    return unexpected(p, "expected a value");
}

static int parse_unary(struct parser *p, uint32_t *ret)
{
    struct sl__tok op = p->tok;
    uint32_t a;
    int rc;

    if (op.kind != SL__TOK_MINUS && op.kind != SL__TOK_BANG) {
        return parse_primary(p, ret);
    }
    if (++p->nest > SL__EXPR_MAX_DEPTH) {
        return sl__expr_error_at(p->e, op.pos, p->err, "expression is nested too deeply");
    }
    rc = advance(p);
    /* Fold -<number>, which also makes -9223372036854775808 expressible. */
    if (rc == 0 && op.kind == SL__TOK_MINUS && p->tok.kind == SL__TOK_INT &&
        p->tok.u <= (UINT64_C(1) << 63)) {
        int64_t v = p->tok.u == (UINT64_C(1) << 63) ? INT64_MIN : -(int64_t)p->tok.u;
        rc = parse_literal(p, sl_value_int(v), ret);
    } else if (rc == 0 && op.kind == SL__TOK_MINUS && p->tok.kind == SL__TOK_FLOAT) {
        rc = parse_literal(p, sl_value_double(-p->tok.d), ret);
    } else {
        if (rc == 0) {
            rc = parse_unary(p, &a);
        }
        if (rc == 0) {
            rc = new_node(p, op.kind == SL__TOK_MINUS ? SL__OP_NEG : SL__OP_NOT, ret);
        }
        if (rc == 0) {
            p->e->nodes[*ret].a = a;
            rc = finish(p, *ret, op.pos);
        }
    }
    p->nest--;
    return rc;
}

/* Binary operator levels, loosest first after && (which, like ||, is
 * flattened by parse_logical). */
enum level { LVL_EQ, LVL_REL, LVL_ADD, LVL_MUL, LVL_COUNT };

static int binary_op(enum level lvl, uint8_t kind)
{
    static const struct {
        uint8_t lvl, tok, op;
    } ops[] = {
        {LVL_EQ, SL__TOK_EQ, SL__OP_EQ},        {LVL_EQ, SL__TOK_NE, SL__OP_NE},
        {LVL_REL, SL__TOK_LT, SL__OP_LT},       {LVL_REL, SL__TOK_LE, SL__OP_LE},
        {LVL_REL, SL__TOK_GT, SL__OP_GT},       {LVL_REL, SL__TOK_GE, SL__OP_GE},
        {LVL_ADD, SL__TOK_PLUS, SL__OP_ADD},    {LVL_ADD, SL__TOK_MINUS, SL__OP_SUB},
        {LVL_MUL, SL__TOK_STAR, SL__OP_MUL},    {LVL_MUL, SL__TOK_SLASH, SL__OP_DIV},
        {LVL_MUL, SL__TOK_PERCENT, SL__OP_MOD},
    };

    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
        if (ops[i].lvl == lvl && ops[i].tok == kind) {
            return ops[i].op;
        }
    }
    return -1;
}

static int parse_binary(struct parser *p, enum level lvl, uint32_t *ret)
{
    uint32_t lhs, rhs;
    int rc = lvl + 1 < LVL_COUNT ? parse_binary(p, lvl + 1, &lhs) : parse_unary(p, &lhs);

    while (rc == 0) {
        struct sl__tok op = p->tok;
        int code = binary_op(lvl, op.kind);
        if (code < 0) {
            break;
        }
        rc = advance(p);
        if (rc == 0) {
            rc = lvl + 1 < LVL_COUNT ? parse_binary(p, lvl + 1, &rhs) : parse_unary(p, &rhs);
        }
        if (rc == 0) {
            rc = new_node(p, (uint8_t)code, ret);
        }
        if (rc == 0) {
            p->e->nodes[*ret].a = lhs;
            p->e->nodes[*ret].b = rhs;
            rc = finish(p, *ret, op.pos);
            lhs = *ret;
        }
    }
    *ret = lhs;
    return rc;
}

/* x in [a, b, ...]: binds looser than == and tighter than &&. */
static int parse_in(struct parser *p, uint32_t *ret)
{
    uint32_t lhs;
    int rc = parse_binary(p, LVL_EQ, &lhs);

    while (rc == 0 && tok_is_word(&p->tok, "in")) {
        size_t pos = p->tok.pos;
        rc = advance(p);
        if (rc == 0 && p->tok.kind != SL__TOK_LBRACK) {
            return unexpected(p, "expected '[' after 'in'");
        }
        if (rc == 0) {
            rc = advance(p);
        }
        if (rc == 0) {
            rc = new_node(p, SL__OP_IN, ret);
        }
        if (rc == 0) {
            p->e->nodes[*ret].a = lhs;
            rc = parse_list(p, *ret, SL__TOK_RBRACK, "',' or ']'");
        }
        if (rc == 0) {
            rc = finish(p, *ret, pos);
            lhs = *ret;
        }
    }
    *ret = lhs;
    return rc;
}

/* a && b && c (tok SL__TOK_AND) or a || b || c: one n-ary node, so long
 * chains do not make deep trees. */
static int parse_logical(struct parser *p, uint8_t tok, uint32_t *ret)
{
    uint32_t base = p->nstack;
    uint32_t item;
    size_t pos = p->tok.pos;
    int rc = tok == SL__TOK_OR ? parse_logical(p, SL__TOK_AND, &item) : parse_in(p, &item);

    if (rc != 0 || p->tok.kind != tok) {
        *ret = item;
        return rc;
    }
    rc = push_operand(p, item);
    while (rc == 0 && p->tok.kind == tok) {
        rc = advance(p);
        if (rc == 0) {
            rc = tok == SL__TOK_OR ? parse_logical(p, SL__TOK_AND, &item) : parse_in(p, &item);
        }
        if (rc == 0) {
            rc = push_operand(p, item);
        }
    }
    if (rc == 0) {
        rc = new_node(p, tok == SL__TOK_OR ? SL__OP_OR : SL__OP_AND, ret);
    }
    if (rc == 0) {
        rc = pop_operands(p, base, *ret);
    }
    if (rc != 0) {
        p->nstack = base;
        return rc;
    }
    return finish(p, *ret, pos);
}

static int parse_expr(struct parser *p, uint32_t *ret)
{
    int rc;

    if (++p->nest > SL__EXPR_MAX_DEPTH) {
        return sl__expr_error_at(p->e, p->tok.pos, p->err, "expression is nested too deeply");
    }
    rc = parse_logical(p, SL__TOK_OR, ret);
    p->nest--;
    return rc;
}

struct sl_expr *sl_expr_compile(const char *text, size_t len, struct sl_err *err)
{
    struct parser p = {.err = err};
    int rc;

    if (len > MAX_TEXT_BYTES) {
        sl_err_set(err, SL_ECONFIG, "expression is too long (%zu bytes, limit %u)", len,
                   MAX_TEXT_BYTES);
        return NULL;
    }
    p.e = sl_calloc(1, sizeof(*p.e));
    /* The pool never outgrows the text: an unescaped literal is shorter
     * than its source, quotes included, so pointers into it stay valid. */
    char *block = p.e != NULL ? sl_malloc(2 * len + 2) : NULL;
    if (block == NULL) {
        sl_err_set(err, SL_ENOMEM, "out of memory compiling an expression");
        sl_free(p.e);
        return NULL;
    }
    if (len > 0) {
        memcpy(block, text, len);
    }
    block[len] = '\0';
    p.e->text = block;
    p.e->text_len = len;
    p.e->pool = block + len + 1;
    p.lx.e = p.e;
    rc = advance(&p);
    if (rc == 0 && p.tok.kind == SL__TOK_EOF) {
        rc = sl__expr_error_at(p.e, 0, err, "empty expression");
    }
    if (rc == 0) {
        rc = parse_expr(&p, &p.e->root);
    }
    if (rc == 0 && p.tok.kind != SL__TOK_EOF) {
        rc = unexpected(&p, "expected an operator or the end of the expression");
    }
    sl_free(p.stack);
    if (rc != 0) {
        return sl_expr_free(p.e);
    }
    return p.e;
}

struct sl_expr *sl_expr_free(struct sl_expr *e)
{
    if (e != NULL) {
        sl_free(e->nodes);
        sl_free(e->segs);
        sl_free(e->args);
        sl_free(e->text);
        sl_free(e);
    }
    return NULL;
}

const char *sl_expr_text(const struct sl_expr *e)
{
    return e->text;
}

/* Adds the values node idx can give to *mask (see sl_expr_int_choices). */
static int int_choices(const struct sl_expr *e,
                       uint32_t idx,
                       int64_t lo,
                       int64_t hi,
                       uint64_t *mask,
                       struct sl_err *err)
{
    const struct sl__expr_node *n = &e->nodes[idx];

    if (n->op == SL__OP_CALL && n->fn == SL__FN_IF) {
        int rc = int_choices(e, e->args[n->first + 1], lo, hi, mask, err);
        return rc != 0 ? rc : int_choices(e, e->args[n->first + 2], lo, hi, mask, err);
    }
    /* What can never be an int: said when loading, not as a dead letter
     * for every record. */
    const char *kind = NULL;
    switch (n->op) {
    case SL__OP_NOT:
    case SL__OP_LT:
    case SL__OP_LE:
    case SL__OP_GT:
    case SL__OP_GE:
    case SL__OP_EQ:
    case SL__OP_NE:
    case SL__OP_IN:
    case SL__OP_AND:
    case SL__OP_OR:
        kind = "a bool";
        break;
    case SL__OP_DIV:
        kind = "a float (/ always does)";
        break;
    case SL__OP_CALL:
        kind =
            n->fn == SL__FN_LOWER || n->fn == SL__FN_UPPER || n->fn == SL__FN_CONCAT ||
                    n->fn == SL__FN_SUBSTR || n->fn == SL__FN_TO_STRING
                ? "a string"
            : n->fn == SL__FN_CONTAINS || n->fn == SL__FN_STARTS_WITH || n->fn == SL__FN_ENDS_WITH
                ? "a bool"
            : n->fn == SL__FN_TO_FLOAT ? "a float"
                                       : NULL;
        break;
    default:
        break;
    }
    if (kind != NULL) {
        return sl_err_set(err, SL_ECONFIG, "it gives %s, not an int %lld..%lld", kind,
                          (long long)lo, (long long)hi);
    }
    if (n->op != SL__OP_LIT) {
        /* Computed: any value of the range. */
        for (int64_t v = lo; v <= hi; v++) {
            *mask |= (uint64_t)1 << v;
        }
        return 0;
    }
    if (n->lit.type == SL_TYPE_NULL) {
        *mask |= (uint64_t)1 << lo;
        return 0;
    }
    if (n->lit.type == SL_TYPE_INT && (n->lit.u.i < lo || n->lit.u.i > hi)) {
        return sl_err_set(err, SL_ECONFIG, "it gives %lld, not an int %lld..%lld",
                          (long long)n->lit.u.i, (long long)lo, (long long)hi);
    }
    if (n->lit.type != SL_TYPE_INT) {
        return sl_err_set(err, SL_ECONFIG, "it gives a %s, not an int %lld..%lld",
                          sl_type_name((enum sl_type)n->lit.type), (long long)lo, (long long)hi);
    }
    *mask |= (uint64_t)1 << n->lit.u.i;
    return 0;
}

int sl_expr_int_choices(
    const struct sl_expr *e, int64_t lo, int64_t hi, uint64_t *ret_mask, struct sl_err *err)
{
    uint64_t mask = 0;

    SL_ASSERT(lo >= 0 && lo <= hi && hi < 64);
    int rc = int_choices(e, e->root, lo, hi, &mask, err);
    if (rc == 0) {
        *ret_mask = mask;
    }
    return rc;
}

bool sl_expr_calls_now(const struct sl_expr *e)
{
    for (uint32_t i = 0; i < e->nnodes; i++) {
        if (e->nodes[i].op == SL__OP_CALL && e->nodes[i].fn == SL__FN_NOW) {
            return true;
        }
    }
    return false;
}

bool sl_expr_reads_meta(const struct sl_expr *e, const char *name)
{
    for (uint32_t i = 0; i < e->nnodes; i++) {
        if (e->nodes[i].op == SL__OP_META &&
            strcmp(sl__expr_meta_names[e->nodes[i].fn], name) == 0) {
            return true;
        }
    }
    return false;
}

bool sl_expr_next_field(const struct sl_expr *e,
                        size_t *pos,
                        const char **ret_name,
                        size_t *ret_len)
{
    for (size_t i = *pos; i < e->nnodes; i++) {
        const struct sl__expr_node *n = &e->nodes[i];
        if (n->op == SL__OP_FIELD) {
            *ret_name = n->lit.u.s;
            *ret_len = n->lit.len;
            *pos = i + 1;
            return true;
        }
    }
    *pos = e->nnodes;
    return false;
}
