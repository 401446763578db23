// Reading and validating configuration.
#include "app/config.hpp"

#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

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

template <class Int>
Int get_int(const environment& env, const std::string& key, Int fallback, Int min, Int max) {
  const auto text = get(env, key);
  if (text.empty()) return fallback;
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size())
    throw config_error(key + ": expected a whole number, got '" + text + "'");
  if (value < static_cast<long long>(min) || value > static_cast<long long>(max))
    throw config_error(key + ": must be between " + std::to_string(min) + " and " + std::to_string(max));
  return static_cast<Int>(value);
}

std::string one_of(const environment& env, const std::string& key, const std::string& fallback,
                   std::initializer_list<const char*> allowed) {
  auto value = get(env, key, fallback);
  std::transform(value.begin(), value.end(), value.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* a : allowed)
    if (value == a) return value;
  std::string list;
  for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
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
  c.master_database_url = get(env, "MASTER_DATABASE_URL");
  if (c.master_database_url.empty())
    throw config_error("MASTER_DATABASE_URL: required (postgresql://user:password@host:port/database)");
  parse_master_url(c);
  c.migration_database_url = get(env, "MIGRATION_DATABASE_URL");
  parse_migration_url(c);
  c.tenant.host = get(env, "DB_HOST", c.master.host);
  c.tenant.port = get(env, "DB_PORT", c.master.port);
  (void)get_int<int>(env, "DB_PORT", 5432, 1, 65535);
  c.tenant.user = get(env, "DB_USERNAME", c.master.user);
  c.tenant.password = get(env, "DB_PASSWORD", c.master.password);

  c.tenant_db_prefix = get(env, "TENANT_DB_PREFIX", "tenant_");
  {
    const auto& p = c.tenant_db_prefix;
    const bool ok = p.size() <= 20 && !p.empty() && std::islower(static_cast<unsigned char>(p[0])) &&
                    std::all_of(p.begin(), p.end(),
                                [](unsigned char ch) { return std::islower(ch) || std::isdigit(ch) || ch == '_'; });
    if (!ok) throw config_error("TENANT_DB_PREFIX: 1-20 characters of [a-z0-9_], starting with a letter");
  }

  c.tenant_migrations_dir = get(env, "TENANT_MIGRATIONS_DIR");
  c.backup_dir = get(env, "BACKUP_DIR", "./backups");

  c.tenant_provisioning_template =
      one_of(env, "TENANT_PROVISIONING", "template", {"template", "migrations"}) == "template";
  c.fault_point = get(env, "TENANTD_FAULT_POINT");
  if (!c.fault_point.empty() && c.fault_point != "after_row" && c.fault_point != "after_database" &&
      c.fault_point != "after_grants" && c.fault_point != "after_ready")
    throw config_error("TENANTD_FAULT_POINT: one of after_row, after_database, after_grants, after_ready");

  c.jwt_secret = get(env, "JWT_SECRET");
  if (c.jwt_secret.empty()) throw config_error("JWT_SECRET: required (at least 32 random bytes)");
  if (c.jwt_secret.size() < 32) throw config_error("JWT_SECRET: must be at least 32 bytes long");
  if (c.jwt_secret == example_jwt_secret)
    throw config_error("JWT_SECRET: the example value from the documentation must not be used; generate a random one");
  c.jwt_key_id = get(env, "JWT_KEY_ID", auth::derive_key_id(c.jwt_secret));
  c.jwt_expiration = get_int<std::int64_t>(env, "JWT_EXPIRATION", 3600, 60, 86400 * 7);
  c.invitation_ttl_hours = get_int<std::int64_t>(env, "INVITATION_TTL_HOURS", 168, 1, 24 * 365);

  const std::string cors_origins = get(env, "CORS_ORIGINS");
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

  c.host = get(env, "HOST", "0.0.0.0");
  c.port = get_int<std::uint16_t>(env, "PORT", 8000, 0, 65535);
  c.log_level = one_of(env, "LOG_LEVEL", "info", {"trace", "debug", "info", "warn", "error", "off"});
  c.log_format = one_of(env, "LOG_FORMAT", "text", {"text", "json"});
  if (!get(env, "METRICS_PORT").empty()) {
    c.metrics_port = get_int<std::uint16_t>(env, "METRICS_PORT", 0, 0, 65535);
    if (*c.metrics_port != 0 && *c.metrics_port == c.port) throw config_error("METRICS_PORT: must differ from PORT");
  }
  c.slow_query = std::chrono::milliseconds(get_int<long long>(env, "SLOW_QUERY_MS", 500, 0, 3600000));
  c.shutdown_timeout = std::chrono::seconds(get_int<long long>(env, "SHUTDOWN_TIMEOUT", 30, 1, 3600));
  c.tenant_signup_open = one_of(env, "TENANT_SIGNUP", "open", {"open", "closed"}) == "open";
  c.admin_token = get(env, "ADMIN_TOKEN");
  if (!c.admin_token.empty() && c.admin_token.size() < 32)
    throw config_error("ADMIN_TOKEN: must be at least 32 characters long");
  if (!c.tenant_signup_open && c.admin_token.empty())
    throw config_error("ADMIN_TOKEN: required when TENANT_SIGNUP=closed");

  c.login_max_failures_per_account = get_int(env, "LOGIN_MAX_FAILURES_PER_ACCOUNT", 10, 1, 1000000);
  c.login_max_failures_per_client = get_int(env, "LOGIN_MAX_FAILURES_PER_CLIENT", 30, 1, 1000000);
  c.tenant_creates_per_client = get_int(env, "TENANT_CREATES_PER_CLIENT", 30, 1, 1000000);
  c.login_max_failures_per_account_per_hour = get_int(env, "LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR", 100, 1, 1000000);
  c.registrations_per_client = get_int(env, "REGISTER_PER_CLIENT", 60, 1, 1000000);
  c.login_successes_per_account = get_int(env, "LOGIN_SUCCESSES_PER_ACCOUNT", 30, 1, 1000000);
  c.login_successes_per_client = get_int(env, "LOGIN_SUCCESSES_PER_CLIENT", 120, 1, 1000000);
  c.tenant_requests_per_second = get_int<std::int64_t>(env, "TENANT_REQUESTS_PER_SECOND", 1000, 0, 1000000);
  c.tenant_request_burst = get_int<std::int64_t>(
      env, "TENANT_REQUEST_BURST", std::max<std::int64_t>(1, 2 * c.tenant_requests_per_second), 1, 2000000);
  c.session_requests_per_second = get_int<std::int64_t>(env, "SESSION_REQUESTS_PER_SECOND", 200, 0, 1000000);
  c.session_request_burst = get_int<std::int64_t>(
      env, "SESSION_REQUEST_BURST", std::max<std::int64_t>(1, 2 * c.session_requests_per_second), 1, 2000000);
  try {
    c.trusted_proxies = api::parse_trusted_proxies(get(env, "TRUSTED_PROXIES"));
  } catch (const std::invalid_argument& e) {
    throw config_error(std::string("TRUSTED_PROXIES: ") + e.what() +
                       "; give a comma-separated list of addresses or CIDR ranges, e.g. 127.0.0.1,10.0.0.0/8");
  }

  c.threads = get_int<unsigned>(env, "THREADS", 0, 0, 256);
  c.master_pool_size = get_int<std::size_t>(env, "MASTER_POOL_SIZE", 8, 1, 1000);
  c.tenant_pool_size = get_int<std::size_t>(env, "TENANT_POOL_SIZE", 4, 1, 1000);
  c.tenant_pool_max_connections = get_int<std::size_t>(env, "TENANT_POOL_MAX_CONNECTIONS", 64, 1, 100000);
  if (c.tenant_pool_max_connections < c.tenant_pool_size)
    throw config_error("TENANT_POOL_MAX_CONNECTIONS: must be at least TENANT_POOL_SIZE");
  c.pool_acquire_timeout =
      std::chrono::milliseconds(get_int<long long>(env, "POOL_ACQUIRE_TIMEOUT_MS", 2000, 10, 600000));
  c.pool_idle_timeout = std::chrono::seconds(get_int<long long>(env, "POOL_IDLE_TIMEOUT_S", 60, 1, 86400));
  c.statement_timeout = std::chrono::milliseconds(get_int<long long>(env, "STATEMENT_TIMEOUT_MS", 5000, 10, 3600000));

  c.argon2_memory_kib = get_int<std::size_t>(env, "ARGON2_MEMORY_KIB", 19456, 8, 4 * 1024 * 1024);
  c.argon2_iterations = get_int<unsigned long long>(env, "ARGON2_ITERATIONS", 2, 1, 100);
  c.argon2_threads = get_int<unsigned>(env, "ARGON2_THREADS", 0, 0, 256);
  c.argon2_max_queue = get_int<std::size_t>(env, "ARGON2_MAX_QUEUE", 64, 1, 100000);
  return c;
}

}  // namespace tenantd::app
