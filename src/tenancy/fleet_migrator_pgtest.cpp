// The fleet migrator against a fresh master database: tenants behind get the new migration
// and master records their version; a tenant whose migration fails keeps its version, gets
// its error recorded, and does not stop the others; a failed canary stops the run; a dry
// run changes nothing; tenants that are up to date, deleted or unknown are reported as such.
#include "tenancy/fleet_migrator.hpp"

#include <gtest/gtest.h>

#include <boost/asio/this_coro.hpp>

#include <string>
#include <vector>

#include "db/master_migrations.hpp"
#include "support/pg_cluster.hpp"
#include "support/run_coro.hpp"

namespace tenantd::tenancy {
namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using test::run_coro;

// The built-in tenant migrations and a second one that creates a table.
std::vector<db::migration> migrations_up_to(int version) {
  static const std::string v2 = "CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL);";
  auto files = db::embedded_tenant_migrations();
  if (version >= 2) files.push_back({"V002__notes.sql", v2});
  return db::parse_migrations(files);
}

bool has_notes_table(const std::string& database) {
  return test::admin_query("SELECT to_regclass('public.notes') IS NOT NULL", database).at(0).at(0) == "t";
}

// Records what the migrator reports as it goes.
struct recorder : fleet_observer {
  std::vector<std::string> events;
  void master_migrated(const db::migrate_report& r) override {
    events.push_back("master " + std::to_string(r.version_after));
  }
  void template_ready(const std::string&, const std::string&, int version) override {
    events.push_back("template " + std::to_string(version));
  }
  void started(std::size_t pending, std::size_t up_to_date, int latest, unsigned) override {
    events.push_back("started " + std::to_string(pending) + " " + std::to_string(up_to_date) + " " +
                     std::to_string(latest));
  }
  void tenant_finished(const tenant_outcome& o) override { events.push_back("tenant " + o.tenant); }
  void canary_failed(std::size_t left) override { events.push_back("canary failed " + std::to_string(left)); }
};

// A migrated master database with tenants at version 1 (made by the provisioner), under a
// unique database prefix; every database with that prefix is dropped at the end.
class fleet_migrator_test : public ::testing::Test {
 protected:
  void SetUp() override {
    run_coro([&](auto ex) -> net::awaitable<void> {
      db::connection_options options;
      options.conninfo = master_.conninfo();
      auto conn = co_await db::connection::connect(ex, options);
      (void)co_await db::migrate_master(*conn);
    });
  }

  void TearDown() override {
    for (const auto& row : test::admin_query("SELECT datname FROM pg_database")) {
      if (row.at(0).starts_with(prefix_)) {
        test::admin_exec("ALTER DATABASE " + row.at(0) + " WITH IS_TEMPLATE false");
        test::admin_exec("DROP DATABASE IF EXISTS " + row.at(0) + " WITH (FORCE)");
      }
    }
  }

  fleet_settings settings() const {
    const auto& pg = test::pg_cluster();
    fleet_settings s;
    s.master.conninfo = master_.conninfo();
    s.master.label = "master";
    s.provisioning.database_prefix = prefix_;
    s.provisioning.master_user = pg.app_user;
    s.provisioning.tenant.host = pg.host;
    s.provisioning.tenant.port = std::to_string(pg.port);
    s.provisioning.tenant.user = pg.app_user;
    s.provisioning.tenant.password = pg.app_password;
    return s;
  }

  // Creates tenants at version 1 (the built-in migrations).
  void create_tenants(const std::vector<std::string>& ids) {
    run_coro([&](auto ex) -> net::awaitable<void> {
      db::pool_options options;
      options.connection.conninfo = master_.conninfo();
      options.max_size = 2;
      auto master = db::pool::create(ex, options);
      provisioner p(master, settings().provisioning, migrations_up_to(1));
      const provisioner::ready_step no_step;
      for (const auto& id : ids) {
        const std::string name = "Tenant " + id;
        const auto created = co_await p.create(id, name, no_step);
        EXPECT_TRUE(created) << id;
      }
      master->shutdown();
    });
  }

  fleet_report run(const fleet_options& options, recorder& seen) {
    fleet_migrator migrator(settings(), migrations_up_to(2));
    return run_coro([&](auto) -> net::awaitable<fleet_report> { co_return co_await migrator.run(options, seen); },
                    120s);
  }

  // schema_version and last_migration_error of a tenant in master.
  std::vector<std::string> master_row(const std::string& id) const {
    return test::admin_query(
               "SELECT schema_version, coalesce(last_migration_error, '') FROM tenants WHERE id = '" + id + "'",
               master_.name())
        .at(0);
  }

  const tenant_outcome* outcome_of(const fleet_report& report, const std::string& id) const {
    for (const auto& o : report.outcomes)
      if (o.tenant == id) return &o;
    return nullptr;
  }

  std::string database(const std::string& id) const { return prefix_ + id; }

  test::test_database master_;
  std::string prefix_ = test::unique_name("f") + "_";
};

TEST_F(fleet_migrator_test, tenants_behind_are_migrated_and_recorded_in_master) {
  create_tenants({"alpha", "bravo", "charlie"});
  test::admin_exec("UPDATE tenants SET status = 'suspended' WHERE id = 'bravo'", master_.name());
  test::admin_exec("UPDATE tenants SET status = 'deleted' WHERE id = 'charlie'", master_.name());

  recorder seen;
  fleet_options options;
  options.jobs = 2;
  const auto report = run(options, seen);

  EXPECT_EQ(report.latest, 2);
  ASSERT_EQ(report.outcomes.size(), 2U) << "a deleted tenant is not part of the fleet";
  for (const std::string id : {"alpha", "bravo"}) {
    SCOPED_TRACE(id);
    const auto* o = outcome_of(report, id);
    ASSERT_NE(o, nullptr);
    EXPECT_EQ(o->result, tenant_result::migrated);
    EXPECT_EQ(o->detail, "version 1 -> 2");
    EXPECT_TRUE(has_notes_table(database(id)));
    EXPECT_EQ(master_row(id), (std::vector<std::string>{"2", ""}));
  }
  EXPECT_FALSE(has_notes_table(database("charlie")));
  EXPECT_EQ(master_row("charlie").at(0), "1");
  // The template refuses connections between runs; let the superuser look inside.
  test::admin_exec("ALTER DATABASE " + database("template") + " WITH ALLOW_CONNECTIONS true");
  EXPECT_TRUE(has_notes_table(database("template"))) << "new tenants start from the migrated template";
  ASSERT_EQ(seen.events.size(), 5U);
  EXPECT_TRUE(seen.events[0].starts_with("master ")) << seen.events[0];
  EXPECT_EQ(seen.events[1], "template 2");
  EXPECT_EQ(seen.events[2], "started 2 0 2");

  // Run again: everyone is up to date and nothing is migrated.
  recorder again;
  const auto second = run(options, again);
  ASSERT_EQ(second.outcomes.size(), 2U);
  for (const auto& o : second.outcomes) {
    EXPECT_EQ(o.result, tenant_result::up_to_date) << o.tenant;
    EXPECT_EQ(o.detail, "version 2") << o.tenant;
  }
  EXPECT_EQ(again.events.back(), "started 0 2 2");
}

TEST_F(fleet_migrator_test, a_failing_tenant_keeps_its_version_and_the_others_go_on) {
  create_tenants({"alpha", "bravo", "charlie"});
  // bravo already has a table of that name, so V002 fails there.
  test::admin_exec("CREATE TABLE notes (x int)", database("bravo"));

  recorder seen;
  fleet_options options;
  options.jobs = 1;
  const auto report = run(options, seen);

  const auto* failed = outcome_of(report, "bravo");
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->result, tenant_result::failed);
  EXPECT_NE(failed->detail.find("\"notes\" already exists"), std::string::npos) << failed->detail;
  EXPECT_TRUE(failed->detail.ends_with("(at version 1)")) << failed->detail;
  const auto row = master_row("bravo");
  EXPECT_EQ(row.at(0), "1");
  EXPECT_NE(row.at(1).find("already exists"), std::string::npos) << row.at(1);
  for (const std::string id : {"alpha", "charlie"}) {
    ASSERT_NE(outcome_of(report, id), nullptr) << id;
    EXPECT_EQ(outcome_of(report, id)->result, tenant_result::migrated) << id;
    EXPECT_EQ(master_row(id).at(0), "2") << id;
  }
}

TEST_F(fleet_migrator_test, a_failed_canary_leaves_the_rest_untouched) {
  create_tenants({"alpha", "bravo", "charlie"});
  test::admin_exec("CREATE TABLE notes (x int)", database("alpha"));  // the first in id order

  recorder seen;
  fleet_options options;
  options.jobs = 4;
  options.canary = 1;
  const auto report = run(options, seen);

  ASSERT_EQ(report.outcomes.size(), 3U);
  EXPECT_EQ(outcome_of(report, "alpha")->result, tenant_result::failed);
  for (const std::string id : {"bravo", "charlie"}) {
    SCOPED_TRACE(id);
    ASSERT_NE(outcome_of(report, id), nullptr);
    EXPECT_EQ(outcome_of(report, id)->result, tenant_result::skipped);
    EXPECT_EQ(outcome_of(report, id)->detail, "canary failed");
    EXPECT_FALSE(has_notes_table(database(id)));
    EXPECT_EQ(master_row(id).at(0), "1");
  }
  EXPECT_EQ(seen.events.back(), "canary failed 2");
}

TEST_F(fleet_migrator_test, a_canary_that_passes_lets_the_rest_run) {
  create_tenants({"alpha", "bravo", "charlie"});
  recorder seen;
  fleet_options options;
  options.jobs = 1;
  options.canary = 2;
  const auto report = run(options, seen);
  ASSERT_EQ(report.outcomes.size(), 3U);
  for (const auto& o : report.outcomes) EXPECT_EQ(o.result, tenant_result::migrated) << o.tenant;
  EXPECT_EQ(seen.events.back(), "tenant charlie") << "the rest run after the canaries, in id order";
}

TEST_F(fleet_migrator_test, a_dry_run_changes_nothing) {
  create_tenants({"alpha", "bravo"});
  test::admin_exec("UPDATE tenants SET schema_version = 2 WHERE id = 'bravo'", master_.name());
  const auto template_before =
      test::admin_query("SELECT count(*) FROM pg_database WHERE datname = '" + database("template") + "'").at(0).at(0);

  recorder seen;
  fleet_options options;
  options.dry_run = true;
  const auto report = run(options, seen);

  EXPECT_TRUE(seen.events.empty()) << seen.events.front();
  const auto* alpha = outcome_of(report, "alpha");
  ASSERT_NE(alpha, nullptr);
  EXPECT_EQ(alpha->result, tenant_result::would_migrate);
  EXPECT_EQ(alpha->from_version, 1);
  EXPECT_EQ(alpha->pending, (std::vector<std::string>{"V2__notes"}));
  ASSERT_NE(outcome_of(report, "bravo"), nullptr);
  EXPECT_EQ(outcome_of(report, "bravo")->result, tenant_result::up_to_date) << "master says it is";
  EXPECT_FALSE(has_notes_table(database("alpha")));
  EXPECT_EQ(master_row("alpha").at(0), "1");
  EXPECT_EQ(
      test::admin_query("SELECT count(*) FROM pg_database WHERE datname = '" + database("template") + "'").at(0).at(0),
      template_before);
}

TEST_F(fleet_migrator_test, only_the_tenants_asked_for_and_unknown_ones_fail) {
  create_tenants({"alpha", "bravo"});
  test::admin_exec("UPDATE tenants SET status = 'deleted' WHERE id = 'bravo'", master_.name());
  recorder seen;
  fleet_options options;
  options.tenants = {"alpha", "bravo", "nobody"};
  const auto report = run(options, seen);

  ASSERT_EQ(report.outcomes.size(), 3U);
  for (const std::string id : {"bravo", "nobody"}) {
    ASSERT_NE(outcome_of(report, id), nullptr) << id;
    EXPECT_EQ(outcome_of(report, id)->result, tenant_result::failed) << id;
    EXPECT_EQ(outcome_of(report, id)->detail, "not an active or suspended tenant") << id;
  }
  EXPECT_EQ(outcome_of(report, "alpha")->result, tenant_result::migrated);
  EXPECT_FALSE(has_notes_table(database("bravo")));
}

TEST_F(fleet_migrator_test, a_tenant_in_the_middle_of_a_move_is_skipped_and_said_so) {
  create_tenants({"alpha", "bravo"});
  // bravo is being copied to another server: a migration now would change one copy only.
  test::admin_exec(
      "INSERT INTO db_servers (name, host, port) VALUES ('b2', '127.0.0.1', 1); "
      "INSERT INTO tenant_moves (id, tenant_id, from_server, to_server, database_name, state) VALUES "
      "('6f1d0c3e-8a4b-4f5e-9c2d-1b3a5e7f9d0c', 'bravo', 'main', 'b2', '" +
          database("bravo") + "', 'catching_up')",
      master_.name());
  recorder seen;
  const auto report = run(fleet_options{}, seen);
  const auto* alpha = outcome_of(report, "alpha");
  ASSERT_NE(alpha, nullptr);
  EXPECT_EQ(alpha->result, tenant_result::migrated);
  const auto* bravo = outcome_of(report, "bravo");
  ASSERT_NE(bravo, nullptr);
  EXPECT_EQ(bravo->result, tenant_result::skipped);
  EXPECT_NE(bravo->detail.find("being moved to b2"), std::string::npos) << bravo->detail;
  EXPECT_FALSE(has_notes_table(database("bravo")));
  EXPECT_EQ(master_row("bravo").at(0), "1");

  // Once the move is over, the next run migrates it.
  test::admin_exec("UPDATE tenant_moves SET state = 'aborted'", master_.name());
  recorder again;
  const auto after = run(fleet_options{}, again);
  const auto* bravo_after = outcome_of(after, "bravo");
  ASSERT_NE(bravo_after, nullptr);
  EXPECT_EQ(bravo_after->result, tenant_result::migrated);
}

}  // namespace
}  // namespace tenantd::tenancy
