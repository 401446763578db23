// The configuration table (see config_table.hpp).
#include "app/config_table.hpp"

#include <stdexcept>

namespace tenantd::app {

std::span<const setting> config_table() {
  using enum setting_type;
  // name, type, default, min, max, choices, default note, description
  static const setting table[] = {
      {"MASTER_DATABASE_URL", text, "", 0, 0, "", "— (required)",
       "`postgresql://user:password@host:port/database` of the master database"},
      {"MIGRATION_DATABASE_URL", text, "", 0, 0, "", "unset",
       "optional DDL role for the same master database: runs migrations, `CREATE DATABASE`, grants, backups and "
       "restores and owns the databases, so the `MASTER_DATABASE_URL` role needs no `CREATEDB` (docs/operations.md)"},
      {"DB_USERNAME", text, "", 0, 0, "", "user of the master URL",
       "role for the tenant databases (LOGIN CREATEDB, not superuser)"},
      {"DB_PASSWORD", text, "", 0, 0, "", "password of the master URL", "its password"},
      {"DB_HOST", text, "", 0, 0, "", "host of the master URL", "PostgreSQL server of the tenant databases"},
      {"DB_PORT", whole_number, "", 1, 65535, "", "port of the master URL", "its port"},
      {"TENANT_DB_PREFIX", text, "tenant_", 0, 0, "", "",
       "name prefix of tenant databases (1–20 of `[a-z0-9_]`, starting with a letter)"},
      {"TENANT_PROVISIONING", choice, "template", 0, 0, "template|migrations", "",
       "`template`: new tenant databases are copied from a migrated template database (fast); `migrations`: created "
       "empty and every tenant migration replayed"},
      {"TENANT_MIGRATIONS_DIR", text, "", 0, 0, "", "unset (built-in)",
       "tenant migrations (`V<n>__name.sql`) read from this directory by `serve` and `migrate`"},
      {"BACKUP_DIR", text, "./backups", 0, 0, "", "",
       "directory the admin backup/restore API writes and reads backup files in"},
      {"JWT_SECRET", text, "", 0, 0, "", "— (required)",
       "HS256 key, at least 32 bytes; the seed's example value is refused"},
      {"JWT_EXPIRATION", whole_number, "3600", 60, 604800, "", "", "access token lifetime in seconds (60 – 604800)"},
      {"INVITATION_TTL_HOURS", whole_number, "168", 1, 8760, "", "",
       "hours an invitation or a tenant's claim token stays valid (1 – 8760)"},
      {"JWT_KEY_ID", text, "", 0, 0, "", "derived from the secret", "`kid` written into token headers"},
      {"HOST", text, "0.0.0.0", 0, 0, "", "", "address to listen on"},
      {"PORT", whole_number, "8000", 0, 65535, "", "", "port to listen on (`0` picks a free one)"},
      {"CORS_ORIGINS", text, "", 0, 0, "", "empty",
       "comma-separated `http(s)://` origins allowed by CORS; `*` is refused"},
      {"THREADS", whole_number, "0", 0, 256, "", "all cores", "I/O threads"},
      {"LOG_LEVEL", choice, "info", 0, 0, "trace|debug|info|warn|error|off", "",
       "`trace`, `debug`, `info`, `warn`, `error`, `off`"},
      {"LOG_FORMAT", choice, "text", 0, 0, "text|json", "", "`text` or `json`"},
      {"SLOW_QUERY_MS", whole_number, "500", 0, 3600000, "", "",
       "statements slower than this are logged (warn) with their tenant; `0` turns it off"},
      {"METRICS_PORT", whole_number, "", 0, 65535, "", "unset",
       "serve `GET /metrics` only on this port (same `HOST`); unset = on the main port, to loopback clients only "
       "(others get 404)"},
      {"SHUTDOWN_TIMEOUT", whole_number, "30", 1, 3600, "", "",
       "seconds in-flight requests get to finish after SIGTERM/SIGINT"},
      {"TENANT_SIGNUP", choice, "open", 0, 0, "open|closed", "",
       "`closed`: `POST /tenants` needs `Authorization: Bearer $ADMIN_TOKEN`"},
      {"ADMIN_TOKEN", text, "", 0, 0, "", "empty",
       "operator token (at least 32 characters); required when `TENANT_SIGNUP=closed`"},
      {"LOGIN_MAX_FAILURES_PER_ACCOUNT", whole_number, "10", 1, 1000000, "", "",
       "failed logins per account per 15 minutes, then 429; password checks still running count too; kept in the "
       "master database, so it holds across processes"},
      {"LOGIN_MAX_FAILURES_PER_CLIENT", whole_number, "30", 1, 1000000, "", "",
       "failed logins per client address per minute, then 429 (per process; IPv6 clients count by /64)"},
      {"LOGIN_SUCCESSES_PER_ACCOUNT", whole_number, "30", 1, 1000000, "", "",
       "successful logins per account per minute, then 429 `too_many_requests` (per process)"},
      {"LOGIN_SUCCESSES_PER_CLIENT", whole_number, "120", 1, 1000000, "", "",
       "successful logins per client address per minute, then 429 `too_many_requests` (per process)"},
      {"TENANT_CREATES_PER_CLIENT", whole_number, "30", 1, 1000000, "", "",
       "valid tenant-creation requests per client address per hour, then 429"},
      {"LOGIN_MAX_FAILURES_PER_ACCOUNT_PER_HOUR", whole_number, "100", 1, 1000000, "", "",
       "failed logins per account per hour (a second window, in the master database too), then 429"},
      {"REGISTER_PER_CLIENT", whole_number, "60", 1, 1000000, "", "",
       "valid registrations per client address per hour, then 429"},
      {"TENANT_REQUESTS_PER_SECOND", whole_number, "1000", 0, 1000000, "", "",
       "authenticated requests per tenant per second (token bucket), then 429 with `Retry-After`; `0` turns it off"},
      {"TENANT_REQUEST_BURST", whole_number, "", 1, 2000000, "", "twice the rate",
       "requests a tenant may send at once before the rate applies"},
      {"SESSION_REQUESTS_PER_SECOND", whole_number, "200", 0, 1000000, "", "",
       "authenticated requests per session (one login's tokens) per second, then 429; `0` turns it off"},
      {"SESSION_REQUEST_BURST", whole_number, "", 1, 2000000, "", "twice the rate",
       "requests a session may send at once before the rate applies"},
      {"TRUSTED_PROXIES", text, "", 0, 0, "", "empty",
       "proxies (addresses or CIDR ranges, comma-separated) whose `X-Forwarded-For` names the client; empty = the "
       "header is ignored"},
      {"MASTER_POOL_SIZE", whole_number, "8", 1, 1000, "", "", "connections to the master database"},
      {"TENANT_POOL_SIZE", whole_number, "4", 1, 1000, "", "", "connections per tenant database (opened lazily)"},
      {"TENANT_POOL_MAX_CONNECTIONS", whole_number, "64", 1, 100000, "", "",
       "connections to tenant databases, all tenants on one database server together (a budget per server)"},
      {"POOL_ACQUIRE_TIMEOUT_MS", whole_number, "2000", 10, 600000, "", "",
       "how long a request waits for a connection before 503"},
      {"POOL_IDLE_TIMEOUT_S", whole_number, "60", 1, 86400, "", "", "idle connections are closed after this"},
      {"STATEMENT_TIMEOUT_MS", whole_number, "5000", 10, 3600000, "", "",
       "server-side `statement_timeout` of every query"},
      {"USAGE_ENABLED", choice, "on", 0, 0, "on|off", "",
       "`on` counts per-tenant usage (`GET /admin/usage`, the `tenantd_tenant_*` metrics); `off` turns the accounting "
       "off"},
      {"USAGE_FLUSH_INTERVAL_S", whole_number, "60", 1, 3600, "", "",
       "seconds between flushes of this process's usage counts to the master database"},
      {"USAGE_RETENTION_DAYS", whole_number, "30", 1, 3650, "", "", "days usage rows are kept in the master database"},
      {"USAGE_SIZE_INTERVAL_S", whole_number, "600", 10, 86400, "", "",
       "seconds between samples of the size of active tenants' databases"},
      {"USAGE_MAX_TENANTS", whole_number, "50000", 10, 10000000, "", "",
       "(tenant, minute) usage entries held in memory between flushes; events of tenants past it are dropped and "
       "counted (`tenantd_usage_dropped_total`)"},
      {"MOVE_DATABASE_USERNAME", text, "", 0, 0, "", "unset (moves unavailable)",
       "superuser role, on every database server, that tenant moves connect as (PostgreSQL 15 needs one to create a "
       "subscription); never used by the request path"},
      {"MOVE_DATABASE_PASSWORD", text, "", 0, 0, "", "unset", "its password"},
      {"MOVE_FREEZE_MAX_MS", whole_number, "1000", 50, 60000, "", "",
       "longest a move's cut-over may hold the tenant's writes; past it the cut-over is abandoned and tried again"},
      {"MOVE_SOURCE_GRACE_S", whole_number, "3600", 0, 31536000, "", "",
       "seconds a moved tenant's old database is kept on its old server before it is dropped"},
      {"MOVE_LEASE_S", whole_number, "15", 2, 3600, "", "",
       "a move whose process stopped renewing its lease this long ago is taken over by another process"},
      {"ARGON2_MEMORY_KIB", whole_number, "19456", 8, 4194304, "", "", "Argon2id memory per hash (19 MiB)"},
      {"ARGON2_ITERATIONS", whole_number, "2", 1, 100, "", "", "Argon2id passes"},
      {"ARGON2_THREADS", whole_number, "0", 0, 256, "", "all cores", "password hashing worker threads"},
      {"ARGON2_MAX_QUEUE", whole_number, "64", 1, 100000, "", "",
       "hash jobs allowed to wait or run; beyond that 503. Shared fairly: one client address may hold a quarter of it, "
       "and clients are served in turn"},
  };
  return table;
}

const setting& setting_named(std::string_view name) {
  for (const auto& s : config_table())
    if (s.name == name) return s;
  throw std::out_of_range("no configuration variable " + std::string(name) + " in config_table()");
}

std::string readme_row(const setting& s) {
  std::string shown;
  if (!s.fallback.empty()) {
    shown = "`" + std::string(s.fallback) + "`";
    if (!s.default_note.empty()) shown += " (" + std::string(s.default_note) + ")";
  } else {
    shown = s.default_note;
  }
  return "| `" + std::string(s.name) + "` | " + shown + " | " + std::string(s.description) + " |";
}

}  // namespace tenantd::app
