// The route table: every endpoint, its access rule, permission and body kind, in one place.
#include "api/handlers.hpp"
#include "api/router.hpp"

namespace tenantd::api {
namespace h = handlers;

std::span<const route> route_table() {
  using enum access_kind;
  using enum body_kind;
  using enum permission;
  static const route table[] = {
      {"GET", "/", h::service_info, open, std::nullopt, none},
      {"GET", "/healthz", h::healthz, open, std::nullopt, none},
      {"GET", "/readyz", h::readyz, open, std::nullopt, none},
      {"GET", "/metrics", h::metrics, loopback, std::nullopt, none},
      {"GET", "/openapi.json", h::openapi_json, open, std::nullopt, none},
      {"GET", "/docs", h::docs_page, open, std::nullopt, none},
      {"GET", "/docs/:file", h::docs_asset, open, std::nullopt, none},
      {"GET", "/console", h::console_page, open, std::nullopt, none},
      {"GET", "/console/assets/:file", h::console_asset, open, std::nullopt, none},
      {"POST", "/tenants", h::create_tenant, open, std::nullopt, json},
      {"POST", "/auth/register", h::register_account, open, std::nullopt, json},
      {"POST", "/auth/login", h::login, open, std::nullopt, json},
      {"POST", "/auth/refresh", h::refresh, open, std::nullopt, json},
      {"POST", "/auth/logout", h::logout, member, std::nullopt, optional_json},
      {"GET", "/api/me", h::me, member, std::nullopt, none},
      {"GET", "/api/users", h::list_users, member, users_read, none},
      {"POST", "/api/users", h::create_user, member, users_write, json},
      {"GET", "/api/users/:id", h::get_user, member, users_read, none},
      {"PUT", "/api/users/:id", h::update_user, member, users_write, json},
      {"PATCH", "/api/users/:id", h::update_user, member, users_write, json},
      {"DELETE", "/api/users/:id", h::delete_user, member, users_delete, none},
      {"GET", "/api/tenant", h::get_tenant, member, tenant_read, none},
      {"PUT", "/api/tenant", h::update_tenant, member, tenant_manage, json},
      {"GET", "/api/members", h::list_members, member, members_manage, none},
      {"POST", "/api/invitations", h::create_invitation, member, members_manage, json},
      {"GET", "/api/invitations", h::list_invitations, member, members_manage, none},
      {"DELETE", "/api/invitations/:id", h::delete_invitation, member, members_manage, none},
      {"PUT", "/api/members/:user_id", h::update_member, member, members_manage, json},
      {"DELETE", "/api/members/:user_id", h::delete_member, member, members_manage, none},
      {"GET", "/admin/tenants", h::admin_list_tenants, admin, std::nullopt, none},
      {"GET", "/admin/tenants/:id", h::admin_get_tenant, admin, std::nullopt, none},
      {"POST", "/admin/tenants/:id/suspend", h::admin_suspend_tenant, admin, std::nullopt, optional_json},
      {"POST", "/admin/tenants/:id/resume", h::admin_resume_tenant, admin, std::nullopt, optional_json},
      {"DELETE", "/admin/tenants/:id", h::admin_delete_tenant, admin, std::nullopt, none},
      {"POST", "/admin/tenants/:id/backup", h::admin_backup_tenant, admin, std::nullopt, optional_json},
      {"POST", "/admin/tenants/:id/restore", h::admin_restore_tenant, admin, std::nullopt, json},
      {"POST", "/admin/tenants/:id/move", h::admin_move_tenant, admin, std::nullopt, json},
      {"GET", "/admin/moves", h::admin_list_moves, admin, std::nullopt, none},
      {"GET", "/admin/moves/:id", h::admin_get_move, admin, std::nullopt, none},
      {"GET", "/admin/usage", h::admin_usage, admin, std::nullopt, none},
      {"GET", "/admin/servers", h::admin_list_servers, admin, std::nullopt, none},
      {"POST", "/admin/servers", h::admin_add_server, admin, std::nullopt, json},
      {"PUT", "/admin/servers/:name", h::admin_update_server, admin, std::nullopt, json},
      {"DELETE", "/admin/servers/:name", h::admin_remove_server, admin, std::nullopt, none},
  };
  return table;
}

}  // namespace tenantd::api
