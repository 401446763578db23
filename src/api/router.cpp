// Segment-by-segment route matching.
#include "api/router.hpp"

namespace tenantd::api {
namespace {

// Walks pattern and path segment by segment without splitting them into containers (this
// runs for every route on every request). ":name" matches one non-empty segment.
bool match_segments(std::string_view pattern, std::string_view path, std::vector<std::string>* params) {
  if (pattern.empty() || path.empty() || pattern.front() != '/' || path.front() != '/') return false;
  pattern.remove_prefix(1);
  path.remove_prefix(1);
  while (true) {
    const auto pattern_slash = pattern.find('/');
    const auto path_slash = path.find('/');
    const auto want = pattern.substr(0, pattern_slash);
    const auto got = path.substr(0, path_slash);
    if (!want.empty() && want.front() == ':') {
      if (got.empty()) return false;
      if (params) params->emplace_back(got);
    } else if (want != got) {
      return false;
    }
    if ((pattern_slash == std::string_view::npos) != (path_slash == std::string_view::npos)) return false;
    if (pattern_slash == std::string_view::npos) return true;
    pattern.remove_prefix(pattern_slash + 1);
    path.remove_prefix(path_slash + 1);
  }
}

}  // namespace

route_match match_route(std::span<const route> routes, std::string_view method, std::string_view path,
                        bool loopback_routes) {
  route_match result;
  if (path.empty() || path.front() != '/') return result;
  for (const auto& r : routes) {
    if (r.access == access_kind::loopback && !loopback_routes) continue;
    if (!match_segments(r.pattern, path, nullptr)) continue;
    result.path_known = true;
    if (result.allow.find(r.method) == std::string::npos) {
      if (!result.allow.empty()) result.allow += ", ";
      result.allow += r.method;
    }
    if (!result.found && r.method == method) {
      result.found = &r;
      match_segments(r.pattern, path, &result.params);
    }
  }
  return result;
}

}  // namespace tenantd::api
