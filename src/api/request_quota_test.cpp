// Token buckets and request quotas with a fake clock: rate, burst, refill, Retry-After,
// independent keys and scopes, quotas turned off, and the memory bound.
#include "api/request_quota.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace tenantd::api {
namespace {

using namespace std::chrono_literals;
using time_point = std::chrono::steady_clock::time_point;

const time_point t0 = time_point{} + 1000s;

TEST(token_buckets, a_new_key_gets_the_burst_then_waits) {
  token_buckets b(5, 10, 100);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b.take("acme", t0), 0) << i;
  EXPECT_EQ(b.take("acme", t0), 1) << "one token comes back in 0.2 s: Retry-After is at least 1";
}

TEST(token_buckets, tokens_refill_at_the_rate_up_to_the_burst) {
  token_buckets b(5, 10, 100);
  for (int i = 0; i < 10; ++i) ASSERT_EQ(b.take("acme", t0), 0);
  ASSERT_GT(b.take("acme", t0), 0);
  EXPECT_GT(b.take("acme", t0 + 100ms), 0) << "half a token is not enough";
  EXPECT_EQ(b.take("acme", t0 + 200ms), 0) << "one token after 1/rate seconds";
  EXPECT_GT(b.take("acme", t0 + 200ms), 0);
  // A long pause refills to the burst, not beyond.
  const auto later = t0 + 1h;
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b.take("acme", later), 0) << i;
  EXPECT_GT(b.take("acme", later), 0);
}

TEST(token_buckets, retry_after_is_the_whole_seconds_until_a_token) {
  token_buckets slow(0.25, 1, 100);  // one token every 4 s
  ASSERT_EQ(slow.take("k", t0), 0);
  EXPECT_EQ(slow.take("k", t0), 4);
  EXPECT_EQ(slow.take("k", t0 + 1500ms), 3) << "2.5 s left, rounded up";
  EXPECT_EQ(slow.take("k", t0 + 3999ms), 1);
  EXPECT_EQ(slow.take("k", t0 + 4s), 0) << "waiting Retry-After is enough";
  token_buckets fast(1000, 1, 100);
  ASSERT_EQ(fast.take("k", t0), 0);
  EXPECT_EQ(fast.take("k", t0), 1) << "never 0 seconds";
}

TEST(token_buckets, refused_requests_do_not_use_up_tokens) {
  token_buckets b(1, 1, 100);
  ASSERT_EQ(b.take("k", t0), 0);
  for (int i = 0; i < 50; ++i) ASSERT_GT(b.take("k", t0 + std::chrono::milliseconds(i * 10)), 0);
  EXPECT_EQ(b.take("k", t0 + 1s), 0) << "a client retrying too early is not pushed further back";
}

TEST(token_buckets, keys_are_independent) {
  token_buckets b(1, 2, 100);
  ASSERT_EQ(b.take("acme", t0), 0);
  ASSERT_EQ(b.take("acme", t0), 0);
  ASSERT_GT(b.take("acme", t0), 0);
  EXPECT_EQ(b.take("globex", t0), 0);
  EXPECT_EQ(b.take("globex", t0), 0);
  EXPECT_GT(b.take("globex", t0), 0);
  EXPECT_GT(b.take("acme", t0), 0);
}

TEST(token_buckets, memory_is_bounded_and_full_buckets_go_first) {
  constexpr std::size_t max_keys = 64;  // 4 per shard
  token_buckets b(1, 2, max_keys);
  for (int i = 0; i < 10000; ++i) {
    (void)b.take("key-" + std::to_string(i), t0 + std::chrono::milliseconds(i));
    ASSERT_LE(b.size(), max_keys) << i;
  }
  // An emptied bucket survives a flood of new keys: the fuller buckets are forgotten first.
  token_buckets kept(1, 2, max_keys);
  ASSERT_EQ(kept.take("busy", t0), 0);
  ASSERT_EQ(kept.take("busy", t0), 0);
  ASSERT_GT(kept.take("busy", t0), 0);
  for (int i = 0; i < 1000; ++i) (void)kept.take("idle-" + std::to_string(i), t0);  // each keeps 1 of 2
  EXPECT_LE(kept.size(), max_keys);
  EXPECT_GT(kept.take("busy", t0), 0) << "the empty bucket was not forgotten";
}

TEST(token_buckets, concurrent_takes_never_hand_out_more_than_the_burst) {
  token_buckets b(1, 100, 1000);
  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        if (b.take("shared", t0) == 0) ++admitted;
        (void)b.take("own-" + std::to_string(t * 500 + i), t0);  // other shards, other keys
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(admitted.load(), 100);
  EXPECT_LE(b.size(), 1008U);
}

TEST(request_quota, session_quota_is_checked_before_the_tenant_quota) {
  auto now = t0;
  request_quota q({.tenant_rate = 1, .tenant_burst = 3, .session_rate = 1, .session_burst = 2}, [&] { return now; });
  EXPECT_FALSE(q.admit("acme", "s1"));
  EXPECT_FALSE(q.admit("acme", "s1"));
  auto denied = q.admit("acme", "s1");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->scope, quota_scope::session);
  EXPECT_EQ(denied->retry_after, 1);
  // s1's refused request did not use the tenant's third token: s2 gets it.
  EXPECT_FALSE(q.admit("acme", "s2"));
  denied = q.admit("acme", "s2");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->scope, quota_scope::tenant);
  EXPECT_FALSE(q.admit("globex", "s3")) << "another tenant is unaffected";
  EXPECT_EQ(q.throttled(quota_scope::session), 1U);
  EXPECT_EQ(q.throttled(quota_scope::tenant), 1U);
  now += 1s;
  EXPECT_FALSE(q.admit("acme", "s2")) << "after Retry-After";
}

TEST(request_quota, a_rate_of_zero_turns_a_quota_off) {
  request_quota none({.tenant_rate = 0, .tenant_burst = 0, .session_rate = 0, .session_burst = 0}, [] { return t0; });
  for (int i = 0; i < 10000; ++i) ASSERT_FALSE(none.admit("acme", "s1"));
  request_quota tenant_only({.tenant_rate = 1, .tenant_burst = 2, .session_rate = 0, .session_burst = 0},
                            [] { return t0; });
  EXPECT_FALSE(tenant_only.admit("acme", "s1"));
  EXPECT_FALSE(tenant_only.admit("acme", "s1"));
  EXPECT_TRUE(tenant_only.admit("acme", "s2"));
  request_quota session_only({.tenant_rate = 0, .tenant_burst = 0, .session_rate = 1, .session_burst = 1},
                             [] { return t0; });
  EXPECT_FALSE(session_only.admit("acme", "s1"));
  EXPECT_TRUE(session_only.admit("acme", "s1"));
  EXPECT_FALSE(session_only.admit("acme", "s2"));
}

TEST(request_quota, sessions_of_different_tenants_are_apart_and_long_ids_work) {
  request_quota q({.tenant_rate = 0, .tenant_burst = 0, .session_rate = 1, .session_burst = 1}, [] { return t0; });
  EXPECT_FALSE(q.admit("acme", "same-sid"));
  EXPECT_FALSE(q.admit("globex", "same-sid"));
  const std::string long_sid(300, 's');  // past the stack buffer
  EXPECT_FALSE(q.admit("acme", long_sid));
  EXPECT_TRUE(q.admit("acme", long_sid));
}

}  // namespace
}  // namespace tenantd::api
