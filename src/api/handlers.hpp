// Every handler, one file per resource (health.cpp, tenants.cpp, auth.cpp, users.cpp,
// tenant.cpp, docs.cpp, console.cpp). Each carries its route as a comment; the table is in routes.cpp.
#pragma once
#include "api/context.hpp"

namespace tenantd::api::handlers {

using boost::asio::awaitable;

awaitable<response> service_info(context& ctx);  // GET /
awaitable<response> healthz(context& ctx);       // GET /healthz
awaitable<response> readyz(context& ctx);        // GET /readyz
awaitable<response> metrics(context& ctx);       // GET /metrics (loopback peers)

awaitable<response> create_tenant(context& ctx);  // POST /tenants

awaitable<response> register_account(context& ctx);  // POST /auth/register
awaitable<response> login(context& ctx);             // POST /auth/login
awaitable<response> refresh(context& ctx);           // POST /auth/refresh
awaitable<response> logout(context& ctx);            // POST /auth/logout

awaitable<response> me(context& ctx);           // GET /api/me
awaitable<response> list_users(context& ctx);   // GET /api/users
awaitable<response> create_user(context& ctx);  // POST /api/users
awaitable<response> get_user(context& ctx);     // GET /api/users/:id
awaitable<response> update_user(context& ctx);  // PUT|PATCH /api/users/:id
awaitable<response> delete_user(context& ctx);  // DELETE /api/users/:id

awaitable<response> get_tenant(context& ctx);     // GET /api/tenant
awaitable<response> update_tenant(context& ctx);  // PUT /api/tenant

awaitable<response> list_members(context& ctx);       // GET /api/members
awaitable<response> create_invitation(context& ctx);  // POST /api/invitations
awaitable<response> list_invitations(context& ctx);   // GET /api/invitations
awaitable<response> delete_invitation(context& ctx);  // DELETE /api/invitations/:id
awaitable<response> update_member(context& ctx);      // PUT /api/members/:user_id
awaitable<response> delete_member(context& ctx);      // DELETE /api/members/:user_id

awaitable<response> openapi_json(context& ctx);   // GET /openapi.json
awaitable<response> docs_page(context& ctx);      // GET /docs
awaitable<response> docs_asset(context& ctx);     // GET /docs/:file
awaitable<response> console_page(context& ctx);   // GET /console
awaitable<response> console_asset(context& ctx);  // GET /console/assets/:file

awaitable<response> admin_list_tenants(context& ctx);    // GET /admin/tenants
awaitable<response> admin_get_tenant(context& ctx);      // GET /admin/tenants/:id
awaitable<response> admin_suspend_tenant(context& ctx);  // POST /admin/tenants/:id/suspend
awaitable<response> admin_resume_tenant(context& ctx);   // POST /admin/tenants/:id/resume
awaitable<response> admin_delete_tenant(context& ctx);   // DELETE /admin/tenants/:id
awaitable<response> admin_backup_tenant(context& ctx);   // POST /admin/tenants/:id/backup
awaitable<response> admin_restore_tenant(context& ctx);  // POST /admin/tenants/:id/restore
awaitable<response> admin_move_tenant(context& ctx);     // POST /admin/tenants/:id/move
awaitable<response> admin_list_moves(context& ctx);      // GET /admin/moves
awaitable<response> admin_get_move(context& ctx);        // GET /admin/moves/:id
awaitable<response> admin_usage(context& ctx);           // GET /admin/usage
awaitable<response> admin_list_servers(context& ctx);    // GET /admin/servers
awaitable<response> admin_add_server(context& ctx);      // POST /admin/servers
awaitable<response> admin_update_server(context& ctx);   // PUT /admin/servers/:name
awaitable<response> admin_remove_server(context& ctx);   // DELETE /admin/servers/:name

// The tenant's backup files in BACKUP_DIR, newest first: [{"backup","bytes","modified_at"}]
// (admin_backup.cpp; shown by GET /admin/tenants/:id). A missing directory lists none.
boost::json::array backup_files_json(const std::string& backup_dir, const std::string& tenant_id);

}  // namespace tenantd::api::handlers
