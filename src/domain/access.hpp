// Roles, permissions and the principal: who is calling, for which tenant, allowed to do what.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tenantd {

enum class permission : std::uint32_t {
  users_read = 1U << 0,
  users_write = 1U << 1,
  users_delete = 1U << 2,
  members_manage = 1U << 3,
  tenant_read = 1U << 4,
  tenant_manage = 1U << 5,
};

using permission_set = std::uint32_t;

constexpr permission_set bit(permission p) noexcept { return static_cast<permission_set>(p); }
constexpr bool has(permission_set set, permission p) noexcept { return (set & bit(p)) != 0; }

std::string_view to_string(permission p) noexcept;
std::optional<permission> parse_permission(std::string_view name) noexcept;
// Names in a fixed order (users:read, users:write, ...).
std::vector<std::string> permission_names(permission_set set);

struct role_info {
  std::string name;
  int rank{0};  // owner > admin > member > viewer
  permission_set permissions{0};
};

// Roles and their permissions, as stored in the master database.
class role_table {
 public:
  // The built-in table (owner, admin, member, viewer), matching master migration V001.
  static role_table defaults();
  void set(role_info role);
  const role_info* find(std::string_view name) const noexcept;
  const std::vector<role_info>& all() const noexcept { return roles_; }

 private:
  std::vector<role_info> roles_;
};

// The authenticated caller of a protected route. The tenant comes only from a verified token.
struct principal {
  std::string tenant_id;
  std::string account_id;  // == JWT sub == user id
  std::string role;
  permission_set permissions{0};
  std::string session_id;
  std::string token_id;
  int tenant_schema_version{0};
};

}  // namespace tenantd
