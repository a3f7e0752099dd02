/* SPDX-License-Identifier: MIT */
/* `file` source: the files matching a glob, in sorted order, read in blocks
 * on the source thread (cut at record boundaries), decoded (json, csv,
 * lines) into records on the pool. Each file is one stream, known by its
 * content (file_identity.h), not its path: positions are byte offsets in
 * the decompressed file; a restart resumes from the lowest position the
 * sinks stored for it, under whatever name it has now. */
#include "connectors/file/file_checkpoint.h"
#include "connectors/file/file_identity.h"
#include "connectors/file/reader.h"
#include "decode.h"
#include "log.h"
#include "mem.h"
#include "source.h"

#include <glob.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DEAD_RAW_MAX (64 * 1024)
/* How often the `checkpoints:` file is updated while reading. */
#define CKPT_EVERY_NS (1000 * 1000 * 1000ull)
/* A file changed this recently is still being written (settle). */
#define SETTLE_NS (1000 * 1000 * 1000ll)
/* The longest a run waits for files to settle, all files together. */
#define SETTLE_MAX_NS (10 * 1000 * 1000 * 1000ll)

struct file_conf {
    const char *path;
    int format;
    uint64_t max_line;
    int64_t max_depth;
    const char *checkpoints;
    bool follow; /* recognised only: refused until follow mode is built */
};

/* clang-format off */
static const struct sluice_option file_options[] = {
    SLUICE_OPT_ROW(struct file_conf, path, SLUICE_OPT_STR, NULL, 0, 0, NULL, SLUICE_OPT_REQUIRED,
                   "Glob of the files to read, in sorted order (directories are skipped); "
                   "*.lz4 are decompressed."),
    SLUICE_OPT_ROW(struct file_conf, format, SLUICE_OPT_ENUM, "json", 0, 0, sl_format_names, 0,
                   "json (alias jsonl): one object per line; csv: RFC 4180 with a header; "
                   "lines: one record {message} per line."),
    SLUICE_OPT_ROW(struct file_conf, max_line, SLUICE_OPT_SIZE, "16MiB", 1024, 1073741824.0, NULL,
                   0, "Longer lines (CSV: rows) are dead letters. A line longer than "
                   "engine.memory_limit is read and decoded alone, and takes its own size in "
                   "memory beyond the limit."),
    SLUICE_OPT_ROW(struct file_conf, max_depth, SLUICE_OPT_INT, "64", 1, 10000, NULL, 0,
                   "JSON nesting limit; deeper lines are dead letters."),
    SLUICE_OPT_ROW(struct file_conf, checkpoints, SLUICE_OPT_STR, NULL, 0, 0, NULL,
                   0, "SQLite file keeping this source's positions for the sinks that keep "
                   "none (file, kafka, null): a restart resumes instead of reading all again."),
    SLUICE_OPT_ROW(struct file_conf, follow, SLUICE_OPT_BOOL, "false", 0, 0, NULL, SLUICE_OPT_LATER,
                   "Keep reading as files grow (not supported yet)."),
    {0},
};
/* clang-format on */

/* One file. Written by the source thread before it hands on the file's
 * first batch (the ring push publishes it), then read by workers. */
struct file_stream {
    int64_t ck_pos; /* position last stored in the checkpoints file, -1 none */
    char *path;     /* as the glob spelled it: for display */
    char *key;      /* the stream's position key (its identity) */
    char *fp;       /* the fingerprint stored beside the positions: with the tail
                       before the resume position (tail_at_resume) */
    char *fp_end;   /* NULL, or from the block that reached the file's end on: with
                       the tail before end_at (tail_at_end) */
    int64_t end_at; /* fp_end's tail offset: positions below it store fp */
    uint64_t size;  /* when identified */
    uint64_t dev;
    uint64_t ino;
    uint64_t checked_at;          /* the stored tail identification found the same, 0: none */
    uint64_t checked_hash;        /* its hash */
    bool skip;                    /* another path of this run is the same file, or a copy */
    struct sl_csv_header *header; /* csv: lives until close */
    char *header_err;             /* csv: why the header was refused, else NULL */
};

struct file_source {
    const struct file_conf *conf;
    struct file_stream *streams;
    size_t nstreams;
    enum sl_format format;
    struct sl_decoders decoders;
    struct sl_file_ckpt *ck; /* `checkpoints:` store, NULL without */
    uint64_t ck_stored_ns;   /* when positions were last stored */
    /* Once everything is read, the sinks may acknowledge for a long while
     * yet (a Kafka sink): this thread goes on storing their progress until
     * close, so that a kill meanwhile does not send it all again. */
    pthread_t ck_thread;
    bool ck_thread_on;
    bool ck_stop; /* under ck_lock: close wants the thread gone */
    pthread_mutex_t ck_lock;
    pthread_cond_t ck_cond;
    int64_t settle_ns; /* waited for files to settle this run (source thread) */
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
        /* A tail never lies past the position stored with it. */
        const char *fp = st->fp_end != NULL && pos >= st->end_at ? st->fp_end : st->fp;
        if (sl_file_ckpt_put(fs->ck, st->key, pos, fp, &err) != 0) {
            sl_log_warn("%s: %s", node->name, err.msg);
            return;
        }
        st->ck_pos = pos;
    }
    fs->ck_stored_ns = sl_now_ns();
}

/* The thread that stores positions after the reading, every CKPT_EVERY_NS
 * until close stops it. */
static void *store_while_draining(void *arg)
{
    struct sl_node *node = arg;
    struct file_source *fs = node->state;

    pthread_mutex_lock(&fs->ck_lock);
    while (!fs->ck_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += (time_t)(CKPT_EVERY_NS / 1000000000ull);
        (void)pthread_cond_timedwait(&fs->ck_cond, &fs->ck_lock, &ts);
        if (!fs->ck_stop) {
            pthread_mutex_unlock(&fs->ck_lock);
            store_positions(node, fs);
            pthread_mutex_lock(&fs->ck_lock);
        }
    }
    pthread_mutex_unlock(&fs->ck_lock);
    return NULL;
}

static void file_close(struct sl_node *node)
{
    struct file_source *fs = node->state;

    if (fs == NULL) {
        return;
    }
    if (fs->ck_thread_on) {
        pthread_mutex_lock(&fs->ck_lock);
        fs->ck_stop = true;
        pthread_cond_signal(&fs->ck_cond);
        pthread_mutex_unlock(&fs->ck_lock);
        pthread_join(fs->ck_thread, NULL);
    }
    pthread_mutex_destroy(&fs->ck_lock);
    pthread_cond_destroy(&fs->ck_cond);
    /* Everything is drained now: what the sinks acknowledged is final. */
    store_positions(node, fs);
    fs->ck = sl_file_ckpt_close(fs->ck);
    for (size_t i = 0; i < fs->nstreams; i++) {
        sl_free(fs->streams[i].path);
        sl_free(fs->streams[i].key);
        sl_free(fs->streams[i].fp);
        sl_free(fs->streams[i].fp_end);
        sl_csv_header_free(fs->streams[i].header);
        sl_free(fs->streams[i].header_err);
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
    /* GLOB_MARK appends '/' to directories: they are skipped, not read. */
    int rc = glob(pattern, GLOB_NOSORT | GLOB_BRACE | GLOB_MARK, NULL, &g);
    size_t dirs = 0;

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
        size_t len = strlen(g.gl_pathv[i]);
        if (len > 0 && g.gl_pathv[i][len - 1] == '/') {
            dirs++;
            continue;
        }
        /* A FIFO or a device has no position to resume from and cannot be
         * fingerprinted (a read would consume it): opening one blocked until
         * a writer came, then failed with "Illegal seek" (probe). */
        struct stat sb;
        if (stat(g.gl_pathv[i], &sb) == 0 && !S_ISREG(sb.st_mode)) {
            rc = sl_err_set(err, SL_EIO,
                            "'%s' is not a regular file (%s): a file source reads files, "
                            "whose positions it can keep",
                            g.gl_pathv[i],
                            S_ISFIFO(sb.st_mode)   ? "a FIFO"
                            : S_ISSOCK(sb.st_mode) ? "a socket"
                                                   : "a device");
            globfree(&g);
            return rc;
        }
        struct file_stream *st = &fs->streams[fs->nstreams];
        st->ck_pos = -1;
        st->path = sl_strdup(g.gl_pathv[i]);
        if (st->path == NULL) {
            globfree(&g);
            return SL_ENOMEM;
        }
        fs->nstreams++;
    }
    globfree(&g);
    if (fs->nstreams == 0) {
        return sl_err_set(err, SL_EIO, "no file matches '%s' (it matches %zu director%s only)",
                          pattern, dirs, dirs == 1 ? "y" : "ies");
    }
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
    pthread_mutex_init(&fs->ck_lock, NULL);
    pthread_cond_init(&fs->ck_cond, NULL);
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
        fs->ck = sl_file_ckpt_open(fs->conf->checkpoints, node->name, node->pl->conf->file, err);
        if (fs->ck == NULL) {
            return err->code;
        }
    }
    return 0;
}

/* ==== Reading (source thread) ==== */

/* Bytes read but not yet handed on; buf[0] is at a record boundary. The
 * buffer is block_bytes (the memory plan's read size) and grows only for
 * a line that does not fit: that growth, cap - block_bytes, is held from
 * memory_limit (sl_source_hold) before it is allocated, and moves into the
 * block's batch when the line is handed on. The hold also covers the
 * reader's own buffers while a file is open (an .lz4 file's: 8.4 MiB for
 * 4 MiB blocks), in one hold: a source is one holder, so a hold larger
 * than the whole budget waits for its turn alone instead of deadlocking
 * against its own other hold. */
struct reading {
    struct sl_node *node;
    struct file_source *fs;
    size_t stream;
    struct sl_reader r;
    char *buf;
    size_t len;
    size_t cap;
    uint64_t held;  /* budget held: state, plus cap - block_bytes when buf grew */
    uint64_t state; /* the part of held for the open reader's buffers */
    int64_t pos;    /* stream offset of buf[0] */
    int64_t line;   /* line number of buf[0] */
    uint64_t seq;
    /* json, lines: buf[0, lf_free) holds no line break; valid while pos is
     * still lf_free_pos (bytes were only added since), so a long line is
     * not searched again from its start after every read. */
    size_t lf_free;
    int64_t lf_free_pos;
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
    struct sl_batch *batch = sl_batch_new(NULL);
    struct file_stream *st = &rd->fs->streams[rd->stream];

    if (batch == NULL) {
        return NULL;
    }
    batch->stream = (uint32_t)rd->stream;
    batch->stream_name = st->key;
    batch->fingerprint = st->fp_end != NULL ? st->fp_end : st->fp;
    batch->seq = rd->seq++;
    batch->pos_start = rd->pos;
    batch->line = rd->line;
    batch->aux = st;
    return batch;
}

/* Reads take at least this much (or the plan's block, if smaller) when
 * blocks are cut smaller for plugin stages below (cut_base): a block may
 * be one line then, and reading one line at a time would be a system call
 * a line (and a cut of one byte read one byte). */
#define READ_MIN (4 * 1024)

/* The most bytes a block may take: the read size's base, lowered by what
 * plugin stages below make of the blocks (sl_source_batch_limit). */
static size_t cut_base(const struct reading *rd)
{
    const struct sl_pipeline *pl = rd->node->pl;
    size_t base =
        rd->r.lz4 ? pl->block_plan : atomic_load_explicit(&pl->block_bytes, memory_order_relaxed);
    uint64_t most = sl_source_batch_limit(rd->node);

    return most < base ? (size_t)most : base;
}

/* The read size: the memory plan's, lowered by what decoded blocks grow
 * into (runtime.c) and by what plugin stages make of them (cut_base), down
 * to READ_MIN. An .lz4 file keeps the plan's own: where the damage in a
 * damaged one shows in the decompressed stream depends on the read sizes,
 * and a re-run must meet it where the first run stored its position
 * (test_file_edges.sh); its blocks are only cut smaller (every whole line
 * read is handed on either way, so where a damage shows does not move). */
static size_t read_base(const struct reading *rd)
{
    const struct sl_pipeline *pl = rd->node->pl;
    size_t planned = atomic_load_explicit(&pl->block_bytes, memory_order_relaxed);
    size_t cut = cut_base(rd);

    if (rd->r.lz4) {
        return pl->block_plan;
    }
    return cut >= READ_MIN || cut == planned ? cut : planned < READ_MIN ? planned : READ_MIN;
}

/* The capacity a buffer holding len bytes needs to take a read: at least
 * half a block free. From block_bytes, growing by half at a time, and by an
 * eighth past 4 MiB: realloc of a large block remaps it instead of copying,
 * so the growth need not be steep, and what a long line holds beyond its
 * own size is held from the budget. */
static size_t cap_for(size_t base, size_t len)
{
    size_t cap = base;

    while (cap < len + base / 2) {
        cap += cap < ((size_t)4 << 20) ? cap / 2 : cap / 8;
    }
    return cap;
}

/* The block that ends at the last line break of the file as it was when
 * opened (what is left after it, in rd->buf, holds no whole line), or else
 * the input's last block, gives the stream its end fingerprint: with the
 * tail of the 4 KiB before the block's end, so that a later run notices an
 * edit there. A tail never lies past the position stored with it: the
 * first block ends with whole lines, and in a last one the tail ends
 * before its unterminated last line (CSV: row), which a worker may leave
 * unread (leave_unread). The window is in the block, or is read with one
 * pread when the block is shorter. Not for .lz4 files (their positions are
 * in the decompressed stream); without memory, the stream keeps the
 * fingerprint it has (it only notices less). */
static void tail_at_end(struct reading *rd, struct sl_batch *batch)
{
    struct file_stream *st = &rd->fs->streams[rd->stream];
    const char *block = batch->block;
    size_t done = batch->block_len;
    bool csv = rd->fs->format == SL_FORMAT_CSV;
    char fp[SL_FILE_FP_MAX];
    uint64_t x;

    if (rd->r.lz4 || st->fp_end != NULL) {
        return;
    }
    if (!batch->last) {
        size_t row_len;
        uint32_t lines;
        if ((uint64_t)batch->pos_end + rd->len < rd->r.file_size) {
            return; /* the file's end (as opened) is not read yet */
        }
        size_t used = csv ? sl_csv_next_row(rd->buf, rd->len, &row_len, &lines) : 0;
        bool whole_left = csv ? row_len < used && rd->buf[used - 1] == '\n'
                              : memchr(rd->buf, '\n', rd->len) != NULL;
        if (whole_left) {
            return;
        }
    } else if (csv) {
        done = sl_csv_complete_prefix(block, done, false, SIZE_MAX);
    } else if (done > 0 && block[done - 1] != '\n') {
        const char *nl = memrchr(block, '\n', done);
        done = nl != NULL ? (size_t)(nl + 1 - block) : 0;
    }
    uint64_t at = (uint64_t)batch->pos_start + done;
    size_t win = at < SL_FILE_HEAD ? (size_t)at : SL_FILE_HEAD;
    if (at == 0) {
        return;
    }
    if (done >= win) {
        x = sl_file_hash(block + done - win, win);
    } else if (sl_file_tail_hash(rd->r.fd, at, &x) != 0) {
        return;
    }
    sl_file_fp_tail(st->fp, at, x, fp, sizeof(fp));
    st->fp_end = sl_strdup(fp);
    if (st->fp_end != NULL) {
        st->end_at = (int64_t)at;
        batch->fingerprint = st->fp_end;
    }
}

/* Hands bytes [0, cut) on as one raw batch; keeps the rest in a new buffer
 * of its own size. last: the input ends with these bytes (an unterminated
 * last line is among them). The block keeps only the bytes it uses, and
 * the buffer's hold goes with it into the batch's charge. */
static int emit_block(struct reading *rd, size_t cut, bool last)
{
    size_t base = read_base(rd);
    size_t rest_len = rd->len - cut;
    size_t cap = cap_for(base, rest_len);
    uint64_t give = rd->held - rd->state; /* the old buffer's, moved into the batch */
    /* The new buffer's growth, if the rest needs one, is held before it
     * is made, on top of the old buffer's. */
    int rc = sl_source_hold(rd->node, &rd->held, rd->held + (cap - base));

    if (rc != 0) {
        return rc;
    }
    struct sl_batch *batch = new_block_batch(rd);
    char *rest = sl_malloc(cap);
    if (batch == NULL || rest == NULL) {
        sl_batch_unref(batch);
        sl_free(rest);
        (void)sl_source_hold(rd->node, &rd->held, rd->state + give);
        return SL_ENOMEM;
    }
    memcpy(rest, rd->buf + cut, rest_len);
    char *block = rd->buf;
    if (rd->cap > cut + SL_BATCH_BLOCK_SLACK) {
        /* The batch is charged for cut bytes and the slack: give back the
         * rest of the buffer (its bytes were copied out). Shrinking does
         * not copy. */
        char *p = sl_realloc(block, cut);
        block = p != NULL ? p : block;
    }
    batch->block = block;
    batch->block_len = cut;
    batch->pos_end = rd->pos + (int64_t)cut;
    batch->last = last;
    rd->line += count_lines(block, cut);
    rd->pos += (int64_t)cut;
    rd->buf = rest;
    rd->cap = cap;
    rd->len = rest_len;
    tail_at_end(rd, batch);
    rc = sl_source_admit(rd->node, batch, &rd->held, give);
    if (rc == 0) {
        rc = sl_node_source_push(rd->node, batch);
    }
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
    rec.meta.stream = rd->fs->streams[rd->stream].path;
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
    /* Admitted as emit_block's are, waiting as a hold does: a row longer
     * than max_line is dead-lettered while the buffer grown for it is still
     * held (its line break was in it), and a batch waits while anything is
     * in flight past the limit, this hold included: the source waited for
     * itself (tests/integration/test_file_long_row_hold.sh). */
    int rc = sl_source_admit(rd->node, batch, &rd->held, 0);
    if (rc == 0) {
        rc = sl_node_source_push(rd->node, batch);
    }
    if (rc != 0) {
        sl_batch_unref(batch);
    }
    return rc;
}

/* Sizes the buffer for a read (cap_for): grows it for a line that does not
 * fit, holding the growth first (which waits while other batches fill the
 * budget), or shrinks a grown buffer back once it holds little. */
static int make_room(struct reading *rd)
{
    size_t base = read_base(rd);
    size_t cap = cap_for(base, rd->len);
    int rc = 0;

    if (cap == rd->cap || (cap > base && cap < rd->cap)) {
        return 0; /* a grown buffer shrinks only back to a block */
    }
    if (cap > rd->cap && (rc = sl_source_hold(rd->node, &rd->held, rd->state + cap - base)) != 0) {
        return rc;
    }
    char *p = sl_realloc(rd->buf, cap);
    if (p != NULL) {
        rd->buf = p;
        rd->cap = cap;
    }
    /* Given back once the memory is, or when it could not be had (a
     * buffer that could not shrink stays as it was). */
    (void)sl_source_hold(rd->node, &rd->held, rd->state + (rd->cap > base ? rd->cap - base : 0));
    return p != NULL || cap < rd->cap ? 0 : SL_ENOMEM;
}

/* Reads more bytes; returns count, 0 at end, or an error (SL_ECANCELED:
 * the pipeline stopped while the buffer waited for the budget). */
static long fill(struct reading *rd, struct sl_err *err)
{
    int rc = make_room(rd);

    if (rc != 0) {
        return rc;
    }
    return sl_reader_read(&rd->r, rd->buf + rd->len, rd->cap - rd->len, err);
}

/* Logs that the line at the read position is left for a later run. */
static void warn_unread(const struct reading *rd, const char *why)
{
    sl_log_warn("%s: %s: line %lld %s: left unread until a later run finds it complete",
                rd->node->name, rd->fs->streams[rd->stream].path, (long long)rd->line, why);
}

/* Drops the buffered bytes up to and including the next line break, reading
 * on as needed; *ret_span is the count dropped. Returns 0, SL_EOF when the
 * input ends first (nothing is dropped then: the line may still be being
 * written), or a read error. */
static int skip_line(struct reading *rd, int64_t *ret_span, struct sl_err *err)
{
    int64_t span = 0;
    const char *nl;

    while ((nl = memchr(rd->buf, '\n', rd->len)) == NULL) {
        span += (int64_t)rd->len;
        rd->len = 0;
        long n = fill(rd, err);
        if (n <= 0) {
            return n < 0 ? (int)n : SL_EOF;
        }
        rd->len = (size_t)n;
    }
    size_t used = (size_t)(nl + 1 - rd->buf);
    *ret_span = span + (int64_t)used;
    memmove(rd->buf, rd->buf + used, rd->len - used);
    rd->len -= used;
    return 0;
}

/* The first line (CSV: row) is longer than max_line: dead-letter its first
 * line (its start) and skip past that line's newline. One that ends without
 * a newline is left unread (SL_EOF), as the last line of the input: it may
 * be still being written.
 *
 * A CSV row that is long although its first line is not runs on past line
 * breaks inside a quoted field: almost always a quote that is never closed,
 * which would make the rest of the file one row. Only that line is
 * dropped, and reading resumes at the next line as a new row, so the rows
 * after a stray quote are not lost. (A quoted field that really is longer
 * than max_line is refused either way; its remaining lines then read as
 * rows, most of them dead letters.) */
static int skip_long_line(struct reading *rd, struct sl_err *err)
{
    char reason[192];
    unsigned long long max = rd->fs->conf->max_line;
    const char *nl = memchr(rd->buf, '\n', rd->len);
    size_t line_len = nl != NULL ? (size_t)(nl - rd->buf) : rd->len;
    size_t raw_len = line_len < DEAD_RAW_MAX ? line_len : DEAD_RAW_MAX;
    char *raw = sl_strndup(rd->buf, raw_len);
    int64_t span = 0;

    if (raw == NULL) {
        return SL_ENOMEM;
    }
    if (line_len <= max) {
        snprintf(reason, sizeof(reason),
                 "row longer than max_line (%llu bytes): a quoted field opened on this line "
                 "is not closed on it; reading resumes at the next line",
                 max);
    } else {
        snprintf(reason, sizeof(reason), "line longer than max_line (%llu bytes)", max);
    }
    int rc = skip_line(rd, &span, err);
    if (rc == 0) {
        rc = emit_dead(rd, raw, raw_len, span, reason);
    } else if (rc == SL_EOF) {
        warn_unread(rd, "is longer than max_line and has no line break yet");
    }
    sl_free(raw);
    if (rc != 0) {
        return rc;
    }
    rd->pos += span;
    rd->line += 1;
    return 0;
}

/* How many leading bytes of the buffer are whole lines (rows); complete:
 * nothing follows the buffer, so its unterminated last line goes too. CSV
 * stops before a row longer than max_line (skip_long_line takes it), so
 * that where such a row ends does not depend on how the input was read. */
static size_t find_cut(struct reading *rd, bool complete)
{
    if (rd->fs->format == SL_FORMAT_CSV) {
        return sl_csv_complete_prefix(rd->buf, rd->len, complete, rd->fs->conf->max_line);
    }
    if (complete) {
        return rd->len;
    }
    size_t from = rd->lf_free_pos == rd->pos && rd->lf_free <= rd->len ? rd->lf_free : 0;
    const char *nl = memrchr(rd->buf + from, '\n', rd->len - from);
    if (nl == NULL) {
        rd->lf_free = rd->len;
        rd->lf_free_pos = rd->pos;
        return 0;
    }
    return (size_t)(nl - rd->buf) + 1;
}

/* The bytes of the whole lines (CSV: rows) that fit in a block of the
 * planned size, from the buffer's first cut bytes, which are whole lines;
 * the first line alone when it is longer than a block. */
static size_t whole_within(const struct reading *rd, size_t cut)
{
    size_t limit = cut_base(rd) < cut ? cut_base(rd) : cut;

    if (rd->fs->format == SL_FORMAT_CSV) {
        size_t part = sl_csv_complete_prefix(rd->buf, limit, false, rd->fs->conf->max_line);
        size_t row_len;
        uint32_t lines;
        return part > 0 ? part : sl_csv_next_row(rd->buf, cut, &row_len, &lines);
    }
    const char *nl = memrchr(rd->buf, '\n', limit);
    if (nl == NULL) {
        nl = memchr(rd->buf, '\n', cut);
    }
    return nl != NULL ? (size_t)(nl - rd->buf) + 1 : cut;
}

/* Skips to the resume position, counting lines on the way. SL_EOF: the
 * input is damaged before the position, so an earlier run dead-lettered
 * the rest of the file already (its dead letter ends past the damage). */
static int skip_to(struct reading *rd, int64_t target, struct sl_err *err)
{
    while (rd->pos < target) {
        long n = fill(rd, err);
        if (n == SL_EDATA) {
            return SL_EOF;
        }
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

/* csv: a header that cannot name the columns. Its data rows are read as
 * usual and each becomes a dead letter with this reason (so every line is
 * accounted for and a fixed file, being a new file, is read again). */
static int refuse_header(struct reading *rd, int64_t line, const char *why)
{
    struct file_stream *st = &rd->fs->streams[rd->stream];
    size_t n = strlen(why) + sizeof("bad CSV header (line 9223372036854775807): ");

    st->header_err = sl_malloc(n);
    if (st->header_err == NULL) {
        return SL_ENOMEM;
    }
    snprintf(st->header_err, n, "bad CSV header (line %lld): %s", (long long)line, why);
    sl_log_warn("%s: %s: %s: its rows are dead letters", rd->node->name, st->path, st->header_err);
    return 0;
}

/* csv: the input ends inside the header row, the buffer. A quote opened on
 * its first line and never closed makes the rest of the file the header
 * row: the header is refused (its first line says why) and the lines
 * after that one are data rows, each a dead letter naming the bad header,
 * as under any refused header; none is hidden. A header without any line
 * break may be still being written: it is left unread. Returns 0, SL_EOF
 * (nothing to read yet, or an empty file) or SL_ENOMEM. */
static int header_at_end(struct reading *rd, struct sl_err *err)
{
    const char *nl = memchr(rd->buf, '\n', rd->len);
    struct sl_csv_header *h = NULL;
    struct sl_err herr = {0};

    if (nl == NULL) {
        if (!sl_csv_row_blank(rd->buf, rd->len)) {
            sl_log_warn("%s: %s: the header (line %lld) has no line break yet: left unread until "
                        "a later run finds it complete",
                        rd->node->name, rd->fs->streams[rd->stream].path, (long long)rd->line);
        }
        return SL_EOF;
    }
    size_t used = (size_t)(nl - rd->buf) + 1;
    size_t row_len = used > 1 && nl[-1] == '\r' ? used - 2 : used - 1;
    int rc = sl_csv_header_parse(rd->buf, row_len, &h, &herr);
    if (rc == 0) {
        /* Not expected: the line ends inside a quoted name. */
        h = sl_csv_header_free(h);
        rc = sl_err_set(&herr, SL_EDATA, "a quoted column name is not closed");
    }
    rc = rc == SL_EDATA ? refuse_header(rd, rd->line, herr.msg) : rc;
    if (rc != 0) {
        return sl_err_set(err, rc, "out of memory");
    }
    rd->pos += (int64_t)used;
    rd->line += 1;
    memmove(rd->buf, rd->buf + used, rd->len - used);
    rd->len -= used;
    return 0;
}

/* csv: the header row is longer than max_line: refuse it, and skip its
 * first line (as skip_long_line does with a data row). */
static int header_too_long(struct reading *rd, struct sl_err *err)
{
    char why[128];
    const char *nl = memchr(rd->buf, '\n', rd->len);
    size_t line_len = nl != NULL ? (size_t)(nl - rd->buf) : rd->len;
    unsigned long long max = rd->fs->conf->max_line;
    int64_t line = rd->line;
    int64_t span = 0;

    if (line_len <= max) {
        snprintf(why, sizeof(why),
                 "a quoted column name opened on it is not closed within max_line (%llu bytes)",
                 max);
    } else {
        snprintf(why, sizeof(why), "longer than max_line (%llu bytes)", max);
    }
    int rc = skip_line(rd, &span, err);
    if (rc == 0) {
        rc = refuse_header(rd, line, why);
        rd->pos += span;
        rd->line += 1;
    } else if (rc == SL_EOF) {
        warn_unread(rd, "(the header) is longer than max_line and has no line break yet");
    }
    return rc == SL_ENOMEM ? sl_err_set(err, rc, "out of memory") : rc;
}

/* csv: reads the header row (skipping blank lines before it). SL_EOF: no
 * header row to read (an empty file, or a header still being written: it
 * is read again next time). */
static int read_header(struct reading *rd, struct sl_err *err)
{
    struct file_stream *st = &rd->fs->streams[rd->stream];
    size_t max = rd->fs->conf->max_line;

    for (;;) {
        size_t cut = sl_csv_complete_prefix(rd->buf, rd->len, false, max);
        while (cut == 0 && rd->len <= max) {
            long n = fill(rd, err);
            if (n <= 0) {
                return n < 0 ? (int)n : header_at_end(rd, err);
            }
            rd->len += (size_t)n;
            cut = sl_csv_complete_prefix(rd->buf, rd->len, false, max);
        }
        if (cut == 0) {
            return header_too_long(rd, err);
        }
        size_t row_len;
        uint32_t lines;
        size_t used = sl_csv_next_row(rd->buf, rd->len, &row_len, &lines);
        if (!sl_csv_row_blank(rd->buf, row_len)) {
            struct sl_err herr = {0};
            int rc = sl_csv_header_parse(rd->buf, row_len, &st->header, &herr);
            if (rc == SL_EDATA) {
                rc = refuse_header(rd, rd->line, herr.msg);
            }
            if (rc != 0) {
                return rc == SL_ENOMEM ? sl_err_set(err, rc, "out of memory") : rc;
            }
        }
        rd->pos += (int64_t)used;
        rd->line += lines;
        memmove(rd->buf, rd->buf + used, rd->len - used);
        rd->len -= used;
        if (st->header != NULL || st->header_err != NULL) {
            return 0;
        }
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

/* Where to resume the stream: the lowest position the sinks (or the
 * `checkpoints:` file) stored under its key. */
static int find_resume(struct reading *rd, int64_t *ret_resume, struct sl_err *err)
{
    struct file_stream *st = &rd->fs->streams[rd->stream];
    struct sl_own_position own = {0, NULL};
    int64_t resume = 0;
    int rc;

    if (rd->fs->ck != NULL) {
        rc = sl_file_ckpt_get(rd->fs->ck, st->key, &own.pos, NULL, 0, err);
        if (rc != 0 && rc != SL_EOF) {
            return rc;
        }
    }
    rc = sl_source_resume(rd->node, st->key, 0, rd->fs->ck != NULL ? &own : NULL, &resume, NULL,
                          NULL, 0, err);
    if (rc != 0) {
        return rc;
    }
    if (!rd->r.lz4 && (uint64_t)resume > rd->r.file_size) {
        sl_log_warn("%s: %s: shorter (%llu bytes) than what was read of it before (%lld bytes): "
                    "nothing new to read until it grows past that",
                    rd->node->name, st->path, (unsigned long long)rd->r.file_size,
                    (long long)resume);
    }
    *ret_resume = resume;
    return 0;
}

/* Gives the stream's fingerprint the tail of the 4 KiB before the resume
 * position: every position this run stores is at or past it. The hash is
 * the one identification found the stored tail to have when the offset is
 * the same, else one pread. None when the file is shorter now (or .lz4,
 * or the read fails: the stream then only notices less). */
static int tail_at_resume(struct reading *rd, int64_t resume)
{
    struct file_stream *st = &rd->fs->streams[rd->stream];
    char fp[SL_FILE_FP_MAX];
    uint64_t x;

    if (rd->r.lz4 || resume <= 0 || (uint64_t)resume > rd->r.file_size) {
        return 0;
    }
    if (st->checked_at == (uint64_t)resume) {
        x = st->checked_hash;
    } else if (sl_file_tail_hash(rd->r.fd, (uint64_t)resume, &x) != 0) {
        return 0;
    }
    sl_file_fp_tail(st->fp, (uint64_t)resume, x, fp, sizeof(fp));
    char *s = sl_strdup(fp);
    if (s == NULL) {
        return SL_ENOMEM;
    }
    sl_free(st->fp);
    st->fp = s;
    return 0;
}

/* Sets the part of the hold that covers the open reader's buffers. */
static int hold_state(struct reading *rd, uint64_t bytes)
{
    int rc = sl_source_hold(rd->node, &rd->held, rd->held - rd->state + bytes);

    if (rc == 0) {
        rd->state = bytes;
    }
    return rc;
}

static int prepare_stream(struct reading *rd, struct sl_err *err)
{
    int64_t resume = 0;
    int rc = sl_reader_open(&rd->r, rd->fs->streams[rd->stream].path, err);

    /* Held before the first read, when liblz4 allocates them. */
    if (rc == 0 && (rc = hold_state(rd, rd->r.state_bytes)) != 0) {
        return rc;
    }
    if (rc != 0 || (rc = find_resume(rd, &resume, err)) != 0) {
        return rc;
    }
    if ((rc = tail_at_resume(rd, resume)) != 0) {
        return sl_err_set(err, rc, "out of memory");
    }
    rd->pos = 0;
    rd->line = 1;
    rd->len = 0;
    rd->seq = 0;
    rd->lf_free = 0;
    long n = fill(rd, err);
    if (n >= 0) {
        rd->len = (size_t)n;
        strip_bom(rd);
        rc = rd->fs->format == SL_FORMAT_CSV ? read_header(rd, err) : 0;
    } else {
        rc = (int)n;
    }
    if (rc == SL_EDATA && resume > rd->pos) {
        return SL_EOF; /* damaged before the resume point: see skip_to */
    }
    return rc != 0 ? rc : skip_to(rd, resume, err);
}

/* The rest of an .lz4 file that is damaged (or not LZ4) becomes one dead
 * letter, and reading goes on with the next file. The dead letter's span
 * ends one past the last byte decompressed, so a replay trims it and a
 * later run skips the damage (skip_to). */
static int dead_rest(struct reading *rd, const struct sl_err *why)
{
    struct sl_err err = {0};
    long raw_len = (long)rd->len;

    if (rd->r.not_lz4) {
        /* Show the file's own bytes: what it is instead. */
        raw_len =
            sl_reader_head(&rd->r, rd->buf, rd->cap < DEAD_RAW_MAX ? rd->cap : DEAD_RAW_MAX, &err);
        raw_len = raw_len < 0 ? 0 : raw_len;
    }
    if (rd->pos == 0) {
        sl_log_warn("%s: %s: %s: the file is one dead letter", rd->node->name,
                    rd->fs->streams[rd->stream].path, why->msg);
    } else {
        sl_log_warn("%s: %s: %s: the rest of the file, from line %lld, is one dead letter",
                    rd->node->name, rd->fs->streams[rd->stream].path, why->msg,
                    (long long)rd->line);
    }
    return emit_dead(rd, rd->buf, (size_t)raw_len, rd->r.pos - rd->pos + 1, why->msg);
}

/* Whether to wait for more at the end of the input: a CSV row or a
 * `lines` line without its line break decodes whatever its length, so one
 * still being written would become a record and its rest, once written, a
 * dead letter. Such a last line is taken only once the file has not
 * changed for SETTLE_NS; until then the source sleeps and reads on, for
 * SETTLE_MAX_NS at most in the whole run (live files one after another
 * must not add up). JSON needs no wait: no part of an object is an
 * object. Returns 0 (read on), SL_EOF (take the end as it is), SL_EAGAIN
 * (still changing and the run waited enough: leave that line for a later
 * run) or SL_ECANCELED. */
static int settle(struct reading *rd)
{
    int64_t *waited_ns = &rd->fs->settle_ns;
    struct stat sb;
    struct timespec now;

    if (rd->fs->format == SL_FORMAT_JSON || rd->r.lz4 || rd->len == 0 ||
        rd->buf[rd->len - 1] == '\n' || fstat(rd->r.fd, &sb) != 0 ||
        clock_gettime(CLOCK_REALTIME, &now) != 0) {
        return SL_EOF;
    }
    int64_t still =
        (now.tv_sec - sb.st_mtim.tv_sec) * 1000000000ll + (now.tv_nsec - sb.st_mtim.tv_nsec);
    if (still >= SETTLE_NS || still < -SETTLE_NS) {
        return SL_EOF; /* settled (or a clock set back: do not wait on it) */
    }
    if (*waited_ns >= SETTLE_MAX_NS) {
        return SL_EAGAIN;
    }
    int64_t nap = SETTLE_NS - (still > 0 ? still : 0);
    nap = nap < SETTLE_MAX_NS - *waited_ns ? nap : SETTLE_MAX_NS - *waited_ns;
    *waited_ns += nap;
    return sl_flow_sleep_until(&rd->node->pl->flow, sl_now_ns() + (uint64_t)nap,
                               &rd->node->pl->stop);
}

/* Reads one file to its end (or until the pipeline stops). */
static int read_stream(struct reading *rd, struct sl_err *err)
{
    int rc = prepare_stream(rd, err);
    bool pending = true; /* prepare_stream may have left bytes to cut */
    bool eof = false;
    bool live = false; /* the last line is still being written: left unread */

    while (rc == 0 && !eof) {
        if (atomic_load_explicit(&rd->node->pl->stop, memory_order_acquire)) {
            return SL_ECANCELED;
        }
        long n = pending ? 0 : fill(rd, err);
        if (n < 0) {
            rc = (int)n;
            break;
        }
        rd->len += (size_t)n;
        eof = n == 0 && !pending;
        pending = false;
        if (eof && (rc = settle(rd)) != SL_EOF && rc != SL_EAGAIN) {
            eof = false;
            continue;
        }
        live = rc == SL_EAGAIN;
        rc = 0;
        /* At the end of the input its unterminated last line goes too: the
         * workers decode it, or leave it unread (file_process). Not when an
         * .lz4 file ends inside a frame, or while the file is still being
         * written: that line is incomplete for sure, or may be. */
        size_t cut = find_cut(rd, eof && !rd->r.truncated && !live);
        /* Blocks of the planned size: a buffer grown for a long line that
         * was then skipped holds up to max_line of ordinary lines, and
         * decoding them as one block was memory the plan never gave
         * (45 MiB in flight at a 2 MiB limit). */
        for (size_t part; rc == 0 && cut > cut_base(rd) && (part = whole_within(rd, cut)) < cut;
             cut -= part) {
            rc = emit_block(rd, part, false);
        }
        if (rc == 0 && cut > 0) {
            rc = emit_block(rd, cut, eof && cut == rd->len);
        }
        if (rc == 0 && rd->len > rd->fs->conf->max_line) {
            rc = skip_long_line(rd, err);
            eof = false; /* what follows it is cut on the next turn */
        }
        if (rc == 0 && rd->fs->ck != NULL && sl_now_ns() - rd->fs->ck_stored_ns >= CKPT_EVERY_NS) {
            store_positions(rd->node, rd->fs);
        }
    }
    if (rc == SL_EDATA) {
        rc = dead_rest(rd, err);
    }
    if ((rc == 0 || rc == SL_EOF) && rd->r.truncated) {
        sl_log_warn("%s: %s: ends inside an LZ4 frame (still being written, or cut short): read "
                    "up to line %lld, the rest is left for a later run",
                    rd->node->name, rd->fs->streams[rd->stream].path, (long long)rd->line);
    }
    if ((rc == 0 || rc == SL_EOF) && live) {
        sl_log_warn("%s: %s: line %lld has no line break yet and the file is still being "
                    "written: left unread until a later run finds it complete",
                    rd->node->name, rd->fs->streams[rd->stream].path, (long long)rd->line);
    }
    return rc == SL_EOF ? 0 : rc;
}

/* ==== Identity (source thread, before reading) ==== */

/* Every (key, fingerprint) the sinks and the checkpoints file hold for this
 * source, parsed. */
struct known_set {
    struct sl_file_known *v;
    char **strs; /* owned copies the entries borrow */
    size_t n;
    size_t cap;
    int rc;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? sl_strdup(s) : NULL;
}

static void add_known(void *arg, const char *key, const char *fp)
{
    struct known_set *ks = arg;

    for (size_t i = 0; i < ks->n; i++) {
        if (strcmp(ks->v[i].key, key) == 0) {
            return; /* held by several sinks: the key decides, once */
        }
    }
    if (ks->rc != 0) {
        return;
    }
    if (ks->n == ks->cap) {
        size_t cap = ks->cap ? ks->cap * 2 : 16;
        struct sl_file_known *v = sl_realloc(ks->v, cap * sizeof(*v));
        char **strs = v != NULL ? sl_realloc(ks->strs, cap * 2 * sizeof(*strs)) : NULL;
        if (v != NULL) {
            ks->v = v;
        }
        if (strs == NULL) {
            ks->rc = SL_ENOMEM;
            return;
        }
        ks->strs = strs;
        ks->cap = cap;
    }
    char *k = sl_strdup(key);
    char *f = dup_or_null(fp);
    if (k == NULL || (fp != NULL && f == NULL)) {
        sl_free(k);
        sl_free(f);
        ks->rc = SL_ENOMEM;
        return;
    }
    ks->strs[2 * ks->n] = k;
    ks->strs[2 * ks->n + 1] = f;
    sl_file_known_parse(k, f, &ks->v[ks->n++]);
}

static void known_free(struct known_set *ks)
{
    for (size_t i = 0; i < 2 * ks->n; i++) {
        sl_free(ks->strs[i]);
    }
    sl_free(ks->strs);
    sl_free(ks->v);
}

/* The best stored identity h matches that no other file of this run took
 * (taken[i]: the stream index + 1 that took ks->v[i]); *ret_score its
 * score, 0 if none. With verify, stored tails are checked too against
 * the file at path (sl_file_tail_check), for the entries that would be
 * the best: one whose tail differs does not match, and *ret_changed is the best of those
 * (NULL if none); among equal scores, a tail found the same wins over one
 * that cannot be checked. Without, the ranking only compares heads. */
static const struct sl_file_known *best_match(const struct known_set *ks,
                                              const size_t *taken,
                                              struct sl_file_head *h,
                                              const char *path,
                                              bool verify,
                                              uint64_t *ret_score,
                                              const struct sl_file_known **ret_changed)
{
    const struct sl_file_known *best = NULL;
    uint64_t best_rank = 0;
    uint64_t changed_score = 0;

    *ret_score = 0;
    if (ret_changed != NULL) {
        *ret_changed = NULL;
    }
    for (size_t i = 0; i < ks->n; i++) {
        uint64_t score = taken != NULL && taken[i] != 0 ? 0 : sl_file_match(h, path, &ks->v[i]);
        uint64_t rank = score * 2;
        if (score == 0 || rank + 1 <= best_rank) {
            continue;
        }
        int same = verify ? sl_file_tail_check(path, h, &ks->v[i]) : -1;
        if (same == 0) {
            if (ret_changed != NULL && score > changed_score) {
                changed_score = score;
                *ret_changed = &ks->v[i];
            }
            continue;
        }
        rank += same == 1 ? 1 : 0;
        if (rank > best_rank) {
            best_rank = rank;
            *ret_score = score;
            best = &ks->v[i];
        }
    }
    return best;
}

/* Whether key is a stored stream's or one of this run's. */
static bool key_taken(const struct known_set *ks, const struct file_source *fs, const char *key)
{
    for (size_t i = 0; i < ks->n; i++) {
        if (strcmp(ks->v[i].key, key) == 0) {
            return true;
        }
    }
    for (size_t i = 0; i < fs->nstreams; i++) {
        if (fs->streams[i].key != NULL && strcmp(fs->streams[i].key, key) == 0) {
            return true;
        }
    }
    return false;
}

/* The key of a file no stored identity matches: "P:hash", made unique
 * with the inode when another file of the store or this run holds it, and
 * then with a count: a file edited in place again and again keeps its
 * head and inode, and each time is a new file. */
static char *
new_key(const struct known_set *ks, const struct file_source *fs, const struct sl_file_head *h)
{
    char key[96];

    sl_file_key_new(h, key, sizeof(key));
    if (key_taken(ks, fs, key)) {
        size_t n = strlen(key);
        snprintf(key + n, sizeof(key) - n, "@%llu:%llu", (unsigned long long)h->dev,
                 (unsigned long long)h->ino);
        n = strlen(key);
        for (unsigned g = 2; key_taken(ks, fs, key); g++) {
            snprintf(key + n, sizeof(key) - n, "#%u", g);
        }
    }
    return sl_strdup(key);
}

/* Gives stream i its key: the best stored identity its content matches
 * that no other file of this run took, else a new one. The same file under
 * a second path (same inode), or an exact copy (same bytes), is read once. */
static int identify_one(struct sl_node *node,
                        struct file_source *fs,
                        size_t i,
                        const struct known_set *ks,
                        size_t *taken,
                        struct sl_file_head *h,
                        struct sl_err *err)
{
    struct file_stream *st = &fs->streams[i];
    char fp[SL_FILE_FP_MAX];
    uint64_t score;
    int rc = sl_file_head_read(st->path, h, err);

    if (rc != 0) {
        return rc;
    }
    st->size = h->size;
    st->dev = h->dev;
    st->ino = h->ino;
    const struct sl_file_known *changed = NULL;
    const struct sl_file_known *best = best_match(ks, NULL, h, st->path, true, &score, &changed);
    char key[96];
    sl_file_key_new(h, key, sizeof(key));
    for (size_t j = 0; j < fs->nstreams; j++) {
        const struct file_stream *other = &fs->streams[j];
        if (other->key == NULL || other->skip) {
            continue;
        }
        bool same = other->dev == h->dev && other->ino == h->ino;
        bool copy = !same && other->size == h->size &&
                    (best != NULL ? taken[best - ks->v] == j + 1 : strcmp(other->key, key) == 0) &&
                    sl_file_same_bytes(other->path, st->path);
        if (same || copy) {
            st->skip = true;
            sl_log_info("%s: %s has the content of %s (the same file, or a copy): read once",
                        node->name, st->path, other->path);
            return 0;
        }
    }
    if (best != NULL && taken[best - ks->v] != 0) {
        best = best_match(ks, taken, h, st->path, true, &score, &changed);
    }
    bool path_known = false;
    for (size_t k = 0; k < ks->n && !path_known; k++) {
        path_known = sl_file_known_path(&ks->v[k], st->path);
    }
    /* A changed entry another file of this run took is content that moved
     * (rotation), not an edit. */
    if (best == NULL && changed != NULL && taken[changed - ks->v] == 0) {
        sl_log_warn("%s: %s changed since it was read: its bytes before offset %llu differ (an "
                    "edit in place, or new content): reading it from the start as a new file",
                    node->name, st->path, (unsigned long long)changed->tail_at);
    } else if (best == NULL && path_known) {
        sl_log_warn("%s: %s is not the file read before under that name (its first bytes "
                    "differ): reading it from the start",
                    node->name, st->path);
    }
    if (best != NULL) {
        taken[best - ks->v] = i + 1;
        if (best->tail_at != 0 && sl_file_tail_check(st->path, h, best) == 1) {
            st->checked_at = best->tail_at; /* h has it: no second read */
            st->checked_hash = best->tail_hash;
        }
    }
    sl_file_fp_make(h, best, st->path, fp, sizeof(fp));
    st->key = best != NULL ? sl_strdup(best->key) : new_key(ks, fs, h);
    st->fp = sl_strdup(fp);
    return st->key == NULL || st->fp == NULL ? sl_err_set(err, SL_ENOMEM, "out of memory") : 0;
}

struct ranked {
    uint64_t score;
    size_t stream;
};

/* Descending score; equal scores keep path order. */
static int cmp_ranked(const void *a, const void *b)
{
    const struct ranked *x = a;
    const struct ranked *y = b;

    if (x->score != y->score) {
        return x->score > y->score ? -1 : 1;
    }
    return x->stream < y->stream ? -1 : x->stream > y->stream;
}

/* Identifies every file. The files that match a stored identity best go
 * first (a match by inode beats one by content alone), so that a copy
 * does not take the position of the file it was copied from. */
static int identify_streams(struct sl_node *node, struct file_source *fs, struct sl_err *err)
{
    struct known_set ks = {0};
    struct sl_file_head *h = sl_malloc(sizeof(*h));
    struct ranked *order = sl_calloc(fs->nstreams, sizeof(*order));
    int rc = h != NULL && order != NULL ? sl_source_streams(node, add_known, &ks, err) : SL_ENOMEM;
    size_t *taken = NULL;

    if (rc == 0 && fs->ck != NULL) {
        rc = sl_file_ckpt_streams(fs->ck, add_known, &ks, err);
    }
    rc = rc != 0 ? rc : ks.rc;
    if (rc == 0 && (taken = sl_calloc(ks.n + 1, sizeof(*taken))) == NULL) {
        rc = SL_ENOMEM;
    }
    for (size_t i = 0; i < fs->nstreams && rc == 0; i++) {
        rc = sl_file_head_read(fs->streams[i].path, h, err);
        if (rc == 0) {
            order[i].stream = i;
            (void)best_match(&ks, NULL, h, fs->streams[i].path, false, &order[i].score, NULL);
        }
    }
    if (rc == 0) {
        qsort(order, fs->nstreams, sizeof(*order), cmp_ranked);
    }
    for (size_t i = 0; i < fs->nstreams && rc == 0; i++) {
        rc = identify_one(node, fs, order[i].stream, &ks, taken, h, err);
    }
    known_free(&ks);
    sl_free(taken);
    sl_free(order);
    sl_free(h);
    return rc == SL_ENOMEM ? sl_err_set(err, rc, "out of memory") : rc;
}

static int file_run(struct sl_node *node)
{
    struct file_source *fs = node->state;
    struct reading rd = {.node = node, .fs = fs};
    struct sl_err err = {0};
    int rc = 0;

    rd.cap = read_base(&rd); /* memory plan (no file open yet: not an .lz4 one) */
    rd.buf = sl_malloc(rd.cap);
    if (rd.buf == NULL) {
        return SL_ENOMEM;
    }
    rc = identify_streams(node, fs, &err);
    if (rc != 0) {
        sl_log_error("%s: %s", node->name, err.msg[0] ? err.msg : sl_strerror(rc));
    }
    for (size_t i = 0; i < fs->nstreams && rc == 0; i++) {
        if (fs->streams[i].skip) {
            continue;
        }
        rd.stream = i;
        rc = read_stream(&rd, &err);
        sl_reader_close(&rd.r);
        (void)hold_state(&rd, 0);
        if (rc != 0 && rc != SL_ECANCELED) {
            sl_log_error("%s: %s: %s", node->name, fs->streams[i].path,
                         err.msg[0] ? err.msg : sl_strerror(rc));
        }
    }
    sl_free(rd.buf);
    (void)sl_source_hold(node, &rd.held, 0);
    if (fs->ck != NULL && pthread_create(&fs->ck_thread, NULL, store_while_draining, node) == 0) {
        fs->ck_thread_on = true;
    }
    return rc;
}

/* ==== Decoding (workers) ==== */

/* Turns a record that failed to decode into a dead letter. */
static int reject(struct sl_node *node, struct sl_batch *batch, const char *reason)
{
    struct sl_record rec = batch->recs[--batch->n];

    rec.nfields = 0;
    rec.fields = NULL;
    return sl_node_dead(node, batch, &rec, reason);
}

/* The input's last line has no line break and does not decode: it is most
 * likely still being written. It is neither a record nor a dead letter (nor
 * counted): the batch's end position stops before it, so that a later run
 * reads it whole. */
static void leave_unread(struct sl_node *node, struct sl_batch *batch, const char *why)
{
    const struct sl_record *rec = &batch->recs[--batch->n];
    /* CSV: a row whose quoted field is still open runs over line breaks. */
    bool row = memchr(rec->raw, '\n', rec->raw_len) != NULL;

    batch->pos_end = rec->meta.offset;
    sl_log_warn("%s: %s: line %lld %s and does not decode (%s): left unread until a later run "
                "finds it complete",
                node->name, rec->meta.stream, (long long)rec->meta.line,
                row ? "starts a row that has no line break after it yet" : "has no line break yet",
                why);
}

/* Decodes one line (CSV: row) into a record of batch, or makes it a dead
 * letter; open_end: it is the input's last line and has no line break. */
static int decode_line(struct sl_node *node,
                       struct sl_batch *batch,
                       struct sl_json_decoder *dec,
                       const char *p,
                       size_t n,
                       int64_t line,
                       int64_t off,
                       bool open_end)
{
    const struct file_source *fs = node->state;
    const struct file_stream *st = batch->aux;
    struct sl_record *rec = sl_batch_add(batch);
    struct sl_err err;
    int rc = 0;

    if (rec == NULL) {
        return SL_ENOMEM;
    }
    rec->meta.stream = st->path;
    rec->meta.offset = off;
    rec->meta.line = line;
    rec->raw = p;
    rec->raw_len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    if (n > fs->conf->max_line) {
        snprintf(err.msg, sizeof(err.msg), "line longer than max_line (%llu bytes)",
                 (unsigned long long)fs->conf->max_line);
    } else if (st->header_err != NULL) {
        snprintf(err.msg, sizeof(err.msg), "%s", st->header_err);
    } else if (fs->format == SL_FORMAT_JSON && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        snprintf(err.msg, sizeof(err.msg),
                 "byte-order mark in the middle of the file (one is allowed only at its start)");
    } else {
        rc = sl_decode_text(fs->format, dec, st->header, p, n, rec, &batch->arena, &err);
        if (rc != SL_EDATA) {
            return rc;
        }
    }
    if (open_end) {
        leave_unread(node, batch, err.msg);
        return 0;
    }
    return reject(node, batch, err.msg);
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
        /* Only the last batch of a file may end inside a line (CSV: inside
         * a row, whose last byte may be a line break in an open quote). */
        bool open_end = batch->last && p + used == end && !(n < used && p[used - 1] == '\n');
        if (!sl_decode_blank(fs->format, p, n)) {
            rc = decode_line(node, batch, dec, p, n, line, off, open_end);
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
