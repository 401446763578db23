// Read-only queries about the server and the master database for operators: tenant counts
// for metrics, role privileges, databases and applied migrations for `tenantd doctor`.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "db/connection.hpp"

namespace tenantd::db::inspection {

// Tenants per status in the master database (statuses with no tenant are absent).
boost::asio::awaitable<std::map<std::string, std::int64_t>> count_tenants_by_status(connection& c);

struct role_privileges {
  std::string name;
  bool create_db{false};
  bool superuser{false};
};
// The connected role's CREATEDB and SUPERUSER attributes.
boost::asio::awaitable<role_privileges> current_role_privileges(connection& c);

// Names of the databases on this server that start with `prefix` (exact prefix, no wildcards).
boost::asio::awaitable<std::vector<std::string>> databases_with_prefix(connection& c, const std::string& prefix);

struct applied_migration {
  int version{0};
  std::string checksum;
};
// Rows of schema_migrations in version order; empty if the table does not exist.
boost::asio::awaitable<std::vector<applied_migration>> applied_migrations(connection& c);

}  // namespace tenantd::db::inspection
