// tenantd migrate: the command line of tenancy::fleet_migrator (master migrations, the tenant
// template, then pending tenant migrations on every active or suspended tenant in parallel,
// bounded, continuing past failures); prints a report, exit 1 if any tenant failed.
#pragma once
#include <string>
#include <vector>

#include "app/config.hpp"

namespace CLI {
class App;
}

namespace tenantd::cli {

struct migrate_options {
  std::vector<std::string> tenants;  // --tenant (repeatable); empty = all
  unsigned jobs{0};                  // 0 = cores
  unsigned canary{0};                // migrate this many first; stop if any fails
  bool dry_run{false};               // list what would run; touch nothing
  std::string migrations_dir;        // tenant migrations from here (else TENANT_MIGRATIONS_DIR / built-in)
};

// Adds the `migrate` subcommand and its options to `app`.
CLI::App* add_migrate_command(CLI::App& app, migrate_options& options);

int run_migrate(const app::config& cfg, const migrate_options& options);

}  // namespace tenantd::cli
