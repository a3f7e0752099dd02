/* SPDX-License-Identifier: MIT */
/* Stage plugins: shared objects exporting sluice_plugin_entry (see
 * <sluice/plugin.h>), loaded from engine.plugin_path's folders and
 * registered as node types beside the built-ins. */
#ifndef SL_PLUGIN_H
#define SL_PLUGIN_H

#include "err.h"
#include "node.h"

/* Loads every *.so file of folder dir (not its subfolders), in name order,
 * as sl_plugin_load_file does. A file already loaded (the same file by any
 * path) is not loaded again. Returns 0, or SL_ECONFIG / SL_ENOMEM with
 * err's message naming the folder or file. Thread: main. */
int sl_plugin_load_dir(const char *dir, struct sl_err *err);

/* Opens path, calls its entry point (a crash there is reported with the
 * file's name before the process dies of it), checks what it returns (ABI
 * major, struct sizes, each type's name, kind, flags and option table, and
 * that no other type has its name) and registers its types. Nothing is
 * registered when anything is refused. Returns 0, or SL_ECONFIG /
 * SL_ENOMEM with err's message saying what and naming the file.
 * Thread: main. */
int sl_plugin_load_file(const char *path, struct sl_err *err);

/* The file a type was loaded from, or NULL for a built-in. */
const char *sl_plugin_file_of(const struct sl_node_type *type);

#endif
