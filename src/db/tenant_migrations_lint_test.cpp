// The tenant migrations keep tenants movable: logical replication (tenancy/mover.hpp) cannot
// replicate updates and deletes of a table without a primary key, so every CREATE TABLE in
// db/migrations/tenant must declare one. (A move also checks the live database before it starts.)
#include <gtest/gtest.h>

#include <cctype>
#include <regex>
#include <string>

#include "db/embedded_migrations.hpp"

namespace tenantd::db {
namespace {

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// The text of each CREATE TABLE statement (up to its closing parenthesis), comments removed.
std::vector<std::string> create_tables(const std::string& sql) {
  const std::string text = std::regex_replace(sql, std::regex("--[^\n]*"), "");
  std::vector<std::string> out;
  const std::regex start(R"(create\s+(unlogged\s+)?table\s+(if\s+not\s+exists\s+)?[^\s(]+\s*\()", std::regex::icase);
  for (std::sregex_iterator it(text.begin(), text.end(), start), end; it != end; ++it) {
    std::size_t i = static_cast<std::size_t>(it->position() + it->length());
    int depth = 1;
    while (i < text.size() && depth > 0) {
      if (text[i] == '(') ++depth;
      if (text[i] == ')') --depth;
      ++i;
    }
    out.push_back(text.substr(static_cast<std::size_t>(it->position()), i - static_cast<std::size_t>(it->position())));
  }
  return out;
}

TEST(tenant_migrations, every_table_has_a_primary_key) {
  int tables = 0;
  for (const auto& file : embedded_tenant_migrations()) {
    for (const auto& statement : create_tables(std::string(file.content))) {
      ++tables;
      EXPECT_NE(lower(statement).find("primary key"), std::string::npos)
          << file.file_name << ": a table without a primary key cannot be moved between servers:\n"
          << statement;
    }
  }
  EXPECT_GT(tables, 0) << "no CREATE TABLE found: the lint reads nothing";
}

TEST(tenant_migrations, the_lint_finds_a_table_without_one) {
  const auto found =
      create_tables("-- x\nCREATE TABLE notes (id int, body text);\ncreate table t2 (id int primary key);");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(lower(found[0]).find("primary key"), std::string::npos);
  EXPECT_NE(lower(found[1]).find("primary key"), std::string::npos);
}

}  // namespace
}  // namespace tenantd::db
