// /api/me and /api/users: CRUD, listing (order, paging, filters), directory entries and invited
// members, role-based permissions, deletion revoking tokens, and the last-owner rule.
#include "support/e2e_fixture.hpp"

#include <set>
#include <vector>

namespace tenantd::test {
namespace {

using users = e2e_test;
namespace json = boost::json;

json::object person(std::string_view email, std::string_view first = "Ann", std::string_view last = "Lee") {
  return {{"email", email}, {"first_name", first}, {"last_name", last}};
}

std::vector<std::string> emails_of(const http_response& r) {
  std::vector<std::string> out;
  const auto items = json_field(r.json(), "items");
  if (!items.is_array()) {
    ADD_FAILURE() << "no items array:\n" << r.describe();
    return out;
  }
  for (const auto& u : items.as_array()) out.push_back(json_string(u, "email"));
  return out;
}

void expect_user_shape(const json::value& u, std::string_view tenant) {
  for (const char* key : {"id", "email", "first_name", "last_name", "tenant_id", "created_at", "updated_at"})
    EXPECT_TRUE(json_field(u, key).is_string()) << key << " in " << json::serialize(u);
  EXPECT_TRUE(is_uuid(json_string(u, "id"))) << json::serialize(u);
  EXPECT_EQ(json_string(u, "tenant_id"), tenant);
  EXPECT_TRUE(is_rfc3339_utc(json_string(u, "created_at"))) << json::serialize(u);
  const std::string text = json::serialize(u);
  EXPECT_EQ(text.find("password"), std::string::npos) << text;
  EXPECT_EQ(text.find("hash"), std::string::npos) << text;
}

TEST_F(users, me_describes_user_tenant_role_and_permissions) {
  const auto owner = tenant_with_owner("me_co");
  const auto r = get("/api/me", owner.token);
  ASSERT_EQ(r.status, 200u) << r.describe();
  const auto v = r.json();
  expect_user_shape(json_field(v, "user"), "me_co");
  EXPECT_EQ(json_string(json_field(v, "user"), "id"), owner.user_id);
  EXPECT_EQ(json_string(json_field(v, "tenant"), "id"), "me_co");
  EXPECT_EQ(json_string(v, "role"), "owner");
  EXPECT_TRUE(json_field(v, "permissions").is_array()) << r.body;
  expect_problem(get("/api/me"), 401, "unauthorized");
}

TEST_F(users, create_get_update_and_list_newest_first) {
  const auto owner = tenant_with_owner("crud_co");
  std::vector<std::string> ids;
  for (const char* email : {"a@crud.example", "b@crud.example", "c@crud.example"}) {
    const auto r = post("/api/users", person(email), owner.token);
    ASSERT_EQ(r.status, 201u) << r.describe();
    expect_user_shape(r.json(), "crud_co");
    ids.push_back(json_string(r.json(), "id"));
  }
  const auto list = get("/api/users", owner.token);
  ASSERT_EQ(list.status, 200u) << list.describe();
  const auto v = list.json();
  EXPECT_EQ(json_field(v, "total"), json::value(4)) << list.body;
  EXPECT_EQ(json_field(v, "page"), json::value(1));
  EXPECT_EQ(json_field(v, "page_size"), json::value(25));
  const auto emails = emails_of(list);
  EXPECT_EQ(emails,
            (std::vector<std::string>{"c@crud.example", "b@crud.example", "a@crud.example", owner_email("crud_co")}));
  const auto items = json_field(v, "items");
  ASSERT_TRUE(items.is_array()) << list.body;
  for (const auto& u : items.as_array()) expect_user_shape(u, "crud_co");

  const auto one = get("/api/users/" + ids[1], owner.token);
  ASSERT_EQ(one.status, 200u) << one.describe();
  EXPECT_EQ(json_string(one.json(), "email"), "b@crud.example");
}

TEST_F(users, paging_and_bad_parameters) {
  const auto owner = tenant_with_owner("page_co");
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(post("/api/users", person("p" + std::to_string(i) + "@page.example"), owner.token).status, 201u);
  std::set<std::string> seen;
  for (int page = 1; page <= 3; ++page) {
    const auto r = get("/api/users?page=" + std::to_string(page) + "&page_size=2", owner.token);
    ASSERT_EQ(r.status, 200u) << r.describe();
    EXPECT_EQ(json_field(r.json(), "total"), json::value(6));
    EXPECT_EQ(json_field(r.json(), "page"), json::value(page));
    EXPECT_EQ(json_field(r.json(), "page_size"), json::value(2));
    const auto emails = emails_of(r);
    EXPECT_EQ(emails.size(), 2u) << r.body;
    seen.insert(emails.begin(), emails.end());
  }
  EXPECT_EQ(seen.size(), 6u) << "pages overlap or miss users";
  const auto past = get("/api/users?page=4&page_size=2", owner.token);
  ASSERT_EQ(past.status, 200u) << past.describe();
  EXPECT_TRUE(emails_of(past).empty());
  EXPECT_EQ(get("/api/users?page_size=100", owner.token).status, 200u);
  EXPECT_EQ(get("/api/users?page_size=1", owner.token).status, 200u);

  for (const char* query : {"page=0", "page=-1", "page=abc", "page=1.5", "page=", "page_size=0", "page_size=101",
                            "page_size=x", "page_size=-5", "page=99999999999999999999", "page_size=1e2"}) {
    const auto r = get(std::string("/api/users?") + query, owner.token);
    EXPECT_EQ(r.status, 400u) << query << ":\n" << r.describe();
  }
}

TEST_F(users, email_and_q_filters_are_literal_and_case_insensitive) {
  const auto owner = tenant_with_owner("filters");
  ASSERT_EQ(post("/api/users", person("alice.smith@example.com", "Alice", "Smith"), owner.token).status, 201u);
  ASSERT_EQ(post("/api/users", person("bob_jones@example.com", "Bob", "Jones"), owner.token).status, 201u);
  ASSERT_EQ(post("/api/users", person("carol@example.com", "Carol", "100%"), owner.token).status, 201u);
  const auto query = [&](const std::string& q) {
    const auto r = get("/api/users?" + q, owner.token);
    EXPECT_EQ(r.status, 200u) << q << ":\n" << r.describe();
    const auto emails = emails_of(r);
    EXPECT_EQ(json_field(r.json(), "total"), json::value(static_cast<std::int64_t>(emails.size()))) << q;
    return std::set<std::string>(emails.begin(), emails.end());
  };
  using set = std::set<std::string>;
  EXPECT_EQ(query("email=ALICE"), set{"alice.smith@example.com"});
  EXPECT_EQ(query("email=smith%40EXAMPLE"), set{"alice.smith@example.com"});
  EXPECT_EQ(query("q=jones"), set{"bob_jones@example.com"});
  EXPECT_EQ(query("q=CAROL"), set{"carol@example.com"});
  EXPECT_EQ(query("q=%25"), set{"carol@example.com"}) << "% must be literal";
  EXPECT_EQ(query("q=100%25"), set{"carol@example.com"});
  EXPECT_EQ(query("q=_"), set{"bob_jones@example.com"}) << "_ must be literal";
  EXPECT_EQ(query("email=_"), set{"bob_jones@example.com"});
  EXPECT_EQ(query("email=%25"), set{});
  EXPECT_EQ(query("q=b_b"), set{});
  EXPECT_EQ(query("q=nobody"), set{});
  EXPECT_EQ(query("q=%27%3B--"), set{});
  EXPECT_EQ(query("email=example.com&q=smith"), set{"alice.smith@example.com"});
}

TEST_F(users, directory_entry_without_password_cannot_log_in) {
  const auto owner = tenant_with_owner("dir_co");
  const auto r = post("/api/users", person("  Dir@Dir.Example "), owner.token);
  ASSERT_EQ(r.status, 201u) << r.describe();
  EXPECT_EQ(json_string(r.json(), "email"), "dir@dir.example");
  expect_problem(login_response("dir@dir.example", default_password), 401, "invalid_credentials");
}

TEST_F(users, an_invited_user_logs_in_as_the_invited_role) {
  const auto owner = tenant_with_owner("login_co");
  const auto r = register_invited("login_co", "worker@login.example", invite(owner, "worker@login.example", "member"),
                                  "worker-password");
  ASSERT_EQ(r.status, 201u) << r.describe();
  EXPECT_EQ(r.body.find("worker-password"), std::string::npos);
  const auto worker = login("worker@login.example", "worker-password");
  EXPECT_EQ(worker.role, "member");
  EXPECT_EQ(worker.tenant_id, "login_co");
  EXPECT_EQ(worker.user_id, json_string(r.json(), "id"));
  EXPECT_EQ(get("/api/users/" + worker.user_id, owner.token).status, 200u);
}

TEST_F(users, naming_an_existing_accounts_email_adds_no_member) {
  (void)tenant_with_owner("home_co");
  auto existing = login(owner_email("home_co"));
  const auto other = tenant_with_owner("away_co");
  auto body = person(owner_email("home_co"));
  body["password"] = "attacker-chosen-password";
  expect_problem(post("/api/users", body, other.token), 400, "invalid_input");
  body.erase("password");
  const auto r = post("/api/users", body, other.token);
  ASSERT_EQ(r.status, 201u) << r.describe();
  EXPECT_NE(json_string(r.json(), "id"), existing.user_id) << "a directory entry, not the account";
  expect_problem(login_response(owner_email("home_co"), "attacker-chosen-password", "away_co"), 401,
                 "invalid_credentials");
  expect_problem(login_response(owner_email("home_co"), default_password, "away_co"), 401, "invalid_credentials");
  EXPECT_EQ(login(owner_email("home_co")).tenant_id, "home_co") << "still a member of one tenant only";
}

TEST_F(users, role_field_is_refused_and_viewers_are_read_only) {
  const auto owner = tenant_with_owner("roles_co");
  const auto member = add_member(owner, "member@roles.example");
  ASSERT_EQ(member.role, "member");

  // Roles come with invitations, for anyone.
  auto as_member = person("v1@roles.example");
  as_member["role"] = "viewer";
  expect_problem(post("/api/users", as_member, member.token), 400, "invalid_input");
  expect_problem(post("/api/users", as_member, owner.token), 400, "invalid_input");

  const auto made =
      register_invited("roles_co", "viewer@roles.example", invite(owner, "viewer@roles.example", "viewer"));
  ASSERT_EQ(made.status, 201u) << made.describe();
  const auto viewer = login("viewer@roles.example");
  ASSERT_EQ(viewer.role, "viewer");

  EXPECT_EQ(get("/api/users", viewer.token).status, 200u);
  EXPECT_EQ(get("/api/tenant", viewer.token).status, 200u);
  expect_problem(post("/api/users", person("x@roles.example"), viewer.token), 403, "forbidden");
  expect_problem(put("/api/users/" + member.user_id, json::object{{"first_name", "X"}}, viewer.token), 403,
                 "forbidden");
  expect_problem(del("/api/users/" + member.user_id, viewer.token), 403, "forbidden");
  expect_problem(put("/api/tenant", json::object{{"name", "Viewer Was Here"}}, viewer.token), 403, "forbidden");

  // member: users:read users:write tenant:read — no delete, no tenant:manage.
  EXPECT_EQ(post("/api/users", person("made-by-member@roles.example"), member.token).status, 201u);
  expect_problem(del("/api/users/" + viewer.user_id, member.token), 403, "forbidden");
  expect_problem(put("/api/tenant", json::object{{"name", "Member Was Here"}}, member.token), 403, "forbidden");
  EXPECT_EQ(json_string(get("/api/tenant", owner.token).json(), "name"), "Tenant roles_co");
}

TEST_F(users, duplicate_email_in_a_tenant_is_a_conflict) {
  const auto owner = tenant_with_owner("dup_co");
  ASSERT_EQ(post("/api/users", person("same@dup.example"), owner.token).status, 201u);
  expect_problem(post("/api/users", person("SAME@dup.example"), owner.token), 409, "email_taken");
  expect_problem(post("/api/users", person(owner_email("dup_co")), owner.token), 409, "email_taken");
}

TEST_F(users, create_validates_its_fields) {
  const auto owner = tenant_with_owner("valid_co");
  EXPECT_EQ(post("/api/users", json::object{{"email", "a@v.example"}, {"first_name", "A"}}, owner.token).status, 400u);
  EXPECT_EQ(post("/api/users", json::object{{"first_name", "A"}, {"last_name", "B"}}, owner.token).status, 400u);
  EXPECT_EQ(post("/api/users", person("nope"), owner.token).status, 400u);
  EXPECT_EQ(post("/api/users", person("a@v.example", ""), owner.token).status, 400u);
  EXPECT_EQ(post("/api/users", person("a@v.example", std::string(101, 'x')), owner.token).status, 400u);
  auto short_pw = person("a@v.example");
  short_pw["password"] = "short";
  EXPECT_EQ(post("/api/users", short_pw, owner.token).status, 400u);
  auto bad_role = person("a@v.example");
  bad_role["password"] = default_password;
  bad_role["role"] = "emperor";
  EXPECT_EQ(post("/api/users", bad_role, owner.token).status, 400u);
  EXPECT_EQ(json_field(get("/api/users", owner.token).json(), "total"), json::value(1)) << "nothing was created";
}

TEST_F(users, ids_must_be_uuids_and_unknown_ids_are_404) {
  const auto owner = tenant_with_owner("ids_co");
  for (const char* id : {"abc", "1", "0", "-1", "00000000-0000-0000-0000-00000000000g", "%00", "1%20OR%201=1",
                         "00000000000000000000000000000000x"}) {
    expect_problem(get(std::string("/api/users/") + id, owner.token), 400, "invalid_id");
    EXPECT_EQ(put(std::string("/api/users/") + id, json::object{{"first_name", "X"}}, owner.token).status, 400u) << id;
    EXPECT_EQ(del(std::string("/api/users/") + id, owner.token).status, 400u) << id;
  }
  const std::string missing = "3f1c2a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f";
  expect_problem(get("/api/users/" + missing, owner.token), 404, "not_found");
  expect_problem(put("/api/users/" + missing, json::object{{"first_name", "X"}}, owner.token), 404, "not_found");
  expect_problem(del("/api/users/" + missing, owner.token), 404, "not_found");
}

TEST_F(users, update_changes_only_allowed_fields) {
  const auto owner = tenant_with_owner("upd_co");
  const auto made = post("/api/users", person("u@upd.example", "Una", "Upton"), owner.token);
  ASSERT_EQ(made.status, 201u) << made.describe();
  const auto before = made.json();
  const std::string id = json_string(before, "id");

  const auto r = put("/api/users/" + id,
                     json::object{{"first_name", "  Uma  "},
                                  {"id", "3f1c2a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f"},
                                  {"tenant_id", "other_co"},
                                  {"role", "owner"},
                                  {"permissions", json::array{"tenant:manage"}},
                                  {"created_at", "2000-01-01T00:00:00Z"}},
                     owner.token);
  ASSERT_EQ(r.status, 200u) << r.describe();
  const auto after = r.json();
  EXPECT_EQ(json_string(after, "id"), id);
  EXPECT_EQ(json_string(after, "tenant_id"), "upd_co");
  EXPECT_EQ(json_string(after, "first_name"), "Uma");
  EXPECT_EQ(json_string(after, "last_name"), "Upton");
  EXPECT_EQ(json_string(after, "email"), "u@upd.example");
  EXPECT_EQ(json_string(after, "created_at"), json_string(before, "created_at"));
  EXPECT_GE(json_string(after, "updated_at"), json_string(before, "updated_at"));

  const auto patched =
      client().send_json("PATCH", "/api/users/" + id, json::object{{"last_name", "Underwood"}}, bearer(owner.token));
  ASSERT_EQ(patched.status, 200u) << patched.describe();
  EXPECT_EQ(json_string(patched.json(), "first_name"), "Uma");
  EXPECT_EQ(json_string(patched.json(), "last_name"), "Underwood");

  const auto email = put("/api/users/" + id, json::object{{"email", "New@Upd.Example"}}, owner.token);
  ASSERT_EQ(email.status, 200u) << email.describe();
  EXPECT_EQ(json_string(email.json(), "email"), "new@upd.example");

  const auto stored = get("/api/users/" + id, owner.token);
  EXPECT_EQ(json_string(stored.json(), "first_name"), "Uma");
  EXPECT_EQ(json_string(stored.json(), "last_name"), "Underwood");
  EXPECT_EQ(json_string(stored.json(), "email"), "new@upd.example");

  expect_problem(put("/api/users/" + id, json::object{{"email", owner_email("upd_co")}}, owner.token), 409,
                 "email_taken");
  EXPECT_EQ(put("/api/users/" + id, json::object{{"first_name", ""}}, owner.token).status, 400u);
  EXPECT_EQ(put("/api/users/" + id, json::object{{"email", "broken"}}, owner.token).status, 400u);
  EXPECT_EQ(put("/api/users/" + id, json::object{{"last_name", 3}}, owner.token).status, 400u);

  // A member changing their own record cannot promote themselves.
  const auto member = add_member(owner, "self@upd.example");
  const auto self =
      put("/api/users/" + member.user_id, json::object{{"role", "owner"}, {"first_name", "Selfie"}}, member.token);
  EXPECT_EQ(self.status, 200u) << self.describe();
  EXPECT_EQ(json_string(get("/api/me", member.token).json(), "role"), "member");
  EXPECT_EQ(put("/api/tenant", json::object{{"name", "Hijacked"}}, member.token).status, 403u);
}

TEST_F(users, deleting_a_member_revokes_their_token_at_once) {
  const auto owner = tenant_with_owner("del_co");
  const auto member = add_member(owner, "leaver@del.example");
  ASSERT_EQ(get("/api/me", member.token).status, 200u);
  const auto r = del("/api/users/" + member.user_id, owner.token);
  EXPECT_EQ(r.status, 204u) << r.describe();
  EXPECT_TRUE(r.body.empty());
  const auto after = get("/api/users", member.token);
  expect_problem(after, 401, "unauthorized");
  EXPECT_TRUE(after.header_or_empty("www-authenticate").starts_with("Bearer")) << after.describe();
  expect_problem(get("/api/users/" + member.user_id, owner.token), 404, "not_found");
  expect_problem(del("/api/users/" + member.user_id, owner.token), 404, "not_found");
  // A removed member cannot log in to the tenant, and is told no more than a wrong password.
  expect_problem(login_response("leaver@del.example", default_password, "del_co"), 401, "invalid_credentials");
}

TEST_F(users, the_last_owner_cannot_be_deleted) {
  const auto owner = tenant_with_owner("last_co");
  expect_problem(del("/api/users/" + owner.user_id, owner.token), 409, "last_owner");
  EXPECT_EQ(get("/api/me", owner.token).status, 200u);
}

}  // namespace
}  // namespace tenantd::test
