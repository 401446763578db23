// Parsing a database server's URL.
#include "tenancy/server_url.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <array>

namespace tenantd::tenancy {
namespace {

error url_error(std::string message) {
  auto e = make_error(errc::invalid_input, "the server URL is not usable: " + message);
  e.fields.push_back({"url", std::move(message)});
  return e;
}

bool valid_sslmode(std::string_view mode) {
  constexpr std::array<std::string_view, 6> modes{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"};
  for (const auto m : modes)
    if (m == mode) return true;
  return false;
}

}  // namespace

result<server_url> parse_server_url(std::string_view text, const std::string& default_user,
                                    const std::string& default_password) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return url_error("expected a URL of the postgresql scheme: [user[:password]@]host[:port][/database]");
  const auto& url = *parsed;
  if (url.scheme() != "postgresql" && url.scheme() != "postgres")
    return url_error("the scheme must be postgresql (or postgres)");
  if (url.host().empty()) return url_error("the URL must name a host");
  server_url out;
  out.endpoint.host = std::string(url.encoded_host().decode());
  if (url.has_port()) {
    const auto port = std::string(url.port());
    const bool digits = !port.empty() && port.size() <= 5 &&
                        std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!digits || std::stoi(port) < 1 || std::stoi(port) > 65535)
      return url_error("the port must be between 1 and 65535");
    out.endpoint.port = std::string(url.port());
  } else {
    out.endpoint.port = "5432";
  }
  const bool has_user = url.has_userinfo() && !url.user().empty();
  out.endpoint.user = has_user ? std::string(url.user()) : default_user;
  out.endpoint.password = url.has_password() ? std::string(url.password()) : default_password;
  auto path = std::string(url.path());
  if (!path.empty() && path.front() == '/') path.erase(0, 1);
  if (path.find('/') != std::string::npos) return url_error("the path may name one database only");
  if (!path.empty()) out.maintenance_database = path;
  for (const auto& p : url.params()) {
    if (p.key == "sslmode") {
      if (!valid_sslmode(p.value))
        return url_error("sslmode must be disable, allow, prefer, require, verify-ca or verify-full");
      out.endpoint.sslmode = p.value;
    } else if (p.key == "sslrootcert") {
      out.endpoint.sslrootcert = p.value;
    } else {
      return url_error("unknown URL parameter '" + std::string(p.key) + "' (sslmode and sslrootcert are known)");
    }
  }
  return out;
}

}  // namespace tenantd::tenancy
