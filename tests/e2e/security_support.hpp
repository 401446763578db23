// Helpers for the security catalogue tests (S01-S40, M01-M10): a blocking libpq session that
// reports failures as values (SQLSTATE + message) instead of throwing, and small statistics.
#pragma once
#include "support/e2e_fixture.hpp"
#include "support/pg_cluster.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace tenantd::test::security {

// What one statement did: ok, or the SQLSTATE and message of the failure.
struct pg_outcome {
  bool ok{false};
  std::string sqlstate;
  std::string message;
  std::vector<std::vector<std::string>> rows;
};

// One connection, kept open (for transactions held across HTTP requests).
class pg_session {
 public:
  explicit pg_session(const std::string& conninfo) : conn_(PQconnectdb(conninfo.c_str()), PQfinish) {
    if (PQstatus(conn_.get()) != CONNECTION_OK) connect_error_ = PQerrorMessage(conn_.get());
  }
  bool connected() const { return connect_error_.empty(); }
  const std::string& connect_error() const { return connect_error_; }

  pg_outcome exec(const std::string& sql) const {
    pg_outcome out;
    if (!connected()) {
      out.message = connect_error_;
      return out;
    }
    std::unique_ptr<PGresult, void (*)(PGresult*)> res(PQexec(conn_.get(), sql.c_str()), PQclear);
    const auto st = PQresultStatus(res.get());
    out.ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
    if (!out.ok) {
      const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
      out.sqlstate = state != nullptr ? state : "";
      out.message = PQresultErrorMessage(res.get());
      return out;
    }
    for (int r = 0; r < PQntuples(res.get()); ++r) {
      auto& row = out.rows.emplace_back();
      for (int c = 0; c < PQnfields(res.get()); ++c) row.emplace_back(PQgetvalue(res.get(), r, c));
    }
    return out;
  }

 private:
  std::unique_ptr<PGconn, void (*)(PGconn*)> conn_;
  std::string connect_error_;
};

// The superuser over the unix socket (trust), or any role over TCP with a password.
inline std::string superuser_conninfo(const std::string& dbname) {
  const auto& c = pg_cluster();
  return "host=" + c.socket_dir + " port=" + std::to_string(c.port) + " user=" + c.superuser + " dbname=" + dbname;
}
inline std::string role_conninfo(const std::string& role, const std::string& password, const std::string& dbname) {
  const auto& c = pg_cluster();
  return "host=" + c.host + " port=" + std::to_string(c.port) + " user=" + role + " password=" + password +
         " dbname=" + dbname + " connect_timeout=10";
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The response body as JSON text without its request_id, to compare two errors.
inline std::string body_without_request_id(const http_response& r) {
  auto v = r.json();
  if (v.is_object()) v.as_object().erase("request_id");
  return boost::json::serialize(v);
}

}  // namespace tenantd::test::security
