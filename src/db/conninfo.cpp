// libpq connection strings for the master and the tenant databases.
#include "db/conninfo.hpp"

#include <vector>

namespace tenantd::db {

std::string service_conninfo(const server_endpoint& server, const std::string& database,
                             std::chrono::milliseconds statement_timeout) {
  std::vector<std::pair<std::string, std::string>> keywords{
      {"host", server.host},
      {"port", server.port},
      {"user", server.user},
      {"password", server.password},
      {"dbname", database},
      {"application_name", "tenantd"},
      {"options",
       "-c statement_timeout=" + std::to_string(statement_timeout.count()) + " -c TimeZone=UTC -c search_path=public"},
      {"keepalives", "1"},
      {"keepalives_idle", "10"},
      {"keepalives_interval", "5"},
      {"keepalives_count", "3"},
  };
  if (!server.sslmode.empty()) keywords.emplace_back("sslmode", server.sslmode);
  if (!server.sslrootcert.empty()) keywords.emplace_back("sslrootcert", server.sslrootcert);
  return make_conninfo(keywords);
}

std::string make_conninfo(std::span<const std::pair<std::string, std::string>> keywords) {
  std::string conninfo;
  for (const auto& [keyword, value] : keywords) {
    if (!conninfo.empty()) conninfo += ' ';
    conninfo += keyword;
    conninfo += "='";
    for (const char c : value) {
      if (c == '\\' || c == '\'') conninfo += '\\';
      conninfo += c;
    }
    conninfo += '\'';
  }
  return conninfo;
}

}  // namespace tenantd::db
