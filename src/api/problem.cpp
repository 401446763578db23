// problem+json responses and the errc -> HTTP status mapping.
#include "api/problem.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

namespace tenantd::api {

unsigned http_status(errc code) noexcept {
  switch (code) {
    case errc::invalid_input:
    case errc::invalid_json:
    case errc::invalid_id:
    case errc::tenant_required: return 400;
    case errc::unauthorized:
    case errc::invalid_credentials:
    case errc::invalid_refresh_token: return 401;
    case errc::forbidden:
    case errc::tenant_suspended:
    case errc::registration_closed:
    case errc::signup_closed: return 403;
    case errc::not_found:
    case errc::tenant_not_found: return 404;
    case errc::method_not_allowed: return 405;
    case errc::tenant_exists:
    case errc::email_taken:
    case errc::already_member:
    case errc::last_owner:
    case errc::server_exists:
    case errc::server_not_empty:
    case errc::server_unavailable:
    case errc::move_in_progress:
    case errc::move_unavailable: return 409;
    case errc::payload_too_large: return 413;
    case errc::unsupported_media_type: return 415;
    case errc::too_many_requests:
    case errc::too_many_attempts: return 429;
    case errc::internal: return 500;
    case errc::unavailable:
    case errc::schema_too_new: return 503;
  }
  return 500;
}

std::string_view status_title(unsigned status) noexcept {
  switch (status) {
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Error";
  }
}

response no_content() {
  response r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

response json_response(unsigned status, const boost::json::value& body) {
  return json_response(status, boost::json::serialize(body));
}

response json_response(unsigned status, std::string body) {
  response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

namespace {
response build_problem(unsigned status, const error& e, const std::string& request_id,
                       const boost::json::object& extra) {
  boost::json::object body;
  body["type"] = "about:blank";
  body["title"] = status_title(status);
  body["status"] = status;
  body["code"] = to_string(e.code);
  body["detail"] = e.detail.empty() ? std::string(status_title(status)) : e.detail;
  body["request_id"] = request_id;
  if (!e.fields.empty()) {
    boost::json::array errors;
    for (const auto& f : e.fields) errors.push_back(boost::json::object{{"field", f.field}, {"message", f.message}});
    body["errors"] = std::move(errors);
  }
  for (const auto& kv : extra) body[kv.key()] = kv.value();
  response r;
  r.status = status;
  r.content_type = "application/problem+json";
  r.body = boost::json::serialize(body);
  if (status == 401) r.set_header("WWW-Authenticate", "Bearer");
  if (status == 503 || status == 429) r.set_header("Retry-After", "1");
  return r;
}
}  // namespace

response problem(const error& e, const std::string& request_id, const boost::json::object& extra) {
  return build_problem(http_status(e.code), e, request_id, extra);
}

response problem(unsigned status, errc code, std::string detail, const std::string& request_id) {
  return build_problem(status, error{code, std::move(detail), {}}, request_id, {});
}

}  // namespace tenantd::api
