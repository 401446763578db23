// Tests for permission names and the built-in role table, which must equal API.md's
// "Roles and permissions" table exactly.
#include "domain/access.hpp"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace tenantd {
namespace {

const std::vector<permission> all_permissions{permission::users_read,   permission::users_write,
                                              permission::users_delete, permission::members_manage,
                                              permission::tenant_read,  permission::tenant_manage};

// API.md, "Roles and permissions", in the table's order.
const std::vector<std::pair<std::string, std::vector<std::string>>> api_md_roles{
    {"owner", {"users:read", "users:write", "users:delete", "members:manage", "tenant:read", "tenant:manage"}},
    {"admin", {"users:read", "users:write", "users:delete", "members:manage", "tenant:read"}},
    {"member", {"users:read", "users:write", "tenant:read"}},
    {"viewer", {"users:read", "tenant:read"}},
};

TEST(permission, names) {
  EXPECT_EQ(to_string(permission::users_read), "users:read");
  EXPECT_EQ(to_string(permission::users_write), "users:write");
  EXPECT_EQ(to_string(permission::users_delete), "users:delete");
  EXPECT_EQ(to_string(permission::members_manage), "members:manage");
  EXPECT_EQ(to_string(permission::tenant_read), "tenant:read");
  EXPECT_EQ(to_string(permission::tenant_manage), "tenant:manage");
}

TEST(permission, names_round_trip) {
  std::set<std::string_view> names;
  std::set<permission_set> bits;
  for (const auto p : all_permissions) {
    const auto name = to_string(p);
    EXPECT_FALSE(name.empty());
    EXPECT_TRUE(names.insert(name).second) << name;
    EXPECT_TRUE(bits.insert(bit(p)).second) << name;
    EXPECT_EQ(parse_permission(name), p) << name;
  }
}

TEST(permission, unknown_names_do_not_parse) {
  for (const std::string_view name : {"", "users", "users:", ":read", "USERS:READ", "Users:read", "users:read ",
                                      " users:read", "users_read", "users:admin", "tenant:delete", "*"})
    EXPECT_EQ(parse_permission(name), std::nullopt) << name;
}

TEST(permission, bits_and_names) {
  EXPECT_TRUE(permission_names(0).empty());
  permission_set all = 0;
  for (const auto p : all_permissions) {
    EXPECT_TRUE(has(bit(p), p));
    EXPECT_FALSE(has(0, p));
    EXPECT_EQ(permission_names(bit(p)), std::vector<std::string>{std::string(to_string(p))});
    all |= bit(p);
  }
  EXPECT_EQ(permission_names(all), (std::vector<std::string>{"users:read", "users:write", "users:delete",
                                                             "members:manage", "tenant:read", "tenant:manage"}));
  // Fixed order whatever the bits; unknown bits are ignored.
  EXPECT_EQ(permission_names(bit(permission::tenant_manage) | bit(permission::users_read) | (1U << 31)),
            (std::vector<std::string>{"users:read", "tenant:manage"}));
  const permission_set read_only = bit(permission::users_read) | bit(permission::tenant_read);
  EXPECT_TRUE(has(read_only, permission::tenant_read));
  EXPECT_FALSE(has(read_only, permission::users_write));
}

TEST(role_table, defaults_equal_api_md) {
  const auto table = role_table::defaults();
  ASSERT_EQ(table.all().size(), api_md_roles.size());
  for (std::size_t i = 0; i < api_md_roles.size(); ++i) {
    const auto& [name, permissions] = api_md_roles[i];
    SCOPED_TRACE(name);
    EXPECT_EQ(table.all()[i].name, name);
    const role_info* role = table.find(name);
    ASSERT_NE(role, nullptr);
    EXPECT_EQ(role->name, name);
    EXPECT_EQ(permission_names(role->permissions), permissions);
    // No stray bits beyond the named permissions.
    permission_set expected = 0;
    for (const auto& p : permissions) expected |= bit(*parse_permission(p));
    EXPECT_EQ(role->permissions, expected);
  }
}

TEST(role_table, ranks_order_owner_admin_member_viewer) {
  const auto table = role_table::defaults();
  const auto rank = [&](std::string_view name) { return table.find(name)->rank; };
  EXPECT_GT(rank("owner"), rank("admin"));
  EXPECT_GT(rank("admin"), rank("member"));
  EXPECT_GT(rank("member"), rank("viewer"));
  EXPECT_GT(rank("viewer"), 0);
}

TEST(role_table, the_permissions_api_md_relies_on) {
  const auto table = role_table::defaults();
  const auto can = [&](std::string_view role, permission p) { return has(table.find(role)->permissions, p); };
  EXPECT_TRUE(can("owner", permission::tenant_manage));
  EXPECT_FALSE(can("admin", permission::tenant_manage));
  EXPECT_TRUE(can("admin", permission::members_manage));
  EXPECT_FALSE(can("member", permission::members_manage));
  EXPECT_TRUE(can("admin", permission::users_delete));
  EXPECT_FALSE(can("member", permission::users_delete));
  EXPECT_TRUE(can("member", permission::users_write));
  EXPECT_FALSE(can("viewer", permission::users_write));
  for (const auto* role : {"owner", "admin", "member", "viewer"}) {
    EXPECT_TRUE(can(role, permission::users_read)) << role;
    EXPECT_TRUE(can(role, permission::tenant_read)) << role;
  }
}

TEST(role_table, find_is_exact) {
  const auto table = role_table::defaults();
  for (const std::string_view name : {"", "Owner", "OWNER", "owner ", "superuser", "members"})
    EXPECT_EQ(table.find(name), nullptr) << name;
}

TEST(role_table, set_replaces_or_adds) {
  auto table = role_table::defaults();
  table.set({"viewer", 10, bit(permission::users_read)});
  EXPECT_EQ(table.all().size(), 4U);
  EXPECT_EQ(table.find("viewer")->permissions, bit(permission::users_read));
  table.set({"auditor", 5, bit(permission::tenant_read)});
  EXPECT_EQ(table.all().size(), 5U);
  ASSERT_NE(table.find("auditor"), nullptr);
  EXPECT_EQ(table.find("auditor")->rank, 5);
  // Defaults are a fresh copy each time.
  EXPECT_EQ(role_table::defaults().find("viewer")->permissions,
            bit(permission::users_read) | bit(permission::tenant_read));
  EXPECT_EQ(role_table::defaults().find("auditor"), nullptr);
}

}  // namespace
}  // namespace tenantd
