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

static void usage(FILE *out)
{
    fputs("usage: sluice-mock-kafka [--brokers N]\n"
          "Starts a mock Kafka cluster of N brokers (default 3, ids 1..N) on 127.0.0.1,\n"
          "prints its bootstrap servers on the first line, then reads commands on stdin,\n"
          "one per line, each answered with `ok` or `error: MESSAGE`:\n"
          "  topic NAME PARTITIONS [REPLICATION]  create a topic (replication: min(3, N))\n"
          "  down BROKER_ID                       disconnect a broker, refuse connections\n"
          "  up BROKER_ID                         accept connections again\n"
          "  quit                                 stop (EOF on stdin does the same)\n"
          "BROKER_ID -1 means every broker. Unknown topics are auto-created with 4\n"
          "partitions; each partition keeps about 5 MB, older data is dropped.\n",
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
    } else if (strcmp(argv[0], "quit") == 0) {
        reply_ok();
        return 1;
    } else {
        reply_error("unknown command '%s' (topic, down, up, quit)", argv[0]);
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
