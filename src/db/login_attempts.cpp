// Login attempts in the master database: one guard row per account key, locked while an
// attempt is reserved, and one row per attempt.
#include "db/login_attempts.hpp"

#include <algorithm>
#include <array>

#include "db/transaction.hpp"

namespace tenantd::db::login_attempts {
namespace {

template <class... A>
std::array<param, sizeof...(A)> params(const A&... a) {
  return {param(a)...};
}

constexpr statement lock_guard_sql{"la_lock_guard",
                                   "INSERT INTO login_guards (account_key) VALUES ($1) "
                                   "ON CONFLICT (account_key) DO UPDATE SET touched_at = now()"};
// Runs after the guard row is locked, as its own statement: it sees every attempt committed
// before the lock was granted.
constexpr statement reserve_sql{
    "la_reserve",
    "WITH recent AS ("
    "  SELECT count(*) FILTER (WHERE failed_at > statement_timestamp() - interval '15 minutes') AS short_failures,"
    "         count(*) FILTER (WHERE failed_at IS NOT NULL) AS hour_failures,"
    "         count(*) FILTER (WHERE failed_at IS NULL"
    "                          AND started_at > statement_timestamp() - make_interval(secs => $4::bigint)) AS pending,"
    "         min(failed_at) FILTER (WHERE failed_at > statement_timestamp() - interval '15 minutes') AS short_oldest,"
    "         min(failed_at) AS hour_oldest"
    "  FROM login_attempts WHERE account_key = $1"
    "    AND (failed_at > statement_timestamp() - interval '1 hour' OR failed_at IS NULL)),"
    " admitted AS ("
    "  INSERT INTO login_attempts (account_key) SELECT $1 FROM recent"
    "  WHERE short_failures + pending < $2::bigint AND hour_failures + pending < $3::bigint RETURNING id)"
    "SELECT (SELECT id FROM admitted), short_failures >= $2::bigint, hour_failures >= $3::bigint,"
    "       ceil(extract(epoch FROM short_oldest + interval '15 minutes' - statement_timestamp()))::bigint,"
    "       ceil(extract(epoch FROM hour_oldest + interval '1 hour' - statement_timestamp()))::bigint "
    "FROM recent"};
constexpr statement fail_sql{"la_fail", "UPDATE login_attempts SET failed_at = clock_timestamp() WHERE id = $1"};
constexpr statement release_sql{"la_release", "DELETE FROM login_attempts WHERE id = $1"};
constexpr statement purge_attempts_sql{"la_purge_attempts",
                                       "DELETE FROM login_attempts WHERE id IN (SELECT id FROM login_attempts "
                                       "WHERE started_at < now() - interval '1 hour' LIMIT $1::bigint)"};
constexpr statement purge_guards_sql{
    "la_purge_guards",
    "DELETE FROM login_guards WHERE account_key IN (SELECT g.account_key FROM login_guards g "
    "WHERE g.touched_at < now() - interval '1 hour' "
    "AND NOT EXISTS (SELECT 1 FROM login_attempts a WHERE a.account_key = g.account_key) LIMIT $1::bigint)"};

}  // namespace

awaitable<reservation> reserve(connection& c, const std::string& account_key, const limits& limit) {
  const auto short_limit = std::to_string(limit.per_15_minutes);
  const auto hour_limit = std::to_string(limit.per_hour);
  const auto lease = std::to_string(in_flight_lease_seconds);
  auto tx = co_await transaction::begin(c);
  co_await c.exec_prepared(lock_guard_sql, params(account_key));
  auto r = co_await c.exec_prepared(reserve_sql, params(account_key, short_limit, hour_limit, lease));
  co_await tx.commit();
  reservation out;
  if (!r.is_null(0, 0)) {
    out.id = r.int64(0, 0);
    co_return out;
  }
  // Refused: the window that blocks says how long; attempts in flight only block briefly.
  std::int64_t wait = 1;
  if (r.boolean(0, 1) && !r.is_null(0, 3)) wait = std::max(wait, r.int64(0, 3));
  if (r.boolean(0, 2) && !r.is_null(0, 4)) wait = std::max(wait, r.int64(0, 4));
  out.retry_after = wait;
  co_return out;
}

awaitable<void> record_failure(connection& c, std::int64_t id) {
  const auto text = std::to_string(id);
  co_await c.exec_prepared(fail_sql, params(text));
}

awaitable<void> release(connection& c, std::int64_t id) {
  const auto text = std::to_string(id);
  co_await c.exec_prepared(release_sql, params(text));
}

awaitable<std::int64_t> purge(connection& c, std::int64_t batch) {
  const auto text = std::to_string(batch);
  auto attempts = co_await c.exec_prepared(purge_attempts_sql, params(text));
  auto guards = co_await c.exec_prepared(purge_guards_sql, params(text));
  co_return attempts.affected_rows() + guards.affected_rows();
}

}  // namespace tenantd::db::login_attempts
