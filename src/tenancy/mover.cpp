// The mover: the steps of a move and the cut-over. Written without co_await in conditions or
// in ?: and without early co_return at the top of awaitable<void> (GCC 12 hazards,
// docs/architecture.md).
#include "tenancy/mover.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <csignal>
#include <map>
#include <set>
#include <unistd.h>

#include "db/conninfo.hpp"
#include "db/master_repository.hpp"
#include "db/move_repository.hpp"
#include "db/replication.hpp"
#include "db/server_repository.hpp"
#include "db/transaction.hpp"
#include "domain/server.hpp"
#include "domain/validation.hpp"

namespace tenantd::tenancy {
namespace {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

// Held writes wait this much longer than the cut-over may take, so they outlive a cut-over
// that flips at its very deadline (and then go to the target).
constexpr auto hold_margin = 250ms;
// What the flip, the fence and the release take at most after the decision to flip; a
// cut-over that has less than this left is abandoned instead.
constexpr auto flip_reserve = 60ms;
// Replication counts as caught up when a marker crosses in less than this.
constexpr auto caught_up_below = 100ms;

boost::asio::awaitable<void> pause(std::chrono::milliseconds how_long) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor, how_long);
  co_await timer.async_wait(boost::asio::use_awaitable);
}

double ms_since(steady::time_point t) { return std::chrono::duration<double, std::milli>(steady::now() - t).count(); }

std::chrono::milliseconds ms_left(steady::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
}

}  // namespace

// The connections one move works with, opened as the mover role.
struct mover::session {
  move_record move;
  progress on_progress;
  std::string name;  // publication, subscription and slot
  server_connection from;
  server_connection to;
  std::unique_ptr<db::connection> source;  // the tenant database on the source
  std::unique_ptr<db::connection> target;  // the tenant database on the target
  std::shared_ptr<lease_state> lease = std::make_shared<lease_state>();
  std::string step{"starting"};  // what it is doing, for the move's error
};

namespace {
// A failure as the move records and the API shows it: tenantd's words, never PostgreSQL's
// message (that is logged).
std::string failure_text(const std::string& step, const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const db::pg_error& e) {
    spdlog::warn("move: {} failed: [{}] {}", step, e.sqlstate(), e.what());
    return step + " failed: PostgreSQL refused a statement (" + e.sqlstate() + ")";
  } catch (const db::unavailable_error& e) {
    spdlog::warn("move: {} failed: {}", step, e.what());
    return step + " failed: a database server could not be reached or broke the connection";
  } catch (const std::exception& e) {
    return e.what();
  }
}
}  // namespace

mover::mover(boost::asio::any_io_executor executor, std::shared_ptr<db::pool> master, provisioner& provisioning,
             move_settings settings, std::function<void(const invalidation&)> publish_local)
    : executor_(std::move(executor)),
      master_(std::move(master)),
      provisioning_(provisioning),
      settings_(std::move(settings)),
      publish_local_(std::move(publish_local)) {}

void mover::fault([[maybe_unused]] std::string_view step) const {
#ifdef TENANTD_FAULT_INJECTION
  if (settings_.fault_point.empty() || settings_.fault_point != step) return;
  spdlog::critical("fault injection: killing the process after move step {}", step);
  spdlog::default_logger()->flush();
  ::kill(::getpid(), SIGKILL);
#endif
}

db::server_endpoint mover::mover_endpoint(const server_connection& server) const {
  auto endpoint = server.runtime;
  endpoint.user = settings_.user;
  endpoint.password = settings_.password;
  return endpoint;
}

boost::asio::awaitable<std::unique_ptr<db::connection>> mover::connect(const server_connection& server,
                                                                       const std::string& database) {
  db::connection_options options;
  // Creating the subscription's slot waits for every transaction running on the source's
  // cluster to end: minutes are allowed. The cut-over bounds its own steps (lock_timeout, its
  // deadline).
  options.conninfo = db::service_conninfo(mover_endpoint(server), database, 10min);
  options.connect_timeout = 5s;
  options.query_timeout = 11min;
  options.label = "mover server=" + server.name + " database=" + database;
  co_return co_await db::connection::connect(executor_, std::move(options));
}

boost::asio::awaitable<void> mover::publish(const invalidation& change) {
  if (publish_local_) publish_local_(change);
  auto conn = co_await master_->acquire();
  co_await db::master::notify_invalidation(*conn, change);
}

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
      const auto moves = co_await db::moves::list(*conn, 1000);
      for (const auto& m : moves)
        if (m.tenant_id == tenant_id && m.from == to && m.state == move_state::done && !m.keep_source &&
            !m.source_dropped_at)
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

void mover::check_lease(const session& s) const {
  if (s.lease->lost) throw lost_lease();
}

// Renews the move's lease every quarter of it, whatever the move is waiting for (creating a
// subscription can wait minutes for the source's transactions), until the move ends or the
// lease is found taken over.
boost::asio::awaitable<void> mover::keep_lease(std::shared_ptr<db::pool> master, std::string move_id, std::string owner,
                                               std::chrono::milliseconds every, std::shared_ptr<lease_state> lease) {
  boost::asio::steady_timer timer(co_await boost::asio::this_coro::executor);
  while (!lease->ended) {
    timer.expires_after(every);
    co_await timer.async_wait(boost::asio::use_awaitable);
    if (lease->ended) break;
    try {
      auto conn = co_await master->acquire();
      const bool owned = co_await db::moves::renew(*conn, move_id, owner);
      if (!owned) lease->lost = true;
    } catch (const std::exception& e) {  // master away: try again; the lease may run out meanwhile
      spdlog::warn("move {}: cannot renew its lease: {}", move_id, e.what());
    }
    if (lease->lost) break;
  }
}

boost::asio::awaitable<void> mover::set_state(session& s, move_state state, std::string_view note) {
  bool owned = false;
  {
    auto conn = co_await master_->acquire();
    owned = co_await db::moves::set_state(*conn, s.move.id, settings_.owner, state);
  }
  if (!owned) throw lost_lease();
  s.move.state = state;
  spdlog::info("move {}: tenant {} {} ({})", s.move.id, s.move.tenant_id, to_string(state), note);
  if (s.on_progress) s.on_progress(s.move, note);
}

// copying: the target database with the tenant's schema and empty tables, the publication,
// the subscription, and its initial copy. Each step can be run again (a resumed move).
boost::asio::awaitable<void> mover::copy(session& s) {
  s.step = "making the target database";
  auto target_admin = co_await connect(s.to, "postgres");
  auto sub = db::replication::subscription_progress{};
  const bool exists = co_await db::replication::database_exists(*target_admin, s.move.database_name);
  if (exists) {
    s.target = co_await connect(s.to, s.move.database_name);
    sub = co_await db::replication::progress(*s.target, s.name);
  }
  if (!sub.exists) {
    // Not subscribed yet: (re)make the target database from scratch.
    s.target.reset();
    if (exists) co_await db::replication::drop_database(*target_admin, s.move.database_name);
    {
      auto ddl = co_await provisioning_.open_ddl_session(s.to);
      co_await provisioning_.create_empty_database(s.to, *ddl, s.move.database_name);
    }
    (void)co_await provisioning_.migrate_database(s.to, s.move.database_name);
    s.target = co_await connect(s.to, s.move.database_name);
  }
  fault("move_after_target");
  s.step = "publishing the source";
  co_await db::replication::create_marker_table(*s.source);
  co_await db::replication::create_publication(*s.source, s.name);
  if (!sub.exists) {
    s.step = "subscribing the target";
    co_await db::replication::create_marker_table(*s.target);
    co_await db::replication::truncate_tenant_tables(*s.target);
    const auto& src = mover_endpoint(s.from);
    std::vector<std::pair<std::string, std::string>> keywords{{"host", src.host},
                                                              {"port", src.port},
                                                              {"user", src.user},
                                                              {"password", src.password},
                                                              {"dbname", s.move.database_name},
                                                              {"application_name", s.name}};
    // The target connects to the source from its own machine, where the CA file tenantd was
    // given (sslrootcert) is not: a server reached with TLS is reached with TLS from there too,
    // encrypted (require) but not verified (docs/operations.md).
    if (!src.sslmode.empty())
      keywords.emplace_back("sslmode", src.sslmode.starts_with("verify") ? std::string("require") : src.sslmode);
    co_await db::replication::create_subscription(*s.target, s.name, db::make_conninfo(keywords));
  }
  fault("move_after_subscribe");
  s.step = "copying the tables";
  const auto deadline = steady::now() + settings_.copy_timeout;
  while (true) {
    sub = co_await db::replication::progress(*s.target, s.name);
    if (sub.exists && sub.running && sub.tables > 0 && sub.copying == 0) break;
    if (steady::now() > deadline)
      throw std::runtime_error(
          "the initial copy did not finish within " +
          std::to_string(std::chrono::duration_cast<std::chrono::seconds>(settings_.copy_timeout).count()) + " s");
    check_lease(s);
    co_await pause(100ms);
  }
}

// catching_up: markers written on the source until one arrives on the target quickly.
boost::asio::awaitable<void> mover::catch_up(session& s) {
  s.step = "catching up";
  const auto deadline = steady::now() + settings_.copy_timeout;
  int round = 0;
  while (true) {
    const auto token = "lag-" + validation::new_uuid() + "-" + std::to_string(++round);
    const auto sent = steady::now();
    co_await db::replication::insert_marker(*s.source, token);
    bool arrived = false;
    while (!arrived && steady::now() - sent < 5s) {
      arrived = co_await db::replication::marker_arrived(*s.target, token);
      if (!arrived) co_await pause(5ms);
    }
    const auto took = steady::now() - sent;
    if (arrived && took < caught_up_below) break;
    if (steady::now() > deadline) throw std::runtime_error("replication did not catch up with the source");
    check_lease(s);
  }
}

// One cut-over. Order matters: the fence is up (no new application session on the source)
// before the flip, the flip commits before the application's sessions there end, and those
// end before the locks go (a write that waited on a lock dies with its session instead of
// running on the source after the flip; its request runs again on the target).
boost::asio::awaitable<bool> mover::cut_over(session& s) {
  {
    auto conn = co_await master_->acquire();
    co_await db::moves::count_attempt(*conn, s.move.id);
  }
  ++s.move.attempts;
  s.step = "cutting over";
  auto locker = co_await connect(s.from, s.move.database_name);
  const auto app_role = s.from.runtime.user;
  const auto started = steady::now();
  const auto deadline = started + settings_.freeze_max;
  co_await publish(invalidation::hold_writes(
      s.move.tenant_id,
      std::chrono::duration_cast<std::chrono::milliseconds>(settings_.freeze_max + hold_margin).count()));

  std::string abandoned;  // why, when the cut-over is given up
  // When each step ended, as ms since the hold (for the log: where a slow cut-over spent it).
  double locked_at = 0, caught_up_at = 0, fenced_at = 0;
  bool fenced = false;
  bool flipped = false;
  auto lock = co_await db::transaction::begin(*locker);
  try {
    (void)co_await db::replication::lock_tables(*locker, s.name, ms_left(deadline - flip_reserve));
  } catch (const db::pg_error& e) {
    if (e.sqlstate() != "55P03") throw;
    abandoned = "the source's tables could not be locked in time (long transactions on them?)";
  }
  locked_at = ms_since(started);
  const auto token = "cutover-" + s.move.id + "-" + std::to_string(s.move.attempts);
  if (abandoned.empty()) {
    co_await db::replication::insert_marker(*s.source, token);
    bool arrived = false;
    while (!arrived && steady::now() < deadline - flip_reserve) {
      arrived = co_await db::replication::marker_arrived(*s.target, token);
      if (!arrived) co_await pause(2ms);
    }
    if (!arrived) abandoned = "the target did not catch up with the source in time";
    caught_up_at = ms_since(started);
  }
  if (abandoned.empty()) {
    const auto values = co_await db::replication::sequences(*locker);
    co_await db::replication::set_sequences(*s.target, values);
    fault("move_before_flip");
    co_await db::replication::fence(*s.source, s.move.database_name, app_role);
    fenced = true;
    fenced_at = ms_since(started);
    if (steady::now() > deadline - flip_reserve / 2) abandoned = "the cut-over ran out of time before the flip";
  }
  if (abandoned.empty()) {
    const double freeze_ms = ms_since(started);
    try {
      auto conn = co_await master_->acquire();
      flipped = co_await db::moves::flip(*conn, s.move, freeze_ms);
    } catch (const db::unavailable_error& e) {
      // The commit may or may not have happened: ask again before lifting the fence.
      spdlog::warn("move {}: the flip's commit is in doubt ({}); reading the placement again", s.move.id, e.what());
    }
    if (!flipped) {
      std::optional<tenant_record> now;
      bool known = true;
      try {
        auto conn = co_await master_->acquire();
        now = co_await db::master::find_tenant(*conn, s.move.tenant_id);
      } catch (const db::unavailable_error&) {
        known = false;
      }
      if (!known) {
        // Still unknown: keep the source fenced (nothing can write there) and let a resumed
        // move decide from master.
        co_await lock.rollback();
        co_await publish_best_effort(invalidation::release_writes(s.move.tenant_id));
        throw std::runtime_error(
            "master did not answer during the flip; the source stays fenced until the move is resumed");
      }
      flipped = now && now->db_server == s.move.to;
      if (!flipped) abandoned = "the placement could not be changed";
    }
    if (flipped) {
      s.move.flipped = true;
      s.move.freeze_ms = freeze_ms;
    }
  }
  if (flipped) {
    fault("move_after_flip");
    (void)co_await db::replication::terminate_sessions(*s.source, s.move.database_name, s.from.runtime.user);
    co_await lock.rollback();
    if (publish_local_) publish_local_(invalidation::of_tenant(s.move.tenant_id));
    co_await publish_best_effort(invalidation::release_writes(s.move.tenant_id));
    spdlog::info(
        "move {}: tenant {} now on {}; writes were held {:.1f} ms (locked at {:.1f}, caught up at {:.1f}, fenced at "
        "{:.1f}, flipped at {:.1f})",
        s.move.id, s.move.tenant_id, s.move.to, ms_since(started), locked_at, caught_up_at, fenced_at,
        s.move.freeze_ms.value_or(0));
    co_return true;
  }
  if (fenced) co_await db::replication::unfence(*s.source, s.move.database_name, app_role);
  co_await lock.rollback();
  co_await publish_best_effort(invalidation::release_writes(s.move.tenant_id));
  spdlog::warn("move {}: cut-over {} abandoned after {:.1f} ms (locked at {:.1f}, caught up at {:.1f}): {}", s.move.id,
               s.move.attempts, ms_since(started), locked_at, caught_up_at, abandoned);
  s.move.error = abandoned;
  {
    std::lock_guard counted(stats_mutex_);
    ++stats_.cutovers_abandoned;
  }
  co_return false;
}

boost::asio::awaitable<void> mover::publish_best_effort(const invalidation& change) {
  try {
    co_await publish(change);
  } catch (const db::unavailable_error& e) {  // the hold runs out by itself
    spdlog::warn("cannot publish {}: {}", format(change), e.what());
  }
}

// After the flip: the source fenced and its application sessions ended (again: a resumed move
// may not have got there), the replication objects dropped, the move done.
boost::asio::awaitable<void> mover::finish_after_flip(session& s) {
  s.step = "cleaning up after the cut-over";
  if (!s.source) s.source = co_await connect(s.from, s.move.database_name);
  co_await db::replication::fence(*s.source, s.move.database_name, s.from.runtime.user);
  (void)co_await db::replication::terminate_sessions(*s.source, s.move.database_name, s.from.runtime.user);
  if (!s.target) s.target = co_await connect(s.to, s.move.database_name);
  co_await db::replication::drop_subscription(*s.target, s.name);
  co_await db::replication::drop_marker_table(*s.target);
  fault("move_after_unsubscribe");
  const bool dropped = co_await db::replication::drop_slot(*s.source, s.name, 5s);
  if (!dropped) throw std::runtime_error("replication slot " + s.name + " is still in use on " + s.from.name);
  co_await db::replication::drop_publication(*s.source, s.name);
  co_await db::replication::drop_marker_table(*s.source);
  {
    auto conn = co_await master_->acquire();
    co_await db::moves::finish(*conn, s.move.id, settings_.source_grace.count());
  }
  s.move.state = move_state::done;
  spdlog::info("move {}: tenant {} done (freeze {:.1f} ms, {} cut-over(s)); source {} on {} {}", s.move.id,
               s.move.tenant_id, s.move.freeze_ms.value_or(0), s.move.attempts, s.move.database_name, s.move.from,
               s.move.keep_source ? "kept" : "dropped after the grace period");
  if (s.on_progress) s.on_progress(s.move, "done");
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

boost::asio::awaitable<move_record> mover::run(move_record move, progress on_progress) {
  {
    std::lock_guard lock(stats_mutex_);
    ++stats_.running;
  }
  session s;
  s.move = std::move(move);
  s.on_progress = std::move(on_progress);
  s.name = db::replication::replication_name(s.move.id);
  boost::asio::co_spawn(executor_,
                        keep_lease(master_, s.move.id, settings_.owner,
                                   std::chrono::milliseconds(settings_.lease_seconds * 1000 / 4), s.lease),
                        boost::asio::detached);
  std::string failure;
  bool lost = false;
  try {
    s.step = "finding the servers";
    s.from = co_await provisioning_.server(s.move.from);
    s.to = co_await provisioning_.server(s.move.to);
    if (!s.move.flipped) {
      s.source = co_await connect(s.from, s.move.database_name);
      // A cut-over that died after fencing the source left it fenced.
      co_await db::replication::unfence(*s.source, s.move.database_name, s.from.runtime.user);
      co_await set_state(s, move_state::copying, "making the target database and copying the tables");
      co_await copy(s);
      co_await set_state(s, move_state::catching_up, "every table copied; replication following the source");
      co_await catch_up(s);
      co_await set_state(s, move_state::cutover, "holding writes for the cut-over");
      bool flipped = false;
      for (int attempt = 0; !flipped && attempt < settings_.cutover_attempts; ++attempt) {
        if (attempt > 0) {
          co_await pause(std::chrono::milliseconds(500 * attempt));
          check_lease(s);
          co_await catch_up(s);
        }
        flipped = co_await cut_over(s);
      }
      if (!flipped)
        throw std::runtime_error("every cut-over was abandoned (" + std::to_string(s.move.attempts) +
                                 "), the last because " + s.move.error.value_or("?"));
    }
    co_await finish_after_flip(s);
  } catch (const lost_lease&) {
    lost = true;
  } catch (const std::exception&) {
    failure = failure_text(s.step, std::current_exception());
  }
  s.lease->ended = true;
  if (lost || s.lease->lost) {
    // Another process drives the move now (this one was too slow to renew): touch nothing.
    spdlog::warn("move {}: another process took the move over; this one stops", s.move.id);
    failure.clear();
  }
  if (!failure.empty() && !s.move.flipped) {
    s.source.reset();
    s.target.reset();
    try {
      co_await abort_move(s.move, failure);
    } catch (const std::exception& e) {
      spdlog::error("move {}: could not record the abort ({}); it will be taken over when its lease runs out",
                    s.move.id, e.what());
    }
    if (s.on_progress) s.on_progress(s.move, "aborted: " + failure);
    std::lock_guard lock(stats_mutex_);
    ++stats_.aborted;
  } else if (failure.empty() && !lost && !s.lease->lost && s.move.state == move_state::done) {
    std::lock_guard lock(stats_mutex_);
    ++stats_.done;
    if (s.move.freeze_ms) {
      const double seconds = *s.move.freeze_ms / 1000.0;
      for (std::size_t i = 0; i < move_stats::freeze_bounds.size(); ++i)
        if (seconds <= move_stats::freeze_bounds[i]) ++stats_.freeze_buckets[i];
      ++stats_.freeze_count;
      stats_.freeze_sum += seconds;
    }
  } else if (!failure.empty()) {
    spdlog::error(
        "move {}: tenant {} is on {} but the move could not finish ({}); it is retried when its lease runs "
        "out",
        s.move.id, s.move.tenant_id, s.move.to, failure);
    s.move.error = failure;
    if (s.on_progress) s.on_progress(s.move, "interrupted after the flip: " + failure);
  }
  {
    std::lock_guard lock(stats_mutex_);
    --stats_.running;
  }
  co_return s.move;
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
  {
    auto conn = co_await master_->acquire();
    const auto moves = co_await db::moves::list(*conn, 100000);
    std::set<std::pair<std::string, std::string>> in_progress;  // (server, database)
    for (const auto& m : moves) {
      if (finished(m.state)) over.insert(db::replication::replication_name(m.id));
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
      std::set<std::string> databases;
      const auto objects = co_await db::replication::leftovers(*admin);
      for (const auto& l : objects) {
        if (!l.database.empty()) databases.insert(l.database);
        if (over.contains(l.name)) out.push_back({server.name, l.kind, l.name, l.database});
      }
      // Publications live in their database: look where a slot or subscription points, and in
      // the databases of finished moves that still exist there.
      {
        auto conn = co_await master_->acquire();
        const auto moves = co_await db::moves::list(*conn, 100000);
        for (const auto& m : moves)
          if (m.from == server.name && finished(m.state)) databases.insert(m.database_name);
      }
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

}  // namespace tenantd::tenancy
