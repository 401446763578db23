// Login-failure limits.
#include "api/login_limits.hpp"

#include <algorithm>

#include "api/problem.hpp"

namespace tenantd::api {

std::optional<std::int64_t> login_lockout(const context& ctx, const std::string& account_key) {
  std::optional<std::int64_t> wait;
  const auto consider = [&wait](const auth::rate_limiter* limiter, const std::string& key) {
    if (limiter == nullptr) return;
    if (auto left = limiter->blocked_for(key)) wait = std::max(wait.value_or(0), *left);
  };
  consider(ctx.svc.login_failures_per_account, account_key);
  consider(ctx.svc.login_failures_per_account_per_hour, account_key);
  consider(ctx.svc.login_failures_per_client, ctx.client_address);
  return wait;
}

void count_login_failure(const context& ctx, const std::string& account_key) {
  for (auto* limiter : {ctx.svc.login_failures_per_account, ctx.svc.login_failures_per_account_per_hour})
    if (limiter != nullptr) limiter->hit(account_key);
  if (ctx.svc.login_failures_per_client != nullptr) ctx.svc.login_failures_per_client->hit(ctx.client_address);
}

response too_many_attempts(const context& ctx, std::int64_t retry_after) {
  auto res = problem(make_error(errc::too_many_attempts, "too many failed attempts; retry later"), ctx.request_id);
  res.set_header("Retry-After", std::to_string(retry_after));
  return res;
}

}  // namespace tenantd::api
