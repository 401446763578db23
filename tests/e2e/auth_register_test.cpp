// POST /auth/register: the claim token makes the owner, registration policy, where the tenant comes from, global
// accounts joining several tenants, the order of checks, and field validation.
#include "support/e2e_fixture.hpp"

#include <algorithm>
#include <set>

namespace tenantd::test {
namespace {

using auth_register = e2e_test;
namespace json = boost::json;

json::object registration(std::string_view email, std::string_view password = default_password) {
  return {{"email", email}, {"password", password}, {"first_name", "Ann"}, {"last_name", "Lee"}};
}

// The field names in a validation problem's "errors".
std::set<std::string> error_fields(const http_response& r) {
  std::set<std::string> out;
  const auto errors = json_field(r.json(), "errors");
  if (!errors.is_array()) return out;
  for (const auto& e : errors.as_array()) out.insert(json_string(e, "field"));
  return out;
}

TEST_F(auth_register, claim_token_makes_the_owner_then_consent_is_needed) {
  (void)create_tenant("acme_corp", "Acme");
  // register_response carries the tenant's claim token (see e2e_fixture.hpp).
  const auto first = register_response("acme_corp", "first@acme.example");
  ASSERT_EQ(first.status, 201u) << first.describe();
  const auto v = first.json();
  EXPECT_EQ(json_string(v, "role"), "owner");
  EXPECT_EQ(json_string(v, "email"), "first@acme.example");
  EXPECT_EQ(json_string(v, "first_name"), "Ann");
  EXPECT_EQ(json_string(v, "last_name"), "Lee");
  EXPECT_EQ(json_string(v, "tenant_id"), "acme_corp");
  EXPECT_TRUE(is_uuid(json_string(v, "id"))) << first.body;
  EXPECT_TRUE(is_rfc3339_utc(json_string(v, "created_at"))) << first.body;
  EXPECT_TRUE(is_rfc3339_utc(json_string(v, "updated_at"))) << first.body;
  EXPECT_EQ(first.body.find(default_password), std::string::npos);
  EXPECT_EQ(first.body.find("argon2"), std::string::npos);
  EXPECT_EQ(first.body.find("hash"), std::string::npos);

  expect_problem(register_response("acme_corp", "second@acme.example"), 403, "registration_closed");
  const auto owner = login("first@acme.example", default_password, "acme_corp");
  EXPECT_EQ(owner.user_id, json_string(v, "id")) << "one id everywhere";
  set_registration(owner.token, "open");

  const auto second = register_response("acme_corp", "second@acme.example");
  ASSERT_EQ(second.status, 201u) << second.describe();
  EXPECT_EQ(json_string(second.json(), "role"), "member");
  const std::string second_id = json_string(second.json(), "id");

  const auto users = get("/api/users", owner.token);
  ASSERT_EQ(users.status, 200u) << users.describe();
  std::set<std::string> ids;
  const auto items = json_field(users.json(), "items");
  ASSERT_TRUE(items.is_array()) << users.body;
  for (const auto& u : items.as_array()) ids.insert(json_string(u, "id"));
  EXPECT_TRUE(ids.contains(json_string(v, "id")) && ids.contains(second_id)) << users.body;

  set_registration(owner.token, "invite");
  expect_problem(register_response("acme_corp", "third@acme.example"), 403, "registration_closed");
}

TEST_F(auth_register, tenant_comes_from_body_or_header) {
  (void)create_tenant("alpha", "Alpha");
  (void)create_tenant("beta", "Beta");
  (void)create_tenant("gamma", "Gamma");

  auto in_alpha = registration("h@alpha.example");
  in_alpha["claim_token"] = claim_token("alpha");
  const auto by_header = client().send_json("POST", "/auth/register", in_alpha, {{"X-Tenant-ID", "alpha"}});
  ASSERT_EQ(by_header.status, 201u) << by_header.describe();
  EXPECT_EQ(json_string(by_header.json(), "tenant_id"), "alpha");

  auto with_body = registration("b@beta.example");
  with_body["tenant_id"] = "beta";
  with_body["claim_token"] = claim_token("beta");
  const auto by_body = post("/auth/register", with_body);
  ASSERT_EQ(by_body.status, 201u) << by_body.describe();
  EXPECT_EQ(json_string(by_body.json(), "tenant_id"), "beta");

  auto both_same = registration("s@gamma.example");
  both_same["tenant_id"] = "gamma";
  both_same["claim_token"] = claim_token("gamma");
  const auto same = client().send_json("POST", "/auth/register", both_same, {{"X-Tenant-ID", "gamma"}});
  EXPECT_EQ(same.status, 201u) << same.describe();

  auto differ = registration("d@alpha.example");
  differ["tenant_id"] = "alpha";
  const auto conflict = client().send_json("POST", "/auth/register", differ, {{"X-Tenant-ID", "beta"}});
  EXPECT_EQ(conflict.status, 400u) << conflict.describe();

  expect_problem(post("/auth/register", registration("n@none.example")), 400, "tenant_required");

  auto unknown = registration("u@none.example");
  unknown["tenant_id"] = "no_such_tenant";
  expect_problem(post("/auth/register", unknown), 404, "tenant_not_found");
  expect_problem(client().send_json("POST", "/auth/register", registration("u2@none.example"),
                                    {{"X-Tenant-ID", "no_such_tenant"}}),
                 404, "tenant_not_found");
  auto malformed = registration("u3@none.example");
  malformed["tenant_id"] = "'; DROP TABLE users; --";
  // No tenant can have that id, so it names no tenant (and nothing reaches SQL).
  expect_problem(post("/auth/register", malformed), 404, "tenant_not_found");
}

TEST_F(auth_register, existing_account_joins_with_right_password_only) {
  (void)create_tenant("one_co", "One");
  (void)create_tenant("two_co", "Two");
  (void)create_tenant("three_co", "Three");
  const auto first = register_user("one_co", "pat@multi.example");
  const std::string id = json_string(first, "id");

  const auto joined = register_response("two_co", "PAT@multi.example");
  ASSERT_EQ(joined.status, 201u) << joined.describe();
  EXPECT_EQ(json_string(joined.json(), "id"), id) << "an account keeps one id in every tenant";
  EXPECT_EQ(json_string(joined.json(), "tenant_id"), "two_co");
  EXPECT_EQ(json_string(joined.json(), "role"), "owner") << "two_co's claim token";

  expect_problem(register_response("three_co", "pat@multi.example", "a-different-password"), 409, "email_taken");
  // The wrong-password attempt changed nothing: three_co's claim token is still unused, so the
  // next registrant with it becomes its owner, and pat's password still works.
  EXPECT_EQ(json_string(register_user("three_co", "other@multi.example"), "role"), "owner");
  EXPECT_EQ(login("pat@multi.example", default_password, "two_co").user_id, id);
}

TEST_F(auth_register, already_member_is_a_conflict) {
  (void)create_tenant("member_co", "Member");
  (void)register_user("member_co", "m@member.example");
  // With registration open, consent passes and the membership check answers.
  set_registration(login("m@member.example").token, "open");
  expect_problem(register_response("member_co", "m@member.example"), 409, "already_member");
  expect_problem(register_response("member_co", " M@Member.Example "), 409, "already_member");
}

TEST_F(auth_register, checks_run_in_the_documented_order) {
  (void)create_tenant("order_co", "Order");
  (void)register_user("order_co", "owner@order.example");
  (void)create_tenant("elsewhere", "Elsewhere");
  (void)register_user("elsewhere", "taken@else.example");

  // Body before tenant: an invalid body to an unknown tenant is a 400.
  auto bad_body = registration("not-an-email");
  bad_body["tenant_id"] = "no_such_tenant";
  EXPECT_EQ(post("/auth/register", bad_body).status, 400u);
  // Consent before email: a known email with a wrong password into an invite-only tenant is 403.
  expect_problem(register_response("order_co", "taken@else.example", "wrong-password-here"), 403,
                 "registration_closed");
}

TEST_F(auth_register, email_is_trimmed_and_lower_cased_password_is_not_trimmed) {
  (void)create_tenant("case_co", "Case");
  const auto r = register_response("case_co", "  Alice.Smith@Example.COM ", "  spaced pass  ");
  ASSERT_EQ(r.status, 201u) << r.describe();
  EXPECT_EQ(json_string(r.json(), "email"), "alice.smith@example.com");
  EXPECT_EQ(login_response("alice.smith@example.com", "spaced pass").status, 401u) << "password must not be trimmed";
  EXPECT_EQ(login("ALICE.SMITH@example.com", "  spaced pass  ").tenant_id, "case_co");
}

TEST_F(auth_register, names_are_trimmed) {
  (void)create_tenant("names_co", "Names");
  const auto r = post("/auth/register", json::object{{"email", "n@names.example"},
                                                     {"password", default_password},
                                                     {"first_name", "  Ann  "},
                                                     {"last_name", "\tLee "},
                                                     {"tenant_id", "names_co"},
                                                     {"claim_token", claim_token("names_co")}});
  ASSERT_EQ(r.status, 201u) << r.describe();
  EXPECT_EQ(json_string(r.json(), "first_name"), "Ann");
  EXPECT_EQ(json_string(r.json(), "last_name"), "Lee");
}

TEST_F(auth_register, invalid_fields_give_400_naming_the_field) {
  (void)create_tenant("valid_co", "Valid");
  struct bad_case {
    std::string label;
    json::object body;
    std::string field;
  };
  const auto with = [claim = claim_token("valid_co")](std::string_view key, json::value value) {
    json::object body{{"email", "v@valid.example"}, {"password", default_password}, {"first_name", "Ann"},
                      {"last_name", "Lee"},         {"tenant_id", "valid_co"},      {"claim_token", claim}};
    if (value.is_null())
      body.erase(key);
    else
      body[key] = std::move(value);
    return body;
  };
  std::string seven_wide;
  for (int i = 0; i < 7; ++i) seven_wide += "\xc3\xa9";  // 7 characters, 14 bytes
  const std::vector<bad_case> cases = {
      {"missing email", with("email", nullptr), "email"},
      {"email not a string", with("email", 42), "email"},
      {"email without @", with("email", "not-an-email"), "email"},
      {"email without domain", with("email", "user@"), "email"},
      {"email with spaces inside", with("email", "us er@x.example"), "email"},
      {"email too long", with("email", json::value_from(std::string(250, 'a') + "@x.io")), "email"},
      {"missing password", with("password", nullptr), "password"},
      {"password too short", with("password", "1234567"), "password"},
      {"password 7 wide chars", with("password", json::value_from(seven_wide)), "password"},
      {"password too long", with("password", json::value_from(std::string(257, 'p'))), "password"},
      {"password not a string", with("password", 12345678), "password"},
      {"password breached", with("password", "Password1"), "password"},
      {"missing first_name", with("first_name", nullptr), "first_name"},
      {"empty first_name", with("first_name", ""), "first_name"},
      {"blank first_name", with("first_name", "   "), "first_name"},
      {"first_name too long", with("first_name", json::value_from(std::string(101, 'f'))), "first_name"},
      {"missing last_name", with("last_name", nullptr), "last_name"},
      {"last_name too long", with("last_name", json::value_from(std::string(101, 'l'))), "last_name"},
      {"last_name not a string", with("last_name", json::array{"x"}), "last_name"},
  };
  for (const auto& c : cases) {
    const auto r = post("/auth/register", c.body);
    EXPECT_EQ(r.status, 400u) << c.label << ":\n" << r.describe();
    if (r.status == 400) {
      EXPECT_TRUE(error_fields(r).contains(c.field)) << c.label << ": errors should name " << c.field << ":\n"
                                                     << r.body;
    }
  }
  // Nothing above created an account or used the claim token up.
  std::string eight_wide = seven_wide + "\xc3\xa9";
  const auto ok = post("/auth/register", with("password", json::value_from(eight_wide)));
  ASSERT_EQ(ok.status, 201u) << "8 characters is enough even if multi-byte:\n" << ok.describe();
  EXPECT_EQ(json_string(ok.json(), "role"), "owner");
  // 256 characters is the longest password allowed: someone else joins with one.
  set_registration(login("v@valid.example", eight_wide, "valid_co").token, "open");
  auto longest_body = with("password", json::value_from(std::string(256, 'p')));
  longest_body["email"] = "w@valid.example";
  longest_body.erase("claim_token");
  const auto longest = post("/auth/register", longest_body);
  EXPECT_EQ(longest.status, 201u) << longest.describe();
  EXPECT_EQ(json_string(longest.json(), "role"), "member");
}

TEST_F(auth_register, caller_cannot_choose_role_or_id) {
  (void)create_tenant("mass_co", "Mass");
  const auto owner = register_user("mass_co", "owner@mass.example");
  const auto owner_session = login("owner@mass.example");
  set_registration(owner_session.token, "open");
  const std::string forced_id = "00000000-0000-4000-8000-000000000001";
  const auto r = post("/auth/register", json::object{{"email", "joiner@mass.example"},
                                                     {"password", default_password},
                                                     {"first_name", "J"},
                                                     {"last_name", "K"},
                                                     {"tenant_id", "mass_co"},
                                                     {"role", "owner"},
                                                     {"permissions", json::array{"tenant:manage"}},
                                                     {"id", forced_id}});
  ASSERT_EQ(r.status, 201u) << r.describe();
  EXPECT_EQ(json_string(r.json(), "role"), "member");
  EXPECT_NE(json_string(r.json(), "id"), forced_id);
  const auto joiner = login("joiner@mass.example");
  EXPECT_EQ(joiner.role, "member");
  EXPECT_EQ(put("/api/tenant", json::object{{"name", "Taken Over"}}, joiner.token).status, 403u);
  (void)owner;
}

}  // namespace
}  // namespace tenantd::test
