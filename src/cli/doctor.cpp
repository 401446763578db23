// Installation checks for operators. Read-only: nothing is created, migrated or dropped.
#include "cli/doctor.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_future.hpp>
#include <sys/stat.h>

#include <cstdio>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "app/master_database.hpp"
#include "app/tenant_settings.hpp"
#include "db/connection.hpp"
#include "db/embedded_migrations.hpp"
#include "db/inspection.hpp"
#include "db/master_repository.hpp"
#include "db/migrator.hpp"

namespace tenantd::cli {
namespace net = boost::asio;
namespace {

enum class verdict { ok, warn, fail };

class report {
 public:
  explicit report(std::ostream& out) : out_(out) {}
  void add(verdict v, std::string_view check, std::string_view found, std::string_view fix = {}) {
    if (v == verdict::fail) failed_ = true;
    out_ << (v == verdict::ok ? "ok  " : v == verdict::warn ? "warn" : "FAIL") << "  " << check << ": " << found;
    if (!fix.empty()) out_ << " -- fix: " << fix;
    out_ << std::endl;
  }
  bool failed() const noexcept { return failed_; }

 private:
  std::ostream& out_;
  bool failed_{false};
};

std::string join(const std::vector<std::string>& names, std::size_t limit = 10) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > limit) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

net::awaitable<void> check_master_migrations(db::connection& conn, report& r) {
  const auto embedded = db::parse_migrations(db::embedded_master_migrations());
  const auto applied = co_await db::inspection::applied_migrations(conn);
  const int latest = embedded.empty() ? 0 : embedded.back().version;
  const int current = applied.empty() ? 0 : applied.back().version;
  std::vector<std::string> changed;
  for (const auto& a : applied) {
    auto it =
        std::find_if(embedded.begin(), embedded.end(), [&](const db::migration& m) { return m.version == a.version; });
    if (it != embedded.end() && it->checksum != a.checksum) changed.push_back("V" + std::to_string(a.version));
  }
  if (!changed.empty())
    r.add(verdict::fail, "master migrations", "applied migrations changed since they ran: " + join(changed),
          "restore the original SQL of those files; never edit an applied migration, add a new one");
  else if (current > latest)
    r.add(
        verdict::fail, "master migrations",
        "database at version " + std::to_string(current) + ", newer than this binary (" + std::to_string(latest) + ")",
        "run the newer tenantd binary that migrated it");
  else if (current < latest)
    r.add(verdict::warn, "master migrations", "at version " + std::to_string(current) + " of " + std::to_string(latest),
          "start `tenantd serve` or run `tenantd migrate` to apply the pending ones");
  else
    r.add(verdict::ok, "master migrations", "at version " + std::to_string(current) + " (latest)");
}

net::awaitable<void> check_tenants(db::connection& conn, const app::config& cfg, report& r) {
  const auto tenant_migrations = app::tenant_migrations(cfg);
  const int latest = tenant_migrations.empty() ? 0 : tenant_migrations.back().version;
  const auto tenants = co_await db::master::list_tenants(conn, std::nullopt);
  const auto names = co_await db::inspection::databases_with_prefix(conn, cfg.tenant_db_prefix);
  const std::set<std::string> databases(names.begin(), names.end());
  const std::string template_name = cfg.tenant_db_prefix + "template";

  // Template health.
  if (!cfg.tenant_provisioning_template) {
    r.add(verdict::ok, "tenant template", "not used (TENANT_PROVISIONING=migrations)");
  } else if (!databases.contains(template_name)) {
    r.add(verdict::warn, "tenant template", template_name + " does not exist yet",
          "start `tenantd serve` once; it creates and migrates the template");
  } else {
    // The template refuses connections (datallowconn = false); serve keeps it migrated at start-up.
    r.add(verdict::ok, "tenant template", template_name + " exists");
  }

  std::vector<std::string> behind;
  std::vector<std::string> missing;
  std::set<std::string> owned;
  std::size_t elsewhere = 0;  // live tenants on other database servers: `tenantd tenants check` looks there
  for (const auto& t : tenants) {
    const bool on_main = t.db_server.value_or("main") == "main";
    const bool live = is_live(t.status);
    if (on_main) owned.insert(t.database_name);
    if (live && !on_main) ++elsewhere;
    if (live && t.schema_version < latest) behind.push_back(t.id + " (v" + std::to_string(t.schema_version) + ")");
    if (live && on_main && !databases.contains(t.database_name)) missing.push_back(t.id + " -> " + t.database_name);
  }
  if (elsewhere > 0)
    r.add(verdict::ok, "other database servers",
          std::to_string(elsewhere) +
              " active or suspended tenants live on servers other than main (`tenantd tenants check` inspects "
              "every server)");
  if (behind.empty())
    r.add(verdict::ok, "tenant schemas",
          std::to_string(tenants.size()) + " tenants, none behind version " + std::to_string(latest));
  else
    r.add(verdict::warn, "tenant schemas",
          std::to_string(behind.size()) + " tenants behind version " + std::to_string(latest) + ": " + join(behind),
          "run `tenantd migrate`");

  std::vector<std::string> orphans;
  for (const auto& name : names)
    if (name != template_name && !owned.contains(name)) orphans.push_back(name);
  if (orphans.empty())
    r.add(verdict::ok, "orphan databases", "none with prefix '" + cfg.tenant_db_prefix + "'");
  else
    r.add(verdict::fail, "orphan databases",
          std::to_string(orphans.size()) + " databases with prefix '" + cfg.tenant_db_prefix +
              "' belong to no tenant: " + join(orphans),
          "back them up if needed, then DROP DATABASE each (tenant creation refuses these names meanwhile)");

  if (missing.empty())
    r.add(verdict::ok, "tenant databases", "every active or suspended tenant has its database");
  else
    r.add(verdict::fail, "tenant databases",
          std::to_string(missing.size()) + " tenants have no database: " + join(missing),
          "restore the database from a backup, or delete the tenant");
}

// With MIGRATION_DATABASE_URL: the runtime role needs no CREATEDB (better without), the DDL
// role needs it.
net::awaitable<void> check_ddl_role(const app::config& cfg, const db::inspection::role_privileges& runtime, report& r) {
  if (runtime.create_db || runtime.superuser)
    r.add(verdict::warn, "role privileges",
          "runtime role " + runtime.name + " has CREATEDB or SUPERUSER although MIGRATION_DATABASE_URL runs DDL",
          "ALTER ROLE " + runtime.name + " NOCREATEDB NOSUPERUSER (as a superuser)");
  else
    r.add(verdict::ok, "role privileges",
          "runtime role " + runtime.name + " has no CREATEDB (DDL runs as " + cfg.migration->user + ")");
  db::connection_options options;
  options.conninfo = app::migration_conninfo(cfg, cfg.statement_timeout);
  options.connect_timeout = std::chrono::seconds(5);
  options.query_timeout = cfg.statement_timeout + std::chrono::seconds(1);
  std::optional<db::inspection::role_privileges> ddl;
  std::string failure;
  try {
    auto conn = co_await db::connection::connect(co_await net::this_coro::executor, options);
    ddl = co_await db::inspection::current_role_privileges(*conn);
  } catch (const std::exception& e) {
    failure = e.what();
    std::replace(failure.begin(), failure.end(), '\n', ' ');
  }
  if (!ddl)
    r.add(verdict::fail, "ddl role", "cannot connect as " + cfg.migration->user + ": " + failure,
          "check MIGRATION_DATABASE_URL's host, port, user and password");
  else if (!ddl->create_db)
    r.add(verdict::fail, "ddl role", "role " + ddl->name + " lacks CREATEDB, so tenants cannot be created",
          "ALTER ROLE " + ddl->name + " CREATEDB (as a superuser)");
  else
    r.add(verdict::ok, "ddl role", "role " + ddl->name + " has CREATEDB");
}

net::awaitable<void> check_database(const app::config& cfg, report& r) {
  auto executor = co_await net::this_coro::executor;
  db::connection_options options;
  options.conninfo = app::master_conninfo(cfg);
  options.connect_timeout = std::chrono::seconds(5);
  options.query_timeout = cfg.statement_timeout + std::chrono::seconds(1);
  std::unique_ptr<db::connection> conn;
  try {
    conn = co_await db::connection::connect(executor, options);
  } catch (const std::exception& e) {
    std::string reason = e.what();
    std::replace(reason.begin(), reason.end(), '\n', ' ');
    r.add(verdict::fail, "postgresql",
          "cannot connect to " + cfg.master.host + ":" + cfg.master.port + "/" + cfg.master_database_name + " as " +
              cfg.master.user + ": " + reason,
          "check that PostgreSQL runs (pg_isready -h " + cfg.master.host + " -p " + cfg.master.port +
              "), that the database exists and that MASTER_DATABASE_URL's host, port, user and password are right");
    co_return;
  }
  r.add(verdict::ok, "postgresql",
        "connected to " + cfg.master.host + ":" + cfg.master.port + "/" + cfg.master_database_name + " (server " +
            std::to_string(conn->server_version() / 10000) + ")");

  const auto role = co_await db::inspection::current_role_privileges(*conn);
  if (cfg.migration) {
    co_await check_ddl_role(cfg, role, r);
  } else if (!role.create_db)
    r.add(verdict::fail, "role privileges", "role " + role.name + " lacks CREATEDB, so tenants cannot be created",
          "ALTER ROLE " + role.name + " CREATEDB (as a superuser)");
  else if (role.superuser)
    r.add(verdict::warn, "role privileges", "role " + role.name + " is a superuser",
          "run tenantd as a role with CREATEDB and without SUPERUSER (ALTER ROLE " + role.name + " NOSUPERUSER)");
  else
    r.add(verdict::ok, "role privileges", "role " + role.name + " has CREATEDB and is not a superuser");

  co_await check_master_migrations(*conn, r);
  bool has_tenants_table = false;
  {
    auto exists = co_await conn->exec("SELECT to_regclass('tenants') IS NOT NULL");
    has_tenants_table = exists.rows() == 1 && exists.boolean(0, 0);
  }
  if (!has_tenants_table) {
    r.add(verdict::warn, "tenants", "the master database has no tenants table yet",
          "start `tenantd serve` once to apply the master migrations");
    co_return;
  }
  co_await check_tenants(*conn, cfg, r);
}

// .env holds JWT_SECRET, ADMIN_TOKEN and database passwords: only its owner may read it.
void check_dotenv_mode(const std::string& path, report& r) {
  struct ::stat info {};
  if (::stat(path.c_str(), &info) != 0) return;  // no .env: the environment is the configuration
  const auto mode = static_cast<unsigned>(info.st_mode) & 0777U;
  char octal[8];
  std::snprintf(octal, sizeof octal, "%04o", mode);
  if ((mode & 077U) != 0)
    r.add(verdict::warn, ".env",
          std::string(".env is readable or writable by group or others (mode ") + octal +
              "); it holds JWT_SECRET, ADMIN_TOKEN and database passwords",
          "chmod 600 .env");
  else
    r.add(verdict::ok, ".env", std::string("only its owner may read it (mode ") + octal + ")");
}

}  // namespace

int run_doctor(const app::environment& env, std::ostream& out) {
  report r(out);
  check_dotenv_mode(".env", r);
  app::config cfg;
  try {
    cfg = app::load_config(env);
  } catch (const app::config_error& e) {
    r.add(verdict::fail, "configuration", e.what(), "set that variable in the environment or .env (see .env.example)");
    return 1;
  }
  r.add(verdict::ok, "configuration",
        "loaded (master database " + cfg.master_database_name + ", tenant prefix '" + cfg.tenant_db_prefix + "')");
  net::io_context io;
  auto done = net::co_spawn(io, check_database(cfg, r), net::use_future);
  io.run();
  try {
    done.get();
  } catch (const std::exception& e) {
    r.add(verdict::fail, "checks", std::string("stopped by an error: ") + e.what(),
          "fix the problem above and run `tenantd doctor` again");
  }
  return r.failed() ? 1 : 0;
}

}  // namespace tenantd::cli
