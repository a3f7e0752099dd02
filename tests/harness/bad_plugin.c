/* SPDX-License-Identifier: MIT */
/* Plugins that are wrong in one way each, for the loader's refusals
 * (tests/integration/test_plugins.sh). Built once per BAD_* macro, each
 * into a folder of its own (CMakeLists.txt). BAD_OK is a correct one: a
 * stage `probe` that adds a field `probed: true`, drops records whose
 * `drop` field is true, dead-letters those whose `bad` field is true, and
 * for each record whose `twice` field is true adds a copy. BAD_MESSY is the
 * same with untidy text: its dead letters' reason is long and not valid
 * UTF-8, and it logs lines with line breaks and control characters, at
 * every level, from init and process. BAD_INIT_FAILS_LINES fails init with
 * a reason of several lines. */
#include <signal.h>
#include <sluice/plugin.h>
#include <stdio.h>
#include <string.h>

struct probe_conf {
    int64_t level;
    int mode;
};

#ifndef BAD_BAD_OPTION
static const char *const modes[] = {"a", "b", NULL};
#endif

static const struct sluice_option probe_options[] = {
#ifdef BAD_BAD_DEFAULT
    SLUICE_OPT_ROW(struct probe_conf, level, SLUICE_OPT_INT, "abc", 0, 9, NULL, 0, "A level."),
#else
    SLUICE_OPT_ROW(struct probe_conf, level, SLUICE_OPT_INT, "1", 0, 9, NULL, 0, "A level."),
#endif
#ifdef BAD_GROUP_CLASH
    {"level.x", SLUICE_OPT_BOOL, NULL, offsetof(struct probe_conf, mode), 0, 0, NULL, 0, "Unset."},
#endif
#ifdef BAD_BAD_OPTION
    /* An enum without choices. */
    SLUICE_OPT_ROW(struct probe_conf, mode, SLUICE_OPT_ENUM, NULL, 0, 0, NULL, 0, "A mode."),
#else
    SLUICE_OPT_ROW(struct probe_conf, mode, SLUICE_OPT_ENUM, "a", 0, 0, modes, 0, "A mode."),
#endif
    {0},
};

static const struct sluice_host_api *host;

#ifdef BAD_MESSY
/* Two invalid bytes, then 3000 two-byte characters: a cut by bytes at an
 * odd length splits one. Written by init, before any process call. */
static char messy_reason[8 + 6000 + 1];
#endif

static int probe_init(
    struct sluice_stage *st, const void *conf, void **ret_ctx, char *errbuf, size_t errbuf_len)
{
    (void)st;
#ifdef BAD_INIT_FAILS
    snprintf(errbuf, errbuf_len, "the reference table is not there");
    return SLUICE_EFAIL;
#endif
#ifdef BAD_INIT_FAILS_LINES
    snprintf(errbuf, errbuf_len, "no table:\nline two\r\x1b[2Jline three");
    return SLUICE_EFAIL;
#endif
#ifdef BAD_MESSY
    memcpy(messy_reason, "probe:\xff\xc3", 8);
    for (size_t k = 0; k < 3000; k++) {
        memcpy(messy_reason + 8 + 2 * k, "\xc3\xa9", 2);
    }
    host->log(st, SLUICE_LOG_DEBUG, "debug from init");
    host->log(st, SLUICE_LOG_INFO, "info from init:\nsecond line\x1b[31m red");
#endif
#ifdef BAD_INIT_CRASHES
    raise(SIGSEGV);
#endif
    (void)errbuf;
    (void)errbuf_len;
    *ret_ctx = (void *)conf;
    return 0;
}

static bool flag(const struct sluice_record *rec, const char *name)
{
    struct sluice_value v;

    return host->get(rec, name, strlen(name), &v) == 0 && v.type == SLUICE_TYPE_BOOL && v.u.b;
}

static int probe_process(struct sluice_stage *st, void *ctx, struct sluice_batch *batch)
{
    const struct probe_conf *conf = ctx;
    size_t n = host->batch_size(batch);
    struct sluice_value yes = {.type = SLUICE_TYPE_BOOL};
    struct sluice_value level = {.type = SLUICE_TYPE_INT};

    yes.u.b = true;
    level.u.i = conf->level;
#ifdef BAD_MESSY
    host->log(st, SLUICE_LOG_DEBUG, "debug from process: %zu records", n);
    host->log(st, SLUICE_LOG_WARN, "warning from process:\n\tindented \x7f\x01 and \xff");
#endif
    for (size_t i = 0; i < n; i++) {
        struct sluice_record *rec = host->batch_record(batch, i);
#ifdef BAD_PROCESS_CRASHES
        if (flag(rec, "bad")) {
            *(volatile int *)(uintptr_t)(conf->level * 16) = 1; /* a low address: a fault */
        }
#endif
        if (flag(rec, "drop")) {
            host->drop(batch, rec);
            host->count(st, 0, 1);
            continue;
        }
        if (flag(rec, "bad")) {
#ifdef BAD_MESSY
            if (host->dead(st, batch, rec, messy_reason) != 0) {
                return SLUICE_ENOMEM;
            }
#else
            if (host->dead(st, batch, rec, "probe: bad is true") != 0) {
                return SLUICE_ENOMEM;
            }
#endif
            continue;
        }
        if (host->set(batch, rec, "probed", 6, &yes) != 0 ||
            host->set(batch, rec, "level", 5, &level) != 0) {
            return SLUICE_ENOMEM;
        }
        if (flag(rec, "twice")) {
            struct sluice_record *copy = host->emit(batch, rec, true);
            struct sluice_value c = {.type = SLUICE_TYPE_STR, .len = 4};
            c.u.s = "copy";
            if (copy == NULL || host->set(batch, copy, "copy", 4, &c) != 0 ||
                host->remove(batch, copy, "twice", 5) != 0) {
                return SLUICE_ENOMEM;
            }
        }
    }
    return 0;
}

static void probe_fini(void *ctx)
{
    (void)ctx;
}

#ifdef BAD_DUP_COUNTER
static const char *const probe_counters[] = {"dropped_by_flag", "dropped_by_flag", NULL};
#else
static const char *const probe_counters[] = {"dropped_by_flag", NULL};
#endif

static const struct sluice_stage_def probe_stage = {
#ifdef BAD_ABI_MAJOR
    .abi_version = (SLUICE_ABI_MAJOR + 1) << 16,
#else
    .abi_version = SLUICE_ABI_VERSION,
#endif
    .struct_size = sizeof(struct sluice_stage_def),
#ifdef BAD_DUP_BUILTIN
    .name = "filter",
#else
    .name = "probe",
#endif
    .description = "A test stage.",
#ifdef BAD_SOURCE_KIND
    .kind = SLUICE_KIND_SOURCE,
#else
    .kind = SLUICE_KIND_TRANSFORM,
#endif
    .flags = SLUICE_STAGE_STATELESS,
    .conf_size = sizeof(struct probe_conf),
    .options = probe_options,
    .init = probe_init,
    .process = probe_process,
    .fini = probe_fini,
    .counters = probe_counters,
};

static const struct sluice_stage_def *const probe_stages[] = {&probe_stage,
#ifdef BAD_DUP_INSIDE
                                                              &probe_stage,
#endif
                                                              NULL};

static const struct sluice_plugin probe_plugin = {
#ifdef BAD_ABI_MAJOR
    .abi_version = (SLUICE_ABI_MAJOR + 1) << 16,
#else
    .abi_version = SLUICE_ABI_VERSION,
#endif
#ifdef BAD_OLD_STRUCT
    .struct_size = 8,
#else
    .struct_size = sizeof(struct sluice_plugin),
#endif
    .name = "probe",
    .version = "0.1",
    .stages = probe_stages,
};

#ifdef BAD_NO_ENTRY
/* Exports something else instead. */
SLUICE_EXPORT const struct sluice_plugin *sluice_plugin_entri(void)
{
    return &probe_plugin;
}
#else
SLUICE_EXPORT const struct sluice_plugin *
sluice_plugin_entry(const struct sluice_host_api *api, char *errbuf, size_t errbuf_len)
{
    host = api;
#ifdef BAD_ENTRY_NULL
    snprintf(errbuf, errbuf_len, "needs a licence key");
    return NULL;
#endif
    (void)errbuf;
    (void)errbuf_len;
    return &probe_plugin;
}
#endif
