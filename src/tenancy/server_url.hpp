// A database server's postgresql:// URL, as an operator gives it to POST /admin/servers or
// `tenantd servers add`: host, port, optional user and password (defaulting to the tenant
// role's, DB_USERNAME/DB_PASSWORD), optional maintenance database (the path, default
// "postgres": where CREATE DATABASE runs) and libpq's sslmode/sslrootcert from the query.
#pragma once
#include <string>
#include <string_view>

#include "db/conninfo.hpp"
#include "domain/error.hpp"

namespace tenantd::tenancy {

struct server_url {
  db::server_endpoint endpoint;  // user and password filled from the defaults when absent
  std::string maintenance_database{"postgres"};
};

// The parsed URL, or errc::invalid_input naming what is wrong (never echoing the password).
result<server_url> parse_server_url(std::string_view text, const std::string& default_user,
                                    const std::string& default_password);

}  // namespace tenantd::tenancy
