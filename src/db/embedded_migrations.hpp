// The SQL migration files compiled into the binary (see cmake/embed_migrations.cmake).
#pragma once
#include <string_view>
#include <vector>

namespace tenantd::db {

struct embedded_file {
  std::string_view file_name;  // e.g. "V001__initial.sql"
  std::string_view content;
};

const std::vector<embedded_file>& embedded_master_migrations();
const std::vector<embedded_file>& embedded_tenant_migrations();

}  // namespace tenantd::db
