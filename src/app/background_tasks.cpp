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
#include <optional>
#include <string>
#include <vector>

#include "app/components.hpp"
#include "db/login_attempts.hpp"
#include "db/master_migrations.hpp"
#include "db/master_repository.hpp"
#include "db/session_repository.hpp"

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

net::awaitable<void> sweep_pools(tenancy::pool_registry& pools, std::atomic<bool>& stopping) {
  auto executor = co_await net::this_coro::executor;
  while (!stopping) {
    net::steady_timer timer(executor, 5s);
    co_await timer.async_wait(net::use_awaitable);
    pools.sweep();
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
}

}  // namespace tenantd::app
