// The invalidation payload: every kind survives format -> parse, "*" is everything, and
// malformed payloads are refused (the receiver then clears everything).
#include "domain/invalidation.hpp"

#include <gtest/gtest.h>

namespace tenantd {
namespace {

TEST(invalidation, every_kind_survives_a_round_trip) {
  for (const auto& change :
       {invalidation::everything(), invalidation::of_tenant("acme"), invalidation::of_account("a-1"),
        invalidation::of_member("acme", "a-1"), invalidation::of_session("s-1"), invalidation::of_server("db-2"),
        invalidation::hold_writes("acme", 1200), invalidation::release_writes("acme")}) {
    const auto parsed = parse_invalidation(format(change));
    ASSERT_TRUE(parsed) << format(change);
    EXPECT_EQ(*parsed, change) << format(change);
  }
}

TEST(invalidation, the_payload_texts_are_the_ones_on_the_channel) {
  EXPECT_EQ(format(invalidation::of_tenant("acme")), "tenant:acme");
  EXPECT_EQ(format(invalidation::of_account("a-1")), "account:a-1");
  EXPECT_EQ(format(invalidation::of_member("acme", "a-1")), "member:acme:a-1");
  EXPECT_EQ(format(invalidation::of_session("s-1")), "session:s-1");
  EXPECT_EQ(format(invalidation::of_server("db-2")), "server:db-2");
  EXPECT_EQ(format(invalidation::hold_writes("acme", 1200)), "hold:acme:1200");
  EXPECT_EQ(format(invalidation::release_writes("acme")), "release:acme");
  EXPECT_EQ(format(invalidation::everything()), "*");
}

TEST(invalidation, star_means_everything) {
  const auto parsed = parse_invalidation("*");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->what, invalidation::scope::everything);
  EXPECT_TRUE(parsed->tenant_id.empty());
}

TEST(invalidation, the_schema_version_notify_of_sql_parses_as_a_tenant) {
  // db/master_repository.cpp builds this one in SQL: 'tenant:' || id.
  const auto parsed = parse_invalidation("tenant:acme_2");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, invalidation::of_tenant("acme_2"));
}

TEST(invalidation, malformed_payloads_are_refused) {
  for (const char* payload : {"",
                              "tenant",
                              "tenant:",
                              "tenant:a:b",
                              "member:acme",
                              "member:acme:",
                              "member::a-1",
                              "member:acme:a-1:x",
                              "session:",
                              "account:",
                              "tenants:acme",
                              "TENANT:acme",
                              ":acme",
                              "**",
                              " *",
                              "unknown:x",
                              "hold:acme",
                              "hold:acme:",
                              "hold::5",
                              "hold:acme:0",
                              "hold:acme:-1",
                              "hold:acme:5x",
                              "hold:acme:99999",
                              "release:",
                              "release:a:b"}) {
    EXPECT_FALSE(parse_invalidation(payload)) << '"' << payload << '"';
  }
}

}  // namespace
}  // namespace tenantd
