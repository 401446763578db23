// HS256 JWS compact tokens: strict base64url, header checks, a constant-time MAC check, then
// claim presence, types, issuer, audience and times. The payload is read only after the MAC.
#include "auth/jwt.hpp"

#include <boost/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <limits>
#include <stdexcept>

#include "domain/strict_json.hpp"
#include "domain/validation.hpp"

namespace tenantd::auth {
namespace {

namespace json = boost::json;

constexpr int b64_variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
constexpr std::size_t json_depth = 8;
constexpr std::int64_t max_safe_integer = std::int64_t{1} << 53;

using mac = std::array<unsigned char, crypto_auth_hmacsha256_BYTES>;

void ensure_sodium() {
  static const int initialised = sodium_init();
  if (initialised < 0) throw std::runtime_error("libsodium failed to initialise");
}

std::string encode_b64url(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), b64_variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    b64_variant);
  out.resize(out.size() - 1);
  return out;
}

bool is_b64url_char(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Only canonical unpadded base64url is accepted (libsodium also rejects non-zero spare bits).
std::optional<std::string> decode_b64url(std::string_view text) {
  for (const char c : text)
    if (!is_b64url_char(c)) return std::nullopt;
  std::string out(text.size() * 3 / 4 + 1, '\0');
  std::size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &length, &end, b64_variant) != 0 ||
      end != text.data() + text.size())
    return std::nullopt;
  out.resize(length);
  return out;
}

mac compute_mac(std::string_view key, std::string_view signing_input) {
  crypto_auth_hmacsha256_state state;
  mac out{};
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(signing_input.data()),
                                signing_input.size());
  crypto_auth_hmacsha256_final(&state, out.data());
  sodium_memzero(&state, sizeof state);
  return out;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

// Parses a decoded segment that must be a JSON object.
std::optional<jwt_error> parse_object(std::string_view text, json::object& out) {
  auto parsed = parse_strict_json(text, json_depth);
  if (!parsed) return parsed.err().detail == duplicate_key_detail ? jwt_error::duplicate_key : jwt_error::malformed;
  if (!parsed->is_object()) return jwt_error::malformed;
  out = std::move(parsed->get_object());
  return std::nullopt;
}

bool is_good_string(const json::value& v) {
  return v.is_string() && !v.get_string().empty() && validation::is_clean_utf8(v.get_string());
}

std::optional<jwt_error> read_string(const json::object& o, std::string_view name, std::string& out) {
  const auto* v = o.if_contains(name);
  if (v == nullptr) return jwt_error::missing_claim;
  if (!is_good_string(*v)) return jwt_error::bad_claim_type;
  out = std::string(v->get_string());
  return std::nullopt;
}

// A NumericDate: a non-negative JSON integer (no fraction or exponent) up to 2^53.
std::optional<jwt_error> read_time(const json::object& o, std::string_view name, std::int64_t& out) {
  const auto* v = o.if_contains(name);
  if (v == nullptr) return jwt_error::missing_claim;
  if (v->is_int64() && v->get_int64() >= 0 && v->get_int64() <= max_safe_integer) {
    out = v->get_int64();
    return std::nullopt;
  }
  return jwt_error::bad_claim_type;
}

std::optional<jwt_error> read_permissions(const json::object& o, std::vector<std::string>& out) {
  const auto* v = o.if_contains("permissions");
  if (v == nullptr) return jwt_error::missing_claim;
  if (!v->is_array()) return jwt_error::bad_claim_type;
  for (const auto& item : v->get_array()) {
    if (!is_good_string(item)) return jwt_error::bad_claim_type;
    out.emplace_back(item.get_string());
  }
  return std::nullopt;
}

// aud is a non-empty string or a non-empty array of them.
std::optional<jwt_error> read_audiences(const json::object& o, std::vector<std::string>& out) {
  const auto* v = o.if_contains("aud");
  if (v == nullptr) return jwt_error::missing_claim;
  if (v->is_string()) {
    if (!is_good_string(*v)) return jwt_error::bad_claim_type;
    out.emplace_back(v->get_string());
    return std::nullopt;
  }
  if (!v->is_array() || v->get_array().empty()) return jwt_error::bad_claim_type;
  for (const auto& item : v->get_array()) {
    if (!is_good_string(item)) return jwt_error::bad_claim_type;
    out.emplace_back(item.get_string());
  }
  return std::nullopt;
}

// True if a - b > limit (limit >= 0), without overflow for any a and b.
bool later_by_more_than(std::int64_t a, std::int64_t b, std::int64_t limit) noexcept {
  if (a <= b) return false;
  const auto difference = static_cast<std::uint64_t>(a) - static_cast<std::uint64_t>(b);
  return difference > static_cast<std::uint64_t>(limit);
}

std::optional<jwt_error> check_header(const json::object& header) {
  const auto* alg = header.if_contains("alg");
  if (alg == nullptr || !alg->is_string() || alg->get_string() != "HS256") return jwt_error::unsupported_alg;
  if (header.contains("crit")) return jwt_error::unsupported_header;
  if (const auto* typ = header.if_contains("typ")) {
    if (!typ->is_string()) return jwt_error::unsupported_header;
    const std::string_view value = typ->get_string();
    if (!equals_ignoring_case(value, "JWT") && !equals_ignoring_case(value, "at+jwt"))
      return jwt_error::unsupported_header;
  }
  return std::nullopt;
}

std::optional<jwt_error> read_claims(const json::object& payload, claims& c, std::vector<std::string>& audiences) {
  for (auto [name, field] : {std::pair{"iss", &c.iss}, std::pair{"sub", &c.sub}, std::pair{"tenant_id", &c.tenant_id},
                             std::pair{"role", &c.role}, std::pair{"sid", &c.sid}, std::pair{"jti", &c.jti}})
    if (auto e = read_string(payload, name, *field)) return e;
  if (auto e = read_audiences(payload, audiences)) return e;
  if (auto e = read_permissions(payload, c.permissions)) return e;
  if (auto e = read_time(payload, "iat", c.iat)) return e;
  if (auto e = read_time(payload, "exp", c.exp)) return e;
  if (payload.contains("nbf")) {
    std::int64_t nbf = 0;
    if (auto e = read_time(payload, "nbf", nbf)) return e;
    c.nbf = nbf;
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(jwt_error e) noexcept {
  switch (e) {
    case jwt_error::malformed: return "malformed";
    case jwt_error::duplicate_key: return "duplicate_key";
    case jwt_error::unsupported_alg: return "unsupported_alg";
    case jwt_error::unsupported_header: return "unsupported_header";
    case jwt_error::bad_signature: return "bad_signature";
    case jwt_error::missing_claim: return "missing_claim";
    case jwt_error::bad_claim_type: return "bad_claim_type";
    case jwt_error::wrong_issuer: return "wrong_issuer";
    case jwt_error::wrong_audience: return "wrong_audience";
    case jwt_error::expired: return "expired";
    case jwt_error::not_yet_valid: return "not_yet_valid";
  }
  return "malformed";
}

std::string derive_key_id(std::string_view secret) {
  ensure_sodium();
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(secret.data()), secret.size());
  std::array<char, 9> hex{};
  sodium_bin2hex(hex.data(), hex.size(), digest.data(), 4);
  return std::string(hex.data(), 8);
}

jwt_codec::jwt_codec(jwt_settings settings) : settings_(std::move(settings)) {
  ensure_sodium();
  if (settings_.secret.size() < 32) throw std::invalid_argument("JWT secret must be at least 32 bytes");
  if (settings_.leeway_seconds < 0) throw std::invalid_argument("JWT leeway must not be negative");
  if (settings_.key_id.empty()) settings_.key_id = derive_key_id(settings_.secret);
}

std::string jwt_codec::sign(const claims& c) const {
  const json::object header{{"alg", "HS256"}, {"typ", "JWT"}, {"kid", settings_.key_id}};
  json::array permissions;
  for (const auto& p : c.permissions) permissions.emplace_back(p);
  json::object payload{{"iss", c.iss},   {"aud", c.aud},
                       {"sub", c.sub},   {"tenant_id", c.tenant_id},
                       {"role", c.role}, {"permissions", std::move(permissions)},
                       {"sid", c.sid},   {"jti", c.jti},
                       {"iat", c.iat},   {"exp", c.exp}};
  if (c.nbf) payload.emplace("nbf", *c.nbf);
  std::string token = encode_b64url(json::serialize(header));
  token += '.';
  token += encode_b64url(json::serialize(payload));
  const mac tag = compute_mac(settings_.secret, token);
  token += '.';
  token += encode_b64url(std::string_view(reinterpret_cast<const char*>(tag.data()), tag.size()));
  return token;
}

jwt_codec::verified jwt_codec::verify(std::string_view token, std::int64_t now) const {
  const auto fail = [](jwt_error e) { return verified{std::nullopt, e}; };
  if (token.empty() || token.size() > settings_.max_token_length) return fail(jwt_error::malformed);

  const std::size_t first_dot = token.find('.');
  const std::size_t second_dot = first_dot == std::string_view::npos ? first_dot : token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos || token.find('.', second_dot + 1) != std::string_view::npos)
    return fail(jwt_error::malformed);
  const std::string_view header_b64 = token.substr(0, first_dot);
  const std::string_view payload_b64 = token.substr(first_dot + 1, second_dot - first_dot - 1);
  const std::string_view signature_b64 = token.substr(second_dot + 1);

  const auto header_text = decode_b64url(header_b64);
  if (!header_text) return fail(jwt_error::malformed);
  json::object header;
  if (auto e = parse_object(*header_text, header)) return fail(*e);
  if (auto e = check_header(header)) return fail(*e);

  const auto payload_text = decode_b64url(payload_b64);
  const auto signature = decode_b64url(signature_b64);
  if (payload_b64.empty() || !payload_text || signature_b64.empty() || !signature) return fail(jwt_error::malformed);
  const mac expected = compute_mac(settings_.secret, token.substr(0, second_dot));
  if (signature->size() != expected.size() ||
      crypto_verify_32(reinterpret_cast<const unsigned char*>(signature->data()), expected.data()) != 0)
    return fail(jwt_error::bad_signature);

  json::object payload;
  if (auto e = parse_object(*payload_text, payload)) return fail(*e);

  claims c;
  std::vector<std::string> audiences;
  if (auto e = read_claims(payload, c, audiences)) return fail(*e);
  if (c.iss != settings_.issuer) return fail(jwt_error::wrong_issuer);
  if (std::find(audiences.begin(), audiences.end(), settings_.audience) == audiences.end())
    return fail(jwt_error::wrong_audience);
  c.aud = settings_.audience;
  if (later_by_more_than(now, c.exp, settings_.leeway_seconds)) return fail(jwt_error::expired);
  if (c.nbf && later_by_more_than(*c.nbf, now, settings_.leeway_seconds)) return fail(jwt_error::not_yet_valid);
  if (later_by_more_than(c.iat, now, settings_.leeway_seconds)) return fail(jwt_error::not_yet_valid);
  return verified{std::move(c), jwt_error::malformed};
}

}  // namespace tenantd::auth
