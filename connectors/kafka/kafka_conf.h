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
 * (`sinks.out.librdkafka."linger.ms"`). Does no I/O. Returns 0, SL_ECONFIG
 * with err located, or SL_ENOMEM. Thread: main. */
int sl_kafka_conf_check(const struct sl_conf_node *cn,
                        enum sl_kafka_role role,
                        const struct sluice_map *user,
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
 * log lines routed to sluice's log (rate-limited), and the buffers sized by
 * sl_kafka_conf_plan unless user sets them (or an alias). The caller then
 * sets the keys it owns and its callbacks. On success *ret_conf is the
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

#endif
