// GET/PUT /api/tenant: shape, allowed changes, validation, and who may change it.
#include "support/e2e_fixture.hpp"

namespace tenantd::test {
namespace {

using tenant_settings = e2e_test;
namespace json = boost::json;

TEST_F(tenant_settings, get_shows_the_tenant) {
  const auto owner = tenant_with_owner("set_co");
  const auto r = get("/api/tenant", owner.token);
  ASSERT_EQ(r.status, 200u) << r.describe();
  const auto v = r.json();
  EXPECT_EQ(json_string(v, "id"), "set_co");
  EXPECT_EQ(json_string(v, "name"), "Tenant set_co");
  EXPECT_EQ(json_string(v, "status"), "active");
  EXPECT_EQ(json_string(v, "registration"), "invite");
  EXPECT_TRUE(is_rfc3339_utc(json_string(v, "created_at"))) << r.body;
  EXPECT_TRUE(is_rfc3339_utc(json_string(v, "updated_at"))) << r.body;
  expect_problem(get("/api/tenant"), 401, "unauthorized");
}

TEST_F(tenant_settings, owner_changes_name_and_registration) {
  const auto owner = tenant_with_owner("chg_co");
  const auto r = put("/api/tenant", json::object{{"name", "  Renamed Co  "}, {"registration", "open"}}, owner.token);
  ASSERT_EQ(r.status, 200u) << r.describe();
  EXPECT_EQ(json_string(r.json(), "name"), "Renamed Co");
  EXPECT_EQ(json_string(r.json(), "registration"), "open");
  EXPECT_EQ(json_string(r.json(), "id"), "chg_co");

  const auto name_only = put("/api/tenant", json::object{{"name", "Only Name"}}, owner.token);
  ASSERT_EQ(name_only.status, 200u) << name_only.describe();
  EXPECT_EQ(json_string(name_only.json(), "registration"), "open") << "an absent field stays as it was";

  const auto ignored = put(
      "/api/tenant", json::object{{"id", "other_co"}, {"status", "suspended"}, {"created_at", "2000-01-01T00:00:00Z"}},
      owner.token);
  ASSERT_EQ(ignored.status, 200u) << ignored.describe();
  EXPECT_EQ(json_string(ignored.json(), "id"), "chg_co");
  EXPECT_EQ(json_string(ignored.json(), "status"), "active");
  EXPECT_EQ(get("/api/me", owner.token).status, 200u) << "the tenant must still be active";

  const auto stored = get("/api/tenant", owner.token);
  EXPECT_EQ(json_string(stored.json(), "name"), "Only Name");
  EXPECT_EQ(json_string(stored.json(), "registration"), "open");
}

TEST_F(tenant_settings, invalid_values_are_400_and_change_nothing) {
  const auto owner = tenant_with_owner("inv_co");
  for (const json::object& body :
       {json::object{{"registration", "closed"}}, json::object{{"registration", "OPEN"}},
        json::object{{"registration", 1}}, json::object{{"name", ""}}, json::object{{"name", "   "}},
        json::object{{"name", std::string(201, 'n')}}, json::object{{"name", nullptr}},
        json::object{{"name", "Fine"}, {"registration", "sometimes"}}}) {
    const auto r = put("/api/tenant", body, owner.token);
    EXPECT_EQ(r.status, 400u) << json::serialize(body) << ":\n" << r.describe();
  }
  const auto stored = get("/api/tenant", owner.token).json();
  EXPECT_EQ(json_string(stored, "name"), "Tenant inv_co");
  EXPECT_EQ(json_string(stored, "registration"), "invite");
}

TEST_F(tenant_settings, members_read_but_cannot_manage) {
  const auto owner = tenant_with_owner("perm_co");
  const auto member = add_member(owner, "m@perm.example");
  EXPECT_EQ(get("/api/tenant", member.token).status, 200u);
  expect_problem(put("/api/tenant", json::object{{"registration", "invite"}}, member.token), 403, "forbidden");
  EXPECT_EQ(json_string(get("/api/tenant", owner.token).json(), "registration"), "open");
  // 403 comes before body validation.
  expect_problem(put("/api/tenant", json::object{{"registration", "bogus"}}, member.token), 403, "forbidden");
}

}  // namespace
}  // namespace tenantd::test
