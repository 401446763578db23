// The one way from a tenant to its database: the directory's record, then that database's
// pool (under the pool registry's budget). Two kinds of access:
// - acquire(): an exclusive connection, for a transaction, a scan or several statements;
// - runner(): the pool itself as a statement runner, for single statements each its own
//   implicit transaction, which the pool may pipeline on its shared connection.
// Non-owning: the directory and the registry outlive it.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <memory>
#include <stdexcept>
#include <string>

#include "db/pool.hpp"
#include "domain/records.hpp"
#include "tenancy/directory.hpp"
#include "tenancy/pool_registry.hpp"

namespace tenantd::tenancy {

// No tenant has the id asked for (an authenticated caller's tenant vanished: a 500).
class tenant_gone_error : public std::runtime_error {
 public:
  explicit tenant_gone_error(const std::string& tenant_id)
      : std::runtime_error("tenant " + tenant_id + " vanished from the directory") {}
};

class tenant_databases {
 public:
  tenant_databases(directory& tenants, pool_registry& pools) : tenants_(tenants), pools_(pools) {}

  // An exclusive connection to the tenant's database. Throws db::unavailable_error (pool
  // timeout, database away) and, by id, tenant_gone_error.
  boost::asio::awaitable<db::pooled_connection> acquire(const tenant_record& tenant);
  boost::asio::awaitable<db::pooled_connection> acquire(const std::string& tenant_id);

  // The tenant's pool as a runner of single statements (see db::pool::exec_prepared).
  std::shared_ptr<db::statement_runner> runner(const tenant_record& tenant);
  boost::asio::awaitable<std::shared_ptr<db::statement_runner>> runner(const std::string& tenant_id);

 private:
  boost::asio::awaitable<std::shared_ptr<const tenant_record>> find(const std::string& tenant_id);

  directory& tenants_;
  pool_registry& pools_;
};

}  // namespace tenantd::tenancy
