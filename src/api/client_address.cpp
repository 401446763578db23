// Trusted-proxy ranges and the X-Forwarded-For walk.
#include "api/client_address.hpp"

#include <boost/asio/ip/network_v4.hpp>
#include <boost/asio/ip/network_v6.hpp>

#include <charconv>
#include <optional>
#include <stdexcept>

namespace tenantd::api {
namespace ip = boost::asio::ip;
namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// IPv4-mapped IPv6 (::ffff:10.0.0.1, what a dual-stack socket reports) as plain IPv4.
ip::address normalize(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  return a;
}

std::optional<ip::address> parse_address(std::string_view text) {
  boost::system::error_code ec;
  auto a = ip::make_address(std::string(text), ec);
  if (ec) return std::nullopt;
  return normalize(a);
}

// An X-Forwarded-For entry: an address, "[v6]", "[v6]:port" or "v4:port" (some proxies add
// the port).
std::optional<ip::address> parse_forwarded(std::string_view entry) {
  entry = trim(entry);
  if (!entry.empty() && entry.front() == '[') {
    const auto close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const auto rest = entry.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return std::nullopt;
    auto a = parse_address(entry.substr(1, close - 1));
    if (!a || !a->is_v6()) return std::nullopt;
    return a;
  }
  if (const auto colon = entry.find(':');
      colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
    auto a = parse_address(entry.substr(0, colon));
    if (!a || !a->is_v4()) return std::nullopt;
    return a;
  }
  return parse_address(entry);
}

bool trusted(const ip::address& a, const trusted_proxies& proxies) noexcept {
  for (const auto& range : proxies)
    if (range.contains(a)) return true;
  return false;
}

}  // namespace

bool address_range::contains(const ip::address& candidate) const noexcept {
  const auto a = normalize(candidate);
  if (a.is_v4() != network.is_v4()) return false;
  if (a.is_v4()) {
    const auto mask = prefix_length == 0 ? 0U : ~0U << (32U - prefix_length);
    return (a.to_v4().to_uint() & mask) == network.to_v4().to_uint();
  }
  const auto bytes = a.to_v6().to_bytes();
  const auto net = network.to_v6().to_bytes();
  unsigned left = prefix_length;
  for (std::size_t i = 0; i < bytes.size() && left > 0; ++i) {
    const unsigned bits = left >= 8 ? 8U : left;
    const auto mask = static_cast<unsigned char>(0xFFU << (8U - bits));
    if ((bytes[i] & mask) != (net[i] & mask)) return false;
    left -= bits;
  }
  return true;
}

std::string address_range::to_string() const { return network.to_string() + "/" + std::to_string(prefix_length); }

trusted_proxies parse_trusted_proxies(std::string_view list) {
  trusted_proxies out;
  while (!list.empty()) {
    const auto comma = list.find(',');
    const auto entry = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    if (entry.empty()) continue;
    const auto bad = [&entry](const char* why) {
      return std::invalid_argument("'" + std::string(entry) + "' is not " + why);
    };
    const auto slash = entry.find('/');
    auto address = parse_address(entry.substr(0, slash));
    if (!address) throw bad("an IPv4 or IPv6 address or CIDR range");
    const unsigned bits = address->is_v4() ? 32U : 128U;
    unsigned prefix = bits;
    if (slash != std::string_view::npos) {
      const auto digits = entry.substr(slash + 1);
      auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
      if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() || prefix > bits)
        throw bad("a CIDR range (the prefix length must be 0-32 for IPv4, 0-128 for IPv6)");
    }
    if (address->is_v4())
      address = ip::make_network_v4(address->to_v4(), static_cast<unsigned short>(prefix)).network();
    else
      address = ip::make_network_v6(address->to_v6(), static_cast<unsigned short>(prefix)).network();
    out.push_back(address_range{*address, prefix});
  }
  return out;
}

bool is_loopback(std::string_view peer) noexcept {
  const auto a = parse_address(peer);
  return a && a->is_loopback();
}

std::string choose_client_address(std::string_view peer, const std::vector<std::string_view>& forwarded_for,
                                  const trusted_proxies& proxies) {
  const auto peer_address = parse_address(peer);
  if (!peer_address) return std::string(peer);
  ip::address chosen = *peer_address;
  if (proxies.empty() || !trusted(chosen, proxies)) return chosen.to_string();
  // Right to left over every header's entries (the last header holds the nearest hop).
  for (auto header = forwarded_for.rbegin(); header != forwarded_for.rend(); ++header) {
    std::string_view rest = *header;
    while (!rest.empty()) {
      const auto comma = rest.rfind(',');
      const auto entry = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(0, comma);
      if (trim(entry).empty()) continue;
      const auto hop = parse_forwarded(entry);
      if (!hop) return chosen.to_string();  // garbage: trust nothing left of it
      chosen = *hop;
      if (!trusted(chosen, proxies)) return chosen.to_string();
    }
  }
  return chosen.to_string();
}

}  // namespace tenantd::api
