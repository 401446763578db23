// Runs the real tenantd binary as a child process against a fresh master database of the
// private cluster: port 0, its own tenant database prefix, output captured to a log file.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "support/pg_cluster.hpp"

namespace tenantd::test {

// Environment overrides for the child: a value sets the variable, nullopt removes it.
using env_overrides = std::map<std::string, std::optional<std::string>>;

class e2e_server {
 public:
  e2e_server();
  // A server whose databases live on `cluster` (a fault test's private cluster) instead of
  // the ctest fixture's; the cluster must outlive this object.
  explicit e2e_server(const pg_cluster_info& cluster);
  // Stops the process (if running) and drops the master and every tenant database.
  ~e2e_server();
  e2e_server(const e2e_server&) = delete;
  e2e_server& operator=(const e2e_server&) = delete;

  // Makes this server a second process of `primary`'s installation: the same master database,
  // tenant database prefix, JWT secret and admin token (the primary's values at this call).
  // start() then creates nothing, and the destructor stops the process but drops nothing
  // (the primary owns the databases; destroy this one first). Call before start().
  void share_databases_with(const e2e_server& primary);
  // The role that owns the master database start() creates (default: the cluster's app role),
  // e.g. a separate DDL role. Call before start().
  void set_master_owner(std::string role) { master_owner_ = std::move(role); }

  // Creates the master database, launches `tenantd serve` with the default environment plus
  // `overrides`, and waits (30 s) for "tenantd listening on 127.0.0.1:<port>".
  // Throws std::runtime_error (with the log tail) if it exits or never listens.
  void start(const env_overrides& overrides = {});
  // Creates the master database now (start() does it when needed), so a test can stop
  // PostgreSQL before start().
  void create_master_database();
  // Polls GET /readyz until 200 or `timeout`; false on timeout.
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  // SIGTERM, wait up to 10 s, then SIGKILL. Returns the wait status (or nullopt if not running).
  std::optional<int> stop();
  // Sends `signal` (SIGKILL by default) and reaps the process.
  void kill(int signal = 9);
  bool running();
  // The wait status of a process that running() found gone although neither stop() nor
  // kill() was asked for (a crash, an abort, a fault point); cleared by start().
  std::optional<int> exited_on_its_own() const noexcept { return exited_on_its_own_; }
  // A failure message when a wait status is not a clean exit (code 0), else "".
  static std::string unclean_exit(int status);
  // "exited with N" or "killed by signal N".
  static std::string describe_exit(int status);

  std::uint16_t port() const noexcept { return port_; }
  pid_t pid() const noexcept { return pid_; }
  const std::string& jwt_secret() const noexcept { return jwt_secret_; }
  const std::string& admin_token() const noexcept { return admin_token_; }
  const std::string& master_database() const noexcept { return master_; }
  const std::string& tenant_db_prefix() const noexcept { return prefix_; }
  // The database that holds tenant `id`.
  std::string tenant_database(std::string_view id) const { return prefix_ + std::string(id); }
  const std::string& log_path() const noexcept { return log_path_; }
  // Everything the process has written so far, and its last `lines` lines.
  std::string log_text() const;
  std::string log_tail(std::size_t lines = 80) const;

 private:
  void drop_databases() noexcept;

  std::optional<pg_cluster_info> cluster_;  // unset: the ctest fixture's cluster
  const pg_cluster_info& cluster() const { return cluster_ ? *cluster_ : pg_cluster(); }
  std::string master_;
  std::string prefix_;
  std::string jwt_secret_;
  std::string admin_token_;
  std::string work_dir_;
  std::string log_path_;
  pid_t pid_{-1};
  std::optional<int> exited_on_its_own_;
  std::uint16_t port_{0};
  bool master_created_{false};
  bool owns_databases_{true};
  std::string master_owner_;
};

// The end of a test's server, shared by the e2e and fault fixtures: stops it if it still runs
// and fails the current test when it aborted or exited unasked during the test, did not exit
// cleanly on SIGTERM within the stop timeout, or its log reports a sanitizer finding. Prints
// the last `log_lines` lines of its log when the test has failed.
void end_server_checked(e2e_server& server, std::size_t log_lines);

// A random string of `n` characters from [A-Za-z0-9].
std::string random_token(std::size_t n);

}  // namespace tenantd::test
