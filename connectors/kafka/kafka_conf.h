/* SPDX-License-Identifier: MIT */
/* librdkafka configuration shared by the Kafka source and sink: the user's
 * `librdkafka:` map applied verbatim, the keys sluice owns refused with a
 * pointer to the sluice option, bad keys and values reported as located
 * config errors at check time (no I/O), and librdkafka's buffers sized from
 * engine.memory_limit. Thread: main (check() at load, build at open). */
#ifndef SL_KAFKA_CONF_H
#define SL_KAFKA_CONF_H

#include "conf.h"
#include "err.h"

#include <librdkafka/rdkafka.h>
#include <sluice/plugin.h>
#include <stddef.h>
#include <stdint.h>

enum sl_kafka_role {
    SL_KAFKA_CONSUMER, /* the source */
    SL_KAFKA_PRODUCER, /* the sink */
    SL_KAFKA_ROLE_COUNT
};

/* What build() gave librdkafka from memory_limit (0: left to the user). */
struct sl_kafka_sizes {
    uint64_t queued_max_kbytes;   /* consumer: queued.max.messages.kbytes */
    uint64_t fetch_max_bytes;     /* consumer: fetch.max.bytes */
    uint64_t partition_max_bytes; /* consumer: max.partition.fetch.bytes */
    uint64_t producer_max_kbytes; /* producer: queue.buffering.max.kbytes */
};

/* Returns why key belongs to sluice in role, as a pointer to the sluice
 * option ("use the option 'brokers'"), or NULL when the user may set it.
 * Aliases count (metadata.broker.list is bootstrap.servers). The returned
 * text is static. Thread: any. */
const char *sl_kafka_conf_owned(enum sl_kafka_role role, const char *key);

/* For a Kafka node type's check(): refuses the keys of user (the node's
 * `librdkafka:` option) that sluice owns, and sets every other key on a
 * scratch librdkafka conf so that an unknown key or a bad value is reported
 * with librdkafka's message, at the key's file:line:col and key path
 * (`sinks.out.librdkafka."linger.ms"`). For the producer, also refuses what
 * librdkafka's idempotent producer refuses at creation: more than 5
 * requests in flight, no retries, a queuing strategy other than fifo. Does
 * no I/O. Returns 0, SL_ECONFIG with err located, or SL_ENOMEM.
 * Thread: main. */
int sl_kafka_conf_check(const struct sl_conf_node *cn,
                        enum sl_kafka_role role,
                        const struct sluice_map *user,
                        struct sl_err *err);

/* Kafka's rule for topic names: 1 to 249 of [a-zA-Z0-9._-], not "." or
 * "..". name is len bytes, not necessarily NUL-terminated. Returns NULL when
 * it is valid, else why not (static text). Thread: any. */
const char *sl_kafka_topic_invalid(const char *name, size_t len);

/* Checks a `brokers` value: a comma-separated list of host[:port] (IPv6 in
 * brackets, optionally after a protocol such as ssl://), each port 1 to
 * 65535. Returns NULL when valid, else why not, written into buf.
 * Thread: any. */
const char *sl_kafka_brokers_invalid(const char *brokers, char *buf, size_t len);

/* For a Kafka node type's check(): checks the options librdkafka would only
 * refuse at run, or misread: brokers (sl_kafka_brokers_invalid) and, for
 * the consumer (topics not NULL), at least one valid topic, each once, and
 * a non-empty group. Errors are located at the option. Returns 0 or
 * SL_ECONFIG. Thread: main. */
int sl_kafka_conf_check_options(const struct sl_conf_node *cn,
                                const char *brokers,
                                const struct sluice_list *topics,
                                const char *group,
                                struct sl_err *err);

/* Computes the buffer sizes for role from memory_limit (bytes of records in
 * flight, engine.memory_limit): a quarter of it for librdkafka's queue
 * (consumer: queued.max.messages.kbytes; producer: queue.buffering.max.kbytes),
 * a sixteenth for one fetch response (fetch.max.bytes, at least
 * message_max_bytes, at most librdkafka's default) and per partition at most
 * librdkafka's default max.partition.fetch.bytes. Pure. Thread: any. */
void sl_kafka_conf_plan(enum sl_kafka_role role,
                        uint64_t memory_limit,
                        uint64_t message_max_bytes,
                        struct sl_kafka_sizes *ret_sizes);

/* Creates a librdkafka conf for role: the user's map applied verbatim
 * (owned keys refused again, for callers without check()),
 * bootstrap.servers = brokers, client.id "sluice" unless given, librdkafka's
 * log lines and error events routed to sluice's log (each broker failure
 * once, at its level, rate-limited; `debug` output as debug lines), and the
 * buffers sized by sl_kafka_conf_plan unless user sets them (or an alias).
 * The caller then sets the keys it owns and its callbacks (not the log
 * callback; an error callback of its own passes every event on to
 * sl_kafka_conf_log_error). On success *ret_conf is the
 * caller's (rd_kafka_new takes it; otherwise rd_kafka_conf_destroy) and
 * *ret_sizes (may be NULL) what was sized. Returns 0, or SL_ECONFIG with a
 * message in errbuf naming the key, or SL_ENOMEM. Thread: any. */
int sl_kafka_conf_build(enum sl_kafka_role role,
                        const char *brokers,
                        const struct sluice_map *user,
                        uint64_t memory_limit,
                        rd_kafka_conf_t **ret_conf,
                        struct sl_kafka_sizes *ret_sizes,
                        char *errbuf,
                        size_t errbuf_len);

/* Logs one librdkafka error event as sl_kafka_conf_build's error callback
 * does: a warning, rate-limited with librdkafka's log lines; an error when
 * fatal. For a caller's own error callback. Thread: the one polling rk. */
void sl_kafka_conf_log_error(rd_kafka_t *rk, int code, const char *reason);

#endif
