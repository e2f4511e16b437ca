/*
 * Process configuration: every setting has a flag and an environment variable; flags win.
 * The table in config.c is the single source of --help, parsing and validation.
 */
#ifndef CRMD_CORE_CONFIG_H
#define CRMD_CORE_CONFIG_H

#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <netinet/in.h>

typedef struct {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char text[80]; /* as given, for logs */
} config_addr_t;

typedef struct config {
    const char *config_file; /* NAME=value lines read at start and on SIGHUP ("" none) */
    config_addr_t listen;
    config_addr_t admin_listen;
    int threads;   /* reactor threads */
    int cpus[256]; /* pin list, cpus_count entries */
    int cpus_count;
    int max_conns; /* per process */
    int header_timeout_ms;
    int idle_timeout_ms;
    int request_timeout_ms;
    int drain_timeout_ms;
    int64_t max_body_bytes; /* default request body limit */
    const char *database_url;
    const char *pagination_key;
    int log_level;  /* enum log_level */
    int log_sample; /* log 1 in N successful requests */
    int slow_query_ms;
    int graphql_max_depth;     /* deepest field nesting a GraphQL query may have */
    int graphql_max_cost;      /* highest cost estimate a GraphQL query may have */
    int graphql_introspection; /* 0: __schema and __type are refused */
    int db_pool_size;          /* connections per reactor thread */
    int db_prepared;           /* 0: unnamed statements only, no startup options (PgBouncer) */
    int statement_timeout_ms;
    int gzip_level;
    int cache_mb;
    const char *redis_url;
    const char *redis_sentinels;       /* "host:port,..." of Redis Sentinels ("" none) */
    const char *redis_sentinel_master; /* the monitored master's name */
    int redis_timeout_ms;
    int64_t hsts_max_age;             /* 0: no Strict-Transport-Security */
    const char *frontend_url;         /* CORS: comma list of allowed origins */
    const char *rate_limit_whitelist; /* comma list of CIDRs that skip every limit */
    const char *trusted_proxies;      /* comma list of CIDRs whose X-Forwarded-For is believed */
    /* rate limits as "limit/window_s/burst" */
    const char *rl_free, *rl_standard, *rl_professional, *rl_enterprise;
    const char *rl_expensive, *rl_bulk, *rl_ip, *rl_health;
    int rl_max_block_s; /* cap of the doubled block of repeat violators (0: no escalation) */
    int rl_lease;       /* most tokens a thread leases from Redis at once */
    /* background jobs (jobs/, api/jobs/) */
    int workers;                    /* serve: job executor threads in the server process (0: none) */
    int job_lease_ms;               /* a delivered job not renewed for this long is delivered again */
    int job_backoff_ms;             /* base of the retry backoff (doubled per attempt, full jitter) */
    int job_keep_s;                 /* finished jobs are kept this long ... */
    int job_keep_count;             /* ... and at most this many */
    const char *job_schedules;      /* "type=SPEC;..." repeatable jobs */
    const char *archive_dir;        /* where maintain_partitions writes archived partitions */
    int partition_months_ahead;     /* activity partitions created ahead of the current month */
    int partition_retention_months; /* months of activities kept before archiving (0: forever) */
} config_t;

/* The process-wide configuration, filled once by config_parse before threads start. */
extern config_t g_config;

/* Sets defaults, reads environment variables, then argv (after the subcommand). On a bad flag
 * or value prints "crmd: <reason>" and exits 2; --help prints the table and exits 0. */
void config_parse(config_t *c, int argc, char **argv, const char *subcommand);

/* Builds the configuration again as config_parse did (defaults, environment, the config
 * file as it is now, the same flags) into next; false with a reason in err, which leaves the
 * running configuration as it was. */
bool config_reload(config_t *next, char *err, size_t errlen);

/* Copies the settings that may change while running (log level and sampling, slow-query
 * threshold, HSTS, CORS origins, rate limits, whitelist, trusted proxies) from next into c,
 * one atomic store each. Lists the environment names of the settings it applied in applied,
 * and of the changed settings that take a restart in ignored (comma lists). The caller
 * republishes what modules derive from them (rl_configure, http_cors_configure) and sets
 * g_log_level when it has logged the reload. */
void config_apply(config_t *c, const config_t *next, char *applied, size_t an, char *ignored, size_t in);

/* Frees the config files' text (at exit). */
void config_free(void);

/* Prints every option with its environment variable and default. */
void config_usage(FILE *out);

/* Parses "8080", "host:port" or "[v6]:port" into a; false with a reason in err. */
bool config_parse_addr(const char *s, config_addr_t *a, char *err, size_t errlen);

#endif
