// tenantd migrate: parses the options, runs tenancy::fleet_migrator on one thread and
// prints what it does (a redrawn bar on a terminal, a line per tenant otherwise) and a report.
#include "cli/migrate.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "app/master_database.hpp"
#include "app/tenant_settings.hpp"
#include "tenancy/fleet_migrator.hpp"

namespace tenantd::cli {
namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

using tenancy::tenant_outcome;
using tenancy::tenant_result;

// Prints the migration as it goes: progress on a terminal (one redrawn bar) or plain lines.
class printer : public tenancy::fleet_observer {
 public:
  explicit printer(bool tty) : tty_(tty) {}

  void master_migrated(const db::migrate_report& report) override {
    std::cout << "master: version " << report.version_after << " (" << report.applied.size() << " applied)\n";
  }
  void template_ready(const std::string& server, const std::string& name, int version) override {
    std::cout << "template " << name << " on server " << server << ": version " << version << "\n";
  }
  void template_failed(const std::string& server, const std::string& reason) override {
    std::cout << "template on server " << server << ": FAILED: " << reason << " (its tenants are not migrated)\n";
  }
  void started(std::size_t pending, std::size_t up_to_date, int latest, unsigned jobs) override {
    total_ = pending;
    std::cout << pending << " tenant(s) to migrate to version " << latest << ", " << up_to_date << " up to date, "
              << jobs << " at a time\n"
              << std::flush;
  }
  void tenant_finished(const tenant_outcome& o) override {
    ++done_;
    if (o.result == tenant_result::failed) ++failed_;
    if (!tty_) {
      std::cout << "tenant " << o.tenant << ": " << (o.result == tenant_result::failed ? "FAILED: " : "migrated, ")
                << o.detail << "\n"
                << std::flush;
      return;
    }
    constexpr std::size_t width = 40;
    const std::size_t filled = total_ == 0 ? width : done_ * width / total_;
    std::cout << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << done_ << "/" << total_
              << " tenants" << (failed_ != 0 ? ", " + std::to_string(failed_) + " failed" : "") << std::flush;
  }
  void canary_failed(std::size_t not_attempted) override {
    end();
    std::cout << "canary failed: the other " << not_attempted << " tenant(s) are not migrated\n";
  }
  // Ends the bar's line (once).
  void end() {
    if (tty_ && done_ != 0 && !ended_) std::cout << "\n";
    ended_ = true;
  }

 private:
  bool tty_;
  std::size_t total_{0};
  std::size_t done_{0};
  std::size_t failed_{0};
  bool ended_{false};
};

void print_dry_run(const tenancy::fleet_report& report) {
  std::cout << "dry run: nothing is changed\n"
            << "template: would be migrated to version " << report.latest << "\n";
  for (const auto& o : report.outcomes) {
    if (o.result != tenant_result::would_migrate) continue;
    std::string names;
    for (const auto& name : o.pending) names += (names.empty() ? "" : ", ") + name;
    std::cout << "tenant " << o.tenant << ": would migrate " << o.from_version << " -> " << report.latest << " ("
              << names << ")\n";
  }
}

tenancy::fleet_settings fleet_settings(const app::config& cfg) {
  tenancy::fleet_settings s;
  // Template DDL and migrations: no request budget; as MIGRATION_DATABASE_URL's role if set.
  s.master.conninfo = app::migration_conninfo(cfg, 10min);
  s.master.connect_timeout = 10s;
  s.master.query_timeout = 10min;
  s.master.label = "master";
  s.provisioning = app::provisioning(cfg);
  s.servers = app::server_defaults(cfg);
  if (cfg.migration) {  // a separate DDL role owns what it creates: the runtime roles get data access
    s.runtime_master_role = cfg.master.user;
    s.runtime_tenant_role = cfg.tenant.user;
  }
  return s;
}

}  // namespace

CLI::App* add_migrate_command(CLI::App& app, migrate_options& options) {
  auto* migrate =
      app.add_subcommand("migrate", "Apply pending master and tenant migrations to the template and every tenant");
  migrate->add_option("--tenant", options.tenants, "Only this tenant (repeatable)");
  migrate->add_option("--jobs", options.jobs, "Tenants migrated in parallel (default: cores)")
      ->check(CLI::Range(1U, 1000U));
  migrate->add_option("--canary", options.canary, "Migrate this many tenants first; stop if any of them fails");
  migrate->add_flag("--dry-run", options.dry_run, "List what would be migrated; change nothing");
  migrate->add_option("--migrations-dir", options.migrations_dir,
                      "Tenant migrations from this directory (default: TENANT_MIGRATIONS_DIR, else built-in)");
  return migrate;
}

int run_migrate(const app::config& cfg, const migrate_options& options) {
  tenancy::fleet_options fleet;
  fleet.tenants = options.tenants;
  fleet.jobs = options.jobs != 0 ? options.jobs : std::max(1U, std::thread::hardware_concurrency());
  fleet.canary = options.canary;
  fleet.dry_run = options.dry_run;
  std::vector<db::migration> migrations;
  try {
    migrations = app::tenant_migrations(cfg, options.migrations_dir);
  } catch (const std::exception& e) {
    std::cerr << "migrate: tenant migrations: " << e.what() << "\n";
    return 2;
  }
  tenancy::fleet_migrator migrator(fleet_settings(cfg), std::move(migrations));
  printer shown(::isatty(STDOUT_FILENO) == 1);
  net::io_context io;
  auto result = net::co_spawn(io, migrator.run(fleet, shown), net::use_future);
  io.run();
  tenancy::fleet_report report;
  try {
    report = result.get();
  } catch (const std::exception& e) {
    shown.end();
    std::cerr << "migrate: " << e.what() << "\n";
    return 1;
  }
  shown.end();
  if (options.dry_run) print_dry_run(report);
  std::size_t migrated = 0, up_to_date = 0, failed = 0, skipped = 0, would = 0;
  for (const auto& o : report.outcomes) {
    switch (o.result) {
      case tenant_result::migrated: ++migrated; break;
      case tenant_result::up_to_date: ++up_to_date; break;
      case tenant_result::failed:
        ++failed;
        std::cout << "FAILED " << o.tenant << ": " << o.detail << "\n";
        break;
      case tenant_result::skipped:
        ++skipped;
        if (o.detail != "canary failed") std::cout << "SKIPPED " << o.tenant << ": " << o.detail << "\n";
        break;
      case tenant_result::would_migrate: ++would; break;
    }
  }
  if (options.dry_run) {
    std::cout << "tenants: " << would << " would be migrated, " << up_to_date << " already up to date\n";
    return failed == 0 ? 0 : 1;
  }
  std::cout << "tenants: " << migrated << " migrated, " << up_to_date << " already up to date, " << failed << " failed";
  if (skipped != 0) std::cout << ", " << skipped << " not attempted";
  std::cout << "\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace tenantd::cli
