/* SPDX-License-Identifier: MIT */
/* `kafka` sink: each record becomes one message (compact JSON of its fields)
 * on a literal topic or one chosen per record by `topic_expr`, keyed by the
 * optional `key` expression, through an idempotent producer with acks=all.
 * A write produces every record of its batches, then serves delivery
 * reports until each message has one: only then is the write acknowledged
 * upstream (at least once). A message that librdkafka finally fails to
 * deliver (after its own retries, within message.timeout.ms, 5 min by
 * default; so also when the whole cluster is unreachable that long) is
 * dead-lettered with the reason, never re-produced with the others; when it
 * was sent but never confirmed, the reason says it was possibly delivered.
 * A fatal (idempotence) error fails the pipeline. Thread: one worker at a time runs
 * write(); delivery reports run inside it (rd_kafka_flush/poll there). */
#include "connectors/kafka/kafka_conf.h"
#include "expr.h"
#include "json.h"
#include "mem.h"
#include "sink.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <string.h>

#define POLL_MS        100  /* one wait for delivery reports; checks for failures between */
#define CLOSE_FLUSH_MS 5000 /* close: longest wait for messages still queued */
#define TOPIC_MAX      249  /* Kafka's limit on topic names */
#define REASON_MAX     300

struct kafka_sink_conf {
    const char *brokers;
    const char *topic;
    struct sluice_expr *topic_expr;
    struct sluice_expr *key;
    int format;
    int compression;
    struct sluice_map librdkafka;
    struct sl_sink_batching batch;
};

static const char *const formats[] = {"json", NULL};
static const char *const compressions[] = {"none", "gzip", "snappy", "lz4", "zstd", NULL};

/* clang-format off */
static const struct sluice_option kafka_sink_options[] = {
    SLUICE_OPT_ROW(struct kafka_sink_conf, brokers, SLUICE_OPT_STR, NULL, 0, 0, NULL,
                   SLUICE_OPT_REQUIRED, "Bootstrap brokers, comma-separated host:port."),
    SLUICE_OPT_ROW(struct kafka_sink_conf, topic, SLUICE_OPT_STR, NULL, 0, 0, NULL, 0,
                   "Topic to produce to (or topic_expr)."),
    SLUICE_OPT_ROW(struct kafka_sink_conf, topic_expr, SLUICE_OPT_EXPR, NULL, 0, 0, NULL, 0,
                   "Topic per record; a non-string result dead-letters the record."),
    SLUICE_OPT_ROW(struct kafka_sink_conf, key, SLUICE_OPT_EXPR, NULL, 0, 0, NULL, 0,
                   "Message key; null = none, non-strings as to_string() writes them."),
    SLUICE_OPT_ROW(struct kafka_sink_conf, format, SLUICE_OPT_ENUM, "json", 0, 0, formats, 0,
                   "json: the record's fields as one compact object per message."),
    SLUICE_OPT_ROW(struct kafka_sink_conf, compression, SLUICE_OPT_ENUM, "lz4", 0, 0,
                   compressions, 0, "none, gzip, snappy, lz4 or zstd."),
    SLUICE_OPT_ROW(struct kafka_sink_conf, librdkafka, SLUICE_OPT_MAP, NULL, 0, 0, NULL, 0,
                   "librdkafka properties, verbatim (values as text)."),
    SL_SINK_BATCH_ROWS(struct kafka_sink_conf, batch, "8MiB"),
    {0},
};
/* clang-format on */

struct kafka_sink {
    struct sl_sink sink; /* first: sl_sink_of() */
    const struct kafka_sink_conf *conf;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt; /* the literal topic; NULL with topic_expr */
    struct sl_buf text;    /* one message's JSON */
    struct sl_buf name;    /* topic_expr's result, NUL-terminated */
    struct sl_arena eval;  /* expression results of the current write */
    /* The current write; the delivery report callback reads and updates
     * these on the writing thread. batches is NULL outside a write. */
    struct sl_batch *const *batches;
    size_t nbatches;
    uint64_t pending;      /* produced, no delivery report yet */
    bool fatal;            /* a report carried ERR__FATAL */
    int reject_rc;         /* SL_ENOMEM when a dead letter could not be made */
    char lost[REASON_MAX]; /* dead-letter store: why a dead letter was not delivered */
};

/* ==== Config check ==== */

static bool topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* Kafka's rule: 1..249 of [a-zA-Z0-9._-], not "." or "..". NULL if valid,
 * else why not. */
static const char *topic_invalid(const char *s, size_t len)
{
    if (len == 0) {
        return "empty";
    }
    if (len > TOPIC_MAX) {
        return "longer than 249 characters";
    }
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.')) {
        return "'.' and '..' are not allowed";
    }
    for (size_t i = 0; i < len; i++) {
        if (!topic_char(s[i])) {
            return "only letters, digits, '.', '_' and '-' are allowed";
        }
    }
    return NULL;
}

static int
option_error(const struct sl_conf_node *cn, const char *key, const char *msg, struct sl_err *err)
{
    char path[SL_ERR_PATH_MAX];
    const char *file = cn->file;
    int line = cn->line, col = cn->col;

    if (sl_conf_locate(cn, key, &line, &col) == 0 && line == 0) {
        file = "--set";
    }
    if (cn->ninputs == 0) {
        snprintf(path, sizeof(path), "dead_letter%s%s", key[0] ? "." : "", key);
    } else {
        snprintf(path, sizeof(path), "sinks.%s%s%s", cn->name, key[0] ? "." : "", key);
    }
    return sl_err_set_at(err, file, line, col, path, "%s", msg);
}

static int kafka_sink_check(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct kafka_sink_conf *conf = cn->conf;
    char msg[SL_ERR_MSG_MAX];
    const char *why;

    if (sl_kafka_conf_check_options(cn, conf->brokers, NULL, NULL, err) != 0) {
        return SL_ECONFIG;
    }
    if (conf->topic == NULL && conf->topic_expr == NULL) {
        return option_error(cn, "", "missing required key 'topic' (or 'topic_expr')", err);
    }
    if (conf->topic != NULL && conf->topic_expr != NULL) {
        return option_error(cn, "topic_expr", "give either 'topic' or 'topic_expr', not both", err);
    }
    if (conf->topic != NULL && (why = topic_invalid(conf->topic, strlen(conf->topic))) != NULL) {
        snprintf(msg, sizeof(msg), "invalid topic name '%.200s': %s", conf->topic, why);
        return option_error(cn, "topic", msg, err);
    }
    return sl_kafka_conf_check(cn, SL_KAFKA_PRODUCER, &conf->librdkafka, err);
}

/* ==== Delivery reports ==== */

/* The batch of this write that holds rec. */
static const struct sl_batch *batch_of(const struct kafka_sink *ks, const struct sl_record *rec)
{
    for (size_t b = 0; b < ks->nbatches; b++) {
        const struct sl_batch *batch = ks->batches[b];
        if (rec >= batch->recs && rec < batch->recs + batch->n) {
            return batch;
        }
    }
    return NULL;
}

static void reject(struct kafka_sink *ks,
                   const struct sl_batch *batch,
                   const struct sl_record *rec,
                   const char *reason)
{
    int rc;

    if (ks->sink.is_dead_letter) {
        /* A dead letter cannot become one: the write fails instead. */
        if (ks->lost[0] == '\0') {
            snprintf(ks->lost, sizeof(ks->lost), "%s", reason);
        }
        return;
    }
    rc = sl_sink_reject(&ks->sink, batch, rec, reason);
    if (rc != 0) {
        ks->reject_rc = rc;
    }
}

/* dr_msg_cb: runs inside rd_kafka_poll/flush on the writing thread. */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    struct kafka_sink *ks = opaque;
    const struct sl_record *rec = msg->_private;
    const struct sl_batch *batch;
    char reason[REASON_MAX];

    (void)rk;
    if (ks->batches == NULL) {
        return; /* a write given up after a pipeline failure: nothing to account */
    }
    ks->pending--;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return;
    }
    if (msg->err == RD_KAFKA_RESP_ERR__FATAL) {
        ks->fatal = true;
        return;
    }
    batch = batch_of(ks, rec);
    if (batch == NULL) {
        return;
    }
    /* A message sent whose answer never came (timed out, connection lost)
     * may well be in Kafka: say so, it must not be sent again blindly. */
    const char *how = rd_kafka_message_status(msg) == RD_KAFKA_MSG_STATUS_POSSIBLY_PERSISTED
                          ? "not confirmed (possibly delivered: Kafka may hold the message)"
                          : "failed";
    const char *topic = msg->rkt != NULL ? rd_kafka_topic_name(msg->rkt) : "?";
    if (msg->partition == RD_KAFKA_PARTITION_UA) {
        snprintf(reason, sizeof(reason), "kafka: delivery to %s %s: %s", topic, how,
                 rd_kafka_err2str(msg->err));
    } else {
        snprintf(reason, sizeof(reason), "kafka: delivery to %s [%d] %s: %s", topic,
                 (int)msg->partition, how, rd_kafka_err2str(msg->err));
    }
    reject(ks, batch, rec, reason);
}

/* Fails the pipeline when the producer hit a fatal (idempotence) error. */
static int check_fatal(struct kafka_sink *ks)
{
    char reason[256];
    struct sl_err err = {0};

    if (!ks->fatal && rd_kafka_fatal_error(ks->rk, NULL, 0) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        return 0;
    }
    if (rd_kafka_fatal_error(ks->rk, reason, sizeof(reason)) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(reason, sizeof(reason), "fatal error");
    }
    sl_err_set(&err, SL_EFATAL, "%s: kafka producer: %s", ks->sink.node->name, reason);
    sl_pipeline_fail(ks->sink.node->pl, &err);
    return SL_EFATAL;
}

static bool pipeline_failed(const struct kafka_sink *ks)
{
    return atomic_load(&ks->sink.node->pl->failed);
}

/* Serves delivery reports until every message of the write has one. Gives
 * up (SL_ECANCELED) only when the pipeline failed: those records are not
 * acknowledged, so nothing is lost. Blocks up to message.timeout.ms. */
static int wait_reports(struct kafka_sink *ks)
{
    while (ks->pending > 0) {
        /* flush, unlike poll, sends at once instead of waiting linger.ms. */
        (void)rd_kafka_flush(ks->rk, POLL_MS);
        if (check_fatal(ks) != 0) {
            return SL_EFATAL;
        }
        if (ks->pending > 0 && pipeline_failed(ks)) {
            return SL_ECANCELED;
        }
    }
    return check_fatal(ks);
}

/* ==== Producing ==== */

/* Evaluates topic_expr for rec into ks->name. 0, SL_EDATA with reason, SL_ENOMEM. */
static int eval_topic(struct kafka_sink *ks, const struct sl_record *rec, char *reason, size_t len)
{
    struct sl_value v;
    struct sl_err err;
    const char *why;
    int rc = sl_expr_eval((const struct sl_expr *)ks->conf->topic_expr, rec, &ks->eval, &v, &err);

    if (rc == SL_ENOMEM) {
        return rc;
    }
    if (rc != 0) {
        snprintf(reason, len, "topic_expr: %s", err.msg);
        return SL_EDATA;
    }
    if (v.type != SL_TYPE_STR) {
        snprintf(reason, len, "topic_expr: expected a string, got %s",
                 sl_type_name((enum sl_type)v.type));
        return SL_EDATA;
    }
    if ((why = topic_invalid(v.u.s, v.len)) != NULL) {
        snprintf(reason, len, "topic_expr: invalid topic name '%.*s': %s",
                 (int)(v.len > 100 ? 100 : v.len), v.u.s, why);
        return SL_EDATA;
    }
    sl_buf_reset(&ks->name);
    return sl_buf_append(&ks->name, v.u.s, v.len) == 0 ? 0 : SL_ENOMEM;
}

/* Evaluates key for rec into *ret_key and *ret_len (NULL: no key), converted as
 * to_string() would for non-strings; bytes pass through verbatim. */
static int eval_key(struct kafka_sink *ks,
                    const struct sl_record *rec,
                    const void **ret_key,
                    size_t *ret_len,
                    char *reason,
                    size_t len)
{
    struct sl_value v;
    struct sl_err err;
    char *text;
    int rc = sl_expr_eval((const struct sl_expr *)ks->conf->key, rec, &ks->eval, &v, &err);

    if (rc == SL_ENOMEM) {
        return rc;
    }
    if (rc != 0) {
        snprintf(reason, len, "key: %s", err.msg);
        return SL_EDATA;
    }
    switch (v.type) {
    case SL_TYPE_NULL:
        *ret_key = NULL;
        *ret_len = 0;
        return 0;
    case SL_TYPE_BOOL:
        *ret_key = v.u.b ? "true" : "false";
        *ret_len = v.u.b ? 4 : 5;
        return 0;
    case SL_TYPE_INT:
    case SL_TYPE_DOUBLE:
        text = sl_arena_alloc(&ks->eval, 32);
        if (text == NULL) {
            return SL_ENOMEM;
        }
        *ret_len = v.type == SL_TYPE_INT ? (size_t)snprintf(text, 32, "%lld", (long long)v.u.i)
                                         : sl_json_format_double(v.u.d, text);
        *ret_key = text;
        return 0;
    default: /* STR, BYTES, ARRAY and OBJECT (their JSON text) */
        *ret_key = v.u.s;
        *ret_len = v.len;
        return 0;
    }
}

/* Hands the message in ks->text to librdkafka (copied), with rec as its
 * opaque. While librdkafka's queue is full it serves delivery reports (which
 * frees room) and tries again: a record is never dropped. *ret_kerr is
 * librdkafka's answer. Returns 0, or SL_EFATAL / SL_ECANCELED when the
 * producer or the pipeline failed meanwhile. */
static int send_message(struct kafka_sink *ks,
                        const struct sl_record *rec,
                        const void *key,
                        size_t key_len,
                        rd_kafka_resp_err_t *ret_kerr)
{
    rd_kafka_resp_err_t kerr;

    for (;;) {
        if (ks->rkt != NULL) {
            kerr = rd_kafka_producev(
                ks->rk, RD_KAFKA_V_RKT(ks->rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_VALUE(ks->text.data, ks->text.len), RD_KAFKA_V_KEY(key, key_len),
                RD_KAFKA_V_OPAQUE((void *)rec), RD_KAFKA_V_END);
        } else {
            kerr = rd_kafka_producev(
                ks->rk, RD_KAFKA_V_TOPIC(ks->name.data), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_VALUE(ks->text.data, ks->text.len), RD_KAFKA_V_KEY(key, key_len),
                RD_KAFKA_V_OPAQUE((void *)rec), RD_KAFKA_V_END);
        }
        if (kerr != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            *ret_kerr = kerr;
            return 0;
        }
        rd_kafka_poll(ks->rk, POLL_MS);
        if (check_fatal(ks) != 0) {
            return SL_EFATAL;
        }
        if (pipeline_failed(ks)) {
            return SL_ECANCELED;
        }
    }
}

/* Hands one message to librdkafka (copied), waiting while its queue is
 * full. A record that cannot be produced for a data reason is
 * dead-lettered. Returns 0, SL_ENOMEM, SL_EFATAL or SL_ECANCELED. */
static int
produce_one(struct kafka_sink *ks, const struct sl_batch *batch, const struct sl_record *rec)
{
    const struct kafka_sink_conf *conf = ks->conf;
    const void *key = NULL;
    size_t key_len = 0;
    char reason[REASON_MAX];
    rd_kafka_resp_err_t kerr;
    int rc = 0;

    sl_buf_reset(&ks->text);
    if (sl_json_write_record(&ks->text, rec) != 0) {
        return SL_ENOMEM;
    }
    if (conf->topic_expr != NULL) {
        rc = eval_topic(ks, rec, reason, sizeof(reason));
    }
    if (rc == 0 && conf->key != NULL) {
        rc = eval_key(ks, rec, &key, &key_len, reason, sizeof(reason));
    }
    if (rc == SL_EDATA) {
        reject(ks, batch, rec, reason);
        return 0;
    }
    if (rc != 0) {
        return rc;
    }
    rc = send_message(ks, rec, key, key_len, &kerr);
    if (rc != 0) {
        return rc;
    }
    if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
        ks->pending++;
        return 0;
    }
    if (kerr == RD_KAFKA_RESP_ERR__FATAL) {
        ks->fatal = true;
        return check_fatal(ks);
    }
    /* MSG_SIZE_TOO_LARGE, UNKNOWN_TOPIC, UNKNOWN_PARTITION: this record's. */
    snprintf(reason, sizeof(reason), "kafka: cannot produce to %s: %s",
             ks->rkt != NULL ? conf->topic : ks->name.data, rd_kafka_err2str(kerr));
    reject(ks, batch, rec, reason);
    return 0;
}

static int kafka_write(struct sl_sink *sink, struct sl_batch *const *batches, size_t n)
{
    struct kafka_sink *ks = (struct kafka_sink *)sink;
    int rc = 0, wrc;

    if (pipeline_failed(ks)) {
        return SL_ECANCELED;
    }
    ks->batches = batches;
    ks->nbatches = n;
    ks->pending = 0;
    ks->reject_rc = 0;
    ks->lost[0] = '\0';
    for (size_t b = 0; b < n && rc == 0; b++) {
        for (uint32_t i = 0; i < batches[b]->n && rc == 0; i++) {
            rc = produce_one(ks, batches[b], &batches[b]->recs[i]);
        }
    }
    /* Even after a failure: reports of what was produced must not outlive
     * the batches they point into. */
    wrc = rc == SL_EFATAL ? rc : wait_reports(ks);
    rc = rc != 0 ? rc : wrc != 0 ? wrc : ks->reject_rc;
    ks->batches = NULL;
    sl_arena_release(&ks->eval);
    if (rc == 0 && ks->lost[0] != '\0') {
        struct sl_err err = {0};

        sl_err_set(&err, SL_EIO, "%s: a dead letter was not delivered: %s", sink->node->name,
                   ks->lost);
        sl_pipeline_fail(sink->node->pl, &err);
        rc = SL_EIO;
    }
    return rc;
}

/* ==== Open and close ==== */

/* The producer: the user's librdkafka map, then what sluice owns. */
static int make_producer(struct sl_node *node, struct kafka_sink *ks, struct sl_err *err)
{
    const struct kafka_sink_conf *conf = ks->conf;
    rd_kafka_conf_t *rkconf = NULL;
    char errstr[512];
    const char *owned[][2] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {"compression.type", compressions[conf->compression]},
    };
    int rc =
        sl_kafka_conf_build(SL_KAFKA_PRODUCER, conf->brokers, &conf->librdkafka,
                            node->pl->conf->memory_limit, &rkconf, NULL, errstr, sizeof(errstr));

    if (rc != 0) {
        return sl_err_set(err, rc, "%s: %s", node->name, errstr);
    }
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
        if (rd_kafka_conf_set(rkconf, owned[i][0], owned[i][1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(rkconf);
            return sl_err_set(err, SL_EFATAL, "%s: %s: %s", node->name, owned[i][0], errstr);
        }
    }
    rd_kafka_conf_set_dr_msg_cb(rkconf, on_delivery);
    rd_kafka_conf_set_opaque(rkconf, ks);
    ks->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, errstr, sizeof(errstr));
    if (ks->rk == NULL) {
        rd_kafka_conf_destroy(rkconf); /* rd_kafka_new takes it only on success */
        return sl_err_set(err, SL_ECONFIG, "%s: cannot create the Kafka producer: %s", node->name,
                          errstr);
    }
    if (conf->topic != NULL && (ks->rkt = rd_kafka_topic_new(ks->rk, conf->topic, NULL)) == NULL) {
        return sl_err_set(err, SL_EFATAL, "%s: topic '%s': %s", node->name, conf->topic,
                          rd_kafka_err2str(rd_kafka_last_error()));
    }
    return 0;
}

static int kafka_sink_open(struct sl_node *node, struct sl_err *err)
{
    const struct kafka_sink_conf *conf = node->cn->conf;
    struct kafka_sink *ks = sl_calloc(1, sizeof(*ks));

    if (ks == NULL) {
        return sl_err_set(err, SL_ENOMEM, "out of memory");
    }
    node->state = ks;
    ks->conf = conf;
    sl_arena_init(&ks->eval);
    sl_sink_init(&ks->sink, node, kafka_write, &conf->batch);
    return make_producer(node, ks, err);
}

static void kafka_sink_close(struct sl_node *node)
{
    struct kafka_sink *ks = node->state;

    if (ks == NULL) {
        return;
    }
    if (ks->rk != NULL) {
        /* Every acknowledged write already has its reports; what is left
         * belongs to a write given up after a failure (not acknowledged). */
        ks->batches = NULL;
        if (pipeline_failed(ks) ||
            rd_kafka_flush(ks->rk, CLOSE_FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            (void)rd_kafka_purge(ks->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            (void)rd_kafka_flush(ks->rk, POLL_MS);
        }
        if (ks->rkt != NULL) {
            rd_kafka_topic_destroy(ks->rkt);
        }
        rd_kafka_destroy(ks->rk);
    }
    sl_buf_release(&ks->text);
    sl_buf_release(&ks->name);
    sl_arena_release(&ks->eval);
    sl_sink_release(&ks->sink);
    sl_free(ks);
    node->state = NULL;
}

const struct sl_node_type sl_stage_kafka_sink = {
    .def =
        {
            .abi_version = SLUICE_ABI_VERSION,
            .struct_size = sizeof(struct sluice_stage_def),
            .name = "kafka",
            .description = "Produces records as JSON messages to Kafka (idempotent, acks=all).",
            .kind = SLUICE_KIND_SINK,
            .flags = SLUICE_STAGE_BLOCKING,
            .conf_size = sizeof(struct kafka_sink_conf),
            .options = kafka_sink_options,
        },
    .check = kafka_sink_check,
    .open = kafka_sink_open,
    .process = sl_sink_node_process,
    .flush = sl_sink_node_flush,
    .close = kafka_sink_close,
};
