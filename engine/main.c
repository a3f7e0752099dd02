/* SPDX-License-Identifier: MIT */
/* The sluice command line: run, validate, graph, test, describe, top, tap,
 * --help, --version. The main
 * thread loads the config and waits; the loop thread (loop.c) handles
 * signals and the progress line. Exit codes: 0 done, 1 runtime failure,
 * 2 usage or config error, 130 on a second signal. */
#include "buf.h"
#include "cases.h"
#include "conf.h"
#include "control.h"
#include "describe.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "mem.h"
#include "plugin.h"
#include "runtime.h"
#include "summary.h"

#include <malloc.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_DONE   0
#define EXIT_FAILED 1
#define EXIT_USAGE  2

static const char usage[] =
    "usage: sluice run FILE [--set key.path=value]... [--progress|--quiet] [--summary-json OUT]\n"
    "                  [--log-format text|json]\n"
    "       sluice validate FILE [--set key.path=value]...\n"
    "       sluice graph FILE [--set key.path=value]...\n"
    "       sluice test FILE [CASES] [--set key.path=value]... [--timeout S]\n"
    "       sluice describe [TYPE]... [--plugin-path DIR]... [--json]\n"
    "       sluice top FILE [-n N]\n"
    "       sluice tap FILE NODE [--limit N] [--where EXPR]\n"
    "       sluice COMMAND --help\n"
    "       sluice --help | --version\n"
    "\n"
    "Runs a declarative pipeline (sources -> stages -> sinks) described in a YAML file.\n"
    "  run       run the pipeline until its sources are exhausted (or SIGINT/SIGTERM)\n"
    "  validate  check the file without running anything (exit 0, or 2 with the error)\n"
    "  graph     print the pipeline as a Graphviz DOT graph\n"
    "  test      run the file's tests: cases in memory and compare the output\n"
    "  describe  print the options of node types (all of them, or those named)\n"
    "  top       a live table of a running pipeline's nodes (FILE: its pipeline file or socket)\n"
    "  tap       a running pipeline's node's records, live, as JSON lines\n";

static const char top_usage[] =
    "usage: sluice top FILE [-n N]\n"
    "\n"
    "Shows, once a second, each node of the pipeline running from FILE (its pipeline\n"
    "file, or its control socket): records in and out per second, totals, drops, shed\n"
    "and dead records, queue fill, workers and sinks' p99 latency.\n"
    "  -n N   stop after N tables (default: until interrupted or the pipeline ends)\n";

static const char tap_usage[] =
    "usage: sluice tap FILE NODE [--limit N] [--where EXPR]\n"
    "\n"
    "Prints the records NODE emits (a sink: writes) in the pipeline running from FILE\n"
    "(its pipeline file, or its control socket), as JSON lines on stdout, live. A\n"
    "tap never slows the pipeline: what it cannot keep up with is dropped (counted).\n"
    "  --limit N     exit after N records\n"
    "  --where EXPR  only the records for which EXPR is true\n";

/* sluice top / sluice tap: their own arguments. */
static int control_main(int argc, char **argv)
{
    bool tap = strcmp(argv[1], "tap") == 0;
    const char *usage_text = tap ? tap_usage : top_usage;
    const char *pos[2] = {NULL, NULL};
    size_t npos = 0;
    unsigned long long limit = 0;
    const char *where = NULL;
    long iterations = 0;

    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        char *end = NULL;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            printf("%s", usage_text);
            return EXIT_DONE;
        } else if (tap && strcmp(arg, "--limit") == 0 && i + 1 < argc) {
            limit = strtoull(argv[++i], &end, 10);
            if (*end != '\0' || argv[i][0] == '-' || limit == 0) {
                fprintf(stderr, "sluice: --limit takes a number above 0, not '%s'\n%s", argv[i],
                        usage_text);
                return EXIT_USAGE;
            }
        } else if (tap && strcmp(arg, "--where") == 0 && i + 1 < argc) {
            where = argv[++i];
            if (strpbrk(where, "\t\n") != NULL) {
                fprintf(stderr, "sluice: --where: an expression on one line, without tabs\n");
                return EXIT_USAGE;
            }
        } else if (!tap && strcmp(arg, "-n") == 0 && i + 1 < argc) {
            iterations = strtol(argv[++i], &end, 10);
            if (*end != '\0' || iterations < 1) {
                fprintf(stderr, "sluice: -n takes a number above 0, not '%s'\n%s", argv[i],
                        usage_text);
                return EXIT_USAGE;
            }
        } else if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "sluice: unknown option or missing value: '%s'\n%s", arg, usage_text);
            return EXIT_USAGE;
        } else if (npos < (tap ? 2u : 1u)) {
            pos[npos++] = arg;
        } else {
            fprintf(stderr, "sluice: unexpected argument '%s'\n%s", arg, usage_text);
            return EXIT_USAGE;
        }
    }
    if (tap && npos == 2 && strpbrk(pos[1], "\t\n") != NULL) {
        fprintf(stderr, "sluice: tap: no node name has a tab or a line break\n");
        return EXIT_USAGE;
    }
    if (npos < (tap ? 2u : 1u)) {
        fprintf(stderr, "sluice: %s: missing %s\n%s", argv[1], npos == 0 ? "FILE" : "NODE",
                usage_text);
        return EXIT_USAGE;
    }
    return tap ? sl_control_tap_main(pos[0], pos[1], limit, where)
               : sl_control_top(pos[0], (int)iterations);
}

static const char describe_usage[] =
    "usage: sluice describe [TYPE]... [--plugin-path DIR]... [--json]\n"
    "\n"
    "Prints the options of each node type named (every type when none is): key,\n"
    "value type, default (or required), range or choices, and meaning, from the\n"
    "same rows the loader checks pipeline files with.\n"
    "  --plugin-path DIR  load the plugins of DIR first, as engine.plugin_path does\n"
    "  --json             one JSON array of the types instead of tables\n";

/* sluice describe: its own arguments (no pipeline file). */
static int describe_main(int argc, char **argv)
{
    const char **names = sl_calloc((size_t)argc, sizeof(*names));
    size_t nnames = 0;
    bool json = false;
    struct sl_err err = {0};
    int code = EXIT_DONE;

    if (names == NULL) {
        fprintf(stderr, "sluice: out of memory\n");
        return EXIT_FAILED;
    }
    for (int i = 2; i < argc && code == EXIT_DONE; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("%s", describe_usage);
            sl_free(names);
            return EXIT_DONE;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--plugin-path") == 0) {
            if (i + 1 == argc) {
                fprintf(stderr, "sluice: --plugin-path needs a folder\n%s", describe_usage);
                code = EXIT_USAGE;
            } else if (sl_plugin_load_dir(argv[++i], &err) != 0) {
                fprintf(stderr, "sluice: --plugin-path: %s\n", err.msg);
                code = EXIT_USAGE;
            }
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "sluice: unknown option '%s'\n%s", argv[i], describe_usage);
            code = EXIT_USAGE;
        } else {
            names[nnames++] = argv[i];
        }
    }
    if (code == EXIT_DONE && sl_describe(stdout, names, nnames, json, &err) != 0) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        code = err.code == SL_ENOMEM ? EXIT_FAILED : EXIT_USAGE;
    }
    sl_free(names);
    return code;
}

static const char set_help[] =
    "  --set key.path=value  override one key of FILE (repeatable, applied in order);\n"
    "                        quote a key that holds dots: --set 'sinks.db.\"x.y\"=v'\n";

/* A failure on stderr: "sluice: text", or a JSON line. */
static void say_failure(const char *text)
{
    if (sl_log_is_json()) {
        sl_log_json_line("error", text, NULL);
    } else {
        sl_log_text("sluice: ", text);
    }
}

/* A config error on stderr: file:line:col: key.path: message, or a JSON
 * line with the location as members. */
static void say_config_error(const struct sl_err *err)
{
    char msg[1024];

    if (!sl_log_is_json()) {
        sl_log_text("", sl_err_format(err, msg, sizeof(msg)));
        return;
    }
    struct sl_buf members = {0};
    int rc = 0;
    if (err->file != NULL) {
        rc = sl_buf_appendf(&members, ",\"file\":");
        rc = rc != 0 ? rc : sl_json_write_string(&members, err->file, strlen(err->file));
        rc =
            rc != 0 ? rc : sl_buf_appendf(&members, ",\"line\":%d,\"col\":%d", err->line, err->col);
    }
    if (rc == 0 && err->path[0] != '\0') {
        rc = sl_buf_appendf(&members, ",\"path\":");
        rc = rc != 0 ? rc : sl_json_write_string(&members, err->path, strlen(err->path));
    }
    sl_log_json_line("error", rc == 0 ? err->msg : sl_err_format(err, msg, sizeof(msg)),
                     rc == 0 ? members.data : NULL);
    sl_buf_release(&members);
}

/* One command: its name, usage and whether it takes run's options. */
struct command {
    const char *name;
    const char *usage;
    bool run_options;
};

static const struct command commands[] = {
    {"run",
     "usage: sluice run FILE [--set key.path=value]... [--progress|--quiet]\n"
     "                  [--summary-json OUT]\n"
     "\n"
     "Runs the pipeline in FILE until its sources are exhausted, or until SIGINT or\n"
     "SIGTERM (drained within engine.drain_timeout; a second signal exits at once),\n"
     "then prints a per-node summary on stderr.\n"
     "  --progress            a live line on stderr while it runs, when stderr is a terminal\n"
     "  --quiet               no summary, no info or warning lines; errors and the count of\n"
     "                        dead-lettered records still show\n"
     "  --summary-json OUT    also write the summary to OUT as JSON (with --quiet too)\n"
     "  --log-format json     every line on stderr is one JSON object: logs, errors and the\n"
     "                        summary ({\"time\", \"level\", \"msg\"[, \"summary\"]})\n",
     true},
    {"validate",
     "usage: sluice validate FILE [--set key.path=value]...\n"
     "\n"
     "Checks FILE without running anything or touching any file: exit 0, or 2 with\n"
     "the first mistake as file:line:col: key.path: message.\n",
     false},
    {"graph",
     "usage: sluice graph FILE [--set key.path=value]...\n"
     "\n"
     "Prints the pipeline in FILE as a Graphviz DOT graph on stdout.\n",
     false},
    {"test",
     "usage: sluice test FILE [CASES] [--set key.path=value]... [--timeout SECONDS]\n"
     "\n"
     "Runs each case of FILE's tests: section (and then of CASES, a file holding\n"
     "only a tests: list) through the pipeline in memory: its\n"
     "sources read the case's inputs, and no file, database or Kafka broker is\n"
     "touched. Prints ok or FAIL per case, with a diff of the records a node gave\n"
     "against those the case expects. Exit 0 when every case passed, 1 when one\n"
     "failed, 2 for a mistake in FILE (or no tests: section).\n"
     "  --timeout SECONDS   a case still running then fails (default 60)\n",
     false},
};

struct args {
    const struct command *cmd;
    const char *file;
    const char **sets;
    size_t nsets;
    bool progress;
    bool quiet;
    bool help;
    bool log_json;            /* --log-format json */
    const char *summary_json; /* --summary-json OUT, or NULL */
    const char *cases;        /* test: a side file of cases, or NULL */
    unsigned timeout_s;       /* test: --timeout, seconds a case may run */
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

/* Reports a usage mistake: the message, then the command's usage (or the
 * general one). Returns -1. */
static int usage_error(const struct command *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, "sluice: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s%s", cmd != NULL ? cmd->usage : usage, cmd != NULL ? set_help : "");
    return -1;
}

/* Parses argv into a. Returns 0, or -1 after printing why on stderr. */
static int parse_args(int argc, char **argv, struct args *a)
{
    a->sets = sl_calloc((size_t)argc, sizeof(*a->sets));
    if (a->sets == NULL) {
        fprintf(stderr, "sluice: out of memory\n");
        return -1;
    }
    if (argc < 2 || argv[1][0] == '-') {
        return usage_error(NULL, "expected a command%s", argc < 2 ? "" : ", before any option");
    }
    a->cmd = find_command(argv[1]);
    if (a->cmd == NULL) {
        return usage_error(NULL, "unknown command '%s'", argv[1]);
    }
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            a->help = true;
        } else if (strcmp(arg, "--set") == 0 && i + 1 < argc) {
            a->sets[a->nsets++] = argv[++i];
        } else if (strcmp(arg, "--set") == 0) {
            return usage_error(a->cmd, "%s needs a value: --set key.path=value", arg);
        } else if (strncmp(arg, "--set=", 6) == 0) {
            a->sets[a->nsets++] = arg + 6;
        } else if (a->cmd->run_options && a->summary_json != NULL &&
                   strncmp(arg, "--summary-json", 14) == 0 && (arg[14] == '\0' || arg[14] == '=')) {
            return usage_error(a->cmd, "%s is given twice", "--summary-json");
        } else if (a->cmd->run_options && strcmp(arg, "--summary-json") == 0 && i + 1 < argc) {
            a->summary_json = argv[++i];
        } else if (a->cmd->run_options && strcmp(arg, "--summary-json") == 0) {
            return usage_error(a->cmd, "%s needs a file: --summary-json OUT", arg);
        } else if (a->cmd->run_options && strncmp(arg, "--summary-json=", 15) == 0) {
            a->summary_json = arg + 15;
        } else if (strcmp(arg, "--log-format") == 0 || strncmp(arg, "--log-format=", 13) == 0) {
            const char *v = arg[12] == '=' ? arg + 13 : i + 1 < argc ? argv[++i] : "";
            if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0) {
                return usage_error(a->cmd, "--log-format takes text or json, not '%s'", v);
            }
            a->log_json = v[0] == 'j';
        } else if (a->cmd->run_options &&
                   (strcmp(arg, "--progress") == 0 || strcmp(arg, "--quiet") == 0)) {
            a->progress = a->progress || arg[2] == 'p';
            a->quiet = a->quiet || arg[2] == 'q';
        } else if (strcmp(a->cmd->name, "test") == 0 && strcmp(arg, "--timeout") == 0) {
            char *end = NULL;
            unsigned long v = i + 1 < argc ? strtoul(argv[++i], &end, 10) : 0;
            if (end == NULL || *end != '\0' || v == 0 || v > 86400) {
                return usage_error(a->cmd, "%s takes seconds, 1 to 86400", "--timeout");
            }
            a->timeout_s = (unsigned)v;
        } else if (arg[0] == '-' && arg[1] != '\0') {
            return usage_error(a->cmd, "unknown option '%s'", arg);
        } else if (a->file == NULL) {
            a->file = arg;
        } else if (strcmp(a->cmd->name, "test") == 0 && a->cases == NULL) {
            a->cases = arg;
        } else {
            return usage_error(a->cmd, "unexpected argument '%s'", arg);
        }
    }
    if (a->summary_json != NULL && a->summary_json[0] == '\0') {
        return usage_error(a->cmd, "%s needs a file name, not an empty one", "--summary-json");
    }
    if (a->progress && a->quiet) {
        return usage_error(a->cmd, "%s: --progress and --quiet exclude each other", a->cmd->name);
    }
    if (a->file == NULL && !a->help) {
        return usage_error(a->cmd, "%s: missing FILE", a->cmd->name);
    }
    return 0;
}

static void print_dot(const struct sl_conf *conf)
{
    printf("digraph sluice {\n  rankdir=LR;\n");
    for (size_t i = 0; i < conf->nnodes; i++) {
        const struct sl_conf_node *cn = &conf->nodes[i];
        const char *shape = cn->kind == SLUICE_KIND_SOURCE ? "invhouse"
                            : cn->kind == SLUICE_KIND_SINK ? "cylinder"
                                                           : "box";
        printf("  \"%s\" [shape=%s, label=\"%s\\n(%s)\"];\n", cn->name, shape, cn->name,
               cn->type->def.name);
        for (size_t j = 0; j < cn->ninputs; j++) {
            const struct sl_conf_input *in = &cn->inputs[j];
            if (in->output != NULL) {
                printf("  \"%s\" -> \"%s\" [label=\"%s\"];\n", in->node, cn->name, in->output);
            } else {
                printf("  \"%s\" -> \"%s\";\n", in->node, cn->name);
            }
        }
    }
    if (conf->dead_letter != NULL) {
        printf("  \"dead_letter\" [shape=cylinder, style=dashed, label=\"dead_letter\\n(%s)\"];\n",
               conf->dead_letter->type->def.name);
    }
    printf("}\n");
}

/* One line on stderr when records were dead-lettered, even with --quiet: a
 * run that lost most of its input must not look like a clean one. */
static void report_dead_letters(const struct sl_pipeline *pl)
{
    unsigned long long records = 0, dead = 0;

    for (size_t i = 0; i < pl->nnodes; i++) {
        const struct sl_node *node = &pl->nodes[i];

        if (node == pl->dead_letter) {
            continue;
        }
        if (node->cn->kind == SLUICE_KIND_SOURCE) {
            records += atomic_load_explicit(&node->c.in, memory_order_relaxed);
        }
        dead += atomic_load_explicit(&node->c.dead, memory_order_relaxed);
    }
    if (dead == 0) {
        return;
    }
    char where[96];
    if (pl->dead_letter == NULL) {
        snprintf(where, sizeof(where), " (no dead_letter sink: they were only counted)");
    } else if (atomic_load(&pl->failed)) {
        /* What a failed run did not store is not committed either: a
         * later run reads it again. */
        snprintf(where, sizeof(where), " (the run failed: the dead_letter sink stored %llu)",
                 (unsigned long long)atomic_load_explicit(&pl->dead_letter->c.out,
                                                          memory_order_relaxed));
    } else {
        snprintf(where, sizeof(where), " (see the dead_letter sink)");
    }
    if (dead <= records) {
        sl_log_always("%llu of %llu records were dead-lettered%s", dead, records, where);
    } else {
        /* Fan-out: each branch may dead-letter its own copy of a record. */
        sl_log_always("%llu dead letters from %llu records%s", dead, records, where);
    }
}

static int run(struct sl_conf *conf, const struct args *a)
{
    struct sl_pipeline *pl = NULL;
    struct sl_loop *loop = NULL;
    struct sl_err err = {0};
    char msg[1024];
    int code = EXIT_DONE;
    int rc = 0;

    /* Signals go to the loop thread only: block them before any thread
     * starts (one caught before, since main began, is handed to the loop).
     * The loop starts first, so signals are handled while sinks open. */
    sl_loop_block_signals();
    loop = sl_loop_start(conf, a->progress, !a->quiet, a->summary_json, &err);
    if (loop != NULL && sl_pipeline_new(conf, &pl, &err) == 0) {
        sl_loop_attach(loop, pl);
        rc = sl_pipeline_start(pl, &err);
    }
    if (loop == NULL || pl == NULL || rc != 0) {
        say_failure(sl_err_format(&err, msg, sizeof(msg)));
        sl_loop_stop(loop);
        sl_loop_guard_shutdown(loop, pl); /* sources may have started */
        sl_pipeline_free(pl);
        sl_loop_free(loop);
        return err.code == SL_ECONFIG ? EXIT_USAGE : EXIT_FAILED;
    }
    sl_pipeline_wait(pl, 0);
    if (sl_loop_drain_timed_out(loop)) {
        code = EXIT_FAILED;
    }
    sl_loop_stop(loop);
    /* From here on nothing else bounds the process: a thread or close that
     * never ends would hang it after the run (issue 6, finding 6). */
    sl_loop_guard_shutdown(loop, pl);
    if (pl->failed) {
        say_failure(sl_err_format(&pl->fail_err, msg, sizeof(msg)));
        code = EXIT_FAILED;
    }
    if (!a->quiet) {
        sl_loop_guard_note(loop, "printing the summary");
        sl_summary_print(pl, stderr);
    }
    if (a->summary_json != NULL) {
        snprintf(msg, sizeof(msg), "writing --summary-json %s", a->summary_json);
        sl_loop_guard_note(loop, msg);
    }
    if (a->summary_json != NULL && sl_summary_write_json(pl, a->summary_json, &err) != 0) {
        say_failure(sl_err_format(&err, msg, sizeof(msg)));
        code = code == EXIT_DONE ? EXIT_FAILED : code;
    }
    report_dead_letters(pl);
    sl_pipeline_free(pl);
    sl_loop_free(loop); /* after pl: its flow may call the loop's waker */
    return code;
}

int main(int argc, char **argv)
{
    struct args a = {0};
    struct sl_conf *conf = NULL;
    struct sl_err err = {0};
    int code;

    /* First: a SIGINT/SIGTERM from now on stops the run cleanly instead of
     * killing the process (it would, while the config loads). */
    sl_loop_catch_signals();
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        printf("%s", usage);
        return EXIT_DONE;
    }
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("sluice %s\n", SLUICE_VERSION);
        return EXIT_DONE;
    }
    if (argc >= 2 && strcmp(argv[1], "describe") == 0) {
        sl_loop_release_signals();
        return describe_main(argc, argv);
    }
    if (argc >= 2 && (strcmp(argv[1], "top") == 0 || strcmp(argv[1], "tap") == 0)) {
        sl_loop_release_signals(); /* Ctrl-C ends them */
        return control_main(argc, argv);
    }
    if (parse_args(argc, argv, &a) != 0) {
        sl_free(a.sets);
        return EXIT_USAGE;
    }
    if (strcmp(a.cmd->name, "run") != 0 || a.help) {
        sl_loop_release_signals(); /* nothing to drain: a signal ends it */
    }
    if (strcmp(a.cmd->name, "test") == 0 && sl_cases_register() != 0) {
        fprintf(stderr, "sluice: out of memory\n");
        sl_free(a.sets);
        return EXIT_FAILED;
    }
    if (a.help) {
        printf("%s%s", a.cmd->usage, set_help);
        sl_free(a.sets);
        return EXIT_DONE;
    }
    sl_log_set_quiet(a.quiet);
    sl_log_set_json(a.log_json);
    /* SQLite's allocation statistics take a global mutex per allocation
     * (about 7% of the sink's time); sluice does not use them. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    /* No bulk allocation of 20 pages (88 KB) per connection at its first
     * read: the page cache grows page by page up to its cache_size (a
     * SQLite sink's is 32 KiB to 4 MiB, memory_limit / 32 shared out). The
     * bulk is taken before cache_size can be set, and 80 SQLite sinks held
     * 7 MB of it beyond memory_limit. */
    sqlite3_config(SQLITE_CONFIG_PAGECACHE, NULL, 0, 0);
    /* Batches are allocated on one thread and freed on another; with
     * glibc's per-thread arenas that left peak RSS growing with the input
     * (131-152 MB for 3M orders against 97 MB with one arena, at the same
     * speed: allocations are per batch, not per record). */
    if (getenv("MALLOC_ARENA_MAX") == NULL) {
        mallopt(M_ARENA_MAX, 1);
    }
    /* Fixed thresholds instead of glibc's moving ones: once a 12 MB block
     * (a long line) was freed, glibc served blocks that size from the heap
     * and kept up to twice that free in it, so peak RSS went 10-30 MB past
     * memory_limit + 16 MiB with long lines. Blocks and arena chunks of
     * ordinary lines stay below 2 MiB and are reused from the heap as
     * before; 1 MiB of free heap top is kept (the speed of the 1M orders
     * shapes is unchanged, and a 1 MiB memory_limit keeps its bound).
     * Once the config is read, an eighth of memory_limit (1 to 4 MiB) is
     * kept: a diamond's copies are freed a family at a time, and with
     * 1 MiB each family's memory went back to the kernel and was faulted
     * in again (a 20-way diamond at 16 MiB: 1.3 s of CPU against 0.65 s
     * with 8 MiB kept). Not more: what is kept is RSS outside the budget,
     * and two sources of 9 MB lines at 16 MiB peaked at 25-26 MB with
     * 1 MiB kept, 27-29 with 4 and 27-31 with 8, against a bound of 32. */
    if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL) {
        mallopt(M_MMAP_THRESHOLD, 2 * 1024 * 1024);
    }
    bool trim_set = getenv("MALLOC_TRIM_THRESHOLD_") != NULL;
    if (!trim_set) {
        mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
    }
    /* run and graph leave the tests: section alone; validate and test check it. */
    bool cases = strcmp(a.cmd->name, "validate") == 0 || strcmp(a.cmd->name, "test") == 0;
    int loaded = cases ? sl_conf_load_cases(a.file, a.cases, a.sets, a.nsets, &conf, &err)
                       : sl_conf_load(a.file, a.sets, a.nsets, &conf, &err);
    if (loaded != 0) {
        say_config_error(&err);
        sl_free(a.sets);
        return err.code == SL_ECONFIG ? EXIT_USAGE
                                      : (err.code == SL_EIO ? EXIT_USAGE : EXIT_FAILED);
    }
    sl_log_set_level((enum sl_log_level)conf->log_level);
    if (!trim_set && conf->memory_limit / 8 > 1024 * 1024) {
        uint64_t keep = conf->memory_limit / 8;
        mallopt(M_TRIM_THRESHOLD, keep < 4 * 1024 * 1024 ? (int)keep : 4 * 1024 * 1024);
    }
    if (strcmp(a.cmd->name, "validate") == 0) {
        code = EXIT_DONE;
    } else if (strcmp(a.cmd->name, "graph") == 0) {
        print_dot(conf);
        code = EXIT_DONE;
    } else if (strcmp(a.cmd->name, "test") == 0) {
        code = sl_cases_run(conf, a.file, a.cases, a.timeout_s != 0 ? a.timeout_s : 60);
    } else {
        code = run(conf, &a);
    }
    sl_conf_free(conf);
    sl_free(a.sets);
    return code;
}
