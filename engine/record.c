/* SPDX-License-Identifier: MIT */
/* Record field access (see record.h). */
#include "record.h"

#include "err.h"

#include <string.h>

struct sl_field *sl_record_find(const struct sl_record *rec, const char *name, uint32_t len)
{
    for (uint32_t i = 0; i < rec->nfields; i++) {
        struct sl_field *f = &rec->fields[i];
        if (f->name_len == len && memcmp(f->name, name, len) == 0) {
            return f;
        }
    }
    return NULL;
}

int sl_record_append(struct sl_record *rec,
                     struct sl_arena *arena,
                     const char *name,
                     uint32_t len,
                     struct sl_value val)
{
    if (rec->nfields == rec->cap) {
        /* 1.5x: a map adding a field or two to a decoded record wastes less.
         * +1: a copy's array is exactly its fields (sl_record_copy_fields),
         * and 1.5x of one field is one: the new field went past it. */
        uint32_t cap = rec->cap ? rec->cap + rec->cap / 2 + 1 : 8;
        struct sl_field *f = sl_arena_alloc(arena, cap * sizeof(*f));
        if (f == NULL) {
            return SL_ENOMEM;
        }
        if (rec->nfields > 0) {
            memcpy(f, rec->fields, rec->nfields * sizeof(*f));
        }
        rec->fields = f;
        rec->cap = cap;
    }
    rec->fields[rec->nfields].name = name;
    rec->fields[rec->nfields].name_len = len;
    rec->fields[rec->nfields].val = val;
    rec->nfields++;
    return 0;
}

int sl_record_set(struct sl_record *rec,
                  struct sl_arena *arena,
                  const char *name,
                  uint32_t len,
                  struct sl_value val)
{
    struct sl_field *f = sl_record_find(rec, name, len);

    if (f != NULL) {
        f->val = val;
        return 0;
    }
    return sl_record_append(rec, arena, name, len, val);
}

void sl_record_remove(struct sl_record *rec, const char *name, uint32_t len)
{
    struct sl_field *f = sl_record_find(rec, name, len);

    if (f != NULL) {
        size_t idx = (size_t)(f - rec->fields);
        memmove(f, f + 1, (rec->nfields - idx - 1) * sizeof(*f));
        rec->nfields--;
    }
}

static int clone_bytes(struct sl_arena *arena, const char **p, uint32_t len)
{
    if (*p == NULL) {
        return 0;
    }
    char *c = sl_arena_strndup(arena, *p, len);
    if (c == NULL) {
        return SL_ENOMEM;
    }
    *p = c;
    return 0;
}

static int clone_value(struct sl_arena *arena, struct sl_value *v)
{
    if (v->type >= SL_TYPE_STR && v->type <= SL_TYPE_OBJECT) {
        return clone_bytes(arena, &v->u.s, v->len);
    }
    return 0;
}

int sl_record_copy_fields(struct sl_record *dst,
                          const struct sl_record *src,
                          struct sl_arena *arena)
{
    uint32_t cap = src->nfields ? src->nfields : 1;

    *dst = *src;
    dst->fields = sl_arena_alloc(arena, cap * sizeof(*dst->fields));
    if (dst->fields == NULL) {
        return SL_ENOMEM;
    }
    if (src->nfields > 0) { /* a record with no fields may have no array (memcpy of NULL) */
        memcpy(dst->fields, src->fields, src->nfields * sizeof(*dst->fields));
    }
    dst->cap = cap;
    return 0;
}

int sl_record_clone(struct sl_record *dst, const struct sl_record *src, struct sl_arena *arena)
{
    *dst = *src;
    dst->fields = NULL;
    dst->nfields = 0;
    dst->cap = 0;
    if (clone_bytes(arena, &dst->raw, src->raw_len) != 0 ||
        clone_value(arena, &dst->meta.key) != 0 || clone_value(arena, &dst->meta.headers) != 0) {
        return SL_ENOMEM;
    }
    for (uint32_t i = 0; i < src->nfields; i++) {
        struct sl_field f = src->fields[i];
        if (clone_bytes(arena, &f.name, f.name_len) != 0 || clone_value(arena, &f.val) != 0 ||
            sl_record_append(dst, arena, f.name, f.name_len, f.val) != 0) {
            return SL_ENOMEM;
        }
    }
    return 0;
}

const char *sl_type_name(enum sl_type type)
{
    static const char *const names[SL_TYPE_COUNT] = {
        "null", "bool", "int", "float", "string", "bytes", "array", "object",
    };
    return type < SL_TYPE_COUNT ? names[type] : "?";
}
