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

enum opt_type { OPT_INT, OPT_I64, OPT_STR, OPT_ADDR, OPT_CPUS, OPT_LEVEL, OPT_RATE, OPT_ONOFF };

typedef struct {
    const char *flag; /* without the leading "--" */
    const char *env;
    enum opt_type type;
    size_t offset;
    const char *def; /* default, as text */
    int64_t min, max;
    const char *help;
    bool reload; /* SIGHUP applies a new value; the others take a restart */
} opt_t;

#define OFF(f) offsetof(config_t, f)
static const opt_t opts[] = {
    {"config", "CRMD_CONFIG", OPT_STR, OFF(config_file), "", 0, 0,
     "file of NAME=value lines (these variables' names), read at start and on SIGHUP", false},
    {"listen", "PORT", OPT_ADDR, OFF(listen), "8080", 0, 0,
     "HTTP listen address: PORT, HOST:PORT or [V6]:PORT", false},
    {"admin-listen", "ADMIN_LISTEN", OPT_ADDR, OFF(admin_listen), "127.0.0.1:9091", 0, 0,
     "admin listener (/metrics)", false},
    {"threads", "THREADS", OPT_INT, OFF(threads), "0", 0, 256, "reactor threads (0: one per online CPU)",
     false},
    {"cpus", "CPUS", OPT_CPUS, OFF(cpus), "", 0, 0,
     "pin reactor thread i to the i-th CPU of LIST (e.g. 0-3,6)", false},
    {"max-conns", "MAX_CONNS", OPT_INT, OFF(max_conns), "65536", 1, 1 << 22,
     "open connection cap per process", false},
    {"header-timeout", "HEADER_TIMEOUT_MS", OPT_INT, OFF(header_timeout_ms), "10000", 1, 3600000,
     "ms to receive a complete request head (then 408)", false},
    {"idle-timeout", "IDLE_TIMEOUT_MS", OPT_INT, OFF(idle_timeout_ms), "60000", 1, 86400000,
     "ms an idle keep-alive connection stays open", false},
    {"request-timeout", "REQUEST_TIMEOUT_MS", OPT_INT, OFF(request_timeout_ms), "30000", 1, 3600000,
     "ms for a request body to arrive and a handler to answer", false},
    {"drain-timeout", "DRAIN_TIMEOUT_MS", OPT_INT, OFF(drain_timeout_ms), "10000", 0, 3600000,
     "ms in-flight requests get to finish after SIGTERM", false},
    {"max-body", "MAX_BODY_BYTES", OPT_I64, OFF(max_body_bytes), "1048576", 0, (int64_t)1 << 40,
     "default request body limit in bytes (routes may set their own)", false},
    {"database-url", "DATABASE_URL", OPT_STR, OFF(database_url), "", 0, 0, "PostgreSQL primary (libpq URL)",
     false},
    {"pagination-key", "PAGINATION_KEY", OPT_STR, OFF(pagination_key), "", 0, 0,
     "key sealing list cursors (hex or text; random per process if unset)", false},
    {"log-level", "LOG_LEVEL", OPT_LEVEL, OFF(log_level), "info", 0, 0, "debug, info, warn, error or off",
     true},
    {"log-sample", "LOG_SAMPLE", OPT_INT, OFF(log_sample), "1", 1, 1000000,
     "log 1 in N successful requests (errors always)", true},
    {"slow-query-threshold", "SLOW_QUERY_THRESHOLD", OPT_INT, OFF(slow_query_ms), "200", 0, 3600000,
     "ms above which a query is logged as slow", true},
    {"graphql-max-depth", "GRAPHQL_MAX_DEPTH", OPT_INT, OFF(graphql_max_depth), "10", 1, 100,
     "deepest field nesting of a GraphQL query", false},
    {"graphql-max-cost", "GRAPHQL_MAX_COST", OPT_INT, OFF(graphql_max_cost), "10000", 1, 100000000,
     "highest cost estimate of a GraphQL query (fields x page sizes)", false},
    {"graphql-introspection", "GRAPHQL_INTROSPECTION", OPT_INT, OFF(graphql_introspection), "1", 0, 1,
     "1: __schema and __type answer; 0: refused", false},
    {"db-prepared", "DB_PREPARED", OPT_ONOFF, OFF(db_prepared), "on", 0, 0,
     "off: unnamed statements only and no startup options, for PgBouncer in transaction pooling mode", false},
    {"db-pool-size", "DB_POOL_SIZE", OPT_INT, OFF(db_pool_size), "4", 1, 256,
     "PostgreSQL connections per reactor thread", false},
    {"statement-timeout", "STATEMENT_TIMEOUT_MS", OPT_INT, OFF(statement_timeout_ms), "5000", 0, 3600000,
     "PostgreSQL statement_timeout per connection", false},
    {"redis-url", "REDIS_URL", OPT_STR, OFF(redis_url), "", 0, 0,
     "Redis for the shared cache and invalidations (redis://[:pass@]host:port/db)", false},
    {"redis-sentinels", "REDIS_SENTINELS", OPT_STR, OFF(redis_sentinels), "", 0, 0,
     "Redis Sentinel addresses (host:port,...): the master is the one they name, followed over failovers",
     false},
    {"redis-sentinel-master", "REDIS_SENTINEL_MASTER", OPT_STR, OFF(redis_sentinel_master), "mymaster", 0, 0,
     "the master's name at the sentinels", false},
    {"redis-timeout", "REDIS_TIMEOUT_MS", OPT_INT, OFF(redis_timeout_ms), "250", 1, 60000,
     "ms a Redis command may take before the connection counts as dead", false},
    {"cache-mb", "CACHE_MB", OPT_INT, OFF(cache_mb), "256", 0, 1 << 20,
     "in-process response cache in MiB (0: off)", false},
    {"gzip-level", "GZIP_LEVEL", OPT_INT, OFF(gzip_level), "6", 1, 12, "libdeflate gzip level for responses",
     false},
    {"hsts-max-age", "HSTS_MAX_AGE", OPT_I64, OFF(hsts_max_age), "0", 0, 100000000,
     "seconds for Strict-Transport-Security (0: header off)", true},
    {"frontend-url", "FRONTEND_URL", OPT_STR, OFF(frontend_url), "", 0, 0,
     "CORS: comma list of allowed origins (scheme://host[:port])", true},
    {"rate-limit-whitelist", "RATE_LIMIT_WHITELIST", OPT_STR, OFF(rate_limit_whitelist), "", 0, 0,
     "comma list of CIDRs (IPv4/IPv6) that skip every rate limit", true},
    {"trusted-proxies", "TRUSTED_PROXIES", OPT_STR, OFF(trusted_proxies), "", 0, 0,
     "comma list of CIDRs whose X-Forwarded-For names the client", true},
    {"rate-limit-free", "RATE_LIMIT_FREE", OPT_RATE, OFF(rl_free), "10/60/2", 0, 0,
     "free tier per key: LIMIT/WINDOW_S/BURST", true},
    {"rate-limit-standard", "RATE_LIMIT_STANDARD", OPT_RATE, OFF(rl_standard), "100/60/20", 0, 0,
     "standard tier per key", true},
    {"rate-limit-professional", "RATE_LIMIT_PROFESSIONAL", OPT_RATE, OFF(rl_professional), "1000/60/100", 0,
     0, "professional tier per key", true},
    {"rate-limit-enterprise", "RATE_LIMIT_ENTERPRISE", OPT_RATE, OFF(rl_enterprise), "10000/60/1000", 0, 0,
     "enterprise tier per key", true},
    {"rate-limit-expensive", "RATE_LIMIT_EXPENSIVE", OPT_RATE, OFF(rl_expensive), "20/60/20", 0, 0,
     "expensive routes per key, on top of the tier", true},
    {"rate-limit-bulk", "RATE_LIMIT_BULK", OPT_RATE, OFF(rl_bulk), "5/60/5", 0, 0,
     "bulk routes per key, on top of the tier", true},
    {"rate-limit-ip", "RATE_LIMIT_IP", OPT_RATE, OFF(rl_ip), "1000/900/1000", 0, 0,
     "unauthenticated /api requests per client IP", true},
    {"rate-limit-health", "RATE_LIMIT_HEALTH", OPT_RATE, OFF(rl_health), "200/60/200", 0, 0,
     "health probes per client IP", true},
    {"rate-limit-max-block", "RATE_LIMIT_MAX_BLOCK", OPT_INT, OFF(rl_max_block_s), "3600", 0, 86400,
     "seconds: cap of the doubling block of repeat violators (0: no escalation)", true},
    {"rate-limit-lease", "RATE_LIMIT_LEASE", OPT_INT, OFF(rl_lease), "64", 1, 100000,
     "most tokens a thread leases from Redis at once", true},
    {"workers", "WORKERS", OPT_INT, OFF(workers), "0", 0, 256,
     "serve: job executor threads in the server process (never a reactor); 0: none", false},
    {"job-lease", "JOB_LEASE_MS", OPT_INT, OFF(job_lease_ms), "30000", 500, 3600000,
     "ms after which a job whose worker stopped renewing it is delivered again", false},
    {"job-backoff", "JOB_BACKOFF_MS", OPT_INT, OFF(job_backoff_ms), "1000", 1, 3600000,
     "ms: base of a failed job's retry delay, doubled per attempt with full jitter (capped at 1 h)", false},
    {"job-keep", "JOB_KEEP_S", OPT_INT, OFF(job_keep_s), "86400", 1, 31536000,
     "seconds finished jobs are kept for GET /api/jobs/{id} (dead jobs: 10x)", false},
    {"job-keep-count", "JOB_KEEP_COUNT", OPT_INT, OFF(job_keep_count), "10000", 1, 10000000,
     "most finished jobs kept (dead jobs: 10x)", false},
    {"job-schedules", "JOB_SCHEDULES", OPT_STR, OFF(job_schedules),
     "maintain_partitions=@daily;refresh_analytics=@every 5m;warm_cache=@start", 0, 0,
     "repeatable jobs: TYPE=SPEC;... with SPEC @every N[smhd], @hourly, @daily, @start or 5-field cron "
     "(UTC); none: no schedules",
     false},
    {"archive-dir", "ARCHIVE_DIR", OPT_STR, OFF(archive_dir), "var/archive", 0, 0,
     "folder for archived activity partitions (gzip CSV)", false},
    {"partition-months-ahead", "PARTITION_MONTHS_AHEAD", OPT_INT, OFF(partition_months_ahead), "3", 1, 120,
     "monthly activity partitions kept ready ahead of the current month", false},
    {"partition-retention-months", "PARTITION_RETENTION_MONTHS", OPT_INT, OFF(partition_retention_months),
     "0", 0, 1200,
     "months of activities kept before maintain_partitions archives and drops them (0: keep all)", false},
};

void config_usage(FILE *out)
{
    fprintf(out, "usage: crmd [serve|worker|migrate|seed|keys|help] [options]\n\n"
                 "  serve                 run the HTTP server (default)\n"
                 "  worker                run job executors (--workers N) with only the admin listener\n"
                 "  migrate               apply sql/migrations to DATABASE_URL\n"
                 "  seed --scale S        load deterministic demo data (and demo API keys)\n"
                 "  keys create --org N --role admin|member | keys revoke PREFIX\n\n"
                 "options (flag, environment variable, default; [SIGHUP]: a reload applies a new value):\n");
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", opts[i].flag);
        fprintf(out, "  %-24s %-22s %-16s %s%s\n", flag, opts[i].env, opts[i].def[0] ? opts[i].def : "-",
                opts[i].help, opts[i].reload ? " [SIGHUP]" : "");
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

/* Sets option o of c from text v; false with a reason naming source in err. */
static bool set_opt(config_t *c, const opt_t *o, const char *v, const char *source, char *err, size_t errlen)
{
    char *p = (char *)c + o->offset;
    char why[160];
    switch (o->type) {
    case OPT_INT:
    case OPT_I64: {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (!*v || *end || errno || n < o->min || n > o->max) {
            snprintf(err, errlen, "%s: '%s' is not a whole number from %lld to %lld", source, v,
                     (long long)o->min, (long long)o->max);
            return false;
        }
        if (o->type == OPT_INT)
            *(int *)p = (int)n;
        else
            *(int64_t *)p = n;
        return true;
    }
    case OPT_STR:
        *(const char **)p = v;
        return true;
    case OPT_RATE: {
        unsigned long l, w, b = 1;
        int used = 0, k = sscanf(v, "%lu/%lu%n/%lu%n", &l, &w, &used, &b, &used);
        if (k < 2 || v[used] || l < 1 || l > 100000000 || w < 1 || w > 86400 || b < 1 || b > 100000000) {
            snprintf(err, errlen, "%s: '%s' is not LIMIT/WINDOW_S[/BURST]", source, v);
            return false;
        }
        *(const char **)p = v;
        return true;
    }
    case OPT_ADDR:
        if (!config_parse_addr(v, (config_addr_t *)p, why, sizeof(why))) {
            snprintf(err, errlen, "%s: %s", source, why);
            return false;
        }
        return true;
    case OPT_CPUS:
        if (!parse_cpus(v, c)) {
            snprintf(err, errlen, "%s: bad CPU list '%s' (want e.g. 0-3,6)", source, v);
            return false;
        }
        return true;
    case OPT_ONOFF:
        if (strcmp(v, "on") == 0 || strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
            *(int *)p = 1;
        } else if (strcmp(v, "off") == 0 || strcmp(v, "0") == 0 || strcmp(v, "false") == 0) {
            *(int *)p = 0;
        } else {
            snprintf(err, errlen, "%s: '%s' is not on or off", source, v);
            return false;
        }
        return true;
    case OPT_LEVEL: {
        int l = log_level_parse(v);
        if (l < 0) {
            snprintf(err, errlen, "%s: log level '%s' is not one of debug, info, warn, error, off", source,
                     v);
            return false;
        }
        *(int *)p = l;
        return true;
    }
    }
    return false;
}

static const opt_t *opt_by_env(const char *name, size_t n)
{
    for (size_t k = 0; k < ARRAY_LEN(opts); k++)
        if (strlen(opts[k].env) == n && memcmp(opts[k].env, name, n) == 0)
            return &opts[k];
    return NULL;
}

static const opt_t *opt_by_flag(const char *name, size_t n)
{
    for (size_t k = 0; k < ARRAY_LEN(opts); k++)
        if (strlen(opts[k].flag) == n && memcmp(opts[k].flag, name, n) == 0)
            return &opts[k];
    return NULL;
}

/* The contents of every config file read, kept for the life of the process: the string
 * settings of g_config (and of the settings a reload replaced) point into them. */
typedef struct file_text {
    struct file_text *prev;
    char text[];
} file_text_t;
static file_text_t *file_texts;

#define CONFIG_FILE_MAX (1 << 20)

/* Reads path whole into a kept buffer; NULL with a reason in err. */
static char *read_kept(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    file_text_t *t = xmalloc(sizeof(*t) + CONFIG_FILE_MAX + 1);
    size_t n = fread(t->text, 1, CONFIG_FILE_MAX + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad || n > CONFIG_FILE_MAX) {
        snprintf(err, errlen, "%s: %s", path, bad ? "read error" : "larger than 1 MiB");
        free(t);
        return NULL;
    }
    t->text[n] = '\0';
    t = xrealloc(t, sizeof(*t) + n + 1);
    t->prev = file_texts;
    file_texts = t;
    return t->text;
}

/* Applies a file of "NAME=value" lines, as systemd's EnvironmentFile= reads them: blank lines
 * and "#" comments skipped, an optional "export ", a value optionally in single or double
 * quotes. A name that is no option of ours is logged and skipped (the same file may feed other
 * programs); a bad value fails the whole file. */
static bool apply_file(config_t *c, const char *path, char *err, size_t errlen)
{
    char *text = read_kept(path, err, errlen);
    if (!text)
        return false;
    int lineno = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
            line[--n] = '\0';
        while (*line == ' ' || *line == '\t')
            line++;
        if (!*line || *line == '#' || *line == ';')
            continue;
        if (strncmp(line, "export ", 7) == 0)
            line += 7;
        char *eq = strchr(line, '=');
        char source[512];
        snprintf(source, sizeof(source), "%s:%d", path, lineno);
        if (!eq || eq == line) {
            snprintf(err, errlen, "%s: not NAME=value", source);
            return false;
        }
        char *v = eq + 1;
        size_t vn = strlen(v);
        if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) {
            v[vn - 1] = '\0';
            v++;
        }
        const opt_t *o = opt_by_env(line, (size_t)(eq - line));
        if (!o) {
            *eq = '\0';
            log_fields(LOG_WARN, "config file: not a crmd setting, ignored", "file", path, "#line",
                       (int64_t)lineno, "name", line, NULL);
            continue;
        }
        if (o->offset == OFF(config_file))
            continue; /* a file does not name another */
        snprintf(source, sizeof(source), "%s:%d %s", path, lineno, o->env);
        if (*v && !set_opt(c, o, v, source, err, errlen))
            return false;
    }
    return true;
}

/* The argv config_parse was given, kept for reloads (flags win over the file then too). */
static int saved_argc;
static char **saved_argv;
static const char *saved_sub;

/* Defaults, then the environment, then the config file, then the flags; false with a reason.
 * --help exits here. */
static bool build(config_t *c, int argc, char **argv, const char *subcommand, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < ARRAY_LEN(opts); i++)
        if (!set_opt(c, &opts[i], opts[i].def, "default", err, errlen))
            return false;
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        const char *v = getenv(opts[i].env);
        if (v && *v && !set_opt(c, &opts[i], v, opts[i].env, err, errlen))
            return false;
    }
    /* the file is named by --config (or CRMD_CONFIG): find the flag before the others apply */
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            c->config_file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            c->config_file = argv[i] + 9;
    }
    if (c->config_file && *c->config_file && !apply_file(c, c->config_file, err, errlen))
        return false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            config_usage(stdout);
            exit(0);
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(err, errlen, "%s: unexpected argument '%s'", subcommand, a);
            return false;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        const opt_t *o = opt_by_flag(name, name_len);
        if (!o) {
            snprintf(err, errlen, "unknown flag '%.*s'", (int)(name_len + 2), a);
            return false;
        }
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!v) {
            snprintf(err, errlen, "--%s needs a value", o->flag);
            return false;
        }
        char source[64];
        snprintf(source, sizeof(source), "--%s", o->flag);
        if (!set_opt(c, o, v, source, err, errlen))
            return false;
    }
    if (c->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->threads = n > 0 ? (int)MIN(n, 256) : 1;
    }
    if (c->cpus_count && c->cpus_count < c->threads) {
        snprintf(err, errlen, "--cpus lists %d CPUs for %d threads", c->cpus_count, c->threads);
        return false;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_CONF);
    for (int i = 0; i < c->cpus_count; i++)
        if (c->cpus[i] >= ncpu) {
            snprintf(err, errlen, "--cpus: CPU %d does not exist (this machine has %ld)", c->cpus[i], ncpu);
            return false;
        }
    return true;
}

void config_parse(config_t *c, int argc, char **argv, const char *subcommand)
{
    char err[640];
    if (!build(c, argc, argv, subcommand, err, sizeof(err)))
        usage_error("%s", err);
    saved_argc = argc;
    saved_argv = argv;
    saved_sub = subcommand;
    g_log_level = c->log_level;
}

bool config_reload(config_t *next, char *err, size_t errlen)
{
    return build(next, saved_argc, saved_argv, saved_sub ? saved_sub : "serve", err, errlen);
}

static bool same_value(const opt_t *o, const config_t *a, const config_t *b)
{
    const char *pa = (const char *)a + o->offset, *pb = (const char *)b + o->offset;
    switch (o->type) {
    case OPT_INT:
    case OPT_LEVEL:
    case OPT_ONOFF:
        return *(const int *)pa == *(const int *)pb;
    case OPT_I64:
        return *(const int64_t *)pa == *(const int64_t *)pb;
    case OPT_STR:
    case OPT_RATE: {
        const char *sa = *(const char *const *)pa, *sb = *(const char *const *)pb;
        return strcmp(sa ? sa : "", sb ? sb : "") == 0;
    }
    case OPT_ADDR:
        return strcmp(((const config_addr_t *)pa)->text, ((const config_addr_t *)pb)->text) == 0;
    case OPT_CPUS:
        return a->cpus_count == b->cpus_count && memcmp(a->cpus, b->cpus, sizeof(a->cpus)) == 0;
    }
    return true;
}

static void append_name(char *list, size_t cap, const char *name)
{
    size_t n = strlen(list);
    snprintf(list + n, cap - n, "%s%s", n ? "," : "", name);
}

void config_apply(config_t *c, const config_t *next, char *applied, size_t an, char *ignored, size_t in)
{
    applied[0] = ignored[0] = '\0';
    for (size_t i = 0; i < ARRAY_LEN(opts); i++) {
        const opt_t *o = &opts[i];
        if (same_value(o, c, next))
            continue;
        if (!o->reload) {
            append_name(ignored, in, o->env);
            continue;
        }
        append_name(applied, an, o->env);
        char *dst = (char *)c + o->offset;
        const char *src = (const char *)next + o->offset;
        /* other threads read these words while they change: one atomic store each */
        switch (o->type) {
        case OPT_INT:
        case OPT_LEVEL:
        case OPT_ONOFF:
            __atomic_store_n((int *)dst, *(const int *)src, __ATOMIC_RELAXED);
            break;
        case OPT_I64:
            __atomic_store_n((int64_t *)dst, *(const int64_t *)src, __ATOMIC_RELAXED);
            break;
        case OPT_STR:
        case OPT_RATE:
            __atomic_store_n((const char **)dst, *(const char *const *)src, __ATOMIC_RELEASE);
            break;
        case OPT_ADDR:
        case OPT_CPUS:
            break; /* never reloadable */
        }
    }
}

void config_free(void)
{
    while (file_texts) {
        file_text_t *prev = file_texts->prev;
        free(file_texts);
        file_texts = prev;
    }
}
