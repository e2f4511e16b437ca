-- bench/graphql.lua: POST one GraphQL request body, optionally pipelined, for wrk 4.x.
--
--   wrk -t1 -c64 -d5s -s bench/graphql.lua http://127.0.0.1:PORT/graphql -- BODY_FILE [DEPTH]
--
-- BODY_FILE holds the JSON request ({"query": ..., "variables": ...}); the API key comes from
-- wrk's -H. With DEPTH, every write carries DEPTH copies of the request (HTTP/1.1 pipelining,
-- as bench/pipeline.lua): wrk counts each response.

local batch

function init(args)
   local f = assert(io.open(args[1], "rb"))
   local body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = "application/json"
   local depth = tonumber(args[2]) or 1
   local reqs = {}
   for i = 1, depth do
      reqs[i] = wrk.format()
   end
   batch = table.concat(reqs)
end

function request()
   return batch
end
