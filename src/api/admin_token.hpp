// The platform-admin credential: `Authorization: Bearer <ADMIN_TOKEN>`, compared in constant time.
#pragma once
#include "api/context.hpp"

namespace tenantd::api {

// True when exactly one Authorization header carries the configured admin token.
bool has_admin_token(const context& ctx);

}  // namespace tenantd::api
