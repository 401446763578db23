// All SQL against the master database: tenants, accounts, memberships, sessions, roles,
// and cache-invalidation notifications. Each function runs on the connection it is given,
// so callers decide the transaction. Throws pg_error / unavailable_error (see connection.hpp).
#pragma once
#include <boost/asio/awaitable.hpp>

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "domain/access.hpp"
#include "domain/invalidation.hpp"
#include "domain/records.hpp"

namespace tenantd::db::master {

using boost::asio::awaitable;

// The channel every server process LISTENs on; its payloads are invalidations
// (domain/invalidation.hpp).
inline constexpr const char* invalidation_channel = "tenantd_invalidate";

awaitable<std::optional<tenant_record>> find_tenant(connection& c, const std::string& id);
// SELECT ... FOR UPDATE inside the caller's transaction.
awaitable<std::optional<tenant_record>> lock_tenant(connection& c, const std::string& id);
// Every tenant, or those in `status`, by id.
awaitable<std::vector<tenant_record>> list_tenants(connection& c, std::optional<tenant_status> status);
// Inserts a row in state 'provisioning'; false if the id exists already.
awaitable<bool> insert_provisioning_tenant(connection& c, const std::string& id, const std::string& name,
                                           const std::string& database_name);
awaitable<void> set_tenant_status(connection& c, const std::string& id, tenant_status status);
// Moves a tenant to `to` only if its status is one of `from`; nullopt if no such tenant or it
// was in another state.
awaitable<std::optional<tenant_record>> transition_tenant(connection& c, const std::string& id,
                                                          std::span<const tenant_status> from, tenant_status to,
                                                          const std::string& reason);
// Names of databases starting with `prefix` (LIKE-escaped here).
awaitable<std::vector<std::string>> databases_with_prefix(connection& c, const std::string& prefix);
awaitable<void> set_tenant_schema_version(connection& c, const std::string& id, int version,
                                          const std::optional<std::string>& error);
awaitable<void> delete_tenant_row(connection& c, const std::string& id);
awaitable<std::optional<tenant_record>> update_tenant(connection& c, const std::string& id,
                                                      const std::optional<std::string>& name,
                                                      const std::optional<std::string>& registration);
awaitable<bool> database_exists(connection& c, const std::string& database_name);

awaitable<std::optional<account_record>> find_account_by_email(connection& c, const std::string& email);
awaitable<std::optional<account_record>> find_account(connection& c, const std::string& id);
awaitable<void> insert_account(connection& c, const account_record& a);
awaitable<void> set_password_hash(connection& c, const std::string& account_id, const std::string& hash);

awaitable<std::optional<std::string>> find_membership_role(connection& c, const std::string& tenant_id,
                                                           const std::string& account_id);
awaitable<void> insert_membership(connection& c, const std::string& tenant_id, const std::string& account_id,
                                  const std::string& role);
awaitable<bool> delete_membership(connection& c, const std::string& tenant_id, const std::string& account_id);
awaitable<std::int64_t> count_members(connection& c, const std::string& tenant_id);
awaitable<std::int64_t> count_role(connection& c, const std::string& tenant_id, const std::string& role);
// Members of a tenant and its live sessions (not ended, not expired), for the operator's view.
struct tenant_counts {
  std::int64_t members{0};
  std::int64_t live_sessions{0};
};
awaitable<tenant_counts> count_members_and_sessions(statement_runner& r, const std::string& tenant_id);

struct tenant_membership {
  std::string tenant_id;
  std::string role;
};
// Memberships of an account in tenants that are active or suspended.
awaitable<std::vector<tenant_membership>> memberships_of(connection& c, const std::string& account_id);

awaitable<void> insert_session(connection& c, const std::string& id, const std::string& account_id,
                               const std::string& tenant_id, std::int64_t lifetime_seconds,
                               const std::string& client_address);
// Stores the SHA-256 (hex) of a refresh token for a session.
awaitable<void> insert_refresh_token(connection& c, const std::string& token_hash_hex, const std::string& session_id,
                                     std::int64_t lifetime_seconds);
// Ends the live sessions of one account in one tenant; returns their ids.
awaitable<std::vector<std::string>> end_sessions(connection& c, const std::string& tenant_id,
                                                 const std::string& account_id, const std::string& reason);

// What the per-request access check needs, in one query.
struct access_row {
  ::tenantd::tenant_status tenant_status{::tenantd::tenant_status::provisioning};
  int tenant_schema_version{0};
  std::optional<std::string> role;  // nullopt: not a member
  bool session_live{false};
  std::int64_t session_expires_at{0};  // Unix seconds; meaningful when session_live
};
awaitable<std::optional<access_row>> load_access(connection& c, const std::string& tenant_id,
                                                 const std::string& account_id, const std::string& session_id);

awaitable<role_table> load_roles(connection& c);

// Members of a tenant with their account's email and names, oldest first.
struct member_row {
  std::string account_id;
  std::string email;
  std::string first_name;
  std::string last_name;
  std::string role;
  std::string joined_at;
};
awaitable<std::vector<member_row>> list_members(connection& c, const std::string& tenant_id);
awaitable<bool> update_membership_role(connection& c, const std::string& tenant_id, const std::string& account_id,
                                       const std::string& role);

// Refresh tokens: the row for a presented token with its session's state, locked.
struct refresh_row {
  std::string session_id;
  std::string account_id;
  std::string tenant_id;
  bool used{false};
  bool expired{false};
  bool session_ended{false};
};
awaitable<std::optional<refresh_row>> lock_refresh_token(connection& c, const std::string& token_hash_hex);
awaitable<void> mark_refresh_token_used(connection& c, const std::string& token_hash_hex);
awaitable<void> touch_session(connection& c, const std::string& session_id);
// Ends one session; returns false if it was already ended or does not exist.
awaitable<bool> end_session(connection& c, const std::string& session_id, const std::string& reason);

// pg_notify on the invalidation channel; delivered at commit when inside a transaction.
awaitable<void> notify_invalidation(connection& c, const invalidation& change);

}  // namespace tenantd::db::master
