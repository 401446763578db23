// Route matching: method + path -> route and path parameters, or "404" / "405 with Allow".
// Paths are matched segment by segment, exactly (no normalisation: "/api/users/" and
// "//api/users" are other paths). Pure; the route table itself is in routes.cpp.
#pragma once
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "api/context.hpp"
#include "domain/access.hpp"

namespace tenantd::api {

enum class access_kind {
  open,    // no authentication
  member,  // bearer access token of a tenant member
  admin,   // Authorization: Bearer <ADMIN_TOKEN> (platform operator)
  // No authentication, but only for loopback TCP peers (never X-Forwarded-For) and only when
  // api_settings::loopback_routes is on; to anyone else the route does not exist (404).
  loopback,
};

enum class body_kind {
  none,           // body ignored
  json,           // a JSON object is required (415/400 otherwise)
  optional_json,  // JSON object if a body is sent; nothing needed otherwise
};

struct route {
  std::string_view method;
  std::string_view pattern;  // "/api/users/:id"
  handler handle;
  access_kind access{access_kind::open};
  std::optional<permission> needs;
  body_kind body{body_kind::none};
};

struct route_match {
  const route* found{nullptr};  // set when method and path match
  std::vector<std::string> params;
  bool path_known{false};  // some route has this path (405 when !found)
  std::string allow;       // methods for this path, "GET, PUT"
};

// `loopback_routes`: whether routes with access_kind::loopback exist for this request; when
// false they are as absent (404, and missing from Allow).
route_match match_route(std::span<const route> routes, std::string_view method, std::string_view path,
                        bool loopback_routes = true);

// The application's route table (routes.cpp).
std::span<const route> route_table();

}  // namespace tenantd::api
