// The tenant's users (its directory): list, create an entry, read, update, delete.
#include <boost/url/parse_query.hpp>

#include <charconv>

#include "api/dto.hpp"
#include "api/handlers.hpp"
#include "api/problem.hpp"
#include "db/user_repository.hpp"
#include "domain/validation.hpp"

namespace tenantd::api::handlers {
namespace {

std::optional<std::int64_t> parse_int(std::string_view text, std::int64_t min, std::int64_t max) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty() || value < min || value > max)
    return std::nullopt;
  return value;
}

result<user_query> parse_user_query(std::string_view query) {
  user_query q;
  std::vector<field_error> errors;
  if (query.empty()) return q;
  auto parsed = boost::urls::parse_query(query);
  if (!parsed) return error{errc::invalid_input, "the query string is malformed", {}};
  std::vector<std::string> seen;
  for (auto param : *parsed) {
    const std::string key = param.key.decode();
    const std::string value = param.has_value ? std::string(param.value.decode()) : std::string();
    if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
      errors.push_back({key, "must be given once"});
      continue;
    }
    seen.push_back(key);
    if (key == "page") {
      if (auto v = parse_int(value, 1, 1000000))
        q.page = *v;
      else
        errors.push_back({"page", "must be a whole number of at least 1"});
    } else if (key == "page_size") {
      if (auto v = parse_int(value, 1, 100))
        q.page_size = *v;
      else
        errors.push_back({"page_size", "must be a whole number from 1 to 100"});
    } else if (key == "email" || key == "q") {
      if (!validation::is_clean_utf8(value) || value.size() > 254) {
        errors.push_back({key, "must be valid UTF-8 of at most 254 bytes"});
        continue;
      }
      auto trimmed = validation::trim(value);
      if (trimmed.empty()) continue;
      (key == "email" ? q.email : q.q) = trimmed;
    }
  }
  if (!errors.empty()) return error{errc::invalid_input, "the query parameters are invalid", std::move(errors)};
  return q;
}

}  // namespace

// GET /api/users
awaitable<response> list_users(context& ctx) {
  auto query = parse_user_query(ctx.req.query);
  if (!query) co_return problem(query.err(), ctx.request_id);
  // A search may scan: it takes an exclusive connection (capped by the tenant's pool size),
  // never the pipelined one, where it would hold up the point statements queued behind it.
  auto conn = co_await ctx.svc.databases->acquire(ctx.who().tenant_id, tenancy::intent::read);
  auto page = co_await db::users::list(*conn, *query);
  boost::json::array items;
  for (const auto& u : page.items) items.push_back(to_json(u, ctx.who().tenant_id));
  co_return json_response(
      200,
      {{"items", std::move(items)}, {"page", query->page}, {"page_size", query->page_size}, {"total", page.total}});
}

// POST /api/users
awaitable<response> create_user(context& ctx) {
  body_reader body(ctx.body);
  auto email = body.email("email", true);
  auto first = body.name("first_name", true, 1, 100);
  auto last = body.name("last_name", true, 1, 100);
  // A directory entry only: logins and roles come with consent (an invitation), never from here.
  if (body.has("password"))
    body.add_error("password", "nobody sets another person's password; invite them with POST /api/invitations");
  if (body.has("role")) body.add_error("role", "a role comes with membership; invite them with POST /api/invitations");
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);

  // A single statement: the pool may pipeline it on its shared connection.
  auto tenant_db = co_await ctx.svc.databases->runner(ctx.who().tenant_id, tenancy::intent::write);
  const user_record entry{validation::new_uuid(), *email, *first, *last, {}, {}};
  auto created = co_await db::users::insert(*tenant_db, entry);
  if (!created) co_return problem(created.err(), ctx.request_id);
  co_return json_response(201, to_json_text(*created, ctx.who().tenant_id));
}

// GET /api/users/:id
awaitable<response> get_user(context& ctx) {
  auto id = uuid_param(ctx.params);
  if (!id) co_return problem(id.err(), ctx.request_id);
  auto tenant_db = co_await ctx.svc.databases->runner(ctx.who().tenant_id);
  auto user = co_await db::users::find(*tenant_db, *id);
  if (!user) co_return problem(make_error(errc::not_found, "no such user"), ctx.request_id);
  co_return json_response(200, to_json_text(*user, ctx.who().tenant_id));
}

// PUT /api/users/:id, PATCH /api/users/:id
awaitable<response> update_user(context& ctx) {
  auto id = uuid_param(ctx.params);
  if (!id) co_return problem(id.err(), ctx.request_id);
  body_reader body(ctx.body);
  user_changes changes;
  changes.email = body.email("email", false);
  changes.first_name = body.name("first_name", false, 1, 100);
  changes.last_name = body.name("last_name", false, 1, 100);
  if (!body.ok()) co_return problem(body.failure(), ctx.request_id);
  auto updated = co_await ctx.svc.accounts->update_user(ctx.who(), *id, changes);
  if (!updated) co_return problem(updated.err(), ctx.request_id);
  co_return json_response(200, to_json_text(*updated, ctx.who().tenant_id));
}

// DELETE /api/users/:id
awaitable<response> delete_user(context& ctx) {
  auto id = uuid_param(ctx.params);
  if (!id) co_return problem(id.err(), ctx.request_id);
  auto removed = co_await ctx.svc.accounts->remove_member(ctx.who(), *id, true);
  if (!removed) co_return problem(removed.err(), ctx.request_id);
  co_return no_content();
}

}  // namespace tenantd::api::handlers
