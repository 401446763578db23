// Reading and validating configuration.
#include "app/config.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>

#include "app/config_table.hpp"
#include "auth/jwt.hpp"

extern char** environ;

namespace tenantd::app {
namespace {

std::string trim_ascii(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string get(const environment& env, const std::string& key, const std::string& fallback = {}) {
  auto it = env.find(key);
  return it == env.end() || it->second.empty() ? fallback : it->second;
}

// A text setting: its value, else `computed` when given, else the table's default.
std::string text(const environment& env, std::string_view name, const std::optional<std::string>& computed = {}) {
  const auto& s = setting_named(name);
  return get(env, std::string(name), computed ? *computed : std::string(s.fallback));
}

// A whole-number setting within the table's range: its value, else `computed` when given,
// else the table's default.
template <class Int>
Int whole(const environment& env, std::string_view name, std::optional<Int> computed = {}) {
  const auto& s = setting_named(name);
  const std::string key(name);
  const auto written = get(env, key, computed ? std::to_string(*computed) : std::string(s.fallback));
  long long value = 0;
  auto [end, ec] = std::from_chars(written.data(), written.data() + written.size(), value);
  if (written.empty() || ec != std::errc{} || end != written.data() + written.size())
    throw config_error(key + ": expected a whole number, got '" + written + "'");
  if (value < s.min || value > s.max)
    throw config_error(key + ": must be between " + std::to_string(s.min) + " and " + std::to_string(s.max));
  return static_cast<Int>(value);
}

// One of the table's choices (case-insensitive), else the table's default.
std::string choice(const environment& env, std::string_view name) {
  const auto& s = setting_named(name);
  const std::string key(name);
  auto value = get(env, key, std::string(s.fallback));
  std::transform(value.begin(), value.end(), value.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string list;
  for (std::string_view rest = s.choices; !rest.empty();) {
    const auto bar = rest.find('|');
    const auto option = rest.substr(0, bar);
    if (value == option) return value;
    list += (list.empty() ? "" : ", ") + std::string(option);
    rest = bar == std::string_view::npos ? std::string_view{} : rest.substr(bar + 1);
  }
  throw config_error(key + ": must be one of " + list + ", got '" + value + "'");
}

// Parses a postgresql:// URL into `endpoint`; returns the database name. `key` names the
// variable in errors.
std::string parse_database_url(const std::string& key, const std::string& text, database_endpoint& endpoint) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed || (parsed->scheme() != "postgresql" && parsed->scheme() != "postgres"))
    throw config_error(key + ": expected postgresql://user:password@host:port/database");
  const auto& url = *parsed;
  endpoint.host = url.host().empty() ? "localhost" : std::string(url.encoded_host().decode());
  endpoint.port = url.has_port() ? std::string(url.port()) : "5432";
  if (url.has_port() && (url.port_number() == 0 || url.port().size() > 5))
    throw config_error(key + ": the port must be between 1 and 65535");
  endpoint.user = url.has_userinfo() ? std::string(url.user()) : "";
  endpoint.password = url.has_password() ? std::string(url.password()) : "";
  auto path = std::string(url.path());
  if (!path.empty() && path.front() == '/') path.erase(0, 1);
  if (path.empty() || path.find('/') != std::string::npos)
    throw config_error(key + ": the URL must name the master database, e.g. .../tenantd_master");
  return path;
}

void parse_master_url(config& c) {
  c.master_database_name = parse_database_url("MASTER_DATABASE_URL", c.master_database_url, c.master);
}

void parse_migration_url(config& c) {
  if (c.migration_database_url.empty()) return;
  database_endpoint endpoint;
  const auto database = parse_database_url("MIGRATION_DATABASE_URL", c.migration_database_url, endpoint);
  if (database != c.master_database_name)
    throw config_error("MIGRATION_DATABASE_URL: must name the same database as MASTER_DATABASE_URL (" +
                       c.master_database_name + ")");
  if (endpoint.user.empty()) throw config_error("MIGRATION_DATABASE_URL: must name a user");
  c.migration = endpoint;
}

}  // namespace

environment parse_dotenv(const std::string& text) {
  environment env;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    auto t = trim_ascii(line);
    if (t.empty() || t.front() == '#') continue;
    if (t.rfind("export ", 0) == 0) t = trim_ascii(t.substr(7));
    const auto eq = t.find('=');
    if (eq == std::string::npos) continue;
    auto key = trim_ascii(t.substr(0, eq));
    auto value = trim_ascii(t.substr(eq + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    env[key] = value;
  }
  return env;
}

environment read_environment(const std::string& dotenv_path) {
  environment env;
  if (std::ifstream file(dotenv_path); file) {
    std::stringstream buffer;
    buffer << file.rdbuf();
    env = parse_dotenv(buffer.str());
  }
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string_view::npos) env[std::string(entry.substr(0, eq))] = std::string(entry.substr(eq + 1));
  }
  return env;
}

config load_config(const environment& env) {
  config c;
  c.master_database_url = text(env, "MASTER_DATABASE_URL");
  if (c.master_database_url.empty())
    throw config_error("MASTER_DATABASE_URL: required (postgresql://user:password@host:port/database)");
  parse_master_url(c);
  c.migration_database_url = text(env, "MIGRATION_DATABASE_URL");
  parse_migration_url(c);
  c.tenant.host = text(env, "DB_HOST", c.master.host);
  c.tenant.port = text(env, "DB_PORT", c.master.port);
  (void)whole<int>(env, "DB_PORT", 5432);  // validated only: the master URL's port is the default
  c.tenant.user = text(env, "DB_USERNAME", c.master.user);
  c.tenant.password = text(env, "DB_PASSWORD", c.master.password);

  c.tenant_db_prefix = text(env, "TENANT_DB_PREFIX");
  {
    const auto& p = c.tenant_db_prefix;
    const bool ok = p.size() <= 20 && !p.empty() && std::islower(static_cast<unsigned char>(p[0])) &&
                    std::all_of(p.begin(), p.end(),
                                [](unsigned char ch) { return std::islower(ch) || std::isdigit(ch) || ch == '_'; });
    if (!ok) throw config_error("TENANT_DB_PREFIX: 1-20 characters of [a-z0-9_], starting with a letter");
  }

  c.tenant_migrations_dir = text(env, "TENANT_MIGRATIONS_DIR");
  c.backup_dir = text(env, "BACKUP_DIR");

  c.tenant_provisioning_template = choice(env, "TENANT_PROVISIONING") == "template";
  // A test hook, not a setting (so not in the table): the provisioner kills the process there.
  // Only builds with the tests have it (CMake option TENANTD_FAULT_INJECTION).
  c.fault_point = get(env, "TENANTD_FAULT_POINT");
#ifdef TENANTD_FAULT_INJECTION
  static constexpr std::string_view fault_points[] = {"after_row",
                                                      "after_database",
                                                      "after_grants",
                                                      "after_ready",
                                                      "move_after_target",
                                                      "move_after_subscribe",
                                                      "move_before_flip",
                                                      "move_after_flip",
                                                      "move_after_unsubscribe",
                                                      "listener_reconnect_late"};
  if (!c.fault_point.empty() &&
      std::find(std::begin(fault_points), std::end(fault_points), c.fault_point) == std::end(fault_points))
    throw config_error(
        "TENANTD_FAULT_POINT: one of after_row, after_database, after_grants, after_ready, move_after_target, "
        "move_after_subscribe, move_before_flip, move_after_flip, move_after_unsubscribe, listener_reconnect_late");
#else
  if (!c.fault_point.empty())
    throw config_error(
        "TENANTD_FAULT_POINT: this build has no fault injection (a test hook, left out of release builds)");
#endif

  c.jwt_secret = text(env, "JWT_SECRET");
  if (c.jwt_secret.empty()) throw config_error("JWT_SECRET: required (at least 32 random bytes)");
  if (c.jwt_secret.size() < 32) throw config_error("JWT_SECRET: must be at least 32 bytes long");
  if (c.jwt_secret == example_jwt_secret)
    throw config_error("JWT_SECRET: the example value from the documentation must not be used; generate a random one");
  c.jwt_key_id = text(env, "JWT_KEY_ID", auth::derive_key_id(c.jwt_secret));
  c.jwt_expiration = whole<std::int64_t>(env, "JWT_EXPIRATION");
  c.invitation_ttl_hours = whole<std::int64_t>(env, "INVITATION_TTL_HOURS");

  const std::string cors_origins = text(env, "CORS_ORIGINS");
  for (std::string_view rest = cors_origins; !rest.empty();) {
    const auto comma = rest.find(',');
    auto origin = trim_ascii(rest.substr(0, comma));
    if (!origin.empty()) {
      if (origin == "*" || (origin.rfind("http://", 0) != 0 && origin.rfind("https://", 0) != 0))
        throw config_error("CORS_ORIGINS: each origin must be an http:// or https:// origin ('*' is not allowed)");
      while (!origin.empty() && origin.back() == '/') origin.pop_back();
      c.cors_origins.push_back(origin);
    }
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
  }

  c.host = text(env, "HOST");
  c.port = whole<std::uint16_t>(env, "PORT");
  c.log_level = choice(env, "LOG_LEVEL");
  c.log_format = choice(env, "LOG_FORMAT");
  if (!get(env, "METRICS_PORT").empty()) {
    c.metrics_port = whole<std::uint16_t>(env, "METRICS_PORT");
    if (*c.metrics_port != 0 && *c.metrics_port == c.port) throw config_error("METRICS_PORT: must differ from PORT");
  }
  c.slow_query = std::chrono::milliseconds(whole<long long>(env, "SLOW_QUERY_MS"));
  c.shutdown_timeout = std::chrono::seconds(whole<long long>(env, "SHUTDOWN_TIMEOUT"));
  c.tenant_signup_open = choice(env, "TENANT_SIGNUP") == "open";
  c.admin_token = text(env, "ADMIN_TOKEN");
  if (!c.admin_token.empty() && c.admin_token.size() < 32)
    throw config_error("ADMIN_TOKEN: must be at least 32 characters long");
  if (!c.tenant_signup_open && c.admin_token.empty())
    throw config_error("ADMIN_TOKEN: required when TENANT_SIGNUP=closed");

  c.login_max_failures_per_account = whole<int>(env, "LOGIN_MAX_FAILURES_PER_ACCOUNT");
  c.login_max_failures_per_client = whole<int>(env, "LOGIN_MAX_FAILURES_PER_CLIENT");
  c.tenant_creates_per_client = whole<int>(env, "TENANT_CREATES_PER_CLIENT");
  c.login_max_failures_per_account_per_hour = whole<int>(env, "LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR");
  c.registrations_per_client = whole<int>(env, "REGISTER_PER_CLIENT");
  c.login_successes_per_account = whole<int>(env, "LOGIN_SUCCESSES_PER_ACCOUNT");
  c.login_successes_per_client = whole<int>(env, "LOGIN_SUCCESSES_PER_CLIENT");
  // A burst defaults to twice its rate (at least 1).
  c.tenant_requests_per_second = whole<std::int64_t>(env, "TENANT_REQUESTS_PER_SECOND");
  c.tenant_request_burst =
      whole<std::int64_t>(env, "TENANT_REQUEST_BURST", std::max<std::int64_t>(1, 2 * c.tenant_requests_per_second));
  c.session_requests_per_second = whole<std::int64_t>(env, "SESSION_REQUESTS_PER_SECOND");
  c.session_request_burst =
      whole<std::int64_t>(env, "SESSION_REQUEST_BURST", std::max<std::int64_t>(1, 2 * c.session_requests_per_second));
  try {
    c.trusted_proxies = api::parse_trusted_proxies(text(env, "TRUSTED_PROXIES"));
  } catch (const std::invalid_argument& e) {
    throw config_error(std::string("TRUSTED_PROXIES: ") + e.what() +
                       "; give a comma-separated list of addresses or CIDR ranges, e.g. 127.0.0.1,10.0.0.0/8");
  }

  c.threads = whole<unsigned>(env, "THREADS");
  c.master_pool_size = whole<std::size_t>(env, "MASTER_POOL_SIZE");
  c.tenant_pool_size = whole<std::size_t>(env, "TENANT_POOL_SIZE");
  c.tenant_pool_max_connections = whole<std::size_t>(env, "TENANT_POOL_MAX_CONNECTIONS");
  if (c.tenant_pool_max_connections < c.tenant_pool_size)
    throw config_error("TENANT_POOL_MAX_CONNECTIONS: must be at least TENANT_POOL_SIZE");
  c.pool_acquire_timeout = std::chrono::milliseconds(whole<long long>(env, "POOL_ACQUIRE_TIMEOUT_MS"));
  c.pool_idle_timeout = std::chrono::seconds(whole<long long>(env, "POOL_IDLE_TIMEOUT_S"));
  c.statement_timeout = std::chrono::milliseconds(whole<long long>(env, "STATEMENT_TIMEOUT_MS"));

  c.usage_enabled = choice(env, "USAGE_ENABLED") == "on";
  c.usage_flush_interval = std::chrono::seconds(whole<long long>(env, "USAGE_FLUSH_INTERVAL_S"));
  c.usage_retention_days = whole<std::int64_t>(env, "USAGE_RETENTION_DAYS");
  c.usage_size_interval = std::chrono::seconds(whole<long long>(env, "USAGE_SIZE_INTERVAL_S"));
  c.usage_max_tenants = whole<std::size_t>(env, "USAGE_MAX_TENANTS");

  c.move_database_username = text(env, "MOVE_DATABASE_USERNAME");
  c.move_database_password = text(env, "MOVE_DATABASE_PASSWORD");
  if (!c.move_database_username.empty() && c.move_database_password.empty())
    throw config_error("MOVE_DATABASE_PASSWORD: must be set with MOVE_DATABASE_USERNAME");
  c.move_freeze_max = std::chrono::milliseconds(whole<long long>(env, "MOVE_FREEZE_MAX_MS"));
  c.move_source_grace = std::chrono::seconds(whole<long long>(env, "MOVE_SOURCE_GRACE_S"));
  c.move_lease_seconds = whole<int>(env, "MOVE_LEASE_S");
  if (std::chrono::seconds(c.move_lease_seconds) < 2 * c.move_freeze_max)
    throw config_error("MOVE_LEASE_S: must be at least twice MOVE_FREEZE_MAX_MS (a cut-over must not outlast it)");

  c.argon2_memory_kib = whole<std::size_t>(env, "ARGON2_MEMORY_KIB");
  c.argon2_iterations = whole<unsigned long long>(env, "ARGON2_ITERATIONS");
  c.argon2_threads = whole<unsigned>(env, "ARGON2_THREADS");
  c.argon2_max_queue = whole<std::size_t>(env, "ARGON2_MAX_QUEUE");
  return c;
}

}  // namespace tenantd::app
