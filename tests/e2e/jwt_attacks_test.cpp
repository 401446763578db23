// Forged and malformed tokens (S01-S08): every one is 401 with WWW-Authenticate: Bearer and
// code "unauthorized"; a re-signed copy of a real token is the positive control.
#include "support/e2e_fixture.hpp"

namespace tenantd::test {
namespace {

namespace json = boost::json;

class jwt_attacks : public e2e_test {
 protected:
  void SetUp() override {
    e2e_test::SetUp();
    if (HasFatalFailure()) return;
    owner_ = tenant_with_owner("jwt_co");
    header_ = decode_token_part(owner_.token, 0);
    claims_ = decode_token_part(owner_.token, 1);
  }

  // GET /api/users with `authorization` as the whole Authorization header value.
  http_response call(const std::string& authorization) const {
    return client().get("/api/users", {{"Authorization", authorization}});
  }

  void expect_rejected(const std::string& token, std::string_view label) const {
    expect_rejected_header("Bearer " + token, label);
  }

  void expect_rejected_header(const std::string& authorization, std::string_view label) const {
    const auto r = call(authorization);
    EXPECT_EQ(r.status, 401u) << label << ":\n" << r.describe();
    EXPECT_TRUE(r.header_or_empty("www-authenticate").starts_with("Bearer")) << label << ":\n" << r.describe();
    expect_problem(r, 401, "unauthorized");
  }

  std::string resign(const json::object& header, const json::object& claims) const {
    return sign_hs256(header, claims, server().jwt_secret());
  }

  json::object claims_with(std::string_view key, json::value value) const {
    json::object c = claims_;
    c[key] = std::move(value);
    return c;
  }

  json::object header_with(std::string_view key, json::value value) const {
    json::object h = header_;
    h[key] = std::move(value);
    return h;
  }

  static std::string part(const std::string& token, int index) {
    std::size_t start = 0;
    for (int i = 0; i < index; ++i) start = token.find('.', start) + 1;
    const auto end = token.find('.', start);
    return token.substr(start, end == std::string::npos ? std::string::npos : end - start);
  }

  session owner_;
  json::object header_;
  json::object claims_;
};

TEST_F(jwt_attacks, resigned_copy_of_a_real_token_is_accepted) {
  // Positive control: our forging reproduces a valid token, so the rejections below mean something.
  const auto r = call("Bearer " + resign(header_, claims_));
  EXPECT_EQ(r.status, 200u) << r.describe();
  EXPECT_EQ(call("bearer " + owner_.token).status, 200u) << "the scheme is case-insensitive";
  EXPECT_EQ(call("BEARER " + owner_.token).status, 200u) << "the scheme is case-insensitive";
}

TEST_F(jwt_attacks, s01_alg_none_is_rejected) {
  for (const char* alg : {"none", "None", "NONE", "nOnE"}) {
    const json::object h{{"alg", alg}, {"typ", "JWT"}};
    const std::string unsigned_token = signing_input(h, claims_);
    expect_rejected(unsigned_token + ".", std::string("alg ") + alg + " with trailing dot");
    expect_rejected(unsigned_token, std::string("alg ") + alg + " without signature part");
    expect_rejected(unsigned_token + "." + part(owner_.token, 2), std::string("alg ") + alg + " with a real signature");
    expect_rejected(sign_hs256(h, claims_, server().jwt_secret()), std::string("alg ") + alg + " HMAC-signed");
  }
}

TEST_F(jwt_attacks, s02_only_hs256_is_accepted) {
  const std::string& key = server().jwt_secret();
  for (const char* alg : {"HS384", "HS512", "RS256", "ES256", "PS256", "hs256", "HS256 ", ""}) {
    expect_rejected(sign_hs256(header_with("alg", alg), claims_, key), std::string("alg [") + alg + "] HS256-signed");
  }
  json::object no_alg = header_;
  no_alg.erase("alg");
  expect_rejected(sign_hs256(no_alg, claims_, key), "header without alg");
  expect_rejected(sign_hs256(header_with("alg", json::array{"HS256"}), claims_, key), "alg as an array");

  const std::string input = signing_input(header_with("alg", "HS512"), claims_);
  expect_rejected(input + "." + base64url_encode(hmac_sha512(key, input)), "HS512 header with an HS512 MAC");
  const std::string input256 = signing_input(header_, claims_);
  expect_rejected(input256 + "." + base64url_encode(hmac_sha512(key, input256)), "HS256 header over an HS512 MAC");
  expect_rejected(input256 + "." + base64url_encode(hmac_sha512(key, input256).substr(0, 32)),
                  "HS256 header over a truncated HS512 MAC");
}

TEST_F(jwt_attacks, s03_signature_must_match) {
  expect_rejected(sign_hs256(header_, claims_, random_token(48)), "another 48-character key");
  expect_rejected(sign_hs256(header_, claims_, server().jwt_secret() + "x"), "the key plus one byte");
  expect_rejected(sign_hs256(header_, claims_, ""), "an empty key");

  std::string flipped = owner_.token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  expect_rejected(flipped, "last signature character flipped");
  std::string first_flipped = owner_.token;
  const auto sig_start = first_flipped.rfind('.') + 1;
  first_flipped[sig_start] = first_flipped[sig_start] == 'A' ? 'B' : 'A';
  expect_rejected(first_flipped, "first signature character flipped");

  // Claims edited, old signature kept.
  const std::string sig = part(owner_.token, 2);
  expect_rejected(signing_input(header_, claims_with("tenant_id", "other_co")) + "." + sig, "tenant_id edited");
  expect_rejected(signing_input(header_, claims_with("role", "admin")) + "." + sig, "role edited");
  expect_rejected(part(owner_.token, 0) + "." + part(owner_.token, 1) + ".", "signature removed");
}

TEST_F(jwt_attacks, s04_time_claims_are_enforced) {
  const auto now = unix_now();
  expect_rejected(resign(header_, claims_with("exp", now - 120)), "expired two minutes ago (beyond 60 s leeway)");
  expect_rejected(resign(header_, claims_with("exp", now - 86400)), "expired a day ago");
  expect_rejected(resign(header_, claims_with("exp", json::value_from(std::to_string(now + 3600)))), "exp as a string");
  expect_rejected(resign(header_, claims_with("exp", -1)), "negative exp");
  expect_rejected(resign(header_, claims_with("exp", json::array{now + 3600})), "exp as an array");
  expect_rejected(resign(header_, claims_with("nbf", now + 300)), "nbf five minutes ahead");
  expect_rejected(resign(header_, claims_with("iat", "yesterday")), "iat as a string");

  // exp too large for any integer type, as raw JSON text.
  json::object no_exp = claims_;
  no_exp.erase("exp");
  std::string raw = json::serialize(no_exp);
  raw.insert(raw.size() - 1, ",\"exp\":1e400");
  expect_rejected(sign_hs256_raw(json::serialize(header_), raw, server().jwt_secret()), "exp 1e400");
  std::string huge = json::serialize(no_exp);
  huge.insert(huge.size() - 1, ",\"exp\":99999999999999999999999999");
  // Past 2^53 a NumericDate is not an exact integer: refused as a badly typed claim.
  expect_rejected(sign_hs256_raw(json::serialize(header_), huge, server().jwt_secret()), "exp past 2^53");

  // An nbf in the past is fine (and shows the nbf claim itself is understood).
  EXPECT_EQ(call("Bearer " + resign(header_, claims_with("nbf", now - 10))).status, 200u);
}

TEST_F(jwt_attacks, s05_every_required_claim_must_be_present_and_well_typed) {
  for (const char* claim : {"iss", "aud", "sub", "tenant_id", "role", "permissions", "sid", "iat", "exp", "jti"}) {
    json::object c = claims_;
    ASSERT_TRUE(c.contains(claim)) << "the server's token lacks " << claim;
    c.erase(claim);
    expect_rejected(resign(header_, c), std::string("missing ") + claim);
    expect_rejected(resign(header_, claims_with(claim, nullptr)), std::string("null ") + claim);
  }
  expect_rejected(resign(header_, claims_with("permissions", "users:read users:write")), "permissions as a string");
  expect_rejected(resign(header_, claims_with("tenant_id", 1)), "tenant_id as a number");
  expect_rejected(resign(header_, claims_with("tenant_id", "")), "empty tenant_id");
  expect_rejected(resign(header_, claims_with("tenant_id", "no_such_tenant")), "unknown tenant");
  expect_rejected(resign(header_, claims_with("sub", "3f1c2a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f")), "unknown user");
  expect_rejected(resign(header_, claims_with("sub", "not-a-uuid")), "sub not a uuid");
  expect_rejected(resign(header_, claims_with("sid", "3f1c2a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f")), "unknown session");
  expect_rejected(resign(header_, claims_with("sub", 42)), "sub as a number");
}

TEST_F(jwt_attacks, s05_a_validly_signed_token_for_another_tenant_is_not_a_membership) {
  const auto other = tenant_with_owner("other_co");
  // owner_ is not a member of other_co: even a correctly signed token naming it must fail.
  json::object c = claims_with("tenant_id", "other_co");
  expect_rejected(resign(header_, c), "owner of jwt_co claiming other_co");
  EXPECT_EQ(get("/api/users", other.token).status, 200u);
}

TEST_F(jwt_attacks, s05_claims_cannot_raise_privileges_beyond_the_membership) {
  const auto member = add_member(owner_, "member@jwt.example");
  json::object c = decode_token_part(member.token, 1);
  c["role"] = "owner";
  c["permissions"] =
      json::array{"users:read", "users:write", "users:delete", "members:manage", "tenant:read", "tenant:manage"};
  const std::string forged = resign(decode_token_part(member.token, 0), c);
  const auto r = client().send_json("PUT", "/api/tenant", json::object{{"name", "Escalated"}}, bearer(forged));
  EXPECT_TRUE(r.status == 401 || r.status == 403) << r.describe();
  EXPECT_EQ(json_string(get("/api/tenant", owner_.token).json(), "name"), "Tenant jwt_co");
}

TEST_F(jwt_attacks, s06_issuer_and_audience_must_match) {
  expect_rejected(resign(header_, claims_with("iss", "someone-else")), "wrong iss");
  expect_rejected(resign(header_, claims_with("iss", "Tenantd")), "iss differing in case");
  expect_rejected(resign(header_, claims_with("aud", "other-api")), "wrong aud");
  expect_rejected(resign(header_, claims_with("aud", json::array{"other-api"})), "aud array without tenantd-api");
  expect_rejected(resign(header_, claims_with("aud", "")), "empty aud");
}

TEST_F(jwt_attacks, s07_untrusted_header_parameters_never_crash) {
  // kid, jku and x5u never pick a key (docs/api.md): a token signed with the server's key is
  // accepted whatever they say, and nothing is looked up or fetched because of them.
  for (const json::value& kid : {json::value("../../etc/passwd"), json::value("' OR 1=1--"), json::value(7)}) {
    const auto r = call("Bearer " + resign(header_with("kid", kid), claims_));
    EXPECT_EQ(r.status, 200u) << r.describe();
  }
  expect_rejected(resign(header_with("crit", json::array{"x-unknown"}), claims_), "crit naming an unknown extension");
  for (const char* key : {"jku", "x5u"}) {
    const auto r = call("Bearer " + resign(header_with(key, "http://127.0.0.1:9/k"), claims_));
    EXPECT_EQ(r.status, 200u) << key << ":\n" << r.describe();
  }
}

TEST_F(jwt_attacks, s08_malformed_tokens_and_transports) {
  const std::string& t = owner_.token;
  expect_rejected(part(t, 0) + "." + part(t, 1), "two segments");
  expect_rejected(t + ".AAAA", "four segments");
  expect_rejected(t + "=", "padding after the signature");
  expect_rejected(part(t, 0) + "=." + part(t, 1) + "." + part(t, 2), "padding in the header");
  expect_rejected("..", "three empty segments");
  expect_rejected("", "empty token");
  expect_rejected("not-a-token", "one segment");
  expect_rejected(base64url_encode("not json") + "." + part(t, 1) + "." + part(t, 2), "header not JSON");
  expect_rejected(sign_hs256_raw("not json", json::serialize(claims_), server().jwt_secret()),
                  "signed, header not JSON");
  expect_rejected(sign_hs256_raw(json::serialize(header_), "[1,2,3]", server().jwt_secret()), "claims an array");
  {
    std::string dup = json::serialize(claims_);
    dup.insert(dup.size() - 1, ",\"tenant_id\":\"other_co\"");
    expect_rejected(sign_hs256_raw(json::serialize(header_), dup, server().jwt_secret()), "duplicate tenant_id claim");
  }
  {
    std::string plus = t;
    for (auto& ch : plus) {
      if (ch == '-') ch = '+';
      if (ch == '_') ch = '/';
    }
    if (plus != t) expect_rejected(plus, "standard base64 alphabet");
  }
  expect_rejected(std::string(t).insert(t.size() / 2, " "), "space inside the token");
  {
    const auto big = call("Bearer " + std::string(7000, 'a') + "." + std::string(100, 'b') + ".c");
    EXPECT_TRUE(big.status == 401 || big.status == 431) << big.describe();
  }
  expect_rejected_header("Bearer", "scheme without a token");
  expect_rejected_header("Bearer  ", "scheme and spaces");
  expect_rejected_header("Basic " + base64url_encode("owner:" + std::string(default_password)), "Basic credentials");
  expect_rejected_header("Token " + t, "unknown scheme");
  expect_rejected_header(t, "token without a scheme");
  expect_rejected_header("", "empty Authorization header");

  const auto in_query = client().get("/api/users?access_token=" + t);
  expect_problem(in_query, 401, "unauthorized");
  const auto in_query2 = client().get("/api/users?token=" + t);
  expect_problem(in_query2, 401, "unauthorized");

  const auto two = client().get("/api/users", {{"Authorization", "Bearer " + t}, {"Authorization", "Bearer " + t}});
  EXPECT_EQ(two.status, 401u) << "two Authorization headers:\n" << two.describe();
  const auto mixed = client().get("/api/users", {{"Authorization", "Bearer " + t}, {"Authorization", "Bearer x.y.z"}});
  EXPECT_EQ(mixed.status, 401u) << "two Authorization headers:\n" << mixed.describe();
}

TEST_F(jwt_attacks, missing_token_is_401_with_challenge) {
  for (const char* target :
       {"/api/me", "/api/users", "/api/tenant", "/api/users/3f1c2a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f"}) {
    const auto r = client().get(target);
    expect_problem(r, 401, "unauthorized");
    EXPECT_TRUE(r.header_or_empty("www-authenticate").starts_with("Bearer")) << target << ":\n" << r.describe();
  }
}

}  // namespace
}  // namespace tenantd::test
