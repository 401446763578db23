// Every long-lived part of a serving process in one object. Members are declared in
// dependency order, so the constructor builds them in that order (each from the
// configuration and the members above it) and the destructor takes them down in reverse.
// Building connects nothing and listens on nothing: listen() binds the ports, the
// background tasks (background_tasks.hpp) prepare master, and the io_context runs it all.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <vector>

#include <atomic>
#include <memory>
#include <optional>
#include <string_view>

#include "api/context.hpp"
#include "api/dispatcher.hpp"
#include "api/request_quota.hpp"
#include "app/config.hpp"
#include "app/metrics.hpp"
#include "auth/jwt.hpp"
#include "auth/password_hasher.hpp"
#include "auth/rate_limiter.hpp"
#include "auth/token_cache.hpp"
#include "db/pool.hpp"
#include "domain/access.hpp"
#include "domain/invalidation.hpp"
#include "http/server.hpp"
#include "identity/accounts.hpp"
#include "tenancy/access_cache.hpp"
#include "tenancy/directory.hpp"
#include "tenancy/invalidation_listener.hpp"
#include "tenancy/lifecycle.hpp"
#include "tenancy/mover.hpp"
#include "tenancy/pool_registry.hpp"
#include "tenancy/provisioner.hpp"
#include "tenancy/server_catalog.hpp"
#include "tenancy/server_directory.hpp"
#include "tenancy/tenant_databases.hpp"
#include "tenancy/usage_recorder.hpp"
#include "tenancy/write_gate.hpp"

namespace tenantd::app {

class components {
 public:
  // `lanes`: the I/O lanes (one io_context per I/O thread, `io` first); sessions and their
  // pipelined tenant connections are spread over them. Empty: `io` is the only lane.
  components(const config& cfg, boost::asio::io_context& io, std::vector<boost::asio::io_context*> lanes = {});
  components(const components&) = delete;
  components& operator=(const components&) = delete;

  // Binds the main port (and METRICS_PORT) and prints where it listens; false (logged) when
  // a port cannot be bound.
  bool listen();
  // Applies an invalidation payload ("tenant:<id>", "member:...", "*") to this process's caches.
  void invalidate(const invalidation& change);

  const config& cfg;
  boost::asio::io_context& io;                  // lane 0: also runs the background tasks and the pools' connects
  std::vector<boost::asio::io_context*> lanes;  // every I/O lane, `io` first

  // Process state: the readiness probe, the dispatcher and the background tasks read it.
  std::atomic<bool> master_ready{false};  // master migrated and the role table loaded
  std::atomic<bool> draining{false};      // a signal came: no new connections
  std::atomic<bool> stopping{false};      // drained: background tasks end

  // Databases and tenants.
  // The connect steps of new tenant connections (SCRAM's PBKDF2, ~10 ms of CPU each) run here,
  // at a lower priority, not on the I/O threads (db::connection_options::handshake_executor).
  // Declared before the pools, so it is joined after them and before serve() destroys the I/O
  // contexts its completions go back to.
  boost::asio::thread_pool handshakes{1};
  std::shared_ptr<db::pool> master;      // request statements (STATEMENT_TIMEOUT_MS)
  std::shared_ptr<db::pool> ddl;         // CREATE/DROP DATABASE, template, migrations
  tenancy::server_directory db_servers;  // database server -> connection (main from the configuration)
  tenancy::pool_registry pools;
  tenancy::directory tenants;
  tenancy::access_cache access;
  // Per-tenant usage (USAGE_ENABLED; null when off), flushed by the background tasks.
  std::unique_ptr<tenancy::usage_recorder> usage;
  tenancy::write_gate gate;  // holds a tenant's writes during a move's cut-over
  tenancy::tenant_databases databases;
  tenancy::provisioner provisioner;
  tenancy::lifecycle lifecycle;
  tenancy::server_catalog server_catalog;  // GET/POST/PUT/DELETE /admin/servers
  tenancy::mover mover;                    // POST /admin/tenants/:id/move, GET /admin/moves
  tenancy::invalidation_listener listener;

  // Identity.
  auth::password_hasher hasher;
  auth::jwt_codec jwt;
  auth::token_cache verified_tokens;
  role_table roles;  // the defaults until master is prepared
  identity::accounts accounts;

  // Abuse limits (API.md "Limits").
  auth::rate_limiter login_failures_per_client;
  auth::rate_limiter login_successes_per_account;
  auth::rate_limiter login_successes_per_client;
  auth::rate_limiter tenant_creates_per_client;
  auth::rate_limiter registrations_per_client;
  api::request_quota quota;

  // HTTP.
  metrics telemetry;
  api::services services;
  api::dispatcher dispatcher;
  http::server server;
  std::optional<http::server> metrics_server;  // METRICS_PORT: GET /metrics only

 private:
  api::services make_services();
  metrics_sources make_metrics_sources();
};

}  // namespace tenantd::app
