/*
 * Demo data and API keys: `crmd seed --scale S`, `crmd keys create`, `crmd keys revoke`.
 * Blocking libpq, for subcommands only; never call these from a reactor thread.
 */
#ifndef CRMD_DB_SEED_H
#define CRMD_DB_SEED_H

#include <stddef.h>
#include <stdint.h>

/* Length of an API key, crmd_<8 char prefix>_<32 char secret>, without the NUL. */
#define DB_KEY_LEN 46
/* Length of a key's prefix. */
#define DB_KEY_PREFIX_LEN 8

/* Row counts that db_seed_run loads at a scale. */
typedef struct {
    int64_t organizations, users, stages, companies, contacts, deals, activities, tasks, api_keys;
} db_seed_counts_t;

/*
 * The counts seeded at scale: at 1, 3 organizations, 20 users, 18 stages, 10k companies, 40k
 * contacts, 20k deals, 500k activities, 40k tasks, 6 API keys; users, companies, contacts,
 * deals, activities and tasks scale linearly (rounded; at least 2 users and 1 of each other
 * per organization).
 */
void db_seed_counts(double scale, db_seed_counts_t *out);

/*
 * Replaces every organization's data (TRUNCATE ... CASCADE) with deterministic demo data, in
 * one transaction, loaded with COPY, then ANALYZE. The rows depend only on scale and the seed
 * date: today (UTC), or $CRMD_SEED_NOW (YYYY-MM-DD). Creates one admin and one member API key
 * per organization (random), prints them and writes them as JSON
 * [{"org_id", "tier", "role", "key"}] to keys_out_path (NULL: $CRMD_KEYS_OUT, else
 * var/demo-keys.json under the repository root). The schema must be up to date.
 * Returns 0, or 1 after printing the reason to stderr.
 */
int db_seed_run(const char *conninfo, double scale, const char *keys_out_path);

/*
 * Creates an API key for organization org_id with role "admin" or "member": a new user named
 * "key <prefix>" with that role owns it. Only SHA-256 of the key is stored. Writes the key
 * (DB_KEY_LEN chars and a NUL: n must exceed DB_KEY_LEN) to key_out. Returns 0, or 1 after
 * printing the reason to stderr.
 */
int db_keys_create(const char *conninfo, int64_t org_id, const char *role, char *key_out, size_t n);

/*
 * Revokes the key with this prefix (the 8 characters after "crmd_"; a whole key is accepted
 * too). Returns 0 when revoked or already revoked, 1 when no such key or on error (reason
 * printed to stderr).
 */
int db_keys_revoke(const char *conninfo, const char *prefix);

#endif
