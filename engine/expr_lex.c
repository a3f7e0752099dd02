/* SPDX-License-Identifier: MIT */
/* The expression lexer: turns the text of a `where`/`set`/`key` expression
 * into tokens for expr_parse.c, unescaping string literals and quoted names
 * into the expression's pool. Runs once per expression at compile time, on
 * the thread that loads the config. */
#include "expr_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int sl__expr_error_at(const struct sl_expr *e, size_t pos, struct sl_err *err, const char *fmt, ...)
{
    va_list ap;
    int col = 1;

    /* Columns count code points, as editors and libyaml do. */
    for (size_t i = 0; i < pos && i < e->text_len; i++) {
        if (((unsigned char)e->text[i] & 0xC0) != 0x80) {
            col++;
        }
    }
    if (err == NULL) {
        return SL_ECONFIG;
    }
    va_start(ap, fmt);
    sl_err_vset(err, SL_ECONFIG, fmt, ap);
    va_end(ap);
    err->file = NULL;
    err->line = 0;
    err->col = col;
    err->path[0] = '\0';
    return SL_ECONFIG;
}

static size_t edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t row[32];

    if (alen >= sizeof(row) / sizeof(row[0]) || blen >= sizeof(row) / sizeof(row[0])) {
        return SIZE_MAX;
    }
    for (size_t j = 0; j <= blen; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= alen; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= blen; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] == b[j - 1] ? 0 : 1);
            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[blen];
}

const char *sl__expr_suggest(const char *name, size_t len, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_dist = 3;

    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(name, len, names[i], strlen(names[i]));
        if (d < best_dist && d < len) {
            best = names[i];
            best_dist = d;
        }
    }
    return best;
}

static bool is_ident_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_ident_start(c) || is_digit(c);
}

static int hex_value(char c)
{
    if (is_digit(c)) {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Reads 4 hex digits at text[pos]; returns the value or -1. */
static long read_hex4(const struct sl_expr *e, size_t pos)
{
    long v = 0;

    if (pos + 4 > e->text_len) {
        return -1;
    }
    for (size_t i = 0; i < 4; i++) {
        int h = hex_value(e->text[pos + i]);
        if (h < 0) {
            return -1;
        }
        v = v * 16 + h;
    }
    return v;
}

static size_t put_utf8(char *out, unsigned long cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes \uXXXX (and a following low surrogate) at text[*pos] (just after
 * the 'u') into out; advances *pos. The escape is never longer than its
 * UTF-8 encoding, so the pool cannot overflow. */
static int
lex_unicode(struct sl__lexer *lx, size_t *pos, char *out, size_t *ret_n, struct sl_err *err)
{
    const struct sl_expr *e = lx->e;
    size_t esc = *pos - 2;
    long cp = read_hex4(e, *pos);

    if (cp < 0) {
        return sl__expr_error_at(e, esc, err, "expected 4 hex digits after '\\u'");
    }
    *pos += 4;
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return sl__expr_error_at(e, esc, err, "lone surrogate in '\\u' escape");
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        long lo = -1;
        if (*pos + 6 <= e->text_len && e->text[*pos] == '\\' && e->text[*pos + 1] == 'u') {
            lo = read_hex4(e, *pos + 2);
        }
        if (lo < 0xDC00 || lo > 0xDFFF) {
            return sl__expr_error_at(e, esc, err, "lone surrogate in '\\u' escape");
        }
        *pos += 6;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    *ret_n = put_utf8(out, (unsigned long)cp);
    return 0;
}

static size_t utf8_len_at(const char *t, size_t avail)
{
    unsigned char c = (unsigned char)t[0];
    size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return n < avail ? n : avail;
}

/* Decodes the escape whose backslash is at text[*pos - 1] of a string
 * literal into out; advances *pos past it. */
static int
lex_escape(struct sl__lexer *lx, size_t *pos, char *out, size_t *ret_n, struct sl_err *err)
{
    static const char from[] = "\"'\\/ntrbf";
    static const char to[] = "\"'\\/\n\t\r\b\f";
    const struct sl_expr *e = lx->e;
    char x = e->text[*pos];
    const char *p = x != '\0' ? strchr(from, x) : NULL;

    if (x == 'u') {
        *pos += 1;
        return lex_unicode(lx, pos, out, ret_n, err);
    }
    if (p == NULL) {
        return sl__expr_error_at(e, *pos - 1, err, "unknown escape '\\%.*s'",
                                 (int)utf8_len_at(e->text + *pos, e->text_len - *pos),
                                 e->text + *pos);
    }
    *pos += 1;
    out[0] = to[p - from];
    *ret_n = 1;
    return 0;
}

/* Reads a string literal quoted by `quote` or a `quoted name`, unescaping it
 * into the pool. Names (quote '`') know only \` and \\ as escapes; any other
 * backslash is kept as is. */
static int lex_quoted(struct sl__lexer *lx, char quote, struct sl__tok *tok, struct sl_err *err)
{
    struct sl_expr *e = lx->e;
    size_t pos = tok->pos + 1;
    char *out = e->pool + e->pool_len;
    size_t n = 0, k = 0;

    for (;;) {
        if (pos >= e->text_len) {
            return sl__expr_error_at(e, tok->pos, err,
                                     quote == '`' ? "unterminated quoted name"
                                                  : "unterminated string");
        }
        char c = e->text[pos++];
        if (c == quote) {
            break;
        }
        if (c != '\\' || pos >= e->text_len) {
            out[n++] = c;
        } else if (quote == '`') {
            char x = e->text[pos];
            out[n++] = (x == '`' || x == '\\') ? x : '\\';
            pos += (x == '`' || x == '\\') ? 1 : 0;
        } else {
            int rc = lex_escape(lx, &pos, out + n, &k, err);
            if (rc != 0) {
                return rc;
            }
            n += k;
        }
    }
    if (quote == '`' && n == 0) {
        return sl__expr_error_at(e, tok->pos, err, "empty quoted name");
    }
    out[n] = '\0';
    e->pool_len += n + 1;
    tok->kind = quote == '`' ? SL__TOK_QNAME : SL__TOK_STRING;
    tok->s = out;
    tok->slen = (uint32_t)n;
    tok->len = pos - tok->pos;
    return 0;
}

static int lex_number(struct sl__lexer *lx, struct sl__tok *tok, struct sl_err *err)
{
    const struct sl_expr *e = lx->e;
    const char *t = e->text;
    size_t pos = tok->pos;
    bool is_float = false;
    uint64_t u = 0;
    bool too_big = false;

    while (pos < e->text_len && is_digit(t[pos])) {
        unsigned d = (unsigned)(t[pos++] - '0');
        too_big = too_big || u > (UINT64_C(1) << 63) / 10 || u * 10 + d > (UINT64_C(1) << 63);
        u = u * 10 + d;
    }
    if (pos < e->text_len && t[pos] == '.') {
        if (pos + 1 >= e->text_len || !is_digit(t[pos + 1])) {
            return sl__expr_error_at(e, pos + 1, err, "expected a digit after '.'");
        }
        is_float = true;
        pos++;
        while (pos < e->text_len && is_digit(t[pos])) {
            pos++;
        }
    }
    if (pos < e->text_len && (t[pos] == 'e' || t[pos] == 'E')) {
        size_t exp = pos + 1;
        if (exp < e->text_len && (t[exp] == '+' || t[exp] == '-')) {
            exp++;
        }
        if (exp >= e->text_len || !is_digit(t[exp])) {
            return sl__expr_error_at(e, exp, err, "expected a digit in the exponent");
        }
        is_float = true;
        pos = exp;
        while (pos < e->text_len && is_digit(t[pos])) {
            pos++;
        }
    }
    if (pos < e->text_len && is_ident_char(t[pos])) {
        return sl__expr_error_at(e, tok->pos, err, "invalid number '%.*s'",
                                 (int)(pos - tok->pos + 1), t + tok->pos);
    }
    tok->len = pos - tok->pos;
    if (!is_float) {
        if (too_big) {
            return sl__expr_error_at(e, tok->pos, err, "integer %.*s is out of range",
                                     (int)tok->len, t + tok->pos);
        }
        tok->kind = SL__TOK_INT;
        tok->u = u;
        return 0;
    }
    char buf[128];
    if (tok->len >= sizeof(buf)) {
        return sl__expr_error_at(e, tok->pos, err, "number is too long");
    }
    memcpy(buf, t + tok->pos, tok->len);
    buf[tok->len] = '\0';
    tok->d = strtod(buf, NULL);
    if (!isfinite(tok->d)) {
        return sl__expr_error_at(e, tok->pos, err, "number %s is out of range", buf);
    }
    tok->kind = SL__TOK_FLOAT;
    return 0;
}

static int lex_word(struct sl__lexer *lx, struct sl__tok *tok, struct sl_err *err)
{
    const struct sl_expr *e = lx->e;
    size_t start = tok->pos;
    size_t pos;

    if (e->text[start] == '@') {
        start++;
        if (start >= e->text_len || !is_ident_start(e->text[start])) {
            return sl__expr_error_at(e, tok->pos, err, "expected a metadata name after '@'");
        }
    }
    pos = start;
    while (pos < e->text_len && is_ident_char(e->text[pos])) {
        pos++;
    }
    tok->kind = e->text[tok->pos] == '@' ? SL__TOK_META : SL__TOK_IDENT;
    tok->s = e->text + start;
    tok->slen = (uint32_t)(pos - start);
    tok->len = pos - tok->pos;
    return 0;
}

/* Operators of one or two characters. Returns the token kind, or
 * SL__TOK_COUNT when c does not start an operator. */
static int lex_operator(const char *t, size_t avail, size_t *ret_len)
{
    static const char *const ops2[] = {"<=", ">=", "==", "!=", "&&", "||"};
    static const uint8_t kinds2[] = {SL__TOK_LE, SL__TOK_GE,  SL__TOK_EQ,
                                     SL__TOK_NE, SL__TOK_AND, SL__TOK_OR};
    static const char ops1[] = "()[],.+-*/%!<>";
    static const uint8_t kinds1[] = {
        SL__TOK_LPAREN,  SL__TOK_RPAREN, SL__TOK_LBRACK, SL__TOK_RBRACK, SL__TOK_COMMA,
        SL__TOK_DOT,     SL__TOK_PLUS,   SL__TOK_MINUS,  SL__TOK_STAR,   SL__TOK_SLASH,
        SL__TOK_PERCENT, SL__TOK_BANG,   SL__TOK_LT,     SL__TOK_GT};

    if (avail >= 2) {
        for (size_t i = 0; i < sizeof(kinds2); i++) {
            if (t[0] == ops2[i][0] && t[1] == ops2[i][1]) {
                *ret_len = 2;
                return kinds2[i];
            }
        }
    }
    const char *p = t[0] != '\0' ? strchr(ops1, t[0]) : NULL;
    if (p == NULL) {
        return SL__TOK_COUNT;
    }
    *ret_len = 1;
    return kinds1[p - ops1];
}

int sl__expr_lex_next(struct sl__lexer *lx, struct sl__tok *ret, struct sl_err *err)
{
    const struct sl_expr *e = lx->e;
    const char *t = e->text;
    struct sl__tok tok = {0};
    size_t oplen = 0;
    int rc = 0;

    while (lx->pos < e->text_len &&
           (t[lx->pos] == ' ' || t[lx->pos] == '\t' || t[lx->pos] == '\n' || t[lx->pos] == '\r')) {
        lx->pos++;
    }
    tok.pos = lx->pos;
    if (lx->pos >= e->text_len) {
        tok.kind = SL__TOK_EOF;
        *ret = tok;
        return 0;
    }
    char c = t[lx->pos];
    if (is_digit(c)) {
        rc = lex_number(lx, &tok, err);
    } else if (c == '"' || c == '\'' || c == '`') {
        rc = lex_quoted(lx, c, &tok, err);
    } else if (is_ident_start(c) || c == '@') {
        rc = lex_word(lx, &tok, err);
    } else {
        int kind = lex_operator(t + lx->pos, e->text_len - lx->pos, &oplen);
        if (kind == SL__TOK_COUNT) {
            const char *hint = c == '='   ? " (did you mean '=='?)"
                               : c == '&' ? " (did you mean '&&'?)"
                               : c == '|' ? " (did you mean '||'?)"
                                          : "";
            return sl__expr_error_at(e, lx->pos, err, "unexpected character '%.*s'%s",
                                     (int)utf8_len_at(t + lx->pos, e->text_len - lx->pos),
                                     t + lx->pos, hint);
        }
        tok.kind = (uint8_t)kind;
        tok.len = oplen;
    }
    if (rc != 0) {
        return rc;
    }
    lx->pos = tok.pos + tok.len;
    *ret = tok;
    return 0;
}
