// gtest fixture for fault tests: a private PostgreSQL cluster (the test may break it), a
// tenantd process pointed at it, and small API helpers that record rather than assert.
#pragma once
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "support/e2e_server.hpp"
#include "support/fault_cluster.hpp"
#include "support/fault_load.hpp"

namespace tenantd::test {

// Server settings every fault test uses, and the per-request deadline they imply: a pool wait
// (POOL_ACQUIRE_TIMEOUT_MS, which also bounds a connect) plus one statement
// (STATEMENT_TIMEOUT_MS), with a margin for a sanitizer build on a busy machine.
inline constexpr std::chrono::milliseconds fault_acquire_timeout{2000};
inline constexpr std::chrono::milliseconds fault_statement_timeout{5000};
inline constexpr std::chrono::milliseconds fault_request_deadline =
    fault_acquire_timeout + fault_statement_timeout + std::chrono::milliseconds(1500);

// A tenant and its owner's access token.
struct fault_tenant {
  std::string id;
  std::string token;
};

class fault_test : public ::testing::Test {
 protected:
  virtual fault_cluster_options cluster_options() const { return {}; }
  // Environment for tenantd on top of the fault defaults (pool timeouts above).
  virtual env_overrides server_env() const { return {}; }
  // False: SetUp creates the cluster and the master database but does not start tenantd.
  virtual bool start_server_in_setup() const { return true; }

  void SetUp() override;
  void TearDown() override;

  fault_cluster& cluster() { return *cluster_; }
  e2e_server& server() { return *server_; }
  // Starts tenantd (not waiting for readiness) with the fault defaults plus server_env().
  void start_server();

  // Recorded requests to the server (never fail the test by themselves).
  timed_outcome get(std::string_view target, std::string_view token = {}) const;
  timed_outcome post(std::string_view target, const std::string& json, std::string_view token = {}) const;

  // POST /tenants with an owner; the owner's token. Fails the test (throws) on anything but 201.
  fault_tenant create_tenant(const std::string& id);
  // POST /api/users (directory entry, no password) for `email`.
  timed_outcome create_user(const fault_tenant& tenant, const std::string& email) const;
  // Emails of the tenant's users, read directly from its database as the superuser.
  std::vector<std::string> stored_emails(const fault_tenant& tenant);

  // Waits (polling) until GET /readyz is 200 and the tenant's GET /api/users is 200;
  // the time it took, or nullopt after `timeout`.
  std::optional<std::chrono::milliseconds> wait_full_service(const fault_tenant& tenant,
                                                             std::chrono::milliseconds timeout);

  // Backends of tenantd (application_name 'tenantd') in pg_stat_activity, optionally of one database.
  std::vector<std::string> tenantd_backend_pids(const std::string& database = {});

 private:
  std::unique_ptr<fault_cluster> cluster_;
  std::unique_ptr<e2e_server> server_;
};

}  // namespace tenantd::test
