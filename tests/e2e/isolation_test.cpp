// Tenant isolation: a token only ever reaches its own tenant's users, whatever ids, headers,
// query parameters or bodies say, also under interleaved concurrent load (S18-S20, M05/M06).
#include "support/e2e_fixture.hpp"

#include <atomic>
#include <thread>
#include <vector>

namespace tenantd::test {
namespace {

// The e2e fixture turns the request quotas off (tests/support/e2e_server.cpp): the
// interleaved test sends 800 requests per session as fast as the server answers.
using isolation = e2e_test;
namespace json = boost::json;

json::object person(std::string_view email, std::string_view first = "Ann") {
  return {{"email", email}, {"first_name", first}, {"last_name", "Lee"}};
}

TEST_F(isolation, a_token_never_reaches_another_tenants_users) {
  const auto a = tenant_with_owner("tenant_a");
  const auto b = tenant_with_owner("tenant_b");
  const auto made = post("/api/users", person("only-in-b@b.example", "Bea"), b.token);
  ASSERT_EQ(made.status, 201u) << made.describe();
  const std::string in_b = json_string(made.json(), "id");
  const std::string random_id = "7d444840-9dc0-11d1-b245-5ffdce74fad2";

  const auto cross = get("/api/users/" + in_b, a.token);
  const auto missing = get("/api/users/" + random_id, a.token);
  expect_problem(cross, 404, "not_found");
  expect_problem(missing, 404, "not_found");
  auto strip = [](const http_response& r) {
    auto v = r.json();
    if (v.is_object()) v.as_object().erase("request_id");
    return json::serialize(v);
  };
  EXPECT_EQ(strip(cross), strip(missing)) << "another tenant's id must look exactly like a missing one";

  expect_problem(put("/api/users/" + in_b, json::object{{"first_name", "Hacked"}}, a.token), 404, "not_found");
  expect_problem(
      client().send_json("PATCH", "/api/users/" + in_b, json::object{{"first_name", "Hacked"}}, bearer(a.token)), 404,
      "not_found");
  expect_problem(del("/api/users/" + in_b, a.token), 404, "not_found");
  expect_problem(del("/api/users/" + b.user_id, a.token), 404, "not_found");

  const auto still = get("/api/users/" + in_b, b.token);
  ASSERT_EQ(still.status, 200u) << still.describe();
  EXPECT_EQ(json_string(still.json(), "first_name"), "Bea");
  EXPECT_EQ(get("/api/me", b.token).status, 200u);

  const auto list_a = get("/api/users", a.token);
  ASSERT_EQ(list_a.status, 200u) << list_a.describe();
  EXPECT_EQ(json_field(list_a.json(), "total"), json::value(1));
  const auto items_a = json_field(list_a.json(), "items");
  ASSERT_TRUE(items_a.is_array()) << list_a.body;
  for (const auto& u : items_a.as_array()) EXPECT_EQ(json_string(u, "tenant_id"), "tenant_a");
  EXPECT_EQ(list_a.body.find("only-in-b"), std::string::npos);
}

TEST_F(isolation, one_account_in_two_tenants_has_separate_records) {
  (void)create_tenant("left_co", "Left");
  (void)create_tenant("right_co", "Right");
  const auto reg = register_user("left_co", "both@lr.example");
  (void)register_user("right_co", "both@lr.example");
  const auto left = login("both@lr.example", default_password, "left_co");
  const auto right = login("both@lr.example", default_password, "right_co");
  const std::string id = json_string(reg, "id");
  ASSERT_EQ(left.user_id, id);
  ASSERT_EQ(right.user_id, id);

  const auto renamed = put("/api/users/" + id, json::object{{"first_name", "LeftName"}}, left.token);
  ASSERT_EQ(renamed.status, 200u) << renamed.describe();
  EXPECT_EQ(json_string(renamed.json(), "tenant_id"), "left_co");
  const auto from_right = get("/api/users/" + id, right.token);
  ASSERT_EQ(from_right.status, 200u) << from_right.describe();
  EXPECT_EQ(json_string(from_right.json(), "tenant_id"), "right_co");
  EXPECT_EQ(json_string(from_right.json(), "first_name"), "Ann") << "a change in left_co leaked into right_co";
  EXPECT_EQ(json_string(json_field(get("/api/me", right.token).json(), "tenant"), "id"), "right_co");
}

TEST_F(isolation, tenant_hints_outside_the_token_are_ignored) {
  const auto a = tenant_with_owner("hint_a");
  const auto b = tenant_with_owner("hint_b");
  const header_list pointing_at_b = {{"X-Tenant-ID", "hint_b"}};

  const auto me = get("/api/me", a.token, pointing_at_b);
  ASSERT_EQ(me.status, 200u) << me.describe();
  EXPECT_EQ(json_string(json_field(me.json(), "tenant"), "id"), "hint_a");
  const auto listed = get("/api/users?tenant_id=hint_b", a.token, pointing_at_b);
  ASSERT_EQ(listed.status, 200u) << listed.describe();
  const auto listed_items = json_field(listed.json(), "items");
  ASSERT_TRUE(listed_items.is_array()) << listed.body;
  for (const auto& u : listed_items.as_array()) EXPECT_EQ(json_string(u, "tenant_id"), "hint_a");
  const auto other_host = get("/api/users", a.token, {{"Host", "hint_b.example.com"}});
  ASSERT_EQ(other_host.status, 200u) << other_host.describe();
  EXPECT_EQ(other_host.body.find("hint_b"), std::string::npos) << other_host.body;

  auto body = person("sneak@hint.example");
  body["tenant_id"] = "hint_b";
  const auto made = post("/api/users?tenant_id=hint_b", body, a.token, pointing_at_b);
  ASSERT_EQ(made.status, 201u) << made.describe();
  EXPECT_EQ(json_string(made.json(), "tenant_id"), "hint_a");
  const std::string sneak = json_string(made.json(), "id");
  EXPECT_EQ(get("/api/users/" + sneak, b.token).status, 404u);
  EXPECT_EQ(json_field(get("/api/users", b.token).json(), "total"), json::value(1));

  const auto renamed =
      put("/api/tenant", json::object{{"name", "A Renamed"}, {"tenant_id", "hint_b"}}, a.token, pointing_at_b);
  ASSERT_EQ(renamed.status, 200u) << renamed.describe();
  EXPECT_EQ(json_string(renamed.json(), "id"), "hint_a");
  EXPECT_EQ(json_string(get("/api/tenant", b.token).json(), "name"), "Tenant hint_b");
}

TEST_F(isolation, interleaved_concurrent_requests_never_cross_tenants) {
  (void)create_tenant("load_a", "Load A");
  (void)create_tenant("load_b", "Load B");
  const auto reg = register_user("load_a", "shared@load.example");
  (void)register_user("load_b", "shared@load.example");
  const auto a = login("shared@load.example", default_password, "load_a");
  const auto b = login("shared@load.example", default_password, "load_b");
  const std::string shared = json_string(reg, "id");
  // Distinct data per tenant under the same user id.
  ASSERT_EQ(put("/api/users/" + shared, json::object{{"first_name", "Alpha"}}, a.token).status, 200u);
  ASSERT_EQ(put("/api/users/" + shared, json::object{{"first_name", "Bravo"}}, b.token).status, 200u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(post("/api/users", person("a" + std::to_string(i) + "@only-a.example"), a.token).status, 201u);
    ASSERT_EQ(post("/api/users", person("b" + std::to_string(i) + "@only-b.example"), b.token).status, 201u);
  }

  constexpr int threads = 8;
  constexpr int per_thread = 200;
  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      http_client c(client().port());
      for (int i = 0; i < per_thread; ++i) {
        const bool use_a = (i + t) % 2 == 0;
        const auto& s = use_a ? a : b;
        const std::string tenant = use_a ? "load_a" : "load_b";
        const std::string foreign_domain = use_a ? "only-b.example" : "only-a.example";
        const bool list = i % 4 < 2;
        const auto r = c.get(list ? "/api/users?page_size=100" : "/api/users/" + shared, bearer(s.token));
        if (r.status != 200) {
          ++failures;
          continue;
        }
        const auto v = r.json();
        if (list) {
          const auto items = json_field(v, "items");
          if (!items.is_array()) {
            ++mismatches;
          } else {
            for (const auto& u : items.as_array())
              if (json_string(u, "tenant_id") != tenant) ++mismatches;
          }
          if (r.body.find(foreign_domain) != std::string::npos) ++mismatches;
        } else {
          if (json_string(v, "tenant_id") != tenant) ++mismatches;
          if (json_string(v, "first_name") != (use_a ? "Alpha" : "Bravo")) ++mismatches;
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  EXPECT_EQ(mismatches.load(), 0) << "responses carried another tenant's data";
  EXPECT_EQ(failures.load(), 0) << "requests under load did not answer 200";
}

}  // namespace
}  // namespace tenantd::test
