// Creates and drops tenant databases on their database servers. CREATE DATABASE is not
// transactional, so creation is a small state machine recorded in master: a 'provisioning'
// row placed on a server (db::servers::insert_placed_tenant), the database on that server (a
// copy of that server's migrated, schema-only template database), its grants, an optional caller step (e.g.
// the owner account), then 'active'. Any failure drops the database and the row: no active
// tenant without a migrated database and no orphan database is left behind. A process that
// dies half-way leaves a 'provisioning' row whose advisory lock is free; reconcile() (see
// lifecycle.hpp) finishes the rollback.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/migrator.hpp"
#include "db/pool.hpp"
#include "domain/error.hpp"
#include "domain/records.hpp"
#include "tenancy/pool_registry.hpp"
#include "tenancy/server_directory.hpp"

namespace tenantd::tenancy {

struct provisioning_settings {
  std::string database_prefix{"tenant_"};
  std::string master_user;  // the role that runs CREATE DATABASE (owner unless tenant user differs)
  tenant_connection_settings tenant;
  bool use_template{true};  // false: CREATE from template0 and replay every migration (slower)
  // Test-only fault injection (TENANTD_FAULT_POINT; compiled only into builds with the tests,
  // CMake option TENANTD_FAULT_INJECTION): the process kills itself with SIGKILL
  // right after the named step: after_row, after_database, after_migrate, after_ready.
  std::string fault_point;
  // A separate DDL role (MIGRATION_DATABASE_URL): tenant migrations and restores connect with
  // these settings, the DDL role (master_user) owns every tenant database and its objects, and
  // the runtime role tenant.user only gets CONNECT and data access (db::grant_data_access).
  // Unset: tenant.user runs the migrations, as before.
  std::optional<tenant_connection_settings> ddl;
  const tenant_connection_settings& ddl_connection() const noexcept { return ddl ? *ddl : tenant; }
};

// The advisory-lock key a provisioning holds for a tenant id (so a reconciler can tell a
// live provisioning from a dead one).
std::int64_t provisioning_lock_key(const std::string& tenant_id);
// The advisory-lock key (in master) that serializes a server's template maintenance with every
// CREATE DATABASE ... TEMPLATE on that server, across processes.
std::int64_t template_lock_key(const std::string& server);

// A connection that runs CREATE/DROP DATABASE on one server: on main a master connection
// (the DDL pool's, possibly one the caller already holds), elsewhere a connection of its own
// to the server's maintenance database as its DDL role.
class ddl_session {
 public:
  ddl_session() = default;
  explicit ddl_session(db::connection& borrowed) noexcept : borrowed_(&borrowed) {}
  explicit ddl_session(db::pooled_connection pooled) noexcept : pooled_(std::move(pooled)) {}
  explicit ddl_session(std::unique_ptr<db::connection> own) noexcept : own_(std::move(own)) {}
  db::connection& operator*() const noexcept { return own_ ? *own_ : pooled_ ? *pooled_ : *borrowed_; }
  db::connection* operator->() const noexcept { return &**this; }

 private:
  db::connection* borrowed_{nullptr};
  db::pooled_connection pooled_;
  std::unique_ptr<db::connection> own_;
};

class provisioner {
 public:
  // Runs after the database is migrated and before the tenant becomes active; an error or
  // exception from it rolls the whole creation back.
  using ready_step = std::function<boost::asio::awaitable<status>(const tenant_record&)>;

  // `master` is the DDL pool (master database as master_user); `servers` finds the servers
  // other than main (null: main only, as in tests of one server).
  provisioner(std::shared_ptr<db::pool> master, provisioning_settings settings, std::vector<db::migration> migrations,
              server_directory* servers = nullptr);

  std::string database_name(const std::string& tenant_id) const { return settings_.database_prefix + tenant_id; }

  // Places the tenant on `server` (or the one placement picks) and creates its database there.
  // errc::tenant_exists when the id (or its database) is taken; errc::invalid_input for an
  // unknown server; errc::server_unavailable when the server (or every one) cannot take it.
  // Throws on infrastructure failures, after rolling back.
  boost::asio::awaitable<result<tenant_record>> create(const std::string& id, const std::string& name,
                                                       ready_step on_ready = {},
                                                       std::optional<std::string> server = std::nullopt);

  // Drops the tenant's database if it exists (terminating its connections) and deletes the row.
  boost::asio::awaitable<void> remove(const std::string& id);

  // Creates a server's template database if missing and migrates it to the latest tenant
  // migration (IS_TEMPLATE, connections disallowed between runs). Serialized with tenant
  // creation on that server across processes by its template lock. Returns its schema version.
  boost::asio::awaitable<int> prepare_template();  // main's
  boost::asio::awaitable<int> prepare_template(const server_connection& server);
  // The same on a master connection the caller holds (its template lock is taken there).
  boost::asio::awaitable<int> prepare_template(const server_connection& server, db::connection& master_conn);
  std::string template_name() const { return settings_.database_prefix + "template"; }

  // How to reach a server: main from the settings, the others from the servers directory.
  // Throws db::unavailable_error for a server master does not know.
  const server_connection& main_server() const noexcept { return main_; }
  boost::asio::awaitable<server_connection> server(const std::string& name);
  boost::asio::awaitable<server_connection> server_of(const tenant_record& tenant);
  // Every server (main first), reloaded from master; main alone without a servers directory.
  boost::asio::awaitable<std::vector<server_connection>> all_servers();
  // A connection for CREATE/DROP DATABASE on `server` (see ddl_session).
  boost::asio::awaitable<ddl_session> open_ddl_session(const server_connection& server);

  // DROP DATABASE IF EXISTS ... WITH (FORCE), on main or on `server`.
  boost::asio::awaitable<void> drop_database(const std::string& database);
  boost::asio::awaitable<void> drop_database(const server_connection& server, const std::string& database);
  boost::asio::awaitable<void> drop_database(db::connection& ddl_conn, const std::string& database);
  // Applies pending tenant migrations to one database on main or `server` (as the DDL role,
  // see provisioning_settings::ddl, then grant_runtime_access); returns its version afterwards.
  boost::asio::awaitable<int> migrate_database(const std::string& database);
  boost::asio::awaitable<int> migrate_database(const server_connection& server, const std::string& database);
  // With a separate DDL role: db::grant_data_access for the server's runtime role on a tenant
  // database the DDL role is connected to. Without one: nothing.
  boost::asio::awaitable<void> grant_runtime_access(db::connection& tenant_conn) const;
  boost::asio::awaitable<void> grant_runtime_access(const server_connection& server, db::connection& tenant_conn) const;
  // CREATE DATABASE from template0 (empty, no schema) on a DDL session of `server`, then the
  // grants: only the tenant role may connect. For a restore, which fills it itself.
  boost::asio::awaitable<void> create_empty_database(db::connection& ddl_conn, const std::string& database) const;
  boost::asio::awaitable<void> create_empty_database(const server_connection& server, db::connection& ddl_conn,
                                                     const std::string& database) const;
  // The role new tenant databases are created for (OWNER) when the runtime tenant role should
  // own them (no DDL role and a runtime user other than the one running CREATE DATABASE);
  // else nullopt (the creating role).
  std::optional<std::string> database_owner() const;
  std::optional<std::string> database_owner(const server_connection& server) const;
  // The pool DDL runs on (CREATE/DROP DATABASE; the master database as master_user).
  const std::shared_ptr<db::pool>& ddl_pool() const noexcept { return master_; }

  int latest_version() const noexcept { return migrations_.empty() ? 0 : migrations_.back().version; }
  const std::vector<db::migration>& migrations() const noexcept { return migrations_; }
  const provisioning_settings& settings() const noexcept { return settings_; }

 private:
  // Returns the schema version the new database starts at (the template's, when copied).
  // `master_conn` holds the template lock; `ddl_conn` runs the DDL on the tenant's server.
  boost::asio::awaitable<int> create_database(const server_connection& server, db::connection& master_conn,
                                              db::connection& ddl_conn, const std::string& database);
  int template_version(const std::string& server) const;
  void fault(std::string_view step) const;

  std::shared_ptr<db::pool> master_;
  provisioning_settings settings_;
  std::vector<db::migration> migrations_;
  server_directory* servers_;
  server_connection main_;
  mutable std::mutex template_mutex_;
  std::map<std::string, int> template_versions_;  // by server: what prepare_template() last left
};

}  // namespace tenantd::tenancy
