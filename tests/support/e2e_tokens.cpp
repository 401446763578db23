// JWT forging and decoding for tests, on libsodium (sodium_bin2base64 / HMAC) and Boost.JSON.
#include "support/e2e_tokens.hpp"

#include <boost/json.hpp>
#include <sodium.h>

#include <chrono>
#include <stdexcept>
#include <vector>

namespace tenantd::test {
namespace {

void ensure_sodium() {
  if (sodium_init() < 0) throw std::runtime_error("sodium_init failed");
}

const unsigned char* bytes_of(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

std::string base64url_encode(std::string_view bytes) {
  ensure_sodium();
  constexpr int variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  std::string out(sodium_base64_encoded_len(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), bytes_of(bytes), bytes.size(), variant);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

std::string base64url_decode(std::string_view text) {
  ensure_sodium();
  std::string out(text.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &len, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    throw std::invalid_argument("not base64url: " + std::string(text));
  out.resize(len);
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  ensure_sodium();
  crypto_auth_hmacsha256_state st;
  std::string mac(crypto_auth_hmacsha256_BYTES, '\0');
  crypto_auth_hmacsha256_init(&st, bytes_of(key), key.size());
  crypto_auth_hmacsha256_update(&st, bytes_of(message), message.size());
  crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char*>(mac.data()));
  return mac;
}

std::string hmac_sha512(std::string_view key, std::string_view message) {
  ensure_sodium();
  crypto_auth_hmacsha512_state st;
  std::string mac(crypto_auth_hmacsha512_BYTES, '\0');
  crypto_auth_hmacsha512_init(&st, bytes_of(key), key.size());
  crypto_auth_hmacsha512_update(&st, bytes_of(message), message.size());
  crypto_auth_hmacsha512_final(&st, reinterpret_cast<unsigned char*>(mac.data()));
  return mac;
}

std::string signing_input(const boost::json::value& header, const boost::json::value& claims) {
  return base64url_encode(boost::json::serialize(header)) + "." + base64url_encode(boost::json::serialize(claims));
}

std::string sign_hs256(const boost::json::value& header, const boost::json::value& claims, std::string_view key) {
  return sign_hs256_raw(boost::json::serialize(header), boost::json::serialize(claims), key);
}

std::string sign_hs256_raw(std::string_view header_json, std::string_view claims_json, std::string_view key) {
  const std::string input = base64url_encode(header_json) + "." + base64url_encode(claims_json);
  return input + "." + base64url_encode(hmac_sha256(key, input));
}

boost::json::object decode_token_part(std::string_view token, int part) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  for (;;) {
    const auto dot = token.find('.', start);
    parts.push_back(token.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (parts.size() != 3) throw std::invalid_argument("token does not have three parts");
  const auto value = boost::json::parse(base64url_decode(parts.at(static_cast<std::size_t>(part))));
  return value.as_object();
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace tenantd::test
