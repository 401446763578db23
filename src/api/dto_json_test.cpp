// The record -> JSON shapes of API.md (dto.hpp's to_json and to_json_text).
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "api/dto.hpp"

namespace tenantd::api {
namespace {

namespace json = boost::json;

TEST(dto, user_json_shape_has_no_secrets) {
  const user_record u{"0b5e2b1c-9d1f-4a6e-8c3b-2f1e0d9c8b7a",
                      "ada@example.com",
                      "Ada",
                      "Lovelace",
                      "2026-11-28T10:00:00Z",
                      "2026-11-28T11:00:00Z"};
  const auto o = to_json(u, "acme_corp");
  EXPECT_EQ(json::value(o), json::parse(R"({"id":"0b5e2b1c-9d1f-4a6e-8c3b-2f1e0d9c8b7a","email":"ada@example.com",
      "first_name":"Ada","last_name":"Lovelace","tenant_id":"acme_corp","created_at":"2026-11-28T10:00:00Z",
      "updated_at":"2026-11-28T11:00:00Z"})"));
}

// The serialised form the request path sends is the same text as the object's, in the same key
// order, also when the fields outgrow its stack arena and when they need escaping.
TEST(dto, user_json_text_is_the_objects_serialisation) {
  const user_record small{"0b5e2b1c-9d1f-4a6e-8c3b-2f1e0d9c8b7a",
                          "ada@example.com",
                          "Ada \"the Countess\"",
                          "Lovelace\u00e9\n",
                          "2026-11-28T10:00:00Z",
                          "2026-11-28T11:00:00Z"};
  EXPECT_EQ(to_json_text(small, "acme_corp"), json::serialize(to_json(small, "acme_corp")));
  user_record large = small;
  large.first_name.clear();
  for (int i = 0; i < 3000; ++i) large.first_name += "\u00e9x";
  large.last_name = std::string(5000, 'L');
  const auto text = to_json_text(large, "acme_corp");
  EXPECT_EQ(text, json::serialize(to_json(large, "acme_corp")));
  EXPECT_EQ(json::parse(text).as_object().at("last_name").as_string().size(), 5000U);
}

TEST(dto, tenant_json_shapes) {
  tenant_record t;
  t.id = "acme_corp";
  t.name = "Acme Corporation";
  t.status = tenant_status::active;
  t.registration = "invite";
  t.database_name = "tenant_acme_corp";
  t.created_at = "2026-11-28T10:00:00Z";
  t.updated_at = "2026-11-28T10:00:00Z";
  EXPECT_EQ(json::value(to_json(t)), json::parse(R"({"id":"acme_corp","name":"Acme Corporation","status":"active",
      "registration":"invite","created_at":"2026-11-28T10:00:00Z","updated_at":"2026-11-28T10:00:00Z"})"));
  EXPECT_EQ(json::value(to_public_json(t)), json::parse(R"({"id":"acme_corp","name":"Acme Corporation",
      "status":"active","created_at":"2026-11-28T10:00:00Z","updated_at":"2026-11-28T10:00:00Z"})"));
}

TEST(dto, tokens) {
  json::object out{{"user", "x"}};
  add_tokens(out, identity::token_bundle{"access.jwt.value", 3600, "refresh-value", "sid-1"});
  EXPECT_EQ(json::value(out), json::parse(R"({"user":"x","token":"access.jwt.value","token_type":"Bearer",
      "expires_in":3600,"refresh_token":"refresh-value"})"));
  EXPECT_EQ(json::value(to_json(std::vector<std::string>{"users:read", "tenant:read"})),
            json::parse(R"(["users:read","tenant:read"])"));
}

}  // namespace
}  // namespace tenantd::api
