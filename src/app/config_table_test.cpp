// The configuration table is the one place a default, range or choice is written: README's
// configuration table and .env.example must agree with it, load_config must enforce its
// ranges and choices, and the config struct's initial values must be its defaults.
#include "app/config_table.hpp"

#include <gtest/gtest.h>

#include <charconv>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "app/config.hpp"

namespace tenantd::app {
namespace {

std::string read_source_file(const std::string& relative) {
  std::ifstream in(std::string(TENANTD_SOURCE_DIR) + "/" + relative);
  EXPECT_TRUE(in.good()) << relative;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

environment minimal() {
  return {{"MASTER_DATABASE_URL", "postgresql://tenantd:pw@db:5432/tenantd_master"},
          {"JWT_SECRET", "0123456789abcdef0123456789abcdef"}};
}

TEST(config_table, names_are_unique_and_defaults_fit_their_rules) {
  std::set<std::string_view> names;
  for (const auto& s : config_table()) {
    SCOPED_TRACE(std::string(s.name));
    EXPECT_TRUE(names.insert(s.name).second) << "listed twice";
    EXPECT_FALSE(s.description.empty());
    EXPECT_FALSE(s.fallback.empty() && s.default_note.empty()) << "a setting without a default says why";
    if (s.type == setting_type::whole_number) {
      EXPECT_LE(s.min, s.max);
      if (!s.fallback.empty()) {
        long long value = 0;
        const auto [end, ec] = std::from_chars(s.fallback.data(), s.fallback.data() + s.fallback.size(), value);
        EXPECT_TRUE(ec == std::errc{} && end == s.fallback.data() + s.fallback.size());
        EXPECT_GE(value, s.min);
        EXPECT_LE(value, s.max);
      }
    }
    if (s.type == setting_type::choice) {
      EXPECT_NE(("|" + std::string(s.choices) + "|").find("|" + std::string(s.fallback) + "|"), std::string::npos);
    }
  }
  EXPECT_THROW((void)setting_named("NO_SUCH_SETTING"), std::out_of_range);
}

TEST(config_table, readme_configuration_table_is_the_table) {
  const auto lines = lines_of(read_source_file("README.md"));
  std::vector<std::string> rows;
  bool inside = false;
  for (const auto& line : lines) {
    if (line == "| variable | default | meaning |") {
      inside = true;
      continue;
    }
    if (!inside || line == "|---|---|---|") continue;
    if (!line.starts_with("|")) break;
    rows.push_back(line);
  }
  std::vector<std::string> expected;
  for (const auto& s : config_table()) expected.push_back(readme_row(s));
  ASSERT_FALSE(rows.empty()) << "README.md has no configuration table";
  EXPECT_EQ(rows, expected) << "README.md's configuration table differs from config_table() (config_table.cpp): "
                               "change the table and copy its rows, or the other way round";
}

TEST(config_table, env_example_lists_every_setting_with_its_default) {
  const std::regex assignment(R"(^#? ?([A-Z][A-Z0-9_]*)=(.*)$)");
  std::map<std::string, std::string> first_value;  // the documented line; later ones are examples
  for (const auto& line : lines_of(read_source_file(".env.example"))) {
    std::smatch m;
    if (!std::regex_match(line, m, assignment)) continue;
    EXPECT_NO_THROW((void)setting_named(m[1].str())) << ".env.example sets " << m[1] << ", which is no setting";
    first_value.emplace(m[1].str(), m[2].str());
  }
  for (const auto& s : config_table()) {
    SCOPED_TRACE(std::string(s.name));
    const auto it = first_value.find(std::string(s.name));
    ASSERT_NE(it, first_value.end()) << "missing from .env.example";
    if (!s.fallback.empty()) {
      EXPECT_EQ(it->second, s.fallback) << ".env.example shows another default than config_table()";
    }
  }
}

TEST(config_table, load_config_enforces_every_range_and_choice) {
  for (const auto& s : config_table()) {
    const std::string name(s.name);
    SCOPED_TRACE(name);
    std::vector<std::string> bad;
    if (s.type == setting_type::whole_number) bad = {std::to_string(s.min - 1), std::to_string(s.max + 1), "1x"};
    if (s.type == setting_type::choice) bad = {"no-such-choice"};
    for (const auto& value : bad) {
      auto env = minimal();
      env[name] = value;
      try {
        (void)load_config(env);
        ADD_FAILURE() << name << "=" << value << " was accepted";
      } catch (const config_error& e) {
        EXPECT_TRUE(std::string(e.what()).starts_with(name + ": ")) << e.what();
      }
    }
    if (s.type == setting_type::whole_number) {
      auto env = minimal();
      env[name] = std::to_string(s.max + 1);
      try {
        (void)load_config(env);
      } catch (const config_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  name + ": must be between " + std::to_string(s.min) + " and " + std::to_string(s.max));
      }
    }
  }
}

// The struct's initial values (config.hpp) are the table's defaults, so code that builds a
// config by hand behaves as an empty environment does.
TEST(config_table, config_struct_starts_at_the_table_defaults) {
  const config loaded = load_config(minimal());
  const config initial;
  EXPECT_EQ(initial.tenant_db_prefix, loaded.tenant_db_prefix);
  EXPECT_EQ(initial.tenant_provisioning_template, loaded.tenant_provisioning_template);
  EXPECT_EQ(initial.backup_dir, loaded.backup_dir);
  EXPECT_EQ(initial.jwt_expiration, loaded.jwt_expiration);
  EXPECT_EQ(initial.invitation_ttl_hours, loaded.invitation_ttl_hours);
  EXPECT_EQ(initial.host, loaded.host);
  EXPECT_EQ(initial.port, loaded.port);
  EXPECT_EQ(initial.log_level, loaded.log_level);
  EXPECT_EQ(initial.log_format, loaded.log_format);
  EXPECT_EQ(initial.metrics_port, loaded.metrics_port);
  EXPECT_EQ(initial.slow_query, loaded.slow_query);
  EXPECT_EQ(initial.shutdown_timeout, loaded.shutdown_timeout);
  EXPECT_EQ(initial.tenant_signup_open, loaded.tenant_signup_open);
  EXPECT_EQ(initial.login_max_failures_per_account, loaded.login_max_failures_per_account);
  EXPECT_EQ(initial.login_max_failures_per_client, loaded.login_max_failures_per_client);
  EXPECT_EQ(initial.tenant_creates_per_client, loaded.tenant_creates_per_client);
  EXPECT_EQ(initial.login_max_failures_per_account_per_hour, loaded.login_max_failures_per_account_per_hour);
  EXPECT_EQ(initial.login_successes_per_account, loaded.login_successes_per_account);
  EXPECT_EQ(initial.login_successes_per_client, loaded.login_successes_per_client);
  EXPECT_EQ(initial.registrations_per_client, loaded.registrations_per_client);
  EXPECT_EQ(initial.tenant_requests_per_second, loaded.tenant_requests_per_second);
  EXPECT_EQ(initial.tenant_request_burst, loaded.tenant_request_burst);
  EXPECT_EQ(initial.session_requests_per_second, loaded.session_requests_per_second);
  EXPECT_EQ(initial.session_request_burst, loaded.session_request_burst);
  EXPECT_EQ(initial.threads, loaded.threads);
  EXPECT_EQ(initial.master_pool_size, loaded.master_pool_size);
  EXPECT_EQ(initial.tenant_pool_size, loaded.tenant_pool_size);
  EXPECT_EQ(initial.tenant_pool_max_connections, loaded.tenant_pool_max_connections);
  EXPECT_EQ(initial.pool_acquire_timeout, loaded.pool_acquire_timeout);
  EXPECT_EQ(initial.pool_idle_timeout, loaded.pool_idle_timeout);
  EXPECT_EQ(initial.statement_timeout, loaded.statement_timeout);
  EXPECT_EQ(initial.usage_enabled, loaded.usage_enabled);
  EXPECT_EQ(initial.usage_flush_interval, loaded.usage_flush_interval);
  EXPECT_EQ(initial.usage_retention_days, loaded.usage_retention_days);
  EXPECT_EQ(initial.usage_size_interval, loaded.usage_size_interval);
  EXPECT_EQ(initial.usage_max_tenants, loaded.usage_max_tenants);
  EXPECT_EQ(initial.argon2_memory_kib, loaded.argon2_memory_kib);
  EXPECT_EQ(initial.argon2_iterations, loaded.argon2_iterations);
  EXPECT_EQ(initial.argon2_threads, loaded.argon2_threads);
  EXPECT_EQ(initial.argon2_max_queue, loaded.argon2_max_queue);
}

}  // namespace
}  // namespace tenantd::app
