/* SPDX-License-Identifier: MIT */
/* Small file-system helpers shared by sinks. */
#include "fsutil.h"

#include "err.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Folds path into buf (len bytes) as the file it names, lexically: a relative path resolves against
 * the current directory, as at run; "//" and "/./" fold, and so does "dir/..". A symbolic link is
 * not followed (sl_same_path looks at the files for that). False when the result does not fit
 * (compare the spellings as they are then). */
static bool path_fold(const char *path, char *buf, size_t len)
{
    size_t n = 0;

    if (len < 2) {
        return false;
    }
    buf[0] = '\0';
    if (path[0] != '/' && getcwd(buf, len) == NULL) {
        return false;
    }
    /* buf holds the directory without its final slash ("" for the root, or
     * for an absolute path): fold path's parts onto it. */
    n = strlen(buf);
    n = n == 1 ? 0 : n;
    buf[n] = '\0';
    for (const char *p = path; *p != '\0';) {
        size_t part = strcspn(p, "/");

        if (part == 0 || (part == 1 && p[0] == '.')) {
            /* "" or ".": nothing to add */
        } else if (part == 2 && p[0] == '.' && p[1] == '.') {
            while (n > 0 && buf[n - 1] != '/') {
                n--;
            }
            n = n > 0 ? n - 1 : 0; /* the slash; "/.." stays "/" (empty) */
        } else if (n + 1 + part < len) {
            buf[n++] = '/';
            memcpy(buf + n, p, part);
            n += part;
        } else {
            return false;
        }
        buf[n] = '\0';
        p += part + (p[part] == '/');
    }
    return true;
}

/* Whether two spellings of a path name the same file: "out/x.db",
 * "./out//x.db", "/cwd/out/x.db" and "out/../out/x.db" do (see path_fold),
 * and so do a symlink and its target. */
/* path with its directory resolved (symlinks, ".."), into buf; a symlink
 * not yet pointing to a file (the database is still to create) is
 * followed too. */
static bool path_resolved(const char *path, char *buf, size_t len)
{
    char dir[PATH_MAX];
    char link[PATH_MAX], target[PATH_MAX], cur[PATH_MAX];
    struct stat st;

    for (int hops = 0; hops < 8 && lstat(path, &st) == 0 && S_ISLNK(st.st_mode); hops++) {
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n <= 0) {
            break;
        }
        link[n] = '\0';
        const char *slash = strrchr(path, '/');
        int w = link[0] == '/' || slash == NULL
                    ? snprintf(target, sizeof(target), "%s", link)
                    : snprintf(target, sizeof(target), "%.*s/%s", (int)(slash - path), path, link);
        if (w <= 0 || (size_t)w >= sizeof(target)) {
            return false;
        }
        memcpy(cur, target, (size_t)w + 1);
        path = cur;
    }
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    size_t dlen = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);

    if (dlen >= sizeof(dir)) {
        return false;
    }
    memcpy(dir, dlen > 0 ? path : ".", dlen > 0 ? dlen : 1);
    dir[dlen > 0 ? dlen : 1] = '\0';
    char *real = realpath(dir, NULL);
    if (real == NULL) {
        return false;
    }
    int n = snprintf(buf, len, "%s/%s", real, base);
    free(real);
    return n > 0 && (size_t)n < len;
}

bool sl_same_path(const char *a, const char *b)
{
    char fa[PATH_MAX], fb[PATH_MAX];
    struct stat sa, sb;

    if (strcmp(a, b) == 0) {
        return true;
    }
    if (path_fold(a, fa, sizeof(fa)) && path_fold(b, fb, sizeof(fb)) && strcmp(fa, fb) == 0) {
        return true;
    }
    /* Symlinks and hard links to one database (files that exist), or
     * directories reached through a symlink (files still to create). */
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0) {
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    }
    return path_resolved(a, fa, sizeof(fa)) && path_resolved(b, fb, sizeof(fb)) &&
           strcmp(fa, fb) == 0;
}

bool sl_path_lexical_abs(const char *path, char *out, size_t len)
{
    char buf[PATH_MAX];
    size_t o = 0;

    if (path[0] != '/') {
        if (getcwd(buf, sizeof(buf)) == NULL) {
            return false;
        }
        size_t n = strlen(buf);
        if ((size_t)snprintf(buf + n, sizeof(buf) - n, "/%s", path) >= sizeof(buf) - n) {
            return false;
        }
    } else if ((size_t)snprintf(buf, sizeof(buf), "%s", path) >= sizeof(buf)) {
        return false;
    }
    for (const char *s = buf; *s != '\0' && o + 1 < len; s++) {
        if (*s == '/' && (s[1] == '/' || (s[1] == '.' && (s[2] == '/' || s[2] == '\0')))) {
            s += s[1] == '.' ? 1 : 0;
            continue;
        }
        out[o++] = *s;
    }
    out[o] = '\0';
    return o + 1 < len;
}

const char *sl_pipeline_identity(const char *file, char *buf, size_t len)
{
    char *real = realpath(file, NULL);

    if (real != NULL) {
        snprintf(buf, len, "%s", real);
        free(real);
    } else if (!sl_path_lexical_abs(file, buf, len)) {
        snprintf(buf, len, "%s", file);
    }
    return buf;
}
