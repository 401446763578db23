// Fault test "slow database": a lock held by another client makes tenantd's statements run
// into STATEMENT_TIMEOUT_MS. The request answers a problem+json 503 with Retry-After within
// its deadline (never a 500, never a hang), a write cancelled this way is not stored, and the
// tenant is served again as soon as the lock goes.
#include "support/fault_fixture.hpp"

#include <boost/json.hpp>

namespace tenantd::test {
namespace {

using namespace std::chrono_literals;

constexpr auto short_statement_timeout = 1500ms;
constexpr auto short_deadline = fault_acquire_timeout + short_statement_timeout + 1500ms;

class fault_statement_timeout : public fault_test {
 protected:
  env_overrides server_env() const override {
    return {{"STATEMENT_TIMEOUT_MS", std::to_string(short_statement_timeout.count())}};
  }
};

}  // namespace

TEST_F(fault_statement_timeout, locked_table_answers_503_within_deadline) {
  const auto acme = create_tenant("acme");
  ASSERT_EQ(get("/api/users", acme.token).status(), 200u);

  held_session locker(cluster().info(), cluster().info().superuser, server().tenant_database("acme"));
  locker.exec("BEGIN; LOCK TABLE users IN ACCESS EXCLUSIVE MODE");

  const auto read = get("/api/users", acme.token);
  EXPECT_EQ(read.status(), 503u) << read.describe();
  EXPECT_EQ(contract_violation(read, short_deadline), "");
  EXPECT_GE(read.took, short_statement_timeout - 100ms) << "answered before the statement timeout: " << read.describe();
  check_response_hygiene(read.method, read.target, read.request_text, read.response);

  const auto write = create_user(acme, "blocked@example.com");
  EXPECT_EQ(write.status(), 503u) << write.describe();
  EXPECT_EQ(contract_violation(write, short_deadline), "");
  check_response_hygiene(write.method, write.target, write.request_text, write.response);

  locker.exec("ROLLBACK");
  const auto after = get("/api/users", acme.token);
  EXPECT_EQ(after.status(), 200u) << after.describe();
  const auto emails = stored_emails(acme);
  EXPECT_EQ(std::count(emails.begin(), emails.end(), "blocked@example.com"), 0)
      << "a write cancelled by the statement timeout was stored";
  const auto again = create_user(acme, "unblocked@example.com");
  EXPECT_EQ(again.status(), 201u) << again.describe();
}

}  // namespace tenantd::test
