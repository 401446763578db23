// Master connection strings and pool options.
#include "app/master_database.hpp"

#include <algorithm>

namespace tenantd::app {
namespace {

using namespace std::chrono_literals;

std::string conninfo_for(const config& cfg, const database_endpoint& endpoint,
                         std::chrono::milliseconds statement_timeout) {
  return db::service_conninfo(endpoint, cfg.master_database_name, statement_timeout);
}

}  // namespace

std::string master_conninfo(const config& cfg) { return master_conninfo(cfg, cfg.statement_timeout); }

std::string master_conninfo(const config& cfg, std::chrono::milliseconds statement_timeout) {
  return conninfo_for(cfg, cfg.master, statement_timeout);
}

std::string migration_conninfo(const config& cfg, std::chrono::milliseconds statement_timeout) {
  return conninfo_for(cfg, cfg.migration.value_or(cfg.master), statement_timeout);
}

db::pool_options master_pool_options(const config& cfg) {
  db::pool_options options;
  options.connection.conninfo = master_conninfo(cfg);
  // Connects are the pool's background work; a request waits POOL_ACQUIRE_TIMEOUT_MS at most
  // for whichever connection comes first, and a slower connect still feeds the pool.
  options.connection.connect_timeout = std::max(cfg.pool_acquire_timeout, std::chrono::milliseconds(10000));
  options.connection.query_timeout = cfg.statement_timeout + 1s;
  options.connection.slow_query_threshold = cfg.slow_query;
  options.connection.label = "master";
  options.max_size = cfg.master_pool_size;
  options.acquire_timeout = cfg.pool_acquire_timeout;
  options.idle_timeout = cfg.pool_idle_timeout;
  return options;
}

db::pool_options ddl_pool_options(const config& cfg) {
  auto options = master_pool_options(cfg);
  options.connection.conninfo = migration_conninfo(cfg, 10min);
  options.connection.query_timeout = 10min;
  options.max_size = 4;
  return options;
}

db::pool_options command_ddl_pool_options(const config& cfg) {
  auto options = ddl_pool_options(cfg);
  options.connection.connect_timeout = 10s;
  options.connection.slow_query_threshold = 0ms;
  options.acquire_timeout = 30s;
  return options;
}

}  // namespace tenantd::app
