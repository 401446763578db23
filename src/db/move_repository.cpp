// Master SQL for tenant moves.
#include "db/move_repository.hpp"

#include <array>
#include <span>
#include <stdexcept>

#include "db/master_repository.hpp"
#include "db/transaction.hpp"

namespace tenantd::db::moves {
namespace {

#define TENANTD_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
#define MOVE_COLUMNS                                                                                             \
  "id::text, tenant_id, from_server, to_server, database_name, state, error, attempts, freeze_ms, keep_source, " \
  "flipped_at IS NOT NULL, " TENANTD_UTC("started_at") ", " TENANTD_UTC("updated_at") ", " TENANTD_UTC(          \
      "finished_at") ", " TENANTD_UTC("source_dropped_at")

constexpr statement insert_sql{
    "mv_insert",
    "INSERT INTO tenant_moves (id, tenant_id, from_server, to_server, database_name, keep_source, owner, "
    "heartbeat_at) VALUES ($1::uuid, $2, $3, $4, $5, $6::bool, $7, now()) ON CONFLICT DO NOTHING "
    "RETURNING " MOVE_COLUMNS};
constexpr statement find_sql{"mv_find", "SELECT " MOVE_COLUMNS " FROM tenant_moves WHERE id = $1::uuid"};
constexpr statement list_sql{"mv_list",
                             "SELECT " MOVE_COLUMNS " FROM tenant_moves ORDER BY started_at DESC, id LIMIT $1::int"};
constexpr statement of_tenant_sql{
    "mv_of_tenant", "SELECT " MOVE_COLUMNS " FROM tenant_moves WHERE tenant_id = $1 ORDER BY started_at DESC, id"};
constexpr statement set_state_sql{
    "mv_set_state",
    "UPDATE tenant_moves SET state = $3, heartbeat_at = now(), updated_at = now() "
    "WHERE id = $1::uuid AND owner = $2 AND state NOT IN ('done', 'aborted') RETURNING id"};
constexpr statement renew_sql{"mv_renew",
                              "UPDATE tenant_moves SET heartbeat_at = now() WHERE id = $1::uuid AND owner = $2 "
                              "AND state NOT IN ('done', 'aborted') RETURNING id"};
constexpr statement attempt_sql{
    "mv_attempt", "UPDATE tenant_moves SET attempts = attempts + 1, updated_at = now() WHERE id = $1::uuid"};
// Under READ COMMITTED a row another claimer updated first is re-checked against the WHERE
// after its lock is granted, so each stale move is claimed once.
constexpr statement claim_sql{
    "mv_claim",
    "UPDATE tenant_moves SET owner = $1, heartbeat_at = now(), updated_at = now() "
    "WHERE state NOT IN ('done', 'aborted') AND (heartbeat_at IS NULL OR heartbeat_at < now() - $2::int * "
    "interval '1 second') RETURNING " MOVE_COLUMNS};
constexpr statement flip_placement_sql{
    "mv_flip_placement", "UPDATE tenants SET db_server = $3 WHERE id = $1 AND db_server = $2 RETURNING id"};
constexpr statement flip_move_sql{
    "mv_flip_move",
    "UPDATE tenant_moves SET flipped_at = now(), freeze_ms = $2::float8, updated_at = now(), heartbeat_at = now() "
    "WHERE id = $1::uuid"};
constexpr statement finish_sql{
    "mv_finish",
    "UPDATE tenant_moves SET state = 'done', finished_at = now(), updated_at = now(), owner = NULL, "
    "source_drop_after = CASE WHEN keep_source THEN NULL ELSE now() + $2::bigint * interval '1 second' END "
    "WHERE id = $1::uuid"};
constexpr statement abort_sql{
    "mv_abort",
    "UPDATE tenant_moves SET state = 'aborted', error = $2, finished_at = now(), updated_at = now(), owner = NULL "
    "WHERE id = $1::uuid"};
constexpr statement sources_due_sql{
    "mv_sources_due", "SELECT " MOVE_COLUMNS
                      " FROM tenant_moves WHERE state = 'done' AND NOT keep_source "
                      "AND source_dropped_at IS NULL AND source_drop_after <= now() ORDER BY finished_at"};
constexpr statement source_dropped_sql{
    "mv_source_dropped", "UPDATE tenant_moves SET source_dropped_at = now(), updated_at = now() WHERE id = $1::uuid"};

move_record move_from(const result_set& r, int row) {
  move_record m;
  m.id = r.string(row, 0);
  m.tenant_id = r.string(row, 1);
  m.from = r.string(row, 2);
  m.to = r.string(row, 3);
  m.database_name = r.string(row, 4);
  const auto state = parse_move_state(r.text(row, 5));
  if (!state) throw std::runtime_error("master holds a move state this version does not know: " + r.string(row, 5));
  m.state = *state;
  m.error = r.optional_string(row, 6);
  m.attempts = static_cast<int>(r.int64(row, 7));
  if (!r.is_null(row, 8)) m.freeze_ms = std::stod(r.string(row, 8));
  m.keep_source = r.boolean(row, 9);
  m.flipped = r.boolean(row, 10);
  m.started_at = r.string(row, 11);
  m.updated_at = r.string(row, 12);
  m.finished_at = r.optional_string(row, 13);
  m.source_dropped_at = r.optional_string(row, 14);
  return m;
}

std::vector<move_record> moves_from(const result_set& r) {
  std::vector<move_record> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(move_from(r, i));
  return out;
}

const std::span<const param> no_params{};

}  // namespace

awaitable<std::optional<move_record>> insert(connection& c, const new_move& move) {
  const std::string keep = move.keep_source ? "true" : "false";
  const std::array<param, 7> p{param(move.id),   param(move.tenant_id),     param(move.from),
                               param(move.to),   param(move.database_name), param(keep),
                               param(move.owner)};
  auto r = co_await c.exec_prepared(insert_sql, p);
  if (r.empty()) co_return std::nullopt;
  co_return move_from(r, 0);
}

awaitable<std::optional<move_record>> find(connection& c, const std::string& id) {
  const std::array<param, 1> p{param(id)};
  auto r = co_await c.exec_prepared(find_sql, p);
  if (r.empty()) co_return std::nullopt;
  co_return move_from(r, 0);
}

awaitable<std::vector<move_record>> list(connection& c, int limit) {
  const auto n = std::to_string(limit);
  const std::array<param, 1> p{param(n)};
  auto r = co_await c.exec_prepared(list_sql, p);
  co_return moves_from(r);
}

awaitable<std::vector<move_record>> of_tenant(connection& c, const std::string& tenant_id) {
  const std::array<param, 1> p{param(tenant_id)};
  auto r = co_await c.exec_prepared(of_tenant_sql, p);
  co_return moves_from(r);
}

awaitable<bool> set_state(connection& c, const std::string& id, const std::string& owner, move_state state) {
  const std::string text(to_string(state));
  const std::array<param, 3> p{param(id), param(owner), param(text)};
  auto r = co_await c.exec_prepared(set_state_sql, p);
  co_return !r.empty();
}

awaitable<bool> renew(connection& c, const std::string& id, const std::string& owner) {
  const std::array<param, 2> p{param(id), param(owner)};
  auto r = co_await c.exec_prepared(renew_sql, p);
  co_return !r.empty();
}

awaitable<void> count_attempt(connection& c, const std::string& id) {
  const std::array<param, 1> p{param(id)};
  (void)co_await c.exec_prepared(attempt_sql, p);
}

awaitable<std::vector<move_record>> claim_stale(connection& c, const std::string& owner, int lease_seconds) {
  const auto lease = std::to_string(lease_seconds);
  const std::array<param, 2> p{param(owner), param(lease)};
  auto r = co_await c.exec_prepared(claim_sql, p);
  co_return moves_from(r);
}

awaitable<bool> flip(connection& c, const move_record& move, double freeze_ms) {
  auto tx = co_await transaction::begin(c);
  const std::array<param, 3> placement{param(move.tenant_id), param(move.from), param(move.to)};
  auto r = co_await c.exec_prepared(flip_placement_sql, placement);
  if (r.empty()) co_return false;  // the transaction rolls back
  const auto freeze = std::to_string(freeze_ms);
  const std::array<param, 2> p{param(move.id), param(freeze)};
  (void)co_await c.exec_prepared(flip_move_sql, p);
  co_await master::notify_invalidation(c, invalidation::of_tenant(move.tenant_id));
  co_await tx.commit();
  co_return true;
}

awaitable<void> finish(connection& c, const std::string& id, long long grace_seconds) {
  const auto grace = std::to_string(grace_seconds);
  const std::array<param, 2> p{param(id), param(grace)};
  (void)co_await c.exec_prepared(finish_sql, p);
}

awaitable<void> abort(connection& c, const std::string& id, const std::string& error) {
  const std::array<param, 2> p{param(id), param(error)};
  (void)co_await c.exec_prepared(abort_sql, p);
}

awaitable<std::vector<move_record>> sources_due(connection& c) {
  auto r = co_await c.exec_prepared(sources_due_sql, no_params);
  co_return moves_from(r);
}

awaitable<void> mark_source_dropped(connection& c, const std::string& id) {
  const std::array<param, 1> p{param(id)};
  (void)co_await c.exec_prepared(source_dropped_sql, p);
}

}  // namespace tenantd::db::moves
