/* SPDX-License-Identifier: MIT */
/* Small file-system helpers shared by sinks. Thread: any. */
#ifndef SL_FSUTIL_H
#define SL_FSUTIL_H

/* Creates the missing parent directories of path (mkdir -p of its dirname).
 * Returns 0 or SL_EIO with errno set. */
int sl_mkdir_parents(const char *path);

#endif
