// Master database SQL. Statements are prepared once per connection.
#include "db/master_repository.hpp"

#include <array>
#include <stdexcept>
#include <string_view>

namespace tenantd::db::master {
namespace {

#define TENANTD_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
#define TENANT_COLUMNS                                                                      \
  "id, name, status, registration, database_name, db_server, schema_version, " TENANTD_UTC( \
      "created_at") ", " TENANTD_UTC("updated_at")

tenant_status status_from(std::string_view text) {
  if (auto status = parse_tenant_status(text)) return *status;
  throw std::runtime_error("master holds a tenant status this version does not know: " + std::string(text));
}

tenant_record tenant_from(const result_set& r, int row) {
  tenant_record t;
  t.id = r.string(row, 0);
  t.name = r.string(row, 1);
  t.status = status_from(r.text(row, 2));
  t.registration = r.string(row, 3);
  t.database_name = r.string(row, 4);
  t.db_server = r.optional_string(row, 5);
  t.schema_version = static_cast<int>(r.int64(row, 6));
  t.created_at = r.string(row, 7);
  t.updated_at = r.string(row, 8);
  return t;
}

#define ACCOUNT_COLUMNS \
  "id, email, password_hash, first_name, last_name, " TENANTD_UTC("created_at") ", " TENANTD_UTC("updated_at")

account_record account_from(const result_set& r, int row) {
  return account_record{r.string(row, 0), r.string(row, 1), r.string(row, 2), r.string(row, 3),
                        r.string(row, 4), r.string(row, 5), r.string(row, 6)};
}

template <class... A>
std::array<param, sizeof...(A)> params(const A&... a) {
  return {param(a)...};
}

constexpr statement find_tenant_sql{"m_find_tenant", "SELECT " TENANT_COLUMNS " FROM tenants WHERE id = $1"};
constexpr statement lock_tenant_sql{"m_lock_tenant", "SELECT " TENANT_COLUMNS " FROM tenants WHERE id = $1 FOR UPDATE"};
constexpr statement list_tenants_sql{
    "m_list_tenants", "SELECT " TENANT_COLUMNS " FROM tenants WHERE $1::text IS NULL OR status = $1 ORDER BY id"};
constexpr statement insert_tenant_sql{
    "m_insert_tenant",
    "INSERT INTO tenants (id, name, status, database_name) VALUES ($1, $2, 'provisioning', $3) "
    "ON CONFLICT DO NOTHING RETURNING id"};
constexpr statement set_status_sql{
    "m_set_status", "UPDATE tenants SET status = $2, status_changed_at = now(), updated_at = now() WHERE id = $1"};
constexpr statement set_version_sql{
    "m_set_version",
    "WITH changed AS (UPDATE tenants SET schema_version = $2::int, last_migration_at = now(), "
    "last_migration_error = $3 WHERE id = $1 RETURNING id) "
    "SELECT pg_notify('tenantd_invalidate', 'tenant:' || id) FROM changed"};
constexpr statement delete_tenant_sql{"m_delete_tenant", "DELETE FROM tenants WHERE id = $1"};
constexpr statement update_tenant_sql{
    "m_update_tenant",
    "UPDATE tenants SET name = COALESCE($2, name), registration = COALESCE($3, registration), updated_at = now() "
    "WHERE id = $1 RETURNING " TENANT_COLUMNS};
constexpr statement database_exists_sql{"m_database_exists", "SELECT 1 FROM pg_database WHERE datname = $1"};

constexpr statement find_account_by_email_sql{"m_find_account_by_email",
                                              "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE email = $1"};
constexpr statement find_account_sql{"m_find_account", "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE id = $1"};
constexpr statement insert_account_sql{
    "m_insert_account",
    "INSERT INTO accounts (id, email, password_hash, first_name, last_name) VALUES ($1, $2, $3, $4, $5)"};
constexpr statement set_password_sql{
    "m_set_password", "UPDATE accounts SET password_hash = $2, password_changed_at = now() WHERE id = $1"};

constexpr statement find_membership_sql{"m_find_membership",
                                        "SELECT role FROM memberships WHERE tenant_id = $1 AND account_id = $2"};
constexpr statement insert_membership_sql{"m_insert_membership",
                                          "INSERT INTO memberships (tenant_id, account_id, role) VALUES ($1, $2, $3)"};
constexpr statement delete_membership_sql{"m_delete_membership",
                                          "DELETE FROM memberships WHERE tenant_id = $1 AND account_id = $2"};
constexpr statement count_members_sql{"m_count_members", "SELECT count(*) FROM memberships WHERE tenant_id = $1"};
constexpr statement count_members_and_sessions_sql{
    "m_count_members_and_sessions",
    "SELECT (SELECT count(*) FROM memberships WHERE tenant_id = $1), "
    "(SELECT count(*) FROM sessions WHERE tenant_id = $1 AND ended_at IS NULL AND expires_at > now())"};
constexpr statement count_role_sql{"m_count_role",
                                   "SELECT count(*) FROM memberships WHERE tenant_id = $1 AND role = $2"};
constexpr statement memberships_of_sql{
    "m_memberships_of",
    "SELECT m.tenant_id, m.role FROM memberships m JOIN tenants t ON t.id = m.tenant_id "
    "WHERE m.account_id = $1 AND t.status IN ('active', 'suspended') ORDER BY m.tenant_id"};

constexpr statement insert_session_sql{"m_insert_session",
                                       "INSERT INTO sessions (id, account_id, tenant_id, expires_at, client_address) "
                                       "VALUES ($1, $2, $3, now() + make_interval(secs => $4::bigint), $5)"};
constexpr statement insert_refresh_sql{"m_insert_refresh",
                                       "INSERT INTO refresh_tokens (token_hash, session_id, expires_at) "
                                       "VALUES (decode($1, 'hex'), $2, now() + make_interval(secs => $3::bigint))"};
constexpr statement end_sessions_sql{"m_end_sessions",
                                     "UPDATE sessions SET ended_at = now(), end_reason = $3 "
                                     "WHERE tenant_id = $1 AND account_id = $2 AND ended_at IS NULL RETURNING id"};

constexpr statement load_access_sql{
    "m_load_access",
    "SELECT t.status, t.schema_version, m.role, "
    "       (SELECT floor(extract(epoch FROM s.expires_at))::bigint FROM sessions s "
    "        WHERE s.id = $3::uuid AND s.account_id = $2::uuid "
    "        AND s.tenant_id = t.id AND s.ended_at IS NULL AND s.expires_at > now()) "
    "FROM tenants t LEFT JOIN memberships m ON m.tenant_id = t.id AND m.account_id = $2::uuid "
    "WHERE t.id = $1"};

constexpr statement load_roles_sql{
    "m_load_roles",
    "SELECT r.name, r.rank, COALESCE(string_agg(rp.permission, ','), '') "
    "FROM roles r LEFT JOIN role_permissions rp ON rp.role = r.name GROUP BY r.name, r.rank ORDER BY r.rank DESC"};

constexpr statement list_members_sql{
    "m_list_members",
    "SELECT a.id, a.email, a.first_name, a.last_name, m.role, " TENANTD_UTC("m.created_at") " "
    "FROM memberships m JOIN accounts a ON a.id = m.account_id WHERE m.tenant_id = $1 ORDER BY m.created_at, a.id"};
constexpr statement update_role_sql{
    "m_update_role", "UPDATE memberships SET role = $3, updated_at = now() WHERE tenant_id = $1 AND account_id = $2"};
constexpr statement lock_refresh_sql{
    "m_lock_refresh",
    "SELECT s.id, s.account_id, s.tenant_id, rt.used_at IS NOT NULL, rt.expires_at <= now(), "
    "       s.ended_at IS NOT NULL OR s.expires_at <= now() "
    "FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id "
    "WHERE rt.token_hash = decode($1, 'hex') FOR UPDATE OF rt, s"};
constexpr statement mark_refresh_sql{"m_mark_refresh",
                                     "UPDATE refresh_tokens SET used_at = now() WHERE token_hash = decode($1, 'hex')"};
constexpr statement touch_session_sql{"m_touch_session", "UPDATE sessions SET last_refreshed_at = now() WHERE id = $1"};
constexpr statement end_session_sql{
    "m_end_session", "UPDATE sessions SET ended_at = now(), end_reason = $2 WHERE id = $1 AND ended_at IS NULL"};

constexpr statement transition_sql{
    "m_transition",
    "UPDATE tenants SET status = $3, status_reason = NULLIF($4, ''), status_changed_at = now(), updated_at = now() "
    "WHERE id = $1 AND status = ANY (string_to_array($2, ',')) RETURNING " TENANT_COLUMNS};
constexpr statement databases_with_prefix_sql{
    "m_databases_with_prefix",
    "SELECT datname FROM pg_database WHERE datname LIKE replace(replace(replace($1, '\\', '\\\\'), '_', '\\_'), "
    "'%', '\\%') || '%' ORDER BY datname"};

constexpr statement notify_sql{"m_notify", "SELECT pg_notify('tenantd_invalidate', $1)"};

}  // namespace

awaitable<std::optional<tenant_record>> find_tenant(connection& c, const std::string& id) {
  auto r = co_await c.exec_prepared(find_tenant_sql, params(id));
  if (r.empty()) co_return std::nullopt;
  co_return tenant_from(r, 0);
}

awaitable<std::optional<tenant_record>> lock_tenant(connection& c, const std::string& id) {
  auto r = co_await c.exec_prepared(lock_tenant_sql, params(id));
  if (r.empty()) co_return std::nullopt;
  co_return tenant_from(r, 0);
}

awaitable<std::vector<tenant_record>> list_tenants(connection& c, std::optional<tenant_status> status) {
  std::array<param, 1> p{status ? param(to_string(*status)) : param()};
  auto r = co_await c.exec_prepared(list_tenants_sql, p);
  std::vector<tenant_record> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(tenant_from(r, i));
  co_return out;
}

awaitable<bool> insert_provisioning_tenant(connection& c, const std::string& id, const std::string& name,
                                           const std::string& database_name) {
  auto r = co_await c.exec_prepared(insert_tenant_sql, params(id, name, database_name));
  co_return !r.empty();
}

awaitable<void> set_tenant_status(connection& c, const std::string& id, tenant_status status) {
  co_await c.exec_prepared(set_status_sql, params(id, to_string(status)));
}

awaitable<void> set_tenant_schema_version(connection& c, const std::string& id, int version,
                                          const std::optional<std::string>& error) {
  const auto v = std::to_string(version);
  std::array<param, 3> p{param(id), param(v), error ? param(*error) : param()};
  co_await c.exec_prepared(set_version_sql, p);
}

awaitable<void> delete_tenant_row(connection& c, const std::string& id) {
  co_await c.exec_prepared(delete_tenant_sql, params(id));
}

awaitable<std::optional<tenant_record>> update_tenant(connection& c, const std::string& id,
                                                      const std::optional<std::string>& name,
                                                      const std::optional<std::string>& registration) {
  std::array<param, 3> p{param(id), name ? param(*name) : param(), registration ? param(*registration) : param()};
  auto r = co_await c.exec_prepared(update_tenant_sql, p);
  if (r.empty()) co_return std::nullopt;
  co_return tenant_from(r, 0);
}

awaitable<bool> database_exists(connection& c, const std::string& database_name) {
  auto r = co_await c.exec_prepared(database_exists_sql, params(database_name));
  co_return !r.empty();
}

awaitable<std::optional<account_record>> find_account_by_email(connection& c, const std::string& email) {
  auto r = co_await c.exec_prepared(find_account_by_email_sql, params(email));
  if (r.empty()) co_return std::nullopt;
  co_return account_from(r, 0);
}

awaitable<std::optional<account_record>> find_account(connection& c, const std::string& id) {
  auto r = co_await c.exec_prepared(find_account_sql, params(id));
  if (r.empty()) co_return std::nullopt;
  co_return account_from(r, 0);
}

awaitable<void> insert_account(connection& c, const account_record& a) {
  co_await c.exec_prepared(insert_account_sql, params(a.id, a.email, a.password_hash, a.first_name, a.last_name));
}

awaitable<void> set_password_hash(connection& c, const std::string& account_id, const std::string& hash) {
  co_await c.exec_prepared(set_password_sql, params(account_id, hash));
}

awaitable<std::optional<std::string>> find_membership_role(connection& c, const std::string& tenant_id,
                                                           const std::string& account_id) {
  auto r = co_await c.exec_prepared(find_membership_sql, params(tenant_id, account_id));
  if (r.empty()) co_return std::nullopt;
  co_return r.string(0, 0);
}

awaitable<void> insert_membership(connection& c, const std::string& tenant_id, const std::string& account_id,
                                  const std::string& role) {
  co_await c.exec_prepared(insert_membership_sql, params(tenant_id, account_id, role));
}

awaitable<bool> delete_membership(connection& c, const std::string& tenant_id, const std::string& account_id) {
  auto r = co_await c.exec_prepared(delete_membership_sql, params(tenant_id, account_id));
  co_return r.affected_rows() > 0;
}

awaitable<std::int64_t> count_members(connection& c, const std::string& tenant_id) {
  auto r = co_await c.exec_prepared(count_members_sql, params(tenant_id));
  co_return r.int64(0, 0);
}

awaitable<tenant_counts> count_members_and_sessions(statement_runner& runner, const std::string& tenant_id) {
  auto r = co_await runner.exec_prepared(count_members_and_sessions_sql, params(tenant_id));
  co_return tenant_counts{r.int64(0, 0), r.int64(0, 1)};
}

awaitable<std::int64_t> count_role(connection& c, const std::string& tenant_id, const std::string& role) {
  auto r = co_await c.exec_prepared(count_role_sql, params(tenant_id, role));
  co_return r.int64(0, 0);
}

awaitable<std::vector<tenant_membership>> memberships_of(connection& c, const std::string& account_id) {
  auto r = co_await c.exec_prepared(memberships_of_sql, params(account_id));
  std::vector<tenant_membership> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.string(i, 0), r.string(i, 1)});
  co_return out;
}

awaitable<void> insert_session(connection& c, const std::string& id, const std::string& account_id,
                               const std::string& tenant_id, std::int64_t lifetime_seconds,
                               const std::string& client_address) {
  const auto secs = std::to_string(lifetime_seconds);
  co_await c.exec_prepared(insert_session_sql, params(id, account_id, tenant_id, secs, client_address));
}

awaitable<void> insert_refresh_token(connection& c, const std::string& token_hash_hex, const std::string& session_id,
                                     std::int64_t lifetime_seconds) {
  const auto secs = std::to_string(lifetime_seconds);
  co_await c.exec_prepared(insert_refresh_sql, params(token_hash_hex, session_id, secs));
}

awaitable<std::vector<std::string>> end_sessions(connection& c, const std::string& tenant_id,
                                                 const std::string& account_id, const std::string& reason) {
  auto r = co_await c.exec_prepared(end_sessions_sql, params(tenant_id, account_id, reason));
  std::vector<std::string> ids;
  for (int i = 0; i < r.rows(); ++i) ids.push_back(r.string(i, 0));
  co_return ids;
}

awaitable<std::optional<access_row>> load_access(connection& c, const std::string& tenant_id,
                                                 const std::string& account_id, const std::string& session_id) {
  auto r = co_await c.exec_prepared(load_access_sql, params(tenant_id, account_id, session_id));
  if (r.empty()) co_return std::nullopt;
  const bool live = !r.is_null(0, 3);
  co_return access_row{status_from(r.text(0, 0)), static_cast<int>(r.int64(0, 1)), r.optional_string(0, 2), live,
                       live ? r.int64(0, 3) : 0};
}

awaitable<role_table> load_roles(connection& c) {
  auto r = co_await c.exec_prepared(load_roles_sql, {});
  role_table table;
  for (int i = 0; i < r.rows(); ++i) {
    role_info role{r.string(i, 0), static_cast<int>(r.int64(i, 1)), 0};
    std::string_view list = r.text(i, 2);
    while (!list.empty()) {
      const auto comma = list.find(',');
      if (auto p = parse_permission(list.substr(0, comma))) role.permissions |= bit(*p);
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    table.set(std::move(role));
  }
  co_return table;
}

awaitable<void> notify_invalidation(connection& c, const invalidation& change) {
  const auto payload = format(change);
  co_await c.exec_prepared(notify_sql, params(payload));
}

awaitable<std::vector<member_row>> list_members(connection& c, const std::string& tenant_id) {
  auto r = co_await c.exec_prepared(list_members_sql, params(tenant_id));
  std::vector<member_row> out;
  for (int i = 0; i < r.rows(); ++i)
    out.push_back({r.string(i, 0), r.string(i, 1), r.string(i, 2), r.string(i, 3), r.string(i, 4), r.string(i, 5)});
  co_return out;
}

awaitable<bool> update_membership_role(connection& c, const std::string& tenant_id, const std::string& account_id,
                                       const std::string& role) {
  auto r = co_await c.exec_prepared(update_role_sql, params(tenant_id, account_id, role));
  co_return r.affected_rows() > 0;
}

awaitable<std::optional<refresh_row>> lock_refresh_token(connection& c, const std::string& token_hash_hex) {
  auto r = co_await c.exec_prepared(lock_refresh_sql, params(token_hash_hex));
  if (r.empty()) co_return std::nullopt;
  co_return refresh_row{r.string(0, 0),  r.string(0, 1),  r.string(0, 2),
                        r.boolean(0, 3), r.boolean(0, 4), r.boolean(0, 5)};
}

awaitable<void> mark_refresh_token_used(connection& c, const std::string& token_hash_hex) {
  co_await c.exec_prepared(mark_refresh_sql, params(token_hash_hex));
}

awaitable<void> touch_session(connection& c, const std::string& session_id) {
  co_await c.exec_prepared(touch_session_sql, params(session_id));
}

awaitable<bool> end_session(connection& c, const std::string& session_id, const std::string& reason) {
  auto r = co_await c.exec_prepared(end_session_sql, params(session_id, reason));
  co_return r.affected_rows() > 0;
}

awaitable<std::optional<tenant_record>> transition_tenant(connection& c, const std::string& id,
                                                          std::span<const tenant_status> from, tenant_status to,
                                                          const std::string& reason) {
  std::string allowed;  // "active,suspended": the statement splits it with string_to_array
  for (const auto status : from) {
    if (!allowed.empty()) allowed += ',';
    allowed += to_string(status);
  }
  auto r = co_await c.exec_prepared(transition_sql, params(id, allowed, to_string(to), reason));
  if (r.empty()) co_return std::nullopt;
  co_return tenant_from(r, 0);
}

awaitable<std::vector<std::string>> databases_with_prefix(connection& c, const std::string& prefix) {
  auto r = co_await c.exec_prepared(databases_with_prefix_sql, params(prefix));
  std::vector<std::string> out;
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.string(i, 0));
  co_return out;
}

}  // namespace tenantd::db::master
