// Creates and drops tenant databases. CREATE DATABASE is not transactional, so creation is
// a small state machine recorded in master: a 'provisioning' row, the database (a copy of
// the migrated, schema-only template database), its grants, an optional caller step (e.g.
// the owner account), then 'active'. Any failure drops the database and the row: no active
// tenant without a migrated database and no orphan database is left behind. A process that
// dies half-way leaves a 'provisioning' row whose advisory lock is free; reconcile() (see
// lifecycle.hpp) finishes the rollback.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "db/migrator.hpp"
#include "db/pool.hpp"
#include "domain/error.hpp"
#include "domain/records.hpp"
#include "tenancy/pool_registry.hpp"

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

class provisioner {
 public:
  // Runs after the database is migrated and before the tenant becomes active; an error or
  // exception from it rolls the whole creation back.
  using ready_step = std::function<boost::asio::awaitable<status>(const tenant_record&)>;

  provisioner(std::shared_ptr<db::pool> master, provisioning_settings settings, std::vector<db::migration> migrations);

  std::string database_name(const std::string& tenant_id) const { return settings_.database_prefix + tenant_id; }

  // errc::tenant_exists when the id (or its database) is taken. Throws on infrastructure
  // failures, after rolling back.
  boost::asio::awaitable<result<tenant_record>> create(const std::string& id, const std::string& name,
                                                       ready_step on_ready = {});

  // Drops the database if it exists (terminating its connections) and deletes the row.
  boost::asio::awaitable<void> remove(const std::string& id);

  // Creates the template database if missing and migrates it to the latest tenant migration
  // (IS_TEMPLATE, connections disallowed between runs). Serialized with tenant creation
  // across processes by an advisory lock. Returns the template's schema version.
  boost::asio::awaitable<int> prepare_template();
  std::string template_name() const { return settings_.database_prefix + "template"; }

  // DROP DATABASE IF EXISTS ... WITH (FORCE).
  boost::asio::awaitable<void> drop_database(const std::string& database);
  boost::asio::awaitable<void> drop_database(db::connection& master_conn, const std::string& database);
  // Applies pending tenant migrations to one database (as the DDL role, see
  // provisioning_settings::ddl, then grant_runtime_access); returns its version afterwards.
  boost::asio::awaitable<int> migrate_database(const std::string& database);
  // With a separate DDL role: db::grant_data_access for tenant.user on a tenant database the
  // DDL role is connected to. Without one: nothing.
  boost::asio::awaitable<void> grant_runtime_access(db::connection& tenant_conn) const;
  // CREATE DATABASE from template0 (empty, no schema) on a master connection of ddl_pool(),
  // then the grants: only the tenant role may connect. For a restore, which fills it itself.
  boost::asio::awaitable<void> create_empty_database(db::connection& master_conn, const std::string& database) const;
  // The role new tenant databases are created for (OWNER) when the runtime tenant role should
  // own them (no DDL role and a tenant user other than master_user); else nullopt (the DDL role).
  std::optional<std::string> database_owner() const;
  // The pool DDL runs on (CREATE/DROP DATABASE; the master database as master_user).
  const std::shared_ptr<db::pool>& ddl_pool() const noexcept { return master_; }

  int latest_version() const noexcept { return migrations_.empty() ? 0 : migrations_.back().version; }
  const std::vector<db::migration>& migrations() const noexcept { return migrations_; }
  const provisioning_settings& settings() const noexcept { return settings_; }

 private:
  // Returns the schema version the new database starts at (the template's, when copied).
  boost::asio::awaitable<int> create_database(db::connection& master_conn, const std::string& database);
  void fault(std::string_view step) const;

  std::shared_ptr<db::pool> master_;
  provisioning_settings settings_;
  std::vector<db::migration> migrations_;
  std::atomic<int> template_version_{0};  // version prepare_template() last left the template at
};

}  // namespace tenantd::tenancy
