/* SPDX-License-Identifier: MIT */
/* Private to json_decode.c and json_write.c: UTF-8 sequence checking and
 * locale-independent number conversion shared by the decoder and writers.
 * Thread: any. */
#ifndef SL_JSON_INT_H
#define SL_JSON_INT_H

#include <locale.h>
#include <stddef.h>

/* Returns the length (2-4) of the valid UTF-8 sequence starting at p, whose
 * first byte is >= 0x80, or 0 when it is invalid (stray continuation byte,
 * overlong form, surrogate, above U+10FFFF) or truncated by end. These are
 * the well-formed byte sequences of Unicode's table 3-7. */
static inline size_t sl__utf8_seq_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t avail = (size_t)(end - p);
    unsigned lo = 0x80;
    unsigned hi = 0xBF;

    if (c < 0xC2) {
        return 0; /* continuation byte, or C0/C1 (always overlong) */
    }
    if (c < 0xE0) {
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    }
    if (c < 0xF0) {
        lo = c == 0xE0 ? 0xA0 : 0x80; /* E0 80..9F would be overlong */
        hi = c == 0xED ? 0x9F : 0xBF; /* ED A0..BF would be a surrogate */
        return avail >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c < 0xF5) {
        lo = c == 0xF0 ? 0x90 : 0x80; /* F0 80..8F would be overlong */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* F4 90.. would be above U+10FFFF */
        return avail >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 &&
                       (p[3] & 0xC0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

/* The "C" locale, created once; (locale_t)0 when it could not be created
 * (then the caller's locale is used). */
locale_t sl__json_c_locale(void);

/* strtod in the "C" locale: s must be NUL-terminated. */
double sl__json_strtod(const char *s, char **endp);

#endif
