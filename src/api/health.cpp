// Service information, health probes and the metrics page.
#include "api/handlers.hpp"
#include "api/problem.hpp"

namespace tenantd::api::handlers {

// GET /
awaitable<response> service_info(context& ctx) {
  co_return json_response(200, {{"status", "ok"}, {"service", "tenantd"}, {"version", ctx.svc.settings.version}});
}

// GET /healthz
awaitable<response> healthz(context&) { co_return json_response(200, {{"status", "ok"}}); }

// GET /readyz
awaitable<response> readyz(context& ctx) {
  const auto state = co_await ctx.svc.check_readiness();
  if (state.ok()) co_return json_response(200, {{"status", "ok"}});
  auto res = json_response(503, {{"status", "unavailable"},
                                 {"checks",
                                  {{"master_database", state.master_reachable ? "ok" : "unreachable"},
                                   {"migrations", state.migrated ? "ok" : "pending"},
                                   {"draining", state.draining}}}});
  res.set_header("Retry-After", "1");
  co_return res;
}

// GET /metrics
awaitable<response> metrics(context& ctx) {
  if (!ctx.svc.metrics_page) co_return problem(make_error(errc::not_found, "no such resource"), ctx.request_id);
  co_return co_await ctx.svc.metrics_page();
}

}  // namespace tenantd::api::handlers
