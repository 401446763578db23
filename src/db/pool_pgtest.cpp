// Connection pool against the private cluster: bounds, FIFO waiting with a deadline,
// discarding broken or mid-transaction connections, budgets, idle closing, shutdown.
#include "db/pool.hpp"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <mutex>
#include <set>
#include <thread>

#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

pool_options options_for(const test::test_database& db, std::size_t max_size) {
  pool_options options;
  options.connection.conninfo = db.conninfo() + " application_name=tenantd";
  options.max_size = max_size;
  options.acquire_timeout = 3000ms;
  return options;
}

std::int64_t backends_of(const test::test_database& db) {
  const auto rows = test::admin_query("SELECT count(*) FROM pg_stat_activity WHERE datname = '" + db.name() +
                                      "' AND application_name = 'tenantd'");
  return std::stoll(rows.at(0).at(0));
}

net::awaitable<void> sleep_for(std::chrono::milliseconds duration) {
  net::steady_timer timer(co_await net::this_coro::executor, duration);
  co_await timer.async_wait(net::use_awaitable);
}

// Terminates a backend and waits (with a deadline) until the server has let it go.
net::awaitable<void> terminate_backend(int pid) {
  test::admin_exec("SELECT pg_terminate_backend(" + std::to_string(pid) + ")");
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < deadline &&
         !test::admin_query("SELECT 1 FROM pg_stat_activity WHERE pid = " + std::to_string(pid)).empty())
    co_await sleep_for(5ms);
}

// A TCP proxy in front of the test cluster that can hold new connections back, as a
// postmaster does when the machine is saturated: a connection accepted while a delay is set
// is forwarded to PostgreSQL only after that delay. Runs on its own thread.
class slow_proxy {
 public:
  slow_proxy() : acceptor_(io_, {net::ip::make_address("127.0.0.1"), 0}) {
    net::co_spawn(io_, accept_loop(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~slow_proxy() {
    io_.stop();
    thread_.join();
  }
  slow_proxy(const slow_proxy&) = delete;
  slow_proxy& operator=(const slow_proxy&) = delete;

  unsigned short port() const { return acceptor_.local_endpoint().port(); }
  void delay_new_connections(std::chrono::milliseconds delay) { delay_ms_ = delay.count(); }
  int accepted() const { return accepted_.load(); }

 private:
  using tcp = net::ip::tcp;

  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, client] = co_await acceptor_.async_accept(net::as_tuple(net::use_awaitable));
      if (ec) co_return;
      ++accepted_;
      net::co_spawn(io_, forward(std::move(client)), net::detached);
    }
  }

  net::awaitable<void> forward(tcp::socket accepted) {
    const std::chrono::milliseconds delay(delay_ms_.load());
    if (delay.count() > 0) {
      net::steady_timer timer(io_, delay);
      (void)co_await timer.async_wait(net::as_tuple(net::use_awaitable));
    }
    auto client = std::make_shared<tcp::socket>(std::move(accepted));
    auto server = std::make_shared<tcp::socket>(io_);
    const tcp::endpoint upstream(net::ip::make_address(test::pg_cluster().host),
                                 static_cast<unsigned short>(test::pg_cluster().port));
    auto [ec] = co_await server->async_connect(upstream, net::as_tuple(net::use_awaitable));
    if (ec) co_return;
    net::co_spawn(io_, pump(client, server), net::detached);
    net::co_spawn(io_, pump(server, client), net::detached);
  }

  static net::awaitable<void> pump(std::shared_ptr<tcp::socket> from, std::shared_ptr<tcp::socket> to) {
    std::array<char, 8192> buffer{};
    for (;;) {
      auto [read_ec, n] = co_await from->async_read_some(net::buffer(buffer), net::as_tuple(net::use_awaitable));
      if (read_ec) break;
      auto [write_ec, written] =
          co_await net::async_write(*to, net::buffer(buffer.data(), n), net::as_tuple(net::use_awaitable));
      if (write_ec) break;
    }
    boost::system::error_code ignored;
    to->shutdown(tcp::socket::shutdown_send, ignored);
  }

  net::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<long> delay_ms_{0};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST(Pool, NeverOpensMoreThanMaxSizeUnderConcurrency) {
  test::test_database db;
  std::atomic<int> in_use{0};
  std::atomic<int> peak{0};
  std::atomic<int> done{0};
  std::mutex pids_mutex;
  std::set<int> pids;
  run_coro(
      [&](auto ex) -> net::awaitable<void> {
        auto p = pool::create(ex, options_for(db, 3));
        auto worker = [&]() -> net::awaitable<void> {
          for (int round = 0; round < 5; ++round) {
            auto conn = co_await p->acquire();
            const int now = ++in_use;
            int seen = peak.load();
            while (now > seen && !peak.compare_exchange_weak(seen, now)) {
            }
            auto rows = co_await conn->exec("SELECT pg_backend_pid(), pg_sleep(0.01)");
            {
              std::lock_guard lock(pids_mutex);
              pids.insert(static_cast<int>(rows.int64(0, 0)));
            }
            --in_use;
          }
          ++done;
        };
        for (int i = 0; i < 20; ++i) net::co_spawn(ex, worker(), net::detached);
        while (done.load() < 20) co_await sleep_for(10ms);
        EXPECT_LE(p->stats().open, 3u);
        EXPECT_EQ(backends_of(db), static_cast<std::int64_t>(p->stats().open));
      },
      std::chrono::seconds(60), 2);
  EXPECT_EQ(done.load(), 20);
  EXPECT_LE(peak.load(), 3);
  EXPECT_LE(pids.size(), 3u);
}

TEST(Pool, ReusesAReleasedConnection) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options_for(db, 2));
    int first_pid = 0;
    {
      auto conn = co_await p->acquire();
      first_pid = conn->backend_pid();
    }
    EXPECT_EQ(p->stats().idle, 1u);
    auto again = co_await p->acquire();
    EXPECT_EQ(again->backend_pid(), first_pid);
    EXPECT_EQ(p->stats().open, 1u);
  });
}

TEST(Pool, AcquireTimesOutWhenExhausted) {
  test::test_database db;
  auto options = options_for(db, 2);
  options.acquire_timeout = 300ms;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    auto a = co_await p->acquire();
    auto b = co_await p->acquire();
    const auto started = std::chrono::steady_clock::now();
    bool thrown = false;
    try {
      (void)co_await p->acquire();
    } catch (const unavailable_error& e) {
      thrown = true;
      EXPECT_NE(std::string(e.what()).find("exhausted"), std::string::npos);
    }
    const auto elapsed = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(thrown);
    EXPECT_GE(elapsed, 280ms);
    EXPECT_LT(elapsed, 1500ms);
    EXPECT_EQ(p->stats().waiters, 0u);
  });
}

TEST(Pool, WaitersAreServedInArrivalOrder) {
  test::test_database db;
  auto options = options_for(db, 1);
  options.acquire_timeout = 5000ms;
  std::vector<int> order;
  std::mutex order_mutex;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    auto held = co_await p->acquire();
    std::atomic<int> served{0};
    auto wait_in_line = [&](int i) -> net::awaitable<void> {
      auto conn = co_await p->acquire();
      {
        std::lock_guard lock(order_mutex);
        order.push_back(i);
      }
      co_await sleep_for(5ms);
      ++served;
    };
    for (int i = 0; i < 4; ++i) {
      net::co_spawn(ex, wait_in_line(i), net::detached);
      while (p->stats().waiters < static_cast<std::size_t>(i + 1)) co_await sleep_for(1ms);
    }
    held = pooled_connection();
    while (served.load() < 4) co_await sleep_for(5ms);
  });
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
}

TEST(Pool, ABrokenConnectionIsDiscarded) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options_for(db, 1));
    int old_pid = 0;
    {
      auto conn = co_await p->acquire();
      old_pid = conn->backend_pid();
      test::admin_exec("SELECT pg_terminate_backend(" + std::to_string(old_pid) + ")");
      bool thrown = false;
      try {
        (void)co_await conn->exec("SELECT 1");
      } catch (const unavailable_error&) {
        thrown = true;
      }
      EXPECT_TRUE(thrown);
    }
    EXPECT_EQ(p->stats().open, 0u);
    auto fresh = co_await p->acquire();
    EXPECT_NE(fresh->backend_pid(), old_pid);
    auto rows = co_await fresh->exec("SELECT 1");
    EXPECT_EQ(rows.int64(0, 0), 1);
  });
}

TEST(Pool, ABackendKilledWhileHeldIsNotReturnedToIdle) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options_for(db, 1));
    int old_pid = 0;
    {
      auto conn = co_await p->acquire();
      old_pid = conn->backend_pid();
      co_await terminate_backend(old_pid);
    }
    EXPECT_EQ(p->stats().idle, 0u);
    auto fresh = co_await p->acquire();
    EXPECT_NE(fresh->backend_pid(), old_pid);
    auto rows = co_await fresh->exec("SELECT 1");
    EXPECT_EQ(rows.int64(0, 0), 1);
  });
}

TEST(Pool, ABackendKilledWhileIdleIsNotHandedOut) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options_for(db, 1));
    int old_pid = 0;
    {
      auto conn = co_await p->acquire();
      old_pid = conn->backend_pid();
    }
    EXPECT_EQ(p->stats().idle, 1u);
    co_await terminate_backend(old_pid);
    auto fresh = co_await p->acquire();
    EXPECT_NE(fresh->backend_pid(), old_pid);
    auto rows = co_await fresh->exec("SELECT 1");
    EXPECT_EQ(rows.int64(0, 0), 1);
    EXPECT_EQ(p->stats().open, 1u);
  });
}

TEST(Pool, AConnectionLeftInATransactionIsDiscarded) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options_for(db, 1));
    int old_pid = 0;
    {
      auto conn = co_await p->acquire();
      old_pid = conn->backend_pid();
      co_await conn->exec("BEGIN");
    }
    EXPECT_EQ(p->stats().open, 0u);
    auto fresh = co_await p->acquire();
    EXPECT_NE(fresh->backend_pid(), old_pid);
    EXPECT_TRUE(fresh->idle_in_no_transaction());
  });
}

TEST(Pool, AWaiterGetsANewConnectionWhenAHeldOneIsDiscarded) {
  test::test_database db;
  auto options = options_for(db, 1);
  options.acquire_timeout = 5000ms;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    auto held = co_await p->acquire();
    co_await held->exec("BEGIN");
    std::atomic<int> waiter_pid{0};
    auto wait_for_connection = [&]() -> net::awaitable<void> {
      auto conn = co_await p->acquire();
      auto rows = co_await conn->exec("SELECT pg_backend_pid()");
      waiter_pid = static_cast<int>(rows.int64(0, 0));
    };
    net::co_spawn(ex, wait_for_connection(), net::detached);
    while (p->stats().waiters == 0) co_await sleep_for(1ms);
    const int held_pid = held->backend_pid();
    held = pooled_connection();
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (waiter_pid.load() == 0 && std::chrono::steady_clock::now() < deadline) co_await sleep_for(5ms);
    EXPECT_NE(waiter_pid.load(), 0);
    EXPECT_NE(waiter_pid.load(), held_pid);
  });
}

TEST(Pool, ARefusedBudgetSlotMakesAcquireWaitAndTimeOut) {
  test::test_database db;
  auto options = options_for(db, 4);
  options.acquire_timeout = 300ms;
  std::atomic<int> reserved{0};
  std::atomic<int> released{0};
  std::atomic<int> budget{1};
  options.reserve_slot = [&] {
    if (budget.load() <= 0) return false;
    --budget;
    ++reserved;
    return true;
  };
  options.release_slot = [&] {
    ++budget;
    ++released;
  };
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    {
      auto first = co_await p->acquire();
      const auto started = std::chrono::steady_clock::now();
      bool thrown = false;
      try {
        (void)co_await p->acquire();
      } catch (const unavailable_error&) {
        thrown = true;
      }
      const auto elapsed = std::chrono::steady_clock::now() - started;
      EXPECT_TRUE(thrown);
      EXPECT_GE(elapsed, 280ms);
      EXPECT_EQ(p->stats().open, 1u);
    }
    EXPECT_EQ(p->close_idle_older_than(0ms), 1u);
    EXPECT_EQ(p->stats().open, 0u);
  });
  EXPECT_EQ(reserved.load(), 1);
  EXPECT_EQ(released.load(), 1);
}

TEST(Pool, AWaiterRefusedByTheBudgetGetsAReleasedConnection) {
  test::test_database db;
  auto options = options_for(db, 4);
  options.acquire_timeout = 5000ms;
  std::atomic<int> budget{1};
  options.reserve_slot = [&] { return budget.fetch_sub(1) > 0; };
  options.release_slot = [&] { ++budget; };
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    auto held = co_await p->acquire();
    const int held_pid = held->backend_pid();
    std::atomic<int> waiter_pid{0};
    auto wait_for_connection = [&]() -> net::awaitable<void> {
      auto conn = co_await p->acquire();
      waiter_pid = conn->backend_pid();
    };
    net::co_spawn(ex, wait_for_connection(), net::detached);
    while (p->stats().waiters == 0) co_await sleep_for(1ms);
    held = pooled_connection();
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (waiter_pid.load() == 0 && std::chrono::steady_clock::now() < deadline) co_await sleep_for(5ms);
    EXPECT_EQ(waiter_pid.load(), held_pid);
  });
}

TEST(Pool, ClosesIdleConnectionsByAge) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options_for(db, 3));
    {
      auto a = co_await p->acquire();
      auto b = co_await p->acquire();
    }
    EXPECT_EQ(p->stats().idle, 2u);
    co_await sleep_for(120ms);
    {
      auto c = co_await p->acquire();  // most recently used idle one, now fresh again
    }
    EXPECT_EQ(p->close_idle_older_than(100ms), 1u);
    EXPECT_EQ(p->stats().open, 1u);
    EXPECT_EQ(p->close_idle_older_than(10s), 0u);
    EXPECT_TRUE(p->close_one_idle());
    EXPECT_FALSE(p->close_one_idle());
    EXPECT_EQ(p->stats().open, 0u);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (backends_of(db) != 0 && std::chrono::steady_clock::now() < deadline) co_await sleep_for(10ms);
    EXPECT_EQ(backends_of(db), 0);
  });
}

TEST(Pool, ConnectFailureReturnsTheSlotAndPropagates) {
  test::test_database db;
  auto options = options_for(db, 2);
  options.connection.conninfo += " password=wrong";
  std::atomic<int> budget{2};
  options.reserve_slot = [&] { return budget.fetch_sub(1) > 0; };
  options.release_slot = [&] { ++budget; };
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    for (int i = 0; i < 3; ++i) {
      bool thrown = false;
      try {
        (void)co_await p->acquire();
      } catch (const unavailable_error&) {
        thrown = true;
      }
      EXPECT_TRUE(thrown);
    }
    EXPECT_EQ(p->stats().open, 0u);
  });
  EXPECT_EQ(budget.load(), 2);
}

// After a failed connect the pool does not try again until the back-off has passed: acquires
// in between fail at once (no reconnect storm), and the first one after it connects.
TEST(Pool, ConnectFailuresBackOffThenRecover) {
  test::test_database db;
  const auto missing = db.name() + "_later";
  auto options = options_for(db, 2);
  options.connection.conninfo = test::app_conninfo(missing) + " application_name=tenantd";
  options.connect_backoff_initial = 400ms;
  options.connect_backoff_max = 400ms;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    std::string first, second;
    try {
      (void)co_await p->acquire();
    } catch (const unavailable_error& e) {
      first = e.what();
    }
    EXPECT_NE(first.find("does not exist"), std::string::npos) << first;
    EXPECT_TRUE(p->stats().connect_failing);
    const auto started = std::chrono::steady_clock::now();
    try {
      (void)co_await p->acquire();
    } catch (const unavailable_error& e) {
      second = e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - started, 100ms) << "failed fast";
    EXPECT_NE(second.find("reconnecting"), std::string::npos) << second;

    test::admin_exec("CREATE DATABASE " + missing + " OWNER " + test::pg_cluster().app_user);
    co_await sleep_for(450ms);
    {
      auto conn = co_await p->acquire();
      EXPECT_TRUE(conn);
      EXPECT_FALSE(p->stats().connect_failing);
    }
    p->shutdown();
  });
  test::admin_exec("DROP DATABASE IF EXISTS " + missing + " WITH (FORCE)");
}

// Once the back-off window has passed, concurrent acquires of a failing pool send one probe
// connect between them; the others wait for its outcome and share its failure.
TEST(Pool, AFailingPoolProbesWithOneConnectAtATime) {
  test::test_database db;
  auto options = options_for(db, 4);
  options.connection.conninfo = test::app_conninfo(db.name() + "_missing") + " application_name=tenantd";
  options.connect_backoff_initial = 200ms;
  options.connect_backoff_max = 200ms;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    try {
      (void)co_await p->acquire();
    } catch (const unavailable_error&) {
    }
    co_await sleep_for(250ms);
    std::vector<std::string> messages;
    std::atomic<int> done{0};
    for (int i = 0; i < 5; ++i)
      net::co_spawn(
          ex,
          [&]() -> net::awaitable<void> {
            try {
              (void)co_await p->acquire();
              messages.emplace_back("connected");
            } catch (const unavailable_error& e) {
              messages.emplace_back(e.what());
            }
            ++done;
          },
          net::detached);
    while (done.load() < 5) co_await sleep_for(10ms);
    const auto attempts = std::count_if(messages.begin(), messages.end(), [](const std::string& m) {
      return m.find("reconnecting") == std::string::npos;
    });
    EXPECT_EQ(attempts, 1) << "one probe connect; the rest failed with it";
    EXPECT_EQ(p->stats().open, 0U);
    EXPECT_EQ(p->stats().waiters, 0U);
  });
}

// While new connections fail, an acquire that cannot open one waits for a connection already
// open to be released, rather than failing: pooled connections keep serving.
TEST(Pool, DuringBackOffWaitersAreServedByOpenConnections) {
  test::test_database db;
  test::admin_exec("ALTER DATABASE " + db.name() + " CONNECTION LIMIT 1");
  auto options = options_for(db, 2);
  options.connect_backoff_initial = 1000ms;
  options.connect_backoff_max = 1000ms;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    auto c1 = co_await p->acquire();
    bool refused = false;
    try {
      (void)co_await p->acquire();  // the database's connection limit refuses a second one
    } catch (const unavailable_error&) {
      refused = true;
    }
    EXPECT_TRUE(refused);
    net::co_spawn(
        ex,
        [&]() -> net::awaitable<void> {
          co_await sleep_for(100ms);
          c1 = pooled_connection();
        },
        net::detached);
    auto c3 = co_await p->acquire();
    const auto rows = co_await c3->exec("SELECT 1");
    EXPECT_EQ(rows.rows(), 1);
    EXPECT_EQ(p->stats().open, 1U);
  });
}

// A request never waits on its own connect: while the connect opened for it is held back,
// a connection of the pool released meanwhile serves it. The slow connect still completes
// and feeds the pool.
TEST(Pool, AWaiterTakesAReleasedConnectionWhileItsConnectIsSlow) {
  test::test_database db;
  slow_proxy proxy;
  auto options = options_for(db, 2);
  options.connection.conninfo += " port=" + std::to_string(proxy.port());
  options.connection.connect_timeout = 30s;
  options.acquire_timeout = 20s;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    auto held = co_await p->acquire();
    const int held_pid = held->backend_pid();
    proxy.delay_new_connections(3s);
    net::co_spawn(
        ex,
        [&]() -> net::awaitable<void> {
          while (p->stats().waiters == 0) co_await sleep_for(1ms);
          co_await sleep_for(100ms);  // the new connect is under way, held back by the proxy
          held = pooled_connection();
        },
        net::detached);
    auto served = co_await p->acquire();
    EXPECT_EQ(served->backend_pid(), held_pid) << "served by the released connection, not by its own connect";
    const auto rows = co_await served->exec("SELECT 1");
    EXPECT_EQ(rows.int64(0, 0), 1);
    EXPECT_EQ(proxy.accepted(), 2) << "one connect was started for the waiter";
    served = pooled_connection();
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (p->stats().idle < 2 && std::chrono::steady_clock::now() < deadline) co_await sleep_for(10ms);
    EXPECT_EQ(p->stats().idle, 2U) << "the late connect fed the pool";
    EXPECT_EQ(backends_of(db), 2);
  });
}

// The acquire timeout bounds the wait: a waiter for which no connect is under way gives up
// after it, while the waiter at the head of the queue, whose connect is under way, is served by
// that connect when it completes late.
TEST(Pool, OnlyTheWaiterAConnectIsUnderWayForOutwaitsTheAcquireTimeout) {
  test::test_database db;
  slow_proxy proxy;
  auto options = options_for(db, 2);
  options.connection.conninfo += " port=" + std::to_string(proxy.port());
  options.connection.connect_timeout = 30s;
  options.acquire_timeout = 300ms;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    auto held = co_await p->acquire();  // the pool's one free place is left for one connect
    proxy.delay_new_connections(1500ms);
    std::string first, second;
    std::atomic<int> done{0};
    const auto waiter = [&](std::string& outcome) -> net::awaitable<void> {
      try {
        auto conn = co_await p->acquire();
        const auto rows = co_await conn->exec("SELECT 1");
        outcome = rows.int64(0, 0) == 1 ? "served" : "wrong answer";
      } catch (const unavailable_error& e) {
        outcome = e.what();
      }
      ++done;
    };
    net::co_spawn(ex, waiter(first), net::detached);
    while (p->stats().waiters < 1) co_await sleep_for(1ms);
    net::co_spawn(ex, waiter(second), net::detached);
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (done.load() < 2 && std::chrono::steady_clock::now() < deadline) co_await sleep_for(10ms);
    EXPECT_EQ(first, "served") << "the late connect served the head of the queue";
    EXPECT_NE(second.find("exhausted"), std::string::npos) << second;
    EXPECT_EQ(proxy.accepted(), 2) << "one connect for the queue";
    EXPECT_EQ(p->stats().open, 2U);
  });
}

constexpr statement backend{"p_backend", "SELECT pg_backend_pid()"};
constexpr statement counted{"p_counted", "SELECT count(*) FROM items"};
constexpr statement slept{"p_slept", "SELECT pg_sleep(5)"};

// Single statements share the pool's pipelined connection while a transaction takes an
// exclusive one beside it. When the pipelined backend dies, the statements in flight fail with
// unavailable_error and the next statement runs on a new pipelined connection.
TEST(Pool, PipelinedStatementsBesideATransactionAndAfterTheirBackendDies) {
  test::test_database db;
  test::admin_exec("CREATE TABLE items (id int PRIMARY KEY)", db.name());
  test::admin_exec("GRANT ALL ON items TO " + test::pg_cluster().app_user, db.name());
  auto options = options_for(db, 3);
  options.pipeline_depth = 16;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    const std::span<const param> none;
    const auto first = co_await p->exec_prepared(backend, none);
    const auto pipelined_pid = first.int64(0, 0);
    EXPECT_TRUE(p->stats().pipelined);
    {
      auto tx = co_await p->acquire();
      EXPECT_NE(tx->backend_pid(), pipelined_pid) << "a transaction gets an exclusive connection";
      co_await tx->exec("BEGIN");
      co_await tx->exec("INSERT INTO items VALUES (1)");
      const auto during = co_await p->exec_prepared(counted, none);
      EXPECT_EQ(during.int64(0, 0), 0);
      co_await tx->exec("COMMIT");
    }
    const auto after = co_await p->exec_prepared(counted, none);
    EXPECT_EQ(after.int64(0, 0), 1);

    constexpr int callers = 4;
    std::atomic<int> unavailable{0}, done{0};
    const auto caller = [&]() -> net::awaitable<void> {
      try {
        (void)co_await p->exec_prepared(slept, none);
      } catch (const unavailable_error&) {
        ++unavailable;
      }
      ++done;
    };
    for (int c = 0; c < callers; ++c) net::co_spawn(ex, caller(), net::detached);
    const auto running = "SELECT 1 FROM pg_stat_activity WHERE pid = " + std::to_string(pipelined_pid) +
                         " AND state = 'active' AND query LIKE 'SELECT pg_sleep%'";
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (test::admin_query(running).empty() && std::chrono::steady_clock::now() < deadline) co_await sleep_for(5ms);
    co_await terminate_backend(static_cast<int>(pipelined_pid));
    while (done.load() < callers) co_await sleep_for(5ms);
    EXPECT_EQ(unavailable.load(), callers) << "every statement in flight failed with the broken connection";

    const auto next = co_await p->exec_prepared(backend, none);
    const auto second_pid = next.int64(0, 0);
    EXPECT_NE(second_pid, pipelined_pid) << "a new pipelined connection";
    EXPECT_TRUE(p->stats().pipelined);

    // A pipelined connection that died while idle is noticed before anything is sent on it:
    // the statement runs elsewhere instead of failing.
    co_await terminate_backend(static_cast<int>(second_pid));
    const auto served = co_await p->exec_prepared(backend, none);
    EXPECT_NE(served.int64(0, 0), second_pid);
  });
}

TEST(Pool, ShutdownFailsWaitersAndClosesReturnedConnections) {
  test::test_database db;
  auto options = options_for(db, 1);
  options.acquire_timeout = 5000ms;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    auto held = co_await p->acquire();
    std::atomic<int> outcome{0};  // 1 = unavailable_error
    auto wait_for_connection = [&]() -> net::awaitable<void> {
      try {
        (void)co_await p->acquire();
        outcome = 2;
      } catch (const unavailable_error&) {
        outcome = 1;
      }
    };
    net::co_spawn(ex, wait_for_connection(), net::detached);
    while (p->stats().waiters == 0) co_await sleep_for(1ms);
    p->shutdown();
    while (outcome.load() == 0) co_await sleep_for(1ms);
    EXPECT_EQ(outcome.load(), 1);
    held = pooled_connection();
    EXPECT_EQ(p->stats().open, 0u);
    bool thrown = false;
    try {
      (void)co_await p->acquire();
    } catch (const unavailable_error&) {
      thrown = true;
    }
    EXPECT_TRUE(thrown);
  });
}

}  // namespace
}  // namespace tenantd::db
