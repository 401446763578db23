// Access cache against a migrated master database: a cached answer is served without a
// query until an invalidation (member, tenant, account, session, "*") or the TTL; every
// key includes the tenant.
#include "tenancy/access_cache.hpp"

#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <ctime>
#include <vector>

#include "db/migrator.hpp"
#include "domain/validation.hpp"
#include "support/migrated_database.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::tenancy {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using test::run_coro;

// A migrated master with two active tenants, one account that is a member of both
// (t1: member, t2: admin) and one live session per tenant.
class access_cache_test : public ::testing::Test {
 protected:
  void SetUp() override {
    test::migrate_master(master_);
    exec("INSERT INTO tenants (id, name, status, database_name) VALUES ('" + t1_ + "', 'One', 'active', 'db_one'), ('" +
         t2_ + "', 'Two', 'active', 'db_two')");
    exec("INSERT INTO accounts (id, email, password_hash, first_name, last_name) VALUES ('" + account_ +
         "', 'ada@example.com', 'x', 'Ada', 'Lovelace')");
    exec("INSERT INTO memberships (tenant_id, account_id, role) VALUES ('" + t1_ + "', '" + account_ +
         "', 'member'), ('" + t2_ + "', '" + account_ + "', 'admin')");
    exec("INSERT INTO sessions (id, account_id, tenant_id, expires_at) VALUES ('" + session_ + "', '" + account_ +
         "', '" + t1_ + "', now() + interval '1 hour')");
  }

  void exec(const std::string& sql) { test::admin_exec(sql, master_.name()); }

  std::shared_ptr<db::pool> master_pool(net::any_io_executor ex) const {
    db::pool_options options;
    options.connection.conninfo = master_.conninfo();
    options.max_size = 2;
    return db::pool::create(std::move(ex), std::move(options));
  }

  test::test_database master_;
  const std::string t1_ = "tenant_one";
  const std::string t2_ = "tenant_two";
  const std::string account_ = validation::new_uuid();
  const std::string session_ = validation::new_uuid();
};

TEST_F(access_cache_test, loads_the_access_row_on_a_miss) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    access_cache cache(master_pool(ex), 60s, 60s);
    EXPECT_EQ(cache.size(), 0U);
    const auto row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_TRUE(row);
    if (!row) co_return;
    EXPECT_EQ(row->tenant_status, tenant_status::active);
    EXPECT_EQ(row->role, std::optional<std::string>("member"));
    EXPECT_TRUE(row->session_live);
    EXPECT_EQ(cache.size(), 1U);

    const std::string missing = "no_such_tenant";
    const auto none = co_await cache.lookup(missing, account_, session_);
    EXPECT_FALSE(none);
  });
}

TEST_F(access_cache_test, cached_answer_is_served_until_the_member_is_invalidated) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    access_cache cache(master_pool(ex), 60s, 60s);
    auto row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("member"));

    exec("UPDATE memberships SET role = 'viewer' WHERE tenant_id = '" + t1_ + "'");
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("member")) << "served from memory, no query";

    cache.invalidate(invalidation::of_member(t2_, account_));  // another tenant's membership
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("member"));

    cache.invalidate(invalidation::of_member(t1_, account_));
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("viewer"));

    // Removal: the membership is gone.
    exec("DELETE FROM memberships WHERE tenant_id = '" + t1_ + "'");
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_TRUE(row->role);
    cache.invalidate(invalidation::of_member(t1_, account_));
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_FALSE(row->role);
  });
}

TEST_F(access_cache_test, tenant_invalidation_covers_every_entry_of_that_tenant_only) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    access_cache cache(master_pool(ex), 60s, 60s);
    (void)co_await cache.lookup(t1_, account_, session_);
    (void)co_await cache.lookup(t2_, account_, session_);
    EXPECT_EQ(cache.size(), 2U);

    exec("UPDATE tenants SET status = 'suspended'");
    auto row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->tenant_status, tenant_status::active);

    cache.invalidate(invalidation::of_tenant(t1_));
    EXPECT_EQ(cache.size(), 1U);
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->tenant_status, tenant_status::suspended);
    row = co_await cache.lookup(t2_, account_, session_);
    EXPECT_EQ(row->tenant_status, tenant_status::active) << "the other tenant's entry was kept";

    // A tenant id that is a prefix of another must not match it.
    exec("UPDATE tenants SET status = 'active'");
    cache.invalidate(invalidation::of_tenant("tenant_t"));
    row = co_await cache.lookup(t2_, account_, session_);
    EXPECT_EQ(row->tenant_status, tenant_status::active);
    EXPECT_EQ(cache.size(), 2U);
  });
}

TEST_F(access_cache_test, session_account_and_wildcard_invalidations) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    access_cache cache(master_pool(ex), 60s, 60s);
    auto row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_TRUE(row->session_live);

    exec("UPDATE sessions SET ended_at = now(), end_reason = 'logout'");
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_TRUE(row->session_live);
    cache.invalidate(invalidation::of_session(session_));
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_FALSE(row->session_live);

    exec("UPDATE memberships SET role = 'owner' WHERE tenant_id = '" + t1_ + "'");
    cache.invalidate(invalidation::of_account(validation::new_uuid()));
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("member"));
    cache.invalidate(invalidation::of_account(account_));
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("owner"));

    exec("UPDATE memberships SET role = 'viewer' WHERE tenant_id = '" + t1_ + "'");
    (void)co_await cache.lookup(t2_, account_, session_);
    cache.invalidate(invalidation::everything());
    EXPECT_EQ(cache.size(), 0U);
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("viewer"));

    exec("UPDATE memberships SET role = 'admin' WHERE tenant_id = '" + t1_ + "'");
    cache.clear();
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("admin"));
  });
}

TEST_F(access_cache_test, keys_include_the_tenant) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    access_cache cache(master_pool(ex), 60s, 60s);
    // The same account and session id in two tenants are two separate entries.
    const auto in_t1 = co_await cache.lookup(t1_, account_, session_);
    const auto in_t2 = co_await cache.lookup(t2_, account_, session_);
    EXPECT_EQ(cache.size(), 2U);
    EXPECT_EQ(in_t1->role, std::optional<std::string>("member"));
    EXPECT_EQ(in_t2->role, std::optional<std::string>("admin"));
    EXPECT_TRUE(in_t1->session_live);
    EXPECT_FALSE(in_t2->session_live) << "the session belongs to tenant one";

    // Served from memory per tenant: each answer stays its own.
    exec("UPDATE memberships SET role = 'viewer'");
    const auto again_t1 = co_await cache.lookup(t1_, account_, session_);
    const auto again_t2 = co_await cache.lookup(t2_, account_, session_);
    EXPECT_EQ(again_t1->role, std::optional<std::string>("member"));
    EXPECT_EQ(again_t2->role, std::optional<std::string>("admin"));

    cache.invalidate(invalidation::of_member(t1_, account_));
    EXPECT_EQ(cache.size(), 1U);
    const auto fresh_t1 = co_await cache.lookup(t1_, account_, session_);
    const auto still_t2 = co_await cache.lookup(t2_, account_, session_);
    EXPECT_EQ(fresh_t1->role, std::optional<std::string>("viewer"));
    EXPECT_EQ(still_t2->role, std::optional<std::string>("admin"));
  });
}

TEST_F(access_cache_test, entries_expire_after_the_ttl) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    access_cache cache(master_pool(ex), 200ms, 200ms);
    const auto loaded = clock_type::now();
    auto row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("member"));
    exec("UPDATE memberships SET role = 'viewer' WHERE tenant_id = '" + t1_ + "'");
    row = co_await cache.lookup(t1_, account_, session_);
    if (clock_type::now() - loaded < 150ms) {
      EXPECT_EQ(row->role, std::optional<std::string>("member"));
    }
    const auto deadline = clock_type::now() + 5s;
    while (row->role != std::optional<std::string>("viewer") && clock_type::now() < deadline) {
      net::steady_timer timer(ex, 20ms);
      co_await timer.async_wait(net::use_awaitable);
      row = co_await cache.lookup(t1_, account_, session_);
    }
    EXPECT_EQ(row->role, std::optional<std::string>("viewer"));
    EXPECT_GE(clock_type::now() - loaded, 200ms) << "not reloaded before the TTL";
  });
}

TEST_F(access_cache_test, entries_live_long_only_while_invalidations_arrive) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    access_cache cache(master_pool(ex), 60s, 200ms);
    cache.set_listening(true);
    auto row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("member"));
    exec("UPDATE memberships SET role = 'viewer' WHERE tenant_id = '" + t1_ + "'");
    net::steady_timer timer(ex, 300ms);
    co_await timer.async_wait(net::use_awaitable);
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("member")) << "listening: the long TTL applies";

    cache.set_listening(false);  // the listener lost its connection: a change may be missed
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_EQ(row->role, std::optional<std::string>("viewer")) << "the entry is older than the short TTL";
  });
}

TEST_F(access_cache_test, a_session_that_expires_while_cached_is_not_live) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    std::int64_t now = std::time(nullptr);
    access_cache cache(master_pool(ex), 60s, 60s, [&] { return now; });
    cache.set_listening(true);
    auto row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_TRUE(row->session_live);
    EXPECT_NEAR(static_cast<double>(row->session_expires_at), static_cast<double>(now + 3600), 5.0);

    // The session runs out (no invalidation is sent for that): the next hit past its expiry
    // goes back to the database.
    exec("UPDATE sessions SET expires_at = now() - interval '1 second'");
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_TRUE(row->session_live) << "before its expiry the cached answer stands";
    now += 3601;
    row = co_await cache.lookup(t1_, account_, session_);
    EXPECT_FALSE(row->session_live);
  });
}

TEST_F(access_cache_test, recording_a_migration_notifies_every_server) {
  run_coro([&](auto ex) -> net::awaitable<void> {
    db::connection_options options;
    options.conninfo = master_.conninfo();
    auto listener = co_await db::connection::connect(ex, options);
    co_await listener->exec(std::string("LISTEN ") + db::master::invalidation_channel);
    {
      auto pool = master_pool(ex);
      auto conn = co_await pool->acquire();
      co_await db::master::set_tenant_schema_version(*conn, t1_, 7, std::nullopt);
    }
    std::vector<db::notification> arrived;
    for (int i = 0; i < 10 && arrived.empty(); ++i) arrived = co_await listener->wait_notifications(500ms);
    EXPECT_EQ(arrived.size(), 1U);
    if (!arrived.empty()) {
      EXPECT_EQ(arrived[0].payload, "tenant:" + t1_);
    }
  });
}

}  // namespace
}  // namespace tenantd::tenancy
