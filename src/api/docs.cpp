// The API documents itself: GET /openapi.json and the Swagger UI page at /docs, both compiled
// into the binary (cmake/embed_docs.cmake). Nothing is read from disk or another origin.
#include "api/embedded_docs.hpp"
#include "api/handlers.hpp"
#include "api/problem.hpp"

namespace tenantd::api {

std::optional<std::string_view> find_docs_file(std::string_view file_name) noexcept {
  for (const auto& file : embedded_docs_files())
    if (file.file_name == file_name) return file.content;
  return std::nullopt;
}

std::optional<std::string_view> docs_content_type(std::string_view file_name) noexcept {
  const auto dot = file_name.rfind('.');
  if (dot == std::string_view::npos) return std::nullopt;
  const auto extension = file_name.substr(dot + 1);
  if (extension == "html") return "text/html; charset=utf-8";
  if (extension == "js") return "text/javascript; charset=utf-8";
  if (extension == "css") return "text/css; charset=utf-8";
  if (extension == "json") return "application/json";
  if (extension == "png") return "image/png";
  return std::nullopt;
}

}  // namespace tenantd::api

namespace tenantd::api::handlers {
namespace {

// The page runs only its own scripts; Swagger UI sets inline styles and uses data: images.
constexpr std::string_view page_policy =
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

response docs_file(std::string_view file_name, const std::string& request_id) {
  const auto content = find_docs_file(file_name);
  const auto type = docs_content_type(file_name);
  if (!content || !type) return problem(make_error(errc::not_found, "no such file"), request_id);
  response res;
  res.content_type = std::string(*type);
  res.body = std::string(*content);
  if (type->starts_with("text/html")) {
    res.set_header("Content-Security-Policy", std::string(page_policy));
    res.set_header("X-Frame-Options", "DENY");  // frame-ancestors 'none' for browsers without CSP 2
  } else {
    res.set_header("Cache-Control", "public, max-age=3600");
  }
  return res;
}

}  // namespace

// GET /openapi.json
awaitable<response> openapi_json(context&) {
  response res;
  res.content_type = "application/json";
  res.body = std::string(embedded_openapi());
  co_return res;
}

// GET /docs
awaitable<response> docs_page(context& ctx) { co_return docs_file("index.html", ctx.request_id); }

// GET /docs/:file
awaitable<response> docs_asset(context& ctx) { co_return docs_file(ctx.params.at(0), ctx.request_id); }

}  // namespace tenantd::api::handlers
