// Bearer token extraction.
#include "api/bearer.hpp"

#include <algorithm>
#include <cctype>

namespace tenantd::api {
namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

bool is_bearer_scheme(std::string_view scheme) noexcept {
  static constexpr std::string_view bearer = "bearer";
  return scheme.size() == bearer.size() && std::equal(scheme.begin(), scheme.end(), bearer.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

}  // namespace

std::optional<std::string_view> bearer_token(const request& req) {
  if (req.header_count("authorization") != 1) return std::nullopt;
  auto value = *req.header("authorization");
  const auto space = value.find(' ');
  if (space == std::string_view::npos || !is_bearer_scheme(value.substr(0, space))) return std::nullopt;
  auto token = value.substr(space + 1);
  while (!token.empty() && is_space(token.front())) token.remove_prefix(1);
  while (!token.empty() && is_space(token.back())) token.remove_suffix(1);
  if (token.empty() || std::any_of(token.begin(), token.end(), is_space)) return std::nullopt;
  return token;
}

}  // namespace tenantd::api
