/* SPDX-License-Identifier: MIT */
/* The one JSON module: a single-pass validating scanner that decodes a line
 * holding exactly one object straight into a record (RFC 8259, UTF-8, depth
 * limit, linear time), nested access to the verbatim JSON text of array and
 * object values (expressions), and the writers used by sinks. Decoders are
 * per worker thread; every other function is reentrant (Thread: any). */
#ifndef SL_JSON_H
#define SL_JSON_H

#include "buf.h"
#include "err.h"
#include "record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_JSON_DEFAULT_MAX_DEPTH 64

/* Per worker thread scratch (duplicate-key hash table, nesting bit stack),
 * reused across lines; it never holds pointers into a line between calls. */
struct sl_json_decoder;

/* Returns a decoder that accepts max_depth levels of nesting, counting every
 * array and object including the top-level one (0 = the default, 64); NULL
 * on OOM. The caller owns it. Thread: any. */
struct sl_json_decoder *sl_json_decoder_new(uint32_t max_depth);

/* Frees d and its scratch. Accepts NULL; returns NULL. */
struct sl_json_decoder *sl_json_decoder_free(struct sl_json_decoder *d);

/* Decodes line (len bytes, no trailing newline; CR, LF, tab and space around
 * the object are whitespace) into rec, which is empty on entry, appending one
 * field per distinct top-level key in first-seen order; a duplicate key
 * replaces the earlier field's value in place (the last one wins).
 * Values: null, BOOL, INT (integers that fit int64), STR holding the digits
 * verbatim (integers outside int64, and numbers whose magnitude overflows a
 * double), DOUBLE (fraction or exponent; correctly rounded), STR, and
 * ARRAY/OBJECT holding the verbatim validated text of the value. Strings and
 * keys without escapes point into line (zero copy); others are unescaped
 * into arena. So rec borrows both line and arena, and must not outlive them.
 * Returns 0; SL_EDATA when the line is not exactly one valid object, with
 * err->msg naming the 0-based byte offset ("invalid JSON at byte 17:
 * expected ',' or '}'", "invalid UTF-8 at byte 5", "nesting deeper than 64
 * at byte 64", "trailing data at byte 12", "not an object at byte 0");
 * SL_ENOMEM. On error rec may hold some fields (the caller discards it).
 * err is filled only on failure and may be NULL. Does not block.
 * Thread: the one owning d. */
int sl_json_decode_object(struct sl_json_decoder *d,
                          const char *line,
                          size_t len,
                          struct sl_record *rec,
                          struct sl_arena *arena,
                          struct sl_err *err);

/* Nested access on the validated JSON text of an OBJECT / ARRAY value (as the
 * decoder produces it). Decodes the member named key (last one wins) /
 * element idx (0-based) into *ret as the decoder would: scalars decoded,
 * strings zero copy or unescaped into arena, nested containers as verbatim
 * text pointing into text. Returns 0 when found; SL_EOF when absent, out of
 * range or when text is not that kind of container; SL_EDATA when text is
 * malformed (detected on the way, not fully validated); SL_ENOMEM. ret is
 * written only on success. Linear in len, no recursion. Thread: any. */
int sl_json_object_get(const char *text,
                       size_t len,
                       const char *key,
                       size_t key_len,
                       struct sl_arena *arena,
                       struct sl_value *ret);
int sl_json_array_get(
    const char *text, size_t len, size_t idx, struct sl_arena *arena, struct sl_value *ret);

/* Iterates over the elements of an array text in one linear pass: the
 * caller sets *pos to 0 before the first call; each call decodes the next
 * element into *ret as sl_json_array_get does, advances *pos and returns 0;
 * then SL_EOF after the last element (or when text is not an array),
 * SL_EDATA on malformed text, SL_ENOMEM. Use it instead of calling
 * sl_json_array_get for i = 0..n-1, which is quadratic. Thread: any. */
int sl_json_array_next(
    const char *text, size_t len, size_t *pos, struct sl_arena *arena, struct sl_value *ret);

/* Returns the number of elements of an array text or members of an object
 * text (duplicates counted), 0 for anything else or malformed text.
 * Thread: any. */
size_t sl_json_count(const char *text, size_t len);

/* Returns true when s (len bytes) is valid UTF-8: no overlong forms, no
 * surrogates, nothing above U+10FFFF, no truncated sequence. Thread: any. */
bool sl_utf8_valid(const char *s, size_t len);

/* Copies s (len bytes) into out (cap >= 1 bytes), NUL-terminated, as valid
 * UTF-8: each byte that does not start a valid sequence becomes U+FFFD;
 * with escape_controls, control characters (below 0x20, and 0x7F) become
 * \n, \r, \t or \xNN, so that the text stays on one line. The copy ends
 * at a character boundary when out is too short. Returns its length.
 * Thread: any. */
size_t sl_utf8_clean(char *out, size_t cap, const char *s, size_t len, bool escape_controls);

/* Writers: append compact JSON to buf. A double keeps its type (100.0, not
 * 100; see sl_json_format_double), non-finite doubles are written as null;
 * strings are escaped per RFC 8259 (", \ and control characters; \b \f \n \r
 * \t in short form, others as \u00XX); valid UTF-8 passes through byte for
 * byte and each invalid byte becomes U+FFFD, so the output is always valid
 * JSON. BYTES are a string of standard base64 (padded). ARRAY/OBJECT text is
 * copied as is. Return 0 or SL_ENOMEM (buf then holds a partial value).
 * Thread: the owner of buf. */
int sl_json_write_value(struct sl_buf *buf, const struct sl_value *v);
int sl_json_write_string(struct sl_buf *buf, const char *s, size_t len);
/* Writes {"name":value,...} with rec's fields in order. */
int sl_json_write_record(struct sl_buf *buf, const struct sl_record *rec);
/* Appends the canonical form of the valid JSON value text: no whitespace,
 * object members sorted by key (bytewise), numbers with a fraction or an
 * exponent as sl_json_format_double prints them. Two texts of one value
 * give the same bytes. Returns 0, SL_EDATA (nested deeper than the default
 * limit) or SL_ENOMEM. Thread: the owner of out. */
int sl_json_canon(struct sl_buf *out, const char *text, size_t len);

/* Where sl_json_out_record writes: text gathers in buf, and whenever buf
 * holds chunk_bytes or more (after a field of a long record, or inside a
 * long name or value), flush is given its text to write out, and buf is
 * emptied after it succeeded. A short record (names and values of up to
 * chunk_bytes / 16 bytes) is appended whole, for the caller to flush: so a
 * record of any length needs no copy of its whole text, and buf stays below
 * 2 x chunk_bytes when the caller flushes from chunk_bytes on after each
 * record (chunk_bytes >= 1 KiB). Strings are cut only between characters
 * and base64 between groups: the text is sl_json_write_record's, byte for
 * byte, whatever the pieces. */
struct sl_json_out {
    struct sl_buf *buf;                                    /* text not yet flushed; the caller's */
    size_t chunk_bytes;                                    /* flush from this many bytes on */
    int (*flush)(void *arg, const char *text, size_t len); /* 0, or an error returned as is */
    void *arg;
};

/* Writes rec as sl_json_write_record does, appended to out->buf and handed
 * to out->flush in pieces (the end stays in out->buf: the caller flushes
 * it). Returns 0, SL_ENOMEM or flush's error; on an error part of the
 * record may have been flushed already. Thread: the owner of out. */
int sl_json_out_record(struct sl_json_out *out, const struct sl_record *rec);

/* Writes d into out (at least 32 bytes) NUL-terminated, as the writers do:
 * the shortest text that reads back as the same double, always with a '.'
 * or an exponent so it stays a double ("100.0", "0.1", "-0.0", "1e+300",
 * "1.5e-07"); "null" for NaN and infinities. Independent of the C locale.
 * Returns the length. Thread: any. */
size_t sl_json_format_double(double d, char *out);

#endif
