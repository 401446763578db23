// Accounts, memberships and sessions: the flows that span the master database and a
// tenant's database (register, login, owner on tenant creation, users who can log in,
// removal), and the per-request access check that turns a bearer token into a principal.
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
#include "domain/records.hpp"
#include "tenancy/access_cache.hpp"
#include "tenancy/directory.hpp"
#include "tenancy/pool_registry.hpp"

namespace tenantd::identity {

using boost::asio::awaitable;

struct dependencies {
  std::shared_ptr<db::pool> master;
  tenancy::pool_registry* pools{nullptr};
  tenancy::directory* tenants{nullptr};
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
  std::string token;
  std::string email;
  std::string role;
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

  // POST /auth/register: the first member becomes owner; later ones need a valid invitation
  // for their email (its role applies) or the tenant's registration policy 'open'.
  awaitable<result<membership_granted>> register_member(const std::string& tenant_id, const person& who,
                                                        const std::optional<std::string>& invitation = {});

  // The owner of a tenant being provisioned (tenant row still 'provisioning').
  awaitable<result<membership_granted>> create_owner(const tenant_record& tenant, const person& who);

  awaitable<login_outcome> login(const std::string& email, const std::string& password,
                                 const std::optional<std::string>& tenant_id, const std::string& client_address);

  // Starts a session (master row) and signs its first access token.
  awaitable<token_bundle> start_session(const std::string& account_id, const std::string& tenant_id,
                                        const std::string& role, const std::string& client_address);

  // Bearer token -> principal, checked against the current membership, tenant and session.
  // errc::unauthorized, errc::tenant_suspended, errc::schema_too_new.
  awaitable<result<principal>> authenticate(std::string_view token);

  // POST /api/users with a password: an account (new, or linked if the email exists, its
  // password untouched) plus a membership and the tenant's user row.
  awaitable<result<user_record>> add_login_user(const principal& caller, const person& who, const std::string& role);

  // DELETE /api/users/:id (drop_user_row) and DELETE /api/members/:id (keep the row).
  awaitable<status> remove_member(const principal& caller, const std::string& user_id, bool drop_user_row);

  awaitable<result<tenant_record>> update_tenant(const principal& caller, const std::optional<std::string>& name,
                                                 const std::optional<std::string>& registration);

  // POST /auth/refresh: rotates the refresh token; a used one revokes its whole session.
  awaitable<login_outcome> refresh(const std::string& refresh_token);
  // POST /auth/logout: ends the caller's session, or every session of the account in the tenant.
  awaitable<void> logout(const principal& caller, bool all);

  // POST /api/invitations: a single-use token for one email, stored hashed, expiring.
  awaitable<result<invitation_issued>> invite(const principal& caller, const std::string& email,
                                              const std::string& role);
  awaitable<std::vector<member_view>> list_members(const principal& caller);
  // PUT /api/members/:user_id. Only an owner grants or takes away 'owner'; the last owner stays.
  awaitable<result<member_view>> change_role(const principal& caller, const std::string& user_id,
                                             const std::string& role);

  const role_table& roles() const noexcept { return *deps_.roles; }

 private:
  // The token's claims if it verifies (signature, header, times) and names a well-formed
  // account, session and tenant; from deps_.token_cache when the token was seen before.
  std::shared_ptr<const auth::claims> verify_access_token(std::string_view token) const;
  awaitable<result<membership_granted>> grant_membership(const tenant_record& tenant, const person& who,
                                                         bool provisioning,
                                                         const std::optional<std::string>& invitation);
  // Inserts a new account inside the caller's transaction; false if the email is taken.
  awaitable<bool> insert_new_account(db::connection& conn, const account_record& account);
  awaitable<status> ensure_tenant_user(const tenant_record& tenant, const user_record& user);
  awaitable<void> revoke_membership(const std::string& tenant_id, const std::string& account_id, bool drop_account);
  void invalidate_local(const std::string& payload);
  std::string sign_access_token(const std::string& account_id, const std::string& tenant_id, const std::string& role,
                                const std::string& session_id) const;

  dependencies deps_;
};

}  // namespace tenantd::identity
