// What errors and logs reveal: problem+json everywhere, no SQL or PostgreSQL text even when
// the database fails, no secrets in the log, no forged log lines (S23, S39, S40).
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <sstream>

namespace tenantd::test {
namespace {

using error_hygiene = e2e_test;
namespace json = boost::json;

TEST_F(error_hygiene, every_error_is_a_problem_with_the_request_id) {
  const auto owner = tenant_with_owner("prob_co");
  const auto member = add_member(owner, "m@prob.example");
  std::vector<std::pair<unsigned, http_response>> responses;
  responses.emplace_back(404, get("/nope"));
  responses.emplace_back(405, client().request("DELETE", "/"));
  responses.emplace_back(401, get("/api/users"));
  responses.emplace_back(403, put("/api/tenant", json::object{{"name", "X"}}, member.token));
  responses.emplace_back(400, get("/api/users/not-a-uuid", owner.token));
  responses.emplace_back(400, post("/tenants", json::object{{"id", "X"}, {"name", "Bad"}}));
  responses.emplace_back(409, post("/tenants", json::object{{"id", "prob_co"}, {"name", "Again"}}));
  responses.emplace_back(415, client().request("POST", "/tenants", {{"Content-Type", "text/plain"}}, "{}"));
  responses.emplace_back(
      413, client().request("POST", "/tenants", {{"Content-Type", "application/json"}}, std::string(70 * 1024, ' ')));
  responses.emplace_back(431, client().request("GET", "/", {{"X-Big", std::string(9 * 1024, 'h')}}));
  responses.emplace_back(401, login_response("m@prob.example", "wrong-password-9"));
  for (const auto& [status, r] : responses) {
    expect_problem(r, status);
    const auto v = r.json();
    EXPECT_FALSE(json_string(v, "title").empty()) << r.describe();
    EXPECT_FALSE(json_string(v, "code").empty()) << r.describe();
    EXPECT_EQ(json_string(v, "request_id"), r.header_or_empty("x-request-id")) << r.describe();
  }
  const auto invalid = post("/tenants", json::object{{"id", "X"}, {"name", ""}});
  const auto errors = json_field(invalid.json(), "errors");
  ASSERT_TRUE(errors.is_array() && !errors.as_array().empty()) << invalid.describe();
  for (const auto& e : errors.as_array()) {
    EXPECT_FALSE(json_string(e, "field").empty()) << invalid.body;
    EXPECT_FALSE(json_string(e, "message").empty()) << invalid.body;
  }
}

TEST_F(error_hygiene, a_broken_tenant_database_gives_a_generic_error) {
  const auto broken = tenant_with_owner("broken_co");
  const auto healthy = tenant_with_owner("healthy_co");
  admin_exec("DROP TABLE users CASCADE", server().tenant_database("broken_co"));

  http_client raw(client().port());
  raw.set_checks(false);
  for (const char* target : {"/api/users", "/api/users?q=x", "/api/me"}) {
    const auto r = raw.get(target, bearer(broken.token));
    check_response_hygiene("GET", target, "", r, /*allow_server_error=*/true);
    EXPECT_GE(r.status, 500u) << target << ":\n" << r.describe();
    EXPECT_EQ(r.body.find("users"), std::string::npos) << "the table name leaked:\n" << r.describe();
    EXPECT_EQ(r.body.find("does not exist"), std::string::npos) << r.describe();
    EXPECT_EQ(r.body.find(server().tenant_database("broken_co")), std::string::npos) << r.describe();
  }
  const auto write = raw.send_json("POST", "/api/users",
                                   json::object{{"email", "w@broken.example"}, {"first_name", "W"}, {"last_name", "X"}},
                                   bearer(broken.token));
  check_response_hygiene("POST", "/api/users", "", write, true);
  EXPECT_GE(write.status, 500u) << write.describe();

  EXPECT_TRUE(server().running()) << "the process must survive a database error";
  EXPECT_EQ(get("/healthz").status, 200u);
  EXPECT_EQ(get("/api/users", healthy.token).status, 200u) << "other tenants keep working";
}

TEST_F(error_hygiene, quotes_and_sql_metacharacters_are_plain_data) {
  const auto owner = tenant_with_owner("quote_co");
  const std::string first = "O'Brien \"Bob\"; --";
  const std::string last = "Back\\slash /* x */ ) OR 1=1";
  const auto r =
      post("/api/users", json::object{{"email", "o'brien@quote.example"}, {"first_name", first}, {"last_name", last}},
           owner.token);
  ASSERT_TRUE(r.status == 201 || r.status == 400) << r.describe();
  if (r.status == 400) {  // an email validator may refuse the quote; names must still round-trip
    const auto again =
        post("/api/users", json::object{{"email", "obrien@quote.example"}, {"first_name", first}, {"last_name", last}},
             owner.token);
    ASSERT_EQ(again.status, 201u) << again.describe();
  }
  const auto list = get("/api/users?q=%27Brien", owner.token);
  ASSERT_EQ(list.status, 200u) << list.describe();
  const auto items = json_field(list.json(), "items");
  ASSERT_TRUE(items.is_array() && items.as_array().size() == 1u) << list.body;
  EXPECT_EQ(json_string(items.as_array()[0], "first_name"), first);
  EXPECT_EQ(json_string(items.as_array()[0], "last_name"), last);
  EXPECT_EQ(json_field(get("/api/users?q=%27%20OR%20%271%27%3D%271", owner.token).json(), "total"), json::value(0));
}

TEST_F(error_hygiene, secrets_never_reach_the_log) {
  const std::string password = "Pw-never-logged-7731";
  const std::string wrong = "Wrong-never-logged-4410";
  const auto created = post("/tenants", json::object{{"id", "secret_co"},
                                                     {"name", "Secret"},
                                                     {"owner", json::object{{"email", "s@secret.example"},
                                                                            {"password", password},
                                                                            {"first_name", "S"},
                                                                            {"last_name", "T"}}}});
  ASSERT_EQ(created.status, 201u) << created.describe();
  const auto s = login("s@secret.example", password);
  EXPECT_EQ(get("/api/users", s.token).status, 200u);
  EXPECT_EQ(get("/api/users?access_token=" + s.token).status, 401u);
  EXPECT_EQ(login_response("s@secret.example", wrong).status, 401u);
  EXPECT_EQ(client().get("/api/users", {{"Authorization", "Bearer " + s.token + "x"}}).status, 401u);
  (void)server().stop();

  const std::string log = server().log_text();
  const std::string signature = s.token.substr(s.token.rfind('.') + 1);
  const std::vector<std::pair<std::string, std::string>> secrets = {
      {"password", password},
      {"wrong password", wrong},
      {"access token signature", signature},
      {"refresh token", s.refresh_token},
      {"tenant-creation token",
       json_string(created.json(), "token").substr(json_string(created.json(), "token").rfind('.') + 1)},
      {"JWT_SECRET", server().jwt_secret()},
      {"ADMIN_TOKEN", server().admin_token()},
      {"database password", pg_cluster().app_password},
  };
  for (const auto& [what, secret] : secrets) {
    ASSERT_FALSE(secret.empty()) << what;
    EXPECT_EQ(log.find(secret), std::string::npos) << "the log contains the " << what << ":\n" << server().log_tail();
  }
}

TEST_F(error_hygiene, log_lines_cannot_be_forged) {
  (void)create_tenant("forge_co", "Forge");
  (void)post("/auth/register", json::object{{"email", "a\r\n[ERROR] forged-email@x.example"},
                                            {"password", default_password},
                                            {"first_name", "x\n[ERROR] forged-name"},
                                            {"last_name", "y"},
                                            {"tenant_id", "forge_co\n[ERROR] forged-tenant"}});
  (void)login_response("b\n[ERROR] forged-login@x.example", "whatever-password");
  (void)client().get("/nope%0d%0a[ERROR]%20forged-path");
  (void)client().get("/nope\x1b[31mred");
  (void)server().stop();
  std::istringstream lines(server().log_text());
  for (std::string line; std::getline(lines, line);) {
    EXPECT_FALSE(line.rfind("[ERROR] forged", 0) == 0) << "forged log line: " << line;
    EXPECT_EQ(line.find('\r'), std::string::npos) << "raw CR in the log: " << line;
  }
}

}  // namespace
}  // namespace tenantd::test
