-- Read/write mix: 80 % GET /api/users/:id, 10 % POST /api/users (a new directory entry with
-- a unique email), 10 % PUT /api/users/:id (new first name). Lines as in get_user.lua.
-- Usage: wrk ... -s mix.lua URL -- LINES_FILE RUN_TAG
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
common.install()

local lines, tag
local counter = 0

function init(args)
  common.seed()
  lines = common.load_lines(args[1])
  tag = (args[2] or "r") .. "t" .. tostring(id or 0) .. "x" .. tostring(math.random(1000000))
end

function request()
  local l = lines[math.random(#lines)]
  local auth = "Bearer " .. l[1]
  local dice = math.random(100)
  if dice <= 80 then
    return wrk.format("GET", "/api/users/" .. l[2], {["Authorization"] = auth})
  end
  counter = counter + 1
  local headers = {["Authorization"] = auth, ["Content-Type"] = "application/json"}
  if dice <= 90 then
    local body = string.format('{"email":"%s-%d@mix.bench.test","first_name":"Mix","last_name":"Bench"}', tag, counter)
    return wrk.format("POST", "/api/users", headers, body)
  end
  local body = string.format('{"first_name":"Renamed%d"}', counter)
  return wrk.format("PUT", "/api/users/" .. l[2], headers, body)
end
