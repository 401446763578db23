// Registration and login.
#include "api/dto.hpp"
#include "api/handlers.hpp"
#include "api/login_limits.hpp"
#include "api/problem.hpp"
#include "auth/client_key.hpp"
#include "domain/validation.hpp"

namespace tenantd::api::handlers {

// POST /auth/register
awaitable<response> register_account(context& ctx) {
  body_reader body(ctx.body);
  auto email = body.email("email", true);
  auto password = body.password("password", true);
  auto first = body.name("first_name", true, 1, 100);
  auto last = body.name("last_name", true, 1, 100);
  auto body_tenant = body.string("tenant_id", false);
  identity::consent given{body.string("claim_token", false), body.string("invitation", false)};
  if (given.claim_token && given.invitation) body.add_error("invitation", "give claim_token or invitation, not both");
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);

  std::optional<std::string> tenant_id = body_tenant;
  if (auto header = ctx.req.header("x-tenant-id")) {
    if (ctx.req.header_count("x-tenant-id") != 1 || (tenant_id && *tenant_id != *header))
      co_return problem(make_error(errc::invalid_input, "tenant_id and X-Tenant-ID name different tenants"),
                        ctx.request_id);
    tenant_id = std::string(*header);
  }
  if (!tenant_id || tenant_id->empty())
    co_return problem(make_error(errc::tenant_required, "name the tenant with tenant_id or X-Tenant-ID"),
                      ctx.request_id);
  if (validation::check_tenant_id(*tenant_id))
    co_return problem(make_error(errc::tenant_not_found, "no such tenant"), ctx.request_id);

  // Every well-formed registration counts against the client (each may cost a password hash).
  if (auto* limiter = ctx.svc.registrations_per_client) {
    if (auto wait = limiter->blocked_for(auth::client_key(ctx.client_address))) {
      auto res = problem(make_error(errc::too_many_requests, "too many registrations from this client; retry later"),
                         ctx.request_id);
      res.set_header("Retry-After", std::to_string(*wait));
      co_return res;
    }
    limiter->hit(auth::client_key(ctx.client_address));
  }
  // Registering an existing email checks its password, so it is a login attempt too: a locked
  // account is refused and a wrong password counts as a failure.
  auto attempt = co_await password_attempt::begin(ctx, *email, attempt_kind::password_proof);
  if (attempt.refusal()) co_return *attempt.refusal();

  const identity::person who{*email, *password, *first, *last};
  auto granted = co_await ctx.svc.accounts->register_member(*tenant_id, who, given);
  const bool wrong_password = !granted && granted.err().code == errc::email_taken;
  co_await attempt.finish(wrong_password ? attempt_outcome::failed : attempt_outcome::other);
  if (!granted) co_return problem(granted.err(), ctx.request_id);
  auto out = to_json(granted->user, granted->tenant_id);
  out["role"] = granted->role;
  co_return json_response(201, out);
}

static response login_response(const identity::login_success& s) {
  boost::json::object out;
  add_tokens(out, s.tokens);
  out["user"] = to_json(s.user, s.tenant_id);
  out["tenant_id"] = s.tenant_id;
  out["role"] = s.role;
  out["permissions"] = to_json(permission_names(s.permissions));
  return json_response(200, out);
}

// POST /auth/login
awaitable<response> login(context& ctx) {
  body_reader body(ctx.body);
  auto email = body.string("email", true);
  auto password = body.string("password", true);
  auto tenant_id = body.string("tenant_id", false);
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  const auto account_key = validation::normalize_email(*email);

  auto attempt = co_await password_attempt::begin(ctx, account_key, attempt_kind::login);
  if (attempt.refusal()) co_return *attempt.refusal();

  auto outcome = co_await ctx.svc.accounts->login(account_key, *password, tenant_id, ctx.client_address);
  const bool wrong = outcome.failure && outcome.failure->code == errc::invalid_credentials;
  co_await attempt.finish(outcome.success ? attempt_outcome::succeeded
                          : wrong         ? attempt_outcome::failed
                                          : attempt_outcome::other);
  if (outcome.failure) {
    boost::json::object extra;
    if (!outcome.tenant_choices.empty()) extra["tenants"] = to_json(outcome.tenant_choices);
    co_return problem(*outcome.failure, ctx.request_id, extra);
  }
  co_return login_response(*outcome.success);
}

// POST /auth/refresh
awaitable<response> refresh(context& ctx) {
  body_reader body(ctx.body);
  auto token = body.string("refresh_token", true);
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  auto outcome = co_await ctx.svc.accounts->refresh(*token);
  if (outcome.failure) co_return problem(*outcome.failure, ctx.request_id);
  co_return login_response(*outcome.success);
}

// POST /auth/logout
awaitable<response> logout(context& ctx) {
  body_reader body(ctx.body);
  const bool all = body.as_bool("all", false);
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  co_await ctx.svc.accounts->logout(ctx.who(), all);
  co_return no_content();
}

}  // namespace tenantd::api::handlers
