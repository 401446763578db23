// A second private PostgreSQL cluster (the same binaries, another free port) for tests of
// several database servers: a test starts one, registers it with POST /admin/servers (or
// `tenantd servers add`) under a login role of its own, and checks where data physically is.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "support/fault_cluster.hpp"

namespace tenantd::test {

class second_cluster {
 public:
  // initdb + start (a few seconds), then a LOGIN CREATEDB role with a random password, so a
  // test can look for that password in responses and logs. Throws std::runtime_error.
  explicit second_cluster(fault_cluster_options options = {});

  const pg_cluster_info& info() const noexcept { return cluster_->info(); }
  const std::string& role() const noexcept { return role_; }
  const std::string& password() const noexcept { return password_; }
  int port() const noexcept { return info().port; }
  // postgresql://<role>:<password>@127.0.0.1:<port> (no database: tenantd uses "postgres").
  std::string url() const;

  // Superuser SQL over the unix socket.
  std::vector<std::vector<std::string>> query(const std::string& sql, const std::string& dbname = "postgres") const {
    return cluster_->query(sql, dbname);
  }
  bool has_database(const std::string& name) const;
  // pg_ctl stop -m <mode> / start (a server going away and coming back).
  void stop(std::string_view mode = "fast") { cluster_->stop(mode); }
  void start() { cluster_->start(); }
  // SIGSTOP / SIGCONT to all its processes (fault_cluster::pause).
  void pause() { cluster_->pause(); }
  void resume() { cluster_->resume(); }

 private:
  std::unique_ptr<fault_cluster> cluster_;
  std::string role_;
  std::string password_;
};

// A TCP port on 127.0.0.1 where nothing listens (bound, then closed).
int closed_port();

}  // namespace tenantd::test
