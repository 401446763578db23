// Fault test "ledger" (docs: security-and-fault-tests §3.2.3): concurrent writers record every
// POST /api/users as ok (201), fail (a definite 4xx) or unknown (503, dropped, timeout) while
// PostgreSQL restarts (fast, and immediate = crash + WAL recovery). Afterwards every ok user
// is stored exactly once and no failed one is; unknowns may go either way.
#include "support/fault_fixture.hpp"

#include <boost/json.hpp>

#include <map>
#include <mutex>
#include <thread>

namespace tenantd::test {
namespace {

using namespace std::chrono_literals;

class fault_ledger : public fault_test {
 protected:
  // Four writers share one token and send as fast as the server answers; while PostgreSQL
  // restarts the 503s come back in milliseconds, well past the default request quotas
  // (200/s per session). Quotas are tested in request_quota_test.cpp; here they are off.
  env_overrides server_env() const override {
    return {{"TENANT_REQUESTS_PER_SECOND", "0"}, {"SESSION_REQUESTS_PER_SECOND", "0"}};
  }
  void run_ledger(const std::string& mode);
};

void fault_ledger::run_ledger(const std::string& mode) {
  // Durability is what makes an acknowledged COMMIT survive a crash: it must be on.
  EXPECT_EQ(cluster().query("SHOW fsync").at(0).at(0), "on");
  EXPECT_EQ(cluster().query("SHOW synchronous_commit").at(0).at(0), "on");
  EXPECT_EQ(cluster().query("SHOW full_page_writes").at(0).at(0), "on");

  const auto acme = create_tenant("acme");
  constexpr unsigned writers = 4;
  std::mutex mutex;
  std::map<std::string, timed_outcome> ledger;  // email -> outcome
  auto load = std::make_unique<load_loop>(writers, [&, port = server().port()](unsigned t, std::uint64_t i) {
    const std::string email = "w" + std::to_string(t) + "." + std::to_string(i) + "@example.com";
    const std::string body = R"({"email":")" + email + R"(","first_name":"Lee","last_name":"Ledger"})";
    auto o = timed_request(port, "POST", "/api/users", acme.token, body);
    std::lock_guard lock(mutex);
    ledger.emplace(email, o);
    return o;
  });

  std::this_thread::sleep_for(1s);
  const auto restart_started = std::chrono::steady_clock::now();
  cluster().restart(mode);
  const auto restarted = std::chrono::steady_clock::now();
  std::cout << "pg_ctl restart -m " << mode << " took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(restarted - restart_started).count() << " ms\n";
  std::this_thread::sleep_for(2s);
  load->stop();

  std::size_t ok = 0, fail = 0, unknown = 0, ok_after_restart = 0;
  const auto stored = stored_emails(acme);
  std::map<std::string, int> copies;
  for (const auto& e : stored) ++copies[e];
  std::size_t stored_from_ledger = 0;
  for (const auto& [email, n] : copies) {
    EXPECT_EQ(n, 1) << email << " is stored " << n << " times";
    if (ledger.contains(email))
      stored_from_ledger += static_cast<std::size_t>(n);
    else
      EXPECT_EQ(email, "owner.acme@example.com") << "a user nobody wrote is stored";
  }

  std::string bad;
  for (const auto& [email, o] : ledger) {
    if (auto v = contract_violation(o, fault_request_deadline); !v.empty() && bad.size() < 4000) bad += v + "\n";
    check_response_hygiene(o.method, o.target, o.request_text, o.response);
    const bool present = copies.contains(email);
    if (o.status() == 201) {
      ++ok;
      if (o.started > restarted) ++ok_after_restart;
      EXPECT_TRUE(present) << "acknowledged write lost: " << email << " (" << o.describe() << ")";
    } else if (o.status() >= 400 && o.status() < 500) {
      ++fail;
      EXPECT_FALSE(present) << "a write answered " << o.status() << " is stored: " << email;
    } else {
      ++unknown;
    }
  }
  EXPECT_EQ(bad, "") << "requests that broke the fault contract";
  std::cout << "ledger after restart -m " << mode << ": " << ok << " ok, " << fail << " fail, " << unknown
            << " unknown; " << stored_from_ledger << " of them stored\n";
  EXPECT_GT(ok_after_restart, 0u) << "no write succeeded after the restart";
  EXPECT_GE(stored_from_ledger, ok);
  EXPECT_LE(stored_from_ledger, ok + unknown);
  EXPECT_GT(ok, 0u);
}

}  // namespace

TEST_F(fault_ledger, no_acknowledged_write_lost_across_fast_restart) { run_ledger("fast"); }

TEST_F(fault_ledger, no_acknowledged_write_lost_across_immediate_restart) { run_ledger("immediate"); }

}  // namespace tenantd::test
