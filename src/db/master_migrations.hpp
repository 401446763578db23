// The master database's migrations (compiled in) and the one advisory lock every process
// holds while it applies them: serve at start-up, `tenantd migrate` and `tenantd tenants`,
// so several of them may start at once.
#pragma once
#include <boost/asio/awaitable.hpp>

#include <cstdint>

#include "db/connection.hpp"
#include "db/migrator.hpp"

namespace tenantd::db {

// pg_advisory_lock key of master migrations: "tenantd" in ASCII.
inline constexpr std::int64_t master_migration_lock_key = 0x74656e616e7464;

// Applies the embedded master migrations under master_migration_lock_key. Throws as
// apply_migrations does.
boost::asio::awaitable<migrate_report> migrate_master(connection& conn);

}  // namespace tenantd::db
