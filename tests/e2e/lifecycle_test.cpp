// Tenant lifecycle through the admin API (suspend, resume, delete), template provisioning,
// and crash safety: the server is SIGKILLed after each provisioning step, restarted, and
// must leave neither an orphan database nor an active tenant without its database.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <csignal>
#include <sys/wait.h>
#include <thread>

namespace tenantd::test {
namespace {

namespace json = boost::json;
using lifecycle = e2e_test;

bool database_exists(const std::string& name) {
  return !admin_query("SELECT 1 FROM pg_database WHERE datname = '" + name + "'").empty();
}

std::string tenant_status(const e2e_server& s, const std::string& id) {
  const auto rows = admin_query("SELECT status FROM tenants WHERE id = '" + id + "'", s.master_database());
  return rows.empty() ? "" : rows[0][0];
}

header_list admin(const e2e_server& s) { return bearer(s.admin_token()); }

TEST_F(lifecycle, admin_api_requires_the_admin_token) {
  expect_problem(get("/admin/tenants"), 401, "unauthorized");
  expect_problem(get("/admin/tenants", "not-the-admin-token-at-all-0123456789"), 401, "unauthorized");
  const auto owner = tenant_with_owner("acme_corp");
  expect_problem(get("/admin/tenants", owner.token), 401, "unauthorized");
  const auto listed = get("/admin/tenants", {}, admin(server()));
  ASSERT_EQ(listed.status, 200u) << listed.describe();
  const auto body = listed.json();
  const auto& items = body.at("items").as_array();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(json_string(items[0], "id"), "acme_corp");
  EXPECT_EQ(json_string(items[0], "status"), "active");
  expect_problem(get("/admin/tenants/nope_nope", {}, admin(server())), 404, "tenant_not_found");
}

TEST_F(lifecycle, admin_tenant_shows_server_members_sessions_and_backups) {
  const auto owner = tenant_with_owner("acme_corp");
  create_tenant("acme_corp2", "Acme Two");  // its id starts with the other's: none of its files may show
  const auto listed = get("/admin/tenants", {}, admin(server()));
  ASSERT_EQ(listed.status, 200u) << listed.describe();
  const auto all = listed.json();
  for (const auto& item : all.at("items").as_array()) EXPECT_EQ(json_string(item, "server"), "main");
  const auto live_sessions = [this] {
    return std::stoll(admin_query("SELECT count(*) FROM sessions WHERE tenant_id = 'acme_corp' AND ended_at IS NULL",
                                  server().master_database())
                          .at(0)
                          .at(0));
  };

  auto shown = get("/admin/tenants/acme_corp", {}, admin(server()));
  ASSERT_EQ(shown.status, 200u) << shown.describe();
  auto body = shown.json();
  EXPECT_EQ(json_string(body, "server"), "main");
  EXPECT_EQ(body.at("members").as_int64(), 1);
  const auto sessions_before = body.at("sessions").as_int64();
  EXPECT_GE(sessions_before, 1) << "the owner is logged in";
  EXPECT_EQ(sessions_before, live_sessions());
  EXPECT_TRUE(body.at("backups").as_array().empty());

  // A second member who logs in; the owner logs out (that session ends); two backups.
  add_member(owner, "second@example.com");
  const auto backup = post("/admin/tenants/acme_corp/backup", json::object{}, {}, admin(server()));
  ASSERT_EQ(backup.status, 201u) << backup.describe();
  ASSERT_EQ(post("/admin/tenants/acme_corp2/backup", json::object{}, {}, admin(server())).status, 201u);
  const auto with_member = get("/admin/tenants/acme_corp", {}, admin(server())).json().at("sessions").as_int64();
  EXPECT_GT(with_member, sessions_before);
  ASSERT_EQ(post("/auth/logout", json::object{}, owner.token).status, 204u);

  shown = get("/admin/tenants/acme_corp", {}, admin(server()));
  ASSERT_EQ(shown.status, 200u) << shown.describe();
  body = shown.json();
  EXPECT_EQ(body.at("members").as_int64(), 2);
  EXPECT_EQ(body.at("sessions").as_int64(), with_member - 1) << "the owner's session ended";
  EXPECT_EQ(body.at("sessions").as_int64(), live_sessions());
  const auto& backups = body.at("backups").as_array();
  ASSERT_EQ(backups.size(), 1u) << "acme_corp2's backup must not be listed for acme_corp";
  EXPECT_EQ(json_string(backups[0], "backup"), json_string(backup.json(), "backup"));
  EXPECT_EQ(backups[0].at("bytes").as_int64(), backup.json().at("bytes").as_int64());
  EXPECT_EQ(json_string(backups[0], "modified_at").size(), 20u) << "UTC, to the second: 2026-12-06T03:15:00Z";
  expect_problem(get("/admin/tenants/acme_corp", owner.token), 401, "unauthorized");
}

TEST_F(lifecycle, suspend_blocks_logins_and_tokens_at_once_and_resume_restores_them) {
  const auto owner = tenant_with_owner("acme_corp");
  ASSERT_EQ(get("/api/users", owner.token).status, 200u);

  const auto suspended =
      post("/admin/tenants/acme_corp/suspend", json::object{{"reason", "unpaid"}}, {}, admin(server()));
  ASSERT_EQ(suspended.status, 200u) << suspended.describe();
  EXPECT_EQ(json_string(suspended.json(), "status"), "suspended");
  expect_problem(get("/api/users", owner.token), 403, "tenant_suspended");
  expect_problem(login_response(owner.email, owner.password), 403, "tenant_suspended");
  expect_problem(register_response("acme_corp", "new.person@example.com"), 403, "tenant_suspended");
  expect_problem(post("/admin/tenants/acme_corp/suspend", json::object{}, {}, admin(server())), 409);

  const auto resumed = post("/admin/tenants/acme_corp/resume", json::object{}, {}, admin(server()));
  ASSERT_EQ(resumed.status, 200u) << resumed.describe();
  EXPECT_EQ(get("/api/users", owner.token).status, 200u);
  EXPECT_EQ(login_response(owner.email, owner.password).status, 200u);
}

TEST_F(lifecycle, delete_drops_the_database_and_never_reuses_the_id) {
  const auto owner = tenant_with_owner("acme_corp");
  const auto db = server().tenant_database("acme_corp");
  ASSERT_TRUE(database_exists(db));
  const auto deleted = del("/admin/tenants/acme_corp", {}, admin(server()));
  ASSERT_EQ(deleted.status, 200u) << deleted.describe();
  EXPECT_EQ(json_string(deleted.json(), "status"), "deleted");
  EXPECT_FALSE(database_exists(db));
  expect_problem(get("/api/users", owner.token), 401, "unauthorized");
  expect_problem(login_response(owner.email, owner.password), 401, "invalid_credentials");
  expect_problem(create_tenant_response("acme_corp", "Someone Else"), 409, "tenant_exists");
  EXPECT_FALSE(database_exists(db)) << "a refused create must not make a database";
}

TEST_F(lifecycle, tenants_are_copies_of_a_schema_only_template) {
  tenant_with_owner("acme_corp");
  const auto tmpl = server().tenant_db_prefix() + "template";
  const auto flags = admin_query("SELECT datistemplate, datallowconn FROM pg_database WHERE datname = '" + tmpl + "'");
  ASSERT_EQ(flags.size(), 1u) << "no template database " << tmpl;
  EXPECT_EQ(flags[0][0], "t");
  EXPECT_EQ(flags[0][1], "f") << "the template must not accept connections while serving";
  admin_exec("ALTER DATABASE " + tmpl + " WITH ALLOW_CONNECTIONS true");
  const auto rows = admin_query("SELECT count(*) FROM users", tmpl);
  admin_exec("ALTER DATABASE " + tmpl + " WITH ALLOW_CONNECTIONS false");
  EXPECT_EQ(rows.at(0).at(0), "0") << "the template holds schema only";
  const auto users = admin_query("SELECT count(*) FROM users", server().tenant_database("acme_corp"));
  EXPECT_EQ(users.at(0).at(0), "1") << "only the owner";
  const auto version =
      admin_query("SELECT schema_version FROM tenants WHERE id = 'acme_corp'", server().master_database());
  const auto applied = admin_query("SELECT max(version) FROM schema_migrations", server().tenant_database("acme_corp"));
  EXPECT_EQ(version.at(0).at(0), applied.at(0).at(0));
}

class crash_during_provisioning : public e2e_test, public ::testing::WithParamInterface<const char*> {};

TEST_P(crash_during_provisioning, restart_leaves_no_orphan_and_the_id_can_be_created_again) {
  const std::string point = GetParam();
  server().stop();
  server().start({{"TENANTD_FAULT_POINT", point}});
  ASSERT_TRUE(server().wait_ready());
  {
    const std::string body =
        json::serialize(json::object{{"id", "acme_corp"},
                                     {"name", "Acme"},
                                     {"owner", json::object{{"email", "owner@acme.example"},
                                                            {"password", std::string(default_password)},
                                                            {"first_name", "Olive"},
                                                            {"last_name", "Owner"}}}});
    const std::string request =
        "POST /tenants HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    http_client doomed(server().port());
    const auto exchange = doomed.exchange_raw(request, std::chrono::seconds(20));
    EXPECT_TRUE(exchange.closed) << "the connection should die with the process at " << point;
    EXPECT_TRUE(exchange.bytes.empty()) << "the server answered although it should have died at " << point << ": "
                                        << exchange.bytes;
  }
  for (int i = 0; i < 100 && server().running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_FALSE(server().running()) << "fault point " << point << " did not kill the server";

  server().start({{"TENANTD_FAULT_POINT", std::nullopt}});
  ASSERT_TRUE(server().wait_ready());
  const auto db = server().tenant_database("acme_corp");
  const auto status = tenant_status(server(), "acme_corp");
  EXPECT_TRUE(status.empty() || status == "active") << "after restart the tenant is '" << status << "'";
  EXPECT_EQ(database_exists(db), status == "active") << "database and tenant row disagree after " << point;

  http_client fresh(server().port());
  const json::object again{{"id", "acme_corp"},
                           {"name", "Acme"},
                           {"owner", json::object{{"email", "owner@acme.example"},
                                                  {"password", std::string(default_password)},
                                                  {"first_name", "Olive"},
                                                  {"last_name", "Owner"}}}};
  const auto created = fresh.send_json("POST", "/tenants", again);
  EXPECT_EQ(created.status, 201u) << created.describe();
  EXPECT_TRUE(database_exists(db));
  const auto login =
      fresh.send_json("POST", "/auth/login",
                      json::object{{"email", "owner@acme.example"}, {"password", std::string(default_password)}});
  EXPECT_EQ(login.status, 200u) << login.describe();
}

INSTANTIATE_TEST_SUITE_P(each_step, crash_during_provisioning,
                         ::testing::Values("after_row", "after_database", "after_grants", "after_ready"));

}  // namespace
}  // namespace tenantd::test
