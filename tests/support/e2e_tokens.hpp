// Token factory for attack tests: base64url, HMAC-SHA256/512 signing of arbitrary headers and
// claims with any key, and decoding of the server's tokens. Written on libsodium alone.
#pragma once
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace tenantd::test {

std::string base64url_encode(std::string_view bytes);
// Decodes unpadded base64url; throws std::invalid_argument on bad input.
std::string base64url_decode(std::string_view text);

std::string hmac_sha256(std::string_view key, std::string_view message);
std::string hmac_sha512(std::string_view key, std::string_view message);

// "<b64(header)>.<b64(claims)>" (the signing input).
std::string signing_input(const boost::json::value& header, const boost::json::value& claims);
// A complete HS256 token over `header` and `claims` (serialized as given) keyed with `key`.
std::string sign_hs256(const boost::json::value& header, const boost::json::value& claims, std::string_view key);
// Same, with raw header/payload text (for duplicate keys or non-JSON parts).
std::string sign_hs256_raw(std::string_view header_json, std::string_view claims_json, std::string_view key);

// The header (part 0) or claims (part 1) of a token, parsed; throws if malformed.
boost::json::object decode_token_part(std::string_view token, int part);

// Seconds since the Unix epoch.
std::int64_t unix_now();

}  // namespace tenantd::test
