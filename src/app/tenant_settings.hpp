// The tenant-side settings every subcommand derives the same way from a configuration:
// which tenant migrations apply, how tenant databases are reached, how they are provisioned.
#pragma once
#include <string>
#include <vector>

#include "app/config.hpp"
#include "db/migrator.hpp"
#include "tenancy/mover.hpp"
#include "tenancy/pool_registry.hpp"
#include "tenancy/provisioner.hpp"
#include "tenancy/server_directory.hpp"

namespace tenantd::app {

// TENANT_MIGRATIONS_DIR (or `directory_override` when non-empty), else the built-in ones.
// Throws db::migration_error for malformed files.
std::vector<db::migration> tenant_migrations(const config& cfg, const std::string& directory_override = {});

tenancy::tenant_connection_settings tenant_connection(const config& cfg);
tenancy::provisioning_settings provisioning(const config& cfg);

// The server of DB_HOST/DB_PORT (`main`): its runtime role, and its DDL role for migrations
// (CREATE/DROP DATABASE run on the master database through the DDL pool).
tenancy::server_connection main_server(const config& cfg);
// What other servers' URLs fall back to: DB_USERNAME/DB_PASSWORD, and MIGRATION_DATABASE_URL's
// role for DDL when set.
tenancy::server_defaults server_defaults(const config& cfg);
// MOVE_DATABASE_USERNAME/_PASSWORD, MOVE_FREEZE_MAX_MS, MOVE_SOURCE_GRACE_S; the lease owner
// names this process (host, pid and a random part).
tenancy::move_settings move_settings(const config& cfg);

}  // namespace tenantd::app
