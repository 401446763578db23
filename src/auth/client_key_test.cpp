// Tests for client_key: IPv6 clients count by their /64, IPv4 ones by their address.
#include "auth/client_key.hpp"

#include <gtest/gtest.h>

namespace tenantd::auth {
namespace {

TEST(client_key, ipv4_addresses_are_their_own_key) {
  EXPECT_EQ(client_key("192.0.2.7"), "192.0.2.7");
  EXPECT_NE(client_key("192.0.2.7"), client_key("192.0.2.8"));
}

TEST(client_key, ipv6_addresses_in_one_64_share_a_key) {
  EXPECT_EQ(client_key("2001:db8:1:2::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(client_key("2001:db8:1:2:ffff:ffff:ffff:ffff"), client_key("2001:db8:1:2::1"));
  EXPECT_EQ(client_key("2001:DB8:1:2:a:b:c:d"), client_key("2001:db8:1:2::1"));
}

TEST(client_key, ipv6_addresses_in_different_64s_differ) {
  EXPECT_NE(client_key("2001:db8:1:2::1"), client_key("2001:db8:1:3::1"));
  EXPECT_NE(client_key("::1"), client_key("2001:db8::1"));
}

TEST(client_key, ipv4_mapped_ipv6_counts_as_ipv4) {
  EXPECT_EQ(client_key("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_NE(client_key("::ffff:192.0.2.7"), client_key("::ffff:192.0.2.8"));
}

TEST(client_key, text_that_is_not_an_address_is_kept) { EXPECT_EQ(client_key("unknown"), "unknown"); }

}  // namespace
}  // namespace tenantd::auth
