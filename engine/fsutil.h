/* SPDX-License-Identifier: MIT */
/* Small file-system helpers shared by sinks and the loader. Thread: any. */
#ifndef SL_FSUTIL_H
#define SL_FSUTIL_H

#include <stdbool.h>
#include <stddef.h>

/* Creates the missing parent directories of path (mkdir -p of its dirname).
 * Returns 0 or SL_EIO with errno set. */
int sl_mkdir_parents(const char *path);

/* Whether two spellings of a path name the same file: "out/x.db",
 * "./out//x.db", "/cwd/out/x.db" and "out/../out/x.db" do, and so do a
 * symlink and its target (also one to a file still to create) and two hard
 * links. Reads the file system (stat, realpath, readlink). */
bool sl_same_path(const char *a, const char *b);

/* Writes path as an absolute path into out (len bytes), "./" and "//"
 * collapsed, without reading the file system beyond getcwd (a glob may
 * name files that do not exist yet). False when it does not fit. */
bool sl_path_lexical_abs(const char *path, char *out, size_t len);
/* The pipeline file's identity for the positions its sinks and sources
 * store (sl_pos_store_claim): its real path into buf (len bytes), or its
 * absolute spelling when it cannot be resolved. Returns buf. */
const char *sl_pipeline_identity(const char *file, char *buf, size_t len);

#endif
