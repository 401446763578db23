// Access to the private PostgreSQL cluster that ctest starts (tests/support/pg_cluster.sh).
// Blocking libpq is fine here: this is test set-up, not server code.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace tenantd::test {

struct pg_cluster_info {
  std::string host;  // 127.0.0.1
  int port{0};
  std::string socket_dir;  // unix socket directory (superuser connects here, trust auth)
  std::string superuser;   // "postgres"
  std::string app_user;    // LOGIN CREATEDB, not superuser
  std::string app_password;
  std::string mover_user;  // LOGIN SUPERUSER with a password (MOVE_DATABASE_USERNAME in move tests)
  std::string mover_password;
  std::string ca_file;  // PG_TLS=on: the CA that signed the server's certificate; else empty
  std::string bin_dir;  // /usr/lib/postgresql/15/bin
  std::string data_dir;
  std::string log_path;  // the server log (pg_ctl -l)
};

// Reads the file named by $TENANTD_TEST_PG_ENV once; fails the test (throws) if unset.
const pg_cluster_info& pg_cluster();
// Reads an env file written by `pg_cluster.sh start DIR` (DIR/env); throws if unreadable.
pg_cluster_info read_pg_cluster_env(const std::string& path);

// A fresh lower-case identifier such as "t_k3j9x2ab" (prefix + 8 random [a-z0-9]).
std::string unique_name(std::string_view prefix = "t_");

// Runs SQL as the superuser on `dbname`; throws std::runtime_error with the server message.
void admin_exec(const std::string& sql, const std::string& dbname = "postgres");
// Runs a query as the superuser; rows of text values ("" for NULL).
std::vector<std::vector<std::string>> admin_query(const std::string& sql, const std::string& dbname = "postgres");
// The same on another cluster (a fault test's private one).
void admin_exec(const pg_cluster_info& cluster, const std::string& sql, const std::string& dbname = "postgres");
std::vector<std::vector<std::string>> admin_query(const pg_cluster_info& cluster, const std::string& sql,
                                                  const std::string& dbname = "postgres");

// Connection strings for the app role (TCP, password auth).
std::string app_conninfo(const std::string& dbname);  // keyword/value form
std::string app_url(const std::string& dbname);       // postgresql://user:pw@host:port/db
std::string app_url(const pg_cluster_info& cluster, const std::string& dbname);

// A database owned by the app role, created fresh and dropped (WITH FORCE) on destruction.
class test_database {
 public:
  explicit test_database(std::string_view prefix = "t_");
  ~test_database();
  test_database(const test_database&) = delete;
  test_database& operator=(const test_database&) = delete;
  const std::string& name() const noexcept { return name_; }
  std::string conninfo() const { return app_conninfo(name_); }

 private:
  std::string name_;
};

}  // namespace tenantd::test
