/* SPDX-License-Identifier: MIT */
/* Shared record decoding for sources (see decode.h). */
#include "decode.h"

#include "mem.h"
#include "sched.h"

#include <stdio.h>

const char *const sl_format_names[] = {"json", "jsonl", "csv", "lines", NULL};

enum sl_format sl_format_of(int choice)
{
    static const enum sl_format formats[] = {SL_FORMAT_JSON, SL_FORMAT_JSON, SL_FORMAT_CSV,
                                             SL_FORMAT_LINES};
    return formats[choice];
}

int sl_decoders_init(struct sl_decoders *d, size_t workers, uint32_t max_depth)
{
    d->n = workers > 0 ? workers : 1;
    d->json = sl_calloc(d->n, sizeof(*d->json));
    if (d->json == NULL) {
        d->n = 0;
        return SL_ENOMEM;
    }
    for (size_t i = 0; i < d->n; i++) {
        d->json[i] = sl_json_decoder_new(max_depth);
        if (d->json[i] == NULL) {
            return SL_ENOMEM;
        }
    }
    return 0;
}

void sl_decoders_release(struct sl_decoders *d)
{
    for (size_t i = 0; i < d->n && d->json != NULL; i++) {
        sl_json_decoder_free(d->json[i]);
    }
    sl_free(d->json);
    d->json = NULL;
    d->n = 0;
}

struct sl_json_decoder *sl_decoders_mine(const struct sl_decoders *d)
{
    int w = sl_sched_worker_index();

    return d->json[w >= 0 ? (size_t)w % d->n : 0];
}

/* The length of text without one final "\n" or "\r\n". */
static size_t strip_terminator(const char *text, size_t n)
{
    if (n > 0 && text[n - 1] == '\n') {
        n--;
        if (n > 0 && text[n - 1] == '\r') {
            n--;
        }
    }
    return n;
}

bool sl_decode_blank(enum sl_format fmt, const char *text, size_t n)
{
    if (fmt == SL_FORMAT_LINES) {
        n = strip_terminator(text, n);
        return n == 0 || (n == 1 && text[0] == '\r');
    }
    for (size_t i = 0; i < n; i++) {
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' && text[i] != '\n') {
            return false;
        }
    }
    return true;
}

int sl_decode_text(enum sl_format fmt,
                   struct sl_json_decoder *dec,
                   const struct sl_csv_header *header,
                   const char *text,
                   size_t n,
                   struct sl_record *rec,
                   struct sl_arena *arena,
                   struct sl_err *err)
{
    switch (fmt) {
    case SL_FORMAT_LINES: {
        size_t len = strip_terminator(text, n);
        len = len > 0 && text[len - 1] == '\r' ? len - 1 : len;
        if (!sl_utf8_valid(text, len)) {
            return sl_err_set(err, SL_EDATA, "invalid UTF-8");
        }
        return sl_record_append(rec, arena, "message", 7, sl_value_str(text, (uint32_t)len));
    }
    case SL_FORMAT_CSV:
        if (header == NULL) {
            return sl_err_set(err, SL_EDATA, "no CSV header");
        }
        return sl_csv_decode_row(header, text, strip_terminator(text, n), rec, arena, err);
    case SL_FORMAT_JSON:
    default:
        /* JSON takes the terminator as the whitespace it is. */
        return sl_json_decode_object(dec, text, n, rec, arena, err);
    }
}
