// Migration runner: file validation, applying in order, checksums, rollback of a failing
// migration, target versions and concurrent runs under an advisory lock.
#include "db/migrator.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <filesystem>
#include <fstream>

#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::db {
namespace {

namespace net = boost::asio;
using test::run_coro;

connection_options options_for(const test::test_database& db) {
  connection_options options;
  options.conninfo = db.conninfo();
  return options;
}

const std::vector<embedded_file> three_files{
    {"V002__add_email.sql", "ALTER TABLE accounts ADD COLUMN email text;"},
    {"V001__accounts.sql", "CREATE TABLE accounts (id bigint PRIMARY KEY, name text NOT NULL);"},
    {"V003__seed.sql", "INSERT INTO accounts (id, name, email) VALUES (1, 'root', 'root@example.com');"},
};

bool table_exists(const test::test_database& db, const std::string& table) {
  return test::admin_query("SELECT to_regclass('" + table + "') IS NOT NULL", db.name()).at(0).at(0) == "t";
}

std::string recorded_versions(const test::test_database& db) {
  const auto rows = test::admin_query(
      "SELECT coalesce(string_agg(version::text, ',' ORDER BY version), '') FROM schema_migrations", db.name());
  return rows.at(0).at(0);
}

TEST(migration_files, parse_sorts_and_checksums) {
  const auto migrations = parse_migrations(three_files);
  ASSERT_EQ(migrations.size(), 3u);
  EXPECT_EQ(migrations[0].version, 1);
  EXPECT_EQ(migrations[0].name, "accounts");
  EXPECT_EQ(migrations[1].name, "add_email");
  EXPECT_EQ(migrations[2].version, 3);
  const auto empty = parse_migrations({{"V001__empty.sql", ""}});
  EXPECT_EQ(empty[0].checksum, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(migration_files, rejects_malformed_names_gaps_and_duplicates) {
  EXPECT_THROW(parse_migrations({{"001__x.sql", ""}}), migration_error);
  EXPECT_THROW(parse_migrations({{"V1_x.sql", ""}}), migration_error);
  EXPECT_THROW(parse_migrations({{"V1__x.txt", ""}}), migration_error);
  EXPECT_THROW(parse_migrations({{"Vx__x.sql", ""}}), migration_error);
  EXPECT_THROW(parse_migrations({{"V1__.sql", ""}}), migration_error);
  EXPECT_THROW(parse_migrations({{"V1__a.sql", ""}, {"V3__c.sql", ""}}), migration_error);
  EXPECT_THROW(parse_migrations({{"V2__b.sql", ""}}), migration_error);
  EXPECT_THROW(parse_migrations({{"V1__a.sql", ""}, {"V001__b.sql", ""}}), migration_error);
  EXPECT_TRUE(parse_migrations({}).empty());
}

TEST(migration_files, loads_a_directory) {
  const auto dir = std::filesystem::temp_directory_path() / test::unique_name("tenantd_migrations_");
  std::filesystem::create_directories(dir);
  for (const auto& file : three_files) std::ofstream(dir / std::string(file.file_name)) << file.content;
  std::ofstream(dir / "README.md") << "not a migration";
  const auto migrations = load_migrations(dir.string());
  std::filesystem::remove_all(dir);
  ASSERT_EQ(migrations.size(), 3u);
  EXPECT_EQ(migrations[2].sql, three_files[2].content);
  EXPECT_THROW(load_migrations(dir.string()), migration_error);
}

TEST(migrator, applies_a_fresh_database_and_then_nothing) {
  test::test_database db;
  const auto migrations = parse_migrations(three_files);
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    EXPECT_EQ(co_await current_version(*conn), 0);
    const auto first = co_await apply_migrations(*conn, migrations);
    EXPECT_EQ(first.version_before, 0);
    EXPECT_EQ(first.version_after, 3);
    EXPECT_EQ(first.applied, (std::vector<int>{1, 2, 3}));
    const auto second = co_await apply_migrations(*conn, migrations);
    EXPECT_EQ(second.version_before, 3);
    EXPECT_EQ(second.version_after, 3);
    EXPECT_TRUE(second.applied.empty());
    EXPECT_EQ(co_await current_version(*conn), 3);
    auto rows = co_await conn->exec("SELECT email FROM accounts WHERE id = 1");
    EXPECT_EQ(rows.string(0, 0), "root@example.com");
  });
  EXPECT_EQ(recorded_versions(db), "1,2,3");
  const auto checksum = test::admin_query("SELECT checksum FROM schema_migrations WHERE version = 1", db.name());
  EXPECT_EQ(checksum.at(0).at(0), parse_migrations(three_files)[0].checksum);
}

TEST(migrator, a_changed_checksum_is_an_error) {
  test::test_database db;
  auto changed = three_files;
  changed[1].content = "CREATE TABLE accounts (id bigint PRIMARY KEY, name text);";
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    (void)co_await apply_migrations(*conn, parse_migrations(three_files));
    try {
      (void)co_await apply_migrations(*conn, parse_migrations(changed));
      ADD_FAILURE() << "expected a checksum mismatch";
    } catch (const migration_error& e) {
      EXPECT_NE(std::string(e.what()).find("V1 "), std::string::npos) << e.what();
    }
  });
}

TEST(migrator, a_database_newer_than_the_files_is_an_error) {
  test::test_database db;
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    (void)co_await apply_migrations(*conn, parse_migrations(three_files));
    const std::vector<embedded_file> older(three_files.begin(), three_files.begin() + 2);
    try {
      (void)co_await apply_migrations(*conn, parse_migrations(older));
      ADD_FAILURE() << "expected an unknown applied version";
    } catch (const migration_error& e) {
      EXPECT_NE(std::string(e.what()).find("newer than this binary"), std::string::npos) << e.what();
    }
  });
}

TEST(migrator, a_failing_migration_is_rolled_back_and_stops_the_run) {
  test::test_database db;
  const std::vector<embedded_file> files{
      {"V1__ok.sql", "CREATE TABLE first_table (id int);"},
      {"V2__fails.sql", "CREATE TABLE second_table (id int); SELECT no_such_column FROM first_table;"},
      {"V3__never.sql", "CREATE TABLE third_table (id int);"},
  };
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    bool thrown = false;
    try {
      (void)co_await apply_migrations(*conn, parse_migrations(files));
    } catch (const migration_error& e) {
      thrown = true;
      EXPECT_NE(std::string(e.what()).find("V2"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(thrown);
    EXPECT_FALSE(conn->broken());
    EXPECT_TRUE(conn->idle_in_no_transaction());
    EXPECT_EQ(co_await current_version(*conn), 1);
  });
  EXPECT_TRUE(table_exists(db, "first_table"));
  EXPECT_FALSE(table_exists(db, "second_table"));
  EXPECT_FALSE(table_exists(db, "third_table"));
  EXPECT_EQ(recorded_versions(db), "1");
}

TEST(migrator, honours_the_target_version) {
  test::test_database db;
  const auto migrations = parse_migrations(three_files);
  run_coro([&](auto ex) -> net::awaitable<void> {
    auto conn = co_await connection::connect(ex, options_for(db));
    migrate_options up_to_one;
    up_to_one.target_version = 1;
    const auto partial = co_await apply_migrations(*conn, migrations, up_to_one);
    EXPECT_EQ(partial.applied, (std::vector<int>{1}));
    EXPECT_EQ(partial.version_after, 1);
    const auto rest = co_await apply_migrations(*conn, migrations);
    EXPECT_EQ(rest.version_before, 1);
    EXPECT_EQ(rest.applied, (std::vector<int>{2, 3}));
  });
  EXPECT_EQ(recorded_versions(db), "1,2,3");
}

TEST(migrator, concurrent_runs_under_an_advisory_lock_apply_each_version_once) {
  test::test_database db;
  std::vector<embedded_file> files{
      {"V1__slow.sql", "CREATE TABLE counter (n int); SELECT pg_sleep(0.3); INSERT INTO counter VALUES (1);"},
      {"V2__bump.sql", "UPDATE counter SET n = n + 1;"},
  };
  const auto migrations = parse_migrations(files);
  const auto [a, b] = run_coro(
      [&](auto ex) -> net::awaitable<std::pair<migrate_report, migrate_report>> {
        using namespace net::experimental::awaitable_operators;
        auto first = co_await connection::connect(ex, options_for(db));
        auto second = co_await connection::connect(ex, options_for(db));
        migrate_options options;
        options.advisory_lock_key = 4242;
        auto [ra, rb] =
            co_await (apply_migrations(*first, migrations, options) && apply_migrations(*second, migrations, options));
        // Only this test's database: tests running beside it (ctest -j2) hold advisory locks of
        // their own in other databases of the same cluster.
        auto held = co_await first->exec(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())");
        EXPECT_EQ(held.int64(0, 0), 0);
        co_return std::pair{ra, rb};
      },
      std::chrono::seconds(60), 2);
  EXPECT_EQ(a.applied.size() + b.applied.size(), 2u);
  EXPECT_TRUE(a.applied.empty() || b.applied.empty());
  EXPECT_EQ(test::admin_query("SELECT n FROM counter", db.name()).at(0).at(0), "2");
  EXPECT_EQ(recorded_versions(db), "1,2");
}

}  // namespace
}  // namespace tenantd::db
