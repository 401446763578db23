// Wires configuration into a running server: io threads, master pool and migrations,
// tenant pools, caches and their invalidation listener, password hashing, the dispatcher
// and the HTTP server; handles SIGINT/SIGTERM (drain, then exit; a second signal exits at once).
#pragma once
#include <chrono>
#include <string>

#include "app/config.hpp"

namespace tenantd::app {

// Runs the server until a signal stops it; returns the process exit code.
int serve(const config& cfg);

// The master database connection string (libpq keyword/value) for a configuration, with
// STATEMENT_TIMEOUT_MS or the given statement timeout (DDL such as CREATE/DROP DATABASE
// needs far longer than a request's budget; 0 disables it).
std::string master_conninfo(const config& cfg);
std::string master_conninfo(const config& cfg, std::chrono::milliseconds statement_timeout);
// The same database as the role that runs DDL and migrations: MIGRATION_DATABASE_URL's
// host, port, user and password when set, else master_conninfo's.
std::string migration_conninfo(const config& cfg, std::chrono::milliseconds statement_timeout);

}  // namespace tenantd::app
