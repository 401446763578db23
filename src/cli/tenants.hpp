// tenantd tenants list|show|create|suspend|resume|delete|backup|restore|reconcile|check:
// lifecycle operations from the command line, against the master database of the
// configuration. Exit codes: 0 success, 1 failure (check: not clean), 2 usage/configuration.
#pragma once
#include <string>

#include "app/config.hpp"

namespace CLI {
class App;
}

namespace tenantd::cli {

struct tenants_command {
  std::string action;  // the subcommand that was parsed
  std::string id;
  std::string name;
  std::string status;  // list --status
  std::string reason;  // suspend --reason
  std::string out;     // backup --out
  std::string file;    // restore FILE
  std::string as;      // restore --as
  std::string server;  // create --server, restore --server: the database server (default: placement picks); move --to
  bool keep_source{false};  // move --keep-source
};

// Adds the `tenants` subcommand with its own subcommands to `app`; parsing fills `command`.
CLI::App* add_tenants_command(CLI::App& app, tenants_command& command);

int run_tenants(const app::config& cfg, const tenants_command& command);

}  // namespace tenantd::cli
