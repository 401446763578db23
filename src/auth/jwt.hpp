// JWT (JWS compact, HS256 only) signing and verification on libsodium primitives.
// The header's alg must be exactly "HS256"; kid/jku/x5u/jwk are never used to pick a key;
// a "crit" header is rejected. Every required claim must be present and well-typed.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tenantd::auth {

struct claims {
  std::string iss;
  std::string aud;
  std::string sub;  // user (account) id, a UUID
  std::string tenant_id;
  std::string role;
  std::vector<std::string> permissions;
  std::string sid;  // session id
  std::string jti;  // token id
  std::int64_t iat{0};
  std::int64_t exp{0};
  std::optional<std::int64_t> nbf;
};

// Why a token was rejected. Each value is tested; none is shown to clients (all are 401).
enum class jwt_error {
  malformed,           // not three base64url segments, bad base64url, not JSON objects
  duplicate_key,       // a JSON object in header or payload repeats a name
  unsupported_alg,     // alg missing or anything but "HS256" (none, HS512, RS256, ...)
  unsupported_header,  // "crit" present, or typ present and not "JWT"/"at+jwt"
  bad_signature,       // MAC mismatch (checked in constant time)
  missing_claim,       // a required claim is absent
  bad_claim_type,      // a claim has the wrong JSON type or an out-of-range number
  wrong_issuer,
  wrong_audience,
  expired,        // now > exp + leeway
  not_yet_valid,  // now + leeway < nbf (or iat in the future beyond leeway)
};

std::string_view to_string(jwt_error e) noexcept;

struct jwt_settings {
  std::string secret;  // raw bytes of JWT_SECRET, >= 32 bytes
  std::string key_id;  // "kid" written into headers
  std::string issuer{"tenantd"};
  std::string audience{"tenantd-api"};
  std::int64_t leeway_seconds{60};
  std::size_t max_token_length{8192};
};

class jwt_codec {
 public:
  // Throws std::invalid_argument if the secret is under 32 bytes or the leeway is negative.
  // An empty key_id becomes derive_key_id(secret).
  explicit jwt_codec(jwt_settings settings);

  // Signs the claims as given (iss/aud taken from the claims struct).
  std::string sign(const claims& c) const;

  // Verifies signature, header, issuer, audience and times against `now` (Unix seconds).
  // Returns the claims, or the reason for rejection.
  struct verified {
    std::optional<claims> value;
    jwt_error error{jwt_error::malformed};
    explicit operator bool() const noexcept { return value.has_value(); }
  };
  verified verify(std::string_view token, std::int64_t now) const;

  const jwt_settings& settings() const noexcept { return settings_; }

 private:
  jwt_settings settings_;
};

// A key id derived from the secret: the first 8 hex digits of SHA-256(secret).
std::string derive_key_id(std::string_view secret);

}  // namespace tenantd::auth
