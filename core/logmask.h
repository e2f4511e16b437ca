/*
 * Secrets out of logs. Request bodies are logged only on client errors, and only through
 * log_mask_json, which writes a value only for fields the application declares loggable (the
 * resources' own fields, the envelopes of batch and bulk): every other value, whatever its
 * name, becomes its type and length ({"type":"string","len":12}). A list of secret-looking
 * names can never be complete; a list of the fields we know is. Names that still look like
 * secrets are masked even when declared. The text is cut at a size limit. Headers that carry
 * credentials are never logged at all; API keys appear in logs only as their 8-character
 * prefix.
 */
#ifndef CRMD_CORE_LOGMASK_H
#define CRMD_CORE_LOGMASK_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

#define LOG_MASK_MAX 1024

/* True when a JSON field name looks like it holds a secret (case-insensitive, also as a part:
 * "new_password", "accessToken", "card_number"). */
bool log_mask_field(const char *name, size_t n);

/* Whether a field's value may be logged; the application declares it (log_mask_set_loggable).
 * Until then nothing is. */
typedef bool (*log_loggable_fn)(const char *name, size_t n);
void log_mask_set_loggable(log_loggable_fn fn);

/* Appends body to out as a JSON value safe to log: the document with the values of loggable
 * fields (strings cut to 200 bytes) and the type and length of every other value, the whole
 * cut to about LOG_MASK_MAX; {"bytes": n} when body is not JSON. */
void log_mask_json(buf_t *out, const char *body, size_t n);

#endif
