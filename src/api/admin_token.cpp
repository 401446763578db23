// Admin token check.
#include "api/admin_token.hpp"

#include <sodium.h>

#include "api/bearer.hpp"

namespace tenantd::api {

bool has_admin_token(const context& ctx) {
  const auto& expected = ctx.svc.settings.admin_token;
  if (expected.empty()) return false;
  const auto token = bearer_token(ctx.req);
  return token && token->size() == expected.size() &&
         sodium_memcmp(token->data(), expected.data(), expected.size()) == 0;
}

}  // namespace tenantd::api
