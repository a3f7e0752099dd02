/* SPDX-License-Identifier: MIT */
/* engine.metrics: Prometheus text at /metrics and a health check at
 * /health, served by libmicrohttpd on the loop thread. The library is
 * opened (dlopen) only when metrics are asked for: linked, it and the TLS
 * libraries it needs added 3.4 MB to every run's RSS, out of the 16 MiB
 * that peak RSS may have above memory_limit. The daemon runs
 * without a thread of its own (MHD_USE_EPOLL, no internal polling): the
 * loop polls its epoll descriptor beside the signals and calls
 * sl_metrics_run, so a scrape reads the pipeline's atomics on the thread
 * that also owns timers and signals, and never holds a worker. Everything
 * read is an atomic counter, gauge or histogram bucket: a scrape at full
 * speed costs the pipeline nothing but cache lines.
 *
 * Clients that hold connections: libmicrohttpd's timeout counts
 * inactivity only, so a client sending one header byte a second is never
 * timed out, and at its connection limit the library stops accepting:
 * clients that connect and send nothing, or trickle, would lock scrapes
 * out. So the library gets room (CONN_MAX connections, CONN_PER_IP from one
 * address, a CONN_POOL memory pool each: a request's head must fit in it)
 * and sluice follows each connection (NOTIFY_CONNECTION, NOTIFY_COMPLETED,
 * the request handler): one that has not sent a whole request head
 * within REQUEST_NS of connecting or of its previous answer is shut down,
 * and when a new connection finds CONN_KEEP others open, the one waiting
 * longest for its request is (if none waits, one whose request has run
 * for ACTIVE_NS). shutdown(2), not close: the descriptor stays the
 * library's, which sees the end of the stream at its next turn and closes
 * it. A scrape sends its request at once and is answered in the same
 * turn, so it is never the one waiting longest. */
#include "metrics.h"

#include "buf.h"
#include "clock.h"
#include "log.h"
#include "mem.h"
#include "runtime.h"
#include "sink.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* The libmicrohttpd calls sluice makes, from the library opened at start. */
static struct {
    pthread_once_t once;
    void *handle;
    char error[256];
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_get_daemon_info) *get_daemon_info;
    __typeof__(MHD_run) *run;
    __typeof__(MHD_stop_daemon) *stop_daemon;
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_destroy_response) *destroy_response;
    __typeof__(MHD_get_connection_info) *get_connection_info;
    __typeof__(MHD_get_timeout) *get_timeout;
} mhd = {.once = PTHREAD_ONCE_INIT};

static void open_mhd(void)
{
    void *h = dlopen(SL_MHD_SONAME, RTLD_NOW | RTLD_LOCAL);
    const char *missing = NULL;

    if (h == NULL) {
        const char *why = dlerror();
        snprintf(mhd.error, sizeof(mhd.error), "%s", why != NULL ? why : SL_MHD_SONAME);
        return;
    }
#define SYM(field, name)                                                                           \
    if ((*(void **)&mhd.field = dlsym(h, name)) == NULL && missing == NULL) {                      \
        missing = name;                                                                            \
    }
    SYM(start_daemon, "MHD_start_daemon")
    SYM(get_daemon_info, "MHD_get_daemon_info")
    SYM(run, "MHD_run")
    SYM(stop_daemon, "MHD_stop_daemon")
    SYM(create_response_from_buffer, "MHD_create_response_from_buffer")
    SYM(add_response_header, "MHD_add_response_header")
    SYM(queue_response, "MHD_queue_response")
    SYM(destroy_response, "MHD_destroy_response")
    SYM(get_connection_info, "MHD_get_connection_info")
    SYM(get_timeout, "MHD_get_timeout")
#undef SYM
    if (missing != NULL) {
        snprintf(mhd.error, sizeof(mhd.error), "%s has no %s", SL_MHD_SONAME, missing);
        dlclose(h);
        return;
    }
    mhd.handle = h;
}

/* Connections: see the top of the file. */
#define CONN_MAX    128                          /* MHD_OPTION_CONNECTION_LIMIT */
#define CONN_PER_IP 96                           /* MHD_OPTION_PER_IP_CONNECTION_LIMIT */
#define CONN_KEEP   64                           /* above: a new one shuts the longest waiting */
#define CONN_POOL   (16 * 1024)                  /* MHD_OPTION_CONNECTION_MEMORY_LIMIT */
#define IDLE_S      10                           /* MHD_OPTION_CONNECTION_TIMEOUT (inactivity) */
#define REQUEST_NS  (10 * 1000 * 1000 * 1000ull) /* to send a whole request head */
#define ACTIVE_NS   (2 * 1000 * 1000 * 1000ull)  /* a request that long may be shut when crowded */

/* One connection the library holds (loop thread only). */
struct conn {
    struct MHD_Connection *c; /* NULL: a free slot */
    int fd;
    bool active;    /* its request head came: being answered */
    bool shut;      /* shut down, waiting for the library to close it */
    uint64_t since; /* connected, the request came, or the last answer went */
};

struct sl_metrics {
    struct MHD_Daemon *daemon;
    int fd;                           /* its epoll descriptor */
    _Atomic(struct sl_pipeline *) pl; /* NULL until attached; release/acquire */
    uint64_t start_ns;
    char where[96]; /* host:port, for messages */
    /* Runs after which the epoll set was still readable or the library
     * wanted another turn at once (loop thread). A client that accept
     * cannot take (EMFILE: no descriptor left) keeps the listening socket
     * in it readable, and libmicrohttpd leaves it there: the loop would
     * spin. After BUSY_RUNS such runs in a row the set is left out of the
     * poll for PAUSE_NS, and run at its end. */
    unsigned busy;
    uint64_t pause_until_ns;
    struct conn conns[CONN_MAX];
    unsigned open;       /* conns in use and not shut */
    uint64_t shut_count; /* connections shut down since the last warning */
    uint64_t warned_ns;  /* when the last warning went */
};

#define BUSY_RUNS 8
#define PAUSE_NS  (100 * 1000 * 1000ull)
#define EVERY_NS  (1000 * 1000 * 1000ull) /* a turn at least this often (the sweep) */

/* ---- the text ---- */

/* A label value, escaped as the text format asks: \\, \" and \n. */
int sl_metrics_label(struct sl_buf *buf, const char *s)
{
    int rc = 0;

    for (; rc == 0 && *s != '\0'; s++) {
        if (*s == '\\' || *s == '"') {
            rc = sl_buf_putc(buf, '\\');
            rc = rc != 0 ? rc : sl_buf_putc(buf, *s);
        } else if (*s == '\n') {
            rc = sl_buf_append(buf, "\\n", 2);
        } else {
            rc = sl_buf_putc(buf, *s);
        }
    }
    return rc;
}

static int head(struct sl_buf *buf, const char *name, const char *type, const char *help)
{
    return sl_buf_appendf(buf, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{node="..."[,extra]} value */
static int node_line(struct sl_buf *buf,
                     const char *name,
                     const struct sl_node *node,
                     const char *extra,
                     uint64_t value)
{
    int rc = sl_buf_appendf(buf, "%s{node=\"", name);

    rc = rc != 0 ? rc : sl_metrics_label(buf, node->name);
    return rc != 0 ? rc
                   : sl_buf_appendf(buf, "\"%s%s} %llu\n", extra != NULL ? "," : "",
                                    extra != NULL ? extra : "", (unsigned long long)value);
}

static const char *kind_name(const struct sl_pipeline *pl, const struct sl_node *node)
{
    if (node == pl->dead_letter) {
        return "dead_letter";
    }
    return node->cn->kind == SLUICE_KIND_SOURCE ? "source"
           : node->cn->kind == SLUICE_KIND_SINK ? "sink"
                                                : "stage";
}

/* Upper bounds (seconds) of the latency histogram's buckets: the
 * histogram keeps 16 buckets per power of two in microseconds; these are
 * Prometheus's usual ones, from 1 ms to 60 s. */
static const double latency_le[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,  0.5,    1,     2.5,  5,     10,   60};
#define NLE (sizeof(latency_le) / sizeof(latency_le[0]))

static int latency(struct sl_buf *buf, const struct sl_pipeline *pl)
{
    int rc = head(buf, "sluice_sink_latency_seconds", "histogram",
                  "Time from the source reading a record to the sink committing it.");

    for (size_t i = 0; rc == 0 && i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        if (node->cn->kind != SLUICE_KIND_SINK || node == pl->dead_letter || node->state == NULL) {
            continue;
        }
        const struct sl_latency *h = &sl_sink_of((struct sl_node *)node)->latency;
        char le[48];
        /* The total first, and no bucket above it: the writer adds to a
         * bucket before the total, so a bucket read after the total may
         * hold records the total does not, and a cumulative histogram must
         * never have a bucket above +Inf (seen with 16 scrapers). */
        uint64_t total = atomic_load_explicit(&h->total, memory_order_relaxed);
        for (size_t b = 0; rc == 0 && b < NLE; b++) {
            uint64_t n = sl_latency_count_le(h, (uint64_t)(latency_le[b] * 1e6));
            snprintf(le, sizeof(le), "le=\"%g\"", latency_le[b]);
            rc = node_line(buf, "sluice_sink_latency_seconds_bucket", node, le,
                           n < total ? n : total);
        }
        rc = rc != 0
                 ? rc
                 : node_line(buf, "sluice_sink_latency_seconds_bucket", node, "le=\"+Inf\"", total);
        rc = rc != 0 ? rc : sl_buf_appendf(buf, "sluice_sink_latency_seconds_sum{node=\"");
        rc = rc != 0 ? rc : sl_metrics_label(buf, node->name);
        rc = rc != 0 ? rc
                     : sl_buf_appendf(
                           buf, "\"} %.6f\n",
                           (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6);
        rc = rc != 0 ? rc : node_line(buf, "sluice_sink_latency_seconds_count", node, NULL, total);
    }
    return rc;
}

int sl_metrics_format(const struct sl_pipeline *pl, uint64_t uptime_ns, struct sl_buf *buf)
{
    static const char *const outcomes[] = {"in", "out", "dropped", "shed", "dead", "added"};
    int rc = head(buf, "sluice_build_info", "gauge", "The running sluice's version.");

    rc =
        rc != 0 ? rc : sl_buf_appendf(buf, "sluice_build_info{version=\"%s\"} 1\n", SLUICE_VERSION);
    rc =
        rc != 0 ? rc : head(buf, "sluice_uptime_seconds", "gauge", "Seconds since sluice started.");
    rc =
        rc != 0 ? rc : sl_buf_appendf(buf, "sluice_uptime_seconds %.3f\n", (double)uptime_ns / 1e9);
    if (pl == NULL) {
        return rc;
    }
    rc = rc != 0 ? rc : head(buf, "sluice_memory_limit_bytes", "gauge", "engine.memory_limit.");
    rc = rc != 0 ? rc
                 : sl_buf_appendf(buf, "sluice_memory_limit_bytes %llu\n",
                                  (unsigned long long)pl->conf->memory_limit);
    rc = rc != 0 ? rc
                 : head(buf, "sluice_memory_in_flight_bytes", "gauge",
                        "Bytes of records in flight, charged to memory_limit.");
    rc = rc != 0 ? rc
                 : sl_buf_appendf(buf, "sluice_memory_in_flight_bytes %llu\n",
                                  (unsigned long long)atomic_load(&pl->flow.used));
    rc = rc != 0 ? rc
                 : head(buf, "sluice_memory_in_flight_peak_bytes", "gauge",
                        "The most bytes in flight so far.");
    rc = rc != 0 ? rc
                 : sl_buf_appendf(buf, "sluice_memory_in_flight_peak_bytes %llu\n",
                                  (unsigned long long)atomic_load(&pl->flow.peak));
    int blk_now = 0, blk_peak = 0;
    uint64_t blk_started = 0;
    sl_sched_blocking_threads(pl->sched, &blk_now, &blk_peak, &blk_started);
    rc = rc != 0 ? rc
                 : head(buf, "sluice_blocking_threads", "gauge",
                        "Threads running blocking nodes (sinks, delay) now.");
    rc = rc != 0 ? rc : sl_buf_appendf(buf, "sluice_blocking_threads %d\n", blk_now);

    rc = rc != 0 ? rc
                 : head(buf, "sluice_node_info", "gauge", "Each node's type and kind (always 1).");
    for (size_t i = 0; rc == 0 && i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        rc = sl_buf_appendf(buf, "sluice_node_info{node=\"");
        rc = rc != 0 ? rc : sl_metrics_label(buf, node->name);
        rc = rc != 0 ? rc : sl_buf_appendf(buf, "\",type=\"");
        rc = rc != 0 ? rc : sl_metrics_label(buf, node->type->def.name);
        rc = rc != 0 ? rc : sl_buf_appendf(buf, "\",kind=\"%s\"} 1\n", kind_name(pl, node));
    }
    rc = rc != 0 ? rc
                 : head(buf, "sluice_node_records_total", "counter",
                        "Records per node by outcome: in + added = out + dropped + shed + dead.");
    for (size_t i = 0; rc == 0 && i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        const atomic_uint_fast64_t *c[] = {&node->c.in,   &node->c.out,  &node->c.dropped,
                                           &node->c.shed, &node->c.dead, &node->c.added};
        for (size_t k = 0; rc == 0 && k < sizeof(outcomes) / sizeof(outcomes[0]); k++) {
            char extra[32];
            snprintf(extra, sizeof(extra), "kind=\"%s\"", outcomes[k]);
            rc = node_line(buf, "sluice_node_records_total", node, extra,
                           atomic_load_explicit(c[k], memory_order_relaxed));
        }
    }
    rc = rc != 0
             ? rc
             : head(buf, "sluice_node_batches_total", "counter", "Batches each node processed.");
    for (size_t i = 0; rc == 0 && i < pl->nnodes; i++) {
        rc = node_line(buf, "sluice_node_batches_total", &pl->nodes[i], NULL,
                       atomic_load_explicit(&pl->nodes[i].c.batches, memory_order_relaxed));
    }
    rc = rc != 0 ? rc
                 : head(buf, "sluice_node_queue_depth", "gauge",
                        "Batches waiting in each node's input queue.");
    for (size_t i = 0; rc == 0 && i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        if (node->in != NULL) {
            rc = node_line(buf, "sluice_node_queue_depth", node, NULL, sl_ring_count(node->in));
        }
    }
    rc = rc != 0 ? rc
                 : head(buf, "sluice_node_queue_capacity", "gauge",
                        "Capacity of each node's input queue, in batches.");
    for (size_t i = 0; rc == 0 && i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        if (node->in != NULL) {
            rc = node_line(buf, "sluice_node_queue_capacity", node, NULL,
                           sl_ring_capacity(node->in));
        }
    }
    rc = rc != 0 ? rc
                 : head(buf, "sluice_node_workers", "gauge",
                        "Tasks of each node that may run at once (tuned with workers: auto).");
    for (size_t i = 0; rc == 0 && i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        if (node->cn->kind != SLUICE_KIND_SOURCE || node->max_tasks > 0) {
            rc = node_line(buf, "sluice_node_workers", node, NULL, atomic_load(&node->workers));
        }
    }
    /* A type's own families: their HELP and TYPE once, with its first node. */
    for (size_t i = 0; rc == 0 && i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];
        bool first = true;
        for (size_t j = 0; j < i && first; j++) {
            first = pl->nodes[j].type != node->type;
        }
        if (node->type->metrics != NULL) {
            rc = node->type->metrics((struct sl_node *)node, buf, first);
        }
    }
    return rc != 0 ? rc : latency(buf, pl);
}

/* ---- the server ---- */

static enum MHD_Result
reply(struct MHD_Connection *conn, unsigned status, const char *type, const char *body, size_t len)
{
    struct MHD_Response *r =
        mhd.create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);

    if (r == NULL) {
        return MHD_NO;
    }
    (void)mhd.add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = mhd.queue_response(conn, status, r);
    mhd.destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls,
                                  struct MHD_Connection *conn,
                                  const char *url,
                                  const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_data_size,
                                  void **con_cls)
{
    struct sl_metrics *m = cls;
    static const char text[] = "text/plain; charset=utf-8";

    (void)version;
    (void)upload_data;
    (void)con_cls;
    const union MHD_ConnectionInfo *info =
        mhd.get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *cn = info != NULL ? info->socket_context : NULL;
    if (cn != NULL && !cn->active) {
        cn->active = true;
        cn->since = sl_now_ns();
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a body is read and ignored */
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char msg[] = "only GET and HEAD\n";
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, text, msg, sizeof(msg) - 1);
    }
    /* Acquire pairs with the release in sl_metrics_attach: pl is built. */
    struct sl_pipeline *pl = atomic_load_explicit(&m->pl, memory_order_acquire);
    if (strcmp(url, "/health") == 0) {
        const char *state = pl == NULL                 ? "starting\n"
                            : atomic_load(&pl->failed) ? "failed\n"
                            : atomic_load(&pl->stop)   ? "stopping\n"
                                                       : "ok\n";
        return reply(conn, state[0] == 'o' ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, text,
                     state, strlen(state));
    }
    if (strcmp(url, "/metrics") != 0) {
        static const char msg[] = "not found: try /metrics or /health\n";
        return reply(conn, MHD_HTTP_NOT_FOUND, text, msg, sizeof(msg) - 1);
    }
    struct sl_buf buf = {0};
    enum MHD_Result ret = MHD_NO;
    if (sl_metrics_format(pl, sl_now_ns() - m->start_ns, &buf) == 0) {
        ret =
            reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", buf.data, buf.len);
    }
    sl_buf_release(&buf);
    return ret;
}

/* Shuts c down (see the top of the file). */
static void shut(struct sl_metrics *m, struct conn *c)
{
    (void)shutdown(c->fd, SHUT_RDWR);
    c->shut = true;
    m->open--;
    m->shut_count++;
}

/* The connection to shut when crowded: the one waiting longest for a
 * request, or else the one whose request has run longest, past ACTIVE_NS.
 * NULL if none. */
static struct conn *victim(struct sl_metrics *m, const struct conn *spare, uint64_t now)
{
    struct conn *waiting = NULL, *active = NULL;

    for (size_t i = 0; i < CONN_MAX; i++) {
        struct conn *c = &m->conns[i];
        if (c->c == NULL || c->shut || c == spare) {
            continue;
        }
        if (!c->active && (waiting == NULL || c->since < waiting->since)) {
            waiting = c;
        } else if (c->active && now - c->since > ACTIVE_NS &&
                   (active == NULL || c->since < active->since)) {
            active = c;
        }
    }
    return waiting != NULL ? waiting : active;
}

static void on_connection(void *cls,
                          struct MHD_Connection *conn,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct sl_metrics *m = cls;
    struct conn *c = *socket_context;

    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (c != NULL) {
            m->open -= !c->shut;
            *c = (struct conn){.c = NULL};
            *socket_context = NULL;
        }
        return;
    }
    if (code != MHD_CONNECTION_NOTIFY_STARTED) {
        return;
    }
    const union MHD_ConnectionInfo *info =
        mhd.get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    for (size_t i = 0; c == NULL && info != NULL && i < CONN_MAX; i++) {
        c = m->conns[i].c == NULL ? &m->conns[i] : NULL;
    }
    if (c == NULL) {
        return; /* no slot (the library holds at most CONN_MAX): not followed */
    }
    uint64_t now = sl_now_ns();
    *c = (struct conn){.c = conn, .fd = info->connect_fd, .since = now};
    *socket_context = c;
    m->open++;
    struct conn *v;
    while (m->open > CONN_KEEP && (v = victim(m, c, now)) != NULL) {
        shut(m, v);
    }
}

/* A request was answered (or given up): the connection waits again. */
static void on_completed(void *cls,
                         struct MHD_Connection *conn,
                         void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)con_cls;
    (void)code;
    const union MHD_ConnectionInfo *info =
        mhd.get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    struct conn *c = info != NULL ? info->socket_context : NULL;
    if (c != NULL) {
        c->active = false;
        c->since = sl_now_ns();
    }
}

/* Shuts connections that did not send a request head in REQUEST_NS. */
static void sweep(struct sl_metrics *m)
{
    uint64_t now = sl_now_ns();

    for (size_t i = 0; i < CONN_MAX; i++) {
        struct conn *c = &m->conns[i];
        if (c->c != NULL && !c->shut && !c->active && now - c->since > REQUEST_NS) {
            shut(m, c);
        }
    }
    /* Said once a minute at most: a port scanner or a stuck client is no
     * reason for a log line each time. */
    if (m->shut_count > 0 && now - m->warned_ns > 60 * 1000 * 1000 * 1000ull) {
        sl_log_warn("metrics: closed %llu connection(s) that sent no request in time or "
                    "crowded out others",
                    (unsigned long long)m->shut_count);
        m->shut_count = 0;
        m->warned_ns = now;
    }
}

struct sl_metrics *sl_metrics_start(const char *host, int port, struct sl_err *err)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char service[8];
    struct sl_metrics *m = sl_calloc(1, sizeof(*m));

    if (m == NULL) {
        sl_err_set(err, SL_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_once(&mhd.once, open_mhd);
    if (mhd.handle == NULL) {
        sl_err_set(err, SL_EIO, "engine.metrics: cannot load libmicrohttpd: %s", mhd.error);
        sl_free(m);
        return NULL;
    }
    snprintf(m->where, sizeof(m->where), strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host,
             port);
    snprintf(service, sizeof(service), "%d", port);
    int gai = getaddrinfo(host, service, &hints, &ai);
    if (gai != 0) {
        sl_err_set(err, SL_EIO, "engine.metrics: cannot resolve %s: %s", host, gai_strerror(gai));
        sl_free(m);
        return NULL;
    }
    m->start_ns = sl_now_ns();
    errno = 0;
    m->daemon = mhd.start_daemon(
        MHD_USE_EPOLL | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0), (uint16_t)port, NULL, NULL,
        on_request, m, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)CONN_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CONN_PER_IP,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_POOL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)IDLE_S, MHD_OPTION_NOTIFY_CONNECTION, on_connection, m,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, m, MHD_OPTION_END);
    int e = errno; /* bind's, if that is what failed */
    freeaddrinfo(ai);
    if (m->daemon == NULL) {
        sl_err_set(err, SL_EIO, "engine.metrics: cannot listen on %s: %s", m->where,
                   e != 0 ? strerror(e) : "libmicrohttpd refused (is the port in use?)");
        sl_free(m);
        return NULL;
    }
    const union MHD_DaemonInfo *info = mhd.get_daemon_info(m->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    m->fd = info != NULL ? info->epoll_fd : -1;
    if (m->fd < 0) {
        sl_err_set(err, SL_EIO, "engine.metrics: no epoll descriptor from libmicrohttpd");
        return sl_metrics_stop(m);
    }
    sl_log_info("metrics on http://%s/metrics", m->where);
    return m;
}

int sl_metrics_fd(const struct sl_metrics *m)
{
    return sl_now_ns() < m->pause_until_ns ? -1 : m->fd;
}

/* When the library wants its next turn (it has data it read but did not
 * process, such as a request head longer than its first read buffer, or
 * a connection's timeout), in ns from now; EVERY_NS at most. With the
 * epoll set alone, such a head would wait for the next EVERY_NS turn once
 * per buffer growth (seconds for a 20 KiB head, a minute for 40 KiB). */
static uint64_t mhd_due_in(const struct sl_metrics *m)
{
    MHD_UNSIGNED_LONG_LONG ms = 0;

    if (mhd.get_timeout(m->daemon, &ms) != MHD_YES || ms >= EVERY_NS / 1000000) {
        return EVERY_NS;
    }
    return (uint64_t)ms * 1000000;
}

uint64_t sl_metrics_due_ns(const struct sl_metrics *m, uint64_t now_ns)
{
    return now_ns < m->pause_until_ns ? m->pause_until_ns : now_ns + mhd_due_in(m);
}

void sl_metrics_run(struct sl_metrics *m)
{
    struct pollfd still = {.fd = m->fd, .events = POLLIN};

    if (sl_now_ns() < m->pause_until_ns) {
        return;
    }
    (void)mhd.run(m->daemon);
    sweep(m);
    if (poll(&still, 1, 0) != 1 && mhd_due_in(m) > 0) {
        m->busy = 0;
    } else if (++m->busy >= BUSY_RUNS) {
        m->busy = 0;
        m->pause_until_ns = sl_now_ns() + PAUSE_NS;
    }
}

void sl_metrics_attach(struct sl_metrics *m, struct sl_pipeline *pl)
{
    atomic_store_explicit(&m->pl, pl, memory_order_release);
}

struct sl_metrics *sl_metrics_stop(struct sl_metrics *m)
{
    if (m != NULL) {
        if (m->daemon != NULL) {
            mhd.stop_daemon(m->daemon);
        }
        sl_free(m);
    }
    return NULL;
}
