-- GET of one fixed path (default "/"): the HTTP ceiling. Usage: wrk ... -s plain.lua URL -- [PATH]
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local common = require("common")
common.install()

local req

function init(args)
  req = wrk.format("GET", args[1] or "/")
end

function request()
  return req
end
