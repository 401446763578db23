// Invitations and claim tokens in the master database. Statements are prepared once per connection.
#include "db/invitation_repository.hpp"

#include <array>

namespace tenantd::db::invitations {
namespace {

#define TENANTD_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
// Evaluated at use time against the inviter's current membership (removed, demoted, tenant gone).
#define TENANTD_USABLE                                                                    \
  "(i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now() AND EXISTS (" \
  "SELECT 1 FROM memberships m JOIN roles held ON held.name = m.role "                    \
  "JOIN roles granted ON granted.name = i.role "                                          \
  "JOIN role_permissions rp ON rp.role = m.role AND rp.permission = 'members:manage' "    \
  "WHERE m.tenant_id = i.tenant_id AND m.account_id = i.invited_by AND held.rank >= granted.rank))"
#define TENANTD_INVITATION_COLUMNS                                                                   \
  "i.id, i.tenant_id, i.email, i.role, i.invited_by, " TENANTD_UTC("i.created_at") ", " TENANTD_UTC( \
      "i.expires_at") ", " TENANTD_USABLE

invitation invitation_from(const result_set& r, int row) {
  return invitation{r.string(row, 0),          r.string(row, 1), r.string(row, 2), r.string(row, 3),
                    r.optional_string(row, 4), r.string(row, 5), r.string(row, 6), r.boolean(row, 7)};
}

template <class... A>
std::array<param, sizeof...(A)> params(const A&... a) {
  return {param(a)...};
}

constexpr statement insert_sql{
    "i_insert",
    "WITH i AS (INSERT INTO invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at) "
    "VALUES ($1, $2, $3, $4, decode($5, 'hex'), $6, now() + make_interval(secs => $7::bigint)) RETURNING *) "
    "SELECT " TENANTD_INVITATION_COLUMNS " FROM i"};
constexpr statement list_usable_sql{"i_list_usable", "SELECT " TENANTD_INVITATION_COLUMNS
                                                     " FROM invitations i WHERE i.tenant_id = $1 AND " TENANTD_USABLE
                                                     " ORDER BY i.created_at DESC, i.id"};
constexpr statement revoke_sql{"i_revoke",
                               "UPDATE invitations i SET revoked_at = now() "
                               "WHERE i.tenant_id = $1 AND i.id = $2::uuid AND " TENANTD_USABLE " RETURNING i.id"};
constexpr statement lock_by_token_sql{"i_lock_by_token", "SELECT " TENANTD_INVITATION_COLUMNS
                                                         " FROM invitations i WHERE i.token_hash = decode($1, 'hex') "
                                                         "FOR UPDATE OF i"};
constexpr statement accept_sql{"i_accept",
                               "UPDATE invitations SET accepted_at = now(), accepted_by = $2 WHERE id = $1"};
constexpr statement set_claim_sql{"i_set_claim",
                                  "UPDATE tenants SET claim_token_hash = decode($2, 'hex'), "
                                  "claim_expires_at = now() + make_interval(secs => $3::bigint) WHERE id = $1"};
constexpr statement claim_matches_sql{
    "i_claim_matches",
    "SELECT 1 FROM tenants WHERE id = $1 AND claim_token_hash = decode($2, 'hex') AND claim_expires_at > now()"};
constexpr statement clear_claim_sql{
    "i_clear_claim", "UPDATE tenants SET claim_token_hash = NULL, claim_expires_at = NULL WHERE id = $1"};

}  // namespace

awaitable<invitation> insert(connection& c, const std::string& id, const std::string& tenant_id,
                             const std::string& email, const std::string& role, const std::string& token_hash_hex,
                             const std::string& invited_by, std::int64_t lifetime_seconds) {
  const auto secs = std::to_string(lifetime_seconds);
  auto r = co_await c.exec_prepared(insert_sql, params(id, tenant_id, email, role, token_hash_hex, invited_by, secs));
  co_return invitation_from(r, 0);
}

awaitable<std::vector<invitation>> list_usable(connection& c, const std::string& tenant_id) {
  auto r = co_await c.exec_prepared(list_usable_sql, params(tenant_id));
  std::vector<invitation> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(invitation_from(r, i));
  co_return out;
}

awaitable<bool> revoke(connection& c, const std::string& tenant_id, const std::string& id) {
  auto r = co_await c.exec_prepared(revoke_sql, params(tenant_id, id));
  co_return !r.empty();
}

awaitable<std::optional<invitation>> lock_by_token(connection& c, const std::string& token_hash_hex) {
  auto r = co_await c.exec_prepared(lock_by_token_sql, params(token_hash_hex));
  if (r.empty()) co_return std::nullopt;
  co_return invitation_from(r, 0);
}

awaitable<void> accept(connection& c, const std::string& id, const std::string& account_id) {
  co_await c.exec_prepared(accept_sql, params(id, account_id));
}

awaitable<void> set_claim(connection& c, const std::string& tenant_id, const std::string& token_hash_hex,
                          std::int64_t lifetime_seconds) {
  const auto secs = std::to_string(lifetime_seconds);
  co_await c.exec_prepared(set_claim_sql, params(tenant_id, token_hash_hex, secs));
}

awaitable<bool> claim_matches(connection& c, const std::string& tenant_id, const std::string& token_hash_hex) {
  auto r = co_await c.exec_prepared(claim_matches_sql, params(tenant_id, token_hash_hex));
  co_return !r.empty();
}

awaitable<void> clear_claim(connection& c, const std::string& tenant_id) {
  co_await c.exec_prepared(clear_claim_sql, params(tenant_id));
}

}  // namespace tenantd::db::invitations
