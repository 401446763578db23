// Master SQL for the tokens by which a tenant consents to a new member: invitations (for one
// email, with a role) and the claim token of a tenant created without an owner. Only the
// SHA-256 (hex) of a token is stored. Functions run on the connection given, so the caller
// decides the transaction. Throws pg_error / unavailable_error (see connection.hpp).
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"

namespace tenantd::db::invitations {

using boost::asio::awaitable;

// An invitation is usable while it is not accepted, not revoked, not expired, and its inviter
// still holds members:manage in its tenant with a role that ranks at least the one it grants.
struct invitation {
  std::string id;
  std::string tenant_id;
  std::string email;
  std::string role;
  std::optional<std::string> invited_by;  // account id; null once that account is gone
  std::string created_at;                 // RFC 3339 UTC
  std::string expires_at;
  bool usable{false};
};

awaitable<invitation> insert(connection& c, const std::string& id, const std::string& tenant_id,
                             const std::string& email, const std::string& role, const std::string& token_hash_hex,
                             const std::string& invited_by, std::int64_t lifetime_seconds);
// The usable invitations of a tenant, newest first.
awaitable<std::vector<invitation>> list_usable(connection& c, const std::string& tenant_id);
// Revokes a usable invitation of the tenant; false if there is none with that id.
awaitable<bool> revoke(connection& c, const std::string& tenant_id, const std::string& id);
// The invitation with this token, locked (FOR UPDATE) inside the caller's transaction.
awaitable<std::optional<invitation>> lock_by_token(connection& c, const std::string& token_hash_hex);
awaitable<void> accept(connection& c, const std::string& id, const std::string& account_id);

// Replaces the tenant's claim token (valid for lifetime_seconds).
awaitable<void> set_claim(connection& c, const std::string& tenant_id, const std::string& token_hash_hex,
                          std::int64_t lifetime_seconds);
// True if the tenant holds this unexpired claim token (call with the tenant row locked).
awaitable<bool> claim_matches(connection& c, const std::string& tenant_id, const std::string& token_hash_hex);
// Uses the claim token up (it is single use).
awaitable<void> clear_claim(connection& c, const std::string& tenant_id);

}  // namespace tenantd::db::invitations
