/*
 * Secrets out of logs. Request bodies are logged only on client errors, and only through
 * log_mask_json: the value of every field whose name looks like a secret (password, token,
 * secret, api_key, authorization, cookie, ssn, card, cvv, pin) becomes "***", and the text is
 * cut at a size limit. Headers that carry credentials are never logged at all; API keys
 * appear in logs only as their 8-character prefix.
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

/* Appends body to out as a JSON value safe to log: the masked document when body is JSON
 * (strings cut to 200 bytes, the whole to about LOG_MASK_MAX), else {"bytes": n}. */
void log_mask_json(buf_t *out, const char *body, size_t n);

#endif
