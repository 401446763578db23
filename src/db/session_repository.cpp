// Session storage bounds: refresh-token trimming, the purge, tenant-wide endings.
#include "db/session_repository.hpp"

#include <array>

namespace tenantd::db::sessions {
namespace {

template <class... A>
std::array<param, sizeof...(A)> params(const A&... a) {
  return {param(a)...};
}

constexpr statement trim_sql{
    "s_trim_refresh",
    "DELETE FROM refresh_tokens WHERE session_id = $1 AND used_at IS NOT NULL AND token_hash NOT IN ("
    "  SELECT token_hash FROM refresh_tokens WHERE session_id = $1 AND used_at IS NOT NULL "
    "  ORDER BY used_at DESC LIMIT $2::bigint)"};
constexpr statement purge_sql{"s_purge",
                              "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions "
                              "WHERE ended_at < now() - make_interval(secs => $1::bigint) "
                              "   OR expires_at < now() - make_interval(secs => $1::bigint) LIMIT $2::bigint)"};
constexpr statement end_tenant_sql{"s_end_tenant",
                                   "UPDATE sessions SET ended_at = now(), end_reason = $2 "
                                   "WHERE tenant_id = $1 AND ended_at IS NULL"};
constexpr statement delete_tenant_sql{"s_delete_tenant", "DELETE FROM sessions WHERE tenant_id = $1"};

}  // namespace

awaitable<std::int64_t> trim_refresh_tokens(connection& c, const std::string& session_id, std::int64_t keep) {
  const auto text = std::to_string(keep);
  auto r = co_await c.exec_prepared(trim_sql, params(session_id, text));
  co_return r.affected_rows();
}

awaitable<std::int64_t> purge(connection& c, std::int64_t retention_seconds, std::int64_t batch) {
  const auto retention = std::to_string(retention_seconds);
  const auto limit = std::to_string(batch);
  auto r = co_await c.exec_prepared(purge_sql, params(retention, limit));
  co_return r.affected_rows();
}

awaitable<std::int64_t> end_tenant_sessions(connection& c, const std::string& tenant_id, const std::string& reason) {
  auto r = co_await c.exec_prepared(end_tenant_sql, params(tenant_id, reason));
  co_return r.affected_rows();
}

awaitable<std::int64_t> delete_tenant_sessions(connection& c, const std::string& tenant_id) {
  auto r = co_await c.exec_prepared(delete_tenant_sql, params(tenant_id));
  co_return r.affected_rows();
}

}  // namespace tenantd::db::sessions
