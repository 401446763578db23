// Fleet migration: every active or suspended tenant, each in its own transactions.
#include "cli/migrate.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <iostream>
#include <mutex>
#include <thread>

#include "app/application.hpp"
#include "db/master_repository.hpp"
#include "db/migrator.hpp"
#include "tenancy/pool_registry.hpp"

namespace tenantd::cli {
namespace net = boost::asio;

// Master migrations run under this advisory lock, so several processes can start at once.
const db::migrate_options master_lock{.advisory_lock_key = 0x74656e616e7464, .target_version = std::nullopt};

namespace {

struct outcome {
  std::string tenant;
  std::string result;  // migrated | up_to_date | failed
  std::string detail;
};

net::awaitable<std::vector<outcome>> migrate_all(const app::config& cfg, const migrate_options& options,
                                                 unsigned jobs) {
  auto executor = co_await net::this_coro::executor;
  db::connection_options master_options{app::master_conninfo(cfg), std::chrono::seconds(10), std::chrono::minutes(10)};
  auto master = co_await db::connection::connect(executor, master_options);
  const auto master_migrations = db::parse_migrations(db::embedded_master_migrations());
  auto master_report = co_await db::apply_migrations(*master, master_migrations, master_lock);
  std::cout << "master: version " << master_report.version_after << " (" << master_report.applied.size()
            << " applied)\n";

  const auto migrations = db::parse_migrations(db::embedded_tenant_migrations());
  const int latest = migrations.empty() ? 0 : migrations.back().version;
  auto tenants = co_await db::master::list_tenants(*master, std::nullopt);
  std::erase_if(tenants, [&](const tenant_record& t) {
    if (t.status != "active" && t.status != "suspended") return true;
    return !options.tenants.empty() &&
           std::find(options.tenants.begin(), options.tenants.end(), t.id) == options.tenants.end();
  });

  std::vector<outcome> outcomes(tenants.size());
  std::atomic<std::size_t> next{0};
  tenancy::tenant_connection_settings settings{cfg.tenant.host, cfg.tenant.port, cfg.tenant.user, cfg.tenant.password};
  auto worker = [&]() -> net::awaitable<void> {
    auto ex = co_await net::this_coro::executor;
    std::unique_ptr<db::connection> own_master;
    for (std::size_t i = next++; i < tenants.size(); i = next++) {
      const auto& t = tenants[i];
      outcomes[i].tenant = t.id;
      if (t.schema_version >= latest) {
        outcomes[i].result = "up_to_date";
        continue;
      }
      std::string error;
      int version = t.schema_version;
      try {
        db::connection_options o{tenancy::tenant_conninfo(settings, t.database_name, std::chrono::minutes(10)),
                                 std::chrono::seconds(10), std::chrono::minutes(10)};
        auto conn = co_await db::connection::connect(ex, o);
        auto report = co_await db::apply_migrations(*conn, migrations);
        version = report.version_after;
        outcomes[i].result = "migrated";
        outcomes[i].detail = "version " + std::to_string(report.version_before) + " -> " + std::to_string(version);
      } catch (const std::exception& e) {
        error = e.what();
        outcomes[i].result = "failed";
        outcomes[i].detail = error;
      }
      if (!own_master) own_master = co_await db::connection::connect(ex, master_options);
      co_await db::master::set_tenant_schema_version(*own_master, t.id, version,
                                                     error.empty() ? std::nullopt : std::optional(error));
    }
  };
  std::vector<std::future<void>> running;
  for (unsigned j = 0; j < jobs; ++j) running.push_back(net::co_spawn(executor, worker(), net::use_future));
  // Wait without blocking the io_context: poll the futures from a timer loop.
  for (auto& f : running) {
    while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      net::steady_timer timer(executor, std::chrono::milliseconds(20));
      co_await timer.async_wait(net::use_awaitable);
    }
    f.get();
  }
  co_return outcomes;
}

}  // namespace

int run_migrate(const app::config& cfg, const migrate_options& options) {
  const unsigned jobs = options.jobs != 0 ? options.jobs : std::max(1U, std::thread::hardware_concurrency());
  net::io_context io;
  auto result = net::co_spawn(io, migrate_all(cfg, options, jobs), net::use_future);
  io.run();
  std::vector<outcome> outcomes;
  try {
    outcomes = result.get();
  } catch (const std::exception& e) {
    std::cerr << "migrate: " << e.what() << "\n";
    return 1;
  }
  std::size_t migrated = 0, up_to_date = 0, failed = 0;
  for (const auto& o : outcomes) {
    if (o.result == "migrated") ++migrated;
    if (o.result == "up_to_date") ++up_to_date;
    if (o.result == "failed") ++failed;
    if (o.result != "up_to_date") std::cout << o.tenant << ": " << o.result << " (" << o.detail << ")\n";
  }
  std::cout << "tenants: " << migrated << " migrated, " << up_to_date << " already up to date, " << failed
            << " failed\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace tenantd::cli
