// The restore flow: read the file (backup_file), take the id under its provisioning lock,
// create an empty database and pg_restore into it (pg_tools), write the master rows back in
// one transaction (db/backup_repository), go active. Any failure undoes what was made.
#include <spdlog/spdlog.h>

#include <exception>
#include <stdexcept>

#include "db/advisory_lock.hpp"
#include "db/backup_repository.hpp"
#include "db/master_repository.hpp"
#include "db/migrator.hpp"
#include "db/server_repository.hpp"
#include "db/session_repository.hpp"
#include "db/transaction.hpp"
#include "domain/validation.hpp"
#include "tenancy/backup.hpp"
#include "tenancy/backup_file.hpp"
#include "tenancy/pg_tools.hpp"

namespace tenantd::tenancy {
namespace net = boost::asio;

namespace {

struct claim {
  bool reused_row{false};  // the row of a deleted tenant was taken back
  std::string server;      // where the restored database goes
};

// Claims `id` for the restore on the lock connection: a new 'provisioning' row, or the row of
// a 'deleted' tenant taken back, placed on `requested` or the server placement picks.
// errc::tenant_exists when the id is in use; placement's errors (db::servers).
net::awaitable<result<claim>> claim_id(db::connection& conn, const std::string& id, const std::string& name,
                                       const std::string& database, const std::optional<std::string>& requested) {
  if (auto existing = co_await db::master::find_tenant(conn, id)) {
    if (existing->status != tenant_status::deleted)
      co_return make_error(errc::tenant_exists,
                           "tenant " + id + " exists (" + std::string(to_string(existing->status)) + ")");
    co_await db::backups::reuse_deleted_tenant(conn, id, name, database);
    auto placed = co_await db::servers::place_existing_tenant(conn, id, requested);
    if (!placed) {
      co_await db::backups::mark_deleted(conn, id);
      co_return std::move(placed).err();
    }
    co_return claim{true, std::move(*placed)};
  }
  auto placed = co_await db::servers::insert_placed_tenant(conn, id, name, database, requested);
  if (!placed) co_return std::move(placed).err();
  co_return claim{false, std::move(*placed)};
}

// The master rows of the backup, in one transaction that ends with the tenant 'active'.
net::awaitable<restore_report> write_master_rows(db::connection& conn, const std::string& id, const backup_rows& rows,
                                                 int version) {
  restore_report report;
  auto tx = co_await db::transaction::begin(conn);
  co_await db::backups::clear_members_and_invitations(conn, id);
  (void)co_await db::sessions::delete_tenant_sessions(conn, id);  // a restored tenant starts with no session
  for (const auto& m : rows.members) {
    if (!co_await db::master::find_account(conn, m.account_id)) {
      if (co_await db::master::find_account_by_email(conn, m.email)) {
        report.skipped_members.push_back(m.email);
        continue;
      }
      co_await db::backups::insert_account(conn, m);
    }
    co_await db::backups::insert_membership(conn, id, m);
    ++report.members;
  }
  for (const auto& i : rows.invitations)
    if (co_await db::backups::insert_invitation(conn, id, i)) ++report.invitations;
  co_await db::backups::activate_restored(conn, id, rows.tenant.name, rows.tenant.registration, version);
  const auto change = invalidation::of_tenant(id);
  co_await db::master::notify_invalidation(conn, change);
  co_await tx.commit();
  auto restored = co_await db::master::find_tenant(conn, id);
  if (!restored) throw std::runtime_error("tenant row vanished during restore");
  report.tenant = std::move(*restored);
  co_return report;
}

}  // namespace

net::awaitable<result<restore_report>> restore_tenant(std::shared_ptr<db::pool> master, provisioner& provisioning,
                                                      const std::string& path, const std::optional<std::string>& as_id,
                                                      const std::optional<std::string>& server) {
  auto read = [path] { return read_backup_file(path); };
  auto loaded = co_await offload(std::move(read));
  if (loaded.refused) co_return std::move(*loaded.refused);
  const temporary_file archive{loaded.archive_path};
  const auto rows = decode_backup_rows(loaded.rows_json);
  if (!rows) co_return make_error(errc::invalid_input, "the backup holds metadata this version cannot read");
  const std::string id = as_id.value_or(rows->tenant.id);
  if (auto problem = validation::check_tenant_id(id))
    co_return make_error(errc::invalid_input, "tenant id: " + *problem);
  const std::string database = provisioning.database_name(id);

  // The provisioning lock makes this restore a live provisioning for reconcile(): if this
  // process dies, the 'provisioning' row and the database are rolled back. It runs on the
  // DDL pool: CREATE DATABASE needs the DDL role when one is configured.
  auto lock_conn = co_await provisioning.ddl_pool()->acquire();
  auto lock = co_await db::advisory_lock::acquire(*lock_conn, provisioning_lock_key(id));
  auto claimed = co_await claim_id(*lock_conn, id, rows->tenant.name, database, server);
  if (!claimed) co_return std::move(claimed).err();
  const bool reused_row = claimed->reused_row;

  restore_report report;
  std::exception_ptr failure;
  std::optional<error> refused;
  bool database_created = false;
  bool database_foreign = false;  // a database of that name is there already: never ours to drop
  std::optional<server_connection> target;
  try {
    target = co_await provisioning.server(claimed->server);
    // On main, the DDL runs on the lock connection (the DDL pool's); elsewhere on that server.
    ddl_session ddl;
    if (target->maintenance_database.empty())
      ddl = ddl_session(*lock_conn);
    else
      ddl = co_await provisioning.open_ddl_session(*target);
    if (co_await db::master::database_exists(*ddl, database)) {
      database_foreign = true;
      refused = make_error(errc::tenant_exists, "database " + database + " exists without a tenant; not reused");
    } else {
      try {
        co_await provisioning.create_empty_database(*target, *ddl, database);
      } catch (const db::pg_error& e) {
        database_foreign = e.sqlstate() == "42P04";  // duplicate_database
        throw;
      }
      database_created = true;
      // As the DDL role (which then owns every restored object), like migrations.
      co_await pg_restore(target->ddl, database, archive.path);
      int version = 0;
      {
        db::connection_options options;
        options.conninfo = db::service_conninfo(target->ddl, database, std::chrono::minutes(1));
        auto tenant_conn = co_await db::connection::connect(co_await net::this_coro::executor, options);
        version = co_await db::current_version(*tenant_conn);
        co_await provisioning.grant_runtime_access(*target, *tenant_conn);
      }
      auto conn = co_await master->acquire();
      report = co_await write_master_rows(*conn, id, *rows, version);
    }
  } catch (...) {
    failure = std::current_exception();
  }

  if (failure || refused) {
    try {
      if (target && (database_created || (failure && !database_foreign)))
        co_await provisioning.drop_database(*target, database);
      auto conn = co_await master->acquire();
      if (reused_row)
        co_await db::backups::mark_deleted(*conn, id);
      else
        co_await db::master::delete_tenant_row(*conn, id);
    } catch (const std::exception& e) {
      spdlog::error("tenant {}: rollback after a failed restore did not finish: {}", id, e.what());
    }
    if (failure) std::rethrow_exception(failure);  // `lock` is released by its connection
    co_await lock.release();
    co_return std::move(*refused);
  }
  co_await lock.release();
  spdlog::info("tenant {}: restored from {} ({} members, {} skipped)", id, path, report.members,
               report.skipped_members.size());
  co_return report;
}

}  // namespace tenantd::tenancy
