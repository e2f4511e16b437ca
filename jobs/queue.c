/*
 * The job queue on Redis: the key layout and the Lua scripts every state change goes through,
 * shared by the reactors' asynchronous client and the workers' blocking connections.
 *
 * Why Streams with a consumer group rather than lists plus Lua leases: a consumer group already
 * is a lease table. XREADGROUP hands an entry to one consumer and records it in the group's
 * pending list with a delivery time; XACK ends it; XAUTOCLAIM gives entries whose consumer has
 * not touched them for the lease time to another worker; XCLAIM ... JUSTID renews a lease
 * without re-delivering. With lists, all of that (the in-flight list, its deadlines, the sweep)
 * is ours to write and to get right under concurrency. Streams also let one blocking read wait
 * on several queues at once (two priorities times every job type), which BRPOPLPUSH cannot.
 * The job itself lives in a hash; the stream entry only carries its id, so cancelling, retrying
 * and re-queueing never rewrite a stream.
 *
 * Keys (one Redis, no cluster: scripts build keys from this prefix):
 *   crmd:jobs:seq               job ids (INCR; started at the enqueue time in ms x 1000, so that
 *                               ids stay unique if Redis ever loses its data: PostgreSQL keeps
 *                               rows by job id, job_files and job_batches)
 *   crmd:jobs:job:<id>          the job: id type org status attempts max_attempts priority
 *                               payload progress result error created_at run_at started_at
 *                               finished_at sid (its current stream entry) worker
 *   crmd:jobs:q:<type>:<prio>   a stream per type and priority (0 high, 1 normal), group "crmd"
 *   crmd:jobs:delayed           zset: jobs waiting for run_at or for a retry's backoff
 *   crmd:jobs:done              zset by finish time: succeeded, failed and cancelled jobs
 *   crmd:jobs:dead              zset by finish time: dead jobs (kept 10x longer)
 *   crmd:jobs:stats:<org>|all   hash "type|state" -> count, "type|dur_ms", "type|dur_n"
 *   crmd:jobs:idem:<org>:<key>  "id|request hash", 24 h: Idempotency-Key of POST /api/jobs
 *   crmd:jobs:sched:<name>      the last period a schedule fired for
 *
 * Finished jobs are trimmed by age and count each time one finishes, so retained jobs are
 * bounded (the complaint most often made about Bull and BullMQ is the opposite).
 */
#include "jobs/jobs.h"
#include "jobs/queue.h"
#include "core/clock.h"
#include "core/common.h"
#include "core/config.h"
#include "core/log.h"
#include "redis/redis.h"
#include "redis/sentinel.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Helpers every script starts with. mv moves a job between states in the counts; the batch
 * scripts use mvb and addb, which add up in D and write each count once (flush). */
#define LUA_PRELUDE                                                                                          \
    "local P = 'crmd:jobs:'\n"                                                                               \
    "local D = {}\n"                                                                                         \
    "local function addb(org, field, n)\n"                                                                   \
    "  local t = D[org]\n"                                                                                   \
    "  if not t then t = {} D[org] = t end\n"                                                                \
    "  t[field] = (t[field] or 0) + n\n"                                                                     \
    "end\n"                                                                                                  \
    "local function mvb(org, typ, from, to)\n"                                                               \
    "  if from ~= '' then addb(org, typ .. '|' .. from, -1) end\n"                                           \
    "  if to ~= '' then addb(org, typ .. '|' .. to, 1) end\n"                                                \
    "end\n"                                                                                                  \
    "local function flush()\n"                                                                               \
    "  local all = {}\n"                                                                                     \
    "  for org, t in pairs(D) do\n"                                                                          \
    "    for f, n in pairs(t) do\n"                                                                          \
    "      if n ~= 0 then redis.call('HINCRBY', P .. 'stats:' .. org, f, n) all[f] = (all[f] or 0) + n "     \
    "end\n"                                                                                                  \
    "    end\n"                                                                                              \
    "  end\n"                                                                                                \
    "  for f, n in pairs(all) do if n ~= 0 then redis.call('HINCRBY', P .. 'stats:all', f, n) end end\n"     \
    "  D = {}\n"                                                                                             \
    "end\n"                                                                                                  \
    "local function mv(org, typ, from, to)\n"                                                                \
    "  for _, h in ipairs({P .. 'stats:' .. org, P .. 'stats:all'}) do\n"                                    \
    "    if from ~= '' then redis.call('HINCRBY', h, typ .. '|' .. from, -1) end\n"                          \
    "    if to ~= '' then redis.call('HINCRBY', h, typ .. '|' .. to, 1) end\n"                               \
    "  end\n"                                                                                                \
    "end\n"                                                                                                  \
    "local function push(id, typ, prio)\n"                                                                   \
    "  local sid = redis.call('XADD', P .. 'q:' .. typ .. ':' .. prio, '*', 'id', id)\n"                     \
    "  redis.call('HSET', P .. 'job:' .. id, 'sid', sid)\n"                                                  \
    "end\n"                                                                                                  \
    "local function enqueue(typ, org, payload, prio, run_at, now, maxa)\n"                                   \
    "  if redis.call('EXISTS', P .. 'seq') == 0 then\n"                                                      \
    "    redis.call('SET', P .. 'seq', string.format('%d', tonumber(now) * 1000))\n"                         \
    "  end\n"                                                                                                \
    "  local id = string.format('%d', redis.call('INCR', P .. 'seq'))\n"                                     \
    "  redis.call('HSET', P .. 'job:' .. id, 'id', id, 'type', typ, 'org', org, 'status', 'queued',\n"       \
    "    'attempts', 0, 'max_attempts', maxa, 'priority', prio, 'payload', payload, 'progress', '0',\n"      \
    "    'created_at', now, 'run_at', run_at)\n"                                                             \
    "  mv(org, typ, '', 'queued')\n"                                                                         \
    "  if tonumber(run_at) > tonumber(now) then redis.call('ZADD', P .. 'delayed', run_at, id)\n"            \
    "  else push(id, typ, prio) end\n"                                                                       \
    "  return id\n"                                                                                          \
    "end\n"                                                                                                  \
    "local function forget(z, id)\n"                                                                         \
    "  local j = redis.call('HMGET', P .. 'job:' .. id, 'org', 'type', 'status')\n"                          \
    "  if j[1] then mv(j[1], j[2], j[3], '') end\n"                                                          \
    "  redis.call('DEL', P .. 'job:' .. id)\n"                                                               \
    "  redis.call('ZREM', z, id)\n"                                                                          \
    "end\n"                                                                                                  \
    "local function trim(z, now, keep_ms, keep_n)\n"                                                         \
    "  for _, id in ipairs(redis.call('ZRANGEBYSCORE', z, '-inf', now - keep_ms, 'LIMIT', 0, 100)) do\n"     \
    "    forget(z, id) end\n"                                                                                \
    "  local over = redis.call('ZCARD', z) - keep_n\n"                                                       \
    "  if over > 0 then\n"                                                                                   \
    "    for _, id in ipairs(redis.call('ZRANGE', z, 0, math.min(over, 1000) - 1)) do forget(z, id) end\n"   \
    "  end\n"                                                                                                \
    "end\n"

/* ARGV: type org payload prio run_at now max_attempts idem_key idem_hash idem_ttl_s
 * -> {id, created (1/0), same request (1/0)} */
static const char enqueue_lua[] =
    LUA_PRELUDE "local idem = ARGV[8]\n"
                "if idem ~= '' then\n"
                "  local k = P .. 'idem:' .. ARGV[2] .. ':' .. idem\n"
                "  local v = redis.call('GET', k)\n"
                "  if v then\n"
                "    local id, h = string.match(v, '^(%d+)|(.*)$')\n"
                "    return {id, 0, (h == ARGV[9]) and 1 or 0}\n"
                "  end\n"
                "  local id = enqueue(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])\n"
                "  redis.call('SET', k, id .. '|' .. ARGV[9], 'EX', ARGV[10])\n"
                "  return {id, 1, 1}\n"
                "end\n"
                "return {enqueue(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]), 1, 1}\n";

/* Marks a delivered entry's job running and appends {stream, sid, id, type, org, payload,
 * attempts, max_attempts} to out; a cancelled job or a stale entry (the job was queued again
 * under a new entry) is acked and skipped. */
#define LUA_START                                                                                            \
    "local function start(stream, sid, id, consumer, now, out)\n"                                            \
    "  local k = P .. 'job:' .. id\n"                                                                        \
    "  local j = redis.call('HMGET', k, 'status', 'sid', 'type', 'org', 'payload', 'max_attempts')\n"        \
    "  local st = j[1]\n"                                                                                    \
    "  if not st or j[2] ~= sid or (st ~= 'queued' and st ~= 'retrying' and st ~= 'running') then\n"         \
    "    redis.call('XACK', stream, 'crmd', sid)\n"                                                          \
    "    redis.call('XDEL', stream, sid)\n"                                                                  \
    "    return\n"                                                                                           \
    "  end\n"                                                                                                \
    "  local n = redis.call('HINCRBY', k, 'attempts', 1)\n"                                                  \
    "  redis.call('HSET', k, 'status', 'running', 'started_at', now, 'worker', consumer)\n"                  \
    "  if st ~= 'running' then mvb(j[4], j[3], st, 'running') end\n"                                         \
    "  for _, v in ipairs({stream, sid, id, j[3], j[4], j[5], tostring(n), j[6]}) do out[#out + 1] = v "     \
    "end\n"                                                                                                  \
    "end\n"

/* Reads and starts new entries in one round trip. ARGV: consumer now max, then stream count
 * pairs in priority order (at most max jobs in all) -> the started jobs, 8 values each (see
 * start) */
static const char fetch_lua[] = LUA_PRELUDE LUA_START
    "local out, left = {}, tonumber(ARGV[3])\n"
    "for i = 4, #ARGV, 2 do\n"
    "  if left <= 0 then break end\n"
    "  local r = redis.call('XREADGROUP', 'GROUP', 'crmd', ARGV[1], 'COUNT', math.min(left, tonumber(ARGV[i "
    "+ 1])),\n"
    "                       'STREAMS', ARGV[i], '>')\n"
    "  if r then\n"
    "    for _, e in ipairs(r[1][2]) do\n"
    "      left = left - 1\n"
    "      local f = e[2]\n"
    "      if f and f[1] == 'id' then start(ARGV[i], e[1], f[2], ARGV[1], ARGV[2], out)\n"
    "      else redis.call('XACK', ARGV[i], 'crmd', e[1]) redis.call('XDEL', ARGV[i], e[1]) end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "flush()\n"
    "return out\n";

/* Starts entries delivered otherwise (a blocking read, XAUTOCLAIM). ARGV: consumer now, then
 * stream sid id triples -> as fetch */
static const char start_lua[] = LUA_PRELUDE LUA_START
    "local out = {}\n"
    "for i = 3, #ARGV, 3 do start(ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[1], ARGV[2], out) end\n"
    "flush()\n"
    "return out\n";

/* Records outcomes. ARGV: now keep_ms keep_n, then 7 values per job: id sid stream outcome
 * result error backoff_ms. outcome: succeeded | failed | retry | dead | handback (queued again
 * without counting the attempt: a drain, or a job held but not started). -> per job 1 applied,
 * 0 the job was no longer ours (its lease went to another worker, or it was cancelled) */
static const char finish_lua[] = LUA_PRELUDE
    "local now, keep_ms, keep_n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local res, acks, trim_done, trim_dead = {}, {}, false, false\n"
    "for i = 4, #ARGV, 7 do\n"
    "  local id, sid, stream, out = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]\n"
    "  local k = P .. 'job:' .. id\n"
    "  acks[stream] = acks[stream] or {}\n"
    "  table.insert(acks[stream], sid)\n"
    "  local j = redis.call('HMGET', k, 'status', 'sid', 'type', 'org', 'started_at', 'priority', 'error')\n"
    "  if j[1] ~= 'running' or j[2] ~= sid then\n"
    "    res[#res + 1] = 0\n"
    "  else\n"
    "    res[#res + 1] = 1\n"
    "    local typ, org, err = j[3], j[4], ARGV[i + 5]\n"
    "    if out == 'retry' then\n"
    "      local at = now + tonumber(ARGV[i + 6])\n"
    "      redis.call('HSET', k, 'status', 'retrying', 'run_at', at, 'error', err)\n"
    "      redis.call('ZADD', P .. 'delayed', at, id)\n"
    "      mvb(org, typ, 'running', 'retrying')\n"
    "    elseif out == 'handback' then\n"
    "      redis.call('HINCRBY', k, 'attempts', -1)\n"
    "      redis.call('HSET', k, 'status', 'queued')\n"
    "      mvb(org, typ, 'running', 'queued')\n"
    "      push(id, typ, j[6])\n"
    "    else\n"
    "      if out == 'succeeded' then\n"
    "        redis.call('HSET', k, 'status', out, 'finished_at', now, 'progress', '1', 'result', ARGV[i + "
    "4])\n"
    "        if j[7] then redis.call('HDEL', k, 'error') end\n"
    "      else\n"
    "        redis.call('HSET', k, 'status', out, 'finished_at', now, 'result', ARGV[i + 4], 'error', err)\n"
    "      end\n"
    "      mvb(org, typ, 'running', out)\n"
    "      addb(org, typ .. '|dur_ms', now - tonumber(j[5] or now))\n"
    "      addb(org, typ .. '|dur_n', 1)\n"
    "      if out == 'dead' then redis.call('ZADD', P .. 'dead', now, id) trim_dead = true\n"
    "      else redis.call('ZADD', P .. 'done', now, id) trim_done = true end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for stream, sids in pairs(acks) do redis.call('XACK', stream, 'crmd', unpack(sids)) end\n"
    "flush()\n"
    "if trim_done then trim(P .. 'done', now, keep_ms, keep_n) end\n"
    "if trim_dead then trim(P .. 'dead', now, keep_ms * 10, keep_n * 10) end\n"
    "return res\n";

/* ARGV: now limit -> {moved, next due ms or -1} */
static const char promote_lua[] =
    LUA_PRELUDE "local z = P .. 'delayed'\n"
                "local ids = redis.call('ZRANGEBYSCORE', z, '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))\n"
                "for _, id in ipairs(ids) do\n"
                "  redis.call('ZREM', z, id)\n"
                "  local j = redis.call('HMGET', P .. 'job:' .. id, 'type', 'priority', 'status')\n"
                "  if j[1] and (j[3] == 'queued' or j[3] == 'retrying') then push(id, j[1], j[2]) end\n"
                "end\n"
                "local nxt = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')\n"
                "return {#ids, tonumber(nxt[2] or -1)}\n";

/* ARGV: id org now -> {code, status}: 1 cancelled, 0 not cancellable, -1 no such job in org */
static const char cancel_lua[] =
    LUA_PRELUDE "local k = P .. 'job:' .. ARGV[1]\n"
                "local j = redis.call('HMGET', k, 'org', 'status', 'type', 'priority', 'sid')\n"
                "if not j[1] or j[1] ~= ARGV[2] then return {-1, ''} end\n"
                "if j[2] ~= 'queued' and j[2] ~= 'retrying' then return {0, j[2]} end\n"
                "redis.call('ZREM', P .. 'delayed', ARGV[1])\n"
                "if j[5] then redis.call('XDEL', P .. 'q:' .. j[3] .. ':' .. j[4], j[5]) end\n"
                "redis.call('HSET', k, 'status', 'cancelled', 'finished_at', ARGV[3])\n"
                "redis.call('HDEL', k, 'sid')\n"
                "mv(j[1], j[3], j[2], 'cancelled')\n"
                "redis.call('ZADD', P .. 'done', ARGV[3], ARGV[1])\n"
                "return {1, 'cancelled'}\n";

/* ARGV: id org now -> {code, status}: 1 queued again, 0 not dead or failed, -1 no such job */
static const char retry_lua[] =
    LUA_PRELUDE "local k = P .. 'job:' .. ARGV[1]\n"
                "local j = redis.call('HMGET', k, 'org', 'status', 'type', 'priority')\n"
                "if not j[1] or j[1] ~= ARGV[2] then return {-1, ''} end\n"
                "if j[2] ~= 'dead' and j[2] ~= 'failed' then return {0, j[2]} end\n"
                "redis.call('ZREM', P .. 'dead', ARGV[1])\n"
                "redis.call('ZREM', P .. 'done', ARGV[1])\n"
                "redis.call('HSET', k, 'status', 'queued', 'attempts', 0, 'run_at', ARGV[3])\n"
                "redis.call('HDEL', k, 'error', 'result', 'finished_at', 'started_at')\n"
                "mv(j[1], j[3], j[2], 'queued')\n"
                "push(ARGV[1], j[3], j[4])\n"
                "return {1, 'queued'}\n";

/* ARGV: name slot type org payload prio now max_attempts -> the job id, or false when this
 * period has fired already (on any instance) */
static const char schedule_lua[] =
    LUA_PRELUDE "local k = P .. 'sched:' .. ARGV[1]\n"
                "local last = redis.call('GET', k)\n"
                "if last and tonumber(last) >= tonumber(ARGV[2]) then return false end\n"
                "redis.call('SET', k, ARGV[2])\n"
                "return enqueue(ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7], ARGV[7], ARGV[8])\n";

/* ARGV: consumer, then stream sid pairs: renews the lease of each entry this consumer still
 * owns -> how many it renewed */
static const char renew_lua[] =
    "local n = 0\n"
    "for i = 2, #ARGV, 2 do\n"
    "  local p = redis.call('XPENDING', ARGV[i], 'crmd', ARGV[i + 1], ARGV[i + 1], 1)\n"
    "  if p[1] and p[1][2] == ARGV[1] then\n"
    "    redis.call('XCLAIM', ARGV[i], 'crmd', ARGV[1], 0, ARGV[i + 1], 'JUSTID')\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "return n\n";

static redis_script_t scripts[JOBS_SCRIPT_COUNT];
static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

static void scripts_init(void)
{
    static const char *const src[JOBS_SCRIPT_COUNT] = {
        [JOBS_SCRIPT_ENQUEUE] = enqueue_lua, [JOBS_SCRIPT_FETCH] = fetch_lua,
        [JOBS_SCRIPT_START] = start_lua,     [JOBS_SCRIPT_FINISH] = finish_lua,
        [JOBS_SCRIPT_PROMOTE] = promote_lua, [JOBS_SCRIPT_CANCEL] = cancel_lua,
        [JOBS_SCRIPT_RETRY] = retry_lua,     [JOBS_SCRIPT_SCHEDULE] = schedule_lua,
        [JOBS_SCRIPT_RENEW] = renew_lua,
    };
    for (int i = 0; i < JOBS_SCRIPT_COUNT; i++)
        redis_script_init(&scripts[i], src[i]);
}

const redis_script_t *jobs_script(enum jobs_script which)
{
    pthread_once(&scripts_once, scripts_init);
    return &scripts[which];
}

uint64_t jobs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t jobs_backoff_ms(int failed_attempts, uint64_t base_ms, uint64_t cap_ms, uint64_t rnd)
{
    if (failed_attempts < 1)
        failed_attempts = 1;
    uint64_t ceiling = base_ms;
    for (int i = 1; i < failed_attempts && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    return ceiling ? rnd % (ceiling + 1) : 0; /* full jitter: uniform over [0, ceiling] */
}

const redisReply *jobs_field(const redisReply *r, const char *name)
{
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return NULL;
    for (size_t i = 0; i + 1 < r->elements; i += 2)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, name) == 0)
            return r->element[i + 1];
    return NULL;
}

/* ---- blocking side ---- */

redisReply *jobs_eval_sync(redisContext *c, enum jobs_script which, int argc, const char **argv,
                           const size_t *argvlen)
{
    const redis_script_t *s = jobs_script(which);
    const char **av = xmalloc(sizeof(*av) * (size_t)(argc + 3));
    size_t *al = xmalloc(sizeof(*al) * (size_t)(argc + 3));
    av[0] = "EVALSHA";
    al[0] = 7;
    av[1] = s->sha;
    al[1] = 40;
    av[2] = "0";
    al[2] = 1;
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    redisReply *r = redisCommandArgv(c, argc + 3, av, al);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        av[0] = "EVAL";
        al[0] = 4;
        av[1] = s->src;
        al[1] = s->len;
        r = redisCommandArgv(c, argc + 3, av, al);
    }
    free(av);
    free(al);
    return r;
}

redisContext *jobs_redis_connect(uint32_t timeout_ms)
{
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};
    redis_url_t u;
    memset(&u, 0, sizeof(u));
    const char *url = g_config.redis_url;
    bool have_url = url && *url && redis_url_parse(url, &u, NULL);
    redisContext *c = NULL;
    if (redis_sentinel_enabled()) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (!redis_sentinel_master(&ss, &len))
            return NULL;
        char host[INET6_ADDRSTRLEN];
        uint16_t port;
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        }
        c = redisConnectWithTimeout(host, port, tv);
    } else if (have_url) {
        c = redisConnectWithTimeout(u.host, u.port, tv);
    } else {
        return NULL;
    }
    if (!c || c->err) {
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (have_url && u.password[0]) {
        r = u.user[0] ? redisCommand(c, "AUTH %s %s", u.user, u.password)
                      : redisCommand(c, "AUTH %s", u.password);
        if (!r || r->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(r);
    }
    if (have_url && u.db) {
        r = redisCommand(c, "SELECT %u", (unsigned)u.db);
        if (!r || r->type == REDIS_REPLY_ERROR)
            goto fail;
        freeReplyObject(r);
    }
    return c;
fail:
    if (r)
        freeReplyObject(r);
    redisFree(c);
    return NULL;
}

int jobs_enqueue_sync(redisContext *c, const char *type, int64_t org_id, const char *payload, int priority,
                      uint64_t run_at_ms, char id[JOBS_ID_MAX])
{
    char org[24], prio[4], run_at[24], now[24], maxa[16];
    uint64_t t = jobs_now_ms();
    snprintf(org, sizeof(org), "%lld", (long long)org_id);
    snprintf(prio, sizeof(prio), "%d", priority == JOB_PRIO_HIGH ? 0 : 1);
    snprintf(run_at, sizeof(run_at), "%llu", (unsigned long long)(run_at_ms ? run_at_ms : t));
    snprintf(now, sizeof(now), "%llu", (unsigned long long)t);
    snprintf(maxa, sizeof(maxa), "%d", JOBS_MAX_ATTEMPTS);
    const char *argv[10] = {type, org, payload && *payload ? payload : "{}", prio, run_at, now, maxa, "",
                            "",   "0"};
    redisReply *r = jobs_eval_sync(c, JOBS_SCRIPT_ENQUEUE, 10, argv, NULL);
    int ret = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(id, JOBS_ID_MAX, "%s", r->element[0]->str);
        ret = 0;
    }
    if (r)
        freeReplyObject(r);
    return ret;
}

/* ---- reactor side ---- */

typedef struct {
    jobs_enqueue_cb cb;
    void *arg;
} enq_t;

static void enqueue_reply(void *arg, redisReply *r, int status)
{
    enq_t *e = arg;
    char id[JOBS_ID_MAX] = "";
    bool created = false, same = false;
    if (status == REDIS_STATUS_OK && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING) {
        snprintf(id, sizeof(id), "%s", r->element[0]->str);
        created = r->element[1]->integer == 1;
        same = r->element[2]->integer == 1;
    } else if (status == REDIS_STATUS_OK) {
        status = REDIS_STATUS_ERROR;
    }
    if (status == REDIS_STATUS_ERROR)
        log_fields(LOG_ERROR, "job enqueue refused by Redis", "error", r && r->str ? r->str : "bad reply",
                   NULL);
    e->cb(e->arg, status, id, created, same);
    free(e);
}

void jobs_enqueue_async(const jobs_enqueue_t *e, jobs_enqueue_cb cb, void *arg)
{
    char org[24], prio[4], run_at[24], now[24], maxa[16];
    uint64_t t = jobs_now_ms();
    snprintf(org, sizeof(org), "%lld", (long long)e->org_id);
    snprintf(prio, sizeof(prio), "%d", e->priority == JOB_PRIO_HIGH ? 0 : 1);
    snprintf(run_at, sizeof(run_at), "%llu", (unsigned long long)(e->run_at_ms ? e->run_at_ms : t));
    snprintf(now, sizeof(now), "%llu", (unsigned long long)t);
    snprintf(maxa, sizeof(maxa), "%d", e->max_attempts > 0 ? e->max_attempts : JOBS_MAX_ATTEMPTS);
    const char *payload = e->payload && e->payload_len ? e->payload : "{}";
    size_t payload_len = e->payload && e->payload_len ? e->payload_len : 2;
    const char *argv[10] = {e->type,
                            org,
                            payload,
                            prio,
                            run_at,
                            now,
                            maxa,
                            e->idem ? e->idem : "",
                            e->idem_hash ? e->idem_hash : "",
                            "86400"};
    size_t lens[10];
    for (int i = 0; i < 10; i++)
        lens[i] = strlen(argv[i]);
    lens[2] = payload_len;
    enq_t *x = xmalloc(sizeof(*x));
    x->cb = cb;
    x->arg = arg;
    redis_eval(jobs_script(JOBS_SCRIPT_ENQUEUE), 0, 10, argv, lens, enqueue_reply, x);
}

typedef struct {
    jobs_reply_cb cb;
    void *arg;
} rep_t;

static void plain_reply(void *arg, redisReply *r, int status)
{
    rep_t *x = arg;
    if (status == REDIS_STATUS_ERROR)
        log_fields(LOG_ERROR, "job command refused by Redis", "error", r && r->str ? r->str : "", NULL);
    x->cb(x->arg, status, status == REDIS_STATUS_OK ? r : NULL);
    free(x);
}

static rep_t *rep(jobs_reply_cb cb, void *arg)
{
    rep_t *x = xmalloc(sizeof(*x));
    x->cb = cb;
    x->arg = arg;
    return x;
}

void jobs_get_async(const char *id, jobs_reply_cb cb, void *arg)
{
    char key[64];
    snprintf(key, sizeof(key), JOBS_PREFIX "job:%s", id);
    const char *argv[2] = {"HGETALL", key};
    redis_command_argv(2, argv, NULL, plain_reply, rep(cb, arg));
}

static void id_org_script(enum jobs_script which, const char *id, int64_t org_id, jobs_reply_cb cb, void *arg)
{
    char org[24], now[24];
    snprintf(org, sizeof(org), "%lld", (long long)org_id);
    snprintf(now, sizeof(now), "%llu", (unsigned long long)jobs_now_ms());
    const char *argv[3] = {id, org, now};
    redis_eval(jobs_script(which), 0, 3, argv, NULL, plain_reply, rep(cb, arg));
}

void jobs_cancel_async(const char *id, int64_t org_id, jobs_reply_cb cb, void *arg)
{
    id_org_script(JOBS_SCRIPT_CANCEL, id, org_id, cb, arg);
}

void jobs_retry_async(const char *id, int64_t org_id, jobs_reply_cb cb, void *arg)
{
    id_org_script(JOBS_SCRIPT_RETRY, id, org_id, cb, arg);
}

void jobs_stats_async(int64_t org_id, jobs_reply_cb cb, void *arg)
{
    char key[64];
    if (org_id)
        snprintf(key, sizeof(key), JOBS_PREFIX "stats:%lld", (long long)org_id);
    else
        snprintf(key, sizeof(key), JOBS_PREFIX "stats:all");
    const char *argv[2] = {"HGETALL", key};
    redis_command_argv(2, argv, NULL, plain_reply, rep(cb, arg));
}
