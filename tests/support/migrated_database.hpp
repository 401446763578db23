// Test databases with the embedded migrations applied: the starting point of the repository,
// identity and tenancy pg tests (which link tenantd_db).
#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/asio/this_coro.hpp>

#include <memory>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "db/embedded_migrations.hpp"
#include "db/migrator.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::test {

// Connects to `conninfo` and applies `files` (the embedded master or tenant migrations).
inline boost::asio::awaitable<std::unique_ptr<db::connection>> connect_migrated(
    std::string conninfo, const std::vector<db::embedded_file>& files) {
  db::connection_options options;
  options.conninfo = std::move(conninfo);
  auto conn = co_await db::connection::connect(co_await boost::asio::this_coro::executor, options);
  const auto migrations = db::parse_migrations(files);
  (void)co_await db::apply_migrations(*conn, migrations, db::migrate_options{});
  co_return conn;
}

// A connection to `db` with the master migrations applied.
inline boost::asio::awaitable<std::unique_ptr<db::connection>> migrated_master(const test_database& db) {
  co_return co_await connect_migrated(db.conninfo(), db::embedded_master_migrations());
}

// Applies the master migrations to `db`, from outside a coroutine (a fixture's SetUp).
inline void migrate_master(const test_database& db) {
  run_coro([&](auto) -> boost::asio::awaitable<void> { (void)co_await migrated_master(db); });
}

}  // namespace tenantd::test
