// db::transaction against the private cluster: commit persists; an early return, an exception
// or a failed statement rolls back; the connection then serves its holder's next statement
// outside the old transaction and goes back to the pool clean (the same backend, reused).
#include "db/transaction.hpp"

#include <gtest/gtest.h>

#include <array>
#include <stdexcept>
#include <string>

#include "db/pool.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

// One connection at most: a second acquire gets the first one back, once the pool has it.
std::shared_ptr<pool> single_connection_pool(net::any_io_executor ex, const test::test_database& db) {
  pool_options options;
  options.connection.conninfo = db.conninfo();
  options.max_size = 1;
  options.acquire_timeout = 5000ms;
  return pool::create(std::move(ex), options);
}

std::string rows_in(const test::test_database& db) {
  return test::admin_query("SELECT count(*) FROM items", db.name()).at(0).at(0);
}

class transaction_test : public ::testing::Test {
 protected:
  void SetUp() override {
    test::admin_exec("CREATE TABLE items (id int PRIMARY KEY); GRANT ALL ON items TO PUBLIC", db_.name());
  }
  test::test_database db_;
};

net::awaitable<void> insert_and_commit(connection& conn, int id) {
  auto tx = co_await transaction::begin(conn);
  const auto text = std::to_string(id);
  const std::array<param, 1> p{param(text)};
  co_await conn.exec_params("INSERT INTO items (id) VALUES ($1::int)", p);
  co_await tx.commit();
}

// Returns inside the transaction, as a refused request does.
net::awaitable<bool> insert_and_return(connection& conn) {
  auto tx = co_await transaction::begin(conn);
  co_await conn.exec("INSERT INTO items (id) VALUES (1)");
  co_return false;
}

net::awaitable<void> insert_and_throw(connection& conn) {
  auto tx = co_await transaction::begin(conn);
  co_await conn.exec("INSERT INTO items (id) VALUES (1)");
  throw std::runtime_error("refused half-way");
}

TEST_F(transaction_test, commit_persists) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db_);
    auto conn = co_await p->acquire();
    co_await insert_and_commit(*conn, 7);
    EXPECT_TRUE(conn->idle_in_no_transaction());
    EXPECT_FALSE(conn->cleanup_pending());
  });
  EXPECT_EQ(rows_in(db_), "1");
}

TEST_F(transaction_test, explicit_rollback_undoes_at_once) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db_);
    auto conn = co_await p->acquire();
    auto tx = co_await transaction::begin(*conn);
    co_await conn->exec("INSERT INTO items (id) VALUES (1)");
    co_await tx.rollback();
    EXPECT_FALSE(tx.open());
    EXPECT_TRUE(conn->idle_in_no_transaction());
    EXPECT_EQ(rows_in(db_), "0");
  });
}

TEST_F(transaction_test, an_early_return_rolls_back_before_the_holders_next_statement) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db_);
    auto conn = co_await p->acquire();
    EXPECT_FALSE(co_await insert_and_return(*conn));
    EXPECT_TRUE(conn->cleanup_pending());
    // The next statement runs after the owed ROLLBACK, outside the old transaction.
    const auto count = co_await conn->exec("SELECT count(*) FROM items");
    EXPECT_EQ(count.int64(0, 0), 0);
    EXPECT_TRUE(conn->idle_in_no_transaction());
    EXPECT_FALSE(conn->cleanup_pending());
    // The id is free again: the insert was undone, not left pending.
    co_await insert_and_commit(*conn, 1);
  });
  EXPECT_EQ(rows_in(db_), "1");
}

TEST_F(transaction_test, an_early_return_goes_back_to_the_pool_clean_and_is_reused) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db_);
    int first_pid = 0;
    {
      auto conn = co_await p->acquire();
      first_pid = conn->backend_pid();
      EXPECT_FALSE(co_await insert_and_return(*conn));
    }  // released with the rollback owed: the pool runs it, then lends the connection again
    auto again = co_await p->acquire();
    EXPECT_EQ(again->backend_pid(), first_pid);
    EXPECT_TRUE(again->idle_in_no_transaction());
    EXPECT_FALSE(again->cleanup_pending());
    EXPECT_EQ(rows_in(db_), "0");
    // No lock of the old transaction is left: another session inserts the same key at once.
    test::admin_exec("SET lock_timeout = '2s'; INSERT INTO items (id) VALUES (1)", db_.name());
  });
  EXPECT_EQ(rows_in(db_), "1");
}

TEST_F(transaction_test, an_exception_rolls_back_and_the_pool_reuses_the_connection) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db_);
    int first_pid = 0;
    bool thrown = false;
    try {
      auto conn = co_await p->acquire();
      first_pid = conn->backend_pid();
      co_await insert_and_throw(*conn);
    } catch (const std::runtime_error&) {
      thrown = true;
    }
    EXPECT_TRUE(thrown);
    auto again = co_await p->acquire();
    EXPECT_EQ(again->backend_pid(), first_pid);
    EXPECT_TRUE(again->idle_in_no_transaction());
    EXPECT_EQ(rows_in(db_), "0");
  });
}

TEST_F(transaction_test, a_failed_statement_aborts_and_the_connection_comes_back_clean) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db_);
    int first_pid = 0;
    bool failed = false;
    try {
      auto conn = co_await p->acquire();
      first_pid = conn->backend_pid();
      auto tx = co_await transaction::begin(*conn);
      co_await conn->exec("INSERT INTO items (id) VALUES (1)");
      co_await conn->exec("INSERT INTO items (id) VALUES (1)");  // unique violation: transaction aborted
    } catch (const pg_error& e) {
      failed = e.is_unique_violation();
    }
    EXPECT_TRUE(failed);
    auto again = co_await p->acquire();
    EXPECT_EQ(again->backend_pid(), first_pid);
    const auto count = co_await again->exec("SELECT count(*) FROM items");
    EXPECT_EQ(count.int64(0, 0), 0);
  });
}

TEST_F(transaction_test, a_failed_commit_ends_the_transaction) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = single_connection_pool(ex, db_);
    auto conn = co_await p->acquire();
    co_await conn->exec("CREATE TABLE pairs (id int, CONSTRAINT once UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)");
    auto tx = co_await transaction::begin(*conn);
    co_await conn->exec("INSERT INTO pairs VALUES (1), (1)");  // checked at COMMIT
    bool failed = false;
    try {
      co_await tx.commit();
    } catch (const pg_error& e) {
      failed = e.is_unique_violation();
    }
    EXPECT_TRUE(failed);
    EXPECT_FALSE(tx.open());
    const auto count = co_await conn->exec("SELECT count(*) FROM pairs");
    EXPECT_EQ(count.int64(0, 0), 0);
    EXPECT_TRUE(conn->idle_in_no_transaction());
  });
}

}  // namespace
}  // namespace tenantd::db
