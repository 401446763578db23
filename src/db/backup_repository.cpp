// Backup and restore SQL on the master database. Statements are prepared once per connection.
#include "db/backup_repository.hpp"

#include <array>

namespace tenantd::db::backups {
namespace {

template <class... A>
std::array<param, sizeof...(A)> params(const A&... a) {
  return {param(a)...};
}

constexpr statement members_sql{
    "bk_members",
    "SELECT a.id, a.email, a.password_hash, a.first_name, a.last_name, m.role, m.created_at "
    "FROM memberships m JOIN accounts a ON a.id = m.account_id WHERE m.tenant_id = $1 ORDER BY m.created_at, a.id"};
constexpr statement invitations_sql{
    "bk_invitations",
    "SELECT id, email, role, encode(token_hash, 'hex'), invited_by, created_at, expires_at FROM invitations "
    "WHERE tenant_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() "
    "ORDER BY created_at, id"};
constexpr statement reuse_deleted_sql{
    "bk_reuse_deleted",
    "UPDATE tenants SET status = 'provisioning', name = $2, database_name = $3, status_reason = NULL, "
    "status_changed_at = now(), updated_at = now() WHERE id = $1 AND status = 'deleted'"};
constexpr statement mark_deleted_sql{"bk_mark_deleted",
                                     "UPDATE tenants SET status = 'deleted', updated_at = now() WHERE id = $1"};
constexpr statement clear_members_sql{"bk_clear_members", "DELETE FROM memberships WHERE tenant_id = $1"};
constexpr statement clear_invitations_sql{"bk_clear_invitations", "DELETE FROM invitations WHERE tenant_id = $1"};
constexpr statement insert_account_sql{
    "bk_insert_account",
    "INSERT INTO accounts (id, email, password_hash, first_name, last_name) VALUES ($1, $2, $3, $4, $5)"};
constexpr statement insert_membership_sql{
    "bk_insert_membership",
    "INSERT INTO memberships (tenant_id, account_id, role, created_at) VALUES ($1, $2, $3, $4::timestamptz)"};
constexpr statement insert_invitation_sql{
    "bk_insert_invitation",
    "INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at) "
    "VALUES ($1, $2, $3, $4, decode($5, 'hex'), (SELECT a.id FROM accounts a WHERE a.id = $6::uuid), "
    "$7::timestamptz) ON CONFLICT DO NOTHING"};
constexpr statement activate_sql{
    "bk_activate",
    "UPDATE tenants SET status = 'active', name = $2, registration = $3, schema_version = $4::integer, "
    "last_migration_error = NULL, status_reason = NULL, status_changed_at = now(), updated_at = now() "
    "WHERE id = $1"};

}  // namespace

awaitable<std::vector<member_row>> members_of(connection& c, const std::string& tenant_id) {
  auto r = co_await c.exec_prepared(members_sql, params(tenant_id));
  std::vector<member_row> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({r.string(i, 0), r.string(i, 1), r.string(i, 2), r.string(i, 3), r.string(i, 4), r.string(i, 5),
                   r.string(i, 6)});
  co_return out;
}

awaitable<std::vector<invitation_row>> pending_invitations(connection& c, const std::string& tenant_id) {
  auto r = co_await c.exec_prepared(invitations_sql, params(tenant_id));
  std::vector<invitation_row> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({r.string(i, 0), r.string(i, 1), r.string(i, 2), r.string(i, 3), r.optional_string(i, 4),
                   r.string(i, 5), r.string(i, 6)});
  co_return out;
}

awaitable<void> reuse_deleted_tenant(connection& c, const std::string& id, const std::string& name,
                                     const std::string& database_name) {
  co_await c.exec_prepared(reuse_deleted_sql, params(id, name, database_name));
}

awaitable<void> mark_deleted(connection& c, const std::string& id) {
  co_await c.exec_prepared(mark_deleted_sql, params(id));
}

awaitable<void> clear_members_and_invitations(connection& c, const std::string& tenant_id) {
  co_await c.exec_prepared(clear_members_sql, params(tenant_id));
  co_await c.exec_prepared(clear_invitations_sql, params(tenant_id));
}

awaitable<void> insert_account(connection& c, const member_row& m) {
  co_await c.exec_prepared(insert_account_sql,
                           params(m.account_id, m.email, m.password_hash, m.first_name, m.last_name));
}

awaitable<void> insert_membership(connection& c, const std::string& tenant_id, const member_row& m) {
  co_await c.exec_prepared(insert_membership_sql, params(tenant_id, m.account_id, m.role, m.joined_at));
}

awaitable<bool> insert_invitation(connection& c, const std::string& tenant_id, const invitation_row& i) {
  const std::array<param, 7> p{
      param(i.id),        param(tenant_id),        param(i.email),
      param(i.role),      param(i.token_hash_hex), i.invited_by ? param(*i.invited_by) : param(),
      param(i.expires_at)};
  auto inserted = co_await c.exec_prepared(insert_invitation_sql, p);
  co_return inserted.affected_rows() > 0;
}

awaitable<void> activate_restored(connection& c, const std::string& id, const std::string& name,
                                  const std::string& registration, int schema_version) {
  const auto version = std::to_string(schema_version);
  co_await c.exec_prepared(activate_sql, params(id, name, registration, version));
}

}  // namespace tenantd::db::backups
