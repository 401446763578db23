// Fault test F04 (docs: security-and-fault-tests §3): tenantd started while PostgreSQL is
// down listens, is alive (/healthz 200) but not ready (/readyz 503), answers 503 fast, and
// becomes ready by itself within 5 s of PostgreSQL starting, without a restart.
#include "support/fault_fixture.hpp"

#include <boost/json.hpp>

#include <thread>

namespace tenantd::test {
namespace {

using namespace std::chrono_literals;

class fault_pg_down_at_start : public fault_test {
 protected:
  bool start_server_in_setup() const override { return false; }
};

}  // namespace

TEST_F(fault_pg_down_at_start, listens_unready_then_recovers_without_restart) {
  cluster().stop("fast");
  ASSERT_NO_THROW(start_server()) << server().log_tail();
  const pid_t pid = server().pid();

  const auto health = get("/healthz");
  EXPECT_EQ(health.status(), 200u) << health.describe();
  EXPECT_EQ(get("/").status(), 200u);
  const auto ready = get("/readyz");
  EXPECT_EQ(contract_violation(ready, fault_request_deadline), "");
  ASSERT_EQ(ready.status(), 503u) << ready.describe();
  const auto checks = boost::json::parse(ready.response.body).at("checks");
  EXPECT_EQ(checks.at("master_database").as_string(), "unreachable") << ready.describe();
  EXPECT_EQ(checks.at("migrations").as_string(), "pending") << ready.describe();

  // Requests that need the database: 503 problem+json with Retry-After, within the deadline.
  const std::string tenant = R"({"id":"acme","name":"Acme"})";
  const std::string login = R"({"email":"nobody@example.com","password":"correct-horse-battery"})";
  for (const auto& o : {post("/tenants", tenant), post("/auth/login", login), get("/api/users", "not-a-token")}) {
    EXPECT_EQ(o.status(), 503u) << o.describe();
    EXPECT_EQ(contract_violation(o, fault_request_deadline), "");
    check_response_hygiene(o.method, o.target, o.request_text, o.response);
  }

  // A long outage (the background retries reach their longest back-off), probed all along.
  const auto outage_end = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < outage_end) {
    const auto r = get("/readyz");
    EXPECT_EQ(r.status(), 503u) << r.describe();
    EXPECT_EQ(contract_violation(r, fault_request_deadline), "");
    std::this_thread::sleep_for(500ms);
  }
  ASSERT_TRUE(server().running()) << "tenantd exited while PostgreSQL was down:\n" << server().log_tail();

  cluster().start();
  const auto became_ready = poll_until([&] { return get("/readyz").status() == 200; }, 15s);
  ASSERT_TRUE(became_ready.has_value()) << "not ready 15 s after PostgreSQL started";
  std::cout << "ready " << became_ready->count() << " ms after PostgreSQL accepted connections\n";
  EXPECT_LE(became_ready->count(), 5000);
  EXPECT_EQ(server().pid(), pid);

  // Full service: provisioning (template, migrations), login, tenant queries.
  const auto acme = create_tenant("acme");
  const auto created = create_user(acme, "first@example.com");
  EXPECT_EQ(created.status(), 201u) << created.describe();
  const auto list = get("/api/users", acme.token);
  EXPECT_EQ(list.status(), 200u) << list.describe();
  const auto me = post("/auth/login", R"({"email":"owner.acme@example.com","password":"correct-horse-battery"})");
  EXPECT_EQ(me.status(), 200u) << me.describe();
}

}  // namespace tenantd::test
