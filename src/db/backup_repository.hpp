// The master rows a tenant backup carries (memberships with their accounts and password
// hashes, pending invitations) and the statements a restore writes them back with. Runs on
// the connection it is given; the restore calls the writes inside one transaction.
// Throws pg_error / unavailable_error.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"

namespace tenantd::db::backups {

using boost::asio::awaitable;

struct member_row {
  std::string account_id;
  std::string email;
  std::string password_hash;
  std::string first_name;
  std::string last_name;
  std::string role;
  std::string joined_at;  // as PostgreSQL prints a timestamptz
};

struct invitation_row {
  std::string id;
  std::string email;
  std::string role;
  std::string token_hash_hex;
  std::optional<std::string> invited_by;  // account id; none once that account is gone
  std::string created_at;
  std::string expires_at;
};

// Members of a tenant with their accounts, oldest membership first.
awaitable<std::vector<member_row>> members_of(connection& c, const std::string& tenant_id);
// Invitations neither accepted, revoked nor expired, oldest first.
awaitable<std::vector<invitation_row>> pending_invitations(connection& c, const std::string& tenant_id);

// A 'deleted' tenant row taken for a restore under its id: back to 'provisioning' with the
// restored name and database. Does nothing if the row is not 'deleted'.
awaitable<void> reuse_deleted_tenant(connection& c, const std::string& id, const std::string& name,
                                     const std::string& database_name);
// The restore went wrong after reuse_deleted_tenant: the row is 'deleted' again.
awaitable<void> mark_deleted(connection& c, const std::string& id);
// Removes every membership and invitation of a tenant (a restore replaces them).
awaitable<void> clear_members_and_invitations(connection& c, const std::string& tenant_id);
// Inserts the account of a restored member (same id, email and password hash).
awaitable<void> insert_account(connection& c, const member_row& m);
// The membership of a restored member, with its original join time.
awaitable<void> insert_membership(connection& c, const std::string& tenant_id, const member_row& m);
// A restored invitation; its inviter only if that account still exists. False when an
// invitation with that id or token exists already (kept as it is).
awaitable<bool> insert_invitation(connection& c, const std::string& tenant_id, const invitation_row& i);
// The restored tenant goes live: 'active', with its name, registration policy and schema version.
awaitable<void> activate_restored(connection& c, const std::string& id, const std::string& name,
                                  const std::string& registration, int schema_version);

}  // namespace tenantd::db::backups
