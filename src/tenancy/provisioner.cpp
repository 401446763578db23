// Tenant provisioning: row -> database -> grants -> migrations -> caller step -> active.
#include "tenancy/provisioner.hpp"

#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <exception>

#include "db/master_repository.hpp"

namespace tenantd::tenancy {

provisioner::provisioner(std::shared_ptr<db::pool> master, provisioning_settings settings,
                         std::vector<db::migration> migrations)
    : master_(std::move(master)), settings_(std::move(settings)), migrations_(std::move(migrations)) {}

boost::asio::awaitable<void> provisioner::create_database(const std::string& database) {
  auto conn = co_await master_->acquire();
  const auto quoted = conn->escape_identifier(database);
  std::string sql = "CREATE DATABASE " + quoted + " TEMPLATE template0 ENCODING 'UTF8'";
  if (settings_.tenant.user != settings_.master_user)
    sql += " OWNER " + conn->escape_identifier(settings_.tenant.user);
  co_await conn->exec(sql);
  co_await conn->exec("REVOKE CONNECT, TEMPORARY ON DATABASE " + quoted + " FROM PUBLIC");
  co_await conn->exec("GRANT CONNECT, TEMPORARY ON DATABASE " + quoted + " TO " +
                      conn->escape_identifier(settings_.tenant.user));
}

boost::asio::awaitable<void> provisioner::drop_database(const std::string& database) {
  auto conn = co_await master_->acquire();
  co_await conn->exec("DROP DATABASE IF EXISTS " + conn->escape_identifier(database) + " WITH (FORCE)");
}

boost::asio::awaitable<int> provisioner::migrate_database(const std::string& database) {
  db::connection_options options;
  options.conninfo = tenant_conninfo(settings_.tenant, database, std::chrono::minutes(5));
  options.query_timeout = std::chrono::minutes(5);
  auto conn = co_await db::connection::connect(co_await boost::asio::this_coro::executor, options);
  auto report = co_await db::apply_migrations(*conn, migrations_);
  co_return report.version_after;
}

boost::asio::awaitable<result<tenant_record>> provisioner::create(const std::string& id, const std::string& name,
                                                                  ready_step on_ready) {
  const auto database = database_name(id);
  {
    auto conn = co_await master_->acquire();
    if (!co_await db::master::insert_provisioning_tenant(*conn, id, name, database))
      co_return make_error(errc::tenant_exists, "a tenant with this id already exists");
    if (co_await db::master::database_exists(*conn, database)) {
      // A database with this name exists without a tenant row: never hand it to a new owner.
      co_await db::master::delete_tenant_row(*conn, id);
      spdlog::warn("tenant {}: database {} exists without a tenant; refusing to reuse it", id, database);
      co_return make_error(errc::tenant_exists, "a tenant with this id already exists");
    }
  }

  std::exception_ptr failure;
  std::optional<error> refused;
  bool database_created = false;
  bool database_foreign = false;  // CREATE DATABASE found one already there: never ours to drop
  try {
    co_await create_database(database);
    database_created = true;
    const int version = co_await migrate_database(database);
    {
      auto conn = co_await master_->acquire();
      co_await db::master::set_tenant_schema_version(*conn, id, version, std::nullopt);
    }
    auto tenant = tenant_record{id, name, "provisioning", "invite", database, std::nullopt, version, {}, {}};
    if (on_ready) {
      auto step = co_await on_ready(tenant);
      if (!step) refused = std::move(step).err();
    }
    if (!refused) {
      auto conn = co_await master_->acquire();
      co_await db::master::set_tenant_status(*conn, id, "active");
      auto created = co_await db::master::find_tenant(*conn, id);
      if (created) co_return *created;
      throw std::runtime_error("tenant row vanished during provisioning");
    }
  } catch (const db::pg_error& e) {
    database_foreign = !database_created && e.sqlstate() == "42P04";  // duplicate_database
    failure = std::current_exception();
  } catch (...) {
    failure = std::current_exception();
  }

  // Roll back: drop what was made, then the row, so the id can be tried again.
  try {
    // After an exception the database may exist even if create_database did not return
    // (e.g. REVOKE failed, or CREATE timed out on our side), so it is dropped then too,
    // unless it was there before us (created since the database_exists check).
    if (database_created || (failure && !database_foreign)) co_await drop_database(database);
    auto conn = co_await master_->acquire();
    co_await db::master::delete_tenant_row(*conn, id);
  } catch (const std::exception& e) {
    spdlog::error("tenant {}: rollback after failed provisioning did not finish: {}", id, e.what());
  }
  if (failure) std::rethrow_exception(failure);
  co_return std::move(*refused);
}

boost::asio::awaitable<void> provisioner::remove(const std::string& id) {
  co_await drop_database(database_name(id));
  auto conn = co_await master_->acquire();
  co_await db::master::delete_tenant_row(*conn, id);
}

}  // namespace tenantd::tenancy
