// The seed README's walkthrough against the real binary: health, a tenant with its owner,
// users CRUD, login; and a clean shutdown on SIGTERM.
#include "support/e2e_fixture.hpp"

#include <sys/wait.h>

#include <regex>

namespace tenantd::test {
namespace {

using walkthrough = e2e_test;
namespace json = boost::json;

TEST_F(walkthrough, public_routes_answer) {
  const auto root = get("/");
  ASSERT_EQ(root.status, 200u) << root.describe();
  EXPECT_TRUE(root.header_or_empty("content-type").starts_with("application/json")) << root.describe();
  const auto v = root.json();
  EXPECT_EQ(json_string(v, "status"), "ok");
  EXPECT_EQ(json_string(v, "service"), "tenantd");
  EXPECT_TRUE(std::regex_match(json_string(v, "version"), std::regex(R"(^\d+\.\d+\.\d+([-+].*)?$)"))) << root.body;

  const auto health = get("/healthz");
  ASSERT_EQ(health.status, 200u) << health.describe();
  EXPECT_EQ(json_string(health.json(), "status"), "ok");

  const auto ready = get("/readyz");
  ASSERT_EQ(ready.status, 200u) << ready.describe();
  EXPECT_EQ(json_string(ready.json(), "status"), "ok");
}

TEST_F(walkthrough, tenant_owner_users_crud_and_login) {
  const json::object owner{{"email", "Owner@Acme.example"},
                           {"password", "owner-password-1"},
                           {"first_name", "Olive"},
                           {"last_name", "Owner"}};
  const auto created = create_tenant_response("acme_corp", "Acme Corporation", owner);
  ASSERT_EQ(created.status, 201u) << created.describe();
  const auto tenant = created.json();
  EXPECT_EQ(json_string(tenant, "id"), "acme_corp");
  EXPECT_EQ(json_string(tenant, "token_type"), "Bearer");
  const std::string token = json_string(tenant, "token");
  ASSERT_FALSE(token.empty()) << created.body;

  const auto me = get("/api/me", token);
  ASSERT_EQ(me.status, 200u) << me.describe();
  EXPECT_EQ(json_string(me.json(), "role"), "owner");
  EXPECT_EQ(json_string(json_field(me.json(), "user"), "email"), "owner@acme.example");

  const auto made = post(
      "/api/users", json::object{{"email", "john@acme.example"}, {"first_name", "John"}, {"last_name", "Doe"}}, token);
  ASSERT_EQ(made.status, 201u) << made.describe();
  const std::string john = json_string(made.json(), "id");
  ASSERT_TRUE(is_uuid(john)) << made.body;

  const auto list = get("/api/users", token);
  ASSERT_EQ(list.status, 200u) << list.describe();
  EXPECT_EQ(json_field(list.json(), "total"), json::value(2)) << list.body;

  const auto fetched = get("/api/users/" + john, token);
  ASSERT_EQ(fetched.status, 200u) << fetched.describe();
  EXPECT_EQ(json_string(fetched.json(), "first_name"), "John");

  const auto updated = put("/api/users/" + john, json::object{{"first_name", "Johnny"}}, token);
  ASSERT_EQ(updated.status, 200u) << updated.describe();
  EXPECT_EQ(json_string(updated.json(), "first_name"), "Johnny");
  EXPECT_EQ(json_string(updated.json(), "last_name"), "Doe");

  const auto removed = del("/api/users/" + john, token);
  EXPECT_EQ(removed.status, 204u) << removed.describe();
  EXPECT_TRUE(removed.body.empty()) << removed.describe();
  EXPECT_EQ(get("/api/users/" + john, token).status, 404u);

  const auto again = login("owner@acme.example", "owner-password-1");
  EXPECT_EQ(again.tenant_id, "acme_corp");
  EXPECT_EQ(again.role, "owner");
  EXPECT_EQ(get("/api/users", again.token).status, 200u);
}

TEST_F(walkthrough, sigterm_stops_the_server_cleanly) {
  (void)tenant_with_owner("shutdown_co");
  const auto status = server().stop();
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "tenantd did not exit 0 on SIGTERM (status " << *status << "); log:\n"
      << server().log_tail();
}

}  // namespace
}  // namespace tenantd::test
