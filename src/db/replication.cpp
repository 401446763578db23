// SQL of a tenant move on the database servers. Identifiers and literals in DDL are quoted by
// the server (format() with %I and %L), never by string pasting here.
#include "db/replication.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <array>
#include <span>

namespace tenantd::db::replication {
namespace {

using steady = std::chrono::steady_clock;

const std::span<const param> no_params{};

// Runs a statement the server built with format() (its first column; nothing when NULL).
awaitable<void> run_built(connection& c, const result_set& built) {
  if (!built.empty() && !built.is_null(0, 0)) co_await c.exec(built.text(0, 0));
}

awaitable<void> pause(std::chrono::milliseconds how_long) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, how_long);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

}  // namespace

std::string replication_name(const std::string& move_id) {
  std::string name(name_prefix);
  for (char ch : move_id)
    if (ch != '-') name.push_back(ch);
  return name;
}

awaitable<std::string> wal_level(connection& c) {
  auto r = co_await c.exec("SHOW wal_level");
  co_return r.string(0, 0);
}

awaitable<std::vector<std::string>> tables_without_primary_key(connection& c) {
  auto r = co_await c.exec(
      "SELECT format('%I.%I', n.nspname, t.relname) FROM pg_class t JOIN pg_namespace n ON n.oid = t.relnamespace "
      "WHERE t.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
      "AND n.nspname NOT LIKE 'pg\\_%' AND NOT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = t.oid AND "
      "i.indisprimary) ORDER BY 1");
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.string(i, 0));
  co_return out;
}

awaitable<void> create_marker_table(connection& c) {
  co_await c.exec(
      "CREATE SCHEMA IF NOT EXISTS tenantd_move; "
      "CREATE TABLE IF NOT EXISTS tenantd_move.marker (token text PRIMARY KEY, "
      "at timestamptz NOT NULL DEFAULT clock_timestamp())");
}

awaitable<void> drop_marker_table(connection& c) { co_await c.exec("DROP SCHEMA IF EXISTS tenantd_move CASCADE"); }

awaitable<void> create_publication(connection& c, const std::string& name) {
  const std::array<param, 1> p{param(name)};
  auto exists = co_await c.exec_params("SELECT 1 FROM pg_publication WHERE pubname = $1", p);
  if (exists.empty()) {
    const auto built = co_await c.exec_params("SELECT format('CREATE PUBLICATION %I FOR ALL TABLES', $1::text)", p);
    co_await run_built(c, built);
  }
}

awaitable<void> drop_publication(connection& c, const std::string& name) {
  const std::array<param, 1> p{param(name)};
  const auto built = co_await c.exec_params("SELECT format('DROP PUBLICATION IF EXISTS %I', $1::text)", p);
  co_await run_built(c, built);
}

awaitable<bool> lock_tables(connection& c, const std::string& publication, std::chrono::milliseconds timeout) {
  const auto ms = std::to_string(std::max<long long>(1, timeout.count())) + "ms";
  const std::array<param, 1> limit{param(ms)};
  (void)co_await c.exec_params("SELECT set_config('lock_timeout', $1, true)", limit);
  const std::array<param, 1> p{param(publication)};
  const auto built = co_await c.exec_params(
      "SELECT format('LOCK TABLE %s IN EXCLUSIVE MODE', string_agg(format('%I.%I', schemaname, tablename), ', ')) "
      "FROM pg_publication_tables WHERE pubname = $1 AND schemaname <> 'tenantd_move'",
      p);
  co_await run_built(c, built);
  co_return !built.empty() && !built.is_null(0, 0);
}

awaitable<void> insert_marker(connection& c, const std::string& token) {
  const std::array<param, 1> p{param(token)};
  (void)co_await c.exec_params("INSERT INTO tenantd_move.marker (token) VALUES ($1)", p);
}

awaitable<std::vector<sequence_value>> sequences(connection& c) {
  auto r = co_await c.exec(
      "SELECT format('%I.%I', schemaname, sequencename), last_value::text FROM pg_sequences "
      "WHERE last_value IS NOT NULL AND schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1");
  std::vector<sequence_value> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.string(i, 0), r.string(i, 1)});
  co_return out;
}

awaitable<void> truncate_tenant_tables(connection& c) {
  const auto built = co_await c.exec(
      "SELECT format('TRUNCATE %s', string_agg(format('%I.%I', n.nspname, t.relname), ', ')) FROM pg_class t "
      "JOIN pg_namespace n ON n.oid = t.relnamespace WHERE t.relkind IN ('r', 'p') "
      "AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'tenantd_move') AND n.nspname NOT LIKE 'pg\\_%'");
  co_await run_built(c, built);
}

awaitable<void> create_subscription(connection& c, const std::string& name, const std::string& source_conninfo) {
  const std::array<param, 1> key{param(name)};
  auto exists = co_await c.exec_params("SELECT 1 FROM pg_subscription WHERE subname = $1", key);
  if (exists.empty()) {
    const std::array<param, 2> p{param(name), param(source_conninfo)};
    const auto built = co_await c.exec_params(
        "SELECT format('CREATE SUBSCRIPTION %1$I CONNECTION %2$L PUBLICATION %1$I WITH (copy_data = true, "
        "create_slot = true, slot_name = %1$L, synchronous_commit = ''on'')', $1::text, $2::text)",
        p);
    co_await run_built(c, built);
  }
}

awaitable<subscription_progress> progress(connection& c, const std::string& name) {
  const std::array<param, 1> p{param(name)};
  auto r = co_await c.exec_params(
      "SELECT count(r.srrelid)::int, count(r.srrelid) FILTER (WHERE r.srsubstate <> 'r')::int, "
      "EXISTS (SELECT 1 FROM pg_stat_subscription st WHERE st.subid = s.oid AND st.pid IS NOT NULL AND st.relid IS "
      "NULL) FROM pg_subscription s LEFT JOIN pg_subscription_rel r ON r.srsubid = s.oid WHERE s.subname = $1 "
      "GROUP BY s.oid",
      p);
  subscription_progress out;
  if (r.empty()) co_return out;
  out.exists = true;
  out.tables = static_cast<int>(r.int64(0, 0));
  out.copying = static_cast<int>(r.int64(0, 1));
  out.running = r.boolean(0, 2);
  co_return out;
}

awaitable<bool> marker_arrived(connection& c, const std::string& token) {
  static constexpr statement arrived{"rp_marker_arrived", "SELECT 1 FROM tenantd_move.marker WHERE token = $1"};
  const std::array<param, 1> p{param(token)};
  auto r = co_await c.exec_prepared(arrived, p);
  co_return !r.empty();
}

awaitable<void> set_sequences(connection& c, const std::vector<sequence_value>& values) {
  for (const auto& v : values) {
    const std::array<param, 2> p{param(v.name), param(v.last_value)};
    (void)co_await c.exec_params("SELECT setval($1::regclass, $2::bigint, true)", p);
  }
}

awaitable<void> drop_subscription(connection& c, const std::string& name) {
  const std::array<param, 1> p{param(name)};
  auto exists = co_await c.exec_params(
      "SELECT 1 FROM pg_subscription WHERE subname = $1 AND subdbid = (SELECT oid FROM pg_database WHERE datname = "
      "current_database())",
      p);
  if (!exists.empty()) {
    {
      const auto built = co_await c.exec_params("SELECT format('ALTER SUBSCRIPTION %I DISABLE', $1::text)", p);
      co_await run_built(c, built);
    }
    {
      const auto built =
          co_await c.exec_params("SELECT format('ALTER SUBSCRIPTION %I SET (slot_name = NONE)', $1::text)", p);
      co_await run_built(c, built);
    }
    {
      const auto built = co_await c.exec_params("SELECT format('DROP SUBSCRIPTION %I', $1::text)", p);
      co_await run_built(c, built);
    }
  }
}

awaitable<bool> drop_slot(connection& c, const std::string& name, std::chrono::milliseconds wait) {
  const std::array<param, 1> p{param(name)};
  const auto deadline = steady::now() + wait;
  bool terminated = false;
  while (true) {
    auto r = co_await c.exec_params("SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1", p);
    if (r.empty()) co_return true;
    if (!r.boolean(0, 0)) {
      try {
        (void)co_await c.exec_params("SELECT pg_drop_replication_slot($1)", p);
        co_return true;
      } catch (const pg_error& e) {
        if (e.sqlstate() != "55006" && e.sqlstate() != "42704") throw;  // in use again / gone meanwhile
      }
    } else if (!terminated && steady::now() > deadline - wait / 2) {
      // Its subscriber is gone or stopped and the walsender lingers: end it.
      const std::array<param, 1> pid{param(r.string(0, 1))};
      (void)co_await c.exec_params("SELECT pg_terminate_backend($1::int)", pid);
      terminated = true;
    }
    if (steady::now() > deadline) co_return false;
    co_await pause(std::chrono::milliseconds(50));
  }
}

awaitable<std::vector<leftover>> leftovers(connection& c) {
  auto r = co_await c.exec(
      "SELECT 'slot', slot_name::text, coalesce(database::text, '') FROM pg_replication_slots "
      "WHERE slot_name LIKE 'tenantd\\_move\\_%' UNION ALL "
      "SELECT 'subscription', s.subname::text, d.datname::text FROM pg_subscription s JOIN pg_database d ON d.oid = "
      "s.subdbid WHERE s.subname LIKE 'tenantd\\_move\\_%' ORDER BY 1, 2");
  std::vector<leftover> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back({r.string(i, 0), r.string(i, 1), r.string(i, 2)});
  co_return out;
}

awaitable<std::vector<std::string>> publications(connection& c) {
  auto r =
      co_await c.exec("SELECT pubname::text FROM pg_publication WHERE pubname LIKE 'tenantd\\_move\\_%' ORDER BY 1");
  std::vector<std::string> out;
  out.reserve(static_cast<std::size_t>(r.rows()));
  for (int i = 0; i < r.rows(); ++i) out.push_back(r.string(i, 0));
  co_return out;
}

awaitable<void> fence(connection& c, const std::string& database, const std::string& app_role) {
  const std::array<param, 2> p{param(database), param(app_role)};
  {
    const auto built =
        co_await c.exec_params("SELECT format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC, %I', $1::text, $2::text)", p);
    co_await run_built(c, built);
  }
}

awaitable<void> unfence(connection& c, const std::string& database, const std::string& app_role) {
  const std::array<param, 2> p{param(database), param(app_role)};
  {
    const auto built =
        co_await c.exec_params("SELECT format('GRANT CONNECT ON DATABASE %I TO PUBLIC, %I', $1::text, $2::text)", p);
    co_await run_built(c, built);
  }
}

awaitable<int> terminate_sessions(connection& c, const std::string& database, const std::string& role) {
  const std::array<param, 2> p{param(database), param(role)};
  auto r = co_await c.exec_params(
      "SELECT count(pg_terminate_backend(pid))::int FROM pg_stat_activity WHERE datname = $1 "
      "AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND usename = $2",
      p);
  co_return static_cast<int>(r.int64(0, 0));
}

awaitable<void> drop_database(connection& c, const std::string& database) {
  const std::array<param, 1> p{param(database)};
  {
    const auto built = co_await c.exec_params("SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text)", p);
    co_await run_built(c, built);
  }
}

awaitable<bool> database_exists(connection& c, const std::string& database) {
  const std::array<param, 1> p{param(database)};
  auto r = co_await c.exec_params("SELECT 1 FROM pg_database WHERE datname = $1", p);
  co_return !r.empty();
}

}  // namespace tenantd::db::replication
