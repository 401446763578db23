// The one way from a tenant to its database: the directory's record, then that database's
// pool (under the pool registry's budget). Two kinds of access:
// - acquire(): an exclusive connection, for a transaction, a scan or several statements;
// - runner(): the pool itself as a statement runner, for single statements each its own
//   implicit transaction, which the pool may pipeline on its shared connection.
// With a usage recorder, both count the tenant's statements and their time: the runner
// times each call; an exclusive connection reports its statements while it is held and
// records them once when it goes back. Non-owning: the directory, the registry and the
// recorder outlive it.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "db/pool.hpp"
#include "domain/records.hpp"
#include "tenancy/directory.hpp"
#include "tenancy/pool_registry.hpp"
#include "tenancy/server_directory.hpp"
#include "tenancy/usage_recorder.hpp"
#include "tenancy/write_gate.hpp"

namespace tenantd::tenancy {

// No tenant has the id asked for (an authenticated caller's tenant vanished: a 500).
class tenant_gone_error : public std::runtime_error {
 public:
  explicit tenant_gone_error(const std::string& tenant_id)
      : std::runtime_error("tenant " + tenant_id + " vanished from the directory") {}
};

// An exclusive connection to a tenant's database, used like db::pooled_connection. With a
// recorder, the statements run on it while it is held are counted for its tenant when it is
// destroyed or assigned over (before it goes back to its pool).
class tenant_connection {
 public:
  tenant_connection() noexcept;
  tenant_connection(db::pooled_connection conn, usage_recorder* usage, const std::string& tenant_id);
  tenant_connection(tenant_connection&& other) noexcept;
  tenant_connection& operator=(tenant_connection&& other) noexcept;
  tenant_connection(const tenant_connection&) = delete;
  tenant_connection& operator=(const tenant_connection&) = delete;
  ~tenant_connection();

  db::connection* operator->() const noexcept { return conn_.operator->(); }
  db::connection& operator*() const noexcept { return *conn_; }
  explicit operator bool() const noexcept { return static_cast<bool>(conn_); }

 private:
  struct meter;
  // Stops observing and records what was counted (nothing without a recorder).
  void finish() noexcept;
  std::unique_ptr<meter> meter_;  // on the heap, so the connection's pointer to it survives moves
  db::pooled_connection conn_;
};

// What the caller will do with a tenant's database: writes wait while a move's cut-over
// holds them (write_gate); reads never wait.
enum class intent { read, write };

class tenant_databases {
 public:
  // `servers` (may be null: every tenant on main) is asked about a tenant's server this
  // process does not know yet, before its pool is made. `gate` (may be null) holds writes
  // during a move's cut-over.
  tenant_databases(directory& tenants, pool_registry& pools, usage_recorder* usage = nullptr,
                   server_directory* servers = nullptr, write_gate* gate = nullptr)
      : tenants_(tenants), pools_(pools), usage_(usage), servers_(servers), gate_(gate) {}

  // An exclusive connection to the tenant's database (for a write, after the gate: with the
  // tenant's placement as it is after a cut-over that held it). Throws db::unavailable_error
  // (pool timeout, database away) and, by id, tenant_gone_error.
  boost::asio::awaitable<tenant_connection> acquire(const tenant_record& tenant, intent use = intent::write);
  boost::asio::awaitable<tenant_connection> acquire(const std::string& tenant_id, intent use = intent::write);

  // The tenant's pool as a runner of single statements (see db::pool::exec_prepared). By
  // record, the tenant's server must be known to the registry already (main, or looked up),
  // and the caller has passed the gate itself if it writes.
  std::shared_ptr<db::statement_runner> runner(const tenant_record& tenant,
                                               const std::optional<db::server_endpoint>& endpoint = std::nullopt);
  boost::asio::awaitable<std::shared_ptr<db::statement_runner>> runner(const std::string& tenant_id,
                                                                       intent use = intent::read);

 private:
  boost::asio::awaitable<std::shared_ptr<const tenant_record>> find(const std::string& tenant_id);
  // How to reach the tenant's server when it is not main (nullopt for main), from the servers
  // directory, reloaded from master when this process does not know the server yet. The pool
  // is then made with this very endpoint: a second look into the directory could miss a
  // server the first one found (a reload of an older list finishing later). Throws
  // db::unavailable_error when the tenant's server is unknown even to master.
  boost::asio::awaitable<std::optional<db::server_endpoint>> server_of(const tenant_record& tenant);

  directory& tenants_;
  pool_registry& pools_;
  // For a write: waits at the gate; true when it was held (the placement may have changed).
  boost::asio::awaitable<bool> pass_gate(const std::string& tenant_id, intent use);

  usage_recorder* usage_;
  server_directory* servers_;
  write_gate* gate_;
};

}  // namespace tenantd::tenancy
