// The caller's own tenant and identity: GET /api/me, GET/PUT /api/tenant.
#include "api/dto.hpp"
#include "api/handlers.hpp"
#include "api/problem.hpp"
#include "db/user_repository.hpp"

namespace tenantd::api::handlers {

// GET /api/me
awaitable<response> me(context& ctx) {
  const auto& who = ctx.who();
  auto tenant = co_await ctx.svc.tenants->find(who.tenant_id);
  if (!tenant)
    co_return problem(make_error(errc::unauthorized, "the access token is missing or invalid"), ctx.request_id);
  std::optional<user_record> user;
  {
    auto conn = co_await ctx.svc.databases->acquire(*tenant, tenancy::intent::read);
    user = co_await db::users::find(*conn, who.account_id);
  }
  boost::json::object out;
  out["user"] = user ? boost::json::value(to_json(*user, who.tenant_id)) : boost::json::value(nullptr);
  out["tenant"] = to_json(*tenant);
  out["role"] = who.role;
  out["permissions"] = to_json(permission_names(who.permissions));
  co_return json_response(200, out);
}

// GET /api/tenant
awaitable<response> get_tenant(context& ctx) {
  auto tenant = co_await ctx.svc.tenants->find(ctx.who().tenant_id);
  if (!tenant) co_return problem(make_error(errc::not_found, "no such tenant"), ctx.request_id);
  co_return json_response(200, to_json(*tenant));
}

// PUT /api/tenant
awaitable<response> update_tenant(context& ctx) {
  body_reader body(ctx.body);
  auto name = body.name("name", false, 1, 200);
  auto registration = body.string("registration", false);
  if (registration && *registration != "invite" && *registration != "open")
    body.add_error("registration", "must be \"invite\" or \"open\"");
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  auto updated = co_await ctx.svc.accounts->update_tenant(ctx.who(), name, registration);
  if (!updated) co_return problem(updated.err(), ctx.request_id);
  co_return json_response(200, to_json(*updated));
}

}  // namespace tenantd::api::handlers
