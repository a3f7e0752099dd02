/* SPDX-License-Identifier: MIT */
/* Tests of connectors/kafka/kafka_conf.c and sl_conf_locate: keys sluice owns
 * refused with a pointer to the sluice option, bad librdkafka keys and values
 * reported as config errors at the key's line (through sl_conf_load, with the
 * real kafka sink and a fake consumer type), --set, and librdkafka's buffers
 * sized from memory_limit. No broker is contacted. */
#include "conf.h"
#include "connectors/kafka/kafka_conf.h"
#include "err.h"
#include "node.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* ==== A fake consumer type (the real source is tested elsewhere) ==== */

struct fake_conf {
    const char *brokers;
    struct sluice_map librdkafka;
};

/* clang-format off */
static const struct sluice_option fake_options[] = {
    {"brokers", SLUICE_OPT_STR, NULL, offsetof(struct fake_conf, brokers), 0, 0, NULL, SLUICE_OPT_REQUIRED, ""},
    {"librdkafka", SLUICE_OPT_MAP, NULL, offsetof(struct fake_conf, librdkafka), 0, 0, NULL, 0, ""},
    {NULL, 0, NULL, 0, 0, 0, NULL, 0, NULL},
};
/* clang-format on */

static int fake_check(const struct sl_conf_node *cn, struct sl_err *err)
{
    const struct fake_conf *conf = cn->conf;

    return sl_kafka_conf_check(cn, SL_KAFKA_CONSUMER, &conf->librdkafka, err);
}

static const struct sl_node_type fake_consumer = {
    .def = {SLUICE_ABI_VERSION, sizeof(struct sluice_stage_def), "fake_consumer", "",
            SLUICE_KIND_SOURCE, 0, sizeof(struct fake_conf), fake_options, NULL, NULL, NULL, NULL},
    .check = fake_check,
};
static const struct sl_node_type *const fake_types[] = {&fake_consumer, NULL};

/* ==== Helpers ==== */

static char yaml_path[64];

/* Writes text to the test's temporary file and loads it with sets. */
static int load(const char *text, const char *set, struct sl_conf **ret, struct sl_err *err)
{
    FILE *fp = fopen(yaml_path, "w");

    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    fclose(fp);
    *ret = NULL;
    return sl_conf_load(yaml_path, set != NULL ? &set : NULL, set != NULL ? 1 : 0, ret, err);
}

/* Loads text and expects a config error at line, whose message holds want. */
static void
expect_error(const char *text, const char *set, int line, const char *path, const char *want)
{
    struct sl_conf *conf = NULL;
    struct sl_err err;
    char msg[1024];
    int rc = load(text, set, &conf, &err);

    sl_err_format(&err, msg, sizeof(msg));
    if (rc != SL_ECONFIG || err.line != line || strstr(err.msg, want) == NULL ||
        strcmp(err.path, path) != 0) {
        fail_msg("expected line %d %s '%s', got %d: %s", line, path, want, rc, msg);
    }
    assert_null(conf);
}

#define SOURCE "sources:\n  in: { type: fake_consumer, brokers: 'h:1' }\n"
#define SINK_HEAD                                                                                  \
    "sinks:\n"                                                                                     \
    "  out:\n"                                                                                     \
    "    type: kafka\n"                                                                            \
    "    inputs: [in]\n"                                                                           \
    "    brokers: 'h:1'\n"                                                                         \
    "    topic: t\n"                                                                               \
    "    librdkafka:\n"

/* ==== Owned keys ==== */

static void test_kafka_conf_owned_tables(void **state)
{
    static const char *const consumer[] = {"bootstrap.servers",  "metadata.broker.list",
                                           "group.id",           "enable.auto.commit",
                                           "auto.commit.enable", "enable.auto.offset.store",
                                           "auto.offset.reset",  "enable.partition.eof"};
    static const char *const producer[] = {
        "bootstrap.servers",     "metadata.broker.list", "enable.idempotence", "acks",
        "request.required.acks", "compression.type",     "compression.codec"};

    (void)state;
    for (size_t i = 0; i < sizeof(consumer) / sizeof(consumer[0]); i++) {
        assert_non_null(sl_kafka_conf_owned(SL_KAFKA_CONSUMER, consumer[i]));
    }
    for (size_t i = 0; i < sizeof(producer) / sizeof(producer[0]); i++) {
        assert_non_null(sl_kafka_conf_owned(SL_KAFKA_PRODUCER, producer[i]));
    }
    assert_string_equal(sl_kafka_conf_owned(SL_KAFKA_CONSUMER, "group.id"),
                        "use the option 'group'");
    assert_string_equal(sl_kafka_conf_owned(SL_KAFKA_PRODUCER, "compression.type"),
                        "use the option 'compression'");
    assert_null(sl_kafka_conf_owned(SL_KAFKA_CONSUMER, "session.timeout.ms"));
    assert_null(sl_kafka_conf_owned(SL_KAFKA_PRODUCER, "linger.ms"));
    assert_null(sl_kafka_conf_owned(SL_KAFKA_PRODUCER, "group.id"));
}

static void test_kafka_conf_sink_owned_key_refused_at_its_line(void **state)
{
    (void)state;
    expect_error(
        SOURCE SINK_HEAD "      linger.ms: 5\n"
                         "      acks: all\n",
        NULL, 11, "sinks.out.librdkafka.acks",
        "'acks' is set by sluice: sluice always uses an idempotent producer with acks=all");
    expect_error(SOURCE SINK_HEAD "      metadata.broker.list: 'x:1'\n", NULL, 10,
                 "sinks.out.librdkafka.\"metadata.broker.list\"", "use the option 'brokers'");
    expect_error(SOURCE SINK_HEAD "      compression.codec: gzip\n", NULL, 10,
                 "sinks.out.librdkafka.\"compression.codec\"", "use the option 'compression'");
}

static void test_kafka_conf_source_owned_key_refused_at_its_line(void **state)
{
    (void)state;
    expect_error("sources:\n"
                 "  in:\n"
                 "    type: fake_consumer\n"
                 "    brokers: 'h:1'\n"
                 "    librdkafka:\n"
                 "      session.timeout.ms: 6000\n"
                 "      enable.auto.commit: false\n"
                 "sinks:\n"
                 "  out: { type: kafka, inputs: [in], brokers: 'h:1', topic: t }\n",
                 NULL, 7, "sources.in.librdkafka.\"enable.auto.commit\"",
                 "sluice commits offsets itself after the sinks commit");
    expect_error("sources:\n"
                 "  in:\n"
                 "    type: fake_consumer\n"
                 "    brokers: 'h:1'\n"
                 "    librdkafka: { auto.offset.reset: latest }\n"
                 "sinks:\n"
                 "  out: { type: kafka, inputs: [in], brokers: 'h:1', topic: t }\n",
                 NULL, 5, "sources.in.librdkafka.\"auto.offset.reset\"",
                 "use the options 'start' and 'on_offset_out_of_range'");
}

/* ==== Bad keys and values ==== */

static void test_kafka_conf_unknown_key_has_line_and_hint(void **state)
{
    (void)state;
    expect_error(SOURCE SINK_HEAD "      linger.ms: 5\n"
                                  "      messsage.timeout.ms: 5000\n",
                 NULL, 11, "sinks.out.librdkafka.\"messsage.timeout.ms\"",
                 "unknown librdkafka property 'messsage.timeout.ms' (did you mean "
                 "'message.timeout.ms'?)");
}

static void test_kafka_conf_bad_value_has_line(void **state)
{
    (void)state;
    expect_error(SOURCE SINK_HEAD "      linger.ms: 5\n"
                                  "      message.timeout.ms: -5\n",
                 NULL, 11, "sinks.out.librdkafka.\"message.timeout.ms\"",
                 "value -5 is outside allowed range");
    expect_error(SOURCE SINK_HEAD "      enable.gapless.guarantee: maybe\n", NULL, 10,
                 "sinks.out.librdkafka.\"enable.gapless.guarantee\"", "true or false");
    expect_error(SOURCE SINK_HEAD "      batch.num.messages: lots\n", NULL, 10,
                 "sinks.out.librdkafka.\"batch.num.messages\"", "'lots'");
}

static void test_kafka_conf_set_errors_name_set(void **state)
{
    struct sl_conf *conf = NULL;
    struct sl_err err;

    (void)state;
    assert_int_equal(load(SOURCE SINK_HEAD "      linger.ms: 5\n",
                          "sinks.out.librdkafka.\"linger.ms\"=soon", &conf, &err),
                     SL_ECONFIG);
    assert_string_equal(err.file, "--set");
    assert_int_equal(err.line, 0);
    assert_string_equal(err.path, "sinks.out.librdkafka.\"linger.ms\"");
}

static void test_kafka_conf_dead_letter_path(void **state)
{
    (void)state;
    expect_error(SOURCE "sinks:\n"
                        "  out: { type: kafka, inputs: [in], brokers: 'h:1', topic: t }\n"
                        "dead_letter:\n"
                        "  type: kafka\n"
                        "  brokers: 'h:1'\n"
                        "  topic: dlq\n"
                        "  librdkafka:\n"
                        "    acks: 1\n",
                 NULL, 10, "dead_letter.librdkafka.acks", "acks=all");
}

static void test_kafka_conf_valid_loads(void **state)
{
    struct sl_conf *conf = NULL;
    struct sl_err err;
    int line = -1, col = -1;

    (void)state;
    assert_int_equal(load(SOURCE SINK_HEAD "      linger.ms: 20\n"
                                           "      client.id: mine\n"
                                           "    batch: { max_records: 50 }\n",
                          NULL, &conf, &err),
                     0);
    const struct sl_conf_node *cn = sl_conf_find(conf, "out");
    assert_non_null(cn);
    /* sl_conf_locate: dotted keys whole, nested groups, absent keys. */
    assert_int_equal(sl_conf_locate(cn, "librdkafka.client.id", &line, &col), 0);
    assert_int_equal(line, 11);
    assert_int_equal(col, 7);
    assert_int_equal(sl_conf_locate(cn, "batch.max_records", &line, &col), 0);
    assert_int_equal(line, 12);
    assert_int_equal(col, 14);
    assert_int_equal(sl_conf_locate(cn, "topic", &line, &col), 0);
    assert_int_equal(line, 8);
    assert_int_equal(sl_conf_locate(cn, "librdkafka.client", &line, &col), SL_EOF);
    assert_int_equal(sl_conf_locate(cn, "librdkafka.linger.ms.x", &line, &col), SL_EOF);
    assert_int_equal(sl_conf_locate(cn, "nothing", &line, &col), SL_EOF);
    sl_conf_free(conf);
}

static void test_kafka_sink_topic_rules(void **state)
{
    (void)state;
    expect_error(SOURCE "sinks:\n  out: { type: kafka, inputs: [in], brokers: 'h:1' }\n", NULL, 4,
                 "sinks.out", "missing required key 'topic'");
    expect_error(SOURCE "sinks:\n"
                        "  out:\n"
                        "    type: kafka\n"
                        "    inputs: [in]\n"
                        "    brokers: 'h:1'\n"
                        "    topic: 'bad topic'\n",
                 NULL, 8, "sinks.out.topic", "invalid topic name 'bad topic'");
    expect_error(SOURCE "sinks:\n"
                        "  out:\n"
                        "    type: kafka\n"
                        "    inputs: [in]\n"
                        "    brokers: 'h:1'\n"
                        "    topic: t\n"
                        "    topic_expr: 'kind'\n",
                 NULL, 9, "sinks.out.topic_expr", "either 'topic' or 'topic_expr'");
}

/* ==== Options librdkafka would refuse or misread at run (issue 6, 24) ==== */

static void test_kafka_conf_brokers_rules(void **state)
{
    static const struct {
        const char *brokers;
        const char *why; /* NULL: valid */
    } cases[] = {
        {"localhost:9092", NULL},
        {"a:1, b:2,c", NULL},
        {"[::1]:9092,SSL://h:9093,sasl_plaintext://h", NULL},
        {"localhost:notaport", "invalid port 'notaport' in 'localhost:notaport'"},
        {"h:0", "invalid port '0'"},
        {"h:65536", "invalid port '65536'"},
        {"h:", "invalid port ''"},
        {"h:12x", "invalid port '12x'"},
        {":9092", "(no host)"},
        {"::1", "an IPv6 address goes in brackets"},
        {"[::1", "expected [IPv6]:port"},
        {"tcp://h:1", "unknown protocol 'tcp'"},
        {" , ", "got an empty list"},
    };
    char buf[256];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *why = sl_kafka_brokers_invalid(cases[i].brokers, buf, sizeof(buf));

        if (cases[i].why == NULL ? why != NULL
                                 : (why == NULL || strstr(why, cases[i].why) == NULL)) {
            fail_msg("'%s': want %s, got %s", cases[i].brokers,
                     cases[i].why != NULL ? cases[i].why : "valid", why != NULL ? why : "valid");
        }
    }
}

static void test_kafka_conf_source_options_located(void **state)
{
    (void)state;
    expect_error("sources:\n"
                 "  in:\n"
                 "    type: kafka\n"
                 "    brokers: 'h:1'\n"
                 "    topics: []\n"
                 "    group: g\n"
                 "sinks:\n  out: { type: null, inputs: [in] }\n",
                 NULL, 5, "sources.in.topics", "expected at least one topic");
    expect_error("sources:\n"
                 "  in:\n"
                 "    type: kafka\n"
                 "    brokers: 'h:1'\n"
                 "    topics: [a, a]\n"
                 "    group: g\n"
                 "sinks:\n  out: { type: null, inputs: [in] }\n",
                 NULL, 5, "sources.in.topics[1]", "topic 'a' is listed twice");
    expect_error("sources:\n"
                 "  in:\n"
                 "    type: kafka\n"
                 "    brokers: 'h:1'\n"
                 "    topics:\n"
                 "      - ok\n"
                 "      - 'caf\xc3\xa9'\n"
                 "    group: g\n"
                 "sinks:\n  out: { type: null, inputs: [in] }\n",
                 NULL, 7, "sources.in.topics[1]", "invalid topic name");
    expect_error("sources:\n"
                 "  in:\n"
                 "    type: kafka\n"
                 "    brokers: 'h:1'\n"
                 "    topics: [t]\n"
                 "    group: ''\n"
                 "sinks:\n  out: { type: null, inputs: [in] }\n",
                 NULL, 6, "sources.in.group", "expected a consumer group name");
    expect_error("sources:\n"
                 "  in:\n"
                 "    type: kafka\n"
                 "    brokers: 'localhost:notaport'\n"
                 "    topics: [t]\n"
                 "    group: g\n"
                 "sinks:\n  out: { type: null, inputs: [in] }\n",
                 NULL, 4, "sources.in.brokers", "invalid port 'notaport'");
    expect_error(SOURCE "sinks:\n"
                        "  out: { type: kafka, inputs: [in], brokers: 'h:x', topic: t }\n",
                 NULL, 4, "sinks.out.brokers", "invalid port 'x'");
}

/* Whether librdkafka itself creates an idempotent producer with key=value
 * (no broker is contacted: no bootstrap.servers). */
static bool idempotent_producer_accepts(const char *key, const char *value)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_t *rk;

    assert_int_equal(rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "log_level", "0", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)), RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return false;
    }
    rd_kafka_destroy(rk);
    return true;
}

static void test_kafka_conf_idempotence_conflicts(void **state)
{
    static const struct {
        const char *key, *value, *why; /* why NULL: accepted */
    } cases[] = {
        {"max.in.flight.requests.per.connection", "6", "must be at most 5"},
        {"max.in.flight", "1000", "must be at most 5"},
        {"retries", "0", "must be at least 1"},
        {"message.send.max.retries", "0", "must be at least 1"},
        {"queuing.strategy", "lifo", "must be fifo"},
        {"max.in.flight.requests.per.connection", "5", NULL},
        {"retries", "1", NULL},
        {"queuing.strategy", "fifo", NULL},
    };
    char text[512], key[128];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_conf *conf = NULL;
        struct sl_err err;

        /* The rule is librdkafka's: check it holds for the installed one. */
        assert_int_equal(idempotent_producer_accepts(cases[i].key, cases[i].value),
                         cases[i].why == NULL);
        snprintf(text, sizeof(text), SOURCE SINK_HEAD "      %s: '%s'\n", cases[i].key,
                 cases[i].value);
        if (cases[i].why == NULL) {
            assert_int_equal(load(text, NULL, &conf, &err), 0);
            sl_conf_free(conf);
            continue;
        }
        snprintf(key, sizeof(key), "sinks.out.librdkafka.%s%s%s",
                 strchr(cases[i].key, '.') ? "\"" : "", cases[i].key,
                 strchr(cases[i].key, '.') ? "\"" : "");
        expect_error(text, NULL, 10, key, cases[i].why);
    }
}

/* ==== Memory sizing ==== */

static uint64_t get_uint(rd_kafka_conf_t *conf, const char *key)
{
    char buf[64];
    size_t len = sizeof(buf);

    assert_int_equal(rd_kafka_conf_get(conf, key, buf, &len), RD_KAFKA_CONF_OK);
    return strtoull(buf, NULL, 10);
}

static void test_kafka_conf_plan_follows_memory_limit(void **state)
{
    struct sl_kafka_sizes s;

    (void)state;
    sl_kafka_conf_plan(SL_KAFKA_CONSUMER, 64u << 20, 1000000, &s);
    assert_int_equal(s.queued_max_kbytes, 16384); /* a quarter */
    assert_int_equal(s.fetch_max_bytes, 4u << 20);
    assert_int_equal(s.partition_max_bytes, 1u << 20);
    assert_int_equal(s.producer_max_kbytes, 0);
    /* Small budgets: a fetch still holds the largest message. */
    sl_kafka_conf_plan(SL_KAFKA_CONSUMER, 1u << 20, 1000000, &s);
    assert_int_equal(s.queued_max_kbytes, 256);
    assert_int_equal(s.fetch_max_bytes, 1000000);
    assert_int_equal(s.partition_max_bytes, 1000000);
    /* Large budgets: librdkafka's own ceilings. */
    sl_kafka_conf_plan(SL_KAFKA_CONSUMER, 64ull << 30, 1000000, &s);
    assert_int_equal(s.queued_max_kbytes, 2097151);
    assert_int_equal(s.fetch_max_bytes, 52428800);
    assert_int_equal(s.partition_max_bytes, 1048576);
    sl_kafka_conf_plan(SL_KAFKA_PRODUCER, 64u << 20, 1000000, &s);
    assert_int_equal(s.producer_max_kbytes, 16384);
    assert_int_equal(s.queued_max_kbytes, 0);
}

static void test_kafka_conf_build_sizes_unless_user_set(void **state)
{
    const char *keys[] = {"fetch.message.max.bytes", "queued.max.messages.kbytes", "linger.ms"};
    const char *values[] = {"200000", "1000", "7"};
    struct sluice_map user = {keys, values, NULL, 3};
    struct sl_kafka_sizes s;
    rd_kafka_conf_t *conf = NULL;
    char errbuf[256];

    (void)state;
    assert_int_equal(sl_kafka_conf_build(SL_KAFKA_CONSUMER, "h:1", NULL, 64u << 20, &conf, &s,
                                         errbuf, sizeof(errbuf)),
                     0);
    assert_int_equal(get_uint(conf, "queued.max.messages.kbytes"), 16384);
    assert_int_equal(get_uint(conf, "fetch.max.bytes"), 4u << 20);
    assert_int_equal(get_uint(conf, "max.partition.fetch.bytes"), 1u << 20);
    rd_kafka_conf_destroy(conf);

    /* The user's values (an alias too) win; the rest is still sized. */
    assert_int_equal(sl_kafka_conf_build(SL_KAFKA_CONSUMER, "h:1", &user, 64u << 20, &conf, &s,
                                         errbuf, sizeof(errbuf)),
                     0);
    assert_int_equal(get_uint(conf, "queued.max.messages.kbytes"), 1000);
    assert_int_equal(get_uint(conf, "max.partition.fetch.bytes"), 200000);
    assert_int_equal(get_uint(conf, "fetch.max.bytes"), 4u << 20);
    assert_int_equal(s.queued_max_kbytes, 0);
    assert_int_equal(s.partition_max_bytes, 0);
    rd_kafka_conf_destroy(conf);

    assert_int_equal(sl_kafka_conf_build(SL_KAFKA_PRODUCER, "h:1", NULL, 8u << 20, &conf, &s,
                                         errbuf, sizeof(errbuf)),
                     0);
    assert_int_equal(get_uint(conf, "queue.buffering.max.kbytes"), 2048);
    assert_int_equal(s.producer_max_kbytes, 2048);
    rd_kafka_conf_destroy(conf);
}

static void test_kafka_conf_build_refuses_owned_and_bad(void **state)
{
    const char *keys[] = {"group.id"};
    const char *values[] = {"g"};
    const char *bad_keys[] = {"linger.ms"};
    const char *bad_values[] = {"never"};
    struct sluice_map owned = {keys, values, NULL, 1};
    struct sluice_map bad = {bad_keys, bad_values, NULL, 1};
    rd_kafka_conf_t *conf = NULL;
    char errbuf[256];

    (void)state;
    assert_int_equal(sl_kafka_conf_build(SL_KAFKA_CONSUMER, "h:1", &owned, 64u << 20, &conf, NULL,
                                         errbuf, sizeof(errbuf)),
                     SL_ECONFIG);
    assert_non_null(strstr(errbuf, "use the option 'group'"));
    assert_null(conf);
    assert_int_equal(sl_kafka_conf_build(SL_KAFKA_PRODUCER, "h:1", &bad, 64u << 20, &conf, NULL,
                                         errbuf, sizeof(errbuf)),
                     SL_ECONFIG);
    assert_non_null(strstr(errbuf, "linger.ms"));
    assert_null(conf);
    /* A group.id is a consumer's: the producer lets it pass (librdkafka
     * ignores it there). */
    assert_int_equal(sl_kafka_conf_build(SL_KAFKA_PRODUCER, "h:1", &owned, 64u << 20, &conf, NULL,
                                         errbuf, sizeof(errbuf)),
                     0);
    rd_kafka_conf_destroy(conf);
}

static void test_kafka_conf_receive_max_bounds_fetch(void **state)
{
    const char *keys[] = {"receive.message.max.bytes"};
    const char *values[] = {"2000000"};
    struct sluice_map user = {keys, values, NULL, 1};
    rd_kafka_conf_t *conf = NULL;
    char errbuf[256];

    (void)state;
    assert_int_equal(sl_kafka_conf_build(SL_KAFKA_CONSUMER, "h:1", &user, 256u << 20, &conf, NULL,
                                         errbuf, sizeof(errbuf)),
                     0);
    assert_int_equal(get_uint(conf, "fetch.max.bytes"), 2000000 - 512);
    rd_kafka_conf_destroy(conf);
}

static int setup(void **state)
{
    int fd;

    (void)state;
    snprintf(yaml_path, sizeof(yaml_path), "/tmp/test_kafka_conf_XXXXXX");
    fd = mkstemp(yaml_path);
    if (fd < 0) {
        return -1;
    }
    close(fd);
    return sl_node_type_register(fake_types);
}

static int teardown(void **state)
{
    (void)state;
    unlink(yaml_path);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kafka_conf_owned_tables),
        cmocka_unit_test(test_kafka_conf_sink_owned_key_refused_at_its_line),
        cmocka_unit_test(test_kafka_conf_source_owned_key_refused_at_its_line),
        cmocka_unit_test(test_kafka_conf_unknown_key_has_line_and_hint),
        cmocka_unit_test(test_kafka_conf_bad_value_has_line),
        cmocka_unit_test(test_kafka_conf_set_errors_name_set),
        cmocka_unit_test(test_kafka_conf_dead_letter_path),
        cmocka_unit_test(test_kafka_conf_valid_loads),
        cmocka_unit_test(test_kafka_sink_topic_rules),
        cmocka_unit_test(test_kafka_conf_brokers_rules),
        cmocka_unit_test(test_kafka_conf_source_options_located),
        cmocka_unit_test(test_kafka_conf_idempotence_conflicts),
        cmocka_unit_test(test_kafka_conf_plan_follows_memory_limit),
        cmocka_unit_test(test_kafka_conf_build_sizes_unless_user_set),
        cmocka_unit_test(test_kafka_conf_build_refuses_owned_and_bad),
        cmocka_unit_test(test_kafka_conf_receive_max_bounds_fetch),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
