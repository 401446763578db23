// The operator console: one page and its hashed assets, compiled into the binary
// (cmake/embed_console.cmake). The page is public like /docs; everything it shows comes from
// the admin API with the ADMIN_TOKEN the operator types in, which the page keeps in memory
// only and sends as a bearer header (so there is no cookie to forge a request with).
#include "api/embedded_console.hpp"
#include "api/handlers.hpp"
#include "api/problem.hpp"

namespace tenantd::api {

std::optional<std::string_view> find_console_asset(std::string_view file_name) noexcept {
  for (const auto& file : embedded_console_assets())
    if (file.file_name == file_name) return file.content;
  return std::nullopt;
}

}  // namespace tenantd::api

namespace tenantd::api::handlers {
namespace {

// Only the console's own script and style; no inline script or style, no eval, no framing,
// requests only to this origin.
constexpr std::string_view console_policy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void harden(response& res) {
  res.set_header("X-Frame-Options", "DENY");
  res.set_header("Referrer-Policy", "no-referrer");
}

}  // namespace

// GET /console
awaitable<response> console_page(context&) {
  response res;
  res.content_type = "text/html; charset=utf-8";
  res.body = std::string(embedded_console_page());
  res.set_header("Content-Security-Policy", std::string(console_policy));
  res.set_header("Cache-Control", "no-cache");  // the page names the current assets
  harden(res);
  co_return res;
}

// GET /console/assets/:file
awaitable<response> console_asset(context& ctx) {
  const auto& name = ctx.params.at(0);
  const auto content = find_console_asset(name);
  const auto type = docs_content_type(name);
  if (!content || !type) co_return problem(make_error(errc::not_found, "no such file"), ctx.request_id);
  response res;
  res.content_type = std::string(*type);
  res.body = std::string(*content);
  // The name carries the content's hash: a new build serves new names.
  res.set_header("Cache-Control", "public, max-age=31536000, immutable");
  harden(res);
  co_return res;
}

}  // namespace tenantd::api::handlers
