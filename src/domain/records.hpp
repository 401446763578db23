// Plain records read from and written to the databases. Times are RFC 3339 UTC strings.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "domain/tenant_status.hpp"

namespace tenantd {

struct tenant_record {
  std::string id;
  std::string name;
  tenant_status status{tenant_status::provisioning};
  std::string registration;  // invite | open
  std::string database_name;
  std::optional<std::string> db_server;
  int schema_version{0};
  std::string created_at;
  std::string updated_at;
};

struct account_record {
  std::string id;
  std::string email;
  std::string password_hash;
  std::string first_name;
  std::string last_name;
  std::string created_at;
  std::string updated_at;
};

// A user as a tenant sees it (row of the tenant's users table).
struct user_record {
  std::string id;
  std::string email;
  std::string first_name;
  std::string last_name;
  std::string created_at;
  std::string updated_at;
};

struct member_record {
  std::string account_id;
  std::string role;
  std::string joined_at;
};

struct user_query {
  std::int64_t page{1};
  std::int64_t page_size{25};
  std::optional<std::string> email;  // substring, case-insensitive
  std::optional<std::string> q;      // substring of email or names
};

struct user_page {
  std::vector<user_record> items;
  std::int64_t total{0};
};

struct user_changes {
  std::optional<std::string> email;
  std::optional<std::string> first_name;
  std::optional<std::string> last_name;
  bool empty() const noexcept { return !email && !first_name && !last_name; }
};

}  // namespace tenantd
