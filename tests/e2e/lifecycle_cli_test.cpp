// tenantd tenants ... and tenantd migrate against a running server: list/show/create/
// suspend/resume/delete/check, fleet migrations (failure, resume, canary, dry run), and
// backup/restore round trips through the CLI and the admin API.
#include "support/e2e_cli.hpp"
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <filesystem>
#include <fstream>
#include <thread>

namespace tenantd::test {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using lifecycle_cli = e2e_test;

bool database_exists(const std::string& name) {
  return !admin_query("SELECT 1 FROM pg_database WHERE datname = '" + name + "'").empty();
}

// tenants.schema_version and last_migration_error of one tenant, from master.
std::pair<int, std::string> recorded(const e2e_server& s, const std::string& id) {
  const auto rows =
      admin_query("SELECT schema_version, coalesce(last_migration_error, '') FROM tenants WHERE id = '" + id + "'",
                  s.master_database());
  if (rows.empty()) return {-1, "no row"};
  return {std::stoi(rows[0][0]), rows[0][1]};
}

bool has_nickname_column(const std::string& database) {
  return !admin_query(
              "SELECT 1 FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'",
              database)
              .empty();
}

// The built-in V001 plus V002 (adds users.nickname).
struct migrations_dir : tenant_migrations_dir {
  migrations_dir() : tenant_migrations_dir("V002__nickname.sql", "ALTER TABLE users ADD COLUMN nickname text;\n") {}
};

std::string temp_file(const std::string& stem) {
  return (fs::temp_directory_path() / (stem + "-" + unique_name("f") + ".tenantd-backup")).string();
}

TEST_F(lifecycle_cli, list_show_suspend_resume_delete_and_check) {
  const auto owner = tenant_with_owner("cli_acme");

  auto listed = run_cli(server(), {"tenants", "list"});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_NE(listed.output.find("cli_acme"), std::string::npos) << listed.output;
  auto shown = run_cli(server(), {"tenants", "show", "cli_acme"});
  ASSERT_EQ(shown.exit_code, 0) << shown.output;
  EXPECT_NE(shown.output.find("active"), std::string::npos) << shown.output;
  EXPECT_EQ(run_cli(server(), {"tenants", "show", "no_such_tenant"}).exit_code, 1);
  EXPECT_EQ(run_cli(server(), {"tenants", "show"}).exit_code, 2) << "a missing argument is a usage error";

  auto suspended = run_cli(server(), {"tenants", "suspend", "cli_acme", "--reason", "unpaid invoice"});
  ASSERT_EQ(suspended.exit_code, 0) << suspended.output;
  // Every server process hears about it within a second (LISTEN/NOTIFY); poll with a deadline.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  http_response r;
  for (;;) {
    r = get("/api/me", owner.token);
    if (r.status == 403 || std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  expect_problem(r, 403, "tenant_suspended");
  expect_problem(login_response(owner.email, owner.password, "cli_acme"), 403, "tenant_suspended");

  ASSERT_EQ(run_cli(server(), {"tenants", "resume", "cli_acme"}).exit_code, 0);
  EXPECT_EQ(login_response(owner.email, owner.password, "cli_acme").status, 200u);

  auto created = run_cli(server(), {"tenants", "create", "cli_made", "Made by the CLI"});
  ASSERT_EQ(created.exit_code, 0) << created.output;
  ASSERT_TRUE(database_exists(server().tenant_database("cli_made")));
  EXPECT_NE(created.output.find("claim token: "), std::string::npos) << created.output;
  EXPECT_EQ(run_cli(server(), {"tenants", "create", "cli_made", "Again"}).exit_code, 1) << "the id is taken";

  auto deleted = run_cli(server(), {"tenants", "delete", "cli_made"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.output;
  EXPECT_FALSE(database_exists(server().tenant_database("cli_made")));
  shown = run_cli(server(), {"tenants", "show", "cli_made"});
  EXPECT_NE(shown.output.find("deleted"), std::string::npos) << shown.output;

  auto check = run_cli(server(), {"tenants", "check"});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  const std::string orphan = server().tenant_database("orphan_db");
  admin_exec("CREATE DATABASE " + orphan);
  check = run_cli(server(), {"tenants", "check"});
  EXPECT_EQ(check.exit_code, 1) << check.output;
  EXPECT_NE(check.output.find(orphan), std::string::npos) << check.output;
  admin_exec("DROP DATABASE " + orphan);
}

TEST_F(lifecycle_cli, fleet_migration_continues_past_a_failure_and_resumes) {
  migrations_dir dir;
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back("fleet_" + std::string(i < 10 ? "0" : "") + std::to_string(i));
    create_tenant(ids.back());
  }
  const std::string broken = ids[7];
  // A conflicting column makes V002 fail in this tenant only.
  admin_exec("ALTER TABLE users ADD COLUMN nickname text", server().tenant_database(broken));

  auto dry = run_cli(server(), {"migrate", "--migrations-dir", dir.path.string(), "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_NE(dry.output.find("20 would be migrated"), std::string::npos) << dry.output;
  for (const auto& id : ids) EXPECT_EQ(recorded(server(), id).first, 1) << "--dry-run changed " << id;
  EXPECT_FALSE(has_nickname_column(server().tenant_database(ids[0]))) << "--dry-run migrated a tenant";

  auto run = run_cli(server(), {"migrate", "--migrations-dir", dir.path.string(), "--jobs", "4"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("FAILED " + broken), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("19 migrated"), std::string::npos) << run.output;
  for (const auto& id : ids) {
    const auto [version, error] = recorded(server(), id);
    if (id == broken) {
      EXPECT_EQ(version, 1);
      EXPECT_NE(error.find("nickname"), std::string::npos) << error;
    } else {
      EXPECT_EQ(version, 2) << id;
      EXPECT_EQ(error, "") << id;
      EXPECT_TRUE(has_nickname_column(server().tenant_database(id))) << id;
    }
  }

  // Fixed by hand, a re-run migrates only the one that failed.
  admin_exec("ALTER TABLE users DROP COLUMN nickname", server().tenant_database(broken));
  run = run_cli(server(), {"migrate", "--migrations-dir", dir.path.string()});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("1 migrated, 19 already up to date, 0 failed"), std::string::npos) << run.output;
  EXPECT_EQ(recorded(server(), broken), std::make_pair(2, std::string()));

  // Nothing pending: a no-op run.
  run = run_cli(server(), {"migrate", "--migrations-dir", dir.path.string()});
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("0 migrated, 20 already up to date"), std::string::npos) << run.output;
}

TEST_F(lifecycle_cli, canary_failure_stops_the_fleet_migration) {
  migrations_dir dir;
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back("canary_" + std::to_string(i));
    create_tenant(ids.back());
  }
  admin_exec("ALTER TABLE users ADD COLUMN nickname text", server().tenant_database(ids[0]));  // first in id order
  auto run = run_cli(server(), {"migrate", "--migrations-dir", dir.path.string(), "--canary", "2", "--jobs", "1"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_NE(run.output.find("canary failed"), std::string::npos) << run.output;
  EXPECT_NE(recorded(server(), ids[0]).second, "");
  for (std::size_t i = 2; i < ids.size(); ++i) {
    EXPECT_EQ(recorded(server(), ids[i]).first, 1) << ids[i] << " was migrated after the canary failed";
    EXPECT_FALSE(has_nickname_column(server().tenant_database(ids[i]))) << ids[i];
  }
  EXPECT_EQ(run_cli(server(), {"migrate", "--tenant", ids[3], "--migrations-dir", dir.path.string()}).exit_code, 0);
  EXPECT_EQ(recorded(server(), ids[3]).first, 2) << "--tenant migrates just that one";
  EXPECT_EQ(recorded(server(), ids[4]).first, 1);
}

TEST_F(lifecycle_cli, backup_and_restore_round_trip_through_the_cli) {
  const auto owner = tenant_with_owner("bk_source");
  const auto member = add_member(owner, "member.bk@example.com");
  const std::string file = temp_file("bk");

  auto backup = run_cli(server(), {"tenants", "backup", "bk_source", "--out", file});
  ASSERT_EQ(backup.exit_code, 0) << backup.output;
  ASSERT_TRUE(fs::exists(file));
  ASSERT_EQ(run_cli(server(), {"tenants", "delete", "bk_source"}).exit_code, 0);
  expect_problem(login_response(member.email, member.password, "bk_source"), 401, "invalid_credentials");

  auto restored = run_cli(server(), {"tenants", "restore", file});
  ASSERT_EQ(restored.exit_code, 0) << restored.output;
  const auto owner_again = login(owner.email, owner.password, "bk_source");
  EXPECT_EQ(owner_again.role, "owner");
  const auto member_again = login(member.email, member.password, "bk_source");
  EXPECT_EQ(member_again.user_id, member.user_id);
  const auto users = get("/api/users", owner_again.token);
  ASSERT_EQ(users.status, 200u) << users.describe();
  EXPECT_NE(users.body.find(member.email), std::string::npos) << users.body;
  EXPECT_NE(users.body.find(owner.email), std::string::npos) << users.body;

  // Into a new id beside the original: the same accounts are members of both.
  restored = run_cli(server(), {"tenants", "restore", file, "--as", "bk_copy"});
  ASSERT_EQ(restored.exit_code, 0) << restored.output;
  EXPECT_EQ(login(member.email, member.password, "bk_copy").role, "member");
  EXPECT_EQ(get("/api/users", login(owner.email, owner.password, "bk_copy").token).status, 200u);

  // Never over a live tenant; a damaged file changes nothing.
  EXPECT_EQ(run_cli(server(), {"tenants", "restore", file}).exit_code, 1);
  const std::string junk = temp_file("junk");
  std::ofstream(junk) << "not a backup";
  EXPECT_EQ(run_cli(server(), {"tenants", "restore", junk, "--as", "bk_junk"}).exit_code, 1);
  EXPECT_FALSE(database_exists(server().tenant_database("bk_junk")));
  EXPECT_EQ(recorded(server(), "bk_junk").first, -1) << "a failed restore left a row";
  auto check = run_cli(server(), {"tenants", "check"});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  fs::remove(file);
  fs::remove(junk);
}

TEST_F(lifecycle_cli, backup_and_restore_through_the_admin_api) {
  const auto owner = tenant_with_owner("api_bk");
  const auto admin = server().admin_token();

  expect_problem(post("/admin/tenants/api_bk/backup", json::object{}), 401);
  auto made = post("/admin/tenants/api_bk/backup", json::object{}, admin);
  ASSERT_EQ(made.status, 201u) << made.describe();
  const auto name = json_string(made.json(), "backup");
  ASSERT_FALSE(name.empty()) << made.body;
  EXPECT_GT(json_field(made.json(), "bytes").to_number<std::int64_t>(), 0);
  EXPECT_TRUE(is_rfc3339_utc(json_string(made.json(), "created_at"))) << made.body;
  expect_problem(post("/admin/tenants/no_such_tenant/backup", json::object{}, admin), 404);

  for (const char* bad : {"../../etc/passwd", "/etc/passwd", "..tenantd-backup", "a/b.tenantd-backup"})
    expect_problem(post("/admin/tenants/api_bk/restore", json::object{{"backup", bad}}, admin), 400, "invalid_input");
  expect_problem(post("/admin/tenants/api_bk/restore", json::object{{"backup", name}}, admin), 409, "tenant_exists");

  auto copy = post("/admin/tenants/api_bk/restore", json::object{{"backup", name}, {"as", "api_bk_copy"}}, admin);
  ASSERT_EQ(copy.status, 201u) << copy.describe();
  EXPECT_EQ(json_string(copy.json(), "id"), "api_bk_copy");
  EXPECT_EQ(login(owner.email, owner.password, "api_bk_copy").role, "owner");

  ASSERT_EQ(del("/admin/tenants/api_bk", admin).status, 200u);
  auto back = post("/admin/tenants/api_bk/restore", json::object{{"backup", name}}, admin);
  ASSERT_EQ(back.status, 201u) << back.describe();
  EXPECT_EQ(json_string(back.json(), "status"), "active");
  EXPECT_EQ(login(owner.email, owner.password, "api_bk").role, "owner");
}

}  // namespace
}  // namespace tenantd::test
