/* SPDX-License-Identifier: MIT */
/* Finding node types by name: the generated built-in table, then any tables
 * registered at start-up (plugins, tests). Registration happens on the main
 * thread before the pipeline starts; lookups after that are read-only. */
#include "node.h"

#include <string.h>

#define MAX_EXTRA_TABLES 80

static const struct sl_node_type *const *extra_tables[MAX_EXTRA_TABLES];
static size_t nextra;

static const struct sl_node_type *
find_in(const struct sl_node_type *const *table, const char *name, int kind)
{
    for (size_t i = 0; table[i] != NULL; i++) {
        if (strcmp(table[i]->def.name, name) == 0 &&
            (kind < 0 || (int)table[i]->def.kind == kind)) {
            return table[i];
        }
    }
    return NULL;
}

static const struct sl_node_type *find_any(const char *name, int kind)
{
    const struct sl_node_type *type = find_in(sl_builtin_types, name, kind);

    for (size_t i = 0; type == NULL && i < nextra; i++) {
        type = find_in(extra_tables[i], name, kind);
    }
    return type;
}

const struct sl_node_type *sl_node_type_find(const char *name)
{
    return find_any(name, -1);
}

const struct sl_node_type *sl_node_type_find_kind(const char *name, enum sluice_stage_kind kind)
{
    return find_any(name, (int)kind);
}

int sl_node_type_register(const struct sl_node_type *const *table)
{
    if (nextra == MAX_EXTRA_TABLES) {
        return SL_ENOMEM;
    }
    extra_tables[nextra++] = table;
    return 0;
}

const struct sl_node_type *sl_node_type_at(size_t i)
{
    size_t n = 0;

    while (sl_builtin_types[n] != NULL) {
        n++;
    }
    if (i < n) {
        return sl_builtin_types[i];
    }
    i -= n;
    for (size_t t = 0; t < nextra; t++) {
        for (n = 0; extra_tables[t][n] != NULL; n++) {
        }
        if (i < n) {
            return extra_tables[t][i];
        }
        i -= n;
    }
    return NULL;
}
