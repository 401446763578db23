// Platform-admin API over tenant moves between database servers (tenancy/mover.hpp); the
// dispatcher has checked the admin token. A move is started here and driven in the
// background by this process; GET /admin/moves[/:id] shows where it is.
#include <boost/json/object.hpp>

#include "api/dto.hpp"
#include "api/handlers.hpp"
#include "api/problem.hpp"
#include "domain/validation.hpp"

namespace tenantd::api::handlers {
namespace {

boost::json::object move_json(const move_record& m) {
  boost::json::object out;
  out["id"] = m.id;
  out["tenant_id"] = m.tenant_id;
  out["from"] = m.from;
  out["to"] = m.to;
  out["state"] = to_string(m.state);
  out["started_at"] = m.started_at;
  out["updated_at"] = m.updated_at;
  if (m.error) out["error"] = *m.error;
  if (m.freeze_ms) out["freeze_ms"] = *m.freeze_ms;
  out["attempts"] = m.attempts;
  out["keep_source"] = m.keep_source;
  if (m.finished_at) out["finished_at"] = *m.finished_at;
  return out;
}

response no_such_move(const context& ctx) {
  return problem(make_error(errc::not_found, "no such move"), ctx.request_id);
}

}  // namespace

// POST /admin/tenants/:id/move {"to","keep_source"?}
awaitable<response> admin_move_tenant(context& ctx) {
  const auto& id = ctx.params.at(0);
  if (validation::check_tenant_id(id))
    co_return problem(make_error(errc::tenant_not_found, "no such tenant"), ctx.request_id);
  body_reader body(ctx.body);
  auto to = body.string("to", true);
  const bool keep_source = body.as_bool("keep_source", false);
  if (to)
    if (auto problem = validation::check_server_name(*to)) body.add_error("to", *problem);
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  auto started = co_await ctx.svc.mover->start(id, *to, keep_source);
  if (!started) co_return problem(started.err(), ctx.request_id);
  ctx.svc.mover->launch(*started);
  auto res = json_response(202, move_json(*started));
  res.set_header("Location", "/admin/moves/" + started->id);
  co_return res;
}

// GET /admin/moves
awaitable<response> admin_list_moves(context& ctx) {
  const auto moves = co_await ctx.svc.mover->list();
  boost::json::array items;
  for (const auto& m : moves) items.push_back(move_json(m));
  co_return json_response(200, {{"items", std::move(items)}});
}

// GET /admin/moves/:id
awaitable<response> admin_get_move(context& ctx) {
  const auto& id = ctx.params.at(0);
  if (!validation::is_uuid(id)) co_return no_such_move(ctx);
  auto move = co_await ctx.svc.mover->find(id);
  if (!move) co_return no_such_move(ctx);
  co_return json_response(200, move_json(*move));
}

}  // namespace tenantd::api::handlers
