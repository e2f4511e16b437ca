/* Table-driven flags and environment variables; see config.h. */
#include "core/config.h"
#include "core/common.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

config_t g_config;

enum opt_type { OPT_INT, OPT_I64, OPT_STR, OPT_ADDR, OPT_CPUS, OPT_LEVEL, OPT_RATE };

typedef struct {
    const char *flag; /* without the leading "--" */
    const char *env;
    enum opt_type type;
    size_t offset;
    const char *def; /* default, as text */
    int64_t min, max;
    const char *help;
} opt_t;

#define OFF(f) offsetof(config_t, f)
static const opt_t opts[] = {
    {"listen", "PORT", OPT_ADDR, OFF(listen), "8080", 0, 0,
     "HTTP listen address: PORT, HOST:PORT or [V6]:PORT"},
    {"admin-listen", "ADMIN_LISTEN", OPT_ADDR, OFF(admin_listen), "127.0.0.1:9091", 0, 0,
     "admin listener (/metrics)"},
    {"threads", "THREADS", OPT_INT, OFF(threads), "0", 0, 256, "reactor threads (0: one per online CPU)"},
    {"cpus", "CPUS", OPT_CPUS, OFF(cpus), "", 0, 0,
     "pin reactor thread i to the i-th CPU of LIST (e.g. 0-3,6)"},
    {"max-conns", "MAX_CONNS", OPT_INT, OFF(max_conns), "65536", 1, 1 << 22,
     "open connection cap per process"},
    {"header-timeout", "HEADER_TIMEOUT_MS", OPT_INT, OFF(header_timeout_ms), "10000", 1, 3600000,
     "ms to receive a complete request head (then 408)"},
    {"idle-timeout", "IDLE_TIMEOUT_MS", OPT_INT, OFF(idle_timeout_ms), "60000", 1, 86400000,
     "ms an idle keep-alive connection stays open"},
    {"request-timeout", "REQUEST_TIMEOUT_MS", OPT_INT, OFF(request_timeout_ms), "30000", 1, 3600000,
     "ms for a request body to arrive and a handler to answer"},
    {"drain-timeout", "DRAIN_TIMEOUT_MS", OPT_INT, OFF(drain_timeout_ms), "10000", 0, 3600000,
     "ms in-flight requests get to finish after SIGTERM"},
    {"max-body", "MAX_BODY_BYTES", OPT_I64, OFF(max_body_bytes), "1048576", 0, (int64_t)1 << 40,
     "default request body limit in bytes (routes may set their own)"},
    {"database-url", "DATABASE_URL", OPT_STR, OFF(database_url), "", 0, 0, "PostgreSQL primary (libpq URL)"},
    {"pagination-key", "PAGINATION_KEY", OPT_STR, OFF(pagination_key), "", 0, 0,
     "key sealing list cursors (hex or text; random per process if unset)"},
    {"log-level", "LOG_LEVEL", OPT_LEVEL, OFF(log_level), "info", 0, 0, "debug, info, warn, error or off"},
    {"log-sample", "LOG_SAMPLE", OPT_INT, OFF(log_sample), "1", 1, 1000000,
     "log 1 in N successful requests (errors always)"},
    {"slow-query-threshold", "SLOW_QUERY_THRESHOLD", OPT_INT, OFF(slow_query_ms), "200", 0, 3600000,
     "ms above which a query is logged as slow"},
    {"graphql-max-depth", "GRAPHQL_MAX_DEPTH", OPT_INT, OFF(graphql_max_depth), "10", 1, 100,
     "deepest field nesting of a GraphQL query"},
    {"graphql-max-cost", "GRAPHQL_MAX_COST", OPT_INT, OFF(graphql_max_cost), "10000", 1, 100000000,
     "highest cost estimate of a GraphQL query (fields x page sizes)"},
    {"graphql-introspection", "GRAPHQL_INTROSPECTION", OPT_INT, OFF(graphql_introspection), "1", 0, 1,
     "1: __schema and __type answer; 0: refused"},
    {"db-pool-size", "DB_POOL_SIZE", OPT_INT, OFF(db_pool_size), "4", 1, 256,
     "PostgreSQL connections per reactor thread"},
    {"statement-timeout", "STATEMENT_TIMEOUT_MS", OPT_INT, OFF(statement_timeout_ms), "5000", 0, 3600000,
     "PostgreSQL statement_timeout per connection"},
    {"redis-url", "REDIS_URL", OPT_STR, OFF(redis_url), "", 0, 0,
     "Redis for the shared cache and invalidations (redis://[:pass@]host:port/db)"},
    {"redis-timeout", "REDIS_TIMEOUT_MS", OPT_INT, OFF(redis_timeout_ms), "250", 1, 60000,
     "ms a Redis command may take before the connection counts as dead"},
    {"cache-mb", "CACHE_MB", OPT_INT, OFF(cache_mb), "256", 0, 1 << 20,
     "in-process response cache in MiB (0: off)"},
    {"gzip-level", "GZIP_LEVEL", OPT_INT, OFF(gzip_level), "6", 1, 12, "libdeflate gzip level for responses"},
    {"hsts-max-age", "HSTS_MAX_AGE", OPT_I64, OFF(hsts_max_age), "0", 0, 100000000,
     "seconds for Strict-Transport-Security (0: header off)"},
    {"frontend-url", "FRONTEND_URL", OPT_STR, OFF(frontend_url), "", 0, 0,
     "CORS: comma list of allowed origins (scheme://host[:port])"},
    {"rate-limit-whitelist", "RATE_LIMIT_WHITELIST", OPT_STR, OFF(rate_limit_whitelist), "", 0, 0,
     "comma list of CIDRs (IPv4/IPv6) that skip every rate limit"},
    {"trusted-proxies", "TRUSTED_PROXIES", OPT_STR, OFF(trusted_proxies), "", 0, 0,
     "comma list of CIDRs whose X-Forwarded-For names the client"},
    {"rate-limit-free", "RATE_LIMIT_FREE", OPT_RATE, OFF(rl_free), "10/60/2", 0, 0,
     "free tier per key: LIMIT/WINDOW_S/BURST"},
    {"rate-limit-standard", "RATE_LIMIT_STANDARD", OPT_RATE, OFF(rl_standard), "100/60/20", 0, 0,
     "standard tier per key"},
    {"rate-limit-professional", "RATE_LIMIT_PROFESSIONAL", OPT_RATE, OFF(rl_professional), "1000/60/100", 0,
     0, "professional tier per key"},
    {"rate-limit-enterprise", "RATE_LIMIT_ENTERPRISE", OPT_RATE, OFF(rl_enterprise), "10000/60/1000", 0, 0,
     "enterprise tier per key"},
    {"rate-limit-expensive", "RATE_LIMIT_EXPENSIVE", OPT_RATE, OFF(rl_expensive), "20/60/20", 0, 0,
     "expensive routes per key, on top of the tier"},
    {"rate-limit-bulk", "RATE_LIMIT_BULK", OPT_RATE, OFF(rl_bulk), "5/60/5", 0, 0,
     "bulk routes per key, on top of the tier"},
    {"rate-limit-ip", "RATE_LIMIT_IP", OPT_RATE, OFF(rl_ip), "1000/900/1000", 0, 0,
     "unauthenticated /api requests per client IP"},
    {"rate-limit-health", "RATE_LIMIT_HEALTH", OPT_RATE, OFF(rl_health), "200/60/200", 0, 0,
     "health probes per client IP"},
    {"rate-limit-max-block", "RATE_LIMIT_MAX_BLOCK", OPT_INT, OFF(rl_max_block_s), "3600", 0, 86400,
     "seconds: cap of the doubling block of repeat violators (0: no escalation)"},
    {"rate-limit-lease", "RATE_LIMIT_LEASE", OPT_INT, OFF(rl_lease), "64", 1, 100000,
     "most tokens a thread leases from Redis at once"},
};

void config_usage(FILE *out)
{
    fprintf(out, "usage: crmd [serve|migrate|seed|keys|help] [options]\n\n"
                 "  serve                 run the HTTP server (default)\n"
                 "  migrate               apply sql/migrations to DATABASE_URL\n"
                 "  seed --scale S        load deterministic demo data (and demo API keys)\n"
                 "  keys create --org N --role admin|member | keys revoke PREFIX\n\n"
                 "options (flag, environment variable, default):\n");
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", opts[i].flag);
        fprintf(out, "  %-24s %-22s %-16s %s\n", flag, opts[i].env, opts[i].def[0] ? opts[i].def : "-",
                opts[i].help);
    }
    fprintf(out, "  %-24s %-22s %-16s %s\n", "-h, --help", "", "", "this text");
}

static __attribute__((noreturn, format(printf, 1, 2))) void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("crmd: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see crmd --help)\n", stderr);
    va_end(ap);
    exit(2);
}

bool config_parse_addr(const char *s, config_addr_t *a, char *err, size_t errlen)
{
    char host[64] = "0.0.0.0";
    const char *port_s = s;
    memset(a, 0, sizeof(*a));
    snprintf(a->text, sizeof(a->text), "%s", s);
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof(host)) {
            snprintf(err, errlen, "bad address '%s' (want [V6]:PORT)", s);
            return false;
        }
        memcpy(host, s + 1, end - s - 1);
        host[end - s - 1] = '\0';
        port_s = end + 2;
    } else if (strchr(s, ':')) {
        const char *colon = strrchr(s, ':');
        if ((size_t)(colon - s) >= sizeof(host)) {
            snprintf(err, errlen, "bad address '%s'", s);
            return false;
        }
        memcpy(host, s, colon - s);
        host[colon - s] = '\0';
        port_s = colon + 1;
    }
    char *end;
    errno = 0;
    long port = strtol(port_s, &end, 10);
    if (!*port_s || *end || errno || port < 0 || port > 65535) {
        snprintf(err, errlen, "bad port in '%s'", s);
        return false;
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *v4 = (struct sockaddr_in *)&a->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&a->addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        a->addr_len = sizeof(*v4);
    } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        a->addr_len = sizeof(*v6);
    } else {
        snprintf(err, errlen, "bad host in '%s' (want an IPv4 or IPv6 address)", s);
        return false;
    }
    return true;
}

/* Parses "0-3,6" into cpus[]; false on a bad list. */
static bool parse_cpus(const char *s, config_t *c)
{
    c->cpus_count = 0;
    if (!*s)
        return true;
    while (*s) {
        char *end;
        long lo = strtol(s, &end, 10), hi = lo;
        if (end == s || lo < 0 || lo > 4095)
            return false;
        s = end;
        if (*s == '-') {
            hi = strtol(s + 1, &end, 10);
            if (end == s + 1 || hi < lo || hi > 4095)
                return false;
            s = end;
        }
        for (long i = lo; i <= hi; i++) {
            if (c->cpus_count >= (int)ARRAY_LEN(c->cpus))
                return false;
            c->cpus[c->cpus_count++] = (int)i;
        }
        if (*s == ',')
            s++;
        else if (*s)
            return false;
    }
    return true;
}

static void set_opt(config_t *c, const opt_t *o, const char *v, const char *source)
{
    char *p = (char *)c + o->offset;
    char err[160];
    switch (o->type) {
    case OPT_INT:
    case OPT_I64: {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || errno || n < o->min || n > o->max)
            usage_error("%s: '%s' is not a whole number from %lld to %lld", source, v, (long long)o->min,
                        (long long)o->max);
        if (o->type == OPT_INT)
            *(int *)p = (int)n;
        else
            *(int64_t *)p = n;
        break;
    }
    case OPT_STR:
        *(const char **)p = v;
        break;
    case OPT_RATE: {
        unsigned long l, w, b = 1;
        int used = 0, k = sscanf(v, "%lu/%lu%n/%lu%n", &l, &w, &used, &b, &used);
        if (k < 2 || v[used] || l < 1 || l > 100000000 || w < 1 || w > 86400 || b < 1 || b > 100000000)
            usage_error("%s: '%s' is not LIMIT/WINDOW_S[/BURST]", source, v);
        *(const char **)p = v;
        break;
    }
    case OPT_ADDR:
        if (!config_parse_addr(v, (config_addr_t *)p, err, sizeof(err)))
            usage_error("%s: %s", source, err);
        break;
    case OPT_CPUS:
        if (!parse_cpus(v, c))
            usage_error("%s: bad CPU list '%s' (want e.g. 0-3,6)", source, v);
        break;
    case OPT_LEVEL: {
        int l = log_level_parse(v);
        if (l < 0)
            usage_error("%s: log level '%s' is not one of debug, info, warn, error, off", source, v);
        *(int *)p = l;
        break;
    }
    }
}

void config_parse(config_t *c, int argc, char **argv, const char *subcommand)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < ARRAY_LEN(opts); i++)
        set_opt(c, &opts[i], opts[i].def, "default");
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        const char *v = getenv(opts[i].env);
        if (v && *v) {
            char source[64];
            snprintf(source, sizeof(source), "%s", opts[i].env);
            set_opt(c, &opts[i], v, source);
        }
    }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            config_usage(stdout);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0)
            usage_error("%s: unexpected argument '%s'", subcommand, a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const opt_t *o = NULL;
        for (size_t k = 0; k < ARRAY_LEN(opts); k++)
            if (strlen(opts[k].flag) == name_len && memcmp(opts[k].flag, name, name_len) == 0)
                o = &opts[k];
        if (!o)
            usage_error("unknown flag '%.*s'", (int)(name_len + 2), a);
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v)
            usage_error("--%s needs a value", o->flag);
        char source[64];
        snprintf(source, sizeof(source), "--%s", o->flag);
        set_opt(c, o, v, source);
    }
    if (c->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = n > 0 ? (int)MIN(n, 256) : 1;
    }
    if (c->cpus_count && c->cpus_count < c->threads)
        usage_error("--cpus lists %d CPUs for %d threads", c->cpus_count, c->threads);
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    for (int i = 0; i < c->cpus_count; i++)
        if (c->cpus[i] >= ncpu)
            usage_error("--cpus: CPU %d does not exist (this machine has %ld)", c->cpus[i], ncpu);
    g_log_level = c->log_level;
}
