// Nobody joins a tenant without consent: the pre-account-hijacking scenario of issue 12,
// POST /api/users creating directory entries only, the claim token of a tenant created
// without an owner, POST /tenants with an existing owner's email, and directory entries
// adopted by the person who joins.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

namespace tenantd::test {
namespace {

using consent = e2e_test;
namespace json = boost::json;

json::object owner_body(std::string_view email, std::string_view password) {
  return {{"email", email}, {"password", password}, {"first_name", "Olive"}, {"last_name", "Owner"}};
}

json::object registration(std::string_view tenant, std::string_view email,
                          std::string_view password = default_password) {
  return {{"email", email}, {"password", password}, {"first_name", "Ann"}, {"last_name", "Lee"}, {"tenant_id", tenant}};
}

// The fields of a problem's `errors` list.
std::vector<std::string> error_fields(const http_response& r) {
  std::vector<std::string> out;
  const auto errors = json_field(r.json(), "errors");
  if (errors.is_array())
    for (const auto& e : errors.as_array()) out.push_back(json_string(e, "field"));
  return out;
}

std::string error_message(const http_response& r, std::string_view field) {
  const auto errors = json_field(r.json(), "errors");
  if (errors.is_array())
    for (const auto& e : errors.as_array())
      if (json_string(e, "field") == field) return json_string(e, "message");
  return {};
}

std::vector<std::string> member_emails(const http_response& r) {
  std::vector<std::string> out;
  const auto items = json_field(r.json(), "items");
  if (items.is_array())
    for (const auto& m : items.as_array()) out.push_back(json_string(m, "email"));
  return out;
}

TEST_F(consent, an_outsider_who_signed_up_first_with_a_hires_email_cannot_get_into_the_hires_tenant) {
  // 1. The outsider makes an account with the new hire's email (a tenant of their own).
  const auto outsider = create_tenant_response("evil_co", "Evil", owner_body("newhire@bravo.test", "outsiders-own-pw"));
  ASSERT_EQ(outsider.status, 201u) << outsider.describe();

  // 2. Bravo's owner adds the new hire as the old contract allowed: refused; a directory entry is fine.
  const auto bravo = tenant_with_owner("bravo_co");
  const json::object with_login{{"email", "newhire@bravo.test"},
                                {"first_name", "New"},
                                {"last_name", "Hire"},
                                {"password", "bravos-chosen-pw"},
                                {"role", "admin"}};
  const auto refused = post("/api/users", with_login, bravo.token);
  expect_problem(refused, 400, "invalid_input");
  const auto entry =
      post("/api/users", json::object{{"email", "newhire@bravo.test"}, {"first_name", "New"}, {"last_name", "Hire"}},
           bravo.token);
  ASSERT_EQ(entry.status, 201u) << entry.describe();

  // 3. The outsider cannot log in to bravo, with either password; bravo has one member.
  expect_problem(login_response("newhire@bravo.test", "outsiders-own-pw", "bravo_co"), 401, "invalid_credentials");
  expect_problem(login_response("newhire@bravo.test", "bravos-chosen-pw", "bravo_co"), 401, "invalid_credentials");
  const auto members = get("/api/members", bravo.token);
  ASSERT_EQ(members.status, 200u) << members.describe();
  EXPECT_EQ(member_emails(members), std::vector<std::string>{bravo.email});
  // The outsider's own login still names only their tenant (no tenant_required: no second membership).
  EXPECT_EQ(login("newhire@bravo.test", "outsiders-own-pw").tenant_id, "evil_co");
}

TEST_F(consent, post_users_makes_directory_entries_and_answers_alike_for_existing_and_new_emails) {
  (void)tenant_with_owner("elsewhere_co", "known@anywhere.example");
  const auto owner = tenant_with_owner("dir_co");

  for (const char* email : {"known@anywhere.example", "unknown@anywhere.example"}) {
    SCOPED_TRACE(email);
    json::object body{{"email", email}, {"first_name", "Pat"}, {"last_name", "Doe"}, {"password", "some-long-pw"}};
    const auto with_password = post("/api/users", body, owner.token);
    expect_problem(with_password, 400, "invalid_input");
    EXPECT_EQ(error_fields(with_password), std::vector<std::string>{"password"});
    EXPECT_NE(error_message(with_password, "password").find("POST /api/invitations"), std::string::npos)
        << with_password.body;
    body.erase("password");
    body["role"] = "member";
    const auto with_role = post("/api/users", body, owner.token);
    expect_problem(with_role, 400, "invalid_input");
    EXPECT_EQ(error_fields(with_role), std::vector<std::string>{"role"});
    EXPECT_NE(error_message(with_role, "role").find("POST /api/invitations"), std::string::npos) << with_role.body;
  }
  // The same refusal body for both (request ids aside).
  auto refusal = [&](std::string_view email) {
    auto v = post("/api/users",
                  json::object{{"email", email}, {"first_name", "P"}, {"last_name", "D"}, {"password", "long-enough"}},
                  owner.token)
                 .json();
    v.as_object().erase("request_id");
    return json::serialize(v);
  };
  EXPECT_EQ(refusal("known@anywhere.example"), refusal("unknown@anywhere.example"));

  // Plain entries: 201 with the same shape for both, and neither becomes a member.
  const auto known =
      post("/api/users", json::object{{"email", "known@anywhere.example"}, {"first_name", "K"}, {"last_name", "N"}},
           owner.token);
  const auto unknown =
      post("/api/users", json::object{{"email", "unknown@anywhere.example"}, {"first_name", "U"}, {"last_name", "N"}},
           owner.token);
  ASSERT_EQ(known.status, 201u) << known.describe();
  ASSERT_EQ(unknown.status, 201u) << unknown.describe();
  std::vector<std::string> known_keys, unknown_keys;
  const auto known_body = known.json();
  const auto unknown_body = unknown.json();
  for (const auto& kv : known_body.as_object()) known_keys.emplace_back(kv.key());
  for (const auto& kv : unknown_body.as_object()) unknown_keys.emplace_back(kv.key());
  EXPECT_EQ(known_keys, unknown_keys);
  EXPECT_EQ(member_emails(get("/api/members", owner.token)), std::vector<std::string>{owner.email});
  expect_problem(
      post("/api/users", json::object{{"email", "KNOWN@anywhere.example"}, {"first_name", "K"}, {"last_name", "N"}},
           owner.token),
      409, "email_taken");
}

TEST_F(consent, a_tenant_without_owner_is_claimed_once_with_its_claim_token) {
  (void)tenant_with_owner("other_co", "taken@claim.example");
  const auto other_claim =
      json_string(post("/tenants", json::object{{"id", "spare_co"}, {"name", "Spare"}}).json(), "claim_token");
  const auto created = post("/tenants", json::object{{"id", "claim_co"}, {"name", "Claim"}});
  ASSERT_EQ(created.status, 201u) << created.describe();
  const auto claim = json_string(created.json(), "claim_token");
  ASSERT_GE(claim.size(), 32u) << created.body;
  EXPECT_FALSE(json_field(created.json(), "owner").is_object()) << created.body;

  // Without it, or with a wrong one (another tenant's, or made up): 403, nobody becomes owner.
  expect_problem(post("/auth/register", registration("claim_co", "first@claim.example")), 403, "registration_closed");
  auto wrong = registration("claim_co", "first@claim.example");
  wrong["claim_token"] = other_claim;
  expect_problem(post("/auth/register", wrong), 403, "registration_closed");
  wrong["claim_token"] = claim + "x";
  expect_problem(post("/auth/register", wrong), 403, "registration_closed");

  // A refused registration (existing email, wrong password) uses up nothing.
  auto taken = registration("claim_co", "taken@claim.example", "not-the-password");
  taken["claim_token"] = claim;
  expect_problem(post("/auth/register", taken), 409, "email_taken");

  auto first = registration("claim_co", "first@claim.example");
  first["claim_token"] = claim;
  const auto owner = post("/auth/register", first);
  ASSERT_EQ(owner.status, 201u) << owner.describe();
  EXPECT_EQ(json_string(owner.json(), "role"), "owner");
  const auto session = login("first@claim.example", default_password, "claim_co");
  EXPECT_EQ(session.role, "owner");
  const auto tenant = get("/api/tenant", session.token);
  EXPECT_EQ(json_string(tenant.json(), "registration"), "invite") << tenant.body;

  // Single use.
  auto again = registration("claim_co", "second@claim.example");
  again["claim_token"] = claim;
  expect_problem(post("/auth/register", again), 403, "registration_closed");
  expect_problem(login_response("second@claim.example", default_password), 401, "invalid_credentials");
}

TEST_F(consent, an_expired_claim_token_is_refused) {
  const auto claim =
      json_string(post("/tenants", json::object{{"id", "late_co"}, {"name", "Late"}}).json(), "claim_token");
  ASSERT_FALSE(claim.empty());
  admin_exec("UPDATE tenants SET claim_expires_at = now() - interval '1 second' WHERE id = 'late_co'",
             server().master_database());
  auto body = registration("late_co", "first@late.example");
  body["claim_token"] = claim;
  expect_problem(post("/auth/register", body), 403, "registration_closed");
}

TEST_F(consent, registration_checks_tenant_then_consent_then_email) {
  (void)tenant_with_owner("home_co", "someone@order.example");
  const auto claim =
      json_string(post("/tenants", json::object{{"id", "order_co"}, {"name", "Order"}}).json(), "claim_token");
  auto body = registration("no_such_co", "someone@order.example", "wrong-password-1");
  body["claim_token"] = claim;
  expect_problem(post("/auth/register", body), 404, "tenant_not_found");
  body = registration("order_co", "someone@order.example", "wrong-password-1");
  expect_problem(post("/auth/register", body), 403, "registration_closed");
  body["claim_token"] = claim;
  expect_problem(post("/auth/register", body), 409, "email_taken");
  body["password"] = std::string(default_password);
  const auto joined = post("/auth/register", body);
  ASSERT_EQ(joined.status, 201u) << joined.describe();
  EXPECT_EQ(json_string(joined.json(), "role"), "owner");
}

TEST_F(consent, tenant_owner_with_an_existing_email_must_give_its_password_or_nothing_is_created) {
  const auto alpha = tenant_with_owner("alpha_co", "olive@owners.example");
  const auto refused =
      create_tenant_response("beta_co", "Beta", owner_body("olive@owners.example", "not-olives-password"));
  expect_problem(refused, 401, "invalid_credentials");
  expect_problem(get("/admin/tenants/beta_co", {}, bearer(server().admin_token())), 404, "tenant_not_found");
  EXPECT_TRUE(
      admin_query("SELECT 1 FROM pg_database WHERE datname = '" + server().tenant_database("beta_co") + "'").empty());
  EXPECT_TRUE(admin_query("SELECT 1 FROM tenants WHERE id = 'beta_co'", server().master_database()).empty());

  const auto made =
      create_tenant_response("beta_co", "Beta", owner_body("olive@owners.example", std::string(default_password)));
  ASSERT_EQ(made.status, 201u) << made.describe();
  EXPECT_EQ(json_string(json_field(made.json(), "owner"), "id"), alpha.user_id) << "one account, one id";
  EXPECT_EQ(json_string(json_field(made.json(), "owner"), "role"), "owner");
  EXPECT_FALSE(json_field(made.json(), "claim_token").is_string()) << made.body;
  EXPECT_EQ(login("olive@owners.example", default_password, "beta_co").role, "owner");
}

TEST_F(consent, joining_adopts_the_directory_entry_with_the_joiners_email) {
  const auto owner = tenant_with_owner("adopt_co");
  const auto entry =
      post("/api/users", json::object{{"email", "Dora@Adopt.example"}, {"first_name", "Dora"}, {"last_name", "Dir"}},
           owner.token);
  ASSERT_EQ(entry.status, 201u) << entry.describe();
  const auto entry_id = json_string(entry.json(), "id");

  const auto invitation = invite(owner, "dora@adopt.example", "member");
  const auto joined = register_invited("adopt_co", "dora@adopt.example", invitation);
  ASSERT_EQ(joined.status, 201u) << joined.describe();
  const auto account_id = json_string(joined.json(), "id");
  EXPECT_NE(account_id, entry_id);
  EXPECT_EQ(json_string(joined.json(), "first_name"), "Dora") << "the entry's names stay";
  EXPECT_EQ(json_string(joined.json(), "last_name"), "Dir");

  const auto dora = login("dora@adopt.example");
  EXPECT_EQ(dora.user_id, account_id) << "the login id is the account id";
  expect_problem(get("/api/users/" + entry_id, owner.token), 404, "not_found");
  const auto adopted = get("/api/users/" + account_id, owner.token);
  ASSERT_EQ(adopted.status, 200u) << adopted.describe();
  EXPECT_EQ(json_string(adopted.json(), "first_name"), "Dora");
  EXPECT_EQ(json_field(get("/api/users", owner.token).json(), "total"), json::value(2));
}

}  // namespace
}  // namespace tenantd::test
