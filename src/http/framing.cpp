// Framing rules for requests and the response-header allowlist; see framing.hpp.
#include "http/framing.hpp"

#include <algorithm>
#include <array>
#include <cstddef>

namespace tenantd::http {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_decimal(std::string_view s) noexcept {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_token_char(char c) noexcept {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  constexpr std::string_view extra = "!#$%&'*+-.^_`|~";
  return extra.find(c) != std::string_view::npos;
}

}  // namespace

std::optional<framing_error> check_framing(unsigned version,
                                           const std::vector<std::pair<std::string, std::string>>& headers) {
  if (version != 10 && version != 11) return framing_error{400, "unsupported HTTP version"};

  std::size_t hosts = 0;
  std::size_t lengths = 0;
  std::size_t encodings = 0;
  std::string_view length;
  std::string_view encoding;
  for (const auto& [name, value] : headers) {
    if (name == "host") {
      ++hosts;
    } else if (name == "content-length") {
      ++lengths;
      length = value;
    } else if (name == "transfer-encoding") {
      ++encodings;
      encoding = value;
    }
  }

  if (lengths > 0 && encodings > 0) return framing_error{400, "both Content-Length and Transfer-Encoding"};
  if (encodings > 1) return framing_error{400, "repeated Transfer-Encoding"};
  if (encodings == 1) {
    if (version == 10) return framing_error{400, "Transfer-Encoding in HTTP/1.0"};
    if (!iequals(trim(encoding), "chunked")) return framing_error{400, "unsupported Transfer-Encoding"};
  }
  if (lengths > 1) return framing_error{400, "repeated Content-Length"};
  if (lengths == 1 && !is_decimal(trim(length))) return framing_error{400, "invalid Content-Length"};
  if (hosts > 1) return framing_error{400, "repeated Host"};
  if (hosts == 0 && version == 11) return framing_error{400, "missing Host"};
  return std::nullopt;
}

bool has_obs_fold(std::string_view header_section) noexcept {
  for (auto at = header_section.find("\r\n"); at != std::string_view::npos; at = header_section.find("\r\n", at + 2)) {
    if (at + 2 < header_section.size() && (header_section[at + 2] == ' ' || header_section[at + 2] == '\t'))
      return true;
  }
  return false;
}

bool is_settable_response_header(std::string_view name, std::string_view value) noexcept {
  if (name.empty() || !std::all_of(name.begin(), name.end(), is_token_char)) return false;
  if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos) return false;
  constexpr std::array<std::string_view, 7> owned{
      "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "server", "x-content-type-options"};
  return std::none_of(owned.begin(), owned.end(), [name](std::string_view o) { return iequals(name, o); });
}

}  // namespace tenantd::http
