-- bench/jobs.lua: POST /api/jobs {"type":"noop"} for wrk 4.x, optionally pipelined.
--
--   wrk -t1 -cC -dDs -s bench/jobs.lua http://127.0.0.1:PORT -- KEY [DEPTH]
--
-- Each connection sends DEPTH (default 1) requests per write; DEPTH > 1 is crmd's bulk
-- enqueue (many jobs per round trip), the counterpart of BullMQ's addBulk.
local batch

function init(args)
   local key = args[1]
   local depth = tonumber(args[2]) or 1
   wrk.method = "POST"
   wrk.body = '{"type":"noop"}'
   wrk.headers["Content-Type"] = "application/json"
   wrk.headers["Authorization"] = "Bearer " .. key
   local reqs = {}
   for i = 1, depth do
      reqs[i] = wrk.format(nil, "/api/jobs")
   end
   batch = table.concat(reqs)
end

function request()
   return batch
end
