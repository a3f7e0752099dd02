/* SPDX-License-Identifier: MIT */
/* SipHash-1-3, as Redis hashes its dict keys: keyed, so keys chosen by
 * whoever writes the input cannot be made to collide (throttle's buckets),
 * and two runs with the same key give the same hash (dead-letter ids). */
#ifndef SL_HASH_H
#define SL_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t sl_siphash13(const unsigned char *in, size_t len, uint64_t k0, uint64_t k1);

#endif
