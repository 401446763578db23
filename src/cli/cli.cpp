// Parses argv with CLI11 and runs a subcommand. Configuration errors end the process with
// a message naming the variable and exit code 2.
#include "cli/cli.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

#include "app/application.hpp"
#include "app/config.hpp"
#include "app/logging.hpp"
#include "cli/doctor.hpp"
#include "cli/migrate.hpp"
#include "cli/servers.hpp"
#include "cli/tenants.hpp"

namespace tenantd::cli {

int run(int argc, char** argv) {
  CLI::App app{"tenantd: multi-tenant REST API server (one PostgreSQL database per tenant)"};
  app.set_version_flag("--version", std::string("tenantd ") + TENANTD_VERSION);
  auto* serve = app.add_subcommand("serve", "Run the HTTP server (the default)");
  migrate_options migrate_opts;
  auto* migrate = add_migrate_command(app, migrate_opts);
  tenants_command tenants_cmd;
  auto* tenants = add_tenants_command(app, tenants_cmd);
  servers_command servers_cmd;
  auto* servers = add_servers_command(app, servers_cmd);
  auto* doctor = app.add_subcommand("doctor", "Check configuration, database access, migrations and tenant databases");
  app.require_subcommand(0, 1);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help/--version: 0; usage errors: 2
  }
  // doctor reports a bad configuration as a check of its own (exit 1), so it runs first.
  if (doctor->parsed()) {
    app::setup_logging("text", "off");
    return run_doctor(app::read_environment(), std::cout);
  }

  app::config cfg;
  try {
    cfg = app::load_config(app::read_environment());
  } catch (const app::config_error& e) {
    std::cerr << "tenantd: configuration error: " << e.what() << "\n";
    return 2;
  }
  app::setup_logging(cfg.log_format, cfg.log_level);
  if (migrate->parsed()) return run_migrate(cfg, migrate_opts);
  if (tenants->parsed()) return run_tenants(cfg, tenants_cmd);
  if (servers->parsed()) return run_servers(cfg, servers_cmd);
  (void)serve;
  return app::serve(cfg);
}

}  // namespace tenantd::cli
