/* SPDX-License-Identifier: MIT */
/* The control socket of a running pipeline (engine.control): a unix
 * stream socket, mode 0600, served by the loop thread, for `sluice top`
 * and `sluice tap`. A client sends one line:
 *   stats                      -> one JSON line: every node's counters,
 *                                 queue, workers and sink p99; then close
 *   tap NODE\tLIMIT\tWHERE     -> "#tap NODE", then the node's output
 *                                 records as JSON lines, as they pass
 * Lines starting with '#' are the server's own ("#error ...", "#dropped N").
 * A tap never slows the pipeline: the worker that emits a batch formats
 * the records it wants into the tap's buffer (1 MiB) and counts what does
 * not fit as dropped; the loop thread writes the buffer to the socket
 * without blocking. A tap that is slow loses records, never the pipeline's
 * time; one that vanishes is closed at the next write or hangup. */
#include "control.h"

#include "buf.h"
#include "expr.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "runtime.h"
#include "sink.h"

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

/* A tap: written by the workers that emit its node's batches, drained by
 * the loop thread. Slots are never freed, only reused, so a worker may
 * always take a slot's lock; under it, active and node say whether the
 * slot is still the one it wants. */
struct tap {
    pthread_mutex_t lock;
    bool active;                /* under lock (and in the atomic below, for a cheap look) */
    atomic_bool maybe_active;   /* relaxed hint: skip idle slots without the lock */
    const struct sl_node *node; /* under lock */
    size_t out;                 /* under lock: which of its outputs (0: the node's own) */
    char failed[160];           /* under lock: why --where ended the tap, or "" */
    struct sl_expr *where;      /* under lock; NULL: every record */
    uint64_t limit;             /* 0: none */
    uint64_t taken;             /* records put in buf (under lock) */
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
};

struct sl_control {
    int fd;    /* listening */
    ino_t ino; /* the socket file made: only it is removed at the end */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    _Atomic(struct sl_pipeline *) pl; /* release/acquire */
    struct client clients[MAX_CLIENTS];
    struct tap taps[SL_CONTROL_TAPS];
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

void sl_control_tap(struct sl_control *c,
                    const struct sl_node *node,
                    size_t out,
                    const struct sl_batch *batch)
{
    struct sl_buf line = {0};
    struct sl_arena scratch;

    sl_arena_init(&scratch); /* where's temporaries: the batch may be shared */
    for (size_t t = 0; t < SL_CONTROL_TAPS; t++) {
        struct tap *tap = &c->taps[t];
        if (!atomic_load_explicit(&tap->maybe_active, memory_order_relaxed)) {
            continue;
        }
        pthread_mutex_lock(&tap->lock);
        for (uint32_t i = 0; tap->active && tap->node == node && tap->out == out &&
                             tap->failed[0] == '\0' && i < batch->n;
             i++) {
            const struct sl_record *rec = &batch->recs[i];
            struct sl_value v;
            struct sl_err err = {0};
            if (tap->limit > 0 && tap->taken >= tap->limit) {
                break;
            }
            /* An error ends the tap with its reason: an expression that
             * fails on every record would otherwise print nothing, ever.
             * null is false, as a filter's where. */
            if (tap->where != NULL && sl_expr_eval(tap->where, rec, &scratch, &v, &err) != 0) {
                snprintf(tap->failed, sizeof(tap->failed), "--where: %.140s", err.msg);
                break;
            }
            if (tap->where != NULL && v.type != SL_TYPE_BOOL && v.type != SL_TYPE_NULL) {
                snprintf(tap->failed, sizeof(tap->failed), "--where: expected a bool, got %s",
                         sl_type_name((enum sl_type)v.type));
                break;
            }
            if (tap->where != NULL && !(v.type == SL_TYPE_BOOL && v.u.b)) {
                continue;
            }
            sl_buf_reset(&line);
            int frc = sl_json_write_record(&line, rec);
            if (c->on_format != NULL) {
                c->on_format(c->on_format_arg);
            }
            if (frc != 0 || sl_buf_putc(&line, '\n') != 0 ||
                tap->buf.len + line.len > TAP_BUF_BYTES ||
                sl_buf_append(&tap->buf, line.data, line.len) != 0) {
                tap->dropped++;
                continue;
            }
            tap->taken++;
        }
        pthread_mutex_unlock(&tap->lock);
    }
    sl_arena_release(&scratch);
    sl_buf_release(&line);
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
    for (size_t t = 0; t < SL_CONTROL_TAPS; t++) {
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
        /* Another run's, or a stale one a killed run left: ask it. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&addr, sizeof(addr)) == 0;
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
    tap->active = false;
    atomic_store_explicit(&tap->maybe_active, false, memory_order_relaxed);
    node = tap->node;
    dropped = tap->dropped;
    tap->where = sl_expr_free(tap->where);
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
    const char *kind = node == pl->dead_letter                ? "dlq"
                       : node->cn->kind == SLUICE_KIND_SOURCE ? "source"
                       : node->cn->kind == SLUICE_KIND_SINK   ? "sink"
                                                              : "stage";
    int rc = sl_buf_appendf(buf, "{\"name\":");

    rc = rc != 0 ? rc : sl_json_write_string(buf, node->name, strlen(node->name));
    rc = rc != 0 ? rc : sl_buf_appendf(buf, ",\"kind\":\"%s\",\"type\":", kind);
    rc = rc != 0 ? rc
                 : sl_json_write_string(buf, node->type->def.name, strlen(node->type->def.name));
    rc = rc != 0
             ? rc
             : sl_buf_appendf(
                   buf,
                   ",\"in\":%llu,\"out\":%llu,\"dropped\":%llu,\"shed\":%llu,\"dead\":%llu,"
                   "\"added\":%llu,\"queue\":%u,\"queue_cap\":%u,\"workers\":%u",
                   (unsigned long long)atomic_load(&node->c.in),
                   (unsigned long long)atomic_load(&node->c.out),
                   (unsigned long long)atomic_load(&node->c.dropped),
                   (unsigned long long)atomic_load(&node->c.shed),
                   (unsigned long long)atomic_load(&node->c.dead),
                   (unsigned long long)atomic_load(&node->c.added),
                   node->in != NULL ? sl_ring_count(node->in) : 0,
                   node->in != NULL ? sl_ring_capacity(node->in) : 0, atomic_load(&node->workers));
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
        reply(cl, true, "#error the pipeline is still starting\n");
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
        reply(cl, true, "#error out of memory\n");
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
        reply(cl, true, "#error the pipeline is still starting\n");
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
    for (size_t t = 0; t < SL_CONTROL_TAPS && tap == NULL; t++) {
        bool busy = false;
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
    tap->node = node;
    tap->out = out;
    tap->failed[0] = '\0';
    tap->where = where;
    tap->limit = strtoull(limit_s, NULL, 10);
    tap->taken = 0;
    tap->dropped = 0;
    sl_buf_reset(&tap->buf);
    tap->active = true;
    atomic_store_explicit(&tap->maybe_active, true, memory_order_relaxed);
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
        sl_buf_reset(&cl->out);
        cl->out_off = 0;
        (void)sl_buf_append(&cl->out, tap->buf.data, tap->buf.len);
        sl_buf_reset(&tap->buf);
    }
    done = tap->limit > 0 && tap->taken >= tap->limit && tap->buf.len == 0;
    char failed[sizeof(tap->failed)];
    snprintf(failed, sizeof(failed), "%s", tap->failed);
    pthread_mutex_unlock(&tap->lock);
    if (failed[0] != '\0' && cl->out.len == cl->out_off) {
        reply(cl, true, "#error %s\n", failed);
    } else if (done && cl->out.len == cl->out_off) {
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
    fds[n++] = (struct pollfd){.fd = c->fd, .events = POLLIN};
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
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        if (c->clients[i].fd >= 0) {
            return true;
        }
    }
    return false;
}

void sl_control_run(struct sl_control *c)
{
    for (;;) {
        int fd = accept4(c->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            break;
        }
        struct client *cl = NULL;
        for (size_t i = 0; i < MAX_CLIENTS && cl == NULL; i++) {
            cl = c->clients[i].fd < 0 ? &c->clients[i] : NULL;
        }
        if (cl == NULL) {
            static const char busy[] = "#error too many clients\n";
            (void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        cl->fd = fd;
    }
    for (size_t i = 0; i < MAX_CLIENTS; i++) {
        struct client *cl = &c->clients[i];
        if (cl->fd < 0) {
            continue;
        }
        if (!cl->eof) {
            read_request(c, cl);
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
    for (size_t t = 0; t < SL_CONTROL_TAPS; t++) {
        sl_expr_free(c->taps[t].where);
        sl_buf_release(&c->taps[t].buf);
        pthread_mutex_destroy(&c->taps[t].lock);
    }
    sl_free(c);
    return NULL;
}
