// Tenant creation (public sign-up or with the admin token), optionally with its owner.
#include "api/admin_token.hpp"
#include "api/dto.hpp"
#include "api/handlers.hpp"
#include "api/login_limits.hpp"
#include "api/problem.hpp"
#include "auth/client_key.hpp"
#include "domain/validation.hpp"

namespace tenantd::api::handlers {
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
  std::optional<identity::person> owner;
  if (const auto* owner_json = body.object("owner")) {
    body_reader owner_body(*owner_json);
    auto email = owner_body.email("email", true);
    auto password = owner_body.password("password", true);
    auto first = owner_body.name("first_name", true, 1, 100);
    auto last = owner_body.name("last_name", true, 1, 100);
    if (owner_body.ok()) owner = identity::person{*email, *password, *first, *last};
    for (const auto& f : owner_body.failure().fields) body.add_error("owner." + f.field, f.message);
  }
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);

  auto& limiter = *ctx.svc.tenant_creates_per_client;
  if (auto wait = limiter.blocked_for(auth::client_key(ctx.client_address))) {
    auto res = problem(make_error(errc::too_many_requests, "too many tenants created from this client; retry later"),
                       ctx.request_id);
    res.set_header("Retry-After", std::to_string(*wait));
    co_return res;
  }
  limiter.hit(auth::client_key(ctx.client_address));
  // An owner with an existing email must give its password: a login attempt (see login).
  std::optional<password_attempt> attempt;
  if (owner) {
    attempt.emplace(co_await password_attempt::begin(ctx, owner->email, attempt_kind::password_proof));
    if (attempt->refusal()) co_return *attempt->refusal();
  }

  std::optional<identity::membership_granted> granted;
  tenancy::provisioner::ready_step create_owner;
  if (owner) {
    create_owner = [&](const tenant_record& tenant) -> awaitable<status> {
      auto made = co_await ctx.svc.accounts->create_owner(tenant, *owner);
      if (!made) co_return std::move(made).err();
      granted = std::move(*made);
      co_return ok();
    };
  }
  auto created = co_await ctx.svc.provisioner->create(*id, *name, create_owner);
  if (attempt) {
    const bool wrong_password =
        !created && (created.err().code == errc::email_taken || created.err().code == errc::invalid_credentials);
    co_await attempt->finish(wrong_password ? attempt_outcome::failed : attempt_outcome::other);
  }
  if (!created) co_return problem(created.err(), ctx.request_id);

  auto out = to_public_json(*created);
  if (granted) {
    auto tokens =
        co_await ctx.svc.accounts->start_session(granted->user.id, created->id, granted->role, ctx.client_address);
    auto user = to_json(granted->user, created->id);
    user["role"] = granted->role;
    out["owner"] = std::move(user);
    add_tokens(out, tokens);
  }
  co_return json_response(201, out);
}

}  // namespace tenantd::api::handlers
