// Segment-by-segment route matching.
#include "api/router.hpp"

namespace tenantd::api {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path.front() != '/') return out;
  path.remove_prefix(1);
  while (true) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool match_segments(const std::vector<std::string_view>& pattern, const std::vector<std::string_view>& path,
                    std::vector<std::string>* params) {
  if (pattern.size() != path.size()) return false;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (!pattern[i].empty() && pattern[i].front() == ':') {
      if (path[i].empty()) return false;
      if (params) params->emplace_back(path[i]);
    } else if (pattern[i] != path[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

route_match match_route(std::span<const route> routes, std::string_view method, std::string_view path) {
  route_match result;
  const auto segments = split_path(path);
  if (segments.empty()) return result;
  for (const auto& r : routes) {
    const auto pattern = split_path(r.pattern);
    if (!match_segments(pattern, segments, nullptr)) continue;
    result.path_known = true;
    if (result.allow.find(r.method) == std::string::npos)
      result.allow += (result.allow.empty() ? "" : ", ") + std::string(r.method);
    if (!result.found && r.method == method) {
      result.found = &r;
      match_segments(pattern, segments, &result.params);
    }
  }
  if (!result.found) result.params.clear();
  return result;
}

}  // namespace tenantd::api
