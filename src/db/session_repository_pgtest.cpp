// Session storage bounds in master: refresh tokens trimmed per session, ended and expired
// sessions purged with their tokens, a tenant's sessions ended or deleted at once.
#include "db/session_repository.hpp"

#include <gtest/gtest.h>

#include <boost/asio/this_coro.hpp>

#include "db/master_repository.hpp"
#include "db/migrator.hpp"
#include "domain/validation.hpp"
#include "support/migrated_database.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using test::run_coro;

const std::string acme = "acme";
const std::string beta = "beta";

using test::migrated_master;

// An active tenant `id` with one account; returns the account id.
net::awaitable<std::string> tenant_with_account(connection& c, const std::string& id) {
  const std::string name = "Tenant " + id;
  const std::string database = "db_" + id;
  (void)co_await master::insert_provisioning_tenant(c, id, name, database);
  co_await master::set_tenant_status(c, id, tenant_status::active);
  const account_record a{validation::new_uuid(), id + "@example.com", "$argon2id$x", "Ada", "Lee", {}, {}};  // named
  co_await master::insert_account(c, a);
  co_return a.id;
}

net::awaitable<std::string> new_session(connection& c, const std::string& account, const std::string& tenant) {
  const auto id = validation::new_uuid();
  const std::string address = "127.0.0.1";
  co_await master::insert_session(c, id, account, tenant, 3600, address);
  co_return id;
}

net::awaitable<std::int64_t> count(connection& c, std::string_view sql) {
  auto r = co_await c.exec(sql);
  co_return r.int64(0, 0);
}

TEST(session_repository, rotation_keeps_a_bounded_number_of_used_tokens) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const auto account = co_await tenant_with_account(*c, acme);
    const auto session = co_await new_session(*c, account, acme);
    std::string previous;
    for (int i = 0; i < 20; ++i) {
      const auto hash = std::string(62, '0') + (i < 10 ? "0" : "") + std::to_string(i);
      if (!previous.empty()) co_await master::mark_refresh_token_used(*c, previous);
      co_await master::insert_refresh_token(*c, hash, session, 3600);
      (void)co_await sessions::trim_refresh_tokens(*c, session);
      previous = hash;
    }
    {
      const auto seen = co_await count(*c, "SELECT count(*) FROM refresh_tokens");
      EXPECT_EQ(seen, 1 + sessions::used_refresh_tokens_kept);
    }
    {
      const auto seen = co_await count(*c, "SELECT count(*) FROM refresh_tokens WHERE used_at IS NULL");
      EXPECT_EQ(seen, 1);
    }
    const auto newest = co_await master::lock_refresh_token(*c, previous);
    EXPECT_TRUE(newest && !newest->used);
  });
}

TEST(session_repository, purge_removes_ended_and_expired_sessions_with_their_tokens) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const auto account = co_await tenant_with_account(*c, acme);
    const auto live = co_await new_session(*c, account, acme);
    const auto ended = co_await new_session(*c, account, acme);
    const auto expired = co_await new_session(*c, account, acme);
    const auto just_ended = co_await new_session(*c, account, acme);
    const std::string token_a(64, 'a'), token_b(64, 'b');
    co_await master::insert_refresh_token(*c, token_a, ended, 3600);
    co_await master::insert_refresh_token(*c, token_b, live, 3600);
    const std::string reason = "logout";
    (void)co_await master::end_session(*c, ended, reason);
    (void)co_await master::end_session(*c, just_ended, reason);
    const std::string age_ended = "UPDATE sessions SET ended_at = now() - interval '2 days' WHERE id = '" + ended + "'";
    const std::string age_expired =
        "UPDATE sessions SET expires_at = now() - interval '2 days' WHERE id = '" + expired + "'";
    co_await c->exec(age_ended);
    co_await c->exec(age_expired);

    {
      const auto seen = co_await sessions::purge(*c, 24 * 3600, 1000);
      EXPECT_EQ(seen, 2);
    }
    {
      const auto seen = co_await count(*c, "SELECT count(*) FROM sessions");
      EXPECT_EQ(seen, 2);
    }
    {
      const std::string live_count = "SELECT count(*) FROM sessions WHERE id = '" + live + "'";
      const auto seen = co_await count(*c, live_count);
      EXPECT_EQ(seen, 1);
    }
    {
      const auto seen = co_await count(*c, "SELECT count(*) FROM refresh_tokens");
      EXPECT_EQ(seen, 1) << "the ended session's token went too";
    }
    {
      const auto seen = co_await sessions::purge(*c, 0, 1000);
      EXPECT_EQ(seen, 1) << "with no retention, the just-ended one goes";
    }
  });
}

TEST(session_repository, purge_works_in_batches) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const auto account = co_await tenant_with_account(*c, acme);
    for (int i = 0; i < 5; ++i) (void)co_await new_session(*c, account, acme);
    co_await c->exec("UPDATE sessions SET expires_at = now() - interval '1 second'");
    {
      const auto seen = co_await sessions::purge(*c, 0, 2);
      EXPECT_EQ(seen, 2);
    }
    {
      const auto seen = co_await sessions::purge(*c, 0, 2);
      EXPECT_EQ(seen, 2);
    }
    {
      const auto seen = co_await sessions::purge(*c, 0, 2);
      EXPECT_EQ(seen, 1);
    }
    {
      const auto seen = co_await sessions::purge(*c, 0, 2);
      EXPECT_EQ(seen, 0);
    }
  });
}

TEST(session_repository, a_tenants_sessions_end_or_go_together) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const auto a = co_await tenant_with_account(*c, acme);
    const auto b = co_await tenant_with_account(*c, beta);
    (void)co_await new_session(*c, a, acme);
    (void)co_await new_session(*c, a, acme);
    (void)co_await new_session(*c, b, beta);
    const std::string reason = "tenant_deleted";
    {
      const auto seen = co_await sessions::end_tenant_sessions(*c, acme, reason);
      EXPECT_EQ(seen, 2);
    }
    {
      const auto seen = co_await count(*c, "SELECT count(*) FROM sessions WHERE ended_at IS NULL");
      EXPECT_EQ(seen, 1);
    }
    {
      const auto seen = co_await sessions::delete_tenant_sessions(*c, acme);
      EXPECT_EQ(seen, 2);
    }
    {
      const auto seen = co_await count(*c, "SELECT count(*) FROM sessions");
      EXPECT_EQ(seen, 1);
    }
  });
}

}  // namespace
}  // namespace tenantd::db
