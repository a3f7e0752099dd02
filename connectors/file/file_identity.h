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
 * and keep their key. Files whose first 4 KiB are identical are one file,
 * unless a tail tells them apart.
 *
 * The tail: a fingerprint may also hold the hash of the 4 KiB (fewer at
 * the start of the file) before an offset T that is never past the
 * position stored with it, "P:hash:dev:ino+T+hash:path" (older readers
 * take "ino+T+hash" for the inode and still find the path). A later run
 * that finds the file at least T long compares those bytes: when they
 * differ, what was read of the file changed (an edit in place that kept
 * its size and its first 4 KiB), and it is a new file. Fingerprints
 * without a tail (older stores, .lz4 files) are matched as before. */
#ifndef SL_FILE_IDENTITY_H
#define SL_FILE_IDENTITY_H

#include "err.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SL_FILE_HEAD 4096
/* Room for a fingerprint: numbers and a path. */
#define SL_FILE_FP_MAX (SL_FILE_HEAD + 160)

/* What identifies one file on disk now. */
struct sl_file_head {
    uint64_t size;
    uint64_t dev;
    uint64_t ino;
    size_t got;                      /* bytes of the head read: min(size, SL_FILE_HEAD) */
    uint64_t hash[SL_FILE_HEAD + 1]; /* hash[n]: of the first n bytes */
    uint64_t tail_at;                /* the window sl_file_tail_check read last, 0: none */
    uint64_t tail_hash;              /* its hash */
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
    uint64_t tail_at;   /* the tail's end T, 0: no tail */
    uint64_t tail_hash; /* of the bytes [T - min(T, 4 KiB), T) */
    int fields;         /* 0: no fingerprint; 2: older "size:hash"; 4: with inode */
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
/* fp (made by sl_file_fp_make, with or without a tail) with the tail
 * (at, hash) in place of any it had; at == 0: without a tail. */
void sl_file_fp_tail(const char *fp, uint64_t at, uint64_t hash, char *out, size_t len);
/* The hash the head and tails use, of n bytes. */
uint64_t sl_file_hash(const void *p, size_t n);
/* The tail hash of the file open as fd at offset at: of its bytes
 * [at - min(at, 4 KiB), at), one pread. 0, SL_EOF when the file is shorter
 * than at, or SL_EIO. */
int sl_file_tail_hash(int fd, uint64_t at, uint64_t *ret_hash);
/* Whether the file at path (whose head is h) still holds the bytes k's tail
 * was made of: 1 yes, 0 no (what was read of it changed), -1 cannot tell
 * (k has no tail, the file is shorter than its offset, or unreadable). At
 * most one pread; h keeps its result for another k with the same offset. */
int sl_file_tail_check(const char *path, struct sl_file_head *h, const struct sl_file_known *k);
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
