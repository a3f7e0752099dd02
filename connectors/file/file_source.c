/* SPDX-License-Identifier: MIT */
/* `file` source: the files matching a glob, in sorted order, read in blocks
 * on the source thread (cut at record boundaries), decoded (json, csv,
 * lines) into records on the pool. Each file is one stream: positions are
 * byte offsets in the decompressed file; a restart resumes from the lowest
 * position the sinks stored, unless the file's fingerprint changed. */
#include "connectors/file/file_checkpoint.h"
#include "connectors/file/reader.h"
#include "decode.h"
#include "log.h"
#include "mem.h"
#include "source.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_SIZE   (256 * 1024)
#define DEAD_RAW_MAX (64 * 1024)
/* How often the `checkpoints:` file is updated while reading. */
#define CKPT_EVERY_NS (1000 * 1000 * 1000ull)

struct file_conf {
    const char *path;
    int format;
    uint64_t max_line;
    int64_t max_depth;
    const char *checkpoints;
};

/* clang-format off */
static const struct sluice_option file_options[] = {
    SLUICE_OPT_ROW(struct file_conf, path, SLUICE_OPT_STR, NULL, 0, 0, NULL, SLUICE_OPT_REQUIRED,
                   "Glob of the files to read, in sorted order; *.lz4 are decompressed."),
    SLUICE_OPT_ROW(struct file_conf, format, SLUICE_OPT_ENUM, "json", 0, 0, sl_format_names, 0,
                   "json (alias jsonl): one object per line; csv: RFC 4180 with a header; "
                   "lines: one record {message} per line."),
    SLUICE_OPT_ROW(struct file_conf, max_line, SLUICE_OPT_SIZE, "16MiB", 1024, 1073741824.0, NULL,
                   0, "Longer lines are dead letters."),
    SLUICE_OPT_ROW(struct file_conf, max_depth, SLUICE_OPT_INT, "64", 1, 10000, NULL, 0,
                   "JSON nesting limit; deeper lines are dead letters."),
    SLUICE_OPT_ROW(struct file_conf, checkpoints, SLUICE_OPT_STR, NULL, 0, 0, NULL,
                   0, "SQLite file keeping this source's positions for the sinks that keep "
                   "none (file, kafka, null): a restart resumes instead of reading all again."),
    {0},
};
/* clang-format on */

struct file_stream {
    int64_t ck_pos; /* position last stored in the checkpoints file, -1 none */
    char *path;
    char fingerprint[SL_FINGERPRINT_MAX];
    struct sl_csv_header *header; /* csv: lives until close */
};

struct file_source {
    const struct file_conf *conf;
    struct file_stream *streams;
    size_t nstreams;
    enum sl_format format;
    struct sl_decoders decoders;
    struct sl_file_ckpt *ck; /* `checkpoints:` store, NULL without */
    uint64_t ck_stored_ns;   /* when positions were last stored */
};

/* Stores, for the sinks that keep no positions, how far every sink has
 * acknowledged each file. Thread: the source's while it reads, then main
 * (close). */
static void store_positions(struct sl_node *node, struct file_source *fs)
{
    struct sl_err err = {0};

    for (size_t i = 0; fs->ck != NULL && i < fs->nstreams; i++) {
        struct file_stream *st = &fs->streams[i];
        int64_t pos;
        if (sl_source_committed(node, (uint32_t)i, &pos) != 0 || pos <= st->ck_pos) {
            continue;
        }
        if (sl_file_ckpt_put(fs->ck, st->path, pos, st->fingerprint, &err) != 0) {
            sl_log_warn("%s: %s", node->name, err.msg);
            return;
        }
        st->ck_pos = pos;
    }
    fs->ck_stored_ns = sl_now_ns();
}

static void file_close(struct sl_node *node)
{
    struct file_source *fs = node->state;

    if (fs == NULL) {
        return;
    }
    /* Everything is drained now: what the sinks acknowledged is final. */
    store_positions(node, fs);
    fs->ck = sl_file_ckpt_close(fs->ck);
    for (size_t i = 0; i < fs->nstreams; i++) {
        sl_free(fs->streams[i].path);
        sl_csv_header_free(fs->streams[i].header);
    }
    sl_free(fs->streams);
    sl_decoders_release(&fs->decoders);
    sl_free(fs);
    node->state = NULL;
}

static int cmp_path(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int expand_glob(struct file_source *fs, const char *pattern, struct sl_err *err)
{
    glob_t g;
    int rc = glob(pattern, GLOB_NOSORT | GLOB_BRACE, NULL, &g);

    if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
        globfree(&g);
        return sl_err_set(err, SL_EIO, "no file matches '%s'", pattern);
    }
    if (rc != 0) {
        globfree(&g);
        return sl_err_set(err, SL_EIO, "cannot expand '%s'", pattern);
    }
    /* Sorted bytewise (not by locale), so the order is the same everywhere. */
    qsort(g.gl_pathv, g.gl_pathc, sizeof(char *), cmp_path);
    fs->streams = sl_calloc(g.gl_pathc, sizeof(*fs->streams));
    if (fs->streams == NULL) {
        globfree(&g);
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < g.gl_pathc; i++) {
        fs->streams[i].ck_pos = -1;
        fs->streams[i].path = sl_strdup(g.gl_pathv[i]);
        if (fs->streams[i].path == NULL) {
            globfree(&g);
            return SL_ENOMEM;
        }
        fs->nstreams++;
    }
    globfree(&g);
    return 0;
}

static int file_open(struct sl_node *node, struct sl_err *err)
{
    struct file_source *fs = sl_calloc(1, sizeof(*fs));

    if (fs == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    node->state = fs;
    fs->conf = node->cn->conf;
    int rc = expand_glob(fs, fs->conf->path, err);
    if (rc != 0) {
        return rc == SL_ENOMEM ? sl_err_set(err, rc, "out of memory") : rc;
    }
    fs->format = sl_format_of(fs->conf->format);
    if (sl_decoders_init(&fs->decoders, (size_t)sl_sched_threads(node->pl->sched),
                         (uint32_t)fs->conf->max_depth) != 0) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    if (fs->conf->checkpoints != NULL) {
        fs->ck = sl_file_ckpt_open(fs->conf->checkpoints, node->name, err);
        if (fs->ck == NULL) {
            return err->code;
        }
    }
    return 0;
}

/* ==== Reading (source thread) ==== */

/* Bytes read but not yet handed on; buf[0] is at a record boundary. */
struct reading {
    struct sl_node *node;
    struct file_source *fs;
    size_t stream;
    struct sl_reader r;
    char *buf;
    size_t len;
    size_t cap;
    int64_t pos;  /* stream offset of buf[0] */
    int64_t line; /* line number of buf[0] */
    uint64_t seq;
};

static int64_t count_lines(const char *p, size_t n)
{
    int64_t lines = 0;
    const char *end = p + n;

    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        lines++;
        p++;
    }
    return lines;
}

static struct sl_batch *new_block_batch(struct reading *rd)
{
    struct sl_batch *batch = sl_batch_new();
    struct file_stream *st = &rd->fs->streams[rd->stream];

    if (batch == NULL) {
        return NULL;
    }
    batch->stream = (uint32_t)rd->stream;
    batch->stream_name = st->path;
    batch->fingerprint = st->fingerprint;
    batch->seq = rd->seq++;
    batch->pos_start = rd->pos;
    batch->line = rd->line;
    batch->aux = st->header;
    return batch;
}

/* Hands bytes [0, cut) on as one raw batch; keeps the rest. */
static int emit_block(struct reading *rd, size_t cut, bool last)
{
    struct sl_batch *batch = new_block_batch(rd);
    char *rest = sl_malloc(rd->cap);

    if (batch == NULL || rest == NULL) {
        sl_batch_unref(batch);
        sl_free(rest);
        return SL_ENOMEM;
    }
    memcpy(rest, rd->buf + cut, rd->len - cut);
    batch->block = rd->buf;
    batch->block_len = cut;
    batch->pos_end = rd->pos + (int64_t)cut;
    batch->last = last;
    rd->line += count_lines(rd->buf, cut);
    rd->pos += (int64_t)cut;
    rd->buf = rest;
    rd->len -= cut;
    int rc = sl_node_source_push(rd->node, batch);
    if (rc != 0) {
        sl_batch_unref(batch);
    }
    return rc;
}

/* A batch holding only a dead letter for the bytes [pos, pos + span). */
static int
emit_dead(struct reading *rd, const char *raw, size_t raw_len, int64_t span, const char *reason)
{
    struct sl_batch *batch = new_block_batch(rd);
    struct sl_record rec = {0};

    if (batch == NULL) {
        return SL_ENOMEM;
    }
    rec.meta.stream = batch->stream_name;
    rec.meta.offset = rd->pos;
    rec.meta.line = rd->line;
    rec.raw = sl_arena_strndup(&batch->arena, raw, raw_len < DEAD_RAW_MAX ? raw_len : DEAD_RAW_MAX);
    rec.raw_len = raw_len < DEAD_RAW_MAX ? (uint32_t)raw_len : DEAD_RAW_MAX;
    batch->source = rd->node->index;
    if (rec.raw == NULL || sl_node_dead(rd->node, batch, &rec, reason) != 0) {
        sl_batch_unref(batch);
        return SL_ENOMEM;
    }
    batch->pos_end = rd->pos + span;
    int rc = sl_node_source_push(rd->node, batch);
    if (rc != 0) {
        sl_batch_unref(batch);
    }
    return rc;
}

/* Reads more bytes; returns count, 0 at end, or an error. */
static long fill(struct reading *rd, struct sl_err *err)
{
    if (rd->cap - rd->len < BLOCK_SIZE / 2) {
        size_t cap = rd->cap * 2;
        char *p = sl_realloc(rd->buf, cap);
        if (p == NULL) {
            return SL_ENOMEM;
        }
        rd->buf = p;
        rd->cap = cap;
    }
    return sl_reader_read(&rd->r, rd->buf + rd->len, rd->cap - rd->len, err);
}

/* The first line is longer than max_line: dead-letter it (its start) and
 * skip past its newline. */
static int skip_long_line(struct reading *rd, struct sl_err *err)
{
    char reason[96];
    size_t raw_len = rd->len < DEAD_RAW_MAX ? rd->len : DEAD_RAW_MAX;
    char *raw = sl_strndup(rd->buf, raw_len);
    int64_t span = 0;
    const char *nl;

    if (raw == NULL) {
        return SL_ENOMEM;
    }
    snprintf(reason, sizeof(reason), "line longer than max_line (%llu bytes)",
             (unsigned long long)rd->fs->conf->max_line);
    while ((nl = memchr(rd->buf, '\n', rd->len)) == NULL) {
        span += (int64_t)rd->len;
        rd->len = 0;
        long n = fill(rd, err);
        if (n <= 0) {
            break;
        }
        rd->len = (size_t)n;
    }
    size_t used = nl != NULL ? (size_t)(nl + 1 - rd->buf) : rd->len;
    span += (int64_t)used;
    int rc = emit_dead(rd, raw, raw_len, span, reason);
    sl_free(raw);
    if (rc != 0) {
        return rc;
    }
    rd->pos += span;
    rd->line += 1;
    memmove(rd->buf, rd->buf + used, rd->len - used);
    rd->len -= used;
    return 0;
}

static size_t find_cut(struct reading *rd, bool eof)
{
    if (eof) {
        return rd->len;
    }
    if (rd->fs->format == SL_FORMAT_CSV) {
        return sl_csv_complete_prefix(rd->buf, rd->len, false);
    }
    const char *nl = memrchr(rd->buf, '\n', rd->len);
    return nl != NULL ? (size_t)(nl - rd->buf) + 1 : 0;
}

/* Skips to the resume position, counting lines on the way. */
static int skip_to(struct reading *rd, int64_t target, struct sl_err *err)
{
    while (rd->pos < target) {
        long n = fill(rd, err);
        if (n < 0) {
            return (int)n;
        }
        rd->len += (size_t)n;
        size_t take = (size_t)(target - rd->pos) < rd->len ? (size_t)(target - rd->pos) : rd->len;
        if (n == 0 && take == 0) {
            break; /* the file is shorter now: nothing more to read */
        }
        rd->line += count_lines(rd->buf, take);
        rd->pos += (int64_t)take;
        memmove(rd->buf, rd->buf + take, rd->len - take);
        rd->len -= take;
    }
    return 0;
}

/* csv: reads the header row (skipping blank lines before it). */
static int read_header(struct reading *rd, struct sl_err *err)
{
    struct file_stream *st = &rd->fs->streams[rd->stream];

    for (;;) {
        bool eof = false;
        size_t cut = sl_csv_complete_prefix(rd->buf, rd->len, false);
        if (cut == 0) {
            long n = fill(rd, err);
            if (n < 0) {
                return (int)n;
            }
            eof = n == 0;
            rd->len += (size_t)n;
            cut = sl_csv_complete_prefix(rd->buf, rd->len, eof);
            if (cut == 0 && !eof) {
                continue;
            }
        }
        if (rd->len == 0) {
            return SL_EOF; /* empty file */
        }
        size_t row_len;
        uint32_t lines;
        size_t used = sl_csv_next_row(rd->buf, rd->len, &row_len, &lines);
        if (sl_csv_row_blank(rd->buf, row_len)) {
            rd->pos += (int64_t)used;
            rd->line += lines;
            memmove(rd->buf, rd->buf + used, rd->len - used);
            rd->len -= used;
            continue;
        }
        struct sl_err herr = {0};
        int rc = sl_csv_header_parse(rd->buf, row_len, &st->header, &herr);
        if (rc == SL_EDATA) {
            char reason[300];
            snprintf(reason, sizeof(reason), "bad CSV header: %s", herr.msg);
            /* The rest of the file is this dead letter (an .lz4 file's
             * decompressed size is unknown: all of it). */
            int64_t span = rd->r.lz4 ? INT64_MAX - rd->pos : (int64_t)rd->r.file_size - rd->pos;
            rc = emit_dead(rd, rd->buf, row_len, span, reason);
            return rc != 0 ? rc : SL_EOF;
        }
        if (rc != 0) {
            return rc;
        }
        rd->pos += (int64_t)used;
        rd->line += lines;
        memmove(rd->buf, rd->buf + used, rd->len - used);
        rd->len -= used;
        return 0;
    }
}

static void strip_bom(struct reading *rd)
{
    if (rd->pos == 0 && rd->len >= 3 && memcmp(rd->buf, "\xEF\xBB\xBF", 3) == 0) {
        memmove(rd->buf, rd->buf + 3, rd->len - 3);
        rd->len -= 3;
        rd->pos = 3;
    }
}

static int prepare_stream(struct reading *rd, struct sl_err *err)
{
    struct file_stream *st = &rd->fs->streams[rd->stream];
    char stored[SL_FINGERPRINT_MAX];
    int64_t resume = 0;
    int rc;

    char own_fp[SL_FINGERPRINT_MAX] = "";
    struct sl_own_position own = {0, own_fp};
    if (rd->fs->ck != NULL) {
        rc = sl_file_ckpt_get(rd->fs->ck, st->path, &own.pos, own_fp, sizeof(own_fp), err);
        if (rc != 0 && rc != SL_EOF) {
            return rc;
        }
    }
    if ((rc = sl_reader_open(&rd->r, st->path, err)) != 0 ||
        (rc = sl_reader_fingerprint(&rd->r, st->fingerprint, sizeof(st->fingerprint), err)) != 0 ||
        (rc = sl_source_resume(rd->node, st->path, 0, rd->fs->ck != NULL ? &own : NULL, &resume,
                               NULL, stored, sizeof(stored), err)) != 0) {
        return rc;
    }
    bool same = true;
    if (stored[0] != '\0' && (rc = sl_reader_same_file(&rd->r, stored, resume, &same, err)) != 0) {
        return rc;
    }
    if (!same) {
        sl_log_warn("%s: %s is not the file read before (now %s, was %s): reading it from the "
                    "start",
                    rd->node->name, st->path, st->fingerprint, stored);
        resume = 0;
    } else if (stored[0] != '\0') {
        /* Keep the identity the sinks stored (a file that grew is the same
         * file), so their trim rule applies. */
        snprintf(st->fingerprint, sizeof(st->fingerprint), "%s", stored);
    }
    rd->pos = 0;
    rd->line = 1;
    rd->len = 0;
    rd->seq = 0;
    long n = fill(rd, err);
    if (n < 0) {
        return (int)n;
    }
    rd->len = (size_t)n;
    strip_bom(rd);
    if (rd->fs->format == SL_FORMAT_CSV && (rc = read_header(rd, err)) != 0) {
        return rc;
    }
    return skip_to(rd, resume, err);
}

/* Reads one file to its end (or until the pipeline stops). */
static int read_stream(struct reading *rd, struct sl_err *err)
{
    int rc = prepare_stream(rd, err);
    bool pending = true; /* prepare_stream may have left bytes to cut */

    while (rc == 0) {
        if (atomic_load_explicit(&rd->node->pl->stop, memory_order_acquire)) {
            return SL_ECANCELED;
        }
        long n = pending ? 0 : fill(rd, err);
        if (n == SL_EDATA) {
            /* A corrupt LZ4 frame: the rest of the file is one dead letter;
             * its span ends one past its offset so a replay trims it. */
            return emit_dead(rd, rd->buf, rd->len, (int64_t)rd->len + 1, err->msg);
        }
        if (n < 0) {
            return (int)n;
        }
        rd->len += (size_t)n;
        bool eof = n == 0 && !pending;
        pending = false;
        size_t cut = find_cut(rd, eof);
        if (cut > 0) {
            rc = emit_block(rd, cut, eof);
        }
        if (rd->fs->ck != NULL && sl_now_ns() - rd->fs->ck_stored_ns >= CKPT_EVERY_NS) {
            store_positions(rd->node, rd->fs);
        } else if (rd->len > rd->fs->conf->max_line) {
            rc = skip_long_line(rd, err);
        }
        if (eof) {
            break;
        }
    }
    return rc == SL_EOF ? 0 : rc;
}

static int file_run(struct sl_node *node)
{
    struct file_source *fs = node->state;
    struct reading rd = {.node = node, .fs = fs};
    struct sl_err err = {0};
    int rc = 0;

    rd.cap = BLOCK_SIZE;
    rd.buf = sl_malloc(rd.cap);
    if (rd.buf == NULL) {
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < fs->nstreams && rc == 0; i++) {
        rd.stream = i;
        rc = read_stream(&rd, &err);
        sl_reader_close(&rd.r);
        if (rc != 0 && rc != SL_ECANCELED) {
            sl_log_error("%s: %s: %s", node->name, fs->streams[i].path,
                         err.msg[0] ? err.msg : sl_strerror(rc));
        }
    }
    sl_free(rd.buf);
    return rc;
}

/* ==== Decoding (workers) ==== */

static bool blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
            return false;
        }
    }
    return true;
}

/* Turns a record that failed to decode into a dead letter. */
static int reject(struct sl_node *node, struct sl_batch *batch, const char *reason)
{
    struct sl_record rec = batch->recs[--batch->n];

    rec.nfields = 0;
    rec.fields = NULL;
    return sl_node_dead(node, batch, &rec, reason);
}

static int decode_line(struct sl_node *node,
                       struct sl_batch *batch,
                       struct sl_json_decoder *dec,
                       const char *p,
                       size_t n,
                       int64_t line,
                       int64_t off)
{
    const struct file_source *fs = node->state;
    struct sl_record *rec = sl_batch_add(batch);
    struct sl_err err;
    int rc = 0;

    if (rec == NULL) {
        return SL_ENOMEM;
    }
    rec->meta.stream = batch->stream_name;
    rec->meta.offset = off;
    rec->meta.line = line;
    rec->raw = p;
    rec->raw_len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    if (n > fs->conf->max_line) {
        snprintf(err.msg, sizeof(err.msg), "line longer than max_line (%llu bytes)",
                 (unsigned long long)fs->conf->max_line);
        return reject(node, batch, err.msg);
    }
    rc = sl_decode_text(fs->format, dec, batch->aux, p, n, rec, &batch->arena, &err);
    if (rc == SL_EDATA) {
        return reject(node, batch, err.msg);
    }
    return rc;
}

static int file_process(struct sl_node *node, struct sl_batch *batch)
{
    struct file_source *fs = node->state;
    struct sl_json_decoder *dec = sl_decoders_mine(&fs->decoders);
    const char *p = batch->block;
    const char *end = p + batch->block_len;
    int64_t line = batch->line;
    int64_t off = batch->pos_start;
    bool csv = fs->format == SL_FORMAT_CSV;
    int rc = 0;

    while (p < end && rc == 0) {
        size_t n;
        uint32_t lines = 1;
        size_t used;
        if (csv) {
            used = sl_csv_next_row(p, (size_t)(end - p), &n, &lines);
        } else {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            n = (size_t)((nl != NULL ? nl : end) - p);
            used = nl != NULL ? n + 1 : n;
        }
        bool skip = fs->format == SL_FORMAT_LINES ? (n == 0 || (n == 1 && p[0] == '\r'))
                                                  : (n == 0 || (p[0] != '{' && blank(p, n)));
        if (!skip) {
            rc = decode_line(node, batch, dec, p, n, line, off);
        }
        p += used;
        off += (int64_t)used;
        line += lines;
    }
    atomic_fetch_add_explicit(&node->c.in, batch->n + batch->ndead, memory_order_relaxed);
    if (rc != 0) {
        sl_batch_unref(batch);
        return rc;
    }
    sl_node_account(node, batch);
    sl_node_emit(node, 0, batch);
    return 0;
}

const struct sl_node_type sl_stage_file = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "file",
            .description = "Reads JSON lines, CSV or text lines from files (glob, .lz4).",
            .kind = SLUICE_KIND_SOURCE,
            .conf_size = sizeof(struct file_conf),
            .options = file_options,
        },
    .open = file_open,
    .process = file_process,
    .close = file_close,
    .run = file_run,
};
