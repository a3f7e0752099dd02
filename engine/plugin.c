/* SPDX-License-Identifier: MIT */
/* Loading stage plugins and running them. A plugin file is dlopen'ed, its
 * one entry point is called with the host function table (plugin_host.c),
 * and what it returns is checked before anything of it is registered: a
 * plugin built for another ABI major, with a struct older than it says, a
 * type name taken, a kind plugins may not define or an option table the
 * loader could not fill from is refused with the file's name. Each type
 * becomes a node type whose callbacks adapt the public ones: the batch is
 * made writable, the plugin edits it in place, and what is left is emitted.
 * Calls into plugin code at load and init run under a guard that names
 * the plugin if it crashes. */
#include "plugin.h"

#include "json.h"
#include "log.h"
#include "mem.h"
#include "plugin_int.h"
#include "runtime.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PLUGINS      64
#define MAX_OPTION_ROWS  1024
#define DEF_SIZE_V1_0    offsetof(struct sluice_stage_def, counters)
#define PLUGIN_SIZE_V1_1 sizeof(struct sluice_plugin)

/* A loaded plugin file and the node types made of its definitions. */
struct loaded {
    char *path; /* realpath */
    void *handle;
    struct sl_node_type *types;
    const struct sl_node_type **table; /* NULL-terminated, registered */
    size_t ntypes;
};

static struct loaded plugins[MAX_PLUGINS];
static size_t nplugins;

/* ---- the crash guard ---- */

/* A process-wide handler, installed with the first plugin, says which
 * plugin call crashed when the crash is on a thread that is in one (a
 * thread-local message, so a crash of another thread meanwhile is not
 * blamed on the plugin), then gives the signal to the handler that was
 * there before (the default, or a sanitizer's). */
static const int guarded_signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
#define NGUARDED (sizeof(guarded_signals) / sizeof(guarded_signals[0]))

static struct sigaction guard_old[NGUARDED];
static pthread_once_t guard_once = PTHREAD_ONCE_INIT;
static _Thread_local const char *tl_crash_msg;
static _Thread_local size_t tl_crash_len;
static _Thread_local char tl_guard_buf[PATH_MAX + 256];

/* Only write(2) and signal calls: it runs in a signal handler. */
static void on_crash(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    if (tl_crash_msg != NULL) {
        (void)!write(STDERR_FILENO, tl_crash_msg, tl_crash_len);
        tl_crash_msg = NULL;
    }
    for (size_t i = 0; i < NGUARDED; i++) {
        if (guarded_signals[i] == sig) {
            sigaction(sig, &guard_old[i], NULL);
        }
    }
    /* A fault comes back when the instruction runs again, to the old
     * handler; a signal that was sent (abort, kill) is sent again. */
    if (info == NULL || info->si_code <= 0) {
        raise(sig);
    }
}

static void install_guard(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_crash;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    for (size_t i = 0; i < NGUARDED; i++) {
        sigaction(guarded_signals[i], &sa, &guard_old[i]);
    }
}

/* From now on until guard_end, a crash on this thread is reported as a
 * crash of plugin file in what (of node, if not NULL). */
static void guard_begin(const char *file, const char *what, const char *node)
{
    pthread_once(&guard_once, install_guard);
    if (node != NULL) {
        snprintf(tl_guard_buf, sizeof(tl_guard_buf),
                 "sluice: plugin %s crashed in %s of node '%s'\n", file, what, node);
    } else {
        snprintf(tl_guard_buf, sizeof(tl_guard_buf), "sluice: plugin %s crashed in %s\n", file,
                 what);
    }
    tl_crash_len = strlen(tl_guard_buf);
    tl_crash_msg = tl_guard_buf;
}

static void guard_end(void)
{
    tl_crash_msg = NULL;
}

/* ---- the per-thread JSON decoder of the host's checks ---- */

static pthread_key_t decoder_key;
static pthread_once_t decoder_once = PTHREAD_ONCE_INIT;

static void free_decoder(void *d)
{
    sl_json_decoder_free(d);
}

static void make_decoder_key(void)
{
    (void)pthread_key_create(&decoder_key, free_decoder);
}

struct sl_json_decoder *sl__plugin_thread_decoder(void)
{
    struct sl_json_decoder *d;

    pthread_once(&decoder_once, make_decoder_key);
    d = pthread_getspecific(decoder_key);
    if (d == NULL && (d = sl_json_decoder_new(0)) != NULL) {
        (void)pthread_setspecific(decoder_key, d);
    }
    return d;
}

/* ---- the adapter: a plugin type as a node type ---- */

static const struct loaded *loaded_of(const struct sl_node_type *type)
{
    for (size_t i = 0; i < nplugins; i++) {
        if (type >= plugins[i].types && type < plugins[i].types + plugins[i].ntypes) {
            return &plugins[i];
        }
    }
    return NULL;
}

const char *sl_plugin_file_of(const struct sl_node_type *type)
{
    const struct loaded *p = loaded_of(type);

    return p != NULL ? p->path : NULL;
}

static int plugin_open(struct sl_node *node, struct sl_err *err)
{
    const struct sluice_stage_def *def = &node->type->def;
    struct sl__plugin_node *pn = sl_calloc(1, sizeof(*pn));
    char errbuf[SL_ERR_MSG_MAX] = "";
    int rc = 0;

    if (pn == NULL) {
        return sl_err_set(err, SL_ENOMEM, "%s: out of memory", node->name);
    }
    while (def->counters != NULL && pn->ncounters < SLUICE_MAX_COUNTERS &&
           def->counters[pn->ncounters] != NULL) {
        pn->ncounters++;
    }
    snprintf(pn->crash_msg, sizeof(pn->crash_msg),
             "sluice: plugin %s crashed in process of node '%s'\n", sl_plugin_file_of(node->type),
             node->name);
    pn->crash_len = strlen(pn->crash_msg);
    pthread_once(&guard_once, install_guard);
    if (def->init != NULL) {
        guard_begin(sl_plugin_file_of(node->type), "init", node->name);
        rc = def->init((struct sluice_stage *)node, node->cn->conf, &pn->ctx, errbuf,
                       sizeof(errbuf));
        guard_end();
    }
    if (rc != 0) {
        sl_free(pn);
        errbuf[sizeof(errbuf) - 1] = '\0';
        return sl_err_set(err, SL_EFATAL, "node '%s' (type '%s', plugin %s): init failed: %s",
                          node->name, def->name, sl_plugin_file_of(node->type),
                          errbuf[0] != '\0' ? errbuf : "no reason given");
    }
    node->state = pn;
    return 0;
}

/* A call that added records and dropped them again (a plugin giving up
 * on a record when emit ran out of room drops its copies and dead-letters
 * it) leaves their bytes in the batch's arena: up to the call's room of
 * garbage, which travelled on to the sinks and waited in their queues
 * with the rest (500 MiB in flight at a 64 MiB limit). Such a batch is
 * compacted before it goes on. Only then: the live bytes are counted
 * field by field. */
static void compact_if_garbage(const struct sl__plugin_call *call)
{
    struct sl_batch *batch = call->batch;

    if ((call->added_gone == 0 && !call->full) ||
        sl_batch_bytes(batch) < call->start_bytes + SL_ARENA_CHUNK_MAX) {
        return;
    }
    if (batch->arena.bytes > 2 * sl_batch_live_bytes(batch) + SL_ARENA_CHUNK_MAX) {
        /* On OOM the batch goes on as it is. */
        (void)sl_batch_compact(batch);
    }
}

static int plugin_process(struct sl_node *node, struct sl_batch *batch)
{
    const struct sluice_stage_def *def = &node->type->def;
    struct sl__plugin_node *pn = node->state;
    struct sl__plugin_call call;
    struct sl_batch *writable = sl_batch_make_writable(batch);

    if (writable == NULL) {
        sl_batch_unref(batch);
        return SL_ENOMEM;
    }
    batch = writable;
    if (sl__plugin_call_begin(&call, node, batch) != 0) {
        sl_batch_unref(batch);
        return SL_ENOMEM;
    }
    tl_crash_msg = pn->crash_msg;
    tl_crash_len = pn->crash_len;
    int rc = def->process((struct sluice_stage *)node, pn->ctx, (struct sluice_batch *)batch);
    tl_crash_msg = NULL;
    int end = sl__plugin_call_end(&call);
    if (call.full && !atomic_exchange_explicit(&pn->full, true, memory_order_relaxed)) {
        sl_log_warn("node '%s': plugin stage '%s' added more to one batch than one call may "
                    "(%.1f MiB, 1/%d of what memory_limit leaves the records): emit and set "
                    "refused the rest (said once per node)",
                    node->name, def->name, (double)call.room / (1 << 20), SL_PLUGIN_ROOM_DIV);
    }
    if (rc != 0) {
        /* Once per node: the pipeline stops, and a line per batch in
         * flight said nothing more. */
        if (!atomic_exchange_explicit(&pn->failed, true, memory_order_relaxed)) {
            sl_log_error("node '%s': plugin stage '%s' failed a batch (it returned %d)", node->name,
                         def->name, rc);
        }
        sl_batch_unref(batch);
        return rc == SLUICE_ENOMEM ? SL_ENOMEM : SL_EFATAL;
    }
    if (end != 0) {
        sl_batch_unref(batch);
        return end;
    }
    /* What the call made of the batch cuts its source's next batches: as
     * it was at its largest, which is what the next calls may hold. */
    sl__pipeline_note_grown(node, batch, call.n);
    compact_if_garbage(&call);
    sl_node_emit(node, 0, batch);
    return 0;
}

static int plugin_flush(struct sl_node *node)
{
    const struct sluice_stage_def *def = &node->type->def;
    struct sl__plugin_node *pn = node->state;

    if (def->flush == NULL || pn == NULL) {
        return 0;
    }
    int rc = def->flush((struct sluice_stage *)node, pn->ctx);
    if (rc != 0) {
        sl_log_error("node '%s': plugin stage '%s' failed its flush (it returned %d)", node->name,
                     def->name, rc);
        return SL_EFATAL;
    }
    return 0;
}

static void plugin_close(struct sl_node *node)
{
    struct sl__plugin_node *pn = node->state;

    if (pn != NULL && node->type->def.fini != NULL) {
        node->type->def.fini(pn->ctx);
    }
    sl_free(pn);
    node->state = NULL;
}

static void plugin_summary(struct sl_node *node, FILE *out)
{
    const struct sl__plugin_node *pn = node->state;
    uint64_t added = atomic_load_explicit(&node->c.added, memory_order_relaxed);

    if (added > 0) {
        fprintf(out, "%s: %llu records added by the stage\n", node->name,
                (unsigned long long)added);
    }
    if (pn == NULL || pn->ncounters == 0) {
        return;
    }
    fprintf(out, "%s:", node->name);
    for (unsigned i = 0; i < pn->ncounters; i++) {
        fprintf(out, " %s %llu", node->type->def.counters[i],
                (unsigned long long)atomic_load(&pn->counters[i]));
    }
    fputc('\n', out);
}

static int plugin_summary_json(struct sl_node *node, struct sl_buf *buf)
{
    const struct sl__plugin_node *pn = node->state;
    int rc = 0;

    for (unsigned i = 0; rc == 0 && pn != NULL && i < pn->ncounters; i++) {
        const char *name = node->type->def.counters[i];
        rc = sl_buf_appendf(buf, i == 0 ? ",\"counters\":{" : ",");
        rc = rc != 0 ? rc : sl_json_write_string(buf, name, strlen(name));
        rc = rc != 0
                 ? rc
                 : sl_buf_appendf(buf, ":%llu", (unsigned long long)atomic_load(&pn->counters[i]));
        rc = rc == 0 && i + 1 == pn->ncounters ? sl_buf_putc(buf, '}') : rc;
    }
    return rc;
}

/* ---- checks at load ---- */

static size_t opt_size(enum sluice_opt_type type)
{
    switch (type) {
    case SLUICE_OPT_STR:
        return sizeof(const char *);
    case SLUICE_OPT_INT:
        return sizeof(int64_t);
    case SLUICE_OPT_BOOL:
    case SLUICE_OPT_ENUM:
        return sizeof(int);
    case SLUICE_OPT_DOUBLE:
        return sizeof(double);
    case SLUICE_OPT_SIZE:
    case SLUICE_OPT_DURATION:
        return sizeof(uint64_t);
    case SLUICE_OPT_EXPR:
        return sizeof(struct sluice_expr *);
    case SLUICE_OPT_LIST:
        return sizeof(struct sluice_list);
    default:
        return sizeof(struct sluice_map);
    }
}

static bool name_ok(const char *name, const char *extra)
{
    if (name == NULL || name[0] == '\0' || strlen(name) > 64) {
        return false;
    }
    for (const char *p = name; *p != '\0'; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              strchr(extra, *p) != NULL)) {
            return false;
        }
    }
    return true;
}

/* Keys every node has: an option of that name could never be set. */
static const char *const node_keys[] = {"type",        "inputs",      "workers",
                                        "workers_min", "workers_max", "queue",
                                        "when_full",   "priority",    NULL};

static int check_options(const struct sluice_stage_def *def, char *msg, size_t len)
{
    const struct sluice_option *opts = def->options;

    for (size_t i = 0; opts != NULL && opts[i].name != NULL; i++) {
        const struct sluice_option *o = &opts[i];
        if (i == MAX_OPTION_ROWS) {
            return snprintf(msg, len,
                            "more than %d option rows (is the table terminated by a "
                            "row with name NULL?)",
                            MAX_OPTION_ROWS),
                   -1;
        }
        if (!name_ok(o->name, ".")) {
            return snprintf(msg, len, "option %zu: invalid name '%s' (use a-z, 0-9, '_', '.')", i,
                            o->name),
                   -1;
        }
        for (size_t k = 0; node_keys[k] != NULL; k++) {
            if (strcmp(node_keys[k], o->name) == 0) {
                return snprintf(msg, len, "option '%s': every node has that key already", o->name),
                       -1;
            }
        }
        for (size_t j = 0; j < i; j++) {
            size_t lj = strlen(opts[j].name), li = strlen(o->name);
            const char *shorter = lj < li ? opts[j].name : o->name;
            const char *longer = lj < li ? o->name : opts[j].name;
            size_t ls = lj < li ? lj : li;
            if (lj != li && strncmp(shorter, longer, ls) == 0 && longer[ls] == '.') {
                return snprintf(msg, len,
                                "option '%s' and option '%s': one is a group of the other", shorter,
                                longer),
                       -1;
            }
            if (strcmp(opts[j].name, o->name) == 0) {
                return snprintf(msg, len, "option '%s' is defined twice", o->name), -1;
            }
        }
        if ((unsigned)o->type >= SLUICE_OPT_TYPE_COUNT) {
            return snprintf(msg, len, "option '%s': unknown type %d", o->name, (int)o->type), -1;
        }
        if (o->flags & ~(SLUICE_OPT_REQUIRED | SLUICE_OPT_SECRET | SLUICE_OPT_LATER)) {
            return snprintf(msg, len, "option '%s': unknown flags 0x%x", o->name, o->flags), -1;
        }
        if (o->offset > def->conf_size || opt_size(o->type) > def->conf_size - o->offset) {
            return snprintf(msg, len,
                            "option '%s': its value (offset %zu, %zu bytes) does not fit in "
                            "conf_size %zu",
                            o->name, o->offset, opt_size(o->type), def->conf_size),
                   -1;
        }
        if (o->type == SLUICE_OPT_ENUM && (o->choices == NULL || o->choices[0] == NULL)) {
            return snprintf(msg, len, "option '%s': an enum needs choices", o->name), -1;
        }
    }
    return 0;
}

/* What is wrong with def, in msg, or 0. names: the types of the file
 * before it. */
static int check_def(const struct sluice_stage_def *def,
                     const struct sluice_stage_def *const *before,
                     size_t nbefore,
                     char *msg,
                     size_t len)
{
    if (def->abi_version >> 16 != SLUICE_ABI_MAJOR) {
        return snprintf(msg, len, "a type is built for ABI %u.%u, this sluice has %u.%u",
                        def->abi_version >> 16, def->abi_version & 0xFFFF, SLUICE_ABI_MAJOR,
                        SLUICE_ABI_MINOR),
               -1;
    }
    if (def->struct_size < DEF_SIZE_V1_0) {
        return snprintf(msg, len, "a type's struct_size %u is smaller than ABI 1.0's %zu",
                        def->struct_size, (size_t)DEF_SIZE_V1_0),
               -1;
    }
    if (!name_ok(def->name, "")) {
        return snprintf(msg, len, "invalid type name '%s' (use a-z, 0-9 and '_')",
                        def->name != NULL ? def->name : "(null)"),
               -1;
    }
    if (def->kind != SLUICE_KIND_TRANSFORM) {
        return snprintf(msg, len,
                        "type '%s' is a %s: plugins define stages (SLUICE_KIND_TRANSFORM) only",
                        def->name, def->kind == SLUICE_KIND_SOURCE ? "source" : "sink"),
               -1;
    }
    if (def->process == NULL) {
        return snprintf(msg, len, "type '%s' has no process callback", def->name), -1;
    }
    if (def->flags & ~(SLUICE_STAGE_STATELESS | SLUICE_STAGE_BLOCKING)) {
        return snprintf(msg, len, "type '%s': unknown flags 0x%x", def->name, def->flags), -1;
    }
    for (size_t i = 0; i < nbefore; i++) {
        if (strcmp(before[i]->name, def->name) == 0) {
            return snprintf(msg, len, "type '%s' is defined twice in it", def->name), -1;
        }
    }
    const struct sl_node_type *taken = sl_node_type_find(def->name);
    if (taken != NULL) {
        const char *file = sl_plugin_file_of(taken);
        return snprintf(msg, len, "type '%s' is already defined by %s%s", def->name,
                        file != NULL ? "plugin " : "sluice itself (a built-in type)",
                        file != NULL ? file : ""),
               -1;
    }
    const char *const *c = def->struct_size >= sizeof(*def) ? def->counters : NULL;
    for (size_t i = 0; c != NULL && c[i] != NULL; i++) {
        for (size_t j = 0; j < i && i < SLUICE_MAX_COUNTERS; j++) {
            if (name_ok(c[i], "") && strcmp(c[j], c[i]) == 0) {
                return snprintf(msg, len, "type '%s': counter '%s' is named twice", def->name,
                                c[i]),
                       -1;
            }
        }
        if (i == SLUICE_MAX_COUNTERS || !name_ok(c[i], "")) {
            return snprintf(msg, len, "type '%s': at most %d counters, named with a-z, 0-9, '_'",
                            def->name, SLUICE_MAX_COUNTERS),
                   -1;
        }
    }
    char sub[200];
    if (check_options(def, sub, sizeof(sub)) != 0) {
        return snprintf(msg, len, "type '%s': %s", def->name, sub), -1;
    }
    return 0;
}

/* The node type of def: the public struct as far as def has it, and the
 * adapter's callbacks. */
static void make_type(struct sl_node_type *type, const struct sluice_stage_def *def)
{
    memset(type, 0, sizeof(*type));
    memcpy(&type->def, def, def->struct_size < sizeof(*def) ? def->struct_size : sizeof(*def));
    type->def.struct_size = sizeof(*def);
    type->open = plugin_open;
    type->process = plugin_process;
    type->flush = plugin_flush;
    type->close = plugin_close;
    type->summary = plugin_summary;
    type->summary_json = plugin_summary_json;
}

/* ---- loading ---- */

static int refuse(struct sl_err *err, const char *path, void *handle, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int refuse(struct sl_err *err, const char *path, void *handle, const char *fmt, ...)
{
    char msg[SL_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (handle != NULL) {
        dlclose(handle);
    }
    return sl_err_set(err, SL_ECONFIG, "plugin %s: %s", path, msg);
}

int sl_plugin_load_file(const char *path, struct sl_err *err)
{
    char real[PATH_MAX], errbuf[SL_ERR_MSG_MAX] = "", msg[SL_ERR_MSG_MAX];
    const struct sluice_stage_def *const *defs;
    size_t ndefs = 0;

    if (realpath(path, real) == NULL) {
        return sl_err_set(err, SL_ECONFIG, "plugin %s: %s", path, strerror(errno));
    }
    for (size_t i = 0; i < nplugins; i++) {
        if (strcmp(plugins[i].path, real) == 0) {
            return 0;
        }
    }
    if (nplugins == MAX_PLUGINS) {
        return sl_err_set(err, SL_ECONFIG, "plugin %s: more than %d plugin files", path,
                          MAX_PLUGINS);
    }
    guard_begin(path, "loading (its constructors)", NULL);
    void *handle = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    guard_end();
    if (handle == NULL) {
        const char *why = dlerror();
        return refuse(err, path, NULL, "cannot load: %s", why != NULL ? why : "unknown error");
    }
    sluice_plugin_entry_fn entry;
    *(void **)&entry = dlsym(handle, SLUICE_PLUGIN_ENTRY);
    if (entry == NULL) {
        return refuse(err, path, handle,
                      "no entry point '%s' (a sluice plugin exports it with SLUICE_EXPORT)",
                      SLUICE_PLUGIN_ENTRY);
    }
    guard_begin(path, SLUICE_PLUGIN_ENTRY, NULL);
    const struct sluice_plugin *p = entry(&sl__plugin_host, errbuf, sizeof(errbuf));
    guard_end();
    errbuf[sizeof(errbuf) - 1] = '\0';
    if (p == NULL) {
        return refuse(err, path, handle, "refused to load: %s",
                      errbuf[0] != '\0' ? errbuf : "no reason given");
    }
    if (p->abi_version >> 16 != SLUICE_ABI_MAJOR) {
        return refuse(err, path, handle,
                      "built for sluice ABI %u.%u, this sluice has ABI %u.%u: rebuild it against "
                      "this sluice's <sluice/plugin.h>",
                      p->abi_version >> 16, p->abi_version & 0xFFFF, SLUICE_ABI_MAJOR,
                      SLUICE_ABI_MINOR);
    }
    if (p->struct_size < PLUGIN_SIZE_V1_1 || p->stages == NULL) {
        return refuse(err, path, handle,
                      "its struct sluice_plugin is %u bytes (want %zu) or "
                      "lists no stages",
                      p->struct_size, (size_t)PLUGIN_SIZE_V1_1);
    }
    defs = p->stages;
    while (defs[ndefs] != NULL) {
        if (check_def(defs[ndefs], defs, ndefs, msg, sizeof(msg)) != 0) {
            return refuse(err, path, handle, "%s", msg);
        }
        ndefs++;
    }
    if (ndefs == 0) {
        return refuse(err, path, handle, "it defines no stage types");
    }
    struct loaded *l = &plugins[nplugins];
    l->path = sl_malloc(strlen(real) + 1);
    l->types = sl_calloc(ndefs, sizeof(*l->types));
    l->table = sl_calloc(ndefs + 1, sizeof(*l->table));
    if (l->path == NULL || l->types == NULL || l->table == NULL ||
        sl_node_type_register(l->table) != 0) {
        sl_free(l->path);
        sl_free(l->types);
        sl_free(l->table);
        memset(l, 0, sizeof(*l));
        return refuse(err, path, handle, "out of memory or too many plugin files");
    }
    strcpy(l->path, real);
    l->handle = handle;
    l->ntypes = ndefs;
    for (size_t i = 0; i < ndefs; i++) {
        make_type(&l->types[i], defs[i]);
        l->table[i] = &l->types[i];
    }
    nplugins++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int sl_plugin_load_dir(const char *dir, struct sl_err *err)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (d == NULL) {
        return sl_err_set(err, SL_ECONFIG, "cannot open plugin folder %s: %s", dir,
                          strerror(errno));
    }
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0 || e->d_name[0] == '.') {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **grown = sl_realloc(names, cap * sizeof(*names));
            if (grown == NULL) {
                rc = sl_err_set(err, SL_ENOMEM, "out of memory");
                break;
            }
            names = grown;
        }
        names[n] = sl_malloc(strlen(dir) + len + 2);
        if (names[n] == NULL) {
            rc = sl_err_set(err, SL_ENOMEM, "out of memory");
            break;
        }
        sprintf(names[n], "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof(*names), by_name);
    for (size_t i = 0; i < n; i++) {
        rc = rc != 0 ? rc : sl_plugin_load_file(names[i], err);
        sl_free(names[i]);
    }
    sl_free(names);
    return rc;
}
