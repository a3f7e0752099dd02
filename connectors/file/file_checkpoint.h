/* SPDX-License-Identifier: MIT */
/* A file source's own positions (its `checkpoints: path.db` option), for
 * the sinks that keep none (file, Kafka, null): a SQLite file with the same
 * `_sluice_checkpoints` table the SQLite sink uses, under the reserved table
 * name `_sluice_source:<node>`. Positions are stored only once every sink
 * has acknowledged the data (at least once). One owner at a time: the
 * source thread while it runs, then the main thread at close. */
#ifndef SL_FILE_CHECKPOINT_H
#define SL_FILE_CHECKPOINT_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

struct sl_file_ckpt;

/* Opens (creating) path for source node name of the pipeline file
 * pipeline; warns when a source of the same name of another pipeline
 * file used it last (sl_pos_store_claim). NULL + err on failure. */
struct sl_file_ckpt *
sl_file_ckpt_open(const char *path, const char *name, const char *pipeline, struct sl_err *err);
/* Closes; NULL ok; returns NULL. */
struct sl_file_ckpt *sl_file_ckpt_close(struct sl_file_ckpt *ck);
/* The stored position of stream: 0 with *ret_pos and the fingerprint, SL_EOF
 * when none, SL_EIO. */
int sl_file_ckpt_get(struct sl_file_ckpt *ck,
                     const char *stream,
                     int64_t *ret_pos,
                     char *fp,
                     size_t fp_len,
                     struct sl_err *err);
/* Calls fn with each stream stored and its fingerprint. 0 or SL_EIO. */
int sl_file_ckpt_streams(struct sl_file_ckpt *ck,
                         void (*fn)(void *arg, const char *stream, const char *fp),
                         void *arg,
                         struct sl_err *err);
/* Stores stream's position and fingerprint (one transaction). 0 or SL_EIO. */
int sl_file_ckpt_put(
    struct sl_file_ckpt *ck, const char *stream, int64_t pos, const char *fp, struct sl_err *err);

#endif
