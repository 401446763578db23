// Plain request and response types exchanged between the HTTP session (http/) and the
// dispatcher and handlers (api/). No Beast here, so handlers compile fast.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tenantd::api {

struct request {
  std::string method;                                        // as sent, e.g. "GET"
  std::string target;                                        // raw request-target, e.g. "/api/users?page=2"
  std::string path;                                          // target up to '?', not percent-decoded
  std::string query;                                         // after '?', without it; "" if none
  unsigned version{11};                                      // 10 or 11
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, order kept
  std::string body;
  std::string remote_address;  // peer IP as text

  // First value of a header (name lower-case), if present.
  std::optional<std::string_view> header(std::string_view lower_name) const noexcept {
    for (const auto& [name, value] : headers)
      if (name == lower_name) return std::string_view(value);
    return std::nullopt;
  }
  std::size_t header_count(std::string_view lower_name) const noexcept {
    std::size_t n = 0;
    for (const auto& h : headers) n += h.first == lower_name ? 1U : 0U;
    return n;
  }
};

struct response {
  unsigned status{200};
  std::string content_type{"application/json; charset=utf-8"};  // "" means no body type
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  bool close{false};                                         // close the connection after sending

  void set_header(std::string name, std::string value) {
    for (auto& h : headers)
      if (h.first == name) {
        h.second = std::move(value);
        return;
      }
    headers.emplace_back(std::move(name), std::move(value));
  }
};

}  // namespace tenantd::api
