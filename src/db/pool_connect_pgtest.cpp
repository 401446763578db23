// Connection pool against the private cluster, when connecting goes wrong or is slow: a failed
// connect returns its slot, back-off with one probe at a time, waiters served by released
// connections while a connect is slow, pipelined statements beside a transaction, shutdown.
#include "db/pool_test_support.hpp"

namespace tenantd::db {
namespace {

using namespace pool_testing;  // NOLINT(google-build-using-namespace)

TEST(pool, connect_failure_returns_the_slot_and_propagates) {
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
TEST(pool, connect_failures_back_off_then_recover) {
  test::test_database db;
  const auto missing = db.name() + "_later";
  auto options = options_for(db, 2);
  options.connection.conninfo = test::app_conninfo(missing) + " application_name=tenantd";
  options.connect_backoff_initial = 400ms;
  options.connect_backoff_max = 400ms;
  options.acquire_timeout = 30s;  // an acquire during the back-off must not wait for it
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
    EXPECT_LT(std::chrono::steady_clock::now() - started, 15s) << "it waited instead of failing at once";
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
TEST(pool, a_failing_pool_probes_with_one_connect_at_a_time) {
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
TEST(pool, during_back_off_waiters_are_served_by_open_connections) {
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

// A backend terminated while its connection sat idle sends its last message ("FATAL:
// terminating connection due to administrator command") just before its socket closes. A
// connection asked for in between is not handed out: that message alone marks it dead (the
// proxy holds the close back, as a busy machine may; CI once saw a request fail with 503 in
// that moment).
TEST(pool, an_idle_connection_whose_backend_announced_its_end_is_not_handed_out) {
  test::test_database db;
  slow_proxy proxy;
  auto options = options_for(db, 2);
  options.connection.conninfo += " port=" + std::to_string(proxy.port());
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    int killed_pid = 0;
    {
      auto conn = co_await p->acquire();
      killed_pid = conn->backend_pid();
    }  // idle in the pool
    proxy.hold_server_closes(true);
    co_await terminate_backend(killed_pid);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (proxy.server_closes() < 1 && std::chrono::steady_clock::now() < deadline) co_await sleep_for(5ms);
    EXPECT_EQ(proxy.server_closes(), 1) << "the backend's last message was forwarded, its close held";
    auto conn = co_await p->acquire();
    EXPECT_NE(conn->backend_pid(), killed_pid) << "the dead connection was handed out";
    const auto rows = co_await conn->exec("SELECT 1");
    EXPECT_EQ(rows.int64(0, 0), 1);
    proxy.hold_server_closes(false);
  });
}

// A request never waits on its own connect: while the connect opened for it is held back,
// a connection of the pool released meanwhile serves it. The slow connect still completes
// and feeds the pool.
TEST(pool, a_waiter_takes_a_released_connection_while_its_connect_is_slow) {
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
TEST(pool, only_the_waiter_a_connect_is_under_way_for_outwaits_the_acquire_timeout) {
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
TEST(pool, pipelined_statements_beside_a_transaction_and_after_their_backend_dies) {
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

TEST(pool, shutdown_fails_waiters_and_closes_returned_connections) {
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

// A burst of first statements of a pool with a pipeline: the first caller opens the pipelined
// connection and the others wait for it instead of each asking for a connection of their own
// (under a full budget, pools asking for max_size each closed each other's connections in turn).
TEST(pool, a_burst_of_first_statements_waits_for_the_one_pipelined_connection) {
  test::test_database db;
  auto options = options_for(db, 4);
  options.pipeline_depth = 16;
  std::atomic<int> reserved{0};
  options.reserve_slot = [&] {
    ++reserved;
    return true;
  };
  options.release_slot = [] {};
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto p = pool::create(ex, options);
    constexpr int callers = 12;
    std::atomic<int> done{0}, failed{0};
    std::set<std::int64_t> pids;
    std::mutex pids_mutex;
    const auto caller = [&]() -> net::awaitable<void> {
      try {
        const std::span<const param> none;
        const auto r = co_await p->exec_prepared(backend, none);
        std::lock_guard lock(pids_mutex);
        pids.insert(r.int64(0, 0));
      } catch (const std::exception&) {
        ++failed;
      }
      ++done;
    };
    for (int c = 0; c < callers; ++c) net::co_spawn(ex, caller(), net::detached);
    net::steady_timer timer(ex);
    for (int i = 0; i < 500 && done.load() < callers; ++i) {
      timer.expires_after(10ms);
      co_await timer.async_wait(net::use_awaitable);
    }
    EXPECT_EQ(done.load(), callers);
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(pids.size(), 1u) << "every statement went through the one pipelined connection";
    EXPECT_EQ(reserved.load(), 1) << "one budget slot asked for, not one per caller";
    EXPECT_EQ(p->stats().open, 1u);
    EXPECT_TRUE(p->stats().pipelined);
  });
}

}  // namespace
}  // namespace tenantd::db
