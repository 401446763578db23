// The per-account login-failure limit in master: attempts in flight count, failures count
// for 15 minutes and an hour, released attempts are forgotten, old rows are purged.
#include "db/login_attempts.hpp"

#include <gtest/gtest.h>

#include <boost/asio/this_coro.hpp>

#include "db/migrator.hpp"
#include "support/migrated_database.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using test::run_coro;

const std::string victim = "victim";
const std::string bystander = "bystander";

using test::migrated_master;

TEST(login_attempts, attempts_in_flight_count_against_the_limit) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const login_attempts::limits limit{3, 100};
    std::vector<std::int64_t> admitted;
    for (int i = 0; i < 5; ++i) {
      const auto r = co_await login_attempts::reserve(*c, victim, limit);
      if (r.id) admitted.push_back(*r.id);
    }
    EXPECT_EQ(admitted.size(), 3U);
    if (admitted.size() != 3) co_return;
    const auto refused = co_await login_attempts::reserve(*c, victim, limit);
    EXPECT_FALSE(refused.id);
    EXPECT_EQ(refused.retry_after, 1) << "only attempts in flight block: retry soon";
    const auto other = co_await login_attempts::reserve(*c, bystander, limit);
    EXPECT_TRUE(other.id) << "another account is not limited";

    co_await login_attempts::release(*c, admitted[0]);  // the right password
    const auto again = co_await login_attempts::reserve(*c, victim, limit);
    EXPECT_TRUE(again.id) << "a released attempt frees its place";
    co_await login_attempts::record_failure(*c, admitted[1]);
    co_await login_attempts::record_failure(*c, admitted[2]);
    if (again.id) co_await login_attempts::record_failure(*c, *again.id);
    const auto locked = co_await login_attempts::reserve(*c, victim, limit);
    EXPECT_FALSE(locked.id);
    EXPECT_GT(locked.retry_after, 14 * 60);
    EXPECT_LE(locked.retry_after, 15 * 60);
  });
}

TEST(login_attempts, the_hourly_cap_blocks_for_up_to_an_hour) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const login_attempts::limits limit{1000, 2};
    for (int i = 0; i < 2; ++i) {
      const auto r = co_await login_attempts::reserve(*c, victim, limit);
      EXPECT_TRUE(r.id);
      if (r.id) co_await login_attempts::record_failure(*c, *r.id);
    }
    const auto locked = co_await login_attempts::reserve(*c, victim, limit);
    EXPECT_FALSE(locked.id);
    EXPECT_GT(locked.retry_after, 59 * 60);
    EXPECT_LE(locked.retry_after, 60 * 60);
  });
}

TEST(login_attempts, attempts_of_a_dead_process_stop_counting_after_their_lease) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const login_attempts::limits limit{1, 100};
    const auto first = co_await login_attempts::reserve(*c, victim, limit);
    EXPECT_TRUE(first.id);
    const auto blocked = co_await login_attempts::reserve(*c, victim, limit);
    EXPECT_FALSE(blocked.id);
    co_await c->exec("UPDATE login_attempts SET started_at = started_at - interval '2 minutes'");
    const auto after = co_await login_attempts::reserve(*c, victim, limit);
    EXPECT_TRUE(after.id);
  });
}

TEST(login_attempts, purge_removes_rows_older_than_an_hour) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const login_attempts::limits limit{10, 100};
    for (const std::string key : {"old", "old", "new"}) {
      const auto r = co_await login_attempts::reserve(*c, key, limit);
      if (r.id) co_await login_attempts::record_failure(*c, *r.id);
    }
    const std::string_view age_attempts =
        "UPDATE login_attempts SET started_at = now() - interval '2 hours', failed_at = now() - interval '2 hours' "
        "WHERE account_key = 'old'";
    co_await c->exec(age_attempts);
    co_await c->exec("UPDATE login_guards SET touched_at = now() - interval '2 hours' WHERE account_key = 'old'");
    const auto purged = co_await login_attempts::purge(*c, 1000);
    EXPECT_EQ(purged, 3);  // two attempts and one guard
    const auto left =
        co_await c->exec("SELECT account_key FROM login_attempts UNION ALL SELECT account_key FROM login_guards");
    EXPECT_EQ(left.rows(), 2);
  });
}

}  // namespace
}  // namespace tenantd::db
