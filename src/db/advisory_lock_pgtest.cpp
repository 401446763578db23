// db::advisory_lock against the private cluster: held while the object lives, released on
// every path (release(), an early return, an exception), so another session can take it, and
// the connection goes back to the pool without it.
#include "db/advisory_lock.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "db/pool.hpp"
#include "db/transaction.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

constexpr std::int64_t key = 0x7465737431;  // "test1"

std::shared_ptr<pool> single_connection_pool(net::any_io_executor ex, const test::test_database& db) {
  pool_options options;
  options.connection.conninfo = db.conninfo();
  options.max_size = 1;
  options.acquire_timeout = 5000ms;
  return pool::create(std::move(ex), options);
}

// Whether a new session on the same database (advisory locks are per database; one admin
// connection, closed right after) can take the lock now.
bool another_session_can_take_it(const test::test_database& db) {
  return test::admin_query("SELECT pg_try_advisory_lock(" + std::to_string(key) + ")", db.name()).at(0).at(0) == "t";
}

net::awaitable<bool> lock_and_return(connection& conn, const test::test_database& db) {
  auto lock = co_await advisory_lock::acquire(conn, key);
  EXPECT_FALSE(another_session_can_take_it(db));
  co_return false;
}

net::awaitable<void> lock_and_throw(connection& conn, const test::test_database& db) {
  auto lock = co_await advisory_lock::acquire(conn, key);
  EXPECT_FALSE(another_session_can_take_it(db));
  throw std::runtime_error("failed while locked");
}

TEST(advisory_lock, held_until_released) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db);
    auto conn = co_await p->acquire();
    auto lock = co_await advisory_lock::acquire(*conn, key);
    EXPECT_TRUE(lock.held());
    EXPECT_FALSE(another_session_can_take_it(db));
    co_await lock.release();
    EXPECT_FALSE(lock.held());
    EXPECT_TRUE(another_session_can_take_it(db));
  });
}

TEST(advisory_lock, try_acquire_is_refused_while_another_session_holds_it) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db);
    connection_options options;
    options.conninfo = db.conninfo();
    auto holder = co_await connection::connect(ex, options);
    auto held = co_await advisory_lock::acquire(*holder, key);
    auto conn = co_await p->acquire();
    auto refused = co_await advisory_lock::try_acquire(*conn, key);
    EXPECT_FALSE(refused.has_value());
    co_await held.release();
    auto taken = co_await advisory_lock::try_acquire(*conn, key);
    EXPECT_TRUE(taken.has_value());
    if (taken) {
      EXPECT_FALSE(another_session_can_take_it(db));
      co_await taken->release();
    }
  });
}

TEST(advisory_lock, an_early_return_releases_it_before_the_holders_next_statement) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    connection_options options;
    options.conninfo = db.conninfo();
    auto conn = co_await connection::connect(ex, options);
    EXPECT_FALSE(co_await lock_and_return(*conn, db));
    EXPECT_TRUE(conn->cleanup_pending());
    co_await conn->exec("SELECT 1");
    EXPECT_FALSE(conn->cleanup_pending());
    EXPECT_TRUE(another_session_can_take_it(db));
  });
}

TEST(advisory_lock, an_early_return_releases_it_before_the_pool_lends_the_connection_again) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db);
    int first_pid = 0;
    {
      auto conn = co_await p->acquire();
      first_pid = conn->backend_pid();
      EXPECT_FALSE(co_await lock_and_return(*conn, db));
    }
    auto again = co_await p->acquire();
    EXPECT_EQ(again->backend_pid(), first_pid);
    EXPECT_FALSE(again->cleanup_pending());
    EXPECT_TRUE(another_session_can_take_it(db));
  });
}

TEST(advisory_lock, an_exception_releases_it_before_the_pool_lends_the_connection_again) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db);
    bool thrown = false;
    int first_pid = 0;
    try {
      auto conn = co_await p->acquire();
      first_pid = conn->backend_pid();
      co_await lock_and_throw(*conn, db);
    } catch (const std::runtime_error&) {
      thrown = true;
    }
    EXPECT_TRUE(thrown);
    auto again = co_await p->acquire();
    EXPECT_EQ(again->backend_pid(), first_pid);
    EXPECT_TRUE(another_session_can_take_it(db));
  });
}

TEST(advisory_lock, a_lock_and_an_aborted_transaction_left_together_are_both_undone) {
  test::test_database db;
  test::admin_exec("CREATE TABLE items (id int PRIMARY KEY); GRANT ALL ON items TO PUBLIC", db.name());
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db);
    int first_pid = 0;
    bool failed = false;
    try {
      auto conn = co_await p->acquire();
      first_pid = conn->backend_pid();
      auto lock = co_await advisory_lock::acquire(*conn, key);
      auto tx = co_await transaction::begin(*conn);
      co_await conn->exec("INSERT INTO items VALUES (1)");
      co_await conn->exec("SELECT 1 / 0");  // the transaction is aborted; both objects unwind
    } catch (const pg_error&) {
      failed = true;
    }
    EXPECT_TRUE(failed);
    auto again = co_await p->acquire();
    EXPECT_EQ(again->backend_pid(), first_pid);
    EXPECT_TRUE(again->idle_in_no_transaction());
    EXPECT_TRUE(another_session_can_take_it(db));
    EXPECT_EQ(test::admin_query("SELECT count(*) FROM items", db.name()).at(0).at(0), "0");
  });
}

}  // namespace
}  // namespace tenantd::db
