// The role rules over HTTP (only an owner grants or removes owner, nobody changes a member who
// outranks them, a tenant keeps its last owner) and the members list showing each member's
// login email, which directory edits cannot change.
#include "support/e2e_fixture.hpp"

namespace tenantd::test {
namespace {

using members_roles = e2e_test;
namespace json = boost::json;

json::object role(std::string_view r) { return {{"role", r}}; }

// The members list as user_id -> field.
std::string member_field(const http_response& r, std::string_view user_id, std::string_view field) {
  const auto items = json_field(r.json(), "items");
  if (items.is_array())
    for (const auto& m : items.as_array())
      if (json_string(m, "user_id") == user_id) return json_string(m, field);
  return {};
}

TEST_F(members_roles, only_an_owner_grants_or_removes_owner_and_nobody_changes_a_higher_role) {
  const auto owner = tenant_with_owner("roles_co");
  ASSERT_EQ(register_invited("roles_co", "ada@roles.example", invite(owner, "ada@roles.example", "admin")).status,
            201u);
  ASSERT_EQ(register_invited("roles_co", "mo@roles.example", invite(owner, "mo@roles.example", "member")).status, 201u);
  const auto admin = login("ada@roles.example");
  const auto member = login("mo@roles.example");

  expect_problem(post("/api/invitations", json::object{{"email", "o@roles.example"}, {"role", "owner"}}, admin.token),
                 403, "forbidden");
  expect_problem(put("/api/members/" + member.user_id, role("owner"), admin.token), 403, "forbidden");
  expect_problem(put("/api/members/" + owner.user_id, role("admin"), admin.token), 403, "forbidden");
  expect_problem(del("/api/members/" + owner.user_id, admin.token), 403, "forbidden");
  expect_problem(del("/api/users/" + owner.user_id, admin.token), 403, "forbidden");
  expect_problem(put("/api/members/" + admin.user_id, role("viewer"), member.token), 403, "forbidden");
  EXPECT_EQ(member_field(get("/api/members", owner.token), owner.user_id, "role"), "owner");

  // An admin manages the roles below owner; an owner grants owner.
  const auto demoted = put("/api/members/" + member.user_id, role("viewer"), admin.token);
  ASSERT_EQ(demoted.status, 200u) << demoted.describe();
  EXPECT_EQ(json_string(demoted.json(), "role"), "viewer");
  const auto promoted = put("/api/members/" + admin.user_id, role("owner"), owner.token);
  ASSERT_EQ(promoted.status, 200u) << promoted.describe();
  EXPECT_EQ(json_string(promoted.json(), "role"), "owner");
  // Now two owners: one may demote the other.
  const auto back = put("/api/members/" + owner.user_id, role("admin"), admin.token);
  ASSERT_EQ(back.status, 200u) << back.describe();
  EXPECT_EQ(json_string(back.json(), "role"), "admin");
}

TEST_F(members_roles, the_last_owner_stays) {
  const auto owner = tenant_with_owner("last_co");
  expect_problem(put("/api/members/" + owner.user_id, role("admin"), owner.token), 409, "last_owner");
  expect_problem(del("/api/members/" + owner.user_id, owner.token), 409, "last_owner");
  expect_problem(del("/api/users/" + owner.user_id, owner.token), 409, "last_owner");
  EXPECT_EQ(member_field(get("/api/members", owner.token), owner.user_id, "role"), "owner");
  EXPECT_EQ(login(owner.email, default_password, "last_co").role, "owner");
}

TEST_F(members_roles, members_show_their_login_email_whatever_the_directory_says) {
  const auto owner = tenant_with_owner("label_co");
  const auto member = add_member(owner, "mia@label.example");

  // A member with users:write tries to relabel the owner: the email is refused, names are not.
  const auto relabel =
      put("/api/users/" + owner.user_id, json::object{{"email", "mia@label.example.evil"}}, member.token);
  expect_problem(relabel, 400, "invalid_input");
  EXPECT_NE(relabel.body.find("\"field\":\"email\""), std::string::npos) << relabel.body;
  const auto same_email =
      put("/api/users/" + owner.user_id, json::object{{"email", owner.email}, {"first_name", "Renamed"}}, owner.token);
  ASSERT_EQ(same_email.status, 200u) << same_email.describe();
  const auto renamed =
      put("/api/users/" + member.user_id, json::object{{"first_name", "Mia"}, {"last_name", "New"}}, owner.token);
  ASSERT_EQ(renamed.status, 200u) << renamed.describe();
  EXPECT_EQ(json_string(get("/api/users/" + owner.user_id, owner.token).json(), "email"), owner.email);

  const auto listed = get("/api/members", owner.token);
  ASSERT_EQ(listed.status, 200u) << listed.describe();
  EXPECT_EQ(member_field(listed, owner.user_id, "email"), owner.email);
  EXPECT_EQ(member_field(listed, owner.user_id, "first_name"), "Renamed");
  EXPECT_EQ(member_field(listed, member.user_id, "email"), "mia@label.example");
  EXPECT_EQ(member_field(listed, member.user_id, "first_name"), "Mia");
  EXPECT_EQ(member_field(listed, member.user_id, "last_name"), "New");
  EXPECT_TRUE(is_rfc3339_utc(member_field(listed, member.user_id, "joined_at"))) << listed.body;

  // A directory entry that is not a member keeps an editable email.
  const auto entry =
      post("/api/users", json::object{{"email", "desk@label.example"}, {"first_name", "D"}, {"last_name", "E"}},
           owner.token);
  ASSERT_EQ(entry.status, 201u) << entry.describe();
  const auto moved = put("/api/users/" + json_string(entry.json(), "id"),
                         json::object{{"email", "desk2@label.example"}}, member.token);
  ASSERT_EQ(moved.status, 200u) << moved.describe();
  EXPECT_EQ(json_string(moved.json(), "email"), "desk2@label.example");
}

}  // namespace
}  // namespace tenantd::test
