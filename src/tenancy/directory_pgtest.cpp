// Tenant directory against a migrated master database: records are served from memory
// until invalidated or expired, per tenant id; unknown ids are not remembered.
#include "tenancy/directory.hpp"

#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "db/migrator.hpp"
#include "support/migrated_database.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::tenancy {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using test::run_coro;

class directory_test : public ::testing::Test {
 protected:
  void SetUp() override {
    test::migrate_master(master_);
    exec(
        "INSERT INTO tenants (id, name, status, database_name, schema_version) VALUES "
        "('acme', 'Acme', 'active', 'tenant_acme', 1), ('globex', 'Globex', 'suspended', 'tenant_globex', 1)");
  }

  void exec(const std::string& sql) { test::admin_exec(sql, master_.name()); }

  std::shared_ptr<db::pool> master_pool(net::any_io_executor ex) const {
    db::pool_options options;
    options.connection.conninfo = master_.conninfo();
    options.max_size = 2;
    return db::pool::create(std::move(ex), std::move(options));
  }

  test::test_database master_;
  const std::string acme_ = "acme";
  const std::string globex_ = "globex";
};

TEST_F(directory_test, finds_tenants_whatever_their_status) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    directory tenants(master_pool(ex), 60s);
    const auto acme = co_await tenants.find(acme_);
    EXPECT_TRUE(acme);
    if (!acme) co_return;
    EXPECT_EQ(acme->id, "acme");
    EXPECT_EQ(acme->name, "Acme");
    EXPECT_EQ(acme->status, tenant_status::active);
    EXPECT_EQ(acme->database_name, "tenant_acme");
    EXPECT_EQ(acme->schema_version, 1);
    const auto globex = co_await tenants.find(globex_);
    EXPECT_TRUE(globex);
    if (globex) {
      EXPECT_EQ(globex->status, tenant_status::suspended);
    }
  });
}

TEST_F(directory_test, cached_record_is_served_until_invalidated) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    directory tenants(master_pool(ex), 60s);
    auto acme = co_await tenants.find(acme_);
    auto globex = co_await tenants.find(globex_);
    EXPECT_EQ(acme->status, tenant_status::active);

    exec("UPDATE tenants SET status = 'suspended', name = 'Renamed'");
    acme = co_await tenants.find(acme_);
    EXPECT_EQ(acme->status, tenant_status::active) << "served from memory, no query";
    EXPECT_EQ(acme->name, "Acme");

    tenants.invalidate(acme_);
    acme = co_await tenants.find(acme_);
    EXPECT_EQ(acme->status, tenant_status::suspended);
    EXPECT_EQ(acme->name, "Renamed");
    globex = co_await tenants.find(globex_);
    EXPECT_EQ(globex->name, "Globex") << "invalidating one tenant keeps the others";

    tenants.clear();
    globex = co_await tenants.find(globex_);
    EXPECT_EQ(globex->name, "Renamed");
  });
}

TEST_F(directory_test, deleted_tenant_disappears_after_invalidation) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    directory tenants(master_pool(ex), 60s);
    const auto got1 = co_await tenants.find(acme_);
    EXPECT_TRUE(got1);
    exec("DELETE FROM tenants WHERE id = 'acme'");
    const auto got2 = co_await tenants.find(acme_);
    EXPECT_TRUE(got2);
    tenants.invalidate(acme_);
    const auto got3 = co_await tenants.find(acme_);
    EXPECT_FALSE(got3);
  });
}

TEST_F(directory_test, unknown_ids_are_not_remembered) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    directory tenants(master_pool(ex), 60s);
    const std::string initech = "initech";
    const auto got4 = co_await tenants.find(initech);
    EXPECT_FALSE(got4);
    exec("INSERT INTO tenants (id, name, status, database_name) VALUES ('initech', 'Initech', 'active', 'tenant_i')");
    const auto found = co_await tenants.find(initech);
    EXPECT_TRUE(found) << "a miss is not cached, so a new tenant is visible at once";
  });
}

TEST_F(directory_test, entries_expire_after_the_ttl) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    directory tenants(master_pool(ex), 200ms);
    const auto loaded = clock_type::now();
    auto acme = co_await tenants.find(acme_);
    exec("UPDATE tenants SET name = 'Later' WHERE id = 'acme'");
    acme = co_await tenants.find(acme_);
    if (clock_type::now() - loaded < 150ms) {
      EXPECT_EQ(acme->name, "Acme");
    }
    const auto deadline = clock_type::now() + 5s;
    while (acme->name != "Later" && clock_type::now() < deadline) {
      net::steady_timer timer(ex, 20ms);
      co_await timer.async_wait(net::use_awaitable);
      acme = co_await tenants.find(acme_);
    }
    EXPECT_EQ(acme->name, "Later");
    EXPECT_GE(clock_type::now() - loaded, 200ms);
  });
}

}  // namespace
}  // namespace tenantd::tenancy
