// Request pipeline and the one place where infrastructure failures become 503/500.
#include "api/dispatcher.hpp"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "api/admin_token.hpp"
#include "api/bearer.hpp"
#include "api/client_address.hpp"
#include "api/problem.hpp"
#include "api/request_quota.hpp"
#include "api/router.hpp"
#include "auth/password_hasher.hpp"
#include "db/connection.hpp"
#include "domain/strict_json.hpp"

namespace tenantd::api {
namespace {

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// 24 hex digits: 8 random bytes per thread (drawn once) and a per-thread counter. Unique
// without a getrandom call per request; request ids are labels, not secrets.
std::string new_request_id() {
  thread_local const std::uint64_t prefix = [] {
    std::uint64_t v = 0;
    randombytes_buf(&v, sizeof v);
    return v;
  }();
  thread_local std::uint32_t counter = randombytes_random();
  static constexpr char digits[] = "0123456789abcdef";
  std::string hex(24, '0');
  const std::uint64_t high = prefix;
  const std::uint32_t low = ++counter;
  for (int i = 0; i < 16; ++i) hex[static_cast<std::size_t>(i)] = digits[(high >> (60 - 4 * i)) & 0xF];
  for (int i = 0; i < 8; ++i) hex[static_cast<std::size_t>(16 + i)] = digits[(low >> (28 - 4 * i)) & 0xF];
  return hex;
}

std::optional<std::string> allowed_origin(const request& req, const std::vector<std::string>& origins) {
  auto origin = req.header("origin");
  if (!origin || req.header_count("origin") != 1) return std::nullopt;
  for (const auto& allowed : origins)
    if (*origin == allowed) return allowed;
  return std::nullopt;
}

// 429 for a request past its tenant's or session's quota (logged without the token).
response over_quota(const context& ctx, const quota_denial& denied) {
  spdlog::warn("request {}: over the {} request quota (tenant {}, session {}); retry after {} s", ctx.request_id,
               to_string(denied.scope), ctx.caller->tenant_id, ctx.caller->session_id, denied.retry_after);
  auto res = problem(make_error(errc::too_many_requests, "too many requests; retry later"), ctx.request_id);
  res.set_header("Retry-After", std::to_string(denied.retry_after));
  return res;
}

}  // namespace

std::string choose_request_id(const request& req) {
  if (auto id = req.header("x-request-id");
      id && req.header_count("x-request-id") == 1 && !id->empty() && id->size() <= 128) {
    const bool clean = std::all_of(id->begin(), id->end(),
                                   [](unsigned char c) { return std::isalnum(c) || c == '.' || c == '_' || c == '-'; });
    if (clean) return std::string(*id);
  }
  return new_request_id();
}

bool is_json_content_type(std::string_view value) noexcept {
  const auto semicolon = value.find(';');
  auto type = value.substr(0, semicolon);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  if (!iequals(type, "application/json")) return false;
  if (semicolon == std::string_view::npos) return true;
  auto params = value.substr(semicolon + 1);
  while (!params.empty() && params.front() == ' ') params.remove_prefix(1);
  if (params.empty()) return true;
  const auto eq = params.find('=');
  if (eq == std::string_view::npos || !iequals(params.substr(0, eq), "charset")) return false;
  auto charset = params.substr(eq + 1);
  if (charset.size() >= 2 && charset.front() == '"' && charset.back() == '"')
    charset = charset.substr(1, charset.size() - 2);
  return iequals(charset, "utf-8") || iequals(charset, "utf8");
}

dispatcher::dispatcher(services& svc, std::function<void(const access_entry&)> on_access)
    : dispatcher(svc, std::move(on_access), route_table(),
                 [&svc](std::string_view token) { return svc.accounts->authenticate(token); }) {}

dispatcher::dispatcher(services& svc, std::function<void(const access_entry&)> on_access, std::span<const route> routes,
                       authenticator authenticate)
    : svc_(svc), on_access_(std::move(on_access)), routes_(routes), authenticate_(std::move(authenticate)) {}

void dispatcher::finish(const request& req, response& res, const std::string& request_id) const {
  res.set_header("X-Request-Id", request_id);
  const bool cacheable =
      std::any_of(res.headers.begin(), res.headers.end(), [](const auto& h) { return h.first == "Cache-Control"; });
  if (!cacheable) res.set_header("Cache-Control", "no-store");  // static assets set their own
  if (auto origin = allowed_origin(req, svc_.settings.cors_origins)) {
    res.set_header("Access-Control-Allow-Origin", *origin);
    res.set_header("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, WWW-Authenticate");
  }
  if (!svc_.settings.cors_origins.empty()) res.set_header("Vary", "Origin");
}

response dispatcher::reject(unsigned status, errc code, std::string_view detail, const request& partial) const {
  const auto request_id = choose_request_id(partial);
  auto res = problem(status, code, std::string(detail), request_id);
  finish(partial, res, request_id);
  return res;
}

boost::asio::awaitable<response> dispatcher::handle(request& req) {
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::string_view> forwarded_for;
  if (!svc_.settings.trusted_proxies.empty())
    for (const auto& [name, value] : req.headers)
      if (name == "x-forwarded-for") forwarded_for.emplace_back(value);
  context ctx{req,
              svc_,
              choose_request_id(req),
              std::nullopt,
              {},
              {},
              choose_client_address(req.remote_address, forwarded_for, svc_.settings.trusted_proxies)};
  std::string route_name;
  response res;
  try {
    res = co_await route_request(ctx, route_name);
  } catch (const db::unavailable_error& e) {
    spdlog::warn("request {}: database unavailable: {}", ctx.request_id, e.what());
    res =
        problem(make_error(errc::unavailable, "the service is temporarily unavailable; retry shortly"), ctx.request_id);
  } catch (const auth::hasher_busy&) {
    spdlog::warn("request {}: password hashing queue full", ctx.request_id);
    res = problem(make_error(errc::unavailable, "the service is busy; retry shortly"), ctx.request_id);
  } catch (const std::exception& e) {
    spdlog::error("request {}: unhandled failure: {}", ctx.request_id, e.what());
    res = problem(make_error(errc::internal, "an internal error occurred"), ctx.request_id);
  }
  finish(req, res, ctx.request_id);
  const auto duration =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
  // Usage counts requests whose tenant is known from a verified access token (see
  // tenancy/usage_recorder.hpp): login, registration and refresh carry none.
  if (svc_.usage != nullptr && ctx.caller) svc_.usage->record_request(ctx.caller->tenant_id, res.status, duration);
  if (on_access_) {
    access_entry entry;
    entry.method = req.method;
    entry.route = route_name.empty() ? std::string_view("-") : std::string_view(route_name);
    entry.status = res.status;
    entry.duration = duration;
    entry.bytes = res.body.size();
    entry.request_id = ctx.request_id;
    if (ctx.caller) {
      entry.tenant_id = ctx.caller->tenant_id;
      entry.user_id = ctx.caller->account_id;
    }
    entry.client_address = ctx.client_address;
    on_access_(entry);
  }
  co_return res;
}

boost::asio::awaitable<response> dispatcher::route_request(context& ctx, std::string& route_name) {
  const auto& req = ctx.req;
  // Loopback-only routes exist only for loopback TCP peers (never judged by X-Forwarded-For).
  const bool loopback_routes = svc_.settings.loopback_routes && is_loopback(req.remote_address);
  if (req.method == "OPTIONS") {
    const auto m = match_route(routes_, "", req.path, loopback_routes);
    if (!m.path_known) co_return problem(make_error(errc::not_found, "no such resource"), ctx.request_id);
    response res;
    res.status = 204;
    res.content_type.clear();
    if (allowed_origin(req, svc_.settings.cors_origins)) {
      res.set_header("Access-Control-Allow-Methods", m.allow + ", OPTIONS");
      res.set_header("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id, X-Tenant-ID");
      res.set_header("Access-Control-Max-Age", "600");
    }
    res.set_header("Allow", m.allow + ", OPTIONS");
    co_return res;
  }

  // HEAD is GET without a body (the session drops the body and keeps Content-Length).
  auto m = match_route(routes_, req.method == "HEAD" ? std::string_view("GET") : std::string_view(req.method), req.path,
                       loopback_routes);
  if (!m.found) {
    if (!m.path_known) co_return problem(make_error(errc::not_found, "no such resource"), ctx.request_id);
    auto res =
        problem(make_error(errc::method_not_allowed, "this method is not allowed on this resource"), ctx.request_id);
    res.set_header("Allow", m.allow);
    co_return res;
  }
  const route& r = *m.found;
  route_name = std::string(r.pattern);
  ctx.params = std::move(m.params);
  // Probes and the metrics page answer while the server is starting.
  const bool probe =
      r.pattern == "/" || r.pattern == "/healthz" || r.pattern == "/readyz" || r.access == access_kind::loopback;
  if (!probe && svc_.master_ready && !svc_.master_ready->load())
    co_return problem(make_error(errc::unavailable, "the service is starting; retry shortly"), ctx.request_id);

  if (r.access == access_kind::member) {
    auto token = bearer_token(req);
    if (!token) co_return problem(make_error(errc::unauthorized, "a bearer access token is required"), ctx.request_id);
    auto who = co_await authenticate_(*token);
    if (!who) co_return problem(who.err(), ctx.request_id);
    ctx.caller = std::move(*who);
    if (svc_.quota)
      if (const auto denied = svc_.quota->admit(ctx.caller->tenant_id, ctx.caller->session_id))
        co_return over_quota(ctx, *denied);
    if (r.needs && !has(ctx.caller->permissions, *r.needs))
      co_return problem(
          make_error(errc::forbidden, "this requires the " + std::string(to_string(*r.needs)) + " permission"),
          ctx.request_id);
  }

  if (r.access == access_kind::admin) {
    if (svc_.settings.admin_token.empty())
      co_return problem(make_error(errc::forbidden, "the admin API is disabled: ADMIN_TOKEN is not set"),
                        ctx.request_id);
    if (!has_admin_token(ctx))
      co_return problem(make_error(errc::unauthorized, "the admin token is missing or wrong"), ctx.request_id);
  }

  if (r.body != body_kind::none) {
    const bool has_body = !req.body.empty();
    if (r.body == body_kind::json || has_body) {
      auto type = req.header("content-type");
      if (!type || !is_json_content_type(*type))
        co_return problem(make_error(errc::unsupported_media_type, "send the body as application/json"),
                          ctx.request_id);
      auto parsed = parse_strict_json(req.body);
      if (!parsed) co_return problem(parsed.err(), ctx.request_id);
      if (!parsed->is_object())
        co_return problem(make_error(errc::invalid_json, "the body must be a JSON object"), ctx.request_id);
      ctx.body = std::move(*parsed);
    } else {
      ctx.body = boost::json::object{};
    }
  }
  if (!ctx.caller || svc_.tenants == nullptr) co_return co_await r.handle(ctx);
  co_return co_await handle_with_placement_retry(r, ctx);
}

// A member request that failed with the database unavailable because its tenant was moved to
// another server while it ran (it met the old server's lock or fence: nothing of it was
// applied there) runs once more, on the new placement. Whether it was moved is asked of
// master, not of this process's cache, which may not have heard of the move yet.
boost::asio::awaitable<response> dispatcher::handle_with_placement_retry(const route& r, context& ctx) const {
  const auto started = std::chrono::steady_clock::now();
  std::optional<response> first;
  std::exception_ptr failure;
  try {
    first = co_await r.handle(ctx);
  } catch (const db::unavailable_error&) {
    failure = std::current_exception();
  }
  if (first) co_return std::move(*first);
  const auto& tenant_id = ctx.caller->tenant_id;
  svc_.tenants->invalidate(tenant_id);
  bool moved = false;
  try {
    (void)co_await svc_.tenants->find(tenant_id);
    const auto at = svc_.tenants->moved_at(tenant_id);
    moved = at && *at >= started;
  } catch (const db::unavailable_error&) {  // master away too: the first failure stands
  }
  if (!moved) std::rethrow_exception(failure);
  spdlog::info("request {}: tenant {} moved to another database server while it ran; running it again there",
               ctx.request_id, tenant_id);
  co_return co_await r.handle(ctx);
}

}  // namespace tenantd::api
