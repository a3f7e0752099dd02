/* SPDX-License-Identifier: MIT */
/* sluice-mock-kafka: a Kafka-protocol cluster for tests, built on librdkafka's
 * mock API (rdkafka_mock.h) and listening on 127.0.0.1 only. It prints the
 * bootstrap servers as its first stdout line, then obeys one command per stdin
 * line and answers each with `ok` or `error: ...`. The main thread reads
 * commands; the mock cluster runs on librdkafka's own thread. EOF on stdin
 * exits, so a test that dies leaves no orphan. See usage() for the commands. */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BROKERS    64
#define LINE_MAX_BYTES 4096
#define MAX_ERRORS     1000000 /* errors one command may push */
#define MAX_RTT_MS     600000

/* Request types the fault commands accept by name (Kafka protocol keys). */
static const struct {
    const char *name;
    int16_t key;
} api_keys[] = {
    {"Produce", 0},         {"Fetch", 1},       {"ListOffsets", 2},      {"Metadata", 3},
    {"OffsetCommit", 8},    {"OffsetFetch", 9}, {"FindCoordinator", 10}, {"JoinGroup", 11},
    {"Heartbeat", 12},      {"LeaveGroup", 13}, {"SyncGroup", 14},       {"ApiVersions", 18},
    {"InitProducerId", 22},
};

static void usage(FILE *out)
{
    fputs("usage: sluice-mock-kafka [--brokers N]\n"
          "Starts a mock Kafka cluster of N brokers (default 3, ids 1..N) on 127.0.0.1,\n"
          "prints its bootstrap servers on the first line, then reads commands on stdin,\n"
          "one per line, each answered with `ok` or `error: MESSAGE`:\n"
          "  topic NAME PARTITIONS [REPLICATION]  create a topic (replication: min(3, N))\n"
          "  down BROKER_ID                       disconnect a broker, refuse connections\n"
          "  up BROKER_ID                         accept connections again\n"
          "  errors API COUNT ERROR               the next COUNT requests of type API (to any\n"
          "                                       broker) fail with ERROR\n"
          "  clear-errors API                     forget the errors pushed for API\n"
          "  broker-errors BROKER_ID API COUNT ERROR [RTT_MS]\n"
          "                                       the same on one broker, each answer delayed\n"
          "                                       by RTT_MS (ERROR may be NO_ERROR: delay only)\n"
          "  rtt BROKER_ID MS                     delay every answer of a broker by MS\n"
          "  topic-error TOPIC ERROR              metadata requests for TOPIC fail with ERROR\n"
          "                                       (NO_ERROR clears it)\n"
          "  quit                                 stop (EOF on stdin does the same)\n"
          "BROKER_ID -1 means every broker (not for broker-errors). API is a request\n"
          "name (Produce, Fetch, ListOffsets, Metadata, OffsetCommit, OffsetFetch,\n"
          "FindCoordinator, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, ApiVersions,\n"
          "InitProducerId) or its number; ERROR is a librdkafka error name without\n"
          "RD_KAFKA_RESP_ERR_ (COORDINATOR_LOAD_IN_PROGRESS, NOT_LEADER_FOR_PARTITION,\n"
          "_TRANSPORT: disconnect) or its number. Unknown topics are auto-created\n"
          "with 4 partitions; each partition keeps about 5 MB, older data is dropped.\n",
          out);
}

/* Parses a decimal int in [min, max]; returns 0, or -1 if text is not one. */
static int parse_int(const char *text, long min, long max, int *ret_value)
{
    char *end = NULL;
    long v;

    if (text == NULL || *text == '\0') {
        return -1;
    }
    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return -1;
    }
    *ret_value = (int)v;
    return 0;
}

static void reply_ok(void)
{
    fputs("ok\n", stdout);
    (void)fflush(stdout);
}

__attribute__((format(printf, 1, 2))) static void reply_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fputs("error: ", stdout);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    (void)fflush(stdout);
}

static void reply_kafka(rd_kafka_resp_err_t kerr)
{
    if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
        reply_ok();
    } else {
        reply_error("%s", rd_kafka_err2str(kerr));
    }
}

/* Parses a request type: a name of api_keys or a number 0..32767. */
static int parse_api(const char *text, int16_t *ret_key)
{
    int v = 0;

    for (size_t i = 0; i < sizeof(api_keys) / sizeof(api_keys[0]); i++) {
        if (strcmp(text, api_keys[i].name) == 0) {
            *ret_key = api_keys[i].key;
            return 0;
        }
    }
    if (parse_int(text, 0, 32767, &v) != 0) {
        return -1;
    }
    *ret_key = (int16_t)v;
    return 0;
}

/* Parses an error: librdkafka's name (with or without RD_KAFKA_RESP_ERR_)
 * or its number. */
static int parse_err(const char *text, rd_kafka_resp_err_t *ret_err)
{
    const struct rd_kafka_err_desc *descs = NULL;
    size_t n = 0;
    int v = 0;

    if (strncmp(text, "RD_KAFKA_RESP_ERR_", 18) == 0) {
        text += 18;
    }
    rd_kafka_get_err_descs(&descs, &n);
    for (size_t i = 0; i < n; i++) {
        if (descs[i].name != NULL && strcmp(descs[i].name, text) == 0) {
            *ret_err = descs[i].code;
            return 0;
        }
    }
    if (parse_int(text, -200, 1000, &v) != 0) {
        return -1;
    }
    *ret_err = (rd_kafka_resp_err_t)v;
    return 0;
}

/* errors API COUNT ERROR: the cluster's next COUNT requests of API fail. */
static void cmd_errors(rd_kafka_mock_cluster_t *mcluster, char **argv, int argc)
{
    int16_t key = 0;
    int count = 0;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_resp_err_t *errs;

    if (argc != 4) {
        reply_error("usage: errors API COUNT ERROR");
        return;
    }
    if (parse_api(argv[1], &key) != 0) {
        reply_error("unknown request type '%s'", argv[1]);
        return;
    }
    if (parse_int(argv[2], 1, MAX_ERRORS, &count) != 0) {
        reply_error("bad count '%s' (1 to %d)", argv[2], MAX_ERRORS);
        return;
    }
    if (parse_err(argv[3], &err) != 0) {
        reply_error("unknown error '%s'", argv[3]);
        return;
    }
    errs = malloc((size_t)count * sizeof(*errs));
    if (errs == NULL) {
        reply_error("out of memory");
        return;
    }
    for (int i = 0; i < count; i++) {
        errs[i] = err;
    }
    rd_kafka_mock_push_request_errors_array(mcluster, key, (size_t)count, errs);
    free(errs);
    reply_ok();
}

static void cmd_clear_errors(rd_kafka_mock_cluster_t *mcluster, char **argv, int argc)
{
    int16_t key = 0;

    if (argc != 2) {
        reply_error("usage: clear-errors API");
        return;
    }
    if (parse_api(argv[1], &key) != 0) {
        reply_error("unknown request type '%s'", argv[1]);
        return;
    }
    rd_kafka_mock_clear_request_errors(mcluster, key);
    reply_ok();
}

/* broker-errors BROKER_ID API COUNT ERROR [RTT_MS]: pushed one at a time
 * (the librdkafka call takes its tuples as varargs). */
static void
cmd_broker_errors(rd_kafka_mock_cluster_t *mcluster, int nbrokers, char **argv, int argc)
{
    int id = 0, count = 0, rtt = 0;
    int16_t key = 0;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (argc != 5 && argc != 6) {
        reply_error("usage: broker-errors BROKER_ID API COUNT ERROR [RTT_MS]");
        return;
    }
    if (parse_int(argv[1], 1, nbrokers, &id) != 0) {
        reply_error("bad broker id '%s' (1 to the broker count)", argv[1]);
        return;
    }
    if (parse_api(argv[2], &key) != 0) {
        reply_error("unknown request type '%s'", argv[2]);
        return;
    }
    if (parse_int(argv[3], 1, MAX_ERRORS, &count) != 0) {
        reply_error("bad count '%s' (1 to %d)", argv[3], MAX_ERRORS);
        return;
    }
    if (parse_err(argv[4], &err) != 0) {
        reply_error("unknown error '%s'", argv[4]);
        return;
    }
    if (argc == 6 && parse_int(argv[5], 0, MAX_RTT_MS, &rtt) != 0) {
        reply_error("bad RTT '%s' (0 to %d ms)", argv[5], MAX_RTT_MS);
        return;
    }
    for (int i = 0; i < count && kerr == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
        kerr = rd_kafka_mock_broker_push_request_error_rtts(mcluster, id, key, 1, err, rtt);
    }
    reply_kafka(kerr);
}

static void cmd_rtt(rd_kafka_mock_cluster_t *mcluster, int nbrokers, char **argv, int argc)
{
    int id = 0, rtt = 0;

    if (argc != 3) {
        reply_error("usage: rtt BROKER_ID MS");
        return;
    }
    if (parse_int(argv[1], -1, nbrokers, &id) != 0 || id == 0) {
        reply_error("bad broker id '%s' (1 to the broker count, or -1 for all)", argv[1]);
        return;
    }
    if (parse_int(argv[2], 0, MAX_RTT_MS, &rtt) != 0) {
        reply_error("bad RTT '%s' (0 to %d ms)", argv[2], MAX_RTT_MS);
        return;
    }
    reply_kafka(rd_kafka_mock_broker_set_rtt(mcluster, id, rtt));
}

static void cmd_topic_error(rd_kafka_mock_cluster_t *mcluster, char **argv, int argc)
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (argc != 3) {
        reply_error("usage: topic-error TOPIC ERROR");
        return;
    }
    if (parse_err(argv[2], &err) != 0) {
        reply_error("unknown error '%s'", argv[2]);
        return;
    }
    rd_kafka_mock_topic_set_error(mcluster, argv[1], err);
    reply_ok();
}

static void cmd_topic(rd_kafka_mock_cluster_t *mcluster, int nbrokers, char **argv, int argc)
{
    int partitions = 0;
    int replication = nbrokers < 3 ? nbrokers : 3;

    if (argc < 3 || argc > 4) {
        reply_error("usage: topic NAME PARTITIONS [REPLICATION]");
        return;
    }
    if (parse_int(argv[2], 1, 100000, &partitions) != 0) {
        reply_error("bad partition count '%s'", argv[2]);
        return;
    }
    if (argc == 4 && parse_int(argv[3], 1, nbrokers, &replication) != 0) {
        reply_error("bad replication factor '%s' (1 to the broker count)", argv[3]);
        return;
    }
    reply_kafka(rd_kafka_mock_topic_create(mcluster, argv[1], partitions, replication));
}

static void cmd_broker(rd_kafka_mock_cluster_t *mcluster, int nbrokers, char **argv, int argc)
{
    int id = 0;
    int up = strcmp(argv[0], "up") == 0;

    if (argc != 2) {
        reply_error("usage: %s BROKER_ID", argv[0]);
        return;
    }
    if (parse_int(argv[1], -1, nbrokers, &id) != 0 || id == 0) {
        reply_error("bad broker id '%s' (1 to the broker count, or -1 for all)", argv[1]);
        return;
    }
    reply_kafka(up ? rd_kafka_mock_broker_set_up(mcluster, id)
                   : rd_kafka_mock_broker_set_down(mcluster, id));
}

/* Runs one command line; returns 1 when it was `quit`. */
static int run_command(rd_kafka_mock_cluster_t *mcluster, int nbrokers, char *line)
{
    char *argv[8];
    int argc = 0;
    char *save = NULL;

    for (char *tok = strtok_r(line, " \t\r\n", &save); tok != NULL;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        if (argc == (int)(sizeof(argv) / sizeof(argv[0]))) {
            reply_error("too many arguments");
            return 0;
        }
        argv[argc++] = tok;
    }
    if (argc == 0) {
        reply_error("empty command");
    } else if (strcmp(argv[0], "topic") == 0) {
        cmd_topic(mcluster, nbrokers, argv, argc);
    } else if (strcmp(argv[0], "down") == 0 || strcmp(argv[0], "up") == 0) {
        cmd_broker(mcluster, nbrokers, argv, argc);
    } else if (strcmp(argv[0], "errors") == 0) {
        cmd_errors(mcluster, argv, argc);
    } else if (strcmp(argv[0], "clear-errors") == 0) {
        cmd_clear_errors(mcluster, argv, argc);
    } else if (strcmp(argv[0], "broker-errors") == 0) {
        cmd_broker_errors(mcluster, nbrokers, argv, argc);
    } else if (strcmp(argv[0], "rtt") == 0) {
        cmd_rtt(mcluster, nbrokers, argv, argc);
    } else if (strcmp(argv[0], "topic-error") == 0) {
        cmd_topic_error(mcluster, argv, argc);
    } else if (strcmp(argv[0], "quit") == 0) {
        reply_ok();
        return 1;
    } else {
        reply_error("unknown command '%s' (topic, down, up, errors, clear-errors, "
                    "broker-errors, rtt, topic-error, quit)",
                    argv[0]);
    }
    return 0;
}

/* Reads commands until `quit` or EOF. A line longer than the buffer is
 * refused as a whole rather than split into several commands. */
static void command_loop(rd_kafka_mock_cluster_t *mcluster, int nbrokers)
{
    char line[LINE_MAX_BYTES];

    while (fgets(line, sizeof(line), stdin) != NULL) {
        if (strchr(line, '\n') == NULL && !feof(stdin)) {
            int c;

            do {
                c = getchar();
            } while (c != '\n' && c != EOF);
            reply_error("command line too long");
            continue;
        }
        if (run_command(mcluster, nbrokers, line)) {
            return;
        }
    }
}

static int parse_args(int argc, char **argv, int *ret_nbrokers)
{
    int nbrokers = 3;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(argv[i], "--brokers") == 0) {
            if (i + 1 == argc || parse_int(argv[i + 1], 1, MAX_BROKERS, &nbrokers) != 0) {
                fprintf(stderr, "sluice-mock-kafka: --brokers: expected 1 to %d\n", MAX_BROKERS);
                return -1;
            }
            i++;
            continue;
        }
        fprintf(stderr, "sluice-mock-kafka: unknown argument '%s'\n", argv[i]);
        usage(stderr);
        return -1;
    }
    *ret_nbrokers = nbrokers;
    return 0;
}

int main(int argc, char **argv)
{
    char errstr[512];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mcluster;
    int nbrokers = 0;

    if (parse_args(argc, argv, &nbrokers) != 0) {
        return 2;
    }
    /* A reader that went away must not kill us mid-command: EOF on stdin
     * is how we learn that the test is over. */
    (void)signal(SIGPIPE, SIG_IGN);

    /* The cluster needs a client handle for its bookkeeping; this producer
     * has no bootstrap servers and never sends anything (log_level 4 hides
     * the notice saying so). */
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "client.id", "sluice-mock-kafka", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "sluice-mock-kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "sluice-mock-kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    mcluster = rd_kafka_mock_cluster_new(rk, nbrokers);
    if (mcluster == NULL) {
        fprintf(stderr, "sluice-mock-kafka: cannot create a mock cluster of %d brokers\n",
                nbrokers);
        rd_kafka_destroy(rk);
        return 1;
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
    (void)fflush(stdout);

    command_loop(mcluster, nbrokers);

    rd_kafka_mock_cluster_destroy(mcluster);
    rd_kafka_destroy(rk);
    return 0;
}
