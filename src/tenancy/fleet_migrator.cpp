// Fleet migration: master, every server's template, then the tenants behind, `jobs` at a time
// on each server.
#include "tenancy/fleet_migrator.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <span>

#include "db/master_migrations.hpp"
#include "db/master_repository.hpp"
#include "db/move_repository.hpp"
#include "db/pool.hpp"
#include "domain/server.hpp"
#include "tenancy/pool_registry.hpp"

namespace tenantd::tenancy {
namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

bool migratable(const tenant_record& t) { return is_live(t.status); }

struct run_state {
  const fleet_settings& settings;
  const std::vector<db::migration>& migrations;
  std::shared_ptr<db::pool> master;
  unsigned jobs;
  fleet_observer& observer;
  std::map<std::string, server_connection> servers;  // by name, templates ready
};

std::string server_name(const tenant_record& t) { return t.db_server.value_or(std::string(main_server_name)); }

// Migrates one tenant and records its version and result in master. Never throws.
net::awaitable<tenant_outcome> migrate_one(run_state& s, const tenant_record& t) {
  tenant_outcome o{t.id, tenant_result::migrated, {}, t.schema_version, {}};
  int version = t.schema_version;
  std::optional<std::string> failure;
  try {
    const auto server = s.servers.find(server_name(t));
    if (server == s.servers.end()) throw std::runtime_error("database server " + server_name(t) + " is unknown");
    db::connection_options options;
    options.conninfo = db::service_conninfo(server->second.ddl, t.database_name, 10min);
    options.connect_timeout = 10s;
    options.query_timeout = 10min;
    options.label = "tenant=" + t.id + " server=" + server->first;
    auto conn = co_await db::connection::connect(co_await net::this_coro::executor, options);
    try {
      auto report = co_await db::apply_migrations(*conn, s.migrations);
      version = report.version_after;
      // A separate DDL role owns what it created: the runtime role gets data access.
      if (!s.settings.runtime_tenant_role.empty())
        co_await db::grant_data_access(
            *conn, server->first == main_server_name ? s.settings.runtime_tenant_role : server->second.runtime.user);
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
    o.result = tenant_result::failed;
    o.detail = *failure + " (at version " + std::to_string(version) + ")";
  }
  try {
    auto conn = co_await s.master->acquire();
    co_await db::master::set_tenant_schema_version(*conn, t.id, version, failure);
  } catch (const std::exception& e) {
    o.result = tenant_result::failed;
    o.detail += (o.detail.empty() ? "" : "; ") + std::string("recording the result in master failed: ") + e.what();
  }
  s.observer.tenant_finished(o);
  co_return o;
}

// Runs `batch` with at most s.jobs tenants at a time; outcomes in batch order.
net::awaitable<std::vector<tenant_outcome>> migrate_batch(run_state& s, std::span<const tenant_record> batch) {
  std::vector<tenant_outcome> outcomes(batch.size());
  std::size_t next = 0;
  std::size_t running = 0;
  auto worker = [&]() -> net::awaitable<void> {
    while (next < batch.size()) {
      const std::size_t i = next++;
      outcomes[i] = co_await migrate_one(s, batch[i]);
    }
  };
  auto executor = co_await net::this_coro::executor;
  const auto workers = std::min<std::size_t>(std::max(1U, s.jobs), batch.size());
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

// Each server's tenants of `batch` side by side, `s.jobs` at a time on each; outcomes grouped
// by server, in batch order within one.
net::awaitable<std::vector<tenant_outcome>> migrate_per_server(run_state& s, std::span<const tenant_record> batch) {
  std::map<std::string, std::vector<tenant_record>> by_server;
  for (const auto& t : batch) by_server[server_name(t)].push_back(t);
  std::vector<std::vector<tenant_outcome>> results(by_server.size());
  std::size_t running = 0;
  auto executor = co_await net::this_coro::executor;
  std::size_t i = 0;
  for (auto& [server, tenants] : by_server) {
    ++running;
    auto& out = results[i++];
    const std::span<const tenant_record> group(tenants);
    net::co_spawn(
        executor, [&s, &out, group]() -> net::awaitable<void> { out = co_await migrate_batch(s, group); },
        [&running](const std::exception_ptr&) { --running; });
  }
  while (running > 0) {
    net::steady_timer timer(executor, 5ms);
    co_await timer.async_wait(net::use_awaitable);
  }
  std::vector<tenant_outcome> outcomes;
  for (auto& r : results) outcomes.insert(outcomes.end(), r.begin(), r.end());
  co_return outcomes;
}

bool any_failed(const std::vector<tenant_outcome>& outcomes) {
  return std::any_of(outcomes.begin(), outcomes.end(),
                     [](const tenant_outcome& o) { return o.result == tenant_result::failed; });
}

}  // namespace

fleet_migrator::fleet_migrator(fleet_settings settings, std::vector<db::migration> migrations)
    : settings_(std::move(settings)), migrations_(std::move(migrations)) {}

net::awaitable<fleet_report> fleet_migrator::run(const fleet_options& options, fleet_observer& observer) {
  auto executor = co_await net::this_coro::executor;
  fleet_report report;
  report.latest = migrations_.empty() ? 0 : migrations_.back().version;
  std::vector<tenant_record> tenants;
  std::map<std::string, move_record> moving;  // tenants in the middle of a move
  {
    auto master = co_await db::connection::connect(executor, settings_.master);
    if (!options.dry_run) {
      const auto master_report = co_await db::migrate_master(*master);
      if (!settings_.runtime_master_role.empty())
        co_await db::grant_data_access(*master, settings_.runtime_master_role);
      observer.master_migrated(master_report);
    }
    tenants = co_await db::master::list_tenants(*master, std::nullopt);
    const auto moves = co_await db::moves::list(*master, 100000);
    for (const auto& m : moves)
      if (!finished(m.state)) moving[m.tenant_id] = m;
  }

  auto& outcomes = report.outcomes;
  for (const auto& wanted : options.tenants) {
    const auto it =
        std::find_if(tenants.begin(), tenants.end(), [&](const tenant_record& t) { return t.id == wanted; });
    if (it == tenants.end() || !migratable(*it))
      outcomes.push_back({wanted, tenant_result::failed, "not an active or suspended tenant", 0, {}});
  }
  std::erase_if(tenants, [&](const tenant_record& t) {
    if (!migratable(t)) return true;
    return !options.tenants.empty() &&
           std::find(options.tenants.begin(), options.tenants.end(), t.id) == options.tenants.end();
  });
  std::vector<tenant_record> pending;
  for (const auto& t : tenants) {
    const auto move = moving.find(t.id);
    if (t.schema_version >= report.latest)
      outcomes.push_back(
          {t.id, tenant_result::up_to_date, "version " + std::to_string(t.schema_version), t.schema_version, {}});
    else if (move != moving.end())
      // Replication copies data, not schema: a migration now would differ between the two copies.
      outcomes.push_back({t.id,
                          tenant_result::skipped,
                          "being moved to " + move->second.to + " (move " + move->second.id +
                              "); run tenantd migrate again after the move",
                          t.schema_version,
                          {}});
    else
      pending.push_back(t);
  }

  if (options.dry_run) {
    for (const auto& t : pending) {
      tenant_outcome o{t.id, tenant_result::would_migrate, {}, t.schema_version, {}};
      for (const auto& m : migrations_)
        if (m.version > t.schema_version) o.pending.push_back("V" + std::to_string(m.version) + "__" + m.name);
      outcomes.push_back(std::move(o));
    }
    co_return report;
  }

  db::pool_options pool_options;
  pool_options.connection = settings_.master;
  pool_options.max_size = std::max<std::size_t>(2, options.jobs / 2 + 1);
  pool_options.acquire_timeout = 10min;
  auto master = db::pool::create(executor, pool_options);
  run_state s{settings_, migrations_, master, options.jobs, observer, {}};
  {
    // Every server's template: main's failure stops the run (as before servers); another's
    // fails that server's tenants only.
    provisioner keeper(master, settings_.provisioning, migrations_);
    server_directory directory(master, keeper.main_server(), settings_.servers);
    const auto all = co_await directory.all();
    for (const auto& server : all) {
      try {
        const int version = co_await keeper.prepare_template(server);
        observer.template_ready(server.name, keeper.template_name(), version);
        s.servers.emplace(server.name, server);
      } catch (const std::exception& e) {
        if (server.name == main_server_name) throw;
        observer.template_failed(server.name, e.what());
      }
    }
  }
  // Tenants of a server whose template failed are not attempted.
  std::erase_if(pending, [&](const tenant_record& t) {
    if (s.servers.contains(server_name(t))) return false;
    outcomes.push_back({t.id,
                        tenant_result::failed,
                        "database server " + server_name(t) + " is not reachable or its template failed",
                        t.schema_version,
                        {}});
    return true;
  });
  observer.started(pending.size(), tenants.size() - pending.size(), report.latest, options.jobs);

  std::span<const tenant_record> rest(pending);
  if (options.canary > 0 && !rest.empty()) {
    const auto canaries = rest.first(std::min<std::size_t>(options.canary, rest.size()));
    rest = rest.subspan(canaries.size());
    auto done = co_await migrate_batch(s, canaries);
    const bool failed = any_failed(done);
    outcomes.insert(outcomes.end(), done.begin(), done.end());
    if (failed) {
      observer.canary_failed(rest.size());
      for (const auto& t : rest)
        outcomes.push_back({t.id, tenant_result::skipped, "canary failed", t.schema_version, {}});
      master->shutdown();
      co_return report;
    }
  }
  auto done = co_await migrate_per_server(s, rest);
  outcomes.insert(outcomes.end(), done.begin(), done.end());
  master->shutdown();
  co_return report;
}

}  // namespace tenantd::tenancy
