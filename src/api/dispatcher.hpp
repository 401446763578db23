// The request pipeline, in API.md's order: request id -> route (404/405) -> CORS ->
// authentication (401) -> permission (403) -> body (415/400) -> handler. Also the single
// catch for infrastructure failures (503/500, logged with the request id, never leaked).
#pragma once
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "api/context.hpp"
#include "api/message.hpp"
#include "api/router.hpp"
#include "domain/error.hpp"

namespace tenantd::api {

struct access_entry {
  std::string_view method;
  std::string_view route;  // the pattern, or the raw path when no route matched
  unsigned status{0};
  std::chrono::microseconds duration{0};
  std::size_t bytes{0};
  std::string_view request_id;
  std::string_view tenant_id;
  std::string_view user_id;
  std::string_view client_address;
};

// Turns a bearer token into the caller, or the 401 to answer.
using authenticator = std::function<boost::asio::awaitable<result<principal>>(std::string_view token)>;

class dispatcher {
 public:
  // The application's route table, callers authenticated by svc.accounts.
  dispatcher(services& svc, std::function<void(const access_entry&)> on_access);
  // Any route table and authenticator (the pipeline's unit tests inject both).
  dispatcher(services& svc, std::function<void(const access_entry&)> on_access, std::span<const route> routes,
             authenticator authenticate);

  boost::asio::awaitable<response> handle(request& req);

  // A response for a request the HTTP layer rejected before dispatch (framing, limits).
  response reject(unsigned status, errc code, std::string_view detail, const request& partial) const;

 private:
  boost::asio::awaitable<response> route_request(context& ctx, std::string& route_name);
  boost::asio::awaitable<response> handle_with_placement_retry(const route& r, context& ctx) const;
  void finish(const request& req, response& res, const std::string& request_id) const;

  services& svc_;
  std::function<void(const access_entry&)> on_access_;
  std::span<const route> routes_;
  authenticator authenticate_;
};

// The client's X-Request-Id if it is 1-128 characters of [A-Za-z0-9._-], else a new one.
std::string choose_request_id(const request& req);
// True for "application/json" with optional parameters (charset), case-insensitive.
bool is_json_content_type(std::string_view value) noexcept;

}  // namespace tenantd::api
