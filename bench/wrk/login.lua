-- Login storm: POST /auth/login for a random seeded account. Lines are "email password".
-- Usage: wrk ... -s login.lua URL -- LINES_FILE
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
  local body = string.format('{"email":"%s","password":"%s"}', l[1], l[2])
  return wrk.format("POST", "/auth/login", {["Content-Type"] = "application/json"}, body)
end
