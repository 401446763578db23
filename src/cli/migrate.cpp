// Fleet migration: master, then the template, then every active or suspended tenant that
// master says is behind (tenants up to date cost no connection), bounded parallelism on
// one thread of async connections, an optional canary batch, a report at the end.
#include "cli/migrate.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <span>
#include <thread>

#include "app/application.hpp"
#include "app/tenant_settings.hpp"
#include "db/master_repository.hpp"
#include "db/migrator.hpp"
#include "tenancy/pool_registry.hpp"
#include "tenancy/provisioner.hpp"

namespace tenantd::cli {
namespace net = boost::asio;
using namespace std::chrono_literals;

// Master migrations run under this advisory lock, so several processes can start at once.
const db::migrate_options master_lock{.advisory_lock_key = 0x74656e616e7464, .target_version = std::nullopt};

namespace {

enum class result_kind { migrated, up_to_date, failed, skipped, would_migrate };

struct outcome {
  std::string tenant;
  result_kind result{result_kind::up_to_date};
  std::string detail;
};

// Progress on a terminal (one redrawn bar) or plain lines otherwise.
class progress {
 public:
  progress(std::size_t total, bool tty) : total_(total), tty_(tty) {}

  void finished(const outcome& o) {
    ++done_;
    if (o.result == result_kind::failed) ++failed_;
    if (!tty_) {
      std::cout << "tenant " << o.tenant << ": " << (o.result == result_kind::failed ? "FAILED: " : "migrated, ")
                << o.detail << "\n"
                << std::flush;
      return;
    }
    constexpr std::size_t width = 40;
    const std::size_t filled = total_ == 0 ? width : done_ * width / total_;
    std::cout << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << done_ << "/" << total_
              << " tenants" << (failed_ != 0 ? ", " + std::to_string(failed_) + " failed" : "") << std::flush;
  }
  void end() {
    if (tty_ && done_ != 0) std::cout << "\n";
  }

 private:
  std::size_t total_;
  bool tty_;
  std::size_t done_{0};
  std::size_t failed_{0};
};

struct fleet {
  const app::config& cfg;
  const std::vector<db::migration>& migrations;
  std::shared_ptr<db::pool> master;
  tenancy::tenant_connection_settings tenant_settings;
  unsigned jobs;
  progress& shown;
};

// Migrates one tenant and records its version and result in master. Never throws.
net::awaitable<outcome> migrate_one(fleet& f, const tenant_record& t) {
  outcome o{t.id, result_kind::migrated, {}};
  int version = t.schema_version;
  std::optional<std::string> failure;
  try {
    db::connection_options options;
    options.conninfo = tenancy::tenant_conninfo(f.tenant_settings, t.database_name, 10min);
    options.connect_timeout = 10s;
    options.query_timeout = 10min;
    options.label = "tenant=" + t.id;
    auto conn = co_await db::connection::connect(co_await net::this_coro::executor, options);
    try {
      auto report = co_await db::apply_migrations(*conn, f.migrations);
      version = report.version_after;
      // A separate DDL role owns what it created: the runtime role gets data access.
      if (f.cfg.migration) co_await db::grant_data_access(*conn, f.cfg.tenant.user);
      o.detail = "version " + std::to_string(report.version_before) + " -> " + std::to_string(version);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (failure && !conn->broken()) version = co_await db::current_version(*conn);  // what did get applied
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (failure) {
    while (!failure->empty() && failure->back() == '\n') failure->pop_back();
    o.result = result_kind::failed;
    o.detail = *failure + " (at version " + std::to_string(version) + ")";
  }
  try {
    auto conn = co_await f.master->acquire();
    co_await db::master::set_tenant_schema_version(*conn, t.id, version, failure);
  } catch (const std::exception& e) {
    o.result = result_kind::failed;
    o.detail += (o.detail.empty() ? "" : "; ") + std::string("recording the result in master failed: ") + e.what();
  }
  f.shown.finished(o);
  co_return o;
}

// Runs `batch` with at most f.jobs tenants at a time; outcomes in batch order.
net::awaitable<std::vector<outcome>> migrate_batch(fleet& f, std::span<const tenant_record> batch) {
  std::vector<outcome> outcomes(batch.size());
  std::size_t next = 0;
  std::size_t running = 0;
  auto worker = [&]() -> net::awaitable<void> {
    while (next < batch.size()) {
      const std::size_t i = next++;
      outcomes[i] = co_await migrate_one(f, batch[i]);
    }
  };
  auto executor = co_await net::this_coro::executor;
  const auto workers = std::min<std::size_t>(f.jobs, batch.size());
  for (std::size_t j = 0; j < workers; ++j) {
    ++running;
    net::co_spawn(executor, worker(), [&running](const std::exception_ptr&) { --running; });
  }
  while (running > 0) {
    net::steady_timer timer(executor, 5ms);
    co_await timer.async_wait(net::use_awaitable);
  }
  co_return outcomes;
}

net::awaitable<std::vector<outcome>> migrate_all(const app::config& cfg, const migrate_options& options,
                                                 const std::vector<db::migration>& migrations, unsigned jobs) {
  auto executor = co_await net::this_coro::executor;
  db::connection_options master_options;
  // Template DDL and migrations: no request budget; as MIGRATION_DATABASE_URL's role if set.
  master_options.conninfo = app::migration_conninfo(cfg, 10min);
  master_options.connect_timeout = 10s;
  master_options.query_timeout = 10min;
  master_options.label = "master";
  std::vector<tenant_record> tenants;
  {
    auto master = co_await db::connection::connect(executor, master_options);
    if (!options.dry_run) {
      const auto master_migrations = db::parse_migrations(db::embedded_master_migrations());
      auto master_report = co_await db::apply_migrations(*master, master_migrations, master_lock);
      if (cfg.migration) co_await db::grant_data_access(*master, cfg.master.user);
      std::cout << "master: version " << master_report.version_after << " (" << master_report.applied.size()
                << " applied)\n";
    }
    tenants = co_await db::master::list_tenants(*master, std::nullopt);
  }
  const int latest = migrations.empty() ? 0 : migrations.back().version;

  std::vector<outcome> outcomes;
  for (const auto& wanted : options.tenants) {
    const auto it =
        std::find_if(tenants.begin(), tenants.end(), [&](const tenant_record& t) { return t.id == wanted; });
    if (it == tenants.end() || !is_live(it->status))
      outcomes.push_back({wanted, result_kind::failed, "not an active or suspended tenant"});
  }
  std::erase_if(tenants, [&](const tenant_record& t) {
    if (!is_live(t.status)) return true;
    return !options.tenants.empty() &&
           std::find(options.tenants.begin(), options.tenants.end(), t.id) == options.tenants.end();
  });
  std::vector<tenant_record> pending;
  for (const auto& t : tenants) {
    if (t.schema_version >= latest)
      outcomes.push_back({t.id, result_kind::up_to_date, "version " + std::to_string(t.schema_version)});
    else
      pending.push_back(t);
  }

  if (options.dry_run) {
    std::cout << "dry run: nothing is changed\n"
              << "template: would be migrated to version " << latest << "\n";
    for (const auto& t : pending) {
      std::string names;
      for (const auto& m : migrations)
        if (m.version > t.schema_version)
          names += (names.empty() ? "" : ", ") + ("V" + std::to_string(m.version) + "__" + m.name);
      std::cout << "tenant " << t.id << ": would migrate " << t.schema_version << " -> " << latest << " (" << names
                << ")\n";
      outcomes.push_back({t.id, result_kind::would_migrate, {}});
    }
    co_return outcomes;
  }

  db::pool_options pool_options;
  pool_options.connection = master_options;
  pool_options.max_size = std::max<std::size_t>(2, jobs / 2 + 1);
  pool_options.acquire_timeout = 10min;
  auto master = db::pool::create(executor, pool_options);
  {
    tenancy::provisioner provisioner(master, app::provisioning(cfg), migrations);
    const int template_version = co_await provisioner.prepare_template();
    std::cout << "template " << provisioner.template_name() << ": version " << template_version << "\n";
  }
  std::cout << pending.size() << " tenant(s) to migrate to version " << latest << ", "
            << tenants.size() - pending.size() << " up to date, " << jobs << " at a time\n"
            << std::flush;

  progress shown(pending.size(), ::isatty(STDOUT_FILENO) == 1);
  fleet f{cfg, migrations, master, app::provisioning(cfg).ddl_connection(), jobs, shown};
  std::span<const tenant_record> rest(pending);
  if (options.canary > 0 && !rest.empty()) {
    const auto canaries = rest.first(std::min<std::size_t>(options.canary, rest.size()));
    rest = rest.subspan(canaries.size());
    auto done = co_await migrate_batch(f, canaries);
    const bool failed =
        std::any_of(done.begin(), done.end(), [](const outcome& o) { return o.result == result_kind::failed; });
    outcomes.insert(outcomes.end(), done.begin(), done.end());
    if (failed) {
      shown.end();
      std::cout << "canary failed: the other " << rest.size() << " tenant(s) are not migrated\n";
      for (const auto& t : rest) outcomes.push_back({t.id, result_kind::skipped, "canary failed"});
      co_return outcomes;
    }
  }
  auto done = co_await migrate_batch(f, rest);
  outcomes.insert(outcomes.end(), done.begin(), done.end());
  shown.end();
  co_return outcomes;
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
  const unsigned jobs = options.jobs != 0 ? options.jobs : std::max(1U, std::thread::hardware_concurrency());
  std::vector<db::migration> migrations;
  try {
    migrations = app::tenant_migrations(cfg, options.migrations_dir);
  } catch (const std::exception& e) {
    std::cerr << "migrate: tenant migrations: " << e.what() << "\n";
    return 2;
  }
  net::io_context io;
  auto result = net::co_spawn(io, migrate_all(cfg, options, migrations, jobs), net::use_future);
  io.run();
  std::vector<outcome> outcomes;
  try {
    outcomes = result.get();
  } catch (const std::exception& e) {
    std::cerr << "migrate: " << e.what() << "\n";
    return 1;
  }
  std::size_t migrated = 0, up_to_date = 0, failed = 0, skipped = 0, would = 0;
  for (const auto& o : outcomes) {
    switch (o.result) {
      case result_kind::migrated: ++migrated; break;
      case result_kind::up_to_date: ++up_to_date; break;
      case result_kind::failed:
        ++failed;
        std::cout << "FAILED " << o.tenant << ": " << o.detail << "\n";
        break;
      case result_kind::skipped: ++skipped; break;
      case result_kind::would_migrate: ++would; break;
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
