// A request never waits on its own connect (issue 11): a burst of writes over freshly created
// tenants, whose pools all open connections while the machine is busy, answers every request.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "support/e2e_fixture.hpp"

namespace tenantd::test {
namespace {

namespace json = boost::json;

class pool_burst : public e2e_test {
 protected:
  // The burst must not be shaped by the request quotas: they are set far above it. The pool
  // settings stay at their defaults (TENANT_POOL_SIZE 4, budget 64, acquire timeout 2 s).
  env_overrides server_env() const override {
    return {{"TENANT_REQUESTS_PER_SECOND", "100000"}, {"SESSION_REQUESTS_PER_SECOND", "100000"}};
  }
};

TEST_F(pool_burst, posts_over_fresh_tenants_all_succeed) {
  constexpr int tenants = 20;
  constexpr int per_tenant = 150;
  constexpr int threads = 16;
  std::vector<session> owners;
  owners.reserve(tenants);
  for (int i = 0; i < tenants; ++i) owners.push_back(tenant_with_owner("burst" + std::to_string(i)));

  std::atomic<int> next{0};
  std::atomic<int> created{0};
  std::mutex failure_mutex;
  std::vector<std::string> failures;
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      const http_client c(client().port());
      for (int i = next++; i < tenants * per_tenant; i = next++) {
        const auto& owner = owners[static_cast<std::size_t>(i % tenants)];
        const json::object body{
            {"email", "user" + std::to_string(i) + "@burst.example"}, {"first_name", "Bea"}, {"last_name", "Burst"}};
        const auto r = c.send_json("POST", "/api/users", body, bearer(owner.token));
        if (r.status == 201) {
          ++created;
          continue;
        }
        std::lock_guard lock(failure_mutex);
        failures.push_back(r.describe());
      }
    });
  }
  for (auto& w : workers) w.join();
  EXPECT_EQ(created.load(), tenants * per_tenant);
  EXPECT_TRUE(failures.empty()) << failures.size()
                                << " failed, the first: " << (failures.empty() ? "" : failures.front());

  // Every tenant holds exactly its own writes (and its owner).
  for (const auto& owner : owners) {
    const auto listed = get("/api/users?page_size=1", owner.token);
    ASSERT_EQ(listed.status, 200u) << listed.describe();
    EXPECT_EQ(json_field(listed.json(), "total"), json::value(per_tenant + 1)) << owner.tenant_id;
  }
}

}  // namespace
}  // namespace tenantd::test
