// Pool registry with one shard per I/O thread, against the private cluster: a tenant has a
// pool per shard, the budget and the eviction of idle connections span the shards, a starved
// pool of one shard is served by a release in another, drop() and sweep() reach every shard,
// and the metrics add the shards up. The test thread plays each I/O thread in turn
// (io_thread::set_index), which is how pool_for picks a shard.
#include "tenancy/pool_registry_test_support.hpp"

#include <boost/asio/io_context.hpp>
#include <thread>
#include <vector>

#include "domain/io_thread.hpp"

namespace tenantd::tenancy {
namespace {

using namespace registry_testing;  // NOLINT(google-build-using-namespace)

// The pool of `tenant` in shard `shard`, as I/O thread `shard` would get it.
std::shared_ptr<db::pool> pool_on(pool_registry& registry, std::size_t shard, const tenant_record& tenant) {
  io_thread::set_index(shard);
  auto p = registry.pool_for(tenant);
  io_thread::set_index(0);
  return p;
}

// A tenant whose pool is never used: building a pool connects nothing.
tenant_record unused_tenant() {
  tenant_record t;
  t.id = "unused";
  t.name = "unused";
  t.status = tenant_status::active;
  t.database_name = "never_connected";
  return t;
}

TEST(pool_registry_shards, a_tenant_has_one_pool_per_shard) {
  const auto a = unused_tenant();
  net::io_context io;
  pool_registry registry({io.get_executor(), io.get_executor()}, budget_settings(2, 4));
  EXPECT_EQ(registry.shard_count(), 2U);
  const auto on0 = pool_on(registry, 0, a);
  const auto on1 = pool_on(registry, 1, a);
  EXPECT_NE(on0, on1) << "each thread has its own pool of the tenant";
  EXPECT_EQ(pool_on(registry, 0, a), on0);
  EXPECT_EQ(pool_on(registry, 1, a), on1);
  EXPECT_EQ(registry.pool_count(), 1U) << "pools are counted per tenant database";
}

TEST(pool_registry_shards, the_budget_spans_shards_and_a_third_connect_waits_for_a_release) {
  test::test_database a_db, b_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto settings = budget_settings(2, 2);
    settings.acquire_timeout = 10s;  // without the hand-over the third would wait all of it and fail
    pool_registry registry({ex, ex}, settings);
    const auto a0 = pool_on(registry, 0, tenant_on(a_db));
    const auto a1 = pool_on(registry, 1, tenant_on(a_db));
    const auto b1 = pool_on(registry, 1, tenant_on(b_db));
    auto first = co_await a0->acquire();
    auto second = co_await a1->acquire();
    EXPECT_EQ(registry.connections_in_use_or_idle(), 2U);
    EXPECT_EQ(backend_pids(a_db).size(), 2U);

    bool third_done = false;
    net::co_spawn(
        ex,
        [&]() -> net::awaitable<void> {
          auto third = co_await b1->acquire();
          (void)co_await third->exec("SELECT 1");
          third_done = true;
        },
        net::detached);
    co_await sleep_for(300ms);
    EXPECT_FALSE(third_done) << "the budget of 2 holds across the two shards";
    EXPECT_EQ(backend_pids(b_db).size(), 0U);
    EXPECT_EQ(registry.starved_pools(), 1U);

    first = db::pooled_connection();  // idle in shard 0: closed for the starved pool of shard 1
    const auto deadline = clock_type::now() + 5s;
    while (!third_done && clock_type::now() < deadline) co_await sleep_for(10ms);
    EXPECT_TRUE(third_done) << "shard 1's waiter got the slot freed in shard 0";
    EXPECT_LE(registry.connections_in_use_or_idle(), 2U) << "the budget held";
    EXPECT_EQ(registry.starved_pools(), 0U);
    const auto left = co_await backends_settle_at(a_db, 1);
    EXPECT_EQ(left, 1U);
  });
}

TEST(pool_registry_shards, an_idle_connection_in_another_shard_is_evicted_for_a_tenant_with_none) {
  test::test_database a_db, b_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    pool_registry registry({ex, ex}, budget_settings(2, 2));
    const auto a0 = pool_on(registry, 0, tenant_on(a_db));
    const auto b1 = pool_on(registry, 1, tenant_on(b_db));
    {
      auto x = co_await a0->acquire();
      auto y = co_await a0->acquire();
    }
    EXPECT_EQ(a0->stats().idle, 2U);
    auto b = co_await b1->acquire();
    (void)co_await b->exec("SELECT 1");
    EXPECT_EQ(a0->stats().open, 1U) << "one of shard 0's idle connections made room";
    EXPECT_EQ(registry.evictions(), 1U);
    EXPECT_EQ(registry.connections_in_use_or_idle(), 2U);
  });
}

// The stall bench (a) hit when fairness counted a tenant's connections in every shard: the
// tenant's pool on thread 1 holds nothing, its pool on thread 0 holds the whole budget in use.
// Thread 1's waiter must be queued as starved and get the next connection thread 0 releases.
TEST(pool_registry_shards, a_pool_is_starved_even_when_its_tenant_holds_connections_on_another_thread) {
  test::test_database a_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto settings = budget_settings(4, 4);
    settings.acquire_timeout = 10s;  // without the hand-over the waiter would wait all of it and fail
    pool_registry registry({ex, ex}, settings);
    const auto a1 = pool_on(registry, 1, tenant_on(a_db));  // created while the budget had room
    const auto a0 = pool_on(registry, 0, tenant_on(a_db));
    EXPECT_NE(a0, a1);
    std::vector<db::pooled_connection> held;
    for (int i = 0; i < 4; ++i) held.push_back(co_await a0->acquire());
    EXPECT_EQ(registry.connections_in_use_or_idle(), 4U);

    bool served = false;
    net::co_spawn(
        ex,
        [&]() -> net::awaitable<void> {
          auto c = co_await a1->acquire();
          (void)co_await c->exec("SELECT 1");
          served = true;
        },
        net::detached);
    co_await sleep_for(300ms);
    EXPECT_FALSE(served) << "the budget is full";
    EXPECT_EQ(registry.starved_pools(), 1U) << "thread 1's pool holds nothing: it is starved, not busy";

    held.pop_back();  // thread 0's pool holds more than its share (4 / 2 pools): it yields this one
    const auto deadline = clock_type::now() + 5s;
    while (!served && clock_type::now() < deadline) co_await sleep_for(10ms);
    EXPECT_TRUE(served) << "thread 1's waiter got the connection thread 0 gave back";
    EXPECT_LE(registry.connections_in_use_or_idle(), 4U) << "the budget held";
    held.clear();
  });
}

TEST(pool_registry_shards, with_room_in_the_budget_each_thread_uses_its_own_pool) {
  test::test_database a_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    pool_registry registry({ex, ex}, budget_settings(4, 10));
    const auto a0 = pool_on(registry, 0, tenant_on(a_db));
    { auto c = co_await a0->acquire(); }
    EXPECT_EQ(a0->stats().open, 1U);
    EXPECT_NE(pool_on(registry, 1, tenant_on(a_db)), a0) << "1 of 10 connections used: thread 1 opens its own";
  });
}

TEST(pool_registry_shards, with_the_budget_full_a_thread_borrows_its_tenants_pool_of_another_thread) {
  test::test_database a_db, b_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    pool_registry registry({ex, ex}, budget_settings(4, 3));
    const auto a0 = pool_on(registry, 0, tenant_on(a_db));
    const auto b0 = pool_on(registry, 0, tenant_on(b_db));
    {
      auto x = co_await a0->acquire();
      auto y = co_await a0->acquire();
      auto z = co_await b0->acquire();
    }
    EXPECT_EQ(registry.connections_in_use_or_idle(), 3U);
    const auto a1 = pool_on(registry, 1, tenant_on(a_db));
    EXPECT_EQ(a1, a0) << "thread 1 has no connection of a and the budget is full: it uses thread 0's pool";
    auto c = co_await a1->acquire();
    (void)co_await c->exec("SELECT 1");
    EXPECT_EQ(registry.evictions(), 0U) << "no other tenant's connection was closed for it";
    EXPECT_EQ(registry.connections_in_use_or_idle(), 3U);
    EXPECT_EQ(pool_on(registry, 1, tenant_on(b_db)), b0);
  });
}

TEST(pool_registry_shards, drop_and_sweep_reach_every_shard_and_metrics_add_them_up) {
  test::test_database a_db, b_db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto settings = budget_settings(2, 8);
    settings.idle_timeout = 200ms;
    pool_registry registry({ex, ex}, settings);
    const auto a0 = pool_on(registry, 0, tenant_on(a_db));
    const auto a1 = pool_on(registry, 1, tenant_on(a_db));
    const auto b0 = pool_on(registry, 0, tenant_on(b_db));
    const auto b1 = pool_on(registry, 1, tenant_on(b_db));
    {
      auto x = co_await a0->acquire();
      auto y = co_await a1->acquire();
      auto z = co_await a1->acquire();
      auto w = co_await b1->acquire();
    }
    EXPECT_EQ(registry.pool_count(), 2U);
    EXPECT_EQ(registry.connections_in_use_or_idle(), 4U);
    const auto busiest = registry.busiest(1);
    EXPECT_EQ(busiest.size(), 1U);
    if (!busiest.empty()) {
      EXPECT_EQ(busiest[0].database, a_db.name());
      EXPECT_EQ(busiest[0].stats.open, 3U) << "1 in shard 0 + 2 in shard 1";
      EXPECT_EQ(busiest[0].stats.idle, 3U);
    }

    registry.drop(a_db.name());
    const auto gone = co_await backends_settle_at(a_db, 0);
    EXPECT_EQ(gone, 0U) << "drop closed the tenant's connections in both shards";
    EXPECT_EQ(registry.pool_count(), 1U);
    EXPECT_NE(pool_on(registry, 0, tenant_on(a_db)), a0) << "a new pool after the drop";
    EXPECT_NE(pool_on(registry, 1, tenant_on(a_db)), a1);

    // b's idle connection in shard 1 is closed by a sweep, then every empty pool is forgotten.
    const auto deadline = clock_type::now() + 5s;
    while ((b1->stats().open > 0 || registry.pool_count() > 0) && clock_type::now() < deadline) {
      co_await sleep_for(20ms);
      registry.sweep();
    }
    EXPECT_EQ(b1->stats().open, 0U);
    EXPECT_EQ(registry.connections_in_use_or_idle(), 0U);
    EXPECT_EQ(registry.pool_count(), 0U) << "sweep forgot the unused pools of both shards";
    const auto left = co_await backends_settle_at(b_db, 0);
    EXPECT_EQ(left, 0U);
  });
}

#ifndef NDEBUG
TEST(pool_registry_shards_death, a_shard_used_from_a_second_thread_fails_an_assertion) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto a = unused_tenant();
  net::io_context io;
  pool_registry registry({io.get_executor(), io.get_executor()}, budget_settings(2, 4));
  (void)pool_on(registry, 1, a);
  EXPECT_DEATH(std::thread([&] { (void)pool_on(registry, 1, a); }).join(), "used from two threads");
}
#endif

}  // namespace
}  // namespace tenantd::tenancy
