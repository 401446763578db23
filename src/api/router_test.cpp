// Tests for route matching (exact segments, parameters, 404 vs 405 with Allow, no path
// normalisation) and for the application's route table against API.md.
#include "api/router.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace tenantd::api {
namespace {

using enum access_kind;
using enum body_kind;
using enum permission;

// A small table of its own, so matching is tested apart from the application's routes.
const route test_table[] = {
    {"GET", "/", nullptr, open, std::nullopt, none},
    {"GET", "/healthz", nullptr, open, std::nullopt, none},
    {"GET", "/api/users", nullptr, member, users_read, none},
    {"POST", "/api/users", nullptr, member, users_write, json},
    {"GET", "/api/users/:id", nullptr, member, users_read, none},
    {"PUT", "/api/users/:id", nullptr, member, users_write, json},
    {"DELETE", "/api/users/:id", nullptr, member, users_delete, none},
    {"GET", "/api/users/:id/roles/:role", nullptr, member, users_read, none},
    {"PUT", "/api/users/me", nullptr, member, users_write, json},
};

route_match match(std::string_view method, std::string_view path) { return match_route(test_table, method, path); }

void expect_found(std::string_view method, std::string_view path, std::string_view pattern,
                  const std::vector<std::string>& params = {}) {
  const auto m = match(method, path);
  ASSERT_NE(m.found, nullptr) << method << " " << path;
  EXPECT_EQ(m.found->method, method) << path;
  EXPECT_EQ(m.found->pattern, pattern) << method << " " << path;
  EXPECT_EQ(m.params, params) << method << " " << path;
  EXPECT_TRUE(m.path_known);
}

void expect_not_found(std::string_view method, std::string_view path) {
  const auto m = match(method, path);
  EXPECT_EQ(m.found, nullptr) << method << " " << path;
  EXPECT_FALSE(m.path_known) << method << " " << path;
  EXPECT_TRUE(m.params.empty()) << method << " " << path;
  EXPECT_EQ(m.allow, "") << method << " " << path;
}

TEST(match_route, exact_paths) {
  expect_found("GET", "/", "/");
  expect_found("GET", "/healthz", "/healthz");
  expect_found("GET", "/api/users", "/api/users");
  expect_found("POST", "/api/users", "/api/users");
}

TEST(match_route, parameters_are_captured_raw) {
  expect_found("GET", "/api/users/123", "/api/users/:id", {"123"});
  expect_found("DELETE", "/api/users/0b5e2b1c-9d1f-4a6e-8c3b-2f1e0d9c8b7a", "/api/users/:id",
               {"0b5e2b1c-9d1f-4a6e-8c3b-2f1e0d9c8b7a"});
  expect_found("GET", "/api/users/u1/roles/admin", "/api/users/:id/roles/:role", {"u1", "admin"});
  // Not decoded: the handler sees exactly what was sent.
  expect_found("GET", "/api/users/a%2Fb", "/api/users/:id", {"a%2Fb"});
}

TEST(match_route, literal_segment_and_parameter_on_the_same_path) {
  // "/api/users/me" matches the literal PUT route and the :id routes for other methods.
  expect_found("PUT", "/api/users/me", "/api/users/:id", {"me"});  // first matching route wins
  expect_found("GET", "/api/users/me", "/api/users/:id", {"me"});
}

TEST(match_route, unknown_paths_are_404) {
  expect_not_found("GET", "/nope");
  expect_not_found("GET", "/api");
  expect_not_found("GET", "/api/user");
  expect_not_found("GET", "/api/users/1/2");
  expect_not_found("GET", "/api/users/1/roles");
  expect_not_found("GET", "/healthz/extra");
  expect_not_found("GET", "");
  expect_not_found("GET", "healthz");
  expect_not_found("GET", "*");
}

TEST(match_route, known_path_wrong_method_is_405_with_allow) {
  auto m = match("PATCH", "/api/users");
  EXPECT_EQ(m.found, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "GET, POST");
  EXPECT_TRUE(m.params.empty());

  m = match("POST", "/api/users/42");
  EXPECT_EQ(m.found, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_TRUE(m.params.empty());
  EXPECT_EQ(m.allow, "GET, PUT, DELETE");

  m = match("DELETE", "/");
  EXPECT_EQ(m.found, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "GET");
}

TEST(match_route, allow_is_also_filled_on_a_match) {
  const auto m = match("GET", "/api/users");
  ASSERT_NE(m.found, nullptr);
  EXPECT_EQ(m.allow, "GET, POST");
}

TEST(match_route, methods_are_case_sensitive) {
  const auto m = match("get", "/healthz");
  EXPECT_EQ(m.found, nullptr);
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.allow, "GET");
}

TEST(match_route, no_path_normalisation) {
  for (const std::string_view path :
       {"/healthz/",    "//healthz",         "/HEALTHZ",     "/Healthz",     "/api/users/",
        "//api/users",  "/api//users",       "/api/users//", "/API/users",   "/api/Users",
        "/api/./users", "/api/../api/users", "/./healthz",   "/api/%75sers", "/%61pi/users",
        "/healthz%2F",  "/healthz?x=1",      "/healthz#top", " /healthz",    "/healthz "}) {
    const auto m = match("GET", path);
    EXPECT_EQ(m.found, nullptr) << path;
    EXPECT_FALSE(m.path_known) << path;
  }
  // A trailing or doubled slash does not even count as the "/" path.
  expect_not_found("GET", "//");
}

TEST(match_route, empty_parameter_segment_does_not_match) {
  expect_not_found("GET", "/api/users/");
  expect_not_found("DELETE", "/api/users/");
  expect_not_found("GET", "/api/users//roles/admin");
  expect_not_found("GET", "/api/users/u1/roles/");
}

TEST(match_route, loopback_routes_exist_only_when_asked_for) {
  const route table[] = {
      {"GET", "/metrics", nullptr, loopback, std::nullopt, none},
      {"GET", "/healthz", nullptr, open, std::nullopt, none},
  };
  const auto shown = match_route(table, "GET", "/metrics", true);
  ASSERT_NE(shown.found, nullptr);
  EXPECT_EQ(shown.found->pattern, "/metrics");
  EXPECT_EQ(match_route(table, "POST", "/metrics", true).allow, "GET");

  for (const auto* method : {"GET", "POST", ""}) {
    const auto hidden = match_route(table, method, "/metrics", false);
    EXPECT_EQ(hidden.found, nullptr) << method;
    EXPECT_FALSE(hidden.path_known) << method << ": a hidden route must answer 404, not 405";
    EXPECT_EQ(hidden.allow, "") << method;
  }
  EXPECT_NE(match_route(table, "GET", "/healthz", false).found, nullptr);
}

TEST(match_route, empty_table) {
  const auto m = match_route({}, "GET", "/");
  EXPECT_EQ(m.found, nullptr);
  EXPECT_FALSE(m.path_known);
}

// ---- the application's table ----------------------------------------------------------------

struct expected_route {
  std::string method;
  std::string pattern;
  access_kind access;
  std::optional<permission> needs;
  body_kind body;
};

// API.md's foundation endpoints with the permission its role table implies.
const std::vector<expected_route> foundation{
    {"GET", "/", open, std::nullopt, none},
    {"GET", "/healthz", open, std::nullopt, none},
    {"GET", "/readyz", open, std::nullopt, none},
    {"GET", "/metrics", loopback, std::nullopt, none},
    {"POST", "/tenants", open, std::nullopt, json},
    {"POST", "/auth/register", open, std::nullopt, json},
    {"POST", "/auth/login", open, std::nullopt, json},
    {"GET", "/api/me", member, std::nullopt, none},
    {"GET", "/api/users", member, users_read, none},
    {"POST", "/api/users", member, users_write, json},
    {"GET", "/api/users/:id", member, users_read, none},
    {"PUT", "/api/users/:id", member, users_write, json},
    {"PATCH", "/api/users/:id", member, users_write, json},
    {"DELETE", "/api/users/:id", member, users_delete, none},
    {"GET", "/api/tenant", member, tenant_read, none},
    {"PUT", "/api/tenant", member, tenant_manage, json},
};

const route* find_route(std::string_view method, std::string_view pattern) {
  for (const auto& r : route_table())
    if (r.method == method && r.pattern == pattern) return &r;
  return nullptr;
}

TEST(route_table, has_every_foundation_endpoint_with_its_access_rule) {
  for (const auto& e : foundation) {
    SCOPED_TRACE(e.method + " " + e.pattern);
    const route* r = find_route(e.method, e.pattern);
    ASSERT_NE(r, nullptr);
    EXPECT_NE(r->handle, nullptr);
    EXPECT_EQ(r->access, e.access);
    EXPECT_EQ(r->needs, e.needs);
    EXPECT_EQ(r->body, e.body);
  }
}

TEST(route_table, no_duplicate_method_and_path) {
  std::set<std::pair<std::string_view, std::string_view>> seen;
  for (const auto& r : route_table())
    EXPECT_TRUE(seen.emplace(r.method, r.pattern).second) << r.method << " " << r.pattern;
}

TEST(route_table, every_route_is_well_formed) {
  for (const auto& r : route_table()) {
    SCOPED_TRACE(std::string(r.method) + " " + std::string(r.pattern));
    EXPECT_NE(r.handle, nullptr);
    ASSERT_FALSE(r.pattern.empty());
    EXPECT_EQ(r.pattern.front(), '/');
    if (r.pattern.size() > 1) {
      EXPECT_NE(r.pattern.back(), '/');
    }
    EXPECT_EQ(r.pattern.find("//"), std::string_view::npos);
    // Everything under /api/ is protected (the tenant comes from the token).
    if (r.pattern.starts_with("/api/")) {
      EXPECT_EQ(r.access, member);
    }
    // A permission only makes sense on a protected route.
    if (r.needs) {
      EXPECT_EQ(r.access, member);
    }
    // GET and DELETE take no body.
    if (r.method == "GET" || r.method == "DELETE") {
      EXPECT_EQ(r.body, none);
    }
  }
}

TEST(route_table, real_requests_resolve) {
  const auto table = route_table();
  const auto get_user = match_route(table, "GET", "/api/users/0b5e2b1c-9d1f-4a6e-8c3b-2f1e0d9c8b7a");
  ASSERT_NE(get_user.found, nullptr);
  EXPECT_EQ(get_user.found->pattern, "/api/users/:id");
  EXPECT_EQ(get_user.params, (std::vector<std::string>{"0b5e2b1c-9d1f-4a6e-8c3b-2f1e0d9c8b7a"}));

  const auto users_405 = match_route(table, "DELETE", "/api/users");
  EXPECT_EQ(users_405.found, nullptr);
  EXPECT_TRUE(users_405.path_known);
  EXPECT_EQ(users_405.allow, "GET, POST");

  const auto user_405 = match_route(table, "POST", "/api/users/x");
  EXPECT_EQ(user_405.found, nullptr);
  EXPECT_EQ(user_405.allow, "GET, PUT, PATCH, DELETE");

  const auto tenant_405 = match_route(table, "DELETE", "/api/tenant");
  EXPECT_EQ(tenant_405.allow, "GET, PUT");

  const auto tenants_405 = match_route(table, "GET", "/tenants");
  EXPECT_TRUE(tenants_405.path_known);
  EXPECT_EQ(tenants_405.allow, "POST");

  EXPECT_FALSE(match_route(table, "GET", "/api/users/").path_known);
  EXPECT_FALSE(match_route(table, "GET", "/api/./users").path_known);
  EXPECT_FALSE(match_route(table, "GET", "/API/ME").path_known);
  EXPECT_FALSE(match_route(table, "GET", "/nope").path_known);
}

}  // namespace
}  // namespace tenantd::api
