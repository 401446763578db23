// Async libpq connection against the private cluster: queries, parameters, prepared
// statements, errors, deadlines, lost backends and LISTEN/NOTIFY.
#include "db/connection.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

connection_options options_for(const test::test_database& db) {
  connection_options options;
  options.conninfo = db.conninfo() + " application_name=tenantd";
  return options;
}

// A port nothing listens on: bound once to learn a free number, then closed.
int closed_port() {
  net::io_context io;
  net::ip::tcp::acceptor acceptor(io, {net::ip::address_v4::loopback(), 0});
  return acceptor.local_endpoint().port();
}

constexpr statement add_one{"add_one", "SELECT $1::int + 1"};
constexpr statement broken_sql{"broken_sql", "SELEC 1"};
constexpr statement echo{"echo", "SELECT $1::text"};

TEST(connection, connects_and_runs_a_simple_query) {
  test::test_database db;
  const auto [value, version] = run_coro([&](auto ex) -> net::awaitable<std::pair<std::string, int>> {
    auto conn = co_await connection::connect(ex, options_for(db));
    auto rows = co_await conn->exec("SELECT 1 + 1 AS two, current_setting('application_name')");
    EXPECT_EQ(rows.rows(), 1);
    EXPECT_EQ(rows.columns(), 2);
    EXPECT_EQ(rows.string(0, 0), "2");
    EXPECT_EQ(rows.string(0, 1), "tenantd");
    EXPECT_FALSE(conn->broken());
    EXPECT_TRUE(conn->idle_in_no_transaction());
    EXPECT_GT(conn->backend_pid(), 0);
    co_return std::pair{rows.string(0, 0), conn->server_version()};
  });
  EXPECT_EQ(value, "2");
  EXPECT_GE(version, 150000);
}

TEST(connection, exec_returns_the_last_result_of_several_statements) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    auto rows = co_await conn->exec("CREATE TABLE t (v int); INSERT INTO t VALUES (1), (2); SELECT count(*) FROM t");
    EXPECT_EQ(rows.int64(0, 0), 2);
    auto changed = co_await conn->exec("UPDATE t SET v = v + 1");
    EXPECT_EQ(changed.affected_rows(), 2);
  });
}

TEST(connection, passes_parameters_including_null_and_unicode) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    const std::string unicode = "Zoë — 東京 🚀 'quoted' \\ back";
    const std::array<param, 3> params{unicode, std::nullopt, "42"};
    auto rows = co_await conn->exec_params("SELECT $1::text, $2::text, $3::int + 1, $2::text IS NULL", params);
    EXPECT_EQ(rows.string(0, 0), unicode);
    EXPECT_TRUE(rows.is_null(0, 1));
    EXPECT_EQ(rows.optional_string(0, 1), std::nullopt);
    EXPECT_EQ(rows.int64(0, 2), 43);
    EXPECT_TRUE(rows.boolean(0, 3));
    EXPECT_THROW((void)rows.int64(0, 0), std::runtime_error);
  });
}

TEST(connection, prepares_a_statement_once_per_connection) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    for (int i = 0; i < 50; ++i) {
      const auto text = std::to_string(i);
      const std::array<param, 1> params{text};
      auto rows = co_await conn->exec_prepared(add_one, params);
      EXPECT_EQ(rows.int64(0, 0), i + 1);
    }
    auto prepared = co_await conn->exec("SELECT count(*) FROM pg_prepared_statements WHERE name = 'add_one'");
    EXPECT_EQ(prepared.int64(0, 0), 1);
  });
}

TEST(connection, a_statement_that_fails_to_prepare_is_not_remembered) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    for (int i = 0; i < 2; ++i) {
      try {
        (void)co_await conn->exec_prepared(broken_sql, {});
        ADD_FAILURE() << "expected a syntax error";
      } catch (const pg_error& e) {
        EXPECT_EQ(e.sqlstate(), "42601");
      }
    }
    EXPECT_FALSE(conn->broken());
  });
}

TEST(connection, unique_violation_is_a_pg_error_and_the_connection_stays_usable) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    co_await conn->exec("CREATE TABLE u (email text PRIMARY KEY); INSERT INTO u VALUES ('a@example.com')");
    const std::array<param, 1> params{"a@example.com"};
    bool thrown = false;
    try {
      (void)co_await conn->exec_params("INSERT INTO u VALUES ($1)", params);
    } catch (const pg_error& e) {
      thrown = true;
      EXPECT_EQ(e.sqlstate(), "23505");
      EXPECT_TRUE(e.is_unique_violation());
    }
    EXPECT_TRUE(thrown);
    EXPECT_FALSE(conn->broken());
    auto rows = co_await conn->exec("SELECT count(*) FROM u");
    EXPECT_EQ(rows.int64(0, 0), 1);
  });
}

TEST(connection, fails_quickly_when_nothing_listens) {
  connection_options options;
  options.conninfo = "host=127.0.0.1 port=" + std::to_string(closed_port()) + " user=nobody dbname=nothing";
  options.connect_timeout = 120s;  // a refused connect fails at once, not when this runs out
  const auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(run_coro([&](auto ex) -> net::awaitable<void> { (void)co_await connection::connect(ex, options); }),
               unavailable_error);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 60s) << "it waited for the connect timeout";
}

TEST(connection, fails_on_a_wrong_password) {
  test::test_database db;
  auto options = options_for(db);
  options.conninfo += " password=wrong";
  EXPECT_THROW(run_coro([&](auto ex) -> net::awaitable<void> { (void)co_await connection::connect(ex, options); }),
               unavailable_error);
}

TEST(connection, connect_times_out_against_a_silent_server) {
  net::io_context io;
  net::ip::tcp::acceptor silent(io, {net::ip::address_v4::loopback(), 0});  // accepts in the backlog, never answers
  connection_options options;
  options.conninfo = "host=127.0.0.1 port=" + std::to_string(silent.local_endpoint().port()) + " user=x dbname=x";
  options.connect_timeout = 300ms;
  const auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(run_coro([&](auto ex) -> net::awaitable<void> { (void)co_await connection::connect(ex, options); }),
               unavailable_error);
  // It gave up because of the timeout (not before it), and did not hang on the silent peer.
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 30s);
}

TEST(connection, query_timeout_breaks_the_connection) {
  test::test_database db;
  auto options = options_for(db);
  options.query_timeout = 200ms;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options);
    const auto started = std::chrono::steady_clock::now();
    bool thrown = false;
    try {
      (void)co_await conn->exec("SELECT pg_sleep(60)");
    } catch (const unavailable_error&) {
      thrown = true;
    }
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(thrown);
    EXPECT_GE(elapsed, 200ms) << "not before the timeout";
    EXPECT_LT(elapsed, 30s) << "the statement was cut short, not waited for";
    EXPECT_TRUE(conn->broken());
    bool rejected = false;
    try {
      (void)co_await conn->exec("SELECT 1");
    } catch (const unavailable_error&) {
      rejected = true;
    }
    EXPECT_TRUE(rejected);
  });
}

// A statement cancelled by the server's statement_timeout (57014) means "not now", not "wrong
// statement": unavailable_error (503), and the connection is not reused.
TEST(connection, server_statement_timeout_is_unavailable) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    co_await conn->exec("SET statement_timeout = 100");
    bool thrown = false;
    try {
      (void)co_await conn->exec("SELECT pg_sleep(5)");
    } catch (const unavailable_error& e) {
      thrown = true;
      EXPECT_NE(std::string(e.what()).find("57014"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(thrown);
    EXPECT_TRUE(conn->broken());
  });
}

TEST(connection, terminated_backend_makes_the_next_call_unavailable) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    (void)co_await conn->exec("SELECT 1");
    test::admin_exec("SELECT pg_terminate_backend(" + std::to_string(conn->backend_pid()) + ")");
    bool thrown = false;
    try {
      (void)co_await conn->exec("SELECT 1");
    } catch (const unavailable_error&) {
      thrown = true;
    }
    EXPECT_TRUE(thrown);
    EXPECT_TRUE(conn->broken());
  });
}

TEST(connection, listen_notify_round_trip) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto listener = co_await connection::connect(ex, options_for(db));
    auto sender = co_await connection::connect(ex, options_for(db));
    co_await listener->exec("LISTEN tenant_changed");
    auto nothing = co_await listener->wait_notifications(50ms);
    EXPECT_TRUE(nothing.empty());
    EXPECT_FALSE(listener->broken());
    co_await sender->exec("SELECT pg_notify('tenant_changed', 'acme_corp')");
    auto arrived = co_await listener->wait_notifications(5000ms);
    EXPECT_EQ(arrived.size(), 1u);
    if (!arrived.empty()) {
      EXPECT_EQ(arrived[0].channel, "tenant_changed");
      EXPECT_EQ(arrived[0].payload, "acme_corp");
    }
  });
}

TEST(connection, wait_notifications_reports_a_lost_connection) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto listener = co_await connection::connect(ex, options_for(db));
    co_await listener->exec("LISTEN anything");
    test::admin_exec("SELECT pg_terminate_backend(" + std::to_string(listener->backend_pid()) + ")");
    bool thrown = false;
    try {
      for (int i = 0; i < 20 && !thrown; ++i) (void)co_await listener->wait_notifications(250ms);
    } catch (const unavailable_error&) {
      thrown = true;
    }
    EXPECT_TRUE(thrown);
    EXPECT_TRUE(listener->broken());
  });
}

// libpq closes its socket by itself once the backend is gone, and a descriptor opened later
// may get that number. Destroying the broken connection must leave such a descriptor watched
// by the reactor (it did not while Asio held libpq's own number; TSan saw it under load).
TEST(connection, destroying_a_broken_connection_leaves_later_descriptors_watched) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    test::admin_exec("SELECT pg_terminate_backend(" + std::to_string(conn->backend_pid()) + ")");
    try {
      (void)co_await conn->exec("SELECT 1");
    } catch (const unavailable_error&) {
    }
    EXPECT_TRUE(conn->broken());
    // New pipes take the lowest free numbers, the one libpq closed among them.
    std::vector<std::array<int, 2>> pipes(16);
    std::vector<std::unique_ptr<net::posix::stream_descriptor>> readers;
    for (auto& p : pipes) {
      EXPECT_EQ(::pipe2(p.data(), O_CLOEXEC | O_NONBLOCK), 0);
      readers.push_back(std::make_unique<net::posix::stream_descriptor>(ex, p[0]));
    }
    conn.reset();
    std::size_t readable = 0;
    net::steady_timer deadline(ex, 2s);
    for (auto& reader : readers)
      reader->async_wait(net::posix::descriptor_base::wait_read, [&](const boost::system::error_code& ec) {
        if (!ec && ++readable == pipes.size()) deadline.cancel();
      });
    for (auto& p : pipes) EXPECT_EQ(::write(p[1], "x", 1), 1);
    (void)co_await deadline.async_wait(net::as_tuple(net::use_awaitable));
    EXPECT_EQ(readable, pipes.size()) << "a pipe stopped being watched after the connection was destroyed";
    readers.clear();
    for (auto& p : pipes) ::close(p[1]);
  });
}

TEST(connection, escapes_identifiers) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    EXPECT_EQ(conn->escape_identifier("we\"ird"), "\"we\"\"ird\"");
  });
}

TEST(connection, resumes_on_a_multi_threaded_io_context) {
  test::test_database db;
  run_coro(
      [&](auto ex) -> net::awaitable<void> {
        auto conn = co_await connection::connect(ex, options_for(db));
        for (int i = 0; i < 200; ++i) {
          const auto text = std::to_string(i);
          const std::array<param, 1> params{text};
          auto rows = co_await conn->exec_prepared(echo, params);
          EXPECT_EQ(rows.string(0, 0), text);
        }
      },
      std::chrono::seconds(60), 2);
}

// The connect steps (PQconnectPoll, where libpq computes SCRAM's PBKDF2) run on the handshake
// executor: while its only thread is held, the connect cannot finish, and the I/O thread stays
// free for other work; once the thread is released the connection completes and works.
TEST(connection, connect_steps_run_on_the_handshake_executor) {
  test::test_database db;
  net::thread_pool handshakes(1);
  std::promise<void> release;
  std::shared_future<void> held = release.get_future().share();
  std::promise<void> holding;
  net::post(handshakes, [&holding, held] {
    holding.set_value();
    held.wait();
  });
  holding.get_future().wait();

  auto options = options_for(db);
  options.handshake_executor = handshakes.get_executor();
  net::io_context io;
  bool connected = false;
  int ticks = 0;
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        auto conn = co_await connection::connect(io.get_executor(), options);
        auto rows = co_await conn->exec("SELECT 1");
        connected = rows.string(0, 0) == "1";
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  net::co_spawn(
      io,
      [&]() -> net::awaitable<void> {
        net::steady_timer timer(io);
        while (!connected) {
          timer.expires_after(10ms);
          co_await timer.async_wait(net::use_awaitable);
          ++ticks;
        }
      },
      net::detached);
  io.run_for(300ms);
  EXPECT_FALSE(connected) << "the connect finished without the handshake thread";
  EXPECT_GE(ticks, 5) << "the I/O thread was not free while the connect waited";
  release.set_value();
  io.restart();
  io.run_for(30s);  // returns once both coroutines are done
  EXPECT_TRUE(connected);
  handshakes.join();
}

}  // namespace
}  // namespace tenantd::db
