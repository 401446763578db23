// Tenant provisioning: lock -> row -> database (template copy) -> grants -> caller step ->
// active. The per-tenant advisory lock is taken before the row exists and held to the end,
// so a 'provisioning' row whose lock is free belongs to a dead process.
#include "tenancy/provisioner.hpp"

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <sodium.h>
#include <spdlog/spdlog.h>

#include <array>
#include <csignal>
#include <exception>
#include <unistd.h>

#include "db/master_repository.hpp"

namespace tenantd::tenancy {
namespace {

// Serializes template maintenance with every CREATE DATABASE ... TEMPLATE across processes.
constexpr std::int64_t template_lock_key = 0x74656d706c617465;  // "template"

std::string lock_sql(std::int64_t key, bool lock) {
  return std::string(lock ? "SELECT pg_advisory_lock(" : "SELECT pg_advisory_unlock(") + std::to_string(key) + ")";
}

}  // namespace

std::int64_t provisioning_lock_key(const std::string& tenant_id) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  const std::string input = "tenantd-provisioning:" + tenant_id;
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::uint64_t key = 0;
  for (int i = 0; i < 8; ++i) key = (key << 8) | digest[static_cast<std::size_t>(i)];
  return static_cast<std::int64_t>(key);
}

provisioner::provisioner(std::shared_ptr<db::pool> master, provisioning_settings settings,
                         std::vector<db::migration> migrations)
    : master_(std::move(master)), settings_(std::move(settings)), migrations_(std::move(migrations)) {}

void provisioner::fault(std::string_view step) const {
  if (settings_.fault_point.empty() || settings_.fault_point != step) return;
  spdlog::critical("fault injection: killing the process after provisioning step {}", step);
  spdlog::default_logger()->flush();
  ::kill(::getpid(), SIGKILL);
}

boost::asio::awaitable<int> provisioner::create_database(db::connection& master_conn, const std::string& database) {
  int version = 0;
  auto* conn = &master_conn;
  const auto quoted = conn->escape_identifier(database);
  const bool from_template = settings_.use_template;
  std::string sql = "CREATE DATABASE " + quoted + " TEMPLATE " +
                    (from_template ? conn->escape_identifier(template_name()) : std::string("template0")) +
                    " ENCODING 'UTF8'";
  sql += owner_clause(*conn);
  if (from_template) {
    // The source must have no other connection: hold the template lock while copying, and
    // retry when something still touches it (55006, e.g. an operator's psql).
    const auto lock = lock_sql(template_lock_key, true);
    const auto unlock = lock_sql(template_lock_key, false);
    co_await conn->exec(lock);
    std::exception_ptr failure;
    try {
      // Under the template lock: the version the template really has (another process may
      // have migrated it since this one started).
      const std::string name = template_name();
      std::array<db::param, 1> p{db::param(name)};
      auto r = co_await conn->exec_params("SELECT schema_version FROM template_state WHERE database_name = $1", p);
      version = r.empty() ? template_version_.load() : static_cast<int>(r.int64(0, 0));
    } catch (...) {
      failure = std::current_exception();
    }
    for (int attempt = 1; !failure; ++attempt) {
      bool busy = false;
      try {
        co_await conn->exec(sql);
      } catch (const db::pg_error& e) {
        busy = e.sqlstate() == "55006" && attempt < 20;
        if (!busy) failure = std::current_exception();
      } catch (...) {
        failure = std::current_exception();
      }
      if (!busy) break;
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await timer.async_wait(boost::asio::use_awaitable);
    }
    if (!conn->broken()) co_await conn->exec(unlock);
    if (failure) std::rethrow_exception(failure);
  } else {
    co_await conn->exec(sql);
  }
  fault("after_database");
  const std::string revoke = "REVOKE CONNECT, TEMPORARY ON DATABASE " + quoted + " FROM PUBLIC";
  const std::string grant =
      "GRANT CONNECT, TEMPORARY ON DATABASE " + quoted + " TO " + conn->escape_identifier(settings_.tenant.user);
  co_await conn->exec(revoke);
  co_await conn->exec(grant);
  fault("after_grants");
  co_return version;
}

boost::asio::awaitable<void> provisioner::drop_database(const std::string& database) {
  auto conn = co_await master_->acquire();
  co_await drop_database(*conn, database);
}

boost::asio::awaitable<void> provisioner::drop_database(db::connection& master_conn, const std::string& database) {
  const std::string sql = "DROP DATABASE IF EXISTS " + master_conn.escape_identifier(database) + " WITH (FORCE)";
  co_await master_conn.exec(sql);
}

std::string provisioner::owner_clause(const db::connection& conn) const {
  if (settings_.ddl || settings_.tenant.user == settings_.master_user) return {};
  return " OWNER " + conn.escape_identifier(settings_.tenant.user);
}

boost::asio::awaitable<void> provisioner::grant_runtime_access(db::connection& tenant_conn) const {
  if (settings_.ddl) co_await db::grant_data_access(tenant_conn, settings_.tenant.user);
}

boost::asio::awaitable<int> provisioner::migrate_database(const std::string& database) {
  db::connection_options options;
  options.conninfo = tenant_conninfo(settings_.ddl_connection(), database, std::chrono::minutes(5));
  options.query_timeout = std::chrono::minutes(5);
  auto conn = co_await db::connection::connect(co_await boost::asio::this_coro::executor, options);
  auto report = co_await db::apply_migrations(*conn, migrations_);
  co_await grant_runtime_access(*conn);
  co_return report.version_after;
}

boost::asio::awaitable<int> provisioner::prepare_template() {
  auto conn = co_await master_->acquire();
  const auto name = template_name();
  const auto quoted = conn->escape_identifier(name);
  const auto lock = lock_sql(template_lock_key, true);
  const auto unlock = lock_sql(template_lock_key, false);
  co_await conn->exec(lock);
  std::exception_ptr failure;
  int version = 0;
  try {
    if (!co_await db::master::database_exists(*conn, name)) {
      std::string create = "CREATE DATABASE " + quoted + " TEMPLATE template0 ENCODING 'UTF8'";
      create += owner_clause(*conn);
      co_await conn->exec(create);
      const std::string revoke = "REVOKE CONNECT, TEMPORARY ON DATABASE " + quoted + " FROM PUBLIC";
      const std::string grant =
          "GRANT CONNECT ON DATABASE " + quoted + " TO " + conn->escape_identifier(settings_.tenant.user);
      co_await conn->exec(revoke);
      co_await conn->exec(grant);
      spdlog::info("created tenant template database {}", name);
    }
    const std::string open = "ALTER DATABASE " + quoted + " WITH ALLOW_CONNECTIONS true";
    co_await conn->exec(open);
    version = co_await migrate_database(name);
    const std::string close = "ALTER DATABASE " + quoted + " WITH ALLOW_CONNECTIONS false IS_TEMPLATE true";
    co_await conn->exec(close);
    const auto version_text = std::to_string(version);
    std::array<db::param, 2> p{db::param(name), db::param(version_text)};
    co_await conn->exec_params(
        "INSERT INTO template_state (database_name, schema_version) VALUES ($1, $2::int) "
        "ON CONFLICT (database_name) DO UPDATE SET schema_version = EXCLUDED.schema_version, migrated_at = now()",
        p);
  } catch (...) {
    failure = std::current_exception();
  }
  if (!conn->broken()) co_await conn->exec(unlock);
  if (failure) std::rethrow_exception(failure);
  template_version_ = version;
  co_return version;
}

boost::asio::awaitable<result<tenant_record>> provisioner::create(const std::string& id, const std::string& name,
                                                                  ready_step on_ready) {
  const auto database = database_name(id);
  if (settings_.use_template && template_version_.load() < latest_version()) co_await prepare_template();

  // The lock connection holds the tenant's provisioning lock for the whole creation.
  auto lock_conn = co_await master_->acquire();
  const auto lock_statement = lock_sql(provisioning_lock_key(id), true);
  const auto unlock_statement = lock_sql(provisioning_lock_key(id), false);
  co_await lock_conn->exec(lock_statement);
  const auto unlock = [&]() -> boost::asio::awaitable<void> {
    if (!lock_conn->broken()) co_await lock_conn->exec(unlock_statement);
  };

  if (!co_await db::master::insert_provisioning_tenant(*lock_conn, id, name, database)) {
    co_await unlock();
    co_return make_error(errc::tenant_exists, "a tenant with this id already exists");
  }
  if (co_await db::master::database_exists(*lock_conn, database)) {
    // A database with this name exists without a tenant row: never hand it to a new owner.
    co_await db::master::delete_tenant_row(*lock_conn, id);
    co_await unlock();
    spdlog::warn("tenant {}: database {} exists without a tenant; refusing to reuse it", id, database);
    co_return make_error(errc::tenant_exists, "a tenant with this id already exists");
  }
  fault("after_row");

  std::exception_ptr failure;
  std::optional<error> refused;
  bool database_created = false;
  bool database_foreign = false;  // CREATE DATABASE found one already there: never ours to drop
  try {
    const int template_version = co_await create_database(*lock_conn, database);
    database_created = true;
    const int version = settings_.use_template ? template_version : co_await migrate_database(database);
    co_await db::master::set_tenant_schema_version(*lock_conn, id, version, std::nullopt);
    auto tenant = tenant_record{id, name, "provisioning", "invite", database, std::nullopt, version, {}, {}};
    if (on_ready) {
      auto step = co_await on_ready(tenant);
      if (!step) refused = std::move(step).err();
    }
    if (!refused) {
      fault("after_ready");
      co_await db::master::set_tenant_status(*lock_conn, id, "active");
      auto created = co_await db::master::find_tenant(*lock_conn, id);
      co_await unlock();
      if (created) co_return *created;
      throw std::runtime_error("tenant row vanished during provisioning");
    }
  } catch (const db::pg_error& e) {
    database_foreign = !database_created && e.sqlstate() == "42P04";  // duplicate_database
    failure = std::current_exception();
  } catch (...) {
    failure = std::current_exception();
  }

  // Roll back: drop what was made, then the row, so the id can be tried again. After an
  // exception the database may exist even if create_database did not return (e.g. REVOKE
  // failed, or CREATE timed out on our side), so it is dropped then too, unless it was there
  // before us (created since the database_exists check).
  try {
    // The lock connection does the rollback while it is usable (no second connection needed).
    db::pooled_connection spare;
    if (lock_conn->broken() || !lock_conn->idle_in_no_transaction()) spare = co_await master_->acquire();
    db::connection& conn = spare ? *spare : *lock_conn;
    if (database_created || (failure && !database_foreign)) co_await drop_database(conn, database);
    co_await db::master::delete_tenant_row(conn, id);
  } catch (const std::exception& e) {
    spdlog::error("tenant {}: rollback after failed provisioning did not finish: {}", id, e.what());
  }
  try {
    co_await unlock();
  } catch (const std::exception&) {  // the lock dies with the connection anyway
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
