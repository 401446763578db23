// Tests for the fixed-window rate limiter, driven by an injected clock (no sleeps).
#include "auth/rate_limiter.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace tenantd::auth {
namespace {

using namespace std::chrono_literals;

// A manual clock, far from the steady_clock epoch so windows never start "at zero".
class limiter_test : public testing::Test {
 protected:
  rate_limiter make(std::int64_t limit, std::chrono::seconds window) {
    return rate_limiter(limit, window, [this] { return now_; });
  }
  void advance(std::chrono::steady_clock::duration d) { now_ += d; }

  std::chrono::steady_clock::time_point now_{std::chrono::hours(1000)};
};

TEST_F(limiter_test, fresh_key_is_not_blocked) {
  auto limiter = make(3, 60s);
  EXPECT_FALSE(limiter.blocked_for("client").has_value());
  EXPECT_EQ(limiter.retry_after("client"), 1);
}

TEST_F(limiter_test, limit_reached_blocks) {
  auto limiter = make(3, 60s);
  EXPECT_FALSE(limiter.hit("client"));
  EXPECT_FALSE(limiter.blocked_for("client").has_value());
  EXPECT_FALSE(limiter.hit("client"));
  EXPECT_FALSE(limiter.blocked_for("client").has_value());
  EXPECT_TRUE(limiter.hit("client"));  // the third event reaches the limit
  EXPECT_TRUE(limiter.blocked_for("client").has_value());
  EXPECT_TRUE(limiter.hit("client"));  // and stays there
  EXPECT_TRUE(limiter.blocked_for("client").has_value());
}

TEST_F(limiter_test, limit_of_one) {
  auto limiter = make(1, 10s);
  EXPECT_FALSE(limiter.blocked_for("k").has_value());
  EXPECT_TRUE(limiter.hit("k"));
  EXPECT_TRUE(limiter.blocked_for("k").has_value());
}

TEST_F(limiter_test, window_expiry_unblocks) {
  auto limiter = make(2, 60s);
  limiter.hit("client");
  advance(30s);
  limiter.hit("client");
  EXPECT_TRUE(limiter.blocked_for("client").has_value());
  advance(29s);  // 59 s after the window started
  EXPECT_TRUE(limiter.blocked_for("client").has_value());
  advance(999ms);
  EXPECT_TRUE(limiter.blocked_for("client").has_value());
  advance(1ms);  // exactly 60 s: the window is over
  EXPECT_FALSE(limiter.blocked_for("client").has_value());
  // A new window starts with the next event; one event is below the limit again.
  EXPECT_FALSE(limiter.hit("client"));
  EXPECT_FALSE(limiter.blocked_for("client").has_value());
  EXPECT_TRUE(limiter.hit("client"));
  EXPECT_TRUE(limiter.blocked_for("client").has_value());
}

TEST_F(limiter_test, window_is_fixed_not_sliding) {
  auto limiter = make(3, 60s);
  limiter.hit("k");
  advance(59s);
  limiter.hit("k");
  advance(2s);  // the first window ended; the count restarts at this event
  EXPECT_FALSE(limiter.hit("k"));
  EXPECT_FALSE(limiter.blocked_for("k").has_value());
}

TEST_F(limiter_test, retry_after_counts_down_and_is_at_least_one) {
  auto limiter = make(1, 60s);
  limiter.hit("k");
  ASSERT_TRUE(limiter.blocked_for("k").has_value());
  EXPECT_EQ(limiter.retry_after("k"), 60);
  advance(10s);
  EXPECT_EQ(limiter.retry_after("k"), 50);
  advance(49s);
  EXPECT_EQ(limiter.retry_after("k"), 1);
  advance(999ms);
  EXPECT_EQ(limiter.retry_after("k"), 1);
  advance(1ms);  // expired
  EXPECT_FALSE(limiter.blocked_for("k").has_value());
  EXPECT_GE(limiter.retry_after("k"), 1);
  advance(1h);
  EXPECT_GE(limiter.retry_after("k"), 1);
}

TEST_F(limiter_test, retry_after_rounds_up_so_the_client_is_not_still_blocked) {
  auto limiter = make(1, 60s);
  limiter.hit("k");
  advance(10500ms);  // 49.5 s left
  const auto wait = limiter.retry_after("k");
  EXPECT_EQ(wait, 50);
  // A client that waits exactly Retry-After seconds is let through.
  advance(std::chrono::seconds(wait));
  EXPECT_FALSE(limiter.blocked_for("k").has_value());
}

TEST_F(limiter_test, retry_after_never_exceeds_the_window) {
  auto limiter = make(2, 15min);
  limiter.hit("k");
  limiter.hit("k");
  for (int i = 0; i < 20; ++i) {
    const auto wait = limiter.retry_after("k");
    EXPECT_GE(wait, 1);
    EXPECT_LE(wait, 15 * 60);
    advance(47s);
  }
}

TEST_F(limiter_test, keys_are_independent) {
  auto limiter = make(2, 60s);
  limiter.hit("alice@example.com");
  limiter.hit("alice@example.com");
  EXPECT_TRUE(limiter.blocked_for("alice@example.com").has_value());
  EXPECT_FALSE(limiter.blocked_for("bob@example.com").has_value());
  EXPECT_FALSE(limiter.blocked_for("ALICE@example.com").has_value());
  EXPECT_FALSE(limiter.blocked_for("").has_value());
  // Windows are per key too: bob's starts 30 s after alice's.
  advance(30s);
  EXPECT_FALSE(limiter.hit("bob@example.com"));
  EXPECT_FALSE(limiter.blocked_for("bob@example.com").has_value());
  EXPECT_TRUE(limiter.blocked_for("alice@example.com").has_value());
  EXPECT_TRUE(limiter.hit("bob@example.com"));
  EXPECT_TRUE(limiter.blocked_for("bob@example.com").has_value());
  advance(30s);  // alice's window is over, bob's is not
  EXPECT_FALSE(limiter.blocked_for("alice@example.com").has_value());
  EXPECT_TRUE(limiter.blocked_for("bob@example.com").has_value());
  EXPECT_EQ(limiter.retry_after("bob@example.com"), 30);
}

TEST_F(limiter_test, reset_clears_one_key) {
  auto limiter = make(2, 60s);
  limiter.hit("a");
  limiter.hit("a");
  limiter.hit("b");
  limiter.hit("b");
  ASSERT_TRUE(limiter.blocked_for("a").has_value());
  limiter.reset("a");
  EXPECT_FALSE(limiter.blocked_for("a").has_value());
  EXPECT_TRUE(limiter.blocked_for("b").has_value());
  EXPECT_FALSE(limiter.hit("a"));  // counting starts again from zero
  EXPECT_TRUE(limiter.hit("a"));
  limiter.reset("never-seen");  // no effect, no error
  EXPECT_FALSE(limiter.blocked_for("never-seen").has_value());
}

TEST_F(limiter_test, many_keys_survive_pruning) {
  auto limiter = make(1, 60s);
  for (int i = 0; i < 1000; ++i) limiter.hit("k" + std::to_string(i));
  advance(61s);
  limiter.hit("new");  // prunes expired windows
  EXPECT_TRUE(limiter.blocked_for("new").has_value());
  EXPECT_FALSE(limiter.blocked_for("k0").has_value());
  EXPECT_TRUE(limiter.hit("k0"));  // a new window: one event reaches the limit of one
  EXPECT_TRUE(limiter.blocked_for("k0").has_value());
  EXPECT_FALSE(limiter.blocked_for("k1").has_value());
}

TEST_F(limiter_test, blocked_for_tells_the_wait_only_while_blocked) {
  auto limiter = make(2, 60s);
  EXPECT_EQ(limiter.blocked_for("k"), std::nullopt);
  limiter.hit("k");
  EXPECT_EQ(limiter.blocked_for("k"), std::nullopt);
  limiter.hit("k");
  advance(15s);
  EXPECT_EQ(limiter.blocked_for("k"), std::optional<std::int64_t>(45));
  advance(45s);
  EXPECT_EQ(limiter.blocked_for("k"), std::nullopt);
}

// Someone spraying random emails at the login must not grow memory without bound.
TEST_F(limiter_test, spraying_new_keys_never_tracks_more_than_max_keys) {
  rate_limiter limiter(
      10, std::chrono::hours(1), [this] { return now_; }, 1000);
  for (int i = 0; i < 20000; ++i) {
    limiter.hit("spray-" + std::to_string(i) + "@example.com");
    ASSERT_LE(limiter.size(), 1000u) << "after " << i + 1 << " keys";
    if (i % 1000 == 0) advance(1s);  // all windows stay live: nothing expires by itself
  }
  EXPECT_GT(limiter.size(), 500u) << "eviction should forget a batch, not everything";
}

TEST_F(limiter_test, a_locked_key_survives_spraying) {
  rate_limiter limiter(
      3, 15min, [this] { return now_; }, 100);
  for (int i = 0; i < 3; ++i) limiter.hit("victim@example.com");
  ASSERT_TRUE(limiter.blocked_for("victim@example.com").has_value());
  for (int i = 0; i < 10000; ++i) limiter.hit("noise-" + std::to_string(i));
  EXPECT_TRUE(limiter.blocked_for("victim@example.com").has_value())
      << "eviction forgot a lockout before unblocked keys";
  EXPECT_LE(limiter.size(), 100u);
}

TEST_F(limiter_test, keys_of_any_length_cost_the_same) {
  auto limiter = make(2, 60s);
  const std::string huge(60000, 'x');
  limiter.hit(huge);
  limiter.hit(huge);
  EXPECT_TRUE(limiter.blocked_for(huge).has_value());
  EXPECT_FALSE(limiter.blocked_for(huge.substr(1)).has_value());
  EXPECT_EQ(limiter.size(), 1u);
}

TEST_F(limiter_test, expired_windows_are_pruned) {
  auto limiter = make(5, 60s);
  for (int i = 0; i < 100; ++i) limiter.hit("k" + std::to_string(i));
  EXPECT_EQ(limiter.size(), 100u);
  advance(61s);
  limiter.hit("fresh");
  EXPECT_EQ(limiter.size(), 1u);
}

TEST(rate_limiter, default_clock_works) {
  rate_limiter limiter(2, std::chrono::seconds(3600));
  EXPECT_FALSE(limiter.hit("k"));
  EXPECT_TRUE(limiter.hit("k"));
  EXPECT_TRUE(limiter.blocked_for("k").has_value());
  const auto wait = limiter.retry_after("k");
  EXPECT_GE(wait, 3599);
  EXPECT_LE(wait, 3600);
}

// Events still in flight count: N concurrent reservations never get past the limit.
TEST_F(limiter_test, reservations_in_flight_count_against_the_limit) {
  auto limiter = make(3, 60s);
  int admitted = 0;
  for (int i = 0; i < 10; ++i) admitted += limiter.reserve("account") ? 0 : 1;
  EXPECT_EQ(admitted, 3);
  EXPECT_EQ(limiter.reserve("account"), std::optional<std::int64_t>(1)) << "only in flight: retry soon";
  EXPECT_FALSE(limiter.blocked_for("account").has_value()) << "nothing counted yet";
}

TEST_F(limiter_test, settled_reservations_count_only_when_counted) {
  auto limiter = make(2, 60s);
  ASSERT_FALSE(limiter.reserve("k"));
  ASSERT_FALSE(limiter.reserve("k"));
  limiter.settle("k", false);  // e.g. the right password
  ASSERT_FALSE(limiter.reserve("k")) << "a forgotten reservation frees its place";
  limiter.settle("k", true);
  limiter.settle("k", true);
  EXPECT_TRUE(limiter.blocked_for("k").has_value());
  const auto refused = limiter.reserve("k");
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(*refused, 60);
  advance(61s);
  EXPECT_FALSE(limiter.reserve("k")) << "a new window admits again";
}

}  // namespace
}  // namespace tenantd::auth
