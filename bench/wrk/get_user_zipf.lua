-- GET /api/users/:id with the tenant drawn from a Zipf distribution: the k-th tenant of the
-- lines file is chosen with probability proportional to 1 / k^s, as traffic over a real fleet
-- is (a few busy tenants, a long tail). The lines file holds PER_TENANT consecutive lines per
-- tenant ("token user_id", bench/load_common.py write_token_lines); a request takes a random
-- line of the chosen tenant. wrk runs LuaJIT (Lua 5.1): no // operator.
-- Usage: wrk ... -s get_user_zipf.lua URL -- LINES_FILE PER_TENANT S
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
common.install()

local lines, per_tenant, cdf

function init(args)
  common.seed()
  lines = common.load_lines(args[1])
  per_tenant = tonumber(args[2])
  local s = tonumber(args[3])
  local tenants = math.floor(#lines / per_tenant)
  assert(tenants >= 1 and s > 0, "need LINES_FILE PER_TENANT S")
  cdf = {}
  local total = 0
  for k = 1, tenants do
    total = total + 1 / k ^ s
    cdf[k] = total
  end
  for k = 1, tenants do cdf[k] = cdf[k] / total end
end

-- The smallest k with cdf[k] >= u (binary search).
local function pick(u)
  local lo, hi = 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

function request()
  local k = pick(math.random())
  local l = lines[(k - 1) * per_tenant + math.random(per_tenant)]
  return wrk.format("GET", "/api/users/" .. l[2], {["Authorization"] = "Bearer " .. l[1]})
end
