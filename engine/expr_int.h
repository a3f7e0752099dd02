/* SPDX-License-Identifier: MIT */
/* Private to the expression modules (expr_lex.c, expr_parse.c, expr_eval.c,
 * expr_func.c): the compiled form of an expression, the lexer the parser
 * drives, and the evaluator's internal calls. A compiled expression is a flat
 * array of nodes that refer to each other by index, plus path segments and
 * argument lists; one thread builds it at compile time, and it is read-only
 * afterwards. */
#ifndef SL_EXPR_INT_H
#define SL_EXPR_INT_H

#include "err.h"
#include "expr.h"
#include "json.h"
#include "record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits checked at compile time, so evaluation needs neither the heap nor
 * an unbounded stack. */
#define SL__EXPR_MAX_DEPTH 200 /* nesting of the tree (and of the parser) */
#define SL__EXPR_MAX_ARGS  32  /* arguments of a variadic function */

enum sl__expr_op {
    SL__OP_LIT,   /* lit */
    SL__OP_FIELD, /* root field lit.u.s/len, then segs[first .. first+count) */
    SL__OP_META,  /* metadata fn (enum sl__expr_meta), then segs[first ..) */
    SL__OP_NEG,   /* -a */
    SL__OP_NOT,   /* !a */
    SL__OP_ADD,   /* binary operators: a op b */
    SL__OP_SUB,
    SL__OP_MUL,
    SL__OP_DIV,
    SL__OP_MOD,
    SL__OP_LT,
    SL__OP_LE,
    SL__OP_GT,
    SL__OP_GE,
    SL__OP_EQ,
    SL__OP_NE,
    SL__OP_IN,   /* a in [args[first .. first+count)] */
    SL__OP_AND,  /* args[first ..] joined by && (flattened) */
    SL__OP_OR,   /* args[first ..] joined by || (flattened) */
    SL__OP_CALL, /* function fn applied to args[first .. first+count) */
    SL__OP_COUNT
};

enum sl__expr_fn {
    SL__FN_ROUND,
    SL__FN_FLOOR,
    SL__FN_CEIL,
    SL__FN_ABS,
    SL__FN_LOWER,
    SL__FN_UPPER,
    SL__FN_LEN,
    SL__FN_CONCAT,
    SL__FN_SUBSTR,
    SL__FN_CONTAINS,
    SL__FN_STARTS_WITH,
    SL__FN_ENDS_WITH,
    SL__FN_COALESCE,
    SL__FN_TO_INT,
    SL__FN_TO_FLOAT,
    SL__FN_TO_STRING,
    SL__FN_IF,
    SL__FN_NOW,
    SL__FN_COUNT
};

enum sl__expr_meta {
    SL__META_OFFSET,
    SL__META_PARTITION,
    SL__META_TOPIC,
    SL__META_KEY,
    SL__META_TIMESTAMP,
    SL__META_HEADERS,
    SL__META_FILE,
    SL__META_LINE,
    SL__META_PRIORITY,
    SL__META_COUNT
};

struct sl__expr_fn_def {
    const char *name;
    uint8_t min_args;
    uint8_t max_args; /* SL__EXPR_MAX_ARGS for variadic functions */
};

/* Indexed by enum sl__expr_fn and enum sl__expr_meta (names without '@'). */
extern const struct sl__expr_fn_def sl__expr_fns[SL__FN_COUNT];
extern const char *const sl__expr_meta_names[SL__META_COUNT];

struct sl__expr_node {
    uint8_t op;          /* enum sl__expr_op */
    uint8_t fn;          /* SL__OP_CALL: enum sl__expr_fn; SL__OP_META: enum sl__expr_meta */
    uint16_t depth;      /* height of the subtree (compile time only) */
    uint32_t a, b;       /* children (unary: a; binary: a, b; SL__OP_IN: a) */
    uint32_t first;      /* first index into segs (paths) or args (lists) */
    uint32_t count;      /* number of segs or args */
    struct sl_value lit; /* SL__OP_LIT: the value; SL__OP_FIELD: the root name */
};

enum sl__expr_seg_kind {
    SL__SEG_NAME,  /* .name, .`name` or ["name"] */
    SL__SEG_INDEX, /* [n] */
};

struct sl__expr_seg {
    uint8_t kind;     /* enum sl__expr_seg_kind */
    uint32_t len;     /* bytes of name */
    const char *name; /* into the expression's text or pool */
    int64_t idx;      /* SL__SEG_INDEX, >= 0 */
};

struct sl_expr {
    char *text; /* NUL-terminated copy of the source (one block with pool) */
    size_t text_len;
    char *pool;      /* unescaped string literals and names, <= text_len + 1 bytes */
    size_t pool_len; /* bytes of pool in use */
    struct sl__expr_node *nodes;
    uint32_t nnodes;
    struct sl__expr_seg *segs;
    uint32_t nsegs;
    uint32_t *args; /* node indices of argument and operand lists */
    uint32_t nargs;
    uint32_t root; /* index of the root node */
};

/* ==== Lexer ==== */

enum sl__tok_kind {
    SL__TOK_EOF,
    SL__TOK_INT,    /* u (may be 2^63, which only a unary minus makes valid) */
    SL__TOK_FLOAT,  /* d */
    SL__TOK_STRING, /* s/slen, unescaped into the pool */
    SL__TOK_IDENT,  /* s/slen into text; keywords are identifiers too */
    SL__TOK_QNAME,  /* `quoted name`: s/slen, unescaped into the pool */
    SL__TOK_META,   /* @name: s/slen is the name without '@' */
    SL__TOK_LPAREN,
    SL__TOK_RPAREN,
    SL__TOK_LBRACK,
    SL__TOK_RBRACK,
    SL__TOK_COMMA,
    SL__TOK_DOT,
    SL__TOK_PLUS,
    SL__TOK_MINUS,
    SL__TOK_STAR,
    SL__TOK_SLASH,
    SL__TOK_PERCENT,
    SL__TOK_BANG,
    SL__TOK_LT,
    SL__TOK_LE,
    SL__TOK_GT,
    SL__TOK_GE,
    SL__TOK_EQ,
    SL__TOK_NE,
    SL__TOK_AND,
    SL__TOK_OR,
    SL__TOK_COUNT
};

struct sl__tok {
    uint8_t kind;  /* enum sl__tok_kind */
    size_t pos;    /* byte offset of the token in the text */
    size_t len;    /* bytes of the token in the text */
    uint64_t u;    /* SL__TOK_INT */
    double d;      /* SL__TOK_FLOAT */
    const char *s; /* SL__TOK_STRING, IDENT, QNAME, META */
    uint32_t slen;
};

struct sl__lexer {
    struct sl_expr *e; /* text to read, pool to unescape into */
    size_t pos;        /* next byte to read */
};

/* Reads the next token of lx into ret. Returns 0, or SL_ECONFIG with err
 * filled (message, err->col). */
int sl__expr_lex_next(struct sl__lexer *lx, struct sl__tok *ret, struct sl_err *err);

/* Fills err with SL_ECONFIG, the message and the 1-based column (counted in
 * code points) of byte offset pos of e's text. Returns SL_ECONFIG. */
int sl__expr_error_at(const struct sl_expr *e, size_t pos, struct sl_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Returns the candidate among names[0 .. n) closest to name (edit distance at
 * most 2, and less than the name's length), or NULL. */
const char *sl__expr_suggest(const char *name, size_t len, const char *const *names, size_t n);

/* ==== Evaluation (expr_eval.c, expr_func.c) ==== */

/* What one evaluation reads and writes; lives on the caller's stack. */
struct sl__expr_ctx {
    const struct sl_expr *e;
    const struct sl_record *rec;
    struct sl_arena *arena; /* new strings go here */
    struct sl_err *err;
};

/* Evaluates node idx into ret. Returns 0, SL_EDATA or SL_ENOMEM (err set). */
int sl__expr_eval_node(const struct sl__expr_ctx *cx, uint32_t idx, struct sl_value *ret);

/* Evaluates the SL__OP_CALL node n (expr_func.c). Same returns. */
int sl__expr_call(const struct sl__expr_ctx *cx,
                  const struct sl__expr_node *n,
                  struct sl_value *ret);

/* The equality of == (null == null, 1 == 1.0, strings bytewise, different
 * kinds unequal). */
bool sl__expr_equal(const struct sl_value *l, const struct sl_value *r);

/* Fills err with SL_EDATA "cannot apply <op> to <type>[ and <type>]" (r may
 * be NULL). Returns SL_EDATA. */
int sl__expr_type_error(const struct sl__expr_ctx *cx,
                        const char *op,
                        const struct sl_value *l,
                        const struct sl_value *r);

/* Fills err with SL_ENOMEM. Returns SL_ENOMEM. */
int sl__expr_oom(const struct sl__expr_ctx *cx);

#endif
