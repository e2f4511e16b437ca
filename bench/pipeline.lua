-- bench/pipeline.lua: HTTP/1.1 pipelining for wrk 4.x.
--
--   wrk -t1 -c16 -d5s -s bench/pipeline.lua http://127.0.0.1:PORT/api/health -- [DEPTH] [PATH]
--
-- init() builds DEPTH (default 16) copies of the request into one string with wrk.format;
-- method, headers (-H) and body come from wrk's command line, the path from the URL unless
-- PATH is given. request() returns that string, so every write on a connection carries DEPTH
-- requests and the next batch is sent once all DEPTH responses are in. wrk counts responses,
-- so "N requests" and Requests/sec count each response, not each batch. Latency figures of a
-- pipelined run are not meaningful (wrk times the batch), bench/run ignores them.
--
-- Benchmarks that need varying requests (random ids) use their own script; this one sends
-- identical requests.

local batch

function init(args)
   local depth = tonumber(args[1]) or 16
   local path = args[2]
   local reqs = {}
   for i = 1, depth do
      reqs[i] = wrk.format(nil, path)
   end
   batch = table.concat(reqs)
end

function request()
   return batch
end
