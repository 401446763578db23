// Configuration from the environment and a .env file (environment wins). Every value is
// validated here; a bad one stops start-up with a message naming the variable.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "api/client_address.hpp"
#include "db/conninfo.hpp"

namespace tenantd::app {

// Thrown for a missing or invalid setting; what() names the variable.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using database_endpoint = db::server_endpoint;

struct config {
  std::string master_database_url;
  database_endpoint master;  // parsed from the URL
  std::string master_database_name;
  // MIGRATION_DATABASE_URL (optional): the role that runs DDL (CREATE/DROP DATABASE, grants,
  // master and tenant migrations, restores) and owns what they create. Unset: the runtime
  // roles do it themselves, as before. Its user and password also reach tenant databases
  // (at DB_HOST/DB_PORT).
  std::string migration_database_url;
  std::optional<database_endpoint> migration;
  database_endpoint tenant;  // DB_HOST/DB_PORT/DB_USERNAME/DB_PASSWORD, defaulting to master's
  std::string tenant_db_prefix{"tenant_"};
  bool tenant_provisioning_template{true};  // TENANT_PROVISIONING=template|migrations
  std::string fault_point;                  // TENANTD_FAULT_POINT (tests only): provisioner, mover, listener
  std::string tenant_migrations_dir;        // TENANT_MIGRATIONS_DIR: tenant migrations from here, not the embedded ones
  std::string backup_dir{"./backups"};      // BACKUP_DIR: where POST /admin/tenants/:id/backup writes

  std::string jwt_secret;
  std::string jwt_key_id;
  std::int64_t jwt_expiration{3600};
  std::int64_t invitation_ttl_hours{168};  // INVITATION_TTL_HOURS: invitations and claim tokens

  std::vector<std::string> cors_origins;
  std::string host{"0.0.0.0"};
  std::uint16_t port{8000};
  std::string log_level{"info"};
  std::string log_format{"text"};
  std::optional<std::uint16_t> metrics_port;  // unset: /metrics on the main port
  std::chrono::milliseconds slow_query{500};  // SLOW_QUERY_MS; 0 = off
  std::chrono::seconds shutdown_timeout{30};

  bool tenant_signup_open{true};
  std::string admin_token;

  int login_max_failures_per_account{10};  // per 15 minutes
  int login_max_failures_per_client{30};   // per minute
  int tenant_creates_per_client{30};       // per hour
  int login_max_failures_per_account_per_hour{100};
  int login_successes_per_account{30};   // LOGIN_SUCCESSES_PER_ACCOUNT, per minute
  int login_successes_per_client{120};   // LOGIN_SUCCESSES_PER_CLIENT, per minute
  int registrations_per_client{60};      // REGISTER_PER_CLIENT, valid requests per hour
  api::trusted_proxies trusted_proxies;  // TRUSTED_PROXIES; empty: X-Forwarded-For is ignored
  // Request quotas per process (api/request_quota.hpp): token-bucket rate (0 = off) and burst.
  std::int64_t tenant_requests_per_second{1000};  // TENANT_REQUESTS_PER_SECOND
  std::int64_t tenant_request_burst{2000};        // TENANT_REQUEST_BURST, default 2x the rate
  std::int64_t session_requests_per_second{200};  // SESSION_REQUESTS_PER_SECOND
  std::int64_t session_request_burst{400};        // SESSION_REQUEST_BURST, default 2x the rate

  unsigned threads{0};  // 0 = hardware concurrency
  std::size_t master_pool_size{8};
  std::size_t tenant_pool_size{4};
  std::size_t tenant_pool_max_connections{64};
  std::chrono::milliseconds pool_acquire_timeout{2000};
  std::chrono::seconds pool_idle_timeout{60};
  std::chrono::milliseconds statement_timeout{5000};

  // Per-tenant usage accounting (tenancy/usage_recorder.hpp).
  bool usage_enabled{true};                       // USAGE_ENABLED=on|off
  std::chrono::seconds usage_flush_interval{60};  // USAGE_FLUSH_INTERVAL_S
  std::int64_t usage_retention_days{30};          // USAGE_RETENTION_DAYS
  std::chrono::seconds usage_size_interval{600};  // USAGE_SIZE_INTERVAL_S
  std::size_t usage_max_tenants{50000};           // USAGE_MAX_TENANTS: (tenant, minute) entries

  // Tenant moves between database servers (tenancy/mover.hpp).
  std::string move_database_username;               // MOVE_DATABASE_USERNAME: empty, moves unavailable
  std::string move_database_password;               // MOVE_DATABASE_PASSWORD
  std::chrono::milliseconds move_freeze_max{1000};  // MOVE_FREEZE_MAX_MS
  std::chrono::seconds move_source_grace{3600};     // MOVE_SOURCE_GRACE_S
  int move_lease_seconds{15};                       // MOVE_LEASE_S

  std::size_t argon2_memory_kib{19456};
  unsigned long long argon2_iterations{2};
  unsigned argon2_threads{0};
  std::size_t argon2_max_queue{64};
};

using environment = std::map<std::string, std::string>;

// Parses KEY=VALUE lines (# comments, optional "export ", optional quotes).
environment parse_dotenv(const std::string& text);
// The process environment merged over ./.env (if readable).
environment read_environment(const std::string& dotenv_path = ".env");
// Validates and converts; throws config_error naming the variable.
config load_config(const environment& env);

// The seed README's example secret, which must never be used.
inline constexpr const char* example_jwt_secret =
    "your-super-secret-jwt-key-here-make-it-long-and-random-at-least-32-characters";

}  // namespace tenantd::app
