// SQL a tenant move runs on the database servers (tenancy/mover.hpp), as the mover's
// superuser role: logical replication of one tenant database from its source server to a
// target server, the marker that proves the target has caught up, table locks, sequences and
// the fence that keeps the application role out of the source after the cut-over. Object
// names are the move's (replication_name): publication, subscription and slot share it, so a
// check can tell a crashed move's leftovers from anything else. Throws pg_error /
// unavailable_error.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "db/connection.hpp"

namespace tenantd::db::replication {

using boost::asio::awaitable;

// "tenantd_move_" + the move id without dashes (a valid slot name: lower case, digits, _).
std::string replication_name(const std::string& move_id);
// The prefix every move's replication objects have.
inline constexpr std::string_view name_prefix = "tenantd_move_";

// --- checks (any database of the server) ---
awaitable<std::string> wal_level(connection& c);
// Tables of the connected database without a primary key (logical replication cannot
// replicate their updates and deletes), schema-qualified.
awaitable<std::vector<std::string>> tables_without_primary_key(connection& c);

// --- both sides (the tenant database) ---
// The marker table a cut-over writes to after the source's tables are locked: once its row is
// on the target, every write before it is too (replication applies in commit order).
awaitable<void> create_marker_table(connection& c);
awaitable<void> drop_marker_table(connection& c);

// --- source (the tenant database there) ---
// A publication of every table; nothing if it exists.
awaitable<void> create_publication(connection& c, const std::string& name);
awaitable<void> drop_publication(connection& c, const std::string& name);
// In the open transaction: waits at most `timeout` for EXCLUSIVE locks on the tenant's tables
// (every table `publication` publishes but the marker; reads go on, writes wait). Throws
// pg_error 55P03 when the timeout passes; false when there was no table to lock.
awaitable<bool> lock_tables(connection& c, const std::string& publication, std::chrono::milliseconds timeout);
awaitable<void> insert_marker(connection& c, const std::string& token);
struct sequence_value {
  std::string name;  // schema-qualified, quoted
  std::string last_value;
};
// Sequences that were used, with their last values.
awaitable<std::vector<sequence_value>> sequences(connection& c);

// --- target (the tenant database there) ---
// Empties every table but the marker (a freshly migrated database holds its migration history).
awaitable<void> truncate_tenant_tables(connection& c);
// Subscribes to `name` on the source (conninfo: the mover's role on the source's tenant
// database), with a slot of the same name and the initial copy; the apply worker commits
// each applied transaction durably (on), so nothing the target acknowledged is lost to a crash after the cut-over.
// Nothing if it exists.
awaitable<void> create_subscription(connection& c, const std::string& name, const std::string& source_conninfo);
// Tables still copying (0 when every table is replicating) and whether the apply worker runs.
struct subscription_progress {
  bool exists{false};
  int tables{0};
  int copying{0};
  bool running{false};
};
awaitable<subscription_progress> progress(connection& c, const std::string& name);
awaitable<bool> marker_arrived(connection& c, const std::string& token);
awaitable<void> set_sequences(connection& c, const std::vector<sequence_value>& values);
// Stops and drops the subscription without touching the source (its slot is dropped there
// separately, by drop_slot): works while the source is away. Nothing if there is none.
awaitable<void> drop_subscription(connection& c, const std::string& name);

// --- the servers (any database) ---
// Drops the slot once it is inactive (waits up to `wait` for its walsender to stop); false
// if it is still in use after that. Nothing (true) if there is none.
awaitable<bool> drop_slot(connection& c, const std::string& name, std::chrono::milliseconds wait);
// Replication objects with the move prefix on this server: slots (cluster-wide) and
// subscriptions (cluster-wide catalog), by name, with their database.
struct leftover {
  std::string kind;  // "slot" or "subscription"
  std::string name;
  std::string database;
};
awaitable<std::vector<leftover>> leftovers(connection& c);
// Publications with the move prefix in the connected database.
awaitable<std::vector<std::string>> publications(connection& c);

// The application role can no longer connect to `database` (new connections get "permission
// denied"); unfence() gives it back.
awaitable<void> fence(connection& c, const std::string& database, const std::string& app_role);
awaitable<void> unfence(connection& c, const std::string& database, const std::string& app_role);
// Ends `role`'s sessions in `database` (the application's, once it is fenced out); how many.
awaitable<int> terminate_sessions(connection& c, const std::string& database, const std::string& role);
// DROP DATABASE IF EXISTS ... WITH (FORCE), as the superuser (a subscription's worker runs as
// one: no other role may end it).
awaitable<void> drop_database(connection& c, const std::string& database);
// Whether `database` exists on this server.
awaitable<bool> database_exists(connection& c, const std::string& database);

}  // namespace tenantd::db::replication
