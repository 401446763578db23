// .env parsing and how the process environment and a .env file combine (read_environment).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "app/config.hpp"

namespace tenantd::app {
namespace {

const std::string good_url = "postgresql://tenantd:s3cret@db.internal:6543/tenantd_master";
const std::string good_secret = "0123456789abcdef0123456789abcdef";  // exactly 32 bytes

// ---- parse_dotenv ---------------------------------------------------------------------------

TEST(parse_dotenv, plain_pairs) {
  const auto env = parse_dotenv("A=1\nB=two\n");
  EXPECT_EQ(env, (environment{{"A", "1"}, {"B", "two"}}));
}

TEST(parse_dotenv, comments_and_blank_lines_are_skipped) {
  const auto env = parse_dotenv("# a comment\n\n   \n  # indented comment\nA=1\n\t\nB=2");
  EXPECT_EQ(env, (environment{{"A", "1"}, {"B", "2"}}));
}

TEST(parse_dotenv, export_prefix) {
  const auto env = parse_dotenv("export A=1\n  export   B = 2 \n");
  EXPECT_EQ(env, (environment{{"A", "1"}, {"B", "2"}}));
}

TEST(parse_dotenv, quotes_are_removed) {
  const auto env = parse_dotenv("A=\"double quoted\"\nB='single quoted'\nC=\"\"\nD='has # hash'\n");
  EXPECT_EQ(env.at("A"), "double quoted");
  EXPECT_EQ(env.at("B"), "single quoted");
  EXPECT_EQ(env.at("C"), "");
  EXPECT_EQ(env.at("D"), "has # hash");
}

TEST(parse_dotenv, mismatched_quotes_are_kept) {
  const auto env = parse_dotenv("A=\"open\nB='mixed\"\nC=\"\n");
  EXPECT_EQ(env.at("A"), "\"open");
  EXPECT_EQ(env.at("B"), "'mixed\"");
  EXPECT_EQ(env.at("C"), "\"");
}

TEST(parse_dotenv, equals_sign_inside_value) {
  const auto env =
      parse_dotenv("MASTER_DATABASE_URL=postgresql://u:p@h/db?sslmode=require&x=y\nJWT_SECRET=abc==\nQ=\"a=b\"\n");
  EXPECT_EQ(env.at("MASTER_DATABASE_URL"), "postgresql://u:p@h/db?sslmode=require&x=y");
  EXPECT_EQ(env.at("JWT_SECRET"), "abc==");
  EXPECT_EQ(env.at("Q"), "a=b");
}

TEST(parse_dotenv, keys_and_values_are_trimmed) {
  const auto env = parse_dotenv("  A  =  spaced value  \r\nB=crlf\r\n");
  EXPECT_EQ(env.at("A"), "spaced value");
  EXPECT_EQ(env.at("B"), "crlf");
}

TEST(parse_dotenv, lines_without_equals_are_ignored_and_later_lines_win) {
  const auto env = parse_dotenv("NOT_A_PAIR\nA=1\nA=2\nEMPTY=\n");
  EXPECT_EQ(env, (environment{{"A", "2"}, {"EMPTY", ""}}));
}

TEST(parse_dotenv, empty_text) { EXPECT_TRUE(parse_dotenv("").empty()); }

// Sets and restores process environment variables; removes the temporary .env file.
class read_environment_test : public testing::Test {
 protected:
  void TearDown() override {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second)
        ::setenv(it->first.c_str(), it->second->c_str(), 1);
      else
        ::unsetenv(it->first.c_str());
    }
    std::error_code ignored;
    std::filesystem::remove(dotenv_, ignored);
  }

  void remember(const std::string& name) {
    const char* old = std::getenv(name.c_str());
    saved_.emplace_back(name, old ? std::optional<std::string>(old) : std::nullopt);
  }
  void set(const std::string& name, const std::string& value) {
    remember(name);
    ASSERT_EQ(::setenv(name.c_str(), value.c_str(), 1), 0);
  }
  void unset(const std::string& name) {
    remember(name);
    ASSERT_EQ(::unsetenv(name.c_str()), 0);
  }
  void write_dotenv(const std::string& text) {
    std::ofstream out(dotenv_);
    out << text;
    ASSERT_TRUE(out.good());
  }

  const std::string dotenv_ =
      (std::filesystem::temp_directory_path() / ("tenantd_config_test_" + std::to_string(::getpid()) + ".env"))
          .string();
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

TEST_F(read_environment_test, dotenv_values_are_read) {
  unset("TENANTD_TEST_ONLY_IN_DOTENV");
  write_dotenv("# test\nexport TENANTD_TEST_ONLY_IN_DOTENV=\"from file\"\n");
  const auto env = read_environment(dotenv_);
  ASSERT_TRUE(env.contains("TENANTD_TEST_ONLY_IN_DOTENV"));
  EXPECT_EQ(env.at("TENANTD_TEST_ONLY_IN_DOTENV"), "from file");
}

TEST_F(read_environment_test, environment_wins_over_dotenv) {
  set("TENANTD_TEST_IN_BOTH", "from environment");
  unset("TENANTD_TEST_ONLY_IN_DOTENV");
  write_dotenv("TENANTD_TEST_IN_BOTH=from file\nTENANTD_TEST_ONLY_IN_DOTENV=file only\n");
  const auto env = read_environment(dotenv_);
  EXPECT_EQ(env.at("TENANTD_TEST_IN_BOTH"), "from environment");
  EXPECT_EQ(env.at("TENANTD_TEST_ONLY_IN_DOTENV"), "file only");
}

TEST_F(read_environment_test, environment_values_keep_equals_signs) {
  set("TENANTD_TEST_WITH_EQUALS", "a=b=c");
  const auto env = read_environment(dotenv_);  // no .env file written
  EXPECT_EQ(env.at("TENANTD_TEST_WITH_EQUALS"), "a=b=c");
}

TEST_F(read_environment_test, missing_dotenv_is_not_an_error) {
  set("TENANTD_TEST_FROM_ENV", "yes");
  environment env;
  ASSERT_NO_THROW(env = read_environment(dotenv_ + ".does-not-exist"));
  EXPECT_EQ(env.at("TENANTD_TEST_FROM_ENV"), "yes");
}

TEST_F(read_environment_test, full_config_from_dotenv_and_environment) {
  for (const char* name : {"MASTER_DATABASE_URL", "JWT_SECRET", "PORT", "LOG_LEVEL", "DB_HOST", "DB_PORT",
                           "DB_USERNAME", "DB_PASSWORD", "TENANT_SIGNUP", "ADMIN_TOKEN", "CORS_ORIGINS",
                           "TENANT_DB_PREFIX", "TENANT_POOL_SIZE", "TENANT_POOL_MAX_CONNECTIONS", "JWT_EXPIRATION"})
    unset(name);
  set("PORT", "9100");
  write_dotenv("MASTER_DATABASE_URL=" + good_url + "\nJWT_SECRET='" + good_secret + "'\nPORT=9000\nLOG_LEVEL=debug\n");
  const auto c = load_config(read_environment(dotenv_));
  EXPECT_EQ(c.port, 9100);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.jwt_secret, good_secret);
  EXPECT_EQ(c.master_database_name, "tenantd_master");
  EXPECT_EQ(c.tenant.host, "db.internal");
}

}  // namespace
}  // namespace tenantd::app
