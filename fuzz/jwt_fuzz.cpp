// libFuzzer target for auth::jwt_codec::verify with a fixed key, on raw compact tokens and
// on header/payload pairs that the harness signs, so the claim checks behind the MAC run.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <sodium.h>

#include "auth/jwt.hpp"
#include "domain/validation.hpp"

namespace {

using tenantd::auth::claims;
using tenantd::auth::jwt_codec;
using tenantd::auth::jwt_settings;

constexpr std::int64_t now = 1'800'000'000;
constexpr std::string_view secret = "fuzz-secret-0123456789abcdef-0123456789";

jwt_codec make_codec(std::string_view key) {
  jwt_settings settings;
  settings.secret = std::string(key);
  settings.key_id = "fuzz";
  return jwt_codec(settings);
}

const jwt_codec& codec() {
  static const jwt_codec c = make_codec(secret);
  return c;
}

const jwt_codec& other_codec() {
  static const jwt_codec c = make_codec("another-secret-0123456789abcdef-012345");
  return c;
}

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "jwt_fuzz: %s\n", what);
  std::abort();
}

std::string b64url(std::string_view bytes) {
  constexpr int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    variant);
  out.resize(out.size() - 1);
  return out;
}

// "<header>\n<payload>" -> a compact token with a valid HS256 MAC under `secret`.
std::string signed_token(std::string_view input) {
  const auto newline = input.find('\n');
  const std::string_view header = input.substr(0, newline);
  const std::string_view payload = newline == std::string_view::npos ? std::string_view{} : input.substr(newline + 1);
  std::string token = b64url(header) + "." + b64url(payload);
  unsigned char tag[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(token.data()), token.size());
  crypto_auth_hmacsha256_final(&state, tag);
  token += '.';
  token += b64url(std::string_view(reinterpret_cast<const char*>(tag), sizeof tag));
  return token;
}

bool good_string(const std::string& s) { return !s.empty() && tenantd::validation::is_clean_utf8(s); }

void check_claims(const claims& c) {
  const auto& settings = codec().settings();
  if (c.iss != settings.issuer) fail("verified token with another issuer");
  if (c.aud != settings.audience) fail("verified token with another audience");
  for (const auto* s : {&c.sub, &c.tenant_id, &c.role, &c.sid, &c.jti})
    if (!good_string(*s)) fail("verified token with an empty or dirty string claim");
  for (const auto& p : c.permissions)
    if (!good_string(p)) fail("verified token with an empty or dirty permission");
  constexpr std::int64_t max_safe = std::int64_t{1} << 53;
  if (c.iat < 0 || c.iat > max_safe || c.exp < 0 || c.exp > max_safe) fail("time claim out of range");
  if (c.nbf && (*c.nbf < 0 || *c.nbf > max_safe)) fail("nbf out of range");
  if (now - c.exp > settings.leeway_seconds) fail("verified an expired token");
  if (c.nbf && *c.nbf - now > settings.leeway_seconds) fail("verified a token before nbf");
  if (c.iat - now > settings.leeway_seconds) fail("verified a token issued in the future");
}

bool same_claims(const claims& a, const claims& b) {
  return a.iss == b.iss && a.aud == b.aud && a.sub == b.sub && a.tenant_id == b.tenant_id && a.role == b.role &&
         a.permissions == b.permissions && a.sid == b.sid && a.jti == b.jti && a.iat == b.iat && a.exp == b.exp &&
         a.nbf == b.nbf;
}

}  // namespace

// An input starting with '{' is "<header JSON>\n<payload JSON>", encoded and signed here; any
// other input is verified as it is. Properties: a token that verifies has well-formed claims,
// fails under another key, and its claims re-sign into a token with the same claims.
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::string token = !input.empty() && input.front() == '{' ? signed_token(input) : std::string(input);

  const std::size_t max_length = codec().settings().max_token_length;
  const auto result = codec().verify(token, now);
  if (token.size() > max_length && (result || result.error != tenantd::auth::jwt_error::malformed))
    fail("an over-long token was not rejected as malformed");
  if (!result) return 0;
  const claims& c = *result.value;
  check_claims(c);
  if (other_codec().verify(token, now)) fail("token verified under another key");

  // Round trip: the claims re-sign deterministically into a token with the same claims.
  const std::string resigned = codec().sign(c);
  if (resigned.size() > max_length) return 0;  // our header may be longer than the input's
  const auto again = codec().verify(resigned, now);
  if (!again) fail("re-signed claims do not verify");
  if (!same_claims(c, *again.value)) fail("re-signed claims differ");
  if (codec().sign(*again.value) != resigned) fail("signing is not deterministic");
  return 0;
}
