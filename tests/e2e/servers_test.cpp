// Database servers (API.md "Operator routes"): /admin/servers against a second private
// PostgreSQL cluster, placement by tenants ÷ weight under max_tenants and state, concurrent
// creators, a tenant served end to end from the second server (its data physically there),
// tenantd migrate and check over both servers, backup and restore on the second server, and
// `tenantd servers …`. The second server's password never shows in a response or the log.
#include "support/e2e_cli.hpp"
#include "support/e2e_fixture.hpp"
#include "support/e2e_second_cluster.hpp"
#include "support/pg_cluster.hpp"

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <thread>
#include <vector>

namespace tenantd::test {
namespace {

namespace json = boost::json;

class servers : public e2e_test {
 protected:
  header_list admin() const { return {{"Authorization", "Bearer " + server().admin_token()}}; }

  http_response add_server(std::string_view name, const std::string& url, std::optional<int> weight = std::nullopt,
                           std::optional<int> max_tenants = std::nullopt) const {
    json::object body{{"name", name}, {"url", url}};
    if (weight) body["weight"] = *weight;
    if (max_tenants) body["max_tenants"] = *max_tenants;
    return post("/admin/servers", body, server().admin_token());
  }
  http_response set_server(std::string_view name, const json::object& changes) const {
    return put("/admin/servers/" + std::string(name), changes, server().admin_token());
  }
  // GET /admin/servers as name -> server object.
  std::map<std::string, json::object> listed() const {
    const auto r = get("/admin/servers", server().admin_token());
    EXPECT_EQ(r.status, 200u) << r.describe();
    std::map<std::string, json::object> out;
    const auto body = r.json();
    const auto items = json_field(body, "items");
    if (!items.is_array()) return out;
    for (const auto& item : items.as_array()) out[json_string(item, "name")] = item.as_object();
    return out;
  }
  std::string server_of(std::string_view tenant) const {
    const auto r = get("/admin/tenants/" + std::string(tenant), server().admin_token());
    EXPECT_EQ(r.status, 200u) << r.describe();
    return json_string(r.json(), "server");
  }
  void expect_no_secret(const http_response& r, const std::string& secret) const {
    EXPECT_EQ(r.body.find(secret), std::string::npos) << "the password leaked into a response: " << r.describe();
  }

  second_cluster b2_;
};

std::int64_t tenants_on(const json::object& s) { return s.at("tenants").as_int64(); }

TEST_F(servers, crud_contract_and_the_password_never_shows) {
  // main is there from the start, with DB_HOST/DB_PORT.
  auto before = listed();
  ASSERT_EQ(before.size(), 1u);
  const auto& main = before.at("main");
  EXPECT_EQ(json_string(main, "host"), pg_cluster().host);
  EXPECT_EQ(main.at("port").as_int64(), pg_cluster().port);
  EXPECT_EQ(json_string(main, "state"), "active");
  EXPECT_EQ(main.at("weight").as_int64(), 1);
  EXPECT_TRUE(main.at("max_tenants").is_null());
  EXPECT_EQ(main.size(), 7u) << "name, host, port, state, tenants, weight, max_tenants";

  // Only the admin token.
  EXPECT_EQ(get("/admin/servers").status, 401u);
  const auto added = add_server("b2", b2_.url());
  ASSERT_EQ(added.status, 201u) << added.describe();
  EXPECT_EQ(json_string(added.json(), "name"), "b2");
  EXPECT_EQ(json_string(added.json(), "state"), "active");
  expect_no_secret(added, b2_.password());
  const auto again = add_server("b2", b2_.url());
  expect_problem(again, 409, "server_exists");

  // Validation, with tenantd's own words for what is wrong with the URL.
  const auto bad_name = add_server("B 2", b2_.url());
  expect_problem(bad_name, 400, "invalid_input");
  EXPECT_NE(bad_name.body.find("\"name\""), std::string::npos) << bad_name.body;
  const auto not_url = add_server("b3", "mysql://x:" + b2_.password() + "@host");
  expect_problem(not_url, 400, "invalid_input");
  expect_no_secret(not_url, b2_.password());
  const auto unreachable =
      add_server("b3", "postgresql://u:" + b2_.password() + "@127.0.0.1:" + std::to_string(closed_port()));
  expect_problem(unreachable, 400, "invalid_input");
  EXPECT_NE(unreachable.body.find("unreachable"), std::string::npos) << unreachable.body;
  expect_no_secret(unreachable, b2_.password());
  const std::string wrong_password = unique_name("wrong-pw-");
  const auto refused = add_server(
      "b3", "postgresql://" + b2_.role() + ":" + wrong_password + "@127.0.0.1:" + std::to_string(b2_.port()));
  expect_problem(refused, 400, "invalid_input");
  EXPECT_NE(refused.body.find("refused the login"), std::string::npos) << refused.body;
  EXPECT_EQ(refused.body.find("password authentication failed"), std::string::npos) << "libpq's text: " << refused.body;
  expect_no_secret(refused, wrong_password);
  expect_problem(add_server("b3", b2_.url(), 0), 400, "invalid_input");
  expect_problem(add_server("b3", b2_.url(), 1, -1), 400, "invalid_input");

  auto after = listed();
  ASSERT_EQ(after.size(), 2u);
  const auto& b2 = after.at("b2");
  EXPECT_EQ(json_string(b2, "host"), "127.0.0.1");
  EXPECT_EQ(b2.at("port").as_int64(), b2_.port());
  EXPECT_EQ(json_string(b2, "state"), "active");
  EXPECT_EQ(tenants_on(b2), 0);
  EXPECT_EQ(b2.size(), 7u);
  EXPECT_TRUE(b2_.has_database(server().tenant_db_prefix() + "template")) << "its own template, made at POST";

  // PUT: state, weight, max_tenants; validation; unknown server.
  auto changed = set_server("b2", {{"state", "draining"}, {"weight", 5}, {"max_tenants", 10}});
  ASSERT_EQ(changed.status, 200u) << changed.describe();
  EXPECT_EQ(json_string(changed.json(), "state"), "draining");
  EXPECT_EQ(json_field(changed.json(), "weight").as_int64(), 5);
  EXPECT_EQ(json_field(changed.json(), "max_tenants").as_int64(), 10);
  changed = set_server("b2", {{"max_tenants", nullptr}});
  ASSERT_EQ(changed.status, 200u) << changed.describe();
  EXPECT_TRUE(json_field(changed.json(), "max_tenants").is_null());
  EXPECT_EQ(json_string(changed.json(), "state"), "draining") << "fields left out keep their value";
  expect_problem(set_server("b2", {{"state", "sleeping"}}), 400, "invalid_input");
  expect_problem(set_server("b2", {{"weight", "heavy"}}), 400, "invalid_input");
  expect_problem(set_server("nope", {{"state", "active"}}), 404, "not_found");
  ASSERT_EQ(set_server("b2", {{"state", "active"}}).status, 200u);

  // DELETE: only an empty server; main never.
  ASSERT_EQ(create_tenant_on("on_b2", "b2").status, 201u);
  expect_problem(del("/admin/servers/b2", server().admin_token()), 409, "server_not_empty");
  expect_problem(del("/admin/servers/main", server().admin_token()), 400, "invalid_input");
  expect_problem(del("/admin/servers/nope", server().admin_token()), 404, "not_found");
  ASSERT_EQ(del("/admin/tenants/on_b2", server().admin_token()).status, 200u);
  const auto removed = del("/admin/servers/b2", server().admin_token());
  EXPECT_EQ(removed.status, 204u) << removed.describe();
  EXPECT_EQ(listed().size(), 1u);

  // Nothing tenantd wrote holds either password.
  const auto log = server().log_text();
  EXPECT_EQ(log.find(b2_.password()), std::string::npos) << "the server log holds the password";
  EXPECT_EQ(log.find(wrong_password), std::string::npos) << "the server log holds the refused password";
}

TEST_F(servers, placement_follows_tenants_per_weight_max_tenants_and_state) {
  ASSERT_EQ(add_server("b2", b2_.url(), 3).status, 201u);
  // main w1, b2 w3: b2 (tie: fewer tenants, then name), main (0 < 1/3), b2 (1/3 < 1), b2 (2/3 < 1).
  for (const auto* id : {"place_1", "place_2", "place_3", "place_4"}) ASSERT_EQ(create_tenant_on(id, "").status, 201u);
  EXPECT_EQ(server_of("place_1"), "b2");
  EXPECT_EQ(server_of("place_2"), "main");
  EXPECT_EQ(server_of("place_3"), "b2");
  EXPECT_EQ(server_of("place_4"), "b2");
  auto now = listed();
  EXPECT_EQ(tenants_on(now.at("main")), 1);
  EXPECT_EQ(tenants_on(now.at("b2")), 3);
  EXPECT_TRUE(b2_.has_database(server().tenant_database("place_1")));
  EXPECT_FALSE(b2_.has_database(server().tenant_database("place_2")));

  // Full: b2 takes no more, whatever its weight.
  ASSERT_EQ(set_server("b2", {{"max_tenants", 3}}).status, 200u);
  ASSERT_EQ(create_tenant_on("place_5", "").status, 201u);
  EXPECT_EQ(server_of("place_5"), "main");
  expect_problem(create_tenant_on("place_6", "b2"), 409, "server_unavailable");

  // Not active: main draining and b2 full -> nowhere to go.
  ASSERT_EQ(set_server("main", {{"state", "draining"}}).status, 200u);
  expect_problem(create_tenant_on("place_7", ""), 409, "server_unavailable");
  expect_problem(create_tenant_on("place_7", "main"), 409, "server_unavailable");
  ASSERT_EQ(set_server("b2", {{"max_tenants", nullptr}}).status, 200u);
  ASSERT_EQ(create_tenant_on("place_7", "").status, 201u);
  EXPECT_EQ(server_of("place_7"), "b2");

  // Naming a server: unknown -> 400; without the admin token -> 403.
  const auto unknown = create_tenant_on("place_8", "nope");
  expect_problem(unknown, 400, "invalid_input");
  EXPECT_NE(unknown.body.find("\"server\""), std::string::npos) << unknown.body;
  const auto anonymous = post("/tenants", json::object{{"id", "place_9"}, {"name", "x"}, {"server", "b2"}});
  expect_problem(anonymous, 403, "forbidden");
  EXPECT_FALSE(b2_.has_database(server().tenant_database("place_9")));
}

TEST_F(servers, concurrent_creators_never_overfill_a_server) {
  ASSERT_EQ(add_server("b2", b2_.url(), 1, 3).status, 201u);
  ASSERT_EQ(set_server("main", {{"state", "disabled"}}).status, 200u);
  std::vector<unsigned> statuses(8);
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < statuses.size(); ++i)
    threads.emplace_back([&, i] { statuses[i] = create_tenant_on("crowd_" + std::to_string(i), "").status; });
  for (auto& t : threads) t.join();
  std::size_t created = 0;
  std::size_t refused = 0;
  for (const auto s : statuses) {
    if (s == 201u) ++created;
    if (s == 409u) ++refused;
  }
  EXPECT_EQ(created, 3u);
  EXPECT_EQ(refused, 5u);
  EXPECT_EQ(tenants_on(listed().at("b2")), 3);
  const auto databases =
      b2_.query("SELECT count(*) FROM pg_database WHERE datname LIKE '" + server().tenant_db_prefix() + "crowd_%'");
  EXPECT_EQ(databases.at(0).at(0), "3");
}

TEST_F(servers, a_tenant_on_the_second_server_works_end_to_end) {
  ASSERT_EQ(add_server("b2", b2_.url()).status, 201u);
  ASSERT_EQ(create_tenant_on("far_co", "b2").status, 201u);
  (void)register_user("far_co", "owner@far.example");
  const auto owner = login("owner@far.example", default_password, "far_co");
  const auto created =
      post("/api/users", json::object{{"email", "dana@far.example"}, {"first_name", "Dana"}, {"last_name", "Far"}},
           owner.token);
  ASSERT_EQ(created.status, 201u) << created.describe();
  const auto id = json_string(created.json(), "id");
  EXPECT_EQ(get("/api/users/" + id, owner.token).status, 200u);
  const auto renamed = put("/api/users/" + id, json::object{{"first_name", "Danielle"}}, owner.token);
  EXPECT_EQ(renamed.status, 200u) << renamed.describe();
  const auto listing = get("/api/users", owner.token);
  EXPECT_NE(listing.body.find("dana@far.example"), std::string::npos) << listing.describe();

  // The rows are physically in the second cluster, and nothing of the tenant in the first.
  const auto database = server().tenant_database("far_co");
  EXPECT_TRUE(b2_.has_database(database));
  EXPECT_TRUE(admin_query("SELECT 1 FROM pg_database WHERE datname = '" + database + "'").empty());
  const auto rows = b2_.query("SELECT first_name FROM users WHERE email = 'dana@far.example'", database);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "Danielle");
  EXPECT_EQ(del("/api/users/" + id, owner.token).status, 204u);
  EXPECT_TRUE(b2_.query("SELECT 1 FROM users WHERE email = 'dana@far.example'", database).empty());
}

// A server that stops answering without closing its connections (SIGSTOP to all its
// processes: a paused VM or a hung host). Its tenants' requests, the one already waiting and
// new ones, get 503 with Retry-After long before their calls' own deadline (statement timeout
// + 1 s = 6 s), the other server's tenants are served throughout, /metrics says which server
// is not answering, and after SIGCONT its tenants are served again.
TEST_F(servers, a_server_that_stops_answering_fails_fast_and_recovers) {
  ASSERT_EQ(add_server("b2", b2_.url()).status, 201u);
  ASSERT_EQ(create_tenant_on("far_stop", "b2").status, 201u);
  ASSERT_EQ(create_tenant_on("near_stop", "main").status, 201u);
  (void)register_user("far_stop", "owner@far-stop.example");
  (void)register_user("near_stop", "owner@near-stop.example");
  const auto far = login("owner@far-stop.example", default_password, "far_stop");
  const auto near = login("owner@near-stop.example", default_password, "near_stop");
  const auto far_list = "/api/users";
  ASSERT_EQ(get(far_list, far.token).status, 200u);
  ASSERT_EQ(get("/api/users", near.token).status, 200u);

  const auto metric = [&](const std::string& name) -> std::string {
    http_client plain(server().port());
    plain.set_checks(false);  // text/plain, not the API's JSON
    const auto r = plain.get("/metrics");
    const auto key = name + "{server=\"b2\"} ";
    const auto at = r.body.find(key);
    if (at == std::string::npos) return {};
    return r.body.substr(at + key.size(), r.body.find('\n', at) - at - key.size());
  };
  EXPECT_EQ(metric("tenantd_db_server_answering"), "1");

  b2_.pause();
  struct resume_at_exit {
    second_cluster& c;
    bool done{false};
    ~resume_at_exit() {
      if (!done) c.resume();
    }
  } guard{b2_};

  // A request to the stopped server, while the other server's tenant keeps being served.
  std::atomic<bool> far_done{false};
  http_response far_answer;
  std::chrono::milliseconds far_took{0};
  std::thread waiter([&] {
    const auto sent = std::chrono::steady_clock::now();
    far_answer = get(far_list, far.token);
    far_took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent);
    far_done = true;
  });
  int near_served = 0;
  std::vector<std::string> near_failures;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!far_done && std::chrono::steady_clock::now() < give_up) {
    const auto r = get("/api/users", near.token);
    if (r.status == 200u)
      ++near_served;
    else
      near_failures.push_back(r.describe());
  }
  waiter.join();
  EXPECT_EQ(far_answer.status, 503u) << far_answer.describe();
  EXPECT_EQ(far_answer.header_or_empty("retry-after"), "1") << far_answer.describe();
  EXPECT_EQ(json_string(far_answer.json(), "code"), "unavailable") << far_answer.describe();
  // The product's bound is 2 s (bench/servers.py measures it); the call's own deadline is 6 s.
  EXPECT_LT(far_took.count(), 4500) << "the waiting request should not wait for its call's deadline";
  EXPECT_GT(near_served, 0);
  EXPECT_TRUE(near_failures.empty()) << near_failures.front();

  // While it does not answer, a new request for its tenant fails at once, and /metrics says why.
  const auto sent = std::chrono::steady_clock::now();
  const auto again = get(far_list, far.token);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - sent);
  EXPECT_EQ(again.status, 503u) << again.describe();
  EXPECT_LT(took.count(), 1000) << "a server known not to answer is not waited for";
  EXPECT_EQ(metric("tenantd_db_server_answering"), "0");
  EXPECT_EQ(metric("tenantd_db_server_outages_total"), "1");
  EXPECT_NE(server().log_text().find("database server b2 is not answering"), std::string::npos);

  // Back: its tenant is served again (the probes every 250 ms notice).
  b2_.resume();
  guard.done = true;
  unsigned last = 0;
  const auto resumed = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - resumed < std::chrono::seconds(10)) {
    last = get(far_list, far.token).status;
    if (last == 200u) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(last, 200u);
  EXPECT_EQ(metric("tenantd_db_server_answering"), "1");
  EXPECT_NE(server().log_text().find("database server b2 answers again"), std::string::npos);
}

// The built-in V001 plus V002 (adds users.nickname).
struct nickname_migration : tenant_migrations_dir {
  nickname_migration() : tenant_migrations_dir("V002__nickname.sql", "ALTER TABLE users ADD COLUMN nickname text;\n") {}
};

TEST_F(servers, migrate_and_check_cover_every_server) {
  ASSERT_EQ(add_server("b2", b2_.url()).status, 201u);
  ASSERT_EQ(create_tenant_on("near_co", "main").status, 201u);
  ASSERT_EQ(create_tenant_on("far_co", "b2").status, 201u);
  nickname_migration dir;
  const auto migrated = run_cli(server(), {"migrate", "--migrations-dir", dir.path.string(), "--jobs", "2"});
  ASSERT_EQ(migrated.exit_code, 0) << migrated.output;
  EXPECT_NE(migrated.output.find("on server main: version 2"), std::string::npos) << migrated.output;
  EXPECT_NE(migrated.output.find("on server b2: version 2"), std::string::npos) << migrated.output;
  const auto column =
      "SELECT 1 FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'nickname'";
  EXPECT_FALSE(admin_query(column, server().tenant_database("near_co")).empty());
  EXPECT_FALSE(b2_.query(column, server().tenant_database("far_co")).empty());
  // b2's template was migrated too: a tenant created there now starts with the column.
  ASSERT_EQ(create_tenant_on("later_co", "b2").status, 201u);
  EXPECT_FALSE(b2_.query(column, server().tenant_database("later_co")).empty());
  const auto far = get("/admin/tenants/far_co", server().admin_token());
  EXPECT_EQ(json_field(far.json(), "schema_version").as_int64(), 2) << far.describe();

  auto check = run_cli(server(), {"tenants", "check"});
  EXPECT_EQ(check.exit_code, 0) << check.output;
  // doctor looks at main's databases only and says where the others are.
  const auto doctor = run_cli(server(), {"doctor"});
  EXPECT_EQ(doctor.output.find("have no database"), std::string::npos) << doctor.output;
  EXPECT_NE(doctor.output.find("2 active or suspended tenants live on servers other than main"), std::string::npos)
      << doctor.output;
  const std::string orphan = server().tenant_database("stray_db");
  b2_.query("CREATE DATABASE " + orphan);
  check = run_cli(server(), {"tenants", "check"});
  EXPECT_EQ(check.exit_code, 1) << check.output;
  EXPECT_NE(check.output.find("b2/" + orphan), std::string::npos) << check.output;
  b2_.query("DROP DATABASE " + orphan);
}

TEST_F(servers, backup_and_restore_of_a_tenant_on_the_second_server) {
  ASSERT_EQ(add_server("b2", b2_.url()).status, 201u);
  ASSERT_EQ(create_tenant_on("kept_co", "b2").status, 201u);
  (void)register_user("kept_co", "owner@kept.example");
  auto owner = login("owner@kept.example", default_password, "kept_co");
  ASSERT_EQ(post("/api/users", json::object{{"email", "kim@kept.example"}, {"first_name", "Kim"}, {"last_name", "K"}},
                 owner.token)
                .status,
            201u);
  const auto backup = client().send_json("POST", "/admin/tenants/kept_co/backup", json::object{}, admin());
  ASSERT_EQ(backup.status, 201u) << backup.describe();
  ASSERT_EQ(del("/admin/tenants/kept_co", server().admin_token()).status, 200u);
  EXPECT_FALSE(b2_.has_database(server().tenant_database("kept_co")));

  const auto restored =
      client().send_json("POST", "/admin/tenants/kept_co/restore",
                         json::object{{"backup", json_string(backup.json(), "backup")}, {"server", "b2"}}, admin());
  ASSERT_EQ(restored.status, 201u) << restored.describe();
  EXPECT_EQ(server_of("kept_co"), "b2");
  EXPECT_TRUE(b2_.has_database(server().tenant_database("kept_co")));
  EXPECT_EQ(
      b2_.query("SELECT 1 FROM users WHERE email = 'kim@kept.example'", server().tenant_database("kept_co")).size(),
      1u);
  owner = login("owner@kept.example", default_password, "kept_co");
  const auto users = get("/api/users", owner.token);
  EXPECT_NE(users.body.find("kim@kept.example"), std::string::npos) << users.describe();
}

TEST_F(servers, cli_servers_add_list_set_remove) {
  auto added = run_cli(server(), {"servers", "add", "b2", b2_.url(), "--weight", "2", "--max-tenants", "5"});
  ASSERT_EQ(added.exit_code, 0) << added.output;
  EXPECT_EQ(added.output.find(b2_.password()), std::string::npos) << added.output;
  const auto refused =
      run_cli(server(), {"servers", "add", "b3", "postgresql://127.0.0.1:" + std::to_string(closed_port())});
  EXPECT_EQ(refused.exit_code, 1) << refused.output;
  EXPECT_NE(refused.output.find("unreachable"), std::string::npos) << refused.output;

  auto list = run_cli(server(), {"servers", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("b2"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("2 server(s)"), std::string::npos) << list.output;
  EXPECT_EQ(list.output.find(b2_.password()), std::string::npos) << list.output;
  // The running server sees the CLI's server (NOTIFY, or a reload on a miss).
  EXPECT_EQ(json_field(listed().at("b2"), "max_tenants").as_int64(), 5);
  ASSERT_EQ(create_tenant_on("cli_far", "b2").status, 201u);

  auto set = run_cli(server(), {"servers", "set", "b2", "--state", "draining", "--max-tenants", "none"});
  ASSERT_EQ(set.exit_code, 0) << set.output;
  EXPECT_EQ(json_string(listed().at("b2"), "state"), "draining");
  EXPECT_EQ(run_cli(server(), {"servers", "set", "b2", "--state", "asleep"}).exit_code, 1);

  auto remove = run_cli(server(), {"servers", "remove", "b2"});
  EXPECT_EQ(remove.exit_code, 1) << remove.output;
  EXPECT_NE(remove.output.find("server_not_empty"), std::string::npos) << remove.output;
  ASSERT_EQ(run_cli(server(), {"tenants", "delete", "cli_far"}).exit_code, 0);
  remove = run_cli(server(), {"servers", "remove", "b2"});
  EXPECT_EQ(remove.exit_code, 0) << remove.output;
  EXPECT_EQ(listed().size(), 1u);
}

}  // namespace
}  // namespace tenantd::test
