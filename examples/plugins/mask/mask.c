/* SPDX-License-Identifier: MIT */
/* `mask`: an example sluice stage plugin, stateless. It masks e-mail
 * addresses (alice@example.com -> a****@example.com) and card numbers (13
 * to 19 digits, spaces or dashes between them, that pass the Luhn check:
 * all digits but the last four become '*') inside string fields. Built
 * against the installed SDK only: <sluice/plugin.h>, no engine symbol. */
#include <sluice/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mask_conf {
    struct sluice_list fields; /* empty: every string field */
    int emails;
    int cards;
};

/* clang-format off */
static const struct sluice_option mask_options[] = {
    SLUICE_OPT_ROW(struct mask_conf, fields, SLUICE_OPT_LIST, NULL, 0, 0, NULL, 0,
                   "Fields to mask; none: every string field."),
    SLUICE_OPT_ROW(struct mask_conf, emails, SLUICE_OPT_BOOL, "true", 0, 0, NULL, 0,
                   "Mask e-mail addresses: the local part but its first character."),
    SLUICE_OPT_ROW(struct mask_conf, cards, SLUICE_OPT_BOOL, "true", 0, 0, NULL, 0,
                   "Mask card numbers (13-19 digits passing Luhn): all digits but the last 4."),
    {0},
};
/* clang-format on */

static const char *const mask_counters[] = {"emails", "cards", NULL};
enum { COUNT_EMAILS, COUNT_CARDS };

static const struct sluice_host_api *host;

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_local(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
           (c != '\0' && strchr("._%+-", c) != NULL);
}

static int is_domain(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' || c == '-';
}

/* Masks the e-mail addresses in s[0..len) in place; returns how many. */
static unsigned mask_emails(char *s, size_t len)
{
    unsigned n = 0;

    for (size_t at = 0; at < len; at++) {
        if (s[at] != '@') {
            continue;
        }
        size_t start = at, end = at + 1;
        while (start > 0 && is_local(s[start - 1])) {
            start--;
        }
        while (end < len && is_domain(s[end])) {
            end++;
        }
        /* A local part and a domain with a dot in it. */
        if (at - start < 1 || memchr(s + at + 1, '.', end - at - 1) == NULL) {
            continue;
        }
        for (size_t i = start + 1; i < at; i++) {
            s[i] = '*';
        }
        n++;
        at = end - 1;
    }
    return n;
}

static int luhn(const char *s, size_t len)
{
    int sum = 0, dbl = 0;

    for (size_t i = len; i-- > 0;) {
        if (!is_digit(s[i])) {
            continue;
        }
        int d = s[i] - '0';
        if (dbl && (d *= 2) > 9) {
            d -= 9;
        }
        sum += d;
        dbl = !dbl;
    }
    return sum % 10 == 0;
}

/* Masks the card numbers in s[0..len) in place; returns how many. */
static unsigned mask_cards(char *s, size_t len)
{
    unsigned n = 0;

    for (size_t i = 0; i < len;) {
        if (!is_digit(s[i]) || (i > 0 && is_digit(s[i - 1]))) {
            i++;
            continue;
        }
        size_t end = i, digits = 0, last = i;
        while (end < len && (is_digit(s[end]) || s[end] == ' ' || s[end] == '-')) {
            if (is_digit(s[end])) {
                digits++;
                last = end + 1;
                if (digits == 19) {
                    break;
                }
            }
            end++;
        }
        if (digits >= 13 && luhn(s + i, last - i)) {
            size_t keep = 0;
            for (size_t k = last; k-- > i;) {
                if (is_digit(s[k]) && keep++ >= 4) {
                    s[k] = '*';
                }
            }
            n++;
        }
        i = last > i ? last : i + 1;
    }
    return n;
}

/* Masks one value, setting it on rec when it changed. */
static int mask_field(struct sluice_stage *st,
                      const struct mask_conf *conf,
                      struct sluice_batch *batch,
                      struct sluice_record *rec,
                      const char *name,
                      size_t name_len,
                      const struct sluice_value *v)
{
    if (v->type != SLUICE_TYPE_STR || v->len == 0 ||
        (memchr(v->u.s, '@', v->len) == NULL && !conf->cards)) {
        return 0;
    }
    char small[256];
    char *s = v->len <= sizeof(small) ? small : malloc(v->len);
    if (s == NULL) {
        return SLUICE_ENOMEM;
    }
    memcpy(s, v->u.s, v->len);
    unsigned emails = conf->emails ? mask_emails(s, v->len) : 0;
    unsigned cards = conf->cards ? mask_cards(s, v->len) : 0;
    int rc = 0;
    if (emails + cards > 0) {
        struct sluice_value out = *v;
        out.u.s = s; /* copied by set */
        rc = host->set(batch, rec, name, name_len, &out);
        host->count(st, COUNT_EMAILS, emails);
        host->count(st, COUNT_CARDS, cards);
    }
    if (s != small) {
        free(s);
    }
    return rc;
}

static int mask_init(
    struct sluice_stage *st, const void *conf, void **ret_ctx, char *errbuf, size_t errbuf_len)
{
    (void)st;
    (void)errbuf;
    (void)errbuf_len;
    *ret_ctx = (void *)conf; /* nothing of its own: the conf is all it reads */
    return 0;
}

static int mask_process(struct sluice_stage *st, void *ctx, struct sluice_batch *batch)
{
    const struct mask_conf *conf = ctx;
    size_t n = host->batch_size(batch);

    for (size_t i = 0; i < n; i++) {
        struct sluice_record *rec = host->batch_record(batch, i);
        struct sluice_value v;
        int rc = 0;
        if (conf->fields.n > 0) {
            for (size_t f = 0; rc == 0 && f < conf->fields.n; f++) {
                const char *name = conf->fields.items[f];
                if (host->get(rec, name, strlen(name), &v) == 0) {
                    rc = mask_field(st, conf, batch, rec, name, strlen(name), &v);
                }
            }
        } else {
            /* set may append to the fields: count them first. */
            size_t nf = host->field_count(rec);
            for (size_t f = 0; rc == 0 && f < nf; f++) {
                const char *name;
                size_t name_len;
                if (host->field_at(rec, f, &name, &name_len, &v) == 0) {
                    rc = mask_field(st, conf, batch, rec, name, name_len, &v);
                }
            }
        }
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static void mask_fini(void *ctx)
{
    (void)ctx;
}

static const struct sluice_stage_def mask_stage = {
    .abi_version = SLUICE_ABI_VERSION,
    .struct_size = sizeof(struct sluice_stage_def),
    .name = "mask",
    .description = "Masks e-mail addresses and card numbers in string fields.",
    .kind = SLUICE_KIND_TRANSFORM,
    .flags = SLUICE_STAGE_STATELESS,
    .conf_size = sizeof(struct mask_conf),
    .options = mask_options,
    .init = mask_init,
    .process = mask_process,
    .fini = mask_fini,
    .counters = mask_counters,
};

static const struct sluice_stage_def *const mask_stages[] = {&mask_stage, NULL};

static const struct sluice_plugin mask_plugin = {
    .abi_version = SLUICE_ABI_VERSION,
    .struct_size = sizeof(struct sluice_plugin),
    .name = "mask",
    .version = "1.0.0",
    .stages = mask_stages,
};

SLUICE_EXPORT const struct sluice_plugin *
sluice_plugin_entry(const struct sluice_host_api *api, char *errbuf, size_t errbuf_len)
{
    /* Members are only ever added at the end: a host that has stage_name
     * has every call this plugin makes. */
    if (api->struct_size < offsetof(struct sluice_host_api, stage_name) + sizeof(api->stage_name)) {
        snprintf(errbuf, errbuf_len, "this sluice is older than the plugin (ABI %u.%u)",
                 api->abi_version >> 16, api->abi_version & 0xFFFF);
        return NULL;
    }
    host = api;
    return &mask_plugin;
}
