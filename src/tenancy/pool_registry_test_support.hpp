// What the pool registry's pg tests share (pool_registry_pgtest.cpp,
// pool_registry_budget_pgtest.cpp): registry settings with a budget, a tenant record on a test
// database, and its backends as PostgreSQL sees them.
#pragma once
#include "tenancy/pool_registry.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <set>
#include <vector>

#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::tenancy::registry_testing {

namespace net = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using test::run_coro;

inline tenant_connection_settings budget_settings(std::size_t pool_size, std::size_t max_connections) {
  const auto& pg = test::pg_cluster();
  tenant_connection_settings s;
  s.host = pg.host;
  s.port = std::to_string(pg.port);
  s.user = pg.app_user;
  s.password = pg.app_password;
  s.pool_size = pool_size;
  s.max_connections = max_connections;
  s.acquire_timeout = 400ms;
  s.reclaim_idle_after = 0ms;  // any idle connection may be taken; the reclaim test sets its own
  s.reclaim_recent_after = 0ms;
  return s;
}

inline tenant_record tenant_on(const test::test_database& db) {
  tenant_record t;
  t.id = db.name();
  t.name = db.name();
  t.status = tenant_status::active;
  t.database_name = db.name();
  return t;
}

// Server-side view: backends connected to a database (as the superuser sees them).
inline std::set<int> backend_pids(const test::test_database& db) {
  std::set<int> pids;
  for (const auto& row : test::admin_query("SELECT pid FROM pg_stat_activity WHERE datname = '" + db.name() +
                                           "' AND application_name = 'tenantd'"))
    pids.insert(std::stoi(row.at(0)));
  return pids;
}

inline net::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  net::steady_timer timer(co_await net::this_coro::executor, duration);
  co_await timer.async_wait(net::use_awaitable);
}

// Closing a connection is asynchronous on the server side: poll until the count matches.
inline net::awaitable<std::size_t> backends_settle_at(const test::test_database& db, std::size_t expected) {
  const auto deadline = clock_type::now() + 5s;
  auto count = backend_pids(db).size();
  while (count != expected && clock_type::now() < deadline) {
    co_await sleep_for(10ms);
    count = backend_pids(db).size();
  }
  co_return count;
}

}  // namespace tenantd::tenancy::registry_testing
