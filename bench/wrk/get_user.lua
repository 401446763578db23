-- GET /api/users/:id: each request picks a random line "token user_id" (a random tenant and
-- user; every line has its own token). Usage: wrk ... -s get_user.lua URL -- LINES_FILE
-- With BENCH_ANSWERS=path in the environment, every request carries its user id as X-Request-Id
-- (which the server echoes) and every response is written to path.<thread> as "request_id
-- status body_id body_tenant_id body_email", for bench/load.py to hold against the database
-- (verify_answers). Without it no response callback is installed (wrk then parses less).
-- With BENCH_EACH_ONCE=<wrk's thread count> each line is taken once first, in a shuffled order
-- (so every tenant gets its share of the load, as in the measured runs), and at random after
-- that: a warm-up that puts every session into the server's caches (each thread takes its own
-- share of the lines).
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
common.install()

local lines
local answers_path = os.getenv("BENCH_ANSWERS")
local answers
local each_once_threads = tonumber(os.getenv("BENCH_EACH_ONCE") or "")
local order, next_index

function init(args)
  common.seed()
  lines = common.load_lines(args[1])
  if each_once_threads then
    -- common.install numbers the threads from 1 as wrk sets them up.
    local share = math.ceil(#lines / each_once_threads)
    local first = ((id or 1) - 1) * share + 1
    order = {}
    for i = first, math.min(#lines, first + share - 1) do order[#order + 1] = i end
    for i = #order, 2, -1 do
      local j = math.random(i)
      order[i], order[j] = order[j], order[i]
    end
    next_index = 1
  end
  if answers_path then answers = assert(io.open(answers_path .. "." .. tostring(id or 0), "w")) end
end

function request()
  local l
  if order and next_index <= #order then
    l = lines[order[next_index]]
    next_index = next_index + 1
  else
    l = lines[math.random(#lines)]
  end
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
