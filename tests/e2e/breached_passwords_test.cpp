// Security catalogue S13: every route where a password is chosen refuses one from the
// breached-password list with 400 naming the field and creates nothing; login does not check
// the list, so an account that already has such a password keeps working.
#include <sodium.h>

#include <set>

#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

namespace tenantd::test {
namespace {

using breached_passwords = e2e_test;
namespace json = boost::json;

std::set<std::string> error_fields(const http_response& r) {
  std::set<std::string> out;
  const auto errors = json_field(r.json(), "errors");
  if (!errors.is_array()) return out;
  for (const auto& e : errors.as_array()) out.insert(json_string(e, "field"));
  return out;
}

void expect_breached(const http_response& r, const std::string& field) {
  expect_problem(r, 400, "invalid_input");
  EXPECT_TRUE(error_fields(r).contains(field)) << "errors should name " << field << ":\n" << r.body;
  EXPECT_NE(r.body.find("breaches"), std::string::npos) << r.body;
}

TEST_F(breached_passwords, registration_refuses_a_breached_password_and_creates_nothing) {
  (void)create_tenant("leaky_co", "Leaky");
  expect_breached(register_response("leaky_co", "first@leaky.example", "password1"), "password");
  expect_breached(register_response("leaky_co", "first@leaky.example", "Password1"), "password");  // any case
  expect_breached(register_response("leaky_co", "first@leaky.example", "iloveyou1"), "password");
  EXPECT_EQ(login_response("first@leaky.example", "password1").status, 401u) << "no account was created";
  // Nothing was created or used up: the tenant's claim token still makes the next registrant owner.
  const auto owner = register_user("leaky_co", "first@leaky.example", "82hq7fze");
  EXPECT_EQ(json_string(owner, "role"), "owner");
}

TEST_F(breached_passwords, tenant_owner_refuses_a_breached_password_and_post_users_takes_no_password) {
  const json::object owner{
      {"email", "boss@globex.example"}, {"password", "qwertyuiop"}, {"first_name", "B"}, {"last_name", "O"}};
  expect_breached(create_tenant_response("globex", "Globex", owner), "owner.password");
  EXPECT_EQ(create_tenant_response("globex", "Globex").status, 201u) << "the refused request created no tenant";

  const auto admin = tenant_with_owner("initech");
  const json::object user{
      {"email", "pat@initech.example"}, {"password", "TrustNo1"}, {"first_name", "Pat"}, {"last_name", "Lee"}};
  const auto refused = post("/api/users", user, admin.token);  // nobody sets another person's password
  expect_problem(refused, 400, "invalid_input");
  EXPECT_TRUE(error_fields(refused).contains("password")) << refused.body;
  EXPECT_EQ(login_response("pat@initech.example", "TrustNo1").status, 401u);
  const auto users = get("/api/users", admin.token);
  ASSERT_EQ(users.status, 200u) << users.describe();
  EXPECT_EQ(users.body.find("pat@initech.example"), std::string::npos) << users.body;
}

TEST_F(breached_passwords, login_does_not_check_the_list) {
  (void)tenant_with_owner("old_co");
  // An account from before the list existed: give it a breached password directly.
  ASSERT_GE(sodium_init(), 0);
  std::array<char, crypto_pwhash_STRBYTES> hash{};
  const std::string old_password = "password1";
  ASSERT_EQ(crypto_pwhash_str_alg(hash.data(), old_password.data(), old_password.size(), crypto_pwhash_OPSLIMIT_MIN,
                                  crypto_pwhash_MEMLIMIT_MIN, crypto_pwhash_ALG_ARGON2ID13),
            0);
  (void)admin_query("UPDATE accounts SET password_hash = '" + std::string(hash.data()) + "' WHERE email = '" +
                        owner_email("old_co") + "'",
                    server().master_database());
  const auto r = login_response(owner_email("old_co"), old_password, "old_co");
  EXPECT_EQ(r.status, 200u) << r.describe();
}

}  // namespace
}  // namespace tenantd::test
