// Pool registry against the private cluster: sweep() closes connections past the idle
// timeout, a failed connect gives its budget slot back, dropping a tenant closes its pool, and
// a tenant holding a connection takes only long-idle ones from others. Waiting under the
// budget and fairness between tenants: pool_registry_budget_pgtest.cpp.
#include "tenancy/pool_registry_test_support.hpp"

namespace tenantd::tenancy {
namespace {

using namespace registry_testing;  // NOLINT(google-build-using-namespace)

TEST(pool_registry, sweep_closes_connections_idle_longer_than_the_timeout) {
  test::test_database a_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto settings = budget_settings(2, 4);
    settings.idle_timeout = 300ms;
    pool_registry registry(ex, settings);
    const auto a = registry.pool_for(tenant_on(a_db));
    {
      auto a1 = co_await a->acquire();
      auto a2 = co_await a->acquire();
    }
    const auto released = clock_type::now();
    registry.sweep();
    if (clock_type::now() - released < 250ms) {
      EXPECT_EQ(a->stats().idle, 2U) << "fresh idle connections stay";
      EXPECT_EQ(registry.pool_count(), 1U);
    }
    // Poll (sweep is what a timer calls in the server) until the idle timeout has passed.
    const auto deadline = clock_type::now() + 5s;
    while (a->stats().open > 0 && clock_type::now() < deadline) {
      co_await sleep_for(20ms);
      registry.sweep();
    }
    EXPECT_GE(clock_type::now() - released, 300ms);
    EXPECT_EQ(a->stats().open, 0U);
    EXPECT_EQ(registry.connections_in_use_or_idle(), 0U);
    const auto got5 = co_await backends_settle_at(a_db, 0);
    EXPECT_EQ(got5, 0U);
    registry.sweep();
    EXPECT_EQ(registry.pool_count(), 0U) << "an empty, unused pool is forgotten";
  });
}

TEST(pool_registry, a_failed_connect_gives_its_budget_slot_back) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    pool_registry registry(ex, budget_settings(2, 2));
    tenant_record missing;
    missing.id = "missing";
    missing.database_name = test::unique_name("missing_");
    const auto p = registry.pool_for(missing);
    for (int i = 0; i < 3; ++i) {
      bool failed = false;
      try {
        auto conn = co_await p->acquire();
      } catch (const db::unavailable_error&) {
        failed = true;
      }
      EXPECT_TRUE(failed);
      EXPECT_EQ(registry.connections_in_use_or_idle(), 0U);
      EXPECT_EQ(p->stats().open, 0U);
    }
  });
}

TEST(pool_registry, drop_closes_the_tenants_pool) {
  test::test_database a_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    pool_registry registry(ex, budget_settings(2, 4));
    const auto a = registry.pool_for(tenant_on(a_db));
    { auto a1 = co_await a->acquire(); }
    EXPECT_EQ(backend_pids(a_db).size(), 1U);
    registry.drop(pool_key_of(tenant_on(a_db)));
    EXPECT_EQ(registry.pool_count(), 0U);
    EXPECT_EQ(registry.connections_in_use_or_idle(), 0U);
    const auto got6 = co_await backends_settle_at(a_db, 0);
    EXPECT_EQ(got6, 0U);
    EXPECT_THROW((void)co_await a->acquire(), db::unavailable_error);
    const auto fresh = registry.pool_for(tenant_on(a_db));
    EXPECT_NE(fresh, a);
  });
}

// A tenant that already holds a connection does not close another tenant's freshly idle one
// (that would make busy tenants steal from each other in turn): it waits for its own, and
// takes the other's only once it has been idle for reclaim_idle_after.
TEST(pool_registry, a_tenant_holding_a_connection_takes_only_long_idle_ones) {
  test::test_database a_db, b_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto settings = budget_settings(2, 2);
    settings.reclaim_idle_after = 600ms;
    settings.acquire_timeout = 300ms;
    pool_registry registry(ex, settings);
    const auto a = registry.pool_for(tenant_on(a_db));
    const auto b = registry.pool_for(tenant_on(b_db));
    { auto a1 = co_await a->acquire(); }  // A: one idle connection, just released
    auto b1 = co_await b->acquire();      // budget now full
    bool refused = false;
    try {
      auto b2 = co_await b->acquire();
    } catch (const db::unavailable_error&) {
      refused = true;
    }
    EXPECT_TRUE(refused) << "B holds a connection: A's fresh idle one is not taken";
    EXPECT_EQ(a->stats().open, 1U);
    EXPECT_EQ(registry.evictions(), 0U);
    EXPECT_EQ(registry.starved_pools(), 0U) << "a pool with a connection is busy, not starved";

    co_await sleep_for(700ms);  // A's connection has now been idle past reclaim_idle_after
    auto b2 = co_await b->acquire();
    (void)co_await b2->exec("SELECT 1");
    EXPECT_EQ(a->stats().open, 0U);
    EXPECT_EQ(registry.evictions(), 1U);
    EXPECT_EQ(registry.connections_in_use_or_idle(), 2U);
    const auto a_left = co_await backends_settle_at(a_db, 0);
    EXPECT_EQ(a_left, 0U);

    // A tenant with no connection still takes the least recently used idle one at once.
    b2 = db::pooled_connection();
    auto a_again = co_await a->acquire();
    EXPECT_EQ(b->stats().open, 1U);
  });
}

// A tenant with no connection does not take a busy tenant's pipelined connection while it is
// merely idle between statements (the pools of a burst would otherwise close each other's
// connections in turn); once it has been idle for reclaim_recent_after, the starved tenant gets
// it from relieve_starved() without waiting for some other request to make room.
TEST(pool_registry, a_starved_tenant_takes_a_pipelined_connection_only_once_it_rests) {
  test::test_database a_db, b_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto settings = budget_settings(2, 1);
    settings.pipeline_depth = 8;
    settings.reclaim_recent_after = 300ms;
    settings.acquire_timeout = 3000ms;
    pool_registry registry(ex, settings);
    const auto a = registry.pool_for(tenant_on(a_db));
    const auto b = registry.pool_for(tenant_on(b_db));
    static constexpr db::statement one{"t_one", "SELECT 1"};
    const std::span<const db::param> none;
    (void)co_await a->exec_prepared(one, none);  // A's pipeline holds the whole budget
    EXPECT_TRUE(a->stats().pipelined);
    std::atomic<bool> b_done{false};
    const auto b_call = [&]() -> net::awaitable<void> {
      (void)co_await b->exec_prepared(one, none);
      b_done = true;
    };
    net::co_spawn(ex, b_call(), net::detached);
    co_await sleep_for(50ms);
    registry.relieve_starved();
    co_await sleep_for(50ms);
    EXPECT_FALSE(b_done.load()) << "A used its connection 100 ms ago: it is not taken";
    EXPECT_EQ(registry.evictions(), 0U);
    EXPECT_EQ(registry.starved_pools(), 1U);

    co_await sleep_for(300ms);  // A's pipeline has rested past reclaim_recent_after
    registry.relieve_starved();
    for (int i = 0; i < 200 && !b_done.load(); ++i) co_await sleep_for(10ms);
    EXPECT_TRUE(b_done.load());
    EXPECT_EQ(registry.evictions(), 1U);
    EXPECT_EQ(a->stats().open, 0U);
  });
}

// Under a full budget, the tenant whose statements ran longest ago gives up its pipelined
// connection first. A pipelined connection's statements pass neither acquire nor release: the
// pool counted them as uses, or a busy tenant served only through it would look unused since
// it was opened and lose it before a tenant that has been quiet for longer.
TEST(pool_registry, the_tenant_used_least_recently_loses_its_pipelined_connection_first) {
  test::test_database a_db, b_db, c_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto settings = budget_settings(1, 2);
    settings.pipeline_depth = 8;
    settings.reclaim_recent_after = 100ms;
    pool_registry registry(ex, settings);
    const auto a = registry.pool_for(tenant_on(a_db));
    const auto b = registry.pool_for(tenant_on(b_db));
    const auto c = registry.pool_for(tenant_on(c_db));
    static constexpr db::statement one{"t_one", "SELECT 1"};
    const std::span<const db::param> none;
    (void)co_await a->exec_prepared(one, none);  // A's pipelined connection opens first
    co_await sleep_for(50ms);
    (void)co_await b->exec_prepared(one, none);
    co_await sleep_for(50ms);
    (void)co_await a->exec_prepared(one, none);  // ... and A used it last
    co_await sleep_for(300ms);                   // both rested past reclaim_recent_after
    (void)co_await c->exec_prepared(one, none);  // the budget is full: one of them makes room
    EXPECT_EQ(a->stats().pipelines, 1U) << "A, used most recently, keeps its connection";
    EXPECT_EQ(b->stats().open, 0U) << "B, used least recently, gave its connection to C";
    EXPECT_EQ(registry.evictions(), 1U);
  });
}

// More busy tenants than budget ÷ pool size: the first tenants fill the budget, and the
// others must still be served. A pool holding more than its fair share (budget ÷ tenants
// wanting connections) gives a connection back when it releases one, although its own
// requests queue, so every tenant's requests are served within the acquire timeout.
}  // namespace
}  // namespace tenantd::tenancy
