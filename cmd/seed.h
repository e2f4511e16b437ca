/*
 * Demo data and API keys: `crmd seed --scale S`, `crmd keys create`, `crmd keys revoke`.
 * Blocking libpq, for subcommands only; never call these from a reactor thread.
 */
#ifndef CRMD_CMD_SEED_H
#define CRMD_CMD_SEED_H

#include <stddef.h>
#include <stdint.h>

/* Length of an API key, crmd_<8 char prefix>_<32 char secret>, without the NUL. */
/* Length of a key's prefix. */

/* Row counts that seed_run loads at a scale. */
typedef struct {
    int64_t organizations, users, stages, companies, contacts, deals, activities, tasks, api_keys;
} seed_counts_t;

/*
 * The counts seeded at scale: at 1, 3 organizations, 20 users, 18 stages, 10k companies, 40k
 * contacts, 20k deals, 500k activities, 40k tasks, 6 API keys; users, companies, contacts,
 * deals, activities and tasks scale linearly (rounded; at least 2 users and 1 of each other
 * per organization).
 */
void seed_counts(double scale, seed_counts_t *out);

/*
 * Replaces every organization's data (TRUNCATE ... CASCADE) with deterministic demo data, in
 * one transaction, loaded with COPY, then ANALYZE. The rows depend only on scale and the seed
 * date: today (UTC), or $CRMD_SEED_NOW (YYYY-MM-DD). Creates one admin and one member API key
 * per organization (random), prints them and writes them as JSON
 * [{"org_id", "tier", "role", "key"}] to keys_out_path (NULL: $CRMD_KEYS_OUT, else
 * var/demo-keys.json under the repository root). The schema must be up to date.
 * Returns 0, or 1 after printing the reason to stderr.
 */
int seed_run(const char *conninfo, double scale, const char *keys_out_path);

#endif
