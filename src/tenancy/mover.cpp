// The mover: the state machine of one move (copy, catch-up, cut-over, finish; mover_fleet.cpp
// starts, aborts and cleans up after moves). Written without co_await in conditions or
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

}  // namespace tenantd::tenancy
