// Tests for what the PostgreSQL client programs of backup and restore get to see: an
// environment with only what they need, never the server's secrets.
#include "tenancy/pg_tools.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace tenantd::tenancy {
namespace {

bool contains(const std::vector<std::string>& env, const std::string& entry) {
  return std::find(env.begin(), env.end(), entry) != env.end();
}

TEST(pg_tool_environment, keeps_only_what_pg_dump_needs_and_sets_the_password) {
  const char* parent[] = {"PATH=/usr/bin:/bin",
                          "HOME=/var/lib/tenantd",
                          "TMPDIR=/tmp",
                          "LANG=C.UTF-8",
                          "LC_ALL=C",
                          "TZ=UTC",
                          "PGSSLMODE=require",
                          "PGPASSWORD=the-parents-password",
                          "JWT_SECRET=0123456789abcdef0123456789abcdef",
                          "ADMIN_TOKEN=abcdefghijklmnopqrstuvwxyz012345",
                          "MASTER_DATABASE_URL=postgresql://u:secret@db/master",
                          "DB_PASSWORD=secret",
                          "MIGRATION_DATABASE_URL=postgresql://ddl:secret@db/master",
                          "AWS_SECRET_ACCESS_KEY=x",
                          "NOT_AN_ENTRY",
                          nullptr};
  const auto env = pg_tool_environment(parent, "tool-password");
  const std::vector<std::string> expected{
      "PATH=/usr/bin:/bin", "HOME=/var/lib/tenantd",   "TMPDIR=/tmp", "LANG=C.UTF-8", "LC_ALL=C", "TZ=UTC",
      "PGSSLMODE=require",  "PGPASSWORD=tool-password"};
  EXPECT_EQ(env, expected);
  for (const auto& entry : env) {
    EXPECT_EQ(entry.find("JWT_SECRET"), std::string::npos);
    EXPECT_EQ(entry.find("ADMIN_TOKEN"), std::string::npos);
    EXPECT_EQ(entry.find("secret@"), std::string::npos) << entry;
  }
  EXPECT_FALSE(contains(env, "PGPASSWORD=the-parents-password"));
}

TEST(pg_tool_environment, an_empty_parent_gives_just_the_password) {
  const char* parent[] = {nullptr};
  EXPECT_EQ(pg_tool_environment(parent, "pw"), std::vector<std::string>{"PGPASSWORD=pw"});
}

}  // namespace
}  // namespace tenantd::tenancy
