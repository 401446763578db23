// Security catalogue S35: request quotas per tenant and per session. Past a quota an
// authenticated request gets 429 too_many_requests with Retry-After; other tenants and
// sessions are unaffected; after Retry-After seconds requests go through again.
#include <charconv>
#include <chrono>
#include <thread>

#include "support/e2e_fixture.hpp"

namespace tenantd::test {
namespace {

// The Retry-After of a 429 as a number of seconds (0 when missing or not a number).
int retry_after(const http_response& r) {
  const auto text = r.header_or_empty("retry-after");
  int seconds = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  return ec == std::errc{} && end == text.data() + text.size() ? seconds : 0;
}

void expect_throttled(const http_response& r) {
  expect_problem(r, 429, "too_many_requests");
  EXPECT_GE(retry_after(r), 1) << r.describe();
}

class quota_test : public e2e_test {
 protected:
  // Sends GET /api/me with `token` until the first refusal (at most `limit` requests); returns
  // it, or nullopt. `accepted` counts the 200s before it.
  std::optional<http_response> first_refusal(std::string_view token, int limit, int& accepted) const {
    accepted = 0;
    for (int i = 0; i < limit; ++i) {
      auto r = get("/api/me", token);
      if (r.status != 200) return r;
      ++accepted;
    }
    return std::nullopt;
  }
  // GET /metrics (Prometheus text, so without the JSON checks of get()).
  std::string metrics_text() const {
    http_client raw(server().port());
    raw.set_checks(false);
    const auto r = raw.get("/metrics");
    EXPECT_EQ(r.status, 200u) << r.describe();
    return r.body;
  }
};

// A rate of 1 per second makes the test independent of the machine's speed: a refill comes
// at most once a second, far slower than the requests below are sent.
class tenant_request_quota : public quota_test {
 protected:
  env_overrides server_env() const override {
    return {{"TENANT_REQUESTS_PER_SECOND", "1"}, {"TENANT_REQUEST_BURST", "5"}};
  }
};

TEST_F(tenant_request_quota, past_the_burst_a_tenant_gets_429_until_retry_after) {
  const auto first = tenant_with_owner("quota_a");
  const auto second = login(owner_email("quota_a"), default_password, "quota_a");  // another session
  const auto other = tenant_with_owner("quota_b");

  int accepted = 0;
  const auto refused = first_refusal(first.token, 40, accepted);
  const auto since_refusal = std::chrono::steady_clock::now();  // the bucket is empty from here
  ASSERT_TRUE(refused.has_value()) << "40 requests at once must go past a burst of 5";
  EXPECT_GE(accepted, 5) << "the burst is let through";
  expect_throttled(*refused);
  EXPECT_EQ(refused->body.find(first.token), std::string::npos);

  EXPECT_EQ(get("/api/me", other.token).status, 200u) << "another tenant is not affected";
  // The other session of the same tenant shares its quota (its own session quota is off). At
  // 1 token per second, as many can have come back as whole seconds have passed since the
  // refusal, plus one: counted from the clock rather than assumed, so a slow run passes too.
  int second_accepted = 0;
  const auto second_refused = first_refusal(second.token, 5, second_accepted);
  ASSERT_TRUE(second_refused.has_value()) << "the tenant quota covers all its sessions";
  const auto refilled =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - since_refusal).count();
  EXPECT_LE(second_accepted, 1 + static_cast<int>(refilled));
  expect_throttled(*second_refused);

  const auto metrics = metrics_text();
  EXPECT_NE(metrics.find("tenantd_requests_throttled_total{scope=\"tenant\"} "), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("tenantd_requests_throttled_total{scope=\"tenant\"} 0\n"), std::string::npos) << metrics;

  // Waiting as long as Retry-After says is enough (the behaviour under test, so a real wait).
  std::this_thread::sleep_for(std::chrono::seconds(retry_after(*second_refused)));
  const auto again = get("/api/me", first.token);
  EXPECT_EQ(again.status, 200u) << again.describe();
}

class session_request_quota : public quota_test {
 protected:
  env_overrides server_env() const override {
    return {{"TENANT_REQUESTS_PER_SECOND", "0"}, {"SESSION_REQUESTS_PER_SECOND", "1"}, {"SESSION_REQUEST_BURST", "3"}};
  }
};

TEST_F(session_request_quota, one_session_past_its_quota_leaves_the_tenants_other_sessions_alone) {
  const auto busy = tenant_with_owner("quota_s");
  const auto calm = login(owner_email("quota_s"), default_password, "quota_s");

  int accepted = 0;
  const auto refused = first_refusal(busy.token, 20, accepted);
  ASSERT_TRUE(refused.has_value()) << "20 requests at once must go past a burst of 3";
  EXPECT_GE(accepted, 3);
  expect_throttled(*refused);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(get("/api/me", calm.token).status, 200u) << "request " << i;
  const auto metrics = metrics_text();
  EXPECT_NE(metrics.find("tenantd_requests_throttled_total{scope=\"session\"} "), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("tenantd_requests_throttled_total{scope=\"session\"} 0\n"), std::string::npos) << metrics;
}

}  // namespace
}  // namespace tenantd::test
