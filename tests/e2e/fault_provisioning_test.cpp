// Fault test: PostgreSQL crashes (stop -m immediate) while tenants are being created. After
// it is back, every tenant answered 201 is active with its database; every other id is either
// fully created or leaves no trace, without restarting tenantd, and can be created (201) or is
// reported as existing (409) consistently with the master database.
#include "support/fault_fixture.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

namespace tenantd::test {
namespace {

using namespace std::chrono_literals;

class fault_provisioning : public fault_test {};

}  // namespace

TEST_F(fault_provisioning, creation_interrupted_by_a_crash_leaves_no_half_tenant) {
  // Two clients create tenants one after another until the crash; the creation each had in
  // flight when PostgreSQL went down (or started just after) is the interrupted one.
  std::mutex mutex;
  std::map<std::string, timed_outcome> ledger;  // tenant id -> outcome of its POST /tenants
  std::atomic<bool> crashed{false};
  std::vector<std::thread> clients;
  for (unsigned t = 0; t < 2; ++t) {
    clients.emplace_back([&, t, port = server().port()] {
      for (unsigned i = 0; !crashed; ++i) {
        const std::string id = "t" + std::to_string(t) + "_" + std::to_string(i);
        auto o = timed_request(port, "POST", "/tenants", {}, R"({"id":")" + id + R"(","name":"Crash )" + id + R"("})");
        const bool failed = o.status() != 201;
        {
          std::lock_guard lock(mutex);
          ledger.emplace(id, o);
        }
        if (failed) break;  // the crash came: this was the interrupted creation
      }
    });
  }
  std::this_thread::sleep_for(1500ms);
  // The clients stop only after PostgreSQL is down (at their first failed creation, or when
  // told): each loops without pause, so each has a creation in flight when the crash comes
  // (stopping them first would leave it to chance whether any creation is interrupted).
  cluster().stop("immediate");
  crashed = true;
  for (auto& c : clients) c.join();
  cluster().start();
  ASSERT_TRUE(server().wait_ready(10s)) << "not ready 10 s after PostgreSQL started";

  const std::string master_db = server().master_database();
  const auto status_of = [&](const std::string& id) -> std::string {
    const auto rows = cluster().query("SELECT status FROM tenants WHERE id = '" + id + "'", master_db);
    return rows.empty() ? "" : rows.at(0).at(0);
  };
  const auto database_exists = [&](const std::string& id) {
    return !cluster().query("SELECT 1 FROM pg_database WHERE datname = '" + server().tenant_database(id) + "'").empty();
  };
  std::size_t created = 0, interrupted = 0;
  std::string bad;
  for (const auto& [id, o] : ledger) {
    if (auto v = contract_violation(o, fault_request_deadline); !v.empty() && bad.size() < 4000) bad += v + "\n";
    if (o.status() == 201) {
      ++created;
      EXPECT_EQ(status_of(id), "active") << id << " was acknowledged";
      EXPECT_TRUE(database_exists(id)) << id << " was acknowledged";
      continue;
    }
    ++interrupted;
    // Within 10 s of recovery, an interrupted creation is finished one way or the other.
    const auto settled = poll_until(
        [&] {
          const auto s = status_of(id);
          return s.empty() || s == "active";
        },
        10s);
    EXPECT_TRUE(settled.has_value()) << id << " is left '" << status_of(id) << "' after " << o.describe();
    if (settled) std::cout << id << " (" << o.status() << ") settled " << settled->count() << " ms after readiness\n";
    const auto s = status_of(id);
    if (s.empty()) {
      EXPECT_FALSE(database_exists(id)) << id << " has a database but no tenant row";
    }
    // The id is usable again: created now, or reported as existing when it exists.
    const auto again = post("/tenants", R"({"id":")" + id + R"(","name":"Again"})");
    if (s.empty()) {
      EXPECT_EQ(again.status(), 201u) << id << ": " << again.describe();
    } else {
      EXPECT_EQ(again.status(), 409u) << id << ": " << again.describe();
    }
  }
  EXPECT_EQ(bad, "");
  std::cout << ledger.size() << " creations: " << created << " acknowledged, " << interrupted << " interrupted\n";
  EXPECT_GT(created, 0u);
  EXPECT_GT(interrupted, 0u);
}

}  // namespace tenantd::test
