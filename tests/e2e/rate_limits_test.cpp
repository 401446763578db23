// Configured limits: login failures per account and tenant creations per client give 429
// with Retry-After; other accounts are unaffected; rejected creations do not count.
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

namespace tenantd::test {
namespace {

namespace json = boost::json;

class login_limits : public e2e_test {
 protected:
  env_overrides server_env() const override { return {{"LOGIN_MAX_FAILURES_PER_ACCOUNT", "3"}}; }
};

TEST_F(login_limits, repeated_failures_lock_only_that_account) {
  (void)create_tenant("lock_co", "Lock");
  (void)register_user("lock_co", "victim@lock.example");
  set_registration(login("victim@lock.example").token, "open");
  (void)register_user("lock_co", "bystander@lock.example");

  for (int i = 0; i < 3; ++i)
    expect_problem(login_response("victim@lock.example", "wrong-password-x"), 401, "invalid_credentials");
  const auto locked = login_response("victim@lock.example", "wrong-password-x");
  expect_problem(locked, 429, "too_many_attempts");
  EXPECT_TRUE(locked.has_header("retry-after")) << locked.describe();
  const auto right = login_response("victim@lock.example", default_password);
  EXPECT_EQ(right.status, 429u) << "while locked even the right password is refused:\n" << right.describe();
  EXPECT_EQ(login("bystander@lock.example").tenant_id, "lock_co") << "another account must not be locked";
}

class tenant_create_limits : public e2e_test {
 protected:
  env_overrides server_env() const override { return {{"TENANT_CREATES_PER_CLIENT", "2"}}; }
};

TEST_F(tenant_create_limits, too_many_creations_are_429) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(create_tenant_response("Bad-Id", "Invalid").status, 400u);
  EXPECT_EQ(create_tenant_response("limit_one", "One").status, 201u) << "invalid requests must not count";
  EXPECT_EQ(create_tenant_response("limit_two", "Two").status, 201u);
  const auto third = create_tenant_response("limit_three", "Three");
  EXPECT_EQ(third.status, 429u) << third.describe();
  EXPECT_TRUE(third.has_header("retry-after")) << third.describe();
  const auto rows =
      admin_query("SELECT count(*) FROM pg_database WHERE datname = '" + server().tenant_database("limit_three") + "'");
  EXPECT_EQ(rows.at(0).at(0), "0") << "a refused creation made a database";
}

}  // namespace
}  // namespace tenantd::test
