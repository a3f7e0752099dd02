/* SPDX-License-Identifier: MIT */
/* Which file is which, by content rather than by path (DESIGN "Checkpoints
 * and delivery guarantees"): a file is known by a hash of its first bytes
 * (up to 4 KiB, as stored on disk), so a renamed, symlinked or differently
 * spelled file is the file read before, a file that grew is the same file,
 * and one whose first bytes changed is a new file.
 *
 * A position's stream key is chosen the first time a file is seen ("P:hash"
 * over its first P = min(size, 4 KiB) bytes) and kept for good; beside it
 * the sinks store the fingerprint "P:hash:dev:ino:path" that later runs
 * match files against. A file smaller than 4 KiB at first sight is matched
 * only by the same inode (it grew in place, or was renamed) or by identical
 * content: two different small files where one begins with the whole of the
 * other are not taken for one. Stores written before this scheme keyed
 * positions by path with "size:hash": those rows are matched the same way
 * and keep their key. Files whose first 4 KiB are identical are one file. */
#ifndef SL_FILE_IDENTITY_H
#define SL_FILE_IDENTITY_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_FILE_HEAD 4096
/* Room for a fingerprint: numbers and a path. */
#define SL_FILE_FP_MAX (SL_FILE_HEAD + 96)

/* What identifies one file on disk now. */
struct sl_file_head {
    uint64_t size;
    uint64_t dev;
    uint64_t ino;
    size_t got;                      /* bytes of the head read: min(size, SL_FILE_HEAD) */
    uint64_t hash[SL_FILE_HEAD + 1]; /* hash[n]: of the first n bytes */
};

/* A stored (key, fingerprint), parsed once. */
struct sl_file_known {
    const char *key; /* borrowed */
    const char *fp;  /* borrowed, NULL if none */
    const char *path;
    uint64_t prefix; /* bytes the hash covers */
    uint64_t hash;
    uint64_t dev;
    uint64_t ino;
    int fields; /* 0: no fingerprint; 2: older "size:hash"; 4: with inode */
};

/* Reads path's size, device, inode and the hashes of its first bytes. 0 or
 * SL_EIO (err names the file). */
int sl_file_head_read(const char *path, struct sl_file_head *h, struct sl_err *err);
/* Parses a stored key and fingerprint (both borrowed by k). */
void sl_file_known_parse(const char *key, const char *fp, struct sl_file_known *k);
/* The stream key a file seen for the first time gets: "P:hash". */
void sl_file_key_new(const struct sl_file_head *h, char *out, size_t len);
/* The fingerprint stored beside a position: the identity part of k (what
 * the key was matched by; NULL for a new file) with this file's inode and
 * path. */
void sl_file_fp_make(const struct sl_file_head *h,
                     const struct sl_file_known *k,
                     const char *path,
                     char *out,
                     size_t len);
/* How well the file (path as spelled) matches k: 0 not at all, else higher
 * for a longer matched prefix, then for the same inode, then the same path. */
uint64_t
sl_file_match(const struct sl_file_head *h, const char *path, const struct sl_file_known *k);
/* Whether k was stored for this path (as spelled). */
bool sl_file_known_path(const struct sl_file_known *k, const char *path);

/* Whether the files a and b hold the same bytes (read both whole: only for
 * two files of one size whose first bytes match). Unreadable: false, so a
 * file that only begins like a copy is read, not skipped. */
bool sl_file_same_bytes(const char *a, const char *b);

#endif
