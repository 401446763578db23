// Per-tenant usage rows in master: additive upserts, range reads, retention.
#include "db/usage_repository.hpp"

#include <array>
#include <charconv>

#include "db/transaction.hpp"

namespace tenantd::db::usage {
namespace {

template <class... A>
std::array<param, sizeof...(A)> params(const A&... a) {
  return {param(a)...};
}

// The bucket arrays are added element by element (both have usage_latency_bucket_count).
constexpr statement add_sql{
    "usage_add",
    "INSERT INTO tenant_usage (tenant_id, minute, requests, errors_4xx, errors_5xx, latency_buckets, statements,"
    " db_time_us, connections_max, db_size_bytes, last_activity)"
    " VALUES ($1, to_timestamp($2::bigint), $3::bigint, $4::bigint, $5::bigint, $6::bigint[], $7::bigint,"
    " $8::bigint, $9::bigint, $10::bigint, to_timestamp($11::bigint / 1000.0))"
    " ON CONFLICT (tenant_id, minute) DO UPDATE SET"
    " requests = tenant_usage.requests + EXCLUDED.requests,"
    " errors_4xx = tenant_usage.errors_4xx + EXCLUDED.errors_4xx,"
    " errors_5xx = tenant_usage.errors_5xx + EXCLUDED.errors_5xx,"
    " latency_buckets = ARRAY(SELECT coalesce(a, 0) + coalesce(b, 0)"
    "   FROM unnest(tenant_usage.latency_buckets, EXCLUDED.latency_buckets) WITH ORDINALITY AS u(a, b, i) ORDER BY i),"
    " statements = tenant_usage.statements + EXCLUDED.statements,"
    " db_time_us = tenant_usage.db_time_us + EXCLUDED.db_time_us,"
    " connections_max = greatest(tenant_usage.connections_max, EXCLUDED.connections_max),"
    " db_size_bytes = greatest(tenant_usage.db_size_bytes, EXCLUDED.db_size_bytes),"
    " last_activity = greatest(tenant_usage.last_activity, EXCLUDED.last_activity)"};

constexpr statement find_sql{
    "usage_find",
    "SELECT tenant_id, extract(epoch FROM minute)::bigint, requests, errors_4xx, errors_5xx,"
    " array_to_string(latency_buckets, ','), statements, db_time_us, connections_max, db_size_bytes,"
    " (extract(epoch FROM last_activity) * 1000)::bigint"
    " FROM tenant_usage WHERE minute >= to_timestamp($1::bigint) AND minute < to_timestamp($2::bigint)"
    " AND ($3::text IS NULL OR tenant_id = $3) ORDER BY tenant_id, minute LIMIT $4::bigint"};

constexpr statement purge_sql{"usage_purge",
                              "DELETE FROM tenant_usage WHERE minute < now() - make_interval(days => $1::int)"};

constexpr statement size_sql{"usage_database_size", "SELECT pg_database_size(current_database())"};

std::string array_literal(const std::array<std::int64_t, usage_latency_bucket_count>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(values[i]);
  }
  out += '}';
  return out;
}

std::array<std::int64_t, usage_latency_bucket_count> parse_buckets(std::string_view text) {
  std::array<std::int64_t, usage_latency_bucket_count> out{};
  for (std::size_t i = 0; i < out.size() && !text.empty(); ++i) {
    const auto comma = text.find(',');
    const auto part = text.substr(0, comma);
    std::from_chars(part.data(), part.data() + part.size(), out[i]);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  return out;
}

}  // namespace

awaitable<void> add(connection& c, const std::vector<usage_row>& rows) {
  if (rows.empty()) co_return;
  auto tx = co_await transaction::begin(c);
  for (const auto& r : rows) {
    const auto& n = r.counts;
    const auto minute = std::to_string(r.minute);
    const auto requests = std::to_string(n.requests);
    const auto e4 = std::to_string(n.errors_4xx);
    const auto e5 = std::to_string(n.errors_5xx);
    const auto buckets = array_literal(n.latency);
    const auto statements = std::to_string(n.statements);
    const auto db_time = std::to_string(n.db_time_us);
    const auto connections = std::to_string(n.connections_max);
    const auto size = std::to_string(n.db_size_bytes);
    const auto last = std::to_string(n.last_activity_ms);
    const std::array<param, 11> values{r.tenant_id,
                                       minute,
                                       requests,
                                       e4,
                                       e5,
                                       buckets,
                                       statements,
                                       db_time,
                                       connections,
                                       n.db_size_bytes >= 0 ? param(size) : std::nullopt,
                                       n.last_activity_ms > 0 ? param(last) : std::nullopt};
    co_await c.exec_prepared(add_sql, values);
  }
  co_await tx.commit();
}

awaitable<range_result> find(connection& c, const range_query& query) {
  const auto from = std::to_string(query.from);
  const auto to = std::to_string(query.to);
  const auto limit = std::to_string(query.max_rows + 1);
  const std::array<param, 4> values{from, to, query.tenant_id ? param(*query.tenant_id) : std::nullopt, limit};
  const auto r = co_await c.exec_prepared(find_sql, values);
  range_result out;
  const int rows = r.rows();
  for (int i = 0; i < rows; ++i) {
    if (i >= query.max_rows) {
      out.truncated = true;
      break;
    }
    usage_row row;
    row.tenant_id = r.string(i, 0);
    row.minute = r.int64(i, 1);
    auto& n = row.counts;
    n.requests = r.int64(i, 2);
    n.errors_4xx = r.int64(i, 3);
    n.errors_5xx = r.int64(i, 4);
    n.latency = parse_buckets(r.text(i, 5));
    n.statements = r.int64(i, 6);
    n.db_time_us = r.int64(i, 7);
    n.connections_max = r.int64(i, 8);
    n.db_size_bytes = r.is_null(i, 9) ? -1 : r.int64(i, 9);
    n.last_activity_ms = r.is_null(i, 10) ? 0 : r.int64(i, 10);
    out.rows.push_back(std::move(row));
  }
  co_return out;
}

awaitable<std::int64_t> purge(connection& c, std::int64_t retention_days) {
  const auto days = std::to_string(retention_days);
  const auto r = co_await c.exec_prepared(purge_sql, params(days));
  co_return r.affected_rows();
}

awaitable<std::int64_t> database_size(statement_runner& runner) {
  const auto r = co_await runner.exec_prepared(size_sql, {});
  co_return r.int64(0, 0);
}

}  // namespace tenantd::db::usage
