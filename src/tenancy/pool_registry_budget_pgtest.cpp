// Pool registry against the private cluster: the global connection budget — another tenant
// waits, then gets an evicted or released connection; starved tenants are served in order; a
// flooding tenant cannot starve another; the budget holds under load.
#include "tenancy/pool_registry_test_support.hpp"

namespace tenantd::tenancy {
namespace {

using namespace registry_testing;  // NOLINT(google-build-using-namespace)

TEST(pool_registry, budget_makes_another_tenant_wait_then_time_out_while_busy) {
  test::test_database a_db, b_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    pool_registry registry(ex, budget_settings(2, 2));
    const auto a = registry.pool_for(tenant_on(a_db));
    const auto b = registry.pool_for(tenant_on(b_db));
    EXPECT_EQ(registry.pool_count(), 2U);
    EXPECT_EQ(registry.pool_for(tenant_on(a_db)), a) << "one pool per database";
    EXPECT_EQ(registry.connections_in_use_or_idle(), 0U) << "pools open nothing until used";

    auto a1 = co_await a->acquire();
    auto a2 = co_await a->acquire();
    EXPECT_EQ(registry.connections_in_use_or_idle(), 2U);
    EXPECT_EQ(backend_pids(a_db).size(), 2U);

    const auto started = clock_type::now();
    bool timed_out = false;
    try {
      auto b1 = co_await b->acquire();
    } catch (const db::unavailable_error&) {
      timed_out = true;
    }
    const auto waited = clock_type::now() - started;
    EXPECT_TRUE(timed_out);
    EXPECT_GE(waited, 350ms) << "it waited for the acquire timeout";
    EXPECT_LT(waited, 60s) << "and did not hang";
    EXPECT_EQ(backend_pids(b_db).size(), 0U);
    EXPECT_EQ(backend_pids(a_db).size(), 2U) << "a busy connection is never evicted";
    EXPECT_EQ(registry.connections_in_use_or_idle(), 2U);
    EXPECT_EQ(b->stats().open, 0U);
    EXPECT_EQ(b->stats().waiters, 0U);

    // Both still work.
    (void)co_await a1->exec("SELECT 1");
    (void)co_await a2->exec("SELECT 1");
  });
}

TEST(pool_registry, idle_connections_of_another_tenant_are_evicted_least_recently_used_first) {
  test::test_database a_db, b_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    pool_registry registry(ex, budget_settings(2, 2));
    const auto a = registry.pool_for(tenant_on(a_db));
    const auto b = registry.pool_for(tenant_on(b_db));
    int first_released = 0, second_released = 0;
    {
      auto a1 = co_await a->acquire();
      auto a2 = co_await a->acquire();
      first_released = a1->backend_pid();
      second_released = a2->backend_pid();
      a1 = db::pooled_connection();  // released first: least recently used
    }
    EXPECT_EQ(a->stats().idle, 2U);
    EXPECT_EQ(backend_pids(a_db).size(), 2U);

    auto b1 = co_await b->acquire();
    (void)co_await b1->exec("SELECT 1");
    EXPECT_EQ(registry.connections_in_use_or_idle(), 2U);
    EXPECT_EQ(a->stats().open, 1U);
    const auto got1 = co_await backends_settle_at(a_db, 1);
    EXPECT_EQ(got1, 1U);
    const auto left = backend_pids(a_db);
    EXPECT_EQ(left.count(first_released), 0U) << "the least recently used connection went";
    EXPECT_EQ(left.count(second_released), 1U);
    EXPECT_EQ(backend_pids(b_db).size(), 1U);

    auto b2 = co_await b->acquire();
    EXPECT_EQ(a->stats().open, 0U);
    const auto got2 = co_await backends_settle_at(a_db, 0);
    EXPECT_EQ(got2, 0U);
    EXPECT_EQ(backend_pids(b_db).size(), 2U);
    EXPECT_EQ(registry.connections_in_use_or_idle(), 2U);

    // Once B is idle, A gets a connection back the same way.
    b1 = db::pooled_connection();
    b2 = db::pooled_connection();
    auto a_again = co_await a->acquire();
    EXPECT_EQ(b->stats().open, 1U);
    const auto got3 = co_await backends_settle_at(b_db, 1);
    EXPECT_EQ(got3, 1U);
    EXPECT_EQ(backend_pids(a_db).size(), 1U);
  });
}

// A waiter queued because the budget was full (every connection busy) is offered the first
// connection that goes idle in another tenant's pool: that one is closed for it.
TEST(pool_registry, waiter_gets_a_connection_when_another_tenant_goes_idle) {
  test::test_database a_db, b_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto settings = budget_settings(2, 2);
    settings.acquire_timeout = 10s;  // without the hand-over B would wait all of it and fail
    pool_registry registry(ex, settings);
    const auto a = registry.pool_for(tenant_on(a_db));
    const auto b = registry.pool_for(tenant_on(b_db));
    auto a1 = co_await a->acquire();
    auto a2 = co_await a->acquire();
    // Release A's connections (to idle) shortly after B starts waiting.
    net::co_spawn(
        ex,
        [&]() -> net::awaitable<void> {
          co_await sleep_for(200ms);
          a1 = db::pooled_connection();
          a2 = db::pooled_connection();
        },
        net::detached);
    bool acquired = false;
    try {
      auto b1 = co_await b->acquire();
      acquired = true;
    } catch (const db::unavailable_error&) {
    }
    EXPECT_TRUE(acquired) << "B timed out although A's connections went idle";
    EXPECT_LE(registry.connections_in_use_or_idle(), 2U) << "the budget held";
    EXPECT_EQ(registry.starved_pools(), 0U);
  });
}

// Starved pools are served in the order they ran out, each as soon as a slot frees up, and a
// slot freed by a closed (not idle) connection counts too.
TEST(pool_registry, starved_tenants_are_served_in_arrival_order_as_slots_free) {
  test::test_database a_db, b_db, c_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto settings = budget_settings(1, 1);
    settings.acquire_timeout = 10s;
    pool_registry registry(ex, settings);
    const auto a = registry.pool_for(tenant_on(a_db));
    const auto b = registry.pool_for(tenant_on(b_db));
    const auto c = registry.pool_for(tenant_on(c_db));
    auto a1 = co_await a->acquire();
    std::vector<char> order;
    std::atomic<int> done{0};
    const auto waiter = [&](std::shared_ptr<db::pool> p, char name) -> net::awaitable<void> {
      try {
        auto conn = co_await p->acquire();
        order.push_back(name);
        (void)co_await conn->exec("SELECT 1");
        co_await sleep_for(50ms);
      } catch (const db::unavailable_error&) {
        order.push_back('x');
      }
      ++done;
    };
    net::co_spawn(ex, waiter(b, 'b'), net::detached);
    co_await sleep_for(50ms);
    net::co_spawn(ex, waiter(c, 'c'), net::detached);
    co_await sleep_for(50ms);
    EXPECT_EQ(registry.starved_pools(), 2U);
    const auto started = clock_type::now();
    // Break A's connection instead of returning it idle: its slot frees when it is discarded.
    (void)co_await a1->exec("BEGIN");
    a1 = db::pooled_connection();
    while (done.load() < 2 && clock_type::now() - started < 30s) co_await sleep_for(10ms);
    EXPECT_EQ(order, (std::vector<char>{'b', 'c'}));
    EXPECT_EQ(done.load(), 2) << "both waiters were served before their acquire timeout";
    EXPECT_LE(registry.connections_in_use_or_idle(), 1U);
  });
}

// A tenant flooding its pool queues behind its own per-tenant cap; another tenant's requests
// go on at once.
TEST(pool_registry, a_flooding_tenant_cannot_starve_another) {
  test::test_database a_db, b_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto settings = budget_settings(2, 4);
    settings.acquire_timeout = 300ms;
    pool_registry registry(ex, settings);
    const auto a = registry.pool_for(tenant_on(a_db));
    const auto b = registry.pool_for(tenant_on(b_db));
    std::atomic<int> a_ok{0}, a_refused{0}, running{0};
    for (int i = 0; i < 30; ++i) {
      ++running;
      net::co_spawn(
          ex,
          [&]() -> net::awaitable<void> {
            try {
              auto conn = co_await a->acquire();
              (void)co_await conn->exec("SELECT pg_sleep(0.2)");
              ++a_ok;
            } catch (const db::unavailable_error&) {
              ++a_refused;
            }
            --running;
          },
          net::detached);
    }
    co_await sleep_for(20ms);
    EXPECT_LE(a->stats().open, 2U) << "the per-tenant cap";
    // Queued behind A's 28 waiters, B would time out (300 ms) like they do: it is served.
    for (int i = 0; i < 5; ++i) {
      auto conn = co_await b->acquire();
      (void)co_await conn->exec("SELECT 1");
    }
    while (running.load() > 0) co_await sleep_for(20ms);
    EXPECT_GT(a_ok.load(), 0);
    EXPECT_GT(a_refused.load(), 0) << "A's excess waiters got a timely refusal";
    EXPECT_EQ(a_ok.load() + a_refused.load(), 30);
  });
}

TEST(pool_registry, evicts_from_the_least_recently_used_tenant) {
  test::test_database a_db, b_db, c_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    pool_registry registry(ex, budget_settings(2, 3));
    const auto a = registry.pool_for(tenant_on(a_db));
    const auto b = registry.pool_for(tenant_on(b_db));
    const auto c = registry.pool_for(tenant_on(c_db));
    { auto a1 = co_await a->acquire(); }
    co_await sleep_for(5ms);  // distinct last_used times
    { auto c1 = co_await c->acquire(); }
    auto b1 = co_await b->acquire();
    EXPECT_EQ(registry.connections_in_use_or_idle(), 3U);
    auto b2 = co_await b->acquire();  // budget full: A was used least recently
    EXPECT_EQ(a->stats().open, 0U);
    EXPECT_EQ(c->stats().open, 1U);
    const auto got4 = co_await backends_settle_at(a_db, 0);
    EXPECT_EQ(got4, 0U);
    EXPECT_EQ(backend_pids(c_db).size(), 1U);
    EXPECT_EQ(backend_pids(b_db).size(), 2U);
    EXPECT_EQ(registry.connections_in_use_or_idle(), 3U);
  });
}

TEST(pool_registry, total_open_never_exceeds_the_budget_under_load) {
  test::test_database a_db, b_db, c_db;
  std::size_t peak = 0;
  run_coro(
      [&](auto ex) -> net::awaitable<void> {
        auto settings = budget_settings(2, 3);
        settings.acquire_timeout = 5s;
        pool_registry registry(ex, settings);
        std::vector<std::shared_ptr<db::pool>> pools{
            registry.pool_for(tenant_on(a_db)), registry.pool_for(tenant_on(b_db)), registry.pool_for(tenant_on(c_db))};
        std::atomic<int> done{0};
        std::atomic<int> failed{0};
        auto worker = [&](std::size_t which) -> net::awaitable<void> {
          for (int round = 0; round < 6; ++round) {
            try {
              auto conn = co_await pools[which % pools.size()]->acquire();
              (void)co_await conn->exec("SELECT pg_sleep(0.005)");
            } catch (const db::unavailable_error&) {
              ++failed;
            }
          }
          ++done;
        };
        for (std::size_t i = 0; i < 9; ++i) net::co_spawn(ex, worker(i), net::detached);
        const auto deadline = clock_type::now() + 60s;
        // The client-side books, sampled while the workers run. (The server's own view lags
        // by the time a closed backend takes to exit, so it is checked once things settle.)
        while (done.load() < 9 && clock_type::now() < deadline) {
          std::size_t open = 0;
          for (const auto& p : pools) open += p->stats().open;
          peak = std::max({peak, open, registry.connections_in_use_or_idle()});
          co_await sleep_for(1ms);
        }
        EXPECT_EQ(done.load(), 9);
        EXPECT_EQ(failed.load(), 0);
        std::size_t server_side = 0;
        const auto settle = clock_type::now() + 5s;
        do {
          server_side = backend_pids(a_db).size() + backend_pids(b_db).size() + backend_pids(c_db).size();
          if (server_side <= 3) break;
          co_await sleep_for(10ms);
        } while (clock_type::now() < settle);
        EXPECT_LE(server_side, 3U);
        EXPECT_LE(registry.connections_in_use_or_idle(), 3U);
      },
      std::chrono::seconds(90), 2);
  EXPECT_GT(peak, 0U);
  EXPECT_LE(peak, 3U);
}

TEST(pool_registry, more_busy_tenants_than_budget_over_pool_size_all_get_served) {
  constexpr std::size_t tenants = 4;
  constexpr int workers_per_tenant = 3;  // each tenant could use its whole pool
  constexpr int late_rounds = 25;
  std::vector<std::unique_ptr<test::test_database>> dbs;
  for (std::size_t i = 0; i < tenants; ++i) dbs.push_back(std::make_unique<test::test_database>());
  std::atomic<int> failed{0};
  std::atomic<int> late_served{0};
  std::size_t peak = 0;
  run_coro(
      [&](auto ex) -> net::awaitable<void> {
        auto settings = budget_settings(3, 6);  // budget ÷ pool size = 2 tenants
        // The subject is who gets connections, not how fast a connect is: on a loaded test
        // machine a connect can take longer than the default 2 s. The first tenants stay busy
        // until the others are done, so without giving back the others would never be served.
        settings.acquire_timeout = 5s;
        settings.reclaim_idle_after = 1000ms;  // the default
        pool_registry registry(ex, settings);
        std::vector<std::shared_ptr<db::pool>> pools;
        pools.reserve(dbs.size());
        for (const auto& d : dbs) pools.push_back(registry.pool_for(tenant_on(*d)));
        std::atomic<int> late_done{0};
        std::atomic<int> early_done{0};
        const auto deadline = clock_type::now() + 60s;
        const auto query = [&](std::size_t which) -> net::awaitable<bool> {
          try {
            auto conn = co_await pools[which]->acquire();
            (void)co_await conn->exec("SELECT pg_sleep(0.01)");
            co_return true;
          } catch (const db::unavailable_error&) {
            ++failed;
            co_return false;
          }
        };
        const auto early = [&](std::size_t which) -> net::awaitable<void> {
          while (late_done.load() < 2 * workers_per_tenant && clock_type::now() < deadline) (void)co_await query(which);
          ++early_done;
        };
        const auto late = [&](std::size_t which) -> net::awaitable<void> {
          for (int round = 0; round < late_rounds; ++round)
            if (co_await query(which)) ++late_served;
          ++late_done;
        };
        // The first two tenants fill the budget before the others arrive.
        for (int w = 0; w < workers_per_tenant; ++w) {
          net::co_spawn(ex, early(0), net::detached);
          net::co_spawn(ex, early(1), net::detached);
        }
        while (registry.connections_in_use_or_idle() < 6) co_await sleep_for(1ms);
        for (std::size_t t = 2; t < tenants; ++t)
          for (int w = 0; w < workers_per_tenant; ++w) net::co_spawn(ex, late(t), net::detached);
        // Both kinds finish (the callers above live in this frame until then).
        while (early_done.load() < 2 * workers_per_tenant || late_done.load() < 2 * workers_per_tenant) {
          peak = std::max(peak, registry.connections_in_use_or_idle());
          co_await sleep_for(2ms);
        }
      },
      std::chrono::seconds(90), 2);
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(late_served.load(), 2 * workers_per_tenant * late_rounds);
  EXPECT_LE(peak, 6U);
}

}  // namespace
}  // namespace tenantd::tenancy

namespace tenantd::tenancy {
namespace {

using namespace registry_testing;  // NOLINT(google-build-using-namespace)

// Two "servers" (the same cluster under two names): each has its own budget, and a pool is
// keyed by (server, database), so the same database name on two servers is two pools.
TEST(pool_registry, the_budget_holds_per_server) {
  test::test_database a_db, b_db, c_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    const auto settings = budget_settings(2, 2);
    int lookups = 0;
    pool_registry registry(ex, settings, [&](const std::string& server) -> std::optional<db::server_endpoint> {
      ++lookups;
      if (server != "second") return std::nullopt;
      return db::server_endpoint{settings.host, settings.port, settings.user, settings.password, {}, {}};
    });
    auto on_second = [](tenant_record t) {
      t.db_server = "second";
      return t;
    };
    const auto a = registry.pool_for(tenant_on(a_db));             // main
    const auto b = registry.pool_for(on_second(tenant_on(b_db)));  // second
    EXPECT_NE(registry.pool_for(on_second(tenant_on(a_db))), a) << "(server, database) is the key";
    EXPECT_EQ(registry.pool_count(), 3U);
    EXPECT_GE(lookups, 1);

    // main's budget is full...
    auto a1 = co_await a->acquire();
    auto a2 = co_await a->acquire();
    EXPECT_EQ(registry.connections_in_use_or_idle("main"), 2U);
    // ...which costs the second server nothing.
    auto b1 = co_await b->acquire();
    auto b2 = co_await b->acquire();
    EXPECT_EQ(registry.connections_in_use_or_idle("second"), 2U);
    EXPECT_EQ(registry.connections_in_use_or_idle(), 4U);
    // And the second's budget is full in turn: another tenant there waits and times out.
    const auto c = registry.pool_for(on_second(tenant_on(c_db)));
    bool timed_out = false;
    try {
      auto c1 = co_await c->acquire();
    } catch (const db::unavailable_error&) {
      timed_out = true;
    }
    EXPECT_TRUE(timed_out) << "the second server's budget held";
    EXPECT_EQ(backend_pids(c_db).size(), 0U);

    tenant_record unknown = tenant_on(c_db);
    unknown.db_server = "nowhere";
    EXPECT_THROW((void)registry.pool_for(unknown), db::unavailable_error);
  });
}

}  // namespace
}  // namespace tenantd::tenancy
