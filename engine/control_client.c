/* SPDX-License-Identifier: MIT */
/* `sluice top` and `sluice tap`: clients of a running pipeline's control
 * socket (control.c). Both find it from the pipeline file (its
 * engine.control, or the automatic path of that file) or take the socket
 * itself. top asks for stats once a second and draws a table of rates,
 * queues, workers, drops and sink p99; tap prints a node's records as
 * JSON lines until its limit, the pipeline's end or a signal. */
#include "clock.h"
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

/* Asking again after an answer that may change (see passing): the first
 * wait, doubled each time up to RETRY_MAX_NS, for RETRY_FOR_NS at most. */
#define RETRY_FIRST_NS (100 * 1000 * 1000ull)
#define RETRY_MAX_NS   (1000 * 1000 * 1000ull)
#define RETRY_FOR_NS   (10 * 1000 * 1000 * 1000ull)
/* How long top waits for a stats reply (the loop thread builds it from
 * atomics at once) before it asks again. */
#define ANSWER_S 2

struct retry {
    uint64_t since_ns; /* the first of the passing answers in a row; 0: none */
    uint64_t wait_ns;
};

/* After an answer that may change: false once asking again has gone on
 * for RETRY_FOR_NS; else waits the next step of the backoff and returns
 * true. */
static bool retry_again(struct retry *r)
{
    uint64_t now = sl_now_ns();

    if (r->since_ns == 0) {
        r->since_ns = now;
        r->wait_ns = RETRY_FIRST_NS;
    } else if (now - r->since_ns >= RETRY_FOR_NS) {
        return false;
    } else {
        r->wait_ns = r->wait_ns * 2 < RETRY_MAX_NS ? r->wait_ns * 2 : RETRY_MAX_NS;
    }
    struct timespec ts = {(time_t)(r->wait_ns / 1000000000ull), (long)(r->wait_ns % 1000000000ull)};
    nanosleep(&ts, NULL);
    return true;
}

/* Whether the server's line ("#error ...\n") may change if asked again:
 * the pipeline still starting, the socket's places all taken (a client
 * that sends nothing is closed within 10 s, taps end), the server out of
 * memory. Any other will not (an unknown request: not a sluice that
 * speaks this protocol; a node that does not exist; a bad --where). */
static bool passing(const char *line)
{
    static const char *const passing_errors[] = {SL_CONTROL_STARTING, SL_CONTROL_FULL,
                                                 SL_CONTROL_NOMEM};

    for (size_t i = 0; i < sizeof(passing_errors) / sizeof(passing_errors[0]); i++) {
        if (strncmp(line, passing_errors[i], strlen(passing_errors[i])) == 0) {
            return true;
        }
    }
    return false;
}

/* The text of a server line: without "#error " and the newline. */
static int message_len(const char *line, size_t len, const char **msg)
{
    const char *nl = memchr(line, '\n', len);

    *msg = strncmp(line, "#error ", 7) == 0 ? line + 7 : line + (len > 0 && line[0] == '#');
    return (int)((nl != NULL ? nl : line + len) - *msg);
}

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

/* A connected socket, or -1 (errno set). A connect that the listener
 * does not take (its backlog full: a stopped or ending sluice) gives up
 * after 2 s: Linux bounds a unix socket's connect by SO_SNDTIMEO. */
static int dial(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct timeval tv = {.tv_sec = 2};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    if (fd >= 0) {
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
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

enum answer {
    ANSWERED,   /* the whole reply is in buf */
    GONE,       /* no socket, or nobody listening on it (errno set) */
    UNANSWERED, /* taken, but closed, reset or silent before a whole reply:
                   a pipeline finishing (its loop stopped, its socket not
                   yet closed) */
    FAILED,     /* out of memory */
};

/* Reads the whole reply of one request into buf. */
static enum answer ask(const char *path, const char *request, struct sl_buf *buf)
{
    char chunk[65536];
    struct timeval tv = {.tv_sec = ANSWER_S};
    int fd = dial(path);

    if (fd < 0) {
        return GONE;
    }
    sl_buf_reset(buf);
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    enum answer a = send_all(fd, request, strlen(request)) == 0 ? ANSWERED : UNANSWERED;
    ssize_t n = 0;
    while (a == ANSWERED && (n = recv(fd, chunk, sizeof(chunk), 0)) > 0) {
        a = sl_buf_append(buf, chunk, (size_t)n) == 0 ? ANSWERED : FAILED;
    }
    close(fd);
    /* A reply is one line, and the server closes after it. */
    if (a == ANSWERED && (n < 0 || buf->len == 0 || buf->data[buf->len - 1] != '\n')) {
        a = UNANSWERED;
    }
    return a;
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
    struct retry retry = {0};
    int drawn = 0;
    int code = find_socket(target, path, sizeof(path));

    if (rows == NULL) {
        fprintf(stderr, "sluice: out of memory\n");
        return EXIT_FAILED;
    }
    while (code == 0 && (iterations <= 0 || drawn < iterations)) {
        if (drawn > 0 && retry.since_ns == 0) {
            struct timespec ts = {1, 0};
            nanosleep(&ts, NULL);
        }
        enum answer a = ask(path, "stats\n", &reply);
        if (a == GONE) {
            if (drawn == 0) {
                fprintf(stderr, "sluice: no running pipeline answers on %s: %s\n", path,
                        strerror(errno));
                code = EXIT_FAILED;
            } else {
                printf("sluice top: the pipeline ended\n");
            }
            break;
        }
        if (a == FAILED) {
            fprintf(stderr, "sluice: out of memory\n");
            code = EXIT_FAILED;
            break;
        }
        const char *msg = "the pipeline does not answer";
        int msg_len = (int)strlen(msg);
        if (a == ANSWERED && reply.data[0] == '#') {
            msg_len = message_len(reply.data, reply.len, &msg);
            if (!passing(reply.data)) {
                fprintf(stderr, "sluice: %s: %.*s\n", path, msg_len, msg);
                code = EXIT_FAILED;
                break;
            }
        }
        if (a == UNANSWERED || reply.data[0] == '#') {
            if (!retry_again(&retry)) {
                fprintf(stderr, "sluice: %s: %.*s (asked again for %llu s)\n", path, msg_len, msg,
                        (unsigned long long)(RETRY_FOR_NS / 1000000000ull));
                code = EXIT_FAILED;
            }
            continue;
        }
        retry = (struct retry){0};
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
        drawn++;
    }
    sl_buf_release(&reply);
    sl_free(rows);
    return code;
}

/* ---- tap ---- */

/* One tap connection: streams records to stdout. Returns an exit code, or
 * -1 when the server's first line may change (passing: nothing printed,
 * ask again). */
static int tap_once(const char *path, const char *req, size_t req_len, char *why, size_t why_cap)
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
                if (head && passing(line.data)) {
                    const char *msg;
                    int msg_len = message_len(line.data, line.len, &msg);
                    snprintf(why, why_cap, "%.*s", msg_len, msg);
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
    /* A pipeline still opening its nodes, or no place free: asked again
     * with a backoff for up to RETRY_FOR_NS. */
    struct retry retry = {0};
    char why[256] = "";
    while ((code = tap_once(path, req, (size_t)len, why, sizeof(why))) == -1 &&
           retry_again(&retry)) {
    }
    if (code == -1) {
        fprintf(stderr, "sluice: tap: %s (asked again for %llu s)\n", why,
                (unsigned long long)(RETRY_FOR_NS / 1000000000ull));
        code = EXIT_FAILED;
    }
    return code;
}
