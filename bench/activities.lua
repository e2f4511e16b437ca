-- bench/activities.lua: POST /api/activities, one new activity per request, for wrk 4.x.
--
--   wrk -t1 -c64 -d10s --latency -H 'X-API-Key: KEY' -H 'Content-Type: application/json' \
--       -s bench/activities.lua http://127.0.0.1:PORT/api/activities -- COMPANY_IDS_FILE
--
-- The row shape of bench/activities.pgbench (the pgbench side of the comparison): a random
-- company of the key's organization (COMPANY_IDS_FILE, one id per line), a random type, a
-- subject starting "bench:" (bench/run deletes those rows afterwards), a body, occurred_at now;
-- owner_id is left to crmd (the key's user). init() formats 1,000 such requests; request()
-- returns a random one (the server sees a new insert each time: nothing is idempotency-keyed).

local reqs = {}
local types = { "call", "email", "meeting", "note", "demo" }

function init(args)
   local file = args[1] or error("usage: -s activities.lua URL -- COMPANY_IDS_FILE")
   local ids = {}
   local f = assert(io.open(file, "r"))
   for line in f:lines() do
      local id = line:match("^%s*(%d+)%s*$")
      if id then
         ids[#ids + 1] = id
      end
   end
   f:close()
   if #ids == 0 then
      error("no ids in " .. file)
   end
   math.randomseed(os.time())
   local now = os.date("!%Y-%m-%dT%H:%M:%SZ")
   for i = 1, 1000 do
      local company = ids[math.random(#ids)]
      local body = string.format(
         '{"type":"%s","subject":"bench: crmd activity %d","body":"Inserted by bench/run (wrk, POST /api/activities)",'
            .. '"company_id":%s,"occurred_at":"%s"}',
         types[math.random(#types)], i, company, now)
      reqs[i] = wrk.format("POST", nil, nil, body)
   end
end

function request()
   return reqs[math.random(#reqs)]
end
