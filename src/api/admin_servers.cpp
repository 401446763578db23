// Platform-admin API over the database servers tenants are placed on; the dispatcher has
// checked the admin token. Passwords never appear in a response: the URL is not returned.
#include <boost/json/object.hpp>

#include "api/dto.hpp"
#include "api/handlers.hpp"
#include "api/problem.hpp"
#include "domain/validation.hpp"

namespace tenantd::api::handlers {
namespace {

boost::json::object server_json(const server_record& s) {
  boost::json::object out;
  out["name"] = s.name;
  out["host"] = s.host;
  out["port"] = s.port;
  out["state"] = to_string(s.state);
  out["tenants"] = s.tenants;
  out["weight"] = s.weight;
  if (s.max_tenants)
    out["max_tenants"] = *s.max_tenants;
  else
    out["max_tenants"] = nullptr;
  return out;
}

// An optional integer field; `nullable`: JSON null is allowed (and read as "no value").
// Absent: nullopt. Present: the value, or nullopt inside (null), with an error for any other type.
std::optional<std::optional<std::int64_t>> integer_field(const boost::json::value& body, body_reader& reader,
                                                         std::string_view field, bool nullable) {
  const auto& object = body.as_object();
  const auto* v = object.if_contains(field);
  if (v == nullptr) return std::nullopt;
  if (v->is_null() && nullable) return std::optional<std::int64_t>{};
  if (v->is_int64()) return std::optional<std::int64_t>{v->as_int64()};
  if (v->is_uint64() && v->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
    return std::optional<std::int64_t>{static_cast<std::int64_t>(v->as_uint64())};
  reader.add_error(std::string(field), nullable ? "must be an integer or null" : "must be an integer");
  return std::nullopt;
}

// The :name parameter if it is a well-formed server name.
std::optional<std::string> server_param(const context& ctx) {
  const auto& name = ctx.params.at(0);
  if (validation::check_server_name(name)) return std::nullopt;
  return name;
}

response no_such_server(const context& ctx) {
  return problem(make_error(errc::not_found, "no such database server"), ctx.request_id);
}

}  // namespace

// GET /admin/servers
awaitable<response> admin_list_servers(context& ctx) {
  const auto servers = co_await ctx.svc.servers->list();
  boost::json::array items;
  for (const auto& s : servers) items.push_back(server_json(s));
  co_return json_response(200, {{"items", std::move(items)}});
}

// POST /admin/servers {"name","url","weight"?,"max_tenants"?}
awaitable<response> admin_add_server(context& ctx) {
  body_reader body(ctx.body);
  tenancy::server_request request;
  auto name = body.string("name", true);
  auto url = body.string("url", true);
  const auto weight = integer_field(ctx.body, body, "weight", false);
  const auto max_tenants = integer_field(ctx.body, body, "max_tenants", true);
  if (name)
    if (auto problem = validation::check_server_name(*name)) body.add_error("name", *problem);
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  request.name = std::move(*name);
  request.url = std::move(*url);
  if (weight) request.weight = *weight;
  if (max_tenants) request.max_tenants = *max_tenants;
  auto added = co_await ctx.svc.servers->add(request);
  if (!added) co_return problem(added.err(), ctx.request_id);
  co_return json_response(201, server_json(*added));
}

// PUT /admin/servers/:name {"state"?,"weight"?,"max_tenants"?}
awaitable<response> admin_update_server(context& ctx) {
  auto name = server_param(ctx);
  if (!name) co_return no_such_server(ctx);
  body_reader body(ctx.body);
  db::servers::server_changes changes;
  if (auto state = body.string("state", false)) {
    changes.state = parse_server_state(*state);
    if (!changes.state) body.add_error("state", "must be active, draining or disabled");
  }
  if (auto weight = integer_field(ctx.body, body, "weight", false)) changes.weight = *weight;
  changes.max_tenants = integer_field(ctx.body, body, "max_tenants", true);
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  auto updated = co_await ctx.svc.servers->update(*name, changes);
  if (!updated) co_return problem(updated.err(), ctx.request_id);
  co_return json_response(200, server_json(*updated));
}

// DELETE /admin/servers/:name
awaitable<response> admin_remove_server(context& ctx) {
  auto name = server_param(ctx);
  if (!name) co_return no_such_server(ctx);
  auto removed = co_await ctx.svc.servers->remove(*name);
  if (!removed) co_return problem(removed.err(), ctx.request_id);
  co_return no_content();
}

}  // namespace tenantd::api::handlers
