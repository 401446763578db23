// Blocking HTTP/1.1 client for end-to-end tests: one connection per request, deadlines on
// every read and write, and central checks on every response (no 500, no SQL or PostgreSQL
// text, problem+json errors whose request_id matches X-Request-Id).
#pragma once
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tenantd::test {

// Header name/value pairs, in order; names may repeat.
using header_list = std::vector<std::pair<std::string, std::string>>;

struct http_response {
  unsigned status{0};
  header_list headers;  // names lower-cased, in the order received
  std::string body;

  // First value of the header `name` (case-insensitive), or nullopt.
  std::optional<std::string> header(std::string_view name) const;
  // Every value of the header `name`.
  std::vector<std::string> header_values(std::string_view name) const;
  bool has_header(std::string_view name) const { return header(name).has_value(); }
  std::string header_or_empty(std::string_view name) const { return header(name).value_or(""); }
  // The body parsed as JSON; records a test failure and returns null if it is not JSON.
  boost::json::value json() const;
  // Status, headers and body, for failure messages.
  std::string describe() const;
};

// Result of sending exact bytes: everything the server sent back before it closed the
// connection (closed == true) or the timeout passed.
struct raw_exchange_result {
  std::string bytes;
  bool closed{false};
  // The first response in `bytes`, if one parses.
  std::optional<http_response> first_response() const;
};

class http_client {
 public:
  explicit http_client(std::uint16_t port) : port_(port) {}

  // Sends one request on a fresh connection and reads one response. Adds Host and
  // Content-Length (when a body is given) unless `headers` already names them.
  // Runs the central response checks unless disabled with set_checks(false).
  http_response request(std::string_view method, std::string_view target, const header_list& headers = {},
                        std::optional<std::string> body = std::nullopt) const;

  http_response get(std::string_view target, const header_list& headers = {}) const {
    return request("GET", target, headers);
  }
  // POST/PUT/PATCH with a JSON body and Content-Type: application/json (unless given).
  http_response send_json(std::string_view method, std::string_view target, const boost::json::value& body,
                          const header_list& headers = {}) const;

  // Sends `bytes` verbatim, then reads until the server closes or `timeout` passes.
  raw_exchange_result exchange_raw(std::string_view bytes,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5)) const;

  void set_checks(bool on) { checks_ = on; }
  std::uint16_t port() const noexcept { return port_; }

 private:
  std::uint16_t port_;
  bool checks_{true};
};

// Checks every response must pass (called by http_client::request; public for raw tests).
// `request_text` is what was sent, so echoed input is not mistaken for leaked SQL.
// `allow_server_error` admits a 5xx (for tests that break the database on purpose).
void check_response_hygiene(std::string_view method, std::string_view target, std::string_view request_text,
                            const http_response& response, bool allow_server_error = false);

// Checks that `response` is an RFC 9457 problem with this status and (if non-empty) code,
// and that its request_id equals X-Request-Id. Records gtest failures.
void expect_problem(const http_response& response, unsigned status, std::string_view code = {});

// Bearer authorization header.
inline header_list bearer(std::string_view token) { return {{"Authorization", "Bearer " + std::string(token)}}; }

}  // namespace tenantd::test
