-- Shared by the bench/wrk scripts: loads "token user_id" lines, counts statuses when
-- BENCH_STATUS is set, and prints machine-readable totals in done().
local M = {}

function M.load_lines(path)
  local lines = {}
  for line in io.lines(path) do
    local a, b = line:match("^(%S+)%s+(%S+)")
    if a then lines[#lines + 1] = {a, b} end
  end
  assert(#lines > 0, "no lines in " .. path)
  return lines
end

local threads = {}

function M.install()
  -- setup() runs in the main state once per thread; done() can read each thread's globals.
  setup = function(thread)
    thread:set("id", #threads + 1)
    threads[#threads + 1] = thread
  end
  if os.getenv("BENCH_STATUS") then
    statuses = {}
    response = function(status, headers, body)
      statuses[status] = (statuses[status] or 0) + 1
    end
  end
  done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("BENCH requests=%d duration_us=%d status_errors=%d connect=%d read=%d write=%d timeout=%d\n",
                           summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout))
    io.write(string.format("BENCH latency_us p50=%d p90=%d p99=%d p999=%d max=%d\n",
                           latency:percentile(50), latency:percentile(90), latency:percentile(99),
                           latency:percentile(99.9), latency.max))
    for _, t in ipairs(threads) do
      local s = t:get("statuses")
      if s then
        for code, n in pairs(s) do io.write(string.format("BENCH status %s=%d\n", tostring(code), n)) end
      end
    end
  end
end

function M.seed()
  math.randomseed(os.time() * 1000 + (id or 0) * 7919 + math.floor(os.clock() * 1e6))
end

return M
