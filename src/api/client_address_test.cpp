// Tests for TRUSTED_PROXIES parsing and the X-Forwarded-For walk.
#include "api/client_address.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace tenantd::api {
namespace {

namespace ip = boost::asio::ip;
using list = std::vector<std::string_view>;

TEST(trusted_proxies, parses_addresses_and_ranges) {
  const auto proxies = parse_trusted_proxies(" 127.0.0.1, 10.0.0.0/8 ,::1,fd00::/8,,192.168.7.9/24");
  ASSERT_EQ(proxies.size(), 5u);
  EXPECT_EQ(proxies[0].to_string(), "127.0.0.1/32");
  EXPECT_EQ(proxies[1].to_string(), "10.0.0.0/8");
  EXPECT_EQ(proxies[2].to_string(), "::1/128");
  EXPECT_EQ(proxies[3].to_string(), "fd00::/8");
  EXPECT_EQ(proxies[4].to_string(), "192.168.7.0/24") << "host bits are cleared";
  EXPECT_TRUE(parse_trusted_proxies("").empty());
  EXPECT_TRUE(parse_trusted_proxies(" , ").empty());
}

TEST(trusted_proxies, rejects_what_is_not_an_address_or_range) {
  for (const char* bad : {"localhost", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1", "1.2.3",
                          "10.0.0.1/8/8", "*"}) {
    EXPECT_THROW((void)parse_trusted_proxies(bad), std::invalid_argument) << bad;
  }
  try {
    (void)parse_trusted_proxies("127.0.0.1, nonsense");
    FAIL() << "accepted nonsense";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("nonsense"), std::string::npos) << e.what();
  }
}

TEST(trusted_proxies, ranges_contain_what_they_should) {
  const auto p = parse_trusted_proxies("10.0.0.0/8,127.0.0.1,fd00::/8,0.0.0.0/0");
  EXPECT_TRUE(p[0].contains(ip::make_address("10.255.1.2")));
  EXPECT_FALSE(p[0].contains(ip::make_address("11.0.0.1")));
  EXPECT_TRUE(p[1].contains(ip::make_address("127.0.0.1")));
  EXPECT_FALSE(p[1].contains(ip::make_address("127.0.0.2")));
  EXPECT_TRUE(p[1].contains(ip::make_address("::ffff:127.0.0.1"))) << "IPv4-mapped counts as IPv4";
  EXPECT_TRUE(p[2].contains(ip::make_address("fd12:3456::1")));
  EXPECT_FALSE(p[2].contains(ip::make_address("fe80::1")));
  EXPECT_FALSE(p[2].contains(ip::make_address("10.0.0.1")));
  EXPECT_TRUE(p[3].contains(ip::make_address("203.0.113.5")));
  EXPECT_FALSE(p[3].contains(ip::make_address("2001:db8::1"))) << "an IPv4 range never holds IPv6";
}

TEST(client_address, forwarded_for_is_ignored_without_trusted_proxies) {
  const trusted_proxies none;
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"203.0.113.7"}, none), "127.0.0.1");
  EXPECT_EQ(choose_client_address("::ffff:192.0.2.1", list{"203.0.113.7"}, none), "192.0.2.1");
  EXPECT_EQ(choose_client_address("2001:db8::5", list{}, none), "2001:db8::5");
}

TEST(client_address, forwarded_for_is_ignored_from_an_untrusted_peer) {
  const auto proxies = parse_trusted_proxies("10.0.0.0/8");
  EXPECT_EQ(choose_client_address("198.51.100.4", list{"203.0.113.7"}, proxies), "198.51.100.4");
}

TEST(client_address, a_trusted_peer_hands_over_to_the_rightmost_untrusted_entry) {
  const auto proxies = parse_trusted_proxies("127.0.0.1,10.0.0.0/8");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"203.0.113.7"}, proxies), "203.0.113.7");
  // A client that prepends a made-up address does not get to choose: the right-most
  // untrusted entry is the one our proxy appended.
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"1.1.1.1, 203.0.113.7"}, proxies), "203.0.113.7");
  // Chains of trusted proxies are skipped.
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"1.1.1.1, 203.0.113.7, 10.1.1.1, 10.2.2.2"}, proxies),
            "203.0.113.7");
  // Several headers form one list, the last header holding the nearest hop.
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"1.1.1.1", "203.0.113.7, 10.1.1.1"}, proxies), "203.0.113.7");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"203.0.113.7", "10.1.1.1"}, proxies), "203.0.113.7");
}

TEST(client_address, no_forwarded_for_from_a_trusted_peer_is_the_peer) {
  const auto proxies = parse_trusted_proxies("127.0.0.1");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{}, proxies), "127.0.0.1");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{" "}, proxies), "127.0.0.1");
}

TEST(client_address, all_trusted_gives_the_leftmost) {
  const auto proxies = parse_trusted_proxies("10.0.0.0/8");
  EXPECT_EQ(choose_client_address("10.0.0.1", list{"10.9.9.9, 10.8.8.8"}, proxies), "10.9.9.9");
}

TEST(client_address, garbage_stops_the_walk_at_the_hop_that_forwarded_it) {
  const auto proxies = parse_trusted_proxies("127.0.0.1,10.0.0.0/8");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"unknown"}, proxies), "127.0.0.1");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"203.0.113.7, not-an-ip, 10.1.1.1"}, proxies), "10.1.1.1");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"203.0.113.7, _hidden"}, proxies), "127.0.0.1");
}

TEST(client_address, ports_brackets_and_mapped_addresses_are_understood) {
  const auto proxies = parse_trusted_proxies("127.0.0.1,::1");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"203.0.113.7:51234"}, proxies), "203.0.113.7");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"[2001:db8::7]:443"}, proxies), "2001:db8::7");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"[2001:db8::7]"}, proxies), "2001:db8::7");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"2001:db8::7"}, proxies), "2001:db8::7");
  EXPECT_EQ(choose_client_address("::1", list{"::ffff:203.0.113.7"}, proxies), "203.0.113.7");
  EXPECT_EQ(choose_client_address("::ffff:127.0.0.1", list{"203.0.113.8"}, proxies), "203.0.113.8");
  EXPECT_EQ(choose_client_address("127.0.0.1", list{"[203.0.113.7]"}, proxies), "127.0.0.1") << "v4 in brackets";
}

// GET /metrics on the main port answers these peers only.
TEST(client_address, loopback_peers) {
  for (const char* peer : {"127.0.0.1", "127.1.2.3", "127.255.255.254", "::1", "::ffff:127.0.0.1", "::ffff:127.9.9.9"})
    EXPECT_TRUE(is_loopback(peer)) << peer;
  for (const char* peer : {"192.0.2.2", "10.0.0.1", "128.0.0.1", "::", "::2", "fd00::2", "::ffff:192.0.2.2", "0.0.0.0",
                           "", "localhost", "127.0.0.1 "})
    EXPECT_FALSE(is_loopback(peer)) << peer;
}

}  // namespace
}  // namespace tenantd::api
