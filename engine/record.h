/* SPDX-License-Identifier: MIT */
/* Values, fields and records. A record is a small array of (name, value)
 * fields plus metadata (its source position, file/line or Kafka data) kept
 * beside the fields. Strings are (pointer, length), not NUL-terminated, and
 * point either into the batch's input block (zero copy) or into its arena.
 * Arrays and objects are kept as their validated JSON text. Owned by the
 * batch that holds the record; one writer at a time. */
#ifndef SL_RECORD_H
#define SL_RECORD_H

#include "arena.h"

#include <stdbool.h>
#include <stdint.h>

enum sl_type {
    SL_TYPE_NULL,
    SL_TYPE_BOOL,
    SL_TYPE_INT,
    SL_TYPE_DOUBLE,
    SL_TYPE_STR,    /* UTF-8 text */
    SL_TYPE_BYTES,  /* arbitrary bytes */
    SL_TYPE_ARRAY,  /* u.s/len: compact or verbatim JSON text of the array */
    SL_TYPE_OBJECT, /* u.s/len: JSON text of the object */
    SL_TYPE_COUNT
};

struct sl_value {
    uint8_t type; /* enum sl_type */
    uint32_t len; /* bytes of u.s for STR, BYTES, ARRAY, OBJECT */
    union {
        bool b;
        int64_t i;
        double d;
        const char *s;
    } u;
};

struct sl_field {
    const char *name; /* not NUL-terminated in general */
    uint32_t name_len;
    struct sl_value val;
};

/* Where a record came from. Files: stream = path, partition = 0, offset =
 * byte offset of the line start in the (decompressed) stream, line = 1-based
 * line number. Kafka: stream = topic, partition, offset; line = 0. */
struct sl_meta {
    const char *stream; /* file path or Kafka topic; lives as long as the pipeline */
    int32_t partition;
    int64_t offset;
    int64_t line;
    int64_t timestamp_ms;    /* Kafka message timestamp, 0 if none */
    struct sl_value key;     /* Kafka key (STR or BYTES), NULL type if none */
    struct sl_value headers; /* Kafka headers as OBJECT JSON text, NULL if none */
    uint64_t sub; /* 0 for a record read from input; for one a plugin added (emit), a hash of
                     its place among the records added from the same input record, the same
                     on a replay: with offset, what tells them apart (dead letter ids) */
};

struct sl_record {
    struct sl_field *fields; /* arena memory */
    uint32_t nfields;
    uint32_t cap;
    struct sl_meta meta;
    const char *raw; /* the input text of the record (for dead letters) */
    uint32_t raw_len;
};

/* Value constructors (no allocation). */
static inline struct sl_value sl_value_null(void)
{
    struct sl_value v = {.type = SL_TYPE_NULL};
    return v;
}
static inline struct sl_value sl_value_int(int64_t i)
{
    struct sl_value v = {.type = SL_TYPE_INT, .u.i = i};
    return v;
}
static inline struct sl_value sl_value_double(double d)
{
    struct sl_value v = {.type = SL_TYPE_DOUBLE, .u.d = d};
    return v;
}
static inline struct sl_value sl_value_bool(bool b)
{
    struct sl_value v = {.type = SL_TYPE_BOOL, .u.b = b};
    return v;
}
static inline struct sl_value sl_value_str(const char *s, uint32_t len)
{
    struct sl_value v = {.type = SL_TYPE_STR, .len = len, .u.s = s};
    return v;
}

/* Returns the field named name (len bytes) or NULL. Linear scan: records are
 * small. Thread: owner of the record. */
struct sl_field *sl_record_find(const struct sl_record *rec, const char *name, uint32_t len);

/* Sets field name to val, replacing an existing field of that name or
 * appending one (the array grows in arena). name and val's bytes are borrowed:
 * they must live as long as the batch (copy into arena first if not).
 * Returns 0 or SL_ENOMEM. */
int sl_record_set(struct sl_record *rec,
                  struct sl_arena *arena,
                  const char *name,
                  uint32_t len,
                  struct sl_value val);

/* Appends a field without looking for an existing one (decoders that already
 * handled duplicates). Returns 0 or SL_ENOMEM. */
int sl_record_append(struct sl_record *rec,
                     struct sl_arena *arena,
                     const char *name,
                     uint32_t len,
                     struct sl_value val);

/* Removes the field of that name if present (order of the others kept). */
void sl_record_remove(struct sl_record *rec, const char *name, uint32_t len);

/* Copies src into dst with a field array of its own (in arena) that the
 * caller may edit; names and values still point where src's do, so that
 * memory must outlive dst (a fan-out copy keeps its original as parent).
 * Returns 0 or SL_ENOMEM. */
int sl_record_copy_fields(struct sl_record *dst,
                          const struct sl_record *src,
                          struct sl_arena *arena);
/* Deep-copies rec into dst using arena (fields array, names, string bytes,
 * raw text). Returns 0 or SL_ENOMEM. */
int sl_record_clone(struct sl_record *dst, const struct sl_record *src, struct sl_arena *arena);

/* Name of a type, e.g. "string". */
const char *sl_type_name(enum sl_type type);

#endif
