// tenantd servers list|add|set|remove: the database servers tenants are placed on, from the
// command line, against the master database of the configuration (the same work as
// GET/POST/PUT/DELETE /admin/servers). Exit codes: 0 success, 1 refused or failed, 2 usage.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "app/config.hpp"

namespace CLI {
class App;
}

namespace tenantd::cli {

struct servers_command {
  std::string action;  // the subcommand that was parsed
  std::string name;
  std::string url;                         // add
  std::optional<std::int64_t> weight;      // add, set
  std::optional<std::string> max_tenants;  // add, set: a number, or "none" (set: no limit)
  std::optional<std::string> state;        // set
};

// Adds the `servers` subcommand with its own subcommands to `app`; parsing fills `command`.
CLI::App* add_servers_command(CLI::App& app, servers_command& command);

int run_servers(const app::config& cfg, const servers_command& command);

}  // namespace tenantd::cli
