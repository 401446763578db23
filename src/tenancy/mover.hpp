// Online moves of a tenant's database to another database server (issue 13, API.md "Operator
// routes"), a durable state machine in master (db/move_repository.hpp) that any process can
// resume after a crash:
//   copying      the target database is made (migrated to the tenant's schema version,
//                tables emptied), the source publishes every table and the target subscribes
//                with an initial copy, while the tenant keeps serving from the source;
//   catching_up  every table is copied; replication follows the source until a marker
//                written there arrives on the target quickly;
//   cutover      writes to the tenant are held in every process (write_gate), the source's
//                tables are locked against writes (reads go on), a marker written after the
//                locks proves the target has every earlier write, sequences are copied, the
//                application role is fenced out of the source (no new connections), and one
//                master transaction flips the placement: the commit point. Then the
//                application role's sessions on the source end, the locks go and the held
//                writes run on the target. Past MOVE_FREEZE_MAX_MS before the flip the
//                cut-over is abandoned (fence lifted, locks released, writes let go to the
//                source) and tried again later, a few times, then the move is aborted;
//   done         the replication objects are dropped; the source database is dropped after
//                a grace period (unless kept).
// Before the flip a failure aborts the move (the tenant never left the source); after it the
// move can only be finished. A move the process running it lost (crash) is taken over by any
// process once its lease runs out (resume_stale). The mover connects as its own superuser role
// (MOVE_DATABASE_USERNAME): PostgreSQL 15 needs one to create a subscription; the request
// path never uses it.
#pragma once
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "db/connection.hpp"
#include "db/pool.hpp"
#include "domain/error.hpp"
#include "domain/invalidation.hpp"
#include "domain/move.hpp"
#include "tenancy/provisioner.hpp"
#include "tenancy/server_directory.hpp"

namespace tenantd::tenancy {

struct move_settings {
  std::string user;  // MOVE_DATABASE_USERNAME; empty: moves are unavailable
  std::string password;
  std::chrono::milliseconds freeze_max{1000};  // MOVE_FREEZE_MAX_MS
  std::chrono::seconds source_grace{3600};     // MOVE_SOURCE_GRACE_S: the source is dropped this long after
  int cutover_attempts{5};                     // abandoned cut-overs before the move is aborted
  std::chrono::milliseconds copy_timeout{std::chrono::hours(2)};
  int lease_seconds{15};
  std::string owner;        // this process, as leases name it
  std::string fault_point;  // test-only (TENANTD_FAULT_POINT): SIGKILL after the named step
};

// What this process's mover did, for /metrics.
struct move_stats {
  static constexpr std::array<double, 7> freeze_bounds{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};  // seconds
  std::uint64_t done{0};
  std::uint64_t aborted{0};
  std::uint64_t cutovers_abandoned{0};
  std::int64_t running{0};
  std::array<std::uint64_t, freeze_bounds.size()> freeze_buckets{};  // cumulative: freeze <= bound
  std::uint64_t freeze_count{0};
  double freeze_sum{0};  // seconds
};

// What a move that ended badly left on a server: a replication object, or the target database
// of an aborted move (the server was away when it was aborted).
struct move_leftover {
  std::string server;
  std::string kind;  // slot | subscription | publication | database
  std::string name;
  std::string database;
};

class mover {
 public:
  // Told each state change and a line of what is happening (CLI progress).
  using progress = std::function<void(const move_record&, std::string_view note)>;

  // `publish_local`: this process's own hold/release and tenant invalidations (every other
  // process hears them through master's NOTIFY).
  mover(boost::asio::any_io_executor executor, std::shared_ptr<db::pool> master, provisioner& provisioning,
        move_settings settings, std::function<void(const invalidation&)> publish_local);

  bool available() const noexcept { return !settings_.user.empty(); }
  const move_settings& settings() const noexcept { return settings_; }

  // Checks and records a move (copying), owned by this process; run() drives it. Errors:
  // tenant_not_found; invalid_input (unknown server, the tenant's own server);
  // move_unavailable (no mover role, wal_level, a table without a primary key, schema version,
  // the target holds a database of that name, the tenant not active); move_in_progress.
  boost::asio::awaitable<result<move_record>> start(const std::string& tenant_id, const std::string& to,
                                                    bool keep_source);
  // Drives a move this process owns to done or aborted; returns its last record. Never throws
  // for the move's own failures (they abort it, or after the flip leave it to be resumed).
  boost::asio::awaitable<move_record> run(move_record move, progress on_progress = {});
  // run() in the background on the mover's executor (a failure is logged).
  void launch(move_record move);

  boost::asio::awaitable<std::optional<move_record>> find(const std::string& id);
  boost::asio::awaitable<std::vector<move_record>> list(int limit = 200);

  // Takes over moves whose process died (lease run out) and drives each to its end.
  boost::asio::awaitable<std::vector<move_record>> resume_stale(progress on_progress = {});
  // Drops source databases whose grace period is over; their "<server>/<database>" names.
  boost::asio::awaitable<std::vector<std::string>> drop_due_sources();
  // Replication objects of moves that are not in progress, on every server reachable.
  boost::asio::awaitable<std::vector<move_leftover>> leftovers();
  // Drops them; what was dropped.
  boost::asio::awaitable<std::vector<move_leftover>> drop_leftovers();

  move_stats stats() const;

 private:
  struct session;  // the connections of one move
  boost::asio::awaitable<void> copy(session& s);
  boost::asio::awaitable<void> catch_up(session& s);
  // One cut-over: true when it flipped; false when abandoned (the tenant stays on the source).
  boost::asio::awaitable<bool> cut_over(session& s);
  boost::asio::awaitable<void> finish_after_flip(session& s);
  boost::asio::awaitable<void> abort_move(move_record& move, const std::string& reason);
  boost::asio::awaitable<void> set_state(session& s, move_state state, std::string_view note);
  // A run's lease, renewed by keep_lease() beside it.
  struct lease_state {
    std::atomic<bool> ended{false};
    std::atomic<bool> lost{false};  // another process owns the move now
  };
  struct lost_lease : std::runtime_error {
    lost_lease() : std::runtime_error("another process took the move over") {}
  };
  static boost::asio::awaitable<void> keep_lease(std::shared_ptr<db::pool> master, std::string move_id,
                                                 std::string owner, std::chrono::milliseconds every,
                                                 std::shared_ptr<lease_state> lease);
  // Throws lost_lease once another process has taken the move over.
  void check_lease(const session& s) const;
  boost::asio::awaitable<void> publish(const invalidation& change);
  // publish(), with a failure logged (a hold runs out by itself).
  boost::asio::awaitable<void> publish_best_effort(const invalidation& change);
  boost::asio::awaitable<std::unique_ptr<db::connection>> connect(const server_connection& server,
                                                                  const std::string& database);
  db::server_endpoint mover_endpoint(const server_connection& server) const;
  void fault(std::string_view step) const;

  boost::asio::any_io_executor executor_;
  std::shared_ptr<db::pool> master_;
  provisioner& provisioning_;
  move_settings settings_;
  std::function<void(const invalidation&)> publish_local_;
  mutable std::mutex stats_mutex_;
  move_stats stats_;
};

}  // namespace tenantd::tenancy
