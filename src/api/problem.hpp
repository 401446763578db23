// Errors to HTTP: the one mapping from errc to status, and problem+json bodies (RFC 9457).
#pragma once
#include <boost/json/object.hpp>

#include <string>
#include <string_view>

#include "api/message.hpp"
#include "domain/error.hpp"

namespace tenantd::api {

unsigned http_status(errc code) noexcept;
std::string_view status_title(unsigned status) noexcept;

// A problem+json response for the error; `extra` members are merged into the body.
response problem(const error& e, const std::string& request_id, const boost::json::object& extra = {});
response problem(unsigned status, errc code, std::string detail, const std::string& request_id);

// 204 No Content.
response no_content();

// A JSON response with the given status.
response json_response(unsigned status, const boost::json::value& body);
// A JSON response whose body is already serialised.
response json_response(unsigned status, std::string body);

}  // namespace tenantd::api
