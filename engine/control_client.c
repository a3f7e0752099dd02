/* SPDX-License-Identifier: MIT */
/* `sluice top` and `sluice tap`: clients of a running pipeline's control
 * socket (control.c). Both find it from the pipeline file (its
 * engine.control, or the automatic path of that file) or take the socket
 * itself. top asks for stats once a second and draws a table of rates,
 * queues, workers, drops and sink p99; tap prints a node's records as
 * JSON lines until its limit, the pipeline's end or a signal. */
#include "conf.h"
#include "control.h"
#include "json.h"
#include "mem.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define EXIT_FAILED 1
#define EXIT_USAGE  2

/* The socket of target (a socket, or a pipeline file). 0, or an exit code
 * after saying why. */
static int find_socket(const char *target, char *path, size_t len)
{
    struct stat st;
    struct sl_conf *conf = NULL;
    struct sl_err err = {0};
    char msg[1024];

    if (stat(target, &st) != 0) {
        fprintf(stderr, "sluice: %s: %s\n", target, strerror(errno));
        return EXIT_USAGE;
    }
    if (S_ISSOCK(st.st_mode)) {
        snprintf(path, len, "%s", target);
        return 0;
    }
    if (sl_conf_load(target, NULL, 0, &conf, &err) != 0) {
        fprintf(stderr, "%s\n", sl_err_format(&err, msg, sizeof(msg)));
        return EXIT_USAGE;
    }
    int code = 0;
    if (!conf->control) {
        fprintf(stderr, "sluice: %s has engine.control: false: no control socket to ask\n", target);
        code = EXIT_USAGE;
    } else if (conf->control_path != NULL) {
        snprintf(path, len, "%s", conf->control_path);
    } else if (sl_control_auto_path(target, path, len) != 0) {
        fprintf(stderr, "sluice: %s: no control socket path\n", target);
        code = EXIT_USAGE;
    }
    sl_conf_free(conf);
    return code;
}

/* A connected socket, or -1 (errno set). */
static int dial(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n <= 0) {
            return -1;
        }
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- top ---- */

struct row {
    char name[64], kind[8], type[32];
    uint64_t in, out, dropped, shed, dead, added;
    uint64_t queue, queue_cap, workers;
    double p99_ms; /* < 0: not a sink */
};

static uint64_t get_u64(const char *obj, size_t len, const char *key)
{
    struct sl_value v;
    struct sl_arena a;

    sl_arena_init(&a);
    uint64_t r =
        sl_json_object_get(obj, len, key, strlen(key), &a, &v) == 0 && v.type == SL_TYPE_INT
            ? (uint64_t)v.u.i
            : 0;
    sl_arena_release(&a);
    return r;
}

static double get_double(const char *obj, size_t len, const char *key, double missing)
{
    struct sl_value v;
    struct sl_arena a;
    double r = missing;

    sl_arena_init(&a);
    if (sl_json_object_get(obj, len, key, strlen(key), &a, &v) == 0) {
        r = v.type == SL_TYPE_DOUBLE ? v.u.d : v.type == SL_TYPE_INT ? (double)v.u.i : missing;
    }
    sl_arena_release(&a);
    return r;
}

static void get_str(const char *obj, size_t len, const char *key, char *buf, size_t cap)
{
    struct sl_value v;
    struct sl_arena a;

    sl_arena_init(&a);
    buf[0] = '\0';
    if (sl_json_object_get(obj, len, key, strlen(key), &a, &v) == 0 && v.type == SL_TYPE_STR) {
        snprintf(buf, cap, "%.*s", (int)v.len, v.u.s);
    }
    sl_arena_release(&a);
}

/* Reads the whole reply of one request into buf. 0, or -1. */
static int ask(const char *path, const char *request, struct sl_buf *buf)
{
    char chunk[65536];
    int fd = dial(path);

    if (fd < 0) {
        return -1;
    }
    sl_buf_reset(buf);
    int rc = send_all(fd, request, strlen(request));
    for (ssize_t n; rc == 0 && (n = recv(fd, chunk, sizeof(chunk), 0)) > 0;) {
        rc = sl_buf_append(buf, chunk, (size_t)n) == 0 ? 0 : -1;
    }
    close(fd);
    return rc;
}

/* The rows of a stats reply; returns how many (at most max), -1 when the
 * reply is not one. */
static long parse_stats(const struct sl_buf *reply,
                        struct row *rows,
                        size_t max,
                        double *ret_elapsed,
                        uint64_t *ret_flight,
                        uint64_t *ret_limit)
{
    struct sl_value nodes;
    struct sl_arena a;
    size_t pos = 0;
    long n = 0;

    if (reply->len < 2 || reply->data[0] != '{') {
        return -1;
    }
    size_t len = reply->len - (reply->data[reply->len - 1] == '\n');
    *ret_elapsed = get_double(reply->data, len, "elapsed_s", 0);
    *ret_flight = get_u64(reply->data, len, "in_flight_bytes");
    *ret_limit = get_u64(reply->data, len, "memory_limit");
    sl_arena_init(&a);
    if (sl_json_object_get(reply->data, len, "nodes", 5, &a, &nodes) != 0 ||
        nodes.type != SL_TYPE_ARRAY) {
        sl_arena_release(&a);
        return -1;
    }
    struct sl_value o;
    while ((size_t)n < max && sl_json_array_next(nodes.u.s, nodes.len, &pos, &a, &o) == 0) {
        struct row *r = &rows[n++];
        get_str(o.u.s, o.len, "name", r->name, sizeof(r->name));
        get_str(o.u.s, o.len, "kind", r->kind, sizeof(r->kind));
        get_str(o.u.s, o.len, "type", r->type, sizeof(r->type));
        r->in = get_u64(o.u.s, o.len, "in");
        r->out = get_u64(o.u.s, o.len, "out");
        r->dropped = get_u64(o.u.s, o.len, "dropped");
        r->shed = get_u64(o.u.s, o.len, "shed");
        r->dead = get_u64(o.u.s, o.len, "dead");
        r->added = get_u64(o.u.s, o.len, "added");
        r->queue = get_u64(o.u.s, o.len, "queue");
        r->queue_cap = get_u64(o.u.s, o.len, "queue_cap");
        r->workers = get_u64(o.u.s, o.len, "workers");
        r->p99_ms = get_double(o.u.s, o.len, "p99_ms", -1);
    }
    sl_arena_release(&a);
    return n;
}

#define MAX_ROWS 256

static void draw(const char *path,
                 const struct row *rows,
                 const struct row *prev,
                 long n,
                 long nprev,
                 double elapsed,
                 double dt,
                 uint64_t flight,
                 uint64_t limit,
                 bool tty)
{
    if (tty) {
        fputs("\033[H\033[2J", stdout);
    }
    printf("sluice top: %s  up %.1f s  in flight %.1f / %.0f MiB\n", path, elapsed,
           (double)flight / 1048576.0, (double)limit / 1048576.0);
    printf("%-20s %-6s %-10s %10s %10s %12s %9s %9s %9s %9s %7s %8s\n", "node", "kind", "type",
           "in/s", "out/s", "in", "dropped", "shed", "dead", "queue", "workers", "p99 ms");
    for (long i = 0; i < n; i++) {
        const struct row *r = &rows[i];
        const struct row *p = i < nprev && strcmp(prev[i].name, r->name) == 0 ? &prev[i] : NULL;
        double span = p != NULL && dt > 0 ? dt : elapsed > 0 ? elapsed : 1;
        double in_rate = (double)(r->in - (p != NULL ? p->in : 0)) / span;
        double out_rate = (double)(r->out - (p != NULL ? p->out : 0)) / span;
        char queue[32], p99[16] = "";
        snprintf(queue, sizeof(queue), "%" PRIu64 "/%" PRIu64, r->queue, r->queue_cap);
        if (r->p99_ms >= 0) {
            snprintf(p99, sizeof(p99), "%.3f", r->p99_ms);
        }
        printf("%-20.20s %-6s %-10.10s %10.0f %10.0f %12" PRIu64 " %9" PRIu64 " %9" PRIu64
               " %9" PRIu64 " %9s %7" PRIu64 " %8s\n",
               r->name, r->kind, r->type, in_rate, out_rate, r->in, r->dropped, r->shed, r->dead,
               queue, r->workers, p99);
    }
    fflush(stdout);
}

int sl_control_top(const char *target, int iterations)
{
    char path[108];
    struct sl_buf reply = {0};
    struct row *rows = sl_calloc(2 * MAX_ROWS, sizeof(*rows));
    struct row *prev = rows + MAX_ROWS;
    long n = 0, nprev = 0;
    double elapsed = 0, prev_elapsed = 0;
    uint64_t flight = 0, limit = 0;
    bool tty = isatty(STDOUT_FILENO);
    int starting = 0;
    int code = find_socket(target, path, sizeof(path));

    if (rows == NULL) {
        fprintf(stderr, "sluice: out of memory\n");
        return EXIT_FAILED;
    }
    for (int i = 0; code == 0 && (iterations <= 0 || i < iterations); i++) {
        if (i > 0 && starting == 0) {
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
        }
        if (ask(path, "stats\n", &reply) != 0) {
            if (i == 0) {
                fprintf(stderr, "sluice: no running pipeline answers on %s: %s\n", path,
                        strerror(errno));
                code = EXIT_FAILED;
            } else {
                printf("sluice top: the pipeline ended\n");
            }
            break;
        }
        if (reply.len > 0 && reply.data[0] == '#') {
            /* Still starting: ask again soon, for up to 10 s. */
            struct timespec ts = {0, 100 * 1000 * 1000};
            if (++starting > 100) {
                fprintf(stderr, "sluice: %s: %.*s", path, (int)reply.len - 1, reply.data + 1);
                code = EXIT_FAILED;
                break;
            }
            nanosleep(&ts, NULL);
            i--;
            continue;
        }
        starting = 0;
        memcpy(prev, rows, sizeof(*rows) * (size_t)n);
        nprev = n;
        prev_elapsed = elapsed;
        n = parse_stats(&reply, rows, MAX_ROWS, &elapsed, &flight, &limit);
        if (n < 0) {
            fprintf(stderr, "sluice: %s answered something else than stats\n", path);
            code = EXIT_FAILED;
            break;
        }
        draw(path, rows, prev, n, nprev, elapsed, nprev > 0 ? elapsed - prev_elapsed : 0, flight,
             limit, tty);
    }
    sl_buf_release(&reply);
    sl_free(rows);
    return code;
}

/* ---- tap ---- */

/* One tap connection: streams records to stdout. Returns an exit code, or
 * -1 when the pipeline was still starting (nothing printed: ask again). */
static int tap_once(const char *path, const char *req, size_t req_len)
{
    char chunk[65536];
    struct sl_buf line = {0};
    bool head = true;   /* the first line is the server's answer */
    bool ended = false; /* the server said the tap is over (limit, pipeline's end) */
    int code = 0;
    int fd = dial(path);

    if (fd < 0) {
        fprintf(stderr, "sluice: no running pipeline answers on %s: %s\n", path, strerror(errno));
        return EXIT_FAILED;
    }
    if (send_all(fd, req, req_len) != 0) {
        fprintf(stderr, "sluice: cannot send the tap request\n");
        close(fd);
        return EXIT_FAILED;
    }
    /* Records go to stdout as they come; the server's own lines ('#') are
     * read here. */
    for (ssize_t n; code == 0 && (n = recv(fd, chunk, sizeof(chunk), 0)) > 0;) {
        for (ssize_t i = 0; code == 0 && i < n; i++) {
            if (sl_buf_putc(&line, chunk[i]) != 0) {
                code = EXIT_FAILED;
            } else if (chunk[i] == '\n') {
                if (head && strcmp(line.data, "#error the pipeline is still starting\n") == 0) {
                    code = -1;
                } else if (strcmp(line.data, "#end\n") == 0) {
                    ended = true;
                } else if (strncmp(line.data, "#error ", 7) == 0) {
                    fprintf(stderr, "sluice: tap: %s", line.data + 7);
                    code = head ? EXIT_USAGE : EXIT_FAILED;
                } else if (line.data[0] != '#') {
                    fwrite(line.data, 1, line.len, stdout);
                }
                head = false;
                sl_buf_reset(&line);
            }
        }
        fflush(stdout);
    }
    close(fd);
    sl_buf_release(&line);
    if (code == 0 && !ended) {
        fprintf(stderr, "sluice: tap: the pipeline stopped answering (killed?)\n");
        code = EXIT_FAILED;
    }
    return code;
}

int sl_control_tap_main(const char *target,
                        const char *node,
                        unsigned long long limit,
                        const char *where)
{
    char path[108], req[8192];
    int code = find_socket(target, path, sizeof(path));

    if (code != 0) {
        return code;
    }
    int len =
        snprintf(req, sizeof(req), "tap %s\t%llu\t%s\n", node, limit, where != NULL ? where : "");
    if (len < 0 || (size_t)len >= sizeof(req)) {
        fprintf(stderr, "sluice: tap: the node name and --where are too long\n");
        return EXIT_USAGE;
    }
    /* A pipeline still opening its nodes: asked again for up to 10 s. */
    for (int i = 0; (code = tap_once(path, req, (size_t)len)) == -1 && i < 100; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (code == -1) {
        fprintf(stderr, "sluice: tap: the pipeline is still starting after 10 s\n");
        code = EXIT_FAILED;
    }
    return code;
}
