// Platform-admin API over the tenant lifecycle; the dispatcher has checked the admin token.
#include "api/dto.hpp"
#include "api/handlers.hpp"
#include "api/problem.hpp"
#include "db/master_repository.hpp"
#include "domain/validation.hpp"

namespace tenantd::api::handlers {
namespace {

boost::json::object admin_json(const tenant_record& t) {
  auto out = to_json(t);
  out["database"] = t.database_name;
  out["schema_version"] = t.schema_version;
  // NULL: main for rows older than V006; a deleted tenant of a removed server has none.
  if (t.db_server)
    out["server"] = *t.db_server;
  else if (t.status == tenant_status::deleted)
    out["server"] = nullptr;
  else
    out["server"] = "main";
  return out;
}

// The :id parameter if it is a well-formed tenant id.
std::optional<std::string> tenant_param(const context& ctx) {
  const auto& id = ctx.params.at(0);
  if (validation::check_tenant_id(id)) return std::nullopt;
  return id;
}

response tenant_response(const context& ctx, const result<tenant_record>& r) {
  if (!r) return problem(r.err(), ctx.request_id);
  return json_response(200, admin_json(*r));
}

}  // namespace

// GET /admin/tenants
awaitable<response> admin_list_tenants(context& ctx) {
  std::optional<tenant_status> status;
  const std::string_view query = ctx.req.query;
  std::vector<tenant_record> tenants;
  if (query.rfind("status=", 0) == 0) {
    status = parse_tenant_status(query.substr(7));
    if (!status) co_return json_response(200, {{"items", boost::json::array{}}, {"total", 0}});  // no tenant has it
  }
  tenants = co_await ctx.svc.lifecycle->list(status);
  boost::json::array items;
  for (const auto& t : tenants) items.push_back(admin_json(t));
  co_return json_response(200, {{"items", std::move(items)}, {"total", tenants.size()}});
}

// GET /admin/tenants/:id: the tenant, with its members, live sessions and backup files
awaitable<response> admin_get_tenant(context& ctx) {
  auto id = tenant_param(ctx);
  if (!id) co_return problem(make_error(errc::tenant_not_found, "no such tenant"), ctx.request_id);
  auto tenant = co_await ctx.svc.lifecycle->find(*id);
  if (!tenant) co_return problem(make_error(errc::tenant_not_found, "no such tenant"), ctx.request_id);
  auto out = admin_json(*tenant);
  const auto counts = co_await db::master::count_members_and_sessions(*ctx.svc.master, *id);
  out["members"] = counts.members;
  out["sessions"] = counts.live_sessions;
  out["backups"] = backup_files_json(ctx.svc.settings.backup_dir, *id);
  co_return json_response(200, out);
}

// POST /admin/tenants/:id/suspend
awaitable<response> admin_suspend_tenant(context& ctx) {
  auto id = tenant_param(ctx);
  if (!id) co_return problem(make_error(errc::tenant_not_found, "no such tenant"), ctx.request_id);
  body_reader body(ctx.body);
  auto reason = body.string("reason", false);
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  auto changed = co_await ctx.svc.lifecycle->suspend(*id, reason.value_or(""));
  co_return tenant_response(ctx, changed);
}

// POST /admin/tenants/:id/resume
awaitable<response> admin_resume_tenant(context& ctx) {
  auto id = tenant_param(ctx);
  if (!id) co_return problem(make_error(errc::tenant_not_found, "no such tenant"), ctx.request_id);
  auto changed = co_await ctx.svc.lifecycle->resume(*id);
  co_return tenant_response(ctx, changed);
}

// DELETE /admin/tenants/:id
awaitable<response> admin_delete_tenant(context& ctx) {
  auto id = tenant_param(ctx);
  if (!id) co_return problem(make_error(errc::tenant_not_found, "no such tenant"), ctx.request_id);
  auto changed = co_await ctx.svc.lifecycle->remove(*id);
  co_return tenant_response(ctx, changed);
}

}  // namespace tenantd::api::handlers
