// Which address a request comes from, for rate limits, sessions and the access log. The
// TCP peer, unless the peer is a configured trusted proxy (TRUSTED_PROXIES): then the
// right-most X-Forwarded-For entry that is not itself a trusted proxy. Without trusted
// proxies X-Forwarded-For is ignored, so a client cannot choose its own address.
#pragma once
#include <boost/asio/ip/address.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace tenantd::api {

// One network: a single address is /32 (IPv4) or /128 (IPv6).
struct address_range {
  boost::asio::ip::address network;  // host bits cleared
  unsigned prefix_length{0};

  bool contains(const boost::asio::ip::address& address) const noexcept;
  std::string to_string() const;  // "10.0.0.0/8"
};

using trusted_proxies = std::vector<address_range>;

// Parses a comma-separated list of addresses and CIDR ranges ("127.0.0.1, 10.0.0.0/8,
// ::1, fd00::/8"); empty entries are skipped, host bits of a range are cleared. IPv4-mapped
// IPv6 addresses count as IPv4. Throws std::invalid_argument naming the first bad entry.
trusted_proxies parse_trusted_proxies(std::string_view list);

// `peer` is the TCP peer address as text; `forwarded_for` every X-Forwarded-For header value
// in the order received (together they form one comma-separated list, nearest hop last).
// Returns `peer` (normalized) unless it is in `proxies`; then walks the list from the right,
// skipping trusted proxies, and returns the first address that is not one. A malformed entry
// stops the walk: the hop that forwarded it is returned. If every entry is trusted, the
// left-most is returned.
std::string choose_client_address(std::string_view peer, const std::vector<std::string_view>& forwarded_for,
                                  const trusted_proxies& proxies);

// True when `peer` (a TCP peer address as text) is a loopback address: 127.0.0.0/8, ::1, or
// IPv4-mapped ::ffff:127.x.y.z. Text that is not an address is false.
bool is_loopback(std::string_view peer) noexcept;

}  // namespace tenantd::api
