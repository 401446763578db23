// POST /auth/login: response shape, token header and claims, accounts in several tenants,
// indistinguishable failures, validation, and JWT_EXPIRATION.
#include "support/e2e_fixture.hpp"

#include <algorithm>
#include <set>

namespace tenantd::test {
namespace {

using auth_login = e2e_test;
namespace json = boost::json;

std::set<std::string> strings_of(const json::value& v) {
  std::set<std::string> out;
  if (!v.is_array()) return out;
  for (const auto& e : v.as_array())
    if (e.is_string()) out.insert(std::string(e.as_string()));
  return out;
}

const std::set<std::string> owner_permissions = {"users:read",     "users:write", "users:delete",
                                                 "members:manage", "tenant:read", "tenant:manage"};

TEST_F(auth_login, single_tenant_login_returns_the_documented_shape) {
  (void)create_tenant("acme_corp", "Acme");
  const auto reg = register_user("acme_corp", "owner@acme.example");
  const auto r = login_response("Owner@Acme.example", default_password);
  ASSERT_EQ(r.status, 200u) << r.describe();
  const auto v = r.json();
  EXPECT_EQ(json_string(v, "token_type"), "Bearer");
  EXPECT_FALSE(json_string(v, "refresh_token").empty());
  EXPECT_EQ(json_string(v, "tenant_id"), "acme_corp");
  EXPECT_EQ(json_string(v, "role"), "owner");
  EXPECT_EQ(strings_of(json_field(v, "permissions")), owner_permissions) << r.body;
  const auto user = json_field(v, "user");
  EXPECT_EQ(json_string(user, "id"), json_string(reg, "id"));
  EXPECT_EQ(json_string(user, "email"), "owner@acme.example");
  EXPECT_EQ(json_string(user, "first_name"), "Ann");
  EXPECT_EQ(json_string(user, "last_name"), "Lee");
  EXPECT_EQ(r.body.find(default_password), std::string::npos);
  EXPECT_EQ(r.body.find("argon2"), std::string::npos);

  const std::string token = json_string(v, "token");
  const auto header = decode_token_part(token, 0);
  EXPECT_EQ(json::value(header.at("alg")), json::value("HS256"));
  EXPECT_EQ(json::value(header.at("typ")), json::value("JWT"));
  ASSERT_TRUE(header.contains("kid") && header.at("kid").is_string() && !header.at("kid").as_string().empty())
      << json::serialize(header);

  const auto claims = decode_token_part(token, 1);
  EXPECT_EQ(json::value(claims.at("iss")), json::value("tenantd"));
  const auto& aud = claims.at("aud");
  EXPECT_TRUE(aud == json::value("tenantd-api") ||
              (aud.is_array() && std::count(aud.as_array().begin(), aud.as_array().end(), json::value("tenantd-api"))))
      << json::serialize(claims);
  EXPECT_EQ(json::value(claims.at("sub")), json::value(json_string(reg, "id")));
  EXPECT_EQ(json::value(claims.at("tenant_id")), json::value("acme_corp"));
  EXPECT_EQ(json::value(claims.at("role")), json::value("owner"));
  EXPECT_EQ(strings_of(claims.at("permissions")), owner_permissions);
  for (const char* key : {"sid", "jti"}) {
    ASSERT_TRUE(claims.contains(key) && claims.at(key).is_string() && !claims.at(key).as_string().empty())
        << key << " in " << json::serialize(claims);
  }
  ASSERT_TRUE(claims.at("iat").is_int64() && claims.at("exp").is_int64()) << json::serialize(claims);
  const auto iat = claims.at("iat").as_int64();
  const auto exp = claims.at("exp").as_int64();
  EXPECT_NEAR(static_cast<double>(iat), static_cast<double>(unix_now()), 120.0);
  ASSERT_TRUE(json_field(v, "expires_in").is_int64()) << r.body;
  EXPECT_EQ(json_field(v, "expires_in").as_int64(), exp - iat);
  EXPECT_EQ(exp - iat, 3600) << "JWT_EXPIRATION defaults to 3600";

  const auto me = get("/api/me", token);
  ASSERT_EQ(me.status, 200u) << me.describe();
}

TEST_F(auth_login, each_login_is_a_new_session_and_token) {
  (void)tenant_with_owner("sess_co");
  const auto a = login(owner_email("sess_co"));
  const auto b = login(owner_email("sess_co"));
  const auto ca = decode_token_part(a.token, 1);
  const auto cb = decode_token_part(b.token, 1);
  EXPECT_NE(ca.at("jti"), cb.at("jti"));
  EXPECT_NE(ca.at("sid"), cb.at("sid"));
  EXPECT_NE(a.refresh_token, b.refresh_token);
}

TEST_F(auth_login, account_in_several_tenants_must_name_one) {
  (void)create_tenant("north", "North");
  (void)create_tenant("south", "South");
  const auto reg = register_user("north", "pat@two.example");
  (void)register_user("south", "pat@two.example");

  const auto ambiguous = login_response("pat@two.example", default_password);
  expect_problem(ambiguous, 400, "tenant_required");
  EXPECT_EQ(strings_of(json_field(ambiguous.json(), "tenants")), (std::set<std::string>{"north", "south"}))
      << ambiguous.body;

  // The tenant list is only shown after the password is verified.
  const auto wrong = login_response("pat@two.example", "wrong-password-1");
  expect_problem(wrong, 401, "invalid_credentials");
  EXPECT_EQ(wrong.body.find("north"), std::string::npos) << wrong.body;

  const auto south = login("pat@two.example", default_password, "south");
  EXPECT_EQ(south.tenant_id, "south");
  EXPECT_EQ(south.user_id, json_string(reg, "id"));
  EXPECT_EQ(json::value(decode_token_part(south.token, 1).at("tenant_id")), json::value("south"));

  (void)create_tenant("west", "West");
  const auto not_member = login_response("pat@two.example", default_password, "west");
  // Not a member and no such tenant answer like a wrong password: nothing is told.
  expect_problem(not_member, 401, "invalid_credentials");
  expect_problem(login_response("pat@two.example", default_password, "nowhere"), 401, "invalid_credentials");
}

TEST_F(auth_login, unknown_email_and_wrong_password_look_the_same) {
  (void)tenant_with_owner("enum_co", "known@enum.example");
  const auto unknown = login_response("nobody@enum.example", "whatever-password");
  const auto wrong = login_response("known@enum.example", "whatever-password");
  expect_problem(unknown, 401, "invalid_credentials");
  expect_problem(wrong, 401, "invalid_credentials");
  auto strip = [](const http_response& r) {
    auto v = r.json();
    if (v.is_object()) v.as_object().erase("request_id");
    return json::serialize(v);
  };
  EXPECT_EQ(strip(unknown), strip(wrong));
  EXPECT_EQ(unknown.header_or_empty("content-type"), wrong.header_or_empty("content-type"));
  EXPECT_EQ(unknown.header("www-authenticate").has_value(), wrong.header("www-authenticate").has_value());
  EXPECT_EQ(unknown.header("retry-after").has_value(), wrong.header("retry-after").has_value());

  // An account whose only entry is a directory user (no password) cannot log in.
  const auto owner = login("known@enum.example");
  ASSERT_EQ(post("/api/users", json::object{{"email", "dir@enum.example"}, {"first_name", "D"}, {"last_name", "E"}},
                 owner.token)
                .status,
            201u);
  // An empty password is a well-formed (wrong) password: the same answer as any other.
  expect_problem(login_response("dir@enum.example", ""), 401, "invalid_credentials");
  expect_problem(login_response("dir@enum.example", "whatever-password"), 401, "invalid_credentials");
}

TEST_F(auth_login, malformed_requests_are_400) {
  (void)tenant_with_owner("val_co");
  EXPECT_EQ(post("/auth/login", json::object{{"email", owner_email("val_co")}}).status, 400u);
  EXPECT_EQ(post("/auth/login", json::object{{"password", default_password}}).status, 400u);
  EXPECT_EQ(post("/auth/login", json::object{{"email", 5}, {"password", default_password}}).status, 400u);
  EXPECT_EQ(post("/auth/login", json::object{{"email", owner_email("val_co")}, {"password", true}}).status, 400u);
  EXPECT_EQ(post("/auth/login", json::array{owner_email("val_co"), default_password}).status, 400u);
  EXPECT_EQ(post("/auth/login",
                 json::object{{"email", owner_email("val_co")}, {"password", default_password}, {"tenant_id", 7}})
                .status,
            400u);
}

class auth_login_short_expiry : public e2e_test {
 protected:
  env_overrides server_env() const override { return {{"JWT_EXPIRATION", "120"}}; }
};

TEST_F(auth_login_short_expiry, expires_in_follows_jwt_expiration) {
  (void)create_tenant("exp_co", "Exp");
  (void)register_user("exp_co", "e@exp.example");
  const auto r = login_response("e@exp.example", default_password);
  ASSERT_EQ(r.status, 200u) << r.describe();
  EXPECT_EQ(json_field(r.json(), "expires_in"), json::value(120));
  const auto claims = decode_token_part(json_string(r.json(), "token"), 1);
  EXPECT_EQ(claims.at("exp").as_int64() - claims.at("iat").as_int64(), 120);
}

}  // namespace
}  // namespace tenantd::test
