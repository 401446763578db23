// How every subcommand reaches the master database: connection strings and the two pools
// (requests, and DDL/migrations) derived the same way from a configuration.
#pragma once
#include <chrono>
#include <string>

#include "app/config.hpp"
#include "db/pool.hpp"

namespace tenantd::app {

// The master database connection string (libpq keyword/value) for a configuration, with
// STATEMENT_TIMEOUT_MS or the given statement timeout (DDL such as CREATE/DROP DATABASE
// needs far longer than a request's budget; 0 disables it).
std::string master_conninfo(const config& cfg);
std::string master_conninfo(const config& cfg, std::chrono::milliseconds statement_timeout);
// The same database as the role that runs DDL and migrations: MIGRATION_DATABASE_URL's
// host, port, user and password when set, else master_conninfo's.
std::string migration_conninfo(const config& cfg, std::chrono::milliseconds statement_timeout);

// The pool requests use: MASTER_DATABASE_URL, STATEMENT_TIMEOUT_MS, MASTER_POOL_SIZE,
// POOL_ACQUIRE_TIMEOUT_MS, POOL_IDLE_TIMEOUT_MS, SLOW_QUERY_MS.
db::pool_options master_pool_options(const config& cfg);
// The pool for CREATE/DROP DATABASE, template maintenance and migrations: as
// MIGRATION_DATABASE_URL's role when set, without the request statement timeout (10 min:
// under I/O load a DROP DATABASE can take longer than 5 s), 4 connections.
db::pool_options ddl_pool_options(const config& cfg);
// ddl_pool_options for a one-shot command (tenantd tenants|servers): no request budget to
// respect, so it waits longer to connect (10 s) and for a connection (30 s), and it logs no
// slow statement (the command prints its own outcome).
db::pool_options command_ddl_pool_options(const config& cfg);

}  // namespace tenantd::app
