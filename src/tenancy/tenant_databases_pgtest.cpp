// tenant_databases with a usage recorder, against the private cluster: statements through the
// runner and on an exclusive connection are counted for the tenant, the latter once the
// connection goes back; a connection given back is no longer observed.
#include "tenancy/tenant_databases.hpp"

#include <gtest/gtest.h>

#include <boost/asio/this_coro.hpp>

#include <vector>

#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::tenancy {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

constexpr db::statement select_one{"td_select_one", "SELECT 1"};

tenant_connection_settings cluster_settings() {
  const auto& pg = test::pg_cluster();
  tenant_connection_settings s;
  s.host = pg.host;
  s.port = std::to_string(pg.port);
  s.user = pg.app_user;
  s.password = pg.app_password;
  s.pool_size = 4;  // the runner may keep one as its shared pipelined connection
  s.max_connections = 8;
  s.acquire_timeout = 2s;
  return s;
}

tenant_record tenant_on(const test::test_database& db) {
  tenant_record t;
  t.id = "metered_co";
  t.name = db.name();
  t.status = tenant_status::active;
  t.database_name = db.name();
  return t;
}

std::int64_t statements_of(const std::vector<usage_row>& rows, const std::string& tenant) {
  std::int64_t n = 0;
  for (const auto& r : rows)
    if (r.tenant_id == tenant) n += r.counts.statements;
  return n;
}

TEST(tenant_databases, statements_are_counted_for_the_tenant) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    pool_registry pools(ex, cluster_settings());
    directory tenants(nullptr, 30s);  // only asked by id, which this test never does
    usage_recorder usage(100);
    tenant_databases databases(tenants, pools, &usage);
    const auto tenant = tenant_on(db);

    {
      auto conn = co_await databases.acquire(tenant);
      co_await conn->exec("SELECT 1");
      co_await conn->exec_prepared(select_one, {});
      EXPECT_EQ(usage.entries(), 0U) << "an exclusive connection records when it goes back";
    }
    auto rows = usage.take();
    EXPECT_EQ(statements_of(rows, "metered_co"), 2);
    EXPECT_EQ(rows.size(), 1U);
    if (rows.size() == 1) {
      EXPECT_GT(rows[0].counts.db_time_us, 0);
      EXPECT_EQ(rows[0].counts.requests, 0) << "requests are the dispatcher's to count";
    }

    const auto runner = databases.runner(tenant);
    for (int i = 0; i < 3; ++i) (void)co_await runner->exec_prepared(select_one, {});
    rows = usage.take();
    EXPECT_EQ(statements_of(rows, "metered_co"), 3);

    // Assigning over a held connection records its statements first.
    auto held = co_await databases.acquire(tenant);
    co_await held->exec("SELECT 1");
    held = co_await databases.acquire(tenant);
    EXPECT_EQ(statements_of(usage.snapshot(), "metered_co"), 1);
    held = {};
    (void)usage.take();

    // The pool's own use of a connection a tenant_connection held before is not observed.
    { auto idle = co_await databases.acquire(tenant); }
    {
      // Every exclusive connection the pool has open was held through tenant_databases above.
      const auto pool = pools.pool_for(tenant);
      std::vector<db::pooled_connection> raw;
      for (int i = 0; i < 3; ++i) raw.push_back(co_await pool->acquire());
      for (auto& conn : raw) co_await conn->exec("SELECT 1");
    }
    EXPECT_TRUE(usage.take().empty()) << "statements outside tenant_databases were counted";
    pools.shutdown();
  });
}

TEST(tenant_databases, without_a_recorder_nothing_is_wrapped) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    pool_registry pools(ex, cluster_settings());
    directory tenants(nullptr, 30s);
    tenant_databases databases(tenants, pools);
    const auto tenant = tenant_on(db);
    EXPECT_EQ(databases.runner(tenant), std::static_pointer_cast<db::statement_runner>(pools.pool_for(tenant)))
        << "with usage off, the runner is the pool itself";
    auto conn = co_await databases.acquire(tenant);
    const auto r = co_await conn->exec("SELECT 41 + 1");
    EXPECT_EQ(r.int64(0, 0), 42);
    conn = {};
    pools.shutdown();
  });
}

}  // namespace
}  // namespace tenantd::tenancy
