/*
 * API keys: "crmd_<8-char prefix>_<32-char secret>", random (core/crypto); only the SHA-256
 * of the whole key and its prefix are stored. Used by `crmd keys create|revoke` and by the
 * seed's demo keys.
 */
#include "cmd/keys.h"
#include "cmd/cmd.h"
#include "core/config.h"
#include "cmd/cli.h"
#include "core/crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* n random characters of [A-Za-z0-9], uniformly (bytes >= 248 are rejected). */
static void random_alnum(char *out, size_t n)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    unsigned char b[64];
    size_t i = 0;
    while (i < n) {
        sec_random(b, sizeof(b));
        for (size_t j = 0; j < sizeof(b) && i < n; j++)
            if (b[j] < 248)
                out[i++] = alphabet[b[j] % 62];
    }
    out[n] = '\0';
}

void key_make(api_key_gen_t *k)
{
    char secret[33];
    uint8_t hash[SEC_SHA256_BYTES];
    random_alnum(k->prefix, KEY_PREFIX_LEN);
    random_alnum(secret, 32);
    snprintf(k->key, sizeof(k->key), "crmd_%s_%s", k->prefix, secret);
    sec_sha256(hash, k->key, strlen(k->key));
    sec_hex(k->hash_hex, hash, sizeof(hash));
    sec_wipe(secret, sizeof(secret));
}

/* Inserts k for user_id; the server's SQLSTATE into code (may be NULL) on failure. */
bool key_insert(PGconn *conn, int64_t org_id, int64_t user_id, const api_key_gen_t *k, char *code,
                size_t codelen)
{
    char org[24], user[24];
    snprintf(org, sizeof(org), "%lld", (long long)org_id);
    snprintf(user, sizeof(user), "%lld", (long long)user_id);
    const char *params[] = {org, user, k->prefix, k->hash_hex};
    PGresult *r = PQexecParams(conn,
                               "INSERT INTO api_keys (org_id, user_id, prefix, key_hash)"
                               " VALUES ($1, $2, $3, decode($4, 'hex'))",
                               4, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (code)
            snprintf(code, codelen, "%s", state ? state : "");
        if (!state || strcmp(state, "23505") != 0)
            fprintf(stderr, "crmd keys: storing key %s: %s", k->prefix, PQresultErrorMessage(r));
    }
    PQclear(r);
    return ok;
}

int keys_create(const char *conninfo, int64_t org_id, const char *role, char *key_out, size_t n)
{
    if (!role || (strcmp(role, "admin") != 0 && strcmp(role, "member") != 0)) {
        fprintf(stderr, "crmd keys: --role must be admin or member\n");
        return 1;
    }
    if (n <= KEY_LEN) {
        fprintf(stderr, "crmd keys: key buffer too small\n");
        return 1;
    }
    PGconn *conn = cli_connect(conninfo, "keys");
    if (!conn)
        return 1;
    int rc = 1;
    char org[24];
    snprintf(org, sizeof(org), "%lld", (long long)org_id);
    api_key_gen_t k;
    /* A prefix collision (62^8 prefixes) is retried with a new key. */
    for (int attempt = 0; attempt < 3 && rc; attempt++) {
        if (!cli_exec(conn, "keys", "BEGIN"))
            break;
        const char *p1[] = {org};
        PGresult *r =
            PQexecParams(conn, "SELECT 1 FROM organizations WHERE id = $1", 1, NULL, p1, NULL, NULL, 0);
        bool found = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fprintf(stderr, "crmd keys: %s", PQresultErrorMessage(r));
        else if (!found)
            fprintf(stderr, "crmd keys: no organization %lld\n", (long long)org_id);
        PQclear(r);
        if (!found)
            break;
        key_make(&k);
        char name[32];
        snprintf(name, sizeof(name), "key %s", k.prefix);
        const char *p2[] = {org, name, role};
        r = PQexecParams(conn, "INSERT INTO users (org_id, name, role) VALUES ($1, $2, $3) RETURNING id", 3,
                         NULL, p2, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "crmd keys: creating the key's user: %s", PQresultErrorMessage(r));
            PQclear(r);
            break;
        }
        int64_t user = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        char code[8] = "";
        if (!key_insert(conn, org_id, user, &k, code, sizeof(code))) {
            PQclear(PQexec(conn, "ROLLBACK"));
            if (strcmp(code, "23505") == 0)
                continue;
            break;
        }
        if (cli_exec(conn, "keys", "COMMIT")) {
            snprintf(key_out, n, "%s", k.key);
            rc = 0;
        }
    }
    if (rc)
        PQclear(PQexec(conn, "ROLLBACK"));
    sec_wipe(&k, sizeof(k));
    PQfinish(conn);
    return rc;
}

int keys_revoke(const char *conninfo, const char *prefix)
{
    char pfx[KEY_PREFIX_LEN + 1];
    if (prefix && strncmp(prefix, "crmd_", 5) == 0)
        prefix += 5;
    if (!prefix || strlen(prefix) < KEY_PREFIX_LEN ||
        (prefix[KEY_PREFIX_LEN] && prefix[KEY_PREFIX_LEN] != '_')) {
        fprintf(stderr, "crmd keys: a key prefix is %d characters (the part after crmd_)\n", KEY_PREFIX_LEN);
        return 1;
    }
    memcpy(pfx, prefix, KEY_PREFIX_LEN);
    pfx[KEY_PREFIX_LEN] = '\0';
    PGconn *conn = cli_connect(conninfo, "keys");
    if (!conn)
        return 1;
    const char *params[] = {pfx};
    PGresult *r =
        PQexecParams(conn,
                     "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE prefix = $1"
                     " RETURNING revoked_at = now()",
                     1, NULL, params, NULL, NULL, 0);
    int rc = 1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fprintf(stderr, "crmd keys: %s", PQresultErrorMessage(r));
    else if (PQntuples(r) == 0)
        fprintf(stderr, "crmd keys: no key with prefix %s\n", pfx);
    else {
        printf(strcmp(PQgetvalue(r, 0, 0), "t") == 0 ? "revoked key %s\n" : "key %s was already revoked\n",
               pfx);
        rc = 0;
    }
    PQclear(r);
    PQfinish(conn);
    return rc;
}

int cmd_keys(int argc, char **argv)
{
    const char *action = argc > 0 ? argv[0] : "";
    argc--, argv++;
    if (strcmp(action, "create") == 0) {
        const char *org = cli_take_flag(&argc, argv, "--org");
        const char *role = cli_take_flag(&argc, argv, "--role");
        config_parse(&g_config, argc, argv, "keys create");
        if (!org || !role || (strcmp(role, "admin") != 0 && strcmp(role, "member") != 0)) {
            fprintf(stderr, "crmd: usage: crmd keys create --org ID --role admin|member\n");
            return 2;
        }
        char key[128];
        int64_t org_id = (int64_t)cli_parse_double(org, "--org", 1, 9e15);
        if (keys_create(cli_database_url(), org_id, role, key, sizeof(key)) != 0)
            return 1;
        printf("%s\n", key);
        return 0;
    }
    if (strcmp(action, "revoke") == 0 && argc >= 1) {
        const char *prefix = argv[0];
        config_parse(&g_config, argc - 1, argv + 1, "keys revoke");
        return keys_revoke(cli_database_url(), prefix) == 0 ? 0 : 1;
    }
    fprintf(stderr, "crmd: usage: crmd keys create --org ID --role admin|member | crmd keys revoke PREFIX\n");
    return 2;
}
