// Client addresses as rate-limit keys.
#include "auth/client_key.hpp"

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/network_v6.hpp>

namespace tenantd::auth {
namespace ip = boost::asio::ip;

std::string client_key(std::string_view address) {
  boost::system::error_code ec;
  const auto parsed = ip::make_address(std::string(address), ec);
  if (ec) return std::string(address);
  if (parsed.is_v4()) return parsed.to_string();
  const auto v6 = parsed.to_v6();
  if (v6.is_v4_mapped()) return ip::make_address_v4(ip::v4_mapped, v6).to_string();
  return ip::make_network_v6(v6, 64).canonical().to_string();
}

}  // namespace tenantd::auth
