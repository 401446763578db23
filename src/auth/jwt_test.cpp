// Tests for jwt_codec: a sign/verify round trip, and one crafted token per rejection reason
// (S01-S08). Tokens are built here with libsodium directly, so every byte is under control.
#include "auth/jwt.hpp"

#include <boost/json.hpp>
#include <gtest/gtest.h>
#include <sodium.h>

#include <limits>
#include <set>
#include <string>
#include <vector>

namespace tenantd::auth {
namespace {

namespace json = boost::json;

constexpr std::int64_t now = 1'800'000'000;
const std::string secret = "0123456789abcdef0123456789abcdef";

std::string b64url(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);
  return out;
}

std::string unb64url(std::string_view text) {
  std::string out(text.size(), '\0');
  std::size_t length = 0;
  EXPECT_EQ(sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(),
                              nullptr, &length, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
            0);
  out.resize(length);
  return out;
}

std::string hs256(std::string_view key, std::string_view data) {
  crypto_auth_hmacsha256_state state;
  std::string out(crypto_auth_hmacsha256_BYTES, '\0');
  crypto_auth_hmacsha256_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  crypto_auth_hmacsha256_final(&state, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string hs512(std::string_view key, std::string_view data) {
  crypto_auth_hmacsha512_state state;
  std::string out(crypto_auth_hmacsha512_BYTES, '\0');
  crypto_auth_hmacsha512_init(&state, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha512_update(&state, reinterpret_cast<const unsigned char*>(data.data()), data.size());
  crypto_auth_hmacsha512_final(&state, reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

const std::string standard_header = R"({"alg":"HS256","typ":"JWT","kid":"k1"})";

json::object standard_payload() {
  return json::object{
      {"iss", "tenantd"},    {"aud", "tenantd-api"}, {"sub", "123e4567-e89b-42d3-a456-426614174000"},
      {"tenant_id", "acme"}, {"role", "owner"},      {"permissions", json::array{"users:read", "users:write"}},
      {"sid", "5a1d"},       {"jti", "7c0e"},        {"iat", now},
      {"exp", now + 3600}};
}

// Serializes the payload with `name` set to the raw JSON text `raw` (e.g. "1e400").
std::string with_raw(json::object payload, std::string_view name, std::string_view raw) {
  payload[name] = "@raw@";
  std::string text = json::serialize(payload);
  const std::size_t at = text.find("\"@raw@\"");
  return text.replace(at, 7, raw);
}

std::string craft(std::string_view header, std::string_view payload, std::string_view key = secret) {
  std::string signing_input = b64url(header) + "." + b64url(payload);
  return signing_input + "." + b64url(hs256(key, signing_input));
}

std::string craft(std::string_view header, const json::object& payload) {
  return craft(header, json::serialize(payload));
}

class jwt_test : public testing::Test {
 protected:
  jwt_codec codec_{jwt_settings{secret, "k1"}};

  jwt_error reject(std::string_view token) const {
    const auto result = codec_.verify(token, now);
    EXPECT_FALSE(result) << token;
    return result.error;
  }
  bool accepts(std::string_view token) const { return static_cast<bool>(codec_.verify(token, now)); }
};

claims sample_claims() {
  claims c;
  c.iss = "tenantd";
  c.aud = "tenantd-api";
  c.sub = "123e4567-e89b-42d3-a456-426614174000";
  c.tenant_id = "acme";
  c.role = "owner";
  c.permissions = {"users:read", "users:write"};
  c.sid = "5a1d";
  c.jti = "7c0e";
  c.iat = now;
  c.exp = now + 3600;
  return c;
}

TEST_F(jwt_test, round_trip) {
  const claims c = sample_claims();
  const std::string token = codec_.sign(c);
  const auto result = codec_.verify(token, now);
  ASSERT_TRUE(result);
  const claims& v = *result.value;
  EXPECT_EQ(v.iss, c.iss);
  EXPECT_EQ(v.aud, c.aud);
  EXPECT_EQ(v.sub, c.sub);
  EXPECT_EQ(v.tenant_id, c.tenant_id);
  EXPECT_EQ(v.role, c.role);
  EXPECT_EQ(v.permissions, c.permissions);
  EXPECT_EQ(v.sid, c.sid);
  EXPECT_EQ(v.jti, c.jti);
  EXPECT_EQ(v.iat, c.iat);
  EXPECT_EQ(v.exp, c.exp);
  EXPECT_FALSE(v.nbf.has_value());
}

TEST_F(jwt_test, signed_tokens_have_the_documented_shape) {
  claims c = sample_claims();
  c.nbf = now - 5;
  c.permissions.clear();
  const std::string token = codec_.sign(c);
  const std::size_t first = token.find('.');
  const std::size_t second = token.find('.', first + 1);
  ASSERT_NE(second, std::string::npos);
  EXPECT_EQ(unb64url(token.substr(0, first)), standard_header);
  const json::value payload = json::parse(unb64url(token.substr(first + 1, second - first - 1)));
  EXPECT_EQ(payload.at("nbf").as_int64(), now - 5);
  EXPECT_TRUE(payload.at("permissions").as_array().empty());
  EXPECT_EQ(token.substr(second + 1), b64url(hs256(secret, token.substr(0, second))));
  const auto result = codec_.verify(token, now);
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value->nbf, now - 5);
}

TEST_F(jwt_test, crafted_standard_token_is_accepted) {
  EXPECT_TRUE(accepts(craft(standard_header, standard_payload())));
  EXPECT_TRUE(accepts(craft(R"({"alg":"HS256"})", standard_payload())));
}

TEST_F(jwt_test, key_longer_than_a_hash_block_works) {
  const std::string long_secret(100, 's');
  const jwt_codec codec{jwt_settings{long_secret, "k"}};
  const std::string signing_input = b64url(standard_header) + "." + b64url(json::serialize(standard_payload()));
  EXPECT_TRUE(codec.verify(signing_input + "." + b64url(hs256(long_secret, signing_input)), now));
  EXPECT_FALSE(codec.verify(craft(standard_header, standard_payload()), now));
  EXPECT_TRUE(codec.verify(codec.sign(sample_claims()), now));
}

// S01
TEST_F(jwt_test, alg_none_is_rejected) {
  const std::string payload = b64url(json::serialize(standard_payload()));
  for (const std::string alg : {"none", "None", "NONE", "nOnE"}) {
    const std::string header = b64url(R"({"alg":")" + alg + R"(","typ":"JWT"})");
    EXPECT_EQ(reject(header + "." + payload + "."), jwt_error::unsupported_alg) << alg;
    EXPECT_EQ(reject(header + "." + payload), jwt_error::malformed) << alg;
  }
}

// S02
TEST_F(jwt_test, only_hs256_is_accepted) {
  for (const std::string header :
       {R"({"alg":"HS384","typ":"JWT"})", R"({"alg":"HS512","typ":"JWT"})", R"({"alg":"RS256","typ":"JWT"})",
        R"({"alg":"ES256","typ":"JWT"})", R"({"alg":"hs256","typ":"JWT"})", R"({"alg":"HS256 ","typ":"JWT"})",
        R"({"typ":"JWT"})", R"({"alg":null})", R"({"alg":["HS256"]})", "{}"})
    EXPECT_EQ(reject(craft(header, standard_payload())), jwt_error::unsupported_alg) << header;
}

TEST_F(jwt_test, hs256_header_over_an_hs512_mac_is_a_bad_signature) {
  const std::string signing_input = b64url(standard_header) + "." + b64url(json::serialize(standard_payload()));
  EXPECT_EQ(reject(signing_input + "." + b64url(hs512(secret, signing_input))), jwt_error::bad_signature);
  const std::string truncated = hs512(secret, signing_input).substr(0, 32);
  EXPECT_EQ(reject(signing_input + "." + b64url(truncated)), jwt_error::bad_signature);
}

// S03
TEST_F(jwt_test, signature_mismatches_are_rejected) {
  EXPECT_EQ(reject(craft(standard_header, json::serialize(standard_payload()), "another-32-byte-key-another-32-b")),
            jwt_error::bad_signature);

  std::string flipped = craft(standard_header, standard_payload());
  // The last of 43 characters carries 4 bits; these letters keep the 2 spare bits zero.
  flipped.back() = flipped.back() == 'A' ? 'E' : 'A';
  EXPECT_EQ(reject(flipped), jwt_error::bad_signature);
  std::string spare_bits = craft(standard_header, standard_payload());
  spare_bits.back() = 'B';
  EXPECT_EQ(reject(spare_bits), jwt_error::malformed);

  const std::string original = craft(standard_header, standard_payload());
  json::object edited = standard_payload();
  edited["tenant_id"] = "victim";
  const std::string forged = craft(standard_header, edited);
  const std::string spliced = forged.substr(0, forged.rfind('.')) + original.substr(original.rfind('.'));
  EXPECT_EQ(reject(spliced), jwt_error::bad_signature);

  const std::string good = craft(standard_header, standard_payload());
  EXPECT_EQ(reject(good.substr(0, good.rfind('.') + 1) + std::string(43, 'A')), jwt_error::bad_signature);
  EXPECT_EQ(reject(good + "A"), jwt_error::bad_signature);
}

// S07
TEST_F(jwt_test, untrusted_header_parameters_are_ignored_but_crit_is_refused) {
  for (const std::string header :
       {R"({"alg":"HS256","typ":"JWT","kid":"../../etc/passwd"})", R"({"alg":"HS256","kid":"' OR 1=1--"})",
        R"({"alg":"HS256","jku":"http://127.0.0.1:9/k"})", R"({"alg":"HS256","x5u":"http://127.0.0.1:9/k"})",
        R"({"alg":"HS256","jwk":{"kty":"oct","k":"AAAA"}})", R"({"alg":"HS256","typ":"at+jwt"})",
        R"({"alg":"HS256","typ":"jwt"})"})
    EXPECT_TRUE(accepts(craft(header, standard_payload()))) << header;
  for (const std::string header :
       {R"({"alg":"HS256","crit":["x"]})", R"({"alg":"HS256","crit":[]})", R"({"alg":"HS256","typ":"JOSE"})",
        R"({"alg":"HS256","typ":"refresh+jwt"})", R"({"alg":"HS256","typ":1})"})
    EXPECT_EQ(reject(craft(header, standard_payload())), jwt_error::unsupported_header) << header;
}

// S08
TEST_F(jwt_test, malformed_tokens_are_rejected) {
  const std::string good = craft(standard_header, standard_payload());
  const std::size_t first = good.find('.');
  const std::size_t last = good.rfind('.');
  const std::string header = good.substr(0, first);
  const std::string payload = good.substr(first + 1, last - first - 1);
  const std::string signature = good.substr(last + 1);
  std::string plus = signature;
  plus[0] = '+';
  std::string slash = signature;
  slash[0] = '/';
  const std::vector<std::string> cases{
      "",
      ".",
      "..",
      header + "." + payload,
      header + "." + payload + "." + signature + "." + signature,
      header + "." + payload + "." + signature + ".",
      header + "." + payload + ".",
      "." + payload + "." + signature,
      header + ".." + signature,
      header + "." + payload + "." + signature + "=",
      header + "=." + payload + "." + signature,
      header + "." + payload + "=." + signature,
      header + "." + payload.substr(0, 5) + "+" + payload.substr(6) + "." + signature,
      header + "." + payload.substr(0, 5) + "/" + payload.substr(6) + "." + signature,
      header + "." + payload + "." + plus,
      header + "." + payload + "." + slash,
      header + "." + payload + ". " + signature,
      header + " ." + payload + "." + signature,
      " " + good,
      good + " ",
      good + "\n",
      "Bearer " + good,
      header.substr(0, header.size() - 1) + "." + payload + "." + signature,
  };
  for (const auto& token : cases) EXPECT_EQ(reject(token), jwt_error::malformed) << testing::PrintToString(token);
}

TEST_F(jwt_test, oversized_tokens_are_malformed) {
  json::object payload = standard_payload();
  payload["pad"] = std::string(16 * 1024, 'x');
  const std::string big = craft(standard_header, payload);
  EXPECT_GT(big.size(), 16U * 1024U);
  EXPECT_EQ(reject(big), jwt_error::malformed);
  jwt_settings roomy{secret, "k1"};
  roomy.max_token_length = 64 * 1024;
  EXPECT_TRUE(jwt_codec(roomy).verify(big, now));
}

TEST_F(jwt_test, segments_that_are_not_json_objects_are_malformed) {
  const std::string payload = json::serialize(standard_payload());
  EXPECT_EQ(reject(craft("not json", payload)), jwt_error::malformed);
  EXPECT_EQ(reject(craft(R"(["alg","HS256"])", payload)), jwt_error::malformed);
  EXPECT_EQ(reject(craft(R"({"alg":"HS256"} x)", payload)), jwt_error::malformed);
  EXPECT_EQ(reject(craft("\xef\xbb\xbf" + standard_header, payload)), jwt_error::malformed);
  EXPECT_EQ(reject(craft(standard_header, "[1,2]")), jwt_error::malformed);
  EXPECT_EQ(reject(craft(standard_header, "\"claims\"")), jwt_error::malformed);
  EXPECT_EQ(reject(craft(standard_header, payload.substr(0, payload.size() - 1))), jwt_error::malformed);
  EXPECT_EQ(reject(craft(standard_header, "{\"sub\":\"\xff\"}")), jwt_error::malformed);
}

TEST_F(jwt_test, duplicate_names_are_rejected) {
  const std::string payload = json::serialize(standard_payload());
  const std::string duplicated = payload.substr(0, payload.size() - 1) + R"(,"tenant_id":"victim"})";
  EXPECT_EQ(reject(craft(standard_header, duplicated)), jwt_error::duplicate_key);
  EXPECT_EQ(reject(craft(R"({"alg":"HS256","alg":"HS256"})", payload)), jwt_error::duplicate_key);
  EXPECT_EQ(reject(craft(R"({"alg":"none","alg":"HS256"})", payload)), jwt_error::duplicate_key);
}

// S05
TEST_F(jwt_test, every_required_claim_must_be_present) {
  for (const char* name : {"iss", "aud", "sub", "tenant_id", "role", "permissions", "sid", "jti", "iat", "exp"}) {
    json::object payload = standard_payload();
    payload.erase(name);
    EXPECT_EQ(reject(craft(standard_header, payload)), jwt_error::missing_claim) << name;
  }
}

// S04, S05
TEST_F(jwt_test, claims_must_have_their_types) {
  struct raw_claim {
    std::string name;
    std::string raw;
  };
  const std::vector<raw_claim> cases{
      {"exp", R"("1800003600")"},
      {"exp", "1800003600.5"},
      {"exp", "1.8000036e9"},
      {"exp", "1e400"},
      {"exp", "-1e400"},
      {"exp", "-1"},
      {"exp", "9007199254740993"},
      {"exp", "18446744073709551615"},
      {"exp", "true"},
      {"exp", "null"},
      {"iat", R"("now")"},
      {"iat", "-5"},
      {"nbf", R"("0")"},
      {"nbf", "1.5"},
      {"sub", "42"},
      {"sub", R"("")"},
      {"sub", "null"},
      {"tenant_id", "null"},
      {"tenant_id", R"("")"},
      {"tenant_id", R"(["acme"])"},
      {"role", "{}"},
      {"sid", "1"},
      {"jti", "false"},
      {"iss", "1"},
      {"aud", "1"},
      {"aud", "[]"},
      {"aud", R"(["tenantd-api",1])"},
      {"permissions", R"("users:read")"},
      {"permissions", "null"},
      {"permissions", R"(["users:read",1])"},
      {"permissions", R"({"users:read":true})"},
      {"tenant_id", R"("acme\u0000evil")"},
  };
  for (const auto& c : cases)
    EXPECT_EQ(reject(craft(standard_header, with_raw(standard_payload(), c.name, c.raw))), jwt_error::bad_claim_type)
        << c.name << "=" << c.raw;
}

TEST_F(jwt_test, largest_safe_integer_is_a_valid_time) {
  EXPECT_TRUE(accepts(craft(standard_header, with_raw(standard_payload(), "exp", "9007199254740992"))));
  EXPECT_TRUE(accepts(craft(standard_header, with_raw(standard_payload(), "permissions", "[]"))));
}

// S04
TEST_F(jwt_test, expiry_honours_the_leeway) {
  json::object payload = standard_payload();
  payload["iat"] = now - 7200;
  payload["exp"] = now - 61;
  EXPECT_EQ(reject(craft(standard_header, payload)), jwt_error::expired);
  payload["exp"] = now - 60;
  EXPECT_TRUE(accepts(craft(standard_header, payload)));
  payload["exp"] = now - 30;
  EXPECT_TRUE(accepts(craft(standard_header, payload)));
  payload["exp"] = 0;
  EXPECT_EQ(reject(craft(standard_header, payload)), jwt_error::expired);
}

TEST_F(jwt_test, tokens_from_the_future_are_not_yet_valid) {
  json::object payload = standard_payload();
  payload["nbf"] = now + 300;
  EXPECT_EQ(reject(craft(standard_header, payload)), jwt_error::not_yet_valid);
  payload["nbf"] = now + 60;
  EXPECT_TRUE(accepts(craft(standard_header, payload)));
  payload["nbf"] = now + 61;
  EXPECT_EQ(reject(craft(standard_header, payload)), jwt_error::not_yet_valid);

  json::object issued_later = standard_payload();
  issued_later["iat"] = now + 300;
  issued_later["exp"] = now + 3900;
  EXPECT_EQ(reject(craft(standard_header, issued_later)), jwt_error::not_yet_valid);
  issued_later["iat"] = now + 60;
  EXPECT_TRUE(accepts(craft(standard_header, issued_later)));
}

TEST_F(jwt_test, extreme_clock_values_do_not_overflow) {
  const std::string token = craft(standard_header, standard_payload());
  EXPECT_EQ(codec_.verify(token, std::numeric_limits<std::int64_t>::max()).error, jwt_error::expired);
  EXPECT_EQ(codec_.verify(token, std::numeric_limits<std::int64_t>::min()).error, jwt_error::not_yet_valid);
}

// S06
TEST_F(jwt_test, issuer_and_audience_must_match) {
  json::object payload = standard_payload();
  payload["iss"] = "other-service";
  EXPECT_EQ(reject(craft(standard_header, payload)), jwt_error::wrong_issuer);
  payload = standard_payload();
  payload["aud"] = "other-api";
  EXPECT_EQ(reject(craft(standard_header, payload)), jwt_error::wrong_audience);
  payload["aud"] = json::array{"other-api", "billing"};
  EXPECT_EQ(reject(craft(standard_header, payload)), jwt_error::wrong_audience);
  payload["aud"] = json::array{"other-api", "tenantd-api"};
  const auto result = codec_.verify(craft(standard_header, payload), now);
  ASSERT_TRUE(result);
  EXPECT_EQ(result.value->aud, "tenantd-api");
}

TEST_F(jwt_test, payload_is_read_only_after_the_signature) {
  const std::string token = craft(standard_header, "{\"sub\":", "another-32-byte-key-another-32-b");
  EXPECT_EQ(reject(token), jwt_error::bad_signature);
}

TEST(jwt, bad_settings_are_refused) {
  EXPECT_THROW(jwt_codec(jwt_settings{std::string(31, 'x'), "k"}), std::invalid_argument);
  EXPECT_NO_THROW(jwt_codec(jwt_settings{std::string(32, 'x'), "k"}));
  jwt_settings negative_leeway{secret, "k"};
  negative_leeway.leeway_seconds = -1;
  EXPECT_THROW(jwt_codec{negative_leeway}, std::invalid_argument);
}

TEST(jwt, derive_key_id_is_a_sha256_prefix) {
  EXPECT_EQ(derive_key_id("abc"), "ba7816bf");
  EXPECT_EQ(derive_key_id(secret), derive_key_id(secret));
  EXPECT_NE(derive_key_id(secret), derive_key_id(secret + "x"));
  const jwt_codec codec{jwt_settings{secret, ""}};
  EXPECT_EQ(codec.settings().key_id, derive_key_id(secret));
}

TEST(jwt, error_names_are_distinct) {
  std::set<std::string_view> names;
  for (const auto e :
       {jwt_error::malformed, jwt_error::duplicate_key, jwt_error::unsupported_alg, jwt_error::unsupported_header,
        jwt_error::bad_signature, jwt_error::missing_claim, jwt_error::bad_claim_type, jwt_error::wrong_issuer,
        jwt_error::wrong_audience, jwt_error::expired, jwt_error::not_yet_valid})
    names.insert(to_string(e));
  EXPECT_EQ(names.size(), 11U);
  EXPECT_EQ(to_string(jwt_error::bad_signature), "bad_signature");
}

}  // namespace
}  // namespace tenantd::auth
