// The fleet migration behind `tenantd migrate`: master, then the tenant template of every
// database server, then every active or suspended tenant that master says is behind (tenants
// up to date cost no connection), each on its own server, with bounded parallelism per server
// on one thread of async connections (servers are migrated side by side), an optional
// canary batch that stops the run if any of it fails, each tenant's resulting version and
// failure recorded in master. Every migration runs in its own transaction; a tenant that
// fails keeps what it applied, and the run continues with the others.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstddef>
#include <string>
#include <vector>

#include "db/connection.hpp"
#include "db/migrator.hpp"
#include "domain/records.hpp"
#include "tenancy/provisioner.hpp"
#include "tenancy/server_directory.hpp"

namespace tenantd::tenancy {

struct fleet_settings {
  db::connection_options master;       // as the role that runs DDL (no request statement budget)
  provisioning_settings provisioning;  // the template, and tenant databases as the DDL role
  std::string runtime_master_role;     // with a separate DDL role: gets data access in master
  std::string runtime_tenant_role;     // and in every tenant database it migrates (main's; elsewhere the server's)
  server_defaults servers;             // what servers' URLs fall back to (see server_directory.hpp)
};

struct fleet_options {
  std::vector<std::string> tenants;  // only these (each must be active or suspended); empty = all
  unsigned jobs{1};                  // tenants migrated at a time on each server
  unsigned canary{0};                // migrate this many first; stop if any of them fails
  bool dry_run{false};               // report what would run; touch nothing (master neither)
};

enum class tenant_result { migrated, up_to_date, failed, skipped, would_migrate };

struct tenant_outcome {
  std::string tenant;
  tenant_result result{tenant_result::up_to_date};
  std::string detail;                // "version 1 -> 3", the failure, "canary failed", "being moved to ..."
  int from_version{0};               // would_migrate: the tenant's version now
  std::vector<std::string> pending;  // would_migrate: "V2__name", in order
};

struct fleet_report {
  int latest{0};                         // the newest tenant migration
  std::vector<tenant_outcome> outcomes;  // requested tenants that cannot be migrated, up to date, then the others
};

// What happens as it happens (the CLI prints it); every member is optional to override.
class fleet_observer {
 public:
  virtual ~fleet_observer() = default;
  virtual void master_migrated(const db::migrate_report&) {}
  // `server`'s template database `name` is at `version`.
  virtual void template_ready(const std::string& /*server*/, const std::string& /*name*/, int /*version*/) {}
  // A server's template could not be prepared: its tenants are reported failed, not migrated.
  virtual void template_failed(const std::string& /*server*/, const std::string& /*reason*/) {}
  // Before the first tenant: how many are behind, how many are up to date.
  virtual void started(std::size_t /*pending*/, std::size_t /*up_to_date*/, int /*latest*/, unsigned /*jobs*/) {}
  virtual void tenant_finished(const tenant_outcome&) {}
  virtual void canary_failed(std::size_t /*not_attempted*/) {}
};

class fleet_migrator {
 public:
  fleet_migrator(fleet_settings settings, std::vector<db::migration> migrations);

  // Throws when master cannot be reached or migrated, or main's template cannot be prepared;
  // a tenant's failure (or that of its server's template) is an outcome, never an exception.
  boost::asio::awaitable<fleet_report> run(const fleet_options& options, fleet_observer& observer);

 private:
  fleet_settings settings_;
  std::vector<db::migration> migrations_;
};

}  // namespace tenantd::tenancy
