// Master SQL for database servers and tenant placement.
#include "db/server_repository.hpp"

#include <algorithm>
#include <array>
#include <span>
#include <stdexcept>
#include <string_view>

#include "db/master_repository.hpp"
#include "db/transaction.hpp"

namespace tenantd::db::servers {
namespace {

#define TENANTD_UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
// Tenants that are not deleted count against a server (a NULL server is main: rows older
// than V006).
#define SERVER_COLUMNS \
  "s.name, s.host, s.port, s.state, s.weight, s.max_tenants, " TENANTD_UTC("s.created_at") ", " \
  "s.url, (SELECT count(*) FROM tenants t WHERE COALESCE(t.db_server, 'main') = s.name "          \
  "AND t.status <> 'deleted')"

constexpr statement list_sql{"sv_list", "SELECT " SERVER_COLUMNS " FROM db_servers s ORDER BY s.name"};
// Locking and counting are two statements: under READ COMMITTED a statement that waited for a
// row lock still returns what its snapshot (taken before the wait) saw, so counts read in the
// locking statement would miss the tenant the previous lock holder inserted. The statement
// after the lock has a fresh snapshot.
constexpr statement lock_all_sql{"sv_lock_all", "SELECT name FROM db_servers ORDER BY name FOR UPDATE"};
constexpr statement find_sql{"sv_find", "SELECT " SERVER_COLUMNS " FROM db_servers s WHERE s.name = $1"};
constexpr statement lock_sql{"sv_lock",
                             "SELECT " SERVER_COLUMNS " FROM db_servers s WHERE s.name = $1 FOR UPDATE OF s"};
constexpr statement insert_sql{
    "sv_insert",
    "INSERT INTO db_servers (name, host, port, url, weight, max_tenants) VALUES ($1, $2, $3::int, $4, $5::int, "
    "$6::int) ON CONFLICT DO NOTHING RETURNING name"};
constexpr statement update_sql{
    "sv_update",
    "UPDATE db_servers SET state = COALESCE($2, state), weight = COALESCE($3::int, weight), "
    "max_tenants = CASE WHEN $4::bool THEN $5::int ELSE max_tenants END, updated_at = now() WHERE name = $1 "
    "RETURNING name"};
constexpr statement clear_deleted_sql{
    "sv_clear_deleted", "UPDATE tenants SET db_server = NULL WHERE db_server = $1 AND status = 'deleted'"};
constexpr statement delete_sql{"sv_delete", "DELETE FROM db_servers WHERE name = $1"};
constexpr statement record_main_sql{
    "sv_record_main",
    "UPDATE db_servers SET host = $1, port = $2::int, updated_at = now() WHERE name = 'main' "
    "AND (host IS DISTINCT FROM $1 OR port IS DISTINCT FROM $2::int)"};
constexpr statement insert_tenant_sql{
    "sv_insert_tenant",
    "INSERT INTO tenants (id, name, status, database_name, db_server) VALUES ($1, $2, 'provisioning', $3, $4) "
    "ON CONFLICT DO NOTHING RETURNING id"};

// No parameters (named: a braced temporary inside co_await is a GCC 12 hazard).
const std::span<const param> no_params{};

constexpr statement set_server_sql{"sv_set_server", "UPDATE tenants SET db_server = $2 WHERE id = $1"};

server_state state_from(std::string_view text) {
  if (auto state = parse_server_state(text)) return *state;
  throw std::runtime_error("master holds a server state this version does not know: " + std::string(text));
}

stored_server server_from(const result_set& r, int row) {
  stored_server s;
  s.record.name = r.string(row, 0);
  s.record.host = r.string(row, 1);
  s.record.port = static_cast<int>(r.int64(row, 2));
  s.record.state = state_from(r.text(row, 3));
  s.record.weight = r.int64(row, 4);
  if (!r.is_null(row, 5)) s.record.max_tenants = r.int64(row, 5);
  s.record.created_at = r.string(row, 6);
  s.url = r.optional_string(row, 7);
  s.record.tenants = r.int64(row, 8);
  return s;
}

std::vector<stored_server> servers_from(const result_set& r) {
  std::vector<stored_server> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(server_from(r, i));
  return out;
}

}  // namespace

awaitable<std::vector<stored_server>> list(connection& c) {
  auto r = co_await c.exec_prepared(list_sql, no_params);
  co_return servers_from(r);
}

awaitable<std::optional<stored_server>> find(connection& c, const std::string& name) {
  const std::array<param, 1> p{param(name)};
  auto r = co_await c.exec_prepared(find_sql, p);
  if (r.empty()) co_return std::nullopt;
  co_return server_from(r, 0);
}

awaitable<bool> insert(connection& c, const new_server& server) {
  auto tx = co_await transaction::begin(c);
  const auto port = std::to_string(server.port);
  const auto weight = std::to_string(server.weight);
  const auto max = server.max_tenants ? std::optional<std::string>(std::to_string(*server.max_tenants)) : std::nullopt;
  const std::array<param, 6> p{param(server.name), param(server.host), param(port),
                               param(server.url),  param(weight),      max ? param(*max) : param()};
  auto r = co_await c.exec_prepared(insert_sql, p);
  if (r.empty()) co_return false;  // the transaction rolls back
  co_await master::notify_invalidation(c, invalidation::of_server(server.name));
  co_await tx.commit();
  co_return true;
}

awaitable<std::optional<server_record>> update(connection& c, const std::string& name, const server_changes& changes) {
  auto tx = co_await transaction::begin(c);
  const auto state = changes.state ? std::optional<std::string>(std::string(to_string(*changes.state))) : std::nullopt;
  const auto weight = changes.weight ? std::optional<std::string>(std::to_string(*changes.weight)) : std::nullopt;
  const std::string set_max = changes.max_tenants ? "true" : "false";
  const auto max = changes.max_tenants && *changes.max_tenants
                       ? std::optional<std::string>(std::to_string(**changes.max_tenants))
                       : std::nullopt;
  const std::array<param, 5> p{param(name), state ? param(*state) : param(), weight ? param(*weight) : param(),
                               param(set_max), max ? param(*max) : param()};
  auto r = co_await c.exec_prepared(update_sql, p);
  if (r.empty()) co_return std::nullopt;
  co_await master::notify_invalidation(c, invalidation::of_server(name));
  const std::array<param, 1> key{param(name)};
  auto found = co_await c.exec_prepared(find_sql, key);
  co_await tx.commit();
  co_return server_from(found, 0).record;
}

awaitable<removal> remove(connection& c, const std::string& name) {
  auto tx = co_await transaction::begin(c);
  const std::array<param, 1> p{param(name)};
  auto locked = co_await c.exec_prepared(lock_sql, p);
  if (locked.empty()) co_return removal::not_found;
  auto counted = co_await c.exec_prepared(find_sql, p);  // after the lock: see the latest placements
  if (counted.empty()) co_return removal::not_found;
  if (server_from(counted, 0).record.tenants > 0) co_return removal::not_empty;
  co_await c.exec_prepared(clear_deleted_sql, p);
  co_await c.exec_prepared(delete_sql, p);
  co_await master::notify_invalidation(c, invalidation::of_server(name));
  co_await tx.commit();
  co_return removal::removed;
}

awaitable<void> record_main(connection& c, const std::string& host, int port) {
  const auto port_text = std::to_string(port);
  const std::array<param, 2> p{param(host), param(port_text)};
  co_await c.exec_prepared(record_main_sql, p);
}

namespace {

// Under a transaction: locks every server row (until the caller's commit) and picks one.
awaitable<result<std::string>> lock_and_choose(connection& c, const std::optional<std::string>& requested) {
  co_await c.exec_prepared(lock_all_sql, no_params);
  const auto servers = servers_from(co_await c.exec_prepared(list_sql, no_params));
  std::string chosen;
  if (requested) {
    const auto it = std::find_if(servers.begin(), servers.end(),
                                 [&](const stored_server& s) { return s.record.name == *requested; });
    if (it == servers.end()) {
      auto e = make_error(errc::invalid_input, "no database server of that name");
      e.fields.push_back({"server", "no database server of that name"});
      co_return e;
    }
    if (!can_take_tenant(it->record))
      co_return make_error(errc::server_unavailable, "database server " + *requested + " is full or not active");
    chosen = *requested;
  } else {
    std::vector<server_record> records;
    records.reserve(servers.size());
    for (const auto& s : servers) records.push_back(s.record);
    auto pick = choose_server(records);
    if (!pick) co_return make_error(errc::server_unavailable, "no database server can take a new tenant");
    chosen = std::move(*pick);
  }
  co_return chosen;
}

}  // namespace

awaitable<result<std::string>> insert_placed_tenant(connection& c, const std::string& id, const std::string& name,
                                                    const std::string& database_name,
                                                    const std::optional<std::string>& requested) {
  auto tx = co_await transaction::begin(c);
  // Every server row is locked until the tenant row is in: a second creator waits here and
  // then counts this tenant.
  auto placed = co_await lock_and_choose(c, requested);
  if (!placed) co_return placed;
  const std::string chosen = std::move(*placed);
  const std::array<param, 4> p{param(id), param(name), param(database_name), param(chosen)};
  auto inserted = co_await c.exec_prepared(insert_tenant_sql, p);
  if (inserted.empty()) co_return make_error(errc::tenant_exists, "a tenant with this id already exists");
  co_await tx.commit();
  co_return chosen;
}

awaitable<result<std::string>> place_existing_tenant(connection& c, const std::string& id,
                                                     const std::optional<std::string>& requested) {
  auto tx = co_await transaction::begin(c);
  auto placed = co_await lock_and_choose(c, requested);
  if (!placed) co_return placed;
  const std::array<param, 2> p{param(id), param(*placed)};
  co_await c.exec_prepared(set_server_sql, p);
  co_await tx.commit();
  co_return placed;
}

}  // namespace tenantd::db::servers
