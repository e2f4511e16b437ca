/* API keys: creation (random, hashed with SHA-256), storage and revocation. */
#ifndef CRMD_CMD_KEYS_H
#define CRMD_CMD_KEYS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/crypto.h"

#define KEY_LEN        46 /* crmd_ + 8 + _ + 32 */
#define KEY_PREFIX_LEN 8

/* A new key, its prefix and the hex SHA-256 that is stored instead of it. */
typedef struct api_key_gen {
    char key[KEY_LEN + 1];
    char prefix[KEY_PREFIX_LEN + 1];
    char hash_hex[SEC_SHA256_BYTES * 2 + 1];
} api_key_gen_t;

/* Makes a random key. */
void key_make(api_key_gen_t *k);

/* Stores k for user_id of org_id; false on failure, with the SQLSTATE in code (may be NULL). */
bool key_insert(PGconn *conn, int64_t org_id, int64_t user_id, const api_key_gen_t *k, char *code,
                size_t codelen);

/* `crmd keys create`: a new user of the role with a new key, written to key_out (n > KEY_LEN);
 * 0 or 1 with the reason on stderr. */
int keys_create(const char *conninfo, int64_t org_id, const char *role, char *key_out, size_t n);

/* `crmd keys revoke`: revokes the key with this prefix (or whole key); 0 also when it was
 * already revoked, 1 when there is no such key. */
int keys_revoke(const char *conninfo, const char *prefix);

#endif
