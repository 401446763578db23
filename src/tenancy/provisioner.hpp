// Creates and drops tenant databases. CREATE DATABASE is not transactional, so creation is
// a small state machine recorded in master: a 'provisioning' row, the database, its grants,
// its migrations, an optional caller step (e.g. the owner account), then 'active'. Any
// failure drops the database and the row: no active tenant without a migrated database and
// no orphan database is left behind.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <string>
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
};

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

  int latest_version() const noexcept { return migrations_.empty() ? 0 : migrations_.back().version; }

 private:
  boost::asio::awaitable<void> create_database(const std::string& database);
  boost::asio::awaitable<void> drop_database(const std::string& database);
  boost::asio::awaitable<int> migrate_database(const std::string& database);

  std::shared_ptr<db::pool> master_;
  provisioning_settings settings_;
  std::vector<db::migration> migrations_;
};

}  // namespace tenantd::tenancy
