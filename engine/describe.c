/* SPDX-License-Identifier: MIT */
/* `sluice describe [TYPE]...`: the options of node types, printed from the
 * same rows (struct sluice_option) the loader validates and fills configs
 * with, so what it says is what the loader does: for each option its name,
 * value type, default (or "required"), range or choices and description.
 * As a table for people, or as JSON for tools (and the test that the
 * README's config tables agree with it). */
#include "describe.h"

#include "buf.h"
#include "conf_int.h"
#include "json.h"
#include "plugin.h"

#include <string.h>

static const char *const kind_names[] = {"source", "stage", "sink"};

static const char *type_name(enum sluice_opt_type type)
{
    static const char *const names[SLUICE_OPT_TYPE_COUNT] = {
        [SLUICE_OPT_STR] = "string",
        [SLUICE_OPT_INT] = "int",
        [SLUICE_OPT_BOOL] = "bool",
        [SLUICE_OPT_DOUBLE] = "number",
        [SLUICE_OPT_SIZE] = "size",
        [SLUICE_OPT_DURATION] = "duration",
        [SLUICE_OPT_ENUM] = "enum",
        [SLUICE_OPT_EXPR] = "expression",
        [SLUICE_OPT_LIST] = "list",
        [SLUICE_OPT_MAP] = "map",
        [SLUICE_OPT_EXPR_MAP] = "map of expressions",
    };
    return (unsigned)type < SLUICE_OPT_TYPE_COUNT ? names[type] : "?";
}

/* The range of a number row, as the loader checks it (conf_opts.c
 * check_range): none when both ends are 0, no upper end when max is below
 * min or beyond 2^63. Empty for other rows. */
static void range_text(const struct sluice_option *o, char *buf, size_t len)
{
    char lo[48], hi[48];
    bool number = o->type == SLUICE_OPT_INT || o->type == SLUICE_OPT_DOUBLE ||
                  o->type == SLUICE_OPT_SIZE || o->type == SLUICE_OPT_DURATION;

    buf[0] = '\0';
    if (o->type == SLUICE_OPT_ENUM) {
        size_t used = 0;
        for (size_t i = 0; o->choices[i] != NULL && used < len; i++) {
            int w = snprintf(buf + used, len - used, "%s%s", i > 0 ? " | " : "", o->choices[i]);
            used += w > 0 ? (size_t)w : 0;
        }
        return;
    }
    if (!number || (o->min == 0 && o->max == 0)) {
        return;
    }
    sl__conf_format_num(o->type, o->min, lo, sizeof(lo));
    if (o->max < o->min || o->max >= 9.2e18) {
        snprintf(buf, len, ">= %s", lo);
    } else {
        snprintf(buf, len, "%s..%s", lo, sl__conf_format_num(o->type, o->max, hi, sizeof(hi)));
    }
}

static const char *default_text(const struct sluice_option *o)
{
    if (o->flags & SLUICE_OPT_LATER) {
        return "(not supported yet)";
    }
    if (o->flags & SLUICE_OPT_REQUIRED) {
        return "required";
    }
    return o->default_text != NULL ? o->default_text : "";
}

static void print_type(FILE *out, const struct sl_node_type *t)
{
    const struct sluice_option *o = t->def.options;
    const char *file = sl_plugin_file_of(t);
    size_t wname = 3, wtype = 4, wdef = 7, wrange = 5;
    char range[256];

    fprintf(out, "%s (%s%s%s): %s\n", t->def.name, kind_names[t->def.kind],
            file != NULL ? ", plugin " : "", file != NULL ? file : "",
            t->def.description != NULL ? t->def.description : "");
    for (size_t i = 0; o != NULL && o[i].name != NULL; i++) {
        range_text(&o[i], range, sizeof(range));
        wname = strlen(o[i].name) > wname ? strlen(o[i].name) : wname;
        wtype = strlen(type_name(o[i].type)) > wtype ? strlen(type_name(o[i].type)) : wtype;
        wdef = strlen(default_text(&o[i])) > wdef ? strlen(default_text(&o[i])) : wdef;
        wrange = strlen(range) > wrange ? strlen(range) : wrange;
    }
    if (o == NULL || o[0].name == NULL) {
        fprintf(out, "  (no options)\n\n");
        return;
    }
    fprintf(out, "  %-*s  %-*s  %-*s  %-*s  %s\n", (int)wname, "key", (int)wtype, "type", (int)wdef,
            "default", (int)wrange, "range", "meaning");
    for (size_t i = 0; o[i].name != NULL; i++) {
        range_text(&o[i], range, sizeof(range));
        fprintf(out, "  %-*s  %-*s  %-*s  %-*s  %s\n", (int)wname, o[i].name, (int)wtype,
                type_name(o[i].type), (int)wdef, default_text(&o[i]), (int)wrange, range,
                o[i].desc != NULL ? o[i].desc : "");
    }
    fputc('\n', out);
}

static int json_str(struct sl_buf *buf, const char *s)
{
    return s != NULL ? sl_json_write_string(buf, s, strlen(s)) : sl_buf_appendf(buf, "null");
}

static int json_type(struct sl_buf *buf, const struct sl_node_type *t)
{
    const struct sluice_option *o = t->def.options;
    char range[256];
    int rc = sl_buf_appendf(buf, "{\"name\":");

    rc = rc != 0 ? rc : json_str(buf, t->def.name);
    rc =
        rc != 0 ? rc : sl_buf_appendf(buf, ",\"kind\":\"%s\",\"plugin\":", kind_names[t->def.kind]);
    rc = rc != 0 ? rc : json_str(buf, sl_plugin_file_of(t));
    rc = rc != 0 ? rc : sl_buf_appendf(buf, ",\"description\":");
    rc = rc != 0 ? rc : json_str(buf, t->def.description);
    rc = rc != 0 ? rc : sl_buf_appendf(buf, ",\"options\":[");
    for (size_t i = 0; rc == 0 && o != NULL && o[i].name != NULL; i++) {
        range_text(&o[i], range, sizeof(range));
        rc = sl_buf_appendf(buf, "%s{\"key\":", i > 0 ? "," : "");
        rc = rc != 0 ? rc : json_str(buf, o[i].name);
        rc = rc != 0 ? rc
                     : sl_buf_appendf(buf, ",\"type\":\"%s\",\"default\":", type_name(o[i].type));
        rc = rc != 0 ? rc : json_str(buf, o[i].default_text);
        rc = rc != 0 ? rc
                     : sl_buf_appendf(buf, ",\"required\":%s,\"supported\":%s,\"range\":",
                                      (o[i].flags & SLUICE_OPT_REQUIRED) ? "true" : "false",
                                      (o[i].flags & SLUICE_OPT_LATER) ? "false" : "true");
        rc = rc != 0 ? rc : json_str(buf, range);
        rc = rc != 0 ? rc : sl_buf_appendf(buf, ",\"description\":");
        rc = rc != 0 ? rc : json_str(buf, o[i].desc);
        rc = rc != 0 ? rc : sl_buf_putc(buf, '}');
    }
    return rc != 0 ? rc : sl_buf_appendf(buf, "]}");
}

int sl_describe(FILE *out, const char *const *names, size_t nnames, bool json, struct sl_err *err)
{
    const struct sl_node_type *t;
    struct sl_buf buf = {0};
    bool any = false;
    int rc = 0;

    /* Every name first: nothing is printed for a list with a typo. */
    for (size_t n = 0; n < nnames; n++) {
        if (sl_node_type_find(names[n]) == NULL) {
            return sl_err_set(err, SL_EINVAL, "unknown type '%s' (sluice describe lists them all)",
                              names[n]);
        }
    }
    rc = json ? sl_buf_putc(&buf, '[') : 0;
    for (size_t i = 0; rc == 0 && (t = sl_node_type_at(i)) != NULL; i++) {
        bool wanted = nnames == 0;
        for (size_t n = 0; n < nnames; n++) {
            wanted |= strcmp(names[n], t->def.name) == 0;
        }
        if (!wanted) {
            continue;
        }
        if (json) {
            rc = any ? sl_buf_putc(&buf, ',') : 0;
            rc = rc != 0 ? rc : json_type(&buf, t);
        } else {
            print_type(out, t);
        }
        any = true;
    }
    rc = rc == 0 && json ? sl_buf_appendf(&buf, "]\n") : rc;
    if (rc == 0 && json) {
        fwrite(buf.data, 1, buf.len, out);
    }
    sl_buf_release(&buf);
    return rc != 0 ? sl_err_set(err, SL_ENOMEM, "out of memory") : 0;
}
