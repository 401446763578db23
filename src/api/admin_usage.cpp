// GET /admin/usage: per-tenant usage by minute from master, plus what this process has not
// flushed yet, with totals per tenant. The dispatcher has checked the admin token.
#include <boost/json/array.hpp>
#include <boost/url/parse_query.hpp>

#include <algorithm>
#include <chrono>
#include <map>
#include <utility>

#include "api/dto.hpp"
#include "api/handlers.hpp"
#include "api/problem.hpp"
#include "db/usage_repository.hpp"
#include "domain/usage.hpp"
#include "domain/validation.hpp"
#include "tenancy/usage_recorder.hpp"

namespace tenantd::api::handlers {
namespace {

constexpr std::int64_t default_span = 3600;                      // the last hour
constexpr std::int64_t longest_span = std::int64_t{31} * 86400;  // a month and a day
constexpr std::int64_t max_rows = 100000;                        // minute rows in one answer

struct usage_query {
  std::int64_t from{0};
  std::int64_t to{0};
  std::optional<std::string> tenant_id;
};

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

result<usage_query> parse_usage_query(std::string_view query) {
  std::optional<std::int64_t> from, to;
  usage_query q;
  std::vector<field_error> errors;
  if (!query.empty()) {
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
      if (key == "from" || key == "to") {
        auto t = parse_utc_time(value);
        if (!t)
          errors.push_back({key, "must be an ISO-8601 UTC time such as 2026-01-31T12:00:00Z"});
        else
          (key == "from" ? from : to) = t;
      } else if (key == "tenant") {
        if (validation::check_tenant_id(value))
          errors.push_back({"tenant", "must be a tenant id"});
        else
          q.tenant_id = value;
      } else {
        // A misspelt filter must not silently widen a billing query.
        errors.push_back({key, "is not a parameter of this route (from, to, tenant)"});
      }
    }
  }
  if (!errors.empty()) return error{errc::invalid_input, "the query parameters are invalid", std::move(errors)};
  q.to = to.value_or(from ? *from + default_span : unix_now());
  q.from = from.value_or(q.to - default_span);
  if (q.from >= q.to)
    return error{errc::invalid_input, "the query parameters are invalid", {{"from", "must be before to"}}};
  if (q.to - q.from > longest_span)
    return error{
        errc::invalid_input, "the query parameters are invalid", {{"to", "must be at most 31 days after from"}}};
  return q;
}

double milliseconds(std::int64_t micros) { return static_cast<double>(micros) / 1000.0; }

boost::json::object counts_json(const usage_counts& n) {
  boost::json::object out;
  out["requests"] = n.requests;
  out["errors_4xx"] = n.errors_4xx;
  out["errors_5xx"] = n.errors_5xx;
  out["latency_ms"] = {{"p50", usage_latency_quantile_ms(n.latency, 0.50)},
                       {"p95", usage_latency_quantile_ms(n.latency, 0.95)},
                       {"p99", usage_latency_quantile_ms(n.latency, 0.99)}};
  boost::json::array buckets;
  for (const auto b : n.latency) buckets.push_back(b);
  out["latency_buckets"] = std::move(buckets);
  out["statements"] = n.statements;
  out["db_time_ms"] = milliseconds(n.db_time_us);
  out["connections_max"] = n.connections_max;
  if (n.db_size_bytes >= 0)
    out["db_size_bytes"] = n.db_size_bytes;
  else
    out["db_size_bytes"] = nullptr;
  if (n.last_activity_ms > 0)
    out["last_activity"] = format_utc_time(n.last_activity_ms / 1000);
  else
    out["last_activity"] = nullptr;
  return out;
}

}  // namespace

// GET /admin/usage
awaitable<response> admin_usage(context& ctx) {
  auto query = parse_usage_query(ctx.req.query);
  if (!query) co_return problem(query.err(), ctx.request_id);
  const db::usage::range_query range{query->from, query->to, query->tenant_id, max_rows};
  db::usage::range_result stored;
  {
    auto conn = co_await ctx.svc.master->acquire();
    stored = co_await db::usage::find(*conn, range);
  }
  // Rows by (tenant, minute): master's, then this process's counts not flushed yet.
  std::map<std::pair<std::string, std::int64_t>, usage_counts> rows;
  for (auto& r : stored.rows) rows[{std::move(r.tenant_id), r.minute}] = r.counts;
  if (ctx.svc.usage != nullptr)
    for (const auto& r : ctx.svc.usage->snapshot())
      if (r.minute >= query->from && r.minute < query->to && (!query->tenant_id || *query->tenant_id == r.tenant_id))
        rows[{r.tenant_id, r.minute}].merge(r.counts);

  boost::json::array items;
  std::map<std::string, usage_counts> per_tenant;
  usage_counts all;
  for (const auto& [key, counts] : rows) {
    auto item = counts_json(counts);
    item["tenant_id"] = key.first;
    item["minute"] = format_utc_time(key.second);
    items.push_back(std::move(item));
    per_tenant[key.first].merge(counts);
    all.merge(counts);
  }
  boost::json::array tenants;
  for (const auto& [tenant, counts] : per_tenant) {
    auto t = counts_json(counts);
    t["tenant_id"] = tenant;
    tenants.push_back(std::move(t));
  }
  boost::json::array bounds;
  for (const auto b : usage_latency_bounds_us) bounds.push_back(milliseconds(b));
  boost::json::object body;
  body["from"] = format_utc_time(query->from);
  body["to"] = format_utc_time(query->to);
  body["latency_bucket_bounds_ms"] = std::move(bounds);
  body["items"] = std::move(items);
  body["tenants"] = std::move(tenants);
  body["totals"] = counts_json(all);
  body["truncated"] = stored.truncated;
  co_return json_response(200, std::move(body));
}

}  // namespace tenantd::api::handlers
