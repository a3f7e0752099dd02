/* SPDX-License-Identifier: MIT */
/* Small file-system helpers shared by sinks. */
#include "fsutil.h"

#include "err.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* See fsutil.h. */
int sl_mkdir_parents(const char *path)
{
    char dir[PATH_MAX];

    if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
        errno = ENAMETOOLONG;
        return SL_EIO;
    }
    for (char *p = dir + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            return SL_EIO;
        }
        *p = '/';
    }
    return 0;
}
