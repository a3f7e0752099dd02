/* SPDX-License-Identifier: MIT */
/* `sluice describe`: node types' options from their option rows. */
#ifndef SL_DESCRIBE_H
#define SL_DESCRIBE_H

#include "err.h"

#include <stdbool.h>
#include <stdio.h>

/* Writes to out the options of the types named in names (all types, built-in
 * and loaded plugins, when nnames is 0), as a table per type, or as one
 * JSON array of {name, kind, plugin, description, options: [{key, type,
 * default, required, supported, range, description}]}. Returns 0, or
 * SL_EINVAL naming an unknown type (nothing written), SL_ENOMEM.
 * Thread: main. */
int sl_describe(FILE *out, const char *const *names, size_t nnames, bool json, struct sl_err *err);

#endif
