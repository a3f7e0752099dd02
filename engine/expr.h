/* SPDX-License-Identifier: MIT */
/* The expression language of `where`, `set`, routes and keys: compiled once
 * from text, evaluated per record. See README "Expressions" and DESIGN.md's
 * semantics table. A compiled expression is immutable: any number of worker
 * threads may evaluate it at once. */
#ifndef SL_EXPR_H
#define SL_EXPR_H

#include "arena.h"
#include "err.h"
#include "record.h"

#include <stdbool.h>
#include <stddef.h>

struct sl_expr;

/* Compiles text (len bytes, need not be NUL-terminated). On error returns
 * NULL and fills err with SL_ECONFIG, a message, and err->col = the 1-based
 * column within text where the problem is (err->line = 0). NULL with
 * SL_ENOMEM on OOM. Thread: any. */
struct sl_expr *sl_expr_compile(const char *text, size_t len, struct sl_err *err);

/* Frees e; accepts NULL; returns NULL. */
struct sl_expr *sl_expr_free(struct sl_expr *e);

/* Evaluates e against rec. The result may borrow bytes from rec or from
 * arena (new strings are allocated there: pass the batch's arena, so a map
 * can store the result in the record). Returns 0, or SL_EDATA with err->msg
 * giving the reason (wrong operand types, integer overflow, division by
 * zero, ...): the caller dead-letters the record. SL_ENOMEM on OOM.
 * Thread: any (e is read-only). */
int sl_expr_eval(const struct sl_expr *e,
                 const struct sl_record *rec,
                 struct sl_arena *arena,
                 struct sl_value *ret,
                 struct sl_err *err);

/* Reads rec's metadata called name as `@name` does ("file", "offset"...)
 * into *ret (null when rec has none of that kind). 0, or SL_EINVAL for an
 * unknown name. Thread: any. */
int sl_expr_meta(const struct sl_record *rec, const char *name, struct sl_value *ret);

/* The values e can give, for keys that must be a small int (priority):
 * bit v of *ret_mask for each int v in lo..hi (0 <= lo <= hi < 64) it may
 * give. A literal gives itself, null gives lo, if(c, a, b) what a or b
 * give; anything computed may give any value of the range. Returns 0, or
 * SL_ECONFIG with err's message when a literal it may give is not an int
 * within lo..hi. Thread: any. */
int sl_expr_int_choices(
    const struct sl_expr *e, int64_t lo, int64_t hi, uint64_t *ret_mask, struct sl_err *err);

/* Sets what @priority gives on this thread: the runtime sets the level of
 * the batch a node is about to process (0 until set). Thread: the caller's. */
void sl_expr_set_priority(uint8_t level);

/* Whether e calls now() anywhere. Thread: any. */
bool sl_expr_calls_now(const struct sl_expr *e);

/* Whether e reads the metadata @name (name without the '@': "file").
 * Thread: any. */
bool sl_expr_reads_meta(const struct sl_expr *e, const char *name);

/* Walks the top-level fields e reads (`meta` for `meta.ip`, `a.b` for
 * `` `a.b` ``): *pos starts at 0. Returns true with the next one's name
 * (len bytes, borrowed from e, not NUL-terminated) and *pos advanced past
 * it, false after the last. A field read twice comes twice. Thread: any. */
bool sl_expr_next_field(const struct sl_expr *e,
                        size_t *pos,
                        const char **ret_name,
                        size_t *ret_len);

/* The text e was compiled from (NUL-terminated copy). */
const char *sl_expr_text(const struct sl_expr *e);

#endif
