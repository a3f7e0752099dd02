/* SPDX-License-Identifier: MIT */
/* The control socket of a running pipeline (engine.control): a unix
 * stream socket, mode 0600, served by the loop thread, for `sluice top`
 * and `sluice tap`. A client sends one line:
 *   stats                      -> one JSON line: every node's counters,
 *                                 queue, workers and sink p99; then close
 *   tap NODE\tLIMIT\tWHERE     -> "#tap NODE", then the node's output
 *                                 records as JSON lines, as they pass
 * Lines starting with '#' are the server's own ("#tap ...", "#error ...").
 * A tap never slows the pipeline: the worker that emits a batch formats
 * the records it wants (outside the tap's lock) and puts them in the tap's
 * buffer (1 MiB), counting what does not fit as dropped (logged when the
 * tap ends); the loop thread takes the buffer and writes it to the socket
 * without blocking. A tap that is slow loses records, never the pipeline's
 * time; one that vanishes is closed at the next write or hangup. A client
 * that shuts its side down after its request still gets the reply. */
#include "control.h"

#include "buf.h"
#include "clock.h"
#include "expr.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "runtime.h"
#include "sink.h"
#include "summary.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_CLIENTS   8
#define LINE_MAX_     4096
#define TAP_BUF_BYTES (1u << 20)
/* After accept found no descriptor left: how long the listening socket is
 * not polled (it stays readable while the client waits). */
#define ACCEPT_PAUSE_NS (100 * 1000 * 1000ull)
/* A client that sent no whole request by then is told so and closed: it
 * holds one of MAX_CLIENTS places. */
#define REQUEST_NS (10 * 1000 * 1000 * 1000ull)

/* A tap: written by the workers that emit its node's batches, drained by
 * the loop thread. Slots are never freed, only reused. A worker formats a
 * batch's lines outside the lock, so the loop thread never waits for it
 * and the workers of one node format at once; it takes the lock only to
 * hand the lines over. While it formats it reads node, where and limit
 * without the lock: it counts itself in users, then reads active. The loop
 * thread writes them only in a slot it saw inactive (tap_end) and then
 * without users (serve_tap), seq_cst on both sides: either the worker sees
 * active false, or the loop thread sees it counted and takes another slot.
 * So where stays until the slot is reused (or the socket stops). */
struct tap {
    pthread_mutex_t lock;
    atomic_bool active;         /* seq_cst; true once node, where and limit are written */
    atomic_uint users;          /* workers reading node, where, limit (seq_cst) */
    const struct sl_node *node; /* written by the loop while inactive and unused */
    size_t out;                 /* likewise: which of its outputs (0: the node's own) */
    struct sl_expr *where;      /* likewise; NULL: every record */
    char failed[160];           /* under lock: why --where ended the tap, or "" */
    uint64_t limit;             /* likewise; 0: none */
    atomic_uint_fast64_t taken; /* records put in buf: written under lock, read relaxed outside */
    uint64_t dropped;           /* records that did not fit (under lock) */
    struct sl_buf buf;          /* formatted lines waiting for the loop (under lock) */
};

struct client {
    int fd;             /* -1: free */
    char in[LINE_MAX_]; /* the request line so far */
    size_t in_len;
    struct sl_buf out; /* bytes to send (loop thread) */
    size_t out_off;
    struct tap *tap;      /* a tap client, or NULL */
    bool close_after_out; /* close once out is sent */
    bool eof;             /* the client shut its sending side down: not read again */
    uint64_t since_ns;    /* accepted then */
};

struct sl_control {
    int fd;    /* listening */
    ino_t ino; /* the socket file made: only it is removed at the end */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    _Atomic(struct sl_pipeline *) pl; /* release/acquire */
    struct client clients[MAX_CLIENTS];
    /* Twice the taps that may run: a slot whose tap just ended may still
     * have a worker in it, and a new tap takes another. */
    struct tap taps[2 * SL_CONTROL_TAPS];
    uint64_t accept_after_ns;     /* loop thread: no accept before (out of descriptors) */
    void (*on_format)(void *arg); /* tests */
    void *on_format_arg;
};

/* ---- the path ---- */

int sl_control_auto_path(const char *pipeline_file, char *buf, size_t len)
{
    char real[PATH_MAX];
    const char *dir = getenv("XDG_RUNTIME_DIR");
    char fallback[64];
    uint64_t h = 0xcbf29ce484222325ull;

    if (realpath(pipeline_file, real) == NULL) {
        return SL_EIO;
    }
    for (const char *p = real; *p != '\0'; p++) {
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    }
    if (dir == NULL || dir[0] == '\0') {
        snprintf(fallback, sizeof(fallback), "/tmp/sluice-%u", (unsigned)getuid());
        dir = fallback;
    }
    const char *base = strrchr(real, '/') != NULL ? strrchr(real, '/') + 1 : real;
    int n = snprintf(buf, len, "%s/sluice-%.24s-%016llx.sock", dir, base, (unsigned long long)h);
    return n > 0 && (size_t)n < len ? 0 : SL_EINVAL;
}

/* ---- taps, on the workers ---- */

/* The lines of batch's records that tap wants, in lines, each one's end
 * in ends; returns how many; *ret_failed: records that wanted a line but
 * could not have one (out of memory, or more than the tap's buffer holds). */
static uint32_t format_lines(const struct tap *tap,
                             const struct sl_batch *batch,
                             struct sl_arena *scratch,
                             struct sl_buf *lines,
                             size_t *ends,
                             uint64_t *ret_failed,
                             char *why,
                             size_t why_len)
{
    uint64_t taken = atomic_load_explicit(&tap->taken, memory_order_relaxed);
    uint32_t n = 0;

    for (uint32_t i = 0; i < batch->n; i++) {
        const struct sl_record *rec = &batch->recs[i];
        struct sl_value v;
        size_t mark = lines->len;
        if (tap->limit > 0 && taken + n >= tap->limit) {
            break;
        }
        struct sl_err err = {0};
        /* An error ends the tap with its reason: an expression that fails
         * on every record would otherwise print nothing, ever. null is
         * false, as a filter's where. */
        if (tap->where != NULL && sl_expr_eval(tap->where, rec, scratch, &v, &err) != 0) {
            snprintf(why, why_len, "--where: %.140s", err.msg);
            break;
        }
        if (tap->where != NULL && v.type != SL_TYPE_BOOL && v.type != SL_TYPE_NULL) {
            snprintf(why, why_len, "--where: expected a bool, got %s",
                     sl_type_name((enum sl_type)v.type));
            break;
        }
        if (tap->where != NULL && !(v.type == SL_TYPE_BOOL && v.u.b)) {
            continue;
        }
        if (mark >= TAP_BUF_BYTES || sl_json_write_record(lines, rec) != 0 ||
            sl_buf_putc(lines, '\n') != 0) {
            lines->len = mark;
            if (lines->data != NULL) {
                lines->data[mark] = '\0';
            }
            (*ret_failed)++;
            continue;
        }
        ends[n++] = lines->len;
    }
    return n;
}

/* Hands n formatted lines to tap, up to its limit and its buffer's size. */
static void hand_over(struct tap *tap,
                      const struct sl_buf *lines,
                      const size_t *ends,
                      uint32_t n,
                      uint64_t failed,
                      const char *why)
{
    pthread_mutex_lock(&tap->lock);
    if (!atomic_load_explicit(&tap->active, memory_order_relaxed) || tap->failed[0] != '\0') {
        pthread_mutex_unlock(&tap->lock); /* ended while the lines were made */
        return;
    }
    if (why[0] != '\0') {
        snprintf(tap->failed, sizeof(tap->failed), "%s", why);
    }
    uint64_t taken = atomic_load_explicit(&tap->taken, memory_order_relaxed);
    tap->dropped += failed;
    if ((tap->limit == 0 || taken + n <= tap->limit) &&
        tap->buf.len + lines->len <= TAP_BUF_BYTES &&
        sl_buf_append(&tap->buf, lines->data, lines->len) == 0) {
        taken += n;
    } else {
        for (uint32_t k = 0; k < n && (tap->limit == 0 || taken < tap->limit); k++) {
            size_t start = k > 0 ? ends[k - 1] : 0;
            size_t len = ends[k] - start;
            if (tap->buf.len + len > TAP_BUF_BYTES ||
                sl_buf_append(&tap->buf, lines->data + start, len) != 0) {
                tap->dropped++;
                continue;
            }
            taken++;
        }
    }
    atomic_store_explicit(&tap->taken, taken, memory_order_relaxed);
    pthread_mutex_unlock(&tap->lock);
}

void sl_control_tap(struct sl_control *c,
                    const struct sl_node *node,
                    size_t out,
                    const struct sl_batch *batch)
{
    struct sl_buf lines = {0};
    struct sl_arena scratch;
    size_t *ends = NULL;

    sl_arena_init(&scratch); /* where's temporaries: the batch may be shared */
    for (size_t t = 0; t < 2 * SL_CONTROL_TAPS; t++) {
        struct tap *tap = &c->taps[t];
        if (!atomic_load_explicit(&tap->active, memory_order_relaxed)) {
            continue; /* a cheap look first */
        }
        atomic_fetch_add_explicit(&tap->users, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&tap->active, memory_order_seq_cst) && tap->node == node &&
            tap->out == out &&
            (tap->limit == 0 ||
             atomic_load_explicit(&tap->taken, memory_order_relaxed) < tap->limit)) {
            uint64_t failed = 0;
            if (ends == NULL) {
                ends = sl_arena_alloc(&scratch, (batch->n > 0 ? batch->n : 1) * sizeof(*ends));
            }
            sl_buf_reset(&lines);
            char why[160] = "";
            uint32_t n = ends != NULL ? format_lines(tap, batch, &scratch, &lines, ends, &failed,
                                                     why, sizeof(why))
                                      : 0;
            if (ends == NULL) {
                failed = batch->n;
            }
            if (c->on_format != NULL) {
                c->on_format(c->on_format_arg);
            }
            if (n > 0 || failed > 0 || why[0] != '\0') {
                hand_over(tap, &lines, ends, n, failed, why);
            }
        }
        atomic_fetch_sub_explicit(&tap->users, 1, memory_order_seq_cst);
    }
    sl_arena_release(&scratch);
    sl_buf_release(&lines);
}

void sl_control_test_on_format(struct sl_control *c, void (*fn)(void *arg), void *arg)
{
    c->on_format = fn;
    c->on_format_arg = arg;
}

/* ---- the server, on the loop thread ---- */

struct sl_control *sl_control_start(const char *path, bool private_dir, struct sl_err *err)
{
    struct sl_control *c = sl_calloc(1, sizeof(*c));
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct stat st;

    if (c == NULL) {
        sl_err_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    c->fd = -1;
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        c->clients[i].fd = -1;
    }
    for (size_t t = 0; t < 2 * SL_CONTROL_TAPS; t++) {
        pthread_mutex_init(&c->taps[t].lock, NULL);
    }
    if (strlen(path) >= sizeof(addr.sun_path)) {
        sl_err_set(err, SL_ECONFIG, "engine.control: the path %s is longer than %zu bytes", path,
                   sizeof(addr.sun_path) - 1);
        return sl_control_stop(c);
    }
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    /* The folder: made private if sluice makes it; the automatic one must
     * be this user's alone, or another user could put a socket of theirs
     * where top and tap look. */
    char dir[sizeof(addr.sun_path)];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        (void)mkdir(dir, 0700);
        if (private_dir && (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != getuid() ||
                            (st.st_mode & 077) != 0)) {
            sl_err_set(err, SL_EIO,
                       "engine.control: %s is not a folder of this user's alone (mode 0700): "
                       "set engine.control to a path",
                       dir);
            return sl_control_stop(c);
        }
    }
    /* Never remove what is not a socket: a path that names a file of the
     * user's (the pipeline file, a database) is a mistake to say. */
    if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        sl_err_set(err, SL_EIO,
                   "engine.control: %s exists and is not a socket: choose another path", path);
        return sl_control_stop(c);
    }
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        sl_err_set(err, SL_EIO, "engine.control: socket: %s", strerror(errno));
        return sl_control_stop(c);
    }
    mode_t old = umask(0177); /* 0600 from the start: no window where others may connect */
    int rc = bind(c->fd, (struct sockaddr *)&addr, sizeof(addr));
    if (rc != 0 && errno == EADDRINUSE) {
        /* Another run's, or a stale one a killed run left: ask it. Without
         * blocking: a listener that accepts nothing (a stuck run, its
         * backlog full) made a blocking connect wait for ever, before the
         * loop and its deadlines start. Busy (EAGAIN) is live too. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && (connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0 ||
                                   errno == EAGAIN || errno == EINPROGRESS);
        if (probe >= 0) {
            close(probe);
        }
        if (!live && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unlink(path) == 0) {
            rc = bind(c->fd, (struct sockaddr *)&addr, sizeof(addr));
        } else {
            errno = EADDRINUSE;
        }
    }
    umask(old);
    if (rc != 0 || listen(c->fd, MAX_CLIENTS) != 0 || lstat(path, &st) != 0) {
        int e = errno;
        close(c->fd);
        c->fd = -1;
        sl_err_set(err, SL_EIO, "engine.control: %s: %s%s", path, strerror(e),
                   e == EADDRINUSE ? " (another run of this pipeline has it)" : "");
        return sl_control_stop(c);
    }
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->ino = st.st_ino;
    return c;
}

void sl_control_attach(struct sl_control *c, struct sl_pipeline *pl)
{
    atomic_store_explicit(&c->pl, pl, memory_order_release);
}

static void tap_end(struct sl_control *c, struct tap *tap)
{
    struct sl_pipeline *pl = atomic_load_explicit(&c->pl, memory_order_acquire);
    uint64_t dropped;
    const struct sl_node *node;

    pthread_mutex_lock(&tap->lock);
    /* seq_cst: before serve_tap's look at users (see struct tap). where
     * stays: a worker may still read it. */
    atomic_store_explicit(&tap->active, false, memory_order_seq_cst);
    node = tap->node;
    dropped = tap->dropped;
    sl_buf_release(&tap->buf);
    pthread_mutex_unlock(&tap->lock);
    if (pl != NULL && node != NULL) {
        atomic_fetch_sub_explicit(&((struct sl_node *)node)->tapped, 1, memory_order_relaxed);
    }
    if (dropped > 0 && node != NULL) {
        sl_log_info("tap of node '%s' ended: %llu records did not fit its buffer (a slow reader)",
                    node->name, (unsigned long long)dropped);
    }
}

static void client_close(struct sl_control *c, struct client *cl)
{
    if (cl->tap != NULL) {
        tap_end(c, cl->tap);
        cl->tap = NULL;
    }
    close(cl->fd);
    cl->fd = -1;
    cl->in_len = 0;
    sl_buf_release(&cl->out);
    cl->out_off = 0;
    cl->close_after_out = false;
    cl->eof = false;
}

static void reply(struct client *cl, bool close_after, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void reply(struct client *cl, bool close_after, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    (void)sl_buf_append(&cl->out, line, strlen(line));
    cl->close_after_out = cl->close_after_out || close_after;
}

/* One node's line of a stats reply. */
static int stats_node(struct sl_buf *buf, const struct sl_pipeline *pl, const struct sl_node *node)
{
    int rc = sl_buf_appendf(buf, "{\"name\":");

    rc = rc != 0 ? rc : sl_json_write_string(buf, node->name, strlen(node->name));
    rc = rc != 0 ? rc : sl_summary_node_counts(buf, pl, node, ",");
    rc = rc != 0 ? rc
                 : sl_buf_appendf(buf, ",\"queue\":%u,\"queue_cap\":%u,\"workers\":%u",
                                  node->in != NULL ? sl_ring_count(node->in) : 0,
                                  node->in != NULL ? sl_ring_capacity(node->in) : 0,
                                  atomic_load(&node->workers));
    if (rc == 0 && node->cn->kind == SLUICE_KIND_SINK && node != pl->dead_letter &&
        node->state != NULL) {
        const struct sl_latency *h = &sl_sink_of((struct sl_node *)node)->latency;
        rc = sl_buf_appendf(buf, ",\"p99_ms\":%.3f", (double)sl_latency_quantile(h, 0.99) / 1e3);
    }
    return rc != 0 ? rc : sl_buf_putc(buf, '}');
}

static void serve_stats(struct sl_control *c, struct client *cl)
{
    struct sl_pipeline *pl = atomic_load_explicit(&c->pl, memory_order_acquire);
    int rc;

    if (pl == NULL) {
        reply(cl, true, SL_CONTROL_STARTING);
        return;
    }
    rc = sl_buf_appendf(&cl->out,
                        "{\"elapsed_s\":%.3f,\"in_flight_bytes\":%llu,\"memory_limit\":%llu,"
                        "\"nodes\":[",
                        (double)(sl_now_ns() - pl->start_ns) / 1e9,
                        (unsigned long long)atomic_load(&pl->flow.used),
                        (unsigned long long)pl->conf->memory_limit);
    for (size_t i = 0; rc == 0 && i < pl->nnodes; i++) {
        rc = i > 0 ? sl_buf_putc(&cl->out, ',') : 0;
        rc = rc != 0 ? rc : stats_node(&cl->out, pl, &pl->nodes[i]);
    }
    rc = rc != 0 ? rc : sl_buf_appendf(&cl->out, "]}\n");
    if (rc != 0) {
        sl_buf_reset(&cl->out);
        reply(cl, true, SL_CONTROL_NOMEM);
    }
    cl->close_after_out = true;
}

/* "tap NODE\tLIMIT\tWHERE" */
static void serve_tap(struct sl_control *c, struct client *cl, char *args)
{
    struct sl_pipeline *pl = atomic_load_explicit(&c->pl, memory_order_acquire);
    char *limit_s = strchr(args, '\t');
    char *where_s = limit_s != NULL ? strchr(limit_s + 1, '\t') : NULL;
    struct sl_node *node = NULL;
    struct sl_expr *where = NULL;
    struct sl_err err = {0};

    if (limit_s == NULL || where_s == NULL) {
        reply(cl, true, "#error malformed tap request\n");
        return;
    }
    *limit_s++ = '\0';
    *where_s++ = '\0';
    if (pl == NULL) {
        reply(cl, true, SL_CONTROL_STARTING);
        return;
    }
    /* NODE, or NODE.OUTPUT for a route's output (names have no dots). */
    char *dot = strchr(args, '.');
    size_t out = 0;
    if (dot != NULL) {
        *dot = '\0';
    }
    for (size_t i = 0; i < pl->nnodes; i++) {
        if (strcmp(pl->nodes[i].name, args) == 0) {
            node = &pl->nodes[i];
        }
    }
    for (size_t o = 1; node != NULL && dot != NULL && out == 0 && o < node->nouts; o++) {
        out = node->outs[o].name != NULL && strcmp(node->outs[o].name, dot + 1) == 0 ? o : 0;
    }
    if (node == NULL || (dot != NULL && out == 0)) {
        if (dot != NULL) {
            *dot = '.';
        }
        reply(cl, true, "#error no node '%.100s' in this pipeline\n", args);
        return;
    }
    if (where_s[0] != '\0' && (where = sl_expr_compile(where_s, strlen(where_s), &err)) == NULL) {
        reply(cl, true, "#error --where: column %d: %.300s\n", err.col, err.msg);
        return;
    }
    struct tap *tap = NULL;
    size_t running = 0;
    for (size_t k = 0; k < MAX_CLIENTS; k++) {
        running += c->clients[k].tap != NULL;
    }
    for (size_t t = 0; running < SL_CONTROL_TAPS && t < 2 * SL_CONTROL_TAPS && tap == NULL; t++) {
        /* Neither a client's nor read by a worker still (see struct tap). */
        bool busy = atomic_load_explicit(&c->taps[t].users, memory_order_seq_cst) != 0;
        for (size_t k = 0; k < MAX_CLIENTS; k++) {
            busy |= c->clients[k].tap == &c->taps[t];
        }
        tap = busy ? NULL : &c->taps[t];
    }
    if (tap == NULL) {
        sl_expr_free(where);
        reply(cl, true, "#error %d taps run already: the most at once\n", SL_CONTROL_TAPS);
        return;
    }
    pthread_mutex_lock(&tap->lock);
    tap->where = sl_expr_free(tap->where); /* the slot's last tap's */
    tap->node = node;
    tap->out = out;
    tap->failed[0] = '\0';
    tap->where = where;
    tap->limit = strtoull(limit_s, NULL, 10);
    atomic_store_explicit(&tap->taken, 0, memory_order_relaxed);
    tap->dropped = 0;
    sl_buf_reset(&tap->buf);
    atomic_store_explicit(&tap->active, true, memory_order_seq_cst); /* publishes the above */
    pthread_mutex_unlock(&tap->lock);
    /* Relaxed: a worker that misses the first batches misses them; what
     * it sees under the tap's lock is consistent. */
    atomic_fetch_add_explicit(&node->tapped, 1, memory_order_relaxed);
    cl->tap = tap;
    reply(cl, false, "#tap %s%s%s\n", node->name, out > 0 ? "." : "",
          out > 0 ? node->outs[out].name : "");
}

static void serve_line(struct sl_control *c, struct client *cl)
{
    char *line = cl->in;

    if (strcmp(line, "stats") == 0) {
        serve_stats(c, cl);
    } else if (strncmp(line, "tap ", 4) == 0) {
        serve_tap(c, cl, line + 4);
    } else {
        reply(cl, true, "#error unknown request\n");
    }
}

static void read_request(struct sl_control *c, struct client *cl)
{
    /* One request per connection: what follows it is read and ignored
     * (into discard: in may be full, and a recv of 0 bytes returns 0). */
    bool answered = cl->tap != NULL || cl->close_after_out;
    char discard[256];
    ssize_t n = answered ? recv(cl->fd, discard, sizeof(discard), 0)
                         : recv(cl->fd, cl->in + cl->in_len, sizeof(cl->in) - 1 - cl->in_len, 0);

    if (n == 0 && cl->tap == NULL && cl->close_after_out && cl->out_off < cl->out.len) {
        /* The end of the request (nc -N, shutdown(SHUT_WR)), not a client
         * gone: the reply still goes out, and write_out closes after it. */
        cl->eof = true;
        return;
    }
    if (n <= 0) {
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
            client_close(c, cl);
        }
        return;
    }
    if (answered) {
        return;
    }
    cl->in_len += (size_t)n;
    cl->in[cl->in_len] = '\0';
    char *nl = strchr(cl->in, '\n');
    if (nl == NULL && cl->in_len == sizeof(cl->in) - 1) {
        reply(cl, true, "#error request too long\n");
        return;
    }
    if (nl != NULL) {
        *nl = '\0';
        serve_line(c, cl);
    }
}

/* Moves what the client's tap gathered into its output; ends a tap that
 * reached its limit once all it took is out. */
static void take_tap(struct sl_control *c, struct client *cl)
{
    struct tap *tap = cl->tap;
    bool done;

    (void)c;
    pthread_mutex_lock(&tap->lock);
    if (tap->buf.len > 0 && cl->out.len == cl->out_off) {
        /* A swap: the lock is held for no copy, and the client's sent
         * buffer is the tap's next. */
        struct sl_buf sent = cl->out;
        cl->out = tap->buf;
        cl->out_off = 0;
        tap->buf = sent;
        sl_buf_reset(&tap->buf);
    }
    done = tap->limit > 0 &&
           atomic_load_explicit(&tap->taken, memory_order_relaxed) >= tap->limit &&
           tap->buf.len == 0;
    char failed[sizeof(tap->failed)];
    snprintf(failed, sizeof(failed), "%s", tap->failed);
    bool drained = tap->buf.len == 0;
    pthread_mutex_unlock(&tap->lock);
    /* Once all it took is out: the reason it failed, or its end. */
    if (failed[0] != '\0' && drained && !cl->close_after_out) {
        reply(cl, true, "#error %s\n", failed);
    } else if (done && !cl->close_after_out) {
        reply(cl, true, "#end\n");
    }
}

static void write_out(struct sl_control *c, struct client *cl)
{
    while (cl->out_off < cl->out.len) {
        ssize_t n = send(cl->fd, cl->out.data + cl->out_off, cl->out.len - cl->out_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                client_close(c, cl);
            }
            return;
        }
        cl->out_off += (size_t)n;
    }
    if (cl->close_after_out) {
        client_close(c, cl);
    }
}

size_t sl_control_pollfds(struct sl_control *c, struct pollfd *fds, size_t max)
{
    size_t n = 0;

    if (max == 0) {
        return 0;
    }
    /* Not while accept has no descriptor to give: a waiting client keeps
     * the socket readable, and the loop would spin. */
    fds[n++] = (struct pollfd){.fd = c->fd,
                               .events = (short)(sl_now_ns() >= c->accept_after_ns ? POLLIN : 0)};
    for (size_t i = 0; i < MAX_CLIENTS && n < max; i++) {
        struct client *cl = &c->clients[i];
        if (cl->fd >= 0) {
            /* Not POLLIN after the client's end: it would be ready for ever. */
            fds[n++] =
                (struct pollfd){.fd = cl->fd,
                                .events = (short)((cl->eof ? 0 : POLLIN) |
                                                  (cl->out_off < cl->out.len ? POLLOUT : 0))};
        }
    }
    return n;
}

bool sl_control_tapping(const struct sl_control *c)
{
    if (c->accept_after_ns != 0 && sl_now_ns() < c->accept_after_ns) {
        return true; /* accept again soon */
    }
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        if (c->clients[i].fd >= 0) {
            return true;
        }
    }
    return false;
}

void sl_control_run(struct sl_control *c)
{
    while (sl_now_ns() >= c->accept_after_ns) {
        int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                c->accept_after_ns = sl_now_ns() + ACCEPT_PAUSE_NS;
            }
            break;
        }
        struct client *cl = NULL;
        for (size_t i = 0; i < MAX_CLIENTS && cl == NULL; i++) {
            cl = c->clients[i].fd < 0 ? &c->clients[i] : NULL;
        }
        if (cl == NULL) {
            static const char busy[] = SL_CONTROL_FULL;
            (void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        cl->fd = fd;
        cl->since_ns = sl_now_ns();
    }
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *cl = &c->clients[i];
        if (cl->fd < 0) {
            continue;
        }
        if (!cl->eof) {
            read_request(c, cl);
        }
        if (cl->fd >= 0 && cl->tap == NULL && !cl->close_after_out &&
            sl_now_ns() - cl->since_ns >= REQUEST_NS) {
            reply(cl, true, "#error no request within %llu s\n",
                  (unsigned long long)(REQUEST_NS / 1000000000ull));
        }
        if (cl->fd >= 0 && cl->tap != NULL) {
            take_tap(c, cl);
        }
        if (cl->fd >= 0) {
            write_out(c, cl);
        }
    }
}

void sl_control_close_clients(struct sl_control *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        if (c->clients[i].fd >= 0 && c->clients[i].tap != NULL) {
            take_tap(c, &c->clients[i]);
            /* The pipeline ended: the tap ends cleanly (a tap that sees
             * the socket close without this knows its pipeline died). */
            if (!c->clients[i].close_after_out) {
                reply(&c->clients[i], true, "#end\n");
            }
        }
        if (c->clients[i].fd >= 0) {
            write_out(c, &c->clients[i]); /* what is ready goes, without waiting */
        }
        if (c->clients[i].fd >= 0) {
            client_close(c, &c->clients[i]);
        }
    }
}

struct sl_control *sl_control_stop(struct sl_control *c)
{
    if (c == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        if (c->clients[i].fd >= 0) {
            close(c->clients[i].fd); /* taps ended in sl_control_close_clients */
            sl_buf_release(&c->clients[i].out);
        }
    }
    if (c->fd >= 0) {
        close(c->fd);
        /* Ours only: not a socket another run put there since. */
        struct stat st;
        if (c->path[0] != '\0' && lstat(c->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
            st.st_ino == c->ino) {
            (void)unlink(c->path);
        }
    }
    for (size_t t = 0; t < 2 * SL_CONTROL_TAPS; t++) {
        sl_expr_free(c->taps[t].where);
        sl_buf_release(&c->taps[t].buf);
        pthread_mutex_destroy(&c->taps[t].lock);
    }
    sl_free(c);
    return NULL;
}
