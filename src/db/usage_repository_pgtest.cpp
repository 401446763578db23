// Usage rows in master: flushes from several processes add up (ON CONFLICT), range and
// tenant filters, truncation, retention, and the database-size sample.
#include "db/usage_repository.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "support/migrated_database.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using test::migrated_master;
using test::run_coro;

std::int64_t current_minute() {
  const auto s =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  return s - s % 60;
}

usage_row row(std::string tenant, std::int64_t minute, std::int64_t requests) {
  usage_row r;
  r.tenant_id = std::move(tenant);
  r.minute = minute;
  r.counts.requests = requests;
  r.counts.errors_4xx = 1;
  r.counts.latency[2] = requests;
  r.counts.statements = 2 * requests;
  r.counts.db_time_us = 100 * requests;
  r.counts.connections_max = requests;
  r.counts.last_activity_ms = (minute + 5) * 1000;
  return r;
}

TEST(usage_repository, flushes_of_the_same_minute_add_up) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const auto minute = current_minute();
    const std::vector<usage_row> first{row("acme", minute, 3), row("globex", minute, 1)};
    co_await usage::add(*c, first);
    auto second = row("acme", minute, 4);  // another process, same minute
    second.counts.db_size_bytes = 1234;
    second.counts.last_activity_ms = (minute + 50) * 1000;
    const std::vector<usage_row> later{second};
    co_await usage::add(*c, later);

    const usage::range_query query{minute, minute + 60, std::nullopt, 100};
    const auto found = co_await usage::find(*c, query);
    EXPECT_FALSE(found.truncated);
    if (found.rows.size() != 2) {
      ADD_FAILURE() << "rows: " << found.rows.size();
      co_return;
    }
    const auto& acme = found.rows[0].counts;
    EXPECT_EQ(found.rows[0].tenant_id, "acme");
    EXPECT_EQ(found.rows[0].minute, minute);
    EXPECT_EQ(acme.requests, 7);
    EXPECT_EQ(acme.errors_4xx, 2);
    EXPECT_EQ(acme.latency[2], 7);
    EXPECT_EQ(acme.latency[0], 0);
    EXPECT_EQ(acme.statements, 14);
    EXPECT_EQ(acme.db_time_us, 700);
    EXPECT_EQ(acme.connections_max, 4) << "the larger sample";
    EXPECT_EQ(acme.db_size_bytes, 1234);
    EXPECT_EQ(acme.last_activity_ms, (minute + 50) * 1000);
    EXPECT_EQ(found.rows[1].counts.requests, 1);
    EXPECT_EQ(found.rows[1].counts.db_size_bytes, -1) << "no size sample";
  });
}

TEST(usage_repository, find_filters_by_range_and_tenant_and_bounds_rows) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const auto minute = current_minute();
    const std::vector<usage_row> rows{row("acme", minute - 120, 1), row("acme", minute - 60, 2), row("acme", minute, 3),
                                      row("globex", minute - 60, 5)};
    co_await usage::add(*c, rows);
    const usage::range_query one_minute{minute - 60, minute, std::nullopt, 100};
    auto r = co_await usage::find(*c, one_minute);
    EXPECT_EQ(r.rows.size(), 2U) << "from is inclusive, to exclusive";
    const usage::range_query acme_only{minute - 3600, minute + 60, std::string("acme"), 100};
    r = co_await usage::find(*c, acme_only);
    EXPECT_EQ(r.rows.size(), 3U);
    for (const auto& x : r.rows) EXPECT_EQ(x.tenant_id, "acme");
    const usage::range_query two_rows{minute - 3600, minute + 60, std::nullopt, 2};
    r = co_await usage::find(*c, two_rows);
    EXPECT_EQ(r.rows.size(), 2U);
    EXPECT_TRUE(r.truncated);
    const usage::range_query nobody{minute - 3600, minute + 60, std::string("nobody"), 100};
    r = co_await usage::find(*c, nobody);
    EXPECT_TRUE(r.rows.empty());
  });
}

TEST(usage_repository, purge_removes_rows_past_the_retention) {
  test::test_database db;
  run_coro([&](auto) -> net::awaitable<void> {
    auto c = co_await migrated_master(db);
    const auto minute = current_minute();
    const std::int64_t day = 86400;
    const std::vector<usage_row> rows{row("acme", minute - 31 * day, 1), row("acme", minute - 29 * day, 1),
                                      row("acme", minute, 1)};
    co_await usage::add(*c, rows);
    const auto purged = co_await usage::purge(*c, 30);
    EXPECT_EQ(purged, 1);
    const usage::range_query all{minute - 40 * day, minute + 60, std::nullopt, 100};
    const auto r = co_await usage::find(*c, all);
    EXPECT_EQ(r.rows.size(), 2U);
    const auto size = co_await usage::database_size(*c);
    EXPECT_GT(size, 1'000'000) << "an empty PostgreSQL database takes a few MB";
  });
}

}  // namespace
}  // namespace tenantd::db
