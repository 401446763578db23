// Sessions and the per-request access check. A login starts a session (master row plus a
// hashed refresh token); every access token names its session (sid), and a request is
// served only while the tenant is active, the membership exists and the session is live.
#include <sodium.h>

#include <array>
#include <limits>

#include "db/master_repository.hpp"
#include "db/session_repository.hpp"
#include "db/transaction.hpp"
#include "db/user_repository.hpp"
#include "domain/validation.hpp"
#include "identity/accounts.hpp"

namespace tenantd::identity {
std::string new_opaque_token() {
  std::array<unsigned char, 32> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.find('\0'));
  return out;
}

std::string sha256_hex(std::string_view data) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(data.data()), data.size());
  std::string hex(digest.size() * 2 + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), digest.size());
  hex.pop_back();
  return hex;
}

awaitable<token_bundle> accounts::start_session(const std::string& account_id, const std::string& tenant_id,
                                                const std::string& role, const std::string& client_address) {
  token_bundle bundle;
  bundle.session_id = validation::new_uuid();
  bundle.refresh_token = new_opaque_token();
  {
    auto conn = co_await deps_.master->acquire();
    auto tx = co_await db::transaction::begin(*conn);
    co_await db::master::insert_session(*conn, bundle.session_id, account_id, tenant_id, deps_.session_ttl,
                                        client_address);
    co_await db::master::insert_refresh_token(*conn, sha256_hex(bundle.refresh_token), bundle.session_id,
                                              deps_.session_ttl);
    co_await tx.commit();
  }
  bundle.access_token = sign_access_token(account_id, tenant_id, role, bundle.session_id);
  bundle.expires_in = deps_.access_token_ttl;
  co_return bundle;
}

std::string accounts::sign_access_token(const std::string& account_id, const std::string& tenant_id,
                                        const std::string& role, const std::string& session_id) const {
  const role_info* info = deps_.roles->find(role);
  auth::claims c;
  c.iss = deps_.jwt->settings().issuer;
  c.aud = deps_.jwt->settings().audience;
  c.sub = account_id;
  c.tenant_id = tenant_id;
  c.role = role;
  c.permissions = permission_names(info ? info->permissions : 0);
  c.sid = session_id;
  c.jti = validation::new_uuid();
  c.iat = deps_.now();
  c.exp = c.iat + deps_.access_token_ttl;
  return deps_.jwt->sign(c);
}

std::shared_ptr<const auth::claims> accounts::verify_access_token(std::string_view token) const {
  const auto now = deps_.now();
  if (deps_.token_cache != nullptr) {
    if (auto known = deps_.token_cache->find(token, now)) return known;
  }
  auto verified = deps_.jwt->verify(token, now);
  if (!verified) return nullptr;
  auto c = std::make_shared<const auth::claims>(std::move(*verified.value));
  if (!validation::is_uuid(c->sub) || !validation::is_uuid(c->sid) || validation::check_tenant_id(c->tenant_id))
    return nullptr;
  if (deps_.token_cache != nullptr) {
    const auto leeway = deps_.jwt->settings().leeway_seconds;
    const auto valid_until = c->exp > std::numeric_limits<std::int64_t>::max() - leeway
                                 ? std::numeric_limits<std::int64_t>::max()
                                 : c->exp + leeway;
    deps_.token_cache->store(token, c, valid_until, now);
  }
  return c;
}

awaitable<result<principal>> accounts::authenticate(std::string_view token) {
  const auto unauthorized = [] { return make_error(errc::unauthorized, "the access token is missing or invalid"); };
  const auto c = verify_access_token(token);
  if (!c) co_return unauthorized();
  auto row = co_await deps_.access->lookup(c->tenant_id, c->sub, c->sid);
  if (!row) co_return unauthorized();
  if (row->tenant_status == tenant_status::suspended)
    co_return make_error(errc::tenant_suspended, "this tenant is suspended");
  if (row->tenant_status != tenant_status::active || !row->role || !row->session_live) co_return unauthorized();
  if (row->tenant_schema_version > deps_.latest_tenant_schema)
    co_return make_error(errc::schema_too_new, "this tenant's schema is newer than this server");
  const role_info* role = deps_.roles->find(*row->role);
  if (!role) co_return unauthorized();
  co_return principal{c->tenant_id, c->sub, role->name, role->permissions, c->sid, c->jti, row->tenant_schema_version};
}

}  // namespace tenantd::identity

namespace tenantd::identity {

awaitable<login_outcome> accounts::refresh(const std::string& refresh_token) {
  login_outcome out;
  const auto invalid = [] { return make_error(errc::invalid_refresh_token, "the refresh token is not valid"); };
  const auto hash = sha256_hex(refresh_token);
  auto conn = co_await deps_.master->acquire();
  auto tx = co_await db::transaction::begin(*conn);
  auto row = co_await db::master::lock_refresh_token(*conn, hash);
  if (!row || row->expired || row->session_ended) {
    out.failure = invalid();
    co_return out;
  }
  if (row->used) {
    // Reuse of a rotated token: someone holds a copy. End the whole session.
    (void)co_await db::master::end_session(*conn, row->session_id, "refresh_token_reused");
    const auto change = invalidation::of_session(row->session_id);
    co_await db::master::notify_invalidation(*conn, change);
    co_await tx.commit();
    invalidate_local(change);
    out.failure = invalid();
    co_return out;
  }
  auto role = co_await db::master::find_membership_role(*conn, row->tenant_id, row->account_id);
  auto tenant = co_await db::master::find_tenant(*conn, row->tenant_id);
  if (!role || !tenant || !is_live(tenant->status)) {
    out.failure = invalid();
    co_return out;
  }
  if (tenant->status == tenant_status::suspended) {
    out.failure = make_error(errc::tenant_suspended, "this tenant is suspended");
    co_return out;
  }
  token_bundle bundle;
  bundle.session_id = row->session_id;
  bundle.refresh_token = new_opaque_token();
  co_await db::master::mark_refresh_token_used(*conn, hash);
  co_await db::master::insert_refresh_token(*conn, sha256_hex(bundle.refresh_token), row->session_id,
                                            deps_.session_ttl);
  (void)co_await db::sessions::trim_refresh_tokens(*conn, row->session_id);  // rows per session stay bounded
  co_await db::master::touch_session(*conn, row->session_id);
  co_await tx.commit();

  const role_info* info = deps_.roles->find(*role);
  bundle.access_token = sign_access_token(row->account_id, row->tenant_id, *role, row->session_id);
  bundle.expires_in = deps_.access_token_ttl;

  std::optional<user_record> user;
  {
    auto tenant_conn = co_await databases_.acquire(*tenant, tenancy::intent::read);
    user = co_await db::users::find(*tenant_conn, row->account_id);
  }
  login_success success;
  success.tokens = std::move(bundle);
  if (user) {
    success.user = *user;
  } else {
    auto account = co_await db::master::find_account(*conn, row->account_id);
    if (account)
      success.user = user_record{account->id,        account->email,      account->first_name,
                                 account->last_name, account->created_at, account->updated_at};
  }
  success.tenant_id = row->tenant_id;
  success.role = *role;
  success.permissions = info ? info->permissions : 0;
  out.success = std::move(success);
  co_return out;
}

awaitable<void> accounts::logout(const principal& caller, bool all) {
  auto conn = co_await deps_.master->acquire();
  auto tx = co_await db::transaction::begin(*conn);
  invalidation change;
  if (all) {
    const std::string reason = "logout_all";
    (void)co_await db::master::end_sessions(*conn, caller.tenant_id, caller.account_id, reason);
    change = invalidation::of_member(caller.tenant_id, caller.account_id);
  } else {
    const std::string reason = "logout";
    (void)co_await db::master::end_session(*conn, caller.session_id, reason);
    change = invalidation::of_session(caller.session_id);
  }
  co_await db::master::notify_invalidation(*conn, change);
  co_await tx.commit();
  invalidate_local(change);
}

}  // namespace tenantd::identity
