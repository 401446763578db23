// Accounts, memberships and sessions: the flows that span the master database and a
// tenant's database (register, login, owner on tenant creation, invitations, removal), and
// the per-request access check that turns a bearer token into a principal. Nobody joins a
// tenant without proving the account's password or holding a token the tenant issued.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/jwt.hpp"
#include "auth/password_hasher.hpp"
#include "auth/token_cache.hpp"
#include "db/pool.hpp"
#include "domain/access.hpp"
#include "domain/error.hpp"
#include "domain/invalidation.hpp"
#include "domain/records.hpp"
#include "tenancy/access_cache.hpp"
#include "tenancy/directory.hpp"
#include "tenancy/pool_registry.hpp"
#include "tenancy/tenant_databases.hpp"

namespace tenantd::identity {

using boost::asio::awaitable;

struct dependencies {
  std::shared_ptr<db::pool> master;
  tenancy::pool_registry* pools{nullptr};
  tenancy::directory* tenants{nullptr};
  // Optional: tenants on servers other than main (without it, a process reaches only the
  // servers its pool registry's lookup already knows: found by the bed test, a tenant on a
  // server another process had just added was 503 on register and login).
  tenancy::server_directory* servers{nullptr};
  // Optional: holds this process's writes to a tenant during a move's cut-over.
  tenancy::write_gate* gate{nullptr};
  tenancy::access_cache* access{nullptr};
  auth::password_hasher* hasher{nullptr};
  const auth::jwt_codec* jwt{nullptr};
  auth::token_cache* token_cache{nullptr};  // optional: verified access tokens
  const role_table* roles{nullptr};
  std::int64_t access_token_ttl{3600};         // seconds
  std::int64_t session_ttl{30 * 24 * 3600};    // seconds a session (refresh token) lives
  int latest_tenant_schema{0};                 // tenants newer than this are refused
  std::int64_t invitation_ttl{7 * 24 * 3600};  // seconds an invitation stays valid
  std::function<std::int64_t()> now;           // Unix seconds (injectable)
};

struct person {
  std::string email;  // normalized
  std::string password;
  std::string first_name;
  std::string last_name;
};

// What lets a registration into a tenant: its claim token (first owner), an invitation (its
// role), or neither (then only the tenant's registration policy 'open' lets a member in).
struct consent {
  std::optional<std::string> claim_token;
  std::optional<std::string> invitation;
};

// A person whose password was checked against the account with their email, or hashed for a
// new account when there is none. Built before any transaction (hashing is slow).
struct proven_person {
  person who;
  std::optional<account_record> existing;  // the account with who.email, if any
  bool password_ok{false};                 // with existing: who.password is that account's
  std::string new_hash;                    // without existing: the new account's hash
};

struct membership_granted {
  user_record user;
  std::string tenant_id;
  std::string role;
};

struct token_bundle {
  std::string access_token;
  std::int64_t expires_in{0};
  std::string refresh_token;
  std::string session_id;
};

struct login_success {
  token_bundle tokens;
  user_record user;
  std::string tenant_id;
  std::string role;
  permission_set permissions{0};
};

struct invitation_issued {
  std::string id;
  std::string token;
  std::string email;
  std::string role;
  std::string expires_at;
  std::string invited_by;
};

struct invitation_view {
  std::string id;
  std::string email;
  std::string role;
  std::optional<std::string> invited_by;
  std::string created_at;
  std::string expires_at;
};

struct member_view {
  std::string user_id;
  std::string email;
  std::string first_name;
  std::string last_name;
  std::string role;
  std::string joined_at;
};

// A login either succeeds, fails with an error, or needs a tenant choice.
struct login_outcome {
  std::optional<login_success> success;
  std::optional<error> failure;
  std::vector<std::string> tenant_choices;  // with errc::tenant_required
};

// Lower-case hex SHA-256, used to store opaque tokens (refresh, invitation) hashed.
std::string sha256_hex(std::string_view data);
// 32 random bytes, base64url without padding (refresh tokens, invitations).
std::string new_opaque_token();

class accounts {
 public:
  explicit accounts(dependencies deps);

  // POST /auth/register. Needs the tenant's consent (see consent): else
  // errc::registration_closed, and an existing email's password: else errc::email_taken.
  // Checks: tenant (tenant_not_found, tenant_suspended), consent, email, already_member.
  // A refused registration uses up no claim token and no invitation.
  awaitable<result<membership_granted>> register_member(const std::string& tenant_id, const person& who,
                                                        const consent& given);

  // POST /tenants with an owner, before anything is created: an existing account's password
  // must verify (else errc::invalid_credentials); a new account's password is hashed.
  awaitable<result<proven_person>> check_owner(const person& who);
  // The owner of a tenant being provisioned (tenant row still 'provisioning').
  awaitable<result<membership_granted>> create_owner(const tenant_record& tenant, const proven_person& owner);
  // A new single-use claim token for a tenant being provisioned without an owner (valid for
  // invitation_ttl); only its hash is stored. Returns the token.
  awaitable<std::string> issue_claim_token(const tenant_record& tenant);

  awaitable<login_outcome> login(const std::string& email, const std::string& password,
                                 const std::optional<std::string>& tenant_id, const std::string& client_address);

  // Starts a session (master row) and signs its first access token.
  awaitable<token_bundle> start_session(const std::string& account_id, const std::string& tenant_id,
                                        const std::string& role, const std::string& client_address);

  // Bearer token -> principal, checked against the current membership, tenant and session.
  // errc::unauthorized, errc::tenant_suspended, errc::schema_too_new.
  awaitable<result<principal>> authenticate(std::string_view token);

  // PUT /api/users/:id: a member's email is their login email, which no tenant edits
  // (errc::invalid_input naming `email`); names may change. errc::not_found, errc::email_taken.
  awaitable<result<user_record>> update_user(const principal& caller, const std::string& user_id,
                                             const user_changes& changes);

  // DELETE /api/users/:id (drop_user_row) and DELETE /api/members/:id (keep the row).
  awaitable<status> remove_member(const principal& caller, const std::string& user_id, bool drop_user_row);

  awaitable<result<tenant_record>> update_tenant(const principal& caller, const std::optional<std::string>& name,
                                                 const std::optional<std::string>& registration);

  // POST /auth/refresh: rotates the refresh token; a used one revokes its whole session.
  awaitable<login_outcome> refresh(const std::string& refresh_token);
  // POST /auth/logout: ends the caller's session, or every session of the account in the tenant.
  awaitable<void> logout(const principal& caller, bool all);

  // POST /api/invitations: a single-use token for one email, stored hashed, expiring. Only an
  // owner invites owners (errc::forbidden).
  awaitable<result<invitation_issued>> invite(const principal& caller, const std::string& email,
                                              const std::string& role);
  // GET /api/invitations: the usable ones (see db::invitations::invitation).
  awaitable<std::vector<invitation_view>> list_invitations(const principal& caller);
  // DELETE /api/invitations/:id: errc::not_found if unknown or no longer usable.
  awaitable<status> revoke_invitation(const principal& caller, const std::string& id);
  // GET /api/members: the login email of each member's account, names from the tenant's users.
  awaitable<std::vector<member_view>> list_members(const principal& caller);
  // PUT /api/members/:user_id. Only an owner grants or takes away 'owner'; the last owner stays.
  awaitable<result<member_view>> change_role(const principal& caller, const std::string& user_id,
                                             const std::string& role);

  const role_table& roles() const noexcept { return *deps_.roles; }

 private:
  // The token's claims if it verifies (signature, header, times) and names a well-formed
  // account, session and tenant; from deps_.token_cache when the token was seen before.
  std::shared_ptr<const auth::claims> verify_access_token(std::string_view token) const;
  // Looks up the account with who.email and checks the password, or hashes it for a new one.
  awaitable<proven_person> prove(const person& who);
  // provisioning: the tenant row is 'provisioning' and the person becomes its owner.
  awaitable<result<membership_granted>> grant_membership(const tenant_record& tenant, const proven_person& joiner,
                                                         bool provisioning, const consent& given);
  // Inserts a new account inside the caller's transaction; false if the email is taken.
  awaitable<bool> insert_new_account(db::connection& conn, const account_record& account);
  // The joiner's row in the tenant's users: kept if it exists, else the directory entry with
  // their email (adopted: its id becomes the account id), else a new one.
  awaitable<result<user_record>> ensure_tenant_user(const tenant_record& tenant, const user_record& user);
  void invalidate_local(const invalidation& change);
  std::string sign_access_token(const std::string& account_id, const std::string& tenant_id, const std::string& role,
                                const std::string& session_id) const;

  dependencies deps_;
  tenancy::tenant_databases databases_;  // deps_.tenants, pools and servers
};

}  // namespace tenantd::identity
