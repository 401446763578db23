// The login-failure limits shared by every route that checks an account's password: login,
// registering an existing email, and POST /tenants with an existing email as owner.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "api/context.hpp"

namespace tenantd::api {

// Seconds until every failure limit that blocks this account or the caller's client lets it
// through again (a locked account stays locked whatever password comes next); nullopt when
// none blocks. Limiters missing from the services are skipped.
std::optional<std::int64_t> login_lockout(const context& ctx, const std::string& account_key);

// Counts one wrong password for the account (both windows) and the caller's client.
void count_login_failure(const context& ctx, const std::string& account_key);

// 429 too_many_attempts with Retry-After.
response too_many_attempts(const context& ctx, std::int64_t retry_after);

}  // namespace tenantd::api
