// The mover's fleet side: starting a move (what is checked before anything is made), listing
// moves, taking over moves whose process died, dropping old copies past their grace period,
// aborting one (removing what it made), and finding and dropping what moves that ended badly
// left on the servers. The state
// machine of one move is in mover.cpp.
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>

#include <map>
#include <set>

#include "db/master_repository.hpp"
#include "db/move_repository.hpp"
#include "db/replication.hpp"
#include "db/server_repository.hpp"
#include "domain/server.hpp"
#include "domain/validation.hpp"
#include "tenancy/mover.hpp"

namespace tenantd::tenancy {

using namespace std::chrono_literals;

boost::asio::awaitable<std::optional<move_record>> mover::find(const std::string& id) {
  auto conn = co_await master_->acquire();
  co_return co_await db::moves::find(*conn, id);
}

boost::asio::awaitable<std::vector<move_record>> mover::list(int limit) {
  auto conn = co_await master_->acquire();
  co_return co_await db::moves::list(*conn, limit);
}

boost::asio::awaitable<result<move_record>> mover::start(const std::string& tenant_id, const std::string& to,
                                                         bool keep_source) {
  std::optional<tenant_record> tenant;
  std::optional<db::servers::stored_server> target_row;
  {
    auto conn = co_await master_->acquire();
    tenant = co_await db::master::find_tenant(*conn, tenant_id);
    target_row = co_await db::servers::find(*conn, to);
  }
  if (!tenant || tenant->status == tenant_status::deleted)
    co_return make_error(errc::tenant_not_found, "no such tenant");
  if (!target_row)
    co_return error{errc::invalid_input, "the request is invalid", {{"to", "no database server of that name"}}};
  const std::string from = tenant->db_server.value_or(std::string(main_server_name));
  if (from == to)
    co_return error{errc::invalid_input, "the request is invalid", {{"to", "the tenant is on this server already"}}};
  if (!available())
    co_return make_error(errc::move_unavailable,
                         "moves are not configured: set MOVE_DATABASE_USERNAME and "
                         "MOVE_DATABASE_PASSWORD (a superuser role on every database server)");
  if (tenant->status != tenant_status::active && tenant->status != tenant_status::suspended)
    co_return make_error(errc::move_unavailable, "only an active or suspended tenant can be moved (this one is " +
                                                     std::string(to_string(tenant->status)) + ")");
  if (tenant->schema_version != provisioning_.latest_version())
    co_return make_error(errc::move_unavailable,
                         "the tenant's schema is at version " + std::to_string(tenant->schema_version) +
                             " and this tenantd's at " + std::to_string(provisioning_.latest_version()) +
                             ": run tenantd migrate first");
  const auto source = co_await provisioning_.server(from);
  const auto target = co_await provisioning_.server(to);
  if (source.runtime.host == target.runtime.host && source.runtime.port == target.runtime.port)
    co_return make_error(errc::move_unavailable, "servers " + from + " and " + to + " are the same PostgreSQL server");
  if (settings_.user == source.runtime.user || settings_.user == target.runtime.user)
    co_return make_error(
        errc::move_unavailable,
        "MOVE_DATABASE_USERNAME must be a role of its own, not the application's (" + settings_.user + ")");

  // The servers: reachable as the mover role, logical WAL on the source, primary keys.
  std::unique_ptr<db::connection> source_conn;
  std::unique_ptr<db::connection> target_conn;
  std::string problem;
  try {
    source_conn = co_await connect(source, tenant->database_name);
  } catch (const db::unavailable_error&) {
    problem = "cannot connect to server " + from + " as MOVE_DATABASE_USERNAME (" + settings_.user +
              "): is the role there, a superuser, and its password right?";
  }
  if (problem.empty()) {
    try {
      target_conn = co_await connect(target, "postgres");
    } catch (const db::unavailable_error&) {
      problem = "cannot connect to server " + to + " as MOVE_DATABASE_USERNAME (" + settings_.user +
                "): is the role there, a superuser, and its password right?";
    }
  }
  if (!problem.empty()) co_return make_error(errc::move_unavailable, problem);
  const auto level = co_await db::replication::wal_level(*source_conn);
  if (level != "logical")
    co_return make_error(errc::move_unavailable,
                         "server " + from + " has wal_level=" + level +
                             "; moves need wal_level=logical (postgresql.conf, then a restart)");
  const auto no_key = co_await db::replication::tables_without_primary_key(*source_conn);
  if (!no_key.empty()) {
    std::string names;
    for (const auto& t : no_key) names += (names.empty() ? "" : ", ") + t;
    co_return make_error(errc::move_unavailable, "tables without a primary key cannot be replicated: " + names);
  }
  const bool target_has_database = co_await db::replication::database_exists(*target_conn, tenant->database_name);
  if (target_has_database) {
    // Left there by an earlier move of this tenant away from that server: its source, past
    // use (fenced) and due to be dropped. Anything else is not ours to drop.
    bool earlier_source = false;
    {
      auto conn = co_await master_->acquire();
      const auto moves = co_await db::moves::of_tenant(*conn, tenant_id);
      for (const auto& m : moves)
        if (m.from == to && m.state == move_state::done && !m.keep_source && !m.source_dropped_at)
          earlier_source = true;
    }
    if (!earlier_source)
      co_return make_error(errc::move_unavailable, "server " + to + " already holds a database named " +
                                                       tenant->database_name +
                                                       " (kept by an earlier move?): drop it first");
    // As the mover: sessions of other roles may linger there, which only a superuser may end.
    co_await db::replication::drop_database(*target_conn, tenant->database_name);
  }

  db::moves::new_move row;
  row.id = validation::new_uuid();
  row.tenant_id = tenant_id;
  row.from = from;
  row.to = to;
  row.database_name = tenant->database_name;
  row.keep_source = keep_source;
  row.owner = settings_.owner;
  std::optional<move_record> created;
  {
    auto conn = co_await master_->acquire();
    created = co_await db::moves::insert(*conn, row);
  }
  if (!created) co_return make_error(errc::move_in_progress, "the tenant is being moved already");
  spdlog::info("move {}: tenant {} from {} to {} started", created->id, tenant_id, from, to);
  co_return std::move(*created);
}

boost::asio::awaitable<std::vector<move_record>> mover::resume_stale(progress on_progress) {
  std::vector<move_record> claimed;
  {
    auto conn = co_await master_->acquire();
    claimed = co_await db::moves::claim_stale(*conn, settings_.owner, settings_.lease_seconds);
  }
  std::vector<move_record> out;
  for (auto& m : claimed) {
    spdlog::warn("move {}: taking over tenant {}'s move (state {}, {}flipped) from a process that stopped", m.id,
                 m.tenant_id, to_string(m.state), m.flipped ? "" : "not ");
    out.push_back(co_await run(std::move(m), on_progress));
  }
  co_return out;
}

boost::asio::awaitable<std::vector<std::string>> mover::drop_due_sources() {
  std::vector<move_record> due;
  {
    auto conn = co_await master_->acquire();
    due = co_await db::moves::sources_due(*conn);
  }
  std::vector<std::string> dropped;
  for (const auto& m : due) {
    std::optional<tenant_record> tenant;
    {
      auto conn = co_await master_->acquire();
      tenant = co_await db::master::find_tenant(*conn, m.tenant_id);
    }
    // Never the tenant's live database (moved back to that server meanwhile).
    const bool live = tenant && tenant->db_server == m.from && tenant->status != tenant_status::deleted;
    if (!live) {
      const auto server = co_await provisioning_.server(m.from);
      auto admin = co_await connect(server, "postgres");
      co_await db::replication::drop_database(*admin, m.database_name);
      dropped.push_back(m.from + "/" + m.database_name);
      spdlog::info("move {}: dropped the source database {} on {} after its grace period", m.id, m.database_name,
                   m.from);
    }
    auto conn = co_await master_->acquire();
    co_await db::moves::mark_source_dropped(*conn, m.id);
  }
  co_return dropped;
}

boost::asio::awaitable<std::vector<move_leftover>> mover::leftovers() {
  // Replication names of this installation's finished moves: a move is recorded before it
  // makes anything, so whatever carries the name of one that is over is left over. Objects of
  // no move of ours (another installation sharing the server) are not ours to report.
  std::set<std::string> over;
  // Target databases of aborted moves that a server away at the abort still holds, by server:
  // never one the tenant is placed on, nor the target of a move in progress.
  std::map<std::string, std::set<std::string>> abandoned_targets;
  // Where finished moves' publications may still be: their sources not dropped yet, by server.
  std::map<std::string, std::set<std::string>> old_sources;
  {
    auto conn = co_await master_->acquire();
    const auto moves = co_await db::moves::list(*conn, 100000);
    std::set<std::pair<std::string, std::string>> in_progress;  // (server, database)
    for (const auto& m : moves) {
      if (finished(m.state)) over.insert(db::replication::replication_name(m.id));
      if (finished(m.state) && !m.source_dropped_at) old_sources[m.from].insert(m.database_name);
      if (!finished(m.state)) in_progress.insert({m.to, m.database_name});
    }
    for (const auto& m : moves) {
      if (m.state != move_state::aborted || in_progress.contains({m.to, m.database_name})) continue;
      const auto tenant = co_await db::master::find_tenant(*conn, m.tenant_id);
      const bool live_there = tenant && tenant->status != tenant_status::deleted &&
                              tenant->db_server.value_or(std::string(main_server_name)) == m.to;
      if (!live_there) abandoned_targets[m.to].insert(m.database_name);
    }
  }
  std::vector<move_leftover> out;
  const auto servers = co_await provisioning_.all_servers();
  for (const auto& server : servers) {
    try {
      auto admin = co_await connect(server, "postgres");
      auto databases = old_sources[server.name];
      const auto objects = co_await db::replication::leftovers(*admin);
      for (const auto& l : objects) {
        if (!l.database.empty()) databases.insert(l.database);
        if (over.contains(l.name)) out.push_back({server.name, l.kind, l.name, l.database});
      }
      // Publications live in their database: look where a slot or subscription points (added
      // above), and in finished moves' sources that still exist there.
      for (const auto& database : abandoned_targets[server.name]) {
        const bool exists = co_await db::replication::database_exists(*admin, database);
        if (exists) out.push_back({server.name, "database", database, database});
      }
      for (const auto& database : databases) {
        const bool exists = co_await db::replication::database_exists(*admin, database);
        if (!exists) continue;
        auto conn = co_await connect(server, database);
        const auto pubs = co_await db::replication::publications(*conn);
        for (const auto& pub : pubs)
          if (over.contains(pub)) out.push_back({server.name, "publication", pub, database});
      }
    } catch (const std::exception& e) {
      spdlog::warn("move leftovers: server {} not inspected: {}", server.name, e.what());
    }
  }
  co_return out;
}

boost::asio::awaitable<std::vector<move_leftover>> mover::drop_leftovers() {
  const auto found = co_await leftovers();
  std::vector<move_leftover> dropped;
  // Subscriptions first (their workers hold the slots; a database with one cannot be
  // dropped), then slots, publications, and aborted moves' target databases.
  for (const auto* kind : {"subscription", "slot", "publication", "database"}) {
    for (const auto& l : found) {
      if (l.kind != kind) continue;
      try {
        const auto server = co_await provisioning_.server(l.server);
        if (l.kind == "slot") {
          auto admin = co_await connect(server, "postgres");
          const bool gone = co_await db::replication::drop_slot(*admin, l.name, 5s);
          if (!gone) continue;
        } else if (l.kind == "database") {
          auto admin = co_await connect(server, "postgres");
          co_await db::replication::drop_database(*admin, l.database);
        } else {
          auto conn = co_await connect(server, l.database);
          if (l.kind == "subscription")
            co_await db::replication::drop_subscription(*conn, l.name);
          else
            co_await db::replication::drop_publication(*conn, l.name);
        }
        dropped.push_back(l);
      } catch (const std::exception& e) {
        spdlog::warn("move leftovers: {} {} on {}: {}", l.kind, l.name, l.server, e.what());
      }
    }
  }
  co_return dropped;
}

void mover::launch(move_record move) {
  boost::asio::co_spawn(executor_, run(std::move(move)), [](const std::exception_ptr& e, const move_record&) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      spdlog::error("a move stopped: {}", ex.what());
    }
  });
}

// Before the flip: everything the move made is removed (the target database with its
// subscription, the slot and publication on the source, the markers), the source is
// unfenced, held writes go. Each step on its own: a server that is away leaves its part to
// reconcile (drop_leftovers), never the others undone.
boost::asio::awaitable<void> mover::abort_move(move_record& move, const std::string& reason) {
  const auto name = db::replication::replication_name(move.id);
  spdlog::warn("move {}: aborting: {}", move.id, reason);
  std::optional<server_connection> from;
  std::optional<server_connection> to;
  try {
    from = co_await provisioning_.server(move.from);
    to = co_await provisioning_.server(move.to);
  } catch (const std::exception& e) {
    spdlog::warn("move {}: abort: {}", move.id, e.what());
  }
  if (to) {
    try {
      auto target = co_await connect(*to, move.database_name);
      co_await db::replication::drop_subscription(*target, name);
    } catch (const std::exception& e) {
      spdlog::warn("move {}: abort: subscription on {}: {}", move.id, move.to, e.what());
    }
    try {
      auto admin = co_await connect(*to, "postgres");
      co_await db::replication::drop_database(*admin, move.database_name);
    } catch (const std::exception& e) {
      spdlog::warn("move {}: abort: database on {}: {}", move.id, move.to, e.what());
    }
  }
  if (from) {
    try {
      auto source = co_await connect(*from, move.database_name);
      co_await db::replication::unfence(*source, move.database_name, from->runtime.user);
      (void)co_await db::replication::drop_slot(*source, name, 5s);
      co_await db::replication::drop_publication(*source, name);
      co_await db::replication::drop_marker_table(*source);
    } catch (const std::exception& e) {
      spdlog::warn("move {}: abort: source objects on {}: {}", move.id, move.from, e.what());
    }
  }
  co_await publish_best_effort(invalidation::release_writes(move.tenant_id));
  {
    auto conn = co_await master_->acquire();
    co_await db::moves::abort(*conn, move.id, reason);
  }
  move.state = move_state::aborted;
  move.error = reason;
}

move_stats mover::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

}  // namespace tenantd::tenancy
