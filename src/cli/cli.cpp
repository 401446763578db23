// Parses argv with CLI11 and runs a subcommand. Configuration errors end the process with
// a message naming the variable and exit code 2.
#include "cli/cli.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

#include "app/application.hpp"
#include "app/config.hpp"
#include "app/logging.hpp"
#include "cli/migrate.hpp"

namespace tenantd::cli {

int run(int argc, char** argv) {
  CLI::App app{"tenantd: multi-tenant REST API server (one PostgreSQL database per tenant)"};
  app.set_version_flag("--version", std::string("tenantd ") + TENANTD_VERSION);
  auto* serve = app.add_subcommand("serve", "Run the HTTP server (the default)");
  auto* migrate = app.add_subcommand("migrate", "Apply pending master and tenant migrations to every tenant");
  migrate_options migrate_opts;
  migrate->add_option("--tenant", migrate_opts.tenants, "Only this tenant (repeatable)");
  migrate->add_option("--jobs", migrate_opts.jobs, "Tenants migrated in parallel (default: cores)");
  app.require_subcommand(0, 1);
  CLI11_PARSE(app, argc, argv);

  app::config cfg;
  try {
    cfg = app::load_config(app::read_environment());
  } catch (const app::config_error& e) {
    std::cerr << "tenantd: configuration error: " << e.what() << "\n";
    return 2;
  }
  app::setup_logging(cfg.log_format, cfg.log_level);
  if (migrate->parsed()) return run_migrate(cfg, migrate_opts);
  (void)serve;
  return app::serve(cfg);
}

}  // namespace tenantd::cli
