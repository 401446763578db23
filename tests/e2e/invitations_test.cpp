// Invitations: accepting one (single use, bound to its email, its role applied, the same
// answer whether or not the account exists), listing and revoking them, expiry and
// INVITATION_TTL_HOURS, and an invitation dying with its inviter's right to grant its role.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <ctime>
#include <iomanip>
#include <sstream>

namespace tenantd::test {
namespace {

using invitations = e2e_test;
namespace json = boost::json;

std::int64_t unix_seconds(const std::string& rfc3339) {
  std::tm tm{};
  std::istringstream in(rfc3339);
  in >> std::get_time(&tm, "%Y-%m-%dT%H:%M:%S");
  return static_cast<std::int64_t>(timegm(&tm));
}

std::vector<std::string> pending_emails(const http_response& r) {
  std::vector<std::string> out;
  const auto items = json_field(r.json(), "items");
  if (items.is_array())
    for (const auto& i : items.as_array()) out.push_back(json_string(i, "email"));
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(invitations, accepting_one_is_single_use_bound_to_its_email_and_applies_its_role) {
  const auto owner = tenant_with_owner("inv_co");
  const auto issued =
      post("/api/invitations", json::object{{"email", " Ivy@Inv.example "}, {"role", "admin"}}, owner.token);
  ASSERT_EQ(issued.status, 201u) << issued.describe();
  const auto v = issued.json();
  EXPECT_TRUE(is_uuid(json_string(v, "id"))) << issued.body;
  EXPECT_EQ(json_string(v, "email"), "ivy@inv.example");
  EXPECT_EQ(json_string(v, "role"), "admin");
  EXPECT_EQ(json_string(v, "invited_by"), owner.user_id);
  EXPECT_TRUE(is_rfc3339_utc(json_string(v, "expires_at"))) << issued.body;
  const auto token = json_string(v, "invitation");
  ASSERT_GE(token.size(), 32u);

  expect_problem(register_invited("inv_co", "mallory@inv.example", token), 403, "registration_closed");
  const auto joined = register_invited("inv_co", "ivy@inv.example", token);
  ASSERT_EQ(joined.status, 201u) << joined.describe();
  EXPECT_EQ(json_string(joined.json(), "role"), "admin");
  EXPECT_EQ(login("ivy@inv.example", default_password, "inv_co").role, "admin");

  expect_problem(register_invited("inv_co", "ivy@inv.example", token), 403, "registration_closed");
  expect_problem(register_invited("inv_co", "mallory@inv.example", token), 403, "registration_closed");
  expect_problem(login_response("mallory@inv.example", default_password), 401, "invalid_credentials");
  EXPECT_TRUE(pending_emails(get("/api/invitations", owner.token)).empty()) << "an accepted one is not pending";
}

TEST_F(invitations, an_existing_account_joins_only_with_its_password_and_a_refusal_keeps_the_invitation) {
  (void)tenant_with_owner("home_co", "pat@inv.example");
  const auto owner = tenant_with_owner("join_co");
  const auto for_existing =
      post("/api/invitations", json::object{{"email", "pat@inv.example"}, {"role", "member"}}, owner.token);
  const auto for_new =
      post("/api/invitations", json::object{{"email", "new@inv.example"}, {"role", "member"}}, owner.token);
  ASSERT_EQ(for_existing.status, 201u) << for_existing.describe();
  ASSERT_EQ(for_new.status, 201u) << for_new.describe();
  std::vector<std::string> keys_existing, keys_new;
  const auto existing_body = for_existing.json();
  const auto new_body = for_new.json();
  for (const auto& kv : existing_body.as_object()) keys_existing.emplace_back(kv.key());
  for (const auto& kv : new_body.as_object()) keys_new.emplace_back(kv.key());
  EXPECT_EQ(keys_existing, keys_new);

  const auto token = json_string(for_existing.json(), "invitation");
  expect_problem(register_invited("join_co", "pat@inv.example", token, "not-pats-password"), 409, "email_taken");
  const auto joined = register_invited("join_co", "pat@inv.example", token);
  ASSERT_EQ(joined.status, 201u) << "the refused registration must not use the invitation up:\n" << joined.describe();
  EXPECT_EQ(login("pat@inv.example", default_password, "join_co").role, "member");
}

TEST_F(invitations, pending_ones_are_listed_without_their_token_and_can_be_revoked) {
  const auto owner = tenant_with_owner("list_co");
  const auto kept = invite(owner, "kept@list.example", "viewer");
  const auto revoked =
      post("/api/invitations", json::object{{"email", "gone@list.example"}, {"role", "member"}}, owner.token);
  ASSERT_EQ(revoked.status, 201u) << revoked.describe();
  const auto revoked_id = json_string(revoked.json(), "id");
  const auto revoked_token = json_string(revoked.json(), "invitation");

  const auto listed = get("/api/invitations", owner.token);
  ASSERT_EQ(listed.status, 200u) << listed.describe();
  EXPECT_EQ(pending_emails(listed), (std::vector<std::string>{"gone@list.example", "kept@list.example"}));
  EXPECT_EQ(listed.body.find(kept), std::string::npos) << "never the token";
  EXPECT_EQ(listed.body.find(revoked_token), std::string::npos) << "never the token";
  const auto items = json_field(listed.json(), "items");
  ASSERT_TRUE(items.is_array()) << listed.body;
  for (const auto& item : items.as_array()) {
    std::vector<std::string> keys;
    for (const auto& kv : item.as_object()) keys.emplace_back(kv.key());
    std::sort(keys.begin(), keys.end());
    EXPECT_EQ(keys, (std::vector<std::string>{"created_at", "email", "expires_at", "id", "invited_by", "role"}));
    EXPECT_EQ(json_string(item, "invited_by"), owner.user_id);
  }

  const auto removed = del("/api/invitations/" + revoked_id, owner.token);
  EXPECT_EQ(removed.status, 204u) << removed.describe();
  EXPECT_EQ(pending_emails(get("/api/invitations", owner.token)), std::vector<std::string>{"kept@list.example"});
  expect_problem(register_invited("list_co", "gone@list.example", revoked_token), 403, "registration_closed");
  expect_problem(del("/api/invitations/" + revoked_id, owner.token), 404, "not_found");
  expect_problem(del("/api/invitations/00000000-0000-4000-8000-000000000000", owner.token), 404, "not_found");
  expect_problem(del("/api/invitations/not-a-uuid", owner.token), 400, "invalid_id");

  // Another tenant's owner sees none of them and cannot revoke them.
  const auto other = tenant_with_owner("else_co");
  EXPECT_TRUE(pending_emails(get("/api/invitations", other.token)).empty());
  const auto kept_id =
      json_string(json_field(get("/api/invitations", owner.token).json(), "items").as_array().at(0), "id");
  expect_problem(del("/api/invitations/" + kept_id, other.token), 404, "not_found");
  EXPECT_EQ(register_invited("list_co", "kept@list.example", kept).status, 201u);

  // members:manage is needed.
  const auto member = add_member(owner, "plain@list.example");
  expect_problem(get("/api/invitations", member.token), 403, "forbidden");
  expect_problem(del("/api/invitations/" + kept_id, member.token), 403, "forbidden");
}

TEST_F(invitations, an_expired_one_is_refused) {
  const auto owner = tenant_with_owner("exp_co");
  const auto token = invite(owner, "late@exp.example", "member");
  admin_exec("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE email = 'late@exp.example'",
             server().master_database());
  expect_problem(register_invited("exp_co", "late@exp.example", token), 403, "registration_closed");
  EXPECT_TRUE(pending_emails(get("/api/invitations", owner.token)).empty());
}

TEST_F(invitations, one_dies_when_its_inviter_is_removed_or_demoted) {
  const auto owner = tenant_with_owner("die_co");
  EXPECT_EQ(register_invited("die_co", "ada@die.example", invite(owner, "ada@die.example", "admin")).status, 201u);
  EXPECT_EQ(register_invited("die_co", "bob@die.example", invite(owner, "bob@die.example", "admin")).status, 201u);
  EXPECT_EQ(register_invited("die_co", "oz@die.example", invite(owner, "oz@die.example", "owner")).status, 201u);
  const auto ada = login("ada@die.example");
  const auto bob = login("bob@die.example");
  const auto oz = login("oz@die.example");

  const auto from_ada = invite(ada, "x@die.example", "member");     // ada will be demoted to member
  const auto from_bob = invite(bob, "y@die.example", "viewer");     // bob will be removed
  const auto from_oz = invite(oz, "z@die.example", "owner");        // oz will be demoted to admin
  const auto from_oz_admin = invite(oz, "w@die.example", "admin");  // ...which admins may still grant
  EXPECT_EQ(pending_emails(get("/api/invitations", owner.token)).size(), 4u);

  ASSERT_EQ(put("/api/members/" + ada.user_id, json::object{{"role", "member"}}, owner.token).status, 200u);
  ASSERT_EQ(del("/api/members/" + bob.user_id, owner.token).status, 204u);
  ASSERT_EQ(put("/api/members/" + oz.user_id, json::object{{"role", "admin"}}, owner.token).status, 200u);

  EXPECT_EQ(pending_emails(get("/api/invitations", owner.token)), std::vector<std::string>{"w@die.example"});
  expect_problem(register_invited("die_co", "x@die.example", from_ada), 403, "registration_closed");
  expect_problem(register_invited("die_co", "y@die.example", from_bob), 403, "registration_closed");
  expect_problem(register_invited("die_co", "z@die.example", from_oz), 403, "registration_closed");
  const auto w = register_invited("die_co", "w@die.example", from_oz_admin);
  ASSERT_EQ(w.status, 201u) << w.describe();
  EXPECT_EQ(json_string(w.json(), "role"), "admin");
}

TEST_F(invitations, a_deleted_tenants_invitations_die_with_it) {
  const auto owner = tenant_with_owner("gone_co");
  const auto token = invite(owner, "late@gone.example", "member");
  ASSERT_EQ(del("/admin/tenants/gone_co", {}, bearer(server().admin_token())).status, 200u);
  expect_problem(register_invited("gone_co", "late@gone.example", token), 404, "tenant_not_found");
}

TEST_F(invitations, they_last_168_hours_by_default) {
  const auto owner = tenant_with_owner("ttl_co");
  (void)invite(owner, "a@ttl.example", "member");
  const auto item = json_field(get("/api/invitations", owner.token).json(), "items").as_array().at(0);
  EXPECT_EQ(unix_seconds(json_string(item, "expires_at")) - unix_seconds(json_string(item, "created_at")), 168 * 3600);
}

class invitations_short : public e2e_test {
 protected:
  env_overrides server_env() const override { return {{"INVITATION_TTL_HOURS", "2"}}; }
};

TEST_F(invitations_short, invitation_ttl_hours_sets_their_lifetime_and_the_claim_tokens) {
  const auto owner = tenant_with_owner("short_co");
  (void)invite(owner, "a@short.example", "member");
  const auto item = json_field(get("/api/invitations", owner.token).json(), "items").as_array().at(0);
  EXPECT_EQ(unix_seconds(json_string(item, "expires_at")) - unix_seconds(json_string(item, "created_at")), 2 * 3600);
  (void)create_tenant("claim_ttl_co");
  const auto rows = admin_query(
      "SELECT extract(epoch FROM claim_expires_at - created_at)::bigint / 60 FROM tenants WHERE id = 'claim_ttl_co'",
      server().master_database());
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows.at(0).at(0), "120");
}

}  // namespace
}  // namespace tenantd::test
