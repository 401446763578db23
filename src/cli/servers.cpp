// The servers subcommands: each runs one coroutine on a small io_context with a master pool,
// the servers directory, the provisioner (for a new server's template) and the catalog.
#include "cli/servers.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <iomanip>
#include <iostream>

#include "app/master_database.hpp"
#include "app/tenant_settings.hpp"
#include "db/master_migrations.hpp"
#include "db/pool.hpp"
#include "tenancy/provisioner.hpp"
#include "tenancy/server_catalog.hpp"
#include "tenancy/server_directory.hpp"

namespace tenantd::cli {
namespace net = boost::asio;

namespace {

int refused(const std::string& action, const error& e) {
  std::cerr << "tenantd servers " << action << ": " << to_string(e.code) << ": " << e.detail << "\n";
  return 1;
}

void print_server(const server_record& s) {
  std::cout << std::left << std::setw(22) << s.name << std::setw(24) << s.host << std::setw(7) << s.port
            << std::setw(10) << to_string(s.state) << std::setw(9) << s.tenants << std::setw(8) << s.weight
            << (s.max_tenants ? std::to_string(*s.max_tenants) : "-") << "\n";
}

void print_header() {
  std::cout << std::left << std::setw(22) << "NAME" << std::setw(24) << "HOST" << std::setw(7) << "PORT"
            << std::setw(10) << "STATE" << std::setw(9) << "TENANTS" << std::setw(8) << "WEIGHT"
            << "MAX\n";
}

// "none" (no limit) or a count; nullopt inside for "none"; an error message otherwise.
result<std::optional<std::int64_t>> parse_max(const std::string& text) {
  if (text == "none") return std::optional<std::int64_t>{};
  try {
    std::size_t used = 0;
    const auto n = std::stoll(text, &used);
    if (used == text.size() && n >= 0) return std::optional<std::int64_t>{n};
  } catch (const std::exception&) {
  }
  return make_error(errc::invalid_input, "--max-tenants: a count (0 or more) or none");
}

net::awaitable<int> run_action(std::shared_ptr<db::pool> master, tenancy::server_catalog& catalog,
                               const tenancy::server_connection& main, const servers_command& c) {
  {
    // Master up to date first (as serve and migrate do), so the commands work on a fresh installation.
    auto conn = co_await master->acquire();
    co_await db::migrate_master(*conn);
    co_await tenancy::record_main_server(*conn, main);
  }
  if (c.action == "list") {
    const auto servers = co_await catalog.list();
    print_header();
    for (const auto& s : servers) print_server(s);
    std::cout << servers.size() << " server(s)\n";
    co_return 0;
  }
  std::optional<std::optional<std::int64_t>> max;
  if (c.max_tenants) {
    auto parsed = parse_max(*c.max_tenants);
    if (!parsed) co_return refused(c.action, parsed.err());
    max = *parsed;
  }
  if (c.action == "add") {
    tenancy::server_request request{c.name, c.url, c.weight, max ? *max : std::nullopt};
    auto added = co_await catalog.add(request);
    if (!added) co_return refused(c.action, added.err());
    std::cout << "added database server " << added->name << " (" << added->host << ":" << added->port
              << "); its tenant template is ready\n";
    co_return 0;
  }
  if (c.action == "set") {
    db::servers::server_changes changes;
    if (c.state) {
      changes.state = parse_server_state(*c.state);
      if (!changes.state)
        co_return refused(c.action, make_error(errc::invalid_input, "--state: active, draining or disabled"));
    }
    changes.weight = c.weight;
    changes.max_tenants = max;
    auto updated = co_await catalog.update(c.name, changes);
    if (!updated) co_return refused(c.action, updated.err());
    print_header();
    print_server(*updated);
    co_return 0;
  }
  if (c.action == "remove") {
    auto removed = co_await catalog.remove(c.name);
    if (!removed) co_return refused(c.action, removed.err());
    std::cout << "removed database server " << c.name << "\n";
    co_return 0;
  }
  std::cerr << "tenantd servers: unknown action " << c.action << "\n";
  co_return 2;
}

}  // namespace

CLI::App* add_servers_command(CLI::App& app, servers_command& c) {
  auto* servers = app.add_subcommand("servers", "Database servers tenants are placed on: list, add, set, remove");
  servers->require_subcommand(1);
  const auto action = [&c](CLI::App* sub) { sub->callback([&c, sub] { c.action = sub->get_name(); }); };
  action(servers->add_subcommand("list", "List the servers with their tenant counts"));
  auto* add = servers->add_subcommand(
      "add",
      "Add a server: checked by connecting, its tenant template prepared (user and password of the URL "
      "default to DB_USERNAME/DB_PASSWORD)");
  add->add_option("name", c.name, "Server name: a lower-case letter, then [a-z0-9_-], at most 40")->required();
  add->add_option("url", c.url, "postgresql://[user[:password]@]host[:port][/database][?sslmode=…&sslrootcert=…]")
      ->required();
  add->add_option("--weight", c.weight, "Placement weight (default 1): tenants ÷ weight, lowest first");
  add->add_option("--max-tenants", c.max_tenants, "Most tenants it takes (default: no limit)");
  action(add);
  auto* set = servers->add_subcommand("set", "Change a server's state, weight or tenant limit");
  set->add_option("name", c.name, "Server name")->required();
  set->add_option("--state", c.state, "active (takes new tenants), draining or disabled");
  set->add_option("--weight", c.weight, "Placement weight");
  set->add_option("--max-tenants", c.max_tenants, "Most tenants it takes, or none");
  action(set);
  auto* remove = servers->add_subcommand("remove", "Remove a server that holds no tenant");
  remove->add_option("name", c.name, "Server name")->required();
  action(remove);
  return servers;
}

int run_servers(const app::config& cfg, const servers_command& command) {
  std::vector<db::migration> migrations;
  try {
    migrations = app::tenant_migrations(cfg);
  } catch (const std::exception& e) {
    std::cerr << "tenantd: configuration error: TENANT_MIGRATIONS_DIR: " << e.what() << "\n";
    return 2;
  }
  net::io_context io;
  // As MIGRATION_DATABASE_URL's role when set.
  auto master = db::pool::create(io.get_executor(), app::command_ddl_pool_options(cfg));
  tenancy::server_directory directory(master, app::main_server(cfg), app::server_defaults(cfg));
  tenancy::provisioner provisioner(master, app::provisioning(cfg), std::move(migrations), &directory);
  // The catalog NOTIFYs every server process itself; nothing else to tell in this one.
  tenancy::server_catalog catalog(master, provisioner, directory, [](const invalidation&) {});
  auto done = net::co_spawn(io, run_action(master, catalog, directory.main(), command), net::use_future);
  io.run();
  try {
    return done.get();
  } catch (const std::exception& e) {
    std::cerr << "tenantd servers " << command.action << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tenantd::cli
