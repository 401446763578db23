// Tenant provisioning: lock -> row placed on a server -> database there (a copy of that
// server's template) -> grants -> caller step -> active. The per-tenant advisory lock is
// taken before the row exists and held to the end, so a 'provisioning' row whose lock is
// free belongs to a dead process.
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
#include "db/server_repository.hpp"
#include "db/tenant_database_repository.hpp"
#include "domain/server.hpp"

namespace tenantd::tenancy {
namespace {

// main's template lock ("template"): the key every version before servers used, so processes
// of both versions still serialize on it.
constexpr std::int64_t main_template_lock_key = 0x74656d706c617465;

std::int64_t hashed_key(const std::string& input) {
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(input.data()), input.size());
  std::uint64_t key = 0;
  for (int i = 0; i < 8; ++i) key = (key << 8) | digest[static_cast<std::size_t>(i)];
  return static_cast<std::int64_t>(key);
}

db::server_endpoint endpoint_of(const tenant_connection_settings& s) {
  return {s.host, s.port, s.user, s.password, {}, {}};
}

}  // namespace

std::int64_t provisioning_lock_key(const std::string& tenant_id) {
  return hashed_key("tenantd-provisioning:" + tenant_id);
}

std::int64_t template_lock_key(const std::string& server) {
  if (server == main_server_name) return main_template_lock_key;
  return hashed_key("tenantd-template:" + server);
}

provisioner::provisioner(std::shared_ptr<db::pool> master, provisioning_settings settings,
                         std::vector<db::migration> migrations, server_directory* servers)
    : master_(std::move(master)),
      settings_(std::move(settings)),
      migrations_(std::move(migrations)),
      servers_(servers),
      main_(servers ? servers->main()
                    : server_connection{std::string(main_server_name),
                                        endpoint_of(settings_.tenant),
                                        endpoint_of(settings_.ddl_connection()),
                                        {}}) {}

void provisioner::fault([[maybe_unused]] std::string_view step) const {
#ifdef TENANTD_FAULT_INJECTION
  if (settings_.fault_point.empty() || settings_.fault_point != step) return;
  spdlog::critical("fault injection: killing the process after provisioning step {}", step);
  spdlog::default_logger()->flush();
  ::kill(::getpid(), SIGKILL);
#endif
}

boost::asio::awaitable<server_connection> provisioner::server(const std::string& name) {
  if (name == main_server_name) co_return main_;
  if (servers_ != nullptr)
    if (auto found = co_await servers_->lookup(name)) co_return std::move(*found);
  throw db::unavailable_error("database server " + name + " is unknown");
}

boost::asio::awaitable<server_connection> provisioner::server_of(const tenant_record& tenant) {
  co_return co_await server(tenant.db_server.value_or(std::string(main_server_name)));
}

boost::asio::awaitable<std::vector<server_connection>> provisioner::all_servers() {
  if (servers_ == nullptr) co_return std::vector<server_connection>{main_};
  co_return co_await servers_->all();
}

boost::asio::awaitable<ddl_session> provisioner::open_ddl_session(const server_connection& server) {
  if (server.maintenance_database.empty()) co_return ddl_session(co_await master_->acquire());
  db::connection_options options;
  options.conninfo = db::service_conninfo(server.ddl, server.maintenance_database, std::chrono::minutes(10));
  options.query_timeout = std::chrono::minutes(10);
  options.label = "server=" + server.name + " ddl";
  co_return ddl_session(co_await db::connection::connect(co_await boost::asio::this_coro::executor, options));
}

int provisioner::template_version(const std::string& server) const {
  std::lock_guard lock(template_mutex_);
  if (auto it = template_versions_.find(server); it != template_versions_.end()) return it->second;
  return 0;
}

boost::asio::awaitable<int> provisioner::create_database(const server_connection& server, db::connection& master_conn,
                                                         db::connection& ddl_conn, const std::string& database) {
  int version = 0;
  if (settings_.use_template) {
    // The source must have no other connection: hold the server's template lock while
    // copying, and retry when something still touches it (55006, e.g. an operator's psql).
    auto lock = co_await db::advisory_lock::acquire(master_conn, template_lock_key(server.name));
    // Under the template lock: the version the template really has (another process may have
    // migrated it since this one started).
    const auto recorded = co_await db::databases::template_version(master_conn, server.name, template_name());
    version = recorded.value_or(template_version(server.name));
    for (int attempt = 1;; ++attempt) {
      bool busy = false;
      try {
        co_await db::databases::create(ddl_conn, database, template_name(), database_owner(server));
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
    co_await db::databases::create(ddl_conn, database, empty, database_owner(server));
  }
  fault("after_database");
  co_await db::databases::restrict_connect(ddl_conn, database, server.runtime.user, true);
  fault("after_grants");
  co_return version;
}

boost::asio::awaitable<void> provisioner::create_empty_database(db::connection& ddl_conn,
                                                                const std::string& database) const {
  co_await create_empty_database(main_, ddl_conn, database);
}

boost::asio::awaitable<void> provisioner::create_empty_database(const server_connection& server,
                                                                db::connection& ddl_conn,
                                                                const std::string& database) const {
  const std::string empty = "template0";
  co_await db::databases::create(ddl_conn, database, empty, database_owner(server));
  co_await db::databases::restrict_connect(ddl_conn, database, server.runtime.user, true);
}

boost::asio::awaitable<void> provisioner::drop_database(const std::string& database) {
  co_await drop_database(main_, database);
}

boost::asio::awaitable<void> provisioner::drop_database(const server_connection& server, const std::string& database) {
  auto conn = co_await open_ddl_session(server);
  co_await drop_database(*conn, database);
}

boost::asio::awaitable<void> provisioner::drop_database(db::connection& ddl_conn, const std::string& database) {
  co_await db::databases::drop(ddl_conn, database);
}

std::optional<std::string> provisioner::database_owner() const { return database_owner(main_); }

std::optional<std::string> provisioner::database_owner(const server_connection& server) const {
  if (settings_.ddl) return std::nullopt;
  // On main, CREATE DATABASE runs as master_user (the DDL pool); elsewhere as the server's
  // DDL role, which is its runtime role when there is no separate DDL role.
  const auto& creator = server.maintenance_database.empty() ? settings_.master_user : server.ddl.user;
  if (server.runtime.user == creator) return std::nullopt;
  return server.runtime.user;
}

boost::asio::awaitable<void> provisioner::grant_runtime_access(db::connection& tenant_conn) const {
  co_await grant_runtime_access(main_, tenant_conn);
}

boost::asio::awaitable<void> provisioner::grant_runtime_access(const server_connection& server,
                                                               db::connection& tenant_conn) const {
  if (settings_.ddl) co_await db::grant_data_access(tenant_conn, server.runtime.user);
}

boost::asio::awaitable<int> provisioner::migrate_database(const std::string& database) {
  co_return co_await migrate_database(main_, database);
}

boost::asio::awaitable<int> provisioner::migrate_database(const server_connection& server,
                                                          const std::string& database) {
  db::connection_options options;
  options.conninfo = db::service_conninfo(server.ddl, database, std::chrono::minutes(5));
  options.query_timeout = std::chrono::minutes(5);
  auto conn = co_await db::connection::connect(co_await boost::asio::this_coro::executor, options);
  auto report = co_await db::apply_migrations(*conn, migrations_);
  co_await grant_runtime_access(server, *conn);
  co_return report.version_after;
}

boost::asio::awaitable<int> provisioner::prepare_template() { co_return co_await prepare_template(main_); }

boost::asio::awaitable<int> provisioner::prepare_template(const server_connection& server) {
  auto conn = co_await master_->acquire();
  co_return co_await prepare_template(server, *conn);
}

boost::asio::awaitable<int> provisioner::prepare_template(const server_connection& server, db::connection& conn) {
  const auto name = template_name();
  auto lock = co_await db::advisory_lock::acquire(conn, template_lock_key(server.name));
  {
    // On main the DDL runs on the lock's own master connection, as before servers existed.
    ddl_session ddl;
    if (server.maintenance_database.empty())
      ddl = ddl_session(conn);
    else
      ddl = co_await open_ddl_session(server);
    if (!co_await db::master::database_exists(*ddl, name)) {
      const std::string empty = "template0";
      co_await db::databases::create(*ddl, name, empty, database_owner(server));
      co_await db::databases::restrict_connect(*ddl, name, server.runtime.user, false);
      spdlog::info("created tenant template database {} on server {}", name, server.name);
    }
    co_await db::databases::open_template(*ddl, name);
    const int version = co_await migrate_database(server, name);
    co_await db::databases::close_template(*ddl, name);
    co_await db::databases::record_template_version(conn, server.name, name, version);
    co_await lock.release();
    std::lock_guard guard(template_mutex_);
    template_versions_[server.name] = version;
    co_return version;
  }
}

boost::asio::awaitable<result<tenant_record>> provisioner::create(const std::string& id, const std::string& name,
                                                                  ready_step on_ready,
                                                                  std::optional<std::string> requested) {
  const auto database = database_name(id);
  // Templates behind the latest migration are brought up first, each on a master connection of
  // its own, before this creation holds one: main's (as before servers existed) and the named
  // server's. A server placement picks whose template is behind is prepared on the lock
  // connection below (a creation never waits for a second master connection while holding one).
  if (settings_.use_template) {
    if (template_version(main_.name) < latest_version()) co_await prepare_template();
    if (servers_ != nullptr && requested && *requested != main_.name &&
        template_version(*requested) < latest_version()) {
      // (no co_await inside a conditional expression: GCC 12 destroys its temporaries twice)
      const auto named = co_await servers_->lookup(*requested);
      if (named) co_await prepare_template(*named);
    }
  }

  // The lock connection holds the tenant's provisioning lock for the whole creation.
  auto lock_conn = co_await master_->acquire();
  auto lock = co_await db::advisory_lock::acquire(*lock_conn, provisioning_lock_key(id));

  // The row and its server, chosen in one master transaction (no two creators overfill one).
  auto placed = co_await db::servers::insert_placed_tenant(*lock_conn, id, name, database, requested);
  if (!placed) co_return std::move(placed).err();

  std::exception_ptr failure;
  std::optional<error> refused;
  bool database_checked = false;  // past the check that no database of this name exists
  bool database_created = false;
  bool database_foreign = false;  // CREATE DATABASE found one already there: never ours to drop
  std::optional<server_connection> target;
  ddl_session ddl;
  try {
    target = co_await server(*placed);
    if (settings_.use_template && template_version(target->name) < latest_version())
      co_await prepare_template(*target, *lock_conn);
    // On main, the DDL runs on the lock connection (one master connection per creation, as
    // before servers existed); elsewhere on a connection to that server.
    if (target->maintenance_database.empty())
      ddl = ddl_session(*lock_conn);
    else
      ddl = co_await open_ddl_session(*target);
    if (co_await db::master::database_exists(*ddl, database)) {
      // A database with this name exists without a tenant row: never hand it to a new owner.
      spdlog::warn("tenant {}: database {} exists on server {} without a tenant; refusing to reuse it", id, database,
                   target->name);
      refused = make_error(errc::tenant_exists, "a tenant with this id already exists");
    } else {
      database_checked = true;
      fault("after_row");
      const int template_version = co_await create_database(*target, *lock_conn, *ddl, database);
      database_created = true;
      const int version = settings_.use_template ? template_version : co_await migrate_database(*target, database);
      co_await db::master::set_tenant_schema_version(*lock_conn, id, version, std::nullopt);
      auto tenant = tenant_record{id, name, tenant_status::provisioning, "invite", database, *placed, version, {}, {}};
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
    if (target && (database_created || (failure && database_checked && !database_foreign))) {
      if (target->maintenance_database.empty())
        co_await drop_database(conn, database);
      else
        co_await drop_database(*target, database);
    }
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
  std::optional<tenant_record> tenant;
  {
    auto conn = co_await master_->acquire();
    tenant = co_await db::master::find_tenant(*conn, id);
  }
  server_connection where = main_;
  if (tenant) where = co_await server_of(*tenant);
  co_await drop_database(where, database_name(id));
  auto conn = co_await master_->acquire();
  co_await db::master::delete_tenant_row(*conn, id);
}

}  // namespace tenantd::tenancy
