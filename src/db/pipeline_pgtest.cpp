// Pipeline mode against the private cluster: many callers on one connection get their own
// results, a failing statement fails only its caller, statement timeouts, a backend killed
// mid-pipeline, and a transaction on another connection beside pipelined traffic.
#include "db/pipeline.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <string>
#include <vector>

#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

constexpr statement doubled{"p_doubled", "SELECT $1::int * 2"};
constexpr statement divided{"p_divided", "SELECT 100 / $1::int"};
constexpr statement slept{"p_slept", "SELECT pg_sleep($1::float8), $2::int"};
constexpr statement inserted{"p_inserted", "INSERT INTO items (email) VALUES ($1) RETURNING id"};
constexpr statement counted{"p_counted", "SELECT count(*) FROM items"};

connection_options options_for(const test::test_database& db, const std::string& extra = {}) {
  connection_options options;
  options.conninfo = db.conninfo() + " application_name=tenantd" + extra;
  return options;
}

net::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  net::steady_timer timer(co_await net::this_coro::executor, duration);
  co_await timer.async_wait(net::use_awaitable);
}

// Runs a statement through the pipeline; the tests stay under the depth limit.
net::awaitable<result_set> run(pipeline& p, const statement& stmt, std::span<const param> params) {
  auto result = co_await p.try_exec_prepared(stmt, params);
  if (!result) throw std::runtime_error("the pipeline refused the statement");
  co_return std::move(*result);
}

TEST(pipeline, many_concurrent_statements_come_back_to_their_callers) {
  test::test_database db;
  constexpr int callers = 48;
  constexpr int rounds = 5;
  std::atomic<int> right{0}, wrong{0}, done{0};
  run_coro(
      [&](auto ex) -> net::awaitable<void> {
        auto conn = co_await connection::connect(ex, options_for(db));
        auto p = pipeline::create(ex, std::move(conn), 64);
        const int pid = p->backend_pid();
        // A lambda coroutine reads its captures through the lambda object, which must outlive
        // every call: declared once, the caller's number passed as a parameter.
        const auto caller = [&](int c) -> net::awaitable<void> {
          for (int r = 0; r < rounds; ++r) {
            const auto value = std::to_string(c * 1000 + r);
            const std::array<param, 1> params{param(value)};
            const auto rows = co_await run(*p, doubled, params);
            if (rows.int64(0, 0) == 2 * (c * 1000 + r))
              ++right;
            else
              ++wrong;
          }
          ++done;
        };
        for (int c = 0; c < callers; ++c) net::co_spawn(ex, caller(c), net::detached);
        while (done.load() < callers) co_await sleep_for(5ms);
        EXPECT_FALSE(p->broken());
        EXPECT_EQ(p->in_flight(), 0U);
        const auto backends =
            test::admin_query("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + db.name() + "'");
        EXPECT_EQ(backends.at(0).at(0), "1") << "every statement ran on the one connection (pid " << pid << ")";
      },
      std::chrono::seconds(60), 2);
  EXPECT_EQ(right.load(), callers * rounds);
  EXPECT_EQ(wrong.load(), 0);
}

TEST(pipeline, a_failing_statement_fails_only_its_caller) {
  test::test_database db;
  test::admin_exec("CREATE TABLE items (id serial PRIMARY KEY, email text UNIQUE NOT NULL)", db.name());
  test::admin_exec("GRANT ALL ON items, items_id_seq TO " + test::pg_cluster().app_user, db.name());
  test::admin_exec("INSERT INTO items (email) VALUES ('taken@example.com')", db.name());
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    auto p = pipeline::create(ex, std::move(conn), 64);
    std::vector<std::string> outcomes(6);
    std::atomic<int> done{0};
    const auto attempt = [&](std::size_t slot, const statement& stmt, std::string value) -> net::awaitable<void> {
      const std::array<param, 1> params{param(value)};
      try {
        const auto rows = co_await run(*p, stmt, params);
        outcomes[slot] = "ok " + std::string(rows.string(0, 0));
      } catch (const pg_error& e) {
        outcomes[slot] = "pg_error " + e.sqlstate();
      }
      ++done;
    };
    // Sent back to back, so they share the connection's pipeline.
    net::co_spawn(ex, attempt(0, doubled, "21"), net::detached);
    net::co_spawn(ex, attempt(1, inserted, "taken@example.com"), net::detached);
    net::co_spawn(ex, attempt(2, doubled, "5"), net::detached);
    net::co_spawn(ex, attempt(3, divided, "0"), net::detached);
    net::co_spawn(ex, attempt(4, divided, "4"), net::detached);
    net::co_spawn(ex, attempt(5, inserted, "new@example.com"), net::detached);
    while (done.load() < 6) co_await sleep_for(2ms);
    EXPECT_EQ(outcomes[0], "ok 42");
    EXPECT_EQ(outcomes[1], "pg_error 23505");
    EXPECT_EQ(outcomes[2], "ok 10");
    EXPECT_EQ(outcomes[3], "pg_error 22012");
    EXPECT_EQ(outcomes[4], "ok 25");
    EXPECT_EQ(outcomes[5].substr(0, 3), "ok ") << outcomes[5];
    EXPECT_FALSE(p->broken());
    // Each statement was its own transaction: the failed insert left nothing, the good one stays.
    const std::span<const param> none;
    const auto rows = co_await run(*p, counted, none);
    EXPECT_EQ(rows.int64(0, 0), 2);
  });
}

// The server's statement_timeout cancels the slow statement only: its caller gets
// unavailable_error (503), the statement behind it and the connection go on.
TEST(pipeline, a_statement_timeout_fails_only_that_statement) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db, " options='-c statement_timeout=200'"));
    auto p = pipeline::create(ex, std::move(conn), 64);
    std::string slow_outcome, next_outcome;
    std::atomic<int> done{0};
    net::co_spawn(
        ex,
        [&]() -> net::awaitable<void> {
          const std::array<param, 2> params{param("5"), param("1")};
          try {
            (void)co_await run(*p, slept, params);
            slow_outcome = "ok";
          } catch (const unavailable_error& e) {
            slow_outcome = e.what();
          }
          ++done;
        },
        net::detached);
    net::co_spawn(
        ex,
        [&]() -> net::awaitable<void> {
          const std::array<param, 2> params{param("0"), param("7")};
          const auto rows = co_await run(*p, slept, params);
          next_outcome = rows.string(0, 1);
          ++done;
        },
        net::detached);
    while (done.load() < 2) co_await sleep_for(5ms);
    EXPECT_NE(slow_outcome.find("57014"), std::string::npos) << slow_outcome;
    EXPECT_EQ(next_outcome, "7");
    EXPECT_FALSE(p->broken());
  });
}

// A lock held against the table makes the statement's own prepare run into the statement
// timeout: the caller gets that failure (unavailable_error, 503), not "prepared statement does
// not exist" for the statement that followed it, and the statement works once the lock goes.
TEST(pipeline, a_prepare_that_times_out_fails_its_statement_the_same_way) {
  test::test_database db;
  test::admin_exec("CREATE TABLE items (id serial PRIMARY KEY, email text UNIQUE NOT NULL)", db.name());
  test::admin_exec("GRANT ALL ON items, items_id_seq TO " + test::pg_cluster().app_user, db.name());
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto locker = co_await connection::connect(ex, options_for(db));
    auto conn = co_await connection::connect(ex, options_for(db, " options='-c statement_timeout=200'"));
    auto p = pipeline::create(ex, std::move(conn), 64);
    co_await locker->exec("BEGIN; LOCK TABLE items IN ACCESS EXCLUSIVE MODE");
    const std::array<param, 1> first{param("first@example.com")};
    std::string outcome;
    try {
      (void)co_await run(*p, inserted, first);
      outcome = "ok";
    } catch (const unavailable_error& e) {
      outcome = e.what();
    } catch (const pg_error& e) {
      outcome = "pg_error " + e.sqlstate();
    }
    EXPECT_NE(outcome.find("57014"), std::string::npos) << outcome;
    co_await locker->exec("ROLLBACK");
    const auto rows = co_await run(*p, inserted, first);
    EXPECT_EQ(rows.rows(), 1);
    EXPECT_FALSE(p->broken());
  });
}

// The server closes the connection while statements are in flight: every caller gets
// unavailable_error, the pipeline reports broken() and refuses further statements.
TEST(pipeline, a_backend_killed_mid_pipeline_fails_every_statement_in_flight) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    auto p = pipeline::create(ex, std::move(conn), 64);
    constexpr int callers = 6;
    std::atomic<int> unavailable{0}, other{0}, done{0};
    const auto caller = [&]() -> net::awaitable<void> {
      const std::array<param, 2> params{param("3"), param("1")};
      try {
        (void)co_await run(*p, slept, params);
        ++other;
      } catch (const unavailable_error&) {
        ++unavailable;
      } catch (...) {
        ++other;
      }
      ++done;
    };
    for (int c = 0; c < callers; ++c) net::co_spawn(ex, caller(), net::detached);
    while (p->in_flight() < callers) co_await sleep_for(2ms);
    co_await sleep_for(100ms);  // the first sleep is running on the server
    test::admin_exec("SELECT pg_terminate_backend(" + std::to_string(p->backend_pid()) + ")");
    while (done.load() < callers) co_await sleep_for(5ms);
    EXPECT_EQ(unavailable.load(), callers);
    EXPECT_EQ(other.load(), 0);
    EXPECT_TRUE(p->broken());
    const std::array<param, 1> params{param("1")};
    const auto refused = co_await p->try_exec_prepared(doubled, params);
    EXPECT_FALSE(refused.has_value()) << "a broken pipeline takes no statement";
    EXPECT_EQ(p->in_flight(), 0U);
  });
}

// A transaction on an exclusive connection beside pipelined traffic: the pipeline's
// statements do not see its uncommitted rows, and see them once it commits.
TEST(pipeline, a_transaction_on_another_connection_beside_pipelined_traffic) {
  test::test_database db;
  test::admin_exec("CREATE TABLE items (id serial PRIMARY KEY, email text UNIQUE NOT NULL)", db.name());
  test::admin_exec("GRANT ALL ON items, items_id_seq TO " + test::pg_cluster().app_user, db.name());
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto exclusive = co_await connection::connect(ex, options_for(db));
    auto conn = co_await connection::connect(ex, options_for(db));
    auto p = pipeline::create(ex, std::move(conn), 64);
    co_await exclusive->exec("BEGIN");
    co_await exclusive->exec("INSERT INTO items (email) VALUES ('inside@example.com')");
    const std::array<param, 1> outside{param("outside@example.com")};
    (void)co_await run(*p, inserted, outside);
    const std::span<const param> none;
    const auto before = co_await run(*p, counted, none);
    EXPECT_EQ(before.int64(0, 0), 1) << "the open transaction's row is not visible";
    co_await exclusive->exec("COMMIT");
    const auto after = co_await run(*p, counted, none);
    EXPECT_EQ(after.int64(0, 0), 2);
    EXPECT_TRUE(exclusive->idle_in_no_transaction());
  });
}

TEST(pipeline, refuses_beyond_its_depth_limit) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    auto p = pipeline::create(ex, std::move(conn), 2);
    std::atomic<int> done{0};
    const auto caller = [&]() -> net::awaitable<void> {
      const std::array<param, 2> params{param("0.3"), param("1")};
      (void)co_await run(*p, slept, params);
      ++done;
    };
    for (int c = 0; c < 2; ++c) net::co_spawn(ex, caller(), net::detached);
    while (p->in_flight() < 2) co_await sleep_for(1ms);
    const std::array<param, 1> params{param("1")};
    const auto refused = co_await p->try_exec_prepared(doubled, params);
    EXPECT_FALSE(refused.has_value()) << "a third statement beyond the depth of 2";
    while (done.load() < 2) co_await sleep_for(5ms);
    const auto admitted = co_await p->try_exec_prepared(doubled, params);
    EXPECT_TRUE(admitted.has_value());
    if (admitted) {
      EXPECT_EQ(admitted->int64(0, 0), 2);
    }
  });
}

}  // namespace
}  // namespace tenantd::db
