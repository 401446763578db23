// Tests for the errc -> HTTP status mapping and the problem+json body (RFC 9457) with the
// headers API.md requires on 401, 429 and 503.
#include "api/problem.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

namespace tenantd::api {
namespace {

namespace json = boost::json;

struct status_case {
  errc code;
  unsigned status;
  std::string_view name;
};

// Every errc, with the status API.md implies and its stable code.
const std::vector<status_case> all_codes{
    {errc::invalid_input, 400, "invalid_input"},
    {errc::invalid_json, 400, "invalid_json"},
    {errc::invalid_id, 400, "invalid_id"},
    {errc::tenant_required, 400, "tenant_required"},
    {errc::unauthorized, 401, "unauthorized"},
    {errc::invalid_credentials, 401, "invalid_credentials"},
    {errc::invalid_refresh_token, 401, "invalid_refresh_token"},
    {errc::forbidden, 403, "forbidden"},
    {errc::tenant_suspended, 403, "tenant_suspended"},
    {errc::registration_closed, 403, "registration_closed"},
    {errc::signup_closed, 403, "signup_closed"},
    {errc::not_found, 404, "not_found"},
    {errc::tenant_not_found, 404, "tenant_not_found"},
    {errc::method_not_allowed, 405, "method_not_allowed"},
    {errc::tenant_exists, 409, "tenant_exists"},
    {errc::email_taken, 409, "email_taken"},
    {errc::already_member, 409, "already_member"},
    {errc::last_owner, 409, "last_owner"},
    {errc::server_exists, 409, "server_exists"},
    {errc::server_not_empty, 409, "server_not_empty"},
    {errc::server_unavailable, 409, "server_unavailable"},
    {errc::move_in_progress, 409, "move_in_progress"},
    {errc::move_unavailable, 409, "move_unavailable"},
    {errc::payload_too_large, 413, "payload_too_large"},
    {errc::unsupported_media_type, 415, "unsupported_media_type"},
    {errc::too_many_requests, 429, "too_many_requests"},
    {errc::too_many_attempts, 429, "too_many_attempts"},
    {errc::internal, 500, "internal"},
    {errc::unavailable, 503, "unavailable"},
    {errc::schema_too_new, 503, "schema_too_new"},
};

std::optional<std::string> header(const response& r, std::string_view name) {
  std::optional<std::string> found;
  for (const auto& [n, v] : r.headers) {
    if (n == name) {
      EXPECT_FALSE(found.has_value()) << "header " << name << " set twice";
      found = v;
    }
  }
  return found;
}

// The string member `key` of a problem body, or "<missing or not a string>".
std::string text(const json::object& body, std::string_view key) {
  const auto* v = body.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : "<missing or not a string>";
}

json::object body_of(const response& r) {
  const auto parsed = json::parse(r.body);
  EXPECT_TRUE(parsed.is_object()) << r.body;
  return parsed.is_object() ? parsed.as_object() : json::object{};
}

TEST(problem, every_code_is_listed_here) {
  // The table above covers the enum: the last enumerator's value + 1 entries, all distinct.
  EXPECT_EQ(all_codes.size(), static_cast<std::size_t>(errc::schema_too_new) + 1);
  std::set<errc> seen;
  std::set<std::string_view> names;
  for (const auto& c : all_codes) {
    EXPECT_TRUE(seen.insert(c.code).second);
    EXPECT_TRUE(names.insert(c.name).second);
  }
}

TEST(problem, http_status_and_code_for_every_errc) {
  for (const auto& c : all_codes) {
    EXPECT_EQ(http_status(c.code), c.status) << c.name;
    EXPECT_EQ(to_string(c.code), c.name);
  }
}

TEST(problem, status_titles) {
  EXPECT_EQ(status_title(400), "Bad Request");
  EXPECT_EQ(status_title(401), "Unauthorized");
  EXPECT_EQ(status_title(403), "Forbidden");
  EXPECT_EQ(status_title(404), "Not Found");
  EXPECT_EQ(status_title(405), "Method Not Allowed");
  EXPECT_EQ(status_title(409), "Conflict");
  EXPECT_EQ(status_title(413), "Content Too Large");
  EXPECT_EQ(status_title(415), "Unsupported Media Type");
  EXPECT_EQ(status_title(429), "Too Many Requests");
  EXPECT_EQ(status_title(431), "Request Header Fields Too Large");
  EXPECT_EQ(status_title(500), "Internal Server Error");
  EXPECT_EQ(status_title(503), "Service Unavailable");
  for (const auto& c : all_codes) EXPECT_NE(status_title(c.status), "Error") << c.status;
}

TEST(problem, body_has_the_standard_members_for_every_code) {
  for (const auto& c : all_codes) {
    SCOPED_TRACE(std::string(c.name));
    const auto r = problem(make_error(c.code, "some detail"), "req-1");
    EXPECT_EQ(r.status, c.status);
    EXPECT_EQ(r.content_type, "application/problem+json");
    const auto body = body_of(r);
    ASSERT_TRUE(body.contains("type"));
    EXPECT_EQ(text(body, "type"), "about:blank");
    EXPECT_EQ(text(body, "title"), status_title(c.status));
    ASSERT_TRUE(body.at("status").is_number());
    EXPECT_EQ(body.at("status").to_number<unsigned>(), c.status);
    EXPECT_EQ(text(body, "code"), c.name);
    EXPECT_EQ(text(body, "detail"), "some detail");
    EXPECT_EQ(text(body, "request_id"), "req-1");
    EXPECT_FALSE(body.contains("errors"));
    EXPECT_EQ(body.size(), 6U);
  }
}

TEST(problem, empty_detail_falls_back_to_the_title) {
  const auto body = body_of(problem(make_error(errc::not_found), "r"));
  EXPECT_EQ(text(body, "detail"), "Not Found");
}

TEST(problem, the_example_from_api_md) {
  const auto r = problem(make_error(errc::not_found, "no such user"), "abc123");
  EXPECT_EQ(r.status, 404U);
  const auto body = body_of(r);
  EXPECT_EQ(json::value(body), json::value(json::object{{"type", "about:blank"},
                                                        {"title", "Not Found"},
                                                        {"status", 404},
                                                        {"code", "not_found"},
                                                        {"detail", "no such user"},
                                                        {"request_id", "abc123"}}));
}

TEST(problem, errors_array_lists_the_fields_in_order) {
  error e{errc::invalid_input,
          "the request body has invalid fields",
          {{"email", "must be an email address"}, {"password", "must be 8-256 characters"}}};
  const auto r = problem(e, "r");
  EXPECT_EQ(r.status, 400U);
  const auto body = body_of(r);
  ASSERT_TRUE(body.contains("errors"));
  ASSERT_TRUE(body.at("errors").is_array());
  const auto& errors = body.at("errors").as_array();
  ASSERT_EQ(errors.size(), 2U);
  EXPECT_EQ(errors[0], json::value(json::object{{"field", "email"}, {"message", "must be an email address"}}));
  EXPECT_EQ(errors[1], json::value(json::object{{"field", "password"}, {"message", "must be 8-256 characters"}}));
}

TEST(problem, extra_members_are_merged) {
  const auto r = problem(make_error(errc::tenant_required, "choose a tenant"), "r",
                         json::object{{"tenants", json::array{"acme", "globex"}}});
  EXPECT_EQ(r.status, 400U);
  const auto body = body_of(r);
  EXPECT_EQ(text(body, "code"), "tenant_required");
  EXPECT_EQ(text(body, "request_id"), "r");
  ASSERT_TRUE(body.contains("tenants"));
  EXPECT_EQ(body.at("tenants"), json::value(json::array{"acme", "globex"}));
  EXPECT_EQ(body.size(), 7U);
}

TEST(problem, strings_are_json_escaped) {
  const auto r = problem(make_error(errc::invalid_input, "quote \" backslash \\ newline \n <tag>"), "id\"x");
  const auto body = body_of(r);  // parses, so the text was escaped
  EXPECT_EQ(text(body, "detail"), "quote \" backslash \\ newline \n <tag>");
  EXPECT_EQ(text(body, "request_id"), "id\"x");
}

TEST(problem, www_authenticate_only_on_401) {
  for (const auto& c : all_codes) {
    const auto r = problem(make_error(c.code, "x"), "r");
    const auto value = header(r, "WWW-Authenticate");
    if (c.status == 401) {
      ASSERT_TRUE(value.has_value()) << c.name;
      EXPECT_EQ(*value, "Bearer") << c.name;
    } else {
      EXPECT_FALSE(value.has_value()) << c.name;
    }
  }
}

TEST(problem, retry_after_on_429_and_503) {
  for (const auto& c : all_codes) {
    const auto r = problem(make_error(c.code, "x"), "r");
    const auto value = header(r, "Retry-After");
    if (c.status == 429 || c.status == 503) {
      ASSERT_TRUE(value.has_value()) << c.name;
      ASSERT_FALSE(value->empty()) << c.name;
      EXPECT_EQ(value->find_first_not_of("0123456789"), std::string::npos) << *value;
      EXPECT_GE(std::stoi(*value), 1) << c.name;
    } else {
      EXPECT_FALSE(value.has_value()) << c.name;
    }
  }
}

TEST(problem, explicit_status_overload) {
  const auto r = problem(431, errc::invalid_input, "the request headers are too large", "r-431");
  EXPECT_EQ(r.status, 431U);
  EXPECT_EQ(r.content_type, "application/problem+json");
  const auto body = body_of(r);
  EXPECT_EQ(body.at("status").to_number<unsigned>(), 431U);
  EXPECT_EQ(text(body, "title"), "Request Header Fields Too Large");
  EXPECT_EQ(text(body, "code"), "invalid_input");
  EXPECT_EQ(text(body, "detail"), "the request headers are too large");
  EXPECT_EQ(text(body, "request_id"), "r-431");

  const auto unauthorized = problem(401, errc::unauthorized, "no token", "r");
  EXPECT_EQ(header(unauthorized, "WWW-Authenticate"), "Bearer");
  const auto busy = problem(503, errc::unavailable, "busy", "r");
  EXPECT_TRUE(header(busy, "Retry-After").has_value());
}

TEST(json_response, status_type_and_body) {
  const auto r = json_response(201, json::object{{"status", "ok"}});
  EXPECT_EQ(r.status, 201U);
  EXPECT_EQ(r.content_type, "application/json; charset=utf-8");
  EXPECT_EQ(json::parse(r.body), json::value(json::object{{"status", "ok"}}));
  EXPECT_TRUE(r.headers.empty());
}

}  // namespace
}  // namespace tenantd::api
