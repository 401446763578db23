// Background coroutines of the serving process.
#include "app/background_tasks.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "app/components.hpp"
#include "db/login_attempts.hpp"
#include "db/master_migrations.hpp"
#include "db/master_repository.hpp"
#include "db/session_repository.hpp"
#include "db/usage_repository.hpp"
#include "tenancy/server_catalog.hpp"

namespace tenantd::app {
namespace net = boost::asio;
using namespace std::chrono_literals;

namespace {

// Applies master migrations (under an advisory lock) and loads the role table; retries
// until the master database is reachable. `master` connects as the role that runs DDL; when
// that is a separate role, `runtime_role` (the MASTER_DATABASE_URL user) gets data access.
net::awaitable<void> prepare_master(std::shared_ptr<db::pool> master, std::string runtime_role, role_table& roles,
                                    tenancy::provisioner& provisioner, tenancy::lifecycle& lifecycle,
                                    std::atomic<bool>& ready, std::atomic<bool>& stopping) {
  auto executor = co_await net::this_coro::executor;
  // Unreachable: retried at least every second, so the server is ready within about a second
  // of PostgreSQL coming back (ops expect full service within 5 s). A migration that fails
  // needs a person, so those retries back off further.
  auto delay = 250ms;
  auto longest = 1000ms;
  while (!stopping) {
    std::string failure;
    try {
      auto conn = co_await master->acquire();
      auto report = co_await db::migrate_master(*conn);
      if (!report.applied.empty())
        spdlog::info("master database migrated from version {} to {}", report.version_before, report.version_after);
      if (!runtime_role.empty()) co_await db::grant_data_access(*conn, runtime_role);
      co_await tenancy::record_main_server(*conn, provisioner.main_server());
      roles = co_await db::master::load_roles(*conn);
      conn = {};
      if (provisioner.settings().use_template) {
        const int version = co_await provisioner.prepare_template();
        spdlog::info("tenant template {} at schema version {}", provisioner.template_name(), version);
      }
      const auto reconciled = co_await lifecycle.reconcile();
      if (!reconciled.rolled_back.empty() || !reconciled.deleted.empty())
        spdlog::warn("reconciled {} half-provisioned and {} half-deleted tenants", reconciled.rolled_back.size(),
                     reconciled.deleted.size());
      ready = true;
      co_return;
    } catch (const db::migration_error& e) {
      failure = e.what();
      spdlog::critical("master migrations cannot be applied: {}", failure);
      longest = 5000ms;
    } catch (const std::exception& e) {
      failure = e.what();
      spdlog::warn("master database not ready ({}); retrying", failure);
    }
    net::steady_timer timer(executor, delay);
    co_await timer.async_wait(net::use_awaitable);
    delay = std::min(delay * 2, longest);
  }
}

// Every 50 ms: room for starved pools; every 5 s: idle connections past the idle timeout.
net::awaitable<void> sweep_pools(tenancy::pool_registry& pools, std::atomic<bool>& stopping) {
  auto executor = co_await net::this_coro::executor;
  net::steady_timer timer(executor);
  for (unsigned tick = 1; !stopping; ++tick) {
    timer.expires_after(50ms);
    co_await timer.async_wait(net::use_awaitable);
    pools.relieve_starved();
    if (tick % 100 == 0) pools.sweep();
  }
}

// glibc keeps memory freed by closed connections (Beast buffers, coroutine frames) in its
// arenas, so RSS stays at its peak. Every 5 s, when no request is in flight, the free pages
// go back to the kernel (malloc_trim also releases pages in the middle of the heap); at once
// when many connections have just closed.
net::awaitable<void> trim_memory(const http::server& server, std::atomic<bool>& stopping) {
  auto executor = co_await net::this_coro::executor;
  std::size_t peak = server.open_connections();
  int ticks = 0;
  while (!stopping) {
    net::steady_timer timer(executor, 1s);
    co_await timer.async_wait(net::use_awaitable);
    const auto open = server.open_connections();
    peak = std::max(peak, open);
    ++ticks;
    const bool mass_close = peak >= open + 1000;
    if (mass_close || (ticks >= 5 && server.requests_in_flight() == 0)) {
      malloc_trim(0);
      peak = open;
      ticks = 0;
    }
  }
}

// A tenant creation that PostgreSQL interrupted could not roll itself back (the database was
// gone), so its 'provisioning' row would block the id until the next start-up reconcile.
// Every 3 s, once the master is ready, this looks for 'provisioning' rows; one that was
// already there on the previous look is handed to the reconciler, which leaves a creation
// still in progress alone (its advisory lock is held) and rolls back the others. Deletions
// are left to the start-up reconcile and to DELETE's own retry: one in progress holds no lock.
net::awaitable<void> reconcile_interrupted(tenancy::lifecycle& lifecycle, const std::atomic<bool>& ready,
                                           const std::atomic<bool>& stopping) {
  auto executor = co_await net::this_coro::executor;
  const std::optional<tenant_status> provisioning = tenant_status::provisioning;
  std::vector<std::string> seen_before;
  while (!stopping) {
    net::steady_timer timer(executor, 3s);
    co_await timer.async_wait(net::use_awaitable);
    if (!ready || stopping) continue;
    try {
      const auto rows = co_await lifecycle.list(provisioning);
      std::vector<std::string> seen;
      seen.reserve(rows.size());
      for (const auto& t : rows) seen.push_back(t.id);
      const bool lingering = std::any_of(seen.begin(), seen.end(), [&](const std::string& id) {
        return std::find(seen_before.begin(), seen_before.end(), id) != seen_before.end();
      });
      seen_before = std::move(seen);
      if (!lingering) continue;
      const auto report = co_await lifecycle.reconcile(false);
      if (!report.rolled_back.empty())
        spdlog::warn("reconciled {} interrupted tenant creations", report.rolled_back.size());
    } catch (const std::exception& e) {  // the database is away again: try on the next round
      spdlog::debug("reconciler: {}", e.what());
    }
  }
}

// Ended and expired sessions (with their refresh tokens) and old login attempts are
// deleted every 10 minutes, in batches, once the master is ready. Any process may run it:
// the deletes are idempotent.
net::awaitable<void> purge_expired(std::shared_ptr<db::pool> master, const std::atomic<bool>& ready,
                                   const std::atomic<bool>& stopping) {
  constexpr std::int64_t batch = 1000;
  constexpr std::int64_t retention_seconds = std::int64_t{24} * 3600;  // an ended session stays a day for the record
  auto executor = co_await net::this_coro::executor;
  while (!stopping) {
    net::steady_timer timer(executor, 10min);
    co_await timer.async_wait(net::use_awaitable);
    if (!ready || stopping) continue;
    try {
      std::int64_t purged = 0;
      for (std::int64_t n = batch; n == batch && !stopping;) {
        auto conn = co_await master->acquire();
        n = co_await db::sessions::purge(*conn, retention_seconds, batch);
        purged += n;
      }
      for (std::int64_t n = batch; n >= batch && !stopping;) {
        auto conn = co_await master->acquire();
        n = co_await db::login_attempts::purge(*conn, batch);
      }
      if (purged > 0) spdlog::info("purged {} ended or expired sessions", purged);
    } catch (const std::exception& e) {  // the database is away: try on the next round
      spdlog::debug("session purge: {}", e.what());
    }
  }
}

// flush_usage, returning the tenants that had requests or statements in what it flushed (or
// tried to: they were active either way). Sampling is not activity: a tenant whose row holds
// only a size sample is not returned, so an idle tenant stops being sampled.
net::awaitable<std::vector<std::string>> flush_usage_rows(components& c) {
  std::vector<std::string> active;
  if (!c.usage) co_return active;
  auto rows = c.usage->take();
  for (const auto& r : rows)
    if ((r.counts.requests > 0 || r.counts.statements > 0) && (active.empty() || active.back() != r.tenant_id))
      active.push_back(r.tenant_id);  // rows are sorted by tenant
  if (rows.empty()) co_return active;
  try {
    auto conn = co_await c.master->acquire();
    co_await db::usage::add(*conn, rows);
  } catch (const std::exception& e) {  // kept, and added by a later flush: counts stay exact
    c.usage->restore(rows);
    spdlog::warn("usage: cannot flush {} rows to master ({}); kept for the next flush", rows.size(), e.what());
  }
  co_return active;
}

// The connections each active tenant's pool holds (open, idle or in use: what it takes from
// the budget), recorded as a sample for the current minute.
net::awaitable<void> sample_connections(components& c) {
  auto& usage = *c.usage;
  const auto active = usage.active_tenants();
  if (active.empty()) co_return;
  std::map<std::pair<std::string, std::string>, std::size_t> open_by_database;  // (server, database)
  for (auto& p : c.pools.busiest(c.pools.pool_count())) open_by_database[{p.server, p.database}] = p.stats.open;
  for (const auto& id : active) {
    const auto tenant = co_await c.tenants.find(id);
    if (!tenant) continue;
    const auto key = tenancy::pool_key_of(*tenant);
    const auto it = open_by_database.find({key.server, key.database});
    if (it != open_by_database.end()) usage.record_connections(id, static_cast<std::int64_t>(it->second));
  }
}

// pg_database_size of each tenant seen since the last round, on the tenant's own pool (its role
// may connect there; master's may not), not counted as the tenant's statements.
net::awaitable<void> sample_sizes(components& c, const std::set<std::string>& seen) {
  for (const auto& id : seen) {
    if (c.stopping) co_return;
    try {
      const auto tenant = co_await c.tenants.find(id);
      if (!tenant || tenant->status != tenant_status::active) continue;
      if (tenant->db_server && !c.db_servers.find(*tenant->db_server))
        (void)co_await c.db_servers.lookup(*tenant->db_server);
      auto pool = c.pools.pool_for(*tenant);
      const auto bytes = co_await db::usage::database_size(*pool);
      c.usage->record_database_size(id, bytes);
    } catch (const std::exception& e) {  // the database is away: the next round samples again
      spdlog::debug("usage: size of tenant {}: {}", id, e.what());
    }
  }
}

// Every USAGE_FLUSH_INTERVAL_S: sample connections and flush; every USAGE_SIZE_INTERVAL_S:
// sample the database sizes of the tenants active since the last round; hourly: delete rows
// past USAGE_RETENTION_DAYS.
net::awaitable<void> account_usage(components& c) {
  auto executor = co_await net::this_coro::executor;
  using clock = std::chrono::steady_clock;
  auto next_flush = clock::now() + c.cfg.usage_flush_interval;
  auto next_size = clock::now() + c.cfg.usage_size_interval;
  auto next_purge = clock::now();
  std::set<std::string> seen;  // tenants active since the last size round (at most the recorder's cap)
  while (!c.stopping) {
    net::steady_timer timer(executor, 1s);
    co_await timer.async_wait(net::use_awaitable);
    if (!c.master_ready || c.stopping) continue;
    const auto now = clock::now();
    if (now >= next_flush) {
      next_flush = now + c.cfg.usage_flush_interval;
      try {
        co_await sample_connections(c);
      } catch (const std::exception& e) {
        spdlog::debug("usage: connection sample: {}", e.what());
      }
      auto active = co_await flush_usage_rows(c);
      for (auto& id : active)
        if (seen.size() < c.usage->capacity()) seen.insert(std::move(id));
    }
    if (now >= next_size) {
      next_size = now + c.cfg.usage_size_interval;
      co_await sample_sizes(c, seen);
      seen.clear();
    }
    if (now >= next_purge) {
      next_purge = now + 1h;
      try {
        auto conn = co_await c.master->acquire();
        const auto purged = co_await db::usage::purge(*conn, c.cfg.usage_retention_days);
        if (purged > 0) spdlog::info("usage: deleted {} rows older than {} days", purged, c.cfg.usage_retention_days);
      } catch (const std::exception& e) {
        spdlog::debug("usage: retention: {}", e.what());
      }
    }
  }
}

// Tenant moves: takes over moves whose process died (their lease ran out) and drives them to
// their end; drops moved tenants' old databases once their grace period is over.
net::awaitable<void> tend_moves(components& c) {
  net::steady_timer timer(c.io);
  while (!c.stopping) {
    timer.expires_after(5s);
    co_await timer.async_wait(net::use_awaitable);
    if (!c.master_ready || c.stopping) continue;
    try {
      (void)co_await c.mover.resume_stale();
      (void)co_await c.mover.drop_due_sources();
    } catch (const std::exception& e) {
      spdlog::warn("moves: {}", e.what());
    }
  }
}

// Logs how a background task ended, if by an exception.
auto log_failure(const char* what) {
  return [what](const std::exception_ptr& e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("{} stopped: {}", what, ex.what());
    }
  };
}

}  // namespace

net::awaitable<void> flush_usage(components& c) { (void)co_await flush_usage_rows(c); }

void start_background_tasks(components& c) {
  // Migrations and DDL as the DDL role (MIGRATION_DATABASE_URL) when there is one; the
  // runtime role (MASTER_DATABASE_URL's user) then gets data access.
  std::string runtime_role = c.cfg.migration ? c.cfg.master.user : std::string();
  net::co_spawn(
      c.io,
      prepare_master(c.ddl, std::move(runtime_role), c.roles, c.provisioner, c.lifecycle, c.master_ready, c.stopping),
      log_failure("master preparation"));
  net::co_spawn(c.io, c.listener.run(), log_failure("invalidation listener"));
  net::co_spawn(c.io, sweep_pools(c.pools, c.stopping), log_failure("pool sweeper"));
  net::co_spawn(c.io, trim_memory(c.server, c.stopping), log_failure("memory trimmer"));
  net::co_spawn(c.io, reconcile_interrupted(c.lifecycle, c.master_ready, c.stopping), log_failure("reconciler"));
  net::co_spawn(c.io, purge_expired(c.master, c.master_ready, c.stopping), log_failure("session purge"));
  if (c.usage) net::co_spawn(c.io, account_usage(c), log_failure("usage accounting"));
  if (c.mover.available()) net::co_spawn(c.io, tend_moves(c), log_failure("moves"));
}

}  // namespace tenantd::app
