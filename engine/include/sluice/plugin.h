/* SPDX-License-Identifier: MIT */
/* The whole public API of sluice for stage plugins: how a stage, source or
 * sink type describes itself (name, kind, flags, option table, callbacks),
 * the entry point a plugin shared object exports, and the host function
 * table it reads and writes records with. Built-in types are defined with
 * the same struct. A plugin includes only this header and never links
 * against engine symbols: everything it calls comes through the table.
 * C and C++. */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version: a plugin built for another major is refused at load; a
 * higher minor adds members at the end of the structs (struct_size says
 * which a side knows). */
#define SLUICE_ABI_MAJOR   1
#define SLUICE_ABI_MINOR   2
#define SLUICE_ABI_VERSION ((SLUICE_ABI_MAJOR << 16) | SLUICE_ABI_MINOR)

#if defined(__GNUC__)
#define SLUICE_EXPORT       __attribute__((visibility("default")))
#define SLUICE_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define SLUICE_EXPORT
#define SLUICE_PRINTF(f, a)
#endif

struct sluice_stage;  /* a node instance of the pipeline (opaque) */
struct sluice_batch;  /* a batch of records (opaque) */
struct sluice_record; /* one record of a batch (opaque) */
struct sluice_expr;   /* a compiled expression (opaque) */

/* Return codes of host calls and callbacks: 0 is success. */
#define SLUICE_ENOENT (-1) /**< no such field or metadata */
#define SLUICE_ENOMEM (-2) /**< out of memory */
#define SLUICE_EINVAL (-3) /**< bad argument (a value of no known type, bad UTF-8...) */
#define SLUICE_EFAIL  (-4) /**< the stage failed: the pipeline stops (exit 1) */
#define SLUICE_EFULL  (-5) /**< ABI 1.2: the call added as much as one call may (emit_full) */

/* ---- options ---- */

/** @brief Option value types and the C type each fills in the conf struct. */
enum sluice_opt_type {
    SLUICE_OPT_STR,      /**< const char * (NUL-terminated) */
    SLUICE_OPT_INT,      /**< int64_t */
    SLUICE_OPT_BOOL,     /**< int (0/1) */
    SLUICE_OPT_DOUBLE,   /**< double */
    SLUICE_OPT_SIZE,     /**< uint64_t bytes; "64MiB", "512KiB", "100" */
    SLUICE_OPT_DURATION, /**< uint64_t nanoseconds; "100ms", "30s", "5m" */
    SLUICE_OPT_ENUM,     /**< int: index into choices */
    SLUICE_OPT_EXPR,     /**< struct sluice_expr * compiled by the engine (host->eval) */
    SLUICE_OPT_LIST,     /**< struct sluice_list (sequence of strings) */
    SLUICE_OPT_MAP,      /**< struct sluice_map (mapping of string -> string) */
    SLUICE_OPT_EXPR_MAP, /**< struct sluice_map whose values are also compiled (exprs[]) */
    SLUICE_OPT_TYPE_COUNT
};

#define SLUICE_OPT_REQUIRED 0x1u /**< must be given */
#define SLUICE_OPT_SECRET   0x2u /**< never logged */
#define SLUICE_OPT_LATER    0x4u /**< recognised, refused with "not supported yet" */

/** @brief A sequence of strings. */
struct sluice_list {
    const char **items;
    size_t n;
};

/** @brief A mapping in file order; exprs is set for SLUICE_OPT_EXPR_MAP. */
struct sluice_map {
    const char **keys;
    const char **values;
    struct sluice_expr **exprs;
    size_t n;
};

/** @brief One option row. Dotted names ("batch.max_records") are nested
 * mappings in YAML (`batch: {max_records: 10}`). The engine validates the
 * config with these rows, fills the conf struct, and `sluice describe`
 * prints them. */
struct sluice_option {
    const char *name;
    enum sluice_opt_type type;
    const char *default_text;   /**< parsed like YAML text; NULL = no default (zero) */
    size_t offset;              /**< where in the conf struct */
    double min, max;            /**< inclusive range for INT/DOUBLE/SIZE/DURATION (0,0 = none) */
    const char *const *choices; /**< ENUM: NULL-terminated */
    unsigned flags;
    const char *desc;
};

#define SLUICE_OPT_ROW(st, field, type, def, mn, mx, ch, fl, d)                                    \
    {                                                                                              \
#field, type, def, offsetof(st, field), mn, mx, ch, fl, d                                  \
    }

/* ---- stage definitions ---- */

enum sluice_stage_kind { SLUICE_KIND_SOURCE, SLUICE_KIND_TRANSFORM, SLUICE_KIND_SINK };

#define SLUICE_STAGE_STATELESS                                                                     \
    0x1u                           /**< process may run on several batches at once: workers > 1    \
                                    */
#define SLUICE_STAGE_BLOCKING 0x2u /**< waits on I/O or sleeps: runs on the blocking threads */

/** @brief A stage, source or sink type. Plugins define transforms
 * (SLUICE_KIND_TRANSFORM). Threads: init and fini run on the main thread;
 * process runs on a worker (a blocking thread when SLUICE_STAGE_BLOCKING),
 * one batch at a time per node unless SLUICE_STAGE_STATELESS, in which case
 * several calls on one ctx may run at once. */
struct sluice_stage_def {
    uint32_t abi_version; /**< SLUICE_ABI_VERSION */
    uint32_t struct_size; /**< sizeof(struct sluice_stage_def) */
    const char *name;     /**< the YAML `type:`: [a-z0-9_]+ */
    const char *description;
    enum sluice_stage_kind kind;
    unsigned flags;
    size_t conf_size;                    /**< size of the conf struct the engine fills */
    const struct sluice_option *options; /**< terminated by a row with name NULL */
    /** Creates the instance state from the filled conf (borrowed for the
     * pipeline's life) when `run` starts (never at `validate`). Returns 0,
     * or a negative code with errbuf filled: the run is refused. */
    int (*init)(
        struct sluice_stage *st, const void *conf, void **ret_ctx, char *errbuf, size_t errbuf_len);
    /** Transforms one batch, borrowed for the call: edits its records in
     * place, drops, dead-letters or adds records through the host table.
     * What is left is emitted when it returns 0. Any other return fails the
     * pipeline (a record it cannot handle is a dead letter instead). */
    int (*process)(struct sluice_stage *st, void *ctx, struct sluice_batch *batch);
    /** Optional: called once at drain, after the last process. */
    int (*flush)(struct sluice_stage *st, void *ctx);
    /** Frees ctx (NULL ok). */
    void (*fini)(void *ctx);
    /** Optional: names of the node's own counters, NULL-terminated, at most
     * SLUICE_MAX_COUNTERS: host->count adds to them by index; the summary
     * shows them. */
    const char *const *counters;
};

#define SLUICE_MAX_COUNTERS 8

/* ---- records ---- */

/** @brief Value types of fields and metadata. */
enum sluice_type {
    SLUICE_TYPE_NULL,
    SLUICE_TYPE_BOOL,
    SLUICE_TYPE_INT,
    SLUICE_TYPE_DOUBLE,
    SLUICE_TYPE_STR,    /**< UTF-8 text, u.s/len, not NUL-terminated */
    SLUICE_TYPE_BYTES,  /**< arbitrary bytes, u.s/len */
    SLUICE_TYPE_ARRAY,  /**< u.s/len: the array as JSON text */
    SLUICE_TYPE_OBJECT, /**< u.s/len: the object as JSON text */
    SLUICE_TYPE_COUNT
};

/** @brief A value. Strings are (pointer, length); a value the host returns
 * points into the batch and is valid until the batch's process call
 * returns or the field is set again. */
struct sluice_value {
    uint8_t type; /**< enum sluice_type */
    uint32_t len; /**< bytes of u.s for STR, BYTES, ARRAY, OBJECT */
    union {
        bool b;
        int64_t i;
        double d;
        const char *s;
    } u;
};

enum sluice_log_level { SLUICE_LOG_ERROR, SLUICE_LOG_WARN, SLUICE_LOG_INFO, SLUICE_LOG_DEBUG };

/** @brief What the host offers a plugin. Passed to the entry point; valid
 * for the life of the process. Every call is thread-safe on distinct
 * batches; a batch and its records belong to the process call they were
 * given to, on its thread: a call with a batch from another thread or an
 * earlier call returns SLUICE_EINVAL (or 0 / NULL for the readers), and a
 * record dropped or dead-lettered can no longer be set or removed from. Names are (pointer,
 * length), not NUL-terminated. No call takes ownership of the plugin's memory: strings are copied.
 */
struct sluice_host_api {
    uint32_t abi_version; /**< the host's SLUICE_ABI_VERSION */
    uint32_t struct_size; /**< sizeof(struct sluice_host_api) of the host */

    /** Records in the batch, dropped and dead-lettered ones included. */
    size_t (*batch_size)(const struct sluice_batch *batch);
    /** The i-th record (i < batch_size), or NULL past the end. */
    struct sluice_record *(*batch_record)(struct sluice_batch *batch, size_t i);

    /** Reads field name into *ret_value. 0, or SLUICE_ENOENT when the
     * record has no such top-level field (*ret_value is then null). */
    int (*get)(const struct sluice_record *rec,
               const char *name,
               size_t name_len,
               struct sluice_value *ret_value);
    /** Fields in the record, and the i-th of them (file order). 0, or
     * SLUICE_ENOENT past the last. */
    size_t (*field_count)(const struct sluice_record *rec);
    int (*field_at)(const struct sluice_record *rec,
                    size_t i,
                    const char **ret_name,
                    size_t *ret_name_len,
                    struct sluice_value *ret_value);
    /** Sets field name to *value (copied into the batch), replacing a field
     * of that name or adding one at the end. STR must be valid UTF-8 and
     * ARRAY/OBJECT valid JSON text of that kind. 0, SLUICE_EINVAL,
     * SLUICE_ENOMEM or, since ABI 1.2, SLUICE_EFULL when the call has no
     * room left (see emit_full) (the record is unchanged). */
    int (*set)(struct sluice_batch *batch,
               struct sluice_record *rec,
               const char *name,
               size_t name_len,
               const struct sluice_value *value);
    /** Removes field name. 0, or SLUICE_ENOENT when there was none. */
    int (*remove)(struct sluice_batch *batch,
                  struct sluice_record *rec,
                  const char *name,
                  size_t name_len);
    /** Reads metadata as expressions do with @name: "file", "line"
     * (files), "topic", "partition", "offset", "key", "timestamp",
     * "headers" (Kafka), "priority". 0, or SLUICE_ENOENT when the record
     * has none of that name. */
    int (*meta)(const struct sluice_record *rec, const char *name, struct sluice_value *ret_value);
    /** Evaluates an SLUICE_OPT_EXPR option on rec. 0, SLUICE_ENOMEM, or
     * SLUICE_EINVAL with the reason in errbuf (a type error: dead-letter
     * the record with it). */
    int (*eval)(const struct sluice_expr *expr,
                struct sluice_batch *batch,
                const struct sluice_record *rec,
                struct sluice_value *ret_value,
                char *errbuf,
                size_t errbuf_len);

    /** Removes rec from what the stage emits, counted as dropped. */
    void (*drop)(struct sluice_batch *batch, struct sluice_record *rec);
    /** Removes rec from what the stage emits and sends it to the dead
     * letters with reason (NUL-terminated, copied as valid UTF-8: an
     * invalid byte becomes U+FFFD; cut between characters to 511 bytes at
     * most). 0, SLUICE_ENOMEM, or SLUICE_EINVAL when rec is not one of
     * the batch's input records still in it (a record this call added
     * with emit cannot be dead-lettered by it: drop it, or dead-letter the
     * input record; a later node may dead-letter it). On SLUICE_EINVAL
     * nothing changed: rec is still emitted. */
    int (*dead)(struct sluice_stage *st,
                struct sluice_batch *batch,
                struct sluice_record *rec,
                const char *reason);
    /** Adds a new record to the batch, emitted after the others, with
     * from's metadata and source position (so it keeps exactly once) and a
     * copy of its fields when copy_fields, else none. It also gets a place
     * of its own among the records added from from (1st, 2nd, ...), so
     * that a dead letter a later node makes of it has an id of its own,
     * the same on a replay when the stage adds the same records from the
     * same record. The new record is not
     * in this call's batch_size loop if the caller read the size first.
     * Added records count in memory_limit like any other: the sources cut
     * their batches by what the stage's calls made of theirs, so that a
     * batch the stage grew is the size the memory plan counted on. Returns
     * the record, or NULL when out of memory or, since ABI 1.2, when the
     * call has no room left (emit_full says which). */
    struct sluice_record *(*emit)(struct sluice_batch *batch,
                                  const struct sluice_record *from,
                                  bool copy_fields);

    /** Logs a line as "node 'name': text" at level (SLUICE_LOG_DEBUG ones
     * only at engine.log_level: debug; nothing is formatted otherwise). In
     * the text log, control characters in text are escaped (\n, \xNN):
     * one call, one line. */
    void (*log)(struct sluice_stage *st, enum sluice_log_level level, const char *fmt, ...)
        SLUICE_PRINTF(3, 4);
    /** Adds n to the node's counter index (of def->counters). */
    void (*count)(struct sluice_stage *st, unsigned index, uint64_t n);
    /** The node's name in the pipeline file. */
    const char *(*stage_name)(const struct sluice_stage *st);

    /* ---- ABI 1.2 (check with SLUICE_HOST_HAS before calling) ---- */

    /** Whether the call working on batch has no room left: it added to the
     * batch (records, fields) as much as one call may, about a quarter of
     * memory_limit. From then on, in this call, emit returns NULL and set
     * SLUICE_EFULL. Sources cut their batches by what the stage's calls
     * measured, so a stage adding many records per record runs out of room
     * only when a few records alone add that much. Then drop the records
     * added for the record being worked on and dead-letter it (or drop it),
     * or return an error to stop the pipeline. */
    bool (*emit_full)(const struct sluice_batch *batch);
};

/** @brief Whether host offers member (a host of an older minor has a
 * shorter table): `if (SLUICE_HOST_HAS(host, emit_full) && ...)`. */
#define SLUICE_HOST_HAS(host, member)                                                              \
    ((host)->struct_size >=                                                                        \
     offsetof(struct sluice_host_api, member) + sizeof(((struct sluice_host_api *)0)->member))

/* ---- the entry point ---- */

/** @brief What a plugin shared object offers. */
struct sluice_plugin {
    uint32_t abi_version; /**< SLUICE_ABI_VERSION the plugin was built with */
    uint32_t struct_size; /**< sizeof(struct sluice_plugin) */
    const char *name;
    const char *version;
    const struct sluice_stage_def *const *stages; /**< NULL-terminated */
};

/** The one symbol a plugin exports. The host calls it once, at load, on
 * the main thread, with its function table (keep the pointer: it stays
 * valid). Returns the plugin's definitions, or NULL with errbuf filled to
 * refuse the load. */
typedef const struct sluice_plugin *(*sluice_plugin_entry_fn)(const struct sluice_host_api *host,
                                                              char *errbuf,
                                                              size_t errbuf_len);
#define SLUICE_PLUGIN_ENTRY "sluice_plugin_entry"

#ifdef __cplusplus
}
#endif

#endif
