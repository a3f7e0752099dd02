/* SPDX-License-Identifier: MIT */
/* The stage definition ABI: how a stage, source or sink type describes itself
 * (name, kind, options table, callbacks). Built-in types and (later) plugins
 * use the same struct. Records and batches are opaque here. */
#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#define SLUICE_ABI_MAJOR   1
#define SLUICE_ABI_MINOR   0
#define SLUICE_ABI_VERSION ((SLUICE_ABI_MAJOR << 16) | SLUICE_ABI_MINOR)

#if defined(__GNUC__)
#define SLUICE_EXPORT __attribute__((visibility("default")))
#else
#define SLUICE_EXPORT
#endif

struct sluice_stage; /* a node instance (opaque) */
struct sluice_batch; /* a batch of records (opaque) */
struct sluice_expr;  /* a compiled expression (opaque) */

/** @brief Option value types and the C type each fills in the conf struct. */
enum sluice_opt_type {
    SLUICE_OPT_STR,      /**< const char * (NUL-terminated) */
    SLUICE_OPT_INT,      /**< int64_t */
    SLUICE_OPT_BOOL,     /**< int (0/1) */
    SLUICE_OPT_DOUBLE,   /**< double */
    SLUICE_OPT_SIZE,     /**< uint64_t bytes; "64MiB", "512KiB", "100" */
    SLUICE_OPT_DURATION, /**< uint64_t nanoseconds; "100ms", "30s", "5m" */
    SLUICE_OPT_ENUM,     /**< int: index into choices */
    SLUICE_OPT_EXPR,     /**< struct sluice_expr * compiled by the engine */
    SLUICE_OPT_LIST,     /**< struct sluice_list (sequence of strings) */
    SLUICE_OPT_MAP,      /**< struct sluice_map (mapping of string -> string) */
    SLUICE_OPT_EXPR_MAP, /**< struct sluice_map whose values are also compiled (exprs[]) */
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
 * mappings in YAML (`batch: {max_records: 10}`). */
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

enum sluice_stage_kind { SLUICE_KIND_SOURCE, SLUICE_KIND_TRANSFORM, SLUICE_KIND_SINK };

#define SLUICE_STAGE_STATELESS 0x1u /**< workers > 1 is safe */
#define SLUICE_STAGE_BLOCKING  0x2u /**< waits on I/O or sleeps: runs on the blocking threads */

/** @brief A stage, source or sink type. */
struct sluice_stage_def {
    uint32_t abi_version; /**< SLUICE_ABI_VERSION */
    uint32_t struct_size; /**< sizeof(struct sluice_stage_def) */
    const char *name;     /**< the YAML `type:` */
    const char *description;
    enum sluice_stage_kind kind;
    unsigned flags;
    size_t conf_size;                    /**< size of the conf struct the engine fills */
    const struct sluice_option *options; /**< terminated by a row with name NULL */
    /** Creates the instance state from the filled conf (borrowed for the
     * pipeline's life). Returns 0 or a negative error with errbuf filled. */
    int (*init)(
        struct sluice_stage *st, const void *conf, void **ret_ctx, char *errbuf, size_t errbuf_len);
    /** Transforms/consumes one batch (borrowed). Returns 0 or negative error. */
    int (*process)(struct sluice_stage *st, void *ctx, struct sluice_batch *batch);
    /** Optional: called on timers and at drain. */
    int (*flush)(struct sluice_stage *st, void *ctx);
    /** Frees ctx. */
    void (*fini)(void *ctx);
};

#endif
