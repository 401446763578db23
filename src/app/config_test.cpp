// Tests for configuration: every variable's default, each rejection naming its variable,
// DB_* defaulting to the master URL (.env parsing and precedence: dotenv_test.cpp).
#include "app/config.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace tenantd::app {
namespace {

const std::string good_url = "postgresql://tenantd:s3cret@db.internal:6543/tenantd_master";
const std::string good_secret = "0123456789abcdef0123456789abcdef";       // exactly 32 bytes
const std::string good_admin_token = "abcdefghijklmnopqrstuvwxyz012345";  // exactly 32 chars

environment minimal() { return {{"MASTER_DATABASE_URL", good_url}, {"JWT_SECRET", good_secret}}; }

environment with(std::initializer_list<std::pair<const std::string, std::string>> changes) {
  auto env = minimal();
  for (const auto& [key, value] : changes) env[key] = value;
  return env;
}

// The config_error message for env, or nullopt when it loads.
std::optional<std::string> rejection(const environment& env) {
  try {
    (void)load_config(env);
  } catch (const config_error& e) {
    return std::string(e.what());
  }
  return std::nullopt;
}

// Expects env to be rejected with a message that starts with the variable's name.
void expect_rejected(const environment& env, const std::string& variable, const std::string& why) {
  const auto message = rejection(env);
  ASSERT_TRUE(message.has_value()) << why << ": expected a config_error naming " << variable;
  EXPECT_EQ(message->rfind(variable + ":", 0), 0U) << why << ": message was '" << *message << "'";
}

// ---- load_config: defaults ------------------------------------------------------------------

TEST(load_config, defaults) {
  const auto c = load_config(minimal());
  EXPECT_EQ(c.master_database_url, good_url);
  EXPECT_EQ(c.master_database_name, "tenantd_master");
  EXPECT_EQ(c.master.host, "db.internal");
  EXPECT_EQ(c.master.port, "6543");
  EXPECT_EQ(c.master.user, "tenantd");
  EXPECT_EQ(c.master.password, "s3cret");
  EXPECT_EQ(c.tenant.host, "db.internal");
  EXPECT_EQ(c.tenant.port, "6543");
  EXPECT_EQ(c.tenant.user, "tenantd");
  EXPECT_EQ(c.tenant.password, "s3cret");
  EXPECT_EQ(c.tenant_db_prefix, "tenant_");

  EXPECT_EQ(c.jwt_secret, good_secret);
  EXPECT_FALSE(c.jwt_key_id.empty());
  EXPECT_EQ(c.jwt_expiration, 3600);

  EXPECT_TRUE(c.cors_origins.empty());
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.port, 8000);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.log_format, "text");
  EXPECT_TRUE(c.tenant_signup_open);
  EXPECT_EQ(c.admin_token, "");

  EXPECT_EQ(c.login_max_failures_per_account, 10);
  EXPECT_EQ(c.login_max_failures_per_client, 30);
  EXPECT_EQ(c.tenant_requests_per_second, 1000);
  EXPECT_EQ(c.tenant_request_burst, 2000);
  EXPECT_EQ(c.session_requests_per_second, 200);
  EXPECT_EQ(c.session_request_burst, 400);
  EXPECT_EQ(c.tenant_creates_per_client, 30);

  EXPECT_EQ(c.threads, 0U);
  EXPECT_EQ(c.master_pool_size, 8U);
  EXPECT_EQ(c.tenant_pool_size, 4U);
  EXPECT_EQ(c.tenant_pool_max_connections, 64U);
  EXPECT_EQ(c.pool_acquire_timeout, std::chrono::milliseconds(2000));
  EXPECT_EQ(c.pool_idle_timeout, std::chrono::seconds(60));
  EXPECT_EQ(c.statement_timeout, std::chrono::milliseconds(5000));

  EXPECT_EQ(c.argon2_memory_kib, 19456U);
  EXPECT_EQ(c.argon2_iterations, 2U);
  EXPECT_EQ(c.argon2_threads, 0U);
  EXPECT_EQ(c.argon2_max_queue, 64U);
}

TEST(load_config, empty_values_mean_default) {
  const auto c = load_config(with({{"PORT", ""},
                                   {"HOST", ""},
                                   {"LOG_LEVEL", ""},
                                   {"TENANT_SIGNUP", ""},
                                   {"JWT_EXPIRATION", ""},
                                   {"TENANT_DB_PREFIX", ""},
                                   {"DB_HOST", ""}}));
  EXPECT_EQ(c.port, 8000);
  EXPECT_EQ(c.host, "0.0.0.0");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_TRUE(c.tenant_signup_open);
  EXPECT_EQ(c.jwt_expiration, 3600);
  EXPECT_EQ(c.tenant_db_prefix, "tenant_");
  EXPECT_EQ(c.tenant.host, "db.internal");
}

TEST(load_config, every_setting_is_read) {
  const auto c = load_config(with({{"DB_HOST", "tenants.internal"},
                                   {"DB_PORT", "5433"},
                                   {"DB_USERNAME", "tenant_user"},
                                   {"DB_PASSWORD", "tenant_pw"},
                                   {"TENANT_DB_PREFIX", "t_"},
                                   {"JWT_KEY_ID", "k1"},
                                   {"JWT_EXPIRATION", "900"},
                                   {"CORS_ORIGINS", "https://app.example.com, http://localhost:3000"},
                                   {"HOST", "127.0.0.1"},
                                   {"PORT", "9000"},
                                   {"LOG_LEVEL", "debug"},
                                   {"LOG_FORMAT", "json"},
                                   {"TENANT_SIGNUP", "closed"},
                                   {"ADMIN_TOKEN", good_admin_token},
                                   {"LOGIN_MAX_FAILURES_PER_ACCOUNT", "5"},
                                   {"LOGIN_MAX_FAILURES_PER_CLIENT", "7"},
                                   {"TENANT_CREATES_PER_CLIENT", "3"},
                                   {"TENANT_REQUESTS_PER_SECOND", "300"},
                                   {"TENANT_REQUEST_BURST", "301"},
                                   {"SESSION_REQUESTS_PER_SECOND", "30"},
                                   {"SESSION_REQUEST_BURST", "31"},
                                   {"THREADS", "2"},
                                   {"MASTER_POOL_SIZE", "3"},
                                   {"TENANT_POOL_SIZE", "2"},
                                   {"TENANT_POOL_MAX_CONNECTIONS", "10"},
                                   {"POOL_ACQUIRE_TIMEOUT_MS", "500"},
                                   {"POOL_IDLE_TIMEOUT_S", "30"},
                                   {"STATEMENT_TIMEOUT_MS", "1000"},
                                   {"ARGON2_MEMORY_KIB", "1024"},
                                   {"ARGON2_ITERATIONS", "3"},
                                   {"ARGON2_THREADS", "1"},
                                   {"ARGON2_MAX_QUEUE", "8"}}));
  EXPECT_EQ(c.tenant.host, "tenants.internal");
  EXPECT_EQ(c.tenant.port, "5433");
  EXPECT_EQ(c.tenant.user, "tenant_user");
  EXPECT_EQ(c.tenant.password, "tenant_pw");
  EXPECT_EQ(c.master.host, "db.internal");  // the master keeps its own URL's parts
  EXPECT_EQ(c.master.user, "tenantd");
  EXPECT_EQ(c.tenant_db_prefix, "t_");
  EXPECT_EQ(c.jwt_key_id, "k1");
  EXPECT_EQ(c.jwt_expiration, 900);
  EXPECT_EQ(c.cors_origins, (std::vector<std::string>{"https://app.example.com", "http://localhost:3000"}));
  EXPECT_EQ(c.host, "127.0.0.1");
  EXPECT_EQ(c.port, 9000);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.log_format, "json");
  EXPECT_FALSE(c.tenant_signup_open);
  EXPECT_EQ(c.admin_token, good_admin_token);
  EXPECT_EQ(c.login_max_failures_per_account, 5);
  EXPECT_EQ(c.login_max_failures_per_client, 7);
  EXPECT_EQ(c.tenant_requests_per_second, 300);
  EXPECT_EQ(c.tenant_request_burst, 301);
  EXPECT_EQ(c.session_requests_per_second, 30);
  EXPECT_EQ(c.session_request_burst, 31);
  EXPECT_EQ(c.tenant_creates_per_client, 3);
  EXPECT_EQ(c.threads, 2U);
  EXPECT_EQ(c.master_pool_size, 3U);
  EXPECT_EQ(c.tenant_pool_size, 2U);
  EXPECT_EQ(c.tenant_pool_max_connections, 10U);
  EXPECT_EQ(c.pool_acquire_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(c.pool_idle_timeout, std::chrono::seconds(30));
  EXPECT_EQ(c.statement_timeout, std::chrono::milliseconds(1000));
  EXPECT_EQ(c.argon2_memory_kib, 1024U);
  EXPECT_EQ(c.argon2_iterations, 3U);
  EXPECT_EQ(c.argon2_threads, 1U);
  EXPECT_EQ(c.argon2_max_queue, 8U);
}

// ---- MASTER_DATABASE_URL and DB_* -----------------------------------------------------------

TEST(load_config, master_url_required) {
  auto env = minimal();
  env.erase("MASTER_DATABASE_URL");
  expect_rejected(env, "MASTER_DATABASE_URL", "missing");
  expect_rejected(with({{"MASTER_DATABASE_URL", ""}}), "MASTER_DATABASE_URL", "empty");
}

TEST(load_config, master_url_garbage) {
  for (const std::string url : {"garbage", "not a url at all", "mysql://u:p@h:3306/db", "http://h/db",
                                "postgresql://h:notaport/db", "://nothing"})
    expect_rejected(with({{"MASTER_DATABASE_URL", url}}), "MASTER_DATABASE_URL", url);
}

TEST(load_config, master_url_without_database_name) {
  for (const std::string url : {"postgresql://u:p@h:5432", "postgresql://u:p@h:5432/", "postgresql://u:p@h/a/b"})
    expect_rejected(with({{"MASTER_DATABASE_URL", url}}), "MASTER_DATABASE_URL", url);
}

TEST(load_config, master_url_parts_and_their_defaults) {
  const auto c = load_config(with({{"MASTER_DATABASE_URL", "postgres:///tenantd_master"}}));
  EXPECT_EQ(c.master_database_name, "tenantd_master");
  EXPECT_EQ(c.master.host, "localhost");
  EXPECT_EQ(c.master.port, "5432");
  EXPECT_EQ(c.master.user, "");
  EXPECT_EQ(c.master.password, "");
  EXPECT_EQ(c.tenant.host, "localhost");
  EXPECT_EQ(c.tenant.port, "5432");

  const auto encoded = load_config(
      with({{"MASTER_DATABASE_URL", "postgresql://us%40er:p%3Aw%2Fd@127.0.0.1/master_db?sslmode=disable"}}));
  EXPECT_EQ(encoded.master.user, "us@er");
  EXPECT_EQ(encoded.master.password, "p:w/d");
  EXPECT_EQ(encoded.tenant.user, "us@er");
  EXPECT_EQ(encoded.tenant.password, "p:w/d");
  EXPECT_EQ(encoded.master.host, "127.0.0.1");
  EXPECT_EQ(encoded.master.port, "5432");
  EXPECT_EQ(encoded.master_database_name, "master_db");
}

TEST(load_config, db_variables_default_to_master_parts_individually) {
  const auto c = load_config(with({{"DB_HOST", "other-host"}}));
  EXPECT_EQ(c.tenant.host, "other-host");
  EXPECT_EQ(c.tenant.port, "6543");
  EXPECT_EQ(c.tenant.user, "tenantd");
  EXPECT_EQ(c.tenant.password, "s3cret");
}

TEST(load_config, db_port_validated) {
  for (const std::string port : {"0", "65536", "-1", "abc", "54x", " 5432"})
    expect_rejected(with({{"DB_PORT", port}}), "DB_PORT", port);
  EXPECT_EQ(load_config(with({{"DB_PORT", "65535"}})).tenant.port, "65535");
}

// ---- TENANT_DB_PREFIX -----------------------------------------------------------------------

TEST(load_config, tenant_db_prefix_rules) {
  for (const std::string ok : {"t", "tenant_", "db2_", "abcdefghijklmnopqrst"})
    EXPECT_EQ(load_config(with({{"TENANT_DB_PREFIX", ok}})).tenant_db_prefix, ok);
  for (const std::string bad :
       {"Tenant_", "_tenant", "1tenant", "tenant-", "ten ant", "tenant;drop", "abcdefghijklmnopqrstu", "t\xc3\xa9"})
    expect_rejected(with({{"TENANT_DB_PREFIX", bad}}), "TENANT_DB_PREFIX", bad);
}

// ---- JWT ------------------------------------------------------------------------------------

TEST(load_config, jwt_secret_required) {
  auto env = minimal();
  env.erase("JWT_SECRET");
  expect_rejected(env, "JWT_SECRET", "missing");
  expect_rejected(with({{"JWT_SECRET", ""}}), "JWT_SECRET", "empty");
}

TEST(load_config, jwt_secret_at_least_32_bytes) {
  expect_rejected(with({{"JWT_SECRET", good_secret.substr(0, 31)}}), "JWT_SECRET", "31 bytes");
  expect_rejected(with({{"JWT_SECRET", "short"}}), "JWT_SECRET", "5 bytes");
  EXPECT_EQ(load_config(with({{"JWT_SECRET", good_secret}})).jwt_secret, good_secret);
}

TEST(load_config, jwt_secret_example_value_rejected) {
  ASSERT_GE(std::string(example_jwt_secret).size(), 32U);
  expect_rejected(with({{"JWT_SECRET", example_jwt_secret}}), "JWT_SECRET", "example value");
}

TEST(load_config, jwt_key_id_derived_from_secret) {
  const auto a = load_config(minimal());
  const auto b = load_config(minimal());
  const auto other = load_config(with({{"JWT_SECRET", good_secret + "x"}}));
  EXPECT_EQ(a.jwt_key_id, b.jwt_key_id);
  EXPECT_NE(a.jwt_key_id, other.jwt_key_id);
  EXPECT_EQ(a.jwt_key_id.find(good_secret), std::string::npos);
}

TEST(load_config, jwt_expiration_range) {
  EXPECT_EQ(load_config(with({{"JWT_EXPIRATION", "60"}})).jwt_expiration, 60);
  EXPECT_EQ(load_config(with({{"JWT_EXPIRATION", "604800"}})).jwt_expiration, 604800);
  for (const std::string bad : {"59", "0", "-3600", "604801", "1h", "3600.0", "abc"})
    expect_rejected(with({{"JWT_EXPIRATION", bad}}), "JWT_EXPIRATION", bad);
}

TEST(load_config, invitation_ttl_hours_range) {
  EXPECT_EQ(load_config(with({})).invitation_ttl_hours, 168);
  EXPECT_EQ(load_config(with({{"INVITATION_TTL_HOURS", "1"}})).invitation_ttl_hours, 1);
  EXPECT_EQ(load_config(with({{"INVITATION_TTL_HOURS", "8760"}})).invitation_ttl_hours, 8760);
  for (const std::string bad : {"0", "-1", "8761", "24h", "1.5", "abc"})
    expect_rejected(with({{"INVITATION_TTL_HOURS", bad}}), "INVITATION_TTL_HOURS", bad);
}

// ---- HOST, PORT, logging --------------------------------------------------------------------

TEST(load_config, port_range) {
  EXPECT_EQ(load_config(with({{"PORT", "0"}})).port, 0);  // an ephemeral port, for tests
  EXPECT_EQ(load_config(with({{"PORT", "1"}})).port, 1);
  EXPECT_EQ(load_config(with({{"PORT", "65535"}})).port, 65535);
  for (const std::string bad :
       {"65536", "70000", "-1", "99999999999999999999", "80a", "eighty", "8000 ", "+80", "0x50"})
    expect_rejected(with({{"PORT", bad}}), "PORT", bad);
}

TEST(load_config, log_level_and_format) {
  for (const std::string level : {"trace", "debug", "info", "warn", "error", "off"})
    EXPECT_EQ(load_config(with({{"LOG_LEVEL", level}})).log_level, level);
  EXPECT_EQ(load_config(with({{"LOG_LEVEL", "DEBUG"}})).log_level, "debug");
  for (const std::string bad : {"verbose", "warning", "infos", "1"})
    expect_rejected(with({{"LOG_LEVEL", bad}}), "LOG_LEVEL", bad);

  EXPECT_EQ(load_config(with({{"LOG_FORMAT", "JSON"}})).log_format, "json");
  for (const std::string bad : {"xml", "logfmt", "jsonl"})
    expect_rejected(with({{"LOG_FORMAT", bad}}), "LOG_FORMAT", bad);
}

// ---- tenant sign-up and ADMIN_TOKEN ---------------------------------------------------------

TEST(load_config, tenant_signup_values) {
  EXPECT_TRUE(load_config(with({{"TENANT_SIGNUP", "open"}})).tenant_signup_open);
  EXPECT_TRUE(load_config(with({{"TENANT_SIGNUP", "Open"}})).tenant_signup_open);
  for (const std::string bad : {"yes", "true", "invite", "close"})
    expect_rejected(with({{"TENANT_SIGNUP", bad}}), "TENANT_SIGNUP", bad);
}

TEST(load_config, admin_token_required_when_signup_closed) {
  expect_rejected(with({{"TENANT_SIGNUP", "closed"}}), "ADMIN_TOKEN", "closed without a token");
  const auto c = load_config(with({{"TENANT_SIGNUP", "closed"}, {"ADMIN_TOKEN", good_admin_token}}));
  EXPECT_FALSE(c.tenant_signup_open);
  EXPECT_EQ(c.admin_token, good_admin_token);
}

TEST(load_config, admin_token_at_least_32_characters) {
  const auto short_token = good_admin_token.substr(0, 31);
  expect_rejected(with({{"TENANT_SIGNUP", "closed"}, {"ADMIN_TOKEN", short_token}}), "ADMIN_TOKEN", "31 chars");
  expect_rejected(with({{"ADMIN_TOKEN", short_token}}), "ADMIN_TOKEN", "31 chars with sign-up open");
  EXPECT_EQ(load_config(with({{"ADMIN_TOKEN", good_admin_token}})).admin_token, good_admin_token);
}

// ---- CORS_ORIGINS ---------------------------------------------------------------------------

TEST(load_config, cors_origins_parsed_and_trailing_slashes_trimmed) {
  const auto c = load_config(
      with({{"CORS_ORIGINS", " https://a.example.com/ ,http://localhost:3000//,, https://b.example.com "}}));
  EXPECT_EQ(c.cors_origins,
            (std::vector<std::string>{"https://a.example.com", "http://localhost:3000", "https://b.example.com"}));
}

TEST(load_config, cors_origins_wildcard_and_non_http_rejected) {
  for (const std::string bad : {"*", "https://a.example.com,*", " * ", "a.example.com", "ftp://a.example.com", "null"})
    expect_rejected(with({{"CORS_ORIGINS", bad}}), "CORS_ORIGINS", bad);
}

// ---- limits and pools -----------------------------------------------------------------------

TEST(load_config, limits_must_be_positive_whole_numbers) {
  for (const std::string name :
       {"LOGIN_MAX_FAILURES_PER_ACCOUNT", "LOGIN_MAX_FAILURES_PER_CLIENT", "TENANT_CREATES_PER_CLIENT",
        "MASTER_POOL_SIZE", "TENANT_POOL_SIZE", "TENANT_POOL_MAX_CONNECTIONS", "POOL_ACQUIRE_TIMEOUT_MS",
        "POOL_IDLE_TIMEOUT_S", "STATEMENT_TIMEOUT_MS", "ARGON2_MEMORY_KIB", "ARGON2_ITERATIONS", "ARGON2_MAX_QUEUE"}) {
    for (const std::string bad : {"0", "-1", "ten", "1.5", "99999999999999999999"})
      expect_rejected(with({{name, bad}}), name, name + "=" + bad);
  }
  for (const std::string name : {"THREADS", "ARGON2_THREADS"}) {
    EXPECT_FALSE(rejection(with({{name, "0"}})).has_value()) << name;
    for (const std::string bad : {"-1", "257", "many"}) expect_rejected(with({{name, bad}}), name, name + "=" + bad);
  }
}

TEST(load_config, request_quotas) {
  auto c = load_config(with({{"TENANT_REQUESTS_PER_SECOND", "50"}, {"SESSION_REQUESTS_PER_SECOND", "7"}}));
  EXPECT_EQ(c.tenant_requests_per_second, 50);
  EXPECT_EQ(c.tenant_request_burst, 100) << "the burst defaults to twice the rate";
  EXPECT_EQ(c.session_requests_per_second, 7);
  EXPECT_EQ(c.session_request_burst, 14);
  c = load_config(with({{"TENANT_REQUESTS_PER_SECOND", "50"},
                        {"TENANT_REQUEST_BURST", "5"},
                        {"SESSION_REQUESTS_PER_SECOND", "0"},
                        {"SESSION_REQUEST_BURST", "1"}}));
  EXPECT_EQ(c.tenant_request_burst, 5);
  EXPECT_EQ(c.session_requests_per_second, 0) << "0 turns the quota off";
  c = load_config(with({{"TENANT_REQUESTS_PER_SECOND", "0"}}));
  EXPECT_EQ(c.tenant_requests_per_second, 0);
  for (const std::string name : {"TENANT_REQUESTS_PER_SECOND", "SESSION_REQUESTS_PER_SECOND"})
    for (const std::string bad : {"-1", "fast", "1.5", "1000001", "99999999999999999999"})
      expect_rejected(with({{name, bad}}), name, name + "=" + bad);
  for (const std::string name : {"TENANT_REQUEST_BURST", "SESSION_REQUEST_BURST"})
    for (const std::string bad : {"0", "-1", "lots", "2.5", "2000001"})
      expect_rejected(with({{name, bad}}), name, name + "=" + bad);
}

TEST(load_config, tenant_pool_max_connections_not_below_pool_size) {
  expect_rejected(with({{"TENANT_POOL_SIZE", "8"}, {"TENANT_POOL_MAX_CONNECTIONS", "7"}}),
                  "TENANT_POOL_MAX_CONNECTIONS", "7 < 8");
  expect_rejected(with({{"TENANT_POOL_SIZE", "65"}}), "TENANT_POOL_MAX_CONNECTIONS", "default 64 < 65");
  const auto c = load_config(with({{"TENANT_POOL_SIZE", "8"}, {"TENANT_POOL_MAX_CONNECTIONS", "8"}}));
  EXPECT_EQ(c.tenant_pool_size, 8U);
  EXPECT_EQ(c.tenant_pool_max_connections, 8U);
}

// ---- abuse limits, client address, DDL role ---------------------------------------------------

TEST(load_config, abuse_limit_defaults_and_values) {
  const auto d = load_config(minimal());
  EXPECT_EQ(d.login_max_failures_per_account_per_hour, 100);
  EXPECT_EQ(d.registrations_per_client, 60);
  EXPECT_TRUE(d.trusted_proxies.empty());
  const auto c = load_config(with({{"LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR", "7"}, {"REGISTER_PER_CLIENT", "9"}}));
  EXPECT_EQ(c.login_max_failures_per_account_per_hour, 7);
  EXPECT_EQ(c.registrations_per_client, 9);
  for (const std::string name : {"LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR", "REGISTER_PER_CLIENT"})
    for (const std::string bad : {"0", "-1", "ten", "1.5"})
      expect_rejected(with({{name, bad}}), name, name + "=" + bad);
}

TEST(load_config, login_success_limits) {
  const auto d = load_config(minimal());
  EXPECT_EQ(d.login_successes_per_account, 30);
  EXPECT_EQ(d.login_successes_per_client, 120);
  const auto c = load_config(with({{"LOGIN_SUCCESSES_PER_ACCOUNT", "3"}, {"LOGIN_SUCCESSES_PER_CLIENT", "4"}}));
  EXPECT_EQ(c.login_successes_per_account, 3);
  EXPECT_EQ(c.login_successes_per_client, 4);
  for (const std::string name : {"LOGIN_SUCCESSES_PER_ACCOUNT", "LOGIN_SUCCESSES_PER_CLIENT"})
    for (const std::string bad : {"0", "-1", "ten", "1.5", "99999999"})
      expect_rejected(with({{name, bad}}), name, name + "=" + bad);
}

TEST(load_config, trusted_proxies_parsed_or_rejected) {
  const auto c = load_config(with({{"TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1"}}));
  ASSERT_EQ(c.trusted_proxies.size(), 3u);
  EXPECT_EQ(c.trusted_proxies[1].to_string(), "10.0.0.0/8");
  for (const std::string bad : {"proxy.internal", "10.0.0.0/40", "127.0.0.1,*"})
    expect_rejected(with({{"TRUSTED_PROXIES", bad}}), "TRUSTED_PROXIES", bad);
}

TEST(load_config, migration_url_optional_and_checked) {
  EXPECT_FALSE(load_config(minimal()).migration.has_value());
  const auto c =
      load_config(with({{"MIGRATION_DATABASE_URL", "postgresql://tenantd_ddl:pw@db-direct:5432/tenantd_master"}}));
  ASSERT_TRUE(c.migration.has_value());
  EXPECT_EQ(c.migration->user, "tenantd_ddl");
  EXPECT_EQ(c.migration->password, "pw");
  EXPECT_EQ(c.migration->host, "db-direct");
  EXPECT_EQ(c.migration->port, "5432");
  EXPECT_EQ(c.master.user, "tenantd") << "the runtime role stays MASTER_DATABASE_URL's";
  expect_rejected(with({{"MIGRATION_DATABASE_URL", "postgresql://ddl:pw@db/other_db"}}), "MIGRATION_DATABASE_URL",
                  "another database");
  expect_rejected(with({{"MIGRATION_DATABASE_URL", "mysql://ddl:pw@db/tenantd_master"}}), "MIGRATION_DATABASE_URL",
                  "not postgresql");
  expect_rejected(with({{"MIGRATION_DATABASE_URL", "postgresql://db/tenantd_master"}}), "MIGRATION_DATABASE_URL",
                  "no user");
}

// ---- load_config: tenant moves --------------------------------------------------------------

TEST(load_config, moves_are_off_until_a_mover_role_is_named) {
  const auto off = load_config(minimal());
  EXPECT_TRUE(off.move_database_username.empty());
  EXPECT_EQ(off.move_freeze_max, std::chrono::milliseconds(1000));
  EXPECT_EQ(off.move_source_grace, std::chrono::seconds(3600));
  EXPECT_EQ(off.move_lease_seconds, 15);
  const auto on = load_config(with({{"MOVE_DATABASE_USERNAME", "tenantd_mover"},
                                    {"MOVE_DATABASE_PASSWORD", "pw"},
                                    {"MOVE_FREEZE_MAX_MS", "250"},
                                    {"MOVE_SOURCE_GRACE_S", "0"},
                                    {"MOVE_LEASE_S", "5"}}));
  EXPECT_EQ(on.move_database_username, "tenantd_mover");
  EXPECT_EQ(on.move_database_password, "pw");
  EXPECT_EQ(on.move_freeze_max, std::chrono::milliseconds(250));
  EXPECT_EQ(on.move_source_grace, std::chrono::seconds(0));
  EXPECT_EQ(on.move_lease_seconds, 5);
}

TEST(load_config, move_settings_that_cannot_work_are_refused) {
  expect_rejected(with({{"MOVE_DATABASE_USERNAME", "tenantd_mover"}}), "MOVE_DATABASE_PASSWORD", "no password");
  expect_rejected(with({{"MOVE_FREEZE_MAX_MS", "10"}}), "MOVE_FREEZE_MAX_MS", "under 50 ms");
  expect_rejected(with({{"MOVE_LEASE_S", "2"}, {"MOVE_FREEZE_MAX_MS", "1500"}}), "MOVE_LEASE_S",
                  "a cut-over could outlast the lease");
}

}  // namespace
}  // namespace tenantd::app
