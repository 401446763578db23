// Tenant lifecycle after creation: suspend, resume, delete (deleting -> deleted, the row
// kept so an id is never silently handed to someone else), reconcile half-done work, and
// check master against pg_database. Every status change is published on the invalidation
// channel, so all server processes see it within a second.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "db/pool.hpp"
#include "domain/error.hpp"
#include "domain/invalidation.hpp"
#include "domain/records.hpp"
#include "tenancy/pool_registry.hpp"
#include "tenancy/provisioner.hpp"

namespace tenantd::tenancy {

struct reconcile_report {
  std::vector<std::string> rolled_back;  // dead 'provisioning' tenants: database dropped, row removed
  std::vector<std::string> deleted;      // 'deleting' tenants finished
  std::vector<std::string> in_progress;  // provisioning by a live process: left alone
};

// Over every database server; a database on a server other than main is named
// "<server>/<database>".
struct check_report {
  std::vector<std::string> orphan_databases;     // databases with the prefix and no live tenant row
  std::vector<std::string> missing_databases;    // active/suspended tenants whose database is gone
  std::vector<std::string> unfinished;           // tenants in provisioning/deleting/failed
  std::vector<std::string> unreachable_servers;  // servers that could not be inspected
  // Databases that belong to a move, not to a placement: a moved tenant's old database (kept,
  // or until its grace period ends) and the target of a move in progress. Not a problem.
  std::vector<std::string> move_databases;
  bool clean() const noexcept {
    return orphan_databases.empty() && missing_databases.empty() && unfinished.empty() && unreachable_servers.empty();
  }
};

class lifecycle {
 public:
  // pools may be null (CLI use); on_change receives this process's own invalidations (each
  // is published on the invalidation channel for the others).
  lifecycle(std::shared_ptr<db::pool> master, provisioner& provisioning, pool_registry* pools,
            std::function<void(const invalidation&)> on_change);

  // Every tenant, or those in `status`, by id.
  boost::asio::awaitable<std::vector<tenant_record>> list(std::optional<tenant_status> status);
  boost::asio::awaitable<std::optional<tenant_record>> find(const std::string& id);
  // errc::not_found, or errc::conflict-like errc::tenant_exists when the state forbids it.
  boost::asio::awaitable<result<tenant_record>> suspend(const std::string& id, const std::string& reason);
  boost::asio::awaitable<result<tenant_record>> resume(const std::string& id);
  // active|suspended|failed -> deleting -> database dropped -> deleted.
  boost::asio::awaitable<result<tenant_record>> remove(const std::string& id);
  // Rolls back dead provisionings (their advisory lock is free) and, when
  // `finish_deletions`, completes 'deleting' rows. A periodic run passes false: a deletion
  // in progress holds no lock, so finishing it could race the live DELETE.
  boost::asio::awaitable<reconcile_report> reconcile(bool finish_deletions = true);
  boost::asio::awaitable<check_report> check();

 private:
  // `allowed`: the states it may leave.
  boost::asio::awaitable<result<tenant_record>> set_status(const std::string& id,
                                                           std::span<const tenant_status> allowed, tenant_status to,
                                                           const std::string& reason);
  void publish_local(const invalidation& change);

  std::shared_ptr<db::pool> master_;
  provisioner& provisioning_;
  pool_registry* pools_;
  std::function<void(const invalidation&)> on_change_;
};

}  // namespace tenantd::tenancy
