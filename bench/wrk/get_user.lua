-- GET /api/users/:id: each request picks a random line "token user_id" (a random tenant and
-- user; every line has its own token). Usage: wrk ... -s get_user.lua URL -- LINES_FILE
-- With BENCH_ANSWERS=path in the environment, every request carries its user id as X-Request-Id
-- (which the server echoes) and every response is written to path.<thread> as "request_id
-- status body_id body_tenant_id body_email", for bench/load.py to hold against the database
-- (verify_answers). Without it no response callback is installed (wrk then parses less).
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
common.install()

local lines
local answers_path = os.getenv("BENCH_ANSWERS")
local answers

function init(args)
  common.seed()
  lines = common.load_lines(args[1])
  if answers_path then answers = assert(io.open(answers_path .. "." .. tostring(id or 0), "w")) end
end

function request()
  local l = lines[math.random(#lines)]
  local headers = {["Authorization"] = "Bearer " .. l[1]}
  if answers then headers["X-Request-Id"] = l[2] end
  return wrk.format("GET", "/api/users/" .. l[2], headers)
end

if answers_path then
  local count_status = response
  response = function(status, headers, body)
    if count_status then count_status(status, headers, body) end
    local rid = headers["X-Request-Id"] or headers["x-request-id"] or "-"
    local field = function(name) return body:match('"' .. name .. '":"([^"]*)"') or "-" end
    answers:write(string.format("%s %d %s %s %s\n", rid, status, field("id"), field("tenant_id"), field("email")))
    answers:flush()
  end
end
