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

#include "db/advisory_lock.hpp"
#include "db/master_repository.hpp"
#include "db/tenant_database_repository.hpp"

namespace tenantd::tenancy {
namespace {

// Serializes template maintenance with every CREATE DATABASE ... TEMPLATE across processes.
constexpr std::int64_t template_lock_key = 0x74656d706c617465;  // "template"

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

void provisioner::fault([[maybe_unused]] std::string_view step) const {
#ifdef TENANTD_FAULT_INJECTION
  if (settings_.fault_point.empty() || settings_.fault_point != step) return;
  spdlog::critical("fault injection: killing the process after provisioning step {}", step);
  spdlog::default_logger()->flush();
  ::kill(::getpid(), SIGKILL);
#endif
}

boost::asio::awaitable<int> provisioner::create_database(db::connection& master_conn, const std::string& database) {
  int version = 0;
  if (settings_.use_template) {
    // The source must have no other connection: hold the template lock while copying, and
    // retry when something still touches it (55006, e.g. an operator's psql).
    auto lock = co_await db::advisory_lock::acquire(master_conn, template_lock_key);
    // Under the template lock: the version the template really has (another process may have
    // migrated it since this one started).
    const auto recorded = co_await db::databases::template_version(master_conn, template_name());
    version = recorded.value_or(template_version_.load());
    for (int attempt = 1;; ++attempt) {
      bool busy = false;
      try {
        co_await db::databases::create(master_conn, database, template_name(), database_owner());
      } catch (const db::pg_error& e) {
        busy = e.sqlstate() == "55006" && attempt < 20;
        if (!busy) throw;
      }
      if (!busy) break;
      boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, std::chrono::milliseconds(50));
      co_await timer.async_wait(boost::asio::use_awaitable);
    }
    co_await lock.release();
  } else {
    const std::string empty = "template0";
    co_await db::databases::create(master_conn, database, empty, database_owner());
  }
  fault("after_database");
  co_await db::databases::restrict_connect(master_conn, database, settings_.tenant.user, true);
  fault("after_grants");
  co_return version;
}

boost::asio::awaitable<void> provisioner::create_empty_database(db::connection& master_conn,
                                                                const std::string& database) const {
  const std::string empty = "template0";
  co_await db::databases::create(master_conn, database, empty, database_owner());
  co_await db::databases::restrict_connect(master_conn, database, settings_.tenant.user, true);
}

boost::asio::awaitable<void> provisioner::drop_database(const std::string& database) {
  auto conn = co_await master_->acquire();
  co_await drop_database(*conn, database);
}

boost::asio::awaitable<void> provisioner::drop_database(db::connection& master_conn, const std::string& database) {
  co_await db::databases::drop(master_conn, database);
}

std::optional<std::string> provisioner::database_owner() const {
  if (settings_.ddl || settings_.tenant.user == settings_.master_user) return std::nullopt;
  return settings_.tenant.user;
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
  auto lock = co_await db::advisory_lock::acquire(*conn, template_lock_key);
  if (!co_await db::master::database_exists(*conn, name)) {
    const std::string empty = "template0";
    co_await db::databases::create(*conn, name, empty, database_owner());
    co_await db::databases::restrict_connect(*conn, name, settings_.tenant.user, false);
    spdlog::info("created tenant template database {}", name);
  }
  co_await db::databases::open_template(*conn, name);
  const int version = co_await migrate_database(name);
  co_await db::databases::close_template(*conn, name);
  co_await db::databases::record_template_version(*conn, name, version);
  co_await lock.release();
  template_version_ = version;
  co_return version;
}

boost::asio::awaitable<result<tenant_record>> provisioner::create(const std::string& id, const std::string& name,
                                                                  ready_step on_ready) {
  const auto database = database_name(id);
  if (settings_.use_template && template_version_.load() < latest_version()) co_await prepare_template();

  // The lock connection holds the tenant's provisioning lock for the whole creation.
  auto lock_conn = co_await master_->acquire();
  auto lock = co_await db::advisory_lock::acquire(*lock_conn, provisioning_lock_key(id));

  if (!co_await db::master::insert_provisioning_tenant(*lock_conn, id, name, database)) {
    co_return make_error(errc::tenant_exists, "a tenant with this id already exists");
  }
  if (co_await db::master::database_exists(*lock_conn, database)) {
    // A database with this name exists without a tenant row: never hand it to a new owner.
    co_await db::master::delete_tenant_row(*lock_conn, id);
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
    auto tenant =
        tenant_record{id, name, tenant_status::provisioning, "invite", database, std::nullopt, version, {}, {}};
    if (on_ready) {
      auto step = co_await on_ready(tenant);
      if (!step) refused = std::move(step).err();
    }
    if (!refused) {
      fault("after_ready");
      co_await db::master::set_tenant_status(*lock_conn, id, tenant_status::active);
      auto created = co_await db::master::find_tenant(*lock_conn, id);
      co_await lock.release();
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
  // The id is free again. If this unlock fails, `lock` leaves it to its connection (and a
  // broken connection's lock died with it).
  try {
    co_await lock.release();
  } catch (const std::exception&) {
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
