/* SPDX-License-Identifier: MIT */
/* Decoding one unit of input text (a line, a CSV row, a Kafka message) into
 * a record's fields, the same way for every source, with per-worker JSON
 * decoders. Thread: workers (one decoder per worker index). */
#ifndef SL_DECODE_H
#define SL_DECODE_H

#include "csv.h"
#include "json.h"
#include "record.h"

enum sl_format { SL_FORMAT_JSON, SL_FORMAT_CSV, SL_FORMAT_LINES };

/* The `format:` choices of sources and the format each means. */
extern const char *const sl_format_names[];
enum sl_format sl_format_of(int choice);

struct sl_decoders {
    struct sl_json_decoder **json; /* one per worker thread */
    size_t n;
};

/* Creates one JSON decoder per worker. Returns 0 or SL_ENOMEM. */
int sl_decoders_init(struct sl_decoders *d, size_t workers, uint32_t max_depth);
void sl_decoders_release(struct sl_decoders *d);
/* The calling worker's JSON decoder. */
struct sl_json_decoder *sl_decoders_mine(const struct sl_decoders *d);

/* Whether text (one line, CSV row or message) holds no record and is
 * skipped, neither a record nor a dead letter: for json and csv, empty or
 * only spaces, tabs, CRs and LFs; for lines, empty once one final "\n" or
 * "\r\n" (or a lone "\r") is taken off. Thread: any. */
bool sl_decode_blank(enum sl_format fmt, const char *text, size_t n);

/* Decodes text (n bytes) into rec's fields (empty on entry) per fmt; header
 * is the CSV header (csv only). One final "\n" or "\r\n" ends the text
 * and is not part of it (a message may carry one); a line cut from a file
 * comes without it. Strings may point into text. Returns 0, SL_EDATA with
 * the reason in err (the caller dead-letters the record), SL_ENOMEM. */
int sl_decode_text(enum sl_format fmt,
                   struct sl_json_decoder *dec,
                   const struct sl_csv_header *header,
                   const char *text,
                   size_t n,
                   struct sl_record *rec,
                   struct sl_arena *arena,
                   struct sl_err *err);

#endif
