// Sessions and the per-request access check. A login starts a session (master row plus a
// hashed refresh token); every access token names its session (sid), and a request is
// served only while the tenant is active, the membership exists and the session is live.
#include <sodium.h>

#include <array>

#include "db/master_repository.hpp"
#include "domain/validation.hpp"
#include "identity/accounts.hpp"

namespace tenantd::identity {
namespace {

std::string random_token() {
  std::array<unsigned char, 32> bytes{};
  randombytes_buf(bytes.data(), bytes.size());
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes.data(), bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.find('\0'));
  return out;
}

}  // namespace

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
  bundle.refresh_token = random_token();
  {
    auto conn = co_await deps_.master->acquire();
    co_await conn->exec("BEGIN");
    co_await db::master::insert_session(*conn, bundle.session_id, account_id, tenant_id, deps_.session_ttl,
                                        client_address);
    co_await db::master::insert_refresh_token(*conn, sha256_hex(bundle.refresh_token), bundle.session_id,
                                              deps_.session_ttl);
    co_await conn->exec("COMMIT");
  }
  const role_info* info = deps_.roles->find(role);
  auth::claims c;
  c.iss = deps_.jwt->settings().issuer;
  c.aud = deps_.jwt->settings().audience;
  c.sub = account_id;
  c.tenant_id = tenant_id;
  c.role = role;
  c.permissions = permission_names(info ? info->permissions : 0);
  c.sid = bundle.session_id;
  c.jti = validation::new_uuid();
  c.iat = deps_.now();
  c.exp = c.iat + deps_.access_token_ttl;
  bundle.access_token = deps_.jwt->sign(c);
  bundle.expires_in = deps_.access_token_ttl;
  co_return bundle;
}

awaitable<result<principal>> accounts::authenticate(std::string_view token) {
  const auto unauthorized = [] { return make_error(errc::unauthorized, "the access token is missing or invalid"); };
  auto verified = deps_.jwt->verify(token, deps_.now());
  if (!verified) co_return unauthorized();
  const auto& c = *verified.value;
  if (!validation::is_uuid(c.sub) || !validation::is_uuid(c.sid) || validation::check_tenant_id(c.tenant_id))
    co_return unauthorized();
  auto row = co_await deps_.access->lookup(c.tenant_id, c.sub, c.sid);
  if (!row) co_return unauthorized();
  if (row->tenant_status == "suspended") co_return make_error(errc::tenant_suspended, "this tenant is suspended");
  if (row->tenant_status != "active" || !row->role || !row->session_live) co_return unauthorized();
  if (row->tenant_schema_version > deps_.latest_tenant_schema)
    co_return make_error(errc::schema_too_new, "this tenant's schema is newer than this server");
  const role_info* role = deps_.roles->find(*row->role);
  if (!role) co_return unauthorized();
  co_return principal{c.tenant_id, c.sub, role->name, role->permissions, c.sid, c.jti, row->tenant_schema_version};
}

}  // namespace tenantd::identity
