// Members and invitations of the caller's tenant (members:manage).
#include "api/dto.hpp"
#include "api/handlers.hpp"
#include "api/problem.hpp"
#include "domain/validation.hpp"

namespace tenantd::api::handlers {
namespace {

boost::json::object to_json(const identity::member_view& m) {
  return {{"user_id", m.user_id},     {"email", m.email}, {"first_name", m.first_name},
          {"last_name", m.last_name}, {"role", m.role},   {"joined_at", m.joined_at}};
}

std::optional<std::string> read_role(body_reader& body, const context& ctx) {
  auto role = body.string("role", true);
  if (role && !ctx.svc.accounts->roles().find(*role)) {
    body.add_error("role", "must be one of owner, admin, member, viewer");
    return std::nullopt;
  }
  return role;
}

}  // namespace

// GET /api/members
awaitable<response> list_members(context& ctx) {
  auto members = co_await ctx.svc.accounts->list_members(ctx.who());
  boost::json::array items;
  for (const auto& m : members) items.push_back(to_json(m));
  co_return json_response(200, {{"items", std::move(items)}});
}

// POST /api/invitations
awaitable<response> create_invitation(context& ctx) {
  body_reader body(ctx.body);
  auto email = body.email("email", true);
  auto role = read_role(body, ctx);
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  auto issued = co_await ctx.svc.accounts->invite(ctx.who(), *email, *role);
  if (!issued) co_return problem(issued.err(), ctx.request_id);
  co_return json_response(201, {{"id", issued->id},
                                {"invitation", issued->token},
                                {"email", issued->email},
                                {"role", issued->role},
                                {"expires_at", issued->expires_at},
                                {"invited_by", issued->invited_by}});
}

// GET /api/invitations
awaitable<response> list_invitations(context& ctx) {
  auto pending = co_await ctx.svc.accounts->list_invitations(ctx.who());
  boost::json::array items;
  for (const auto& i : pending) {
    boost::json::value invited_by = nullptr;
    if (i.invited_by) invited_by = *i.invited_by;
    items.push_back({{"id", i.id},
                     {"email", i.email},
                     {"role", i.role},
                     {"invited_by", invited_by},
                     {"created_at", i.created_at},
                     {"expires_at", i.expires_at}});
  }
  co_return json_response(200, {{"items", std::move(items)}});
}

// DELETE /api/invitations/:id
awaitable<response> delete_invitation(context& ctx) {
  auto id = uuid_param(ctx.params);
  if (!id) co_return problem(id.err(), ctx.request_id);
  auto revoked = co_await ctx.svc.accounts->revoke_invitation(ctx.who(), *id);
  if (!revoked) co_return problem(revoked.err(), ctx.request_id);
  co_return no_content();
}

// PUT /api/members/:user_id
awaitable<response> update_member(context& ctx) {
  auto id = uuid_param(ctx.params);
  if (!id) co_return problem(id.err(), ctx.request_id);
  body_reader body(ctx.body);
  auto role = read_role(body, ctx);
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  auto changed = co_await ctx.svc.accounts->change_role(ctx.who(), *id, *role);
  if (!changed) co_return problem(changed.err(), ctx.request_id);
  co_return json_response(200, to_json(*changed));
}

// DELETE /api/members/:user_id
awaitable<response> delete_member(context& ctx) {
  auto id = uuid_param(ctx.params);
  if (!id) co_return problem(id.err(), ctx.request_id);
  auto removed = co_await ctx.svc.accounts->remove_member(ctx.who(), *id, false);
  if (!removed) co_return problem(removed.err(), ctx.request_id);
  co_return no_content();
}

}  // namespace tenantd::api::handlers
