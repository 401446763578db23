// libpq connection strings: the one place that knows how tenantd connects to any database.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <utility>

namespace tenantd::db {

// A PostgreSQL server and the role tenantd logs in as there.
struct server_endpoint {
  std::string host;
  std::string port;
  std::string user;
  std::string password;
  // libpq's sslmode and sslrootcert (a server URL's query), left out when empty.
  std::string sslmode;
  std::string sslrootcert;
};

// The conninfo for `database` on `server`, with the session settings every tenantd connection
// has: statement_timeout, TimeZone=UTC, search_path=public, application_name and TCP keepalives
// (a dead peer is noticed in about 25 s instead of the kernel's two hours).
std::string service_conninfo(const server_endpoint& server, const std::string& database,
                             std::chrono::milliseconds statement_timeout);

// Builds a libpq keyword/value conninfo string, quoting values as libpq requires.
std::string make_conninfo(std::span<const std::pair<std::string, std::string>> keywords);

}  // namespace tenantd::db
