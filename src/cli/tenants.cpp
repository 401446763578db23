// The tenants subcommands: each runs one coroutine on a small io_context with a master pool,
// the provisioner and the lifecycle service (no tenant pools, no HTTP).
#include "cli/tenants.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

#include <chrono>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "app/master_database.hpp"
#include "app/tenant_settings.hpp"
#include "db/invitation_repository.hpp"
#include "db/master_migrations.hpp"
#include "db/pool.hpp"
#include "domain/validation.hpp"
#include "identity/accounts.hpp"
#include "tenancy/backup.hpp"
#include "tenancy/lifecycle.hpp"
#include "tenancy/mover.hpp"
#include "tenancy/provisioner.hpp"
#include "tenancy/server_catalog.hpp"
#include "tenancy/server_directory.hpp"

namespace tenantd::cli {
namespace net = boost::asio;

namespace {

struct services {
  std::shared_ptr<db::pool> master;
  tenancy::provisioner& provisioner;
  tenancy::lifecycle& lifecycle;
  tenancy::mover& mover;
  std::int64_t claim_ttl_seconds{0};  // INVITATION_TTL_HOURS
};

void print_move(const move_record& m) {
  std::cout << std::left << std::setw(38) << m.id << std::setw(22) << m.tenant_id << std::setw(12) << m.from
            << std::setw(12) << m.to << std::setw(13) << to_string(m.state) << m.started_at;
  if (m.freeze_ms) std::cout << "  freeze " << std::fixed << std::setprecision(1) << *m.freeze_ms << " ms";
  if (m.error) std::cout << "  (" << *m.error << ")";
  std::cout << "\n";
}

void print_leftovers(const char* title, const std::vector<tenancy::move_leftover>& items) {
  std::cout << title << ": " << (items.empty() ? "none" : std::to_string(items.size())) << "\n";
  for (const auto& l : items)
    std::cout << "  " << l.server << ": " << l.kind << " " << l.name << (l.database.empty() ? "" : " in ") << l.database
              << "\n";
}

// Prints a refused operation; exit code 1.
int refused(const std::string& action, const error& e) {
  std::cerr << "tenantd tenants " << action << ": " << to_string(e.code) << ": " << e.detail << "\n";
  return 1;
}

// `tenants move`: starts the move and drives it here, printing each step as it happens.
net::awaitable<int> move_tenant(services& s, const tenants_command& c) {
  auto started = co_await s.mover.start(c.id, c.server, c.keep_source);
  if (!started) co_return refused(c.action, started.err());
  const auto t0 = std::chrono::steady_clock::now();
  std::cout << "move " << started->id << ": tenant " << c.id << " from " << started->from << " to " << started->to
            << "\n"
            << std::flush;
  const auto show = [t0](const move_record& m, std::string_view note) {
    const auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::cout << "[" << std::fixed << std::setprecision(1) << std::setw(6) << secs << " s] " << std::setw(12)
              << to_string(m.state) << " " << note << "\n"
              << std::flush;
  };
  const auto finished = co_await s.mover.run(std::move(*started), show);
  if (finished.state == move_state::done) {
    std::cout << "tenant " << c.id << " is on " << finished.to << "; writes were held " << std::setprecision(1)
              << finished.freeze_ms.value_or(0) << " ms (" << finished.attempts << " cut-over(s))\n";
    co_return 0;
  }
  std::cerr << "tenantd tenants move: the move did not finish: " << finished.error.value_or("unknown") << "\n";
  co_return 1;
}

void print_tenant(const tenant_record& t) {
  std::cout << "id:             " << t.id << "\n"
            << "name:           " << t.name << "\n"
            << "status:         " << t.status << "\n"
            << "registration:   " << t.registration << "\n"
            << "database:       " << t.database_name << "\n"
            << "server:         " << t.db_server.value_or("main") << "\n"
            << "schema version: " << t.schema_version << "\n"
            << "created at:     " << t.created_at << "\n"
            << "updated at:     " << t.updated_at << "\n";
}

void print_list(const char* title, const std::vector<std::string>& items) {
  std::cout << title << ": " << (items.empty() ? "none" : std::to_string(items.size())) << "\n";
  for (const auto& item : items) std::cout << "  " << item << "\n";
}

net::awaitable<int> run_action(services& s, const tenants_command& c) {
  {
    // Master up to date first (as serve and migrate do), so the commands work on a fresh installation.
    auto conn = co_await s.master->acquire();
    co_await db::migrate_master(*conn);
    co_await tenancy::record_main_server(*conn, s.provisioner.main_server());
  }
  if (c.action == "list") {
    const auto status = parse_tenant_status(c.status);  // a status that does not exist matches no tenant
    std::vector<tenant_record> tenants;
    if (c.status.empty() || status) tenants = co_await s.lifecycle.list(status);
    std::cout << std::left << std::setw(42) << "ID" << std::setw(12) << "STATUS" << std::setw(8) << "SCHEMA"
              << "NAME\n";
    for (const auto& t : tenants)
      std::cout << std::setw(42) << t.id << std::setw(12) << t.status << std::setw(8) << t.schema_version << t.name
                << "\n";
    std::cout << tenants.size() << " tenant(s)\n";
    co_return 0;
  }
  if (c.action == "show") {
    auto t = co_await s.lifecycle.find(c.id);
    if (!t) co_return refused(c.action, make_error(errc::not_found, "no tenant " + c.id));
    print_tenant(*t);
    co_return 0;
  }
  if (c.action == "create") {
    if (auto problem = validation::check_tenant_id(c.id))
      co_return refused(c.action, make_error(errc::invalid_input, "id: " + *problem));
    // The tenant has no members: its first owner registers with the claim token.
    std::string claim_token;
    const tenancy::provisioner::ready_step issue_claim = [&](const tenant_record& tenant) -> net::awaitable<status> {
      claim_token = identity::new_opaque_token();
      auto conn = co_await s.master->acquire();
      co_await db::invitations::set_claim(*conn, tenant.id, identity::sha256_hex(claim_token), s.claim_ttl_seconds);
      co_return ok();
    };
    const auto server = c.server.empty() ? std::nullopt : std::optional(c.server);
    auto created = co_await s.provisioner.create(c.id, c.name, issue_claim, server);
    if (!created) co_return refused(c.action, created.err());
    std::cout << "created tenant " << created->id << " (database " << created->database_name << " on server "
              << created->db_server.value_or("main") << ", schema version " << created->schema_version << ")\n"
              << "claim token: " << claim_token << "\n"
              << "(single use, valid " << s.claim_ttl_seconds / 3600
              << " hours: POST /auth/register with \"claim_token\" makes the tenant's first owner)\n";
    co_return 0;
  }
  if (c.action == "suspend" || c.action == "resume" || c.action == "delete") {
    result<tenant_record> changed = make_error(errc::internal);
    if (c.action == "suspend")
      changed = co_await s.lifecycle.suspend(c.id, c.reason);
    else if (c.action == "resume")
      changed = co_await s.lifecycle.resume(c.id);
    else
      changed = co_await s.lifecycle.remove(c.id);
    if (!changed) co_return refused(c.action, changed.err());
    std::cout << "tenant " << changed->id << ": " << changed->status << "\n";
    co_return 0;
  }
  if (c.action == "backup") {
    auto made = co_await tenancy::backup_tenant(s.master, s.provisioner, c.id, c.out);
    if (!made) co_return refused(c.action, made.err());
    std::cout << "tenant " << c.id << ": backup written to " << made->path << " (" << made->bytes << " bytes, "
              << made->members << " members, " << made->invitations << " pending invitations)\n";
    co_return 0;
  }
  if (c.action == "restore") {
    const auto as = c.as.empty() ? std::nullopt : std::optional(c.as);
    const auto server = c.server.empty() ? std::nullopt : std::optional(c.server);
    auto restored = co_await tenancy::restore_tenant(s.master, s.provisioner, c.file, as, server);
    if (!restored) co_return refused(c.action, restored.err());
    std::cout << "tenant " << restored->tenant.id << ": restored (schema version " << restored->tenant.schema_version
              << ", " << restored->members << " members, " << restored->invitations << " pending invitations)\n";
    for (const auto& email : restored->skipped_members)
      std::cout << "  skipped member " << email << ": the email belongs to another account\n";
    co_return 0;
  }
  if (c.action == "move") co_return co_await move_tenant(s, c);
  if (c.action == "moves") {
    const auto moves = co_await s.mover.list();
    std::cout << std::left << std::setw(38) << "ID" << std::setw(22) << "TENANT" << std::setw(12) << "FROM"
              << std::setw(12) << "TO" << std::setw(13) << "STATE"
              << "STARTED\n";
    for (const auto& m : moves) print_move(m);
    std::cout << moves.size() << " move(s)\n";
    co_return 0;
  }
  if (c.action == "reconcile") {
    auto report = co_await s.lifecycle.reconcile();
    print_list("rolled back", report.rolled_back);
    print_list("deletions finished", report.deleted);
    print_list("in progress (left alone)", report.in_progress);
    if (s.mover.available()) {
      const auto moves = co_await s.mover.resume_stale();
      std::vector<std::string> ended;
      ended.reserve(moves.size());
      for (const auto& m : moves)
        ended.push_back(m.id + " (tenant " + m.tenant_id + "): " + std::string(to_string(m.state)));
      print_list("moves of stopped processes taken over", ended);
      const auto dropped = co_await s.mover.drop_leftovers();
      print_leftovers("move leftovers dropped", dropped);
    } else {
      std::cout << "moves: not looked at (MOVE_DATABASE_USERNAME is not set)\n";
    }
    co_return 0;
  }
  if (c.action == "check") {
    auto report = co_await s.lifecycle.check();
    print_list("orphan databases", report.orphan_databases);
    print_list("missing databases", report.missing_databases);
    print_list("unfinished tenants", report.unfinished);
    print_list("servers not inspected (unreachable)", report.unreachable_servers);
    print_list("databases of moves (old sources until dropped, targets being copied)", report.move_databases);
    std::vector<tenancy::move_leftover> leftovers;
    if (s.mover.available()) {
      leftovers = co_await s.mover.leftovers();
      print_leftovers("move leftovers (replication objects of no move in progress)", leftovers);
    } else {
      std::cout << "move leftovers: not looked for (MOVE_DATABASE_USERNAME is not set)\n";
    }
    const bool clean = report.clean() && leftovers.empty();
    std::cout << (clean ? "clean\n"
                        : "NOT clean (tenantd tenants reconcile finishes or rolls back "
                          "unfinished tenants and moves and drops move leftovers)\n");
    co_return clean ? 0 : 1;
  }
  std::cerr << "tenantd tenants: unknown action " << c.action << "\n";
  co_return 2;
}

}  // namespace

CLI::App* add_tenants_command(CLI::App& app, tenants_command& c) {
  auto* tenants = app.add_subcommand("tenants", "Tenant lifecycle: list, create, suspend, back up, restore...");
  tenants->require_subcommand(1);
  const auto action = [&c](CLI::App* sub) { sub->callback([&c, sub] { c.action = sub->get_name(); }); };
  auto* list = tenants->add_subcommand("list", "List tenants");
  list->add_option("--status", c.status, "Only tenants in this status");
  action(list);
  auto* show = tenants->add_subcommand("show", "Show one tenant");
  show->add_option("id", c.id, "Tenant id")->required();
  action(show);
  auto* create = tenants->add_subcommand("create", "Create a tenant (no owner)");
  create->add_option("id", c.id, "Tenant id")->required();
  create->add_option("name", c.name, "Display name")->required();
  create->add_option("--server", c.server, "Database server to place it on (default: the least loaded)");
  action(create);
  auto* suspend = tenants->add_subcommand("suspend", "Suspend a tenant (logins and requests get 403)");
  suspend->add_option("id", c.id, "Tenant id")->required();
  suspend->add_option("--reason", c.reason, "Recorded with the status");
  action(suspend);
  auto* resume = tenants->add_subcommand("resume", "Resume a suspended tenant");
  resume->add_option("id", c.id, "Tenant id")->required();
  action(resume);
  auto* remove = tenants->add_subcommand("delete", "Drop a tenant's database and mark it deleted");
  remove->add_option("id", c.id, "Tenant id")->required();
  action(remove);
  auto* backup = tenants->add_subcommand("backup", "Write a backup of one tenant (database + master rows)");
  backup->add_option("id", c.id, "Tenant id")->required();
  backup->add_option("--out", c.out, "Backup file to write")->required();
  action(backup);
  auto* restore = tenants->add_subcommand("restore", "Restore a tenant from a backup file");
  restore->add_option("file", c.file, "Backup file")->required();
  restore->add_option("--as", c.as, "Restore under this tenant id instead of the original one");
  restore->add_option("--server", c.server, "Database server to restore it on (default: the least loaded)");
  action(restore);
  auto* move = tenants->add_subcommand("move", "Move a tenant's database to another database server, online");
  move->add_option("id", c.id, "Tenant id")->required();
  move->add_option("--to", c.server, "The database server to move it to")->required();
  move->add_flag("--keep-source", c.keep_source, "Keep the old database (else dropped after MOVE_SOURCE_GRACE_S)");
  action(move);
  action(tenants->add_subcommand("moves", "List tenant moves, newest first"));
  action(tenants->add_subcommand("reconcile",
                                 "Finish or roll back half-done creations, deletions and moves; drop move leftovers"));
  action(tenants->add_subcommand("check", "Compare master with pg_database; exit 1 unless clean"));
  return tenants;
}

int run_tenants(const app::config& cfg, const tenants_command& command) {
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
  tenancy::server_directory servers(master, app::main_server(cfg), app::server_defaults(cfg));
  tenancy::provisioner provisioner(master, app::provisioning(cfg), std::move(migrations), &servers);
  // The lifecycle NOTIFYs every server process itself; nothing else to tell in this one.
  tenancy::lifecycle lifecycle(master, provisioner, nullptr, [](const invalidation&) {});
  tenancy::mover mover(io.get_executor(), master, provisioner, app::move_settings(cfg), {});
  services s{master, provisioner, lifecycle, mover, cfg.invitation_ttl_hours * 3600};
  auto done = net::co_spawn(io, run_action(s, command), net::use_future);
  io.run();
  try {
    return done.get();
  } catch (const std::exception& e) {
    std::cerr << "tenantd tenants " << command.action << ": " << e.what() << "\n";
    return 1;
  }
}

}  // namespace tenantd::cli
