// Master migrations under their advisory lock.
#include "db/master_migrations.hpp"

#include "db/embedded_migrations.hpp"

namespace tenantd::db {

boost::asio::awaitable<migrate_report> migrate_master(connection& conn) {
  static const auto migrations = parse_migrations(embedded_master_migrations());
  // Named, not braced inside co_await (GCC 12 destroys such a temporary twice).
  const migrate_options locked{.advisory_lock_key = master_migration_lock_key, .target_version = std::nullopt};
  co_return co_await apply_migrations(conn, migrations, locked);
}

}  // namespace tenantd::db
