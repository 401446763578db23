// Tenant creation (public sign-up or with the admin token), with its owner or a claim token.
#include "api/admin_token.hpp"
#include "api/dto.hpp"
#include "api/handlers.hpp"
#include "api/login_limits.hpp"
#include "api/problem.hpp"
#include "auth/client_key.hpp"
#include "domain/validation.hpp"

namespace tenantd::api::handlers {
namespace {

// The optional "owner" object; its field errors are reported as owner.<field>.
std::optional<identity::person> read_owner(body_reader& body) {
  const auto* owner_json = body.object("owner");
  if (!owner_json) return std::nullopt;
  body_reader owner_body(*owner_json);
  auto email = owner_body.email("email", true);
  auto password = owner_body.password("password", true);
  auto first = owner_body.name("first_name", true, 1, 100);
  auto last = owner_body.name("last_name", true, 1, 100);
  for (const auto& f : owner_body.failure().fields) body.add_error("owner." + f.field, f.message);
  if (!owner_body.ok()) return std::nullopt;
  return identity::person{*email, *password, *first, *last};
}

// 429 when this client created too many tenants; else counts this request.
std::optional<response> over_create_limit(context& ctx) {
  auto& limiter = *ctx.svc.tenant_creates_per_client;
  if (auto wait = limiter.blocked_for(auth::client_key(ctx.client_address))) {
    auto res = problem(make_error(errc::too_many_requests, "too many tenants created from this client; retry later"),
                       ctx.request_id);
    res.set_header("Retry-After", std::to_string(*wait));
    return res;
  }
  limiter.hit(auth::client_key(ctx.client_address));
  return std::nullopt;
}

}  // namespace

// POST /tenants
awaitable<response> create_tenant(context& ctx) {
  if (!ctx.svc.settings.tenant_signup_open && !has_admin_token(ctx))
    co_return problem(make_error(errc::signup_closed, "tenant sign-up is closed; an admin token is required"),
                      ctx.request_id);
  body_reader body(ctx.body);
  auto id = body.string("id", true);
  if (id) {
    if (auto message = validation::check_tenant_id(*id)) body.add_error("id", *message);
  }
  auto name = body.name("name", true, 1, 200);
  const auto owner = read_owner(body);
  // Only the operator places tenants on a named database server.
  auto server = body.string("server", false);
  if (server) {
    if (!has_admin_token(ctx))
      co_return problem(make_error(errc::forbidden, "naming a database server needs the admin token"), ctx.request_id);
    if (validation::check_server_name(*server)) body.add_error("server", "no database server of that name");
  }
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  if (auto refused = over_create_limit(ctx)) co_return std::move(*refused);

  std::optional<identity::proven_person> proven;
  if (owner) {
    // An owner with an existing email proves its password before anything is created: a login
    // attempt (see login), reserved before hashing; a wrong password counts for that account.
    auto attempt = co_await password_attempt::begin(ctx, owner->email, attempt_kind::password_proof);
    if (attempt.refusal()) co_return *attempt.refusal();
    auto checked = co_await ctx.svc.accounts->check_owner(*owner);
    const bool wrong_password = !checked && checked.err().code == errc::invalid_credentials;
    co_await attempt.finish(wrong_password ? attempt_outcome::failed : attempt_outcome::other);
    if (!checked) co_return problem(checked.err(), ctx.request_id);
    proven = std::move(*checked);
  }
  // Ready step: the owner's membership, or else a claim token for the first owner.
  std::optional<identity::membership_granted> granted;
  std::string claim_token;
  tenancy::provisioner::ready_step on_ready = [&](const tenant_record& tenant) -> awaitable<status> {
    if (!proven) {
      claim_token = co_await ctx.svc.accounts->issue_claim_token(tenant);
      co_return ok();
    }
    auto made = co_await ctx.svc.accounts->create_owner(tenant, *proven);
    if (!made) co_return std::move(made).err();
    granted = std::move(*made);
    co_return ok();
  };
  auto created = co_await ctx.svc.provisioner->create(*id, *name, on_ready, server);
  if (!created) co_return problem(created.err(), ctx.request_id);

  auto out = to_public_json(*created);
  if (granted) {
    auto tokens =
        co_await ctx.svc.accounts->start_session(granted->user.id, created->id, granted->role, ctx.client_address);
    auto user = to_json(granted->user, created->id);
    user["role"] = granted->role;
    out["owner"] = std::move(user);
    add_tokens(out, tokens);
  } else {
    out["claim_token"] = claim_token;
  }
  co_return json_response(201, out);
}

}  // namespace tenantd::api::handlers
