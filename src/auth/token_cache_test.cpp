// The verified-token cache: a hit returns the stored claims until exp + leeway, keyed on the
// exact token bytes; its size stays bounded.
#include "auth/token_cache.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace tenantd::auth {
namespace {

std::shared_ptr<const claims> claims_for(const std::string& sub) {
  auto c = std::make_shared<claims>();
  c->sub = sub;
  return c;
}

TEST(token_cache, returns_stored_claims_until_valid_until) {
  token_cache cache;
  cache.store("tok-a", claims_for("a"), 1000, 900);
  auto hit = cache.find("tok-a", 950);
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->sub, "a");
  EXPECT_NE(cache.find("tok-a", 1000), nullptr) << "valid_until itself is still valid";
  EXPECT_EQ(cache.find("tok-a", 1001), nullptr) << "expired";
}

TEST(token_cache, keys_are_the_exact_token_bytes) {
  token_cache cache;
  cache.store("header.payload.sig", claims_for("a"), 1000, 0);
  EXPECT_EQ(cache.find("header.payload.siG", 1), nullptr);
  EXPECT_EQ(cache.find("header.payload.sig ", 1), nullptr);
  EXPECT_EQ(cache.find("header.payload.si", 1), nullptr);
  EXPECT_NE(cache.find("header.payload.sig", 1), nullptr);
}

TEST(token_cache, storing_again_replaces) {
  token_cache cache;
  cache.store("t", claims_for("old"), 1000, 0);
  cache.store("t", claims_for("new"), 2000, 0);
  EXPECT_EQ(cache.find("t", 1500)->sub, "new");
  EXPECT_EQ(cache.size(), 1U);
}

TEST(token_cache, size_stays_bounded_and_expired_entries_go_first) {
  token_cache cache(64);
  // Long-lived entries, then many expired ones, then new ones: the bound holds throughout.
  for (int i = 0; i < 10000; ++i) {
    const bool old = i < 5000;
    cache.store("token-" + std::to_string(i), claims_for(std::to_string(i)), old ? 10 : 100000, old ? 0 : 50);
    ASSERT_LE(cache.size(), 64U);
  }
  EXPECT_NE(cache.find("token-9999", 60), nullptr) << "the newest entry is kept";
  cache.clear();
  EXPECT_EQ(cache.size(), 0U);
  EXPECT_EQ(cache.find("token-9999", 60), nullptr);
}

}  // namespace
}  // namespace tenantd::auth
