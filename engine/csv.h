/* SPDX-License-Identifier: MIT */
/* RFC 4180 CSV decoder shared by every source. A source cuts its input blocks
 * at row boundaries (sl_csv_complete_prefix) on its reader thread, parses the
 * header once per file, then worker threads split each block into rows
 * (sl_csv_next_row) and decode them into records (sl_csv_decode_row), zero
 * copy where possible. The delimiter is ','; the quote is '"'. Every function
 * is reentrant; a header is immutable after parsing and may be shared by any
 * number of threads.
 *
 * Row splitting rules: a row ends at LF or CRLF outside quotes; a '"' opens a
 * quoted field only as the first byte of a field, so a stray quote inside an
 * unquoted field cannot swallow the rows after it (that row alone becomes a
 * dead letter). Inside a quoted field "" is a literal quote and line breaks
 * belong to the value.
 *
 * Typical use by a source:
 *
 *     n = sl_csv_complete_prefix(block, len, at_eof, max_row);
 *     for (off = 0; off < n; off += used) {
 *         used = sl_csv_next_row(block + off, n - off, &row_len, &lines);
 *         if (!sl_csv_row_blank(block + off, row_len)) {
 *             rc = sl_csv_decode_row(h, block + off, row_len, rec, arena, err);
 *         }
 *         line += lines;
 *     }
 *     (bytes n..len are kept and prefixed to the next block) */
#ifndef SL_CSV_H
#define SL_CSV_H

#include "arena.h"
#include "err.h"
#include "record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Column names of one file, owned by the source for the file's life. */
struct sl_csv_header;

/* Scans buf, which starts at a row boundary, and returns how many leading
 * bytes form complete rows of at most max_row bytes each (without their
 * terminator): the offset just after the last such row's LF outside quotes
 * (0 if there is none: the first row is longer than buf, and the caller
 * must read more before decoding, or longer than max_row). If at_eof, a
 * final row without a line break is complete too, and so is one whose
 * quoted field is still open (the caller tells them apart with
 * sl_csv_next_row). So the prefix stops before the first row longer than
 * max_row (SIZE_MAX: no limit), complete or not: the caller can see it is
 * too long when more than max_row bytes follow the prefix. Linear time in
 * len; a caller that retries with a longer buffer should grow it
 * geometrically. Thread: any. */
size_t sl_csv_complete_prefix(const char *buf, size_t len, bool at_eof, size_t max_row);

/* Splits the next row off buf (which starts at a row boundary). Returns the
 * bytes consumed including the terminator (LF or CRLF), or len when the row
 * has no terminator (last row of the input, or a quoted field still open at
 * the end of buf); 0 only when len is 0. Sets *ret_row_len to the row's
 * bytes without its terminator (a trailing CR of an unterminated row is
 * dropped as well) and *ret_lines to the physical lines the row spans (1 +
 * line breaks inside quotes; 0 when len is 0), so the caller can keep
 * 1-based line numbers. The row has a terminator if and only if
 * *ret_row_len < the result and buf[result - 1] is LF. Thread: any. */
size_t sl_csv_next_row(const char *buf, size_t len, size_t *ret_row_len, uint32_t *ret_lines);

/* True if the row (without terminator) is empty or holds only spaces, tabs
 * and CRs. Such rows are skipped by sources: neither records nor dead
 * letters. Thread: any. */
bool sl_csv_row_blank(const char *row, size_t len);

/* Parses a header row (without terminator; not blank). Field names are
 * taken verbatim (no trimming; quoted names are unquoted and unescaped) and
 * copied into the header, which owns them. Returns 0 and *ret (free with
 * sl_csv_header_free), SL_EDATA with err->msg saying why (malformed row,
 * invalid UTF-8, an empty name, a duplicate name), or SL_ENOMEM. Thread:
 * any. */
int sl_csv_header_parse(const char *row,
                        size_t len,
                        struct sl_csv_header **ret,
                        struct sl_err *err);

/* Frees h; accepts NULL. Returns NULL. Thread: any, once no one uses h. */
struct sl_csv_header *sl_csv_header_free(struct sl_csv_header *h);

/* Returns the number of columns (at least 1). Thread: any. */
size_t sl_csv_header_count(const struct sl_csv_header *h);

/* Returns the name of column i (0-based, i < count) and its length in
 * *ret_len (may be NULL). The bytes are owned by h and followed by a NUL;
 * a name may itself contain NUL bytes, so use the length. Thread: any. */
const char *sl_csv_header_name(const struct sl_csv_header *h, size_t i, uint32_t *ret_len);

/* Decodes one data row (without terminator) into rec, which must have no
 * fields on entry, appending one field per column named after the header.
 * Values: an empty unquoted field is null; an unquoted field matching the
 * number rule (sl_csv_parse_number) is an int or a double; anything else is
 * a string. A quoted field is always a string (quoting is how a user says
 * "text"), "" being the empty string. String values point into row unless
 * they held "" escapes, in which case they are unescaped into arena; field
 * names point into h. So row must outlive rec's batch, and h must too.
 * Returns 0; SL_EDATA with err->msg giving the reason (wrong column count,
 * a quote inside an unquoted field, characters after a closing quote, an
 * unterminated quote, invalid UTF-8; field numbers in messages are 1-based);
 * or SL_ENOMEM. On failure rec may hold some fields: the caller discards it.
 * Does not touch rec->meta or rec->raw. Thread: the owner of rec and arena. */
int sl_csv_decode_row(const struct sl_csv_header *h,
                      const char *row,
                      size_t len,
                      struct sl_record *rec,
                      struct sl_arena *arena,
                      struct sl_err *err);

/* The number rule, shared with other decoders: returns true and sets *ret if
 * s (len bytes, not NUL-terminated) is exactly a plain decimal
 * -?(0|[1-9][0-9]*)(\.[0-9]+)? that fits: an int64 for integers (an integer
 * outside int64 is not a number), a double for decimals (correctly rounded;
 * a decimal beyond the double range is not a number). "-0" is the int 0.
 * Returns false, *ret untouched, otherwise ("00501", "1E0000", "0x1F", " 12",
 * "+1", "1.", ".5"). Does not depend on the C locale. Thread: any. */
bool sl_csv_parse_number(const char *s, size_t len, struct sl_value *ret);

#endif
