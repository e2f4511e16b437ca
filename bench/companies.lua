-- bench/companies.lua: GET /api/companies/{id} with a random id per request, for wrk 4.x.
--
--   wrk -t1 -c64 -d10s --latency -H 'X-API-Key: KEY' -s bench/companies.lua \
--       http://127.0.0.1:PORT/api/companies/ -- IDS_FILE [DEPTH]
--
-- IDS_FILE holds one company id per line: bench/run writes the ids of the benchmark
-- organization (org 3), whose key is sent; an id of another organization answers 404, which
-- wrk counts in its "Non-2xx or 3xx responses" line and bench/run turns into an invalid run.
-- init() formats one complete request per id (method and -H headers from wrk's command line,
-- the path is the URL's path followed by the id); request() returns a random one, so every
-- request makes crmd read a row from PostgreSQL that is unlikely to be the previous one.

local reqs = {}
local depth = 1

function init(args)
   local file = args[1] or error("usage: -s companies.lua URL -- IDS_FILE")
   local prefix = wrk.path
   if prefix == nil or prefix == "" or prefix == "/" then
      prefix = "/api/companies/"
   end
   if prefix:sub(-1) ~= "/" then
      prefix = prefix .. "/"
   end
   local f = assert(io.open(file, "r"))
   for line in f:lines() do
      local id = line:match("^%s*(%d+)%s*$")
      if id then
         reqs[#reqs + 1] = wrk.format(nil, prefix .. id)
      end
   end
   f:close()
   if #reqs == 0 then
      error("no ids in " .. file)
   end
   depth = tonumber(args[2]) or 1
   math.randomseed(os.time())
end

function request()
   if depth <= 1 then
      return reqs[math.random(#reqs)]
   end
   local batch = {}
   for i = 1, depth do
      batch[i] = reqs[math.random(#reqs)]
   end
   return table.concat(batch)
end
