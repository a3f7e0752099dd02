/* SPDX-License-Identifier: MIT */
/* The two node types `sluice test` puts in place of a pipeline's sources
 * and sinks (conf_cases.c): `test_input` hands a case's records (JSON
 * lines) on as a source would, `test_capture` keeps what a sink receives,
 * as JSON lines, in memory. Nothing else: no file, database or broker is
 * touched. They are registered only by `sluice test`. */
#include "cases.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "sink.h"
#include "source.h"

#include <stdlib.h>
#include <string.h>

#define INPUT_BATCH 256 /* records per batch: several batches even in short cases */

struct input_conf {
    const char *records;
    int64_t max_depth; /* the source's */
    const char *topic; /* not NULL: the records are Kafka messages of this topic */
};

/* clang-format off */
static const struct sluice_option input_options[] = {
    SLUICE_OPT_ROW(struct input_conf, records, SLUICE_OPT_STR, "", 0, 0, NULL, 0,
                   "The case's records, one JSON object per line."),
    SLUICE_OPT_ROW(struct input_conf, topic, SLUICE_OPT_STR, NULL, 0, 0, NULL, 0,
                   "Set for a Kafka source: its (first) topic."),
    SLUICE_OPT_ROW(struct input_conf, max_depth, SLUICE_OPT_INT, "64", 1, 10000, NULL, 0,
                   "The source's max_depth: deeper records are dead letters."),
    {0},
};
/* clang-format on */

/* What a source node's thread keeps: names given by "@topic" / "@file",
 * which records' metadata must keep for the pipeline's life. */
struct input_state {
    struct sl_arena names;
};

static int
meta_int(const struct sl_field *f, int64_t lo, int64_t hi, int64_t *ret, struct sl_err *err)
{
    if (f->val.type != SL_TYPE_INT || f->val.u.i < lo || f->val.u.i > hi) {
        return sl_err_set(err, SL_EDATA, "%.*s must be an integer from %lld", (int)f->name_len,
                          f->name, (long long)lo);
    }
    *ret = f->val.u.i;
    return 0;
}

/* Moves the fields named "@key", "@offset"... of rec into its metadata;
 * *ret_moved tells whether there were any. */
static int
take_meta(struct sl_record *rec, struct input_state *st, bool *ret_moved, struct sl_err *err)
{
    for (uint32_t i = 0; i < rec->nfields;) {
        const struct sl_field *f = &rec->fields[i];
        const char *n = f->name + 1;
        size_t len = f->name_len - 1;
        int64_t v = 0;
        int rc = 0;

        if (f->name_len < 2 || f->name[0] != '@') {
            i++;
            continue;
        }
#define IS(word) (len == strlen(word) && memcmp(n, word, len) == 0)
        if (IS("key") && (f->val.type == SL_TYPE_STR || f->val.type == SL_TYPE_NULL)) {
            rec->meta.key = f->val;
        } else if (IS("headers") && f->val.type == SL_TYPE_OBJECT) {
            rec->meta.headers = f->val;
        } else if (IS("offset")) {
            rc = meta_int(f, 0, INT64_MAX, &rec->meta.offset, err);
        } else if (IS("partition")) {
            rc = meta_int(f, 0, INT32_MAX, &v, err);
            rec->meta.partition = (int32_t)v;
        } else if (IS("timestamp")) {
            rc = meta_int(f, 0, INT64_MAX, &rec->meta.timestamp_ms, err);
        } else if (IS("line") && rec->meta.line > 0) {
            rc = meta_int(f, 1, INT64_MAX, &rec->meta.line, err);
        } else if ((IS("file") && rec->meta.line > 0) || (IS("topic") && rec->meta.line == 0)) {
            if (f->val.type != SL_TYPE_STR || f->val.len == 0) {
                return sl_err_set(err, SL_EDATA, "@%.*s must be a name", (int)len, n);
            }
            rec->meta.stream = sl_arena_strndup(&st->names, f->val.u.s, f->val.len);
            rc = rec->meta.stream == NULL ? sl_err_set(err, SL_ENOMEM, "out of memory") : 0;
        } else {
            return sl_err_set(err, SL_EDATA,
                              "'%.*s' is no metadata of this source (@key, @headers, @offset, "
                              "@partition, @timestamp, @topic for Kafka; @file, @line for files)",
                              (int)f->name_len, f->name);
        }
#undef IS
        if (rc != 0) {
            return rc;
        }
        sl_record_remove(rec, f->name, f->name_len);
        *ret_moved = true;
    }
    return 0;
}

/* Decodes the next record of *p into batch. 0, or SL_EDATA with err. */
static int add_record(struct sl_json_decoder *d,
                      struct sl_node *node,
                      struct sl_batch *batch,
                      const char **p,
                      int64_t i,
                      struct sl_err *err)
{
    const struct input_conf *conf = node->cn->conf;
    const char *line = *p;
    const char *nl = strchr(line, '\n');
    size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
    struct sl_record *rec = sl_batch_add(batch);

    *p = line + len + (nl != NULL);
    if (rec == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    rec->meta.stream = conf->topic != NULL ? conf->topic : node->name;
    rec->meta.offset = i;
    rec->meta.line = conf->topic != NULL ? 0 : i + 1;
    rec->raw = line;
    rec->raw_len = (uint32_t)len;
    bool moved = false;
    int rc = sl_json_decode_object(d, line, len, rec, &batch->arena, err);
    if (rc == SL_EDATA) {
        /* Deeper than the source's max_depth: a dead letter, as a JSON
         * source makes it (the loader let nothing else through). */
        struct sl_record dead = {.meta = rec->meta, .raw = rec->raw, .raw_len = rec->raw_len};
        batch->n--;
        return sl_node_dead(node, batch, &dead, err->msg);
    }
    rc = rc != 0 ? rc : take_meta(rec, node->state, &moved, err);
    if (rc == 0 && moved) {
        /* The input text a source would have read: without the metadata. */
        struct sl_buf text = {0};
        rc = sl_json_write_record(&text, rec);
        rec->raw = rc == 0 ? sl_arena_strndup(&batch->arena, text.data, text.len) : NULL;
        rec->raw_len = (uint32_t)text.len;
        sl_buf_release(&text);
        rc = rc == 0 && rec->raw == NULL ? SL_ENOMEM : rc;
    }
    return rc;
}

static int input_open(struct sl_node *node, struct sl_err *err)
{
    struct input_state *st = sl_calloc(1, sizeof(*st));

    if (st == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    sl_arena_init(&st->names);
    node->state = st;
    return 0;
}

static void input_close(struct sl_node *node)
{
    struct input_state *st = node->state;

    if (st != NULL) {
        sl_arena_release(&st->names);
        sl_free(st);
        node->state = NULL;
    }
}

static int input_run(struct sl_node *node)
{
    const struct input_conf *conf = node->cn->conf;
    struct sl_json_decoder *d = sl_json_decoder_new((uint32_t)conf->max_depth);
    const char *p = conf->records;
    struct sl_err err = {0};
    uint64_t seq = 0;
    int64_t i = 0;
    int rc = d == NULL ? SL_ENOMEM : 0;

    while (rc == 0 && *p != '\0') {
        struct sl_batch *batch = sl_batch_new(NULL); /* admitted at push */

        if (batch == NULL) {
            rc = SL_ENOMEM;
            break;
        }
        batch->stream_name = node->name;
        batch->seq = seq++;
        batch->pos_start = i;
        /* Below a plugin stage that may add records, one record per
         * batch: the records it adds follow the one they came from, not
         * the end of a batch whose size would depend on what the stage
         * measured so far (sl_source_batch_limit), so a case gives the
         * same order every run; and one record is the least a source
         * risks there anyway. */
        int most = node->ngrowth > 0 ? 1 : INPUT_BATCH;
        for (int k = 0; rc == 0 && k < most && *p != '\0'; k++, i++) {
            rc = add_record(d, node, batch, &p, i, &err);
        }
        batch->pos_end = i;
        batch->last = *p == '\0';
        if (rc == 0) {
            rc = sl_node_source_push(node, batch);
        }
        if (rc != 0) {
            sl_batch_unref(batch);
        }
    }
    if (rc != 0 && rc != SL_ECANCELED) {
        if (err.code == 0) {
            sl_err_set(&err, rc, "%s", sl_strerror(rc));
        }
        sl_log_error("%s: record %lld: %s", node->name, (long long)i, err.msg);
    }
    sl_json_decoder_free(d);
    return rc;
}

const struct sl_node_type sl_case_input = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "test_input",
            .description = "sluice test: a case's records.",
            .kind = SLUICE_KIND_SOURCE,
            .conf_size = sizeof(struct input_conf),
            .options = input_options,
        },
    .open = input_open,
    .process = sl_source_forward,
    .close = input_close,
    .run = input_run,
};

/* ==== Capture ==== */

/* The records of one batch a capture received, in capture->text. */
struct piece {
    uint32_t source, stream;
    uint64_t seq;
    uint8_t level;
    uint32_t path;
    size_t off, len, order;
};

struct capture {
    struct sl_sink sink; /* first: the node's state is both */
    struct sl_buf text;
    struct piece *pieces;
    size_t npieces, cap;
};

struct capture_conf {
    int unused; /* no options */
};

static const struct sluice_option capture_options[] = {{0}};

static int capture_write(struct sl_sink *sink, struct sl_batch *const *batches, size_t n)
{
    struct capture *cap = (struct capture *)sink;

    for (size_t b = 0; b < n; b++) {
        const struct sl_batch *batch = batches[b];
        struct piece pc = {.source = batch->source,
                           .stream = batch->stream,
                           .seq = batch->seq,
                           .level = batch->level,
                           .path = batch->path,
                           .off = cap->text.len,
                           .order = cap->npieces};
        int rc = 0;

        if (batch->n == 0) {
            continue;
        }
        for (uint32_t i = 0; i < batch->n && rc == 0; i++) {
            rc = sl_json_write_record(&cap->text, &batch->recs[i]);
            rc = rc != 0 ? rc : sl_buf_putc(&cap->text, '\n');
        }
        if (rc == 0 && cap->npieces == cap->cap) {
            size_t ncap = cap->cap != 0 ? cap->cap * 2 : 16;
            struct piece *p = sl_realloc(cap->pieces, ncap * sizeof(*p));

            rc = p == NULL ? SL_ENOMEM : 0;
            if (p != NULL) {
                cap->pieces = p;
                cap->cap = ncap;
            }
        }
        if (rc != 0) {
            return rc;
        }
        pc.len = cap->text.len - pc.off;
        cap->pieces[cap->npieces++] = pc;
    }
    return 0;
}

static int capture_open(struct sl_node *node, struct sl_err *err)
{
    struct capture *cap = sl_calloc(1, sizeof(*cap));

    if (cap == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    sl_sink_init(&cap->sink, node, capture_write, NULL);
    node->state = cap;
    return 0;
}

static void capture_close(struct sl_node *node)
{
    struct capture *cap = node->state;

    if (cap != NULL) {
        sl_sink_release(&cap->sink);
        sl_buf_release(&cap->text);
        sl_free(cap->pieces);
        sl_free(cap);
        node->state = NULL;
    }
}

const struct sl_node_type sl_case_capture = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "test_capture",
            .description = "sluice test: keeps what it receives.",
            .kind = SLUICE_KIND_SINK,
            .conf_size = sizeof(struct capture_conf),
            .options = capture_options,
        },
    .open = capture_open,
    .process = sl_sink_node_process,
    .flush = sl_sink_node_flush,
    .close = capture_close,
};

static int by_position(const void *a, const void *b)
{
    const struct piece *x = a, *y = b;

    if (x->source != y->source) {
        return x->source < y->source ? -1 : 1;
    }
    if (x->stream != y->stream) {
        return x->stream < y->stream ? -1 : 1;
    }
    if (x->seq != y->seq) {
        return x->seq < y->seq ? -1 : 1;
    }
    if (x->level != y->level) {
        return x->level < y->level ? -1 : 1;
    }
    if (x->path != y->path) {
        return x->path < y->path ? -1 : 1;
    }
    return x->order < y->order ? -1 : x->order > y->order;
}

int sl_case_captured(struct sl_node *node, struct sl_buf *out)
{
    struct capture *cap = node->state;
    int rc = 0;

    if (cap == NULL || node->cn->type != &sl_case_capture) {
        return SL_EINVAL;
    }
    if (cap->npieces > 0) {
        qsort(cap->pieces, cap->npieces, sizeof(*cap->pieces), by_position);
    }
    for (size_t i = 0; i < cap->npieces && rc == 0; i++) {
        rc = sl_buf_append(out, cap->text.data + cap->pieces[i].off, cap->pieces[i].len);
    }
    return rc;
}

static const struct sl_node_type *const case_types[] = {&sl_case_input, &sl_case_capture, NULL};

int sl_cases_register(void)
{
    return sl_node_type_register(case_types);
}
