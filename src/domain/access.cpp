// Permission names and the built-in role table.
#include "domain/access.hpp"

#include <array>
#include <utility>

namespace tenantd {
namespace {
constexpr std::array<std::pair<permission, std::string_view>, 6> names{{
    {permission::users_read, "users:read"},
    {permission::users_write, "users:write"},
    {permission::users_delete, "users:delete"},
    {permission::members_manage, "members:manage"},
    {permission::tenant_read, "tenant:read"},
    {permission::tenant_manage, "tenant:manage"},
}};
}  // namespace

std::string_view to_string(permission p) noexcept {
  for (const auto& [value, name] : names)
    if (value == p) return name;
  return "";
}

std::optional<permission> parse_permission(std::string_view name) noexcept {
  for (const auto& [value, n] : names)
    if (n == name) return value;
  return std::nullopt;
}

std::vector<std::string> permission_names(permission_set set) {
  std::vector<std::string> out;
  for (const auto& [value, name] : names)
    if (has(set, value)) out.emplace_back(name);
  return out;
}

role_table role_table::defaults() {
  using enum permission;
  role_table t;
  t.set({"owner", 40,
         bit(users_read) | bit(users_write) | bit(users_delete) | bit(members_manage) | bit(tenant_read) |
             bit(tenant_manage)});
  t.set({"admin", 30, bit(users_read) | bit(users_write) | bit(users_delete) | bit(members_manage) | bit(tenant_read)});
  t.set({"member", 20, bit(users_read) | bit(users_write) | bit(tenant_read)});
  t.set({"viewer", 10, bit(users_read) | bit(tenant_read)});
  return t;
}

void role_table::set(role_info role) {
  for (auto& r : roles_)
    if (r.name == role.name) {
      r = std::move(role);
      return;
    }
  roles_.push_back(std::move(role));
}

const role_info* role_table::find(std::string_view name) const noexcept {
  for (const auto& r : roles_)
    if (r.name == name) return &r;
  return nullptr;
}

}  // namespace tenantd
