-- GET /api/users/:id: each request picks a random line "token user_id" (a random tenant and
-- user; every line has its own token). Usage: wrk ... -s get_user.lua URL -- LINES_FILE
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
common.install()

local lines

function init(args)
  common.seed()
  lines = common.load_lines(args[1])
end

function request()
  local l = lines[math.random(#lines)]
  return wrk.format("GET", "/api/users/" .. l[2], {["Authorization"] = "Bearer " .. l[1]})
end
