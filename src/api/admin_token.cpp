// Admin token check.
#include "api/admin_token.hpp"

#include <sodium.h>

#include <cctype>

namespace tenantd::api {

bool has_admin_token(const context& ctx) {
  const auto& expected = ctx.svc.settings.admin_token;
  if (expected.empty() || ctx.req.header_count("authorization") != 1) return false;
  const auto value = *ctx.req.header("authorization");
  if (value.size() < 7) return false;
  std::string scheme(value.substr(0, 7));
  for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer ") return false;
  const auto token = value.substr(7);
  return token.size() == expected.size() && sodium_memcmp(token.data(), expected.data(), expected.size()) == 0;
}

}  // namespace tenantd::api
