/* SPDX-License-Identifier: MIT */
/* librdkafka configuration for the Kafka source and sink (kafka_conf.h):
 * owned keys, located checks of the `librdkafka:` map, memory sizing, and
 * librdkafka's log lines routed to sluice's log. Thread: main for check and
 * build; the log callback runs on librdkafka's threads. */
#include "connectors/kafka/kafka_conf.h"

#include "clock.h"
#include "log.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ERRSTR_MAX         512
#define HINT_MAX_LEN       64
#define LOG_FIRST          20            /* librdkafka log lines always shown */
#define LOG_INTERVAL_NS    1000000000ull /* then at most one per second */
#define QUEUE_KBYTES_MAX_C 2097151ull    /* queued.max.messages.kbytes range */
#define QUEUE_KBYTES_MAX_P 2147483647ull /* queue.buffering.max.kbytes range */
#define FETCH_MAX_DEFAULT  52428800ull   /* librdkafka's fetch.max.bytes */
#define PART_MAX_DEFAULT   1048576ull    /* librdkafka's max.partition.fetch.bytes */
#define RECV_OVERHEAD      512ull        /* receive.message.max.bytes >= fetch.max.bytes + this */
#define TOPIC_MAX          249           /* Kafka's limit on topic names */
#define IDEMP_MAX_INFLIGHT 5             /* requests in flight an idempotent producer may have */

struct owned {
    const char *key;
    const char *hint;
};

#define BROKERS_HINT "use the option 'brokers'"
#define COMMIT_HINT  "sluice commits offsets itself after the sinks commit"
#define PRODUCE_HINT "sluice always uses an idempotent producer with acks=all"

/* Aliases are listed too: librdkafka accepts both names for one property. */
static const struct owned consumer_owned[] = {
    {"bootstrap.servers", BROKERS_HINT},
    {"metadata.broker.list", BROKERS_HINT},
    {"group.id", "use the option 'group'"},
    {"enable.auto.commit", COMMIT_HINT},
    {"auto.commit.enable", COMMIT_HINT},
    {"enable.auto.offset.store", COMMIT_HINT},
    {"auto.offset.reset", "use the options 'start' and 'on_offset_out_of_range'"},
    {"enable.partition.eof", "use the option 'exit_on_eof'"},
    {NULL, NULL},
};

static const struct owned producer_owned[] = {
    {"bootstrap.servers", BROKERS_HINT},
    {"metadata.broker.list", BROKERS_HINT},
    {"enable.idempotence", PRODUCE_HINT},
    {"acks", PRODUCE_HINT},
    {"request.required.acks", PRODUCE_HINT},
    {"compression.type", "use the option 'compression'"},
    {"compression.codec", "use the option 'compression'"},
    /* A record is acknowledged on its delivery report: all are needed. */
    {"delivery.report.only.error", "sluice acknowledges records on their delivery reports"},
    {"transactional.id", "the kafka sink does not use transactions"},
    {NULL, NULL},
};

/* Sized keys and their aliases: a user value under either name wins. */
static const char *const fetch_part_names[] = {"max.partition.fetch.bytes",
                                               "fetch.message.max.bytes", NULL};

const char *sl_kafka_conf_owned(enum sl_kafka_role role, const char *key)
{
    const struct owned *t = role == SL_KAFKA_CONSUMER ? consumer_owned : producer_owned;

    for (size_t i = 0; t[i].key != NULL; i++) {
        if (strcmp(t[i].key, key) == 0) {
            return t[i].hint;
        }
    }
    return NULL;
}

static int user_sets(const struct sluice_map *user, const char *key)
{
    for (size_t i = 0; user != NULL && i < user->n; i++) {
        if (strcmp(user->keys[i], key) == 0) {
            return 1;
        }
    }
    return 0;
}

static int user_sets_any(const struct sluice_map *user, const char *const *names)
{
    for (size_t i = 0; names[i] != NULL; i++) {
        if (user_sets(user, names[i])) {
            return 1;
        }
    }
    return 0;
}

/* librdkafka's messages may end with a newline. */
static const char *trim(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '.')) {
        s[--n] = '\0';
    }
    return s;
}

/* Values of these keys are never echoed in messages. */
static int sensitive(const char *key)
{
    return strstr(key, "password") != NULL || strstr(key, "secret") != NULL ||
           strstr(key, "oauthbearer.config") != NULL || strstr(key, ".pem") != NULL;
}

/* ==== Nearest-name hint for unknown keys ==== */

static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    int row[HINT_MAX_LEN + 1];

    if (la > HINT_MAX_LEN || lb > HINT_MAX_LEN) {
        return 99;
    }
    for (size_t j = 0; j <= lb; j++) {
        row[j] = (int)j;
    }
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];

        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);

            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            best = up + 1 < best ? up + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static void nearest_in(const char **dump, size_t n, const char *key, const char **best, int *dist)
{
    for (size_t i = 0; i + 1 < n; i += 2) {
        int d = distance(key, dump[i]);

        if (d < *dist) {
            *dist = d;
            *best = dump[i];
        }
    }
}

/* Formats " (did you mean 'x'?)" for an unknown key, or "". */
static void unknown_hint(const char *key, char *buf, size_t len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_conf_t *tconf = rd_kafka_topic_conf_new();
    const char *best = NULL;
    int dist = strlen(key) <= 6 ? 2 : 4; /* close enough to be a typo */
    size_t n = 0, tn = 0;

    buf[0] = '\0';
    if (conf != NULL && tconf != NULL) {
        const char **dump = rd_kafka_conf_dump(conf, &n);
        const char **tdump = rd_kafka_topic_conf_dump(tconf, &tn);

        nearest_in(dump, n, key, &best, &dist);
        nearest_in(tdump, tn, key, &best, &dist);
        if (best != NULL) {
            snprintf(buf, len, " (did you mean '%s'?)", best);
        }
        rd_kafka_conf_dump_free(dump, n);
        rd_kafka_conf_dump_free(tdump, tn);
    }
    if (conf != NULL) {
        rd_kafka_conf_destroy(conf);
    }
    if (tconf != NULL) {
        rd_kafka_topic_conf_destroy(tconf);
    }
}

/* Whether librdkafka's message already shows the value: `"v"` or ` v `. */
static bool names_value(const char *errstr, const char *value)
{
    size_t n = strlen(value);

    for (const char *p = strstr(errstr, value); p != NULL; p = strstr(p + 1, value)) {
        char before = p == errstr ? ' ' : p[-1], after = p[n];

        if ((before == '"' && after == '"') || (before == ' ' && (after == ' ' || after == '\0'))) {
            return true;
        }
    }
    return false;
}

/* Why librdkafka refused key=value, into msg. */
static void refusal(rd_kafka_conf_res_t res,
                    const char *key,
                    const char *value,
                    char *errstr,
                    char *msg,
                    size_t len)
{
    char hint[96];

    if (res == RD_KAFKA_CONF_UNKNOWN) {
        unknown_hint(key, hint, sizeof(hint));
        snprintf(msg, len, "unknown librdkafka property '%s'%s", key, hint);
    } else if (sensitive(key)) {
        snprintf(msg, len, "invalid value for librdkafka property '%s'", key);
    } else if (!names_value(errstr, value)) {
        snprintf(msg, len, "%s: got '%s'", trim(errstr), value);
    } else {
        snprintf(msg, len, "%s", trim(errstr));
    }
}

/* ==== Check ==== */

/* Reports msg at the key of the node's librdkafka map. */
static int
key_error(const struct sl_conf_node *cn, const char *key, const char *msg, struct sl_err *err)
{
    char sub[SL_ERR_PATH_MAX], path[SL_ERR_PATH_MAX];
    const char *q = strchr(key, '.') != NULL ? "\"" : "";
    const char *file = cn->file;
    int line = cn->line, col = cn->col;

    snprintf(sub, sizeof(sub), "librdkafka.%s", key);
    if (sl_conf_locate(cn, sub, &line, &col) == 0 && line == 0) {
        file = "--set";
    }
    if (cn->kind == SLUICE_KIND_SOURCE) {
        snprintf(path, sizeof(path), "sources.%s.librdkafka.%s%s%s", cn->name, q, key, q);
    } else if (cn->ninputs == 0) {
        /* The only sink without inputs is the top-level dead_letter. */
        snprintf(path, sizeof(path), "dead_letter.librdkafka.%s%s%s", q, key, q);
    } else {
        snprintf(path, sizeof(path), "sinks.%s.librdkafka.%s%s%s", cn->name, q, key, q);
    }
    return sl_err_set_at(err, file, line, col, path, "%s", msg);
}

/* Reads a property of conf as text ("" if unreadable). */
static const char *conf_text(const rd_kafka_conf_t *conf, const char *key, char *buf, size_t len)
{
    if (rd_kafka_conf_get(conf, key, buf, &len) != RD_KAFKA_CONF_OK) {
        buf[0] = '\0';
    }
    return buf;
}

/* The name under which user set one of names (a property and its alias),
 * or NULL. */
static const char *user_name(const struct sluice_map *user, const char *const *names)
{
    for (size_t i = 0; user != NULL && i < user->n; i++) {
        for (size_t j = 0; names[j] != NULL; j++) {
            if (strcmp(user->keys[i], names[j]) == 0) {
                return names[j];
            }
        }
    }
    return NULL;
}

/* What rd_kafka_new refuses for an idempotent producer (rd_kafka_conf_finalize
 * in librdkafka), checked on the scratch conf holding the user's keys. */
static int check_idempotence(const struct sl_conf_node *cn,
                             const struct sluice_map *user,
                             const rd_kafka_conf_t *scratch,
                             struct sl_err *err)
{
    static const char *const inflight[] = {"max.in.flight.requests.per.connection", "max.in.flight",
                                           NULL};
    static const char *const retries[] = {"retries", "message.send.max.retries", NULL};
    static const char *const queuing[] = {"queuing.strategy", NULL};
    char msg[SL_ERR_MSG_MAX], value[64];
    const char *key;

    if ((key = user_name(user, inflight)) != NULL &&
        strtoull(conf_text(scratch, inflight[0], value, sizeof(value)), NULL, 10) >
            IDEMP_MAX_INFLIGHT) {
        snprintf(msg, sizeof(msg),
                 "must be at most %d: the sink's producer is idempotent (enable.idempotence), got "
                 "'%s'",
                 IDEMP_MAX_INFLIGHT, value);
        return key_error(cn, key, msg, err);
    }
    if ((key = user_name(user, retries)) != NULL &&
        strcmp(conf_text(scratch, retries[0], value, sizeof(value)), "0") == 0) {
        snprintf(msg, sizeof(msg),
                 "must be at least 1: the sink's producer is idempotent (enable.idempotence), got "
                 "'0'");
        return key_error(cn, key, msg, err);
    }
    if ((key = user_name(user, queuing)) != NULL &&
        strcmp(conf_text(scratch, queuing[0], value, sizeof(value)), "fifo") != 0) {
        snprintf(msg, sizeof(msg),
                 "must be fifo: the sink's producer is idempotent (enable.idempotence), got '%s'",
                 value);
        return key_error(cn, key, msg, err);
    }
    return 0;
}

int sl_kafka_conf_check(const struct sl_conf_node *cn,
                        enum sl_kafka_role role,
                        const struct sluice_map *user,
                        struct sl_err *err)
{
    rd_kafka_conf_t *scratch;
    char msg[SL_ERR_MSG_MAX];
    int rc = 0;

    if (user == NULL || user->n == 0) {
        return 0;
    }
    scratch = rd_kafka_conf_new();
    if (scratch == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < user->n && rc == 0; i++) {
        const char *key = user->keys[i], *hint = sl_kafka_conf_owned(role, key);
        char errstr[ERRSTR_MAX] = "";
        rd_kafka_conf_res_t res;

        if (hint != NULL) {
            snprintf(msg, sizeof(msg), "'%s' is set by sluice: %s", key, hint);
            rc = key_error(cn, key, msg, err);
            break;
        }
        /* Setting it loads the plugins (I/O, code): checked at run. */
        if (strcmp(key, "plugin.library.paths") == 0) {
            continue;
        }
        res = rd_kafka_conf_set(scratch, key, user->values[i], errstr, sizeof(errstr));
        if (res != RD_KAFKA_CONF_OK) {
            refusal(res, key, user->values[i], errstr, msg, sizeof(msg));
            rc = key_error(cn, key, msg, err);
        }
    }
    if (rc == 0 && role == SL_KAFKA_PRODUCER) {
        rc = check_idempotence(cn, user, scratch, err);
    }
    rd_kafka_conf_destroy(scratch);
    return rc == 0 ? 0 : SL_ECONFIG;
}

/* ==== Options ==== */

static bool topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

const char *sl_kafka_topic_invalid(const char *name, size_t len)
{
    if (len == 0) {
        return "empty";
    }
    if (len > TOPIC_MAX) {
        return "longer than 249 characters";
    }
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.')) {
        return "'.' and '..' are not allowed";
    }
    for (size_t i = 0; i < len; i++) {
        if (!topic_char(name[i])) {
            return "only letters, digits, '.', '_' and '-' are allowed";
        }
    }
    return NULL;
}

/* Checks one broker entry (len bytes at s, trimmed): [proto://]host[:port]. */
static const char *broker_invalid(const char *s, size_t len, char *buf, size_t buflen)
{
    static const char *const protos[] = {"plaintext", "ssl", "sasl_plaintext", "sasl_ssl", NULL};
    const char *end = s + len, *host = s, *port = NULL, *sep;
    size_t i = 0;

    for (sep = s; sep + 3 <= end && memcmp(sep, "://", 3) != 0; sep++) {
    }
    if (sep + 3 <= end) {
        while (protos[i] != NULL && (strlen(protos[i]) != (size_t)(sep - s) ||
                                     strncasecmp(protos[i], s, (size_t)(sep - s)) != 0)) {
            i++;
        }
        if (protos[i] == NULL) {
            snprintf(buf, buflen,
                     "unknown protocol '%.*s' in '%.*s' (plaintext, ssl, "
                     "sasl_plaintext or sasl_ssl)",
                     (int)(sep - s), s, (int)len, s);
            return buf;
        }
        host = sep + 3;
    }
    if (host < end && *host == '[') {
        const char *close = memchr(host, ']', (size_t)(end - host));

        port = close != NULL && close + 1 < end && close[1] == ':' ? close + 2 : NULL;
        if (close == NULL || (close + 1 < end && port == NULL)) {
            snprintf(buf, buflen, "expected [IPv6]:port, got '%.*s'", (int)len, s);
            return buf;
        }
    } else {
        const char *colon = memchr(host, ':', (size_t)(end - host));

        if (colon != NULL && memchr(colon + 1, ':', (size_t)(end - colon - 1)) != NULL) {
            snprintf(buf, buflen, "an IPv6 address goes in brackets, [::1]:9092, got '%.*s'",
                     (int)len, s);
            return buf;
        }
        port = colon != NULL ? colon + 1 : NULL;
    }
    if (host == end || *host == ':') {
        snprintf(buf, buflen, "expected host:port, got '%.*s' (no host)", (int)len, s);
        return buf;
    }
    if (port != NULL) {
        size_t digits = strspn(port, "0123456789");
        long v = digits > 0 && digits <= 5 ? strtol(port, NULL, 10) : 0;

        if (port + digits != end || v < 1 || v > 65535) {
            snprintf(buf, buflen,
                     "invalid port '%.*s' in '%.*s': expected a number from 1 to 65535",
                     (int)(end - port), port, (int)len, s);
            return buf;
        }
    }
    return NULL;
}

const char *sl_kafka_brokers_invalid(const char *brokers, char *buf, size_t len)
{
    const char *p = brokers;
    size_t entries = 0;

    while (*p != '\0') {
        size_t n;

        p += strspn(p, " ,");
        n = strcspn(p, ", ");
        if (n > 0) {
            const char *why = broker_invalid(p, n, buf, len);

            if (why != NULL) {
                return why;
            }
            entries++;
        }
        p += n;
    }
    if (entries == 0) {
        snprintf(buf, len, "expected host:port[,host:port...], got an empty list");
        return buf;
    }
    return NULL;
}

int sl_kafka_conf_check_options(const struct sl_conf_node *cn,
                                const char *brokers,
                                const struct sluice_list *topics,
                                const char *group,
                                struct sl_err *err)
{
    char buf[SL_ERR_MSG_MAX];
    const char *why = sl_kafka_brokers_invalid(brokers, buf, sizeof(buf));

    if (why != NULL) {
        return sl_conf_node_err(cn, "brokers", err, "%s", why);
    }
    if (topics == NULL) {
        return 0;
    }
    if (topics->n == 0) {
        return sl_conf_node_err(cn, "topics", err,
                                "expected at least one topic, got an empty list");
    }
    for (size_t i = 0; i < topics->n; i++) {
        char at[32];

        snprintf(at, sizeof(at), "topics[%zu]", i);
        if ((why = sl_kafka_topic_invalid(topics->items[i], strlen(topics->items[i]))) != NULL) {
            return sl_conf_node_err(cn, at, err, "invalid topic name '%.200s': %s",
                                    topics->items[i], why);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(topics->items[j], topics->items[i]) == 0) {
                return sl_conf_node_err(cn, at, err, "topic '%s' is listed twice",
                                        topics->items[i]);
            }
        }
    }
    if (group != NULL && group[0] == '\0') {
        return sl_conf_node_err(cn, "group", err,
                                "expected a consumer group name, got an empty "
                                "value");
    }
    return 0;
}

/* ==== Sizing ==== */

static uint64_t clamp(uint64_t v, uint64_t lo, uint64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

void sl_kafka_conf_plan(enum sl_kafka_role role,
                        uint64_t memory_limit,
                        uint64_t message_max_bytes,
                        struct sl_kafka_sizes *ret_sizes)
{
    uint64_t queue_bytes = memory_limit / 4;

    memset(ret_sizes, 0, sizeof(*ret_sizes));
    if (role == SL_KAFKA_PRODUCER) {
        ret_sizes->producer_max_kbytes = clamp(queue_bytes / 1024, 1, QUEUE_KBYTES_MAX_P);
        return;
    }
    ret_sizes->queued_max_kbytes = clamp(queue_bytes / 1024, 1, QUEUE_KBYTES_MAX_C);
    /* librdkafka refuses a fetch.max.bytes below message.max.bytes. */
    ret_sizes->fetch_max_bytes =
        clamp(memory_limit / 16, message_max_bytes,
              FETCH_MAX_DEFAULT > message_max_bytes ? FETCH_MAX_DEFAULT : message_max_bytes);
    ret_sizes->partition_max_bytes = clamp(ret_sizes->fetch_max_bytes, 1, PART_MAX_DEFAULT);
}

/* Reads an integer property of conf (0 if unreadable). */
static uint64_t conf_uint(const rd_kafka_conf_t *conf, const char *key)
{
    char buf[32];
    size_t len = sizeof(buf);

    if (rd_kafka_conf_get(conf, key, buf, &len) != RD_KAFKA_CONF_OK) {
        return 0;
    }
    return strtoull(buf, NULL, 10);
}

static int set_uint(rd_kafka_conf_t *conf, const char *key, uint64_t v, char *errbuf, size_t len)
{
    char text[32], errstr[ERRSTR_MAX] = "";

    snprintf(text, sizeof(text), "%" PRIu64, v);
    if (rd_kafka_conf_set(conf, key, text, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        snprintf(errbuf, len, "librdkafka.%s: %s", key, trim(errstr));
        return SL_ECONFIG;
    }
    return 0;
}

/* Applies the plan to what the user left unset. */
static int size_buffers(rd_kafka_conf_t *conf,
                        enum sl_kafka_role role,
                        const struct sluice_map *user,
                        uint64_t memory_limit,
                        struct sl_kafka_sizes *sizes,
                        char *errbuf,
                        size_t len)
{
    struct sl_kafka_sizes plan;
    uint64_t fetch;
    int rc = 0;

    sl_kafka_conf_plan(role, memory_limit, conf_uint(conf, "message.max.bytes"), &plan);
    memset(sizes, 0, sizeof(*sizes));
    if (role == SL_KAFKA_PRODUCER) {
        if (!user_sets(user, "queue.buffering.max.kbytes")) {
            sizes->producer_max_kbytes = plan.producer_max_kbytes;
            rc =
                set_uint(conf, "queue.buffering.max.kbytes", plan.producer_max_kbytes, errbuf, len);
        }
        return rc;
    }
    if (!user_sets(user, "queued.max.messages.kbytes")) {
        sizes->queued_max_kbytes = plan.queued_max_kbytes;
        rc = set_uint(conf, "queued.max.messages.kbytes", plan.queued_max_kbytes, errbuf, len);
    }
    if (rc == 0 && !user_sets(user, "fetch.max.bytes")) {
        fetch = plan.fetch_max_bytes;
        /* A user's receive.message.max.bytes must still hold a response. */
        if (user_sets(user, "receive.message.max.bytes")) {
            uint64_t recv = conf_uint(conf, "receive.message.max.bytes");
            fetch =
                recv > RECV_OVERHEAD && fetch > recv - RECV_OVERHEAD ? recv - RECV_OVERHEAD : fetch;
        }
        sizes->fetch_max_bytes = fetch;
        rc = set_uint(conf, "fetch.max.bytes", fetch, errbuf, len);
    }
    if (rc == 0 && !user_sets_any(user, fetch_part_names)) {
        fetch = conf_uint(conf, "fetch.max.bytes");
        sizes->partition_max_bytes = clamp(plan.partition_max_bytes, 1, fetch ? fetch : 1);
        rc = set_uint(conf, "max.partition.fetch.bytes", sizes->partition_max_bytes, errbuf, len);
    }
    return rc;
}

/* ==== Build ==== */

/* Whether a librdkafka line may be shown now: the first LOG_FIRST all, then
 * at most one per LOG_INTERVAL_NS, for log lines and error events together.
 * Thread: librdkafka's and the pollers'. */
static bool log_allowed(void)
{
    static atomic_uint_fast64_t count;
    static atomic_uint_fast64_t last_ns;
    uint64_t now = sl_now_ns(), last;

    /* Relaxed: a rate limit, no data is published through these. */
    if (atomic_fetch_add_explicit(&count, 1, memory_order_relaxed) < LOG_FIRST) {
        atomic_store_explicit(&last_ns, now, memory_order_relaxed);
        return true;
    }
    last = atomic_load_explicit(&last_ns, memory_order_relaxed);
    return now - last >= LOG_INTERVAL_NS &&
           atomic_compare_exchange_strong_explicit(&last_ns, &last, now, memory_order_relaxed,
                                                   memory_order_relaxed);
}

/* librdkafka's log lines at their syslog level: 0-3 errors, 4 warnings, 5-6
 * info, 7 debug (only there when the user set `debug`, and then never rate
 * limited). A broker failure is logged as "FAIL" and raised as an error
 * event with the same text (rd_kafka_broker_set_error): the event is shown
 * (error_event), the FAIL line is not, so each failure is one line.
 * Thread: librdkafka's. */
static void log_line(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (level >= 7) {
        sl_log_debug_asked("kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
        return;
    }
    if (strcmp(fac, "FAIL") == 0 || !log_allowed()) {
        return;
    }
    if (level <= 3) {
        sl_log_error("kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
    } else if (level == 4) {
        sl_log_warn("kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
    } else {
        sl_log_info("kafka %s: %s: %s", rd_kafka_name(rk), fac, buf);
    }
}

/* librdkafka's error events (broker down, authentication failed...): without
 * this callback librdkafka logs each as an "ERROR" line after its "FAIL"
 * line. Most are transient and retried by librdkafka: warnings; a fatal one
 * is an error (the source and sink see it through rd_kafka_fatal_error).
 * Thread: the one polling rk. */
void sl_kafka_conf_log_error(rd_kafka_t *rk, int code, const char *reason)
{
    if (code == RD_KAFKA_RESP_ERR__FATAL) {
        sl_log_error("kafka %s: %s", rd_kafka_name(rk), reason);
    } else if (log_allowed()) {
        sl_log_warn("kafka %s: %s", rd_kafka_name(rk), reason);
    }
}

static void error_event(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    (void)opaque;
    sl_kafka_conf_log_error(rk, code, reason);
}

static int apply_user(rd_kafka_conf_t *conf,
                      enum sl_kafka_role role,
                      const struct sluice_map *user,
                      char *errbuf,
                      size_t len)
{
    for (size_t i = 0; user != NULL && i < user->n; i++) {
        const char *key = user->keys[i], *hint = sl_kafka_conf_owned(role, key);
        char errstr[ERRSTR_MAX] = "", msg[SL_ERR_MSG_MAX];
        rd_kafka_conf_res_t res;

        if (hint != NULL) {
            snprintf(errbuf, len, "librdkafka.%s: '%s' is set by sluice: %s", key, key, hint);
            return SL_ECONFIG;
        }
        res = rd_kafka_conf_set(conf, key, user->values[i], errstr, sizeof(errstr));
        if (res != RD_KAFKA_CONF_OK) {
            refusal(res, key, user->values[i], errstr, msg, sizeof(msg));
            snprintf(errbuf, len, "librdkafka.%s: %s", key, msg);
            return SL_ECONFIG;
        }
    }
    return 0;
}

int sl_kafka_conf_build(enum sl_kafka_role role,
                        const char *brokers,
                        const struct sluice_map *user,
                        uint64_t memory_limit,
                        rd_kafka_conf_t **ret_conf,
                        struct sl_kafka_sizes *ret_sizes,
                        char *errbuf,
                        size_t errbuf_len)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct sl_kafka_sizes sizes;
    char errstr[ERRSTR_MAX] = "";
    int rc = 0;

    if (conf == NULL) {
        snprintf(errbuf, errbuf_len, "out of memory");
        return SL_ENOMEM;
    }
    if (!user_sets(user, "client.id") && rd_kafka_conf_set(conf, "client.id", "sluice", errstr,
                                                           sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        rc = SL_ENOMEM;
        snprintf(errbuf, errbuf_len, "client.id: %s", trim(errstr));
    }
    if (rc == 0) {
        rc = apply_user(conf, role, user, errbuf, errbuf_len);
    }
    if (rc == 0 && rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
                       RD_KAFKA_CONF_OK) {
        rc = SL_ECONFIG;
        snprintf(errbuf, errbuf_len, "brokers: %s", trim(errstr));
    }
    if (rc == 0) {
        rc = size_buffers(conf, role, user, memory_limit, &sizes, errbuf, errbuf_len);
    }
    if (rc != 0) {
        rd_kafka_conf_destroy(conf);
        return rc;
    }
    rd_kafka_conf_set_log_cb(conf, log_line);
    rd_kafka_conf_set_error_cb(conf, error_event);
    if (ret_sizes != NULL) {
        *ret_sizes = sizes;
    }
    *ret_conf = conf;
    return 0;
}
