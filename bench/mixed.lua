-- bench/mixed.lua: a dashboard-user workload for wrk 4.x, keys of several organizations.
--
--   wrk -t1 -c64 -d10s --latency -s bench/mixed.lua http://127.0.0.1:PORT/ -- DATA_FILE [SKIP]
--
-- DATA_FILE (written by bench/run, mode 0600: it holds the keys) has, per organization:
--   org ORG KEY
--   companies ORG id id ...      deals ORG id ...      contacts ORG id ...
--   users ORG id ...             words ORG word word ...   (search terms)
-- SKIP is a comma list of request kinds to leave out (an endpoint missing; "-" for none).
-- Every request picks an organization at random (its key goes in X-API-Key), then a kind by
-- weight (the percentages of bench/run's MIXED_KINDS; keep the two in step):
--   70 list/detail reads: companies, deals (with relationships), contacts lists; company,
--      deal, contact by id
--   15 dashboard (10 whole organization, 5 ?ownerId=)
--   10 search (?q= on companies, deals, contacts)
--    5 writes: POST /api/activities (subject "bench:", deleted by bench/run afterwards)

local kinds = {
   { "company_list", 10 }, { "deal_list", 15 }, { "contact_list", 5 },
   { "company", 20 }, { "deal", 10 }, { "contact", 10 },
   { "dashboard", 10 }, { "dashboard_owner", 5 },
   { "search_companies", 5 }, { "search_deals", 3 }, { "search_contacts", 2 },
   { "write", 5 },
}
local orgs, byid = {}, {}
local total = 0
local types = { "call", "email", "meeting", "note", "demo" }
local now

local function pick(t)
   return t[math.random(#t)]
end

function init(args)
   local file = args[1] or error("usage: -s mixed.lua URL -- DATA_FILE [SKIP]")
   local skip = {}
   for k in string.gmatch(args[2] or "", "[%w_]+") do
      skip[k] = true
   end
   local f = assert(io.open(file, "r"))
   for line in f:lines() do
      local words = {}
      for w in line:gmatch("%S+") do
         words[#words + 1] = w
      end
      if words[1] == "org" then
         local o = { id = words[2], headers = { ["X-API-Key"] = words[3] },
                     post_headers = { ["X-API-Key"] = words[3], ["Content-Type"] = "application/json" } }
         orgs[#orgs + 1] = o
         byid[words[2]] = o
      elseif words[1] then
         local o = byid[words[2]] or error("data line before its org line: " .. line)
         local list = {}
         for i = 3, #words do
            list[#list + 1] = words[i]
         end
         o[words[1]] = list
      end
   end
   f:close()
   if #orgs == 0 then
      error("no organizations in " .. file)
   end
   local kept = {}
   for _, k in ipairs(kinds) do
      if not skip[k[1]] then
         kept[#kept + 1] = k
         total = total + k[2]
      end
   end
   kinds = kept
   now = os.date("!%Y-%m-%dT%H:%M:%SZ")
   math.randomseed(os.time())
end

local function get(o, path)
   return wrk.format("GET", path, o.headers)
end

function request()
   local o = orgs[math.random(#orgs)]
   local r = math.random() * total
   local kind = kinds[#kinds][1]
   for _, k in ipairs(kinds) do
      r = r - k[2]
      if r < 0 then
         kind = k[1]
         break
      end
   end
   if kind == "company_list" then
      return get(o, "/api/companies?limit=50")
   elseif kind == "deal_list" then
      return get(o, "/api/deals?limit=50&includeRelationships=true")
   elseif kind == "contact_list" then
      return get(o, "/api/contacts?limit=50")
   elseif kind == "company" then
      return get(o, "/api/companies/" .. pick(o.companies))
   elseif kind == "deal" then
      return get(o, "/api/deals/" .. pick(o.deals))
   elseif kind == "contact" then
      return get(o, "/api/contacts/" .. pick(o.contacts))
   elseif kind == "dashboard" then
      return get(o, "/api/dashboard")
   elseif kind == "dashboard_owner" then
      return get(o, "/api/dashboard?ownerId=" .. pick(o.users))
   elseif kind == "search_companies" then
      return get(o, "/api/companies?q=" .. pick(o.words) .. "&limit=20")
   elseif kind == "search_deals" then
      return get(o, "/api/deals?q=" .. pick(o.words) .. "&limit=20")
   elseif kind == "search_contacts" then
      return get(o, "/api/contacts?q=" .. pick(o.words) .. "&limit=20")
   else
      local body = string.format(
         '{"type":"%s","subject":"bench: mixed activity","body":"Inserted by bench/run (bench/mixed.lua)",'
            .. '"company_id":%s,"occurred_at":"%s"}', pick(types), pick(o.companies), now)
      return wrk.format("POST", "/api/activities", o.post_headers, body)
   end
end
