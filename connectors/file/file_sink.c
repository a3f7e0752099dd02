/* SPDX-License-Identifier: MIT */
/* `file` sink: records as JSON lines (fields only, compact), appended to one
 * file, optionally as LZ4 frames (one per write), written out in pieces of
 * at most 256 KiB so that long records need no whole copy. At least once:
 * it keeps no positions, so a restart of a file source reads from the
 * start. Thread: the sink's task (one at a time). */
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "sink.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4frame.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct file_sink_conf {
    const char *path;
    int format;
    int compression;
    struct sl_sink_batching batch;
};

static const char *const sink_formats[] = {"json", NULL};
static const char *const compressions[] = {"none", "lz4", NULL};

/* clang-format off */
static const struct sluice_option file_sink_options[] = {
    SLUICE_OPT_ROW(struct file_sink_conf, path, SLUICE_OPT_STR, NULL, 0, 0, NULL,
                   SLUICE_OPT_REQUIRED, "Output file (parent directories are created)."),
    SLUICE_OPT_ROW(struct file_sink_conf, format, SLUICE_OPT_ENUM, "json", 0, 0, sink_formats, 0,
                   "json: one compact object per line."),
    SLUICE_OPT_ROW(struct file_sink_conf, compression, SLUICE_OPT_ENUM, "none", 0, 0,
                   compressions, 0, "none or lz4 (an LZ4 frame)."),
    SL_SINK_BATCH_ROWS(struct file_sink_conf, batch, "8MiB"),
    {0},
};
/* clang-format on */

/* A write formats its records into text and writes it out whenever it
 * holds chunk_bytes, inside a long record too (sl_json_out): a record of any
 * length passes in pieces, and text stays below twice chunk_bytes. A sink's
 * chunk is half its share of the budget (sl_sink's max_bytes: an eighth of
 * memory_limit shared by the sinks), within these bounds, so the text of
 * all sinks writing at once stays within about that eighth (lz4 frame
 * bytes about as much again), however many sinks there are. Smaller pieces
 * cost lz4 output time: each piece ends its blocks, and LZ4 saves 64 KiB of
 * history after each (1M orders to lz4 took 4% more instructions than one
 * frame per write with 64 KiB pieces, 1% with 256 KiB). */
#define CHUNK_MIN (4u << 10)
#define CHUNK_MAX (256u << 10)

/* LZ4 frames with liblz4's defaults (64 KiB blocks, linked), but each
 * update ends its blocks (autoFlush): LZ4 buffers no block between updates
 * (a context keeps 64 KiB of history instead of 192 KiB), and a write's
 * frame bytes are bounded by its text chunk, not by a block. */
static const LZ4F_preferences_t lz4_prefs = {.autoFlush = 1};

struct file_sink {
    struct sl_sink sink; /* first: sl_sink_of() */
    int fd;
    LZ4F_cctx *cctx;
    size_t chunk_bytes; /* text is written out from this size on */
    /* A write's buffers, grown as the write needs them (small writes, small
     * buffers), freed after it and charged to memory_limit meanwhile
     * (memory on behalf of the records it writes): sinks that do not write
     * hold none, and none holds a whole record. */
    struct sl_buf text; /* JSON lines not written yet, < 2 x chunk_bytes */
    struct sl_buf out;  /* lz4: the frame's bytes of a piece of text */
    uint64_t charged;   /* bytes of text and out charged to the budget */
};

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w < 0) {
            return SL_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Keeps the budget's charge at what the write's buffers hold (they only
 * grow during a write). Never waits: the records being written are in the
 * budget already, and a sink that waited for room could wait for itself. */
static void charge_held(struct file_sink *fsk)
{
    uint64_t held = fsk->text.cap + fsk->out.cap;

    if (held > fsk->charged) {
        sl_flow_force(&fsk->sink.node->pl->flow, held - fsk->charged);
        fsk->charged = held;
    }
}

/* Starts a write of batches holding bytes: its buffers, sized for the
 * text the write will hold at most, so that they do not grow by copying
 * (about as many bytes as the batches, at most 2 x chunk_bytes), and with
 * lz4 its frame. A frame per write, so that what a write acknowledged is
 * readable even if the process is killed later (the next open drops an
 * unfinished frame, see lz4_complete_end). 0, SL_ENOMEM or SL_EIO (errno
 * 0: compression). */
static int write_begin(struct file_sink *fsk, uint64_t bytes)
{
    size_t most = bytes < 2 * fsk->chunk_bytes - 1 ? (size_t)bytes : 2 * fsk->chunk_bytes - 1;

    if (sl_buf_reserve(&fsk->text, most) != 0) {
        return SL_ENOMEM;
    }
    if (fsk->cctx == NULL) {
        charge_held(fsk);
        return 0;
    }
    if (sl_buf_reserve(&fsk->out, LZ4F_HEADER_SIZE_MAX + LZ4F_compressBound(most, &lz4_prefs) +
                                      LZ4F_compressBound(0, &lz4_prefs)) != 0) {
        return SL_ENOMEM;
    }
    charge_held(fsk);
    size_t h = LZ4F_compressBegin(fsk->cctx, fsk->out.data, fsk->out.cap, &lz4_prefs);
    if (LZ4F_isError(h)) {
        errno = 0;
        return SL_EIO;
    }
    fsk->out.len = h; /* written with the first blocks */
    return 0;
}

/* Ends a write, done or failed: its buffers go back to the system and to
 * the budget. */
static void write_end(struct file_sink *fsk)
{
    sl_buf_release(&fsk->text);
    sl_buf_release(&fsk->out);
    if (fsk->charged != 0) {
        sl_flow_release(&fsk->sink.node->pl->flow, fsk->charged);
        fsk->charged = 0;
    }
}

/* Writes n bytes of text out: as they are, or compressed into the write's
 * frame (last: and ends the frame). */
static int put_text(struct file_sink *fsk, const char *p, size_t n, bool last)
{
    charge_held(fsk); /* text is at its largest now */
    if (fsk->cctx == NULL) {
        return write_all(fsk->fd, p, n);
    }
    size_t bound =
        LZ4F_compressBound(n, &lz4_prefs) + (last ? LZ4F_compressBound(0, &lz4_prefs) : 0);
    if (sl_buf_reserve(&fsk->out, bound) != 0) {
        return SL_ENOMEM;
    }
    charge_held(fsk);
    char *o = fsk->out.data + fsk->out.len;
    size_t c = LZ4F_compressUpdate(fsk->cctx, o, bound, p, n, NULL);
    size_t e = LZ4F_isError(c) || !last ? 0 : LZ4F_compressEnd(fsk->cctx, o + c, bound - c, NULL);
    if (LZ4F_isError(c) || LZ4F_isError(e)) {
        errno = 0;
        return SL_EIO;
    }
    fsk->out.len += c + e;
    int rc = write_all(fsk->fd, fsk->out.data, fsk->out.len);
    sl_buf_reset(&fsk->out);
    return rc;
}

/* sl_json_out's flush: a long record's text so far. */
static int flush_text(void *arg, const char *text, size_t len)
{
    return put_text(arg, text, len, false);
}

/* Little-endian 32 bits at off of fd, false when the file ends first. */
static bool read_le32(int fd, uint64_t off, uint32_t *ret)
{
    unsigned char b[4];

    if (pread(fd, b, 4, (off_t)off) != 4) {
        return false;
    }
    *ret = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return true;
}

/* Where the last complete LZ4 frame of the file ends (frame format:
 * magic, FLG, BD, optional content size and dictionary id, header checksum;
 * blocks of a size word, data and an optional checksum; an end mark and an
 * optional content checksum). A run killed in the middle of a write leaves
 * a frame without its end: appending after it would make the rest of the
 * file unreadable. Skippable frames count as complete; anything that is
 * not a frame stops the scan. */
static uint64_t lz4_complete_end(int fd, uint64_t size)
{
    uint64_t off = 0;
    uint32_t magic;

    while (off < size && read_le32(fd, off, &magic)) {
        uint32_t word;
        if ((magic & 0xFFFFFFF0u) == 0x184D2A50u) {
            if (!read_le32(fd, off + 4, &word) || off + 8 + word > size) {
                return off;
            }
            off += 8 + (uint64_t)word;
            continue;
        }
        unsigned char flg;
        if (magic != 0x184D2204u || pread(fd, &flg, 1, (off_t)(off + 4)) != 1) {
            return off;
        }
        uint64_t p = off + 7 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0);
        for (;;) {
            if (!read_le32(fd, p, &word)) {
                return off;
            }
            p += 4;
            if (word == 0) {
                p += flg & 0x04 ? 4 : 0;
                break;
            }
            p += (word & 0x7FFFFFFFu) + (flg & 0x10 ? 4 : 0);
            if (p > size) {
                return off;
            }
        }
        if (p > size) {
            return off;
        }
        off = p;
    }
    return off;
}

/* Tails longer than this are not checked for being a whole object. */
#define TAIL_CHECK_MAX (64u << 20)

/* Whether bytes [off, off + len) of fd are exactly one JSON object. */
static bool tail_is_object(int fd, uint64_t off, uint64_t len)
{
    char *text = sl_malloc(len > 0 ? len : 1);
    struct sl_json_decoder *d = sl_json_decoder_new(SL_JSON_DEFAULT_MAX_DEPTH);
    struct sl_arena arena;
    struct sl_record rec = {0};
    bool whole = false;

    sl_arena_init(&arena);
    if (text != NULL && d != NULL && pread(fd, text, len, (off_t)off) == (ssize_t)len) {
        whole = sl_json_decode_object(d, text, len, &rec, &arena, NULL) == 0;
    }
    sl_arena_release(&arena);
    sl_json_decoder_free(d);
    sl_free(text);
    return whole;
}

/* A run killed in the middle of a write leaves part of a line at the end
 * of a plain output, and the next run's first record would be glued to it.
 * The part is dropped: its records were not acknowledged, so they are read
 * again. A whole object without its newline (a file someone else wrote) is
 * kept and given its newline. */
static int end_plain_output(struct sl_node *node, int fd, const char *path)
{
    struct stat st;
    char buf[64 * 1024];

    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
        return 0;
    }
    uint64_t size = (uint64_t)st.st_size, end = size, start = 0;
    if (pread(fd, buf, 1, (off_t)(size - 1)) != 1) {
        return SL_EIO;
    }
    if (buf[0] == '\n') {
        return 0;
    }
    bool found = false;
    while (end > 0 && !found) {
        size_t n = end > sizeof(buf) ? sizeof(buf) : (size_t)end;
        if (pread(fd, buf, n, (off_t)(end - n)) != (ssize_t)n) {
            return SL_EIO;
        }
        for (size_t i = n; i-- > 0 && !found;) {
            found = buf[i] == '\n';
            start = found ? end - n + i + 1 : start;
        }
        end -= n;
    }
    if (size - start <= TAIL_CHECK_MAX && tail_is_object(fd, start, size - start)) {
        return write_all(fd, "\n", 1);
    }
    sl_log_warn("%s: %s ends in an unfinished line (a run was killed while writing): dropping "
                "its %llu bytes",
                node->name, path, (unsigned long long)(size - start));
    return ftruncate(fd, (off_t)start) == 0 ? 0 : SL_EIO;
}

/* Formats and writes the records, one frame with lz4, in pieces of
 * chunk_bytes: what a kill in the middle leaves (part of a line, a frame
 * without its end) the next open drops. */
static int file_sink_write(struct sl_sink *sink, struct sl_batch *const *batches, size_t n)
{
    struct file_sink *fsk = (struct file_sink *)sink;
    struct sl_json_out jo = {&fsk->text, fsk->chunk_bytes, flush_text, fsk};
    uint64_t records = 0, bytes = 0;

    for (size_t b = 0; b < n; b++) {
        records += batches[b]->n;
        bytes += sl_batch_bytes(batches[b]);
    }
    if (records == 0 && fsk->cctx == NULL) {
        return 0; /* positions only: nothing to write */
    }
    int rc = write_begin(fsk, bytes);
    for (size_t b = 0; b < n && rc == 0; b++) {
        for (uint32_t i = 0; i < batches[b]->n && rc == 0; i++) {
            rc = sl_json_out_record(&jo, &batches[b]->recs[i]);
            rc = rc != 0 ? rc : sl_buf_putc(&fsk->text, '\n');
            if (rc == 0 && fsk->text.len >= fsk->chunk_bytes) {
                rc = put_text(fsk, fsk->text.data, fsk->text.len, false);
                sl_buf_reset(&fsk->text);
            }
        }
    }
    rc = rc != 0 ? rc : put_text(fsk, fsk->text.data, fsk->text.len, true);
    if (rc == SL_EIO) {
        /* Say why (a full disk...): the run fails with this message. */
        const struct file_sink_conf *conf = sink->node->cn->conf;
        struct sl_err err = {0};
        sl_err_set(&err, rc, "%s: cannot write %s: %s", sink->node->name, conf->path,
                   errno != 0 ? strerror(errno) : "compression failed");
        sl_pipeline_fail(sink->node->pl, &err);
    }
    write_end(fsk);
    return rc;
}

extern const struct sl_node_type sl_stage_file_sink;

/* Two file sinks (the dead-letter one included) appending to one file
 * would interleave their lines, and with lz4 their frames: refused. */
static int file_sink_check(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct file_sink_conf *conf = cn->conf;
    const struct sl_conf *pipeline = cn->pipeline;

    for (size_t i = 0; pipeline != NULL && i < pipeline->nnodes; i++) {
        const struct sl_conf_node *other = &pipeline->nodes[i];
        if (other == cn || other->type != &sl_stage_file_sink ||
            !sl_same_path(((const struct file_sink_conf *)other->conf)->path, conf->path)) {
            continue;
        }
        return sl_conf_node_err(cn, "path", err,
                                "sink '%s' writes the same file (%s): two sinks would mix "
                                "their records in it; give each its own path",
                                other->name, conf->path);
    }
    return 0;
}

static int write_empty_frame(struct file_sink *fsk)
{
    int rc = write_begin(fsk, 0);

    rc = rc != 0 ? rc : put_text(fsk, "", 0, true);
    write_end(fsk);
    return rc;
}

static int file_sink_open(struct sl_node *node, struct sl_err *err)
{
    const struct file_sink_conf *conf = node->cn->conf;
    struct file_sink *fsk = sl_calloc(1, sizeof(*fsk));

    if (fsk == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    fsk->fd = -1;
    node->state = fsk;
    sl_sink_init(&fsk->sink, node, file_sink_write, &conf->batch);
    uint64_t half = fsk->sink.max_bytes / 2;
    fsk->chunk_bytes = half < CHUNK_MIN ? CHUNK_MIN : half > CHUNK_MAX ? CHUNK_MAX : (size_t)half;
    if (sl_mkdir_parents(conf->path) != 0 ||
        (fsk->fd = open(conf->path,
                        /* read: the check of what a killed run left */
                        O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) < 0) {
        return sl_err_set(err, SL_EIO, "%s: %s: %s", node->name, conf->path, strerror(errno));
    }
    if (conf->compression == 0 && end_plain_output(node, fsk->fd, conf->path) != 0) {
        return sl_err_set(err, SL_EIO, "%s: %s: %s", node->name, conf->path, strerror(errno));
    }
    if (conf->compression == 1) {
        if (LZ4F_isError(LZ4F_createCompressionContext(&fsk->cctx, LZ4F_VERSION))) {
            return sl_err_set(err, SL_ENOMEM, "out of memory");
        }
        struct stat st;
        if (fstat(fsk->fd, &st) != 0) {
            return sl_err_set(err, SL_EIO, "%s: %s: %s", node->name, conf->path, strerror(errno));
        }
        uint64_t end = lz4_complete_end(fsk->fd, (uint64_t)st.st_size);
        uint32_t magic = 0;
        bool ours = end > 0 || (read_le32(fsk->fd, 0, &magic) && magic == 0x184D2204u);
        if (end < (uint64_t)st.st_size && ours) {
            /* Not acknowledged, so read again by the sources (or from the
             * start without positions): dropping it loses nothing. */
            sl_log_warn("%s: %s ends in an unfinished LZ4 frame (a run was killed while "
                        "writing): dropping its %llu bytes",
                        node->name, conf->path, (unsigned long long)(st.st_size - end));
            if (ftruncate(fsk->fd, (off_t)end) != 0) {
                return sl_err_set(err, SL_EIO, "%s: %s: %s", node->name, conf->path,
                                  strerror(errno));
            }
        }
        /* An empty output is still a valid .lz4 file: one empty frame. */
        if (st.st_size == 0 && write_empty_frame(fsk) != 0) {
            return sl_err_set(err, SL_EIO, "%s: %s: cannot write", node->name, conf->path);
        }
    }
    return 0;
}

/* The final flush at the end of input: write, sync. */
static int file_sink_flush(struct sl_node *node)
{
    struct file_sink *fsk = node->state;
    int rc = sl_sink_flush(&fsk->sink);

    if (rc == 0 && fsk->fd >= 0) {
        rc = fdatasync(fsk->fd) == 0 ? 0 : SL_EIO;
    }
    return rc;
}

static void file_sink_close(struct sl_node *node)
{
    struct file_sink *fsk = node->state;

    if (fsk == NULL) {
        return;
    }
    LZ4F_freeCompressionContext(fsk->cctx);
    if (fsk->fd >= 0) {
        close(fsk->fd);
    }
    sl_buf_release(&fsk->text);
    sl_buf_release(&fsk->out);
    sl_sink_release(&fsk->sink);
    sl_free(fsk);
    node->state = NULL;
}

const struct sl_node_type sl_stage_file_sink = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "file",
            .description = "Writes JSON lines to a file, optionally LZ4-compressed.",
            .kind = SLUICE_KIND_SINK,
            .flags = SLUICE_STAGE_BLOCKING,
            .conf_size = sizeof(struct file_sink_conf),
            .options = file_sink_options,
        },
    .check = file_sink_check,
    .open = file_sink_open,
    .process = sl_sink_node_process,
    .flush = file_sink_flush,
    .close = file_sink_close,
};
