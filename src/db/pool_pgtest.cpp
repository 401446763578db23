// Connection pool against the private cluster: bounds, FIFO waiting with a deadline,
// discarding broken or mid-transaction connections, budgets, idle closing. Connect failures,
// back-off, slow connects, pipelining and shutdown: pool_connect_pgtest.cpp.
#include "db/pool_test_support.hpp"

namespace tenantd::db {
namespace {

using namespace pool_testing;  // NOLINT(google-build-using-namespace)

TEST(pool, never_opens_more_than_max_size_under_concurrency) {
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

TEST(pool, reuses_a_released_connection) {
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

TEST(pool, acquire_times_out_when_exhausted) {
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
    EXPECT_GE(elapsed, 300ms) << "not before the acquire timeout";
    EXPECT_LT(elapsed, 60s) << "and it did not hang";
    EXPECT_EQ(p->stats().waiters, 0u);
  });
}

TEST(pool, waiters_are_served_in_arrival_order) {
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

TEST(pool, a_broken_connection_is_discarded) {
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

TEST(pool, a_backend_killed_while_held_is_not_returned_to_idle) {
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

TEST(pool, a_backend_killed_while_idle_is_not_handed_out) {
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

TEST(pool, a_connection_left_in_a_transaction_is_discarded) {
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

TEST(pool, a_waiter_gets_a_new_connection_when_a_held_one_is_discarded) {
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

TEST(pool, a_refused_budget_slot_makes_acquire_wait_and_time_out) {
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

TEST(pool, a_waiter_refused_by_the_budget_gets_a_released_connection) {
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

TEST(pool, closes_idle_connections_by_age) {
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

}  // namespace
}  // namespace tenantd::db
