// Private test cluster access: reads the env file written by pg_cluster.sh.
#include "support/pg_cluster.hpp"

#include <libpq-fe.h>
#include <sodium.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>

namespace tenantd::test {
namespace {

struct conn_deleter {
  void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct result_deleter {
  void operator()(PGresult* r) const noexcept { PQclear(r); }
};

std::unique_ptr<PGconn, conn_deleter> connect_admin(const pg_cluster_info& c, const std::string& dbname) {
  const std::string conninfo =
      "host=" + c.socket_dir + " port=" + std::to_string(c.port) + " user=" + c.superuser + " dbname=" + dbname;
  std::unique_ptr<PGconn, conn_deleter> conn(PQconnectdb(conninfo.c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK)
    throw std::runtime_error("admin connect failed: " + std::string(PQerrorMessage(conn.get())));
  return conn;
}

}  // namespace

pg_cluster_info read_pg_cluster_env(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path + ": is the pg fixture running?");
  std::map<std::string, std::string> kv;
  for (std::string line; std::getline(in, line);) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  pg_cluster_info info;
  info.host = kv["TEST_PG_HOST"];
  info.port = std::stoi(kv["TEST_PG_PORT"]);
  info.socket_dir = kv["TEST_PG_SOCKET_DIR"];
  info.superuser = kv["TEST_PG_SUPERUSER"];
  info.app_user = kv["TEST_PG_APP_USER"];
  info.app_password = kv["TEST_PG_APP_PASSWORD"];
  info.mover_user = kv["TEST_PG_MOVER_USER"];
  info.mover_password = kv["TEST_PG_MOVER_PASSWORD"];
  info.ca_file = kv["TEST_PG_CA_FILE"];
  info.bin_dir = kv["TEST_PG_BIN"];
  info.data_dir = kv["TEST_PG_DATA"];
  info.log_path = kv["TEST_PG_LOG"];
  return info;
}

const pg_cluster_info& pg_cluster() {
  static const pg_cluster_info info = [] {
    const char* path = std::getenv("TENANTD_TEST_PG_ENV");
    if (path == nullptr || *path == '\0')
      throw std::runtime_error("TENANTD_TEST_PG_ENV is not set: run the tests through ctest");
    return read_pg_cluster_env(path);
  }();
  return info;
}

std::string unique_name(std::string_view prefix) {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string name(prefix);
  for (int i = 0; i < 8; ++i) name += alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
  return name;
}

std::vector<std::vector<std::string>> admin_query(const std::string& sql, const std::string& dbname) {
  return admin_query(pg_cluster(), sql, dbname);
}

std::vector<std::vector<std::string>> admin_query(const pg_cluster_info& cluster, const std::string& sql,
                                                  const std::string& dbname) {
  auto conn = connect_admin(cluster, dbname);
  std::unique_ptr<PGresult, result_deleter> res(PQexec(conn.get(), sql.c_str()));
  const auto st = PQresultStatus(res.get());
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
    throw std::runtime_error("admin query failed: " + std::string(PQresultErrorMessage(res.get())) + " in: " + sql);
  std::vector<std::vector<std::string>> rows;
  for (int r = 0; r < PQntuples(res.get()); ++r) {
    auto& row = rows.emplace_back();
    for (int c = 0; c < PQnfields(res.get()); ++c) row.emplace_back(PQgetvalue(res.get(), r, c));
  }
  return rows;
}

void admin_exec(const std::string& sql, const std::string& dbname) { (void)admin_query(sql, dbname); }

void admin_exec(const pg_cluster_info& cluster, const std::string& sql, const std::string& dbname) {
  (void)admin_query(cluster, sql, dbname);
}

std::string app_conninfo(const std::string& dbname) {
  const auto& c = pg_cluster();
  return "host=" + c.host + " port=" + std::to_string(c.port) + " user=" + c.app_user + " password=" + c.app_password +
         " dbname=" + dbname;
}

std::string app_url(const std::string& dbname) { return app_url(pg_cluster(), dbname); }

std::string app_url(const pg_cluster_info& c, const std::string& dbname) {
  return "postgresql://" + c.app_user + ":" + c.app_password + "@" + c.host + ":" + std::to_string(c.port) + "/" +
         dbname;
}

test_database::test_database(std::string_view prefix) : name_(unique_name(prefix)) {
  admin_exec("CREATE DATABASE " + name_ + " OWNER " + pg_cluster().app_user);
}

test_database::~test_database() {
  try {
    admin_exec("DROP DATABASE IF EXISTS " + name_ + " WITH (FORCE)");
  } catch (...) {  // a failed drop must not end the test run; the cluster is thrown away anyway
  }
}

}  // namespace tenantd::test
